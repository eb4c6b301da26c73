/* metrics_http.h: a small HTTP server for Prometheus to scrape, for the
 * commands that do not run `shopstream serve` (broker, process): GET or
 * HEAD /metrics answers metrics_render() (serve/metrics.h) as
 * text/plain; version=0.0.4; any other path is 404 and any other method on
 * /metrics is 405, each with a JSON body {"error": "...", "status": N}.
 *
 * It runs on libmicrohttpd's own polling thread, so a scrape never waits
 * for the caller's threads (and the broker loop never waits for it): at
 * most METRICS_HTTP_MAX_CONNECTIONS connections, each closed after
 * METRICS_HTTP_TIMEOUT_S seconds of inactivity. */
#ifndef SHOPSTREAM_METRICS_HTTP_H
#define SHOPSTREAM_METRICS_HTTP_H

#include <stddef.h>

#define METRICS_HTTP_MAX_CONNECTIONS 16
#define METRICS_HTTP_TIMEOUT_S 10

struct metrics_http;

/* Splits "HOST:PORT" ("[::1]:9100" for IPv6; HOST may be empty or
 * "0.0.0.0" for every address) into host (hostlen bytes) and port.
 * Returns 0, or -1 with one sentence in err. */
int metrics_http_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                              size_t errlen);

/* Listens on host:port (port 0: a free one), logs "metrics on
 * http://HOST:PORT/metrics" and serves on its own thread.  host is
 * borrowed.  Returns owned (metrics_http_stop), or NULL with one sentence
 * in err. */
struct metrics_http *metrics_http_start(const char *host, int port, char *err, size_t errlen);

/* The port it listens on (the chosen one when started with port 0). */
int metrics_http_port(const struct metrics_http *s);

/* Closes the listener and the connections, waits for its thread, frees s.
 * NULL is accepted. */
void metrics_http_stop(struct metrics_http *s);

#endif
