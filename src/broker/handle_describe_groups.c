/* handle_describe_groups.c: DescribeGroups (key 15), v0-4.  An unknown
 * group is described as Dead with no error, as Kafka does; one this broker
 * does not coordinate carries NOT_COORDINATOR. */
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"

int handle_describe_groups(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DescribeGroupsRequest req;
    if (DescribeGroupsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct DescribeGroupsResponse resp;
    DescribeGroupsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Groups, req.Groups.count, DescribeGroupsResponse_DescribedGroup_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Groups.count; i++) {
        struct DescribeGroupsResponse_DescribedGroup *dg = &resp.Groups.items[i];
        dg->GroupId = req.Groups.items[i];
        dg->AuthorizedOperations = INT32_MIN;
        if (req.Groups.items[i].len <= 0) {
            dg->ErrorCode = KERR_INVALID_GROUP_ID;
            continue;
        }
        int cerr = gstore_check_coordinator(b, req.Groups.items[i]);
        if (cerr) {
            dg->ErrorCode = (int16_t)cerr;
            dg->GroupState = kstr_c("");
            dg->ProtocolType = kstr_c("");
            dg->ProtocolData = kstr_c("");
            continue;
        }
        struct group *g = coord_find(b, req.Groups.items[i]);
        if (!g) {
            dg->GroupState = kstr_c("Dead");
            dg->ProtocolType = kstr_c("");
            dg->ProtocolData = kstr_c("");
            continue;
        }
        dg->GroupState = kstr_c(group_state_name(g->state));
        dg->ProtocolType = kstr_c(g->protocol_type ? g->protocol_type : "");
        /* as Kafka: the protocol, member metadata and assignments are shown
         * only once the group is Stable */
        bool stable = g->state == GROUP_STABLE;
        dg->ProtocolData = kstr_c(stable && g->protocol ? g->protocol : "");
        if (HANDLER_ITEMS(r, dg->Members, g->nmembers, DescribeGroupsResponse_DescribedGroupMember_init) < 0)
            return API_CLOSE;
        for (int k = 0; k < g->nmembers; k++) {
            struct group_member *m = g->members[k];
            struct DescribeGroupsResponse_DescribedGroupMember *dm = &dg->Members.items[k];
            dm->MemberId = kstr_c(m->id);
            dm->GroupInstanceId = kstr_c(m->instance_id);
            dm->ClientId = kstr_c(m->client_id ? m->client_id : "");
            dm->ClientHost = kstr_c(m->client_host ? m->client_host : "");
            dm->MemberMetadata = (kbytes){NULL, 0};
            dm->MemberAssignment = (kbytes){NULL, 0};
            if (!stable)
                continue;
            for (int p = 0; p < m->nprotocols; p++)
                if (g->protocol && strcmp(m->protocols[p].name, g->protocol) == 0)
                    dm->MemberMetadata = (kbytes){m->protocols[p].metadata, m->protocols[p].len};
            dm->MemberAssignment = (kbytes){m->assignment, m->assignment ? m->assignment_len : 0};
        }
    }
    DescribeGroupsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
