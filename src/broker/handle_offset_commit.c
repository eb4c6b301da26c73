/* handle_offset_commit.c: OffsetCommit (key 8), v0-7.  The offsets are
 * written to __consumer_offsets before the response; with flush.messages=1
 * on that topic (the durable setting) the response also waits for fsync.
 * In a cluster the response waits until the write is replicated (the
 * partition's high watermark passes it), and only then do the offsets
 * become visible to OffsetFetch; a failed wait answers NOT_COORDINATOR so
 * that the client finds the coordinator again. */
#include <stdio.h>
#include <string.h>

#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"
#include "common/clock.h"
#include "storage/flusher.h"

struct commit_state {
    struct broker *b;
    struct OffsetCommitResponse resp;
    /* cluster mode: what was written, applied to the group once replicated */
    bool replicate;
    struct gstore_commit *commits; /* in the request's arena */
    int n;
    char *group_id;                /* in the request's arena */
    int64_t commit_ms;
    struct gstore_pos pos;
    struct repl_wait w;
    int16_t werr;                  /* the wait's outcome */
};

/* Sets err on every partition that has no error yet. */
static void fail_all(struct OffsetCommitResponse *resp, int16_t err)
{
    for (int32_t t = 0; t < resp->Topics.count; t++)
        for (int32_t p = 0; p < resp->Topics.items[t].Partitions.count; p++)
            if (!resp->Topics.items[t].Partitions.items[p].ErrorCode)
                resp->Topics.items[t].Partitions.items[p].ErrorCode = err;
}

/* Cluster mode: the write is replicated (or failed): the offsets become the
 * group's, unless it was unloaded meanwhile. */
static void commit_apply(struct commit_state *st)
{
    if (!st->replicate)
        return;
    st->replicate = false;
    if (st->werr) {
        fail_all(&st->resp, (int16_t)gstore_commit_error(st->werr));
        return;
    }
    struct group *g = coord_find(st->b, kstr_c(st->group_id));
    for (int i = 0; g && i < st->n; i++)
        group_set_offset(g, st->commits[i].topic, st->commits[i].partition, st->commits[i].offset,
                         st->commits[i].leader_epoch, st->commits[i].metadata, st->commit_ms, st->pos.log_end);
}

/* Done callback of the replication wait. */
static void commit_replicated(struct request *r)
{
    struct commit_state *st = r->state;
    commit_apply(st);
    if (r->conn)
        OffsetCommitResponse_encode(&r->out, r->api_version, &st->resp);
    request_done(r);
}

static void commit_flushed(void *arg, int err)
{
    struct request *r = arg;
    struct commit_state *st = r->state;
    if (err) {
        for (int32_t t = 0; t < st->resp.Topics.count; t++)
            for (int32_t p = 0; p < st->resp.Topics.items[t].Partitions.count; p++)
                st->resp.Topics.items[t].Partitions.items[p].ErrorCode = KERR_KAFKA_STORAGE_ERROR;
        st->replicate = false; /* not acknowledged: not applied either */
    }
    if (st->replicate) {
        int rc = gstore_wait(st->b, r, &st->pos, &st->w, &st->werr, commit_replicated);
        if (rc == 0)
            return; /* now waits for the followers */
        if (rc < 0)
            st->werr = KERR_UNKNOWN_SERVER_ERROR;
    }
    commit_replicated(r);
}

int handle_offset_commit(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct OffsetCommitRequest req;
    struct commit_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st || OffsetCommitRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    memset(st, 0, sizeof *st);
    st->b = b;
    r->state = st;
    struct OffsetCommitResponse *resp = &st->resp;
    OffsetCommitResponse_init(resp);
    struct group *g = NULL;
    int gerr = req.GroupId.len > 0 ? gstore_check_coordinator(b, req.GroupId) : 0;
    if (!gerr)
        gerr = group_check_commit(b, req.GroupId, v >= 1 ? req.GenerationIdOrMemberEpoch : -1,
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
        struct topic_view tv;
        bool known = handler_topic_view(b, qt->Name, &tv);
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            struct OffsetCommitRequest_OffsetCommitRequestPartition *qp = &qt->Partitions.items[i];
            struct OffsetCommitResponse_OffsetCommitResponsePartition *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = qp->PartitionIndex;
            if (gerr)
                rp->ErrorCode = (int16_t)gerr;
            else if (!known || qp->PartitionIndex < 0 || qp->PartitionIndex >= tv.npartitions)
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
        int err = gstore_write_offsets(b, g, commits, n, now, fds, &nfds, &wait, &st->pos);
        if (err) {
            fail_all(resp, (int16_t)err);
        } else if (!st->pos.replicated) {
            /* alone: stored once appended */
            for (int i = 0; i < n; i++)
                group_set_offset(g, commits[i].topic, commits[i].partition, commits[i].offset,
                                 commits[i].leader_epoch, commits[i].metadata, now, st->pos.log_end);
        } else {
            st->replicate = true;
            st->commits = commits;
            st->n = n;
            st->group_id = handler_cstr(r, req.GroupId);
            st->commit_ms = now;
            if (!st->group_id)
                return API_CLOSE;
        }
    }
    if (nfds > 0) {
        int rc = flusher_submit(b->flusher, fds, nfds, wait ? commit_flushed : NULL, r);
        if (rc == 0 && wait)
            return API_PARKED;
    }
    if (st->replicate) {
        int rc = gstore_wait(b, r, &st->pos, &st->w, &st->werr, commit_replicated);
        if (rc == 0)
            return API_PARKED;
        if (rc < 0)
            st->werr = KERR_UNKNOWN_SERVER_ERROR;
        commit_apply(st);
    }
    OffsetCommitResponse_encode(&r->out, v, resp);
    return API_DONE;
}
