/* loop.h: a small epoll event loop with one-shot timers and a before-sleep
 * hook.  It knows nothing of Kafka.  Everything here runs on the loop thread;
 * other threads wake it with loop_wakeup(), which is safe from any thread. */
#ifndef SHOPSTREAM_LOOP_H
#define SHOPSTREAM_LOOP_H

#include <stdint.h>

struct loop;

enum {
    LOOP_READ = 1,
    LOOP_WRITE = 2,
};

/* Called with the mask of ready events (LOOP_READ|LOOP_WRITE, or both on
 * error/hangup so that the owner discovers it by reading). */
typedef void loop_io_fn(struct loop *l, int fd, int mask, void *arg);
typedef void loop_timer_fn(struct loop *l, void *arg);
typedef void loop_hook_fn(struct loop *l, void *arg);

/* Returns owned (loop_free), or NULL. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watches fd for mask; calling again changes the mask; mask 0 unwatches. */
int loop_watch(struct loop *l, int fd, int mask, loop_io_fn *fn, void *arg);
void loop_unwatch(struct loop *l, int fd);

/* A one-shot timer after ms milliseconds.  Returns an id > 0 for
 * loop_cancel, or -1 when out of memory. */
int64_t loop_timer(struct loop *l, int64_t ms, loop_timer_fn *fn, void *arg);
void loop_cancel(struct loop *l, int64_t id);

/* Called once per iteration before the loop waits. */
void loop_set_before_sleep(struct loop *l, loop_hook_fn *fn, void *arg);
/* Called on the loop thread after another thread's loop_wakeup(). */
void loop_set_on_wakeup(struct loop *l, loop_hook_fn *fn, void *arg);
/* Any thread: makes the loop run its wakeup hook soon. */
void loop_wakeup(struct loop *l);

/* Runs until loop_stop. */
void loop_run(struct loop *l);
/* Loop thread, or a signal handler: the loop returns after this iteration. */
void loop_stop(struct loop *l);

#endif
