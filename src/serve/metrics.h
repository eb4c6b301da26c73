/* metrics.h: the process's Prometheus metrics, rendered in the text
 * exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * There is one registry per process.  Code that counts something registers
 * a series once (a family name, help text, type and a fixed set of label
 * values, e.g. requests_total{api="Produce"}) and keeps the returned
 * handle; updating a handle is one relaxed atomic operation, without a lock
 * or an allocation, so the broker's loop thread never waits for a scrape.
 * What cannot be counted that way (state that one thread owns, such as the
 * partitions of the broker's catalog, or values computed at scrape time,
 * such as consumer-group lag) is written at scrape time by a collector, a
 * callback that emits whole families through the writer functions below.
 *
 * The output is always a valid exposition: every family is written once,
 * with HELP and TYPE, and all its samples together (families written by
 * several collectors are merged); a series is never written twice; label
 * values are escaped (\\, \", \n) and invalid UTF-8 becomes U+FFFD; metric
 * and label names are checked against the format's grammar when they are
 * registered or written, and what fails is left out.
 *
 * Registered series live until the process ends (tests call
 * metrics_reset).  Registering a series that exists returns the same
 * handle, so two instances of one component in a process share (sum) their
 * series instead of duplicating them.
 *
 * Threads: registration, collector (un)registration and rendering take the
 * registry mutex and may be called from any thread, but not from inside a
 * collector (which runs under that mutex).  Updates are lock-free and may
 * come from any thread at any time. */
#ifndef SHOPSTREAM_METRICS_H
#define SHOPSTREAM_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/obuf.h"

/* The Content-Type of what metrics_render produces. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Limits: labels per series, bucket bounds per histogram, name lengths. */
#define METRICS_MAX_LABELS 8
#define METRICS_MAX_BUCKETS 32
#define METRICS_MAX_NAME 200

enum metrics_type {
    METRICS_COUNTER,   /* only goes up (resets when the process restarts) */
    METRICS_GAUGE,     /* goes up and down */
    METRICS_HISTOGRAM, /* _bucket{le=...} (cumulative), _sum, _count */
    METRICS_UNTYPED,   /* the format's "untyped" */
};

/* One label: name and value are borrowed for the duration of the call. */
struct metrics_label {
    const char *name;
    const char *value;
};

/* A label array and its length for the functions below, e.g.
 * metrics_counter("x_total", "help", METRICS_LABELS({"api", "Produce"})).
 * With no labels pass NULL, 0. */
#define METRICS_LABELS(...)                                  \
    (const struct metrics_label[]){__VA_ARGS__},             \
        (int)(sizeof((const struct metrics_label[]){__VA_ARGS__}) / sizeof(struct metrics_label))

/* One series of the registry.  Opaque; owned by the registry. */
struct metric;

/* --- registration -------------------------------------------------------- */

/* Registers the series of family `name` with these labels, creating the
 * family on first use, or returns the existing series with the same label
 * values.  help is copied from the first registration.  Every series of a
 * family must have the same label names in the same order (and, for
 * histograms, the same bounds).  Returns a handle owned by the registry
 * (valid until metrics_reset), or NULL when a name is invalid, the family
 * exists with another type, label names or bounds, or memory ran out (the
 * reason is logged).  The update functions accept NULL and do
 * nothing, so a failed registration only loses that series.
 * Any thread, not from a collector. */
struct metric *metrics_counter(const char *name, const char *help,
                               const struct metrics_label *labels, int nlabels);
struct metric *metrics_gauge(const char *name, const char *help, const struct metrics_label *labels,
                             int nlabels);
/* bounds: nbounds (1..METRICS_MAX_BUCKETS) strictly increasing finite upper
 * bounds, borrowed (copied); the +Inf bucket is implicit.  The label name
 * "le" is reserved. */
struct metric *metrics_histogram(const char *name, const char *help, const double *bounds,
                                 int nbounds, const struct metrics_label *labels, int nlabels);

/* Bucket bounds in seconds for request and fsync latencies: 100 us to 10 s. */
extern const double metrics_latency_bounds[];
extern const int metrics_latency_nbounds;

/* --- updates: any thread, lock-free (relaxed atomics) -------------------- */

/* Counters: n >= 0 (a negative n is ignored on counters).  Gauges: any n. */
void metrics_add(struct metric *m, int64_t n);
static inline void metrics_inc(struct metric *m) { metrics_add(m, 1); }
/* Adds a fractional amount (e.g. seconds); same rules as metrics_add. */
void metrics_add_double(struct metric *m, double v);
/* Gauges: sets the value (the integer and fractional parts are set
 * together only per call: use one kind per series). */
void metrics_set(struct metric *m, int64_t v);
void metrics_set_double(struct metric *m, double v);
/* Histograms: counts v in the first bucket whose bound is >= v (NaN in
 * +Inf only) and adds it to the sum. */
void metrics_observe(struct metric *m, double v);
/* The current value of a counter or gauge (integer plus fractional part),
 * or the count of a histogram; 0 for NULL. */
double metrics_value(const struct metric *m);

/* --- collectors ----------------------------------------------------------- */

/* The writer a collector writes families into; valid during the call. */
struct metrics_writer;

/* Runs at every render, under the registry mutex, on the rendering thread.
 * It must not register series or collectors, and should be quick. */
typedef void metrics_collect_fn(struct metrics_writer *w, void *arg);

/* Adds a collector; arg is borrowed until metrics_unregister_collector
 * returns.  The same (fn, arg) twice is one collector.  Returns 0 or -1
 * (out of memory).  Any thread, not from a collector. */
int metrics_register_collector(metrics_collect_fn *fn, void *arg);
/* Removes it; when this returns, fn is not running and will not run again
 * with arg.  Any thread, not from a collector. */
void metrics_unregister_collector(metrics_collect_fn *fn, void *arg);

/* Begins (or resumes) family `name` in a collector: the samples written
 * next belong to it.  help and name are copied.  Another collector may add
 * to the same family if the type matches.  Returns 0, or -1 when the name
 * is invalid, is a family of the registry, clashes with another family's
 * names (x and x_count of histogram x) or the type differs; the samples
 * written until the next successful metrics_write_family are then dropped. */
int metrics_write_family(struct metrics_writer *w, const char *name, const char *help,
                         enum metrics_type type);
/* A sample of the current counter, gauge or untyped family.  labels are
 * borrowed.  Returns 0, or -1 (dropped) when no family is current, it is a
 * histogram, a label name is invalid or repeated, or the series was already
 * written in this render. */
int metrics_write_int(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                      int64_t v);
int metrics_write_double(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                         double v);
/* A whole series of the current histogram family: counts[0..nbounds] are
 * per-bucket (not cumulative) counts, the last one for +Inf; bounds as for
 * metrics_histogram.  Writes the cumulative _bucket samples, _sum and
 * _count (= the +Inf bucket).  Returns 0 or -1 as above. */
int metrics_write_histogram(struct metrics_writer *w, const struct metrics_label *labels,
                            int nlabels, const double *bounds, int nbounds, const uint64_t *counts,
                            double sum);

/* --- rendering ------------------------------------------------------------ */

/* Appends the whole exposition to out (borrowed; the caller owns its
 * memory and frees it with obuf_free): registered families in registration
 * order, then the collectors' families in the order they first appeared.
 * Returns 0, or -1 when memory ran out (out->oom is set; its contents are
 * incomplete).  Any thread, not from a collector; renders are serialised. */
int metrics_render(struct obuf *out);

/* --- helpers --------------------------------------------------------------- */

/* Per-second rate of a growing value over the last few seconds, for
 * gauges like events_per_second that a collector derives from a counter at
 * scrape time.  The caller owns the struct and serialises calls (a
 * collector runs under the registry mutex). */
#define METRICS_RATE_SAMPLES 16
#define METRICS_RATE_WINDOW_MS 10000
struct metrics_rate {
    int64_t t[METRICS_RATE_SAMPLES]; /* sample times, ms, oldest first */
    double v[METRICS_RATE_SAMPLES];  /* the value at t[i] */
    int n;                           /* samples held */
};
/* Starts with the value v at time now_ms (e.g. 0 at start-up). */
void metrics_rate_init(struct metrics_rate *r, int64_t now_ms, double v);
/* Records v at now_ms (at most one sample a second is kept) and returns
 * the rate per second since the oldest sample within
 * METRICS_RATE_WINDOW_MS that is at least a second old (or, when samples
 * are further apart, since the newest older one).  0 when no time passed. */
double metrics_rate_update(struct metrics_rate *r, int64_t now_ms, double v);

/* Writes v as the format writes floats: shortest round-trip form, NaN,
 * +Inf, -Inf.  buf needs 32 bytes.  Returns buf. */
char *metrics_format_double(char *buf, double v);

/* Tests only: forgets every series, family and collector.  No other thread
 * may use the registry or a handle meanwhile; handles become invalid. */
void metrics_reset(void);

#endif
