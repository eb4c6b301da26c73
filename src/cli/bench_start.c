/* bench_start.c: `shopstream bench start`: the broker's start-up time, from
 * the spawn of the process to its first accepted connection (bench.h's
 * bench_broker_start polls connect() every 100 us) and to its first answer
 * to a Metadata request, as one line of JSON:
 *   {"bench":"start","data_bytes":B,"segments":S,["partitions":P,]"runs":R,
 *    "caches_dropped":false,"ready_ms_median":..,"ready_ms_max":..,
 *    "metadata_ms_median":..,"metadata_ms_max":..
 *    [,"unclean_ready_ms":..,"unclean_metadata_ms":..][,"fill_s":..]}
 * data_bytes and segments count the segment (.log) files of the data dir.
 *
 * Without data (--data-gb 0 and no --data-dir) each run starts a broker on
 * a fresh empty temporary directory.  With --data-gb G a data directory is
 * first filled once with G GiB of 1 KiB records in topic "bench-start"
 * (librdkafka, acks=1, timestamps spread over the last 3 hours so that the
 * time indexes are as dense as a real log's; a broker that is then stopped
 * cleanly), and each run restarts a broker on it; one more start follows an
 * unclean stop (SIGKILL), when the broker checks its active segments, and
 * is reported apart (unclean_*).  A --data-dir is kept, reused as it is
 * when it already holds G GiB and topped up otherwise; a temporary one is
 * removed at the end.  The page cache is left warm unless --drop-caches,
 * and the output says which.
 *
 * It leaves the broker to bench_util.c and the on-disk layout (read here
 * only to count segment bytes and to see the clean-shutdown marker) to
 * storage/catalog.c and segment.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/client_opts.h"

#define CMD "shopstream bench start"
#define TOPIC "bench-start"
#define VALUE_BYTES 1024
#define GIB (1024.0 * 1024.0 * 1024.0)
#define DROP_CACHES "/proc/sys/vm/drop_caches"
/* The broker's marker of a clean shutdown (storage/catalog.c). */
#define CLEAN_MARK ".clean-shutdown"
/* Free space kept beyond what a fill writes. */
#define FILL_HEADROOM ((int64_t)1 << 30)
/* The fill's records are timestamped over the last 3 hours (well inside
 * the default retention of 7 days). */
#define FILL_SPAN_MS (3 * 3600 * 1000LL)
/* --set options passed on (bench_broker_start takes about 26). */
#define MAX_SETS 20

static const char usage_text[] =
    "usage: shopstream bench start [--data-gb G] [--data-dir DIR] [--runs R] [--partitions P]\n"
    "                              [--drop-caches] [--set key=value]... [-X key=value]...\n"
    "\n"
    "Measures the broker's start-up: from the spawn of `shopstream broker` to its first\n"
    "accepted connection (ready_ms) and to its answer to a Metadata request from a\n"
    "librdkafka client created once the port accepts (metadata_ms), and prints one line\n"
    "of JSON with the median and maximum of R starts.\n"
    "\n"
    "  --data-gb G     0 (default): every start is on a fresh empty data dir.  Above 0:\n"
    "                  a data dir is filled once with G GiB of 1 KiB records (topic\n"
    "                  " TOPIC ", acks=1) and stopped cleanly, then restarted R times;\n"
    "                  one more start after a SIGKILL (crash recovery checks the active\n"
    "                  segments) is reported as unclean_ready_ms\n"
    "  --data-dir DIR  fill and keep DIR instead of a temporary dir; a DIR already\n"
    "                  holding G GiB of segments is reused as it is (with --data-gb 0:\n"
    "                  any DIR), one holding less is topped up; no running broker\n"
    "                  may use it\n"
    "  --runs R        starts measured (default 5)\n"
    "  --partitions P  partitions of " TOPIC " when it is created (default 8)\n"
    "  --drop-caches   sync and drop the page cache before every start (needs write\n"
    "                  access to " DROP_CACHES "); otherwise the cache is warm\n"
    "  --set key=value a setting of every broker started (e.g.\n"
    "                  offsets.topic.num.partitions=1); repeatable\n"
    "  -X key=value    librdkafka setting of the fill's producer (e.g. batch.size=4096\n"
    "                  for small batches, so dense indexes) and the Metadata client\n"
    "  --timeout-ms T  time limit of the CreateTopics and Metadata requests (default\n"
    "                  10000)\n";

/* What the command line asks for. */
struct start_args {
    double data_gb;         /* --data-gb */
    const char *data_dir;   /* --data-dir, a view into argv, or NULL */
    long long runs;         /* --runs */
    long long partitions;   /* --partitions */
    bool drop_caches;       /* --drop-caches */
    const char **sets;      /* --set values (views into argv), NULL-terminated;
                             * owned array (free) */
    int nsets;              /* entries in sets */
    struct client_opts o;   /* librdkafka settings of the producer and the
                             * Metadata client; bootstrap set per broker */
};

/* The segments of a data dir, summed by count_segments. */
struct seg_count {
    int64_t bytes; /* bytes of all segment (.log) files */
    long files;    /* number of segment files */
};

static struct seg_count counting; /* nftw's callback has no argument */

static int count_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    const char *name = path + f->base;
    size_t n = strlen(name);

    /* segment files are named by their base offset: 20 digits and ".log" */
    if (type == FTW_F && n == 24 && !strcmp(name + 20, ".log")) {
        counting.bytes += st->st_size;
        counting.files++;
    }
    return 0;
}

/* Sums the segment files under dir/topics; a dir without topics holds none. */
static struct seg_count count_segments(const char *dir)
{
    char path[PATH_MAX];

    counting = (struct seg_count){0, 0};
    snprintf(path, sizeof path, "%s/topics", dir);
    if (access(path, F_OK) == 0)
        nftw(path, count_one, 16, FTW_PHYS);
    return counting;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    if (remove(path) < 0 && errno != ENOENT)
        fprintf(stderr, "%s: cannot remove %s: %s.\n", CMD, path, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes back dirty pages and drops the page cache, dentries and inodes,
 * so the next start reads everything from the disk. */
static int drop_caches(void)
{
    int fd, ok;

    sync();
    fd = open(DROP_CACHES, O_WRONLY | O_CLOEXEC);
    ok = fd >= 0 && write(fd, "3\n", 2) == 2;
    if (!ok)
        fprintf(stderr, "%s: cannot drop the page cache (writing %s): %s.\n", CMD, DROP_CACHES,
                strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* Asks the broker b for the metadata of every topic with a new librdkafka
 * client and sets *done_us to when the answer arrived.  With topic, checks
 * that the topic is there with all its partitions and sets *partitions.
 * Returns 0, or -1 after printing an error. */
static int metadata(struct start_args *a, const struct bench_broker *b, const char *topic,
                    int64_t *done_us, int *partitions)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;
    int rc = -1;

    a->o.bootstrap = b->bootstrap;
    if (!(rk = client_admin_new(&a->o, CMD)))
        return -1;
    err = rd_kafka_metadata(rk, 1, NULL, &md, a->o.timeout_ms);
    *done_us = bench_now_us();
    if (err) {
        client_report(rk, &a->o, CMD, "the broker did not answer a Metadata request", err,
                      rd_kafka_err2str(err));
        goto out;
    }
    if (topic) {
        const rd_kafka_metadata_topic_t *mt = NULL;

        for (int t = 0; t < md->topic_cnt; t++)
            if (!strcmp(md->topics[t].topic, topic))
                mt = &md->topics[t];
        if (!mt || mt->err || mt->partition_cnt < 1) {
            fprintf(stderr, "%s: the restarted broker does not list topic %s: %s.\n", CMD, topic,
                    rd_kafka_err2str(mt ? mt->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
            goto out;
        }
        for (int p = 0; p < mt->partition_cnt; p++)
            if (mt->partitions[p].err) {
                fprintf(stderr, "%s: partition %d of %s is not available after the restart: %s.\n",
                        CMD, mt->partitions[p].id, topic, rd_kafka_err2str(mt->partitions[p].err));
                goto out;
            }
        *partitions = mt->partition_cnt;
    }
    rc = 0;
out:
    a->o.bootstrap = NULL; /* b's, which the caller is about to stop */
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* One start of a broker on dir (NULL: a fresh empty temporary dir): its
 * time to the first accepted connection and to a Metadata answer (either
 * may be NULL).  kill9 ends it with SIGKILL, else it is stopped cleanly and
 * a dir that is kept must then hold the clean-shutdown marker.  Returns 0,
 * or -1 after printing an error. */
static int one_start(struct start_args *a, const char *dir, const char *topic, bool kill9,
                     int64_t *ready_us, int64_t *meta_us, int *partitions)
{
    struct bench_broker b;
    int64_t done_us = 0;
    int rc = -1;

    if (a->drop_caches && drop_caches() < 0)
        return -1;
    if (bench_broker_start(&b, dir, a->sets, 1) < 0)
        return -1;
    if (metadata(a, &b, topic, &done_us, partitions) < 0)
        goto out;
    if (ready_us)
        *ready_us = b.ready_us - b.start_us;
    if (meta_us)
        *meta_us = done_us - b.start_us;
    rc = 0;
out:
    if (kill9 && b.pid > 0) {
        kill(b.pid, SIGKILL);
        while (waitpid(b.pid, NULL, 0) < 0 && errno == EINTR)
            ;
        b.pid = -1;
    }
    bench_broker_stop(&b);
    if (rc == 0 && !kill9 && dir) {
        char mark[PATH_MAX];

        snprintf(mark, sizeof mark, "%s/" CLEAN_MARK, dir);
        if (access(mark, F_OK) != 0) {
            fprintf(stderr, "%s: the broker on %s did not shut down cleanly on SIGTERM.\n", CMD, dir);
            rc = -1;
        }
    }
    return rc;
}

/* Delivery outcome of the fill, updated by on_delivery inside
 * rd_kafka_poll / rd_kafka_flush on this thread. */
struct fill_stats {
    long long delivered;           /* acknowledged by the broker */
    long long failed;              /* refused locally or by the broker */
    rd_kafka_resp_err_t first_err; /* why the first failure failed */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct fill_stats *st = opaque;

    (void)rk;
    if (!m->err)
        st->delivered++;
    else if (st->failed++ == 0)
        st->first_err = m->err;
}

/* Creates topic with partitions on the cluster of a->o; one that already
 * exists is kept as it is.  Returns 0, or -1 after printing an error. */
static int create_topic(struct start_args *a, const char *topic)
{
    char err[512], what[300];
    rd_kafka_t *rk;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = -1;

    snprintf(what, sizeof what, "could not create topic %s", topic);
    if (!(rk = client_admin_new(&a->o, CMD)))
        return -1;
    if (!(nt = rd_kafka_NewTopic_new(topic, (int)a->partitions, -1, err, sizeof err))) {
        fprintf(stderr, "%s: %s: %s.\n", CMD, what, err);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, a->o.timeout_ms + 1000);
    if (!ev || rd_kafka_event_error(ev)) {
        rd_kafka_resp_err_t e = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;

        client_report(rk, &a->o, CMD, what, e,
                      ev ? rd_kafka_event_error_string(ev) : rd_kafka_err2str(e));
        goto out;
    }
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t k = 0; k < n; k++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[k]);

        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *why = rd_kafka_topic_result_error_string(res[k]);

            fprintf(stderr, "%s: %s: %s.\n", CMD, what, why ? why : rd_kafka_err2str(e));
            goto out;
        }
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* Produces at least want bytes of 1 KiB values to topic as fast as
 * librdkafka goes (linger 5 ms, batches of up to 10000 records, acks=1),
 * spread over its partitions.  Returns 0 once every record is
 * acknowledged, or -1 after printing an error. */
static int produce(struct start_args *a, const char *topic, int64_t want)
{
    static const char *const defaults[] = {"linger.ms", "5", "batch.num.messages", "10000",
                                           "acks", "1", NULL};
    static char value[VALUE_BYTES];
    struct fill_stats st = {0, 0, RD_KAFKA_RESP_ERR_NO_ERROR};
    long long records = (want + VALUE_BYTES - 1) / VALUE_BYTES, sent = 0;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int64_t t0 = (int64_t)time(NULL) * 1000 - FILL_SPAN_MS;
    int rc = -1;

    /* incompressible bytes, so that a codec set with -X changes nothing */
    for (size_t i = 0; i < sizeof value; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        value[i] = (char)x;
    }
    if (!(conf = client_conf_new(&a->o, CMD, RD_KAFKA_PRODUCER, defaults)))
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    if (!(rk = client_handle_new(CMD, RD_KAFKA_PRODUCER, conf)))
        return -1;
    if (!(rkt = rd_kafka_topic_new(rk, topic, NULL))) {
        fprintf(stderr, "%s: could not make a producer for %s: %s.\n", CMD, topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    while (sent < records && st.failed == 0 && !client_interrupted()) {
        /* Timestamps spread evenly over the last FILL_SPAN_MS, as in a log
         * written over hours: batches then have distinct timestamps and
         * the time indexes are as dense as a real log's.  The value is
         * static, so librdkafka neither copies nor frees it. */
        int64_t ts = t0 + (int64_t)((double)sent * FILL_SPAN_MS / (double)records);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE(value, sizeof value), RD_KAFKA_V_TIMESTAMP(ts),
            RD_KAFKA_V_END);

        if (!e) {
            if (++sent % 1024 == 0)
                rd_kafka_poll(rk, 0);
        } else if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
        } else {
            st.failed++;
            st.first_err = e;
        }
    }
    if (client_interrupted()) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 1000);
        fprintf(stderr, "%s: interrupted during the fill.\n", CMD);
        goto out;
    }
    /* every record ends delivered or failed within message.timeout.ms */
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    if (st.failed > 0) {
        char what[128];

        snprintf(what, sizeof what, "%lld of %lld records of the fill could not be delivered",
                 st.failed, sent);
        client_report(rk, &a->o, CMD, what, st.first_err, rd_kafka_err2str(st.first_err));
        goto out;
    }
    rc = 0;
out:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* Adds want bytes of records to dir's topic with a broker that is then
 * stopped cleanly.  Returns 0, or -1 after printing an error. */
static int fill(struct start_args *a, const char *dir, int64_t want)
{
    struct statvfs vfs;
    struct bench_broker b;
    int rc = -1;

    if (statvfs(dir, &vfs) == 0 &&
        (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize < want + want / 20 + FILL_HEADROOM) {
        fprintf(stderr, "%s: %s has %.1f GiB free and the fill needs %.1f GiB more.\n", CMD, dir,
                (double)vfs.f_bavail * (double)vfs.f_frsize / GIB,
                (double)(want + want / 20 + FILL_HEADROOM) / GIB);
        return -1;
    }
    if (bench_broker_start(&b, dir, a->sets, 1) < 0)
        return -1;
    a->o.bootstrap = b.bootstrap;
    if (create_topic(a, TOPIC) == 0 && produce(a, TOPIC, want) == 0)
        rc = 0;
    a->o.bootstrap = NULL;
    bench_broker_stop(&b);
    if (rc == 0) {
        char mark[PATH_MAX];

        snprintf(mark, sizeof mark, "%s/" CLEAN_MARK, dir);
        if (access(mark, F_OK) != 0) {
            fprintf(stderr, "%s: the broker that filled %s did not shut down cleanly.\n", CMD, dir);
            rc = -1;
        }
    }
    return rc;
}

static int parse_gb(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 4096)) {
        fprintf(stderr, "%s: --data-gb must be a number of GiB from 0 to 4096, not '%s'.\n", CMD, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(struct start_args *a, int argc, char **argv, int *exit_code)
{
    const char *v;
    int t;

    if (!(a->sets = calloc(MAX_SETS + 1, sizeof *a->sets))) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        return -1;
    }

    for (int i = 1; i < argc;) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            *exit_code = 0;
            return -1;
        }
        if (!strcmp(argv[i], "--drop-caches")) {
            a->drop_caches = true;
            i++;
            continue;
        }
        if ((t = client_opts_take(&a->o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                return -1;
            if (a->o.bootstrap) {
                fprintf(stderr, "%s: --bootstrap does not apply: the bench starts its own brokers.\n",
                        CMD);
                return -1;
            }
            continue;
        }
        if ((t = client_opt_value(CMD, "--data-gb", argc, argv, &i, &v)) != 0) {
            if (t < 0 || parse_gb(v, &a->data_gb) < 0)
                return -1;
        } else if ((t = client_opt_value(CMD, "--data-dir", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return -1;
            if (!*v) {
                fprintf(stderr, "%s: --data-dir must not be empty.\n", CMD);
                return -1;
            }
            a->data_dir = v;
        } else if ((t = client_opt_value(CMD, "--set", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return -1;
            if (v[0] == '=' || !strchr(v, '=')) {
                fprintf(stderr, "%s: --set needs key=value, not '%s'.\n", CMD, v);
                return -1;
            }
            if (a->nsets >= MAX_SETS) {
                fprintf(stderr, "%s: at most %d --set options are taken.\n", CMD, MAX_SETS);
                return -1;
            }
            a->sets[a->nsets++] = v;
        } else if ((t = client_opt_value(CMD, "--runs", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--runs", v, 1, 10000, &a->runs) < 0)
                return -1;
        } else if ((t = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--partitions", v, 1, 100000, &a->partitions) < 0)
                return -1;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return -1;
        }
    }
    if (a->drop_caches && access(DROP_CACHES, W_OK) != 0) {
        fprintf(stderr, "%s: --drop-caches needs write access to %s (root outside a container).\n",
                CMD, DROP_CACHES);
        return -1;
    }
    return 0;
}

static double ms(int64_t us)
{
    return (double)us / 1000.0;
}

int bench_start(int argc, char **argv)
{
    struct start_args a = {.runs = 5, .partitions = 8};
    char tmpdir[] = "/tmp/shopstream-bench-start.XXXXXX";
    const char *dir = NULL;
    bool with_data, made_tmp = false, has_topic = false;
    int64_t *ready = NULL, *meta = NULL, unclean_ready = 0, unclean_meta = 0;
    struct seg_count segs = {0, 0};
    double fill_s = -1;
    int partitions = 0, exit_code = 2, rc = 1;

    client_opts_init(&a.o);
    a.o.bootstrap = NULL; /* each broker's, set when one is running */
    if (parse_args(&a, argc, argv, &exit_code) < 0) {
        rc = exit_code;
        goto out;
    }
    /* Ctrl-C stops the bench through its cleanup: brokers stopped, a
     * temporary dir removed */
    client_catch_signals();
    ready = calloc((size_t)a.runs, sizeof *ready);
    meta = calloc((size_t)a.runs, sizeof *meta);
    if (!ready || !meta) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        goto out;
    }
    with_data = a.data_gb > 0 || a.data_dir;
    if (with_data) {
        int64_t want = (int64_t)(a.data_gb * GIB);
        char tdir[PATH_MAX];

        if (a.data_dir) {
            dir = a.data_dir;
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "%s: cannot create the data dir %s: %s.\n", CMD, dir, strerror(errno));
                goto out;
            }
        } else {
            if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "%s: cannot make a temporary data dir: %s.\n", CMD, strerror(errno));
                goto out;
            }
            dir = tmpdir;
            made_tmp = true;
        }
        segs = count_segments(dir);
        if (segs.bytes < want) {
            int64_t t0 = bench_now_us();

            if (fill(&a, dir, want - segs.bytes) < 0)
                goto out;
            fill_s = (double)(bench_now_us() - t0) / 1e6;
            segs = count_segments(dir);
        }
        snprintf(tdir, sizeof tdir, "%s/topics/" TOPIC, dir);
        has_topic = access(tdir, F_OK) == 0;
    }
    for (long long r = 0; r < a.runs && !client_interrupted(); r++)
        if (one_start(&a, dir, has_topic ? TOPIC : NULL, false, &ready[r], &meta[r], &partitions) < 0)
            goto out;
    if (with_data && !client_interrupted()) {
        /* a start killed once it accepts leaves no clean-shutdown marker */
        if (one_start(&a, dir, NULL, true, NULL, NULL, NULL) < 0 ||
            one_start(&a, dir, has_topic ? TOPIC : NULL, false, &unclean_ready, &unclean_meta,
                      &partitions) < 0)
            goto out;
    }
    if (client_interrupted()) {
        fprintf(stderr, "%s: interrupted.\n", CMD);
        goto out;
    }
    bench_sort(ready, (size_t)a.runs);
    bench_sort(meta, (size_t)a.runs);
    printf("{\"bench\":\"start\",\"data_bytes\":%lld,\"segments\":%ld,", (long long)segs.bytes,
           segs.files);
    if (has_topic)
        printf("\"partitions\":%d,", partitions);
    printf("\"runs\":%lld,\"caches_dropped\":%s,\"ready_ms_median\":%.1f,\"ready_ms_max\":%.1f,"
           "\"metadata_ms_median\":%.1f,\"metadata_ms_max\":%.1f",
           a.runs, a.drop_caches ? "true" : "false",
           ms(bench_percentile(ready, (size_t)a.runs, 0.5)), ms(ready[a.runs - 1]),
           ms(bench_percentile(meta, (size_t)a.runs, 0.5)), ms(meta[a.runs - 1]));
    if (with_data)
        printf(",\"unclean_ready_ms\":%.1f,\"unclean_metadata_ms\":%.1f", ms(unclean_ready),
               ms(unclean_meta));
    if (fill_s >= 0)
        printf(",\"fill_s\":%.1f", fill_s);
    printf("}\n");
    rc = 0;
out:
    if (made_tmp)
        remove_tree(tmpdir);
    free(ready);
    free(meta);
    free(a.sets);
    client_opts_free(&a.o);
    return rc;
}
