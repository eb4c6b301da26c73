/* handle_produce.c: Produce (key 0), v0-7.  v3+ carries exactly one magic-2
 * batch per partition, validated (records.h) and appended as received with
 * the broker's offsets; v0-2 carry legacy MessageSets, converted to one v2
 * batch.  acks=0 gets no response.  With flush.messages reached (1 means
 * "fsync before acknowledging") the batch is fsynced by the flush thread,
 * and the response waits for it when the topic's flush.messages is 1. */
#include <errno.h>
#include <string.h>

#include "broker/handler.h"
#include "cluster/cluster.h"
#include "common/clock.h"
#include "common/log.h"
#include "protocol/records.h"
#include "serve/metrics.h"
#include "storage/flusher.h"

struct produce_state {
    struct ProduceResponse resp;
    int16_t version;
    /* acks=all in a cluster: the high watermark each partition must reach */
    struct repl_wait *waits;
    int nwaits;
    int64_t deadline_ms;
};

static void produce_finish(struct request *r)
{
    struct produce_state *st = r->state;
    if (!r->conn) {
        request_free(r);
        return;
    }
    if (!r->no_response)
        ProduceResponse_encode(&r->out, st->version, &st->resp);
    request_done(r);
}

/* The data was appended but is not known to be on disk: the producer must
 * not take it as acknowledged. */
static void mark_not_durable(struct ProduceResponse *resp)
{
    for (int32_t t = 0; t < resp->Responses.count; t++) {
        struct ProduceResponse_TopicProduceResponse *tr = &resp->Responses.items[t];
        for (int32_t p = 0; p < tr->PartitionResponses.count; p++)
            if (tr->PartitionResponses.items[p].ErrorCode == 0)
                tr->PartitionResponses.items[p].ErrorCode = KERR_KAFKA_STORAGE_ERROR;
    }
}

static void produce_flushed(void *arg, int err)
{
    struct request *r = arg;
    struct produce_state *st = r->state;
    if (err)
        mark_not_durable(&st->resp);
    if (st->nwaits > 0 && r->conn && r->conn->b->cluster &&
        repl_park_produce(r->conn->b, r, st->waits, st->nwaits, st->deadline_ms, produce_finish) == 0)
        return; /* now waits for the followers */
    if (r->conn && !r->no_response)
        ProduceResponse_encode(&r->out, st->version, &st->resp);
    request_done(r);
}

/* Whether every record of a (validated) batch has a key.  For v0-2 the
 * up-converted batch lives in scratch, so a second buffer decompresses. */
static bool all_records_keyed(const uint8_t *batch, size_t n, const struct records_limits *lim,
                              struct obuf *scratch, bool scratch_free)
{
    struct obuf own;
    obuf_init(&own);
    struct obuf *buf = scratch_free ? scratch : &own;
    const uint8_t *body;
    size_t len;
    bool ok = records_batch_body(batch, n, lim, buf, &body, &len) == 0;
    const uint8_t *p = body, *end = ok ? body + len : body;
    struct records_record_view rv;
    while (ok && p < end) {
        if (records_record_next(&p, end, &rv) < 0 || rv.key_len < 0)
            ok = false;
    }
    obuf_free(&own);
    return ok;
}

static int append_one(struct broker *b, struct request *r, struct partition *part, krecords rec,
                      struct ProduceResponse_PartitionProduceResponse *pr, struct obuf *scratch, int16_t acks,
                      int64_t *end_offset)
{
    struct topic *t = part->topic;
    int lerr = cluster_check_leader(b, part);
    if (lerr)
        return lerr;
    if (acks == -1 && part->repl && part->repl->nisr < cluster_min_isr(b, t))
        return KERR_NOT_ENOUGH_REPLICAS;
    int16_t v = r->api_version;
    struct records_limits lim = {
        .max_batch_bytes = (size_t)t->settings.max_message_bytes,
        .max_decompressed = (size_t)b->lim.decompressed_max_bytes,
        .allow_zstd = v >= 7,
    };
    if (rec.len <= 0)
        return KERR_INVALID_RECORD;
    uint8_t *batch;
    size_t n;
    struct records_batch_info bi;
    int err;
    if (v >= 3) {
        err = records_validate_v2(rec.ptr, (size_t)rec.len, &lim, &bi, scratch);
        if (err)
            return err;
        if (bi.is_transactional)
            return KERR_INVALID_TXN_STATE; /* no transaction was begun */
        batch = (uint8_t *)rec.ptr;        /* the frame is ours to modify */
        n = (size_t)rec.len;
    } else {
        obuf_reset(scratch);
        err = records_upconvert(rec.ptr, (size_t)rec.len, clock_wall_ms(), &lim, scratch, &bi);
        if (err)
            return err;
        batch = scratch->data;
        n = scratch->len;
    }
    if (t->settings.compact && !all_records_keyed(batch, n, &lim, scratch, v >= 3))
        return KERR_INVALID_RECORD; /* Kafka: a compacted topic cannot accept a record without key */
    int64_t now = clock_wall_ms();
    if (t->settings.log_append_time) {
        records_set_log_append_time(batch, n, now);
        pr->LogAppendTimeMs = now;
    }
    records_set_partition_leader_epoch(batch, part->repl ? part->repl->leader_epoch : 0);
    if (bi.producer_id >= 0) {
        /* idempotent producer: a retried batch gets its first offsets back */
        int64_t dup_base;
        int32_t dup_delta;
        int st = plog_check_producer(part->log, batch, n, &dup_base, &dup_delta);
        if (st < 0)
            return -st;
        if (st == PSTATE_DUPLICATE) {
            pr->BaseOffset = dup_base;
            pr->LogStartOffset = part->log->log_start_offset;
            *end_offset = dup_base + dup_delta + 1;
            return 0;
        }
    }
    int64_t base;
    if (plog_append(part->log, batch, n, now, &base) < 0) {
        log_error("append to %s-%d failed: %s", t->name, part->index, strerror(errno));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    pr->BaseOffset = base;
    pr->LogStartOffset = part->log->log_start_offset;
    *end_offset = part->log->next_offset;
    if (part->repl)
        repl_update_hw(b, part); /* an ISR of the leader alone: committed now */
    b->appends++;
    metrics_add(b->m.records_in, bi.record_count);
    return 0;
}

int handle_produce(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct ProduceRequest *req = arena_alloc(&r->arena, sizeof *req);
    struct produce_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!req || !st || ProduceRequest_decode(&r->body, &r->arena, v, req) < 0)
        return API_CLOSE;
    r->state = st;
    st->version = v;
    struct ProduceResponse *resp = &st->resp;
    ProduceResponse_init(resp);
    bool bad_acks = req->Acks != 0 && req->Acks != 1 && req->Acks != -1;
    bool transactional = req->TransactionalId.len >= 0;
    r->no_response = req->Acks == 0;
    if (HANDLER_ITEMS(r, resp->Responses, req->TopicData.count, ProduceResponse_TopicProduceResponse_init) < 0)
        return API_CLOSE;

    st->waits = NULL;
    st->nwaits = 0;
    st->deadline_ms = clock_mono_ms() + (req->TimeoutMs > 0 ? req->TimeoutMs : 0);
    if (b->cluster && req->Acks == -1) {
        int32_t total = 0;
        for (int32_t ti = 0; ti < req->TopicData.count; ti++)
            total += req->TopicData.items[ti].PartitionData.count;
        st->waits = total > 0 ? arena_alloc(&r->arena, (size_t)total * sizeof *st->waits) : NULL;
        if (total > 0 && !st->waits)
            return API_CLOSE;
    }
    int flush_fds[FLUSH_MAX_FDS];
    int nflush = 0;
    bool wait_flush = false, flush_failed = false;
    struct obuf scratch;
    obuf_init(&scratch);
    int64_t now = clock_wall_ms();
    for (int32_t ti = 0; ti < req->TopicData.count; ti++) {
        struct ProduceRequest_TopicProduceData *td = &req->TopicData.items[ti];
        struct ProduceResponse_TopicProduceResponse *tr = &resp->Responses.items[ti];
        tr->Name = td->Name;
        if (HANDLER_ITEMS(r, tr->PartitionResponses, td->PartitionData.count,
                          ProduceResponse_PartitionProduceResponse_init) < 0) {
            obuf_free(&scratch);
            return API_CLOSE;
        }
        bool dup_topic = false;
        for (int32_t k = 0; k < ti; k++)
            if (req->TopicData.items[k].Name.len == td->Name.len && td->Name.len >= 0 &&
                memcmp(req->TopicData.items[k].Name.ptr, td->Name.ptr, (size_t)td->Name.len) == 0)
                dup_topic = true;
        const char *why;
        int topic_err = 0;
        struct topic *t = NULL;
        if (td->Name.len < 0 || catalog_check_name(td->Name.ptr, (size_t)td->Name.len, &why) < 0) {
            topic_err = KERR_INVALID_TOPIC_EXCEPTION;
        } else {
            t = catalog_find(&b->cat, td->Name.ptr, (size_t)td->Name.len);
            if (!t)
                t = broker_auto_create(b, td->Name.ptr, (size_t)td->Name.len);
            if (t && t->internal)
                topic_err = KERR_INVALID_TOPIC_EXCEPTION; /* only the broker writes internal topics */
        }
        for (int32_t pi = 0; pi < td->PartitionData.count; pi++) {
            struct ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[pi];
            struct ProduceResponse_PartitionProduceResponse *pr = &tr->PartitionResponses.items[pi];
            pr->Index = pd->Index;
            pr->BaseOffset = -1;
            pr->LogAppendTimeMs = -1;
            pr->LogStartOffset = -1;
            int err = 0;
            bool dup = dup_topic;
            for (int32_t k = 0; k < pi; k++)
                if (td->PartitionData.items[k].Index == pd->Index)
                    dup = true;
            struct partition *part = t ? catalog_partition(t, pd->Index) : NULL;
            if (bad_acks)
                err = KERR_INVALID_REQUIRED_ACKS;
            else if (transactional)
                err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            else if (topic_err)
                err = topic_err;
            else if (dup)
                err = KERR_INVALID_REQUEST;
            else if (!part)
                err = handler_no_replica_error(b, td->Name, pd->Index);
            int64_t end_offset = -1;
            if (!err)
                err = append_one(b, r, part, pd->Records, pr, &scratch, req->Acks, &end_offset);
            pr->ErrorCode = (int16_t)err;
            if (err || !part)
                continue;
            if (req->Acks == -1 && part->repl && st->waits) {
                struct repl_wait *w = &st->waits[st->nwaits++];
                w->part = part;
                w->end_offset = end_offset;
                w->leader_epoch = part->repl->leader_epoch;
                w->error_code = &pr->ErrorCode;
                w->resolved = false;
            }
            struct plog *lg = part->log;
            if (lg->unflushed >= t->settings.flush_messages) {
                if (nflush + 2 > FLUSH_MAX_FDS) {
                    /* a full job goes now; the flush thread finishes jobs in
                     * order, so the last job's callback comes after it */
                    if (flusher_submit(b->flusher, flush_fds, nflush, NULL, NULL) < 0)
                        flush_failed = true;
                    nflush = 0;
                }
                nflush += plog_take_dirty_fds(lg, flush_fds + nflush, 2, now);
                if (t->settings.flush_messages == 1 && req->Acks != 0)
                    wait_flush = true;
            }
        }
    }
    obuf_free(&scratch);
    if (flush_failed && wait_flush)
        mark_not_durable(resp); /* an fsync could not be queued */
    if (nflush > 0) {
        int rc = flusher_submit(b->flusher, flush_fds, nflush, wait_flush ? produce_flushed : NULL, r);
        if (rc == 0 && wait_flush)
            return API_PARKED;
        if (rc < 0 && wait_flush)
            mark_not_durable(resp);
    }
    if (st->nwaits > 0 && repl_park_produce(b, r, st->waits, st->nwaits, st->deadline_ms, produce_finish) == 0)
        return API_PARKED;
    if (!r->no_response)
        ProduceResponse_encode(&r->out, v, resp);
    return API_DONE;
}
