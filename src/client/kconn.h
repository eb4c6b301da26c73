/* kconn.h: one blocking Kafka client connection, for the parts of shopstream
 * that speak the protocol themselves instead of through librdkafka (the
 * DescribeLogDirs console query, the native fetch client of `bench
 * consume`, the connections of `bench memory`).
 *
 * It frames requests (request header v1, or v2 for flexible versions),
 * learns the broker's versions with ApiVersions v0, sends, and receives
 * whole response frames, bounded in size, with the correlation id checked
 * and the response header (v0, or v1 for flexible versions) skipped.  Bodies
 * are encoded and decoded by the caller with the generated codecs
 * (protocol/kmsg.h).  Kafka answers the requests of one connection in the
 * order they were sent, so a caller may send several before receiving
 * (pipelining) and then receives them oldest first.  The wire format is in
 * shared/kafka-protocol/README.md.
 *
 * Every step is bounded by the connection's timeout: connecting (all the
 * addresses of the host together), sending each request and receiving each
 * response.  Name resolution (getaddrinfo) is not: pass an address or a
 * name the resolver answers locally.  A failure leaves one sentence (no
 * trailing period) in the caller's error buffer; after a send or receive
 * failure the connection is out of step and must be closed.  Not
 * thread-safe: one connection belongs to one thread at a time. */
#ifndef SHOPSTREAM_KCONN_H
#define SHOPSTREAM_KCONN_H

#include <stddef.h>
#include <stdint.h>

#include "common/obuf.h"
#include "protocol/kwire.h"

/* Requests sent and not yet received on one connection. */
#define KCONN_MAX_INFLIGHT 64
/* API keys whose versions are remembered (Kafka's keys are below 100). */
#define KCONN_API_KEYS 128
/* The response frame limit when the caller gives none. */
#define KCONN_DEFAULT_MAX_FRAME (16 * 1024 * 1024)

/* A request sent and not yet answered. */
struct kconn_pending {
    int32_t corr;
    int16_t key, version;
};

struct kconn {
    int fd;                 /* -1 when closed */
    char host[256];         /* as given, for sentences */
    int port;
    int timeout_ms;         /* bound on connect, each send, each receive */
    int32_t max_frame;      /* the largest response frame accepted */
    const char *client_id;  /* borrows: a string that outlives the connection */
    int32_t corr;           /* the last correlation id used */
    struct kconn_pending pending[KCONN_MAX_INFLIGHT]; /* a ring, oldest at head */
    int head, npending;
    int have_versions;      /* kconn_api_versions succeeded */
    int16_t min_version[KCONN_API_KEYS], max_version[KCONN_API_KEYS]; /* -1: not served */
    char *err;              /* borrows the caller's buffer */
    size_t errlen;
};

/* A received response frame (correlation id onwards) in a buffer the caller
 * owns and reuses across receives, so large responses cost no allocation
 * each.  Zero-initialise; free with kconn_frame_free. */
struct kconn_frame {
    uint8_t *data; /* owned */
    size_t len, cap;
};

void kconn_frame_free(struct kconn_frame *f);

/* Connects to host:port within timeout_ms.  client_id and err are borrowed
 * for the connection's life.  max_frame 0 means KCONN_DEFAULT_MAX_FRAME.
 * Always initialises c (kconn_close is then safe).  Returns 0, or -1 with
 * err set. */
int kconn_open(struct kconn *c, const char *host, int port, int timeout_ms, const char *client_id,
               int32_t max_frame, char *err, size_t errlen);
void kconn_close(struct kconn *c);

/* Asks ApiVersions v0 (every broker since Kafka 0.10 answers it) and
 * remembers the version range of each API.  Returns 0 or -1. */
int kconn_api_versions(struct kconn *c);

/* The highest version of API key in [lo, hi] the broker serves (after
 * kconn_api_versions), or -1 with err set ("does not support X", or
 * "supports X vA-vB but not vLO[-vHI]"). */
int kconn_pick_version(struct kconn *c, int16_t key, int16_t lo, int16_t hi);

/* Starts a request frame in w (reset first): a size to be patched, then
 * the request header for key and version.  Returns the correlation id.
 * The caller appends the body with the codec's _encode. */
int32_t kconn_begin(struct kconn *c, struct obuf *w, int16_t key, int16_t version);

/* Sends the frame in w (begun with kconn_begin) and queues it as in flight.
 * Returns 0, or -1 with err set (also when KCONN_MAX_INFLIGHT are already in
 * flight or w ran out of memory). */
int kconn_send(struct kconn *c, struct obuf *w);

/* Receives the response to request corr, which must be the oldest in
 * flight (responses come in request order), into f (borrowed, grown as
 * needed).  On success *body is a reader over the response body (a view
 * into f, valid until f is next used) and the request is no longer in
 * flight.  Returns 0, or -1 with err set. */
int kconn_recv(struct kconn *c, int32_t corr, struct kconn_frame *f, struct kread *body);

/* kconn_send then kconn_recv of the same request; nothing else may be in
 * flight. */
int kconn_roundtrip(struct kconn *c, struct obuf *w, struct kconn_frame *f, struct kread *body);

/* Kafka's name of an API key ("Fetch"), or "an unknown API".  Static. */
const char *kconn_api_name(int16_t key);

/* Sets err to "the broker at H:P sent a malformed X response", or to an
 * out-of-memory sentence when r failed for lack of memory.  Returns -1. */
int kconn_malformed(struct kconn *c, const struct kread *r, int16_t key);

#endif
