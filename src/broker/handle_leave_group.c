/* handle_leave_group.c: LeaveGroup (key 13), v0-3.  v0-2 name one member;
 * v3+ a batch of members (by member id or group instance id).  A group this
 * broker does not coordinate gets NOT_COORDINATOR and no member results. */
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"

int handle_leave_group(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct LeaveGroupRequest req;
    if (LeaveGroupRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct LeaveGroupResponse resp;
    LeaveGroupResponse_init(&resp);
    int cerr = req.GroupId.len > 0 ? gstore_check_coordinator(b, req.GroupId) : 0;
    struct group *g = cerr ? NULL : coord_find(b, req.GroupId);
    if (req.GroupId.len <= 0) {
        resp.ErrorCode = KERR_INVALID_GROUP_ID;
    } else if (cerr) {
        resp.ErrorCode = (int16_t)cerr;
    } else if (v < 3) {
        resp.ErrorCode = g ? (int16_t)group_leave_member(b, g, req.MemberId, (kstr){NULL, -1})
                           : KERR_UNKNOWN_MEMBER_ID;
    } else {
        /* v3+: the outcome is per member; an unknown group knows none of them */
        if (HANDLER_ITEMS(r, resp.Members, req.Members.count, LeaveGroupResponse_MemberResponse_init) < 0)
            return API_CLOSE;
        for (int32_t i = 0; i < req.Members.count; i++) {
            struct LeaveGroupRequest_MemberIdentity *mi = &req.Members.items[i];
            struct LeaveGroupResponse_MemberResponse *mr = &resp.Members.items[i];
            mr->MemberId = mi->MemberId;
            mr->GroupInstanceId = mi->GroupInstanceId;
            mr->ErrorCode = g ? (int16_t)group_leave_member(b, g, mi->MemberId, mi->GroupInstanceId)
                              : KERR_UNKNOWN_MEMBER_ID;
        }
    }
    LeaveGroupResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
