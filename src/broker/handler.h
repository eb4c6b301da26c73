/* handler.h: small helpers shared by the handle_*.c files. */
#ifndef SHOPSTREAM_HANDLER_H
#define SHOPSTREAM_HANDLER_H

#include <stddef.h>

#include "broker/api.h"
#include "cluster/cluster.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"

/* Allocates n items for a generated array field in the request's arena and
 * runs init on each.  Evaluates to 0, or -1 when out of memory. */
#define HANDLER_ITEMS(r, arr, n, init)                                                      \
    ({                                                                                      \
        int rc_ = 0;                                                                        \
        (arr).count = (n);                                                                  \
        (arr).items = (n) > 0 ? arena_alloc(&(r)->arena, (size_t)(n) * sizeof *(arr).items) \
                              : NULL;                                                       \
        if ((n) > 0 && !(arr).items) {                                                      \
            (arr).count = 0;                                                                \
            rc_ = -1;                                                                       \
        } else {                                                                            \
            for (int32_t i_ = 0; i_ < (n); i_++)                                            \
                init(&(arr).items[i_]);                                                     \
        }                                                                                   \
        rc_;                                                                                \
    })

/* A NUL-terminated copy of a wire string in the request's arena. */
static inline char *handler_cstr(struct request *r, kstr s)
{
    return arena_strndup(&r->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

/* Config resource types (DescribeConfigs, AlterConfigs, ...). */
enum { CONFIG_RESOURCE_TOPIC = 2, CONFIG_RESOURCE_BROKER = 4 };

/* A topic as admin and group requests see it: in a cluster from the
 * metadata image, since a broker answers for topics it holds no replica of;
 * alone from the catalog. */
struct topic_view {
    const char *name;
    int32_t npartitions;
    const struct config *overrides;
    struct topic *local; /* the catalog's topic; NULL in a cluster */
};

/* Fills v and returns true if the topic exists. */
bool handler_topic_view(struct broker *b, kstr name, struct topic_view *v);

/* Whether the partition exists (in the image in a cluster). */
bool handler_partition_exists(struct broker *b, kstr topic, int32_t partition);

/* The error for a partition this broker holds no log of: in a cluster,
 * NOT_LEADER_OR_FOLLOWER when the metadata has it elsewhere (the client's
 * metadata is stale; Kafka answers so), else UNKNOWN_TOPIC_OR_PARTITION. */
int handler_no_replica_error(struct broker *b, kstr topic, int32_t partition);

/* The topic an AlterConfigs-style request may change: returns 0 with v
 * filled, or a Kafka error with a message in err: broker configs are static
 * here, and other resource types or unknown topics are refused. */
int handler_alterable_topic(struct broker *b, int8_t type, kstr name, struct topic_view *v, char *err,
                            size_t errlen);

/* Makes ov the topic's overrides: alone in the catalog; in a cluster (this
 * broker is the controller) by metadata commands, and then *parked is set
 * when awaited_done answers once they have committed (r->state starts with
 * the request's struct awaited).  Returns 0 or a Kafka error with a message
 * in err. */
int handler_save_topic_config(struct broker *b, struct request *r, const struct topic_view *v,
                              const struct config *ov, bool *parked, char *err, size_t errlen);

/* A cluster admin request whose items each wait for a metadata command
 * (CreateTopics, DeleteTopics, CreatePartitions). An item proposed is marked
 * with ErrorCode -1; commands commit in the order proposed, so each commit
 * answers the first item still marked, and the response goes when the last
 * has committed. The handler holds one count until it has proposed all. */
struct awaited {
    char *items;            /* the response's result array */
    int count;
    size_t size;            /* of one result */
    size_t code_at, msg_at; /* offsets of its ErrorCode and ErrorMessage */
    int pending;
    int next; /* the first result that may still be marked */
    void (*encode)(struct request *r); /* the response into r->out */
};

#define AWAITED_INIT(arr, type, encode_fn) \
    ((struct awaited){(char *)(arr).items, (arr).count, sizeof(type), offsetof(type, ErrorCode), \
                      offsetof(type, ErrorMessage), 1, 0, (encode_fn)})

/* Marks the result whose ErrorCode is at code as waiting for a commit. */
static inline void awaited_expect(struct awaited *w, int16_t *code)
{
    *code = -1;
    w->pending++;
}

/* The handler has proposed every item: API_PARKED while some wait, else the
 * response is encoded and API_DONE. */
int awaited_proposed(struct request *r, struct awaited *w);

/* A command committed (err 0) or failed: fills the next marked result and
 * returns it (NULL if none) so the caller may add to it before calling
 * awaited_release, which answers the request once all have committed. */
void *awaited_next(struct request *r, struct awaited *w, int err, const char *msg);
void awaited_release(struct request *r, struct awaited *w);

/* The commit callback (cluster_done_fn) of a request whose r->state starts
 * with its struct awaited: fills the next marked result and releases. */
void awaited_done(struct broker *b, struct request *r, int err, const char *msg);

static inline kstr handler_kstr(struct request *r, const char *s)
{
    size_t n = strlen(s);
    char *d = arena_strndup(&r->arena, s, n);
    return (kstr){d ? d : "", d ? (int32_t)n : 0};
}

#endif
