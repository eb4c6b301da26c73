/* proc_aftersales.c: the after-sales processor (processors.h): refund
 * anomalies per user.  The returns and refunds themselves are judged by the
 * order book (order_state.h), the only place that knows what was paid and
 * delivered; this processor watches the refunds it accepted.
 *
 * Stage one reads shop.order-state and re-keys every refund of an order by
 * its user onto "<name>-refunds-by-user" (same partition count), so that all
 * refunds of one user meet in one task whatever their orders.  Stage two
 * keeps, per user, the refunds of the last refund_window_ms (event time)
 * and alerts once when their sum rises above refund_alert_amount; it re-arms
 * when the sum falls back below.
 *
 * Re-keyed record: key user_id, value {"id","order_id","user_id","amount",
 * "ts"}, timestamp ts.  Stored per user, version 1: u8 version, u8 alerted,
 * varint n, n x (str id, zz amount, zz ts), oldest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/varint.h"
#include "shop/proc_private.h"

enum { IN_STATE = 0, IN_REKEYED = 1 };

#define USER_MAX_REFUNDS 256
#define FIELD_BYTES (SHOP_MAX_ID_BYTES + 1)

struct refund {
    char id[FIELD_BYTES];
    char order_id[FIELD_BYTES];
    int64_t amount, ts;
};

/* Copies a string token into a fixed field; 0, or -1 when too long. */
static int take_str(const struct json_token *t, char *dst)
{
    if (t->kind != JSON_STRING || t->len >= FIELD_BYTES)
        return -1;
    memcpy(dst, t->str, t->len + 1);
    return 0;
}

/* --- stage one: shop.order-state -> refunds by user ------------------------- */

static int rekey_state(struct proc *p, struct stream_ctx *c, const struct stream_record *r)
{
    struct json_reader rd;
    struct json_token t;
    char user[FIELD_BYTES] = "", order[FIELD_BYTES] = "";
    struct refund *refs = NULL;
    size_t nrefs = 0;
    char *scratch;
    int rc = 0, depth = 0;

    if (!r->value)
        return 0; /* a tombstone of the compacted topic */
    if (!(scratch = xmalloc(r->vlen + 1)) ||
        !(refs = xcalloc(ORDER_MAX_EVENTS, sizeof *refs))) {
        xfree(scratch);
        return -1;
    }
    json_reader_init(&rd, r->value, r->vlen, scratch, r->vlen + 1);
    if (json_next(&rd, &t) != 1 || t.kind != JSON_OBJECT)
        goto bad;
    for (;;) {
        int n = json_next(&rd, &t);
        if (n != 1)
            goto bad;
        if (t.kind == JSON_END)
            break;
        if (t.key_len == 7 && !memcmp(t.key, "user_id", 7)) {
            if (take_str(&t, user) < 0)
                goto bad;
        } else if (t.key_len == 8 && !memcmp(t.key, "order_id", 8)) {
            if (take_str(&t, order) < 0)
                goto bad;
        } else if (t.key_len == 7 && !memcmp(t.key, "refunds", 7) && t.kind == JSON_ARRAY) {
            for (;;) {
                if (json_next(&rd, &t) != 1)
                    goto bad;
                if (t.kind == JSON_END)
                    break;
                if (t.kind != JSON_OBJECT || nrefs >= ORDER_MAX_EVENTS)
                    goto bad;
                struct refund *f = &refs[nrefs++];
                for (;;) {
                    if (json_next(&rd, &t) != 1)
                        goto bad;
                    if (t.kind == JSON_END)
                        break;
                    if (t.key_len == 2 && !memcmp(t.key, "id", 2)) {
                        if (take_str(&t, f->id) < 0)
                            goto bad;
                    } else if (t.key_len == 6 && !memcmp(t.key, "amount", 6) && t.is_int) {
                        f->amount = t.i;
                    } else if (t.key_len == 2 && !memcmp(t.key, "ts", 2) && t.is_int) {
                        f->ts = t.i;
                    } else if (json_skip(&rd, &t) < 0) {
                        goto bad;
                    }
                }
            }
        } else if (json_skip(&rd, &t) < 0) {
            goto bad;
        }
    }
    (void)depth;
    if (!user[0])
        goto out; /* nobody to attribute the refunds to */
    for (size_t k = 0; k < nrefs && rc == 0; k++) {
        struct refund *f = &refs[k];
        snprintf(f->order_id, sizeof f->order_id, "%s", order);
        jbuf_reset(&p->out);
        json_w_obj_begin(&p->out, NULL);
        json_w_cstr(&p->out, "id", f->id);
        json_w_cstr(&p->out, "order_id", f->order_id);
        json_w_cstr(&p->out, "user_id", user);
        json_w_int(&p->out, "amount", f->amount);
        json_w_int(&p->out, "ts", f->ts);
        json_w_obj_end(&p->out);
        rc = p->out.oom ? -1
                        : stream_emit(c, p->rekey_topic, -1, user, strlen(user), p->out.p,
                                      p->out.len, f->ts);
    }
    goto out;
bad:
    rc = proc__deadletter(p, c, r, "not a shop.order-state record");
out:
    xfree(scratch);
    xfree(refs);
    return rc;
}

/* --- stage two: per-user refund windows ------------------------------------ */

struct user_refunds {
    int alerted;
    size_t n;
    struct refund r[USER_MAX_REFUNDS + 1];
};

static int decode_user(struct user_refunds *u, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t cnt, len;
    size_t k;

    memset(u, 0, offsetof(struct user_refunds, r));
    if (n < 2 || p[0] != 1)
        return -1;
    u->alerted = p[1] & 1;
    p += 2;
    if (!(k = varint_get_u64(p, end, 10, &cnt)) || cnt > USER_MAX_REFUNDS)
        return -1;
    p += k;
    for (uint64_t i = 0; i < cnt; i++) {
        struct refund *f = &u->r[i];
        if (!(k = varint_get_u64(p, end, 10, &len)) || len >= FIELD_BYTES ||
            len > (uint64_t)(end - p - k))
            return -1;
        p += k;
        memcpy(f->id, p, len);
        f->id[len] = '\0';
        p += len;
        if (!(k = varint_get_zz64(p, end, &f->amount)))
            return -1;
        p += k;
        if (!(k = varint_get_zz64(p, end, &f->ts)))
            return -1;
        p += k;
        f->order_id[0] = '\0';
    }
    u->n = cnt;
    return p == end ? 0 : -1;
}

static void encode_user(const struct user_refunds *u, struct jbuf *o)
{
    uint8_t tmp[10];
    char hdr[2] = {1, (char)u->alerted};

    jbuf_raw(o, hdr, 2);
    jbuf_raw(o, (const char *)tmp, varint_put_u64(tmp, u->n));
    for (size_t k = 0; k < u->n; k++) {
        size_t len = strlen(u->r[k].id);
        jbuf_raw(o, (const char *)tmp, varint_put_u64(tmp, len));
        jbuf_raw(o, u->r[k].id, len);
        jbuf_raw(o, (const char *)tmp, varint_put_zz64(tmp, u->r[k].amount));
        jbuf_raw(o, (const char *)tmp, varint_put_zz64(tmp, u->r[k].ts));
    }
}

static int refund_by_ts(const void *a, const void *b)
{
    const struct refund *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int user_refund(struct proc *p, struct stream_ctx *c, const struct stream_record *r)
{
    struct json_reader rd;
    struct json_token t;
    struct refund f;
    char user[FIELD_BYTES] = "";
    struct user_refunds *u = NULL;
    char *scratch = NULL;
    const void *v;
    size_t vlen;
    int64_t sum = 0, newest;
    int rc = 0;

    memset(&f, 0, sizeof f);
    if (!r->value)
        return 0;
    if (!(scratch = xmalloc(r->vlen + 1)) || !(u = xmalloc(sizeof *u))) {
        rc = -1;
        goto out;
    }
    json_reader_init(&rd, r->value, r->vlen, scratch, r->vlen + 1);
    if (json_next(&rd, &t) != 1 || t.kind != JSON_OBJECT)
        goto bad;
    for (;;) {
        if (json_next(&rd, &t) != 1)
            goto bad;
        if (t.kind == JSON_END)
            break;
        if (t.key_len == 2 && !memcmp(t.key, "id", 2)) {
            if (take_str(&t, f.id) < 0)
                goto bad;
        } else if (t.key_len == 8 && !memcmp(t.key, "order_id", 8)) {
            if (take_str(&t, f.order_id) < 0)
                goto bad;
        } else if (t.key_len == 7 && !memcmp(t.key, "user_id", 7)) {
            if (take_str(&t, user) < 0)
                goto bad;
        } else if (t.key_len == 6 && !memcmp(t.key, "amount", 6) && t.is_int) {
            f.amount = t.i;
        } else if (t.key_len == 2 && !memcmp(t.key, "ts", 2) && t.is_int) {
            f.ts = t.i;
        } else if (json_skip(&rd, &t) < 0) {
            goto bad;
        }
    }
    if (!f.id[0] || !user[0])
        goto bad;
    if ((v = stream_get(c, user, strlen(user), &vlen))) {
        if (decode_user(u, v, vlen) < 0) {
            log_warn("aftersales: stored refunds of user %s are unreadable; starting afresh",
                     user);
            memset(u, 0, offsetof(struct user_refunds, r));
        }
    } else {
        memset(u, 0, offsetof(struct user_refunds, r));
    }
    for (size_t k = 0; k < u->n; k++)
        if (!strcmp(u->r[k].id, f.id))
            goto out; /* seen: every update of an order repeats its refunds */
    PROC_ADD(p->n.events, 1);
    u->r[u->n++] = f;
    qsort(u->r, u->n, sizeof u->r[0], refund_by_ts);
    /* Keep the window (event time, up to the newest refund) and the cap. */
    newest = u->r[u->n - 1].ts;
    size_t drop = 0;
    while (drop < u->n && (u->r[drop].ts <= newest - p->s.refund_window_ms ||
                           u->n - drop > USER_MAX_REFUNDS))
        drop++;
    memmove(u->r, u->r + drop, (u->n - drop) * sizeof u->r[0]);
    u->n -= drop;
    for (size_t k = 0; k < u->n; k++)
        sum += u->r[k].amount;
    if (sum > p->s.refund_alert_amount && !u->alerted) {
        char id[2 * FIELD_BYTES + 16];
        u->alerted = 1;
        snprintf(id, sizeof id, "refunds-%s-%s", user, f.id);
        jbuf_reset(&p->out);
        json_w_obj_begin(&p->out, NULL);
        json_w_cstr(&p->out, "id", id);
        json_w_cstr(&p->out, "type", "refund_anomaly");
        json_w_int(&p->out, "ts", f.ts);
        json_w_cstr(&p->out, "user_id", user);
        json_w_int(&p->out, "refund_total", sum);
        json_w_int(&p->out, "refunds", (int64_t)u->n);
        json_w_int(&p->out, "threshold", p->s.refund_alert_amount);
        json_w_int(&p->out, "window_ms", p->s.refund_window_ms);
        json_w_cstr(&p->out, "last_order_id", f.order_id);
        json_w_cstr(&p->out, "message", "refunds of one user above the threshold in the window");
        json_w_obj_end(&p->out);
        if (proc__alert(p, c, user, f.ts) < 0) {
            rc = -1;
            goto out;
        }
    } else if (sum <= p->s.refund_alert_amount) {
        u->alerted = 0;
    }
    jbuf_reset(&p->state);
    encode_user(u, &p->state);
    rc = p->state.oom ? -1 : stream_put(c, user, strlen(user), p->state.p, p->state.len);
    goto out;
bad:
    rc = proc__deadletter(p, c, r, "not a re-keyed refund record");
out:
    xfree(scratch);
    xfree(u);
    return rc;
}

static int aftersales_process(struct stream_ctx *c, const struct stream_record *r)
{
    struct proc *p = stream_opaque(c);

    return r->input == IN_STATE ? rekey_state(p, c, r) : user_refund(p, c, r);
}

void proc__aftersales_conf(struct proc *p, struct stream_app_conf *conf)
{
    conf->inputs[IN_STATE] = SHOP_TOPIC_ORDER_STATE;
    conf->inputs[IN_REKEYED] = p->rekey_topic;
    conf->ninputs = 2;
    conf->stateful = 1;
    conf->process = aftersales_process;
}
