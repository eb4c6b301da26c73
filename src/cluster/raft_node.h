/* raft_node.h: one Raft server (libraft 0.15 on libuv) running on its own
 * thread.  It replicates a log of opaque commands among its members and hands
 * committed commands to a state machine the caller supplies; what the
 * commands mean is left to the caller (the cluster metadata).  The voters
 * start as Kafka's controller.quorum.voters; other servers start in join mode
 * and are added by the leader, usually as standbys that receive the log but
 * do not vote (raft_node_add).  Raft keeps its log, metadata and snapshots
 * in cfg->dir in libraft's own format (see <raft/uv.h>).  A command entry
 * is an 8-byte header (command length as u32 little endian, format 1 as u32
 * little endian), the command, and zeros up to a multiple of 8 bytes.  A
 * snapshot's data is a 16-byte header (magic "RNS1", 4 zero bytes, raft
 * index as u64 little endian) and the bytes fsm->snapshot returned. */
#ifndef SHOPSTREAM_RAFT_NODE_H
#define SHOPSTREAM_RAFT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status passed to a proposal's done callback. */
enum raft_node_status {
    RAFT_NODE_OK = 0,
    RAFT_NODE_NOT_LEADER = -1,      /* this node is not the leader: retry on the leader */
    RAFT_NODE_LEADERSHIP_LOST = -2, /* appended, then leadership was lost: it may or may not commit */
    RAFT_NODE_SHUTDOWN = -3,        /* the node stopped before the entry was applied */
    RAFT_NODE_ERROR = -4,           /* out of memory or an I/O error */
    RAFT_NODE_INVALID = -5,         /* a membership change this wrapper refuses: removing or demoting the
                                       leader itself, or an address another member already has */
    RAFT_NODE_NO_CATCHUP = -6,      /* promotion to voter aborted: the server did not catch up in time
                                       (down or too slow); it stays a member with its old role */
};

/* A member's role in the configuration, as libraft names them. */
enum raft_node_role {
    RAFT_NODE_VOTER = 1,   /* receives the log and votes: counts for commits and elections */
    RAFT_NODE_STANDBY = 2, /* receives and applies the log, never votes nor leads */
    RAFT_NODE_SPARE = 3,   /* neither: only between the two steps of raft_node_add */
};

struct raft_node_member {
    uint64_t id;              /* node.id */
    char address[128];        /* "host:port" of its raft listener */
    enum raft_node_role role; /* its role in this configuration */
};

struct raft_node_voter {
    uint64_t id;       /* the voter's node.id, > 0 */
    char address[128]; /* "host:port" of its raft listener */
};

struct raft_node_config {
    uint64_t id;                          /* this server's id (Kafka node.id), > 0; among the voters unless join */
    const char *dir;                      /* raft's own data dir, created if missing (with parents) */
    const char *address;                  /* "host:port" to bind, also the address peers are told */
    int nvoters;                          /* >= 1, or >= 0 with join */
    const struct raft_node_voter *voters; /* the initial voter set; every voter gets the same */
    /* Do not bootstrap: start with the configuration stored in dir (none on
     * the first start) and wait for the leader to add this server with
     * raft_node_add.  Until then apply is never called and the leader reads
     * as 0.  voters is then only checked, not used. */
    bool join;
    unsigned election_timeout_ms;         /* default 1000 if 0; raft randomizes it to 1x..2x */
    unsigned heartbeat_timeout_ms;        /* default 100 if 0; must be below the election timeout */
    unsigned snapshot_threshold;          /* applied entries between snapshots, default 1024 if 0 */
    unsigned snapshot_trailing;           /* entries kept behind a snapshot for slow followers, default 2048 if 0 */
};

/* Callbacks run on the raft thread, one at a time; they may call
 * raft_node_propose but must not block for long (they hold up replication). */
struct raft_node_fsm {
    void *arg;
    /* A committed command, in log order, exactly once per start (after any
     * restore).  index is the raft index; indexes have gaps where raft keeps
     * entries of its own (configuration, the leader's barrier). */
    void (*apply)(void *arg, const void *buf, size_t len, uint64_t index);
    /* The whole state as of the last applied index, as one buffer allocated
     * with xmalloc (raft_node takes it and frees it with xfree; *buf may be
     * NULL when *len is 0).  Returns 0, or -1 to skip this snapshot (raft
     * tries again after a later apply). */
    int (*snapshot)(void *arg, void **buf, size_t *len);
    /* Replaces the whole state with a snapshot taken at index; buf is a view
     * valid during the call.  Runs at start and when the leader sends a
     * snapshot to a follower that fell behind.  Returns 0, or -1 leaving the
     * state unchanged. */
    int (*restore)(void *arg, const void *buf, size_t len, uint64_t index);
    /* The leader changed: leader_id 0 when unknown.  is_self is reported only
     * once this node's barrier for its term has been applied, so apply has
     * seen every entry committed before its term; until then the leader reads
     * as 0.  On stop, called with (0, false) if a leader was known.  May be
     * NULL. */
    void (*leader_changed)(void *arg, uint64_t leader_id, bool is_self);
};

struct raft_node;

/* Creates cfg->dir, bootstraps the voter configuration on first start (no
 * raft state in dir yet) unless cfg->join, starts raft on a new thread
 * "raft-<id>" and returns once raft has loaded its state (restore may
 * already have run there).
 * Borrows cfg during the call; copies fsm; borrows fsm->arg until
 * raft_node_stop.  Returns owned (free with raft_node_stop), or NULL with a
 * message in err. */
struct raft_node *raft_node_start(const struct raft_node_config *cfg, const struct raft_node_fsm *fsm, char *err,
                                  size_t errlen);

/* Any thread: proposes a command (copied; len may be 0).  done (may be NULL)
 * runs on the raft thread exactly once: with RAFT_NODE_OK and the entry's
 * index once it is committed and applied here, or with a negative
 * raft_node_status (index 0).  A failure does not prove the command was
 * dropped (LEADERSHIP_LOST, SHUTDOWN): apply is the truth.  Returns 0 if
 * queued, or -1 (done not called) if the node is stopping, out of memory, or
 * len is over 4 GiB - 9. */
int raft_node_propose(struct raft_node *n, const void *buf, size_t len,
                      void (*done)(void *arg, int status, uint64_t index), void *arg);

/* Any thread: the current leader id (0 unknown), as last published by the
 * raft thread (polled every 20 ms), and whether it is this node. */
uint64_t raft_node_leader(const struct raft_node *n);
bool raft_node_is_leader(const struct raft_node *n);

/* Membership changes.  Any thread (callbacks included).  Each request is
 * queued and run on the raft thread after the ones before it (libraft allows
 * one configuration change at a time), on this node only while it leads and
 * once its barrier for the term is applied.  done (may be NULL) runs on the
 * raft thread exactly once: RAFT_NODE_OK once the final configuration is
 * committed, or NOT_LEADER (this node does not lead now: retry on the leader),
 * LEADERSHIP_LOST (a step was appended, then leadership was lost: the
 * configuration may be half way, repeat the request on the new leader),
 * SHUTDOWN, INVALID, NO_CATCHUP or ERROR.  Requests are idempotent, so
 * repeating one is always safe.  Return 0 if queued, or -1 (done not called)
 * if the node is stopping, out of memory, id is 0 or address too long.
 *
 * raft_node_add makes id a member with the role RAFT_NODE_VOTER (voter) or
 * RAFT_NODE_STANDBY.  A new server is added (as a spare, libraft's only way),
 * then assigned its role; promotion to voter waits until its log has caught
 * up.  A member with that role and address already: OK at once; with another
 * role: assigned the new one (demoting the leader itself is INVALID).  A
 * member with another address (libraft cannot change one) is removed and
 * added again, unless it is the leader (INVALID).  Adding a standby commits
 * without it, so it works while the new server is down.  Borrows address
 * during the call. */
int raft_node_add(struct raft_node *n, uint64_t id, const char *address, bool voter,
                  void (*done)(void *arg, int status), void *arg);

/* Removes id from the configuration: OK once that is committed, or at once
 * if id is no member.  Removing the leader itself is INVALID (transfer
 * leadership away first, e.g. by stopping it).  The removed server is not
 * told (the leader stops replicating to it before the removal commits): it
 * keeps its last configuration, which still lists it, and hears nothing
 * more.  Stop it; with its dir kept it can be added again later. */
int raft_node_remove(struct raft_node *n, uint64_t id, void (*done)(void *arg, int status), void *arg);

/* Any thread: the configuration this node uses (the newest in its log,
 * committed or not), as last copied by the raft thread (at start, every
 * 20 ms, and before a change's done runs).  Copies up to max members into
 * out and returns how many there are (may exceed max); 0 for a joining
 * server not yet added. */
int raft_node_members(struct raft_node *n, struct raft_node_member *out, int max);

/* Any thread but the raft thread (not from a callback): fails queued and
 * in-flight proposals and membership changes with RAFT_NODE_SHUTDOWN, closes
 * raft and the loop, joins the thread and frees n.  A leader just stops (no
 * leadership transfer): the others elect a new one after the election
 * timeout. */
void raft_node_stop(struct raft_node *n);

#endif
