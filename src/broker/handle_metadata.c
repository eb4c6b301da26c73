/* handle_metadata.c: Metadata (key 3), v0-6.  One broker that leads every
 * partition.  A null topic list (v1+), or an empty one in v0, means all
 * topics; unknown topics are auto-created when auto.create.topics.enable is
 * on and the request allows it (v4+ flag; always in v0-3, as in Kafka). */
#include "broker/handler.h"
#include "cluster/cluster.h"
#include "storage/catalog.h"

/* ---- in a cluster: everything from the metadata image ---- */

static int32_t *ids_copy(struct request *r, const int32_t *ids, int n)
{
    int32_t *d = arena_alloc(&r->arena, (size_t)(n + 1) * sizeof *d);
    if (d && n > 0)
        memcpy(d, ids, (size_t)n * sizeof *d);
    return d;
}

static int fill_topic_cluster(struct broker *b, struct request *r, struct MetadataResponse_MetadataResponseTopic *mt,
                              const struct mi_topic *t)
{
    const struct meta_image *img = cluster_image(b);
    mt->Name = kstr_c(t->name);
    mt->TopicId = t->id;
    mt->IsInternal = t->name[0] == '_' && t->name[1] == '_';
    if (HANDLER_ITEMS(r, mt->Partitions, t->npartitions, MetadataResponse_MetadataResponsePartition_init) < 0)
        return -1;
    for (int32_t p = 0; p < t->npartitions; p++) {
        const struct mi_partition *ip = &t->parts[p];
        struct MetadataResponse_MetadataResponsePartition *mp = &mt->Partitions.items[p];
        mp->PartitionIndex = p;
        mp->LeaderId = ip->leader;
        mp->LeaderEpoch = ip->leader_epoch;
        mp->ErrorCode = ip->leader < 0 ? KERR_LEADER_NOT_AVAILABLE : 0;
        int32_t *rep = ids_copy(r, ip->replicas, ip->nreplicas), *isr = ids_copy(r, ip->isr, ip->nisr);
        int32_t *off = arena_alloc(&r->arena, (size_t)(ip->nreplicas + 1) * sizeof *off);
        if (!rep || !isr || !off)
            return -1;
        int noff = 0;
        for (int i = 0; i < ip->nreplicas; i++) {
            const struct mi_broker *mb = meta_image_broker(img, ip->replicas[i]);
            if (!mb || mb->fenced)
                off[noff++] = ip->replicas[i];
        }
        mp->ReplicaNodes.count = ip->nreplicas;
        mp->ReplicaNodes.items = rep;
        mp->IsrNodes.count = ip->nisr;
        mp->IsrNodes.items = isr;
        mp->OfflineReplicas.count = noff;
        mp->OfflineReplicas.items = off;
    }
    return 0;
}

static int metadata_cluster(struct broker *b, struct request *r, const struct MetadataRequest *req)
{
    int16_t v = r->api_version;
    const struct meta_image *img = cluster_image(b);
    struct MetadataResponse resp;
    MetadataResponse_init(&resp);
    int nlive = 0;
    for (int i = 0; i < img->nbrokers; i++)
        nlive += !img->brokers[i].fenced;
    if (HANDLER_ITEMS(r, resp.Brokers, nlive, MetadataResponse_MetadataResponseBroker_init) < 0)
        return API_CLOSE;
    for (int i = 0, k = 0; i < img->nbrokers; i++) {
        if (img->brokers[i].fenced)
            continue;
        resp.Brokers.items[k].NodeId = img->brokers[i].id;
        resp.Brokers.items[k].Host = kstr_c(img->brokers[i].host);
        resp.Brokers.items[k].Port = img->brokers[i].port;
        resp.Brokers.items[k].Rack = (kstr){NULL, -1};
        k++;
    }
    const char *cid = config_get(&img->cluster_configs, "cluster.id");
    resp.ClusterId = kstr_c(cid ? cid : b->cat.cluster_id);
    resp.ControllerId = cluster_controller_id(b);
    bool all = req->Topics.count < 0 || (v == 0 && req->Topics.count == 0);
    bool may_create = (v < 4 || req->AllowAutoTopicCreation) && b->auto_create;
    if (all) {
        if (HANDLER_ITEMS(r, resp.Topics, img->ntopics, MetadataResponse_MetadataResponseTopic_init) < 0)
            return API_CLOSE;
        for (int i = 0; i < img->ntopics; i++)
            if (fill_topic_cluster(b, r, &resp.Topics.items[i], img->topics[i]) < 0)
                return API_CLOSE;
    } else {
        if (HANDLER_ITEMS(r, resp.Topics, req->Topics.count, MetadataResponse_MetadataResponseTopic_init) < 0)
            return API_CLOSE;
        for (int32_t i = 0; i < req->Topics.count; i++) {
            struct MetadataResponse_MetadataResponseTopic *mt = &resp.Topics.items[i];
            kstr name = req->Topics.items[i].Name;
            mt->Name = name;
            const char *why;
            if (name.len < 0 || catalog_check_name(name.ptr, (size_t)name.len, &why) < 0) {
                mt->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            const struct mi_topic *t = meta_image_topic(img, name.ptr, (size_t)name.len);
            if (!t) {
                mt->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                if (may_create) {
                    char *n = handler_cstr(r, name);
                    if (n) {
                        cluster_request_auto_create(b, n, b->default_partitions);
                        mt->ErrorCode = KERR_LEADER_NOT_AVAILABLE; /* being created */
                    }
                }
                continue;
            }
            if (fill_topic_cluster(b, r, mt, t) < 0)
                return API_CLOSE;
        }
    }
    MetadataResponse_encode(&r->out, v, &resp);
    return API_DONE;
}

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
    if (b->cluster)
        return metadata_cluster(b, r, &req);
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
