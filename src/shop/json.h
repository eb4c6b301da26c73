/* json.h: a small strict JSON reader and a JSON writer, sized for the events
 * of DESIGN.md ("Event contract") and the result records of the processors.
 *
 * Reader: a pull parser over one complete document held in memory (RFC 8259:
 * objects, arrays, strings with every escape including surrogate pairs,
 * numbers, true, false, null; UTF-8 is checked: no overlongs, no encoded
 * surrogates, nothing past U+10FFFF, no lone \u surrogates).  It never
 * allocates: string values and member names are unescaped into a
 * caller-provided scratch buffer, one after another, never over each other.
 * Nesting is limited to JSON_MAX_DEPTH.  Errors carry the byte offset and a
 * short reason ("expected ':', found 'x'", "leading zero in number", ...).
 *
 * Writer: appends to a growable buffer (struct jbuf) with escaping; keys and
 * values are written in the order the caller gives, so output is
 * deterministic (the processors compare results byte for byte).  Top-level
 * values are separate documents: no comma is put between them, so records can
 * be appended one per line.
 *
 * Leaf module apart from common/alloc.h. */
#ifndef SHOPSTREAM_JSON_H
#define SHOPSTREAM_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

enum json_kind {
    JSON_NONE = 0,  /* no token (end of document, or an error) */
    JSON_OBJECT,    /* '{' seen; members follow until JSON_END */
    JSON_ARRAY,     /* '[' seen; elements follow until JSON_END */
    JSON_END,       /* the '}' or ']' closing the innermost container */
    JSON_STRING,    /* str/len hold the unescaped text (NUL-terminated; may hold NULs from \u0000) */
    JSON_NUMBER,    /* str/len hold the literal text (a view of the input, not
                       NUL-terminated); is_int, i set for an int64 integer literal */
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
};

/* One token.  key and a JSON_STRING's str are views into the scratch buffer;
 * because strings are laid out one after another there, they stay valid (and
 * unchanged) for as long as the scratch buffer does, not only until the next
 * json_next call; event.c relies on that.  A JSON_NUMBER's str is a view into
 * the input. */
struct json_token {
    enum json_kind kind;
    const char *key;    /* member name when the token is an object member, else NULL */
    size_t key_len;
    const char *str;    /* JSON_STRING: unescaped value; JSON_NUMBER: literal */
    size_t len;
    int is_int;         /* JSON_NUMBER: an integer literal that fits int64 */
    int64_t i;          /* JSON_NUMBER with is_int: its value */
};

struct json_reader {
    const char *p, *start, *end;   /* input (borrowed) */
    char *scratch;                 /* unescape area (borrowed) */
    size_t scratch_cap, scratch_used;
    int depth;
    unsigned char stack[JSON_MAX_DEPTH]; /* container kinds, innermost last */
    int state;                     /* internal: what may come next */
    char err[96];                  /* reason of the first error */
    size_t err_off;                /* byte offset of the first error */
    int failed;
};

/* Starts reading doc[0..len).  scratch must hold at least len + 1 bytes
 * (all the unescaped strings of a document, each with its NUL, always fit:
 * a string's escaped form with its quotes is longer than its unescaped form
 * with a NUL); both are borrowed for the reader's lifetime.  With a smaller
 * scratch the first json_next fails ("scratch buffer smaller than the
 * document"). */
void json_reader_init(struct json_reader *r, const char *doc, size_t len, char *scratch,
                      size_t scratch_cap);

/* Reads the next token into *t.  Returns 1 with a token, 0 at the end of a
 * well-formed document (trailing whitespace only), or -1 on malformed input
 * (r->err and r->err_off say why and where; every later call returns -1). */
int json_next(struct json_reader *r, struct json_token *t);

/* Skips the value whose first token is *t (for a container: through its
 * matching JSON_END).  Returns 0, or -1 on malformed input. */
int json_skip(struct json_reader *r, const struct json_token *t);

/* A growable output buffer.  p is owned (xfree through jbuf_free).  After
 * any append that succeeded, p[len] is 0, so p can be used as a C string. */
struct jbuf {
    char *p;
    size_t len, cap;
    int oom;            /* set when an allocation failed (also on an unbalanced
                           end or nesting past 63 levels); later appends do nothing */
    int depth;          /* internal: open containers */
    uint64_t wrote;     /* internal: bit d set when level d holds a value (comma needed) */
};

void jbuf_init(struct jbuf *b);
void jbuf_free(struct jbuf *b);
void jbuf_reset(struct jbuf *b);                 /* len = 0, clears oom and nesting, keeps the memory */
void jbuf_raw(struct jbuf *b, const char *s, size_t n);   /* no escaping */

/* Structural writers.  A key argument may be NULL inside arrays and at the top
 * level; inside objects it is the member name (escaped like any string).
 * Commas are inserted.  Strings are escaped as RFC 8259 requires: '"', '\\'
 * and control characters (\n \t \r \b \f, others \u00XX); other bytes are
 * copied, so the caller passes UTF-8. */
void json_w_obj_begin(struct jbuf *b, const char *key);
void json_w_obj_end(struct jbuf *b);
void json_w_arr_begin(struct jbuf *b, const char *key);
void json_w_arr_end(struct jbuf *b);
void json_w_str(struct jbuf *b, const char *key, const char *s, size_t n);
void json_w_cstr(struct jbuf *b, const char *key, const char *s); /* s NULL: null */
void json_w_int(struct jbuf *b, const char *key, int64_t v);
/* The shortest of %.15g, %.16g, %.17g that reads back as v; null for NaN
 * and infinities, which JSON cannot express. */
void json_w_double(struct jbuf *b, const char *key, double v);
void json_w_bool(struct jbuf *b, const char *key, int v);
void json_w_null(struct jbuf *b, const char *key);
/* A value that is already JSON (s[0..n), borrowed), copied as it is: the
 * caller vouches that it is one well-formed value. */
void json_w_raw(struct jbuf *b, const char *key, const char *s, size_t n);

#endif
