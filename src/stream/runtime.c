/* runtime.c: see runtime.h.  Three librdkafka handles: the group consumer
 * for the inputs, a producer for results and changelogs, and a group-less
 * consumer that reads changelog partitions back when tasks are assigned.
 *
 * The rebalance callback does the work of a rebalance synchronously: on
 * revoke it commits (state, results, offsets) and drops the tasks; on assign
 * it restores every new task's store before the partitions are assigned, so
 * no input record is processed against a half-restored store.  The range
 * assignor with eager rebalancing keeps partition p of every input together. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "stream/runtime.h"
#include "stream/store.h"
#include "stream/topics.h"

#define CHANGELOG_SUFFIX "-store-changelog"
#define FLUSH_TIMEOUT_MS 120000
#define RESTORE_TIMEOUT_MS 120000
#define TICK_MS 1000
#define POLL_BATCH 256
#define STREAM_MERGE_MAX 200000 /* records queued per task for the time-ordered merge */

struct timer {
    int64_t at;
    uint64_t seq;   /* insertion order: equal times fire in the order set */
    char *key;      /* owned */
    size_t klen;
};

/* A min-heap of timers on one (input, partition). */
struct timer_heap {
    struct timer *v;
    size_t n, cap;
};

/* Records of one input partition waiting for the time-ordered merge. */
struct msg_queue {
    rd_kafka_message_t **v;  /* ring of cap entries; owned messages */
    int64_t *recv_ms;        /* when each entry was received (monotonic) */
    size_t head, n, cap;
    int at_eof;              /* the consumer reached the partition's end */
};

struct task {
    int32_t partition;
    struct store store;
    int64_t watermark[STREAM_MAX_INPUTS];
    struct timer_heap timers[STREAM_MAX_INPUTS];
    struct msg_queue queue[STREAM_MAX_INPUTS]; /* ordered inputs only */
    size_t queued;           /* records in all queues */
    void *data;              /* the processor's, from task_open */
};

struct stream_ctx {
    struct stream_app *app;
    struct task *task;
    int input;          /* input of the record being processed, else -1 */
};

struct stream_app {
    struct stream_app_conf conf;
    char changelog[256];
    rd_kafka_t *consumer;          /* owned: the group member */
    rd_kafka_t *producer;          /* owned: results and changelogs */
    rd_kafka_t *restorer;          /* owned: reads changelogs back; NULL if stateless */
    rd_kafka_t *globaler;          /* owned: reads the global input; NULL if none */
    struct task **tasks;           /* indexed by partition; NULL when not assigned */
    int64_t *next_offset;          /* [input * npartitions + p]: to commit, -1 none */
    int npartitions;               /* of every input */
    volatile sig_atomic_t running;
    int fatal;                     /* a failure that forbids committing */
    char fatal_why[1024];
    uint64_t timer_seq;
    int64_t now_ms;                /* monotonic clock, read once per poll */
    rd_kafka_topic_t *input_rkt[STREAM_MAX_INPUTS]; /* handles seen, to skip strcmp */
    struct stream_stats st;
    struct stream_ctx ctx;
};

static void set_fatal(struct stream_app *app, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_fatal(struct stream_app *app, const char *fmt, ...)
{
    if (!app->fatal) {
        va_list ap;
        app->fatal = 1;
        va_start(ap, fmt);
        vsnprintf(app->fatal_why, sizeof app->fatal_why, fmt, ap);
        va_end(ap);
        log_error("stream %s: %s", app->conf.name, app->fatal_why);
    }
    app->running = 0;
}

/* --- timers ---------------------------------------------------------------- */

static int timer_less(const struct timer *a, const struct timer *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(struct timer_heap *h, struct timer t)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        struct timer *nv = xrealloc(h->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        h->v = nv;
        h->cap = ncap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!timer_less(&t, &h->v[up]))
            break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = t;
    return 0;
}

static struct timer heap_pop(struct timer_heap *h)
{
    struct timer top = h->v[0], last = h->v[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && timer_less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!timer_less(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

static void heap_free(struct timer_heap *h)
{
    for (size_t k = 0; k < h->n; k++)
        xfree(h->v[k].key);
    xfree(h->v);
    memset(h, 0, sizeof *h);
}

/* --- tasks ----------------------------------------------------------------- */

static struct task *task_new(int32_t p)
{
    struct task *t = xcalloc(1, sizeof *t);

    if (!t)
        return NULL;
    t->partition = p;
    store_init(&t->store);
    for (int i = 0; i < STREAM_MAX_INPUTS; i++)
        t->watermark[i] = INT64_MIN;
    return t;
}

static void task_free(struct task *t)
{
    if (!t)
        return;
    store_free(&t->store);
    for (int i = 0; i < STREAM_MAX_INPUTS; i++) {
        struct msg_queue *q = &t->queue[i];
        heap_free(&t->timers[i]);
        /* Records not processed yet: after the committed offsets, so the
         * partition's next owner reads them again. */
        for (size_t k = 0; k < q->n; k++)
            rd_kafka_message_destroy(q->v[(q->head + k) % q->cap]);
        xfree(q->v);
        xfree(q->recv_ms);
    }
    xfree(t);
}

static int queue_push(struct msg_queue *q, rd_kafka_message_t *m, int64_t now)
{
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 256;
        rd_kafka_message_t **nv = xmalloc(ncap * sizeof *nv);
        int64_t *nt = xmalloc(ncap * sizeof *nt);
        if (!nv || !nt) {
            xfree(nv);
            xfree(nt);
            return -1;
        }
        for (size_t k = 0; k < q->n; k++) {
            nv[k] = q->v[(q->head + k) % q->cap];
            nt[k] = q->recv_ms[(q->head + k) % q->cap];
        }
        xfree(q->v);
        xfree(q->recv_ms);
        q->v = nv;
        q->recv_ms = nt;
        q->cap = ncap;
        q->head = 0;
    }
    q->v[(q->head + q->n) % q->cap] = m;
    q->recv_ms[(q->head + q->n) % q->cap] = now;
    q->n++;
    return 0;
}

static struct stream_ctx *ctx_for(struct stream_app *app, struct task *t)
{
    app->ctx.app = app;
    app->ctx.task = t;
    return &app->ctx;
}

/* --- producing ------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct stream_app *app = opaque;

    (void)rk;
    if (m->err)
        set_fatal(app, "a record to %s was not delivered: %s", rd_kafka_topic_name(m->rkt),
                  rd_kafka_err2str(m->err));
}

static int produce(struct stream_app *app, const char *topic, int32_t partition, const void *key,
                   size_t klen, const void *val, size_t vlen, int64_t ts)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(app->producer, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(partition >= 0 ? partition
                                                                    : RD_KAFKA_PARTITION_UA),
                                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(app->producer, 10);
    }
    if (err) {
        set_fatal(app, "cannot produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

struct changelog_arg {
    struct stream_app *app;
    int32_t partition;
};

static int write_changelog(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct changelog_arg *a = arg;

    a->app->st.changelog++;
    return produce(a->app, a->app->changelog, a->partition, key, klen, val, vlen,
                   clock_wall_ms());
}

/* Writes dirty state, waits for every produced record to be acknowledged,
 * then commits the stored offsets.  Returns 0, or -1 when something was not
 * delivered (fatal: the offsets stay uncommitted). */
static int commit_all(struct stream_app *app)
{
    rd_kafka_resp_err_t err;

    if (app->fatal)
        return -1;
    for (int p = 0; p < app->npartitions; p++) {
        struct task *t = app->tasks ? app->tasks[p] : NULL;
        if (!t)
            continue;
        if (app->conf.tick && app->conf.tick(ctx_for(app, t)) < 0) {
            set_fatal(app, "the processor failed");
            return -1;
        }
        struct changelog_arg a = {app, p};
        if (store_flush_dirty(&t->store, write_changelog, &a) < 0)
            return -1;
    }
    if (rd_kafka_flush(app->producer, FLUSH_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_outq_len(app->producer) > 0) {
        set_fatal(app, "results were not acknowledged in time");
        return -1;
    }
    if (app->fatal)
        return -1;
    rd_kafka_topic_partition_list_t *offs =
        rd_kafka_topic_partition_list_new(app->conf.ninputs * app->npartitions);
    for (int i = 0; i < app->conf.ninputs; i++)
        for (int p = 0; p < app->npartitions; p++) {
            int64_t *o = &app->next_offset[i * app->npartitions + p];
            if (*o >= 0 && app->tasks[p])
                rd_kafka_topic_partition_list_add(offs, app->conf.inputs[i], p)->offset = *o;
            *o = -1;
        }
    err = offs->cnt ? rd_kafka_commit(app->consumer, offs, 0) : RD_KAFKA_RESP_ERR__NO_OFFSET;
    rd_kafka_topic_partition_list_destroy(offs);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        /* Not fatal: the records after the last commit are processed again,
         * which processors tolerate. */
        log_warn("stream %s: commit failed: %s", app->conf.name, rd_kafka_err2str(err));
        return 0;
    }
    if (!err)
        app->st.commits++;
    return 0;
}

/* --- restoring ------------------------------------------------------------- */

struct restored_arg {
    struct stream_app *app;
    struct stream_ctx *ctx;
};

static void call_restored(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct restored_arg *a = arg;

    a->app->conf.restored(a->ctx, key, klen, val, vlen);
}

/* Reads changelog partition t->partition from its start to its end into
 * t's store.  Returns 0 or -1 (fatal). */
static int restore_task(struct stream_app *app, struct task *t)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *l;
    int64_t deadline = clock_mono_ms() + RESTORE_TIMEOUT_MS;
    int done = 0;

    /* a leader change (a broker of the cluster failing) is retried until
     * the restore deadline, as librdkafka retries produce and fetch */
    for (;;) {
        err = rd_kafka_query_watermark_offsets(app->restorer, app->changelog, t->partition, &lo, &hi,
                                               30000);
        int retriable = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                         err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                         err == RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH ||
                         err == RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH ||
                         err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        if (!retriable || clock_mono_ms() > deadline)
            break;
        log_warn("stream %s: reading the end of %s-%d: %s; retrying", app->conf.name, app->changelog,
                 t->partition, rd_kafka_err2str(err));
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (err) {
        set_fatal(app, "cannot read the end of the changelog %s: %s", app->changelog,
                  rd_kafka_err2str(err));
        return -1;
    }
    if (hi > lo) {
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, app->changelog, t->partition)->offset = lo;
        err = rd_kafka_assign(app->restorer, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
            set_fatal(app, "cannot read the changelog %s: %s", app->changelog,
                      rd_kafka_err2str(err));
            return -1;
        }
        while (!done) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(app->restorer, 200);
            if (!m) {
                if (clock_mono_ms() > deadline) {
                    set_fatal(app, "restoring %s timed out", app->changelog);
                    break;
                }
                continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done = 1;
            } else if (m->err) {
                log_warn("stream %s: restoring: %s", app->conf.name, rd_kafka_message_errstr(m));
            } else {
                int rc = 0;
                if (m->payload)
                    rc = store_load(&t->store, m->key, m->key_len, m->payload, m->len);
                else
                    store_unload(&t->store, m->key, m->key_len);
                if (rc < 0)
                    set_fatal(app, "out of memory restoring %s", app->changelog);
                app->st.restored++;
                if (m->offset + 1 >= hi)
                    done = 1;
            }
            rd_kafka_message_destroy(m);
            if (app->fatal)
                break;
        }
        rd_kafka_assign(app->restorer, NULL);
        if (app->fatal)
            return -1;
    }
    if (app->conf.restored) {
        struct restored_arg a = {app, ctx_for(app, t)};
        store_foreach(&t->store, call_restored, &a);
    }
    log_info("stream %s: task %d restored: %zu keys from offsets %" PRId64 "..%" PRId64,
             app->conf.name, t->partition, t->store.live, lo, hi);
    return 0;
}

/* --- rebalancing ----------------------------------------------------------- */

static void drop_tasks(struct stream_app *app)
{
    /* Offsets of records of dropped tasks are not committed by this
     * instance any more (commit_all ran before, when it could). */
    for (int k = 0; k < app->conf.ninputs * app->npartitions; k++)
        app->next_offset[k] = -1;
    for (int p = 0; p < app->npartitions; p++) {
        if (app->tasks[p] && app->tasks[p]->data && app->conf.task_close)
            app->conf.task_close(app->tasks[p]->data);
        task_free(app->tasks[p]);
        app->tasks[p] = NULL;
    }
    app->st.tasks = 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct stream_app *app = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int k = 0; k < parts->cnt && !app->fatal; k++) {
            int32_t p = parts->elems[k].partition;
            if (p < 0 || p >= app->npartitions) {
                set_fatal(app, "assigned partition %d of %s is beyond the inputs' count", p,
                          parts->elems[k].topic);
                break;
            }
            if (app->tasks[p])
                continue;
            if (!(app->tasks[p] = task_new(p))) {
                set_fatal(app, "out of memory");
                break;
            }
            app->st.tasks++;
            if (app->conf.task_open &&
                !(app->tasks[p]->data = app->conf.task_open(ctx_for(app, app->tasks[p])))) {
                set_fatal(app, "out of memory opening task %d", p);
                break;
            }
            if (app->conf.stateful && restore_task(app, app->tasks[p]) < 0)
                break;
        }
        /* Assign even after a failure, so that close() can leave cleanly. */
        rd_kafka_assign(rk, parts);
    } else {
        commit_all(app);
        drop_tasks(app);
        rd_kafka_assign(rk, NULL);
    }
}

/* --- public ---------------------------------------------------------------- */

struct stream_app *stream_app_new(const struct stream_app_conf *conf,
                                  rd_kafka_conf_t *consumer_conf,
                                  rd_kafka_conf_t *producer_conf, char *errstr, size_t errsz)
{
    struct stream_app *app = xcalloc(1, sizeof *app);
    rd_kafka_conf_t *restore_conf = NULL, *global_conf = NULL;
    char e[512];

    if (!app) {
        snprintf(errstr, errsz, "out of memory");
        goto err;
    }
    app->conf = *conf;
    if (!app->conf.commit_interval_ms)
        app->conf.commit_interval_ms = 1000;
    if (app->conf.merge_wait_ms <= 0)
        app->conf.merge_wait_ms = STREAM_DEFAULT_MERGE_WAIT_MS;
    if (conf->ninputs < 1 || conf->ninputs > STREAM_MAX_INPUTS || !conf->process) {
        snprintf(errstr, errsz, "a processor needs 1 to %d inputs and a process callback",
                 STREAM_MAX_INPUTS);
        goto err;
    }
    snprintf(app->changelog, sizeof app->changelog, "%s%s", conf->name, CHANGELOG_SUFFIX);
    if (conf->stateful)
        restore_conf = rd_kafka_conf_dup(consumer_conf);
    if (conf->global_input)
        global_conf = rd_kafka_conf_dup(consumer_conf);

    /* What the runtime's guarantees rest on; the user's -X cannot undo it. */
    if (rd_kafka_conf_set(consumer_conf, "group.id", conf->name, e, sizeof e) ||
        rd_kafka_conf_set(consumer_conf, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(consumer_conf, "enable.auto.offset.store", "false", e, sizeof e) ||
        rd_kafka_conf_set(consumer_conf, "partition.assignment.strategy", "range", e, sizeof e) ||
        rd_kafka_conf_set(consumer_conf, "enable.partition.eof", "true", e, sizeof e)) {
        snprintf(errstr, errsz, "consumer settings: %s", e);
        goto err;
    }
    rd_kafka_conf_set_rebalance_cb(consumer_conf, on_rebalance);
    rd_kafka_conf_set_opaque(consumer_conf, app);
    if (!(app->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, consumer_conf, e, sizeof e))) {
        snprintf(errstr, errsz, "consumer: %s", e);
        consumer_conf = NULL;
        goto err;
    }
    consumer_conf = NULL;
    rd_kafka_poll_set_consumer(app->consumer);

    if (rd_kafka_conf_set(producer_conf, "enable.idempotence", "true", e, sizeof e) ||
        rd_kafka_conf_set(producer_conf, "acks", "all", e, sizeof e)) {
        snprintf(errstr, errsz, "producer settings: %s", e);
        goto err;
    }
    rd_kafka_conf_set_dr_msg_cb(producer_conf, on_delivery);
    rd_kafka_conf_set_opaque(producer_conf, app);
    if (!(app->producer = rd_kafka_new(RD_KAFKA_PRODUCER, producer_conf, e, sizeof e))) {
        snprintf(errstr, errsz, "producer: %s", e);
        producer_conf = NULL;
        goto err;
    }
    producer_conf = NULL;

    if (restore_conf) {
        char gid[300];
        snprintf(gid, sizeof gid, "%s-restore", conf->name);
        if (rd_kafka_conf_set(restore_conf, "group.id", gid, e, sizeof e) ||
            rd_kafka_conf_set(restore_conf, "enable.auto.commit", "false", e, sizeof e) ||
            rd_kafka_conf_set(restore_conf, "enable.partition.eof", "true", e, sizeof e)) {
            snprintf(errstr, errsz, "restore consumer settings: %s", e);
            goto err;
        }
        if (!(app->restorer = rd_kafka_new(RD_KAFKA_CONSUMER, restore_conf, e, sizeof e))) {
            snprintf(errstr, errsz, "restore consumer: %s", e);
            restore_conf = NULL;
            goto err;
        }
        restore_conf = NULL;
        rd_kafka_poll_set_consumer(app->restorer);
    }
    if (global_conf) {
        char gid[300];
        snprintf(gid, sizeof gid, "%s-global", conf->name);
        if (rd_kafka_conf_set(global_conf, "group.id", gid, e, sizeof e) ||
            rd_kafka_conf_set(global_conf, "enable.auto.commit", "false", e, sizeof e) ||
            rd_kafka_conf_set(global_conf, "enable.partition.eof", "true", e, sizeof e)) {
            snprintf(errstr, errsz, "global consumer settings: %s", e);
            goto err;
        }
        if (!(app->globaler = rd_kafka_new(RD_KAFKA_CONSUMER, global_conf, e, sizeof e))) {
            snprintf(errstr, errsz, "global consumer: %s", e);
            global_conf = NULL;
            goto err;
        }
        global_conf = NULL;
        rd_kafka_poll_set_consumer(app->globaler);
    }
    app->ctx.input = -1;
    app->running = 1;
    return app;
err:
    if (consumer_conf)
        rd_kafka_conf_destroy(consumer_conf);
    if (producer_conf)
        rd_kafka_conf_destroy(producer_conf);
    if (restore_conf)
        rd_kafka_conf_destroy(restore_conf);
    if (global_conf)
        rd_kafka_conf_destroy(global_conf);
    stream_app_destroy(app);
    return NULL;
}

rd_kafka_t *stream_app_producer(struct stream_app *app)
{
    return app->producer;
}

/* Fires the timers of (input, t) that the watermark has passed. */
static int fire_timers(struct stream_app *app, struct task *t, int input)
{
    struct timer_heap *h = &t->timers[input];

    while (h->n && h->v[0].at < t->watermark[input] && !app->fatal) {
        struct timer tm = heap_pop(h);
        int rc = app->conf.timer ? app->conf.timer(ctx_for(app, t), input, tm.key, tm.klen, tm.at)
                                 : 0;
        xfree(tm.key);
        if (rc < 0) {
            set_fatal(app, "the processor failed in a timer");
            return -1;
        }
    }
    return 0;
}

static int input_index(struct stream_app *app, const char *topic)
{
    for (int i = 0; i < app->conf.ninputs; i++)
        if (!strcmp(app->conf.inputs[i], topic))
            return i;
    return -1;
}

/* input_index by topic handle: librdkafka keeps one handle per topic, so
 * after the first record of each input a pointer comparison does. */
static int input_of(struct stream_app *app, rd_kafka_topic_t *rkt)
{
    int i;

    for (i = 0; i < app->conf.ninputs; i++)
        if (app->input_rkt[i] == rkt)
            return i;
    if ((i = input_index(app, rd_kafka_topic_name(rkt))) >= 0)
        app->input_rkt[i] = rkt;
    return i;
}

static void handle_message(struct stream_app *app, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int input = input_of(app, m->rkt);
    struct task *t;
    struct stream_record r;

    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("stream %s: %s [%d]: %s", app->conf.name, topic, m->partition,
                     rd_kafka_message_errstr(m));
        return;
    }
    if (input < 0 || m->partition < 0 || m->partition >= app->npartitions ||
        !(t = app->tasks[m->partition])) {
        log_warn("stream %s: record of %s [%d] without a task; skipped", app->conf.name, topic,
                 m->partition);
        return;
    }
    r.input = input;
    r.topic = topic;
    r.partition = m->partition;
    r.offset = m->offset;
    r.ts = rd_kafka_message_timestamp(m, NULL);
    r.key = m->key;
    r.klen = m->key_len;
    r.value = m->payload;
    r.vlen = m->len;
    app->ctx.input = input;
    if (app->conf.process(ctx_for(app, t), &r) < 0) {
        set_fatal(app, "the processor failed on %s [%d] offset %" PRId64, topic, m->partition,
                  m->offset);
        return;
    }
    app->ctx.input = -1;
    if (fire_timers(app, t, input) < 0)
        return;
    /* Only this thread writes it; stream_app_records reads it elsewhere. */
    __atomic_store_n(&app->st.records, app->st.records + 1, __ATOMIC_RELAXED);
    /* The next offset to commit; handed to the consumer only at commit time
     * (storing per record took a lock per record). */
    app->next_offset[input * app->npartitions + m->partition] = m->offset + 1;
}

/* Time-ordered merge: processes queued records of task t, always the one
 * with the smallest timestamp among the inputs' heads (ties: input order,
 * then offset), as long as every input either has a record queued or is
 * known to be at its end.  So a backlog is processed in event-time order
 * whatever order the fetches returned it in, and results do not depend on
 * which input the client happened to fetch first.  Past STREAM_MERGE_MAX
 * queued records the head is taken anyway, to bound memory. */
static void drain(struct stream_app *app, struct task *t)
{
    int64_t now = app->now_ms;

    while (!app->fatal && app->tasks[t->partition] == t) {
        int best = -1;
        int64_t best_ts = 0;
        int blocked = 0, idle = 0;

        for (int i = 0; i < app->conf.ordered_inputs; i++) {
            struct msg_queue *q = &t->queue[i];
            if (!q->n) {
                if (!q->at_eof)
                    blocked = 1;
                else
                    idle = 1;
                continue;
            }
            int64_t ts = rd_kafka_message_timestamp(q->v[q->head], NULL);
            if (best < 0 || ts < best_ts) {
                best = i;
                best_ts = ts;
            }
        }
        if (best < 0 || (blocked && t->queued < STREAM_MERGE_MAX))
            return;
        /* An input at its end may be about to get records written at the
         * same time as the ones queued (the fetches of different topics
         * come back at different moments): wait merge_wait_ms after a
         * record was received before letting it pass an empty input. */
        if (idle && t->queued < STREAM_MERGE_MAX &&
            now - t->queue[best].recv_ms[t->queue[best].head] < app->conf.merge_wait_ms)
            return;
        struct msg_queue *q = &t->queue[best];
        rd_kafka_message_t *m = q->v[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        t->queued--;
        handle_message(app, m);
        rd_kafka_message_destroy(m);
    }
}

/* Routes one message from the consumer: straight to processing, or through
 * its task's merge queues when the application orders inputs by time. */
static void dispatch(struct stream_app *app, rd_kafka_message_t *m)
{
    int input = m->rkt ? input_of(app, m->rkt) : -1;
    struct task *t = (input >= 0 && m->partition >= 0 && m->partition < app->npartitions)
                         ? app->tasks[m->partition]
                         : NULL;

    if (input >= app->conf.ordered_inputs || !t || input < 0) {
        handle_message(app, m);
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        t->queue[input].at_eof = 1;
        rd_kafka_message_destroy(m);
    } else if (m->err) {
        handle_message(app, m);
        rd_kafka_message_destroy(m);
        return;
    } else {
        t->queue[input].at_eof = 0;
        if (queue_push(&t->queue[input], m, app->now_ms) < 0) {
            set_fatal(app, "out of memory");
            rd_kafka_message_destroy(m);
            return;
        }
        t->queued++;
    }
    drain(app, t);
}

/* Serves up to max records of the global input without waiting.  Returns
 * the number of partitions that reported their end. */
static int serve_global(struct stream_app *app, int max, int timeout_ms)
{
    int eofs = 0;

    for (int k = 0; k < max && !app->fatal; k++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(app->globaler, k ? 0 : timeout_ms);
        if (!m)
            break;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            log_warn("stream %s: %s: %s", app->conf.name, app->conf.global_input,
                     rd_kafka_message_errstr(m));
        } else {
            struct stream_record r = {-1, app->conf.global_input, m->partition, m->offset,
                                      rd_kafka_message_timestamp(m, NULL), m->key, m->key_len,
                                      m->payload, m->len};
            if (app->conf.global(app->conf.opaque, &r) < 0)
                set_fatal(app, "the processor failed on %s", app->conf.global_input);
        }
        rd_kafka_message_destroy(m);
    }
    return eofs;
}

/* Assigns every partition of the global input from its start and reads it
 * to its end, so that a processor starts from a complete picture. */
static int start_global(struct stream_app *app, char *errstr, size_t errsz)
{
    char e[512];
    int n = stream_topic_partitions_settled(app->producer, app->conf.global_input, 30000, e, sizeof e);
    rd_kafka_topic_partition_list_t *l;
    int eofs = 0;
    int64_t deadline = clock_mono_ms() + RESTORE_TIMEOUT_MS;

    if (n <= 0) {
        snprintf(errstr, errsz, "global input %s: %s", app->conf.global_input,
                 n < 0 ? e : "no such topic");
        return -1;
    }
    l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, app->conf.global_input, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(app->globaler, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (eofs < n && !app->fatal && app->running) {
        if (clock_mono_ms() > deadline) {
            snprintf(errstr, errsz, "reading %s to its end timed out", app->conf.global_input);
            return -1;
        }
        eofs += serve_global(app, 10000, 200);
    }
    log_info("stream %s: read %s to its end", app->conf.name, app->conf.global_input);
    return app->fatal ? -1 : 0;
}

int stream_app_run(struct stream_app *app, char *errstr, size_t errsz)
{
    rd_kafka_topic_partition_list_t *sub;
    char e[512];
    int64_t last_commit = clock_mono_ms(), last_tick = last_commit, last_drain = last_commit;
    rd_kafka_resp_err_t err;

    /* Every input must have the same partition count: task p is partition p
     * of each of them. */
    for (int i = 0; i < app->conf.ninputs; i++) {
        int n = stream_topic_partitions_settled(app->producer, app->conf.inputs[i], 30000, e, sizeof e);
        if (n < 0) {
            snprintf(errstr, errsz, "%s", e);
            return -1;
        }
        if (n == 0) {
            snprintf(errstr, errsz, "input topic %s does not exist", app->conf.inputs[i]);
            return -1;
        }
        if (i > 0 && n != app->npartitions) {
            snprintf(errstr, errsz,
                     "input topics %s (%d partitions) and %s (%d) must have the same partition "
                     "count",
                     app->conf.inputs[0], app->npartitions, app->conf.inputs[i], n);
            return -1;
        }
        app->npartitions = n;
    }
    if (!(app->next_offset = xmalloc((size_t)(app->conf.ninputs * app->npartitions) *
                                     sizeof *app->next_offset))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    for (int k = 0; k < app->conf.ninputs * app->npartitions; k++)
        app->next_offset[k] = -1;
    if (!(app->tasks = xcalloc((size_t)app->npartitions, sizeof *app->tasks))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    if (app->conf.stateful) {
        struct stream_topic_spec spec = {app->changelog, app->npartitions, -1, 1};
        if (stream_topics_create(app->producer, &spec, 1, 30000, e, sizeof e) < 0) {
            snprintf(errstr, errsz, "%s", e);
            return -1;
        }
        int n = stream_topic_partitions_settled(app->producer, app->changelog, 30000, e, sizeof e);
        if (n != app->npartitions) {
            snprintf(errstr, errsz, "changelog %s has %d partitions, the inputs %d",
                     app->changelog, n, app->npartitions);
            return -1;
        }
    }
    if (app->globaler && start_global(app, errstr, errsz) < 0)
        return -1;
    sub = rd_kafka_topic_partition_list_new(app->conf.ninputs);
    for (int i = 0; i < app->conf.ninputs; i++)
        rd_kafka_topic_partition_list_add(sub, app->conf.inputs[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(app->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        snprintf(errstr, errsz, "cannot subscribe: %s", rd_kafka_err2str(err));
        return -1;
    }

    app->now_ms = clock_mono_ms();
    while (app->running && !app->fatal) {
        /* Records already fetched come back without waiting; the clock is
         * read once per POLL_BATCH of them (clock_gettime showed in
         * profiles). */
        /* One record per call: a rebalance is served inside the call, and
         * nothing fetched before it can come after it (a batch call could
         * hand back records of a revoked partition next to newer ones).
         * Records already fetched come back without waiting; the clock is
         * read once per POLL_BATCH of them. */
        int got = 0;
        for (int k = 0; k < POLL_BATCH && app->running && !app->fatal; k++) {
            /* With a global input the wait happens there instead, so that
             * its backlog is not read one batch per idle 100 ms. */
            rd_kafka_message_t *m =
                rd_kafka_consumer_poll(app->consumer, k || app->globaler ? 0 : 100);
            if (!m)
                break;
            if (!got++)
                app->now_ms = clock_mono_ms();
            dispatch(app, m);
        }
        if (app->globaler)
            serve_global(app, got ? POLL_BATCH : 16 * POLL_BATCH, got ? 0 : 100);
        rd_kafka_poll(app->producer, 0);
        int64_t now = app->now_ms = clock_mono_ms();
        /* Records held back by merge_wait_ms move on without a new poll. */
        if (app->conf.ordered_inputs && now - last_drain >= 50) {
            last_drain = now;
            for (int p = 0; p < app->npartitions && !app->fatal; p++)
                if (app->tasks[p] && app->tasks[p]->queued)
                    drain(app, app->tasks[p]);
        }
        if (app->conf.tick && now - last_tick >= TICK_MS) {
            last_tick = now;
            for (int p = 0; p < app->npartitions && !app->fatal; p++)
                if (app->tasks[p] && app->conf.tick(ctx_for(app, app->tasks[p])) < 0)
                    set_fatal(app, "the processor failed in tick");
        }
        if (now - last_commit >= app->conf.commit_interval_ms) {
            last_commit = now;
            commit_all(app);
        }
    }
    if (!app->fatal)
        commit_all(app);
    /* Leaving the group revokes (and commits) what is still assigned. */
    rd_kafka_consumer_close(app->consumer);
    if (app->fatal) {
        snprintf(errstr, errsz, "%s", app->fatal_why);
        return -1;
    }
    return 0;
}

void stream_app_stop(struct stream_app *app)
{
    app->running = 0;
}

long long stream_app_records(const struct stream_app *app)
{
    return __atomic_load_n(&app->st.records, __ATOMIC_RELAXED);
}

void stream_app_stats(const struct stream_app *app, struct stream_stats *out)
{
    *out = app->st;
}

void stream_app_destroy(struct stream_app *app)
{
    if (!app)
        return;
    if (app->tasks) {
        drop_tasks(app);
        xfree(app->tasks);
    }
    xfree(app->next_offset);
    if (app->consumer)
        rd_kafka_destroy(app->consumer);
    if (app->restorer)
        rd_kafka_destroy(app->restorer);
    if (app->globaler) {
        rd_kafka_consumer_close(app->globaler);
        rd_kafka_destroy(app->globaler);
    }
    if (app->producer) {
        rd_kafka_flush(app->producer, 10000);
        rd_kafka_destroy(app->producer);
    }
    xfree(app);
}

/* --- callbacks' API -------------------------------------------------------- */

void *stream_opaque(struct stream_ctx *c)
{
    return c->app->conf.opaque;
}

int32_t stream_task(struct stream_ctx *c)
{
    return c->task->partition;
}

int stream_partitions(struct stream_ctx *c)
{
    return c->app->npartitions;
}

int stream_stopping(struct stream_ctx *c)
{
    return !c->app->running;
}

int stream_assigned(struct stream_ctx *c, int32_t partition)
{
    return partition >= 0 && partition < c->app->npartitions && c->app->tasks[partition];
}

void *stream_task_data(struct stream_ctx *c)
{
    return c->task->data;
}

int stream_caught_up(struct stream_ctx *c)
{
    for (int i = 0; i < c->app->conf.ordered_inputs; i++)
        if (c->task->queue[i].n || !c->task->queue[i].at_eof)
            return 0;
    return 1;
}

void stream_event_time(struct stream_ctx *c, int64_t ts)
{
    if (c->input >= 0 && ts > c->task->watermark[c->input])
        c->task->watermark[c->input] = ts;
}

int64_t stream_watermark(struct stream_ctx *c, int input)
{
    return input >= 0 && input < STREAM_MAX_INPUTS ? c->task->watermark[input] : INT64_MIN;
}

const void *stream_get(struct stream_ctx *c, const void *key, size_t klen, size_t *vlen)
{
    return store_get(&c->task->store, key, klen, vlen);
}

int stream_put(struct stream_ctx *c, const void *key, size_t klen, const void *val, size_t vlen)
{
    return store_put(&c->task->store, key, klen, val, vlen);
}

int stream_del(struct stream_ctx *c, const void *key, size_t klen)
{
    return store_del(&c->task->store, key, klen);
}

size_t stream_state_keys(struct stream_ctx *c)
{
    return c->task->store.live;
}

int stream_emit(struct stream_ctx *c, const char *topic, int32_t partition, const void *key,
                size_t klen, const void *val, size_t vlen, int64_t ts)
{
    c->app->st.produced++;
    return produce(c->app, topic, partition, key, klen, val, vlen, ts);
}

int stream_timer_at(struct stream_ctx *c, int input, const void *key, size_t klen, int64_t at)
{
    struct timer t = {at, c->app->timer_seq++, NULL, klen};

    if (input < 0 || input >= c->app->conf.ninputs)
        return -1;
    if (!(t.key = xmalloc(klen ? klen : 1)))
        return -1;
    if (klen)
        memcpy(t.key, key, klen);
    if (heap_push(&c->task->timers[input], t) < 0) {
        xfree(t.key);
        return -1;
    }
    return 0;
}
