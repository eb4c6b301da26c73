/* reassign.c: moving partition replicas between brokers, as Kafka's
 * AlterPartitionReassignments (key 45) and ListPartitionReassignments (46):
 * the controller first adds the target replicas to the partition (they
 * start fetching), and once every target replica is in sync it drops the
 * replicas that are not in the target, moving the leadership if its leader
 * is one of them.  A reassignment under way is kept in the metadata image
 * as the cluster config "reassign:<topic>:<partition>" = "<original>;<target>"
 * (broker id lists), so that a new controller carries it on.  Also
 * UnregisterBroker (64): removing a broker that holds no replica. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/log.h"

#define REASSIGN_PREFIX "reassign:"

static int parse_ids(const char *s, const char *end, int32_t *ids, int max)
{
    int n = 0;
    while (s < end && n < max) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || v < 0 || v > INT32_MAX)
            return -1;
        ids[n++] = (int32_t)v;
        s = e;
        if (s < end && *s == ',')
            s++;
    }
    return n;
}

static void format_ids(char *buf, size_t len, const int32_t *ids, int n)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? "," : "", ids[i]);
}

static bool contains(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* A reassignment in the image: its partition, original and target lists. */
struct pending {
    const struct mi_topic *t;
    int32_t partition;
    int32_t orig[MI_MAX_REPLICAS], target[MI_MAX_REPLICAS];
    int norig, ntarget;
};

static bool parse_pending(const struct meta_image *img, const char *key, const char *val, struct pending *out)
{
    if (strncmp(key, REASSIGN_PREFIX, strlen(REASSIGN_PREFIX)))
        return false;
    const char *name = key + strlen(REASSIGN_PREFIX);
    const char *colon = strrchr(name, ':');
    const char *semi = strchr(val, ';');
    if (!colon || !semi)
        return false;
    out->t = meta_image_topic(img, name, (size_t)(colon - name));
    out->partition = (int32_t)atoi(colon + 1);
    if (!out->t || out->partition < 0 || out->partition >= out->t->npartitions)
        return false;
    out->norig = parse_ids(val, semi, out->orig, MI_MAX_REPLICAS);
    out->ntarget = parse_ids(semi + 1, val + strlen(val), out->target, MI_MAX_REPLICAS);
    return out->norig > 0 && out->ntarget > 0;
}

static const char *pending_value(const struct meta_image *img, const char *topic, int32_t partition, char *key,
                                 size_t keylen)
{
    snprintf(key, keylen, REASSIGN_PREFIX "%s:%d", topic, partition);
    return config_get(&img->cluster_configs, key);
}

/* Leader for a new replica set: the current one if it stays, else the
 * first in-sync member of the set. */
static int32_t pick_leader(const struct mi_partition *p, const int32_t *ids, int n, const int32_t *isr, int nisr)
{
    if (p->leader >= 0 && contains(ids, n, p->leader) && contains(isr, nisr, p->leader))
        return MI_NO_CHANGE;
    for (int i = 0; i < n; i++)
        if (contains(isr, nisr, ids[i]))
            return ids[i];
    return -1;
}

static void change_replicas(struct cluster *c, const struct mi_topic *t, int32_t partition, const int32_t *ids, int n)
{
    const struct mi_partition *p = &t->parts[partition];
    int32_t isr[MI_MAX_REPLICAS];
    int nisr = 0;
    for (int i = 0; i < p->nisr; i++)
        if (contains(ids, n, p->isr[i]))
            isr[nisr++] = p->isr[i];
    int32_t leader = pick_leader(p, ids, n, isr, nisr);
    if (nisr == 0)
        return; /* nothing of the new set is in sync yet */
    struct mi_partition_change ch = {
        .topic_id = t->id,
        .partition = partition,
        .expected_partition_epoch = p->partition_epoch,
        .leader = leader,
        .nisr = nisr,
        .isr = isr,
        .nreplicas = n,
        .replicas = ids,
    };
    struct obuf w;
    obuf_init(&w);
    mi_enc_partition_change(&w, &ch);
    controller_propose(c, &w, 1, -1);
}

/* Controller: finishes reassignments whose target replicas are all in sync. */
void reassign_tick(struct broker *b)
{
    struct cluster *c = b->cluster;
    const struct config *cc = &c->img.cluster_configs;
    for (int i = 0; i < cc->n && c->pending_changes == 0; i++) {
        struct pending pd;
        if (!parse_pending(&c->img, cc->entries[i].key, cc->entries[i].value, &pd))
            continue;
        const struct mi_partition *p = &pd.t->parts[pd.partition];
        bool synced = true;
        for (int k = 0; k < pd.ntarget; k++)
            synced = synced && mi_in_isr(p, pd.target[k]);
        if (!synced)
            continue;
        bool same = p->nreplicas == pd.ntarget;
        for (int k = 0; same && k < pd.ntarget; k++)
            same = p->replicas[k] == pd.target[k];
        if (!same) {
            char ids[160];
            format_ids(ids, sizeof ids, pd.target, pd.ntarget);
            log_info("%s-%d: reassignment complete, replicas now %s", pd.t->name, pd.partition, ids);
            change_replicas(c, pd.t, pd.partition, pd.target, pd.ntarget);
        } else {
            struct obuf w;
            obuf_init(&w);
            mi_enc_set_config(&w, "", cc->entries[i].key, NULL);
            controller_propose(c, &w, 0, -1);
        }
        return; /* one step at a time */
    }
}

static int start_one(struct cluster *c, const struct mi_topic *t, int32_t partition, const int32_t *target, int n,
                     char *err, size_t errlen)
{
    const struct mi_partition *p = &t->parts[partition];
    char key[320], val[400], a[160], bb[160];
    const char *cur = pending_value(&c->img, t->name, partition, key, sizeof key);
    if (n < 1 || n > MI_MAX_REPLICAS) {
        snprintf(err, errlen, "a partition needs 1 to %d replicas", MI_MAX_REPLICAS);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    for (int i = 0; i < n; i++) {
        const struct mi_broker *mb = meta_image_broker(&c->img, target[i]);
        if (!mb || contains(target, i, target[i])) {
            snprintf(err, errlen, "broker %d is %s", target[i], mb ? "listed twice" : "not registered");
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    if (cur) {
        snprintf(err, errlen, "a reassignment of this partition is under way");
        return KERR_REASSIGNMENT_IN_PROGRESS;
    }
    /* the full set while moving: the target first, then the others */
    int32_t all[2 * MI_MAX_REPLICAS];
    int nall = 0;
    for (int i = 0; i < n; i++)
        all[nall++] = target[i];
    for (int i = 0; i < p->nreplicas; i++)
        if (!contains(target, n, p->replicas[i]))
            all[nall++] = p->replicas[i];
    if (nall > MI_MAX_REPLICAS) {
        snprintf(err, errlen, "the old and new replicas together exceed %d", MI_MAX_REPLICAS);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    format_ids(a, sizeof a, p->replicas, p->nreplicas);
    format_ids(bb, sizeof bb, target, n);
    snprintf(val, sizeof val, "%s;%s", a, bb);
    struct obuf w;
    obuf_init(&w);
    mi_enc_set_config(&w, "", key, val);
    if (controller_propose(c, &w, 0, -1) < 0) {
        snprintf(err, errlen, "the controller cannot propose now");
        return KERR_NOT_CONTROLLER;
    }
    if (nall != p->nreplicas) {
        struct mi_partition_change ch = {
            .topic_id = t->id,
            .partition = partition,
            .expected_partition_epoch = p->partition_epoch,
            .leader = MI_NO_CHANGE,
            .nisr = -1,
            .nreplicas = nall,
            .replicas = all,
        };
        obuf_init(&w);
        mi_enc_partition_change(&w, &ch);
        controller_propose(c, &w, 1, -1);
    }
    log_info("%s-%d: reassigning %s -> %s", t->name, partition, a, bb);
    return 0;
}

static int cancel_one(struct cluster *c, const struct mi_topic *t, int32_t partition, char *err, size_t errlen)
{
    char key[320];
    const char *cur = pending_value(&c->img, t->name, partition, key, sizeof key);
    struct pending pd;
    if (!cur || !parse_pending(&c->img, key, cur, &pd)) {
        snprintf(err, errlen, "no reassignment of this partition is under way");
        return KERR_NO_REASSIGNMENT_IN_PROGRESS;
    }
    change_replicas(c, t, partition, pd.orig, pd.norig);
    struct obuf w;
    obuf_init(&w);
    mi_enc_set_config(&w, "", key, NULL);
    controller_propose(c, &w, 0, -1);
    return 0;
}

int handle_alter_partition_reassignments(struct broker *b, struct request *r)
{
    struct AlterPartitionReassignmentsRequest req;
    if (AlterPartitionReassignmentsRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct AlterPartitionReassignmentsResponse resp;
    AlterPartitionReassignmentsResponse_init(&resp);
    resp.ErrorMessage = (kstr){NULL, -1};
    struct cluster *c = b->cluster;
    if (!c || !c->is_controller) {
        resp.ErrorCode = KERR_NOT_CONTROLLER;
        resp.ErrorMessage = kstr_c(c ? "this broker is not the active controller"
                                     : "a broker running alone has no replicas to move");
        AlterPartitionReassignmentsResponse_encode(&r->out, r->api_version, &resp);
        return API_DONE;
    }
    if (HANDLER_ITEMS(r, resp.Responses, req.Topics.count,
                      AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init) < 0)
        return API_CLOSE;
    for (int32_t ti = 0; ti < req.Topics.count; ti++) {
        struct AlterPartitionReassignmentsRequest_ReassignableTopic *qt = &req.Topics.items[ti];
        struct AlterPartitionReassignmentsResponse_ReassignableTopicResponse *rt = &resp.Responses.items[ti];
        rt->Name = qt->Name;
        const struct mi_topic *t =
            qt->Name.len > 0 ? meta_image_topic(&c->img, qt->Name.ptr, (size_t)qt->Name.len) : NULL;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count,
                          AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init) < 0)
            return API_CLOSE;
        for (int32_t pi = 0; pi < qt->Partitions.count; pi++) {
            struct AlterPartitionReassignmentsRequest_ReassignablePartition *qp = &qt->Partitions.items[pi];
            struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *rp = &rt->Partitions.items[pi];
            rp->PartitionIndex = qp->PartitionIndex;
            rp->ErrorMessage = (kstr){NULL, -1};
            char err[256] = "";
            int code;
            if (!t || qp->PartitionIndex < 0 || qp->PartitionIndex >= t->npartitions) {
                code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                snprintf(err, sizeof err, "no such topic partition");
            } else if (qp->Replicas.count < 0) {
                code = cancel_one(c, t, qp->PartitionIndex, err, sizeof err);
            } else {
                code = start_one(c, t, qp->PartitionIndex, qp->Replicas.items, qp->Replicas.count, err, sizeof err);
            }
            rp->ErrorCode = (int16_t)code;
            if (code)
                rp->ErrorMessage = handler_kstr(r, err);
        }
    }
    AlterPartitionReassignmentsResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}

static int32_t *diff(struct request *r, const int32_t *a, int na, const int32_t *bset, int nb, int32_t *count)
{
    int32_t *out = arena_alloc(&r->arena, (size_t)(na + 1) * sizeof *out);
    *count = 0;
    for (int i = 0; out && i < na; i++)
        if (!contains(bset, nb, a[i]))
            out[(*count)++] = a[i];
    return out;
}

int handle_list_partition_reassignments(struct broker *b, struct request *r)
{
    struct ListPartitionReassignmentsRequest req;
    if (ListPartitionReassignmentsRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct ListPartitionReassignmentsResponse resp;
    ListPartitionReassignmentsResponse_init(&resp);
    resp.ErrorMessage = (kstr){NULL, -1};
    struct cluster *c = b->cluster;
    if (c && !c->is_controller) {
        resp.ErrorCode = KERR_NOT_CONTROLLER;
        ListPartitionReassignmentsResponse_encode(&r->out, r->api_version, &resp);
        return API_DONE;
    }
    int n = 0;
    const struct config *cc = c ? &c->img.cluster_configs : NULL;
    struct pending *all = cc && cc->n ? arena_alloc(&r->arena, (size_t)cc->n * sizeof *all) : NULL;
    for (int i = 0; all && i < cc->n; i++) {
        if (!parse_pending(&c->img, cc->entries[i].key, cc->entries[i].value, &all[n]))
            continue;
        bool wanted = req.Topics.count < 0;
        for (int32_t t = 0; !wanted && t < req.Topics.count; t++) {
            kstr nm = req.Topics.items[t].Name;
            if (nm.len != (int32_t)strlen(all[n].t->name) || memcmp(nm.ptr, all[n].t->name, (size_t)nm.len))
                continue;
            for (int32_t k = 0; k < req.Topics.items[t].PartitionIndexes.count; k++)
                wanted = wanted || req.Topics.items[t].PartitionIndexes.items[k] == all[n].partition;
        }
        if (wanted)
            n++;
    }
    /* one topic entry per reassigned partition keeps this simple; clients
     * group by name */
    if (HANDLER_ITEMS(r, resp.Topics, n, ListPartitionReassignmentsResponse_OngoingTopicReassignment_init) < 0)
        return API_CLOSE;
    for (int i = 0; i < n; i++) {
        struct ListPartitionReassignmentsResponse_OngoingTopicReassignment *ot = &resp.Topics.items[i];
        ot->Name = kstr_c(all[i].t->name);
        if (HANDLER_ITEMS(r, ot->Partitions, 1, ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init) <
            0)
            return API_CLOSE;
        struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment *op = &ot->Partitions.items[0];
        const struct mi_partition *p = &all[i].t->parts[all[i].partition];
        op->PartitionIndex = all[i].partition;
        op->Replicas.count = p->nreplicas;
        op->Replicas.items = p->replicas;
        op->AddingReplicas.items = diff(r, all[i].target, all[i].ntarget, all[i].orig, all[i].norig,
                                        &op->AddingReplicas.count);
        op->RemovingReplicas.items = diff(r, all[i].orig, all[i].norig, all[i].target, all[i].ntarget,
                                          &op->RemovingReplicas.count);
        if (!op->AddingReplicas.items || !op->RemovingReplicas.items)
            return API_CLOSE;
    }
    ListPartitionReassignmentsResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}

static void unregistered(struct broker *b, struct cl_op *op, int status, int apply_err, const char *msg)
{
    struct request *r = op->r;
    struct UnregisterBrokerResponse resp;
    UnregisterBrokerResponse_init(&resp);
    resp.ErrorCode = (int16_t)(status ? KERR_NOT_CONTROLLER : apply_err);
    resp.ErrorMessage = resp.ErrorCode ? handler_kstr(r, status ? "not committed" : msg) : (kstr){NULL, -1};
    (void)b;
    if (r->conn) {
        UnregisterBrokerResponse_encode(&r->out, r->api_version, &resp);
        request_done(r);
    } else {
        request_free(r);
    }
    xfree(op);
}

int handle_unregister_broker(struct broker *b, struct request *r)
{
    struct UnregisterBrokerRequest req;
    if (UnregisterBrokerRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct UnregisterBrokerResponse resp;
    UnregisterBrokerResponse_init(&resp);
    resp.ErrorMessage = (kstr){NULL, -1};
    struct cluster *c = b->cluster;
    char err[200] = "";
    if (!c || !c->is_controller) {
        resp.ErrorCode = KERR_NOT_CONTROLLER;
    } else if (!meta_image_broker(&c->img, req.BrokerId)) {
        resp.ErrorCode = KERR_BROKER_ID_NOT_REGISTERED;
        snprintf(err, sizeof err, "broker %d is not registered", req.BrokerId);
    } else if (req.BrokerId == c->node_id) {
        resp.ErrorCode = KERR_INVALID_REQUEST;
        snprintf(err, sizeof err, "the active controller cannot remove itself");
    } else {
        for (int i = 0; i < c->img.ntopics && !resp.ErrorCode; i++)
            for (int32_t p = 0; p < c->img.topics[i]->npartitions && !resp.ErrorCode; p++)
                if (mi_is_replica(&c->img.topics[i]->parts[p], req.BrokerId)) {
                    resp.ErrorCode = KERR_INVALID_REQUEST;
                    snprintf(err, sizeof err, "broker %d still holds replicas (%s-%d first): reassign them first",
                             req.BrokerId, c->img.topics[i]->name, p);
                }
    }
    if (!resp.ErrorCode) {
        struct obuf w;
        obuf_init(&w);
        mi_enc_unregister_broker(&w, req.BrokerId);
        struct cl_op *op = xcalloc(1, sizeof *op);
        if (!op) {
            obuf_free(&w);
            return API_CLOSE;
        }
        op->fn = unregistered;
        op->r = r;
        int rc = cluster_propose(c, &w, op);
        obuf_free(&w);
        if (rc == 0) {
            cluster_forget_member(b, req.BrokerId);
            return API_PARKED;
        }
        xfree(op);
        resp.ErrorCode = KERR_NOT_CONTROLLER;
    }
    if (err[0])
        resp.ErrorMessage = handler_kstr(r, err);
    UnregisterBrokerResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}
