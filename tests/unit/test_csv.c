/* test_csv.c: the streaming CSV/TSV reader (shop/csv.h): quoting, escaped
 * quotes, embedded separators and newlines, CRLF and LF, a byte order mark,
 * empty lines, line numbers, a separator other than ',', and hostile input
 * (unterminated quote, junk after a closing quote, NUL bytes, huge fields,
 * too many fields, read failures, allocation failures) that must end in a
 * clear error, never a crash.  Inputs are exactly-sized heap copies so that
 * ASan catches a read past the end, and every input is also fed one byte per
 * read to exercise the buffer boundaries. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/csv.h"
#include "test.h"

/* A read callback over memory that hands out at most `step` bytes per call. */
struct chunks {
    const char *p;
    size_t n, pos, step;
    int fail_at_end;    /* return -1 instead of 0 at the end */
};

static long chunk_read(void *ctx, char *buf, size_t n, char *err, size_t errsz)
{
    struct chunks *c = ctx;
    size_t k = c->n - c->pos;

    if (k == 0) {
        if (c->fail_at_end) {
            snprintf(err, errsz, "disk on fire");
            return -1;
        }
        return 0;
    }
    if (k > c->step)
        k = c->step;
    if (k > n)
        k = n;
    memcpy(buf, c->p + c->pos, k);
    c->pos += k;
    return (long)k;
}

/* Reads all of s with separator sep (through memory when step == 0, else
 * through chunk_read with that step) and renders it as
 * "L<line>[f1|f2|...]" per record; the error, if any, follows as "ERR:...".
 * Returns an owned string (free). */
static char *render(const char *s, size_t n, char sep, size_t step)
{
    char *copy = malloc(n ? n : 1);
    struct chunks ch = {NULL, n, 0, step, 0};
    struct csv_reader *r;
    struct csv_row row;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    int rc;

    CHECK(copy && out);
    memcpy(copy, s, n);
    ch.p = copy;
    r = step ? csv_open(chunk_read, &ch, sep) : csv_open_mem(copy, n, sep);
    CHECK(r);
    out[0] = '\0';
    while ((rc = csv_next(r, &row)) > 0) {
        size_t need = 32;

        for (size_t i = 0; i < row.n; i++) {
            need += row.len[i] + 1;
            CHECK(strlen(row.field[i]) == row.len[i]);
        }
        while (len + need >= cap) {
            cap *= 2;
            CHECK((out = realloc(out, cap)));
        }
        len += (size_t)sprintf(out + len, "L%ld[", row.line);
        for (size_t i = 0; i < row.n; i++) {
            memcpy(out + len, row.field[i], row.len[i]);
            len += row.len[i];
            out[len++] = i + 1 < row.n ? '|' : ']';
        }
        out[len] = '\0';
    }
    if (rc < 0) {
        const char *e = csv_error(r);

        CHECK(*e);
        while (len + strlen(e) + 8 >= cap) {
            cap *= 2;
            CHECK((out = realloc(out, cap)));
        }
        len += (size_t)sprintf(out + len, "ERR:%s", e);
        /* an error sticks */
        CHECK(csv_next(r, &row) < 0);
    }
    csv_close(r);
    free(copy);
    return out;
}

/* render() through memory, then through 1-byte and 7-byte reads: all three
 * must agree with want. */
static void expect(const char *s, size_t n, char sep, const char *want)
{
    static const size_t steps[] = {0, 1, 7};

    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char *got = render(s, n, sep, steps[k]);

        if (strcmp(got, want)) {
            fprintf(stderr, "  step %zu:\n   got: %s\n  want: %s\n", steps[k], got, want);
            CHECK(0);
        }
        free(got);
    }
}

#define EXPECT(lit, sep, want) expect(lit, sizeof(lit) - 1, sep, want)

TEST(csv_plain_records)
{
    EXPECT("a,b,c\n1,2,3\n", ',', "L1[a|b|c]L2[1|2|3]");
    /* no final newline; empty fields, leading and trailing */
    EXPECT("a,b\n,x,\n,,", ',', "L1[a|b]L2[|x|]L3[||]");
    EXPECT("", ',', "");
    EXPECT("only", ',', "L1[only]");
}

TEST(csv_quoting)
{
    /* separators, escaped quotes, an empty quoted field */
    EXPECT("\"a,b\",\"say \"\"hi\"\"\",\"\",x\n", ',', "L1[a,b|say \"hi\"||x]");
    /* a quote inside an unquoted field is literal */
    EXPECT("RECORD FRAME 7\" SINGLE,2\n", ',', "L1[RECORD FRAME 7\" SINGLE|2]");
    /* the Online Retail style */
    EXPECT("536540,85071C,\"CHARLIE+LOLA\"\"EXTREMELY BUSY\"\" SIGN\",6\n", ',',
           "L1[536540|85071C|CHARLIE+LOLA\"EXTREMELY BUSY\" SIGN|6]");
    /* a quoted last field at the end of the input */
    EXPECT("a,\"b\"", ',', "L1[a|b]");
}

TEST(csv_line_endings_and_empty_lines)
{
    EXPECT("a,b\r\nc,d\r\n", ',', "L1[a|b]L2[c|d]");
    EXPECT("a,b\r\nc,d\ne,f\r\n", ',', "L1[a|b]L2[c|d]L3[e|f]");
    /* empty lines are skipped but counted */
    EXPECT("\n\na\r\n\r\nb\n\n", ',', "L3[a]L5[b]");
    /* a lone CR ends a record too */
    EXPECT("a\rb\n", ',', "L1[a]L2[b]");
}

TEST(csv_byte_order_mark)
{
    EXPECT("\xEF\xBB\xBFname,x\r\nv,1\r\n", ',', "L1[name|x]L2[v|1]");
    /* only at the very start */
    EXPECT("a\n\xEF\xBB\xBF" "b\n", ',', "L1[a]L2[\xEF\xBB\xBF" "b]");
    /* a BOM alone */
    EXPECT("\xEF\xBB\xBF", ',', "");
}

TEST(csv_embedded_newline_keeps_line_numbers)
{
    EXPECT("h1,h2\n\"two\nlines\",x\n\"three\r\nline\r\nfield\",y\nlast,z\n", ',',
           "L1[h1|h2]L2[two\nlines|x]L4[three\r\nline\r\nfield|y]L7[last|z]");
}

TEST(csv_tab_separator)
{
    EXPECT("SessionId\tItemId\tTime\n1\t214536502\t1396860669.277\n", '\t',
           "L1[SessionId|ItemId|Time]L2[1|214536502|1396860669.277]");
    /* commas are ordinary bytes in TSV */
    EXPECT("a,b\tc\n", '\t', "L1[a,b|c]");
    EXPECT("a;\"b;c\"\n", ';', "L1[a|b;c]");
}

TEST(csv_unterminated_quote)
{
    EXPECT("a,b\nc,\"never\nclosed\n", ',',
           "L1[a|b]ERR:line 4: unterminated quoted field (opened on line 2)");
}

TEST(csv_junk_after_closing_quote)
{
    EXPECT("ok\n\"a\"b,c\n", ',',
           "L1[ok]ERR:line 2: unexpected character after the closing quote of field 1");
}

TEST(csv_nul_byte)
{
    EXPECT("a,b\nc\0d\n", ',', "L1[a|b]ERR:line 2: NUL byte in the input (is this a text file?)");
    EXPECT("\"q\0\"\n", ',', "ERR:line 1: NUL byte in the input (is this a text file?)");
}

TEST(csv_very_long_field)
{
    size_t big = 700 * 1000, n;
    char *s = malloc(big + 64), *want = malloc(big + 64), *got;

    CHECK(s && want);
    /* a long field below the limit, quoted, is read whole */
    n = (size_t)sprintf(s, "x,\"");
    memset(s + n, 'z', big);
    n += big;
    n += (size_t)sprintf(s + n, "\",y\n");
    got = render(s, n, ',', 0);
    CHECK(!strncmp(got, "L1[x|zzz", 8));
    CHECK_EQ(strlen(got), big + 8);
    free(got);
    free(s);
    free(want);

    /* one over the limit is an error, unquoted and quoted */
    big = CSV_MAX_FIELD_BYTES + 1;
    s = malloc(big + 8);
    CHECK(s);
    memset(s, 'q', big);
    got = render(s, big, ',', 0);
    CHECK(strstr(got, "ERR:line 1: field 1 is longer than 1048576 bytes"));
    free(got);
    memset(s, 'q', big + 4);
    s[0] = '"';
    got = render(s, big + 4, ',', 4096);
    CHECK(strstr(got, "ERR:line 1: field 1 is longer than"));
    free(got);
    free(s);
}

TEST(csv_record_and_field_count_limits)
{
    /* many fields that are each small but add up past the record limit */
    size_t nf = CSV_MAX_FIELDS - 1, per = (CSV_MAX_RECORD_BYTES / nf) + 2, n = 0;
    char *s = malloc(nf * (per + 1) + 8), *got;

    CHECK(s);
    for (size_t i = 0; i < nf; i++) {
        memset(s + n, 'r', per);
        n += per;
        s[n++] = ',';
    }
    s[n++] = '\n';
    got = render(s, n, ',', 0);
    CHECK(strstr(got, "ERR:line 1: record is longer than"));
    free(got);

    /* too many (empty) fields */
    n = CSV_MAX_FIELDS + 10;
    memset(s, ',', n);
    got = render(s, n, ',', 0);
    CHECK(strstr(got, "ERR:line 1: more than 4096 fields"));
    free(got);
    free(s);
}

TEST(csv_read_failure)
{
    struct chunks ch = {"a,b\nc", 5, 0, 3, 1};
    struct csv_reader *r = csv_open(chunk_read, &ch, ',');
    struct csv_row row;

    CHECK(r);
    CHECK_EQ(csv_next(r, &row), 1);
    CHECK_EQ(csv_next(r, &row), -1);
    CHECK(!strcmp(csv_error(r), "line 2: disk on fire"));
    csv_close(r);
}

TEST(csv_allocation_failures)
{
    static const char in[] = "h1,h2,h3\n\"a\nb\",c,d\ne,f,g\n";

    /* every allocation in turn fails: the reader returns NULL or reports
     * "out of memory"; it never crashes or leaks */
    for (long k = 0; k < 40; k++) {
        size_t live = alloc_live_bytes();
        struct chunks ch = {in, sizeof in - 1, 0, 5, 0};
        struct csv_reader *r;
        struct csv_row row;
        int rc, records = 0;

        alloc_fail_after(k);
        r = csv_open(chunk_read, &ch, ',');
        if (r) {
            while ((rc = csv_next(r, &row)) > 0)
                records++;
            if (rc < 0)
                CHECK(strstr(csv_error(r), "out of memory"));
            else
                CHECK_EQ(records, 3);
            csv_close(r);
        }
        alloc_fail_after(-1);
        CHECK_EQ(alloc_live_bytes(), live);
    }
}
