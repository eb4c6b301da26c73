/* runtime.h: the stream-processing runtime every shopstream processor runs
 * on.  It is an ordinary Kafka client (librdkafka), so a processor runs the
 * same against shopstream's broker or any Apache Kafka cluster, and scales
 * out by starting more instances with the same application name.
 *
 * Model
 * - An application consumes one or more input topics in one consumer group
 *   (group.id = the application name).  The inputs must have the same number
 *   of partitions; partition p of every input forms task p (the range
 *   assignor gives all of them to one instance), so records with the same
 *   key in different inputs meet in the same task.
 * - Each task has a keyed state store (store.h), backed by a compacted
 *   changelog topic "<name>-store-changelog" (partition p for task p).  When
 *   a task is assigned, its store is restored from the changelog before any
 *   input record is processed; when revoked, it is committed and dropped.
 * - Event-time timers: each (input, partition) has a watermark, the largest
 *   event time the processor reported there with stream_event_time (the
 *   event's own ts field: a record timestamp is not trusted, since a
 *   malformed record can carry any).  A timer set on (input, p) at time T
 *   fires once that watermark passes T (T < watermark), right after the
 *   record that moved it was processed.  Timers live in memory; a processor
 *   re-registers them from its state in the `restored` callback.
 * - With ordered_inputs = N, a task's records of its first N inputs are
 *   processed in timestamp order across those inputs: a record waits until
 *   every other input of the task has a record queued, or has reached its
 *   end and merge_wait_ms have passed since the record came (records
 *   written at the same time to another topic arrive a moment apart).  A backlog of several topics
 *   is then processed in the same order however the fetches interleaved.
 * - At-least-once: every commit_interval_ms the runtime writes the dirty
 *   state to the changelogs, waits until every produced record (results and
 *   changelog) is acknowledged, then commits the consumed offsets.  A crash
 *   replays the records after the last commit against state that may already
 *   hold their effects, so processors make results idempotent by event id.
 *   A failed delivery stops the application without committing.
 *
 * Callbacks run on the thread that called stream_app_run. */
#ifndef SHOPSTREAM_STREAM_RUNTIME_H
#define SHOPSTREAM_STREAM_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define STREAM_MAX_INPUTS 8
#define STREAM_DEFAULT_MERGE_WAIT_MS 200

struct stream_app;
struct stream_ctx;

/* One input record.  Every pointer is a view valid during the callback. */
struct stream_record {
    int input;                 /* index into stream_app_conf.inputs */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t ts;                /* record timestamp, ms */
    const void *key;           /* NULL for a null key */
    size_t klen;
    const void *value;         /* NULL for a null value */
    size_t vlen;
};

struct stream_app_conf {
    const char *name;                       /* group.id and changelog prefix */
    const char *inputs[STREAM_MAX_INPUTS];  /* input topics (must exist) */
    int ninputs;
    int commit_interval_ms;                 /* 0: 1000 */
    int stateful;                           /* 1: a changelog-backed store per task */
    int ordered_inputs;                     /* the first N inputs of a task are
                                             * merged by record timestamp (below) */
    int merge_wait_ms;                      /* 0: STREAM_DEFAULT_MERGE_WAIT_MS */
    void *opaque;                           /* handed back by stream_opaque() */

    /* Processes one record.  Returns 0, or -1 to stop the application
     * (a fatal error; nothing more is committed). */
    int (*process)(struct stream_ctx *c, const struct stream_record *r);
    /* A timer set with stream_timer_at fired (may be NULL if none is set). */
    int (*timer)(struct stream_ctx *c, int input, const void *key, size_t klen, int64_t at);
    /* After a task's store was restored: called once per key (may be NULL). */
    void (*restored)(struct stream_ctx *c, const void *key, size_t klen, const void *val,
                     size_t vlen);
    /* About once per second of wall time per task, and before each commit
     * (may be NULL); for processors that emit on a wall-clock schedule and
     * that write their in-memory state to the store before it is committed. */
    int (*tick)(struct stream_ctx *c);
    /* A topic every instance reads whole (all partitions, from the start,
     * outside the group), e.g. the observations a shared model learns
     * from; NULL for none.  Its records reach `global` between input
     * records, in each partition's order; at start the topic is read to its
     * end before any input record.  Nothing of it is committed. */
    const char *global_input;
    int (*global)(void *opaque, const struct stream_record *r);
    /* A task was created (before its store is restored) or is being dropped
     * (after its last commit): for processors that keep per-task structures
     * beside the store (stream_task_data).  open returns the task's data or
     * NULL on failure; both may be NULL. */
    void *(*task_open)(struct stream_ctx *c);
    void (*task_close)(void *data);
};

/* Counters for status lines and metrics. */
struct stream_stats {
    long long records;          /* input records processed */
    long long produced;         /* result records produced */
    long long changelog;        /* changelog records written */
    long long commits;
    long long restored;         /* changelog records read back */
    int tasks;                  /* tasks currently assigned */
};

/* Creates an application.  consumer_conf and producer_conf are taken (built
 * by the caller with bootstrap.servers and the user's -X settings; the
 * runtime adds what it relies on: group.id, no auto commit, earliest reset,
 * the range assignor, idempotence).  Returns owned (stream_app_destroy) or
 * NULL with errstr filled. */
struct stream_app *stream_app_new(const struct stream_app_conf *conf,
                                  rd_kafka_conf_t *consumer_conf,
                                  rd_kafka_conf_t *producer_conf, char *errstr, size_t errsz);

/* Creates the changelog topic if missing (as many partitions as the inputs,
 * compacted), subscribes and processes until stream_app_stop is called or a
 * fatal error.  On stop it commits what was processed.  Returns 0 after a
 * clean stop, -1 after a fatal error (errstr filled). */
int stream_app_run(struct stream_app *app, char *errstr, size_t errsz);

/* Asks a running application to stop (async-signal-safe). */
void stream_app_stop(struct stream_app *app);

void stream_app_stats(const struct stream_app *app, struct stream_stats *out);
/* Records processed so far; safe to call from any thread while it runs. */
long long stream_app_records(const struct stream_app *app);
void stream_app_destroy(struct stream_app *app);

/* The producer the application uses (borrowed), e.g. to create topics. */
rd_kafka_t *stream_app_producer(struct stream_app *app);

/* --- inside callbacks ---------------------------------------------------- */

void *stream_opaque(struct stream_ctx *c);
int32_t stream_task(struct stream_ctx *c);         /* the task's partition */
int stream_partitions(struct stream_ctx *c);       /* partitions of every input */
int stream_assigned(struct stream_ctx *c, int32_t partition); /* 1: a task of this instance */
/* 1 once the application is stopping: the ticks of its last commit should
 * publish what they would otherwise hold back for rate limiting. */
int stream_stopping(struct stream_ctx *c);
void *stream_task_data(struct stream_ctx *c);      /* what task_open returned */
/* 1 when the task has processed every record of its ordered inputs up to
 * their current end (nothing queued, every one at its end). */
int stream_caught_up(struct stream_ctx *c);
/* In process: the event time of the record being processed, which moves
 * the watermark of its (input, task) forward. */
void stream_event_time(struct stream_ctx *c, int64_t ts);
/* The watermark of (input, current task); INT64_MIN before any event. */
int64_t stream_watermark(struct stream_ctx *c, int input);

/* State of the current task.  get returns a view valid until the next put or
 * del on the task; put copies. */
const void *stream_get(struct stream_ctx *c, const void *key, size_t klen, size_t *vlen);
int stream_put(struct stream_ctx *c, const void *key, size_t klen, const void *val, size_t vlen);
int stream_del(struct stream_ctx *c, const void *key, size_t klen);
/* Number of live keys and bytes in the current task's store. */
size_t stream_state_keys(struct stream_ctx *c);

/* Produces a result record to topic, partitioned by key (murmur2, like the
 * Java client) unless partition >= 0.  ts is the record timestamp.  Returns
 * 0 or -1 (fatal). */
int stream_emit(struct stream_ctx *c, const char *topic, int32_t partition, const void *key,
                size_t klen, const void *val, size_t vlen, int64_t ts);

/* Sets an event-time timer on (input, current task) at time at, for key. */
int stream_timer_at(struct stream_ctx *c, int input, const void *key, size_t klen, int64_t at);

#endif
