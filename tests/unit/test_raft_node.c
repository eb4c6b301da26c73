/* test_raft_node.c: cluster/raft_node.c with real libraft servers on
 * 127.0.0.1 in one process, each with its own dir under test_tmpdir: a
 * leader is elected and every node applies the same commands at the same
 * indexes; a follower refuses proposals; a stopped leader is replaced; a
 * node restarted from its dir comes back to the same state (from its own
 * snapshot, or from one the leader sends), so does a whole cluster; a single
 * voter works on its own; stopping fails what is in flight exactly once.
 * Membership: a server started in join mode applies nothing until the leader
 * adds it; as a standby it gets the whole log (or the leader's snapshot) at
 * the same indexes and keeps up, without counting for commits; it stays a
 * member across restarts; removal stops it receiving; changes requested
 * together all complete; a follower refuses changes.
 *
 * The state machine under test keeps the whole history (index and bytes of
 * every command), so comparing two nodes compares everything they applied,
 * and a snapshot is that history serialized. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/raft_node.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "test.h"

#define MAXN 5
#define MAXE 256
#define CMD_MAX 24

/* ---- the state machine -------------------------------------------------------- */

struct entry {
    uint64_t index;
    size_t len;
    char data[CMD_MAX];
};

struct tfsm {
    pthread_mutex_t mu;
    struct entry log[MAXE];
    int nlog;
    uint64_t last_index;     /* last applied or restored index */
    bool out_of_order;       /* apply saw an index not above last_index */
    int snapshots, restores;
    uint64_t restored_index; /* index of the last restore */
    uint64_t leader;         /* from leader_changed */
    bool is_self;
    int self_calls;          /* leader_changed with is_self */
    pthread_t thread;        /* the thread callbacks ran on */
};

static void tfsm_init(struct tfsm *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
}

static void t_apply(void *arg, const void *buf, size_t len, uint64_t index)
{
    struct tfsm *f = arg;
    pthread_mutex_lock(&f->mu);
    f->thread = pthread_self();
    if (index <= f->last_index || len > CMD_MAX || f->nlog == MAXE)
        f->out_of_order = true;
    else {
        struct entry *e = &f->log[f->nlog++];
        e->index = index;
        e->len = len;
        memcpy(e->data, buf, len);
    }
    f->last_index = index;
    pthread_mutex_unlock(&f->mu);
}

static int t_snapshot(void *arg, void **buf, size_t *len)
{
    struct tfsm *f = arg;
    pthread_mutex_lock(&f->mu);
    size_t n = (size_t)f->nlog * sizeof(struct entry);
    *buf = xmalloc(n + 1);
    memcpy(*buf, f->log, n);
    *len = n;
    f->snapshots++;
    pthread_mutex_unlock(&f->mu);
    return *buf ? 0 : -1;
}

static int t_restore(void *arg, const void *buf, size_t len, uint64_t index)
{
    struct tfsm *f = arg;
    if (len % sizeof(struct entry) || len / sizeof(struct entry) > MAXE)
        return -1;
    pthread_mutex_lock(&f->mu);
    memcpy(f->log, buf, len);
    f->nlog = (int)(len / sizeof(struct entry));
    f->last_index = index;
    f->restores++;
    f->restored_index = index;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void t_leader(void *arg, uint64_t leader, bool is_self)
{
    struct tfsm *f = arg;
    pthread_mutex_lock(&f->mu);
    f->leader = leader;
    f->is_self = is_self;
    f->self_calls += is_self;
    pthread_mutex_unlock(&f->mu);
}

static int tfsm_count(struct tfsm *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nlog;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Same history on both (same indexes, same bytes). */
static bool tfsm_same(struct tfsm *a, struct tfsm *b)
{
    pthread_mutex_lock(&a->mu);
    pthread_mutex_lock(&b->mu);
    bool same = a->nlog == b->nlog && memcmp(a->log, b->log, (size_t)a->nlog * sizeof a->log[0]) == 0;
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&a->mu);
    return same;
}

/* ---- a cluster in this process ------------------------------------------------ */

struct tnode {
    struct raft_node *rn; /* NULL while stopped */
    struct tfsm fsm;
    char dir[256];
    bool member; /* expected to follow the log: a voter, or a server the test added */
};

struct tcluster {
    int n;       /* servers: the voters, then those that join */
    int nvoters; /* the first nvoters servers bootstrap; the others start in join mode */
    struct raft_node_voter voters[MAXN]; /* every server's id and address (the first nvoters vote) */
    struct tnode nodes[MAXN];
    unsigned snapshot_threshold, snapshot_trailing;
};

/* Free ports: all bound at once so they differ, then released for raft. */
static void free_ports(int *ports, int n)
{
    int fds[MAXN];
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fds[i] >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        CHECK(bind(fds[i], (struct sockaddr *)&sa, sizeof sa) == 0);
        socklen_t sl = sizeof sa;
        CHECK(getsockname(fds[i], (struct sockaddr *)&sa, &sl) == 0);
        ports[i] = ntohs(sa.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* nvoters voters and njoin servers in join mode. */
static void cluster_init_join(struct tcluster *c, int nvoters, int njoin, unsigned threshold, unsigned trailing)
{
    int ports[MAXN];
    int n = nvoters + njoin;
    CHECK(n <= MAXN);
    memset(c, 0, sizeof *c);
    c->n = n;
    c->nvoters = nvoters;
    c->snapshot_threshold = threshold;
    c->snapshot_trailing = trailing;
    free_ports(ports, n);
    for (int i = 0; i < n; i++) {
        c->voters[i].id = (uint64_t)i + 1;
        snprintf(c->voters[i].address, sizeof c->voters[i].address, "127.0.0.1:%d", ports[i]);
        /* a subdir that does not exist yet, with a missing parent */
        snprintf(c->nodes[i].dir, sizeof c->nodes[i].dir, "%s/node%d/raft", test_tmpdir(), i + 1);
        c->nodes[i].member = i < nvoters;
    }
}

static void cluster_init(struct tcluster *c, int n, unsigned threshold, unsigned trailing)
{
    cluster_init_join(c, n, 0, threshold, trailing);
}

/* (Re)starts node i with a fresh state machine. */
static void node_start(struct tcluster *c, int i)
{
    struct tnode *t = &c->nodes[i];
    CHECK(t->rn == NULL);
    tfsm_init(&t->fsm);
    struct raft_node_config cfg = {
        .id = c->voters[i].id,
        .dir = t->dir,
        .address = c->voters[i].address,
        .nvoters = c->nvoters,
        .voters = c->voters,
        .join = i >= c->nvoters,
        .election_timeout_ms = 300,
        .heartbeat_timeout_ms = 50,
        .snapshot_threshold = c->snapshot_threshold,
        .snapshot_trailing = c->snapshot_trailing,
    };
    struct raft_node_fsm fsm = {&t->fsm, t_apply, t_snapshot, t_restore, t_leader};
    char err[256] = "";
    t->rn = raft_node_start(&cfg, &fsm, err, sizeof err);
    if (!t->rn)
        fprintf(stderr, "  raft_node_start: %s\n", err);
    CHECK(t->rn != NULL);
}

static void node_stop(struct tcluster *c, int i)
{
    raft_node_stop(c->nodes[i].rn);
    c->nodes[i].rn = NULL;
}

static void cluster_start(struct tcluster *c)
{
    for (int i = 0; i < c->n; i++)
        node_start(c, i);
}

static void cluster_stop(struct tcluster *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].rn)
            node_stop(c, i);
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* Waits until every running node names the same leader, which calls itself
 * leader; returns its index in c->nodes, or -1 after ms. */
static int wait_leader(struct tcluster *c, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    do {
        uint64_t leader = 0;
        bool agree = true;
        for (int i = 0; i < c->n && agree; i++) {
            if (!c->nodes[i].rn || !c->nodes[i].member)
                continue;
            uint64_t l = raft_node_leader(c->nodes[i].rn);
            if (l == 0 || (leader && l != leader))
                agree = false;
            leader = l;
        }
        if (agree && leader && c->nodes[leader - 1].rn && raft_node_is_leader(c->nodes[leader - 1].rn))
            return (int)leader - 1;
        sleep_ms(5);
    } while (clock_mono_ms() < end);
    return -1;
}

/* Waits until every running member has applied count commands. */
static bool wait_applied(struct tcluster *c, int count, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    do {
        bool all = true;
        for (int i = 0; i < c->n; i++)
            if (c->nodes[i].rn && c->nodes[i].member && tfsm_count(&c->nodes[i].fsm) < count)
                all = false;
        if (all)
            return true;
        sleep_ms(5);
    } while (clock_mono_ms() < end);
    return false;
}

/* Every running member has applied the same history, in order. */
static void check_same(struct tcluster *c, int count)
{
    struct tfsm *first = NULL;
    for (int i = 0; i < c->n; i++) {
        if (!c->nodes[i].rn || !c->nodes[i].member)
            continue;
        struct tfsm *f = &c->nodes[i].fsm;
        CHECK(!f->out_of_order);
        CHECK_EQ(tfsm_count(f), count);
        if (first && !tfsm_same(first, f)) {
            for (int k = 0; k < count; k++)
                fprintf(stderr, "  %d: %llu %.*s | %llu %.*s\n", k, (unsigned long long)first->log[k].index,
                        (int)first->log[k].len, first->log[k].data, (unsigned long long)f->log[k].index,
                        (int)f->log[k].len, f->log[k].data);
            CHECK(tfsm_same(first, f));
        }
        first = f;
    }
}

/* ---- proposals ------------------------------------------------------------ */

struct waiter {
    atomic_int calls;
    atomic_int status;
    _Atomic uint64_t index;
    atomic_int on_other_thread; /* done ran on a thread other than the test's */
};

static pthread_t test_thread;

static void on_done(void *arg, int status, uint64_t index)
{
    struct waiter *w = arg;
    atomic_store(&w->status, status);
    atomic_store(&w->index, index);
    atomic_store(&w->on_other_thread, !pthread_equal(pthread_self(), test_thread));
    atomic_fetch_add(&w->calls, 1);
}

static bool wait_done(struct waiter *w, int n, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            if (atomic_load(&w[i].calls) == 0)
                all = false;
        if (all)
            return true;
        if (clock_mono_ms() >= end)
            return false;
        sleep_ms(2);
    }
}

/* Proposes "cmd-<k>" for k in [from, to) on node i and waits for all of
 * them to commit; their indexes increase. */
static void propose_ok(struct tcluster *c, int i, int from, int to)
{
    static struct waiter w[MAXE];
    memset(w, 0, sizeof w);
    test_thread = pthread_self();
    for (int k = from; k < to; k++) {
        char cmd[CMD_MAX];
        int len = snprintf(cmd, sizeof cmd, "cmd-%d", k);
        CHECK_EQ(raft_node_propose(c->nodes[i].rn, cmd, (size_t)len, on_done, &w[k - from]), 0);
    }
    CHECK(wait_done(w, to - from, 5000));
    uint64_t prev = 0;
    for (int k = 0; k < to - from; k++) {
        CHECK_EQ(atomic_load(&w[k].calls), 1);
        CHECK_EQ(atomic_load(&w[k].status), RAFT_NODE_OK);
        CHECK(atomic_load(&w[k].on_other_thread));
        CHECK(atomic_load(&w[k].index) > prev);
        prev = atomic_load(&w[k].index);
    }
}

/* The k-th command applied on node i is cmd-<k>. */
static void check_commands(struct tcluster *c, int i, int count)
{
    struct tfsm *f = &c->nodes[i].fsm;
    pthread_mutex_lock(&f->mu);
    for (int k = 0; k < count; k++) {
        char cmd[CMD_MAX];
        int len = snprintf(cmd, sizeof cmd, "cmd-%d", k);
        CHECK_EQ(f->log[k].len, len);
        CHECK(memcmp(f->log[k].data, cmd, (size_t)len) == 0);
    }
    pthread_mutex_unlock(&f->mu);
}

/* ---- tests ------------------------------------------------------------------- */

TEST(test_raft_node_three_nodes_agree)
{
    struct tcluster c;
    cluster_init(&c, 3, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 20);
    CHECK(wait_applied(&c, 20, 3000));
    check_same(&c, 20);
    check_commands(&c, l, 20);

    /* an empty command is a command too */
    struct waiter w = {0};
    CHECK_EQ(raft_node_propose(c.nodes[l].rn, "", 0, on_done, &w), 0);
    CHECK(wait_done(&w, 1, 3000));
    CHECK_EQ(atomic_load(&w.status), RAFT_NODE_OK);
    CHECK(wait_applied(&c, 21, 3000));
    check_same(&c, 21);
    CHECK_EQ(c.nodes[l].fsm.log[20].len, 0);
    CHECK_EQ(c.nodes[l].fsm.log[20].index, atomic_load(&w.index));

    /* every node heard who leads; only the leader heard it is itself, once */
    for (int i = 0; i < 3; i++) {
        struct tfsm *f = &c.nodes[i].fsm;
        CHECK_EQ(f->leader, l + 1);
        CHECK_EQ(f->is_self, i == l);
        CHECK_EQ(f->self_calls, i == l);
        CHECK(!pthread_equal(f->thread, pthread_self()));
    }
    cluster_stop(&c);
    /* the leader heard it stopped leading */
    CHECK_EQ(c.nodes[l].fsm.leader, 0);
    CHECK(!c.nodes[l].fsm.is_self);
}

TEST(test_raft_node_follower_refuses)
{
    struct tcluster c;
    cluster_init(&c, 3, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    int fo = (l + 1) % 3;
    CHECK(!raft_node_is_leader(c.nodes[fo].rn));
    struct waiter w = {0};
    CHECK_EQ(raft_node_propose(c.nodes[fo].rn, "x", 1, on_done, &w), 0);
    CHECK(wait_done(&w, 1, 3000));
    CHECK_EQ(atomic_load(&w.status), RAFT_NODE_NOT_LEADER);
    CHECK_EQ(atomic_load(&w.index), 0);
    /* done may be NULL */
    CHECK_EQ(raft_node_propose(c.nodes[fo].rn, "y", 1, NULL, NULL), 0);
    propose_ok(&c, l, 0, 3);
    CHECK(wait_applied(&c, 3, 3000));
    check_same(&c, 3);
    check_commands(&c, fo, 3);
    cluster_stop(&c);
}

TEST(test_raft_node_leader_failover)
{
    struct tcluster c;
    cluster_init(&c, 3, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 5);
    CHECK(wait_applied(&c, 5, 3000));
    node_stop(&c, l);

    int l2 = wait_leader(&c, 5000);
    CHECK(l2 >= 0 && l2 != l);
    propose_ok(&c, l2, 5, 10);
    CHECK(wait_applied(&c, 10, 3000));
    check_same(&c, 10);
    check_commands(&c, l2, 10);

    /* the old leader comes back as a follower and catches up without
     * deposing the new one */
    node_start(&c, l);
    CHECK(wait_applied(&c, 10, 5000));
    check_same(&c, 10);
    CHECK_EQ(wait_leader(&c, 3000), l2);
    CHECK_EQ(c.nodes[l2].fsm.self_calls, 1);
    cluster_stop(&c);
}

/* A follower restarts from its own snapshot and log. */
TEST(test_raft_node_restart_from_snapshot)
{
    struct tcluster c;
    cluster_init(&c, 3, 8, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    int fo = (l + 1) % 3;
    /* In rounds until the follower took a second snapshot: raft starts one
     * only after the previous one is on disk, so then one surely is. */
    int count = 0;
    for (;;) {
        propose_ok(&c, l, count, count + 8);
        count += 8;
        CHECK(wait_applied(&c, count, 3000));
        pthread_mutex_lock(&c.nodes[fo].fsm.mu);
        int snapshots = c.nodes[fo].fsm.snapshots;
        pthread_mutex_unlock(&c.nodes[fo].fsm.mu);
        if (snapshots >= 2)
            break;
        CHECK(count < 80);
    }
    check_same(&c, count);
    node_stop(&c, fo);

    propose_ok(&c, l, count, count + 10);
    count += 10;
    node_start(&c, fo);
    /* restored at start, before any apply */
    CHECK_EQ(c.nodes[fo].fsm.restores, 1);
    CHECK(c.nodes[fo].fsm.restored_index >= 8);
    CHECK(wait_applied(&c, count, 5000));
    check_same(&c, count);
    check_commands(&c, fo, count);
    cluster_stop(&c);
}

/* A follower so far behind that the leader no longer has the entries it
 * needs gets the leader's snapshot while running. */
TEST(test_raft_node_install_snapshot)
{
    struct tcluster c;
    cluster_init(&c, 3, 8, 2);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 3);
    CHECK(wait_applied(&c, 3, 3000));
    int fo = (l + 1) % 3;
    node_stop(&c, fo);
    uint64_t had = c.nodes[fo].fsm.last_index;

    /* In rounds until the leader started a third snapshot: raft starts one
     * only after the previous one is on disk and the log behind it dropped,
     * so the entries the follower lacks are surely gone. Restarting it right
     * after the proposals raced the leader's first snapshot write. */
    int count = 3;
    for (;;) {
        propose_ok(&c, l, count, count + 8);
        count += 8;
        pthread_mutex_lock(&c.nodes[l].fsm.mu);
        int snapshots = c.nodes[l].fsm.snapshots;
        pthread_mutex_unlock(&c.nodes[l].fsm.mu);
        if (snapshots >= 3)
            break;
        CHECK(count < 120);
    }
    node_start(&c, fo);
    CHECK_EQ(c.nodes[fo].fsm.restores, 0); /* too few entries for its own snapshot */
    CHECK(wait_applied(&c, count, 5000));
    check_same(&c, count);
    CHECK(c.nodes[fo].fsm.restores >= 1);
    /* the leader's latest snapshot when it caught the follower up */
    CHECK(c.nodes[fo].fsm.restored_index >= 8 && c.nodes[fo].fsm.restored_index > had);
    cluster_stop(&c);
}

/* The whole cluster restarts: the new leader's barrier commits the old
 * entries, so every node replays them without a new proposal. */
TEST(test_raft_node_cluster_restart)
{
    struct tcluster c;
    cluster_init(&c, 3, 8, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 12);
    CHECK(wait_applied(&c, 12, 3000));
    cluster_stop(&c);

    cluster_start(&c);
    CHECK(wait_leader(&c, 5000) >= 0);
    CHECK(wait_applied(&c, 12, 3000));
    check_same(&c, 12);
    check_commands(&c, 0, 12);
    cluster_stop(&c);
}

TEST(test_raft_node_single_voter)
{
    struct tcluster c;
    cluster_init(&c, 1, 0, 0);
    cluster_start(&c);
    CHECK_EQ(wait_leader(&c, 2000), 0);
    CHECK(raft_node_is_leader(c.nodes[0].rn));
    CHECK_EQ(raft_node_leader(c.nodes[0].rn), 1);
    propose_ok(&c, 0, 0, 10);
    CHECK_EQ(tfsm_count(&c.nodes[0].fsm), 10);
    struct tfsm before = c.nodes[0].fsm;
    node_stop(&c, 0);

    /* restart: replays the same commands at the same indexes */
    node_start(&c, 0);
    CHECK(wait_applied(&c, 10, 2000));
    CHECK_EQ(tfsm_count(&c.nodes[0].fsm), 10);
    CHECK(memcmp(before.log, c.nodes[0].fsm.log, 10 * sizeof before.log[0]) == 0);
    CHECK_EQ(wait_leader(&c, 2000), 0);
    propose_ok(&c, 0, 10, 15);
    check_commands(&c, 0, 15);
    cluster_stop(&c);
}

/* Stopping with proposals queued and in flight: each done runs once, with OK
 * or a failure; none is lost (ASan checks nothing leaks). */
TEST(test_raft_node_stop_fails_pending)
{
    struct tcluster c;
    cluster_init(&c, 3, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    /* without followers nothing can commit */
    node_stop(&c, (l + 1) % 3);
    node_stop(&c, (l + 2) % 3);
    static struct waiter w[100];
    for (int k = 0; k < 100; k++)
        CHECK_EQ(raft_node_propose(c.nodes[l].rn, "z", 1, on_done, &w[k]), 0);
    sleep_ms(20);
    node_stop(&c, l);
    for (int k = 0; k < 100; k++) {
        CHECK_EQ(atomic_load(&w[k].calls), 1);
        int st = atomic_load(&w[k].status);
        CHECK(st == RAFT_NODE_SHUTDOWN || st == RAFT_NODE_LEADERSHIP_LOST || st == RAFT_NODE_NOT_LEADER);
    }
    CHECK_EQ(tfsm_count(&c.nodes[l].fsm), 0);
}

TEST(test_raft_node_bad_config)
{
    struct tcluster c;
    cluster_init(&c, 1, 0, 0);
    struct tfsm f;
    tfsm_init(&f);
    struct raft_node_fsm fsm = {&f, t_apply, t_snapshot, t_restore, NULL};
    char err[256] = "";
    /* not among the voters */
    struct raft_node_config cfg = {.id = 7, .dir = c.nodes[0].dir, .address = c.voters[0].address,
                                   .nvoters = 1, .voters = c.voters};
    CHECK(raft_node_start(&cfg, &fsm, err, sizeof err) == NULL);
    CHECK(strstr(err, "not among the voters"));
    /* no voters at all is fine only in join mode */
    cfg.nvoters = 0;
    CHECK(raft_node_start(&cfg, &fsm, err, sizeof err) == NULL);
    CHECK(strstr(err, "no voters"));
    cfg.nvoters = 1;
    /* heartbeat not below the election timeout */
    cfg.id = 1;
    cfg.election_timeout_ms = 100;
    cfg.heartbeat_timeout_ms = 100;
    CHECK(raft_node_start(&cfg, &fsm, err, sizeof err) == NULL);
    /* an address raft cannot parse fails in setup, cleanly */
    cfg.election_timeout_ms = 0;
    cfg.heartbeat_timeout_ms = 0;
    cfg.address = "not an address";
    err[0] = 0;
    CHECK(raft_node_start(&cfg, &fsm, err, sizeof err) == NULL);
    CHECK(err[0] != 0);
}

/* ---- membership ---------------------------------------------------------------- */

struct cwaiter {
    atomic_int calls;
    atomic_int status;
};

static void on_change_done(void *arg, int status)
{
    struct cwaiter *w = arg;
    atomic_store(&w->status, status);
    atomic_fetch_add(&w->calls, 1);
}

/* Waits for a change's done; returns its status, or 1 on timeout. */
static int change_wait(struct cwaiter *w, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (atomic_load(&w->calls) == 0) {
        if (clock_mono_ms() >= end)
            return 1;
        sleep_ms(2);
    }
    sleep_ms(5); /* done runs once: a second call would show now */
    CHECK_EQ(atomic_load(&w->calls), 1);
    return atomic_load(&w->status);
}

/* Node l (the leader) adds server i and waits for the change to commit. */
static void add_ok(struct tcluster *c, int l, int i, bool voter)
{
    struct cwaiter w = {0};
    CHECK_EQ(raft_node_add(c->nodes[l].rn, c->voters[i].id, c->voters[i].address, voter, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 5000), RAFT_NODE_OK);
    c->nodes[i].member = true;
}

/* The role of id in node i's configuration, 0 if absent; *count members. */
static int member_role(struct tcluster *c, int i, uint64_t id, int *count)
{
    struct raft_node_member m[MAXN + 1];
    int nm = raft_node_members(c->nodes[i].rn, m, MAXN + 1);
    CHECK(nm <= MAXN + 1);
    if (count)
        *count = nm;
    for (int k = 0; k < nm; k++)
        if (m[k].id == id)
            return (int)m[k].role;
    return 0;
}

/* Waits until every running member (and node also, if >= 0) lists count
 * members, id among them with role (0: absent). */
static bool wait_members(struct tcluster *c, int also, int count, uint64_t id, int role, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    do {
        bool all = true;
        for (int i = 0; i < c->n && all; i++) {
            if (!c->nodes[i].rn || (!c->nodes[i].member && i != also))
                continue;
            int nm;
            all = member_role(c, i, id, &nm) == role && nm == count;
        }
        if (all)
            return true;
        sleep_ms(5);
    } while (clock_mono_ms() < end);
    return false;
}

/* A server in join mode (not among the voters) waits; added as a standby it
 * gets the whole log, keeps up, survives a restart, and never counts for a
 * commit. */
TEST(test_raft_node_join_standby)
{
    struct tcluster c;
    cluster_init_join(&c, 3, 1, 0, 0);
    cluster_start(&c); /* node 4 starts though it is no voter: it joins */
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 10);
    CHECK(wait_applied(&c, 10, 3000));
    for (int i = 0; i < 3; i++)
        CHECK(wait_members(&c, -1, 3, c.voters[i].id, RAFT_NODE_VOTER, 1000));

    /* not added yet: it hears nothing */
    sleep_ms(400);
    CHECK_EQ(tfsm_count(&c.nodes[3].fsm), 0);
    CHECK_EQ(raft_node_members(c.nodes[3].rn, NULL, 0), 0);
    CHECK_EQ(raft_node_leader(c.nodes[3].rn), 0);

    add_ok(&c, l, 3, false);
    /* the leader's copy is fresh when done runs */
    CHECK_EQ(member_role(&c, l, 4, NULL), RAFT_NODE_STANDBY);
    CHECK(wait_members(&c, -1, 4, 4, RAFT_NODE_STANDBY, 3000));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(member_role(&c, 3, c.voters[i].id, NULL), RAFT_NODE_VOTER);
    /* the whole log, at the same indexes */
    CHECK(wait_applied(&c, 10, 3000));
    check_same(&c, 10);
    check_commands(&c, 3, 10);
    CHECK_EQ(c.nodes[3].fsm.restores, 0);
    /* and what comes next */
    propose_ok(&c, l, 10, 20);
    CHECK(wait_applied(&c, 20, 3000));
    check_same(&c, 20);
    CHECK(wait_leader(&c, 1000) == l); /* it knows the leader, and never leads */
    CHECK_EQ(c.nodes[3].fsm.self_calls, 0);

    /* it does not count: commits go on without it */
    node_stop(&c, 3);
    propose_ok(&c, l, 20, 25);
    CHECK(wait_applied(&c, 25, 3000));

    /* restarted, it is a member from its own dir and catches up */
    node_start(&c, 3);
    CHECK_EQ(member_role(&c, 3, 4, NULL), RAFT_NODE_STANDBY);
    CHECK(wait_applied(&c, 25, 5000));
    check_same(&c, 25);
    check_commands(&c, 3, 25);

    /* a standby is no voter: with two voters down nothing commits */
    node_stop(&c, (l + 1) % 3);
    node_stop(&c, (l + 2) % 3);
    struct waiter w = {0};
    CHECK_EQ(raft_node_propose(c.nodes[l].rn, "never", 5, on_done, &w), 0);
    sleep_ms(1000);
    CHECK(atomic_load(&w.calls) == 0 || atomic_load(&w.status) != RAFT_NODE_OK);
    CHECK_EQ(tfsm_count(&c.nodes[l].fsm), 25);
    CHECK_EQ(tfsm_count(&c.nodes[3].fsm), 25);
    cluster_stop(&c);
    CHECK_EQ(atomic_load(&w.calls), 1);
    CHECK(atomic_load(&w.status) != RAFT_NODE_OK);
}

/* A server joining after the leader compacted its log gets the snapshot
 * first, then the entries after it. */
TEST(test_raft_node_join_from_snapshot)
{
    struct tcluster c;
    cluster_init_join(&c, 3, 1, 8, 2);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 30);
    CHECK(wait_applied(&c, 30, 3000));
    add_ok(&c, l, 3, false);
    CHECK(wait_applied(&c, 30, 5000));
    CHECK(c.nodes[3].fsm.restores >= 1);
    check_same(&c, 30);
    propose_ok(&c, l, 30, 35);
    CHECK(wait_applied(&c, 35, 3000));
    check_same(&c, 35);
    check_commands(&c, 3, 35);
    cluster_stop(&c);
}

/* Changes that are no-ops, refused, or move a member; removal. */
TEST(test_raft_node_remove_member)
{
    struct tcluster c;
    cluster_init_join(&c, 3, 1, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    int fo = (l + 1) % 3;
    propose_ok(&c, l, 0, 5);

    /* a follower refuses */
    struct cwaiter w = {0};
    CHECK_EQ(raft_node_add(c.nodes[fo].rn, 4, c.voters[3].address, false, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_NOT_LEADER);
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_remove(c.nodes[fo].rn, 2, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_NOT_LEADER);
    /* bad arguments are refused at once */
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 0, "127.0.0.1:1", false, NULL, NULL), -1);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, "", false, NULL, NULL), -1);
    CHECK_EQ(raft_node_remove(c.nodes[l].rn, 0, NULL, NULL), -1);

    add_ok(&c, l, 3, false);
    CHECK(wait_applied(&c, 5, 3000));
    /* again with the same role and address: nothing to do (done may be NULL) */
    add_ok(&c, l, 3, false);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, c.voters[3].address, false, NULL, NULL), 0);
    /* the leader may not remove or demote itself; an address is one member's */
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_remove(c.nodes[l].rn, (uint64_t)l + 1, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_INVALID);
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, (uint64_t)l + 1, c.voters[l].address, false, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_INVALID);
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 9, c.voters[fo].address, false, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_INVALID);
    CHECK(wait_members(&c, -1, 4, 4, RAFT_NODE_STANDBY, 3000));

    /* removed: the members shrink everywhere else, and it hears no more */
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_remove(c.nodes[l].rn, 4, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 5000), RAFT_NODE_OK);
    c.nodes[3].member = false;
    CHECK_EQ(member_role(&c, l, 4, NULL), 0);
    CHECK(wait_members(&c, -1, 3, 4, 0, 3000));
    propose_ok(&c, l, 5, 10);
    CHECK(wait_applied(&c, 10, 3000));
    check_same(&c, 10);
    sleep_ms(300);
    CHECK_EQ(tfsm_count(&c.nodes[3].fsm), 5);
    /* removing a non-member is done at once */
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_remove(c.nodes[l].rn, 4, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 3000), RAFT_NODE_OK);

    /* a member at another address is removed and added again: standby 4 at
     * a port where nothing listens (a standby commits without it) */
    add_ok(&c, l, 3, false);
    c.nodes[3].member = false;
    memset(&w, 0, sizeof w);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, "127.0.0.1:1", false, on_change_done, &w), 0);
    CHECK_EQ(change_wait(&w, 5000), RAFT_NODE_OK);
    struct raft_node_member m[MAXN];
    int nm = raft_node_members(c.nodes[l].rn, m, MAXN);
    CHECK_EQ(nm, 4);
    bool found = false;
    for (int k = 0; k < nm; k++)
        if (m[k].id == 4) {
            found = true;
            CHECK(strcmp(m[k].address, "127.0.0.1:1") == 0);
            CHECK_EQ(m[k].role, RAFT_NODE_STANDBY);
        }
    CHECK(found);
    /* a short out array gets the first members; the count is all of them */
    CHECK_EQ(raft_node_members(c.nodes[l].rn, m, 1), 4);
    cluster_stop(&c);
}

/* Several changes requested at once run one after another and all complete:
 * a standby, a voter (caught up, then promoted), then the standby promoted. */
TEST(test_raft_node_concurrent_changes)
{
    struct tcluster c;
    cluster_init_join(&c, 3, 2, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    propose_ok(&c, l, 0, 10);

    struct cwaiter w[3] = {0};
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, c.voters[3].address, false, on_change_done, &w[0]), 0);
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 5, c.voters[4].address, true, on_change_done, &w[1]), 0);
    CHECK_EQ(change_wait(&w[0], 5000), RAFT_NODE_OK);
    CHECK_EQ(change_wait(&w[1], 5000), RAFT_NODE_OK);
    c.nodes[3].member = c.nodes[4].member = true;
    CHECK(wait_members(&c, -1, 5, 4, RAFT_NODE_STANDBY, 3000));
    CHECK(wait_members(&c, -1, 5, 5, RAFT_NODE_VOTER, 3000));
    CHECK(wait_applied(&c, 10, 3000));
    check_same(&c, 10);

    /* a standby promoted by adding it again as a voter */
    CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, c.voters[3].address, true, on_change_done, &w[2]), 0);
    CHECK_EQ(change_wait(&w[2], 5000), RAFT_NODE_OK);
    CHECK(wait_members(&c, -1, 5, 4, RAFT_NODE_VOTER, 3000));

    /* five voters: two down still leave a majority */
    node_stop(&c, (l + 1) % 3);
    node_stop(&c, (l + 2) % 3);
    propose_ok(&c, l, 10, 15);
    CHECK(wait_applied(&c, 15, 3000));
    check_same(&c, 15);
    check_commands(&c, 4, 15);
    cluster_stop(&c);
}

/* Stopping fails queued changes once each. */
TEST(test_raft_node_stop_fails_changes)
{
    struct tcluster c;
    cluster_init_join(&c, 3, 1, 0, 0);
    cluster_start(&c);
    int l = wait_leader(&c, 5000);
    CHECK(l >= 0);
    /* without followers no change commits */
    node_stop(&c, (l + 1) % 3);
    node_stop(&c, (l + 2) % 3);
    static struct cwaiter w[10];
    for (int k = 0; k < 10; k++)
        CHECK_EQ(raft_node_add(c.nodes[l].rn, 4, c.voters[3].address, false, on_change_done, &w[k]), 0);
    sleep_ms(20);
    node_stop(&c, l);
    for (int k = 0; k < 10; k++) {
        CHECK_EQ(atomic_load(&w[k].calls), 1);
        int st = atomic_load(&w[k].status);
        CHECK(st == RAFT_NODE_SHUTDOWN || st == RAFT_NODE_LEADERSHIP_LOST || st == RAFT_NODE_NOT_LEADER);
    }
    CHECK_EQ(raft_node_members(c.nodes[3].rn, NULL, 0), 0);
    cluster_stop(&c);
}

/* A lone voter (a one-controller cluster) takes a standby too. */
TEST(test_raft_node_single_voter_standby)
{
    struct tcluster c;
    cluster_init_join(&c, 1, 1, 0, 0);
    cluster_start(&c);
    CHECK_EQ(wait_leader(&c, 2000), 0);
    propose_ok(&c, 0, 0, 5);
    add_ok(&c, 0, 1, false);
    CHECK(wait_members(&c, -1, 2, 2, RAFT_NODE_STANDBY, 3000));
    propose_ok(&c, 0, 5, 10);
    CHECK(wait_applied(&c, 10, 3000));
    check_same(&c, 10);
    check_commands(&c, 1, 10);
    cluster_stop(&c);
}
