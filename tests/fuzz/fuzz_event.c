/* fuzz_event.c: libFuzzer harness for the event parser (shop/event.c) and
 * the JSON reader and writer under it (shop/json.c).
 *
 * For every input it checks that
 *   - the JSON reader ends in exactly one of "done" or "failed" and never
 *     uses more scratch than len + 1 bytes;
 *   - an event parses the same way (same result, same fields) into a fresh
 *     struct and into one reused across inputs, so stale storage never leaks
 *     into a result;
 *   - an event that parses is valid JSON, and every view is NUL-terminated;
 *   - write -> parse gives the same fields, and writing again gives the same
 *     bytes (the writer's escaping and the parser agree);
 *   - a rejection always says why, on one line.
 *
 * Build and run: `make fuzz` (all harnesses), or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
 *     tests/fuzz/fuzz_event.c src/shop/event.c src/shop/json.c src/common/alloc.c -lm \
 *     -o /tmp/fuzz_event
 *   mkdir -p /tmp/corpus_event && cp -r tests/fuzz/seeds/fuzz_event/. /tmp/corpus_event
 *   /tmp/fuzz_event -max_total_time=60 /tmp/corpus_event */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shop/event.h"
#include "shop/json.h"

static void die_if(int cond)
{
    if (cond)
        abort();
}

static int sv_eq(struct shop_str a, struct shop_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static void check_view(struct shop_str s, size_t max)
{
    if (s.p)
        die_if(s.p[s.n] != 0 || s.n > max);
}

static int event_eq(const struct shop_event *a, const struct shop_event *b)
{
    if (a->type != b->type || a->ts != b->ts || a->amount != b->amount || a->price != b->price ||
        a->nitems != b->nitems)
        return 0;
    if (!sv_eq(a->id, b->id) || !sv_eq(a->order_id, b->order_id) || !sv_eq(a->user_id, b->user_id) ||
        !sv_eq(a->session_id, b->session_id) || !sv_eq(a->product_id, b->product_id) ||
        !sv_eq(a->category, b->category) || !sv_eq(a->query, b->query) ||
        !sv_eq(a->currency, b->currency) || !sv_eq(a->payment_method, b->payment_method) ||
        !sv_eq(a->carrier, b->carrier) || !sv_eq(a->reason, b->reason) ||
        !sv_eq(a->return_id, b->return_id))
        return 0;
    for (size_t i = 0; i < a->nitems; i++)
        if (!sv_eq(a->items[i].product_id, b->items[i].product_id) || a->items[i].qty != b->items[i].qty ||
            a->items[i].price != b->items[i].price)
            return 0;
    return 1;
}

static void check_event(const struct shop_event *ev)
{
    die_if(ev->type <= SHOP_EV_UNKNOWN || ev->type >= SHOP_EV__COUNT);
    die_if(ev->ts < 0 || ev->amount < -1 || ev->price < -1);
    die_if(!ev->id.p || ev->nitems > SHOP_MAX_ITEMS);
    check_view(ev->id, SHOP_MAX_ID_BYTES);
    check_view(ev->order_id, SHOP_MAX_ID_BYTES);
    check_view(ev->user_id, SHOP_MAX_ID_BYTES);
    check_view(ev->session_id, SHOP_MAX_ID_BYTES);
    check_view(ev->product_id, SHOP_MAX_ID_BYTES);
    check_view(ev->return_id, SHOP_MAX_ID_BYTES);
    check_view(ev->category, SIZE_MAX);
    check_view(ev->query, SIZE_MAX);
    check_view(ev->currency, SIZE_MAX);
    check_view(ev->payment_method, SIZE_MAX);
    check_view(ev->carrier, SIZE_MAX);
    check_view(ev->reason, SIZE_MAX);
    for (size_t i = 0; i < ev->nitems; i++) {
        die_if(!ev->items[i].product_id.p || ev->items[i].qty <= 0 || ev->items[i].price < -1);
        check_view(ev->items[i].product_id, SHOP_MAX_ID_BYTES);
    }
    die_if(!ev->user_id.p); /* every type requires it */
    die_if(!shop_event_key(ev).p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct shop_event reused; /* zero is shop_event_init's state but for -1s */
    static int reused_ready;
    if (!reused_ready) {
        shop_event_init(&reused);
        reused_ready = 1;
    }
    /* A private copy of exactly the input, so ASan sees any overread. */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);

    /* The bare reader. */
    char *scratch = malloc(size + 1);
    if (!scratch) {
        free(in);
        return 0;
    }
    struct json_reader r;
    json_reader_init(&r, in, size, scratch, size + 1);
    struct json_token t;
    int rc;
    while ((rc = json_next(&r, &t)) == 1)
        die_if(r.depth < 0 || r.depth > JSON_MAX_DEPTH);
    die_if(r.scratch_used > size + 1);
    die_if((rc < 0) != (r.failed != 0));
    die_if(rc < 0 && (r.err[0] == 0 || r.err_off > size));
    int json_ok = rc == 0;
    free(scratch);

    /* The event parser, fresh and reused. */
    struct shop_event ev, ev2;
    shop_event_init(&ev);
    shop_event_init(&ev2);
    char why[256], why2[256];
    int rc1 = shop_event_parse(&ev, in, size, why, sizeof why);
    int rc2 = shop_event_parse(&reused, in, size, why2, sizeof why2);
    die_if(rc1 != rc2);
    if (rc1 == 0) {
        die_if(!json_ok);
        check_event(&ev);
        die_if(!event_eq(&ev, &reused));
        struct jbuf w1, w2;
        jbuf_init(&w1);
        jbuf_init(&w2);
        die_if(shop_event_write(&ev, &w1) != 0);
        char *copy = malloc(w1.len);
        die_if(!copy);
        memcpy(copy, w1.p, w1.len);
        die_if(shop_event_parse(&ev2, copy, w1.len, why, sizeof why) != 0);
        die_if(!event_eq(&ev, &ev2));
        die_if(shop_event_write(&ev2, &w2) != 0);
        die_if(w1.len != w2.len || memcmp(w1.p, w2.p, w1.len) != 0);
        free(copy);
        jbuf_free(&w1);
        jbuf_free(&w2);
    } else {
        die_if(strcmp(why, why2) != 0);
        die_if(why[0] == 0 || strchr(why, '\n') != NULL);
        /* invalid JSON is always reported as such (not as a field error):
         * holds only when the JSON fails before the event rules do, so
         * check the converse, which always holds */
        if (strncmp(why, "not valid JSON", 14) == 0)
            die_if(json_ok);
    }
    shop_event_free(&ev);
    shop_event_free(&ev2);
    free(in);
    return 0;
}
