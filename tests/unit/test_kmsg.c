/* test_kmsg.c: the generated Kafka codecs (protocol/kmsg.c).  For each API
 * and version under test a message with distinct values in every field is
 * encoded, decoded from an exactly-sized heap copy into a fresh arena, and
 * every field compared: fields the version carries must come back equal,
 * fields it does not carry must come back as the spec's default.  Each
 * round trip also checks that the decoder consumed the whole encoding,
 * that re-encoding gives the same bytes, and that every truncation fails
 * cleanly (run under ASan to catch reads past the buffer).  Field versions
 * follow shared/kafka-protocol/message/<Name>.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "protocol/kmsg.h"
#include "test.h"

/* ---- a generic round-trip driver ---------------------------------------- */

struct codec {
    const char *name;
    void (*enc)(struct obuf *w, int16_t v, const void *m);
    int (*dec)(struct kread *r, struct arena *a, int16_t v, void *m);
    size_t size;
};

#define DEF_CODEC(T)                                                                \
    static void enc_##T(struct obuf *w, int16_t v, const void *m)                   \
    {                                                                               \
        T##_encode(w, v, (const struct T *)m);                                      \
    }                                                                               \
    static int dec_##T(struct kread *r, struct arena *a, int16_t v, void *m)        \
    {                                                                               \
        return T##_decode(r, a, v, (struct T *)m);                                  \
    }                                                                               \
    static const struct codec codec_##T = {#T, enc_##T, dec_##T, sizeof(struct T)};

DEF_CODEC(ApiVersionsRequest)
DEF_CODEC(ApiVersionsResponse)
DEF_CODEC(MetadataRequest)
DEF_CODEC(MetadataResponse)
DEF_CODEC(ProduceRequest)
DEF_CODEC(ProduceResponse)
DEF_CODEC(FetchRequest)
DEF_CODEC(FetchResponse)
DEF_CODEC(CreateTopicsRequest)
DEF_CODEC(CreateTopicsResponse)
DEF_CODEC(DescribeConfigsRequest)
DEF_CODEC(DescribeConfigsResponse)
DEF_CODEC(JoinGroupRequest)
DEF_CODEC(JoinGroupResponse)
DEF_CODEC(OffsetCommitRequest)
DEF_CODEC(OffsetCommitResponse)
DEF_CODEC(OffsetFetchRequest)
DEF_CODEC(OffsetFetchResponse)
DEF_CODEC(ListOffsetsRequest)
DEF_CODEC(ListOffsetsResponse)

/* One round trip's state: the wire bytes, the exactly-sized frame the
 * decoded views point into, and the arena holding the decoded arrays. */
struct rt {
    struct obuf wire;
    uint8_t *frame;
    size_t n;
    struct arena arena;
    void *msg;
};

static void dump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s (%zu bytes):", what, n);
    for (size_t i = 0; i < n && i < 400; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Every proper prefix of the encoding must be refused with an error set,
 * without touching memory past the prefix. */
static void check_truncations(const struct codec *c, int16_t v, const uint8_t *p, size_t n)
{
    void *m = malloc(c->size);
    for (size_t k = 0; k < n; k++) {
        uint8_t *t = malloc(k ? k : 1);
        if (k)
            memcpy(t, p, k);
        struct kread r;
        kread_init(&r, t, k);
        struct arena a;
        arena_init(&a);
        int rc = c->dec(&r, &a, v, m);
        if (rc != -1 || r.err == 0)
            fprintf(stderr, "  %s v%d: prefix of %zu/%zu bytes gave rc %d err %d\n", c->name, v, k, n, rc,
                    r.err);
        CHECK_EQ(rc, -1);
        CHECK(r.err != 0);
        arena_free(&a);
        free(t);
    }
    free(m);
}

/* Encodes in at version v, decodes it back and returns the decoded message
 * (valid until rt_free).  Checks full consumption, identical re-encoding
 * and all truncations. */
static void *rt_run(struct rt *t, const struct codec *c, int16_t v, const void *in)
{
    obuf_init(&t->wire);
    c->enc(&t->wire, v, in);
    CHECK_EQ(t->wire.oom, 0);
    CHECK_EQ(t->wire.nfiles, 0);
    t->n = t->wire.len;
    t->frame = malloc(t->n ? t->n : 1);
    if (t->n)
        memcpy(t->frame, t->wire.data, t->n);
    arena_init(&t->arena);
    t->msg = malloc(c->size);
    memset(t->msg, 0xa5, c->size); /* decode must initialise everything */
    struct kread r;
    kread_init(&r, t->frame, t->n);
    int rc = c->dec(&r, &t->arena, v, t->msg);
    if (rc != 0 || r.p != r.end) {
        fprintf(stderr, "  %s v%d: rc %d err %d, %zu bytes left\n", c->name, v, rc, r.err,
                (size_t)(r.end - r.p));
        dump("encoding", t->frame, t->n);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(r.err, 0);
    CHECK(r.p == r.end);
    struct obuf again;
    obuf_init(&again);
    c->enc(&again, v, t->msg);
    if (again.len != t->n || (t->n && memcmp(again.data, t->frame, t->n) != 0)) {
        fprintf(stderr, "  %s v%d: re-encoding differs\n", c->name, v);
        dump("first", t->frame, t->n);
        dump("again", again.data, again.len);
    }
    CHECK_EQ(again.len, t->n);
    CHECK(t->n == 0 || memcmp(again.data, t->frame, t->n) == 0);
    obuf_free(&again);
    check_truncations(c, v, t->frame, t->n);
    return t->msg;
}

static void rt_free(struct rt *t)
{
    obuf_free(&t->wire);
    free(t->frame);
    free(t->msg);
    arena_free(&t->arena);
    memset(t, 0, sizeof *t);
}

/* ---- field comparison helpers ------------------------------------------- */

static void check_str(kstr got, kstr want, const char *what, int line)
{
    int ok = got.len == want.len && (got.len <= 0 || memcmp(got.ptr, want.ptr, (size_t)got.len) == 0);
    if (!ok) {
        fprintf(stderr, "  line %d: %s: got '%.*s' (len %d), want '%.*s' (len %d)\n", line, what,
                got.len > 0 ? got.len : 0, got.ptr ? got.ptr : "", got.len, want.len > 0 ? want.len : 0,
                want.ptr ? want.ptr : "", want.len);
        exit(1);
    }
}

static void check_bytes(kbytes got, kbytes want, const char *what, int line)
{
    int ok = got.len == want.len && (got.len <= 0 || memcmp(got.ptr, want.ptr, (size_t)got.len) == 0);
    if (!ok) {
        fprintf(stderr, "  line %d: %s: bytes differ (len %d vs %d)\n", line, what, got.len, want.len);
        exit(1);
    }
}

/* got/want are the decoded and original structs in scope. */
#define EQ(f) CHECK_EQ(got->f, want->f)
#define DEF(f, d) CHECK_EQ(got->f, d)
#define SEQ(f) check_str(got->f, want->f, #f, __LINE__)
#define SIS(f, s) check_str(got->f, kstr_c(s), #f, __LINE__)
#define BEQ(f) check_bytes(got->f, want->f, #f, __LINE__)
#define UEQ(f) CHECK(memcmp(got->f.b, want->f.b, 16) == 0)
#define UZERO(f) CHECK(kuuid_is_zero(&got->f))
/* present in this version: equal; absent: the default */
#define VEQ(cond, f, d)     \
    do {                    \
        if (cond)           \
            EQ(f);          \
        else                \
            DEF(f, d);      \
    } while (0)
#define VSEQ(cond, f, s)    \
    do {                    \
        if (cond)           \
            SEQ(f);         \
        else                \
            SIS(f, s);      \
    } while (0)

static kuuid uuid_of(uint8_t seed)
{
    kuuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(seed + i * 7);
    return u;
}

static void expect_wire(const struct obuf *w, const uint8_t *want, size_t n)
{
    if (w->len != n || memcmp(w->data, want, n) != 0) {
        dump("got", w->data, w->len);
        dump("want", want, n);
    }
    CHECK_EQ(w->len, n);
    CHECK(memcmp(w->data, want, n) == 0);
}

/* Decodes bytes (copied to an exact heap block) and returns rc; *err gets
 * the reader's error. */
static int decode_bytes(const struct codec *c, int16_t v, const uint8_t *p, size_t n, void *m,
                        struct arena *a, int *err, uint8_t **keep)
{
    uint8_t *h = malloc(n ? n : 1);
    if (n)
        memcpy(h, p, n);
    struct kread r;
    kread_init(&r, h, n);
    int rc = c->dec(&r, a, v, m);
    *err = r.err;
    if (keep)
        *keep = h;
    else
        free(h);
    return rc;
}

static void check_records(krecords got, krecords want, int line)
{
    if (got.len != want.len || got.fd != -1 ||
        (got.len > 0 && memcmp(got.ptr, want.ptr, (size_t)got.len) != 0)) {
        fprintf(stderr, "  line %d: records differ (len %d vs %d, fd %d)\n", line, got.len, want.len, got.fd);
        exit(1);
    }
}
#define REQ(f) check_records(got->f, want->f, __LINE__)

static krecords mem_records(const char *s)
{
    if (!s)
        return (krecords){NULL, -1, -1, 0};
    return (krecords){(const uint8_t *)s, (int32_t)strlen(s), -1, 0};
}

static kbytes bytes_of(const char *s, int32_t n)
{
    return (kbytes){(const uint8_t *)s, n};
}

/* ---- the API table ------------------------------------------------------ */

TEST(kmsg_api_table)
{
    const struct kmsg_api *a = kmsg_api(KAPI_APIVERSIONS);
    CHECK(a);
    CHECK(strcmp(a->name, "ApiVersions") == 0);
    CHECK_EQ(a->min_version, 0);
    CHECK_EQ(a->max_version, 3);
    CHECK_EQ(a->flexible_from, 3);
    a = kmsg_api(KAPI_FETCH);
    CHECK(a && strcmp(a->name, "Fetch") == 0);
    CHECK_EQ(a->max_version, 16);
    CHECK_EQ(a->flexible_from, 12);
    a = kmsg_api(KAPI_METADATA);
    CHECK_EQ(a->max_version, 12);
    CHECK_EQ(a->flexible_from, 9);
    a = kmsg_api(KAPI_PRODUCE);
    CHECK_EQ(a->flexible_from, 9);
    a = kmsg_api(KAPI_SASLHANDSHAKE);
    CHECK_EQ(a->flexible_from, -1);
    a = kmsg_api(KAPI_OFFSETFETCH);
    CHECK_EQ(a->flexible_from, 6);
    CHECK(kmsg_api(99) == NULL);
    CHECK(kmsg_api(-1) == NULL);
    CHECK(kmsg_api(4) == NULL); /* LeaderAndIsr: not a client API */
}

/* ---- ApiVersions -------------------------------------------------------- */

TEST(kmsg_api_versions_request_roundtrip)
{
    struct ApiVersionsRequest in;
    ApiVersionsRequest_init(&in);
    in.ClientSoftwareName = kstr_c("shopstream-cli");
    in.ClientSoftwareVersion = kstr_c("1.2.3");
    for (int16_t v = 0; v <= 3; v++) {
        struct rt t;
        const struct ApiVersionsRequest *want = &in, *got = rt_run(&t, &codec_ApiVersionsRequest, v, &in);
        VSEQ(v >= 3, ClientSoftwareName, "");
        VSEQ(v >= 3, ClientSoftwareVersion, "");
        CHECK_EQ(t.n, v >= 3 ? 1 + 14 + 1 + 5 + 1 : 0);
        rt_free(&t);
    }
}

TEST(kmsg_api_versions_request_v3_bytes)
{
    struct ApiVersionsRequest in;
    ApiVersionsRequest_init(&in);
    in.ClientSoftwareName = kstr_c("a");
    in.ClientSoftwareVersion = kstr_c("1");
    struct obuf w;
    obuf_init(&w);
    ApiVersionsRequest_encode(&w, 3, &in);
    static const uint8_t want[] = {0x02, 'a', 0x02, '1', 0x00};
    expect_wire(&w, want, sizeof want);
    obuf_reset(&w);
    ApiVersionsRequest_encode(&w, 2, &in);
    CHECK_EQ(w.len, 0);
    obuf_free(&w);
}

static void fill_api_versions_response(struct ApiVersionsResponse *m)
{
    static struct ApiVersionsResponse_ApiVersion keys[3] = {{0, 3, 11}, {1, 4, 16}, {18, 0, 3}};
    static struct ApiVersionsResponse_SupportedFeatureKey sf[2];
    static struct ApiVersionsResponse_FinalizedFeatureKey ff[1];
    ApiVersionsResponse_init(m);
    m->ErrorCode = 35;
    m->ApiKeys.count = 3;
    m->ApiKeys.items = keys;
    m->ThrottleTimeMs = 250;
    sf[0] = (struct ApiVersionsResponse_SupportedFeatureKey){kstr_c("metadata.version"), 1, 20};
    sf[1] = (struct ApiVersionsResponse_SupportedFeatureKey){kstr_c("group.version"), 0, 1};
    m->SupportedFeatures.count = 2;
    m->SupportedFeatures.items = sf;
    m->FinalizedFeaturesEpoch = 77;
    ff[0] = (struct ApiVersionsResponse_FinalizedFeatureKey){kstr_c("metadata.version"), 20, 20};
    m->FinalizedFeatures.count = 1;
    m->FinalizedFeatures.items = ff;
    m->ZkMigrationReady = true;
}

TEST(kmsg_api_versions_response_roundtrip)
{
    struct ApiVersionsResponse in;
    fill_api_versions_response(&in);
    for (int16_t v = 0; v <= 3; v++) {
        struct rt t;
        const struct ApiVersionsResponse *want = &in, *got = rt_run(&t, &codec_ApiVersionsResponse, v, &in);
        EQ(ErrorCode);
        EQ(ApiKeys.count);
        for (int i = 0; i < 3; i++) {
            EQ(ApiKeys.items[i].ApiKey);
            EQ(ApiKeys.items[i].MinVersion);
            EQ(ApiKeys.items[i].MaxVersion);
        }
        VEQ(v >= 1, ThrottleTimeMs, 0);
        if (v >= 3) {
            EQ(SupportedFeatures.count);
            for (int i = 0; i < 2; i++) {
                SEQ(SupportedFeatures.items[i].Name);
                EQ(SupportedFeatures.items[i].MinVersion);
                EQ(SupportedFeatures.items[i].MaxVersion);
            }
            EQ(FinalizedFeaturesEpoch);
            EQ(FinalizedFeatures.count);
            SEQ(FinalizedFeatures.items[0].Name);
            EQ(FinalizedFeatures.items[0].MaxVersionLevel);
            EQ(FinalizedFeatures.items[0].MinVersionLevel);
            EQ(ZkMigrationReady);
        } else {
            DEF(SupportedFeatures.count, 0);
            DEF(FinalizedFeaturesEpoch, -1);
            DEF(FinalizedFeatures.count, 0);
            DEF(ZkMigrationReady, 0);
        }
        rt_free(&t);
    }
    /* with every tagged field at its default nothing tagged is written */
    struct ApiVersionsResponse plain;
    ApiVersionsResponse_init(&plain);
    struct rt t;
    const struct ApiVersionsResponse *got = rt_run(&t, &codec_ApiVersionsResponse, 3, &plain);
    CHECK_EQ(t.n, 2 + 1 + 4 + 1);
    DEF(FinalizedFeaturesEpoch, -1);
    rt_free(&t);
}

TEST(kmsg_api_versions_response_v3_supported_features_bytes)
{
    struct ApiVersionsResponse m;
    ApiVersionsResponse_init(&m);
    struct ApiVersionsResponse_ApiVersion k = {18, 0, 3};
    m.ApiKeys.count = 1;
    m.ApiKeys.items = &k;
    struct ApiVersionsResponse_SupportedFeatureKey f = {kstr_c("f"), 1, 2};
    m.SupportedFeatures.count = 1;
    m.SupportedFeatures.items = &f;
    struct obuf w;
    obuf_init(&w);
    ApiVersionsResponse_encode(&w, 3, &m);
    static const uint8_t want[] = {
        0x00, 0x00,                                     /* ErrorCode */
        0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00, /* ApiKeys: [18 0..3], no tags */
        0x00, 0x00, 0x00, 0x00,                         /* ThrottleTimeMs */
        0x01,                                           /* one tagged field */
        0x00, 0x08,                                     /* tag 0, 8 bytes */
        0x02, 0x02, 'f', 0x00, 0x01, 0x00, 0x02, 0x00,  /* [ {"f", 1, 2} ] */
    };
    expect_wire(&w, want, sizeof want);
    /* and v0 carries neither throttle time nor tags */
    obuf_reset(&w);
    ApiVersionsResponse_encode(&w, 0, &m);
    static const uint8_t want0[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x03};
    expect_wire(&w, want0, sizeof want0);
    obuf_free(&w);
}

/* ---- Metadata ----------------------------------------------------------- */

TEST(kmsg_metadata_request_roundtrip)
{
    struct MetadataRequest_MetadataRequestTopic topics[2];
    MetadataRequest_MetadataRequestTopic_init(&topics[0]);
    MetadataRequest_MetadataRequestTopic_init(&topics[1]);
    topics[0].TopicId = uuid_of(1);
    topics[0].Name = kstr_c("orders");
    topics[1].TopicId = uuid_of(2);
    topics[1].Name = kstr_c("payments");
    struct MetadataRequest in;
    MetadataRequest_init(&in);
    in.Topics.count = 2;
    in.Topics.items = topics;
    in.AllowAutoTopicCreation = false;
    in.IncludeClusterAuthorizedOperations = true;
    in.IncludeTopicAuthorizedOperations = true;
    for (int16_t v = 0; v <= 12; v++) {
        struct rt t;
        const struct MetadataRequest *want = &in, *got = rt_run(&t, &codec_MetadataRequest, v, &in);
        EQ(Topics.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Topics.items[i].Name);
            if (v >= 10)
                UEQ(Topics.items[i].TopicId);
            else
                UZERO(Topics.items[i].TopicId);
        }
        VEQ(v >= 4, AllowAutoTopicCreation, 1);
        VEQ(v >= 8 && v <= 10, IncludeClusterAuthorizedOperations, 0);
        VEQ(v >= 8, IncludeTopicAuthorizedOperations, 0);
        rt_free(&t);
    }
}

TEST(kmsg_metadata_request_null_topics)
{
    struct MetadataRequest in;
    MetadataRequest_init(&in);
    in.Topics.count = -1; /* all topics */
    for (int16_t v = 1; v <= 12; v++) {
        struct rt t;
        const struct MetadataRequest *got = rt_run(&t, &codec_MetadataRequest, v, &in);
        DEF(Topics.count, -1);
        CHECK(got->Topics.items == NULL);
        rt_free(&t);
    }
    /* v0 has no null: "all topics" is the empty array */
    struct rt t;
    const struct MetadataRequest *got = rt_run(&t, &codec_MetadataRequest, 0, &in);
    DEF(Topics.count, 0);
    rt_free(&t);
    /* a topic with a null name (by id) is allowed from v10 */
    struct MetadataRequest_MetadataRequestTopic byid;
    MetadataRequest_MetadataRequestTopic_init(&byid);
    byid.TopicId = uuid_of(9);
    byid.Name = kstr_c(NULL);
    in.Topics.count = 1;
    in.Topics.items = &byid;
    got = rt_run(&t, &codec_MetadataRequest, 12, &in);
    DEF(Topics.items[0].Name.len, -1);
    CHECK(memcmp(got->Topics.items[0].TopicId.b, byid.TopicId.b, 16) == 0);
    rt_free(&t);
}

TEST(kmsg_metadata_request_bytes)
{
    struct obuf w;
    obuf_init(&w);
    struct MetadataRequest_MetadataRequestTopic tp;
    MetadataRequest_MetadataRequestTopic_init(&tp);
    tp.Name = kstr_c("t");
    struct MetadataRequest m;
    MetadataRequest_init(&m);
    m.Topics.count = 1;
    m.Topics.items = &tp;
    MetadataRequest_encode(&w, 0, &m);
    static const uint8_t v0[] = {0, 0, 0, 1, 0, 1, 't'};
    expect_wire(&w, v0, sizeof v0);
    obuf_reset(&w);
    m.Topics.count = -1;
    MetadataRequest_encode(&w, 1, &m);
    static const uint8_t v1[] = {0xff, 0xff, 0xff, 0xff};
    expect_wire(&w, v1, sizeof v1);
    obuf_reset(&w);
    MetadataRequest_encode(&w, 4, &m);
    static const uint8_t v4[] = {0xff, 0xff, 0xff, 0xff, 0x01};
    expect_wire(&w, v4, sizeof v4);
    obuf_reset(&w);
    /* flexible: compact null array, three bools, no tags */
    MetadataRequest_encode(&w, 9, &m);
    static const uint8_t v9[] = {0x00, 0x01, 0x00, 0x00, 0x00};
    expect_wire(&w, v9, sizeof v9);
    obuf_reset(&w);
    m.Topics.count = 1;
    MetadataRequest_encode(&w, 12, &m);
    static const uint8_t v12[] = {0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* id */
                                  0x02, 't', 0x00, 0x01, 0x00, 0x00};
    expect_wire(&w, v12, sizeof v12);
    obuf_free(&w);
}

static void fill_metadata_response(struct MetadataResponse *m)
{
    static struct MetadataResponse_MetadataResponseBroker brokers[2];
    static struct MetadataResponse_MetadataResponsePartition parts[2];
    static struct MetadataResponse_MetadataResponseTopic topics[2];
    static int32_t replicas[] = {1, 2, 3}, isr[] = {1, 2}, offline[] = {3};
    MetadataResponse_init(m);
    m->ThrottleTimeMs = 11;
    brokers[0] = (struct MetadataResponse_MetadataResponseBroker){1, kstr_c("host-1"), 9092, kstr_c("rack-a")};
    brokers[1] = (struct MetadataResponse_MetadataResponseBroker){2, kstr_c("host-2"), 9093, kstr_c(NULL)};
    m->Brokers.count = 2;
    m->Brokers.items = brokers;
    m->ClusterId = kstr_c("cluster-xyz");
    m->ControllerId = 2;
    for (int i = 0; i < 2; i++) {
        MetadataResponse_MetadataResponsePartition_init(&parts[i]);
        parts[i].ErrorCode = (int16_t)(i * 9);
        parts[i].PartitionIndex = i;
        parts[i].LeaderId = i + 1;
        parts[i].LeaderEpoch = 40 + i;
        parts[i].ReplicaNodes.count = 3 - i;
        parts[i].ReplicaNodes.items = replicas;
        parts[i].IsrNodes.count = 2;
        parts[i].IsrNodes.items = isr;
        parts[i].OfflineReplicas.count = 1 - i;
        parts[i].OfflineReplicas.items = offline;
    }
    MetadataResponse_MetadataResponseTopic_init(&topics[0]);
    topics[0].ErrorCode = 0;
    topics[0].Name = kstr_c("orders");
    topics[0].TopicId = uuid_of(5);
    topics[0].IsInternal = true;
    topics[0].Partitions.count = 2;
    topics[0].Partitions.items = parts;
    topics[0].TopicAuthorizedOperations = 0x0ff8;
    MetadataResponse_MetadataResponseTopic_init(&topics[1]);
    topics[1].ErrorCode = 3;
    topics[1].Name = kstr_c("missing");
    m->Topics.count = 2;
    m->Topics.items = topics;
    m->ClusterAuthorizedOperations = 0x1234;
}

TEST(kmsg_metadata_response_roundtrip)
{
    struct MetadataResponse in;
    fill_metadata_response(&in);
    for (int16_t v = 0; v <= 12; v++) {
        struct rt t;
        const struct MetadataResponse *want = &in, *got = rt_run(&t, &codec_MetadataResponse, v, &in);
        VEQ(v >= 3, ThrottleTimeMs, 0);
        EQ(Brokers.count);
        for (int i = 0; i < 2; i++) {
            EQ(Brokers.items[i].NodeId);
            SEQ(Brokers.items[i].Host);
            EQ(Brokers.items[i].Port);
            if (v >= 1)
                SEQ(Brokers.items[i].Rack);
            else
                DEF(Brokers.items[i].Rack.len, -1);
        }
        if (v >= 2)
            SEQ(ClusterId);
        else
            DEF(ClusterId.len, -1);
        VEQ(v >= 1, ControllerId, -1);
        EQ(Topics.count);
        for (int ti = 0; ti < 2; ti++) {
            EQ(Topics.items[ti].ErrorCode);
            SEQ(Topics.items[ti].Name);
            if (v >= 10)
                UEQ(Topics.items[ti].TopicId);
            else
                UZERO(Topics.items[ti].TopicId);
            VEQ(v >= 1, Topics.items[ti].IsInternal, 0);
            EQ(Topics.items[ti].Partitions.count);
            VEQ(v >= 8, Topics.items[ti].TopicAuthorizedOperations, INT32_MIN);
        }
        for (int i = 0; i < 2; i++) {
            EQ(Topics.items[0].Partitions.items[i].ErrorCode);
            EQ(Topics.items[0].Partitions.items[i].PartitionIndex);
            EQ(Topics.items[0].Partitions.items[i].LeaderId);
            VEQ(v >= 7, Topics.items[0].Partitions.items[i].LeaderEpoch, -1);
            EQ(Topics.items[0].Partitions.items[i].ReplicaNodes.count);
            for (int k = 0; k < got->Topics.items[0].Partitions.items[i].ReplicaNodes.count; k++)
                EQ(Topics.items[0].Partitions.items[i].ReplicaNodes.items[k]);
            EQ(Topics.items[0].Partitions.items[i].IsrNodes.count);
            EQ(Topics.items[0].Partitions.items[i].IsrNodes.items[1]);
            VEQ(v >= 5, Topics.items[0].Partitions.items[i].OfflineReplicas.count, 0);
        }
        if (v >= 5)
            CHECK_EQ(got->Topics.items[0].Partitions.items[0].OfflineReplicas.items[0], 3);
        VEQ(v >= 8 && v <= 10, ClusterAuthorizedOperations, INT32_MIN);
        rt_free(&t);
    }
}

/* ---- Produce ------------------------------------------------------------ */

static void fill_produce_request(struct ProduceRequest *m)
{
    static struct ProduceRequest_PartitionProduceData pd[3];
    static struct ProduceRequest_TopicProduceData td[2];
    ProduceRequest_init(m);
    m->TransactionalId = kstr_c("txn-1");
    m->Acks = -1;
    m->TimeoutMs = 1500;
    for (int i = 0; i < 3; i++)
        ProduceRequest_PartitionProduceData_init(&pd[i]);
    pd[0].Index = 0;
    pd[0].Records = mem_records("RECORDS-FOR-PARTITION-0");
    pd[1].Index = 1;
    pd[1].Records = mem_records(NULL);
    pd[2].Index = 7;
    pd[2].Records = mem_records("");
    ProduceRequest_TopicProduceData_init(&td[0]);
    td[0].Name = kstr_c("orders");
    td[0].PartitionData.count = 2;
    td[0].PartitionData.items = pd;
    ProduceRequest_TopicProduceData_init(&td[1]);
    td[1].Name = kstr_c("payments");
    td[1].PartitionData.count = 1;
    td[1].PartitionData.items = pd + 2;
    m->TopicData.count = 2;
    m->TopicData.items = td;
}

TEST(kmsg_produce_request_roundtrip)
{
    struct ProduceRequest in;
    fill_produce_request(&in);
    for (int16_t v = 0; v <= 11; v++) {
        struct rt t;
        const struct ProduceRequest *want = &in, *got = rt_run(&t, &codec_ProduceRequest, v, &in);
        if (v >= 3)
            SEQ(TransactionalId);
        else
            DEF(TransactionalId.len, -1);
        EQ(Acks);
        EQ(TimeoutMs);
        EQ(TopicData.count);
        for (int i = 0; i < 2; i++) {
            SEQ(TopicData.items[i].Name);
            EQ(TopicData.items[i].PartitionData.count);
            for (int k = 0; k < want->TopicData.items[i].PartitionData.count; k++) {
                EQ(TopicData.items[i].PartitionData.items[k].Index);
                REQ(TopicData.items[i].PartitionData.items[k].Records);
            }
        }
        /* the records are a view into the frame, not a copy */
        const krecords *rec = &got->TopicData.items[0].PartitionData.items[0].Records;
        CHECK((const uint8_t *)rec->ptr >= t.frame && (const uint8_t *)rec->ptr + rec->len <= t.frame + t.n);
        rt_free(&t);
    }
}

static void fill_produce_response(struct ProduceResponse *m)
{
    static struct ProduceResponse_BatchIndexAndErrorMessage errs[2];
    static struct ProduceResponse_PartitionProduceResponse pr[2];
    static struct ProduceResponse_TopicProduceResponse tr[1];
    static struct ProduceResponse_NodeEndpoint ne[1];
    ProduceResponse_init(m);
    errs[0] = (struct ProduceResponse_BatchIndexAndErrorMessage){3, kstr_c("bad record")};
    errs[1] = (struct ProduceResponse_BatchIndexAndErrorMessage){4, kstr_c(NULL)};
    for (int i = 0; i < 2; i++)
        ProduceResponse_PartitionProduceResponse_init(&pr[i]);
    pr[0].Index = 0;
    pr[0].ErrorCode = 0;
    pr[0].BaseOffset = 100;
    pr[0].LogAppendTimeMs = 1700000000123LL;
    pr[0].LogStartOffset = 7;
    pr[0].RecordErrors.count = 2;
    pr[0].RecordErrors.items = errs;
    pr[0].ErrorMessage = kstr_c("partial");
    pr[0].CurrentLeader = (struct ProduceResponse_LeaderIdAndEpoch){2, 9};
    pr[0].has_CurrentLeader = true;
    pr[1].Index = 1;
    pr[1].ErrorCode = 6;
    pr[1].BaseOffset = -1;
    ProduceResponse_TopicProduceResponse_init(&tr[0]);
    tr[0].Name = kstr_c("orders");
    tr[0].PartitionResponses.count = 2;
    tr[0].PartitionResponses.items = pr;
    m->Responses.count = 1;
    m->Responses.items = tr;
    m->ThrottleTimeMs = 10;
    ProduceResponse_NodeEndpoint_init(&ne[0]);
    ne[0].NodeId = 2;
    ne[0].Host = kstr_c("broker-2");
    ne[0].Port = 9094;
    ne[0].Rack = kstr_c("rk");
    m->NodeEndpoints.count = 1;
    m->NodeEndpoints.items = ne;
}

TEST(kmsg_produce_response_roundtrip)
{
    struct ProduceResponse in;
    fill_produce_response(&in);
    for (int16_t v = 0; v <= 11; v++) {
        struct rt t;
        const struct ProduceResponse *want = &in, *got = rt_run(&t, &codec_ProduceResponse, v, &in);
        EQ(Responses.count);
        SEQ(Responses.items[0].Name);
        EQ(Responses.items[0].PartitionResponses.count);
        for (int i = 0; i < 2; i++) {
            EQ(Responses.items[0].PartitionResponses.items[i].Index);
            EQ(Responses.items[0].PartitionResponses.items[i].ErrorCode);
            EQ(Responses.items[0].PartitionResponses.items[i].BaseOffset);
            VEQ(v >= 2, Responses.items[0].PartitionResponses.items[i].LogAppendTimeMs, -1);
            VEQ(v >= 5, Responses.items[0].PartitionResponses.items[i].LogStartOffset, -1);
            VEQ(v >= 8, Responses.items[0].PartitionResponses.items[i].RecordErrors.count, 0);
            if (v >= 8)
                SEQ(Responses.items[0].PartitionResponses.items[i].ErrorMessage);
            else
                DEF(Responses.items[0].PartitionResponses.items[i].ErrorMessage.len, -1);
        }
        const struct ProduceResponse_PartitionProduceResponse *p0 = &got->Responses.items[0].PartitionResponses.items[0];
        if (v >= 8) {
            CHECK_EQ(p0->RecordErrors.items[0].BatchIndex, 3);
            check_str(p0->RecordErrors.items[0].BatchIndexErrorMessage, kstr_c("bad record"), "msg", __LINE__);
            CHECK_EQ(p0->RecordErrors.items[1].BatchIndex, 4);
            CHECK_EQ(p0->RecordErrors.items[1].BatchIndexErrorMessage.len, -1);
        }
        if (v >= 10) {
            CHECK(p0->has_CurrentLeader);
            CHECK_EQ(p0->CurrentLeader.LeaderId, 2);
            CHECK_EQ(p0->CurrentLeader.LeaderEpoch, 9);
            CHECK(!got->Responses.items[0].PartitionResponses.items[1].has_CurrentLeader);
            CHECK_EQ(got->Responses.items[0].PartitionResponses.items[1].CurrentLeader.LeaderId, -1);
            EQ(NodeEndpoints.count);
            EQ(NodeEndpoints.items[0].NodeId);
            SEQ(NodeEndpoints.items[0].Host);
            EQ(NodeEndpoints.items[0].Port);
            SEQ(NodeEndpoints.items[0].Rack);
        } else {
            CHECK(!p0->has_CurrentLeader);
            CHECK_EQ(p0->CurrentLeader.LeaderId, -1);
            CHECK_EQ(p0->CurrentLeader.LeaderEpoch, -1);
            DEF(NodeEndpoints.count, 0);
        }
        VEQ(v >= 1, ThrottleTimeMs, 0);
        rt_free(&t);
    }
}

/* ---- Fetch -------------------------------------------------------------- */

static void fill_fetch_request(struct FetchRequest *m)
{
    static struct FetchRequest_FetchPartition parts[2];
    static struct FetchRequest_FetchTopic topics[1];
    static struct FetchRequest_ForgottenTopic forgotten[1];
    static int32_t fparts[] = {4, 5, 6};
    FetchRequest_init(m);
    m->ClusterId = kstr_c("cluster-a");
    m->ReplicaId = 3;
    m->ReplicaState = (struct FetchRequest_ReplicaState){3, 77};
    m->has_ReplicaState = true;
    m->MaxWaitMs = 500;
    m->MinBytes = 1;
    m->MaxBytes = 1048576;
    m->IsolationLevel = 1;
    m->SessionId = 12;
    m->SessionEpoch = 4;
    for (int i = 0; i < 2; i++) {
        FetchRequest_FetchPartition_init(&parts[i]);
        parts[i].Partition = i;
        parts[i].CurrentLeaderEpoch = 6 + i;
        parts[i].FetchOffset = 1000 + i;
        parts[i].LastFetchedEpoch = 5 + i;
        parts[i].LogStartOffset = 10 + i;
        parts[i].PartitionMaxBytes = 65536 * (i + 1);
    }
    FetchRequest_FetchTopic_init(&topics[0]);
    topics[0].Topic = kstr_c("orders");
    topics[0].TopicId = uuid_of(3);
    topics[0].Partitions.count = 2;
    topics[0].Partitions.items = parts;
    m->Topics.count = 1;
    m->Topics.items = topics;
    FetchRequest_ForgottenTopic_init(&forgotten[0]);
    forgotten[0].Topic = kstr_c("old-topic");
    forgotten[0].TopicId = uuid_of(4);
    forgotten[0].Partitions.count = 3;
    forgotten[0].Partitions.items = fparts;
    m->ForgottenTopicsData.count = 1;
    m->ForgottenTopicsData.items = forgotten;
    m->RackId = kstr_c("rack-1");
}

TEST(kmsg_fetch_request_roundtrip)
{
    struct FetchRequest in;
    fill_fetch_request(&in);
    for (int16_t v = 0; v <= 16; v++) {
        struct rt t;
        const struct FetchRequest *want = &in, *got = rt_run(&t, &codec_FetchRequest, v, &in);
        if (v >= 12)
            SEQ(ClusterId);
        else
            DEF(ClusterId.len, -1);
        VEQ(v <= 14, ReplicaId, -1);
        if (v >= 15) {
            CHECK(got->has_ReplicaState);
            EQ(ReplicaState.ReplicaId);
            EQ(ReplicaState.ReplicaEpoch);
        } else {
            CHECK(!got->has_ReplicaState);
            DEF(ReplicaState.ReplicaId, -1);
            DEF(ReplicaState.ReplicaEpoch, -1);
        }
        EQ(MaxWaitMs);
        EQ(MinBytes);
        VEQ(v >= 3, MaxBytes, 0x7fffffff);
        VEQ(v >= 4, IsolationLevel, 0);
        VEQ(v >= 7, SessionId, 0);
        VEQ(v >= 7, SessionEpoch, -1);
        EQ(Topics.count);
        VSEQ(v <= 12, Topics.items[0].Topic, "");
        if (v >= 13)
            UEQ(Topics.items[0].TopicId);
        else
            UZERO(Topics.items[0].TopicId);
        EQ(Topics.items[0].Partitions.count);
        for (int i = 0; i < 2; i++) {
            EQ(Topics.items[0].Partitions.items[i].Partition);
            VEQ(v >= 9, Topics.items[0].Partitions.items[i].CurrentLeaderEpoch, -1);
            EQ(Topics.items[0].Partitions.items[i].FetchOffset);
            VEQ(v >= 12, Topics.items[0].Partitions.items[i].LastFetchedEpoch, -1);
            VEQ(v >= 5, Topics.items[0].Partitions.items[i].LogStartOffset, -1);
            EQ(Topics.items[0].Partitions.items[i].PartitionMaxBytes);
        }
        VEQ(v >= 7, ForgottenTopicsData.count, 0);
        if (v >= 7) {
            VSEQ(v <= 12, ForgottenTopicsData.items[0].Topic, "");
            if (v >= 13)
                UEQ(ForgottenTopicsData.items[0].TopicId);
            EQ(ForgottenTopicsData.items[0].Partitions.count);
            for (int i = 0; i < 3; i++)
                EQ(ForgottenTopicsData.items[0].Partitions.items[i]);
        }
        VSEQ(v >= 11, RackId, "");
        rt_free(&t);
    }
}

/* FetchRequest v12+: ClusterId is tag 0 and ReplicaState (v15+) tag 1 of
 * the top-level tagged fields, written only when set. */
TEST(kmsg_fetch_request_tagged_bytes)
{
    struct FetchRequest m;
    FetchRequest_init(&m);
    m.MaxWaitMs = 1;
    m.MinBytes = 2;
    struct obuf w;
    obuf_init(&w);
    FetchRequest_encode(&w, 12, &m);
    static const uint8_t plain[] = {0xff, 0xff, 0xff, 0xff, /* ReplicaId -1 */
                                    0, 0, 0, 1, 0, 0, 0, 2, 0x7f, 0xff, 0xff, 0xff, 0x00, /* .. isolation */
                                    0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,                 /* session */
                                    0x01, 0x01, 0x01,                                   /* topics, forgotten, rack "" */
                                    0x00};                                              /* no tags */
    expect_wire(&w, plain, sizeof plain);
    obuf_reset(&w);
    m.ClusterId = kstr_c("c");
    FetchRequest_encode(&w, 12, &m);
    CHECK_EQ(w.len, sizeof plain + 4);
    static const uint8_t tail12[] = {0x01, 0x00, 0x02, 0x02, 'c'};
    CHECK(memcmp(w.data + w.len - 5, tail12, 5) == 0);
    obuf_reset(&w);
    m.ReplicaState = (struct FetchRequest_ReplicaState){5, 6};
    m.has_ReplicaState = true;
    FetchRequest_encode(&w, 15, &m);
    static const uint8_t tail15[] = {0x02, 0x00, 0x02, 0x02, 'c', 0x01, 0x0d, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6, 0x00};
    CHECK(memcmp(w.data + w.len - sizeof tail15, tail15, sizeof tail15) == 0);
    /* v15 has no ReplicaId in the body: 4 bytes shorter than v14's body */
    CHECK_EQ(w.len, sizeof plain - 4 + sizeof tail15 - 1);
    obuf_free(&w);
}

static void fill_fetch_response(struct FetchResponse *m)
{
    static struct FetchResponse_PartitionData parts[2];
    static struct FetchResponse_FetchableTopicResponse topics[1];
    static struct FetchResponse_AbortedTransaction aborted[2] = {{9, 33}, {10, 34}};
    static struct FetchResponse_NodeEndpoint ne[1];
    FetchResponse_init(m);
    m->ThrottleTimeMs = 5;
    m->ErrorCode = 0;
    m->SessionId = 99;
    for (int i = 0; i < 2; i++)
        FetchResponse_PartitionData_init(&parts[i]);
    parts[0].PartitionIndex = 0;
    parts[0].ErrorCode = 0;
    parts[0].HighWatermark = 500;
    parts[0].LastStableOffset = 400;
    parts[0].LogStartOffset = 1;
    parts[0].DivergingEpoch = (struct FetchResponse_EpochEndOffset){3, 300};
    parts[0].has_DivergingEpoch = true;
    parts[0].CurrentLeader = (struct FetchResponse_LeaderIdAndEpoch){1, 4};
    parts[0].has_CurrentLeader = true;
    parts[0].SnapshotId = (struct FetchResponse_SnapshotId){250, 2};
    parts[0].has_SnapshotId = true;
    parts[0].AbortedTransactions.count = 2;
    parts[0].AbortedTransactions.items = aborted;
    parts[0].PreferredReadReplica = 2;
    parts[0].Records = mem_records("RECORD-BATCH-BYTES");
    parts[1].PartitionIndex = 1;
    parts[1].ErrorCode = 1;
    parts[1].HighWatermark = -1;
    parts[1].AbortedTransactions.count = -1;
    parts[1].Records = mem_records(NULL);
    FetchResponse_FetchableTopicResponse_init(&topics[0]);
    topics[0].Topic = kstr_c("orders");
    topics[0].TopicId = uuid_of(8);
    topics[0].Partitions.count = 2;
    topics[0].Partitions.items = parts;
    m->Responses.count = 1;
    m->Responses.items = topics;
    FetchResponse_NodeEndpoint_init(&ne[0]);
    ne[0].NodeId = 1;
    ne[0].Host = kstr_c("localhost");
    ne[0].Port = 9092;
    m->NodeEndpoints.count = 1;
    m->NodeEndpoints.items = ne;
}

TEST(kmsg_fetch_response_roundtrip)
{
    struct FetchResponse in;
    fill_fetch_response(&in);
    for (int16_t v = 0; v <= 16; v++) {
        struct rt t;
        const struct FetchResponse *want = &in, *got = rt_run(&t, &codec_FetchResponse, v, &in);
        VEQ(v >= 1, ThrottleTimeMs, 0);
        VEQ(v >= 7, ErrorCode, 0);
        VEQ(v >= 7, SessionId, 0);
        EQ(Responses.count);
        VSEQ(v <= 12, Responses.items[0].Topic, "");
        if (v >= 13)
            UEQ(Responses.items[0].TopicId);
        else
            UZERO(Responses.items[0].TopicId);
        EQ(Responses.items[0].Partitions.count);
        for (int i = 0; i < 2; i++) {
            const struct FetchResponse_PartitionData *g = &got->Responses.items[0].Partitions.items[i];
            const struct FetchResponse_PartitionData *w = &want->Responses.items[0].Partitions.items[i];
            CHECK_EQ(g->PartitionIndex, w->PartitionIndex);
            CHECK_EQ(g->ErrorCode, w->ErrorCode);
            CHECK_EQ(g->HighWatermark, w->HighWatermark);
            CHECK_EQ(g->LastStableOffset, v >= 4 ? w->LastStableOffset : -1);
            CHECK_EQ(g->LogStartOffset, v >= 5 ? w->LogStartOffset : -1);
            int tagged = v >= 12 && i == 0;
            CHECK_EQ(g->has_DivergingEpoch, tagged);
            CHECK_EQ(g->has_CurrentLeader, tagged);
            CHECK_EQ(g->has_SnapshotId, tagged);
            CHECK_EQ(g->DivergingEpoch.Epoch, tagged ? 3 : -1);
            CHECK_EQ(g->DivergingEpoch.EndOffset, tagged ? 300 : -1);
            CHECK_EQ(g->CurrentLeader.LeaderId, tagged ? 1 : -1);
            CHECK_EQ(g->CurrentLeader.LeaderEpoch, tagged ? 4 : -1);
            CHECK_EQ(g->SnapshotId.EndOffset, tagged ? 250 : -1);
            CHECK_EQ(g->SnapshotId.Epoch, tagged ? 2 : -1);
            CHECK_EQ(g->AbortedTransactions.count, v >= 4 ? w->AbortedTransactions.count : 0);
            if (v >= 4 && i == 0) {
                CHECK_EQ(g->AbortedTransactions.items[1].ProducerId, 10);
                CHECK_EQ(g->AbortedTransactions.items[1].FirstOffset, 34);
            }
            CHECK_EQ(g->PreferredReadReplica, v >= 11 ? w->PreferredReadReplica : -1);
            check_records(g->Records, w->Records, __LINE__);
        }
        if (v >= 16) {
            EQ(NodeEndpoints.count);
            EQ(NodeEndpoints.items[0].NodeId);
            SEQ(NodeEndpoints.items[0].Host);
            EQ(NodeEndpoints.items[0].Port);
            DEF(NodeEndpoints.items[0].Rack.len, -1);
        } else {
            DEF(NodeEndpoints.count, 0);
        }
        rt_free(&t);
    }
}

/* FetchResponse v12, one partition with DivergingEpoch (tag 0) and
 * CurrentLeader (tag 1), computed by hand from the spec. */
TEST(kmsg_fetch_response_v12_tagged_bytes)
{
    struct FetchResponse_PartitionData p;
    FetchResponse_PartitionData_init(&p);
    p.HighWatermark = 5;
    p.LastStableOffset = 5;
    p.LogStartOffset = 0;
    p.AbortedTransactions.count = -1;
    p.Records = mem_records(NULL);
    p.DivergingEpoch = (struct FetchResponse_EpochEndOffset){3, 300};
    p.has_DivergingEpoch = true;
    p.CurrentLeader = (struct FetchResponse_LeaderIdAndEpoch){1, 4};
    p.has_CurrentLeader = true;
    struct FetchResponse_FetchableTopicResponse tr;
    FetchResponse_FetchableTopicResponse_init(&tr);
    tr.Topic = kstr_c("t");
    tr.Partitions.count = 1;
    tr.Partitions.items = &p;
    struct FetchResponse m;
    FetchResponse_init(&m);
    m.Responses.count = 1;
    m.Responses.items = &tr;
    struct obuf w;
    obuf_init(&w);
    FetchResponse_encode(&w, 12, &m);
    static const uint8_t want[] = {
        0, 0, 0, 0,             /* ThrottleTimeMs */
        0, 0,                   /* ErrorCode */
        0, 0, 0, 0,             /* SessionId */
        0x02,                   /* one topic */
        0x02, 't',              /* Topic */
        0x02,                   /* one partition */
        0, 0, 0, 0,             /* PartitionIndex */
        0, 0,                   /* ErrorCode */
        0, 0, 0, 0, 0, 0, 0, 5, /* HighWatermark */
        0, 0, 0, 0, 0, 0, 0, 5, /* LastStableOffset */
        0, 0, 0, 0, 0, 0, 0, 0, /* LogStartOffset */
        0x00,                   /* AbortedTransactions: null */
        0xff, 0xff, 0xff, 0xff, /* PreferredReadReplica */
        0x00,                   /* Records: null */
        0x02,                   /* two tagged fields */
        0x00, 0x0d, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x01, 0x2c, 0x00, /* tag 0: DivergingEpoch */
        0x01, 0x09, 0, 0, 0, 1, 0, 0, 0, 4, 0x00,                  /* tag 1: CurrentLeader */
        0x00,                   /* topic: no tags */
        0x00,                   /* response: no tags */
    };
    expect_wire(&w, want, sizeof want);
    obuf_free(&w);
}

/* ---- CreateTopics ------------------------------------------------------- */

TEST(kmsg_create_topics_request_roundtrip)
{
    int32_t brokers[] = {1, 2};
    struct CreateTopicsRequest_CreatableReplicaAssignment asg[1] = {{0, {2, brokers}}};
    struct CreateTopicsRequest_CreateableTopicConfig cfg[2] = {{kstr_c("retention.ms"), kstr_c("1000")},
                                                              {kstr_c("cleanup.policy"), kstr_c(NULL)}};
    struct CreateTopicsRequest_CreatableTopic tp[2];
    CreateTopicsRequest_CreatableTopic_init(&tp[0]);
    tp[0].Name = kstr_c("orders");
    tp[0].NumPartitions = 3;
    tp[0].ReplicationFactor = 1;
    tp[0].Assignments.count = 1;
    tp[0].Assignments.items = asg;
    tp[0].Configs.count = 2;
    tp[0].Configs.items = cfg;
    CreateTopicsRequest_CreatableTopic_init(&tp[1]);
    tp[1].Name = kstr_c("defaults");
    tp[1].NumPartitions = -1;
    tp[1].ReplicationFactor = -1;
    struct CreateTopicsRequest in;
    CreateTopicsRequest_init(&in);
    in.Topics.count = 2;
    in.Topics.items = tp;
    in.timeoutMs = 30000;
    in.validateOnly = true;
    for (int16_t v = 0; v <= 7; v++) {
        struct rt t;
        const struct CreateTopicsRequest *want = &in, *got = rt_run(&t, &codec_CreateTopicsRequest, v, &in);
        EQ(Topics.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Topics.items[i].Name);
            EQ(Topics.items[i].NumPartitions);
            EQ(Topics.items[i].ReplicationFactor);
            EQ(Topics.items[i].Assignments.count);
            EQ(Topics.items[i].Configs.count);
        }
        EQ(Topics.items[0].Assignments.items[0].PartitionIndex);
        EQ(Topics.items[0].Assignments.items[0].BrokerIds.count);
        EQ(Topics.items[0].Assignments.items[0].BrokerIds.items[1]);
        for (int i = 0; i < 2; i++) {
            SEQ(Topics.items[0].Configs.items[i].Name);
            SEQ(Topics.items[0].Configs.items[i].Value);
        }
        EQ(timeoutMs);
        VEQ(v >= 1, validateOnly, 0);
        rt_free(&t);
    }
}

TEST(kmsg_create_topics_response_roundtrip)
{
    struct CreateTopicsResponse_CreatableTopicConfigs cfg[2] = {
        {kstr_c("segment.bytes"), kstr_c("1024"), true, 5, false},
        {kstr_c("secret"), kstr_c(NULL), false, 1, true},
    };
    struct CreateTopicsResponse_CreatableTopicResult res[2];
    CreateTopicsResponse_CreatableTopicResult_init(&res[0]);
    res[0].Name = kstr_c("orders");
    res[0].TopicId = uuid_of(11);
    res[0].ErrorCode = 0;
    res[0].ErrorMessage = kstr_c(NULL);
    res[0].TopicConfigErrorCode = 40;
    res[0].NumPartitions = 3;
    res[0].ReplicationFactor = 1;
    res[0].Configs.count = 2;
    res[0].Configs.items = cfg;
    CreateTopicsResponse_CreatableTopicResult_init(&res[1]);
    res[1].Name = kstr_c("taken");
    res[1].ErrorCode = 36;
    res[1].ErrorMessage = kstr_c("Topic 'taken' already exists.");
    res[1].Configs.count = -1;
    struct CreateTopicsResponse in;
    CreateTopicsResponse_init(&in);
    in.ThrottleTimeMs = 3;
    in.Topics.count = 2;
    in.Topics.items = res;
    for (int16_t v = 0; v <= 7; v++) {
        struct rt t;
        const struct CreateTopicsResponse *want = &in, *got = rt_run(&t, &codec_CreateTopicsResponse, v, &in);
        VEQ(v >= 2, ThrottleTimeMs, 0);
        EQ(Topics.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Topics.items[i].Name);
            if (v >= 7)
                UEQ(Topics.items[i].TopicId);
            else
                UZERO(Topics.items[i].TopicId);
            EQ(Topics.items[i].ErrorCode);
            if (v >= 1)
                SEQ(Topics.items[i].ErrorMessage);
            else
                DEF(Topics.items[i].ErrorMessage.len, 0);
            VEQ(v >= 5, Topics.items[i].TopicConfigErrorCode, 0);
            VEQ(v >= 5, Topics.items[i].NumPartitions, -1);
            VEQ(v >= 5, Topics.items[i].ReplicationFactor, -1);
            VEQ(v >= 5, Topics.items[i].Configs.count, 0);
        }
        if (v >= 5) {
            for (int i = 0; i < 2; i++) {
                SEQ(Topics.items[0].Configs.items[i].Name);
                SEQ(Topics.items[0].Configs.items[i].Value);
                EQ(Topics.items[0].Configs.items[i].ReadOnly);
                EQ(Topics.items[0].Configs.items[i].ConfigSource);
                EQ(Topics.items[0].Configs.items[i].IsSensitive);
            }
        }
        rt_free(&t);
    }
}

/* ---- DescribeConfigs ---------------------------------------------------- */

TEST(kmsg_describe_configs_request_roundtrip)
{
    kstr keys[2] = {kstr_c("retention.ms"), kstr_c("segment.bytes")};
    struct DescribeConfigsRequest_DescribeConfigsResource res[2];
    DescribeConfigsRequest_DescribeConfigsResource_init(&res[0]);
    res[0].ResourceType = 2;
    res[0].ResourceName = kstr_c("orders");
    res[0].ConfigurationKeys.count = 2;
    res[0].ConfigurationKeys.items = keys;
    DescribeConfigsRequest_DescribeConfigsResource_init(&res[1]);
    res[1].ResourceType = 4;
    res[1].ResourceName = kstr_c("1");
    res[1].ConfigurationKeys.count = -1;
    struct DescribeConfigsRequest in;
    DescribeConfigsRequest_init(&in);
    in.Resources.count = 2;
    in.Resources.items = res;
    in.IncludeSynonyms = true;
    in.IncludeDocumentation = true;
    for (int16_t v = 0; v <= 4; v++) {
        struct rt t;
        const struct DescribeConfigsRequest *want = &in, *got = rt_run(&t, &codec_DescribeConfigsRequest, v, &in);
        EQ(Resources.count);
        for (int i = 0; i < 2; i++) {
            EQ(Resources.items[i].ResourceType);
            SEQ(Resources.items[i].ResourceName);
            EQ(Resources.items[i].ConfigurationKeys.count);
        }
        CHECK(got->Resources.items[1].ConfigurationKeys.items == NULL);
        SEQ(Resources.items[0].ConfigurationKeys.items[0]);
        SEQ(Resources.items[0].ConfigurationKeys.items[1]);
        VEQ(v >= 1, IncludeSynonyms, 0);
        VEQ(v >= 3, IncludeDocumentation, 0);
        rt_free(&t);
    }
}

TEST(kmsg_describe_configs_response_roundtrip)
{
    struct DescribeConfigsResponse_DescribeConfigsSynonym syn[2] = {
        {kstr_c("log.retention.ms"), kstr_c("5000"), 4},
        {kstr_c("retention.ms"), kstr_c(NULL), 5},
    };
    struct DescribeConfigsResponse_DescribeConfigsResourceResult cfg[2];
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(&cfg[0]);
    cfg[0].Name = kstr_c("retention.ms");
    cfg[0].Value = kstr_c("1000");
    cfg[0].ReadOnly = false;
    cfg[0].IsDefault = true;
    cfg[0].ConfigSource = 1;
    cfg[0].IsSensitive = false;
    cfg[0].Synonyms.count = 2;
    cfg[0].Synonyms.items = syn;
    cfg[0].ConfigType = 5;
    cfg[0].Documentation = kstr_c("How long to keep a log segment.");
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(&cfg[1]);
    cfg[1].Name = kstr_c("password");
    cfg[1].Value = kstr_c(NULL);
    cfg[1].ReadOnly = true;
    cfg[1].IsSensitive = true;
    cfg[1].ConfigSource = 5;
    cfg[1].Documentation = kstr_c(NULL);
    struct DescribeConfigsResponse_DescribeConfigsResult results[1];
    DescribeConfigsResponse_DescribeConfigsResult_init(&results[0]);
    results[0].ErrorCode = 0;
    results[0].ErrorMessage = kstr_c(NULL);
    results[0].ResourceType = 2;
    results[0].ResourceName = kstr_c("orders");
    results[0].Configs.count = 2;
    results[0].Configs.items = cfg;
    struct DescribeConfigsResponse in;
    DescribeConfigsResponse_init(&in);
    in.ThrottleTimeMs = 8;
    in.Results.count = 1;
    in.Results.items = results;
    for (int16_t v = 0; v <= 4; v++) {
        struct rt t;
        const struct DescribeConfigsResponse *want = &in, *got = rt_run(&t, &codec_DescribeConfigsResponse, v, &in);
        EQ(ThrottleTimeMs);
        EQ(Results.count);
        EQ(Results.items[0].ErrorCode);
        SEQ(Results.items[0].ErrorMessage);
        EQ(Results.items[0].ResourceType);
        SEQ(Results.items[0].ResourceName);
        EQ(Results.items[0].Configs.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Results.items[0].Configs.items[i].Name);
            SEQ(Results.items[0].Configs.items[i].Value);
            EQ(Results.items[0].Configs.items[i].ReadOnly);
            VEQ(v == 0, Results.items[0].Configs.items[i].IsDefault, 0);
            VEQ(v >= 1, Results.items[0].Configs.items[i].ConfigSource, -1);
            EQ(Results.items[0].Configs.items[i].IsSensitive);
            VEQ(v >= 1, Results.items[0].Configs.items[i].Synonyms.count, 0);
            VEQ(v >= 3, Results.items[0].Configs.items[i].ConfigType, 0);
            VSEQ(v >= 3, Results.items[0].Configs.items[i].Documentation, "");
        }
        if (v >= 1) {
            for (int i = 0; i < 2; i++) {
                SEQ(Results.items[0].Configs.items[0].Synonyms.items[i].Name);
                SEQ(Results.items[0].Configs.items[0].Synonyms.items[i].Value);
                EQ(Results.items[0].Configs.items[0].Synonyms.items[i].Source);
            }
        }
        rt_free(&t);
    }
}

/* ---- JoinGroup ---------------------------------------------------------- */

TEST(kmsg_join_group_request_roundtrip)
{
    struct JoinGroupRequest_JoinGroupRequestProtocol protos[2] = {
        {kstr_c("range"), bytes_of("\x00\x01\x02\x03", 4)},
        {kstr_c("roundrobin"), bytes_of("", 0)},
    };
    struct JoinGroupRequest in;
    JoinGroupRequest_init(&in);
    in.GroupId = kstr_c("group-1");
    in.SessionTimeoutMs = 10000;
    in.RebalanceTimeoutMs = 30000;
    in.MemberId = kstr_c("member-1");
    in.GroupInstanceId = kstr_c("instance-1");
    in.ProtocolType = kstr_c("consumer");
    in.Protocols.count = 2;
    in.Protocols.items = protos;
    in.Reason = kstr_c("rejoining");
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct JoinGroupRequest *want = &in, *got = rt_run(&t, &codec_JoinGroupRequest, v, &in);
        SEQ(GroupId);
        EQ(SessionTimeoutMs);
        VEQ(v >= 1, RebalanceTimeoutMs, -1);
        SEQ(MemberId);
        if (v >= 5)
            SEQ(GroupInstanceId);
        else
            DEF(GroupInstanceId.len, -1);
        SEQ(ProtocolType);
        EQ(Protocols.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Protocols.items[i].Name);
            BEQ(Protocols.items[i].Metadata);
        }
        if (v >= 8)
            SEQ(Reason);
        else
            DEF(Reason.len, -1);
        rt_free(&t);
    }
}

TEST(kmsg_join_group_response_roundtrip)
{
    struct JoinGroupResponse_JoinGroupResponseMember members[2];
    JoinGroupResponse_JoinGroupResponseMember_init(&members[0]);
    members[0].MemberId = kstr_c("member-1");
    members[0].GroupInstanceId = kstr_c("instance-1");
    members[0].Metadata = bytes_of("\x00\x03meta", 6);
    JoinGroupResponse_JoinGroupResponseMember_init(&members[1]);
    members[1].MemberId = kstr_c("member-2");
    members[1].Metadata = bytes_of("", 0);
    struct JoinGroupResponse in;
    JoinGroupResponse_init(&in);
    in.ThrottleTimeMs = 1;
    in.ErrorCode = 0;
    in.GenerationId = 5;
    in.ProtocolType = kstr_c("consumer");
    in.ProtocolName = kstr_c("range");
    in.Leader = kstr_c("member-1");
    in.SkipAssignment = true;
    in.MemberId = kstr_c("member-2");
    in.Members.count = 2;
    in.Members.items = members;
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct JoinGroupResponse *want = &in, *got = rt_run(&t, &codec_JoinGroupResponse, v, &in);
        VEQ(v >= 2, ThrottleTimeMs, 0);
        EQ(ErrorCode);
        EQ(GenerationId);
        if (v >= 7)
            SEQ(ProtocolType);
        else
            DEF(ProtocolType.len, -1);
        SEQ(ProtocolName);
        SEQ(Leader);
        VEQ(v >= 9, SkipAssignment, 0);
        SEQ(MemberId);
        EQ(Members.count);
        for (int i = 0; i < 2; i++) {
            SEQ(Members.items[i].MemberId);
            if (v >= 5)
                SEQ(Members.items[i].GroupInstanceId);
            else
                DEF(Members.items[i].GroupInstanceId.len, -1);
            BEQ(Members.items[i].Metadata);
        }
        rt_free(&t);
    }
}

/* ---- OffsetCommit ------------------------------------------------------- */

TEST(kmsg_offset_commit_request_roundtrip)
{
    struct OffsetCommitRequest_OffsetCommitRequestPartition parts[2];
    for (int i = 0; i < 2; i++)
        OffsetCommitRequest_OffsetCommitRequestPartition_init(&parts[i]);
    parts[0].PartitionIndex = 0;
    parts[0].CommittedOffset = 42;
    parts[0].CommittedLeaderEpoch = 3;
    parts[0].CommitTimestamp = 1700000000000LL;
    parts[0].CommittedMetadata = kstr_c("meta");
    parts[1].PartitionIndex = 1;
    parts[1].CommittedOffset = 43;
    parts[1].CommittedLeaderEpoch = 4;
    parts[1].CommitTimestamp = 1700000000001LL;
    parts[1].CommittedMetadata = kstr_c(NULL);
    struct OffsetCommitRequest_OffsetCommitRequestTopic topics[1];
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&topics[0]);
    topics[0].Name = kstr_c("orders");
    topics[0].Partitions.count = 2;
    topics[0].Partitions.items = parts;
    struct OffsetCommitRequest in;
    OffsetCommitRequest_init(&in);
    in.GroupId = kstr_c("group-1");
    in.GenerationIdOrMemberEpoch = 7;
    in.MemberId = kstr_c("member-1");
    in.GroupInstanceId = kstr_c("gi");
    in.RetentionTimeMs = 86400000;
    in.Topics.count = 1;
    in.Topics.items = topics;
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct OffsetCommitRequest *want = &in, *got = rt_run(&t, &codec_OffsetCommitRequest, v, &in);
        SEQ(GroupId);
        VEQ(v >= 1, GenerationIdOrMemberEpoch, -1);
        VSEQ(v >= 1, MemberId, "");
        if (v >= 7)
            SEQ(GroupInstanceId);
        else
            DEF(GroupInstanceId.len, -1);
        VEQ(v >= 2 && v <= 4, RetentionTimeMs, -1);
        EQ(Topics.count);
        SEQ(Topics.items[0].Name);
        EQ(Topics.items[0].Partitions.count);
        for (int i = 0; i < 2; i++) {
            EQ(Topics.items[0].Partitions.items[i].PartitionIndex);
            EQ(Topics.items[0].Partitions.items[i].CommittedOffset);
            VEQ(v >= 6, Topics.items[0].Partitions.items[i].CommittedLeaderEpoch, -1);
            VEQ(v == 1, Topics.items[0].Partitions.items[i].CommitTimestamp, -1);
            SEQ(Topics.items[0].Partitions.items[i].CommittedMetadata);
        }
        rt_free(&t);
    }
}

TEST(kmsg_offset_commit_response_roundtrip)
{
    struct OffsetCommitResponse_OffsetCommitResponsePartition parts[2] = {{0, 0}, {1, 25}};
    struct OffsetCommitResponse_OffsetCommitResponseTopic topics[1] = {{kstr_c("orders"), {2, parts}}};
    struct OffsetCommitResponse in;
    OffsetCommitResponse_init(&in);
    in.ThrottleTimeMs = 2;
    in.Topics.count = 1;
    in.Topics.items = topics;
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct OffsetCommitResponse *want = &in, *got = rt_run(&t, &codec_OffsetCommitResponse, v, &in);
        VEQ(v >= 3, ThrottleTimeMs, 0);
        EQ(Topics.count);
        SEQ(Topics.items[0].Name);
        EQ(Topics.items[0].Partitions.count);
        for (int i = 0; i < 2; i++) {
            EQ(Topics.items[0].Partitions.items[i].PartitionIndex);
            EQ(Topics.items[0].Partitions.items[i].ErrorCode);
        }
        rt_free(&t);
    }
}

/* ---- OffsetFetch -------------------------------------------------------- */

TEST(kmsg_offset_fetch_request_roundtrip)
{
    int32_t idx[] = {0, 1}, idx2[] = {2};
    struct OffsetFetchRequest_OffsetFetchRequestTopic topics[1] = {{kstr_c("orders"), {2, idx}}};
    struct OffsetFetchRequest_OffsetFetchRequestTopics gtopics[1] = {{kstr_c("payments"), {1, idx2}}};
    struct OffsetFetchRequest_OffsetFetchRequestGroup groups[2];
    OffsetFetchRequest_OffsetFetchRequestGroup_init(&groups[0]);
    groups[0].GroupId = kstr_c("g1");
    groups[0].MemberId = kstr_c("m1");
    groups[0].MemberEpoch = 3;
    groups[0].Topics.count = 1;
    groups[0].Topics.items = gtopics;
    OffsetFetchRequest_OffsetFetchRequestGroup_init(&groups[1]);
    groups[1].GroupId = kstr_c("g2");
    groups[1].Topics.count = -1; /* all topics */
    struct OffsetFetchRequest in;
    OffsetFetchRequest_init(&in);
    in.GroupId = kstr_c("group-0");
    in.Topics.count = 1;
    in.Topics.items = topics;
    in.Groups.count = 2;
    in.Groups.items = groups;
    in.RequireStable = true;
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct OffsetFetchRequest *want = &in, *got = rt_run(&t, &codec_OffsetFetchRequest, v, &in);
        VSEQ(v <= 7, GroupId, "");
        VEQ(v <= 7, Topics.count, 0);
        if (v <= 7) {
            SEQ(Topics.items[0].Name);
            EQ(Topics.items[0].PartitionIndexes.count);
            EQ(Topics.items[0].PartitionIndexes.items[1]);
        }
        VEQ(v >= 8, Groups.count, 0);
        if (v >= 8) {
            SEQ(Groups.items[0].GroupId);
            SEQ(Groups.items[1].GroupId);
            if (v >= 9) {
                SEQ(Groups.items[0].MemberId);
                EQ(Groups.items[0].MemberEpoch);
            } else {
                DEF(Groups.items[0].MemberId.len, -1);
                DEF(Groups.items[0].MemberEpoch, -1);
            }
            EQ(Groups.items[0].Topics.count);
            SEQ(Groups.items[0].Topics.items[0].Name);
            EQ(Groups.items[0].Topics.items[0].PartitionIndexes.items[0]);
            DEF(Groups.items[1].Topics.count, -1);
        }
        VEQ(v >= 7, RequireStable, 0);
        rt_free(&t);
    }
    /* null topics (all committed offsets) from v2 */
    in.Topics.count = -1;
    for (int16_t v = 2; v <= 7; v++) {
        struct rt t;
        const struct OffsetFetchRequest *got = rt_run(&t, &codec_OffsetFetchRequest, v, &in);
        DEF(Topics.count, -1);
        rt_free(&t);
    }
}

TEST(kmsg_offset_fetch_response_roundtrip)
{
    struct OffsetFetchResponse_OffsetFetchResponsePartition p1[2];
    for (int i = 0; i < 2; i++)
        OffsetFetchResponse_OffsetFetchResponsePartition_init(&p1[i]);
    p1[0] = (struct OffsetFetchResponse_OffsetFetchResponsePartition){0, 42, 2, kstr_c("m"), 0};
    p1[1] = (struct OffsetFetchResponse_OffsetFetchResponsePartition){1, -1, 3, kstr_c(NULL), 3};
    struct OffsetFetchResponse_OffsetFetchResponseTopic t1[1] = {{kstr_c("orders"), {2, p1}}};
    struct OffsetFetchResponse_OffsetFetchResponsePartitions p2[1] = {{1, 7, 1, kstr_c(NULL), 0}};
    struct OffsetFetchResponse_OffsetFetchResponseTopics t2[1] = {{kstr_c("payments"), {1, p2}}};
    struct OffsetFetchResponse_OffsetFetchResponseGroup g[1] = {{kstr_c("g1"), {1, t2}, 16}};
    struct OffsetFetchResponse in;
    OffsetFetchResponse_init(&in);
    in.ThrottleTimeMs = 4;
    in.Topics.count = 1;
    in.Topics.items = t1;
    in.ErrorCode = 15;
    in.Groups.count = 1;
    in.Groups.items = g;
    for (int16_t v = 0; v <= 9; v++) {
        struct rt t;
        const struct OffsetFetchResponse *want = &in, *got = rt_run(&t, &codec_OffsetFetchResponse, v, &in);
        VEQ(v >= 3, ThrottleTimeMs, 0);
        VEQ(v <= 7, Topics.count, 0);
        if (v <= 7) {
            SEQ(Topics.items[0].Name);
            EQ(Topics.items[0].Partitions.count);
            for (int i = 0; i < 2; i++) {
                EQ(Topics.items[0].Partitions.items[i].PartitionIndex);
                EQ(Topics.items[0].Partitions.items[i].CommittedOffset);
                VEQ(v >= 5, Topics.items[0].Partitions.items[i].CommittedLeaderEpoch, -1);
                SEQ(Topics.items[0].Partitions.items[i].Metadata);
                EQ(Topics.items[0].Partitions.items[i].ErrorCode);
            }
        }
        VEQ(v >= 2 && v <= 7, ErrorCode, 0);
        VEQ(v >= 8, Groups.count, 0);
        if (v >= 8) {
            SEQ(Groups.items[0].GroupId);
            EQ(Groups.items[0].ErrorCode);
            SEQ(Groups.items[0].Topics.items[0].Name);
            EQ(Groups.items[0].Topics.items[0].Partitions.items[0].PartitionIndex);
            EQ(Groups.items[0].Topics.items[0].Partitions.items[0].CommittedOffset);
            EQ(Groups.items[0].Topics.items[0].Partitions.items[0].CommittedLeaderEpoch);
            DEF(Groups.items[0].Topics.items[0].Partitions.items[0].Metadata.len, -1);
        }
        rt_free(&t);
    }
}

/* ---- ListOffsets -------------------------------------------------------- */

TEST(kmsg_list_offsets_request_roundtrip)
{
    struct ListOffsetsRequest_ListOffsetsPartition parts[2] = {{0, 2, -2, 5}, {1, 3, 1700000000000LL, 1}};
    struct ListOffsetsRequest_ListOffsetsTopic topics[1] = {{kstr_c("orders"), {2, parts}}};
    struct ListOffsetsRequest in;
    ListOffsetsRequest_init(&in);
    in.ReplicaId = -1;
    in.IsolationLevel = 1;
    in.Topics.count = 1;
    in.Topics.items = topics;
    for (int16_t v = 0; v <= 8; v++) {
        struct rt t;
        const struct ListOffsetsRequest *want = &in, *got = rt_run(&t, &codec_ListOffsetsRequest, v, &in);
        EQ(ReplicaId);
        VEQ(v >= 2, IsolationLevel, 0);
        EQ(Topics.count);
        SEQ(Topics.items[0].Name);
        EQ(Topics.items[0].Partitions.count);
        for (int i = 0; i < 2; i++) {
            EQ(Topics.items[0].Partitions.items[i].PartitionIndex);
            VEQ(v >= 4, Topics.items[0].Partitions.items[i].CurrentLeaderEpoch, -1);
            EQ(Topics.items[0].Partitions.items[i].Timestamp);
            VEQ(v == 0, Topics.items[0].Partitions.items[i].MaxNumOffsets, 1);
        }
        rt_free(&t);
    }
}

TEST(kmsg_list_offsets_response_roundtrip)
{
    int64_t old[] = {10, 5};
    struct ListOffsetsResponse_ListOffsetsPartitionResponse parts[1] = {{0, 0, {2, old}, 1700, 42, 3}};
    struct ListOffsetsResponse_ListOffsetsTopicResponse topics[1] = {{kstr_c("orders"), {1, parts}}};
    struct ListOffsetsResponse in;
    ListOffsetsResponse_init(&in);
    in.ThrottleTimeMs = 6;
    in.Topics.count = 1;
    in.Topics.items = topics;
    for (int16_t v = 0; v <= 8; v++) {
        struct rt t;
        const struct ListOffsetsResponse *want = &in, *got = rt_run(&t, &codec_ListOffsetsResponse, v, &in);
        VEQ(v >= 2, ThrottleTimeMs, 0);
        EQ(Topics.count);
        SEQ(Topics.items[0].Name);
        EQ(Topics.items[0].Partitions.items[0].PartitionIndex);
        EQ(Topics.items[0].Partitions.items[0].ErrorCode);
        VEQ(v == 0, Topics.items[0].Partitions.items[0].OldStyleOffsets.count, 0);
        if (v == 0) {
            EQ(Topics.items[0].Partitions.items[0].OldStyleOffsets.items[0]);
            EQ(Topics.items[0].Partitions.items[0].OldStyleOffsets.items[1]);
        }
        VEQ(v >= 1, Topics.items[0].Partitions.items[0].Timestamp, -1);
        VEQ(v >= 1, Topics.items[0].Partitions.items[0].Offset, -1);
        VEQ(v >= 4, Topics.items[0].Partitions.items[0].LeaderEpoch, -1);
        rt_free(&t);
    }
}

/* ---- malformed input ---------------------------------------------------- */

/* A huge array count in a short frame is refused before anything is
 * allocated for it. */
TEST(kmsg_huge_array_count_fails_before_allocation)
{
    size_t base = alloc_live_bytes();
    struct arena a;
    arena_init(&a);
    struct MetadataRequest mr;
    int err;
    static const uint8_t classic[] = {0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 'x'};
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 1, classic, sizeof classic, &mr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    CHECK_EQ(a.total, 0);
    /* compact: 0x7fffffff - 1 elements */
    static const uint8_t compact[] = {0xff, 0xff, 0xff, 0xff, 0x07, 0x02, 'x', 0x00, 0x01, 0x00, 0x00, 0x00};
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 9, compact, sizeof compact, &mr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    CHECK_EQ(a.total, 0);
    /* nested: one topic whose partition array claims 0x7fffffff entries */
    static const uint8_t produce[] = {0xff, 0xff,             /* TransactionalId null */
                                      0x00, 0x01,             /* Acks */
                                      0x00, 0x00, 0x03, 0xe8, /* TimeoutMs */
                                      0x00, 0x00, 0x00, 0x01, /* one topic */
                                      0x00, 0x01, 't',        /* Name */
                                      0x7f, 0xff, 0xff, 0xff, /* partitions */
                                      0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff};
    struct ProduceRequest pr;
    CHECK_EQ(decode_bytes(&codec_ProduceRequest, 3, produce, sizeof produce, &pr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    CHECK(a.total <= 8192); /* only the topic array, never 2^31 partitions */
    /* an int32 array count in a 3-byte frame */
    static const uint8_t tiny[] = {0x7f, 0xff, 0xff};
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 1, tiny, sizeof tiny, &mr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    arena_free(&a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(kmsg_negative_lengths_rejected)
{
    struct arena a;
    arena_init(&a);
    int err;
    /* ProduceRequest v3: TransactionalId with length -2 */
    static const uint8_t p1[] = {0xff, 0xfe, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00};
    struct ProduceRequest pr;
    CHECK_EQ(decode_bytes(&codec_ProduceRequest, 3, p1, sizeof p1, &pr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    /* the same with -1 is a valid null */
    static const uint8_t p2[] = {0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00};
    CHECK_EQ(decode_bytes(&codec_ProduceRequest, 3, p2, sizeof p2, &pr, &a, &err, NULL), 0);
    CHECK_EQ(pr.TransactionalId.len, -1);
    CHECK_EQ(pr.Acks, 1);
    CHECK_EQ(pr.TimeoutMs, 1000);
    /* JoinGroupRequest v0: GroupId is not nullable, so -1 is refused */
    static const uint8_t j[] = {0xff, 0xff, 0, 0, 0x27, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct JoinGroupRequest jr;
    CHECK_EQ(decode_bytes(&codec_JoinGroupRequest, 0, j, sizeof j, &jr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    /* Metadata v1: array count -2 */
    static const uint8_t m[] = {0xff, 0xff, 0xff, 0xfe};
    struct MetadataRequest mr;
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 1, m, sizeof m, &mr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    /* Metadata v0: null array not allowed */
    static const uint8_t m0[] = {0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 0, m0, sizeof m0, &mr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    /* JoinGroup v0 protocol metadata (bytes) with length -5 */
    static const uint8_t j2[] = {0x00, 0x01, 'g', 0, 0, 0x27, 0x10, 0x00, 0x00, 0x00, 0x01, 'c', 0, 0, 0, 1,
                                 0x00, 0x01, 'r', 0xff, 0xff, 0xff, 0xfb};
    CHECK_EQ(decode_bytes(&codec_JoinGroupRequest, 0, j2, sizeof j2, &jr, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    arena_free(&a);
}

TEST(kmsg_unknown_tags_are_skipped)
{
    struct arena a;
    arena_init(&a);
    int err;
    uint8_t *keep;
    /* ApiVersionsRequest v3 with unknown tags 5 (3 bytes) and 127 (empty) */
    static const uint8_t av[] = {0x02, 'a', 0x02, '1', 0x02, 0x05, 0x03, 'x', 'y', 'z', 0x7f, 0x00};
    struct ApiVersionsRequest ar;
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, av, sizeof av, &ar, &a, &err, &keep), 0);
    CHECK(kstr_eq(ar.ClientSoftwareName, "a"));
    CHECK(kstr_eq(ar.ClientSoftwareVersion, "1"));
    free(keep);
    /* a tag number above 127 (two-byte varint) with a 130-byte value */
    uint8_t big[4 + 1 + 2 + 2 + 130];
    size_t n = 0;
    big[n++] = 0x02;
    big[n++] = 'a';
    big[n++] = 0x02;
    big[n++] = '1';
    big[n++] = 0x01;
    big[n++] = 0x90;
    big[n++] = 0x4e; /* tag 10000 */
    big[n++] = 0x82;
    big[n++] = 0x01; /* 130 bytes */
    memset(big + n, 0xee, 130);
    n += 130;
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, big, n, &ar, &a, &err, &keep), 0);
    CHECK(kstr_eq(ar.ClientSoftwareVersion, "1"));
    free(keep);
    /* MetadataRequest v9: an unknown tag inside the topic struct and at top level */
    static const uint8_t md[] = {0x02, 0x02, 't', 0x01, 0x09, 0x02, 0xaa, 0xbb, /* topic + tag 9 */
                                 0x00, 0x01, 0x01,                             /* three bools */
                                 0x01, 0x20, 0x01, 0xcc};                      /* tag 32 */
    struct MetadataRequest mr;
    CHECK_EQ(decode_bytes(&codec_MetadataRequest, 9, md, sizeof md, &mr, &a, &err, &keep), 0);
    CHECK_EQ(mr.Topics.count, 1);
    CHECK(kstr_eq(mr.Topics.items[0].Name, "t"));
    CHECK_EQ(mr.AllowAutoTopicCreation, 0);
    CHECK_EQ(mr.IncludeClusterAuthorizedOperations, 1);
    CHECK_EQ(mr.IncludeTopicAuthorizedOperations, 1);
    free(keep);
    /* FetchRequest v12: unknown tag 7 between known tags 0 and ... */
    struct FetchRequest fr;
    FetchRequest_init(&fr);
    fr.MaxWaitMs = 9;
    struct obuf w;
    obuf_init(&w);
    FetchRequest_encode(&w, 12, &fr);
    CHECK_EQ(w.data[w.len - 1], 0x00); /* no tags */
    w.len--;
    static const uint8_t tags[] = {0x02, 0x00, 0x04, 0x04, 'a', 'b', 'c', 0x07, 0x01, 0x55};
    obuf_put(&w, tags, sizeof tags);
    CHECK_EQ(decode_bytes(&codec_FetchRequest, 12, w.data, w.len, &fr, &a, &err, &keep), 0);
    CHECK(kstr_eq(fr.ClusterId, "abc"));
    CHECK_EQ(fr.MaxWaitMs, 9);
    free(keep);
    /* ReplicaState (tag 1) sent to a v12 decoder: not known at v12, skipped */
    w.len -= sizeof tags;
    static const uint8_t tags12[] = {0x01, 0x01, 0x0d, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6, 0x00};
    obuf_put(&w, tags12, sizeof tags12);
    CHECK_EQ(decode_bytes(&codec_FetchRequest, 12, w.data, w.len, &fr, &a, &err, &keep), 0);
    CHECK(!fr.has_ReplicaState);
    CHECK_EQ(fr.ReplicaState.ReplicaId, -1);
    free(keep);
    obuf_free(&w);
    arena_free(&a);
}

TEST(kmsg_bad_tag_sections_rejected)
{
    struct arena a;
    arena_init(&a);
    int err;
    struct ApiVersionsRequest ar;
    /* a tag whose size runs past the frame */
    static const uint8_t over[] = {0x02, 'a', 0x02, '1', 0x01, 0x05, 0x09, 'x'};
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, over, sizeof over, &ar, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    /* more tags claimed than bytes could hold */
    static const uint8_t many[] = {0x02, 'a', 0x02, '1', 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00};
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, many, sizeof many, &ar, &a, &err, NULL), -1);
    CHECK(err != 0);
    /* a tag number that is an over-long varint */
    static const uint8_t vlong[] = {0x02, 'a', 0x02, '1', 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, vlong, sizeof vlong, &ar, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_EINVAL);
    /* the tag section missing altogether */
    static const uint8_t none[] = {0x02, 'a', 0x02, '1'};
    CHECK_EQ(decode_bytes(&codec_ApiVersionsRequest, 3, none, sizeof none, &ar, &a, &err, NULL), -1);
    CHECK_EQ(err, KR_ETRUNC);
    /* FetchRequest v12 with ClusterId (tag 0) whose value is not a valid
     * compact string: length 5 in a 2-byte field */
    struct FetchRequest fr;
    FetchRequest_init(&fr);
    struct obuf w;
    obuf_init(&w);
    FetchRequest_encode(&w, 12, &fr);
    w.len--;
    static const uint8_t bad[] = {0x01, 0x00, 0x02, 0x06, 'a'};
    obuf_put(&w, bad, sizeof bad);
    CHECK_EQ(decode_bytes(&codec_FetchRequest, 12, w.data, w.len, &fr, &a, &err, NULL), -1);
    CHECK(err != 0);
    obuf_free(&w);
    arena_free(&a);
}

/* A known tagged struct whose value is too short must fail the decode.
 * The reader's sticky error must say so too (kwire.h: "on any violation it
 * sets r->err"), since callers may check either. */
TEST(kmsg_malformed_tagged_struct_sets_reader_error)
{
    struct FetchResponse_PartitionData p;
    FetchResponse_PartitionData_init(&p);
    p.AbortedTransactions.count = -1;
    p.Records = mem_records(NULL);
    struct FetchResponse_FetchableTopicResponse tr;
    FetchResponse_FetchableTopicResponse_init(&tr);
    tr.Topic = kstr_c("t");
    tr.Partitions.count = 1;
    tr.Partitions.items = &p;
    struct FetchResponse m;
    FetchResponse_init(&m);
    m.Responses.count = 1;
    m.Responses.items = &tr;
    struct obuf w;
    obuf_init(&w);
    FetchResponse_encode(&w, 12, &m);
    /* replace the partition's empty tag section (3rd byte from the end)
     * with tag 0 (DivergingEpoch) of 3 bytes: it needs 13 */
    CHECK_EQ(w.data[w.len - 3], 0x00);
    uint8_t tail[2] = {w.data[w.len - 2], w.data[w.len - 1]};
    w.len -= 3;
    static const uint8_t bad[] = {0x01, 0x00, 0x03, 0x00, 0x00, 0x00};
    obuf_put(&w, bad, sizeof bad);
    obuf_put(&w, tail, 2);
    struct arena a;
    arena_init(&a);
    struct FetchResponse got;
    int err;
    int rc = decode_bytes(&codec_FetchResponse, 12, w.data, w.len, &got, &a, &err, NULL);
    CHECK_EQ(rc, -1);
    CHECK(err != 0);
    arena_free(&a);
    obuf_free(&w);
}

TEST(kmsg_decode_out_of_memory)
{
    struct MetadataRequest_MetadataRequestTopic topics[3];
    for (int i = 0; i < 3; i++) {
        MetadataRequest_MetadataRequestTopic_init(&topics[i]);
        topics[i].Name = kstr_c("topic");
    }
    struct MetadataRequest in;
    MetadataRequest_init(&in);
    in.Topics.count = 3;
    in.Topics.items = topics;
    struct obuf w;
    obuf_init(&w);
    MetadataRequest_encode(&w, 9, &in);
    struct arena a;
    arena_init(&a);
    struct MetadataRequest got;
    int err;
    alloc_fail_after(0);
    int rc = decode_bytes(&codec_MetadataRequest, 9, w.data, w.len, &got, &a, &err, NULL);
    alloc_fail_after(-1);
    CHECK_EQ(rc, -1);
    CHECK_EQ(err, KR_ENOMEM);
    /* with memory it works, and an empty array needs none */
    rc = decode_bytes(&codec_MetadataRequest, 9, w.data, w.len, &got, &a, &err, NULL);
    CHECK_EQ(rc, 0);
    CHECK_EQ(got.Topics.count, 3);
    arena_free(&a);
    obuf_free(&w);
}

/* Arrays of minimal elements (empty strings, empty arrays, nulls) decode:
 * the per-element minimum used before allocating is never larger than the
 * smallest real element. */
TEST(kmsg_minimal_elements_decode)
{
    struct FetchRequest_FetchTopic topics[5];
    for (int i = 0; i < 5; i++)
        FetchRequest_FetchTopic_init(&topics[i]);
    struct FetchRequest_ForgottenTopic ft[5];
    for (int i = 0; i < 5; i++)
        FetchRequest_ForgottenTopic_init(&ft[i]);
    struct FetchRequest fr;
    FetchRequest_init(&fr);
    fr.Topics.count = 5;
    fr.Topics.items = topics;
    fr.ForgottenTopicsData.count = 5;
    fr.ForgottenTopicsData.items = ft;
    for (int16_t v = 0; v <= 16; v++) {
        struct rt t;
        const struct FetchRequest *got = rt_run(&t, &codec_FetchRequest, v, &fr);
        DEF(Topics.count, 5);
        rt_free(&t);
    }
    struct ProduceRequest_PartitionProduceData pd[4];
    for (int i = 0; i < 4; i++) {
        ProduceRequest_PartitionProduceData_init(&pd[i]);
        pd[i].Records = mem_records(NULL);
    }
    struct ProduceRequest_TopicProduceData td[2];
    ProduceRequest_TopicProduceData_init(&td[0]);
    td[0].PartitionData.count = 4;
    td[0].PartitionData.items = pd;
    ProduceRequest_TopicProduceData_init(&td[1]);
    struct ProduceRequest pr;
    ProduceRequest_init(&pr);
    pr.TopicData.count = 2;
    pr.TopicData.items = td;
    for (int16_t v = 0; v <= 11; v++) {
        struct rt t;
        const struct ProduceRequest *got = rt_run(&t, &codec_ProduceRequest, v, &pr);
        DEF(TopicData.items[0].PartitionData.count, 4);
        rt_free(&t);
    }
    struct CreateTopicsRequest_CreatableTopic ct[3];
    for (int i = 0; i < 3; i++)
        CreateTopicsRequest_CreatableTopic_init(&ct[i]);
    struct CreateTopicsRequest cr;
    CreateTopicsRequest_init(&cr);
    cr.Topics.count = 3;
    cr.Topics.items = ct;
    for (int16_t v = 0; v <= 7; v++) {
        struct rt t;
        const struct CreateTopicsRequest *got = rt_run(&t, &codec_CreateTopicsRequest, v, &cr);
        DEF(Topics.count, 3);
        rt_free(&t);
    }
    struct MetadataResponse_MetadataResponseTopic mt[3];
    for (int i = 0; i < 3; i++)
        MetadataResponse_MetadataResponseTopic_init(&mt[i]);
    struct MetadataResponse_MetadataResponseBroker mb[3];
    for (int i = 0; i < 3; i++)
        MetadataResponse_MetadataResponseBroker_init(&mb[i]);
    struct MetadataResponse mr;
    MetadataResponse_init(&mr);
    mr.Topics.count = 3;
    mr.Topics.items = mt;
    mr.Brokers.count = 3;
    mr.Brokers.items = mb;
    for (int16_t v = 0; v <= 12; v++) {
        struct rt t;
        const struct MetadataResponse *got = rt_run(&t, &codec_MetadataResponse, v, &mr);
        DEF(Topics.count, 3);
        DEF(Brokers.count, 3);
        rt_free(&t);
    }
}

/* ---- every message type, every version ---------------------------------- */

struct any_codec {
    int16_t key;
    struct codec c;
    void (*init)(void *m);
};

#define ANY_CODEC(T)                                                                   \
    static void init_any_##T(void *m) { T##_init((struct T *)m); }                     \
    static void enc_any_##T(struct obuf *w, int16_t v, const void *m)                  \
    {                                                                                  \
        T##_encode(w, v, (const struct T *)m);                                         \
    }                                                                                  \
    static int dec_any_##T(struct kread *r, struct arena *a, int16_t v, void *m)       \
    {                                                                                  \
        return T##_decode(r, a, v, (struct T *)m);                                     \
    }
#define ANY_PAIR(key, Name) ANY_CODEC(Name##Request) ANY_CODEC(Name##Response)
#define ALL_APIS(X)                                        \
    X(KAPI_PRODUCE, Produce)                               \
    X(KAPI_FETCH, Fetch)                                   \
    X(KAPI_LISTOFFSETS, ListOffsets)                       \
    X(KAPI_METADATA, Metadata)                             \
    X(KAPI_OFFSETCOMMIT, OffsetCommit)                     \
    X(KAPI_OFFSETFETCH, OffsetFetch)                       \
    X(KAPI_FINDCOORDINATOR, FindCoordinator)               \
    X(KAPI_JOINGROUP, JoinGroup)                           \
    X(KAPI_HEARTBEAT, Heartbeat)                           \
    X(KAPI_LEAVEGROUP, LeaveGroup)                         \
    X(KAPI_SYNCGROUP, SyncGroup)                           \
    X(KAPI_DESCRIBEGROUPS, DescribeGroups)                 \
    X(KAPI_LISTGROUPS, ListGroups)                         \
    X(KAPI_SASLHANDSHAKE, SaslHandshake)                   \
    X(KAPI_APIVERSIONS, ApiVersions)                       \
    X(KAPI_CREATETOPICS, CreateTopics)                     \
    X(KAPI_DELETETOPICS, DeleteTopics)                     \
    X(KAPI_DELETERECORDS, DeleteRecords)                   \
    X(KAPI_INITPRODUCERID, InitProducerId)                 \
    X(KAPI_OFFSETFORLEADEREPOCH, OffsetForLeaderEpoch)     \
    X(KAPI_DESCRIBECONFIGS, DescribeConfigs)               \
    X(KAPI_ALTERCONFIGS, AlterConfigs)                     \
    X(KAPI_SASLAUTHENTICATE, SaslAuthenticate)             \
    X(KAPI_CREATEPARTITIONS, CreatePartitions)             \
    X(KAPI_DELETEGROUPS, DeleteGroups)                     \
    X(KAPI_INCREMENTALALTERCONFIGS, IncrementalAlterConfigs) \
    X(KAPI_OFFSETDELETE, OffsetDelete)                     \
    X(KAPI_DESCRIBECLUSTER, DescribeCluster)

ALL_APIS(ANY_PAIR)

#define ANY_ENTRY(key, T) {key, {#T, enc_any_##T, dec_any_##T, sizeof(struct T)}, init_any_##T},
#define ANY_REQ(key, Name) ANY_ENTRY(key, Name##Request)
#define ANY_RESP(key, Name) ANY_ENTRY(key, Name##Response)

static const struct any_codec all_codecs[] = {ALL_APIS(ANY_REQ) ALL_APIS(ANY_RESP)};

/* Each message as its _init leaves it (the spec's defaults) survives a
 * round trip at every version the codec table allows, with all the checks
 * of rt_run: full consumption, identical re-encoding, every truncation
 * refused. */
TEST(kmsg_every_type_every_version_default_roundtrip)
{
    int n = 0;
    for (size_t i = 0; i < sizeof all_codecs / sizeof all_codecs[0]; i++) {
        const struct any_codec *e = &all_codecs[i];
        const struct kmsg_api *api = kmsg_api(e->key);
        CHECK(api != NULL);
        void *in = malloc(e->c.size);
        e->init(in);
        for (int16_t v = api->min_version; v <= api->max_version; v++) {
            struct rt t;
            rt_run(&t, &e->c, v, in);
            /* flexible versions end with an (empty) tag section */
            if (v >= api->flexible_from && api->flexible_from >= 0)
                CHECK_EQ(t.frame[t.n - 1], 0x00);
            rt_free(&t);
            n++;
        }
        free(in);
    }
    CHECK_EQ(n, 348); /* 174 (API, version) pairs, request and response each */
}
