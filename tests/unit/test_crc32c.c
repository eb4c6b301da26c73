/* test_crc32c.c: CRC-32C (common/crc32c.c) against published vectors
 * (RFC 3720 appendix B.4), incremental use, and against a bit-at-a-time
 * reference written here, on random data of odd lengths and alignments
 * (so both the 8-byte loop and the byte tail of the fast path run). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "test.h"

/* The definition, one bit at a time (reflected polynomial 0x82F63B78). */
static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

TEST(crc32c_known_vectors)
{
    CHECK_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(crc32c(0, "", 0), 0);
    CHECK_EQ(crc32c(0, NULL, 0), 0);
    uint8_t b[32];
    memset(b, 0, sizeof b);
    CHECK_EQ(crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    CHECK_EQ(crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    CHECK_EQ(crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    CHECK_EQ(crc32c(0, b, 32), 0x113FDB5Cu);
    CHECK_EQ(crc32c(0, "a", 1), 0xC1D04330u);
    /* the reference agrees with the published vector too */
    CHECK_EQ(ref_crc32c(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
}

TEST(crc32c_incremental_equals_one_shot)
{
    uint8_t d[300];
    for (size_t i = 0; i < sizeof d; i++)
        d[i] = (uint8_t)rnd();
    uint32_t whole = crc32c(0, d, sizeof d);
    CHECK_EQ(whole, ref_crc32c(0, d, sizeof d));
    for (size_t cut = 0; cut <= sizeof d; cut++) {
        uint32_t c = crc32c(0, d, cut);
        c = crc32c(c, d + cut, sizeof d - cut);
        CHECK_EQ(c, whole);
    }
    /* three pieces, byte by byte */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof d; i++)
        c = crc32c(c, d + i, 1);
    CHECK_EQ(c, whole);
}

TEST(crc32c_matches_reference_on_random_data)
{
    uint8_t *buf = malloc(70000);
    CHECK(buf);
    for (size_t i = 0; i < 70000; i++)
        buf[i] = (uint8_t)rnd();
    for (int iter = 0; iter < 500; iter++) {
        size_t off = rnd() % 16; /* misaligned starts */
        size_t n = (rnd() % 4000) | 1; /* odd lengths */
        if (iter % 50 == 0)
            n = 65537;
        if (off + n > 70000)
            n = 70000 - off;
        /* an exact-sized copy so a read past the end is caught by ASan */
        uint8_t *h = malloc(n);
        memcpy(h, buf + off, n);
        uint32_t seed = iter % 3 == 0 ? 0 : rnd();
        CHECK_EQ(crc32c(seed, h, n), ref_crc32c(seed, h, n));
        free(h);
    }
    for (size_t n = 0; n < 40; n++)
        CHECK_EQ(crc32c(0, buf + 3, n), ref_crc32c(0, buf + 3, n));
    free(buf);
}

TEST(crc32c_detects_single_bit_flip)
{
    uint8_t d[61];
    for (size_t i = 0; i < sizeof d; i++)
        d[i] = (uint8_t)rnd();
    uint32_t good = crc32c(0, d, sizeof d);
    for (size_t i = 0; i < sizeof d; i++)
        for (int bit = 0; bit < 8; bit++) {
            d[i] ^= (uint8_t)(1 << bit);
            CHECK(crc32c(0, d, sizeof d) != good);
            d[i] ^= (uint8_t)(1 << bit);
        }
    CHECK_EQ(crc32c(0, d, sizeof d), good);
}
