/* logdirs.h: the on-disk size of every partition a broker holds, asked with
 * Kafka's DescribeLogDirs API (key 35) over one blocking connection.
 * librdkafka has no call for it, and it is how Kafka consoles learn topic
 * sizes, so the operations console (ops.h) speaks it itself with the
 * protocol codecs of src/protocol. */
#ifndef SHOPSTREAM_LOGDIRS_H
#define SHOPSTREAM_LOGDIRS_H

#include <stddef.h>
#include <stdint.h>

struct logdir_size {
    char *topic;        /* owned */
    int32_t partition;
    int64_t size_bytes;
};

/* Connects to the broker at host:port, asks DescribeLogDirs for every
 * topic, and returns the sizes summed over its log dirs in *out (owned:
 * logdirs_free) with their count in *n.  Every step (connect, send, receive)
 * is bounded by timeout_ms.  Returns 0, or -1 with one sentence in err
 * (also when the broker does not support the API). */
int logdirs_query(const char *host, int port, int timeout_ms, struct logdir_size **out,
                  size_t *n, char *err, size_t errlen);
void logdirs_free(struct logdir_size *v, size_t n);

#endif
