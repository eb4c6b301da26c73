/* metrics.c: the metrics registry and the text exposition format 0.0.4
 * (see metrics.h).  The registry is a list of families, each with its
 * series; a series holds its values in words that updaters change with
 * relaxed atomics and the renderer reads the same way, so a render sees each
 * value whole (though not all values at one instant: a histogram's _count
 * is computed from the buckets it read, so the two always agree).
 * Collectors write into per-family buffers that are concatenated after
 * them, which keeps every family in one piece whatever order collectors
 * write in. */
#include "serve/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

struct family {
    char *name;                              /* owned */
    char *help;                              /* owned, raw (escaped when rendered) */
    enum metrics_type type;
    int nlabels;
    char *label_names[METRICS_MAX_LABELS];   /* owned */
    double bounds[METRICS_MAX_BUCKETS];      /* histograms */
    int nbounds;
    struct metric **series;                  /* owned, in registration order */
    int nseries, capseries;
};

struct metric {
    struct family *fam;                      /* borrows */
    char *values[METRICS_MAX_LABELS];        /* owned: raw label values, to find it again */
    char *labels;                            /* owned: rendered `a="x",b="y"`, "" for none */
    int64_t ival;                            /* atomic: the integer part */
    uint64_t dbits;                          /* atomic: the fractional part, a double's bits */
    uint64_t *buckets;                       /* owned, atomic: histograms, nbounds + 1 counts */
    uint64_t sumbits;                        /* atomic: histograms, the sum as a double's bits */
};

struct collector {
    metrics_collect_fn *fn;
    void *arg;
};

static struct {
    pthread_mutex_t mu;
    struct family **fams;                    /* owned, in registration order */
    int nfams, capfams;
    struct collector *collectors;            /* owned */
    int ncollectors, capcollectors;
} R = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0, 0};

const double metrics_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                         5,      10};
const int metrics_latency_nbounds = sizeof metrics_latency_bounds / sizeof metrics_latency_bounds[0];

/* --- names and text ----------------------------------------------------------- */

static bool valid_metric_name(const char *s)
{
    if (!s || !*s || strlen(s) > METRICS_MAX_NAME)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Label names: [a-zA-Z_][a-zA-Z0-9_]*, and the __ prefix is Prometheus's. */
static bool valid_label_name(const char *s)
{
    if (!s || !*s || strlen(s) > METRICS_MAX_NAME || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static void put_str(struct obuf *o, const char *s)
{
    obuf_put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

/* Escapes s for a label value (quote too) or a HELP text; bytes that are
 * not UTF-8 become U+FFFD so that the output is always UTF-8. */
static void put_escaped(struct obuf *o, const char *s, bool quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, run = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len = utf8_len(p + i, n - i);
        const char *esc = NULL;
        if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '"' && quote)
            esc = "\\\"";
        else if (len == 0)
            esc = "\xEF\xBF\xBD";
        if (!esc) {
            i += len;
            continue;
        }
        obuf_put(o, p + run, i - run);
        put_str(o, esc);
        i += len ? len : 1;
        run = i;
    }
    obuf_put(o, p + run, n - run);
}

char *metrics_format_double(char *buf, double v)
{
    if (isnan(v))
        return strcpy(buf, "NaN");
    if (isinf(v))
        return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static void put_double(struct obuf *o, double v)
{
    char buf[32];
    put_str(o, metrics_format_double(buf, v));
}

static void put_int(struct obuf *o, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    obuf_put(o, buf, (size_t)n);
}

static const char *type_name(enum metrics_type t)
{
    switch (t) {
    case METRICS_COUNTER:
        return "counter";
    case METRICS_GAUGE:
        return "gauge";
    case METRICS_HISTOGRAM:
        return "histogram";
    default:
        return "untyped";
    }
}

static void put_header(struct obuf *o, const char *name, const char *help, enum metrics_type t)
{
    put_str(o, "# HELP ");
    put_str(o, name);
    obuf_put_u8(o, ' ');
    put_escaped(o, help ? help : "", false);
    put_str(o, "\n# TYPE ");
    put_str(o, name);
    obuf_put_u8(o, ' ');
    put_str(o, type_name(t));
    obuf_put_u8(o, '\n');
}

/* `name suffix {labels, le="bound"}` up to the space before the value;
 * labels is the rendered label text ("" for none), le NULL for none. */
static void put_series(struct obuf *o, const char *name, const char *suffix, const char *labels,
                       size_t labels_len, const char *le)
{
    put_str(o, name);
    if (suffix)
        put_str(o, suffix);
    if (labels_len || le) {
        obuf_put_u8(o, '{');
        obuf_put(o, labels, labels_len);
        if (le) {
            if (labels_len)
                obuf_put_u8(o, ',');
            put_str(o, "le=\"");
            put_str(o, le);
            obuf_put_u8(o, '"');
        }
        obuf_put_u8(o, '}');
    }
    obuf_put_u8(o, ' ');
}

/* The sample names a family produces: itself, or for a histogram also
 * name_bucket, name_sum and name_count.  Two families clash when any of
 * these coincide. */
static bool names_clash(const char *a, enum metrics_type ta, const char *b, enum metrics_type tb)
{
    static const char *const hsuf[] = {"", "_bucket", "_sum", "_count"};
    int na = ta == METRICS_HISTOGRAM ? 4 : 1, nb = tb == METRICS_HISTOGRAM ? 4 : 1;
    size_t la = strlen(a), lb = strlen(b);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            if (la + strlen(hsuf[i]) != lb + strlen(hsuf[j]))
                continue;
            char x[METRICS_MAX_NAME + 16], y[METRICS_MAX_NAME + 16];
            snprintf(x, sizeof x, "%s%s", a, hsuf[i]);
            snprintf(y, sizeof y, "%s%s", b, hsuf[j]);
            if (!strcmp(x, y))
                return true;
        }
    return false;
}

/* Checks label names: valid, not repeated, "le" not on a histogram.
 * Returns NULL or the reason. */
static const char *check_labels(const struct metrics_label *labels, int nlabels, bool histogram)
{
    if (nlabels < 0 || nlabels > METRICS_MAX_LABELS || (nlabels > 0 && !labels))
        return "too many labels";
    for (int i = 0; i < nlabels; i++) {
        if (!valid_label_name(labels[i].name))
            return "invalid label name";
        if (!labels[i].value)
            return "a label without a value";
        if (histogram && !strcmp(labels[i].name, "le"))
            return "the label le is reserved in histograms";
        for (int j = 0; j < i; j++)
            if (!strcmp(labels[i].name, labels[j].name))
                return "a repeated label name";
    }
    return NULL;
}

static void put_labels(struct obuf *o, const struct metrics_label *labels, int nlabels)
{
    for (int i = 0; i < nlabels; i++) {
        if (i)
            obuf_put_u8(o, ',');
        put_str(o, labels[i].name);
        put_str(o, "=\"");
        put_escaped(o, labels[i].value, true);
        obuf_put_u8(o, '"');
    }
}

/* --- registration ---------------------------------------------------------- */

static void free_metric(struct metric *m)
{
    if (!m)
        return;
    for (int i = 0; i < METRICS_MAX_LABELS; i++)
        xfree(m->values[i]);
    xfree(m->labels);
    xfree(m->buckets);
    xfree(m);
}

static void free_family(struct family *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nseries; i++)
        free_metric(f->series[i]);
    xfree(f->series);
    for (int i = 0; i < f->nlabels; i++)
        xfree(f->label_names[i]);
    xfree(f->name);
    xfree(f->help);
    xfree(f);
}

/* Finds or creates the family; registry mutex held.  Returns NULL with the
 * reason in *why. */
static struct family *get_family(const char *name, const char *help, enum metrics_type type,
                                 const double *bounds, int nbounds, const struct metrics_label *labels,
                                 int nlabels, const char **why)
{
    for (int i = 0; i < R.nfams; i++) {
        struct family *f = R.fams[i];
        if (strcmp(f->name, name)) {
            if (names_clash(f->name, f->type, name, type)) {
                *why = "its sample names clash with another family";
                return NULL;
            }
            continue;
        }
        if (f->type != type) {
            *why = "it exists with another type";
            return NULL;
        }
        if (f->nlabels != nlabels) {
            *why = "it exists with other label names";
            return NULL;
        }
        for (int k = 0; k < nlabels; k++)
            if (strcmp(f->label_names[k], labels[k].name)) {
                *why = "it exists with other label names";
                return NULL;
            }
        if (f->nbounds != nbounds || (nbounds && memcmp(f->bounds, bounds, sizeof(double) * (size_t)nbounds))) {
            *why = "it exists with other bucket bounds";
            return NULL;
        }
        return f;
    }
    *why = "out of memory";
    if (R.nfams == R.capfams) {
        int cap = R.capfams ? R.capfams * 2 : 32;
        struct family **n = xrealloc(R.fams, sizeof *n * (size_t)cap);
        if (!n)
            return NULL;
        R.fams = n;
        R.capfams = cap;
    }
    struct family *f = xcalloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->nbounds = nbounds;
    if (nbounds)
        memcpy(f->bounds, bounds, sizeof(double) * (size_t)nbounds);
    f->name = xstrdup(name);
    f->help = xstrdup(help ? help : "");
    bool ok = f->name && f->help;
    for (int k = 0; k < nlabels; k++, f->nlabels++)
        ok = ok && (f->label_names[k] = xstrdup(labels[k].name));
    if (!ok) {
        free_family(f);
        return NULL;
    }
    R.fams[R.nfams++] = f;
    return f;
}

static struct metric *new_series(struct family *f, const struct metrics_label *labels, int nlabels)
{
    struct metric *m = xcalloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->fam = f;
    bool ok = true;
    for (int k = 0; k < nlabels; k++)
        ok = ok && (m->values[k] = xstrdup(labels[k].value));
    struct obuf o;
    obuf_init(&o);
    put_labels(&o, labels, nlabels);
    obuf_put_u8(&o, 0);
    if (o.oom || !ok)
        goto err;
    m->labels = (char *)o.data;
    obuf_init(&o);
    if (f->type == METRICS_HISTOGRAM && !(m->buckets = xcalloc((size_t)f->nbounds + 1, sizeof(uint64_t))))
        goto err;
    if (f->nseries == f->capseries) {
        int cap = f->capseries ? f->capseries * 2 : 8;
        struct metric **n = xrealloc(f->series, sizeof *n * (size_t)cap);
        if (!n)
            goto err;
        f->series = n;
        f->capseries = cap;
    }
    f->series[f->nseries++] = m;
    return m;
err:
    obuf_free(&o);
    free_metric(m);
    return NULL;
}

static struct metric *do_register(const char *name, const char *help, enum metrics_type type,
                                  const double *bounds, int nbounds, const struct metrics_label *labels,
                                  int nlabels)
{
    const char *why = NULL;
    struct metric *m = NULL;
    if (!valid_metric_name(name)) {
        why = "invalid metric name";
    } else if (!(why = check_labels(labels, nlabels, type == METRICS_HISTOGRAM))) {
        if (type == METRICS_HISTOGRAM) {
            if (nbounds < 1 || nbounds > METRICS_MAX_BUCKETS || !bounds)
                why = "a histogram needs 1 to 32 bucket bounds";
            for (int i = 0; !why && i < nbounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                    why = "bucket bounds must be finite and increasing";
        }
    }
    if (!why) {
        pthread_mutex_lock(&R.mu);
        struct family *f = get_family(name, help, type, bounds, type == METRICS_HISTOGRAM ? nbounds : 0,
                                      labels, nlabels, &why);
        if (f) {
            for (int i = 0; i < f->nseries && !m; i++) {
                int k = 0;
                while (k < nlabels && !strcmp(f->series[i]->values[k], labels[k].value))
                    k++;
                if (k == nlabels)
                    m = f->series[i];
            }
            if (!m && !(m = new_series(f, labels, nlabels)))
                why = "out of memory";
        }
        pthread_mutex_unlock(&R.mu);
    }
    if (!m)
        log_warn("metrics: cannot register %s: %s", name ? name : "(null)", why);
    return m;
}

struct metric *metrics_counter(const char *name, const char *help, const struct metrics_label *labels,
                               int nlabels)
{
    return do_register(name, help, METRICS_COUNTER, NULL, 0, labels, nlabels);
}

struct metric *metrics_gauge(const char *name, const char *help, const struct metrics_label *labels,
                             int nlabels)
{
    return do_register(name, help, METRICS_GAUGE, NULL, 0, labels, nlabels);
}

struct metric *metrics_histogram(const char *name, const char *help, const double *bounds, int nbounds,
                                 const struct metrics_label *labels, int nlabels)
{
    return do_register(name, help, METRICS_HISTOGRAM, bounds, nbounds, labels, nlabels);
}

/* --- updates ----------------------------------------------------------------- */

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void atomic_add_double(uint64_t *p, double v)
{
    uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &old, double_bits(bits_double(old) + v), true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

void metrics_add(struct metric *m, int64_t n)
{
    if (!m || (n < 0 && m->fam->type == METRICS_COUNTER))
        return;
    __atomic_fetch_add(&m->ival, n, __ATOMIC_RELAXED);
}

void metrics_add_double(struct metric *m, double v)
{
    if (!m || (m->fam->type == METRICS_COUNTER && !(v >= 0)))
        return;
    atomic_add_double(&m->dbits, v);
}

void metrics_set(struct metric *m, int64_t v)
{
    if (!m)
        return;
    __atomic_store_n(&m->ival, v, __ATOMIC_RELAXED);
    __atomic_store_n(&m->dbits, 0, __ATOMIC_RELAXED);
}

void metrics_set_double(struct metric *m, double v)
{
    if (!m)
        return;
    __atomic_store_n(&m->ival, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->dbits, double_bits(v), __ATOMIC_RELAXED);
}

void metrics_observe(struct metric *m, double v)
{
    if (!m || !m->buckets)
        return;
    const struct family *f = m->fam;
    int i = 0;
    if (isnan(v))
        i = f->nbounds;
    else
        while (i < f->nbounds && v > f->bounds[i])
            i++;
    __atomic_fetch_add(&m->buckets[i], 1, __ATOMIC_RELAXED);
    atomic_add_double(&m->sumbits, v);
}

double metrics_value(const struct metric *m)
{
    if (!m)
        return 0;
    if (m->buckets) {
        uint64_t n = 0;
        for (int i = 0; i <= m->fam->nbounds; i++)
            n += __atomic_load_n(&m->buckets[i], __ATOMIC_RELAXED);
        return (double)n;
    }
    return (double)__atomic_load_n(&m->ival, __ATOMIC_RELAXED) +
           bits_double(__atomic_load_n(&m->dbits, __ATOMIC_RELAXED));
}

/* --- collectors --------------------------------------------------------------- */

int metrics_register_collector(metrics_collect_fn *fn, void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.ncollectors; i++)
        if (R.collectors[i].fn == fn && R.collectors[i].arg == arg)
            goto out;
    if (R.ncollectors == R.capcollectors) {
        int cap = R.capcollectors ? R.capcollectors * 2 : 8;
        struct collector *n = xrealloc(R.collectors, sizeof *n * (size_t)cap);
        if (!n) {
            rc = -1;
            goto out;
        }
        R.collectors = n;
        R.capcollectors = cap;
    }
    R.collectors[R.ncollectors++] = (struct collector){fn, arg};
out:
    pthread_mutex_unlock(&R.mu);
    return rc;
}

void metrics_unregister_collector(metrics_collect_fn *fn, void *arg)
{
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.ncollectors; i++)
        if (R.collectors[i].fn == fn && R.collectors[i].arg == arg) {
            memmove(&R.collectors[i], &R.collectors[i + 1],
                    sizeof R.collectors[0] * (size_t)(R.ncollectors - i - 1));
            R.ncollectors--;
            break;
        }
    pthread_mutex_unlock(&R.mu);
}

/* A family written by collectors during one render. */
struct wfamily {
    char *name;               /* owned */
    enum metrics_type type;
    struct obuf text;         /* HELP, TYPE, then the samples */
    int nsamples;
};

/* The series written so far in one render, as keys "name\0" followed by
 * "label\0value\0" pairs sorted by label name; open addressing. */
struct seen {
    struct seen_slot {
        uint64_t hash;
        char *key;            /* owned, NULL when free */
        size_t len;
    } *slots;
    size_t cap, n;
};

struct metrics_writer {
    struct wfamily *fams;     /* owned, in order of first appearance */
    int nfams, capfams;
    int cur;                  /* the current family, or -1 (samples are dropped) */
    struct seen seen;
    struct obuf key;          /* scratch for series keys */
    bool oom;
};

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Adds key; returns 1 when added, 0 when it was there, -1 out of memory. */
static int seen_add(struct seen *s, const char *key, size_t len)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct seen_slot *n = xcalloc(cap, sizeof *n);
        if (!n)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].key)
                continue;
            size_t j = s->slots[i].hash & (cap - 1);
            while (n[j].key)
                j = (j + 1) & (cap - 1);
            n[j] = s->slots[i];
        }
        xfree(s->slots);
        s->slots = n;
        s->cap = cap;
    }
    uint64_t h = fnv1a(key, len);
    size_t j = h & (s->cap - 1);
    for (; s->slots[j].key; j = (j + 1) & (s->cap - 1))
        if (s->slots[j].hash == h && s->slots[j].len == len && !memcmp(s->slots[j].key, key, len))
            return 0;
    char *k = xmalloc(len ? len : 1);
    if (!k)
        return -1;
    memcpy(k, key, len);
    s->slots[j] = (struct seen_slot){h, k, len};
    s->n++;
    return 1;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->cap; i++)
        xfree(s->slots[i].key);
    xfree(s->slots);
    memset(s, 0, sizeof *s);
}

int metrics_write_family(struct metrics_writer *w, const char *name, const char *help,
                         enum metrics_type type)
{
    w->cur = -1;
    if (!valid_metric_name(name) || type < METRICS_COUNTER || type > METRICS_UNTYPED)
        return -1;
    for (int i = 0; i < R.nfams; i++)
        if (names_clash(R.fams[i]->name, R.fams[i]->type, name, type))
            return -1;
    for (int i = 0; i < w->nfams; i++) {
        struct wfamily *f = &w->fams[i];
        if (!strcmp(f->name, name)) {
            if (f->type != type)
                return -1;
            w->cur = i;
            return 0;
        }
        if (names_clash(f->name, f->type, name, type))
            return -1;
    }
    if (w->nfams == w->capfams) {
        int cap = w->capfams ? w->capfams * 2 : 16;
        struct wfamily *n = xrealloc(w->fams, sizeof *n * (size_t)cap);
        if (!n) {
            w->oom = true;
            return -1;
        }
        w->fams = n;
        w->capfams = cap;
    }
    struct wfamily *f = &w->fams[w->nfams];
    memset(f, 0, sizeof *f);
    if (!(f->name = xstrdup(name))) {
        w->oom = true;
        return -1;
    }
    f->type = type;
    obuf_init(&f->text);
    put_header(&f->text, name, help, type);
    w->cur = w->nfams++;
    return 0;
}

/* Checks a sample of the current family and claims its series.  Returns
 * the family or NULL (dropped). */
static struct wfamily *claim_series(struct metrics_writer *w, const struct metrics_label *labels,
                                    int nlabels, bool histogram)
{
    if (w->cur < 0)
        return NULL;
    struct wfamily *f = &w->fams[w->cur];
    if ((f->type == METRICS_HISTOGRAM) != histogram || check_labels(labels, nlabels, histogram))
        return NULL;
    /* the key: labels in name order, so that the order they came in does
     * not hide a duplicate */
    int order[METRICS_MAX_LABELS];
    for (int i = 0; i < nlabels; i++) {
        int j = i;
        while (j > 0 && strcmp(labels[order[j - 1]].name, labels[i].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    obuf_reset(&w->key);
    obuf_put(&w->key, f->name, strlen(f->name) + 1);
    for (int i = 0; i < nlabels; i++) {
        const struct metrics_label *l = &labels[order[i]];
        obuf_put(&w->key, l->name, strlen(l->name) + 1);
        obuf_put(&w->key, l->value, strlen(l->value) + 1);
    }
    int rc = w->key.oom ? -1 : seen_add(&w->seen, (const char *)w->key.data, w->key.len);
    if (rc < 0)
        w->oom = true;
    return rc == 1 ? f : NULL;
}

static int write_sample(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                        bool is_int, int64_t i, double d)
{
    struct wfamily *f = claim_series(w, labels, nlabels, false);
    if (!f)
        return -1;
    struct obuf lab;
    obuf_init(&lab);
    put_labels(&lab, labels, nlabels);
    put_series(&f->text, f->name, NULL, (const char *)lab.data, lab.len, NULL);
    if (is_int)
        put_int(&f->text, i);
    else
        put_double(&f->text, d);
    obuf_put_u8(&f->text, '\n');
    f->nsamples++;
    if (lab.oom)
        w->oom = true;
    obuf_free(&lab);
    return 0;
}

int metrics_write_int(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                      int64_t v)
{
    return write_sample(w, labels, nlabels, true, v, 0);
}

int metrics_write_double(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                         double v)
{
    return write_sample(w, labels, nlabels, false, 0, v);
}

/* The _bucket, _sum and _count lines of one histogram series. */
static void put_histogram(struct obuf *o, const char *name, const char *labels, size_t labels_len,
                          const double *bounds, int nbounds, const uint64_t *counts, double sum)
{
    uint64_t cum = 0;
    char le[32];
    for (int i = 0; i <= nbounds; i++) {
        cum += counts[i];
        put_series(o, name, "_bucket", labels, labels_len,
                   i < nbounds ? metrics_format_double(le, bounds[i]) : "+Inf");
        put_int(o, (int64_t)cum);
        obuf_put_u8(o, '\n');
    }
    put_series(o, name, "_sum", labels, labels_len, NULL);
    put_double(o, sum);
    obuf_put_u8(o, '\n');
    put_series(o, name, "_count", labels, labels_len, NULL);
    put_int(o, (int64_t)cum);
    obuf_put_u8(o, '\n');
}

int metrics_write_histogram(struct metrics_writer *w, const struct metrics_label *labels, int nlabels,
                            const double *bounds, int nbounds, const uint64_t *counts, double sum)
{
    if (nbounds < 1 || nbounds > METRICS_MAX_BUCKETS || !bounds || !counts)
        return -1;
    for (int i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return -1;
    struct wfamily *f = claim_series(w, labels, nlabels, true);
    if (!f)
        return -1;
    struct obuf lab;
    obuf_init(&lab);
    put_labels(&lab, labels, nlabels);
    put_histogram(&f->text, f->name, (const char *)lab.data, lab.len, bounds, nbounds, counts, sum);
    f->nsamples++;
    if (lab.oom)
        w->oom = true;
    obuf_free(&lab);
    return 0;
}

/* --- rendering ---------------------------------------------------------------- */

static void render_family(struct obuf *o, const struct family *f)
{
    put_header(o, f->name, f->help, f->type);
    for (int i = 0; i < f->nseries; i++) {
        const struct metric *m = f->series[i];
        size_t ll = strlen(m->labels);
        if (f->type == METRICS_HISTOGRAM) {
            uint64_t counts[METRICS_MAX_BUCKETS + 1];
            for (int k = 0; k <= f->nbounds; k++)
                counts[k] = __atomic_load_n(&m->buckets[k], __ATOMIC_RELAXED);
            put_histogram(o, f->name, m->labels, ll, f->bounds, f->nbounds, counts,
                          bits_double(__atomic_load_n(&m->sumbits, __ATOMIC_RELAXED)));
            continue;
        }
        put_series(o, f->name, NULL, m->labels, ll, NULL);
        int64_t iv = __atomic_load_n(&m->ival, __ATOMIC_RELAXED);
        uint64_t db = __atomic_load_n(&m->dbits, __ATOMIC_RELAXED);
        if (db == 0)
            put_int(o, iv); /* exact, also past 2^53 */
        else
            put_double(o, (double)iv + bits_double(db));
        obuf_put_u8(o, '\n');
    }
}

int metrics_render(struct obuf *out)
{
    struct metrics_writer w;
    memset(&w, 0, sizeof w);
    w.cur = -1;
    obuf_init(&w.key);
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.nfams; i++)
        render_family(out, R.fams[i]);
    for (int i = 0; i < R.ncollectors; i++) {
        R.collectors[i].fn(&w, R.collectors[i].arg);
        w.cur = -1;
    }
    pthread_mutex_unlock(&R.mu);
    for (int i = 0; i < w.nfams; i++) {
        struct wfamily *f = &w.fams[i];
        if (f->text.oom)
            w.oom = true;
        if (f->nsamples > 0)
            obuf_put(out, f->text.data, f->text.len);
        obuf_free(&f->text);
        xfree(f->name);
    }
    xfree(w.fams);
    seen_free(&w.seen);
    obuf_free(&w.key);
    if (w.oom)
        out->oom = 1;
    return out->oom ? -1 : 0;
}

/* --- helpers ------------------------------------------------------------------- */

void metrics_rate_init(struct metrics_rate *r, int64_t now_ms, double v)
{
    memset(r, 0, sizeof *r);
    r->t[0] = now_ms;
    r->v[0] = v;
    r->n = 1;
}

double metrics_rate_update(struct metrics_rate *r, int64_t now_ms, double v)
{
    if (r->n == 0) {
        metrics_rate_init(r, now_ms, v);
        return 0;
    }
    /* the oldest sample in the window that is at least a second old; with
     * sparse samples the newest one older than a second; else the oldest */
    int ref = -1;
    for (int i = 0; i < r->n && ref < 0; i++) {
        int64_t age = now_ms - r->t[i];
        if (age <= METRICS_RATE_WINDOW_MS) {
            if (age >= 1000)
                ref = i;
            break;
        }
    }
    for (int i = r->n - 1; i >= 0 && ref < 0; i--)
        if (now_ms - r->t[i] >= 1000)
            ref = i;
    if (ref < 0)
        ref = 0;
    double dt = (double)(now_ms - r->t[ref]) / 1000.0;
    double rate = dt > 0 ? (v - r->v[ref]) / dt : 0;
    if (now_ms - r->t[r->n - 1] >= 1000) {
        if (r->n == METRICS_RATE_SAMPLES) {
            memmove(r->t, r->t + 1, sizeof r->t[0] * (METRICS_RATE_SAMPLES - 1));
            memmove(r->v, r->v + 1, sizeof r->v[0] * (METRICS_RATE_SAMPLES - 1));
            r->n--;
        }
        r->t[r->n] = now_ms;
        r->v[r->n] = v;
        r->n++;
    }
    return rate > 0 ? rate : 0;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.nfams; i++)
        free_family(R.fams[i]);
    xfree(R.fams);
    xfree(R.collectors);
    R.fams = NULL;
    R.collectors = NULL;
    R.nfams = R.capfams = R.ncollectors = R.capcollectors = 0;
    pthread_mutex_unlock(&R.mu);
}
