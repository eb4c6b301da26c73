/* raft_node.c: see raft_node.h.  Everything that touches libraft or libuv
 * runs on the node's own thread: setup, the loop, the fsm callbacks and the
 * close.  Other threads reach it through mutex-protected queues of proposals
 * and membership changes and a uv_async_t.  The leader is found by polling
 * raft_leader from a timer, which is simpler than a tracer and cheap at
 * 20 ms; the same tick copies the configuration out for raft_node_members
 * and retries membership changes that had to wait. */
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
#define MEMBER_ADDR sizeof(((struct raft_node_member *)0)->address)
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

/* A membership change from raft_node_add or raft_node_remove.  It is not a
 * fixed script of libraft calls: each step looks at the configuration as it
 * is now and makes the one change that brings id closer to the target (remove
 * it, add it as a spare, assign its role), so a step that another leader
 * already made, or a request repeated after LEADERSHIP_LOST, is skipped. */
struct change {
    bool remove;               /* remove id; otherwise make it a member with role at address */
    uint64_t id;               /* the member's node.id */
    char address[MEMBER_ADDR]; /* add only */
    int role;                  /* add only: RAFT_VOTER or RAFT_STANDBY */
    void (*done)(void *arg, int status);
    void *arg;
    struct change *next;
};

/* What a change step did, besides finishing with a raft_node_status. */
#define STEP_STARTED 1 /* a libraft change is in flight; on_change continues */
#define STEP_WAIT 2    /* not yet possible (barrier, another change uncommitted): retry on the tick */

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
    struct change *cqueue, *cqueue_tail; /* membership changes not yet seen by the raft thread */
    bool stopping;                      /* raft_node_stop was called; queues take no more */
    /* The configuration for raft_node_members, nmembers long in an owned
     * (xmalloc) array of members_cap; only the raft thread writes it. */
    struct raft_node_member *members;
    int nmembers, members_cap;

    _Atomic uint64_t leader; /* published leader id, 0 unknown */

    /* Raft thread only. */
    uv_loop_t loop;
    uv_async_t wake; /* new proposals or changes, or stop */
    uv_timer_t poll; /* leader polling, members copy, waiting changes */
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
    struct change *changes, *changes_tail; /* changes in request order; the head is the one running */
    struct raft_change creq;               /* libraft's request for the head's step in flight */
    bool change_busy;                      /* creq is with libraft; on_change will run */
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
static void members_refresh(struct raft_node *n);
static void changes_run(struct raft_node *n);

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
    members_refresh(n);
    changes_run(n);
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

/* ---- membership ---- */

static enum raft_node_role role_of(int raft_role)
{
    switch (raft_role) {
    case RAFT_VOTER:
        return RAFT_NODE_VOTER;
    case RAFT_STANDBY:
        return RAFT_NODE_STANDBY;
    default:
        return RAFT_NODE_SPARE;
    }
}

static bool member_same(const struct raft_node_member *m, const struct raft_server *s)
{
    return m->id == s->id && m->role == role_of(s->role) && strncmp(m->address, s->address, sizeof m->address) == 0;
}

/* Copies raft's current configuration for raft_node_members if it changed.
 * Only this thread writes the copy, so it compares without the lock. */
static void members_refresh(struct raft_node *n)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    bool same = (unsigned)n->nmembers == conf->n;
    for (unsigned i = 0; same && i < conf->n; i++)
        same = member_same(&n->members[i], &conf->servers[i]);
    if (same)
        return;

    pthread_mutex_lock(&n->mu);
    if ((unsigned)n->members_cap < conf->n) {
        struct raft_node_member *m = xrealloc(n->members, conf->n * sizeof *m);
        if (!m) {
            pthread_mutex_unlock(&n->mu);
            log_warn("raft %llu: out of memory copying the configuration", (unsigned long long)n->id);
            return; /* the old copy stays; the next tick tries again */
        }
        n->members = m;
        n->members_cap = (int)conf->n;
    }
    for (unsigned i = 0; i < conf->n; i++) {
        struct raft_node_member *m = &n->members[i];
        m->id = conf->servers[i].id;
        snprintf(m->address, sizeof m->address, "%s", conf->servers[i].address);
        m->role = role_of(conf->servers[i].role);
    }
    n->nmembers = (int)conf->n;
    pthread_mutex_unlock(&n->mu);
    log_debug("raft %llu: configuration has %u members", (unsigned long long)n->id, conf->n);
}

static const struct raft_server *conf_get(const struct raft_configuration *conf, uint64_t id)
{
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id)
            return &conf->servers[i];
    return NULL;
}

/* Another member than id has address. */
static bool conf_address_taken(const struct raft_configuration *conf, uint64_t id, const char *address)
{
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id != id && strcmp(conf->servers[i].address, address) == 0)
            return true;
    return false;
}

static int map_change_status(struct raft_node *n, int rv)
{
    switch (rv) {
    case RAFT_NOCONNECTION: /* the promotee did not catch up (libraft's tick gives up) */
        return n->closing ? RAFT_NODE_SHUTDOWN : RAFT_NODE_NO_CATCHUP;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADID:
    case RAFT_NOTFOUND:
    case RAFT_BADROLE:
        return RAFT_NODE_INVALID;
    default:
        return map_status(n, rv);
    }
}

static void change_done(struct raft_node *n, struct change *c, int status)
{
    if (status != RAFT_NODE_OK)
        log_info("raft %llu: %s %llu: status %d", (unsigned long long)n->id, c->remove ? "remove" : "add",
                 (unsigned long long)c->id, status);
    if (c->done)
        c->done(c->arg, status);
    xfree(c);
}

/* Pops the head, which is not with libraft, and reports status. */
static void change_finish(struct raft_node *n, int status)
{
    struct change *c = n->changes;
    assert(c && !n->change_busy);
    n->changes = c->next;
    if (!n->changes)
        n->changes_tail = NULL;
    change_done(n, c, status);
}

static void on_change(struct raft_change *req, int status)
{
    struct raft_node *n = req->data;
    assert(n->change_busy);
    n->change_busy = false;
    if (status != 0 || n->closing)
        change_finish(n, n->closing ? RAFT_NODE_SHUTDOWN : map_change_status(n, status));
    /* The next step runs from the timer, not inside raft's apply loop, with
     * the new configuration copied out first. */
    if (!n->closing)
        uv_timer_start(&n->poll, on_poll, 0, POLL_MS);
}

/* Makes the one libraft change that brings c closer to its target, or says
 * it is done: STEP_STARTED, STEP_WAIT, or a raft_node_status to finish with. */
static int change_step(struct raft_node *n, struct change *c)
{
    struct raft *r = &n->raft;
    enum { DO_REMOVE, DO_ADD, DO_ASSIGN } what;
    int rv;

    if (raft_state(r) != RAFT_LEADER)
        return RAFT_NODE_NOT_LEADER;
    /* Raft's single-server changes are only safe once the leader committed
     * an entry of its own term (the barrier); libraft 0.15 does not check.
     * It does refuse while a change is uncommitted (one from the previous
     * leader included) or a promotion is catching up: wait for those rather
     * than fail. */
    if (n->ready_term != r->current_term || r->configuration_uncommitted_index != 0 ||
        r->leader_state.promotee_id != 0)
        return STEP_WAIT;

    const struct raft_server *s = conf_get(&r->configuration, c->id);
    if (c->remove) {
        if (!s)
            return RAFT_NODE_OK;
        if (c->id == n->id)
            return RAFT_NODE_INVALID;
        what = DO_REMOVE;
    } else if (!s) {
        if (conf_address_taken(&r->configuration, c->id, c->address))
            return RAFT_NODE_INVALID;
        what = DO_ADD; /* as a spare: libraft's only way */
    } else if (strcmp(s->address, c->address) != 0) {
        /* A server's address is fixed in libraft: remove, then add anew. */
        if (c->id == n->id || conf_address_taken(&r->configuration, c->id, c->address))
            return RAFT_NODE_INVALID;
        what = DO_REMOVE;
    } else if (s->role == c->role) {
        return RAFT_NODE_OK;
    } else {
        if (c->id == n->id)
            return RAFT_NODE_INVALID; /* the leader is a voter: this would demote it */
        what = DO_ASSIGN;
    }

    unsigned long long self = n->id, id = c->id;
    n->creq.data = n;
    n->change_busy = true; /* before the call, should libraft ever call back from inside it */
    switch (what) {
    case DO_REMOVE:
        log_info("raft %llu: removing %llu", self, id);
        rv = raft_remove(r, &n->creq, c->id, on_change);
        break;
    case DO_ADD:
        log_info("raft %llu: adding %llu at %s", self, id, c->address);
        rv = raft_add(r, &n->creq, c->id, c->address, on_change);
        break;
    default:
        log_info("raft %llu: assigning %llu the role %s", self, id, c->role == RAFT_VOTER ? "voter" : "standby");
        rv = raft_assign(r, &n->creq, c->id, c->role, on_change);
        /* libraft 0.15 keeps the request as the pending change when
         * appending the entry fails, and would assert on the next change. */
        if (rv != 0 && raft_state(r) == RAFT_LEADER && r->leader_state.change == &n->creq)
            r->leader_state.change = NULL;
        break;
    }
    if (rv == 0)
        return STEP_STARTED; /* c may already be gone if libraft called back */
    n->change_busy = false;
    if (rv == RAFT_CANTCHANGE)
        return STEP_WAIT;
    log_warn("raft %llu: membership change for %llu: %s", self, id, raft_strerror(rv));
    return map_change_status(n, rv);
}

/* Runs queued changes until one is in flight or has to wait. */
static void changes_run(struct raft_node *n)
{
    while (n->changes && !n->change_busy && !n->closing) {
        int st = change_step(n, n->changes);
        if (st == STEP_STARTED || st == STEP_WAIT)
            return;
        change_finish(n, st);
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
    /* Queued changes fail now; the one with libraft fails when raft_close
     * fails the leader's pending change (or already has). */
    struct change *rest = n->changes;
    if (n->change_busy) {
        rest = n->changes->next;
        n->changes->next = NULL;
        n->changes_tail = n->changes;
    } else {
        n->changes = n->changes_tail = NULL;
    }
    while (rest) {
        struct change *c = rest;
        rest = c->next;
        change_done(n, c, RAFT_NODE_SHUTDOWN);
    }
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
    struct change *clist = n->cqueue, *ctail = n->cqueue_tail;
    n->cqueue = n->cqueue_tail = NULL;
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);

    if (clist) {
        if (n->changes_tail)
            n->changes_tail->next = clist;
        else
            n->changes = clist;
        n->changes_tail = ctail;
    }

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
     * async handle may close (node_close fails the changes). */
    if (stopping && !n->closing)
        node_close(n);
    else
        changes_run(n);
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
     * the same entry 1.  CANTBOOTSTRAP means dir already has raft state.  A
     * joining server gets entry 1 and the rest from the leader. */
    if (cfg->join)
        goto started;
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

started:
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
    if (n->raft.configuration.n == 0)
        log_info("raft %llu: no configuration in %s yet; waiting to be added by the leader",
                 (unsigned long long)n->id, cfg->dir);
    members_refresh(n); /* so raft_node_members is right when start returns */
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
    /* raft_close fails the change in flight; should it not, its done still
     * runs once. */
    if (n->change_busy) {
        log_warn("raft %llu: libraft did not fail the membership change in flight", (unsigned long long)n->id);
        n->change_busy = false;
    }
    while (n->changes)
        change_finish(n, RAFT_NODE_SHUTDOWN);
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
    if (cfg->nvoters < (cfg->join ? 0 : 1) || (cfg->nvoters > 0 && !cfg->voters)) {
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
    if (!self && !cfg->join) {
        /* It would never hear of the cluster: a server outside the voter
         * set must join (be added by the leader). */
        snprintf(err, errlen, "raft: node %llu is not among the voters (and not in join mode)",
                 (unsigned long long)cfg->id);
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

static int change_queue(struct raft_node *n, struct change *c)
{
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->mu);
        xfree(c);
        return -1;
    }
    if (n->cqueue_tail)
        n->cqueue_tail->next = c;
    else
        n->cqueue = c;
    n->cqueue_tail = c;
    uv_async_send(&n->wake); /* under the lock, as in raft_node_propose */
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int raft_node_add(struct raft_node *n, uint64_t id, const char *address, bool voter,
                  void (*done)(void *arg, int status), void *arg)
{
    if (!id || !address || !address[0] || strlen(address) >= MEMBER_ADDR)
        return -1;
    struct change *c = xcalloc(1, sizeof *c);
    if (!c)
        return -1;
    c->id = id;
    memcpy(c->address, address, strlen(address) + 1);
    c->role = voter ? RAFT_VOTER : RAFT_STANDBY;
    c->done = done;
    c->arg = arg;
    return change_queue(n, c);
}

int raft_node_remove(struct raft_node *n, uint64_t id, void (*done)(void *arg, int status), void *arg)
{
    if (!id)
        return -1;
    struct change *c = xcalloc(1, sizeof *c);
    if (!c)
        return -1;
    c->remove = true;
    c->id = id;
    c->done = done;
    c->arg = arg;
    return change_queue(n, c);
}

int raft_node_members(struct raft_node *n, struct raft_node_member *out, int max)
{
    pthread_mutex_lock(&n->mu);
    int count = n->nmembers;
    int copy = count < max ? count : max;
    if (copy > 0 && out)
        memcpy(out, n->members, (size_t)copy * sizeof *out);
    pthread_mutex_unlock(&n->mu);
    return count;
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
    assert(n->queue == NULL && n->cqueue == NULL && n->changes == NULL && n->snap_data == NULL);
    xfree(n->members);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    xfree(n);
}
