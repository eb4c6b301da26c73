/* fetcher.h: shopstream's own consumer of one topic: reads a set of its
 * partitions from given offsets over one Kafka connection (client/kconn.h),
 * with no group and no committed offsets.  Used by `bench consume` (a
 * finished log, as fast as it goes) and by the consumers of `bench
 * produce` (a log still being written, long-polled).
 *
 * Opening connects, agrees on versions, asks Metadata for the partitions
 * and their leader (every partition read must be led by the broker it is
 * connected to: it reads from that one broker only) and resolves the
 * symbolic start offsets with ListOffsets.  Then each fetcher_poll is one
 * Fetch round (v4-v11, the highest the broker serves).  Fetches are
 * pipelined: once an answer is in, the next offsets come from its batch
 * headers and the next Fetch goes out before the answer is decoded, so the
 * broker serves it meanwhile.  Decoding is a consumer's real work: every
 * batch's CRC-32C is checked, compressed batches are decompressed, and
 * every record is walked for its offset and value.  Control batches
 * (transaction markers) are skipped, as consumers do; records are read
 * uncommitted.  The wire format is in shared/kafka-protocol/README.md.
 *
 * Errors are one sentence (no trailing period) in the caller's buffer; after
 * one the fetcher is out of step and may only be closed.  Not thread-safe:
 * a fetcher belongs to one thread at a time. */
#ifndef SHOPSTREAM_FETCHER_H
#define SHOPSTREAM_FETCHER_H

#include <stddef.h>
#include <stdint.h>

/* Start offsets resolved with ListOffsets, by Kafka's timestamps for them. */
#define FETCHER_EARLIEST (-2) /* the partition's first offset */
#define FETCHER_LATEST (-1)   /* its end offset when the fetcher opens */

/* What a fetcher connects to and how it fetches. */
struct fetcher_conf {
    const char *host;      /* borrows, for the call */
    int port;
    const char *client_id; /* borrows: must outlive the fetcher */
    const char *topic;     /* borrows: must outlive the fetcher */
    int32_t max_bytes;     /* Fetch MaxBytes; one partition gives at most
                              min(max_bytes, 16 MiB) of them */
    int timeout_ms;        /* bound on connecting and on each request */
};

/* One partition being read, with what was read of it. */
struct fetcher_part {
    int32_t id;
    int64_t pos;        /* the next offset to fetch */
    int64_t end;        /* read up to here and no further; -1: no end */
    long long records;  /* records read (walked, CRC checked) */
    long long bytes;    /* their value bytes */
};

/* Totals of one fetcher. */
struct fetcher_stats {
    int fetch_version;   /* the Fetch version in use */
    long long fetches;   /* Fetch requests sent */
    long long wire_bytes; /* record bytes received, whole batches and cut ones */
    long long records, bytes; /* records read and their value bytes */
};

struct fetcher;

/* Connects and prepares to read topic's partitions[0..npartitions) from
 * start_offsets[0..npartitions) (an offset, FETCHER_EARLIEST or
 * FETCHER_LATEST).  partitions NULL means every partition of the topic in
 * Metadata's order (npartitions is ignored); start_offsets NULL means
 * FETCHER_EARLIEST for all.  Both arrays are borrowed for the call.  err is
 * borrowed for the fetcher's life.  Returns owned (free with fetcher_close),
 * or NULL with err set. */
struct fetcher *fetcher_open(const struct fetcher_conf *conf, const int32_t *partitions,
                             const int64_t *start_offsets, int npartitions, char *err, size_t errlen);

/* Closes the connection and frees f (NULL is fine). */
void fetcher_close(struct fetcher *f);

/* Makes the fetcher stop at the partitions' end offsets as of now (asked
 * with ListOffsets) and after max_records records in all, for reading a
 * finished log.  Returns the records it will read from here (at most
 * max_records), or -1 with err set. */
long long fetcher_read_to_end(struct fetcher *f, long long max_records);

/* One Fetch round: receives the answer to the Fetch in flight (sending one
 * first when none is), sends the next with MaxWaitMs wait_ms and MinBytes 1
 * (the broker answers as soon as it has a byte, else after wait_ms, which
 * makes a caught-up reader long-poll), then decodes the answer.  wait_ms
 * must be below the connection's timeout.  *records and *bytes get what the
 * answer held (0 when the wait ran out).  Returns 1 after a round, 0 when
 * there is nothing left to read (every partition at its end, or
 * max_records read), or -1 with err set. */
int fetcher_poll(struct fetcher *f, int wait_ms, long long *records, long long *bytes);

/* The partitions being read, in the order given (or Metadata's).  *n gets
 * their number.  A view, valid until the next fetcher_poll or close. */
const struct fetcher_part *fetcher_parts(const struct fetcher *f, int *n);

struct fetcher_stats fetcher_stats(const struct fetcher *f);

#endif
