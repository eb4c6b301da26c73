/* handle_init_producer_id.c: InitProducerId (key 22), v0-4, for idempotent
 * producers: each call gets a new producer id with epoch 0 (as Kafka does
 * for producers without a transactional id).  Transactions are not offered:
 * a transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
 * which clients report as fatal rather than retrying forever. */
#include "broker/handler.h"
#include "common/log.h"

int handle_init_producer_id(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct InitProducerIdRequest req;
    if (InitProducerIdRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct InitProducerIdResponse resp;
    InitProducerIdResponse_init(&resp);
    resp.ProducerId = -1;
    resp.ProducerEpoch = -1;
    if (req.TransactionalId.len >= 0) {
        resp.ErrorCode = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else {
        int64_t id = catalog_new_producer_id(&b->cat);
        /* in a cluster every broker hands out ids: the node id in the high
         * bits keeps them apart (each broker's counter is kept on disk) */
        if (b->cluster && id >= 0)
            id |= (int64_t)b->node_id << 40;
        if (id < 0) {
            log_error("cannot reserve producer ids in %s", b->cat.data_dir);
            resp.ErrorCode = KERR_KAFKA_STORAGE_ERROR;
        } else {
            resp.ProducerId = id;
            resp.ProducerEpoch = 0;
        }
    }
    InitProducerIdResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
