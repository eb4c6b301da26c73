/* proc_private.h: what processors.c, proc_orders.c and proc_aftersales.c
 * share; not for other modules. */
#ifndef SHOPSTREAM_PROC_PRIVATE_H
#define SHOPSTREAM_PROC_PRIVATE_H

#include "shop/event.h"
#include "shop/json.h"
#include "shop/order_state.h"
#include "shop/processors.h"

struct reco_proc;
struct proc_group;

/* The counters in p->n are written by the processor's thread only and read
 * by others (proc_counts, for /metrics): a relaxed atomic store of the
 * incremented value is enough with one writer, and costs no locked
 * instruction. */
#define PROC_ADD(field, d) __atomic_store_n(&(field), (field) + (d), __ATOMIC_RELAXED)
#define PROC_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

struct proc {
    const char *kind;              /* "orders", "aftersales" or "analytics" */
    char name[200];                /* the application name */
    char rekey_topic[256];         /* the internal topic: aftersales
                                    * "<name>-refunds-by-user", analytics
                                    * "<name>-partials" */
    const char *internal[2];       /* proc_internal_topics */
    struct proc_settings s;
    struct shop_event ev;          /* parse buffer, reused */
    struct order_book book;        /* working copy, reused */
    struct jbuf out, state, aux;   /* output buffers, reused */
    struct proc_counts n;
    struct reco_proc *reco;        /* recommend: the model and what to publish */
    int64_t wall_ms;               /* wall clock, read every 1024 records */
    unsigned wall_reads;
    /* the kind's process callback, which count_record (processors.c) wraps
     * to count input records */
    int (*process)(struct stream_ctx *c, const struct stream_record *r);
    struct proc_group *group;      /* its series on /metrics (processors.c) */
    struct proc *group_next;       /* the group's live processors */
};

/* Sends the record r to shop.deadletter with reason: value = a JSON object
 * {"reason", "processor", "topic", "partition", "offset", "timestamp",
 * "key", "value"} (key and value as text when they are UTF-8, else as
 * "key_base64" / "value_base64"), keyed by the original key.  Returns 0 or
 * -1 (fatal). */
int proc__deadletter(struct proc *p, struct stream_ctx *c, const struct stream_record *r,
                     const char *reason);

/* Parses r into p->ev and checks what every processor relies on: a valid
 * event, on the topic of its type, not more than a day in the future, keyed
 * by its key field.  Then it reports the event time to the runtime.
 * Returns 0 for a good event, 1 when r went to shop.deadletter, -1 on a
 * fatal error. */
int proc__take_event(struct proc *p, struct stream_ctx *c, const struct stream_record *r);

/* Produces an alert JSON held in p->out to shop.alerts keyed by key. */
int proc__alert(struct proc *p, struct stream_ctx *c, const char *key, int64_t ts);

void proc__orders_conf(struct proc *p, struct stream_app_conf *conf);
void proc__aftersales_conf(struct proc *p, struct stream_app_conf *conf);
void proc__analytics_conf(struct proc *p, struct stream_app_conf *conf);
void proc__recommend_conf(struct proc *p, struct stream_app_conf *conf);
int proc__recommend_init(struct proc *p);
void proc__recommend_free(struct proc *p);
void proc__recommend_latency(const struct proc *p, int64_t *observe_p99_ns, int64_t *answer_p99_ns);

#endif
