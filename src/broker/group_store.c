/* group_store.c: see group_store.h. */
#include "broker/group_store.h"
#include "cluster/cluster.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "protocol/kerr.h"
#include "protocol/records.h"

static struct partition *group_part(struct broker *b, const char *id)
{
    struct topic *t = gstore_topic(b);
    return t ? t->parts[group_partition_for(id, strlen(id), t->npartitions)] : NULL;
}

static void put_str(struct obuf *o, const char *s)
{
    if (!s) {
        obuf_put_be16(o, 0xffff);
        return;
    }
    size_t n = strlen(s);
    obuf_put_be16(o, (uint16_t)n);
    obuf_put(o, s, n);
}

static void put_bytes(struct obuf *o, const uint8_t *p, int32_t n)
{
    obuf_put_be32(o, (uint32_t)n);
    if (n > 0)
        obuf_put(o, p, (size_t)n);
}

static void offset_key(struct obuf *o, const char *group, const char *topic, int32_t partition)
{
    obuf_put_be16(o, 1);
    put_str(o, group);
    put_str(o, topic);
    obuf_put_be32(o, (uint32_t)partition);
}

static void group_key(struct obuf *o, const char *group)
{
    obuf_put_be16(o, 2);
    put_str(o, group);
}

/* Appends recs as one batch to the group's partition. */
static int append(struct broker *b, const char *group, const struct records_rec *recs, int n, int *fds, int *nfds,
                  bool *wait, struct gstore_pos *pos)
{
    struct partition *p = group_part(b, group);
    if (!p)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (cluster_check_leader(b, p))
        return KERR_NOT_COORDINATOR; /* the group's partition is led elsewhere now */
    if (p->repl && p->repl->nisr < cluster_min_isr(b, p->topic))
        return KERR_COORDINATOR_NOT_AVAILABLE; /* Kafka: NOT_ENOUGH_REPLICAS, as the coordinator says it */
    struct obuf batch;
    obuf_init(&batch);
    int64_t now = clock_wall_ms();
    int rc = records_build_v2(&batch, 0, now, recs, n, -1, -1, -1);
    if (rc || batch.oom) {
        obuf_free(&batch);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (p->repl)
        records_set_partition_leader_epoch(batch.data, p->repl->leader_epoch);
    int64_t base;
    if (plog_append(p->log, batch.data, batch.len, now, &base) < 0) {
        obuf_free(&batch);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    obuf_free(&batch);
    b->appends++;
    if (nfds)
        *nfds = 0;
    if (wait)
        *wait = false;
    struct topic *t = p->topic;
    if (fds && p->log->unflushed >= t->settings.flush_messages) {
        *nfds = plog_take_dirty_fds(p->log, fds, 2, now);
        *wait = t->settings.flush_messages == 1;
    }
    if (pos)
        *pos = (struct gstore_pos){p, p->log->next_offset, p->repl ? p->repl->leader_epoch : -1, p->repl != NULL};
    /* With no follower in the ISR the write is already as replicated as it
     * gets: move the high watermark now (Kafka does this on every append). */
    if (p->repl)
        repl_update_hw(b, p);
    return 0;
}

int gstore_wait(struct broker *b, struct request *r, const struct gstore_pos *pos, struct repl_wait *w,
                int16_t *err, void (*done)(struct request *r))
{
    if (!b->cluster || !pos->part || !pos->replicated)
        return 1;
    *w = (struct repl_wait){pos->part, pos->log_end, pos->leader_epoch, err, false};
    return repl_park_produce(b, r, w, 1, clock_mono_ms() + b->coord->commit_timeout_ms, done);
}

int gstore_commit_error(int wait_err)
{
    switch (wait_err) {
    case 0:
        return 0;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR:
    case KERR_REQUEST_TIMED_OUT:
        return KERR_NOT_COORDINATOR;
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    default:
        return wait_err;
    }
}

int gstore_write_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n,
                         int64_t commit_ms, int *fds, int *nfds, bool *wait, struct gstore_pos *pos)
{
    struct obuf keys, vals;
    obuf_init(&keys);
    obuf_init(&vals);
    size_t *koff = xcalloc((size_t)n + 1, sizeof *koff), *voff = xcalloc((size_t)n + 1, sizeof *voff);
    struct records_rec *recs = xcalloc((size_t)n + 1, sizeof *recs);
    int rc = KERR_UNKNOWN_SERVER_ERROR;
    if (!koff || !voff || !recs)
        goto out;
    for (int i = 0; i < n; i++) {
        koff[i] = keys.len;
        offset_key(&keys, g->id, c[i].topic, c[i].partition);
        voff[i] = vals.len;
        obuf_put_be16(&vals, 3);
        obuf_put_be64(&vals, (uint64_t)c[i].offset);
        obuf_put_be32(&vals, (uint32_t)c[i].leader_epoch);
        put_str(&vals, c[i].metadata ? c[i].metadata : "");
        obuf_put_be64(&vals, (uint64_t)commit_ms);
    }
    koff[n] = keys.len;
    voff[n] = vals.len;
    if (keys.oom || vals.oom)
        goto out;
    for (int i = 0; i < n; i++)
        recs[i] = (struct records_rec){keys.data + koff[i], (int32_t)(koff[i + 1] - koff[i]), vals.data + voff[i],
                                       (int32_t)(voff[i + 1] - voff[i]), commit_ms, NULL, 0};
    rc = append(b, g->id, recs, n, fds, nfds, wait, pos);
out:
    xfree(koff);
    xfree(voff);
    xfree(recs);
    obuf_free(&keys);
    obuf_free(&vals);
    return rc;
}

int gstore_delete_offsets(struct broker *b, struct group *g, const struct gstore_commit *c, int n)
{
    struct obuf keys;
    obuf_init(&keys);
    size_t *koff = xcalloc((size_t)n + 1, sizeof *koff);
    struct records_rec *recs = xcalloc((size_t)n + 1, sizeof *recs);
    int rc = KERR_UNKNOWN_SERVER_ERROR;
    if (koff && recs) {
        for (int i = 0; i < n; i++) {
            koff[i] = keys.len;
            offset_key(&keys, g->id, c[i].topic, c[i].partition);
        }
        koff[n] = keys.len;
        int64_t now = clock_wall_ms();
        for (int i = 0; i < n; i++)
            recs[i] = (struct records_rec){keys.data + koff[i], (int32_t)(koff[i + 1] - koff[i]), NULL, -1, now, NULL, 0};
        rc = keys.oom ? KERR_UNKNOWN_SERVER_ERROR : append(b, g->id, recs, n, NULL, NULL, NULL, NULL);
    }
    xfree(koff);
    xfree(recs);
    obuf_free(&keys);
    return rc;
}

int gstore_write_group(struct broker *b, struct group *g, struct gstore_pos *pos)
{
    struct obuf key, val;
    obuf_init(&key);
    obuf_init(&val);
    group_key(&key, g->id);
    obuf_put_be16(&val, 3);
    put_str(&val, g->protocol_type ? g->protocol_type : "");
    obuf_put_be32(&val, (uint32_t)g->generation);
    put_str(&val, g->protocol);
    put_str(&val, g->leader);
    obuf_put_be64(&val, (uint64_t)clock_wall_ms());
    obuf_put_be32(&val, (uint32_t)g->nmembers);
    for (int i = 0; i < g->nmembers; i++) {
        struct group_member *m = g->members[i];
        put_str(&val, m->id);
        put_str(&val, m->instance_id);
        put_str(&val, m->client_id ? m->client_id : "");
        put_str(&val, m->client_host ? m->client_host : "");
        obuf_put_be32(&val, (uint32_t)m->rebalance_timeout_ms);
        obuf_put_be32(&val, (uint32_t)m->session_timeout_ms);
        const struct group_protocol *sub = NULL;
        for (int p = 0; p < m->nprotocols; p++)
            if (g->protocol && strcmp(m->protocols[p].name, g->protocol) == 0)
                sub = &m->protocols[p];
        put_bytes(&val, sub ? sub->metadata : NULL, sub ? sub->len : 0);
        put_bytes(&val, m->assignment, m->assignment ? m->assignment_len : 0);
    }
    int rc = KERR_UNKNOWN_SERVER_ERROR;
    if (!key.oom && !val.oom) {
        struct records_rec rec = {key.data, (int32_t)key.len, val.data, (int32_t)val.len, clock_wall_ms(), NULL, 0};
        rc = append(b, g->id, &rec, 1, NULL, NULL, NULL, pos);
    }
    obuf_free(&key);
    obuf_free(&val);
    if (rc)
        log_error("group %s: cannot write its metadata to " GSTORE_TOPIC, g->id);
    return rc;
}

int gstore_delete_group(struct broker *b, struct group *g)
{
    int n = g->noffsets;
    struct gstore_commit *c = xcalloc((size_t)n + 1, sizeof *c);
    if (!c)
        return -1;
    for (int i = 0; i < n; i++)
        c[i] = (struct gstore_commit){g->offsets[i].topic, g->offsets[i].partition, 0, -1, NULL};
    int rc = n ? gstore_delete_offsets(b, g, c, n) : 0;
    xfree(c);
    if (rc)
        return -1;
    struct obuf key;
    obuf_init(&key);
    group_key(&key, g->id);
    struct records_rec rec = {key.data, (int32_t)key.len, NULL, -1, clock_wall_ms(), NULL, 0};
    rc = key.oom ? -1 : append(b, g->id, &rec, 1, NULL, NULL, NULL, NULL);
    obuf_free(&key);
    return rc ? -1 : 0;
}

/* ---- replay ------------------------------------------------------------ */

static struct group *replay_group(struct broker *b, kstr id)
{
    struct group *g = coord_find(b, id);
    if (g)
        return g;
    /* group_check_commit creates groups; reuse it for an assign()-style id */
    if (group_check_commit(b, id, -1, (kstr){"", 0}, (kstr){NULL, -1}, &g) != 0)
        return NULL;
    return g;
}

/* log_end: the log end after the record's batch. */
static void replay_record(struct broker *b, const struct records_record_view *rv, int64_t log_end)
{
    struct kread k;
    kread_init(&k, rv->key, rv->key_len > 0 ? (size_t)rv->key_len : 0);
    int16_t kv = kr_int16(&k);
    kstr group = kr_str(&k, false, false);
    if (k.err || group.len <= 0)
        return;
    if (kv == 0 || kv == 1) {
        kstr topic = kr_str(&k, false, false);
        int32_t partition = kr_int32(&k);
        if (k.err || topic.len <= 0)
            return;
        char tname[256];
        snprintf(tname, sizeof tname, "%.*s", topic.len, topic.ptr);
        struct group *g = replay_group(b, group);
        if (!g)
            return;
        if (rv->value_len < 0) {
            group_remove_offset(g, tname, partition);
            return;
        }
        struct kread v;
        kread_init(&v, rv->value, (size_t)rv->value_len);
        int16_t vv = kr_int16(&v);
        int64_t offset = kr_int64(&v);
        int32_t epoch = vv >= 3 ? kr_int32(&v) : -1;
        kstr meta = kr_str(&v, false, true);
        int64_t ts = kr_int64(&v);
        if (v.err)
            return;
        char mbuf[4200];
        snprintf(mbuf, sizeof mbuf, "%.*s", meta.len > 0 ? meta.len : 0, meta.ptr ? meta.ptr : "");
        group_set_offset(g, tname, partition, offset, epoch, mbuf, ts, log_end);
    } else if (kv == 2) {
        if (rv->value_len < 0) {
            group_forget(b, group); /* deleted (its offsets' tombstones came first) */
            return;
        }
        struct kread v;
        kread_init(&v, rv->value, (size_t)rv->value_len);
        int16_t vv = kr_int16(&v);
        kstr ptype = kr_str(&v, false, true);
        int32_t gen = kr_int32(&v);
        kstr protocol = kr_str(&v, false, true);
        kstr leader = kr_str(&v, false, true);
        if (vv >= 2)
            kr_int64(&v); /* state timestamp */
        int32_t n = kr_array_len(&v, false, false, 20);
        if (v.err)
            return;
        struct group_restored_member *ms = xcalloc((size_t)n + 1, sizeof *ms);
        if (!ms)
            return;
        for (int32_t i = 0; i < n && !v.err; i++) {
            ms[i].id = kr_str(&v, false, false);
            ms[i].instance_id = vv >= 3 ? kr_str(&v, false, true) : (kstr){NULL, -1};
            ms[i].client_id = kr_str(&v, false, false);
            ms[i].client_host = kr_str(&v, false, false);
            ms[i].rebalance_timeout_ms = vv >= 1 ? kr_int32(&v) : 0;
            ms[i].session_timeout_ms = kr_int32(&v);
            ms[i].subscription = kr_bytes(&v, false, false);
            ms[i].assignment = kr_bytes(&v, false, false);
        }
        struct group *g = v.err ? NULL : replay_group(b, group);
        if (g)
            group_restore(g, gen, ptype, protocol, leader, ms, n);
        xfree(ms);
    }
}

static int replay_batch(void *arg, const uint8_t *batch, size_t n)
{
    struct broker *b = arg;
    struct records_batch_info bi;
    if (records_parse_header(batch, n, &bi) < 0 || bi.is_control)
        return 0;
    struct obuf scratch;
    obuf_init(&scratch);
    struct records_limits lim = {0, 0, true};
    const uint8_t *body;
    size_t len;
    if (records_batch_body(batch, n, &lim, &scratch, &body, &len) == 0) {
        const uint8_t *p = body, *end = body + len;
        struct records_record_view rv;
        for (int32_t i = 0; i < bi.record_count && p < end; i++) {
            if (records_record_next(&p, end, &rv) < 0)
                break;
            replay_record(b, &rv, bi.base_offset + bi.last_offset_delta + 1);
        }
    }
    obuf_free(&scratch);
    return 0;
}

/* offsets.topic.num.partitions, checked. */
static int offsets_partitions(struct broker *b, int64_t *n, char *err, size_t errlen)
{
    const char *v = config_get(b->cfg, "offsets.topic.num.partitions");
    *n = 50;
    if (v && (config_parse_i64(v, n) < 0 || *n < 1 || *n > 1000)) {
        snprintf(err, errlen, "offsets.topic.num.partitions=%s must be between 1 and 1000", v);
        return -1;
    }
    return 0;
}

struct topic *gstore_topic(struct broker *b)
{
    if (b->cluster) {
        /* in a cluster the controller creates it, replicated; this broker
         * holds replicas of some of its partitions */
        struct topic *t = catalog_find(&b->cat, GSTORE_TOPIC, strlen(GSTORE_TOPIC));
        if (t)
            return t;
        int64_t n;
        char err[256];
        if (offsets_partitions(b, &n, err, sizeof err) == 0 &&
            !meta_image_topic(cluster_image(b), GSTORE_TOPIC, strlen(GSTORE_TOPIC))) {
            const char *seg = config_get(b->cfg, "offsets.topic.segment.bytes");
            const char *keys[] = {"cleanup.policy", "segment.bytes"};
            const char *vals[] = {"compact", seg ? seg : "104857600"};
            cluster_request_auto_create_with(b, GSTORE_TOPIC, (int32_t)n, 2, keys, vals);
        }
        return NULL;
    }
    if (b->coord->offsets_topic)
        return b->coord->offsets_topic;
    int64_t n;
    char err[256], e[256];
    if (offsets_partitions(b, &n, err, sizeof err) < 0) {
        log_warn("cannot create %s: %s", GSTORE_TOPIC, err);
        return NULL;
    }
    struct config ov;
    config_init(&ov);
    config_set(&ov, "cleanup.policy", "compact");
    const char *seg = config_get(b->cfg, "offsets.topic.segment.bytes");
    config_set(&ov, "segment.bytes", seg ? seg : "104857600");
    struct topic *t = NULL;
    int rc = catalog_create(&b->cat, GSTORE_TOPIC, (int32_t)n, &ov, &t, e, sizeof e);
    config_free(&ov);
    if (rc) {
        log_warn("cannot create %s: %s", GSTORE_TOPIC, e);
        return NULL;
    }
    log_info("created %s with %lld partitions", GSTORE_TOPIC, (long long)n);
    b->coord->offsets_topic = t;
    return t;
}

int gstore_open(struct broker *b, char *err, size_t errlen)
{
    int64_t n;
    if (offsets_partitions(b, &n, err, errlen) < 0)
        return -1;
    /* In a cluster a partition's groups are loaded when this broker starts
     * leading it (gstore_partition_led), not here. */
    if (b->cluster)
        return 0;
    /* Created on the first group write (gstore_topic), as Kafka does: its
     * 50 partitions cost a fresh broker tens of milliseconds of mkdir and
     * file creation before it could listen. */
    struct topic *t = catalog_find(&b->cat, GSTORE_TOPIC, strlen(GSTORE_TOPIC));
    if (!t)
        return 0;
    b->coord->offsets_topic = t;
    int64_t t0 = clock_mono_ms();
    for (int32_t p = 0; p < t->npartitions; p++)
        if (plog_for_each_batch(t->parts[p]->log, 0, replay_batch, b) < 0) {
            snprintf(err, errlen, "cannot read %s partition %d", GSTORE_TOPIC, p);
            return -1;
        }
    log_info("loaded %d consumer groups from %s in %lld ms", b->coord->ngroups, GSTORE_TOPIC,
             (long long)(clock_mono_ms() - t0));
    return 0;
}

/* ---- cluster mode: groups follow the partitions' leadership ------------ */

/* The load state of partition index, grown on demand; NULL when out of
 * memory. */
static struct coord_load *load_slot(struct coordinator *c, int32_t index)
{
    if (index >= c->nloads) {
        int n = index + 1;
        struct coord_load *nl = xrealloc(c->loads, (size_t)n * sizeof *nl);
        if (!nl)
            return NULL;
        memset(nl + c->nloads, 0, (size_t)(n - c->nloads) * sizeof *nl);
        c->loads = nl;
        c->nloads = n;
    }
    return &c->loads[index];
}

/* Whether p's groups are in memory for its current leadership. */
static bool is_loaded(const struct coordinator *c, const struct partition *p)
{
    if (p->index >= c->nloads || !c->loads[p->index].loaded)
        return false;
    const struct coord_load *ld = &c->loads[p->index];
    return ld->leader_epoch == (p->repl ? p->repl->leader_epoch : -1) &&
           memcmp(&ld->topic_id, &p->topic->id, sizeof ld->topic_id) == 0;
}

static void unload_partition(struct broker *b, int32_t index, int32_t npartitions)
{
    struct coordinator *c = b->coord;
    int n = coord_unload(b, index, npartitions);
    if (index < c->nloads && c->loads[index].loaded) {
        c->loads[index].loaded = false;
        log_info("no longer coordinating the groups of %s-%d (%d dropped)", GSTORE_TOPIC, index, n);
    }
}

void gstore_partition_led(struct broker *b, struct partition *p, bool leading)
{
    struct coordinator *c = b->coord;
    if (!c || !b->cluster || !p || !p->topic || strcmp(p->topic->name, GSTORE_TOPIC) != 0)
        return;
    if (!leading) {
        unload_partition(b, p->index, p->topic->npartitions);
        return;
    }
    if (is_loaded(c, p))
        return; /* the same leadership: memory is ahead of nothing */
    /* Led again at a new epoch (or a new topic): others may have written to
     * the log since it was loaded, so the log is the truth again. */
    unload_partition(b, p->index, p->topic->npartitions);
    struct coord_load *ld = load_slot(c, p->index);
    if (!ld) {
        log_error("out of memory loading the groups of %s-%d", GSTORE_TOPIC, p->index);
        return;
    }
    int before = c->ngroups;
    int64_t t0 = clock_mono_ms();
    if (plog_for_each_batch(p->log, 0, replay_batch, b) < 0) {
        log_error("cannot read %s-%d: its groups stay unavailable", GSTORE_TOPIC, p->index);
        coord_unload(b, p->index, p->topic->npartitions);
        return;
    }
    ld->loaded = true;
    ld->leader_epoch = p->repl ? p->repl->leader_epoch : -1;
    ld->topic_id = p->topic->id;
    log_info("coordinating the groups of %s-%d: loaded %d in %lld ms", GSTORE_TOPIC, p->index, c->ngroups - before,
             (long long)(clock_mono_ms() - t0));
}

int gstore_check_coordinator(struct broker *b, kstr group_id)
{
    if (!b->cluster)
        return 0; /* alone: it coordinates every group */
    struct topic *t = catalog_find(&b->cat, GSTORE_TOPIC, strlen(GSTORE_TOPIC));
    if (!t) {
        if (meta_image_topic(cluster_image(b), GSTORE_TOPIC, strlen(GSTORE_TOPIC)))
            return KERR_NOT_COORDINATOR; /* this broker holds none of it */
        gstore_topic(b);                 /* asks the controller to create it */
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    struct partition *p =
        t->parts[group_partition_for(group_id.ptr, group_id.len > 0 ? (size_t)group_id.len : 0, t->npartitions)];
    if (cluster_check_leader(b, p))
        return KERR_NOT_COORDINATOR;
    if (!is_loaded(b->coord, p))
        gstore_partition_led(b, p, true);
    return is_loaded(b->coord, p) ? 0 : KERR_COORDINATOR_LOAD_IN_PROGRESS;
}

void gstore_tick(struct broker *b)
{
    struct coordinator *c = b->coord;
    if (!b->cluster || !c->nloads)
        return;
    struct topic *t = catalog_find(&b->cat, GSTORE_TOPIC, strlen(GSTORE_TOPIC));
    for (int32_t i = 0; i < c->nloads; i++) {
        if (!c->loads[i].loaded)
            continue;
        struct partition *p = t && i < t->npartitions ? t->parts[i] : NULL;
        if (p && !cluster_check_leader(b, p) && is_loaded(c, p))
            continue;
        if (!p) {
            /* the topic went: nothing of it is coordinated here */
            coord_unload(b, -1, 0);
            for (int k = 0; k < c->nloads; k++)
                c->loads[k].loaded = false;
            log_info("%s is gone: no longer coordinating any group", GSTORE_TOPIC);
            return;
        }
        unload_partition(b, i, t->npartitions);
    }
}
