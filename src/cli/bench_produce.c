/* bench_produce.c: `shopstream bench produce`: producer throughput with
 * librdkafka, the reference client, set up like shared/tools/kbench (the
 * peer's tool) so both figures mean the same: batch.num.messages 10000,
 * queue of a million records, linger 5 ms, acks=1, 100-byte values, no key.
 *
 * --producers K runs K producers at once, one librdkafka handle and one
 * thread each, sharing --records.  --consumers C adds C consumers reading
 * the topic while it is written; the run ends when they have read every
 * record written.  That is the many-clients case: 16 producers and 16
 * consumers over 64 partitions.  A client is starved when its rate is far
 * below the others': the line reports the slowest and fastest client
 * against the mean.
 *
 * The consumers are native by default: shopstream's own fetch client
 * (client/fetcher.h), one connection and one thread each, partition i read
 * by consumer i % C from its end offset before the producers start,
 * long-polling once caught up.  It checks every CRC and walks every record,
 * as a consumer must, at a fraction of a librdkafka consumer's CPU, which
 * on a small machine would otherwise be taken from the producers being
 * measured.  --consumer-client librdkafka runs librdkafka consumers in one
 * consumer group instead.
 *
 * The clock starts when the first record is handed to librdkafka and stops
 * when every record is acknowledged (and, with consumers, read). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/client_opts.h"
#include "client/fetcher.h"
#include "stream/topics.h"

#define CMD "shopstream bench produce"
#define CLIENT_ID "shopstream-bench-produce"
/* A native consumer's Fetch parks this long on the broker once it has
 * caught up, as librdkafka's fetch.wait.max.ms does. */
#define NATIVE_WAIT_MS 100
/* Fetch MaxBytes of a native consumer: a few partitions' worth. */
#define NATIVE_MAX_BYTES (8 * 1024 * 1024)

static const char usage_text[] =
    "usage: shopstream bench produce [--records N] [--record-bytes S] [--acks 0|1|all]\n"
    "                                [--linger-ms L] [--compression C] [--partitions P]\n"
    "                                [--producers K] [--consumers C] [--topic T]\n"
    "                                [--consumer-client native|librdkafka]\n"
    "                                [--bootstrap HOST:PORT] [--set k=v]... [-X k=v]...\n"
    "\n"
    "Producer throughput as one line of JSON: records/s and MB/s of values.\n"
    "\n"
    "  --records N       records in all (default 1000000), shared by the producers\n"
    "  --record-bytes S  value size (default 100)\n"
    "  --acks A          0, 1 or all (default 1)\n"
    "  --linger-ms L     librdkafka linger.ms (default 5)\n"
    "  --compression C   none, gzip, snappy, lz4, zstd (default none)\n"
    "  --partitions P    partitions of the topic when it is created (default 1)\n"
    "  --producers K     producers at once, each its own client (default 1)\n"
    "  --consumers C     consumers reading at once (default 0)\n"
    "  --consumer-client native: shopstream's fetch client, partition i read by\n"
    "                    consumer i % C (default); librdkafka: one consumer group\n"
    "  --topic T         topic (default shopstream-bench, created when missing);\n"
    "                    with consumers always a fresh topic, deleted after\n"
    "  --bootstrap B     measure this cluster instead of a private broker\n"
    "  --set k=v         a setting of the private broker (e.g.\n"
    "                    log.flush.interval.messages=1: fsync before acknowledging)\n"
    "  -X k=v            librdkafka settings of the producers and consumers\n";

struct run {
    const struct client_opts *o;
    const char *topic;
    long long records;
    int size;
    const char *acks, *linger, *codec;
    const char *group;
    int native;                  /* consumers are fetchers, not librdkafka */
    const uint8_t *payload;      /* random bytes; a record is a window of them */
    size_t payload_len;
    atomic_llong consumed;       /* records the consumers have read */
    atomic_int stop_consumers;
    atomic_int failed;           /* delivery or setup failures */
};

struct producer {
    struct run *run;
    pthread_t th;
    rd_kafka_t *rk;
    long long records, delivered, errors;
    int64_t t0, t1;
};

struct consumer {
    struct run *run;
    pthread_t th;
    rd_kafka_t *rk;              /* librdkafka consumers */
    struct fetcher *f;           /* native consumers; NULL when given no partition */
    char err[256];               /* the fetcher's error sentence */
    int started;                 /* its thread runs */
    _Atomic long long got;
    long long got_at_end;        /* what it had read when the last producer finished */
    int64_t last_us;             /* when it read its last record */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *p = opaque;
    (void)rk;
    if (m->err) {
        if (p->errors++ == 0)
            fprintf(stderr, "%s: delivery failed: %s.\n", CMD, rd_kafka_err2str(m->err));
    } else {
        p->delivered++;
    }
}

static rd_kafka_t *producer_new(struct run *r, struct producer *p)
{
    const char *defaults[] = {"acks", r->acks, "linger.ms", r->linger, "compression.codec", r->codec,
                              "batch.num.messages", "10000",
                              "queue.buffering.max.messages", "1000000",
                              "queue.buffering.max.kbytes", "1048576", NULL};
    rd_kafka_conf_t *c = client_conf_new(r->o, CMD, RD_KAFKA_PRODUCER, defaults);
    if (!c)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, p);
    rd_kafka_t *rk = client_handle_new(CMD, RD_KAFKA_PRODUCER, c);
    if (!rk)
        return NULL;
    /* Learn the topic's leaders before the clock starts: a handle that
     * first produces to an unknown topic may wait for its next metadata
     * refresh (up to a second) before it sends anything. */
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, r->topic, NULL);
    rd_kafka_resp_err_t e = t ? rd_kafka_metadata(rk, 0, t, &md, r->o->timeout_ms) : rd_kafka_last_error();
    if (t)
        rd_kafka_topic_destroy(t);
    if (e) {
        fprintf(stderr, "%s: metadata of topic %s: %s.\n", CMD, r->topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_metadata_destroy(md);
    return rk;
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct run *r = p->run;
    size_t span = r->payload_len - (size_t)r->size;

    p->t0 = bench_now_us();
    for (long long i = 0; i < p->records; i++) {
        const uint8_t *v = r->payload + (size_t)(i * 7919) % (span + 1);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(r->topic),
                                                      RD_KAFKA_V_VALUE((void *)v, (size_t)r->size),
                                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                      RD_KAFKA_V_END);
            if (!e)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "%s: produce: %s.\n", CMD, rd_kafka_err2str(e));
                atomic_store(&r->failed, 1);
                goto done;
            }
            rd_kafka_poll(p->rk, 10);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(p->rk, 0);
    }
    rd_kafka_flush(p->rk, 120000);
done:
    p->t1 = bench_now_us();
    return NULL;
}

/* Reads in batches of up to 1024 records: one queue lock and one clock
 * read per batch rather than per record, so that the consumers spend the
 * machine's two cores on what a consumer must do. */
static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    struct run *r = c->run;
    rd_kafka_message_t *msgs[1024];
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(c->rk);

    while (!atomic_load(&r->stop_consumers)) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
        long long got = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err)
                got++;
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "%s: consumer: %s.\n", CMD, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
        if (got) {
            atomic_fetch_add(&c->got, got);
            c->last_us = bench_now_us();
            atomic_fetch_add(&r->consumed, got);
        }
    }
    rd_kafka_queue_destroy(q);
    return NULL;
}

/* A native consumer: one Fetch round after another until told to stop.
 * Runs on its own thread, which owns c->f. */
static void *native_consumer_main(void *arg)
{
    struct consumer *c = arg;
    struct run *r = c->run;

    while (!atomic_load(&r->stop_consumers)) {
        long long got, bytes;
        int rc = fetcher_poll(c->f, NATIVE_WAIT_MS, &got, &bytes);
        if (rc < 0) {
            fprintf(stderr, "%s: consumer: %s.\n", CMD, c->err);
            atomic_store(&r->failed, 1);
            break;
        }
        if (got) {
            atomic_fetch_add(&c->got, got);
            c->last_us = bench_now_us();
            atomic_fetch_add(&r->consumed, got);
        }
    }
    return NULL;
}

/* Opens native consumer i of n on partitions i, i + n, ... of nparts, from
 * their end offsets now (the producers have not started).  A consumer
 * given no partition gets no fetcher.  Returns 0, or -1 after printing
 * why. */
static int native_consumer_open(struct run *r, struct consumer *c, int i, int n, int nparts)
{
    char host[256], first[300];
    int port, k = 0;
    int32_t *ids = NULL;
    int64_t *start = NULL;
    /* the first address of a list is the broker to read from */
    snprintf(first, sizeof first, "%.*s", (int)strcspn(r->o->bootstrap, ","), r->o->bootstrap);
    if (client_parse_hostport(CMD, "--bootstrap", first, host, sizeof host, &port) < 0)
        return -1;
    if (i >= nparts)
        return 0;
    ids = calloc((size_t)(nparts / n + 1), sizeof *ids);
    start = calloc((size_t)(nparts / n + 1), sizeof *start);
    if (!ids || !start) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        goto out;
    }
    for (int p = i; p < nparts; p += n) {
        ids[k] = p;
        start[k++] = FETCHER_LATEST;
    }
    /* the wait is added so that a parked Fetch never counts against the
     * timeout */
    struct fetcher_conf conf = {host, port, CLIENT_ID, r->topic, NATIVE_MAX_BYTES,
                                r->o->timeout_ms + NATIVE_WAIT_MS};
    if (!(c->f = fetcher_open(&conf, ids, start, k, c->err, sizeof c->err)))
        fprintf(stderr, "%s: consumer %d: %s.\n", CMD, i, c->err);
out:
    free(ids);
    free(start);
    return c->f ? 0 : -1;
}

static rd_kafka_t *consumer_new(struct run *r)
{
    const char *defaults[] = {"group.id", r->group, "auto.offset.reset", "earliest",
                              "enable.auto.commit", "true", "fetch.wait.max.ms", "10",
                              "enable.partition.eof", "false", NULL};
    rd_kafka_conf_t *c = client_conf_new(r->o, CMD, RD_KAFKA_CONSUMER, defaults);
    rd_kafka_t *rk;
    if (!c || !(rk = client_handle_new(CMD, RD_KAFKA_CONSUMER, c)))
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        fprintf(stderr, "%s: subscribe: %s.\n", CMD, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* The group has settled when its members' assignments cover the topic and
 * every member has a share (when there are enough partitions): members that
 * join one after another first make groups of fewer members. */
static int group_settled(struct consumer *cs, int n, int partitions)
{
    int total = 0, empty = 0;
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_t *l = NULL;
        if (rd_kafka_assignment(cs[i].rk, &l) == 0 && l) {
            total += l->cnt;
            empty += l->cnt == 0;
            rd_kafka_topic_partition_list_destroy(l);
        } else {
            empty++;
        }
    }
    return total == partitions && (partitions < n || empty == 0);
}

static int delete_topic(rd_kafka_t *admin, const char *topic)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_DeleteTopics(admin, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int rc = ev && !rd_kafka_event_error(ev) ? 0 : -1;
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
    return rc;
}

/* min/mean and max/mean of n rates: 1.0 each when every client had its
 * share. */
static void spread(const double *rate, int n, double *lo, double *hi)
{
    double sum = 0, mn = rate[0], mx = rate[0];
    for (int i = 0; i < n; i++) {
        sum += rate[i];
        mn = rate[i] < mn ? rate[i] : mn;
        mx = rate[i] > mx ? rate[i] : mx;
    }
    *lo = sum > 0 ? mn / (sum / n) : 0;
    *hi = sum > 0 ? mx / (sum / n) : 0;
}

static int parse(int argc, char **argv, struct client_opts *o, struct bench_opts *bo, struct run *r,
                 long long *producers, long long *consumers)
{
    const char *v;
    int t;

    for (int i = 1; i < argc;) {
        if (bench_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((t = bench_opts_take(bo, BENCH_OPT_RECORDS | BENCH_OPT_RECORD_BYTES | BENCH_OPT_ACKS |
                                         BENCH_OPT_LINGER | BENCH_OPT_COMPRESSION | BENCH_OPT_PARTITIONS |
                                         BENCH_OPT_TOPIC | BENCH_OPT_SET,
                                 o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--producers", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--producers", v, 1, 256, producers) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--consumers", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--consumers", v, 0, 256, consumers) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--consumer-client", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return 2;
            if (strcmp(v, "native") && strcmp(v, "librdkafka")) {
                fprintf(stderr, "%s: --consumer-client must be native or librdkafka, not '%s'.\n", CMD, v);
                return 2;
            }
            r->native = !strcmp(v, "native");
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return 2;
        }
    }
    return -1;
}

int bench_produce(int argc, char **argv)
{
    struct client_opts o;
    struct run r = {.records = 1000000, .size = 100, .acks = "1", .linger = "5", .codec = "none",
                    .topic = "shopstream-bench", .native = 1};
    long long partitions = 1, nprod = 1, ncons = 0;
    int topic_given = 0, rc;
    struct bench_broker broker = {.pid = -1};
    struct producer *ps = NULL;
    struct consumer *cs = NULL;
    rd_kafka_t *admin = NULL;
    uint8_t *payload = NULL;
    char topic[128], group[128];

    client_opts_init(&o);
    o.bootstrap = NULL;
    struct bench_opts bo = {.records = r.records, .record_bytes = r.size, .acks = r.acks,
                            .linger = r.linger, .codec = r.codec, .partitions = 1, .topic = r.topic};
    if ((rc = parse(argc, argv, &o, &bo, &r, &nprod, &ncons)) >= 0)
        goto out;
    rc = 1;
    r.records = bo.records;
    r.size = bo.record_bytes;
    r.acks = bo.acks;
    r.linger = bo.linger;
    r.codec = bo.codec;
    r.topic = bo.topic;
    partitions = bo.partitions;
    topic_given = bo.topic_given;
    if ((rc = bench_target(&broker, &o, &bo, CMD)) != 0)
        goto out;
    rc = 1;
    r.o = &o;
    if (ncons && topic_given) {
        fprintf(stderr, "%s: with --consumers the bench writes a fresh topic; --topic cannot be given.\n", CMD);
        rc = 2;
        goto out;
    }
    if (ncons) {
        snprintf(topic, sizeof topic, "shopstream-bench-%d-%lld", (int)getpid(), (long long)bench_now_us());
        r.topic = topic;
    }
    snprintf(group, sizeof group, "shopstream-bench-%d-%lld", (int)getpid(), (long long)bench_now_us());
    r.group = group;
    if (!(admin = client_admin_new(&o, CMD)))
        goto out;
    int nparts = bench_topic_ensure(admin, &o, r.topic, (int)partitions);
    if (nparts <= 0)
        goto out;

    /* Random values, so that compression has real work. */
    r.payload_len = (size_t)r.size + 65536;
    payload = malloc(r.payload_len);
    ps = calloc((size_t)nprod, sizeof *ps);
    cs = calloc((size_t)(ncons ? ncons : 1), sizeof *cs);
    if (!payload || !ps || !cs) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        goto out;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < r.payload_len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        payload[i] = (uint8_t)(x >> 24);
    }
    r.payload = payload;

    for (long long i = 0; i < ncons; i++) {
        cs[i].run = &r;
        if (r.native) {
            if (native_consumer_open(&r, &cs[i], (int)i, (int)ncons, nparts) < 0)
                goto out;
            if (!cs[i].f)
                continue;
        } else if (!(cs[i].rk = consumer_new(&r))) {
            goto out;
        }
        if (pthread_create(&cs[i].th, NULL, r.native ? native_consumer_main : consumer_main, &cs[i]) != 0) {
            fprintf(stderr, "%s: cannot start a thread.\n", CMD);
            goto out;
        }
        cs[i].started = 1;
    }
    /* The group must hold every partition, spread over its members, before
     * the clock starts. */
    for (int64_t deadline = bench_now_us() + 60 * 1000000LL;
         ncons && !r.native && !group_settled(cs, (int)ncons, nparts);) {
        if (bench_now_us() > deadline) {
            fprintf(stderr, "%s: the consumer group was not assigned the topic's %d partitions in 60 s.\n",
                    CMD, nparts);
            goto out;
        }
        usleep(20000);
    }
    for (long long i = 0; i < nprod; i++) {
        ps[i].run = &r;
        ps[i].records = r.records / nprod + (i < r.records % nprod);
        if (!(ps[i].rk = producer_new(&r, &ps[i])))
            goto out;
    }
    int64_t t0 = bench_now_us(), t1, tc = 0;
    for (long long i = 0; i < nprod; i++)
        if (pthread_create(&ps[i].th, NULL, producer_main, &ps[i]) != 0) {
            fprintf(stderr, "%s: cannot start a thread.\n", CMD);
            atomic_store(&r.failed, 1);
            for (long long k = 0; k < i; k++)
                pthread_join(ps[k].th, NULL);
            goto out;
        }
    long long delivered = 0, errors = 0;
    for (long long i = 0; i < nprod; i++) {
        pthread_join(ps[i].th, NULL);
        delivered += ps[i].delivered;
        errors += ps[i].errors;
    }
    t1 = bench_now_us();
    for (long long i = 0; i < ncons; i++)
        cs[i].got_at_end = atomic_load(&cs[i].got);
    if (ncons) {
        int64_t deadline = bench_now_us() + 120 * 1000000LL;
        while (atomic_load(&r.consumed) < delivered && bench_now_us() < deadline && !atomic_load(&r.failed))
            usleep(500);
        tc = bench_now_us();
    }

    double secs = (t1 - t0) / 1e6;
    printf("{\"bench\":\"produce\",\"bootstrap\":\"%s\",\"topic\":\"%s\",\"partitions\":%d,"
           "\"producers\":%lld,\"records\":%lld,\"record_bytes\":%d,\"acks\":\"%s\",\"linger_ms\":%s,"
           "\"compression\":\"%s\",\"delivered\":%lld,\"failed\":%lld,\"seconds\":%.3f,"
           "\"records_per_sec\":%.0f,\"mb_per_sec\":%.1f",
           o.bootstrap, r.topic, nparts, nprod, r.records, r.size, r.acks, r.linger, r.codec, delivered,
           errors, secs, delivered / secs, delivered * (double)r.size / secs / 1e6);
    if (nprod > 1) {
        double rate[256], lo, hi;
        for (long long i = 0; i < nprod; i++)
            rate[i] = ps[i].t1 > ps[i].t0 ? ps[i].delivered / ((ps[i].t1 - ps[i].t0) / 1e6) : 0;
        spread(rate, (int)nprod, &lo, &hi);
        printf(",\"producer_rate_min_vs_mean\":%.2f,\"producer_rate_max_vs_mean\":%.2f", lo, hi);
    }
    if (ncons) {
        double csecs = (tc - t0) / 1e6, rate[256], lo, hi, behind = 1.0;
        long long got = atomic_load(&r.consumed);
        int64_t tail = 0;
        for (long long i = 0; i < ncons; i++) {
            long long g = atomic_load(&cs[i].got);
            rate[i] = (double)g;
            if (cs[i].last_us - t1 > tail)
                tail = cs[i].last_us - t1;
            /* A starved consumer falls behind while the producers run: the
             * share of its records it had read when they finished. */
            if (g > 0 && (double)cs[i].got_at_end / g < behind)
                behind = (double)cs[i].got_at_end / g;
        }
        spread(rate, (int)ncons, &lo, &hi);
        /* shares differ with the records each one's partitions got; the tail
         * is how long after the last acknowledgement the last one finished */
        printf(",\"consumer_client\":\"%s\",\"consumers\":%lld,\"consumed\":%lld,\"consume_seconds\":%.3f,"
               "\"consume_records_per_sec\":%.0f,\"consumer_share_min_vs_mean\":%.2f,"
               "\"consumer_share_max_vs_mean\":%.2f,\"consumer_read_by_end_min\":%.2f,"
               "\"consumer_tail_ms\":%.1f",
               r.native ? "native" : "librdkafka", ncons, got, csecs, got / csecs, lo, hi, behind, tail / 1e3);
        if (got < delivered)
            fprintf(stderr, "%s: the consumers read %lld of %lld records in 120 s.\n", CMD, got, delivered);
        rc = got < delivered;
    } else {
        rc = 0;
    }
    printf("}\n");
    if (errors || delivered != r.records || atomic_load(&r.failed))
        rc = 1;
out:
    atomic_store(&r.stop_consumers, 1);
    for (long long i = 0; cs && i < ncons; i++) {
        if (cs[i].started)
            pthread_join(cs[i].th, NULL);
        if (cs[i].rk) {
            rd_kafka_consumer_close(cs[i].rk);
            rd_kafka_destroy(cs[i].rk);
        }
        fetcher_close(cs[i].f);
    }
    for (long long i = 0; ps && i < nprod; i++)
        if (ps[i].rk)
            rd_kafka_destroy(ps[i].rk);
    if (admin && ncons)
        delete_topic(admin, r.topic);
    if (admin)
        rd_kafka_destroy(admin);
    bench_broker_stop(&broker);
    free(payload);
    free(ps);
    free(cs);
    client_opts_free(&o);
    return rc;
}
