/* handle_list_offsets.c: ListOffsets (key 2), v0-3.  Timestamp -2 is the
 * log start, -1 the log end (the last stable offset equals it: there are no
 * transactions), otherwise the first offset whose batch reaches the time.
 * v0 answers with an array of at most MaxNumOffsets offsets. */
#include "broker/handler.h"
#include "cluster/cluster.h"

int handle_list_offsets(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct ListOffsetsRequest req;
    if (ListOffsetsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct ListOffsetsResponse resp;
    ListOffsetsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, ListOffsetsResponse_ListOffsetsTopicResponse_init) < 0)
        return API_CLOSE;
    for (int32_t t = 0; t < req.Topics.count; t++) {
        struct ListOffsetsRequest_ListOffsetsTopic *qt = &req.Topics.items[t];
        struct ListOffsetsResponse_ListOffsetsTopicResponse *rt = &resp.Topics.items[t];
        rt->Name = qt->Name;
        struct topic *top = qt->Name.len > 0 ? catalog_find(&b->cat, qt->Name.ptr, (size_t)qt->Name.len) : NULL;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count,
                          ListOffsetsResponse_ListOffsetsPartitionResponse_init) < 0)
            return API_CLOSE;
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            struct ListOffsetsRequest_ListOffsetsPartition *qp = &qt->Partitions.items[i];
            struct ListOffsetsResponse_ListOffsetsPartitionResponse *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = qp->PartitionIndex;
            rp->Timestamp = -1;
            rp->Offset = -1;
            rp->LeaderEpoch = -1;
            struct partition *p = catalog_partition(top, qp->PartitionIndex);
            if (!p) {
                rp->ErrorCode = (int16_t)handler_no_replica_error(b, qt->Name, qp->PartitionIndex);
                continue;
            }
            if (req.ReplicaId >= 0 && !b->cluster) {
                rp->ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
                continue;
            }
            int lerr = cluster_check_leader(b, p);
            if (lerr) {
                rp->ErrorCode = (int16_t)lerr;
                continue;
            }
            struct plog *lg = p->log;
            int64_t off, found_ts = -1;
            if (qp->Timestamp == -2)
                off = lg->log_start_offset;
            else if (qp->Timestamp == -1)
                off = partition_hw(p); /* consumers see up to the high watermark */
            else if (qp->Timestamp < 0) {
                rp->ErrorCode = KERR_INVALID_REQUEST;
                continue;
            } else
                off = plog_offset_for_time(lg, qp->Timestamp, &found_ts);
            rp->LeaderEpoch = p->repl ? p->repl->leader_epoch : 0;
            if (v == 0) {
                /* v0: offsets in descending order; latest also lists the start */
                int32_t max = qp->MaxNumOffsets;
                int64_t list[2];
                int n = 0;
                if (off >= 0)
                    list[n++] = off;
                if (qp->Timestamp == -1 && lg->log_start_offset != off)
                    list[n++] = lg->log_start_offset;
                if (max >= 0 && n > max)
                    n = max;
                int64_t *items = arena_alloc(&r->arena, 2 * sizeof *items);
                if (!items)
                    return API_CLOSE;
                for (int k = 0; k < n; k++)
                    items[k] = list[k];
                rp->OldStyleOffsets.count = n;
                rp->OldStyleOffsets.items = items;
            } else {
                rp->Offset = off;
                rp->Timestamp = found_ts;
            }
        }
    }
    ListOffsetsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
