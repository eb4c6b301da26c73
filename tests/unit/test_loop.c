/* test_loop.c: the event loop (broker/loop.c): timers in deadline order,
 * cancellation, the before-sleep hook, wakeups from another thread, and
 * fd watches.  Each test arms alarm() so a loop that never returns fails
 * in seconds instead of hanging the run. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/loop.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "test.h"

static int fired[32];
static int nfired;

static void record(struct loop *l, void *arg)
{
    (void)l;
    fired[nfired++] = (int)(intptr_t)arg;
}

static void record_and_stop(struct loop *l, void *arg)
{
    record(l, arg);
    loop_stop(l);
}

static void fail_timer(struct loop *l, void *arg)
{
    (void)l;
    fprintf(stderr, "  guard timer %s fired\n", (const char *)arg);
    exit(1);
}

TEST(loop_timers_fire_in_deadline_order)
{
    alarm(10);
    struct loop *l = loop_new();
    CHECK(l);
    int64_t start = clock_mono_ms();
    CHECK(loop_timer(l, 60, record, (void *)6) > 0);
    CHECK(loop_timer(l, 20, record, (void *)2) > 0);
    CHECK(loop_timer(l, 0, record, (void *)0) > 0);
    CHECK(loop_timer(l, 40, record, (void *)4) > 0);
    CHECK(loop_timer(l, -5, record, (void *)1) > 0); /* negative: as soon as possible */
    CHECK(loop_timer(l, 30, record, (void *)3) > 0);
    CHECK(loop_timer(l, 80, record_and_stop, (void *)8) > 0);
    loop_run(l);
    int64_t took = clock_mono_ms() - start;
    CHECK_EQ(nfired, 7);
    /* 0 and -5 share a deadline; the rest are strictly ordered */
    CHECK((fired[0] == 0 && fired[1] == 1) || (fired[0] == 1 && fired[1] == 0));
    CHECK_EQ(fired[2], 2);
    CHECK_EQ(fired[3], 3);
    CHECK_EQ(fired[4], 4);
    CHECK_EQ(fired[5], 6);
    CHECK_EQ(fired[6], 8);
    CHECK(took >= 80);
    CHECK(took < 2000);
    loop_free(l);
}

TEST(loop_timer_ids_are_distinct)
{
    struct loop *l = loop_new();
    int64_t prev = 0;
    for (int i = 0; i < 200; i++) {
        int64_t id = loop_timer(l, 1000 + i, record, NULL);
        CHECK(id > prev);
        prev = id;
    }
    loop_free(l); /* pending timers are simply dropped */
}

static int64_t cancel_me;

static void cancel_other(struct loop *l, void *arg)
{
    record(l, arg);
    loop_cancel(l, cancel_me);
}

TEST(loop_cancel_timers)
{
    alarm(10);
    struct loop *l = loop_new();
    int64_t a = loop_timer(l, 10, record, (void *)1);
    int64_t b = loop_timer(l, 20, record, (void *)2);
    loop_timer(l, 30, record, (void *)3);
    loop_timer(l, 60, record_and_stop, (void *)9);
    loop_cancel(l, b);
    loop_cancel(l, b);      /* twice: harmless */
    loop_cancel(l, 987654); /* unknown id: harmless */
    /* a timer cancelled by another timer's callback does not fire */
    loop_timer(l, 5, cancel_other, (void *)5);
    cancel_me = loop_timer(l, 40, record, (void *)4);
    (void)a;
    loop_run(l);
    CHECK_EQ(nfired, 4);
    CHECK_EQ(fired[0], 5);
    CHECK_EQ(fired[1], 1);
    CHECK_EQ(fired[2], 3);
    CHECK_EQ(fired[3], 9);
    loop_cancel(l, a); /* already fired: harmless */
    loop_free(l);
}

TEST(loop_cancel_keeps_heap_order)
{
    alarm(10);
    struct loop *l = loop_new();
    int64_t ids[20];
    /* deadlines 5, 10, ..., 100 ms added in a scrambled order */
    static const int order[20] = {7, 3, 15, 0, 19, 11, 5, 1, 13, 9, 17, 2, 8, 14, 4, 18, 6, 10, 16, 12};
    for (int i = 0; i < 20; i++)
        ids[order[i]] = loop_timer(l, 5 * (order[i] + 1), record, (void *)(intptr_t)order[i]);
    /* cancel every third */
    for (int k = 0; k < 20; k += 3)
        loop_cancel(l, ids[k]);
    loop_timer(l, 150, record_and_stop, (void *)31);
    loop_run(l);
    int want = 0;
    for (int k = 0; k < 20; k++)
        if (k % 3 != 0)
            CHECK_EQ(fired[want++], k);
    CHECK_EQ(fired[want++], 31);
    CHECK_EQ(nfired, want);
    loop_free(l);
}

static int sleeps;

static void count_sleeps(struct loop *l, void *arg)
{
    (void)arg;
    sleeps++;
    /* the hook may arm a timer: the wait that follows must honour it */
    if (sleeps == 1)
        loop_timer(l, 0, record_and_stop, (void *)7);
}

TEST(loop_before_sleep_runs_each_iteration)
{
    alarm(5);
    struct loop *l = loop_new();
    loop_set_before_sleep(l, count_sleeps, NULL);
    loop_run(l);
    CHECK_EQ(nfired, 1);
    CHECK_EQ(fired[0], 7);
    CHECK_EQ(sleeps, 1);
    loop_free(l);
}

static int chain_left, hook_calls;

static void chain(struct loop *l, void *arg)
{
    (void)arg;
    if (--chain_left == 0)
        loop_stop(l);
    else
        loop_timer(l, 2, chain, NULL);
}

static void count_only(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    hook_calls++;
}

TEST(loop_before_sleep_once_per_wait)
{
    alarm(5);
    struct loop *l = loop_new();
    loop_set_before_sleep(l, count_only, NULL);
    chain_left = 5;
    loop_timer(l, 2, chain, NULL);
    loop_run(l);
    /* five timers, each after its own wait: one hook call per wait (a wait
     * can end early on a spurious wakeup, so allow a few more) */
    CHECK(hook_calls >= 5);
    CHECK(hook_calls <= 10);
    loop_free(l);
}

static pthread_t loop_thread;
static int wakeups;

static void on_wakeup(struct loop *l, void *arg)
{
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(arg == (void *)&wakeups);
    wakeups++;
    loop_stop(l);
}

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 30 * 1000000};
    nanosleep(&ts, NULL);
    loop_wakeup(arg);
    return NULL;
}

TEST(loop_wakeup_from_another_thread)
{
    alarm(10);
    struct loop *l = loop_new();
    loop_thread = pthread_self();
    loop_set_on_wakeup(l, on_wakeup, &wakeups);
    loop_timer(l, 5000, fail_timer, "wakeup");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wake_later, l), 0);
    int64_t start = clock_mono_ms();
    loop_run(l);
    CHECK_EQ(wakeups, 1);
    CHECK(clock_mono_ms() - start < 4000);
    pthread_join(t, NULL);
    loop_free(l);
}

static void *wake_many(void *arg)
{
    for (int i = 0; i < 1000; i++)
        loop_wakeup(arg);
    return NULL;
}

static void count_wakeup(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    wakeups++;
}

static void stop_if_woken(struct loop *l, void *arg)
{
    (void)arg;
    if (wakeups > 0)
        loop_stop(l);
    else
        loop_timer(l, 5, stop_if_woken, NULL);
}

TEST(loop_many_wakeups_coalesce)
{
    alarm(10);
    struct loop *l = loop_new();
    loop_set_on_wakeup(l, count_wakeup, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, wake_many, l), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    loop_timer(l, 0, stop_if_woken, NULL);
    loop_run(l);
    /* 4000 wakeups were written; the hook ran at least once, and they are
     * folded into few calls rather than one each */
    CHECK(wakeups >= 1);
    CHECK(wakeups < 100);
    loop_free(l);
}

static int io_calls, io_mask;
static char io_buf[64];

static void on_readable(struct loop *l, int fd, int mask, void *arg)
{
    (void)arg;
    io_calls++;
    io_mask = mask;
    ssize_t n = read(fd, io_buf, sizeof io_buf - 1);
    if (n > 0)
        io_buf[n] = 0;
    loop_stop(l);
}

static void on_writable(struct loop *l, int fd, int mask, void *arg)
{
    (void)fd;
    (void)arg;
    io_calls++;
    io_mask = mask;
    loop_stop(l);
}

TEST(loop_watch_read_and_write)
{
    alarm(10);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct loop *l = loop_new();
    CHECK_EQ(loop_watch(l, sv[0], LOOP_READ, on_readable, NULL), 0);
    loop_timer(l, 5000, fail_timer, "read");
    CHECK_EQ(write(sv[1], "ping", 4), 4);
    loop_run(l);
    CHECK_EQ(io_calls, 1);
    CHECK_EQ(io_mask, LOOP_READ);
    CHECK(strcmp(io_buf, "ping") == 0);
    loop_free(l);
    /* an idle socket is writable (a new loop: a stopped loop stays stopped) */
    l = loop_new();
    io_calls = 0;
    CHECK_EQ(loop_watch(l, sv[0], LOOP_WRITE, on_writable, NULL), 0);
    loop_run(l);
    CHECK_EQ(io_calls, 1);
    CHECK_EQ(io_mask, LOOP_WRITE);
    loop_unwatch(l, sv[0]);
    loop_unwatch(l, sv[0]); /* twice: harmless */
    loop_unwatch(l, 100000); /* never watched: harmless */
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void must_not_run(struct loop *l, int fd, int mask, void *arg)
{
    (void)l;
    (void)fd;
    (void)arg;
    fprintf(stderr, "  io callback ran with mask %d\n", mask);
    exit(1);
}

TEST(loop_unwatch_and_mask_zero_stop_events)
{
    alarm(10);
    int sv[2], sw[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sw), 0);
    struct loop *l = loop_new();
    CHECK_EQ(loop_watch(l, sv[0], LOOP_READ, must_not_run, NULL), 0);
    loop_unwatch(l, sv[0]);
    CHECK_EQ(loop_watch(l, sw[0], LOOP_READ, must_not_run, NULL), 0);
    CHECK_EQ(loop_watch(l, sw[0], 0, must_not_run, NULL), 0); /* paused */
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(write(sw[1], "y", 1), 1);
    loop_timer(l, 50, record_and_stop, (void *)1);
    loop_run(l);
    CHECK_EQ(nfired, 1);
    loop_free(l);
    /* the data is still there for a watch that asks for it */
    l = loop_new();
    CHECK_EQ(loop_watch(l, sw[0], LOOP_READ, on_readable, NULL), 0);
    loop_run(l);
    CHECK_EQ(io_calls, 1);
    CHECK(strcmp(io_buf, "y") == 0);
    close(sv[0]);
    close(sv[1]);
    close(sw[0]);
    close(sw[1]);
    loop_free(l);
}

TEST(loop_hangup_reported_as_read)
{
    alarm(10);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct loop *l = loop_new();
    /* the peer's close reaches the owner as READ (and a read gives 0) */
    CHECK_EQ(loop_watch(l, sv[0], LOOP_READ, on_readable, NULL), 0);
    close(sv[1]);
    loop_timer(l, 5000, fail_timer, "hangup");
    io_buf[0] = 'z';
    loop_run(l);
    CHECK_EQ(io_calls, 1);
    CHECK(io_mask & LOOP_READ);
    close(sv[0]);
    loop_free(l);
}

TEST(loop_watch_high_fd)
{
    alarm(10);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int hi = dup2(sv[0], 300); /* past the initial watch table */
    CHECK_EQ(hi, 300);
    struct loop *l = loop_new();
    CHECK_EQ(loop_watch(l, hi, LOOP_READ, on_readable, NULL), 0);
    CHECK_EQ(write(sv[1], "hi", 2), 2);
    loop_run(l);
    CHECK_EQ(io_calls, 1);
    CHECK(strcmp(io_buf, "hi") == 0);
    /* a bad fd is refused */
    CHECK_EQ(loop_watch(l, 1000, LOOP_READ, on_readable, NULL), -1);
    close(hi);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

TEST(loop_free_releases_memory)
{
    size_t base = alloc_live_bytes();
    struct loop *l = loop_new();
    for (int i = 0; i < 100; i++)
        loop_timer(l, 100000, record, NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(loop_watch(l, sv[0], LOOP_READ, on_readable, NULL), 0);
    loop_free(l);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(loop_timer_out_of_memory)
{
    struct loop *l = loop_new();
    alloc_fail_after(0);
    CHECK_EQ(loop_timer(l, 10, record, NULL), -1);
    alloc_fail_after(-1);
    CHECK(loop_timer(l, 10, record, NULL) > 0);
    loop_free(l);
}
