/* test_order_state.c: one order's book and the fold that is the order state
 * machine (shop/order_state.c).  A table gives each valid transition with
 * its status and timestamps and each rejection with its reason; then the
 * properties the processor relies on: the folded state does not depend on
 * the order events arrive in, duplicates change nothing, the book holds at
 * most ORDER_MAX_EVENTS; the stored form round-trips and rejects truncated
 * and corrupted bytes (exactly-sized heap copies, so ASan sees overreads);
 * the shipping SLA; and injected allocation failures that must leak
 * nothing.  Events are made by shop_event_parse from JSON built out of a
 * short spec (see add_spec). */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/event.h"
#include "shop/order_state.h"
#include "test.h"

#define DAY_MS 86400000LL

static const struct order_rules rules_default = {ORDER_DEFAULT_RETURN_WINDOW_MS,
                                                 ORDER_DEFAULT_SHIP_SLA_MS, 1};
static const struct order_rules rules_no_orphans = {ORDER_DEFAULT_RETURN_WINDOW_MS,
                                                    ORDER_DEFAULT_SHIP_SLA_MS, 0};

/* --- building events from a spec ---------------------------------------------
 * One event is "<letter> <id> <ts> [args]":
 *   C id ts [amount]      order_created, items p1 x2 @1000 and p2 x1 @500
 *                         (amount 2500 unless given)
 *   P id ts [amount]      order_paid (2500 unless given)
 *   S id ts / D id ts     order_shipped / order_delivered
 *   X id ts               order_cancelled
 *   R id ts rid items     return_requested, items "p1:2,p2:1"
 *   A / J / V id ts rid   return_approved / return_rejected / return_received
 *   F id ts amount [rid]  refund_issued
 * Events in a spec are separated by ';'.  The order is always o1 of u1. */

static void ev_json(const char *one, char *out, size_t outsz)
{
    char letter, id[64], a3[64] = "", a4[128] = "";
    long long ts;
    int n = sscanf(one, " %c %63s %lld %63s %127s", &letter, id, &ts, a3, a4);
    const char *head = "\"order_id\":\"o1\",\"user_id\":\"u1\"";

    CHECK(n >= 3);
    switch (letter) {
    case 'C':
        snprintf(out, outsz,
                 "{\"id\":\"%s\",\"type\":\"order_created\",\"ts\":%lld,%s,\"currency\":\"EUR\","
                 "\"items\":[{\"product_id\":\"p1\",\"qty\":2,\"price\":1000},"
                 "{\"product_id\":\"p2\",\"qty\":1,\"price\":500}],\"amount\":%s}",
                 id, ts, head, n >= 4 ? a3 : "2500");
        break;
    case 'P':
        snprintf(out, outsz,
                 "{\"id\":\"%s\",\"type\":\"order_paid\",\"ts\":%lld,%s,\"amount\":%s,"
                 "\"payment_method\":\"card\"}",
                 id, ts, head, n >= 4 ? a3 : "2500");
        break;
    case 'S':
        snprintf(out, outsz,
                 "{\"id\":\"%s\",\"type\":\"order_shipped\",\"ts\":%lld,%s,\"carrier\":\"DHL\"}", id,
                 ts, head);
        break;
    case 'D':
        snprintf(out, outsz, "{\"id\":\"%s\",\"type\":\"order_delivered\",\"ts\":%lld,%s}", id, ts,
                 head);
        break;
    case 'X':
        snprintf(out, outsz,
                 "{\"id\":\"%s\",\"type\":\"order_cancelled\",\"ts\":%lld,%s,\"reason\":\"oops\"}",
                 id, ts, head);
        break;
    case 'R': {
        char items[512] = "";
        size_t len = 0;
        char *save = NULL;
        CHECK(n == 5);
        for (char *it = strtok_r(a4, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
            char pid[32];
            long long qty;
            CHECK(sscanf(it, "%31[^:]:%lld", pid, &qty) == 2);
            len += (size_t)snprintf(items + len, sizeof items - len,
                                    "%s{\"product_id\":\"%s\",\"qty\":%lld}", len ? "," : "", pid,
                                    qty);
            CHECK(len < sizeof items);
        }
        snprintf(out, outsz,
                 "{\"id\":\"%s\",\"type\":\"return_requested\",\"ts\":%lld,%s,\"return_id\":\"%s\","
                 "\"items\":[%s]}",
                 id, ts, head, a3, items);
        break;
    }
    case 'A':
    case 'J':
    case 'V':
        CHECK(n == 4);
        snprintf(out, outsz, "{\"id\":\"%s\",\"type\":\"%s\",\"ts\":%lld,%s,\"return_id\":\"%s\"}",
                 id,
                 letter == 'A'   ? "return_approved"
                 : letter == 'J' ? "return_rejected"
                                 : "return_received",
                 ts, head, a3);
        break;
    case 'F':
        CHECK(n >= 4);
        if (n == 5)
            snprintf(out, outsz,
                     "{\"id\":\"%s\",\"type\":\"refund_issued\",\"ts\":%lld,%s,\"amount\":%s,"
                     "\"return_id\":\"%s\"}",
                     id, ts, head, a3, a4);
        else
            snprintf(out, outsz,
                     "{\"id\":\"%s\",\"type\":\"refund_issued\",\"ts\":%lld,%s,\"amount\":%s}", id,
                     ts, head, a3);
        break;
    default:
        fprintf(stderr, "  bad spec letter %c\n", letter);
        CHECK(0);
    }
}

/* Parses one spec event into ev (from an exactly-sized heap copy). */
static void parse_spec(struct shop_event *ev, const char *one)
{
    char json[1024], why[256];
    ev_json(one, json, sizeof json);
    size_t n = strlen(json);
    char *p = malloc(n);
    CHECK(p);
    memcpy(p, json, n);
    int rc = shop_event_parse(ev, p, n, why, sizeof why);
    if (rc)
        fprintf(stderr, "  %s: %s\n", json, why);
    CHECK_EQ(rc, 0);
    free(p);
}

/* Adds every event of spec to b; each must be added (rc 0). */
static void add_spec(struct order_book *b, const char *spec)
{
    char buf[4096];
    char *save = NULL;
    struct shop_event ev;

    shop_event_init(&ev);
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *one = strtok_r(buf, ";", &save); one; one = strtok_r(NULL, ";", &save)) {
        parse_spec(&ev, one);
        CHECK_EQ(order_book_add(b, &ev), 0);
    }
    shop_event_free(&ev);
}

/* The folded JSON of b as an owned C string (free). */
static char *book_json(const struct order_book *b)
{
    struct jbuf w;
    jbuf_init(&w);
    CHECK_EQ(order_book_write_json(b, &w), 0);
    char *s = strdup(w.p);
    CHECK(s);
    jbuf_free(&w);
    return s;
}

static const struct order_ev *find_ev(const struct order_book *b, const char *id)
{
    for (size_t k = 0; k < b->nev; k++)
        if (!strcmp(b->ev[k].id, id))
            return &b->ev[k];
    return NULL;
}

/* find_ev that must find the event. */
static const struct order_ev *ev_of(const struct order_book *b, const char *id)
{
    const struct order_ev *e = find_ev(b, id);
    if (!e) {
        fprintf(stderr, "  no event %s\n", id);
        exit(1);
    }
    return e;
}

/* --- the fold, table-driven ------------------------------------------------- */

static const struct fold_case {
    const char *name;
    const char *events;
    int no_orphans;          /* fold with accept_orphan_refunds = 0 */
    const char *status;      /* expected order_status_name */
    const char *rejects;     /* "id:reason substring|..."; every other event is accepted */
    const char *json;        /* substrings of the JSON, '|'-separated */
} fold_cases[] = {
    /* valid transitions */
    {"created", "C c 100", 0, "created", "",
     "\"amount\":2500|\"paid\":0|\"created_ts\":100|\"paid_ts\":null|\"shipped_ts\":null|"
     "\"currency\":\"EUR\"|\"events\":1|\"updated_ts\":100|\"external\":false"},
    {"paid", "C c 100; P p 200", 0, "paid", "",
     "\"paid\":2500|\"created_ts\":100|\"paid_ts\":200|\"shipped_ts\":null|\"updated_ts\":200"},
    {"shipped", "C c 100; P p 200; S s 300", 0, "shipped", "",
     "\"paid_ts\":200|\"shipped_ts\":300|\"delivered_ts\":null|\"events\":3"},
    {"delivered", "C c 100; P p 200; S s 300; D d 400", 0, "delivered", "",
     "\"shipped_ts\":300|\"delivered_ts\":400|\"cancelled_ts\":null|\"return_requested_ts\":null|"
     "\"refunded_ts\":null|\"events\":4|\"updated_ts\":400"},
    {"cancelled unpaid", "C c 100; X x 150", 0, "cancelled", "",
     "\"cancelled_ts\":150|\"paid_ts\":null|\"paid\":0"},
    {"cancelled paid", "C c 100; P p 200; X x 250", 0, "cancelled", "",
     "\"cancelled_ts\":250|\"paid\":2500"},
    {"created and paid at the same instant", "C c 100; P p 100", 0, "paid", "",
     "\"created_ts\":100|\"paid_ts\":100"},
    {"return requested", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1", 0,
     "return_requested", "",
     "\"return_requested_ts\":500|\"returns\":[{\"return_id\":\"r1\",\"status\":\"requested\",\"ts\":500}]"},
    {"return approved stays open",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1", 0, "return_requested", "",
     "\"status\":\"approved\",\"ts\":600"},
    {"return received stays open",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; V v 700 r1", 0,
     "return_requested", "", "\"status\":\"received\",\"ts\":700"},
    {"partial refund of a received return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; V v 700 r1; F f 800 1000 r1",
     0, "partially_refunded", "",
     "\"refunded\":1000|\"refunded_ts\":800|\"status\":\"refunded\",\"ts\":800|"
     "\"refunds\":[{\"id\":\"f\",\"amount\":1000,\"ts\":800,\"return_id\":\"r1\"}]|\"events\":8"},
    {"full refund of a return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:2,p2:1; A a 600 r1; V v 700 r1; "
     "F f 800 2500 r1",
     0, "refunded", "", "\"refunded\":2500|\"refunded_ts\":800"},
    {"refund of an approved (not received) return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; F f 650 1000 r1", 0,
     "partially_refunded", "", "\"refunded\":1000"},
    {"refund of a cancelled paid order", "C c 100; P p 200; X x 250; F f 300 2500", 0, "refunded",
     "", "\"refunded\":2500|\"cancelled_ts\":250|\"refunded_ts\":300"},
    {"partial refund of a cancelled paid order", "C c 100; P p 200; X x 250; F f 300 1000", 0,
     "partially_refunded", "", "\"refunded\":1000|\"refunds\":[{\"id\":\"f\",\"amount\":1000,\"ts\":300}]"},
    {"two refunds make it whole", "C c 100; P p 200; X x 250; F f1 300 1000; F f2 400 1500", 0,
     "refunded", "", "\"refunded\":2500|\"refunded_ts\":400"},
    {"orphan refund accepted", "F f 300 700", 0, "refunded", "",
     "\"external\":true|\"refunded\":700|\"paid\":0|\"created_ts\":null|\"refunded_ts\":300|"
     "\"currency\":\"\"|\"user_id\":\"u1\""},
    {"two orphan refunds", "F f1 300 700; F f2 400 300", 0, "refunded", "",
     "\"external\":true|\"refunded\":1000|\"events\":2"},
    {"rejected return goes back to delivered",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; J j 600 r1", 0, "delivered", "",
     "\"status\":\"rejected\",\"ts\":600|\"return_requested_ts\":500"},
    {"rejected return goes back to partially_refunded",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; F f 700 1000 r1; "
     "R r2 800 r2 p2:1; J j 900 r2",
     0, "partially_refunded", "", "\"return_id\":\"r2\",\"status\":\"rejected\""},
    {"a rejected return frees its quantity",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:2; J j 600 r1; R r2 700 r2 p1:2", 0,
     "return_requested", "", "\"return_id\":\"r2\",\"status\":\"requested\""},
    {"return at the end of the window",
     "C c 100; P p 200; S s 300; D d 400; R r 2592000400 r1 p1:1", 0, "return_requested", "", ""},
    {"two returns within what was bought",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; R r2 600 r2 p1:1,p2:1", 0,
     "return_requested", "", ""},

    /* rejections */
    {"paid before created", "P p 50; C c 100", 0, "created", "p:order_paid for an order not created",
     "\"paid_ts\":null|\"events\":1"},
    {"paid amount differs", "C c 100; P p 200 2400", 0, "created",
     "p:paid amount 2400 differs from the order amount 2500", "\"paid\":0"},
    {"paid twice", "C c 100; P p 200; P p2 300", 0, "paid", "p2:order_paid when the order is paid",
     "\"paid_ts\":200"},
    {"shipped before paid", "C c 100; S s 200", 0, "created",
     "s:order_shipped when the order is created", "\"shipped_ts\":null"},
    {"shipped without an order", "S s 200", 0, "none", "s:order_shipped when the order is none",
     "\"events\":0|\"updated_ts\":null"},
    {"delivered before shipped", "C c 100; P p 200; D d 300", 0, "paid",
     "d:order_delivered when the order is paid", "\"delivered_ts\":null"},
    {"cancel after shipping", "C c 100; P p 200; S s 300; X x 400", 0, "shipped",
     "x:order_cancelled when the order is shipped", "\"cancelled_ts\":null"},
    {"cancel after delivery", "C c 100; P p 200; S s 300; D d 400; X x 500", 0, "delivered",
     "x:order_cancelled when the order is delivered", ""},
    {"double created", "C c 100; C c2 200", 0, "created",
     "c2:order_created for an order already created", "\"created_ts\":100"},
    {"created amount not the sum of the items", "C c 100 2400", 0, "none",
     "c:amount 2400 is not the sum of the items (2500)", "\"created_ts\":null|\"amount\":0"},
    {"created after an orphan refund", "F f 50 700; C c 100", 0, "refunded",
     "c:order_created after the order was refunded as an unknown order", "\"external\":true"},
    {"return for an undelivered order", "C c 100; P p 200; S s 300; R r 400 r1 p1:1", 0, "shipped",
     "r:return requested for an order never delivered", "\"return_requested_ts\":null|\"returns\":[]"},
    {"return for an order never created", "R r 400 r1 p1:1", 0, "none",
     "r:return_requested for an order that was never created", ""},
    {"return past the window", "C c 100; P p 200; S s 300; D d 400; R r 2592000401 r1 p1:1", 0,
     "delivered", "r:return requested 30 days after delivery, past the 30-day window",
     "\"returns\":[]"},
    {"return of more than bought", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:3", 0,
     "delivered", "r:return of 3 x p1, more than bought and not yet returned", ""},
    {"return of a product not bought", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p9:1", 0,
     "delivered", "r:return of 1 x p9, more than bought", ""},
    {"return listing a product twice", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1,p1:2",
     0, "delivered", "r:return of 3 x p1, more than bought", ""},
    {"second return of more than is left",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:2; R r2 600 r2 p1:1", 0,
     "return_requested", "r2:return of 1 x p1, more than bought and not yet returned",
     "\"return_requested_ts\":500"},
    {"return id reused", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; R r2 600 r1 p2:1", 0,
     "return_requested", "r2:return r1 was already requested", ""},
    {"return after a full refund",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; F f 700 2500 r1; "
     "R r2 800 r2 p2:1",
     0, "refunded", "r2:return requested for an order already refunded", ""},
    {"approve an unknown return", "C c 100; P p 200; S s 300; D d 400; A a 500 r9", 0, "delivered",
     "a:return_approved for unknown return r9", ""},
    {"reject an unknown return", "C c 100; P p 200; S s 300; D d 400; J j 500 r9", 0, "delivered",
     "j:return_rejected for unknown return r9", ""},
    {"receive an unknown return", "C c 100; P p 200; S s 300; D d 400; V v 500 r9", 0, "delivered",
     "v:return_received for unknown return r9", ""},
    {"approve twice",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; A a2 700 r1", 0,
     "return_requested", "a2:return_approved for return r1 which is approved", ""},
    {"reject after approval",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; J j 700 r1", 0,
     "return_requested", "j:return_rejected for return r1 which is approved", ""},
    {"receive before approval", "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; V v 600 r1",
     0, "return_requested", "v:return_received for return r1 which is requested", ""},
    {"receive a rejected return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; J j 600 r1; V v 700 r1", 0, "delivered",
     "v:return_received for return r1 which is rejected", ""},
    {"approve a return of an order not created", "A a 500 r1", 0, "none",
     "a:return_approved for an order that was never created", ""},
    {"refund above paid", "C c 100; P p 200; X x 250; F f 300 2600", 0, "cancelled",
     "f:refund of 2600 is more than was paid (2500) minus refunded (0)", "\"refunded\":0"},
    {"refund above paid minus refunded", "C c 100; P p 200; X x 250; F f1 300 2000; F f2 400 1000",
     0, "partially_refunded", "f2:refund of 1000 is more than was paid (2500) minus refunded (2000)",
     "\"refunded\":2000|\"refunded_ts\":300"},
    {"refund of a requested return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; F f 600 1000 r1", 0, "return_requested",
     "f:refund for return r1 which is requested", "\"refunded\":0"},
    {"refund of a rejected return",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; J j 600 r1; F f 700 1000 r1", 0,
     "delivered", "f:refund for return r1 which is rejected", ""},
    {"refund of a return refunded already",
     "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; F f 700 1000 r1; "
     "F f2 800 500 r1",
     0, "partially_refunded", "f2:refund for return r1 which is refunded", "\"refunded\":1000"},
    {"refund without a return on a delivered order", "C c 100; P p 200; S s 300; D d 400; F f 500 1000",
     0, "delivered", "f:refund without an approved return or a cancelled order", ""},
    {"refund with an unknown return on a paid order", "C c 100; P p 200; F f 300 1000 r9", 0, "paid",
     "f:refund without an approved return or a cancelled order", ""},
    {"refund of a cancelled unpaid order", "C c 100; X x 150; F f 300 1000", 0, "cancelled",
     "f:refund for an order that was not paid", ""},
    {"refund of amount 0", "C c 100; P p 200; X x 250; F f 300 0", 0, "cancelled",
     "f:refund amount must be above zero", ""},
    {"orphan refund of amount 0", "F f 300 0", 0, "none", "f:refund amount must be above zero",
     "\"external\":false"},
    {"orphan refund rejected by the rules", "F f 300 700", 1, "none",
     "f:refund for an order that was never created", "\"external\":false|\"refunded\":0"},
    {"refund before the order was created", "F f 50 700; C c 100; P p 200", 1, "paid",
     "f:refund for an order that was never created", "\"refunded\":0"},
};

#define NFOLD_CASES (sizeof fold_cases / sizeof fold_cases[0])

/* Checks every rejection listed in c->rejects and that nothing else was
 * rejected. */
static void check_rejects(const struct fold_case *c, const struct order_book *b)
{
    char buf[1024];
    char *save = NULL;
    size_t listed = 0, rejected = 0;

    snprintf(buf, sizeof buf, "%s", c->rejects);
    for (char *one = strtok_r(buf, "|", &save); one; one = strtok_r(NULL, "|", &save)) {
        char *colon = strchr(one, ':');
        CHECK(colon);
        *colon = '\0';
        const struct order_ev *e = find_ev(b, one);
        CHECK(e);
        if (!e->rejected || !strstr(e->reason, colon + 1)) {
            fprintf(stderr, "  case \"%s\": event %s: rejected %d, reason \"%s\", want \"%s\"\n",
                    c->name, one, e->rejected, e->reason, colon + 1);
            CHECK(0);
        }
        listed++;
    }
    for (size_t k = 0; k < b->nev; k++) {
        if (b->ev[k].rejected)
            rejected++;
        else
            CHECK(b->ev[k].reason[0] == '\0');
    }
    if (rejected != listed) {
        for (size_t k = 0; k < b->nev; k++)
            if (b->ev[k].rejected)
                fprintf(stderr, "  case \"%s\": %s rejected: %s\n", c->name, b->ev[k].id,
                        b->ev[k].reason);
        CHECK_EQ(rejected, listed);
    }
    CHECK_EQ(b->accepted, b->nev - rejected);
}

TEST(order_fold_table)
{
    size_t base = alloc_live_bytes();
    for (size_t i = 0; i < NFOLD_CASES; i++) {
        const struct fold_case *c = &fold_cases[i];
        struct order_book b;
        order_book_init(&b);
        add_spec(&b, c->events);
        order_book_fold(&b, c->no_orphans ? &rules_no_orphans : &rules_default);
        if (strcmp(order_status_name(b.status), c->status)) {
            fprintf(stderr, "  case \"%s\": status %s, want %s\n", c->name,
                    order_status_name(b.status), c->status);
            CHECK(0);
        }
        check_rejects(c, &b);

        char *json = book_json(&b);
        char want[1024], *save = NULL;
        snprintf(want, sizeof want, "%s", c->json);
        CHECK(strstr(json, "\"order_id\":\"o1\""));
        for (char *one = strtok_r(want, "|", &save); one; one = strtok_r(NULL, "|", &save)) {
            if (!strstr(json, one)) {
                fprintf(stderr, "  case \"%s\": %s\n  lacks %s\n", c->name, json, one);
                CHECK(0);
            }
        }
        /* Folding again (the processor folds after every event) gives the
         * same state. */
        order_book_fold(&b, c->no_orphans ? &rules_no_orphans : &rules_default);
        char *again = book_json(&b);
        CHECK(strcmp(json, again) == 0);
        free(again);
        free(json);
        order_book_free(&b);
    }
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(order_fold_timestamps_of_a_full_life)
{
    struct order_book b;
    order_book_init(&b);
    add_spec(&b, "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1; A a 600 r1; V v 700 r1; "
                 "F f 800 1000 r1");
    order_book_fold(&b, &rules_default);
    CHECK_EQ(b.status, ORDER_PARTIALLY_REFUNDED);
    CHECK_EQ(b.created_ts, 100);
    CHECK_EQ(b.paid_ts, 200);
    CHECK_EQ(b.shipped_ts, 300);
    CHECK_EQ(b.delivered_ts, 400);
    CHECK_EQ(b.cancelled_ts, -1);
    CHECK_EQ(b.return_requested_ts, 500);
    CHECK_EQ(b.refunded_ts, 800);
    CHECK_EQ(b.last_ts, 800);
    CHECK_EQ(b.amount, 2500);
    CHECK_EQ(b.paid, 2500);
    CHECK_EQ(b.refunded, 1000);
    CHECK_EQ(b.accepted, 8);
    CHECK_EQ(b.nreturns, 1);
    CHECK_EQ(b.returns[0].status, RETURN_REFUNDED);
    CHECK_EQ(b.nrefunds, 1);
    CHECK(b.created && !strcmp(b.created->id, "c"));
    CHECK(!strcmp(b.currency, "EUR") && !strcmp(b.user_id, "u1") && !strcmp(b.order_id, "o1"));
    /* A later rule change re-judges the stored events: with a 50 ms return
     * window the return and everything that hangs on it is rejected. */
    struct order_rules tight = rules_default;
    tight.return_window_ms = 50;
    order_book_fold(&b, &tight);
    CHECK_EQ(b.status, ORDER_DELIVERED);
    CHECK_EQ(b.accepted, 4);
    CHECK(strstr(ev_of(&b, "r")->reason, "past the 0-day window"));
    order_book_free(&b);
}

TEST(order_status_names)
{
    CHECK(!strcmp(order_status_name(ORDER_NONE), "none"));
    CHECK(!strcmp(order_status_name(ORDER_PARTIALLY_REFUNDED), "partially_refunded"));
    CHECK(!strcmp(order_status_name((enum order_status)99), "none"));
    CHECK(!strcmp(return_status_name(RETURN_RECEIVED), "received"));
    CHECK(!strcmp(return_status_name((enum return_status)99), "requested"));
}

/* --- order independence, duplicates, capacity ------------------------------ */

static const char *const life[] = {
    "C c 100", "P p 200", "S s 300", "D d 400", "R r 500 r1 p1:1,p2:1", "A a 600 r1",
    "V v 700 r1", "F f 800 1500 r1",
};
#define NLIFE (sizeof life / sizeof life[0])

/* The folded JSON of a book built by adding evs[order[0..n)]. */
static char *fold_in_order(struct shop_event *evs, const size_t *order, size_t n)
{
    struct order_book b;
    order_book_init(&b);
    for (size_t k = 0; k < n; k++) {
        CHECK_EQ(order_book_add(&b, &evs[order[k]]), 0);
    }
    order_book_fold(&b, &rules_default);
    char *s = book_json(&b);
    order_book_free(&b);
    return s;
}

TEST(order_fold_every_permutation_gives_the_same_state)
{
    struct shop_event evs[NLIFE];
    size_t order[NLIFE], c[NLIFE] = {0};
    size_t base = alloc_live_bytes();

    for (size_t k = 0; k < NLIFE; k++) {
        shop_event_init(&evs[k]);
        parse_spec(&evs[k], life[k]);
        order[k] = k;
    }
    char *want = fold_in_order(evs, order, NLIFE);
    CHECK(strstr(want, "\"status\":\"partially_refunded\""));
    CHECK(strstr(want, "\"events\":8"));

    /* Heap's algorithm, iterative: every one of the 8! orders. */
    size_t perms = 1, i = 1;
    while (i < NLIFE) {
        if (c[i] < i) {
            size_t j = i % 2 ? c[i] : 0, t = order[j];
            order[j] = order[i];
            order[i] = t;
            char *got = fold_in_order(evs, order, NLIFE);
            if (strcmp(got, want)) {
                fprintf(stderr, "  permutation %zu:\n  %s\n  want %s\n", perms, got, want);
                CHECK(0);
            }
            free(got);
            perms++;
            c[i]++;
            i = 1;
        } else {
            c[i] = 0;
            i++;
        }
    }
    CHECK_EQ(perms, 40320);
    free(want);
    for (size_t k = 0; k < NLIFE; k++)
        shop_event_free(&evs[k]);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(order_fold_random_orders_with_duplicates)
{
    struct shop_event evs[NLIFE];
    size_t order[NLIFE];
    unsigned seed = 12345;

    for (size_t k = 0; k < NLIFE; k++) {
        shop_event_init(&evs[k]);
        parse_spec(&evs[k], life[k]);
        order[k] = k;
    }
    char *want = fold_in_order(evs, order, NLIFE);
    for (int round = 0; round < 300; round++) {
        for (size_t k = NLIFE - 1; k > 0; k--) {
            size_t j = (size_t)rand_r(&seed) % (k + 1), t = order[j];
            order[j] = order[k];
            order[k] = t;
        }
        /* Add in this order, folding after every event as the processor
         * does, and re-deliver an event already added after each step. */
        struct order_book b;
        order_book_init(&b);
        for (size_t k = 0; k < NLIFE; k++) {
            CHECK_EQ(order_book_add(&b, &evs[order[k]]), 0);
            order_book_fold(&b, &rules_default);
            char *before = book_json(&b);
            size_t dup = order[(size_t)rand_r(&seed) % (k + 1)];
            CHECK_EQ(order_book_add(&b, &evs[dup]), 1);
            CHECK_EQ(b.nev, k + 1);
            order_book_fold(&b, &rules_default);
            char *after = book_json(&b);
            CHECK(strcmp(before, after) == 0);
            free(before);
            free(after);
        }
        char *got = book_json(&b);
        CHECK(strcmp(got, want) == 0);
        free(got);
        order_book_free(&b);
    }
    free(want);
    for (size_t k = 0; k < NLIFE; k++)
        shop_event_free(&evs[k]);
}

TEST(order_book_holds_at_most_64_events)
{
    struct order_book b;
    struct shop_event ev;
    char spec[64];

    order_book_init(&b);
    shop_event_init(&ev);
    add_spec(&b, "C c 100; P p 200; X x 300");
    for (int k = 0; k < ORDER_MAX_EVENTS - 3; k++) {
        snprintf(spec, sizeof spec, "F f%d %d 1", k, 400 + k);
        parse_spec(&ev, spec);
        CHECK_EQ(order_book_add(&b, &ev), 0);
    }
    CHECK_EQ(b.nev, ORDER_MAX_EVENTS);
    parse_spec(&ev, "F f-last 9999 1");
    CHECK_EQ(order_book_add(&b, &ev), 2);
    CHECK_EQ(b.nev, ORDER_MAX_EVENTS);
    /* A duplicate of a kept event is still recognised as one. */
    parse_spec(&ev, "F f7 407 1");
    CHECK_EQ(order_book_add(&b, &ev), 1);
    order_book_fold(&b, &rules_default);
    CHECK_EQ(b.accepted, ORDER_MAX_EVENTS);
    CHECK_EQ(b.refunded, ORDER_MAX_EVENTS - 3);
    CHECK_EQ(b.nrefunds, ORDER_MAX_EVENTS - 3);
    CHECK_EQ(b.status, ORDER_PARTIALLY_REFUNDED);
    shop_event_free(&ev);
    order_book_free(&b);
}

TEST(order_book_duplicate_ids_with_embedded_nul)
{
    /* An id may hold U+0000 (JSON allows it).  The book keeps ids as C
     * strings, so the duplicate check must compare them the same way:
     * re-delivering the event changes nothing, also after a store round
     * trip. */
    static const char js[] =
        "{\"id\":\"f\\u0000x\",\"type\":\"refund_issued\",\"ts\":5,\"order_id\":\"o1\","
        "\"user_id\":\"u1\",\"amount\":10}";
    struct shop_event ev;
    struct order_book b, b2;
    char why[256];
    struct jbuf enc;

    shop_event_init(&ev);
    order_book_init(&b);
    order_book_init(&b2);
    jbuf_init(&enc);
    CHECK_EQ(shop_event_parse(&ev, js, sizeof js - 1, why, sizeof why), 0);
    CHECK_EQ(ev.id.n, 3);
    CHECK_EQ(order_book_add(&b, &ev), 0);
    CHECK_EQ(order_book_add(&b, &ev), 1);
    CHECK_EQ(order_book_encode(&b, &enc), 0);
    CHECK_EQ(order_book_decode(&b2, enc.p, enc.len), 0);
    CHECK_EQ(order_book_add(&b2, &ev), 1);
    order_book_fold(&b2, &rules_default);
    CHECK_EQ(b2.refunded, 10);
    jbuf_free(&enc);
    order_book_free(&b);
    order_book_free(&b2);
    shop_event_free(&ev);
}

/* --- stored form ------------------------------------------------------------ */

/* A folded book of a full life plus a rejected event, with both stored
 * flags set. */
static void sample_book(struct order_book *b)
{
    order_book_init(b);
    add_spec(b, "C c 100; P p 200; S s 300; D d 400; R r 500 r1 p1:1,p2:1; A a 600 r1; "
                "V v 700 r1; F f 800 1500 r1; X bad-cancel 900");
    b->sla_alerted = 1;
    for (size_t k = 0; k < b->nev; k++)
        if (!strcmp(b->ev[k].id, "bad-cancel"))
            b->ev[k].deadlettered = 1;
    order_book_fold(b, &rules_default);
}

static void encode(const struct order_book *b, struct jbuf *out)
{
    jbuf_init(out);
    CHECK_EQ(order_book_encode(b, out), 0);
}

/* order_book_decode of an exactly-sized copy of p[0..n). */
static int decode_copy(struct order_book *b, const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    CHECK(copy);
    memcpy(copy, p, n);
    int rc = order_book_decode(b, copy, n);
    free(copy);
    return rc;
}

TEST(order_stored_form_round_trip)
{
    struct order_book a, b;
    struct jbuf e1, e2;

    sample_book(&a);
    char *ja = book_json(&a);
    CHECK(strstr(ja, "\"sla_breached\":true"));
    encode(&a, &e1);
    CHECK_EQ(e1.p[0], 1); /* version */
    CHECK_EQ(e1.p[1], 1); /* sla_alerted */

    order_book_init(&b);
    CHECK_EQ(decode_copy(&b, e1.p, e1.len), 0);
    CHECK_EQ(b.nev, a.nev);
    CHECK_EQ(b.sla_alerted, 1);
    const struct order_ev *bad = ev_of(&b, "bad-cancel");
    CHECK(bad && bad->deadlettered);
    CHECK_EQ(ev_of(&b, "r")->nitems, 2);
    CHECK(!strcmp(ev_of(&b, "r")->aux, "r1"));
    CHECK(!strcmp(ev_of(&b, "p")->aux, "card"));
    CHECK_EQ(ev_of(&b, "r")->items[1].price, -1);
    CHECK_EQ(ev_of(&b, "c")->items[0].price, 1000);
    order_book_fold(&b, &rules_default);
    char *jb = book_json(&b);
    CHECK(strcmp(ja, jb) == 0);
    CHECK(ev_of(&b, "bad-cancel")->rejected);
    encode(&b, &e2);
    CHECK_EQ(e1.len, e2.len);
    CHECK(memcmp(e1.p, e2.p, e1.len) == 0);

    /* Decoding over a loaded book replaces it without leaking. */
    size_t live = alloc_live_bytes();
    CHECK_EQ(decode_copy(&b, e1.p, e1.len), 0);
    CHECK_EQ(alloc_live_bytes(), live);

    /* An empty book round-trips too. */
    struct order_book z;
    struct jbuf ez;
    order_book_init(&z);
    encode(&z, &ez);
    CHECK_EQ(decode_copy(&b, ez.p, ez.len), 0);
    CHECK_EQ(b.nev, 0);
    jbuf_free(&ez);

    free(ja);
    free(jb);
    jbuf_free(&e1);
    jbuf_free(&e2);
    order_book_free(&a);
    order_book_free(&b);
}

TEST(order_stored_form_truncated_is_rejected)
{
    struct order_book a, b;
    struct jbuf e;
    size_t base = alloc_live_bytes();

    sample_book(&a);
    encode(&a, &e);
    order_book_init(&b);
    size_t live = alloc_live_bytes();
    for (size_t n = 0; n < e.len; n++) {
        CHECK_EQ(decode_copy(&b, e.p, n), -1);
        CHECK_EQ(b.nev, 0);
        CHECK(!b.ev && !b.order_id);
        CHECK_EQ(alloc_live_bytes(), live);
    }
    /* and one byte too many */
    char *longer = malloc(e.len + 1);
    CHECK(longer);
    memcpy(longer, e.p, e.len);
    longer[e.len] = 0;
    CHECK_EQ(decode_copy(&b, longer, e.len + 1), -1);
    free(longer);
    jbuf_free(&e);
    order_book_free(&a);
    order_book_free(&b);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* Appends the varint encoding of v. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

TEST(order_stored_form_corrupted_is_rejected)
{
    /* A minimal valid book: header, three strings, one event. */
    static const uint8_t good[] = {
        1, 0,                 /* version, flags */
        2, 'o', '1', 2, 'u', '1', 3, 'E', 'U', 'R',
        1,                    /* nevents */
        SHOP_EV_ORDER_PAID, 0, 0x90, 0x03 /* ts 200 */, 0x88, 0x27 /* 2500 */,
        1, 'p', 4, 'c', 'a', 'r', 'd', 0,
    };
    struct order_book b;
    uint8_t buf[64];
    size_t base = alloc_live_bytes();

    order_book_init(&b);
    CHECK_EQ(decode_copy(&b, good, sizeof good), 0);
    CHECK_EQ(b.nev, 1);
    CHECK_EQ(b.ev[0].ts, 200);
    CHECK_EQ(b.ev[0].amount, 2500);

    static const struct {
        size_t at;
        uint8_t byte;
    } flips[] = {
        {0, 0},                       /* version 0 */
        {0, 2},                       /* version 2 */
        {2, 200},                     /* order_id longer than the input */
        {2, 0x80},                    /* unterminated varint at the end... of the string */
        {12, 2},                      /* nevents 2 with one present */
        {12, ORDER_MAX_EVENTS + 1},   /* nevents above the limit */
        {13, 0},                      /* event type unknown */
        {13, SHOP_EV__COUNT},         /* event type out of range */
        {13, 0xff},
        {19, 2},                      /* id running into the next field */
        {26, 1},                      /* one item, none present */
        {26, 0x7f},                   /* items more than the bytes left */
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(buf, good, sizeof good);
        buf[flips[i].at] = flips[i].byte;
        if (decode_copy(&b, buf, sizeof good) != -1) {
            fprintf(stderr, "  flip %zu decoded\n", i);
            CHECK(0);
        }
        CHECK(!b.ev && b.nev == 0);
        CHECK_EQ(alloc_live_bytes(), base);
    }

    /* A string length beyond any limit, and an items count beyond
     * SHOP_MAX_ITEMS with enough bytes behind it to pass the byte check. */
    size_t n = 0;
    buf[n++] = 1;
    buf[n++] = 0;
    n += put_varint(buf + n, (uint64_t)1 << 62);
    CHECK_EQ(decode_copy(&b, buf, n), -1);
    n = 0;
    buf[n++] = 1;
    buf[n++] = 0;
    n += put_varint(buf + n, UINT64_MAX);
    CHECK_EQ(decode_copy(&b, buf, n), -1);

    static uint8_t many[16384];
    for (int items = SHOP_MAX_ITEMS; items <= SHOP_MAX_ITEMS + 1; items++) {
        memcpy(many, good, sizeof good - 1);
        n = sizeof good - 1;
        n += put_varint(many + n, (uint64_t)items);
        for (int k = 0; k < items; k++) {
            many[n++] = 0; /* product_id "" */
            many[n++] = 2; /* qty 1 */
            many[n++] = 0; /* price 0 */
        }
        CHECK(n <= sizeof many);
        CHECK_EQ(decode_copy(&b, many, n), items == SHOP_MAX_ITEMS ? 0 : -1);
    }
    order_book_free(&b);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(order_stored_form_every_byte_corrupted)
{
    /* No expectation about the verdict: any single-byte change must decode
     * or fail cleanly, and what decodes must fold, write and re-encode. */
    struct order_book a, b;
    struct jbuf e;
    size_t base = alloc_live_bytes();
    static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};

    sample_book(&a);
    encode(&a, &e);
    order_book_init(&b);
    uint8_t *buf = malloc(e.len);
    CHECK(buf);
    size_t decoded = 0;
    for (size_t at = 0; at < e.len; at++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(buf, e.p, e.len);
            buf[at] = vals[v];
            if (decode_copy(&b, buf, e.len) == 0) {
                decoded++;
                order_book_fold(&b, &rules_default);
                char *j = book_json(&b);
                free(j);
                struct jbuf e2;
                encode(&b, &e2);
                jbuf_free(&e2);
            } else {
                CHECK(!b.ev && b.nev == 0);
            }
        }
    }
    CHECK(decoded > 0);
    free(buf);
    jbuf_free(&e);
    order_book_free(&a);
    order_book_free(&b);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* --- the shipping SLA ------------------------------------------------------- */

TEST(order_ship_sla)
{
    static const int64_t H = 3600 * 1000;
    static const struct {
        const char *events;
        int64_t deadline;          /* expected order_book_ship_deadline */
        int64_t wm;
        int breached;
    } cases[] = {
        /* not paid: no SLA applies */
        {"C c 100", -1, 1000 * H, 0},
        {"C c 100; X x 200", -1, 1000 * H, 0},
        /* paid, not shipped: breached only once the watermark is past the deadline */
        {"C c 0; P p 1000", 1000 + 48 * H, 1000 + 48 * H - 1, 0},
        {"C c 0; P p 1000", 1000 + 48 * H, 1000 + 48 * H, 0},
        {"C c 0; P p 1000", 1000 + 48 * H, 1000 + 48 * H + 1, 1},
        /* shipped before the deadline (or on it) */
        {"C c 0; P p 1000; S s 2000", 1000 + 48 * H, 1000 * H, 0},
        {"C c 0; P p 1000; S s 172801000", 1000 + 48 * H, 1000 * H, 0},
        /* shipped after the deadline */
        {"C c 0; P p 1000; S s 172801001", 1000 + 48 * H, 1000 * H, 1},
        {"C c 0; P p 1000; S s 172801001; D d 172901001", 1000 + 48 * H, 1000 * H, 1},
        /* cancelled before the deadline, and after */
        {"C c 0; P p 1000; X x 5000", 1000 + 48 * H, 1000 * H, 0},
        {"C c 0; P p 1000; X x 172801001", 1000 + 48 * H, 1000 * H, 1},
        /* payment rejected (wrong amount): not paid */
        {"C c 0; P p 1000 1", -1, 1000 * H, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct order_book b;
        order_book_init(&b);
        add_spec(&b, cases[i].events);
        order_book_fold(&b, &rules_default);
        if (order_book_ship_deadline(&b, &rules_default) != cases[i].deadline ||
            order_book_sla_breached(&b, &rules_default, cases[i].wm) != cases[i].breached) {
            fprintf(stderr, "  case %zu (%s): deadline %lld, breached %d\n", i, cases[i].events,
                    (long long)order_book_ship_deadline(&b, &rules_default),
                    order_book_sla_breached(&b, &rules_default, cases[i].wm));
            CHECK(0);
        }
        order_book_free(&b);
    }
    /* The SLA comes from the rules. */
    struct order_book b;
    struct order_rules r = rules_default;
    r.ship_sla_ms = 10;
    order_book_init(&b);
    add_spec(&b, "C c 0; P p 1000; S s 1011");
    order_book_fold(&b, &r);
    CHECK_EQ(order_book_ship_deadline(&b, &r), 1010);
    CHECK_EQ(order_book_sla_breached(&b, &r, 1011), 1);
    CHECK_EQ(order_book_sla_breached(&b, &rules_default, 1000 * H), 0);
    order_book_free(&b);
}

/* --- allocation failures ---------------------------------------------------- */

TEST(order_add_allocation_failures_leak_nothing)
{
    struct shop_event evs[NLIFE];
    size_t base = alloc_live_bytes();
    int failures = 0;

    for (size_t k = 0; k < NLIFE; k++) {
        shop_event_init(&evs[k]);
        parse_spec(&evs[k], life[k]);
    }
    size_t with_events = alloc_live_bytes();
    /* The first add (book fields, event array, strings, items) and a later
     * one (a return with items). */
    for (size_t which = 0; which < 2; which++) {
        size_t target = which ? 4 : 0;
        for (long n = 0;; n++) {
            struct order_book b;
            order_book_init(&b);
            for (size_t k = 0; k < target; k++)
                CHECK_EQ(order_book_add(&b, &evs[k]), 0);
            order_book_fold(&b, &rules_default);
            char *before = book_json(&b);
            size_t nev = b.nev;
            alloc_fail_after(n);
            int rc = order_book_add(&b, &evs[target]);
            alloc_fail_after(-1);
            CHECK(rc == 0 || rc == -1);
            if (rc == -1) {
                failures++;
                CHECK_EQ(b.nev, nev);
                order_book_fold(&b, &rules_default);
                char *after = book_json(&b);
                if (target)
                    CHECK(strcmp(before, after) == 0);
                free(after);
                /* the same event goes in once memory is back */
                CHECK_EQ(order_book_add(&b, &evs[target]), 0);
            }
            CHECK_EQ(b.nev, nev + 1);
            free(before);
            order_book_free(&b);
            CHECK_EQ(alloc_live_bytes(), with_events);
            if (rc == 0)
                break;
            CHECK(n < 100);
        }
    }
    CHECK(failures >= 8);
    for (size_t k = 0; k < NLIFE; k++)
        shop_event_free(&evs[k]);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(order_decode_allocation_failures_leak_nothing)
{
    struct order_book a, b;
    struct jbuf e;
    int failures = 0;

    sample_book(&a);
    char *want = book_json(&a);
    encode(&a, &e);
    order_book_free(&a);
    size_t base = alloc_live_bytes();
    for (long n = 0;; n++) {
        order_book_init(&b);
        alloc_fail_after(n);
        int rc = order_book_decode(&b, e.p, e.len);
        alloc_fail_after(-1);
        if (rc == 0) {
            order_book_fold(&b, &rules_default);
            char *got = book_json(&b);
            CHECK(strcmp(got, want) == 0);
            free(got);
            order_book_free(&b);
            CHECK_EQ(alloc_live_bytes(), base);
            break;
        }
        CHECK_EQ(rc, -1);
        failures++;
        CHECK(!b.ev && b.nev == 0 && !b.order_id);
        CHECK_EQ(alloc_live_bytes(), base);
        CHECK(n < 1000);
    }
    CHECK(failures > 20);

    /* Encoding and writing under failure report it. */
    sample_book(&a);
    struct jbuf w;
    jbuf_init(&w);
    alloc_fail_after(0);
    CHECK_EQ(order_book_encode(&a, &w), -1);
    CHECK_EQ(order_book_write_json(&a, &w), -1);
    alloc_fail_after(-1);
    jbuf_free(&w);
    order_book_free(&a);
    free(want);
    jbuf_free(&e);
}

/* --- regressions found by tests/fuzz/fuzz_order_book.c ----------------------- */

/* Events straight from JSON: quantities and times up to INT64_MAX are valid
 * integers, so the fold must not overflow on them. */
TEST(order_fold_huge_quantities_and_times)
{
    static const char *const evs[] = {
        "{\"id\":\"c\",\"type\":\"order_created\",\"ts\":100,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"currency\":\"EUR\",\"items\":[{\"product_id\":\"p1\",\"qty\":3,\"price\":1},"
        "{\"product_id\":\"p2\",\"qty\":2305843009213693951,\"price\":0},"
        "{\"product_id\":\"p2\",\"qty\":2305843009213693951,\"price\":0},"
        "{\"product_id\":\"p2\",\"qty\":2305843009213693951,\"price\":0},"
        "{\"product_id\":\"p2\",\"qty\":2305843009213693951,\"price\":0},"
        "{\"product_id\":\"p2\",\"qty\":2305843009213693951,\"price\":0}],\"amount\":3}",
        "{\"id\":\"p\",\"type\":\"order_paid\",\"ts\":200,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"amount\":3,\"payment_method\":\"card\"}",
        "{\"id\":\"s\",\"type\":\"order_shipped\",\"ts\":300,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"carrier\":\"DHL\"}",
        "{\"id\":\"d\",\"type\":\"order_delivered\",\"ts\":400,\"order_id\":\"o1\",\"user_id\":\"u1\"}",
        /* two items adding up past INT64_MAX */
        "{\"id\":\"r\",\"type\":\"return_requested\",\"ts\":500,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"return_id\":\"r1\",\"items\":[{\"product_id\":\"p1\",\"qty\":9223372036854775807},"
        "{\"product_id\":\"p1\",\"qty\":9223372036854775807}]}",
        /* the bought quantity of p2 adds up past INT64_MAX */
        "{\"id\":\"r2\",\"type\":\"return_requested\",\"ts\":600,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"return_id\":\"r2\",\"items\":[{\"product_id\":\"p2\",\"qty\":5}]}",
        "{\"id\":\"r3\",\"type\":\"return_requested\",\"ts\":700,\"order_id\":\"o1\",\"user_id\":\"u1\","
        "\"return_id\":\"r3\",\"items\":[{\"product_id\":\"p2\",\"qty\":9223372036854775807}]}",
    };
    struct order_book b;
    struct shop_event ev;
    char why[256];

    order_book_init(&b);
    shop_event_init(&ev);
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        CHECK_EQ(shop_event_parse(&ev, evs[i], strlen(evs[i]), why, sizeof why), 0);
        CHECK_EQ(order_book_add(&b, &ev), 0);
    }
    order_book_fold(&b, &rules_default);
    CHECK(!ev_of(&b, "c")->rejected);
    CHECK(ev_of(&b, "r")->rejected);
    CHECK(strstr(ev_of(&b, "r")->reason, "more than bought"));
    CHECK(!ev_of(&b, "r2")->rejected);
    /* 5 + INT64_MAX is still within the 5 x (INT64_MAX / 4) bought */
    CHECK(!ev_of(&b, "r3")->rejected);
    CHECK_EQ(b.status, ORDER_RETURN_REQUESTED);

    /* paid at the end of time: the deadline stops at INT64_MAX */
    static const char *const late[] = {
        "{\"id\":\"c\",\"type\":\"order_created\",\"ts\":9223372036854775000,\"order_id\":\"o2\","
        "\"user_id\":\"u1\",\"currency\":\"EUR\",\"items\":[{\"product_id\":\"p1\",\"qty\":1,"
        "\"price\":9223372036854775807}],\"amount\":9223372036854775807}",
        "{\"id\":\"c2\",\"type\":\"order_created\",\"ts\":9223372036854775000,\"order_id\":\"o2\","
        "\"user_id\":\"u1\",\"currency\":\"EUR\",\"items\":[{\"product_id\":\"p1\",\"qty\":1,"
        "\"price\":5}],\"amount\":5}",
        "{\"id\":\"p\",\"type\":\"order_paid\",\"ts\":9223372036854775000,\"order_id\":\"o2\","
        "\"user_id\":\"u1\",\"amount\":5,\"payment_method\":\"card\"}",
    };
    order_book_free(&b);
    order_book_init(&b);
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        CHECK_EQ(shop_event_parse(&ev, late[i], strlen(late[i]), why, sizeof why), 0);
        CHECK_EQ(order_book_add(&b, &ev), 0);
    }
    order_book_fold(&b, &rules_default);
    CHECK(strstr(ev_of(&b, "c")->reason, "overflows"));
    CHECK(!ev_of(&b, "c2")->rejected);
    CHECK_EQ(b.status, ORDER_PAID);
    CHECK_EQ(order_book_ship_deadline(&b, &rules_default), INT64_MAX);
    CHECK_EQ(order_book_sla_breached(&b, &rules_default, INT64_MAX), 0);
    shop_event_free(&ev);
    order_book_free(&b);
}

/* A stored book whose order_created has an item of quantity -46 and a price
 * near INT64_MAX (the fold multiplied them). */
TEST(order_decoded_negative_quantity_is_rejected)
{
    static const uint8_t in[] = {
        0x01, 0x01, 0x02, 0x6f, 0x32, 0x02, 0x75, 0x32, 0x03, 0x47, 0x42, 0x50, 0x05, 0x01, 0x01,
        0xd8, 0x04, 0xf8, 0x0a, 0x01, 0x63, 0x00, 0x01, 0x02, 0x70, 0x31, 0x5b, 0xf8, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x02, 0x00, 0xc8, 0x01, 0xf8, 0x0a, 0x01, 0x70,
        0x04, 0x63, 0x61, 0x72, 0x64, 0x00, 0x05, 0x00, 0xac, 0x02, 0x01, 0x01, 0x78, 0x04, 0x6c,
        0x61, 0x74, 0x65, 0x00, 0x11, 0x00, 0xd8, 0x04, 0xf8, 0x0a, 0x01, 0x66, 0x00, 0x00, 0x03,
        0x00, 0xa0, 0x06, 0x01, 0x01, 0x73, 0x03, 0x55, 0x50, 0x53, 0x00,
    };
    struct order_book b;
    order_book_init(&b);
    CHECK_EQ(decode_copy(&b, in, sizeof in), 0);
    const struct order_ev *c = ev_of(&b, "c");
    CHECK(c && c->nitems == 1 && c->items[0].qty == -46);
    order_book_fold(&b, &rules_default);
    c = ev_of(&b, "c"); /* the fold sorts the events */
    CHECK(c->rejected);
    if (!strstr(c->reason, "item p1 has quantity -46"))
        fprintf(stderr, "  reason: %s\n", c->reason);
    CHECK(strstr(c->reason, "item p1 has quantity -46"));
    CHECK(!b.created);
    CHECK(b.external); /* its refund counts as one of an unknown order */
    order_book_free(&b);
}
