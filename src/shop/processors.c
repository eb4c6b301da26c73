/* processors.c: what the processors share: settings, creation, their
 * metrics, and the dead-letter record (see processors.h and
 * proc_private.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "serve/metrics.h"
#include "shop/kpi.h"
#include "shop/proc_private.h"

void proc_settings_default(struct proc_settings *s)
{
    memset(s, 0, sizeof *s);
    s->rules.return_window_ms = ORDER_DEFAULT_RETURN_WINDOW_MS;
    s->rules.ship_sla_ms = ORDER_DEFAULT_SHIP_SLA_MS;
    s->rules.accept_orphan_refunds = 1;
    s->lateness_ms = PROC_DEFAULT_LATENESS_MS;
    s->refund_alert_amount = PROC_DEFAULT_REFUND_ALERT_AMOUNT;
    s->refund_window_ms = PROC_DEFAULT_REFUND_WINDOW_MS;
    s->order_retention_ms = PROC_DEFAULT_ORDER_RETENTION_MS;
    s->idle_timeout_ms = PROC_DEFAULT_IDLE_TIMEOUT_MS;
    s->partitions = 6;
    s->uv_exact_cap = KPI_DEFAULT_UV_EXACT_CAP;
}

/* --- /metrics ---------------------------------------------------------------
 * Each (kind, application name) is one label set, a group.  A scrape sums
 * the counters of the group's live processors and what its freed ones had
 * counted, so two instances in one process make one series, and a counter
 * never goes back while the process lives.  The collector runs under the
 * registry's mutex and takes groups_mu; nothing here takes them the other
 * way round (the collector is registered before groups_mu is taken). */

struct proc_group {
    struct proc_group *next;
    const char *kind;             /* static string */
    char name[200];               /* the application name */
    struct proc *live;            /* its processors, linked by group_next */
    struct proc_counts retired;   /* the counters of freed ones (gauges excluded) */
    struct proc_counts sum;       /* scratch for the collector */
    struct metrics_rate rate;     /* of events, for events_per_second */
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct proc_group *groups; /* owned; kept for the life of the process */
static pthread_once_t collector_once = PTHREAD_ONCE_INIT;

static void counts_add(struct proc_counts *to, const struct proc_counts *n, bool gauges)
{
    to->records += n->records;
    to->events += n->events;
    to->duplicates += n->duplicates;
    to->deadletters += n->deadletters;
    to->alerts += n->alerts;
    to->results += n->results;
    for (int z = 0; z < 3; z++)
        to->late_events[z] += n->late_events[z];
    to->observed += n->observed;
    to->orders_forgotten += n->orders_forgotten;
    if (gauges) {
        to->open_windows += n->open_windows;
        to->orders_held += n->orders_held;
    }
}

enum { F_RECORDS, F_EVENTS, F_DUPS, F_DEAD, F_ALERTS, F_RESULTS, F_OBSERVED, F_FORGOTTEN, F_HELD,
       F_WINDOWS };

static const struct {
    const char *name, *help;
    enum metrics_type type;
    const char *kind; /* only processors of this kind, or NULL for all */
} families[] = {
    [F_RECORDS] = {"shopstream_processor_records_total", "Input records processed.", METRICS_COUNTER, NULL},
    [F_EVENTS] = {"shopstream_processor_events_total", "Events taken in (valid or dead-lettered).",
                  METRICS_COUNTER, NULL},
    [F_DUPS] = {"shopstream_processor_duplicates_total", "Events seen before (by id) and skipped.",
                METRICS_COUNTER, NULL},
    [F_DEAD] = {"shopstream_processor_dead_letters_total", "Records sent to shop.deadletter.",
                METRICS_COUNTER, NULL},
    [F_ALERTS] = {"shopstream_processor_alerts_total", "Alerts sent to shop.alerts.", METRICS_COUNTER, NULL},
    [F_RESULTS] = {"shopstream_processor_results_total", "Result records produced.", METRICS_COUNTER, NULL},
    [F_OBSERVED] = {"shopstream_processor_observed_total", "Events the recommendation model learnt.",
                    METRICS_COUNTER, "recommend"},
    [F_FORGOTTEN] = {"shopstream_processor_orders_forgotten_total",
                     "Orders dropped from the state after their retention.", METRICS_COUNTER, "orders"},
    [F_HELD] = {"shopstream_processor_orders_held", "Orders held in the state stores.", METRICS_GAUGE,
                "orders"},
    [F_WINDOWS] = {"shopstream_processor_open_windows", "KPI windows held in memory.", METRICS_GAUGE,
                   "analytics"},
};

static long long family_value(const struct proc_counts *c, int f)
{
    switch (f) {
    case F_RECORDS: return c->records;
    case F_EVENTS: return c->events;
    case F_DUPS: return c->duplicates;
    case F_DEAD: return c->deadletters;
    case F_ALERTS: return c->alerts;
    case F_RESULTS: return c->results;
    case F_OBSERVED: return c->observed;
    case F_FORGOTTEN: return c->orders_forgotten;
    case F_HELD: return c->orders_held;
    default: return c->open_windows;
    }
}

/* The rendering thread, under the registry mutex. */
static void collect(struct metrics_writer *w, void *arg)
{
    (void)arg;
    static const char *const window[3] = {"1m", "1h", "1d"};
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&groups_mu);
    for (struct proc_group *g = groups; g; g = g->next) {
        g->sum = g->retired;
        for (struct proc *p = g->live; p; p = p->group_next) {
            struct proc_counts n;
            proc_counts(p, &n);
            counts_add(&g->sum, &n, true);
        }
    }
    for (int f = 0; f < (int)(sizeof families / sizeof families[0]); f++) {
        metrics_write_family(w, families[f].name, families[f].help, families[f].type);
        for (struct proc_group *g = groups; g; g = g->next)
            if (!families[f].kind || !strcmp(families[f].kind, g->kind))
                metrics_write_int(w, METRICS_LABELS({"processor", g->kind}, {"app", g->name}),
                                  family_value(&g->sum, f));
    }
    metrics_write_family(w, "shopstream_processor_late_events_total",
                         "Events whose event-time window had closed, counted as late, by window size.",
                         METRICS_COUNTER);
    for (struct proc_group *g = groups; g; g = g->next)
        for (int z = 0; z < 3 && !strcmp(g->kind, "analytics"); z++)
            metrics_write_int(w, METRICS_LABELS({"processor", g->kind}, {"app", g->name}, {"window", window[z]}),
                              g->sum.late_events[z]);
    metrics_write_family(w, "shopstream_processor_events_per_second",
                         "Events taken in per second, over the last 10 seconds or since the last scrape.",
                         METRICS_GAUGE);
    for (struct proc_group *g = groups; g; g = g->next)
        metrics_write_double(w, METRICS_LABELS({"processor", g->kind}, {"app", g->name}),
                             metrics_rate_update(&g->rate, now, (double)g->sum.events));
    pthread_mutex_unlock(&groups_mu);
}

static void register_collector(void)
{
    if (metrics_register_collector(collect, NULL) < 0)
        log_warn("metrics: out of memory; the processors' metrics are left out");
}

/* Adds p to the group of its kind and name (created on first use). */
static void join_group(struct proc *p)
{
    pthread_once(&collector_once, register_collector);
    pthread_mutex_lock(&groups_mu);
    struct proc_group *g = groups;
    while (g && (g->kind != p->kind || strcmp(g->name, p->name)))
        g = g->next;
    if (!g && (g = xcalloc(1, sizeof *g))) {
        g->kind = p->kind;
        snprintf(g->name, sizeof g->name, "%s", p->name);
        metrics_rate_init(&g->rate, clock_mono_ms(), 0);
        struct proc_group **tail = &groups; /* keep the order of creation */
        while (*tail)
            tail = &(*tail)->next;
        *tail = g;
    }
    if (g) {
        p->group = g;
        p->group_next = g->live;
        g->live = p;
    } else {
        log_warn("metrics: out of memory; processor %s is left out", p->name);
    }
    pthread_mutex_unlock(&groups_mu);
}

static void leave_group(struct proc *p)
{
    struct proc_group *g = p->group;
    if (!g)
        return;
    pthread_mutex_lock(&groups_mu);
    struct proc **pp = &g->live;
    while (*pp && *pp != p)
        pp = &(*pp)->group_next;
    if (*pp)
        *pp = p->group_next;
    struct proc_counts n;
    proc_counts(p, &n);
    counts_add(&g->retired, &n, false);
    pthread_mutex_unlock(&groups_mu);
    p->group = NULL;
}

/* Wraps the kind's process callback to count input records. */
static int count_record(struct stream_ctx *c, const struct stream_record *r)
{
    struct proc *p = stream_opaque(c);
    PROC_ADD(p->n.records, 1);
    return p->process(c, r);
}

struct proc *proc_new(const char *kind, const char *app_name, const struct proc_settings *s,
                      struct stream_app_conf *conf)
{
    struct proc *p;

    static const char *const kinds[] = {"orders", "aftersales", "analytics", "recommend"};
    size_t which = 0;

    while (which < 4 && strcmp(kind, kinds[which]))
        which++;
    if (which == 4 || !(p = xcalloc(1, sizeof *p)))
        return NULL;
    p->kind = kinds[which];
    snprintf(p->name, sizeof p->name, "%s", app_name);
    p->s = *s;
    shop_event_init(&p->ev);
    order_book_init(&p->book);
    jbuf_init(&p->out);
    jbuf_init(&p->state);
    jbuf_init(&p->aux);
    memset(conf, 0, sizeof *conf);
    conf->name = p->name;
    conf->opaque = p;
    if (p->kind[0] == 'o') {
        proc__orders_conf(p, conf);
    } else if (p->kind[1] == 'f') {
        snprintf(p->rekey_topic, sizeof p->rekey_topic, "%s-refunds-by-user", p->name);
        p->internal[0] = p->rekey_topic;
        proc__aftersales_conf(p, conf);
    } else if (p->kind[1] == 'n') {
        snprintf(p->rekey_topic, sizeof p->rekey_topic, "%s-partials", p->name);
        p->internal[0] = p->rekey_topic;
        proc__analytics_conf(p, conf);
    } else {
        snprintf(p->rekey_topic, sizeof p->rekey_topic, "%s-observations", p->name);
        p->internal[0] = p->rekey_topic;
        if (proc__recommend_init(p) < 0) {
            proc_free(p);
            return NULL;
        }
        proc__recommend_conf(p, conf);
    }
    p->process = conf->process;
    conf->process = count_record;
    join_group(p);
    return p;
}

void proc_free(struct proc *p)
{
    if (!p)
        return;
    leave_group(p);
    proc__recommend_free(p);
    shop_event_free(&p->ev);
    order_book_free(&p->book);
    jbuf_free(&p->out);
    jbuf_free(&p->state);
    jbuf_free(&p->aux);
    xfree(p);
}

const char *const *proc_internal_topics(struct proc *p)
{
    return p->internal;
}

/* Every field, one relaxed load each (the assert catches a new field). */
_Static_assert(sizeof(struct proc_counts) == 14 * sizeof(long long), "proc_counts loads every field");

void proc_counts(const struct proc *p, struct proc_counts *out)
{
#define LOAD(f) out->f = __atomic_load_n(&p->n.f, __ATOMIC_RELAXED)
    LOAD(records);
    LOAD(events);
    LOAD(duplicates);
    LOAD(deadletters);
    LOAD(alerts);
    LOAD(results);
    LOAD(late_events[0]);
    LOAD(late_events[1]);
    LOAD(late_events[2]);
    LOAD(open_windows);
    LOAD(peak_windows);
    LOAD(observed);
    LOAD(orders_held);
    LOAD(orders_forgotten);
#undef LOAD
}

long long proc_observed(const struct proc *p)
{
    return __atomic_load_n(&p->n.observed, __ATOMIC_RELAXED);
}

void proc_recommend_latency(const struct proc *p, int64_t *observe_p99_ns, int64_t *answer_p99_ns)
{
    proc__recommend_latency(p, observe_p99_ns, answer_p99_ns);
}

/* 1 when s[0..n) is valid UTF-8 without NUL bytes (so it can be a JSON
 * string as it is). */
static int is_utf8_text(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void w_base64(struct jbuf *o, const char *key, const unsigned char *s, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char buf[4];
    struct jbuf tmp;

    jbuf_init(&tmp);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        buf[0] = tab[(v >> 18) & 63];
        buf[1] = tab[(v >> 12) & 63];
        buf[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        buf[3] = i + 2 < n ? tab[v & 63] : '=';
        jbuf_raw(&tmp, buf, 4);
    }
    json_w_str(o, key, tmp.p ? tmp.p : "", tmp.len);
    if (tmp.oom)
        o->oom = 1;
    jbuf_free(&tmp);
}

static void w_bytes(struct jbuf *o, const char *key, const char *key64, const void *p, size_t n)
{
    if (!p)
        json_w_null(o, key);
    else if (is_utf8_text(p, n))
        json_w_str(o, key, p, n);
    else
        w_base64(o, key64, p, n);
}

int proc__deadletter(struct proc *p, struct stream_ctx *c, const struct stream_record *r,
                     const char *reason)
{
    struct jbuf *o = &p->aux;

    jbuf_reset(o);
    json_w_obj_begin(o, NULL);
    json_w_cstr(o, "reason", reason);
    json_w_cstr(o, "processor", p->name);
    json_w_cstr(o, "topic", r->topic);
    json_w_int(o, "partition", r->partition);
    json_w_int(o, "offset", r->offset);
    json_w_int(o, "timestamp", r->ts);
    w_bytes(o, "key", "key_base64", r->key, r->klen);
    w_bytes(o, "value", "value_base64", r->value, r->vlen);
    json_w_obj_end(o);
    if (o->oom)
        return -1;
    PROC_ADD(p->n.deadletters, 1);
    return stream_emit(c, SHOP_TOPIC_DEADLETTER, -1, r->key, r->klen, o->p, o->len, r->ts);
}

int proc__alert(struct proc *p, struct stream_ctx *c, const char *key, int64_t ts)
{
    if (p->out.oom)
        return -1;
    PROC_ADD(p->n.alerts, 1);
    return stream_emit(c, SHOP_TOPIC_ALERTS, -1, key, strlen(key), p->out.p, p->out.len, ts);
}

int proc__take_event(struct proc *p, struct stream_ctx *c, const struct stream_record *r)
{
    char reason[256];
    const char *topic;
    struct shop_str key;

    PROC_ADD(p->n.events, 1);
    if (!r->value)
        return proc__deadletter(p, c, r, "record has no value") < 0 ? -1 : 1;
    if (shop_event_parse(&p->ev, r->value, r->vlen, reason, sizeof reason) < 0)
        return proc__deadletter(p, c, r, reason) < 0 ? -1 : 1;
    topic = shop_stream_topic(shop_event_stream(p->ev.type));
    if (strcmp(topic, r->topic)) {
        snprintf(reason, sizeof reason, "event type %s does not belong on %s",
                 shop_event_type_name(p->ev.type), r->topic);
        return proc__deadletter(p, c, r, reason) < 0 ? -1 : 1;
    }
    /* Event time beyond the wall clock's reach would close every window
     * and fire every timer at once. */
    /* The wall clock moves little between records: read it once per 1024. */
    if ((p->wall_reads++ & 1023) == 0)
        p->wall_ms = clock_wall_ms();
    if (p->ev.ts > p->wall_ms + PROC_MAX_FUTURE_MS) {
        snprintf(reason, sizeof reason, "ts %lld is more than a day in the future",
                 (long long)p->ev.ts);
        return proc__deadletter(p, c, r, reason) < 0 ? -1 : 1;
    }
    /* The key decides the partition and so the task: an order keyed
     * otherwise would fork in two, a user's distinct counts would overlap
     * between tasks. */
    key = shop_event_key(&p->ev);
    if (!r->key || r->klen != key.n || memcmp(r->key, key.p, key.n)) {
        snprintf(reason, sizeof reason, "record key does not match %s \"%.64s\"",
                 shop_event_stream(p->ev.type) == SHOP_STREAM_CLICKS ? "user_id" : "order_id",
                 key.p);
        return proc__deadletter(p, c, r, reason) < 0 ? -1 : 1;
    }
    stream_event_time(c, p->ev.ts);
    return 0;
}
