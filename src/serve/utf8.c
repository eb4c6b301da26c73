/* utf8.c: well-formed UTF-8 checks and U+FFFD repair (see utf8.h for the
 * contract and the rules followed). */
#include "serve/utf8.h"

#include <string.h>

/* How long a well-formed sequence starting at s[0..n) is: 1..4, or 0 when
 * s[0] does not start one.  When 0, *bad is the length of the maximal
 * subpart to replace (1..3): the lead byte and the continuation bytes that
 * were still allowed after it. */
static size_t seq_len(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;

    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c < 0xc2) /* continuation bytes and the overlong leads C0, C1 */
        return 0;
    if (c < 0xe0) {
        need = 2;
    } else if (c < 0xf0) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (c < 0xf5) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    /* The second byte has the lead's own range; the others 80..BF. */
    for (size_t k = 1; k < need; k++) {
        if (k >= n || s[k] < lo || s[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, bad;

    while (i < n) {
        size_t k;

        /* ASCII runs are by far the most common input. */
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if (!(k = seq_len(u + i, n - i, &bad)))
            return i;
        i += k;
    }
    return n;
}

size_t utf8_repair(char *dst, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;

    while (i < n) {
        size_t ok = utf8_valid_prefix(s + i, n - i), bad;

        memcpy(dst + o, s + i, ok);
        o += ok;
        i += ok;
        if (i == n)
            break;
        seq_len(u + i, n - i, &bad);
        memcpy(dst + o, UTF8_REPLACEMENT, 3);
        o += 3;
        i += bad;
    }
    return o;
}
