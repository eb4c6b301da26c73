/* cleaner.c: see cleaner.h.  The thread only reads segment files through its
 * own descriptors and writes *.cleaned files; every change to a partition's
 * segment list happens on the loop thread in cleaner_finish. */
#include "storage/cleaner.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/partition_log.h"

/* One sealed segment as the job sees it. */
struct clean_seg {
    int64_t base;
    int64_t next_offset;
    int fd;                 /* owned: a dup of the segment's fd */
    int64_t size;
    char *path;             /* owned: "<dir>/<base>" */
    uint64_t orig_id;       /* loop thread only: the segment's id, to find it again */
    bool rewritten;         /* result: <path>.log.cleaned was written */
    int64_t new_size;
};

struct clean_job {
    struct clean_job *next;
    struct plog *owner;     /* loop thread only; NULL once the partition is gone */
    struct clean_seg *segs;
    int nsegs;
    int64_t dirty_from;     /* the partition's cleaner offset when scheduled */
    int64_t dirty_to;       /* the end of the last sealed segment */
    int64_t delete_retention_ms;
    int64_t now_ms;
    int err;                /* result */
};

struct cleaner {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct clean_job *queue;    /* waiting */
    struct clean_job *running;  /* being cleaned */
    struct clean_job *done;     /* finished, for cleaner_finish */
    bool stop;
    void (*wake)(void *);
    void *wake_arg;
    int64_t bytes_removed;
};

/* ---- the key map ---------------------------------------------------------- */

/* Keys are kept as two independent 64-bit hashes (a 128-bit digest, as
 * Kafka keeps an MD5): a collision would need both to collide. */
struct keymap_slot {
    uint64_t h1, h2;
    int64_t offset; /* -1: empty */
};

struct keymap {
    struct keymap_slot *slots;
    size_t cap, count;
};

static void key_hash(const uint8_t *k, int32_t n, uint64_t *h1, uint64_t *h2)
{
    uint64_t a = 1469598103934665603ULL, b = 0x9e3779b97f4a7c15ULL;
    for (int32_t i = 0; i < n; i++) {
        a = (a ^ k[i]) * 1099511628211ULL;
        b = (b + k[i]) * 0xff51afd7ed558ccdULL;
        b ^= b >> 29;
    }
    *h1 = a ^ (uint64_t)n;
    *h2 = b ^ ((uint64_t)n << 32);
}

static int keymap_grow(struct keymap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 4096;
    struct keymap_slot *s = xmalloc(cap * sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < cap; i++)
        s[i].offset = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].offset < 0)
            continue;
        size_t j = m->slots[i].h1 & (cap - 1);
        while (s[j].offset >= 0)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    xfree(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

static struct keymap_slot *keymap_slot(const struct keymap *m, uint64_t h1, uint64_t h2)
{
    if (!m->cap)
        return NULL;
    size_t j = h1 & (m->cap - 1);
    while (m->slots[j].offset >= 0 && !(m->slots[j].h1 == h1 && m->slots[j].h2 == h2))
        j = (j + 1) & (m->cap - 1);
    return &m->slots[j];
}

static int keymap_put(struct keymap *m, const uint8_t *k, int32_t n, int64_t offset)
{
    if ((m->count + 1) * 4 > m->cap * 3 && keymap_grow(m) < 0)
        return -1;
    uint64_t h1, h2;
    key_hash(k, n, &h1, &h2);
    struct keymap_slot *s = keymap_slot(m, h1, h2);
    if (s->offset < 0) {
        s->h1 = h1;
        s->h2 = h2;
        m->count++;
    }
    if (offset > s->offset)
        s->offset = offset;
    return 0;
}

/* The latest offset of key, or -1 when the dirty part does not have it. */
static int64_t keymap_get(const struct keymap *m, const uint8_t *k, int32_t n)
{
    uint64_t h1, h2;
    key_hash(k, n, &h1, &h2);
    struct keymap_slot *s = keymap_slot(m, h1, h2);
    return s ? s->offset : -1;
}

/* ---- reading segments ------------------------------------------------------ */

static uint8_t *read_whole(const struct clean_seg *s)
{
    uint8_t *buf = xmalloc((size_t)s->size + 1);
    if (!buf)
        return NULL;
    int64_t done = 0;
    while (done < s->size) {
        ssize_t r = pread(s->fd, buf + done, (size_t)(s->size - done), done);
        if (r <= 0) {
            xfree(buf);
            return NULL;
        }
        done += r;
    }
    return buf;
}

typedef int record_fn(void *arg, const struct records_batch_info *bi, const uint8_t *rec_start, size_t rec_len,
                      const struct records_record_view *rv);

/* Calls fn for every record of every non-control batch in buf. */
static int for_each_record(const uint8_t *buf, size_t n, record_fn *fn, void *arg, struct obuf *scratch)
{
    struct records_iter it;
    records_iter_init(&it, buf, n, false);
    struct records_batch_info bi;
    const uint8_t *batch;
    size_t size;
    struct records_limits lim = {.max_decompressed = 1u << 30, .allow_zstd = true};
    while (records_iter_next(&it, &bi, &batch, &size) == RECORDS_ITER_BATCH) {
        if (bi.is_control)
            continue;
        const uint8_t *body;
        size_t len;
        if (records_batch_body(batch, size, &lim, scratch, &body, &len) != 0)
            return -1;
        const uint8_t *p = body, *end = body + len;
        for (int32_t i = 0; i < bi.record_count && p < end; i++) {
            const uint8_t *start = p;
            struct records_record_view rv;
            if (records_record_next(&p, end, &rv) < 0)
                return -1;
            int rc = fn(arg, &bi, start, (size_t)(p - start), &rv);
            if (rc)
                return rc;
        }
    }
    return 0;
}

struct map_ctx {
    struct keymap *map;
    int64_t from;
};

static int map_record(void *arg, const struct records_batch_info *bi, const uint8_t *rec_start, size_t rec_len,
                      const struct records_record_view *rv)
{
    (void)rec_start;
    (void)rec_len;
    struct map_ctx *c = arg;
    int64_t off = bi->base_offset + rv->offset_delta;
    if (off < c->from || rv->key_len < 0)
        return 0;
    return keymap_put(c->map, rv->key, rv->key_len, off) < 0 ? -1 : 0;
}

/* ---- rewriting ------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Whether the record survives: the latest of its key, and not an expired
 * tombstone. */
static bool keep_record(const struct keymap *map, const struct records_batch_info *bi,
                        const struct records_record_view *rv, int64_t now_ms, int64_t delete_retention_ms)
{
    if (rv->key_len < 0)
        return true; /* no key: nothing can replace it */
    int64_t off = bi->base_offset + rv->offset_delta;
    int64_t latest = keymap_get(map, rv->key, rv->key_len);
    if (latest > off)
        return false;
    if (rv->value_len < 0) {
        int64_t ts = (bi->attributes & RECORDS_ATTR_LOG_APPEND_TIME) ? bi->max_timestamp
                                                                     : bi->base_timestamp + rv->timestamp_delta;
        if (now_ms - ts > delete_retention_ms) /* no overflow for a huge retention */
            return false;
    }
    return true;
}

/* Rewrites one segment's bytes into out, without the replaced records.
 * Returns 0 (and *changed) or -1. */
static int rewrite(const uint8_t *buf, size_t n, const struct keymap *map, int64_t now_ms, int64_t delete_retention_ms,
                   struct obuf *out, bool *changed)
{
    struct records_iter it;
    records_iter_init(&it, buf, n, false);
    struct records_batch_info bi;
    const uint8_t *batch;
    size_t size;
    struct records_limits lim = {.max_decompressed = 1u << 30, .allow_zstd = true};
    struct obuf scratch, kept, packed;
    obuf_init(&scratch);
    obuf_init(&kept);
    obuf_init(&packed);
    int rc = 0;
    *changed = false;
    while (records_iter_next(&it, &bi, &batch, &size) == RECORDS_ITER_BATCH) {
        if (bi.is_control) {
            obuf_put(out, batch, size);
            continue;
        }
        const uint8_t *body;
        size_t len;
        if (records_batch_body(batch, size, &lim, &scratch, &body, &len) != 0) {
            rc = -1;
            break;
        }
        obuf_reset(&kept);
        int32_t nkept = 0;
        const uint8_t *p = body, *end = body + len;
        for (int32_t i = 0; i < bi.record_count && p < end; i++) {
            const uint8_t *start = p;
            struct records_record_view rv;
            if (records_record_next(&p, end, &rv) < 0) {
                rc = -1;
                break;
            }
            if (keep_record(map, &bi, &rv, now_ms, delete_retention_ms)) {
                obuf_put(&kept, start, (size_t)(p - start));
                nkept++;
            }
        }
        if (rc)
            break;
        if (nkept == bi.record_count) {
            obuf_put(out, batch, size); /* untouched: copied byte for byte */
            continue;
        }
        *changed = true;
        if (nkept == 0)
            continue;
        /* the same header with fewer records: offsets and deltas stay */
        const uint8_t *records = kept.data;
        size_t records_len = kept.len;
        if (bi.codec != COMPRESS_NONE) {
            obuf_reset(&packed);
            if (compress_compress(bi.codec, kept.data, kept.len, &packed) != 0) {
                rc = -1;
                break;
            }
            records = packed.data;
            records_len = packed.len;
        }
        size_t at = out->len;
        obuf_put(out, batch, RECORDS_V2_OVERHEAD);
        obuf_put(out, records, records_len);
        if (out->oom) {
            rc = -1;
            break;
        }
        uint8_t *nb = out->data + at;
        size_t total = RECORDS_V2_OVERHEAD + records_len;
        put32(nb + RECORDS_OFF_BATCH_LENGTH, (uint32_t)(total - RECORDS_LOG_OVERHEAD));
        put32(nb + RECORDS_OFF_RECORD_COUNT, (uint32_t)nkept);
        records_update_crc(nb, total);
    }
    if (out->oom || kept.oom || packed.oom)
        rc = -1;
    obuf_free(&scratch);
    obuf_free(&kept);
    obuf_free(&packed);
    return rc;
}

/* Cleaner thread (or the caller of cleaner_clean_now): does the job. */
static int run_job(struct clean_job *j, int64_t *removed)
{
    struct keymap map = {0};
    struct obuf scratch, out;
    obuf_init(&scratch);
    obuf_init(&out);
    int rc = 0;
    /* pass 1: the latest offset of every key in the dirty part */
    struct map_ctx mc = {&map, j->dirty_from};
    for (int i = 0; i < j->nsegs && !rc; i++) {
        struct clean_seg *s = &j->segs[i];
        if (s->next_offset <= j->dirty_from)
            continue;
        uint8_t *buf = read_whole(s);
        if (!buf) {
            rc = -1;
            break;
        }
        rc = for_each_record(buf, (size_t)s->size, map_record, &mc, &scratch);
        xfree(buf);
    }
    /* pass 2: rewrite every sealed segment */
    for (int i = 0; i < j->nsegs && !rc; i++) {
        struct clean_seg *s = &j->segs[i];
        uint8_t *buf = read_whole(s);
        if (!buf) {
            rc = -1;
            break;
        }
        obuf_reset(&out);
        bool changed;
        rc = rewrite(buf, (size_t)s->size, &map, j->now_ms, j->delete_retention_ms, &out, &changed);
        xfree(buf);
        if (rc || !changed)
            continue;
        char path[4300];
        snprintf(path, sizeof path, "%s.log.cleaned", s->path);
        if (file_write_synced(path, out.data, out.len) < 0) {
            unlink(path);
            rc = -1;
            break;
        }
        s->rewritten = true;
        s->new_size = (int64_t)out.len;
        *removed += s->size - (int64_t)out.len;
    }
    xfree(map.slots);
    obuf_free(&scratch);
    obuf_free(&out);
    return rc;
}

static void job_free(struct clean_job *j, bool remove_outputs)
{
    for (int i = 0; i < j->nsegs; i++) {
        if (remove_outputs && j->segs[i].rewritten) {
            char path[4300];
            snprintf(path, sizeof path, "%s.log.cleaned", j->segs[i].path);
            unlink(path);
        }
        if (j->segs[i].fd >= 0)
            close(j->segs[i].fd);
        xfree(j->segs[i].path);
    }
    xfree(j->segs);
    xfree(j);
}

static void *clean_main(void *arg)
{
    struct cleaner *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->queue && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        struct clean_job *j = c->queue;
        c->queue = j->next;
        c->running = j;
        pthread_mutex_unlock(&c->mu);
        int64_t removed = 0;
        j->err = run_job(j, &removed);
        pthread_mutex_lock(&c->mu);
        c->running = NULL;
        c->bytes_removed += removed;
        j->next = c->done;
        c->done = j;
        pthread_mutex_unlock(&c->mu);
        c->wake(c->wake_arg);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

struct cleaner *cleaner_new(void (*wake)(void *), void *wake_arg)
{
    struct cleaner *c = xcalloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->wake = wake;
    c->wake_arg = wake_arg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, clean_main, c) != 0) {
        xfree(c);
        return NULL;
    }
    pthread_setname_np(c->thread, "cleaner");
    return c;
}

void cleaner_free(struct cleaner *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    struct clean_job *lists[] = {c->queue, c->done};
    for (int k = 0; k < 2; k++)
        for (struct clean_job *j = lists[k]; j;) {
            struct clean_job *n = j->next;
            if (j->owner)
                j->owner->cleaning = false;
            job_free(j, true);
            j = n;
        }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    xfree(c);
}

/* ---- loop side ---------------------------------------------------------------- */

static int save_offset(const struct plog *l, int64_t offset)
{
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/cleaner-offset", l->dir);
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)offset);
    return file_replace(path, buf, (size_t)n);
}

/* The job for l's sealed segments, or NULL when there is nothing to do. */
static struct clean_job *make_job(struct plog *l, int64_t now_ms)
{
    const struct topic_settings *ts = l->settings;
    if (!ts->compact || l->cleaning || l->nsegs < 2)
        return NULL;
    /* cleanable: sealed segments old enough for min.compaction.lag.ms */
    int n = 0;
    int64_t dirty = 0, total = 0;
    while (n < l->nsegs - 1 && (l->segs[n]->max_timestamp < 0 ||
                                 now_ms - l->segs[n]->max_timestamp >= ts->min_compaction_lag_ms)) {
        const struct segment *s = l->segs[n];
        total += s->size;
        if (s->next_offset > l->cleaner_offset)
            dirty += s->size;
        n++;
    }
    if (n == 0 || dirty == 0 || total == 0 || (double)dirty / (double)total < ts->min_cleanable_ratio)
        return NULL;
    struct clean_job *j = xcalloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->segs = xcalloc((size_t)n, sizeof *j->segs);
    if (!j->segs) {
        xfree(j);
        return NULL;
    }
    j->owner = l;
    j->dirty_from = l->cleaner_offset;
    j->dirty_to = l->segs[n - 1]->next_offset;
    j->delete_retention_ms = ts->delete_retention_ms;
    j->now_ms = now_ms;
    for (int i = 0; i < n; i++) {
        const struct segment *s = l->segs[i];
        struct clean_seg *cs = &j->segs[j->nsegs++];
        cs->base = s->base_offset;
        cs->next_offset = s->next_offset;
        cs->size = s->size;
        cs->fd = dup(s->fd);
        cs->path = xstrdup(s->path);
        cs->orig_id = s->id;
        if (cs->fd < 0 || !cs->path) {
            job_free(j, false);
            return NULL;
        }
    }
    return j;
}

/* Loop thread: swaps the cleaned segments of a finished job into its log. */
static void apply_job(struct clean_job *j)
{
    struct plog *l = j->owner;
    l->cleaning = false;
    if (j->err) {
        log_warn("%s: compaction failed; it will be retried", l->dir);
        job_free(j, true);
        return;
    }
    int swapped = 0;
    for (int i = 0; i < j->nsegs; i++) {
        struct clean_seg *cs = &j->segs[i];
        if (!cs->rewritten)
            continue;
        /* the segment must still be there, unchanged (retention may have
         * deleted it meanwhile) */
        int k;
        for (k = 0; k < l->nsegs - 1; k++)
            if (l->segs[k]->id == cs->orig_id)
                break;
        if (k == l->nsegs - 1 || l->segs[k]->size != cs->size) {
            char path[4300];
            snprintf(path, sizeof path, "%s.log.cleaned", cs->path);
            unlink(path);
            cs->rewritten = false;
            continue;
        }
        if (plog_replace_segment(l, k, cs->path) < 0) {
            log_warn("%s: cannot swap in the compacted segment %020lld", l->dir, (long long)cs->base);
            continue;
        }
        cs->rewritten = false; /* its file is the segment now */
        swapped++;
    }
    l->cleaner_offset = j->dirty_to;
    save_offset(l, l->cleaner_offset);
    log_info("%s: compacted %d segments up to offset %lld", l->dir, swapped, (long long)j->dirty_to);
    job_free(j, true);
}

int cleaner_maybe_schedule(struct cleaner *c, struct plog *l, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    bool busy = c->queue != NULL || c->running != NULL;
    pthread_mutex_unlock(&c->mu);
    if (busy)
        return 0;
    struct clean_job *j = make_job(l, now_ms);
    if (!j)
        return 0;
    l->cleaning = true;
    pthread_mutex_lock(&c->mu);
    j->next = c->queue;
    c->queue = j;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 1;
}

void cleaner_finish(struct cleaner *c)
{
    pthread_mutex_lock(&c->mu);
    struct clean_job *list = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (list) {
        struct clean_job *n = list->next;
        if (list->owner)
            apply_job(list);
        else
            job_free(list, true);
        list = n;
    }
}

void cleaner_forget(struct cleaner *c, struct plog *l)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    struct clean_job *lists[] = {c->queue, c->running, c->done};
    for (int k = 0; k < 3; k++)
        for (struct clean_job *j = lists[k]; j; j = k == 1 ? NULL : j->next)
            if (j->owner == l)
                j->owner = NULL;
    pthread_mutex_unlock(&c->mu);
}

int64_t cleaner_bytes_removed(struct cleaner *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t n = c->bytes_removed;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int cleaner_clean_now(struct plog *l, int64_t now_ms)
{
    struct clean_job *j = make_job(l, now_ms);
    if (!j)
        return 0;
    int64_t removed = 0;
    j->err = run_job(j, &removed);
    apply_job(j);
    return 1;
}
