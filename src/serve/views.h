/* views.h: what `shopstream serve` knows of the shop.  One consumer thread
 * reads the result topics (shop.kpis, shop.order-state, shop.recs,
 * shop.alerts) and the order events (shop.orders, shop.aftersales) from
 * their beginning, with no consumer group, and keeps the latest value of
 * every key in memory; the HTTP threads query it.  Topics and partitions
 * that appear later (serve may start before the processors) are picked up
 * by a metadata check every two seconds.
 *
 * Every record is outside input: a value that is not one JSON object, a
 * kpis key that is not "<1m|1h|1d>@<start>", an order event that is not a
 * valid event is counted as rejected and left out, so what the API embeds
 * is always well-formed JSON.
 *
 * Memory is bounded: VIEWS_MAX_WINDOWS windows per size (the oldest go),
 * max_orders orders (the least recently updated go), VIEWS_MAX_HISTORY
 * events per order, VIEWS_MAX_ALERTS alerts.  Record values larger than
 * VIEWS_MAX_VALUE bytes are rejected.
 *
 * Live updates: a subscriber (one per Server-Sent Events client) reads, at
 * most every 250 ms, the newest two windows of each size that changed, the
 * alerts that came since its last read and the last order that changed,
 * already framed as SSE events.  A slow reader does not hold memory: it
 * only keeps sequence numbers, and what it missed is coalesced. */
#ifndef SHOPSTREAM_VIEWS_H
#define SHOPSTREAM_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/client_opts.h"
#include "shop/json.h"

#define VIEWS_MAX_WINDOWS 10000
#define VIEWS_MAX_HISTORY 64
#define VIEWS_MAX_ALERTS 1000
#define VIEWS_MAX_RECENT 1000
#define VIEWS_MAX_VALUE (1 << 20)
#define VIEWS_DEFAULT_MAX_ORDERS 1000000

enum views_window { VIEWS_1M, VIEWS_1H, VIEWS_1D, VIEWS_NWINDOWS };

struct views;

/* Starts the consumer thread against the cluster of o (borrowed for the
 * life of the views).  Returns owned (views_stop), or NULL with one sentence
 * in err. */
struct views *views_start(const struct client_opts *o, long max_orders, char *err,
                          size_t errlen);
/* Stops the thread and frees everything.  Subscribers must be gone. */
void views_stop(struct views *v);

/* "1m" -> VIEWS_1M etc.; -1 for anything else. */
int views_window_parse(const char *s);

/* The queries.  Each appends one JSON document (api.md) to out and returns
 * the HTTP status: 200, or 404 with nothing appended.  Safe from any
 * thread. */
int views_kpis(struct views *v, int window, int64_t from, int64_t to, int limit,
               struct jbuf *out);
int views_kpis_latest(struct views *v, int window, struct jbuf *out);
int views_orders_recent(struct views *v, int limit, struct jbuf *out);
int views_order(struct views *v, const char *order_id, struct jbuf *out);
/* key is the shop.recs key: "product:<id>", "user:<id>" or "popular". */
int views_recs(struct views *v, const char *key, struct jbuf *out);
/* kind "product" or "user": the ids that have recommendations. */
int views_recs_keys(struct views *v, const char *kind, int limit, struct jbuf *out);
int views_alerts(struct views *v, int limit, struct jbuf *out);
int views_summary(struct views *v, struct jbuf *out);

/* Counters for /metrics. */
struct views_stats {
    long long records, rejected, orders, kpi_windows, recs, alerts_total;
    int caught_up;
};
void views_stats(struct views *v, struct views_stats *out);

struct views_sub;
/* Returns owned (views_unsubscribe), or NULL when out of memory.  The first
 * read sends the current newest windows. */
struct views_sub *views_subscribe(struct views *v);
void views_unsubscribe(struct views_sub *s);
/* Blocks until there is something to send (at most timeout_ms; then a
 * ": ping" comment) and appends SSE text to out.  Returns 0, or -1 once the
 * views are stopping (the stream should end). */
int views_sub_read(struct views_sub *s, int timeout_ms, struct jbuf *out);
/* Wakes every subscriber so that their reads return -1 (before stopping
 * the HTTP server, which waits for them). */
void views_close_subscribers(struct views *v);

#endif
