/* handle_delete_groups.c: DeleteGroups (key 42), v0-1: only groups without
 * members; their offsets are tombstoned in __consumer_offsets.  Each group
 * must be coordinated here (else NOT_COORDINATOR). */
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"

int handle_delete_groups(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DeleteGroupsRequest req;
    if (DeleteGroupsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct DeleteGroupsResponse resp;
    DeleteGroupsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Results, req.GroupsNames.count, DeleteGroupsResponse_DeletableGroupResult_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.GroupsNames.count; i++) {
        kstr id = req.GroupsNames.items[i];
        int err = id.len <= 0 ? KERR_INVALID_GROUP_ID : gstore_check_coordinator(b, id);
        resp.Results.items[i].GroupId = id;
        resp.Results.items[i].ErrorCode = (int16_t)(err ? err : group_delete(b, id));
    }
    DeleteGroupsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
