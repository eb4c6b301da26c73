/* test_varint.c: LEB128 and zigzag varints (common/varint.h): round trips
 * at every 7-bit boundary, exact encodings, and rejection of over-long and
 * truncated input.  Inputs live in exactly-sized heap blocks so that a read
 * at or past `end` is caught by ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/varint.h"
#include "test.h"

/* A heap copy with no slack after it. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    CHECK(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

static size_t expected_len_u64(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

TEST(varint_u64_roundtrip_boundaries)
{
    for (int bits = 0; bits <= 64; bits++) {
        uint64_t center = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits);
        for (int d = -1; d <= 1; d++) {
            uint64_t v = center + (uint64_t)(int64_t)d;
            if (bits == 0 && d < 0)
                v = 0;
            uint8_t buf[10];
            size_t n = varint_put_u64(buf, v);
            CHECK_EQ(n, expected_len_u64(v));
            CHECK(n <= 10);
            /* every byte but the last has the continuation bit */
            for (size_t i = 0; i + 1 < n; i++)
                CHECK(buf[i] & 0x80);
            CHECK(!(buf[n - 1] & 0x80));
            uint8_t *h = dup_exact(buf, n);
            uint64_t out = 0;
            CHECK_EQ(varint_get_u64(h, h + n, 10, &out), n);
            CHECK(out == v);
            /* every truncation is refused without reading past the end */
            for (size_t k = 0; k < n; k++) {
                uint8_t *t = dup_exact(buf, k);
                CHECK_EQ(varint_get_u64(t, t + k, 10, &out), 0);
                free(t);
            }
            free(h);
        }
    }
}

TEST(varint_exact_encodings)
{
    uint8_t b[10];
    CHECK_EQ(varint_put_u64(b, 0), 1);
    CHECK_EQ(b[0], 0);
    CHECK_EQ(varint_put_u64(b, 127), 1);
    CHECK_EQ(b[0], 0x7f);
    CHECK_EQ(varint_put_u64(b, 128), 2);
    CHECK_EQ(b[0], 0x80);
    CHECK_EQ(b[1], 0x01);
    CHECK_EQ(varint_put_u64(b, 300), 2);
    CHECK_EQ(b[0], 0xac);
    CHECK_EQ(b[1], 0x02);
    CHECK_EQ(varint_put_u64(b, 16384), 3);
    CHECK_EQ(b[0], 0x80);
    CHECK_EQ(b[1], 0x80);
    CHECK_EQ(b[2], 0x01);
    CHECK_EQ(varint_put_u64(b, UINT64_MAX), 10);
    for (int i = 0; i < 9; i++)
        CHECK_EQ(b[i], 0xff);
    CHECK_EQ(b[9], 0x01);
    /* zigzag: 0->0, -1->1, 1->2, -2->3, 2->4 */
    static const int64_t zin[] = {0, -1, 1, -2, 2, 63, -64, 64};
    static const uint8_t zout[] = {0, 1, 2, 3, 4, 126, 127};
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(varint_put_zz64(b, zin[i]), 1);
        CHECK_EQ(b[0], zout[i]);
    }
    CHECK_EQ(varint_put_zz64(b, 64), 2);
    CHECK_EQ(b[0], 0x80);
    CHECK_EQ(b[1], 0x01);
    /* INT32_MIN zigzags to 0xffffffff: five bytes */
    CHECK_EQ(varint_put_zz64(b, INT32_MIN), 5);
    static const uint8_t m32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK(memcmp(b, m32, 5) == 0);
}

TEST(varint_zigzag_roundtrip)
{
    static const int64_t v64[] = {0, 1, -1, 63, -64, 64, -65, 8191, -8192, INT32_MAX, INT32_MIN,
                                  (int64_t)INT32_MAX + 1, (int64_t)INT32_MIN - 1, INT64_MAX, INT64_MIN,
                                  INT64_MAX - 1, INT64_MIN + 1, 1234567890123LL, -1234567890123LL};
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        uint8_t b[10];
        size_t n = varint_put_zz64(b, v64[i]);
        CHECK_EQ(n, varint_len_zz64(v64[i]));
        uint8_t *h = dup_exact(b, n);
        int64_t out = 0;
        CHECK_EQ(varint_get_zz64(h, h + n, &out), n);
        CHECK_EQ(out, v64[i]);
        int32_t o32 = 0;
        size_t r32 = varint_get_zz32(h, h + n, &o32);
        if (v64[i] >= INT32_MIN && v64[i] <= INT32_MAX) {
            CHECK_EQ(r32, n);
            CHECK_EQ(o32, v64[i]);
        } else {
            CHECK_EQ(r32, 0); /* does not fit 32 bits */
        }
        free(h);
    }
    CHECK_EQ(varint_len_zz64(0), 1);
    CHECK_EQ(varint_len_zz64(INT64_MIN), 10);
    CHECK_EQ(varint_len_zz64(INT64_MAX), 10);
}

TEST(varint_int32_six_bytes_rejected)
{
    /* a zero padded out to six bytes: over-long for int32 */
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    uint8_t *h = dup_exact(six, sizeof six);
    int32_t v = 12345;
    CHECK_EQ(varint_get_zz32(h, h + sizeof six, &v), 0);
    uint64_t u;
    CHECK_EQ(varint_get_u64(h, h + sizeof six, 5, &u), 0);
    /* the same as a varlong is fine */
    CHECK_EQ(varint_get_u64(h, h + sizeof six, 10, &u), 6);
    CHECK(u == 0);
    free(h);
    /* five bytes whose value exceeds 32 bits */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    h = dup_exact(big, sizeof big);
    CHECK_EQ(varint_get_zz32(h, h + sizeof big, &v), 0);
    free(h);
    /* five bytes at the limit are fine: 0xffffffff zigzags to INT32_MIN */
    static const uint8_t lim[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    h = dup_exact(lim, sizeof lim);
    CHECK_EQ(varint_get_zz32(h, h + sizeof lim, &v), 5);
    CHECK_EQ(v, INT32_MIN);
    free(h);
}

TEST(varint_int64_eleven_bytes_rejected)
{
    uint8_t eleven[11];
    memset(eleven, 0x80, 10);
    eleven[10] = 0x00;
    uint8_t *h = dup_exact(eleven, sizeof eleven);
    int64_t v = 7;
    CHECK_EQ(varint_get_zz64(h, h + sizeof eleven, &v), 0);
    CHECK_EQ(v, 7); /* untouched */
    uint64_t u;
    CHECK_EQ(varint_get_u64(h, h + sizeof eleven, 10, &u), 0);
    free(h);
    /* ten continuation bytes and nothing after: truncated */
    h = dup_exact(eleven, 10);
    CHECK_EQ(varint_get_zz64(h, h + 10, &v), 0);
    free(h);
}

TEST(varint_truncated_and_empty)
{
    uint8_t *h = dup_exact((const uint8_t *)"\x80", 1);
    uint64_t u;
    int32_t v32;
    int64_t v64;
    CHECK_EQ(varint_get_u64(h, h + 1, 5, &u), 0);
    CHECK_EQ(varint_get_zz32(h, h + 1, &v32), 0);
    CHECK_EQ(varint_get_zz64(h, h + 1, &v64), 0);
    CHECK_EQ(varint_get_u64(h, h, 5, &u), 0); /* empty range */
    free(h);
    /* a varint followed by more bytes reads only its own */
    static const uint8_t two[] = {0x96, 0x01, 0xff, 0xff};
    h = dup_exact(two, sizeof two);
    CHECK_EQ(varint_get_u64(h, h + 4, 5, &u), 2);
    CHECK_EQ(u, 150);
    CHECK_EQ(varint_get_zz32(h, h + 4, &v32), 2);
    CHECK_EQ(v32, 75);
    free(h);
}
