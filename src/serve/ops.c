/* ops.c: the operations console's cluster queries (see ops.h for the
 * contract and spec/api.md for the JSON).  What it asks and how:
 *   brokers, topics, partitions, leaders, replicas, ISR: Metadata for all
 *     topics (asking for one missing topic could make a broker with
 *     auto.create.topics.enable create it);
 *   low/high watermarks: ListOffsets through rd_kafka_offsets_for_times()
 *     with the timestamps -2 (earliest) and -1 (latest), which batches every
 *     partition of a leader into one request, where
 *     rd_kafka_query_watermark_offsets() costs two round trips per
 *     partition;
 *   sizes: DescribeLogDirs of every broker (logdirs.h), cached;
 *   configs: DescribeConfigs; groups: ListConsumerGroups,
 *     DescribeConsumerGroups (librdkafka decodes each member's assignment)
 *     and ListConsumerGroupOffsets;
 *   messages: a consumer that assign()s and commits nothing (its group.id
 *     is never joined), borrowed from a small pool.
 *
 * The group requests run on a handle of their own, because of a bug of
 * librdkafka (2.0.2 and later, upstream issue 4605, fix proposed in pull
 * request 5397): an admin request sent to a group coordinator
 * (DescribeConsumerGroups, ListConsumerGroupOffsets) that times out while
 * the coordinator is unknown or down stays queued, and when the coordinator
 * comes back the handle frees the request's state twice and aborts the
 * process (assertion `eonce->refcnt > 0` in
 * rd_kafka_enq_once_del_source_return).  A long-lived server would die on
 * the first cluster outage.  So these requests never time out inside
 * librdkafka (the longest request timeout it accepts, an hour); ops stops
 * waiting at its own deadline instead and then retires the handle: it is
 * destroyed once its last user is done, which fails what is still queued
 * through the safe path of rd_kafka_destroy, and the next group request
 * makes a new one.
 *
 * As cmd_group.c explains, librdkafka 2.0.2's ListConsumerGroupOffsets
 * without partitions sends an empty topic array below OffsetFetch v6, which
 * a broker answers with nothing, so committed offsets are asked for every
 * partition of every topic in the metadata.
 *
 * Threads: every function runs on its caller's thread (libmicrohttpd's
 * connection threads in serve).  librdkafka handles are thread-safe; each
 * admin request gets its own temporary queue.  size_lock guards the size
 * cache and is held while it is refreshed, so concurrent requests wait for
 * one refresh instead of each sending their own; pool_lock guards the idle
 * consumers. */
#include "serve/ops.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "serve/logdirs.h"
#include "serve/utf8.h"

#define OPS_CMD "shopstream serve"
/* Admin results are waited for this much past the deadline: librdkafka
 * times the request out itself at the deadline and reports it. */
#define OPS_ADMIN_MARGIN_MS 200
/* The longest one consumer poll blocks while browsing. */
#define OPS_POLL_MS 100
/* The group.id of the browsing consumers, which never join it. */
#define OPS_BROWSE_GROUP "shopstream-serve-browser"
/* The request timeout of the group requests, librdkafka's maximum (see the
 * top of the file: they must not time out inside librdkafka). */
#define OPS_COORD_REQUEST_TIMEOUT_MS (3600 * 1000)
/* Stale messages drained from a consumer going back to the pool, at most. */
#define OPS_DRAIN_MAX 10000

/* One broker's answer to DescribeLogDirs. */
struct broker_sizes {
    int32_t id;
    int ok;                /* it answered */
    struct logdir_size *v; /* owned (logdirs_free); sorted by topic, partition */
    size_t n;
};

/* The admin handle of the group requests (see the top of the file). */
struct coord_handle {
    rd_kafka_t *rk; /* owned */
    int users;      /* requests holding it; guarded by ops->coord_lock */
    int retired;    /* a request on it was given up: destroy it when users
                       drops to 0, and use a new one meanwhile */
};

struct ops {
    const struct client_opts *o;   /* borrows */
    rd_kafka_t *rk;                /* the admin handle (all but group requests), owned */
    int timeout_ms;                /* bound of each call */

    pthread_mutex_t coord_lock;
    struct coord_handle *coord;    /* the current group handle or NULL, owned */

    pthread_mutex_t size_lock;
    int64_t sizes_at;              /* clock_mono_ms() of the last refresh */
    int sizes_valid;               /* a refresh happened */
    struct broker_sizes *sizes;    /* owned; one per broker at the refresh */
    size_t nsizes;

    pthread_mutex_t pool_lock;
    rd_kafka_t *pool[OPS_BROWSE_POOL]; /* idle browsing consumers, owned */
    int npool;
};

/* ---- time, errors, JSON helpers ---- */

/* Milliseconds left until deadline (clock_mono_ms), 0 once past. */
static int left_ms(int64_t deadline)
{
    int64_t l = deadline - clock_mono_ms();

    return l <= 0 ? 0 : l > INT_MAX ? INT_MAX : (int)l;
}

static int is_timeout(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE ||
           e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT || e == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
}

static int looks_unreachable(rd_kafka_resp_err_t e)
{
    return is_timeout(e) || e == RD_KAFKA_RESP_ERR__TRANSPORT ||
           e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || e == RD_KAFKA_RESP_ERR__RESOLVE;
}

/* The length of s without trailing periods, spaces and newlines, so that
 * clauses can be joined into one sentence. */
static int clause_len(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '.' || s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* Writes "WHAT: REASON" to err, adding the last connection error when the
 * cluster looks unreachable.  Returns 504 for a timeout, else 502. */
static int fail_kafka(const struct ops *ops, char *err, size_t errlen, const char *what,
                      rd_kafka_resp_err_t code, const char *reason)
{
    const char *r = reason && *reason ? reason : rd_kafka_err2str(code);
    char last[256] = "";

    if (looks_unreachable(code))
        client_last_error(last, sizeof last);
    if (last[0])
        snprintf(err, errlen, "%s: %.*s (is the cluster at %s up? last client error: %.*s)",
                 what, clause_len(r), r, ops->o->bootstrap, clause_len(last), last);
    else
        snprintf(err, errlen, "%s: %.*s", what, clause_len(r), r);
    return is_timeout(code) ? 504 : 502;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int status,
                                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* Names in error sentences come from the request or the cluster: make err
 * well-formed UTF-8 (cut at a character boundary if the repair grows it). */
static void err_utf8(char *err, size_t errlen)
{
    size_t n = strlen(err), m;
    char *tmp;

    if (utf8_valid_prefix(err, n) == n || !(tmp = xmalloc(UTF8_REPAIR_MAX(n) + 1)))
        return;
    m = utf8_repair(tmp, err, n);
    if (m >= errlen)
        m = utf8_valid_prefix(tmp, errlen - 1);
    memcpy(err, tmp, m);
    err[m] = 0;
    xfree(tmp);
}

/* Moves the finished document b into out (on 200) and frees b.  Returns
 * the status to give the caller. */
static int finish(int status, struct jbuf *b, struct jbuf *out, char *err, size_t errlen)
{
    if (status == 200 && b->oom)
        status = fail(err, errlen, 500, "out of memory");
    if (status == 200) {
        size_t before = out->len;

        json_w_raw(out, NULL, b->p, b->len);
        if (out->oom) {
            out->len = before;
            if (out->p)
                out->p[before] = 0;
            status = fail(err, errlen, 500, "out of memory");
        }
    }
    jbuf_free(b);
    if (status != 200 && errlen > 0)
        err_utf8(err, errlen);
    return status;
}

/* Writes bytes p[0..n) as a JSON string, ill-formed UTF-8 replaced by
 * U+FFFD; null when p is NULL. */
static void w_bytes(struct jbuf *b, const char *key, const void *p, size_t n)
{
    char *tmp;

    if (!p) {
        json_w_null(b, key);
        return;
    }
    if (utf8_valid_prefix(p, n) == n) {
        json_w_str(b, key, p, n);
        return;
    }
    if (!(tmp = xmalloc(UTF8_REPAIR_MAX(n)))) {
        b->oom = 1;
        return;
    }
    json_w_str(b, key, tmp, utf8_repair(tmp, p, n));
    xfree(tmp);
}

static void w_cstr(struct jbuf *b, const char *key, const char *s)
{
    w_bytes(b, key, s, s ? strlen(s) : 0);
}

/* An int64 that is -1 when unknown: the number, or null. */
static void w_known(struct jbuf *b, const char *key, int64_t v)
{
    if (v < 0)
        json_w_null(b, key);
    else
        json_w_int(b, key, v);
}

static int is_internal(const char *topic)
{
    return topic[0] == '_' && topic[1] == '_';
}

/* ---- the handle, metadata, admin requests ---- */

/* Settings of every handle of ops (before the user's -X).  A server
 * outlives cluster outages: librdkafka's default reconnect backoff grows to
 * 10 s, and a console that stays failing that long after the cluster is
 * back looks broken. */
#define OPS_CONF_COMMON "reconnect.backoff.max.ms", "1000"

/* An admin handle like client_admin_new's (a producer that never produces
 * and never asks for topics to be created), with OPS_CONF_COMMON.  Returns
 * owned (rd_kafka_destroy) or NULL after printing the reason. */
static rd_kafka_t *admin_new(const struct client_opts *o)
{
    static const char *const defaults[] = {
        "allow.auto.create.topics", "false",
        OPS_CONF_COMMON,
        NULL,
    };
    rd_kafka_conf_t *conf = client_conf_new(o, OPS_CMD, RD_KAFKA_PRODUCER, defaults);

    return conf ? client_handle_new(OPS_CMD, RD_KAFKA_PRODUCER, conf) : NULL;
}

struct ops *ops_new(const struct client_opts *o, char *err, size_t errlen)
{
    struct ops *ops = xcalloc(1, sizeof *ops);

    if (!ops) {
        fail(err, errlen, 500, "out of memory");
        return NULL;
    }
    ops->o = o;
    ops->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
    pthread_mutex_init(&ops->size_lock, NULL);
    pthread_mutex_init(&ops->pool_lock, NULL);
    pthread_mutex_init(&ops->coord_lock, NULL);
    /* Both print the reason to stderr. */
    if (!(ops->rk = admin_new(o))) {
        fail(err, errlen, 500, "could not create the Kafka client for the operations console");
        ops_free(ops);
        return NULL;
    }
    return ops;
}

static void sizes_clear(struct ops *ops)
{
    for (size_t k = 0; k < ops->nsizes; k++)
        logdirs_free(ops->sizes[k].v, ops->sizes[k].n);
    xfree(ops->sizes);
    ops->sizes = NULL;
    ops->nsizes = 0;
    ops->sizes_valid = 0;
}

void ops_free(struct ops *ops)
{
    if (!ops)
        return;
    for (int k = 0; k < ops->npool; k++) {
        rd_kafka_consumer_close(ops->pool[k]);
        rd_kafka_destroy(ops->pool[k]);
    }
    sizes_clear(ops);
    /* Retired handles went with their last user; this one has none. */
    if (ops->coord) {
        rd_kafka_destroy(ops->coord->rk);
        xfree(ops->coord);
    }
    if (ops->rk)
        rd_kafka_destroy(ops->rk);
    pthread_mutex_destroy(&ops->size_lock);
    pthread_mutex_destroy(&ops->pool_lock);
    pthread_mutex_destroy(&ops->coord_lock);
    xfree(ops);
}

/* Fetches metadata of every topic.  Returns 200 with *md owned
 * (rd_kafka_metadata_destroy), or an error status. */
static int get_metadata(struct ops *ops, int64_t deadline, const struct rd_kafka_metadata **md,
                        char *err, size_t errlen)
{
    static const char what[] = "could not fetch the cluster metadata";
    int left = left_ms(deadline);
    rd_kafka_resp_err_t e;

    *md = NULL;
    if (left <= 0)
        return fail_kafka(ops, err, errlen, what, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
    if ((e = rd_kafka_metadata(ops->rk, 1, NULL, md, left)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *md = NULL;
        return fail_kafka(ops, err, errlen, what, e, NULL);
    }
    return 200;
}

/* Finds topic in md.  Returns 200 with *mt a view into md, 404 when the
 * cluster does not know it, or 502 when it has no usable partitions. */
static int find_topic(const struct ops *ops, const struct rd_kafka_metadata *md, const char *topic,
                      const rd_kafka_metadata_topic_t **mt, char *err, size_t errlen)
{
    *mt = NULL;
    for (int t = 0; t < md->topic_cnt; t++)
        if (!strcmp(md->topics[t].topic, topic)) {
            *mt = &md->topics[t];
            break;
        }
    if (!*mt || (*mt)->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return fail(err, errlen, 404, "topic '%s' does not exist", topic);
    /* A topic still electing leaders reports an error but has partitions. */
    if ((*mt)->err && (*mt)->partition_cnt == 0) {
        char what[300];

        snprintf(what, sizeof what, "could not read the metadata of topic '%s'", topic);
        return fail_kafka(ops, err, errlen, what, (*mt)->err, NULL);
    }
    return 200;
}

/* Options for an admin request on rk with the given timeout.  Returns owned
 * (rd_kafka_AdminOptions_destroy). */
static rd_kafka_AdminOptions_t *admin_opts_rk(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                              int timeout_ms)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    char e[128];

    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms > 0 ? timeout_ms : 1, e, sizeof e);
    return opts;
}

/* Options for a request on the admin handle, timing out with deadline. */
static rd_kafka_AdminOptions_t *admin_opts(struct ops *ops, rd_kafka_admin_op_t op,
                                           int64_t deadline)
{
    return admin_opts_rk(ops->rk, op, left_ms(deadline));
}

/* Waits for one result on q until the deadline (plus a margin for
 * librdkafka's own timeout).  Returns it owned (rd_kafka_event_destroy),
 * free of a request-level error, or NULL with *status and err set, and
 * *gave_up set (if not NULL) when nothing came. */
static rd_kafka_event_t *admin_wait(struct ops *ops, rd_kafka_queue_t *q, int64_t deadline,
                                    const char *what, int *status, int *gave_up, char *err,
                                    size_t errlen)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left_ms(deadline) + OPS_ADMIN_MARGIN_MS);

    if (!ev) {
        if (gave_up)
            *gave_up = 1;
        *status = fail_kafka(ops, err, errlen, what, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        *status = fail_kafka(ops, err, errlen, what, rd_kafka_event_error(ev),
                             rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

/* ---- watermarks ---- */

/* A partition whose low and high watermarks are wanted. */
struct wm {
    const char *topic; /* view (metadata) */
    int32_t partition;
    int need;          /* ask for it */
    int64_t lo, hi;    /* -1 when unknown */
};

static int cmp_wm(const void *x, const void *y)
{
    const struct wm *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);

    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* v sorted by cmp_wm: the entry of (topic, partition), or NULL. */
static struct wm *wm_find(struct wm *v, size_t n, const char *topic, int32_t partition)
{
    struct wm key = {topic, partition, 0, 0, 0};

    return n ? bsearch(&key, v, n, sizeof *v, cmp_wm) : NULL;
}

/* Sets lo and hi of every v[k] with need (the others get -1).  Per-partition
 * failures leave -1; returns the error of a failed request (all of its
 * partitions stay -1), else 0. */
static rd_kafka_resp_err_t watermarks(struct ops *ops, struct wm *v, size_t n, int64_t deadline)
{
    size_t need = 0;

    for (size_t k = 0; k < n; k++) {
        v[k].lo = v[k].hi = -1;
        need += v[k].need != 0;
    }
    if (need == 0)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    if (need > INT_MAX)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    for (int pass = 0; pass < 2; pass++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)need);
        int left = left_ms(deadline), j = 0;
        rd_kafka_resp_err_t e;

        for (size_t k = 0; k < n; k++)
            if (v[k].need)
                /* As ListOffsets timestamps, -2 and -1 mean earliest and latest. */
                rd_kafka_topic_partition_list_add(l, v[k].topic, v[k].partition)->offset =
                    pass == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        e = left > 0 ? rd_kafka_offsets_for_times(ops->rk, l, left) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (e) {
            rd_kafka_topic_partition_list_destroy(l);
            for (size_t k = 0; k < n; k++)
                v[k].lo = v[k].hi = -1;
            return e;
        }
        for (size_t k = 0; k < n; k++) {
            const rd_kafka_topic_partition_t *tp;

            if (!v[k].need)
                continue;
            /* The list comes back in the order it went; look it up if not. */
            tp = j < l->cnt ? &l->elems[j] : NULL;
            j++;
            if (!tp || tp->partition != v[k].partition || strcmp(tp->topic, v[k].topic))
                tp = rd_kafka_topic_partition_list_find(l, v[k].topic, v[k].partition);
            if (!tp || tp->err || tp->offset < 0)
                continue;
            if (pass == 0)
                v[k].lo = tp->offset;
            else
                v[k].hi = tp->offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    /* Half a pair is no use. */
    for (size_t k = 0; k < n; k++)
        if (v[k].lo < 0 || v[k].hi < 0)
            v[k].lo = v[k].hi = -1;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ---- sizes ---- */

/* Locks the size cache, refreshing it first when it is older than
 * OPS_SIZE_CACHE_MS or lacks a broker of md.  A broker that does not answer
 * is remembered as such until the next refresh, so that it costs one
 * timeout per OPS_SIZE_CACHE_MS, not one per request.  Unlock with
 * sizes_unlock. */
static void sizes_lock(struct ops *ops, const struct rd_kafka_metadata *md, int64_t deadline)
{
    int fresh;

    pthread_mutex_lock(&ops->size_lock);
    fresh = ops->sizes_valid && clock_mono_ms() - ops->sizes_at < OPS_SIZE_CACHE_MS;
    for (int b = 0; fresh && b < md->broker_cnt; b++) {
        int known = 0;

        for (size_t k = 0; k < ops->nsizes && !known; k++)
            known = ops->sizes[k].id == md->brokers[b].id;
        fresh = known;
    }
    if (fresh)
        return;
    sizes_clear(ops);
    if (md->broker_cnt > 0 && !(ops->sizes = xcalloc((size_t)md->broker_cnt, sizeof *ops->sizes)))
        return; /* no sizes this time; tried again next request */
    /* One broker after the other, within the request's time: a console's
     * cluster has few brokers, and an answer takes a millisecond or so. */
    for (int b = 0; b < md->broker_cnt; b++) {
        struct broker_sizes *s = &ops->sizes[ops->nsizes++];
        int left = left_ms(deadline);
        char e[256];

        /* Half the client timeout at most: other requests wait for this
         * refresh, and a broker that takes longer goes without sizes. */
        if (left > ops->timeout_ms / 2)
            left = ops->timeout_ms / 2 > 0 ? ops->timeout_ms / 2 : 1;
        s->id = md->brokers[b].id;
        s->ok = left > 0 && logdirs_query(md->brokers[b].host, md->brokers[b].port, left, &s->v,
                                          &s->n, e, sizeof e) == 0;
    }
    ops->sizes_valid = 1;
    ops->sizes_at = clock_mono_ms();
}

static void sizes_unlock(struct ops *ops)
{
    pthread_mutex_unlock(&ops->size_lock);
}

static int cmp_size(const void *key, const void *elem)
{
    const struct logdir_size *a = key, *b = elem;
    int c = strcmp(a->topic, b->topic);

    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* With the cache locked: the bytes of partition mp of topic summed over its
 * replicas, or -1 when a broker holding one did not answer or none listed
 * the partition. */
static int64_t size_of(const struct ops *ops, const char *topic,
                       const rd_kafka_metadata_partition_t *mp)
{
    const int32_t *ids = mp->replicas;
    int cnt = mp->replica_cnt, found = 0;
    int64_t sum = 0;
    struct logdir_size key;

    if (cnt <= 0) {
        ids = &mp->leader;
        cnt = 1;
    }
    key.topic = (char *)topic;
    key.partition = mp->id;
    for (int r = 0; r < cnt; r++) {
        const struct broker_sizes *b = NULL;
        const struct logdir_size *s;

        for (size_t k = 0; k < ops->nsizes && !b; k++)
            if (ops->sizes[k].id == ids[r])
                b = &ops->sizes[k];
        if (!b || !b->ok)
            return -1;
        if (b->n && (s = bsearch(&key, b->v, b->n, sizeof *b->v, cmp_size))) {
            sum += s->size_bytes;
            found = 1;
        }
    }
    return found ? sum : -1;
}

/* ---- cluster and topics ---- */

static int cmp_broker(const void *x, const void *y)
{
    const struct rd_kafka_metadata_broker *a = *(const struct rd_kafka_metadata_broker *const *)x;
    const struct rd_kafka_metadata_broker *b = *(const struct rd_kafka_metadata_broker *const *)y;

    return (a->id > b->id) - (a->id < b->id);
}

int ops_cluster(struct ops *ops, struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    const struct rd_kafka_metadata *md = NULL;
    const struct rd_kafka_metadata_broker **bs = NULL;
    char *cluster_id = NULL;
    struct jbuf b;
    int status;

    jbuf_init(&b);
    if ((status = get_metadata(ops, deadline, &md, err, errlen)) != 200)
        goto out;
    /* Both come from the metadata just fetched: no wait. */
    cluster_id = rd_kafka_clusterid(ops->rk, 0);
    if (!(bs = xcalloc((size_t)md->broker_cnt + 1, sizeof *bs))) {
        b.oom = 1;
        goto out;
    }
    for (int k = 0; k < md->broker_cnt; k++)
        bs[k] = &md->brokers[k];
    qsort(bs, (size_t)md->broker_cnt, sizeof *bs, cmp_broker);
    json_w_obj_begin(&b, NULL);
    w_cstr(&b, "cluster_id", cluster_id);
    json_w_int(&b, "controller_id", rd_kafka_controllerid(ops->rk, 0));
    json_w_arr_begin(&b, "brokers");
    for (int k = 0; k < md->broker_cnt; k++) {
        json_w_obj_begin(&b, NULL);
        json_w_int(&b, "id", bs[k]->id);
        w_cstr(&b, "host", bs[k]->host);
        json_w_int(&b, "port", bs[k]->port);
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_obj_end(&b);
out:
    if (cluster_id)
        rd_kafka_mem_free(ops->rk, cluster_id);
    xfree(bs);
    if (md)
        rd_kafka_metadata_destroy(md);
    return finish(status, &b, out, err, errlen);
}

static int cmp_topic(const void *x, const void *y)
{
    return strcmp((*(const rd_kafka_metadata_topic_t *const *)x)->topic,
                  (*(const rd_kafka_metadata_topic_t *const *)y)->topic);
}

static int cmp_partition(const void *x, const void *y)
{
    const rd_kafka_metadata_partition_t *a = *(const rd_kafka_metadata_partition_t *const *)x;
    const rd_kafka_metadata_partition_t *b = *(const rd_kafka_metadata_partition_t *const *)y;

    return (a->id > b->id) - (a->id < b->id);
}

int ops_topics(struct ops *ops, struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t **ts = NULL;
    struct wm *wms = NULL;
    int64_t *sizes = NULL;
    size_t nt = 0, nparts = 0, k;
    struct jbuf b;
    int status;

    jbuf_init(&b);
    if ((status = get_metadata(ops, deadline, &md, err, errlen)) != 200)
        goto out;
    if (!(ts = xcalloc((size_t)md->topic_cnt + 1, sizeof *ts)))
        goto oom;
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];

        if (mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || (mt->err && !mt->partition_cnt))
            continue;
        ts[nt++] = mt;
        nparts += (size_t)mt->partition_cnt;
    }
    qsort(ts, nt, sizeof *ts, cmp_topic);
    if (!(wms = xcalloc(nparts + 1, sizeof *wms)) || !(sizes = xcalloc(nparts + 1, sizeof *sizes)))
        goto oom;
    k = 0;
    for (size_t t = 0; t < nt; t++)
        for (int p = 0; p < ts[t]->partition_cnt; p++, k++)
            wms[k] = (struct wm){ts[t]->topic, ts[t]->partitions[p].id, 1, -1, -1};
    /* An unreadable watermark makes "messages" null; the rest still shows. */
    watermarks(ops, wms, nparts, deadline);
    sizes_lock(ops, md, deadline);
    k = 0;
    for (size_t t = 0; t < nt; t++)
        for (int p = 0; p < ts[t]->partition_cnt; p++, k++)
            sizes[k] = size_of(ops, ts[t]->topic, &ts[t]->partitions[p]);
    sizes_unlock(ops);

    json_w_obj_begin(&b, NULL);
    json_w_arr_begin(&b, "topics");
    k = 0;
    for (size_t t = 0; t < nt; t++) {
        const rd_kafka_metadata_topic_t *mt = ts[t];
        int64_t msgs = 0, bytes = 0;
        int rf = 0, lowest = INT_MAX;

        for (int p = 0; p < mt->partition_cnt; p++, k++) {
            /* The replication factor is the first partition's. */
            if (mt->partitions[p].id < lowest) {
                lowest = mt->partitions[p].id;
                rf = mt->partitions[p].replica_cnt;
            }
            if (msgs >= 0)
                msgs = wms[k].hi < 0 ? -1 : msgs + (wms[k].hi - wms[k].lo);
            if (bytes >= 0)
                bytes = sizes[k] < 0 ? -1 : bytes + sizes[k];
        }
        json_w_obj_begin(&b, NULL);
        w_cstr(&b, "name", mt->topic);
        json_w_int(&b, "partitions", mt->partition_cnt);
        json_w_int(&b, "replication_factor", rf);
        json_w_bool(&b, "internal", is_internal(mt->topic));
        w_known(&b, "messages", msgs);
        w_known(&b, "size_bytes", mt->partition_cnt ? bytes : 0);
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_obj_end(&b);
    goto out;
oom:
    b.oom = 1;
out:
    xfree(sizes);
    xfree(wms);
    xfree(ts);
    if (md)
        rd_kafka_metadata_destroy(md);
    return finish(status, &b, out, err, errlen);
}

static int cmp_config(const void *x, const void *y)
{
    return strcmp(rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)x),
                  rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)y));
}

/* Asks for the configs of topic.  Returns 200 with *ev owned
 * (rd_kafka_event_destroy) and *res a view of the topic's resource in it,
 * or an error status. */
static int describe_configs(struct ops *ops, const char *topic, int64_t deadline,
                            rd_kafka_event_t **ev, const rd_kafka_ConfigResource_t **res,
                            char *err, size_t errlen)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_AdminOptions_t *opts = admin_opts(ops, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, deadline);
    rd_kafka_queue_t *q = rd_kafka_queue_new(ops->rk);
    const rd_kafka_ConfigResource_t **rs;
    char what[300];
    size_t n;
    int status = 200;

    snprintf(what, sizeof what, "could not read the configs of topic '%s'", topic);
    rd_kafka_DescribeConfigs(ops->rk, &cr, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(cr);
    *ev = admin_wait(ops, q, deadline, what, &status, NULL, err, errlen);
    rd_kafka_queue_destroy(q);
    if (!*ev)
        return status;
    rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(*ev), &n);
    if (n == 0)
        status = fail_kafka(ops, err, errlen, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                            "the broker returned no result for the topic");
    else if (rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        status = fail(err, errlen, 404, "topic '%s' does not exist", topic);
    else if (rd_kafka_ConfigResource_error(rs[0]))
        status = fail_kafka(ops, err, errlen, what, rd_kafka_ConfigResource_error(rs[0]),
                            rd_kafka_ConfigResource_error_string(rs[0]));
    if (status != 200) {
        rd_kafka_event_destroy(*ev);
        *ev = NULL;
        return status;
    }
    *res = rs[0];
    return 200;
}

static void w_ids(struct jbuf *b, const char *key, const int32_t *ids, int n)
{
    json_w_arr_begin(b, key);
    for (int k = 0; k < n; k++)
        json_w_int(b, NULL, ids[k]);
    json_w_arr_end(b);
}

int ops_topic(struct ops *ops, const char *name, struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    const rd_kafka_metadata_partition_t **parts = NULL;
    const rd_kafka_ConfigResource_t *res = NULL;
    const rd_kafka_ConfigEntry_t **cfgs = NULL;
    rd_kafka_event_t *ev = NULL;
    struct wm *wms = NULL;
    int64_t *sizes = NULL;
    size_t np, ncfg = 0;
    struct jbuf b;
    int status;

    jbuf_init(&b);
    if ((status = get_metadata(ops, deadline, &md, err, errlen)) != 200 ||
        (status = find_topic(ops, md, name, &mt, err, errlen)) != 200)
        goto out;
    np = (size_t)mt->partition_cnt;
    if (!(parts = xcalloc(np + 1, sizeof *parts)) || !(wms = xcalloc(np + 1, sizeof *wms)) ||
        !(sizes = xcalloc(np + 1, sizeof *sizes)))
        goto oom;
    for (size_t p = 0; p < np; p++)
        parts[p] = &mt->partitions[p];
    qsort(parts, np, sizeof *parts, cmp_partition);
    for (size_t p = 0; p < np; p++)
        wms[p] = (struct wm){mt->topic, parts[p]->id, 1, -1, -1};
    watermarks(ops, wms, np, deadline);
    sizes_lock(ops, md, deadline);
    for (size_t p = 0; p < np; p++)
        sizes[p] = size_of(ops, mt->topic, parts[p]);
    sizes_unlock(ops);
    if ((status = describe_configs(ops, mt->topic, deadline, &ev, &res, err, errlen)) != 200)
        goto out;
    {
        const rd_kafka_ConfigEntry_t **cs = rd_kafka_ConfigResource_configs(res, &ncfg);

        if (!(cfgs = xcalloc(ncfg + 1, sizeof *cfgs)))
            goto oom;
        if (ncfg)
            memcpy(cfgs, cs, ncfg * sizeof *cfgs);
        qsort(cfgs, ncfg, sizeof *cfgs, cmp_config);
    }

    json_w_obj_begin(&b, NULL);
    w_cstr(&b, "name", mt->topic);
    json_w_bool(&b, "internal", is_internal(mt->topic));
    json_w_arr_begin(&b, "partitions");
    for (size_t p = 0; p < np; p++) {
        json_w_obj_begin(&b, NULL);
        json_w_int(&b, "partition", parts[p]->id);
        json_w_int(&b, "leader", parts[p]->leader);
        w_ids(&b, "replicas", parts[p]->replicas, parts[p]->replica_cnt);
        w_ids(&b, "isr", parts[p]->isrs, parts[p]->isr_cnt);
        w_known(&b, "low", wms[p].lo);
        w_known(&b, "high", wms[p].hi);
        w_known(&b, "size_bytes", sizes[p]);
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_arr_begin(&b, "configs");
    for (size_t k = 0; k < ncfg; k++) {
        json_w_obj_begin(&b, NULL);
        w_cstr(&b, "name", rd_kafka_ConfigEntry_name(cfgs[k]));
        w_cstr(&b, "value", rd_kafka_ConfigEntry_value(cfgs[k]));
        json_w_bool(&b, "default", rd_kafka_ConfigEntry_is_default(cfgs[k]));
        json_w_bool(&b, "sensitive", rd_kafka_ConfigEntry_is_sensitive(cfgs[k]));
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_obj_end(&b);
    goto out;
oom:
    b.oom = 1;
out:
    xfree(cfgs);
    if (ev)
        rd_kafka_event_destroy(ev);
    xfree(sizes);
    xfree(wms);
    xfree(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    return finish(status, &b, out, err, errlen);
}

/* ---- messages ---- */

/* Borrows an idle browsing consumer, or makes one.  Returns it owned
 * (give it back with pool_put), or NULL with one sentence in err. */
static rd_kafka_t *pool_get(struct ops *ops, char *err, size_t errlen)
{
    /* librdkafka's consumer wants a group.id even to assign(); this one is
     * never joined or committed to.  Offsets out of range (retention ran
     * meanwhile) start at the earliest. */
    const char *const defaults[] = {
        "group.id", OPS_BROWSE_GROUP,
        "client.id", "shopstream-serve-browser",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "true",
        "auto.offset.reset", "earliest",
        "fetch.wait.max.ms", "100",
        /* Prefetch less than the default 64 MiB per partition: a browse
         * reads at most OPS_BROWSE_MAX_BODY-ish of it. */
        "queued.max.messages.kbytes", "16384",
        OPS_CONF_COMMON,
        NULL,
    };
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;

    pthread_mutex_lock(&ops->pool_lock);
    if (ops->npool > 0)
        rk = ops->pool[--ops->npool];
    pthread_mutex_unlock(&ops->pool_lock);
    if (rk)
        return rk;
    /* Both print the reason to stderr. */
    if (!(conf = client_conf_new(ops->o, OPS_CMD, RD_KAFKA_CONSUMER, defaults)) ||
        !(rk = client_handle_new(OPS_CMD, RD_KAFKA_CONSUMER, conf))) {
        fail(err, errlen, 500, "could not create a Kafka consumer to read the messages");
        return NULL;
    }
    /* Errors come out of rd_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Takes rk back: unassigns it and drops what it had fetched, then keeps it
 * idle if there is room and it is healthy, else closes it.  A consumer
 * that saw errors or timed out is not healthy: its connections may sit in
 * a reconnect backoff, and a new consumer connects at once. */
static void pool_put(struct ops *ops, rd_kafka_t *rk, int healthy)
{
    rd_kafka_message_t *m;
    int kept = 0;

    rd_kafka_assign(rk, NULL);
    /* librdkafka drops messages of an older assignment when polled. */
    for (int k = 0; k < OPS_DRAIN_MAX && (m = rd_kafka_consumer_poll(rk, 0)); k++)
        rd_kafka_message_destroy(m);
    if (healthy && !rd_kafka_fatal_error(rk, NULL, 0)) {
        pthread_mutex_lock(&ops->pool_lock);
        if (ops->npool < OPS_BROWSE_POOL) {
            ops->pool[ops->npool++] = rk;
            kept = 1;
        }
        pthread_mutex_unlock(&ops->pool_lock);
    }
    if (!kept) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
}

static int contains(const void *hay, size_t n, const char *needle, size_t len)
{
    return hay && memmem(hay, n, needle, len) != NULL;
}

static void w_message(struct jbuf *b, const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t *hdrs;

    json_w_obj_begin(b, NULL);
    json_w_int(b, "partition", m->partition);
    json_w_int(b, "offset", m->offset);
    if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ts < 0)
        json_w_null(b, "timestamp");
    else
        json_w_int(b, "timestamp", ts);
    w_bytes(b, "key", m->key, m->key_len);
    w_bytes(b, "value", m->payload, m->len);
    json_w_arr_begin(b, "headers");
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;

        for (size_t k = 0; rd_kafka_header_get_all(hdrs, k, &name, &val, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             k++) {
            json_w_obj_begin(b, NULL);
            w_cstr(b, "key", name);
            w_bytes(b, "value", val, size);
            json_w_obj_end(b);
        }
    }
    json_w_arr_end(b);
    json_w_obj_end(b);
}

/* Checks the browse parameters; fills the defaults into *r.  Returns 200 or
 * 400. */
static int browse_check(const struct ops_browse *in, struct ops_browse *r, char *err,
                        size_t errlen)
{
    *r = *in;
    if (r->partition == -1)
        return fail(err, errlen, 400, "the partition parameter is required");
    if (r->partition < 0)
        return fail(err, errlen, 400, "partition must be a partition number (0 or more)");
    if (r->offset < -1)
        return fail(err, errlen, 400, "offset must be 0 or more");
    if (r->time_ms < -1)
        return fail(err, errlen, 400, "time must be milliseconds since the epoch (0 or more)");
    if (r->offset >= 0 && r->time_ms >= 0)
        return fail(err, errlen, 400, "give offset or time, not both");
    if (r->limit == -1)
        r->limit = OPS_BROWSE_DEFAULT_LIMIT;
    if (r->limit < 1 || r->limit > OPS_BROWSE_MAX_LIMIT)
        return fail(err, errlen, 400, "limit must be from 1 to %d", OPS_BROWSE_MAX_LIMIT);
    if (r->scan == -1)
        r->scan = OPS_BROWSE_DEFAULT_SCAN;
    if (r->scan < 1 || r->scan > OPS_BROWSE_MAX_SCAN)
        return fail(err, errlen, 400, "scan must be from 1 to %d", OPS_BROWSE_MAX_SCAN);
    if (r->q && !*r->q)
        r->q = NULL;
    return 200;
}

/* Where a browse starts within [lo, hi].  Returns 200 with *start, or an
 * error status. */
static int browse_start(struct ops *ops, const char *topic, const struct ops_browse *r,
                        int64_t lo, int64_t hi, int64_t deadline, int64_t *start, char *err,
                        size_t errlen)
{
    int64_t s;

    if (r->offset >= 0) {
        s = r->offset;
    } else if (r->time_ms >= 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, topic, r->partition);
        int left = left_ms(deadline);
        rd_kafka_resp_err_t e;
        char what[300];

        tp->offset = r->time_ms;
        e = left > 0 ? rd_kafka_offsets_for_times(ops->rk, l, left) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (!e)
            e = tp->err;
        /* No record at or after the time: the end, as Kafka does. */
        s = tp->offset >= 0 ? tp->offset : hi;
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            snprintf(what, sizeof what,
                     "could not look up the offset for the time in topic '%s' partition %d",
                     topic, (int)r->partition);
            return fail_kafka(ops, err, errlen, what, e, NULL);
        }
    } else {
        s = hi - r->limit;
    }
    *start = s < lo ? lo : s > hi ? hi : s;
    return 200;
}

int ops_messages(struct ops *ops, const char *topic, const struct ops_browse *in,
                 struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    rd_kafka_topic_partition_list_t *al = NULL;
    rd_kafka_resp_err_t e, last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_t *rk = NULL;
    struct ops_browse r;
    int64_t lo = -1, hi = -1, start = -1, next, scanned = 0;
    int status, found = 0, matched = 0, timed_out = 0, fatal = 0, progress = 0, left;
    size_t qlen;
    char what[300], last_errstr[256] = "";
    struct jbuf b;

    jbuf_init(&b);
    if ((status = browse_check(in, &r, err, errlen)) != 200)
        goto out;
    qlen = r.q ? strlen(r.q) : 0;
    if ((status = get_metadata(ops, deadline, &md, err, errlen)) != 200 ||
        (status = find_topic(ops, md, topic, &mt, err, errlen)) != 200)
        goto out;
    for (int p = 0; p < mt->partition_cnt; p++)
        found |= mt->partitions[p].id == r.partition;
    if (!found) {
        status = fail(err, errlen, 400, "topic '%s' has no partition %d (it has %d)", topic,
                      (int)r.partition, mt->partition_cnt);
        goto out;
    }
    snprintf(what, sizeof what, "could not read the offsets of topic '%s' partition %d", topic,
             (int)r.partition);
    left = left_ms(deadline);
    e = left > 0 ? rd_kafka_query_watermark_offsets(ops->rk, topic, r.partition, &lo, &hi, left)
                 : RD_KAFKA_RESP_ERR__TIMED_OUT;
    if (e) {
        status = fail_kafka(ops, err, errlen, what, e, NULL);
        goto out;
    }
    if ((status = browse_start(ops, topic, &r, lo, hi, deadline, &start, err, errlen)) != 200)
        goto out;

    json_w_obj_begin(&b, NULL);
    w_cstr(&b, "topic", topic);
    json_w_int(&b, "partition", r.partition);
    json_w_arr_begin(&b, "messages");
    next = start;
    if (start < hi) {
        if (!(rk = pool_get(ops, err, errlen))) {
            status = 500;
            goto out;
        }
        al = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(al, topic, r.partition)->offset = start;
        if ((e = rd_kafka_assign(rk, al)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(what, sizeof what, "could not read topic '%s' partition %d", topic,
                     (int)r.partition);
            status = fail_kafka(ops, err, errlen, what, e, NULL);
            goto out;
        }
    }
    /* Up to the high watermark read above: records produced since are for
     * the next request. */
    while (next < hi && matched < r.limit && scanned < r.scan && b.len < OPS_BROWSE_MAX_BODY) {
        rd_kafka_message_t *m;

        if ((left = left_ms(deadline)) <= 0) {
            timed_out = 1;
            break;
        }
        if (!(m = rd_kafka_consumer_poll(rk, left < OPS_POLL_MS ? left : OPS_POLL_MS)))
            continue;
        /* Anything of another partition or before where this read is at
         * is left over from an earlier assignment of the pooled consumer. */
        if (m->rkt && (m->partition != r.partition || strcmp(rd_kafka_topic_name(m->rkt), topic) ||
                       m->offset < next)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt) {
            /* The end came before the high watermark: the log was
             * truncated or records were deleted. */
            progress = 1;
            rd_kafka_message_destroy(m);
            break;
        }
        if (m->err) {
            last_err = m->err;
            snprintf(last_errstr, sizeof last_errstr, "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (rd_kafka_fatal_error(rk, NULL, 0)) {
                fatal = 1;
                break;
            }
            continue;
        }
        progress = 1;
        scanned++;
        next = m->offset + 1;
        if (!qlen || contains(m->key, m->key_len, r.q, qlen) ||
            contains(m->payload, m->len, r.q, qlen)) {
            w_message(&b, m);
            matched++;
        }
        rd_kafka_message_destroy(m);
    }
    if ((timed_out || fatal) && !progress) {
        char reason[400];

        snprintf(what, sizeof what, "could not read topic '%s' partition %d", topic,
                 (int)r.partition);
        if (fatal) {
            status = fail_kafka(ops, err, errlen, what, last_err, last_errstr);
        } else {
            /* Say why it timed out, when the consumer said something. */
            if (last_err)
                snprintf(reason, sizeof reason,
                         "no record arrived in time (last consumer error: %.*s)",
                         clause_len(last_errstr), last_errstr);
            else
                snprintf(reason, sizeof reason, "no record arrived in time");
            status = fail_kafka(ops, err, errlen, what, RD_KAFKA_RESP_ERR__TIMED_OUT, reason);
        }
        goto out;
    }
    json_w_arr_end(&b);
    json_w_int(&b, "next_offset", next);
    json_w_int(&b, "scanned", scanned);
    json_w_int(&b, "high", hi);
    json_w_obj_end(&b);
out:
    if (al)
        rd_kafka_topic_partition_list_destroy(al);
    if (rk)
        pool_put(ops, rk, !fatal && !timed_out && !last_err);
    if (md)
        rd_kafka_metadata_destroy(md);
    return finish(status, &b, out, err, errlen);
}

/* ---- groups ---- */

/* The current group handle, made if there is none.  Returns it with a use
 * counted (give it back with coord_put), or NULL with err set. */
static struct coord_handle *coord_get(struct ops *ops, char *err, size_t errlen)
{
    struct coord_handle *ch;

    pthread_mutex_lock(&ops->coord_lock);
    if (!(ch = ops->coord)) {
        if ((ch = xcalloc(1, sizeof *ch)) && !(ch->rk = admin_new(ops->o))) {
            xfree(ch);
            ch = NULL;
        }
        ops->coord = ch;
    }
    if (ch)
        ch->users++;
    pthread_mutex_unlock(&ops->coord_lock);
    if (!ch)
        fail(err, errlen, 500, "could not create the Kafka client for the group requests");
    return ch;
}

/* A request on ch was given up: no new request may use ch. */
static void coord_retire(struct ops *ops, struct coord_handle *ch)
{
    pthread_mutex_lock(&ops->coord_lock);
    ch->retired = 1;
    if (ops->coord == ch)
        ops->coord = NULL;
    pthread_mutex_unlock(&ops->coord_lock);
}

/* Gives ch back; the last user of a retired handle destroys it (on its own
 * thread: rd_kafka_destroy waits for librdkafka's threads, which takes a
 * moment, and this happens only after a cluster failure). */
static void coord_put(struct ops *ops, struct coord_handle *ch)
{
    int destroy;

    pthread_mutex_lock(&ops->coord_lock);
    destroy = --ch->users == 0 && ch->retired;
    pthread_mutex_unlock(&ops->coord_lock);
    if (destroy) {
        rd_kafka_destroy(ch->rk);
        xfree(ch);
    }
}

/* One consumer group as gathered by groups_collect. */
struct grp {
    const char *id;                                  /* view (listing or the caller) */
    const rd_kafka_ConsumerGroupDescription_t *desc; /* view into desc_ev; NULL if none */
    rd_kafka_resp_err_t desc_err;                    /* why desc is NULL */
    rd_kafka_consumer_group_state_t state;           /* from desc, else from the listing */
    int simple;                                      /* protocol type "" */
    rd_kafka_event_t *offs_ev;                       /* owned */
    const rd_kafka_topic_partition_list_t *offs;     /* view into offs_ev; NULL if unread */
    rd_kafka_resp_err_t offs_err;                    /* why offs is NULL */
    char offs_errstr[160];
};

/* Everything the group queries need, from one round of requests. */
struct gsnap {
    struct ops *ops;                      /* borrows */
    struct coord_handle *ch;              /* a use of the group handle (coord_put) */
    rd_kafka_event_t *list_ev, *desc_ev;  /* owned (events of ch) */
    const struct rd_kafka_metadata *md;   /* owned */
    struct grp *g;                        /* owned, sorted by id */
    size_t n;
    struct wm *wm;                        /* owned: every partition of md, sorted */
    size_t nwm;
};

static void gsnap_free(struct gsnap *s)
{
    for (size_t k = 0; k < s->n; k++)
        if (s->g[k].offs_ev)
            rd_kafka_event_destroy(s->g[k].offs_ev);
    xfree(s->g);
    xfree(s->wm);
    if (s->md)
        rd_kafka_metadata_destroy(s->md);
    if (s->desc_ev)
        rd_kafka_event_destroy(s->desc_ev);
    if (s->list_ev)
        rd_kafka_event_destroy(s->list_ev);
    /* The events of a handle go before it. */
    if (s->ch)
        coord_put(s->ops, s->ch);
    memset(s, 0, sizeof *s);
}

static int cmp_grp(const void *x, const void *y)
{
    return strcmp(((const struct grp *)x)->id, ((const struct grp *)y)->id);
}

/* Lists the groups (or takes the one named only), describes them, reads
 * their committed offsets and the high watermarks of the committed
 * partitions.  A group whose description or offsets failed is marked so
 * (desc_err, offs_err); only the failure of the listing, of the whole
 * describe request or of the metadata fails the call.  Returns 200 with s
 * filled (gsnap_free), or an error status with s empty. */
static int groups_collect(struct ops *ops, const char *only, int64_t deadline, struct gsnap *s,
                          char *err, size_t errlen)
{
    rd_kafka_queue_t *q = NULL;
    rd_kafka_topic_partition_list_t *every = NULL;
    rd_kafka_AdminOptions_t *opts;
    const char **ids = NULL;
    size_t pending = 0, k;
    int status = 200, gave_up = 0, failed = 0;
    rd_kafka_t *rk;

    memset(s, 0, sizeof *s);
    s->ops = ops;
    if (!(s->ch = coord_get(ops, err, errlen)))
        return 500;
    rk = s->ch->rk;
    q = rd_kafka_queue_new(rk);
    if (only) {
        if (!(s->g = xcalloc(1, sizeof *s->g)))
            goto oom;
        s->g[0].id = only;
        s->g[0].state = RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN;
        s->n = 1;
    } else {
        const rd_kafka_ListConsumerGroups_result_t *res;
        const rd_kafka_ConsumerGroupListing_t **valid;
        const rd_kafka_error_t **errors;
        size_t nvalid, nerrors;

        opts = admin_opts_rk(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
                             OPS_COORD_REQUEST_TIMEOUT_MS);
        rd_kafka_ListConsumerGroups(rk, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        if (!(s->list_ev = admin_wait(ops, q, deadline, "could not list the consumer groups",
                                      &status, &gave_up, err, errlen)))
            goto fail;
        res = rd_kafka_event_ListConsumerGroups_result(s->list_ev);
        valid = rd_kafka_ListConsumerGroups_result_valid(res, &nvalid);
        errors = rd_kafka_ListConsumerGroups_result_errors(res, &nerrors);
        if (nerrors > 0) {
            /* A broker did not answer: its groups would be missing from a
             * list that looks complete.  librdkafka's message names it. */
            status = fail_kafka(ops, err, errlen, "could not list the consumer groups",
                                rd_kafka_error_code(errors[0]), rd_kafka_error_string(errors[0]));
            goto fail;
        }
        if (!(s->g = xcalloc(nvalid + 1, sizeof *s->g)))
            goto oom;
        for (k = 0; k < nvalid; k++) {
            s->g[k].id = rd_kafka_ConsumerGroupListing_group_id(valid[k]);
            s->g[k].state = rd_kafka_ConsumerGroupListing_state(valid[k]);
            s->g[k].simple = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(valid[k]);
        }
        s->n = nvalid;
        qsort(s->g, s->n, sizeof *s->g, cmp_grp);
    }

    if (s->n > 0) {
        const rd_kafka_ConsumerGroupDescription_t **descs;
        size_t nd;

        if (!(ids = xcalloc(s->n, sizeof *ids)))
            goto oom;
        for (k = 0; k < s->n; k++)
            ids[k] = s->g[k].id;
        opts = admin_opts_rk(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                             OPS_COORD_REQUEST_TIMEOUT_MS);
        rd_kafka_DescribeConsumerGroups(rk, ids, s->n, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        if (!(s->desc_ev = admin_wait(ops, q, deadline,
                                      only ? "could not describe the consumer group"
                                           : "could not describe the consumer groups",
                                      &status, &gave_up, err, errlen)))
            goto fail;
        descs = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(s->desc_ev), &nd);
        for (k = 0; k < s->n; k++)
            s->g[k].desc_err = RD_KAFKA_RESP_ERR__NOENT;
        for (size_t d = 0; d < nd; d++) {
            struct grp key = {.id = rd_kafka_ConsumerGroupDescription_group_id(descs[d])};
            struct grp *g = bsearch(&key, s->g, s->n, sizeof *s->g, cmp_grp);
            const rd_kafka_error_t *ge = rd_kafka_ConsumerGroupDescription_error(descs[d]);

            if (!g)
                continue;
            if (ge) {
                g->desc_err = rd_kafka_error_code(ge);
                continue;
            }
            g->desc = descs[d];
            g->desc_err = RD_KAFKA_RESP_ERR_NO_ERROR;
            g->state = rd_kafka_ConsumerGroupDescription_state(descs[d]);
            g->simple = rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(descs[d]);
        }
    }

    if ((status = get_metadata(ops, deadline, &s->md, err, errlen)) != 200)
        goto fail;
    for (int t = 0; t < s->md->topic_cnt; t++)
        if (!s->md->topics[t].err)
            s->nwm += (size_t)s->md->topics[t].partition_cnt;
    if (!(s->wm = xcalloc(s->nwm + 1, sizeof *s->wm)))
        goto oom;
    every = rd_kafka_topic_partition_list_new(s->nwm > INT_MAX ? INT_MAX : (int)s->nwm);
    k = 0;
    for (int t = 0; t < s->md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &s->md->topics[t];

        for (int p = 0; p < mt->partition_cnt && !mt->err; p++, k++) {
            s->wm[k] = (struct wm){mt->topic, mt->partitions[p].id, 0, -1, -1};
            rd_kafka_topic_partition_list_add(every, mt->topic, mt->partitions[p].id);
        }
    }
    qsort(s->wm, s->nwm, sizeof *s->wm, cmp_wm);

    /* One ListConsumerGroupOffsets per group (librdkafka takes one group
     * per request), all in flight at once; the opaque says whose. */
    for (k = 0; k < s->n; k++) {
        struct grp *g = &s->g[k];
        rd_kafka_ListConsumerGroupOffsets_t *req;

        g->offs_err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (every->cnt == 0 || g->desc_err == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            /* No partition, or no group: nothing committed. */
            g->offs_err = RD_KAFKA_RESP_ERR_NO_ERROR;
            continue;
        }
        req = rd_kafka_ListConsumerGroupOffsets_new(g->id, every);
        opts = admin_opts_rk(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                             OPS_COORD_REQUEST_TIMEOUT_MS);
        rd_kafka_AdminOptions_set_opaque(opts, g);
        rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
        pending++;
    }
    while (pending > 0) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left_ms(deadline) + OPS_ADMIN_MARGIN_MS);
        const rd_kafka_group_result_t **res;
        const rd_kafka_error_t *ge;
        struct grp *g;
        size_t n;

        if (!ev) {
            gave_up = 1;
            break; /* the rest stay __TIMED_OUT */
        }
        pending--;
        g = rd_kafka_event_opaque(ev);
        if (!g || rd_kafka_event_type(ev) != RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT) {
            rd_kafka_event_destroy(ev);
            continue;
        }
        if (rd_kafka_event_error(ev)) {
            g->offs_err = rd_kafka_event_error(ev);
            snprintf(g->offs_errstr, sizeof g->offs_errstr, "%s", rd_kafka_event_error_string(ev));
            rd_kafka_event_destroy(ev);
            continue;
        }
        res = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        if (n != 1) {
            g->offs_err = RD_KAFKA_RESP_ERR__BAD_MSG;
            snprintf(g->offs_errstr, sizeof g->offs_errstr,
                     "the cluster returned no result for the group");
            rd_kafka_event_destroy(ev);
            continue;
        }
        if ((ge = rd_kafka_group_result_error(res[0]))) {
            g->offs_err = rd_kafka_error_code(ge);
            snprintf(g->offs_errstr, sizeof g->offs_errstr, "%s", rd_kafka_error_string(ge));
            rd_kafka_event_destroy(ev);
            continue;
        }
        g->offs_ev = ev;
        g->offs = rd_kafka_group_result_partitions(res[0]);
        g->offs_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }

    /* The high watermarks of what is committed. */
    for (k = 0; k < s->n; k++)
        for (int p = 0; s->g[k].offs && p < s->g[k].offs->cnt; p++) {
            const rd_kafka_topic_partition_t *tp = &s->g[k].offs->elems[p];
            struct wm *w;

            if (!tp->err && tp->offset >= 0 &&
                (w = wm_find(s->wm, s->nwm, tp->topic, tp->partition)))
                w->need = 1;
        }
    watermarks(ops, s->wm, s->nwm, deadline);
    goto out;
oom:
    status = fail(err, errlen, 500, "out of memory");
fail:
    failed = 1;
out:
    if (every)
        rd_kafka_topic_partition_list_destroy(every);
    xfree(ids);
    rd_kafka_queue_destroy(q);
    /* Something is still queued in librdkafka: see the top of the file. */
    if (gave_up)
        coord_retire(ops, s->ch);
    if (failed)
        gsnap_free(s);
    return status;
}

/* The high watermark of a committed partition, -1 when unknown. */
static int64_t committed_high(const struct gsnap *s, const rd_kafka_topic_partition_t *tp)
{
    struct wm *w = wm_find(s->wm, s->nwm, tp->topic, tp->partition);

    return w ? w->hi : -1;
}

static int64_t lag_of(int64_t committed, int64_t high)
{
    if (high < 0)
        return -1;
    return high > committed ? high - committed : 0;
}

/* g's total lag: -1 when nothing is committed or a value is unknown. */
static int64_t group_lag(const struct gsnap *s, const struct grp *g)
{
    int64_t sum = 0;
    int any = 0;

    if (!g->offs)
        return -1;
    for (int p = 0; p < g->offs->cnt; p++) {
        const rd_kafka_topic_partition_t *tp = &g->offs->elems[p];
        int64_t lag;

        if (tp->err || tp->offset < 0)
            continue;
        if ((lag = lag_of(tp->offset, committed_high(s, tp))) < 0)
            return -1;
        sum += lag;
        any = 1;
    }
    return any ? sum : -1;
}

static const char *state_name(rd_kafka_consumer_group_state_t st)
{
    return rd_kafka_consumer_group_state_name(st);
}

int ops_groups(struct ops *ops, struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    struct gsnap s;
    struct jbuf b;
    int status;

    jbuf_init(&b);
    if ((status = groups_collect(ops, NULL, deadline, &s, err, errlen)) != 200)
        return finish(status, &b, out, err, errlen);
    json_w_obj_begin(&b, NULL);
    json_w_arr_begin(&b, "groups");
    for (size_t k = 0; k < s.n; k++) {
        const struct grp *g = &s.g[k];

        json_w_obj_begin(&b, NULL);
        w_cstr(&b, "group_id", g->id);
        json_w_cstr(&b, "state", state_name(g->state));
        json_w_cstr(&b, "protocol_type", g->simple ? "" : "consumer");
        json_w_int(&b, "members",
                   g->desc ? (int64_t)rd_kafka_ConsumerGroupDescription_member_count(g->desc) : 0);
        w_known(&b, "lag", group_lag(&s, g));
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_obj_end(&b);
    gsnap_free(&s);
    return finish(status, &b, out, err, errlen);
}

static int cmp_member(const void *x, const void *y)
{
    const rd_kafka_MemberDescription_t *p = *(const rd_kafka_MemberDescription_t *const *)x;
    const rd_kafka_MemberDescription_t *q = *(const rd_kafka_MemberDescription_t *const *)y;
    const char *a = rd_kafka_MemberDescription_consumer_id(p);
    const char *b = rd_kafka_MemberDescription_consumer_id(q);

    return strcmp(a ? a : "", b ? b : "");
}

static int cmp_tp(const void *x, const void *y)
{
    const rd_kafka_topic_partition_t *a = *(const rd_kafka_topic_partition_t *const *)x;
    const rd_kafka_topic_partition_t *b = *(const rd_kafka_topic_partition_t *const *)y;
    int c = strcmp(a->topic, b->topic);

    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* The elements of l (may be NULL) sorted by topic, partition, as an owned
 * array of views (xfree), or NULL when out of memory. */
static const rd_kafka_topic_partition_t **sorted_tps(const rd_kafka_topic_partition_list_t *l,
                                                      size_t *n)
{
    size_t cnt = l && l->cnt > 0 ? (size_t)l->cnt : 0;
    const rd_kafka_topic_partition_t **v = xcalloc(cnt + 1, sizeof *v);

    *n = cnt;
    if (!v)
        return NULL;
    for (size_t k = 0; k < cnt; k++)
        v[k] = &l->elems[k];
    qsort(v, cnt, sizeof *v, cmp_tp);
    return v;
}

int ops_group(struct ops *ops, const char *group, struct jbuf *out, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    const rd_kafka_MemberDescription_t **members = NULL;
    const rd_kafka_topic_partition_t **offs = NULL;
    const rd_kafka_Node_t *node;
    const struct grp *g;
    const char *assignor;
    size_t nmembers = 0, noffs = 0, ncommitted = 0;
    struct gsnap s;
    struct jbuf b;
    char what[300];
    int status;

    jbuf_init(&b);
    memset(&s, 0, sizeof s);
    if (!group || !*group) {
        status = fail(err, errlen, 404, "the consumer group '' does not exist");
        goto out;
    }
    if ((status = groups_collect(ops, group, deadline, &s, err, errlen)) != 200)
        goto out;
    g = &s.g[0];
    snprintf(what, sizeof what, "could not describe consumer group '%s'", group);
    if (g->desc_err == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
        status = fail(err, errlen, 404, "consumer group '%s' does not exist", group);
        goto out;
    }
    if (!g->desc) {
        status = fail_kafka(ops, err, errlen, what, g->desc_err, NULL);
        goto out;
    }
    if (!g->offs && g->offs_err) {
        snprintf(what, sizeof what, "could not read the committed offsets of consumer group '%s'",
                 group);
        status = fail_kafka(ops, err, errlen, what, g->offs_err, g->offs_errstr);
        goto out;
    }
    if (!(offs = sorted_tps(g->offs, &noffs)))
        goto oom;
    for (size_t k = 0; k < noffs; k++)
        ncommitted += !offs[k]->err && offs[k]->offset >= 0;
    if (g->state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD && ncommitted == 0) {
        status = fail(err, errlen, 404, "consumer group '%s' does not exist", group);
        goto out;
    }
    nmembers = rd_kafka_ConsumerGroupDescription_member_count(g->desc);
    if (!(members = xcalloc(nmembers + 1, sizeof *members)))
        goto oom;
    for (size_t k = 0; k < nmembers; k++)
        members[k] = rd_kafka_ConsumerGroupDescription_member(g->desc, k);
    qsort(members, nmembers, sizeof *members, cmp_member);
    assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(g->desc);
    node = rd_kafka_ConsumerGroupDescription_coordinator(g->desc);

    json_w_obj_begin(&b, NULL);
    w_cstr(&b, "group_id", group);
    json_w_cstr(&b, "state", state_name(g->state));
    json_w_cstr(&b, "protocol_type", g->simple ? "" : "consumer");
    w_cstr(&b, "protocol", assignor ? assignor : "");
    json_w_int(&b, "coordinator", node ? rd_kafka_Node_id(node) : -1);
    json_w_arr_begin(&b, "members");
    for (size_t k = 0; k < nmembers; k++) {
        const rd_kafka_topic_partition_t **as;
        size_t nas;

        json_w_obj_begin(&b, NULL);
        w_cstr(&b, "member_id", rd_kafka_MemberDescription_consumer_id(members[k]));
        w_cstr(&b, "client_id", rd_kafka_MemberDescription_client_id(members[k]));
        w_cstr(&b, "host", rd_kafka_MemberDescription_host(members[k]));
        json_w_arr_begin(&b, "assignments");
        if (!(as = sorted_tps(rd_kafka_MemberAssignment_partitions(
                                  rd_kafka_MemberDescription_assignment(members[k])),
                              &nas)))
            goto oom;
        for (size_t a = 0; a < nas; a++) {
            json_w_obj_begin(&b, NULL);
            w_cstr(&b, "topic", as[a]->topic);
            json_w_int(&b, "partition", as[a]->partition);
            json_w_obj_end(&b);
        }
        xfree(as);
        json_w_arr_end(&b);
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_arr_begin(&b, "offsets");
    for (size_t k = 0; k < noffs; k++) {
        int64_t high;

        if (offs[k]->err || offs[k]->offset < 0)
            continue;
        high = committed_high(&s, offs[k]);
        json_w_obj_begin(&b, NULL);
        w_cstr(&b, "topic", offs[k]->topic);
        json_w_int(&b, "partition", offs[k]->partition);
        json_w_int(&b, "committed", offs[k]->offset);
        w_known(&b, "high", high);
        w_known(&b, "lag", lag_of(offs[k]->offset, high));
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    w_known(&b, "lag", group_lag(&s, g));
    json_w_obj_end(&b);
    goto out;
oom:
    b.oom = 1;
out:
    xfree(members);
    xfree(offs);
    gsnap_free(&s);
    return finish(status, &b, out, err, errlen);
}

static int cmp_lag(const void *x, const void *y)
{
    const struct ops_lag *a = x, *b = y;
    int c = strcmp(a->group, b->group);

    if (!c)
        c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

void ops_lags_free(struct ops_lag *v, size_t n)
{
    for (size_t k = 0; v && k < n; k++) {
        xfree(v[k].group);
        xfree(v[k].topic);
    }
    xfree(v);
}

int ops_lags(struct ops *ops, struct ops_lag **out, size_t *n, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + ops->timeout_ms;
    struct ops_lag *v = NULL;
    size_t cnt = 0, cap = 0;
    struct gsnap s;
    int status;

    *out = NULL;
    *n = 0;
    if ((status = groups_collect(ops, NULL, deadline, &s, err, errlen)) != 200) {
        err_utf8(err, errlen);
        return status;
    }
    for (size_t k = 0; k < s.n; k++)
        for (int p = 0; s.g[k].offs && p < s.g[k].offs->cnt; p++) {
            const rd_kafka_topic_partition_t *tp = &s.g[k].offs->elems[p];
            struct ops_lag *l;

            if (tp->err || tp->offset < 0)
                continue;
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct ops_lag *grown = xrealloc(v, nc * sizeof *v);

                if (!grown)
                    goto oom;
                v = grown;
                cap = nc;
            }
            l = &v[cnt];
            l->group = xstrdup(s.g[k].id);
            l->topic = xstrdup(tp->topic);
            if (!l->group || !l->topic) {
                xfree(l->group);
                xfree(l->topic);
                goto oom;
            }
            cnt++;
            l->partition = tp->partition;
            l->committed = tp->offset;
            l->high = committed_high(&s, tp);
            l->lag = lag_of(tp->offset, l->high);
        }
    gsnap_free(&s);
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, cmp_lag);
    *out = cnt ? v : NULL;
    if (!cnt)
        xfree(v);
    *n = cnt;
    return 200;
oom:
    gsnap_free(&s);
    ops_lags_free(v, cnt);
    return fail(err, errlen, 500, "out of memory");
}
