/* views.c: the in-memory materialisation of the shop's result topics for
 * `shopstream serve` (see views.h for the contract and the bounds).
 *
 * One lock (a rwlock) guards everything: the consumer thread takes it for
 * writing once per batch of records, the HTTP threads for reading.  Values
 * are kept as the JSON text the processors wrote, checked once on arrival,
 * and copied into responses as they are. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"
#include "serve/views.h"
#include "shop/event.h"

#define CMD "shopstream serve"
#define BATCH 1000
#define METADATA_EVERY_MS 2000
#define SSE_MIN_GAP_MS 250
#define SSE_MAX_ALERTS 50

static const char *const window_names[VIEWS_NWINDOWS] = {"1m", "1h", "1d"};
static const int64_t window_ms[VIEWS_NWINDOWS] = {60000, 3600000, 86400000};

/* One window's newest record. */
struct kpi {
    int64_t start;
    char *json;          /* owned */
    size_t len;
    uint64_t seq;        /* views seq when it last changed */
};

struct kpi_series {
    struct kpi *v;       /* ascending start; owned */
    size_t n, cap;
    uint64_t seq;        /* newest change of any window of this size */
};

struct history_event {
    int64_t ts;
    char *id;            /* owned */
    char *json;          /* owned */
    size_t len;
};

struct order {
    char *id;            /* owned; NULL when the slot is free */
    char *state;         /* owned shop.order-state value, or NULL */
    size_t state_len;
    struct history_event *hist; /* ts order; owned */
    size_t nhist, caphist;
    uint64_t touched;    /* views seq of the last change, for eviction */
};

struct rec {
    char *key;           /* owned */
    char *json;          /* owned */
    size_t len;
};

struct alert {
    char *key;           /* owned */
    char *json;          /* owned */
    size_t len;
    uint64_t seq;        /* 1, 2, ... in arrival order */
};

struct views {
    pthread_rwlock_t lock;
    pthread_mutex_t sub_mu;    /* with sub_cv: wakes subscribers */
    pthread_cond_t sub_cv;
    uint64_t seq;              /* bumped on every change */
    int closing;               /* subscribers must end */
    int stop;                  /* the consumer thread must end */
    pthread_t thread;
    rd_kafka_t *rk;
    const struct client_opts *co;

    struct kpi_series kpis[VIEWS_NWINDOWS];

    struct order *orders;      /* slots; owned */
    size_t norders_slots, cap_orders;
    size_t norders;            /* live slots */
    uint32_t *free_slots;      /* owned */
    size_t nfree, capfree;
    struct strmap *order_ix;   /* order id -> slot */
    long max_orders;
    uint32_t recent[VIEWS_MAX_RECENT]; /* ring of slots, newest at recent_head - 1 */
    uint64_t recent_touch[VIEWS_MAX_RECENT]; /* touched when put in the ring */
    size_t recent_head, nrecent;
    uint64_t order_seq;        /* seq of the last order change */
    uint32_t last_order;       /* its slot */

    struct rec *recs;          /* owned */
    size_t nrecs, caprecs;
    struct strmap *rec_ix;     /* key -> index */

    struct alert alerts[VIEWS_MAX_ALERTS]; /* ring */
    uint64_t alert_seq;        /* seq number of the newest alert */

    /* partitions being read */
    struct part_pos {
        char topic[32];
        int32_t partition;
        int eof;
    } *parts;
    size_t nparts, capparts;

    long long records, rejected;
    struct shop_event ev;      /* parse scratch, consumer thread */
    char *scratch;             /* JSON check scratch, consumer thread */
    size_t scratch_cap;
};

struct views_sub {
    struct views *v;
    uint64_t kpi_seen[VIEWS_NWINDOWS];
    uint64_t alert_seen;
    uint64_t order_seen;
    int64_t last_send_ms;
};

static const char *const topics[] = {SHOP_TOPIC_KPIS,   SHOP_TOPIC_ORDER_STATE, SHOP_TOPIC_RECS,
                                     SHOP_TOPIC_ALERTS, SHOP_TOPIC_ORDERS,      SHOP_TOPIC_AFTERSALES};
#define NTOPICS (sizeof topics / sizeof topics[0])

int views_window_parse(const char *s)
{
    for (int w = 0; w < VIEWS_NWINDOWS; w++)
        if (s && !strcmp(s, window_names[w]))
            return w;
    return -1;
}

/* --- checking values ------------------------------------------------------ */

/* 1 when s[0..n) is one well-formed JSON object. */
static int is_json_object(struct views *v, const char *s, size_t n)
{
    if (n == 0 || n > VIEWS_MAX_VALUE)
        return 0;
    if (v->scratch_cap < n + 1) {
        char *p = xrealloc(v->scratch, n + 1);
        if (!p)
            return 0;
        v->scratch = p;
        v->scratch_cap = n + 1;
    }
    struct json_reader r;
    struct json_token t;
    json_reader_init(&r, s, n, v->scratch, v->scratch_cap);
    if (json_next(&r, &t) != 1 || t.kind != JSON_OBJECT)
        return 0;
    if (json_skip(&r, &t) < 0)
        return 0;
    return json_next(&r, &t) == 0;
}

/* Copies s[0..n) into a NUL-terminated owned string. */
static char *dup_n(const char *s, size_t n)
{
    return xstrndup(s ? s : "", s ? n : 0);
}

/* --- shop.kpis ----------------------------------------------------------- */

static size_t kpi_lower_bound(const struct kpi_series *ks, int64_t start)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->v[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Parses "<1m|1h|1d>@<start>". */
static int parse_kpi_key(const char *k, size_t n, int *window, int64_t *start)
{
    const char *at = memchr(k, '@', n);
    if (!at || at == k || (size_t)(at - k) > 3)
        return -1;
    char w[4] = {0};
    memcpy(w, k, (size_t)(at - k));
    if ((*window = views_window_parse(w)) < 0)
        return -1;
    const char *d = at + 1, *end = k + n;
    if (d == end || end - d > 18)
        return -1;
    int64_t x = 0;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        x = x * 10 + (*d - '0');
    }
    if (x % window_ms[*window] != 0)
        return -1;
    *start = x;
    return 0;
}

static int on_kpi(struct views *v, const char *key, size_t klen, const char *val, size_t vlen)
{
    int w;
    int64_t start;
    if (!key || parse_kpi_key(key, klen, &w, &start) < 0 || !val || !is_json_object(v, val, vlen))
        return -1;
    struct kpi_series *ks = &v->kpis[w];
    size_t i = kpi_lower_bound(ks, start);
    char *copy = dup_n(val, vlen);
    if (!copy)
        return -1;
    if (i < ks->n && ks->v[i].start == start) {
        xfree(ks->v[i].json);
    } else {
        if (ks->n == VIEWS_MAX_WINDOWS) {
            if (i == 0) { /* older than everything kept */
                xfree(copy);
                return 0;
            }
            xfree(ks->v[0].json);
            memmove(ks->v, ks->v + 1, (ks->n - 1) * sizeof *ks->v);
            ks->n--;
            i--;
        }
        if (ks->n == ks->cap) {
            size_t cap = ks->cap ? ks->cap * 2 : 256;
            struct kpi *p = xrealloc(ks->v, cap * sizeof *p);
            if (!p) {
                xfree(copy);
                return -1;
            }
            ks->v = p;
            ks->cap = cap;
        }
        memmove(ks->v + i + 1, ks->v + i, (ks->n - i) * sizeof *ks->v);
        ks->n++;
        ks->v[i].start = start;
    }
    ks->v[i].json = copy;
    ks->v[i].len = vlen;
    ks->v[i].seq = ++v->seq;
    ks->seq = v->seq;
    return 0;
}

/* --- orders ----------------------------------------------------------------- */

static void order_clear(struct order *o)
{
    xfree(o->id);
    xfree(o->state);
    for (size_t k = 0; k < o->nhist; k++) {
        xfree(o->hist[k].id);
        xfree(o->hist[k].json);
    }
    xfree(o->hist);
    memset(o, 0, sizeof *o);
}

static void order_drop(struct views *v, uint32_t slot)
{
    struct order *o = &v->orders[slot];
    strmap_del(v->order_ix, o->id);
    order_clear(o);
    v->norders--;
    if (v->nfree == v->capfree) {
        size_t cap = v->capfree ? v->capfree * 2 : 64;
        uint32_t *p = xrealloc(v->free_slots, cap * sizeof *p);
        if (!p)
            return; /* the slot is lost, not the memory of its order */
        v->free_slots = p;
        v->capfree = cap;
    }
    v->free_slots[v->nfree++] = slot;
}

/* Drops the least recently changed order.  A linear scan, but it runs once
 * per new order only when the cap is reached; the cap is large, so serve
 * with many more orders than max_orders should raise it. */
static void order_evict_one(struct views *v)
{
    uint64_t best = UINT64_MAX;
    uint32_t at = 0;
    for (size_t k = 0; k < v->norders_slots; k++)
        if (v->orders[k].id && v->orders[k].touched < best) {
            best = v->orders[k].touched;
            at = (uint32_t)k;
        }
    if (best != UINT64_MAX)
        order_drop(v, at);
}

/* The slot of order id, created when create is set.  Returns -1 when absent
 * or out of memory. */
static long order_slot(struct views *v, const char *id, int create)
{
    uint32_t slot;
    if (strmap_get(v->order_ix, id, &slot))
        return slot;
    if (!create)
        return -1;
    if ((long)v->norders >= v->max_orders)
        order_evict_one(v);
    if (v->nfree) {
        slot = v->free_slots[--v->nfree];
    } else {
        if (v->norders_slots == v->cap_orders) {
            size_t cap = v->cap_orders ? v->cap_orders * 2 : 1024;
            struct order *p = xrealloc(v->orders, cap * sizeof *p);
            if (!p)
                return -1;
            v->orders = p;
            v->cap_orders = cap;
        }
        slot = (uint32_t)v->norders_slots++;
    }
    struct order *o = &v->orders[slot];
    memset(o, 0, sizeof *o);
    if (!(o->id = xstrdup(id)) || strmap_put(v->order_ix, id, slot, NULL) < 0) {
        xfree(o->id);
        o->id = NULL;
        if (slot == v->norders_slots - 1)
            v->norders_slots--;
        else if (v->nfree < v->capfree)
            v->free_slots[v->nfree++] = slot; /* it came from there */
        return -1;
    }
    v->norders++;
    return slot;
}

static void order_touched(struct views *v, uint32_t slot)
{
    v->orders[slot].touched = ++v->seq;
    v->recent[v->recent_head] = slot;
    v->recent_touch[v->recent_head] = v->seq;
    v->recent_head = (v->recent_head + 1) % VIEWS_MAX_RECENT;
    if (v->nrecent < VIEWS_MAX_RECENT)
        v->nrecent++;
    v->order_seq = v->seq;
    v->last_order = slot;
}

/* Keys are ids: printable, bounded, no NUL. */
static int valid_id(const char *k, size_t n)
{
    if (!k || n == 0 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20)
            return 0;
    return 1;
}

static int on_order_state(struct views *v, const char *key, size_t klen, const char *val,
                          size_t vlen)
{
    if (!valid_id(key, klen))
        return -1;
    char id[257];
    memcpy(id, key, klen);
    id[klen] = 0;
    if (!val) { /* tombstone */
        long slot = order_slot(v, id, 0);
        if (slot >= 0)
            order_drop(v, (uint32_t)slot);
        return 0;
    }
    if (!is_json_object(v, val, vlen))
        return -1;
    long slot = order_slot(v, id, 1);
    if (slot < 0)
        return -1;
    struct order *o = &v->orders[slot];
    char *copy = dup_n(val, vlen);
    if (!copy)
        return -1;
    xfree(o->state);
    o->state = copy;
    o->state_len = vlen;
    order_touched(v, (uint32_t)slot);
    return 0;
}

static int on_order_event(struct views *v, const char *key, size_t klen, const char *val,
                          size_t vlen)
{
    if (!valid_id(key, klen) || !val || vlen > VIEWS_MAX_VALUE)
        return -1;
    if (shop_event_parse(&v->ev, val, vlen, NULL, 0) < 0)
        return -1;
    struct shop_str oid = v->ev.order_id;
    if (!oid.p || oid.n != klen || memcmp(oid.p, key, klen) != 0)
        return -1;
    char id[257];
    memcpy(id, key, klen);
    id[klen] = 0;
    long slot = order_slot(v, id, 1);
    if (slot < 0)
        return -1;
    struct order *o = &v->orders[slot];
    for (size_t k = 0; k < o->nhist; k++)
        if (!strcmp(o->hist[k].id, v->ev.id.p))
            return 0; /* a duplicate */
    if (o->nhist == VIEWS_MAX_HISTORY)
        return 0;     /* the state still tells the rest */
    if (o->nhist == o->caphist) {
        size_t cap = o->caphist ? o->caphist * 2 : 4;
        struct history_event *p = xrealloc(o->hist, cap * sizeof *p);
        if (!p)
            return -1;
        o->hist = p;
        o->caphist = cap;
    }
    struct history_event h = {.ts = v->ev.ts, .id = dup_n(v->ev.id.p, v->ev.id.n),
                              .json = dup_n(val, vlen), .len = vlen};
    if (!h.id || !h.json) {
        xfree(h.id);
        xfree(h.json);
        return -1;
    }
    size_t at = o->nhist;
    while (at > 0 && o->hist[at - 1].ts > h.ts)
        at--;
    memmove(o->hist + at + 1, o->hist + at, (o->nhist - at) * sizeof *o->hist);
    o->hist[at] = h;
    o->nhist++;
    order_touched(v, (uint32_t)slot);
    return 0;
}

/* --- shop.recs and shop.alerts ------------------------------------------------ */

static int on_rec(struct views *v, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (!valid_id(key, klen))
        return -1;
    char k[257];
    memcpy(k, key, klen);
    k[klen] = 0;
    uint32_t ix;
    int have = strmap_get(v->rec_ix, k, &ix);
    if (!val) {
        if (have) { /* move the last entry into the hole */
            xfree(v->recs[ix].key);
            xfree(v->recs[ix].json);
            strmap_del(v->rec_ix, k);
            if (ix != v->nrecs - 1) {
                v->recs[ix] = v->recs[v->nrecs - 1];
                strmap_put(v->rec_ix, v->recs[ix].key, ix, NULL);
            }
            v->nrecs--;
        }
        return 0;
    }
    if (!is_json_object(v, val, vlen))
        return -1;
    char *copy = dup_n(val, vlen);
    if (!copy)
        return -1;
    if (have) {
        xfree(v->recs[ix].json);
    } else {
        if (v->nrecs == v->caprecs) {
            size_t cap = v->caprecs ? v->caprecs * 2 : 256;
            struct rec *p = xrealloc(v->recs, cap * sizeof *p);
            if (!p) {
                xfree(copy);
                return -1;
            }
            v->recs = p;
            v->caprecs = cap;
        }
        ix = (uint32_t)v->nrecs;
        if (!(v->recs[ix].key = xstrdup(k)) || strmap_put(v->rec_ix, k, ix, NULL) < 0) {
            xfree(v->recs[ix].key);
            xfree(copy);
            return -1;
        }
        v->nrecs++;
    }
    v->recs[ix].json = copy;
    v->recs[ix].len = vlen;
    v->seq++;
    return 0;
}

static int on_alert(struct views *v, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (!val || !is_json_object(v, val, vlen) || (key && !valid_id(key, klen)))
        return -1;
    char *k = key ? dup_n(key, klen) : NULL, *copy = dup_n(val, vlen);
    if ((key && !k) || !copy) {
        xfree(k);
        xfree(copy);
        return -1;
    }
    struct alert *a = &v->alerts[(v->alert_seq) % VIEWS_MAX_ALERTS];
    xfree(a->key);
    xfree(a->json);
    a->key = k;
    a->json = copy;
    a->len = vlen;
    a->seq = ++v->alert_seq;
    v->seq++;
    return 0;
}

/* --- the consumer thread ------------------------------------------------------ */

static void apply(struct views *v, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        for (size_t k = 0; k < v->nparts; k++)
            if (v->parts[k].partition == m->partition && !strcmp(v->parts[k].topic, topic))
                v->parts[k].eof = 1;
        return;
    }
    if (m->err)
        return;
    for (size_t k = 0; k < v->nparts; k++)
        if (v->parts[k].partition == m->partition && !strcmp(v->parts[k].topic, topic))
            v->parts[k].eof = 0;
    const char *key = m->key, *val = m->payload;
    size_t klen = m->key_len, vlen = m->len;
    int rc;
    v->records++;
    if (!strcmp(topic, SHOP_TOPIC_KPIS))
        rc = on_kpi(v, key, klen, val, vlen);
    else if (!strcmp(topic, SHOP_TOPIC_ORDER_STATE))
        rc = on_order_state(v, key, klen, val, vlen);
    else if (!strcmp(topic, SHOP_TOPIC_RECS))
        rc = on_rec(v, key, klen, val, vlen);
    else if (!strcmp(topic, SHOP_TOPIC_ALERTS))
        rc = on_alert(v, key, klen, val, vlen);
    else
        rc = on_order_event(v, key, klen, val, vlen);
    if (rc < 0)
        v->rejected++;
}

/* Assigns partitions of our topics that are not read yet, from their
 * beginning. */
static void discover(struct views *v)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(v->rk, 1, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_topic_partition_list_t *add = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        int ours = 0;
        for (size_t k = 0; k < NTOPICS; k++)
            ours |= !strcmp(mt->topic, topics[k]);
        if (!ours || mt->err)
            continue;
        for (int p = 0; p < mt->partition_cnt; p++) {
            int32_t id = mt->partitions[p].id;
            int known = 0;
            for (size_t k = 0; k < v->nparts && !known; k++)
                known = v->parts[k].partition == id && !strcmp(v->parts[k].topic, mt->topic);
            if (known)
                continue;
            if (v->nparts == v->capparts) {
                size_t cap = v->capparts ? v->capparts * 2 : 64;
                struct part_pos *np = xrealloc(v->parts, cap * sizeof *np);
                if (!np)
                    break;
                v->parts = np;
                v->capparts = cap;
            }
            struct part_pos *pp = &v->parts[v->nparts++];
            snprintf(pp->topic, sizeof pp->topic, "%s", mt->topic);
            pp->partition = id;
            pp->eof = 0;
            rd_kafka_topic_partition_list_add(add, mt->topic, id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        }
    }
    if (add->cnt > 0) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(v->rk, add);
        if (e) {
            log_warn("serve: cannot read the result topics: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(add);
    rd_kafka_metadata_destroy(md);
}

static void wake_subscribers(struct views *v)
{
    pthread_mutex_lock(&v->sub_mu);
    pthread_cond_broadcast(&v->sub_cv);
    pthread_mutex_unlock(&v->sub_mu);
}

static void *run(void *arg)
{
    struct views *v = arg;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(v->rk);
    rd_kafka_message_t *batch[BATCH];
    int64_t next_discover = 0;
    while (!__atomic_load_n(&v->stop, __ATOMIC_RELAXED)) {
        int64_t now = clock_mono_ms();
        if (now >= next_discover) {
            discover(v);
            next_discover = now + METADATA_EVERY_MS;
        }
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, batch, BATCH);
        if (n <= 0)
            continue;
        uint64_t before;
        pthread_rwlock_wrlock(&v->lock);
        before = v->seq;
        for (ssize_t i = 0; i < n; i++)
            apply(v, batch[i]);
        int changed = v->seq != before;
        pthread_rwlock_unlock(&v->lock);
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(batch[i]);
        if (changed)
            wake_subscribers(v);
    }
    rd_kafka_queue_destroy(q);
    return NULL;
}

struct views *views_start(const struct client_opts *o, long max_orders, char *err,
                          size_t errlen)
{
    struct views *v = xcalloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_rwlock_init(&v->lock, NULL);
    pthread_mutex_init(&v->sub_mu, NULL);
    pthread_cond_init(&v->sub_cv, NULL);
    v->co = o;
    v->max_orders = max_orders > 0 ? max_orders : VIEWS_DEFAULT_MAX_ORDERS;
    shop_event_init(&v->ev);
    v->order_ix = strmap_new();
    v->rec_ix = strmap_new();
    static const char *const defaults[] = {"enable.partition.eof", "true",
                                           "enable.auto.commit", "false",
                                           "enable.auto.offset.store", "false",
                                           "group.id", "shopstream-serve",
                                           "queued.min.messages", "10000",
                                           NULL};
    rd_kafka_conf_t *conf = NULL;
    if (!v->order_ix || !v->rec_ix) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(conf = client_conf_new(o, CMD, RD_KAFKA_CONSUMER, defaults)) ||
        !(v->rk = client_handle_new(CMD, RD_KAFKA_CONSUMER, conf))) {
        snprintf(err, errlen, "cannot create a Kafka consumer");
        goto fail;
    }
    rd_kafka_poll_set_consumer(v->rk);
    if (pthread_create(&v->thread, NULL, run, v) != 0) {
        snprintf(err, errlen, "cannot start a thread");
        goto fail;
    }
    return v;
fail:
    if (v->rk)
        rd_kafka_destroy(v->rk);
    v->rk = NULL;
    strmap_free(v->order_ix);
    strmap_free(v->rec_ix);
    shop_event_free(&v->ev);
    xfree(v);
    return NULL;
}

void views_close_subscribers(struct views *v)
{
    pthread_mutex_lock(&v->sub_mu);
    v->closing = 1;
    pthread_cond_broadcast(&v->sub_cv);
    pthread_mutex_unlock(&v->sub_mu);
}

void views_stop(struct views *v)
{
    if (!v)
        return;
    views_close_subscribers(v);
    __atomic_store_n(&v->stop, 1, __ATOMIC_RELAXED);
    pthread_join(v->thread, NULL);
    rd_kafka_consumer_close(v->rk);
    rd_kafka_destroy(v->rk);
    for (int w = 0; w < VIEWS_NWINDOWS; w++) {
        for (size_t k = 0; k < v->kpis[w].n; k++)
            xfree(v->kpis[w].v[k].json);
        xfree(v->kpis[w].v);
    }
    for (size_t k = 0; k < v->norders_slots; k++)
        if (v->orders[k].id)
            order_clear(&v->orders[k]);
    xfree(v->orders);
    xfree(v->free_slots);
    for (size_t k = 0; k < v->nrecs; k++) {
        xfree(v->recs[k].key);
        xfree(v->recs[k].json);
    }
    xfree(v->recs);
    for (size_t k = 0; k < VIEWS_MAX_ALERTS; k++) {
        xfree(v->alerts[k].key);
        xfree(v->alerts[k].json);
    }
    xfree(v->parts);
    xfree(v->scratch);
    strmap_free(v->order_ix);
    strmap_free(v->rec_ix);
    shop_event_free(&v->ev);
    pthread_rwlock_destroy(&v->lock);
    pthread_mutex_destroy(&v->sub_mu);
    pthread_cond_destroy(&v->sub_cv);
    xfree(v);
}

/* --- queries ---------------------------------------------------------------- */

int views_kpis(struct views *v, int window, int64_t from, int64_t to, int limit,
               struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    const struct kpi_series *ks = &v->kpis[window];
    size_t lo, hi;
    if (from >= 0 || to >= 0) {
        lo = from >= 0 ? kpi_lower_bound(ks, from) : 0;
        hi = to >= 0 ? kpi_lower_bound(ks, to) : ks->n;
        if (hi < lo)
            hi = lo;
        if (hi - lo > (size_t)limit) /* a range keeps its oldest windows */
            hi = lo + (size_t)limit;
    } else {
        hi = ks->n;
        lo = hi > (size_t)limit ? hi - (size_t)limit : 0;
    }
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "window", window_names[window]);
    json_w_arr_begin(out, "kpis");
    for (size_t k = lo; k < hi; k++)
        json_w_raw(out, NULL, ks->v[k].json, ks->v[k].len);
    json_w_arr_end(out);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

int views_kpis_latest(struct views *v, int window, struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    const struct kpi_series *ks = &v->kpis[window];
    const struct kpi *cur = ks->n ? &ks->v[ks->n - 1] : NULL;
    const struct kpi *prev = NULL;
    if (ks->n >= 2 && ks->v[ks->n - 2].start == cur->start - window_ms[window])
        prev = &ks->v[ks->n - 2];
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "window", window_names[window]);
    if (cur)
        json_w_raw(out, "current", cur->json, cur->len);
    else
        json_w_null(out, "current");
    if (prev)
        json_w_raw(out, "previous", prev->json, prev->len);
    else
        json_w_null(out, "previous");
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

/* The newest distinct orders of the ring with a state, newest first. */
int views_orders_recent(struct views *v, int limit, struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    json_w_obj_begin(out, NULL);
    json_w_arr_begin(out, "orders");
    int n = 0;
    for (size_t k = 0; k < v->nrecent && n < limit; k++) {
        size_t at = (v->recent_head + VIEWS_MAX_RECENT - 1 - k) % VIEWS_MAX_RECENT;
        const struct order *o = &v->orders[v->recent[at]];
        /* a slot appears once: at its newest touch; a reused slot's old
         * entries do not match its touch */
        if (!o->id || o->touched != v->recent_touch[at] || !o->state)
            continue;
        json_w_raw(out, NULL, o->state, o->state_len);
        n++;
    }
    json_w_arr_end(out);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

int views_order(struct views *v, const char *order_id, struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    long slot = order_slot(v, order_id, 0);
    if (slot < 0) {
        pthread_rwlock_unlock(&v->lock);
        return 404;
    }
    const struct order *o = &v->orders[slot];
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "order_id", o->id);
    if (o->state)
        json_w_raw(out, "state", o->state, o->state_len);
    else
        json_w_null(out, "state");
    json_w_arr_begin(out, "history");
    for (size_t k = 0; k < o->nhist; k++)
        json_w_raw(out, NULL, o->hist[k].json, o->hist[k].len);
    json_w_arr_end(out);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

int views_recs(struct views *v, const char *key, struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    uint32_t ix;
    if (!strmap_get(v->rec_ix, key, &ix)) {
        pthread_rwlock_unlock(&v->lock);
        return 404;
    }
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "key", v->recs[ix].key);
    json_w_raw(out, "value", v->recs[ix].json, v->recs[ix].len);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

int views_recs_keys(struct views *v, const char *kind, int limit, struct jbuf *out)
{
    size_t kl = strlen(kind);
    pthread_rwlock_rdlock(&v->lock);
    json_w_obj_begin(out, NULL);
    json_w_arr_begin(out, "keys");
    int n = 0;
    for (size_t k = 0; k < v->nrecs && n < limit; k++) {
        const char *key = v->recs[k].key;
        if (!strncmp(key, kind, kl) && key[kl] == ':') {
            json_w_cstr(out, NULL, key + kl + 1);
            n++;
        }
    }
    json_w_arr_end(out);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

/* An alert object with "key" as its first member. */
static void write_alert(struct jbuf *out, const struct alert *a)
{
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "key", a->key);
    /* the stored value is a checked object: splice its members in */
    const char *p = a->json + 1, *e = a->json + a->len;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    while (e > p && e[-1] != '}')
        e--;
    if (e > p && *p != '}') {
        jbuf_raw(out, ",", 1);
        jbuf_raw(out, p, (size_t)(e - 1 - p));
    }
    json_w_obj_end(out);
}

int views_alerts(struct views *v, int limit, struct jbuf *out)
{
    pthread_rwlock_rdlock(&v->lock);
    json_w_obj_begin(out, NULL);
    json_w_arr_begin(out, "alerts");
    uint64_t n = v->alert_seq < VIEWS_MAX_ALERTS ? v->alert_seq : VIEWS_MAX_ALERTS;
    if (n > (uint64_t)limit)
        n = (uint64_t)limit;
    for (uint64_t k = 0; k < n; k++)
        write_alert(out, &v->alerts[(v->alert_seq - 1 - k) % VIEWS_MAX_ALERTS]);
    json_w_arr_end(out);
    json_w_obj_end(out);
    pthread_rwlock_unlock(&v->lock);
    return 200;
}

static int caught_up(const struct views *v)
{
    if (v->nparts == 0)
        return 0;
    for (size_t k = 0; k < v->nparts; k++)
        if (!v->parts[k].eof)
            return 0;
    return 1;
}

void views_stats(struct views *v, struct views_stats *s)
{
    pthread_rwlock_rdlock(&v->lock);
    s->records = v->records;
    s->rejected = v->rejected;
    s->orders = (long long)v->norders;
    s->kpi_windows = 0;
    for (int w = 0; w < VIEWS_NWINDOWS; w++)
        s->kpi_windows += (long long)v->kpis[w].n;
    s->recs = (long long)v->nrecs;
    s->alerts_total = (long long)v->alert_seq;
    s->caught_up = caught_up(v);
    pthread_rwlock_unlock(&v->lock);
}

int views_summary(struct views *v, struct jbuf *out)
{
    struct views_stats s;
    views_stats(v, &s);
    json_w_obj_begin(out, NULL);
    json_w_int(out, "orders", s.orders);
    json_w_int(out, "kpi_windows", s.kpi_windows);
    json_w_int(out, "recs", s.recs);
    json_w_int(out, "alerts", s.alerts_total);
    json_w_int(out, "records", s.records);
    json_w_int(out, "rejected", s.rejected);
    json_w_bool(out, "caught_up", s.caught_up);
    json_w_obj_end(out);
    return 200;
}

/* --- live updates -------------------------------------------------------------- */

struct views_sub *views_subscribe(struct views *v)
{
    struct views_sub *s = xcalloc(1, sizeof *s);
    if (s)
        s->v = v;
    return s;
}

void views_unsubscribe(struct views_sub *s)
{
    xfree(s);
}

static void sse_event(struct jbuf *out, const char *name, const char *data, size_t n)
{
    jbuf_raw(out, "event: ", 7);
    jbuf_raw(out, name, strlen(name));
    jbuf_raw(out, "\ndata: ", 7);
    /* A line break in checked JSON can only be whitespace between tokens;
     * SSE ends a field at one, so it becomes a space. */
    const char *p = data, *e = data + n;
    while (p < e) {
        const char *nl = p;
        while (nl < e && *nl != '\n' && *nl != '\r')
            nl++;
        jbuf_raw(out, p, (size_t)(nl - p));
        if (nl < e)
            jbuf_raw(out, " ", 1);
        p = nl + 1;
    }
    jbuf_raw(out, "\n\n", 2);
}

/* Appends what changed since the subscriber's last read.  Returns 1 when
 * something was appended.  Read lock held. */
static int collect(struct views_sub *s, struct jbuf *out)
{
    struct views *v = s->v;
    size_t before = out->len;
    for (int w = 0; w < VIEWS_NWINDOWS; w++) {
        const struct kpi_series *ks = &v->kpis[w];
        if (ks->seq <= s->kpi_seen[w])
            continue;
        /* the previous window first, so that a page sees them in order */
        for (size_t k = ks->n >= 2 ? ks->n - 2 : 0; k < ks->n; k++)
            if (ks->v[k].seq > s->kpi_seen[w])
                sse_event(out, "kpi", ks->v[k].json, ks->v[k].len);
        s->kpi_seen[w] = ks->seq;
    }
    if (v->alert_seq > s->alert_seen) {
        uint64_t first = s->alert_seen + 1;
        if (v->alert_seq - first >= SSE_MAX_ALERTS)
            first = v->alert_seq - SSE_MAX_ALERTS + 1;
        struct jbuf one;
        jbuf_init(&one);
        for (uint64_t q = first; q <= v->alert_seq; q++) {
            jbuf_reset(&one);
            write_alert(&one, &v->alerts[(q - 1) % VIEWS_MAX_ALERTS]);
            if (!one.oom)
                sse_event(out, "alert", one.p, one.len);
        }
        jbuf_free(&one);
        s->alert_seen = v->alert_seq;
    }
    if (v->order_seq > s->order_seen) {
        const struct order *o = &v->orders[v->last_order];
        if (o->id && o->state)
            sse_event(out, "order", o->state, o->state_len);
        s->order_seen = v->order_seq;
    }
    return out->len > before;
}

int views_sub_read(struct views_sub *s, int timeout_ms, struct jbuf *out)
{
    struct views *v = s->v;
    /* pace: at most one batch of events per SSE_MIN_GAP_MS */
    int64_t now = clock_mono_ms();
    int64_t gap = s->last_send_ms + SSE_MIN_GAP_MS - now;
    if (s->last_send_ms && gap > 0) {
        struct timespec ts = {0, (long)gap * 1000000L};
        nanosleep(&ts, NULL);
    }
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&v->sub_mu);
        int closing = v->closing;
        pthread_mutex_unlock(&v->sub_mu);
        if (closing)
            return -1;
        pthread_rwlock_rdlock(&v->lock);
        int got = collect(s, out);
        pthread_rwlock_unlock(&v->lock);
        if (got) {
            s->last_send_ms = clock_mono_ms();
            return 0;
        }
        now = clock_mono_ms();
        if (now >= deadline) {
            jbuf_raw(out, ": ping\n\n", 8);
            return 0;
        }
        /* wait for the consumer thread's next change (or the deadline) */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t wait = deadline - now < 1000 ? deadline - now : 1000;
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&v->sub_mu);
        if (!v->closing)
            pthread_cond_timedwait(&v->sub_cv, &v->sub_mu, &until);
        pthread_mutex_unlock(&v->sub_mu);
    }
}
