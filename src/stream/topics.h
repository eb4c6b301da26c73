/* topics.h: creating the topics a processor or event source needs, through
 * the Kafka Admin API (librdkafka), so it works against any Kafka cluster.
 * A topic that already exists is left as it is. */
#ifndef SHOPSTREAM_STREAM_TOPICS_H
#define SHOPSTREAM_STREAM_TOPICS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

struct stream_topic_spec {
    const char *name;
    int partitions;
    int replicas;            /* -1: the cluster's default */
    int compacted;           /* cleanup.policy=compact, else the default (delete) */
};

/* Creates the topics of specs[0..n) that do not exist yet.  rk is any handle
 * (borrowed).  Returns 0, or -1 with errstr filled. */
int stream_topics_create(rd_kafka_t *rk, const struct stream_topic_spec *specs, size_t n,
                         int timeout_ms, char *errstr, size_t errsz);

/* Partition count of topic, 0 if it does not exist, or -1 with errstr filled
 * when the cluster could not be asked. */
int stream_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                            size_t errsz);

/* The same, but a topic missing from the answer is looked for again for up
 * to TOPIC_SETTLE_MS: in a cluster, a broker may not know of a topic yet
 * that another broker just created. */
#define TOPIC_SETTLE_MS 3000
int stream_topic_partitions_settled(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                                    size_t errsz);

#endif
