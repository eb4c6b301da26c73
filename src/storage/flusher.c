/* flusher.c: see flusher.h. */
#include "storage/flusher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

struct flush_job {
    struct flush_job *next;
    int fds[FLUSH_MAX_FDS];
    int nfds;
    flush_done_fn *done;
    void *arg;
    int err;
};

struct flusher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct flush_job *queue, *queue_tail; /* submitted, not started */
    struct flush_job *finished;           /* done, callbacks not yet run */
    bool stop;
    void (*wake)(void *);
    void *wake_arg;
    uint64_t syncs;
    flush_observe_fn *observe; /* under mu */
    void *observe_arg;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Flush thread. */
static void *flush_main(void *arg)
{
    struct flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->queue && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->queue && f->stop)
            break;
        struct flush_job *batch = f->queue;
        f->queue = f->queue_tail = NULL;
        flush_observe_fn *observe = f->observe;
        void *observe_arg = f->observe_arg;
        pthread_mutex_unlock(&f->mu);

        /* one fdatasync per distinct file in the batch of jobs */
        struct {
            dev_t dev;
            ino_t ino;
            int err;
        } seen[256];
        int nseen = 0;
        uint64_t syncs = 0;
        for (struct flush_job *j = batch; j; j = j->next) {
            for (int i = 0; i < j->nfds; i++) {
                struct stat st;
                int err = 0, k;
                if (fstat(j->fds[i], &st) < 0) {
                    err = errno;
                } else {
                    for (k = 0; k < nseen; k++)
                        if (seen[k].dev == st.st_dev && seen[k].ino == st.st_ino)
                            break;
                    if (k < nseen) {
                        err = seen[k].err;
                    } else {
                        int64_t t0 = observe ? mono_ns() : 0;
                        err = fdatasync(j->fds[i]) < 0 ? errno : 0;
                        if (observe)
                            observe(observe_arg, mono_ns() - t0);
                        syncs++;
                        if (nseen < 256)
                            seen[nseen++] = (__typeof__(seen[0])){st.st_dev, st.st_ino, err};
                    }
                }
                if (err && !j->err)
                    j->err = err;
                close(j->fds[i]);
            }
            j->nfds = 0;
        }

        pthread_mutex_lock(&f->mu);
        f->syncs += syncs;
        /* append, so that callbacks run in submission order */
        struct flush_job **tail = &f->finished;
        while (*tail)
            tail = &(*tail)->next;
        *tail = batch;
        pthread_mutex_unlock(&f->mu);
        f->wake(f->wake_arg);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

struct flusher *flusher_new(void (*wake)(void *), void *wake_arg)
{
    struct flusher *f = xcalloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->wake = wake;
    f->wake_arg = wake_arg;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, flush_main, f) != 0) {
        xfree(f);
        return NULL;
    }
    pthread_setname_np(f->thread, "flush");
    return f;
}

void flusher_free(struct flusher *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    flusher_complete(f);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    xfree(f);
}

int flusher_submit(struct flusher *f, const int *fds, int nfds, flush_done_fn *done, void *arg)
{
    struct flush_job *j = xcalloc(1, sizeof *j);
    if (!j) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return -1;
    }
    if (nfds > FLUSH_MAX_FDS) {
        /* more than a job holds: refuse it whole rather than sync a part */
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        xfree(j);
        return -1;
    }
    memcpy(j->fds, fds, (size_t)nfds * sizeof *fds);
    j->nfds = nfds;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&f->mu);
    if (f->queue_tail)
        f->queue_tail->next = j;
    else
        f->queue = j;
    f->queue_tail = j;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

void flusher_complete(struct flusher *f)
{
    pthread_mutex_lock(&f->mu);
    struct flush_job *list = f->finished;
    f->finished = NULL;
    pthread_mutex_unlock(&f->mu);
    struct flush_job *rev = list; /* oldest first */
    while (rev) {
        struct flush_job *n = rev->next;
        if (rev->err)
            log_error("fdatasync failed: %s", strerror(rev->err));
        if (rev->done)
            rev->done(rev->arg, rev->err);
        xfree(rev);
        rev = n;
    }
}

uint64_t flusher_syncs(struct flusher *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->syncs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void flusher_set_observer(struct flusher *f, flush_observe_fn *fn, void *arg)
{
    pthread_mutex_lock(&f->mu);
    f->observe = fn;
    f->observe_arg = arg;
    pthread_mutex_unlock(&f->mu);
}
