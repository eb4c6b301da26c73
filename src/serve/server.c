/* server.c: routes HTTP requests to views.h, ops.h and metrics, on
 * libmicrohttpd (see server.h).  Each request is answered on its
 * connection's thread; an event stream keeps its thread and blocks in
 * views_sub_read between events. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "serve/assets.h"
#include "serve/metrics.h"
#include "serve/ops.h"
#include "serve/server.h"
#include "serve/serve_metrics.h"
#include "serve/views.h"
#include "shop/json.h"

struct server {
    struct MHD_Daemon *d;
    struct server_conf c;
    int port;
};

/* --- responses --------------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *conn, int status, const char *type,
                                 const void *body, size_t len, int copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "application/json", 16) || !strncmp(type, "text/plain", 10))
        MHD_add_response_header(r, "Cache-Control", "no-store");
    if (!strncmp(type, "text/html", 9))
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; connect-src 'self'");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, struct jbuf *b)
{
    if (b->oom) {
        static const char oom[] = "{\"error\":\"out of memory\",\"status\":503}";
        return send_body(conn, 503, "application/json", oom, sizeof oom - 1, 0);
    }
    return send_body(conn, status, "application/json", b->p ? b->p : "", b->len, 1);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg)
{
    struct jbuf b;
    jbuf_init(&b);
    json_w_obj_begin(&b, NULL);
    json_w_cstr(&b, "error", msg);
    json_w_int(&b, "status", status);
    json_w_obj_end(&b);
    enum MHD_Result r = send_json(conn, status, &b);
    jbuf_free(&b);
    return r;
}

/* --- query parameters ---------------------------------------------------------- */

/* Reads integer parameter name into *out (def when absent).  Returns 0, or
 * -1 with a message in err. */
static int q_int(struct MHD_Connection *conn, const char *name, int64_t def, int64_t min,
                 int64_t max, int64_t *out, char *err, size_t errlen)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    *out = def;
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < min || x > max) {
        snprintf(err, errlen, "parameter %s must be an integer from %lld to %lld", name,
                 (long long)min, (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

/* --- the event stream -------------------------------------------------------------- */

struct sse {
    struct views_sub *sub;
    struct jbuf buf;
    size_t off;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse *s = cls;
    if (s->off >= s->buf.len) {
        jbuf_reset(&s->buf);
        s->off = 0;
        if (views_sub_read(s->sub, SERVER_SSE_PING_MS, &s->buf) < 0 || s->buf.oom)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = s->buf.len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->buf.p + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    views_unsubscribe(s->sub);
    jbuf_free(&s->buf);
    xfree(s);
}

static enum MHD_Result send_stream(struct server *sv, struct MHD_Connection *conn)
{
    struct sse *s = xcalloc(1, sizeof *s);
    if (!s || !(s->sub = views_subscribe(sv->c.views))) {
        xfree(s);
        return send_error(conn, 503, "out of memory");
    }
    jbuf_init(&s->buf);
    jbuf_raw(&s->buf, "retry: 2000\n\n", 13);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                               sse_read, s, sse_free);
    if (!r) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* --- routes ----------------------------------------------------------------------- */

/* If path starts with prefix, the rest (a view into path); else NULL. */
static const char *after(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) ? NULL : path + n;
}

static int api_business(struct server *sv, struct MHD_Connection *conn, const char *url,
                        struct jbuf *b, char *err, size_t errlen)
{
    struct views *v = sv->c.views;
    const char *rest;
    int64_t limit, from, to;
    if (!strcmp(url, "/api/kpis") || !strcmp(url, "/api/kpis/latest")) {
        const char *w = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "window");
        int win = w ? views_window_parse(w) : VIEWS_1M;
        if (win < 0) {
            snprintf(err, errlen, "parameter window must be 1m, 1h or 1d");
            return 400;
        }
        if (!strcmp(url, "/api/kpis/latest"))
            return views_kpis_latest(v, win, b);
        if (q_int(conn, "limit", 60, 1, VIEWS_MAX_WINDOWS, &limit, err, errlen) < 0 ||
            q_int(conn, "from", -1, 0, INT64_MAX / 2, &from, err, errlen) < 0 ||
            q_int(conn, "to", -1, 0, INT64_MAX / 2, &to, err, errlen) < 0)
            return 400;
        return views_kpis(v, win, from, to, (int)limit, b);
    }
    if (!strcmp(url, "/api/orders")) {
        if (q_int(conn, "limit", 20, 1, VIEWS_MAX_RECENT, &limit, err, errlen) < 0)
            return 400;
        return views_orders_recent(v, (int)limit, b);
    }
    if ((rest = after(url, "/api/orders/"))) {
        if (!*rest || strlen(rest) > 256) {
            snprintf(err, errlen, "an order id has 1 to 256 bytes");
            return 400;
        }
        if (views_order(v, rest, b) == 404) {
            snprintf(err, errlen, "no order %.200s", rest);
            return 404;
        }
        return 200;
    }
    if (!strcmp(url, "/api/recs")) {
        const char *kind = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "kind");
        if (!kind)
            kind = "product";
        if (strcmp(kind, "product") && strcmp(kind, "user")) {
            snprintf(err, errlen, "parameter kind must be product or user");
            return 400;
        }
        if (q_int(conn, "limit", 100, 1, 1000, &limit, err, errlen) < 0)
            return 400;
        return views_recs_keys(v, kind, (int)limit, b);
    }
    if (!strcmp(url, "/api/recs/popular") || (rest = after(url, "/api/recs/product/")) ||
        (rest = after(url, "/api/recs/user/"))) {
        char key[300];
        if (!strcmp(url, "/api/recs/popular")) {
            snprintf(key, sizeof key, "popular");
        } else {
            if (!*rest || strlen(rest) > 256) {
                snprintf(err, errlen, "an id has 1 to 256 bytes");
                return 400;
            }
            snprintf(key, sizeof key, "%s:%s", url[10] == 'p' ? "product" : "user", rest);
        }
        if (views_recs(v, key, b) == 404) {
            snprintf(err, errlen, "no recommendations for %.200s", key);
            return 404;
        }
        return 200;
    }
    if (!strcmp(url, "/api/alerts")) {
        if (q_int(conn, "limit", 50, 1, VIEWS_MAX_ALERTS, &limit, err, errlen) < 0)
            return 400;
        return views_alerts(v, (int)limit, b);
    }
    if (!strcmp(url, "/api/summary"))
        return views_summary(v, b);
    snprintf(err, errlen, "no such path");
    return 404;
}

static int api_ops(struct server *sv, struct MHD_Connection *conn, const char *url,
                   struct jbuf *b, char *err, size_t errlen)
{
    struct ops *o = sv->c.ops;
    const char *rest;
    if (!strcmp(url, "/api/cluster"))
        return ops_cluster(o, b, err, errlen);
    if (!strcmp(url, "/api/topics"))
        return ops_topics(o, b, err, errlen);
    if (!strcmp(url, "/api/groups"))
        return ops_groups(o, b, err, errlen);
    if ((rest = after(url, "/api/groups/"))) {
        if (!*rest || strlen(rest) > 255) {
            snprintf(err, errlen, "a group id has 1 to 255 bytes");
            return 400;
        }
        return ops_group(o, rest, b, err, errlen);
    }
    if ((rest = after(url, "/api/topics/"))) {
        char name[256];
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n == 0 || n > 249) {
            snprintf(err, errlen, "a topic name has 1 to 249 characters");
            return 400;
        }
        memcpy(name, rest, n);
        name[n] = 0;
        if (!slash)
            return ops_topic(o, name, b, err, errlen);
        if (strcmp(slash, "/messages")) {
            snprintf(err, errlen, "no such path");
            return 404;
        }
        int64_t part, offset, time_ms, limit, scan;
        if (!MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "partition")) {
            snprintf(err, errlen, "parameter partition is required");
            return 400;
        }
        if (q_int(conn, "partition", 0, 0, INT32_MAX, &part, err, errlen) < 0 ||
            q_int(conn, "offset", -1, 0, INT64_MAX, &offset, err, errlen) < 0 ||
            q_int(conn, "time", -1, 0, INT64_MAX, &time_ms, err, errlen) < 0 ||
            q_int(conn, "limit", 50, 1, 500, &limit, err, errlen) < 0 ||
            q_int(conn, "scan", 10000, 1, 100000, &scan, err, errlen) < 0)
            return 400;
        if (offset >= 0 && time_ms >= 0) {
            snprintf(err, errlen, "give offset or time, not both");
            return 400;
        }
        const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "q");
        if (q && strlen(q) > 1024) {
            snprintf(err, errlen, "parameter q is longer than 1024 bytes");
            return 400;
        }
        struct ops_browse br = {.partition = (int32_t)part,
                                .offset = offset,
                                .time_ms = time_ms,
                                .limit = (int)limit,
                                .q = q && *q ? q : NULL,
                                .scan = (int)scan};
        return ops_messages(o, name, &br, b, err, errlen);
    }
    snprintf(err, errlen, "no such path");
    return 404;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct server *sv = cls;
    /* GET and HEAD are answered on the first call; a body sent with them is
     * not read, and the connection is closed after the answer. */
    (void)con_cls;
    (void)upload_data_size;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return send_error(conn, 405, "only GET and HEAD are allowed");
    for (const struct serve_asset *a = serve_assets; a->path; a++)
        if (!strcmp(url, a->path))
            return send_body(conn, 200, a->content_type, a->data, a->len, 0);
    if (!strcmp(url, "/metrics")) {
        struct obuf b;
        obuf_init(&b);
        enum MHD_Result r = serve_metrics_render(&b) < 0
                                ? send_error(conn, 503, "out of memory")
                                : send_body(conn, 200, METRICS_CONTENT_TYPE,
                                            b.data ? (const char *)b.data : "", b.len, 1);
        obuf_free(&b);
        return r;
    }
    if (!strcmp(url, "/api/stream"))
        return send_stream(sv, conn);
    if (strncmp(url, "/api/", 5))
        return send_error(conn, 404, "no such path");
    struct jbuf b;
    char err[512] = "";
    jbuf_init(&b);
    int status;
    if (!strcmp(url, "/api/cluster") || after(url, "/api/topics") || after(url, "/api/groups"))
        status = api_ops(sv, conn, url, &b, err, sizeof err);
    else
        status = api_business(sv, conn, url, &b, err, sizeof err);
    enum MHD_Result r;
    if (status == 200)
        r = send_json(conn, 200, &b);
    else
        r = send_error(conn, status, err[0] ? err : "request failed");
    jbuf_free(&b);
    return r;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_debug("http: %s", msg);
}

struct server *server_start(const struct server_conf *c, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "cannot listen on %s: give an IPv4 address such as 127.0.0.1",
                 c->host);
        return NULL;
    }
    struct server *sv = xcalloc(1, sizeof *sv);
    if (!sv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sv->c = *c;
    sv->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG,
        (uint16_t)c->port, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVER_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)SERVER_MAX_CONNECTIONS / 2,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_END);
    if (!sv->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not an address of this machine)",
                 c->host, c->port);
        xfree(sv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = info ? info->port : c->port;
    return sv;
}

int server_port(const struct server *s)
{
    return s->port;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    views_close_subscribers(s->c.views);
    MHD_stop_daemon(s->d);
    xfree(s);
}
