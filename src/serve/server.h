/* server.h: the HTTP side of `shopstream serve`: the JSON API of the
 * dashboard and the operations console, Server-Sent Events, the embedded
 * dashboard files and /metrics, on libmicrohttpd (one thread per
 * connection, a bounded number of connections).  The routes and their JSON
 * are listed in README.md ("HTTP API").  It answers from views.h
 * (materialised result topics) and ops.h (live cluster queries); it owns
 * neither.
 *
 * Every request is outside input: an unknown path is 404, a method other
 * than GET or HEAD is 405, a bad parameter is 400, each with a JSON body
 * {"error": "...", "status": N}; a failing cluster is 502 or 504. */
#ifndef SHOPSTREAM_SERVER_H
#define SHOPSTREAM_SERVER_H

struct views;
struct ops;

#define SERVER_MAX_CONNECTIONS 256
#define SERVER_IDLE_TIMEOUT_S 60
#define SERVER_SSE_PING_MS 15000

struct server_conf {
    const char *host;    /* listen address, e.g. "127.0.0.1" */
    int port;            /* 0: a free port */
    struct views *views; /* borrows */
    struct ops *ops;     /* borrows */
};

struct server;

/* Listens and serves on its own threads.  Returns owned (server_stop), or
 * NULL with one sentence in err. */
struct server *server_start(const struct server_conf *c, char *err, size_t errlen);
/* The port it listens on. */
int server_port(const struct server *s);
/* Ends the event streams, waits for the connections' threads and frees s. */
void server_stop(struct server *s);

#endif
