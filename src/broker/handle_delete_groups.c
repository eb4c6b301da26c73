/* handle_delete_groups.c: DeleteGroups (key 42), v0-1: only groups without
 * members; their offsets are tombstoned in __consumer_offsets. */
#include "broker/group.h"
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
        resp.Results.items[i].GroupId = req.GroupsNames.items[i];
        resp.Results.items[i].ErrorCode = req.GroupsNames.items[i].len <= 0
                                              ? KERR_INVALID_GROUP_ID
                                              : (int16_t)group_delete(b, req.GroupsNames.items[i]);
    }
    DeleteGroupsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
