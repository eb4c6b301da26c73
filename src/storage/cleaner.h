/* cleaner.h: log compaction (cleanup.policy=compact) on the "cleaner"
 * thread.  For one partition at a time it keeps only the latest record of
 * each key among the sealed segments: a first pass maps every key of the
 * dirty part (records since the last cleaning) to its latest offset, a
 * second pass rewrites each sealed segment without the records a later one
 * replaced, and without tombstones (null values) older than
 * delete.retention.ms.  Offsets never change: kept records keep their batch's
 * base offset and their offset deltas, so a rewritten batch only loses
 * records.  The active segment is never touched.
 *
 * Each rewritten segment is written beside the original as
 * <base>.log.cleaned; the loop thread swaps it in (cleaner_finish): index
 * files go first, then an atomic rename, so a crash at any point leaves
 * either the old or the new segment, and missing indexes are rebuilt.
 * The partition remembers the first offset not yet cleaned in
 * <partition dir>/cleaner-offset.  */
#ifndef SHOPSTREAM_CLEANER_H
#define SHOPSTREAM_CLEANER_H

#include <stdint.h>

struct plog;
struct cleaner;

/* wake(arg) is called from the cleaner thread when a job is done (the
 * broker passes loop_wakeup).  Returns owned (cleaner_free) or NULL. */
struct cleaner *cleaner_new(void (*wake)(void *), void *wake_arg);
/* Stops the thread; a job in progress is abandoned (its temp files removed). */
void cleaner_free(struct cleaner *c);

/* Loop thread: if the partition is compacted, has sealed segments past its
 * cleaner offset, and its dirty ratio reaches min.cleanable.dirty.ratio,
 * queues a job for it.  Returns 1 if queued, 0 if not needed or busy. */
int cleaner_maybe_schedule(struct cleaner *c, struct plog *l, int64_t now_ms);
/* Loop thread: swaps in the results of finished jobs. */
void cleaner_finish(struct cleaner *c);
/* Loop thread: a partition is going away; forget its pending job. */
void cleaner_forget(struct cleaner *c, struct plog *l);

/* Any thread: bytes removed so far, for metrics and tests. */
int64_t cleaner_bytes_removed(struct cleaner *c);

/* Runs one whole cleaning of l on the calling thread (tests). */
int cleaner_clean_now(struct plog *l, int64_t now_ms);

#endif
