/* json_bench.c: how fast shop_event_parse turns JSON records into events,
 * against cJSON doing the same work (parse, look up every field the event
 * contract knows, check its type, copy the strings out).
 *
 * The records are generated here: click events of about 200 bytes (page and
 * product views, searches, cart changes, with an unknown member or two as
 * real producers send) and order_created events with three items.  Each
 * parser runs over the same records on one thread for a fixed wall time;
 * the program prints events/s for clicks only and for a 4:1 mix of clicks
 * and orders, and the ratio.  `make bench-json` builds and runs it.
 *
 * Usage: json_bench [seconds per measurement, default 1] */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shop/event.h"

#define NREC 4096

struct corpus {
    char *buf;
    size_t off[NREC], len[NREC];
    size_t n, bytes;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A deterministic generator so every run measures the same records. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static size_t gen_click(char *o, size_t cap, unsigned i)
{
    static const char *types[] = {"product_view", "product_view", "page_view", "add_to_cart", "search"};
    static const char *cats[] = {"apparel/shoes", "home/kitchen", "electronics/audio", "books/fiction"};
    const char *t = types[rnd(5)];
    unsigned u = rnd(100000), s = rnd(1000), p = rnd(5000);
    if (strcmp(t, "search") == 0)
        return (size_t)snprintf(o, cap,
                                "{\"id\":\"ev-%08u-%04x\",\"type\":\"search\",\"ts\":%llu,\"user_id\":\"user-%06u\","
                                "\"session_id\":\"sess-%06u-%03u\",\"query\":\"red running shoes size %u\","
                                "\"page\":\"/search\",\"ua\":\"Mozilla/5.0\"}",
                                i, rnd(65536), 1700000000000ull + i * 37, u, u, s, 36 + rnd(10));
    if (strcmp(t, "page_view") == 0)
        return (size_t)snprintf(o, cap,
                                "{\"id\":\"ev-%08u-%04x\",\"type\":\"page_view\",\"ts\":%llu,\"user_id\":\"user-%06u\","
                                "\"session_id\":\"sess-%06u-%03u\",\"page\":\"/c/%s\",\"referrer\":"
                                "\"https://www.example.com/\",\"ua\":\"Mozilla/5.0\"}",
                                i, rnd(65536), 1700000000000ull + i * 37, u, u, s, cats[rnd(4)]);
    return (size_t)snprintf(o, cap,
                            "{\"id\":\"ev-%08u-%04x\",\"type\":\"%s\",\"ts\":%llu,\"user_id\":\"user-%06u\","
                            "\"session_id\":\"sess-%06u-%03u\",\"product_id\":\"sku-%05u-blue-m\",\"category\":\"%s\","
                            "\"price\":%u,\"page\":\"/p/sku-%05u\"}",
                            i, rnd(65536), t, 1700000000000ull + i * 37, u, u, s, p, cats[rnd(4)], 199 + rnd(50000),
                            p);
}

static size_t gen_order(char *o, size_t cap, unsigned i)
{
    unsigned u = rnd(100000);
    unsigned p1 = rnd(5000), p2 = rnd(5000), p3 = rnd(5000);
    unsigned c1 = 199 + rnd(9000), c2 = 199 + rnd(9000), c3 = 199 + rnd(9000);
    unsigned q1 = 1 + rnd(3), q2 = 1 + rnd(3), q3 = 1 + rnd(3);
    return (size_t)snprintf(o, cap,
                            "{\"id\":\"ev-%08u-%04x\",\"type\":\"order_created\",\"ts\":%llu,\"order_id\":\"ord-%08u\","
                            "\"user_id\":\"user-%06u\",\"items\":[{\"product_id\":\"sku-%05u-blue-m\",\"qty\":%u,"
                            "\"price\":%u},{\"product_id\":\"sku-%05u-red-l\",\"qty\":%u,\"price\":%u},"
                            "{\"product_id\":\"sku-%05u-black-s\",\"qty\":%u,\"price\":%u}],\"amount\":%u,"
                            "\"currency\":\"EUR\"}",
                            i, rnd(65536), 1700000000000ull + i * 37, i, u, p1, q1, c1, p2, q2, c2, p3, q3, c3,
                            q1 * c1 + q2 * c2 + q3 * c3);
}

/* orders_every: 0 for clicks only, else one order per that many records. */
static void build(struct corpus *c, unsigned orders_every)
{
    c->buf = malloc(NREC * 512);
    if (!c->buf)
        exit(1);
    size_t o = 0;
    for (unsigned i = 0; i < NREC; i++) {
        size_t n = orders_every && i % orders_every == 0 ? gen_order(c->buf + o, 512, i)
                                                          : gen_click(c->buf + o, 512, i);
        if (n >= 512)
            exit(1);
        c->off[i] = o;
        c->len[i] = n;
        o += n;
    }
    c->n = NREC;
    c->bytes = o;
}

/* ---- the cJSON path: the same fields, types and copies as event.c ---- */

struct cj_event {
    int type;
    int64_t ts, amount, price;
    size_t nitems;
    struct {
        size_t product_id;
        int64_t qty, price;
    } items[SHOP_MAX_ITEMS];
    size_t str_off[16];
    char strbuf[4096];
    size_t used;
};

static int cj_str(struct cj_event *e, const cJSON *o, const char *name, int slot, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v))
        return required ? -1 : 0;
    if (!cJSON_IsString(v))
        return -1;
    size_t n = strlen(v->valuestring);
    if (e->used + n + 1 > sizeof e->strbuf)
        return -1;
    memcpy(e->strbuf + e->used, v->valuestring, n + 1);
    if (slot >= 0)
        e->str_off[slot] = e->used;
    e->used += n + 1;
    return 0;
}

static int cj_int(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = -1;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int cj_parse(struct cj_event *e, const char *s, size_t n)
{
    static const char *strs[] = {"id",       "order_id", "user_id",        "session_id", "return_id",
                                 "product_id", "category", "query",        "currency",   "payment_method",
                                 "carrier",  "reason"};
    cJSON *root = cJSON_ParseWithLength(s, n);
    int rc = -1;
    if (!root || !cJSON_IsObject(root))
        goto out;
    e->used = 0;
    for (int i = 0; i < 12; i++)
        if (cj_str(e, root, strs[i], i, i == 0) < 0)
            goto out;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(t))
        goto out;
    e->type = shop_event_type_parse(t->valuestring, strlen(t->valuestring));
    if (e->type == SHOP_EV_UNKNOWN)
        goto out;
    if (cj_int(root, "ts", &e->ts) < 0 || e->ts < 0 || cj_int(root, "amount", &e->amount) < 0 ||
        cj_int(root, "price", &e->price) < 0)
        goto out;
    e->nitems = 0;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items"), *it;
    if (items) {
        if (!cJSON_IsArray(items))
            goto out;
        cJSON_ArrayForEach(it, items)
        {
            if (!cJSON_IsObject(it) || e->nitems == SHOP_MAX_ITEMS)
                goto out;
            e->items[e->nitems].product_id = e->used;
            if (cj_str(e, it, "product_id", -1, 1) < 0 || cj_int(it, "qty", &e->items[e->nitems].qty) < 0 ||
                e->items[e->nitems].qty <= 0 || cj_int(it, "price", &e->items[e->nitems].price) < 0)
                goto out;
            e->nitems++;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- measurement ---- */

static volatile int64_t sink; /* keeps the work from being optimised away */

static double run_ours(const struct corpus *c, double secs)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    long long events = 0;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < c->n; i++) {
            if (shop_event_parse(&ev, c->buf + c->off[i], c->len[i], why, sizeof why) != 0) {
                fprintf(stderr, "json_bench: record %zu rejected: %s\n", i, why);
                exit(1);
            }
            sink += ev.ts + (int64_t)ev.nitems;
        }
        events += (long long)c->n;
        t = now();
    } while (t - t0 < secs);
    shop_event_free(&ev);
    return (double)events / (t - t0);
}

static double run_cjson(const struct corpus *c, double secs)
{
    static struct cj_event e;
    long long events = 0;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < c->n; i++) {
            if (cj_parse(&e, c->buf + c->off[i], c->len[i]) != 0) {
                fprintf(stderr, "json_bench: cJSON rejected record %zu\n", i);
                exit(1);
            }
            sink += e.ts + (int64_t)e.nitems;
        }
        events += (long long)c->n;
        t = now();
    } while (t - t0 < secs);
    return (double)events / (t - t0);
}

static void measure(const char *name, const struct corpus *c, double secs)
{
    run_ours(c, secs / 4); /* warm caches and the event's storage */
    run_cjson(c, secs / 4);
    double ours = run_ours(c, secs), cj = run_cjson(c, secs);
    double avg = (double)c->bytes / (double)c->n;
    printf("%-24s %5.0f B/event   shopstream %6.2f M events/s (%4.0f MB/s)   cJSON %6.2f M events/s   "
           "ratio %.2fx\n",
           name, avg, ours / 1e6, ours * avg / 1e6, cj / 1e6, ours / cj);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0)
        secs = 1.0;
    struct corpus clicks, mix, orders;
    build(&clicks, 0);
    build(&mix, 5);
    build(&orders, 1);
    printf("json_bench: %d records per set, %.1f s per measurement, one thread\n", NREC, secs);
    measure("clicks", &clicks, secs);
    measure("mix 4 clicks : 1 order", &mix, secs);
    measure("order_created (3 items)", &orders, secs);
    free(clicks.buf);
    free(mix.buf);
    free(orders.buf);
    return 0;
}
