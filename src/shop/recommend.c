/* recommend.c: the incremental item-to-item recommender and the HR/MRR
 * metrics; the model, its scoring and its bounds are described in
 * recommend.h.
 *
 * Layout.  Items and keys live in arrays indexed by dense ids, found by name
 * through a strmap.  Each array has an LRU list (most recently observed at
 * the head) threaded through it; when an array is full the tail is evicted
 * and its slot reused with its generation number bumped, so that neighbour
 * entries and key histories that still name the old occupant are recognised
 * as stale and skipped (and recycled) when next met.
 *
 * Decay.  Instead of touching every weight as time passes, an increment at
 * time ts is scaled by g(ts) = 2^((ts - base) / half_life).  Every score is a
 * ratio of weights (or is normalised by the largest frequency), so the common
 * factor cancels.  When g would pass 2^64 all weights are multiplied by
 * 1/g and base moves to ts (rebase), which keeps floats in range. */
#include "shop/recommend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/strmap.h"

#define NIL UINT32_MAX
/* The most session events a query reads (the latest ones). */
#define QUERY_EVENTS 64
/* Exponent of g at which weights are rebased. */
#define REBASE_EXP 64.0

/* A neighbour j of item i: statistics of the pair (i, j). */
struct nb {
    uint32_t id, gen;   /* j and its generation when the entry was made */
    float seq;          /* decayed weight of "j follows i" */
    float co;           /* decayed weight of i and j in one key's window */
};

struct item {
    const char *name;   /* view of item_map's key */
    uint32_t gen;       /* bumped each time the slot is reused */
    uint32_t n_nb;      /* entries in use in nb */
    uint32_t cap_nb;    /* entries allocated (<= max_neighbours) */
    struct nb *nb;      /* owned */
    double freq;        /* decayed frequency (sessions containing the item) */
    double out;         /* decayed sum of seq over this item's successors */
    uint32_t prev, next; /* LRU links (NIL at the ends) */
    int32_t top_slot;   /* index in model->top, or -1 */
};

/* One remembered event of a key. */
struct hist {
    uint32_t id, gen;   /* the item */
    double ts;
    uint32_t kind;      /* enum reco_kind */
};

struct key {
    const char *name;   /* view of key_map's key */
    struct hist *ring;  /* owned, window entries, oldest at (head - n) */
    uint32_t n, head;   /* events held; next write position */
    struct { uint32_t id, gen; } bought[RECO_KEY_PURCHASES]; /* ring of purchases */
    uint32_t n_bought, bought_head;
    uint32_t prev, next; /* LRU links */
};

struct lru {
    uint32_t head, tail;
};

/* A scored candidate while a query sorts them. */
struct cand {
    double score;
    const char *name;
    uint32_t id;
};

struct reco_model {
    struct reco_params p;
    struct strmap *item_map, *key_map;   /* name -> id */
    struct item *items;                  /* n_items used slots of cap_items */
    uint32_t n_items, cap_items;
    struct key *keys;
    uint32_t n_keys, cap_keys;
    struct lru item_lru, key_lru;
    double base_ts;                      /* of the decay scale */
    int have_base;
    uint32_t top[RECO_POP_TOP];          /* most frequent items, best first */
    uint32_t n_top;
    int top_dirty;                       /* an item left top; rebuild before use */
    double *acc;                         /* per item slot: query score */
    uint8_t *mark;                       /* per item slot: in touched */
    uint32_t *touched;                   /* slots with a score this query */
    uint32_t n_touched;
    struct cand *cands;                  /* sort space, cap_items entries */
    size_t nb_bytes;
    uint64_t items_evicted, keys_evicted, nb_replaced;
};

void reco_params_default(struct reco_params *p)
{
    memset(p, 0, sizeof *p);
    p->max_items = 50000;
    p->max_neighbours = 64;
    p->max_keys = 100000;
    p->window = 10;
    p->window_s = 86400;
    p->half_life_s = 7 * 86400;
    p->query_items = 5;
    p->w_seq = 1.0;
    p->w_cos = 0.1;
    p->cos_alpha = 0.7;
    p->w_repeat = 1.0;
    p->repeat_decay = 0.3;
    p->source_decay = 0.5;
    p->w_pop = 0.001;
    p->kind_weight[RECO_VIEW] = 1.0;
    p->kind_weight[RECO_CART] = 2.0;
    p->kind_weight[RECO_PURCHASE] = 3.0;
}

int reco_item_cmp(const char *a, const char *b)
{
    const char *x = a, *y = b;
    size_t la, lb;

    if (*a && *b && strspn(a, "0123456789") == strlen(a) && strspn(b, "0123456789") == strlen(b)) {
        while (*x == '0' && x[1])
            x++;
        while (*y == '0' && y[1])
            y++;
        la = strlen(x);
        lb = strlen(y);
        if (la != lb)
            return la < lb ? -1 : 1;
        int c = strcmp(x, y);
        if (c)
            return c;
    }
    return strcmp(a, b);
}

/* ---- LRU lists ---------------------------------------------------------- */

#define LRU_UNLINK(arr, l, i)                                  \
    do {                                                       \
        uint32_t p_ = (arr)[i].prev, n_ = (arr)[i].next;       \
        if (p_ != NIL)                                         \
            (arr)[p_].next = n_;                               \
        else                                                   \
            (l)->head = n_;                                    \
        if (n_ != NIL)                                         \
            (arr)[n_].prev = p_;                               \
        else                                                   \
            (l)->tail = p_;                                    \
    } while (0)

#define LRU_PUSH_HEAD(arr, l, i)                               \
    do {                                                       \
        (arr)[i].prev = NIL;                                   \
        (arr)[i].next = (l)->head;                             \
        if ((l)->head != NIL)                                  \
            (arr)[(l)->head].prev = (i);                       \
        (l)->head = (i);                                       \
        if ((l)->tail == NIL)                                  \
            (l)->tail = (i);                                   \
    } while (0)

/* ---- model -------------------------------------------------------------- */

static int params_ok(const struct reco_params *p)
{
    if (p->max_items < 2 || p->max_items > (1u << 30) || p->max_neighbours < 1 ||
        p->max_neighbours > (1u << 20) || p->max_keys < 1 || p->max_keys > (1u << 30) ||
        p->window < 1 || p->window > 64 || p->query_items < 1 || p->query_items > 64)
        return 0;
    if (!(p->window_s >= 0) || !(p->half_life_s >= 0) || !(p->cos_alpha >= 0 && p->cos_alpha <= 1))
        return 0;
    for (int k = 0; k < RECO_KINDS; k++)
        if (!(p->kind_weight[k] > 0) || !isfinite(p->kind_weight[k]))
            return 0;
    return 1;
}

struct reco_model *reco_model_new(const struct reco_params *p)
{
    struct reco_model *m;
    struct reco_params def;

    if (!p) {
        reco_params_default(&def);
        p = &def;
    }
    if (!params_ok(p))
        return NULL;
    if (!(m = xcalloc(1, sizeof *m)))
        return NULL;
    m->p = *p;
    m->item_lru.head = m->item_lru.tail = NIL;
    m->key_lru.head = m->key_lru.tail = NIL;
    if (!(m->item_map = strmap_new()) || !(m->key_map = strmap_new())) {
        reco_model_free(m);
        return NULL;
    }
    return m;
}

void reco_model_free(struct reco_model *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n_items; i++)
        xfree(m->items[i].nb);
    for (uint32_t i = 0; i < m->n_keys; i++)
        xfree(m->keys[i].ring);
    strmap_free(m->item_map);
    strmap_free(m->key_map);
    xfree(m->items);
    xfree(m->keys);
    xfree(m->acc);
    xfree(m->mark);
    xfree(m->touched);
    xfree(m->cands);
    xfree(m);
}

static int item_live(const struct reco_model *m, uint32_t id, uint32_t gen)
{
    return id < m->n_items && m->items[id].gen == gen && m->items[id].name;
}

/* Candidate order: score, then the id tie rule. */
static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;

    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return reco_item_cmp(a->name, b->name);
}

/* Popularity order of two items: frequency, then the id tie rule. */
static int pop_before(const struct reco_model *m, uint32_t a, uint32_t b)
{
    const struct item *x = &m->items[a], *y = &m->items[b];

    if (x->freq != y->freq)
        return x->freq > y->freq;
    return reco_item_cmp(x->name, y->name) < 0;
}

static void top_bubble(struct reco_model *m, uint32_t s)
{
    while (s > 0 && pop_before(m, m->top[s], m->top[s - 1])) {
        uint32_t t = m->top[s - 1];
        m->top[s - 1] = m->top[s];
        m->top[s] = t;
        m->items[m->top[s]].top_slot = (int32_t)s;
        m->items[m->top[s - 1]].top_slot = (int32_t)(s - 1);
        s--;
    }
}

/* Item id's frequency grew: keep the top list sorted and complete. */
static void top_update(struct reco_model *m, uint32_t id)
{
    struct item *it = &m->items[id];

    if (it->top_slot >= 0) {
        top_bubble(m, (uint32_t)it->top_slot);
        return;
    }
    if (m->n_top < RECO_POP_TOP) {
        if (m->top_dirty)
            return; /* the rebuild will place it */
        m->top[m->n_top] = id;
        it->top_slot = (int32_t)m->n_top++;
    } else if (pop_before(m, id, m->top[m->n_top - 1])) {
        m->items[m->top[m->n_top - 1]].top_slot = -1;
        m->top[m->n_top - 1] = id;
        it->top_slot = (int32_t)(m->n_top - 1);
    } else {
        return;
    }
    top_bubble(m, (uint32_t)it->top_slot);
}

static void top_remove(struct reco_model *m, uint32_t id)
{
    int32_t s = m->items[id].top_slot;

    if (s < 0)
        return;
    for (uint32_t i = (uint32_t)s; i + 1 < m->n_top; i++) {
        m->top[i] = m->top[i + 1];
        m->items[m->top[i]].top_slot = (int32_t)i;
    }
    m->n_top--;
    m->items[id].top_slot = -1;
    m->top_dirty = 1;
}

/* Rebuilds the top list by a full scan after an item in it was evicted. */
static void top_rebuild(struct reco_model *m)
{
    uint32_t n = 0;

    if (!m->top_dirty)
        return;
    m->top_dirty = 0;
    for (uint32_t i = 0; i < m->n_items; i++) {
        m->items[i].top_slot = -1;
        if (m->items[i].name)
            m->cands[n++] = (struct cand){m->items[i].freq, m->items[i].name, i};
    }
    if (n > 1)
        qsort(m->cands, n, sizeof *m->cands, cand_cmp);
    m->n_top = n < RECO_POP_TOP ? n : RECO_POP_TOP;
    for (uint32_t i = 0; i < m->n_top; i++) {
        m->top[i] = m->cands[i].id;
        m->items[m->top[i]].top_slot = (int32_t)i;
    }
}

/* Grows the per-item arrays to hold cap slots. */
static int items_grow(struct reco_model *m, uint32_t cap)
{
    void *p;

    if (!(p = xrealloc(m->items, (size_t)cap * sizeof *m->items)))
        return -1;
    m->items = p;
    if (!(p = xrealloc(m->acc, (size_t)cap * sizeof *m->acc)))
        return -1;
    m->acc = p;
    if (!(p = xrealloc(m->touched, (size_t)cap * sizeof *m->touched)))
        return -1;
    m->touched = p;
    if (!(p = xrealloc(m->cands, (size_t)cap * sizeof *m->cands)))
        return -1;
    m->cands = p;
    if (!(p = xrealloc(m->mark, cap)))
        return -1;
    m->mark = p;
    memset(m->mark + m->cap_items, 0, cap - m->cap_items);
    m->cap_items = cap;
    return 0;
}

/* The id of item name, created (evicting the coldest item when full) if
 * new.  Returns 0 or RECO_ENOMEM. */
static int item_get(struct reco_model *m, const char *name, uint32_t *out)
{
    uint32_t id;
    struct item *it;
    const char *stored;

    if (strmap_get(m->item_map, name, &id)) {
        LRU_UNLINK(m->items, &m->item_lru, id);
        LRU_PUSH_HEAD(m->items, &m->item_lru, id);
        *out = id;
        return 0;
    }
    if (m->n_items < m->p.max_items) {
        if (m->n_items == m->cap_items) {
            uint32_t cap = m->cap_items ? m->cap_items * 2 : 64;
            if (cap > m->p.max_items)
                cap = m->p.max_items;
            if (items_grow(m, cap) < 0)
                return RECO_ENOMEM;
        }
        id = m->n_items;
        if (strmap_put(m->item_map, name, id, &stored) < 0)
            return RECO_ENOMEM;
        m->n_items++;
        it = &m->items[id];
        memset(it, 0, sizeof *it);
    } else {
        /* Evict the least recently observed item and reuse its slot. */
        id = m->item_lru.tail;
        it = &m->items[id];
        if (strmap_put(m->item_map, name, id, &stored) < 0)
            return RECO_ENOMEM;
        LRU_UNLINK(m->items, &m->item_lru, id);
        top_remove(m, id);
        strmap_del(m->item_map, it->name);
        m->nb_bytes -= (size_t)it->cap_nb * sizeof(struct nb);
        xfree(it->nb);
        uint32_t gen = it->gen + 1;
        memset(it, 0, sizeof *it);
        it->gen = gen;
        m->items_evicted++;
    }
    it->name = stored;
    it->top_slot = -1;
    LRU_PUSH_HEAD(m->items, &m->item_lru, id);
    *out = id;
    return 0;
}

/* The slot of key name, created (evicting the least recently seen key) if
 * new.  Returns 0 or RECO_ENOMEM. */
static int key_get(struct reco_model *m, const char *name, uint32_t *out)
{
    uint32_t id;
    struct key *k;
    const char *stored;

    if (strmap_get(m->key_map, name, &id)) {
        LRU_UNLINK(m->keys, &m->key_lru, id);
        LRU_PUSH_HEAD(m->keys, &m->key_lru, id);
        *out = id;
        return 0;
    }
    if (m->n_keys < m->p.max_keys) {
        if (m->n_keys == m->cap_keys) {
            uint32_t cap = m->cap_keys ? m->cap_keys * 2 : 64;
            void *p;
            if (cap > m->p.max_keys)
                cap = m->p.max_keys;
            if (!(p = xrealloc(m->keys, (size_t)cap * sizeof *m->keys)))
                return RECO_ENOMEM;
            m->keys = p;
            m->cap_keys = cap;
        }
        id = m->n_keys;
        k = &m->keys[id];
        memset(k, 0, sizeof *k);
        if (!(k->ring = xcalloc(m->p.window, sizeof *k->ring)))
            return RECO_ENOMEM;
        if (strmap_put(m->key_map, name, id, &stored) < 0) {
            xfree(k->ring);
            return RECO_ENOMEM;
        }
        m->n_keys++;
    } else {
        id = m->key_lru.tail;
        k = &m->keys[id];
        if (strmap_put(m->key_map, name, id, &stored) < 0)
            return RECO_ENOMEM;
        LRU_UNLINK(m->keys, &m->key_lru, id);
        strmap_del(m->key_map, k->name);
        struct hist *ring = k->ring;
        memset(k, 0, sizeof *k);
        k->ring = ring;
        m->keys_evicted++;
    }
    k->name = stored;
    LRU_PUSH_HEAD(m->keys, &m->key_lru, id);
    *out = id;
    return 0;
}

/* The entry for neighbour (id, gen) in item x's list, added if missing
 * (into a stale slot, a new slot, or in place of the weakest entry).
 * Returns NULL when out of memory. */
static struct nb *nb_get(struct reco_model *m, uint32_t x, uint32_t id, uint32_t gen)
{
    struct item *it = &m->items[x];
    struct nb *e, *weak = NULL, *stale = NULL;

    for (uint32_t i = 0; i < it->n_nb; i++) {
        e = &it->nb[i];
        if (e->id == id && e->gen == gen)
            return e;
        if (!stale && !item_live(m, e->id, e->gen))
            stale = e;
        else if (!weak || e->seq + e->co < weak->seq + weak->co)
            weak = e;
    }
    if (stale) {
        e = stale;
    } else if (it->n_nb < it->cap_nb) {
        e = &it->nb[it->n_nb++];
    } else if (it->cap_nb < m->p.max_neighbours) {
        uint32_t cap = it->cap_nb ? it->cap_nb * 2 : 4;
        if (cap > m->p.max_neighbours)
            cap = m->p.max_neighbours;
        if (!(e = xrealloc(it->nb, (size_t)cap * sizeof *e)))
            return NULL;
        m->nb_bytes += (size_t)(cap - it->cap_nb) * sizeof *e;
        it->nb = e;
        it->cap_nb = cap;
        e = &it->nb[it->n_nb++];
    } else {
        e = weak;
        m->nb_replaced++;
    }
    e->id = id;
    e->gen = gen;
    e->seq = 0;
    e->co = 0;
    return e;
}

/* Multiplies every weight by f (see "Decay" above). */
static void rescale(struct reco_model *m, double f)
{
    for (uint32_t i = 0; i < m->n_items; i++) {
        struct item *it = &m->items[i];
        it->freq *= f;
        it->out *= f;
        for (uint32_t j = 0; j < it->n_nb; j++) {
            it->nb[j].seq = (float)(it->nb[j].seq * f);
            it->nb[j].co = (float)(it->nb[j].co * f);
        }
    }
}

/* The decay scale g(ts), rebasing first when it would grow too large. */
static double decay_scale(struct reco_model *m, double ts)
{
    double e;

    if (m->p.half_life_s <= 0)
        return 1.0;
    if (!m->have_base) {
        m->base_ts = ts;
        m->have_base = 1;
    }
    e = (ts - m->base_ts) / m->p.half_life_s;
    if (e > REBASE_EXP) {
        rescale(m, exp2(-e));
        m->base_ts = ts;
        e = 0;
    }
    return exp2(e < -1000 ? -1000 : e);
}

static int name_ok(const char *s)
{
    return s && *s && strlen(s) <= RECO_MAX_NAME;
}

int reco_observe(struct reco_model *m, const char *key, const char *item, enum reco_kind kind,
                 double ts)
{
    uint32_t id, kid, gen;
    struct key *k;
    struct item *it;
    double g, kw, w;
    int rc, recent = 0;

    if (!name_ok(key) || !name_ok(item) || (int)kind < 0 || kind >= RECO_KINDS || !isfinite(ts))
        return RECO_EINVAL;
    g = decay_scale(m, ts);
    if ((rc = item_get(m, item, &id)) < 0)
        return rc;
    if ((rc = key_get(m, key, &kid)) < 0)
        return rc;
    k = &m->keys[kid];
    it = &m->items[id];
    gen = it->gen;
    kw = m->p.kind_weight[kind];
    for (uint32_t d = 1; d <= k->n; d++) {
        struct hist *h = &k->ring[(k->head + m->p.window - d) % m->p.window];
        struct nb *fwd, *back;

        if (m->p.window_s > 0 && ts - h->ts > m->p.window_s)
            break;
        if (!item_live(m, h->id, h->gen))
            continue;
        if (h->id == id) {
            recent = 1;
            continue;
        }
        w = g * (kw > m->p.kind_weight[h->kind] ? kw : m->p.kind_weight[h->kind]);
        if (!(fwd = nb_get(m, h->id, id, gen)) || !(back = nb_get(m, id, h->id, h->gen)))
            return RECO_ENOMEM;
        fwd->seq += (float)(w / d);
        fwd->co += (float)w;
        back->co += (float)w;
        m->items[h->id].out += w / d;
    }
    if (!recent) {
        it->freq += kw * g;
        top_update(m, id);
    }
    k->ring[k->head] = (struct hist){id, gen, ts, (uint32_t)kind};
    k->head = (k->head + 1) % m->p.window;
    if (k->n < m->p.window)
        k->n++;
    int again = 0;
    for (uint32_t i = 0; kind == RECO_PURCHASE && i < k->n_bought; i++)
        if (k->bought[i].id == id && k->bought[i].gen == gen)
            again = 1; /* bought before: keep the ring for distinct items */
    if (kind == RECO_PURCHASE && !again) {
        k->bought[k->bought_head].id = id;
        k->bought[k->bought_head].gen = gen;
        k->bought_head = (k->bought_head + 1) % RECO_KEY_PURCHASES;
        if (k->n_bought < RECO_KEY_PURCHASES)
            k->n_bought++;
    }
    return 0;
}

/* ---- queries ------------------------------------------------------------ */

static void touch(struct reco_model *m, uint32_t id, double add)
{
    if (!m->mark[id]) {
        m->mark[id] = 1;
        m->acc[id] = 0;
        m->touched[m->n_touched++] = id;
    }
    m->acc[id] += add;
}

/* The similarity of neighbour entry e of source item src (its weight in
 * the scoring formula without the source's own weight). */
static double pair_score(const struct reco_model *m, const struct item *src, const struct nb *e)
{
    const struct item *dst = &m->items[e->id];
    double s = 0;

    if (src->out > 0)
        s += m->p.w_seq * e->seq / src->out;
    if (m->p.w_cos > 0 && src->freq > 0 && dst->freq > 0)
        s += m->p.w_cos * e->co /
             (pow(src->freq, m->p.cos_alpha) * pow(dst->freq, 1 - m->p.cos_alpha));
    return s;
}

/* Excluded items of a query: the caller's callback and a purchase list. */
struct excl {
    reco_exclude_fn fn;
    void *ctx;
    const struct key *k;    /* its purchases are excluded; may be NULL */
};

static int excluded(const struct reco_model *m, const struct excl *x, uint32_t id)
{
    if (x->k)
        for (uint32_t i = 0; i < x->k->n_bought; i++)
            if (x->k->bought[i].id == id && x->k->bought[i].gen == m->items[id].gen)
                return 1;
    return x->fn && x->fn(x->ctx, m->items[id].name);
}

/* Sorts the touched candidates, merges them with the untouched popular
 * items (whose score is their popularity term alone, already in order),
 * writes the best k not excluded to out and clears the scratch space. */
static size_t finish(struct reco_model *m, size_t k, double fmax, const struct excl *x,
                     struct reco_hit *out)
{
    size_t n = 0, nc = m->n_touched, ci = 0, ti = 0;

    for (uint32_t i = 0; i < m->n_touched; i++) {
        uint32_t id = m->touched[i];
        m->cands[i] = (struct cand){m->acc[id], m->items[id].name, id};
    }
    if (nc > 1)
        qsort(m->cands, nc, sizeof *m->cands, cand_cmp);
    while (n < k) {
        struct cand c, t;
        int have_t = 0;

        while (ti < m->n_top && m->mark[m->top[ti]])
            ti++;
        if (ti < m->n_top && fmax > 0) {
            uint32_t id = m->top[ti];
            t = (struct cand){m->p.w_pop * m->items[id].freq / fmax, m->items[id].name, id};
            have_t = 1;
        }
        if (ci < nc && (!have_t || cand_cmp(&m->cands[ci], &t) <= 0)) {
            c = m->cands[ci++];
        } else if (have_t) {
            c = t;
            ti++;
        } else {
            break;
        }
        if (!excluded(m, x, c.id))
            out[n++] = (struct reco_hit){c.name, c.score};
    }
    for (uint32_t i = 0; i < m->n_touched; i++)
        m->mark[m->touched[i]] = 0;
    m->n_touched = 0;
    return n;
}

/* Scores the session ids[0..n) (oldest first, kinds alongside). */
static size_t score_session(struct reco_model *m, const uint32_t *ids, const uint32_t *kinds,
                            size_t n, size_t k, const struct excl *x, struct reco_hit *out)
{
    uint32_t src[64];
    size_t nsrc = 0;
    double fmax, sw = 1.0, rw = 1.0;

    if (k > RECO_MAX_K)
        k = RECO_MAX_K;
    top_rebuild(m);
    fmax = m->n_top ? m->items[m->top[0]].freq : 0;
    for (size_t e = n; e-- > 0 && nsrc < m->p.query_items;) {
        uint32_t j = ids[e];
        const struct item *s = &m->items[j];
        size_t q;
        double w;

        for (q = 0; q < nsrc && src[q] != j; q++)
            ;
        if (q < nsrc)
            continue;
        src[nsrc++] = j;
        w = sw * m->p.kind_weight[kinds[e]];
        sw *= m->p.source_decay;
        for (uint32_t i = 0; i < s->n_nb; i++) {
            const struct nb *nb = &s->nb[i];
            if (item_live(m, nb->id, nb->gen))
                touch(m, nb->id, w * pair_score(m, s, nb));
        }
    }
    for (size_t e = n; e-- > 0;) {
        touch(m, ids[e], m->p.w_repeat * rw);
        rw *= m->p.repeat_decay;
    }
    if (fmax > 0)
        for (uint32_t i = 0; i < m->n_touched; i++) {
            uint32_t id = m->touched[i];
            m->acc[id] += m->p.w_pop * m->items[id].freq / fmax;
        }
    return finish(m, k, fmax, x, out);
}

size_t reco_for_session(struct reco_model *m, const struct reco_event *ev, size_t n, size_t k,
                        reco_exclude_fn exclude, void *ctx, struct reco_hit *out)
{
    uint32_t ids[QUERY_EVENTS], kinds[QUERY_EVENTS];
    size_t nn = 0, start = n > QUERY_EVENTS ? n - QUERY_EVENTS : 0;
    struct excl x = {exclude, ctx, NULL};

    for (size_t i = start; i < n; i++) {
        uint32_t id;
        if (ev[i].item && (int)ev[i].kind >= 0 && ev[i].kind < RECO_KINDS &&
            strmap_get(m->item_map, ev[i].item, &id)) {
            ids[nn] = id;
            kinds[nn++] = ev[i].kind;
        }
    }
    return score_session(m, ids, kinds, nn, k, &x, out);
}

size_t reco_for_key(struct reco_model *m, const char *key, size_t k, reco_exclude_fn exclude,
                    void *ctx, struct reco_hit *out)
{
    uint32_t ids[64], kinds[64], kid;
    size_t nn = 0;
    struct excl x = {exclude, ctx, NULL};

    if (key && strmap_get(m->key_map, key, &kid)) {
        const struct key *kk = &m->keys[kid];
        x.k = kk;
        for (uint32_t d = kk->n; d >= 1; d--) {
            const struct hist *h = &kk->ring[(kk->head + m->p.window - d) % m->p.window];
            if (item_live(m, h->id, h->gen)) {
                ids[nn] = h->id;
                kinds[nn++] = h->kind;
            }
        }
    }
    return score_session(m, ids, kinds, nn, k, &x, out);
}

size_t reco_similar(struct reco_model *m, const char *item, size_t k, struct reco_hit *out)
{
    uint32_t id, n = 0;
    const struct item *s;

    if (!item || !strmap_get(m->item_map, item, &id))
        return 0;
    if (k > RECO_MAX_K)
        k = RECO_MAX_K;
    s = &m->items[id];
    for (uint32_t i = 0; i < s->n_nb; i++) {
        const struct nb *nb = &s->nb[i];
        if (item_live(m, nb->id, nb->gen))
            m->cands[n++] = (struct cand){pair_score(m, s, nb), m->items[nb->id].name, nb->id};
    }
    if (n > 1)
        qsort(m->cands, n, sizeof *m->cands, cand_cmp);
    if (n > k)
        n = (uint32_t)k;
    for (uint32_t i = 0; i < n; i++)
        out[i] = (struct reco_hit){m->cands[i].name, m->cands[i].score};
    return n;
}

size_t reco_popular(struct reco_model *m, size_t k, struct reco_hit *out)
{
    size_t n = 0;
    double fmax;

    top_rebuild(m);
    fmax = m->n_top ? m->items[m->top[0]].freq : 0;
    for (; n < k && n < m->n_top && fmax > 0; n++) {
        const struct item *it = &m->items[m->top[n]];
        out[n] = (struct reco_hit){it->name, it->freq / fmax};
    }
    return n;
}

void reco_get_stats(const struct reco_model *m, struct reco_stats *st)
{
    memset(st, 0, sizeof *st);
    st->items = strmap_count(m->item_map);
    st->keys = strmap_count(m->key_map);
    for (uint32_t i = 0; i < m->n_items; i++)
        st->neighbours += m->items[i].n_nb;
    st->items_evicted = m->items_evicted;
    st->keys_evicted = m->keys_evicted;
    st->neighbours_replaced = m->nb_replaced;
    st->bytes = sizeof *m + strmap_bytes(m->item_map) + strmap_bytes(m->key_map) + m->nb_bytes +
                (size_t)m->cap_items * (sizeof(struct item) + sizeof(double) + 1 +
                                        sizeof(uint32_t) + sizeof(struct cand)) +
                (size_t)m->cap_keys * sizeof(struct key) +
                (size_t)m->n_keys * m->p.window * sizeof(struct hist);
}

/* ---- metrics ------------------------------------------------------------ */

void reco_metrics_init(struct reco_metrics *mt, size_t k)
{
    memset(mt, 0, sizeof *mt);
    mt->k = k;
}

size_t reco_metrics_add(struct reco_metrics *mt, const struct reco_hit *top, size_t n,
                        const char *target)
{
    mt->points++;
    for (size_t r = 0; r < n && r < mt->k; r++)
        if (!strcmp(top[r].item, target)) {
            mt->hits++;
            mt->rr_sum += 1.0 / (double)(r + 1);
            return r + 1;
        }
    return 0;
}

double reco_metrics_hr(const struct reco_metrics *mt)
{
    return mt->points ? (double)mt->hits / (double)mt->points : 0;
}

double reco_metrics_mrr(const struct reco_metrics *mt)
{
    return mt->points ? mt->rr_sum / (double)mt->points : 0;
}
