/* simulate.c: the shop traffic generator (see simulate.h for the contract).
 *
 * Everything random comes from one xoshiro256** generator seeded through
 * splitmix64 from the seed, and every pending step of the world (the next
 * session arrival, each live session, each live order) is one entry of a
 * binary min-heap ordered by (ts, sequence number).  sim_next pops the
 * earliest entry, lets its actor produce one event, and pushes the actor
 * back with its next due time, or frees it when it has nothing left to do or
 * its next step would fall at or after the end of the run.  So ts never goes
 * backwards, ties are broken by the order in which steps were scheduled, and
 * memory is bounded by the live sessions and orders.
 *
 * The arrival rate is calibrated so that the mean total event rate over a
 * day is opts.rate: at start a pilot of PILOT_SESSIONS sessions (own
 * generator, same model code) measures how many events a session leads to,
 * counting its clicks and the order and after-sales events of its purchase.
 * Sessions start arriving up to WARMUP_MS before the start and their clicks
 * before it are drawn but not emitted, so a run begins in a busy shop (the
 * first clicks seen of such a session may be mid-funnel; their purchases
 * before the start open no order, so every order is seen from its
 * creation).
 *
 * The funnel, the order fates and the delays are set by the constants below;
 * they aim at commonly reported e-commerce figures (about a third of
 * sessions add to cart, half of those check out, nine in ten of those pay,
 * 5% of orders fail payment, ~9% of delivered orders are returned). */
#include "shop/simulate.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

#define MS_SECOND 1000.0
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

/* Model constants. */
#define ZIPF_S 1.1              /* product popularity exponent */
#define USER_SKEW 2.0           /* user index = N * u^USER_SKEW: mild skew */
#define PRICE_MEDIAN 2500.0     /* cents */
#define PRICE_SIGMA 0.7         /* log-normal spread of prices */
#define P_ADDER 0.36            /* a session adds to cart at least once */
#define P_MORE_ADDS 0.35        /* ... and then once more (repeatedly) */
#define MAX_ADDS 6              /* add_to_cart events of one session */
#define P_CHECKOUT 0.52         /* an adder goes to checkout */
#define P_PURCHASE 0.88         /* a checkout ends in a purchase */
#define P_REMOVE 0.18           /* an adder removes a line again */
#define P_PAID 0.95             /* an order is paid (else payment times out) */
#define P_CUSTOMER_CANCEL 0.03  /* a paid order is cancelled before shipping */
#define P_RETURN 0.09           /* a delivered order gets a return request */
#define P_APPROVED 0.85         /* a return request is approved */
#define PILOT_SESSIONS 16384    /* sessions measured to calibrate the rate */
#define WARMUP_MS (30 * 60 * 1000.0) /* sessions begin this long before start */
#define WARMUP_MAX_EVENTS 2e6   /* ... unless that means drawing more events */
#define SEARCH_LEAN 0.7         /* a product view after a search stays in its category */

/* ---- random numbers: xoshiro256** (Blackman and Vigna), seeded by
 * splitmix64 so that any 64-bit seed, 0 included, gives a good state ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_u64(struct rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) (n >= 1); the bias of the multiply-shift is below
 * 2^-32 for the sizes used here. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

static int rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}

static double rng_uniform(struct rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static double rng_normal(struct rng *r)
{
    double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);

    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double rng_lognormal(struct rng *r, double median, double sigma)
{
    return median * exp(sigma * rng_normal(r));
}

static double rng_exp(struct rng *r, double mean)
{
    return -mean * log(1.0 - rng_unit(r));
}

/* Number of successes before the first failure, success probability p,
 * at most max. */
static int rng_geometric(struct rng *r, double p, int max)
{
    int n = 0;

    while (n < max && rng_chance(r, p))
        n++;
    return n;
}

/* Picks an index from weights w[0..n). */
static unsigned rng_weighted(struct rng *r, const double *w, unsigned n)
{
    double total = 0, x;

    for (unsigned i = 0; i < n; i++)
        total += w[i];
    x = rng_unit(r) * total;
    for (unsigned i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

/* ---- the world's fixed vocabulary ---- */

struct category {
    const char *name;       /* also a search query */
    double price_factor;    /* relative price level (normalised at start) */
    const char *nouns[4];   /* product words for search queries */
};

static const struct category categories[] = {
    {"electronics", 3.0, {"headphones", "charger", "smartwatch", "speaker"}},
    {"books", 0.6, {"novel", "cookbook", "biography", "comic"}},
    {"fashion", 1.2, {"jacket", "dress", "jeans", "t-shirt"}},
    {"shoes", 2.0, {"sneakers", "boots", "sandals", "running shoes"}},
    {"home", 1.2, {"lamp", "cushion", "rug", "curtains"}},
    {"kitchen", 1.0, {"frying pan", "knife set", "kettle", "blender"}},
    {"garden", 1.1, {"hose", "planter", "lawn mower", "seeds"}},
    {"toys", 0.9, {"puzzle", "lego", "doll", "board game"}},
    {"sports", 1.3, {"yoga mat", "dumbbells", "football", "bike helmet"}},
    {"beauty", 0.7, {"lipstick", "perfume", "face cream", "shampoo"}},
    {"health", 0.6, {"vitamins", "thermometer", "toothbrush", "protein"}},
    {"grocery", 0.25, {"coffee", "olive oil", "tea", "chocolate"}},
    {"pet supplies", 0.7, {"dog food", "cat litter", "leash", "pet bed"}},
    {"automotive", 1.2, {"car charger", "wiper blades", "dash cam", "tyre inflator"}},
    {"office", 0.5, {"notebook", "desk lamp", "pens", "office chair"}},
    {"music", 0.6, {"vinyl", "guitar strings", "ukulele", "microphone"}},
    {"video games", 1.6, {"controller", "console", "gaming headset", "game"}},
    {"jewelry", 2.5, {"necklace", "ring", "earrings", "bracelet"}},
    {"baby", 0.9, {"diapers", "stroller", "baby monitor", "bottle"}},
    {"tools", 1.5, {"drill", "screwdriver set", "toolbox", "tape measure"}},
};
#define NCATEGORIES (sizeof categories / sizeof categories[0])

static const char *const adjectives[] = {
    "wireless", "cheap", "best", "organic", "waterproof", "kids", "large",  "small",
    "black",    "red",   "vintage", "eco", "premium",    "mini", "portable", "set of 2",
};
#define NADJECTIVES (sizeof adjectives / sizeof adjectives[0])

static const char *const pay_methods[] = {"card", "paypal", "apple_pay", "google_pay", "klarna",
                                          "bank_transfer"};
static const double pay_weights[] = {0.58, 0.22, 0.08, 0.05, 0.05, 0.02};

static const char *const carriers[] = {"dhl", "ups", "dpd", "gls", "hermes", "fedex"};
static const double carrier_weights[] = {0.34, 0.18, 0.16, 0.12, 0.12, 0.08};

static const char *const return_reasons[] = {"wrong_size", "changed_mind", "damaged",
                                             "not_as_described", "defective", "arrived_late"};
static const double return_reason_weights[] = {0.32, 0.25, 0.14, 0.13, 0.11, 0.05};

static const char *const reject_reasons[] = {"outside_return_window", "item_used",
                                             "missing_parts"};

/* Relative session arrival rate at each full hour UTC (linear in between):
 * lowest at 04:00, highest at 20:00, ratio ~3.9.  sim_diurnal divides by the
 * mean, so the curve averages 1 over a day. */
static const double diurnal_table[24] = {
    0.55, 0.42, 0.34, 0.30, 0.28, 0.30, 0.38, 0.50, 0.62, 0.72, 0.80, 0.86,
    0.92, 0.90, 0.86, 0.86, 0.90, 0.96, 1.02, 1.08, 1.10, 1.02, 0.88, 0.70,
};

/* ---- the world's state ---- */

struct product {
    char id[12];       /* "p00042" */
    uint16_t category; /* index into categories */
    int64_t price;     /* cents */
};

struct cart_line {
    uint32_t product;
    int32_t qty;
    int64_t price; /* cents, at the time it was added */
};

/* Session phases, in funnel order. */
enum sess_phase {
    SESS_LANDING,  /* the landing page_view is next */
    SESS_BROWSE,   /* browsing, or the next milestone (view-to-add, remove,
                    * checkout) when browse_left is 0 */
    SESS_ADD,      /* the product just viewed is added to the cart next */
    SESS_PURCHASE, /* checkout done; the purchase is next */
    SESS_DONE,     /* nothing left; the session is freed */
};

struct sess {
    long long id;          /* "s<id>" */
    uint32_t user;         /* user index */
    enum sess_phase phase;
    int browse_left;       /* browsing steps before the next milestone */
    int adds_left;         /* add_to_cart events still to come */
    int will_remove;       /* a remove_from_cart is still to come */
    int will_checkout;     /* the session reaches checkout */
    int will_purchase;     /* ... and purchases */
    int search_cat;        /* category of the last search, -1 if none */
    uint32_t viewed;       /* product of the last product_view */
    int ncart;             /* lines in cart */
    struct cart_line cart[MAX_ADDS];
};

/* Order steps: each is the event the order emits next. */
enum ord_step {
    ORD_CREATE,          /* order_created */
    ORD_PAY,             /* order_paid */
    ORD_PAY_TIMEOUT,     /* order_cancelled, reason payment_timeout */
    ORD_CUSTOMER_CANCEL, /* order_cancelled, reason customer_request (after paid) */
    ORD_CANCEL_REFUND,   /* refund_issued of the whole amount, no return_id */
    ORD_SHIP,            /* order_shipped */
    ORD_DELIVER,         /* order_delivered */
    ORD_RETURN_REQUEST,  /* return_requested */
    ORD_RETURN_APPROVE,  /* return_approved */
    ORD_RETURN_REJECT,   /* return_rejected */
    ORD_RETURN_RECEIVE,  /* return_received */
    ORD_RETURN_REFUND,   /* refund_issued of the returned items, with return_id */
    ORD_DONE,            /* nothing left; the order is freed */
};

/* What will happen to an order, drawn when it is created. */
struct ord_fate {
    unsigned paid : 1;            /* else payment times out */
    unsigned customer_cancel : 1; /* paid, then cancelled before shipping */
    unsigned returned : 1;        /* delivered, then a return is requested */
    unsigned approved : 1;        /* the return is approved */
};

struct order {
    long long id;          /* "o<id>" */
    long long return_id;   /* "r<id>", 0 before the return request */
    uint32_t user;
    enum ord_step step;
    struct ord_fate fate;
    int64_t amount;        /* Σ qty × price of items */
    int64_t return_amount; /* Σ qty × price of ret */
    uint8_t pay_method, carrier, reason;
    int nitems, nret;
    struct cart_line items[MAX_ADDS];
    struct cart_line ret[MAX_ADDS]; /* returned lines (qty <= bought) */
};

enum heap_kind { H_ARRIVAL, H_SESSION, H_ORDER };

struct heap_entry {
    int64_t ts;
    uint64_t seq;
    enum heap_kind kind;
    void *actor; /* struct sess / struct order; NULL for H_ARRIVAL */
};

struct sim {
    struct sim_opts o;
    struct rng rng;
    int64_t end_ms;              /* INT64_MAX without an end */
    struct product *products;    /* o.products entries, owned */
    uint32_t *by_rank;           /* popularity rank -> product index, owned */
    double *zipf_cdf;            /* cumulative popularity by rank, owned */
    uint64_t user_mul, user_add; /* user index -> user number bijection */
    double arrival_per_ms;       /* mean session arrivals per ms */
    double diurnal_max;          /* max of sim_diurnal */
    int64_t origin_ms;           /* where the world starts: start_ms - warm-up */
    double next_arrival;         /* ms after origin of the next candidate arrival */
    double events_per_session;
    struct heap_entry *heap;     /* owned */
    size_t nheap, heap_cap;
    uint64_t seq;
    long long next_session, next_order, next_return;
    int done;
    struct sim_stats st;

    /* storage of the event sim_next returned last */
    char ev_id[48], ev_user[24], ev_session[48], ev_order[48], ev_return[48], ev_query[64];
    struct shop_item ev_items[MAX_ADDS];
};

/* ---- the curve ---- */

static double diurnal_mean(void)
{
    double sum = 0;

    for (int i = 0; i < 24; i++)
        sum += diurnal_table[i];
    return sum / 24;
}

double sim_diurnal(int64_t ts)
{
    int64_t day = (int64_t)MS_DAY, in_day = ts % day;
    double h;
    int i;

    if (in_day < 0)
        in_day += day;
    h = (double)in_day / MS_HOUR;
    i = (int)h;
    if (i > 23)
        i = 23;
    h -= i;
    return (diurnal_table[i] * (1 - h) + diurnal_table[(i + 1) % 24] * h) / diurnal_mean();
}

/* ---- catalogue and users ---- */

static int build_catalogue(struct sim *s)
{
    uint32_t n = (uint32_t)s->o.products;
    double logsum = 0, norm, acc = 0;

    s->products = xcalloc(n, sizeof *s->products);
    s->by_rank = xcalloc(n, sizeof *s->by_rank);
    s->zipf_cdf = xcalloc(n, sizeof *s->zipf_cdf);
    if (!s->products || !s->by_rank || !s->zipf_cdf)
        return -1;
    /* Normalise the category price levels to a geometric mean of 1, so the
     * median price over the catalogue stays near PRICE_MEDIAN. */
    for (size_t c = 0; c < NCATEGORIES; c++)
        logsum += log(categories[c].price_factor);
    norm = exp(-logsum / NCATEGORIES);
    for (uint32_t i = 0; i < n; i++) {
        struct product *p = &s->products[i];
        double cents;
        int64_t euros;

        snprintf(p->id, sizeof p->id, "p%05u", i);
        p->category = (uint16_t)rng_below(&s->rng, NCATEGORIES);
        cents = rng_lognormal(&s->rng, PRICE_MEDIAN * categories[p->category].price_factor * norm,
                              PRICE_SIGMA);
        /* Shop prices end in .99. */
        euros = (int64_t)llround(cents / 100.0);
        if (euros < 1)
            euros = 1;
        if (euros > 100000)
            euros = 100000;
        p->price = euros * 100 - 1;
    }
    /* Popularity: Zipf over a random permutation of the products. */
    for (uint32_t i = 0; i < n; i++)
        s->by_rank[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(&s->rng, i + 1), t = s->by_rank[i];

        s->by_rank[i] = s->by_rank[j];
        s->by_rank[j] = t;
    }
    for (uint32_t k = 0; k < n; k++) {
        acc += pow((double)k + 1, -ZIPF_S);
        s->zipf_cdf[k] = acc;
    }
    for (uint32_t k = 0; k < n; k++)
        s->zipf_cdf[k] /= acc;
    s->zipf_cdf[n - 1] = 1.0;
    return 0;
}

static uint32_t zipf_product(struct sim *s, struct rng *r)
{
    double u = rng_unit(r);
    uint32_t lo = 0, hi = (uint32_t)s->o.products - 1;

    /* The first rank whose cumulative share exceeds u. */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (s->zipf_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return s->by_rank[lo];
}

/* A popular product, of category cat when a few draws find one (cat < 0:
 * any). */
static uint32_t pick_product(struct sim *s, struct rng *r, int cat)
{
    uint32_t p = zipf_product(s, r);

    for (int tries = 0; cat >= 0 && tries < 32 && s->products[p].category != cat; tries++)
        p = zipf_product(s, r);
    return p;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

static void setup_users(struct sim *s)
{
    uint64_t n = (uint64_t)s->o.users;

    /* idx -> (idx * mul + add) mod n is a bijection when gcd(mul, n) = 1:
     * it scatters the frequent visitors over the user numbers. */
    s->user_mul = 1;
    if (n > 2)
        do
            s->user_mul = 1 + rng_u64(&s->rng) % (n - 1);
        while (gcd64(s->user_mul, n) != 1);
    s->user_add = rng_u64(&s->rng) % n;
}

static uint32_t pick_user(struct sim *s, struct rng *r)
{
    uint64_t n = (uint64_t)s->o.users, idx = (uint64_t)(pow(rng_unit(r), USER_SKEW) * (double)n);

    if (idx >= n)
        idx = n - 1;
    return (uint32_t)((idx * s->user_mul + s->user_add) % n);
}

/* ---- sessions ---- */

/* Draws a session's plan: how far down the funnel it goes. */
static void sess_plan(struct sess *ss, struct rng *r)
{
    int adds = rng_chance(r, P_ADDER) ? 1 + rng_geometric(r, P_MORE_ADDS, MAX_ADDS - 1) : 0;

    ss->phase = SESS_LANDING;
    ss->adds_left = adds;
    ss->will_checkout = adds > 0 && rng_chance(r, P_CHECKOUT);
    ss->will_purchase = ss->will_checkout && rng_chance(r, P_PURCHASE);
    ss->will_remove = adds > 0 && rng_chance(r, P_REMOVE);
    /* Browsers look around longer than those who came to buy. */
    ss->browse_left = adds ? rng_geometric(r, 0.6, 30) : rng_geometric(r, 0.8, 60);
    ss->search_cat = -1;
    ss->ncart = 0;
}

static int sess_has_more(const struct sess *ss)
{
    switch (ss->phase) {
    case SESS_LANDING:
    case SESS_ADD:
    case SESS_PURCHASE:
        return 1;
    case SESS_BROWSE:
        return ss->browse_left > 0 || ss->adds_left > 0 || ss->will_remove || ss->will_checkout;
    case SESS_DONE:
        break;
    }
    return 0;
}

/* Advances a session by one step (sess_has_more must be true) and returns
 * the type of the click it makes.  *product is set for product events;
 * *line for remove_from_cart (the removed line, already out of the cart). */
static enum shop_event_type sess_advance(struct sim *s, struct rng *r, struct sess *ss,
                                         uint32_t *product, struct cart_line *line)
{
    double x;

    switch (ss->phase) {
    case SESS_LANDING:
        ss->phase = SESS_BROWSE;
        return SHOP_EV_PAGE_VIEW;
    case SESS_ADD: {
        int i;

        for (i = 0; i < ss->ncart && ss->cart[i].product != ss->viewed; i++)
            ;
        if (i == ss->ncart) {
            assert(ss->ncart < MAX_ADDS);
            ss->cart[i].product = ss->viewed;
            ss->cart[i].qty = 0;
            ss->cart[i].price = s->products[ss->viewed].price;
            ss->ncart++;
        }
        x = rng_unit(r);
        ss->cart[i].qty += x < 0.85 ? 1 : x < 0.97 ? 2 : 3;
        ss->adds_left--;
        ss->browse_left = ss->adds_left ? rng_geometric(r, 0.55, 20) : rng_geometric(r, 0.3, 10);
        /* Removing the only line would leave nothing to check out. */
        if (!ss->adds_left && ss->will_remove && ss->will_checkout && ss->ncart < 2)
            ss->will_remove = 0;
        ss->phase = SESS_BROWSE;
        *product = ss->viewed;
        return SHOP_EV_ADD_TO_CART;
    }
    case SESS_PURCHASE:
        ss->phase = SESS_DONE;
        return SHOP_EV_PURCHASE;
    case SESS_BROWSE:
        break;
    case SESS_DONE:
        assert(0);
        break;
    }
    if (ss->browse_left > 0) {
        ss->browse_left--;
        x = rng_unit(r);
        if (x < 0.2) {
            ss->search_cat = (int)rng_below(r, NCATEGORIES);
            return SHOP_EV_SEARCH;
        }
        if (x < 0.42)
            return SHOP_EV_PAGE_VIEW;
        *product = pick_product(s, r, ss->search_cat >= 0 && rng_chance(r, SEARCH_LEAN)
                                          ? ss->search_cat
                                          : -1);
        ss->viewed = *product;
        return SHOP_EV_PRODUCT_VIEW;
    }
    if (ss->adds_left > 0) {
        /* A product is viewed, then added. */
        *product = pick_product(s, r, ss->search_cat >= 0 && rng_chance(r, SEARCH_LEAN)
                                          ? ss->search_cat
                                          : -1);
        ss->viewed = *product;
        ss->phase = SESS_ADD;
        return SHOP_EV_PRODUCT_VIEW;
    }
    if (ss->will_remove) {
        int i = (int)rng_below(r, (uint32_t)ss->ncart);

        ss->will_remove = 0;
        *line = ss->cart[i];
        *product = line->product;
        ss->cart[i] = ss->cart[--ss->ncart];
        if (!ss->ncart)
            ss->will_checkout = ss->will_purchase = 0;
        return SHOP_EV_REMOVE_FROM_CART;
    }
    assert(ss->will_checkout && ss->ncart > 0);
    ss->phase = ss->will_purchase ? SESS_PURCHASE : SESS_DONE;
    return SHOP_EV_CHECKOUT;
}

/* Think time before a session's next click, in ms (not time-scaled: it
 * shapes the click stream, whose rate --rate sets). */
static int64_t think_ms(struct rng *r, enum shop_event_type just_done)
{
    double median;

    switch (just_done) {
    case SHOP_EV_PRODUCT_VIEW: median = 25; break;
    case SHOP_EV_SEARCH: median = 8; break;
    case SHOP_EV_CHECKOUT: median = 45; break;
    case SHOP_EV_ADD_TO_CART: median = 12; break;
    default: median = 10; break;
    }
    double t = rng_lognormal(r, median * MS_SECOND, 0.8);

    if (t < MS_SECOND)
        t = MS_SECOND;
    if (t > 10 * MS_MINUTE)
        t = 10 * MS_MINUTE;
    return (int64_t)t;
}

/* ---- orders ---- */

static struct ord_fate draw_fate(struct rng *r)
{
    struct ord_fate f = {0, 0, 0, 0};

    f.paid = rng_chance(r, P_PAID);
    f.customer_cancel = f.paid && rng_chance(r, P_CUSTOMER_CANCEL);
    f.returned = f.paid && !f.customer_cancel && rng_chance(r, P_RETURN);
    f.approved = f.returned && rng_chance(r, P_APPROVED);
    return f;
}

/* Events an order with fate f emits over its whole life. */
static int fate_events(struct ord_fate f)
{
    if (!f.paid)
        return 2;     /* created, cancelled */
    if (f.customer_cancel)
        return 4;     /* created, paid, cancelled, refund */
    if (!f.returned)
        return 4;     /* created, paid, shipped, delivered */
    return 6 + (f.approved ? 2 : 0); /* + requested, decided (+ received, refund) */
}

/* The delay (ms, time-scaled) before an order's step `next`. */
static int64_t order_delay(struct sim *s, enum ord_step next)
{
    struct rng *r = &s->rng;
    double d;

    switch (next) {
    case ORD_PAY:
        d = rng_lognormal(r, 40 * MS_SECOND, 1.0);
        if (d < 2 * MS_SECOND)
            d = 2 * MS_SECOND;
        if (d > 20 * MS_MINUTE)
            d = 20 * MS_MINUTE;
        break;
    case ORD_PAY_TIMEOUT: d = 30 * MS_MINUTE; break;
    case ORD_CUSTOMER_CANCEL: d = rng_uniform(r, 5 * MS_MINUTE, 2 * MS_HOUR); break;
    case ORD_CANCEL_REFUND: d = rng_uniform(r, 10 * MS_MINUTE, MS_DAY); break;
    case ORD_SHIP: d = rng_uniform(r, 2 * MS_HOUR, 48 * MS_HOUR); break;
    case ORD_DELIVER: d = rng_uniform(r, MS_DAY, 5 * MS_DAY); break;
    case ORD_RETURN_REQUEST: d = rng_uniform(r, MS_DAY, 20 * MS_DAY); break;
    case ORD_RETURN_APPROVE:
    case ORD_RETURN_REJECT: d = rng_uniform(r, MS_HOUR, 3 * MS_DAY); break;
    case ORD_RETURN_RECEIVE: d = rng_uniform(r, MS_DAY, 7 * MS_DAY); break;
    case ORD_RETURN_REFUND: d = rng_uniform(r, 0, 3 * MS_DAY); break;
    default: d = 0; break;
    }
    d /= s->o.time_scale;
    return (int64_t)llround(d);
}

/* The step after o's current one (its fate decides the branches). */
static enum ord_step order_next_step(const struct order *o)
{
    switch (o->step) {
    case ORD_CREATE: return o->fate.paid ? ORD_PAY : ORD_PAY_TIMEOUT;
    case ORD_PAY: return o->fate.customer_cancel ? ORD_CUSTOMER_CANCEL : ORD_SHIP;
    case ORD_CUSTOMER_CANCEL: return ORD_CANCEL_REFUND;
    case ORD_SHIP: return ORD_DELIVER;
    case ORD_DELIVER: return o->fate.returned ? ORD_RETURN_REQUEST : ORD_DONE;
    case ORD_RETURN_REQUEST: return o->fate.approved ? ORD_RETURN_APPROVE : ORD_RETURN_REJECT;
    case ORD_RETURN_APPROVE: return ORD_RETURN_RECEIVE;
    case ORD_RETURN_RECEIVE: return ORD_RETURN_REFUND;
    default: return ORD_DONE;
    }
}

/* ---- the heap ---- */

static int heap_less(const struct heap_entry *a, const struct heap_entry *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static int heap_push(struct sim *s, int64_t ts, enum heap_kind kind, void *actor)
{
    size_t i;

    if (s->nheap == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        struct heap_entry *h = xrealloc(s->heap, cap * sizeof *h);

        if (!h)
            return -1;
        s->heap = h;
        s->heap_cap = cap;
    }
    i = s->nheap++;
    s->heap[i] = (struct heap_entry){ts, s->seq++, kind, actor};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct heap_entry t;

        if (!heap_less(&s->heap[i], &s->heap[parent]))
            break;
        t = s->heap[i];
        s->heap[i] = s->heap[parent];
        s->heap[parent] = t;
        i = parent;
    }
    return 0;
}

static struct heap_entry heap_pop(struct sim *s)
{
    struct heap_entry top = s->heap[0];
    size_t i = 0;

    s->heap[0] = s->heap[--s->nheap];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct heap_entry t;

        if (l < s->nheap && heap_less(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->nheap && heap_less(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- arrivals ---- */

/* Schedules the next session arrival: a Poisson process with rate
 * arrival_per_ms × sim_diurnal(t), drawn by thinning (Lewis and Shedler):
 * candidates at the maximum rate, each kept with probability rate(t)/max. */
static int schedule_arrival(struct sim *s)
{
    double max_rate = s->arrival_per_ms * s->diurnal_max;

    for (;;) {
        int64_t ts;

        s->next_arrival += rng_exp(&s->rng, 1.0 / max_rate);
        if ((double)s->origin_ms + s->next_arrival >= (double)s->end_ms)
            return 0; /* no more sessions in this run */
        ts = s->origin_ms + (int64_t)s->next_arrival;
        if (rng_unit(&s->rng) * s->diurnal_max < sim_diurnal(ts))
            return heap_push(s, ts, H_ARRIVAL, NULL);
    }
}

/* ---- calibration ---- */

/* Mean events per session, measured on PILOT_SESSIONS sessions drawn with a
 * generator of their own (so the run's stream does not depend on it beyond
 * the resulting rate). */
static double pilot_events_per_session(struct sim *s)
{
    struct rng r;
    long long events = 0;

    rng_seed(&r, s->o.seed ^ 0x70696c6f74ULL);
    for (int i = 0; i < PILOT_SESSIONS; i++) {
        struct sess ss;
        enum shop_event_type t = SHOP_EV_UNKNOWN;

        memset(&ss, 0, sizeof ss);
        sess_plan(&ss, &r);
        while (sess_has_more(&ss)) {
            uint32_t product;
            struct cart_line line;

            t = sess_advance(s, &r, &ss, &product, &line);
            events++;
        }
        if (t == SHOP_EV_PURCHASE)
            events += fate_events(draw_fate(&r));
    }
    return (double)events / PILOT_SESSIONS;
}

/* ---- public ---- */

void sim_opts_default(struct sim_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rate = 100;
    o->start_ms = 0;
    o->duration_ms = 60 * 1000;
    o->max_events = 0;
    o->users = 10000;
    o->products = 1000;
    o->seed = 1;
    o->time_scale = 1;
}

static int fail(char *errstr, size_t errsz, const char *why)
{
    if (errstr && errsz)
        snprintf(errstr, errsz, "%s", why);
    return -1;
}

struct sim *sim_new(const struct sim_opts *o, char *errstr, size_t errsz)
{
    struct sim *s;

    if (!(o->rate > 0 && o->rate <= 1e9)) {
        fail(errstr, errsz, "the rate must be above 0 and at most 1e9 events per second");
        return NULL;
    }
    if (o->users < 1 || o->users > SIM_MAX_USERS || o->products < 1 ||
        o->products > SIM_MAX_PRODUCTS) {
        fail(errstr, errsz, "the numbers of users and products are out of range");
        return NULL;
    }
    if (!(o->time_scale >= 1e-3 && o->time_scale <= 1e12)) {
        fail(errstr, errsz, "the time scale must be from 0.001 to 1e12");
        return NULL;
    }
    if (memchr(o->id_prefix, 0, sizeof o->id_prefix) == NULL) {
        fail(errstr, errsz, "the id prefix is longer than 15 bytes");
        return NULL;
    }
    if (o->max_events < 0 || o->start_ms < 0 || o->start_ms > INT64_MAX / 4 ||
        o->duration_ms > INT64_MAX / 4) {
        fail(errstr, errsz, "the start, duration or event limit is out of range");
        return NULL;
    }
    if (!(s = xcalloc(1, sizeof *s))) {
        fail(errstr, errsz, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->end_ms = o->duration_ms < 0 ? INT64_MAX : o->start_ms + o->duration_ms;
    rng_seed(&s->rng, o->seed);
    if (build_catalogue(s) < 0) {
        fail(errstr, errsz, "out of memory building the catalogue");
        goto err;
    }
    setup_users(s);
    s->diurnal_max = 0;
    for (int i = 0; i < 24; i++)
        if (diurnal_table[i] / diurnal_mean() > s->diurnal_max)
            s->diurnal_max = diurnal_table[i] / diurnal_mean();
    s->events_per_session = pilot_events_per_session(s);
    s->arrival_per_ms = o->rate / s->events_per_session / MS_SECOND;
    /* Warm-up: sessions start arriving WARMUP_MS before start, so that at
     * start the shop is already busy and the emitted rate is --rate from
     * the first second (a session lasts minutes).  Its clicks are drawn but
     * not emitted; it costs at most WARMUP_MAX_EVENTS events' work. */
    {
        double warm = WARMUP_MS;

        if (warm * o->rate / MS_SECOND > WARMUP_MAX_EVENTS)
            warm = WARMUP_MAX_EVENTS / o->rate * MS_SECOND;
        s->origin_ms = o->start_ms - (int64_t)warm;
    }
    s->next_session = s->next_order = s->next_return = 1;
    s->st.clock_ms = o->start_ms;
    if (schedule_arrival(s) < 0) {
        fail(errstr, errsz, "out of memory");
        goto err;
    }
    return s;
err:
    sim_free(s);
    return NULL;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nheap; i++)
        xfree(s->heap[i].actor);
    xfree(s->heap);
    xfree(s->products);
    xfree(s->by_rank);
    xfree(s->zipf_cdf);
    xfree(s);
}

void sim_get_stats(const struct sim *s, struct sim_stats *out)
{
    *out = s->st;
}

double sim_events_per_session(const struct sim *s)
{
    return s->events_per_session;
}

/* Clears ev and sets what every event has: id, type, ts, user_id. */
static void ev_begin(struct sim *s, struct shop_event *ev, enum shop_event_type type, int64_t ts,
                     uint32_t user)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->ts = ts;
    ev->amount = -1;
    ev->price = -1;
    snprintf(s->ev_id, sizeof s->ev_id, "%llu-%lld", (unsigned long long)s->o.seed,
             s->st.events + 1);
    ev->id = shop_str_c(s->ev_id);
    snprintf(s->ev_user, sizeof s->ev_user, "u%06u", user);
    ev->user_id = shop_str_c(s->ev_user);
}

static void ev_product(struct sim *s, struct shop_event *ev, uint32_t product, int64_t price)
{
    const struct product *p = &s->products[product];

    ev->product_id = shop_str_c(p->id);
    ev->category = shop_str_c(categories[p->category].name);
    ev->price = price;
}

/* A search query about category cat: its name, a product word, or an
 * adjective and a product word. */
static void make_query(struct sim *s, int cat)
{
    const struct category *c = &categories[cat];
    const char *noun = c->nouns[rng_below(&s->rng, 4)];
    double x = rng_unit(&s->rng);

    if (x < 0.35)
        snprintf(s->ev_query, sizeof s->ev_query, "%s", c->name);
    else if (x < 0.65)
        snprintf(s->ev_query, sizeof s->ev_query, "%s", noun);
    else
        snprintf(s->ev_query, sizeof s->ev_query, "%s %s",
                 adjectives[rng_below(&s->rng, NADJECTIVES)], noun);
}

/* Opens the order of a purchase: fate, items, first step due now. */
static struct order *order_open(struct sim *s, const struct sess *ss, int64_t ts)
{
    struct order *o = xcalloc(1, sizeof *o);

    if (!o)
        return NULL;
    o->id = s->next_order++;
    o->user = ss->user;
    o->step = ORD_CREATE;
    o->fate = draw_fate(&s->rng);
    o->nitems = ss->ncart;
    for (int i = 0; i < ss->ncart; i++) {
        o->items[i] = ss->cart[i];
        o->amount += ss->cart[i].qty * ss->cart[i].price;
    }
    if (heap_push(s, ts, H_ORDER, o) < 0) {
        xfree(o);
        return NULL;
    }
    s->st.orders++;
    s->st.live_orders++;
    return o;
}

/* The session s due at ts makes its next click into ev and returns its
 * type, or -1 when memory ran out.  During the warm-up (ts < start) the
 * click is only decided, not written, and a purchase opens no order. */
static int session_step(struct sim *s, struct sess *ss, int64_t ts, struct shop_event *ev)
{
    uint32_t product = 0;
    struct cart_line line = {0, 0, 0};
    int landing = ss->phase == SESS_LANDING;
    enum shop_event_type t = sess_advance(s, &s->rng, ss, &product, &line);

    if (ts < s->o.start_ms)
        return (int)t;
    ev_begin(s, ev, t, ts, ss->user);
    snprintf(s->ev_session, sizeof s->ev_session, "%ss%lld", s->o.id_prefix, ss->id);
    ev->session_id = shop_str_c(s->ev_session);
    switch (t) {
    case SHOP_EV_PAGE_VIEW:
        /* Half of the pages after landing are category pages. */
        if (!landing && rng_chance(&s->rng, 0.5))
            ev->category = shop_str_c(categories[rng_below(&s->rng, NCATEGORIES)].name);
        break;
    case SHOP_EV_SEARCH:
        make_query(s, ss->search_cat);
        ev->query = shop_str_c(s->ev_query);
        break;
    case SHOP_EV_PRODUCT_VIEW:
    case SHOP_EV_ADD_TO_CART:
        ev_product(s, ev, product, s->products[product].price);
        break;
    case SHOP_EV_REMOVE_FROM_CART:
        ev_product(s, ev, product, line.price);
        break;
    case SHOP_EV_PURCHASE: {
        struct order *o = order_open(s, ss, ts);

        if (!o)
            return -1;
        snprintf(s->ev_order, sizeof s->ev_order, "%so%lld", s->o.id_prefix, o->id);
        ev->order_id = shop_str_c(s->ev_order);
        break;
    }
    default:
        break;
    }
    return (int)t;
}

/* Picks the returned lines of o: each line with probability 0.6 (at least
 * one), each with 1..bought units. */
static void order_pick_return(struct sim *s, struct order *o)
{
    o->nret = 0;
    o->return_amount = 0;
    for (int i = 0; i < o->nitems; i++)
        if (rng_chance(&s->rng, 0.6))
            o->ret[o->nret++] = o->items[i];
    if (!o->nret)
        o->ret[o->nret++] = o->items[rng_below(&s->rng, (uint32_t)o->nitems)];
    for (int i = 0; i < o->nret; i++) {
        o->ret[i].qty = 1 + (int32_t)rng_below(&s->rng, (uint32_t)o->ret[i].qty);
        o->return_amount += o->ret[i].qty * o->ret[i].price;
    }
}

static void ev_items(struct sim *s, struct shop_event *ev, const struct cart_line *lines, int n,
                     int with_price)
{
    for (int i = 0; i < n; i++) {
        s->ev_items[i].product_id = shop_str_c(s->products[lines[i].product].id);
        s->ev_items[i].qty = lines[i].qty;
        s->ev_items[i].price = with_price ? lines[i].price : -1;
    }
    ev->items = s->ev_items;
    ev->nitems = (size_t)n;
}

/* The order o due at ts makes its current step's event into ev and moves on
 * to the next step. */
static void order_step(struct sim *s, struct order *o, int64_t ts, struct shop_event *ev)
{
    static const enum shop_event_type type_of[] = {
        [ORD_CREATE] = SHOP_EV_ORDER_CREATED,         [ORD_PAY] = SHOP_EV_ORDER_PAID,
        [ORD_PAY_TIMEOUT] = SHOP_EV_ORDER_CANCELLED,  [ORD_CUSTOMER_CANCEL] = SHOP_EV_ORDER_CANCELLED,
        [ORD_CANCEL_REFUND] = SHOP_EV_REFUND_ISSUED,  [ORD_SHIP] = SHOP_EV_ORDER_SHIPPED,
        [ORD_DELIVER] = SHOP_EV_ORDER_DELIVERED,      [ORD_RETURN_REQUEST] = SHOP_EV_RETURN_REQUESTED,
        [ORD_RETURN_APPROVE] = SHOP_EV_RETURN_APPROVED, [ORD_RETURN_REJECT] = SHOP_EV_RETURN_REJECTED,
        [ORD_RETURN_RECEIVE] = SHOP_EV_RETURN_RECEIVED, [ORD_RETURN_REFUND] = SHOP_EV_REFUND_ISSUED,
    };

    assert(o->step < ORD_DONE);
    ev_begin(s, ev, type_of[o->step], ts, o->user);
    snprintf(s->ev_order, sizeof s->ev_order, "%so%lld", s->o.id_prefix, o->id);
    ev->order_id = shop_str_c(s->ev_order);
    switch (o->step) {
    case ORD_CREATE:
        ev_items(s, ev, o->items, o->nitems, 1);
        ev->amount = o->amount;
        ev->currency = shop_str_c("EUR");
        break;
    case ORD_PAY:
        ev->amount = o->amount;
        ev->currency = shop_str_c("EUR");
        ev->payment_method = shop_str_c(
            pay_methods[rng_weighted(&s->rng, pay_weights, sizeof pay_weights / sizeof pay_weights[0])]);
        break;
    case ORD_PAY_TIMEOUT:
        ev->reason = shop_str_c("payment_timeout");
        break;
    case ORD_CUSTOMER_CANCEL:
        ev->reason = shop_str_c("customer_request");
        break;
    case ORD_CANCEL_REFUND:
        ev->amount = o->amount;
        ev->currency = shop_str_c("EUR");
        ev->reason = shop_str_c("order_cancelled");
        break;
    case ORD_SHIP:
        ev->carrier = shop_str_c(carriers[rng_weighted(
            &s->rng, carrier_weights, sizeof carrier_weights / sizeof carrier_weights[0])]);
        break;
    case ORD_DELIVER:
        break;
    case ORD_RETURN_REQUEST:
        order_pick_return(s, o);
        o->return_id = s->next_return++;
        o->reason = (uint8_t)rng_weighted(&s->rng, return_reason_weights,
                                          sizeof return_reason_weights /
                                              sizeof return_reason_weights[0]);
        ev->reason = shop_str_c(return_reasons[o->reason]);
        ev_items(s, ev, o->ret, o->nret, 0);
        /* Every return event names the return and its value. */
        /* fall through */
    case ORD_RETURN_APPROVE:
    case ORD_RETURN_RECEIVE:
    case ORD_RETURN_REFUND:
    case ORD_RETURN_REJECT:
        snprintf(s->ev_return, sizeof s->ev_return, "%sr%lld", s->o.id_prefix, o->return_id);
        ev->return_id = shop_str_c(s->ev_return);
        ev->amount = o->return_amount;
        ev->currency = shop_str_c("EUR");
        if (o->step == ORD_RETURN_REJECT)
            ev->reason = shop_str_c(
                reject_reasons[rng_below(&s->rng, sizeof reject_reasons / sizeof reject_reasons[0])]);
        break;
    case ORD_DONE:
        break;
    }
    o->step = order_next_step(o);
}

int sim_next(struct sim *s, struct shop_event *ev)
{
    while (!s->done) {
        struct heap_entry e;
        int64_t next;

        if ((s->o.max_events > 0 && s->st.events >= s->o.max_events) || s->nheap == 0 ||
            s->heap[0].ts >= s->end_ms) {
            s->done = 1;
            break;
        }
        e = heap_pop(s);
        switch (e.kind) {
        case H_ARRIVAL: {
            struct sess *ss = xcalloc(1, sizeof *ss);

            if (!ss || heap_push(s, e.ts, H_SESSION, ss) < 0) {
                xfree(ss);
                s->done = 1;
                return 0;
            }
            ss->id = s->next_session++;
            ss->user = pick_user(s, &s->rng);
            sess_plan(ss, &s->rng);
            s->st.sessions++;
            s->st.live_sessions++;
            if (schedule_arrival(s) < 0) {
                s->done = 1;
                return 0;
            }
            continue;
        }
        case H_SESSION: {
            struct sess *ss = e.actor;
            int t = session_step(s, ss, e.ts, ev);

            if (t < 0) {
                xfree(ss);
                s->st.live_sessions--;
                s->done = 1;
                return 0;
            }
            next = e.ts + think_ms(&s->rng, (enum shop_event_type)t);
            if (!sess_has_more(ss) || next >= s->end_ms ||
                heap_push(s, next, H_SESSION, ss) < 0) {
                xfree(ss);
                s->st.live_sessions--;
            }
            if (e.ts < s->o.start_ms)
                continue; /* warm-up: nothing is emitted */
            break;
        }
        case H_ORDER: {
            struct order *o = e.actor;

            order_step(s, o, e.ts, ev);
            if (o->step != ORD_DONE) {
                next = e.ts + order_delay(s, o->step);
                if (next < s->end_ms && heap_push(s, next, H_ORDER, o) == 0)
                    break;
            }
            xfree(o);
            s->st.live_orders--;
            break;
        }
        }
        s->st.events++;
        s->st.clock_ms = ev->ts;
        switch (shop_event_stream(ev->type)) {
        case SHOP_STREAM_CLICKS: s->st.clicks++; break;
        case SHOP_STREAM_ORDERS: s->st.order_events++; break;
        case SHOP_STREAM_AFTERSALES: s->st.aftersales++; break;
        }
        return 1;
    }
    return 0;
}

/* ---- time parsing ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: count
 * whole years from a March-based year (so the leap day ends the year), then
 * days within it. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits at *p into *v. */
static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

int sim_parse_time(const char *str, int64_t *out)
{
    const char *p = str;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, zone_min = 0;
    int64_t days;

    if (!*p)
        return -1;
    if (strspn(p, "0123456789") == strlen(p)) {
        long long v = 0;

        if (strlen(p) > 18)
            return -1;
        for (; *p; p++)
            v = v * 10 + (*p - '0');
        *out = v;
        return 0;
    }
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) < 0)
                return -1;
            if (*p == '.') {
                int n = 0;

                for (p++; isdigit((unsigned char)*p); p++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*p - '0');
                if (n == 0)
                    return -1;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;

        if (digits(&p, 2, &zh) < 0)
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &zm) < 0)
            return -1;
        if (zh > 23 || zm > 59)
            return -1;
        zone_min = sign * (zh * 60 + zm);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    days = days_from_civil(y, mo, d);
    *out = ((days * 24 + h) * 60 + mi - zone_min) * 60000LL + sec * 1000LL + ms;
    return *out < 0 ? -1 : 0;
}
