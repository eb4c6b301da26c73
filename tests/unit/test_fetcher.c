/* test_fetcher.c: the native fetch client (client/fetcher.c) against a
 * scripted peer in a thread on 127.0.0.1 (an ephemeral port) that answers
 * each request as it arrives, with answers built by the generated codecs:
 * opening (versions, Metadata, ListOffsets of the latest offset for the
 * partitions asked), a Fetch round that walks a batch from the offset
 * asked, the pipelined next Fetch with the offset after it and the wait
 * asked, reading to the end, a corrupt batch, and a partition the topic
 * lacks.  The peer reads and writes with libc only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/fetcher.h"
#include "common/alloc.h"
#include "protocol/kmsg.h"
#include "protocol/records.h"
#include "fake_peer.h"
#include "test.h"

/* ---- the scripted peer -------------------------------------------------- */

#define PEER_MAX 8
#define PEER_REQ_MAX 1024
#define CLIENT_ID "ft"
/* request header v1 with CLIENT_ID: key, version, correlation id, id */
#define REQ_HEADER (2 + 2 + 4 + 2 + 2)

/* Answers request i with answers[i] as soon as it arrives; after the last
 * answer it waits for the client to hang up. */
struct peer {
    int lfd, port;
    struct obuf answers[PEER_MAX]; /* the bytes after size and correlation id */
    int nanswers;
    uint8_t req[PEER_MAX][PEER_REQ_MAX]; /* payloads after the size */
    size_t reqlen[PEER_MAX];
    int nreqs;
    pthread_t th;
};



static void *peer_main(void *arg)
{
    struct peer *pe = arg;
    int fd = accept(pe->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < pe->nanswers; i++) {
        uint8_t h[8];
        if (fake_read_frame(fd, pe->req[i], PEER_REQ_MAX, &pe->reqlen[i]) < 0)
            goto out;
        pe->nreqs = i + 1;
        uint32_t len = (uint32_t)(4 + pe->answers[i].len);
        h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
        memcpy(h + 4, pe->req[i] + 4, 4); /* the request's correlation id */
        fake_write_full(fd, h, 8);
        fake_write_full(fd, pe->answers[i].data, pe->answers[i].len);
    }
    fake_drain(fd);
out:
    close(fd);
    return NULL;
}

static void peer_start(struct peer *pe)
{
    pe->lfd = fake_listen(&pe->port);
    CHECK(pe->lfd >= 0);
    CHECK_EQ(pthread_create(&pe->th, NULL, peer_main, pe), 0);
}

static void peer_stop(struct peer *pe)
{
    pthread_join(pe->th, NULL);
    close(pe->lfd);
    for (int i = 0; i < pe->nanswers; i++)
        obuf_free(&pe->answers[i]);
}

/* The next answer to script. */
static struct obuf *next_answer(struct peer *pe)
{
    CHECK(pe->nanswers < PEER_MAX);
    obuf_init(&pe->answers[pe->nanswers]);
    return &pe->answers[pe->nanswers++];
}

/* ---- answers ------------------------------------------------------------ */

/* ApiVersions v0: Metadata v1, ListOffsets v1 and Fetch v4 only. */
static void answer_versions(struct peer *pe)
{
    static struct ApiVersionsResponse_ApiVersion keys[] = {
        {KAPI_METADATA, 0, 1}, {KAPI_LISTOFFSETS, 0, 1}, {KAPI_FETCH, 0, 4}, {KAPI_APIVERSIONS, 0, 0}};
    struct ApiVersionsResponse resp;
    ApiVersionsResponse_init(&resp);
    resp.ApiKeys.count = 4;
    resp.ApiKeys.items = keys;
    ApiVersionsResponse_encode(next_answer(pe), 0, &resp);
}

/* Metadata v1: topic "t" with partitions 0 and 1, both led by broker 1. */
static void answer_metadata(struct peer *pe)
{
    static int32_t replicas[] = {1};
    static struct MetadataResponse_MetadataResponsePartition parts[2];
    static struct MetadataResponse_MetadataResponseBroker broker;
    static struct MetadataResponse_MetadataResponseTopic topic;
    struct MetadataResponse md;
    for (int i = 0; i < 2; i++) {
        MetadataResponse_MetadataResponsePartition_init(&parts[i]);
        parts[i].PartitionIndex = i;
        parts[i].LeaderId = 1;
        parts[i].ReplicaNodes.count = parts[i].IsrNodes.count = 1;
        parts[i].ReplicaNodes.items = parts[i].IsrNodes.items = replicas;
    }
    MetadataResponse_MetadataResponseBroker_init(&broker);
    broker.NodeId = 1;
    broker.Host = kstr_c("127.0.0.1");
    broker.Port = pe->port;
    MetadataResponse_MetadataResponseTopic_init(&topic);
    topic.Name = kstr_c("t");
    topic.Partitions.count = 2;
    topic.Partitions.items = parts;
    MetadataResponse_init(&md);
    md.Brokers.count = 1;
    md.Brokers.items = &broker;
    md.Topics.count = 1;
    md.Topics.items = &topic;
    MetadataResponse_encode(next_answer(pe), 1, &md);
}

/* ListOffsets v1: partition 1 of "t" at offset. */
static void answer_offset(struct peer *pe, int64_t offset)
{
    struct ListOffsetsResponse_ListOffsetsPartitionResponse p;
    ListOffsetsResponse_ListOffsetsPartitionResponse_init(&p);
    p.PartitionIndex = 1;
    p.Offset = offset;
    struct ListOffsetsResponse_ListOffsetsTopicResponse t = {kstr_c("t"), {1, &p}};
    struct ListOffsetsResponse resp;
    ListOffsetsResponse_init(&resp);
    resp.Topics.count = 1;
    resp.Topics.items = &t;
    ListOffsetsResponse_encode(next_answer(pe), 1, &resp);
}

/* Fetch v4: partition 1 of "t" with the given records (len 0: none). */
static void answer_fetch(struct peer *pe, const uint8_t *records, size_t len)
{
    struct FetchResponse_PartitionData p;
    FetchResponse_PartitionData_init(&p);
    p.PartitionIndex = 1;
    p.Records = (krecords){records, (int32_t)len, -1, 0};
    struct FetchResponse_FetchableTopicResponse t;
    FetchResponse_FetchableTopicResponse_init(&t);
    t.Topic = kstr_c("t");
    t.Partitions.count = 1;
    t.Partitions.items = &p;
    struct FetchResponse resp;
    FetchResponse_init(&resp);
    resp.Responses.count = 1;
    resp.Responses.items = &t;
    FetchResponse_encode(next_answer(pe), 4, &resp);
}

/* A batch of three records with 10-byte values at base offset 4. */
static void build_batch(struct obuf *b)
{
    static const uint8_t v[10] = "0123456789";
    struct records_rec recs[3];
    for (int i = 0; i < 3; i++)
        recs[i] = (struct records_rec){NULL, -1, v, sizeof v, 1000 + i, NULL, 0};
    obuf_init(b);
    CHECK_EQ(records_build_v2(b, 0, 1000, recs, 3, -1, -1, -1), 0);
    records_set_base_offset(b->data, 4);
}

/* The Fetch request the peer received as request i. */
static void fetch_request(struct peer *pe, int i, struct arena *a, struct FetchRequest *req)
{
    struct kread r;
    CHECK(i < pe->nreqs && pe->reqlen[i] > REQ_HEADER);
    CHECK_EQ(pe->req[i][1], KAPI_FETCH);
    kread_init(&r, pe->req[i] + REQ_HEADER, pe->reqlen[i] - REQ_HEADER);
    CHECK_EQ(FetchRequest_decode(&r, a, 4, req), 0);
    CHECK_EQ(req->Topics.count, 1);
    CHECK_EQ(req->Topics.items[0].Partitions.count, 1);
}

static struct fetcher *open_to(struct peer *pe, int32_t partition, int64_t start, char *err, size_t errlen)
{
    struct fetcher_conf conf = {"127.0.0.1", pe->port, CLIENT_ID, "t", 1 << 20, 2000};
    return fetcher_open(&conf, &partition, &start, 1, err, errlen);
}

static void check_err(const char *err, const char *words)
{
    if (!strstr(err, words)) {
        fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, words);
        CHECK(0);
    }
}

/* ---- tests -------------------------------------------------------------- */

TEST(fetcher_reads_from_latest_and_pipelines)
{
    static struct peer pe;
    struct obuf batch;
    build_batch(&batch);
    peer_start(&pe);
    answer_versions(&pe);
    answer_metadata(&pe);
    answer_offset(&pe, 5);                     /* the latest offset: 5 */
    answer_fetch(&pe, batch.data, batch.len);  /* offsets 4-6: 4 is before what was asked */
    answer_fetch(&pe, NULL, 0);                /* caught up: the wait ran out */
    char err[256] = "";
    struct fetcher *f = open_to(&pe, 1, FETCHER_LATEST, err, sizeof err);
    CHECK(f != NULL);
    int n;
    const struct fetcher_part *parts = fetcher_parts(f, &n);
    CHECK_EQ(n, 1);
    CHECK_EQ(parts[0].id, 1);
    CHECK_EQ(parts[0].pos, 5);
    CHECK_EQ(parts[0].end, -1);

    long long records, bytes;
    CHECK_EQ(fetcher_poll(f, 100, &records, &bytes), 1);
    CHECK_EQ(records, 2);
    CHECK_EQ(bytes, 20);
    CHECK_EQ(parts[0].pos, 7);
    CHECK_EQ(parts[0].records, 2);
    CHECK_EQ(fetcher_poll(f, 100, &records, &bytes), 1);
    CHECK_EQ(records, 0);
    struct fetcher_stats s = fetcher_stats(f);
    CHECK_EQ(s.fetch_version, 4);
    CHECK_EQ(s.records, 2);
    CHECK_EQ(s.bytes, 20);
    CHECK_EQ(s.wire_bytes, (long long)batch.len);
    /* the second poll sent the third Fetch before decoding */
    CHECK_EQ(s.fetches, 3);
    fetcher_close(f);
    peer_stop(&pe);

    struct arena a;
    arena_init(&a);
    struct FetchRequest req;
    fetch_request(&pe, 3, &a, &req);
    CHECK_EQ(req.MaxWaitMs, 100);
    CHECK_EQ(req.MinBytes, 1);
    CHECK_EQ(req.Topics.items[0].Partitions.items[0].Partition, 1);
    CHECK_EQ(req.Topics.items[0].Partitions.items[0].FetchOffset, 5);
    /* the pipelined one asks for the offset after the batch */
    fetch_request(&pe, 4, &a, &req);
    CHECK_EQ(req.Topics.items[0].Partitions.items[0].FetchOffset, 7);
    arena_free(&a);
    obuf_free(&batch);
}

TEST(fetcher_reads_to_end)
{
    static struct peer pe;
    struct obuf batch;
    build_batch(&batch);
    peer_start(&pe);
    answer_versions(&pe);
    answer_metadata(&pe);
    answer_offset(&pe, 4);                     /* the end offset: 7 */
    answer_offset(&pe, 7);
    answer_fetch(&pe, batch.data, batch.len);
    char err[256] = "";
    struct fetcher *f = open_to(&pe, 1, FETCHER_LATEST, err, sizeof err);
    CHECK(f != NULL);
    CHECK_EQ(fetcher_read_to_end(f, 1000), 3);
    long long records, bytes;
    CHECK_EQ(fetcher_poll(f, 100, &records, &bytes), 1);
    CHECK_EQ(records, 3);
    /* at its end: no further Fetch goes out */
    CHECK_EQ(fetcher_poll(f, 100, &records, &bytes), 0);
    CHECK_EQ(fetcher_stats(f).fetches, 1);
    fetcher_close(f);
    peer_stop(&pe);
    obuf_free(&batch);
}

TEST(fetcher_corrupt_batch)
{
    static struct peer pe;
    struct obuf batch;
    build_batch(&batch);
    batch.data[batch.len - 1] ^= 1; /* a value byte: the CRC no longer matches */
    peer_start(&pe);
    answer_versions(&pe);
    answer_metadata(&pe);
    answer_fetch(&pe, batch.data, batch.len);
    char err[256] = "";
    struct fetcher *f = open_to(&pe, 1, 4, err, sizeof err);
    CHECK(f != NULL);
    long long records, bytes;
    CHECK_EQ(fetcher_poll(f, 100, &records, &bytes), -1);
    check_err(err, "of a Fetch answer for t [1] is corrupt: its CRC-32C does not match");
    CHECK_EQ(records, 0);
    fetcher_close(f);
    peer_stop(&pe);
    obuf_free(&batch);
}

TEST(fetcher_missing_partition)
{
    static struct peer pe;
    peer_start(&pe);
    answer_versions(&pe);
    answer_metadata(&pe);
    char err[256] = "";
    size_t live = alloc_live_bytes();
    CHECK(open_to(&pe, 7, 0, err, sizeof err) == NULL);
    check_err(err, "topic t has no partition 7 at the broker at 127.0.0.1:");
    CHECK_EQ(alloc_live_bytes(), live);
    peer_stop(&pe);
}

TEST(fetcher_bad_wait)
{
    static struct peer pe;
    peer_start(&pe);
    answer_versions(&pe);
    answer_metadata(&pe);
    char err[256] = "";
    struct fetcher *f = open_to(&pe, 0, 0, err, sizeof err);
    CHECK(f != NULL);
    long long records, bytes;
    CHECK_EQ(fetcher_poll(f, 2000, &records, &bytes), -1);
    check_err(err, "a Fetch wait of 2000 ms is not within the connection's timeout of 2000 ms");
    fetcher_close(f);
    peer_stop(&pe);
}
