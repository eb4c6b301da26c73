/* json.c: the strict JSON pull parser and the JSON writer of json.h.
 *
 * Reader: a small state machine (one state per "what may come next") over a
 * stack of open containers.  Strings are unescaped into the caller's scratch
 * buffer one after another, never over each other: the escaped form of a
 * string (quotes included) is always at least one byte longer than its
 * unescaped form plus its NUL, so all strings of a document fit in len + 1
 * bytes, and every string stays valid as long as the scratch buffer does.
 * event.c relies on that to keep views into one buffer without copying.
 * Numbers are views into the input.  Grammar and UTF-8 rules: RFC 8259 and
 * RFC 3629 (overlongs, UTF-16 surrogates and code points past U+10FFFF are
 * refused).
 *
 * Writer: appends to a jbuf with commas inserted from a per-level bit, and
 * escapes exactly what RFC 8259 requires plus the usual short forms. */
#include "shop/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* What json_next may see next (struct json_reader.state). */
enum {
    ST_VALUE = 0, /* the top-level value */
    ST_OBJ_FIRST, /* just after '{': a key or '}' */
    ST_OBJ_NEXT,  /* after a member: ',' or '}' */
    ST_ARR_FIRST, /* just after '[': a value or ']' */
    ST_ARR_NEXT,  /* after an element: ',' or ']' */
    ST_DONE,      /* the top-level value is complete: only whitespace may follow */
    ST_EOF,       /* json_next returned 0 */
};

/* Byte classes inside a string: 0 = copied as is; the others stop the fast
 * copy loop. */
enum { SC_PLAIN = 0, SC_QUOTE, SC_BSLASH, SC_CTRL, SC_HIGH };

static const unsigned char str_class[256] = {
    /* 0x00-0x1f: control characters must be escaped */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    ['"'] = SC_QUOTE,
    ['\\'] = SC_BSLASH,
    /* 0x80-0xff: UTF-8 sequences are checked one by one */
    [0x80] = 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Nonzero when some byte of the 8 in x is '"', '\\', < 0x20 or >= 0x80: the
 * classic "has a zero byte" trick applied to x ^ c and to x - 0x20.  It may
 * only err towards "yes" for bytes after the first hit, which the byte loop
 * then handles. */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"');
    uint64_t b = x ^ (ONES * '\\');
    uint64_t t = ((q - ONES) & ~q) | ((b - ONES) & ~b) | (x - ONES * 0x20) | x;
    return t & HIGHS;
}

static int fail(struct json_reader *r, const char *at, const char *msg)
{
    if (!r->failed) {
        r->failed = 1;
        r->err_off = (size_t)(at - r->start);
        snprintf(r->err, sizeof r->err, "%s", msg);
    }
    r->state = ST_EOF;
    return -1;
}

/* "expected X, found Y" where Y names the byte at `at`. */
static int fail_expect(struct json_reader *r, const char *at, const char *what)
{
    char msg[sizeof r->err];
    if (at >= r->end)
        snprintf(msg, sizeof msg, "expected %s, found end of input", what);
    else if ((unsigned char)*at >= 0x21 && (unsigned char)*at < 0x7f)
        snprintf(msg, sizeof msg, "expected %s, found '%c'", what, *at);
    else
        snprintf(msg, sizeof msg, "expected %s, found byte 0x%02x", what, (unsigned char)*at);
    return fail(r, at, msg);
}

void json_reader_init(struct json_reader *r, const char *doc, size_t len, char *scratch,
                      size_t scratch_cap)
{
    r->p = r->start = doc;
    r->end = doc + len;
    r->scratch = scratch;
    r->scratch_cap = scratch_cap;
    r->scratch_used = 0;
    r->depth = 0;
    r->state = ST_VALUE;
    r->err[0] = 0;
    r->err_off = 0;
    r->failed = 0;
    /* The bound of the file comment is what keeps unescaping inside scratch,
     * so a smaller buffer is refused up front rather than checked per byte. */
    if (!scratch || scratch_cap < len + 1 || (len && !doc))
        fail(r, doc, "scratch buffer smaller than the document");
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static inline char *put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xc0 | cp >> 6);
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xe0 | cp >> 12);
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (char)(0xf0 | cp >> 18);
        *d++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *d++ = (char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* Length of the well-formed UTF-8 sequence at s (lead byte >= 0x80), or 0.
 * The second-byte ranges of RFC 3629 are what exclude overlongs (C0, C1,
 * E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and > U+10FFFF (F4 90+, F5+). */
static int utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    int n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (end - s < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Unescapes the string whose opening quote is at p into scratch.  Returns
 * the byte after the closing quote, or NULL (r failed). */
static const char *parse_string(struct json_reader *r, const char *p, const char **out,
                                size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)p + 1;
    const unsigned char *end = (const unsigned char *)r->end;
    char *d0 = r->scratch + r->scratch_used, *d = d0;
    for (;;) {
        /* Eight plain bytes at a time: d never passes s in scratch (see the
         * file comment), so an 8-byte store is in bounds when the load is. */
        while (end - s >= 8) {
            uint64_t x;
            memcpy(&x, s, 8);
            if (swar_special(x))
                break;
            memcpy(d, &x, 8);
            s += 8;
            d += 8;
        }
        while (s < end && str_class[*s] == SC_PLAIN)
            *d++ = (char)*s++;
        if (s >= end)
            return fail(r, p, "unterminated string"), NULL;
        switch (str_class[*s]) {
        case SC_PLAIN:
            break;
        case SC_QUOTE:
            *d = 0;
            *out = d0;
            *out_len = (size_t)(d - d0);
            r->scratch_used += (size_t)(d - d0) + 1;
            return (const char *)s + 1;
        case SC_CTRL:
            return fail(r, (const char *)s, "control character in string (must be escaped)"), NULL;
        case SC_HIGH: {
            int n = utf8_seq(s, end);
            if (!n)
                return fail(r, (const char *)s, "invalid UTF-8 in string"), NULL;
            memcpy(d, s, (size_t)n);
            d += n;
            s += n;
            break;
        }
        case SC_BSLASH: {
            const unsigned char *esc = s;
            if (end - s < 2)
                return fail(r, p, "unterminated string"), NULL;
            switch (s[1]) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (end - s < 6 || hex4(s + 2, &cp) < 0)
                    return fail(r, (const char *)esc, "invalid \\u escape (need 4 hex digits)"), NULL;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail(r, (const char *)esc, "lone low surrogate in \\u escape"), NULL;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    /* A high surrogate counts only with a low one right after. */
                    if (end - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) < 0 ||
                        lo < 0xdc00 || lo > 0xdfff)
                        return fail(r, (const char *)esc, "high surrogate not followed by a low surrogate"),
                               NULL;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    s += 6;
                }
                d = put_utf8(d, cp);
                s += 4;
                break;
            }
            default:
                return fail(r, (const char *)esc, "invalid escape in string"), NULL;
            }
            s += 2;
            break;
        }
        }
    }
}

/* Reads a number at p into t.  Returns the byte after it, or NULL. */
static const char *parse_number(struct json_reader *r, const char *p, struct json_token *t)
{
    const char *q = p, *end = r->end;
    int neg = 0, is_int = 1, overflow = 0;
    uint64_t v = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    if (q >= end || (unsigned)(*q - '0') > 9)
        return fail_expect(r, q, "a digit"), NULL;
    if (*q == '0') {
        q++;
        if (q < end && (unsigned)(*q - '0') <= 9)
            return fail(r, q - 1, "leading zero in number"), NULL;
    } else {
        while (q < end && (unsigned)(*q - '0') <= 9) {
            unsigned dgt = (unsigned)(*q - '0');
            if (v > (UINT64_MAX - dgt) / 10)
                overflow = 1;
            else
                v = v * 10 + dgt;
            q++;
        }
    }
    if (q < end && *q == '.') {
        q++;
        if (q >= end || (unsigned)(*q - '0') > 9)
            return fail_expect(r, q, "a digit after '.'"), NULL;
        while (q < end && (unsigned)(*q - '0') <= 9)
            q++;
        is_int = 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || (unsigned)(*q - '0') > 9)
            return fail_expect(r, q, "a digit in the exponent"), NULL;
        while (q < end && (unsigned)(*q - '0') <= 9)
            q++;
        is_int = 0;
    }
    t->kind = JSON_NUMBER;
    t->str = p;
    t->len = (size_t)(q - p);
    if (is_int && !overflow) {
        if (!neg && v <= (uint64_t)INT64_MAX) {
            t->is_int = 1;
            t->i = (int64_t)v;
        } else if (neg && v <= (uint64_t)INT64_MAX + 1) {
            t->is_int = 1;
            t->i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        }
    }
    return q;
}

/* The state after a complete value, from the innermost open container. */
static inline int state_after_value(const struct json_reader *r)
{
    if (r->depth == 0)
        return ST_DONE;
    return r->stack[r->depth - 1] == JSON_OBJECT ? ST_OBJ_NEXT : ST_ARR_NEXT;
}

/* Reads the value starting at p (whitespace already skipped) into t. */
static int read_value(struct json_reader *r, const char *p, struct json_token *t)
{
    const char *end = r->end;
    if (p >= end)
        return fail_expect(r, p, "a value");
    switch (*p) {
    case '{':
    case '[':
        if (r->depth >= JSON_MAX_DEPTH)
            return fail(r, p, "nesting deeper than 32 levels");
        t->kind = *p == '{' ? JSON_OBJECT : JSON_ARRAY;
        r->stack[r->depth++] = (unsigned char)t->kind;
        r->state = *p == '{' ? ST_OBJ_FIRST : ST_ARR_FIRST;
        r->p = p + 1;
        return 1;
    case '"':
        p = parse_string(r, p, &t->str, &t->len);
        if (!p)
            return -1;
        t->kind = JSON_STRING;
        break;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            return fail_expect(r, p, "a value");
        t->kind = JSON_TRUE;
        p += 4;
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            return fail_expect(r, p, "a value");
        t->kind = JSON_FALSE;
        p += 5;
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return fail_expect(r, p, "a value");
        t->kind = JSON_NULL;
        p += 4;
        break;
    default:
        if (*p != '-' && (unsigned)(*p - '0') > 9)
            return fail_expect(r, p, "a value");
        p = parse_number(r, p, t);
        if (!p)
            return -1;
        break;
    }
    r->p = p;
    r->state = state_after_value(r);
    return 1;
}

/* Reads "key": and then the member's value. */
static int read_member(struct json_reader *r, const char *p, struct json_token *t)
{
    if (p >= r->end || *p != '"')
        return fail_expect(r, p, "a string key");
    const char *key;
    size_t key_len;
    p = parse_string(r, p, &key, &key_len);
    if (!p)
        return -1;
    p = skip_ws(p, r->end);
    if (p >= r->end || *p != ':')
        return fail_expect(r, p, "':'");
    p = skip_ws(p + 1, r->end);
    int rc = read_value(r, p, t);
    t->key = key;
    t->key_len = key_len;
    return rc;
}

static int close_container(struct json_reader *r, const char *p, struct json_token *t)
{
    r->depth--;
    t->kind = JSON_END;
    r->p = p + 1;
    r->state = state_after_value(r);
    return 1;
}

int json_next(struct json_reader *r, struct json_token *t)
{
    t->kind = JSON_NONE;
    t->key = NULL;
    t->key_len = 0;
    t->str = NULL;
    t->len = 0;
    t->is_int = 0;
    t->i = 0;
    if (r->failed)
        return -1;
    const char *p = skip_ws(r->p, r->end);
    switch (r->state) {
    case ST_VALUE:
        return read_value(r, p, t);
    case ST_OBJ_FIRST:
        if (p < r->end && *p == '}')
            return close_container(r, p, t);
        return read_member(r, p, t);
    case ST_OBJ_NEXT:
        if (p < r->end && *p == '}')
            return close_container(r, p, t);
        if (p >= r->end || *p != ',')
            return fail_expect(r, p, "',' or '}'");
        p = skip_ws(p + 1, r->end);
        if (p < r->end && *p == '}')
            return fail(r, p, "trailing comma before '}'");
        return read_member(r, p, t);
    case ST_ARR_FIRST:
        if (p < r->end && *p == ']')
            return close_container(r, p, t);
        return read_value(r, p, t);
    case ST_ARR_NEXT:
        if (p < r->end && *p == ']')
            return close_container(r, p, t);
        if (p >= r->end || *p != ',')
            return fail_expect(r, p, "',' or ']'");
        p = skip_ws(p + 1, r->end);
        if (p < r->end && *p == ']')
            return fail(r, p, "trailing comma before ']'");
        return read_value(r, p, t);
    case ST_DONE:
        if (p < r->end)
            return fail_expect(r, p, "end of input after the document");
        r->p = p;
        r->state = ST_EOF;
        return 0;
    default:
        return 0;
    }
}

int json_skip(struct json_reader *r, const struct json_token *t)
{
    if (r->failed)
        return -1;
    if (t->kind != JSON_OBJECT && t->kind != JSON_ARRAY)
        return 0;
    struct json_token u;
    int open = 1;
    while (open > 0) {
        if (json_next(r, &u) != 1)
            return -1; /* json_next returns 0 only with no container open */
        if (u.kind == JSON_OBJECT || u.kind == JSON_ARRAY)
            open++;
        else if (u.kind == JSON_END)
            open--;
    }
    return 0;
}

/* ---- writer ---- */

void jbuf_init(struct jbuf *b)
{
    memset(b, 0, sizeof *b);
}

void jbuf_free(struct jbuf *b)
{
    xfree(b->p);
    memset(b, 0, sizeof *b);
}

void jbuf_reset(struct jbuf *b)
{
    b->len = 0;
    b->oom = 0;
    b->depth = 0;
    b->wrote = 0;
    if (b->p)
        b->p[0] = 0;
}

/* Makes room for n more bytes plus the NUL kept after the text.  Returns the
 * write position, or NULL (oom set). */
static char *reserve(struct jbuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->cap - b->len < n + 1) {
        if (n > SIZE_MAX / 4 - b->len) {
            b->oom = 1;
            return NULL;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *np = xrealloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    return b->p + b->len;
}

void jbuf_raw(struct jbuf *b, const char *s, size_t n)
{
    char *d = reserve(b, n);
    if (!d)
        return;
    if (n)
        memcpy(d, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static const char hexd[] = "0123456789abcdef";

/* Bytes each input byte takes in a JSON string: 1, 2 for the short escapes
 * (\" \\ \b \f \n \r \t), 6 for the other control characters (\u00XX). */
static const unsigned char esc_len[256] = {
    6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, /* 0x08-0x0a, 0x0c, 0x0d: short */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x5c '\\' */
    [0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Appends s[0..n) as a quoted JSON string.  A first pass sizes the output
 * exactly (so a 1 MB string does not reserve 6 MB); then runs of bytes that
 * need no escape are copied with one memcpy.  Bytes >= 0x80 are copied as
 * they are: the writer trusts its input to be UTF-8. */
static void put_string(struct jbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t need = 2;
    for (size_t i = 0; i < n; i++)
        need += esc_len[u[i]];
    char *d = reserve(b, need);
    if (!d)
        return;
    *d++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && esc_len[u[j]] == 1)
            j++;
        memcpy(d, s + i, j - i);
        d += j - i;
        if (j == n)
            break;
        unsigned char c = u[j];
        *d++ = '\\';
        switch (c) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\n': *d++ = 'n'; break;
        case '\t': *d++ = 't'; break;
        case '\r': *d++ = 'r'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hexd[c >> 4];
            *d++ = hexd[c & 15];
            break;
        }
        i = j + 1;
    }
    *d++ = '"';
    b->len += need;
    b->p[b->len] = 0;
}

/* The comma (inside a container that already holds a value) and the key of
 * the value about to be written.  Top-level values are separate documents,
 * so they never get a comma. */
static void prefix(struct jbuf *b, const char *key)
{
    if (b->oom)
        return;
    if (b->depth > 0) {
        uint64_t bit = 1ull << b->depth;
        if (b->wrote & bit)
            jbuf_raw(b, ",", 1);
        b->wrote |= bit;
    }
    if (key) {
        put_string(b, key, strlen(key));
        jbuf_raw(b, ":", 1);
    }
}

static void open_container(struct jbuf *b, const char *key, char c)
{
    prefix(b, key);
    if (b->depth >= 63) { /* the comma bits are one uint64_t */
        b->oom = 1;
        return;
    }
    jbuf_raw(b, &c, 1);
    b->depth++;
    b->wrote &= ~(1ull << b->depth);
}

static void close_container_w(struct jbuf *b, char c)
{
    if (b->depth <= 0) {
        b->oom = 1; /* unbalanced: the output could not be valid JSON */
        return;
    }
    jbuf_raw(b, &c, 1);
    b->depth--;
}

void json_w_obj_begin(struct jbuf *b, const char *key)
{
    open_container(b, key, '{');
}

void json_w_obj_end(struct jbuf *b)
{
    close_container_w(b, '}');
}

void json_w_arr_begin(struct jbuf *b, const char *key)
{
    open_container(b, key, '[');
}

void json_w_arr_end(struct jbuf *b)
{
    close_container_w(b, ']');
}

void json_w_str(struct jbuf *b, const char *key, const char *s, size_t n)
{
    prefix(b, key);
    put_string(b, s, n);
}

void json_w_cstr(struct jbuf *b, const char *key, const char *s)
{
    if (!s) {
        json_w_null(b, key);
        return;
    }
    json_w_str(b, key, s, strlen(s));
}

void json_w_int(struct jbuf *b, const char *key, int64_t v)
{
    prefix(b, key);
    char tmp[24], *e = tmp + sizeof tmp, *q = e;
    /* Negating in uint64_t keeps INT64_MIN defined. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    jbuf_raw(b, q, (size_t)(e - q));
}

void json_w_double(struct jbuf *b, const char *key, double v)
{
    prefix(b, key);
    if (!isfinite(v)) {
        jbuf_raw(b, "null", 4);
        return;
    }
    /* The shortest of 15, 16 or 17 significant digits that reads back as
     * the same double: 0.1 stays "0.1" rather than 0.10000000000000001. */
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* A locale with a decimal comma would make this invalid JSON. */
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.';
    jbuf_raw(b, tmp, (size_t)n);
}

void json_w_bool(struct jbuf *b, const char *key, int v)
{
    prefix(b, key);
    if (v)
        jbuf_raw(b, "true", 4);
    else
        jbuf_raw(b, "false", 5);
}

void json_w_null(struct jbuf *b, const char *key)
{
    prefix(b, key);
    jbuf_raw(b, "null", 4);
}

void json_w_raw(struct jbuf *b, const char *key, const char *s, size_t n)
{
    prefix(b, key);
    jbuf_raw(b, s, n);
}
