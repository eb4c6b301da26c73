/* fetcher.c: see fetcher.h.  The requests and answers are the generated
 * codecs of protocol/kmsg.h over one kconn; record batches are read with
 * protocol/records.h. */
#include "client/fetcher.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "client/kconn.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/obuf.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"
#include "protocol/records.h"

/* The most one partition contributes to one fetch, Kafka's
 * max.partition.fetch.bytes raised from 1 MiB. */
#define PARTITION_MAX_BYTES (16 * 1024 * 1024)
/* Room for an answer's own fields and a whole first batch beyond MaxBytes
 * (Kafka returns one whole batch even when it is larger than the limits). */
#define FRAME_SLACK (8 * 1024 * 1024)

/* The fetch state of one partition, beside its public fetcher_part. */
struct fstate {
    int64_t asked; /* the offset the fetch in flight asked for, -1 if not asked */
    bool answered; /* the answer to that fetch named this partition */
    int64_t from;  /* the offset the answer being decoded starts at (the next
                      fetch may already be in flight, with asked moved on) */
};

struct fetcher {
    struct kconn c;
    char *err;            /* borrows the caller's buffer */
    size_t errlen;
    const char *topic;    /* borrows */
    int32_t max_bytes;
    int16_t meta_v, list_v, fetch_v;
    struct fetcher_part *parts; /* owned, nparts entries */
    struct fstate *st;    /* owned, nparts entries, same order */
    int nparts;
    int rot;              /* rotates the partitions' order in fetches, for fairness */
    struct FetchRequest_FetchPartition *fp; /* owned, nparts entries */
    bool inflight;        /* a Fetch was sent and not received */
    int32_t corr;         /* its correlation id */
    long long limit;      /* stop after this many records in all */
    struct fetcher_stats s;
    struct obuf w;        /* the request being built */
    struct arena a;       /* the decoded answer, reset each time */
    struct kconn_frame f; /* the received answer */
    struct obuf scratch;  /* decompressed records */
};

/* Sets the error sentence; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct fetcher *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, f->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct fetcher *f)
{
    return fail(f, "out of memory reading %s", f->topic);
}

/* The index of the partition with this id among those read, or -1. */
static int find_part(const struct fetcher *f, int32_t id)
{
    if (id >= 0 && id < f->nparts && f->parts[id].id == id)
        return id;
    for (int i = 0; i < f->nparts; i++)
        if (f->parts[i].id == id)
            return i;
    return -1;
}

/* Checks that an answer decoded and filled its frame exactly: bytes left
 * over mean the two sides disagree on the layout, and what was decoded
 * cannot be trusted.  Returns 0, or -1 with the error set. */
static int decoded(struct fetcher *f, struct kread *r, int rc, int16_t key)
{
    if (rc == 0 && kr_left(r) == 0)
        return 0;
    if (rc == 0)
        r->err = KR_EINVAL;
    return kconn_malformed(&f->c, r, key);
}

/* ---- opening ------------------------------------------------------------ */

/* A partition's leader must be the broker we are connected to: the fetcher
 * reads from one broker only.  With several brokers that one is
 * recognised by its advertised host and port. */
static int check_leader(struct fetcher *f, const struct MetadataResponse *md,
                        const struct MetadataResponse_MetadataResponsePartition *p)
{
    if (md->Brokers.count == 1 && md->Brokers.items[0].NodeId == p->LeaderId)
        return 0;
    for (int32_t b = 0; b < md->Brokers.count; b++) {
        const struct MetadataResponse_MetadataResponseBroker *br = &md->Brokers.items[b];
        if (br->NodeId != p->LeaderId)
            continue;
        if (br->Port == f->c.port && kstr_eq(br->Host, f->c.host))
            return 0;
        return fail(f, "partition %d of %s is led by broker %d at %.*s:%d, not by %s:%d; the native client "
                    "reads from the bootstrap broker only", p->PartitionIndex, f->topic, br->NodeId,
                    (int)(br->Host.len > 0 ? br->Host.len : 0), br->Host.ptr ? br->Host.ptr : "", br->Port,
                    f->c.host, f->c.port);
    }
    return fail(f, "partition %d of %s has leader %d, which the broker at %s:%d does not list", p->PartitionIndex,
                f->topic, p->LeaderId, f->c.host, f->c.port);
}

/* Checks one partition of the topic's Metadata.  Returns 0 or -1. */
static int check_partition(struct fetcher *f, const struct MetadataResponse *md,
                           const struct MetadataResponse_MetadataResponsePartition *p)
{
    if (p->ErrorCode && p->ErrorCode != KERR_REPLICA_NOT_AVAILABLE)
        return fail(f, "partition %d of %s: the broker reports %s", p->PartitionIndex, f->topic,
                    kerr_name(p->ErrorCode));
    return check_leader(f, md, p);
}

/* Allocates the partition arrays for n partitions. */
static int alloc_parts(struct fetcher *f, int n)
{
    f->nparts = n;
    f->parts = xcalloc((size_t)n, sizeof *f->parts);
    f->st = xcalloc((size_t)n, sizeof *f->st);
    f->fp = xcalloc((size_t)n, sizeof *f->fp);
    return f->parts && f->st && f->fp ? 0 : oom(f);
}

/* Takes the partitions to read from the topic's Metadata: those asked
 * (each must be listed), or every one when ids is NULL. */
static int take_partitions(struct fetcher *f, const struct MetadataResponse *md,
                           const struct MetadataResponse_MetadataResponseTopic *t, const int32_t *ids, int n)
{
    if (t->Partitions.count <= 0)
        return fail(f, "the broker at %s:%d lists no partitions for %s", f->c.host, f->c.port, f->topic);
    if (alloc_parts(f, ids ? n : t->Partitions.count) < 0)
        return -1;
    for (int i = 0; i < f->nparts; i++) {
        int32_t j = 0;
        if (ids) {
            while (j < t->Partitions.count && t->Partitions.items[j].PartitionIndex != ids[i])
                j++;
            if (j == t->Partitions.count)
                return fail(f, "topic %s has no partition %d at the broker at %s:%d", f->topic, ids[i], f->c.host,
                            f->c.port);
        } else {
            j = i;
        }
        if (check_partition(f, md, &t->Partitions.items[j]) < 0)
            return -1;
        f->parts[i] = (struct fetcher_part){.id = t->Partitions.items[j].PartitionIndex, .end = -1};
        f->st[i].asked = -1;
    }
    for (int i = 0; i < f->nparts; i++)
        if (find_part(f, f->parts[i].id) != i)
            return fail(f, "partition %d of %s is listed twice", f->parts[i].id, f->topic);
    return 0;
}

/* Metadata for the topic: its partitions, each led by this broker. */
static int metadata(struct fetcher *f, const int32_t *ids, int n)
{
    struct MetadataRequest_MetadataRequestTopic t;
    MetadataRequest_MetadataRequestTopic_init(&t);
    t.Name = kstr_c(f->topic);
    struct MetadataRequest req;
    MetadataRequest_init(&req);
    req.Topics.count = 1;
    req.Topics.items = &t;
    req.AllowAutoTopicCreation = false;
    kconn_begin(&f->c, &f->w, KAPI_METADATA, f->meta_v);
    MetadataRequest_encode(&f->w, f->meta_v, &req);
    struct kread r;
    struct MetadataResponse md;
    if (kconn_roundtrip(&f->c, &f->w, &f->f, &r) < 0)
        return -1;
    arena_reset(&f->a);
    if (decoded(f, &r, MetadataResponse_decode(&r, &f->a, f->meta_v, &md), KAPI_METADATA) < 0)
        return -1;
    for (int32_t i = 0; i < md.Topics.count; i++) {
        const struct MetadataResponse_MetadataResponseTopic *tp = &md.Topics.items[i];
        if (!kstr_eq(tp->Name, f->topic))
            continue;
        if (tp->ErrorCode)
            return fail(f, "topic %s: the broker at %s:%d reports %s", f->topic, f->c.host, f->c.port,
                        kerr_name(tp->ErrorCode));
        return take_partitions(f, &md, tp, ids, n);
    }
    return fail(f, "the broker at %s:%d did not describe topic %s", f->c.host, f->c.port, f->topic);
}

/* Stores the offsets of a ListOffsets answer in out[] for the partitions
 * asked (ts[i] < 0).  Returns 0 or -1. */
static int store_offsets(struct fetcher *f, const struct ListOffsetsResponse *resp, const int64_t *ts,
                         int64_t *out, int asked)
{
    int found = 0;
    for (int32_t t = 0; t < resp->Topics.count; t++) {
        if (!kstr_eq(resp->Topics.items[t].Name, f->topic))
            continue;
        for (int32_t k = 0; k < resp->Topics.items[t].Partitions.count; k++) {
            const struct ListOffsetsResponse_ListOffsetsPartitionResponse *p =
                &resp->Topics.items[t].Partitions.items[k];
            int i = find_part(f, p->PartitionIndex);
            if (i < 0 || ts[i] >= 0)
                continue;
            if (p->ErrorCode || p->Offset < 0)
                return fail(f, "the %s offset of %s [%d]: the broker reports %s",
                            ts[i] == FETCHER_EARLIEST ? "first" : "end", f->topic, p->PartitionIndex,
                            p->ErrorCode ? kerr_name(p->ErrorCode) : "no offset");
            out[i] = p->Offset;
            found++;
        }
    }
    if (found < asked)
        return fail(f, "the broker at %s:%d answered ListOffsets for %d of the %d partitions of %s", f->c.host,
                    f->c.port, found, asked, f->topic);
    return 0;
}

/* ListOffsets of the partitions i with ts[i] FETCHER_EARLIEST or
 * FETCHER_LATEST, into out[i]; the others are left alone. */
static int list_offsets(struct fetcher *f, const int64_t *ts, int64_t *out)
{
    arena_reset(&f->a);
    struct ListOffsetsRequest_ListOffsetsPartition *lp = arena_alloc(&f->a, (size_t)f->nparts * sizeof *lp);
    if (!lp)
        return oom(f);
    int k = 0;
    for (int i = 0; i < f->nparts; i++) {
        if (ts[i] >= 0)
            continue;
        ListOffsetsRequest_ListOffsetsPartition_init(&lp[k]);
        lp[k].PartitionIndex = f->parts[i].id;
        lp[k].Timestamp = ts[i];
        k++;
    }
    if (k == 0)
        return 0;
    struct ListOffsetsRequest_ListOffsetsTopic t = {kstr_c(f->topic), {k, lp}};
    struct ListOffsetsRequest req;
    ListOffsetsRequest_init(&req);
    req.ReplicaId = -1;
    req.Topics.count = 1;
    req.Topics.items = &t;
    kconn_begin(&f->c, &f->w, KAPI_LISTOFFSETS, f->list_v);
    ListOffsetsRequest_encode(&f->w, f->list_v, &req);
    struct kread r;
    struct ListOffsetsResponse resp;
    if (kconn_roundtrip(&f->c, &f->w, &f->f, &r) < 0)
        return -1;
    arena_reset(&f->a);
    if (decoded(f, &r, ListOffsetsResponse_decode(&r, &f->a, f->list_v, &resp), KAPI_LISTOFFSETS) < 0)
        return -1;
    return store_offsets(f, &resp, ts, out, k);
}

/* Sets every partition's position from start[] (NULL: the first offsets). */
static int start_positions(struct fetcher *f, const int64_t *start)
{
    int64_t *ts = xcalloc((size_t)f->nparts, sizeof *ts), *pos = xcalloc((size_t)f->nparts, sizeof *pos);
    int rc = -1;
    if (!ts || !pos) {
        oom(f);
        goto out;
    }
    for (int i = 0; i < f->nparts; i++) {
        ts[i] = start ? start[i] : FETCHER_EARLIEST;
        if (ts[i] < FETCHER_EARLIEST) {
            fail(f, "start offset %lld of %s [%d] is neither an offset nor FETCHER_EARLIEST or FETCHER_LATEST",
                 (long long)ts[i], f->topic, f->parts[i].id);
            goto out;
        }
        pos[i] = ts[i];
    }
    if (list_offsets(f, ts, pos) < 0)
        goto out;
    for (int i = 0; i < f->nparts; i++)
        f->parts[i].pos = pos[i];
    rc = 0;
out:
    xfree(ts);
    xfree(pos);
    return rc;
}

struct fetcher *fetcher_open(const struct fetcher_conf *conf, const int32_t *partitions,
                             const int64_t *start_offsets, int npartitions, char *err, size_t errlen)
{
    struct fetcher *f = xcalloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory opening a fetcher of %s", conf->topic);
        return NULL;
    }
    f->err = err;
    f->errlen = errlen;
    f->topic = conf->topic;
    f->max_bytes = conf->max_bytes;
    f->limit = LLONG_MAX;
    f->c.fd = -1; /* closed until kconn_open, so that fetcher_close is safe */
    obuf_init(&f->w);
    obuf_init(&f->scratch);
    arena_init(&f->a);
    if (partitions && npartitions <= 0) {
        fail(f, "a fetcher of %s needs at least one partition", f->topic);
        goto err;
    }
    if (conf->max_bytes <= 0 || conf->max_bytes > INT32_MAX - FRAME_SLACK) {
        fail(f, "a fetch limit of %d bytes is out of range", (int)conf->max_bytes);
        goto err;
    }
    if (kconn_open(&f->c, conf->host, conf->port, conf->timeout_ms, conf->client_id,
                   conf->max_bytes + FRAME_SLACK, err, errlen) < 0 ||
        kconn_api_versions(&f->c) < 0)
        goto err;
    /* Versions both Apache Kafka (2.x-4.x) and shopstream serve, below the
     * flexible ones, so topics go by name and headers stay v1. */
    int mv = kconn_pick_version(&f->c, KAPI_METADATA, 1, 8);
    /* ListOffsets stops at v3: the mock cluster of librdkafka 2.0.2 writes
     * four bytes too many per partition in v4 and v5. */
    int lv = mv < 0 ? -1 : kconn_pick_version(&f->c, KAPI_LISTOFFSETS, 1, 3);
    int fv = lv < 0 ? -1 : kconn_pick_version(&f->c, KAPI_FETCH, 4, 11);
    if (fv < 0)
        goto err;
    f->meta_v = (int16_t)mv;
    f->list_v = (int16_t)lv;
    f->fetch_v = (int16_t)fv;
    f->s.fetch_version = fv;
    if (metadata(f, partitions, npartitions) < 0 || start_positions(f, start_offsets) < 0)
        goto err;
    return f;
err:
    fetcher_close(f);
    return NULL;
}

void fetcher_close(struct fetcher *f)
{
    if (!f)
        return;
    kconn_close(&f->c);
    kconn_frame_free(&f->f);
    obuf_free(&f->w);
    obuf_free(&f->scratch);
    arena_free(&f->a);
    xfree(f->parts);
    xfree(f->st);
    xfree(f->fp);
    xfree(f);
}

long long fetcher_read_to_end(struct fetcher *f, long long max_records)
{
    int64_t *ts = xcalloc((size_t)f->nparts, sizeof *ts), *end = xcalloc((size_t)f->nparts, sizeof *end);
    long long held = -1;
    if (!ts || !end) {
        oom(f);
        goto out;
    }
    for (int i = 0; i < f->nparts; i++)
        ts[i] = FETCHER_LATEST;
    if (list_offsets(f, ts, end) < 0)
        goto out;
    held = 0;
    for (int i = 0; i < f->nparts; i++) {
        f->parts[i].end = end[i];
        held += end[i] > f->parts[i].pos ? end[i] - f->parts[i].pos : 0;
    }
    held = held < max_records ? held : max_records;
    f->limit = f->s.records + held;
out:
    xfree(ts);
    xfree(end);
    return held;
}

const struct fetcher_part *fetcher_parts(const struct fetcher *f, int *n)
{
    *n = f->nparts;
    return f->parts;
}

struct fetcher_stats fetcher_stats(const struct fetcher *f)
{
    return f->s;
}

/* ---- fetching ----------------------------------------------------------- */

/* Sends a Fetch for every partition not read to its end, starting from a
 * different partition each time.  Returns 1 when sent, 0 when nothing is
 * left to fetch, -1 on failure. */
static int send_fetch(struct fetcher *f, int wait_ms)
{
    int k = 0;
    for (int j = 0; j < f->nparts; j++) {
        int i = (j + f->rot) % f->nparts;
        struct fetcher_part *p = &f->parts[i];
        f->st[i].asked = -1;
        f->st[i].answered = false;
        if (p->end >= 0 && p->pos >= p->end)
            continue;
        f->st[i].asked = p->pos;
        FetchRequest_FetchPartition_init(&f->fp[k]);
        f->fp[k].Partition = p->id;
        f->fp[k].FetchOffset = p->pos;
        f->fp[k].PartitionMaxBytes = f->max_bytes < PARTITION_MAX_BYTES ? f->max_bytes : PARTITION_MAX_BYTES;
        k++;
    }
    f->rot = (f->rot + 1) % f->nparts;
    if (k == 0)
        return 0;
    struct FetchRequest_FetchTopic t;
    FetchRequest_FetchTopic_init(&t);
    t.Topic = kstr_c(f->topic);
    t.Partitions.count = k;
    t.Partitions.items = f->fp;
    struct FetchRequest req;
    FetchRequest_init(&req);
    req.ReplicaId = -1;
    req.MaxWaitMs = wait_ms;
    req.MinBytes = 1;
    req.MaxBytes = f->max_bytes;
    req.IsolationLevel = 0; /* read_uncommitted: every record, as it was written */
    req.SessionId = 0;
    req.SessionEpoch = -1;  /* a full fetch outside any fetch session */
    req.Topics.count = 1;
    req.Topics.items = &t;
    f->corr = kconn_begin(&f->c, &f->w, KAPI_FETCH, f->fetch_v);
    FetchRequest_encode(&f->w, f->fetch_v, &req);
    if (kconn_send(&f->c, &f->w) < 0)
        return -1;
    f->inflight = true;
    f->s.fetches++;
    return 1;
}

/* Advances a partition past the whole batches of its records, reading only
 * batch headers (the CRC is checked when the records are decoded).  A
 * partial batch at the end is normal: the broker cuts at the byte limits,
 * and the next fetch starts at it.  Returns the records the whole batches
 * hold from the offset asked on. */
static long long advance(struct fetcher_part *p, int64_t asked, const krecords *rec)
{
    struct records_iter it;
    struct records_batch_info bi;
    const uint8_t *b;
    size_t size;
    long long count = 0;
    records_iter_init(&it, rec->ptr, rec->len > 0 ? (size_t)rec->len : 0, false);
    while (records_iter_next(&it, &bi, &b, &size) == RECORDS_ITER_BATCH) {
        int64_t last = bi.base_offset + bi.last_offset_delta;
        if (last < p->pos)
            continue; /* before what we asked for (a batch that straddles it) */
        if (!bi.is_control)
            count += bi.base_offset >= asked ? bi.record_count : last - asked + 1;
        p->pos = last + 1;
    }
    return count;
}

/* Checks a partition's answer and advances its position.  *count gets the
 * records it should hold.  Returns 0 or -1. */
static int take_partition(struct fetcher *f, const struct FetchResponse_PartitionData *pd, long long *count)
{
    int i = find_part(f, pd->PartitionIndex);
    if (i < 0 || f->st[i].asked < 0 || f->st[i].answered)
        return fail(f, "the broker at %s:%d answered Fetch for partition %d of %s, which was not asked%s",
                    f->c.host, f->c.port, pd->PartitionIndex, f->topic,
                    i >= 0 && f->st[i].answered ? " twice" : "");
    struct fstate *st = &f->st[i];
    st->answered = true;
    st->from = st->asked;
    if (pd->ErrorCode)
        return fail(f, "fetching %s [%d] at offset %lld: the broker reports %s (the log starts at %lld)", f->topic,
                    pd->PartitionIndex, (long long)st->asked, kerr_name(pd->ErrorCode),
                    (long long)pd->LogStartOffset);
    *count += advance(&f->parts[i], st->asked, &pd->Records);
    f->s.wire_bytes += pd->Records.len > 0 ? pd->Records.len : 0;
    return 0;
}

/* Walks the records of one whole batch, counting those at or after the
 * offset the answer starts at, until the limit.  Returns 0 or -1. */
static int decode_batch(struct fetcher *f, struct fetcher_part *p, int64_t from, const uint8_t *b, size_t size,
                        const struct records_batch_info *bi)
{
    static const struct records_limits lim = {0, 0, true};
    const uint8_t *body, *end;
    size_t len;
    if (bi->is_control)
        return 0;
    int e = records_batch_body(b, size, &lim, &f->scratch, &body, &len);
    if (e)
        return fail(f, "the batch at offset %lld of %s [%d] cannot be read: %s", (long long)bi->base_offset,
                    f->topic, p->id, kerr_name(e));
    end = body + len;
    int32_t i;
    for (i = 0; i < bi->record_count && f->s.records < f->limit; i++) {
        struct records_record_view rv;
        if (records_record_next(&body, end, &rv) < 0)
            return fail(f, "record %d of the batch at offset %lld of %s [%d] is malformed", i,
                        (long long)bi->base_offset, f->topic, p->id);
        if (bi->base_offset + rv.offset_delta < from)
            continue;
        long long vb = rv.value_len > 0 ? rv.value_len : 0;
        f->s.records++;
        f->s.bytes += vb;
        p->records++;
        p->bytes += vb;
    }
    if (i == bi->record_count && body != end) /* the count in the header and the records disagree */
        return fail(f, "the batch at offset %lld of %s [%d] has bytes after its %d records",
                    (long long)bi->base_offset, f->topic, p->id, bi->record_count);
    return 0;
}

/* Why records_iter_next called a batch corrupt. */
static const char *corrupt_reason(const uint8_t *p, size_t left)
{
    if (left > RECORDS_OFF_MAGIC && p[RECORDS_OFF_MAGIC] != 2)
        return "it is not a v2 record batch (magic 2)";
    if (left >= RECORDS_LOG_OVERHEAD &&
        (int32_t)((uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11]) <
            RECORDS_V2_OVERHEAD - RECORDS_LOG_OVERHEAD)
        return "its length is below a batch header's";
    return "its CRC-32C does not match";
}

/* Checks the CRC of every whole batch of one partition's records and walks
 * its records.  Returns 0 or -1. */
static int decode_partition(struct fetcher *f, const struct FetchResponse_PartitionData *pd)
{
    int k = find_part(f, pd->PartitionIndex); /* take_partition found it */
    struct fetcher_part *p = &f->parts[k];
    int64_t from = f->st[k].from;
    struct records_iter it;
    struct records_batch_info bi;
    const uint8_t *b;
    size_t size;
    int r;
    records_iter_init(&it, pd->Records.ptr, pd->Records.len > 0 ? (size_t)pd->Records.len : 0, true);
    while ((r = records_iter_next(&it, &bi, &b, &size)) == RECORDS_ITER_BATCH && f->s.records < f->limit)
        if (bi.base_offset + bi.last_offset_delta >= from && decode_batch(f, p, from, b, size, &bi) < 0)
            return -1;
    if (r == RECORDS_ITER_CORRUPT)
        return fail(f, "the batch at byte %zu of a Fetch answer for %s [%d] is corrupt: %s", it.pos, f->topic,
                    p->id, corrupt_reason(it.p + it.pos, it.n - it.pos));
    return 0;
}

/* Receives the answer to the fetch in flight, checks it and advances the
 * positions.  *resp (in f->a, views into f->f) is the decoded answer;
 * *expect the records it should hold.  Returns 0 or -1. */
static int recv_fetch(struct fetcher *f, struct FetchResponse *resp, long long *expect)
{
    struct kread r;
    *expect = 0;
    f->inflight = false;
    if (kconn_recv(&f->c, f->corr, &f->f, &r) < 0)
        return -1;
    arena_reset(&f->a);
    if (decoded(f, &r, FetchResponse_decode(&r, &f->a, f->fetch_v, resp), KAPI_FETCH) < 0)
        return -1;
    if (resp->ErrorCode)
        return fail(f, "the broker at %s:%d answered Fetch with %s", f->c.host, f->c.port,
                    kerr_name(resp->ErrorCode));
    for (int32_t t = 0; t < resp->Responses.count; t++) {
        const struct FetchResponse_FetchableTopicResponse *tr = &resp->Responses.items[t];
        if (!kstr_eq(tr->Topic, f->topic))
            return fail(f, "the broker at %s:%d answered Fetch for topic %.*s, which was not asked", f->c.host,
                        f->c.port, tr->Topic.len > 0 ? (int)tr->Topic.len : 0, tr->Topic.ptr ? tr->Topic.ptr : "");
        for (int32_t i = 0; i < tr->Partitions.count; i++)
            if (take_partition(f, &tr->Partitions.items[i], expect) < 0)
                return -1;
    }
    return 0;
}

int fetcher_poll(struct fetcher *f, int wait_ms, long long *records, long long *bytes)
{
    *records = *bytes = 0;
    if (wait_ms < 0 || wait_ms >= f->c.timeout_ms)
        return fail(f, "a Fetch wait of %d ms is not within the connection's timeout of %d ms", wait_ms,
                    f->c.timeout_ms);
    if (f->s.records >= f->limit)
        return 0;
    int sent = f->inflight ? 1 : send_fetch(f, wait_ms);
    if (sent <= 0)
        return sent;
    struct FetchResponse resp;
    long long expect, r0 = f->s.records, b0 = f->s.bytes;
    if (recv_fetch(f, &resp, &expect) < 0)
        return -1;
    /* The next Fetch goes out before this answer is decoded, unless this
     * answer completes the limit. */
    if (f->limit - r0 > expect && send_fetch(f, wait_ms) < 0)
        return -1;
    for (int32_t t = 0; t < resp.Responses.count; t++)
        for (int32_t i = 0; i < resp.Responses.items[t].Partitions.count; i++)
            if (decode_partition(f, &resp.Responses.items[t].Partitions.items[i]) < 0)
                return -1;
    *records = f->s.records - r0;
    *bytes = f->s.bytes - b0;
    return 1;
}
