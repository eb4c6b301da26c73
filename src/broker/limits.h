/* limits.h: every limit the broker enforces on what clients send, with the
 * Kafka property that sets it (where Kafka has one) and its default.  The
 * broker reads the properties at start (broker.c: broker_load_limits). */
#ifndef SHOPSTREAM_LIMITS_H
#define SHOPSTREAM_LIMITS_H

#include <stdint.h>

/* socket.request.max.bytes: the largest request frame. */
#define LIMIT_REQUEST_MAX_BYTES_DEFAULT (100 * 1024 * 1024)
/* The smallest frame: api_key, api_version, correlation_id. */
#define LIMIT_REQUEST_MIN_BYTES 8
/* max.connections: open client connections at once. */
#define LIMIT_MAX_CONNECTIONS_DEFAULT 10000
/* max.connections.per.ip */
#define LIMIT_MAX_CONNECTIONS_PER_IP_DEFAULT 2000
/* connections.max.idle.ms: a connection idle this long is closed. */
#define LIMIT_IDLE_MS_DEFAULT (10 * 60 * 1000)
/* A frame must arrive whole within this time once its first byte came
 * (slowloris).  Kafka has no such setting; shopstream calls it
 * request.completion.timeout.ms. */
#define LIMIT_FRAME_DEADLINE_MS_DEFAULT 30000
/* queued.max.requests (per connection here): requests read but not yet
 * answered; past it the broker stops reading that connection. */
#define LIMIT_INFLIGHT_PER_CONN_DEFAULT 500
/* Response bytes queued on one connection before the broker stops reading. */
#define LIMIT_QUEUED_RESPONSE_BYTES (64 * 1024 * 1024)
/* All partially received frames together (buffered.partial.bytes.max). */
#define LIMIT_PARTIAL_BYTES_DEFAULT (512 * 1024 * 1024)
/* message.max.bytes: the largest record batch (Kafka default 1048588). */
#define LIMIT_MESSAGE_MAX_BYTES_DEFAULT 1048588
/* Decompressed size of one batch (validation); Kafka bounds it implicitly. */
#define LIMIT_DECOMPRESSED_MAX_BYTES_DEFAULT (64 * 1024 * 1024)
/* fetch.max.bytes: the most a Fetch response carries (Kafka 55 MiB). */
#define LIMIT_FETCH_MAX_BYTES_DEFAULT (55 * 1024 * 1024)
/* The longest a Fetch may wait, and the longest a Produce timeout. */
#define LIMIT_MAX_WAIT_MS 300000
/* Accepts per second before the listener pauses (connection storms). */
#define LIMIT_ACCEPT_RATE_DEFAULT 2000

struct broker_limits {
    int32_t request_max_bytes;
    int32_t max_connections;
    int32_t max_connections_per_ip;
    int64_t idle_ms;
    int64_t frame_deadline_ms;
    int32_t inflight_per_conn;
    int64_t partial_bytes_max;
    int32_t message_max_bytes;
    int32_t decompressed_max_bytes;
    int32_t fetch_max_bytes;
    int32_t accept_rate;
};

#endif
