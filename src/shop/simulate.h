/* simulate.h: the shop traffic generator behind `shopstream simulate`.  It
 * produces realistic e-commerce events (DESIGN.md, "Event contract") as
 * struct shop_event values in non-decreasing ts order, and the stream is a
 * pure function of (seed, start, options): no clock, no rand(), no I/O, so
 * the same inputs give a byte-identical stream and tests can drive it.
 *
 * The model: a catalogue of products (category, log-normal price, Zipf
 * popularity), users that return with a mild skew, and sessions that arrive
 * as a Poisson process whose rate follows a diurnal curve in event time
 * (trough near 04:00 UTC, peak near 20:00 UTC; its mean over a day is 1, so
 * the event rate at a given hour is the --rate times the curve there).  The
 * shop is already busy at the start: sessions under way then show up from
 * their next click on.  A session walks a shopping funnel on shop.clicks; a
 * purchase opens an order whose life (payment, shipping, delivery,
 * cancellation, returns and refunds) unfolds on shop.orders and
 * shop.aftersales.  Every pending step waits in one min-heap
 * ordered by (ts, sequence number).
 *
 * Pacing against a wall clock and writing the events somewhere (sink.h) are
 * left to the caller (src/cli/cmd_simulate.c). */
#ifndef SHOPSTREAM_SIMULATE_H
#define SHOPSTREAM_SIMULATE_H

#include <stdint.h>

#include "shop/event.h"

/* Limits on the options (cmd_simulate checks them; sim_new refuses others). */
#define SIM_MAX_USERS 100000000
#define SIM_MAX_PRODUCTS 1000000
#define SIM_MAX_CART 16 /* distinct products in one cart, hence one order */

struct sim_opts {
    double rate;          /* mean events per second over a day (all topics) */
    int64_t start_ms;     /* event time of the start, ms since the epoch */
    int64_t duration_ms;  /* events at or after start + duration are not
                           * emitted; < 0 means no end */
    long long max_events; /* stop after this many events; 0 = no limit */
    int users;            /* 1..SIM_MAX_USERS */
    int products;         /* 1..SIM_MAX_PRODUCTS */
    uint64_t seed;
    double time_scale;    /* order and after-sales delays are divided by
                           * this (>= 1e-3); think times inside a session
                           * and session arrivals are not */
    char id_prefix[16];   /* put before order, session and return ids, so
                           * that runs into the same topics do not reuse
                           * them ("" by default) */
};

/* Counters of what sim_next has returned so far. */
struct sim_stats {
    long long events;          /* all events */
    long long clicks;          /* shop.clicks events */
    long long order_events;    /* shop.orders events */
    long long aftersales;      /* shop.aftersales events */
    long long sessions;        /* sessions started, the warm-up's included */
    long long orders;          /* orders created */
    long long live_sessions;   /* sessions still walking */
    long long live_orders;     /* orders with an event still pending */
    int64_t clock_ms;          /* ts of the last event (start_ms before) */
};

struct sim;

/* Fills o with the defaults of `shopstream simulate` (rate 100, duration
 * 60 s, 10000 users, 1000 products, seed 1, time scale 1), start_ms = 0. */
void sim_opts_default(struct sim_opts *o);

/* Builds the catalogue and the first session arrival.  Returns owned (free
 * with sim_free), or NULL when an option is out of range or memory ran out;
 * errstr (may be NULL) then says which in one sentence. */
struct sim *sim_new(const struct sim_opts *o, char *errstr, size_t errsz);
void sim_free(struct sim *s);

/* The next event.  Returns 1 with *ev filled (every view in it points into
 * s and stays valid until the next sim_next or sim_free; ev owns nothing and
 * must not be passed to shop_event_free), or 0 when the run is over (end of
 * the duration or max_events reached). */
int sim_next(struct sim *s, struct shop_event *ev);

void sim_get_stats(const struct sim *s, struct sim_stats *out);

/* The mean number of events one session leads to (its clicks plus the
 * order and after-sales events of its purchase, if any), as estimated when
 * the arrival rate was calibrated.  For tests and the curious. */
double sim_events_per_session(const struct sim *s);

/* The relative session arrival rate at event time ts (UTC): a diurnal
 * curve with mean 1 over a day. */
double sim_diurnal(int64_t ts);

/* Parses a start time: an integer of ms since the epoch, or
 * YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:MM]] (UTC without a zone).
 * Returns 0 with *out set, or -1. */
int sim_parse_time(const char *s, int64_t *out);

#endif
