/* client_opts.h: what every client-side subcommand (topic, produce, consume,
 * group, ...) shares: parsing `--bootstrap HOST:PORT[,HOST:PORT]`, repeated
 * `-X key=value` (librdkafka settings) and `--timeout-ms`, building an
 * rd_kafka_conf_t from them, creating producer / consumer / admin handles,
 * and turning librdkafka failures into one-sentence error messages.
 *
 * It leaves each command's own options and output to the command.  The
 * contract for the flags is DESIGN.md, "Command-line contract".  Built on
 * librdkafka only, so the commands run against any Kafka cluster. */
#ifndef SHOPSTREAM_CLIENT_OPTS_H
#define SHOPSTREAM_CLIENT_OPTS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#define CLIENT_DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define CLIENT_DEFAULT_TIMEOUT_MS 10000
/* Producers partition by key like Kafka's Java client (DESIGN.md). */
#define CLIENT_DEFAULT_PARTITIONER "murmur2_random"

/* Options common to client commands.  Every string borrows from argv, so a
 * client_opts lives no longer than the argv it was parsed from. */
struct client_opts {
    const char *bootstrap;   /* bootstrap.servers; CLIENT_DEFAULT_BOOTSTRAP */
    const char *partitioner; /* producers only (set by the command from its
                              * --partitioner); NULL = CLIENT_DEFAULT_PARTITIONER */
    int timeout_ms;          /* --timeout-ms, else CLIENT_DEFAULT_TIMEOUT_MS */
    int timeout_given;       /* 1 when --timeout-ms appeared on the command line */
    const char **xprops;     /* "key=value" strings from -X, in order; owned array */
    size_t nxprops;          /* entries in xprops */
    int verbose_logs;        /* -X debug=... or -X log_level=... was given */
};

/* Fills o with the defaults. */
void client_opts_init(struct client_opts *o);

/* Frees what client_opts_init and client_opts_take allocated. */
void client_opts_free(struct client_opts *o);

/* Looks at argv[*i].  If it is a common client option (--bootstrap,
 * -X key=value / -Xkey=value, --timeout-ms), consumes it and
 * its value, advances *i past them and returns 1.  Returns 0 if argv[*i] is
 * not a common option (nothing consumed), or -1 after printing a one-sentence
 * error prefixed by cmd (e.g. "shopstream topic create") to stderr. */
int client_opts_take(struct client_opts *o, const char *cmd, int argc, char **argv, int *i);

/* Matches `--name VALUE` or `--name=VALUE` at argv[*i].  Returns 1 and sets
 * *value (a view into argv) and advances *i past the option when it
 * matches, 0 when argv[*i] is a different option, or -1 after printing an
 * error when the value is missing. */
int client_opt_value(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **value);

/* Parses a decimal integer in [min, max] from s for option name.  Returns 0,
 * or -1 after printing an error prefixed by cmd. */
int client_parse_int(const char *cmd, const char *name, const char *s, long long min,
                     long long max, long long *out);

/* Splits option opt's value "HOST:PORT" into host (copied into
 * host[0..hostlen)) and a port from 0 to 65535.  Returns 0, or -1 after
 * printing an error prefixed by cmd. */
int client_parse_hostport(const char *cmd, const char *opt, const char *v, char *host,
                          size_t hostlen, int *port);

/* The separator a --key-separator value stands for: the two characters
 * "\t" mean a tab (typing a real tab on a command line is awkward); anything
 * else is taken literally.  Returns a view of s or a static string. */
const char *client_separator(const char *s);

/* Builds the configuration for a handle of the given type: bootstrap.servers,
 * the client's quiet logging and error capture, partitioner for producers,
 * then the command's defaults (defaults is NULL or a NULL-terminated list of
 * key, value, key, value, ...), then every -X in order, so -X wins.  Returns
 * an owned conf (freed by client_handle_new, or by rd_kafka_conf_destroy), or
 * NULL after printing an error prefixed by cmd. */
rd_kafka_conf_t *client_conf_new(const struct client_opts *o, const char *cmd,
                                 rd_kafka_type_t type, const char *const *defaults);

/* Creates a handle and takes conf (destroyed on failure too).  Returns an
 * owned handle (free with rd_kafka_destroy, after rd_kafka_consumer_close for
 * consumers), or NULL after printing an error prefixed by cmd. */
rd_kafka_t *client_handle_new(const char *cmd, rd_kafka_type_t type, rd_kafka_conf_t *conf);

/* A handle for the Admin API and metadata: a producer that never produces and
 * never asks the broker to auto-create the topics it looks up.  Returns owned
 * (rd_kafka_destroy) or NULL after printing an error. */
rd_kafka_t *client_admin_new(const struct client_opts *o, const char *cmd);

/* Prints "CMD: WHAT: REASON." to stderr.  When the failure looks like the
 * cluster could not be reached (timeout, transport failure, all brokers
 * down), adds the bootstrap address and the last connection error that
 * librdkafka reported on rk, so the user sees why.  rk may be NULL. */
void client_report(rd_kafka_t *rk, const struct client_opts *o, const char *cmd,
                   const char *what, rd_kafka_resp_err_t err, const char *reason);

/* Waits for the result of an admin request on q, up to the request timeout
 * and a margin for a request still queued waiting for a broker or
 * coordinator (librdkafka times the request itself out).  Returns an owned
 * event (rd_kafka_event_destroy) that carries no request-level error, or
 * NULL after printing an error whose sentence starts with what. */
rd_kafka_event_t *client_admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, const struct client_opts *o,
                                    const char *cmd, const char *what);

/* Copies the last connection failure or client error that librdkafka
 * reported (on any handle) into buf.  Returns 1 if there was one, else 0. */
int client_last_error(char *buf, size_t size);

/* Fetches metadata for all topics and finds topic.  On success returns 0 with
 * *md (owned: rd_kafka_metadata_destroy) and *mt (a view into *md, or NULL if
 * topic is NULL).  Returns -1 after printing an error (including "topic does
 * not exist") prefixed by cmd. */
int client_topic_metadata(rd_kafka_t *rk, const struct client_opts *o, const char *cmd,
                          const char *topic, const struct rd_kafka_metadata **md,
                          const rd_kafka_metadata_topic_t **mt);

/* Installs SIGINT/SIGTERM handlers (without SA_RESTART, so blocking reads
 * return EINTR) that set the flag read by client_interrupted(). */
void client_catch_signals(void);
int client_interrupted(void);

/* A subcommand of a command with several (topic, group): its name and the
 * options it accepts (a bit set of the command's own). */
struct client_subcommand {
    const char *name;
    int allowed;
};

/* Picks the subcommand named by argv[1] for `command` (e.g. "shopstream
 * topic").  Returns -1 with *index set when one matched; otherwise prints
 * the usage (to stdout for --help, exit code 0) or a one-sentence error
 * naming the expected subcommands (to stderr, exit code 2) and returns
 * that exit code. */
int client_pick_subcommand(const char *command, const char *usage, const char *expected,
                           const struct client_subcommand *subs, size_t n, int argc, char **argv,
                           size_t *index);

#endif
