/* handle_delete_records.c: DeleteRecords (key 21), v0-1: moves a
 * partition's log start offset forward (-1 means the high watermark);
 * segments wholly below it are deleted, and the rest of the first segment
 * is no longer served. */
#include "broker/handler.h"
#include "cluster/cluster.h"

int handle_delete_records(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DeleteRecordsRequest req;
    if (DeleteRecordsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct DeleteRecordsResponse resp;
    DeleteRecordsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, DeleteRecordsResponse_DeleteRecordsTopicResult_init) < 0)
        return API_CLOSE;
    for (int32_t t = 0; t < req.Topics.count; t++) {
        struct DeleteRecordsRequest_DeleteRecordsTopic *qt = &req.Topics.items[t];
        struct DeleteRecordsResponse_DeleteRecordsTopicResult *rt = &resp.Topics.items[t];
        rt->Name = qt->Name;
        struct topic *top = qt->Name.len > 0 ? catalog_find(&b->cat, qt->Name.ptr, (size_t)qt->Name.len) : NULL;
        if (HANDLER_ITEMS(r, rt->Partitions, qt->Partitions.count,
                          DeleteRecordsResponse_DeleteRecordsPartitionResult_init) < 0)
            return API_CLOSE;
        for (int32_t i = 0; i < qt->Partitions.count; i++) {
            struct DeleteRecordsRequest_DeleteRecordsPartition *qp = &qt->Partitions.items[i];
            struct DeleteRecordsResponse_DeleteRecordsPartitionResult *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = qp->PartitionIndex;
            rp->LowWatermark = -1;
            struct partition *p = catalog_partition(top, qp->PartitionIndex);
            if (!p) {
                rp->ErrorCode = (int16_t)handler_no_replica_error(b, qt->Name, qp->PartitionIndex);
                continue;
            }
            int lerr = cluster_check_leader(b, p);
            if (lerr) {
                rp->ErrorCode = (int16_t)lerr;
                continue;
            }
            /* -1: up to the high watermark (followers get the new log start
             * with their next fetch) */
            int64_t off = qp->Offset == -1 ? partition_hw(p) : qp->Offset;
            if (off > partition_hw(p)) {
                rp->ErrorCode = KERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            rp->ErrorCode = (int16_t)plog_delete_records(p->log, off);
            rp->LowWatermark = rp->ErrorCode ? -1 : p->log->log_start_offset;
        }
    }
    DeleteRecordsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
