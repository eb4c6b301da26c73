/* kpi.c: the aggregate of one event-time window (kpi.h): counting events,
 * distinct sets that are exact up to a cap and then a HyperLogLog sketch,
 * the product map, merging partials, the binary form and the shop.kpis JSON.
 *
 * It leaves windowing, watermarks, late events and the funnel's per-session
 * state to the analytics processor, which tells kpi_agg_add which funnel step
 * an event reached.  The binary form is described in kpi.h; this file makes
 * it canonical (exact hashes ascending, products by id ascending, shortest
 * varints), so that equal aggregates encode to equal bytes and decode accepts
 * only what encode can write.
 *
 * Hot path: kpi_agg_add hashes an id once per set and probes an
 * open-addressing table (linear probing, load at most 1/2); nothing is
 * allocated once the tables have grown to the window's population. */
#include "shop/kpi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/varint.h"

#define KPI_VERSION 1
#define KPI_HLL_RANK_BITS (64 - KPI_HLL_P)     /* 50 bits left for the rank */
#define KPI_HLL_MAX_RANK (KPI_HLL_RANK_BITS + 1) /* 51: all 50 bits zero */
#define KPI_MIN_SLOTS 16
#define KPI_UV_ERROR 0.0081
/* Smallest encoded product: empty id (1), views (1), units (1). */
#define KPI_MIN_PRODUCT_BYTES 3

/* ---- hash ------------------------------------------------------------- */

/* Little-endian loads, so that hashes (which are stored in changelogs) are
 * the same on every host. */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t load_le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

#define KH_A 0x9e3779b97f4a7c15ull /* odd multipliers with well-spread bits */
#define KH_B 0xc2b2ae3d27d4eb4full
#define KH_C 0xbf58476d1ce4e5b9ull
#define KH_D 0x94d049bb133111ebull

/* One 8-byte step.  For a fixed word it is a bijection of the state, and for
 * a fixed state it is a bijection of the word, so two inputs of the same
 * length that differ in one word never meet. */
static inline uint64_t kh_step(uint64_t h, uint64_t w)
{
    return rotl64((h ^ w) * KH_B, 29) * KH_A;
}

/* A full avalanche: every input bit flips each output bit with probability
 * close to 1/2, which the HLL (top bits for the register, the rest for the
 * rank) and the tables (low bits for the slot) both need. */
static inline uint64_t kh_final(uint64_t x)
{
    x ^= x >> 31;
    x *= KH_C;
    x ^= x >> 29;
    x *= KH_D;
    x ^= x >> 32;
    return x;
}

uint64_t kpi_hash(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = KH_A ^ ((uint64_t)n * KH_C);
    if (n > 8) {
        const unsigned char *last = p + n - 8;
        while (p < last) {
            h = kh_step(h, load_le64(p));
            p += 8;
        }
        /* The last word overlaps the one before; the length in the seed
         * keeps that injective. */
        h = kh_step(h, load_le64(last));
    } else if (n >= 4) {
        h = kh_step(h, load_le32(p) | load_le32(p + n - 4) << 32);
    } else if (n > 0) {
        h = kh_step(h, (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1]);
    }
    return kh_final(h);
}

/* ---- saturating counters -------------------------------------------- */

/* Counters are never negative (decode rejects negatives, add skips negative
 * amounts), so saturating at INT64_MAX keeps them well defined even for
 * hostile inputs. */
static inline int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return INT64_MAX;
    return r;
}

/* ---- distinct sets ---------------------------------------------------- */

static inline void hll_add(uint8_t *reg, uint64_t h)
{
    size_t idx = (size_t)(h >> KPI_HLL_RANK_BITS);
    uint64_t w = h & ((UINT64_C(1) << KPI_HLL_RANK_BITS) - 1);
    uint8_t rank = w ? (uint8_t)(__builtin_clzll(w) - KPI_HLL_P + 1) : (uint8_t)KPI_HLL_MAX_RANK;
    if (reg[idx] < rank)
        reg[idx] = rank;
}

static void dset_free(struct kpi_distinct *d)
{
    xfree(d->hashes);
    xfree(d->reg);
    memset(d, 0, sizeof *d);
}

/* Turns an exact set into a sketch of the same members.  Returns 0 or -1
 * (the set is unchanged). */
static int dset_to_hll(struct kpi_distinct *d)
{
    uint8_t *reg = xcalloc(KPI_HLL_REGISTERS, 1);
    if (!reg)
        return -1;
    for (size_t i = 0; i < d->cap; i++)
        if (d->hashes[i])
            hll_add(reg, d->hashes[i]);
    if (d->has_zero)
        hll_add(reg, 0);
    xfree(d->hashes);
    d->hashes = NULL;
    d->n = d->cap = 0;
    d->has_zero = 0;
    d->reg = reg;
    d->hll = 1;
    return 0;
}

/* Puts a nonzero hash known to be absent into a table with room. */
static inline void table_put(uint64_t *t, size_t cap, uint64_t h)
{
    size_t mask = cap - 1, i = (size_t)h & mask;
    while (t[i])
        i = (i + 1) & mask;
    t[i] = h;
}

/* Makes room for `want` nonzero members at load <= 1/2.  Returns 0 or -1. */
static int dset_reserve(struct kpi_distinct *d, size_t want)
{
    if (want <= d->cap / 2)
        return 0;
    size_t cap = d->cap ? d->cap : KPI_MIN_SLOTS;
    while (want > cap / 2) {
        if (cap > SIZE_MAX / 2 / sizeof(uint64_t))
            return -1;
        cap *= 2;
    }
    uint64_t *t = xcalloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < d->cap; i++)
        if (d->hashes[i])
            table_put(t, cap, d->hashes[i]);
    xfree(d->hashes);
    d->hashes = t;
    d->cap = cap;
    return 0;
}

/* The slow half of dset_add: h is not a member of the exact set d. */
static int dset_add_new(struct kpi_distinct *d, uint64_t h, size_t limit)
{
    if (d->n + 1 > limit) {
        if (dset_to_hll(d) < 0)
            return -1;
        hll_add(d->reg, h);
        return 0;
    }
    if (h == 0) {
        d->has_zero = 1;
        d->n++;
        return 0;
    }
    size_t nonzero = d->n - (size_t)d->has_zero;
    if (dset_reserve(d, nonzero + 1) < 0)
        return -1;
    table_put(d->hashes, d->cap, h);
    d->n++;
    return 0;
}

/* Adds the hash h.  An exact set holds at most `limit` members; the member
 * that would pass it turns the set into a sketch.  Returns 0 or -1. */
static inline int dset_add(struct kpi_distinct *d, uint64_t h, size_t limit)
{
    if (d->hll) {
        hll_add(d->reg, h);
        return 0;
    }
    if (h == 0) {
        if (d->has_zero)
            return 0;
    } else if (d->cap) {
        size_t mask = d->cap - 1, i = (size_t)h & mask;
        uint64_t s;
        while ((s = d->hashes[i]) != 0) {
            if (s == h)
                return 0;
            i = (i + 1) & mask;
        }
    }
    return dset_add_new(d, h, limit);
}

/* dst |= src. */
static int dset_merge(struct kpi_distinct *dst, const struct kpi_distinct *src, size_t limit)
{
    if (src->hll) {
        if (!dst->hll && dset_to_hll(dst) < 0)
            return -1;
        for (size_t i = 0; i < KPI_HLL_REGISTERS; i++)
            if (dst->reg[i] < src->reg[i])
                dst->reg[i] = src->reg[i];
        return 0;
    }
    if (!dst->hll) {
        /* Reserving for the whole union first avoids growing step by step;
         * past the cap the set becomes a sketch anyway. */
        size_t nz = dst->n - (size_t)dst->has_zero + src->n;
        if (dst->n + src->n <= limit && dset_reserve(dst, nz) < 0)
            return -1;
    }
    if (src->has_zero && dset_add(dst, 0, limit) < 0)
        return -1;
    for (size_t i = 0; i < src->cap; i++)
        if (src->hashes[i] && dset_add(dst, src->hashes[i], limit) < 0)
            return -1;
    return 0;
}

int64_t kpi_distinct_count(const struct kpi_distinct *d)
{
    if (!d->hll)
        return (int64_t)d->n;
    const double m = KPI_HLL_REGISTERS;
    double sum = 0;
    size_t zeros = 0;
    for (size_t i = 0; i < KPI_HLL_REGISTERS; i++) {
        sum += ldexp(1.0, -(int)d->reg[i]);
        zeros += d->reg[i] == 0;
    }
    double alpha = 0.7213 / (1.0 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros > 0)
        e = m * log(m / (double)zeros); /* linear counting for small sets */
    if (!(e < 9.2e18))
        return INT64_MAX;
    return (int64_t)llround(e);
}

/* ---- products --------------------------------------------------------- */

/* s (a C string) equals id[0..n) (which holds no NUL). */
static inline int id_eq(const char *s, const char *id, size_t n)
{
    return strncmp(s, id, n) == 0 && s[n] == 0;
}

/* Makes room for `want` products at load <= 1/2.  Returns 0 or -1. */
static int prod_reserve(struct kpi_agg *a, size_t want)
{
    if (want <= a->products_cap / 2)
        return 0;
    size_t cap = a->products_cap ? a->products_cap : KPI_MIN_SLOTS;
    while (want > cap / 2) {
        if (cap > SIZE_MAX / 2 / sizeof(struct kpi_product))
            return -1;
        cap *= 2;
    }
    struct kpi_product *t = xcalloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < a->products_cap; i++) {
        struct kpi_product *p = &a->products[i];
        if (!p->id)
            continue;
        size_t j = (size_t)kpi_hash(p->id, strlen(p->id)) & (cap - 1);
        while (t[j].id)
            j = (j + 1) & (cap - 1);
        t[j] = *p;
    }
    xfree(a->products);
    a->products = t;
    a->products_cap = cap;
    return 0;
}

/* The product id[0..n) (no NUL inside), inserted with zero counts if new.
 * Returns NULL when out of memory. */
static struct kpi_product *prod_get(struct kpi_agg *a, const char *id, size_t n)
{
    uint64_t h = kpi_hash(id, n);
    size_t mask, i;
    if (a->products_cap) {
        mask = a->products_cap - 1;
        for (i = (size_t)h & mask; a->products[i].id; i = (i + 1) & mask)
            if (id_eq(a->products[i].id, id, n))
                return &a->products[i];
    }
    char *copy = xstrndup(id, n);
    if (!copy)
        return NULL;
    if (prod_reserve(a, a->nproducts + 1) < 0) {
        xfree(copy);
        return NULL;
    }
    mask = a->products_cap - 1;
    for (i = (size_t)h & mask; a->products[i].id; i = (i + 1) & mask)
        ;
    a->products[i].id = copy;
    a->products[i].views = a->products[i].units = 0;
    a->nproducts++;
    return &a->products[i];
}

/* A product id as the map keys it: the bytes before any NUL (ids are C
 * strings; the event parser lets \u0000 through). */
static inline size_t id_len(const struct shop_str *s)
{
    const char *z = memchr(s->p, 0, s->n);
    return z ? (size_t)(z - s->p) : s->n;
}

/* ---- aggregate -------------------------------------------------------- */

static int window_ok(const char *w, size_t n)
{
    return n == 2 && w[0] == '1' && (w[1] == 'm' || w[1] == 'h' || w[1] == 'd');
}

struct kpi_agg *kpi_agg_new(const char *window, int64_t start, int64_t end, size_t uv_exact_cap)
{
    if (!window || !window_ok(window, strlen(window)))
        return NULL;
    struct kpi_agg *a = xcalloc(1, sizeof *a);
    if (!a)
        return NULL;
    memcpy(a->window, window, 3);
    a->start = start;
    a->end = end;
    a->uv_exact_cap = uv_exact_cap;
    return a;
}

void kpi_agg_free(struct kpi_agg *a)
{
    if (!a)
        return;
    dset_free(&a->uv);
    dset_free(&a->purchasers);
    for (size_t i = 0; i < a->products_cap; i++)
        xfree(a->products[i].id);
    xfree(a->products);
    xfree(a);
}

static void currency_see(struct kpi_agg *a, const char *c, size_t n)
{
    if (n == 0 || strcmp(a->currency, "mixed") == 0)
        return;
    if (n >= sizeof a->currency || memchr(c, 0, n)) {
        /* A currency that cannot be stored cannot be reported alone. */
        memcpy(a->currency, "mixed", 6);
        return;
    }
    if (a->currency[0] == 0) {
        memcpy(a->currency, c, n);
        a->currency[n] = 0;
    } else if (!id_eq(a->currency, c, n)) {
        memcpy(a->currency, "mixed", 6);
    }
}

int kpi_agg_add(struct kpi_agg *a, const struct shop_event *ev, enum kpi_step step)
{
    return kpi_agg_add_hashed(a, ev, step,
                              ev->user_id.p ? kpi_hash(ev->user_id.p, ev->user_id.n) : 0);
}

int kpi_agg_add_hashed(struct kpi_agg *a, const struct shop_event *ev, enum kpi_step step,
                       uint64_t user_hash)
{
    int clicks = 0;
    switch (ev->type) {
    case SHOP_EV_ORDER_CREATED:
        for (size_t i = 0; i < ev->nitems; i++) {
            const struct shop_item *it = &ev->items[i];
            if (!it->product_id.p || it->qty <= 0)
                continue;
            struct kpi_product *p = prod_get(a, it->product_id.p, id_len(&it->product_id));
            if (!p)
                return -1;
            p->units = sat_add(p->units, it->qty);
        }
        if (ev->amount > 0)
            a->gmv = sat_add(a->gmv, ev->amount);
        a->orders = sat_add(a->orders, 1);
        if (ev->currency.p)
            currency_see(a, ev->currency.p, ev->currency.n);
        break;
    case SHOP_EV_ORDER_PAID:
        if (ev->amount > 0)
            a->paid_revenue = sat_add(a->paid_revenue, ev->amount);
        break;
    case SHOP_EV_REFUND_ISSUED:
        if (ev->amount > 0)
            a->refunds = sat_add(a->refunds, ev->amount);
        break;
    case SHOP_EV_PRODUCT_VIEW:
        if (ev->product_id.p) {
            struct kpi_product *p = prod_get(a, ev->product_id.p, id_len(&ev->product_id));
            if (!p)
                return -1;
            p->views = sat_add(p->views, 1);
        }
        /* fall through */
    case SHOP_EV_PAGE_VIEW:
        a->pv = sat_add(a->pv, 1);
        /* fall through */
    case SHOP_EV_SEARCH:
    case SHOP_EV_ADD_TO_CART:
    case SHOP_EV_REMOVE_FROM_CART:
    case SHOP_EV_CHECKOUT:
    case SHOP_EV_PURCHASE:
        clicks = 1;
        break;
    default:
        break;
    }
    if (clicks && ev->user_id.p) {
        uint64_t h = user_hash;
        if (dset_add(&a->uv, h, a->uv_exact_cap) < 0)
            return -1;
        if (ev->type == SHOP_EV_PURCHASE && dset_add(&a->purchasers, h, a->uv_exact_cap) < 0)
            return -1;
    }
    if (step >= KPI_STEP_PRODUCT_VIEW && step <= KPI_STEP_PURCHASE)
        a->funnel[step - 1] = sat_add(a->funnel[step - 1], 1);
    return 0;
}

int kpi_agg_merge(struct kpi_agg *dst, const struct kpi_agg *src)
{
    if (dst == src || strcmp(dst->window, src->window) != 0 || dst->start != src->start)
        return -1;
    if (dset_merge(&dst->uv, &src->uv, dst->uv_exact_cap) < 0 ||
        dset_merge(&dst->purchasers, &src->purchasers, dst->uv_exact_cap) < 0)
        return -1;
    if (prod_reserve(dst, dst->nproducts + src->nproducts) < 0)
        return -1;
    for (size_t i = 0; i < src->products_cap; i++) {
        const struct kpi_product *s = &src->products[i];
        if (!s->id)
            continue;
        struct kpi_product *d = prod_get(dst, s->id, strlen(s->id));
        if (!d)
            return -1;
        d->views = sat_add(d->views, s->views);
        d->units = sat_add(d->units, s->units);
    }
    dst->gmv = sat_add(dst->gmv, src->gmv);
    dst->orders = sat_add(dst->orders, src->orders);
    dst->paid_revenue = sat_add(dst->paid_revenue, src->paid_revenue);
    dst->refunds = sat_add(dst->refunds, src->refunds);
    dst->pv = sat_add(dst->pv, src->pv);
    dst->late_events = sat_add(dst->late_events, src->late_events);
    for (int i = 0; i < 4; i++)
        dst->funnel[i] = sat_add(dst->funnel[i], src->funnel[i]);
    if (src->currency[0])
        currency_see(dst, src->currency, strlen(src->currency));
    return 0;
}

/* ---- binary form ------------------------------------------------------ */

static void put_uv(struct jbuf *out, uint64_t v)
{
    uint8_t tmp[10];
    jbuf_raw(out, (const char *)tmp, varint_put_u64(tmp, v));
}

static void put_zz(struct jbuf *out, int64_t v)
{
    uint8_t tmp[10];
    jbuf_raw(out, (const char *)tmp, varint_put_zz64(tmp, v));
}

static void put_str(struct jbuf *out, const char *s)
{
    size_t n = strlen(s);
    put_uv(out, n);
    jbuf_raw(out, s, n);
}

/* Sorts a[0..n) ascending: LSD radix, one byte per pass, skipping passes
 * where every key has the same byte.  tmp holds n. */
static void sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
    uint64_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((src[i] >> shift) & 0xff) + 1]++;
        if (count[((src[0] >> shift) & 0xff) + 1] == n)
            continue;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

static int dset_encode(const struct kpi_distinct *d, struct jbuf *out)
{
    if (d->hll) {
        jbuf_raw(out, "\x01", 1);
        jbuf_raw(out, (const char *)d->reg, KPI_HLL_REGISTERS);
        return 0;
    }
    jbuf_raw(out, "\x00", 1);
    put_uv(out, d->n);
    if (d->n == 0)
        return 0;
    uint64_t *h = xmalloc(d->n * 2 * sizeof *h);
    if (!h)
        return -1;
    size_t k = 0;
    if (d->has_zero)
        h[k++] = 0;
    for (size_t i = 0; i < d->cap; i++)
        if (d->hashes[i])
            h[k++] = d->hashes[i];
    sort_u64(h, h + k, k);
    /* In place into little-endian bytes: each element is read before its
     * own 8 bytes are written. */
    uint8_t *b = (uint8_t *)h;
    for (size_t i = 0; i < k; i++) {
        uint64_t v = h[i];
        for (int j = 0; j < 8; j++)
            b[i * 8 + (size_t)j] = (uint8_t)(v >> (8 * j));
    }
    jbuf_raw(out, (const char *)b, k * 8);
    xfree(h);
    return 0;
}

static int prod_cmp(const void *x, const void *y)
{
    const struct kpi_product *a = *(const struct kpi_product *const *)x;
    const struct kpi_product *b = *(const struct kpi_product *const *)y;
    return strcmp(a->id, b->id);
}

int kpi_agg_encode(const struct kpi_agg *a, struct jbuf *out)
{
    if (out->oom)
        return -1;
    size_t len0 = out->len;
    const struct kpi_product **ps = NULL;
    if (a->nproducts) {
        ps = xmalloc(a->nproducts * sizeof *ps);
        if (!ps)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < a->products_cap; i++)
            if (a->products[i].id)
                ps[k++] = &a->products[i];
        qsort(ps, k, sizeof *ps, prod_cmp);
    }
    uint8_t version = KPI_VERSION;
    jbuf_raw(out, (const char *)&version, 1);
    put_str(out, a->window);
    put_zz(out, a->start);
    put_zz(out, a->end);
    put_zz(out, a->gmv);
    put_zz(out, a->orders);
    put_zz(out, a->paid_revenue);
    put_zz(out, a->refunds);
    put_zz(out, a->pv);
    put_zz(out, a->late_events);
    for (int i = 0; i < 4; i++)
        put_zz(out, a->funnel[i]);
    put_str(out, a->currency);
    int rc = 0;
    if (dset_encode(&a->uv, out) < 0 || dset_encode(&a->purchasers, out) < 0)
        rc = -1;
    put_uv(out, a->nproducts);
    for (size_t i = 0; rc == 0 && i < a->nproducts; i++) {
        put_str(out, ps[i]->id);
        put_zz(out, ps[i]->views);
        put_zz(out, ps[i]->units);
    }
    xfree(ps);
    if (rc < 0 && !out->oom) {
        out->len = len0; /* no half-written aggregate */
        out->p[len0] = 0;
    }
    return rc < 0 || out->oom ? -1 : 0;
}

/* A bounded reader over the encoding; every function returns 0 or -1 and
 * never reads at or past end. */
struct rd {
    const uint8_t *p, *end;
};

/* Accepts only the shortest encoding, so that decoding then encoding gives
 * the same bytes. */
static int rd_uv(struct rd *r, uint64_t *v)
{
    size_t n = varint_get_u64(r->p, r->end, 10, v);
    if (n == 0 || (n > 1 && r->p[n - 1] == 0) || (n == 10 && r->p[9] > 1))
        return -1;
    r->p += n;
    return 0;
}

static int rd_zz(struct rd *r, int64_t *v)
{
    uint64_t u;
    if (rd_uv(r, &u) < 0)
        return -1;
    *v = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return 0;
}

/* A counter: never negative. */
static int rd_count(struct rd *r, int64_t *v)
{
    return rd_zz(r, v) < 0 || *v < 0 ? -1 : 0;
}

static int rd_str(struct rd *r, const uint8_t **s, size_t *n)
{
    uint64_t len;
    if (rd_uv(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
        return -1;
    *s = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

/* Well-formed UTF-8 without NUL: no overlongs, no surrogates, nothing past
 * U+10FFFF, so the JSON written from it is valid. */
static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int dset_decode(struct rd *r, struct kpi_distinct *d, size_t limit)
{
    if (r->p >= r->end)
        return -1;
    uint8_t kind = *r->p++;
    if (kind == 1) {
        if ((size_t)(r->end - r->p) < KPI_HLL_REGISTERS)
            return -1;
        for (size_t i = 0; i < KPI_HLL_REGISTERS; i++)
            if (r->p[i] > KPI_HLL_MAX_RANK)
                return -1;
        d->reg = xmalloc(KPI_HLL_REGISTERS);
        if (!d->reg)
            return -1;
        memcpy(d->reg, r->p, KPI_HLL_REGISTERS);
        d->hll = 1;
        r->p += KPI_HLL_REGISTERS;
        return 0;
    }
    uint64_t n;
    if (kind != 0 || rd_uv(r, &n) < 0 || n > limit || n > (uint64_t)(r->end - r->p) / 8)
        return -1;
    if (n && dset_reserve(d, (size_t)n) < 0)
        return -1;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h = load_le64(r->p);
        r->p += 8;
        if (i > 0 && h <= prev)
            return -1; /* strictly ascending: canonical, no duplicates */
        prev = h;
        if (h == 0)
            d->has_zero = 1;
        else
            table_put(d->hashes, d->cap, h);
        d->n++;
    }
    return 0;
}

/* Bytewise order of a[0..an) and b[0..bn) (the order of strcmp on ids). */
static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

struct kpi_agg *kpi_agg_decode(const void *p, size_t n, size_t uv_exact_cap)
{
    struct rd r = {(const uint8_t *)p, (const uint8_t *)p + n};
    struct kpi_agg *a = NULL;
    const uint8_t *s;
    size_t sn;
    if (n < 1 || r.p[0] != KPI_VERSION)
        return NULL;
    r.p++;
    if (rd_str(&r, &s, &sn) < 0 || !window_ok((const char *)s, sn))
        return NULL;
    char window[3] = {(char)s[0], (char)s[1], 0};
    int64_t start, end;
    if (rd_zz(&r, &start) < 0 || rd_zz(&r, &end) < 0)
        return NULL;
    a = kpi_agg_new(window, start, end, uv_exact_cap);
    if (!a)
        return NULL;
    if (rd_count(&r, &a->gmv) < 0 || rd_count(&r, &a->orders) < 0 ||
        rd_count(&r, &a->paid_revenue) < 0 || rd_count(&r, &a->refunds) < 0 ||
        rd_count(&r, &a->pv) < 0 || rd_count(&r, &a->late_events) < 0)
        goto err;
    for (int i = 0; i < 4; i++)
        if (rd_count(&r, &a->funnel[i]) < 0)
            goto err;
    if (rd_str(&r, &s, &sn) < 0 || sn >= sizeof a->currency || !utf8_ok(s, sn))
        goto err;
    memcpy(a->currency, s, sn);
    a->currency[sn] = 0;
    if (dset_decode(&r, &a->uv, uv_exact_cap) < 0 ||
        dset_decode(&r, &a->purchasers, uv_exact_cap) < 0)
        goto err;
    uint64_t np;
    if (rd_uv(&r, &np) < 0 || np > (uint64_t)(r.end - r.p) / KPI_MIN_PRODUCT_BYTES)
        goto err;
    if (np && prod_reserve(a, (size_t)np) < 0)
        goto err;
    const uint8_t *prev = NULL;
    size_t prevn = 0;
    for (uint64_t i = 0; i < np; i++) {
        int64_t views, units;
        if (rd_str(&r, &s, &sn) < 0 || rd_count(&r, &views) < 0 || rd_count(&r, &units) < 0)
            goto err;
        if ((views == 0 && units == 0) || !utf8_ok(s, sn))
            goto err;
        if (prev && bytes_cmp(prev, prevn, s, sn) >= 0)
            goto err; /* strictly ascending ids: canonical, no duplicates */
        prev = s;
        prevn = sn;
        struct kpi_product *pr = prod_get(a, (const char *)s, sn);
        if (!pr)
            goto err;
        pr->views = views;
        pr->units = units;
    }
    if (r.p != r.end)
        goto err;
    return a;
err:
    kpi_agg_free(a);
    return NULL;
}

/* ---- JSON ------------------------------------------------------------- */

static inline int64_t prod_count(const struct kpi_product *p, int by_units)
{
    return by_units ? p->units : p->views;
}

/* x ranks before y: larger count, then smaller id. */
static int prod_before(const struct kpi_product *x, const struct kpi_product *y, int by_units)
{
    int64_t cx = prod_count(x, by_units), cy = prod_count(y, by_units);
    if (cx != cy)
        return cx > cy;
    return strcmp(x->id, y->id) < 0;
}

static void write_top(const struct kpi_agg *a, int by_units, struct jbuf *out)
{
    const struct kpi_product *top[KPI_TOP_N];
    size_t k = 0;
    for (size_t i = 0; i < a->products_cap; i++) {
        const struct kpi_product *p = &a->products[i];
        if (!p->id || prod_count(p, by_units) <= 0)
            continue;
        if (k == KPI_TOP_N && !prod_before(p, top[k - 1], by_units))
            continue;
        size_t j = k < KPI_TOP_N ? k++ : k - 1;
        while (j > 0 && prod_before(p, top[j - 1], by_units)) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = p;
    }
    json_w_arr_begin(out, by_units ? "top_products_by_units" : "top_products_by_views");
    for (size_t i = 0; i < k; i++) {
        json_w_obj_begin(out, NULL);
        json_w_cstr(out, "product_id", top[i]->id);
        json_w_int(out, by_units ? "units" : "views", prod_count(top[i], by_units));
        json_w_obj_end(out);
    }
    json_w_arr_end(out);
}

/* round(num / den) half up, for num >= 0, den > 0. */
static int64_t div_round(int64_t num, int64_t den)
{
    int64_t q = num / den, r = num % den;
    return r >= den - r ? q + 1 : q;
}

/* purchasers / uv rounded half up to 6 decimals, at most 1. */
static double conversion(int64_t purchasers, int64_t uv)
{
    if (uv <= 0 || purchasers <= 0)
        return 0;
    if (purchasers >= uv)
        return 1;
    int64_t micro;
    if (purchasers <= INT64_MAX / 2000000)
        micro = div_round(purchasers * 1000000, uv);
    else
        micro = (int64_t)floor((double)purchasers / (double)uv * 1e6 + 0.5);
    return (double)micro / 1e6;
}

int kpi_agg_write_json(const struct kpi_agg *a, int final, struct jbuf *out)
{
    int64_t uv = kpi_distinct_count(&a->uv);
    int64_t purchasers = kpi_distinct_count(&a->purchasers);
    json_w_obj_begin(out, NULL);
    json_w_cstr(out, "window", a->window);
    json_w_int(out, "start", a->start);
    json_w_int(out, "end", a->end);
    json_w_cstr(out, "currency", a->currency);
    json_w_int(out, "gmv", a->gmv);
    json_w_int(out, "orders", a->orders);
    json_w_int(out, "aov", a->orders > 0 ? div_round(a->gmv, a->orders) : 0);
    json_w_int(out, "paid_revenue", a->paid_revenue);
    json_w_int(out, "refunds", a->refunds);
    json_w_int(out, "net_revenue", a->paid_revenue - a->refunds);
    json_w_int(out, "pv", a->pv);
    json_w_int(out, "uv", uv);
    json_w_double(out, "conversion", conversion(purchasers, uv));
    json_w_obj_begin(out, "funnel");
    json_w_int(out, "product_view", a->funnel[0]);
    json_w_int(out, "add_to_cart", a->funnel[1]);
    json_w_int(out, "checkout", a->funnel[2]);
    json_w_int(out, "purchase", a->funnel[3]);
    json_w_obj_end(out);
    write_top(a, 1, out);
    write_top(a, 0, out);
    json_w_int(out, "late_events", a->late_events);
    json_w_bool(out, "final", final);
    json_w_bool(out, "uv_exact", !a->uv.hll);
    json_w_double(out, "uv_error", a->uv.hll ? KPI_UV_ERROR : 0.0);
    json_w_obj_end(out);
    return out->oom ? -1 : 0;
}

size_t kpi_window_key(const char *window, int64_t start, char *buf, size_t size)
{
    if (size == 0)
        return 0;
    int n = snprintf(buf, size, "%s@%lld", window, (long long)start);
    if (n < 0) {
        buf[0] = 0;
        return 0;
    }
    return (size_t)n < size ? (size_t)n : size - 1;
}
