/* test_json.c: the strict JSON reader and the writer (shop/json.c): every
 * token kind and escape, surrogate pairs, UTF-8 checks, each way a document
 * can be malformed (table-driven, with the expected reason), int64 limits,
 * nesting depth, writer escaping and round trips, and allocation failure.
 * Every input is copied into an exactly-sized heap block so that ASan
 * reports any read past its end. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/json.h"
#include "test.h"

/* A document in its own exactly-sized block, and a scratch of len + 1. */
struct doc {
    char *p;
    size_t n;
    char *scratch;
    struct json_reader r;
};

static void doc_open(struct doc *d, const char *s, size_t n)
{
    d->p = malloc(n ? n : 1);
    CHECK(d->p);
    memcpy(d->p, s, n);
    d->n = n;
    d->scratch = malloc(n + 1);
    CHECK(d->scratch);
    json_reader_init(&d->r, d->p, n, d->scratch, n + 1);
}

static void doc_close(struct doc *d)
{
    free(d->p);
    free(d->scratch);
}

/* Reads the whole document; returns json_next's final result. */
static int read_all(struct json_reader *r)
{
    struct json_token t;
    int rc;
    while ((rc = json_next(r, &t)) == 1)
        ;
    return rc;
}

static int str_is(const struct json_token *t, const char *s, size_t n)
{
    return t->len == n && memcmp(t->str, s, n) == 0 && t->str[n] == 0;
}

static int key_is(const struct json_token *t, const char *k)
{
    return t->key && t->key_len == strlen(k) && memcmp(t->key, k, t->key_len) == 0 &&
           t->key[t->key_len] == 0;
}

TEST(json_every_token_kind)
{
    const char *s = " {\"a\" : 1 ,\"b\":[true,false,null,\"s\",-2.5e3,{}],\"c\":{\"d\":[]}}\n\t\r ";
    struct doc d;
    doc_open(&d, s, strlen(s));
    struct json_token t;
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_OBJECT);
    CHECK(t.key == NULL);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_NUMBER);
    CHECK(key_is(&t, "a"));
    CHECK(t.is_int);
    CHECK_EQ(t.i, 1);
    CHECK_EQ(t.len, 1);
    CHECK(t.str[0] == '1');
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_ARRAY);
    CHECK(key_is(&t, "b"));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_TRUE);
    CHECK(t.key == NULL);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_FALSE);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_NULL);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_STRING);
    CHECK(str_is(&t, "s", 1));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_NUMBER);
    CHECK(!t.is_int);
    CHECK(t.len == 6 && memcmp(t.str, "-2.5e3", 6) == 0);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_OBJECT);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_END);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_END); /* the array */
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_OBJECT);
    CHECK(key_is(&t, "c"));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_ARRAY);
    CHECK(key_is(&t, "d"));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_END);
    CHECK(t.key == NULL);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_END);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_END);
    CHECK_EQ(json_next(&d.r, &t), 0);
    CHECK_EQ(t.kind, JSON_NONE);
    CHECK_EQ(json_next(&d.r, &t), 0); /* stays at the end */
    CHECK(!d.r.failed);
    doc_close(&d);
}

TEST(json_top_level_scalars)
{
    static const struct {
        const char *s;
        enum json_kind kind;
    } cases[] = {
        {"true", JSON_TRUE}, {" false ", JSON_FALSE}, {"null", JSON_NULL},
        {"\"x\"", JSON_STRING}, {"0", JSON_NUMBER}, {"-0.0e-0", JSON_NUMBER},
        {"[]", JSON_ARRAY}, {"{}", JSON_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct doc d;
        doc_open(&d, cases[i].s, strlen(cases[i].s));
        struct json_token t;
        CHECK_EQ(json_next(&d.r, &t), 1);
        CHECK_EQ(t.kind, cases[i].kind);
        CHECK_EQ(read_all(&d.r), 0);
        doc_close(&d);
    }
}

/* The single string of s[0..n), unescaped. */
static void check_string(const char *s, size_t n, const char *want, size_t want_n)
{
    struct doc d;
    doc_open(&d, s, n);
    struct json_token t;
    int rc = json_next(&d.r, &t);
    if (rc != 1)
        fprintf(stderr, "  input %.*s: %s at %zu\n", (int)n, s, d.r.err, d.r.err_off);
    CHECK_EQ(rc, 1);
    CHECK_EQ(t.kind, JSON_STRING);
    CHECK_EQ(t.len, want_n);
    CHECK(memcmp(t.str, want, want_n) == 0);
    CHECK(t.str[want_n] == 0);
    CHECK_EQ(json_next(&d.r, &t), 0);
    doc_close(&d);
}

#define STR(lit, want) check_string(lit, sizeof lit - 1, want, sizeof want - 1)

TEST(json_every_escape)
{
    STR("\"\\\"\"", "\"");
    STR("\"\\\\\"", "\\");
    STR("\"\\/\"", "/");
    STR("\"\\b\"", "\b");
    STR("\"\\f\"", "\f");
    STR("\"\\n\"", "\n");
    STR("\"\\r\"", "\r");
    STR("\"\\t\"", "\t");
    STR("\"\\u0041\"", "A");
    STR("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9");
    STR("\"\\u07ff\"", "\xdf\xbf");
    STR("\"\\u0800\"", "\xe0\xa0\x80");
    STR("\"\\u20AC\"", "\xe2\x82\xac");
    STR("\"\\uffff\"", "\xef\xbf\xbf");
    STR("\"\\u0000\"", "\0");
    STR("\"a\\u0000b\"", "a\0b");
    STR("\"\"", "");
    STR("\"x\\ty\\nz\\\\w\\\"v\"", "x\ty\nz\\w\"v");
    /* long runs cross the 8-byte fast path in every alignment */
    STR("\"0123456789abcdefghij\\nklmnopqrstuvwxyz\"", "0123456789abcdefghij\nklmnopqrstuvwxyz");
    STR("\"0123456\xc3\xa9" "0123456789\"", "0123456\xc3\xa9" "0123456789");
    STR("\"\x7f\"", "\x7f"); /* DEL is not a control character in JSON */
}

TEST(json_surrogate_pairs)
{
    STR("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"); /* U+1F600 */
    STR("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80"); /* U+10000 */
    STR("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    STR("\"a\\ud834\\udd1eb\"", "a\xf0\x9d\x84\x9e" "b");
}

TEST(json_raw_utf8_accepted)
{
    STR("\"\xc2\x80\"", "\xc2\x80");                 /* U+0080 */
    STR("\"\xdf\xbf\"", "\xdf\xbf");                 /* U+07FF */
    STR("\"\xe0\xa0\x80\"", "\xe0\xa0\x80");         /* U+0800 */
    STR("\"\xed\x9f\xbf\"", "\xed\x9f\xbf");         /* U+D7FF */
    STR("\"\xee\x80\x80\"", "\xee\x80\x80");         /* U+E000 */
    STR("\"\xef\xbf\xbf\"", "\xef\xbf\xbf");         /* U+FFFF */
    STR("\"\xf0\x90\x80\x80\"", "\xf0\x90\x80\x80"); /* U+10000 */
    STR("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    STR("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

/* Malformed documents: the reason json_next gives and where. */
static const struct bad {
    const char *s;
    size_t n; /* 0: strlen(s) */
    const char *why;
    long off; /* -1: not checked */
} bad_docs[] = {
    /* trailing commas */
    {"[1,]", 0, "trailing comma before ']'", 3},
    {"{\"a\":1,}", 0, "trailing comma before '}'", 7},
    {"[1, ]", 0, "trailing comma", 4},
    {"[,1]", 0, "expected a value, found ','", 1},
    {"{,}", 0, "expected a string key, found ','", 1},
    {"[1,,2]", 0, "expected a value", 3},
    /* numbers */
    {"01", 0, "leading zero in number", 0},
    {"-01", 0, "leading zero", 1},
    {"[00]", 0, "leading zero", 1},
    {"-", 0, "expected a digit, found end of input", 1},
    {"-a", 0, "expected a digit, found 'a'", 1},
    {"1.", 0, "expected a digit after '.'", 2},
    {"1.e5", 0, "expected a digit after '.'", 2},
    {".5", 0, "expected a value, found '.'", 0},
    {"+1", 0, "expected a value, found '+'", 0},
    {"1e", 0, "expected a digit in the exponent", 2},
    {"1e+", 0, "expected a digit in the exponent", 3},
    {"[1x]", 0, "expected ',' or ']', found 'x'", 2},
    {"NaN", 0, "expected a value", 0},
    {"Infinity", 0, "expected a value", 0},
    {"-Infinity", 0, "expected a digit", 1},
    {"0x10", 0, "expected end of input after the document, found 'x'", 1},
    /* literals */
    {"tru", 0, "expected a value", 0},
    {"nul", 0, "expected a value", 0},
    {"falsy", 0, "expected a value", 0},
    {"True", 0, "expected a value", 0},
    {"[truex]", 0, "expected ',' or ']'", 5},
    /* control characters */
    {"\"a\x01b\"", 0, "control character in string", 2},
    {"\"a\nb\"", 0, "control character in string", 2},
    {"\"\t\"", 0, "control character in string", 1},
    {"\"\x1f\"", 0, "control character", 1},
    {"\"\0\"", 3, "control character", 1},
    /* invalid UTF-8 */
    {"\"\x80\"", 0, "invalid UTF-8", 1},
    {"\"\xbf\"", 0, "invalid UTF-8", 1},
    {"\"\xc0\x80\"", 0, "invalid UTF-8", 1},         /* overlong NUL */
    {"\"\xc1\xbf\"", 0, "invalid UTF-8", 1},         /* overlong */
    {"\"\xe0\x80\xaf\"", 0, "invalid UTF-8", 1},     /* overlong '/' */
    {"\"\xe0\x9f\xbf\"", 0, "invalid UTF-8", 1},     /* overlong U+07FF */
    {"\"\xf0\x80\x80\xaf\"", 0, "invalid UTF-8", 1}, /* overlong */
    {"\"\xf0\x8f\xbf\xbf\"", 0, "invalid UTF-8", 1}, /* overlong U+FFFF */
    {"\"\xed\xa0\x80\"", 0, "invalid UTF-8", 1},     /* U+D800 in UTF-8 */
    {"\"\xed\xbf\xbf\"", 0, "invalid UTF-8", 1},     /* U+DFFF in UTF-8 */
    {"\"\xf4\x90\x80\x80\"", 0, "invalid UTF-8", 1}, /* U+110000 */
    {"\"\xf5\x80\x80\x80\"", 0, "invalid UTF-8", 1},
    {"\"\xf8\x88\x80\x80\x80\"", 0, "invalid UTF-8", 1},
    {"\"\xff\"", 0, "invalid UTF-8", 1},
    {"\"\xc3\"", 0, "invalid UTF-8", 1},             /* cut by the quote */
    {"\"\xe2\x82\"", 0, "invalid UTF-8", 1},
    {"\"\xf0\x9f\x98\"", 0, "invalid UTF-8", 1},
    {"\"\xc3\x28\"", 0, "invalid UTF-8", 1},
    {"\"\xe2\x28\xa1\"", 0, "invalid UTF-8", 1},
    {"\"ok\xc3", 0, "invalid UTF-8", 3},             /* cut by the end of input */
    {"\xef\xbb\xbf{}", 0, "expected a value, found byte 0xef", 0}, /* a BOM */
    {"{\"\xc0\x80\":1}", 0, "invalid UTF-8", 2},     /* keys are checked too */
    /* escapes */
    {"\"\\x\"", 0, "invalid escape", 1},
    {"\"\\'\"", 0, "invalid escape", 1},
    {"\"\\U0041\"", 0, "invalid escape", 1},
    {"\"\\u12\"", 0, "invalid \\u escape", 1},
    {"\"\\u12g4\"", 0, "invalid \\u escape", 1},
    {"\"\\u", 0, "invalid \\u escape", 1},
    {"\"\\", 0, "unterminated string", 0},
    {"\"\\ud800\"", 0, "high surrogate not followed by a low surrogate", 1},
    {"\"\\ud800x\"", 0, "high surrogate", 1},
    {"\"\\ud800\\u0041\"", 0, "high surrogate", 1},
    {"\"\\ud800\\ud800\"", 0, "high surrogate", 1},
    {"\"\\ud800\\n\"", 0, "high surrogate", 1},
    {"\"\\udbff\\ue000\"", 0, "high surrogate", 1},
    {"\"\\udc00\"", 0, "lone low surrogate", 1},
    {"\"a\\udfff\\ud800\"", 0, "lone low surrogate", 2},
    /* unterminated input */
    {"", 0, "expected a value, found end of input", 0},
    {"   ", 0, "expected a value, found end of input", 3},
    {"\"abc", 0, "unterminated string", 0},
    {"\"abcdefghijklmnop", 0, "unterminated string", 0},
    {"{", 0, "expected a string key, found end of input", 1},
    {"{\"a\"", 0, "expected ':', found end of input", 4},
    {"{\"a\":", 0, "expected a value, found end of input", 5},
    {"{\"a\":1", 0, "expected ',' or '}', found end of input", 6},
    {"[1,2", 0, "expected ',' or ']', found end of input", 4},
    {"[", 0, "expected a value, found end of input", 1},
    {"[1,", 0, "expected a value, found end of input", 3},
    /* structure */
    {"{\"a\" 1}", 0, "expected ':', found '1'", 5},
    {"{1:2}", 0, "expected a string key, found '1'", 1},
    {"{'a':1}", 0, "expected a string key", 1},
    {"{a:1}", 0, "expected a string key", 1},
    {"[1 2]", 0, "expected ',' or ']', found '2'", 3},
    {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}'", 7},
    {"[}", 0, "expected a value, found '}'", 1},
    {"{]", 0, "expected a string key, found ']'", 1},
    {"[1}", 0, "expected ',' or ']', found '}'", 2},
    {"{\"a\":1]", 0, "expected ',' or '}', found ']'", 6},
    {"]", 0, "expected a value", 0},
    /* garbage after the document */
    {"{} x", 0, "expected end of input after the document, found 'x'", 3},
    {"1 2", 0, "after the document", 2},
    {"{}{}", 0, "after the document", 2},
    {"[]]", 0, "after the document", 2},
    {"{}\0", 3, "after the document, found byte 0x00", 2},
    {"\"a\"\"b\"", 0, "after the document", 3},
    /* whitespace is only space, tab, CR and LF */
    {"\f1", 0, "expected a value, found byte 0x0c", 0},
    {"[1,\v2]", 0, "expected a value, found byte 0x0b", 3},
};

TEST(json_rejects_malformed)
{
    for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
        const struct bad *b = &bad_docs[i];
        size_t n = b->n ? b->n : strlen(b->s);
        struct doc d;
        doc_open(&d, b->s, n);
        int rc = read_all(&d.r);
        if (rc != -1 || !strstr(d.r.err, b->why) || (b->off >= 0 && d.r.err_off != (size_t)b->off))
            fprintf(stderr, "  case %zu %.*s: rc %d, err \"%s\" at %zu; want \"%s\" at %ld\n", i, (int)n,
                    b->s, rc, d.r.err, d.r.err_off, b->why, b->off);
        CHECK_EQ(rc, -1);
        CHECK(strstr(d.r.err, b->why) != NULL);
        CHECK(b->off < 0 || d.r.err_off == (size_t)b->off);
        CHECK(d.r.failed);
        /* the error sticks */
        struct json_token t;
        CHECK_EQ(json_next(&d.r, &t), -1);
        CHECK_EQ(t.kind, JSON_NONE);
        doc_close(&d);
    }
}

/* The first token of s as a number. */
static struct json_token number(const char *s)
{
    struct doc d;
    doc_open(&d, s, strlen(s));
    struct json_token t;
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_NUMBER);
    CHECK_EQ(t.len, strlen(s));
    CHECK_EQ(read_all(&d.r), 0);
    doc_close(&d);
    t.str = NULL; /* pointed into the freed document */
    return t;
}

TEST(json_integers_and_overflow)
{
    struct json_token t;
    t = number("0");
    CHECK(t.is_int && t.i == 0);
    t = number("-0");
    CHECK(t.is_int && t.i == 0);
    t = number("42");
    CHECK(t.is_int && t.i == 42);
    t = number("-42");
    CHECK(t.is_int && t.i == -42);
    t = number("1700000000000");
    CHECK(t.is_int && t.i == 1700000000000LL);
    t = number("9223372036854775807");
    CHECK(t.is_int && t.i == INT64_MAX);
    t = number("-9223372036854775808");
    CHECK(t.is_int && t.i == INT64_MIN);
    /* valid numbers that are not int64 */
    t = number("9223372036854775808");
    CHECK(!t.is_int && t.i == 0);
    t = number("-9223372036854775809");
    CHECK(!t.is_int);
    t = number("18446744073709551615");
    CHECK(!t.is_int);
    t = number("18446744073709551616");
    CHECK(!t.is_int);
    t = number("184467440737095516150");
    CHECK(!t.is_int);
    t = number("99999999999999999999999999999999999999");
    CHECK(!t.is_int);
    t = number("1.0");
    CHECK(!t.is_int);
    t = number("1e2");
    CHECK(!t.is_int);
    t = number("1E+2");
    CHECK(!t.is_int);
    t = number("-1.5e-300");
    CHECK(!t.is_int);
    t = number("0.000");
    CHECK(!t.is_int);
}

/* depth containers, objects and arrays in turn, around the value 1. */
static void nested(char *buf, int depth)
{
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        if (i % 2 == 0) {
            memcpy(buf + n, "{\"k\":", 5);
            n += 5;
        } else {
            buf[n++] = '[';
        }
    }
    buf[n++] = '1';
    for (int i = depth - 1; i >= 0; i--)
        buf[n++] = i % 2 ? ']' : '}';
    buf[n] = 0;
}

TEST(json_nesting_limit)
{
    static char buf[2048];
    int depth_reached = 0;
    struct doc d;
    /* JSON_MAX_DEPTH arrays is fine */
    char ok[JSON_MAX_DEPTH * 2 + 1], bad[JSON_MAX_DEPTH * 2 + 3];
    memset(ok, '[', JSON_MAX_DEPTH);
    memset(ok + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    doc_open(&d, ok, 2 * JSON_MAX_DEPTH);
    struct json_token t;
    int rc;
    while ((rc = json_next(&d.r, &t)) == 1)
        if (d.r.depth > depth_reached)
            depth_reached = d.r.depth;
    CHECK_EQ(rc, 0);
    CHECK_EQ(depth_reached, JSON_MAX_DEPTH);
    doc_close(&d);
    /* one more is refused at the byte that opens it */
    memset(bad, '[', JSON_MAX_DEPTH + 1);
    memset(bad + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    doc_open(&d, bad, 2 * JSON_MAX_DEPTH + 2);
    CHECK_EQ(read_all(&d.r), -1);
    CHECK(strstr(d.r.err, "nesting deeper than 32"));
    CHECK_EQ(d.r.err_off, JSON_MAX_DEPTH);
    doc_close(&d);
    /* mixed objects and arrays count alike */
    nested(buf, JSON_MAX_DEPTH);
    doc_open(&d, buf, strlen(buf));
    CHECK_EQ(read_all(&d.r), 0);
    doc_close(&d);
    nested(buf, JSON_MAX_DEPTH + 1);
    doc_open(&d, buf, strlen(buf));
    CHECK_EQ(read_all(&d.r), -1);
    CHECK(strstr(d.r.err, "nesting"));
    doc_close(&d);
    /* a deep bomb fails fast without recursion */
    static char bomb[100000];
    memset(bomb, '[', sizeof bomb);
    doc_open(&d, bomb, sizeof bomb);
    CHECK_EQ(read_all(&d.r), -1);
    doc_close(&d);
}

TEST(json_skip_values)
{
    const char *s = "{\"skip1\":{\"a\":[1,{\"b\":\"c\"},[]],\"d\":{}},\"skip2\":[[[]]],\"s3\":\"x\","
                    "\"s4\":12,\"keep\":true}";
    struct doc d;
    doc_open(&d, s, strlen(s));
    struct json_token t;
    CHECK_EQ(json_next(&d.r, &t), 1);
    int kept = 0;
    for (;;) {
        CHECK_EQ(json_next(&d.r, &t), 1);
        if (t.kind == JSON_END)
            break;
        if (key_is(&t, "keep")) {
            CHECK_EQ(t.kind, JSON_TRUE);
            kept++;
        } else {
            CHECK_EQ(json_skip(&d.r, &t), 0);
        }
    }
    CHECK_EQ(kept, 1);
    CHECK_EQ(json_next(&d.r, &t), 0);
    doc_close(&d);

    /* an error inside the skipped value is reported */
    const char *b = "{\"x\":[1,{\"y\":01}],\"z\":1}";
    doc_open(&d, b, strlen(b));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(t.kind, JSON_ARRAY);
    CHECK_EQ(json_skip(&d.r, &t), -1);
    CHECK(strstr(d.r.err, "leading zero"));
    CHECK_EQ(d.r.err_off, 13);
    CHECK_EQ(json_skip(&d.r, &t), -1);
    doc_close(&d);

    /* an unterminated container */
    const char *u = "[[1,2]";
    doc_open(&d, u, strlen(u));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(json_skip(&d.r, &t), -1);
    doc_close(&d);
}

TEST(json_strings_stay_valid)
{
    /* Strings are laid out one after another in scratch, so earlier tokens
     * keep their text (event.c depends on this). */
    const char *s = "{\"k1\":\"v\\u00e91\",\"k2\":[\"v2\",\"\\t\"],\"k3\":\"v3\"}";
    struct doc d;
    doc_open(&d, s, strlen(s));
    struct json_token t, keep[8];
    int n = 0;
    while (json_next(&d.r, &t) == 1)
        if (t.kind == JSON_STRING)
            keep[n++] = t;
    CHECK_EQ(n, 4);
    CHECK(str_is(&keep[0], "v\xc3\xa9" "1", 4) && key_is(&keep[0], "k1"));
    CHECK(str_is(&keep[1], "v2", 2));
    CHECK(str_is(&keep[2], "\t", 1));
    CHECK(str_is(&keep[3], "v3", 2) && key_is(&keep[3], "k3"));
    CHECK(d.r.scratch_used <= d.n + 1);
    doc_close(&d);
}

TEST(json_scratch_bound_holds)
{
    /* The worst cases for scratch use: many empty strings, many keys, and
     * one-character strings; each must fit in len + 1 exactly. */
    static const char *docs[] = {
        "\"\"", "[\"\",\"\",\"\"]", "{\"\":\"\"}", "{\"a\":\"b\",\"c\":{\"d\":\"e\"}}",
        "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\"]",
        "\"\\ud83d\\ude00\\u20ac\\n\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct doc d;
        doc_open(&d, docs[i], strlen(docs[i]));
        CHECK_EQ(read_all(&d.r), 0);
        CHECK(d.r.scratch_used <= d.n + 1);
        doc_close(&d);
    }
}

TEST(json_scratch_too_small_is_refused)
{
    char doc[] = "\"abc\"";
    char scratch[5];
    struct json_reader r;
    json_reader_init(&r, doc, 5, scratch, sizeof scratch);
    CHECK_EQ(read_all(&r), -1);
    CHECK(strstr(r.err, "scratch"));
    json_reader_init(&r, doc, 5, NULL, 0);
    CHECK_EQ(read_all(&r), -1);
    char s1[1];
    json_reader_init(&r, "", 0, s1, 1);
    CHECK_EQ(read_all(&r), -1);
    CHECK(strstr(r.err, "found end of input"));
}

/* ---- writer ---- */

static int out_is(const struct jbuf *b, const char *want)
{
    if (b->len != strlen(want) || memcmp(b->p, want, b->len) != 0) {
        fprintf(stderr, "  wrote %.*s\n  want  %s\n", (int)b->len, b->p, want);
        return 0;
    }
    return b->p[b->len] == 0;
}

TEST(json_writer_structure)
{
    struct jbuf b;
    jbuf_init(&b);
    json_w_obj_begin(&b, NULL);
    json_w_cstr(&b, "s", "v");
    json_w_int(&b, "i", -7);
    json_w_bool(&b, "t", 1);
    json_w_bool(&b, "f", 0);
    json_w_null(&b, "n");
    json_w_arr_begin(&b, "a");
    json_w_int(&b, NULL, 1);
    json_w_obj_begin(&b, NULL);
    json_w_obj_end(&b);
    json_w_arr_begin(&b, NULL);
    json_w_arr_end(&b);
    json_w_str(&b, NULL, "x", 1);
    json_w_arr_end(&b);
    json_w_obj_begin(&b, "o");
    json_w_int(&b, "z", 0);
    json_w_obj_end(&b);
    json_w_cstr(&b, "null_str", NULL);
    json_w_obj_end(&b);
    CHECK(!b.oom);
    CHECK(out_is(&b, "{\"s\":\"v\",\"i\":-7,\"t\":true,\"f\":false,\"n\":null,\"a\":[1,{},[],\"x\"],"
                     "\"o\":{\"z\":0},\"null_str\":null}"));
    /* top-level values are separate documents: no comma between them */
    jbuf_raw(&b, "\n", 1);
    json_w_arr_begin(&b, NULL);
    json_w_arr_end(&b);
    CHECK(b.len > 3 && memcmp(b.p + b.len - 3, "\n[]", 3) == 0);
    jbuf_reset(&b);
    CHECK_EQ(b.len, 0);
    json_w_int(&b, NULL, INT64_MIN);
    CHECK(out_is(&b, "-9223372036854775808"));
    jbuf_reset(&b);
    json_w_int(&b, NULL, INT64_MAX);
    CHECK(out_is(&b, "9223372036854775807"));
    jbuf_reset(&b);
    /* an unbalanced close cannot give valid JSON: it is flagged */
    json_w_obj_end(&b);
    CHECK(b.oom);
    jbuf_reset(&b);
    CHECK(!b.oom);
    jbuf_free(&b);
    CHECK(b.p == NULL);
}

TEST(json_writer_escaping)
{
    struct jbuf b;
    jbuf_init(&b);
    static const char in[] = "a\"b\\c/d\ne\tf\rg\bh\fi\x01j\x1fk\x7fl\xc3\xa9";
    json_w_str(&b, NULL, in, sizeof in - 1);
    CHECK(out_is(&b, "\"a\\\"b\\\\c/d\\ne\\tf\\rg\\bh\\fi\\u0001j\\u001fk\x7fl\xc3\xa9\""));
    jbuf_reset(&b);
    json_w_str(&b, NULL, "\0x", 2);
    CHECK(out_is(&b, "\"\\u0000x\""));
    jbuf_reset(&b);
    /* keys are escaped as well */
    json_w_obj_begin(&b, NULL);
    json_w_int(&b, "we\"ird\n", 1);
    json_w_obj_end(&b);
    CHECK(out_is(&b, "{\"we\\\"ird\\n\":1}"));
    jbuf_reset(&b);
    json_w_str(&b, NULL, "", 0);
    CHECK(out_is(&b, "\"\""));
    jbuf_free(&b);
}

TEST(json_writer_round_trip_every_byte)
{
    /* Every ASCII byte, plus some UTF-8, written and read back. */
    char s[128 + 16];
    size_t n = 0;
    for (int c = 0; c < 128; c++)
        s[n++] = (char)c;
    memcpy(s + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    n += 9;
    struct jbuf b;
    jbuf_init(&b);
    json_w_obj_begin(&b, NULL);
    json_w_str(&b, "k\x01", s, n);
    json_w_obj_end(&b);
    CHECK(!b.oom);
    struct doc d;
    doc_open(&d, b.p, b.len);
    struct json_token t;
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK(key_is(&t, "k\x01"));
    CHECK(str_is(&t, s, n));
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK_EQ(json_next(&d.r, &t), 0);
    doc_close(&d);
    jbuf_free(&b);
}

TEST(json_writer_escape_sizes)
{
    /* Each byte alone: 0x00-0x1f, '"' and '\\' are escaped, the rest are
     * copied (bytes >= 0x80 too: the writer trusts its UTF-8). */
    struct jbuf b;
    jbuf_init(&b);
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        jbuf_reset(&b);
        json_w_str(&b, NULL, &ch, 1);
        CHECK(!b.oom);
        size_t want = c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t'
                          ? 4
                      : c < 0x20 ? 8
                                 : 3;
        CHECK_EQ(b.len, want);
        CHECK_EQ(strlen(b.p), want);
        if (want == 3)
            CHECK((unsigned char)b.p[1] == c);
    }
    jbuf_free(&b);
}

TEST(json_writer_doubles)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.1, "0.1"}, {1.5, "1.5"}, {-2, "-2"}, {0, "0"}, {1e300, "1e+300"},
        {123456789.125, "123456789.125"}, {0.30000000000000004, "0.30000000000000004"},
    };
    struct jbuf b;
    jbuf_init(&b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jbuf_reset(&b);
        json_w_double(&b, NULL, cases[i].v);
        CHECK(out_is(&b, cases[i].want));
    }
    /* non-finite values have no JSON form */
    jbuf_reset(&b);
    json_w_arr_begin(&b, NULL);
    json_w_double(&b, NULL, NAN);
    json_w_double(&b, NULL, INFINITY);
    json_w_double(&b, NULL, -INFINITY);
    json_w_arr_end(&b);
    CHECK(out_is(&b, "[null,null,null]"));
    /* whatever is printed reads back as a JSON number with the same value */
    double vals[] = {M_PI, -1.0 / 3, 5e-324, 1.7976931348623157e308, 2.5e-8, 1e21};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        jbuf_reset(&b);
        json_w_double(&b, NULL, vals[i]);
        struct doc d;
        doc_open(&d, b.p, b.len);
        struct json_token t;
        CHECK_EQ(json_next(&d.r, &t), 1);
        CHECK_EQ(t.kind, JSON_NUMBER);
        CHECK_EQ(json_next(&d.r, &t), 0);
        doc_close(&d);
        CHECK(strtod(b.p, NULL) == vals[i]);
    }
    jbuf_free(&b);
}

TEST(json_writer_out_of_memory)
{
    size_t base = alloc_live_bytes();
    for (long n = 0; n < 4; n++) {
        struct jbuf b;
        jbuf_init(&b);
        alloc_fail_after(n);
        json_w_arr_begin(&b, NULL);
        for (int i = 0; i < 1000; i++)
            json_w_cstr(&b, NULL, "a string long enough to need several buffer doublings");
        json_w_arr_end(&b);
        alloc_fail_after(-1);
        CHECK(b.oom);
        /* after the failure nothing more was appended, and what is there is
         * a prefix of the intended text */
        size_t len = b.len;
        json_w_int(&b, NULL, 5);
        CHECK_EQ(b.len, len);
        CHECK(len == 0 || b.p[0] == '[');
        jbuf_free(&b);
        CHECK_EQ(alloc_live_bytes(), base);
    }
}

TEST(json_writer_big_string)
{
    /* A string that forces growth within one call. */
    size_t n = 100000;
    char *s = malloc(n);
    CHECK(s);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 7 == 0 ? '\n' : 'a';
    struct jbuf b;
    jbuf_init(&b);
    json_w_str(&b, NULL, s, n);
    CHECK(!b.oom);
    struct doc d;
    doc_open(&d, b.p, b.len);
    struct json_token t;
    CHECK_EQ(json_next(&d.r, &t), 1);
    CHECK(str_is(&t, s, n));
    doc_close(&d);
    jbuf_free(&b);
    free(s);
}
