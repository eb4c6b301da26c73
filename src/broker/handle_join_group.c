/* handle_join_group.c: JoinGroup (key 11), v0-5; the logic is group_join. */
#include "broker/group.h"
#include "broker/handler.h"

int handle_join_group(struct broker *b, struct request *r)
{
    struct JoinGroupRequest *req = arena_alloc(&r->arena, sizeof *req);
    if (!req || JoinGroupRequest_decode(&r->body, &r->arena, r->api_version, req) < 0)
        return API_CLOSE;
    return group_join(b, r, req);
}
