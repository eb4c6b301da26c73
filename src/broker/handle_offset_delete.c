/* handle_offset_delete.c: OffsetDelete (key 47), v0: removes committed
 * offsets of a group, refusing topics an active member subscribes to. */
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"

int handle_offset_delete(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct OffsetDeleteRequest req;
    if (OffsetDeleteRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct OffsetDeleteResponse resp;
    OffsetDeleteResponse_init(&resp);
    int cerr = req.GroupId.len > 0 ? gstore_check_coordinator(b, req.GroupId) : 0;
    struct group *g = cerr ? NULL : coord_find(b, req.GroupId);
    if (req.GroupId.len <= 0)
        resp.ErrorCode = KERR_INVALID_GROUP_ID;
    else if (cerr)
        resp.ErrorCode = (int16_t)cerr;
    else if (!g)
        resp.ErrorCode = KERR_GROUP_ID_NOT_FOUND;
    else if (g->nmembers > 0 && (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0))
        resp.ErrorCode = KERR_NON_EMPTY_GROUP;
    if (resp.ErrorCode) {
        OffsetDeleteResponse_encode(&r->out, v, &resp);
        return API_DONE;
    }
    if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, OffsetDeleteResponse_OffsetDeleteResponseTopic_init) < 0)
        return API_CLOSE;
    for (int32_t t = 0; t < req.Topics.count; t++) {
        struct OffsetDeleteRequest_OffsetDeleteRequestTopic *qt = &req.Topics.items[t];
        struct OffsetDeleteResponse_OffsetDeleteResponseTopic *rt = &resp.Topics.items[t];
        rt->Name = qt->Name;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count,
                          OffsetDeleteResponse_OffsetDeleteResponsePartition_init) < 0)
            return API_CLOSE;
        char *topic = handler_cstr(r, qt->Name);
        bool subscribed = group_subscribed(g, topic);
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            struct OffsetDeleteResponse_OffsetDeleteResponsePartition *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = qt->Partitions.items[i].PartitionIndex;
            struct topic_view tv;
            if (!handler_topic_view(b, qt->Name, &tv)) {
                rp->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (subscribed) {
                rp->ErrorCode = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            struct gstore_commit c = {topic, rp->PartitionIndex, 0, -1, NULL};
            if (group_get_offset(g, topic, strlen(topic), rp->PartitionIndex)) {
                int err = gstore_delete_offsets(b, g, &c, 1);
                if (err)
                    rp->ErrorCode = (int16_t)err;
                else
                    group_remove_offset(g, topic, rp->PartitionIndex);
            }
        }
    }
    OffsetDeleteResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
