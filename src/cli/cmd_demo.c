/* cmd_demo.c: `shopstream demo`, the whole platform in one process: the
 * broker (its loop on a thread), the four processors (a thread each), the
 * simulator (a thread producing paced, live traffic) and serve (the
 * dashboard).  Every hop still goes through the Kafka protocol on loopback,
 * exactly as when each part runs alone.
 *
 * Ctrl-C stops it in the order that loses nothing: the simulator stops and
 * waits for its events to be acknowledged; the processors stop, which
 * commits their results and offsets; serve stops; the broker flushes and
 * closes its logs.  A second Ctrl-C kills the process.  Started again on the
 * same data dir, it carries on from there. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "cli/client_opts.h"
#include "cli/commands.h"
#include "cli/event_sink.h"
#include "cli/process_setup.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "serve/serve.h"
#include "serve/views.h"
#include "shop/event.h"
#include "shop/processors.h"
#include "shop/simulate.h"
#include "shop/sink.h"

#define CMD "shopstream demo"
#define NPROCS 4

static const char usage_text[] =
    "usage: shopstream demo [--listen HOST:PORT] [--http HOST:PORT] [--data-dir DIR]\n"
    "                       [--rate EV_PER_S] [--time-scale K] [--partitions N] [--seed S]\n"
    "\n"
    "Runs the broker, the processors (orders, aftersales, analytics, recommend), the\n"
    "traffic simulator and serve in one process, and prints the dashboard's URL.\n"
    "Ctrl-C stops everything cleanly; run it again on the same data dir to go on.\n"
    "  --listen HOST:PORT  the broker (default 127.0.0.1:9092, or a free port if taken)\n"
    "  --http HOST:PORT    the dashboard (default 127.0.0.1:8080, or a free port if taken)\n"
    "  --data-dir DIR      the broker's data (default ./shopstream-demo-data)\n"
    "  --rate R            simulated events per second, mean over a day (default 200)\n"
    "  --time-scale K      orders ship, arrive and get returned K times faster than in\n"
    "                      life, so that their whole story shows in minutes (default 60)\n"
    "  --partitions N      partitions of the shop topics (default 3)\n"
    "  --users N, --products N, --seed S   the simulated shop (defaults 10000, 1000, the time)\n"
    "  --quiet             no status lines\n"
    "  --verbose           the broker's and processors' logs too\n";

struct proc_run {
    const char *kind;
    struct proc *proc;
    struct stream_app *app;
    pthread_t thread;
    int started;
    int rc;
    char err[1024];
};

struct demo {
    struct broker broker;
    int broker_ok;
    pthread_t broker_thread;
    struct proc_run procs[NPROCS];
    struct sim_opts so;
    pthread_t sim_thread;
    int sim_started;
    volatile int sim_stop;
    long long sim_events, sim_failed; /* written by the simulator thread */
    const struct client_opts *co;
    int partitions;
    int stopped;
};

static void *broker_main(void *arg)
{
    struct demo *d = arg;
    broker_run(&d->broker);
    return NULL;
}

static void *proc_main(void *arg)
{
    struct proc_run *r = arg;
    r->rc = stream_app_run(r->app, r->err, sizeof r->err);
    return NULL;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The simulator: live traffic, paced by the wall clock, into the broker. */
static void *sim_main(void *arg)
{
    struct demo *d = arg;
    char errstr[256];
    struct sim *sim = sim_new(&d->so, errstr, sizeof errstr);
    struct shop_sink *sink = NULL;
    if (!sim) {
        log_error("demo: simulator: %s", errstr);
        return NULL;
    }
    if (!(sink = event_sink_open(d->co, CMD, 0, d->partitions))) {
        sim_free(sim);
        return NULL;
    }
    int64_t wall0 = clock_mono_ms();
    struct shop_event ev;
    while (!d->sim_stop && sim_next(sim, &ev)) {
        int64_t due = wall0 + (ev.ts - d->so.start_ms), now;
        while (!d->sim_stop && (now = clock_mono_ms()) < due) {
            sleep_ms(due - now < 100 ? due - now : 100);
            shop_sink_poll(sink);
        }
        if (d->sim_stop)
            break;
        if (shop_sink_emit(sink, &ev) < 0) {
            __atomic_add_fetch(&d->sim_failed, 1, __ATOMIC_RELAXED);
            break;
        }
        __atomic_add_fetch(&d->sim_events, 1, __ATOMIC_RELAXED);
    }
    /* every event handed to the producer is acknowledged before we go */
    struct shop_sink_stats st;
    if (shop_sink_close(sink, 30000, &st) < 0)
        log_error("demo: simulator: some events were not acknowledged");
    sim_free(sim);
    return NULL;
}

/* Starts the broker on host:port; when the port was not given and is taken,
 * on a free one.  Returns 0 or -1 after printing an error. */
static int start_broker(struct demo *d, struct config *cfg, const char *host, int port,
                        int port_given, const char *data_dir)
{
    char l[600], err[512];
    snprintf(l, sizeof l, "PLAINTEXT://%s:%d", host, port);
    config_set(cfg, "listeners", l);
    config_set(cfg, "log.dirs", data_dir);
    if (broker_init(&d->broker, cfg, err, sizeof err) < 0) {
        broker_free(&d->broker);
        if (port_given) {
            fprintf(stderr, "%s: %s.\n", CMD, err);
            return -1;
        }
        snprintf(l, sizeof l, "PLAINTEXT://%s:0", host);
        config_set(cfg, "listeners", l);
        memset(&d->broker, 0, sizeof d->broker);
        if (broker_init(&d->broker, cfg, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s.\n", CMD, err);
            broker_free(&d->broker);
            return -1;
        }
    }
    d->broker_ok = 1;
    if (pthread_create(&d->broker_thread, NULL, broker_main, d) != 0) {
        fprintf(stderr, "%s: cannot start a thread.\n", CMD);
        broker_free(&d->broker);
        d->broker_ok = 0;
        return -1;
    }
    return 0;
}

static void stop_all(struct demo *d, struct serve *s)
{
    if (d->stopped)
        return;
    d->stopped = 1;
    if (d->sim_started) {
        d->sim_stop = 1;
        pthread_join(d->sim_thread, NULL);
        d->sim_started = 0;
        fprintf(stderr, CMD ": simulator stopped, its events acknowledged\n");
    }
    int ran = 0;
    for (int k = 0; k < NPROCS; k++)
        if (d->procs[k].started) {
            stream_app_stop(d->procs[k].app);
            ran = 1;
        }
    for (int k = 0; k < NPROCS; k++)
        if (d->procs[k].started) {
            pthread_join(d->procs[k].thread, NULL);
            d->procs[k].started = 0;
            if (d->procs[k].rc < 0)
                log_error("demo: %s: %s", d->procs[k].kind, d->procs[k].err);
        }
    for (int k = 0; k < NPROCS; k++) {
        stream_app_destroy(d->procs[k].app);
        proc_free(d->procs[k].proc);
        d->procs[k].app = NULL;
        d->procs[k].proc = NULL;
    }
    if (ran)
        fprintf(stderr, CMD ": processors stopped, their offsets committed\n");
    if (s)
        serve_stop(s);
    if (d->broker_ok) {
        broker_stop(&d->broker);
        pthread_join(d->broker_thread, NULL);
        broker_free(&d->broker);
        d->broker_ok = 0;
        fprintf(stderr, CMD ": broker stopped, logs flushed\n");
    }
}

static void status_line(struct demo *d, int tty, int64_t t0)
{
    long long records = 0;
    for (int k = 0; k < NPROCS; k++) {
        struct stream_stats st;
        if (d->procs[k].app) {
            stream_app_stats(d->procs[k].app, &st);
            records += st.records;
        }
    }
    double secs = (double)(clock_mono_ms() - t0) / 1000.0;
    long long ev = __atomic_load_n(&d->sim_events, __ATOMIC_RELAXED);
    fprintf(stderr, "%s%.0f s: %lld events simulated (%.0f/s), %lld records processed%s",
            tty ? "\r\033[K" : "", secs, ev, secs > 0 ? (double)ev / secs : 0.0, records,
            tty ? "" : "\n");
}

int cmd_demo(int argc, char **argv)
{
    struct client_opts o;
    struct config cfg;
    struct demo *d = calloc(1, sizeof *d);
    char khost[256] = "127.0.0.1", hhost[256] = "127.0.0.1", bootstrap[300], err[1024];
    int kport = 9092, hport = 8080, kgiven = 0, hgiven = 0, quiet = 0, verbose = 0, rc = 1;
    long long n;
    const char *data_dir = "shopstream-demo-data", *v;
    struct serve *s = NULL;
    rd_kafka_t *admin = NULL;
    struct proc_settings ps;

    if (!d) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        return 1;
    }
    client_opts_init(&o);
    config_init(&cfg);
    proc_settings_default(&ps);
    sim_opts_default(&d->so);
    d->so.rate = 200;
    d->so.duration_ms = -1;
    d->so.time_scale = 60;
    d->so.seed = (uint64_t)clock_wall_ms();
    d->partitions = 3;
    for (int i = 1; i < argc;) {
        int t;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
            i++;
            continue;
        }
#define OPT(name) ((t = client_opt_value(CMD, name, argc, argv, &i, &v)) != 0)
        if (OPT("--listen")) {
            if (t < 0 || client_parse_hostport(CMD, "--listen", v, khost, sizeof khost, &kport) < 0)
                goto out;
            kgiven = 1;
        } else if (OPT("--http")) {
            if (t < 0 || client_parse_hostport(CMD, "--http", v, hhost, sizeof hhost, &hport) < 0)
                goto out;
            hgiven = 1;
        } else if (OPT("--data-dir")) {
            if (t < 0)
                goto out;
            data_dir = v;
        } else if (OPT("--rate")) {
            char *end;
            if (t < 0)
                goto out;
            d->so.rate = strtod(v, &end);
            if (*end || !(d->so.rate >= 0.01 && d->so.rate <= 1e6)) {
                fprintf(stderr, "%s: --rate must be from 0.01 to 1000000.\n", CMD);
                goto out;
            }
        } else if (OPT("--time-scale")) {
            char *end;
            if (t < 0)
                goto out;
            d->so.time_scale = strtod(v, &end);
            if (*end || !(d->so.time_scale >= 1 && d->so.time_scale <= 1e6)) {
                fprintf(stderr, "%s: --time-scale must be from 1 to 1000000.\n", CMD);
                goto out;
            }
        } else if (OPT("--partitions")) {
            if (t < 0 || client_parse_int(CMD, "--partitions", v, 1, 1000, &n) < 0)
                goto out;
            d->partitions = (int)n;
        } else if (OPT("--users")) {
            if (t < 0 || client_parse_int(CMD, "--users", v, 1, SIM_MAX_USERS, &n) < 0)
                goto out;
            d->so.users = (int)n;
        } else if (OPT("--products")) {
            if (t < 0 || client_parse_int(CMD, "--products", v, 1, SIM_MAX_PRODUCTS, &n) < 0)
                goto out;
            d->so.products = (int)n;
        } else if (OPT("--seed")) {
            if (t < 0 || client_parse_int(CMD, "--seed", v, 0, INT64_MAX, &n) < 0)
                goto out;
            d->so.seed = (uint64_t)n;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            rc = 2;
            goto out;
        }
#undef OPT
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    client_catch_signals();
    /* the parts' own start-up and shutdown logs would bury the status lines */
    if (!verbose)
        log_min_level = LOG_WARN;
    int64_t t0 = clock_mono_ms();

    /* 1. the broker */
    if (start_broker(d, &cfg, khost, kport, kgiven, data_dir) < 0)
        goto out;
    snprintf(bootstrap, sizeof bootstrap, "%s:%d", khost, d->broker.listen_port);
    o.bootstrap = bootstrap;
    d->co = &o;
    fprintf(stderr, "%s: broker on %s (data in %s)\n", CMD, bootstrap, data_dir);

    /* 2. the topics and the processors */
    if (!(admin = client_admin_new(&o, CMD)))
        goto out;
    if (shop_topics_ensure(admin, d->partitions, -1, o.timeout_ms, err, sizeof err) < 0) {
        fprintf(stderr, "%s: cannot create the shop topics: %s.\n", CMD, err);
        goto out;
    }
    static const char *const kinds[NPROCS] = {"orders", "aftersales", "analytics", "recommend"};
    for (int k = 0; k < NPROCS; k++) {
        struct proc_run *r = &d->procs[k];
        r->kind = kinds[k];
        if (process_setup(r->kind, "shopstream", NULL, &ps, 1000, &o, admin, &r->proc, &r->app) <
            0)
            goto out;
    }
    for (int k = 0; k < NPROCS; k++) {
        struct proc_run *r = &d->procs[k];
        if (pthread_create(&r->thread, NULL, proc_main, r) != 0) {
            fprintf(stderr, "%s: cannot start a thread.\n", CMD);
            goto out;
        }
        r->started = 1;
    }
    fprintf(stderr, "%s: processors orders, aftersales, analytics and recommend running\n", CMD);

    /* 3. serve */
    if (!(s = serve_start(&o, hhost, hport, VIEWS_DEFAULT_MAX_ORDERS, err, sizeof err))) {
        if (hgiven) {
            fprintf(stderr, "%s: %s.\n", CMD, err);
            goto out;
        }
        if (!(s = serve_start(&o, hhost, 0, VIEWS_DEFAULT_MAX_ORDERS, err, sizeof err))) {
            fprintf(stderr, "%s: %s.\n", CMD, err);
            goto out;
        }
    }

    /* 4. the simulator: live event time; ids unique to this run */
    d->so.start_ms = clock_wall_ms();
    snprintf(d->so.id_prefix, sizeof d->so.id_prefix, "%llx-",
             (unsigned long long)(d->so.start_ms / 1000) & 0xffffffffULL);
    if (pthread_create(&d->sim_thread, NULL, sim_main, d) != 0) {
        fprintf(stderr, "%s: cannot start a thread.\n", CMD);
        goto out;
    }
    d->sim_started = 1;
    fprintf(stderr, "%s: simulating %.0f events/s (time scale %g)\n", CMD, d->so.rate,
            d->so.time_scale);
    printf("dashboard: http://%s:%d/\n", hhost, serve_port(s));
    fflush(stdout);
    fprintf(stderr, "%s: ready in %lld ms; press Ctrl-C to stop\n", CMD,
            (long long)(clock_mono_ms() - t0));

    int tty = isatty(STDERR_FILENO);
    int64_t last = clock_mono_ms();
    while (!client_interrupted()) {
        sleep_ms(100);
        int failed = 0;
        for (int k = 0; k < NPROCS; k++)
            failed |= d->procs[k].started && d->procs[k].rc < 0;
        if (failed) {
            fprintf(stderr, "\n%s: a processor failed; stopping.\n", CMD);
            break;
        }
        int64_t now = clock_mono_ms();
        if (!quiet && now - last >= (tty ? 1000 : 10000)) {
            status_line(d, tty, t0);
            last = now;
        }
    }
    if (!quiet && tty)
        fputc('\n', stderr);
    fprintf(stderr, "%s: stopping\n", CMD);
    int failed = 0;
    for (int k = 0; k < NPROCS; k++)
        failed |= d->procs[k].rc < 0;
    rd_kafka_destroy(admin);
    admin = NULL;
    stop_all(d, s);
    s = NULL;
    fprintf(stderr, "%s: stopped cleanly after %lld simulated events%s\n", CMD,
            (long long)__atomic_load_n(&d->sim_events, __ATOMIC_RELAXED),
            d->sim_failed ? " (the simulator stopped early: an event was refused)" : "");
    rc = failed ? 1 : 0;
out:
    if (admin)
        rd_kafka_destroy(admin);
    stop_all(d, s);
    config_free(&cfg);
    client_opts_free(&o);
    free(d);
    return rc;
}
