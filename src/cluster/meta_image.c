/* meta_image.c: see meta_image.h.
 *
 * Applying a command goes in three steps: decode it into an arena, check it
 * against the image, then build everything it adds (every allocation that
 * may fail) before changing anything, so that a rejected command or a failed
 * allocation leaves the image as it was.  The rules and error codes follow
 * Kafka's controller (ClusterControlManager, ReplicationControlManager):
 *   REGISTER_BROKER    INVALID_REGISTRATION (id < 0, host not 1..255 bytes,
 *                      port not 1..65535).  Replaces an earlier registration;
 *                      the broker starts fenced, epoch = the command's offset.
 *   FENCE/UNFENCE      BROKER_ID_NOT_REGISTERED; STALE_BROKER_EPOCH when the
 *                      epoch is not that of the current registration.
 *   UNREGISTER_BROKER  BROKER_ID_NOT_REGISTERED.  Partitions keep naming it.
 *   CREATE_TOPIC       INVALID_TOPIC_EXCEPTION (name), TOPIC_ALREADY_EXISTS
 *                      (name or id), INVALID_REQUEST (zero id),
 *                      INVALID_PARTITIONS (< 1), INVALID_REPLICA_ASSIGNMENT
 *                      (a list empty, too long, with a duplicate or an
 *                      unregistered broker), INVALID_CONFIG.
 *   DELETE_TOPIC       UNKNOWN_TOPIC_ID.
 *   CREATE_PARTITIONS  UNKNOWN_TOPIC_ID, INVALID_PARTITIONS (no growth),
 *                      INVALID_REPLICA_ASSIGNMENT.
 *   PARTITION_CHANGE   UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION,
 *                      INVALID_UPDATE_VERSION (partition epoch mismatch),
 *                      INVALID_REPLICA_ASSIGNMENT (new replicas as for
 *                      CREATE_TOPIC; a new leader unregistered; the result
 *                      breaking struct mi_partition's invariants),
 *                      INVALID_REQUEST (leader < -2, an epoch at INT32_MAX).
 *   SET_CONFIG         UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG.
 *   ALLOC_PRODUCER_IDS INVALID_REQUEST (count < 1, ids exhausted). */
#include "cluster/meta_image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "protocol/kerr.h"
#include "storage/catalog.h"

#define MI_CMD_VERSION 0
#define MI_SNAP_VERSION 0
#define MI_SNAP_MAGIC "SSMI"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define OOM(err, errlen) fail(err, errlen, KERR_UNKNOWN_SERVER_ERROR, "out of memory")

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool has(const int32_t *v, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

/* ---- lookups ------------------------------------------------------------- */

/* The index of broker id, or where it would go. */
static int broker_pos(const struct meta_image *m, int32_t id, bool *found)
{
    int lo = 0, hi = m->nbrokers;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (m->brokers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->nbrokers && m->brokers[lo].id == id;
    return lo;
}

static int name_cmp(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int topic_pos_name(const struct meta_image *m, const char *name, size_t len, bool *found)
{
    int lo = 0, hi = m->ntopics;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (name_cmp(name, len, m->topics[mid]->name) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->ntopics && name_cmp(name, len, m->topics[lo]->name) == 0;
    return lo;
}

static int uuid_cmp(const kuuid *a, const kuuid *b)
{
    return memcmp(a->b, b->b, sizeof a->b);
}

static int topic_pos_id(const struct meta_image *m, kuuid id, bool *found)
{
    int lo = 0, hi = m->ntopics;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (uuid_cmp(&m->topics_by_id[mid]->id, &id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->ntopics && uuid_cmp(&m->topics_by_id[lo]->id, &id) == 0;
    return lo;
}

const struct mi_broker *meta_image_broker(const struct meta_image *m, int32_t id)
{
    bool found;
    int i = broker_pos(m, id, &found);
    return found ? &m->brokers[i] : NULL;
}

const struct mi_topic *meta_image_topic(const struct meta_image *m, const char *name, size_t len)
{
    bool found;
    if (!name)
        return NULL;
    int i = topic_pos_name(m, name, len, &found);
    return found ? m->topics[i] : NULL;
}

const struct mi_topic *meta_image_topic_by_id(const struct meta_image *m, kuuid id)
{
    bool found;
    int i = topic_pos_id(m, id, &found);
    return found ? m->topics_by_id[i] : NULL;
}

bool mi_in_isr(const struct mi_partition *p, int32_t broker)
{
    return has(p->isr, p->nisr, broker);
}

bool mi_is_replica(const struct mi_partition *p, int32_t broker)
{
    return has(p->replicas, p->nreplicas, broker);
}

/* ---- image lifetime ------------------------------------------------------ */

void meta_image_init(struct meta_image *m)
{
    memset(m, 0, sizeof *m);
    config_init(&m->cluster_configs);
}

/* Frees a topic, also one that is only partly built (zeroed fields). */
static void topic_free(struct mi_topic *t)
{
    if (!t)
        return;
    for (int32_t i = 0; t->parts && i < t->npartitions; i++) {
        xfree(t->parts[i].replicas);
        xfree(t->parts[i].isr);
    }
    xfree(t->parts);
    xfree(t->name);
    config_free(&t->configs);
    xfree(t);
}

void meta_image_free(struct meta_image *m)
{
    for (int i = 0; i < m->ntopics; i++)
        topic_free(m->topics[i]);
    xfree(m->topics);
    xfree(m->topics_by_id);
    xfree(m->brokers);
    config_free(&m->cluster_configs);
    meta_image_init(m);
}

/* Room for `need` topics in both arrays.  Returns 0 or -1 (arrays intact). */
static int reserve_topics(struct meta_image *m, int need)
{
    if (need <= m->topics_cap)
        return 0;
    int cap = m->topics_cap ? m->topics_cap : 16;
    while (cap < need)
        cap = cap > (1 << 29) ? need : cap * 2;
    struct mi_topic **a = xrealloc(m->topics, (size_t)cap * sizeof *a);
    if (!a)
        return -1;
    m->topics = a;
    struct mi_topic **b = xrealloc(m->topics_by_id, (size_t)cap * sizeof *b);
    if (!b)
        return -1;
    m->topics_by_id = b;
    m->topics_cap = cap;
    return 0;
}

/* Fills p with copies of the lists.  Returns 0 or -1 (p holds nothing). */
static int part_init(struct mi_partition *p, int32_t leader, const int32_t *rep, int32_t nrep, const int32_t *isr,
                     int32_t nisr)
{
    memset(p, 0, sizeof *p);
    p->replicas = xmalloc((size_t)nrep * sizeof *rep);
    p->isr = nisr ? xmalloc((size_t)nisr * sizeof *isr) : NULL;
    if (!p->replicas || (nisr && !p->isr)) {
        xfree(p->replicas);
        xfree(p->isr);
        p->replicas = p->isr = NULL;
        return -1;
    }
    memcpy(p->replicas, rep, (size_t)nrep * sizeof *rep);
    if (nisr)
        memcpy(p->isr, isr, (size_t)nisr * sizeof *isr);
    p->leader = leader;
    p->nreplicas = nrep;
    p->nisr = nisr;
    return 0;
}

/* ---- checks -------------------------------------------------------------- */

/* The invariants of every partition (see struct mi_partition).  Returns 0
 * or INVALID_REPLICA_ASSIGNMENT with a reason. */
static int check_partition(int32_t leader, const int32_t *rep, int32_t nrep, const int32_t *isr, int32_t nisr,
                           char *err, size_t errlen)
{
    int code = KERR_INVALID_REPLICA_ASSIGNMENT;
    if (nrep < 1 || nrep > MI_MAX_REPLICAS)
        return fail(err, errlen, code, "%d replicas, not 1 to %d", nrep, MI_MAX_REPLICAS);
    if (nisr < 0 || nisr > nrep)
        return fail(err, errlen, code, "an ISR of %d for %d replicas", nisr, nrep);
    for (int32_t i = 0; i < nrep; i++)
        if (has(rep, i, rep[i]))
            return fail(err, errlen, code, "replica %d is listed twice", rep[i]);
    for (int32_t i = 0; i < nisr; i++) {
        if (!has(rep, nrep, isr[i]))
            return fail(err, errlen, code, "ISR member %d is not a replica", isr[i]);
        if (has(isr, i, isr[i]))
            return fail(err, errlen, code, "ISR member %d is listed twice", isr[i]);
    }
    if (leader < -1)
        return fail(err, errlen, code, "leader %d is not a broker id", leader);
    if (leader >= 0 && !has(rep, nrep, leader))
        return fail(err, errlen, code, "leader %d is not a replica", leader);
    if (leader >= 0 && !has(isr, nisr, leader))
        return fail(err, errlen, code, "leader %d is not in the ISR", leader);
    return 0;
}

/* A replica list given by a command: 1..MI_MAX_REPLICAS distinct registered
 * brokers. */
static int check_new_replicas(const struct meta_image *m, const int32_t *ids, int32_t n, int32_t part, char *err,
                              size_t errlen)
{
    int code = KERR_INVALID_REPLICA_ASSIGNMENT;
    if (n < 1)
        return fail(err, errlen, code, "partition %d has no replicas", part);
    if (n > MI_MAX_REPLICAS)
        return fail(err, errlen, code, "partition %d has %d replicas, more than %d", part, n, MI_MAX_REPLICAS);
    for (int32_t i = 0; i < n; i++) {
        if (!meta_image_broker(m, ids[i]))
            return fail(err, errlen, code, "partition %d: broker %d is not registered", part, ids[i]);
        if (has(ids, i, ids[i]))
            return fail(err, errlen, code, "partition %d lists broker %d twice", part, ids[i]);
    }
    return 0;
}

/* Config keys are not empty; neither key nor value holds a NUL (they are
 * kept as C strings). */
static bool config_ok(kstr key, kstr value)
{
    return key.len > 0 && !memchr(key.ptr, 0, (size_t)key.len) &&
           (value.len <= 0 || !memchr(value.ptr, 0, (size_t)value.len));
}

/* ---- command decoding ---------------------------------------------------- */

const char *mi_cmd_name(int type)
{
    switch (type) {
    case MI_REGISTER_BROKER: return "REGISTER_BROKER";
    case MI_FENCE_BROKER: return "FENCE_BROKER";
    case MI_UNFENCE_BROKER: return "UNFENCE_BROKER";
    case MI_UNREGISTER_BROKER: return "UNREGISTER_BROKER";
    case MI_CREATE_TOPIC: return "CREATE_TOPIC";
    case MI_DELETE_TOPIC: return "DELETE_TOPIC";
    case MI_CREATE_PARTITIONS: return "CREATE_PARTITIONS";
    case MI_PARTITION_CHANGE: return "PARTITION_CHANGE";
    case MI_SET_CONFIG: return "SET_CONFIG";
    case MI_ALLOC_PRODUCER_IDS: return "ALLOC_PRODUCER_IDS";
    }
    return "UNKNOWN";
}

static kstr rd_str(struct kread *r, bool nullable)
{
    kbytes b = kr_bytes(r, false, nullable);
    return (kstr){(const char *)b.ptr, b.len};
}

/* n ids (n already checked against the bytes left, or -1 / 0) into the
 * arena; NULL for none. */
static int32_t *rd_ids(struct kread *r, struct arena *a, int32_t n)
{
    if (n <= 0 || r->err)
        return NULL;
    const uint8_t *p = kr_take(r, (size_t)n * 4);
    if (!p)
        return NULL;
    int32_t *v = arena_alloc(a, (size_t)n * sizeof *v);
    if (!v) {
        r->err = KR_ENOMEM;
        return NULL;
    }
    for (int32_t i = 0; i < n; i++)
        v[i] = (int32_t)be32(p + 4 * (size_t)i);
    return v;
}

/* n replica lists (a count and its ids each) into counts[] and the
 * concatenated ids[].  A first pass over the bytes sizes ids[], so nothing
 * is allocated for lists that are not there. */
static void rd_lists(struct kread *r, struct arena *a, int32_t n, int32_t **counts, int32_t **ids)
{
    struct kread scan = *r;
    size_t total = 0;
    for (int32_t i = 0; i < n && !scan.err; i++) {
        int32_t k = kr_array_len(&scan, false, false, 4);
        kr_take(&scan, (size_t)k * 4);
        total += (size_t)k;
    }
    if (scan.err) {
        r->err = scan.err;
        return;
    }
    *counts = arena_alloc(a, (size_t)(n ? n : 1) * sizeof **counts);
    *ids = arena_alloc(a, (total ? total : 1) * sizeof **ids);
    if (!*counts || !*ids) {
        r->err = KR_ENOMEM;
        return;
    }
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t k = kr_int32(r);
        for (int32_t j = 0; j < k; j++)
            (*ids)[off++] = kr_int32(r);
        (*counts)[i] = k;
    }
}

int mi_cmd_decode(struct mi_cmd *c, const void *cmd, size_t len, struct arena *a, char *err, size_t errlen)
{
    struct kread r;
    kread_init(&r, cmd, len);
    memset(c, 0, sizeof *c);
    c->type = kr_u8(&r);
    c->version = kr_u8(&r);
    if (r.err)
        return fail(err, errlen, KERR_CORRUPT_MESSAGE, "a command of %zu bytes is too short", len);
    if (c->type < 1 || c->type > MI__CMD_MAX)
        return fail(err, errlen, KERR_CORRUPT_MESSAGE, "unknown command type %d", c->type);
    if (c->version != MI_CMD_VERSION)
        return fail(err, errlen, KERR_UNSUPPORTED_VERSION, "%s version %d is not supported", mi_cmd_name(c->type),
                    c->version);
    switch (c->type) {
    case MI_REGISTER_BROKER:
        c->register_broker.id = kr_int32(&r);
        c->register_broker.host = rd_str(&r, false);
        c->register_broker.port = kr_int32(&r);
        c->register_broker.incarnation = kr_uuid(&r);
        break;
    case MI_FENCE_BROKER:
    case MI_UNFENCE_BROKER:
        c->fence.id = kr_int32(&r);
        c->fence.epoch = kr_int64(&r);
        break;
    case MI_UNREGISTER_BROKER:
        c->unregister_broker.id = kr_int32(&r);
        break;
    case MI_CREATE_TOPIC:
        c->create_topic.name = rd_str(&r, false);
        c->create_topic.id = kr_uuid(&r);
        c->create_topic.npartitions = kr_array_len(&r, false, false, 4);
        rd_lists(&r, a, c->create_topic.npartitions, &c->create_topic.nreplicas, &c->create_topic.replicas);
        c->create_topic.nconfigs = kr_array_len(&r, false, false, 8);
        if (!r.err) {
            size_t n = (size_t)(c->create_topic.nconfigs ? c->create_topic.nconfigs : 1);
            c->create_topic.keys = arena_alloc(a, n * sizeof(kstr));
            c->create_topic.values = arena_alloc(a, n * sizeof(kstr));
            if (!c->create_topic.keys || !c->create_topic.values)
                r.err = KR_ENOMEM;
        }
        for (int32_t i = 0; i < c->create_topic.nconfigs && !r.err; i++) {
            c->create_topic.keys[i] = rd_str(&r, false);
            c->create_topic.values[i] = rd_str(&r, false);
        }
        break;
    case MI_DELETE_TOPIC:
        c->delete_topic.id = kr_uuid(&r);
        break;
    case MI_CREATE_PARTITIONS:
        c->create_partitions.id = kr_uuid(&r);
        c->create_partitions.count = kr_int32(&r);
        c->create_partitions.nnew = kr_array_len(&r, false, false, 4);
        rd_lists(&r, a, c->create_partitions.nnew, &c->create_partitions.nreplicas, &c->create_partitions.replicas);
        break;
    case MI_PARTITION_CHANGE: {
        struct mi_partition_change *pc = &c->partition_change;
        pc->topic_id = kr_uuid(&r);
        pc->partition = kr_int32(&r);
        pc->expected_partition_epoch = kr_int32(&r);
        pc->leader = kr_int32(&r);
        pc->nisr = kr_array_len(&r, false, true, 4);
        pc->isr = rd_ids(&r, a, pc->nisr);
        pc->nreplicas = kr_array_len(&r, false, true, 4);
        pc->replicas = rd_ids(&r, a, pc->nreplicas);
        break;
    }
    case MI_SET_CONFIG:
        c->set_config.topic = rd_str(&r, false);
        c->set_config.key = rd_str(&r, false);
        c->set_config.value = rd_str(&r, true);
        break;
    case MI_ALLOC_PRODUCER_IDS:
        c->alloc_producer_ids.count = kr_int32(&r);
        break;
    }
    if (r.err == KR_ENOMEM)
        return OOM(err, errlen);
    if (r.err)
        return fail(err, errlen, KERR_CORRUPT_MESSAGE, "%s: truncated or malformed", mi_cmd_name(c->type));
    if (kr_left(&r))
        return fail(err, errlen, KERR_CORRUPT_MESSAGE, "%s: %zu bytes after the last field", mi_cmd_name(c->type),
                    kr_left(&r));
    return 0;
}

/* ---- encoders ------------------------------------------------------------ */

static void put_str(struct obuf *w, const char *s, size_t n)
{
    kw_int32(w, (int32_t)n);
    obuf_put(w, s, n);
}

static void put_ids(struct obuf *w, const int32_t *ids, int32_t n)
{
    kw_int32(w, n);
    for (int32_t i = 0; i < n; i++)
        kw_int32(w, ids[i]);
}

static void put_lists(struct obuf *w, int32_t n, const int32_t *counts, const int32_t *ids)
{
    kw_int32(w, n);
    for (int32_t i = 0; i < n; i++) {
        put_ids(w, ids, counts[i]);
        ids += counts[i];
    }
}

static void put_head(struct obuf *w, int type)
{
    obuf_put_u8(w, (uint8_t)type);
    obuf_put_u8(w, MI_CMD_VERSION);
}

void mi_enc_register_broker(struct obuf *w, int32_t id, const char *host, int32_t port, kuuid incarnation)
{
    put_head(w, MI_REGISTER_BROKER);
    kw_int32(w, id);
    put_str(w, host, strlen(host));
    kw_int32(w, port);
    kw_uuid(w, incarnation);
}

void mi_enc_fence_broker(struct obuf *w, int32_t id, int64_t epoch)
{
    put_head(w, MI_FENCE_BROKER);
    kw_int32(w, id);
    kw_int64(w, epoch);
}

void mi_enc_unfence_broker(struct obuf *w, int32_t id, int64_t epoch)
{
    put_head(w, MI_UNFENCE_BROKER);
    kw_int32(w, id);
    kw_int64(w, epoch);
}

void mi_enc_unregister_broker(struct obuf *w, int32_t id)
{
    put_head(w, MI_UNREGISTER_BROKER);
    kw_int32(w, id);
}

void mi_enc_create_topic(struct obuf *w, const char *name, kuuid id, int32_t npartitions, const int32_t *nreplicas,
                         const int32_t *replicas, int nconfigs, const char *const *keys, const char *const *values)
{
    put_head(w, MI_CREATE_TOPIC);
    put_str(w, name, strlen(name));
    kw_uuid(w, id);
    put_lists(w, npartitions, nreplicas, replicas);
    kw_int32(w, nconfigs);
    for (int i = 0; i < nconfigs; i++) {
        put_str(w, keys[i], strlen(keys[i]));
        put_str(w, values[i], strlen(values[i]));
    }
}

void mi_enc_delete_topic(struct obuf *w, kuuid id)
{
    put_head(w, MI_DELETE_TOPIC);
    kw_uuid(w, id);
}

void mi_enc_create_partitions(struct obuf *w, kuuid topic_id, int32_t count, int32_t nnew, const int32_t *nreplicas,
                              const int32_t *replicas)
{
    put_head(w, MI_CREATE_PARTITIONS);
    kw_uuid(w, topic_id);
    kw_int32(w, count);
    put_lists(w, nnew, nreplicas, replicas);
}

void mi_enc_partition_change(struct obuf *w, const struct mi_partition_change *c)
{
    put_head(w, MI_PARTITION_CHANGE);
    kw_uuid(w, c->topic_id);
    kw_int32(w, c->partition);
    kw_int32(w, c->expected_partition_epoch);
    kw_int32(w, c->leader);
    put_ids(w, c->isr, c->nisr < 0 ? -1 : c->nisr);
    put_ids(w, c->replicas, c->nreplicas < 0 ? -1 : c->nreplicas);
}

void mi_enc_set_config(struct obuf *w, const char *topic, const char *key, const char *value)
{
    put_head(w, MI_SET_CONFIG);
    put_str(w, topic, strlen(topic));
    put_str(w, key, strlen(key));
    if (value)
        put_str(w, value, strlen(value));
    else
        kw_int32(w, -1);
}

void mi_enc_alloc_producer_ids(struct obuf *w, int32_t count)
{
    put_head(w, MI_ALLOC_PRODUCER_IDS);
    kw_int32(w, count);
}

/* ---- apply --------------------------------------------------------------- */

static int apply_register(struct meta_image *m, const struct mi_cmd *c, int64_t offset, int64_t *result, char *err,
                          size_t errlen)
{
    int32_t id = c->register_broker.id, port = c->register_broker.port;
    kstr host = c->register_broker.host;
    if (id < 0)
        return fail(err, errlen, KERR_INVALID_REGISTRATION, "broker id %d is negative", id);
    if (host.len < 1 || host.len > MI_MAX_HOST || memchr(host.ptr, 0, (size_t)host.len))
        return fail(err, errlen, KERR_INVALID_REGISTRATION, "broker %d: the host must be 1 to %d bytes, no NUL", id,
                    MI_MAX_HOST);
    if (port < 1 || port > 65535)
        return fail(err, errlen, KERR_INVALID_REGISTRATION, "broker %d: port %d is out of range", id, port);
    bool found;
    int i = broker_pos(m, id, &found);
    if (!found) {
        struct mi_broker *nb = xrealloc(m->brokers, (size_t)(m->nbrokers + 1) * sizeof *nb);
        if (!nb)
            return OOM(err, errlen);
        m->brokers = nb;
        memmove(&nb[i + 1], &nb[i], (size_t)(m->nbrokers - i) * sizeof *nb);
        m->nbrokers++;
    }
    /* A (re)registered broker is fenced until it has caught up with the
     * metadata and heartbeats (Kafka's BrokerRegistration). */
    struct mi_broker *b = &m->brokers[i];
    memset(b, 0, sizeof *b);
    b->id = id;
    memcpy(b->host, host.ptr, (size_t)host.len);
    b->port = port;
    b->incarnation = c->register_broker.incarnation;
    b->epoch = offset;
    b->fenced = true;
    if (result)
        *result = offset;
    return 0;
}

static int apply_fence(struct meta_image *m, const struct mi_cmd *c, char *err, size_t errlen)
{
    bool found;
    int i = broker_pos(m, c->fence.id, &found);
    if (!found)
        return fail(err, errlen, KERR_BROKER_ID_NOT_REGISTERED, "broker %d is not registered", c->fence.id);
    struct mi_broker *b = &m->brokers[i];
    /* A command meant for an earlier registration must not fence (or
     * unfence) the broker's new incarnation. */
    if (c->fence.epoch != b->epoch)
        return fail(err, errlen, KERR_STALE_BROKER_EPOCH, "broker %d has epoch %lld, not %lld", b->id,
                    (long long)b->epoch, (long long)c->fence.epoch);
    b->fenced = c->type == MI_FENCE_BROKER;
    return 0;
}

static int apply_unregister(struct meta_image *m, const struct mi_cmd *c, char *err, size_t errlen)
{
    bool found;
    int i = broker_pos(m, c->unregister_broker.id, &found);
    if (!found)
        return fail(err, errlen, KERR_BROKER_ID_NOT_REGISTERED, "broker %d is not registered",
                    c->unregister_broker.id);
    memmove(&m->brokers[i], &m->brokers[i + 1], (size_t)(m->nbrokers - i - 1) * sizeof *m->brokers);
    m->nbrokers--;
    return 0;
}

/* Checks n replica lists for partitions first..first+n-1. */
static int check_lists(const struct meta_image *m, int32_t n, const int32_t *counts, const int32_t *ids,
                       int32_t first, char *err, size_t errlen)
{
    for (int32_t i = 0; i < n; i++) {
        int rc = check_new_replicas(m, ids, counts[i], first + i, err, errlen);
        if (rc)
            return rc;
        ids += counts[i];
    }
    return 0;
}

/* New partitions: leader = the first replica, ISR = all replicas, epochs 0.
 * Returns 0 or -1 (parts[0..n) then hold nothing). */
static int init_new_parts(struct mi_partition *parts, int32_t n, const int32_t *counts, const int32_t *ids)
{
    for (int32_t i = 0; i < n; i++) {
        if (part_init(&parts[i], ids[0], ids, counts[i], ids, counts[i]) < 0) {
            while (i-- > 0) {
                xfree(parts[i].replicas);
                xfree(parts[i].isr);
                memset(&parts[i], 0, sizeof parts[i]);
            }
            return -1;
        }
        ids += counts[i];
    }
    return 0;
}

static int apply_create_topic(struct meta_image *m, const struct mi_cmd *c, struct arena *a, char *err,
                              size_t errlen)
{
    kstr name = c->create_topic.name;
    kuuid id = c->create_topic.id;
    int32_t np = c->create_topic.npartitions, nconfigs = c->create_topic.nconfigs;
    const char *why;
    if (catalog_check_name(name.ptr, (size_t)name.len, &why) < 0)
        return fail(err, errlen, KERR_INVALID_TOPIC_EXCEPTION, "%s", why);
    if (meta_image_topic(m, name.ptr, (size_t)name.len))
        return fail(err, errlen, KERR_TOPIC_ALREADY_EXISTS, "topic '%.*s' already exists", name.len, name.ptr);
    if (kuuid_is_zero(&id))
        return fail(err, errlen, KERR_INVALID_REQUEST, "topic '%.*s' has a zero id", name.len, name.ptr);
    if (meta_image_topic_by_id(m, id))
        return fail(err, errlen, KERR_TOPIC_ALREADY_EXISTS, "the id of topic '%.*s' is taken", name.len, name.ptr);
    if (np < 1)
        return fail(err, errlen, KERR_INVALID_PARTITIONS, "topic '%.*s': %d partitions", name.len, name.ptr, np);
    int rc = check_lists(m, np, c->create_topic.nreplicas, c->create_topic.replicas, 0, err, errlen);
    if (rc)
        return rc;
    if (nconfigs > MI_MAX_CONFIGS)
        return fail(err, errlen, KERR_INVALID_CONFIG, "%d configs, more than %d", nconfigs, MI_MAX_CONFIGS);
    for (int32_t i = 0; i < nconfigs; i++)
        if (!config_ok(c->create_topic.keys[i], c->create_topic.values[i]))
            return fail(err, errlen, KERR_INVALID_CONFIG, "config %d has an empty key or a NUL byte", i);

    struct mi_topic *t = xcalloc(1, sizeof *t);
    if (!t)
        return OOM(err, errlen);
    config_init(&t->configs);
    t->name = xstrndup(name.ptr, (size_t)name.len);
    t->parts = xcalloc((size_t)np, sizeof *t->parts);
    if (!t->name || !t->parts)
        goto oom;
    if (init_new_parts(t->parts, np, c->create_topic.nreplicas, c->create_topic.replicas) < 0)
        goto oom;
    t->npartitions = np;
    t->id = id;
    for (int32_t i = 0; i < nconfigs; i++) {
        kstr k = c->create_topic.keys[i], v = c->create_topic.values[i];
        char *ks = arena_strndup(a, k.ptr, (size_t)k.len), *vs = arena_strndup(a, v.ptr, (size_t)v.len);
        if (!ks || !vs)
            goto oom;
        if (config_has(&t->configs, ks)) {
            topic_free(t);
            return fail(err, errlen, KERR_INVALID_CONFIG, "config %s is given twice", ks);
        }
        if (config_set(&t->configs, ks, vs) < 0)
            goto oom;
    }
    if (reserve_topics(m, m->ntopics + 1) < 0)
        goto oom;

    bool found;
    int pn = topic_pos_name(m, t->name, strlen(t->name), &found);
    int pi = topic_pos_id(m, t->id, &found);
    memmove(&m->topics[pn + 1], &m->topics[pn], (size_t)(m->ntopics - pn) * sizeof *m->topics);
    memmove(&m->topics_by_id[pi + 1], &m->topics_by_id[pi], (size_t)(m->ntopics - pi) * sizeof *m->topics);
    m->topics[pn] = t;
    m->topics_by_id[pi] = t;
    m->ntopics++;
    return 0;
oom:
    topic_free(t);
    return OOM(err, errlen);
}

static int apply_delete_topic(struct meta_image *m, const struct mi_cmd *c, char *err, size_t errlen)
{
    bool found;
    int pi = topic_pos_id(m, c->delete_topic.id, &found);
    if (!found)
        return fail(err, errlen, KERR_UNKNOWN_TOPIC_ID, "no topic has that id");
    struct mi_topic *t = m->topics_by_id[pi];
    int pn = topic_pos_name(m, t->name, strlen(t->name), &found);
    memmove(&m->topics[pn], &m->topics[pn + 1], (size_t)(m->ntopics - pn - 1) * sizeof *m->topics);
    memmove(&m->topics_by_id[pi], &m->topics_by_id[pi + 1], (size_t)(m->ntopics - pi - 1) * sizeof *m->topics);
    m->ntopics--;
    topic_free(t);
    return 0;
}

static int apply_create_partitions(struct meta_image *m, const struct mi_cmd *c, char *err, size_t errlen)
{
    bool found;
    int pi = topic_pos_id(m, c->create_partitions.id, &found);
    if (!found)
        return fail(err, errlen, KERR_UNKNOWN_TOPIC_ID, "no topic has that id");
    struct mi_topic *t = m->topics_by_id[pi];
    int32_t count = c->create_partitions.count, nnew = c->create_partitions.nnew;
    if (count <= t->npartitions)
        return fail(err, errlen, KERR_INVALID_PARTITIONS, "topic '%s' has %d partitions; %d is not more", t->name,
                    t->npartitions, count);
    if (nnew != count - t->npartitions)
        return fail(err, errlen, KERR_INVALID_REPLICA_ASSIGNMENT, "%d replica lists for %d new partitions", nnew,
                    count - t->npartitions);
    int rc = check_lists(m, nnew, c->create_partitions.nreplicas, c->create_partitions.replicas, t->npartitions,
                         err, errlen);
    if (rc)
        return rc;
    struct mi_partition *parts = xcalloc((size_t)count, sizeof *parts);
    if (!parts)
        return OOM(err, errlen);
    if (init_new_parts(parts + t->npartitions, nnew, c->create_partitions.nreplicas,
                       c->create_partitions.replicas) < 0) {
        xfree(parts);
        return OOM(err, errlen);
    }
    memcpy(parts, t->parts, (size_t)t->npartitions * sizeof *parts);
    xfree(t->parts);
    t->parts = parts;
    t->npartitions = count;
    return 0;
}

static int apply_partition_change(struct meta_image *m, const struct mi_cmd *c, char *err, size_t errlen)
{
    const struct mi_partition_change *pc = &c->partition_change;
    bool found;
    int pi = topic_pos_id(m, pc->topic_id, &found);
    if (!found)
        return fail(err, errlen, KERR_UNKNOWN_TOPIC_ID, "no topic has that id");
    struct mi_topic *t = m->topics_by_id[pi];
    if (pc->partition < 0 || pc->partition >= t->npartitions)
        return fail(err, errlen, KERR_UNKNOWN_TOPIC_OR_PARTITION, "topic '%s' has no partition %d", t->name,
                    pc->partition);
    struct mi_partition *p = &t->parts[pc->partition];
    /* The controller proposed this change against the partition as it saw
     * it; a change committed in between makes it stale (Kafka's
     * AlterPartition answers INVALID_UPDATE_VERSION). */
    if (pc->expected_partition_epoch != -1 && pc->expected_partition_epoch != p->partition_epoch)
        return fail(err, errlen, KERR_INVALID_UPDATE_VERSION, "%s-%d is at partition epoch %d, not %d", t->name,
                    pc->partition, p->partition_epoch, pc->expected_partition_epoch);
    if (pc->leader < MI_NO_CHANGE)
        return fail(err, errlen, KERR_INVALID_REQUEST, "leader %d is not a broker id", pc->leader);
    bool new_leader = pc->leader != MI_NO_CHANGE;
    if (p->partition_epoch == INT32_MAX || (new_leader && p->leader_epoch == INT32_MAX))
        return fail(err, errlen, KERR_INVALID_REQUEST, "%s-%d: epoch overflow", t->name, pc->partition);
    if (pc->nreplicas >= 0) {
        int rc = check_new_replicas(m, pc->replicas, pc->nreplicas, pc->partition, err, errlen);
        if (rc)
            return rc;
    }
    if (new_leader && pc->leader >= 0 && !meta_image_broker(m, pc->leader))
        return fail(err, errlen, KERR_INVALID_REPLICA_ASSIGNMENT, "%s-%d: leader %d is not registered", t->name,
                    pc->partition, pc->leader);
    int32_t leader = new_leader ? pc->leader : p->leader;
    const int32_t *rep = pc->nreplicas >= 0 ? pc->replicas : p->replicas;
    int32_t nrep = pc->nreplicas >= 0 ? pc->nreplicas : p->nreplicas;
    const int32_t *isr = pc->nisr >= 0 ? pc->isr : p->isr;
    int32_t nisr = pc->nisr >= 0 ? pc->nisr : p->nisr;
    int rc = check_partition(leader, rep, nrep, isr, nisr, err, errlen);
    if (rc)
        return rc;

    struct mi_partition np;
    if (part_init(&np, leader, rep, nrep, isr, nisr) < 0)
        return OOM(err, errlen);
    np.partition_epoch = p->partition_epoch + 1;
    /* Kafka bumps the leader epoch on every election, also when the same
     * broker is elected again, so that its followers truncate. */
    np.leader_epoch = p->leader_epoch + (new_leader ? 1 : 0);
    xfree(p->replicas);
    xfree(p->isr);
    *p = np;
    return 0;
}

static int apply_set_config(struct meta_image *m, const struct mi_cmd *c, struct arena *a, char *err, size_t errlen)
{
    kstr topic = c->set_config.topic, key = c->set_config.key, value = c->set_config.value;
    struct config *cfg = &m->cluster_configs;
    if (topic.len > 0) {
        bool found;
        int pn = topic_pos_name(m, topic.ptr, (size_t)topic.len, &found);
        if (!found)
            return fail(err, errlen, KERR_UNKNOWN_TOPIC_OR_PARTITION, "no topic '%.*s'", topic.len, topic.ptr);
        cfg = &m->topics[pn]->configs;
    }
    if (!config_ok(key, value))
        return fail(err, errlen, KERR_INVALID_CONFIG, "an empty key or a NUL byte");
    char *k = arena_strndup(a, key.ptr, (size_t)key.len);
    if (!k)
        return OOM(err, errlen);
    if (value.len < 0) {
        config_remove(cfg, k); /* deleting an unset key is no error */
        return 0;
    }
    if (!config_has(cfg, k) && cfg->n >= MI_MAX_CONFIGS)
        return fail(err, errlen, KERR_INVALID_CONFIG, "more than %d configs", MI_MAX_CONFIGS);
    char *v = arena_strndup(a, value.ptr, (size_t)value.len);
    if (!v || config_set(cfg, k, v) < 0)
        return OOM(err, errlen);
    return 0;
}

static int apply_alloc_producer_ids(struct meta_image *m, const struct mi_cmd *c, int64_t *result, char *err,
                                    size_t errlen)
{
    int32_t count = c->alloc_producer_ids.count;
    if (count < 1)
        return fail(err, errlen, KERR_INVALID_REQUEST, "a block of %d producer ids", count);
    if (m->next_producer_id > INT64_MAX - count)
        return fail(err, errlen, KERR_INVALID_REQUEST, "producer ids are exhausted");
    if (result)
        *result = m->next_producer_id;
    m->next_producer_id += count;
    return 0;
}

int meta_image_apply(struct meta_image *m, const void *cmd, size_t len, int64_t offset, int64_t *result, char *err,
                     size_t errlen)
{
    if (result)
        *result = -1;
    if (err && errlen)
        err[0] = 0;
    if (offset <= m->offset)
        return fail(err, errlen, KERR_INVALID_REQUEST, "offset %lld is not after %lld", (long long)offset,
                    (long long)m->offset);
    struct arena a;
    arena_init(&a);
    struct mi_cmd c;
    int rc = mi_cmd_decode(&c, cmd, len, &a, err, errlen);
    if (rc == 0) {
        switch (c.type) {
        case MI_REGISTER_BROKER: rc = apply_register(m, &c, offset, result, err, errlen); break;
        case MI_FENCE_BROKER:
        case MI_UNFENCE_BROKER: rc = apply_fence(m, &c, err, errlen); break;
        case MI_UNREGISTER_BROKER: rc = apply_unregister(m, &c, err, errlen); break;
        case MI_CREATE_TOPIC: rc = apply_create_topic(m, &c, &a, err, errlen); break;
        case MI_DELETE_TOPIC: rc = apply_delete_topic(m, &c, err, errlen); break;
        case MI_CREATE_PARTITIONS: rc = apply_create_partitions(m, &c, err, errlen); break;
        case MI_PARTITION_CHANGE: rc = apply_partition_change(m, &c, err, errlen); break;
        case MI_SET_CONFIG: rc = apply_set_config(m, &c, &a, err, errlen); break;
        case MI_ALLOC_PRODUCER_IDS: rc = apply_alloc_producer_ids(m, &c, result, err, errlen); break;
        }
    }
    arena_free(&a);
    if (rc == KERR_UNKNOWN_SERVER_ERROR) {
        if (result)
            *result = -1;
        return rc;
    }
    m->offset = offset;
    return rc;
}

/* ---- placement and election ---------------------------------------------- */

int mi_assign_replicas(const struct meta_image *m, int32_t npartitions, int32_t rf, int32_t first_partition,
                       uint32_t start, int32_t *out)
{
    if (npartitions < 1 || first_partition < 0)
        return KERR_INVALID_PARTITIONS;
    int n = 0;
    for (int i = 0; i < m->nbrokers; i++)
        n += !m->brokers[i].fenced;
    if (rf < 1 || rf > MI_MAX_REPLICAS || rf > n)
        return KERR_INVALID_REPLICATION_FACTOR;
    int32_t *ids = xmalloc((size_t)n * sizeof *ids);
    if (!ids)
        return KERR_UNKNOWN_SERVER_ERROR;
    n = 0;
    for (int i = 0; i < m->nbrokers; i++)
        if (!m->brokers[i].fenced)
            ids[n++] = m->brokers[i].id;
    /* Kafka's assignReplicasToBrokersRackUnaware, with the follower shift
     * computed from the partition number rather than counted along, so a
     * partition's placement does not depend on where the loop started. */
    uint64_t un = (uint64_t)n, s0 = start % un;
    for (int32_t i = 0; i < npartitions; i++) {
        uint64_t p = (uint64_t)first_partition + (uint64_t)i;
        uint64_t first = (s0 + p) % un, shift = s0 + p / un;
        int32_t *o = out + (size_t)i * (size_t)rf;
        o[0] = ids[first];
        for (int32_t j = 0; j < rf - 1; j++)
            o[1 + j] = ids[(first + 1 + (shift + (uint64_t)j) % (un - 1)) % un];
    }
    xfree(ids);
    return 0;
}

int32_t mi_elect_leader(const struct meta_image *m, const struct mi_partition *p, int32_t failed)
{
    for (int32_t i = 0; i < p->nreplicas; i++) {
        int32_t id = p->replicas[i];
        if (id == failed || !mi_in_isr(p, id))
            continue;
        const struct mi_broker *b = meta_image_broker(m, id);
        if (b && !b->fenced)
            return id;
    }
    return -1;
}

/* ---- snapshots ----------------------------------------------------------- */

static void put_configs(struct obuf *w, const struct config *c)
{
    kw_int32(w, c->n);
    for (int i = 0; i < c->n; i++) {
        put_str(w, c->entries[i].key, strlen(c->entries[i].key));
        put_str(w, c->entries[i].value, strlen(c->entries[i].value));
    }
}

int meta_image_encode(const struct meta_image *m, struct obuf *w)
{
    size_t start = w->len;
    obuf_put(w, MI_SNAP_MAGIC, 4);
    obuf_put_u8(w, MI_SNAP_VERSION);
    kw_int64(w, m->offset);
    kw_int64(w, m->next_producer_id);
    put_configs(w, &m->cluster_configs);
    kw_int32(w, m->nbrokers);
    for (int i = 0; i < m->nbrokers; i++) {
        const struct mi_broker *b = &m->brokers[i];
        kw_int32(w, b->id);
        put_str(w, b->host, strlen(b->host));
        kw_int32(w, b->port);
        kw_uuid(w, b->incarnation);
        kw_int64(w, b->epoch);
        obuf_put_u8(w, b->fenced);
    }
    kw_int32(w, m->ntopics);
    for (int i = 0; i < m->ntopics; i++) {
        const struct mi_topic *t = m->topics[i];
        put_str(w, t->name, strlen(t->name));
        kw_uuid(w, t->id);
        put_configs(w, &t->configs);
        kw_int32(w, t->npartitions);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const struct mi_partition *p = &t->parts[j];
            kw_int32(w, p->leader);
            kw_int32(w, p->leader_epoch);
            kw_int32(w, p->partition_epoch);
            put_ids(w, p->replicas, p->nreplicas);
            put_ids(w, p->isr, p->nisr);
        }
    }
    if (w->oom)
        return -1;
    kw_uint32(w, crc32c(0, w->data + start, w->len - start));
    return w->oom ? -1 : 0;
}

/* Minimum encoded sizes, for checking counts before allocating. */
#define SNAP_MIN_CONFIG 8                          /* two empty strings */
#define SNAP_MIN_BROKER (4 + 5 + 4 + 16 + 8 + 1)
#define SNAP_MIN_PARTITION (3 * 4 + 8 + 4)         /* one replica, empty ISR */
#define SNAP_MIN_TOPIC (5 + 16 + 4 + 4 + SNAP_MIN_PARTITION)

#define CORRUPT(...) fail(err, errlen, KERR_CORRUPT_MESSAGE, __VA_ARGS__)

static int snap_configs(struct kread *r, struct arena *a, struct config *cfg, char *err, size_t errlen)
{
    int32_t n = kr_array_len(r, false, false, SNAP_MIN_CONFIG);
    if (r->err)
        return CORRUPT("snapshot truncated in a config list");
    if (n > MI_MAX_CONFIGS)
        return CORRUPT("snapshot: %d configs, more than %d", n, MI_MAX_CONFIGS);
    for (int32_t i = 0; i < n; i++) {
        kstr k = rd_str(r, false), v = rd_str(r, false);
        if (r->err)
            return CORRUPT("snapshot truncated in a config list");
        if (!config_ok(k, v))
            return CORRUPT("snapshot: a config has an empty key or a NUL byte");
        char *ks = arena_strndup(a, k.ptr, (size_t)k.len), *vs = arena_strndup(a, v.ptr, (size_t)v.len);
        if (!ks || !vs)
            return OOM(err, errlen);
        if (config_has(cfg, ks))
            return CORRUPT("snapshot: config %s is listed twice", ks);
        if (config_set(cfg, ks, vs) < 0)
            return OOM(err, errlen);
    }
    return 0;
}

/* A partition's id list into v (room for MI_MAX_REPLICAS). */
static int snap_ids(struct kread *r, int32_t *v, int32_t *n, char *err, size_t errlen)
{
    *n = kr_array_len(r, false, false, 4);
    if (r->err)
        return CORRUPT("snapshot truncated in a partition");
    if (*n > MI_MAX_REPLICAS)
        return CORRUPT("snapshot: a partition lists %d brokers, more than %d", *n, MI_MAX_REPLICAS);
    for (int32_t i = 0; i < *n; i++)
        v[i] = kr_int32(r);
    return r->err ? CORRUPT("snapshot truncated in a partition") : 0;
}

static int snap_topic(struct meta_image *m, struct kread *r, struct arena *a, struct mi_topic *t, char *err,
                      size_t errlen)
{
    kstr name = rd_str(r, false);
    t->id = kr_uuid(r);
    if (r->err)
        return CORRUPT("snapshot truncated in a topic");
    const char *why;
    if (catalog_check_name(name.ptr, (size_t)name.len, &why) < 0)
        return CORRUPT("snapshot: %s", why);
    if (m->ntopics > 0 && name_cmp(name.ptr, (size_t)name.len, m->topics[m->ntopics - 1]->name) <= 0)
        return CORRUPT("snapshot: topic '%.*s' is out of order or repeated", name.len, name.ptr);
    if (kuuid_is_zero(&t->id))
        return CORRUPT("snapshot: topic '%.*s' has a zero id", name.len, name.ptr);
    t->name = xstrndup(name.ptr, (size_t)name.len);
    if (!t->name)
        return OOM(err, errlen);
    int rc = snap_configs(r, a, &t->configs, err, errlen);
    if (rc)
        return rc;
    int32_t np = kr_array_len(r, false, false, SNAP_MIN_PARTITION);
    if (r->err)
        return CORRUPT("snapshot truncated in topic '%s'", t->name);
    if (np < 1)
        return CORRUPT("snapshot: topic '%s' has no partitions", t->name);
    t->parts = xcalloc((size_t)np, sizeof *t->parts);
    if (!t->parts)
        return OOM(err, errlen);
    t->npartitions = np;
    for (int32_t j = 0; j < np; j++) {
        int32_t leader = kr_int32(r), le = kr_int32(r), pe = kr_int32(r);
        int32_t rep[MI_MAX_REPLICAS], isr[MI_MAX_REPLICAS], nrep, nisr;
        if ((rc = snap_ids(r, rep, &nrep, err, errlen)) || (rc = snap_ids(r, isr, &nisr, err, errlen)))
            return rc;
        if (le < 0 || pe < 0)
            return CORRUPT("snapshot: %s-%d has a negative epoch", t->name, j);
        if (check_partition(leader, rep, nrep, isr, nisr, err, errlen))
            return KERR_CORRUPT_MESSAGE;
        if (part_init(&t->parts[j], leader, rep, nrep, isr, nisr) < 0)
            return OOM(err, errlen);
        t->parts[j].leader_epoch = le;
        t->parts[j].partition_epoch = pe;
    }
    return 0;
}

static int id_order(const void *a, const void *b)
{
    return uuid_cmp(&(*(struct mi_topic *const *)a)->id, &(*(struct mi_topic *const *)b)->id);
}

/* Everything between the version byte and the checksum, into m (empty). */
static int snap_body(struct meta_image *m, struct kread *r, struct arena *a, char *err, size_t errlen)
{
    m->offset = kr_int64(r);
    m->next_producer_id = kr_int64(r);
    if (r->err)
        return CORRUPT("snapshot truncated");
    if (m->offset < 0 || m->next_producer_id < 0)
        return CORRUPT("snapshot: a negative offset or producer id");
    int rc = snap_configs(r, a, &m->cluster_configs, err, errlen);
    if (rc)
        return rc;

    int32_t nb = kr_array_len(r, false, false, SNAP_MIN_BROKER);
    if (r->err)
        return CORRUPT("snapshot truncated in the brokers");
    m->brokers = xcalloc((size_t)(nb ? nb : 1), sizeof *m->brokers);
    if (!m->brokers)
        return OOM(err, errlen);
    for (int32_t i = 0; i < nb; i++) {
        struct mi_broker *b = &m->brokers[i];
        b->id = kr_int32(r);
        kstr host = rd_str(r, false);
        b->port = kr_int32(r);
        b->incarnation = kr_uuid(r);
        b->epoch = kr_int64(r);
        uint8_t fenced = kr_u8(r);
        if (r->err)
            return CORRUPT("snapshot truncated in the brokers");
        if (b->id < 0 || (i > 0 && b->id <= b[-1].id))
            return CORRUPT("snapshot: broker %d is negative, out of order or repeated", b->id);
        if (host.len < 1 || host.len > MI_MAX_HOST || memchr(host.ptr, 0, (size_t)host.len))
            return CORRUPT("snapshot: broker %d has a bad host", b->id);
        if (b->port < 1 || b->port > 65535 || b->epoch < 0 || b->epoch > m->offset || fenced > 1)
            return CORRUPT("snapshot: broker %d has a bad port, epoch or fenced flag", b->id);
        memcpy(b->host, host.ptr, (size_t)host.len);
        b->fenced = fenced;
        m->nbrokers++;
    }

    int32_t nt = kr_array_len(r, false, false, SNAP_MIN_TOPIC);
    if (r->err)
        return CORRUPT("snapshot truncated in the topics");
    if (reserve_topics(m, nt ? nt : 1) < 0)
        return OOM(err, errlen);
    for (int32_t i = 0; i < nt; i++) {
        struct mi_topic *t = xcalloc(1, sizeof *t);
        if (!t)
            return OOM(err, errlen);
        config_init(&t->configs);
        if ((rc = snap_topic(m, r, a, t, err, errlen))) {
            topic_free(t);
            return rc;
        }
        m->topics[m->ntopics] = m->topics_by_id[m->ntopics] = t;
        m->ntopics++;
    }
    qsort(m->topics_by_id, (size_t)m->ntopics, sizeof *m->topics_by_id, id_order);
    for (int i = 1; i < m->ntopics; i++)
        if (uuid_cmp(&m->topics_by_id[i - 1]->id, &m->topics_by_id[i]->id) == 0)
            return CORRUPT("snapshot: topics '%s' and '%s' have the same id", m->topics_by_id[i - 1]->name,
                           m->topics_by_id[i]->name);
    if (kr_left(r))
        return CORRUPT("snapshot: %zu bytes after the last topic", kr_left(r));
    return 0;
}

int meta_image_decode(struct meta_image *m, const void *buf, size_t len, char *err, size_t errlen)
{
    const uint8_t *p = buf;
    if (len < 4 + 1 + 4)
        return CORRUPT("a snapshot of %zu bytes is too short", len);
    if (memcmp(p, MI_SNAP_MAGIC, 4) != 0)
        return CORRUPT("not a metadata snapshot");
    if (p[4] != MI_SNAP_VERSION)
        return fail(err, errlen, KERR_UNSUPPORTED_VERSION, "snapshot version %d is not supported", p[4]);
    if (crc32c(0, p, len - 4) != be32(p + len - 4))
        return CORRUPT("snapshot checksum mismatch");
    struct kread r;
    kread_init(&r, p + 5, len - 9);
    struct meta_image tmp;
    meta_image_init(&tmp);
    struct arena a;
    arena_init(&a);
    int rc = snap_body(&tmp, &r, &a, err, errlen);
    arena_free(&a);
    if (rc) {
        meta_image_free(&tmp);
        return rc;
    }
    meta_image_free(m);
    *m = tmp;
    return 0;
}
