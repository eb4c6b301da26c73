/* cluster.c: the cluster's settings, the hand-over from the Raft thread to
 * the loop thread, the broker's own image, and reconciling local replicas
 * with it (see cluster.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/group_store.h"
#include "broker/handler.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "storage/catalog.h"
#include "storage/cleaner.h"
#include "storage/partition_log.h"

/* ---- settings ---- */

static int get_int(const struct config *cfg, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                   char *err, size_t errlen)
{
    const char *s = config_get(cfg, key);
    *out = def;
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        snprintf(err, errlen, "%s=%s is not a number from %lld to %lld", key, s, (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

/* "1@host:port,2@host:port" */
static int parse_voters(struct cluster *c, const char *s, char *err, size_t errlen)
{
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[160];
        if (len == 0 || len >= sizeof item || c->nvoters == CLUSTER_MAX_VOTERS)
            goto bad;
        memcpy(item, p, len);
        item[len] = 0;
        char *at = strchr(item, '@');
        if (!at)
            goto bad;
        *at = 0;
        char *end;
        long id = strtol(item, &end, 10);
        if (*end || end == item || id < 0 || id > INT32_MAX || !strrchr(at + 1, ':'))
            goto bad;
        for (int i = 0; i < c->nvoters; i++)
            if (c->voters[i].id == RAFT_ID(id))
                goto bad;
        c->voters[c->nvoters].id = RAFT_ID(id);
        snprintf(c->voters[c->nvoters].address, sizeof c->voters[0].address, "%s", at + 1);
        c->nvoters++;
        p = comma ? comma + 1 : p + len;
    }
    if (c->nvoters > 0)
        return 0;
bad:
    snprintf(err, errlen, "controller.quorum.voters=%s is not ID@HOST:PORT[,ID@HOST:PORT...]", s);
    return -1;
}

int cluster_init(struct broker *b, char *err, size_t errlen)
{
    b->cluster = NULL;
    const char *voters = config_get(b->cfg, "controller.quorum.voters");
    if (!voters || !*voters)
        return 0;
    struct cluster *c = xcalloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->b = b;
    c->node_id = b->node_id;
    c->controller_id = -1;
    c->broker_epoch = -1;
    c->fenced = true;
    pthread_mutex_init(&c->mu, NULL);
    meta_image_init(&c->img);
    meta_image_init(&c->raft_img);
    b->cluster = c;
    if (parse_voters(c, voters, err, errlen) < 0)
        return -1;
    const char *self = NULL;
    for (int i = 0; i < c->nvoters; i++)
        if (c->voters[i].id == RAFT_ID(c->node_id))
            self = c->voters[i].address;
    if (self) {
        snprintf(c->raft_address, sizeof c->raft_address, "%s", self);
    } else {
        /* a broker that is not a voter joins the quorum as a non-voting
         * member (it receives the metadata log): it registers through a
         * broker it knows and gives its own Raft listener */
        c->join = true;
        const char *boot = config_get(b->cfg, "controller.quorum.bootstrap.servers");
        const char *ls = config_get(b->cfg, "listeners");
        const char *ctl = ls ? strstr(ls, "CONTROLLER://") : NULL;
        if (!boot || !*boot || !ctl) {
            snprintf(err, errlen, "node.id=%d is not among controller.quorum.voters: a broker that joins the "
                     "cluster needs controller.quorum.bootstrap.servers (HOST:PORT of brokers' listeners) and "
                     "a CONTROLLER:// entry in listeners for its Raft address", c->node_id);
            return -1;
        }
        snprintf(c->bootstrap, sizeof c->bootstrap, "%s", boot);
        ctl += strlen("CONTROLLER://");
        size_t n = strcspn(ctl, ",");
        if (n == 0 || n >= sizeof c->raft_address) {
            snprintf(err, errlen, "listeners=%s: the CONTROLLER listener is not HOST:PORT", ls);
            return -1;
        }
        memcpy(c->raft_address, ctl, n);
        c->raft_address[n] = 0;
    }
    int64_t v;
#define INT(key, def, min, max, dst)                                      \
    do {                                                                  \
        if (get_int(b->cfg, key, def, min, max, &v, err, errlen) < 0)     \
            return -1;                                                    \
        dst = v;                                                          \
    } while (0)
    INT("broker.session.timeout.ms", 9000, 100, 3600000, c->session_timeout_ms);
    INT("broker.heartbeat.interval.ms", 2000, 10, 3600000, c->heartbeat_ms);
    INT("replica.lag.time.max.ms", 30000, 100, 3600000, c->replica_lag_ms);
    INT("default.replication.factor", 1, 1, CLUSTER_MAX_REPLICAS, c->default_rf);
    INT("offsets.topic.replication.factor", 3, 1, CLUSTER_MAX_REPLICAS, c->offsets_rf);
    INT("min.insync.replicas", 1, 1, CLUSTER_MAX_REPLICAS, c->min_isr);
    INT("leader.imbalance.check.interval.seconds", 300, 1, 86400, c->rebalance_check_ms);
    INT("replica.fetch.wait.max.ms", 500, 1, 60000, c->replica_fetch_wait_ms);
#undef INT
    c->rebalance_check_ms *= 1000;
    const char *ar = config_get(b->cfg, "auto.leader.rebalance.enable");
    c->auto_rebalance = !ar || !strcmp(ar, "true");
    size_t n = strlen(b->cat.data_dir) + 32;
    c->raft_dir = xmalloc(n);
    if (!c->raft_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(c->raft_dir, n, "%s/__cluster_metadata-0", b->cat.data_dir);
    random_bytes(&c->incarnation, sizeof c->incarnation);
    return 0;
}

/* ---- the Raft thread's side: keep an image for snapshots, hand every
 * committed command to the loop thread ---- */

void cluster_push(struct cluster *c, struct cl_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = ev;
    else
        c->head = ev;
    c->tail = ev;
    pthread_mutex_unlock(&c->mu);
    loop_wakeup(c->b->loop);
}

static struct cl_event *event_new(enum cl_event_type type, const void *buf, size_t len)
{
    struct cl_event *ev = xcalloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->type = type;
    if (len > 0) {
        ev->buf = xmalloc(len);
        if (!ev->buf) {
            xfree(ev);
            return NULL;
        }
        memcpy(ev->buf, buf, len);
        ev->len = len;
    }
    return ev;
}

static void fsm_apply(void *arg, const void *buf, size_t len, uint64_t index)
{
    struct cluster *c = arg;
    char err[256];
    meta_image_apply(&c->raft_img, buf, len, (int64_t)index, NULL, err, sizeof err);
    struct cl_event *ev = event_new(EV_APPLY, buf, len);
    if (!ev) {
        log_error("out of memory handing a metadata command to the broker");
        abort(); /* the broker's image would silently diverge */
    }
    ev->index = index;
    cluster_push(c, ev);
}

static int fsm_snapshot(void *arg, void **buf, size_t *len)
{
    struct cluster *c = arg;
    struct obuf w;
    obuf_init(&w);
    if (meta_image_encode(&c->raft_img, &w) < 0 || w.oom) {
        obuf_free(&w);
        return -1;
    }
    *buf = w.data; /* obuf's buffer is malloc'ed */
    *len = w.len;
    return 0;
}

static int fsm_restore(void *arg, const void *buf, size_t len, uint64_t index)
{
    struct cluster *c = arg;
    char err[256];
    struct meta_image m;
    meta_image_init(&m);
    if (meta_image_decode(&m, buf, len, err, sizeof err) < 0) {
        log_error("cluster metadata snapshot at %llu is unreadable: %s", (unsigned long long)index, err);
        meta_image_free(&m);
        return -1;
    }
    meta_image_free(&c->raft_img);
    c->raft_img = m;
    struct cl_event *ev = event_new(EV_RESET, buf, len);
    if (!ev)
        abort();
    ev->index = index;
    cluster_push(c, ev);
    return 0;
}

static void fsm_leader(void *arg, uint64_t leader, bool is_self)
{
    struct cluster *c = arg;
    struct cl_event *ev = event_new(EV_LEADER, NULL, 0);
    if (!ev)
        abort();
    ev->leader = leader;
    ev->is_self = is_self;
    cluster_push(c, ev);
}

static void proposed(void *arg, int status, uint64_t index)
{
    struct cl_op *op = arg;
    struct cl_event *ev = event_new(EV_PROPOSED, NULL, 0);
    if (!ev)
        abort();
    ev->status = status;
    ev->index = index;
    ev->cookie = op;
    cluster_push(op->c, ev);
}

/* ---- the loop thread's side ---- */

int cluster_propose(struct cluster *c, const struct obuf *cmd, struct cl_op *op)
{
    op->c = c;
    if (cmd->oom || !c->raft)
        return -1;
    return raft_node_propose(c->raft, cmd->data, cmd->len, proposed, op);
}

static void remember_verdict(struct cluster *c, uint64_t index, int err, const char *msg)
{
    int k = (int)(index % 64);
    c->verdicts[k].index = index;
    c->verdicts[k].err = err;
    snprintf(c->verdicts[k].msg, sizeof c->verdicts[k].msg, "%s", err ? msg : "");
}

static bool has_replica(const struct mi_partition *p, int32_t id)
{
    for (int i = 0; i < p->nreplicas; i++)
        if (p->replicas[i] == id)
            return true;
    return false;
}

static void copy_ids(int32_t *dst, int *n, const int32_t *src, int count)
{
    if (count > CLUSTER_MAX_REPLICAS)
        count = CLUSTER_MAX_REPLICAS;
    memcpy(dst, src, (size_t)count * sizeof *dst);
    *n = count;
}

static bool same_configs(const struct config *a, const struct config *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const char *v = config_get(b, a->entries[i].key);
        if (!v || strcmp(v, a->entries[i].value))
            return false;
    }
    return true;
}

/* This broker stops being a replica of part: parked requests are answered,
 * group coordination on it ends, and once the broker has caught up with the
 * metadata its log is emptied (Kafka deletes the replica; the directory
 * stays while the topic has other partitions here). */
static void stop_replica(struct broker *b, struct partition *part, bool offsets)
{
    if (part->repl) {
        repl_fail_parked(b, part, KERR_NOT_LEADER_OR_FOLLOWER);
        if (offsets && part->repl->is_leader)
            gstore_partition_led(b, part, false);
        xfree(part->repl);
        part->repl = NULL;
    }
    if (!b->cluster->caught_up || (part->log->next_offset == 0 && part->log->log_start_offset == 0))
        return;
    log_info("no longer a replica of %s-%d: deleting its %lld records", part->topic->name, part->index,
             (long long)(part->log->next_offset - part->log->log_start_offset));
    if (plog_truncate_fully(part->log, 0) < 0)
        log_error("cannot delete the log of %s-%d: %s", part->topic->name, part->index, strerror(errno));
    b->appends++; /* parked fetches on it answer now */
}

/* No partition of t is on this broker any more (moved by reassignment):
 * once caught up with the metadata, the local topic goes. */
static void drop_local_topic(struct broker *b, struct topic *t, bool offsets)
{
    for (int32_t i = 0; i < t->npartitions; i++)
        stop_replica(b, t->parts[i], offsets);
    if (!b->cluster->caught_up)
        return;
    log_info("no replica of %s is on this broker any more: removing its local log", t->name);
    for (int32_t i = 0; i < t->npartitions; i++)
        cleaner_forget(b->cleaner, t->parts[i]->log);
    catalog_delete(&b->cat, t);
    b->appends++;
}

/* Makes the local logs follow one topic of the image: this broker holds a
 * log for every partition it is a replica of, leads what the image says it
 * leads and follows the rest. */
void cluster_reconcile_topic(struct broker *b, const struct mi_topic *mt)
{
    struct cluster *c = b->cluster;
    bool mine = false;
    for (int32_t i = 0; i < mt->npartitions; i++)
        mine = mine || has_replica(&mt->parts[i], c->node_id);
    struct topic *t = catalog_find(&b->cat, mt->name, strlen(mt->name));
    bool offsets = !strcmp(mt->name, GSTORE_TOPIC); /* group coordinators move with its leaders */
    if (t && memcmp(&t->id, &mt->id, sizeof t->id) != 0) {
        /* deleted and created again while we were away: the old log goes */
        for (int32_t i = 0; i < t->npartitions; i++) {
            if (t->parts[i]->repl)
                repl_fail_parked(b, t->parts[i], KERR_NOT_LEADER_OR_FOLLOWER);
            if (offsets)
                gstore_partition_led(b, t->parts[i], false);
        }
        log_info("topic %s was recreated with a new id; removing the old log", mt->name);
        for (int32_t i = 0; i < t->npartitions; i++)
            cleaner_forget(b->cleaner, t->parts[i]->log);
        catalog_delete(&b->cat, t);
        t = NULL;
    }
    if (!mine) {
        if (t)
            drop_local_topic(b, t, offsets);
        return;
    }
    char err[256];
    if (!t) {
        int rc = catalog_create_with_id(&b->cat, mt->name, mt->npartitions, &mt->configs, &mt->id, &t, err,
                                        sizeof err);
        if (rc != 0) {
            log_error("cannot create the local replicas of %s: %s", mt->name, err);
            return;
        }
    } else if (!same_configs(&t->overrides, &mt->configs)) {
        if (catalog_set_config(&b->cat, t, &mt->configs) < 0)
            log_error("cannot save the configuration of %s", mt->name);
    }
    if (t->npartitions < mt->npartitions) {
        if (catalog_add_partitions(&b->cat, t, mt->npartitions, err, sizeof err) != 0) {
            log_error("cannot add partitions to %s: %s", mt->name, err);
            return;
        }
    }
    for (int32_t i = 0; i < mt->npartitions && i < t->npartitions; i++) {
        const struct mi_partition *mp = &mt->parts[i];
        struct partition *part = t->parts[i];
        if (!has_replica(mp, c->node_id)) {
            stop_replica(b, part, offsets);
            continue;
        }
        struct replica *r = part->repl;
        if (!r) {
            r = part->repl = xcalloc(1, sizeof *r);
            if (!r) {
                log_error("out of memory following %s-%d", mt->name, i);
                continue;
            }
            r->leader = -2; /* unknown: the first pass below always acts */
            r->leader_epoch = -1;
            r->hw = 0;
        }
        bool replicas_changed = r->nreplicas != mp->nreplicas ||
                                memcmp(r->replicas, mp->replicas, (size_t)mp->nreplicas * sizeof *mp->replicas) != 0;
        copy_ids(r->replicas, &r->nreplicas, mp->replicas, mp->nreplicas);
        copy_ids(r->isr, &r->nisr, mp->isr, mp->nisr);
        r->partition_epoch = mp->partition_epoch;
        if (r->leader != mp->leader || r->leader_epoch != mp->leader_epoch) {
            bool was_leader = r->is_leader;
            r->leader = mp->leader;
            r->leader_epoch = mp->leader_epoch;
            r->is_leader = mp->leader == c->node_id;
            if (was_leader)
                repl_fail_parked(b, part, KERR_NOT_LEADER_OR_FOLLOWER);
            if (was_leader && !r->is_leader && offsets)
                gstore_partition_led(b, part, false);
            if (r->is_leader) {
                repl_become_leader(b, part);
                if (offsets)
                    gstore_partition_led(b, part, true);
                log_info("leading %s-%d at epoch %d (log end %lld)", mt->name, i, r->leader_epoch,
                         (long long)part->log->next_offset);
            } else {
                r->follower_ready = false;
                if (r->hw > part->log->next_offset)
                    r->hw = part->log->next_offset;
                log_debug("following %s-%d, leader %d at epoch %d", mt->name, i, r->leader, r->leader_epoch);
            }
        } else if (r->is_leader) {
            if (replicas_changed)
                repl_replicas_changed(b, part);
            repl_update_hw(b, part); /* the ISR may have changed */
        }
    }
}

static void delete_local_topic(struct broker *b, struct topic *t)
{
    for (int32_t p = 0; p < t->npartitions; p++) {
        if (t->parts[p]->repl)
            repl_fail_parked(b, t->parts[p], KERR_UNKNOWN_TOPIC_OR_PARTITION);
        if (!strcmp(t->name, GSTORE_TOPIC))
            gstore_partition_led(b, t->parts[p], false);
    }
    for (int32_t p = 0; p < t->npartitions; p++)
        cleaner_forget(b->cleaner, t->parts[p]->log);
    catalog_delete(&b->cat, t);
    b->appends++; /* parked fetches on it answer now */
}

/* Local topics whose id left the image were deleted by the cluster. */
static void delete_vanished(struct broker *b, const kuuid *before, int nbefore)
{
    struct cluster *c = b->cluster;
    for (int k = 0; k < nbefore; k++) {
        if (meta_image_topic_by_id(&c->img, before[k]))
            continue;
        for (int i = 0; i < b->cat.ntopics; i++) {
            struct topic *t = b->cat.topics[i];
            if (memcmp(&t->id, &before[k], sizeof t->id) != 0)
                continue;
            log_info("topic %s deleted by the cluster", t->name);
            delete_local_topic(b, t);
            break;
        }
    }
}

/* Stray topics: local logs whose topic id is not in the present image.
 * The cluster deleted them while this broker was down, or while it was cut
 * off long enough to be sent a snapshot instead of the deletion, so no
 * command will ever name them again (Kafka deletes such stray logs too). */
static void delete_strays(struct broker *b)
{
    struct cluster *c = b->cluster;
    for (int i = 0; i < b->cat.ntopics;) {
        struct topic *t = b->cat.topics[i];
        if (meta_image_topic_by_id(&c->img, t->id)) {
            i++;
            continue;
        }
        log_info("topic %s is not in the cluster metadata any more (deleted while this broker was away): "
                 "removing its local log",
                 t->name);
        delete_local_topic(b, t); /* the last topic moves into slot i */
    }
}

/* The controller unfences a broker only once it has replayed the metadata
 * up to its own registration, so from the first unfencing on, every image
 * this process sees is the cluster's present, not a step of the replay.
 * Logs follow the image only from then on, as a Kafka broker serves only
 * after its initial catch-up: a restarted broker replays from its last
 * snapshot, and acting on that past would make it a second leader at an
 * old epoch (followers that have not yet applied the new epoch would fetch
 * from it and acknowledge with it records the real leader never gets), or
 * delete a log the present assignment needs. */
static void set_fenced(struct cluster *c, bool fenced)
{
    if (c->fenced && !fenced && !c->caught_up)
        log_info("caught up with the cluster metadata");
    c->fenced = fenced;
    if (!fenced)
        c->caught_up = true;
}

static void reconcile_all(struct broker *b)
{
    struct cluster *c = b->cluster;
    const struct mi_broker *me = meta_image_broker(&c->img, c->node_id);
    if (me && !memcmp(&me->incarnation, &c->incarnation, sizeof me->incarnation)) {
        c->broker_epoch = me->epoch;
        set_fenced(c, me->fenced);
    }
    if (!c->caught_up)
        return; /* no log is led or followed yet: requests get NOT_LEADER */
    /* in image order; drop_local_topic may remove catalog entries, never
     * image ones */
    for (int i = 0; i < c->img.ntopics; i++)
        cluster_reconcile_topic(b, c->img.topics[i]);
    delete_strays(b);
    fetchers_update(b);
}

static void apply_event(struct broker *b, struct cl_event *ev, bool *dirty)
{
    struct cluster *c = b->cluster;
    char msg[160];
    int n = c->img.ntopics;
    kuuid *before = n > 0 ? xmalloc((size_t)n * sizeof *before) : NULL;
    for (int i = 0; before && i < n; i++)
        before[i] = c->img.topics[i]->id;
    int err = meta_image_apply(&c->img, ev->buf, ev->len, (int64_t)ev->index, NULL, msg, sizeof msg);
    remember_verdict(c, ev->index, err, msg);
    if (err)
        log_debug("metadata command %llu refused: %s", (unsigned long long)ev->index, msg);
    if (before && c->img.ntopics < n)
        delete_vanished(b, before, n);
    xfree(before);
    *dirty = true;
}

void cluster_drain(struct broker *b)
{
    struct cluster *c = b->cluster;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    struct cl_event *ev = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    bool dirty = false;
    while (ev) {
        struct cl_event *next = ev->next;
        switch (ev->type) {
        case EV_APPLY:
            apply_event(b, ev, &dirty);
            break;
        case EV_RESET: {
            char msg[160];
            struct meta_image m;
            meta_image_init(&m);
            if (meta_image_decode(&m, ev->buf, ev->len, msg, sizeof msg) == 0) {
                meta_image_free(&c->img);
                c->img = m;
                dirty = true;
            } else {
                meta_image_free(&m);
                log_error("cannot read the metadata snapshot: %s", msg);
            }
            break;
        }
        case EV_LEADER: {
            bool was = c->is_controller;
            c->controller_id = ev->leader ? NODE_ID(ev->leader) : -1;
            c->is_controller = ev->is_self;
            log_info("active controller: %d%s", c->controller_id, ev->is_self ? " (this broker)" : "");
            if (c->is_controller && !was)
                controller_became(b);
            break;
        }
        case EV_PROPOSED: {
            struct cl_op *op = ev->cookie;
            int verdict = 0;
            const char *vmsg = "";
            int k = (int)(ev->index % 64);
            if (ev->status == 0 && c->verdicts[k].index == ev->index) {
                verdict = c->verdicts[k].err;
                vmsg = c->verdicts[k].msg;
            }
            if (dirty) { /* the proposer sees the state its command made */
                reconcile_all(b);
                dirty = false;
            }
            op->index = ev->index;
            op->fn(b, op, ev->status, verdict, vmsg);
            break;
        }
        case EV_CHANNEL: {
            struct cl_op *op = ev->cookie;
            op->resp = ev->buf;
            op->resp_len = ev->len;
            op->fn(b, op, ev->status, 0, "");
            break;
        }
        case EV_FETCHED:
            fetcher_process(b, ev);
            break;
        }
        xfree(ev->buf);
        xfree(ev);
        ev = next;
    }
    if (dirty)
        reconcile_all(b);
}

const struct meta_image *cluster_image(const struct broker *b)
{
    return &b->cluster->img;
}

int32_t cluster_controller_id(const struct broker *b)
{
    return b->cluster ? b->cluster->controller_id : b->node_id;
}

bool cluster_is_controller(const struct broker *b)
{
    return !b->cluster || b->cluster->is_controller;
}

int64_t cluster_broker_epoch(const struct broker *b)
{
    return b->cluster ? b->cluster->broker_epoch : 0;
}

int64_t partition_hw(const struct partition *p)
{
    return p->repl ? p->repl->hw : p->log->next_offset;
}

int cluster_check_leader(const struct broker *b, const struct partition *p)
{
    if (!b->cluster)
        return 0; /* alone: it leads everything */
    return p->repl && p->repl->is_leader ? 0 : KERR_NOT_LEADER_OR_FOLLOWER;
}

int32_t cluster_min_isr(const struct broker *b, const struct topic *t)
{
    const char *v = config_get(&t->overrides, "min.insync.replicas");
    if (v)
        return (int32_t)atoi(v);
    return b->cluster ? b->cluster->min_isr : 1;
}

/* ---- forwarding admin requests to the active controller ---- */

static void forwarded(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)b;
    (void)apply_err;
    (void)msg;
    struct request *r = op->r;
    if (!r->conn) {
        request_free(r);
    } else if (status) {
        /* the controller could not be reached: the client retries after
         * it refreshes its metadata */
        log_debug("forwarding API %d to the controller failed", r->api_key);
        r->out.oom = 1; /* closes the connection: clients reconnect and retry */
        request_done(r);
    } else {
        obuf_put(&r->out, op->resp, op->resp_len);
        request_done(r);
    }
    xfree(op);
}

int cluster_forward(struct broker *b, struct request *r)
{
    struct cluster *c = b->cluster;
    const struct mi_broker *cb = c->controller_id >= 0 ? meta_image_broker(&c->img, c->controller_id) : NULL;
    if (!cb)
        return -1;
    struct obuf body;
    obuf_init(&body);
    obuf_put(&body, r->body.p, kr_left(&r->body));
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op) {
        obuf_free(&body);
        return -1;
    }
    op->c = c;
    op->fn = forwarded;
    op->r = r;
    int rc = ctl_channel_send(c->chan, cb->host, cb->port, r->api_key, r->api_version, &body, op);
    obuf_free(&body);
    if (rc < 0) {
        xfree(op);
        return -1;
    }
    return 0;
}

/* ---- registration and heartbeats to the active controller ---- */

static const struct mi_broker *controller_broker(struct cluster *c)
{
    return c->controller_id >= 0 ? meta_image_broker(&c->img, c->controller_id) : NULL;
}

static void registered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)apply_err;
    (void)msg;
    struct cluster *c = b->cluster;
    c->register_inflight = false;
    struct BrokerRegistrationResponse resp;
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, op->resp, op->resp_len);
    if (status == 0 && BrokerRegistrationResponse_decode(&rd, &a, 0, &resp) == 0) {
        if (resp.ErrorCode == 0) {
            c->broker_epoch = resp.BrokerEpoch;
            log_info("registered with the controller %d, broker epoch %lld", c->controller_id,
                     (long long)resp.BrokerEpoch);
        } else {
            log_warn("the controller refused this broker's registration: %s", kerr_name(resp.ErrorCode));
        }
    }
    arena_free(&a);
    xfree(op);
}

static void heartbeat_answered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)apply_err;
    (void)msg;
    struct cluster *c = b->cluster;
    c->heartbeat_inflight = false;
    struct BrokerHeartbeatResponse resp;
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, op->resp, op->resp_len);
    if (status == 0 && BrokerHeartbeatResponse_decode(&rd, &a, 0, &resp) == 0) {
        if (resp.ErrorCode == KERR_STALE_BROKER_EPOCH) {
            c->broker_epoch = -1; /* register again */
        } else if (resp.ErrorCode == 0) {
            bool first = !c->caught_up && !resp.IsFenced;
            if (c->fenced && !resp.IsFenced)
                log_info("unfenced by the controller");
            set_fenced(c, resp.IsFenced);
            if (first)
                reconcile_all(b); /* the logs follow the image from now on */
        }
    }
    arena_free(&a);
    xfree(op);
}

static void send_registration(struct broker *b, const char *host, int port);

/* Join: the bootstrap broker's Metadata names the active controller. */
static void join_metadata(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)apply_err;
    (void)msg;
    struct cluster *c = b->cluster;
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, op->resp, op->resp_len);
    struct MetadataResponse resp;
    bool sent = false;
    if (status == 0 && MetadataResponse_decode(&rd, &a, 1, &resp) == 0) {
        for (int32_t i = 0; i < resp.Brokers.count; i++) {
            struct MetadataResponse_MetadataResponseBroker *mb = &resp.Brokers.items[i];
            if (mb->NodeId != resp.ControllerId || mb->Host.len <= 0 || mb->Host.len >= 256)
                continue;
            char host[256];
            memcpy(host, mb->Host.ptr, (size_t)mb->Host.len);
            host[mb->Host.len] = 0;
            send_registration(b, host, mb->Port);
            sent = true;
        }
    }
    if (!sent) {
        c->register_inflight = false;
        log_debug("joining: no controller known yet through %s", c->bootstrap);
    }
    arena_free(&a);
    xfree(op);
}

static void join_register(struct broker *b)
{
    struct cluster *c = b->cluster;
    /* the bootstrap servers in turn */
    static unsigned next;
    char list[512], *save = NULL;
    snprintf(list, sizeof list, "%s", c->bootstrap);
    int n = 0;
    char *items[16];
    for (char *t = strtok_r(list, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
        items[n++] = t;
    if (n == 0)
        return;
    char *hp = items[next++ % (unsigned)n];
    char *colon = strrchr(hp, ':');
    if (!colon)
        return;
    *colon = 0;
    struct MetadataRequest req;
    MetadataRequest_init(&req);
    req.Topics.count = 0; /* v1: no topics, just brokers and the controller */
    struct obuf w;
    obuf_init(&w);
    MetadataRequest_encode(&w, 1, &req);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (op) {
        op->c = c;
        op->fn = join_metadata;
        c->register_inflight = true;
        c->last_register_ms = clock_mono_ms();
        if (ctl_channel_send(c->chan, hp, atoi(colon + 1), KAPI_METADATA, 1, &w, op) < 0) {
            c->register_inflight = false;
            xfree(op);
        }
    }
    obuf_free(&w);
}

/* Registers (once per incarnation) and heartbeats to the active controller,
 * through the channel, or directly when this broker is the controller. */
void cluster_send_heartbeat(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    const struct mi_broker *me = meta_image_broker(&c->img, c->node_id);
    bool registered_now = me && !memcmp(&me->incarnation, &c->incarnation, sizeof me->incarnation);
    if (c->join && !registered_now) {
        /* through a bootstrap broker: we may not know the controller yet */
        if (!c->register_inflight && now - c->last_register_ms >= 500)
            join_register(b);
        return;
    }
    if (c->controller_id < 0)
        return;
    if (c->is_controller) {
        if (registered_now) {
            bool fenced;
            controller_heartbeat(b, c->node_id, me->epoch, c->img.offset, &fenced);
        }
        return; /* controller_tick registers the controller itself */
    }
    const struct mi_broker *cb = controller_broker(c);
    if (!cb)
        return; /* the controller has not registered itself yet */
    struct obuf w;
    obuf_init(&w);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op)
        return;
    op->c = c;
    if (!registered_now || c->broker_epoch < 0) {
        xfree(op);
        obuf_free(&w);
        if (c->register_inflight || now - c->last_register_ms < 500)
            return;
        send_registration(b, cb->host, cb->port);
        return;
    } else {
        if (c->heartbeat_inflight || now - c->last_heartbeat_ms < c->heartbeat_ms) {
            xfree(op);
            obuf_free(&w);
            return;
        }
        struct BrokerHeartbeatRequest req;
        BrokerHeartbeatRequest_init(&req);
        req.BrokerId = c->node_id;
        req.BrokerEpoch = c->broker_epoch;
        req.CurrentMetadataOffset = c->img.offset;
        req.WantFence = false;
        req.WantShutDown = b->stopping != 0;
        BrokerHeartbeatRequest_encode(&w, 0, &req);
        op->fn = heartbeat_answered;
        c->heartbeat_inflight = true;
        c->last_heartbeat_ms = now;
        if (ctl_channel_send(c->chan, cb->host, cb->port, KAPI_BROKERHEARTBEAT, 0, &w, op) < 0) {
            c->heartbeat_inflight = false;
            xfree(op);
        }
    }
    obuf_free(&w);
}

static void send_registration(struct broker *b, const char *host, int port)
{
    struct cluster *c = b->cluster;
    struct BrokerRegistrationRequest req;
    BrokerRegistrationRequest_init(&req);
    struct BrokerRegistrationRequest_Listener l[2];
    BrokerRegistrationRequest_Listener_init(&l[0]);
    BrokerRegistrationRequest_Listener_init(&l[1]);
    l[0].Name = kstr_c("PLAINTEXT");
    l[0].Host = kstr_c(b->adv_host);
    l[0].Port = (uint16_t)b->adv_port;
    /* the Raft listener, for the controller to add a joining broker */
    char rhost[128];
    snprintf(rhost, sizeof rhost, "%s", c->raft_address);
    char *colon = strrchr(rhost, ':');
    int nl = 1;
    if (colon) {
        *colon = 0;
        l[1].Name = kstr_c("CONTROLLER");
        l[1].Host = kstr_c(rhost);
        l[1].Port = (uint16_t)atoi(colon + 1);
        nl = 2;
    }
    req.BrokerId = c->node_id;
    req.ClusterId = kstr_c(b->cat.cluster_id);
    req.IncarnationId = c->incarnation;
    req.Listeners.count = nl;
    req.Listeners.items = l;
    req.Rack = (kstr){NULL, -1};
    req.PreviousBrokerEpoch = -1;
    struct obuf w;
    obuf_init(&w);
    BrokerRegistrationRequest_encode(&w, 0, &req);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (op) {
        op->c = c;
        op->fn = registered;
        c->register_inflight = true;
        c->last_register_ms = clock_mono_ms();
        if (ctl_channel_send(c->chan, host, port, KAPI_BROKERREGISTRATION, 0, &w, op) < 0) {
            c->register_inflight = false;
            xfree(op);
        }
    }
    obuf_free(&w);
}

static void cluster_timer(struct loop *l, void *arg)
{
    struct broker *b = arg;
    struct cluster *c = b->cluster;
    cluster_send_heartbeat(b);
    if (c->is_controller)
        controller_tick(b);
    repl_tick(b);
    if (!b->stopping)
        loop_timer(l, 100, cluster_timer, b);
}

/* At shutdown, after the threads stopped: frees what they handed over. */
static void cluster_drain_discard(struct cluster *c)
{
    struct cl_event *ev = c->head;
    c->head = c->tail = NULL;
    while (ev) {
        struct cl_event *next = ev->next;
        if (ev->type == EV_PROPOSED || ev->type == EV_CHANNEL) {
            struct cl_op *op = ev->cookie;
            if (op->r && !op->r->conn)
                request_free(op->r);
            xfree(op->cookie); /* a plain struct where used (joining brokers) */
            xfree(op);
        }
        xfree(ev->buf);
        xfree(ev);
        ev = next;
    }
}

int cluster_start(struct broker *b, char *err, size_t errlen)
{
    struct cluster *c = b->cluster;
    if (!c)
        return 0;
    /* A data dir with topics but no cluster metadata is a single broker's:
     * its topics are in no image, so catching up would delete them as
     * strays. Refused rather than lost. */
    struct stat st;
    if (stat(c->raft_dir, &st) < 0 && errno == ENOENT && b->cat.ntopics > 0) {
        snprintf(err, errlen,
                 "%s holds %d topics of a single broker and no cluster metadata; a new cluster member "
                 "starts from an empty data dir",
                 b->cat.data_dir, b->cat.ntopics);
        return -1;
    }
    if (file_mkdirs(c->raft_dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", c->raft_dir, strerror(errno));
        return -1;
    }
    c->chan = ctl_channel_new(c);
    if (!c->chan) {
        snprintf(err, errlen, "cannot start the controller channel thread");
        return -1;
    }
    struct raft_node_config rc = {
        .id = RAFT_ID(c->node_id),
        .join = c->join,
        .dir = c->raft_dir,
        .address = c->raft_address,
        .nvoters = c->nvoters,
        .voters = c->voters,
        .election_timeout_ms = 1000,
        .heartbeat_timeout_ms = 100,
        .snapshot_threshold = 1024,
    };
    struct raft_node_fsm fsm = {
        .arg = c,
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .leader_changed = fsm_leader,
    };
    c->raft = raft_node_start(&rc, &fsm, err, errlen);
    if (!c->raft)
        return -1;
    loop_timer(b->loop, 100, cluster_timer, b);
    log_info("cluster member %d: metadata quorum %s (this node at %s), data in %s", c->node_id,
             config_get(b->cfg, "controller.quorum.voters"), c->raft_address, c->raft_dir);
    return 0;
}

void cluster_free(struct broker *b)
{
    struct cluster *c = b->cluster;
    if (!c)
        return;
    if (c->raft)
        raft_node_stop(c->raft); /* no more events after this */
    fetchers_free(b);
    if (c->chan)
        ctl_channel_free(c->chan);
    /* events still queued: their ops are freed, their requests answered by
     * the connection teardown */
    cluster_drain_discard(c);
    repl_free_all(b);
    meta_image_free(&c->img);
    meta_image_free(&c->raft_img);
    pthread_mutex_destroy(&c->mu);
    xfree(c->raft_dir);
    xfree(c);
    b->cluster = NULL;
}
