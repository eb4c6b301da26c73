/* handle_delete_topics.c: DeleteTopics (key 20), v0-3, by name.  Data is
 * removed at once; parked fetches on the topic see it gone on their next
 * check. */
#include "broker/handler.h"
#include "common/log.h"
#include "storage/cleaner.h"

int handle_delete_topics(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DeleteTopicsRequest req;
    if (DeleteTopicsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
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
