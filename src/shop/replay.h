/* replay.h: public e-commerce datasets turned into the events of DESIGN.md
 * ("Event contract"), in event-time order, without any Kafka in sight (the
 * command cmd_replay.c hands them to a shop_sink).  Inputs are read with the
 * CSV reader (csv.h), plain or zstd-compressed (recognised by the zstd magic
 * bytes 28 B5 2F FD), from files or stdin ("-").  Columns are found by their
 * header names, so column order and extra columns do not matter; a file whose
 * header lacks a needed column is not the dataset and is refused.
 *
 * Every input is read completely before the first event comes out (invoices
 * and orders are grouped over all files), then the events are sorted by ts;
 * events with equal ts keep the order in which they were made (file order of
 * the invoice / order / click, then step order within it).
 *
 * Shared rules.  Money: decimal text is converted to minor units exactly,
 * without floating point, rounding half away from zero (0.665 -> 67,
 * 1.005 -> 101, -2.345 -> -235).  Numbers may carry a sign, a fraction and
 * an exponent (1.5E-3).  Dates: "YYYY-MM-DD HH:MM[:SS[.fff]]" (also with 'T')
 * or the US/Excel "M/D/YYYY H:MM[:SS]".  A row with a missing column, an
 * unparseable number or date, an empty required field or an id longer than
 * REPLAY_MAX_ID_BYTES is skipped and counted; the first REPLAY_MAX_REPORTED
 * are kept with file, line and reason.  Event ids are deterministic, so a
 * replay of the same files makes the same events.
 *
 * online-retail (UCI Online Retail, DESIGN.md "Online Retail replay"):
 *   columns InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
 *   CustomerID (Description and Country are not used).  InvoiceDate is UTC.
 *   Rows are grouped by InvoiceNo over the whole input (an invoice's rows need
 *   not be contiguous); the invoice's ts is the date of its first row, its
 *   user_id the first non-empty CustomerID of its rows with a fraction of
 *   zeros dropped ("17850.0" -> "17850"), or "guest-<InvoiceNo>" when no row
 *   has one.  price = round(UnitPrice x 100).
 *   - InvoiceNo not starting with 'C': order_created (id
 *     "or-<InvoiceNo>-created", order_id InvoiceNo, items: one per row with
 *     Quantity > 0 and UnitPrice > 0 in file order {product_id StockCode, qty,
 *     price}, amount = sum of qty x price, currency GBP) and order_paid (id
 *     "or-<InvoiceNo>-paid", same ts and amount, payment_method "unknown").
 *     An invoice without such a row makes no event and is counted as skipped.
 *   - InvoiceNo starting with 'C': one refund_issued (id
 *     "or-<InvoiceNo>-refund", order_id = return_id = InvoiceNo with its C,
 *     items {product_id StockCode, qty |Quantity|} for rows with Quantity != 0,
 *     amount = sum of |Quantity| x price over all its rows, reason "cancelled
 *     invoice").  A refund whose amount would be negative (negative prices) is
 *     skipped and counted.
 *   An invoice whose amount overflows 64 bits is skipped and counted.  One
 *   invoice of the real data (573585) has 1109 item rows, more than
 *   SHOP_MAX_ITEMS; it is emitted whole (the rule says one item per row) and
 *   counted in replay_stats.oversized so the command can warn.
 *
 * olist (Brazilian E-Commerce by Olist): one or more orders files
 *   (order_id, customer_id, order_status, order_purchase_timestamp,
 *   order_approved_at, order_delivered_carrier_date,
 *   order_delivered_customer_date) and optionally payments files (order_id,
 *   payment_sequential, payment_type, payment_value) and items files
 *   (order_id, order_item_id, product_id, price, freight_value), told apart
 *   by their headers, in any order.  Timestamps are Brazil local time and are
 *   converted to UTC with a fixed offset of UTC-03:00 (local + 3 h; the
 *   dataset does not say which zone or whether daylight saving applied, and
 *   Sao Paulo's standard time is UTC-03:00).  user_id = customer_id, currency
 *   BRL, ids "ol-<order_id>-<step>".  Per order:
 *   - order_purchase_timestamp -> order_created: items = the order's rows of
 *     the items files (product_id, qty 1, price = round(price x 100)); without
 *     any, one item "olist-<order_id>" of qty 1 priced at the amount.
 *     amount = sum of payment_value of its payments when it has any, else
 *     sum of price + freight_value of its items, else 0.  (So with payments
 *     the amount includes freight and vouchers, and may differ from the sum
 *     of item prices.)  A row without a purchase timestamp is skipped.
 *   - order_approved_at -> order_paid: same amount; payment_method =
 *     payment_type of the payment with the smallest payment_sequential
 *     (normally 1), or "unknown" without payments.
 *   - order_delivered_carrier_date -> order_shipped, carrier "olist-logistics".
 *   - order_delivered_customer_date -> order_delivered.
 *   - order_status "canceled" -> order_cancelled at the latest of the order's
 *     timestamps above, reason "canceled".  Other statuses (unavailable,
 *     invoiced, processing, ...) add nothing.
 *   An empty timestamp means that step is not emitted; an unparseable one
 *   skips the row.  A duplicate order_id is skipped.  Payments and items of
 *   orders that are in no orders file are ignored and counted (unmatched).
 *
 * yoochoose (session-rec's YOOCHOOSE preparation): tab-separated
 *   SessionId, ItemId, Time (unix seconds, fractional), with a header; any
 *   number of files (train, then test).  Each row is one product_view on
 *   shop.clicks: id "yc-<SessionId>-<k>" (k = 0-based position of the click
 *   in its session in input order), user_id "yc-<SessionId>" (the dataset has
 *   no users), session_id SessionId, product_id ItemId, ts = round(Time x
 *   1000). */
#ifndef SHOPSTREAM_REPLAY_H
#define SHOPSTREAM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "shop/event.h"

#define REPLAY_MAX_REPORTED 5
/* Longest id value taken from a dataset, so that the event ids built from it
 * stay within SHOP_MAX_ID_BYTES. */
#define REPLAY_MAX_ID_BYTES 200

enum replay_dataset {
    REPLAY_ONLINE_RETAIL,
    REPLAY_OLIST,
    REPLAY_YOOCHOOSE,
};

/* Why a row was skipped. */
enum replay_bad {
    REPLAY_BAD_COLUMNS,    /* fewer fields than the header needs */
    REPLAY_BAD_EMPTY,      /* a required field is empty */
    REPLAY_BAD_NUMBER,     /* a number that does not parse or is out of range */
    REPLAY_BAD_DATE,       /* a date that does not parse or is before 1970 */
    REPLAY_BAD_LONG_ID,    /* an id longer than REPLAY_MAX_ID_BYTES */
    REPLAY_BAD_DUPLICATE,  /* olist: an order_id seen before */
    REPLAY_BAD__COUNT
};

struct replay_stats {
    long long rows;                       /* data rows read (headers excluded) */
    long long events[SHOP_EV__COUNT];     /* events of the replay, per type */
    long long events_total;
    long long bad_rows;                   /* rows skipped, all reasons */
    long long bad[REPLAY_BAD__COUNT];     /* rows skipped, per reason */
    long long not_items;       /* online-retail: rows of orders that are no item
                                * (Quantity <= 0 or UnitPrice <= 0) */
    long long skipped_orders;  /* invoices / orders that made no event (no item
                                * row, negative refund, amount overflow) */
    long long unmatched;       /* olist: payment/item rows of unknown orders */
    long long oversized;       /* orders with more than SHOP_MAX_ITEMS items */
    int nreported;                                /* entries in reported */
    char reported[REPLAY_MAX_REPORTED][256];      /* "FILE line N: reason" */
};

struct replay;

/* "online-retail", "olist", "yoochoose" -> *out.  Returns 0, or -1. */
int replay_dataset_parse(const char *name, enum replay_dataset *out);
const char *replay_bad_name(enum replay_bad b);

/* Returns owned (free with replay_free), or NULL when out of memory. */
struct replay *replay_new(enum replay_dataset ds);
void replay_free(struct replay *rp);

/* Reads one input file completely ("-" = stdin, at most once; zstd detected).
 * name labels the file in messages.  Returns 0, or -1 with a one-sentence
 * reason (no final period) in err: the file cannot be read, is malformed CSV,
 * or is not the dataset. */
int replay_load_file(struct replay *rp, const char *path, char *err, size_t errsz);

/* The same for bytes in memory p[0..n) (borrowed for the call only). */
int replay_load_mem(struct replay *rp, const char *name, const char *p, size_t n, char *err,
                    size_t errsz);

/* Ends loading: groups, builds and sorts the events.  Returns 0, or -1 with
 * a reason in err (olist without an orders file, out of memory). */
int replay_finish(struct replay *rp, char *err, size_t errsz);

/* The next event in ts order, or NULL after the last.  Returns a view valid
 * until the next replay_next or replay_free. */
const struct shop_event *replay_next(struct replay *rp);

/* A view of the counters (complete after replay_finish). */
const struct replay_stats *replay_stats(const struct replay *rp);

/* Exposed for tests.  Decimal text s[0..n) times 10^scale, rounded half away
 * from zero, exactly.  Returns 0, or -1 if it is not a number or out of
 * range. */
int replay_parse_scaled(const char *s, size_t n, int scale, int64_t *out);
/* A date in one of the formats above, read as UTC, in ms since the epoch.
 * Returns 0, or -1. */
int replay_parse_time(const char *s, size_t n, int64_t *ms);

#endif
