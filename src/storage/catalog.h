/* catalog.h: the broker's topics and their partitions' logs, kept under the
 * data directory as
 *   <data>/meta.properties                  cluster.id, broker.id (as Kafka)
 *   <data>/topics/<topic>/topic.properties  partitions, topic id, config.<k>=v
 *   <data>/topics/<topic>/<partition>/      segment files (segment.h)
 *   <data>/.clean-shutdown                  present only after a clean stop
 * Runs on the loop thread. */
#ifndef SHOPSTREAM_CATALOG_H
#define SHOPSTREAM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "protocol/kwire.h"
#include "storage/partition_log.h"
#include "storage/topic_config.h"

struct topic;
struct replica;

struct partition {
    int32_t index;
    struct topic *topic;   /* borrows its owner */
    struct plog *log;      /* owned */
    struct replica *repl;  /* owned by cluster.c: replication state, NULL alone */
};

struct topic {
    char *name;                   /* owned */
    kuuid id;                     /* random, kept in topic.properties */
    int32_t npartitions;
    struct partition **parts;     /* owned */
    struct config overrides;      /* topic-level configs */
    struct topic_settings settings; /* resolved from overrides + broker */
    char *dir;                    /* owned */
    bool internal;                /* name starts with "__" */
};

struct catalog {
    char *data_dir;               /* owned */
    struct topic **topics;        /* owned, unordered */
    int ntopics, captopics;
    const struct config *broker;  /* borrows the broker's properties */
    char cluster_id[32];
    bool was_clean;               /* the last shutdown was clean */
    int lock_fd;                  /* holds flock on data_dir/.lock */
    int64_t next_producer_id;     /* the next id InitProducerId hands out */
    int64_t producer_id_block_end; /* ids below this are reserved on disk */
};

/* Opens data_dir (created if missing) and every topic in it, holding an
 * exclusive lock on data_dir/.lock until catalog_close so that no second
 * process opens the same directory.  Returns 0 or -1 with a message in err. */
int catalog_open(struct catalog *c, const char *data_dir, const struct config *broker,
                 char *err, size_t errlen);
/* Closes all logs and marks the shutdown clean. */
void catalog_close(struct catalog *c);

struct topic *catalog_find(const struct catalog *c, const char *name, size_t len);
/* The partition, or NULL when out of range. */
struct partition *catalog_partition(const struct topic *t, int32_t index);

/* Kafka's topic name rule: 1-249 of [a-zA-Z0-9._-], not "." or "..".
 * Returns 0 or -1 with a reason. */
int catalog_check_name(const char *name, size_t len, const char **why);

/* Creates a topic.  Returns 0 or a Kafka error code with a message. */
int catalog_create(struct catalog *c, const char *name, int32_t partitions,
                   const struct config *overrides, struct topic **out, char *err, size_t errlen);
/* The same with a given topic id (a cluster's topics get theirs from the
 * controller); NULL draws a random one. */
int catalog_create_with_id(struct catalog *c, const char *name, int32_t partitions,
                           const struct config *overrides, const kuuid *id, struct topic **out, char *err,
                           size_t errlen);
/* Deletes a topic and its data. */
void catalog_delete(struct catalog *c, struct topic *t);
/* Grows a topic to `count` partitions.  Returns 0 or a Kafka error code. */
int catalog_add_partitions(struct catalog *c, struct topic *t, int32_t count, char *err, size_t errlen);
/* A producer id never handed out before, also across restarts: ids are
 * reserved on disk in blocks (<data>/producer-id-block).  Returns -1 when the
 * reservation cannot be written. */
int64_t catalog_new_producer_id(struct catalog *c);

/* Fills p with n random bytes (getrandom; rand() if that fails). */
void random_bytes(void *p, size_t n);

/* Replaces a topic's overrides (validated by the caller) and persists. */
int catalog_set_config(struct catalog *c, struct topic *t, const struct config *overrides);

#endif
