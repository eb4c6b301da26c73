/* broker.c: the broker's life: read its properties, open the catalog,
 * listen, run the loop with its periodic work (idle and slowloris reaping,
 * segment roll by age, time-based flushes, waking parked fetches, the
 * partition sizes for /metrics), and shut down cleanly. */
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "broker/group_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "broker/api.h"
#include "broker/conn.h"
#include "broker/group.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "protocol/kmsg.h"
#include "serve/metrics.h"
#include "storage/cleaner.h"
#include "storage/flusher.h"

/* Parses "PLAINTEXT://host:port" (first listener of a list) or "host:port". */
static int parse_listener(const char *s, char *host, size_t hostlen, int *port)
{
    /* the first listener that is not the controller's (Raft) listener */
    while (!strncmp(s, "CONTROLLER://", 13)) {
        const char *next = strchr(s, ',');
        if (!next)
            return -1;
        s = next + 1;
    }
    const char *p = strstr(s, "://");
    p = p ? p + 3 : s;
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char buf[512];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = 0;
    char *colon = strrchr(buf, ':');
    if (!colon)
        return -1;
    *colon = 0;
    char *h = buf;
    if (h[0] == '[') { /* [::1]:9092 */
        h++;
        char *e = strchr(h, ']');
        if (e)
            *e = 0;
    }
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (*end || v < 0 || v > 65535)
        return -1;
    if (strlen(h) >= hostlen)
        return -1;
    memcpy(host, h, strlen(h) + 1);
    *port = (int)v;
    return 0;
}

static int get_i64(const struct config *c, const char *key, int64_t def, int64_t min, int64_t max,
                   int64_t *out, char *err, size_t errlen)
{
    const char *v = config_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (config_parse_i64(v, out) < 0 || *out < min || *out > max) {
        snprintf(err, errlen, "%s=%s is not a whole number in [%lld, %lld]", key, v, (long long)min,
                 (long long)max);
        return -1;
    }
    return 0;
}

static int get_bool(const struct config *c, const char *key, bool def, bool *out, char *err, size_t errlen)
{
    const char *v = config_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (config_parse_bool(v, out) < 0) {
        snprintf(err, errlen, "%s=%s must be true or false", key, v);
        return -1;
    }
    return 0;
}

static int load_settings(struct broker *b, char *err, size_t errlen)
{
    const struct config *c = b->cfg;
    int64_t v;
    struct broker_limits *l = &b->lim;
#define I64(key, def, min, max, dst)                                 \
    do {                                                             \
        if (get_i64(c, key, def, min, max, &v, err, errlen) < 0)     \
            return -1;                                               \
        dst = v;                                                     \
    } while (0)
    I64("broker.id", 0, 0, INT32_MAX, b->node_id);
    I64("node.id", b->node_id, 0, INT32_MAX, b->node_id);
    I64("num.partitions", 1, 1, 100000, b->default_partitions);
    I64("log.retention.check.interval.ms", 300000, 1, INT64_MAX / 2, b->retention_check_ms);
    I64("log.cleaner.backoff.ms", 15000, 1, INT64_MAX / 2, b->cleaner_backoff_ms);
    I64("log.flush.offset.checkpoint.interval.ms", 60000, 1, INT64_MAX / 2, b->checkpoint_interval_ms);
    I64("socket.request.max.bytes", LIMIT_REQUEST_MAX_BYTES_DEFAULT, 64, INT32_MAX - 8, l->request_max_bytes);
    I64("max.connections", LIMIT_MAX_CONNECTIONS_DEFAULT, 1, 10000000, l->max_connections);
    I64("max.connections.per.ip", LIMIT_MAX_CONNECTIONS_PER_IP_DEFAULT, 1, 10000000, l->max_connections_per_ip);
    I64("connections.max.idle.ms", LIMIT_IDLE_MS_DEFAULT, 1000, INT64_MAX / 2, l->idle_ms);
    I64("request.completion.timeout.ms", LIMIT_FRAME_DEADLINE_MS_DEFAULT, 100, INT64_MAX / 2, l->frame_deadline_ms);
    I64("queued.max.requests", LIMIT_INFLIGHT_PER_CONN_DEFAULT, 1, 1000000, l->inflight_per_conn);
    I64("buffered.partial.bytes.max", LIMIT_PARTIAL_BYTES_DEFAULT, 1 << 20, INT64_MAX / 2, l->partial_bytes_max);
    I64("message.max.bytes", LIMIT_MESSAGE_MAX_BYTES_DEFAULT, 0, INT32_MAX, l->message_max_bytes);
    I64("message.decompressed.max.bytes", LIMIT_DECOMPRESSED_MAX_BYTES_DEFAULT, 1024, INT32_MAX,
        l->decompressed_max_bytes);
    I64("fetch.max.bytes", LIMIT_FETCH_MAX_BYTES_DEFAULT, 1024, INT32_MAX, l->fetch_max_bytes);
    I64("max.connection.creation.rate", LIMIT_ACCEPT_RATE_DEFAULT, 1, 10000000, l->accept_rate);
#undef I64
    if (get_bool(c, "auto.create.topics.enable", true, &b->auto_create, err, errlen) < 0 ||
        get_bool(c, "delete.topic.enable", true, &b->delete_enable, err, errlen) < 0)
        return -1;
    /* every topic-level default given at broker level must be valid too */
    for (const struct topic_config_def *d = topic_config_defs; d->name; d++) {
        const char *val = d->broker_property ? config_get(c, d->broker_property) : NULL;
        char e[256];
        if (val && topic_config_validate(d->name, val, e, sizeof e) < 0) {
            snprintf(err, errlen, "%s: %s", d->broker_property, e);
            return -1;
        }
    }

    const char *ls = config_get(c, "listeners");
    snprintf(b->listen_host, sizeof b->listen_host, "127.0.0.1");
    b->listen_port = 9092;
    if (ls && parse_listener(ls, b->listen_host, sizeof b->listen_host, &b->listen_port) < 0) {
        snprintf(err, errlen, "listeners=%s is not PLAINTEXT://HOST:PORT", ls);
        return -1;
    }
    return 0;
}

static void set_advertised(struct broker *b)
{
    const char *as = config_get(b->cfg, "advertised.listeners");
    if (as && parse_listener(as, b->adv_host, sizeof b->adv_host, &b->adv_port) == 0 && b->adv_port != 0)
        return;
    snprintf(b->adv_host, sizeof b->adv_host, "%s", b->listen_host);
    b->adv_port = b->listen_port;
    if (!strcmp(b->adv_host, "0.0.0.0") || !strcmp(b->adv_host, "::") || !b->adv_host[0]) {
        if (gethostname(b->adv_host, sizeof b->adv_host) < 0)
            snprintf(b->adv_host, sizeof b->adv_host, "localhost");
    }
}

static void wake_loop(void *arg)
{
    loop_wakeup(arg);
}

static void on_wakeup(struct loop *l, void *arg)
{
    (void)l;
    struct broker *b = arg;
    flusher_complete(b->flusher);
    if (b->cleaner)
        cleaner_finish(b->cleaner);
    cluster_drain(b);
}

static void before_sleep(struct loop *l, void *arg)
{
    (void)l;
    struct broker *b = arg;
    if (b->appends != b->appends_seen) {
        b->appends_seen = b->appends;
        fetch_wake_parked(b, false);
    }
}

/* A checkpoint flush is done: every partition it covered has its data up to
 * the target on disk, so the recovery point moves there. */
struct checkpoint_job {
    struct broker *b;
    uint64_t token;
};

static void checkpoint_done(void *arg, int err)
{
    struct checkpoint_job *job = arg;
    struct broker *b = job->b;
    uint64_t token = job->token;
    xfree(job);
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int p = 0; p < t->npartitions; p++) {
            struct plog *lg = t->parts[p]->log;
            if (lg->checkpoint_token != token || !token)
                continue;
            lg->checkpoint_token = 0;
            if (!err && plog_save_recovery_point(lg, lg->checkpoint_target) < 0)
                log_warn("%s: cannot save the recovery point", lg->dir);
        }
    }
}

static void submit_checkpoint(struct broker *b, int *fds, int n, uint64_t token)
{
    struct checkpoint_job *job = xmalloc(sizeof *job);
    if (!job) {
        for (int i = 0; i < n; i++)
            close(fds[i]);
        return; /* the partitions keep their token; cleared below on the next pass */
    }
    *job = (struct checkpoint_job){b, token};
    if (flusher_submit(b->flusher, fds, n, checkpoint_done, job) < 0)
        xfree(job);
}

/* Syncs every partition with data past its recovery point, in one flush
 * job (one fsync per file), then moves the recovery points. */
static void checkpoint(struct broker *b)
{
    int fds[FLUSH_MAX_FDS], n = 0;
    uint64_t token = ++b->checkpoint_token;
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int p = 0; p < t->npartitions; p++) {
            struct plog *lg = t->parts[p]->log;
            if (lg->next_offset <= lg->recovery_point)
                continue;
            if (n + 2 > FLUSH_MAX_FDS) {
                /* a full job: send it and start another */
                submit_checkpoint(b, fds, n, token);
                n = 0;
                token = ++b->checkpoint_token;
            }
            lg->checkpoint_target = lg->next_offset;
            lg->checkpoint_token = token;
            n += plog_take_unsynced_fds(lg, fds + n, 2);
        }
    }
    if (n > 0)
        submit_checkpoint(b, fds, n, token);
}

/* --- metrics ------------------------------------------------------------------
 * Counters are registered here and updated where things happen (conn.c,
 * handle_produce.c, the flush thread).  The catalog belongs to the loop
 * thread, so once a second the loop copies what /metrics shows of each
 * partition into a snapshot, and the collector renders the latest one. */

/* One partition as of the last snapshot. */
struct part_stat {
    const char *topic; /* view into the snapshot's names */
    int32_t partition;
    int64_t size_bytes, log_start, log_end;
};

struct stats_snapshot {
    int n;
    int ntopics;
    struct part_stat *parts; /* n, in the same block */
};

struct broker_stats {
    pthread_mutex_t mu;          /* guards snap; the loop only ever trylocks it */
    struct stats_snapshot *snap; /* owned (one block: xfree) */
};

/* Loop thread: copies the partitions' sizes and offsets into one block. */
static struct stats_snapshot *snapshot_catalog(const struct catalog *cat)
{
    size_t names = 0;
    int n = 0;
    for (int i = 0; i < cat->ntopics; i++) {
        names += strlen(cat->topics[i]->name) + 1;
        n += cat->topics[i]->npartitions;
    }
    struct stats_snapshot *s = xmalloc(sizeof *s + sizeof(struct part_stat) * (size_t)n + names);
    if (!s)
        return NULL;
    s->n = n;
    s->ntopics = cat->ntopics;
    s->parts = (struct part_stat *)(s + 1);
    char *np = (char *)(s->parts + n);
    int k = 0;
    for (int i = 0; i < cat->ntopics; i++) {
        const struct topic *t = cat->topics[i];
        size_t len = strlen(t->name) + 1;
        memcpy(np, t->name, len);
        for (int p = 0; p < t->npartitions; p++) {
            const struct plog *lg = t->parts[p]->log;
            s->parts[k++] = (struct part_stat){np, p, plog_size(lg), lg->log_start_offset, lg->next_offset};
        }
        np += len;
    }
    return s;
}

/* Loop thread: publishes a new snapshot unless a scrape is reading the
 * old one (then the next second's will do): the loop never waits. */
static void publish_stats(struct broker *b)
{
    struct broker_stats *st = b->m.stats;
    if (!st)
        return;
    struct stats_snapshot *s = snapshot_catalog(&b->cat);
    if (!s)
        return;
    if (pthread_mutex_trylock(&st->mu) != 0) {
        xfree(s);
        return;
    }
    struct stats_snapshot *old = st->snap;
    st->snap = s;
    pthread_mutex_unlock(&st->mu);
    xfree(old);
}

static void write_part_family(struct metrics_writer *w, const struct stats_snapshot *s, const char *name,
                              const char *help, int what)
{
    metrics_write_family(w, name, help, METRICS_GAUGE);
    for (int i = 0; i < s->n; i++) {
        const struct part_stat *p = &s->parts[i];
        char pn[16];
        snprintf(pn, sizeof pn, "%d", (int)p->partition);
        int64_t v = what == 0 ? p->size_bytes : what == 1 ? p->log_start : p->log_end;
        metrics_write_int(w, METRICS_LABELS({"topic", p->topic}, {"partition", pn}), v);
    }
}

/* The rendering thread: the partitions of the last snapshot. */
static void collect_stats(struct metrics_writer *w, void *arg)
{
    struct broker_stats *st = arg;
    pthread_mutex_lock(&st->mu);
    const struct stats_snapshot *s = st->snap;
    if (s) {
        metrics_write_family(w, "shopstream_broker_topics", "Topics, internal ones included.",
                             METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, s->ntopics);
        metrics_write_family(w, "shopstream_broker_partitions", "Partitions of all topics.", METRICS_GAUGE);
        metrics_write_int(w, NULL, 0, s->n);
        write_part_family(w, s, "shopstream_broker_log_size_bytes",
                          "Bytes of the partition's segment files (as of the last second).", 0);
        write_part_family(w, s, "shopstream_broker_log_start_offset",
                          "The partition's first offset still in the log.", 1);
        write_part_family(w, s, "shopstream_broker_log_end_offset",
                          "The partition's log end offset (next offset to be written = high watermark).", 2);
    }
    pthread_mutex_unlock(&st->mu);
}

static void observe_flush(void *arg, int64_t ns)
{
    metrics_observe(arg, (double)ns / 1e9);
}

/* Registers the broker's series and its collector.  A failure only loses
 * metrics (it is logged), never the broker. */
static void init_metrics(struct broker *b)
{
    struct broker_metrics *m = &b->m;
    for (int i = 0; i < api_table_len; i++) {
        int16_t key = api_table[i].key;
        const struct kmsg_api *spec = kmsg_api(key);
        if (key < 0 || key >= BROKER_METRIC_APIS || !spec)
            continue;
        m->requests[key] = metrics_counter("shopstream_broker_requests_total",
                                           "Kafka requests received, by API.",
                                           METRICS_LABELS({"api", spec->name}));
        m->errors[key] = metrics_counter("shopstream_broker_request_errors_total",
                                         "Requests refused by closing the connection (malformed, "
                                         "unsupported version), by API; api=\"unknown\": API "
                                         "keys not served and unreadable headers.",
                                         METRICS_LABELS({"api", spec->name}));
        m->latency[key] = metrics_histogram("shopstream_broker_request_seconds",
                                            "Time from a request's arrival to its response being ready "
                                            "(Fetch long-polls and Produce fsync waits included), by API.",
                                            metrics_latency_bounds, metrics_latency_nbounds,
                                            METRICS_LABELS({"api", spec->name}));
    }
    m->errors_unknown = metrics_counter("shopstream_broker_request_errors_total", "",
                                        METRICS_LABELS({"api", "unknown"}));
    m->bytes_in = metrics_counter("shopstream_broker_bytes_in_total", "Bytes read from client sockets.",
                                  NULL, 0);
    m->bytes_out = metrics_counter("shopstream_broker_bytes_out_total",
                                   "Bytes written to client sockets (sendfile included).", NULL, 0);
    m->connections = metrics_gauge("shopstream_broker_connections", "Client connections open.", NULL, 0);
    m->accepted = metrics_counter("shopstream_broker_connections_accepted_total",
                                  "Client connections accepted.", NULL, 0);
    m->records_in = metrics_counter("shopstream_broker_records_in_total",
                                    "Records appended to partition logs by Produce (idempotent "
                                    "retries not counted again).",
                                    NULL, 0);
    m->flush = metrics_histogram("shopstream_broker_flush_seconds",
                                 "Duration of each fdatasync of a segment or index file on the flush thread.",
                                 metrics_latency_bounds, metrics_latency_nbounds, NULL, 0);
    flusher_set_observer(b->flusher, observe_flush, m->flush);
    struct broker_stats *st = xcalloc(1, sizeof *st);
    if (!st) {
        log_warn("metrics: out of memory; partition sizes are left out");
        return;
    }
    pthread_mutex_init(&st->mu, NULL);
    m->stats = st;
    publish_stats(b);
    if (metrics_register_collector(collect_stats, st) < 0)
        log_warn("metrics: out of memory; partition sizes are left out");
}

static void free_metrics(struct broker *b)
{
    struct broker_stats *st = b->m.stats;
    if (b->flusher)
        flusher_set_observer(b->flusher, NULL, NULL);
    if (!st)
        return;
    /* once this returns no render is reading st */
    metrics_unregister_collector(collect_stats, st);
    xfree(st->snap);
    pthread_mutex_destroy(&st->mu);
    xfree(st);
    b->m.stats = NULL;
}

/* Once a second: reap connections, roll old segments, time-based flushes. */
static void tick(struct loop *l, void *arg)
{
    struct broker *b = arg;
    conn_reap(b);
    coord_tick(b);
    int64_t now = clock_wall_ms();
    bool retention = now - b->last_retention_ms >= b->retention_check_ms;
    if (retention)
        b->last_retention_ms = now;
    if (now - b->last_checkpoint_ms >= b->checkpoint_interval_ms) {
        b->last_checkpoint_ms = now;
        checkpoint(b);
    }
    bool clean = b->cleaner && now - b->last_cleaner_ms >= b->cleaner_backoff_ms;
    if (clean)
        b->last_cleaner_ms = now;
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int p = 0; p < t->npartitions; p++) {
            struct plog *lg = t->parts[p]->log;
            plog_maybe_roll_by_age(lg, now);
            if (retention)
                plog_apply_retention(lg, now);
            if (clean && t->settings.compact)
                cleaner_maybe_schedule(b->cleaner, lg, now);
            if (lg->unflushed > 0 && now - lg->last_flush_ms >= t->settings.flush_ms) {
                int fds[4];
                int n = plog_take_dirty_fds(lg, fds, 4, now);
                flusher_submit(b->flusher, fds, n, NULL, NULL);
            }
        }
    }
    publish_stats(b);
    if (!b->stopping)
        loop_timer(l, 1000, tick, b);
}

int broker_init(struct broker *b, struct config *cfg, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->listen_fd = -1;
    if (load_settings(b, err, errlen) < 0)
        return -1;
    b->loop = loop_new();
    if (!b->loop) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    const char *dir = config_get(cfg, "log.dirs");
    if (!dir)
        dir = config_get(cfg, "log.dir");
    if (!dir)
        dir = "./shopstream-data";
    char first[4096];
    snprintf(first, sizeof first, "%s", dir);
    char *comma = strchr(first, ',');
    if (comma) {
        *comma = 0;
        log_warn("log.dirs lists several directories; shopstream uses the first, %s", first);
    }
    int64_t t0 = clock_mono_ms();
    if (catalog_open(&b->cat, first, cfg, err, errlen) < 0)
        return -1;
    b->flusher = flusher_new(wake_loop, b->loop);
    b->cleaner = cleaner_new(wake_loop, b->loop);
    if (!b->flusher || !b->cleaner) {
        snprintf(err, errlen, "cannot start the flush and cleaner threads");
        return -1;
    }
    if (cluster_init(b, err, errlen) < 0)
        return -1;
    if (coord_init(b, err, errlen) < 0)
        return -1;
    if (conn_listen(b, err, errlen) < 0)
        return -1;
    if (b->listen_port == 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(b->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
            b->listen_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    set_advertised(b);
    if (cluster_start(b, err, errlen) < 0)
        return -1;
    init_metrics(b);
    loop_set_before_sleep(b->loop, before_sleep, b);
    loop_set_on_wakeup(b->loop, on_wakeup, b);
    b->last_retention_ms = b->last_cleaner_ms = b->last_checkpoint_ms = clock_wall_ms();
    loop_timer(b->loop, 1000, tick, b);
    log_info("shopstream broker %d listening on %s:%d (advertised %s:%d), data in %s, %d topics, "
             "opened in %lld ms",
             b->node_id, b->listen_host, b->listen_port, b->adv_host, b->adv_port, first, b->cat.ntopics,
             (long long)(clock_mono_ms() - t0));
    return 0;
}

void broker_run(struct broker *b)
{
    loop_run(b->loop);
}

void broker_stop(struct broker *b)
{
    b->stopping = 1;
    loop_stop(b->loop);
}

void broker_free(struct broker *b)
{
    free_metrics(b);
    while (b->conns)
        conn_close(b->conns, NULL);
    if (b->listen_fd >= 0) {
        loop_unwatch(b->loop, b->listen_fd);
        close(b->listen_fd);
    }
    cluster_free(b);
    /* let pending flushes finish, so parked produces are answered or freed */
    flusher_free(b->flusher);
    cleaner_free(b->cleaner);
    coord_free(b);
    if (b->cat.data_dir)
        catalog_close(&b->cat);
    xfree(b->parked_fetches);
    loop_free(b->loop);
    memset(b, 0, sizeof *b);
}

struct topic *broker_auto_create(struct broker *b, const char *name, size_t len)
{
    if (!b->auto_create)
        return NULL;
    char buf[256];
    const char *why;
    if (len >= sizeof buf || catalog_check_name(name, len, &why) < 0)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = 0;
    if (!strcmp(buf, GSTORE_TOPIC))
        return gstore_topic(b);  /* internal: its own partitions and config */
    /* In a cluster only the controller creates topics: Metadata asks it to
     * (handle_metadata.c); a Produce for an unknown topic is refused, as by
     * Kafka, rather than making a log no replica set knows. */
    if (b->cluster)
        return NULL;
    struct topic *t = NULL;
    char err[256];
    if (catalog_create(&b->cat, buf, b->default_partitions, NULL, &t, err, sizeof err) != 0) {
        log_warn("cannot auto-create topic %s: %s", buf, err);
        return NULL;
    }
    return t;
}
