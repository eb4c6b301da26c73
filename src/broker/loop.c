/* loop.c: epoll, a binary heap of timers, and an eventfd for wakeups. */
#include "broker/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

struct watch {
    loop_io_fn *fn;
    void *arg;
    int mask;
};

struct timer {
    int64_t at;  /* monotonic ms */
    int64_t id;
    loop_timer_fn *fn;
    void *arg;
};

struct loop {
    int epfd;
    int wakefd;                /* eventfd written by loop_wakeup */
    struct watch *watches;     /* indexed by fd */
    int nwatches;
    struct timer *heap;        /* min-heap on `at` */
    int nheap, capheap;
    int64_t next_id;
    loop_hook_fn *before_sleep, *on_wakeup;
    void *before_arg, *wakeup_arg;
    volatile sig_atomic_t stop;
};

struct loop *loop_new(void)
{
    struct loop *l = xcalloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0) {
        loop_free(l);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wakefd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev);
    l->next_id = 1;
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    xfree(l->watches);
    xfree(l->heap);
    xfree(l);
}

int loop_watch(struct loop *l, int fd, int mask, loop_io_fn *fn, void *arg)
{
    if (fd >= l->nwatches) {
        int n = l->nwatches ? l->nwatches : 64;
        while (n <= fd)
            n *= 2;
        struct watch *w = xrealloc(l->watches, (size_t)n * sizeof *w);
        if (!w)
            return -1;
        memset(w + l->nwatches, 0, (size_t)(n - l->nwatches) * sizeof *w);
        l->watches = w;
        l->nwatches = n;
    }
    struct watch *w = &l->watches[fd];
    int was = w->fn != NULL;
    struct epoll_event ev = {.data.fd = fd};
    if (mask & LOOP_READ)
        ev.events |= EPOLLIN;
    if (mask & LOOP_WRITE)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(l->epfd, was ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    w->fn = fn;
    w->arg = arg;
    w->mask = mask;
    return 0;
}

void loop_unwatch(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nwatches || !l->watches[fd].fn)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&l->watches[fd], 0, sizeof l->watches[fd]);
}

static void heap_swap(struct loop *l, int a, int b)
{
    struct timer t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
}

static void heap_up(struct loop *l, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (l->heap[p].at <= l->heap[i].at)
            break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(struct loop *l, int i)
{
    for (;;) {
        int a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && l->heap[a].at < l->heap[m].at)
            m = a;
        if (b < l->nheap && l->heap[b].at < l->heap[m].at)
            m = b;
        if (m == i)
            return;
        heap_swap(l, m, i);
        i = m;
    }
}

static void heap_remove(struct loop *l, int i)
{
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    heap_down(l, i);
    heap_up(l, i);
}

int64_t loop_timer(struct loop *l, int64_t ms, loop_timer_fn *fn, void *arg)
{
    if (l->nheap == l->capheap) {
        int n = l->capheap ? l->capheap * 2 : 64;
        struct timer *h = xrealloc(l->heap, (size_t)n * sizeof *h);
        if (!h)
            return -1;
        l->heap = h;
        l->capheap = n;
    }
    int64_t id = l->next_id++;
    l->heap[l->nheap] = (struct timer){clock_mono_ms() + (ms < 0 ? 0 : ms), id, fn, arg};
    heap_up(l, l->nheap++);
    return id;
}

void loop_cancel(struct loop *l, int64_t id)
{
    /* Timers are few (one per parked request and a handful of periodic
     * ones), so a linear search is fine. */
    for (int i = 0; i < l->nheap; i++)
        if (l->heap[i].id == id) {
            heap_remove(l, i);
            return;
        }
}

void loop_set_before_sleep(struct loop *l, loop_hook_fn *fn, void *arg)
{
    l->before_sleep = fn;
    l->before_arg = arg;
}

void loop_set_on_wakeup(struct loop *l, loop_hook_fn *fn, void *arg)
{
    l->on_wakeup = fn;
    l->wakeup_arg = arg;
}

void loop_wakeup(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wakefd, &one, sizeof one);
    (void)n;
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

static void run_timers(struct loop *l)
{
    int64_t now = clock_mono_ms();
    while (l->nheap > 0 && l->heap[0].at <= now) {
        struct timer t = l->heap[0];
        heap_remove(l, 0);
        t.fn(l, t.arg);
    }
}

void loop_run(struct loop *l)
{
    struct epoll_event evs[256];
    while (!l->stop) {
        if (l->before_sleep)
            l->before_sleep(l, l->before_arg);
        int timeout = -1;
        if (l->nheap > 0) {
            int64_t d = l->heap[0].at - clock_mono_ms();
            timeout = d < 0 ? 0 : (d > 1000000 ? 1000000 : (int)d);
        }
        int n = epoll_wait(l->epfd, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->wakefd) {
                uint64_t v;
                ssize_t r = read(l->wakefd, &v, sizeof v);
                (void)r;
                if (l->on_wakeup)
                    l->on_wakeup(l, l->wakeup_arg);
                continue;
            }
            if (fd >= l->nwatches || !l->watches[fd].fn)
                continue;
            int mask = 0;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                mask |= LOOP_READ;
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                mask |= LOOP_WRITE;
            struct watch w = l->watches[fd];
            w.fn(l, fd, mask & (w.mask | ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? LOOP_READ : 0)), w.arg);
        }
        run_timers(l);
    }
}
