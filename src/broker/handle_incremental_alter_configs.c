/* handle_incremental_alter_configs.c: IncrementalAlterConfigs (key 44),
 * v0-1, for topics: SET, DELETE, APPEND and SUBTRACT on single configs,
 * leaving the others as they are.  All operations of a resource apply, or
 * none. */
#include <stdio.h>

#include "broker/handler.h"
#include "cluster/cluster.h"

int handle_incremental_alter_configs(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct IncrementalAlterConfigsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (IncrementalAlterConfigsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct IncrementalAlterConfigsResponse resp;
    IncrementalAlterConfigsResponse_init(&resp);
    if (HANDLER_ITEMS(r, resp.Responses, req.Resources.count,
                      IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < req.Resources.count; i++) {
        struct IncrementalAlterConfigsRequest_AlterConfigsResource *res = &req.Resources.items[i];
        struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *out = &resp.Responses.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        int code;
        struct topic *t = handler_alterable_topic(b, res->ResourceType, res->ResourceName, &code, err, sizeof err);
        struct config ov;
        config_init(&ov);
        for (int k = 0; !code && t && k < t->overrides.n; k++)
            config_set(&ov, t->overrides.entries[k].key, t->overrides.entries[k].value);
        for (int32_t k = 0; !code && k < res->Configs.count; k++) {
            struct IncrementalAlterConfigsRequest_AlterableConfig *c = &res->Configs.items[k];
            char *name = handler_cstr(r, c->Name);
            char *value = c->Value.len >= 0 ? handler_cstr(r, c->Value) : NULL;
            for (int32_t j = 0; j < k; j++)
                if (c->Name.len == res->Configs.items[j].Name.len &&
                    memcmp(c->Name.ptr, res->Configs.items[j].Name.ptr, (size_t)c->Name.len) == 0) {
                    code = KERR_INVALID_REQUEST;
                    snprintf(err, sizeof err, "Error due to duplicate config keys");
                }
            if (!code && topic_config_apply(&ov, b->cfg, name, c->ConfigOperation, value, err, sizeof err) < 0)
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
    IncrementalAlterConfigsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
