/* fuzz_order_book.c: libFuzzer harness for the stored form of an order book
 * (order_book_decode in shop/order_state.c, format in order_state.h).  The
 * input is a changelog value.  Decoding must never crash, leak or read out of
 * bounds (the input is copied into an exactly-sized heap block).  When it
 * decodes, the book is folded with the default rules, its shop.order-state
 * JSON and SLA verdict are computed, and it is encoded; that encoding must
 * decode again, fold to the same JSON, and re-encode to identical bytes.
 *
 * Build and run: make build/fuzz/fuzz_order_book, then
 *   build/fuzz/fuzz_order_book -max_total_time=60 build/fuzz/corpus/fuzz_order_book
 * (seeds in tests/fuzz/seeds/fuzz_order_book). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/order_state.h"

static const struct order_rules rules = {ORDER_DEFAULT_RETURN_WINDOW_MS, ORDER_DEFAULT_SHIP_SLA_MS,
                                         1};

static void die_if(int cond)
{
    if (cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t base = alloc_live_bytes();
    uint8_t *in = malloc(size ? size : 1);
    struct order_book b, b2;
    struct jbuf j1, j2, e1, e2;

    if (!in)
        return 0;
    memcpy(in, data, size);
    order_book_init(&b);
    order_book_init(&b2);
    jbuf_init(&j1);
    jbuf_init(&j2);
    jbuf_init(&e1);
    jbuf_init(&e2);
    if (order_book_decode(&b, in, size) == 0) {
        order_book_fold(&b, &rules);
        die_if(b.accepted > b.nev);
        die_if(order_book_write_json(&b, &j1) != 0);
        (void)order_book_sla_breached(&b, &rules, INT64_MAX);
        die_if(order_book_encode(&b, &e1) != 0);
        die_if(order_book_decode(&b2, e1.p, e1.len) != 0);
        die_if(order_book_encode(&b2, &e2) != 0);
        die_if(e1.len != e2.len || memcmp(e1.p, e2.p, e1.len) != 0);
        order_book_fold(&b2, &rules);
        die_if(order_book_write_json(&b2, &j2) != 0);
        die_if(j1.len != j2.len || memcmp(j1.p, j2.p, j1.len) != 0);
    } else {
        die_if(b.ev != NULL || b.nev != 0 || b.order_id != NULL);
    }
    order_book_free(&b);
    order_book_free(&b2);
    jbuf_free(&j1);
    jbuf_free(&j2);
    jbuf_free(&e1);
    jbuf_free(&e2);
    die_if(alloc_live_bytes() != base);
    free(in);
    return 0;
}
