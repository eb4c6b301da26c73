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
 *   native       shopstream's own fetch client on one connection
 *                (client/kconn.h): Metadata for the partitions and their
 *                leader, ListOffsets for the first and the end offsets,
 *                then Fetch (v4-v11, the highest the broker serves) with
 *                large limits.  Fetches are pipelined: once a response is
 *                in, the next offsets come from its batch headers and the
 *                next Fetch goes out before the response is decoded, so the
 *                broker serves it meanwhile.  Decoding is a consumer's real
 *                work: every batch's CRC-32C is checked, compressed batches
 *                are decompressed, and every record is walked for its
 *                offset and value.  Control batches (transaction markers)
 *                are skipped, as consumers do.  Reads from one broker: a
 *                partition led by another broker is an error.
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
#include "client/kconn.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/obuf.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"
#include "protocol/records.h"
#include "stream/topics.h"

#define CMD "shopstream bench consume"
#define CLIENT_ID "shopstream-bench-consume"
/* A Fetch parks at most this long on the broker when nothing is there. */
#define FETCH_WAIT_MS 500
/* Give up when no record has arrived for this long. */
#define STALL_US (30 * 1000000LL)
/* The most one partition contributes to one fetch, Kafka's
 * max.partition.fetch.bytes raised from 1 MiB. */
#define PARTITION_MAX_BYTES (16 * 1024 * 1024)
/* Room for a response's own fields and a whole first batch beyond MaxBytes
 * (Kafka returns one whole batch even when it is larger than the limits). */
#define FRAME_SLACK (8 * 1024 * 1024)

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
    const char *v;
    long long x;
    int t;

    for (int i = 1; i < argc;) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((t = client_opts_take(o, CMD, argc, argv, &i)) != 0) {
            if (t < 0)
                return 2;
            continue;
        }
        if (!strcmp(argv[i], "--fill-only")) {
            co->fill_only = true;
            i++;
            continue;
        }
        if ((t = client_opt_value(CMD, "--records", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--records", v, 1, 10000000000LL, &co->records) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--partitions", v, 1, 10000, &co->partitions) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--record-bytes", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--record-bytes", v, 0, 1000000, &x) < 0)
                return 2;
            co->record_bytes = (int)x;
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
        } else if ((t = client_opt_value(CMD, "--compression", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return 2;
            co->codec = v; /* librdkafka names and checks it */
        } else if ((t = client_opt_value(CMD, "--topic", argc, argv, &i, &v)) != 0) {
            if (t < 0)
                return 2;
            if (!*v) {
                fprintf(stderr, "%s: --topic needs a name.\n", CMD);
                return 2;
            }
            co->topic = v;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return 2;
        }
    }
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

/* One partition being read. */
struct fpart {
    int32_t id;
    int64_t pos;   /* the next offset to fetch */
    int64_t end;   /* its end offset when the run started: read up to here */
    int64_t asked; /* the offset the fetch in flight asked for, -1 if not asked */
    bool answered; /* the answer to that fetch named this partition */
    int64_t from;  /* the offset the answer being decoded starts at (the next
                      fetch may already be in flight, with asked moved on) */
};

struct native {
    struct kconn c;
    char err[512];
    const struct copts *co;
    int16_t meta_v, list_v, fetch_v;
    struct fpart *parts; /* owned, in the order Metadata listed them */
    int nparts;
    int rot;             /* rotates the partitions' order in fetches, for fairness */
    struct FetchRequest_FetchPartition *fp; /* owned, nparts entries */
    struct obuf w;       /* the request being built */
    struct arena a;      /* the decoded response, reset each time */
    struct kconn_frame f;
    struct obuf scratch; /* decompressed records */
    long long want;      /* records to read */
    struct cresult res;
};

/* Prints the connection's error sentence; returns -1. */
static int native_fail(struct native *n)
{
    fprintf(stderr, "%s: %s.\n", CMD, n->err);
    return -1;
}

/* The partition with this id, or NULL. */
static struct fpart *find_part(struct native *n, int32_t id)
{
    if (id >= 0 && id < n->nparts && n->parts[id].id == id)
        return &n->parts[id];
    for (int i = 0; i < n->nparts; i++)
        if (n->parts[i].id == id)
            return &n->parts[i];
    return NULL;
}

/* Checks that a response decoded and filled its frame exactly: bytes left
 * over mean the two sides disagree on the layout, and what was decoded
 * cannot be trusted.  Returns 0, or -1 after printing why. */
static int decoded(struct native *n, struct kread *r, int rc, int16_t key)
{
    if (rc == 0 && kr_left(r) == 0)
        return 0;
    if (rc == 0)
        r->err = KR_EINVAL;
    kconn_malformed(&n->c, r, key);
    return native_fail(n);
}

/* Sends the request in n->w and receives its answer into n->f. */
static int native_roundtrip(struct native *n, struct kread *body)
{
    return kconn_roundtrip(&n->c, &n->w, &n->f, body) < 0 ? native_fail(n) : 0;
}

/* A partition's leader must be the broker we are connected to: the native
 * client reads from one broker only.  With several brokers that one is
 * recognised by its advertised host and port. */
static int check_leader(struct native *n, const struct MetadataResponse *md,
                        const struct MetadataResponse_MetadataResponsePartition *p)
{
    if (md->Brokers.count == 1 && md->Brokers.items[0].NodeId == p->LeaderId)
        return 0;
    for (int32_t b = 0; b < md->Brokers.count; b++) {
        const struct MetadataResponse_MetadataResponseBroker *br = &md->Brokers.items[b];
        if (br->NodeId != p->LeaderId)
            continue;
        if (br->Port == n->c.port && kstr_eq(br->Host, n->c.host))
            return 0;
        fprintf(stderr, "%s: partition %d of %s is led by broker %d at %.*s:%d, not by %s:%d; the native client "
                "reads from the bootstrap broker only.\n", CMD, p->PartitionIndex, n->co->topic, br->NodeId,
                (int)(br->Host.len > 0 ? br->Host.len : 0), br->Host.ptr ? br->Host.ptr : "", br->Port,
                n->c.host, n->c.port);
        return -1;
    }
    fprintf(stderr, "%s: partition %d of %s has leader %d, which the broker at %s:%d does not list.\n", CMD,
            p->PartitionIndex, n->co->topic, p->LeaderId, n->c.host, n->c.port);
    return -1;
}

/* Takes the partitions of the topic from a Metadata answer. */
static int take_partitions(struct native *n, const struct MetadataResponse *md,
                           const struct MetadataResponse_MetadataResponseTopic *t)
{
    if (t->Partitions.count <= 0) {
        fprintf(stderr, "%s: the broker at %s:%d lists no partitions for %s.\n", CMD, n->c.host, n->c.port,
                n->co->topic);
        return -1;
    }
    n->nparts = t->Partitions.count;
    n->parts = xcalloc((size_t)n->nparts, sizeof *n->parts);
    n->fp = xcalloc((size_t)n->nparts, sizeof *n->fp);
    if (!n->parts || !n->fp) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        return -1;
    }
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        const struct MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[i];
        if (p->ErrorCode && p->ErrorCode != KERR_REPLICA_NOT_AVAILABLE) {
            fprintf(stderr, "%s: partition %d of %s: the broker reports %s.\n", CMD, p->PartitionIndex,
                    n->co->topic, kerr_name(p->ErrorCode));
            return -1;
        }
        if (check_leader(n, md, p) < 0)
            return -1;
        n->parts[i] = (struct fpart){.id = p->PartitionIndex, .asked = -1};
    }
    for (int i = 0; i < n->nparts; i++)
        if (find_part(n, n->parts[i].id) != &n->parts[i]) {
            fprintf(stderr, "%s: the broker at %s:%d lists partition %d of %s twice.\n", CMD, n->c.host, n->c.port,
                    n->parts[i].id, n->co->topic);
            return -1;
        }
    return 0;
}

/* Metadata for the topic: its partitions, each led by this broker. */
static int native_metadata(struct native *n)
{
    struct MetadataRequest_MetadataRequestTopic t;
    MetadataRequest_MetadataRequestTopic_init(&t);
    t.Name = kstr_c(n->co->topic);
    struct MetadataRequest req;
    MetadataRequest_init(&req);
    req.Topics.count = 1;
    req.Topics.items = &t;
    req.AllowAutoTopicCreation = false;
    kconn_begin(&n->c, &n->w, KAPI_METADATA, n->meta_v);
    MetadataRequest_encode(&n->w, n->meta_v, &req);
    struct kread r;
    struct MetadataResponse md;
    if (native_roundtrip(n, &r) < 0)
        return -1;
    arena_reset(&n->a);
    if (decoded(n, &r, MetadataResponse_decode(&r, &n->a, n->meta_v, &md), KAPI_METADATA) < 0)
        return -1;
    for (int32_t i = 0; i < md.Topics.count; i++) {
        const struct MetadataResponse_MetadataResponseTopic *tp = &md.Topics.items[i];
        if (!kstr_eq(tp->Name, n->co->topic))
            continue;
        if (tp->ErrorCode) {
            fprintf(stderr, "%s: topic %s: the broker at %s:%d reports %s.\n", CMD, n->co->topic, n->c.host,
                    n->c.port, kerr_name(tp->ErrorCode));
            return -1;
        }
        return take_partitions(n, &md, tp);
    }
    fprintf(stderr, "%s: the broker at %s:%d did not describe topic %s.\n", CMD, n->c.host, n->c.port, n->co->topic);
    return -1;
}

/* Stores one partition of a ListOffsets answer.  Returns 1 when it was one
 * of ours, 0 when not, -1 after printing the error it reports. */
static int store_offset(struct native *n, const struct ListOffsetsResponse_ListOffsetsPartitionResponse *p,
                        bool earliest)
{
    struct fpart *fp = find_part(n, p->PartitionIndex);
    if (!fp)
        return 0;
    if (p->ErrorCode || p->Offset < 0) {
        fprintf(stderr, "%s: the %s offset of %s [%d]: the broker reports %s.\n", CMD, earliest ? "first" : "end",
                n->co->topic, p->PartitionIndex, p->ErrorCode ? kerr_name(p->ErrorCode) : "no offset");
        return -1;
    }
    *(earliest ? &fp->pos : &fp->end) = p->Offset;
    return 1;
}

/* Stores one ListOffsets answer: the start (earliest) or the end. */
static int store_offsets(struct native *n, const struct ListOffsetsResponse *resp, bool earliest)
{
    int found = 0, r;
    for (int32_t t = 0; t < resp->Topics.count; t++) {
        if (!kstr_eq(resp->Topics.items[t].Name, n->co->topic))
            continue;
        for (int32_t i = 0; i < resp->Topics.items[t].Partitions.count; i++) {
            if ((r = store_offset(n, &resp->Topics.items[t].Partitions.items[i], earliest)) < 0)
                return -1;
            found += r;
        }
    }
    if (found < n->nparts) {
        fprintf(stderr, "%s: the broker at %s:%d answered ListOffsets for %d of the %d partitions of %s.\n", CMD,
                n->c.host, n->c.port, found, n->nparts, n->co->topic);
        return -1;
    }
    return 0;
}

/* ListOffsets of every partition: earliest (timestamp -2) or latest (-1).
 * One request cannot ask both of one partition. */
static int native_offsets(struct native *n, bool earliest)
{
    struct ListOffsetsRequest_ListOffsetsPartition *lp = arena_alloc(&n->a, (size_t)n->nparts * sizeof *lp);
    if (!lp) {
        fprintf(stderr, "%s: out of memory.\n", CMD);
        return -1;
    }
    for (int i = 0; i < n->nparts; i++) {
        ListOffsetsRequest_ListOffsetsPartition_init(&lp[i]);
        lp[i].PartitionIndex = n->parts[i].id;
        lp[i].Timestamp = earliest ? -2 : -1;
    }
    struct ListOffsetsRequest_ListOffsetsTopic t = {kstr_c(n->co->topic), {n->nparts, lp}};
    struct ListOffsetsRequest req;
    ListOffsetsRequest_init(&req);
    req.ReplicaId = -1;
    req.Topics.count = 1;
    req.Topics.items = &t;
    kconn_begin(&n->c, &n->w, KAPI_LISTOFFSETS, n->list_v);
    ListOffsetsRequest_encode(&n->w, n->list_v, &req);
    struct kread r;
    struct ListOffsetsResponse resp;
    if (native_roundtrip(n, &r) < 0)
        return -1;
    arena_reset(&n->a);
    if (decoded(n, &r, ListOffsetsResponse_decode(&r, &n->a, n->list_v, &resp), KAPI_LISTOFFSETS) < 0)
        return -1;
    return store_offsets(n, &resp, earliest);
}

/* Connects, agrees on versions, and learns partitions and offsets. */
static int native_setup(struct native *n, const char *bootstrap, int timeout_ms)
{
    char host[256], first[300];
    int port;
    /* the first address of a list is the broker to read from */
    snprintf(first, sizeof first, "%.*s", (int)strcspn(bootstrap, ","), bootstrap);
    if (client_parse_hostport(CMD, "--bootstrap", first, host, sizeof host, &port) < 0)
        return -1;
    int32_t max_frame = n->co->max_bytes + FRAME_SLACK;
    if (kconn_open(&n->c, host, port, timeout_ms, CLIENT_ID, max_frame, n->err, sizeof n->err) < 0 ||
        kconn_api_versions(&n->c) < 0)
        return native_fail(n);
    /* Versions both Apache Kafka (2.x-4.x) and shopstream serve, below the
     * flexible ones, so topics go by name and headers stay v1. */
    int mv = kconn_pick_version(&n->c, KAPI_METADATA, 1, 8);
    /* ListOffsets stops at v3: the mock cluster of librdkafka 2.0.2 writes
     * four bytes too many per partition in v4 and v5. */
    int lv = mv < 0 ? -1 : kconn_pick_version(&n->c, KAPI_LISTOFFSETS, 1, 3);
    int fv = lv < 0 ? -1 : kconn_pick_version(&n->c, KAPI_FETCH, 4, 11);
    if (fv < 0)
        return native_fail(n);
    n->meta_v = (int16_t)mv;
    n->list_v = (int16_t)lv;
    n->fetch_v = (int16_t)fv;
    n->res.fetch_version = fv;
    if (native_metadata(n) < 0 || native_offsets(n, true) < 0 || native_offsets(n, false) < 0)
        return -1;
    long long held = 0;
    for (int i = 0; i < n->nparts; i++)
        held += n->parts[i].end - n->parts[i].pos;
    if (held < n->want)
        n->want = held;
    return 0;
}

/* Sends a Fetch for every partition not read to its end, starting from a
 * different partition each time, and sets *corr.  Returns 1 when sent, 0
 * when nothing is left to fetch, -1 on failure. */
static int send_fetch(struct native *n, int32_t *corr)
{
    int k = 0;
    for (int j = 0; j < n->nparts; j++) {
        struct fpart *p = &n->parts[(j + n->rot) % n->nparts];
        p->asked = -1;
        p->answered = false;
        if (p->pos >= p->end)
            continue;
        p->asked = p->pos;
        FetchRequest_FetchPartition_init(&n->fp[k]);
        n->fp[k].Partition = p->id;
        n->fp[k].FetchOffset = p->pos;
        n->fp[k].PartitionMaxBytes = n->co->max_bytes < PARTITION_MAX_BYTES ? n->co->max_bytes : PARTITION_MAX_BYTES;
        k++;
    }
    n->rot = (n->rot + 1) % n->nparts;
    if (k == 0)
        return 0;
    struct FetchRequest_FetchTopic t;
    FetchRequest_FetchTopic_init(&t);
    t.Topic = kstr_c(n->co->topic);
    t.Partitions.count = k;
    t.Partitions.items = n->fp;
    struct FetchRequest req;
    FetchRequest_init(&req);
    req.ReplicaId = -1;
    req.MaxWaitMs = FETCH_WAIT_MS;
    req.MinBytes = 1;
    req.MaxBytes = n->co->max_bytes;
    req.IsolationLevel = 0; /* read_uncommitted: every record, as the fill wrote them */
    req.SessionId = 0;
    req.SessionEpoch = -1;  /* a full fetch outside any fetch session */
    req.Topics.count = 1;
    req.Topics.items = &t;
    *corr = kconn_begin(&n->c, &n->w, KAPI_FETCH, n->fetch_v);
    FetchRequest_encode(&n->w, n->fetch_v, &req);
    if (kconn_send(&n->c, &n->w) < 0)
        return native_fail(n);
    n->res.fetches++;
    return 1;
}

/* Advances a partition past the whole batches of its records, reading only
 * batch headers (the CRC is checked when the records are decoded).  A
 * partial batch at the end is normal: the broker cuts at the byte limits,
 * and the next fetch starts at it.  Returns the records the whole batches
 * hold from the offset asked on. */
static long long advance(struct fpart *p, const krecords *rec)
{
    struct records_iter it;
    struct records_batch_info bi;
    const uint8_t *b;
    size_t size;
    long long count = 0;
    records_iter_init(&it, rec->ptr, rec->len > 0 ? (size_t)rec->len : 0, false);
    while (records_iter_next(&it, &bi, &b, &size) == RECORDS_ITER_BATCH) {
        int64_t last = bi.base_offset + bi.last_offset_delta;
        if (last < p->pos)
            continue; /* before what we asked for (a batch that straddles it) */
        if (!bi.is_control)
            count += bi.base_offset >= p->asked ? bi.record_count : last - p->asked + 1;
        p->pos = last + 1;
    }
    return count;
}

/* Checks a partition's answer and advances its position.  *count gets the
 * records it should hold.  Returns 0 or -1. */
static int take_partition(struct native *n, const struct FetchResponse_PartitionData *pd, long long *count)
{
    struct fpart *p = find_part(n, pd->PartitionIndex);
    if (!p || p->asked < 0 || p->answered) {
        fprintf(stderr, "%s: the broker at %s:%d answered Fetch for partition %d of %s, which was not asked%s.\n",
                CMD, n->c.host, n->c.port, pd->PartitionIndex, n->co->topic, p && p->answered ? " twice" : "");
        return -1;
    }
    p->answered = true;
    p->from = p->asked;
    if (pd->ErrorCode) {
        fprintf(stderr, "%s: fetching %s [%d] at offset %lld: the broker reports %s (the log starts at %lld).\n",
                CMD, n->co->topic, p->id, (long long)p->asked, kerr_name(pd->ErrorCode),
                (long long)pd->LogStartOffset);
        return -1;
    }
    *count += advance(p, &pd->Records);
    n->res.wire_bytes += pd->Records.len > 0 ? pd->Records.len : 0;
    return 0;
}

/* Walks the records of one whole batch, counting those at or after the
 * offset the answer starts at, until n->want.  Returns 0 or -1. */
static int decode_batch(struct native *n, const struct fpart *p, const uint8_t *b, size_t size,
                        const struct records_batch_info *bi)
{
    static const struct records_limits lim = {0, 0, true};
    const uint8_t *body, *end;
    size_t len;
    if (bi->is_control)
        return 0;
    int e = records_batch_body(b, size, &lim, &n->scratch, &body, &len);
    if (e) {
        fprintf(stderr, "%s: the batch at offset %lld of %s [%d] cannot be read: %s.\n", CMD,
                (long long)bi->base_offset, n->co->topic, p->id, kerr_name(e));
        return -1;
    }
    end = body + len;
    int32_t i;
    for (i = 0; i < bi->record_count && n->res.records < n->want; i++) {
        struct records_record_view rv;
        if (records_record_next(&body, end, &rv) < 0) {
            fprintf(stderr, "%s: record %d of the batch at offset %lld of %s [%d] is malformed.\n", CMD, i,
                    (long long)bi->base_offset, n->co->topic, p->id);
            return -1;
        }
        if (bi->base_offset + rv.offset_delta < p->from)
            continue;
        n->res.records++;
        n->res.value_bytes += rv.value_len > 0 ? rv.value_len : 0;
    }
    if (i == bi->record_count && body != end) {
        /* the count in the header and the records disagree */
        fprintf(stderr, "%s: the batch at offset %lld of %s [%d] has bytes after its %d records.\n", CMD,
                (long long)bi->base_offset, n->co->topic, p->id, bi->record_count);
        return -1;
    }
    return 0;
}

/* Why records_iter_next called a batch corrupt. */
static const char *corrupt_reason(const uint8_t *p, size_t left)
{
    if (left > RECORDS_OFF_MAGIC && p[RECORDS_OFF_MAGIC] != 2)
        return "it is not a v2 record batch (magic 2)";
    if (left >= RECORDS_LOG_OVERHEAD &&
        (int32_t)((uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11]) <
            RECORDS_V2_OVERHEAD - RECORDS_LOG_OVERHEAD)
        return "its length is below a batch header's";
    return "its CRC-32C does not match";
}

/* Checks the CRC of every whole batch of one partition's records and walks
 * its records.  Returns 0 or -1. */
static int decode_partition(struct native *n, const struct FetchResponse_PartitionData *pd)
{
    const struct fpart *p = find_part(n, pd->PartitionIndex);
    struct records_iter it;
    struct records_batch_info bi;
    const uint8_t *b;
    size_t size;
    int r;
    records_iter_init(&it, pd->Records.ptr, pd->Records.len > 0 ? (size_t)pd->Records.len : 0, true);
    while ((r = records_iter_next(&it, &bi, &b, &size)) == RECORDS_ITER_BATCH && n->res.records < n->want)
        if (bi.base_offset + bi.last_offset_delta >= p->from && decode_batch(n, p, b, size, &bi) < 0)
            return -1;
    if (r == RECORDS_ITER_CORRUPT) {
        fprintf(stderr, "%s: the batch at byte %zu of a Fetch answer for %s [%d] is corrupt: %s.\n", CMD, it.pos,
                n->co->topic, p->id, corrupt_reason(it.p + it.pos, it.n - it.pos));
        return -1;
    }
    return 0;
}

/* Receives the answer to the fetch in flight, checks it and advances the
 * positions.  *resp (in n->a, views into n->f) is the decoded answer;
 * *expect the records it should hold.  Returns 0 or -1. */
static int recv_fetch(struct native *n, int32_t corr, struct FetchResponse *resp, long long *expect)
{
    struct kread r;
    if (kconn_recv(&n->c, corr, &n->f, &r) < 0)
        return native_fail(n);
    arena_reset(&n->a);
    if (decoded(n, &r, FetchResponse_decode(&r, &n->a, n->fetch_v, resp), KAPI_FETCH) < 0)
        return -1;
    if (resp->ErrorCode) {
        fprintf(stderr, "%s: the broker at %s:%d answered Fetch with %s.\n", CMD, n->c.host, n->c.port,
                kerr_name(resp->ErrorCode));
        return -1;
    }
    *expect = 0;
    for (int32_t t = 0; t < resp->Responses.count; t++) {
        const struct FetchResponse_FetchableTopicResponse *tr = &resp->Responses.items[t];
        if (!kstr_eq(tr->Topic, n->co->topic)) {
            fprintf(stderr, "%s: the broker at %s:%d answered Fetch for topic %.*s, which was not asked.\n", CMD,
                    n->c.host, n->c.port, tr->Topic.len > 0 ? (int)tr->Topic.len : 0,
                    tr->Topic.ptr ? tr->Topic.ptr : "");
            return -1;
        }
        for (int32_t i = 0; i < tr->Partitions.count; i++)
            if (take_partition(n, &tr->Partitions.items[i], expect) < 0)
                return -1;
    }
    return 0;
}

/* Decodes every partition of a received answer. */
static int decode_fetch(struct native *n, const struct FetchResponse *resp)
{
    for (int32_t t = 0; t < resp->Responses.count; t++)
        for (int32_t i = 0; i < resp->Responses.items[t].Partitions.count; i++)
            if (decode_partition(n, &resp->Responses.items[t].Partitions.items[i]) < 0)
                return -1;
    return 0;
}

/* The fetch loop.  One Fetch is in flight while the previous answer is
 * decoded; its offsets come from that answer's batch headers.  Returns 0
 * or -1. */
static int native_read(struct native *n)
{
    int32_t corr = 0;
    int inflight = 0;
    int64_t last_progress = bench_now_us();
    n->res.us = -bench_now_us();
    while (n->res.records < n->want) {
        if (!inflight) {
            if ((inflight = send_fetch(n, &corr)) <= 0)
                break; /* -1: failed; 0: every partition read to its end */
        }
        struct FetchResponse resp;
        long long expect;
        if (recv_fetch(n, corr, &resp, &expect) < 0)
            return -1;
        inflight = 0;
        if (n->res.records + expect < n->want && (inflight = send_fetch(n, &corr)) < 0)
            return -1;
        long long before = n->res.records;
        if (decode_fetch(n, &resp) < 0)
            return -1;
        if (n->res.records > before && before == 0)
            n->res.first_us = bench_now_us() + n->res.us;
        if (n->res.records > before)
            last_progress = bench_now_us();
        else if (bench_now_us() - last_progress > STALL_US) {
            fprintf(stderr, "%s: no record arrived for %lld s after %lld of %lld.\n", CMD, STALL_US / 1000000,
                    n->res.records, n->want);
            return -1;
        }
    }
    n->res.us += bench_now_us();
    return inflight < 0 ? -1 : 0;
}

static void native_free(struct native *n)
{
    kconn_close(&n->c);
    kconn_frame_free(&n->f);
    obuf_free(&n->w);
    obuf_free(&n->scratch);
    arena_free(&n->a);
    xfree(n->parts);
    xfree(n->fp);
}

static int run_native(const struct client_opts *o, const struct copts *co, struct cresult *res)
{
    struct native n;
    memset(&n, 0, sizeof n);
    n.co = co;
    n.want = co->records;
    n.c.fd = -1;
    obuf_init(&n.w);
    obuf_init(&n.scratch);
    arena_init(&n.a);
    int rc = native_setup(&n, o->bootstrap, o->timeout_ms) < 0 ? -1 : native_read(&n);
    *res = n.res;
    native_free(&n);
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
