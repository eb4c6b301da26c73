/* meta_image.h: the cluster metadata image (Kafka KRaft's MetadataImage):
 * registered brokers, topics with their partitions' replicas, leaders and
 * in-sync replica sets, configs, and the producer id counter.  The image is
 * the result of replaying a log of commands in order, so every broker that
 * applies the same committed commands holds the same image; apply is
 * deterministic and depends on nothing but the image and the command.
 *
 * This module only defines the commands (their encoding, and what applying
 * each does) and the image, plus two pure helpers for the controller:
 * replica placement and leader election.  Replicating the commands (Raft),
 * deciding what to propose, and acting on the image are left to others
 * (cluster.h).
 *
 * Command encoding, all integers big-endian:
 *   type u8 (enum mi_cmd_type), version u8 (0), then the fields of the type
 *   in the order of the encoder's parameters.  A string is an int32 length
 *   and its bytes (-1: absent, only where a field may be absent); a uuid is
 *   16 bytes; a list of ids is an int32 count (-1: absent, where optional)
 *   and that many int32s.  Nothing may follow the last field.
 * Snapshot encoding: see meta_image_encode.
 *
 * Not thread-safe: one image, one thread (the loop thread in cluster.c). */
#ifndef SHOPSTREAM_META_IMAGE_H
#define SHOPSTREAM_META_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/config.h"
#include "common/obuf.h"
#include "protocol/kwire.h"

/* The most replicas a partition may have (and so the largest replication
 * factor); the per-partition replication state is sized by it. */
#define MI_MAX_REPLICAS 16
/* The longest broker host name, in bytes. */
#define MI_MAX_HOST 255
/* The most config entries one topic (or the cluster) may hold.  Kafka knows
 * about 40 topic configs; the cap keeps hostile input from making the
 * linear config lookups quadratic. */
#define MI_MAX_CONFIGS 1024

/* PARTITION_CHANGE's leader field: keep the current leader. */
#define MI_NO_CHANGE (-2)

struct mi_broker {
    int32_t id;
    char host[MI_MAX_HOST + 1];  /* NUL-terminated, not empty */
    int32_t port;                /* 1..65535 */
    kuuid incarnation;           /* random per broker process start */
    int64_t epoch;               /* the metadata offset of its registration */
    bool fenced;                 /* fenced brokers lead nothing and get no new replicas */
};

struct mi_partition {
    int32_t leader;              /* broker id; -1: none */
    int32_t leader_epoch;        /* +1 on every leader election */
    int32_t partition_epoch;     /* +1 on every change of the partition */
    int32_t nreplicas;           /* 1..MI_MAX_REPLICAS */
    int32_t *replicas;           /* owned; distinct; the preferred leader first */
    int32_t nisr;                /* 0..nreplicas; 0 only when leader is -1 */
    int32_t *isr;                /* owned (NULL when empty); distinct, a subset
                                  * of replicas, holding the leader if any */
};

struct mi_topic {
    char *name;                  /* owned; a valid Kafka topic name */
    kuuid id;                    /* not zero */
    int32_t npartitions;         /* >= 1 */
    struct mi_partition *parts;  /* owned, npartitions of them */
    struct config configs;       /* topic-level overrides, in the order set */
};

struct meta_image {
    int64_t offset;              /* the raft index of the last applied command, 0 = empty */
    struct mi_broker *brokers;   /* owned, sorted by id */
    int nbrokers;
    struct mi_topic **topics;    /* owned, sorted by name */
    struct mi_topic **topics_by_id; /* views of the same topics, sorted by id */
    int ntopics, topics_cap;
    struct config cluster_configs; /* cluster-wide settings (SET_CONFIG with topic "") */
    int64_t next_producer_id;    /* the first producer id not yet handed out */
};

enum mi_cmd_type {
    MI_REGISTER_BROKER = 1,
    MI_FENCE_BROKER = 2,
    MI_UNFENCE_BROKER = 3,
    MI_UNREGISTER_BROKER = 4,
    MI_CREATE_TOPIC = 5,
    MI_DELETE_TOPIC = 6,
    MI_CREATE_PARTITIONS = 7,
    MI_PARTITION_CHANGE = 8,
    MI_SET_CONFIG = 9,
    MI_ALLOC_PRODUCER_IDS = 10,
};
#define MI__CMD_MAX MI_ALLOC_PRODUCER_IDS

/* The fields of a PARTITION_CHANGE, for the encoder and the decoder. */
struct mi_partition_change {
    kuuid topic_id;
    int32_t partition;
    int32_t expected_partition_epoch; /* -1: any */
    int32_t leader;              /* MI_NO_CHANGE keeps it; -1: no leader */
    int32_t nisr;                /* -1: keep the ISR */
    const int32_t *isr;
    int32_t nreplicas;           /* -1: keep the replicas; else a reassignment */
    const int32_t *replicas;
};

/* A decoded command.  Strings are views into the encoded bytes (not
 * NUL-terminated); arrays live in the arena passed to mi_cmd_decode.
 * Replica lists of several partitions are concatenated: list i has
 * nreplicas[i] ids and starts after the ids of the lists before it. */
struct mi_cmd {
    uint8_t type;                /* enum mi_cmd_type */
    uint8_t version;
    union {
        struct {
            int32_t id;
            kstr host;
            int32_t port;
            kuuid incarnation;
        } register_broker;
        struct {
            int32_t id;
            int64_t epoch;
        } fence;                 /* FENCE_BROKER and UNFENCE_BROKER */
        struct {
            int32_t id;
        } unregister_broker;
        struct {
            kstr name;
            kuuid id;
            int32_t npartitions;
            int32_t *nreplicas;
            int32_t *replicas;
            int32_t nconfigs;
            kstr *keys, *values;
        } create_topic;
        struct {
            kuuid id;
        } delete_topic;
        struct {
            kuuid id;
            int32_t count;       /* the new total */
            int32_t nnew;        /* replica lists that follow (count - current) */
            int32_t *nreplicas;
            int32_t *replicas;
        } create_partitions;
        struct mi_partition_change partition_change;
        struct {
            kstr topic;          /* empty: cluster-wide */
            kstr key;
            kstr value;          /* len -1: delete the key */
        } set_config;
        struct {
            int32_t count;
        } alloc_producer_ids;
    };
};

/* ---- the image ---------------------------------------------------------- */

void meta_image_init(struct meta_image *m);
void meta_image_free(struct meta_image *m);

/* Applies one encoded command (borrowed) that is the entry at raft index
 * `offset`.  Returns 0 when applied, else a Kafka error code with a one-line
 * reason in err (err may be NULL):
 *   CORRUPT_MESSAGE / UNSUPPORTED_VERSION  the bytes are not a command
 *   the command's own rejections (see meta_image.c)
 * A rejected command changes nothing but m->offset, which is set to offset
 * in both cases since a rejected command is still a consumed log entry.
 * Two returns change nothing at all, not even m->offset:
 *   INVALID_REQUEST       offset is not above m->offset
 *   UNKNOWN_SERVER_ERROR  out of memory; the caller retries or stops, since
 *                         skipping the entry would make this image diverge.
 * result (may be NULL) gets the producer id block start of
 * ALLOC_PRODUCER_IDS, the new broker epoch of REGISTER_BROKER, else -1. */
int meta_image_apply(struct meta_image *m, const void *cmd, size_t len, int64_t offset, int64_t *result,
                     char *err, size_t errlen);

/* Decodes a command (borrowed bytes; c views them and the arena).  Returns 0,
 * CORRUPT_MESSAGE, UNSUPPORTED_VERSION or UNKNOWN_SERVER_ERROR (out of
 * memory) with a reason.  Checks the encoding only, not the values. */
int mi_cmd_decode(struct mi_cmd *c, const void *cmd, size_t len, struct arena *a, char *err, size_t errlen);
/* "REGISTER_BROKER" etc., "UNKNOWN" for other values.  A static string. */
const char *mi_cmd_name(int type);

/* ---- encoders: each appends one command to w (check w->oom) -------------- */

void mi_enc_register_broker(struct obuf *w, int32_t id, const char *host, int32_t port, kuuid incarnation);
void mi_enc_fence_broker(struct obuf *w, int32_t id, int64_t epoch);
void mi_enc_unfence_broker(struct obuf *w, int32_t id, int64_t epoch);
void mi_enc_unregister_broker(struct obuf *w, int32_t id);
/* Partition i's replicas are nreplicas[i] ids of replicas[] (concatenated,
 * see struct mi_cmd); with a uniform replication factor that is exactly the
 * output of mi_assign_replicas.  keys/values: nconfigs entries. */
void mi_enc_create_topic(struct obuf *w, const char *name, kuuid id, int32_t npartitions, const int32_t *nreplicas,
                         const int32_t *replicas, int nconfigs, const char *const *keys, const char *const *values);
void mi_enc_delete_topic(struct obuf *w, kuuid id);
/* Grows the topic to `count` partitions; nnew (= count - current) replica
 * lists, laid out as for mi_enc_create_topic. */
void mi_enc_create_partitions(struct obuf *w, kuuid topic_id, int32_t count, int32_t nnew, const int32_t *nreplicas,
                              const int32_t *replicas);
void mi_enc_partition_change(struct obuf *w, const struct mi_partition_change *c);
/* topic "" sets a cluster-wide config; value NULL deletes the key. */
void mi_enc_set_config(struct obuf *w, const char *topic, const char *key, const char *value);
void mi_enc_alloc_producer_ids(struct obuf *w, int32_t count);

/* ---- snapshots ----------------------------------------------------------- */

/* Appends the whole image to w:
 *   "SSMI" version u8 (0) offset i64 next_producer_id i64
 *   cluster configs: count i32, then key and value strings
 *   brokers (by id): count i32, then id i32 host port i32 incarnation
 *     epoch i64 fenced u8
 *   topics (by name): count i32, then name id configs npartitions i32, and
 *     per partition leader i32 leader_epoch i32 partition_epoch i32
 *     replicas (count, ids) isr (count, ids)
 *   crc32c u32 of everything above
 * Equal images encode to equal bytes.  Returns 0, or -1 when out of memory. */
int meta_image_encode(const struct meta_image *m, struct obuf *w);
/* Replaces *m (initialized, possibly holding an image) with the image in
 * buf (borrowed).  Checks the checksum and every invariant of the structs
 * above.  Returns 0, or CORRUPT_MESSAGE / UNSUPPORTED_VERSION /
 * UNKNOWN_SERVER_ERROR (out of memory) with a reason; then *m is untouched. */
int meta_image_decode(struct meta_image *m, const void *buf, size_t len, char *err, size_t errlen);

/* ---- lookups: views valid until the next apply, decode or free ----------- */

const struct mi_broker *meta_image_broker(const struct meta_image *m, int32_t id);
const struct mi_topic *meta_image_topic(const struct meta_image *m, const char *name, size_t len);
const struct mi_topic *meta_image_topic_by_id(const struct meta_image *m, kuuid id);
bool mi_in_isr(const struct mi_partition *p, int32_t broker);
bool mi_is_replica(const struct mi_partition *p, int32_t broker);

/* ---- controller helpers -------------------------------------------------- */

/* Replica placement as Kafka's rack-unaware assignment: over the n unfenced
 * brokers sorted by id, partition p gets its first replica at broker
 * (start + p) % n and the others after it with a shift that grows by one
 * every n partitions, so that leaders and followers spread evenly.  The
 * result for partition p depends only on (brokers, start, p), so partitions
 * added later (first_partition = current count) continue the same pattern.
 * start is the caller's choice (random, or a hash of the topic).  Writes
 * npartitions * rf ids into out, partition first_partition + i at out[i*rf].
 * Returns 0, INVALID_REPLICATION_FACTOR (rf < 1, rf > MI_MAX_REPLICAS or
 * more than the unfenced brokers), INVALID_PARTITIONS (npartitions < 1 or
 * first_partition < 0) or UNKNOWN_SERVER_ERROR (out of memory). */
int mi_assign_replicas(const struct meta_image *m, int32_t npartitions, int32_t rf, int32_t first_partition,
                       uint32_t start, int32_t *out);

/* Leader election when broker `failed` (-1: none) is gone or fenced: the
 * first replica in replica order that is in the ISR, registered, unfenced
 * and not `failed`; -1 when there is none (no unclean election). */
int32_t mi_elect_leader(const struct meta_image *m, const struct mi_partition *p, int32_t failed);

#endif
