/* proc_recommend.c: the recommendation processor (processors.h): item-to-item
 * recommendations learnt as events arrive (shop/recommend.h), published to
 * shop.recs as "product:<id>" (similar products), "user:<id>" (for the
 * user: from their recent items, without what they bought) and "popular"
 * (the fallback for users never seen).
 *
 * Every instance holds the whole model, so that any instance can answer
 * for any product or user.  The model learns from observations, not from
 * the inputs directly: each task turns the events of its partitions
 * (product_view, add_to_cart from shop.clicks; the items of order_created
 * from shop.orders) into observation records on "<name>-observations",
 * keyed by user, and every instance reads that topic whole (the runtime's
 * global input) and feeds each record to its model: one event, one update.
 * The model's memory is bounded by its caps (recommend.h); at start it is
 * rebuilt from the observations the topic still holds (its retention is
 * the model's memory in time).
 *
 * Results go out at most once a second per product or user that changed,
 * by the instance that owns the product's or user's partition (murmur2 of
 * the id, like the producers), so that instances do not repeat each other.
 *
 * Observation record: key user_id, value "<kind> <ts ms> <product_id>"
 * with kind v (view), c (cart) or p (purchase). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "shop/proc_private.h"
#include "shop/recommend.h"

enum { IN_CLICKS = 0, IN_ORDERS = 1 };

#define RECS_K 20
#define DIRTY_MAX 200000   /* pending publications; beyond, the oldest wait for the next change */

/* A set of ids to publish (open addressing; cleared after each round). */
struct dirty {
    char **ids;            /* owned strings; NULL = empty */
    size_t cap, n;
};

struct reco_proc {
    struct reco_model *model;
    struct dirty users, items;
    int popular_dirty;
    int64_t last_ts;       /* newest observation's event time */
    int64_t last_round_ms;
    /* latency histograms (powers of two in ns) for bench process recommend */
    uint64_t observe_ns[48], answer_ns[48];
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int dirty_add(struct dirty *d, const char *id)
{
    if (d->n + 1 > DIRTY_MAX)
        return 0;
    if ((d->n + 1) * 2 > d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 1024;
        char **nv = xcalloc(ncap, sizeof *nv);
        if (!nv)
            return -1;
        for (size_t k = 0; k < d->cap; k++)
            if (d->ids[k]) {
                size_t j = hash_str(d->ids[k]) & (ncap - 1);
                while (nv[j])
                    j = (j + 1) & (ncap - 1);
                nv[j] = d->ids[k];
            }
        xfree(d->ids);
        d->ids = nv;
        d->cap = ncap;
    }
    size_t j = hash_str(id) & (d->cap - 1);
    while (d->ids[j]) {
        if (!strcmp(d->ids[j], id))
            return 0;
        j = (j + 1) & (d->cap - 1);
    }
    if (!(d->ids[j] = xstrdup(id)))
        return -1;
    d->n++;
    return 0;
}

static void dirty_clear(struct dirty *d)
{
    for (size_t k = 0; k < d->cap; k++) {
        xfree(d->ids[k]);
        d->ids[k] = NULL;
    }
    d->n = 0;
}

static void record_latency(uint64_t *hist, int64_t ns)
{
    int b = 0;
    while (b < 47 && ((int64_t)1 << (b + 1)) <= ns)
        b++;
    hist[b]++;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The p-quantile (0..1) of a histogram, as the upper bound of its bucket. */
int64_t proc__latency_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < 48; b++)
        total += hist[b];
    if (!total)
        return 0;
    for (int b = 0; b < 48; b++) {
        seen += hist[b];
        if (seen >= (uint64_t)(q * (double)total + 0.5))
            return (int64_t)1 << (b + 1);
    }
    return (int64_t)1 << 48;
}

/* --- stage one: events to observations -------------------------------------- */

static int observe_out(struct proc *p, struct stream_ctx *c, const struct shop_str *user, char kind,
                       int64_t ts, const struct shop_str *item)
{
    char buf[SHOP_MAX_ID_BYTES + 40];
    int n;

    if (!item->p || !user->p || item->n >= SHOP_MAX_ID_BYTES)
        return 0;
    n = snprintf(buf, sizeof buf, "%c %" PRId64 " %.*s", kind, ts, (int)item->n, item->p);
    return stream_emit(c, p->rekey_topic, -1, user->p, user->n, buf, (size_t)n, ts);
}

static int recommend_process(struct stream_ctx *c, const struct stream_record *r)
{
    struct proc *p = stream_opaque(c);
    const struct shop_event *ev = &p->ev;
    int rc;

    if ((rc = proc__take_event(p, c, r)) != 0)
        return rc < 0 ? -1 : 0;
    switch (ev->type) {
    case SHOP_EV_PRODUCT_VIEW:
        return observe_out(p, c, &ev->user_id, 'v', ev->ts, &ev->product_id);
    case SHOP_EV_ADD_TO_CART:
        return observe_out(p, c, &ev->user_id, 'c', ev->ts, &ev->product_id);
    case SHOP_EV_ORDER_CREATED:
        for (size_t k = 0; k < ev->nitems; k++)
            if (observe_out(p, c, &ev->user_id, 'p', ev->ts, &ev->items[k].product_id) < 0)
                return -1;
        return 0;
    default:
        return 0;
    }
}

/* --- the global model ------------------------------------------------------- */

static int recommend_global(void *opaque, const struct stream_record *r)
{
    struct proc *p = opaque;
    struct reco_proc *rp = p->reco;
    char user[RECO_MAX_NAME + 1], item[RECO_MAX_NAME + 1];
    const char *v = r->value, *sp1, *sp2;
    enum reco_kind kind;
    int64_t ts, t0;
    char *end;

    if (!v || !r->key || r->klen == 0 || r->klen > RECO_MAX_NAME || r->vlen < 5)
        return 0;
    switch (v[0]) {
    case 'v': kind = RECO_VIEW; break;
    case 'c': kind = RECO_CART; break;
    case 'p': kind = RECO_PURCHASE; break;
    default: return 0;
    }
    sp1 = memchr(v, ' ', r->vlen);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', r->vlen - (size_t)(sp1 + 1 - v)) : NULL;
    if (sp1 != v + 1 || !sp2 || (size_t)(v + r->vlen - (sp2 + 1)) > RECO_MAX_NAME ||
        sp2 + 1 == v + r->vlen)
        return 0;
    {
        /* The record is not NUL-terminated: parse a bounded copy. */
        char num[24];
        size_t nl = (size_t)(sp2 - (sp1 + 1));
        if (nl == 0 || nl >= sizeof num)
            return 0;
        memcpy(num, sp1 + 1, nl);
        num[nl] = '\0';
        ts = strtoll(num, &end, 10);
        if (end != num + nl || num[0] == ' ' || num[0] == '+' || num[0] == '-')
            return 0;
    }
    memcpy(user, r->key, r->klen);
    user[r->klen] = '\0';
    memcpy(item, sp2 + 1, (size_t)(v + r->vlen - (sp2 + 1)));
    item[v + r->vlen - (sp2 + 1)] = '\0';
    if (memchr(user, '\0', r->klen) || strlen(item) != (size_t)(v + r->vlen - (sp2 + 1)))
        return 0; /* an id with a NUL in it cannot be a model name */
    t0 = now_ns();
    int rc = reco_observe(rp->model, user, item, kind, (double)ts / 1000.0);
    record_latency(rp->observe_ns, now_ns() - t0);
    if (rc == RECO_ENOMEM)
        return -1;
    if (rc < 0)
        return 0;
    PROC_ADD(p->n.observed, 1);
    if (ts > rp->last_ts)
        rp->last_ts = ts;
    if (dirty_add(&rp->users, user) < 0 || dirty_add(&rp->items, item) < 0)
        return -1;
    rp->popular_dirty = 1;
    return 0;
}

/* --- publishing ------------------------------------------------------------- */

static int owned(struct stream_ctx *c, const char *id)
{
    int32_t part = rd_kafka_msg_partitioner_murmur2(NULL, id, strlen(id), stream_partitions(c),
                                                    NULL, NULL);
    return stream_assigned(c, part);
}

static void write_hits(struct jbuf *o, const char *key, const struct reco_hit *hits, size_t n)
{
    json_w_arr_begin(o, key);
    for (size_t k = 0; k < n; k++) {
        json_w_obj_begin(o, NULL);
        json_w_cstr(o, "product_id", hits[k].item);
        /* Six decimals: enough to order, and the same bytes for the same
         * model whatever the platform prints of the last digits. */
        json_w_double(o, "score", (double)llround(hits[k].score * 1e6) / 1e6);
        json_w_obj_end(o);
    }
    json_w_arr_end(o);
}

static int publish(struct proc *p, struct stream_ctx *c, const char *prefix, const char *id,
                   const char *field, const char *list, const struct reco_hit *hits, size_t n)
{
    struct reco_proc *rp = p->reco;
    char key[RECO_MAX_NAME + 16];
    int kn = id ? snprintf(key, sizeof key, "%s:%s", prefix, id) : snprintf(key, sizeof key, "%s", prefix);

    jbuf_reset(&p->out);
    json_w_obj_begin(&p->out, NULL);
    if (id)
        json_w_cstr(&p->out, field, id);
    write_hits(&p->out, list, hits, n);
    json_w_int(&p->out, "ts", rp->last_ts);
    json_w_obj_end(&p->out);
    if (p->out.oom)
        return -1;
    PROC_ADD(p->n.results, 1);
    return stream_emit(c, SHOP_TOPIC_RECS, -1, key, (size_t)kn, p->out.p, p->out.len, rp->last_ts);
}

/* Publishes what changed since the last round, for the ids this instance
 * owns.  Runs in the tick of the first task, at most once a second. */
static int recommend_tick(struct stream_ctx *c)
{
    struct proc *p = stream_opaque(c);
    struct reco_proc *rp = p->reco;
    struct reco_hit hits[RECS_K];
    int64_t now = clock_mono_ms();
    size_t n;

    if (now - rp->last_round_ms < 1000 && !stream_stopping(c))
        return 0;
    rp->last_round_ms = now;
    for (size_t k = 0; k < rp->items.cap; k++) {
        const char *id = rp->items.ids[k];
        if (!id || !owned(c, id))
            continue;
        n = reco_similar(rp->model, id, RECS_K, hits);
        if (publish(p, c, "product", id, "product_id", "similar", hits, n) < 0)
            return -1;
    }
    for (size_t k = 0; k < rp->users.cap; k++) {
        const char *id = rp->users.ids[k];
        if (!id || !owned(c, id))
            continue;
        int64_t t0 = now_ns();
        n = reco_for_key(rp->model, id, RECS_K, NULL, NULL, hits);
        record_latency(rp->answer_ns, now_ns() - t0);
        if (publish(p, c, "user", id, "user_id", "recommended", hits, n) < 0)
            return -1;
    }
    if (rp->popular_dirty && stream_assigned(c, 0)) {
        n = reco_popular(rp->model, RECS_K, hits);
        if (publish(p, c, "popular", NULL, NULL, "popular", hits, n) < 0)
            return -1;
    }
    rp->popular_dirty = 0;
    dirty_clear(&rp->users);
    dirty_clear(&rp->items);
    return 0;
}

int proc__recommend_init(struct proc *p)
{
    struct reco_proc *rp = xcalloc(1, sizeof *rp);

    if (!rp || !(rp->model = reco_model_new(NULL))) {
        xfree(rp);
        return -1;
    }
    rp->last_ts = 0;
    p->reco = rp;
    return 0;
}

void proc__recommend_free(struct proc *p)
{
    struct reco_proc *rp = p->reco;

    if (!rp)
        return;
    reco_model_free(rp->model);
    dirty_clear(&rp->users);
    dirty_clear(&rp->items);
    xfree(rp->users.ids);
    xfree(rp->items.ids);
    xfree(rp);
    p->reco = NULL;
}

void proc__recommend_latency(const struct proc *p, int64_t *observe_p99_ns, int64_t *answer_p99_ns)
{
    const struct reco_proc *rp = p->reco;
    *observe_p99_ns = rp ? proc__latency_quantile(rp->observe_ns, 0.99) : 0;
    *answer_p99_ns = rp ? proc__latency_quantile(rp->answer_ns, 0.99) : 0;
}

void proc__recommend_conf(struct proc *p, struct stream_app_conf *conf)
{
    conf->inputs[IN_CLICKS] = SHOP_TOPIC_CLICKS;
    conf->inputs[IN_ORDERS] = SHOP_TOPIC_ORDERS;
    conf->ninputs = 2;
    conf->ordered_inputs = 2;
    conf->stateful = 0;
    conf->process = recommend_process;
    conf->tick = recommend_tick;
    conf->global_input = p->rekey_topic;
    conf->global = recommend_global;
}
