/* replication.c: the leader's side of replication (Kafka's Partition and
 * ISR logic).  A leader learns each follower's log end from its fetches,
 * keeps the high watermark at the smallest log end of the in-sync replicas
 * (consumers read only below it), answers acks=all produces once it passes
 * their records, and asks the controller to shrink the ISR when a follower
 * falls behind for replica.lag.time.max.ms and to expand it when a follower
 * has caught up.  Loop thread. */
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "storage/catalog.h"

struct repl_parked {
    struct request *r;
    struct repl_wait *waits; /* in the request's arena */
    int n;
    int64_t deadline_ms;
    void (*done)(struct request *r);
};

int repl_isr_count(const struct partition *p)
{
    return p->repl ? p->repl->nisr : 1;
}

static struct replica_peer *peer(struct replica *r, int32_t id)
{
    for (int i = 0; i < r->npeers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

static bool in_isr(const struct replica *r, int32_t id)
{
    for (int i = 0; i < r->nisr; i++)
        if (r->isr[i] == id)
            return true;
    return false;
}

void repl_become_leader(struct broker *b, struct partition *p)
{
    struct replica *r = p->repl;
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    if (ecache_assign(&p->log->epochs, r->leader_epoch, p->log->next_offset) < 0)
        log_error("cannot record leader epoch %d of %s-%d", r->leader_epoch, p->topic->name, p->index);
    r->npeers = 0;
    for (int i = 0; i < r->nreplicas; i++) {
        if (r->replicas[i] == c->node_id)
            continue;
        struct replica_peer *f = &r->peers[r->npeers++];
        memset(f, 0, sizeof *f);
        f->id = r->replicas[i];
        f->leo = -1;
        /* in-sync followers get a full lag window to show up */
        f->caught_up_ms = in_isr(r, f->id) ? now : 0;
    }
    r->alter_sent_ms = 0;
    repl_update_hw(b, p);
}

static void complete_parked(struct broker *b);

void repl_replicas_changed(struct broker *b, struct partition *p)
{
    struct replica *r = p->repl;
    struct replica_peer old[CLUSTER_MAX_REPLICAS];
    int nold = r->npeers;
    memcpy(old, r->peers, (size_t)nold * sizeof *old);
    r->npeers = 0;
    for (int i = 0; i < r->nreplicas; i++) {
        if (r->replicas[i] == b->node_id)
            continue;
        struct replica_peer *f = &r->peers[r->npeers++];
        memset(f, 0, sizeof *f);
        f->id = r->replicas[i];
        f->leo = -1;
        for (int k = 0; k < nold; k++)
            if (old[k].id == f->id)
                *f = old[k]; /* a replica that stays keeps what we know of it */
    }
}

void repl_update_hw(struct broker *b, struct partition *p)
{
    struct replica *r = p->repl;
    if (!r || !r->is_leader)
        return;
    int64_t hw = p->log->next_offset;
    for (int i = 0; i < r->nisr; i++) {
        if (r->isr[i] == b->node_id)
            continue;
        struct replica_peer *f = peer(r, r->isr[i]);
        int64_t leo = f ? f->leo : -1;
        if (leo < hw)
            hw = leo;
    }
    if (hw > r->hw) {
        r->hw = hw;
        b->appends++; /* parked consumer fetches may now have data */
        complete_parked(b);
    }
}

/* ---- AlterPartition to the controller ---- */

static void alter_answered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)apply_err;
    (void)msg;
    /* the partition may be gone: find it again by the name kept in op */
    struct AlterPartitionResponse resp;
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, op->resp, op->resp_len);
    if (status == 0 && AlterPartitionResponse_decode(&rd, &a, 2, &resp) == 0) {
        int err = resp.ErrorCode;
        if (!err && resp.Topics.count == 1 && resp.Topics.items[0].Partitions.count == 1)
            err = resp.Topics.items[0].Partitions.items[0].ErrorCode;
        if (err)
            log_debug("AlterPartition refused: %s", kerr_name(err));
    }
    arena_free(&a);
    const struct mi_topic *mt = meta_image_topic_by_id(&b->cluster->img, op->topic_id);
    struct topic *t = mt ? catalog_find(&b->cat, mt->name, strlen(mt->name)) : NULL;
    struct partition *p = t ? catalog_partition(t, op->kind) : NULL;
    if (p && p->repl)
        p->repl->alter_sent_ms = 0; /* the image brings the result; retry if it did not change */
    xfree(op);
}

static void send_alter(struct broker *b, struct partition *p, const int32_t *isr, int nisr)
{
    struct cluster *c = b->cluster;
    struct replica *r = p->repl;
    int64_t now = clock_mono_ms();
    if (r->alter_sent_ms && now - r->alter_sent_ms < 5000)
        return; /* one in flight */
    const struct mi_broker *cb = c->controller_id >= 0 ? meta_image_broker(&c->img, c->controller_id) : NULL;
    if (!cb || c->broker_epoch < 0)
        return;
    struct AlterPartitionRequest req;
    AlterPartitionRequest_init(&req);
    struct AlterPartitionRequest_TopicData td;
    AlterPartitionRequest_TopicData_init(&td);
    struct AlterPartitionRequest_PartitionData pd;
    AlterPartitionRequest_PartitionData_init(&pd);
    req.BrokerId = c->node_id;
    req.BrokerEpoch = c->broker_epoch;
    req.Topics.count = 1;
    req.Topics.items = &td;
    td.TopicId = p->topic->id;
    td.TopicName = kstr_c(p->topic->name);
    td.Partitions.count = 1;
    td.Partitions.items = &pd;
    pd.PartitionIndex = p->index;
    pd.LeaderEpoch = r->leader_epoch;
    pd.PartitionEpoch = r->partition_epoch;
    pd.NewIsr.count = nisr;
    pd.NewIsr.items = (int32_t *)isr;
    struct obuf w;
    obuf_init(&w);
    AlterPartitionRequest_encode(&w, 2, &req);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op) {
        obuf_free(&w);
        return;
    }
    op->fn = alter_answered;
    op->kind = p->index;
    op->topic_id = p->topic->id;
    if (ctl_channel_send(c->chan, cb->host, cb->port, KAPI_ALTERPARTITION, 2, &w, op) == 0)
        r->alter_sent_ms = now;
    else
        xfree(op);
    obuf_free(&w);
}

void repl_follower_fetched(struct broker *b, struct partition *p, int32_t follower, int64_t offset)
{
    struct replica *r = p->repl;
    if (!r || !r->is_leader)
        return;
    struct replica_peer *f = peer(r, follower);
    if (!f)
        return;
    int64_t now = clock_mono_ms();
    int64_t leo = p->log->next_offset;
    if (offset >= leo)
        f->caught_up_ms = now;
    else if (f->prev_fetch_ms && offset >= f->leo_at_prev_fetch)
        f->caught_up_ms = f->prev_fetch_ms;
    f->leo_at_prev_fetch = leo;
    f->prev_fetch_ms = now;
    f->last_fetch_ms = now;
    f->leo = offset <= leo ? offset : leo;
    repl_update_hw(b, p);
    /* back in sync: it has everything below the high watermark, and at
     * least everything of the current leader epoch's start */
    if (!in_isr(r, follower) && f->leo >= r->hw && r->nisr < CLUSTER_MAX_REPLICAS) {
        int32_t isr[CLUSTER_MAX_REPLICAS + 1];
        memcpy(isr, r->isr, (size_t)r->nisr * sizeof *isr);
        isr[r->nisr] = follower;
        send_alter(b, p, isr, r->nisr + 1);
    }
}

/* Followers that have not caught up within replica.lag.time.max.ms leave
 * the ISR. */
void repl_check_isr(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int32_t k = 0; k < t->npartitions; k++) {
            struct partition *p = t->parts[k];
            struct replica *r = p->repl;
            if (!r || !r->is_leader || r->nisr <= 1)
                continue;
            int32_t isr[CLUSTER_MAX_REPLICAS];
            int n = 0;
            for (int j = 0; j < r->nisr; j++) {
                struct replica_peer *f = r->isr[j] == b->node_id ? NULL : peer(r, r->isr[j]);
                if (f && f->caught_up_ms + c->replica_lag_ms < now && p->log->next_offset > f->leo)
                    continue;
                isr[n++] = r->isr[j];
            }
            if (n < r->nisr && n > 0) {
                log_info("%s-%d: shrinking the ISR from %d to %d replicas", t->name, k, r->nisr, n);
                send_alter(b, p, isr, n);
            }
        }
    }
}

/* ---- acks=all ---- */

static bool resolve(struct repl_wait *w, int64_t now, int64_t deadline_ms)
{
    if (w->resolved)
        return true;
    struct replica *r = w->part ? w->part->repl : NULL;
    if (!r || !r->is_leader || r->leader_epoch != w->leader_epoch) {
        *w->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
        w->resolved = true;
    } else if (r->hw >= w->end_offset) {
        w->resolved = true;
    } else if (now >= deadline_ms) {
        *w->error_code = KERR_REQUEST_TIMED_OUT;
        w->resolved = true;
    }
    return w->resolved;
}

int repl_park_produce(struct broker *b, struct request *r, struct repl_wait *waits, int n, int64_t deadline_ms,
                      void (*done)(struct request *r))
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    bool open = false;
    for (int k = 0; k < n; k++)
        open = !resolve(&waits[k], now, deadline_ms + 1) || open;
    if (!open)
        return 1; /* nothing to wait for: the caller answers now */
    if (c->nparked == c->capparked) {
        int cap = c->capparked ? c->capparked * 2 : 16;
        struct repl_parked **np = xrealloc(c->parked, (size_t)cap * sizeof *np);
        if (!np)
            return -1;
        c->parked = np;
        c->capparked = cap;
    }
    struct repl_parked *pk = xcalloc(1, sizeof *pk);
    if (!pk)
        return -1;
    pk->r = r;
    pk->waits = waits;
    pk->n = n;
    pk->deadline_ms = deadline_ms;
    pk->done = done;
    c->parked[c->nparked++] = pk;
    return 0;
}

/* Resolves what can be resolved; answers requests with nothing left. */
static void complete_parked(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < c->nparked;) {
        struct repl_parked *pk = c->parked[i];
        bool open = false;
        for (int k = 0; k < pk->n; k++)
            open = !resolve(&pk->waits[k], now, pk->deadline_ms) || open;
        if (open) {
            i++;
            continue;
        }
        c->parked[i] = c->parked[--c->nparked];
        struct request *r = pk->r;
        void (*done)(struct request *) = pk->done;
        xfree(pk);
        done(r); /* answers, or frees a request whose connection went */
    }
}

void repl_fail_parked(struct broker *b, struct partition *p, int err)
{
    struct cluster *c = b->cluster;
    for (int i = 0; i < c->nparked; i++) {
        struct repl_parked *pk = c->parked[i];
        for (int k = 0; k < pk->n; k++)
            if (pk->waits[k].part == p && !pk->waits[k].resolved) {
                *pk->waits[k].error_code = (int16_t)err;
                pk->waits[k].resolved = true;
                pk->waits[k].part = NULL;
            }
    }
    complete_parked(b);
}

void repl_tick(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    if (c->nparked)
        complete_parked(b); /* deadlines */
    if (now - c->last_isr_check_ms >= c->replica_lag_ms / 4) {
        c->last_isr_check_ms = now;
        repl_check_isr(b);
    }
}

void repl_free_all(struct broker *b)
{
    struct cluster *c = b->cluster;
    for (int i = 0; i < c->nparked; i++) {
        struct request *r = c->parked[i]->r;
        if (!r->conn)
            request_free(r);
        xfree(c->parked[i]);
    }
    xfree(c->parked);
    c->parked = NULL;
    c->nparked = c->capparked = 0;
}
