/* ops.h: the operations console of `shopstream serve`: brokers, topics,
 * partitions and their configs and sizes, a message browser, consumer
 * groups with their members and lag, all asked live from the cluster through
 * the Kafka protocol (librdkafka's metadata, ListOffsets and Admin API, and
 * DescribeLogDirs through logdirs.h), so it works against any Kafka cluster.
 * The JSON of each answer is the response body of spec/api.md, "Operations
 * console"; the HTTP side (routes, parsing query strings, error bodies) is
 * server.h's.
 *
 * Every function is safe to call from any thread, concurrently: one
 * long-lived admin handle serves metadata, offsets and configs, a second one
 * the consumer-group requests (replaced after a cluster failure, to steer
 * clear of a librdkafka crash; see ops.c), each request with its own
 * temporary queue; message browsing borrows a consumer from a small pool;
 * topic sizes are cached for OPS_SIZE_CACHE_MS.  Each call is bounded by
 * the client timeout (client_opts.timeout_ms) as a whole, give or take the
 * time to close a retired handle.
 *
 * Every name, key, value and header that comes from the cluster is shown as
 * UTF-8 with ill-formed bytes replaced by U+FFFD (utf8.h). */
#ifndef SHOPSTREAM_OPS_H
#define SHOPSTREAM_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/client_opts.h"
#include "shop/json.h"

#define OPS_BROWSE_DEFAULT_LIMIT 50
#define OPS_BROWSE_MAX_LIMIT 500
#define OPS_BROWSE_DEFAULT_SCAN 10000
#define OPS_BROWSE_MAX_SCAN 100000
/* A browse stops adding messages once its body is this large (values can
 * be up to message.max.bytes each); next_offset says where to go on. */
#define OPS_BROWSE_MAX_BODY (8 << 20)
/* Consumers kept for browsing between requests (more are made while more
 * requests browse at once, and closed afterwards). */
#define OPS_BROWSE_POOL 4
/* How long the DescribeLogDirs answers (topic sizes) are reused. */
#define OPS_SIZE_CACHE_MS 2000

struct ops;

/* Connects nothing yet: creates the admin handle for the cluster of o.  o is
 * borrowed for the life of the ops (its strings too).  Returns owned
 * (ops_free), or NULL with one sentence in err. */
struct ops *ops_new(const struct client_opts *o, char *err, size_t errlen);
/* Closes the handles and frees ops; no call may be running. */
void ops_free(struct ops *ops);

/* The queries.  Each appends one JSON document (spec/api.md) to out and
 * returns the HTTP status: 200; 400 (a bad parameter) or 404 (unknown topic
 * or group); 502 (the cluster answered with an error) or 504 (it did not
 * answer in time); 500 (out of memory).  On any status but 200 nothing is
 * appended to out and err holds one sentence without a final period (like
 * serve's other messages) for the error body; names in it are repaired to
 * UTF-8.  err should hold a few hundred bytes. */

/* GET /api/cluster: {"cluster_id","controller_id","brokers":[{"id","host","port"}]},
 * brokers sorted by id; cluster_id null and controller_id -1 when the
 * cluster does not say. */
int ops_cluster(struct ops *ops, struct jbuf *out, char *err, size_t errlen);

/* GET /api/topics: every topic sorted by name.  "internal" is true for
 * names starting with "__" (librdkafka 2.0 does not pass on Metadata's
 * IsInternal); "messages" is the sum of high - low; "size_bytes" is the sum
 * of the partitions' sizes (see ops_topic).  Either is null when some
 * partition's value could not be read. */
int ops_topics(struct ops *ops, struct jbuf *out, char *err, size_t errlen);

/* GET /api/topics/{name}: partitions sorted by id, with low/high (null when
 * unreadable) and size_bytes: the bytes on disk of the partition summed over
 * its replicas (DescribeLogDirs of every broker), null when a broker holding
 * a replica did not answer or listed none.  configs sorted by name, value
 * null when the broker hides it (sensitive) or has none.  404 for an
 * unknown topic. */
int ops_topic(struct ops *ops, const char *name, struct jbuf *out, char *err, size_t errlen);

/* What GET /api/topics/{name}/messages asks for.  Strings borrow. */
struct ops_browse {
    int32_t partition; /* required: -1 (not given) is 400, as is a partition
                          the topic does not have */
    int64_t offset;    /* first offset to read, or -1: not given.  Kept
                          within [low, high]. */
    int64_t time_ms;   /* or: start at the first record whose timestamp is
                          at or after time_ms (none: at high); -1: not given.
                          offset and time together are 400. */
    int limit;         /* messages to return, 1..OPS_BROWSE_MAX_LIMIT, or -1:
                          OPS_BROWSE_DEFAULT_LIMIT.  Without offset and time
                          the read starts at max(low, high - limit). */
    const char *q;     /* keep only records whose key or value contains q
                          (bytes, case-sensitive); NULL or "": all */
    int scan;          /* examine at most this many records,
                          1..OPS_BROWSE_MAX_SCAN, or -1: OPS_BROWSE_DEFAULT_SCAN */
};

/* GET /api/topics/{name}/messages: {"topic","partition","messages":[{"partition",
 * "offset","timestamp","key","value","headers":[{"key","value"}]}],
 * "next_offset","scanned","high"}.  Reads from the start until limit
 * matches, scan records examined, the high watermark read when the call
 * began, the body limit, or the timeout.  next_offset is the offset after
 * the last record examined (the start when none was), so a client goes on
 * from there; scanned counts the records examined.  A timestamp the record
 * lacks is null; a null key, value or header value is null.  If the time
 * runs out after some records were read, those are returned (200); if
 * before any, 504. */
int ops_messages(struct ops *ops, const char *topic, const struct ops_browse *b,
                 struct jbuf *out, char *err, size_t errlen);

/* GET /api/groups: every consumer group sorted by id, {"group_id","state",
 * "protocol_type","members","lag"}.  state is Kafka's name (Stable, Empty,
 * PreparingRebalance, CompletingRebalance, Dead, Unknown); protocol_type is
 * "consumer", or "" for a group that only holds committed offsets.  lag is
 * the sum over the partitions with a committed offset of
 * max(0, high - committed), like kafka-consumer-groups.sh, which shows "-"
 * for partitions without one; null when nothing is committed or a needed
 * value could not be read. */
int ops_groups(struct ops *ops, struct jbuf *out, char *err, size_t errlen);

/* GET /api/groups/{id}: {"group_id","state","protocol_type","protocol"
 * (the assignor, "" when none),"coordinator" (-1 unknown),"members":[
 * {"member_id","client_id","host","assignments":[{"topic","partition"}]}],
 * "offsets":[{"topic","partition","committed","high","lag"}],"lag"}.
 * Members sorted by member id, assignments and offsets by topic and
 * partition; offsets lists the partitions with a committed offset (an
 * assigned partition without one has no row); high and lag are null when
 * the high watermark could not be read; lag as in ops_groups.  404 when
 * the cluster does not know the group (GROUP_ID_NOT_FOUND, or Dead with
 * nothing committed). */
int ops_group(struct ops *ops, const char *group, struct jbuf *out, char *err, size_t errlen);

/* One partition with a committed offset, for /metrics. */
struct ops_lag {
    char *group;       /* owned by the array (ops_lags_free) */
    char *topic;       /* owned by the array */
    int32_t partition;
    int64_t committed; /* the group's committed offset */
    int64_t high;      /* the high watermark, -1 when it could not be read */
    int64_t lag;       /* max(0, high - committed), -1 when high is -1 */
};

/* Every group's committed partitions, sorted by group, topic, partition.
 * Group and topic names are as the cluster gave them (not repaired: the
 * caller escapes them for its format).  Returns 200 with *out owned
 * (ops_lags_free; NULL when *n is 0), or an error status as above with
 * *out NULL and *n 0.  A group whose offsets could not be read is left
 * out. */
int ops_lags(struct ops *ops, struct ops_lag **out, size_t *n, char *err, size_t errlen);
void ops_lags_free(struct ops_lag *v, size_t n);

#endif
