/* handle_create_topics.c: CreateTopics (key 19), v0-4.  A single broker
 * holds every replica, so the replication factor must be 1 (or -1, the
 * default, v4+); manual assignments must name only this broker.  Topic
 * configs are validated against topic_config.h.  validateOnly (v1+) checks
 * without creating. */
#include <stdio.h>

#include "broker/handler.h"

static int check_topic(struct broker *b, const struct CreateTopicsRequest_CreatableTopic *ct, int32_t *nparts,
                       struct config *overrides, char *err, size_t errlen)
{
    const char *why;
    if (ct->Name.len < 0 || catalog_check_name(ct->Name.ptr, (size_t)ct->Name.len, &why) < 0) {
        snprintf(err, errlen, "Invalid topic name: %s", ct->Name.len < 0 ? "null" : why);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (catalog_find(&b->cat, ct->Name.ptr, (size_t)ct->Name.len)) {
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
        if (ct->ReplicationFactor != -1 && ct->ReplicationFactor != 1) {
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

int handle_create_topics(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct CreateTopicsRequest req;
    if (CreateTopicsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
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
