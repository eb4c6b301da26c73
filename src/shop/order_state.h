/* order_state.h: one order's life, from its events on shop.orders and
 * shop.aftersales, and what shop.order-state says of it.
 *
 * An order book holds every event seen for one order_id (accepted or
 * rejected, at most ORDER_MAX_EVENTS).  Its state is a fold of those events
 * in event-time order (ts, then lifecycle step, then id), recomputed from
 * scratch whenever an event arrives.  So the state is a function of the set
 * of events, whatever order Kafka delivered them in, and a duplicate (same
 * id) changes nothing: the two properties that make a crash, a replay or a
 * rebalance produce exactly the same shop.order-state.
 *
 * The fold is the order state machine of DESIGN.md:
 *
 *   created --paid--> paid --shipped--> shipped --delivered--> delivered
 *   created|paid --cancelled--> cancelled
 *   delivered --return_requested--> return_requested (within the return
 *     window, items bought and not already returned)
 *   return: requested --approved|rejected-->, approved --received-->
 *   refund_issued: never above paid minus refunded; for a return that is
 *     approved or received, or for an order cancelled after payment
 *     --> partially_refunded | refunded
 *
 * An event that breaks a rule is rejected with a reason (for
 * shop.deadletter) and leaves the state as it was.  A refund for an order
 * the stream never saw created (Online Retail's cancelled invoices, orders
 * older than the stream) is accepted as an "external" order when
 * rules.accept_orphan_refunds is set.
 *
 * Stored form (the changelog value), little-endian varints, version 1:
 *   u8 version, u8 flags (bit0 sla_alerted), str order_id, str user_id,
 *   str currency, varint nevents, then per event: u8 type, u8 flags (bit0
 *   deadlettered), zz ts, zz amount, str id, str aux, varint nitems, per
 *   item: str product_id, zz qty, zz price.
 * (str = varint length + bytes; aux = return_id for after-sales events,
 * currency / payment_method / carrier / reason for order_created / paid /
 * shipped / cancelled.) */
#ifndef SHOPSTREAM_ORDER_STATE_H
#define SHOPSTREAM_ORDER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "shop/event.h"
#include "shop/json.h"

#define ORDER_MAX_EVENTS 64
#define ORDER_REASON_BYTES 160

/* Every status an order can be in (DESIGN.md, shop.order-state). */
enum order_status {
    ORDER_NONE = 0,              /* no accepted event yet */
    ORDER_CREATED,               /* order_created accepted */
    ORDER_PAID,                  /* payment received */
    ORDER_SHIPPED,               /* handed to the carrier */
    ORDER_DELIVERED,             /* delivered to the customer */
    ORDER_CANCELLED,             /* cancelled before shipping */
    ORDER_RETURN_REQUESTED,      /* a return is open (requested, approved or received) */
    ORDER_PARTIALLY_REFUNDED,    /* some of the payment refunded */
    ORDER_REFUNDED,              /* the whole payment refunded */
};

enum return_status {
    RETURN_REQUESTED,
    RETURN_APPROVED,
    RETURN_REJECTED,
    RETURN_RECEIVED,
    RETURN_REFUNDED,
};

struct order_rules {
    int64_t return_window_ms;     /* return_requested at most this long after delivery */
    int64_t ship_sla_ms;          /* paid but not shipped after this: an SLA alert */
    int accept_orphan_refunds;    /* refunds of orders never created: accept (1) or reject */
};

#define ORDER_DEFAULT_RETURN_WINDOW_MS (30LL * 24 * 3600 * 1000)
#define ORDER_DEFAULT_SHIP_SLA_MS (48LL * 3600 * 1000)

struct order_item {
    char *product_id;            /* owned */
    int64_t qty;
    int64_t price;               /* -1 when absent */
};

/* One stored event. */
struct order_ev {
    enum shop_event_type type;
    int64_t ts;
    int64_t amount;              /* -1 when absent */
    char *id;                    /* owned */
    char *aux;                   /* owned; see the stored form above; "" if none */
    struct order_item *items;    /* owned, nitems */
    size_t nitems;
    int deadlettered;            /* its rejection was reported (stored) */
    int rejected;                /* set by the fold */
    char reason[ORDER_REASON_BYTES]; /* why, when rejected (set by the fold) */
};

struct order_return {
    const char *return_id;       /* view into the event */
    enum return_status status;
    const struct order_ev *request; /* the return_requested event */
    int64_t ts;                  /* of the last step */
};

struct order_refund {
    const char *id;              /* view: the refund_issued event's id */
    const char *return_id;       /* view; "" when not for a return */
    int64_t amount;
    int64_t ts;
};

struct order_book {
    char *order_id, *user_id, *currency; /* owned; "" when unknown */
    struct order_ev *ev;         /* nev events, in fold order after a fold */
    size_t nev;
    int sla_alerted;             /* an SLA alert was sent (stored) */

    /* derived by order_book_fold */
    enum order_status status;
    int external;                /* refunded but never created in the stream */
    int64_t amount, paid, refunded;
    int64_t created_ts, paid_ts, shipped_ts, delivered_ts, cancelled_ts;
    int64_t return_requested_ts, refunded_ts, last_ts;  /* -1 when not reached */
    size_t accepted;
    const struct order_ev *created; /* the accepted order_created, or NULL */
    struct order_return returns[ORDER_MAX_EVENTS];
    size_t nreturns;
    struct order_refund refunds[ORDER_MAX_EVENTS];
    size_t nrefunds;
};

void order_book_init(struct order_book *b);
void order_book_free(struct order_book *b);

/* Loads a stored book (replacing b's content).  Returns 0, or -1 when the
 * bytes are not a valid stored book (b is then empty). */
int order_book_decode(struct order_book *b, const void *p, size_t n);

/* Appends b's stored form to out.  Returns 0 or -1 (out of memory). */
int order_book_encode(const struct order_book *b, struct jbuf *out);

/* Adds ev (an event of shop.orders or shop.aftersales whose key is b's
 * order).  Returns 0 when added, 1 when an event with the same id is
 * already there (nothing changes), 2 when the book is full (the event is
 * not kept), -1 when out of memory. */
int order_book_add(struct order_book *b, const struct shop_event *ev);

/* Recomputes the derived state and every event's verdict. */
void order_book_fold(struct order_book *b, const struct order_rules *rules);

/* The order's deadline for shipping (paid_ts + SLA), or -1 when no SLA
 * applies (not paid).  Valid after a fold. */
int64_t order_book_ship_deadline(const struct order_book *b, const struct order_rules *rules);

/* 1 when the order breached its shipping SLA as of watermark wm: paid,
 * deadline < wm, and not shipped or cancelled by the deadline. */
int order_book_sla_breached(const struct order_book *b, const struct order_rules *rules,
                            int64_t wm);

/* Appends the shop.order-state JSON of b to out (fixed member order, so the
 * same state is the same bytes).  Returns 0 or -1. */
int order_book_write_json(const struct order_book *b, struct jbuf *out);

const char *order_status_name(enum order_status s);
const char *return_status_name(enum return_status s);

#endif
