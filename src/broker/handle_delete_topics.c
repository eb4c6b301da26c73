/* handle_delete_topics.c: DeleteTopics (key 20), v0-3, by name.  Data is
 * removed at once; parked fetches on the topic see it gone on their next
 * check. */
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster.h"
#include "common/log.h"
#include "storage/cleaner.h"

/* In a cluster the controller deletes: each topic is a metadata command
 * and the answer waits for all of them (they commit in order). */
struct delete_state {
    struct awaited aw; /* first: awaited_done finds it at r->state */
    struct DeleteTopicsResponse resp;
};

static void encode_deleted(struct request *r)
{
    struct delete_state *st = r->state;
    DeleteTopicsResponse_encode(&r->out, r->api_version, &st->resp);
}

static int delete_in_cluster(struct broker *b, struct request *r, const struct DeleteTopicsRequest *req)
{
    struct delete_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return API_CLOSE;
    memset(st, 0, sizeof *st);
    r->state = st;
    DeleteTopicsResponse_init(&st->resp);
    if (HANDLER_ITEMS(r, st->resp.Responses, req->TopicNames.count, DeleteTopicsResponse_DeletableTopicResult_init) <
        0)
        return API_CLOSE;
    st->aw = AWAITED_INIT(st->resp.Responses, struct DeleteTopicsResponse_DeletableTopicResult,
                          encode_deleted);
    for (int32_t i = 0; i < req->TopicNames.count; i++) {
        kstr name = req->TopicNames.items[i];
        struct DeleteTopicsResponse_DeletableTopicResult *res = &st->resp.Responses.items[i];
        res->Name = name;
        res->ErrorMessage = (kstr){NULL, -1};
        const char *why;
        const struct mi_topic *t = NULL;
        if (name.len < 0 || catalog_check_name(name.ptr, (size_t)name.len, &why) < 0)
            res->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
        else if (!b->delete_enable)
            res->ErrorCode = KERR_TOPIC_DELETION_DISABLED;
        else if (!(t = meta_image_topic(cluster_image(b), name.ptr, (size_t)name.len)))
            res->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        else if (name.len >= 2 && name.ptr[0] == '_' && name.ptr[1] == '_')
            res->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION; /* the group coordinators live there */
        else if (!cluster_is_controller(b))
            res->ErrorCode = KERR_NOT_CONTROLLER;
        if (t)
            res->TopicId = t->id;
        if (res->ErrorCode)
            continue;
        int rc = cluster_delete_topic(b, t, r, awaited_done);
        if (rc) {
            res->ErrorCode = (int16_t)rc;
            continue;
        }
        awaited_expect(&st->aw, &res->ErrorCode); /* answered by awaited_done */
    }
    return awaited_proposed(r, &st->aw);
}

int handle_delete_topics(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DeleteTopicsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (DeleteTopicsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    if (b->cluster)
        return delete_in_cluster(b, r, &req);
    struct DeleteTopicsResponse resp;
    DeleteTopicsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Responses, req.TopicNames.count, DeleteTopicsResponse_DeletableTopicResult_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.TopicNames.count; i++) {
        kstr name = req.TopicNames.items[i];
        struct DeleteTopicsResponse_DeletableTopicResult *res = &resp.Responses.items[i];
        res->Name = name;
        const char *why;
        if (name.len < 0 || catalog_check_name(name.ptr, (size_t)name.len, &why) < 0) {
            res->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        if (!b->delete_enable) {
            res->ErrorCode = KERR_TOPIC_DELETION_DISABLED;
            continue;
        }
        struct topic *t = catalog_find(&b->cat, name.ptr, (size_t)name.len);
        if (!t) {
            res->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        res->TopicId = t->id;
        if (t->internal) {
            /* the group coordinator lives in __consumer_offsets */
            res->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        for (int32_t k = 0; k < t->npartitions; k++)
            cleaner_forget(b->cleaner, t->parts[k]->log);
        catalog_delete(&b->cat, t);
        /* parked fetches may refer to it: let them answer now */
        b->appends++;
    }
    DeleteTopicsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
