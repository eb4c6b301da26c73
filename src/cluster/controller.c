/* controller.c: what the active controller (the Raft leader) does, on its
 * loop thread: registers brokers and watches their heartbeats, fences a
 * broker whose heartbeats stop and moves its leaderships to in-sync
 * replicas, brings back preferred leaders, creates and deletes topics with
 * replica assignments, and applies leaders' ISR changes (AlterPartition).
 * Every decision is a metadata command; it takes effect when committed, and
 * commands that change a partition carry the partition epoch they were
 * decided on, so a decision made on a stale image is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "storage/catalog.h"

static struct controller_broker *cb_get(struct cluster *c, int32_t id)
{
    for (int i = 0; i < c->ncb; i++)
        if (c->cb[i].id == id)
            return &c->cb[i];
    if (c->ncb == CLUSTER_MAX_BROKERS)
        return NULL;
    struct controller_broker *e = &c->cb[c->ncb++];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->last_heartbeat_ms = clock_mono_ms();
    return e;
}

void controller_became(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    c->controller_since_ms = now;
    c->last_rebalance_ms = now;
    /* every broker gets a full session to find the new controller */
    c->ncb = 0;
    for (int i = 0; i < c->img.nbrokers; i++)
        cb_get(c, c->img.brokers[i].id);
}

/* ---- proposals that answer nobody ---- */


static void change_done(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)b;
    if (status || apply_err)
        log_debug("controller command not applied: status %d, %s", status, apply_err ? msg : "");
    if (op->kind == 1)
        op->c->pending_changes--;
    if (op->kind == 2)
        op->c->self_register_pending = false;
    struct controller_broker *e = op->broker_id >= 0 ? cb_get(op->c, op->broker_id) : NULL;
    if (e) {
        e->fence_pending = false;
        e->unfence_pending = false;
    }
    xfree(op);
}

int controller_propose(struct cluster *c, struct obuf *w, int kind, int32_t broker_id)
{
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op) {
        obuf_free(w);
        return -1;
    }
    op->fn = change_done;
    op->kind = kind;
    op->broker_id = broker_id;
    int rc = cluster_propose(c, w, op);
    obuf_free(w);
    if (rc < 0) {
        xfree(op);
        return -1;
    }
    if (kind == 1)
        c->pending_changes++;
    return 0;
}

/* ---- heartbeats and fencing ---- */

int controller_heartbeat(struct broker *b, int32_t id, int64_t epoch, int64_t metadata_offset, bool *fenced)
{
    struct cluster *c = b->cluster;
    const struct mi_broker *mb = meta_image_broker(&c->img, id);
    if (!mb || mb->epoch != epoch)
        return KERR_STALE_BROKER_EPOCH;
    struct controller_broker *e = cb_get(c, id);
    if (e)
        e->last_heartbeat_ms = clock_mono_ms();
    *fenced = mb->fenced;
    /* unfenced once it has replayed the metadata up to its own registration */
    if (mb->fenced && metadata_offset >= mb->epoch && e && !e->unfence_pending) {
        struct obuf w;
        obuf_init(&w);
        mi_enc_unfence_broker(&w, id, epoch);
        if (controller_propose(c, &w, 0, id) == 0)
            e->unfence_pending = true;
    }
    return 0;
}

static void fence(struct cluster *c, const struct mi_broker *mb, struct controller_broker *e)
{
    log_warn("broker %d missed its heartbeats for %lld ms: fencing it", mb->id,
             (long long)(clock_mono_ms() - e->last_heartbeat_ms));
    struct obuf w;
    obuf_init(&w);
    mi_enc_fence_broker(&w, mb->id, mb->epoch);
    if (controller_propose(c, &w, 0, mb->id) == 0)
        e->fence_pending = true;
}

static bool usable(const struct meta_image *m, int32_t id)
{
    const struct mi_broker *mb = meta_image_broker(m, id);
    return mb && !mb->fenced;
}

/* Takes fenced brokers out of a partition's ISR and its leadership, elects
 * a leader for a leaderless partition, and (when due) gives leadership back
 * to the preferred replica.  Proposes at most one change. */
static void check_partition(struct cluster *c, const struct mi_topic *t, int32_t index, bool rebalance)
{
    const struct mi_partition *p = &t->parts[index];
    int32_t isr[MI_MAX_REPLICAS];
    int nisr = 0;
    bool isr_changed = false;
    for (int i = 0; i < p->nisr; i++) {
        if (usable(&c->img, p->isr[i]))
            isr[nisr++] = p->isr[i];
        else
            isr_changed = true;
    }
    int32_t leader = p->leader;
    bool leader_ok = leader >= 0 && usable(&c->img, leader) && mi_in_isr(p, leader);
    if (nisr == 0) {
        /* the last in-sync replica is down: keep it in the ISR so that it,
         * and only it, may lead again (no unclean election) */
        if (p->leader < 0)
            return;
        memcpy(isr, p->isr, (size_t)p->nisr * sizeof *isr);
        nisr = p->nisr;
        isr_changed = false;
        leader = -1;
    } else if (!leader_ok) {
        leader = -1;
        for (int i = 0; i < p->nreplicas && leader < 0; i++)
            for (int k = 0; k < nisr; k++)
                if (isr[k] == p->replicas[i])
                    leader = p->replicas[i];
    } else if (rebalance && p->replicas[0] != leader) {
        for (int k = 0; k < nisr; k++)
            if (isr[k] == p->replicas[0])
                leader = p->replicas[0];
    }
    bool leader_changed = leader != p->leader;
    if (!leader_changed && !isr_changed)
        return;
    struct mi_partition_change ch = {
        .topic_id = t->id,
        .partition = index,
        .expected_partition_epoch = p->partition_epoch,
        .leader = leader_changed ? leader : MI_NO_CHANGE,
        .nisr = isr_changed || leader_changed ? nisr : -1,
        .isr = isr,
        .nreplicas = -1,
    };
    if (leader >= 0 && ch.nisr >= 0) {
        bool in = false;
        for (int k = 0; k < nisr; k++)
            in = in || isr[k] == leader;
        if (!in)
            return;
    }
    log_info("%s-%d: leader %d -> %d, ISR %d -> %d replicas", t->name, index, p->leader, leader, p->nisr, nisr);
    struct obuf w;
    obuf_init(&w);
    mi_enc_partition_change(&w, &ch);
    controller_propose(c, &w, 1, -1);
}


static void self_registered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    b->cluster->self_register_pending = false;
    if (status || apply_err)
        log_warn("the controller could not register itself: %s", apply_err ? msg : "not committed");
    xfree(op);
}

void controller_tick(struct broker *b)
{
    struct cluster *c = b->cluster;
    int64_t now = clock_mono_ms();
    const struct mi_broker *me = meta_image_broker(&c->img, c->node_id);
    if ((!me || memcmp(&me->incarnation, &c->incarnation, sizeof me->incarnation)) && !c->self_register_pending) {
        struct obuf w;
        obuf_init(&w);
        mi_enc_register_broker(&w, c->node_id, b->adv_host, b->adv_port, c->incarnation);
        struct cl_op *op = xcalloc(1, sizeof *op);
        if (op) {
            op->fn = self_registered;
            op->broker_id = -1;
            if (cluster_propose(c, &w, op) == 0)
                c->self_register_pending = true;
            else
                xfree(op);
        }
        obuf_free(&w);
    }
    if (me && !config_get(&c->img.cluster_configs, "cluster.id") && !c->self_register_pending) {
        /* the first controller gives the cluster its id */
        struct obuf w;
        obuf_init(&w);
        mi_enc_set_config(&w, "", "cluster.id", b->cat.cluster_id);
        controller_propose(c, &w, 2, -1);
        c->self_register_pending = true; /* cleared by change_done below */
    }
    if (now - c->controller_since_ms < c->heartbeat_ms)
        return; /* let the image catch up with what the previous controller did */
    for (int i = 0; i < c->img.nbrokers; i++) {
        const struct mi_broker *mb = &c->img.brokers[i];
        struct controller_broker *e = cb_get(c, mb->id);
        if (!e || mb->fenced || e->fence_pending || mb->id == c->node_id)
            continue;
        if (now - e->last_heartbeat_ms > c->session_timeout_ms)
            fence(c, mb, e);
    }
    if (c->pending_changes > 0)
        return;
    bool rebalance = c->auto_rebalance && now - c->last_rebalance_ms >= c->rebalance_check_ms;
    if (rebalance)
        c->last_rebalance_ms = now;
    for (int i = 0; i < c->img.ntopics; i++) {
        const struct mi_topic *t = c->img.topics[i];
        for (int32_t p = 0; p < t->npartitions; p++)
            check_partition(c, t, p, rebalance);
    }
    if (c->pending_changes == 0)
        reassign_tick(b);
}

/* ---- requests parked until their command commits ---- */

static void answer_done(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    int err = status ? KERR_NOT_CONTROLLER : apply_err;
    if (op->done)
        op->done(b, op->r, err, err ? (status ? "the controller changed before the change committed" : msg) : NULL);
    xfree(op);
}

static int propose_for(struct broker *b, struct obuf *w, struct request *r, cluster_done_fn *done)
{
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op) {
        obuf_free(w);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    op->fn = answer_done;
    op->r = r;
    op->done = done;
    op->broker_id = -1;
    int rc = cluster_propose(b->cluster, w, op);
    obuf_free(w);
    if (rc < 0) {
        xfree(op);
        return KERR_NOT_CONTROLLER;
    }
    return 0;
}

int cluster_create_topic(struct broker *b, const char *name, int32_t partitions, int32_t rf,
                         const int32_t *assignment, int nconfigs, const char *const *keys, const char *const *vals,
                         struct request *r, cluster_done_fn *done, char *err, size_t errlen)
{
    struct cluster *c = b->cluster;
    if (!c->is_controller) {
        snprintf(err, errlen, "this broker is not the active controller");
        return KERR_NOT_CONTROLLER;
    }
    if (meta_image_topic(&c->img, name, strlen(name))) {
        snprintf(err, errlen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (rf <= 0 && !strncmp(name, "__", 2)) {
        /* internal topics: offsets.topic.replication.factor, at most the
         * brokers there are (a small cluster still gets its groups) */
        int32_t live = 0;
        for (int i = 0; i < c->img.nbrokers; i++)
            live += !c->img.brokers[i].fenced;
        rf = c->offsets_rf < live ? c->offsets_rf : live > 0 ? live : 1;
    } else if (rf <= 0) {
        rf = c->default_rf;
    }
    if (partitions < 1 || partitions > 100000) {
        snprintf(err, errlen, "Number of partitions must be between 1 and 100000.");
        return KERR_INVALID_PARTITIONS;
    }
    int32_t *ids = xmalloc((size_t)partitions * (size_t)rf * sizeof *ids);
    int32_t *counts = xmalloc((size_t)partitions * sizeof *counts);
    if (!ids || !counts) {
        xfree(ids);
        xfree(counts);
        snprintf(err, errlen, "out of memory");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    int rc = 0;
    if (assignment) {
        memcpy(ids, assignment, (size_t)partitions * (size_t)rf * sizeof *ids);
    } else {
        uint32_t start;
        random_bytes(&start, sizeof start);
        rc = mi_assign_replicas(&c->img, partitions, rf, 0, start, ids);
        if (rc)
            snprintf(err, errlen, "Replication factor: %d larger than available brokers: %d.", rf,
                     c->img.nbrokers);
    }
    if (rc == 0) {
        for (int32_t i = 0; i < partitions; i++)
            counts[i] = rf;
        kuuid id;
        random_bytes(&id, sizeof id);
        struct obuf w;
        obuf_init(&w);
        mi_enc_create_topic(&w, name, id, partitions, counts, ids, nconfigs, keys, vals);
        rc = propose_for(b, &w, r, done);
        if (rc)
            snprintf(err, errlen, "the controller cannot propose now");
    }
    xfree(ids);
    xfree(counts);
    return rc;
}

int cluster_delete_topic(struct broker *b, const struct mi_topic *t, struct request *r, cluster_done_fn *done)
{
    if (!b->cluster->is_controller)
        return KERR_NOT_CONTROLLER;
    struct obuf w;
    obuf_init(&w);
    mi_enc_delete_topic(&w, t->id);
    return propose_for(b, &w, r, done);
}

int cluster_create_partitions(struct broker *b, const struct mi_topic *t, int32_t count, struct request *r,
                              cluster_done_fn *done, char *err, size_t errlen)
{
    struct cluster *c = b->cluster;
    if (!c->is_controller) {
        snprintf(err, errlen, "this broker is not the active controller");
        return KERR_NOT_CONTROLLER;
    }
    if (count <= t->npartitions) {
        snprintf(err, errlen, "Topic currently has %d partitions, which is higher than the requested %d.",
                 t->npartitions, count);
        return KERR_INVALID_PARTITIONS;
    }
    int32_t rf = t->parts[0].nreplicas, nnew = count - t->npartitions;
    int32_t *ids = xmalloc((size_t)nnew * (size_t)rf * sizeof *ids);
    int32_t *counts = xmalloc((size_t)nnew * sizeof *counts);
    int rc = ids && counts ? 0 : KERR_UNKNOWN_SERVER_ERROR;
    if (!rc) {
        uint32_t start;
        random_bytes(&start, sizeof start);
        rc = mi_assign_replicas(&c->img, nnew, rf, t->npartitions, start, ids);
        if (rc)
            snprintf(err, errlen, "not enough unfenced brokers for replication factor %d", rf);
    }
    if (!rc) {
        for (int32_t i = 0; i < nnew; i++)
            counts[i] = rf;
        struct obuf w;
        obuf_init(&w);
        mi_enc_create_partitions(&w, t->id, count, nnew, counts, ids);
        rc = propose_for(b, &w, r, done);
    }
    xfree(ids);
    xfree(counts);
    return rc;
}

/* ---- the controller's Kafka APIs ---- */

static void registration_committed(struct broker *b, struct cl_op *op, int status, int apply_err,
                                   const char *msg)
{
    struct request *r = op->r;
    struct BrokerRegistrationResponse resp;
    BrokerRegistrationResponse_init(&resp);
    resp.ErrorCode = (int16_t)(status ? KERR_NOT_CONTROLLER : apply_err);
    if (!resp.ErrorCode) {
        resp.BrokerEpoch = (int64_t)op->index;
        struct controller_broker *e = cb_get(b->cluster, op->broker_id);
        if (e)
            e->last_heartbeat_ms = clock_mono_ms();
    } else {
        log_warn("registration of broker %d failed: %s", op->broker_id, msg);
    }
    if (r->conn)
        BrokerRegistrationResponse_encode(&r->out, r->api_version, &resp);
    else
        r->out.oom = 1;
    if (r->conn)
        request_done(r);
    else
        request_free(r);
    xfree(op);
}

/* A joining broker is added to the Raft membership (non-voting) before
 * its registration is proposed, so that it receives the metadata log. */
struct join_state {
    struct request *r;
    int32_t id;
    char host[MI_MAX_HOST + 1];
    int32_t port;
    kuuid incarnation;
};

static int propose_registration(struct broker *b, struct request *r, int32_t id, const char *host, int32_t port,
                                kuuid incarnation)
{
    struct obuf w;
    obuf_init(&w);
    mi_enc_register_broker(&w, id, host, port, incarnation);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (!op) {
        obuf_free(&w);
        return -1;
    }
    op->fn = registration_committed;
    op->r = r;
    op->broker_id = id;
    int rc = cluster_propose(b->cluster, &w, op);
    obuf_free(&w);
    if (rc < 0)
        xfree(op);
    return rc;
}

static void member_added(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)apply_err;
    (void)msg;
    struct join_state *js = op->cookie;
    struct request *r = js->r;
    if (status == 0 && b->cluster->is_controller) {
        log_info("broker %d joined the metadata quorum as a non-voting member", js->id);
        if (propose_registration(b, r, js->id, js->host, js->port, js->incarnation) == 0) {
            xfree(js);
            xfree(op);
            return;
        }
    }
    struct BrokerRegistrationResponse resp;
    BrokerRegistrationResponse_init(&resp);
    resp.ErrorCode = KERR_NOT_CONTROLLER;
    if (r->conn) {
        BrokerRegistrationResponse_encode(&r->out, r->api_version, &resp);
        request_done(r);
    } else {
        request_free(r);
    }
    xfree(js);
    xfree(op);
}

static void raft_member_done(void *arg, int status)
{
    struct cl_op *op = arg; /* raft thread: hand over to the loop thread */
    struct cl_event *ev = xcalloc(1, sizeof *ev);
    if (!ev)
        abort();
    ev->type = EV_PROPOSED;
    ev->status = status;
    ev->index = 0;
    ev->cookie = op;
    cluster_push(op->c, ev);
}

static bool raft_member(struct cluster *c, int32_t id)
{
    struct raft_node_member m[CLUSTER_MAX_BROKERS];
    int n = raft_node_members(c->raft, m, CLUSTER_MAX_BROKERS);
    for (int i = 0; i < n && i < CLUSTER_MAX_BROKERS; i++)
        if (m[i].id == RAFT_ID(id))
            return true;
    return false;
}

void cluster_forget_member(struct broker *b, int32_t id)
{
    struct cluster *c = b->cluster;
    bool voter = false;
    for (int i = 0; i < c->nvoters; i++)
        voter = voter || c->voters[i].id == RAFT_ID(id);
    if (!voter && raft_member(c, id))
        raft_node_remove(c->raft, RAFT_ID(id), NULL, NULL); /* a joined broker leaves the quorum too */
}

int handle_broker_registration(struct broker *b, struct request *r)
{
    struct BrokerRegistrationRequest req;
    if (BrokerRegistrationRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct BrokerRegistrationResponse resp;
    BrokerRegistrationResponse_init(&resp);
    struct cluster *c = b->cluster;
    const char *host = NULL, *raft_host = NULL;
    int32_t port = 0, raft_port = 0;
    for (int32_t i = 0; i < req.Listeners.count; i++) {
        struct BrokerRegistrationRequest_Listener *l = &req.Listeners.items[i];
        if (l->Host.len <= 0 || l->Host.len > MI_MAX_HOST)
            continue;
        if (kstr_eq(l->Name, "CONTROLLER")) {
            raft_host = handler_cstr(r, l->Host);
            raft_port = l->Port;
        } else if (!host) {
            host = handler_cstr(r, l->Host);
            port = l->Port;
        }
    }
    if (!c || !c->is_controller) {
        resp.ErrorCode = KERR_NOT_CONTROLLER;
    } else if (!host || port <= 0 || req.BrokerId < 0 || req.BrokerId > INT32_MAX - 1) {
        resp.ErrorCode = KERR_INVALID_REQUEST;
    } else {
        const struct mi_broker *mb = meta_image_broker(&c->img, req.BrokerId);
        if (mb && !memcmp(&mb->incarnation, &req.IncarnationId, sizeof mb->incarnation)) {
            resp.BrokerEpoch = mb->epoch; /* a retry of a registration that committed */
        } else if (raft_host && raft_port > 0 && !raft_member(c, req.BrokerId)) {
            /* a new broker: it joins the metadata quorum first */
            struct join_state *js = xcalloc(1, sizeof *js);
            struct cl_op *op = xcalloc(1, sizeof *op);
            char addr[300];
            snprintf(addr, sizeof addr, "%s:%d", raft_host, raft_port);
            if (!js || !op || strlen(addr) >= 128) {
                xfree(js);
                xfree(op);
                resp.ErrorCode = KERR_INVALID_REQUEST;
            } else {
                js->r = r;
                js->id = req.BrokerId;
                snprintf(js->host, sizeof js->host, "%s", host);
                js->port = port;
                js->incarnation = req.IncarnationId;
                op->c = c;
                op->fn = member_added;
                op->cookie = js;
                op->r = r;
                if (raft_node_add(c->raft, RAFT_ID(req.BrokerId), addr, false, raft_member_done, op) == 0)
                    return API_PARKED;
                xfree(js);
                xfree(op);
                resp.ErrorCode = KERR_NOT_CONTROLLER;
            }
        } else if (propose_registration(b, r, req.BrokerId, host, port, req.IncarnationId) == 0) {
            return API_PARKED;
        } else {
            resp.ErrorCode = KERR_NOT_CONTROLLER;
        }
    }
    BrokerRegistrationResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}

int handle_broker_heartbeat(struct broker *b, struct request *r)
{
    struct BrokerHeartbeatRequest req;
    if (BrokerHeartbeatRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct BrokerHeartbeatResponse resp;
    BrokerHeartbeatResponse_init(&resp);
    struct cluster *c = b->cluster;
    if (!c || !c->is_controller) {
        resp.ErrorCode = KERR_NOT_CONTROLLER;
        resp.IsFenced = true;
    } else {
        bool fenced = true;
        resp.ErrorCode = (int16_t)controller_heartbeat(b, req.BrokerId, req.BrokerEpoch, req.CurrentMetadataOffset,
                                                       &fenced);
        resp.IsFenced = fenced;
        resp.IsCaughtUp = req.CurrentMetadataOffset >= c->img.offset;
        resp.ShouldShutDown = req.WantShutDown;
    }
    BrokerHeartbeatResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}

/* AlterPartition: one partition per request from shopstream's leaders;
 * each partition of a larger request is checked, the first valid change is
 * proposed and the others are answered with an error to retry. */
struct alter_state {
    struct AlterPartitionResponse resp;
};

static void alter_committed(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)msg;
    struct request *r = op->r;
    struct alter_state *st = r->state;
    struct AlterPartitionResponse_PartitionData *pd = &st->resp.Topics.items[0].Partitions.items[0];
    pd->ErrorCode = (int16_t)(status ? KERR_NOT_CONTROLLER : apply_err ? KERR_INVALID_UPDATE_VERSION : 0);
    const struct mi_topic *t = meta_image_topic_by_id(&b->cluster->img, st->resp.Topics.items[0].TopicId);
    if (!t && st->resp.Topics.items[0].TopicName.len > 0)
        t = meta_image_topic(&b->cluster->img, st->resp.Topics.items[0].TopicName.ptr,
                             (size_t)st->resp.Topics.items[0].TopicName.len);
    if (t && pd->PartitionIndex < t->npartitions) {
        const struct mi_partition *p = &t->parts[pd->PartitionIndex];
        pd->LeaderId = p->leader;
        pd->LeaderEpoch = p->leader_epoch;
        pd->PartitionEpoch = p->partition_epoch;
        int32_t *isr = arena_alloc(&r->arena, (size_t)(p->nisr + 1) * sizeof *isr);
        if (isr) {
            memcpy(isr, p->isr, (size_t)p->nisr * sizeof *isr);
            pd->Isr.count = p->nisr;
            pd->Isr.items = isr;
        }
    }
    if (r->conn) {
        AlterPartitionResponse_encode(&r->out, r->api_version, &st->resp);
        request_done(r);
    } else {
        request_free(r);
    }
    xfree(op);
}

int handle_alter_partition(struct broker *b, struct request *r)
{
    struct AlterPartitionRequest req;
    struct alter_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st || AlterPartitionRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    r->state = st;
    struct AlterPartitionResponse *resp = &st->resp;
    AlterPartitionResponse_init(resp);
    struct cluster *c = b->cluster;
    if (!c || !c->is_controller) {
        resp->ErrorCode = KERR_NOT_CONTROLLER;
        AlterPartitionResponse_encode(&r->out, r->api_version, resp);
        return API_DONE;
    }
    const struct mi_broker *from = meta_image_broker(&c->img, req.BrokerId);
    if (!from || from->epoch != req.BrokerEpoch) {
        resp->ErrorCode = KERR_STALE_BROKER_EPOCH;
        AlterPartitionResponse_encode(&r->out, r->api_version, resp);
        return API_DONE;
    }
    if (HANDLER_ITEMS(r, resp->Topics, req.Topics.count, AlterPartitionResponse_TopicData_init) < 0)
        return API_CLOSE;
    struct mi_partition_change ch;
    bool proposed = false;
    for (int32_t ti = 0; ti < req.Topics.count; ti++) {
        struct AlterPartitionRequest_TopicData *td = &req.Topics.items[ti];
        struct AlterPartitionResponse_TopicData *rt = &resp->Topics.items[ti];
        rt->TopicName = td->TopicName;
        rt->TopicId = td->TopicId;
        const struct mi_topic *t = r->api_version >= 2 ? meta_image_topic_by_id(&c->img, td->TopicId)
                                   : td->TopicName.len > 0
                                       ? meta_image_topic(&c->img, td->TopicName.ptr, (size_t)td->TopicName.len)
                                       : NULL;
        if (HANDLER_ITEMS(r, rt->Partitions, td->Partitions.count, AlterPartitionResponse_PartitionData_init) < 0)
            return API_CLOSE;
        for (int32_t pi = 0; pi < td->Partitions.count; pi++) {
            struct AlterPartitionRequest_PartitionData *pd = &td->Partitions.items[pi];
            struct AlterPartitionResponse_PartitionData *rp = &rt->Partitions.items[pi];
            rp->PartitionIndex = pd->PartitionIndex;
            const struct mi_partition *p =
                t && pd->PartitionIndex >= 0 && pd->PartitionIndex < t->npartitions ? &t->parts[pd->PartitionIndex]
                                                                                    : NULL;
            int32_t nisr = pd->NewIsr.count;
            const int32_t *isr = pd->NewIsr.items;
            if (r->api_version >= 3) {
                int32_t *ids = arena_alloc(&r->arena, (size_t)(pd->NewIsrWithEpochs.count + 1) * sizeof *ids);
                if (!ids)
                    return API_CLOSE;
                for (int32_t k = 0; k < pd->NewIsrWithEpochs.count; k++)
                    ids[k] = pd->NewIsrWithEpochs.items[k].BrokerId;
                nisr = pd->NewIsrWithEpochs.count;
                isr = ids;
            }
            if (!p)
                rp->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (p->leader != req.BrokerId || pd->LeaderEpoch != p->leader_epoch)
                rp->ErrorCode = KERR_FENCED_LEADER_EPOCH;
            else if (pd->PartitionEpoch != p->partition_epoch)
                rp->ErrorCode = KERR_INVALID_UPDATE_VERSION;
            else if (nisr < 1 || nisr > MI_MAX_REPLICAS)
                rp->ErrorCode = KERR_INVALID_REQUEST;
            else if (proposed || ti > 0 || pi > 0)
                rp->ErrorCode = KERR_REQUEST_TIMED_OUT; /* one at a time; the leader retries */
            if (p && !rp->ErrorCode) {
                for (int32_t k = 0; k < nisr && !rp->ErrorCode; k++)
                    if (!mi_is_replica(p, isr[k]) || (!mi_in_isr(p, isr[k]) && !usable(&c->img, isr[k])))
                        rp->ErrorCode = KERR_INELIGIBLE_REPLICA;
            }
            if (p) {
                rp->LeaderId = p->leader;
                rp->LeaderEpoch = p->leader_epoch;
                rp->PartitionEpoch = p->partition_epoch;
            }
            if (rp->ErrorCode || !p)
                continue;
            ch = (struct mi_partition_change){
                .topic_id = t->id,
                .partition = pd->PartitionIndex,
                .expected_partition_epoch = p->partition_epoch,
                .leader = MI_NO_CHANGE,
                .nisr = nisr,
                .isr = isr,
                .nreplicas = -1,
            };
            proposed = true;
        }
    }
    if (proposed && resp->Topics.count == 1 && resp->Topics.items[0].Partitions.count == 1) {
        struct obuf w;
        obuf_init(&w);
        mi_enc_partition_change(&w, &ch);
        struct cl_op *op = xcalloc(1, sizeof *op);
        if (!op) {
            obuf_free(&w);
            return API_CLOSE;
        }
        op->fn = alter_committed;
        op->r = r;
        op->broker_id = -1;
        int rc = cluster_propose(c, &w, op);
        obuf_free(&w);
        if (rc == 0)
            return API_PARKED;
        xfree(op);
        resp->Topics.items[0].Partitions.items[0].ErrorCode = KERR_NOT_CONTROLLER;
    }
    AlterPartitionResponse_encode(&r->out, r->api_version, resp);
    return API_DONE;
}

/* ---- auto-creation ---- */

static void auto_created(struct broker *b, struct request *r, int err, const char *msg)
{
    (void)b;
    (void)r;
    if (err && err != KERR_TOPIC_ALREADY_EXISTS)
        log_warn("auto-creating a topic failed: %s", msg ? msg : kerr_name(err));
}

static void auto_create_answered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    (void)b;
    (void)apply_err;
    (void)msg;
    if (status)
        log_debug("auto-create request to the controller failed");
    xfree(op);
}

void cluster_request_auto_create(struct broker *b, const char *name, int32_t partitions)
{
    cluster_request_auto_create_with(b, name, partitions, 0, NULL, NULL);
}

void cluster_request_auto_create_with(struct broker *b, const char *name, int32_t partitions, int nconfigs,
                                      const char *const *keys, const char *const *vals)
{
    struct cluster *c = b->cluster;
    char err[256];
    if (c->is_controller) {
        cluster_create_topic(b, name, partitions, -1, NULL, nconfigs, keys, vals, NULL, auto_created, err,
                             sizeof err);
        return;
    }
    const struct mi_broker *cb = c->controller_id >= 0 ? meta_image_broker(&c->img, c->controller_id) : NULL;
    if (!cb)
        return;
    struct CreateTopicsRequest req;
    CreateTopicsRequest_init(&req);
    struct CreateTopicsRequest_CreatableTopic ct;
    CreateTopicsRequest_CreatableTopic_init(&ct);
    ct.Name = kstr_c(name);
    ct.NumPartitions = partitions;
    ct.ReplicationFactor = -1;
    struct CreateTopicsRequest_CreateableTopicConfig cfgs[8];
    for (int i = 0; i < nconfigs && i < 8; i++) {
        CreateTopicsRequest_CreateableTopicConfig_init(&cfgs[i]);
        cfgs[i].Name = kstr_c(keys[i]);
        cfgs[i].Value = kstr_c(vals[i]);
    }
    ct.Configs.count = nconfigs < 8 ? nconfigs : 8;
    ct.Configs.items = cfgs;
    req.Topics.count = 1;
    req.Topics.items = &ct;
    req.timeoutMs = 5000;
    struct obuf w;
    obuf_init(&w);
    CreateTopicsRequest_encode(&w, 4, &req);
    struct cl_op *op = xcalloc(1, sizeof *op);
    if (op) {
        op->fn = auto_create_answered;
        if (ctl_channel_send(c->chan, cb->host, cb->port, KAPI_CREATETOPICS, 4, &w, op) < 0)
            xfree(op);
    }
    obuf_free(&w);
}

/* ---- topic configs ---- */

int cluster_set_topic_config(struct broker *b, const char *topic, const struct config *want, struct request *r,
                             cluster_done_fn *done)
{
    struct cluster *c = b->cluster;
    const struct mi_topic *t = meta_image_topic(&c->img, topic, strlen(topic));
    if (!t)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (!c->is_controller)
        return KERR_NOT_CONTROLLER;
    /* the changes, sets then removals; commands commit in order, so the
     * request waits for the last one only */
    int nchanges = 0;
    for (int i = 0; i < want->n; i++) {
        const char *have = config_get(&t->configs, want->entries[i].key);
        nchanges += !have || strcmp(have, want->entries[i].value);
    }
    for (int i = 0; i < t->configs.n; i++)
        nchanges += !config_get(want, t->configs.entries[i].key);
    if (nchanges == 0)
        return CLUSTER_NO_CHANGE;
    int k = 0;
    for (int i = 0; i < want->n + t->configs.n; i++) {
        const char *key, *value;
        if (i < want->n) {
            key = want->entries[i].key;
            value = want->entries[i].value;
            const char *have = config_get(&t->configs, key);
            if (have && !strcmp(have, value))
                continue;
        } else {
            key = t->configs.entries[i - want->n].key;
            value = NULL;
            if (config_get(want, key))
                continue;
        }
        struct obuf w;
        obuf_init(&w);
        mi_enc_set_config(&w, topic, key, value);
        int rc = ++k < nchanges ? (controller_propose(c, &w, 0, -1) < 0 ? KERR_NOT_CONTROLLER : 0)
                                : propose_for(b, &w, r, done);
        if (rc)
            return rc;
    }
    return 0;
}
