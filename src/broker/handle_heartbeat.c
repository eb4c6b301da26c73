/* handle_heartbeat.c: Heartbeat (key 12), v0-3. */
#include "broker/group.h"
#include "broker/handler.h"

int handle_heartbeat(struct broker *b, struct request *r)
{
    struct HeartbeatRequest req;
    if (HeartbeatRequest_decode(&r->body, &r->arena, r->api_version, &req) < 0)
        return API_CLOSE;
    struct HeartbeatResponse resp;
    HeartbeatResponse_init(&resp);
    resp.ErrorCode = (int16_t)group_heartbeat(b, &req);
    HeartbeatResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}
