/* test_kconn.c: the blocking client connection (client/kconn.c) against a
 * scripted peer in a thread on 127.0.0.1 (an ephemeral port): request
 * framing (header v1, and v2 for flexible versions), pipelined requests
 * answered in order, the response header v1 of flexible versions, version
 * negotiation, the frame limit, the in-flight limit, receiving out of
 * order, and reuse of the frame buffer.  The peer reads and writes with
 * libc only.  The DescribeLogDirs query built on kconn has its own tests
 * (test_logdirs.c), which also cover timeouts, closes and allocation
 * failures of the shared paths. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/kconn.h"
#include "common/alloc.h"
#include "protocol/kmsg.h"
#include "fake_peer.h"
#include "test.h"

/* ---- the scripted peer -------------------------------------------------- */

#define PEER_MAX 8
#define PEER_REQ_MAX 1024

/* It reads `reads` request frames, then sends `nanswers` frames: answer i
 * gets the correlation id of request i unless raw is set. */
struct peer {
    int lfd, port;
    int reads;
    const uint8_t *answers[PEER_MAX]; /* borrowed: the bytes after size and correlation id */
    size_t answer_len[PEER_MAX];
    int nanswers;
    int raw;                          /* send answers[0] as it is, nothing patched */
    uint8_t req[PEER_MAX][PEER_REQ_MAX]; /* payloads after the size */
    size_t reqlen[PEER_MAX];
    pthread_t th;
};



static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void answer(struct peer *pe, int fd, int i)
{
    uint8_t hdr[8];
    put32(hdr, (uint32_t)(4 + pe->answer_len[i]));
    memcpy(hdr + 4, pe->req[i] + 4, 4); /* the request's correlation id */
    fake_write_full(fd, hdr, 8);
    fake_write_full(fd, pe->answers[i], pe->answer_len[i]);
}

static void *peer_main(void *arg)
{
    struct peer *pe = arg;
    int fd = accept(pe->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < pe->reads; i++)
        if (fake_read_frame(fd, pe->req[i], PEER_REQ_MAX, &pe->reqlen[i]) < 0)
            goto out;
    if (pe->raw)
        fake_write_full(fd, pe->answers[0], pe->answer_len[0]);
    else
        for (int i = 0; i < pe->nanswers; i++)
            answer(pe, fd, i);
    fake_drain(fd);
out:
    close(fd);
    return NULL;
}

static void peer_start(struct peer *pe)
{
    pe->lfd = fake_listen(&pe->port);
    CHECK(pe->lfd >= 0);
    CHECK_EQ(pthread_create(&pe->th, NULL, peer_main, pe), 0);
}

static void peer_stop(struct peer *pe)
{
    pthread_join(pe->th, NULL);
    close(pe->lfd);
}

static void open_to(struct kconn *c, struct peer *pe, int32_t max_frame, char *err, size_t errlen)
{
    CHECK_EQ(kconn_open(c, "127.0.0.1", pe->port, 2000, "kc-test", max_frame, err, errlen), 0);
}

static void check_err(const char *err, const char *words)
{
    if (!strstr(err, words)) {
        fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, words);
        CHECK(0);
    }
}

/* A request frame with an empty body. */
static int32_t begin_send(struct kconn *c, struct obuf *w, int16_t key, int16_t version)
{
    int32_t corr = kconn_begin(c, w, key, version);
    CHECK_EQ(kconn_send(c, w), 0);
    return corr;
}

/* ---- tests -------------------------------------------------------------- */

TEST(kconn_pipelined_answers_in_order)
{
    static struct peer pe = {.reads = 2, .nanswers = 2};
    static const uint8_t a0[] = {0xaa}, a1[] = {0xbb, 0xcc};
    pe.answers[0] = a0, pe.answer_len[0] = sizeof a0;
    pe.answers[1] = a1, pe.answer_len[1] = sizeof a1;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    struct obuf w;
    struct kconn_frame f = {0};
    struct kread r;
    obuf_init(&w);
    open_to(&c, &pe, 0, err, sizeof err);
    int32_t c0 = begin_send(&c, &w, KAPI_METADATA, 1);
    int32_t c1 = begin_send(&c, &w, KAPI_LISTOFFSETS, 1);
    CHECK(c0 != c1);
    CHECK_EQ(c.npending, 2);
    /* the newer one cannot be received first: answers come in order */
    CHECK_EQ(kconn_recv(&c, c1, &f, &r), -1);
    check_err(err, "not the oldest request in flight");
    CHECK_EQ(kconn_recv(&c, c0, &f, &r), 0);
    CHECK_EQ(kr_left(&r), 1);
    CHECK_EQ(kr_u8(&r), 0xaa);
    CHECK_EQ(kconn_recv(&c, c1, &f, &r), 0);
    CHECK_EQ(kr_left(&r), 2);
    CHECK_EQ(kr_u16(&r), 0xbbcc);
    CHECK_EQ(c.npending, 0);
    kconn_close(&c);
    kconn_frame_free(&f);
    obuf_free(&w);
    peer_stop(&pe);
    /* header v1: key, version, correlation id, client id "kc-test" */
    static const uint8_t h0[] = {0, 3, 0, 1};
    static const uint8_t h1[] = {0, 2, 0, 1};
    static const uint8_t id[] = "\x00\x07kc-test";
    CHECK(memcmp(pe.req[0], h0, 4) == 0 && memcmp(pe.req[1], h1, 4) == 0);
    CHECK(memcmp(pe.req[0] + 8, id, 9) == 0);
    CHECK_EQ(pe.reqlen[0], 8 + 9);
}

TEST(kconn_flexible_headers)
{
    /* Metadata v9 is flexible: request header v2 ends with an empty tag
     * section, and the answer's header v1 carries tags to skip.
     * ApiVersions v3 is flexible too, but its answer keeps header v0. */
    static struct peer pe = {.reads = 2, .nanswers = 2};
    static const uint8_t a0[] = {1, 7, 2, 0x11, 0x22, 0x99}; /* one tag (7, 2 bytes), then the body */
    static const uint8_t a1[] = {0x55};
    pe.answers[0] = a0, pe.answer_len[0] = sizeof a0;
    pe.answers[1] = a1, pe.answer_len[1] = sizeof a1;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    struct obuf w;
    struct kconn_frame f = {0};
    struct kread r;
    obuf_init(&w);
    open_to(&c, &pe, 0, err, sizeof err);
    int32_t c0 = begin_send(&c, &w, KAPI_METADATA, 9);
    int32_t c1 = begin_send(&c, &w, KAPI_APIVERSIONS, 3);
    CHECK_EQ(kconn_recv(&c, c0, &f, &r), 0);
    CHECK_EQ(kr_left(&r), 1);
    CHECK_EQ(kr_u8(&r), 0x99);
    CHECK_EQ(kconn_recv(&c, c1, &f, &r), 0);
    CHECK_EQ(kr_left(&r), 1);
    CHECK_EQ(kr_u8(&r), 0x55);
    kconn_close(&c);
    kconn_frame_free(&f);
    obuf_free(&w);
    peer_stop(&pe);
    CHECK_EQ(pe.reqlen[0], 8 + 9 + 1);
    CHECK_EQ(pe.req[0][17], 0);
}

TEST(kconn_negotiates_versions)
{
    static struct ApiVersionsResponse_ApiVersion keys[] = {
        {KAPI_FETCH, 0, 11}, {KAPI_LISTOFFSETS, 2, 3}, {KAPI_APIVERSIONS, 0, 3}, {300, 0, 1}};
    struct ApiVersionsResponse resp;
    ApiVersionsResponse_init(&resp);
    resp.ApiKeys.count = 4;
    resp.ApiKeys.items = keys;
    struct obuf body;
    obuf_init(&body);
    ApiVersionsResponse_encode(&body, 0, &resp);
    CHECK(!body.oom);
    static struct peer pe = {.reads = 1, .nanswers = 1};
    pe.answers[0] = body.data, pe.answer_len[0] = body.len;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    open_to(&c, &pe, 0, err, sizeof err);
    CHECK_EQ(kconn_pick_version(&c, KAPI_FETCH, 4, 11), -1); /* not asked yet */
    CHECK_EQ(kconn_api_versions(&c), 0);
    CHECK_EQ(kconn_pick_version(&c, KAPI_FETCH, 4, 16), 11);
    CHECK_EQ(kconn_pick_version(&c, KAPI_FETCH, 4, 8), 8);
    CHECK_EQ(kconn_pick_version(&c, KAPI_LISTOFFSETS, 1, 5), 3);
    CHECK_EQ(kconn_pick_version(&c, KAPI_LISTOFFSETS, 1, 1), -1);
    check_err(err, "supports ListOffsets v2-v3 but not v1");
    CHECK_EQ(kconn_pick_version(&c, KAPI_LISTOFFSETS, 4, 8), -1);
    check_err(err, "supports ListOffsets v2-v3 but not v4-v8");
    CHECK_EQ(kconn_pick_version(&c, KAPI_METADATA, 1, 8), -1);
    check_err(err, "does not support Metadata");
    kconn_close(&c);
    peer_stop(&pe);
    obuf_free(&body);
}

TEST(kconn_frame_limit)
{
    static struct peer pe = {.reads = 1, .nanswers = 1};
    static uint8_t big[200];
    pe.answers[0] = big, pe.answer_len[0] = sizeof big;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    struct obuf w;
    struct kconn_frame f = {0};
    struct kread r;
    obuf_init(&w);
    open_to(&c, &pe, 100, err, sizeof err);
    int32_t c0 = begin_send(&c, &w, KAPI_FETCH, 4);
    size_t live = alloc_live_bytes();
    CHECK_EQ(kconn_recv(&c, c0, &f, &r), -1);
    check_err(err, "sent a Fetch response frame of 204 bytes (the limit is 100)");
    CHECK_EQ(alloc_live_bytes(), live); /* refused before allocating */
    kconn_close(&c);
    obuf_free(&w);
    peer_stop(&pe);
}

TEST(kconn_wrong_correlation_id)
{
    static struct peer pe = {.reads = 1, .raw = 1};
    static const uint8_t frame[] = {0, 0, 0, 5, 0x12, 0x34, 0x56, 0x78, 0};
    pe.answers[0] = frame, pe.answer_len[0] = sizeof frame;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    struct obuf w;
    struct kconn_frame f = {0};
    struct kread r;
    obuf_init(&w);
    open_to(&c, &pe, 0, err, sizeof err);
    int32_t c0 = begin_send(&c, &w, KAPI_METADATA, 1);
    CHECK_EQ(kconn_recv(&c, c0, &f, &r), -1);
    check_err(err, "answered Metadata with correlation id 305419896 instead of 1");
    kconn_close(&c);
    kconn_frame_free(&f);
    obuf_free(&w);
    peer_stop(&pe);
}

TEST(kconn_inflight_limit_and_frame_reuse)
{
    static struct peer pe = {.reads = 2, .nanswers = 2};
    static uint8_t a0[300], a1[10];
    pe.answers[0] = a0, pe.answer_len[0] = sizeof a0;
    pe.answers[1] = a1, pe.answer_len[1] = sizeof a1;
    peer_start(&pe);
    struct kconn c;
    char err[256];
    struct obuf w;
    struct kconn_frame f = {0};
    struct kread r;
    obuf_init(&w);
    open_to(&c, &pe, 0, err, sizeof err);
    int32_t first = begin_send(&c, &w, KAPI_METADATA, 1);
    for (int i = 1; i < KCONN_MAX_INFLIGHT; i++)
        begin_send(&c, &w, KAPI_METADATA, 1);
    kconn_begin(&c, &w, KAPI_METADATA, 1);
    CHECK_EQ(kconn_send(&c, &w), -1);
    check_err(err, "too many requests are in flight");
    /* a round trip needs nothing in flight */
    CHECK_EQ(kconn_roundtrip(&c, &w, &f, &r), -1);
    CHECK_EQ(kconn_recv(&c, first, &f, &r), 0);
    uint8_t *data = f.data;
    size_t cap = f.cap;
    CHECK_EQ(kconn_recv(&c, first + 1, &f, &r), 0);
    CHECK(f.data == data && f.cap == cap && f.len == 4 + sizeof a1); /* kept for the smaller frame */
    kconn_close(&c);
    kconn_frame_free(&f);
    obuf_free(&w);
    peer_stop(&pe);
}

TEST(kconn_bad_arguments)
{
    struct kconn c;
    char err[256];
    CHECK_EQ(kconn_open(&c, "", 9092, 1000, "x", 0, err, sizeof err), -1);
    check_err(err, "needs a host name");
    kconn_close(&c);
    CHECK_EQ(kconn_open(&c, "127.0.0.1", 70000, 1000, "x", 0, err, sizeof err), -1);
    kconn_close(&c);
    CHECK_EQ(kconn_open(&c, "127.0.0.1", 9092, 0, "x", 0, err, sizeof err), -1);
    kconn_close(&c);
    CHECK_EQ(c.fd, -1);
}
