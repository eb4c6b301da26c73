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
 * Loop thread only. */
#ifndef SHOPSTREAM_GROUP_STORE_H
#define SHOPSTREAM_GROUP_STORE_H

#include "broker/broker.h"
#include "broker/group.h"

#define GSTORE_TOPIC "__consumer_offsets"

/* Checks the settings and, when the topic exists, replays it into the
 * coordinator.  A fresh broker has no such topic until gstore_topic. */
int gstore_open(struct broker *b, char *err, size_t errlen);

/* The topic, created on first use (compacted, offsets.topic.num.partitions
 * partitions).  NULL when it cannot be created (logged). */
struct topic *gstore_topic(struct broker *b);

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
 * to 2 dup()ed segment fds to fsync (count in *nfds) before answering. */
int gstore_write_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n,
                         int64_t commit_ms, int *fds, int *nfds, bool *wait);
/* Tombstones for offsets (OffsetDelete). */
int gstore_delete_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n);
/* The group's metadata after a rebalance. */
int gstore_write_group(struct broker *b, struct group *g);
/* Tombstones for the group and all its offsets (DeleteGroups). */
int gstore_delete_group(struct broker *b, struct group *g);

#endif
