/* logdirs.c: logdirs.h over one blocking connection (client/kconn.h).  It asks
 * ApiVersions v0 first, so that a broker without DescribeLogDirs v1 gets a
 * clear sentence instead of a closed connection (Kafka closes connections
 * on unknown APIs), then DescribeLogDirs v1 for every topic (Topics null).
 * Both are non-flexible, with request header v1 and client id
 * "shopstream-serve", so this works against Apache Kafka 1.0+ (2.4+ is what
 * the project checks against) and shopstream's broker.  Frames are encoded
 * and decoded with the generated codec (protocol/kmsg.h); the wire format is
 * in shared/kafka-protocol/README.md and message/DescribeLogDirs*.json.
 *
 * A log dir that reports an error (an offline dir, KAFKA_STORAGE_ERROR)
 * lists no partitions and is skipped; the query fails only when every log
 * dir reports one.  Sizes of one (topic, partition) are summed over the log
 * dirs, so a replica being moved between dirs (IsFutureKey) counts the disk
 * bytes of both copies.  The result is sorted by topic, then partition.
 *
 * Every step is bounded by timeout_ms as kconn.h describes (name resolution
 * is not).  Runs on the caller's thread and keeps no state. */
#include "serve/logdirs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kconn.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/obuf.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"

#define LOGDIRS_CLIENT_ID "shopstream-serve"
#define LOGDIRS_VERSION 1
/* The largest response frame accepted.  A DescribeLogDirs v1 response takes
 * 21 bytes per partition plus about 6 and the name per topic, so 16 MiB holds
 * some 700,000 partitions, far more than one broker carries; decoding a
 * frame this size takes at most a few times its size in the arena. */
#define LOGDIRS_MAX_FRAME (16 * 1024 * 1024)

/* ApiVersions v0 (kconn.h): does the broker serve DescribeLogDirs v1? */
static int check_versions(struct kconn *c)
{
    if (kconn_api_versions(c) < 0)
        return -1;
    return kconn_pick_version(c, KAPI_DESCRIBELOGDIRS, LOGDIRS_VERSION, LOGDIRS_VERSION) < 0 ? -1 : 0;
}

/* One partition's size as listed by one log dir; topic is a view into the
 * response frame. */
struct entry {
    kstr topic;
    int32_t partition;
    int64_t size;
};

static int entry_cmp(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    size_t n = (size_t)(a->topic.len < b->topic.len ? a->topic.len : b->topic.len);
    int d = memcmp(a->topic.ptr, b->topic.ptr, n);
    if (d)
        return d;
    if (a->topic.len != b->topic.len)
        return a->topic.len < b->topic.len ? -1 : 1;
    return (a->partition > b->partition) - (a->partition < b->partition);
}

/* Sums the sizes per (topic, partition) over the log dirs without an error.
 * Returns 0 with *out owned (logdirs_free), or -1 with err set. */
static int collect(struct kconn *c, const struct DescribeLogDirsResponse *resp, struct logdir_size **out,
                   size_t *n)
{
    size_t total = 0;
    int32_t ok_dirs = 0;
    const struct DescribeLogDirsResponse_DescribeLogDirsResult *failed = NULL;
    for (int32_t d = 0; d < resp->Results.count; d++) {
        const struct DescribeLogDirsResponse_DescribeLogDirsResult *dir = &resp->Results.items[d];
        if (dir->ErrorCode != 0) {
            if (!failed)
                failed = dir;
            continue;
        }
        ok_dirs++;
        for (int32_t t = 0; t < dir->Topics.count; t++) {
            kstr name = dir->Topics.items[t].Name;
            if (name.len <= 0 || memchr(name.ptr, 0, (size_t)name.len)) {
                snprintf(c->err, c->errlen, "the broker at %s:%d listed a topic with an invalid name in log dir %.*s",
                         c->host, c->port, dir->LogDir.len > 0 ? (int)dir->LogDir.len : 0,
                         dir->LogDir.ptr ? dir->LogDir.ptr : "");
                return -1;
            }
            total += (size_t)dir->Topics.items[t].Partitions.count;
        }
    }
    if (failed && ok_dirs == 0) {
        snprintf(c->err, c->errlen, "the broker at %s:%d reports its log dir %.*s failed with %s (%d)", c->host,
                 c->port, failed->LogDir.len > 0 ? (int)failed->LogDir.len : 0,
                 failed->LogDir.ptr ? failed->LogDir.ptr : "", kerr_name(failed->ErrorCode), failed->ErrorCode);
        return -1;
    }
    *out = NULL;
    *n = 0;
    if (total == 0)
        return 0;
    struct entry *e = xmalloc(total * sizeof *e);
    if (!e) {
        snprintf(c->err, c->errlen, "out of memory collecting %zu partition sizes", total);
        return -1;
    }
    size_t k = 0;
    for (int32_t d = 0; d < resp->Results.count; d++) {
        const struct DescribeLogDirsResponse_DescribeLogDirsResult *dir = &resp->Results.items[d];
        if (dir->ErrorCode != 0)
            continue;
        for (int32_t t = 0; t < dir->Topics.count; t++) {
            const struct DescribeLogDirsResponse_DescribeLogDirsTopic *tp = &dir->Topics.items[t];
            for (int32_t p = 0; p < tp->Partitions.count; p++) {
                const struct DescribeLogDirsResponse_DescribeLogDirsPartition *pp = &tp->Partitions.items[p];
                if (pp->PartitionSize < 0 || pp->PartitionIndex < 0) {
                    snprintf(c->err, c->errlen, "the broker at %s:%d reported partition %d of %.*s with size %lld",
                             c->host, c->port, pp->PartitionIndex, (int)tp->Name.len, tp->Name.ptr,
                             (long long)pp->PartitionSize);
                    xfree(e);
                    return -1;
                }
                e[k++] = (struct entry){tp->Name, pp->PartitionIndex, pp->PartitionSize};
            }
        }
    }
    qsort(e, k, sizeof *e, entry_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++)
        distinct += i == 0 || entry_cmp(&e[i - 1], &e[i]) != 0;
    struct logdir_size *v = xcalloc(distinct, sizeof *v);
    if (!v) {
        xfree(e);
        snprintf(c->err, c->errlen, "out of memory collecting %zu partition sizes", distinct);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && entry_cmp(&e[i - 1], &e[i]) == 0) {
            /* saturate: sizes are >= 0, so only the upper bound matters */
            int64_t *s = &v[m - 1].size_bytes;
            *s = e[i].size > INT64_MAX - *s ? INT64_MAX : *s + e[i].size;
            continue;
        }
        v[m].topic = xstrndup(e[i].topic.ptr, (size_t)e[i].topic.len);
        if (!v[m].topic) {
            logdirs_free(v, m);
            xfree(e);
            snprintf(c->err, c->errlen, "out of memory collecting %zu partition sizes", distinct);
            return -1;
        }
        v[m].partition = e[i].partition;
        v[m].size_bytes = e[i].size;
        m++;
    }
    xfree(e);
    *out = v;
    *n = m;
    return 0;
}

/* DescribeLogDirs v1 for every topic. */
static int describe(struct kconn *c, struct logdir_size **out, size_t *n)
{
    struct obuf w;
    struct arena a;
    struct kconn_frame f = {0};
    obuf_init(&w);
    arena_init(&a);
    int rc = -1;
    kconn_begin(c, &w, KAPI_DESCRIBELOGDIRS, LOGDIRS_VERSION);
    struct DescribeLogDirsRequest req;
    DescribeLogDirsRequest_init(&req);
    req.Topics.count = -1; /* null: every topic */
    DescribeLogDirsRequest_encode(&w, LOGDIRS_VERSION, &req);
    struct kread r;
    if (kconn_roundtrip(c, &w, &f, &r) < 0)
        goto out;
    struct DescribeLogDirsResponse resp;
    if (DescribeLogDirsResponse_decode(&r, &a, LOGDIRS_VERSION, &resp) < 0) {
        kconn_malformed(c, &r, KAPI_DESCRIBELOGDIRS);
        goto out;
    }
    rc = collect(c, &resp, out, n);
out:
    kconn_frame_free(&f);
    arena_free(&a);
    obuf_free(&w);
    return rc;
}

int logdirs_query(const char *host, int port, int timeout_ms, struct logdir_size **out, size_t *n, char *err,
                  size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!host || !*host || port <= 0 || port > 65535 || timeout_ms <= 0) {
        snprintf(err, errlen, "logdirs_query needs a host, a port in 1-65535 and a positive timeout");
        return -1;
    }
    struct kconn c;
    int rc = -1;
    if (kconn_open(&c, host, port, timeout_ms, LOGDIRS_CLIENT_ID, LOGDIRS_MAX_FRAME, err, errlen) == 0 &&
        check_versions(&c) == 0)
        rc = describe(&c, out, n);
    kconn_close(&c);
    return rc;
}

void logdirs_free(struct logdir_size *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        xfree(v[i].topic);
    xfree(v);
}
