/* test_compress.c: the codec layer (protocol/compress.c): round trips of
 * every codec, xerial-framed snappy, compression bombs against the output
 * cap, and truncated, corrupt and trailing-garbage input. */
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "test.h"

#define MiB (1024u * 1024u)

/* Deterministic test data that compresses somewhat but not absurdly. */
static uint8_t *make_data(size_t n, unsigned seed)
{
    uint8_t *d = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (i % 64 < 40) ? (uint8_t)("shopstream order placed "[i % 24]) : (uint8_t)(x >> 24);
    }
    return d;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST(compress_roundtrip_every_codec)
{
    static const size_t sizes[] = {0, 1, 100, 65536, 65537, 300000};
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            uint8_t *d = make_data(n, (unsigned)(codec * 10 + si));
            struct obuf c, u;
            obuf_init(&c);
            obuf_init(&u);
            CHECK_EQ(compress_compress(codec, d, n, &c), 0);
            if (codec != COMPRESS_NONE && n >= 65536)
                CHECK(c.len < n); /* it did compress */
            /* Exactly at the cap works. */
            CHECK_EQ(compress_decompress(codec, c.data, c.len, &u, n), 0);
            CHECK_EQ(u.len, n);
            CHECK(n == 0 || memcmp(u.data, d, n) == 0);
            CHECK(u.cap <= (n > 0 ? n : 16384)); /* never grown past the cap */
            /* One byte under the cap is refused, and out is left as it was. */
            if (n > 0) {
                obuf_reset(&u);
                obuf_put(&u, "xy", 2);
                CHECK_EQ(compress_decompress(codec, c.data, c.len, &u, n - 1), COMPRESS_ETOOBIG);
                CHECK_EQ(u.len, 2);
                CHECK(memcmp(u.data, "xy", 2) == 0);
            }
            obuf_free(&c);
            obuf_free(&u);
            free(d);
        }
    }
}

TEST(compress_appends_to_existing_output)
{
    uint8_t *d = make_data(5000, 7);
    struct obuf c, u;
    obuf_init(&c);
    obuf_init(&u);
    CHECK_EQ(compress_compress(COMPRESS_LZ4, d, 5000, &c), 0);
    obuf_put(&u, "prefix", 6);
    CHECK_EQ(compress_decompress(COMPRESS_LZ4, c.data, c.len, &u, 5000), 0);
    CHECK_EQ(u.len, 5006);
    CHECK(memcmp(u.data, "prefix", 6) == 0);
    CHECK(memcmp(u.data + 6, d, 5000) == 0);
    obuf_free(&c);
    obuf_free(&u);
    free(d);
}

TEST(compress_unknown_codec)
{
    struct obuf o;
    obuf_init(&o);
    for (int codec = 5; codec <= 7; codec++) {
        CHECK_EQ(compress_decompress(codec, (const uint8_t *)"abc", 3, &o, 100), COMPRESS_EUNSUPPORTED);
        CHECK_EQ(compress_compress(codec, (const uint8_t *)"abc", 3, &o), COMPRESS_EUNSUPPORTED);
    }
    CHECK_EQ(compress_decompress(-1, (const uint8_t *)"abc", 3, &o, 100), COMPRESS_EUNSUPPORTED);
    CHECK_EQ(o.len, 0);
    CHECK(strcmp(compress_codec_name(COMPRESS_ZSTD), "zstd") == 0);
    CHECK(strcmp(compress_codec_name(9), "unknown") == 0);
    obuf_free(&o);
}

/* Builds a xerial stream of data split into blocks of blk bytes. */
static void xerial_encode(struct obuf *o, const uint8_t *d, size_t n, size_t blk)
{
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    obuf_put(o, hdr, sizeof hdr);
    for (size_t pos = 0; pos < n; pos += blk) {
        size_t len = n - pos < blk ? n - pos : blk;
        size_t clen = snappy_max_compressed_length(len);
        char *tmp = malloc(clen);
        CHECK(snappy_compress((const char *)d + pos, len, tmp, &clen) == SNAPPY_OK);
        obuf_put_be32(o, (uint32_t)clen);
        obuf_put(o, tmp, clen);
        free(tmp);
    }
}

TEST(compress_snappy_xerial)
{
    size_t n = 100000;
    uint8_t *d = make_data(n, 3);
    struct obuf x, u;
    obuf_init(&x);
    obuf_init(&u);
    xerial_encode(&x, d, n, 32768); /* four blocks, as the Java client writes */
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, x.len, &u, n), 0);
    CHECK_EQ(u.len, n);
    CHECK(memcmp(u.data, d, n) == 0);

    /* The cap applies across blocks. */
    obuf_reset(&u);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, x.len, &u, n - 1), COMPRESS_ETOOBIG);
    CHECK_EQ(u.len, 0);

    /* A header alone is an empty stream; a short header is corrupt. */
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, 16, &u, n), 0);
    CHECK_EQ(u.len, 0);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, 12, &u, n), COMPRESS_ECORRUPT);

    /* A block length past the end, or zero, is corrupt. */
    struct obuf bad;
    obuf_init(&bad);
    obuf_put(&bad, x.data, x.len);
    bad.data[16] = 0x7f;
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, bad.data, bad.len, &u, n), COMPRESS_ECORRUPT);
    memset(bad.data + 16, 0, 4);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, bad.data, bad.len, &u, n), COMPRESS_ECORRUPT);
    /* A partial block-length field at the end is corrupt. */
    obuf_reset(&bad);
    obuf_put(&bad, x.data, x.len);
    obuf_put(&bad, "\0\0", 2);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, bad.data, bad.len, &u, n), COMPRESS_ECORRUPT);
    CHECK_EQ(u.len, 0);

    obuf_free(&bad);
    obuf_free(&x);
    obuf_free(&u);
    free(d);
}

/* Every proper prefix of a compressed stream is rejected without a crash. */
TEST(compress_truncated_input_every_length)
{
    size_t n = 20000;
    uint8_t *d = make_data(n, 11);
    for (int codec = COMPRESS_GZIP; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf c, u;
        obuf_init(&c);
        obuf_init(&u);
        CHECK_EQ(compress_compress(codec, d, n, &c), 0);
        for (size_t len = 0; len < c.len; len++) {
            /* A private copy, so ASan sees any read past len. */
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, c.data, len);
            int rc = compress_decompress(codec, cut, len, &u, 2 * n);
            if (rc != COMPRESS_ECORRUPT)
                fprintf(stderr, "  codec %d prefix %zu: rc %d\n", codec, len, rc);
            CHECK_EQ(rc, COMPRESS_ECORRUPT);
            CHECK_EQ(u.len, 0);
            free(cut);
        }
        obuf_free(&c);
        obuf_free(&u);
    }
    /* Xerial has no end marker: prefixes ending between blocks are valid
     * shorter streams; all others must be rejected. */
    struct obuf x, u;
    obuf_init(&x);
    obuf_init(&u);
    xerial_encode(&x, d, n, 8192);
    for (size_t len = 0; len < x.len; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, x.data, len);
        obuf_reset(&u);
        int rc = compress_decompress(COMPRESS_SNAPPY, cut, len, &u, 2 * n);
        CHECK(rc == 0 || rc == COMPRESS_ECORRUPT);
        if (rc == 0)
            CHECK(u.len % 8192 == 0 && memcmp(u.data, d, u.len) == 0);
        free(cut);
    }
    obuf_free(&x);
    obuf_free(&u);
    free(d);
}

/* Garbage and bit flips: an error or some output, never a crash, and on
 * error the output is untouched. */
TEST(compress_corrupt_input)
{
    size_t n = 20000;
    uint8_t *d = make_data(n, 5);
    uint8_t *junk = make_data(4096, 99);
    for (int codec = COMPRESS_GZIP; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf c, u;
        obuf_init(&c);
        obuf_init(&u);
        obuf_put(&u, "keep", 4);
        CHECK_EQ(compress_decompress(codec, junk, 4096, &u, 1 << 20), COMPRESS_ECORRUPT);
        CHECK_EQ(u.len, 4);
        CHECK_EQ(compress_compress(codec, d, n, &c), 0);
        for (size_t i = 0; i < c.len; i += 7) {
            uint8_t *m = malloc(c.len);
            memcpy(m, c.data, c.len);
            m[i] ^= 0x5a;
            u.len = 4;
            int rc = compress_decompress(codec, m, c.len, &u, 2 * n);
            CHECK(rc == 0 || rc == COMPRESS_ECORRUPT || rc == COMPRESS_ETOOBIG);
            if (rc)
                CHECK_EQ(u.len, 4);
            /* gzip carries a CRC-32 and a length: a flip is always caught
             * (except in the header's mtime, flags and OS bytes 4-9). */
            if (codec == COMPRESS_GZIP && i >= 10)
                CHECK(rc != 0);
            free(m);
        }
        obuf_free(&c);
        obuf_free(&u);
    }
    free(junk);
    free(d);
}

TEST(compress_gzip_members_and_trailing_garbage)
{
    struct obuf c, u;
    obuf_init(&c);
    obuf_init(&u);
    CHECK_EQ(compress_compress(COMPRESS_GZIP, (const uint8_t *)"hello ", 6, &c), 0);
    CHECK_EQ(compress_compress(COMPRESS_GZIP, (const uint8_t *)"world", 5, &c), 0);
    CHECK_EQ(compress_decompress(COMPRESS_GZIP, c.data, c.len, &u, 100), 0);
    CHECK_EQ(u.len, 11);
    CHECK(memcmp(u.data, "hello world", 11) == 0);
    obuf_put(&c, "\0\0\0", 3);
    obuf_reset(&u);
    CHECK_EQ(compress_decompress(COMPRESS_GZIP, c.data, c.len, &u, 100), COMPRESS_ECORRUPT);
    CHECK_EQ(u.len, 0);

    /* A zlib-wrapped stream is accepted as well. */
    uLongf zl = compressBound(11);
    uint8_t zb[64];
    zl = sizeof zb;
    CHECK(compress2(zb, &zl, (const Bytef *)"hello world", 11, 6) == Z_OK);
    CHECK_EQ(compress_decompress(COMPRESS_GZIP, zb, zl, &u, 100), 0);
    CHECK_EQ(u.len, 11);
    obuf_free(&c);
    obuf_free(&u);
}

TEST(compress_zstd_and_lz4_concatenated_frames)
{
    for (int codec = COMPRESS_LZ4; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf c, u;
        obuf_init(&c);
        obuf_init(&u);
        CHECK_EQ(compress_compress(codec, (const uint8_t *)"first,", 6, &c), 0);
        CHECK_EQ(compress_compress(codec, (const uint8_t *)"second", 6, &c), 0);
        CHECK_EQ(compress_decompress(codec, c.data, c.len, &u, 100), 0);
        CHECK_EQ(u.len, 12);
        CHECK(memcmp(u.data, "first,second", 12) == 0);
        /* Garbage after the last frame is rejected. */
        obuf_put(&c, "xyzw", 4);
        obuf_reset(&u);
        CHECK_EQ(compress_decompress(codec, c.data, c.len, &u, 100), COMPRESS_ECORRUPT);
        obuf_free(&c);
        obuf_free(&u);
    }
}

/* Streams `total` zero bytes through a compressor in 1 MiB chunks, so the
 * bomb is made without ever holding its decompressed size in memory. */
static void bomb_zstd(struct obuf *o, size_t total, int pledge)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    CHECK(cc);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
    if (pledge)
        ZSTD_CCtx_setPledgedSrcSize(cc, total);
    uint8_t *zero = calloc(1, MiB);
    uint8_t buf[65536];
    for (size_t done = 0; done < total; done += MiB) {
        int last = done + MiB >= total;
        ZSTD_inBuffer in = {zero, MiB, 0};
        size_t rem;
        do {
            ZSTD_outBuffer out = {buf, sizeof buf, 0};
            rem = ZSTD_compressStream2(cc, &out, &in, last ? ZSTD_e_end : ZSTD_e_continue);
            CHECK(!ZSTD_isError(rem));
            obuf_put(o, buf, out.pos);
        } while (last ? rem != 0 : in.pos < in.size);
    }
    free(zero);
    ZSTD_freeCCtx(cc);
}

static void bomb_gzip(struct obuf *o, size_t total)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    uint8_t *zero = calloc(1, MiB);
    uint8_t buf[65536];
    for (size_t done = 0; done < total; done += MiB) {
        int last = done + MiB >= total;
        zs.next_in = zero;
        zs.avail_in = MiB;
        int zr;
        do {
            zs.next_out = buf;
            zs.avail_out = sizeof buf;
            zr = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
            CHECK(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
            obuf_put(o, buf, sizeof buf - zs.avail_out);
        } while (last ? zr != Z_STREAM_END : zs.avail_in > 0);
    }
    deflateEnd(&zs);
    free(zero);
}

static void bomb_lz4(struct obuf *o, size_t total)
{
    LZ4F_cctx *cc;
    CHECK(!LZ4F_isError(LZ4F_createCompressionContext(&cc, LZ4F_VERSION)));
    uint8_t *zero = calloc(1, MiB);
    size_t cap = LZ4F_compressBound(MiB, NULL);
    uint8_t *buf = malloc(cap > 64 ? cap : 64);
    size_t r = LZ4F_compressBegin(cc, buf, cap, NULL);
    CHECK(!LZ4F_isError(r));
    obuf_put(o, buf, r);
    for (size_t done = 0; done < total; done += MiB) {
        r = LZ4F_compressUpdate(cc, buf, cap, zero, MiB, NULL);
        CHECK(!LZ4F_isError(r));
        obuf_put(o, buf, r);
    }
    r = LZ4F_compressEnd(cc, buf, cap, NULL);
    CHECK(!LZ4F_isError(r));
    obuf_put(o, buf, r);
    LZ4F_freeCompressionContext(cc);
    free(buf);
    free(zero);
}

/* Decompresses a bomb under a 16 MiB cap: it must be refused, the output
 * must not have grown past the cap, and the process must stay small. */
static void check_bomb(int codec, const struct obuf *bomb)
{
    struct obuf u;
    obuf_init(&u);
    size_t live0 = alloc_live_bytes();
    CHECK_EQ(compress_decompress(codec, bomb->data, bomb->len, &u, 16 * MiB), COMPRESS_ETOOBIG);
    CHECK_EQ(u.len, 0);
    CHECK(u.cap <= 16 * MiB);
    CHECK(alloc_live_bytes() - live0 <= 16 * MiB);
    obuf_free(&u);
    /* Far below the 1 GiB the bomb describes (ASan shadow included). */
    CHECK(max_rss_kib() < 400 * 1024);
}

TEST(compress_bomb_zstd_1gib)
{
    struct obuf b;
    obuf_init(&b);
    bomb_zstd(&b, 1024 * (size_t)MiB, 0);
    CHECK(b.len < 1 * MiB);
    check_bomb(COMPRESS_ZSTD, &b);
    /* With the content size in the frame header it is refused up front. */
    obuf_reset(&b);
    bomb_zstd(&b, 1024 * (size_t)MiB, 1);
    check_bomb(COMPRESS_ZSTD, &b);
    obuf_free(&b);
}

TEST(compress_bomb_gzip_1gib)
{
    struct obuf b;
    obuf_init(&b);
    bomb_gzip(&b, 1024 * (size_t)MiB);
    fprintf(stderr, "  gzip bomb: %zu bytes\n", b.len);
    CHECK(b.len < 8 * MiB);
    check_bomb(COMPRESS_GZIP, &b);
    obuf_free(&b);
}

TEST(compress_bomb_lz4_1gib)
{
    struct obuf b;
    obuf_init(&b);
    bomb_lz4(&b, 1024 * (size_t)MiB);
    check_bomb(COMPRESS_LZ4, &b);
    obuf_free(&b);
}

/* Snappy declares its length up front: a claim of 1 GiB is refused before
 * anything is allocated, raw or inside a xerial block. */
TEST(compress_bomb_snappy_declared_length)
{
    uint8_t raw[16];
    size_t k = 0;
    uint32_t claim = 1u << 30;
    while (claim >= 0x80) {
        raw[k++] = (uint8_t)(claim | 0x80);
        claim >>= 7;
    }
    raw[k++] = (uint8_t)claim;
    memset(raw + k, 0, sizeof raw - k);
    struct obuf u;
    obuf_init(&u);
    size_t live0 = alloc_live_bytes();
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, raw, sizeof raw, &u, 16 * MiB), COMPRESS_ETOOBIG);
    CHECK_EQ(alloc_live_bytes(), live0);
    CHECK_EQ(u.cap, 0);

    struct obuf x;
    obuf_init(&x);
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    obuf_put(&x, hdr, 16);
    obuf_put_be32(&x, sizeof raw);
    obuf_put(&x, raw, sizeof raw);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, x.len, &u, 16 * MiB), COMPRESS_ETOOBIG);
    CHECK_EQ(u.cap, 0);
    obuf_free(&x);
    obuf_free(&u);
}

/* Many small xerial blocks, each within the cap, add up past it. */
TEST(compress_bomb_snappy_many_blocks)
{
    size_t n = 4 * MiB;
    uint8_t *zero = calloc(1, 65536);
    struct obuf x;
    obuf_init(&x);
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    obuf_put(&x, hdr, 16);
    size_t clen = snappy_max_compressed_length(65536);
    char *blk = malloc(clen);
    CHECK(snappy_compress((const char *)zero, 65536, blk, &clen) == SNAPPY_OK);
    for (size_t done = 0; done < n; done += 65536) {
        obuf_put_be32(&x, (uint32_t)clen);
        obuf_put(&x, blk, clen);
    }
    struct obuf u;
    obuf_init(&u);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, x.len, &u, 1 * MiB), COMPRESS_ETOOBIG);
    CHECK(u.cap <= 1 * MiB);
    CHECK_EQ(compress_decompress(COMPRESS_SNAPPY, x.data, x.len, &u, n), 0);
    CHECK_EQ(u.len, n);
    free(blk);
    free(zero);
    obuf_free(&x);
    obuf_free(&u);
}

/* An allocation failure is reported as ENOMEM and leaves out as it was. */
TEST(compress_out_of_memory)
{
    uint8_t *d = make_data(100000, 1);
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf c, u;
        obuf_init(&c);
        obuf_init(&u);
        CHECK_EQ(compress_compress(codec, d, 100000, &c), 0);
        alloc_fail_after(0);
        int rc = compress_decompress(codec, c.data, c.len, &u, 200000);
        alloc_fail_after(-1);
        CHECK_EQ(rc, COMPRESS_ENOMEM);
        CHECK_EQ(u.len, 0);
        /* A buffer already out of memory is refused at once. */
        u.oom = 1;
        CHECK_EQ(compress_decompress(codec, c.data, c.len, &u, 200000), COMPRESS_ENOMEM);
        u.oom = 0;
        obuf_free(&c);
        obuf_free(&u);

        obuf_init(&c);
        alloc_fail_after(0);
        rc = compress_compress(codec, d, 100000, &c);
        alloc_fail_after(-1);
        CHECK_EQ(rc, COMPRESS_ENOMEM);
        obuf_free(&c);
    }
    free(d);
}
