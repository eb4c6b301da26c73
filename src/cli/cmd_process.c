/* cmd_process.c: `shopstream process orders|aftersales|all`, the stream
 * processors (src/shop/processors.h) on the runtime (src/stream/runtime.h).
 * Each processor is a Kafka client in the consumer group of its application
 * name, so more instances of the same command share the work, and it runs
 * against any Kafka cluster.  `all` runs every processor in one process, one
 * thread each.  SIGINT/SIGTERM stop cleanly: what was processed is
 * committed before exit. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "cli/process_setup.h"
#include "common/log.h"
#include "serve/metrics_http.h"
#include "shop/event.h"
#include "shop/processors.h"
#include "shop/sink.h"
#include "stream/topics.h"

#define CMD "shopstream process"
#define MAX_PROCS 4 /* orders, aftersales, analytics, recommend */

static const char usage_text[] =
    "usage: shopstream process orders|aftersales|analytics|recommend|all [OPTIONS]\n"
    "\n"
    "  orders       order state machine over shop.orders and shop.aftersales:\n"
    "               shop.order-state, SLA alerts, dead letters\n"
    "  aftersales   refund anomalies per user (shop.alerts) from shop.order-state\n"
    "  analytics    KPIs (GMV, orders, AOV, revenue, refunds, PV, UV, conversion,\n"
    "               funnel, top products) in 1m, 1h, 1d event-time windows: shop.kpis\n"
    "  recommend    products viewed/bought together and per-user recommendations,\n"
    "               learnt as events arrive: shop.recs\n"
    "  all          all four, one thread each\n"
    "\n"
    "  --instance-id ID        static group membership (group.instance.id); a\n"
    "                          restarted instance gets its partitions back at once\n"
    "  --app-prefix NAME       consumer group / changelog prefix (default shopstream:\n"
    "                          groups shopstream-orders, shopstream-aftersales)\n"
    "  --partitions N          partitions of shop topics created here (default 6)\n"
    "  --ship-sla-hours H      paid but not shipped after H hours: an alert (default 48)\n"
    "  --return-window-days D  returns accepted up to D days after delivery (default 30)\n"
    "  --reject-orphan-refunds refunds of orders never created go to the dead letters\n"
    "                          (default: accepted as orders older than the stream)\n"
    "  --refund-alert-amount N a user's refunds above N minor units in the window:\n"
    "                          an alert (default 50000)\n"
    "  --refund-window-days D  the refund anomaly window (default 30)\n"
    "  --order-retention-days D orders: forget an order D days (event time) after its\n"
    "                          newest event; its last state stays in shop.order-state\n"
    "                          (default 90)\n"
    "  --lateness MS           allowed lateness of events: SLA timers wait for it, and\n"
    "                          analytics windows close when the largest ts seen minus\n"
    "                          it passes their end (default 5000)\n"
    "  --idle-timeout-ms MS    analytics: a task with nothing to read for MS is left out\n"
    "                          of the watermark until it gets events again, so that\n"
    "                          an idle partition does not hold windows back (default\n"
    "                          30000; 0 never)\n"
    "  --finish-idle-ms MS     analytics: once every input is read to its end and\n"
    "                          nothing new came for MS, close every window (for a\n"
    "                          replayed dataset; later events count as late)\n"
    "  --uv-exact-cap N        distinct users counted exactly up to N per window, then\n"
    "                          HyperLogLog, standard error 0.81% (default 100000)\n"
    "  --commit-interval-ms MS how often results and offsets are committed (default 1000)\n"
    "  --metrics HOST:PORT     serve Prometheus metrics (shopstream_processor_*) at\n"
    "                          http://HOST:PORT/metrics; port 0 picks a free one (logged)\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting for the processors' clients; repeatable\n"
    "  --timeout-ms T     limit for admin requests at start-up\n";

struct running {
    const char *kind;
    struct proc *proc;
    struct stream_app *app;
    pthread_t thread;
    int rc;
    char err[1024];
};

static struct running procs[MAX_PROCS];
static int nprocs;

static void on_stop_signal(int sig)
{
    (void)sig;
    for (int k = 0; k < nprocs; k++)
        if (procs[k].app)
            stream_app_stop(procs[k].app);
}

static void *run_thread(void *arg)
{
    struct running *r = arg;

    r->rc = stream_app_run(r->app, r->err, sizeof r->err);
    /* One processor failing stops the others: the process exits non-zero
     * and is restarted as a whole. */
    if (r->rc < 0)
        on_stop_signal(0);
    return NULL;
}

static int parse_i64(const char *name, const char *v, long long min, long long max, long long *out)
{
    return client_parse_int(CMD, name, v, min, max, out);
}

int process_setup(const char *kind, const char *prefix, const char *instance,
                  const struct proc_settings *s, int commit_ms, const struct client_opts *o,
                  rd_kafka_t *admin, struct proc **procp, struct stream_app **appp)
{
    struct stream_app_conf conf;
    rd_kafka_conf_t *cc, *pc;
    char app_name[200], client_id[256], gi[300], err[1024];
    const char *const *internal;
    struct proc *proc;

    snprintf(app_name, sizeof app_name, "%s-%s", prefix, kind);
    if (!(*procp = proc = proc_new(kind, app_name, s, &conf))) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        return -1;
    }
    conf.commit_interval_ms = commit_ms;
    /* Internal topics get the partition count of the processor's inputs. */
    internal = proc_internal_topics(proc);
    for (int j = 0; internal[j]; j++) {
        int parts = stream_topic_partitions(admin, conf.inputs[0], o->timeout_ms, err, sizeof err);
        struct stream_topic_spec spec = {internal[j], parts, -1, 0};
        if (parts <= 0 || stream_topics_create(admin, &spec, 1, o->timeout_ms, err, sizeof err) < 0) {
            client_report(admin, o, CMD, "cannot create the processor's topics",
                          RD_KAFKA_RESP_ERR__FAIL, parts == 0 ? "no input topic" : err);
            return -1;
        }
    }
    snprintf(client_id, sizeof client_id, "%s%s%s", app_name, instance ? "-" : "",
             instance ? instance : "");
    /* A processor reads backlogs: a deep prefetch (librdkafka stops fetching
     * a partition whose queue is above queued.min.messages and backs off) is
     * worth 3x in throughput; -X can lower it to save memory. */
    const char *cdefaults[9] = {"auto.offset.reset", "earliest", "client.id", client_id,
                                "queued.min.messages", "500000"};
    if (instance) {
        snprintf(gi, sizeof gi, "%s-%s", app_name, instance);
        cdefaults[6] = "group.instance.id";
        cdefaults[7] = gi;
    }
    const char *pdefaults[] = {"client.id", client_id, "linger.ms", "5",
                               "compression.codec", "lz4", NULL};
    if (!(cc = client_conf_new(o, CMD, RD_KAFKA_CONSUMER, cdefaults)))
        return -1;
    if (!(pc = client_conf_new(o, CMD, RD_KAFKA_PRODUCER, pdefaults))) {
        rd_kafka_conf_destroy(cc);
        return -1;
    }
    if (!(*appp = stream_app_new(&conf, cc, pc, err, sizeof err))) {
        fprintf(stderr, "%s %s: %s.\n", CMD, kind, err);
        return -1;
    }
    return 0;
}

int cmd_process(int argc, char **argv)
{
    struct client_opts o;
    struct proc_settings s;
    const char *kind = NULL, *instance = NULL, *prefix = "shopstream", *v;
    long long n, commit_ms = 1000;
    int rc = 1;
    rd_kafka_t *admin = NULL;
    char err[1024], mhost[256];
    const char *metrics_listen = NULL;
    int mport = 0;
    struct metrics_http *mh = NULL;

    client_opts_init(&o);
    proc_settings_default(&s);
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
#define OPT(name) ((t = client_opt_value(CMD, name, argc, argv, &i, &v)) != 0)
        if (OPT("--instance-id")) {
            if (t < 0)
                goto out;
            instance = v;
        } else if (OPT("--app-prefix")) {
            if (t < 0)
                goto out;
            prefix = v;
        } else if (OPT("--partitions")) {
            if (t < 0 || parse_i64("--partitions", v, 1, 10000, &n) < 0)
                goto out;
            s.partitions = (int)n;
        } else if (OPT("--ship-sla-hours")) {
            if (t < 0 || parse_i64("--ship-sla-hours", v, 1, 24 * 365, &n) < 0)
                goto out;
            s.rules.ship_sla_ms = n * 3600 * 1000;
        } else if (OPT("--return-window-days")) {
            if (t < 0 || parse_i64("--return-window-days", v, 0, 3650, &n) < 0)
                goto out;
            s.rules.return_window_ms = n * 86400 * 1000;
        } else if (OPT("--refund-alert-amount")) {
            if (t < 0 || parse_i64("--refund-alert-amount", v, 0, (long long)1 << 52, &n) < 0)
                goto out;
            s.refund_alert_amount = n;
        } else if (OPT("--refund-window-days")) {
            if (t < 0 || parse_i64("--refund-window-days", v, 1, 3650, &n) < 0)
                goto out;
            s.refund_window_ms = n * 86400 * 1000;
        } else if (OPT("--order-retention-days")) {
            if (t < 0 || parse_i64("--order-retention-days", v, 1, 36500, &n) < 0)
                goto out;
            s.order_retention_ms = n * 86400 * 1000;
        } else if (OPT("--lateness")) {
            if (t < 0 || parse_i64("--lateness", v, 0, 86400LL * 1000, &n) < 0)
                goto out;
            s.lateness_ms = n;
        } else if (OPT("--idle-timeout-ms")) {
            if (t < 0 || parse_i64("--idle-timeout-ms", v, 0, 86400LL * 1000, &n) < 0)
                goto out;
            s.idle_timeout_ms = n;
        } else if (OPT("--finish-idle-ms")) {
            if (t < 0 || parse_i64("--finish-idle-ms", v, 0, 86400LL * 1000, &n) < 0)
                goto out;
            s.finish_idle_ms = n;
        } else if (OPT("--uv-exact-cap")) {
            if (t < 0 || parse_i64("--uv-exact-cap", v, 0, 100000000, &n) < 0)
                goto out;
            s.uv_exact_cap = (size_t)n;
        } else if (OPT("--metrics")) {
            if (t < 0)
                goto out;
            if (metrics_http_parse_listen(v, mhost, sizeof mhost, &mport, err, sizeof err) < 0) {
                fprintf(stderr, "%s: --metrics: %s.\n", CMD, err);
                rc = 2;
                goto out;
            }
            metrics_listen = v;
        } else if (OPT("--commit-interval-ms")) {
            if (t < 0 || parse_i64("--commit-interval-ms", v, 10, 600000, &commit_ms) < 0)
                goto out;
        } else if (!strcmp(argv[i], "--reject-orphan-refunds")) {
            s.rules.accept_orphan_refunds = 0;
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            rc = 2;
            goto out;
        } else if (!kind) {
            kind = argv[i++];
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'.\n", CMD, argv[i]);
            rc = 2;
            goto out;
        }
#undef OPT
    }
    if (!kind) {
        fprintf(stderr, "%s: say which processor: orders, aftersales, analytics, recommend or all.\n", CMD);
        rc = 2;
        goto out;
    }
    if (!strcmp(kind, "all")) {
        procs[nprocs++].kind = "orders";
        procs[nprocs++].kind = "aftersales";
        procs[nprocs++].kind = "analytics";
        procs[nprocs++].kind = "recommend";
    } else if (!strcmp(kind, "orders") || !strcmp(kind, "aftersales") ||
               !strcmp(kind, "analytics") || !strcmp(kind, "recommend")) {
        procs[nprocs++].kind = kind;
    } else {
        fprintf(stderr, "%s: unknown processor '%s'; expected orders, aftersales, analytics, recommend or all.\n", CMD,
                kind);
        rc = 2;
        goto out;
    }

    /* The topics every processor reads or writes, before any of them starts. */
    if (!(admin = client_admin_new(&o, CMD)))
        goto out;
    if (shop_topics_ensure(admin, s.partitions, -1, o.timeout_ms, err, sizeof err) < 0) {
        client_report(admin, &o, CMD, "cannot create the shop topics", RD_KAFKA_RESP_ERR__FAIL,
                      err);
        goto out;
    }

    for (int k = 0; k < nprocs; k++)
        if (process_setup(procs[k].kind, prefix, instance, &s, (int)commit_ms, &o, admin,
                          &procs[k].proc, &procs[k].app) < 0)
            goto out;

    if (metrics_listen && !(mh = metrics_http_start(mhost, mport, err, sizeof err))) {
        fprintf(stderr, "%s: %s.\n", CMD, err);
        goto out;
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    log_info("process: running %s against %s", kind, o.bootstrap);
    if (nprocs == 1) {
        run_thread(&procs[0]);
    } else {
        for (int k = 0; k < nprocs; k++)
            if (pthread_create(&procs[k].thread, NULL, run_thread, &procs[k]) != 0) {
                fprintf(stderr, "%s: cannot start a thread.\n", CMD);
                on_stop_signal(0);
                for (int j = 0; j < k; j++)
                    pthread_join(procs[j].thread, NULL);
                goto out;
            }
        for (int k = 0; k < nprocs; k++)
            pthread_join(procs[k].thread, NULL);
    }
    rc = 0;
    for (int k = 0; k < nprocs; k++) {
        struct running *r = &procs[k];
        struct stream_stats st;
        struct proc_counts pc;
        stream_app_stats(r->app, &st);
        proc_counts(r->proc, &pc);
        fprintf(stderr,
                "%s %s: %lld records, %lld events, %lld duplicates, %lld dead letters, %lld "
                "alerts, %lld results, %lld commits",
                CMD, r->kind, st.records, pc.events, pc.duplicates, pc.deadletters, pc.alerts,
                pc.results, st.commits);
        if (!strcmp(r->kind, "analytics"))
            fprintf(stderr, ", %lld windows open at most", pc.peak_windows);
        if (!strcmp(r->kind, "orders"))
            fprintf(stderr, ", %lld orders held, %lld forgotten", pc.orders_held,
                    pc.orders_forgotten);
        fputc('\n', stderr);
        if (r->rc < 0) {
            fprintf(stderr, "%s %s: %s.\n", CMD, r->kind, r->err);
            rc = 1;
        }
    }
out:
    metrics_http_stop(mh);
    for (int k = 0; k < nprocs; k++) {
        stream_app_destroy(procs[k].app);
        proc_free(procs[k].proc);
        procs[k].app = NULL;
    }
    nprocs = 0;
    if (admin)
        rd_kafka_destroy(admin);
    client_opts_free(&o);
    return rc;
}
