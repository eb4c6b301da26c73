/* replica_fetch.c: followers copy their leaders' logs, as Kafka's replica
 * fetcher threads do.  One thread per leader followed: it asks the leader
 * for the end of the follower's last leader epoch (OffsetForLeaderEpoch)
 * where the follower's tail may diverge, then long-polls Fetch with this
 * broker's id as the replica id.  Each answer goes to the loop thread, which
 * owns the logs: it truncates or appends the leader's batches verbatim and
 * takes the leader's high watermark; the thread waits for that before its
 * next request, so fetch offsets are always the log ends. */
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "broker/handler.h"
#include "client/kconn.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "storage/catalog.h"

#define FETCH_TIMEOUT_MS 3000
#define FETCH_PARTITION_BYTES (1 << 20)
#define FETCH_MAX_BYTES (8 << 20)

struct rf_part {
    char topic[256];
    int32_t partition;
    int64_t fetch_offset;
    int32_t leader_epoch;
    int32_t last_epoch;       /* our latest epoch, for OffsetForLeaderEpoch */
    bool truncate_needed;
};

struct replica_fetcher {
    struct cluster *c;
    int32_t leader_id;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    char host[256];
    int port;
    struct rf_part *parts;
    int nparts, capparts;
    bool stop;
    bool waiting;             /* an answer is with the loop thread */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void hand_over(struct replica_fetcher *f, int kind, const uint8_t *body, size_t len)
{
    struct cl_event *ev = xcalloc(1, sizeof *ev);
    uint8_t *copy = len ? xmalloc(len) : NULL;
    if (!ev || (len && !copy))
        abort();
    if (len)
        memcpy(copy, body, len);
    ev->type = EV_FETCHED;
    ev->status = kind;
    ev->buf = copy;
    ev->len = len;
    ev->cookie = f;
    pthread_mutex_lock(&f->mu);
    f->waiting = true;
    pthread_mutex_unlock(&f->mu);
    cluster_push(f->c, ev);
    pthread_mutex_lock(&f->mu);
    while (f->waiting && !f->stop)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

static void build_epoch_request(struct replica_fetcher *f, struct obuf *w, struct kconn *conn,
                                const struct rf_part *ps, int n)
{
    struct OffsetForLeaderEpochRequest req;
    OffsetForLeaderEpochRequest_init(&req);
    req.ReplicaId = f->c->node_id;
    struct OffsetForLeaderEpochRequest_OffsetForLeaderTopic *ts = xcalloc((size_t)n, sizeof *ts);
    struct OffsetForLeaderEpochRequest_OffsetForLeaderPartition *pp = xcalloc((size_t)n, sizeof *pp);
    int k = 0;
    for (int i = 0; ts && pp && i < n; i++) {
        if (!ps[i].truncate_needed)
            continue;
        OffsetForLeaderEpochRequest_OffsetForLeaderTopic_init(&ts[k]);
        ts[k].Topic = kstr_c(ps[i].topic);
        ts[k].Partitions.count = 1;
        ts[k].Partitions.items = &pp[k];
        pp[k].Partition = ps[i].partition;
        pp[k].CurrentLeaderEpoch = ps[i].leader_epoch;
        pp[k].LeaderEpoch = ps[i].last_epoch;
        k++;
    }
    req.Topics.count = k;
    req.Topics.items = ts;
    kconn_begin(conn, w, KAPI_OFFSETFORLEADEREPOCH, 3);
    OffsetForLeaderEpochRequest_encode(w, 3, &req);
    if (!ts || !pp)
        w->oom = 1;
    xfree(ts);
    xfree(pp);
}

static void build_fetch_request(struct replica_fetcher *f, struct obuf *w, struct kconn *conn,
                                const struct rf_part *ps, int n)
{
    struct FetchRequest req;
    FetchRequest_init(&req);
    req.ReplicaId = f->c->node_id;
    req.MaxWaitMs = (int32_t)f->c->replica_fetch_wait_ms;
    req.MinBytes = 1;
    req.MaxBytes = FETCH_MAX_BYTES;
    req.IsolationLevel = 0;
    req.SessionId = 0;
    req.SessionEpoch = -1;
    struct FetchRequest_FetchTopic *ts = xcalloc((size_t)n, sizeof *ts);
    struct FetchRequest_FetchPartition *pp = xcalloc((size_t)n, sizeof *pp);
    for (int i = 0; ts && pp && i < n; i++) {
        FetchRequest_FetchTopic_init(&ts[i]);
        FetchRequest_FetchPartition_init(&pp[i]);
        ts[i].Topic = kstr_c(ps[i].topic);
        ts[i].Partitions.count = 1;
        ts[i].Partitions.items = &pp[i];
        pp[i].Partition = ps[i].partition;
        pp[i].CurrentLeaderEpoch = ps[i].leader_epoch;
        pp[i].FetchOffset = ps[i].fetch_offset;
        pp[i].LogStartOffset = -1;
        pp[i].PartitionMaxBytes = FETCH_PARTITION_BYTES;
    }
    req.Topics.count = n;
    req.Topics.items = ts;
    req.ForgottenTopicsData.count = 0;
    req.RackId = kstr_c("");
    kconn_begin(conn, w, KAPI_FETCH, 11);
    FetchRequest_encode(w, 11, &req);
    if (!ts || !pp)
        w->oom = 1;
    xfree(ts);
    xfree(pp);
}

static void *fetcher_main(void *arg)
{
    struct replica_fetcher *f = arg;
    struct kconn conn;
    memset(&conn, 0, sizeof conn);
    conn.fd = -1;
    char err[256], client_id[64];
    snprintf(client_id, sizeof client_id, "shopstream-replica-%d", f->c->node_id);
    struct obuf w;
    obuf_init(&w);
    struct kconn_frame frame = {0};
    struct rf_part *ps = NULL;
    int cap = 0;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (!f->stop && f->nparts == 0)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->stop) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        int n = f->nparts;
        if (n > cap) {
            struct rf_part *np = xrealloc(ps, (size_t)n * sizeof *np);
            if (!np) {
                pthread_mutex_unlock(&f->mu);
                sleep_ms(100);
                continue;
            }
            ps = np;
            cap = n;
        }
        memcpy(ps, f->parts, (size_t)n * sizeof *ps);
        char host[256];
        snprintf(host, sizeof host, "%s", f->host);
        int port = f->port;
        pthread_mutex_unlock(&f->mu);
        if (conn.fd >= 0 && (strcmp(conn.host, host) || conn.port != port))
            kconn_close(&conn);
        if (conn.fd < 0 && kconn_open(&conn, host, port, FETCH_TIMEOUT_MS + (int)f->c->replica_fetch_wait_ms,
                                      client_id, 64 << 20, err, sizeof err) < 0) {
            log_debug("replica fetcher for leader %d: %s", f->leader_id, err);
            sleep_ms(200);
            continue;
        }
        bool truncate = false;
        for (int i = 0; i < n; i++)
            truncate = truncate || ps[i].truncate_needed;
        if (truncate)
            build_epoch_request(f, &w, &conn, ps, n);
        else
            build_fetch_request(f, &w, &conn, ps, n);
        struct kread body;
        if (kconn_roundtrip(&conn, &w, &frame, &body) < 0) {
            log_debug("replica fetcher for leader %d: %s", f->leader_id, err);
            kconn_close(&conn);
            sleep_ms(100);
            continue;
        }
        hand_over(f, truncate ? 1 : 0, body.p, kr_left(&body));
    }
    kconn_close(&conn);
    kconn_frame_free(&frame);
    obuf_free(&w);
    xfree(ps);
    return NULL;
}

/* ---- the loop thread's side ---- */

static struct partition *local_follower(struct broker *b, struct replica_fetcher *f, kstr topic, int32_t index)
{
    if (topic.len <= 0)
        return NULL;
    struct topic *t = catalog_find(&b->cat, topic.ptr, (size_t)topic.len);
    struct partition *p = t ? catalog_partition(t, index) : NULL;
    if (!p || !p->repl || p->repl->is_leader || p->repl->leader != f->leader_id)
        return NULL;
    return p;
}

/* Appends the leader's batches as they are: each must continue our log. */
static void append_batches(struct partition *p, const uint8_t *data, size_t len)
{
    int64_t now = clock_wall_ms();
    size_t pos = 0;
    while (len - pos >= 61) {
        const uint8_t *h = data + pos;
        int64_t base = (int64_t)((uint64_t)h[0] << 56 | (uint64_t)h[1] << 48 | (uint64_t)h[2] << 40 |
                                 (uint64_t)h[3] << 32 | (uint64_t)h[4] << 24 | (uint64_t)h[5] << 16 |
                                 (uint64_t)h[6] << 8 | h[7]);
        int32_t blen = (int32_t)((uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11]);
        if (blen < 49 || (size_t)blen + 12 > len - pos)
            break; /* the last batch may be cut by the byte limit */
        size_t n = (size_t)blen + 12;
        uint32_t crc = (uint32_t)h[17] << 24 | (uint32_t)h[18] << 16 | (uint32_t)h[19] << 8 | h[20];
        if (h[16] != 2 || crc32c(0, h + 21, n - 21) != crc) {
            log_error("%s-%d: the leader sent a corrupt batch at offset %lld; fetching again", p->topic->name,
                      p->index, (long long)base);
            return;
        }
        if (base >= p->log->next_offset) {
            if (plog_append_replica(p->log, h, n, now) < 0) {
                log_error("%s-%d: cannot append the leader's batch at %lld (log end %lld)", p->topic->name,
                          p->index, (long long)base, (long long)p->log->next_offset);
                p->repl->follower_ready = false; /* look for the divergence again */
                return;
            }
        }
        pos += n;
    }
}

static void process_fetch(struct broker *b, struct replica_fetcher *f, const uint8_t *buf, size_t len)
{
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, buf, len);
    struct FetchResponse resp;
    if (FetchResponse_decode(&rd, &a, 11, &resp) < 0) {
        log_warn("malformed Fetch response from leader %d", f->leader_id);
        arena_free(&a);
        return;
    }
    for (int32_t t = 0; t < resp.Responses.count; t++) {
        struct FetchResponse_FetchableTopicResponse *rt = &resp.Responses.items[t];
        for (int32_t i = 0; i < rt->Partitions.count; i++) {
            struct FetchResponse_PartitionData *pd = &rt->Partitions.items[i];
            struct partition *p = local_follower(b, f, rt->Topic, pd->PartitionIndex);
            if (!p)
                continue;
            if (pd->ErrorCode == KERR_OFFSET_OUT_OF_RANGE) {
                if (pd->LogStartOffset > p->log->next_offset) {
                    log_info("%s-%d: behind the leader's log start %lld; starting there", p->topic->name,
                             p->index, (long long)pd->LogStartOffset);
                    plog_truncate_fully(p->log, pd->LogStartOffset);
                } else {
                    p->repl->follower_ready = false;
                }
                continue;
            }
            if (pd->ErrorCode)
                continue; /* not the leader (yet): the image will tell */
            if (pd->Records.len > 0 && pd->Records.ptr)
                append_batches(p, (const uint8_t *)pd->Records.ptr, (size_t)pd->Records.len);
            /* the leader's log start (DeleteRecords, retention) */
            if (pd->LogStartOffset > p->log->log_start_offset && pd->LogStartOffset <= p->log->next_offset)
                plog_delete_records(p->log, pd->LogStartOffset);
            int64_t hw = pd->HighWatermark < p->log->next_offset ? pd->HighWatermark : p->log->next_offset;
            if (hw > p->repl->hw)
                p->repl->hw = hw;
        }
    }
    arena_free(&a);
}

static void process_epochs(struct broker *b, struct replica_fetcher *f, const uint8_t *buf, size_t len)
{
    struct arena a;
    arena_init(&a);
    struct kread rd;
    kread_init(&rd, buf, len);
    struct OffsetForLeaderEpochResponse resp;
    if (OffsetForLeaderEpochResponse_decode(&rd, &a, 3, &resp) < 0) {
        log_warn("malformed OffsetForLeaderEpoch response from leader %d", f->leader_id);
        arena_free(&a);
        return;
    }
    for (int32_t t = 0; t < resp.Topics.count; t++) {
        struct OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *rt = &resp.Topics.items[t];
        for (int32_t i = 0; i < rt->Partitions.count; i++) {
            struct OffsetForLeaderEpochResponse_EpochEndOffset *e = &rt->Partitions.items[i];
            struct partition *p = local_follower(b, f, rt->Topic, e->Partition);
            if (!p || e->ErrorCode)
                continue;
            struct plog *lg = p->log;
            /* keep what the leader has of our last epoch; an unknown epoch
             * keeps only what was committed */
            int64_t keep = e->EndOffset >= 0 ? e->EndOffset : p->repl->hw;
            if (e->LeaderEpoch >= 0 && e->LeaderEpoch < ecache_latest_epoch(&lg->epochs)) {
                int32_t ep;
                int64_t end;
                ecache_end_offset_for(&lg->epochs, e->LeaderEpoch, lg->next_offset, &ep, &end);
                if (end >= 0 && end < keep)
                    keep = end;
            }
            if (keep < lg->next_offset) {
                log_info("%s-%d: truncating the divergent tail from %lld to %lld (leader %d)", p->topic->name,
                         p->index, (long long)lg->next_offset, (long long)keep, f->leader_id);
                if (plog_truncate_to(lg, keep) < 0) {
                    log_error("%s-%d: truncation failed", p->topic->name, p->index);
                    continue;
                }
                if (p->repl->hw > lg->next_offset)
                    p->repl->hw = lg->next_offset;
            }
            p->repl->follower_ready = true;
        }
    }
    arena_free(&a);
}

/* Refreshes a fetcher's list from the local followers it serves (under its
 * lock); those that are not ready need OffsetForLeaderEpoch first. */
static void refresh(struct broker *b, struct replica_fetcher *f)
{
    int n = 0;
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int32_t k = 0; k < t->npartitions; k++) {
            struct replica *r = t->parts[k]->repl;
            if (r && !r->is_leader && r->leader == f->leader_id)
                n++;
        }
    }
    pthread_mutex_lock(&f->mu);
    if (n > f->capparts) {
        struct rf_part *np = xrealloc(f->parts, (size_t)n * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&f->mu);
            return;
        }
        f->parts = np;
        f->capparts = n;
    }
    int k2 = 0;
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int32_t k = 0; k < t->npartitions; k++) {
            struct partition *p = t->parts[k];
            struct replica *r = p->repl;
            if (!r || r->is_leader || r->leader != f->leader_id)
                continue;
            struct rf_part *q = &f->parts[k2++];
            snprintf(q->topic, sizeof q->topic, "%s", t->name);
            q->partition = k;
            q->fetch_offset = p->log->next_offset;
            q->leader_epoch = r->leader_epoch;
            q->last_epoch = ecache_latest_epoch(&p->log->epochs);
            q->truncate_needed = !r->follower_ready;
            if (q->last_epoch < 0 && !r->follower_ready && p->log->next_offset == p->log->log_start_offset) {
                r->follower_ready = true; /* an empty log has nothing to diverge */
                q->truncate_needed = false;
            }
        }
    }
    f->nparts = k2;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void fetcher_process(struct broker *b, struct cl_event *ev)
{
    struct replica_fetcher *f = ev->cookie;
    if (ev->status == 1)
        process_epochs(b, f, ev->buf, ev->len);
    else
        process_fetch(b, f, ev->buf, ev->len);
    refresh(b, f);
    pthread_mutex_lock(&f->mu);
    f->waiting = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void fetchers_update(struct broker *b)
{
    struct cluster *c = b->cluster;
    /* a fetcher for every leader we follow; idle ones wait for work */
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        for (int32_t k = 0; k < t->npartitions; k++) {
            struct replica *r = t->parts[k]->repl;
            if (!r || r->is_leader || r->leader < 0)
                continue;
            bool have = false;
            for (int j = 0; j < c->nfetchers; j++)
                have = have || c->fetchers[j]->leader_id == r->leader;
            if (have)
                continue;
            struct replica_fetcher **nf = xrealloc(c->fetchers, (size_t)(c->nfetchers + 1) * sizeof *nf);
            if (!nf)
                continue;
            c->fetchers = nf;
            struct replica_fetcher *f = xcalloc(1, sizeof *f);
            if (!f)
                continue;
            f->c = c;
            f->leader_id = r->leader;
            pthread_mutex_init(&f->mu, NULL);
            pthread_cond_init(&f->cv, NULL);
            if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
                xfree(f);
                continue;
            }
            c->fetchers[c->nfetchers++] = f;
        }
    }
    for (int j = 0; j < c->nfetchers; j++) {
        struct replica_fetcher *f = c->fetchers[j];
        const struct mi_broker *mb = meta_image_broker(&c->img, f->leader_id);
        pthread_mutex_lock(&f->mu);
        if (mb) {
            snprintf(f->host, sizeof f->host, "%s", mb->host);
            f->port = mb->port;
        }
        bool busy = f->waiting;
        pthread_mutex_unlock(&f->mu);
        if (!busy)
            refresh(b, f);
        if (!mb) {
            pthread_mutex_lock(&f->mu);
            f->nparts = 0; /* no address: nothing to fetch */
            pthread_mutex_unlock(&f->mu);
        }
    }
}

void fetchers_free(struct broker *b)
{
    struct cluster *c = b->cluster;
    for (int j = 0; j < c->nfetchers; j++) {
        struct replica_fetcher *f = c->fetchers[j];
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    for (int j = 0; j < c->nfetchers; j++) {
        struct replica_fetcher *f = c->fetchers[j];
        pthread_join(f->thread, NULL);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        xfree(f->parts);
        xfree(f);
    }
    xfree(c->fetchers);
    c->fetchers = NULL;
    c->nfetchers = 0;
}
