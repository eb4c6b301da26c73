/* utf8.h: checking bytes for well-formed UTF-8 and repairing them, so that
 * record keys, values and headers (arbitrary bytes) and names that come from
 * a cluster can be shown as JSON strings.
 *
 * Well-formed means RFC 3629 / Unicode 15, chapter 3, table 3-7: no
 * overlong forms, no encoded surrogates (U+D800..U+DFFF), nothing past
 * U+10FFFF.  Repair replaces each "maximal subpart of an ill-formed
 * subsequence" (Unicode 15, section 3.9, U+FFFD substitution of maximal
 * subparts) by U+FFFD, the practice that WHATWG's decoder and Python's
 * bytes.decode("utf-8", "replace") follow, so the output is the same text a
 * browser or Python would show for those bytes.
 *
 * Leaf module (libc only). */
#ifndef SHOPSTREAM_UTF8_H
#define SHOPSTREAM_UTF8_H

#include <stddef.h>

/* Bytes of U+FFFD in UTF-8 (EF BF BD). */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"
/* Room utf8_repair needs for n input bytes: each byte becomes at most three. */
#define UTF8_REPAIR_MAX(n) ((n) * 3)

/* The length of the longest prefix of s[0..n) that is well-formed UTF-8
 * (n when all of it is).  s borrows; NUL bytes are ordinary characters. */
size_t utf8_valid_prefix(const char *s, size_t n);

/* Writes s[0..n) to dst with every maximal ill-formed subpart replaced by
 * U+FFFD; dst (borrowed) holds at least UTF8_REPAIR_MAX(n) bytes and does
 * not overlap s.  Returns the bytes written (no NUL is added). */
size_t utf8_repair(char *dst, const char *s, size_t n);

#endif
