/* kpi.h: the aggregate of one event-time window, the unit of the analytics
 * processor: built from events in one task (a partial), merged across tasks,
 * stored in changelogs and partial records (a compact binary form), and
 * written as the shop.kpis JSON of DESIGN.md.
 *
 * What an aggregate counts (DESIGN.md, "Definitions"):
 *   gmv, orders        order_created: sum of amount, count
 *   paid_revenue       order_paid: sum of amount
 *   refunds            refund_issued: sum of amount
 *   pv                 page_view + product_view events
 *   uv                 distinct user_id of shop.clicks events
 *   purchasers         distinct user_id of purchase events (conversion =
 *                      purchasers / uv)
 *   funnel[4]          sessions that reached product_view, add_to_cart,
 *                      checkout, purchase (in that order) at a time inside
 *                      the window; the caller decides the step (kpi_agg_add)
 *   units per product  order_created items: sum of qty
 *   views per product  product_view events
 *   late_events        events that arrived after their own window closed,
 *                      counted in the newest open window of the same size
 *   currency           of the orders; "mixed" when they differ
 * Distinct counts are exact (a set of 64-bit hashes of the ids) up to
 * uv_exact_cap ids, then a HyperLogLog sketch of 2^14 registers (standard
 * error 1.04/sqrt(16384) = 0.81%); a merge of exact sets stays exact while
 * the union fits the cap.
 *
 * Binary form (little-endian varints), version 1: u8 version, str window,
 * zz start, zz end, zz gmv, orders, paid_revenue, refunds, pv, late_events,
 * funnel[4], str currency, distinct uv, distinct purchasers, varint
 * nproducts, per product: str id, zz views, zz units.  A distinct set is u8
 * kind (0 exact: varint n, n x u64 fixed; 1 HLL: 16384 register bytes). */
#ifndef SHOPSTREAM_KPI_H
#define SHOPSTREAM_KPI_H

#include <stddef.h>
#include <stdint.h>

#include "shop/event.h"
#include "shop/json.h"

#define KPI_HLL_P 14
#define KPI_HLL_REGISTERS (1u << KPI_HLL_P)
#define KPI_DEFAULT_UV_EXACT_CAP 100000
#define KPI_TOP_N 10

/* Funnel steps, in order. */
enum kpi_step {
    KPI_STEP_NONE = 0,
    KPI_STEP_PRODUCT_VIEW = 1,
    KPI_STEP_ADD_TO_CART = 2,
    KPI_STEP_CHECKOUT = 3,
    KPI_STEP_PURCHASE = 4,
};

/* A set of distinct ids, exact until a cap, then a HyperLogLog sketch. */
struct kpi_distinct {
    int hll;                 /* 0: exact hashes; 1: registers */
    uint64_t *hashes;        /* exact: open-addressing set, 0 = empty slot */
    size_t n, cap;           /* exact: members, slots */
    int has_zero;            /* exact: the hash 0 is a member */
    uint8_t *reg;            /* hll: KPI_HLL_REGISTERS registers */
};

struct kpi_product {
    char *id;                /* owned */
    int64_t views, units;
};

struct kpi_agg {
    char window[8];          /* "1m", "1h", "1d" */
    int64_t start, end;      /* ms, [start, end) */
    int64_t gmv, orders, paid_revenue, refunds, pv, late_events;
    int64_t funnel[4];       /* product_view, add_to_cart, checkout, purchase */
    char currency[16];       /* "" until an order; "mixed" */
    struct kpi_distinct uv, purchasers;
    size_t uv_exact_cap;
    /* products: open-addressing map by id */
    struct kpi_product *products;
    size_t nproducts, products_cap;
};

/* Returns owned (kpi_agg_free) or NULL when out of memory or when window
 * is not "1m", "1h" or "1d".  An exact set holds at most uv_exact_cap ids
 * (0: a sketch from the first id). */
struct kpi_agg *kpi_agg_new(const char *window, int64_t start, int64_t end, size_t uv_exact_cap);
void kpi_agg_free(struct kpi_agg *a);

/* Counts ev in a.  step is the funnel step this event made its session
 * reach (KPI_STEP_NONE if none).  Returns 0 or -1 (out of memory; a stays
 * valid but may hold part of the event).  Negative (absent) amounts count
 * nothing; counters saturate at INT64_MAX; a product id ends at its first
 * NUL; a currency longer than 15 bytes makes the currency "mixed".  Does
 * not allocate once the sets and the product map have grown. */
int kpi_agg_add(struct kpi_agg *a, const struct shop_event *ev, enum kpi_step step);

/* kpi_agg_add with the user's kpi_hash already computed (an event goes into
 * three windows; hashing its user once saves a third of the work). */
int kpi_agg_add_hashed(struct kpi_agg *a, const struct shop_event *ev, enum kpi_step step,
                       uint64_t user_hash);

/* Adds src into dst (same window and start; borrows src).  Returns 0, or -1
 * when out of memory (dst stays valid, partly merged) or when the windows
 * differ or dst == src (dst unchanged). */
int kpi_agg_merge(struct kpi_agg *dst, const struct kpi_agg *src);

/* Estimated distinct count. */
int64_t kpi_distinct_count(const struct kpi_distinct *d);

/* Binary form.  encode appends to out (0 or -1; after -1 out is as it was
 * unless out->oom is set).  The form is canonical: exact hashes ascending,
 * products by id ascending (bytewise), shortest varints, so equal aggregates
 * give equal bytes.  decode borrows p[0..n) and returns owned (kpi_agg_free)
 * or NULL when the bytes are not a valid aggregate: exactly what encode can
 * write (so decode then encode gives the same bytes), with exact sets of at
 * most uv_exact_cap ids, counters >= 0, registers <= 51, ids and currency
 * UTF-8 without NUL, no product with zero views and units, no trailing
 * bytes; or when out of memory. */
int kpi_agg_encode(const struct kpi_agg *a, struct jbuf *out);
struct kpi_agg *kpi_agg_decode(const void *p, size_t n, size_t uv_exact_cap);

/* The shop.kpis value: {"window","start","end","currency","gmv","orders",
 * "aov","paid_revenue","refunds","net_revenue","pv","uv","conversion",
 * "funnel":{"product_view","add_to_cart","checkout","purchase"},
 * "top_products_by_units":[{"product_id","units"}...],
 * "top_products_by_views":[{"product_id","views"}...],
 * "late_events","final","uv_exact","uv_error"}.
 * aov = round(gmv / orders) in minor units (0 without orders); conversion =
 * purchasers / uv rounded to 6 decimals (0 without visitors); top lists hold
 * up to KPI_TOP_N products with a count above zero, by count, then by
 * smaller id; uv_error is 0 when exact, else 0.0081.  Appends to out;
 * returns 0 or -1. */
int kpi_agg_write_json(const struct kpi_agg *a, int final, struct jbuf *out);

/* The shop.kpis key "<window>@<start>" into buf (NUL-terminated, cut to
 * size - 1 bytes if need be); returns the length of what buf holds. */
size_t kpi_window_key(const char *window, int64_t start, char *buf, size_t size);

/* 64-bit hash of an id for the distinct sets. */
uint64_t kpi_hash(const char *s, size_t n);

#endif
