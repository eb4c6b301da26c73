/* test_kmsg.c: the generated Kafka codecs (protocol/kmsg.c).  For each API
 * and version under test a message with distinct values in every field is
 * encoded, decoded from an exactly-sized heap copy into a fresh arena, and
 * every field compared: fields the version carries must come back equal,
 * fields it does not carry must come back as the spec's default.  Each
 * round trip also checks that the decoder consumed the whole encoding,
 * that re-encoding gives the same bytes, and that every truncation fails
 * cleanly (run under ASan to catch reads past the buffer).  Field versions
 * follow shared/kafka-protocol/message/<Name>.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "protocol/kmsg.h"
#include "test.h"

/* ---- a generic round-trip driver ---------------------------------------- */

struct codec {
    const char *name;
    void (*enc)(struct obuf *w, int16_t v, const void *m);
    int (*dec)(struct kread *r, struct arena *a, int16_t v, void *m);
    size_t size;
};

#define DEF_CODEC(T)                                                                \
    static void enc_##T(struct obuf *w, int16_t v, const void *m)                   \
    {                                                                               \
        T##_encode(w, v, (const struct T *)m);                                      \
    }                                                                               \
    static int dec_##T(struct kread *r, struct arena *a, int16_t v, void *m)        \
    {                                                                               \
        return T##_decode(r, a, v, (struct T *)m);                                  \
    }                                                                               \
    static const struct codec codec_##T = {#T, enc_##T, dec_##T, sizeof(struct T)};

DEF_CODEC(ApiVersionsRequest)
DEF_CODEC(ApiVersionsResponse)
DEF_CODEC(MetadataRequest)
DEF_CODEC(MetadataResponse)
DEF_CODEC(ProduceRequest)
DEF_CODEC(ProduceResponse)
DEF_CODEC(FetchRequest)
DEF_CODEC(FetchResponse)
DEF_CODEC(CreateTopicsRequest)
DEF_CODEC(CreateTopicsResponse)
DEF_CODEC(DescribeConfigsRequest)
DEF_CODEC(DescribeConfigsResponse)
DEF_CODEC(JoinGroupRequest)
DEF_CODEC(JoinGroupResponse)
DEF_CODEC(OffsetCommitRequest)
DEF_CODEC(OffsetCommitResponse)
DEF_CODEC(OffsetFetchRequest)
DEF_CODEC(OffsetFetchResponse)
DEF_CODEC(ListOffsetsRequest)
DEF_CODEC(ListOffsetsResponse)

/* One round trip's state: the wire bytes, the exactly-sized frame the
 * decoded views point into, and the arena holding the decoded arrays. */
struct rt {
    struct obuf wire;
    uint8_t *frame;
    size_t n;
    struct arena arena;
    void *msg;
};

static void dump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s (%zu bytes):", what, n);
    for (size_t i = 0; i < n && i < 400; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Every proper prefix of the encoding must be refused with an error set,
 * without touching memory past the prefix. */
static void check_truncations(const struct codec *c, int16_t v, const uint8_t *p, size_t n)
{
    void *m = malloc(c->size);
    for (size_t k = 0; k < n; k++) {
        uint8_t *t = malloc(k ? k : 1);
        memcpy(t, p, k);
        struct kread r;
        kread_init(&r, t, k);
        struct arena a;
        arena_init(&a);
        int rc = c->dec(&r, &a, v, m);
        if (rc != -1 || r.err == 0)
            fprintf(stderr, "  %s v%d: prefix of %zu/%zu bytes gave rc %d err %d\n", c->name, v, k, n, rc,
                    r.err);
        CHECK_EQ(rc, -1);
        CHECK(r.err != 0);
        arena_free(&a);
        free(t);
    }
    free(m);
}

/* Encodes in at version v, decodes it back and returns the decoded message
 * (valid until rt_free).  Checks full consumption, identical re-encoding
 * and all truncations. */
static void *rt_run(struct rt *t, const struct codec *c, int16_t v, const void *in)
{
    obuf_init(&t->wire);
    c->enc(&t->wire, v, in);
    CHECK_EQ(t->wire.oom, 0);
    CHECK_EQ(t->wire.nfiles, 0);
    t->n = t->wire.len;
    t->frame = malloc(t->n ? t->n : 1);
    memcpy(t->frame, t->wire.data, t->n);
    arena_init(&t->arena);
    t->msg = malloc(c->size);
    memset(t->msg, 0xa5, c->size); /* decode must initialise everything */
    struct kread r;
    kread_init(&r, t->frame, t->n);
    int rc = c->dec(&r, &t->arena, v, t->msg);
    if (rc != 0 || r.p != r.end) {
        fprintf(stderr, "  %s v%d: rc %d err %d, %zu bytes left\n", c->name, v, rc, r.err,
                (size_t)(r.end - r.p));
        dump("encoding", t->frame, t->n);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(r.err, 0);
    CHECK(r.p == r.end);
    struct obuf again;
    obuf_init(&again);
    c->enc(&again, v, t->msg);
    if (again.len != t->n || memcmp(again.data, t->frame, t->n) != 0) {
        fprintf(stderr, "  %s v%d: re-encoding differs\n", c->name, v);
        dump("first", t->frame, t->n);
        dump("again", again.data, again.len);
    }
    CHECK_EQ(again.len, t->n);
    CHECK(memcmp(again.data, t->frame, t->n) == 0);
    obuf_free(&again);
    check_truncations(c, v, t->frame, t->n);
    return t->msg;
}

static void rt_free(struct rt *t)
{
    obuf_free(&t->wire);
    free(t->frame);
    free(t->msg);
    arena_free(&t->arena);
    memset(t, 0, sizeof *t);
}

/* ---- field comparison helpers ------------------------------------------- */

static void check_str(kstr got, kstr want, const char *what, int line)
{
    int ok = got.len == want.len && (got.len <= 0 || memcmp(got.ptr, want.ptr, (size_t)got.len) == 0);
    if (!ok) {
        fprintf(stderr, "  line %d: %s: got '%.*s' (len %d), want '%.*s' (len %d)\n", line, what,
                got.len > 0 ? got.len : 0, got.ptr ? got.ptr : "", got.len, want.len > 0 ? want.len : 0,
                want.ptr ? want.ptr : "", want.len);
        exit(1);
    }
}

static void check_bytes(kbytes got, kbytes want, const char *what, int line)
{
    int ok = got.len == want.len && (got.len <= 0 || memcmp(got.ptr, want.ptr, (size_t)got.len) == 0);
    if (!ok) {
        fprintf(stderr, "  line %d: %s: bytes differ (len %d vs %d)\n", line, what, got.len, want.len);
        exit(1);
    }
}

/* got/want are the decoded and original structs in scope. */
#define EQ(f) CHECK_EQ(got->f, want->f)
#define DEF(f, d) CHECK_EQ(got->f, d)
#define SEQ(f) check_str(got->f, want->f, #f, __LINE__)
#define SIS(f, s) check_str(got->f, kstr_c(s), #f, __LINE__)
#define BEQ(f) check_bytes(got->f, want->f, #f, __LINE__)
#define UEQ(f) CHECK(memcmp(got->f.b, want->f.b, 16) == 0)
#define UZERO(f) CHECK(kuuid_is_zero(&got->f))
/* present in this version: equal; absent: the default */
#define VEQ(cond, f, d)     \
    do {                    \
        if (cond)           \
            EQ(f);          \
        else                \
            DEF(f, d);      \
    } while (0)
#define VSEQ(cond, f, s)    \
    do {                    \
        if (cond)           \
            SEQ(f);         \
        else                \
            SIS(f, s);      \
    } while (0)

static kuuid uuid_of(uint8_t seed)
{
    kuuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(seed + i * 7);
    return u;
}

static void expect_wire(const struct obuf *w, const uint8_t *want, size_t n)
{
    if (w->len != n || memcmp(w->data, want, n) != 0) {
        dump("got", w->data, w->len);
        dump("want", want, n);
    }
    CHECK_EQ(w->len, n);
    CHECK(memcmp(w->data, want, n) == 0);
}

/* Decodes bytes (copied to an exact heap block) and returns rc; *err gets
 * the reader's error. */
static int decode_bytes(const struct codec *c, int16_t v, const uint8_t *p, size_t n, void *m,
                        struct arena *a, int *err, uint8_t **keep)
{
    uint8_t *h = malloc(n ? n : 1);
    memcpy(h, p, n);
    struct kread r;
    kread_init(&r, h, n);
    int rc = c->dec(&r, a, v, m);
    *err = r.err;
    if (keep)
        *keep = h;
    else
        free(h);
    return rc;
}
