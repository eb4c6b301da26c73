/* handle_find_coordinator.c: FindCoordinator (key 10), v0-2.  This broker
 * coordinates every group.  Transactions are not offered, so a transaction
 * coordinator lookup is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
 * (fatal for the client, where COORDINATOR_NOT_AVAILABLE would be retried
 * forever). */
#include <string.h>

#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/handler.h"
#include "cluster/cluster.h"

/* In a cluster the coordinator of a group is the leader of its partition
 * of __consumer_offsets (created on first use, replicated). */
static void cluster_coordinator(struct broker *b, kstr key, struct FindCoordinatorResponse *resp)
{
    const struct meta_image *img = cluster_image(b);
    const struct mi_topic *t = meta_image_topic(img, GSTORE_TOPIC, strlen(GSTORE_TOPIC));
    resp->NodeId = -1;
    resp->Host = kstr_c("");
    resp->Port = -1;
    if (!t) {
        gstore_topic(b); /* asks the controller to create it */
        resp->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    const struct mi_partition *p = &t->parts[group_partition_for(key.ptr, (size_t)key.len, t->npartitions)];
    const struct mi_broker *mb = p->leader >= 0 ? meta_image_broker(img, p->leader) : NULL;
    if (!mb || mb->fenced) {
        resp->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    resp->NodeId = mb->id;
    resp->Host = kstr_c(mb->host);
    resp->Port = mb->port;
}

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
    } else if (b->cluster) {
        resp.ErrorMessage = (kstr){NULL, -1};
        cluster_coordinator(b, req.Key, &resp);
    } else {
        resp.ErrorMessage = (kstr){NULL, -1};
        resp.NodeId = b->node_id;
        resp.Host = kstr_c(b->adv_host);
        resp.Port = b->adv_port;
    }
    FindCoordinatorResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
