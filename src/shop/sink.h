/* sink.h: where the event sources (simulate, replay) put their events: a
 * Kafka producer (any Kafka cluster, through librdkafka) or a stream of
 * lines on a FILE (for --stdout, tests and debugging).
 *
 * Kafka: each event becomes one record of the topic of its stream (event.h),
 * keyed by shop_event_key, its timestamp = the event's ts, value = the JSON
 * of shop_event_write.  The producer is idempotent with acks=all and the
 * Java-compatible murmur2 partitioner (DESIGN.md), so a key lands on the
 * same partition whichever client wrote it.
 *
 * FILE: one line per event, "TOPIC<TAB>KEY<TAB>JSON\n". */
#ifndef SHOPSTREAM_SINK_H
#define SHOPSTREAM_SINK_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "shop/event.h"

struct shop_sink;

struct shop_sink_stats {
    long long emitted;     /* events handed to the sink */
    long long delivered;   /* acknowledged by the cluster (FILE: written) */
    long long failed;      /* refused locally or by the cluster */
    char first_error[256]; /* why the first failure failed, "" if none */
};

/* A sink that produces with producer (taken: destroyed by shop_sink_close).
 * The producer's conf must have been built with shop_sink_producer_defaults
 * and then shop_sink_producer_conf. */
struct shop_sink *shop_sink_kafka(rd_kafka_t *producer);

/* The producer settings a Kafka sink wants (enable.idempotence=true,
 * acks=all, linger.ms=5, compression lz4), as a NULL-terminated list of key,
 * value, key, value, ... for client_conf_new's `defaults`, so that the
 * user's -X settings still win. */
extern const char *const shop_sink_producer_defaults[];

/* Sets on conf the delivery report callback the sink counts with.  Call on
 * the conf before creating the producer handle. */
void shop_sink_producer_conf(rd_kafka_conf_t *conf);

/* A sink that writes lines to f (borrowed; not closed). */
struct shop_sink *shop_sink_file(FILE *f);

/* Emits one event.  Blocks (serving delivery reports) while the producer's
 * queue is full.  Returns 0, or -1 if the event could not be queued (the
 * reason is in the stats). */
int shop_sink_emit(struct shop_sink *s, const struct shop_event *ev);

/* Serves delivery reports without blocking. */
void shop_sink_poll(struct shop_sink *s);

/* A snapshot of the counters. */
void shop_sink_stats(const struct shop_sink *s, struct shop_sink_stats *out);

/* Waits up to timeout_ms for every queued event to be acknowledged, fills
 * *final (may be NULL), frees the sink.  Returns 0 when every emitted event
 * was delivered, else -1. */
int shop_sink_close(struct shop_sink *s, int timeout_ms, struct shop_sink_stats *final);

/* Creates the shop topics that do not exist yet, each with `partitions`
 * partitions and replication factor `replicas` (-1: the broker's default):
 * the inputs (shop.orders, shop.clicks, shop.aftersales) and the results
 * (shop.order-state and shop.recs compacted; shop.kpis, shop.alerts,
 * shop.deadletter).  Existing topics are left as they are.  admin is
 * borrowed.  Returns 0, or -1 with errstr filled. */
int shop_topics_ensure(rd_kafka_t *admin, int partitions, int replicas, int timeout_ms,
                       char *errstr, size_t errsz);

#endif
