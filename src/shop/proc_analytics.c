/* proc_analytics.c: the analytics processor (processors.h): KPIs of DESIGN.md
 * in tumbling event-time windows of 1 minute, 1 hour and 1 day.
 *
 * Stage one, per task (partition p of shop.clicks, shop.orders and
 * shop.aftersales, merged in timestamp order by the runtime): aggregates
 * (kpi.h) of the open windows, the funnel step of every live session, and
 * the task's watermark = largest event ts seen - lateness.  An event whose
 * window has already closed for its size is late: it is counted in
 * late_events of the newest window of that size.  About once a second the
 * task sends each changed window as a partial record to the internal topic
 * "<name>-partials" (keyed by window, so every task's partial of a window
 * meets in one stage-two task), and its watermark to every partition of it.
 * A window whose end the watermark passed is sent a last time (final) and
 * dropped.
 *
 * Stage two, per partition of the partials topic: the latest partial of
 * each window from each stage-one task, and each task's watermark.  It
 * publishes the merge of a window's partials to shop.kpis (key
 * "<window>@<start>") at most once a second while it changes, and once more
 * with final: true when every stage-one task's watermark has passed the
 * window's end; then it forgets the window.
 *
 * Users, and so sessions, are keyed by user_id: all events of a user are in
 * one partition, so the distinct counts of tasks never overlap and the
 * funnel of a session is seen whole by one task.
 *
 * Both stages keep their state in the store (changelog) at every tick:
 * "w/<window>@<start>" aggregates and "s/<session>" steps (stage one),
 * "p/<window>@<start>/<task>" partials and "m/<task>" watermarks (stage
 * two).  Partial record: u8 version 1, u8 kind (0 partial, 1 watermark),
 * zz task, zz watermark, u8 final, then (partial) the aggregate's binary
 * form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/varint.h"
#include "shop/kpi.h"
#include "shop/proc_private.h"

enum { IN_CLICKS = 0, IN_ORDERS = 1, IN_AFTERSALES = 2, IN_PARTIALS = 3 };

#define NSIZES 3
static const char *const size_name[NSIZES] = {"1m", "1h", "1d"};
static const int64_t size_ms[NSIZES] = {60000, 3600000, 86400000};
_Static_assert(NSIZES == sizeof((struct proc_counts *)0)->late_events / sizeof(long long),
               "late_events has one counter per window size");

#define SESSION_IDLE_MS (2LL * 3600 * 1000) /* a session quiet this long is forgotten */
#define PARTIAL_VERSION 1
#define MAX_TASKS 4096

/* --- stage one: per-task structures ---------------------------------------- */

struct window {
    struct kpi_agg *agg;
    int size;                /* index into size_name */
    int dirty;               /* changed since the last partial */
    struct window *next;
};

struct session {
    char *id;                /* owned; NULL = empty slot */
    size_t idlen;
    uint64_t hash;
    int64_t last_ts;
    uint8_t step;
    uint8_t dirty;
};

/* Stage two: one window's partials. */
struct merged {
    char key[40];
    char window[8];
    int64_t start, end;
    struct kpi_agg **part;   /* npart entries, NULL = none yet */
    int dirty;
    struct merged *next;
};

struct task_data {
    struct proc *proc;       /* borrowed: counters */
    int task, ntasks;
    /* stage one */
    int64_t max_ts, wm;      /* INT64_MIN until the first event */
    int64_t wm_sent;         /* watermark last sent to stage two */
    int64_t next_close;      /* smallest end of an open window (INT64_MAX: none) */
    struct window *windows;
    struct session *sessions;
    size_t nsessions, sessions_cap;
    /* stage two */
    int64_t *task_wm;        /* ntasks watermarks of stage one */
    struct merged *merged;
    int64_t last_emit_ms;
    int64_t last_event_ms;   /* monotonic time the task last had records to read */
    int saw_event;           /* an event came since the last tick */
    int idle;                /* told stage two this task is idle */
    int force_wm;            /* send the watermark even if it did not move */
    unsigned char *task_idle; /* stage two: ntasks flags, 1 = idle, left out of the minimum */
};

static void *analytics_task_open(struct stream_ctx *c)
{
    struct task_data *d = xcalloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->proc = stream_opaque(c);
    d->task = stream_task(c);
    d->ntasks = stream_partitions(c);
    d->max_ts = d->wm = d->wm_sent = INT64_MIN;
    d->next_close = INT64_MAX;
    d->last_event_ms = clock_mono_ms();
    if (!(d->task_wm = xmalloc((size_t)d->ntasks * sizeof *d->task_wm))) {
        xfree(d);
        return NULL;
    }
    for (int k = 0; k < d->ntasks; k++)
        d->task_wm[k] = INT64_MIN;
    if (!(d->task_idle = xcalloc((size_t)d->ntasks, 1))) {
        xfree(d->task_wm);
        xfree(d);
        return NULL;
    }
    return d;
}

static void merged_free(struct merged *m, int ntasks)
{
    for (int k = 0; k < ntasks; k++)
        kpi_agg_free(m->part[k]);
    xfree(m->part);
    xfree(m);
}

static void analytics_task_close(void *data)
{
    struct task_data *d = data;

    while (d->windows) {
        struct window *w = d->windows;
        d->windows = w->next;
        kpi_agg_free(w->agg);
        xfree(w);
        PROC_ADD(d->proc->n.open_windows, -1);
    }
    for (size_t k = 0; k < d->sessions_cap; k++)
        xfree(d->sessions[k].id);
    xfree(d->sessions);
    while (d->merged) {
        struct merged *m = d->merged;
        d->merged = m->next;
        merged_free(m, d->ntasks);
    }
    xfree(d->task_wm);
    xfree(d->task_idle);
    xfree(d);
}

/* floor division for window starts before 1970 too */
static int64_t window_start(int64_t ts, int size)
{
    int64_t q = ts / size_ms[size];
    if (ts % size_ms[size] < 0)
        q--;
    return q * size_ms[size];
}

static struct window *find_window(struct task_data *d, struct proc *p, int size, int64_t start,
                                  int create)
{
    struct window *w;

    for (w = d->windows; w; w = w->next)
        if (w->size == size && w->agg->start == start)
            return w;
    if (!create || !(w = xcalloc(1, sizeof *w)))
        return NULL;
    if (!(w->agg = kpi_agg_new(size_name[size], start, start + size_ms[size], p->s.uv_exact_cap))) {
        xfree(w);
        return NULL;
    }
    w->size = size;
    w->next = d->windows;
    d->windows = w;
    PROC_ADD(p->n.open_windows, 1);
    if (p->n.open_windows > p->n.peak_windows)
        PROC_SET(p->n.peak_windows, p->n.open_windows);
    if (w->agg->end < d->next_close)
        d->next_close = w->agg->end;
    return w;
}

/* --- sessions: open addressing by id --------------------------------------- */

static struct session *session_slot(struct task_data *d, const char *id, size_t n, uint64_t h)
{
    size_t mask = d->sessions_cap - 1, k = h & mask;

    while (d->sessions[k].id) {
        struct session *s = &d->sessions[k];
        if (s->hash == h && s->idlen == n && !memcmp(s->id, id, n))
            return s;
        k = (k + 1) & mask;
    }
    return &d->sessions[k];
}

static int sessions_grow(struct task_data *d)
{
    size_t ocap = d->sessions_cap, ncap = ocap ? ocap * 2 : 1024;
    struct session *old = d->sessions, *ns = xcalloc(ncap, sizeof *ns);

    if (!ns)
        return -1;
    d->sessions = ns;
    d->sessions_cap = ncap;
    for (size_t k = 0; k < ocap; k++)
        if (old[k].id)
            *session_slot(d, old[k].id, old[k].idlen, old[k].hash) = old[k];
    xfree(old);
    return 0;
}

/* The session of id, created with step 0 if new; NULL when out of memory. */
static struct session *session_get(struct task_data *d, const char *id, size_t n)
{
    uint64_t h = kpi_hash(id, n);
    struct session *s;

    if ((d->nsessions + 1) * 4 > d->sessions_cap * 3 && sessions_grow(d) < 0)
        return NULL;
    s = session_slot(d, id, n, h);
    if (!s->id) {
        if (!(s->id = xstrndup(id, n)))
            return NULL;
        s->idlen = n;
        s->hash = h;
        s->step = 0;
        s->last_ts = INT64_MIN;
        d->nsessions++;
    }
    return s;
}

/* Rebuilds the session table without the sessions quiet since before
 * `before`, deleting them from the store. */
static int sessions_expire(struct task_data *d, struct stream_ctx *c, int64_t before)
{
    size_t cap = d->sessions_cap;
    struct session *old = d->sessions;
    char key[SHOP_MAX_ID_BYTES + 4];

    if (!cap)
        return 0;
    if (!(d->sessions = xcalloc(cap, sizeof *d->sessions))) {
        d->sessions = old;
        return -1;
    }
    d->nsessions = 0;
    for (size_t k = 0; k < cap; k++) {
        if (!old[k].id)
            continue;
        if (old[k].last_ts < before) {
            int n = snprintf(key, sizeof key, "s/%s", old[k].id);
            stream_del(c, key, (size_t)n);
            xfree(old[k].id);
            continue;
        }
        *session_slot(d, old[k].id, old[k].idlen, old[k].hash) = old[k];
        d->nsessions++;
    }
    xfree(old);
    return 0;
}

/* The funnel step ev makes its session reach, advancing it. */
static enum kpi_step session_step(struct session *s, enum shop_event_type t)
{
    static const struct {
        enum shop_event_type type;
        enum kpi_step from, to;
    } steps[] = {
        {SHOP_EV_PRODUCT_VIEW, KPI_STEP_NONE, KPI_STEP_PRODUCT_VIEW},
        {SHOP_EV_ADD_TO_CART, KPI_STEP_PRODUCT_VIEW, KPI_STEP_ADD_TO_CART},
        {SHOP_EV_CHECKOUT, KPI_STEP_ADD_TO_CART, KPI_STEP_CHECKOUT},
        {SHOP_EV_PURCHASE, KPI_STEP_CHECKOUT, KPI_STEP_PURCHASE},
    };

    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++)
        if (steps[k].type == t && s->step == steps[k].from) {
            s->step = (uint8_t)steps[k].to;
            s->dirty = 1;
            return steps[k].to;
        }
    return KPI_STEP_NONE;
}

/* --- stage one: events ----------------------------------------------------- */

static int flush_windows(struct proc *p, struct stream_ctx *c, struct task_data *d, int tick);

static int count_event(struct proc *p, struct stream_ctx *c, struct task_data *d,
                       const struct shop_event *ev)
{
    enum kpi_step step = KPI_STEP_NONE;

    if (ev->ts > d->max_ts) {
        d->max_ts = ev->ts;
        d->wm = ev->ts - p->s.lateness_ms;
    }
    if (shop_event_stream(ev->type) == SHOP_STREAM_CLICKS) {
        struct session *s = session_get(d, ev->session_id.p, ev->session_id.n);
        if (!s)
            return -1;
        if (ev->ts > s->last_ts) {
            s->last_ts = ev->ts;
            s->dirty = 1;
        }
        step = session_step(s, ev->type);
    }
    if (d->wm != INT64_MIN && d->wm >= d->next_close && flush_windows(p, c, d, 0) < 0)
        return -1;
    uint64_t uh = ev->user_id.p ? kpi_hash(ev->user_id.p, ev->user_id.n) : 0;
    for (int z = 0; z < NSIZES; z++) {
        int64_t start = window_start(ev->ts, z);
        struct window *w;

        if (d->wm != INT64_MIN && start + size_ms[z] <= d->wm) {
            /* Its window has closed: count it as late in the newest one. */
            if (!(w = find_window(d, p, z, window_start(d->max_ts, z), 1)))
                return -1;
            w->agg->late_events++;
            PROC_ADD(p->n.late_events[z], 1);
        } else {
            if (!(w = find_window(d, p, z, start, 1)) ||
                kpi_agg_add_hashed(w->agg, ev, step, uh) < 0)
                return -1;
        }
        w->dirty = 1;
    }
    return 0;
}

/* A partial or watermark record for stage two. */
static int send_partial(struct proc *p, struct stream_ctx *c, struct task_data *d,
                        const struct window *w, int final, int32_t partition)
{
    uint8_t tmp[10];
    char hdr[2] = {PARTIAL_VERSION, (char)(w ? 0 : d->idle ? 2 : 1)};
    char key[40];
    size_t klen;

    jbuf_reset(&p->aux);
    jbuf_raw(&p->aux, hdr, 2);
    jbuf_raw(&p->aux, (const char *)tmp, varint_put_zz64(tmp, d->task));
    jbuf_raw(&p->aux, (const char *)tmp, varint_put_zz64(tmp, d->wm));
    jbuf_raw(&p->aux, final ? "\1" : "\0", 1);
    if (w) {
        if (kpi_agg_encode(w->agg, &p->aux) < 0)
            return -1;
        klen = kpi_window_key(w->agg->window, w->agg->start, key, sizeof key);
    } else {
        klen = (size_t)snprintf(key, sizeof key, "wm");
    }
    if (p->aux.oom)
        return -1;
    return stream_emit(c, p->rekey_topic, partition, key, klen, p->aux.p, p->aux.len,
                       w ? w->agg->start : clock_wall_ms());
}

static int save_window(struct proc *p, struct stream_ctx *c, const struct window *w)
{
    char key[48];
    int n = snprintf(key, sizeof key, "w/");

    n += (int)kpi_window_key(w->agg->window, w->agg->start, key + n, sizeof key - (size_t)n);
    jbuf_reset(&p->state);
    if (kpi_agg_encode(w->agg, &p->state) < 0)
        return -1;
    return stream_put(c, key, (size_t)n, p->state.p, p->state.len);
}

/* Sends changed windows, closes the ones the watermark passed, sends the
 * watermark, and saves sessions: stage one's part of a tick. */
/* Sends the watermark to every stage-two task when it moved. */
static int send_watermark(struct proc *p, struct stream_ctx *c, struct task_data *d)
{
    if (d->wm == d->wm_sent && !d->force_wm)
        return 0;
    d->force_wm = 0;
    for (int q = 0; q < d->ntasks; q++)
        if (send_partial(p, c, d, NULL, 0, q) < 0)
            return -1;
    d->wm_sent = d->wm;
    return 0;
}

/* Sends changed windows (all of them in a tick, else only closed ones) and
 * drops the closed ones: called in every tick, and as soon as the
 * watermark passes the end of an open window, so that a backlog of many
 * days is held a few windows at a time.  Then the watermark follows. */
static int flush_windows(struct proc *p, struct stream_ctx *c, struct task_data *d, int tick)
{
    struct window **pw = &d->windows;

    d->next_close = INT64_MAX;
    while (*pw) {
        struct window *w = *pw;
        int closed = d->wm != INT64_MIN && w->agg->end <= d->wm;
        if ((w->dirty && tick) || closed) {
            if (send_partial(p, c, d, w, closed, -1) < 0)
                return -1;
            w->dirty = 0;
        }
        if (closed) {
            char wk[48];
            int n = snprintf(wk, sizeof wk, "w/");
            n += (int)kpi_window_key(w->agg->window, w->agg->start, wk + n, sizeof wk - (size_t)n);
            if (stream_del(c, wk, (size_t)n) < 0)
                return -1;
            *pw = w->next;
            kpi_agg_free(w->agg);
            xfree(w);
            PROC_ADD(p->n.open_windows, -1);
            continue;
        }
        if (tick && save_window(p, c, w) < 0)
            return -1;
        if (w->agg->end < d->next_close)
            d->next_close = w->agg->end;
        pw = &w->next;
    }
    return send_watermark(p, c, d);
}

static int stage_one_tick(struct proc *p, struct stream_ctx *c, struct task_data *d)
{
    char key[SHOP_MAX_ID_BYTES + 4];

    if (flush_windows(p, c, d, 1) < 0)
        return -1;
    if (d->max_ts != INT64_MIN) {
        uint8_t v[10];
        if (stream_put(c, "t/max_ts", 8, v, varint_put_zz64(v, d->max_ts)) < 0)
            return -1;
    }
    if (d->wm != INT64_MIN && sessions_expire(d, c, d->max_ts - SESSION_IDLE_MS) < 0)
        return -1;
    for (size_t k = 0; k < d->sessions_cap; k++) {
        struct session *s = &d->sessions[k];
        uint8_t v[11];
        if (!s->id || !s->dirty)
            continue;
        int n = snprintf(key, sizeof key, "s/%s", s->id);
        v[0] = s->step;
        size_t vl = 1 + varint_put_zz64(v + 1, s->last_ts);
        if (stream_put(c, key, (size_t)n, v, vl) < 0)
            return -1;
        s->dirty = 0;
    }
    return 0;
}

/* --- stage two ------------------------------------------------------------- */

static struct merged *find_merged(struct task_data *d, const char *key, size_t klen, int create)
{
    struct merged *m;

    for (m = d->merged; m; m = m->next)
        if (strlen(m->key) == klen && !memcmp(m->key, key, klen))
            return m;
    if (!create || klen >= sizeof m->key || !(m = xcalloc(1, sizeof *m)))
        return NULL;
    if (!(m->part = xcalloc((size_t)d->ntasks, sizeof *m->part))) {
        xfree(m);
        return NULL;
    }
    memcpy(m->key, key, klen);
    m->key[klen] = '\0';
    m->next = d->merged;
    d->merged = m;
    return m;
}

/* The watermark of stage two: the smallest of the stage-one tasks that are
 * not idle (INT64_MIN when all are idle: nothing closes on silence). */
static int64_t min_task_wm(const struct task_data *d)
{
    int64_t lo = INT64_MAX;
    for (int k = 0; k < d->ntasks; k++)
        if (!d->task_idle[k] && d->task_wm[k] < lo)
            lo = d->task_wm[k];
    return lo == INT64_MAX ? INT64_MIN : lo;
}

static int stage_two_tick(struct proc *p, struct stream_ctx *c, struct task_data *d,
                          int allow_updates);

/* Applies one partial record.  Returns 0 (also for a record it ignores as
 * malformed or stale), -1 when out of memory. */
static int take_partial(struct proc *p, struct stream_ctx *c, struct task_data *d,
                        const void *key, size_t klen, const uint8_t *v, size_t n, int restoring)
{
    const uint8_t *end = v + n, *q = v;
    int64_t task, wm;
    size_t k;
    struct kpi_agg *agg;
    struct merged *m;
    char skey[64];

    if (n < 2 || v[0] != PARTIAL_VERSION)
        return 0;
    q += 2;
    if (!(k = varint_get_zz64(q, end, &task)) || task < 0 || task >= d->ntasks)
        return 0;
    q += k;
    if (!(k = varint_get_zz64(q, end, &wm)) || q + k >= end)
        return 0;
    q += k;
    q++; /* final: stage two decides finality from the watermarks */
    if (v[1] == 1 || v[1] == 2) {
        int idle = v[1] == 2;
        if (wm > d->task_wm[task] || idle != d->task_idle[task]) {
            if (wm > d->task_wm[task])
                d->task_wm[task] = wm;
            d->task_idle[task] = (unsigned char)idle;
            if (!restoring) {
                uint8_t buf[11];
                size_t bl = varint_put_zz64(buf, d->task_wm[task]);
                int sn = snprintf(skey, sizeof skey, "m/%lld", (long long)task);
                buf[bl++] = (uint8_t)idle;
                if (stream_put(c, skey, (size_t)sn, buf, bl) < 0)
                    return -1;
                /* Publish what this made final at once, so that a backlog
                 * does not pile up windows here either. */
                return stage_two_tick(p, c, d, 0);
            }
        }
        return 0;
    }
    if (!(agg = kpi_agg_decode(q, (size_t)(end - q), p->s.uv_exact_cap)))
        return 0;
    /* A partial of a window already published as final (a replay of stage
     * one after a crash) changes nothing. */
    if (agg->end <= min_task_wm(d) && !find_merged(d, key, klen, 0)) {
        kpi_agg_free(agg);
        return 0;
    }
    if (!(m = find_merged(d, key, klen, 1))) {
        kpi_agg_free(agg);
        return -1;
    }
    snprintf(m->window, sizeof m->window, "%s", agg->window);
    m->start = agg->start;
    m->end = agg->end;
    kpi_agg_free(m->part[task]);
    m->part[task] = agg;
    m->dirty = 1;
    if (!restoring) {
        int sn = snprintf(skey, sizeof skey, "p/%.*s/%lld", (int)klen, (const char *)key,
                          (long long)task);
        if (stream_put(c, skey, (size_t)sn, v, n) < 0)
            return -1;
    }
    return 0;
}

static int publish(struct proc *p, struct stream_ctx *c, struct task_data *d, struct merged *m,
                   int final)
{
    struct kpi_agg *sum = kpi_agg_new(m->window, m->start, m->end, p->s.uv_exact_cap);
    int rc = -1;

    if (!sum)
        return -1;
    for (int k = 0; k < d->ntasks; k++)
        if (m->part[k] && kpi_agg_merge(sum, m->part[k]) < 0)
            goto out;
    jbuf_reset(&p->out);
    if (kpi_agg_write_json(sum, final, &p->out) < 0)
        goto out;
    PROC_ADD(p->n.results, 1);
    rc = stream_emit(c, SHOP_TOPIC_KPIS, -1, m->key, strlen(m->key), p->out.p, p->out.len,
                     m->start);
out:
    kpi_agg_free(sum);
    return rc;
}

static int stage_two_tick(struct proc *p, struct stream_ctx *c, struct task_data *d,
                          int allow_updates)
{
    int64_t wm = min_task_wm(d);
    struct merged **pm = &d->merged;
    char skey[64];

    while (*pm) {
        struct merged *m = *pm;
        int final = m->end <= wm;
        if (final || (m->dirty && allow_updates)) {
            if (publish(p, c, d, m, final) < 0)
                return -1;
            m->dirty = 0;
        }
        if (final) {
            for (int k = 0; k < d->ntasks; k++) {
                if (!m->part[k])
                    continue;
                int sn = snprintf(skey, sizeof skey, "p/%s/%d", m->key, k);
                if (stream_del(c, skey, (size_t)sn) < 0)
                    return -1;
            }
            *pm = m->next;
            merged_free(m, d->ntasks);
            continue;
        }
        pm = &m->next;
    }
    return 0;
}

/* --- callbacks ------------------------------------------------------------- */

static int analytics_process(struct stream_ctx *c, const struct stream_record *r)
{
    struct proc *p = stream_opaque(c);
    struct task_data *d = stream_task_data(c);
    int rc;

    if (r->input == IN_PARTIALS)
        return r->value ? take_partial(p, c, d, r->key, r->klen, r->value, r->vlen, 0) : 0;
    if ((rc = proc__take_event(p, c, r)) != 0)
        return rc < 0 ? -1 : 0;
    d->saw_event = 1;
    if (d->idle) {
        d->idle = 0;
        d->force_wm = 1;
    }
    return count_event(p, c, d, &p->ev);
}

static int analytics_tick(struct stream_ctx *c)
{
    struct proc *p = stream_opaque(c);
    struct task_data *d = stream_task_data(c);
    int64_t now = clock_mono_ms();

    if (d->saw_event || !stream_caught_up(c))
        d->last_event_ms = now;
    d->saw_event = 0;
    int64_t quiet = now - d->last_event_ms;
    if (p->s.finish_idle_ms > 0 && d->wm < INT64_MAX / 4 && quiet >= p->s.finish_idle_ms) {
        /* --finish-idle-ms: a task that has read everything and seen
         * nothing new for that long treats its input as ended and closes
         * every window (a replayed dataset's last day gets its final
         * result); events that come later are late. */
        log_info("analytics: task %d idle for %lld ms: closing every window", d->task,
                 (long long)p->s.finish_idle_ms);
        d->max_ts = INT64_MAX / 4;
        d->wm = INT64_MAX / 4;
        d->idle = 0;
        d->force_wm = 1;
    } else if (p->s.idle_timeout_ms > 0 && !d->idle && d->wm < INT64_MAX / 4 &&
               quiet >= p->s.idle_timeout_ms) {
        /* --idle-timeout-ms: a task with nothing to read for that long
         * tells stage two to leave it out of the watermark, so that an idle
         * partition does not hold every other task's windows back (its
         * later events may then be late). */
        d->idle = 1;
        d->force_wm = 1;
    }

    if (stage_one_tick(p, c, d) < 0)
        return -1;
    /* Updates of a window at most once a second (ticks also come before
     * every commit); finals at once. */
    int allow = now - d->last_emit_ms >= 1000 || stream_stopping(c);
    if (allow)
        d->last_emit_ms = now;
    return stage_two_tick(p, c, d, allow);
}

static void analytics_restored(struct stream_ctx *c, const void *key, size_t klen,
                               const void *val, size_t vlen)
{
    struct proc *p = stream_opaque(c);
    struct task_data *d = stream_task_data(c);
    const char *k = key;

    if (klen > 2 && !memcmp(k, "w/", 2)) {
        struct kpi_agg *agg = kpi_agg_decode(val, vlen, p->s.uv_exact_cap);
        struct window *w;
        int size = -1;
        if (!agg)
            goto bad;
        for (int z = 0; z < NSIZES; z++)
            if (!strcmp(agg->window, size_name[z]))
                size = z;
        if (size < 0 || !(w = xcalloc(1, sizeof *w))) {
            kpi_agg_free(agg);
            goto bad;
        }
        w->agg = agg;
        w->size = size;
        w->next = d->windows;
        d->windows = w;
        PROC_ADD(p->n.open_windows, 1);
        if (p->n.open_windows > p->n.peak_windows)
            PROC_SET(p->n.peak_windows, p->n.open_windows);
        if (agg->end < d->next_close)
            d->next_close = agg->end;
    } else if (klen > 2 && !memcmp(k, "s/", 2)) {
        struct session *s;
        int64_t last;
        if (vlen < 2 || !varint_get_zz64((const uint8_t *)val + 1, (const uint8_t *)val + vlen,
                                         &last))
            goto bad;
        if (!(s = session_get(d, k + 2, klen - 2)))
            goto bad;
        s->step = ((const uint8_t *)val)[0];
        s->last_ts = last;
    } else if (klen == 8 && !memcmp(k, "t/max_ts", 8)) {
        int64_t ts;
        if (!varint_get_zz64(val, (const uint8_t *)val + vlen, &ts))
            goto bad;
        d->max_ts = ts;
        d->wm = ts - p->s.lateness_ms;
    } else if (klen > 2 && !memcmp(k, "m/", 2)) {
        int64_t wm, task;
        char num[24];
        if (klen - 2 >= sizeof num)
            goto bad;
        memcpy(num, k + 2, klen - 2);
        num[klen - 2] = '\0';
        task = strtoll(num, NULL, 10);
        size_t used;
        if (task < 0 || task >= d->ntasks ||
            !(used = varint_get_zz64(val, (const uint8_t *)val + vlen, &wm)))
            goto bad;
        if (wm > d->task_wm[task])
            d->task_wm[task] = wm;
        d->task_idle[task] = used < vlen && ((const uint8_t *)val)[used] == 1;
    } else if (klen > 2 && !memcmp(k, "p/", 2)) {
        /* "p/<window key>/<task>": the partial record as it came */
        const char *slash = memrchr(k, '/', klen);
        if (!slash || slash <= k + 2)
            goto bad;
        if (take_partial(p, c, d, k + 2, (size_t)(slash - (k + 2)), val, vlen, 1) < 0)
            goto bad;
    } else {
        goto bad;
    }
    return;
bad:
    log_warn("analytics: stored state %.*s is unreadable; skipped", (int)(klen > 60 ? 60 : klen),
             k);
}

void proc__analytics_conf(struct proc *p, struct stream_app_conf *conf)
{
    conf->inputs[IN_CLICKS] = SHOP_TOPIC_CLICKS;
    conf->inputs[IN_ORDERS] = SHOP_TOPIC_ORDERS;
    conf->inputs[IN_AFTERSALES] = SHOP_TOPIC_AFTERSALES;
    conf->inputs[IN_PARTIALS] = p->rekey_topic;
    conf->ninputs = 4;
    conf->ordered_inputs = 3;
    conf->stateful = 1;
    conf->process = analytics_process;
    conf->tick = analytics_tick;
    conf->restored = analytics_restored;
    conf->task_open = analytics_task_open;
    conf->task_close = analytics_task_close;
}
