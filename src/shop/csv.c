/* csv.c: the streaming CSV/TSV reader of csv.h.  Bytes come through a small
 * input buffer (or straight from memory); each record is assembled into one
 * growable buffer in which every field is NUL-terminated, so a record costs
 * no allocation once the buffers have grown to the largest record.  The
 * accepted format is described in csv.h. */
#include "shop/csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

#define CSV_IN_BYTES (64 * 1024)

/* get() results besides a byte value 0..255 */
#define CSV__EOF (-1)
#define CSV__ERR (-2)

struct csv_reader {
    csv_read_fn fn;          /* input (borrowed); NULL for a memory reader */
    void *ctx;               /* fn's context (borrowed) */
    char sep;                /* field separator */
    const char *in;          /* input bytes: inbuf, or the caller's memory */
    char *inbuf;             /* owned buffer fn reads into (NULL for memory) */
    size_t in_pos, in_len;   /* next unread byte, end of valid bytes */
    int eof;                 /* fn said there is no more input */
    int bom_checked;         /* the start of the input was looked at */
    long line;               /* physical line of the next byte (1-based) */

    char *rec;               /* owned: the current record's fields, each NUL-terminated */
    size_t rec_len, rec_cap;
    size_t *start;           /* owned: offset of field i in rec */
    size_t *lens;            /* owned: length of field i */
    char **fields;           /* owned: pointers handed out in csv_row */
    size_t fields_cap;       /* entries allocated in fields */
    size_t nf, fcap;         /* fields in the current record, capacity of the arrays */
    size_t field_start;      /* offset in rec of the field being read */

    int failed;              /* an error happened; every later call fails */
    char err[200];           /* why */
};

static int fail(struct csv_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct csv_reader *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->failed) {
        va_start(ap, fmt);
        vsnprintf(r->err, sizeof r->err, fmt, ap);
        va_end(ap);
        r->failed = 1;
    }
    return -1;
}

static struct csv_reader *reader_new(char sep)
{
    struct csv_reader *r = xcalloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->sep = sep;
    r->line = 1;
    return r;
}

struct csv_reader *csv_open(csv_read_fn fn, void *ctx, char sep)
{
    struct csv_reader *r = reader_new(sep);

    if (!r)
        return NULL;
    r->fn = fn;
    r->ctx = ctx;
    if (!(r->inbuf = xmalloc(CSV_IN_BYTES))) {
        xfree(r);
        return NULL;
    }
    r->in = r->inbuf;
    return r;
}

struct csv_reader *csv_open_mem(const char *p, size_t n, char sep)
{
    struct csv_reader *r = reader_new(sep);

    if (!r)
        return NULL;
    r->in = p;
    r->in_len = n;
    r->eof = 1;
    return r;
}

void csv_close(struct csv_reader *r)
{
    if (!r)
        return;
    xfree(r->inbuf);
    xfree(r->rec);
    xfree(r->start);
    xfree(r->lens);
    xfree(r->fields);
    xfree(r);
}

const char *csv_error(const struct csv_reader *r)
{
    return r->failed ? r->err : "";
}

/* Reads more input after the unread bytes, which move to the front of the
 * buffer.  Returns 1 when bytes were added, 0 at the end of the input, -1 on
 * a read failure. */
static int fill(struct csv_reader *r)
{
    char why[160];
    long got;

    if (r->failed)
        return -1;
    if (r->eof)
        return 0;
    if (r->in_pos > 0) {
        memmove(r->inbuf, r->inbuf + r->in_pos, r->in_len - r->in_pos);
        r->in_len -= r->in_pos;
        r->in_pos = 0;
    }
    if (r->in_len == CSV_IN_BYTES)
        return 1; /* full already (only while peeking at the start) */
    why[0] = '\0';
    got = r->fn(r->ctx, r->inbuf + r->in_len, CSV_IN_BYTES - r->in_len, why, sizeof why);
    if (got < 0)
        return fail(r, "line %ld: %s", r->line, why[0] ? why : "read failed");
    if (got == 0) {
        r->eof = 1;
        return 0;
    }
    r->in_len += (size_t)got;
    return 1;
}

static inline int get(struct csv_reader *r)
{
    int f;

    if (r->in_pos < r->in_len)
        return (unsigned char)r->in[r->in_pos++];
    f = fill(r);
    if (f < 0)
        return CSV__ERR;
    if (f == 0)
        return CSV__EOF;
    return (unsigned char)r->in[r->in_pos++];
}

/* The next byte without consuming it, or CSV__EOF / CSV__ERR. */
static int peek(struct csv_reader *r)
{
    int c = get(r);

    if (c >= 0)
        r->in_pos--;
    return c;
}

static int rec_grow(struct csv_reader *r, size_t need)
{
    size_t cap = r->rec_cap ? r->rec_cap : 256;
    char *p;

    while (cap < need)
        cap *= 2;
    if (!(p = xrealloc(r->rec, cap)))
        return fail(r, "line %ld: out of memory", r->line);
    r->rec = p;
    r->rec_cap = cap;
    return 0;
}

static inline int append(struct csv_reader *r, int c)
{
    if (r->rec_len - r->field_start >= CSV_MAX_FIELD_BYTES)
        return fail(r, "line %ld: field %zu is longer than %d bytes", r->line, r->nf,
                    CSV_MAX_FIELD_BYTES);
    if (r->rec_len >= CSV_MAX_RECORD_BYTES)
        return fail(r, "line %ld: record is longer than %d bytes", r->line,
                    CSV_MAX_RECORD_BYTES);
    /* one byte for the field and one for a NUL that may follow */
    if (r->rec_len + 2 > r->rec_cap && rec_grow(r, r->rec_len + 2) < 0)
        return -1;
    r->rec[r->rec_len++] = (char)c;
    return 0;
}

static int field_begin(struct csv_reader *r)
{
    if (r->nf >= CSV_MAX_FIELDS)
        return fail(r, "line %ld: more than %d fields", r->line, CSV_MAX_FIELDS);
    if (r->nf == r->fcap) {
        size_t cap = r->fcap ? r->fcap * 2 : 16;
        size_t *s = xrealloc(r->start, cap * sizeof *s);

        if (!s)
            return fail(r, "line %ld: out of memory", r->line);
        r->start = s;
        if (!(s = xrealloc(r->lens, cap * sizeof *s)))
            return fail(r, "line %ld: out of memory", r->line);
        r->lens = s;
        r->fcap = cap;
    }
    r->field_start = r->rec_len;
    r->start[r->nf++] = r->rec_len;
    return 0;
}

static int field_end(struct csv_reader *r)
{
    if (r->rec_len + 1 > r->rec_cap && rec_grow(r, r->rec_len + 1) < 0)
        return -1;
    r->lens[r->nf - 1] = r->rec_len - r->field_start;
    r->rec[r->rec_len++] = '\0';
    return 0;
}

/* Consumes the line ending that starts with c ('\n' or '\r'). */
static int line_end(struct csv_reader *r, int c)
{
    if (c == '\r') {
        int n = peek(r);

        if (n == CSV__ERR)
            return -1;
        if (n == '\n')
            r->in_pos++;
    }
    r->line++;
    return 0;
}

static int skip_bom(struct csv_reader *r)
{
    r->bom_checked = 1;
    while (r->in_len - r->in_pos < 3 && !r->eof)
        if (fill(r) < 0)
            return -1;
    if (r->in_len - r->in_pos >= 3 && !memcmp(r->in + r->in_pos, "\xEF\xBB\xBF", 3))
        r->in_pos += 3;
    return 0;
}

/* Reads one quoted field whose opening quote was consumed.  Returns the byte
 * after the closing quote (or CSV__EOF), or CSV__ERR. */
static int read_quoted(struct csv_reader *r)
{
    long opened = r->line;

    for (;;) {
        int c = get(r);

        if (c == CSV__ERR)
            return CSV__ERR;
        if (c == CSV__EOF) {
            fail(r, "line %ld: unterminated quoted field (opened on line %ld)", r->line, opened);
            return CSV__ERR;
        }
        if (c == '"') {
            c = get(r);
            if (c != '"')
                return c;
        } else if (c == '\0') {
            fail(r, "line %ld: NUL byte in the input (is this a text file?)", r->line);
            return CSV__ERR;
        } else if (c == '\n' || (c == '\r' && peek(r) != '\n')) {
            r->line++;
        }
        if (append(r, c) < 0)
            return CSV__ERR;
    }
}

int csv_next(struct csv_reader *r, struct csv_row *row)
{
    int c;

    if (r->failed)
        return -1;
    if (!r->bom_checked && skip_bom(r) < 0)
        return -1;

    /* Skip empty lines; stop at the first byte of a record. */
    for (;;) {
        c = get(r);
        if (c == CSV__ERR)
            return -1;
        if (c == CSV__EOF)
            return 0;
        if (c != '\n' && c != '\r')
            break;
        if (line_end(r, c) < 0)
            return -1;
    }

    row->line = r->line;
    r->rec_len = 0;
    r->nf = 0;
    for (;;) {
        /* c is the first byte of a field (or what ends the record) */
        if (field_begin(r) < 0)
            return -1;
        if (c == '"') {
            c = read_quoted(r);
            if (c == CSV__ERR)
                return -1;
            if (c != r->sep && c != '\n' && c != '\r' && c != CSV__EOF)
                return fail(r, "line %ld: unexpected character after the closing quote of field %zu",
                            r->line, r->nf);
        } else {
            while (c != r->sep && c != '\n' && c != '\r' && c >= 0) {
                if (c == '\0')
                    return fail(r, "line %ld: NUL byte in the input (is this a text file?)",
                                r->line);
                if (append(r, c) < 0)
                    return -1;
                c = get(r);
            }
            if (c == CSV__ERR)
                return -1;
        }
        if (field_end(r) < 0)
            return -1;
        if (c != r->sep)
            break;
        c = get(r);
        if (c == CSV__ERR)
            return -1;
    }
    if (c != CSV__EOF && line_end(r, c) < 0)
        return -1;

    if (r->fields_cap < r->fcap) {
        char **f = xrealloc(r->fields, r->fcap * sizeof *f);

        if (!f)
            return fail(r, "line %ld: out of memory", row->line);
        r->fields = f;
        r->fields_cap = r->fcap;
    }
    for (size_t i = 0; i < r->nf; i++)
        r->fields[i] = r->rec + r->start[i];
    row->n = r->nf;
    row->field = r->fields;
    row->len = r->lens;
    return 1;
}
