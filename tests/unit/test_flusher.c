/* test_flusher.c: the flush thread (storage/flusher.c): callbacks run only
 * from flusher_complete on the calling thread, oldest job first; jobs queued
 * while the thread is busy are synced together, one fdatasync per distinct
 * file; a descriptor that cannot be synced reports its errno to its job;
 * flusher_free runs what is pending; done may be NULL; an allocation
 * failure in submit closes the fds and never calls back.
 *
 * The thread is held inside its wake callback (a gate) to make the batching
 * deterministic: everything submitted while it is held is taken as one
 * batch when it is let go. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "storage/flusher.h"
#include "test.h"

/* ---- the wake side ----------------------------------------------------------- */

struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wakes;        /* wake calls so far */
    bool hold;        /* the next wake blocks until released */
    bool held;        /* the thread is blocked in wake */
    pthread_t thread; /* the thread wake ran on */
};

static struct waker W = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false, 0};

static void wake(void *arg)
{
    struct waker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->thread = pthread_self();
    w->wakes++;
    if (w->hold) {
        w->held = true;
        pthread_cond_broadcast(&w->cv);
        while (w->hold)
            pthread_cond_wait(&w->cv, &w->mu);
        w->held = false;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void deadline(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

/* Waits (10 s at most) until wake has been called n times. */
static void wait_wakes(int n)
{
    struct timespec ts;
    deadline(&ts, 10);
    pthread_mutex_lock(&W.mu);
    while (W.wakes < n) {
        int rc = pthread_cond_timedwait(&W.cv, &W.mu, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    int got = W.wakes;
    pthread_mutex_unlock(&W.mu);
    CHECK_EQ(got, n);
}

static void wait_held(void)
{
    struct timespec ts;
    deadline(&ts, 10);
    pthread_mutex_lock(&W.mu);
    while (!W.held && pthread_cond_timedwait(&W.cv, &W.mu, &ts) != ETIMEDOUT)
        ;
    bool held = W.held;
    pthread_mutex_unlock(&W.mu);
    CHECK(held);
}

static void set_hold(bool hold)
{
    pthread_mutex_lock(&W.mu);
    W.hold = hold;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

/* ---- the callback side --------------------------------------------------------- */

#define MAXJOBS 256

struct calls {
    int n;
    int order[MAXJOBS]; /* job numbers in callback order */
    int err[MAXJOBS];   /* by job number */
    int times[MAXJOBS]; /* by job number */
    bool off_thread;    /* a callback ran on another thread */
    pthread_t main;
};

static struct calls C;

struct job_arg {
    int id;
};

static struct job_arg ARGS[MAXJOBS];

static void done(void *arg, int err)
{
    struct job_arg *a = arg;
    if (!pthread_equal(pthread_self(), C.main))
        C.off_thread = true;
    CHECK(C.n < MAXJOBS);
    C.order[C.n++] = a->id;
    C.err[a->id] = err;
    C.times[a->id]++;
}

static void reset(void)
{
    memset(&C, 0, sizeof C);
    C.main = pthread_self();
    for (int i = 0; i < MAXJOBS; i++) {
        ARGS[i].id = i;
        C.err[i] = -1;
    }
}

static int open_file(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", test_tmpdir(), name);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "data", 4), 4);
    return fd;
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int submit1(struct flusher *f, int fd, int id)
{
    return flusher_submit(f, &fd, 1, done, &ARGS[id]);
}

static void *release_later(void *arg)
{
    (void)arg;
    usleep(100000);
    set_hold(false);
    return NULL;
}

/* ---- tests ------------------------------------------------------------------- */

TEST(flusher_callbacks_run_only_in_complete_on_caller)
{
    reset();
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log");
    CHECK_EQ(submit1(f, fd, 0), 0);
    wait_wakes(1);
    CHECK(!pthread_equal(W.thread, pthread_self())); /* wake came from the flush thread */
    usleep(20000);
    CHECK_EQ(C.n, 0); /* nothing ran before flusher_complete */
    CHECK_EQ(flusher_syncs(f), 1);
    CHECK(!fd_is_open(fd)); /* the fd was taken and closed */
    flusher_complete(f);
    CHECK_EQ(C.n, 1);
    CHECK_EQ(C.err[0], 0);
    CHECK_EQ(C.times[0], 1);
    CHECK(!C.off_thread);
    flusher_complete(f); /* nothing more */
    CHECK_EQ(C.n, 1);
    CHECK_EQ(C.times[0], 1);
    flusher_free(f);
    CHECK_EQ(C.n, 1);
    CHECK_EQ(C.times[0], 1);
}

TEST(flusher_group_commit_one_sync_per_file)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int x = open_file("x.log"), y = open_file("y.log"), z = open_file("z.log");
    /* job 0 alone: the thread syncs it and is then held in wake */
    CHECK_EQ(submit1(f, dup(x), 0), 0);
    wait_held();
    CHECK_EQ(flusher_syncs(f), 1);
    /* 40 jobs while it is held: each names x and y (new descriptors of the
     * same two files), every 10th also z */
    for (int j = 1; j <= 40; j++) {
        int fds[3] = {dup(x), dup(y), dup(z)};
        CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
        int n = j % 10 == 0 ? 3 : 2;
        if (n == 2)
            close(fds[2]);
        CHECK_EQ(flusher_submit(f, fds, n, done, &ARGS[j]), 0);
    }
    set_hold(false);
    wait_wakes(2);
    flusher_complete(f);
    CHECK_EQ(C.n, 41);
    for (int j = 0; j <= 40; j++) {
        CHECK_EQ(C.err[j], 0);
        CHECK_EQ(C.times[j], 1);
    }
    /* 1 for job 0, then x, y, z once each for the 40 jobs (84 fds) */
    CHECK_EQ(flusher_syncs(f), 4);
    CHECK(!C.off_thread);
    flusher_free(f);
    close(x);
    close(y);
    close(z);
}

TEST(flusher_reports_errors_of_bad_descriptors)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int good = open_file("good.log");
    CHECK_EQ(submit1(f, dup(good), 0), 0);
    wait_held();
    /* a closed descriptor number (high, so nothing reuses it meanwhile) */
    int closed = 900;
    close(closed);
    CHECK(!fd_is_open(closed));
    CHECK_EQ(submit1(f, closed, 1), 0);
    /* /dev/null cannot be synced (EINVAL), twice: one sync, both fail */
    int null1 = open("/dev/null", O_WRONLY | O_CLOEXEC), null2 = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(null1 >= 0 && null2 >= 0);
    CHECK_EQ(submit1(f, null1, 2), 0);
    CHECK_EQ(submit1(f, dup(good), 3), 0); /* a good job in the same batch */
    CHECK_EQ(submit1(f, null2, 4), 0);
    /* a job with a good file and a bad one: the error wins */
    int pair[2] = {dup(good), open("/dev/null", O_RDONLY | O_CLOEXEC)};
    CHECK_EQ(flusher_submit(f, pair, 2, done, &ARGS[5]), 0);
    /* a pipe cannot be synced either */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(submit1(f, p[0], 6), 0);
    set_hold(false);
    wait_wakes(2);
    flusher_complete(f);
    CHECK_EQ(C.n, 7);
    CHECK_EQ(C.err[0], 0);
    CHECK_EQ(C.err[1], EBADF);
    CHECK_EQ(C.err[2], EINVAL);
    CHECK_EQ(C.err[3], 0);
    CHECK_EQ(C.err[4], EINVAL);
    CHECK_EQ(C.err[5], EINVAL);
    CHECK_EQ(C.err[6], EINVAL);
    for (int j = 0; j < 7; j++)
        CHECK_EQ(C.times[j], 1);
    /* good (job 0), then good, /dev/null, the pipe: the closed fd has no
     * file to sync */
    CHECK_EQ(flusher_syncs(f), 4);
    CHECK(!fd_is_open(null1));
    CHECK(!fd_is_open(p[0]));
    close(p[1]);
    close(good);
    flusher_free(f);
}

TEST(flusher_free_runs_pending_callbacks)
{
    reset();
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log");
    for (int j = 0; j < 100; j++)
        CHECK_EQ(submit1(f, dup(fd), j), 0);
    flusher_free(f); /* no flusher_complete: free must still call back */
    CHECK_EQ(C.n, 100);
    for (int j = 0; j < 100; j++) {
        CHECK_EQ(C.times[j], 1);
        CHECK_EQ(C.err[j], 0);
    }
    CHECK(!C.off_thread);
    close(fd);
}

TEST(flusher_free_with_jobs_still_queued)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log");
    CHECK_EQ(submit1(f, dup(fd), 0), 0);
    wait_held();
    for (int j = 1; j < 30; j++)
        CHECK_EQ(submit1(f, dup(fd), j), 0);
    /* let the thread go only after free has started waiting for it */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, release_later, NULL), 0);
    flusher_free(f);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(C.n, 30);
    for (int j = 0; j < 30; j++) {
        CHECK_EQ(C.times[j], 1);
        CHECK_EQ(C.err[j], 0);
    }
    close(fd);
}

TEST(flusher_submit_without_callback)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log"), other = open_file("b.log");
    int a = dup(fd);
    CHECK_EQ(flusher_submit(f, &a, 1, NULL, NULL), 0);
    wait_held();
    int b = dup(other);
    CHECK_EQ(flusher_submit(f, &b, 1, NULL, NULL), 0);
    CHECK_EQ(submit1(f, dup(fd), 1), 0);
    int none[1];
    CHECK_EQ(flusher_submit(f, none, 0, done, &ARGS[2]), 0); /* no fds at all */
    set_hold(false);
    wait_wakes(2);
    flusher_complete(f);
    CHECK_EQ(C.n, 2);
    CHECK_EQ(C.times[1], 1);
    CHECK_EQ(C.times[2], 1);
    CHECK_EQ(C.err[1], 0);
    CHECK_EQ(C.err[2], 0);
    CHECK_EQ(flusher_syncs(f), 3); /* a.log, then b.log and a.log again */
    CHECK(!fd_is_open(a));
    CHECK(!fd_is_open(b));
    flusher_free(f);
    close(fd);
    close(other);
}

TEST(flusher_submit_out_of_memory_closes_fds)
{
    reset();
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log");
    int fds[2] = {dup(fd), dup(fd)};
    size_t base = alloc_live_bytes();
    alloc_fail_after(0);
    int rc = flusher_submit(f, fds, 2, done, &ARGS[0]);
    alloc_fail_after(-1);
    CHECK_EQ(rc, -1);
    CHECK_EQ(alloc_live_bytes(), base);
    CHECK(!fd_is_open(fds[0]));
    CHECK(!fd_is_open(fds[1]));
    CHECK_EQ(submit1(f, dup(fd), 1), 0);
    wait_wakes(1);
    flusher_complete(f);
    CHECK_EQ(C.n, 1);
    CHECK_EQ(C.order[0], 1);
    CHECK_EQ(C.times[0], 0);
    flusher_free(f);
    CHECK_EQ(C.n, 1);
    close(fd);
}

TEST(flusher_error_of_a_file_reaches_every_job_naming_it)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int good = open_file("g.log");
    CHECK_EQ(submit1(f, dup(good), 0), 0);
    wait_held();
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (int j = 1; j <= 20; j++) {
        int fds[2] = {dup(good), dup(null)};
        CHECK_EQ(flusher_submit(f, fds, 2, done, &ARGS[j]), 0);
    }
    close(null);
    set_hold(false);
    wait_wakes(2);
    flusher_complete(f);
    CHECK_EQ(C.n, 21);
    CHECK_EQ(C.err[0], 0);
    for (int j = 1; j <= 20; j++)
        CHECK_EQ(C.err[j], EINVAL);
    CHECK_EQ(flusher_syncs(f), 3);
    flusher_free(f);
    close(good);
}

/* flusher.c: "run callbacks oldest first".  Jobs synced in the same batch
 * must call back in the order they were submitted, like jobs of different
 * batches do. */
TEST(flusher_callbacks_run_oldest_first)
{
    reset();
    set_hold(true);
    struct flusher *f = flusher_new(wake, &W);
    CHECK(f != NULL);
    int fd = open_file("a.log");
    CHECK_EQ(submit1(f, dup(fd), 0), 0);
    wait_held();
    for (int j = 1; j <= 5; j++)
        CHECK_EQ(submit1(f, dup(fd), j), 0);
    set_hold(false);
    wait_wakes(2);
    flusher_complete(f);
    CHECK_EQ(C.n, 6);
    for (int j = 0; j <= 5; j++) {
        if (C.order[j] != j)
            fprintf(stderr, "  callback order: %d %d %d %d %d %d\n", C.order[0], C.order[1], C.order[2],
                    C.order[3], C.order[4], C.order[5]);
        CHECK_EQ(C.order[j], j);
    }
    flusher_free(f);
    close(fd);
}
