/* recommend.h: an incremental item-to-item recommender for the shop streams,
 * and the session-rec metrics (HR@K, MRR@K) that evaluate it.  The model
 * learns inside reco_observe (no batch retraining): every event updates the
 * statistics below at once, and the next query sees them.  It does not know
 * about Kafka, files or JSON: the stream processor and `shopstream eval`
 * (shop/reco_eval.h) feed it.  Not thread-safe: one model, one thread
 * (queries use scratch space inside the model).
 *
 * What it learns.  Events arrive per key (a session id, or a user id for a
 * user's recent history).  The model keeps each key's last `window` events.
 * A new event for item i, following an earlier event for item j of the same
 * key at distance d (1 = the previous event) and at most `window_s` seconds
 * older, with j != i, adds (w = the larger kind weight of the two events):
 *   seq[j][i] += w / d      sequential "i follows j", distance-weighted
 *   co[j][i] += w, co[i][j] += w            symmetric co-occurrence
 *   out[j]   += w / d       so seq[j][i] / out[j] is P(next = i | j)
 * and freq[i] += w when i is not already among the key's recent events
 * (roughly: in how many sessions i occurs).  All of these decay with a
 * half-life (`half_life_s`; an event weighs 2^(-age / half_life)).
 *
 * How it scores.  Given the current session's events (oldest first), the
 * sources are its last `query_items` distinct items, most recent first with
 * position r = 0, 1, ...; candidate i scores
 *   sum over sources j: kind_weight(j) * source_decay^r *
 *        ( w_seq * seq[j][i] / out[j]                      transition prob.
 *        + w_cos * co[j][i] / (freq[j]^a * freq[i]^(1-a)) ) damped cosine
 *   + sum over the session's events e of item i (r = 0 the latest event):
 *        w_repeat * repeat_decay^r                          re-visits
 *   + w_pop * freq[i] / max freq                            popularity
 * The first term is a sequential-rules signal (what comes next after the
 * last few items), the second a co-occurrence similarity whose denominator
 * damps popular items (a = cos_alpha; 0.5 is the cosine), the third the
 * strong tendency of shoppers to go back to an item they just viewed (a
 * quarter of YOOCHOOSE clicks repeat the previous one), and the last a small
 * popularity term that breaks ties and fills the list when the session has
 * no signal (a new user gets the popular items).  The weights below were
 * chosen on the YOOCHOOSE sample; the table is in shop/reco_eval.h.
 *
 * Memory bounds (defaults in reco_params_default):
 *   - at most max_items items (50,000); a new item beyond that evicts the
 *     least recently observed one (its id is reused; references to it in
 *     other items' lists and in key histories are dropped lazily, by a
 *     generation number);
 *   - at most max_neighbours (64) neighbour entries per item (16 bytes each);
 *     a new neighbour of a full item replaces its weakest entry;
 *   - at most max_keys (100,000) keys, each with `window` (10) recent events
 *     and its last RECO_KEY_PURCHASES distinct purchases; the least recently seen key
 *     is evicted beyond that.
 * Worst case with the defaults: about 50,000 x (64 x 16 + 120) B = 57 MB of
 * items plus 100,000 x (10 x 24 + 140) B = 38 MB of keys, plus names.
 *
 * Ranking and ties.  Results are ordered by score, higher first, then by the
 * smaller item id: two ids made only of decimal digits compare as numbers
 * ("9" < "10"), anything else compares as byte strings (strcmp), and a
 * digit string that equals another numerically ("07", "7") falls back to
 * strcmp so the order is total (reco_item_cmp). */
#ifndef SHOPSTREAM_RECOMMEND_H
#define SHOPSTREAM_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

/* Results asked of one query are capped at this many. */
#define RECO_MAX_K 1000
/* Distinct purchased items remembered per key, excluded by reco_for_key. */
#define RECO_KEY_PURCHASES 16
/* Length of the most-popular list kept up to date for the fallback. */
#define RECO_POP_TOP 256
/* Longest item or key name accepted, in bytes. */
#define RECO_MAX_NAME 256

/* Errors of reco_observe. */
#define RECO_EINVAL (-1)   /* empty or too long name, bad kind, non-finite ts */
#define RECO_ENOMEM (-2)   /* out of memory; the event may be partly learnt */

/* The kinds of event the model learns from, with default weights. */
enum reco_kind {
    RECO_VIEW,      /* a product view (shop.clicks), weight 1 */
    RECO_CART,      /* an add-to-cart (shop.clicks), weight 2 */
    RECO_PURCHASE,  /* a purchased line (shop.orders), weight 3 */
    RECO_KINDS
};

struct reco_params {
    uint32_t max_items;      /* items kept (>= 2) */
    uint32_t max_neighbours; /* neighbour entries per item (>= 1) */
    uint32_t max_keys;       /* sessions/users kept (>= 1) */
    uint32_t window;         /* recent events per key paired with a new one (1..64) */
    double window_s;         /* ... only those at most this many seconds older (0 = any) */
    double half_life_s;      /* decay half-life in seconds (0 = no decay) */
    uint32_t query_items;    /* distinct recent session items used as sources (1..64) */
    double w_seq;            /* weight of the transition probability */
    double w_cos;            /* weight of the damped cosine */
    double cos_alpha;        /* exponent a of the source's frequency (0..1) */
    double w_repeat;         /* weight of an item already in the session */
    double repeat_decay;     /* per event back in the session */
    double source_decay;     /* per source item back in the session */
    double w_pop;            /* weight of normalised popularity */
    double kind_weight[RECO_KINDS];
};

/* One event of the current session, for reco_for_session.  item is borrowed. */
struct reco_event {
    const char *item;
    enum reco_kind kind;
    double ts;              /* unix seconds (informational for queries) */
};

/* One recommendation.  item is a view of the model's copy of the name, valid
 * until the next reco_observe or reco_model_free. */
struct reco_hit {
    const char *item;
    double score;
};

/* Return non-zero to leave item out of a result (e.g. already bought). */
typedef int (*reco_exclude_fn)(void *ctx, const char *item);

struct reco_stats {
    size_t items;            /* live items */
    size_t keys;             /* live keys */
    size_t neighbours;       /* neighbour entries in use (incl. stale) */
    uint64_t items_evicted;  /* items dropped by the max_items bound */
    uint64_t keys_evicted;   /* keys dropped by the max_keys bound */
    uint64_t neighbours_replaced; /* entries replaced in full lists */
    size_t bytes;            /* memory held, approximately */
};

struct reco_model;

/* The defaults described above. */
void reco_params_default(struct reco_params *p);

/* A new empty model with params p (borrowed; NULL = defaults), or NULL when
 * out of memory or p is out of range.  Returns owned (free with
 * reco_model_free). */
struct reco_model *reco_model_new(const struct reco_params *p);
void reco_model_free(struct reco_model *m);

/* Learns one event: key (session or user id) touched item with kind at ts
 * (unix seconds; may go backwards a little, older events then weigh less).
 * Both names are borrowed (copied when kept).  Returns 0, RECO_EINVAL or
 * RECO_ENOMEM. */
int reco_observe(struct reco_model *m, const char *key, const char *item, enum reco_kind kind,
                 double ts);

/* The top k (<= RECO_MAX_K) items for a session whose events are ev[0..n)
 * (oldest first; borrowed; only the last 64 are read), leaving out items for
 * which exclude(ctx, item) is non-zero (exclude may be NULL).  Items of the
 * session itself may be recommended (re-visits are likely).  Writes up to k
 * hits to out[] and returns how many; fewer than k only when the model knows
 * too few items (or more than RECO_POP_TOP were excluded). */
size_t reco_for_session(struct reco_model *m, const struct reco_event *ev, size_t n, size_t k,
                        reco_exclude_fn exclude, void *ctx, struct reco_hit *out);

/* As reco_for_session with the key's own recent events (as learnt by
 * reco_observe), leaving out the key's last RECO_KEY_PURCHASES distinct purchased items and
 * whatever exclude rejects.  An unknown key gets the popular items. */
size_t reco_for_key(struct reco_model *m, const char *key, size_t k, reco_exclude_fn exclude,
                    void *ctx, struct reco_hit *out);

/* "Customers who viewed this also viewed": item's top k neighbours by
 * w_seq * P(next | item) + w_cos * damped cosine, without item itself.
 * Returns how many (0 for an unknown item). */
size_t reco_similar(struct reco_model *m, const char *item, size_t k, struct reco_hit *out);

/* The k most popular items by decayed frequency (score = freq / max freq). */
size_t reco_popular(struct reco_model *m, size_t k, struct reco_hit *out);

void reco_get_stats(const struct reco_model *m, struct reco_stats *st);

/* The tie order of item ids described above: < 0 when a sorts first. */
int reco_item_cmp(const char *a, const char *b);

/* HR@K and MRR@K accumulated over prediction points (session-rec). */
struct reco_metrics {
    size_t k;               /* the cut-off K */
    uint64_t points;        /* prediction points seen */
    uint64_t hits;          /* points whose target was in the top K */
    double rr_sum;          /* sum of 1/rank over the hits */
};

void reco_metrics_init(struct reco_metrics *mt, size_t k);

/* Scores one point: top[0..n) is the ranked list (only the first K count),
 * target the item that came next.  Returns the target's 1-based rank within
 * the top K, or 0 when it is not there. */
size_t reco_metrics_add(struct reco_metrics *mt, const struct reco_hit *top, size_t n,
                        const char *target);

/* Hits / points and rr_sum / points (0 when there are no points). */
double reco_metrics_hr(const struct reco_metrics *mt);
double reco_metrics_mrr(const struct reco_metrics *mt);

#endif
