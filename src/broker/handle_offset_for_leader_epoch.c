/* handle_offset_for_leader_epoch.c: OffsetForLeaderEpoch (key 23), v0-3.
 * For a leader epoch, the end offset of that epoch on this leader: where a
 * follower (or a consumer checking for log truncation) must cut a tail that
 * the leader never had.  Answered from the partition's leader epoch cache
 * (storage/epoch_cache.h) by the partition's leader. */
#include "broker/handler.h"
#include "cluster/cluster.h"
#include "storage/catalog.h"

int handle_offset_for_leader_epoch(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct OffsetForLeaderEpochRequest req;
    if (OffsetForLeaderEpochRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct OffsetForLeaderEpochResponse resp;
    OffsetForLeaderEpochResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_init) <
        0)
        return API_CLOSE;
    for (int32_t t = 0; t < req.Topics.count; t++) {
        const struct OffsetForLeaderEpochRequest_OffsetForLeaderTopic *qt = &req.Topics.items[t];
        struct OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *rt = &resp.Topics.items[t];
        rt->Topic = qt->Topic;
        struct topic *top = qt->Topic.len > 0 ? catalog_find(&b->cat, qt->Topic.ptr, (size_t)qt->Topic.len) : NULL;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count, OffsetForLeaderEpochResponse_EpochEndOffset_init) <
            0)
            return API_CLOSE;
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            const struct OffsetForLeaderEpochRequest_OffsetForLeaderPartition *qp = &qt->Partitions.items[i];
            struct OffsetForLeaderEpochResponse_EpochEndOffset *rp = &rt->Partitions.items[i];
            rp->Partition = qp->Partition;
            rp->LeaderEpoch = -1;
            rp->EndOffset = -1;
            struct partition *p = catalog_partition(top, qp->Partition);
            int err = p ? cluster_check_leader(b, p) : handler_no_replica_error(b, qt->Topic, qp->Partition);
            int32_t epoch = p && p->repl ? p->repl->leader_epoch : 0;
            if (!err && v >= 2 && qp->CurrentLeaderEpoch >= 0) {
                if (qp->CurrentLeaderEpoch < epoch)
                    err = KERR_FENCED_LEADER_EPOCH;
                else if (qp->CurrentLeaderEpoch > epoch)
                    err = KERR_UNKNOWN_LEADER_EPOCH;
            }
            rp->ErrorCode = (int16_t)err;
            if (err)
                continue;
            ecache_end_offset_for(&p->log->epochs, qp->LeaderEpoch, p->log->next_offset, &rp->LeaderEpoch,
                                  &rp->EndOffset);
        }
    }
    OffsetForLeaderEpochResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
