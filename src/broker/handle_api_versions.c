/* handle_api_versions.c: ApiVersions (key 18), v0-3.  The response header is
 * always v0, even for v3 (conn.c).  A version above ours gets a v0 body with
 * UNSUPPORTED_VERSION and our range for key 18 so the client can retry. */
#include <ctype.h>

#include "broker/handler.h"

/* Kafka's rule for ClientSoftwareName/Version: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? */
static bool valid_software_field(kstr s)
{
    if (s.len <= 0)
        return false;
    for (int32_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        bool edge = i == 0 || i == s.len - 1;
        if (!isalnum(ch) && (edge || (ch != '-' && ch != '.')))
            return false;
    }
    return true;
}

int handle_api_versions(struct broker *b, struct request *r)
{
    (void)b;
    const struct api_entry *self = api_find(KAPI_APIVERSIONS);
    struct ApiVersionsResponse resp;
    ApiVersionsResponse_init(&resp);
    int16_t v = r->api_version;
    if (v > self->max_version || v < 0) {
        resp.ErrorCode = KERR_UNSUPPORTED_VERSION;
        if (HANDLER_ITEMS(r, resp.ApiKeys, 1, ApiVersionsResponse_ApiVersion_init) < 0)
            return API_CLOSE;
        resp.ApiKeys.items[0] = (struct ApiVersionsResponse_ApiVersion){KAPI_APIVERSIONS, self->min_version,
                                                                        self->max_version};
        ApiVersionsResponse_encode(&r->out, 0, &resp);
        return API_DONE;
    }
    struct ApiVersionsRequest req;
    if (ApiVersionsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    if (v >= 3 && (!valid_software_field(req.ClientSoftwareName) ||
                   !valid_software_field(req.ClientSoftwareVersion)))
        resp.ErrorCode = KERR_INVALID_REQUEST;
    if (HANDLER_ITEMS(r, resp.ApiKeys, api_table_len, ApiVersionsResponse_ApiVersion_init) < 0)
        return API_CLOSE;
    for (int i = 0; i < api_table_len; i++)
        resp.ApiKeys.items[i] = (struct ApiVersionsResponse_ApiVersion){
            api_table[i].key, api_table[i].min_version, api_table[i].max_version};
    ApiVersionsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
