/* csv.h: a streaming reader of delimited text (RFC 4180 CSV, and TSV with a
 * tab separator), for the dataset replays (replay.h).
 *
 * Format accepted:
 *   - records end with LF or CRLF (a lone CR also ends a record); the last
 *     record may lack its line ending;
 *   - fields are separated by one configurable byte (',' '\t' ';' ...);
 *   - a field that starts with '"' is quoted: it runs to the next lone '"',
 *     may contain the separator, CR and LF, and "" stands for one '"'.  After
 *     the closing quote only the separator or the end of the record may
 *     follow;
 *   - a '"' inside an unquoted field is kept literally (as most writers and
 *     readers do; RFC 4180 forbids it but real files contain it);
 *   - a UTF-8 byte order mark (EF BB BF) at the very start is skipped;
 *   - empty lines (nothing between two line endings) are skipped.
 * Bytes are passed through unchanged (no charset conversion); a NUL byte is
 * an error because fields are handed out as C strings.
 *
 * Input comes from a read callback, so the reader does not know about files,
 * stdin or decompression (replay.c supplies those).  Memory use is bounded by
 * the largest record: a field longer than CSV_MAX_FIELD_BYTES, a record longer
 * than CSV_MAX_RECORD_BYTES or with more than CSV_MAX_FIELDS fields is an
 * error, as is a quoted field still open at the end of the input.  Errors are
 * one sentence that starts with "line N: ".  After an error every later call
 * fails the same way.
 *
 * Leaf module apart from common/alloc.h. */
#ifndef SHOPSTREAM_CSV_H
#define SHOPSTREAM_CSV_H

#include <stddef.h>

#define CSV_MAX_FIELD_BYTES (1 << 20)
#define CSV_MAX_RECORD_BYTES (4 << 20)
#define CSV_MAX_FIELDS 4096

/* Reads up to n bytes into buf.  Returns the number read (> 0), 0 at the end
 * of the input, or -1 on failure after writing a one-sentence reason (without
 * a final period) to err[0..errsz). */
typedef long (*csv_read_fn)(void *ctx, char *buf, size_t n, char *err, size_t errsz);

/* One record: a view valid until the next csv_next or csv_close. */
struct csv_row {
    size_t n;                   /* number of fields (>= 1) */
    char *const *field;         /* field[i]: NUL-terminated text of field i */
    const size_t *len;          /* len[i]: its length in bytes */
    long line;                  /* physical line (1-based) the record starts on */
};

struct csv_reader;

/* A reader of the bytes fn yields (fn and ctx are borrowed).  Returns owned
 * (free with csv_close) or NULL when out of memory. */
struct csv_reader *csv_open(csv_read_fn fn, void *ctx, char sep);

/* A reader of p[0..n) (borrowed until csv_close). */
struct csv_reader *csv_open_mem(const char *p, size_t n, char sep);

void csv_close(struct csv_reader *r);

/* Reads the next record into *row.  Returns 1 with a record, 0 at the end of
 * the input, or -1 on malformed input, a read failure or out of memory
 * (csv_error says why). */
int csv_next(struct csv_reader *r, struct csv_row *row);

/* The reason of the last failure ("line 7: unterminated quoted field (opened
 * on line 5)"), or "" if none.  A view valid until csv_close. */
const char *csv_error(const struct csv_reader *r);

#endif
