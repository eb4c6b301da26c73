/* test_event.c: parsing, validating and writing events (shop/event.c):
 * a round trip of one event of each of the 17 types, every rejection rule
 * with its reason (table-driven), unknown and repeated members, limits,
 * storage reuse without allocation, and injected allocation failures that
 * must leave nothing leaked.  Inputs are copied into exactly-sized heap
 * blocks so that ASan reports any read past their end. */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/event.h"
#include "test.h"

/* Parses s[0..n) from an exactly-sized copy. */
static int parse_n(struct shop_event *ev, const char *s, size_t n, char *why, size_t why_size)
{
    char *p = malloc(n ? n : 1);
    CHECK(p);
    memcpy(p, s, n);
    int rc = shop_event_parse(ev, p, n, why, why_size);
    free(p);
    return rc;
}

static int parse(struct shop_event *ev, const char *s, char *why)
{
    return parse_n(ev, s, strlen(s), why, 256);
}

static int sv_eq(struct shop_str a, struct shop_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int sv_is(struct shop_str a, const char *s)
{
    return a.p && a.n == strlen(s) && memcmp(a.p, s, a.n) == 0 && a.p[a.n] == 0;
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

/* One event of each type, as a producer might send it (member order and
 * spacing differ from what shop_event_write produces). */
static const struct sample {
    enum shop_event_type type;
    const char *json;
} samples[] = {
    {SHOP_EV_ORDER_CREATED,
     "{\"id\":\"ev-1\",\"type\":\"order_created\",\"ts\":1700000000000,\"order_id\":\"o-1\",\"user_id\":\"u-1\","
     "\"items\":[{\"product_id\":\"p-1\",\"qty\":2,\"price\":1299},{\"price\":0,\"qty\":1,\"product_id\":\"p-2\"}],"
     "\"amount\":2598,\"currency\":\"EUR\"}"},
    {SHOP_EV_ORDER_PAID,
     "{ \"type\" : \"order_paid\", \"id\":\"ev-2\", \"ts\":1700000001000, \"order_id\":\"o-1\", "
     "\"user_id\":\"u-1\", \"amount\":2598, \"payment_method\":\"card\" }"},
    {SHOP_EV_ORDER_SHIPPED,
     "{\"id\":\"ev-3\",\"type\":\"order_shipped\",\"ts\":1700000002000,\"order_id\":\"o-1\",\"user_id\":\"u-1\","
     "\"carrier\":\"DHL\"}"},
    {SHOP_EV_ORDER_DELIVERED,
     "{\"id\":\"ev-4\",\"type\":\"order_delivered\",\"ts\":1700000003000,\"order_id\":\"o-1\",\"user_id\":\"u-1\"}"},
    {SHOP_EV_ORDER_CANCELLED,
     "{\"id\":\"ev-5\",\"type\":\"order_cancelled\",\"ts\":1700000004000,\"order_id\":\"o-2\",\"user_id\":\"u-2\","
     "\"reason\":\"customer changed \\\"mind\\\"\\n(line 2)\"}"},
    {SHOP_EV_PAGE_VIEW,
     "{\"id\":\"ev-6\",\"type\":\"page_view\",\"ts\":1700000005000,\"user_id\":\"u-3\",\"session_id\":\"s-1\","
     "\"page\":\"/home\",\"ua\":{\"os\":\"linux\",\"v\":[1,2.5,null,true]}}"},
    {SHOP_EV_PRODUCT_VIEW,
     "{\"id\":\"ev-7\",\"type\":\"product_view\",\"ts\":1700000006000,\"user_id\":\"u-3\",\"session_id\":\"s-1\","
     "\"product_id\":\"p-1\",\"category\":\"caf\xc3\xa9 \\u2615\",\"price\":1299}"},
    {SHOP_EV_SEARCH,
     "{\"id\":\"ev-8\",\"type\":\"search\",\"ts\":1700000007000,\"user_id\":\"u-3\",\"session_id\":\"s-1\","
     "\"query\":\"red shoes \\ud83d\\udc5f\"}"},
    {SHOP_EV_ADD_TO_CART,
     "{\"id\":\"ev-9\",\"type\":\"add_to_cart\",\"ts\":1700000008000,\"user_id\":\"u-3\",\"session_id\":\"s-1\","
     "\"product_id\":\"p-1\",\"price\":1299,\"category\":\"shoes\"}"},
    {SHOP_EV_REMOVE_FROM_CART,
     "{\"id\":\"ev-10\",\"type\":\"remove_from_cart\",\"ts\":1700000009000,\"user_id\":\"u-3\","
     "\"session_id\":\"s-1\",\"product_id\":\"p-1\"}"},
    {SHOP_EV_CHECKOUT,
     "{\"id\":\"ev-11\",\"type\":\"checkout\",\"ts\":1700000010000,\"user_id\":\"u-3\",\"session_id\":\"s-1\"}"},
    {SHOP_EV_PURCHASE,
     "{\"id\":\"ev-12\",\"type\":\"purchase\",\"ts\":1700000011000,\"user_id\":\"u-3\",\"session_id\":\"s-1\","
     "\"order_id\":\"o-3\"}"},
    {SHOP_EV_RETURN_REQUESTED,
     "{\"id\":\"ev-13\",\"type\":\"return_requested\",\"ts\":1700000012000,\"order_id\":\"o-1\","
     "\"user_id\":\"u-1\",\"return_id\":\"r-1\",\"items\":[{\"product_id\":\"p-1\",\"qty\":1}],"
     "\"reason\":\"too small\"}"},
    {SHOP_EV_RETURN_APPROVED,
     "{\"id\":\"ev-14\",\"type\":\"return_approved\",\"ts\":1700000013000,\"order_id\":\"o-1\","
     "\"user_id\":\"u-1\",\"return_id\":\"r-1\"}"},
    {SHOP_EV_RETURN_REJECTED,
     "{\"id\":\"ev-15\",\"type\":\"return_rejected\",\"ts\":1700000014000,\"order_id\":\"o-1\","
     "\"user_id\":\"u-1\",\"return_id\":\"r-1\",\"reason\":\"worn\"}"},
    {SHOP_EV_RETURN_RECEIVED,
     "{\"id\":\"ev-16\",\"type\":\"return_received\",\"ts\":1700000015000,\"order_id\":\"o-1\","
     "\"user_id\":\"u-1\",\"return_id\":\"r-1\"}"},
    {SHOP_EV_REFUND_ISSUED,
     "{\"id\":\"ev-17\",\"type\":\"refund_issued\",\"ts\":1700000016000,\"order_id\":\"o-1\","
     "\"user_id\":\"u-1\",\"amount\":1299,\"return_id\":\"r-1\"}"},
};

#define NSAMPLES (sizeof samples / sizeof samples[0])

TEST(event_round_trip_every_type)
{
    CHECK_EQ(NSAMPLES, SHOP_EV__COUNT - 1);
    struct shop_event a, b;
    shop_event_init(&a);
    shop_event_init(&b);
    struct jbuf w1, w2;
    jbuf_init(&w1);
    jbuf_init(&w2);
    char why[256];
    for (size_t i = 0; i < NSAMPLES; i++) {
        int rc = parse(&a, samples[i].json, why);
        if (rc)
            fprintf(stderr, "  sample %zu: %s\n", i, why);
        CHECK_EQ(rc, 0);
        CHECK_EQ(a.type, samples[i].type);
        CHECK(a.ts == 1700000000000LL + (int64_t)i * 1000);
        jbuf_reset(&w1);
        CHECK_EQ(shop_event_write(&a, &w1), 0);
        rc = parse_n(&b, w1.p, w1.len, why, sizeof why);
        if (rc)
            fprintf(stderr, "  sample %zu rewritten: %s\n  %s\n", i, why, w1.p);
        CHECK_EQ(rc, 0);
        CHECK(event_eq(&a, &b));
        /* writing is deterministic: the second generation is byte-equal */
        jbuf_reset(&w2);
        CHECK_EQ(shop_event_write(&b, &w2), 0);
        CHECK(w1.len == w2.len && memcmp(w1.p, w2.p, w1.len) == 0);
    }
    shop_event_free(&a);
    shop_event_free(&b);
    jbuf_free(&w1);
    jbuf_free(&w2);
}

TEST(event_fields_of_order_created)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    CHECK_EQ(parse(&ev, samples[0].json, why), 0);
    CHECK(sv_is(ev.id, "ev-1"));
    CHECK(sv_is(ev.order_id, "o-1"));
    CHECK(sv_is(ev.user_id, "u-1"));
    CHECK(sv_is(ev.currency, "EUR"));
    CHECK_EQ(ev.amount, 2598);
    CHECK_EQ(ev.price, -1);
    CHECK(!ev.session_id.p && !ev.product_id.p && !ev.category.p && !ev.query.p && !ev.reason.p);
    CHECK_EQ(ev.nitems, 2);
    CHECK(sv_is(ev.items[0].product_id, "p-1"));
    CHECK_EQ(ev.items[0].qty, 2);
    CHECK_EQ(ev.items[0].price, 1299);
    CHECK(sv_is(ev.items[1].product_id, "p-2"));
    CHECK_EQ(ev.items[1].qty, 1);
    CHECK_EQ(ev.items[1].price, 0);
    CHECK(sv_is(shop_event_key(&ev), "o-1"));
    struct jbuf w;
    jbuf_init(&w);
    CHECK_EQ(shop_event_write(&ev, &w), 0);
    CHECK(strcmp(w.p, "{\"id\":\"ev-1\",\"type\":\"order_created\",\"ts\":1700000000000,\"order_id\":\"o-1\","
                      "\"user_id\":\"u-1\",\"items\":[{\"product_id\":\"p-1\",\"qty\":2,\"price\":1299},"
                      "{\"product_id\":\"p-2\",\"qty\":1,\"price\":0}],\"amount\":2598,\"currency\":\"EUR\"}") == 0);
    jbuf_free(&w);
    shop_event_free(&ev);
}

TEST(event_write_member_order)
{
    /* Every member at once, given in reverse: written in the fixed order. */
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    const char *s = "{\"reason\":\"r\",\"carrier\":\"c\",\"payment_method\":\"pm\",\"currency\":\"GBP\",\"amount\":5,"
                    "\"items\":[{\"product_id\":\"p\",\"qty\":1}],\"query\":\"q\",\"price\":7,\"category\":\"cat\","
                    "\"product_id\":\"p\",\"return_id\":\"ret\",\"session_id\":\"s\",\"user_id\":\"u\","
                    "\"order_id\":\"o\",\"ts\":1,\"type\":\"purchase\",\"id\":\"i\"}";
    CHECK_EQ(parse(&ev, s, why), 0);
    struct jbuf w;
    jbuf_init(&w);
    CHECK_EQ(shop_event_write(&ev, &w), 0);
    CHECK(strcmp(w.p, "{\"id\":\"i\",\"type\":\"purchase\",\"ts\":1,\"order_id\":\"o\",\"user_id\":\"u\","
                      "\"session_id\":\"s\",\"return_id\":\"ret\",\"product_id\":\"p\",\"category\":\"cat\","
                      "\"price\":7,\"query\":\"q\",\"items\":[{\"product_id\":\"p\",\"qty\":1}],\"amount\":5,"
                      "\"currency\":\"GBP\",\"payment_method\":\"pm\",\"carrier\":\"c\",\"reason\":\"r\"}") == 0);
    CHECK(sv_is(shop_event_key(&ev), "u")); /* purchase is a click */
    jbuf_free(&w);
    shop_event_free(&ev);
}

/* Rejected events and the substring their reason must contain. */
#define HDR_ "\"id\":\"e\",\"ts\":1,"
#define ORD_ "\"order_id\":\"o\",\"user_id\":\"u\","
#define CLK_ "\"user_id\":\"u\",\"session_id\":\"s\","
#define ITEM_ "{\"product_id\":\"p\",\"qty\":1,\"price\":1}"
static const struct reject_case {
    const char *json;
    const char *why;
} rejects[] = {
    /* not JSON / not an object */
    {"", "not valid JSON at byte 0: expected a value, found end of input"},
    {"{\"id\":\"e\" \"ts\":1}", "not valid JSON at byte 10: expected ',' or '}', found '\"'"},
    {"{\"id\":\"e\",}", "not valid JSON at byte 10: trailing comma"},
    {"{\"id\":\"e\"", "not valid JSON at byte 9: expected ',' or '}', found end of input"},
    {"{\"id\":\"e\"} x", "not valid JSON at byte 11: expected end of input after the document"},
    {"{\"id\":\"e\"}{}", "not valid JSON at byte 10"},
    {"{\"id\":\"\xc0\xaf\"}", "not valid JSON at byte 7: invalid UTF-8"},
    {"{\"x\":[1,2,}", "not valid JSON at byte 10: expected a value, found '}'"},
    {"{\"x\":{\"y\":[01]}}", "not valid JSON at byte 11: leading zero"},
    {"{\"x\":\"\\ud800\"}", "not valid JSON at byte 6: high surrogate"},
    {"[]", "top level is not an object"},
    {"\"order_created\"", "top level is not an object"},
    {"null", "top level is not an object"},
    /* id, type, ts */
    {"{\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", "missing field id"},
    {"{\"id\":\"e\",\"ts\":1," CLK_ "\"x\":0}", "missing field type"},
    {"{\"id\":\"e\",\"type\":\"checkout\"," CLK_ "\"x\":0}", "missing field ts"},
    {"{\"id\":7,\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", "field id must be a string of 1..256 bytes"},
    {"{\"id\":\"\",\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", "field id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":3}", "field type must be a string"},
    {"{" HDR_ "\"type\":[\"checkout\"]}", "field type must be a string"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":\"1\"," CLK_ "\"x\":0}", "field ts must be an integer >= 0"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":-1," CLK_ "\"x\":0}", "field ts must be an integer >= 0"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":1.5," CLK_ "\"x\":0}", "field ts must be an integer >= 0"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":1e3," CLK_ "\"x\":0}", "field ts must be an integer >= 0"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":9223372036854775808," CLK_ "\"x\":0}",
     "field ts must be an integer >= 0"},
    {"{\"id\":\"e\",\"type\":\"checkout\",\"ts\":true," CLK_ "\"x\":0}", "field ts must be an integer >= 0"},
    {"{" HDR_ "\"type\":\"foo\"}", "unknown type \"foo\""},
    {"{" HDR_ "\"type\":\"\"}", "unknown type \"\""},
    {"{" HDR_ "\"type\":\"Order_Created\"}", "unknown type \"Order_Created\""},
    {"{" HDR_ "\"type\":\"order_created \"}", "unknown type \"order_created \""},
    {"{" HDR_ "\"type\":\"a\\\"b\\nc\"}", "unknown type \"a?b?c\""},
    {"{" HDR_ "\"type\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"}",
     "unknown type \"abcdefghijklmnopqrstuvwxyz012345...\""},
    /* a cut on a UTF-8 boundary: 31 ASCII bytes, then a 2-byte character */
    {"{" HDR_ "\"type\":\"abcdefghijklmnopqrstuvwxyz01234\xc3\xa9xyz\"}",
     "unknown type \"abcdefghijklmnopqrstuvwxyz01234...\""},
    /* required fields, per type */
    {"{" HDR_ "\"type\":\"order_created\",\"user_id\":\"u\",\"items\":[" ITEM_ "],\"amount\":1,\"currency\":\"EUR\"}",
     "missing field order_id"},
    {"{" HDR_ "\"type\":\"order_created\",\"order_id\":\"o\",\"items\":[" ITEM_ "],\"amount\":1,\"currency\":\"EUR\"}",
     "missing field user_id"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"amount\":1,\"currency\":\"EUR\"}", "missing field items"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ "],\"currency\":\"EUR\"}",
     "missing field amount"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ "],\"amount\":1}", "missing field currency"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[],\"amount\":1,\"currency\":\"EUR\"}",
     "field items must hold at least one item"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ ",{\"product_id\":\"p\",\"qty\":1}],"
     "\"amount\":1,\"currency\":\"EUR\"}",
     "missing field price (item 1)"},
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"payment_method\":\"card\"}", "missing field amount"},
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":1}", "missing field payment_method"},
    {"{" HDR_ "\"type\":\"order_shipped\"," ORD_ "\"x\":1}", "missing field carrier"},
    {"{" HDR_ "\"type\":\"order_delivered\",\"user_id\":\"u\"}", "missing field order_id"},
    {"{" HDR_ "\"type\":\"order_cancelled\"," ORD_ "\"x\":1}", "missing field reason"},
    {"{" HDR_ "\"type\":\"page_view\",\"user_id\":\"u\"}", "missing field session_id"},
    {"{" HDR_ "\"type\":\"page_view\",\"session_id\":\"s\"}", "missing field user_id"},
    {"{" HDR_ "\"type\":\"product_view\"," CLK_ "\"x\":1}", "missing field product_id"},
    {"{" HDR_ "\"type\":\"search\"," CLK_ "\"x\":1}", "missing field query"},
    {"{" HDR_ "\"type\":\"add_to_cart\"," CLK_ "\"x\":1}", "missing field product_id"},
    {"{" HDR_ "\"type\":\"remove_from_cart\"," CLK_ "\"x\":1}", "missing field product_id"},
    {"{" HDR_ "\"type\":\"checkout\",\"session_id\":\"s\"}", "missing field user_id"},
    {"{" HDR_ "\"type\":\"purchase\"," CLK_ "\"x\":1}", "missing field order_id"},
    {"{" HDR_ "\"type\":\"return_requested\"," ORD_ "\"items\":[" ITEM_ "]}", "missing field return_id"},
    {"{" HDR_ "\"type\":\"return_requested\"," ORD_ "\"return_id\":\"r\"}", "missing field items"},
    {"{" HDR_ "\"type\":\"return_requested\"," ORD_ "\"return_id\":\"r\",\"items\":[]}",
     "field items must hold at least one item"},
    {"{" HDR_ "\"type\":\"return_approved\"," ORD_ "\"x\":1}", "missing field return_id"},
    {"{" HDR_ "\"type\":\"return_rejected\",\"order_id\":\"o\",\"return_id\":\"r\"}", "missing field user_id"},
    {"{" HDR_ "\"type\":\"return_received\",\"user_id\":\"u\",\"return_id\":\"r\"}", "missing field order_id"},
    {"{" HDR_ "\"type\":\"refund_issued\"," ORD_ "\"x\":1}", "missing field amount"},
    /* null means absent */
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":null,\"payment_method\":\"card\"}", "missing field amount"},
    {"{" HDR_ "\"type\":\"checkout\",\"user_id\":null,\"session_id\":\"s\"}", "missing field user_id"},
    {"{\"id\":null,\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", "missing field id"},
    /* wrong types */
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":\"12\",\"payment_method\":\"card\"}",
     "field amount must be an integer >= 0"},
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":-5,\"payment_method\":\"card\"}",
     "field amount must be an integer >= 0"},
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":12.0,\"payment_method\":\"card\"}",
     "field amount must be an integer >= 0"},
    {"{" HDR_ "\"type\":\"order_paid\"," ORD_ "\"amount\":1,\"payment_method\":7}",
     "field payment_method must be a string"},
    {"{" HDR_ "\"type\":\"product_view\"," CLK_ "\"product_id\":\"p\",\"price\":-1}",
     "field price must be an integer >= 0"},
    {"{" HDR_ "\"type\":\"product_view\"," CLK_ "\"product_id\":\"p\",\"category\":{}}",
     "field category must be a string"},
    {"{" HDR_ "\"type\":\"search\"," CLK_ "\"query\":[\"a\"]}", "field query must be a string"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"currency\":false}", "field currency must be a string"},
    {"{" HDR_ "\"type\":\"order_shipped\"," ORD_ "\"carrier\":1}", "field carrier must be a string"},
    {"{" HDR_ "\"type\":\"order_cancelled\"," ORD_ "\"reason\":true}", "field reason must be a string"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":{}}", "field items must be an array"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[1]}", "field items must hold objects (item 0"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ ",[]]}", "field items must hold objects (item 1"},
    /* items */
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":0,\"price\":1}]}",
     "field qty must be an integer > 0 (item 0)"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":-2,\"price\":1}]}",
     "field qty must be an integer > 0"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":1.5,\"price\":1}]}",
     "field qty must be an integer > 0"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":\"1\",\"price\":1}]}",
     "field qty must be an integer > 0"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ ",{\"product_id\":\"p\",\"price\":1}]}",
     "missing field qty (item 1)"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"qty\":1,\"price\":1}]}",
     "missing field product_id (item 0)"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"\",\"qty\":1,\"price\":1}]}",
     "field product_id must be a string of 1..256 bytes (item 0)"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":5,\"qty\":1,\"price\":1}]}",
     "field product_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":1,\"price\":-1}]}",
     "field price must be an integer >= 0 (item 0)"},
    {"{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[{\"product_id\":\"p\",\"qty\":1,\"price\":\"1\"}]}",
     "field price must be an integer >= 0"},
    /* id-like strings */
    {"{" HDR_ "\"type\":\"order_delivered\",\"order_id\":\"\",\"user_id\":\"u\"}",
     "field order_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"order_delivered\",\"order_id\":\"o\",\"user_id\":[]}",
     "field user_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"checkout\",\"user_id\":\"u\",\"session_id\":\"\"}",
     "field session_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"product_view\"," CLK_ "\"product_id\":\"\"}",
     "field product_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"return_approved\"," ORD_ "\"return_id\":\"\"}",
     "field return_id must be a string of 1..256 bytes"},
    {"{" HDR_ "\"type\":\"return_approved\"," ORD_ "\"return_id\":1}",
     "field return_id must be a string of 1..256 bytes"},
};

TEST(event_rejections)
{
    struct shop_event ev;
    shop_event_init(&ev);
    for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
        char why[256];
        memset(why, 'x', sizeof why);
        int rc = parse(&ev, rejects[i].json, why);
        if (rc != -1 || !strstr(why, rejects[i].why))
            fprintf(stderr, "  case %zu: %s\n  rc %d, reason \"%.200s\"\n  want \"%s\"\n", i, rejects[i].json, rc,
                    rc ? why : "", rejects[i].why);
        CHECK_EQ(rc, -1);
        CHECK(strstr(why, rejects[i].why) != NULL);
        CHECK(strchr(why, '\n') == NULL); /* one line */
        /* a failed parse leaves every member absent */
        CHECK(ev.type == SHOP_EV_UNKNOWN && !ev.id.p && ev.nitems == 0 && ev.amount == -1);
    }
    shop_event_free(&ev);
}

TEST(event_id_length_limit)
{
    char id[SHOP_MAX_ID_BYTES + 2], json[1200];
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    memset(id, 'i', sizeof id);
    id[SHOP_MAX_ID_BYTES] = 0;
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", id);
    CHECK_EQ(parse(&ev, json, why), 0);
    CHECK_EQ(ev.id.n, SHOP_MAX_ID_BYTES);
    id[SHOP_MAX_ID_BYTES] = 'i';
    id[SHOP_MAX_ID_BYTES + 1] = 0;
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}", id);
    CHECK_EQ(parse(&ev, json, why), -1);
    CHECK(strstr(why, "field id must be a string of 1..256 bytes"));
    /* the limit counts unescaped bytes: 128 two-byte characters pass */
    char *e = json + snprintf(json, sizeof json, "{\"id\":\"");
    for (int i = 0; i < 128; i++)
        e += sprintf(e, "\\u00e9");
    sprintf(e, "\",\"type\":\"checkout\",\"ts\":1," CLK_ "\"x\":0}");
    CHECK_EQ(parse(&ev, json, why), 0);
    CHECK_EQ(ev.id.n, 256);
    shop_event_free(&ev);
}

/* An order_created with n items. */
static char *order_with_items(size_t n, size_t *len)
{
    size_t cap = 200 + n * 48;
    char *s = malloc(cap);
    CHECK(s);
    size_t o = (size_t)snprintf(s, cap, "{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s{\"product_id\":\"p%zu\",\"qty\":%zu,\"price\":%zu}", i ? "," : "",
                              i, i + 1, i * 10);
    o += (size_t)snprintf(s + o, cap - o, "],\"amount\":1,\"currency\":\"EUR\"}");
    CHECK(o < cap);
    *len = o;
    return s;
}

TEST(event_item_count_limit)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    size_t len;
    char *s = order_with_items(SHOP_MAX_ITEMS, &len);
    CHECK_EQ(parse_n(&ev, s, len, why, sizeof why), 0);
    CHECK_EQ(ev.nitems, SHOP_MAX_ITEMS);
    CHECK(sv_is(ev.items[999].product_id, "p999"));
    CHECK_EQ(ev.items[999].qty, 1000);
    CHECK_EQ(ev.items[999].price, 9990);
    CHECK(ev.items_cap <= SHOP_MAX_ITEMS);
    free(s);
    s = order_with_items(SHOP_MAX_ITEMS + 1, &len);
    CHECK_EQ(parse_n(&ev, s, len, why, sizeof why), -1);
    {
        char want[64];
        snprintf(want, sizeof want, "field items has more than %d items", SHOP_MAX_ITEMS);
        CHECK(strstr(why, want));
    }
    free(s);
    shop_event_free(&ev);
}

TEST(event_size_limit)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    /* exactly SHOP_MAX_EVENT_BYTES is accepted, one more is not */
    const char *head = "{" HDR_ "\"type\":\"order_cancelled\"," ORD_ "\"reason\":\"";
    size_t n = SHOP_MAX_EVENT_BYTES;
    char *s = malloc(n + 1);
    CHECK(s);
    size_t h = strlen(head);
    memcpy(s, head, h);
    memset(s + h, 'r', n - h - 2);
    memcpy(s + n - 2, "\"}", 2);
    CHECK_EQ(parse_n(&ev, s, n, why, sizeof why), 0);
    CHECK_EQ(ev.reason.n, n - h - 2);
    memcpy(s + n - 2, "r\"}", 3);
    CHECK_EQ(parse_n(&ev, s, n + 1, why, sizeof why), -1);
    CHECK(strstr(why, "record of 1048577 bytes is longer than the limit of 1048576 bytes"));
    free(s);
    shop_event_free(&ev);
}

TEST(event_unknown_and_repeated_members)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    /* unknown members of every kind are skipped, nested ones included; known
     * names inside unknown members do not count */
    const char *s = "{\"extra\":{\"id\":\"no\",\"type\":\"no\",\"deep\":[[{\"a\":[]}]]},\"id\":\"e\",\"n\":-1.5e9,"
                    "\"t\":true,\"f\":false,\"z\":null,\"s\":\"\\u00e9\",\"type\":\"checkout\",\"ts\":1,"
                    "\"user_id\":\"u\",\"session_id\":\"s\",\"ID\":5,\"\":{}}";
    CHECK_EQ(parse(&ev, s, why), 0);
    CHECK(sv_is(ev.id, "e"));
    CHECK_EQ(ev.type, SHOP_EV_CHECKOUT);
    /* the last of a repeated member wins */
    s = "{\"id\":\"a\",\"id\":\"b\",\"type\":\"foo\",\"type\":\"checkout\",\"ts\":\"bad\",\"ts\":5," CLK_
        "\"user_id\":\"u2\",\"price\":3,\"price\":null}";
    /* ts "bad" is rejected as soon as it is read: a wrong type is an error
     * even if a later member would have replaced it */
    CHECK_EQ(parse(&ev, s, why), -1);
    CHECK(strstr(why, "field ts must be an integer"));
    s = "{\"id\":\"a\",\"id\":\"b\",\"type\":\"foo\",\"type\":\"checkout\",\"ts\":4,\"ts\":5," CLK_
        "\"user_id\":\"u2\",\"price\":3,\"price\":null,\"category\":\"c\",\"category\":null}";
    CHECK_EQ(parse(&ev, s, why), 0);
    CHECK(sv_is(ev.id, "b"));
    CHECK_EQ(ev.type, SHOP_EV_CHECKOUT);
    CHECK_EQ(ev.ts, 5);
    CHECK(sv_is(ev.user_id, "u2"));
    CHECK(sv_is(shop_event_key(&ev), "u2"));
    CHECK_EQ(ev.price, -1);
    CHECK(ev.category.p == NULL);
    s = "{\"id\":\"a\",\"type\":\"checkout\",\"type\":\"nope\",\"ts\":4," CLK_ "\"x\":0}";
    CHECK_EQ(parse(&ev, s, why), -1);
    CHECK(strstr(why, "unknown type \"nope\""));
    /* a second items array replaces the first */
    s = "{" HDR_ "\"type\":\"order_created\"," ORD_ "\"items\":[" ITEM_ "," ITEM_ "],\"amount\":1,"
        "\"currency\":\"EUR\",\"items\":[{\"product_id\":\"q\",\"qty\":3,\"price\":4,\"note\":[1]}]}";
    CHECK_EQ(parse(&ev, s, why), 0);
    CHECK_EQ(ev.nitems, 1);
    CHECK(sv_is(ev.items[0].product_id, "q"));
    CHECK_EQ(ev.items[0].qty, 3);
    /* return items have no price */
    s = "{" HDR_ "\"type\":\"return_requested\"," ORD_ "\"return_id\":\"r\",\"items\":[{\"product_id\":\"p\","
        "\"qty\":2}]}";
    CHECK_EQ(parse(&ev, s, why), 0);
    CHECK_EQ(ev.items[0].price, -1);
    CHECK(sv_is(shop_event_key(&ev), "o"));
    shop_event_free(&ev);
}

TEST(event_strings_are_nul_terminated_and_unescaped)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    const char *s = "{\"id\":\"e\\u0000x\",\"type\":\"search\",\"ts\":0," CLK_
                    "\"query\":\"a\\\"b\\\\c\\/d \\ud83d\\ude00\"}";
    CHECK_EQ(parse(&ev, s, why), 0);
    CHECK_EQ(ev.id.n, 3);
    CHECK(memcmp(ev.id.p, "e\0x", 3) == 0 && ev.id.p[3] == 0);
    CHECK(sv_is(ev.query, "a\"b\\c/d \xf0\x9f\x98\x80"));
    CHECK_EQ(ev.ts, 0);
    struct jbuf w;
    jbuf_init(&w);
    CHECK_EQ(shop_event_write(&ev, &w), 0);
    struct shop_event ev2;
    shop_event_init(&ev2);
    CHECK_EQ(parse_n(&ev2, w.p, w.len, why, sizeof why), 0);
    CHECK(event_eq(&ev, &ev2));
    shop_event_free(&ev2);
    jbuf_free(&w);
    shop_event_free(&ev);
}

TEST(event_reason_buffer_sizes)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char small[8];
    const char *s = "{" HDR_ "\"type\":\"foo\"}";
    CHECK_EQ(parse_n(&ev, s, strlen(s), small, sizeof small), -1);
    CHECK(strcmp(small, "unknown") == 0);
    CHECK_EQ(parse_n(&ev, s, strlen(s), NULL, 0), -1);
    char one[1] = {'x'};
    CHECK_EQ(parse_n(&ev, s, strlen(s), one, 1), -1);
    CHECK(one[0] == 0);
    shop_event_free(&ev);
}

TEST(event_reuses_storage_without_allocating)
{
    struct shop_event ev;
    shop_event_init(&ev);
    char why[256];
    size_t big_len;
    char *big = order_with_items(300, &big_len);
    CHECK_EQ(parse_n(&ev, big, big_len, why, sizeof why), 0);
    size_t live = alloc_live_bytes();
    /* With storage grown, every further parse must succeed even though any
     * allocation would now fail. */
    alloc_fail_after(0);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < NSAMPLES; i++) {
            int rc = parse(&ev, samples[i].json, why);
            CHECK_EQ(rc, 0);
        }
        CHECK_EQ(parse_n(&ev, big, big_len, why, sizeof why), 0);
        CHECK_EQ(ev.nitems, 300);
    }
    alloc_fail_after(-1);
    CHECK_EQ(alloc_live_bytes(), live);
    free(big);
    shop_event_free(&ev);
}

TEST(event_allocation_failures_leak_nothing)
{
    size_t base = alloc_live_bytes();
    size_t len;
    char *s = order_with_items(40, &len); /* scratch + items 8, 16, 32, 64 */
    int failures = 0, successes = 0;
    for (long n = 0; n < 12; n++) {
        struct shop_event ev;
        shop_event_init(&ev);
        char why[256];
        alloc_fail_after(n);
        int rc = parse_n(&ev, s, len, why, sizeof why);
        alloc_fail_after(-1);
        if (rc == 0) {
            successes++;
            CHECK_EQ(ev.nitems, 40);
        } else {
            failures++;
            CHECK(strcmp(why, "out of memory") == 0);
            CHECK(ev.nitems == 0 && !ev.id.p);
            /* the same struct recovers once memory is back */
            CHECK_EQ(parse_n(&ev, s, len, why, sizeof why), 0);
        }
        /* and writing under failure reports it */
        struct jbuf w;
        jbuf_init(&w);
        alloc_fail_after(0);
        CHECK_EQ(shop_event_write(&ev, &w), -1);
        alloc_fail_after(-1);
        CHECK(w.oom);
        jbuf_free(&w);
        shop_event_free(&ev);
        CHECK_EQ(alloc_live_bytes(), base);
    }
    CHECK_EQ(failures, 5); /* the scratch and four growths of items */
    CHECK(successes > 0);
    free(s);
}

TEST(event_type_helpers)
{
    CHECK(shop_event_type_name(SHOP_EV_UNKNOWN) == NULL);
    CHECK(shop_event_type_name(SHOP_EV__COUNT) == NULL);
    CHECK(shop_event_type_name((enum shop_event_type)-1) == NULL);
    for (int t = 1; t < SHOP_EV__COUNT; t++) {
        const char *n = shop_event_type_name((enum shop_event_type)t);
        CHECK(n);
        CHECK_EQ(shop_event_type_parse(n, strlen(n)), t);
        CHECK_EQ(shop_event_type_parse(n, strlen(n) - 1), SHOP_EV_UNKNOWN);
    }
    CHECK_EQ(shop_event_type_parse("", 0), SHOP_EV_UNKNOWN);
    CHECK_EQ(shop_event_type_parse("order_paidx", 10), SHOP_EV_ORDER_PAID);
    CHECK(strcmp(shop_event_type_name(SHOP_EV_REFUND_ISSUED), "refund_issued") == 0);
    CHECK_EQ(shop_event_stream(SHOP_EV_ORDER_CREATED), SHOP_STREAM_ORDERS);
    CHECK_EQ(shop_event_stream(SHOP_EV_ORDER_CANCELLED), SHOP_STREAM_ORDERS);
    CHECK_EQ(shop_event_stream(SHOP_EV_PAGE_VIEW), SHOP_STREAM_CLICKS);
    CHECK_EQ(shop_event_stream(SHOP_EV_PURCHASE), SHOP_STREAM_CLICKS);
    CHECK_EQ(shop_event_stream(SHOP_EV_RETURN_REQUESTED), SHOP_STREAM_AFTERSALES);
    CHECK_EQ(shop_event_stream(SHOP_EV_REFUND_ISSUED), SHOP_STREAM_AFTERSALES);
    CHECK(strcmp(shop_stream_topic(SHOP_STREAM_ORDERS), "shop.orders") == 0);
    CHECK(strcmp(shop_stream_topic(SHOP_STREAM_CLICKS), "shop.clicks") == 0);
    CHECK(strcmp(shop_stream_topic(SHOP_STREAM_AFTERSALES), "shop.aftersales") == 0);
    CHECK(shop_stream_topic((enum shop_stream)7) == NULL);
    struct shop_str a = shop_str_c("abc"), z = shop_str_c(NULL);
    CHECK(a.n == 3 && a.p && z.p == NULL && z.n == 0);
}

TEST(event_write_built_by_hand)
{
    /* Producers (simulate, replay) fill the struct themselves. */
    struct shop_item items[2] = {
        {shop_str_c("p\"1"), 1, 100},
        {shop_str_c("p2"), 2, -1},
    };
    struct shop_event ev;
    shop_event_init(&ev);
    ev.type = SHOP_EV_RETURN_REQUESTED;
    ev.id = shop_str_c("ev\n1");
    ev.ts = 42;
    ev.order_id = shop_str_c("o");
    ev.user_id = shop_str_c("u");
    ev.return_id = shop_str_c("r");
    ev.items = items;
    ev.nitems = 2;
    struct jbuf w;
    jbuf_init(&w);
    CHECK_EQ(shop_event_write(&ev, &w), 0);
    CHECK(strcmp(w.p, "{\"id\":\"ev\\n1\",\"type\":\"return_requested\",\"ts\":42,\"order_id\":\"o\",\"user_id\":\"u\","
                      "\"return_id\":\"r\",\"items\":[{\"product_id\":\"p\\\"1\",\"qty\":1,\"price\":100},"
                      "{\"product_id\":\"p2\",\"qty\":2}]}") == 0);
    struct shop_event back;
    shop_event_init(&back);
    char why[256];
    CHECK_EQ(parse_n(&back, w.p, w.len, why, sizeof why), 0);
    CHECK(event_eq(&ev, &back));
    shop_event_free(&back);
    jbuf_free(&w);
}
