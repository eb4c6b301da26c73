/* raft_node.c: see raft_node.h.  Everything that touches libraft or libuv
 * runs on the node's own thread: setup, the loop, the fsm callbacks and the
 * close.  Other threads reach it through a mutex-protected queue of
 * proposals and a uv_async_t.  The leader is found by polling raft_leader
 * from a timer, which is simpler than a tracer and cheap at 20 ms. */
#include "cluster/raft_node.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/log.h"

#define POLL_MS 20
/* Each command entry is an 8-byte header (u32 LE command length, u32 LE
 * format 1) and the command, zero-padded to a multiple of 8.  libraft 0.15
 * sends entries over TCP unpadded but decodes them as if padded to 8 bytes,
 * and mishandles empty entries, so the padding and the real length are
 * ours to keep. */
#define ENTRY_HDR 8
#define ENTRY_FORMAT 1
#define ENTRY_MAX (UINT32_MAX - 8)
#define SNAP_HDR 16
static const unsigned char snap_magic[8] = {'R', 'N', 'S', '1', 0, 0, 0, 0};

/* A proposal from raft_node_propose, queued until the raft thread submits it. */
struct prop {
    struct raft_apply req;  /* req.data points back here while raft holds it */
    struct raft_buffer buf; /* owned (raft_malloc) until raft_apply accepts it */
    void (*done)(void *arg, int status, uint64_t index);
    void *arg;
    struct raft_node *node;
    struct prop *next;
};

struct raft_node {
    uint64_t id;
    struct raft_node_fsm fsm; /* the caller's callbacks (a copy) */
    pthread_t thread;

    /* Shared with other threads, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;                  /* signals the end of setup */
    int setup;                          /* 0 running, 1 started, -1 failed */
    char err[512];                      /* setup's error message */
    const struct raft_node_config *cfg; /* borrowed during raft_node_start */
    struct prop *queue, *queue_tail;    /* proposals not yet seen by the raft thread */
    bool stopping;                      /* raft_node_stop was called; queue takes no more */

    _Atomic uint64_t leader; /* published leader id, 0 unknown */

    /* Raft thread only. */
    uv_loop_t loop;
    uv_async_t wake; /* new proposals, or stop */
    uv_timer_t poll; /* leader polling */
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm rfsm;
    struct raft raft;
    struct raft_barrier barrier; /* the new leader's barrier, while busy */
    bool barrier_busy;
    raft_term barrier_term;           /* term of the barrier in flight */
    raft_term ready_term;             /* term whose barrier has been applied */
    uint64_t published;               /* what leader_changed last reported */
    bool closing;                     /* raft_close was called */
    struct raft_buffer snap_bufs[2];  /* header + the caller's data, until finalized */
    unsigned char snap_hdr[SNAP_HDR]; /* magic and index of the snapshot in flight */
    void *snap_data;                  /* owned (xmalloc): the caller's snapshot in flight */
};

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- the state machine, as libraft sees it ---- */

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
    struct raft_node *n = f->data;
    const unsigned char *e = buf->base;
    /* raft bumps last_applied after each entry, so this entry is the next. */
    uint64_t index = raft_last_applied(&n->raft) + 1;

    *result = NULL;
    if (buf->len < ENTRY_HDR || get_le32(e + 4) != ENTRY_FORMAT || get_le32(e) > buf->len - ENTRY_HDR) {
        /* Only raft_node_propose makes entries and raft checksums them, so
         * this is a bug; stalling beats diverging from the other nodes. */
        log_error("raft %llu: malformed entry at %llu; not applying", (unsigned long long)n->id,
                  (unsigned long long)index);
        return RAFT_MALFORMED;
    }
    n->fsm.apply(n->fsm.arg, e + ENTRY_HDR, get_le32(e), index);
    return 0;
}

/* Version 2 (with snapshot_finalize) so that raft does not free our buffers:
 * the caller's buffer comes from xmalloc, which raft_free cannot release. */
static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct raft_node *n = f->data;
    void *data = NULL;
    size_t len = 0;
    /* raft takes the snapshot at last_applied and stores it under that index. */
    uint64_t index = raft_last_applied(&n->raft);

    assert(n->snap_data == NULL);
    if (n->fsm.snapshot(n->fsm.arg, &data, &len) != 0) {
        log_warn("raft %llu: snapshot at %llu failed; will retry", (unsigned long long)n->id,
                 (unsigned long long)index);
        return RAFT_BUSY; /* raft treats BUSY as transient and tries again later */
    }
    n->snap_data = data;
    memcpy(n->snap_hdr, snap_magic, sizeof snap_magic);
    put_le64(n->snap_hdr + 8, index);
    n->snap_bufs[0] = (struct raft_buffer){n->snap_hdr, SNAP_HDR};
    n->snap_bufs[1] = (struct raft_buffer){data, len};
    *bufs = n->snap_bufs;
    *n_bufs = len ? 2 : 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct raft_node *n = f->data;
    xfree(n->snap_data);
    n->snap_data = NULL;
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* raft passes one buffer; on success it is ours to raft_free, on failure
 * raft frees it. */
static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
    struct raft_node *n = f->data;
    const unsigned char *p = buf->base;

    if (buf->len < SNAP_HDR || memcmp(p, snap_magic, sizeof snap_magic) != 0) {
        log_error("raft %llu: snapshot without a raft_node header", (unsigned long long)n->id);
        return RAFT_MALFORMED;
    }
    uint64_t index = get_le64(p + 8);
    if (n->fsm.restore(n->fsm.arg, p + SNAP_HDR, buf->len - SNAP_HDR, index) != 0) {
        log_error("raft %llu: restoring the snapshot at %llu failed", (unsigned long long)n->id,
                  (unsigned long long)index);
        return RAFT_MALFORMED;
    }
    raft_free(buf->base);
    log_debug("raft %llu: restored the snapshot at %llu", (unsigned long long)n->id, (unsigned long long)index);
    return 0;
}

/* ---- leadership ---- */

static void publish(struct raft_node *n, uint64_t leader)
{
    if (leader == n->published)
        return;
    n->published = leader;
    atomic_store(&n->leader, leader);
    log_debug("raft %llu: leader is %llu (term %llu)", (unsigned long long)n->id, (unsigned long long)leader,
              (unsigned long long)n->raft.current_term);
    if (n->fsm.leader_changed)
        n->fsm.leader_changed(n->fsm.arg, leader, leader != 0 && leader == n->id);
}

static void on_poll(uv_timer_t *t);

static void on_barrier(struct raft_barrier *req, int status)
{
    struct raft_node *n = req->data;
    n->barrier_busy = false;
    if (status == 0)
        n->ready_term = n->barrier_term;
    /* Report the new leader now rather than on the next tick (not from inside
     * raft's apply loop: the timer runs the callback on a fresh stack). */
    if (!n->closing)
        uv_timer_start(&n->poll, on_poll, 0, POLL_MS);
}

/* A new leader only commits entries of earlier terms together with one of
 * its own (Raft 5.4.2), and libraft appends none by itself; the barrier is
 * that entry, like KRaft's LeaderChangeMessage.  Until it is applied this
 * node does not call itself leader, so the caller's state is complete when
 * it hears is_self. */
static void on_poll(uv_timer_t *t)
{
    struct raft_node *n = t->data;
    raft_id id;
    const char *address;

    if (n->closing)
        return;
    raft_leader(&n->raft, &id, &address);
    uint64_t leader = id;
    if (id == n->id && raft_state(&n->raft) == RAFT_LEADER) {
        raft_term term = n->raft.current_term;
        if (n->ready_term != term) {
            leader = 0;
            if (!n->barrier_busy) {
                n->barrier.data = n;
                int rv = raft_barrier(&n->raft, &n->barrier, on_barrier);
                if (rv == 0) {
                    n->barrier_busy = true;
                    n->barrier_term = term;
                } else {
                    log_warn("raft %llu: barrier: %s", (unsigned long long)n->id, raft_strerror(rv));
                }
            }
        }
    }
    publish(n, leader);
}

/* ---- proposals ---- */

static int map_status(struct raft_node *n, int rv)
{
    switch (rv) {
    case 0:
        return RAFT_NODE_OK;
    case RAFT_NOTLEADER:
        return n->closing ? RAFT_NODE_SHUTDOWN : RAFT_NODE_NOT_LEADER;
    case RAFT_LEADERSHIPLOST:
        /* raft_close fails what is in flight as lost leadership. */
        return n->closing ? RAFT_NODE_SHUTDOWN : RAFT_NODE_LEADERSHIP_LOST;
    case RAFT_SHUTDOWN:
        return RAFT_NODE_SHUTDOWN;
    default:
        return RAFT_NODE_ERROR;
    }
}

static void prop_finish(struct prop *p, int status, uint64_t index)
{
    if (p->done)
        p->done(p->arg, status, index);
    xfree(p);
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct prop *p = req->data;
    int st = map_status(p->node, status);
    prop_finish(p, st, st == RAFT_NODE_OK ? req->index : 0);
}

static void prop_submit(struct raft_node *n, struct prop *p)
{
    p->req.data = p;
    int rv = raft_apply(&n->raft, &p->req, &p->buf, 1, on_applied);
    if (rv != 0) {
        /* Refused before raft kept it: the buffer is still ours. */
        raft_free(p->buf.base);
        prop_finish(p, map_status(n, rv), 0);
    }
}

/* ---- the raft thread ---- */

static void on_raft_closed(struct raft *r)
{
    struct raft_node *n = r->data;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
}

static void node_close(struct raft_node *n)
{
    n->closing = true;
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->poll, NULL);
    publish(n, 0);
    raft_close(&n->raft, on_raft_closed);
}

static void on_wake(uv_async_t *h)
{
    struct raft_node *n = h->data;

    pthread_mutex_lock(&n->mu);
    struct prop *list = n->queue;
    n->queue = n->queue_tail = NULL;
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);

    while (list) {
        struct prop *p = list;
        list = p->next;
        if (stopping) {
            raft_free(p->buf.base);
            prop_finish(p, RAFT_NODE_SHUTDOWN, 0);
        } else {
            prop_submit(n, p);
        }
    }
    /* Nothing can be queued once stopping was seen under the lock, so the
     * async handle may close. */
    if (stopping && !n->closing)
        node_close(n);
}

static void setup_fail(struct raft_node *n, const char *what, const char *msg)
{
    snprintf(n->err, sizeof n->err, "raft %llu: %s: %s", (unsigned long long)n->id, what, msg);
}

/* Runs on the raft thread.  On failure everything set up so far is closed
 * again (the loop included) and n->err says why. */
static int node_setup(struct raft_node *n)
{
    const struct raft_node_config *cfg = n->cfg;
    unsigned election = cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000;
    unsigned heartbeat = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 100;
    struct raft_configuration conf;
    int rv;

    rv = uv_loop_init(&n->loop);
    if (rv != 0) {
        setup_fail(n, "uv_loop_init", uv_strerror(rv));
        return -1;
    }
    rv = uv_async_init(&n->loop, &n->wake, on_wake);
    if (rv != 0) {
        setup_fail(n, "uv_async_init", uv_strerror(rv));
        goto err_loop;
    }
    n->wake.data = n;
    uv_timer_init(&n->loop, &n->poll); /* cannot fail */
    n->poll.data = n;

    rv = raft_uv_tcp_init(&n->transport, &n->loop);
    if (rv != 0) {
        setup_fail(n, "raft_uv_tcp_init", raft_strerror(rv));
        goto err_handles;
    }
    rv = raft_uv_init(&n->io, &n->loop, cfg->dir, &n->transport);
    if (rv != 0) {
        setup_fail(n, "raft_uv_init", n->io.errmsg);
        goto err_tcp;
    }
    /* A restarted peer is reached again well within its election timeout
     * (the default retry is a whole second). */
    raft_uv_set_connect_retry_delay(&n->io, election / 2 ? election / 2 : 1);

    n->rfsm = (struct raft_fsm){
        .version = 2,
        .data = n,
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .snapshot_finalize = fsm_snapshot_finalize,
    };
    rv = raft_init(&n->raft, &n->io, &n->rfsm, cfg->id, cfg->address);
    if (rv != 0) {
        setup_fail(n, "raft_init", raft_errmsg(&n->raft));
        goto err_io;
    }
    n->raft.data = n;

    /* Every voter bootstraps the same configuration, so all logs start with
     * the same entry 1.  CANTBOOTSTRAP means dir already has raft state. */
    raft_configuration_init(&conf);
    for (int i = 0; i < cfg->nvoters; i++) {
        rv = raft_configuration_add(&conf, cfg->voters[i].id, cfg->voters[i].address, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            setup_fail(n, "voter", raft_strerror(rv));
            goto err_raft;
        }
    }
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        setup_fail(n, "raft_bootstrap", n->io.errmsg[0] ? n->io.errmsg : raft_strerror(rv));
        goto err_raft;
    }
    if (rv == 0)
        log_info("raft %llu: bootstrapped %d voters in %s", (unsigned long long)n->id, cfg->nvoters, cfg->dir);

    raft_set_election_timeout(&n->raft, election);
    raft_set_heartbeat_timeout(&n->raft, heartbeat);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold ? cfg->snapshot_threshold : 1024);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 2048);
    /* A node that was cut off asks before it bumps the term, so rejoining
     * does not depose a healthy leader. */
    raft_set_pre_vote(&n->raft, true);

    rv = raft_start(&n->raft);
    if (rv != 0) {
        char msg[RAFT_ERRMSG_BUF_SIZE + 64];
        snprintf(msg, sizeof msg, "%s (%s)", raft_strerror(rv), raft_errmsg(&n->raft));
        setup_fail(n, "raft_start", msg);
        goto err_raft;
    }
    uv_timer_start(&n->poll, on_poll, 0, POLL_MS);
    return 0;

err_raft:
    n->closing = true;
    raft_close(&n->raft, on_raft_closed); /* frees io and transport when done */
    goto err_handles;
err_io:
    raft_uv_close(&n->io);
err_tcp:
    raft_uv_tcp_close(&n->transport);
err_handles:
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->poll, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
err_loop:
    uv_loop_close(&n->loop);
    return -1;
}

static void *node_main(void *arg)
{
    struct raft_node *n = arg;
    int rc = node_setup(n);

    pthread_mutex_lock(&n->mu);
    n->setup = rc == 0 ? 1 : -1;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (rc != 0)
        return NULL;

    uv_run(&n->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(&n->loop);
    if (rv != 0)
        log_warn("raft %llu: uv_loop_close: %s", (unsigned long long)n->id, uv_strerror(rv));
    log_debug("raft %llu: stopped", (unsigned long long)n->id);
    return NULL;
}

/* ---- public ---- */

static int check_config(const struct raft_node_config *cfg, const struct raft_node_fsm *fsm, char *err,
                        size_t errlen)
{
    if (!fsm || !fsm->apply || !fsm->snapshot || !fsm->restore) {
        snprintf(err, errlen, "raft: fsm needs apply, snapshot and restore");
        return -1;
    }
    if (!cfg->id || !cfg->dir || !cfg->dir[0] || !cfg->address || !cfg->address[0]) {
        snprintf(err, errlen, "raft: id, dir and address are required");
        return -1;
    }
    if (cfg->nvoters < 1 || !cfg->voters) {
        snprintf(err, errlen, "raft: no voters");
        return -1;
    }
    bool self = false;
    for (int i = 0; i < cfg->nvoters; i++) {
        if (!cfg->voters[i].id || !memchr(cfg->voters[i].address, 0, sizeof cfg->voters[i].address)) {
            snprintf(err, errlen, "raft: voter %d: bad id or address", i);
            return -1;
        }
        self |= cfg->voters[i].id == cfg->id;
    }
    if (!self) {
        /* libraft 0.15 has no observers: a node outside the voter set would
         * never hear of the cluster. */
        snprintf(err, errlen, "raft: node %llu is not among the voters", (unsigned long long)cfg->id);
        return -1;
    }
    unsigned election = cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000;
    unsigned heartbeat = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 100;
    if (heartbeat >= election) {
        snprintf(err, errlen, "raft: heartbeat timeout %u ms is not below the election timeout %u ms", heartbeat,
                 election);
        return -1;
    }
    return 0;
}

struct raft_node *raft_node_start(const struct raft_node_config *cfg, const struct raft_node_fsm *fsm, char *err,
                                  size_t errlen)
{
    if (check_config(cfg, fsm, err, errlen) != 0)
        return NULL;
    if (file_mkdirs(cfg->dir) != 0) {
        snprintf(err, errlen, "raft: mkdir %s: %s", cfg->dir, strerror(errno));
        return NULL;
    }
    struct raft_node *n = xcalloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "raft: out of memory");
        return NULL;
    }
    n->id = cfg->id;
    n->fsm = *fsm;
    n->cfg = cfg;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);

    /* The raft thread takes no signals: a peer closing a socket must not
     * raise SIGPIPE there, and process signals belong to the main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rv = pthread_create(&n->thread, NULL, node_main, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        snprintf(err, errlen, "raft: pthread_create: %s", strerror(rv));
        goto err;
    }
    char name[16];
    snprintf(name, sizeof name, "raft-%llu", (unsigned long long)cfg->id);
    pthread_setname_np(n->thread, name);

    pthread_mutex_lock(&n->mu);
    while (n->setup == 0)
        pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    if (n->setup < 0) {
        pthread_join(n->thread, NULL);
        snprintf(err, errlen, "%s", n->err);
        goto err;
    }
    n->cfg = NULL;
    return n;

err:
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    xfree(n);
    return NULL;
}

int raft_node_propose(struct raft_node *n, const void *buf, size_t len,
                      void (*done)(void *arg, int status, uint64_t index), void *arg)
{
    if (len > ENTRY_MAX)
        return -1;
    struct prop *p = xmalloc(sizeof *p);
    if (!p)
        return -1;
    /* raft_apply takes memory from raft's own heap. */
    size_t total = ENTRY_HDR + ((len + 7) & ~(size_t)7);
    p->buf.base = raft_malloc(total);
    if (!p->buf.base) {
        xfree(p);
        return -1;
    }
    unsigned char *e = p->buf.base;
    put_le32(e, (uint32_t)len);
    put_le32(e + 4, ENTRY_FORMAT);
    if (len)
        memcpy(e + ENTRY_HDR, buf, len);
    memset(e + ENTRY_HDR + len, 0, total - ENTRY_HDR - len);
    p->buf.len = total;
    p->done = done;
    p->arg = arg;
    p->node = n;
    p->next = NULL;

    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->mu);
        raft_free(p->buf.base);
        xfree(p);
        return -1;
    }
    if (n->queue_tail)
        n->queue_tail->next = p;
    else
        n->queue = p;
    n->queue_tail = p;
    /* Sent under the lock: the raft thread closes the handle only after it
     * has seen stopping under this lock. */
    uv_async_send(&n->wake);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

uint64_t raft_node_leader(const struct raft_node *n)
{
    return atomic_load(&n->leader);
}

bool raft_node_is_leader(const struct raft_node *n)
{
    return atomic_load(&n->leader) == n->id;
}

void raft_node_stop(struct raft_node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    uv_async_send(&n->wake);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    assert(n->queue == NULL && n->snap_data == NULL);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    xfree(n);
}
