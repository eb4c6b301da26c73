/* kconn.c: see kconn.h.  The socket is non-blocking and every wait goes
 * through poll with a deadline, which is how each step gets its bound. */
#include "client/kconn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/clock.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"

/* Bytes of request header v1 before the client id: key, version, corr. */
#define KCONN_HEADER_FIXED 8

const char *kconn_api_name(int16_t key)
{
    const struct kmsg_api *a = kmsg_api(key);
    return a ? a->name : "an unknown API";
}

/* Flexible versions use request header v2 and response header v1, except
 * that ApiVersions always answers with header v0 (so that a client can
 * read the answer whatever version it asked). */
static int is_flexible(int16_t key, int16_t version)
{
    const struct kmsg_api *a = kmsg_api(key);
    return a && a->flexible_from >= 0 && version >= a->flexible_from;
}

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

/* Tries every address of the host until one connects or the deadline
 * passes.  Returns 0, or -1 with err set. */
static int connect_host(struct kconn *c)
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
        if (c->fd < 0 && (last = errno) == ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (c->fd >= 0)
        return 0;
    if (last == ETIMEDOUT)
        snprintf(c->err, c->errlen, "connecting to the broker at %s:%d timed out after %d ms", c->host, c->port,
                 c->timeout_ms);
    else
        snprintf(c->err, c->errlen, "cannot connect to the broker at %s:%d: %s", c->host, c->port, strerror(last));
    return -1;
}

int kconn_open(struct kconn *c, const char *host, int port, int timeout_ms, const char *client_id,
               int32_t max_frame, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->err = err;
    c->errlen = errlen;
    c->client_id = client_id;
    c->max_frame = max_frame > 0 ? max_frame : KCONN_DEFAULT_MAX_FRAME;
    memset(c->min_version, 0xff, sizeof c->min_version); /* -1: unknown */
    memset(c->max_version, 0xff, sizeof c->max_version);
    if (!host || !*host || strlen(host) >= sizeof c->host || port <= 0 || port > 65535 || timeout_ms <= 0) {
        snprintf(err, errlen, "a broker connection needs a host name shorter than %zu bytes, a port in 1-65535 "
                 "and a positive timeout", sizeof c->host);
        return -1;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->timeout_ms = timeout_ms;
    if (connect_host(c) < 0)
        return -1;
    /* Requests are small and each one waits for its answer: Nagle would
     * only add a delay. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void kconn_close(struct kconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->npending = 0;
}

void kconn_frame_free(struct kconn_frame *f)
{
    xfree(f->data);
    f->data = NULL;
    f->len = f->cap = 0;
}

int32_t kconn_begin(struct kconn *c, struct obuf *w, int16_t key, int16_t version)
{
    obuf_reset(w);
    c->corr = c->corr == INT32_MAX ? 0 : c->corr + 1;
    obuf_put_be32(w, 0);
    kw_int16(w, key);
    kw_int16(w, version);
    kw_int32(w, c->corr);
    kw_str(w, kstr_c(c->client_id), false, true); /* never compact, even in header v2 */
    if (is_flexible(key, version))
        kw_uvarint(w, 0); /* header v2: no tagged fields */
    return c->corr;
}

static int send_all(struct kconn *c, const uint8_t *p, size_t n, const char *api)
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
                snprintf(c->err, c->errlen, "sending %s to the broker at %s:%d timed out after %d ms", api, c->host,
                         c->port, c->timeout_ms);
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

int kconn_send(struct kconn *c, struct obuf *w)
{
    if (w->oom || w->len < 4 + KCONN_HEADER_FIXED) {
        /* the header may be incomplete: name the API only when it is there */
        int16_t key = w->len >= 6 ? (int16_t)(w->data[4] << 8 | w->data[5]) : -1;
        snprintf(c->err, c->errlen, w->oom ? "out of memory building the %s request"
                                           : "kconn_send was given a %s frame without a request header",
                 key >= 0 ? kconn_api_name(key) : "Kafka");
        return -1;
    }
    struct kconn_pending p;
    struct kread r;
    kread_init(&r, w->data + 4, KCONN_HEADER_FIXED);
    p.key = kr_int16(&r);
    p.version = kr_int16(&r);
    p.corr = kr_int32(&r);
    const char *api = kconn_api_name(p.key);
    if (c->fd < 0 || c->npending == KCONN_MAX_INFLIGHT) {
        snprintf(c->err, c->errlen, "cannot send %s to the broker at %s:%d: %s", api, c->host, c->port,
                 c->fd < 0 ? "the connection is closed" : "too many requests are in flight");
        return -1;
    }
    obuf_patch_be32(w, 0, (uint32_t)(w->len - 4));
    if (send_all(c, w->data, w->len, api) < 0)
        return -1;
    c->pending[(c->head + c->npending++) % KCONN_MAX_INFLIGHT] = p;
    return 0;
}

/* Reads exactly n bytes before deadline. */
static int recv_exact(struct kconn *c, uint8_t *p, size_t n, int64_t deadline, const char *api)
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

/* Reads one whole frame into f after checking its size against the limit.
 * Returns 0 or -1. */
static int recv_frame(struct kconn *c, struct kconn_frame *f, const char *api)
{
    int64_t deadline = clock_mono_ms() + c->timeout_ms;
    uint8_t hdr[4];
    if (recv_exact(c, hdr, 4, deadline, api) < 0)
        return -1;
    int32_t size = (int32_t)((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]);
    if (size < 4 || size > c->max_frame) {
        snprintf(c->err, c->errlen, "the broker at %s:%d sent a %s response frame of %d bytes (the limit is %d)",
                 c->host, c->port, api, size, c->max_frame);
        return -1;
    }
    if ((size_t)size > f->cap) {
        uint8_t *d = xrealloc(f->data, (size_t)size);
        if (!d) {
            snprintf(c->err, c->errlen, "out of memory reading the %s response", api);
            return -1;
        }
        f->data = d;
        f->cap = (size_t)size;
    }
    f->len = 0;
    if (recv_exact(c, f->data, (size_t)size, deadline, api) < 0)
        return -1;
    f->len = (size_t)size;
    return 0;
}

/* Skips the tagged fields of response header v1. */
static void skip_header_tags(struct kread *r)
{
    int32_t n = kr_tag_count(r);
    for (int32_t i = 0; i < n && !r->err; i++) {
        kr_uvarint(r); /* tag */
        kr_take(r, kr_uvarint(r));
    }
}

int kconn_recv(struct kconn *c, int32_t corr, struct kconn_frame *f, struct kread *body)
{
    if (c->npending == 0 || c->pending[c->head].corr != corr) {
        snprintf(c->err, c->errlen, "kconn_recv was asked for correlation id %d, which is not the oldest request "
                 "in flight", corr);
        return -1;
    }
    struct kconn_pending p = c->pending[c->head];
    const char *api = kconn_api_name(p.key);
    if (recv_frame(c, f, api) < 0)
        return -1;
    c->head = (c->head + 1) % KCONN_MAX_INFLIGHT;
    c->npending--;
    kread_init(body, f->data, f->len);
    int32_t got = kr_int32(body);
    if (got != corr) {
        snprintf(c->err, c->errlen, "the broker at %s:%d answered %s with correlation id %d instead of %d", c->host,
                 c->port, api, got, corr);
        return -1;
    }
    if (p.key != KAPI_APIVERSIONS && is_flexible(p.key, p.version)) {
        skip_header_tags(body);
        if (body->err)
            return kconn_malformed(c, body, p.key);
    }
    return 0;
}

int kconn_roundtrip(struct kconn *c, struct obuf *w, struct kconn_frame *f, struct kread *body)
{
    if (c->npending > 0) {
        /* its answer would come after theirs */
        snprintf(c->err, c->errlen, "kconn_roundtrip was called with %d requests in flight", c->npending);
        return -1;
    }
    if (kconn_send(c, w) < 0)
        return -1;
    return kconn_recv(c, c->pending[c->head].corr, f, body);
}

int kconn_malformed(struct kconn *c, const struct kread *r, int16_t key)
{
    if (r->err == KR_ENOMEM)
        snprintf(c->err, c->errlen, "out of memory decoding the %s response", kconn_api_name(key));
    else
        snprintf(c->err, c->errlen, "the broker at %s:%d sent a malformed %s response", c->host, c->port,
                 kconn_api_name(key));
    return -1;
}

/* Remembers the ranges of a decoded ApiVersions answer. */
static void store_versions(struct kconn *c, const struct ApiVersionsResponse *resp)
{
    for (int32_t i = 0; i < resp->ApiKeys.count; i++) {
        const struct ApiVersionsResponse_ApiVersion *k = &resp->ApiKeys.items[i];
        if (k->ApiKey < 0 || k->ApiKey >= KCONN_API_KEYS)
            continue; /* an API nobody here asks for */
        c->min_version[k->ApiKey] = k->MinVersion;
        c->max_version[k->ApiKey] = k->MaxVersion;
    }
    c->have_versions = 1;
}

int kconn_api_versions(struct kconn *c)
{
    struct obuf w;
    struct arena a;
    struct kconn_frame f = {0};
    obuf_init(&w);
    arena_init(&a);
    int rc = -1;
    kconn_begin(c, &w, KAPI_APIVERSIONS, 0);
    struct kread r;
    if (kconn_roundtrip(c, &w, &f, &r) < 0)
        goto out;
    struct ApiVersionsResponse resp;
    if (ApiVersionsResponse_decode(&r, &a, 0, &resp) < 0) {
        kconn_malformed(c, &r, KAPI_APIVERSIONS);
        goto out;
    }
    if (resp.ErrorCode != 0) {
        snprintf(c->err, c->errlen, "the broker at %s:%d answered ApiVersions with error %s (%d)", c->host, c->port,
                 kerr_name(resp.ErrorCode), resp.ErrorCode);
        goto out;
    }
    store_versions(c, &resp);
    rc = 0;
out:
    kconn_frame_free(&f);
    arena_free(&a);
    obuf_free(&w);
    return rc;
}

int kconn_pick_version(struct kconn *c, int16_t key, int16_t lo, int16_t hi)
{
    const char *api = kconn_api_name(key);
    if (!c->have_versions) {
        snprintf(c->err, c->errlen, "the versions the broker at %s:%d serves are not known yet", c->host, c->port);
        return -1;
    }
    int16_t min = key >= 0 && key < KCONN_API_KEYS ? c->min_version[key] : -1;
    int16_t max = key >= 0 && key < KCONN_API_KEYS ? c->max_version[key] : -1;
    if (min < 0 || max < 0) {
        snprintf(c->err, c->errlen, "the broker at %s:%d does not support %s", c->host, c->port, api);
        return -1;
    }
    int16_t best = max < hi ? max : hi;
    if (best >= lo && best >= min)
        return best;
    if (lo == hi)
        snprintf(c->err, c->errlen, "the broker at %s:%d supports %s v%d-v%d but not v%d", c->host, c->port, api, min,
                 max, lo);
    else
        snprintf(c->err, c->errlen, "the broker at %s:%d supports %s v%d-v%d but not v%d-v%d", c->host, c->port,
                 api, min, max, lo, hi);
    return -1;
}
