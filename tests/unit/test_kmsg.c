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
    if (again.len != t->n || memcmp(again.data, t->frame, t->n) != 0) {
        fprintf(stderr, "  %s v%d: re-encoding differs\n", c->name, v);
        dump("first", t->frame, t->n);
        dump("again", again.data, again.len);
    }
    CHECK_EQ(again.len, t->n);
    CHECK(memcmp(again.data, t->frame, t->n) == 0);
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
