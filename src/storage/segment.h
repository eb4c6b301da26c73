/* segment.h: one log segment: a file of record batches laid end to end
 * exactly as producers sent them (with broker-assigned baseOffset), plus a
 * sparse offset index and a time index kept in memory and written beside it
 * as <base>.index and <base>.timeindex when the segment is sealed.
 *
 * On-disk formats (all big-endian):
 *   <base>.log        RecordBatch v2 entries (shared/kafka-protocol/README.md)
 *   <base>.index      entries of u32 offset-minus-base, u32 file position
 *   <base>.timeindex  entries of i64 max-timestamp-so-far, u32 offset-minus-base
 * <base> is the segment's first offset as 20 decimal digits, as in Kafka.
 * Runs on the loop thread, except seg_fsync (flush thread).  seg_truncate
 * fsyncs on the loop thread (a follower's truncation, rare). */
#ifndef SHOPSTREAM_SEGMENT_H
#define SHOPSTREAM_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seg_index_entry {
    uint32_t rel_offset; /* batch base offset minus segment base */
    uint32_t pos;        /* byte position of that batch in the .log file */
};

struct seg_time_entry {
    int64_t timestamp;   /* largest record timestamp up to this batch */
    uint32_t rel_offset; /* base offset of the batch, minus segment base */
};

struct segment {
    uint64_t id;            /* unique in the process: tells two opened segments
                               apart; renewed when seg_truncate cuts it */
    int64_t base_offset;    /* first offset this segment may hold */
    int64_t next_offset;    /* one past the last offset written */
    int fd;                 /* the .log file, open read-write */
    int64_t size;           /* bytes in the .log file */
    int64_t created_ms;     /* wall time of the first append (segment.ms) */
    int64_t max_timestamp;  /* largest batch maxTimestamp, -1 if none */
    int64_t last_batch_base; /* base offset of the last batch, -1 if none */
    struct seg_index_entry *idx;
    int nidx, capidx;
    struct seg_time_entry *tidx;
    int ntidx, captidx;
    int64_t bytes_since_index; /* bytes appended since the last index entry */
    bool sealed;            /* no more appends; index files written */
    char *path;             /* owned: "<dir>/<base>" without extension */
};

/* Creates an empty segment file.  Returns owned (seg_close) or NULL. */
struct segment *seg_create(const char *dir, int64_t base_offset);
/* Opens an existing segment.  When `scan` is set, or its index files are
 * missing or inconsistent, the log is read batch by batch (length, magic,
 * CRC-32C, increasing offsets) and cut after the last whole valid batch;
 * the indexes are rebuilt.  *truncated is set to the bytes cut. */
struct segment *seg_open(const char *dir, int64_t base_offset, bool scan, int64_t *truncated);
/* The same; with `contiguous`, a scan also requires every batch to start
 * exactly where the previous one ended (true of every log that is not
 * compacted), so that damage to a base offset, which the CRC does not
 * cover, is caught. */
struct segment *seg_open_checked(const char *dir, int64_t base_offset, bool scan, bool contiguous,
                                 int64_t *truncated);
void seg_close(struct segment *s);
/* Closes and removes the files. */
void seg_delete(struct segment *s);

/* Appends one batch (already carrying its offsets).  Returns 0 or -1 with
 * errno set; a failed append leaves the file as it was. */
int seg_append(struct segment *s, const uint8_t *batch, size_t n, int64_t last_offset,
               int64_t max_timestamp, int32_t index_interval);
/* Writes the index files and marks the segment sealed. */
int seg_seal(struct segment *s);
/* Flush thread: fdatasync the log file. */
int seg_fsync(int fd);

/* The file position of the batch containing `offset` (a batch whose last
 * offset >= offset), and that batch's size.  Returns 0, or -1 when no such
 * batch is in this segment. */
int seg_find(const struct segment *s, int64_t offset, int64_t *pos, int32_t *batch_size);
/* The position of the first batch whose maxTimestamp >= ts, its base
 * offset.  Returns 0 or -1 when none. */
int seg_find_time(const struct segment *s, int64_t ts, int64_t *pos, int64_t *base_offset);

/* Where a cut at `offset` falls: the position and base offset of the first
 * batch whose last offset >= offset.  Returns 0; 1 when every batch ends
 * below offset (*pos = size, *batch_base = -1); -1 (errno EIO) when a batch
 * header on the way is damaged. */
int seg_locate(const struct segment *s, int64_t offset, int64_t *pos, int64_t *batch_base);
/* Cuts the segment at byte pos, which must be where a batch starts (from
 * seg_locate) or the size, and makes it the appendable active segment:
 * next_offset becomes one past its last batch (the base offset when
 * empty), the in-memory indexes and the largest timestamp are cut to
 * match.  When bytes are cut, the index files are removed first (they are
 * written again when it is sealed) and the directory synced, then the log
 * is ftruncate'd and fsynced, and the segment gets a new id.  Returns 0, or
 * -1 with errno (EINVAL: pos is not a batch boundary; the segment is
 * unchanged in memory). */
int seg_truncate(struct segment *s, int64_t pos);

#endif
