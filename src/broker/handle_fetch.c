/* handle_fetch.c: Fetch (key 1), v0-11, sessionless (a session id of 0 is
 * always returned, which every client treats as "full fetches").  Record
 * bytes go out of the segment files by sendfile; Fetch v0-3 (old record
 * formats) get them converted to MessageSet v0/v1.  With too few bytes for
 * MinBytes the request is parked until enough arrive or MaxWaitMs passes. */
#include <unistd.h>

#include "broker/handler.h"
#include "cluster/cluster.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "protocol/records.h"

struct fetch_state {
    struct FetchRequest req;
    int64_t timer;      /* the MaxWaitMs timer while parked, else 0 */
    int32_t max_bytes;  /* the response budget */
};

/* Looks up one requested partition; err gets its error code. */
static struct partition *find_part(struct broker *b, const struct FetchRequest_FetchTopic *ft, int32_t index,
                                   int *err)
{
    struct topic *t = ft->Topic.len > 0 ? catalog_find(&b->cat, ft->Topic.ptr, (size_t)ft->Topic.len) : NULL;
    struct partition *p = t ? catalog_partition(t, index) : NULL;
    *err = p ? 0 : handler_no_replica_error(b, ft->Topic, index);
    return p;
}

/* A partition's error for this fetch: not the leader, or a stale or future
 * leader epoch (clients and followers send the epoch they know, v9+). */
static int serve_check(struct broker *b, const struct partition *p, int32_t current_epoch)
{
    int err = cluster_check_leader(b, p);
    if (err || !p->repl || current_epoch < 0)
        return err;
    if (current_epoch < p->repl->leader_epoch)
        return KERR_FENCED_LEADER_EPOCH;
    if (current_epoch > p->repl->leader_epoch)
        return KERR_UNKNOWN_LEADER_EPOCH;
    return 0;
}

/* Reads what this fetcher may see: followers everything, consumers only
 * below the high watermark (whole batches: the high watermark is always a
 * batch boundary, as followers copy whole batches). */
static int read_visible(const struct partition *p, bool replica, int64_t offset, int32_t max, bool min_one,
                        struct plog_slice *sl)
{
    int64_t hw = partition_hw(p);
    if (!replica && offset >= hw && offset <= p->log->next_offset) {
        sl->fd = -1;
        sl->pos = 0;
        sl->len = 0;
        return 0;
    }
    int err = plog_read(p->log, offset, max, min_one, sl);
    if (err || replica || hw >= p->log->next_offset || sl->len == 0)
        return err;
    /* cut the slice at the first batch at or above the high watermark */
    int64_t pos = sl->pos, end = sl->pos + sl->len;
    while (pos + 12 <= end) {
        uint8_t h[12];
        if (pread(sl->fd, h, sizeof h, pos) != (ssize_t)sizeof h)
            break;
        int64_t base = 0;
        for (int i = 0; i < 8; i++)
            base = base << 8 | h[i];
        int32_t blen = (int32_t)((uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11]);
        if (base >= hw || blen <= 0)
            break;
        pos += 12 + (int64_t)blen;
    }
    if (pos < end)
        sl->len = (int32_t)(pos - sl->pos);
    return 0;
}

/* Bytes available to this fetch, or -1 when an error must be returned now. */
static int64_t fetch_available(struct broker *b, struct fetch_state *st)
{
    int64_t total = 0;
    const struct FetchRequest *req = &st->req;
    for (int32_t t = 0; t < req->Topics.count; t++) {
        const struct FetchRequest_FetchTopic *ft = &req->Topics.items[t];
        for (int32_t i = 0; i < ft->Partitions.count; i++) {
            const struct FetchRequest_FetchPartition *fp = &ft->Partitions.items[i];
            int err;
            struct partition *p = find_part(b, ft, fp->Partition, &err);
            if (!p)
                return -1;
            struct plog_slice sl;
            if (serve_check(b, p, fp->CurrentLeaderEpoch) ||
                read_visible(p, req->ReplicaId >= 0, fp->FetchOffset,
                             fp->PartitionMaxBytes > 0 ? fp->PartitionMaxBytes : 1, true, &sl) != 0)
                return -1;
            total += sl.len;
            if (total >= st->max_bytes)
                return total;
        }
    }
    return total;
}

/* Reads a slice into memory and converts it to a legacy MessageSet. */
static int downconvert(struct broker *b, struct request *r, const struct plog_slice *sl, krecords *out)
{
    uint8_t *raw = xmalloc((size_t)sl->len);
    if (!raw)
        return KERR_UNKNOWN_SERVER_ERROR;
    if (pread(sl->fd, raw, (size_t)sl->len, sl->pos) != sl->len) {
        xfree(raw);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    struct obuf conv, scratch;
    obuf_init(&conv);
    obuf_init(&scratch);
    struct records_limits lim = {.max_batch_bytes = (size_t)b->lim.message_max_bytes,
                                 .max_decompressed = (size_t)b->lim.decompressed_max_bytes,
                                 .allow_zstd = true};
    int err = records_downconvert(raw, (size_t)sl->len, r->api_version <= 1 ? 0 : 1, &lim, &conv, &scratch);
    xfree(raw);
    obuf_free(&scratch);
    if (!err && conv.len > 0) {
        uint8_t *copy = arena_alloc(&r->arena, conv.len);
        if (!copy)
            err = KERR_UNKNOWN_SERVER_ERROR;
        else {
            memcpy(copy, conv.data, conv.len);
            *out = (krecords){copy, (int32_t)conv.len, -1, 0};
        }
    }
    obuf_free(&conv);
    return err;
}

static int fetch_respond(struct broker *b, struct request *r)
{
    struct fetch_state *st = r->state;
    const struct FetchRequest *req = &st->req;
    int16_t v = r->api_version;
    struct FetchResponse resp;
    FetchResponse_init(&resp);
    resp.SessionId = 0;
    bool replica = req->ReplicaId >= 0;
    if (replica && !b->cluster)
        resp.ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
    else if (req->SessionId != 0)
        resp.ErrorCode = KERR_FETCH_SESSION_ID_NOT_FOUND;
    if (HANDLER_ITEMS(r, resp.Responses, req->Topics.count, FetchResponse_FetchableTopicResponse_init) < 0)
        return -1;
    int64_t budget = st->max_bytes;
    bool have_data = false;
    for (int32_t t = 0; t < req->Topics.count; t++) {
        const struct FetchRequest_FetchTopic *ft = &req->Topics.items[t];
        struct FetchResponse_FetchableTopicResponse *rt = &resp.Responses.items[t];
        rt->Topic = ft->Topic;
        rt->TopicId = ft->TopicId;
        if (HANDLER_ITEMS(r, rt->Partitions, ft->Partitions.count, FetchResponse_PartitionData_init) < 0)
            return -1;
        for (int32_t i = 0; i < ft->Partitions.count; i++) {
            const struct FetchRequest_FetchPartition *fp = &ft->Partitions.items[i];
            struct FetchResponse_PartitionData *rp = &rt->Partitions.items[i];
            rp->PartitionIndex = fp->Partition;
            rp->AbortedTransactions.count = -1;
            rp->Records = (krecords){NULL, 0, -1, 0};
            rp->PreferredReadReplica = -1;
            int err;
            struct partition *p = find_part(b, ft, fp->Partition, &err);
            if (resp.ErrorCode) {
                rp->ErrorCode = resp.ErrorCode;
                continue;
            }
            if (!p) {
                rp->ErrorCode = (int16_t)err;
                rp->HighWatermark = rp->LastStableOffset = rp->LogStartOffset = -1;
                continue;
            }
            struct plog *lg = p->log;
            err = serve_check(b, p, fp->CurrentLeaderEpoch);
            if (err) {
                rp->ErrorCode = (int16_t)err;
                rp->HighWatermark = rp->LastStableOffset = rp->LogStartOffset = -1;
                continue;
            }
            rp->HighWatermark = partition_hw(p);
            rp->LastStableOffset = rp->HighWatermark;
            rp->LogStartOffset = lg->log_start_offset;
            int32_t limit = fp->PartitionMaxBytes;
            if (limit > budget)
                limit = (int32_t)budget;
            if (limit <= 0 && have_data)
                continue;
            struct plog_slice sl;
            err = read_visible(p, replica, fp->FetchOffset, limit > 0 ? limit : 1, !have_data, &sl);
            if (err) {
                rp->ErrorCode = (int16_t)err;
                continue;
            }
            if (sl.len == 0)
                continue;
            if (v >= 4) {
                /* Kafka refuses zstd batches to Fetch below v10 with
                 * UNSUPPORTED_COMPRESSION_TYPE; shopstream serves them as
                 * stored, because kafka-python 2.0.2 fetches with v4, writes
                 * zstd and reads it back. */
                rp->Records = (krecords){NULL, sl.len, sl.fd, sl.pos};
                budget -= sl.len;
            } else {
                err = downconvert(b, r, &sl, &rp->Records);
                if (err)
                    rp->ErrorCode = (int16_t)err;
                budget -= rp->Records.len > 0 ? rp->Records.len : 0;
            }
            have_data = true;
        }
    }
    FetchResponse_encode(&r->out, v, &resp);
    return 0;
}

static void remove_parked(struct broker *b, struct request *r)
{
    for (int i = 0; i < b->nparked; i++)
        if (b->parked_fetches[i] == r) {
            b->parked_fetches[i] = b->parked_fetches[--b->nparked];
            return;
        }
}

static void finish_parked(struct broker *b, struct request *r)
{
    struct fetch_state *st = r->state;
    remove_parked(b, r);
    if (st->timer)
        loop_cancel(b->loop, st->timer);
    st->timer = 0;
    if (r->conn && fetch_respond(b, r) < 0)
        r->out.oom = 1;
    request_done(r);
}

static void fetch_timeout(struct loop *l, void *arg)
{
    (void)l;
    struct request *r = arg;
    struct fetch_state *st = r->state;
    st->timer = 0;
    struct broker *b = r->conn ? r->conn->b : NULL;
    if (!b) {
        request_free(r);
        return;
    }
    finish_parked(b, r);
}

void fetch_wake_parked(struct broker *b, bool timeout_pass)
{
    (void)timeout_pass;
    for (int i = 0; i < b->nparked;) {
        struct request *r = b->parked_fetches[i];
        struct fetch_state *st = r->state;
        int64_t avail = fetch_available(b, st);
        if (avail < 0 || avail >= st->req.MinBytes) {
            finish_parked(b, r); /* removes it from the array */
            continue;
        }
        i++;
    }
}

void fetch_forget_conn(struct broker *b, struct conn *c)
{
    for (int i = 0; i < b->nparked;) {
        struct request *r = b->parked_fetches[i];
        if (r->conn == c) {
            struct fetch_state *st = r->state;
            if (st->timer)
                loop_cancel(b->loop, st->timer);
            b->parked_fetches[i] = b->parked_fetches[--b->nparked];
            r->parked = false; /* conn_close frees it */
            continue;
        }
        i++;
    }
}

int handle_fetch(struct broker *b, struct request *r)
{
    struct fetch_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st || FetchRequest_decode(&r->body, &r->arena, r->api_version, &st->req) < 0)
        return API_CLOSE;
    r->state = st;
    struct FetchRequest *req = &st->req;
    /* clamp what the client asks for to the broker's caps */
    if (req->MaxWaitMs < 0)
        req->MaxWaitMs = 0;
    if (req->MaxWaitMs > LIMIT_MAX_WAIT_MS)
        req->MaxWaitMs = LIMIT_MAX_WAIT_MS;
    st->max_bytes = r->api_version >= 3 ? req->MaxBytes : INT32_MAX;
    if (st->max_bytes <= 0 || st->max_bytes > b->lim.fetch_max_bytes)
        st->max_bytes = b->lim.fetch_max_bytes;
    if (req->MinBytes > st->max_bytes)
        req->MinBytes = st->max_bytes;
    for (int32_t t = 0; t < req->Topics.count; t++)
        for (int32_t i = 0; i < req->Topics.items[t].Partitions.count; i++) {
            struct FetchRequest_FetchPartition *fp = &req->Topics.items[t].Partitions.items[i];
            if (fp->PartitionMaxBytes <= 0 || fp->PartitionMaxBytes > st->max_bytes)
                fp->PartitionMaxBytes = st->max_bytes;
        }
    if (req->ReplicaId >= 0 && b->cluster) {
        /* a follower's fetch offsets are its log ends: the high watermark
         * may move now, not when this fetch is answered */
        for (int32_t t = 0; t < req->Topics.count; t++) {
            const struct FetchRequest_FetchTopic *ft = &req->Topics.items[t];
            for (int32_t i = 0; i < ft->Partitions.count; i++) {
                int err;
                struct partition *p = find_part(b, ft, ft->Partitions.items[i].Partition, &err);
                if (p && !serve_check(b, p, ft->Partitions.items[i].CurrentLeaderEpoch))
                    repl_follower_fetched(b, p, req->ReplicaId, ft->Partitions.items[i].FetchOffset);
            }
        }
    }
    bool sessionless_ok = req->SessionId == 0 && (req->ReplicaId < 0 || b->cluster);
    int64_t avail = !sessionless_ok ? -1 : fetch_available(b, st);
    if (avail < 0 || avail >= req->MinBytes || req->MaxWaitMs == 0 || req->Topics.count == 0) {
        if (fetch_respond(b, r) < 0)
            return API_CLOSE;
        return API_DONE;
    }
    /* park until data or the deadline */
    log_debug("fetch from %s parked: %lld bytes available, min %d, wait %d ms", r->conn->peer, (long long)avail,
              req->MinBytes, req->MaxWaitMs);
    if (b->nparked == b->capparked) {
        int cap = b->capparked ? b->capparked * 2 : 64;
        struct request **n = xrealloc(b->parked_fetches, (size_t)cap * sizeof *n);
        if (!n)
            return API_CLOSE;
        b->parked_fetches = n;
        b->capparked = cap;
    }
    st->timer = loop_timer(b->loop, req->MaxWaitMs, fetch_timeout, r);
    if (st->timer < 0)
        return API_CLOSE;
    b->parked_fetches[b->nparked++] = r;
    return API_PARKED;
}
