/* rdkafka_roundtrip: librdkafka round trip against a Kafka-compatible broker.
 *
 * usage: test_rdkafka_roundtrip BOOTSTRAP
 *
 * For each compression codec (none, gzip, snappy, lz4, zstd) it creates a
 * 4-partition topic with rd_kafka_CreateTopics, produces 100,000 keyed records
 * with rd_kafka_producev (explicit CreateTime timestamp, one or two headers),
 * records the partition and offset of every record from its delivery report,
 * then consumes the topic with rd_kafka_assign (explicit partitions from the
 * beginning; a throw-away group.id that never commits) and checks that each partition yields exactly the delivered
 * records, in offset order, with the same key, value, headers and timestamp.
 *
 * Environment: SHOPSTREAM_TEST_CODECS ("none gzip ..."), SHOPSTREAM_TEST_RECORDS
 * (records per codec), SHOPSTREAM_TEST_SKIP_CREATE=1 (do not call CreateTopics;
 * for librdkafka's mock cluster, which auto-creates topics).
 * Exits 0 when every codec passed, 1 otherwise, with a message per mismatch.
 */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PARTITIONS 4
#define MAX_REPORTED 20

static const char *bootstrap;
static long n_records = 100000;
static int64_t base_ts;
static char run_id[64];

/* Per-record delivery state, indexed by sequence number. */
static int32_t *dr_partition;
static int64_t *dr_offset;
static int *dr_err;
static long dr_count;

static long mismatches;

static void fail(const char *codec, const char *fmt, ...) {
    va_list ap;
    mismatches++;
    if (mismatches > MAX_REPORTED) return;
    fprintf(stderr, "  MISMATCH rdkafka/%s: ", codec);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The record with sequence number i.  Timestamps are explicit and not
 * monotonic (a +0..6 s wobble), so negative timestamp deltas inside a batch
 * must survive the round trip. */
static int make_key(char *buf, size_t sz, long i) { return snprintf(buf, sz, "key-%06ld", i); }
static int make_value(char *buf, size_t sz, const char *codec, long i) {
    return snprintf(buf, sz, "rdkafka|%s|%06ld|payload-abcdefghijklmnopqrstuvwxyz", codec, i);
}
static int64_t make_ts(long i) { return base_ts + i + (i % 7) * 1000; }
static int make_hdr_seq(char *buf, size_t sz, long i) { return snprintf(buf, sz, "%ld", i); }
static int has_trace(long i) { return i % 3 == 0; }
static int make_hdr_trace(char *buf, size_t sz, long i) { return snprintf(buf, sz, "t-%06ld", i); }

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    fprintf(stderr, "  librdkafka %d %s: %s\n", level, fac, buf);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    long i = (long)(intptr_t)m->_private;
    if (i < 0 || i >= n_records) return;
    dr_partition[i] = m->partition;
    dr_offset[i] = m->offset;
    dr_err[i] = m->err;
    dr_count++;
}

static rd_kafka_conf_t *base_conf(void) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf: %s\n", err);
        exit(2);
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

static int create_topic(rd_kafka_t *rk, const char *topic) {
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, PARTITIONS, 1, err, sizeof err);
    if (!nt) {
        fprintf(stderr, "NewTopic: %s\n", err);
        return -1;
    }
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 10000, err, sizeof err);
    rd_kafka_AdminOptions_set_request_timeout(opts, 30000, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    int rc = -1;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev) {
        fprintf(stderr, "CreateTopics %s: no result within 60 s\n", topic);
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "CreateTopics %s: %s\n", topic, rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        if (cnt != 1) {
            fprintf(stderr, "CreateTopics %s: %zu topic results\n", topic, cnt);
        } else if (rd_kafka_topic_result_error(tr[0])) {
            fprintf(stderr, "CreateTopics %s: %s: %s\n", topic,
                    rd_kafka_err2name(rd_kafka_topic_result_error(tr[0])),
                    rd_kafka_topic_result_error_string(tr[0]) ? rd_kafka_topic_result_error_string(tr[0]) : "");
        } else {
            rc = 0;
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Waits until metadata shows the topic with PARTITIONS partitions, each with a
 * leader. */
static int wait_topic(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    double deadline = mono_s() + 30;
    int ok = 0;
    while (!ok && mono_s() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt == PARTITIONS) {
            ok = 1;
            for (int p = 0; p < PARTITIONS; p++)
                if (md->topics[0].partitions[p].leader < 0 || md->topics[0].partitions[p].err) ok = 0;
        }
        if (md) rd_kafka_metadata_destroy(md);
        if (!ok) usleep(200 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    if (!ok) fprintf(stderr, "topic %s: metadata does not show %d partitions with leaders\n", topic, PARTITIONS);
    return ok ? 0 : -1;
}

static int produce_all(const char *codec, const char *topic) {
    char err[512];
    rd_kafka_conf_t *conf = base_conf();
    conf_set(conf, "compression.codec", codec);
    conf_set(conf, "linger.ms", "20");
    conf_set(conf, "batch.num.messages", "10000");
    conf_set(conf, "queue.buffering.max.messages", "200000");
    conf_set(conf, "queue.buffering.max.kbytes", "262144");
    conf_set(conf, "message.timeout.ms", "120000");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }

    if (!getenv("SHOPSTREAM_TEST_SKIP_CREATE") || strcmp(getenv("SHOPSTREAM_TEST_SKIP_CREATE"), "1")) {
        if (create_topic(rk, topic)) {
            rd_kafka_destroy(rk);
            return -1;
        }
    }
    if (wait_topic(rk, topic)) {
        rd_kafka_destroy(rk);
        return -1;
    }

    dr_count = 0;
    for (long i = 0; i < n_records; i++) {
        dr_partition[i] = -1;
        dr_offset[i] = -1;
        dr_err[i] = -1;
    }
    int rc = 0;
    for (long i = 0; i < n_records && rc == 0; i++) {
        char key[32], val[128], hseq[32], htrace[32];
        int kl = make_key(key, sizeof key, i);
        int vl = make_value(val, sizeof val, codec, i);
        int sl = make_hdr_seq(hseq, sizeof hseq, i);
        int tl = make_hdr_trace(htrace, sizeof htrace, i);
        for (;;) {
            rd_kafka_resp_err_t e;
            if (has_trace(i))
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(val, (size_t)vl),
                                      RD_KAFKA_V_TIMESTAMP(make_ts(i)), RD_KAFKA_V_HEADER("seq", hseq, sl),
                                      RD_KAFKA_V_HEADER("trace", htrace, tl),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            else
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(val, (size_t)vl),
                                      RD_KAFKA_V_TIMESTAMP(make_ts(i)), RD_KAFKA_V_HEADER("seq", hseq, sl),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (e) {
                fprintf(stderr, "producev #%ld: %s\n", i, rd_kafka_err2str(e));
                rc = -1;
            }
            break;
        }
        if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, 180000);
    if (fe) {
        fprintf(stderr, "flush: %s (%d messages still queued)\n", rd_kafka_err2str(fe), rd_kafka_outq_len(rk));
        rc = -1;
    }
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy(rk);
    if (rc) return rc;

    if (dr_count != n_records) {
        fprintf(stderr, "got %ld delivery reports for %ld records\n", dr_count, n_records);
        return -1;
    }
    long bad = 0;
    for (long i = 0; i < n_records; i++) {
        if (dr_err[i] || dr_partition[i] < 0 || dr_partition[i] >= PARTITIONS || dr_offset[i] < 0) {
            if (++bad <= MAX_REPORTED)
                fprintf(stderr, "delivery of #%ld failed: %s (partition %d offset %" PRId64 ")\n", i,
                        rd_kafka_err2str((rd_kafka_resp_err_t)dr_err[i]), (int)dr_partition[i], dr_offset[i]);
        }
    }
    return bad ? -1 : 0;
}

struct expect {
    long *seq; /* sequence numbers of this partition sorted by offset */
    long cnt;
    long pos; /* next expected index */
    int eof;
};

static int cmp_by_offset(const void *a, const void *b) {
    int64_t oa = dr_offset[*(const long *)a], ob = dr_offset[*(const long *)b];
    return oa < ob ? -1 : oa > ob;
}

static void check_message(const char *codec, struct expect *ex, const rd_kafka_message_t *m) {
    int p = m->partition;
    if (ex->pos >= ex->cnt) {
        fail(codec, "partition %d: extra record at offset %" PRId64 " (all %ld expected records already consumed)", p,
             m->offset, ex->cnt);
        return;
    }
    long i = ex->seq[ex->pos++];
    char key[32], val[128], hseq[32], htrace[32];
    int kl = make_key(key, sizeof key, i);
    int vl = make_value(val, sizeof val, codec, i);
    int sl = make_hdr_seq(hseq, sizeof hseq, i);
    int tl = make_hdr_trace(htrace, sizeof htrace, i);

    if (m->offset != dr_offset[i]) {
        fail(codec, "partition %d index %ld: offset %" PRId64 ", delivery report said %" PRId64 " for #%ld", p,
             ex->pos - 1, m->offset, dr_offset[i], i);
        return;
    }
    if (!m->key || m->key_len != (size_t)kl || memcmp(m->key, key, (size_t)kl)) {
        fail(codec, "partition %d offset %" PRId64 ": key '%.*s', expected '%s'", p, m->offset,
             m->key ? (int)m->key_len : 6, m->key ? (const char *)m->key : "(null)", key);
        return;
    }
    if (!m->payload || m->len != (size_t)vl || memcmp(m->payload, val, (size_t)vl)) {
        fail(codec, "partition %d offset %" PRId64 ": value '%.*s', expected '%s'", p, m->offset,
             m->payload ? (int)m->len : 6, m->payload ? (const char *)m->payload : "(null)", val);
        return;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    if (tstype != RD_KAFKA_TIMESTAMP_CREATE_TIME || ts != make_ts(i))
        fail(codec, "partition %d offset %" PRId64 ": timestamp %" PRId64 " (type %d), expected CreateTime %" PRId64,
             p, m->offset, ts, (int)tstype, make_ts(i));

    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t he = rd_kafka_message_headers(m, &hdrs);
    size_t want_cnt = has_trace(i) ? 2 : 1;
    if (he || !hdrs || rd_kafka_header_cnt(hdrs) != want_cnt) {
        fail(codec, "partition %d offset %" PRId64 ": %zu headers, expected %zu", p, m->offset,
             hdrs ? rd_kafka_header_cnt(hdrs) : 0, want_cnt);
        return;
    }
    const char *names[2] = {"seq", "trace"};
    const char *vals[2] = {hseq, htrace};
    size_t lens[2] = {(size_t)sl, (size_t)tl};
    for (size_t h = 0; h < want_cnt; h++) {
        const char *name;
        const void *hv;
        size_t hl;
        if (rd_kafka_header_get_all(hdrs, h, &name, &hv, &hl) || strcmp(name, names[h]) || !hv || hl != lens[h] ||
            memcmp(hv, vals[h], hl)) {
            fail(codec, "partition %d offset %" PRId64 ": header #%zu differs, expected %s=%s", p, m->offset, h,
                 names[h], vals[h]);
            return;
        }
    }
}

static int consume_all(const char *codec, const char *topic) {
    char err[512];
    struct expect ex[PARTITIONS];
    memset(ex, 0, sizeof ex);
    for (int p = 0; p < PARTITIONS; p++) ex[p].seq = malloc(sizeof(long) * (size_t)n_records);
    for (long i = 0; i < n_records; i++) {
        struct expect *e = &ex[dr_partition[i]];
        e->seq[e->cnt++] = i;
    }
    int rc = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        qsort(ex[p].seq, (size_t)ex[p].cnt, sizeof(long), cmp_by_offset);
        if (ex[p].cnt == 0) {
            fail(codec, "partition %d received no records: keys are not spread over the partitions", p);
            rc = -1;
        }
        for (long j = 1; j < ex[p].cnt; j++) {
            if (dr_offset[ex[p].seq[j]] == dr_offset[ex[p].seq[j - 1]]) {
                fail(codec, "partition %d: records #%ld and #%ld both reported at offset %" PRId64, p,
                     ex[p].seq[j - 1], ex[p].seq[j], dr_offset[ex[p].seq[j]]);
                rc = -1;
            } else if (ex[p].seq[j] < ex[p].seq[j - 1]) {
                fail(codec, "partition %d: produce order not kept: #%ld at offset %" PRId64 " after #%ld", p,
                     ex[p].seq[j], dr_offset[ex[p].seq[j]], ex[p].seq[j - 1]);
                rc = -1;
            }
        }
    }

    /* librdkafka 2.0.2's rd_kafka_assign() needs a group.id (without one it
     * fails with "Local: Unknown group"), so use a fresh group that never
     * commits: the offsets come from the explicit assignment.  The group-less
     * legacy consumer (rd_kafka_consume_start) is what kcat -C exercises. */
    char group[160];
    snprintf(group, sizeof group, "%s-assign", topic);
    rd_kafka_conf_t *conf = base_conf();
    conf_set(conf, "group.id", group);
    conf_set(conf, "enable.partition.eof", "true");
    conf_set(conf, "check.crcs", "true");
    conf_set(conf, "fetch.max.bytes", "52428800");
    conf_set(conf, "max.partition.fetch.bytes", "4194304");
    conf_set(conf, "queued.min.messages", "200000");
    conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", err);
        rc = -1;
        goto out;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(tpl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t ae = rd_kafka_assign(rk, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    if (ae) {
        fprintf(stderr, "assign: %s\n", rd_kafka_err2str(ae));
        rd_kafka_destroy(rk);
        rc = -1;
        goto out;
    }

    double idle_limit = 30, last_progress = mono_s();
    for (;;) {
        int done = 1;
        for (int p = 0; p < PARTITIONS; p++)
            if (!ex[p].eof || ex[p].pos < ex[p].cnt) done = 0;
        if (done) break;
        if (mono_s() - last_progress > idle_limit) {
            for (int p = 0; p < PARTITIONS; p++)
                if (ex[p].pos < ex[p].cnt)
                    fail(codec, "partition %d: consumed %ld of %ld records, nothing more for %.0f s", p, ex[p].pos,
                         ex[p].cnt, idle_limit);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < PARTITIONS) ex[m->partition].eof = 1;
        } else if (m->err) {
            fprintf(stderr, "  consumer error: %s: %s\n", rd_kafka_err2str(m->err),
                    rd_kafka_message_errstr(m));
            if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT && m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                fail(codec, "consumer error %s", rd_kafka_err2name(m->err));
                rc = -1;
            }
        } else if (m->partition < 0 || m->partition >= PARTITIONS) {
            fail(codec, "record from partition %d", (int)m->partition);
            rc = -1;
        } else {
            long before = mismatches;
            ex[m->partition].eof = 0;
            check_message(codec, &ex[m->partition], m);
            if (mismatches != before) rc = -1;
            last_progress = mono_s();
        }
        rd_kafka_message_destroy(m);
        if (rc && mismatches > MAX_REPORTED) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
out:
    for (int p = 0; p < PARTITIONS; p++) free(ex[p].seq);
    if (rc == 0)
        printf("  verified %ld records: per partition %ld %ld %ld %ld\n", n_records, ex[0].cnt, ex[1].cnt,
                ex[2].cnt, ex[3].cnt);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s BOOTSTRAP\n", argv[0]);
        return 2;
    }
    bootstrap = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *e = getenv("SHOPSTREAM_TEST_RECORDS");
    if (e && *e) n_records = strtol(e, NULL, 10);
    if (n_records <= 0) n_records = 100000;
    char codecs[256] = "none gzip snappy lz4 zstd";
    e = getenv("SHOPSTREAM_TEST_CODECS");
    if (e && *e) snprintf(codecs, sizeof codecs, "%s", e);
    snprintf(run_id, sizeof run_id, "%ld-%ld", (long)getpid(), (long)time(NULL));
    /* An hour ago, whole seconds: clearly not the broker's clock. */
    base_ts = (now_ms() - 3600 * 1000) / 1000 * 1000;

    dr_partition = calloc((size_t)n_records, sizeof *dr_partition);
    dr_offset = calloc((size_t)n_records, sizeof *dr_offset);
    dr_err = calloc((size_t)n_records, sizeof *dr_err);
    if (!dr_partition || !dr_offset || !dr_err) return 2;

    char ver[64];
    snprintf(ver, sizeof ver, "%s", rd_kafka_version_str());
    printf("librdkafka %s, bootstrap %s, %ld records per codec\n", ver, bootstrap, n_records);
    int failed = 0;
    char *save = NULL;
    for (char *codec = strtok_r(codecs, " ,", &save); codec; codec = strtok_r(NULL, " ,", &save)) {
        char topic[128];
        snprintf(topic, sizeof topic, "rdkafka-%s-%s", codec, run_id);
        mismatches = 0;
        double t0 = mono_s();
        int rc = produce_all(codec, topic);
        double t1 = mono_s();
        if (rc == 0) rc = consume_all(codec, topic);
        double t2 = mono_s();
        if (rc == 0) {
            printf("ok   rdkafka/%s: topic %s, produce %.1fs, consume+verify %.1fs\n", codec, topic, t1 - t0, t2 - t1);
        } else {
            printf("FAIL rdkafka/%s: topic %s (%ld mismatches)\n", codec, topic, mismatches);
            failed++;
        }
    }
    free(dr_partition);
    free(dr_offset);
    free(dr_err);
    printf("%s\n", failed ? "rdkafka: FAILED" : "rdkafka: all codecs passed");
    return failed ? 1 : 0;
}
