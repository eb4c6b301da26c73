/* bench_process.c: `shopstream bench process analytics|recommend`: a
 * processor's throughput on this machine, as one line of JSON.
 *
 * Without --bootstrap it starts a private broker (this binary, on a free
 * 127.0.0.1 port, data in a temporary directory removed afterwards) and
 * fills it with `shopstream simulate --events N`.  Then it runs the
 * processor in this process over the whole backlog of its inputs, from the
 * first offset, in a fresh consumer group, and reports wall time and CPU
 * time of this process (the processor and its librdkafka threads; the
 * broker is another process) until the last record is processed:
 *   {"bench":"process analytics","events":N,"partitions":P,"seconds":S,
 *    "events_per_sec":E,"cpu_seconds":C,"events_per_cpu_sec":EC,
 *    "max_rss_kb":M}
 * events_per_cpu_sec is the per-core figure: events for each second of CPU
 * the processor used.  For recommend the clock stops once the model has
 * also learnt every observation (through the global input), and the line
 * adds "learnt", "learn_p99_us" and "answer_p99_us" (p99 of the time to
 * learn one event and to compute one user's recommendations, measured in
 * the processor; histogram buckets are powers of two, so the figure is the
 * bucket's upper bound). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/client_opts.h"
#include "cli/commands.h"
#include "cli/process_setup.h"
#include "common/clock.h"
#include "shop/event.h"
#include "shop/sink.h"

#define CMD "shopstream bench process"

static const char usage_text[] =
    "usage: shopstream bench process analytics|recommend [--events N] [--partitions P]\n"
    "                                                    [--bootstrap HOST:PORT]\n"
    "\n"
    "Measures a processor over a backlog of simulated events and prints one line of\n"
    "JSON: events/s of wall time and events per CPU-second (per core); for recommend\n"
    "also the p99 time to learn one event and to answer for one user.\n"
    "\n"
    "  --events N      events to simulate (default 2000000)\n"
    "  --partitions P  partitions of the shop topics (default 2, one per core)\n"
    "  --bootstrap B   use this cluster instead of a private broker; its shop topics'\n"
    "                  whole content is the backlog, and N more events are added\n"
    "  -X key=value    librdkafka settings of the processor\n";

/* Sum of the end offsets of the processor's inputs: the backlog. */
static long long backlog(rd_kafka_t *admin)
{
    const char *topics[] = {SHOP_TOPIC_CLICKS, SHOP_TOPIC_ORDERS, SHOP_TOPIC_AFTERSALES};
    const struct rd_kafka_metadata *md;
    long long total = 0;

    if (rd_kafka_metadata(admin, 1, NULL, &md, 10000))
        return -1;
    for (int t = 0; t < md->topic_cnt; t++)
        for (size_t k = 0; k < 3; k++)
            if (!strcmp(md->topics[t].topic, topics[k]))
                for (int p = 0; p < md->topics[t].partition_cnt; p++) {
                    int64_t lo, hi;
                    if (rd_kafka_query_watermark_offsets(admin, topics[k], p, &lo, &hi, 10000))
                        total = -1e18;
                    total += hi - lo;
                }
    rd_kafka_metadata_destroy(md);
    return total < 0 ? -1 : total;
}

struct app_thread {
    struct stream_app *app;
    int rc;
    char err[512];
};

static void *run_app(void *arg)
{
    struct app_thread *a = arg;
    a->rc = stream_app_run(a->app, a->err, sizeof a->err);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int bench_process(int argc, char **argv)
{
    struct client_opts o;
    long long events = 2000000, partitions = 2;
    const char *v;
    char evs[32], parts[16], start[40], prefix[64];
    int rc = 1, t;
    struct bench_broker broker = {.pid = -1};
    rd_kafka_t *admin = NULL;
    struct proc *proc = NULL;
    struct app_thread at = {0};
    struct proc_settings s;

    client_opts_init(&o);
    if (argc < 2 || (strcmp(argv[1], "analytics") && strcmp(argv[1], "recommend"))) {
        int help = argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fputs(usage_text, help ? stdout : stderr);
        client_opts_free(&o);
        return help ? 0 : 2;
    }
    o.bootstrap = NULL;
    for (int i = 2; i < argc;) {
        if (!strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            client_opts_free(&o);
            return 0;
        }
        if ((t = client_opts_take(&o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                goto out;
            continue;
        }
        if ((t = client_opt_value(CMD, "--events", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--events", v, 1, 1000000000, &events) < 0)
                goto out;
        } else if ((t = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--partitions", v, 1, 1000, &partitions) < 0)
                goto out;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            rc = 2;
            goto out;
        }
    }
    if (!o.bootstrap) {
        if (bench_broker_start(&broker, NULL, NULL, 1) < 0)
            goto out;
        o.bootstrap = broker.bootstrap;
    }
    /* Events of the last hours, so that no retention setting removes them. */
    {
        time_t now = time(NULL) - 3 * 3600;
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(evs, sizeof evs, "%lld", events);
    snprintf(parts, sizeof parts, "%lld", partitions);
    {
        char bs[64];
        snprintf(bs, sizeof bs, "%s", o.bootstrap);
        char *sargv[] = {"shopstream", "simulate", "--bootstrap", bs, "--events", evs,
                         "--rate", "2000", "--as-fast-as-possible", "--start", start,
                         "--partitions", parts, NULL};
        if (bench_run_self(sargv, 1) != 0) {
            fprintf(stderr, "%s: simulating the events failed.\n", CMD);
            goto out;
        }
    }
    if (!(admin = client_admin_new(&o, CMD)))
        goto out;
    long long target = backlog(admin);
    if (target <= 0) {
        fprintf(stderr, "%s: the shop topics hold no events.\n", CMD);
        goto out;
    }
    proc_settings_default(&s);
    s.partitions = (int)partitions;
    snprintf(prefix, sizeof prefix, "bench-%d-%lld", (int)getpid(), (long long)clock_wall_ms());
    const char *kind = argv[1];
    if (process_setup(kind, prefix, NULL, &s, 1000, &o, admin, &proc, &at.app) < 0)
        goto out;
    pthread_t th;
    double cpu0 = cpu_seconds();
    int64_t t0 = clock_mono_ms(), t1;
    if (pthread_create(&th, NULL, run_app, &at) != 0) {
        fprintf(stderr, "%s: cannot start a thread.\n", CMD);
        goto out;
    }
    while (stream_app_records(at.app) < target && at.rc == 0)
        usleep(2000);
    if (!strcmp(kind, "recommend")) {
        /* Learnt once every observation made of the backlog reached the
         * model through the global input. */
        char obs[300];
        snprintf(obs, sizeof obs, "%s-recommend-observations", prefix);
        long long want = -1;
        for (int tries = 0; tries < 5000 && at.rc == 0; tries++) {
            long long have = 0;
            for (int p = 0; p < (int)partitions; p++) {
                int64_t lo, hi;
                if (!rd_kafka_query_watermark_offsets(admin, obs, p, &lo, &hi, 5000))
                    have += hi - lo;
            }
            if (have == want && proc_observed(proc) >= want)
                break;
            want = have;
            usleep(20000);
        }
    }
    t1 = clock_mono_ms();
    double cpu1 = cpu_seconds();
    stream_app_stop(at.app);
    pthread_join(th, NULL);
    if (at.rc < 0) {
        fprintf(stderr, "%s: the processor failed: %s.\n", CMD, at.err);
        goto out;
    }
    {
        struct rusage ru;
        double secs = (t1 - t0) / 1000.0, cpu = cpu1 - cpu0;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"bench\":\"process %s\",\"events\":%lld,\"partitions\":%lld,"
               "\"seconds\":%.3f,\"events_per_sec\":%.0f,\"cpu_seconds\":%.3f,"
               "\"events_per_cpu_sec\":%.0f,\"max_rss_kb\":%ld",
               kind, target, partitions, secs, target / secs, cpu, target / cpu, ru.ru_maxrss);
        if (!strcmp(kind, "recommend")) {
            int64_t obs_p99, ans_p99;
            proc_recommend_latency(proc, &obs_p99, &ans_p99);
            printf(",\"learnt\":%lld,\"learn_p99_us\":%.1f,\"answer_p99_us\":%.1f",
                   proc_observed(proc), obs_p99 / 1000.0, ans_p99 / 1000.0);
        }
        printf("}\n");
    }
    rc = 0;
out:
    stream_app_destroy(at.app);
    proc_free(proc);
    if (admin)
        rd_kafka_destroy(admin);
    bench_broker_stop(&broker);
    client_opts_free(&o);
    return rc;
}
