/* event.h: the e-commerce events of DESIGN.md ("Event contract"): their
 * types, the topic each belongs to, parsing one JSON event into a struct with
 * every required field checked, and writing an event back as JSON.
 *
 * Required fields (beside id, type, ts on every event):
 *   shop.orders      order_id, user_id; order_created: items (>= 1 item, each
 *                    product_id, qty > 0, price >= 0), amount, currency;
 *                    order_paid: amount, payment_method; order_shipped:
 *                    carrier; order_cancelled: reason.
 *   shop.clicks      user_id, session_id; product_view, add_to_cart,
 *                    remove_from_cart: product_id; search: query; purchase:
 *                    order_id.  category and price are optional.
 *   shop.aftersales  order_id, user_id; return_*: return_id;
 *                    return_requested: items (each product_id, qty > 0);
 *                    refund_issued: amount.  reason, items and return_id are
 *                    optional where not listed.
 * Integers (ts, amount, qty, price) must be JSON integers >= 0 (qty > 0);
 * money is in minor units.  Unknown members are ignored, so producers may add
 * fields.  Known members are checked whatever the type (a string "amount" on
 * a page_view is an error).  A member given as null counts as absent; a member
 * given twice keeps its last value.  A record that fails any rule is rejected
 * with a one-line reason, which the processors put in shop.deadletter. */
#ifndef SHOPSTREAM_EVENT_H
#define SHOPSTREAM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "shop/json.h"

#define SHOP_TOPIC_ORDERS "shop.orders"
#define SHOP_TOPIC_CLICKS "shop.clicks"
#define SHOP_TOPIC_AFTERSALES "shop.aftersales"
#define SHOP_TOPIC_ORDER_STATE "shop.order-state"
#define SHOP_TOPIC_KPIS "shop.kpis"
#define SHOP_TOPIC_RECS "shop.recs"
#define SHOP_TOPIC_ALERTS "shop.alerts"
#define SHOP_TOPIC_DEADLETTER "shop.deadletter"

/* Limits on one event (a longer one is rejected, not truncated). */
#define SHOP_MAX_EVENT_BYTES (1 << 20)
#define SHOP_MAX_ITEMS 4096
#define SHOP_MAX_ID_BYTES 256   /* id, order_id, user_id, ... */

enum shop_event_type {
    SHOP_EV_UNKNOWN = 0,
    /* shop.orders */
    SHOP_EV_ORDER_CREATED,
    SHOP_EV_ORDER_PAID,
    SHOP_EV_ORDER_SHIPPED,
    SHOP_EV_ORDER_DELIVERED,
    SHOP_EV_ORDER_CANCELLED,
    /* shop.clicks */
    SHOP_EV_PAGE_VIEW,
    SHOP_EV_PRODUCT_VIEW,
    SHOP_EV_SEARCH,
    SHOP_EV_ADD_TO_CART,
    SHOP_EV_REMOVE_FROM_CART,
    SHOP_EV_CHECKOUT,
    SHOP_EV_PURCHASE,
    /* shop.aftersales */
    SHOP_EV_RETURN_REQUESTED,
    SHOP_EV_RETURN_APPROVED,
    SHOP_EV_RETURN_REJECTED,
    SHOP_EV_RETURN_RECEIVED,
    SHOP_EV_REFUND_ISSUED,
    SHOP_EV__COUNT
};

/* The input stream (topic) an event type belongs to. */
enum shop_stream {
    SHOP_STREAM_ORDERS,
    SHOP_STREAM_CLICKS,
    SHOP_STREAM_AFTERSALES,
};

/* A string view: p == NULL means the member was absent.  When parsed, p is
 * NUL-terminated and points into the event's own storage. */
struct shop_str {
    const char *p;
    size_t n;
};

struct shop_item {
    struct shop_str product_id;
    int64_t qty;
    int64_t price;      /* minor units; -1 when absent (aftersales items) */
};

/* One event.  After shop_event_parse, every view points into storage owned
 * by the struct and stays valid until the next parse or shop_event_free.
 * Writers (simulate, replay) may instead fill the fields by hand with views
 * of their own memory and pass the struct to shop_event_write; init sets
 * amount and price to -1 (absent). */
struct shop_event {
    enum shop_event_type type;
    struct shop_str id;
    int64_t ts;                   /* event time, ms since the epoch, UTC */
    struct shop_str order_id, user_id, session_id, product_id, category, query;
    struct shop_str currency, payment_method, carrier, reason, return_id;
    int64_t amount;               /* minor units; -1 when absent */
    int64_t price;                /* clicks: minor units; -1 when absent */
    struct shop_item *items;      /* nitems entries */
    size_t nitems;

    /* storage owned by the parser; reused from one parse to the next */
    char *scratch;
    size_t scratch_cap;
    size_t items_cap;
};

void shop_event_init(struct shop_event *ev);
void shop_event_free(struct shop_event *ev);

/* Parses and validates one event from json[0..len) (borrowed for the call
 * only: every string is copied into the event's storage).  Returns 0, or -1
 * with a one-line reason written to reason[0..reason_size) (reason may be
 * NULL) such as "not valid JSON at byte 17: expected ':', found '1'",
 * "unknown type \"foo\"", "missing field order_id", "field qty must be an
 * integer > 0 (item 2)", "out of memory".  After -1 every field reads as
 * absent.  The event's storage only grows, so once it has held the largest
 * record, parsing does not allocate. */
int shop_event_parse(struct shop_event *ev, const char *json, size_t len, char *reason,
                     size_t reason_size);

/* Writes ev as one JSON object (members id, type, ts, then the fields that
 * are present, in a fixed order) appended to out.  Returns 0, or -1 when out
 * ran out of memory. */
int shop_event_write(const struct shop_event *ev, struct jbuf *out);

/* "order_created" etc.; NULL for SHOP_EV_UNKNOWN or out of range. */
const char *shop_event_type_name(enum shop_event_type t);
/* The type named by s[0..n), or SHOP_EV_UNKNOWN. */
enum shop_event_type shop_event_type_parse(const char *s, size_t n);
enum shop_stream shop_event_stream(enum shop_event_type t); /* ORDERS for UNKNOWN */
/* SHOP_TOPIC_ORDERS etc. for a stream; NULL when out of range. */
const char *shop_stream_topic(enum shop_stream s);
/* The record key of an event: order_id for orders and aftersales, user_id
 * for clicks (a view into ev). */
struct shop_str shop_event_key(const struct shop_event *ev);

/* Convenience for writers: a view of a C string (NULL stays absent). */
struct shop_str shop_str_c(const char *s);

#endif
