/* group.h: the group coordinator: consumer groups with Kafka's classic
 * rebalance protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup),
 * static membership, and committed offsets.  Offsets and group metadata are
 * written to the internal compacted topic __consumer_offsets (formats in
 * group_store.h) before a commit is acknowledged, and read back at start-up.
 * In a cluster this broker coordinates only the groups whose partition of
 * __consumer_offsets it leads: they are loaded when it starts leading that
 * partition and dropped when it stops (gstore_partition_led), and commits
 * and group metadata are acknowledged once replicated (high watermark).
 *
 * The handlers (handle_*_group.c, handle_offset_*.c) decode and encode the
 * wire messages; this module owns every group's state and answers parked
 * JoinGroup and SyncGroup requests when a rebalance step completes.
 * Loop thread only.
 *
 * States (Kafka's names):
 *   EMPTY                 no members; offsets may still be kept
 *   PREPARING_REBALANCE   waiting for members to (re)join
 *   COMPLETING_REBALANCE  joined; waiting for the leader's assignment
 *   STABLE                assignments handed out; members heartbeat
 *   DEAD                  deleted; removed from the table at once */
#ifndef SHOPSTREAM_GROUP_H
#define SHOPSTREAM_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "protocol/kmsg.h"

enum group_state {
    GROUP_EMPTY,
    GROUP_PREPARING_REBALANCE,
    GROUP_COMPLETING_REBALANCE,
    GROUP_STABLE,
    GROUP_DEAD,
};

struct group_protocol {
    char *name;        /* owned */
    uint8_t *metadata; /* owned */
    int32_t len;
};

struct group_member {
    char *id;                  /* owned */
    char *instance_id;         /* owned, NULL for dynamic members */
    char *client_id, *client_host; /* owned */
    int32_t session_timeout_ms, rebalance_timeout_ms;
    struct group_protocol *protocols; /* owned, in the member's preference order */
    int nprotocols;
    uint8_t *assignment;       /* owned, from the leader's SyncGroup */
    int32_t assignment_len;
    int64_t last_seen_ms;      /* monotonic: last heartbeat, join or sync */
    struct request *join_req;  /* a parked JoinGroup, or NULL */
    struct request *sync_req;  /* a parked SyncGroup, or NULL */
};

struct group_offset {
    char *topic;       /* owned */
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;    /* owned */
    int64_t commit_ms; /* wall time */
    int64_t log_end;   /* the log end after the record that set it: a commit
                        * that completes later but was written earlier does
                        * not overwrite a newer one */
};

/* A member id handed out with MEMBER_ID_REQUIRED, good until it is used in
 * a JoinGroup or its session timeout passes. */
struct group_pending {
    char *id;           /* owned */
    int64_t expires_ms; /* monotonic */
};

struct group {
    char *id;                  /* owned */
    enum group_state state;
    int32_t generation;
    char *protocol_type;       /* owned, NULL while empty and new */
    char *protocol;            /* owned: the chosen assignor */
    char *leader;              /* owned member id */
    struct group_member **members; /* owned */
    int nmembers, capmembers;
    struct group_offset *offsets;  /* owned */
    int noffsets, capoffsets;
    struct group_pending *pending; /* member ids handed out with MEMBER_ID_REQUIRED */
    int npending;
    int64_t rebalance_timer;   /* loop timer id, 0 if none */
    int64_t rebalance_deadline_ms;
    bool initial_join;         /* the first rebalance of an empty group */
    uint64_t pending_write;    /* the leader's SyncGroup waits for the replication
                                * of this metadata write (a token); 0 if none */
};

/* Cluster mode: whether one partition of __consumer_offsets has its groups
 * in memory (this broker leads it), and which leadership loaded them. */
struct coord_load {
    bool loaded;
    int32_t leader_epoch;
    kuuid topic_id;    /* a topic deleted and created again starts afresh */
};

struct coordinator {
    struct group **groups;     /* owned */
    int ngroups, capgroups;
    struct topic *offsets_topic; /* borrows __consumer_offsets */
    int64_t initial_delay_ms;  /* group.initial.rebalance.delay.ms */
    int32_t min_session_ms, max_session_ms; /* group.min/max.session.timeout.ms */
    int32_t max_metadata_bytes;    /* offset.metadata.max.bytes */
    int64_t commit_timeout_ms;     /* offsets.commit.timeout.ms: the wait for replication */
    struct coord_load *loads;      /* owned, cluster mode: by partition index */
    int nloads;
    uint64_t next_write;           /* the last pending_write token handed out */
};

/* Creates __consumer_offsets if missing and loads every group from it.
 * Returns 0 or -1 with a message. */
int coord_init(struct broker *b, char *err, size_t errlen);
void coord_free(struct broker *b);
/* Expires members whose session timed out.  Called every tick. */
void coord_tick(struct broker *b);

struct group *coord_find(struct broker *b, kstr id);

/* Each writes the response body into r->out and returns API_DONE, or parks
 * the request and returns API_PARKED. */
int group_join(struct broker *b, struct request *r, const struct JoinGroupRequest *req);
int group_sync(struct broker *b, struct request *r, const struct SyncGroupRequest *req);
/* These return a Kafka error code. */
int group_heartbeat(struct broker *b, const struct HeartbeatRequest *req);
int group_leave_member(struct broker *b, struct group *g, kstr member_id, kstr instance_id);
int group_delete(struct broker *b, kstr id);
/* One member as a group metadata record stores it. */
struct group_restored_member {
    kstr id, instance_id, client_id, client_host;
    int32_t rebalance_timeout_ms, session_timeout_ms;
    kbytes subscription, assignment;
};

/* Start-up replay: sets the group as its last metadata record left it.
 * Members come back only from a Stable generation (every member has an
 * assignment); they then have one session timeout to heartbeat, as after a
 * restart of Kafka.  Otherwise the group is Empty at that generation. */
void group_restore(struct group *g, int32_t generation, kstr protocol_type, kstr protocol, kstr leader,
                   const struct group_restored_member *members, int n);

/* Drops a group from memory only (replay of a deleted group). */
void group_forget(struct broker *b, kstr id);

/* Drops from memory every group of partition `partition` of a topic of
 * `npartitions` partitions (every group when partition < 0): this broker no
 * longer coordinates them.  Parked JoinGroup and SyncGroup requests are
 * answered NOT_COORDINATOR and timers cancelled.  Returns how many. */
int coord_unload(struct broker *b, int32_t partition, int32_t npartitions);

/* Checks that a member may commit for the group (generation -1 with an
 * empty member id is an assign()-style commit, allowed while the group has
 * no members).  Returns a Kafka error code.  *out is the group, created
 * when missing. */
int group_check_commit(struct broker *b, kstr id, int32_t generation, kstr member_id, kstr instance_id,
                       struct group **out);
/* Stores one committed offset in memory (group_store persists it), unless
 * the stored one was written later (log_end: the log end after the record;
 * 0 ignores the order). */
int group_set_offset(struct group *g, const char *topic, int32_t partition, int64_t offset, int32_t epoch,
                     const char *metadata, int64_t commit_ms, int64_t log_end);
struct group_offset *group_get_offset(struct group *g, const char *topic, size_t topic_len, int32_t partition);
/* Removes one committed offset; returns true if it existed. */
bool group_remove_offset(struct group *g, const char *topic, int32_t partition);
/* Whether an active member subscribes to topic (consumer protocol). */
bool group_subscribed(const struct group *g, const char *topic);

const char *group_state_name(enum group_state s);

/* Java's String.hashCode of the group id, modulo n, made positive as Kafka
 * does: which __consumer_offsets partition holds the group. */
int32_t group_partition_for(const char *id, size_t len, int32_t n);

#endif
