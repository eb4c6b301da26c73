/* partition_log.h: the log of one topic partition: an ordered list of
 * segments in one directory, the offsets (log start, log end), append with
 * segment roll by size and age, reads that return file ranges for sendfile,
 * lookups by timestamp, and recovery when opened after a crash.
 * Runs on the loop thread.  The flush thread only fsyncs fds handed to it. */
#ifndef SHOPSTREAM_PARTITION_LOG_H
#define SHOPSTREAM_PARTITION_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/epoch_cache.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/topic_config.h"

struct plog {
    char *dir;                  /* owned */
    struct segment **segs;      /* owned, by base offset; the last is active */
    int nsegs, capsegs;
    int64_t log_start_offset;   /* first offset still in the log */
    int64_t next_offset;        /* log end offset (LEO) = high watermark */
    int64_t unflushed;          /* records appended since the last flush */
    int64_t last_flush_ms;      /* wall time of the last flush request */
    const struct topic_settings *settings; /* borrows the topic's settings */
    struct pstate producers;    /* idempotent producers seen on this partition */
    struct ecache epochs;       /* leader epoch -> start offset (OffsetForLeaderEpoch) */
    int64_t cleaner_offset;     /* compaction: the first offset not yet cleaned */
    int64_t recovery_point;     /* offsets below it are known to be fsynced */
    int64_t checkpoint_target;  /* what the checkpoint flush under way covers */
    uint64_t checkpoint_token;  /* which checkpoint flush that is (0: none) */
    bool cleaning;              /* a compaction job for it is under way */
};

/* A byte range of a segment file that holds whole batches from the one
 * containing the requested offset (the last one may be cut by max bytes). */
struct plog_slice {
    int fd;          /* view: valid while the segment lives; dup() to keep */
    int64_t pos;
    int32_t len;     /* 0 when the offset is the log end */
};

/* Opens (or creates) the log in dir.  `clean` says the broker shut down
 * cleanly; otherwise the active segment is checked batch by batch and cut at
 * the first bad batch.  Returns owned (plog_close) or NULL. */
struct plog *plog_open(const char *dir, const struct topic_settings *settings, bool clean);
/* Seals the active segment (index files) and frees everything. */
void plog_close(struct plog *l);
/* Closes and removes all files and the directory. */
void plog_destroy(struct plog *l);

/* Appends one validated v2 batch of n bytes: writes the next offset into
 * its baseOffset (the buffer is modified) and appends it.  Returns 0 with
 * the assigned base offset, or -1 (errno) leaving the log unchanged.
 * A batch whose partitionLeaderEpoch is >= 0 and above the latest epoch in
 * the epoch cache starts that epoch there (ecache_assign, which fsyncs the
 * checkpoint file: once per leader change). */
int plog_append(struct plog *l, uint8_t *batch, size_t n, int64_t now_ms, int64_t *base_offset);

/* A follower's append: the batch (borrowed, the leader's bytes verbatim)
 * keeps its own offsets.  Its header is checked (n >= 61, magic 2,
 * batchLength + 12 == n, lastOffsetDelta >= 0, CRC-32C) and its baseOffset
 * must be the log end; a compacted log (cleanup.policy compact) also takes
 * a baseOffset above the log end, as the leader's cleaned log has gaps.
 * Producer state and the epoch cache are updated as by plog_append.
 * Returns 0, or -1 with errno EINVAL (wrong baseOffset), EBADMSG (bad
 * header or CRC), or a write error; the log is then unchanged. */
int plog_append_replica(struct plog *l, const uint8_t *batch, size_t n, int64_t now_ms);

/* Writes the leader's epoch into a v2 batch (at least 16 bytes) before
 * plog_append.  partitionLeaderEpoch (bytes 12..15) lies outside the CRC,
 * so the batch stays valid. */
void plog_stamp_leader_epoch(uint8_t *batch, int32_t epoch);

/* A follower cuts its divergent tail (Kafka's Log.truncateTo): every batch
 * whose last offset >= offset goes, a batch straddling offset entirely, so
 * the log end becomes the base offset of the first batch removed (the end
 * of the last batch kept: the same in a log without offset gaps); nothing
 * changes when no batch reaches offset.  Whole segments above the cut are
 * deleted, the one holding it is cut and becomes the active segment.  The
 * recovery point, cleaner offset, producer state (rebuilt by rereading the
 * log from its start: O(log size)) and epoch cache follow.  When offset <=
 * the log start offset, or nothing visible would remain, this is
 * plog_truncate_fully.  Durable when it returns (files and directory
 * fsynced), so that a crash cannot bring the cut data back.  fsyncs on the
 * loop thread.  Returns 0, or -1 with errno: EINVAL for offset < 0; an I/O
 * error, after which the log must not be used further (close it; opening
 * it again recovers a consistent log). */
int plog_truncate_to(struct plog *l, int64_t offset);

/* Empties the log and restarts it at new_start, which becomes both the log
 * start and the log end (Kafka's truncateFullyAndStartAt): every segment
 * is deleted, producer state and epoch cache are cleared.  Durable when it
 * returns.  Returns 0 or -1 with errno, as plog_truncate_to. */
int plog_truncate_fully(struct plog *l, int64_t new_start);

/* For an idempotent batch (producer id >= 0): PSTATE_APPEND, or
 * PSTATE_DUPLICATE with the original offsets (the batch must not be written
 * again), or a negative Kafka error code.  See producer_state.h. */
int plog_check_producer(const struct plog *l, const uint8_t *batch, size_t n, int64_t *dup_base_offset,
                        int32_t *dup_last_offset_delta);

/* Finds the data at offset, at most max_bytes; when the first batch alone is
 * bigger, all of it if min_one is set, else nothing.  Returns 0 (len 0 at
 * the log end) or KERR_OFFSET_OUT_OF_RANGE. */
int plog_read(const struct plog *l, int64_t offset, int32_t max_bytes, bool min_one, struct plog_slice *out);

/* The first offset whose record timestamp is >= ts, and that record's
 * timestamp in *found_ts; -1 when no record is that late. */
int64_t plog_offset_for_time(const struct plog *l, int64_t ts, int64_t *found_ts);

/* Deletes whole segments past retention.ms (by their largest timestamp) or
 * beyond retention.bytes, when cleanup.policy has delete; the active
 * segment is rolled first when all of it has expired.  Moves the log start
 * offset.  Returns the number of segments deleted. */
int plog_apply_retention(struct plog *l, int64_t now_ms);

/* Moves the log start offset up to offset (DeleteRecords), deleting the
 * segments wholly below it.  Returns 0 or KERR_OFFSET_OUT_OF_RANGE. */
int plog_delete_records(struct plog *l, int64_t offset);

/* Rolls the active segment if it is older than segment.ms. */
void plog_maybe_roll_by_age(struct plog *l, int64_t now_ms);

/* The fds of segments written since the last call (at most max; dup()ed,
 * the caller closes them), for the flush thread.  Resets `unflushed`. */
int plog_take_dirty_fds(struct plog *l, int *fds, int max, int64_t now_ms);

/* Calls fn for every whole batch from the one holding offset `from` to the
 * log end, in order (start-up replay of internal topics, compaction).  The
 * batch is a view valid during the call.  Stops early when fn returns
 * non-zero and returns that value; returns -1 on a read error, else 0. */
int plog_for_each_batch(const struct plog *l, int64_t from,
                        int (*fn)(void *arg, const uint8_t *batch, size_t n), void *arg);

/* Compaction: replaces sealed segment k by the file <its path>.log.cleaned
 * (written by the cleaner): index files first, then an atomic rename, then
 * the new indexes.  Returns 0 or -1 (the old segment stays). */
int plog_replace_segment(struct plog *l, int k, const char *path);

/* Records that offsets below `offset` are fsynced, in <dir>/recovery-point
 * (written atomically).  Returns 0 or -1. */
int plog_save_recovery_point(struct plog *l, int64_t offset);
/* The fds (dup()ed, at most max) of segments with data past the recovery
 * point, for a checkpoint flush. */
int plog_take_unsynced_fds(struct plog *l, int *fds, int max);

/* Total bytes of all segments. */
int64_t plog_size(const struct plog *l);

#endif
