/* cmd_serve.c: `shopstream serve`, the HTTP API, the dashboard and
 * /metrics (src/serve/).  It reads the result topics of any Kafka cluster
 * (--bootstrap) and never reaches into a processor.  SIGINT/SIGTERM stop it
 * cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "common/log.h"
#include "serve/serve.h"
#include "serve/views.h"

#define CMD "shopstream serve"

static const char usage_text[] =
    "usage: shopstream serve [--http HOST:PORT] [--max-orders N] [--bootstrap HOST:PORT] [-X k=v]...\n"
    "\n"
    "Serves the dashboard (http://HOST:PORT/), its JSON API (/api/...) and Prometheus\n"
    "metrics (/metrics).  The business side comes from the result topics (shop.kpis,\n"
    "shop.order-state, shop.recs, shop.alerts, and the order events of shop.orders and\n"
    "shop.aftersales), read from their beginning and kept in memory; the operations\n"
    "console (topics, messages, consumer groups and lag, brokers) asks the cluster\n"
    "live.  See README.md, \"HTTP API\".\n"
    "  --http HOST:PORT    where to listen (default 127.0.0.1:8080; port 0: any free one)\n"
    "  --max-orders N      orders kept for lookups; the least recently changed go first\n"
    "                      (default 1000000)\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to read (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting for serve's clients; repeatable\n"
    "  --timeout-ms T     limit for each cluster query of the console (default 5000)\n";

int cmd_serve(int argc, char **argv)
{
    struct client_opts o;
    char host[256] = "127.0.0.1", err[512];
    int port = 8080, rc = 1;
    long long max_orders = VIEWS_DEFAULT_MAX_ORDERS;
    const char *v;
    struct serve *s = NULL;

    client_opts_init(&o);
    for (int i = 1; i < argc;) {
        int t;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            client_opts_free(&o);
            return 0;
        }
        if ((t = client_opts_take(&o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                goto out;
            continue;
        }
        if ((t = client_opt_value(CMD, "--http", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_hostport(CMD, "--http", v, host, sizeof host, &port) < 0)
                goto out;
            continue;
        }
        if ((t = client_opt_value(CMD, "--max-orders", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--max-orders", v, 1, 100000000, &max_orders) < 0)
                goto out;
            continue;
        }
        fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
        rc = 2;
        goto out;
    }
    if (!o.timeout_given)
        o.timeout_ms = 5000;
    if (!(s = serve_start(&o, host, port, (long)max_orders, err, sizeof err))) {
        fprintf(stderr, "%s: %s.\n", CMD, err);
        goto out;
    }
    client_catch_signals();
    printf("dashboard: http://%s:%d/\n", host, serve_port(s));
    fflush(stdout);
    log_info("serve: reading %s, listening on http://%s:%d/", o.bootstrap, host, serve_port(s));
    while (!client_interrupted())
        usleep(100 * 1000);
    log_info("serve: stopping");
    serve_stop(s);
    rc = 0;
out:
    client_opts_free(&o);
    return rc;
}
