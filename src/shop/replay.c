/* replay.c: the dataset -> event mappings of replay.h.  Loading reads every
 * row into compact per-dataset arrays (strings go into one pool and are
 * referred to by offset, so the arrays can grow by realloc); replay_finish
 * groups them, makes one small reference (ts, sequence, object, type) per
 * event and sorts those; replay_next builds each event on demand into one
 * reused struct shop_event.  Input files may be zstd-compressed: src_read
 * decompresses in a stream with libzstd.  The mapping rules are documented
 * in replay.h. */
#include "shop/replay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/alloc.h"
#include "shop/csv.h"

#define NONE ((size_t)-1)
#define NO_INDEX UINT32_MAX
#define MS_PER_HOUR (3600 * 1000LL)
/* Olist timestamps are local time in Brazil; replay.h says why UTC-03:00. */
#define OLIST_UTC_OFFSET_MS (3 * MS_PER_HOUR)

/* ------------------------------------------------------------------ */
/* Storage helpers                                                     */

/* All strings of a replay, NUL-terminated, addressed by offset. */
struct pool {
    char *p;
    size_t len, cap;
};

static size_t pool_add(struct pool *pl, const char *s, size_t n)
{
    size_t off = pl->len;

    if (pl->len + n + 1 > pl->cap) {
        size_t cap = pl->cap ? pl->cap : 1 << 16;
        char *p;

        while (cap < pl->len + n + 1)
            cap *= 2;
        if (!(p = xrealloc(pl->p, cap)))
            return NONE;
        pl->p = p;
        pl->cap = cap;
    }
    if (n)
        memcpy(pl->p + pl->len, s, n);
    pl->p[pl->len + n] = '\0';
    pl->len += n + 1;
    return off;
}

static size_t pool_printf(struct pool *pl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t pool_printf(struct pool *pl, const char *fmt, ...)
{
    char buf[SHOP_MAX_ID_BYTES + 64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return NONE;
    return pool_add(pl, buf, (size_t)n);
}

/* Makes room for one more element in *p (elements of size sz, *n used, *cap
 * allocated).  Returns 0, or -1 when out of memory or past NO_INDEX entries. */
static int vec_grow(void *pp, size_t *cap, size_t n, size_t sz)
{
    void **p = pp;
    size_t c;
    void *q;

    if (n < *cap)
        return 0;
    if (n >= NO_INDEX - 1)
        return -1;
    c = *cap ? *cap * 2 : 1024;
    if (!(q = xrealloc(*p, c * sz)))
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* A string -> uint32 map over pool strings (open addressing, linear probing).
 * Slots with key == NONE are empty. */
struct strmap {
    struct strmap_slot {
        size_t key;     /* pool offset of the key */
        uint32_t hash;
        uint32_t val;
    } *slot;
    size_t cap, n;      /* cap is a power of two */
};

static uint32_t hash_str(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Returns the slot of s[0..n): the one holding it, or the empty one where it
 * belongs. */
static struct strmap_slot *strmap_find(const struct strmap *m, const struct pool *pl,
                                       const char *s, size_t n, uint32_t h)
{
    size_t mask = m->cap - 1;

    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *sl = &m->slot[i];

        if (sl->key == NONE)
            return sl;
        /* strncmp stops at the stored key's NUL, so a shorter key is never read past */
        if (sl->hash == h && !strncmp(pl->p + sl->key, s, n) && pl->p[sl->key + n] == '\0')
            return sl;
    }
}

/* The value for s[0..n), or NO_INDEX. */
static uint32_t strmap_get(const struct strmap *m, const struct pool *pl, const char *s, size_t n)
{
    if (!m->cap)
        return NO_INDEX;
    return strmap_find(m, pl, s, n, hash_str(s, n))->val;
}

static int strmap_rehash(struct strmap *m, size_t cap)
{
    struct strmap_slot *old = m->slot;
    size_t oldcap = m->cap;

    if (!(m->slot = xmalloc(cap * sizeof *m->slot))) {
        m->slot = old;
        return -1;
    }
    for (size_t i = 0; i < cap; i++) {
        m->slot[i].key = NONE;
        m->slot[i].val = NO_INDEX;
    }
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key != NONE) {
            size_t j = old[i].hash & (cap - 1);

            while (m->slot[j].key != NONE)
                j = (j + 1) & (cap - 1);
            m->slot[j] = old[i];
        }
    }
    xfree(old);
    return 0;
}

/* Returns the slot for the key at pool offset key (added when absent, with
 * val NO_INDEX), or NULL when out of memory. */
static struct strmap_slot *strmap_put(struct strmap *m, const struct pool *pl, size_t key)
{
    const char *s = pl->p + key;
    size_t n = strlen(s);
    uint32_t h = hash_str(s, n);
    struct strmap_slot *sl;

    if ((m->n + 1) * 2 > m->cap && strmap_rehash(m, m->cap ? m->cap * 2 : 1024) < 0)
        return NULL;
    sl = strmap_find(m, pl, s, n, h);
    if (sl->key == NONE) {
        sl->key = key;
        sl->hash = h;
        m->n++;
    }
    return sl;
}

static void strmap_free(struct strmap *m)
{
    xfree(m->slot);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ */
/* Numbers and dates                                                   */

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int replay_parse_scaled(const char *s, size_t n, int scale, int64_t *out)
{
    const char *ip, *fp;
    size_t ni = 0, nf = 0, i = 0;
    long exp10 = 0, point;
    int neg = 0;
    uint64_t v = 0;
    int round_digit;

    trim(&s, &n);
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    ip = s + i;
    while (i < n && is_digit(s[i])) {
        i++;
        ni++;
    }
    fp = s + i;
    if (i < n && s[i] == '.') {
        fp = s + ++i;
        while (i < n && is_digit(s[i])) {
            i++;
            nf++;
        }
    }
    if (ni + nf == 0)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        size_t nd = 0;

        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        while (i < n && is_digit(s[i])) {
            if (++nd > 4)
                return -1;
            exp10 = exp10 * 10 + (s[i++] - '0');
        }
        if (nd == 0)
            return -1;
        if (eneg)
            exp10 = -exp10;
    }
    if (i != n)
        return -1;

    /* The digits are D = ip[0..ni) fp[0..nf); the scaled value is D with the
     * decimal point after `point` digits; the digit after it rounds. */
    point = (long)ni + exp10 + scale;
    for (long k = 0; k < point; k++) {
        int d;

        if ((size_t)k < ni)
            d = ip[k] - '0';
        else if ((size_t)k - ni < nf)
            d = fp[k - ni] - '0';
        else
            d = 0;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)d;
    }
    if (point < 0)
        round_digit = 0;
    else if ((size_t)point < ni)
        round_digit = ip[point] - '0';
    else if ((size_t)point - ni < nf)
        round_digit = fp[point - (long)ni] - '0';
    else
        round_digit = 0;
    if (round_digit >= 5)
        v++;
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* A decimal integer without fraction, at most 18 digits. */
static int parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    int64_t v = 0;

    trim(&s, &n);
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n || n - i > 18)
        return -1;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* Reads between min and max digits at *p (before end) as a number. */
static int read_num(const char **p, const char *end, int min, int max, int *out)
{
    int v = 0, k = 0;

    while (*p < end && is_digit(**p) && k < max) {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    if (k < min)
        return -1;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: count
 * whole 400-year eras from 0000-03-01, then years, then days, with March as
 * the first month so that the leap day falls at the end of a year. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int replay_parse_time(const char *s, size_t n, int64_t *ms)
{
    const char *p, *end;
    int y, mo, d, h, mi, sec = 0, frac = 0;

    trim(&s, &n);
    p = s;
    end = s + n;
    if (n >= 5 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) &&
        s[4] == '-') {
        /* YYYY-MM-DD[ T]HH:MM[:SS[.fff]][Z] */
        if (read_num(&p, end, 4, 4, &y) || expect(&p, end, '-') ||
            read_num(&p, end, 1, 2, &mo) || expect(&p, end, '-') ||
            read_num(&p, end, 1, 2, &d))
            return -1;
        if (p >= end || (*p != ' ' && *p != 'T'))
            return -1;
        p++;
    } else {
        /* M/D/YYYY H:MM[:SS] */
        if (read_num(&p, end, 1, 2, &mo) || expect(&p, end, '/') ||
            read_num(&p, end, 1, 2, &d) || expect(&p, end, '/') ||
            read_num(&p, end, 4, 4, &y) || expect(&p, end, ' '))
            return -1;
    }
    if (read_num(&p, end, 1, 2, &h) || expect(&p, end, ':') || read_num(&p, end, 2, 2, &mi))
        return -1;
    if (p < end && *p == ':') {
        p++;
        if (read_num(&p, end, 2, 2, &sec))
            return -1;
        if (p < end && *p == '.') {
            int k = 0;

            p++;
            if (p >= end || !is_digit(*p))
                return -1;
            while (p < end && is_digit(*p)) {
                if (k++ < 3)
                    frac = frac * 10 + (*p - '0');
                p++;
            }
            while (k++ < 3)
                frac *= 10;
        }
    }
    if (p < end && *p == 'Z')
        p++;
    if (p != end)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 59)
        return -1;
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + frac;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Per-dataset records                                                 */

struct or_row {             /* one Online Retail row */
    size_t stock;           /* StockCode (pool) */
    int64_t qty;            /* Quantity */
    int64_t price;          /* round(UnitPrice x 100) */
    uint32_t next;          /* next row of the same invoice, or NO_INDEX */
};

struct or_invoice {
    size_t no;              /* InvoiceNo (pool) */
    size_t user;            /* user_id (pool), NONE until a row has a CustomerID */
    int64_t ts;             /* date of its first row */
    uint32_t first, last;   /* its rows, linked by or_row.next */
    uint32_t nitems;        /* item rows (orders) or rows with Quantity != 0 (refunds) */
    int64_t amount;
};

struct ol_order {
    size_t id, customer;    /* order_id, customer_id (pool) */
    size_t fallback;        /* "olist-<order_id>" (pool) when it has no items */
    int64_t ts[4];          /* purchase, approved, carrier, delivered; -1 if absent */
    int canceled;           /* order_status is "canceled" */
    int overflow;           /* its amounts overflow 64 bits: no events */
    uint32_t first_item, last_item; /* its items, linked by ol_item.next */
    uint32_t nitems;
    int npay;               /* payments found for it */
    int64_t min_seq;        /* smallest payment_sequential seen */
    size_t pay_type;        /* payment_type of that payment (pool) */
    int64_t pay_sum, item_sum, amount;
};

struct ol_pay {
    size_t order, type;     /* order_id, payment_type (pool) */
    int64_t seq, value;     /* payment_sequential, round(payment_value x 100) */
};

struct ol_item {
    size_t order, product;  /* order_id, product_id (pool) */
    int64_t price, freight; /* minor units */
    uint32_t next;
};

struct yc_click {
    size_t session, item;   /* SessionId, ItemId (pool) */
    int64_t ts;
    uint32_t k;             /* position in its session */
};

/* One event to make: sorted by (ts, seq). */
struct ev_ref {
    int64_t ts;
    uint32_t seq;
    uint32_t obj;           /* invoice, order or click index */
    enum shop_event_type type;
};

struct replay {
    enum replay_dataset ds;
    struct pool pool;
    struct replay_stats st;
    int used_stdin;
    int finished;

    struct or_row *orows;
    size_t n_orows, cap_orows;
    struct or_invoice *inv;
    size_t n_inv, cap_inv;
    struct strmap inv_map;      /* InvoiceNo -> invoice */

    struct ol_order *orders;
    size_t n_orders, cap_orders;
    struct strmap order_map;    /* order_id -> order */
    struct ol_pay *pays;
    size_t n_pays, cap_pays;
    struct ol_item *items;
    size_t n_items, cap_items;
    int n_order_files;

    struct yc_click *clicks;
    size_t n_clicks, cap_clicks;
    struct strmap session_map;  /* SessionId -> clicks so far */

    struct ev_ref *refs;
    size_t n_refs, cap_refs, next_ref;

    struct shop_event ev;       /* what replay_next returns */
    struct shop_item *ev_items;
    char id[SHOP_MAX_ID_BYTES + 64];   /* ev.id */
    char user[SHOP_MAX_ID_BYTES + 64]; /* ev.user_id when it is made up */
};

/* ------------------------------------------------------------------ */
/* Input: files, stdin, zstd                                           */

struct src {
    const char *name;
    FILE *f;
    int is_stdin;
    int zstd;                   /* the input starts with the zstd magic */
    char head[4];               /* first bytes, read to detect zstd */
    size_t nhead, head_pos;     /* plain input: bytes of head not yet returned */
    ZSTD_DCtx *z;
    char *zin;                  /* owned compressed input buffer */
    size_t zin_cap;
    ZSTD_inBuffer in;
    int zeof;                   /* the compressed input is exhausted */
    int frame_open;             /* a zstd frame was started and not completed */
};

static long src_read(void *ctx, char *buf, size_t n, char *err, size_t errsz)
{
    struct src *s = ctx;

    if (!s->zstd) {
        size_t got = 0;

        while (s->head_pos < s->nhead && got < n)
            buf[got++] = s->head[s->head_pos++];
        if (got < n) {
            got += fread(buf + got, 1, n - got, s->f);
            if (got == 0 && ferror(s->f)) {
                snprintf(err, errsz, "read failed: %s", strerror(errno));
                return -1;
            }
        }
        return (long)got;
    }
    for (;;) {
        ZSTD_outBuffer out = {buf, n, 0};
        size_t ret, in_before;

        if (s->in.pos == s->in.size && !s->zeof) {
            size_t got = fread(s->zin, 1, s->zin_cap, s->f);

            if (got == 0) {
                if (ferror(s->f)) {
                    snprintf(err, errsz, "read failed: %s", strerror(errno));
                    return -1;
                }
                s->zeof = 1;
            }
            s->in.src = s->zin;
            s->in.size = got;
            s->in.pos = 0;
        }
        in_before = s->in.pos;
        ret = ZSTD_decompressStream(s->z, &out, &s->in);
        if (ZSTD_isError(ret)) {
            snprintf(err, errsz, "invalid zstd data: %s", ZSTD_getErrorName(ret));
            return -1;
        }
        /* ret is 0 exactly when a call completed a frame; a call that did
         * nothing (empty input, nothing buffered) says nothing about it. */
        if (out.pos > 0 || s->in.pos > in_before)
            s->frame_open = ret != 0;
        if (out.pos > 0)
            return (long)out.pos;
        if (s->zeof && s->in.pos == s->in.size) {
            if (s->frame_open) {
                snprintf(err, errsz, "the zstd data ends in the middle of a frame (truncated?)");
                return -1;
            }
            return 0;
        }
    }
}

static int src_open(struct src *s, const char *path, char *err, size_t errsz)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    if (!strcmp(path, "-")) {
        s->f = stdin;
        s->is_stdin = 1;
        s->name = "stdin";
    } else if (!(s->f = fopen(path, "rb"))) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (s->nhead < sizeof s->head) {
        size_t got = fread(s->head + s->nhead, 1, sizeof s->head - s->nhead, s->f);

        if (got == 0)
            break;
        s->nhead += got;
    }
    if (ferror(s->f)) {
        snprintf(err, errsz, "cannot read %s: %s", s->name, strerror(errno));
        return -1;
    }
    if (s->nhead == 4 && !memcmp(s->head, "\x28\xB5\x2F\xFD", 4)) {
        s->zstd = 1;
        s->zin_cap = ZSTD_DStreamInSize();
        if (!(s->z = ZSTD_createDCtx()) || !(s->zin = xmalloc(s->zin_cap))) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        memcpy(s->zin, s->head, 4);
        s->in.src = s->zin;
        s->in.size = 4;
        s->in.pos = 0;
    }
    return 0;
}

static void src_close(struct src *s)
{
    if (s->f && !s->is_stdin)
        fclose(s->f);
    if (s->z)
        ZSTD_freeDCtx(s->z);
    xfree(s->zin);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

static const char *const bad_names[REPLAY_BAD__COUNT] = {
    [REPLAY_BAD_COLUMNS] = "missing columns",
    [REPLAY_BAD_EMPTY] = "empty field",
    [REPLAY_BAD_NUMBER] = "bad number",
    [REPLAY_BAD_DATE] = "bad date",
    [REPLAY_BAD_LONG_ID] = "id too long",
    [REPLAY_BAD_DUPLICATE] = "duplicate order",
};

const char *replay_bad_name(enum replay_bad b)
{
    return (unsigned)b < REPLAY_BAD__COUNT ? bad_names[b] : "?";
}

int replay_dataset_parse(const char *name, enum replay_dataset *out)
{
    if (!strcmp(name, "online-retail"))
        *out = REPLAY_ONLINE_RETAIL;
    else if (!strcmp(name, "olist"))
        *out = REPLAY_OLIST;
    else if (!strcmp(name, "yoochoose"))
        *out = REPLAY_YOOCHOOSE;
    else
        return -1;
    return 0;
}

/* The result of a row handler: 0 (used), ROW_FATAL (out of memory), or a
 * replay_bad + ROW_BAD with the reason in why. */
#define ROW_FATAL (-1)
#define ROW_BAD 1

/* What one loading pass knows: the file, its header, where the columns are. */
struct load {
    const char *name;
    size_t header_n;        /* fields in the header */
    int col[8];             /* field index of each needed column */
    const char *const *colname;
    int kind;               /* olist: 0 orders, 1 payments, 2 items */
    char why[200];
};

static int row_bad(struct load *ld, enum replay_bad b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int row_bad(struct load *ld, enum replay_bad b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ld->why, sizeof ld->why, fmt, ap);
    va_end(ap);
    return ROW_BAD + (int)b;
}

/* Field of column c of row (trimmed). */
static void fld(const struct load *ld, const struct csv_row *row, int c, const char **s,
                size_t *n)
{
    *s = row->field[ld->col[c]];
    *n = row->len[ld->col[c]];
    trim(s, n);
}

/* An id field: non-empty and not too long.  Returns 0 or a row_bad code. */
static int id_field(struct load *ld, const struct csv_row *row, int c, const char **s, size_t *n)
{
    fld(ld, row, c, s, n);
    if (*n == 0)
        return row_bad(ld, REPLAY_BAD_EMPTY, "empty %s", ld->colname[c]);
    if (*n > REPLAY_MAX_ID_BYTES)
        return row_bad(ld, REPLAY_BAD_LONG_ID, "%s longer than %d bytes", ld->colname[c],
                       REPLAY_MAX_ID_BYTES);
    return 0;
}

/* A short, printable quote of a field for messages. */
static const char *show(const char *s, size_t n, char *buf, size_t size)
{
    size_t k = 0;

    for (size_t i = 0; i < n && k + 4 < size; i++)
        buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (k < n && k + 4 >= size) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

static int num_field(struct load *ld, const struct csv_row *row, int c, int scale, int64_t *v)
{
    const char *s;
    size_t n;
    char q[48];

    fld(ld, row, c, &s, &n);
    if (n == 0)
        return row_bad(ld, REPLAY_BAD_EMPTY, "empty %s", ld->colname[c]);
    if ((scale < 0 ? parse_int(s, n, v) : replay_parse_scaled(s, n, scale, v)) < 0)
        return row_bad(ld, REPLAY_BAD_NUMBER, "%s '%s' is not a%s number", ld->colname[c],
                       show(s, n, q, sizeof q), scale < 0 ? "n integer" : "");
    return 0;
}

/* A date field; an empty one gives -1 when optional. */
static int time_field(struct load *ld, const struct csv_row *row, int c, int optional,
                      int64_t *ms)
{
    const char *s;
    size_t n;
    char q[48];

    fld(ld, row, c, &s, &n);
    if (n == 0) {
        if (optional) {
            *ms = -1;
            return 0;
        }
        return row_bad(ld, REPLAY_BAD_EMPTY, "empty %s", ld->colname[c]);
    }
    if (replay_parse_time(s, n, ms) < 0)
        return row_bad(ld, REPLAY_BAD_DATE, "%s '%s' is not a date", ld->colname[c],
                       show(s, n, q, sizeof q));
    return 0;
}

/* Online Retail ------------------------------------------------------- */

enum { OR_INVOICE, OR_STOCK, OR_QTY, OR_DATE, OR_PRICE, OR_CUSTOMER, OR__N };
static const char *const or_cols[OR__N] = {"InvoiceNo", "StockCode", "Quantity",
                                           "InvoiceDate", "UnitPrice", "CustomerID"};

/* "17850.0" -> "17850": an integer with a fraction of zeros loses the
 * fraction; anything else is kept as it is. */
static void customer_id(const char **s, size_t *n)
{
    size_t i = 0;

    while (i < *n && is_digit((*s)[i]))
        i++;
    if (i == 0 || i == *n || (*s)[i] != '.')
        return;
    for (size_t k = i + 1; k < *n; k++)
        if ((*s)[k] != '0')
            return;
    *n = i;
}

static int or_row(struct replay *rp, struct load *ld, const struct csv_row *row)
{
    const char *no, *stock, *cust;
    size_t nno, nstock, ncust;
    int64_t qty, price, ts;
    struct strmap_slot *sl;
    struct or_invoice *iv;
    struct or_row *r;
    uint32_t ri;
    int b;

    if ((b = id_field(ld, row, OR_INVOICE, &no, &nno)) ||
        (b = id_field(ld, row, OR_STOCK, &stock, &nstock)) ||
        (b = num_field(ld, row, OR_QTY, -1, &qty)) ||
        (b = time_field(ld, row, OR_DATE, 0, &ts)) ||
        (b = num_field(ld, row, OR_PRICE, 2, &price)))
        return b;
    fld(ld, row, OR_CUSTOMER, &cust, &ncust);
    customer_id(&cust, &ncust);
    if (ncust > REPLAY_MAX_ID_BYTES)
        return row_bad(ld, REPLAY_BAD_LONG_ID, "CustomerID longer than %d bytes",
                       REPLAY_MAX_ID_BYTES);
    if (qty < -1000000000LL || qty > 1000000000LL)
        return row_bad(ld, REPLAY_BAD_NUMBER, "Quantity %lld is out of range", (long long)qty);
    if (price < -100000000000000LL || price > 100000000000000LL)
        return row_bad(ld, REPLAY_BAD_NUMBER, "UnitPrice is out of range");

    if (vec_grow(&rp->orows, &rp->cap_orows, rp->n_orows, sizeof *rp->orows) < 0)
        return ROW_FATAL;
    ri = (uint32_t)rp->n_orows;
    r = &rp->orows[ri];
    if ((r->stock = pool_add(&rp->pool, stock, nstock)) == NONE)
        return ROW_FATAL;
    r->qty = qty;
    r->price = price;
    r->next = NO_INDEX;

    {
        uint32_t ii = strmap_get(&rp->inv_map, &rp->pool, no, nno);

        if (ii == NO_INDEX) {
            size_t key;

            if (vec_grow(&rp->inv, &rp->cap_inv, rp->n_inv, sizeof *rp->inv) < 0 ||
                (key = pool_add(&rp->pool, no, nno)) == NONE ||
                !(sl = strmap_put(&rp->inv_map, &rp->pool, key)))
                return ROW_FATAL;
            ii = (uint32_t)rp->n_inv++;
            sl->val = ii;
            iv = &rp->inv[ii];
            memset(iv, 0, sizeof *iv);
            iv->no = key;
            iv->user = NONE;
            iv->ts = ts;
            iv->first = ri;
        } else {
            iv = &rp->inv[ii];
            rp->orows[iv->last].next = ri;
        }
        iv->last = ri;
        if (iv->user == NONE && ncust > 0 &&
            (iv->user = pool_add(&rp->pool, cust, ncust)) == NONE)
            return ROW_FATAL;
    }
    rp->n_orows++;
    return 0;
}

/* Olist --------------------------------------------------------------- */

enum { OL_ID, OL_CUSTOMER, OL_STATUS, OL_PURCHASE, OL_APPROVED, OL_CARRIER, OL_DELIVERED,
       OL__N };
static const char *const ol_order_cols[OL__N] = {
    "order_id", "customer_id", "order_status", "order_purchase_timestamp",
    "order_approved_at", "order_delivered_carrier_date", "order_delivered_customer_date"};
enum { OP_ID, OP_SEQ, OP_TYPE, OP_VALUE, OP__N };
static const char *const ol_pay_cols[OP__N] = {"order_id", "payment_sequential", "payment_type",
                                               "payment_value"};
enum { OI_ID, OI_ITEM, OI_PRODUCT, OI_PRICE, OI_FREIGHT, OI__N };
static const char *const ol_item_cols[OI__N] = {"order_id", "order_item_id", "product_id",
                                                "price", "freight_value"};

static int ol_order_row(struct replay *rp, struct load *ld, const struct csv_row *row)
{
    const char *id, *cust, *status;
    size_t nid, ncust, nstatus;
    int64_t ts[4];
    struct strmap_slot *sl;
    struct ol_order *o;
    size_t key;
    int b;

    if ((b = id_field(ld, row, OL_ID, &id, &nid)) ||
        (b = id_field(ld, row, OL_CUSTOMER, &cust, &ncust)))
        return b;
    for (int k = 0; k < 4; k++)
        if ((b = time_field(ld, row, OL_PURCHASE + k, k > 0, &ts[k])))
            return b;
    if (strmap_get(&rp->order_map, &rp->pool, id, nid) != NO_INDEX)
        return row_bad(ld, REPLAY_BAD_DUPLICATE, "order_id seen before");
    fld(ld, row, OL_STATUS, &status, &nstatus);

    if (vec_grow(&rp->orders, &rp->cap_orders, rp->n_orders, sizeof *rp->orders) < 0 ||
        (key = pool_add(&rp->pool, id, nid)) == NONE ||
        !(sl = strmap_put(&rp->order_map, &rp->pool, key)))
        return ROW_FATAL;
    sl->val = (uint32_t)rp->n_orders;
    o = &rp->orders[rp->n_orders++];
    memset(o, 0, sizeof *o);
    o->id = key;
    if ((o->customer = pool_add(&rp->pool, cust, ncust)) == NONE)
        return ROW_FATAL;
    for (int k = 0; k < 4; k++)
        o->ts[k] = ts[k] < 0 ? -1 : ts[k] + OLIST_UTC_OFFSET_MS;
    o->canceled = nstatus == 8 && !memcmp(status, "canceled", 8);
    o->fallback = NONE;
    o->first_item = o->last_item = NO_INDEX;
    o->pay_type = NONE;
    return 0;
}

static int ol_pay_row(struct replay *rp, struct load *ld, const struct csv_row *row)
{
    const char *id, *type;
    size_t nid, ntype;
    int64_t seq, value;
    struct ol_pay *p;
    int b;

    if ((b = id_field(ld, row, OP_ID, &id, &nid)) ||
        (b = num_field(ld, row, OP_SEQ, -1, &seq)) ||
        (b = id_field(ld, row, OP_TYPE, &type, &ntype)) ||
        (b = num_field(ld, row, OP_VALUE, 2, &value)))
        return b;
    if (value < 0 || value > 1000000000000LL)
        return row_bad(ld, REPLAY_BAD_NUMBER, "payment_value is out of range");
    if (vec_grow(&rp->pays, &rp->cap_pays, rp->n_pays, sizeof *rp->pays) < 0)
        return ROW_FATAL;
    p = &rp->pays[rp->n_pays];
    if ((p->order = pool_add(&rp->pool, id, nid)) == NONE ||
        (p->type = pool_add(&rp->pool, type, ntype)) == NONE)
        return ROW_FATAL;
    p->seq = seq;
    p->value = value;
    rp->n_pays++;
    return 0;
}

static int ol_item_row(struct replay *rp, struct load *ld, const struct csv_row *row)
{
    const char *id, *product;
    size_t nid, nproduct;
    int64_t item, price, freight;
    struct ol_item *it;
    int b;

    if ((b = id_field(ld, row, OI_ID, &id, &nid)) ||
        (b = num_field(ld, row, OI_ITEM, -1, &item)) ||
        (b = id_field(ld, row, OI_PRODUCT, &product, &nproduct)) ||
        (b = num_field(ld, row, OI_PRICE, 2, &price)) ||
        (b = num_field(ld, row, OI_FREIGHT, 2, &freight)))
        return b;
    if (price < 0 || price > 1000000000000LL || freight < 0 || freight > 1000000000000LL)
        return row_bad(ld, REPLAY_BAD_NUMBER, "price or freight_value is out of range");
    if (vec_grow(&rp->items, &rp->cap_items, rp->n_items, sizeof *rp->items) < 0)
        return ROW_FATAL;
    it = &rp->items[rp->n_items];
    if ((it->order = pool_add(&rp->pool, id, nid)) == NONE ||
        (it->product = pool_add(&rp->pool, product, nproduct)) == NONE)
        return ROW_FATAL;
    it->price = price;
    it->freight = freight;
    it->next = NO_INDEX;
    rp->n_items++;
    return 0;
}

/* YOOCHOOSE ----------------------------------------------------------- */

enum { YC_SESSION, YC_ITEM, YC_TIME, YC__N };
static const char *const yc_cols[YC__N] = {"SessionId", "ItemId", "Time"};

static int yc_row(struct replay *rp, struct load *ld, const struct csv_row *row)
{
    const char *sess, *item;
    size_t nsess, nitem;
    int64_t ts;
    struct strmap_slot *sl;
    struct yc_click *c;
    size_t key;
    int b;

    if ((b = id_field(ld, row, YC_SESSION, &sess, &nsess)) ||
        (b = id_field(ld, row, YC_ITEM, &item, &nitem)) ||
        (b = num_field(ld, row, YC_TIME, 3, &ts)))
        return b;
    if (ts < 0)
        return row_bad(ld, REPLAY_BAD_NUMBER, "Time is negative");
    if (vec_grow(&rp->clicks, &rp->cap_clicks, rp->n_clicks, sizeof *rp->clicks) < 0 ||
        (key = pool_add(&rp->pool, sess, nsess)) == NONE)
        return ROW_FATAL;
    c = &rp->clicks[rp->n_clicks];
    if (!(sl = strmap_put(&rp->session_map, &rp->pool, key)))
        return ROW_FATAL;
    if (sl->key != key) {
        /* known session: drop the copy just added (it is the pool's tail) */
        rp->pool.len = key;
    }
    c->session = sl->key;
    c->k = sl->val == NO_INDEX ? 0 : sl->val;
    sl->val = c->k + 1;
    if ((c->item = pool_add(&rp->pool, item, nitem)) == NONE)
        return ROW_FATAL;
    c->ts = ts;
    rp->n_clicks++;
    return 0;
}

/* The file loop -------------------------------------------------------- */

/* Finds every name of names[0..n) in the header.  Returns -1 when all are
 * there (ld->col filled), else the index of the first one missing. */
static int find_columns(struct load *ld, const struct csv_row *h, const char *const *names,
                        int n)
{
    for (int c = 0; c < n; c++) {
        ld->col[c] = -1;
        for (size_t i = 0; i < h->n; i++) {
            const char *s = h->field[i];
            size_t len = h->len[i];

            trim(&s, &len);
            if (len == strlen(names[c]) && !memcmp(s, names[c], len)) {
                ld->col[c] = (int)i;
                break;
            }
        }
        if (ld->col[c] < 0)
            return c;
    }
    ld->colname = names;
    return -1;
}

static void note_bad(struct replay *rp, struct load *ld, long line, int b)
{
    struct replay_stats *st = &rp->st;

    st->bad_rows++;
    st->bad[b - ROW_BAD]++;
    if (st->nreported < REPLAY_MAX_REPORTED)
        snprintf(st->reported[st->nreported++], sizeof st->reported[0], "%s line %ld: %s",
                 ld->name, line, ld->why);
}

static int load(struct replay *rp, const char *name, struct csv_reader *cr, char *err,
                size_t errsz)
{
    struct load ld;
    struct csv_row row;
    int (*handler)(struct replay *, struct load *, const struct csv_row *) = NULL;
    int r, miss;

    memset(&ld, 0, sizeof ld);
    ld.name = name;
    if (rp->finished) {
        snprintf(err, errsz, "%s: the replay was already started", name);
        return -1;
    }
    r = csv_next(cr, &row);
    if (r < 0) {
        snprintf(err, errsz, "%s: %s", name, csv_error(cr));
        return -1;
    }
    if (r == 0) {
        snprintf(err, errsz, "%s is empty (it has no header line)", name);
        return -1;
    }
    ld.header_n = row.n;
    switch (rp->ds) {
    case REPLAY_ONLINE_RETAIL:
        if ((miss = find_columns(&ld, &row, or_cols, OR__N)) >= 0) {
            snprintf(err, errsz,
                     "%s is not the Online Retail dataset: its header has no %s column", name,
                     or_cols[miss]);
            return -1;
        }
        handler = or_row;
        break;
    case REPLAY_OLIST:
        if (find_columns(&ld, &row, ol_order_cols, OL__N) < 0) {
            handler = ol_order_row;
            rp->n_order_files++;
        } else if (find_columns(&ld, &row, ol_pay_cols, OP__N) < 0) {
            handler = ol_pay_row;
        } else if (find_columns(&ld, &row, ol_item_cols, OI__N) < 0) {
            handler = ol_item_row;
        } else {
            snprintf(err, errsz,
                     "%s is not an Olist orders, payments or items file: its header lacks "
                     "their columns",
                     name);
            return -1;
        }
        break;
    case REPLAY_YOOCHOOSE:
        if ((miss = find_columns(&ld, &row, yc_cols, YC__N)) >= 0) {
            snprintf(err, errsz,
                     "%s is not a YOOCHOOSE session file: its header has no %s column "
                     "(expected tab-separated SessionId, ItemId, Time)",
                     name, yc_cols[miss]);
            return -1;
        }
        handler = yc_row;
        break;
    }

    while ((r = csv_next(cr, &row)) > 0) {
        int b;

        rp->st.rows++;
        if (row.n != ld.header_n) {
            ld.why[0] = '\0';
            snprintf(ld.why, sizeof ld.why, "%zu fields where the header has %zu", row.n,
                     ld.header_n);
            note_bad(rp, &ld, row.line, ROW_BAD + REPLAY_BAD_COLUMNS);
            continue;
        }
        b = handler(rp, &ld, &row);
        if (b == ROW_FATAL) {
            snprintf(err, errsz, "%s line %ld: out of memory (or more rows than %u)", name,
                     row.line, NO_INDEX - 1);
            return -1;
        }
        if (b > 0)
            note_bad(rp, &ld, row.line, b);
    }
    if (r < 0) {
        snprintf(err, errsz, "%s: %s", name, csv_error(cr));
        return -1;
    }
    return 0;
}

static char dataset_sep(enum replay_dataset ds)
{
    return ds == REPLAY_YOOCHOOSE ? '\t' : ',';
}

int replay_load_file(struct replay *rp, const char *path, char *err, size_t errsz)
{
    struct src s;
    struct csv_reader *cr = NULL;
    int rc = -1;

    if (!strcmp(path, "-")) {
        if (rp->used_stdin) {
            snprintf(err, errsz, "stdin (\"-\") can be read only once");
            return -1;
        }
        rp->used_stdin = 1;
    }
    if (src_open(&s, path, err, errsz) < 0)
        goto out;
    if (!(cr = csv_open(src_read, &s, dataset_sep(rp->ds)))) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    rc = load(rp, s.name, cr, err, errsz);
out:
    csv_close(cr);
    src_close(&s);
    return rc;
}

int replay_load_mem(struct replay *rp, const char *name, const char *p, size_t n, char *err,
                    size_t errsz)
{
    struct csv_reader *cr = csv_open_mem(p, n, dataset_sep(rp->ds));
    int rc;

    if (!cr) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    rc = load(rp, name, cr, err, errsz);
    csv_close(cr);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Building the events                                                 */

static int add_ref(struct replay *rp, int64_t ts, uint32_t obj, enum shop_event_type t)
{
    struct ev_ref *r;

    if (vec_grow(&rp->refs, &rp->cap_refs, rp->n_refs, sizeof *rp->refs) < 0)
        return -1;
    r = &rp->refs[rp->n_refs];
    r->ts = ts;
    r->seq = (uint32_t)rp->n_refs;
    r->obj = obj;
    r->type = t;
    rp->n_refs++;
    return 0;
}

static int ref_cmp(const void *a, const void *b)
{
    const struct ev_ref *x = a, *y = b;

    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int or_finish(struct replay *rp)
{
    for (size_t i = 0; i < rp->n_inv; i++) {
        struct or_invoice *iv = &rp->inv[i];
        const char *no = rp->pool.p + iv->no;
        int refund = no[0] == 'C';
        int64_t amount = 0;
        int overflow = 0;

        for (uint32_t r = iv->first; r != NO_INDEX; r = rp->orows[r].next) {
            const struct or_row *row = &rp->orows[r];
            int64_t qty = row->qty < 0 ? -row->qty : row->qty, line;

            if (refund) {
                if (row->qty != 0)
                    iv->nitems++;
            } else if (row->qty > 0 && row->price > 0) {
                iv->nitems++;
            } else {
                rp->st.not_items++;
                continue;
            }
            if (__builtin_mul_overflow(qty, row->price, &line) ||
                __builtin_add_overflow(amount, line, &amount))
                overflow = 1;
        }
        iv->amount = amount;
        if (overflow || (!refund && iv->nitems == 0) || (refund && amount < 0)) {
            rp->st.skipped_orders++;
            continue;
        }
        if (iv->nitems > SHOP_MAX_ITEMS)
            rp->st.oversized++;
        if (iv->user == NONE && (iv->user = pool_printf(&rp->pool, "guest-%s",
                                                        rp->pool.p + iv->no)) == NONE)
            return -1;
        if (refund) {
            if (add_ref(rp, iv->ts, (uint32_t)i, SHOP_EV_REFUND_ISSUED) < 0)
                return -1;
        } else if (add_ref(rp, iv->ts, (uint32_t)i, SHOP_EV_ORDER_CREATED) < 0 ||
                   add_ref(rp, iv->ts, (uint32_t)i, SHOP_EV_ORDER_PAID) < 0) {
            return -1;
        }
    }
    return 0;
}

static int ol_finish(struct replay *rp, char *err, size_t errsz)
{
    if (rp->n_order_files == 0) {
        snprintf(err, errsz, "olist needs an orders file (with order_id, customer_id, "
                             "order_status and the order_* timestamps)");
        return -1;
    }
    for (size_t i = 0; i < rp->n_pays; i++) {
        const struct ol_pay *p = &rp->pays[i];
        const char *id = rp->pool.p + p->order;
        uint32_t oi = strmap_get(&rp->order_map, &rp->pool, id, strlen(id));
        struct ol_order *o;

        if (oi == NO_INDEX) {
            rp->st.unmatched++;
            continue;
        }
        o = &rp->orders[oi];
        if (o->npay == 0 || p->seq < o->min_seq) {
            o->min_seq = p->seq;
            o->pay_type = p->type;
        }
        o->npay++;
        if (__builtin_add_overflow(o->pay_sum, p->value, &o->pay_sum))
            o->overflow = 1;
    }
    for (size_t i = 0; i < rp->n_items; i++) {
        struct ol_item *it = &rp->items[i];
        const char *id = rp->pool.p + it->order;
        uint32_t oi = strmap_get(&rp->order_map, &rp->pool, id, strlen(id));
        struct ol_order *o;

        if (oi == NO_INDEX) {
            rp->st.unmatched++;
            continue;
        }
        o = &rp->orders[oi];
        if (o->first_item == NO_INDEX)
            o->first_item = (uint32_t)i;
        else
            rp->items[o->last_item].next = (uint32_t)i;
        o->last_item = (uint32_t)i;
        o->nitems++;
        if (__builtin_add_overflow(o->item_sum, it->price + it->freight, &o->item_sum))
            o->overflow = 1;
    }
    for (size_t i = 0; i < rp->n_orders; i++) {
        struct ol_order *o = &rp->orders[i];
        static const enum shop_event_type step[4] = {
            SHOP_EV_ORDER_CREATED, SHOP_EV_ORDER_PAID, SHOP_EV_ORDER_SHIPPED,
            SHOP_EV_ORDER_DELIVERED};
        int64_t last = -1;

        o->amount = o->npay > 0 ? o->pay_sum : o->item_sum;
        if (o->overflow) {
            rp->st.skipped_orders++;
            continue;
        }
        if (o->nitems == 0 &&
            (o->fallback = pool_printf(&rp->pool, "olist-%s", rp->pool.p + o->id)) == NONE)
            return -1;
        if (o->nitems > SHOP_MAX_ITEMS)
            rp->st.oversized++;
        for (int k = 0; k < 4; k++) {
            if (o->ts[k] < 0)
                continue;
            if (add_ref(rp, o->ts[k], (uint32_t)i, step[k]) < 0)
                return -1;
            if (o->ts[k] > last)
                last = o->ts[k];
        }
        if (o->canceled && add_ref(rp, last, (uint32_t)i, SHOP_EV_ORDER_CANCELLED) < 0)
            return -1;
    }
    return 0;
}

static int yc_finish(struct replay *rp)
{
    for (size_t i = 0; i < rp->n_clicks; i++)
        if (add_ref(rp, rp->clicks[i].ts, (uint32_t)i, SHOP_EV_PRODUCT_VIEW) < 0)
            return -1;
    return 0;
}

int replay_finish(struct replay *rp, char *err, size_t errsz)
{
    int r = 0;

    if (rp->finished)
        return 0;
    switch (rp->ds) {
    case REPLAY_ONLINE_RETAIL:
        r = or_finish(rp);
        break;
    case REPLAY_OLIST:
        if (ol_finish(rp, err, errsz) < 0)
            return -1;
        break;
    case REPLAY_YOOCHOOSE:
        r = yc_finish(rp);
        break;
    }
    if (r < 0) {
        snprintf(err, errsz, "out of memory while building the events");
        return -1;
    }
    {
        size_t most = 1;

        for (size_t i = 0; i < rp->n_inv; i++)
            if (rp->inv[i].nitems > most)
                most = rp->inv[i].nitems;
        for (size_t i = 0; i < rp->n_orders; i++)
            if (rp->orders[i].nitems > most)
                most = rp->orders[i].nitems;
        if (!(rp->ev_items = xmalloc(most * sizeof *rp->ev_items))) {
            snprintf(err, errsz, "out of memory while building the events");
            return -1;
        }
    }
    if (rp->n_refs > 1)
        qsort(rp->refs, rp->n_refs, sizeof *rp->refs, ref_cmp);
    for (size_t i = 0; i < rp->n_refs; i++)
        rp->st.events[rp->refs[i].type]++;
    rp->st.events_total = (long long)rp->n_refs;
    rp->finished = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Making events                                                       */

static struct shop_str pstr(const struct replay *rp, size_t off)
{
    struct shop_str s = {NULL, 0};

    if (off != NONE) {
        s.p = rp->pool.p + off;
        s.n = strlen(s.p);
    }
    return s;
}

static struct shop_str cstr(const char *s)
{
    struct shop_str v = {s, strlen(s)};

    return v;
}

/* Points the event's items at the buffer sized by replay_finish. */
static void ev_items(struct replay *rp)
{
    rp->ev.items = rp->ev_items;
    rp->ev.nitems = 0;
}

static void set_id(struct replay *rp, const char *prefix, const char *obj, const char *suffix)
{
    snprintf(rp->id, sizeof rp->id, "%s%s%s", prefix, obj, suffix);
    rp->ev.id.p = rp->id;
    rp->ev.id.n = strlen(rp->id);
}

static void or_event(struct replay *rp, const struct ev_ref *ref)
{
    const struct or_invoice *iv = &rp->inv[ref->obj];
    struct shop_event *ev = &rp->ev;
    const char *no = rp->pool.p + iv->no;

    ev->order_id = pstr(rp, iv->no);
    ev->user_id = pstr(rp, iv->user);
    ev->amount = iv->amount;
    ev->currency = cstr("GBP");
    switch (ref->type) {
    case SHOP_EV_ORDER_CREATED:
        set_id(rp, "or-", no, "-created");
        ev_items(rp);
        for (uint32_t r = iv->first; r != NO_INDEX; r = rp->orows[r].next) {
            const struct or_row *row = &rp->orows[r];

            if (row->qty > 0 && row->price > 0) {
                struct shop_item *it = &ev->items[ev->nitems++];

                it->product_id = pstr(rp, row->stock);
                it->qty = row->qty;
                it->price = row->price;
            }
        }
        break;
    case SHOP_EV_ORDER_PAID:
        set_id(rp, "or-", no, "-paid");
        ev->payment_method = cstr("unknown");
        break;
    default: /* SHOP_EV_REFUND_ISSUED */
        set_id(rp, "or-", no, "-refund");
        ev->return_id = pstr(rp, iv->no);
        ev->reason = cstr("cancelled invoice");
        ev_items(rp);
        for (uint32_t r = iv->first; r != NO_INDEX; r = rp->orows[r].next) {
            const struct or_row *row = &rp->orows[r];

            if (row->qty != 0) {
                struct shop_item *it = &ev->items[ev->nitems++];

                it->product_id = pstr(rp, row->stock);
                it->qty = row->qty < 0 ? -row->qty : row->qty;
                it->price = -1;
            }
        }
        break;
    }
}

static void ol_event(struct replay *rp, const struct ev_ref *ref)
{
    const struct ol_order *o = &rp->orders[ref->obj];
    struct shop_event *ev = &rp->ev;
    const char *id = rp->pool.p + o->id;

    ev->order_id = pstr(rp, o->id);
    ev->user_id = pstr(rp, o->customer);
    switch (ref->type) {
    case SHOP_EV_ORDER_CREATED:
        set_id(rp, "ol-", id, "-created");
        ev->amount = o->amount;
        ev->currency = cstr("BRL");
        ev_items(rp);
        if (o->nitems == 0) {
            ev->items[0].product_id = pstr(rp, o->fallback);
            ev->items[0].qty = 1;
            ev->items[0].price = o->amount;
            ev->nitems = 1;
        }
        for (uint32_t i = o->first_item; i != NO_INDEX; i = rp->items[i].next) {
            struct shop_item *it = &ev->items[ev->nitems++];

            it->product_id = pstr(rp, rp->items[i].product);
            it->qty = 1;
            it->price = rp->items[i].price;
        }
        break;
    case SHOP_EV_ORDER_PAID:
        set_id(rp, "ol-", id, "-paid");
        ev->amount = o->amount;
        ev->currency = cstr("BRL");
        ev->payment_method = o->pay_type != NONE ? pstr(rp, o->pay_type) : cstr("unknown");
        break;
    case SHOP_EV_ORDER_SHIPPED:
        set_id(rp, "ol-", id, "-shipped");
        ev->carrier = cstr("olist-logistics");
        break;
    case SHOP_EV_ORDER_DELIVERED:
        set_id(rp, "ol-", id, "-delivered");
        break;
    default: /* SHOP_EV_ORDER_CANCELLED */
        set_id(rp, "ol-", id, "-cancelled");
        ev->reason = cstr("canceled");
        break;
    }
}

static void yc_event(struct replay *rp, const struct ev_ref *ref)
{
    const struct yc_click *c = &rp->clicks[ref->obj];
    struct shop_event *ev = &rp->ev;
    const char *sess = rp->pool.p + c->session;

    snprintf(rp->id, sizeof rp->id, "yc-%s-%u", sess, c->k);
    ev->id.p = rp->id;
    ev->id.n = strlen(rp->id);
    snprintf(rp->user, sizeof rp->user, "yc-%s", sess);
    ev->user_id.p = rp->user;
    ev->user_id.n = strlen(rp->user);
    ev->session_id = pstr(rp, c->session);
    ev->product_id = pstr(rp, c->item);
}

const struct shop_event *replay_next(struct replay *rp)
{
    struct shop_event *ev = &rp->ev;
    const struct ev_ref *ref;

    if (!rp->finished || rp->next_ref >= rp->n_refs)
        return NULL;
    ref = &rp->refs[rp->next_ref++];
    memset(ev, 0, sizeof *ev);
    ev->type = ref->type;
    ev->ts = ref->ts;
    ev->amount = -1;
    ev->price = -1;
    switch (rp->ds) {
    case REPLAY_ONLINE_RETAIL:
        or_event(rp, ref);
        break;
    case REPLAY_OLIST:
        ol_event(rp, ref);
        break;
    case REPLAY_YOOCHOOSE:
        yc_event(rp, ref);
        break;
    }
    return ev;
}

/* ------------------------------------------------------------------ */

struct replay *replay_new(enum replay_dataset ds)
{
    struct replay *rp = xcalloc(1, sizeof *rp);

    if (rp)
        rp->ds = ds;
    return rp;
}

void replay_free(struct replay *rp)
{
    if (!rp)
        return;
    xfree(rp->pool.p);
    xfree(rp->orows);
    xfree(rp->inv);
    strmap_free(&rp->inv_map);
    xfree(rp->orders);
    strmap_free(&rp->order_map);
    xfree(rp->pays);
    xfree(rp->items);
    xfree(rp->clicks);
    strmap_free(&rp->session_map);
    xfree(rp->refs);
    xfree(rp->ev_items);
    xfree(rp);
}

const struct replay_stats *replay_stats(const struct replay *rp)
{
    return &rp->st;
}
