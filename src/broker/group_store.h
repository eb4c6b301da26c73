/* group_store.h: committed offsets and group metadata in the internal
 * compacted topic __consumer_offsets, in Apache Kafka's record layouts so
 * that tools which read that topic understand it:
 *   offset key    v1: int16 1, string group, string topic, int32 partition
 *   offset value  v3: int16 3, int64 offset, int32 leader epoch,
 *                     string metadata, int64 commit timestamp
 *   group key     v2: int16 2, string group
 *   group value   v3: int16 3, string protocol type, int32 generation,
 *                     nullable string protocol, nullable string leader,
 *                     int64 state timestamp, [member: string id, nullable
 *                     string instance id, string client id, string client
 *                     host, int32 rebalance timeout, int32 session timeout,
 *                     bytes subscription, bytes assignment]
 * A null value (tombstone) deletes the key.  The group's partition is
 * group_partition_for(id) over offsets.topic.num.partitions (default 50).
 *
 * Alone, the broker replays every partition at start-up.  In a cluster it
 * replays a partition when it starts leading it and drops its groups when it
 * stops (gstore_partition_led): the group APIs answer NOT_COORDINATOR for a
 * group whose partition is led elsewhere (gstore_check_coordinator), and
 * writes are acknowledged once the partition's high watermark passes them
 * (gstore_wait).  Loop thread only. */
#ifndef SHOPSTREAM_GROUP_STORE_H
#define SHOPSTREAM_GROUP_STORE_H

#include <stdbool.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "cluster/cluster.h"

#define GSTORE_TOPIC "__consumer_offsets"

/* Checks the settings and, when the topic exists, replays it into the
 * coordinator.  A fresh broker has no such topic until gstore_topic. */
int gstore_open(struct broker *b, char *err, size_t errlen);

/* The topic, created on first use (compacted, offsets.topic.num.partitions
 * partitions).  NULL when it cannot be created (logged).  In a cluster the
 * controller creates it (asked here): NULL until this broker holds a
 * replica. */
struct topic *gstore_topic(struct broker *b);

/* Cluster mode: this broker started (leading) or stopped leading partition
 * p (or p is going away).  Starting replays p into memory (once per
 * leadership: again only at a new leader epoch); stopping drops its groups,
 * answering their parked JoinGroup/SyncGroup requests NOT_COORDINATOR.
 * Ignores partitions of other topics, and does nothing when alone. */
void gstore_partition_led(struct broker *b, struct partition *p, bool leading);

/* Whether this broker coordinates the group: 0 (always when alone), else
 * NOT_COORDINATOR (its partition is led elsewhere, or held elsewhere),
 * COORDINATOR_NOT_AVAILABLE (no __consumer_offsets yet: its creation is
 * asked for) or COORDINATOR_LOAD_IN_PROGRESS (the partition cannot be read).
 * Loads the partition when it is led here but not loaded yet. */
int gstore_check_coordinator(struct broker *b, kstr group_id);

/* Cluster mode, every tick: drops groups of partitions no longer led here
 * (a safety net behind gstore_partition_led). */
void gstore_tick(struct broker *b);

/* Where a write landed. */
struct gstore_pos {
    struct partition *part; /* borrows; NULL until written */
    int64_t log_end;        /* the log end after the batch */
    int32_t leader_epoch;   /* the leader epoch it was written at */
    bool replicated;        /* the partition has replicas: wait for them */
};

/* Parks r until the high watermark of pos's partition passes the write
 * (cluster mode), at most offsets.commit.timeout.ms; then *err holds 0 or
 * NOT_LEADER_OR_FOLLOWER / REQUEST_TIMED_OUT / UNKNOWN_TOPIC_OR_PARTITION
 * and done(r) answers r (or frees it when its connection went).  w and err
 * must live as long as r (its arena).  Returns 0 when parked, 1 when there
 * is nothing to wait for (*err may be set; the caller answers), -1 when out
 * of memory. */
int gstore_wait(struct broker *b, struct request *r, const struct gstore_pos *pos, struct repl_wait *w,
                int16_t *err, void (*done)(struct request *r));

/* The OffsetCommit error for a failed wait (Kafka's mapping: the client
 * looks for the coordinator again). */
int gstore_commit_error(int wait_err);

/* One offset to commit. */
struct gstore_commit {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;
};

/* Appends the commits of one request as one batch.  Returns 0 or a Kafka
 * error code.  When the topic's flush policy asks for it, *fds receives up
 * to 2 dup()ed segment fds to fsync (count in *nfds) before answering.
 * *pos (may be NULL) says where the batch went. */
int gstore_write_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n,
                         int64_t commit_ms, int *fds, int *nfds, bool *wait, struct gstore_pos *pos);
/* Tombstones for offsets (OffsetDelete). */
int gstore_delete_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n);
/* The group's metadata after a rebalance; *pos (may be NULL) says where it
 * went. */
int gstore_write_group(struct broker *b, struct group *g, struct gstore_pos *pos);
/* Tombstones for the group and all its offsets (DeleteGroups). */
int gstore_delete_group(struct broker *b, struct group *g);

#endif
