/* test_utf8.c: UTF-8 checking and U+FFFD repair (serve/utf8.h).  The
 * expected repairs come from Python's bytes.decode("utf-8", "replace"),
 * which follows the same maximal-subpart rule; validity is also checked
 * against a naive decoder (decode a code point, then reject overlongs,
 * surrogates and values past U+10FFFF) over every string of up to two bytes
 * and every string of up to four bytes drawn from the bytes where the rules
 * change.  Inputs live in exactly-sized heap blocks so that ASan catches a
 * read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/utf8.h"
#include "test.h"

static char *dup_exact(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    CHECK(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* in, its length, Python's repair of it, its length. */
static const struct {
    const char *in;
    size_t n;
    const char *out;
    size_t nout;
} cases[] = {
    {"", 0, "", 0},
    {"abc", 3, "abc", 3},
    {"\x00", 1, "\x00", 1},
    {"\xc3\xa9", 2, "\xc3\xa9", 2},
    {"\xe2\x82\xac", 3, "\xe2\x82\xac", 3},
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 4},
    {"\x80", 1, "\xef\xbf\xbd", 3},
    {"\xbf\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"\xc1\xbf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"\xc2", 1, "\xef\xbf\xbd", 3},
    {"\xc2\x41", 2, "\xef\xbf\xbd\x41", 4},
    {"\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
    {"\xe0\xa0", 2, "\xef\xbf\xbd", 3},
    {"\xe0\xa0\x41", 3, "\xef\xbf\xbd\x41", 4},
    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
    {"\xed\x9f\xbf", 3, "\xed\x9f\xbf", 3},
    {"\xf0\x80\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12},
    {"\xf0\x90\x80", 3, "\xef\xbf\xbd", 3},
    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12},
    {"\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf", 4},
    {"\xf5\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"\xff\xfe", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"a\xf1\x80\x80\xe1\x80\xc2" "b\x80" "c", 10,
     "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd" "c", 15},
    {"\xef\xbf\xbd", 3, "\xef\xbf\xbd", 3},
    {"\xe1\x80\x80\x80", 4, "\xe1\x80\x80\xef\xbf\xbd", 6},
};

TEST(utf8_repair_matches_python)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *in = dup_exact(cases[k].in, cases[k].n);
        char *out = malloc(UTF8_REPAIR_MAX(cases[k].n) + 1);
        CHECK(out);
        size_t n = utf8_repair(out, in, cases[k].n);
        if (n != cases[k].nout || memcmp(out, cases[k].out, n) != 0) {
            fprintf(stderr, "  case %zu: wrong repair (%zu bytes)\n", k, n);
            exit(1);
        }
        CHECK_EQ(utf8_valid_prefix(out, n), n);
        /* Valid input is the same after repair, and only valid input is. */
        int same = cases[k].n == cases[k].nout && !memcmp(cases[k].in, cases[k].out, n);
        CHECK_EQ(utf8_valid_prefix(in, cases[k].n) == cases[k].n, same);
        free(in);
        free(out);
    }
}

TEST(utf8_valid_prefix_stops_at_first_bad_byte)
{
    CHECK_EQ(utf8_valid_prefix("ab\xc3\xa9\x80xyz", 8), 4);
    CHECK_EQ(utf8_valid_prefix("ab\xe2\x82", 4), 2);   /* truncated at the end */
    CHECK_EQ(utf8_valid_prefix("\xed\xbf\xbf", 3), 0); /* a surrogate */
    CHECK_EQ(utf8_valid_prefix("a\0b", 3), 3);         /* NUL is a character */
}

/* The naive decoder: the length of the well-formed sequence at s, or 0. */
static size_t naive_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static size_t naive_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = naive_len(s + i, n - i)))
        i += k;
    return i;
}

static void check_one(const unsigned char *s, size_t n)
{
    char *in = dup_exact((const char *)s, n);
    char *out = malloc(UTF8_REPAIR_MAX(n) + 1);
    CHECK(out);
    CHECK_EQ(utf8_valid_prefix(in, n), naive_prefix(s, n));
    size_t m = utf8_repair(out, in, n);
    CHECK(m <= UTF8_REPAIR_MAX(n));
    CHECK_EQ(utf8_valid_prefix(out, m), m);
    if (naive_prefix(s, n) == n)
        CHECK(m == n && !memcmp(out, s, n));
    free(in);
    free(out);
}

TEST(utf8_agrees_with_naive_decoder)
{
    unsigned char s[4];
    for (int a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check_one(s, 1);
        for (int b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check_one(s, 2);
        }
    }
    /* The bytes where the rules change, in every position. */
    static const unsigned char edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                         0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec,
                                         0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    const size_t ne = sizeof edge;
    for (size_t a = 0; a < ne; a++)
        for (size_t b = 0; b < ne; b++)
            for (size_t c = 0; c < ne; c++) {
                s[0] = edge[a];
                s[1] = edge[b];
                s[2] = edge[c];
                check_one(s, 3);
                for (size_t d = 0; d < ne; d++) {
                    s[3] = edge[d];
                    check_one(s, 4);
                }
            }
}
