/* catalog.c: see catalog.h. */
#include "storage/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/log.h"
#include "protocol/kerr.h"

#define CLEAN_MARK ".clean-shutdown"
#define LOCK_FILE ".lock"

int catalog_check_name(const char *name, size_t len, const char **why)
{
    if (len == 0) {
        *why = "the topic name is empty";
        return -1;
    }
    if (len > 249) {
        *why = "the topic name is longer than 249 characters";
        return -1;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        *why = "the topic name cannot be '.' or '..'";
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            *why = "the topic name may contain only ASCII letters, digits, '.', '_' and '-'";
            return -1;
        }
    }
    return 0;
}

void random_bytes(void *p, size_t n)
{
    if (getrandom(p, n, 0) != (ssize_t)n) {
        uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)rand();
    }
}

static void uuid_to_hex(const kuuid *u, char *out)
{
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", u->b[i]);
}

static int hex_to_uuid(const char *s, kuuid *u)
{
    if (!s || strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        u->b[i] = (uint8_t)v;
    }
    return 0;
}

static int save_topic(const struct topic *t)
{
    struct config p;
    config_init(&p);
    char buf[64];
    snprintf(buf, sizeof buf, "%d", t->npartitions);
    config_set(&p, "partitions", buf);
    uuid_to_hex(&t->id, buf);
    config_set(&p, "topic.id", buf);
    for (int i = 0; i < t->overrides.n; i++) {
        char k[512];
        snprintf(k, sizeof k, "config.%s", t->overrides.entries[i].key);
        config_set(&p, k, t->overrides.entries[i].value);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/topic.properties", t->dir);
    int rc = config_save_file(&p, path);
    config_free(&p);
    return rc;
}

static void topic_free(struct topic *t, bool close_logs)
{
    if (!t)
        return;
    for (int i = 0; i < t->npartitions; i++) {
        if (t->parts && t->parts[i]) {
            if (close_logs)
                plog_close(t->parts[i]->log);
            xfree(t->parts[i]->repl); /* a plain struct (cluster.h) */
            xfree(t->parts[i]);
        }
    }
    xfree(t->parts);
    config_free(&t->overrides);
    xfree(t->name);
    xfree(t->dir);
    xfree(t);
}

static int open_partitions(struct catalog *c, struct topic *t, int32_t from, int32_t to)
{
    struct partition **np = xrealloc(t->parts, (size_t)to * sizeof *np);
    if (!np)
        return -1;
    t->parts = np;
    for (int32_t i = from; i < to; i++) {
        t->parts[i] = NULL;
    }
    for (int32_t i = from; i < to; i++) {
        struct partition *p = xcalloc(1, sizeof *p);
        if (!p)
            return -1;
        p->index = i;
        p->topic = t;
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%d", t->dir, i);
        p->log = plog_open(dir, &t->settings, c->was_clean);
        if (!p->log) {
            xfree(p);
            return -1;
        }
        t->parts[i] = p;
        t->npartitions = i + 1;
    }
    return 0;
}

static int add_topic(struct catalog *c, struct topic *t)
{
    if (c->ntopics == c->captopics) {
        int cap = c->captopics ? c->captopics * 2 : 32;
        struct topic **n = xrealloc(c->topics, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        c->topics = n;
        c->captopics = cap;
    }
    c->topics[c->ntopics++] = t;
    return 0;
}

static struct topic *topic_new(struct catalog *c, const char *name)
{
    struct topic *t = xcalloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = xstrdup(name);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/topics/%s", c->data_dir, name);
    t->dir = xstrdup(dir);
    config_init(&t->overrides);
    t->internal = strncmp(name, "__", 2) == 0;
    if (!t->name || !t->dir) {
        topic_free(t, false);
        return NULL;
    }
    return t;
}

static int load_topic(struct catalog *c, const char *name)
{
    struct topic *t = topic_new(c, name);
    if (!t)
        return -1;
    char path[4300], err[256];
    snprintf(path, sizeof path, "%s/topic.properties", t->dir);
    struct config p;
    config_init(&p);
    int64_t n = 0;
    if (config_load_file(&p, path, err, sizeof err) < 0 ||
        config_parse_i64(config_get(&p, "partitions"), &n) < 0 || n < 1 || n > 1000000 ||
        hex_to_uuid(config_get(&p, "topic.id"), &t->id) < 0) {
        log_error("skipping topic %s: bad or missing %s", name, path);
        config_free(&p);
        topic_free(t, false);
        return 0;
    }
    for (int i = 0; i < p.n; i++)
        if (strncmp(p.entries[i].key, "config.", 7) == 0)
            config_set(&t->overrides, p.entries[i].key + 7, p.entries[i].value);
    config_free(&p);
    topic_settings_resolve(&t->settings, &t->overrides, c->broker);
    if (open_partitions(c, t, 0, (int32_t)n) < 0 || add_topic(c, t) < 0) {
        log_error("cannot open topic %s", name);
        topic_free(t, true);
        return -1;
    }
    return 0;
}

static int load_meta(struct catalog *c, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.properties", c->data_dir);
    struct config m;
    config_init(&m);
    char e[256];
    if (access(path, F_OK) == 0) {
        if (config_load_file(&m, path, e, sizeof e) < 0 || !config_get(&m, "cluster.id")) {
            snprintf(err, errlen, "%s is unreadable or has no cluster.id", path);
            config_free(&m);
            return -1;
        }
        snprintf(c->cluster_id, sizeof c->cluster_id, "%s", config_get(&m, "cluster.id"));
    } else {
        /* A 22-character base64url id, like Kafka's. */
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t r[22];
        random_bytes(r, sizeof r);
        for (int i = 0; i < 22; i++)
            c->cluster_id[i] = b64[r[i] & 63];
        c->cluster_id[22] = 0;
        config_set(&m, "version", "0");
        config_set(&m, "cluster.id", c->cluster_id);
        const char *bid = config_get(c->broker, "broker.id");
        config_set(&m, "broker.id", bid ? bid : "0");
        if (config_save_file(&m, path) < 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            config_free(&m);
            return -1;
        }
    }
    config_free(&m);
    return 0;
}

/* Takes the data dir's lock, as Kafka does with its .lock file: a second
 * broker on the same directory would interleave appends and truncate what the
 * first one acknowledged.  The lock goes with the process, kill -9 included. */
static int lock_data_dir(struct catalog *c, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" LOCK_FILE, c->data_dir);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "data directory %s is in use by another process (%s is locked)",
                     c->data_dir, path);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(c->lock_fd);
        c->lock_fd = -1;
        return -1;
    }
    return 0;
}

static int open_topics(struct catalog *c, char *err, size_t errlen);

int catalog_open(struct catalog *c, const char *data_dir, const struct config *broker, char *err,
                 size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->broker = broker;
    c->data_dir = xstrdup(data_dir);
    c->lock_fd = -1;
    if (file_mkdirs(data_dir) < 0) {
        snprintf(err, errlen, "cannot create data directory %s: %s", data_dir, strerror(errno));
        xfree(c->data_dir);
        c->data_dir = NULL;
        return -1;
    }
    if (lock_data_dir(c, err, errlen) < 0 || open_topics(c, err, errlen) < 0) {
        /* leave no half-open catalog behind, and no clean mark */
        for (int i = 0; i < c->ntopics; i++)
            topic_free(c->topics[i], true);
        xfree(c->topics);
        if (c->lock_fd >= 0)
            close(c->lock_fd);
        xfree(c->data_dir);
        memset(c, 0, sizeof *c);
        c->lock_fd = -1;
        return -1;
    }
    return 0;
}

static int open_topics(struct catalog *c, char *err, size_t errlen)
{
    const char *data_dir = c->data_dir;
    char path[4200];
    snprintf(path, sizeof path, "%s/topics", data_dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/meta.properties", data_dir);
    bool fresh = access(path, F_OK) != 0;
    if (load_meta(c, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/" CLEAN_MARK, data_dir);
    c->was_clean = fresh || access(path, F_OK) == 0;
    unlink(path);
    if (!c->was_clean)
        log_info("the last shutdown was not clean: checking the active segments");
    snprintf(path, sizeof path, "%s/topics", data_dir);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        const char *why;
        if (e->d_name[0] == '.' || catalog_check_name(e->d_name, strlen(e->d_name), &why) < 0)
            continue;
        if (load_topic(c, e->d_name) < 0) {
            snprintf(err, errlen, "cannot open topic %s", e->d_name);
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

void catalog_close(struct catalog *c)
{
    for (int i = 0; i < c->ntopics; i++)
        topic_free(c->topics[i], true);
    xfree(c->topics);
    char path[4200];
    snprintf(path, sizeof path, "%s/" CLEAN_MARK, c->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* last: the clean mark is written under the lock */
    xfree(c->data_dir);
    memset(c, 0, sizeof *c);
    c->lock_fd = -1;
}

struct topic *catalog_find(const struct catalog *c, const char *name, size_t len)
{
    for (int i = 0; i < c->ntopics; i++) {
        struct topic *t = c->topics[i];
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

struct partition *catalog_partition(const struct topic *t, int32_t index)
{
    if (!t || index < 0 || index >= t->npartitions)
        return NULL;
    return t->parts[index];
}

int catalog_create(struct catalog *c, const char *name, int32_t partitions,
                   const struct config *overrides, struct topic **out, char *err, size_t errlen)
{
    return catalog_create_with_id(c, name, partitions, overrides, NULL, out, err, errlen);
}

int catalog_create_with_id(struct catalog *c, const char *name, int32_t partitions,
                           const struct config *overrides, const kuuid *id, struct topic **out, char *err,
                           size_t errlen)
{
    const char *why;
    if (catalog_check_name(name, strlen(name), &why) < 0) {
        snprintf(err, errlen, "Invalid topic name: %s", why);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (catalog_find(c, name, strlen(name))) {
        snprintf(err, errlen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (partitions < 1 || partitions > 100000) {
        snprintf(err, errlen, "Number of partitions must be between 1 and 100000.");
        return KERR_INVALID_PARTITIONS;
    }
    struct topic *t = topic_new(c, name);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (id)
        t->id = *id;
    else
        random_bytes(&t->id, sizeof t->id);
    if (overrides)
        for (int i = 0; i < overrides->n; i++)
            config_set(&t->overrides, overrides->entries[i].key, overrides->entries[i].value);
    topic_settings_resolve(&t->settings, &t->overrides, c->broker);
    if (mkdir(t->dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", t->dir, strerror(errno));
        topic_free(t, false);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (open_partitions(c, t, 0, partitions) < 0 || save_topic(t) < 0 || add_topic(c, t) < 0) {
        snprintf(err, errlen, "cannot create the topic's files: %s", strerror(errno));
        for (int i = 0; i < t->npartitions; i++) {
            plog_destroy(t->parts[i]->log);
            t->parts[i]->log = NULL;
        }
        topic_free(t, false);
        rmdir(t->dir);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    log_info("created topic %s with %d partitions", name, partitions);
    if (out)
        *out = t;
    return 0;
}

void catalog_delete(struct catalog *c, struct topic *t)
{
    for (int i = 0; i < c->ntopics; i++)
        if (c->topics[i] == t) {
            c->topics[i] = c->topics[--c->ntopics];
            break;
        }
    char path[4300];
    snprintf(path, sizeof path, "%s/topic.properties", t->dir);
    unlink(path);
    for (int i = 0; i < t->npartitions; i++) {
        plog_destroy(t->parts[i]->log);
        t->parts[i]->log = NULL;
    }
    rmdir(t->dir);
    log_info("deleted topic %s", t->name);
    topic_free(t, false);
}

int catalog_add_partitions(struct catalog *c, struct topic *t, int32_t count, char *err, size_t errlen)
{
    if (count <= t->npartitions) {
        snprintf(err, errlen, "Topic currently has %d partitions, which is higher than or equal to the requested %d.",
                 t->npartitions, count);
        return KERR_INVALID_PARTITIONS;
    }
    if (count > 100000) {
        snprintf(err, errlen, "Number of partitions must be at most 100000.");
        return KERR_INVALID_PARTITIONS;
    }
    if (open_partitions(c, t, t->npartitions, count) < 0 || save_topic(t) < 0) {
        snprintf(err, errlen, "cannot create partition files: %s", strerror(errno));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    return 0;
}

int catalog_set_config(struct catalog *c, struct topic *t, const struct config *overrides)
{
    config_free(&t->overrides);
    config_init(&t->overrides);
    for (int i = 0; i < overrides->n; i++)
        config_set(&t->overrides, overrides->entries[i].key, overrides->entries[i].value);
    topic_settings_resolve(&t->settings, &t->overrides, c->broker);
    return save_topic(t);
}

#define PRODUCER_ID_BLOCK 1000

int64_t catalog_new_producer_id(struct catalog *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/producer-id-block", c->data_dir);
    if (c->producer_id_block_end == 0) {
        /* first use since start: continue after the last reserved block */
        FILE *f = fopen(path, "r");
        long long end = 0;
        if (f) {
            if (fscanf(f, "%lld", &end) != 1 || end < 0)
                end = 0;
            fclose(f);
        }
        c->next_producer_id = end;
        c->producer_id_block_end = end;
    }
    if (c->next_producer_id >= c->producer_id_block_end) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", (long long)(c->producer_id_block_end + PRODUCER_ID_BLOCK));
        if (file_replace(path, buf, (size_t)n) < 0)
            return -1;
        c->producer_id_block_end += PRODUCER_ID_BLOCK;
    }
    return c->next_producer_id++;
}
