/* metrics_http.c: /metrics over libmicrohttpd (see metrics_http.h).  The
 * listening socket is opened here rather than by libmicrohttpd, so that a
 * failure to bind is reported with its reason and port 0 can be read back
 * with getsockname; libmicrohttpd closes it in MHD_stop_daemon. */
#include "serve/metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/obuf.h"
#include "serve/metrics.h"

struct metrics_http {
    struct MHD_Daemon *daemon; /* owned */
    int port;
};

int metrics_http_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                              size_t errlen)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", s ? s : "");
        return -1;
    }
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:9100 */
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        snprintf(err, errlen, "'%s' is not HOST:PORT (write an IPv6 address in brackets)", s);
        return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535) {
        snprintf(err, errlen, "'%s' has no valid port (0-65535)", s);
        return -1;
    }
    if (hl >= hostlen) {
        snprintf(err, errlen, "the host of '%s' is too long", s);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

static enum MHD_Result send_json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%u}\n", msg, status);
    struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* On the server's thread. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    static int seen_headers;
    (void)cls;
    (void)version;
    (void)upload;
    /* Errors are answered at once (a request body is then not read, and the
     * connection closes). */
    if (strcmp(url, "/metrics"))
        return send_json_error(c, MHD_HTTP_NOT_FOUND, "not found: metrics are at /metrics");
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return send_json_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET");
    /* A response queued in the first call (headers only) makes
     * libmicrohttpd close the connection; answered in the second, a
     * scraper's connection is kept alive. */
    if (!*ctx) {
        *ctx = &seen_headers;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* a GET with a body: the body is ignored */
        return MHD_YES;
    }
    struct obuf o;
    obuf_init(&o);
    if (metrics_render(&o) < 0) {
        obuf_free(&o);
        return send_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    struct MHD_Response *r;
    if (o.data) {
        /* the response takes the buffer */
        r = MHD_create_response_from_buffer_with_free_callback(o.len, o.data, xfree);
        if (!r)
            obuf_free(&o);
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", METRICS_CONTENT_TYPE);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    log_warn("metrics http: %s", buf);
}

/* A listening socket on host:port.  Returns the fd, or -1 with err. */
static int open_listener(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const char *h = host && *host && strcmp(host, "*") ? host : NULL;
    int gai = getaddrinfo(h, ps, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    /* prefer IPv4 when the name has both (localhost), like the broker */
    struct addrinfo *ai = res;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d for metrics: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

struct metrics_http *metrics_http_start(const char *host, int port, char *err, size_t errlen)
{
    struct metrics_http *s = xcalloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int fd = open_listener(host, port, err, errlen);
    if (fd < 0) {
        xfree(s);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "0";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof addr, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
    s->port = atoi(serv);
    s->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot start the metrics HTTP server on %s:%d", host, port);
        close(fd);
        xfree(s);
        return NULL;
    }
    bool v6 = ss.ss_family == AF_INET6;
    log_info("metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", addr, v6 ? "]" : "", s->port);
    return s;
}

int metrics_http_port(const struct metrics_http *s)
{
    return s->port;
}

void metrics_http_stop(struct metrics_http *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    xfree(s);
}
