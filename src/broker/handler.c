/* handler.c: helpers shared by several handle_*.c files (handler.h). */
#include <stdio.h>

#include "broker/handler.h"

struct topic *handler_alterable_topic(struct broker *b, int8_t type, kstr name, int *code, char *err,
                                      size_t errlen)
{
    struct topic *t = NULL;
    *code = 0;
    if (type == CONFIG_RESOURCE_BROKER) {
        *code = KERR_INVALID_REQUEST;
        snprintf(err, errlen, "Broker configs are static in shopstream: set them in the properties file.");
    } else if (type != CONFIG_RESOURCE_TOPIC) {
        *code = KERR_INVALID_REQUEST;
        snprintf(err, errlen, "Unsupported resource type %d.", type);
    } else if (!(t = name.len > 0 ? catalog_find(&b->cat, name.ptr, (size_t)name.len) : NULL)) {
        *code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(err, errlen, "The topic does not exist.");
    }
    return t;
}
