/* serve.c: starts and stops the serving layer's parts in order (serve.h). */
#include <stdio.h>

#include "common/alloc.h"
#include "serve/ops.h"
#include "serve/serve.h"
#include "serve/serve_metrics.h"
#include "serve/server.h"
#include "serve/views.h"

struct serve {
    struct views *views;
    struct ops *ops;
    struct server *server;
    int metrics;     /* the collector is registered */
};

struct serve *serve_start(const struct client_opts *o, const char *host, int port,
                          long max_orders, char *err, size_t errlen)
{
    struct serve *s = xcalloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(s->views = views_start(o, max_orders, err, errlen)))
        goto fail;
    if (!(s->ops = ops_new(o, err, errlen)))
        goto fail;
    if (serve_metrics_start(s->views, s->ops) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->metrics = 1;
    struct server_conf c = {.host = host, .port = port, .views = s->views, .ops = s->ops};
    if (!(s->server = server_start(&c, err, errlen)))
        goto fail;
    return s;
fail:
    serve_stop(s);
    return NULL;
}

int serve_port(const struct serve *s)
{
    return server_port(s->server);
}

int serve_caught_up(struct serve *s)
{
    struct views_stats st;
    views_stats(s->views, &st);
    return st.caught_up;
}

void serve_stop(struct serve *s)
{
    if (!s)
        return;
    /* the server first: its threads use the views and ops */
    if (s->server)
        server_stop(s->server);
    else if (s->views)
        views_close_subscribers(s->views);
    if (s->metrics)
        serve_metrics_stop();
    ops_free(s->ops);
    views_stop(s->views);
    xfree(s);
}
