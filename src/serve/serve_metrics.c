/* serve_metrics.c: serve's collector (serve_metrics.h).  The lag is
 * fetched by the scraping thread before rendering, because a collector
 * runs under the registry's mutex and must not wait for the network; it
 * only copies the last answer out. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "serve/metrics.h"
#include "serve/ops.h"
#include "serve/serve_metrics.h"
#include "serve/views.h"

#define LAG_REUSE_MS 1000

static struct {
    pthread_mutex_t mu;       /* guards everything below */
    struct views *views;
    struct ops *ops;
    struct ops_lag *lags;     /* owned: ops_lags_free */
    size_t nlags;
    int lag_ok;               /* the last query answered */
    int64_t lag_at_ms;        /* when it was made */
    pthread_mutex_t query_mu; /* one lag query at a time */
} sm = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};

static void collect(struct metrics_writer *w, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sm.mu);
    if (sm.views) {
        struct views_stats st;
        views_stats(sm.views, &st);
        metrics_write_family(w, "shopstream_serve_records_total",
                             "Records serve has read from the result topics.", METRICS_COUNTER);
        metrics_write_int(w, NULL, 0, st.records);
        metrics_write_family(w, "shopstream_serve_rejected_records_total",
                             "Records serve left out: not JSON objects, bad keys or invalid events.",
                             METRICS_COUNTER);
        metrics_write_int(w, NULL, 0, st.rejected);
        metrics_write_family(w, "shopstream_serve_orders", "Orders held for lookups.",
                             METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, st.orders);
        metrics_write_family(w, "shopstream_serve_kpi_windows", "KPI windows held.",
                             METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, st.kpi_windows);
        metrics_write_family(w, "shopstream_serve_recommendation_keys",
                             "Products and users with recommendations held.", METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, st.recs);
        metrics_write_family(w, "shopstream_serve_alerts_total", "Alerts read from shop.alerts.",
                             METRICS_COUNTER);
        metrics_write_int(w, NULL, 0, st.alerts_total);
        metrics_write_family(w, "shopstream_serve_caught_up",
                             "1 once every result partition has been read to its end.",
                             METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, st.caught_up);
    }
    if (sm.ops) {
        metrics_write_family(w, "shopstream_consumer_group_lag_query_ok",
                             "1 when the last consumer group lag query answered.", METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, sm.lag_ok);
    }
    if (sm.nlags) {
        metrics_write_family(w, "shopstream_consumer_group_committed_offset",
                             "The offset a consumer group committed, per partition.",
                             METRICS_GAUGE);
        for (size_t k = 0; k < sm.nlags; k++) {
            char part[16];
            snprintf(part, sizeof part, "%d", sm.lags[k].partition);
            metrics_write_int(w,
                              METRICS_LABELS({"group", sm.lags[k].group},
                                             {"topic", sm.lags[k].topic}, {"partition", part}),
                              sm.lags[k].committed);
        }
        metrics_write_family(w, "shopstream_consumer_group_lag",
                             "Records of a partition a consumer group has not committed: the high "
                             "watermark minus the committed offset.",
                             METRICS_GAUGE);
        for (size_t k = 0; k < sm.nlags; k++) {
            if (sm.lags[k].lag < 0)
                continue;
            char part[16];
            snprintf(part, sizeof part, "%d", sm.lags[k].partition);
            metrics_write_int(w,
                              METRICS_LABELS({"group", sm.lags[k].group},
                                             {"topic", sm.lags[k].topic}, {"partition", part}),
                              sm.lags[k].lag);
        }
    }
    pthread_mutex_unlock(&sm.mu);
}

int serve_metrics_start(struct views *v, struct ops *o)
{
    pthread_mutex_lock(&sm.mu);
    sm.views = v;
    sm.ops = o;
    pthread_mutex_unlock(&sm.mu);
    return metrics_register_collector(collect, NULL);
}

void serve_metrics_stop(void)
{
    metrics_unregister_collector(collect, NULL);
    pthread_mutex_lock(&sm.mu);
    ops_lags_free(sm.lags, sm.nlags);
    sm.lags = NULL;
    sm.nlags = 0;
    sm.views = NULL;
    sm.ops = NULL;
    pthread_mutex_unlock(&sm.mu);
}

static void refresh_lag(void)
{
    pthread_mutex_lock(&sm.query_mu);
    pthread_mutex_lock(&sm.mu);
    struct ops *o = sm.ops;
    int fresh = sm.lag_at_ms && clock_mono_ms() - sm.lag_at_ms < LAG_REUSE_MS;
    pthread_mutex_unlock(&sm.mu);
    if (o && !fresh) {
        struct ops_lag *lags = NULL;
        size_t n = 0;
        char err[512];
        int st = ops_lags(o, &lags, &n, err, sizeof err);
        pthread_mutex_lock(&sm.mu);
        if (st == 200) {
            ops_lags_free(sm.lags, sm.nlags);
            sm.lags = lags;
            sm.nlags = n;
        }
        sm.lag_ok = st == 200;
        sm.lag_at_ms = clock_mono_ms();
        pthread_mutex_unlock(&sm.mu);
    }
    pthread_mutex_unlock(&sm.query_mu);
}

int serve_metrics_render(struct obuf *out)
{
    refresh_lag();
    return metrics_render(out);
}
