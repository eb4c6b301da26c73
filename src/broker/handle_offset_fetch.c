/* handle_offset_fetch.c: OffsetFetch (key 9), v0-5.  A partition without a
 * committed offset answers -1 with no error; a null topic list (v2+) asks
 * for every partition the group has committed.  Offsets are visible once
 * stored (in a cluster: replicated). */
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"

static void fill(struct OffsetFetchResponse_OffsetFetchResponsePartition *rp, const struct group_offset *o)
{
    rp->CommittedOffset = o ? o->offset : -1;
    rp->CommittedLeaderEpoch = o ? o->leader_epoch : -1;
    rp->Metadata = kstr_c(o ? o->metadata : "");
}

int handle_offset_fetch(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct OffsetFetchRequest req;
    if (OffsetFetchRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct OffsetFetchResponse resp;
    OffsetFetchResponse_init(&resp);
    int cerr = req.GroupId.len > 0 ? gstore_check_coordinator(b, req.GroupId) : 0;
    struct group *g = cerr ? NULL : coord_find(b, req.GroupId);
    if (req.GroupId.len <= 0)
        resp.ErrorCode = KERR_INVALID_GROUP_ID;
    else if (cerr)
        resp.ErrorCode = (int16_t)cerr;
    if (req.Topics.count < 0) {
        /* all committed offsets, grouped by topic */
        int n = g ? g->noffsets : 0;
        if (HANDLER_ITEMS(r, resp.Topics, n, OffsetFetchResponse_OffsetFetchResponseTopic_init) < 0)
            return API_CLOSE;
        int nt = 0;
        for (int i = 0; i < n; i++) {
            struct group_offset *o = &g->offsets[i];
            int t;
            for (t = 0; t < nt; t++)
                if (kstr_eq(resp.Topics.items[t].Name, o->topic))
                    break;
            struct OffsetFetchResponse_OffsetFetchResponseTopic *rt = &resp.Topics.items[t];
            if (t == nt) {
                nt++;
                rt->Name = kstr_c(o->topic);
                if (HANDLER_ITEMS(r, rt->Partitions, n, OffsetFetchResponse_OffsetFetchResponsePartition_init) < 0)
                    return API_CLOSE;
                rt->Partitions.count = 0;
            }
            struct OffsetFetchResponse_OffsetFetchResponsePartition *rp = &rt->Partitions.items[rt->Partitions.count++];
            rp->PartitionIndex = o->partition;
            fill(rp, o);
        }
        resp.Topics.count = nt;
    } else {
        if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, OffsetFetchResponse_OffsetFetchResponseTopic_init) < 0)
            return API_CLOSE;
        for (int32_t t = 0; t < req.Topics.count; t++) {
            struct OffsetFetchRequest_OffsetFetchRequestTopic *qt = &req.Topics.items[t];
            struct OffsetFetchResponse_OffsetFetchResponseTopic *rt = &resp.Topics.items[t];
            rt->Name = qt->Name;
            if (HANDLER_ITEMS(r, rt->Partitions, qt->PartitionIndexes.count,
                              OffsetFetchResponse_OffsetFetchResponsePartition_init) < 0)
                return API_CLOSE;
            for (int32_t i = 0; i < qt->PartitionIndexes.count; i++) {
                struct OffsetFetchResponse_OffsetFetchResponsePartition *rp = &rt->Partitions.items[i];
                rp->PartitionIndex = qt->PartitionIndexes.items[i];
                struct group_offset *o = g && qt->Name.len > 0
                                             ? group_get_offset(g, qt->Name.ptr, (size_t)qt->Name.len, rp->PartitionIndex)
                                             : NULL;
                fill(rp, o);
                /* v0-1 have no top-level error: report it per partition */
                if (v < 2 && resp.ErrorCode)
                    rp->ErrorCode = resp.ErrorCode;
            }
        }
    }
    OffsetFetchResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
