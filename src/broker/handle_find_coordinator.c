/* handle_find_coordinator.c: FindCoordinator (key 10), v0-2.  This broker
 * coordinates every group.  Transactions are not offered, so a transaction
 * coordinator lookup is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
 * (fatal for the client, where COORDINATOR_NOT_AVAILABLE would be retried
 * forever). */
#include "broker/handler.h"

int handle_find_coordinator(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct FindCoordinatorRequest req;
    if (FindCoordinatorRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct FindCoordinatorResponse resp;
    FindCoordinatorResponse_init(&resp);
    if (req.KeyType != 0) {
        resp.ErrorCode = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        resp.ErrorMessage = kstr_c("shopstream does not offer transactions");
        resp.NodeId = -1;
        resp.Host = kstr_c("");
        resp.Port = -1;
    } else if (req.Key.len <= 0) {
        resp.ErrorCode = KERR_INVALID_REQUEST;
        resp.ErrorMessage = kstr_c("the group id is empty");
        resp.NodeId = -1;
        resp.Host = kstr_c("");
        resp.Port = -1;
    } else {
        resp.ErrorMessage = (kstr){NULL, -1};
        resp.NodeId = b->node_id;
        resp.Host = kstr_c(b->adv_host);
        resp.Port = b->adv_port;
    }
    FindCoordinatorResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
