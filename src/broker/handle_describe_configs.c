/* handle_describe_configs.c: DescribeConfigs (key 32), v0-2, for topics
 * (resource type 2) and this broker (type 4).  Topic values come from the
 * topic's overrides, the broker's properties, or Kafka's defaults, with the
 * matching ConfigSource (v1+) and synonyms when asked for. */
#include <stdio.h>
#include <stdlib.h>

#include "broker/handler.h"

enum { SOURCE_TOPIC = 1, SOURCE_STATIC_BROKER = 4, SOURCE_DEFAULT = 5 };

static bool wanted(const struct DescribeConfigsRequest_DescribeConfigsResource *res, const char *name)
{
    if (res->ConfigurationKeys.count < 0)
        return true;
    for (int32_t i = 0; i < res->ConfigurationKeys.count; i++)
        if (kstr_eq(res->ConfigurationKeys.items[i], name))
            return true;
    return false;
}

static int describe_topic(struct broker *b, struct request *r, bool synonyms,
                          const struct DescribeConfigsRequest_DescribeConfigsResource *res,
                          struct DescribeConfigsResponse_DescribeConfigsResult *out, const struct config *overrides)
{
    int n = 0;
    for (const struct topic_config_def *d = topic_config_defs; d->name; d++)
        n += wanted(res, d->name);
    if (HANDLER_ITEMS(r, out->Configs, n, DescribeConfigsResponse_DescribeConfigsResourceResult_init) < 0)
        return -1;
    int k = 0;
    for (const struct topic_config_def *d = topic_config_defs; d->name; d++) {
        if (!wanted(res, d->name))
            continue;
        struct DescribeConfigsResponse_DescribeConfigsResourceResult *c = &out->Configs.items[k++];
        int source;
        const char *val = topic_config_value(overrides, b->cfg, d->name, &source);
        c->Name = kstr_c(d->name);
        c->Value = handler_kstr(r, val ? val : "");
        c->ConfigSource = (int8_t)source;
        c->IsDefault = source == SOURCE_DEFAULT;
        c->ReadOnly = false;
        c->IsSensitive = false;
        if (!synonyms)
            continue;
        /* the chain, most specific first: topic override, broker property, default */
        struct DescribeConfigsResponse_DescribeConfigsSynonym syn[3];
        int ns = 0;
        const char *ov = config_get(overrides, d->name);
        if (ov)
            syn[ns++] = (struct DescribeConfigsResponse_DescribeConfigsSynonym){kstr_c(d->name), handler_kstr(r, ov),
                                                                                SOURCE_TOPIC};
        const char *bv = d->broker_property ? config_get(b->cfg, d->broker_property) : NULL;
        if (bv)
            syn[ns++] = (struct DescribeConfigsResponse_DescribeConfigsSynonym){
                kstr_c(d->broker_property), handler_kstr(r, bv), SOURCE_STATIC_BROKER};
        if (d->broker_property)
            syn[ns++] = (struct DescribeConfigsResponse_DescribeConfigsSynonym){
                kstr_c(d->broker_property), kstr_c(d->default_value), SOURCE_DEFAULT};
        struct DescribeConfigsResponse_DescribeConfigsSynonym *items = arena_alloc(&r->arena, sizeof syn);
        if (!items)
            return -1;
        memcpy(items, syn, sizeof syn);
        c->Synonyms.count = ns;
        c->Synonyms.items = items;
    }
    return 0;
}

static int describe_broker(struct broker *b, struct request *r,
                           const struct DescribeConfigsRequest_DescribeConfigsResource *res,
                           struct DescribeConfigsResponse_DescribeConfigsResult *out)
{
    const struct config *cfg = b->cfg;
    int n = 0;
    for (int i = 0; i < cfg->n; i++)
        n += wanted(res, cfg->entries[i].key);
    if (HANDLER_ITEMS(r, out->Configs, n, DescribeConfigsResponse_DescribeConfigsResourceResult_init) < 0)
        return -1;
    int k = 0;
    for (int i = 0; i < cfg->n; i++) {
        if (!wanted(res, cfg->entries[i].key))
            continue;
        struct DescribeConfigsResponse_DescribeConfigsResourceResult *c = &out->Configs.items[k++];
        c->Name = kstr_c(cfg->entries[i].key);
        c->Value = kstr_c(cfg->entries[i].value);
        c->ConfigSource = SOURCE_STATIC_BROKER;
        c->ReadOnly = true;
    }
    return 0;
}

int handle_describe_configs(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DescribeConfigsRequest req;
    if (DescribeConfigsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct DescribeConfigsResponse resp;
    DescribeConfigsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Results, req.Resources.count, DescribeConfigsResponse_DescribeConfigsResult_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Resources.count; i++) {
        const struct DescribeConfigsRequest_DescribeConfigsResource *res = &req.Resources.items[i];
        struct DescribeConfigsResponse_DescribeConfigsResult *out = &resp.Results.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = (kstr){NULL, -1};
        if (res->ResourceType == CONFIG_RESOURCE_TOPIC) {
            struct topic_view tv;
            if (!handler_topic_view(b, res->ResourceName, &tv)) {
                out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                out->ErrorMessage = handler_kstr(r, "The topic does not exist.");
                continue;
            }
            if (describe_topic(b, r, v >= 1 && req.IncludeSynonyms, res, out, tv.overrides) < 0)
                return API_CLOSE;
        } else if (res->ResourceType == CONFIG_RESOURCE_BROKER) {
            char id[16];
            snprintf(id, sizeof id, "%d", b->node_id);
            if (res->ResourceName.len > 0 && !kstr_eq(res->ResourceName, id)) {
                out->ErrorCode = KERR_INVALID_REQUEST;
                out->ErrorMessage = handler_kstr(r, "Unexpected broker id.");
                continue;
            }
            if (describe_broker(b, r, res, out) < 0)
                return API_CLOSE;
        } else {
            out->ErrorCode = KERR_INVALID_REQUEST;
            out->ErrorMessage = handler_kstr(r, "Unsupported resource type.");
        }
    }
    DescribeConfigsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
