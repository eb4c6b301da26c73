/* fuzz_csv.c: libFuzzer harness for the streaming CSV/TSV reader
 * (shop/csv.c).  Byte 0 picks the separator (bits 0-1: ',' '\t' ';' '|')
 * and how input arrives (bits 2-3: straight from memory, or through a read
 * callback handing out 1, 7 or 4093 bytes per call, so records straddle
 * buffer refills); the rest is the file.  Every record must be well formed
 * (at least one field, each NUL-terminated at its length with no NUL
 * inside, line numbers never going back); an error must leave a "line N: "
 * reason and stick; the end must stay the end; nothing may leak.
 *
 * Build and run: make build/fuzz/fuzz_csv, then
 *   build/fuzz/fuzz_csv -max_total_time=60 build/fuzz/corpus/fuzz_csv
 * (seeds in tests/fuzz/seeds/fuzz_csv). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/csv.h"

struct src {
    const char *p;
    size_t n, pos, step;
};

static long src_read(void *ctx, char *buf, size_t n, char *err, size_t errsz)
{
    struct src *s = ctx;
    size_t k = s->n - s->pos;

    (void)err;
    (void)errsz;
    if (k > s->step)
        k = s->step;
    if (k > n)
        k = n;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (long)k;
}

static void die_if(int cond)
{
    if (cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char seps[] = {',', '\t', ';', '|'};
    static const size_t steps[] = {0, 1, 7, 4093};
    size_t base = alloc_live_bytes();

    if (size < 1)
        return 0;
    char sep = seps[data[0] & 3];
    size_t step = steps[(data[0] >> 2) & 3];
    size_t n = size - 1;
    char *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);

    struct src s = {in, n, 0, step};
    struct csv_reader *r = step ? csv_open(src_read, &s, sep) : csv_open_mem(in, n, sep);
    die_if(!r);
    struct csv_row row;
    long last_line = 0;
    size_t rows = 0;
    int rc;
    while ((rc = csv_next(r, &row)) == 1) {
        die_if(row.n < 1 || row.n > CSV_MAX_FIELDS);
        die_if(row.line < last_line || row.line < 1);
        last_line = row.line;
        for (size_t i = 0; i < row.n; i++) {
            die_if(row.len[i] > CSV_MAX_FIELD_BYTES);
            die_if(row.field[i][row.len[i]] != '\0');
            die_if(memchr(row.field[i], '\0', row.len[i]) != NULL);
        }
        die_if(csv_error(r)[0] != '\0');
        rows++;
        die_if(rows > n + 1);
    }
    if (rc == 0) {
        die_if(csv_error(r)[0] != '\0');
        die_if(csv_next(r, &row) != 0);
    } else {
        die_if(rc != -1);
        die_if(strncmp(csv_error(r), "line ", 5) != 0);
        die_if(csv_next(r, &row) != -1);
    }
    csv_close(r);
    die_if(alloc_live_bytes() != base);
    free(in);
    return 0;
}
