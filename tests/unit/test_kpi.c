/* test_kpi.c: the window aggregate (shop/kpi.c): every counter against
 * hand-computed values, the exact-to-HyperLogLog switch at the cap, HLL
 * accuracy from 10^3 to 10^6 ids, merges of every kind (and that merging
 * partials equals counting everything in one aggregate), the binary form
 * (round trips, canonical bytes, every truncation, random corruption and
 * hand-made hostile encodings, each decoded from an exactly-sized heap block
 * so ASan sees any overread), the JSON verbatim, top-10 ordering, the window
 * key, and allocation failure at every step without leaks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/varint.h"
#include "shop/event.h"
#include "shop/kpi.h"
#include "test.h"

#define START 1700000040000LL
#define END 1700000100000LL

static struct shop_event mk(enum shop_event_type t, const char *user, const char *product,
                            int64_t amount)
{
    struct shop_event ev;
    shop_event_init(&ev);
    ev.type = t;
    ev.user_id = shop_str_c(user);
    ev.product_id = shop_str_c(product);
    ev.amount = amount;
    return ev;
}

static void add(struct kpi_agg *a, enum shop_event_type t, const char *user, const char *product,
                int64_t amount, enum kpi_step step)
{
    struct shop_event ev = mk(t, user, product, amount);
    CHECK_EQ(kpi_agg_add(a, &ev, step), 0);
}

static void add_order(struct kpi_agg *a, const char *user, int64_t amount, const char *currency,
                      const char *p1, int64_t q1, const char *p2, int64_t q2)
{
    struct shop_item items[2] = {{shop_str_c(p1), q1, 100}, {shop_str_c(p2), q2, 100}};
    struct shop_event ev = mk(SHOP_EV_ORDER_CREATED, user, NULL, amount);
    ev.currency = shop_str_c(currency);
    ev.items = items;
    ev.nitems = p2 ? 2 : 1;
    CHECK_EQ(kpi_agg_add(a, &ev, KPI_STEP_NONE), 0);
}

static const struct kpi_product *find(const struct kpi_agg *a, const char *id)
{
    for (size_t i = 0; i < a->products_cap; i++)
        if (a->products[i].id && strcmp(a->products[i].id, id) == 0)
            return &a->products[i];
    return NULL;
}

/* Encodes a (which must succeed) into b, reset first. */
static void enc(const struct kpi_agg *a, struct jbuf *b)
{
    jbuf_reset(b);
    CHECK_EQ(kpi_agg_encode(a, b), 0);
}

static void js(const struct kpi_agg *a, int final, struct jbuf *b)
{
    jbuf_reset(b);
    CHECK_EQ(kpi_agg_write_json(a, final, b), 0);
}

/* Decodes p[0..n) from an exactly-sized heap block. */
static struct kpi_agg *dec(const void *p, size_t n, size_t cap)
{
    void *copy = malloc(n ? n : 1);
    CHECK(copy);
    memcpy(copy, p, n);
    struct kpi_agg *a = kpi_agg_decode(copy, n, cap);
    free(copy);
    return a;
}

static int same_bytes(const struct jbuf *x, const struct jbuf *y)
{
    return x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
}

/* The small aggregate of the verbatim JSON test. */
static struct kpi_agg *small_agg(void)
{
    struct kpi_agg *a = kpi_agg_new("1m", START, END, 100);
    CHECK(a);
    add_order(a, "u1", 1000, "EUR", "A", 2, "B", 1);
    add_order(a, "u2", 501, "EUR", "B", 3, NULL, 0);
    add(a, SHOP_EV_ORDER_PAID, "u1", NULL, 1000, KPI_STEP_NONE);
    add(a, SHOP_EV_REFUND_ISSUED, "u1", NULL, 200, KPI_STEP_NONE);
    add(a, SHOP_EV_PAGE_VIEW, "u1", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PRODUCT_VIEW, "u1", "A", -1, KPI_STEP_PRODUCT_VIEW);
    add(a, SHOP_EV_PRODUCT_VIEW, "u2", "B", -1, KPI_STEP_PRODUCT_VIEW);
    add(a, SHOP_EV_PRODUCT_VIEW, "u3", "B", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_ADD_TO_CART, "u1", "A", -1, KPI_STEP_ADD_TO_CART);
    add(a, SHOP_EV_CHECKOUT, "u1", NULL, -1, KPI_STEP_CHECKOUT);
    add(a, SHOP_EV_PURCHASE, "u1", NULL, -1, KPI_STEP_PURCHASE);
    add(a, SHOP_EV_ORDER_SHIPPED, "u9", NULL, -1, KPI_STEP_NONE);
    a->late_events = 1;
    return a;
}

TEST(kpi_counters)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *a = kpi_agg_new("1h", 3600000, 7200000, 1000);
    CHECK(a);
    CHECK_EQ(a->currency[0], 0);
    add_order(a, "u1", 1000, "EUR", "A", 2, "B", 1);
    add_order(a, "u2", 2500, "EUR", "A", 5, NULL, 0);
    CHECK(strcmp(a->currency, "EUR") == 0);
    add(a, SHOP_EV_ORDER_PAID, "u1", NULL, 1000, KPI_STEP_NONE);
    add(a, SHOP_EV_ORDER_PAID, "u2", NULL, 2500, KPI_STEP_NONE);
    add(a, SHOP_EV_REFUND_ISSUED, "u1", NULL, 300, KPI_STEP_NONE);
    add(a, SHOP_EV_PAGE_VIEW, "u1", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PAGE_VIEW, "u4", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PRODUCT_VIEW, "u1", "A", -1, KPI_STEP_PRODUCT_VIEW);
    add(a, SHOP_EV_PRODUCT_VIEW, "u2", "A", -1, KPI_STEP_PRODUCT_VIEW);
    add(a, SHOP_EV_PRODUCT_VIEW, "u2", "C", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_SEARCH, "u5", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_ADD_TO_CART, "u1", "A", -1, KPI_STEP_ADD_TO_CART);
    add(a, SHOP_EV_REMOVE_FROM_CART, "u6", "A", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_CHECKOUT, "u1", NULL, -1, KPI_STEP_CHECKOUT);
    add(a, SHOP_EV_PURCHASE, "u1", NULL, -1, KPI_STEP_PURCHASE);
    add(a, SHOP_EV_PURCHASE, "u1", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PURCHASE, "u2", NULL, -1, KPI_STEP_PURCHASE);
    /* types that count nothing (the funnel step is the caller's) */
    add(a, SHOP_EV_ORDER_SHIPPED, "u7", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_ORDER_DELIVERED, "u7", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_ORDER_CANCELLED, "u7", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_RETURN_REQUESTED, "u7", "A", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_RETURN_RECEIVED, "u7", NULL, -1, KPI_STEP_NONE);
    add(a, SHOP_EV_UNKNOWN, "u7", "A", 5, KPI_STEP_NONE);

    CHECK_EQ(a->gmv, 3500);
    CHECK_EQ(a->orders, 2);
    CHECK_EQ(a->paid_revenue, 3500);
    CHECK_EQ(a->refunds, 300);
    CHECK_EQ(a->pv, 5);
    CHECK_EQ(a->late_events, 0);
    CHECK_EQ(a->funnel[0], 2);
    CHECK_EQ(a->funnel[1], 1);
    CHECK_EQ(a->funnel[2], 1);
    CHECK_EQ(a->funnel[3], 2);
    CHECK_EQ(kpi_distinct_count(&a->uv), 5); /* u1 u2 u4 u5 u6 */
    CHECK_EQ(kpi_distinct_count(&a->purchasers), 2);
    CHECK(!a->uv.hll && !a->purchasers.hll);
    CHECK_EQ(a->nproducts, 3);
    CHECK_EQ(find(a, "A")->units, 7);
    CHECK_EQ(find(a, "A")->views, 2);
    CHECK_EQ(find(a, "B")->units, 1);
    CHECK_EQ(find(a, "B")->views, 0);
    CHECK_EQ(find(a, "C")->units, 0);
    CHECK_EQ(find(a, "C")->views, 1);

    /* a different currency makes it mixed, for good */
    add_order(a, "u3", 100, "USD", "D", 1, NULL, 0);
    CHECK(strcmp(a->currency, "mixed") == 0);
    add_order(a, "u3", 100, "EUR", "D", 1, NULL, 0);
    CHECK(strcmp(a->currency, "mixed") == 0);
    CHECK_EQ(a->gmv, 3700);
    CHECK_EQ(a->orders, 4);
    CHECK_EQ(find(a, "D")->units, 2);
    /* the step counts whatever the type */
    add(a, SHOP_EV_ORDER_PAID, "u3", NULL, 0, KPI_STEP_CHECKOUT);
    CHECK_EQ(a->funnel[2], 2);
    CHECK_EQ(a->paid_revenue, 3500);
    kpi_agg_free(a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_new_rejects_unknown_window)
{
    CHECK(kpi_agg_new("2m", 0, 1, 10) == NULL);
    CHECK(kpi_agg_new("1", 0, 1, 10) == NULL);
    CHECK(kpi_agg_new("1mm", 0, 1, 10) == NULL);
    struct kpi_agg *a = kpi_agg_new("1d", 0, 86400000, 10);
    CHECK(a && strcmp(a->window, "1d") == 0);
    kpi_agg_free(a);
    kpi_agg_free(NULL);
}

TEST(kpi_json_verbatim)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *a = small_agg();
    struct jbuf b;
    jbuf_init(&b);
    js(a, 1, &b);
    const char *want =
        "{\"window\":\"1m\",\"start\":1700000040000,\"end\":1700000100000,\"currency\":\"EUR\","
        "\"gmv\":1501,\"orders\":2,\"aov\":751,\"paid_revenue\":1000,\"refunds\":200,"
        "\"net_revenue\":800,\"pv\":4,\"uv\":3,\"conversion\":0.333333,"
        "\"funnel\":{\"product_view\":2,\"add_to_cart\":1,\"checkout\":1,\"purchase\":1},"
        "\"top_products_by_units\":[{\"product_id\":\"B\",\"units\":4},{\"product_id\":\"A\","
        "\"units\":2}],\"top_products_by_views\":[{\"product_id\":\"B\",\"views\":2},"
        "{\"product_id\":\"A\",\"views\":1}],\"late_events\":1,\"final\":true,\"uv_exact\":true,"
        "\"uv_error\":0}";
    if (strcmp(b.p, want) != 0)
        fprintf(stderr, "got  %s\nwant %s\n", b.p, want);
    CHECK(strcmp(b.p, want) == 0);

    /* an empty aggregate, not final */
    struct kpi_agg *e = kpi_agg_new("1d", 0, 86400000, 100);
    CHECK(e);
    js(e, 0, &b);
    const char *want_empty =
        "{\"window\":\"1d\",\"start\":0,\"end\":86400000,\"currency\":\"\",\"gmv\":0,\"orders\":0,"
        "\"aov\":0,\"paid_revenue\":0,\"refunds\":0,\"net_revenue\":0,\"pv\":0,\"uv\":0,"
        "\"conversion\":0,\"funnel\":{\"product_view\":0,\"add_to_cart\":0,\"checkout\":0,"
        "\"purchase\":0},\"top_products_by_units\":[],\"top_products_by_views\":[],"
        "\"late_events\":0,\"final\":false,\"uv_exact\":true,\"uv_error\":0}";
    if (strcmp(b.p, want_empty) != 0)
        fprintf(stderr, "got  %s\nwant %s\n", b.p, want_empty);
    CHECK(strcmp(b.p, want_empty) == 0);

    /* once the uv set is a sketch */
    struct kpi_agg *h = kpi_agg_new("1m", 0, 60000, 0);
    CHECK(h);
    add(h, SHOP_EV_PAGE_VIEW, "u1", NULL, -1, KPI_STEP_NONE);
    CHECK(h->uv.hll);
    js(h, 0, &b);
    CHECK(strstr(b.p, "\"uv\":1,") != NULL);
    CHECK(strstr(b.p, "\"uv_exact\":false,\"uv_error\":0.0081}") != NULL);
    jbuf_free(&b);
    kpi_agg_free(a);
    kpi_agg_free(e);
    kpi_agg_free(h);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* The value of the member "name" in the JSON of a (a number's text). */
static void json_member(const struct kpi_agg *a, const char *name, char *out, size_t size)
{
    struct jbuf b;
    jbuf_init(&b);
    js(a, 0, &b);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(b.p, key);
    CHECK(p);
    p += strlen(key);
    size_t n = strcspn(p, ",}");
    CHECK(n < size);
    memcpy(out, p, n);
    out[n] = 0;
    jbuf_free(&b);
}

TEST(kpi_aov_and_conversion_rounding)
{
    static const struct {
        int64_t gmv, orders;
        const char *aov;
    } aov[] = {{5, 2, "3"}, {4, 3, "1"}, {5, 3, "2"}, {7, 2, "4"}, {1, 3, "0"}, {3, 2, "2"},
               {0, 1, "0"}, {INT64_MAX, 2, "4611686018427387904"}};
    char v[64];
    for (size_t i = 0; i < sizeof aov / sizeof aov[0]; i++) {
        struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 10);
        CHECK(a);
        a->gmv = aov[i].gmv;
        a->orders = aov[i].orders;
        json_member(a, "aov", v, sizeof v);
        if (strcmp(v, aov[i].aov) != 0)
            fprintf(stderr, "aov %lld/%lld: %s\n", (long long)aov[i].gmv,
                    (long long)aov[i].orders, v);
        CHECK(strcmp(v, aov[i].aov) == 0);
        kpi_agg_free(a);
    }
    /* conversion: purchasers / uv, half up at 6 decimals */
    static const struct {
        int users, buyers;
        const char *conv;
    } conv[] = {{3, 1, "0.333333"}, {3, 2, "0.666667"}, {8, 1, "0.125"}, {1, 1, "1"},
                {7, 0, "0"},        {2000000 / 1000, 1, "0.0005"}};
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++) {
        struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 100000);
        CHECK(a);
        char id[32];
        for (int u = 0; u < conv[i].users; u++) {
            snprintf(id, sizeof id, "user-%d", u);
            add(a, u < conv[i].buyers ? SHOP_EV_PURCHASE : SHOP_EV_PAGE_VIEW, id, NULL, -1,
                KPI_STEP_NONE);
        }
        json_member(a, "conversion", v, sizeof v);
        if (strcmp(v, conv[i].conv) != 0)
            fprintf(stderr, "conversion %d/%d: %s\n", conv[i].buyers, conv[i].users, v);
        CHECK(strcmp(v, conv[i].conv) == 0);
        kpi_agg_free(a);
    }
    /* exactly half a millionth rounds up: 1 / 2000000 = 0.0000005 -> 0.000001 */
    struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 3000000);
    CHECK(a);
    char id[32];
    for (int u = 0; u < 2000000; u++) {
        snprintf(id, sizeof id, "user-%d", u);
        add(a, u == 0 ? SHOP_EV_PURCHASE : SHOP_EV_SEARCH, id, NULL, -1, KPI_STEP_NONE);
    }
    CHECK(!a->uv.hll);
    CHECK_EQ(kpi_distinct_count(&a->uv), 2000000);
    json_member(a, "conversion", v, sizeof v);
    CHECK(strcmp(v, "1e-06") == 0);
    kpi_agg_free(a);
}

TEST(kpi_top10_ties)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 100);
    CHECK(a);
    /* units: p00..p14 with 3,3,3,...; ties broken by the smaller id; views
     * only on a few, and products with zero views stay out of that list */
    static const int units[15] = {1, 5, 5, 2, 5, 9, 1, 1, 7, 3, 3, 3, 0, 2, 1};
    char id[16];
    for (int i = 14; i >= 0; i--) {
        snprintf(id, sizeof id, "p%02d", i);
        if (units[i])
            add_order(a, "u", 1, "EUR", id, units[i], NULL, 0);
        else
            add(a, SHOP_EV_PRODUCT_VIEW, "u", id, -1, KPI_STEP_NONE);
    }
    add(a, SHOP_EV_PRODUCT_VIEW, "u", "p07", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PRODUCT_VIEW, "u", "p07", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PRODUCT_VIEW, "u", "p03", -1, KPI_STEP_NONE);
    add(a, SHOP_EV_PRODUCT_VIEW, "u", "b", -1, KPI_STEP_NONE); /* ids of any length */
    add(a, SHOP_EV_PRODUCT_VIEW, "u", "p0", -1, KPI_STEP_NONE);
    struct jbuf b;
    jbuf_init(&b);
    js(a, 0, &b);
    const char *want_units =
        "\"top_products_by_units\":[{\"product_id\":\"p05\",\"units\":9},"
        "{\"product_id\":\"p08\",\"units\":7},{\"product_id\":\"p01\",\"units\":5},"
        "{\"product_id\":\"p02\",\"units\":5},{\"product_id\":\"p04\",\"units\":5},"
        "{\"product_id\":\"p09\",\"units\":3},{\"product_id\":\"p10\",\"units\":3},"
        "{\"product_id\":\"p11\",\"units\":3},{\"product_id\":\"p03\",\"units\":2},"
        "{\"product_id\":\"p13\",\"units\":2}],";
    const char *want_views =
        "\"top_products_by_views\":[{\"product_id\":\"p07\",\"views\":2},"
        "{\"product_id\":\"b\",\"views\":1},{\"product_id\":\"p0\",\"views\":1},"
        "{\"product_id\":\"p03\",\"views\":1},{\"product_id\":\"p12\",\"views\":1}],";
    if (!strstr(b.p, want_units) || !strstr(b.p, want_views))
        fprintf(stderr, "got %s\n", b.p);
    CHECK(strstr(b.p, want_units) != NULL);
    CHECK(strstr(b.p, want_views) != NULL);
    jbuf_free(&b);
    kpi_agg_free(a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_distinct_exact_then_hll)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 100);
    CHECK(a);
    char id[32];
    for (int round = 0; round < 2; round++)
        for (int u = 0; u < 100; u++) {
            snprintf(id, sizeof id, "user-%d", u);
            add(a, SHOP_EV_PAGE_VIEW, id, NULL, -1, KPI_STEP_NONE);
            CHECK(!a->uv.hll);
            CHECK_EQ(kpi_distinct_count(&a->uv), round ? 100 : u + 1);
        }
    CHECK_EQ(a->uv.n, 100);
    /* the 101st distinct id passes the cap */
    add(a, SHOP_EV_PAGE_VIEW, "user-100", NULL, -1, KPI_STEP_NONE);
    CHECK(a->uv.hll && a->uv.reg && !a->uv.hashes);
    CHECK_EQ(kpi_distinct_count(&a->uv), 101); /* linear counting is exact this small */
    for (int u = 0; u < 101; u++) {
        snprintf(id, sizeof id, "user-%d", u);
        add(a, SHOP_EV_PAGE_VIEW, id, NULL, -1, KPI_STEP_NONE);
    }
    CHECK_EQ(kpi_distinct_count(&a->uv), 101);
    CHECK_EQ(a->pv, 302);
    /* purchasers follow the same cap on their own */
    CHECK(!a->purchasers.hll);
    CHECK_EQ(kpi_distinct_count(&a->purchasers), 0);
    kpi_agg_free(a);

    /* cap 0: a sketch from the first id */
    a = kpi_agg_new("1m", 0, 60000, 0);
    CHECK(a);
    CHECK(!a->uv.hll);
    add(a, SHOP_EV_SEARCH, "x", NULL, -1, KPI_STEP_NONE);
    CHECK(a->uv.hll);
    CHECK_EQ(kpi_distinct_count(&a->uv), 1);
    kpi_agg_free(a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_hll_accuracy)
{
    static const long sizes[] = {1000,  3000,   10000,  30000,  40000,  60000,
                                 80000, 100000, 300000, 1000000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct kpi_agg *a = kpi_agg_new("1d", 0, 86400000, 0);
        CHECK(a);
        char id[32];
        for (long u = 0; u < sizes[s]; u++) {
            int n = snprintf(id, sizeof id, "customer-%ld-%ld", u * 7919 % 1000003, s);
            struct shop_event ev = mk(SHOP_EV_PAGE_VIEW, NULL, NULL, -1);
            ev.user_id.p = id;
            ev.user_id.n = (size_t)n;
            CHECK_EQ(kpi_agg_add(a, &ev, KPI_STEP_NONE), 0);
        }
        CHECK(a->uv.hll);
        double est = (double)kpi_distinct_count(&a->uv);
        double err = (est - (double)sizes[s]) / (double)sizes[s];
        fprintf(stderr, "  n=%ld estimate=%.0f error=%+.4f%%\n", sizes[s], est, err * 100);
        CHECK(fabs(err) <= 3 * 1.04 / sqrt(KPI_HLL_REGISTERS));
        kpi_agg_free(a);
    }
}

TEST(kpi_hash_quality)
{
    /* no collisions among 10^6 short ids, ids of every length up to 40
     * differ, and the top 14 bits (the HLL register) are spread evenly */
    size_t n = 1000000;
    uint64_t *h = malloc(n * sizeof *h);
    CHECK(h);
    static uint32_t bucket[KPI_HLL_REGISTERS];
    char id[32];
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(id, sizeof id, "u%zu", i);
        h[i] = kpi_hash(id, (size_t)k);
        bucket[h[i] >> (64 - KPI_HLL_P)]++;
    }
    double mean = (double)n / KPI_HLL_REGISTERS, chi = 0;
    for (size_t i = 0; i < KPI_HLL_REGISTERS; i++)
        chi += (bucket[i] - mean) * (bucket[i] - mean) / mean;
    /* 16383 degrees of freedom: mean 16383, sd about 181 */
    CHECK(chi > 16383 - 6 * 181 && chi < 16383 + 6 * 181);
    /* sort and look for neighbours that are equal */
    for (size_t gap = n / 2; gap > 0; gap /= 2) /* shell sort is enough here */
        for (size_t i = gap; i < n; i++)
            for (size_t j = i; j >= gap && h[j - gap] > h[j]; j -= gap) {
                uint64_t t = h[j];
                h[j] = h[j - gap];
                h[j - gap] = t;
            }
    for (size_t i = 1; i < n; i++)
        CHECK(h[i] != h[i - 1]);
    free(h);
    /* lengths 0..40 of zeros, and one flipped bit at each position */
    char z[41] = {0};
    uint64_t seen[41 * 41 * 8 + 41];
    size_t ns = 0;
    for (size_t len = 0; len <= 40; len++) {
        seen[ns++] = kpi_hash(z, len);
        for (size_t pos = 0; pos < len; pos++)
            for (int bit = 0; bit < 8; bit++) {
                z[pos] ^= (char)(1 << bit);
                seen[ns++] = kpi_hash(z, len);
                z[pos] ^= (char)(1 << bit);
            }
    }
    for (size_t i = 0; i < ns; i++)
        for (size_t j = i + 1; j < ns; j++)
            CHECK(seen[i] != seen[j]);
    /* avalanche: one input bit flips about half the output bits */
    long flips = 0, trials = 0;
    for (size_t len = 1; len <= 24; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int bit = 0; bit < 8; bit++) {
                char s[24];
                for (size_t i = 0; i < len; i++)
                    s[i] = (char)('a' + (i * 7 + len) % 26);
                uint64_t x = kpi_hash(s, len);
                s[pos] ^= (char)(1 << bit);
                flips += __builtin_popcountll(x ^ kpi_hash(s, len));
                trials++;
            }
    double avg = (double)flips / (double)trials;
    CHECK(avg > 31.0 && avg < 33.0);
    CHECK(kpi_hash("abc", 3) == kpi_hash("abcd", 3));
    CHECK(kpi_hash("abc", 3) != kpi_hash("abc", 2));
}

/* Events for the merge tests: user u of n users, product by a skew. */
static void add_click(struct kpi_agg *a, unsigned i, unsigned users)
{
    char uid[32], pid[32];
    unsigned r = i * 2654435761u;
    snprintf(uid, sizeof uid, "user-%u", r % users);
    snprintf(pid, sizeof pid, "prod-%u", (r >> 8) % 37 * ((r >> 16) % 5) % 50);
    static const enum shop_event_type types[] = {SHOP_EV_PAGE_VIEW,   SHOP_EV_PRODUCT_VIEW,
                                                 SHOP_EV_SEARCH,      SHOP_EV_ADD_TO_CART,
                                                 SHOP_EV_CHECKOUT,    SHOP_EV_PURCHASE,
                                                 SHOP_EV_ORDER_PAID,  SHOP_EV_REFUND_ISSUED,
                                                 SHOP_EV_ORDER_CREATED};
    enum shop_event_type t = types[(r >> 4) % 9];
    if (t == SHOP_EV_ORDER_CREATED) {
        add_order(a, uid, 100 + r % 1000, (r >> 3) % 50 ? "EUR" : "GBP", pid, 1 + r % 3,
                  "prod-x", 1);
        return;
    }
    add(a, t, uid, pid, r % 500, (enum kpi_step)(i % 5));
}

/* Every event into one aggregate equals the merge of partials holding them
 * split three ways, byte for byte. */
static void check_merge_equals_one(unsigned nev, unsigned users, size_t cap, int parts_hll,
                                   int want_hll)
{
    struct kpi_agg *one = kpi_agg_new("1h", 0, 3600000, cap);
    struct kpi_agg *part[3];
    for (int k = 0; k < 3; k++) {
        part[k] = kpi_agg_new("1h", 0, 3600000, cap);
        CHECK(part[k]);
    }
    CHECK(one);
    for (unsigned i = 0; i < nev; i++) {
        add_click(one, i, users);
        add_click(part[(i * 40503u >> 7) % 3], i, users);
    }
    CHECK_EQ(one->uv.hll, want_hll);
    for (int k = 0; k < 3; k++)
        CHECK_EQ(part[k]->uv.hll, parts_hll);
    CHECK_EQ(kpi_agg_merge(part[0], part[1]), 0);
    CHECK_EQ(kpi_agg_merge(part[0], part[2]), 0);
    CHECK_EQ(part[0]->uv.hll, want_hll);
    struct jbuf x, y;
    jbuf_init(&x);
    jbuf_init(&y);
    enc(one, &x);
    enc(part[0], &y);
    CHECK(same_bytes(&x, &y));
    js(one, 1, &x);
    js(part[0], 1, &y);
    CHECK(same_bytes(&x, &y));
    jbuf_free(&x);
    jbuf_free(&y);
    kpi_agg_free(one);
    for (int k = 0; k < 3; k++)
        kpi_agg_free(part[k]);
}

TEST(kpi_merge_equals_one_aggregate)
{
    size_t base = alloc_live_bytes();
    check_merge_equals_one(5000, 300, 1000, 0, 0);    /* exact throughout */
    check_merge_equals_one(3000, 1500, 1000, 0, 1);   /* partials exact, union past the cap */
    check_merge_equals_one(50000, 30000, 1000, 1, 1); /* sketches */
    CHECK_EQ(alloc_live_bytes(), base);
}

static struct kpi_agg *users_agg(int from, int to, size_t cap)
{
    struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, cap);
    CHECK(a);
    char id[32];
    for (int u = from; u < to; u++) {
        snprintf(id, sizeof id, "user-%d", u);
        add(a, SHOP_EV_PURCHASE, id, NULL, -1, KPI_STEP_PURCHASE);
    }
    return a;
}

TEST(kpi_merge_kinds)
{
    size_t base = alloc_live_bytes();
    /* exact + exact within the cap: exact, the union */
    struct kpi_agg *a = users_agg(0, 60, 100), *b = users_agg(30, 100, 100);
    CHECK_EQ(kpi_agg_merge(a, b), 0);
    CHECK(!a->uv.hll);
    CHECK_EQ(kpi_distinct_count(&a->uv), 100);
    CHECK_EQ(kpi_distinct_count(&a->purchasers), 100);
    CHECK_EQ(a->funnel[3], 130);
    kpi_agg_free(b);
    /* ... one more id: past the cap, a sketch */
    b = users_agg(99, 101, 100);
    CHECK_EQ(kpi_agg_merge(a, b), 0);
    CHECK(a->uv.hll && a->purchasers.hll);
    CHECK_EQ(kpi_distinct_count(&a->uv), 101);
    kpi_agg_free(b);
    /* HLL + exact and exact + HLL give the same registers as one set */
    struct kpi_agg *hl = users_agg(0, 5000, 1000), *ex = users_agg(4000, 4500, 1000);
    struct kpi_agg *all = users_agg(0, 5000, 1000);
    CHECK(hl->uv.hll && !ex->uv.hll);
    CHECK_EQ(kpi_agg_merge(hl, ex), 0);
    CHECK(memcmp(hl->uv.reg, all->uv.reg, KPI_HLL_REGISTERS) == 0);
    struct kpi_agg *ex2 = users_agg(4000, 4500, 1000);
    CHECK_EQ(kpi_agg_merge(ex2, all), 0);
    CHECK(ex2->uv.hll);
    CHECK(memcmp(ex2->uv.reg, all->uv.reg, KPI_HLL_REGISTERS) == 0);
    /* HLL + HLL: registers are maxima; the union estimate is close */
    struct kpi_agg *h1 = users_agg(0, 30000, 10), *h2 = users_agg(20000, 50000, 10);
    CHECK_EQ(kpi_agg_merge(h1, h2), 0);
    int64_t est = kpi_distinct_count(&h1->uv);
    CHECK(est > 50000 * 0.975 && est < 50000 * 1.025);
    for (size_t i = 0; i < KPI_HLL_REGISTERS; i++)
        CHECK_EQ(h1->uv.reg[i], h2->uv.reg[i] > h1->uv.reg[i] ? h2->uv.reg[i] : h1->uv.reg[i]);
    /* windows that differ do not merge */
    struct kpi_agg *other = kpi_agg_new("1m", 60000, 120000, 10);
    struct kpi_agg *other2 = kpi_agg_new("1h", 0, 3600000, 10);
    CHECK(other && other2);
    CHECK_EQ(kpi_agg_merge(h1, other), -1);
    CHECK_EQ(kpi_agg_merge(h1, other2), -1);
    CHECK_EQ(kpi_agg_merge(h1, h1), -1);
    kpi_agg_free(other);
    kpi_agg_free(other2);
    kpi_agg_free(a);
    kpi_agg_free(hl);
    kpi_agg_free(ex);
    kpi_agg_free(ex2);
    kpi_agg_free(all);
    kpi_agg_free(h1);
    kpi_agg_free(h2);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_merge_counters_and_currency)
{
    struct kpi_agg *a = small_agg(), *b = small_agg();
    CHECK_EQ(kpi_agg_merge(a, b), 0);
    CHECK_EQ(a->gmv, 3002);
    CHECK_EQ(a->orders, 4);
    CHECK_EQ(a->paid_revenue, 2000);
    CHECK_EQ(a->refunds, 400);
    CHECK_EQ(a->pv, 8);
    CHECK_EQ(a->late_events, 2);
    CHECK_EQ(a->funnel[0], 4);
    CHECK_EQ(a->funnel[3], 2);
    CHECK_EQ(find(a, "B")->units, 8);
    CHECK_EQ(find(a, "B")->views, 4);
    CHECK_EQ(kpi_distinct_count(&a->uv), 3);
    CHECK(strcmp(a->currency, "EUR") == 0);
    struct kpi_agg *e = kpi_agg_new("1m", START, END, 100);
    CHECK_EQ(kpi_agg_merge(e, a), 0); /* "" + EUR = EUR */
    CHECK(strcmp(e->currency, "EUR") == 0);
    struct kpi_agg *z = kpi_agg_new("1m", START, END, 100);
    CHECK_EQ(kpi_agg_merge(a, z), 0); /* EUR + "" = EUR */
    CHECK(strcmp(a->currency, "EUR") == 0);
    add_order(z, "u", 5, "GBP", "A", 1, NULL, 0);
    CHECK_EQ(kpi_agg_merge(a, z), 0); /* EUR + GBP = mixed */
    CHECK(strcmp(a->currency, "mixed") == 0);
    kpi_agg_free(a);
    kpi_agg_free(b);
    kpi_agg_free(e);
    kpi_agg_free(z);
}

static void check_round_trip(const struct kpi_agg *a)
{
    struct jbuf x, y, jx, jy;
    jbuf_init(&x);
    jbuf_init(&y);
    jbuf_init(&jx);
    jbuf_init(&jy);
    enc(a, &x);
    struct kpi_agg *d = dec(x.p, x.len, a->uv_exact_cap);
    CHECK(d);
    CHECK_EQ(d->uv.hll, a->uv.hll);
    enc(d, &y);
    CHECK(same_bytes(&x, &y));
    js(a, 1, &jx);
    js(d, 1, &jy);
    CHECK(same_bytes(&jx, &jy));
    /* a decoded aggregate keeps counting */
    CHECK_EQ(kpi_agg_merge(d, a), 0);
    kpi_agg_free(d);
    jbuf_free(&x);
    jbuf_free(&y);
    jbuf_free(&jx);
    jbuf_free(&jy);
}

TEST(kpi_encode_decode_round_trip)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *a = small_agg();
    check_round_trip(a);
    kpi_agg_free(a);
    a = kpi_agg_new("1d", -86400000, 0, 100); /* negative start */
    CHECK(a);
    check_round_trip(a);
    for (unsigned i = 0; i < 3000; i++)
        add_click(a, i, 80);
    CHECK(!a->uv.hll);
    check_round_trip(a);
    for (unsigned i = 0; i < 3000; i++)
        add_click(a, i, 2000);
    CHECK(a->uv.hll);
    check_round_trip(a);
    kpi_agg_free(a);
    /* the same set built in another order encodes the same */
    struct kpi_agg *p = users_agg(0, 500, 1000), *q = kpi_agg_new("1m", 0, 60000, 1000);
    char id[32];
    for (int u = 499; u >= 0; u--) {
        snprintf(id, sizeof id, "user-%d", u);
        add(q, SHOP_EV_PURCHASE, id, NULL, -1, KPI_STEP_PURCHASE);
    }
    struct jbuf x, y;
    jbuf_init(&x);
    jbuf_init(&y);
    enc(p, &x);
    enc(q, &y);
    CHECK(same_bytes(&x, &y));
    /* decoding with a smaller cap than the set needs fails */
    CHECK(dec(x.p, x.len, 499) == NULL);
    struct kpi_agg *d = dec(x.p, x.len, 500);
    CHECK(d);
    kpi_agg_free(d);
    jbuf_free(&x);
    jbuf_free(&y);
    kpi_agg_free(p);
    kpi_agg_free(q);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* A hand-made encoding: header fields, then the rest as given. */
struct henc {
    uint8_t b[70000];
    size_t n;
};

static void h_u8(struct henc *h, uint8_t v)
{
    h->b[h->n++] = v;
}
static void h_uv(struct henc *h, uint64_t v)
{
    h->n += varint_put_u64(h->b + h->n, v);
}
static void h_zz(struct henc *h, int64_t v)
{
    h->n += varint_put_zz64(h->b + h->n, v);
}
static void h_str(struct henc *h, const char *s)
{
    h_uv(h, strlen(s));
    memcpy(h->b + h->n, s, strlen(s));
    h->n += strlen(s);
}
static void h_u64(struct henc *h, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        h->b[h->n++] = (uint8_t)(v >> (8 * i));
}
/* version, window, start, end, 10 counters (all v), currency */
static void h_head(struct henc *h, const char *window, int64_t v, const char *currency)
{
    h->n = 0;
    h_u8(h, 1);
    h_str(h, window);
    h_zz(h, 60000);
    h_zz(h, 120000);
    for (int i = 0; i < 10; i++)
        h_zz(h, v);
    h_str(h, currency);
}

TEST(kpi_decode_hand_made)
{
    size_t base = alloc_live_bytes();
    static struct henc h;
    /* a minimal valid one: empty sets, no products */
    h_head(&h, "1m", 0, "");
    h_u8(&h, 0), h_uv(&h, 0), h_u8(&h, 0), h_uv(&h, 0), h_uv(&h, 0);
    struct kpi_agg *a = dec(h.b, h.n, 10);
    CHECK(a);
    kpi_agg_free(a);
    /* a trailing byte */
    h.b[h.n++] = 0;
    CHECK(dec(h.b, h.n, 10) == NULL);
    /* an exact set holding the hash 0 (has_zero), then adds and merges */
    h_head(&h, "1m", 1, "GBP");
    h_u8(&h, 0), h_uv(&h, 3), h_u64(&h, 0), h_u64(&h, 5), h_u64(&h, UINT64_MAX);
    h_u8(&h, 0), h_uv(&h, 1), h_u64(&h, 0);
    h_uv(&h, 1), h_str(&h, "caf\xc3\xa9"), h_zz(&h, 0), h_zz(&h, 2);
    a = dec(h.b, h.n, 10);
    CHECK(a);
    CHECK(a->uv.has_zero && a->uv.n == 3 && a->purchasers.has_zero);
    CHECK_EQ(kpi_distinct_count(&a->uv), 3);
    CHECK_EQ(find(a, "caf\xc3\xa9")->units, 2);
    struct jbuf x;
    jbuf_init(&x);
    enc(a, &x);
    CHECK(x.len == h.n && memcmp(x.p, h.b, h.n) == 0);
    struct kpi_agg *b = dec(h.b, h.n, 10);
    CHECK_EQ(kpi_agg_merge(a, b), 0);
    CHECK_EQ(kpi_distinct_count(&a->uv), 3);
    CHECK(!a->uv.hll);
    kpi_agg_free(b);
    b = dec(h.b, h.n, 3); /* the merge into a set with cap 3 stays exact */
    CHECK(b);
    CHECK_EQ(kpi_agg_merge(b, a), 0);
    CHECK(!b->uv.hll);
    add(b, SHOP_EV_SEARCH, "someone", NULL, -1, KPI_STEP_NONE); /* the 4th: a sketch */
    CHECK(b->uv.hll);
    /* hashes 0 and 5 share register 0 (their top 14 bits), so the sketch
     * sees three registers set */
    CHECK_EQ(b->uv.reg[0], 51);
    CHECK_EQ(b->uv.reg[KPI_HLL_REGISTERS - 1], 1);
    CHECK_EQ(kpi_distinct_count(&b->uv), 3);
    kpi_agg_free(b);
    kpi_agg_free(a);
    jbuf_free(&x);

    /* everything below must be rejected */
    struct {
        const char *what;
        int kind;
    } bad[] = {
        {"version 2", 0},          {"window 2m", 1},         {"window 1mm", 2},
        {"negative gmv", 3},       {"currency too long", 4}, {"currency with NUL", 5},
        {"n above the cap", 6},    {"n past the bytes", 7},  {"hashes unsorted", 8},
        {"hash repeated", 9},      {"set kind 2", 10},       {"register 52", 11},
        {"registers short", 12},   {"products past bytes", 13}, {"product repeated", 14},
        {"products unsorted", 15}, {"product all zero", 16}, {"id not UTF-8", 17},
        {"id with NUL", 18},       {"over-long varint", 19}, {"negative units", 20},
        {"surrogate in id", 21},   {"11-byte varint", 22},   {"varint bits past 64", 23},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int k = bad[i].kind;
        h_head(&h, k == 1 ? "2m" : k == 2 ? "1mm" : "1h", k == 3 ? -1 : 0,
               k == 4 ? "ABCDEFGHIJKLMNOP" : "EUR");
        if (k == 0)
            h.b[0] = 2;
        if (k == 5)
            h.b[h.n - 1] = 0;
        if (k == 19) { /* start written as 0x80 0x00 */
            h.n = 0;
            h_u8(&h, 1), h_str(&h, "1h"), h_u8(&h, 0x80), h_u8(&h, 0);
            h_zz(&h, 1);
            for (int j = 0; j < 10; j++)
                h_zz(&h, 0);
            h_str(&h, "");
        }
        if (k == 22 || k == 23) { /* start as 11 or 10 bytes with bits past 64 */
            h.n = 0;
            h_u8(&h, 1), h_str(&h, "1h");
            for (int j = 0; j < 9; j++)
                h_u8(&h, 0xff);
            h_u8(&h, k == 22 ? 0x81 : 0x02);
            if (k == 22)
                h_u8(&h, 0);
            h_zz(&h, 1);
            for (int j = 0; j < 10; j++)
                h_zz(&h, 0);
            h_str(&h, "");
        }
        /* uv */
        if (k == 6)
            h_u8(&h, 0), h_uv(&h, 11);
        else if (k == 7)
            h_u8(&h, 0), h_uv(&h, 2), h_u64(&h, 1);
        else if (k == 8)
            h_u8(&h, 0), h_uv(&h, 2), h_u64(&h, 9), h_u64(&h, 3);
        else if (k == 9)
            h_u8(&h, 0), h_uv(&h, 2), h_u64(&h, 9), h_u64(&h, 9);
        else if (k == 10)
            h_u8(&h, 2);
        else if (k == 11 || k == 12) {
            h_u8(&h, 1);
            for (size_t r = 0; r < KPI_HLL_REGISTERS - (k == 12); r++)
                h_u8(&h, r == 77 && k == 11 ? 52 : 51);
        } else
            h_u8(&h, 0), h_uv(&h, 0);
        if (k == 6 || k == 7 || k == 12) {
            CHECK(dec(h.b, h.n, 10) == NULL);
            continue;
        }
        if (k != 10 && k != 11)
            h_u8(&h, 0), h_uv(&h, 0); /* purchasers */
        /* products */
        if (k == 13)
            h_uv(&h, 5), h_str(&h, "a"), h_zz(&h, 1), h_zz(&h, 1);
        else if (k == 14)
            h_uv(&h, 2), h_str(&h, "a"), h_zz(&h, 1), h_zz(&h, 1), h_str(&h, "a"), h_zz(&h, 1),
                h_zz(&h, 1);
        else if (k == 15)
            h_uv(&h, 2), h_str(&h, "b"), h_zz(&h, 1), h_zz(&h, 1), h_str(&h, "a"), h_zz(&h, 1),
                h_zz(&h, 1);
        else if (k == 16)
            h_uv(&h, 1), h_str(&h, "a"), h_zz(&h, 0), h_zz(&h, 0);
        else if (k == 17)
            h_uv(&h, 1), h_str(&h, "\xc3("), h_zz(&h, 1), h_zz(&h, 0);
        else if (k == 18)
            h_uv(&h, 1), h_uv(&h, 3), h_u8(&h, 'a'), h_u8(&h, 0), h_u8(&h, 'b'), h_zz(&h, 1),
                h_zz(&h, 0);
        else if (k == 20)
            h_uv(&h, 1), h_str(&h, "a"), h_zz(&h, 1), h_zz(&h, -1);
        else if (k == 21)
            h_uv(&h, 1), h_str(&h, "\xed\xa0\x80"), h_zz(&h, 1), h_zz(&h, 0);
        else
            h_uv(&h, 0);
        if (dec(h.b, h.n, 10) != NULL)
            fprintf(stderr, "accepted: %s\n", bad[i].what);
        CHECK(dec(h.b, h.n, 10) == NULL);
    }
    /* and the same frame as the valid cases, sanity: sorted products pass */
    h_head(&h, "1h", 0, "EUR");
    h_u8(&h, 0), h_uv(&h, 0), h_u8(&h, 0), h_uv(&h, 0);
    h_uv(&h, 3), h_str(&h, "a"), h_zz(&h, 1), h_zz(&h, 1), h_str(&h, "ab"), h_zz(&h, 0),
        h_zz(&h, 1), h_str(&h, "b"), h_zz(&h, 1), h_zz(&h, 0);
    a = dec(h.b, h.n, 10);
    CHECK(a);
    CHECK_EQ(a->nproducts, 3);
    kpi_agg_free(a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_decode_truncations_and_corruption)
{
    size_t base = alloc_live_bytes();
    struct kpi_agg *ex = small_agg();
    struct kpi_agg *hl = users_agg(0, 300, 100);
    add_order(hl, "u1", 1000, "EUR", "A", 2, "B", 1);
    struct jbuf e, r, j;
    jbuf_init(&e);
    jbuf_init(&r);
    jbuf_init(&j);
    uint64_t rng = 88172645463325252ull;
    for (int which = 0; which < 2; which++) {
        enc(which ? hl : ex, &e);
        /* every strict prefix is invalid */
        for (size_t n = 0; n < e.len; n++)
            CHECK(dec(e.p, n, 100) == NULL);
        /* random corruption: whatever decodes is canonical */
        uint8_t *buf = malloc(e.len + 8);
        CHECK(buf);
        int accepted = 0;
        for (int iter = 0; iter < 20000; iter++) {
            size_t n = e.len;
            memcpy(buf, e.p, n);
            int edits = 1 + (int)(rng % 4);
            for (int k = 0; k < edits; k++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                size_t pos = (size_t)(rng >> 8) % n;
                /* corrupt the header and the tail more often than registers */
                if (which && (rng & 1))
                    pos = (rng >> 20) % 64 < 32 ? (rng >> 30) % 40 : n - 1 - (rng >> 30) % 40;
                switch ((rng >> 3) & 3) {
                case 0:
                    buf[pos] ^= (uint8_t)(1u << ((rng >> 40) & 7));
                    break;
                case 1:
                    buf[pos] = (uint8_t)(rng >> 48);
                    break;
                case 2:
                    if (n > 1)
                        n--; /* drop the last byte */
                    break;
                default:
                    buf[n++ % (e.len + 8)] = (uint8_t)(rng >> 32); /* append */
                    if (n > e.len + 8)
                        n = e.len + 8;
                    break;
                }
            }
            struct kpi_agg *d = dec(buf, n, 100);
            if (d) {
                accepted++;
                enc(d, &r);
                CHECK(r.len == n && memcmp(r.p, buf, n) == 0);
                js(d, 0, &j);
                kpi_agg_free(d);
            }
        }
        fprintf(stderr, "  %s: %d of 20000 corruptions still valid\n", which ? "hll" : "exact",
                accepted);
        free(buf);
    }
    jbuf_free(&e);
    jbuf_free(&r);
    jbuf_free(&j);
    kpi_agg_free(ex);
    kpi_agg_free(hl);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* Everything the module does, from scratch; returns 0, or -1 at the first
 * allocation that failed (having freed what it made). */
static int scenario(void)
{
    int rc = -1;
    struct kpi_agg *a = kpi_agg_new("1m", 0, 60000, 40), *b = kpi_agg_new("1m", 0, 60000, 40);
    struct kpi_agg *d = NULL;
    struct jbuf out;
    jbuf_init(&out);
    if (!a || !b)
        goto done;
    char uid[32], pid[32];
    for (int i = 0; i < 120; i++) {
        snprintf(uid, sizeof uid, "user-%d", i % (i < 60 ? 30 : 90));
        snprintf(pid, sizeof pid, "prod-%d", i % 23);
        struct shop_item items[1] = {{shop_str_c(pid), 1, 5}};
        struct shop_event ev = mk(i % 3 ? SHOP_EV_PURCHASE : SHOP_EV_PRODUCT_VIEW, uid, pid, -1);
        if (i % 7 == 0) {
            ev.type = SHOP_EV_ORDER_CREATED;
            ev.items = items;
            ev.nitems = 1;
            ev.amount = 5;
            ev.currency = shop_str_c("EUR");
        }
        if (kpi_agg_add(i % 2 ? a : b, &ev, KPI_STEP_NONE) < 0)
            goto done;
    }
    if (kpi_agg_encode(b, &out) < 0)
        goto done;
    d = kpi_agg_decode(out.p, out.len, 40);
    if (!d)
        goto done;
    if (kpi_agg_merge(a, d) < 0)
        goto done;
    jbuf_reset(&out);
    if (kpi_agg_write_json(a, 1, &out) < 0 || kpi_agg_encode(a, &out) < 0)
        goto done;
    rc = 0;
done:
    kpi_agg_free(a);
    kpi_agg_free(b);
    kpi_agg_free(d);
    jbuf_free(&out);
    return rc;
}

TEST(kpi_allocation_failure)
{
    size_t base = alloc_live_bytes();
    CHECK_EQ(scenario(), 0);
    CHECK_EQ(alloc_live_bytes(), base);
    int failures = 0;
    for (long n = 0;; n++) {
        alloc_fail_after(n);
        int rc = scenario();
        alloc_fail_after(-1);
        CHECK_EQ(alloc_live_bytes(), base);
        if (rc == 0)
            break;
        failures++;
        CHECK(n < 100000);
    }
    CHECK(failures > 20);
    /* a failed encode leaves the buffer as it was */
    struct kpi_agg *a = users_agg(0, 30, 100);
    struct jbuf out;
    jbuf_init(&out);
    jbuf_raw(&out, "x", 1);
    alloc_fail_after(0);
    int rc = kpi_agg_encode(a, &out);
    alloc_fail_after(-1);
    CHECK_EQ(rc, -1);
    CHECK(out.len == 1 && out.p[0] == 'x' && !out.oom);
    jbuf_free(&out);
    kpi_agg_free(a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kpi_window_key_format)
{
    char buf[32];
    CHECK_EQ(kpi_window_key("1m", 1700000040000LL, buf, sizeof buf), 16);
    CHECK(strcmp(buf, "1m@1700000040000") == 0);
    CHECK_EQ(kpi_window_key("1d", 0, buf, sizeof buf), 4);
    CHECK(strcmp(buf, "1d@0") == 0);
    CHECK_EQ(kpi_window_key("1h", -3600000, buf, sizeof buf), 11);
    CHECK(strcmp(buf, "1h@-3600000") == 0);
    CHECK_EQ(kpi_window_key("1m", 1700000040000LL, buf, 5), 4);
    CHECK(strcmp(buf, "1m@1") == 0);
    CHECK_EQ(kpi_window_key("1m", 1, buf, 0), 0);
}
