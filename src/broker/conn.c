/* conn.c: client connections: accept, read frames, turn them into requests,
 * dispatch to handlers, and write responses in request order (memory with
 * writev, file ranges with sendfile).  Hostile input is handled per
 * shared/RELIABILITY.md: bad lengths close before allocating, partial frames
 * have a deadline and a global cap, pipelining is bounded per connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker/api.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "protocol/kmsg.h"
#include "serve/metrics.h"

/* The read buffer starts at this size and grows towards a bigger frame;
 * one grown past it is released once empty, so that a connection holds at
 * most this much between bursts (100 connections: ~6 MB). */
#define READ_CHUNK (64 * 1024)

static void conn_io(struct loop *l, int fd, int mask, void *arg);

/* The monotonic clock in ns (clock_mono_ms's clock), for request latency. */
static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The per-API series of key (served keys only reach the handlers). */
static inline struct metric *api_series(struct metric *const *v, int16_t key)
{
    return key >= 0 && key < BROKER_METRIC_APIS ? v[key] : NULL;
}

static void update_watch(struct conn *c)
{
    bool want_read = c->nreq < c->b->lim.inflight_per_conn && c->queued_bytes < LIMIT_QUEUED_RESPONSE_BYTES;
    bool want_write = c->head && c->head->ready;
    if (want_read == c->reading && want_write == c->writing)
        return;
    c->reading = want_read;
    c->writing = want_write;
    loop_watch(c->b->loop, c->fd, (want_read ? LOOP_READ : 0) | (want_write ? LOOP_WRITE : 0), conn_io, c);
}

void request_free(struct request *r)
{
    xfree(r->frame);
    arena_free(&r->arena);
    obuf_free(&r->out);
    xfree(r);
}

void conn_close(struct conn *c, const char *why)
{
    struct broker *b = c->b;
    if (why)
        log_debug("closing connection from %s: %s", c->peer, why);
    loop_unwatch(b->loop, c->fd);
    close(c->fd);
    fetch_forget_conn(b, c);
    struct request *r = c->head;
    while (r) {
        struct request *n = r->next;
        r->conn = NULL;
        if (!r->parked)
            request_free(r);
        r = n;
    }
    b->partial_bytes -= (int64_t)c->in_len;
    if (c->prev_conn)
        c->prev_conn->next_conn = c->next_conn;
    else
        b->conns = c->next_conn;
    if (c->next_conn)
        c->next_conn->prev_conn = c->prev_conn;
    b->nconns--;
    metrics_add(b->m.connections, -1);
    xfree(c->in);
    xfree(c);
    if (b->listen_paused && b->nconns < b->lim.max_connections)
        conn_resume_accept(b);
}

/* Memory piece k of a response: [start, end) of out.data. */
static void mem_piece(const struct obuf *o, int k, size_t *start, size_t *end)
{
    *start = k == 0 ? 0 : o->files[k - 1].at;
    *end = k == o->nfiles ? o->len : o->files[k].at;
}

/* Writes ready responses.  Returns -1 when the connection failed. */
static int conn_flush(struct conn *c)
{
    while (c->head && c->head->ready) {
        /* gather memory pieces of consecutive ready responses */
        struct iovec iov[64];
        int niov = 0;
        for (struct request *r = c->head; r && r->ready && niov < 64; r = r->next) {
            if (r->piece % 2 == 1)
                break;
            size_t s, e;
            mem_piece(&r->out, r->piece / 2, &s, &e);
            s += (size_t)r->piece_off;
            if (e > s)
                iov[niov++] = (struct iovec){r->out.data + s, e - s};
            if (r->piece / 2 < r->out.nfiles)
                break; /* a file piece follows */
        }
        struct request *r = c->head;
        if (niov > 0) {
            ssize_t n = writev(c->fd, iov, niov);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                return -1;
            }
            metrics_add(c->b->m.bytes_out, n);
            /* advance over what was written */
            size_t left = (size_t)n;
            while (r && r->ready && r->piece % 2 == 0) {
                size_t s, e;
                mem_piece(&r->out, r->piece / 2, &s, &e);
                size_t avail = e - s - (size_t)r->piece_off;
                if (left < avail) {
                    r->piece_off += (int64_t)left;
                    return 0; /* socket full */
                }
                left -= avail;
                int k = r->piece / 2;
                r->piece++; /* the file piece after memory piece k, if any */
                r->piece_off = 0;
                if (k == r->out.nfiles) {
                    /* done with this response */
                    c->head = r->next;
                    if (!c->head)
                        c->tail = NULL;
                    c->nreq--;
                    c->queued_bytes -= obuf_wire_len(&r->out);
                    request_free(r);
                    r = c->head;
                } else {
                    break; /* its file piece is next */
                }
            }
            if (left)
                return 0;
            continue;
        }
        if (r->piece % 2 == 1) {
            struct obuf_file *f = &r->out.files[r->piece / 2];
            off_t off = f->off + r->piece_off;
            size_t want = (size_t)(f->len - r->piece_off);
            ssize_t n = sendfile(c->fd, f->fd, &off, want);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                return -1;
            }
            if (n == 0) {
                /* the file is shorter than promised (truncated under us):
                 * the frame can no longer be completed */
                return -1;
            }
            metrics_add(c->b->m.bytes_out, n);
            r->piece_off += n;
            if (r->piece_off < f->len)
                return 0;
            r->piece++;
            r->piece_off = 0;
            continue;
        }
        /* an empty memory piece */
        int k = r->piece / 2;
        r->piece++;
        r->piece_off = 0;
        if (k == r->out.nfiles) {
            c->head = r->next;
            if (!c->head)
                c->tail = NULL;
            c->nreq--;
            c->queued_bytes -= obuf_wire_len(&r->out);
            request_free(r);
        }
    }
    /* drop acks=0 requests that reached the head */
    return 0;
}

static void conn_pump(struct conn *c);

void request_done(struct request *r)
{
    r->parked = false;
    struct conn *c = r->conn;
    if (!c) {
        request_free(r);
        return;
    }
    if (r->out.oom) {
        if (c->dispatching)
            c->failed = true;
        else
            conn_close(c, "out of memory building a response");
        return;
    }
    /* patch the frame size */
    obuf_patch_be32(&r->out, 0, (uint32_t)(obuf_wire_len(&r->out) - 4));
    r->ready = true;
    metrics_observe(api_series(c->b->m.latency, r->api_key), (double)(mono_ns() - r->received_ns) / 1e9);
    c->queued_bytes += obuf_wire_len(&r->out);
    /* requests that send nothing leave the queue once they are at its head */
    while (c->head && c->head->ready && c->head->no_response) {
        struct request *h = c->head;
        c->head = h->next;
        if (!c->head)
            c->tail = NULL;
        c->nreq--;
        c->queued_bytes -= obuf_wire_len(&h->out);
        request_free(h);
    }
    if (conn_flush(c) < 0) {
        if (c->dispatching)
            c->failed = true; /* conn_read closes it after parsing */
        else
            conn_close(c, "write failed");
        return;
    }
    if (!c->dispatching)
        update_watch(c);
}

static int parse_header(struct request *r)
{
    struct kread *h = &r->body;
    kread_init(h, r->frame, (size_t)r->frame_len);
    r->api_key = kr_int16(h);
    r->api_version = kr_int16(h);
    r->correlation_id = kr_int32(h);
    const struct kmsg_api *spec = kmsg_api(r->api_key);
    r->flexible = spec && spec->flexible_from >= 0 && r->api_version >= spec->flexible_from;
    /* client_id keeps its int16 length even in header v2 */
    r->client_id = kr_str(h, false, true);
    if (r->flexible) {
        int32_t n = kr_tag_count(h);
        for (int32_t i = 0; i < n && !h->err; i++) {
            kr_uvarint(h);
            uint32_t size = kr_uvarint(h);
            kr_take(h, size);
        }
    }
    return h->err ? -1 : 0;
}

/* Handles one whole frame.  Returns -1 to close the connection. */
static int conn_request(struct conn *c, const uint8_t *frame, int32_t len)
{
    struct broker *b = c->b;
    struct request *r = xcalloc(1, sizeof *r);
    if (!r)
        return -1;
    r->frame = xmalloc((size_t)len);
    if (!r->frame) {
        xfree(r);
        return -1;
    }
    memcpy(r->frame, frame, (size_t)len);
    r->frame_len = len;
    r->conn = c;
    r->received_ns = mono_ns();
    r->received_ms = r->received_ns / 1000000; /* clock_mono_ms() */
    arena_init(&r->arena);
    obuf_init(&r->out);
    if (parse_header(r) < 0) {
        metrics_inc(b->m.errors_unknown);
        log_warn("closing %s: malformed request header", c->peer);
        request_free(r);
        return -1;
    }
    const struct api_entry *api = api_find(r->api_key);
    if (!api) {
        metrics_inc(b->m.errors_unknown);
        log_warn("closing %s: unknown API key %d (client %.*s)", c->peer, r->api_key,
                 r->client_id.len > 0 ? r->client_id.len : 0, r->client_id.ptr ? r->client_id.ptr : "");
        request_free(r);
        return -1;
    }
    if ((r->api_version < api->min_version || r->api_version > api->max_version) &&
        r->api_key != KAPI_APIVERSIONS) {
        metrics_inc(api_series(b->m.errors, r->api_key));
        log_warn("closing %s: unsupported version %d of API %d", c->peer, r->api_version, r->api_key);
        request_free(r);
        return -1;
    }
    metrics_inc(api_series(b->m.requests, r->api_key));
    /* queue it, then build the response header */
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nreq++;
    obuf_put_be32(&r->out, 0);
    obuf_put_be32(&r->out, (uint32_t)r->correlation_id);
    if (r->flexible && r->api_key != KAPI_APIVERSIONS)
        obuf_put_u8(&r->out, 0); /* response header v1: no tagged fields */
    r->body_start = r->out.len;
    /* While the handler runs, the request counts as parked: a handler may
     * answer it through request_done() (which can send and free it) and
     * then return API_PARKED, so r is not touched after that. */
    r->parked = true;
    int rc = api->handle(b, r);
    if (rc == API_CLOSE) {
        r->parked = false;
        metrics_inc(api_series(b->m.errors, r->api_key));
        log_warn("closing %s: malformed %s v%d request", c->peer, kmsg_api(r->api_key)->name, r->api_version);
        return -1;
    }
    if (rc == API_DONE)
        request_done(r);
    return 0;
}

/* Parses as many whole frames as the buffer holds and the caps allow. */
static int conn_parse(struct conn *c)
{
    struct broker *b = c->b;
    size_t off = 0;
    int rc = 0;
    while (c->in_len - off >= 4 && c->nreq < b->lim.inflight_per_conn) {
        const uint8_t *p = c->in + off;
        int32_t len = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        if (len < LIMIT_REQUEST_MIN_BYTES) {
            log_warn("closing %s: frame length %d is below the minimal request header", c->peer, len);
            rc = -1;
            break;
        }
        if (len > b->lim.request_max_bytes) {
            log_warn("closing %s: frame length %d exceeds socket.request.max.bytes %d (not a Kafka client?)",
                     c->peer, len, b->lim.request_max_bytes);
            rc = -1;
            break;
        }
        if (c->in_len - off - 4 < (size_t)len)
            break;
        c->dispatching = true;
        int qr = conn_request(c, p + 4, len);
        c->dispatching = false;
        if (qr < 0 || c->failed) {
            rc = -1;
            break;
        }
        off += 4 + (size_t)len;
    }
    if (rc < 0)
        return -1;
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 && c->in_cap > READ_CHUNK) {
        xfree(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    /* partial frames: a deadline for slowloris, a global byte cap */
    b->partial_bytes -= (int64_t)off;
    if (c->in_len == 0)
        c->frame_started_ms = 0;
    else if (!c->frame_started_ms || off)
        c->frame_started_ms = clock_mono_ms();
    return 0;
}

static void conn_read(struct conn *c)
{
    struct broker *b = c->b;
    for (int rounds = 0; rounds < 4; rounds++) {
        if (c->nreq >= b->lim.inflight_per_conn)
            break;
        if (c->in_cap - c->in_len < READ_CHUNK / 4) {
            size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK;
            /* grow towards the frame being received, but within its size */
            if (c->in_len >= 4) {
                uint32_t want = ((uint32_t)c->in[0] << 24 | (uint32_t)c->in[1] << 16 |
                                 (uint32_t)c->in[2] << 8 | c->in[3]) + 4u;
                if (want <= (uint32_t)b->lim.request_max_bytes + 4u && want > cap)
                    cap = want;
            }
            if (b->partial_bytes + (int64_t)cap > b->lim.partial_bytes_max) {
                conn_close(c, "partial-frame memory cap reached");
                return;
            }
            uint8_t *n = xrealloc(c->in, cap);
            if (!n) {
                conn_close(c, "out of memory");
                return;
            }
            c->in = n;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0) {
            conn_close(c, "peer closed");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_close(c, strerror(errno));
            return;
        }
        b->partial_bytes += n;
        metrics_add(b->m.bytes_in, n);
        c->in_len += (size_t)n;
        c->last_active_ms = clock_mono_ms();
        if (conn_parse(c) < 0) {
            conn_close(c, "bad frame");
            return;
        }
        if ((size_t)n < READ_CHUNK / 4)
            break;
    }
    update_watch(c);
}

static void conn_pump(struct conn *c)
{
    if (conn_parse(c) < 0) {
        conn_close(c, "bad frame");
        return;
    }
    update_watch(c);
}

static void conn_io(struct loop *l, int fd, int mask, void *arg)
{
    (void)l;
    (void)fd;
    struct conn *c = arg;
    if (mask & LOOP_WRITE) {
        if (conn_flush(c) < 0) {
            conn_close(c, "write failed");
            return;
        }
        /* room again: parse frames held back by the in-flight cap */
        if (c->in_len >= 4 && c->nreq < c->b->lim.inflight_per_conn) {
            conn_pump(c);
            return;
        }
        update_watch(c);
    }
    if (mask & LOOP_READ)
        conn_read(c);
}

static void accept_io(struct loop *l, int fd, int mask, void *arg)
{
    (void)l;
    (void)mask;
    struct broker *b = arg;
    for (int i = 0; i < 64; i++) {
        int64_t now = clock_mono_ms();
        if (now - b->accept_window_ms >= 1000) {
            b->accept_window_ms = now;
            b->accepts_in_window = 0;
        }
        if (b->accepts_in_window >= b->lim.accept_rate || b->nconns >= b->lim.max_connections) {
            conn_pause_accept(b);
            return;
        }
        struct sockaddr_in6 sa;
        socklen_t salen = sizeof sa;
        int cfd = accept4(fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: stop accepting for a moment rather
                 * than spin on a listener that stays readable */
                log_warn("accept: %s; pausing the listener", strerror(errno));
                conn_pause_accept(b);
            }
            return;
        }
        b->accepts_in_window++;
        struct conn *c = xcalloc(1, sizeof *c);
        if (!c) {
            close(cfd);
            continue;
        }
        c->b = b;
        c->fd = cfd;
        c->last_active_ms = now;
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (sa.sin6_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
            port = ntohs(s4->sin_port);
            c->peer_ip = ntohl(s4->sin_addr.s_addr);
        } else if (sa.sin6_family == AF_INET6) {
            inet_ntop(AF_INET6, &sa.sin6_addr, host, sizeof host);
            port = ntohs(sa.sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
        int per_ip = 0;
        for (struct conn *o = b->conns; o && c->peer_ip; o = o->next_conn)
            per_ip += o->peer_ip == c->peer_ip;
        if (c->peer_ip && per_ip >= b->lim.max_connections_per_ip) {
            log_warn("refusing %s: max.connections.per.ip %d reached", c->peer, b->lim.max_connections_per_ip);
            close(cfd);
            xfree(c);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->next_conn = b->conns;
        if (b->conns)
            b->conns->prev_conn = c;
        b->conns = c;
        b->nconns++;
        metrics_inc(b->m.accepted);
        metrics_add(b->m.connections, 1);
        c->reading = true;
        if (loop_watch(b->loop, cfd, LOOP_READ, conn_io, c) < 0)
            conn_close(c, "cannot watch the socket");
    }
}

static void resume_timer(struct loop *l, void *arg)
{
    (void)l;
    conn_resume_accept(arg);
}

void conn_pause_accept(struct broker *b)
{
    if (b->listen_paused)
        return;
    b->listen_paused = true;
    loop_unwatch(b->loop, b->listen_fd);
    loop_timer(b->loop, 100, resume_timer, b);
}

void conn_resume_accept(struct broker *b)
{
    if (!b->listen_paused || b->listen_fd < 0)
        return;
    if (b->nconns >= b->lim.max_connections) {
        loop_timer(b->loop, 100, resume_timer, b);
        return;
    }
    b->listen_paused = false;
    loop_watch(b->loop, b->listen_fd, LOOP_READ, accept_io, b);
}

int conn_listen(struct broker *b, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    const char *h = b->listen_host;
    if (!*h || !strcmp(h, "0.0.0.0"))
        h = "0.0.0.0";
    if (!strcmp(h, "localhost"))
        h = "127.0.0.1";
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)b->listen_port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)b->listen_port);
        sl = sizeof *s6;
    } else {
        snprintf(err, errlen, "cannot listen on '%s': give an IP address", b->listen_host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", b->listen_host, b->listen_port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    b->listen_fd = fd;
    return loop_watch(b->loop, fd, LOOP_READ, accept_io, b);
}

void conn_reap(struct broker *b)
{
    int64_t now = clock_mono_ms();
    struct conn *c = b->conns;
    while (c) {
        struct conn *n = c->next_conn;
        if (c->frame_started_ms && now - c->frame_started_ms > b->lim.frame_deadline_ms) {
            log_warn("closing %s: a request frame did not complete within %lld ms", c->peer,
                     (long long)b->lim.frame_deadline_ms);
            conn_close(c, NULL);
        } else if (!c->head && now - c->last_active_ms > b->lim.idle_ms) {
            conn_close(c, "idle");
        }
        c = n;
    }
}
