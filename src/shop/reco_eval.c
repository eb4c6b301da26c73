/* reco_eval.c: the session-rec evaluation protocol over two TSV readers;
 * see reco_eval.h.  The train file is held in memory (it must be sorted by
 * time); the test file is streamed one session at a time. */
#include "shop/reco_eval.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/strmap.h"

/* One train event held for sorting. */
struct tev {
    double ts;
    size_t line;            /* file order, the tie-break */
    char *session, *item;   /* owned */
};

/* Column positions found in a header. */
struct cols {
    size_t session, item, time, need;   /* need: fields a row must have */
};

/* The current test session. */
struct tsess {
    char *key;              /* "test:" + SessionId, owned */
    size_t n, cap;
    struct reco_event *ev;  /* ev[i].item owned */
};

static void fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static double now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int read_header(struct csv_reader *r, const char *what, struct cols *c, char *err,
                       size_t errsz)
{
    struct csv_row row;
    int rc = csv_next(r, &row);
    size_t none = (size_t)-1;

    if (rc < 0) {
        fail(err, errsz, "%s file: %s", what, csv_error(r));
        return -1;
    }
    if (rc == 0) {
        fail(err, errsz, "%s file is empty (expected a header SessionId, ItemId, Time)", what);
        return -1;
    }
    c->session = c->item = c->time = none;
    for (size_t i = 0; i < row.n; i++) {
        if (!strcasecmp(row.field[i], "SessionId") && c->session == none)
            c->session = i;
        else if (!strcasecmp(row.field[i], "ItemId") && c->item == none)
            c->item = i;
        else if (!strcasecmp(row.field[i], "Time") && c->time == none)
            c->time = i;
    }
    if (c->session == none || c->item == none || c->time == none) {
        fail(err, errsz,
             "%s file: line %ld: the header must name the tab-separated columns SessionId, "
             "ItemId and Time",
             what, row.line);
        return -1;
    }
    c->need = c->session;
    if (c->item > c->need)
        c->need = c->item;
    if (c->time > c->need)
        c->need = c->time;
    c->need++;
    return 0;
}

/* Reads the next data row.  Returns 1 with *s, *it, *ts set (views until
 * the next call), 0 at the end, -1 on an error. */
static int read_row(struct csv_reader *r, const char *what, const struct cols *c, const char **s,
                    const char **it, double *ts, long *line, char *err, size_t errsz)
{
    struct csv_row row;
    int rc = csv_next(r, &row);
    char *end;

    if (rc < 0) {
        fail(err, errsz, "%s file: %s", what, csv_error(r));
        return -1;
    }
    if (rc == 0)
        return 0;
    *line = row.line;
    if (row.n < c->need) {
        fail(err, errsz, "%s file: line %ld: expected %zu tab-separated fields, found %zu", what,
             row.line, c->need, row.n);
        return -1;
    }
    *s = row.field[c->session];
    *it = row.field[c->item];
    if (!**s || row.len[c->session] > RECO_MAX_NAME) {
        fail(err, errsz, "%s file: line %ld: SessionId is empty or longer than %d bytes", what,
             row.line, RECO_MAX_NAME);
        return -1;
    }
    if (!**it || row.len[c->item] > RECO_MAX_NAME) {
        fail(err, errsz, "%s file: line %ld: ItemId is empty or longer than %d bytes", what,
             row.line, RECO_MAX_NAME);
        return -1;
    }
    errno = 0;
    *ts = strtod(row.field[c->time], &end);
    if (end == row.field[c->time] || *end || errno == ERANGE || !isfinite(*ts)) {
        fail(err, errsz, "%s file: line %ld: Time '%.40s' is not a number of seconds", what,
             row.line, row.field[c->time]);
        return -1;
    }
    return 1;
}

static int tev_cmp(const void *pa, const void *pb)
{
    const struct tev *a = pa, *b = pb;

    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

static int not_trained(void *ctx, const char *item)
{
    uint32_t v;

    return !strmap_get(ctx, item, &v);
}

static void sess_clear(struct tsess *t)
{
    for (size_t i = 0; i < t->n; i++)
        xfree((char *)t->ev[i].item);
    t->n = 0;
    xfree(t->key);
    t->key = NULL;
}

static int dcmp(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;

    return (a > b) - (a < b);
}

/* Evaluates one complete test session (see the protocol in the header). */
static int run_session(struct reco_model *model, struct tsess *t, struct strmap *trained,
                       struct reco_hit *top, size_t k, struct reco_eval_result *res,
                       double **lat, size_t *nlat, size_t *caplat, double *obs_ns)
{
    for (size_t p = 0; p < t->n; p++) {
        double t0, t1;
        if (p > 0) {
            t0 = now_ns();
            size_t n = reco_for_session(model, t->ev, p, k, not_trained, trained, top);
            t1 = now_ns();
            if (*nlat == *caplat) {
                size_t cap = *caplat ? *caplat * 2 : 4096;
                double *q = xrealloc(*lat, cap * sizeof *q);
                if (!q)
                    return -1;
                *lat = q;
                *caplat = cap;
            }
            (*lat)[(*nlat)++] = t1 - t0;
            reco_metrics_add(&res->mt, top, n, t->ev[p].item);
        }
        t0 = now_ns();
        if (reco_observe(model, t->key, t->ev[p].item, RECO_VIEW, t->ev[p].ts) == RECO_ENOMEM)
            return -1;
        *obs_ns += now_ns() - t0;
    }
    res->test_sessions++;
    return 0;
}

int reco_eval_run(struct reco_model *model, struct csv_reader *train, struct csv_reader *test,
                  size_t k, struct reco_eval_result *res, char *err, size_t errsz)
{
    struct tev *tv = NULL;
    size_t ntv = 0, captv = 0, nlat = 0, caplat = 0;
    struct strmap *trained = strmap_new(), *seen = strmap_new();
    struct reco_hit *top = NULL;
    struct tsess t = {0};
    double *lat = NULL, obs_ns = 0, ts;
    struct cols c;
    const char *s, *it;
    long line;
    char key[RECO_MAX_NAME + 16];
    int rc = -1, r;

    memset(res, 0, sizeof *res);
    reco_metrics_init(&res->mt, k);
    if (!trained || !seen)
        goto nomem;
    if (k < 1 || k > RECO_MAX_K) {
        fail(err, errsz, "the cut-off K must be between 1 and %d", RECO_MAX_K);
        goto out;
    }
    if (!(top = xcalloc(k, sizeof *top)))
        goto nomem;

    /* 1. Training, in time order. */
    if (read_header(train, "train", &c, err, errsz) < 0)
        goto out;
    while ((r = read_row(train, "train", &c, &s, &it, &ts, &line, err, errsz)) == 1) {
        if (ntv == captv) {
            size_t cap = captv ? captv * 2 : 4096;
            struct tev *q = xrealloc(tv, cap * sizeof *q);
            if (!q)
                goto nomem;
            tv = q;
            captv = cap;
        }
        tv[ntv] = (struct tev){ts, ntv, xstrdup(s), xstrdup(it)};
        if (!tv[ntv].session || !tv[ntv].item) {
            xfree(tv[ntv].session);
            xfree(tv[ntv].item);
            goto nomem;
        }
        ntv++;
        if (strmap_put(trained, it, 0, NULL) < 0)
            goto nomem;
    }
    if (r < 0)
        goto out;
    if (ntv == 0) {
        fail(err, errsz, "train file has a header but no events");
        goto out;
    }
    qsort(tv, ntv, sizeof *tv, tev_cmp);
    for (size_t i = 0; i < ntv; i++) {
        double t0 = now_ns();
        snprintf(key, sizeof key, "train:%s", tv[i].session);
        if (reco_observe(model, key, tv[i].item, RECO_VIEW, tv[i].ts) == RECO_ENOMEM)
            goto nomem;
        obs_ns += now_ns() - t0;
    }
    res->train_events = ntv;
    res->train_items = strmap_count(trained);

    /* 2. Testing, session by session. */
    if (read_header(test, "test", &c, err, errsz) < 0)
        goto out;
    while ((r = read_row(test, "test", &c, &s, &it, &ts, &line, err, errsz)) == 1) {
        snprintf(key, sizeof key, "test:%s", s);
        if (!t.key || strcmp(t.key, key)) {
            uint32_t v;
            if (t.key) {
                if (run_session(model, &t, trained, top, k, res, &lat, &nlat, &caplat, &obs_ns) < 0)
                    goto nomem;
                sess_clear(&t);
            }
            if (strmap_get(seen, key, &v)) {
                fail(err, errsz,
                     "test file: line %ld: session %.40s appears again after other sessions "
                     "(a session's events must be contiguous)",
                     line, s);
                goto out;
            }
            if (strmap_put(seen, key, 0, NULL) < 0 || !(t.key = xstrdup(key)))
                goto nomem;
        }
        if (t.n == t.cap) {
            size_t cap = t.cap ? t.cap * 2 : 16;
            struct reco_event *q = xrealloc(t.ev, cap * sizeof *q);
            if (!q)
                goto nomem;
            t.ev = q;
            t.cap = cap;
        }
        if (!(t.ev[t.n].item = xstrdup(it)))
            goto nomem;
        t.ev[t.n].kind = RECO_VIEW;
        t.ev[t.n++].ts = ts;
        res->test_events++;
    }
    if (r < 0)
        goto out;
    if (t.key && run_session(model, &t, trained, top, k, res, &lat, &nlat, &caplat, &obs_ns) < 0)
        goto nomem;
    if (res->test_events == 0) {
        fail(err, errsz, "test file has a header but no events");
        goto out;
    }
    res->observe_ns = obs_ns / (double)(res->train_events + res->test_events);
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, dcmp);
        res->recommend_p50_ns = lat[nlat / 2];
        res->recommend_p99_ns = lat[(size_t)((double)(nlat - 1) * 0.99)];
    }
    rc = 0;
    goto out;
nomem:
    fail(err, errsz, "out of memory");
out:
    for (size_t i = 0; i < ntv; i++) {
        xfree(tv[i].session);
        xfree(tv[i].item);
    }
    xfree(tv);
    sess_clear(&t);
    xfree(t.ev);
    xfree(top);
    xfree(lat);
    strmap_free(trained);
    strmap_free(seen);
    return rc;
}
