/* handle_offset_commit.c: OffsetCommit (key 8), v0-7.  The offsets are
 * written to __consumer_offsets before the response; with flush.messages=1
 * on that topic (the durable setting) the response also waits for fsync. */
#include <stdio.h>

#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"
#include "common/clock.h"
#include "storage/flusher.h"

struct commit_state {
    struct OffsetCommitResponse resp;
};

static void commit_flushed(void *arg, int err)
{
    struct request *r = arg;
    struct commit_state *st = r->state;
    if (err)
        for (int32_t t = 0; t < st->resp.Topics.count; t++)
            for (int32_t p = 0; p < st->resp.Topics.items[t].Partitions.count; p++)
                st->resp.Topics.items[t].Partitions.items[p].ErrorCode = KERR_KAFKA_STORAGE_ERROR;
    if (r->conn)
        OffsetCommitResponse_encode(&r->out, r->api_version, &st->resp);
    request_done(r);
}

int handle_offset_commit(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct OffsetCommitRequest req;
    struct commit_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st || OffsetCommitRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    r->state = st;
    struct OffsetCommitResponse *resp = &st->resp;
    OffsetCommitResponse_init(resp);
    struct group *g = NULL;
    int gerr = group_check_commit(b, req.GroupId, v >= 1 ? req.GenerationIdOrMemberEpoch : -1,
                                  v >= 1 ? req.MemberId : (kstr){"", 0}, req.GroupInstanceId, &g);
    if (HANDLER_ITEMS(r, resp->Topics, req.Topics.count, OffsetCommitResponse_OffsetCommitResponseTopic_init) < 0)
        return API_CLOSE;
    int total = 0;
    for (int32_t t = 0; t < req.Topics.count; t++)
        total += req.Topics.items[t].Partitions.count;
    struct gstore_commit *commits = arena_alloc(&r->arena, (size_t)(total + 1) * sizeof *commits);
    if (!commits)
        return API_CLOSE;
    int n = 0;
    int64_t now = clock_wall_ms();
    for (int32_t t = 0; t < req.Topics.count; t++) {
        struct OffsetCommitRequest_OffsetCommitRequestTopic *qt = &req.Topics.items[t];
        struct OffsetCommitResponse_OffsetCommitResponseTopic *rt = &resp->Topics.items[t];
        rt->Name = qt->Name;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count,
                          OffsetCommitResponse_OffsetCommitResponsePartition_init) < 0)
            return API_CLOSE;
        struct topic *top = qt->Name.len > 0 ? catalog_find(&b->cat, qt->Name.ptr, (size_t)qt->Name.len) : NULL;
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            struct OffsetCommitRequest_OffsetCommitRequestPartition *qp = &qt->Partitions.items[i];
            struct OffsetCommitResponse_OffsetCommitResponsePartition *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = qp->PartitionIndex;
            if (gerr)
                rp->ErrorCode = (int16_t)gerr;
            else if (!catalog_partition(top, qp->PartitionIndex))
                rp->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (qp->CommittedMetadata.len > b->coord->max_metadata_bytes)
                rp->ErrorCode = KERR_OFFSET_METADATA_TOO_LARGE;
            else if (qp->CommittedOffset < 0)
                rp->ErrorCode = KERR_INVALID_COMMIT_OFFSET_SIZE;
            if (rp->ErrorCode)
                continue;
            commits[n++] = (struct gstore_commit){handler_cstr(r, qt->Name), qp->PartitionIndex, qp->CommittedOffset,
                                                  v >= 6 ? qp->CommittedLeaderEpoch : -1,
                                                  handler_cstr(r, qp->CommittedMetadata)};
        }
    }
    int fds[2], nfds = 0;
    bool wait = false;
    if (n > 0) {
        int err = gstore_write_offsets(b, g, commits, n, now, fds, &nfds, &wait);
        if (!err) {
            for (int i = 0; i < n; i++)
                group_set_offset(g, commits[i].topic, commits[i].partition, commits[i].offset,
                                 commits[i].leader_epoch, commits[i].metadata, now);
        } else {
            for (int32_t t = 0; t < resp->Topics.count; t++)
                for (int32_t p = 0; p < resp->Topics.items[t].Partitions.count; p++)
                    if (!resp->Topics.items[t].Partitions.items[p].ErrorCode)
                        resp->Topics.items[t].Partitions.items[p].ErrorCode = (int16_t)err;
        }
    }
    if (nfds > 0) {
        int rc = flusher_submit(b->flusher, fds, nfds, wait ? commit_flushed : NULL, r);
        if (rc == 0 && wait)
            return API_PARKED;
    }
    OffsetCommitResponse_encode(&r->out, v, resp);
    return API_DONE;
}
