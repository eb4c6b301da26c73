/* handle_metadata.c: Metadata (key 3), v0-6.  One broker that leads every
 * partition.  A null topic list (v1+), or an empty one in v0, means all
 * topics; unknown topics are auto-created when auto.create.topics.enable is
 * on and the request allows it (v4+ flag; always in v0-3, as in Kafka). */
#include "broker/handler.h"
#include "storage/catalog.h"

static int fill_topic(struct broker *b, struct request *r, struct MetadataResponse_MetadataResponseTopic *mt,
                      struct topic *t)
{
    mt->Name = kstr_c(t->name);
    mt->TopicId = t->id;
    mt->IsInternal = t->internal;
    if (HANDLER_ITEMS(r, mt->Partitions, t->npartitions, MetadataResponse_MetadataResponsePartition_init) < 0)
        return -1;
    for (int32_t p = 0; p < t->npartitions; p++) {
        struct MetadataResponse_MetadataResponsePartition *mp = &mt->Partitions.items[p];
        mp->PartitionIndex = p;
        mp->LeaderId = b->node_id;
        mp->LeaderEpoch = 0;
        int32_t *ids = arena_alloc(&r->arena, 2 * sizeof *ids);
        if (!ids)
            return -1;
        ids[0] = ids[1] = b->node_id;
        mp->ReplicaNodes.count = 1;
        mp->ReplicaNodes.items = ids;
        mp->IsrNodes.count = 1;
        mp->IsrNodes.items = ids + 1;
        mp->OfflineReplicas.count = 0;
    }
    return 0;
}

int handle_metadata(struct broker *b, struct request *r)
{
    struct MetadataRequest req;
    int16_t v = r->api_version;
    if (MetadataRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct MetadataResponse resp;
    MetadataResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Brokers, 1, MetadataResponse_MetadataResponseBroker_init) < 0)
        return API_CLOSE;
    resp.Brokers.items[0].NodeId = b->node_id;
    resp.Brokers.items[0].Host = kstr_c(b->adv_host);
    resp.Brokers.items[0].Port = b->adv_port;
    resp.Brokers.items[0].Rack = (kstr){NULL, -1};
    resp.ClusterId = kstr_c(b->cat.cluster_id);
    resp.ControllerId = b->node_id;

    bool all = req.Topics.count < 0 || (v == 0 && req.Topics.count == 0);
    bool may_create = v < 4 || req.AllowAutoTopicCreation;
    if (all) {
        if (HANDLER_ITEMS(r, resp.Topics, b->cat.ntopics, MetadataResponse_MetadataResponseTopic_init) < 0)
            return API_CLOSE;
        for (int i = 0; i < b->cat.ntopics; i++)
            if (fill_topic(b, r, &resp.Topics.items[i], b->cat.topics[i]) < 0)
                return API_CLOSE;
    } else {
        if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, MetadataResponse_MetadataResponseTopic_init) < 0)
            return API_CLOSE;
        for (int32_t i = 0; i < req.Topics.count; i++) {
            struct MetadataResponse_MetadataResponseTopic *mt = &resp.Topics.items[i];
            kstr name = req.Topics.items[i].Name;
            mt->Name = name;
            const char *why;
            if (name.len < 0 || catalog_check_name(name.ptr, (size_t)name.len, &why) < 0) {
                mt->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            struct topic *t = catalog_find(&b->cat, name.ptr, (size_t)name.len);
            if (!t && may_create)
                t = broker_auto_create(b, name.ptr, (size_t)name.len);
            if (!t) {
                mt->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (fill_topic(b, r, mt, t) < 0)
                return API_CLOSE;
        }
    }
    MetadataResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
