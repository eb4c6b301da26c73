/* fuzz_request_header.c: libFuzzer harness for request-frame parsing.  The
 * broker's header parser is static in broker/conn.c, so this repeats its
 * steps with the kwire.h primitives: int16 api key, int16 api version,
 * int32 correlation id, the client id as a classic nullable string (it
 * keeps its int16 length even in header v2), then, for a flexible version
 * of a known API, a tagged-field section whose entries are skipped.  A
 * header that parses is followed, like in the broker, by decoding the body
 * with that API's request decoder when the version is one the codec knows.
 * Every view handed out must lie inside the frame.  The input is the frame
 * (without its 4-byte size).  See tests/fuzz/README.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "protocol/kmsg.h"

struct header {
    int16_t api_key, api_version;
    int32_t correlation_id;
    kstr client_id;
    bool flexible;
};

/* The same steps as conn.c's parse_header. */
static int parse_header(struct kread *h, struct header *out)
{
    out->api_key = kr_int16(h);
    out->api_version = kr_int16(h);
    out->correlation_id = kr_int32(h);
    const struct kmsg_api *spec = kmsg_api(out->api_key);
    out->flexible = spec && spec->flexible_from >= 0 && out->api_version >= spec->flexible_from;
    out->client_id = kr_str(h, false, true);
    if (out->flexible) {
        int32_t n = kr_tag_count(h);
        for (int32_t i = 0; i < n && !h->err; i++) {
            kr_uvarint(h);
            uint32_t size = kr_uvarint(h);
            kr_take(h, size);
        }
    }
    return h->err ? -1 : 0;
}

static void inside(const void *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
    const uint8_t *q = p;
    if (n && (q < lo || q + n > hi))
        abort();
}

/* Decodes the body as the broker would; returns the decoder's result. */
static int decode_body(struct kread *r, struct arena *a, int16_t key, int16_t v)
{
    union {
        struct ProduceRequest produce;
        struct FetchRequest fetch;
        struct ListOffsetsRequest list_offsets;
        struct MetadataRequest metadata;
        struct OffsetCommitRequest offset_commit;
        struct OffsetFetchRequest offset_fetch;
        struct FindCoordinatorRequest find_coordinator;
        struct JoinGroupRequest join_group;
        struct HeartbeatRequest heartbeat;
        struct LeaveGroupRequest leave_group;
        struct SyncGroupRequest sync_group;
        struct DescribeGroupsRequest describe_groups;
        struct ListGroupsRequest list_groups;
        struct SaslHandshakeRequest sasl_handshake;
        struct ApiVersionsRequest api_versions;
        struct CreateTopicsRequest create_topics;
        struct DeleteTopicsRequest delete_topics;
        struct DeleteRecordsRequest delete_records;
        struct InitProducerIdRequest init_producer_id;
        struct OffsetForLeaderEpochRequest offset_for_leader_epoch;
        struct DescribeConfigsRequest describe_configs;
        struct AlterConfigsRequest alter_configs;
        struct SaslAuthenticateRequest sasl_authenticate;
        struct CreatePartitionsRequest create_partitions;
        struct DeleteGroupsRequest delete_groups;
        struct IncrementalAlterConfigsRequest incremental_alter_configs;
        struct OffsetDeleteRequest offset_delete;
        struct DescribeClusterRequest describe_cluster;
        struct DescribeLogDirsRequest describe_log_dirs;
        struct AlterPartitionReassignmentsRequest alter_partition_reassignments;
        struct ListPartitionReassignmentsRequest list_partition_reassignments;
        struct AlterPartitionRequest alter_partition;
        struct BrokerRegistrationRequest broker_registration;
        struct BrokerHeartbeatRequest broker_heartbeat;
        struct UnregisterBrokerRequest unregister_broker;
    } m;
    switch (key) {
    case KAPI_PRODUCE: return ProduceRequest_decode(r, a, v, &m.produce);
    case KAPI_FETCH: return FetchRequest_decode(r, a, v, &m.fetch);
    case KAPI_LISTOFFSETS: return ListOffsetsRequest_decode(r, a, v, &m.list_offsets);
    case KAPI_METADATA: return MetadataRequest_decode(r, a, v, &m.metadata);
    case KAPI_OFFSETCOMMIT: return OffsetCommitRequest_decode(r, a, v, &m.offset_commit);
    case KAPI_OFFSETFETCH: return OffsetFetchRequest_decode(r, a, v, &m.offset_fetch);
    case KAPI_FINDCOORDINATOR: return FindCoordinatorRequest_decode(r, a, v, &m.find_coordinator);
    case KAPI_JOINGROUP: return JoinGroupRequest_decode(r, a, v, &m.join_group);
    case KAPI_HEARTBEAT: return HeartbeatRequest_decode(r, a, v, &m.heartbeat);
    case KAPI_LEAVEGROUP: return LeaveGroupRequest_decode(r, a, v, &m.leave_group);
    case KAPI_SYNCGROUP: return SyncGroupRequest_decode(r, a, v, &m.sync_group);
    case KAPI_DESCRIBEGROUPS: return DescribeGroupsRequest_decode(r, a, v, &m.describe_groups);
    case KAPI_LISTGROUPS: return ListGroupsRequest_decode(r, a, v, &m.list_groups);
    case KAPI_SASLHANDSHAKE: return SaslHandshakeRequest_decode(r, a, v, &m.sasl_handshake);
    case KAPI_APIVERSIONS: return ApiVersionsRequest_decode(r, a, v, &m.api_versions);
    case KAPI_CREATETOPICS: return CreateTopicsRequest_decode(r, a, v, &m.create_topics);
    case KAPI_DELETETOPICS: return DeleteTopicsRequest_decode(r, a, v, &m.delete_topics);
    case KAPI_DELETERECORDS: return DeleteRecordsRequest_decode(r, a, v, &m.delete_records);
    case KAPI_INITPRODUCERID: return InitProducerIdRequest_decode(r, a, v, &m.init_producer_id);
    case KAPI_OFFSETFORLEADEREPOCH: return OffsetForLeaderEpochRequest_decode(r, a, v, &m.offset_for_leader_epoch);
    case KAPI_DESCRIBECONFIGS: return DescribeConfigsRequest_decode(r, a, v, &m.describe_configs);
    case KAPI_ALTERCONFIGS: return AlterConfigsRequest_decode(r, a, v, &m.alter_configs);
    case KAPI_SASLAUTHENTICATE: return SaslAuthenticateRequest_decode(r, a, v, &m.sasl_authenticate);
    case KAPI_CREATEPARTITIONS: return CreatePartitionsRequest_decode(r, a, v, &m.create_partitions);
    case KAPI_DELETEGROUPS: return DeleteGroupsRequest_decode(r, a, v, &m.delete_groups);
    case KAPI_INCREMENTALALTERCONFIGS:
        return IncrementalAlterConfigsRequest_decode(r, a, v, &m.incremental_alter_configs);
    case KAPI_OFFSETDELETE: return OffsetDeleteRequest_decode(r, a, v, &m.offset_delete);
    case KAPI_DESCRIBECLUSTER: return DescribeClusterRequest_decode(r, a, v, &m.describe_cluster);
    case KAPI_DESCRIBELOGDIRS: return DescribeLogDirsRequest_decode(r, a, v, &m.describe_log_dirs);
    case KAPI_ALTERPARTITIONREASSIGNMENTS:
        return AlterPartitionReassignmentsRequest_decode(r, a, v, &m.alter_partition_reassignments);
    case KAPI_LISTPARTITIONREASSIGNMENTS:
        return ListPartitionReassignmentsRequest_decode(r, a, v, &m.list_partition_reassignments);
    case KAPI_ALTERPARTITION: return AlterPartitionRequest_decode(r, a, v, &m.alter_partition);
    case KAPI_BROKERREGISTRATION: return BrokerRegistrationRequest_decode(r, a, v, &m.broker_registration);
    case KAPI_BROKERHEARTBEAT: return BrokerHeartbeatRequest_decode(r, a, v, &m.broker_heartbeat);
    case KAPI_UNREGISTERBROKER: return UnregisterBrokerRequest_decode(r, a, v, &m.unregister_broker);
    }
    abort(); /* kmsg_api knows a key this switch does not */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exactly-sized frame: any read past it is caught by ASan */
    uint8_t *frame = malloc(size ? size : 1);
    if (size)
        memcpy(frame, data, size);
    struct kread h;
    kread_init(&h, frame, size);
    struct header hd;
    int rc = parse_header(&h, &hd);
    if (rc == 0) {
        if (size < 8)
            abort(); /* key, version and correlation id need 8 bytes */
        if (hd.client_id.len < -1)
            abort();
        if (hd.client_id.len >= 0)
            inside(hd.client_id.ptr, (size_t)hd.client_id.len, frame, frame + size);
        if (h.p < frame + 8 || h.p > h.end || h.end != frame + size)
            abort();
        const struct kmsg_api *spec = kmsg_api(hd.api_key);
        if (spec && hd.api_version >= spec->min_version && hd.api_version <= spec->max_version) {
            struct arena a;
            arena_init(&a);
            int brc = decode_body(&h, &a, hd.api_key, hd.api_version);
            if ((brc < 0) != (h.err != 0))
                abort(); /* the result and the sticky error disagree */
            if (h.p > h.end)
                abort();
            arena_free(&a);
        }
    } else if (h.err == 0) {
        abort();
    }
    free(frame);
    return 0;
}
