/* proc_orders.c: the order processor (processors.h).  For each record of
 * shop.orders or shop.aftersales: parse and check the event (a bad record
 * goes to shop.deadletter), add it to its order's book, fold, store the book
 * (the changelog), report newly rejected events, and publish the order's
 * state to shop.order-state.  An SLA timer per paid order fires when the
 * watermark of its shop.orders partition passes paid + SLA + lateness.
 *
 * Every output is a function of the order's event set: a duplicate or a
 * replay after a crash publishes the same state again, which is harmless on
 * a compacted topic. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "shop/proc_private.h"

enum { IN_ORDERS = 0, IN_AFTERSALES = 1 };

/* Loads the book of key into p->book (empty when the key has none). */
static int load_book(struct proc *p, struct stream_ctx *c, const void *key, size_t klen)
{
    size_t vlen;
    const void *v = stream_get(c, key, klen, &vlen);

    order_book_free(&p->book);
    if (v && order_book_decode(&p->book, v, vlen) < 0) {
        /* Only a changelog written by another version or damaged could do
         * this; starting the order afresh beats stopping the processor. */
        log_warn("orders: stored state of %.*s is unreadable; starting it afresh", (int)klen,
                 (const char *)key);
        order_book_free(&p->book);
    }
    return 0;
}

static int store_book(struct proc *p, struct stream_ctx *c)
{
    jbuf_reset(&p->state);
    if (order_book_encode(&p->book, &p->state) < 0)
        return -1;
    return stream_put(c, p->book.order_id, strlen(p->book.order_id), p->state.p, p->state.len);
}

static int publish_state(struct proc *p, struct stream_ctx *c)
{
    if (p->book.accepted == 0)
        return 0;
    jbuf_reset(&p->out);
    if (order_book_write_json(&p->book, &p->out) < 0)
        return -1;
    PROC_ADD(p->n.results, 1);
    return stream_emit(c, SHOP_TOPIC_ORDER_STATE, -1, p->book.order_id,
                       strlen(p->book.order_id), p->out.p, p->out.len, p->book.last_ts);
}

/* Rebuilds a stored event as an event (views into b and e). */
static void stored_event(const struct order_book *b, const struct order_ev *e,
                         struct shop_event *out, struct shop_item *items, size_t max_items)
{
    struct shop_str aux = shop_str_c(e->aux[0] ? e->aux : NULL);

    memset(out, 0, sizeof *out);
    out->type = e->type;
    out->id = shop_str_c(e->id);
    out->ts = e->ts;
    out->order_id = shop_str_c(b->order_id);
    out->user_id = shop_str_c(b->user_id);
    out->amount = e->amount;
    out->price = -1;
    switch (e->type) {
    case SHOP_EV_ORDER_PAID: out->payment_method = aux; break;
    case SHOP_EV_ORDER_SHIPPED: out->carrier = aux; break;
    case SHOP_EV_ORDER_CANCELLED: out->reason = aux; break;
    default: out->return_id = aux; break;
    }
    for (size_t k = 0; k < e->nitems && k < max_items; k++) {
        items[k].product_id = shop_str_c(e->items[k].product_id);
        items[k].qty = e->items[k].qty;
        items[k].price = e->items[k].price;
        out->nitems = k + 1;
    }
    out->items = items;
}

/* A rejected event whose record is no longer at hand (it arrived earlier,
 * and its verdict settled later): the dead letter carries the event as
 * stored. */
static int deadletter_stored(struct proc *p, struct stream_ctx *c, const struct order_ev *e)
{
    struct jbuf *o = &p->aux;
    const char *oid = p->book.order_id;
    struct shop_event ev;
    struct shop_item *items = xcalloc(e->nitems ? e->nitems : 1, sizeof *items);
    int rc;

    if (!items)
        return -1;
    stored_event(&p->book, e, &ev, items, e->nitems);
    jbuf_reset(o);
    json_w_obj_begin(o, NULL);
    json_w_cstr(o, "reason", e->reason);
    json_w_cstr(o, "processor", p->name);
    json_w_cstr(o, "topic", shop_stream_topic(shop_event_stream(e->type)));
    json_w_cstr(o, "key", oid);
    /* The event goes in as a member holding its own JSON; the writer has no
     * call for a raw member, so the object is closed by hand. */
    jbuf_reset(&p->state);
    rc = shop_event_write(&ev, &p->state);
    xfree(items);
    if (rc < 0)
        return -1;
    jbuf_raw(o, ",\"event\":", 9);
    jbuf_raw(o, p->state.p, p->state.len);
    jbuf_raw(o, "}", 1);
    if (o->oom)
        return -1;
    PROC_ADD(p->n.deadletters, 1);
    return stream_emit(c, SHOP_TOPIC_DEADLETTER, -1, oid, strlen(oid), o->p, o->len, e->ts);
}

/* Reports the rejected events whose verdict is settled: the watermark of
 * the order's shop.orders partition has passed them by the lateness, so no
 * earlier order event can still arrive and change it.  r is the record being
 * processed (its event gets the original record in its dead letter), or NULL
 * in a timer.  Unsettled rejections get a timer.  Sets *changed. */
static int settle_rejections(struct proc *p, struct stream_ctx *c, const struct stream_record *r,
                             int *changed)
{
    int64_t wm = stream_watermark(c, IN_ORDERS);
    int64_t settled_before = wm == INT64_MIN ? INT64_MIN : wm - p->s.lateness_ms;

    for (size_t k = 0; k < p->book.nev; k++) {
        struct order_ev *e = &p->book.ev[k];
        int rc;
        if (!e->rejected || e->deadlettered)
            continue;
        if (e->ts >= settled_before) {
            if (stream_timer_at(c, IN_ORDERS, p->book.order_id, strlen(p->book.order_id),
                                e->ts + p->s.lateness_ms) < 0)
                return -1;
            continue;
        }
        e->deadlettered = 1;
        *changed = 1;
        if (r && strcmp(e->id, p->ev.id.p) == 0)
            rc = proc__deadletter(p, c, r, e->reason);
        else
            rc = deadletter_stored(p, c, e);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The newest event time of the book, accepted or not. */
static int64_t newest_ts(const struct order_book *b)
{
    int64_t t = INT64_MIN;
    for (size_t k = 0; k < b->nev; k++)
        if (b->ev[k].ts > t)
            t = b->ev[k].ts;
    return t;
}

/* The order is forgotten (its state leaves the store; shop.order-state
 * keeps its last value) once its partition's watermark is order_retention_ms
 * past its newest event: well after the return window, so that only a very
 * late event would find the order gone (and start it afresh). */
static int set_retention_timer(struct proc *p, struct stream_ctx *c)
{
    int64_t t = newest_ts(&p->book);
    if (t == INT64_MIN || t > INT64_MAX - p->s.order_retention_ms - p->s.lateness_ms)
        return 0;
    return stream_timer_at(c, IN_ORDERS, p->book.order_id, strlen(p->book.order_id),
                           t + p->s.order_retention_ms);
}

static int set_sla_timer(struct proc *p, struct stream_ctx *c)
{
    const struct order_book *b = &p->book;
    int64_t deadline = order_book_ship_deadline(b, &p->s.rules);

    if (deadline < 0 || b->sla_alerted || (b->shipped_ts >= 0 && b->shipped_ts <= deadline) ||
        (b->cancelled_ts >= 0 && b->cancelled_ts <= deadline))
        return 0;
    return stream_timer_at(c, IN_ORDERS, b->order_id, strlen(b->order_id),
                           deadline + p->s.lateness_ms);
}

static int orders_process(struct stream_ctx *c, const struct stream_record *r)
{
    struct proc *p = stream_opaque(c);
    struct shop_str key;
    int rc, was_paid_unshipped;

    if ((rc = proc__take_event(p, c, r)) != 0)
        return rc < 0 ? -1 : 0;
    key = shop_event_key(&p->ev);
    load_book(p, c, key.p, key.n);
    int was_new = p->book.order_id == NULL;
    int64_t was_newest = newest_ts(&p->book);
    order_book_fold(&p->book, &p->s.rules);
    was_paid_unshipped = p->book.paid_ts >= 0 && p->book.shipped_ts < 0;
    rc = order_book_add(&p->book, &p->ev);
    if (rc < 0)
        return -1;
    if (rc == 2)
        return proc__deadletter(p, c, r, "the order has too many events");
    if (rc == 1) {
        /* A duplicate: publish the same state again (the first publication
         * may have been lost in a crash after the state was stored). */
        PROC_ADD(p->n.duplicates, 1);
        return publish_state(p, c);
    }
    order_book_fold(&p->book, &p->s.rules);
    if (settle_rejections(p, c, r, &rc) < 0)
        return -1;
    if (store_book(p, c) < 0 || publish_state(p, c) < 0)
        return -1;
    if (was_new)
        PROC_ADD(p->n.orders_held, 1);
    if (p->ev.ts > was_newest && set_retention_timer(p, c) < 0)
        return -1;
    if (!was_paid_unshipped && p->book.paid_ts >= 0 && set_sla_timer(p, c) < 0)
        return -1;
    return 0;
}

/* A timer of an order: report rejections that have settled, and an SLA
 * breach once the watermark has passed the shipping deadline. */
static int orders_timer(struct stream_ctx *c, int input, const void *key, size_t klen, int64_t at)
{
    struct proc *p = stream_opaque(c);
    struct order_book *b = &p->book;
    int64_t deadline;
    int changed = 0;

    (void)input;
    (void)at;
    load_book(p, c, key, klen);
    if (!b->order_id)
        return 0;
    if (stream_watermark(c, IN_ORDERS) != INT64_MIN &&
        newest_ts(b) < stream_watermark(c, IN_ORDERS) - p->s.order_retention_ms) {
        PROC_ADD(p->n.orders_held, -1);
        PROC_ADD(p->n.orders_forgotten, 1);
        return stream_del(c, key, klen);
    }
    order_book_fold(b, &p->s.rules);
    if (settle_rejections(p, c, NULL, &changed) < 0)
        return -1;
    if (!b->sla_alerted && stream_watermark(c, IN_ORDERS) != INT64_MIN &&
        order_book_sla_breached(b, &p->s.rules, stream_watermark(c, IN_ORDERS) - p->s.lateness_ms)) {
        char id[SHOP_MAX_ID_BYTES + 16];

        deadline = order_book_ship_deadline(b, &p->s.rules);
        b->sla_alerted = 1;
        changed = 1;
        snprintf(id, sizeof id, "sla-%s", b->order_id);
        jbuf_reset(&p->out);
        json_w_obj_begin(&p->out, NULL);
        json_w_cstr(&p->out, "id", id);
        json_w_cstr(&p->out, "type", "sla_breach");
        json_w_int(&p->out, "ts", deadline);
        json_w_cstr(&p->out, "order_id", b->order_id);
        json_w_cstr(&p->out, "user_id", b->user_id ? b->user_id : "");
        json_w_int(&p->out, "paid_ts", b->paid_ts);
        json_w_int(&p->out, "deadline", deadline);
        json_w_int(&p->out, "sla_ms", p->s.rules.ship_sla_ms);
        json_w_cstr(&p->out, "message", "paid but not shipped within the SLA");
        json_w_obj_end(&p->out);
        if (proc__alert(p, c, b->order_id, deadline) < 0)
            return -1;
    }
    if (!changed)
        return 0;
    if (store_book(p, c) < 0)
        return -1;
    return publish_state(p, c);
}

static void orders_restored(struct stream_ctx *c, const void *key, size_t klen, const void *val,
                            size_t vlen)
{
    struct proc *p = stream_opaque(c);

    (void)key;
    (void)klen;
    order_book_free(&p->book);
    if (order_book_decode(&p->book, val, vlen) < 0)
        return;
    order_book_fold(&p->book, &p->s.rules);
    PROC_ADD(p->n.orders_held, 1);
    set_sla_timer(p, c);
    set_retention_timer(p, c);
    for (size_t k = 0; k < p->book.nev; k++)
        if (p->book.ev[k].rejected && !p->book.ev[k].deadlettered)
            stream_timer_at(c, IN_ORDERS, key, klen, p->book.ev[k].ts + p->s.lateness_ms);
}

void proc__orders_conf(struct proc *p, struct stream_app_conf *conf)
{
    (void)p;
    conf->inputs[IN_ORDERS] = SHOP_TOPIC_ORDERS;
    conf->inputs[IN_AFTERSALES] = SHOP_TOPIC_AFTERSALES;
    conf->ninputs = 2;
    conf->stateful = 1;
    conf->ordered_inputs = 2;
    conf->process = orders_process;
    conf->timer = orders_timer;
    conf->restored = orders_restored;
}
