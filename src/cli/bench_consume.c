/* bench_consume.c: `shopstream bench consume`: how fast a consumer reads a
 * topic from its first offset, as one line of JSON.
 *
 * Without --bootstrap it starts a private broker and fills a fresh topic
 * with N records through a librdkafka producer set up like `bench produce`
 * (linger 5 ms, batch.num.messages 10000, acks=1, values of random bytes,
 * partitions in turn).  With --bootstrap a topic that already holds
 * records is read as it is, up to N of them; a missing or empty one is
 * created and filled first.
 *
 * Then the clock runs from the first fetch until N records were read.
 *   native       shopstream's own fetch client (client/fetcher.h) on one
 *                connection to the first bootstrap address: from the first
 *                offsets to the end offsets as the run starts, pipelined
 *                Fetches (v4-v11) with large limits, every batch's CRC-32C
 *                checked and every record walked.  Reads from one broker:
 *                a partition led by another broker is an error.
 *   librdkafka   a plain librdkafka consumer assigned every partition from
 *                the beginning (check.crcs=true), the reference figure.
 *
 * The line: {"bench":"consume","client":..,"topic":..,"partitions":P,
 * "records":N,"bytes":value bytes,"seconds":S,"records_per_sec":..,
 * "mb_per_sec":value MB/s,"crc_checked":..} and for native also the Fetch
 * version, the number of fetches and the record bytes received.  The exit
 * code is non-zero when fewer than N records were read. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/client_opts.h"
#include "client/fetcher.h"
#include "stream/topics.h"

#define CMD "shopstream bench consume"
#define CLIENT_ID "shopstream-bench-consume"
/* A Fetch parks at most this long on the broker when nothing is there. */
#define FETCH_WAIT_MS 500
/* Give up when no record has arrived for this long. */
#define STALL_US (30 * 1000000LL)

static const char usage_text[] =
    "usage: shopstream bench consume [--records N] [--partitions P] [--record-bytes S]\n"
    "                                [--client native|librdkafka] [--max-bytes B]\n"
    "                                [--compression C] [--topic T] [--fill-only]\n"
    "                                [--bootstrap HOST:PORT] [-X k=v]...\n"
    "\n"
    "Consumer throughput from the start of a topic as one line of JSON: records/s\n"
    "and MB/s of values.\n"
    "\n"
    "  --records N       records to read (default 10000000)\n"
    "  --partitions P    partitions of the topic when it is created (default 1)\n"
    "  --record-bytes S  value size of the records written (default 100)\n"
    "  --client C        native: shopstream's own fetch client, pipelined, checking\n"
    "                    every CRC (default); librdkafka: a librdkafka consumer\n"
    "  --max-bytes B     native: bytes one Fetch may return (default 67108864); one\n"
    "                    partition gives at most 16 MiB of them\n"
    "  --compression C   codec of the records written: none (default), gzip,\n"
    "                    snappy, lz4, zstd\n"
    "  --topic T         topic (default shopstream-bench-consume); with --bootstrap\n"
    "                    a topic holding records is read as it is, up to N records\n"
    "  --bootstrap B     read from this cluster instead of a private broker\n"
    "  --fill-only       with --bootstrap: only create and fill the topic (when it\n"
    "                    is missing or empty), for later runs to read\n"
    "  -X k=v            librdkafka settings of the filling producer and of the\n"
    "                    librdkafka consumer\n";

struct copts {
    const char *topic;
    long long records;
    long long partitions;
    int record_bytes;
    bool native;
    int32_t max_bytes;
    const char *codec;
    bool fill_only;
};

/* What a client read and how long it took. */
struct cresult {
    long long records, value_bytes, wire_bytes, fetches;
    int64_t us;          /* from the first fetch (native) or the assignment */
    int64_t first_us;    /* from then to the first record: start-up latency */
    int fetch_version;
};

/* ---- options ------------------------------------------------------------ */

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct client_opts *o, struct copts *co)
{
    struct bench_opts bo = {.records = co->records, .record_bytes = co->record_bytes, .codec = co->codec,
                            .partitions = co->partitions, .topic = co->topic};
    const char *v;
    long long x;
    int t;

    for (int i = 1; i < argc;) {
        if (bench_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--fill-only")) {
            co->fill_only = true;
            i++;
            continue;
        }
        if ((t = bench_opts_take(&bo, BENCH_OPT_RECORDS | BENCH_OPT_RECORD_BYTES | BENCH_OPT_COMPRESSION |
                                          BENCH_OPT_PARTITIONS | BENCH_OPT_TOPIC,
                                 o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--max-bytes", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--max-bytes", v, 1024, 1 << 30, &x) < 0)
                return 2;
            co->max_bytes = (int32_t)x;
        } else if ((t = client_opt_value(CMD, "--client", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return 2;
            if (strcmp(v, "native") && strcmp(v, "librdkafka")) {
                fprintf(stderr, "%s: --client must be native or librdkafka, not '%s'.\n", CMD, v);
                return 2;
            }
            co->native = !strcmp(v, "native");
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return 2;
        }
    }
    co->records = bo.records;
    co->record_bytes = bo.record_bytes;
    co->codec = bo.codec;
    co->partitions = bo.partitions;
    co->topic = bo.topic;
    return -1;
}

/* ---- filling the topic -------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    long long *failed = opaque;
    (void)rk;
    if (m->err && (*failed)++ == 0)
        fprintf(stderr, "%s: delivery failed: %s.\n", CMD, rd_kafka_err2str(m->err));
}

/* Random bytes, so that a compressed fill still has work to do; a record's
 * value is a window into them. */
static uint8_t *random_payload(size_t n)
{
    uint8_t *p = malloc(n);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; p && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

/* Produces n records, partitions in turn, and waits for every
 * acknowledgement.  Returns 0, or -1 after printing why. */
static int produce_all(rd_kafka_t *rk, const char *topic, long long n, int size, int nparts,
                       const uint8_t *payload, const long long *failed)
{
    for (long long i = 0; i < n; i++) {
        const uint8_t *v = payload + (size_t)(i * 7919) % 65537;
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % nparts)),
                RD_KAFKA_V_VALUE((void *)v, (size_t)size), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!e)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "%s: producing to %s: %s.\n", CMD, topic, rd_kafka_err2str(e));
                return -1;
            }
            rd_kafka_poll(rk, 10);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
        if (*failed)
            return -1;
    }
    if (rd_kafka_flush(rk, 600000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: %d records to %s were not acknowledged in 10 minutes.\n", CMD, rd_kafka_outq_len(rk),
                topic);
        return -1;
    }
    return *failed ? -1 : 0;
}

/* Writes n records of the bench's shape into topic (nparts partitions). */
static int fill(const struct client_opts *o, const struct copts *co, int nparts, long long n)
{
    const char *defaults[] = {"acks", "1", "linger.ms", "5", "batch.num.messages", "10000",
                              "queue.buffering.max.messages", "1000000", "queue.buffering.max.kbytes", "1048576",
                              "compression.codec", co->codec, NULL};
    long long failed = 0;
    uint8_t *payload = random_payload((size_t)co->record_bytes + 65537);
    rd_kafka_conf_t *conf = payload ? client_conf_new(o, CMD, RD_KAFKA_PRODUCER, defaults) : NULL;
    rd_kafka_t *rk = NULL;
    int rc = -1;

    if (!payload)
        fprintf(stderr, "%s: out of memory.\n", CMD);
    if (conf) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, &failed);
        rk = client_handle_new(CMD, RD_KAFKA_PRODUCER, conf);
    }
    if (rk)
        rc = produce_all(rk, co->topic, n, co->record_bytes, nparts, payload, &failed);
    if (rk)
        rd_kafka_destroy(rk);
    free(payload);
    return rc;
}

/* Records the topic holds (sum of end - start offsets), or -1. */
static long long topic_records(rd_kafka_t *admin, const char *topic, int nparts, int timeout_ms)
{
    long long total = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(admin, topic, p, &lo, &hi, timeout_ms);
        if (e) {
            fprintf(stderr, "%s: the offsets of %s [%d]: %s.\n", CMD, topic, p, rd_kafka_err2str(e));
            return -1;
        }
        total += hi - lo;
    }
    return total;
}

/* Makes sure the topic exists and holds records: creates and fills it when
 * it is missing or empty, else lowers co->records to what it holds.  Sets
 * *nparts.  Returns 0 or -1 after printing why. */
static int prepare_topic(const struct client_opts *o, struct copts *co, int *nparts)
{
    char err[512];
    rd_kafka_t *admin = client_admin_new(o, CMD);
    int rc = -1;
    if (!admin)
        return -1;
    int n = stream_topic_partitions(admin, co->topic, o->timeout_ms, err, sizeof err);
    long long held = n > 0 ? topic_records(admin, co->topic, n, o->timeout_ms) : 0;
    if (n < 0)
        fprintf(stderr, "%s: looking up topic %s: %s.\n", CMD, co->topic, err);
    if (n < 0 || held < 0)
        goto out;
    if (held > 0) {
        co->records = held < co->records ? held : co->records;
        *nparts = n;
        rc = 0;
        goto out;
    }
    struct stream_topic_spec spec = {co->topic, (int)co->partitions, -1, 0};
    if (n == 0 && stream_topics_create(admin, &spec, 1, o->timeout_ms, err, sizeof err) < 0)
        /* librdkafka's mock cluster, for one, cannot create topics through
         * the Admin API but creates them on first use */
        fprintf(stderr, "%s: creating topic %s failed (%s); writing to it anyway, for clusters that create "
                "topics on first use.\n", CMD, co->topic, err);
    if (fill(o, co, n > 0 ? n : (int)co->partitions, co->records) < 0)
        goto out;
    /* a topic created on first use has the cluster's partition count */
    if ((*nparts = stream_topic_partitions(admin, co->topic, o->timeout_ms, err, sizeof err)) <= 0) {
        fprintf(stderr, "%s: topic %s is missing after writing to it: %s.\n", CMD, co->topic,
                *nparts < 0 ? err : "the cluster lists no such topic");
        goto out;
    }
    rc = 0;
out:
    rd_kafka_destroy(admin);
    return rc;
}

/* ---- the native client -------------------------------------------------- */

/* Reads the topic from its first offsets to its end offsets as of now, up
 * to co->records, with one fetcher on the first bootstrap address. */
static int run_native(const struct client_opts *o, const struct copts *co, struct cresult *res)
{
    char host[256], first[300], err[512];
    int port;
    /* the first address of a list is the broker to read from */
    snprintf(first, sizeof first, "%.*s", (int)strcspn(o->bootstrap, ","), o->bootstrap);
    if (client_parse_hostport(CMD, "--bootstrap", first, host, sizeof host, &port) < 0)
        return -1;
    struct fetcher_conf conf = {host, port, CLIENT_ID, co->topic, co->max_bytes, o->timeout_ms};
    struct fetcher *f = fetcher_open(&conf, NULL, NULL, 0, err, sizeof err);
    long long want = f ? fetcher_read_to_end(f, co->records) : -1;
    int rc = want < 0 ? -1 : 0, stalled = 0;
    int64_t last_progress = bench_now_us();
    res->us = -bench_now_us();
    while (rc == 0 && res->records < want) {
        long long n, bytes;
        int more = fetcher_poll(f, FETCH_WAIT_MS, &n, &bytes);
        if (more <= 0) {
            rc = more; /* 0: every partition read to its end */
            break;
        }
        if (n > 0 && res->records == 0)
            res->first_us = bench_now_us() + res->us;
        res->records += n;
        res->value_bytes += bytes;
        if (n > 0)
            last_progress = bench_now_us();
        else if (bench_now_us() - last_progress > STALL_US)
            stalled = rc = -1;
    }
    res->us += bench_now_us();
    if (stalled)
        fprintf(stderr, "%s: no record arrived for %lld s after %lld of %lld.\n", CMD, STALL_US / 1000000,
                res->records, want);
    else if (rc < 0)
        fprintf(stderr, "%s: %s.\n", CMD, err);
    if (f) {
        struct fetcher_stats s = fetcher_stats(f);
        res->wire_bytes = s.wire_bytes;
        res->fetches = s.fetches;
        res->fetch_version = s.fetch_version;
    }
    fetcher_close(f);
    return rc;
}

/* ---- the librdkafka client ---------------------------------------------- */

/* Assigns every partition from its beginning. */
static int assign_all(rd_kafka_t *rk, const char *topic, int nparts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fprintf(stderr, "%s: assigning %s: %s.\n", CMD, topic, rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* Reads until want records, in batches off the consumer queue. */
static int rdk_read(rd_kafka_t *rk, long long want, struct cresult *res)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[1024];
    int64_t last = bench_now_us();
    int rc = 0;
    res->us = -bench_now_us();
    while (res->records < want && rc == 0) {
        ssize_t k = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
        for (ssize_t i = 0; i < k; i++) {
            if (!msgs[i]->err && res->records < want) {
                res->records++;
                res->value_bytes += (long long)msgs[i]->len;
            } else if (msgs[i]->err && msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && rc == 0) {
                fprintf(stderr, "%s: the librdkafka consumer failed: %s.\n", CMD, rd_kafka_message_errstr(msgs[i]));
                rc = -1;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
        if (k > 0 && res->first_us == 0)
            res->first_us = bench_now_us() + res->us;
        if (k > 0)
            last = bench_now_us();
        else if (bench_now_us() - last > STALL_US) {
            fprintf(stderr, "%s: no record arrived for %lld s after %lld of %lld.\n", CMD, STALL_US / 1000000,
                    res->records, want);
            rc = -1;
        }
    }
    res->us += bench_now_us();
    rd_kafka_queue_destroy(q);
    return rc;
}

static int run_librdkafka(const struct client_opts *o, const struct copts *co, int nparts, struct cresult *res,
                          int *crc)
{
    char group[96], v[16];
    size_t vlen = sizeof v;
    snprintf(group, sizeof group, "shopstream-bench-consume-%d-%lld", (int)getpid(), (long long)bench_now_us());
    const char *defaults[] = {"group.id", group, "enable.auto.commit", "false", "fetch.wait.max.ms", "10",
                              "check.crcs", "true", "enable.partition.eof", "false", NULL};
    rd_kafka_conf_t *conf = client_conf_new(o, CMD, RD_KAFKA_CONSUMER, defaults);
    if (!conf)
        return -1;
    /* -X may have turned the check off: report what the consumer did */
    *crc = rd_kafka_conf_get(conf, "check.crcs", v, &vlen) == RD_KAFKA_CONF_OK && !strcmp(v, "true");
    rd_kafka_t *rk = client_handle_new(CMD, RD_KAFKA_CONSUMER, conf);
    if (!rk)
        return -1;
    rd_kafka_poll_set_consumer(rk);
    int rc = assign_all(rk, co->topic, nparts) < 0 ? -1 : rdk_read(rk, co->records, res);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the mode ----------------------------------------------------------- */

static void print_result(const struct client_opts *o, const struct copts *co, int nparts, const struct cresult *r,
                         int crc)
{
    double secs = r->us > 0 ? r->us / 1e6 : 1e-6;
    printf("{\"bench\":\"consume\",\"client\":\"%s\",\"bootstrap\":\"%s\",\"topic\":\"%s\",\"partitions\":%d,"
           "\"records\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"records_per_sec\":%.0f,\"mb_per_sec\":%.1f",
           co->native ? "native" : "librdkafka", o->bootstrap, co->topic, nparts, r->records, r->value_bytes, secs,
           r->records / secs, r->value_bytes / secs / 1e6);
    if (co->native)
        printf(",\"fetch_version\":%d,\"fetches\":%lld,\"wire_bytes\":%lld", r->fetch_version, r->fetches,
               r->wire_bytes);
    printf(",\"first_record_ms\":%.1f,\"crc_checked\":%s}\n", r->first_us / 1e3, crc ? "true" : "false");
}

int bench_consume(int argc, char **argv)
{
    struct client_opts o;
    struct copts co = {.topic = "shopstream-bench-consume", .records = 10000000, .partitions = 1,
                       .record_bytes = 100, .native = true, .max_bytes = 64 * 1024 * 1024, .codec = "none"};
    struct bench_broker broker = {.pid = -1};
    struct cresult res = {0};
    int rc, nparts = 0, crc = 1;

    client_opts_init(&o);
    o.bootstrap = NULL;
    if ((rc = parse(argc, argv, &o, &co)) >= 0)
        goto out;
    rc = 1;
    if (co.fill_only && !o.bootstrap) {
        fprintf(stderr, "%s: --fill-only fills a cluster for later runs; it needs --bootstrap.\n", CMD);
        rc = 2;
        goto out;
    }
    if (!o.bootstrap) {
        if (bench_broker_start(&broker, NULL, NULL, 1) < 0)
            goto out;
        o.bootstrap = broker.bootstrap;
    }
    if (prepare_topic(&o, &co, &nparts) < 0)
        goto out;
    if (co.fill_only) {
        printf("{\"bench\":\"consume\",\"fill_only\":true,\"bootstrap\":\"%s\",\"topic\":\"%s\","
               "\"partitions\":%d,\"records\":%lld}\n", o.bootstrap, co.topic, nparts, co.records);
        rc = 0;
        goto out;
    }
    if (co.native ? run_native(&o, &co, &res) : run_librdkafka(&o, &co, nparts, &res, &crc))
        goto out;
    print_result(&o, &co, nparts, &res, crc);
    if (res.records < co.records)
        fprintf(stderr, "%s: read %lld of %lld records: the partitions held no more from their first offsets.\n",
                CMD, res.records, co.records);
    else
        rc = 0;
out:
    bench_broker_stop(&broker);
    client_opts_free(&o);
    return rc;
}
