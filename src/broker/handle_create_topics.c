/* handle_create_topics.c: CreateTopics (key 19), v0-4.  A single broker
 * holds every replica, so the replication factor must be 1 (or -1, the
 * default, v4+); manual assignments must name only this broker.  Topic
 * configs are validated against topic_config.h.  validateOnly (v1+) checks
 * without creating. */
#include <stdio.h>

#include "broker/handler.h"
#include "cluster/cluster.h"
#include "common/log.h"

static int check_topic(struct broker *b, const struct CreateTopicsRequest_CreatableTopic *ct, int32_t *nparts,
                       struct config *overrides, char *err, size_t errlen)
{
    const char *why;
    if (ct->Name.len < 0 || catalog_check_name(ct->Name.ptr, (size_t)ct->Name.len, &why) < 0) {
        snprintf(err, errlen, "Invalid topic name: %s", ct->Name.len < 0 ? "null" : why);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (b->cluster ? meta_image_topic(cluster_image(b), ct->Name.ptr, (size_t)ct->Name.len) != NULL
                   : catalog_find(&b->cat, ct->Name.ptr, (size_t)ct->Name.len) != NULL) {
        snprintf(err, errlen, "Topic '%.*s' already exists.", ct->Name.len, ct->Name.ptr);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (ct->Assignments.count > 0) {
        if (ct->NumPartitions != -1 || ct->ReplicationFactor != -1) {
            snprintf(err, errlen, "Both numPartitions or replicationFactor and replicasAssignments were set. "
                                  "Both cannot be used at the same time.");
            return KERR_INVALID_REQUEST;
        }
        for (int32_t i = 0; i < ct->Assignments.count; i++) {
            const struct CreateTopicsRequest_CreatableReplicaAssignment *a = &ct->Assignments.items[i];
            if (b->cluster) {
                if (a->PartitionIndex != i || a->BrokerIds.count != ct->Assignments.items[0].BrokerIds.count ||
                    a->BrokerIds.count < 1 || a->BrokerIds.count > CLUSTER_MAX_REPLICAS) {
                    snprintf(err, errlen, "Replica assignment must list partitions 0..n-1 with the same number "
                                          "of replicas each.");
                    return KERR_INVALID_REPLICA_ASSIGNMENT;
                }
                continue;
            }
            if (a->PartitionIndex != i || a->BrokerIds.count != 1 || a->BrokerIds.items[0] != b->node_id) {
                snprintf(err, errlen, "Replica assignment must list partitions 0..n-1, each on broker %d.",
                         b->node_id);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
        }
        *nparts = ct->Assignments.count;
    } else {
        *nparts = ct->NumPartitions == -1 ? b->default_partitions : ct->NumPartitions;
        if (*nparts < 1) {
            snprintf(err, errlen, "Number of partitions must be larger than 0.");
            return KERR_INVALID_PARTITIONS;
        }
        if (b->cluster) {
            if (ct->ReplicationFactor == 0 || ct->ReplicationFactor < -1 ||
                ct->ReplicationFactor > CLUSTER_MAX_REPLICAS) {
                snprintf(err, errlen, "Replication factor must be larger than 0.");
                return KERR_INVALID_REPLICATION_FACTOR;
            }
        } else if (ct->ReplicationFactor != -1 && ct->ReplicationFactor != 1) {
            snprintf(err, errlen, "Replication factor: %d larger than available brokers: 1.", ct->ReplicationFactor);
            return ct->ReplicationFactor < 1 ? KERR_INVALID_REPLICATION_FACTOR : KERR_INVALID_REPLICATION_FACTOR;
        }
    }
    for (int32_t i = 0; i < ct->Configs.count; i++) {
        const struct CreateTopicsRequest_CreateableTopicConfig *c = &ct->Configs.items[i];
        char name[256], value[1024];
        if (c->Name.len <= 0 || c->Name.len >= (int32_t)sizeof name || c->Value.len < 0 ||
            c->Value.len >= (int32_t)sizeof value) {
            snprintf(err, errlen, "Invalid config entry.");
            return KERR_INVALID_CONFIG;
        }
        snprintf(name, sizeof name, "%.*s", c->Name.len, c->Name.ptr);
        snprintf(value, sizeof value, "%.*s", c->Value.len, c->Value.ptr);
        if (topic_config_validate(name, value, err, errlen) < 0)
            return KERR_INVALID_CONFIG;
        config_set(overrides, name, value);
    }
    return 0;
}

/* In a cluster the controller creates topics: each valid topic becomes a
 * metadata command, and the response waits for all of them to commit
 * (they commit in the order proposed, so answers come in topic order). */
struct create_state {
    struct awaited aw;
    struct CreateTopicsResponse resp;
};

static void encode_created(struct request *r)
{
    struct create_state *st = r->state;
    CreateTopicsResponse_encode(&r->out, r->api_version, &st->resp);
}

static void topic_committed(struct broker *b, struct request *r, int err, const char *msg)
{
    struct create_state *st = r->state;
    struct CreateTopicsResponse_CreatableTopicResult *res = awaited_next(r, &st->aw, err, msg);
    if (res && err) {
        res->NumPartitions = res->ReplicationFactor = -1;
    } else if (res) {
        const struct mi_topic *t = meta_image_topic(cluster_image(b), res->Name.ptr, (size_t)res->Name.len);
        if (t) {
            res->TopicId = t->id;
            res->NumPartitions = t->npartitions;
            res->ReplicationFactor = (int16_t)t->parts[0].nreplicas;
        }
    }
    awaited_release(r, &st->aw);
}

static int create_in_cluster(struct broker *b, struct request *r, const struct CreateTopicsRequest *req)
{
    struct create_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return API_CLOSE;
    memset(st, 0, sizeof *st);
    r->state = st;
    CreateTopicsResponse_init(&st->resp);
    if (HANDLER_ITEMS(r, st->resp.Topics, req->Topics.count, CreateTopicsResponse_CreatableTopicResult_init) < 0)
        return API_CLOSE;
    st->aw = AWAITED_INIT(st->resp.Topics, struct CreateTopicsResponse_CreatableTopicResult, encode_created);
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const struct CreateTopicsRequest_CreatableTopic *ct = &req->Topics.items[i];
        struct CreateTopicsResponse_CreatableTopicResult *res = &st->resp.Topics.items[i];
        res->Name = ct->Name;
        res->NumPartitions = -1;
        res->ReplicationFactor = -1;
        res->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        int32_t nparts = 0;
        struct config overrides;
        config_init(&overrides);
        int code = 0;
        for (int32_t k = 0; k < i; k++)
            if (req->Topics.items[k].Name.len == ct->Name.len && ct->Name.len > 0 &&
                memcmp(req->Topics.items[k].Name.ptr, ct->Name.ptr, (size_t)ct->Name.len) == 0) {
                code = KERR_INVALID_REQUEST;
                snprintf(err, sizeof err, "Create topics request from client contains duplicate topics.");
            }
        if (!code && !cluster_is_controller(b)) {
            code = KERR_NOT_CONTROLLER;
            snprintf(err, sizeof err, "This is not the correct controller for this cluster.");
        }
        if (!code)
            code = check_topic(b, ct, &nparts, &overrides, err, sizeof err);
        if (!code && !req->validateOnly) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", ct->Name.len, ct->Name.ptr);
            int32_t rf = ct->ReplicationFactor;
            int32_t *assign = NULL;
            if (ct->Assignments.count > 0) {
                rf = ct->Assignments.items[0].BrokerIds.count;
                assign = arena_alloc(&r->arena, (size_t)nparts * (size_t)rf * sizeof *assign);
                if (!assign)
                    return API_CLOSE;
                for (int32_t p = 0; p < nparts; p++)
                    memcpy(assign + (size_t)p * (size_t)rf, ct->Assignments.items[p].BrokerIds.items,
                           (size_t)rf * sizeof *assign);
            }
            const char **keys = arena_alloc(&r->arena, (size_t)(overrides.n + 1) * sizeof *keys);
            const char **vals = arena_alloc(&r->arena, (size_t)(overrides.n + 1) * sizeof *vals);
            if (!keys || !vals)
                return API_CLOSE;
            for (int k = 0; k < overrides.n; k++) {
                keys[k] = arena_strndup(&r->arena, overrides.entries[k].key, strlen(overrides.entries[k].key));
                vals[k] = arena_strndup(&r->arena, overrides.entries[k].value, strlen(overrides.entries[k].value));
            }
            code = cluster_create_topic(b, name, nparts, rf, assign, overrides.n, keys, vals, r, topic_committed,
                                        err, sizeof err);
            if (!code)
                awaited_expect(&st->aw, &res->ErrorCode); /* answered by topic_committed */
        } else if (!code) {
            res->NumPartitions = nparts;
            res->ReplicationFactor = ct->ReplicationFactor;
        }
        config_free(&overrides);
        if (code) {
            res->ErrorCode = (int16_t)code;
            res->ErrorMessage = handler_kstr(r, err);
        }
    }
    return awaited_proposed(r, &st->aw);
}

int handle_create_topics(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct CreateTopicsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (CreateTopicsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    if (b->cluster)
        return create_in_cluster(b, r, &req);
    struct CreateTopicsResponse resp;
    CreateTopicsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Topics, req.Topics.count, CreateTopicsResponse_CreatableTopicResult_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Topics.count; i++) {
        const struct CreateTopicsRequest_CreatableTopic *ct = &req.Topics.items[i];
        struct CreateTopicsResponse_CreatableTopicResult *res = &resp.Topics.items[i];
        res->Name = ct->Name;
        res->NumPartitions = -1;
        res->ReplicationFactor = -1;
        res->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        int32_t nparts = 0;
        struct config overrides;
        config_init(&overrides);
        int code = 0;
        for (int32_t k = 0; k < i; k++)
            if (req.Topics.items[k].Name.len == ct->Name.len && ct->Name.len > 0 &&
                memcmp(req.Topics.items[k].Name.ptr, ct->Name.ptr, (size_t)ct->Name.len) == 0) {
                code = KERR_INVALID_REQUEST;
                snprintf(err, sizeof err, "Create topics request from client contains duplicate topics.");
            }
        if (!code)
            code = check_topic(b, ct, &nparts, &overrides, err, sizeof err);
        if (!code && !req.validateOnly) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", ct->Name.len, ct->Name.ptr);
            struct topic *t;
            code = catalog_create(&b->cat, name, nparts, &overrides, &t, err, sizeof err);
            if (!code)
                res->TopicId = t->id;
        }
        config_free(&overrides);
        res->ErrorCode = (int16_t)code;
        if (code) {
            res->ErrorMessage = handler_kstr(r, err);
        } else {
            res->NumPartitions = nparts;
            res->ReplicationFactor = 1;
        }
    }
    CreateTopicsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
