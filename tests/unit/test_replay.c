/* test_replay.c: dataset -> event mappings (shop/replay.h) without Kafka:
 * exact decimal money rounding, both date formats, the Online Retail rule of
 * DESIGN.md (guests, non-contiguous invoices, skipped invoices, C invoices,
 * bad rows), Olist with and without payments and items files (in any order,
 * UTC-03:00), YOOCHOOSE clicks over two files, event-time order with stable
 * ties, zstd input (one frame, several frames, truncated, corrupt) and the
 * one-sentence refusal of a file that is not the dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/alloc.h"
#include "shop/replay.h"
#include "test.h"

/* ------------------------------------------------------------------ */

TEST(replay_money_is_exact_decimal)
{
    static const struct {
        const char *s;
        int scale;
        long long want;
    } ok[] = {
        {"0.665", 2, 67},    {"1.005", 2, 101},   {"2.55", 2, 255},     {"-2.345", 2, -235},
        {"0.004", 2, 0},     {"0.005", 2, 1},     {"-0.005", 2, -1},    {"17", 2, 1700},
        {".5", 2, 50},       {"5.", 2, 500},      {"+3.10", 2, 310},    {" 4.2 ", 2, 420},
        {"1.5E-3", 3, 2},    {"2.5e2", 0, 250},   {"1e-9", 2, 0},       {"0", 2, 0},
        {"00012.340", 2, 1234}, {"10.5", 2, 1050}, {"-11062.06", 2, -1106206},
        {"1396860669.277", 3, 1396860669277LL},   {"1396860669.2775", 3, 1396860669278LL},
        {"1396860669", 3, 1396860669000LL},       {"92233720368547758.07", 2, 9223372036854775807LL},
    };
    static const char *const bad[] = {
        "", "abc", "1.2.3", "1e", "e5", "--1", "1,5", "0x10", "nan", "inf", ".", "-",
        "1 2", "92233720368547758.08", "99999999999999999999", "1e99999",
    };
    int64_t v;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v = -42;
        if (replay_parse_scaled(ok[i].s, strlen(ok[i].s), ok[i].scale, &v) != 0 ||
            v != ok[i].want) {
            fprintf(stderr, "  '%s' -> %lld, want %lld\n", ok[i].s, (long long)v, ok[i].want);
            CHECK(0);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (replay_parse_scaled(bad[i], strlen(bad[i]), 2, &v) == 0) {
            fprintf(stderr, "  '%s' accepted as %lld\n", bad[i], (long long)v);
            CHECK(0);
        }
    }
}

TEST(replay_dates_both_formats)
{
    static const struct {
        const char *s;
        long long want;
    } ok[] = {
        {"2010-12-01 08:26:00", 1291191960000LL},
        {"12/1/2010 8:26", 1291191960000LL},
        {"12/01/2010 08:26:00", 1291191960000LL},
        {"2010-12-01 08:26", 1291191960000LL},
        {"2010-12-01T08:26:00Z", 1291191960000LL},
        {"2010-12-01 08:26:00.250", 1291191960250LL},
        {"2012-02-29 23:59:59", 1330559999000LL},
        {"1970-01-01 00:00:00", 0},
        {"10/2/2017 10:56", 1506941760000LL},
    };
    static const char *const bad[] = {
        "", "2010-12-01", "2011-02-29 00:00:00", "2010-13-01 00:00:00", "2010-12-32 00:00:00",
        "2010-12-01 24:00:00", "2010-12-01 08:60:00", "13/1/2010 8:26", "12/1/10 8:26",
        "1969-12-31 23:59:59", "2010-12-01 08:26:00 junk", "12/1/2010", "yesterday",
        "2010-12-01 8:6",
    };
    int64_t ms;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms = -1;
        if (replay_parse_time(ok[i].s, strlen(ok[i].s), &ms) != 0 || ms != ok[i].want) {
            fprintf(stderr, "  '%s' -> %lld, want %lld\n", ok[i].s, (long long)ms, ok[i].want);
            CHECK(0);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (replay_parse_time(bad[i], strlen(bad[i]), &ms) == 0) {
            fprintf(stderr, "  '%s' accepted as %lld\n", bad[i], (long long)ms);
            CHECK(0);
        }
    }
}

/* ------------------------------------------------------------------ */

static void put_str(char **p, const char *name, struct shop_str s)
{
    if (s.p)
        *p += sprintf(*p, " %s=%.*s", name, (int)s.n, s.p);
}

/* One event as a line: "type id ts [field=value]... [items=p:q:price,...]". */
static void render_event(const struct shop_event *e, char *out)
{
    char *p = out;

    p += sprintf(p, "%s %.*s %lld", shop_event_type_name(e->type), (int)e->id.n, e->id.p,
                 (long long)e->ts);
    put_str(&p, "order", e->order_id);
    put_str(&p, "user", e->user_id);
    put_str(&p, "session", e->session_id);
    put_str(&p, "product", e->product_id);
    if (e->amount >= 0)
        p += sprintf(p, " amount=%lld", (long long)e->amount);
    put_str(&p, "currency", e->currency);
    put_str(&p, "method", e->payment_method);
    put_str(&p, "carrier", e->carrier);
    put_str(&p, "reason", e->reason);
    put_str(&p, "return", e->return_id);
    if (e->nitems) {
        p += sprintf(p, " items=");
        for (size_t i = 0; i < e->nitems; i++)
            p += sprintf(p, "%s%.*s:%lld:%lld", i ? "," : "", (int)e->items[i].product_id.n,
                         e->items[i].product_id.p, (long long)e->items[i].qty,
                         (long long)e->items[i].price);
    }
    *p++ = '\n';
    *p = '\0';
}

/* Every event of a finished replay, one line each (owned string). */
static char *render_all(struct replay *rp)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap), line[8192];
    const struct shop_event *e;

    CHECK(out);
    out[0] = '\0';
    while ((e = replay_next(rp))) {
        render_event(e, line);
        CHECK(len + strlen(line) < cap);
        strcpy(out + len, line);
        len += strlen(line);
    }
    return out;
}

static void load_mem(struct replay *rp, const char *name, const char *text)
{
    char err[512];
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);

    CHECK(copy);
    memcpy(copy, text, n);
    if (replay_load_mem(rp, name, copy, n, err, sizeof err) != 0) {
        fprintf(stderr, "  load %s: %s\n", name, err);
        CHECK(0);
    }
    free(copy);
}

static void finish(struct replay *rp)
{
    char err[512];

    if (replay_finish(rp, err, sizeof err) != 0) {
        fprintf(stderr, "  finish: %s\n", err);
        CHECK(0);
    }
}

static void check_text(const char *got, const char *want)
{
    if (strcmp(got, want)) {
        fprintf(stderr, "  got:\n%s  want:\n%s", got, want);
        CHECK(0);
    }
}

/* ------------------------------------------------------------------ */

static const char retail_csv[] =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "1001,A1,\"Lamp, red\",2,2010-12-01 08:26:00,0.665,17850.0,United Kingdom\n"
    "1001,B2,Free gift,1,2010-12-01 08:26:00,0,17850.0,United Kingdom\n"
    "1002,C3,\"Mug \"\"big\"\"\",3,12/1/2010 8:26,1.005,,France\n"
    "1003,D4,Adjust,-5,2010-12-02 09:00:00,2.00,12345,United Kingdom\n"
    "C1004,A1,\"Lamp, red\",-2,2010-12-02 10:00:00,0.665,17850,United Kingdom\n"
    "1001,E5,Late row,1,2010-12-03 00:00:00,10,17850.0,United Kingdom\n"
    "1005,F6,Bad qty,x,2010-12-02 11:00:00,1.00,1,United Kingdom\n"
    "1006,F6,Bad date,1,2010-13-02 11:00:00,1.00,1,United Kingdom\n"
    "1007,F6,Short,1,2010-12-02 11:00:00\n"
    "C1004,B9,Other,-1,2010-12-02 10:00:00,3.5,17850,United Kingdom\n"
    "1008,G7,Adjust bad debt,1,2010-12-01 07:00:00,-11062.06,,United Kingdom\n"
    "1009,H8,No customer yet,1,2010-12-01 08:26:00,1,,United Kingdom\n"
    "1009,H9,Customer later,1,2010-12-01 08:26:00,1,13047.0,United Kingdom\n";

static const char retail_events[] =
    "order_created or-1001-created 1291191960000 order=1001 user=17850 amount=1134 currency=GBP"
    " items=A1:2:67,E5:1:1000\n"
    "order_paid or-1001-paid 1291191960000 order=1001 user=17850 amount=1134 currency=GBP"
    " method=unknown\n"
    "order_created or-1002-created 1291191960000 order=1002 user=guest-1002 amount=303"
    " currency=GBP items=C3:3:101\n"
    "order_paid or-1002-paid 1291191960000 order=1002 user=guest-1002 amount=303 currency=GBP"
    " method=unknown\n"
    "order_created or-1009-created 1291191960000 order=1009 user=13047 amount=200 currency=GBP"
    " items=H8:1:100,H9:1:100\n"
    "order_paid or-1009-paid 1291191960000 order=1009 user=13047 amount=200 currency=GBP"
    " method=unknown\n"
    "refund_issued or-C1004-refund 1291284000000 order=C1004 user=17850 amount=484 currency=GBP"
    " reason=cancelled invoice return=C1004 items=A1:2:-1,B9:1:-1\n";

TEST(replay_online_retail_mapping)
{
    struct replay *rp = replay_new(REPLAY_ONLINE_RETAIL);
    const struct replay_stats *st;
    char *got;

    CHECK(rp);
    load_mem(rp, "retail.csv", retail_csv);
    finish(rp);
    got = render_all(rp);
    check_text(got, retail_events);
    free(got);

    st = replay_stats(rp);
    CHECK_EQ(st->rows, 13);
    CHECK_EQ(st->bad_rows, 3);
    CHECK_EQ(st->bad[REPLAY_BAD_NUMBER], 1);
    CHECK_EQ(st->bad[REPLAY_BAD_DATE], 1);
    CHECK_EQ(st->bad[REPLAY_BAD_COLUMNS], 1);
    CHECK_EQ(st->skipped_orders, 2); /* 1003 (negative qty), 1008 (negative price) */
    CHECK_EQ(st->not_items, 3);      /* B2, D4, G7 */
    CHECK_EQ(st->events[SHOP_EV_ORDER_CREATED], 3);
    CHECK_EQ(st->events[SHOP_EV_ORDER_PAID], 3);
    CHECK_EQ(st->events[SHOP_EV_REFUND_ISSUED], 1);
    CHECK_EQ(st->events_total, 7);
    CHECK_EQ(st->nreported, 3);
    CHECK(!strcmp(st->reported[0], "retail.csv line 8: Quantity 'x' is not an integer number"));
    CHECK(!strcmp(st->reported[1], "retail.csv line 9: InvoiceDate '2010-13-02 11:00:00' is not "
                                   "a date"));
    CHECK(!strcmp(st->reported[2], "retail.csv line 10: 5 fields where the header has 8"));
    /* the end stays the end */
    CHECK(replay_next(rp) == NULL);
    replay_free(rp);
}

TEST(replay_online_retail_columns_by_name_and_over_files)
{
    /* columns in another order, CRLF, a BOM; the invoice continues in a
     * second file */
    struct replay *rp = replay_new(REPLAY_ONLINE_RETAIL);
    char *got;

    CHECK(rp);
    load_mem(rp, "a.csv",
             "\xEF\xBB\xBF" "Country,CustomerID,UnitPrice,InvoiceDate,Quantity,Description,"
             "StockCode,InvoiceNo\r\n"
             "UK,17850,2.55,2010-12-01 08:26:00,6,\"WHITE, HANGING\",85123A,536365\r\n");
    load_mem(rp, "b.csv",
             "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
             "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,UK\n"
             "536364,X,earlier,1,12/1/2010 8:25,1,,UK\n");
    finish(rp);
    got = render_all(rp);
    check_text(got,
               "order_created or-536364-created 1291191900000 order=536364 user=guest-536364"
               " amount=100 currency=GBP items=X:1:100\n"
               "order_paid or-536364-paid 1291191900000 order=536364 user=guest-536364"
               " amount=100 currency=GBP method=unknown\n"
               "order_created or-536365-created 1291191960000 order=536365 user=17850"
               " amount=3564 currency=GBP items=85123A:6:255,71053:6:339\n"
               "order_paid or-536365-paid 1291191960000 order=536365 user=17850 amount=3564"
               " currency=GBP method=unknown\n");
    free(got);
    replay_free(rp);
}

TEST(replay_online_retail_reports_at_most_a_few_rows)
{
    struct replay *rp = replay_new(REPLAY_ONLINE_RETAIL);
    char text[8192];
    size_t n;

    CHECK(rp);
    n = (size_t)sprintf(text, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                              "CustomerID,Country\n");
    for (int i = 0; i < 20; i++)
        n += (size_t)sprintf(text + n, "%d,S,d,1,2010-12-01 08:26:00,abc,,UK\n", 5000 + i);
    load_mem(rp, "bad.csv", text);
    finish(rp);
    CHECK_EQ(replay_stats(rp)->bad_rows, 20);
    CHECK_EQ(replay_stats(rp)->bad[REPLAY_BAD_NUMBER], 20);
    CHECK_EQ(replay_stats(rp)->nreported, REPLAY_MAX_REPORTED);
    CHECK_EQ(replay_stats(rp)->events_total, 0);
    CHECK(replay_next(rp) == NULL);
    replay_free(rp);
}

TEST(replay_refuses_other_files)
{
    static const struct {
        enum replay_dataset ds;
        const char *text;
        const char *want;
    } cases[] = {
        {REPLAY_ONLINE_RETAIL, "order_id,customer_id\nx,y\n",
         "f.csv is not the Online Retail dataset: its header has no InvoiceNo column"},
        {REPLAY_ONLINE_RETAIL, "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice\n",
         "f.csv is not the Online Retail dataset: its header has no CustomerID column"},
        {REPLAY_ONLINE_RETAIL, "", "f.csv is empty (it has no header line)"},
        {REPLAY_OLIST, "\"product_id\",\"product_category_name\"\n\"a\",b\n",
         "f.csv is not an Olist orders, payments or items file: its header lacks their columns"},
        {REPLAY_YOOCHOOSE, "SessionId,ItemId,Time\n1,2,3\n",
         "f.csv is not a YOOCHOOSE session file: its header has no SessionId column (expected "
         "tab-separated SessionId, ItemId, Time)"},
        {REPLAY_ONLINE_RETAIL, "InvoiceNo,\"StockCode\n",
         "f.csv: line 2: unterminated quoted field (opened on line 1)"},
    };
    char err[512];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct replay *rp = replay_new(cases[i].ds);

        CHECK(rp);
        err[0] = '\0';
        CHECK_EQ(replay_load_mem(rp, "f.csv", cases[i].text, strlen(cases[i].text), err,
                                 sizeof err),
                 -1);
        if (strcmp(err, cases[i].want)) {
            fprintf(stderr, "  got:  %s\n  want: %s\n", err, cases[i].want);
            CHECK(0);
        }
        replay_free(rp);
    }
}

/* ------------------------------------------------------------------ */

static const char olist_orders[] =
    "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
    "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\r\n"
    "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,2017-10-04 19:55:00,"
    "2017-10-10 21:25:13,2017-10-18 00:00:00\r\n"
    "o2,c2,canceled,10/3/2017 9:00,10/3/2017 9:30,,,10/20/2017 0:00\r\n"
    "o3,c3,processing,10/2/2017 10:56,,,,\r\n"
    "o4,c4,delivered,notadate,,,,\r\n"
    "o5,c5,delivered,,,,,\r\n"
    "o1,c9,delivered,2017-10-02 10:56:33,,,,\r\n";
static const char olist_payments[] =
    "order_id,payment_sequential,payment_type,payment_installments,payment_value\n"
    "o1,2,voucher,1,10.5\n"
    "ox,1,boleto,1,99\n"
    "o1,1,credit_card,8,89.00\n"
    "o2,1,boleto,1,20\n";
static const char olist_items[] =
    "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
    "o1,1,P1,s,2017-10-06 11:07:15,79.90,10.00\n"
    "o1,2,P2,s,2017-10-06 11:07:15,9.60,0\n"
    "o3,1,P3,s,2017-10-06 11:07:15,5.00,1.005\n"
    "oy,1,P4,s,2017-10-06 11:07:15,1,1\n";

TEST(replay_olist_with_payments_and_items)
{
    struct replay *rp = replay_new(REPLAY_OLIST);
    const struct replay_stats *st;
    char *got;

    CHECK(rp);
    /* any order on the command line */
    load_mem(rp, "items.csv", olist_items);
    load_mem(rp, "orders.csv", olist_orders);
    load_mem(rp, "payments.csv", olist_payments);
    finish(rp);
    got = render_all(rp);
    check_text(got,
               "order_created ol-o3-created 1506952560000 order=o3 user=c3 amount=601"
               " currency=BRL items=P3:1:500\n"
               "order_created ol-o1-created 1506952593000 order=o1 user=c1 amount=9950"
               " currency=BRL items=P1:1:7990,P2:1:960\n"
               "order_paid ol-o1-paid 1506953235000 order=o1 user=c1 amount=9950 currency=BRL"
               " method=credit_card\n"
               "order_created ol-o2-created 1507032000000 order=o2 user=c2 amount=2000"
               " currency=BRL items=olist-o2:1:2000\n"
               "order_paid ol-o2-paid 1507033800000 order=o2 user=c2 amount=2000 currency=BRL"
               " method=boleto\n"
               "order_cancelled ol-o2-cancelled 1507033800000 order=o2 user=c2 reason=canceled\n"
               "order_shipped ol-o1-shipped 1507157700000 order=o1 user=c1"
               " carrier=olist-logistics\n"
               "order_delivered ol-o1-delivered 1507681513000 order=o1 user=c1\n");
    free(got);
    st = replay_stats(rp);
    CHECK_EQ(st->rows, 6 + 4 + 4);
    CHECK_EQ(st->bad_rows, 3);
    CHECK_EQ(st->bad[REPLAY_BAD_DATE], 1);      /* o4 */
    CHECK_EQ(st->bad[REPLAY_BAD_EMPTY], 1);     /* o5: no purchase timestamp */
    CHECK_EQ(st->bad[REPLAY_BAD_DUPLICATE], 1); /* o1 again */
    CHECK_EQ(st->unmatched, 2);                 /* ox payment, oy item */
    CHECK_EQ(st->events[SHOP_EV_ORDER_CREATED], 3);
    CHECK_EQ(st->events[SHOP_EV_ORDER_CANCELLED], 1);
    replay_free(rp);
}

TEST(replay_olist_orders_only)
{
    struct replay *rp = replay_new(REPLAY_OLIST);
    char *got;

    CHECK(rp);
    load_mem(rp, "orders.csv", olist_orders);
    finish(rp);
    got = render_all(rp);
    check_text(got,
               "order_created ol-o3-created 1506952560000 order=o3 user=c3 amount=0"
               " currency=BRL items=olist-o3:1:0\n"
               "order_created ol-o1-created 1506952593000 order=o1 user=c1 amount=0"
               " currency=BRL items=olist-o1:1:0\n"
               "order_paid ol-o1-paid 1506953235000 order=o1 user=c1 amount=0 currency=BRL"
               " method=unknown\n"
               "order_created ol-o2-created 1507032000000 order=o2 user=c2 amount=0"
               " currency=BRL items=olist-o2:1:0\n"
               "order_paid ol-o2-paid 1507033800000 order=o2 user=c2 amount=0 currency=BRL"
               " method=unknown\n"
               "order_cancelled ol-o2-cancelled 1507033800000 order=o2 user=c2 reason=canceled\n"
               "order_shipped ol-o1-shipped 1507157700000 order=o1 user=c1"
               " carrier=olist-logistics\n"
               "order_delivered ol-o1-delivered 1507681513000 order=o1 user=c1\n");
    free(got);
    replay_free(rp);
}

TEST(replay_olist_payments_without_items_and_items_without_payments)
{
    struct replay *rp = replay_new(REPLAY_OLIST);
    char *got;

    CHECK(rp);
    load_mem(rp, "payments.csv", olist_payments);
    load_mem(rp, "orders.csv", "order_id,customer_id,order_status,order_purchase_timestamp,"
                               "order_approved_at,order_delivered_carrier_date,"
                               "order_delivered_customer_date\n"
                               "o1,c1,delivered,2017-10-02 10:56:33,,,\n");
    finish(rp);
    got = render_all(rp);
    check_text(got, "order_created ol-o1-created 1506952593000 order=o1 user=c1 amount=9950"
                    " currency=BRL items=olist-o1:1:9950\n");
    free(got);
    replay_free(rp);

    rp = replay_new(REPLAY_OLIST);
    CHECK(rp);
    load_mem(rp, "orders.csv", "order_id,customer_id,order_status,order_purchase_timestamp,"
                               "order_approved_at,order_delivered_carrier_date,"
                               "order_delivered_customer_date\n"
                               "o1,c1,delivered,2017-10-02 10:56:33,2017-10-02 11:07:15,,\n");
    load_mem(rp, "items.csv", olist_items);
    finish(rp);
    got = render_all(rp);
    check_text(got, "order_created ol-o1-created 1506952593000 order=o1 user=c1 amount=9950"
                    " currency=BRL items=P1:1:7990,P2:1:960\n"
                    "order_paid ol-o1-paid 1506953235000 order=o1 user=c1 amount=9950"
                    " currency=BRL method=unknown\n");
    free(got);
    replay_free(rp);
}

TEST(replay_olist_needs_an_orders_file)
{
    struct replay *rp = replay_new(REPLAY_OLIST);
    char err[256];

    CHECK(rp);
    load_mem(rp, "payments.csv", olist_payments);
    CHECK_EQ(replay_finish(rp, err, sizeof err), -1);
    CHECK(strstr(err, "olist needs an orders file"));
    replay_free(rp);
}

/* ------------------------------------------------------------------ */

TEST(replay_yoochoose_clicks)
{
    struct replay *rp = replay_new(REPLAY_YOOCHOOSE);
    char *got;

    CHECK(rp);
    load_mem(rp, "train.txt",
             "SessionId\tItemId\tTime\n"
             "1\t100\t1396860669.2775\n"
             "1\t101\t1396860670\n"
             "2\t200\t1396860669.2775\n");
    load_mem(rp, "test.txt",
             "SessionId\tItemId\tTime\n"
             "3\t300\t1396860600.5\n"
             "1\t102\tbad\n"
             "1\t103\t1396860700\n");
    finish(rp);
    got = render_all(rp);
    check_text(got,
               "product_view yc-3-0 1396860600500 user=yc-3 session=3 product=300\n"
               "product_view yc-1-0 1396860669278 user=yc-1 session=1 product=100\n"
               "product_view yc-2-0 1396860669278 user=yc-2 session=2 product=200\n"
               "product_view yc-1-1 1396860670000 user=yc-1 session=1 product=101\n"
               "product_view yc-1-2 1396860700000 user=yc-1 session=1 product=103\n");
    free(got);
    CHECK_EQ(replay_stats(rp)->bad[REPLAY_BAD_NUMBER], 1);
    CHECK_EQ(replay_stats(rp)->events[SHOP_EV_PRODUCT_VIEW], 5);
    replay_free(rp);
}

/* ------------------------------------------------------------------ */

static char *write_file(const char *name, const void *p, size_t n)
{
    char *path = malloc(512);
    FILE *f;

    CHECK(path);
    snprintf(path, 512, "%s/%s", test_tmpdir(), name);
    CHECK((f = fopen(path, "wb")));
    CHECK(fwrite(p, 1, n, f) == n);
    CHECK(fclose(f) == 0);
    return path;
}

/* zstd frame(s) of text: the whole text in one frame, or split in two. */
static size_t compress(const char *text, int frames, char *out, size_t cap)
{
    size_t n = strlen(text), half = frames > 1 ? n / 2 : n, a, b = 0;

    a = ZSTD_compress(out, cap, text, half, 3);
    CHECK(!ZSTD_isError(a));
    if (frames > 1) {
        b = ZSTD_compress(out + a, cap - a, text + half, n - half, 3);
        CHECK(!ZSTD_isError(b));
    }
    return a + b;
}

TEST(replay_reads_zstd_files)
{
    char z[8192], err[512], *path, *got;
    size_t zn;

    for (int frames = 1; frames <= 2; frames++) {
        struct replay *rp = replay_new(REPLAY_ONLINE_RETAIL);

        CHECK(rp);
        zn = compress(retail_csv, frames, z, sizeof z);
        path = write_file("retail.csv.zst", z, zn);
        if (replay_load_file(rp, path, err, sizeof err) != 0) {
            fprintf(stderr, "  %s\n", err);
            CHECK(0);
        }
        finish(rp);
        got = render_all(rp);
        check_text(got, retail_events);
        free(got);
        free(path);
        replay_free(rp);
    }

    /* the same file, plain */
    {
        struct replay *rp = replay_new(REPLAY_ONLINE_RETAIL);

        path = write_file("retail.csv", retail_csv, strlen(retail_csv));
        CHECK(rp);
        CHECK_EQ(replay_load_file(rp, path, err, sizeof err), 0);
        finish(rp);
        got = render_all(rp);
        check_text(got, retail_events);
        free(got);
        free(path);
        replay_free(rp);
    }
}

TEST(replay_refuses_broken_zstd)
{
    char z[8192], err[512], *path;
    size_t zn = compress(retail_csv, 1, z, sizeof z);
    struct replay *rp;

    /* truncated */
    path = write_file("cut.csv.zst", z, zn - 3);
    CHECK((rp = replay_new(REPLAY_ONLINE_RETAIL)));
    CHECK_EQ(replay_load_file(rp, path, err, sizeof err), -1);
    CHECK(strstr(err, "the zstd data ends in the middle of a frame (truncated?)"));
    replay_free(rp);
    free(path);

    /* corrupt after the magic bytes */
    memset(z + 4, 0xff, 16);
    path = write_file("bad.csv.zst", z, zn);
    CHECK((rp = replay_new(REPLAY_ONLINE_RETAIL)));
    CHECK_EQ(replay_load_file(rp, path, err, sizeof err), -1);
    CHECK(strstr(err, "invalid zstd data"));
    replay_free(rp);
    free(path);

    /* missing file */
    CHECK((rp = replay_new(REPLAY_ONLINE_RETAIL)));
    CHECK_EQ(replay_load_file(rp, "/nonexistent/x.csv", err, sizeof err), -1);
    CHECK(!strcmp(err, "cannot open /nonexistent/x.csv: No such file or directory"));
    replay_free(rp);
}

TEST(replay_dataset_names)
{
    enum replay_dataset ds;

    CHECK_EQ(replay_dataset_parse("online-retail", &ds), 0);
    CHECK_EQ(ds, REPLAY_ONLINE_RETAIL);
    CHECK_EQ(replay_dataset_parse("olist", &ds), 0);
    CHECK_EQ(ds, REPLAY_OLIST);
    CHECK_EQ(replay_dataset_parse("yoochoose", &ds), 0);
    CHECK_EQ(ds, REPLAY_YOOCHOOSE);
    CHECK_EQ(replay_dataset_parse("retailrocket", &ds), -1);
}

TEST(replay_survives_allocation_failures)
{
    char err[512];
    int completed = 0;

    /* every allocation in turn fails: loading or finishing reports "out of
     * memory" (or the replay is not created at all); nothing crashes or
     * leaks, and once enough memory is there the events are complete */
    for (long k = 0; k < 400 && !completed; k++) {
        size_t live = alloc_live_bytes();
        struct replay *rp;

        alloc_fail_after(k);
        rp = replay_new(REPLAY_OLIST);
        if (rp) {
            if (replay_load_mem(rp, "orders.csv", olist_orders, strlen(olist_orders), err,
                                sizeof err) < 0 ||
                replay_load_mem(rp, "items.csv", olist_items, strlen(olist_items), err,
                                sizeof err) < 0 ||
                replay_finish(rp, err, sizeof err) < 0) {
                CHECK(strstr(err, "out of memory"));
            } else {
                alloc_fail_after(-1);
                CHECK_EQ(replay_stats(rp)->events_total, 8);
                completed = 1;
            }
            replay_free(rp);
        }
        alloc_fail_after(-1);
        CHECK_EQ(alloc_live_bytes(), live);
    }
    CHECK(completed);
}

/* Every event a replay makes passes the event contract (shop/event.h): it is
 * written as JSON and parsed back with every required field checked. */
static void check_contract(struct replay *rp)
{
    const struct shop_event *e;
    struct shop_event back;
    struct jbuf out;
    char reason[256];
    int n = 0;

    shop_event_init(&back);
    jbuf_init(&out);
    while ((e = replay_next(rp))) {
        jbuf_reset(&out);
        CHECK_EQ(shop_event_write(e, &out), 0);
        if (shop_event_parse(&back, out.p, out.len, reason, sizeof reason) != 0) {
            fprintf(stderr, "  %.*s\n  rejected: %s\n", (int)out.len, out.p, reason);
            CHECK(0);
        }
        CHECK_EQ(back.type, e->type);
        CHECK_EQ(back.ts, e->ts);
        CHECK_EQ(back.amount, e->amount);
        CHECK_EQ(back.nitems, e->nitems);
        n++;
    }
    CHECK(n > 0);
    jbuf_free(&out);
    shop_event_free(&back);
}

TEST(replay_events_pass_the_event_contract)
{
    struct replay *rp;

    CHECK((rp = replay_new(REPLAY_ONLINE_RETAIL)));
    load_mem(rp, "retail.csv", retail_csv);
    finish(rp);
    check_contract(rp);
    replay_free(rp);

    CHECK((rp = replay_new(REPLAY_OLIST)));
    load_mem(rp, "orders.csv", olist_orders);
    load_mem(rp, "payments.csv", olist_payments);
    load_mem(rp, "items.csv", olist_items);
    finish(rp);
    check_contract(rp);
    replay_free(rp);

    CHECK((rp = replay_new(REPLAY_OLIST)));
    load_mem(rp, "orders.csv", olist_orders);
    finish(rp);
    check_contract(rp);
    replay_free(rp);

    CHECK((rp = replay_new(REPLAY_YOOCHOOSE)));
    load_mem(rp, "clicks.txt", "SessionId\tItemId\tTime\n1\t2\t1396860669.277\n");
    finish(rp);
    check_contract(rp);
    replay_free(rp);
}
