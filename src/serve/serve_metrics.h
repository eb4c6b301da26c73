/* serve_metrics.h: what `shopstream serve` adds to the process's
 * Prometheus metrics (metrics.h): consumer-group lag per partition, asked
 * from the cluster at scrape time (ops_lags), and the materialised views'
 * counters.  In `shopstream demo` the same exposition also holds the
 * broker's and the processors' families, which register themselves. */
#ifndef SHOPSTREAM_SERVE_METRICS_H
#define SHOPSTREAM_SERVE_METRICS_H

#include "common/obuf.h"

struct views;
struct ops;

/* Registers the collector for v and o (both borrowed until
 * serve_metrics_stop).  One serve per process.  Returns 0 or -1. */
int serve_metrics_start(struct views *v, struct ops *o);
void serve_metrics_stop(void);

/* Refreshes the group lag (a cluster query, outside the registry's lock;
 * answers younger than a second are reused) and appends the whole
 * exposition to out.  Returns 0, or -1 when memory ran out.  Any thread. */
int serve_metrics_render(struct obuf *out);

#endif
