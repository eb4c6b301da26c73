/* broker.h: the broker's state and the life of a request.
 *
 * A connection reads frames; each frame becomes a struct request that holds
 * the frame bytes, an arena for decoding, and the response being built.
 * Requests wait in their connection's queue in arrival order and responses
 * leave in that order.  A handler answers at once or parks the request
 * (Fetch long-polls, Produce waiting for an fsync) and finishes it later
 * with request_done().  Everything here runs on the loop thread. */
#ifndef SHOPSTREAM_BROKER_H
#define SHOPSTREAM_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/limits.h"
#include "broker/loop.h"
#include "common/arena.h"
#include "common/config.h"
#include "common/obuf.h"
#include "protocol/kwire.h"
#include "storage/catalog.h"

struct broker;
struct conn;
struct flusher;
struct cleaner;
struct coordinator;

struct request {
    struct request *next;     /* the connection's queue */
    struct conn *conn;        /* borrows; NULL once the connection closed */
    uint8_t *frame;           /* owned: the whole request frame */
    int32_t frame_len;
    struct arena arena;       /* decoded structs; freed with the request */
    int16_t api_key, api_version;
    int32_t correlation_id;
    kstr client_id;           /* view into frame */
    bool flexible;            /* the request uses a flexible version */
    struct kread body;        /* the body, after the header */
    struct obuf out;          /* the response frame being built */
    size_t body_start;        /* where the response body begins in out */
    bool ready;               /* the response is complete */
    bool no_response;         /* acks=0 Produce: nothing is sent */
    bool parked;              /* an async operation still refers to it */
    int64_t received_ms;
    int64_t received_ns;      /* the same instant in ns, for the latency histogram */
    /* send progress */
    int piece;                /* memory piece 2k or file piece 2k+1 */
    int64_t piece_off;
    void *state;              /* the handler's, for parked requests */
};

struct conn {
    struct broker *b;
    int fd;
    char peer[64];
    uint32_t peer_ip;         /* IPv4 in host order, for per-IP caps */
    uint8_t *in;              /* owned: bytes read, not yet parsed */
    size_t in_len, in_cap;
    int64_t frame_started_ms; /* when the current partial frame began, or 0 */
    int64_t last_active_ms;
    struct request *head, *tail;
    int nreq;
    int64_t queued_bytes;
    bool reading;             /* EPOLLIN is on */
    bool writing;             /* EPOLLOUT is on */
    bool dispatching;         /* inside a handler: do not free the conn */
    bool failed;              /* a write failed while dispatching */
    struct conn *prev_conn, *next_conn;
};

struct metric;
struct broker_stats;

/* Kafka API keys the per-API metrics cover (the served ones are below). */
#define BROKER_METRIC_APIS 128

/* What the broker counts for /metrics (serve/metrics.h).  The handles
 * belong to the metrics registry and are updated with relaxed atomics
 * (NULL when registration failed: updates then do nothing). */
struct broker_metrics {
    struct metric *requests[BROKER_METRIC_APIS]; /* requests_total{api} by API key */
    struct metric *latency[BROKER_METRIC_APIS];  /* request_seconds{api}: received to response ready */
    struct metric *errors[BROKER_METRIC_APIS];   /* request_errors_total{api}: malformed, closed */
    struct metric *errors_unknown;               /* ... {api="unknown"}: API keys not served,
                                                  * malformed request headers */
    struct metric *bytes_in, *bytes_out;         /* socket bytes */
    struct metric *connections, *accepted;       /* open now, accepted in all */
    struct metric *records_in;                   /* records appended by Produce */
    struct metric *flush;                        /* flush_seconds, on the flush thread */
    struct broker_stats *stats;                  /* owned: partition sizes published once a
                                                  * second for the collector (broker.c) */
};

struct broker {
    struct loop *loop;
    struct config *cfg;       /* borrows the process's properties */
    struct catalog cat;
    struct flusher *flusher;
    struct coordinator *coord; /* consumer groups (group.h) */
    struct cleaner *cleaner;   /* log compaction thread */
    int64_t cleaner_backoff_ms; /* log.cleaner.backoff.ms */
    int64_t last_cleaner_ms;
    int64_t checkpoint_interval_ms; /* log.flush.offset.checkpoint.interval.ms */
    int64_t last_checkpoint_ms;
    uint64_t checkpoint_token;  /* the last checkpoint flush submitted */
    struct broker_limits lim;
    int32_t node_id;
    char listen_host[256];
    int listen_port;
    char adv_host[256];       /* advertised in Metadata */
    int adv_port;
    int listen_fd;
    bool listen_paused;
    int64_t accept_window_ms;
    int accepts_in_window;
    bool auto_create;         /* auto.create.topics.enable */
    bool delete_enable;       /* delete.topic.enable */
    int32_t default_partitions; /* num.partitions */
    int64_t retention_check_ms; /* log.retention.check.interval.ms */
    int64_t last_retention_ms;  /* wall time of the last retention pass */
    struct conn *conns;
    int nconns;
    int64_t partial_bytes;    /* bytes of partial frames held, all conns */
    uint64_t appends;         /* bumped on every append; wakes parked fetches */
    uint64_t appends_seen;
    struct request **parked_fetches;
    int nparked, capparked;
    int64_t stopping;
    struct broker_metrics m;
    struct cluster *cluster;  /* owned: NULL when the broker runs alone (cluster.h) */
};

/* Creates the broker from its properties: opens the data dir and listens.
 * Returns 0 or -1 with a message in err. */
int broker_init(struct broker *b, struct config *cfg, char *err, size_t errlen);
/* Serves until broker_stop.  Then closes connections and logs cleanly. */
void broker_run(struct broker *b);
void broker_stop(struct broker *b);
void broker_free(struct broker *b);

/* Finishes the response of a request whose body has been written into
 * r->out, and sends what can be sent. */
void request_done(struct request *r);
/* Frees a request whose connection has gone (r->conn == NULL). */
void request_free(struct request *r);

/* Auto-creates a topic if allowed.  Returns the topic or NULL. */
struct topic *broker_auto_create(struct broker *b, const char *name, size_t len);

#endif
