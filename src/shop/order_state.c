/* order_state.c: see order_state.h.  The after-sales rules (returns and
 * refunds) are part of the same fold, because a refund can only be judged
 * against the order's payment and delivery; they are kept together in
 * fold_aftersales() below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/varint.h"
#include "shop/order_state.h"

#define STORED_VERSION 1

static const char *const status_names[] = {
    [ORDER_NONE] = "none",
    [ORDER_CREATED] = "created",
    [ORDER_PAID] = "paid",
    [ORDER_SHIPPED] = "shipped",
    [ORDER_DELIVERED] = "delivered",
    [ORDER_CANCELLED] = "cancelled",
    [ORDER_RETURN_REQUESTED] = "return_requested",
    [ORDER_PARTIALLY_REFUNDED] = "partially_refunded",
    [ORDER_REFUNDED] = "refunded",
};

static const char *const return_names[] = {
    [RETURN_REQUESTED] = "requested", [RETURN_APPROVED] = "approved",
    [RETURN_REJECTED] = "rejected",   [RETURN_RECEIVED] = "received",
    [RETURN_REFUNDED] = "refunded",
};

const char *order_status_name(enum order_status s)
{
    return (unsigned)s <= ORDER_REFUNDED ? status_names[s] : "none";
}

const char *return_status_name(enum return_status s)
{
    return (unsigned)s <= RETURN_REFUNDED ? return_names[s] : "requested";
}

void order_book_init(struct order_book *b)
{
    memset(b, 0, sizeof *b);
}

static void ev_free(struct order_ev *e)
{
    xfree(e->id);
    xfree(e->aux);
    for (size_t k = 0; k < e->nitems; k++)
        xfree(e->items[k].product_id);
    xfree(e->items);
}

void order_book_free(struct order_book *b)
{
    for (size_t k = 0; k < b->nev; k++)
        ev_free(&b->ev[k]);
    xfree(b->ev);
    xfree(b->order_id);
    xfree(b->user_id);
    xfree(b->currency);
    memset(b, 0, sizeof *b);
}

static char *dup_str(struct shop_str s)
{
    return xstrndup(s.p ? s.p : "", s.p ? s.n : 0);
}

/* --- adding ---------------------------------------------------------------- */

int order_book_add(struct order_book *b, const struct shop_event *ev)
{
    struct order_ev *e;
    struct shop_str aux = {NULL, 0};
    /* Ids are kept (and stored) as C strings, so an id holding a NUL
     * (JSON "\u0000") is compared up to it, as it will be after a reload. */
    size_t idn = ev->id.p ? strnlen(ev->id.p, ev->id.n) : 0;

    for (size_t k = 0; k < b->nev; k++)
        if (strlen(b->ev[k].id) == idn && (!idn || !memcmp(b->ev[k].id, ev->id.p, idn)))
            return 1;
    if (b->nev >= ORDER_MAX_EVENTS)
        return 2;
    if (!b->ev && !(b->ev = xcalloc(ORDER_MAX_EVENTS, sizeof *b->ev)))
        return -1;
    if (!b->order_id && !(b->order_id = dup_str(ev->order_id)))
        return -1;
    /* The first event that names a user names the order's user. */
    if ((!b->user_id || !b->user_id[0]) && ev->user_id.p) {
        xfree(b->user_id);
        if (!(b->user_id = dup_str(ev->user_id)))
            return -1;
    }
    if (ev->type == SHOP_EV_ORDER_CREATED && ev->currency.p && (!b->currency || !b->currency[0])) {
        xfree(b->currency);
        if (!(b->currency = dup_str(ev->currency)))
            return -1;
    }
    switch (ev->type) {
    case SHOP_EV_ORDER_PAID: aux = ev->payment_method; break;
    case SHOP_EV_ORDER_SHIPPED: aux = ev->carrier; break;
    case SHOP_EV_ORDER_CANCELLED: aux = ev->reason; break;
    case SHOP_EV_ORDER_CREATED: aux = ev->currency; break;
    default:
        if (shop_event_stream(ev->type) == SHOP_STREAM_AFTERSALES)
            aux = ev->return_id;
        break;
    }
    e = &b->ev[b->nev];
    memset(e, 0, sizeof *e);
    e->type = ev->type;
    e->ts = ev->ts;
    e->amount = ev->amount;
    if (!(e->id = dup_str(ev->id)) || !(e->aux = dup_str(aux)))
        goto oom;
    if (ev->nitems) {
        if (!(e->items = xcalloc(ev->nitems, sizeof *e->items)))
            goto oom;
        for (size_t k = 0; k < ev->nitems; k++) {
            e->nitems = k + 1;
            if (!(e->items[k].product_id = dup_str(ev->items[k].product_id)))
                goto oom;
            e->items[k].qty = ev->items[k].qty;
            e->items[k].price = ev->items[k].price;
        }
    }
    b->nev++;
    return 0;
oom:
    ev_free(e);
    memset(e, 0, sizeof *e);
    return -1;
}

/* --- stored form ----------------------------------------------------------- */

static void put_u(struct jbuf *o, uint64_t v)
{
    uint8_t tmp[10];
    jbuf_raw(o, (const char *)tmp, varint_put_u64(tmp, v));
}

static void put_zz(struct jbuf *o, int64_t v)
{
    uint8_t tmp[10];
    jbuf_raw(o, (const char *)tmp, varint_put_zz64(tmp, v));
}

static void put_str(struct jbuf *o, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u(o, n);
    jbuf_raw(o, s ? s : "", n);
}

int order_book_encode(const struct order_book *b, struct jbuf *o)
{
    char hdr[2] = {STORED_VERSION, (char)(b->sla_alerted ? 1 : 0)};

    jbuf_raw(o, hdr, 2);
    put_str(o, b->order_id);
    put_str(o, b->user_id);
    put_str(o, b->currency);
    put_u(o, b->nev);
    for (size_t k = 0; k < b->nev; k++) {
        const struct order_ev *e = &b->ev[k];
        char f[2] = {(char)e->type, (char)(e->deadlettered ? 1 : 0)};
        jbuf_raw(o, f, 2);
        put_zz(o, e->ts);
        put_zz(o, e->amount);
        put_str(o, e->id);
        put_str(o, e->aux);
        put_u(o, e->nitems);
        for (size_t j = 0; j < e->nitems; j++) {
            put_str(o, e->items[j].product_id);
            put_zz(o, e->items[j].qty);
            put_zz(o, e->items[j].price);
        }
    }
    return o->oom ? -1 : 0;
}

struct rd {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t get_u(struct rd *r)
{
    uint64_t v = 0;
    size_t n = r->bad ? 0 : varint_get_u64(r->p, r->end, 10, &v);
    if (!n)
        r->bad = 1;
    r->p += n;
    return v;
}

static int64_t get_zz(struct rd *r)
{
    int64_t v = 0;
    size_t n = r->bad ? 0 : varint_get_zz64(r->p, r->end, &v);
    if (!n)
        r->bad = 1;
    r->p += n;
    return v;
}

static uint8_t get_u8(struct rd *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

/* Returns an owned copy, or NULL (r->bad set) on truncation or OOM. */
static char *get_str(struct rd *r)
{
    uint64_t n = get_u(r);
    char *s;

    if (r->bad || n > SHOP_MAX_EVENT_BYTES || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return NULL;
    }
    if (!(s = xstrndup((const char *)r->p, (size_t)n))) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    return s;
}

int order_book_decode(struct order_book *b, const void *p, size_t n)
{
    struct rd r = {p, (const uint8_t *)p + n, 0};
    uint64_t nev;

    order_book_free(b);
    if (get_u8(&r) != STORED_VERSION)
        goto bad;
    b->sla_alerted = get_u8(&r) & 1;
    b->order_id = get_str(&r);
    b->user_id = get_str(&r);
    b->currency = get_str(&r);
    nev = get_u(&r);
    if (r.bad || nev > ORDER_MAX_EVENTS)
        goto bad;
    if (!(b->ev = xcalloc(ORDER_MAX_EVENTS, sizeof *b->ev)))
        goto bad;
    for (uint64_t k = 0; k < nev; k++) {
        struct order_ev *e = &b->ev[k];
        uint64_t ni;

        b->nev = k + 1;
        e->type = get_u8(&r);
        e->deadlettered = get_u8(&r) & 1;
        e->ts = get_zz(&r);
        e->amount = get_zz(&r);
        e->id = get_str(&r);
        e->aux = get_str(&r);
        ni = get_u(&r);
        if (r.bad || e->type <= SHOP_EV_UNKNOWN || e->type >= SHOP_EV__COUNT ||
            ni > SHOP_MAX_ITEMS || ni > (uint64_t)(r.end - r.p))
            goto bad;
        if (ni && !(e->items = xcalloc(ni, sizeof *e->items)))
            goto bad;
        for (uint64_t j = 0; j < ni; j++) {
            e->nitems = j + 1;
            e->items[j].product_id = get_str(&r);
            e->items[j].qty = get_zz(&r);
            e->items[j].price = get_zz(&r);
        }
        if (r.bad)
            goto bad;
    }
    if (r.bad || r.p != r.end)
        goto bad;
    return 0;
bad:
    order_book_free(b);
    return -1;
}

/* --- the fold -------------------------------------------------------------- */

/* Lifecycle rank: events at the same instant apply in this order (Online
 * Retail's order_created and order_paid share a timestamp). */
static int rank(enum shop_event_type t)
{
    switch (t) {
    case SHOP_EV_ORDER_CREATED: return 0;
    case SHOP_EV_ORDER_PAID: return 1;
    case SHOP_EV_ORDER_CANCELLED: return 2;
    case SHOP_EV_ORDER_SHIPPED: return 3;
    case SHOP_EV_ORDER_DELIVERED: return 4;
    case SHOP_EV_RETURN_REQUESTED: return 5;
    case SHOP_EV_RETURN_APPROVED: return 6;
    case SHOP_EV_RETURN_REJECTED: return 6;
    case SHOP_EV_RETURN_RECEIVED: return 7;
    case SHOP_EV_REFUND_ISSUED: return 8;
    default: return 9;
    }
}

static int ev_cmp(const void *pa, const void *pb)
{
    const struct order_ev *a = pa, *b = pb;

    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (rank(a->type) != rank(b->type))
        return rank(a->type) - rank(b->type);
    return strcmp(a->id, b->id);
}

#define REJECT(e, ...)                                                 \
    do {                                                               \
        (e)->rejected = 1;                                             \
        snprintf((e)->reason, sizeof (e)->reason, __VA_ARGS__);        \
        return;                                                        \
    } while (0)

static struct order_return *find_return(struct order_book *b, const char *return_id)
{
    if (!return_id || !return_id[0])
        return NULL;
    for (size_t k = 0; k < b->nreturns; k++)
        if (!strcmp(b->returns[k].return_id, return_id))
            return &b->returns[k];
    return NULL;
}

static int has_open_return(const struct order_book *b)
{
    for (size_t k = 0; k < b->nreturns; k++)
        if (b->returns[k].status == RETURN_REQUESTED || b->returns[k].status == RETURN_APPROVED ||
            b->returns[k].status == RETURN_RECEIVED)
            return 1;
    return 0;
}

/* The status an order settles in when no return is open. */
static enum order_status settled_status(const struct order_book *b)
{
    if (b->refunded > 0)
        return b->refunded >= b->paid ? ORDER_REFUNDED : ORDER_PARTIALLY_REFUNDED;
    if (b->cancelled_ts >= 0)
        return ORDER_CANCELLED;
    return ORDER_DELIVERED;
}

/* a + b for quantities (both >= 0), stopping at INT64_MAX instead of
 * overflowing: a JSON quantity may be as large as INT64_MAX. */
static int64_t qty_add(int64_t a, int64_t b)
{
    return b > INT64_MAX - a ? INT64_MAX : a + b;
}

static int64_t bought_qty(const struct order_book *b, const char *product_id)
{
    int64_t q = 0;
    if (!b->created)
        return 0;
    for (size_t k = 0; k < b->created->nitems; k++)
        if (!strcmp(b->created->items[k].product_id, product_id))
            q = qty_add(q, b->created->items[k].qty);
    return q;
}

/* Quantity of product_id in returns that were not rejected. */
static int64_t returned_qty(const struct order_book *b, const char *product_id)
{
    int64_t q = 0;
    for (size_t k = 0; k < b->nreturns; k++) {
        const struct order_return *r = &b->returns[k];
        if (r->status == RETURN_REJECTED)
            continue;
        for (size_t j = 0; j < r->request->nitems; j++)
            if (!strcmp(r->request->items[j].product_id, product_id))
                q = qty_add(q, r->request->items[j].qty);
    }
    return q;
}

static void fold_order_event(struct order_book *b, struct order_ev *e)
{
    switch (e->type) {
    case SHOP_EV_ORDER_CREATED: {
        int64_t sum = 0;
        if (b->created)
            REJECT(e, "order_created for an order already created");
        if (b->external)
            REJECT(e, "order_created after the order was refunded as an unknown order");
        for (size_t k = 0; k < e->nitems; k++) {
            if (e->items[k].price < 0)
                REJECT(e, "item %s has no price", e->items[k].product_id);
            /* A stored book is not checked by the event parser. */
            if (e->items[k].qty <= 0)
                REJECT(e, "item %s has quantity %lld", e->items[k].product_id,
                       (long long)e->items[k].qty);
            if (e->items[k].price > INT64_MAX / 4 ||
                e->items[k].qty > INT64_MAX / 4 / (e->items[k].price + 1) ||
                sum > INT64_MAX / 4)
                REJECT(e, "order amount overflows");
            sum += e->items[k].qty * e->items[k].price;
        }
        if (sum != e->amount)
            REJECT(e, "amount %lld is not the sum of the items (%lld)", (long long)e->amount,
                   (long long)sum);
        b->created = e;
        b->amount = e->amount;
        b->created_ts = e->ts;
        b->status = ORDER_CREATED;
        return;
    }
    case SHOP_EV_ORDER_PAID:
        if (!b->created)
            REJECT(e, "order_paid for an order not created");
        if (b->status != ORDER_CREATED)
            REJECT(e, "order_paid when the order is %s", order_status_name(b->status));
        if (e->amount != b->amount)
            REJECT(e, "paid amount %lld differs from the order amount %lld",
                   (long long)e->amount, (long long)b->amount);
        b->paid = e->amount;
        b->paid_ts = e->ts;
        b->status = ORDER_PAID;
        return;
    case SHOP_EV_ORDER_SHIPPED:
        if (b->status != ORDER_PAID)
            REJECT(e, "order_shipped when the order is %s", order_status_name(b->status));
        b->shipped_ts = e->ts;
        b->status = ORDER_SHIPPED;
        return;
    case SHOP_EV_ORDER_DELIVERED:
        if (b->status != ORDER_SHIPPED)
            REJECT(e, "order_delivered when the order is %s", order_status_name(b->status));
        b->delivered_ts = e->ts;
        b->status = ORDER_DELIVERED;
        return;
    case SHOP_EV_ORDER_CANCELLED:
        if (b->status != ORDER_CREATED && b->status != ORDER_PAID)
            REJECT(e, "order_cancelled when the order is %s", order_status_name(b->status));
        b->cancelled_ts = e->ts;
        b->status = ORDER_CANCELLED;
        return;
    default:
        REJECT(e, "event type %s does not belong to an order", shop_event_type_name(e->type));
    }
}

static void fold_refund(struct order_book *b, struct order_ev *e, const struct order_rules *rules)
{
    struct order_return *r;

    if (e->amount <= 0)
        REJECT(e, "refund amount must be above zero");
    if (!b->created) {
        /* Nothing of the order in the stream but refunds: an order older
         * than the stream, or a made-up one. */
        if (!rules->accept_orphan_refunds || (b->status != ORDER_NONE && !b->external))
            REJECT(e, "refund for an order that was never created");
        if (b->refunded > INT64_MAX / 2 - e->amount)
            REJECT(e, "refunds overflow");
        b->external = 1;
    } else {
        if (b->paid <= 0)
            REJECT(e, "refund for an order that was not paid");
        if (e->amount > b->paid - b->refunded)
            REJECT(e, "refund of %lld is more than was paid (%lld) minus refunded (%lld)",
                   (long long)e->amount, (long long)b->paid, (long long)b->refunded);
        r = find_return(b, e->aux);
        if (r) {
            if (r->status != RETURN_APPROVED && r->status != RETURN_RECEIVED)
                REJECT(e, "refund for return %s which is %s", r->return_id,
                       return_status_name(r->status));
            r->status = RETURN_REFUNDED;
            r->ts = e->ts;
        } else if (b->cancelled_ts < 0) {
            REJECT(e, "refund without an approved return or a cancelled order");
        }
    }
    b->refunded += e->amount;
    b->refunded_ts = e->ts;
    b->refunds[b->nrefunds++] =
        (struct order_refund){e->id, find_return(b, e->aux) ? e->aux : "", e->amount, e->ts};
    if (has_open_return(b))
        b->status = ORDER_RETURN_REQUESTED;
    else if (b->external)
        b->status = ORDER_REFUNDED;
    else
        b->status = settled_status(b);
}

static void fold_aftersales(struct order_book *b, struct order_ev *e,
                            const struct order_rules *rules)
{
    struct order_return *r;

    if (e->type == SHOP_EV_REFUND_ISSUED) {
        fold_refund(b, e, rules);
        return;
    }
    if (!b->created)
        REJECT(e, "%s for an order that was never created", shop_event_type_name(e->type));
    r = find_return(b, e->aux);
    switch (e->type) {
    case SHOP_EV_RETURN_REQUESTED:
        if (r)
            REJECT(e, "return %s was already requested", e->aux);
        if (b->delivered_ts < 0)
            REJECT(e, "return requested for an order never delivered");
        if (e->ts - b->delivered_ts > rules->return_window_ms)
            REJECT(e, "return requested %lld days after delivery, past the %lld-day window",
                   (long long)((e->ts - b->delivered_ts) / 86400000),
                   (long long)(rules->return_window_ms / 86400000));
        if (b->status == ORDER_REFUNDED)
            REJECT(e, "return requested for an order already refunded");
        for (size_t k = 0; k < e->nitems; k++) {
            const char *pid = e->items[k].product_id;
            int64_t want = e->items[k].qty;
            if (want <= 0)
                REJECT(e, "return of %lld x %s", (long long)want, pid);
            for (size_t j = 0; j < k; j++)
                if (!strcmp(e->items[j].product_id, pid))
                    want = qty_add(want, e->items[j].qty);
            if (qty_add(want, returned_qty(b, pid)) > bought_qty(b, pid))
                REJECT(e, "return of %lld x %s, more than bought and not yet returned",
                       (long long)want, pid);
        }
        b->returns[b->nreturns++] = (struct order_return){e->aux, RETURN_REQUESTED, e, e->ts};
        b->return_requested_ts = e->ts;
        b->status = ORDER_RETURN_REQUESTED;
        return;
    case SHOP_EV_RETURN_APPROVED:
    case SHOP_EV_RETURN_REJECTED:
        if (!r)
            REJECT(e, "%s for unknown return %s", shop_event_type_name(e->type), e->aux);
        if (r->status != RETURN_REQUESTED)
            REJECT(e, "%s for return %s which is %s", shop_event_type_name(e->type), e->aux,
                   return_status_name(r->status));
        r->status = e->type == SHOP_EV_RETURN_APPROVED ? RETURN_APPROVED : RETURN_REJECTED;
        r->ts = e->ts;
        if (!has_open_return(b))
            b->status = settled_status(b);
        return;
    case SHOP_EV_RETURN_RECEIVED:
        if (!r)
            REJECT(e, "return_received for unknown return %s", e->aux);
        if (r->status != RETURN_APPROVED)
            REJECT(e, "return_received for return %s which is %s", e->aux,
                   return_status_name(r->status));
        r->status = RETURN_RECEIVED;
        r->ts = e->ts;
        return;
    default:
        REJECT(e, "event type %s is not an after-sales event", shop_event_type_name(e->type));
    }
}

void order_book_fold(struct order_book *b, const struct order_rules *rules)
{
    b->status = ORDER_NONE;
    b->external = 0;
    b->amount = b->paid = b->refunded = 0;
    b->created_ts = b->paid_ts = b->shipped_ts = b->delivered_ts = b->cancelled_ts = -1;
    b->return_requested_ts = b->refunded_ts = b->last_ts = -1;
    b->accepted = 0;
    b->created = NULL;
    b->nreturns = b->nrefunds = 0;
    if (b->nev > 1)
        qsort(b->ev, b->nev, sizeof *b->ev, ev_cmp);
    /* qsort moved the events: views into them are taken during the fold. */
    for (size_t k = 0; k < b->nev; k++) {
        struct order_ev *e = &b->ev[k];
        e->rejected = 0;
        e->reason[0] = '\0';
        if (shop_event_stream(e->type) == SHOP_STREAM_AFTERSALES)
            fold_aftersales(b, e, rules);
        else
            fold_order_event(b, e);
        if (!e->rejected) {
            b->accepted++;
            b->last_ts = e->ts;
        }
    }
}

int64_t order_book_ship_deadline(const struct order_book *b, const struct order_rules *rules)
{
    if (b->paid_ts < 0)
        return -1;
    /* An event time near INT64_MAX must not overflow: no deadline then. */
    return b->paid_ts > INT64_MAX - rules->ship_sla_ms ? INT64_MAX : b->paid_ts + rules->ship_sla_ms;
}

int order_book_sla_breached(const struct order_book *b, const struct order_rules *rules,
                            int64_t wm)
{
    int64_t deadline = order_book_ship_deadline(b, rules);

    if (deadline < 0 || deadline >= wm)
        return 0;
    if (b->shipped_ts >= 0 && b->shipped_ts <= deadline)
        return 0;
    if (b->cancelled_ts >= 0 && b->cancelled_ts <= deadline)
        return 0;
    return 1;
}

/* --- shop.order-state ------------------------------------------------------ */

static void w_ts(struct jbuf *o, const char *key, int64_t ts)
{
    if (ts >= 0)
        json_w_int(o, key, ts);
    else
        json_w_null(o, key);
}

int order_book_write_json(const struct order_book *b, struct jbuf *o)
{
    json_w_obj_begin(o, NULL);
    json_w_cstr(o, "order_id", b->order_id ? b->order_id : "");
    json_w_cstr(o, "user_id", b->user_id ? b->user_id : "");
    json_w_cstr(o, "status", order_status_name(b->status));
    /* The accepted order_created's currency, so that the state does not
     * depend on which event came first. */
    json_w_cstr(o, "currency", b->created && b->created->aux[0] ? b->created->aux
                               : b->currency ? b->currency : "");
    json_w_int(o, "amount", b->amount);
    json_w_int(o, "paid", b->paid);
    json_w_int(o, "refunded", b->refunded);
    w_ts(o, "created_ts", b->created_ts);
    w_ts(o, "paid_ts", b->paid_ts);
    w_ts(o, "shipped_ts", b->shipped_ts);
    w_ts(o, "delivered_ts", b->delivered_ts);
    w_ts(o, "cancelled_ts", b->cancelled_ts);
    w_ts(o, "return_requested_ts", b->return_requested_ts);
    w_ts(o, "refunded_ts", b->refunded_ts);
    json_w_arr_begin(o, "returns");
    for (size_t k = 0; k < b->nreturns; k++) {
        json_w_obj_begin(o, NULL);
        json_w_cstr(o, "return_id", b->returns[k].return_id);
        json_w_cstr(o, "status", return_status_name(b->returns[k].status));
        json_w_int(o, "ts", b->returns[k].ts);
        json_w_obj_end(o);
    }
    json_w_arr_end(o);
    json_w_arr_begin(o, "refunds");
    for (size_t k = 0; k < b->nrefunds; k++) {
        json_w_obj_begin(o, NULL);
        json_w_cstr(o, "id", b->refunds[k].id);
        json_w_int(o, "amount", b->refunds[k].amount);
        json_w_int(o, "ts", b->refunds[k].ts);
        if (b->refunds[k].return_id[0])
            json_w_cstr(o, "return_id", b->refunds[k].return_id);
        json_w_obj_end(o);
    }
    json_w_arr_end(o);
    json_w_bool(o, "sla_breached", b->sla_alerted);
    json_w_bool(o, "external", b->external);
    json_w_int(o, "events", (int64_t)b->accepted);
    w_ts(o, "updated_ts", b->last_ts);
    json_w_obj_end(o);
    return o->oom ? -1 : 0;
}
