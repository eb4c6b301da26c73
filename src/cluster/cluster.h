/* cluster.h: a broker that is one of several (Kafka's KRaft mode, combined
 * broker and controller roles).
 *
 * Cluster metadata (brokers, topics, partition assignments, leaders, in-sync
 * replica sets, configs) is a log of commands (meta_image.h) replicated by a
 * Raft quorum of the voters in controller.quorum.voters (raft_node.h, on its
 * own thread).  Every broker replays the committed commands into its own
 * image on the loop thread and reconciles its local logs with it: it creates
 * the partitions it holds a replica of, leads those the image says it leads,
 * and follows the others (replica_fetch.h).  The Raft leader is the active
 * controller: brokers register and heartbeat to it (ctl_channel.h), it fences
 * brokers whose heartbeats stop and moves their leaderships to in-sync
 * replicas, creates topics with replica assignments, and applies the ISR
 * changes that partition leaders ask for (AlterPartition).
 *
 * Without controller.quorum.voters the broker runs alone as before and none
 * of this exists (b->cluster is NULL).  Loop thread unless said otherwise. */
#ifndef SHOPSTREAM_CLUSTER_H
#define SHOPSTREAM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/meta_image.h"

/* The most replicas a partition may have. */
#define CLUSTER_MAX_REPLICAS 16

struct broker;
struct request;
struct partition;
struct topic;
struct cluster;

/* Replication state of one local partition replica (partition->repl). */
struct replica_peer {
    int32_t id;
    int64_t leo;               /* its log end, from its last fetch */
    int64_t last_fetch_ms;     /* when it last fetched */
    int64_t caught_up_ms;      /* the last time it had all we had */
    int64_t leo_at_prev_fetch; /* our log end when it fetched before */
    int64_t prev_fetch_ms;
};

struct replica {
    int32_t leader;            /* from the image; -1 none */
    int32_t leader_epoch;
    int32_t partition_epoch;
    bool is_leader;            /* leader == this broker */
    int64_t hw;                /* high watermark: what consumers may read */
    int npeers;                /* leader: the other replicas */
    struct replica_peer peers[CLUSTER_MAX_REPLICAS];
    int32_t isr[CLUSTER_MAX_REPLICAS];
    int nisr;
    int32_t replicas[CLUSTER_MAX_REPLICAS];
    int nreplicas;
    int64_t alter_sent_ms;     /* leader: an AlterPartition is in flight since */
    bool follower_ready;       /* follower: truncated, fetching */
};

/* Reads the cluster settings.  Returns 0 with b->cluster NULL when
 * controller.quorum.voters is not set, 0 with b->cluster set, or -1. */
int cluster_init(struct broker *b, char *err, size_t errlen);
/* Starts Raft and the broker's threads, after the listener is open. */
int cluster_start(struct broker *b, char *err, size_t errlen);
void cluster_free(struct broker *b);
/* Work handed over by other threads (on_wakeup) and the periodic checks. */
void cluster_drain(struct broker *b);
void cluster_tick(struct broker *b);

/* The image this broker has applied. */
const struct meta_image *cluster_image(const struct broker *b);
int32_t cluster_controller_id(const struct broker *b);
bool cluster_is_controller(const struct broker *b);
int64_t cluster_broker_epoch(const struct broker *b);

/* The high watermark of a local partition: what consumers may read.  The
 * log end when the broker runs alone. */
int64_t partition_hw(const struct partition *p);
/* 0 when this broker may serve the partition to clients (it leads it), else
 * NOT_LEADER_OR_FOLLOWER (or UNKNOWN_TOPIC_OR_PARTITION). */
int cluster_check_leader(const struct broker *b, const struct partition *p);
/* min.insync.replicas of a topic (its override, else the broker's). */
int32_t cluster_min_isr(const struct broker *b, const struct topic *t);

/* Leader side of replication (replication.c). */
/* A follower fetched `offset` of partition p: its log end.  May advance the
 * high watermark and ask the controller to add it to the ISR. */
void repl_follower_fetched(struct broker *b, struct partition *p, int32_t follower, int64_t offset);
/* Recomputes the high watermark; completes produces waiting for it. */
void repl_update_hw(struct broker *b, struct partition *p);
/* acks=all: parks request r until every partition in `waits` reaches its
 * offset in the high watermark (or fails); done answers it then.  Returns
 * 0 when parked, 1 when nothing needs waiting for (the caller answers), -1
 * when out of memory. */
struct repl_wait {
    struct partition *part;
    int64_t end_offset;        /* the high watermark that acknowledges it */
    int32_t leader_epoch;
    int16_t *error_code;       /* where to write a failure */
    bool resolved;
};
int repl_park_produce(struct broker *b, struct request *r, struct repl_wait *waits, int n, int64_t deadline_ms,
                      void (*done)(struct request *r));
/* The number of in-sync replicas, for min.insync.replicas. */
int repl_isr_count(const struct partition *p);

/* Controller requests, parked until the command commits (controller.c).
 * Each returns 0 when the request was parked (the callback answers it) or
 * a Kafka error code to answer at once. */
typedef void cluster_done_fn(struct broker *b, struct request *r, int err, const char *msg);
int cluster_create_topic(struct broker *b, const char *name, int32_t partitions, int32_t rf,
                         const int32_t *assignment, int nconfigs, const char *const *keys, const char *const *vals,
                         struct request *r, cluster_done_fn *done, char *err, size_t errlen);
int cluster_delete_topic(struct broker *b, const struct mi_topic *t, struct request *r, cluster_done_fn *done);
int cluster_create_partitions(struct broker *b, const struct mi_topic *t, int32_t count, struct request *r,
                              cluster_done_fn *done, char *err, size_t errlen);
/* Makes a topic's overrides `want` (controller): one SET_CONFIG per
 * change, applied by every broker when committed; r is answered when the
 * last has committed.  0 when parked so, CLUSTER_NO_CHANGE when want is
 * what the topic has (answer at once), or a Kafka error. */
#define CLUSTER_NO_CHANGE (-1)
int cluster_set_topic_config(struct broker *b, const char *topic, const struct config *want, struct request *r,
                             cluster_done_fn *done);
/* Auto-creation from a broker that may not be the controller: asks the
 * controller through the channel; the topic appears later. */
void cluster_request_auto_create(struct broker *b, const char *name, int32_t partitions);
void cluster_request_auto_create_with(struct broker *b, const char *name, int32_t partitions, int nconfigs,
                                      const char *const *keys, const char *const *vals);

/* Forwards an admin request that only the controller can carry out
 * (before decoding it: r->body is the whole body) to the active controller
 * and answers the client with the controller's answer, as Kafka brokers
 * forward since KIP-590.  Returns 0 when forwarded (the request is parked)
 * or -1 when the controller is unknown. */
int cluster_forward(struct broker *b, struct request *r);

/* Handlers of the controller APIs (answered by the active controller). */
int handle_broker_registration(struct broker *b, struct request *r);
int handle_broker_heartbeat(struct broker *b, struct request *r);
int handle_alter_partition(struct broker *b, struct request *r);
int handle_alter_partition_reassignments(struct broker *b, struct request *r);
int handle_list_partition_reassignments(struct broker *b, struct request *r);
int handle_unregister_broker(struct broker *b, struct request *r);

#endif
