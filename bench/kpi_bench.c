/* kpi_bench.c: the per-event cost of the window aggregate (shop/kpi.c) on
 * the analytics processor's hot path.  It adds N simulated click events
 * (default 10,000,000; a user among 10,000, a product among 1,000 with a
 * skew toward low ids, a mix of page views, product views, searches, cart
 * and checkout events and purchases) to a 1m/1h/1d triple of aggregates, as
 * the processor does for each event, and prints ns per event (all three
 * adds).  The events are made before the clock starts.
 *
 * Build and run (from the repository root):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o bin/kpi_bench bench/kpi_bench.c \
 *       src/shop/kpi.c src/shop/event.c src/shop/json.c src/common/alloc.c -lm
 *   bin/kpi_bench [events] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "shop/kpi.h"

#define USERS 10000
#define PRODUCTS 1000
#define DISTINCT_EVENTS (1 << 20)

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    static char users[USERS][16], products[PRODUCTS][16];
    for (int i = 0; i < USERS; i++)
        snprintf(users[i], sizeof users[i], "user-%05d", i);
    for (int i = 0; i < PRODUCTS; i++)
        snprintf(products[i], sizeof products[i], "SKU-%04d", i);
    static const enum shop_event_type mix[20] = {
        SHOP_EV_PAGE_VIEW,    SHOP_EV_PAGE_VIEW,    SHOP_EV_PAGE_VIEW,    SHOP_EV_PAGE_VIEW,
        SHOP_EV_PAGE_VIEW,    SHOP_EV_PRODUCT_VIEW, SHOP_EV_PRODUCT_VIEW, SHOP_EV_PRODUCT_VIEW,
        SHOP_EV_PRODUCT_VIEW, SHOP_EV_PRODUCT_VIEW, SHOP_EV_PRODUCT_VIEW, SHOP_EV_PRODUCT_VIEW,
        SHOP_EV_PRODUCT_VIEW, SHOP_EV_SEARCH,       SHOP_EV_SEARCH,       SHOP_EV_ADD_TO_CART,
        SHOP_EV_ADD_TO_CART,  SHOP_EV_REMOVE_FROM_CART, SHOP_EV_CHECKOUT, SHOP_EV_PURCHASE};
    struct shop_event *evs = malloc(DISTINCT_EVENTS * sizeof *evs);
    enum kpi_step *steps = malloc(DISTINCT_EVENTS * sizeof *steps);
    if (!evs || !steps)
        return 1;
    for (int i = 0; i < DISTINCT_EVENTS; i++) {
        struct shop_event *e = &evs[i];
        shop_event_init(e);
        e->type = mix[next() % 20];
        e->user_id = shop_str_c(users[next() % USERS]);
        /* skew: the cube of a uniform number favours low product ids */
        double u = (double)(next() >> 11) / 9007199254740992.0;
        e->product_id = shop_str_c(products[(int)(u * u * u * PRODUCTS)]);
        steps[i] = e->type == SHOP_EV_PRODUCT_VIEW ? KPI_STEP_PRODUCT_VIEW
                   : e->type == SHOP_EV_ADD_TO_CART ? KPI_STEP_ADD_TO_CART
                   : e->type == SHOP_EV_CHECKOUT    ? KPI_STEP_CHECKOUT
                   : e->type == SHOP_EV_PURCHASE    ? KPI_STEP_PURCHASE
                                                    : KPI_STEP_NONE;
    }
    struct kpi_agg *w[3] = {
        kpi_agg_new("1m", 0, 60000, KPI_DEFAULT_UV_EXACT_CAP),
        kpi_agg_new("1h", 0, 3600000, KPI_DEFAULT_UV_EXACT_CAP),
        kpi_agg_new("1d", 0, 86400000, KPI_DEFAULT_UV_EXACT_CAP),
    };
    /* warm up: the tables grow to the population once */
    for (int i = 0; i < DISTINCT_EVENTS; i++)
        for (int k = 0; k < 3; k++)
            if (kpi_agg_add(w[k], &evs[i], steps[i]) < 0)
                return 1;
    size_t live = alloc_live_bytes();
    double t0 = now();
    for (long i = 0; i < n; i++) {
        size_t j = (size_t)i & (DISTINCT_EVENTS - 1);
        for (int k = 0; k < 3; k++)
            if (kpi_agg_add(w[k], &evs[j], steps[j]) < 0)
                return 1;
    }
    double dt = now() - t0;
    printf("%ld events x 3 windows: %.1f ns/event (%.2f M events/s), uv %lld, products %zu, "
           "allocated during the run: %zd bytes\n",
           n, dt * 1e9 / (double)n, (double)n / dt / 1e6, (long long)kpi_distinct_count(&w[2]->uv),
           w[2]->nproducts, (ssize_t)(alloc_live_bytes() - live));
    for (int k = 0; k < 3; k++)
        kpi_agg_free(w[k]);
    free(evs);
    free(steps);
    return 0;
}
