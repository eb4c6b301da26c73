/* records.h: Kafka's record formats as pure functions over bytes (no I/O):
 * the RecordBatch (magic 2) header, validation of a produced batch,
 * iteration over the batches of a log range, reading the records of a
 * batch, building batches, and conversion from and to the legacy MessageSet
 * (magic 0 and 1) used by Produce v0-2 and Fetch v0-3.
 *
 * Formats are described in shared/kafka-protocol/README.md, sections
 * "RecordBatch (magic 2)" and "Legacy MessageSet".  Which error a malformed
 * batch earns follows shared/RELIABILITY.md rows 20-27.  Compression is left
 * to compress.h; offset assignment, producer state and storage to the
 * broker and storage modules. */
#ifndef SHOPSTREAM_RECORDS_H
#define SHOPSTREAM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/obuf.h"

/* Bytes of a v2 batch header, up to and including recordCount. */
#define RECORDS_V2_OVERHEAD 61
/* baseOffset + batchLength: the part of a batch batchLength does not count. */
#define RECORDS_LOG_OVERHEAD 12
/* Where the CRC-32C coverage starts (attributes .. end of batch). */
#define RECORDS_CRC_START 21

/* Offsets of the v2 batch header fields from the start of the batch. */
enum records_v2_field {
    RECORDS_OFF_BASE_OFFSET = 0,             /* int64 */
    RECORDS_OFF_BATCH_LENGTH = 8,            /* int32, bytes after this field */
    RECORDS_OFF_PARTITION_LEADER_EPOCH = 12, /* int32, outside the CRC */
    RECORDS_OFF_MAGIC = 16,                  /* int8, same place in every format */
    RECORDS_OFF_CRC = 17,                    /* uint32 CRC-32C of bytes 21..end */
    RECORDS_OFF_ATTRIBUTES = 21,             /* int16 */
    RECORDS_OFF_LAST_OFFSET_DELTA = 23,      /* int32 */
    RECORDS_OFF_BASE_TIMESTAMP = 27,         /* int64 */
    RECORDS_OFF_MAX_TIMESTAMP = 35,          /* int64 */
    RECORDS_OFF_PRODUCER_ID = 43,            /* int64 */
    RECORDS_OFF_PRODUCER_EPOCH = 51,         /* int16 */
    RECORDS_OFF_BASE_SEQUENCE = 53,          /* int32 */
    RECORDS_OFF_RECORD_COUNT = 57,           /* int32 */
    RECORDS_OFF_RECORDS = 61,                /* the records, compressed as a whole */
};

/* v2 batch attribute bits. */
#define RECORDS_ATTR_CODEC_MASK 0x07      /* compress.h codec number */
#define RECORDS_ATTR_LOG_APPEND_TIME 0x08 /* timestamp type: 0 CreateTime */
#define RECORDS_ATTR_TRANSACTIONAL 0x10
#define RECORDS_ATTR_CONTROL 0x20         /* one transaction marker record */
#define RECORDS_ATTR_DELETE_HORIZON 0x40  /* baseTimestamp is a delete horizon */

/* Legacy (magic 0/1) message attribute bits. */
#define RECORDS_LEGACY_ATTR_CODEC_MASK 0x07
#define RECORDS_LEGACY_ATTR_LOG_APPEND_TIME 0x08 /* magic 1 only */

/* Defaults used when a records_limits field is 0. */
#define RECORDS_DEFAULT_MAX_BATCH_BYTES 1048588 /* Kafka's message.max.bytes */
#define RECORDS_DEFAULT_MAX_DECOMPRESSED (64u << 20)

/* Caps for validation and conversion.  A zero field selects its default;
 * every function taking a `lim` also accepts NULL for all defaults (with
 * zstd allowed). */
struct records_limits {
    size_t max_batch_bytes;  /* message.max.bytes: a batch (or legacy message)
                                larger than this, 12-byte log overhead
                                included, is MESSAGE_TOO_LARGE */
    size_t max_decompressed; /* cap on the decompressed records of one batch
                                (and of all wrappers of one legacy set) */
    bool allow_zstd;         /* Produce v7+ / Fetch v10+ */
};

/* The header of a v2 batch, as parsed. */
struct records_batch_info {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the batchLength field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
    int codec;             /* attributes & RECORDS_ATTR_CODEC_MASK */
    bool is_transactional; /* RECORDS_ATTR_TRANSACTIONAL */
    bool is_control;       /* RECORDS_ATTR_CONTROL */
};

/* Parses the 61-byte header at p (borrowed) into out.  Checks only that
 * n >= RECORDS_V2_OVERHEAD (else returns -1); fields are taken as found,
 * even when magic is not 2.  Returns 0. */
int records_parse_header(const uint8_t *p, size_t n, struct records_batch_info *out);

/* Validates a produced records blob (Produce v3+): it must be exactly one
 * magic-2 batch.  Borrows blob, lim and scratch.  Returns a Kafka error code:
 *   INVALID_RECORD        magic != 2 (checked first when byte 16 exists)
 *   CORRUPT_MESSAGE       n < 61, batchLength < 49, or batch runs past n
 *   INVALID_RECORD        bytes after the batch (a second batch or garbage)
 *   MESSAGE_TOO_LARGE     n > lim->max_batch_bytes
 *   CORRUPT_MESSAGE       CRC-32C mismatch
 *   UNSUPPORTED_COMPRESSION_TYPE  codec 5..7, or zstd when !lim->allow_zstd
 *   INVALID_RECORD        control bit set (clients may not send markers)
 *   INVALID_RECORD        recordCount < 1 or lastOffsetDelta != recordCount-1
 *   MESSAGE_TOO_LARGE     records inflate past lim->max_decompressed
 *   INVALID_RECORD        compressed data corrupt, or any record malformed:
 *                         bad varint, offsetDelta != index, key/value length
 *                         < -1 or past the record, header count < 0 or more
 *                         than the bytes left allow, header key length < 0,
 *                         header value length < -1, record not ending at its
 *                         length, count mismatch, bytes after the last record
 *   UNKNOWN_SERVER_ERROR  out of memory while decompressing
 *   NONE                  valid; *info is filled (info may be NULL)
 * scratch (may be NULL: a temporary is used) receives the decompressed
 * records of a compressed batch; it is reset first and keeps its memory for
 * reuse.  Transactional batches and baseOffset values are not judged here. */
int records_validate_v2(const uint8_t *blob, size_t n, const struct records_limits *lim,
                        struct records_batch_info *info, struct obuf *scratch);

/* Writes baseOffset into a batch (borrowed, at least 8 bytes).  baseOffset
 * is outside the CRC, so the batch stays valid. */
void records_set_base_offset(uint8_t *batch, int64_t base_offset);

/* Writes partitionLeaderEpoch (outside the CRC).  batch needs 16 bytes. */
void records_set_partition_leader_epoch(uint8_t *batch, int32_t epoch);

/* Marks the batch (borrowed, n >= 61 bytes, the whole batch) as
 * LogAppendTime: sets the timestamp-type bit, writes ts as maxTimestamp and
 * recomputes the CRC, as Kafka does with message.timestamp.type=LogAppendTime. */
void records_set_log_append_time(uint8_t *batch, size_t n, int64_t ts);

/* Recomputes the CRC-32C of a whole batch of n >= 61 bytes (borrowed). */
void records_update_crc(uint8_t *batch, size_t n);

/* Iterates the v2 batches laid end to end in a byte range of a log or a
 * fetch (for fetch, recovery and down-conversion).  The range is borrowed
 * and must outlive the iterator. */
struct records_iter {
    const uint8_t *p; /* view: the range */
    size_t n;         /* its length */
    size_t pos;       /* offset of the next batch; where whole batches end
                         once iteration stops */
    bool check_crc;   /* verify each batch's CRC-32C (recovery) */
};

enum records_iter_result {
    RECORDS_ITER_BATCH = 1,      /* a whole batch was returned */
    RECORDS_ITER_END = 0,        /* the range ended exactly after a batch */
    RECORDS_ITER_TRUNCATED = -1, /* the range ends inside a batch (partial tail) */
    RECORDS_ITER_CORRUPT = -2,   /* batchLength < 49, magic != 2, or bad CRC */
};

void records_iter_init(struct records_iter *it, const uint8_t *p, size_t n, bool check_crc);

/* Returns RECORDS_ITER_BATCH with *info (may be NULL), *batch (a view into
 * the range) and *size (the batch's total bytes, batchLength + 12) set, and
 * it->pos advanced past it.  Otherwise returns one of the other results and
 * leaves it->pos at the first byte not part of a whole good batch; calling
 * again returns the same result. */
int records_iter_next(struct records_iter *it, struct records_batch_info *info, const uint8_t **batch,
                      size_t *size);

/* Gives the records section of a whole v2 batch (borrowed, n bytes, header
 * already judged sane by the caller).  For an uncompressed batch *body is a
 * view into batch; otherwise the records are decompressed into scratch
 * (borrowed, reset first, required) and *body is a view into scratch, valid
 * until scratch changes.  Returns NONE, CORRUPT_MESSAGE (n < 61),
 * UNSUPPORTED_COMPRESSION_TYPE (codec 5..7), MESSAGE_TOO_LARGE (past
 * lim->max_decompressed), INVALID_RECORD (corrupt compressed data) or
 * UNKNOWN_SERVER_ERROR (out of memory). */
int records_batch_body(const uint8_t *batch, size_t n, const struct records_limits *lim,
                       struct obuf *scratch, const uint8_t **body, size_t *body_len);

/* One record header: key is never null (key_len >= 0); value_len -1 is a
 * null value. */
struct records_header {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
};

/* One record, as read from a batch body.  Pointers are views into the body. */
struct records_record_view {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    const uint8_t *key; /* NULL when key_len == -1 */
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len == -1 */
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* header_count headers, read with records_header_next */
    size_t headers_len;
};

/* Reads the record at *p (a view into a body ending at end) with every
 * check records_validate_v2 makes except the offsetDelta order, fills *r and
 * advances *p past it.  Returns 0, or -1 when the record is malformed. */
int records_record_next(const uint8_t **p, const uint8_t *end, struct records_record_view *r);

/* Reads one header at *p (within a record's headers, ending at end) into *h
 * (views) and advances *p.  Returns 0 or -1.  Headers of a record that
 * records_record_next accepted always read back without error. */
int records_header_next(const uint8_t **p, const uint8_t *end, struct records_header *h);

/* A record to build.  Lengths of -1 mean null; pointers are borrowed. */
struct records_rec {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    int64_t timestamp;                     /* absolute, ms */
    const struct records_header *headers;  /* nheaders entries (key_len >= 0) */
    int nheaders;
};

/* Appends one v2 batch of recs[0..n) to out (borrowed), compressed with
 * codec: baseOffset 0, partitionLeaderEpoch -1, CreateTime, baseTimestamp
 * base_ts, maxTimestamp the largest record timestamp (base_ts when n == 0),
 * offsetDeltas 0..n-1, and a correct CRC-32C.  n may be 0 (an invalid batch,
 * for tests).  Returns 0, or a negative COMPRESS_E* (out->len restored). */
int records_build_v2(struct obuf *out, int codec, int64_t base_ts, const struct records_rec *recs, int n,
                     int64_t producer_id, int16_t epoch, int32_t base_sequence);

/* Converts a legacy MessageSet (Produce v0-2; magic 0 or 1 entries, any mix)
 * into ONE uncompressed magic-2 batch appended to out: baseOffset 0,
 * producerId/epoch/sequence -1, CreateTime.  Borrows msgset, lim, out.
 * Each message's CRC-32 (IEEE) and lengths are checked; compressed wrapper
 * messages (gzip, snappy, lz4) are unwrapped into their inner messages
 * (their inner offsets are ignored: the broker assigns offsets).
 * Timestamps: magic 0 records get -1 (NO_TIMESTAMP, as Kafka does); magic 1
 * records keep theirs, except that a message (or the wrapper of an inner
 * message) whose LogAppendTime bit is set gets now_ms.  Returns a Kafka code:
 *   CORRUPT_MESSAGE   truncated entry, size < minimum, CRC-32 mismatch,
 *                     key/value length < -1 or past the message, bytes left
 *                     inside a message
 *   INVALID_RECORD    magic not 0/1, an empty set, a wrapper with a null
 *                     value, nested compression, inner magic != wrapper
 *                     magic, corrupt compressed data
 *   UNSUPPORTED_COMPRESSION_TYPE  codec 4..7 (zstd needs magic 2)
 *   MESSAGE_TOO_LARGE  a message bigger than lim->max_batch_bytes, or the
 *                     wrappers inflate past lim->max_decompressed in total
 *   UNKNOWN_SERVER_ERROR  out of memory
 *   NONE              *info (may be NULL) describes the batch written.
 * On error out->len is restored. */
int records_upconvert(const uint8_t *msgset, size_t n, int64_t now_ms, const struct records_limits *lim,
                      struct obuf *out, struct records_batch_info *info);

/* Converts the v2 batches in batches[0..n) (as read from the log: possibly
 * compressed, possibly ending with a partial batch, which is dropped) into
 * an uncompressed legacy MessageSet of `magic` 0 or 1, appended to out, for
 * Fetch v0-3.  Each record becomes one message with its absolute offset
 * (baseOffset + offsetDelta); control batches are skipped; headers are
 * dropped; null keys and values stay null.  Magic 1 messages carry the
 * record timestamp (maxTimestamp and the LogAppendTime bit for
 * LogAppendTime batches).  CRCs of the input are not checked (the log
 * checked them on append and recovery).
 * Whole batches are converted while the output stays within
 * lim->max_decompressed, but at least the first batch is.  Borrows
 * everything; scratch (required, not the same obuf as out) is reset and
 * reused for decompression.
 * Returns a Kafka code:
 *   NONE              (possibly nothing appended, e.g. only a partial batch)
 *   CORRUPT_MESSAGE   the first batch is malformed (a later malformed batch
 *                     just ends the output, so the consumer gets what precedes it)
 *   UNSUPPORTED_FOR_MESSAGE_FORMAT  magic not 0 or 1
 *   MESSAGE_TOO_LARGE / UNSUPPORTED_COMPRESSION_TYPE / UNKNOWN_SERVER_ERROR
 *                     as records_batch_body, for the first batch
 * On error out->len is restored. */
int records_downconvert(const uint8_t *batches, size_t n, int magic, const struct records_limits *lim,
                        struct obuf *out, struct obuf *scratch);

#endif
