/* test_simulate.c: the traffic generator (shop/simulate.c): the stream is a
 * pure function of seed, start and options; ts never goes backwards; every
 * event survives shop_event_write + shop_event_parse; products are viewed
 * with Zipf skew; the diurnal curve shows in a simulated day; every order's
 * life is consistent (amounts, step order, returns within what was bought);
 * --events and --duration bound the run; memory stays bounded and is all
 * given back; start times parse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/event.h"
#include "shop/json.h"
#include "shop/simulate.h"
#include "test.h"

#define T0 1714521600000LL /* 2024-05-01T00:00:00Z */
#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

static void opts(struct sim_opts *o, uint64_t seed, double rate, int64_t duration_ms)
{
    sim_opts_default(o);
    o->seed = seed;
    o->rate = rate;
    o->start_ms = T0;
    o->duration_ms = duration_ms;
}

static struct sim *new_sim(const struct sim_opts *o)
{
    char err[200];
    struct sim *s = sim_new(o, err, sizeof err);

    if (!s)
        fprintf(stderr, "  sim_new: %s\n", err);
    CHECK(s != NULL);
    return s;
}

/* 64-bit FNV-1a over the JSON of every event, and the number of events. */
static uint64_t stream_hash(const struct sim_opts *o, long long *n)
{
    struct sim *s = new_sim(o);
    struct shop_event ev;
    struct jbuf b;
    uint64_t h = 0xcbf29ce484222325ULL;

    jbuf_init(&b);
    *n = 0;
    while (sim_next(s, &ev)) {
        jbuf_reset(&b);
        CHECK(shop_event_write(&ev, &b) == 0);
        for (size_t i = 0; i < b.len; i++)
            h = (h ^ (unsigned char)b.p[i]) * 0x100000001b3ULL;
        h = (h ^ '\n') * 0x100000001b3ULL;
        (*n)++;
    }
    jbuf_free(&b);
    sim_free(s);
    return h;
}

TEST(sim_same_seed_same_stream)
{
    struct sim_opts o;
    long long n1, n2;
    uint64_t h1, h2;

    opts(&o, 42, 300, 120000);
    o.time_scale = 5000;
    h1 = stream_hash(&o, &n1);
    h2 = stream_hash(&o, &n2);
    CHECK(n1 > 20000);
    CHECK_EQ(n1, n2);
    CHECK(h1 == h2);
}

TEST(sim_different_seed_or_start_differs)
{
    struct sim_opts o;
    long long n1, n2, n3;
    uint64_t h1, h2, h3;

    opts(&o, 1, 200, 60000);
    h1 = stream_hash(&o, &n1);
    o.seed = 2;
    h2 = stream_hash(&o, &n2);
    o.seed = 1;
    o.start_ms += 1;
    h3 = stream_hash(&o, &n3);
    CHECK(n1 > 1000 && n2 > 1000 && n3 > 1000);
    CHECK(h1 != h2);
    CHECK(h1 != h3);
}

/* ts order, bounds, ids, and the write/parse round trip of every event. */
TEST(sim_events_ordered_and_parse)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev, back;
    struct jbuf b;
    char reason[200], want_id[64];
    int64_t last = 0;
    long long n = 0, per_stream[3] = {0, 0, 0};
    struct sim_stats st;

    opts(&o, 7, 400, 5 * 60000);
    o.time_scale = 2000;
    s = new_sim(&o);
    jbuf_init(&b);
    shop_event_init(&back);
    while (sim_next(s, &ev)) {
        n++;
        CHECK(ev.ts >= T0 && ev.ts < T0 + o.duration_ms);
        CHECK(ev.ts >= last);
        last = ev.ts;
        snprintf(want_id, sizeof want_id, "7-%lld", n);
        CHECK(ev.id.p && strcmp(ev.id.p, want_id) == 0);
        CHECK(ev.user_id.p != NULL);
        jbuf_reset(&b);
        CHECK(shop_event_write(&ev, &b) == 0);
        if (shop_event_parse(&back, b.p, b.len, reason, sizeof reason) != 0) {
            fprintf(stderr, "  %.*s\n  rejected: %s\n", (int)b.len, b.p, reason);
            CHECK(0);
        }
        CHECK_EQ(back.type, ev.type);
        CHECK_EQ(back.ts, ev.ts);
        CHECK(back.id.n == ev.id.n && memcmp(back.id.p, ev.id.p, ev.id.n) == 0);
        per_stream[shop_event_stream(ev.type)]++;
        if (shop_event_stream(ev.type) == SHOP_STREAM_CLICKS)
            CHECK(ev.session_id.p != NULL);
        else
            CHECK(ev.order_id.p != NULL);
    }
    sim_get_stats(s, &st);
    CHECK_EQ(st.events, n);
    CHECK_EQ(st.clicks, per_stream[SHOP_STREAM_CLICKS]);
    CHECK_EQ(st.order_events, per_stream[SHOP_STREAM_ORDERS]);
    CHECK_EQ(st.aftersales, per_stream[SHOP_STREAM_AFTERSALES]);
    CHECK(st.clicks > 0 && st.order_events > 0 && st.aftersales > 0);
    shop_event_free(&back);
    jbuf_free(&b);
    sim_free(s);
}

static long long product_number(struct shop_str id)
{
    CHECK(id.p && id.p[0] == 'p');
    return atoll(id.p + 1);
}

TEST(sim_product_views_are_zipf)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    long long *views, top = 0, total = 0;
    int nonzero = 0;

    opts(&o, 3, 1000, 10 * 60000);
    s = new_sim(&o);
    views = calloc((size_t)o.products, sizeof *views);
    CHECK(views);
    while (sim_next(s, &ev))
        if (ev.type == SHOP_EV_PRODUCT_VIEW) {
            long long p = product_number(ev.product_id);

            CHECK(p >= 0 && p < o.products);
            views[p]++;
            total++;
        }
    for (int i = 0; i < o.products; i++) {
        if (views[i] > top)
            top = views[i];
        nonzero += views[i] > 0;
    }
    /* The median by a counting pass: the smallest v with half the products
     * at or below it. */
    long long median = 0;
    for (long long v = 0;; v++) {
        int at_or_below = 0;

        for (int i = 0; i < o.products; i++)
            at_or_below += views[i] <= v;
        if (at_or_below * 2 >= o.products) {
            median = v;
            break;
        }
    }
    fprintf(stderr, "  %lld views, top %lld, median %lld, %d products seen\n", total, top, median,
            nonzero);
    CHECK(total > 50000);
    CHECK(top > 20 * (median > 0 ? median : 1));
    CHECK(top < total / 2); /* skewed, not degenerate */
    CHECK(nonzero > o.products / 2);
    free(views);
    sim_free(s);
}

TEST(sim_diurnal_curve)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    long long by_hour[24] = {0}, total = 0;
    double mean = 0;

    for (int m = 0; m < 24 * 60; m++)
        mean += sim_diurnal(T0 + m * 60000LL);
    mean /= 24 * 60;
    CHECK(mean > 0.98 && mean < 1.02);
    CHECK(sim_diurnal(T0 + 20 * HOUR_MS) > 3 * sim_diurnal(T0 + 4 * HOUR_MS));
    CHECK(sim_diurnal(T0 + 20 * HOUR_MS) == sim_diurnal(T0 + 20 * HOUR_MS + 7 * DAY_MS));

    opts(&o, 5, 4, DAY_MS);
    s = new_sim(&o);
    while (sim_next(s, &ev)) {
        by_hour[(ev.ts - T0) / HOUR_MS]++;
        total++;
    }
    fprintf(stderr, "  %lld events; 04h %lld, 20h %lld\n", total, by_hour[4], by_hour[20]);
    CHECK(by_hour[20] > 2.5 * by_hour[4]);
    CHECK(by_hour[20] > by_hour[10]);
    CHECK(by_hour[10] > by_hour[4]);
    /* The mean over the day is the rate; the orders' later steps (days away)
     * are not in a one-day run, so allow for them. */
    CHECK(total > 0.8 * 4 * 86400 && total < 1.1 * 4 * 86400);
    sim_free(s);
}

/* The emitted rate matches --rate from the first minute (sessions already
 * under way at the start, thanks to the warm-up). */
TEST(sim_rate_from_the_start)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    long long first_minute = 0, total = 0;
    double expect = 0;

    opts(&o, 11, 500, 10 * 60000);
    o.start_ms = T0 + 12 * HOUR_MS;
    for (int sec = 0; sec < 600; sec++)
        expect += 500 * sim_diurnal(o.start_ms + sec * 1000LL);
    s = new_sim(&o);
    while (sim_next(s, &ev)) {
        total++;
        first_minute += ev.ts < o.start_ms + 60000;
    }
    fprintf(stderr, "  %lld events in 10 min (expected ~%.0f), %lld in the first minute\n", total,
            expect, first_minute);
    CHECK(total > 0.85 * expect && total < 1.1 * expect);
    CHECK(first_minute > 0.8 * expect / 10);
    CHECK(sim_events_per_session(s) > 3 && sim_events_per_session(s) < 20);
    sim_free(s);
}

/* What the test remembers of one order. */
struct ord {
    int created, paid, shipped, delivered, cancelled, refunded, requested, decided, received;
    int approved, purchase_seen;
    int64_t amount, paid_amount, return_amount, refund_amount;
    int64_t t_created, t_paid, t_shipped, t_delivered, t_cancelled, t_requested, t_decided,
        t_received, t_refund;
    char user[24], return_id[24];
    int nitems;
    long long item_product[SIM_MAX_CART];
    int64_t item_qty[SIM_MAX_CART], item_price[SIM_MAX_CART];
};

static long long order_number(struct shop_str id)
{
    CHECK(id.p && id.p[0] == 'o');
    return atoll(id.p + 1);
}

static int same(struct shop_str s, const char *c)
{
    return s.p && strcmp(s.p, c) == 0;
}

TEST(sim_order_lifecycle_consistent)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    size_t cap = 1 << 16;
    struct ord *ords = calloc(cap, sizeof *ords);
    long long max_id = 0, n_refund_cancel = 0, n_refund_return = 0, n_rejected = 0,
              n_delivered = 0, n_timeout = 0, n_created = 0;

    CHECK(ords);
    /* Two hours at 60 ev/s; delays divided by 20000, so 20 days take 86 s
     * and every order opened in the first 1h55 completes. */
    opts(&o, 9, 60, 2 * HOUR_MS);
    o.time_scale = 20000;
    s = new_sim(&o);
    while (sim_next(s, &ev)) {
        struct ord *d;
        long long id;

        if (ev.type == SHOP_EV_PURCHASE) {
            id = order_number(ev.order_id);
            CHECK(id > 0 && (size_t)id < cap);
            d = &ords[id];
            CHECK(!d->purchase_seen && !d->created);
            d->purchase_seen = 1;
            snprintf(d->user, sizeof d->user, "%s", ev.user_id.p);
            continue;
        }
        if (shop_event_stream(ev.type) == SHOP_STREAM_CLICKS)
            continue;
        id = order_number(ev.order_id);
        CHECK(id > 0 && (size_t)id < cap);
        if (id > max_id)
            max_id = id;
        d = &ords[id];
        CHECK(same(ev.user_id, d->user));
        if (ev.type != SHOP_EV_ORDER_CREATED)
            CHECK(d->created && ev.ts >= d->t_created);
        switch (ev.type) {
        case SHOP_EV_ORDER_CREATED: {
            int64_t sum = 0;

            CHECK(d->purchase_seen && !d->created);
            CHECK(ev.nitems >= 1 && ev.nitems <= SIM_MAX_CART);
            CHECK(same(ev.currency, "EUR"));
            d->nitems = (int)ev.nitems;
            for (size_t i = 0; i < ev.nitems; i++) {
                CHECK(ev.items[i].qty > 0 && ev.items[i].price > 0);
                d->item_product[i] = product_number(ev.items[i].product_id);
                for (size_t j = 0; j < i; j++)
                    CHECK(d->item_product[j] != d->item_product[i]);
                d->item_qty[i] = ev.items[i].qty;
                d->item_price[i] = ev.items[i].price;
                sum += ev.items[i].qty * ev.items[i].price;
            }
            CHECK_EQ(ev.amount, sum);
            d->amount = sum;
            d->created = 1;
            d->t_created = ev.ts;
            n_created++;
            break;
        }
        case SHOP_EV_ORDER_PAID:
            CHECK(!d->paid && !d->cancelled);
            CHECK_EQ(ev.amount, d->amount);
            CHECK(ev.payment_method.p != NULL);
            d->paid = 1;
            d->paid_amount = ev.amount;
            d->t_paid = ev.ts;
            break;
        case SHOP_EV_ORDER_CANCELLED:
            CHECK(!d->cancelled && !d->shipped);
            if (d->paid) {
                CHECK(same(ev.reason, "customer_request"));
            } else {
                CHECK(same(ev.reason, "payment_timeout"));
                n_timeout++;
            }
            d->cancelled = 1;
            d->t_cancelled = ev.ts;
            break;
        case SHOP_EV_ORDER_SHIPPED:
            CHECK(d->paid && !d->shipped && !d->cancelled && ev.ts >= d->t_paid);
            CHECK(ev.carrier.p != NULL);
            /* 2 to 48 hours, divided by the time scale */
            CHECK(ev.ts - d->t_paid <= 48 * HOUR_MS / 20000 + 1);
            d->shipped = 1;
            d->t_shipped = ev.ts;
            break;
        case SHOP_EV_ORDER_DELIVERED:
            CHECK(d->shipped && !d->delivered && ev.ts > d->t_shipped);
            d->delivered = 1;
            d->t_delivered = ev.ts;
            n_delivered++;
            break;
        case SHOP_EV_RETURN_REQUESTED: {
            int64_t sum = 0;

            CHECK(d->delivered && !d->requested && ev.ts > d->t_delivered);
            CHECK(ev.return_id.p && ev.reason.p);
            CHECK(ev.nitems >= 1 && (int)ev.nitems <= d->nitems);
            for (size_t i = 0; i < ev.nitems; i++) {
                long long p = product_number(ev.items[i].product_id);
                int k;

                for (k = 0; k < d->nitems && d->item_product[k] != p; k++)
                    ;
                CHECK(k < d->nitems); /* bought */
                CHECK(ev.items[i].qty >= 1 && ev.items[i].qty <= d->item_qty[k]);
                sum += ev.items[i].qty * d->item_price[k];
            }
            CHECK_EQ(ev.amount, sum);
            CHECK(sum <= d->paid_amount);
            d->return_amount = sum;
            snprintf(d->return_id, sizeof d->return_id, "%s", ev.return_id.p);
            d->requested = 1;
            d->t_requested = ev.ts;
            break;
        }
        case SHOP_EV_RETURN_APPROVED:
        case SHOP_EV_RETURN_REJECTED:
            CHECK(d->requested && !d->decided && ev.ts >= d->t_requested);
            CHECK(same(ev.return_id, d->return_id));
            d->decided = 1;
            d->approved = ev.type == SHOP_EV_RETURN_APPROVED;
            n_rejected += !d->approved;
            d->t_decided = ev.ts;
            break;
        case SHOP_EV_RETURN_RECEIVED:
            CHECK(d->approved && !d->received && ev.ts > d->t_decided);
            CHECK(same(ev.return_id, d->return_id));
            d->received = 1;
            d->t_received = ev.ts;
            break;
        case SHOP_EV_REFUND_ISSUED:
            CHECK(!d->refunded && d->paid);
            CHECK(ev.amount > 0 && ev.amount <= d->paid_amount);
            if (ev.return_id.p) {
                CHECK(d->received && ev.ts >= d->t_received);
                CHECK(same(ev.return_id, d->return_id));
                CHECK_EQ(ev.amount, d->return_amount);
                n_refund_return++;
            } else {
                CHECK(d->cancelled && ev.ts >= d->t_cancelled);
                CHECK_EQ(ev.amount, d->paid_amount);
                n_refund_cancel++;
            }
            d->refunded = 1;
            d->refund_amount = ev.amount;
            d->t_refund = ev.ts;
            break;
        default:
            CHECK(0);
        }
    }
    /* Orders opened early enough have finished their life. */
    for (long long id = 1; id <= max_id; id++) {
        struct ord *d = &ords[id];

        if (!d->created || d->t_created > T0 + 110 * 60000LL)
            continue;
        if (!d->paid)
            CHECK(d->cancelled);
        else if (d->cancelled)
            CHECK(d->refunded);
        else
            CHECK(d->delivered);
        if (d->requested)
            CHECK(d->decided && (!d->approved || d->refunded));
    }
    fprintf(stderr,
            "  %lld orders, %lld delivered, %lld payment timeouts, %lld cancel refunds, "
            "%lld return refunds, %lld rejected\n",
            n_created, n_delivered, n_timeout, n_refund_cancel, n_refund_return, n_rejected);
    CHECK(n_created > 1000);
    CHECK(n_timeout > 0.02 * n_created && n_timeout < 0.09 * n_created);
    CHECK(n_refund_cancel > 0);
    CHECK(n_refund_return > 0.04 * n_delivered && n_refund_return < 0.14 * n_delivered);
    CHECK(n_rejected > 0);
    free(ords);
    sim_free(s);
}

TEST(sim_funnel_shape)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    /* per session: bit 0 landing seen, 1 add, 2 checkout, 3 purchase,
     * 4 seen at all */
    size_t cap = 1 << 20;
    unsigned char *flags = calloc(cap, 1);
    int64_t from;
    long long sessions = 0, add = 0, checkout = 0, purchase = 0;

    CHECK(flags);
    opts(&o, 13, 300, 30 * 60000);
    s = new_sim(&o);
    /* Sessions begun before the start (the warm-up) show up mid-way, at the
     * latest one maximal think time (10 min) after it: count only those
     * whose landing page came later. */
    from = o.start_ms + 10 * 60000 + 1000;
    while (sim_next(s, &ev)) {
        long long id;

        if (shop_event_stream(ev.type) != SHOP_STREAM_CLICKS)
            continue;
        CHECK(ev.session_id.p && ev.session_id.p[0] == 's');
        id = atoll(ev.session_id.p + 1);
        CHECK(id > 0 && (size_t)id < cap);
        if (!flags[id])
            flags[id] = ev.type == SHOP_EV_PAGE_VIEW && ev.ts >= from ? 1 | 16 : 16;
        if (!(flags[id] & 1))
            continue;
        if (ev.type == SHOP_EV_ADD_TO_CART)
            flags[id] |= 2;
        if (ev.type == SHOP_EV_CHECKOUT)
            flags[id] |= 4;
        if (ev.type == SHOP_EV_PURCHASE)
            flags[id] |= 8;
    }
    for (size_t i = 0; i < cap; i++) {
        if (!(flags[i] & 1))
            continue;
        sessions++;
        add += (flags[i] & 2) != 0;
        checkout += (flags[i] & 4) != 0;
        purchase += (flags[i] & 8) != 0;
        if (flags[i] & 8)
            CHECK(flags[i] & 4);
        if (flags[i] & 4)
            CHECK(flags[i] & 2);
    }
    fprintf(stderr, "  %lld sessions: %.1f%% add, %.1f%% checkout, %.1f%% purchase\n", sessions,
            100.0 * add / sessions, 100.0 * checkout / sessions, 100.0 * purchase / sessions);
    CHECK(sessions > 5000);
    CHECK(add > 0.25 * sessions && add < 0.45 * sessions);
    CHECK(checkout > 0.35 * add && checkout < 0.65 * add);
    CHECK(purchase > 0.75 * checkout && purchase < checkout);
    free(flags);
    sim_free(s);
}

TEST(sim_event_limit_and_duration)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    struct sim_stats st;
    long long n = 0;
    int64_t last = 0;

    /* --events without an end */
    opts(&o, 1, 100, -1);
    o.max_events = 1234;
    s = new_sim(&o);
    while (sim_next(s, &ev))
        n++;
    CHECK_EQ(n, 1234);
    CHECK(sim_next(s, &ev) == 0); /* stays over */
    sim_get_stats(s, &st);
    CHECK_EQ(st.events, 1234);
    sim_free(s);

    /* the duration ends the run first */
    opts(&o, 1, 100, 10000);
    o.max_events = 1000000;
    s = new_sim(&o);
    n = 0;
    while (sim_next(s, &ev)) {
        CHECK(ev.ts < T0 + 10000);
        last = ev.ts;
        n++;
    }
    CHECK(n > 200 && n < 2000);
    CHECK(last > T0 + 9000);
    sim_free(s);

    /* a duration too short for any session */
    opts(&o, 1, 0.001, 1);
    s = new_sim(&o);
    CHECK(sim_next(s, &ev) == 0);
    sim_free(s);
}

TEST(sim_memory_bounded_and_freed)
{
    struct sim_opts o;
    struct sim *s;
    struct shop_event ev;
    struct sim_stats st;
    size_t base = alloc_live_bytes(), at_100k = 0, peak = 0;
    long long n = 0;

    /* No end; at this scale an order's whole life takes under 30 s of event
     * time, a session's a few minutes, so the world is in a steady state
     * well before 100k events (50 s). */
    opts(&o, 21, 2000, -1);
    o.time_scale = 100000;
    o.max_events = 600000;
    s = new_sim(&o);
    while (sim_next(s, &ev)) {
        if (++n == 100000)
            at_100k = alloc_live_bytes();
        if (n > 100000 && alloc_live_bytes() > peak)
            peak = alloc_live_bytes();
    }
    sim_get_stats(s, &st);
    fprintf(stderr,
            "  live bytes %zu at 100k events, peak %zu after; %lld sessions, %lld orders live\n",
            at_100k - base, peak - base, st.live_sessions, st.live_orders);
    CHECK(peak < 1.5 * at_100k);
    CHECK(st.live_sessions < 50000 && st.live_orders < 5000);
    sim_free(s);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(sim_rejects_bad_options)
{
    struct sim_opts o;
    char err[200];

    opts(&o, 1, 0, 1000);
    CHECK(sim_new(&o, err, sizeof err) == NULL && err[0]);
    opts(&o, 1, 100, 1000);
    o.users = 0;
    CHECK(sim_new(&o, err, sizeof err) == NULL);
    opts(&o, 1, 100, 1000);
    o.products = SIM_MAX_PRODUCTS + 1;
    CHECK(sim_new(&o, err, sizeof err) == NULL);
    opts(&o, 1, 100, 1000);
    o.time_scale = 0;
    CHECK(sim_new(&o, err, sizeof err) == NULL);
}

TEST(sim_out_of_memory_is_refused)
{
    struct sim_opts o;
    size_t base = alloc_live_bytes();

    /* sim_new allocates five times: the sim, three catalogue arrays and the
     * heap; each failure is refused with nothing left behind. */
    opts(&o, 1, 100, 1000);
    for (long k = 0; k < 5; k++) {
        alloc_fail_after(k);
        CHECK(sim_new(&o, NULL, 0) == NULL);
        alloc_fail_after(-1);
        CHECK_EQ(alloc_live_bytes(), base);
    }
}

TEST(sim_parse_time_formats)
{
    int64_t t;

    CHECK(sim_parse_time("2024-05-01T00:00:00Z", &t) == 0 && t == T0);
    CHECK(sim_parse_time("2024-05-01", &t) == 0 && t == T0);
    CHECK(sim_parse_time("2024-05-01T20:30", &t) == 0 && t == T0 + 20 * HOUR_MS + 30 * 60000);
    CHECK(sim_parse_time("2024-05-01 00:00:01.5", &t) == 0 && t == T0 + 1500);
    CHECK(sim_parse_time("2024-05-01T02:00:00+02:00", &t) == 0 && t == T0);
    CHECK(sim_parse_time("2024-04-30T19:00:00-05", &t) == 0 && t == T0);
    CHECK(sim_parse_time("1714521600000", &t) == 0 && t == T0);
    CHECK(sim_parse_time("1970-01-01T00:00:00Z", &t) == 0 && t == 0);
    CHECK(sim_parse_time("2000-02-29T00:00:00Z", &t) == 0 && t == 951782400000LL);
    CHECK(sim_parse_time("2023-02-29", &t) < 0);
    CHECK(sim_parse_time("2024-13-01", &t) < 0);
    CHECK(sim_parse_time("2024-05-01T24:00", &t) < 0);
    CHECK(sim_parse_time("2024-05-01Tnoon", &t) < 0);
    CHECK(sim_parse_time("yesterday", &t) < 0);
    CHECK(sim_parse_time("", &t) < 0);
    CHECK(sim_parse_time("-5", &t) < 0);
}
