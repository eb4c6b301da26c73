/* handle_list_groups.c: ListGroups (key 16), v0-2: the groups this broker
 * coordinates (in a cluster only those of partitions it leads are in
 * memory). */
#include "broker/group.h"
#include "broker/handler.h"

int handle_list_groups(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct ListGroupsRequest req;
    if (ListGroupsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct ListGroupsResponse resp;
    ListGroupsResponse_init(&resp);
    struct coordinator *c = b->coord;
    if (HANDLER_ITEMS(r, resp.Groups, c->ngroups, ListGroupsResponse_ListedGroup_init) < 0)
        return API_CLOSE;
    for (int i = 0; i < c->ngroups; i++) {
        struct group *g = c->groups[i];
        resp.Groups.items[i].GroupId = kstr_c(g->id);
        resp.Groups.items[i].ProtocolType = kstr_c(g->protocol_type ? g->protocol_type : "");
        resp.Groups.items[i].GroupState = kstr_c(group_state_name(g->state));
        resp.Groups.items[i].GroupType = kstr_c("classic");
    }
    ListGroupsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
