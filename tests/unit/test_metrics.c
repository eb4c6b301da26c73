/* test_metrics.c: the metrics registry and its text exposition
 * (serve/metrics.c): exact output of counters, gauges and histograms
 * (cumulative buckets, +Inf, _sum, _count), label and HELP escaping with
 * invalid UTF-8, name checks, one handle per series, collectors (families
 * merged across collectors, duplicate series and clashing names dropped,
 * empty families left out, unregistering), float formatting, the rate
 * helper, exact totals under concurrent updates while rendering, the
 * processors' collector (one series per kind and name, summed), the
 * /metrics HTTP server (200, HEAD, 404 and 405 as JSON, its listener closed
 * on stop) and the flush thread's fsync observer. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/obuf.h"
#include "serve/metrics.h"
#include "serve/metrics_http.h"
#include "shop/proc_private.h"
#include "storage/flusher.h"
#include "test.h"

/* Renders the registry into a NUL-terminated string (owned: free). */
static char *render(void)
{
    struct obuf o;
    obuf_init(&o);
    CHECK_EQ(metrics_render(&o), 0);
    char *s = malloc(o.len + 1);
    CHECK(s);
    memcpy(s, o.data, o.len);
    s[o.len] = 0;
    obuf_free(&o);
    return s;
}

static void check_text(const char *got, const char *want)
{
    if (strcmp(got, want)) {
        fprintf(stderr, "  got:\n%s\n  want:\n%s\n", got, want);
        CHECK(!"output differs");
    }
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

TEST(metrics_counter_gauge_render)
{
    metrics_reset();
    struct metric *p = metrics_counter("t_requests_total", "Requests by API.", METRICS_LABELS({"api", "Produce"}));
    struct metric *f = metrics_counter("t_requests_total", "ignored", METRICS_LABELS({"api", "Fetch"}));
    struct metric *g = metrics_gauge("t_connections", "Open connections.", NULL, 0);
    CHECK(p && f && g && p != f);
    CHECK(metrics_counter("t_requests_total", "x", METRICS_LABELS({"api", "Produce"})) == p);
    metrics_inc(p);
    metrics_add(p, 41);
    metrics_add(p, -5); /* ignored on a counter */
    metrics_add(g, 3);
    metrics_add(g, -1);
    CHECK(metrics_value(p) == 42);
    char *s = render();
    check_text(s, "# HELP t_requests_total Requests by API.\n"
                  "# TYPE t_requests_total counter\n"
                  "t_requests_total{api=\"Produce\"} 42\n"
                  "t_requests_total{api=\"Fetch\"} 0\n"
                  "# HELP t_connections Open connections.\n"
                  "# TYPE t_connections gauge\n"
                  "t_connections 2\n");
    free(s);
    metrics_set_double(g, 0.25);
    metrics_add_double(p, 0.5);
    s = render();
    CHECK(strstr(s, "t_requests_total{api=\"Produce\"} 42.5\n"));
    CHECK(strstr(s, "t_connections 0.25\n"));
    free(s);
    /* integers past 2^53 stay exact */
    metrics_set(g, 9007199254740993LL);
    s = render();
    CHECK(strstr(s, "t_connections 9007199254740993\n"));
    free(s);
}

TEST(metrics_escaping)
{
    metrics_reset();
    struct metric *m = metrics_gauge("t_esc", "Help with \\ backslash\nand \"quotes\".",
                                     METRICS_LABELS({"a", "x\\y\"z\nw"}, {"b", "bad \xff\xc3 utf8 \xc3\xa9"}));
    CHECK(m);
    char *s = render();
    check_text(s, "# HELP t_esc Help with \\\\ backslash\\nand \"quotes\".\n"
                  "# TYPE t_esc gauge\n"
                  "t_esc{a=\"x\\\\y\\\"z\\nw\",b=\"bad \xEF\xBF\xBD\xEF\xBF\xBD utf8 \xc3\xa9\"} 0\n");
    free(s);
}

TEST(metrics_names_checked)
{
    metrics_reset();
    CHECK(!metrics_counter("1bad", "h", NULL, 0));
    CHECK(!metrics_counter("bad-name", "h", NULL, 0));
    CHECK(!metrics_counter("", "h", NULL, 0));
    CHECK(!metrics_counter(NULL, "h", NULL, 0));
    CHECK(metrics_counter("ok:colon_name", "h", NULL, 0));
    CHECK(!metrics_counter("t_x", "h", METRICS_LABELS({"__reserved", "v"})));
    CHECK(!metrics_counter("t_x", "h", METRICS_LABELS({"a:b", "v"})));
    CHECK(!metrics_counter("t_x", "h", METRICS_LABELS({"a", "v"}, {"a", "w"})));
    CHECK(!metrics_counter("t_x", "h", METRICS_LABELS({"a", NULL})));
    double b[] = {1, 2};
    CHECK(!metrics_histogram("t_h", "h", b, 2, METRICS_LABELS({"le", "1"})));
    double bad[] = {2, 1};
    CHECK(!metrics_histogram("t_h", "h", bad, 2, NULL, 0));
    double inf[] = {1, INFINITY};
    CHECK(!metrics_histogram("t_h", "h", inf, 2, NULL, 0));
    CHECK(!metrics_histogram("t_h", "h", b, 0, NULL, 0));
    /* one family: one type, one set of label names, one set of bounds */
    CHECK(metrics_counter("t_y", "h", METRICS_LABELS({"a", "1"})));
    CHECK(!metrics_gauge("t_y", "h", METRICS_LABELS({"a", "1"})));
    CHECK(!metrics_counter("t_y", "h", METRICS_LABELS({"b", "1"})));
    CHECK(!metrics_counter("t_y", "h", NULL, 0));
    CHECK(metrics_histogram("t_h", "h", b, 2, NULL, 0));
    double b3[] = {1, 2, 3};
    CHECK(!metrics_histogram("t_h", "h", b3, 3, METRICS_LABELS({"a", "1"})));
    /* the names a histogram's samples take */
    CHECK(!metrics_counter("t_h_count", "h", NULL, 0));
    CHECK(!metrics_gauge("t_h_bucket", "h", NULL, 0));
    CHECK(metrics_gauge("t_z_sum", "h", NULL, 0));
    CHECK(!metrics_histogram("t_z", "h", b, 2, NULL, 0));
    /* NULL handles are accepted and ignored */
    metrics_inc(NULL);
    metrics_set(NULL, 1);
    metrics_observe(NULL, 1);
    CHECK(metrics_value(NULL) == 0);
    /* nothing invalid was rendered */
    char *s = render();
    CHECK(!strstr(s, "t_x"));
    CHECK(!strstr(s, "# TYPE t_h_count"));
    CHECK(strstr(s, "t_h_count 0\n"));
    CHECK_EQ(count_of(s, "# TYPE t_y "), 1);
    free(s);
}

TEST(metrics_histogram_buckets)
{
    metrics_reset();
    static const double b[] = {0.005, 0.1, 1};
    struct metric *h = metrics_histogram("t_lat_seconds", "Latency.", b, 3, METRICS_LABELS({"api", "Fetch"}));
    CHECK(h);
    metrics_observe(h, 0.001);
    metrics_observe(h, 0.005); /* le is inclusive */
    metrics_observe(h, 0.05);
    metrics_observe(h, 2);
    metrics_observe(h, 3);
    CHECK(metrics_value(h) == 5);
    char *s = render();
    check_text(s, "# HELP t_lat_seconds Latency.\n"
                  "# TYPE t_lat_seconds histogram\n"
                  "t_lat_seconds_bucket{api=\"Fetch\",le=\"0.005\"} 2\n"
                  "t_lat_seconds_bucket{api=\"Fetch\",le=\"0.1\"} 3\n"
                  "t_lat_seconds_bucket{api=\"Fetch\",le=\"1\"} 3\n"
                  "t_lat_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 5\n"
                  "t_lat_seconds_sum{api=\"Fetch\"} 5.056\n"
                  "t_lat_seconds_count{api=\"Fetch\"} 5\n");
    free(s);
    /* without labels le is the only label */
    metrics_reset();
    h = metrics_histogram("t_flush_seconds", "Fsync.", metrics_latency_bounds, metrics_latency_nbounds, NULL, 0);
    metrics_observe(h, 20);
    s = render();
    CHECK(strstr(s, "t_flush_seconds_bucket{le=\"0.0001\"} 0\n"));
    CHECK(strstr(s, "t_flush_seconds_bucket{le=\"10\"} 0\n"));
    CHECK(strstr(s, "t_flush_seconds_bucket{le=\"+Inf\"} 1\n"));
    CHECK(strstr(s, "t_flush_seconds_sum 20\nt_flush_seconds_count 1\n"));
    CHECK_EQ(count_of(s, "t_flush_seconds_bucket"), metrics_latency_nbounds + 1);
    free(s);
}

/* --- collectors --------------------------------------------------------------- */

static int calls;

static void collect_a(struct metrics_writer *w, void *arg)
{
    (void)arg;
    calls++;
    CHECK_EQ(metrics_write_family(w, "t_lag", "Lag.", METRICS_GAUGE), 0);
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"group", "g1"}, {"partition", "0"}), 5), 0);
    CHECK_EQ(metrics_write_family(w, "t_other", "Other.", METRICS_COUNTER), 0);
    CHECK_EQ(metrics_write_double(w, NULL, 0, 1.5), 0);
    /* an empty family is left out */
    CHECK_EQ(metrics_write_family(w, "t_empty", "Nothing.", METRICS_GAUGE), 0);
    /* back to t_lag: its samples stay together */
    CHECK_EQ(metrics_write_family(w, "t_lag", "Lag.", METRICS_GAUGE), 0);
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"group", "g1"}, {"partition", "1"}), 7), 0);
}

static void collect_b(struct metrics_writer *w, void *arg)
{
    (void)arg;
    calls++;
    CHECK_EQ(metrics_write_family(w, "t_lag", "Lag.", METRICS_GAUGE), 0);
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"group", "g2"}, {"partition", "0"}), 9), 0);
    /* the same series again, labels in another order: dropped */
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"partition", "0"}, {"group", "g1"}), 1), -1);
    /* bad label names, histogram writes to a gauge: dropped */
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"__x", "1"}), 1), -1);
    CHECK_EQ(metrics_write_int(w, METRICS_LABELS({"a", "1"}, {"a", "2"}), 1), -1);
    static const double b[] = {1};
    static const uint64_t c[] = {1, 1};
    CHECK_EQ(metrics_write_histogram(w, NULL, 0, b, 1, c, 3), -1);
    /* another type for t_lag, a registered family, clashing names: refused,
     * and the samples after them are dropped */
    CHECK_EQ(metrics_write_family(w, "t_lag", "Lag.", METRICS_COUNTER), -1);
    CHECK_EQ(metrics_write_int(w, NULL, 0, 1), -1);
    CHECK_EQ(metrics_write_family(w, "t_reg_total", "x", METRICS_COUNTER), -1);
    CHECK_EQ(metrics_write_family(w, "bad name", "x", METRICS_COUNTER), -1);
    CHECK_EQ(metrics_write_int(w, NULL, 0, 1), -1);
    /* a histogram of its own */
    CHECK_EQ(metrics_write_family(w, "t_hist", "H.", METRICS_HISTOGRAM), 0);
    CHECK_EQ(metrics_write_int(w, NULL, 0, 1), -1);
    static const double b2[] = {0.5, 1};
    static const uint64_t c2[] = {2, 0, 3};
    CHECK_EQ(metrics_write_histogram(w, METRICS_LABELS({"le", "x"}), b2, 2, c2, 4), -1);
    CHECK_EQ(metrics_write_histogram(w, METRICS_LABELS({"k", "v"}), b2, 2, c2, 4), 0);
    CHECK_EQ(metrics_write_histogram(w, METRICS_LABELS({"k", "v"}), b2, 2, c2, 4), -1);
    CHECK_EQ(metrics_write_family(w, "t_hist_count", "x", METRICS_COUNTER), -1);
    CHECK_EQ(metrics_write_family(w, "t_hist_bucket", "x", METRICS_HISTOGRAM), -1);
    CHECK_EQ(metrics_write_family(w, "t_nan", "Specials.", METRICS_UNTYPED), 0);
    CHECK_EQ(metrics_write_double(w, METRICS_LABELS({"v", "nan"}), NAN), 0);
    CHECK_EQ(metrics_write_double(w, METRICS_LABELS({"v", "inf"}), INFINITY), 0);
    CHECK_EQ(metrics_write_double(w, METRICS_LABELS({"v", "-inf"}), -INFINITY), 0);
}

TEST(metrics_collectors)
{
    metrics_reset();
    CHECK(metrics_counter("t_reg_total", "Registered.", NULL, 0));
    CHECK_EQ(metrics_register_collector(collect_a, NULL), 0);
    CHECK_EQ(metrics_register_collector(collect_b, &calls), 0);
    CHECK_EQ(metrics_register_collector(collect_b, &calls), 0); /* once only */
    char *s = render();
    CHECK_EQ(calls, 2);
    check_text(s, "# HELP t_reg_total Registered.\n"
                  "# TYPE t_reg_total counter\n"
                  "t_reg_total 0\n"
                  "# HELP t_lag Lag.\n"
                  "# TYPE t_lag gauge\n"
                  "t_lag{group=\"g1\",partition=\"0\"} 5\n"
                  "t_lag{group=\"g1\",partition=\"1\"} 7\n"
                  "t_lag{group=\"g2\",partition=\"0\"} 9\n"
                  "# HELP t_other Other.\n"
                  "# TYPE t_other counter\n"
                  "t_other 1.5\n"
                  "# HELP t_hist H.\n"
                  "# TYPE t_hist histogram\n"
                  "t_hist_bucket{k=\"v\",le=\"0.5\"} 2\n"
                  "t_hist_bucket{k=\"v\",le=\"1\"} 2\n"
                  "t_hist_bucket{k=\"v\",le=\"+Inf\"} 5\n"
                  "t_hist_sum{k=\"v\"} 4\n"
                  "t_hist_count{k=\"v\"} 5\n"
                  "# HELP t_nan Specials.\n"
                  "# TYPE t_nan untyped\n"
                  "t_nan{v=\"nan\"} NaN\n"
                  "t_nan{v=\"inf\"} +Inf\n"
                  "t_nan{v=\"-inf\"} -Inf\n");
    free(s);
    /* every render starts afresh: the same series are written again */
    s = render();
    CHECK_EQ(calls, 4);
    CHECK_EQ(count_of(s, "t_lag{"), 3);
    free(s);
    metrics_unregister_collector(collect_b, &calls);
    metrics_unregister_collector(collect_b, NULL); /* not registered: nothing */
    s = render();
    CHECK_EQ(calls, 5);
    CHECK_EQ(count_of(s, "t_lag{"), 2);
    CHECK(!strstr(s, "t_hist"));
    free(s);
    metrics_unregister_collector(collect_a, NULL);
    s = render();
    CHECK_EQ(calls, 5);
    check_text(s, "# HELP t_reg_total Registered.\n# TYPE t_reg_total counter\nt_reg_total 0\n");
    free(s);
}

TEST(metrics_float_format)
{
    char b[32];
    CHECK(!strcmp(metrics_format_double(b, 0.1), "0.1"));
    CHECK(!strcmp(metrics_format_double(b, 1), "1"));
    CHECK(!strcmp(metrics_format_double(b, -2.5), "-2.5"));
    CHECK(!strcmp(metrics_format_double(b, 1e300), "1e+300"));
    CHECK(!strcmp(metrics_format_double(b, 1.0 / 3), "0.3333333333333333"));
    CHECK(!strcmp(metrics_format_double(b, NAN), "NaN"));
    CHECK(!strcmp(metrics_format_double(b, -INFINITY), "-Inf"));
    double v = 0.1 + 0.2;
    CHECK(strtod(metrics_format_double(b, v), NULL) == v);
}

TEST(metrics_rate_helper)
{
    struct metrics_rate r;
    metrics_rate_init(&r, 0, 0);
    CHECK(metrics_rate_update(&r, 0, 0) == 0);           /* no time passed */
    CHECK(metrics_rate_update(&r, 500, 50) == 100);      /* younger than a second: the oldest */
    CHECK(metrics_rate_update(&r, 2000, 400) == 200);
    /* one sample a second: after 30 s of 1000/s the rate covers the last
     * 10 s only, so a change of pace shows within the window */
    double v = 400;
    for (int64_t t = 3000; t <= 30000; t += 1000) {
        v += 1000;
        double rate = metrics_rate_update(&r, t, v);
        if (t >= 11000) /* the samples before 2000 s have left the window */
            CHECK(fabs(rate - 1000) < 1e-9);
    }
    for (int64_t t = 31000; t <= 40000; t += 1000) {
        v += 10;
        metrics_rate_update(&r, t, v);
    }
    CHECK(fabs(metrics_rate_update(&r, 41000, v + 10) - 10) < 1e-9);
    /* sparse scrapes (every 60 s): the rate since the previous one */
    metrics_rate_init(&r, 0, 0);
    CHECK(fabs(metrics_rate_update(&r, 60000, 6000) - 100) < 1e-9);
    CHECK(fabs(metrics_rate_update(&r, 120000, 18000) - 200) < 1e-9);
    /* a value that goes down (a reset) is not a negative rate */
    CHECK(metrics_rate_update(&r, 180000, 0) == 0);
}

/* --- concurrency ---------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 200000

static struct metric *shared_c, *shared_g, *shared_h, *per_thread[THREADS];
static volatile int stop_render;

static void *updater(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        metrics_inc(shared_c);
        metrics_add(shared_g, (i & 1) ? -1 : 1);
        metrics_observe(shared_h, (i % 4) * 0.5);
        metrics_add_double(per_thread[k], 0.5);
    }
    return NULL;
}

static void *renderer(void *arg)
{
    (void)arg;
    int n = 0;
    while (!__atomic_load_n(&stop_render, __ATOMIC_RELAXED) || n < 3) {
        char *s = render();
        /* a histogram's +Inf bucket and _count always agree */
        const char *inf = strstr(s, "t_con_seconds_bucket{le=\"+Inf\"} ");
        const char *cnt = strstr(s, "t_con_seconds_count ");
        CHECK(inf && cnt);
        CHECK(atoll(inf + strlen("t_con_seconds_bucket{le=\"+Inf\"} ")) ==
              atoll(cnt + strlen("t_con_seconds_count ")));
        free(s);
        n++;
    }
    return NULL;
}

static void collect_nothing(struct metrics_writer *w, void *arg)
{
    (void)w;
    (void)arg;
}

static void *registrar(void *arg)
{
    (void)arg;
    char v[16];
    for (int i = 0; i < 200; i++) {
        snprintf(v, sizeof v, "%d", i % 50);
        CHECK(metrics_counter("t_reg_race_total", "h", METRICS_LABELS({"i", v})));
        CHECK_EQ(metrics_register_collector(collect_nothing, (void *)(intptr_t)i), 0);
        metrics_unregister_collector(collect_nothing, (void *)(intptr_t)i);
    }
    return NULL;
}

TEST(metrics_concurrent_updates)
{
    metrics_reset();
    static const double b[] = {0.25, 0.75, 1.25};
    shared_c = metrics_counter("t_con_total", "h", NULL, 0);
    shared_g = metrics_gauge("t_con_gauge", "h", NULL, 0);
    shared_h = metrics_histogram("t_con_seconds", "h", b, 3, NULL, 0);
    for (int k = 0; k < THREADS; k++) {
        char v[8];
        snprintf(v, sizeof v, "%d", k);
        per_thread[k] = metrics_counter("t_con_seconds_total", "h", METRICS_LABELS({"thread", v}));
        CHECK(per_thread[k]);
    }
    pthread_t t[THREADS + 3];
    CHECK_EQ(pthread_create(&t[THREADS], NULL, renderer, NULL), 0);
    CHECK_EQ(pthread_create(&t[THREADS + 1], NULL, registrar, NULL), 0);
    CHECK_EQ(pthread_create(&t[THREADS + 2], NULL, registrar, NULL), 0);
    for (int k = 0; k < THREADS; k++)
        CHECK_EQ(pthread_create(&t[k], NULL, updater, (void *)(intptr_t)k), 0);
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    __atomic_store_n(&stop_render, 1, __ATOMIC_RELAXED);
    for (int k = THREADS; k < THREADS + 3; k++)
        pthread_join(t[k], NULL);
    CHECK(metrics_value(shared_c) == (double)THREADS * ROUNDS);
    CHECK(metrics_value(shared_g) == 0);
    CHECK(metrics_value(shared_h) == (double)THREADS * ROUNDS);
    for (int k = 0; k < THREADS; k++)
        CHECK(metrics_value(per_thread[k]) == ROUNDS * 0.5);
    char *s = render();
    char want[128];
    snprintf(want, sizeof want, "t_con_total %d\n", THREADS * ROUNDS);
    CHECK(strstr(s, want));
    /* values 0, 0.5, 1, 1.5 in equal shares */
    snprintf(want, sizeof want, "t_con_seconds_bucket{le=\"0.25\"} %d\n", THREADS * ROUNDS / 4);
    CHECK(strstr(s, want));
    snprintf(want, sizeof want, "t_con_seconds_bucket{le=\"1.25\"} %d\n", THREADS * ROUNDS / 4 * 3);
    CHECK(strstr(s, want));
    snprintf(want, sizeof want, "t_con_seconds_sum %d\n", THREADS * ROUNDS / 4 * 3);
    CHECK(strstr(s, want));
    CHECK_EQ(count_of(s, "t_reg_race_total{"), 50);
    free(s);
}

/* --- the processors' collector (shop/processors.c) ---------------------------- */

TEST(metrics_processors_summed_per_label_set)
{
    metrics_reset();
    struct proc_settings s;
    struct stream_app_conf c1, c2, c3, c4;
    proc_settings_default(&s);
    struct proc *a = proc_new("orders", "shop-orders", &s, &c1);
    struct proc *b = proc_new("orders", "shop-orders", &s, &c2); /* a second instance */
    struct proc *k = proc_new("analytics", "shop-analytics", &s, &c3);
    CHECK(a && b && k);
    PROC_ADD(a->n.events, 5);
    PROC_ADD(b->n.events, 7);
    PROC_ADD(a->n.orders_held, 2);
    PROC_ADD(k->n.late_events[1], 3);
    char *t = render();
    CHECK_EQ(count_of(t, "shopstream_processor_events_total{processor=\"orders\",app=\"shop-orders\"} 12\n"), 1);
    CHECK_EQ(count_of(t, "shopstream_processor_events_total{processor=\"orders\""), 1);
    CHECK(strstr(t, "shopstream_processor_events_total{processor=\"analytics\",app=\"shop-analytics\"} 0\n"));
    CHECK(strstr(t, "shopstream_processor_orders_held{processor=\"orders\",app=\"shop-orders\"} 2\n"));
    CHECK(!strstr(t, "shopstream_processor_orders_held{processor=\"analytics\""));
    CHECK(strstr(t, "shopstream_processor_late_events_total{processor=\"analytics\",app=\"shop-analytics\","
                    "window=\"1h\"} 3\n"));
    CHECK(!strstr(t, "shopstream_processor_late_events_total{processor=\"orders\""));
    CHECK(strstr(t, "shopstream_processor_events_per_second{processor=\"orders\",app=\"shop-orders\"} "));
    CHECK_EQ(count_of(t, "# TYPE shopstream_processor_events_total counter\n"), 1);
    free(t);
    /* a freed instance's counts stay (counters never go back), its gauges go */
    proc_free(a);
    t = render();
    CHECK(strstr(t, "shopstream_processor_events_total{processor=\"orders\",app=\"shop-orders\"} 12\n"));
    CHECK(strstr(t, "shopstream_processor_orders_held{processor=\"orders\",app=\"shop-orders\"} 0\n"));
    free(t);
    struct proc *d = proc_new("orders", "shop-orders", &s, &c4);
    PROC_ADD(d->n.events, 1);
    t = render();
    CHECK(strstr(t, "shopstream_processor_events_total{processor=\"orders\",app=\"shop-orders\"} 13\n"));
    free(t);
    /* the record count comes from the wrapped process callback */
    struct proc_counts n;
    proc_counts(d, &n);
    CHECK_EQ(n.records, 0);
    CHECK(c4.process && c4.opaque == d);
    proc_free(b);
    proc_free(d);
    proc_free(k);
}

/* --- the /metrics server (serve/metrics_http.c) -------------------------------- */

/* Sends a raw request to 127.0.0.1:port and returns the whole response
 * (owned: free), read until the server closes. */
static char *http_exchange(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(write(fd, request, strlen(request)), (long long)strlen(request));
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    CHECK(buf);
    for (;;) {
        if (cap - len < 4096)
            CHECK((buf = realloc(buf, cap *= 2)));
        ssize_t n = read(fd, buf + len, cap - len - 1);
        CHECK(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
    return buf;
}

TEST(metrics_http_serves_and_refuses)
{
    metrics_reset();
    metrics_inc(metrics_counter("t_http_total", "Served.", METRICS_LABELS({"x", "a\"b"})));
    char host[64], err[256];
    int port = -1;
    CHECK_EQ(metrics_http_parse_listen("127.0.0.1:0", host, sizeof host, &port, err, sizeof err), 0);
    CHECK(!strcmp(host, "127.0.0.1") && port == 0);
    CHECK_EQ(metrics_http_parse_listen("[::1]:9100", host, sizeof host, &port, err, sizeof err), 0);
    CHECK(!strcmp(host, "::1") && port == 9100);
    CHECK_EQ(metrics_http_parse_listen(":9100", host, sizeof host, &port, err, sizeof err), 0);
    CHECK(!strcmp(host, "") && port == 9100);
    CHECK_EQ(metrics_http_parse_listen("localhost", host, sizeof host, &port, err, sizeof err), -1);
    CHECK_EQ(metrics_http_parse_listen("h:99999", host, sizeof host, &port, err, sizeof err), -1);
    CHECK_EQ(metrics_http_parse_listen("h:", host, sizeof host, &port, err, sizeof err), -1);
    CHECK_EQ(metrics_http_parse_listen("::1:80", host, sizeof host, &port, err, sizeof err), -1);

    struct metrics_http *s = metrics_http_start("127.0.0.1", 0, err, sizeof err);
    CHECK(s);
    port = metrics_http_port(s);
    CHECK(port > 0);
    /* a second server on the same port fails with a reason */
    CHECK(!metrics_http_start("127.0.0.1", port, err, sizeof err));
    CHECK(strstr(err, "Address already in use"));

    char *r = http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n");
    CHECK(!strncmp(r, "HTTP/1.0 200", 12) || !strncmp(r, "HTTP/1.1 200", 12));
    CHECK(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    CHECK(strstr(r, "\r\n\r\n# HELP t_http_total Served.\n# TYPE t_http_total counter\n"
                    "t_http_total{x=\"a\\\"b\"} 1\n"));
    free(r);
    /* HTTP/1.1 keeps the connection for the next scrape */
    r = http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_EQ(count_of(r, "HTTP/1.1 200 OK\r\n"), 2);
    CHECK_EQ(count_of(r, "t_http_total{"), 2);
    free(r);
    r = http_exchange(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
    CHECK(strstr(r, " 200 ") && !strstr(r, "t_http_total"));
    free(r);
    r = http_exchange(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n"); /* the query is not the path */
    CHECK(strstr(r, " 200 "));
    free(r);
    r = http_exchange(port, "GET / HTTP/1.0\r\n\r\n");
    CHECK(strstr(r, " 404 "));
    CHECK(strstr(r, "Content-Type: application/json"));
    CHECK(strstr(r, "\"status\":404}"));
    free(r);
    r = http_exchange(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(strstr(r, " 405 "));
    CHECK(strstr(r, "Allow: GET, HEAD\r\n"));
    CHECK(strstr(r, "{\"error\":\"method not allowed: use GET\",\"status\":405}"));
    free(r);
    metrics_http_stop(s);
    /* the listener is closed: nothing answers on the port now */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0);
    close(fd);
    metrics_http_stop(NULL);
}

/* --- the flush thread's latency observer (storage/flusher.c) -------------------- */

static void no_wake(void *arg)
{
    (void)arg;
}

static void observe_seconds(void *arg, int64_t ns)
{
    metrics_observe(arg, (double)ns / 1e9);
}

TEST(metrics_flusher_observes_each_fsync)
{
    metrics_reset();
    struct metric *h = metrics_histogram("t_flush_seconds", "h", metrics_latency_bounds,
                                         metrics_latency_nbounds, NULL, 0);
    struct flusher *f = flusher_new(no_wake, NULL);
    CHECK(f);
    flusher_set_observer(f, observe_seconds, h);
    char path[300];
    snprintf(path, sizeof path, "%s/a", test_tmpdir());
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "x", 1), 1);
    int fds[2] = {fd, dup(fd)}; /* one file twice: one fdatasync */
    CHECK_EQ(flusher_submit(f, fds, 2, NULL, NULL), 0);
    flusher_free(f); /* waits for the job */
    CHECK(metrics_value(h) == 1);
}
