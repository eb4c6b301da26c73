/* handler.h: small helpers shared by the handle_*.c files. */
#ifndef SHOPSTREAM_HANDLER_H
#define SHOPSTREAM_HANDLER_H

#include "broker/api.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"

/* Allocates n items for a generated array field in the request's arena and
 * runs init on each.  Evaluates to 0, or -1 when out of memory. */
#define HANDLER_ITEMS(r, arr, n, init)                                                      \
    ({                                                                                      \
        int rc_ = 0;                                                                        \
        (arr).count = (n);                                                                  \
        (arr).items = (n) > 0 ? arena_alloc(&(r)->arena, (size_t)(n) * sizeof *(arr).items) \
                              : NULL;                                                       \
        if ((n) > 0 && !(arr).items) {                                                      \
            (arr).count = 0;                                                                \
            rc_ = -1;                                                                       \
        } else {                                                                            \
            for (int32_t i_ = 0; i_ < (n); i_++)                                            \
                init(&(arr).items[i_]);                                                     \
        }                                                                                   \
        rc_;                                                                                \
    })

/* A NUL-terminated copy of a wire string in the request's arena. */
static inline char *handler_cstr(struct request *r, kstr s)
{
    return arena_strndup(&r->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

/* Config resource types (DescribeConfigs, AlterConfigs, ...). */
enum { CONFIG_RESOURCE_TOPIC = 2, CONFIG_RESOURCE_BROKER = 4 };

/* The topic an AlterConfigs-style request may change, or NULL with *code
 * (a Kafka error) and a message in err: broker configs are static here, and
 * other resource types or unknown topics are refused. */
struct topic *handler_alterable_topic(struct broker *b, int8_t type, kstr name, int *code, char *err,
                                      size_t errlen);

static inline kstr handler_kstr(struct request *r, const char *s)
{
    size_t n = strlen(s);
    char *d = arena_strndup(&r->arena, s, n);
    return (kstr){d ? d : "", d ? (int32_t)n : 0};
}

#endif
