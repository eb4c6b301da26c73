/* event.c: parsing, validating and writing the e-commerce events of event.h
 * (format: DESIGN.md, "Event contract").
 *
 * Parsing is one pass of the json.c pull parser over the record.  The
 * reader unescapes every string into ev->scratch one after another (json.c
 * explains why len + 1 bytes always suffice), so the views in the event
 * point straight at the reader's output and nothing is copied twice.
 * ev->scratch and ev->items only grow, so once an event struct has seen its
 * largest record, parsing allocates nothing.  Known members are decoded by a
 * table (name, kind, offset in struct shop_event); the rules that depend on
 * the type are checked after the closing '}', because "type" may come last.
 * Validation of the processors' business rules (transitions, refunds) is
 * left to them. */
#include "shop/event.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

/* Names with their lengths, so matching a "type" costs no strlen. */
static const struct {
    const char *name;
    size_t len;
} type_names[SHOP_EV__COUNT] = {
#define TN(t, s) [t] = {s, sizeof s - 1}
    TN(SHOP_EV_ORDER_CREATED, "order_created"),
    TN(SHOP_EV_ORDER_PAID, "order_paid"),
    TN(SHOP_EV_ORDER_SHIPPED, "order_shipped"),
    TN(SHOP_EV_ORDER_DELIVERED, "order_delivered"),
    TN(SHOP_EV_ORDER_CANCELLED, "order_cancelled"),
    TN(SHOP_EV_PAGE_VIEW, "page_view"),
    TN(SHOP_EV_PRODUCT_VIEW, "product_view"),
    TN(SHOP_EV_SEARCH, "search"),
    TN(SHOP_EV_ADD_TO_CART, "add_to_cart"),
    TN(SHOP_EV_REMOVE_FROM_CART, "remove_from_cart"),
    TN(SHOP_EV_CHECKOUT, "checkout"),
    TN(SHOP_EV_PURCHASE, "purchase"),
    TN(SHOP_EV_RETURN_REQUESTED, "return_requested"),
    TN(SHOP_EV_RETURN_APPROVED, "return_approved"),
    TN(SHOP_EV_RETURN_REJECTED, "return_rejected"),
    TN(SHOP_EV_RETURN_RECEIVED, "return_received"),
    TN(SHOP_EV_REFUND_ISSUED, "refund_issued"),
#undef TN
};

const char *shop_event_type_name(enum shop_event_type t)
{
    if (t <= SHOP_EV_UNKNOWN || t >= SHOP_EV__COUNT)
        return NULL;
    return type_names[t].name;
}

enum shop_event_type shop_event_type_parse(const char *s, size_t n)
{
    for (int t = 1; t < SHOP_EV__COUNT; t++)
        if (type_names[t].len == n && type_names[t].name[0] == s[0] && memcmp(type_names[t].name, s, n) == 0)
            return (enum shop_event_type)t;
    return SHOP_EV_UNKNOWN;
}

enum shop_stream shop_event_stream(enum shop_event_type t)
{
    if (t >= SHOP_EV_PAGE_VIEW && t <= SHOP_EV_PURCHASE)
        return SHOP_STREAM_CLICKS;
    if (t >= SHOP_EV_RETURN_REQUESTED && t <= SHOP_EV_REFUND_ISSUED)
        return SHOP_STREAM_AFTERSALES;
    return SHOP_STREAM_ORDERS;
}

const char *shop_stream_topic(enum shop_stream s)
{
    switch (s) {
    case SHOP_STREAM_ORDERS: return SHOP_TOPIC_ORDERS;
    case SHOP_STREAM_CLICKS: return SHOP_TOPIC_CLICKS;
    case SHOP_STREAM_AFTERSALES: return SHOP_TOPIC_AFTERSALES;
    }
    return NULL;
}

struct shop_str shop_event_key(const struct shop_event *ev)
{
    return shop_event_stream(ev->type) == SHOP_STREAM_CLICKS ? ev->user_id : ev->order_id;
}

struct shop_str shop_str_c(const char *s)
{
    struct shop_str v = {s, s ? strlen(s) : 0};
    return v;
}

void shop_event_init(struct shop_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->amount = -1;
    ev->price = -1;
}

void shop_event_free(struct shop_event *ev)
{
    xfree(ev->scratch);
    xfree(ev->items);
    shop_event_init(ev);
}

/* ---- parsing ---- */

/* The known members.  The bit of each is set in `have` while parsing. */
enum member {
    M_ID,
    M_TYPE,
    M_TS,
    M_ORDER_ID,
    M_USER_ID,
    M_SESSION_ID,
    M_RETURN_ID,
    M_PRODUCT_ID,
    M_CATEGORY,
    M_PRICE,
    M_QUERY,
    M_ITEMS,
    M_AMOUNT,
    M_CURRENCY,
    M_PAYMENT_METHOD,
    M_CARRIER,
    M_REASON,
    M__COUNT
};

/* How a member's value is checked and stored. */
enum member_kind {
    K_ID,    /* a string of 1..SHOP_MAX_ID_BYTES bytes, into a struct shop_str */
    K_STR,   /* any string, into a struct shop_str */
    K_INT,   /* an integer >= 0, into an int64_t */
    K_TYPE,  /* a string naming an event type */
    K_ITEMS, /* an array of item objects */
};

static const struct member_def {
    const char *name;
    unsigned char len;
    unsigned char kind;
    unsigned short off; /* of the shop_str or int64_t in struct shop_event */
} members[M__COUNT] = {
#define MD(m, name, kind, field) [m] = {name, sizeof name - 1, kind, offsetof(struct shop_event, field)}
    MD(M_ID, "id", K_ID, id),
    MD(M_TYPE, "type", K_TYPE, type),
    MD(M_TS, "ts", K_INT, ts),
    MD(M_ORDER_ID, "order_id", K_ID, order_id),
    MD(M_USER_ID, "user_id", K_ID, user_id),
    MD(M_SESSION_ID, "session_id", K_ID, session_id),
    MD(M_RETURN_ID, "return_id", K_ID, return_id),
    MD(M_PRODUCT_ID, "product_id", K_ID, product_id),
    MD(M_CATEGORY, "category", K_STR, category),
    MD(M_PRICE, "price", K_INT, price),
    MD(M_QUERY, "query", K_STR, query),
    MD(M_ITEMS, "items", K_ITEMS, items),
    MD(M_AMOUNT, "amount", K_INT, amount),
    MD(M_CURRENCY, "currency", K_STR, currency),
    MD(M_PAYMENT_METHOD, "payment_method", K_STR, payment_method),
    MD(M_CARRIER, "carrier", K_STR, carrier),
    MD(M_REASON, "reason", K_STR, reason),
#undef MD
};

#define BIT(m) (1u << (m))
#define ORDER_BASE (BIT(M_ORDER_ID) | BIT(M_USER_ID))
#define CLICK_BASE (BIT(M_USER_ID) | BIT(M_SESSION_ID))

/* The members each type requires beside id, type and ts (event.h). */
static const unsigned required[SHOP_EV__COUNT] = {
    [SHOP_EV_ORDER_CREATED] = ORDER_BASE | BIT(M_ITEMS) | BIT(M_AMOUNT) | BIT(M_CURRENCY),
    [SHOP_EV_ORDER_PAID] = ORDER_BASE | BIT(M_AMOUNT) | BIT(M_PAYMENT_METHOD),
    [SHOP_EV_ORDER_SHIPPED] = ORDER_BASE | BIT(M_CARRIER),
    [SHOP_EV_ORDER_DELIVERED] = ORDER_BASE,
    [SHOP_EV_ORDER_CANCELLED] = ORDER_BASE | BIT(M_REASON),
    [SHOP_EV_PAGE_VIEW] = CLICK_BASE,
    [SHOP_EV_PRODUCT_VIEW] = CLICK_BASE | BIT(M_PRODUCT_ID),
    [SHOP_EV_SEARCH] = CLICK_BASE | BIT(M_QUERY),
    [SHOP_EV_ADD_TO_CART] = CLICK_BASE | BIT(M_PRODUCT_ID),
    [SHOP_EV_REMOVE_FROM_CART] = CLICK_BASE | BIT(M_PRODUCT_ID),
    [SHOP_EV_CHECKOUT] = CLICK_BASE,
    [SHOP_EV_PURCHASE] = CLICK_BASE | BIT(M_ORDER_ID),
    [SHOP_EV_RETURN_REQUESTED] = ORDER_BASE | BIT(M_RETURN_ID) | BIT(M_ITEMS),
    [SHOP_EV_RETURN_APPROVED] = ORDER_BASE | BIT(M_RETURN_ID),
    [SHOP_EV_RETURN_REJECTED] = ORDER_BASE | BIT(M_RETURN_ID),
    [SHOP_EV_RETURN_RECEIVED] = ORDER_BASE | BIT(M_RETURN_ID),
    [SHOP_EV_REFUND_ISSUED] = ORDER_BASE | BIT(M_AMOUNT),
};

/* Maps a key to its member, or M__COUNT.  Length and first byte rule out
 * nearly every candidate before memcmp runs. */
static int member_find(const char *k, size_t n)
{
    if (n < 2 || n > 14)
        return M__COUNT;
    for (int m = 0; m < M__COUNT; m++)
        if (members[m].len == n && members[m].name[0] == k[0] && memcmp(members[m].name, k, n) == 0)
            return m;
    return M__COUNT;
}

/* Parse state that does not belong in the event. */
struct parse {
    struct json_reader r;
    char *reason;
    size_t reason_size;
    unsigned have;            /* BIT(m) for each member present */
    const char *type_str;     /* the "type" string, for "unknown type" */
    size_t type_len;
    size_t items_without_price; /* count of items with no price, for order_created */
    size_t first_without_price; /* index of the first such item */
};

static int reject(struct parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int reject(struct parse *ps, const char *fmt, ...)
{
    if (ps->reason && ps->reason_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->reason, ps->reason_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int reject_json(struct parse *ps)
{
    if (ps->reason && ps->reason_size)
        snprintf(ps->reason, ps->reason_size, "not valid JSON at byte %zu: %s", ps->r.err_off, ps->r.err);
    return -1;
}

static int next(struct parse *ps, struct json_token *t)
{
    int rc = json_next(&ps->r, t);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return reject_json(ps);
    /* The document ended while the event still expected a token, which the
     * reader only allows with no container open: cannot happen. */
    return reject(ps, "not valid JSON at byte %zu: unexpected end of the document", ps->r.err_off);
}

static int valid_id(const struct json_token *t)
{
    return t->kind == JSON_STRING && t->len >= 1 && t->len <= SHOP_MAX_ID_BYTES;
}

static int grow_items(struct shop_event *ev)
{
    size_t cap = ev->items_cap ? ev->items_cap * 2 : 8;
    if (cap > SHOP_MAX_ITEMS)
        cap = SHOP_MAX_ITEMS;
    struct shop_item *it = xrealloc(ev->items, cap * sizeof *it);
    if (!it)
        return -1;
    ev->items = it;
    ev->items_cap = cap;
    return 0;
}

/* Reads one item object (its '{' already read) into ev->items[idx]. */
static int parse_item(struct parse *ps, struct shop_event *ev, size_t idx)
{
    struct shop_item *it = &ev->items[idx];
    it->product_id.p = NULL;
    it->product_id.n = 0;
    it->qty = -1;
    it->price = -1;
    struct json_token t;
    for (;;) {
        if (next(ps, &t) < 0)
            return -1;
        if (t.kind == JSON_END)
            break;
        if (t.key_len == 10 && memcmp(t.key, "product_id", 10) == 0) {
            if (t.kind == JSON_NULL) {
                it->product_id.p = NULL;
                it->product_id.n = 0;
            } else if (!valid_id(&t)) {
                return reject(ps, "field product_id must be a string of 1..%d bytes (item %zu)", SHOP_MAX_ID_BYTES, idx);
            } else {
                it->product_id.p = t.str;
                it->product_id.n = t.len;
            }
        } else if (t.key_len == 3 && memcmp(t.key, "qty", 3) == 0) {
            if (t.kind == JSON_NULL)
                it->qty = -1;
            else if (t.kind != JSON_NUMBER || !t.is_int || t.i <= 0)
                return reject(ps, "field qty must be an integer > 0 (item %zu)", idx);
            else
                it->qty = t.i;
        } else if (t.key_len == 5 && memcmp(t.key, "price", 5) == 0) {
            if (t.kind == JSON_NULL)
                it->price = -1;
            else if (t.kind != JSON_NUMBER || !t.is_int || t.i < 0)
                return reject(ps, "field price must be an integer >= 0 (item %zu)", idx);
            else
                it->price = t.i;
        } else if (json_skip(&ps->r, &t) < 0) {
            return reject_json(ps);
        }
    }
    if (!it->product_id.p)
        return reject(ps, "missing field product_id (item %zu)", idx);
    if (it->qty < 0)
        return reject(ps, "missing field qty (item %zu)", idx);
    if (it->price < 0 && ps->items_without_price++ == 0)
        ps->first_without_price = idx;
    return 0;
}

/* Reads the items array (its '[' already read). */
static int parse_items(struct parse *ps, struct shop_event *ev)
{
    struct json_token t;
    ev->nitems = 0;
    ps->items_without_price = 0;
    for (;;) {
        if (next(ps, &t) < 0)
            return -1;
        if (t.kind == JSON_END)
            return 0;
        if (t.kind != JSON_OBJECT)
            return reject(ps, "field items must hold objects (item %zu is not one)", ev->nitems);
        if (ev->nitems == SHOP_MAX_ITEMS)
            return reject(ps, "field items has more than %d items", SHOP_MAX_ITEMS);
        if (ev->nitems == ev->items_cap && grow_items(ev) < 0)
            return reject(ps, "out of memory");
        if (parse_item(ps, ev, ev->nitems) < 0)
            return -1;
        ev->nitems++;
    }
}

/* Writes "unknown type \"...\"" with the name cut to 32 bytes (on a UTF-8
 * boundary) and control characters and quotes shown as '?', so the reason
 * stays one short line. */
static int reject_unknown_type(struct parse *ps)
{
    char name[40];
    size_t n = ps->type_len, cut = n > 32 ? 32 : n;
    while (cut < n && cut > 0 && ((unsigned char)ps->type_str[cut] & 0xc0) == 0x80)
        cut--;
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)ps->type_str[i];
        name[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
    }
    name[cut] = 0;
    if (ps->reason && ps->reason_size)
        snprintf(ps->reason, ps->reason_size, "unknown type \"%s%s\"", name, cut < n ? "..." : "");
    return -1;
}

static void clear_fields(struct shop_event *ev)
{
    char *scratch = ev->scratch;
    struct shop_item *items = ev->items;
    size_t scap = ev->scratch_cap, icap = ev->items_cap;
    shop_event_init(ev);
    ev->scratch = scratch;
    ev->scratch_cap = scap;
    ev->items = items;
    ev->items_cap = icap;
}

static int parse_body(struct parse *ps, struct shop_event *ev)
{
    struct json_token t;
    if (next(ps, &t) < 0)
        return -1;
    if (t.kind != JSON_OBJECT)
        return reject(ps, "top level is not an object");
    for (;;) {
        if (next(ps, &t) < 0)
            return -1;
        if (t.kind == JSON_END)
            break;
        int m = member_find(t.key, t.key_len);
        if (m == M__COUNT) {
            if (json_skip(&ps->r, &t) < 0)
                return reject_json(ps);
            continue;
        }
        const struct member_def *md = &members[m];
        char *field = (char *)ev + md->off;
        if (t.kind == JSON_NULL) {
            /* null reads as absent, so "last one wins" holds for it too */
            ps->have &= ~BIT(m);
            if (md->kind == K_INT)
                *(int64_t *)(void *)field = m == M_TS ? 0 : -1;
            else if (md->kind == K_ITEMS)
                ev->nitems = 0;
            else if (md->kind == K_TYPE)
                ev->type = SHOP_EV_UNKNOWN;
            else
                *(struct shop_str *)(void *)field = (struct shop_str){NULL, 0};
            continue;
        }
        switch (md->kind) {
        case K_ID:
            if (!valid_id(&t))
                return reject(ps, "field %s must be a string of 1..%d bytes", md->name, SHOP_MAX_ID_BYTES);
            *(struct shop_str *)(void *)field = (struct shop_str){t.str, t.len};
            break;
        case K_STR:
            if (t.kind != JSON_STRING)
                return reject(ps, "field %s must be a string", md->name);
            *(struct shop_str *)(void *)field = (struct shop_str){t.str, t.len};
            break;
        case K_INT:
            if (t.kind != JSON_NUMBER || !t.is_int || t.i < 0)
                return reject(ps, "field %s must be an integer >= 0", md->name);
            *(int64_t *)(void *)field = t.i;
            break;
        case K_TYPE:
            if (t.kind != JSON_STRING)
                return reject(ps, "field %s must be a string", md->name);
            ev->type = shop_event_type_parse(t.str, t.len);
            ps->type_str = t.str;
            ps->type_len = t.len;
            break;
        case K_ITEMS:
            if (t.kind != JSON_ARRAY)
                return reject(ps, "field %s must be an array", md->name);
            if (parse_items(ps, ev) < 0)
                return -1;
            break;
        }
        ps->have |= BIT(m);
    }
    /* Only whitespace may follow the object. */
    int rc = json_next(&ps->r, &t);
    if (rc < 0)
        return reject_json(ps);

    if (!(ps->have & BIT(M_ID)))
        return reject(ps, "missing field id");
    if (!(ps->have & BIT(M_TYPE)))
        return reject(ps, "missing field type");
    if (!(ps->have & BIT(M_TS)))
        return reject(ps, "missing field ts");
    if (ev->type == SHOP_EV_UNKNOWN)
        return reject_unknown_type(ps);
    unsigned need = required[ev->type] & ~ps->have;
    if (need) {
        /* Name the first missing member in the order they are written. */
        int m = 0;
        while (!(need & BIT(m)))
            m++;
        return reject(ps, "missing field %s", members[m].name);
    }
    if ((required[ev->type] & BIT(M_ITEMS)) && ev->nitems == 0)
        return reject(ps, "field items must hold at least one item");
    if (ev->type == SHOP_EV_ORDER_CREATED && ps->items_without_price)
        return reject(ps, "missing field price (item %zu)", ps->first_without_price);
    return 0;
}

int shop_event_parse(struct shop_event *ev, const char *json, size_t len, char *reason,
                     size_t reason_size)
{
    struct parse ps;
    ps.reason = reason;
    ps.reason_size = reason_size;
    ps.have = 0;
    ps.type_str = NULL;
    ps.type_len = 0;
    ps.items_without_price = 0;
    ps.first_without_price = 0;
    if (reason && reason_size)
        reason[0] = 0;
    clear_fields(ev);
    if (len > SHOP_MAX_EVENT_BYTES)
        return reject(&ps, "record of %zu bytes is longer than the limit of %d bytes", len,
                      SHOP_MAX_EVENT_BYTES);
    if (ev->scratch_cap < len + 1) {
        /* Grow at least geometrically so a slowly rising size costs few
         * reallocations; the scratch never exceeds one maximal record. */
        size_t cap = ev->scratch_cap * 2;
        if (cap < 512)
            cap = 512;
        if (cap < len + 1)
            cap = len + 1;
        if (cap > SHOP_MAX_EVENT_BYTES + 1)
            cap = SHOP_MAX_EVENT_BYTES + 1;
        char *s = xrealloc(ev->scratch, cap);
        if (!s)
            return reject(&ps, "out of memory");
        ev->scratch = s;
        ev->scratch_cap = cap;
    }
    json_reader_init(&ps.r, json, len, ev->scratch, ev->scratch_cap);
    if (parse_body(&ps, ev) < 0) {
        clear_fields(ev);
        return -1;
    }
    return 0;
}

/* ---- writing ---- */

static void w_str(struct jbuf *out, const char *key, struct shop_str s)
{
    if (s.p)
        json_w_str(out, key, s.p, s.n);
}

int shop_event_write(const struct shop_event *ev, struct jbuf *out)
{
    json_w_obj_begin(out, NULL);
    w_str(out, "id", ev->id);
    const char *tn = shop_event_type_name(ev->type);
    if (tn)
        json_w_cstr(out, "type", tn);
    json_w_int(out, "ts", ev->ts);
    w_str(out, "order_id", ev->order_id);
    w_str(out, "user_id", ev->user_id);
    w_str(out, "session_id", ev->session_id);
    w_str(out, "return_id", ev->return_id);
    w_str(out, "product_id", ev->product_id);
    w_str(out, "category", ev->category);
    if (ev->price >= 0)
        json_w_int(out, "price", ev->price);
    w_str(out, "query", ev->query);
    if (ev->nitems > 0) {
        json_w_arr_begin(out, "items");
        for (size_t i = 0; i < ev->nitems; i++) {
            const struct shop_item *it = &ev->items[i];
            json_w_obj_begin(out, NULL);
            w_str(out, "product_id", it->product_id);
            json_w_int(out, "qty", it->qty);
            if (it->price >= 0)
                json_w_int(out, "price", it->price);
            json_w_obj_end(out);
        }
        json_w_arr_end(out);
    }
    if (ev->amount >= 0)
        json_w_int(out, "amount", ev->amount);
    w_str(out, "currency", ev->currency);
    w_str(out, "payment_method", ev->payment_method);
    w_str(out, "carrier", ev->carrier);
    w_str(out, "reason", ev->reason);
    json_w_obj_end(out);
    return out->oom ? -1 : 0;
}
