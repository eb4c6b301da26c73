/* serve.h: the serving layer as one piece: the materialised views
 * (views.h), the operations console's cluster queries (ops.h) and the HTTP
 * server (server.h), started and stopped together by `shopstream serve`
 * and `shopstream demo`. */
#ifndef SHOPSTREAM_SERVE_H
#define SHOPSTREAM_SERVE_H

#include <stddef.h>

#include "cli/client_opts.h"

struct serve;

/* Starts reading the cluster of o (borrowed for the life of the serve) and
 * listening on host:port (port 0: a free one).  Returns owned (serve_stop),
 * or NULL with one sentence in err. */
struct serve *serve_start(const struct client_opts *o, const char *host, int port,
                          long max_orders, char *err, size_t errlen);
/* The port the HTTP server listens on. */
int serve_port(const struct serve *s);
/* Caught up: every result partition known has been read to its end once. */
int serve_caught_up(struct serve *s);
void serve_stop(struct serve *s);

#endif
