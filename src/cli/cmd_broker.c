/* cmd_broker.c: `shopstream broker`: reads Kafka-style properties (a file,
 * then --listen/--data-dir/--metrics/--set in order), runs the broker (and
 * the /metrics server when metrics.listen is set), and stops it cleanly on
 * SIGTERM or SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "broker/broker.h"
#include "cli/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "serve/metrics_http.h"

static struct broker *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        broker_stop(running);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shopstream broker [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--metrics HOST:PORT]\n"
            "                         [--set key=value]...\n"
            "\n"
            "Runs the Kafka-compatible broker (default 127.0.0.1:9092, data in ./shopstream-data).\n"
            "Settings use Apache Kafka's property names (listeners, advertised.listeners, log.dirs,\n"
            "num.partitions, log.segment.bytes, log.flush.interval.messages, auto.create.topics.enable,\n"
            "message.max.bytes, socket.request.max.bytes, ...); see README.md.\n"
            "  --config FILE       a server.properties-style file\n"
            "  --listen HOST:PORT  same as --set listeners=PLAINTEXT://HOST:PORT\n"
            "  --data-dir DIR      same as --set log.dirs=DIR\n"
            "  --metrics HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics (port 0:\n"
            "                      a free one, logged); same as --set metrics.listen=HOST:PORT\n"
            "  --set key=value     any property; later settings win\n"
            "  --verbose           debug logging\n");
}

int cmd_broker(int argc, char **argv)
{
    struct config cfg;
    config_init(&cfg);
    char err[512];
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            config_free(&cfg);
            return 0;
        } else if (!strcmp(a, "--verbose")) {
            log_min_level = LOG_DEBUG;
            continue;
        }
        if (!val) {
            fprintf(stderr, "shopstream broker: %s needs a value (see --help).\n", a);
            goto out;
        }
        i++;
        if (!strcmp(a, "--config")) {
            if (config_load_file(&cfg, val, err, sizeof err) < 0) {
                fprintf(stderr, "shopstream broker: %s.\n", err);
                goto out;
            }
        } else if (!strcmp(a, "--listen")) {
            char l[600];
            snprintf(l, sizeof l, "PLAINTEXT://%s", val);
            config_set(&cfg, "listeners", l);
        } else if (!strcmp(a, "--data-dir")) {
            config_set(&cfg, "log.dirs", val);
        } else if (!strcmp(a, "--metrics")) {
            config_set(&cfg, "metrics.listen", val);
        } else if (!strcmp(a, "--set")) {
            if (config_set_pair(&cfg, val, err, sizeof err) < 0) {
                fprintf(stderr, "shopstream broker: --set %s.\n", err);
                goto out;
            }
        } else {
            fprintf(stderr, "shopstream broker: unknown option %s (see --help).\n", a);
            goto out;
        }
    }
    /* one descriptor per segment and connection: take what the system allows */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char mhost[256];
    int mport = 0;
    const char *ml = config_get(&cfg, "metrics.listen");
    if (ml && metrics_http_parse_listen(ml, mhost, sizeof mhost, &mport, err, sizeof err) < 0) {
        fprintf(stderr, "shopstream broker: metrics.listen: %s.\n", err);
        goto out;
    }
    struct broker b;
    if (broker_init(&b, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "shopstream broker: %s.\n", err);
        broker_free(&b);
        goto out;
    }
    struct metrics_http *mh = NULL;
    if (ml && !(mh = metrics_http_start(mhost, mport, err, sizeof err))) {
        fprintf(stderr, "shopstream broker: %s.\n", err);
        broker_free(&b);
        goto out;
    }
    running = &b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    broker_run(&b);
    log_info("shutting down");
    running = NULL;
    metrics_http_stop(mh);
    broker_free(&b);
    log_info("stopped cleanly");
    rc = 0;
out:
    config_free(&cfg);
    return rc;
}
