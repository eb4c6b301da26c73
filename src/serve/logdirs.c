/* logdirs.c: logdirs.h over one blocking TCP connection.  It asks
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
 * Every step is bounded by timeout_ms: connecting (all addresses of the
 * host together), sending each request, and receiving each response.  Name
 * resolution (getaddrinfo) is not: pass an address or a name the resolver
 * answers locally.  Runs on the caller's thread and keeps no state. */
#include "serve/logdirs.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/clock.h"
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

/* One connection and what error sentences need to name it. */
struct lconn {
    int fd;
    const char *host;
    int port;
    int timeout_ms;
    int32_t corr;      /* the last correlation id used */
    char *err;         /* borrows the caller's buffer */
    size_t errlen;
};

/* Waits for events on fd until deadline.  Returns 1 when ready, 0 on
 * timeout, -1 on a poll error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to one address before deadline.  Returns the fd, or -1 with
 * errno (ETIMEDOUT when the deadline passed). */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS)
        goto err;
    int rc = wait_fd(fd, POLLOUT, deadline);
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        goto err;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        goto err;
    if (soerr) {
        errno = soerr;
        goto err;
    }
    return fd;
err:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static int lconn_open(struct lconn *c)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(c->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(c->err, c->errlen, "cannot resolve the broker host %s: %s", c->host,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -1;
    }
    int64_t deadline = clock_mono_ms() + c->timeout_ms;
    int last = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        c->fd = connect_addr(ai, deadline);
        if (c->fd < 0) {
            last = errno;
            if (last == ETIMEDOUT)
                break;
        }
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        if (last == ETIMEDOUT)
            snprintf(c->err, c->errlen, "connecting to the broker at %s:%d timed out after %d ms", c->host,
                     c->port, c->timeout_ms);
        else
            snprintf(c->err, c->errlen, "cannot connect to the broker at %s:%d: %s", c->host, c->port,
                     strerror(last));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static int send_all(struct lconn *c, const uint8_t *p, size_t n, const char *api)
{
    int64_t deadline = clock_mono_ms() + c->timeout_ms;
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc > 0)
                continue;
            if (rc == 0)
                snprintf(c->err, c->errlen, "sending %s to the broker at %s:%d timed out after %d ms", api,
                         c->host, c->port, c->timeout_ms);
            else
                snprintf(c->err, c->errlen, "cannot send %s to the broker at %s:%d: %s", api, c->host, c->port,
                         strerror(errno));
            return -1;
        }
        snprintf(c->err, c->errlen, "cannot send %s to the broker at %s:%d: %s", api, c->host, c->port,
                 strerror(k < 0 ? errno : EPIPE));
        return -1;
    }
    return 0;
}

/* Reads exactly n bytes before deadline. */
static int recv_exact(struct lconn *c, uint8_t *p, size_t n, int64_t deadline, const char *api)
{
    while (n > 0) {
        ssize_t k = recv(c->fd, p, n, 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0) {
            snprintf(c->err, c->errlen, "the broker at %s:%d closed the connection before answering %s", c->host,
                     c->port, api);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc > 0)
                continue;
            if (rc == 0)
                snprintf(c->err, c->errlen, "the broker at %s:%d did not answer %s within %d ms", c->host, c->port,
                         api, c->timeout_ms);
            else
                snprintf(c->err, c->errlen, "cannot read the %s response from the broker at %s:%d: %s", api,
                         c->host, c->port, strerror(errno));
            return -1;
        }
        snprintf(c->err, c->errlen, "cannot read the %s response from the broker at %s:%d: %s", api, c->host,
                 c->port, strerror(errno));
        return -1;
    }
    return 0;
}

/* Sends a request whose body the caller wrote into w after the header
 * (w holds the frame: size, header v1, body) and receives its response.
 * Returns the response frame (owned: xfree) with the correlation id checked
 * and *body set past response header v0, or NULL with err set. */
static uint8_t *roundtrip(struct lconn *c, struct obuf *w, const char *api, struct kread *body)
{
    if (w->oom) {
        snprintf(c->err, c->errlen, "out of memory building the %s request", api);
        return NULL;
    }
    obuf_patch_be32(w, 0, (uint32_t)(w->len - 4));
    if (send_all(c, w->data, w->len, api) < 0)
        return NULL;
    int64_t deadline = clock_mono_ms() + c->timeout_ms;
    uint8_t hdr[4];
    if (recv_exact(c, hdr, 4, deadline, api) < 0)
        return NULL;
    int32_t size = (int32_t)((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]);
    if (size < 4 || size > LOGDIRS_MAX_FRAME) {
        snprintf(c->err, c->errlen, "the broker at %s:%d sent a %s response frame of %d bytes (the limit is %d)",
                 c->host, c->port, api, size, LOGDIRS_MAX_FRAME);
        return NULL;
    }
    uint8_t *frame = xmalloc((size_t)size);
    if (!frame) {
        snprintf(c->err, c->errlen, "out of memory reading the %s response", api);
        return NULL;
    }
    if (recv_exact(c, frame, (size_t)size, deadline, api) < 0) {
        xfree(frame);
        return NULL;
    }
    kread_init(body, frame, (size_t)size);
    int32_t corr = kr_int32(body);
    if (corr != c->corr) {
        snprintf(c->err, c->errlen, "the broker at %s:%d answered %s with correlation id %d instead of %d", c->host,
                 c->port, api, corr, c->corr);
        xfree(frame);
        return NULL;
    }
    return frame;
}

/* Starts a request frame in w: a size to patch, then request header v1. */
static void begin_request(struct lconn *c, struct obuf *w, int16_t key, int16_t version)
{
    obuf_put_be32(w, 0);
    kw_int16(w, key);
    kw_int16(w, version);
    kw_int32(w, ++c->corr);
    kw_str(w, kstr_c(LOGDIRS_CLIENT_ID), false, true);
}

/* ApiVersions v0: does the broker serve DescribeLogDirs v1? */
static int check_versions(struct lconn *c)
{
    struct obuf w;
    struct arena a;
    obuf_init(&w);
    arena_init(&a);
    int rc = -1;
    begin_request(c, &w, KAPI_APIVERSIONS, 0);
    struct kread r;
    uint8_t *frame = roundtrip(c, &w, "ApiVersions", &r);
    if (!frame)
        goto out;
    struct ApiVersionsResponse resp;
    if (ApiVersionsResponse_decode(&r, &a, 0, &resp) < 0) {
        if (r.err == KR_ENOMEM)
            snprintf(c->err, c->errlen, "out of memory decoding the ApiVersions response");
        else
            snprintf(c->err, c->errlen, "the broker at %s:%d sent a malformed ApiVersions response", c->host,
                     c->port);
        goto out;
    }
    if (resp.ErrorCode != 0) {
        snprintf(c->err, c->errlen, "the broker at %s:%d answered ApiVersions with error %s (%d)", c->host, c->port,
                 kerr_name(resp.ErrorCode), resp.ErrorCode);
        goto out;
    }
    const struct ApiVersionsResponse_ApiVersion *k = NULL;
    for (int32_t i = 0; i < resp.ApiKeys.count && !k; i++)
        if (resp.ApiKeys.items[i].ApiKey == KAPI_DESCRIBELOGDIRS)
            k = &resp.ApiKeys.items[i];
    if (!k)
        snprintf(c->err, c->errlen, "the broker at %s:%d does not support DescribeLogDirs", c->host, c->port);
    else if (k->MinVersion > LOGDIRS_VERSION || k->MaxVersion < LOGDIRS_VERSION)
        snprintf(c->err, c->errlen, "the broker at %s:%d supports DescribeLogDirs v%d-v%d but not v%d", c->host,
                 c->port, k->MinVersion, k->MaxVersion, LOGDIRS_VERSION);
    else
        rc = 0;
out:
    xfree(frame);
    arena_free(&a);
    obuf_free(&w);
    return rc;
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
static int collect(struct lconn *c, const struct DescribeLogDirsResponse *resp, struct logdir_size **out,
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
static int describe(struct lconn *c, struct logdir_size **out, size_t *n)
{
    struct obuf w;
    struct arena a;
    obuf_init(&w);
    arena_init(&a);
    int rc = -1;
    begin_request(c, &w, KAPI_DESCRIBELOGDIRS, LOGDIRS_VERSION);
    struct DescribeLogDirsRequest req;
    DescribeLogDirsRequest_init(&req);
    req.Topics.count = -1; /* null: every topic */
    DescribeLogDirsRequest_encode(&w, LOGDIRS_VERSION, &req);
    struct kread r;
    uint8_t *frame = roundtrip(c, &w, "DescribeLogDirs", &r);
    if (!frame)
        goto out;
    struct DescribeLogDirsResponse resp;
    if (DescribeLogDirsResponse_decode(&r, &a, LOGDIRS_VERSION, &resp) < 0) {
        if (r.err == KR_ENOMEM)
            snprintf(c->err, c->errlen, "out of memory decoding the DescribeLogDirs response");
        else
            snprintf(c->err, c->errlen, "the broker at %s:%d sent a malformed DescribeLogDirs response", c->host,
                     c->port);
        goto out;
    }
    rc = collect(c, &resp, out, n);
out:
    xfree(frame);
    arena_free(&a);
    obuf_free(&w);
    return rc;
}

int logdirs_query(const char *host, int port, int timeout_ms, struct logdir_size **out, size_t *n, char *err,
                  size_t errlen)
{
    struct lconn c = {.fd = -1, .host = host, .port = port, .timeout_ms = timeout_ms, .err = err, .errlen = errlen};
    *out = NULL;
    *n = 0;
    if (!host || !*host || port <= 0 || port > 65535 || timeout_ms <= 0) {
        snprintf(err, errlen, "logdirs_query needs a host, a port in 1-65535 and a positive timeout");
        return -1;
    }
    int rc = -1;
    if (lconn_open(&c) == 0 && check_versions(&c) == 0)
        rc = describe(&c, out, n);
    if (c.fd >= 0)
        close(c.fd);
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
