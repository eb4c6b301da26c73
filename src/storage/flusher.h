/* flusher.h: the flush thread.  The loop hands it flush jobs (segment fds to
 * fdatasync, and a callback); the thread takes every job queued so far,
 * syncs each distinct file once (group commit: many batches and partitions,
 * one fsync per file), and hands the jobs back.  Callbacks run on the loop
 * thread, from flusher_complete(), which the loop calls when woken. */
#ifndef SHOPSTREAM_FLUSHER_H
#define SHOPSTREAM_FLUSHER_H

#include <stdint.h>

#define FLUSH_MAX_FDS 64

struct flusher;

/* Runs on the loop thread; err is 0 or an errno from fdatasync. */
typedef void flush_done_fn(void *arg, int err);

/* wake(arg) is called from the flush thread when jobs are done; it must be
 * thread-safe (the broker passes loop_wakeup).  Returns owned or NULL. */
struct flusher *flusher_new(void (*wake)(void *), void *wake_arg);
/* Stops the thread after the queued jobs are done, runs their callbacks,
 * frees. */
void flusher_free(struct flusher *f);

/* Loop thread: queues a job of at most FLUSH_MAX_FDS fds.  Takes the fds
 * (closes them).  done may be NULL for a flush nobody waits for.  Returns 0,
 * or -1 (out of memory, or too many fds: the fds are closed and done is not
 * called). */
int flusher_submit(struct flusher *f, const int *fds, int nfds, flush_done_fn *done, void *arg);

/* Loop thread: runs the callbacks of finished jobs. */
void flusher_complete(struct flusher *f);

/* Any thread: fsyncs done so far (for metrics and tests). */
uint64_t flusher_syncs(struct flusher *f);

/* Called on the flush thread after each fdatasync with how long it took,
 * in nanoseconds (the broker feeds its flush latency histogram).  Any
 * thread; fn (may be NULL: none) must be quick and thread-safe. */
typedef void flush_observe_fn(void *arg, int64_t ns);
void flusher_set_observer(struct flusher *f, flush_observe_fn *fn, void *arg);

#endif
