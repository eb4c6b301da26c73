/* test_logdirs.c: the DescribeLogDirs client (serve/logdirs.c) against a
 * scripted fake peer in a thread on 127.0.0.1 (an ephemeral port), so that
 * what a real broker cannot be made to do is covered: several log dirs to
 * sum over, an offline dir, a broker without the API, a peer that closes,
 * stalls, sends a huge frame, a wrong correlation id or a truncated body,
 * and allocation failures at every step.  The fake's responses are built
 * with the generated encoders before it starts, and it reads and writes
 * with libc only, so injected allocation failures hit the client alone.
 * Also a round trip of the DescribeLogDirs codecs in every version.
 * The end-to-end check against the real broker is tests/wire (logdirs group). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"
#include "serve/logdirs.h"
#include "fake_peer.h"
#include "test.h"

/* ---- the fake peer ------------------------------------------------------ */

enum step_action {
    STEP_ANSWER,     /* send the frame with the request's correlation id */
    STEP_WRONG_CORR, /* send the frame with another correlation id */
    STEP_RAW,        /* send the bytes as they are (no correlation id patched) */
    STEP_CLOSE,      /* close without answering */
    STEP_STALL,      /* never answer; wait for the client to hang up */
};

struct step {
    enum step_action action;
    uint8_t *frame; /* owned (libc malloc): size, correlation id, body */
    size_t len;
};

#define FAKE_MAX_STEPS 4
#define FAKE_REQ_MAX 4096

struct fake {
    int lfd;
    int port;
    int conns;                    /* connections to serve before exiting */
    struct step steps[FAKE_MAX_STEPS];
    int nsteps;
    /* the requests of the last connection, whole payloads after the size */
    uint8_t req[FAKE_MAX_STEPS][FAKE_REQ_MAX];
    size_t reqlen[FAKE_MAX_STEPS];
    int nreq;
    pthread_t th;
};

static void serve_conn(struct fake *f, int fd)
{
    f->nreq = 0;
    for (int i = 0; i < f->nsteps; i++) {
        if (fake_read_frame(fd, f->req[i], FAKE_REQ_MAX, &f->reqlen[i]) < 0 || f->reqlen[i] < 8)
            return;
        f->nreq = i + 1;
        struct step *s = &f->steps[i];
        if (s->action == STEP_CLOSE)
            return;
        if (s->action == STEP_STALL) {
            fake_drain(fd);
            return;
        }
        if (s->action != STEP_RAW) {
            memcpy(s->frame + 4, f->req[i] + 4, 4);
            if (s->action == STEP_WRONG_CORR)
                s->frame[7] ^= 0x55;
        }
        if (fake_write_full(fd, s->frame, s->len) < 0)
            return;
    }
    fake_drain(fd);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (int c = 0; c < f->conns; c++) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            break;
        serve_conn(f, fd);
        close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = fake_listen(port);
    CHECK(fd >= 0);
    return fd;
}

static void fake_start(struct fake *f, int conns)
{
    f->lfd = listen_any(&f->port);
    f->conns = conns;
    CHECK_EQ(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    for (int i = 0; i < f->nsteps; i++)
        free(f->steps[i].frame);
}

/* Appends a step whose frame is size + a correlation id placeholder + the
 * encoded body (copied out of the wrapper's memory into libc's). */
static void add_step(struct fake *f, enum step_action action, const struct obuf *body)
{
    CHECK(f->nsteps < FAKE_MAX_STEPS);
    struct step *s = &f->steps[f->nsteps++];
    s->action = action;
    size_t n = body ? body->len : 0;
    s->len = 8 + n;
    s->frame = malloc(s->len);
    CHECK(s->frame != NULL);
    uint32_t size = (uint32_t)(4 + n);
    s->frame[0] = (uint8_t)(size >> 24);
    s->frame[1] = (uint8_t)(size >> 16);
    s->frame[2] = (uint8_t)(size >> 8);
    s->frame[3] = (uint8_t)size;
    memset(s->frame + 4, 0, 4);
    if (n)
        memcpy(s->frame + 8, body->data, n);
}

static void add_raw(struct fake *f, const uint8_t *bytes, size_t n)
{
    CHECK(f->nsteps < FAKE_MAX_STEPS);
    struct step *s = &f->steps[f->nsteps++];
    s->action = STEP_RAW;
    s->len = n;
    s->frame = malloc(n);
    CHECK(s->frame != NULL);
    memcpy(s->frame, bytes, n);
}

/* An ApiVersions v0 answer listing DescribeLogDirs min..max (min < 0: absent). */
static void add_api_versions(struct fake *f, int16_t min, int16_t max)
{
    struct ApiVersionsResponse_ApiVersion keys[3] = {
        {KAPI_METADATA, 0, 9}, {KAPI_APIVERSIONS, 0, 3}, {KAPI_DESCRIBELOGDIRS, min, max}};
    struct ApiVersionsResponse r;
    ApiVersionsResponse_init(&r);
    r.ApiKeys.count = min < 0 ? 2 : 3;
    r.ApiKeys.items = keys;
    struct obuf w;
    obuf_init(&w);
    ApiVersionsResponse_encode(&w, 0, &r);
    CHECK(!w.oom);
    add_step(f, STEP_ANSWER, &w);
    obuf_free(&w);
}

/* ---- response fixtures -------------------------------------------------- */

typedef struct DescribeLogDirsResponse_DescribeLogDirsPartition ldpart;
typedef struct DescribeLogDirsResponse_DescribeLogDirsTopic ldtopic;
typedef struct DescribeLogDirsResponse_DescribeLogDirsResult lddir;

#define ARR(a) {(int32_t)(sizeof(a) / sizeof((a)[0])), (a)}

/* /data/a: t-b 1 = 100, t-a 0 = 10; /data/b: t-a 0 = 5 (a future copy),
 * t-a 1 = 7; /data/c offline. */
static ldpart a_tb[] = {{1, 100, 0, false}};
static ldpart a_ta[] = {{0, 10, 0, false}};
static ldtopic dir_a[] = {{{"t-b", 3}, ARR(a_tb)}, {{"t-a", 3}, ARR(a_ta)}};
static ldpart b_ta[] = {{1, 7, 0, false}, {0, 5, 3, true}};
static ldtopic dir_b[] = {{{"t-a", 3}, ARR(b_ta)}};
static lddir three_dirs[] = {
    {0, {"/data/a", 7}, ARR(dir_a), -1, -1},
    {KERR_KAFKA_STORAGE_ERROR, {"/data/c", 7}, {0, NULL}, -1, -1},
    {0, {"/data/b", 7}, ARR(dir_b), -1, -1},
};

static void add_log_dirs(struct fake *f, enum step_action action, lddir *dirs, int32_t n)
{
    struct DescribeLogDirsResponse r;
    DescribeLogDirsResponse_init(&r);
    r.Results.count = n;
    r.Results.items = dirs;
    struct obuf w;
    obuf_init(&w);
    DescribeLogDirsResponse_encode(&w, 1, &r);
    CHECK(!w.oom);
    add_step(f, action, &w);
    obuf_free(&w);
}

static void check_three_dirs_result(struct logdir_size *v, size_t n)
{
    CHECK_EQ(n, 3);
    CHECK(strcmp(v[0].topic, "t-a") == 0 && v[0].partition == 0 && v[0].size_bytes == 15);
    CHECK(strcmp(v[1].topic, "t-a") == 0 && v[1].partition == 1 && v[1].size_bytes == 7);
    CHECK(strcmp(v[2].topic, "t-b") == 0 && v[2].partition == 1 && v[2].size_bytes == 100);
}

/* Runs a query against f on 127.0.0.1; returns its result code. */
static int query(struct fake *f, int timeout_ms, struct logdir_size **v, size_t *n, char *err, size_t errlen)
{
    err[0] = 0;
    return logdirs_query("127.0.0.1", f->port, timeout_ms, v, n, err, errlen);
}

static void expect_failure(struct fake *f, int timeout_ms, const char *words)
{
    struct logdir_size *v = (void *)1;
    size_t n = 99;
    char err[256];
    CHECK_EQ(query(f, timeout_ms, &v, &n, err, sizeof err), -1);
    if (!strstr(err, words)) {
        fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, words);
        CHECK(0);
    }
    CHECK(v == NULL && n == 0);
}

/* ---- tests -------------------------------------------------------------- */

TEST(logdirs_sums_sizes_over_log_dirs)
{
    static struct fake f;
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_ANSWER, three_dirs, 3);
    fake_start(&f, 1);
    struct logdir_size *v;
    size_t n;
    char err[256];
    CHECK_EQ(query(&f, 2000, &v, &n, err, sizeof err), 0);
    check_three_dirs_result(v, n);
    logdirs_free(v, n);
    fake_stop(&f);
    /* the requests: ApiVersions v0, then DescribeLogDirs v1 for every topic,
     * both with request header v1 and client id "shopstream-serve" */
    CHECK_EQ(f.nreq, 2);
    static const uint8_t hv[] = {0, 18, 0, 0};
    static const uint8_t hd[] = {0, 35, 0, 1};
    static const uint8_t client[] = "\x00\x10shopstream-serve";
    CHECK(memcmp(f.req[0], hv, 4) == 0 && memcmp(f.req[1], hd, 4) == 0);
    CHECK(memcmp(f.req[0] + 8, client, 18) == 0 && memcmp(f.req[1] + 8, client, 18) == 0);
    CHECK_EQ(f.reqlen[0], 8 + 18);
    CHECK_EQ(f.reqlen[1], 8 + 18 + 4);
    static const uint8_t null_topics[] = {0xff, 0xff, 0xff, 0xff};
    CHECK(memcmp(f.req[1] + 26, null_topics, 4) == 0);
    CHECK(memcmp(f.req[0] + 4, f.req[1] + 4, 4) != 0); /* distinct correlation ids */
}

TEST(logdirs_no_topics)
{
    static struct fake f;
    static lddir empty[] = {{0, {"/data/a", 7}, {0, NULL}, -1, -1}};
    add_api_versions(&f, 0, 1);
    add_log_dirs(&f, STEP_ANSWER, empty, 1);
    fake_start(&f, 1);
    struct logdir_size *v = (void *)1;
    size_t n = 99;
    char err[256];
    CHECK_EQ(query(&f, 2000, &v, &n, err, sizeof err), 0);
    CHECK(v == NULL && n == 0);
    logdirs_free(v, n);
    fake_stop(&f);
}

TEST(logdirs_every_dir_offline)
{
    static struct fake f;
    static lddir offline[] = {{KERR_KAFKA_STORAGE_ERROR, {"/data/c", 7}, {0, NULL}, -1, -1}};
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_ANSWER, offline, 1);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "KAFKA_STORAGE_ERROR");
    fake_stop(&f);
}

TEST(logdirs_api_not_supported)
{
    static struct fake f;
    add_api_versions(&f, -1, -1);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "does not support DescribeLogDirs");
    fake_stop(&f);
    CHECK_EQ(f.nreq, 1); /* DescribeLogDirs was not sent */
}

TEST(logdirs_version_not_supported)
{
    static struct fake f;
    add_api_versions(&f, 2, 4);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "supports DescribeLogDirs v2-v4 but not v1");
    fake_stop(&f);
}

TEST(logdirs_peer_closes)
{
    static struct fake f;
    add_api_versions(&f, 0, 4);
    add_step(&f, STEP_CLOSE, NULL);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "closed the connection before answering DescribeLogDirs");
    fake_stop(&f);
}

TEST(logdirs_peer_stalls)
{
    static struct fake f;
    add_api_versions(&f, 0, 4);
    add_step(&f, STEP_STALL, NULL);
    fake_start(&f, 1);
    int64_t t0 = clock_mono_ms();
    expect_failure(&f, 300, "did not answer DescribeLogDirs within 300 ms");
    int64_t took = clock_mono_ms() - t0;
    CHECK(took >= 250 && took < 3000);
    fake_stop(&f);
}

TEST(logdirs_huge_frame)
{
    static struct fake f;
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    add_api_versions(&f, 0, 4);
    add_raw(&f, huge, sizeof huge);
    fake_start(&f, 1);
    size_t live = alloc_live_bytes();
    expect_failure(&f, 2000, "response frame of 2147483647 bytes");
    CHECK_EQ(alloc_live_bytes(), live);
    fake_stop(&f);
}

TEST(logdirs_wrong_correlation_id)
{
    static struct fake f;
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_WRONG_CORR, three_dirs, 3);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "correlation id");
    fake_stop(&f);
}

TEST(logdirs_truncated_body)
{
    /* the three-dir answer cut short by one byte, with a frame size that
     * matches what is sent, and an array count far beyond the frame */
    static struct fake f, g;
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_ANSWER, three_dirs, 3);
    struct step *s = &f.steps[1];
    s->len--;
    uint32_t size = (uint32_t)(s->len - 4);
    s->frame[0] = (uint8_t)(size >> 24);
    s->frame[1] = (uint8_t)(size >> 16);
    s->frame[2] = (uint8_t)(size >> 8);
    s->frame[3] = (uint8_t)size;
    fake_start(&f, 1);
    expect_failure(&f, 2000, "malformed DescribeLogDirs response");
    fake_stop(&f);

    static const uint8_t big_count[] = {0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0};
    add_api_versions(&g, 0, 4);
    add_step(&g, STEP_ANSWER, NULL);
    free(g.steps[1].frame);
    g.steps[1].frame = malloc(sizeof big_count);
    CHECK(g.steps[1].frame != NULL);
    memcpy(g.steps[1].frame, big_count, sizeof big_count);
    g.steps[1].len = sizeof big_count;
    fake_start(&g, 1);
    size_t live = alloc_live_bytes();
    expect_failure(&g, 2000, "malformed DescribeLogDirs response");
    CHECK_EQ(alloc_live_bytes(), live);
    fake_stop(&g);
}

TEST(logdirs_negative_size)
{
    static struct fake f;
    static ldpart neg[] = {{0, -5, 0, false}};
    static ldtopic topics[] = {{{"t-n", 3}, ARR(neg)}};
    static lddir dirs[] = {{0, {"/d", 2}, ARR(topics), -1, -1}};
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_ANSWER, dirs, 1);
    fake_start(&f, 1);
    expect_failure(&f, 2000, "partition 0 of t-n with size -5");
    fake_stop(&f);
}

TEST(logdirs_connection_refused)
{
    int port;
    int fd = listen_any(&port);
    close(fd); /* nothing listens there now */
    struct logdir_size *v;
    size_t n;
    char err[256];
    CHECK_EQ(logdirs_query("127.0.0.1", port, 2000, &v, &n, err, sizeof err), -1);
    CHECK(strstr(err, "cannot connect to the broker at 127.0.0.1:") != NULL);
    CHECK_EQ(logdirs_query("127.0.0.1", 0, 2000, &v, &n, err, sizeof err), -1);
    CHECK_EQ(logdirs_query("127.0.0.1", 9092, 0, &v, &n, err, sizeof err), -1);
}

TEST(logdirs_allocation_failures)
{
    /* every allocation in turn fails: the query fails with a sentence or
     * succeeds, and nothing leaks */
    enum { ROUNDS = 60 };
    static struct fake f;
    add_api_versions(&f, 0, 4);
    add_log_dirs(&f, STEP_ANSWER, three_dirs, 3);
    fake_start(&f, ROUNDS + 1);
    size_t live = alloc_live_bytes();
    int failures = 0, successes = 0;
    for (long k = 0; k <= ROUNDS; k++) {
        struct logdir_size *v;
        size_t n;
        char err[256];
        err[0] = 0;
        alloc_fail_after(k);
        int rc = query(&f, 2000, &v, &n, err, sizeof err);
        alloc_fail_after(-1);
        if (rc == 0) {
            check_three_dirs_result(v, n);
            logdirs_free(v, n);
            successes++;
        } else {
            if (!strstr(err, "out of memory"))
                fprintf(stderr, "  k=%ld: %s\n", k, err);
            CHECK(strstr(err, "out of memory") != NULL);
            failures++;
        }
        CHECK_EQ(alloc_live_bytes(), live);
    }
    /* some rounds failed, and the last ones got past every allocation */
    CHECK(failures > 3 && successes > 0);
    fake_stop(&f);
}

TEST(logdirs_codec_round_trip)
{
    /* every version of both messages: decode(encode(x)) == x, whole input
     * consumed, and every truncation rejected */
    static int32_t parts[] = {0, 7};
    static struct DescribeLogDirsRequest_DescribableLogDirTopic qt[] = {{{"orders", 6}, ARR(parts)}};
    for (int16_t v = 0; v <= 4; v++) {
        struct DescribeLogDirsRequest q;
        DescribeLogDirsRequest_init(&q);
        q.Topics.count = 1;
        q.Topics.items = qt;
        struct obuf w;
        obuf_init(&w);
        DescribeLogDirsRequest_encode(&w, v, &q);
        struct DescribeLogDirsResponse r;
        DescribeLogDirsResponse_init(&r);
        r.ThrottleTimeMs = 3;
        r.ErrorCode = 9;
        lddir dirs[1] = {{0, {"/data/a", 7}, ARR(dir_a), 1000, 400}};
        r.Results.count = 1;
        r.Results.items = dirs;
        struct obuf wr;
        obuf_init(&wr);
        DescribeLogDirsResponse_encode(&wr, v, &r);
        CHECK(!w.oom && !wr.oom);

        uint8_t *buf = xmalloc(w.len);
        memcpy(buf, w.data, w.len);
        struct arena a;
        arena_init(&a);
        struct kread rd;
        kread_init(&rd, buf, w.len);
        struct DescribeLogDirsRequest q2;
        CHECK_EQ(DescribeLogDirsRequest_decode(&rd, &a, v, &q2), 0);
        CHECK_EQ(kr_left(&rd), 0);
        CHECK_EQ(q2.Topics.count, 1);
        CHECK(kstr_eq(q2.Topics.items[0].Topic, "orders"));
        CHECK_EQ(q2.Topics.items[0].Partitions.count, 2);
        CHECK_EQ(q2.Topics.items[0].Partitions.items[1], 7);
        for (size_t cut = 0; cut < w.len; cut++) {
            kread_init(&rd, buf, cut);
            CHECK_EQ(DescribeLogDirsRequest_decode(&rd, &a, v, &q2), -1);
        }
        xfree(buf);

        buf = xmalloc(wr.len);
        memcpy(buf, wr.data, wr.len);
        kread_init(&rd, buf, wr.len);
        struct DescribeLogDirsResponse r2;
        CHECK_EQ(DescribeLogDirsResponse_decode(&rd, &a, v, &r2), 0);
        CHECK_EQ(kr_left(&rd), 0);
        CHECK_EQ(r2.ThrottleTimeMs, 3);
        CHECK_EQ(r2.ErrorCode, v >= 3 ? 9 : 0);
        CHECK_EQ(r2.Results.count, 1);
        const lddir *d = &r2.Results.items[0];
        CHECK(kstr_eq(d->LogDir, "/data/a"));
        CHECK_EQ(d->TotalBytes, v >= 4 ? 1000 : -1);
        CHECK_EQ(d->UsableBytes, v >= 4 ? 400 : -1);
        CHECK_EQ(d->Topics.count, 2);
        CHECK(kstr_eq(d->Topics.items[0].Name, "t-b"));
        CHECK_EQ(d->Topics.items[0].Partitions.items[0].PartitionSize, 100);
        for (size_t cut = 0; cut < wr.len; cut++) {
            kread_init(&rd, buf, cut);
            CHECK_EQ(DescribeLogDirsResponse_decode(&rd, &a, v, &r2), -1);
        }
        xfree(buf);
        arena_free(&a);
        obuf_free(&w);
        obuf_free(&wr);
    }
}
