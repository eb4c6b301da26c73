/* cluster_int.h: what the cluster's files share (cluster.c, controller.c,
 * replication.c, ctl_channel.c, replica_fetch.c).  Not for the rest of the
 * broker: that uses cluster.h. */
#ifndef SHOPSTREAM_CLUSTER_INT_H
#define SHOPSTREAM_CLUSTER_INT_H

#include <pthread.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "cluster/raft_node.h"
#include "common/obuf.h"

#define CLUSTER_MAX_VOTERS 16
/* Raft ids start at 1, Kafka node ids at 0. */
#define RAFT_ID(node) ((uint64_t)(node) + 1)
#define NODE_ID(raft) ((int32_t)((raft) - 1))
#define CLUSTER_MAX_BROKERS 64

/* What other threads hand to the loop thread. */
enum cl_event_type {
    EV_APPLY,     /* a committed metadata command (raft thread) */
    EV_RESET,     /* a snapshot replaced the metadata (raft thread) */
    EV_LEADER,    /* the Raft leader changed */
    EV_PROPOSED,  /* a proposal of this broker committed or failed */
    EV_CHANNEL,   /* a controller channel response (or failure) */
    EV_FETCHED,   /* a replica fetcher's response, to be appended */
};

struct cl_event {
    struct cl_event *next;
    enum cl_event_type type;
    uint8_t *buf;         /* owned: command, snapshot or response frame */
    size_t len;
    uint64_t index;       /* raft index */
    int status;           /* EV_PROPOSED, EV_CHANNEL: 0 or failure */
    uint64_t leader;
    bool is_self;
    void *cookie;         /* EV_PROPOSED: a struct cl_op; EV_CHANNEL: the channel op; EV_FETCHED: the fetcher */
};

/* A proposal waiting for its commit on the loop thread. */
struct cl_op {
    struct cluster *c;
    void (*fn)(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg);
    struct request *r;    /* parked request, or NULL */
    cluster_done_fn *done;
    int32_t broker_id;    /* controller bookkeeping */
    int kind;
    uint64_t index;
    kuuid topic_id;       /* AlterPartition: the partition's topic (kind: its index) */
    void *cookie;         /* the operation's own state */
    const uint8_t *resp;  /* EV_CHANNEL: the response body, valid during fn */
    size_t resp_len;
};

struct controller_broker {
    int32_t id;
    int64_t last_heartbeat_ms;
    bool fence_pending, unfence_pending;
};

struct ctl_channel;
struct replica_fetcher;

struct cluster {
    struct broker *b;
    int32_t node_id;
    int nvoters;
    struct raft_node_voter voters[CLUSTER_MAX_VOTERS];
    char raft_address[128];
    char *raft_dir;
    bool join;                    /* not a voter: joins as a non-voting member */
    char bootstrap[512];          /* join: controller.quorum.bootstrap.servers */
    bool join_inflight;           /* join: the Metadata + registration under way */
    /* settings (Kafka's names) */
    int64_t session_timeout_ms;   /* broker.session.timeout.ms */
    int64_t heartbeat_ms;         /* broker.heartbeat.interval.ms */
    int64_t replica_lag_ms;       /* replica.lag.time.max.ms */
    int32_t default_rf;           /* default.replication.factor */
    int32_t offsets_rf;           /* offsets.topic.replication.factor */
    int32_t min_isr;              /* min.insync.replicas (broker default) */
    bool auto_rebalance;          /* auto.leader.rebalance.enable */
    int64_t rebalance_check_ms;   /* leader.imbalance.check.interval.seconds */
    int64_t replica_fetch_wait_ms; /* replica.fetch.wait.max.ms */
    /* the raft thread's side */
    struct raft_node *raft;
    struct meta_image raft_img;
    pthread_mutex_t mu;
    struct cl_event *head, *tail;
    /* the loop thread's side */
    struct meta_image img;
    int32_t controller_id;        /* the Raft leader; -1 unknown */
    bool is_controller;
    kuuid incarnation;
    int64_t broker_epoch;         /* our registration's, -1 until registered */
    bool register_inflight, heartbeat_inflight;
    int64_t last_register_ms, last_heartbeat_ms;
    bool fenced;
    bool caught_up;               /* unfenced once in this process: see set_fenced */
    /* the active controller's view of broker liveness */
    struct controller_broker cb[CLUSTER_MAX_BROKERS];
    int ncb;
    int64_t controller_since_ms;
    int64_t last_rebalance_ms;
    struct ctl_channel *chan;
    struct replica_fetcher **fetchers; /* one per leader followed */
    int nfetchers;
    /* produces waiting for the high watermark (replication.c) */
    struct repl_parked **parked;
    int nparked, capparked;
    int64_t last_isr_check_ms;
    int pending_changes;          /* controller: partition changes in flight */
    bool self_register_pending;   /* controller: its own registration in flight */
    /* the image's verdicts on recent commands, for their proposers */
    struct { uint64_t index; int err; char msg[160]; } verdicts[64];
};

/* cluster.c */
void cluster_push(struct cluster *c, struct cl_event *ev);
/* Proposes an encoded command; op->fn runs on the loop thread when it has
 * been applied (status 0, apply_err the image's verdict) or failed. */
int cluster_propose(struct cluster *c, const struct obuf *cmd, struct cl_op *op);
/* Reconciles local replicas with one topic of the image (or all). */
void cluster_reconcile_topic(struct broker *b, const struct mi_topic *t);

/* controller.c: the active controller's duties, loop thread */
/* Proposes a command (w is freed) that answers nobody; kind 1 counts it
 * among the partition changes in flight (no new sweep until it lands),
 * broker_id clears that broker's pending fence/unfence.  0 or -1. */
int controller_propose(struct cluster *c, struct obuf *w, int kind, int32_t broker_id);
void controller_tick(struct broker *b);
void controller_became(struct broker *b);
/* A broker's heartbeat (remote or this broker's own).  Returns 0 or a
 * Kafka error code. */
int controller_heartbeat(struct broker *b, int32_t id, int64_t epoch, int64_t metadata_offset, bool *fenced);

/* reassign.c: the controller finishes reassignments */
void reassign_tick(struct broker *b);
/* cluster.c: a broker left the cluster: it leaves the Raft membership too */
void cluster_forget_member(struct broker *b, int32_t id);

/* cluster.c: this broker's registration and heartbeats */
void cluster_send_heartbeat(struct broker *b);

/* replication.c */
void repl_become_leader(struct broker *b, struct partition *p);
/* The replica set of a led partition changed (reassignment). */
void repl_replicas_changed(struct broker *b, struct partition *p);
void repl_check_isr(struct broker *b);
void repl_fail_parked(struct broker *b, struct partition *p, int err);
void repl_tick(struct broker *b);
void repl_free_all(struct broker *b);

/* ctl_channel.c: requests to the active controller, on a thread of its own */
struct ctl_channel *ctl_channel_new(struct cluster *c);
void ctl_channel_free(struct ctl_channel *ch);
/* Queues a request body (api key, version) for the controller at host:port;
 * the answer arrives as EV_CHANNEL with the cookie.  Returns 0 or -1. */
int ctl_channel_send(struct ctl_channel *ch, const char *host, int port, int16_t key, int16_t version,
                     const struct obuf *body, void *cookie);

/* replica_fetch.c: followers fetch from leaders */
void fetchers_update(struct broker *b);
void fetchers_free(struct broker *b);
void fetcher_process(struct broker *b, struct cl_event *ev);

#endif
