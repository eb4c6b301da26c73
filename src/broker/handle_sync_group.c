/* handle_sync_group.c: SyncGroup (key 14), v0-3; the logic is group_sync. */
#include "broker/group.h"
#include "broker/handler.h"

int handle_sync_group(struct broker *b, struct request *r)
{
    struct SyncGroupRequest *req = arena_alloc(&r->arena, sizeof *req);
    if (!req || SyncGroupRequest_decode(&r->body, &r->arena, r->api_version, req) < 0)
        return API_CLOSE;
    return group_sync(b, r, req);
}
