/* handle_create_partitions.c: CreatePartitions (key 37), v0-1: grows a
 * topic; assignments, when given, must put every new partition on this
 * broker. */
#include <stdio.h>

#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster.h"

/* In a cluster the controller adds the partitions (with replica
 * assignments of its own); the answer waits for the commands. */
struct grow_state {
    struct awaited aw; /* first: awaited_done finds it at r->state */
    struct CreatePartitionsResponse resp;
};

static void encode_grown(struct request *r)
{
    struct grow_state *st = r->state;
    CreatePartitionsResponse_encode(&r->out, r->api_version, &st->resp);
}

static int grow_in_cluster(struct broker *b, struct request *r, const struct CreatePartitionsRequest *req)
{
    struct grow_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return API_CLOSE;
    memset(st, 0, sizeof *st);
    r->state = st;
    CreatePartitionsResponse_init(&st->resp);
    if (HANDLER_ITEMS(r, st->resp.Results, req->Topics.count,
                      CreatePartitionsResponse_CreatePartitionsTopicResult_init) < 0)
        return API_CLOSE;
    st->aw = AWAITED_INIT(st->resp.Results, struct CreatePartitionsResponse_CreatePartitionsTopicResult,
                          encode_grown);
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const struct CreatePartitionsRequest_CreatePartitionsTopic *ct = &req->Topics.items[i];
        struct CreatePartitionsResponse_CreatePartitionsTopicResult *res = &st->resp.Results.items[i];
        res->Name = ct->Name;
        res->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        int code = 0;
        const struct mi_topic *t =
            ct->Name.len > 0 ? meta_image_topic(cluster_image(b), ct->Name.ptr, (size_t)ct->Name.len) : NULL;
        if (!t) {
            code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(err, sizeof err, "The topic does not exist.");
        } else if (t->name[0] == '_' && t->name[1] == '_') {
            code = KERR_INVALID_REQUEST;
            snprintf(err, sizeof err, "The partitions of internal topic %s cannot change.", t->name);
        } else if (ct->Assignments.count >= 0) {
            code = KERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(err, sizeof err, "The controller places new partitions itself; move replicas afterwards "
                                      "with AlterPartitionReassignments (shopstream cluster reassign).");
        } else if (!cluster_is_controller(b)) {
            code = KERR_NOT_CONTROLLER;
            snprintf(err, sizeof err, "This is not the correct controller for this cluster.");
        } else if (ct->Count <= t->npartitions) {
            code = KERR_INVALID_PARTITIONS;
            snprintf(err, sizeof err, "Topic currently has %d partitions, which is higher than the requested %d.",
                     t->npartitions, ct->Count);
        } else if (!req->ValidateOnly) {
            code = cluster_create_partitions(b, t, ct->Count, r, awaited_done, err, sizeof err);
            if (!code) {
                awaited_expect(&st->aw, &res->ErrorCode); /* answered by awaited_done */
                continue;
            }
        }
        res->ErrorCode = (int16_t)code;
        if (code)
            res->ErrorMessage = handler_kstr(r, err);
    }
    return awaited_proposed(r, &st->aw);
}

int handle_create_partitions(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct CreatePartitionsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (CreatePartitionsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    if (b->cluster)
        return grow_in_cluster(b, r, &req);
    struct CreatePartitionsResponse resp;
    CreatePartitionsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Results, req.Topics.count, CreatePartitionsResponse_CreatePartitionsTopicResult_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Topics.count; i++) {
        const struct CreatePartitionsRequest_CreatePartitionsTopic *ct = &req.Topics.items[i];
        struct CreatePartitionsResponse_CreatePartitionsTopicResult *res = &resp.Results.items[i];
        res->Name = ct->Name;
        char err[512] = "";
        int code = 0;
        struct topic *t = ct->Name.len > 0 ? catalog_find(&b->cat, ct->Name.ptr, (size_t)ct->Name.len) : NULL;
        if (!t) {
            code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(err, sizeof err, "The topic does not exist.");
        } else if (t->internal) {
            code = KERR_INVALID_REQUEST;
            snprintf(err, sizeof err, "The partitions of internal topic %s cannot change.", t->name);
        } else if (ct->Count <= t->npartitions) {
            code = KERR_INVALID_PARTITIONS;
            snprintf(err, sizeof err, "Topic currently has %d partitions, which is higher than the requested %d.",
                     t->npartitions, ct->Count);
        } else if (ct->Assignments.count >= 0 && ct->Assignments.count != ct->Count - t->npartitions) {
            code = KERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(err, sizeof err, "Increasing the number of partitions by %d but %d assignments provided.",
                     ct->Count - t->npartitions, ct->Assignments.count);
        } else {
            for (int32_t k = 0; k < ct->Assignments.count && !code; k++) {
                const struct CreatePartitionsRequest_CreatePartitionsAssignment *a = &ct->Assignments.items[k];
                if (a->BrokerIds.count != 1 || a->BrokerIds.items[0] != b->node_id) {
                    code = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(err, sizeof err, "Every replica must be on broker %d.", b->node_id);
                }
            }
            if (!code && !req.ValidateOnly)
                code = catalog_add_partitions(&b->cat, t, ct->Count, err, sizeof err);
        }
        res->ErrorCode = (int16_t)code;
        res->ErrorMessage = code ? handler_kstr(r, err) : (kstr){NULL, -1};
    }
    CreatePartitionsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
