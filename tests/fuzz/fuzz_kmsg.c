/* fuzz_kmsg.c: libFuzzer harness for the generated Kafka codecs
 * (protocol/kmsg.c).  Byte 0 picks a message type (every request, then
 * every response, of kmsg.h), byte 1 a version within the range the codec
 * table allows for its API, and the rest is the message body.  It is
 * decoded from an exactly-sized copy into a fresh arena; a message that
 * decodes must re-encode, and decoding that encoding again must succeed,
 * consume it all and encode to the very same bytes (a codec asymmetry
 * aborts).  See tests/fuzz/README.md for building and running. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/obuf.h"
#include "protocol/kmsg.h"

struct entry {
    int16_t key;
    const char *name;
    size_t size;
    int (*dec)(struct kread *r, struct arena *a, int16_t v, void *m);
    void (*enc)(struct obuf *w, int16_t v, const void *m);
};

/* Typed wrappers, so that no call goes through a cast function pointer. */
#define CODEC(T)                                                              \
    static int dec_##T(struct kread *r, struct arena *a, int16_t v, void *m)  \
    {                                                                         \
        return T##_decode(r, a, v, (struct T *)m);                            \
    }                                                                         \
    static void enc_##T(struct obuf *w, int16_t v, const void *m)             \
    {                                                                         \
        T##_encode(w, v, (const struct T *)m);                                \
    }
#define PAIR(key, Name) CODEC(Name##Request) CODEC(Name##Response)
#define APIS(X)                                   \
    X(KAPI_PRODUCE, Produce)                      \
    X(KAPI_FETCH, Fetch)                          \
    X(KAPI_LISTOFFSETS, ListOffsets)              \
    X(KAPI_METADATA, Metadata)                    \
    X(KAPI_OFFSETCOMMIT, OffsetCommit)            \
    X(KAPI_OFFSETFETCH, OffsetFetch)              \
    X(KAPI_FINDCOORDINATOR, FindCoordinator)      \
    X(KAPI_JOINGROUP, JoinGroup)                  \
    X(KAPI_HEARTBEAT, Heartbeat)                  \
    X(KAPI_LEAVEGROUP, LeaveGroup)                \
    X(KAPI_SYNCGROUP, SyncGroup)                  \
    X(KAPI_DESCRIBEGROUPS, DescribeGroups)        \
    X(KAPI_LISTGROUPS, ListGroups)                \
    X(KAPI_SASLHANDSHAKE, SaslHandshake)          \
    X(KAPI_APIVERSIONS, ApiVersions)              \
    X(KAPI_CREATETOPICS, CreateTopics)            \
    X(KAPI_DELETETOPICS, DeleteTopics)            \
    X(KAPI_DELETERECORDS, DeleteRecords)          \
    X(KAPI_INITPRODUCERID, InitProducerId)        \
    X(KAPI_OFFSETFORLEADEREPOCH, OffsetForLeaderEpoch) \
    X(KAPI_DESCRIBECONFIGS, DescribeConfigs)      \
    X(KAPI_ALTERCONFIGS, AlterConfigs)            \
    X(KAPI_SASLAUTHENTICATE, SaslAuthenticate)    \
    X(KAPI_CREATEPARTITIONS, CreatePartitions)    \
    X(KAPI_DELETEGROUPS, DeleteGroups)            \
    X(KAPI_INCREMENTALALTERCONFIGS, IncrementalAlterConfigs) \
    X(KAPI_OFFSETDELETE, OffsetDelete)            \
    X(KAPI_DESCRIBECLUSTER, DescribeCluster)

APIS(PAIR)

#define REQ_ENTRY(key, Name) {key, #Name "Request", sizeof(struct Name##Request), dec_##Name##Request, enc_##Name##Request},
#define RESP_ENTRY(key, Name) {key, #Name "Response", sizeof(struct Name##Response), dec_##Name##Response, enc_##Name##Response},

static const struct entry entries[] = {APIS(REQ_ENTRY) APIS(RESP_ENTRY)};
#define NENTRIES (sizeof entries / sizeof entries[0])

/* Decodes n bytes (copied so that nothing past them is readable) into m.
 * Returns the decoder's result; *consumed_all says whether it used every
 * byte. */
static int decode(const struct entry *e, int16_t v, const uint8_t *p, size_t n, struct arena *a, void *m,
                  uint8_t **frame, int *consumed_all)
{
    *frame = malloc(n ? n : 1);
    if (n)
        memcpy(*frame, p, n);
    struct kread r;
    kread_init(&r, *frame, n);
    int rc = e->dec(&r, a, v, m);
    if (rc == 0 && r.err)
        rc = -2; /* success with a sticky error would be a bug */
    if (rc < 0 && r.err == 0)
        rc = -3; /* failure without saying why */
    *consumed_all = r.p == r.end;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const struct entry *e = &entries[data[0] % NENTRIES];
    const struct kmsg_api *api = kmsg_api(e->key);
    if (!api)
        abort(); /* the table and kmsg.h disagree */
    int16_t v = (int16_t)(api->min_version + data[1] % (api->max_version - api->min_version + 1));
    data += 2;
    size -= 2;

    struct arena a1, a2;
    arena_init(&a1);
    arena_init(&a2);
    void *m1 = calloc(1, e->size), *m2 = calloc(1, e->size);
    uint8_t *f1 = NULL, *f2 = NULL;
    struct obuf w1, w2;
    obuf_init(&w1);
    obuf_init(&w2);
    int all;
    int rc = decode(e, v, data, size, &a1, m1, &f1, &all);
    if (rc == -2 || rc == -3) {
        fprintf(stderr, "%s v%d: decoder returned %s\n", e->name, v,
                rc == -2 ? "0 with r->err set" : "-1 without r->err");
        abort();
    }
    if (rc == 0) {
        e->enc(&w1, v, m1);
        if (w1.oom)
            goto out;
        /* the encoding of what was decoded must itself decode, completely,
         * and encode back to the same bytes */
        rc = decode(e, v, w1.data, w1.len, &a2, m2, &f2, &all);
        if (rc != 0 || !all) {
            fprintf(stderr, "%s v%d: re-encoding of %zu bytes does not decode (rc %d, all %d)\n", e->name, v,
                    w1.len, rc, all);
            abort();
        }
        e->enc(&w2, v, m2);
        if (w2.len != w1.len || (w1.len && memcmp(w1.data, w2.data, w1.len) != 0)) {
            fprintf(stderr, "%s v%d: encode(decode(x)) is not stable (%zu vs %zu bytes)\n", e->name, v, w1.len,
                    w2.len);
            abort();
        }
        if (w1.nfiles != 0)
            abort(); /* decoded records are memory, never files */
    }
out:
    obuf_free(&w1);
    obuf_free(&w2);
    arena_free(&a1);
    arena_free(&a2);
    free(m1);
    free(m2);
    free(f1);
    free(f2);
    return 0;
}
