/* handle_alter_configs.c: AlterConfigs (key 33), v0-1, for topics: the
 * given set replaces all of the topic's overrides (Kafka's semantics; the
 * incremental form is IncrementalAlterConfigs).  Broker configs are static
 * (read from the properties at start) and cannot be altered. */
#include <stdio.h>

#include "broker/handler.h"
#include "cluster/cluster.h"

int handle_alter_configs(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct AlterConfigsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (AlterConfigsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct AlterConfigsResponse resp;
    AlterConfigsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Responses, req.Resources.count, AlterConfigsResponse_AlterConfigsResourceResponse_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Resources.count; i++) {
        struct AlterConfigsRequest_AlterConfigsResource *res = &req.Resources.items[i];
        struct AlterConfigsResponse_AlterConfigsResourceResponse *out = &resp.Responses.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        int code;
        struct topic *t = handler_alterable_topic(b, res->ResourceType, res->ResourceName, &code, err, sizeof err);
        struct config ov;
        config_init(&ov);
        for (int32_t k = 0; !code && k < res->Configs.count; k++) {
            char *name = handler_cstr(r, res->Configs.items[k].Name);
            char *value = res->Configs.items[k].Value.len >= 0 ? handler_cstr(r, res->Configs.items[k].Value) : NULL;
            if (topic_config_apply(&ov, b->cfg, name, TC_OP_SET, value, err, sizeof err) < 0)
                code = KERR_INVALID_CONFIG;
        }
        if (!code && !req.ValidateOnly && (b->cluster ? cluster_set_topic_config(b, t->name, &ov) != 0 : catalog_set_config(&b->cat, t, &ov) < 0)) {
            code = KERR_KAFKA_STORAGE_ERROR;
            snprintf(err, sizeof err, "cannot save the topic's configuration");
        }
        config_free(&ov);
        out->ErrorCode = (int16_t)code;
        if (code)
            out->ErrorMessage = handler_kstr(r, err);
    }
    AlterConfigsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
