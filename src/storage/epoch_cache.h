/* epoch_cache.h: a partition's leader epoch cache (Kafka's
 * LeaderEpochFileCache): for each leader epoch, the first offset written in
 * it.  It answers OffsetForLeaderEpoch, with which a follower finds where
 * its log diverges from the leader's, and it is cut together with the log
 * (tail truncation, retention, DeleteRecords).  Building it from appended
 * batches and cutting it with the log is partition_log.c's job.
 *
 * Persisted in <partition dir>/leader-epoch-checkpoint in Apache Kafka's
 * text format, so that a data directory can be compared with Kafka's:
 *   line 1   the version, 0
 *   line 2   the number of entries
 *   then     one "<epoch> <startOffset>" line per entry, oldest first
 * Every change rewrites the whole file atomically (temporary file, fsync,
 * rename, fsync of the directory) before the call returns.
 * Invariant: epochs and start offsets both strictly increase.
 * Loop thread only. */
#ifndef SHOPSTREAM_EPOCH_CACHE_H
#define SHOPSTREAM_EPOCH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* The checkpoint file's name inside the partition directory. */
#define ECACHE_FILE_NAME "leader-epoch-checkpoint"
/* A checkpoint file larger than this is treated as corrupt (a real one has
 * one short line per leader change). */
#define ECACHE_MAX_FILE_BYTES (4 * 1024 * 1024)

/* Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET. */
#define ECACHE_UNDEFINED_EPOCH (-1)
#define ECACHE_UNDEFINED_OFFSET (-1)

struct epoch_entry {
    int32_t epoch;        /* a leader epoch, >= 0 */
    int64_t start_offset; /* the first offset written in that epoch */
};

struct ecache {
    char *path;            /* owned: <dir>/leader-epoch-checkpoint */
    struct epoch_entry *e; /* owned: n entries, oldest first */
    int n, cap;
    bool unsaved;          /* memory is ahead of the file (a write failed) */
};

/* Loads the cache of the partition in dir.  A missing file gives an empty
 * cache; an unreadable or corrupt one too, with a warning (the leader's
 * epochs are recorded again as its batches are appended).  Returns 0, or
 * -1 when out of memory (c is then empty and may be closed). */
int ecache_open(struct ecache *c, const char *dir);
/* Frees memory; the file stays as it is. */
void ecache_close(struct ecache *c);

/* Records that `epoch` starts at start_offset (Kafka's assign): ignored when
 * epoch is below the latest epoch, or equal to it with a start that is not
 * earlier.  Otherwise the entries it contradicts (epoch >= epoch or start
 * offset >= start_offset) are dropped first, then it is added.  Persists
 * before returning.  Returns 0; or -1 with errno: EINVAL for a negative
 * argument (nothing changes), or a write error (memory is updated, the file
 * is rewritten by the next change or ecache_save). */
int ecache_assign(struct ecache *c, int32_t epoch, int64_t start_offset);

/* The latest epoch, or -1 when the cache is empty. */
int32_t ecache_latest_epoch(const struct ecache *c);

/* OffsetForLeaderEpoch: the end offset of `epoch` in a log ending at
 * log_end, as (*out_epoch, *out_end):
 *   epoch < 0, empty cache, epoch > latest    (-1, -1)
 *   epoch == latest                           (latest, log_end)
 *   epoch < the first cached epoch            (-1, -1)
 *   otherwise                                 (the largest cached epoch
 *                                              <= epoch, the start offset of
 *                                              the first cached epoch > epoch)
 * Note: since Kafka 2.1 (KIP-320) Kafka answers an epoch older than the
 * first cached one with (epoch, start of the first cached epoch) instead of
 * (-1, -1); see the comment in epoch_cache.c. */
void ecache_end_offset_for(const struct ecache *c, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                           int64_t *out_end);

/* Drops the entries with start_offset >= end_offset (the log was cut
 * there).  Persists when something changed.  Returns 0 or -1 (as above). */
int ecache_truncate_from_end(struct ecache *c, int64_t end_offset);
/* The log now starts at start_offset: of the entries starting at or below
 * it only the last is kept, its start moved up to start_offset.  Persists
 * when something changed.  Returns 0 or -1 (as above). */
int ecache_truncate_from_start(struct ecache *c, int64_t start_offset);
/* Drops every entry and persists (an empty log).  Returns 0 or -1. */
int ecache_clear(struct ecache *c);
/* Rewrites the file from memory.  Returns 0 or -1 with errno. */
int ecache_save(struct ecache *c);

#endif
