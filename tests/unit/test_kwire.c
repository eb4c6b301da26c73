/* test_kwire.c: the wire primitives (protocol/kwire.h): bounded readers
 * with sticky errors, length prefixes (classic, compact, null), array
 * counts checked before allocation, tagged-field helpers, and byte-exact
 * writers.  Inputs are exactly-sized heap copies so ASan sees over-reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/kwire.h"
#include "test.h"

static uint8_t *heap(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    CHECK(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Points r at an exactly-sized heap copy of p[0..n); the copy made by the
 * previous call is freed (call rd_done at the end of a test). */
static uint8_t *rd_buf;
static void rd(struct kread *r, const void *p, size_t n)
{
    free(rd_buf);
    rd_buf = heap(p, n);
    kread_init(r, rd_buf, n);
}
static void rd_done(void)
{
    free(rd_buf);
    rd_buf = NULL;
}
#define RD(r, ...)                                                \
    do {                                                          \
        static const uint8_t b_[] = {__VA_ARGS__};                \
        rd(r, b_, sizeof b_);                                     \
    } while (0)

static void expect_bytes(const struct obuf *w, const void *want, size_t n)
{
    if (w->len != n || memcmp(w->data, want, n) != 0) {
        fprintf(stderr, "  got %zu bytes:", w->len);
        for (size_t i = 0; i < w->len; i++)
            fprintf(stderr, " %02x", w->data[i]);
        fprintf(stderr, "\n");
    }
    CHECK_EQ(w->len, n);
    CHECK(memcmp(w->data, want, n) == 0);
}

TEST(kwire_fixed_width_readers)
{
    static const uint8_t b[] = {0x01, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfe,
                                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    uint8_t *h = heap(b, sizeof b);
    struct kread r;
    kread_init(&r, h, sizeof b);
    CHECK_EQ(kr_bool(&r), 1);
    CHECK_EQ(kr_int8(&r), -1);
    CHECK_EQ(kr_int16(&r), (int16_t)0xfe80);
    CHECK_EQ(kr_int32(&r), 0x000001ff);
    CHECK_EQ(kr_int32(&r), (int32_t)0xfffffe7f);
    CHECK_EQ(kr_uint16(&r), 0xffff);
    CHECK_EQ(kr_left(&r), 13);
    kr_float64(&r);
    CHECK_EQ(kr_left(&r), 5);
    CHECK_EQ(r.err, 0);
    CHECK(kr_int64(&r) == 0); /* 8 wanted, 5 left */
    CHECK_EQ(r.err, KR_ETRUNC);
    free(h);

    static const uint8_t f[] = {0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0};
    h = heap(f, sizeof f);
    kread_init(&r, h, sizeof f);
    CHECK(kr_float64(&r) == 1.0);
    CHECK(kr_int64(&r) == INT64_MIN);
    CHECK_EQ(r.err, 0);
    free(h);
}

TEST(kwire_sticky_truncation)
{
    static const uint8_t b[] = {0, 1, 2};
    uint8_t *h = heap(b, 3);
    struct kread r;
    kread_init(&r, h, 3);
    CHECK_EQ(kr_int16(&r), 1);
    CHECK_EQ(kr_int32(&r), 0); /* needs 4, has 1 */
    CHECK_EQ(r.err, KR_ETRUNC);
    CHECK_EQ(kr_left(&r), 0);
    /* later calls do nothing, even ones that would fit */
    CHECK_EQ(kr_int8(&r), 0);
    CHECK_EQ(kr_uvarint(&r), 0);
    kstr s = kr_str(&r, true, true);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(r.err, KR_ETRUNC);
    CHECK(r.p == h + 2); /* nothing consumed after the error */
    kuuid u = kr_uuid(&r);
    CHECK(kuuid_is_zero(&u));
    /* an empty frame */
    kread_init(&r, h, 0);
    CHECK_EQ(kr_u8(&r), 0);
    CHECK_EQ(r.err, KR_ETRUNC);
    free(h);
}


TEST(kwire_uvarint_limits)
{
    struct kread r;
    RD(&r, 0xff, 0xff, 0xff, 0xff, 0x07);
    CHECK_EQ(kr_uvarint(&r), 0x7fffffff);
    CHECK_EQ(r.err, 0);
    /* 2^31 does not fit 31 bits */
    RD(&r, 0x80, 0x80, 0x80, 0x80, 0x08);
    CHECK_EQ(kr_uvarint(&r), 0);
    CHECK_EQ(r.err, KR_EINVAL);
    /* over-long: six bytes */
    RD(&r, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
    kr_uvarint(&r);
    CHECK_EQ(r.err, KR_EINVAL);
    /* five continuation bytes and no more */
    RD(&r, 0x80, 0x80, 0x80, 0x80, 0x80);
    kr_uvarint(&r);
    CHECK_EQ(r.err, KR_EINVAL);
    /* truncated */
    RD(&r, 0x80, 0x80);
    kr_uvarint(&r);
    CHECK_EQ(r.err, KR_ETRUNC);
    RD(&r, 0x96, 0x01, 0x00);
    CHECK_EQ(kr_uvarint(&r), 150);
    CHECK_EQ(kr_uvarint(&r), 0);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(kr_left(&r), 0);
    rd_done();
}

TEST(kwire_classic_strings)
{
    struct kread r;
    RD(&r, 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00, 0xff, 0xff);
    kstr s = kr_str(&r, false, false);
    CHECK(kstr_eq(s, "abc"));
    s = kr_str(&r, false, false);
    CHECK_EQ(s.len, 0);
    CHECK(kstr_eq(s, ""));
    s = kr_str(&r, false, true);
    CHECK_EQ(s.len, -1);
    CHECK(s.ptr == NULL);
    CHECK(!kstr_eq(s, ""));
    CHECK_EQ(r.err, 0);
    /* -1 where null is not allowed */
    RD(&r, 0xff, 0xff);
    kr_str(&r, false, false);
    CHECK_EQ(r.err, KR_EINVAL);
    /* a negative length other than -1 */
    RD(&r, 0xff, 0xfe, 'x', 'x');
    s = kr_str(&r, false, true);
    CHECK_EQ(r.err, KR_EINVAL);
    CHECK_EQ(s.len, 0);
    RD(&r, 0x80, 0x00);
    kr_str(&r, false, true);
    CHECK_EQ(r.err, KR_EINVAL);
    /* longer than the frame */
    RD(&r, 0x00, 0x04, 'a', 'b', 'c');
    s = kr_str(&r, false, false);
    CHECK_EQ(r.err, KR_ETRUNC);
    CHECK_EQ(s.len, 0);
    /* bytes use an int32 length */
    RD(&r, 0x00, 0x00, 0x00, 0x02, 9, 8, 0xff, 0xff, 0xff, 0xff);
    kbytes b = kr_bytes(&r, false, false);
    CHECK_EQ(b.len, 2);
    CHECK_EQ(b.ptr[0], 9);
    CHECK_EQ(b.ptr[1], 8);
    b = kr_bytes(&r, false, true);
    CHECK_EQ(b.len, -1);
    CHECK(b.ptr == NULL);
    CHECK_EQ(r.err, 0);
    RD(&r, 0xff, 0xff, 0xff, 0xfe);
    kr_bytes(&r, false, true);
    CHECK_EQ(r.err, KR_EINVAL);
    RD(&r, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3);
    kr_bytes(&r, false, true);
    CHECK_EQ(r.err, KR_ETRUNC);
    rd_done();
}

TEST(kwire_compact_strings)
{
    struct kread r;
    /* compact: length + 1, 0 is null */
    RD(&r, 0x04, 'x', 'y', 'z', 0x01, 0x00);
    kstr s = kr_str(&r, true, false);
    CHECK(kstr_eq(s, "xyz"));
    s = kr_str(&r, true, false);
    CHECK_EQ(s.len, 0);
    s = kr_str(&r, true, true);
    CHECK_EQ(s.len, -1);
    CHECK_EQ(r.err, 0);
    RD(&r, 0x00);
    kr_str(&r, true, false);
    CHECK_EQ(r.err, KR_EINVAL);
    RD(&r, 0x05, 'a', 'b', 'c');
    kr_str(&r, true, true);
    CHECK_EQ(r.err, KR_ETRUNC);
    /* compact bytes and records */
    RD(&r, 0x03, 0xaa, 0xbb, 0x00);
    kbytes b = kr_bytes(&r, true, false);
    CHECK_EQ(b.len, 2);
    CHECK_EQ(b.ptr[1], 0xbb);
    krecords rec = kr_records(&r, true, true);
    CHECK_EQ(rec.len, -1);
    CHECK_EQ(rec.fd, -1);
    CHECK_EQ(r.err, 0);
    rd_done();
}

TEST(kwire_array_len_checked_before_allocation)
{
    struct kread r;
    RD(&r, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0);
    CHECK_EQ(kr_array_len(&r, false, false, 4), 0);
    CHECK_EQ(r.err, KR_ETRUNC);
    /* exactly enough bytes for count x min_elem */
    RD(&r, 0x00, 0x00, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK_EQ(kr_array_len(&r, false, false, 4), 2);
    CHECK_EQ(r.err, 0);
    RD(&r, 0x00, 0x00, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7);
    kr_array_len(&r, false, false, 4);
    CHECK_EQ(r.err, KR_ETRUNC);
    /* null */
    RD(&r, 0xff, 0xff, 0xff, 0xff);
    CHECK_EQ(kr_array_len(&r, false, true, 4), -1);
    CHECK_EQ(r.err, 0);
    RD(&r, 0xff, 0xff, 0xff, 0xff);
    kr_array_len(&r, false, false, 4);
    CHECK_EQ(r.err, KR_EINVAL);
    RD(&r, 0xff, 0xff, 0xff, 0xfe);
    kr_array_len(&r, false, true, 4);
    CHECK_EQ(r.err, KR_EINVAL);
    /* compact: N+1 */
    RD(&r, 0x00);
    CHECK_EQ(kr_array_len(&r, true, true, 1), -1);
    RD(&r, 0x01);
    CHECK_EQ(kr_array_len(&r, true, false, 1), 0);
    CHECK_EQ(r.err, 0);
    RD(&r, 0x00);
    kr_array_len(&r, true, false, 1);
    CHECK_EQ(r.err, KR_EINVAL);
    RD(&r, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00);
    kr_array_len(&r, true, false, 1);
    CHECK_EQ(r.err, KR_ETRUNC);
    /* min_elem 0 is treated as 1 */
    RD(&r, 0x00, 0x00, 0x00, 0x03, 0, 0);
    kr_array_len(&r, false, false, 0);
    CHECK_EQ(r.err, KR_ETRUNC);
    rd_done();
}

TEST(kwire_tag_count_and_sub)
{
    struct kread r;
    /* two tags claimed, only 3 bytes follow: each needs at least 2 */
    RD(&r, 0x02, 0x00, 0x00, 0x01);
    CHECK_EQ(kr_tag_count(&r), 0);
    CHECK_EQ(r.err, KR_ETRUNC);
    RD(&r, 0x02, 0x00, 0x00, 0x01, 0x00);
    CHECK_EQ(kr_tag_count(&r), 2);
    CHECK_EQ(r.err, 0);
    RD(&r, 0x05, 'a', 'b', 'c', 'd', 'e', 'f');
    struct kread sub;
    uint32_t n = kr_uvarint(&r);
    CHECK_EQ(kr_sub(&r, n, &sub), 0);
    CHECK_EQ(kr_left(&sub), 5);
    CHECK_EQ(kr_u8(&sub), 'a');
    CHECK_EQ(kr_left(&r), 1);
    CHECK_EQ(kr_u8(&r), 'f');
    /* the sub-reader stops at its own end */
    kr_int32(&sub);
    CHECK_EQ(kr_u8(&sub), 0);
    CHECK_EQ(sub.err, KR_ETRUNC);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(kr_sub(&r, 1, &sub), -1);
    CHECK_EQ(r.err, KR_ETRUNC);
    rd_done();
}

TEST(kwire_writers_byte_exact)
{
    struct obuf w;
    obuf_init(&w);
    kw_bool(&w, true);
    kw_int8(&w, -2);
    kw_int16(&w, -3);
    kw_int32(&w, 0x01020304);
    kw_int64(&w, -1);
    kw_uint16(&w, 0xbeef);
    kw_uint32(&w, 0xcafebabe);
    kw_float64(&w, 1.0);
    static const uint8_t want1[] = {1, 0xfe, 0xff, 0xfd, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    expect_bytes(&w, want1, sizeof want1);
    obuf_reset(&w);

    kw_str(&w, kstr_c("ab"), false, false);
    kw_str(&w, kstr_c(NULL), false, true);
    kw_str(&w, kstr_c(NULL), false, false); /* null where not allowed: empty */
    kw_str(&w, kstr_c("a"), true, false);
    kw_str(&w, kstr_c(NULL), true, true);
    kw_str(&w, kstr_c(""), true, true);
    static const uint8_t want2[] = {0, 2, 'a', 'b', 0xff, 0xff, 0, 0, 0x02, 'a', 0x00, 0x01};
    expect_bytes(&w, want2, sizeof want2);
    obuf_reset(&w);

    kw_bytes(&w, (kbytes){(const uint8_t *)"\x09", 1}, false, false);
    kw_bytes(&w, (kbytes){NULL, -1}, false, true);
    kw_bytes(&w, (kbytes){NULL, -1}, true, true);
    kw_bytes(&w, (kbytes){(const uint8_t *)"\x07\x08", 2}, true, false);
    static const uint8_t want3[] = {0, 0, 0, 1, 9, 0xff, 0xff, 0xff, 0xff, 0x00, 0x03, 7, 8};
    expect_bytes(&w, want3, sizeof want3);
    obuf_reset(&w);

    kw_array_len(&w, 3, false, false);
    kw_array_len(&w, -1, false, true);
    kw_array_len(&w, -1, false, false);
    kw_array_len(&w, 3, true, false);
    kw_array_len(&w, -1, true, true);
    kw_array_len(&w, 200, true, false);
    kw_uvarint(&w, 0x7fffffff);
    static const uint8_t want4[] = {0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x04, 0x00,
                                    0xc9, 0x01, 0xff, 0xff, 0xff, 0xff, 0x07};
    expect_bytes(&w, want4, sizeof want4);
    obuf_reset(&w);

    kuuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(i + 1);
    kw_uuid(&w, u);
    CHECK_EQ(w.len, 16);
    CHECK_EQ(w.data[15], 16);
    obuf_free(&w);
}

TEST(kwire_tagged_field_helpers)
{
    struct obuf w;
    obuf_init(&w);
    kw_uvarint(&w, 2); /* two tags */
    size_t m = kw_tag_begin(&w, 0);
    kw_int32(&w, 7);
    kw_tag_end(&w, m);
    /* a value of 200 bytes needs a two-byte size varint */
    m = kw_tag_begin(&w, 300);
    for (int i = 0; i < 200; i++)
        kw_int8(&w, (int8_t)i);
    kw_tag_end(&w, m);
    CHECK_EQ(w.len, 1 + (1 + 1 + 4) + (2 + 2 + 200));
    static const uint8_t head[] = {0x02, 0x00, 0x04, 0, 0, 0, 7, 0xac, 0x02, 0xc8, 0x01, 0, 1, 2};
    CHECK(memcmp(w.data, head, sizeof head) == 0);
    CHECK_EQ(w.data[w.len - 1], 199);
    /* read back */
    struct kread r;
    kread_init(&r, w.data, w.len);
    CHECK_EQ(kr_tag_count(&r), 2);
    CHECK_EQ(kr_uvarint(&r), 0);
    struct kread sub;
    CHECK_EQ(kr_sub(&r, kr_uvarint(&r), &sub), 0);
    CHECK_EQ(kr_int32(&sub), 7);
    CHECK_EQ(kr_uvarint(&r), 300);
    CHECK_EQ(kr_sub(&r, kr_uvarint(&r), &sub), 0);
    CHECK_EQ(kr_left(&sub), 200);
    CHECK_EQ(kr_left(&r), 0);
    CHECK_EQ(r.err, 0);
    obuf_free(&w);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

TEST(kwire_records_memory_and_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/records", test_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    struct obuf w;
    obuf_init(&w);
    krecords mem = {(const uint8_t *)"abc", 3, -1, 0};
    kw_records(&w, &mem, false, true);
    krecords file = {NULL, 1000, fd, 4096};
    kw_records(&w, &file, true, true);
    krecords null = {NULL, -1, -1, 0};
    kw_records(&w, &null, false, true);
    kw_records(&w, &null, true, false); /* not nullable: empty */
    static const uint8_t want[] = {0, 0, 0, 3, 'a', 'b', 'c', 0xe9, 0x07, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_bytes(&w, want, sizeof want);
    CHECK_EQ(w.nfiles, 1);
    CHECK_EQ(w.files[0].at, 9);
    CHECK_EQ(w.files[0].off, 4096);
    CHECK_EQ(w.files[0].len, 1000);
    CHECK(w.files[0].fd != fd); /* a dup: the caller keeps its own */
    CHECK_EQ(obuf_wire_len(&w), sizeof want + 1000);
    int dupfd = w.files[0].fd;
    obuf_free(&w);
    CHECK(!fd_is_open(dupfd));
    CHECK(fd_is_open(fd));
    close(fd);
}

TEST(kwire_kstr_helpers)
{
    kstr a = kstr_c("topic");
    CHECK_EQ(a.len, 5);
    CHECK(kstr_eq(a, "topic"));
    CHECK(!kstr_eq(a, "topi"));
    CHECK(!kstr_eq(a, "topics"));
    kstr n = kstr_c(NULL);
    CHECK_EQ(n.len, -1);
    CHECK(!kstr_eq(n, ""));
    kuuid z = {{0}};
    CHECK(kuuid_is_zero(&z));
    z.b[15] = 1;
    CHECK(!kuuid_is_zero(&z));
}

/* The header promises a zero value on any violation.  An int64 that runs
 * out after its first four bytes must not return those bytes shifted up. */
TEST(kwire_truncated_int64_reads_zero)
{
    struct kread r;
    RD(&r, 0x12, 0x34, 0x56, 0x78, 0x9a);
    int64_t v = kr_int64(&r);
    CHECK_EQ(r.err, KR_ETRUNC);
    CHECK_EQ(v, 0);
    RD(&r, 0x3f, 0xf0, 0, 0, 0);
    double d = kr_float64(&r);
    CHECK_EQ(r.err, KR_ETRUNC);
    CHECK(d == 0.0);
    rd_done();
}
