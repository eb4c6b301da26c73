/* bench_memory.c: `shopstream bench memory`: the resident memory of a
 * private broker idle, and loaded with many partitions and connections, as
 * one line of JSON.
 *
 * The broker starts on a free port with an empty data dir; after a second
 * its VmRSS is the idle figure.  Then a topic of N partitions is created
 * and every partition gets one record (so each has its segment file and
 * indexes open), through librdkafka, whose handles are closed again.  Then
 * C connections of shopstream's own client (client/kconn.h) each ask
 * ApiVersions and Metadata and stay open; for a few seconds each of them
 * asks Metadata of the topic again every 200 ms, all at once (pipelined
 * over the connections), while the broker's VmRSS is sampled every 50 ms.
 * The largest sample is the loaded figure:
 *   {"bench":"memory","idle_rss_kb":I,"partitions":N,"connections":C,
 *    "loaded_rss_kb":L}
 * The exit code is 0 when both were measured; the targets are judged by
 * whoever reads the line. */
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
#include "protocol/kerr.h"
#include "protocol/kmsg.h"
#include "stream/topics.h"

#define CMD "shopstream bench memory"
#define CLIENT_ID "shopstream-bench-memory"
#define TOPIC "shopstream-bench-memory"
/* How long the loaded broker is watched, and how often each connection
 * asks Metadata meanwhile. */
#define LOADED_US (3 * 1000000LL)
#define ROUND_US (200 * 1000LL)
#define SAMPLE_US (50 * 1000LL)

static const char usage_text[] =
    "usage: shopstream bench memory [--partitions N] [--connections C] [-X k=v]...\n"
    "\n"
    "Resident memory (VmRSS) of a private broker, idle and with N partitions that\n"
    "hold a record each and C open client connections asking Metadata, as one line\n"
    "of JSON.\n"
    "\n"
    "  --partitions N   partitions of the topic created (default 1000)\n"
    "  --connections C  client connections kept open (default 100)\n"
    "  -X k=v           librdkafka settings of the client that creates and fills\n"
    "                   the topic\n";

/* One kept-open connection. */
struct mconn {
    struct kconn c;
    char err[256];
    int32_t corr; /* the Metadata request in flight */
};

/* The loaded phase: the connections and the request they all send. */
struct load {
    struct mconn *conns; /* owned */
    int n;
    int16_t meta_v;
    struct obuf w;        /* one request frame, rebuilt per connection */
    struct kconn_frame f; /* one response buffer, shared: answers are read one at a time */
    struct arena a;
    long max_rss_kb;
    pid_t pid;
};

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct client_opts *o, long long *partitions, long long *connections)
{
    const char *v;
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
        if ((t = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--partitions", v, 1, 100000, partitions) < 0)
                return 2;
        } else if ((t = client_opt_value(CMD, "--connections", argc, argv, &i, &v)) != 0) {
            if (t < 0 || client_parse_int(CMD, "--connections", v, 1, 10000, connections) < 0)
                return 2;
        } else {
            fprintf(stderr, "%s: unknown option '%s'; see `%s --help`.\n", CMD, argv[i], CMD);
            return 2;
        }
    }
    if (o->bootstrap) {
        /* the figure is another process's memory: it must be ours to read */
        fprintf(stderr, "%s: measures a private broker; --bootstrap cannot be given.\n", CMD);
        return 2;
    }
    return -1;
}

/* ---- the topic ---------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    long long *failed = opaque;
    (void)rk;
    if (m->err && (*failed)++ == 0)
        fprintf(stderr, "%s: delivery failed: %s.\n", CMD, rd_kafka_err2str(m->err));
}

/* One small record into every partition, acknowledged, by a librdkafka
 * producer as real clients write (it sends each partition its own Produce
 * request, pipelined), so the broker's heap has served such a burst before
 * the connections arrive. */
static int write_each(const struct client_opts *o, int nparts)
{
    const char *defaults[] = {"acks", "1", "linger.ms", "5", NULL};
    long long failed = 0;
    rd_kafka_conf_t *conf = client_conf_new(o, CMD, RD_KAFKA_PRODUCER, defaults);
    rd_kafka_t *rk;
    if (!conf)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    if (!(rk = client_handle_new(CMD, RD_KAFKA_PRODUCER, conf)))
        return -1;
    int rc = 0;
    for (int p = 0; p < nparts && rc == 0; p++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(p),
                                                  RD_KAFKA_V_VALUE((void *)"x", 1),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "%s: producing to %s [%d]: %s.\n", CMD, TOPIC, p, rd_kafka_err2str(e));
            rc = -1;
        }
    }
    if (rc == 0 && rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s: %d records were not acknowledged in 60 s.\n", CMD, rd_kafka_outq_len(rk));
        rc = -1;
    }
    rd_kafka_destroy(rk);
    return rc == 0 && failed == 0 ? 0 : -1;
}

/* Creates the topic and writes a record into each partition. */
static int fill_topic(const struct client_opts *o, int nparts)
{
    char err[512];
    rd_kafka_t *admin = client_admin_new(o, CMD);
    if (!admin)
        return -1;
    struct stream_topic_spec spec = {TOPIC, nparts, -1, 0};
    int rc = stream_topics_create(admin, &spec, 1, o->timeout_ms, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "%s: creating topic %s with %d partitions: %s.\n", CMD, TOPIC, nparts, err);
    rd_kafka_destroy(admin);
    return rc < 0 ? -1 : write_each(o, nparts);
}

/* ---- the connections ---------------------------------------------------- */

static void sample(struct load *l)
{
    long kb = bench_rss_kb(l->pid);
    if (kb > l->max_rss_kb)
        l->max_rss_kb = kb;
}

/* Sends Metadata of the topic on one connection. */
static int send_metadata(struct load *l, struct mconn *m)
{
    struct MetadataRequest_MetadataRequestTopic t;
    MetadataRequest_MetadataRequestTopic_init(&t);
    t.Name = kstr_c(TOPIC);
    struct MetadataRequest req;
    MetadataRequest_init(&req);
    req.Topics.count = 1;
    req.Topics.items = &t;
    req.AllowAutoTopicCreation = false;
    m->corr = kconn_begin(&m->c, &l->w, KAPI_METADATA, l->meta_v);
    MetadataRequest_encode(&l->w, l->meta_v, &req);
    if (kconn_send(&m->c, &l->w) < 0) {
        fprintf(stderr, "%s: %s.\n", CMD, m->err);
        return -1;
    }
    return 0;
}

/* Receives one Metadata answer and checks that it describes the topic. */
static int recv_metadata(struct load *l, struct mconn *m)
{
    struct kread r;
    struct MetadataResponse md;
    if (kconn_recv(&m->c, m->corr, &l->f, &r) < 0) {
        fprintf(stderr, "%s: %s.\n", CMD, m->err);
        return -1;
    }
    arena_reset(&l->a);
    if (MetadataResponse_decode(&r, &l->a, l->meta_v, &md) < 0) {
        kconn_malformed(&m->c, &r, KAPI_METADATA);
        fprintf(stderr, "%s: %s.\n", CMD, m->err);
        return -1;
    }
    if (md.Topics.count != 1 || md.Topics.items[0].ErrorCode) {
        fprintf(stderr, "%s: Metadata of %s: the broker reports %s.\n", CMD, TOPIC,
                md.Topics.count == 1 ? kerr_name(md.Topics.items[0].ErrorCode) : "no such topic");
        return -1;
    }
    return 0;
}

/* Opens connection i: connect, ApiVersions, Metadata. */
static int open_one(struct load *l, int i, const char *host, int port, int timeout_ms)
{
    struct mconn *m = &l->conns[i];
    if (kconn_open(&m->c, host, port, timeout_ms, CLIENT_ID, 0, m->err, sizeof m->err) < 0 ||
        kconn_api_versions(&m->c) < 0) {
        fprintf(stderr, "%s: connection %d: %s.\n", CMD, i + 1, m->err);
        return -1;
    }
    int v = kconn_pick_version(&m->c, KAPI_METADATA, 1, 8);
    if (v < 0) {
        fprintf(stderr, "%s: %s.\n", CMD, m->err);
        return -1;
    }
    l->meta_v = (int16_t)v;
    return send_metadata(l, m) < 0 ? -1 : recv_metadata(l, m);
}

/* One round: every connection asks at once, then every answer is read,
 * so the broker holds C requests together. */
static int round_all(struct load *l)
{
    for (int i = 0; i < l->n; i++)
        if (send_metadata(l, &l->conns[i]) < 0)
            return -1;
    for (int i = 0; i < l->n; i++)
        if (recv_metadata(l, &l->conns[i]) < 0)
            return -1;
    return 0;
}

/* Opens the connections, then keeps them asking while sampling the RSS. */
static int load_and_watch(struct load *l, const struct bench_broker *b, int timeout_ms)
{
    for (int i = 0; i < l->n; i++) {
        if (open_one(l, i, "127.0.0.1", b->port, timeout_ms) < 0)
            return -1;
        sample(l);
    }
    int64_t end = bench_now_us() + LOADED_US, next_round = 0;
    while (bench_now_us() < end) {
        if (bench_now_us() >= next_round) {
            if (round_all(l) < 0)
                return -1;
            next_round = bench_now_us() + ROUND_US;
        }
        sample(l);
        usleep(SAMPLE_US);
    }
    return 0;
}

/* Measures the loaded broker: partitions, then connections. */
static int measure_loaded(const struct client_opts *o, const struct bench_broker *b, int nparts, int nconns,
                          long *rss_kb)
{
    struct load l = {.n = nconns, .pid = b->pid, .max_rss_kb = -1};
    int rc = -1;
    if (fill_topic(o, nparts) < 0)
        return -1;
    obuf_init(&l.w);
    arena_init(&l.a);
    if (!(l.conns = xcalloc((size_t)nconns, sizeof *l.conns)))
        fprintf(stderr, "%s: out of memory.\n", CMD);
    for (int i = 0; l.conns && i < nconns; i++)
        l.conns[i].c.fd = -1; /* not open yet: nothing to close */
    if (l.conns && load_and_watch(&l, b, o->timeout_ms) == 0)
        rc = 0;
    for (int i = 0; l.conns && i < nconns; i++)
        kconn_close(&l.conns[i].c);
    xfree(l.conns);
    kconn_frame_free(&l.f);
    obuf_free(&l.w);
    arena_free(&l.a);
    *rss_kb = l.max_rss_kb;
    return rc;
}

int bench_memory(int argc, char **argv)
{
    struct client_opts o;
    struct bench_broker broker = {.pid = -1};
    long long partitions = 1000, connections = 100;
    long idle = -1, loaded = -1;
    int rc;

    client_opts_init(&o);
    o.bootstrap = NULL;
    if ((rc = parse(argc, argv, &o, &partitions, &connections)) >= 0)
        goto out;
    rc = 1;
    if (bench_broker_start(&broker, NULL, NULL, 1) < 0)
        goto out;
    o.bootstrap = broker.bootstrap;
    sleep(1); /* let start-up work (recovery, threads) settle */
    if ((idle = bench_rss_kb(broker.pid)) < 0) {
        fprintf(stderr, "%s: cannot read the broker's resident memory.\n", CMD);
        goto out;
    }
    if (measure_loaded(&o, &broker, (int)partitions, (int)connections, &loaded) < 0)
        goto out;
    if (loaded < 0) {
        fprintf(stderr, "%s: cannot read the broker's resident memory.\n", CMD);
        goto out;
    }
    printf("{\"bench\":\"memory\",\"idle_rss_kb\":%ld,\"partitions\":%lld,\"connections\":%lld,"
           "\"loaded_rss_kb\":%ld}\n", idle, partitions, connections, loaded);
    rc = 0;
out:
    bench_broker_stop(&broker);
    client_opts_free(&o);
    return rc;
}
