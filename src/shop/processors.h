/* processors.h: the e-commerce stream processors, each a stream_app
 * (stream/runtime.h) with its callbacks.  The command `shopstream process`
 * (src/cli/cmd_process.c) builds the client settings and runs them.
 *
 * orders      inputs shop.orders and shop.aftersales (co-partitioned by
 *             order_id); one order book per order (order_state.h) in a
 *             changelog-backed store; results: shop.order-state (the order's
 *             whole state after every event), shop.deadletter (records that
 *             are not valid events, and events the order's state machine
 *             rejects), shop.alerts (paid but not shipped within the SLA).
 * aftersales  inputs shop.order-state and an internal topic
 *             "<name>-refunds-by-user"; stage one re-keys every accepted
 *             refund by user, stage two keeps each user's refunds of the
 *             last window and alerts (shop.alerts) when their sum passes a
 *             threshold.
 * recommend   inputs shop.clicks and shop.orders, and the global input
 *             "<name>-observations" every instance reads whole; item-to-item
 *             recommendations (recommend.h) to shop.recs (proc_recommend.c).
 * analytics   inputs shop.clicks, shop.orders, shop.aftersales and an
 *             internal topic "<name>-partials"; KPIs of DESIGN.md in 1m, 1h
 *             and 1d event-time windows to shop.kpis (proc_analytics.c). */
#ifndef SHOPSTREAM_PROCESSORS_H
#define SHOPSTREAM_PROCESSORS_H

#include <stdint.h>

#include "shop/order_state.h"
#include "stream/runtime.h"

struct proc_settings {
    struct order_rules rules;
    int64_t lateness_ms;          /* event-time slack before an SLA timer fires */
    int64_t refund_alert_amount;  /* a user's refunds above this in the window: alert */
    int64_t refund_window_ms;
    int64_t order_retention_ms;   /* orders: forget an order this long (event time)
                                   * after its newest event */
    int partitions;               /* for topics created by the processors */
    size_t uv_exact_cap;          /* analytics: distinct counts exact up to this */
    int64_t finish_idle_ms;       /* analytics: close all windows after this long
                                   * caught up and idle (0: never) */
    int64_t idle_timeout_ms;      /* analytics: a task idle this long is left out of
                                   * the watermark (0: never) */
};

#define PROC_DEFAULT_LATENESS_MS 5000
/* Events further ahead of the wall clock than this are refused. */
#define PROC_MAX_FUTURE_MS (24LL * 3600 * 1000)
#define PROC_DEFAULT_REFUND_ALERT_AMOUNT 50000      /* 500.00 in minor units */
#define PROC_DEFAULT_REFUND_WINDOW_MS (30LL * 24 * 3600 * 1000)
#define PROC_DEFAULT_IDLE_TIMEOUT_MS 30000
#define PROC_DEFAULT_ORDER_RETENTION_MS (90LL * 24 * 3600 * 1000)

void proc_settings_default(struct proc_settings *s);

/* A processor's state between callbacks; opaque to the runtime. */
struct proc;

/* Fills conf (name, inputs, callbacks, opaque) for the processor `kind`
 * ("orders", "aftersales", "analytics" or "recommend") named app_name, and returns its state (owned:
 * proc_free after the app is destroyed), or NULL if kind is unknown or
 * memory ran out.  Its counters are shown on /metrics (serve/metrics.h) as
 * shopstream_processor_*{processor=kind,app=app_name} until proc_free;
 * processors of the same kind and name in one process are summed. */
struct proc *proc_new(const char *kind, const char *app_name, const struct proc_settings *s,
                      struct stream_app_conf *conf);
void proc_free(struct proc *p);

/* Topics the processor writes to or reads besides shop's own, to create
 * before running (e.g. the re-keying topic); NULL-terminated list of names
 * that must have as many partitions as its inputs.  The returned strings are
 * views into p. */
const char *const *proc_internal_topics(struct proc *p);

/* Counters for the closing summary and /metrics.  The processor's thread
 * writes them, with relaxed atomic stores, so other threads may read them
 * (proc_counts) while it runs. */
struct proc_counts {
    long long records;                      /* input records processed */
    long long events, duplicates, deadletters, alerts, results;
    long long late_events[3];               /* analytics: events counted late in the
                                             * 1m, 1h and 1d windows */
    long long open_windows, peak_windows;   /* analytics: windows held in memory */
    long long observed;                     /* recommend: events the model learnt */
    long long orders_held, orders_forgotten; /* orders: books in the stores, dropped */
};
/* A snapshot of p's counters; any thread, while p lives. */
void proc_counts(const struct proc *p, struct proc_counts *out);
/* recommend: events the model learnt so far; safe from any thread. */
long long proc_observed(const struct proc *p);

/* recommend: p99 of the time to learn one event and to answer one user, in
 * ns (0 before any). */
void proc_recommend_latency(const struct proc *p, int64_t *observe_p99_ns, int64_t *answer_p99_ns);

#endif
