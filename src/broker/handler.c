/* handler.c: helpers shared by several handle_*.c files (handler.h). */
#include <stdio.h>
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster.h"

bool handler_topic_view(struct broker *b, kstr name, struct topic_view *v)
{
    memset(v, 0, sizeof *v);
    if (name.len <= 0)
        return false;
    if (b->cluster) {
        const struct mi_topic *mt = meta_image_topic(cluster_image(b), name.ptr, (size_t)name.len);
        if (!mt)
            return false;
        v->name = mt->name;
        v->npartitions = mt->npartitions;
        v->overrides = &mt->configs;
        return true;
    }
    struct topic *t = catalog_find(&b->cat, name.ptr, (size_t)name.len);
    if (!t)
        return false;
    v->name = t->name;
    v->npartitions = t->npartitions;
    v->overrides = &t->overrides;
    v->local = t;
    return true;
}

bool handler_partition_exists(struct broker *b, kstr topic, int32_t partition)
{
    struct topic_view v;
    return handler_topic_view(b, topic, &v) && partition >= 0 && partition < v.npartitions;
}

int handler_no_replica_error(struct broker *b, kstr topic, int32_t partition)
{
    if (b->cluster && handler_partition_exists(b, topic, partition))
        return KERR_NOT_LEADER_OR_FOLLOWER;
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

int handler_alterable_topic(struct broker *b, int8_t type, kstr name, struct topic_view *v, char *err,
                            size_t errlen)
{
    if (type == CONFIG_RESOURCE_BROKER) {
        snprintf(err, errlen, "Broker configs are static in shopstream: set them in the properties file.");
        return KERR_INVALID_REQUEST;
    }
    if (type != CONFIG_RESOURCE_TOPIC) {
        snprintf(err, errlen, "Unsupported resource type %d.", type);
        return KERR_INVALID_REQUEST;
    }
    if (!handler_topic_view(b, name, v)) {
        snprintf(err, errlen, "The topic does not exist.");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return 0;
}

int handler_save_topic_config(struct broker *b, struct request *r, const struct topic_view *v,
                              const struct config *ov, bool *parked, char *err, size_t errlen)
{
    *parked = false;
    if (b->cluster) {
        int code = cluster_set_topic_config(b, v->name, ov, r, awaited_done);
        if (code == CLUSTER_NO_CHANGE)
            return 0;
        if (code)
            snprintf(err, errlen, "%s", kerr_name(code));
        *parked = code == 0;
        return code;
    }
    if (catalog_set_config(&b->cat, v->local, ov) < 0) {
        snprintf(err, errlen, "cannot save the topic's configuration");
        return KERR_KAFKA_STORAGE_ERROR;
    }
    return 0;
}

int awaited_proposed(struct request *r, struct awaited *w)
{
    if (--w->pending > 0)
        return API_PARKED;
    w->encode(r);
    return API_DONE;
}

void *awaited_next(struct request *r, struct awaited *w, int err, const char *msg)
{
    for (; w->next < w->count; w->next++) {
        char *item = w->items + (size_t)w->next * w->size;
        int16_t *code = (int16_t *)(item + w->code_at);
        if (*code != -1)
            continue;
        w->next++;
        *code = (int16_t)err;
        if (err)
            *(kstr *)(item + w->msg_at) = handler_kstr(r, msg ? msg : kerr_name(err));
        return item;
    }
    return NULL;
}

void awaited_release(struct request *r, struct awaited *w)
{
    if (--w->pending > 0)
        return;
    if (!r->conn) { /* the client left: nothing to answer */
        request_free(r);
        return;
    }
    w->encode(r);
    request_done(r);
}

void awaited_done(struct broker *b, struct request *r, int err, const char *msg)
{
    (void)b;
    struct awaited *w = r->state;
    awaited_next(r, w, err, msg);
    awaited_release(r, w);
}
