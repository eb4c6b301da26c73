/* client_opts.c: shared options, configuration and handles of the client-side
 * subcommands (see client_opts.h for the contract).
 *
 * librdkafka logs connection failures from its own threads, many times over,
 * and a command that cannot reach the cluster would bury its one-sentence
 * error under them.  So unless the user asked for librdkafka's logs (-X debug
 * or -X log_level), connection-failure logs are dropped here and the last such
 * error (captured from the log and from error_cb) is added to the command's
 * own message by client_report().  The capture is process-wide: a CLI command runs one client
 * at a time. */
#include "cli/client_opts.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* The last error that librdkafka reported through error_cb or logged as a
 * failure (any handle).  Written on librdkafka's threads or whichever thread
 * serves the handle's main queue, read by the command's thread, hence the
 * mutex. */
static pthread_mutex_t last_err_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_err[512];

/* Whether librdkafka's logs go to stderr unfiltered (the user asked). */
static int logs_verbose;

static volatile sig_atomic_t interrupted;

void client_opts_init(struct client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->bootstrap = CLIENT_DEFAULT_BOOTSTRAP;
    o->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
}

void client_opts_free(struct client_opts *o)
{
    xfree(o->xprops);
    o->xprops = NULL;
    o->nxprops = 0;
}

int client_opt_value(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        *i += 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: option %s needs a value.\n", cmd, name);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

int client_parse_int(const char *cmd, const char *name, const char *s, long long min,
                     long long max, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: %s expects an integer from %lld to %lld, not '%s'.\n", cmd, name,
                min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int add_xprop(struct client_opts *o, const char *cmd, const char *kv)
{
    const char *eq = strchr(kv, '=');
    const char **grown;

    if (!eq || eq == kv) {
        fprintf(stderr, "%s: -X expects key=value, not '%s'.\n", cmd, kv);
        return -1;
    }
    grown = xrealloc(o->xprops, (o->nxprops + 1) * sizeof *grown);
    if (!grown) {
        fprintf(stderr, "%s: out of memory.\n", cmd);
        return -1;
    }
    o->xprops = grown;
    o->xprops[o->nxprops++] = kv;
    if ((eq - kv == 5 && !strncmp(kv, "debug", 5)) ||
        (eq - kv == 9 && !strncmp(kv, "log_level", 9)))
        o->verbose_logs = 1;
    return 0;
}

int client_opts_take(struct client_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v;
    long long n;
    int r;

    if (!strcmp(a, "-X")) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "%s: option -X needs a key=value.\n", cmd);
            return -1;
        }
        if (add_xprop(o, cmd, argv[*i + 1]) < 0)
            return -1;
        *i += 2;
        return 1;
    }
    if (!strncmp(a, "-X", 2)) {
        if (add_xprop(o, cmd, a + 2) < 0)
            return -1;
        *i += 1;
        return 1;
    }
    if ((r = client_opt_value(cmd, "--bootstrap", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return -1;
        if (!*v) {
            fprintf(stderr, "%s: --bootstrap needs HOST:PORT[,HOST:PORT].\n", cmd);
            return -1;
        }
        o->bootstrap = v;
        return 1;
    }
    if ((r = client_opt_value(cmd, "--timeout-ms", argc, argv, i, &v)) != 0) {
        if (r < 0 || client_parse_int(cmd, "--timeout-ms", v, 1, INT_MAX, &n) < 0)
            return -1;
        o->timeout_ms = (int)n;
        o->timeout_given = 1;
        return 1;
    }
    return 0;
}

const char *client_separator(const char *s)
{
    return !strcmp(s, "\\t") ? "\t" : s;
}

/* Runs on the thread that serves the handle's main queue (rd_kafka_poll or
 * rd_kafka_consumer_poll of the command). */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    pthread_mutex_lock(&last_err_lock);
    /* "N/N brokers are down" says less than the failure that caused it. */
    if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || !last_err[0])
        snprintf(last_err, sizeof last_err, "%s", reason ? reason : rd_kafka_err2str(err));
    pthread_mutex_unlock(&last_err_lock);
    if (logs_verbose || err == RD_KAFKA_RESP_ERR__FATAL)
        fprintf(stderr, "%s: error: %s: %s\n", rd_kafka_name(rk), rd_kafka_err2name(err),
                reason ? reason : "");
}

/* Runs on librdkafka's internal threads. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Connection failures are logged here as they happen, without waiting
     * for anyone to poll, so this is where they are captured.  They end up in
     * the command's error sentence; repeating each of them here is noise. */
    if (!strcmp(fac, "FAIL") || !strcmp(fac, "ERROR")) {
        const char *msg = buf;

        /* Drop the "[thrd:NAME]: " prefix that librdkafka puts on logs. */
        if (!strncmp(msg, "[thrd:", 6) && strstr(msg, "]: "))
            msg = strstr(msg, "]: ") + 3;
        pthread_mutex_lock(&last_err_lock);
        snprintf(last_err, sizeof last_err, "%s", msg);
        pthread_mutex_unlock(&last_err_lock);
        if (!logs_verbose)
            return;
    }
    fprintf(stderr, "%s: log %d %s: %s\n", rd_kafka_name(rk), level, fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *cmd, const char *key, const char *val)
{
    char err[512];

    if (rd_kafka_conf_set(conf, key, val, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: invalid client setting %s=%s: %s.\n", cmd, key, val, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *client_conf_new(const struct client_opts *o, const char *cmd,
                                 rd_kafka_type_t type, const char *const *defaults)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char key[256];

    logs_verbose = o->verbose_logs;
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (conf_set(conf, cmd, "bootstrap.servers", o->bootstrap) < 0 ||
        conf_set(conf, cmd, "client.id", "shopstream-cli") < 0 ||
        conf_set(conf, cmd, "log.connection.close", "false") < 0)
        goto err;
    if (type == RD_KAFKA_PRODUCER &&
        conf_set(conf, cmd, "partitioner",
                 o->partitioner ? o->partitioner : CLIENT_DEFAULT_PARTITIONER) < 0)
        goto err;
    for (size_t k = 0; defaults && defaults[k]; k += 2)
        if (conf_set(conf, cmd, defaults[k], defaults[k + 1]) < 0)
            goto err;
    for (size_t k = 0; k < o->nxprops; k++) {
        const char *kv = o->xprops[k];
        size_t klen = (size_t)(strchr(kv, '=') - kv);

        if (klen >= sizeof key) {
            fprintf(stderr, "%s: -X key '%.40s...' is too long.\n", cmd, kv);
            goto err;
        }
        memcpy(key, kv, klen);
        key[klen] = '\0';
        if (conf_set(conf, cmd, key, kv + klen + 1) < 0)
            goto err;
    }
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *client_handle_new(const char *cmd, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);

    if (!rk) {
        /* rd_kafka_new() takes conf only on success. */
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "%s: could not create the Kafka client: %s.\n", cmd, err);
    }
    return rk;
}

rd_kafka_t *client_admin_new(const struct client_opts *o, const char *cmd)
{
    static const char *const defaults[] = {"allow.auto.create.topics", "false", NULL};
    rd_kafka_conf_t *conf = client_conf_new(o, cmd, RD_KAFKA_PRODUCER, defaults);

    return conf ? client_handle_new(cmd, RD_KAFKA_PRODUCER, conf) : NULL;
}

int client_last_error(char *buf, size_t size)
{
    pthread_mutex_lock(&last_err_lock);
    snprintf(buf, size, "%s", last_err);
    pthread_mutex_unlock(&last_err_lock);
    return buf[0] != '\0';
}

static int looks_unreachable(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
           err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ||
           err == RD_KAFKA_RESP_ERR__RESOLVE || err == RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE;
}

/* Prints s without a trailing period or newline, so the caller ends the
 * sentence exactly once. */
static void put_clause(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '.' || s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    fprintf(stderr, "%.*s", (int)n, s);
}

void client_report(rd_kafka_t *rk, const struct client_opts *o, const char *cmd,
                   const char *what, rd_kafka_resp_err_t err, const char *reason)
{
    char last[sizeof last_err];

    /* A producer/admin handle's other errors wait in its main queue until
     * polled (a consumer's are served by rd_kafka_consumer_poll). */
    if (rk && rd_kafka_type(rk) == RD_KAFKA_PRODUCER)
        rd_kafka_poll(rk, 0);
    client_last_error(last, sizeof last);

    fprintf(stderr, "%s: %s: ", cmd, what);
    put_clause(reason && *reason ? reason : rd_kafka_err2str(err));
    if (looks_unreachable(err) && last[0]) {
        fprintf(stderr, " (is the cluster at %s up? last client error: ", o->bootstrap);
        put_clause(last);
        fprintf(stderr, ")");
    }
    fprintf(stderr, ".\n");
}

rd_kafka_event_t *client_admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, const struct client_opts *o,
                                    const char *cmd, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, o->timeout_ms + 5000);

    if (!ev) {
        client_report(rk, o, cmd, what, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        client_report(rk, o, cmd, what, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

int client_topic_metadata(rd_kafka_t *rk, const struct client_opts *o, const char *cmd,
                          const char *topic, const struct rd_kafka_metadata **md,
                          const rd_kafka_metadata_topic_t **mt)
{
    /* All topics rather than one: asking for a single missing topic may make
     * a broker with auto.create.topics.enable create it. */
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, md, o->timeout_ms);

    if (err) {
        client_report(rk, o, cmd, "could not fetch cluster metadata", err, NULL);
        return -1;
    }
    *mt = NULL;
    if (!topic)
        return 0;
    for (int t = 0; t < (*md)->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *c = &(*md)->topics[t];

        if (!strcmp(c->topic, topic)) {
            *mt = c;
            break;
        }
    }
    if (!*mt || (*mt)->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "%s: topic '%s' does not exist.\n", cmd, topic);
        goto err;
    }
    /* A topic still electing leaders reports an error but has partitions;
     * only a topic without any is unusable. */
    if ((*mt)->err && (*mt)->partition_cnt == 0) {
        char what[300];

        snprintf(what, sizeof what, "could not read metadata of topic '%s'", topic);
        client_report(rk, o, cmd, what, (*mt)->err, NULL);
        goto err;
    }
    return 0;
err:
    rd_kafka_metadata_destroy(*md);
    *md = NULL;
    *mt = NULL;
    return -1;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void client_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked read of stdin returns EINTR.  SA_RESETHAND: a
     * second Ctrl-C kills a command that is stuck shutting down. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int client_interrupted(void)
{
    return interrupted != 0;
}

int client_pick_subcommand(const char *command, const char *usage, const char *expected,
                           const struct client_subcommand *subs, size_t n, int argc, char **argv,
                           size_t *index)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t s = 0; s < n; s++)
        if (!strcmp(argv[1], subs[s].name)) {
            *index = s;
            return -1;
        }
    fprintf(stderr, "%s: unknown subcommand '%s'; expected %s.\n", command, argv[1], expected);
    return 2;
}

/* Splits "HOST:PORT" into host (copied into host[0..hostlen)) and port.
 * Returns 0, or -1 after printing an error. */
int client_parse_hostport(const char *cmd, const char *opt, const char *v, char *host,
                       size_t hostlen, int *port)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || (size_t)(colon - v) >= hostlen || !colon[1] || *end || p < 0 ||
        p > 65535) {
        fprintf(stderr, "%s: %s expects HOST:PORT with a port from 0 to 65535, not '%s'.\n", cmd,
                opt, v);
        return -1;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = 0;
    *port = (int)p;
    return 0;
}
