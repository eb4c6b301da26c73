/* bench_e2e.c: `shopstream bench e2e`: produce-to-consume latency at a
 * fixed rate, with librdkafka on both ends in one process.
 *
 * The producer thread sends --rate records a second on an absolute
 * schedule (clock_nanosleep to each due time, so a slow send does not
 * lower the rate), linger 0; each value starts with its send time on the
 * monotonic clock and its sequence number.  The consumer thread, assigned
 * the topic's partitions at their end offsets taken before the first send,
 * blocks in rd_kafka_consumer_poll and stamps each record as it gets it.
 * Latency = receive time - send time, on the same clock.  The first
 * --warmup-s seconds (connections, first fetches) are left out.
 *
 * Percentiles are nearest-rank over every measured record; a record not
 * received by the end (lost) fails the run. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/client_opts.h"
#include "stream/topics.h"

#define CMD "shopstream bench e2e"
#define STAMP_BYTES 16 /* send time (8) + sequence (8) */

static const char usage_text[] =
    "usage: shopstream bench e2e [--rate R] [--seconds S] [--warmup-s W] [--record-bytes B]\n"
    "                            [--acks 0|1|all] [--linger-ms L] [--partitions P] [--topic T]\n"
    "                            [--bootstrap HOST:PORT] [--set k=v]... [-X k=v]...\n"
    "\n"
    "Produce-to-consume latency at a fixed rate as one line of JSON: p50, p99, p99.9\n"
    "and max in milliseconds.\n"
    "\n"
    "  --rate R          records per second (default 5000)\n"
    "  --seconds S       measured seconds (default 10)\n"
    "  --warmup-s W      seconds sent first and left out (default 1)\n"
    "  --record-bytes B  value size, at least 16 (default 100)\n"
    "  --acks A          0, 1 or all (default 1)\n"
    "  --linger-ms L     producer linger.ms (default 0)\n"
    "  --partitions P    partitions when the topic is created (default 1)\n"
    "  --topic T         topic (default shopstream-bench-e2e, created when missing)\n"
    "  --bootstrap B     measure this cluster instead of a private broker\n"
    "  --set k=v         a setting of the private broker\n"
    "  -X k=v            librdkafka settings of the producer and the consumer\n";

struct e2e {
    const struct client_opts *o;
    const char *topic, *acks, *linger;
    long long rate, seconds, warmup;
    int size;
    rd_kafka_t *prod, *cons;
    long long total;             /* records to send */
    int64_t *lat_us;             /* by sequence; -1 until received */
    atomic_llong received;
    atomic_int producer_done;
    long long send_errors;
    int64_t t0_us;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct e2e *e = opaque;
    (void)rk;
    if (m->err && e->send_errors++ == 0)
        fprintf(stderr, "%s: delivery failed: %s.\n", CMD, rd_kafka_err2str(m->err));
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);   /* read back by this process only */
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void sleep_until_us(int64_t t_us)
{
    struct timespec ts = {.tv_sec = t_us / 1000000, .tv_nsec = (t_us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *producer_main(void *arg)
{
    struct e2e *e = arg;
    uint8_t *v = calloc(1, (size_t)e->size);

    for (long long seq = 0; v && seq < e->total; seq++) {
        sleep_until_us(e->t0_us + seq * 1000000 / e->rate);
        put64(v, (uint64_t)bench_now_us());
        put64(v + 8, (uint64_t)seq);
        rd_kafka_resp_err_t err = rd_kafka_producev(e->prod, RD_KAFKA_V_TOPIC(e->topic),
                                                    RD_KAFKA_V_VALUE(v, (size_t)e->size),
                                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                    RD_KAFKA_V_END);
        if (err && e->send_errors++ == 0)
            fprintf(stderr, "%s: produce: %s.\n", CMD, rd_kafka_err2str(err));
        rd_kafka_poll(e->prod, 0);
    }
    rd_kafka_flush(e->prod, 10000);
    free(v);
    atomic_store(&e->producer_done, 1);
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct e2e *e = arg;
    int64_t idle_since = 0;

    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->cons, 100);
        int64_t now = bench_now_us();
        if (m) {
            if (!m->err && m->len >= STAMP_BYTES) {
                uint64_t sent = get64(m->payload), seq = get64((const uint8_t *)m->payload + 8);
                if (seq < (uint64_t)e->total && e->lat_us[seq] < 0) {
                    e->lat_us[seq] = now - (int64_t)sent;
                    atomic_fetch_add(&e->received, 1);
                }
            }
            rd_kafka_message_destroy(m);
            idle_since = 0;
        }
        if (atomic_load(&e->received) >= e->total)
            break;
        /* after the producer is done, wait up to 5 s for stragglers */
        if (atomic_load(&e->producer_done)) {
            if (!idle_since)
                idle_since = now;
            else if (now - idle_since > 5000000)
                break;
        }
    }
    return NULL;
}

static rd_kafka_t *make_producer(struct e2e *e)
{
    const char *defaults[] = {"acks", e->acks, "linger.ms", e->linger, NULL};
    rd_kafka_conf_t *c = client_conf_new(e->o, CMD, RD_KAFKA_PRODUCER, defaults);
    if (!c)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, e);
    return client_handle_new(CMD, RD_KAFKA_PRODUCER, c);
}

/* A consumer assigned every partition at its current end offset, so that
 * it sees exactly this run's records, and asked to answer fetches as soon
 * as one byte is there. */
static rd_kafka_t *make_consumer(struct e2e *e, int partitions)
{
    const char *defaults[] = {"group.id", "shopstream-bench-e2e", "enable.auto.commit", "false",
                              "fetch.wait.max.ms", "100", "fetch.min.bytes", "1",
                              "enable.partition.eof", "false", NULL};
    rd_kafka_conf_t *c = client_conf_new(e->o, CMD, RD_KAFKA_CONSUMER, defaults);
    rd_kafka_t *rk;
    if (!c || !(rk = client_handle_new(CMD, RD_KAFKA_CONSUMER, c)))
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, e->topic, p, &lo, &hi, e->o->timeout_ms);
        if (err) {
            fprintf(stderr, "%s: end offset of %s [%d]: %s.\n", CMD, e->topic, p, rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(l);
            rd_kafka_destroy(rk);
            return NULL;
        }
        rd_kafka_topic_partition_list_add(l, e->topic, p)->offset = hi;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

static int parse(int argc, char **argv, struct client_opts *o, struct bench_opts *bo, struct e2e *e)
{
    const char *v;
    int t;

    for (int i = 1; i < argc;) {
        if (bench_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((t = bench_opts_take(bo, BENCH_OPT_RECORD_BYTES | BENCH_OPT_ACKS | BENCH_OPT_LINGER |
                                         BENCH_OPT_PARTITIONS | BENCH_OPT_TOPIC | BENCH_OPT_SET,
                                 o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--rate", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--rate", v, 1, 10000000, &e->rate) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--seconds", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--seconds", v, 1, 86400, &e->seconds) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--warmup-s", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--warmup-s", v, 0, 3600, &e->warmup) < 0)
                return 2;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return 2;
        }
    }
    return -1;
}

int bench_e2e(int argc, char **argv)
{
    struct client_opts o;
    struct e2e e = {.topic = "shopstream-bench-e2e", .acks = "1", .linger = "0", .rate = 5000,
                    .seconds = 10, .warmup = 1, .size = 100};
    long long partitions = 1;
    int rc;
    struct bench_broker broker = {.pid = -1};
    rd_kafka_t *admin = NULL;
    int64_t *sorted = NULL;

    client_opts_init(&o);
    o.bootstrap = NULL;
    struct bench_opts bo = {.record_bytes = e.size, .min_record_bytes = STAMP_BYTES, .acks = e.acks,
                            .linger = e.linger, .partitions = 1, .topic = e.topic};
    if ((rc = parse(argc, argv, &o, &bo, &e)) >= 0)
        goto out;
    rc = 1;
    e.size = bo.record_bytes;
    e.acks = bo.acks;
    e.linger = bo.linger;
    e.topic = bo.topic;
    partitions = bo.partitions;
    if ((rc = bench_target(&broker, &o, &bo, CMD)) != 0)
        goto out;
    rc = 1;
    e.o = &o;
    if (!(admin = client_admin_new(&o, CMD)))
        goto out;
    int nparts = bench_topic_ensure(admin, &o, e.topic, (int)partitions);
    if (nparts <= 0)
        goto out;
    e.total = e.rate * (e.seconds + e.warmup);
    if (!(e.lat_us = malloc((size_t)e.total * sizeof *e.lat_us)) ||
        !(sorted = malloc((size_t)e.total * sizeof *sorted))) {
        fprintf(stderr, "%s: out of memory for %lld records.\n", CMD, e.total);
        goto out;
    }
    for (long long i = 0; i < e.total; i++)
        e.lat_us[i] = -1;
    if (!(e.prod = make_producer(&e)) || !(e.cons = make_consumer(&e, nparts)))
        goto out;

    pthread_t pt, ct;
    e.t0_us = bench_now_us() + 200000;  /* a moment for the consumer's first fetch */
    if (pthread_create(&ct, NULL, consumer_main, &e) != 0) {
        fprintf(stderr, "%s: cannot start a thread.\n", CMD);
        goto out;
    }
    if (pthread_create(&pt, NULL, producer_main, &e) != 0) {
        fprintf(stderr, "%s: cannot start a thread.\n", CMD);
        atomic_store(&e.producer_done, 1);
        pthread_join(ct, NULL);
        goto out;
    }
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);

    long long first = e.rate * e.warmup, n = 0, lost = 0;
    for (long long i = first; i < e.total; i++) {
        if (e.lat_us[i] < 0)
            lost++;
        else
            sorted[n++] = e.lat_us[i];
    }
    bench_sort(sorted, (size_t)n);
    printf("{\"bench\":\"e2e\",\"bootstrap\":\"%s\",\"topic\":\"%s\",\"partitions\":%d,\"rate\":%lld,"
           "\"seconds\":%lld,\"record_bytes\":%d,\"acks\":\"%s\",\"linger_ms\":%s,\"measured\":%lld,"
           "\"lost\":%lld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
           o.bootstrap, e.topic, nparts, e.rate, e.seconds, e.size, e.acks, e.linger, n, lost,
           bench_percentile(sorted, (size_t)n, 0.5) / 1e3, bench_percentile(sorted, (size_t)n, 0.99) / 1e3,
           bench_percentile(sorted, (size_t)n, 0.999) / 1e3, bench_percentile(sorted, (size_t)n, 1.0) / 1e3);
    if (lost)
        fprintf(stderr, "%s: %lld of %lld measured records were not received.\n", CMD, lost, lost + n);
    rc = lost || e.send_errors ? 1 : 0;
out:
    if (e.cons) {
        rd_kafka_consumer_close(e.cons);
        rd_kafka_destroy(e.cons);
    }
    if (e.prod)
        rd_kafka_destroy(e.prod);
    if (admin)
        rd_kafka_destroy(admin);
    bench_broker_stop(&broker);
    free(e.lat_us);
    free(sorted);
    client_opts_free(&o);
    return rc;
}
