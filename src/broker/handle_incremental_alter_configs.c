/* handle_incremental_alter_configs.c: IncrementalAlterConfigs (key 44),
 * v0-1, for topics: SET, DELETE, APPEND and SUBTRACT on single configs,
 * leaving the others as they are.  All operations of a resource apply, or
 * none. */
#include <stdio.h>
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster.h"

/* In a cluster each resource's change waits for its metadata commands. */
struct alter_state {
    struct awaited aw; /* first: awaited_done finds it at r->state */
    struct IncrementalAlterConfigsResponse resp;
};

static void encode_altered(struct request *r)
{
    struct alter_state *st = r->state;
    IncrementalAlterConfigsResponse_encode(&r->out, r->api_version, &st->resp);
}

int handle_incremental_alter_configs(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct IncrementalAlterConfigsRequest req;
    if (b->cluster && !cluster_is_controller(b) && cluster_forward(b, r) == 0)
        return API_PARKED; /* the controller answers */
    if (IncrementalAlterConfigsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct alter_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return API_CLOSE;
    memset(st, 0, sizeof *st);
    r->state = st;
    IncrementalAlterConfigsResponse_init(&st->resp);
    if (HANDLER_ITEMS(r, st->resp.Responses, req.Resources.count,
                      IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init) < 0)
        return API_CLOSE;
    st->aw = AWAITED_INIT(st->resp.Responses, struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse,
                          encode_altered);
    for (int32_t i = 0; i < req.Resources.count; i++) {
        struct IncrementalAlterConfigsRequest_AlterConfigsResource *res = &req.Resources.items[i];
        struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *out = &st->resp.Responses.items[i];
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = (kstr){NULL, -1};
        char err[512] = "";
        struct topic_view tv;
        int code = handler_alterable_topic(b, res->ResourceType, res->ResourceName, &tv, err, sizeof err);
        struct config ov;
        config_init(&ov);
        for (int k = 0; !code && k < tv.overrides->n; k++)
            config_set(&ov, tv.overrides->entries[k].key, tv.overrides->entries[k].value);
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
        bool parked = false;
        if (!code && !req.ValidateOnly)
            code = handler_save_topic_config(b, r, &tv, &ov, &parked, err, sizeof err);
        config_free(&ov);
        if (parked) {
            awaited_expect(&st->aw, &out->ErrorCode); /* answered by awaited_done */
            continue;
        }
        out->ErrorCode = (int16_t)code;
        if (code)
            out->ErrorMessage = handler_kstr(r, err);
    }
    return awaited_proposed(r, &st->aw);
}
