/* partition_log.c: see partition_log.h. */
#include "storage/partition_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/file.h"
#include "common/log.h"
#include "protocol/kerr.h"
#include "protocol/records.h"

static void save_producers(struct plog *l)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/producer-state", l->dir);
    pstate_expire(&l->producers, clock_wall_ms(), l->settings->producer_expiration_ms);
    if (pstate_save(&l->producers, path, l->next_offset) < 0)
        log_warn("%s: cannot save the producer state: %s", l->dir, strerror(errno));
}

struct replay_ctx {
    struct plog *l;
    int64_t from;
};

/* Rebuilds producer state from batches appended after the saved state. */
static int replay_producer(void *arg, const uint8_t *batch, size_t n)
{
    struct replay_ctx *c = arg;
    struct records_batch_info bi;
    if (records_parse_header(batch, n, &bi) < 0 || bi.base_offset < c->from || bi.producer_id < 0)
        return 0;
    return pstate_update(&c->l->producers, bi.producer_id, bi.producer_epoch, bi.base_sequence,
                         bi.last_offset_delta, bi.base_offset, clock_wall_ms()) < 0 ? -1 : 0;
}

static int add_seg(struct plog *l, struct segment *s)
{
    if (l->nsegs == l->capsegs) {
        int cap = l->capsegs ? l->capsegs * 2 : 8;
        struct segment **n = xrealloc(l->segs, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        l->segs = n;
        l->capsegs = cap;
    }
    l->segs[l->nsegs++] = s;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Walks batch headers from the last index entry to find the end offset.
 * *whole is set when the walk ends exactly at the end of the file. */
static int64_t find_end_offset(const struct segment *s, bool *whole)
{
    int64_t pos, end_pos = s->nidx ? s->idx[s->nidx - 1].pos : 0;
    int32_t size;
    int64_t off = s->nidx ? s->base_offset + s->idx[s->nidx - 1].rel_offset : s->base_offset;
    int64_t end = s->base_offset;
    while (seg_find(s, off, &pos, &size) == 0) {
        uint8_t h[RECORDS_V2_OVERHEAD];
        if (pread(s->fd, h, sizeof h, pos) != (ssize_t)sizeof h)
            break;
        struct records_batch_info bi;
        records_parse_header(h, sizeof h, &bi);
        if (bi.base_offset < 0 || bi.last_offset_delta < 0 || bi.base_offset > INT64_MAX - INT32_MAX - 1 ||
            bi.base_offset + bi.last_offset_delta + 1 <= off)
            break; /* offsets that do not increase: damaged */
        end = bi.base_offset + bi.last_offset_delta + 1;
        off = end;
        end_pos = pos + size;
    }
    *whole = end_pos == s->size;
    return end;
}

struct plog *plog_open(const char *dir, const struct topic_settings *settings, bool clean)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    struct plog *l = xcalloc(1, sizeof *l);
    if (!l)
        return NULL;
    pstate_init(&l->producers);
    l->dir = xstrdup(dir);
    l->settings = settings;
    if (!l->dir || ecache_open(&l->epochs, dir) < 0) {
        plog_close(l);
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        plog_close(l);
        return NULL;
    }
    int64_t *bases = NULL;
    int nb = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 12 && strcmp(e->d_name + n - 12, ".log.cleaned") == 0) {
            /* a compaction that did not finish: the original still stands */
            char p[4300];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
            continue;
        }
        if (n != 24 || strcmp(e->d_name + 20, ".log") != 0)
            continue;
        char *end;
        long long b = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + 20 || b < 0)
            continue;
        if (nb == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nbases = xrealloc(bases, (size_t)cap * sizeof *nbases);
            if (!nbases)
                break;
            bases = nbases;
        }
        bases[nb++] = b;
    }
    closedir(d);
    if (nb > 1)
        qsort(bases, (size_t)nb, sizeof *bases, cmp_i64);
    /* After an unclean stop, every segment holding offsets past the
     * recovery point (what is known to be fsynced) is checked batch by
     * batch; data before it was synced and is trusted. */
    int64_t recovery_point = 0;
    char rp_path[4200];
    snprintf(rp_path, sizeof rp_path, "%s/recovery-point", dir);
    FILE *rpf = fopen(rp_path, "r");
    if (rpf) {
        long long v;
        if (fscanf(rpf, "%lld", &v) == 1 && v >= 0)
            recovery_point = v;
        fclose(rpf);
    }
    /* Offsets are contiguous in a log that was never compacted, which
     * catches damage to a base offset (outside the CRC); a compacted log,
     * even one whose policy changed since, has gaps. */
    char co_path[4200];
    snprintf(co_path, sizeof co_path, "%s/cleaner-offset", dir);
    bool contiguous = !settings->compact && access(co_path, F_OK) != 0;
    for (int i = 0; i < nb; i++) {
        bool last = i == nb - 1;
        int64_t cut = 0;
        bool check = !clean && (last || bases[i + 1] > recovery_point);
        struct segment *s = seg_open_checked(dir, bases[i], check, contiguous, &cut);
        if (!s || add_seg(l, s) < 0) {
            seg_close(s);
            xfree(bases);
            plog_close(l);
            return NULL;
        }
        if (check && !last && cut > 0) {
            /* a torn or corrupt sealed segment: nothing after the cut may be
             * served, so the later segments go */
            log_warn("%s: segment %020lld was cut; removing the %d segments after it", dir,
                     (long long)bases[i], nb - i - 1);
            for (int k = i + 1; k < nb; k++) {
                int64_t c2;
                struct segment *later = seg_open(dir, bases[k], false, &c2);
                if (later)
                    seg_delete(later);
            }
            nb = i + 1;
            last = true;
        }
        if (s->next_offset < 0 && last) {
            bool whole;
            s->next_offset = find_end_offset(s, &whole);
            if (!whole) {
                /* the index or the tail does not match the file: check it all */
                log_warn("%s: active segment %020lld does not match its index; checking it", dir,
                         (long long)bases[i]);
                seg_close(s);
                l->nsegs--;
                s = seg_open_checked(dir, bases[i], true, contiguous, &cut);
                if (!s || add_seg(l, s) < 0) {
                    seg_close(s);
                    xfree(bases);
                    plog_close(l);
                    return NULL;
                }
            }
        } else if (s->next_offset < 0) {
            s->next_offset = bases[i + 1];
        } else if (!last && !s->sealed) {
            /* a sealed segment whose index had to be rebuilt: keep the result */
            seg_seal(s);
        }
        s->sealed = !last;
    }
    xfree(bases);
    if (l->nsegs == 0) {
        struct segment *s = seg_create(dir, 0);
        if (!s || add_seg(l, s) < 0) {
            seg_close(s);
            plog_close(l);
            return NULL;
        }
    }
    l->log_start_offset = l->segs[0]->base_offset;
    l->next_offset = l->segs[l->nsegs - 1]->next_offset;
    l->recovery_point = recovery_point < l->next_offset ? recovery_point : l->next_offset;
    char path[4200];
    snprintf(path, sizeof path, "%s/log-start-offset", dir);
    FILE *f = fopen(path, "r");
    long long saved;
    if (f) {
        if (fscanf(f, "%lld", &saved) == 1 && saved > l->log_start_offset && saved <= l->next_offset)
            l->log_start_offset = saved;
        fclose(f);
    }
    l->cleaner_offset = l->log_start_offset;
    snprintf(path, sizeof path, "%s/cleaner-offset", dir);
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%lld", &saved) == 1 && saved >= l->log_start_offset && saved <= l->next_offset)
            l->cleaner_offset = saved;
        fclose(f);
    }
    /* producer state: the saved snapshot, then the batches after it */
    snprintf(path, sizeof path, "%s/producer-state", dir);
    int64_t covered = pstate_load(&l->producers, path);
    if (covered < 0 || covered > l->next_offset) {
        pstate_free(&l->producers);
        pstate_init(&l->producers);
        covered = l->log_start_offset;
    }
    if (covered < l->next_offset) {
        struct replay_ctx rc = {l, covered};
        if (plog_for_each_batch(l, covered, replay_producer, &rc) < 0)
            log_warn("%s: could not rebuild all producer state", dir);
    }
    /* The checkpoint is written when an epoch starts, before its data is
     * synced: recovery may have cut the data an entry points at. */
    ecache_truncate_from_end(&l->epochs, l->next_offset);
    ecache_truncate_from_start(&l->epochs, l->log_start_offset);
    /* The active segment's index files are rewritten when it is sealed. */
    return l;
}

void plog_close(struct plog *l)
{
    if (!l)
        return;
    if (l->nsegs > 0 && l->settings) {
        save_producers(l);
        fdatasync(l->segs[l->nsegs - 1]->fd);
        plog_save_recovery_point(l, l->next_offset);
        if (l->epochs.unsaved)
            ecache_save(&l->epochs);
    }
    pstate_free(&l->producers);
    ecache_close(&l->epochs);
    for (int i = 0; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        if (i == l->nsegs - 1 && s->fd >= 0) {
            fdatasync(s->fd);
            seg_seal(s);
        }
        seg_close(s);
    }
    xfree(l->segs);
    xfree(l->dir);
    xfree(l);
}

void plog_destroy(struct plog *l)
{
    for (int i = 0; i < l->nsegs; i++)
        seg_delete(l->segs[i]);
    l->nsegs = 0;
    DIR *d = opendir(l->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[4300];
            snprintf(p, sizeof p, "%s/%s", l->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(l->dir);
    pstate_free(&l->producers);
    ecache_close(&l->epochs);
    xfree(l->segs);
    xfree(l->dir);
    xfree(l);
}

static int roll(struct plog *l)
{
    struct segment *a = l->segs[l->nsegs - 1];
    struct segment *s = seg_create(l->dir, l->next_offset);
    if (!s)
        return -1;
    if (add_seg(l, s) < 0) {
        seg_delete(s);
        return -1;
    }
    /* The old segment's index files are written now; its data is flushed by
     * the next flush (or the OS). */
    if (seg_seal(a) < 0)
        log_warn("cannot write index files for %s: %s", a->path, strerror(errno));
    /* after a crash, only the new segment needs replaying for producer state */
    save_producers(l);
    return 0;
}

/* Appends a batch that carries its final offsets (baseOffset in its
 * header, at or above the log end), rolling the active segment first when
 * it is full or old, and records what it says about producers and leader
 * epochs. */
static int append_batch(struct plog *l, const uint8_t *batch, size_t n, int64_t now_ms)
{
    struct records_batch_info bi;
    records_parse_header(batch, n, &bi);
    int64_t base = bi.base_offset;
    int64_t last = base + bi.last_offset_delta;
    struct segment *a = l->segs[l->nsegs - 1];
    const struct topic_settings *ts = l->settings;
    bool too_big = a->size > 0 && a->size + (int64_t)n > ts->segment_bytes;
    bool too_old = a->size > 0 && now_ms - a->created_ms >= ts->segment_ms;
    /* offsets relative to a segment's base must fit the 32-bit index */
    bool too_many = base - a->base_offset > INT32_MAX - 100000;
    if (too_big || too_old || too_many) {
        if (roll(l) < 0)
            return -1;
        a = l->segs[l->nsegs - 1];
    }
    if (seg_append(a, batch, n, last, bi.max_timestamp, ts->index_interval_bytes) < 0)
        return -1;
    l->next_offset = last + 1;
    if (bi.producer_id >= 0)
        pstate_update(&l->producers, bi.producer_id, bi.producer_epoch, bi.base_sequence, bi.last_offset_delta,
                      base, now_ms);
    l->unflushed += bi.record_count;
    /* A leader stamps its epoch, a follower keeps the leader's: either way
     * the first batch of a new epoch starts it.  A failed checkpoint write
     * is logged and retried by the next change; the batch stays. */
    if (bi.partition_leader_epoch >= 0 && bi.partition_leader_epoch > ecache_latest_epoch(&l->epochs))
        ecache_assign(&l->epochs, bi.partition_leader_epoch, base);
    return 0;
}

int plog_append(struct plog *l, uint8_t *batch, size_t n, int64_t now_ms, int64_t *base_offset)
{
    int64_t base = l->next_offset;
    records_set_base_offset(batch, base);
    if (append_batch(l, batch, n, now_ms) < 0)
        return -1;
    *base_offset = base;
    return 0;
}

int plog_append_replica(struct plog *l, const uint8_t *batch, size_t n, int64_t now_ms)
{
    struct records_batch_info bi;
    if (records_parse_header(batch, n, &bi) < 0 || bi.magic != 2 ||
        bi.batch_length < RECORDS_V2_OVERHEAD - RECORDS_LOG_OVERHEAD ||
        (size_t)bi.batch_length + RECORDS_LOG_OVERHEAD != n || bi.last_offset_delta < 0 ||
        crc32c(0, batch + RECORDS_CRC_START, n - RECORDS_CRC_START) != bi.crc) {
        errno = EBADMSG;
        return -1;
    }
    /* A compacted leader's log has offset gaps, which a follower copies;
     * any other log is contiguous (plog_open's recovery relies on it). */
    bool gap_ok = l->settings->compact;
    if (bi.base_offset < l->next_offset || (bi.base_offset > l->next_offset && !gap_ok) ||
        bi.base_offset > INT64_MAX - INT32_MAX - 1) {
        errno = EINVAL;
        return -1;
    }
    return append_batch(l, batch, n, now_ms);
}

void plog_stamp_leader_epoch(uint8_t *batch, int32_t epoch)
{
    records_set_partition_leader_epoch(batch, epoch);
}

int plog_check_producer(const struct plog *l, const uint8_t *batch, size_t n, int64_t *dup_base_offset,
                        int32_t *dup_last_offset_delta)
{
    struct records_batch_info bi;
    if (records_parse_header(batch, n, &bi) < 0 || bi.producer_id < 0)
        return PSTATE_APPEND;
    return pstate_check(&l->producers, bi.producer_id, bi.producer_epoch, bi.base_sequence, bi.last_offset_delta,
                        dup_base_offset, dup_last_offset_delta);
}

static int find_seg(const struct plog *l, int64_t offset)
{
    int lo = 0, hi = l->nsegs - 1, best = 0;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (l->segs[mid]->base_offset <= offset) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

int plog_read(const struct plog *l, int64_t offset, int32_t max_bytes, bool min_one, struct plog_slice *out)
{
    out->fd = -1;
    out->pos = 0;
    out->len = 0;
    if (offset < l->log_start_offset || offset > l->next_offset)
        return KERR_OFFSET_OUT_OF_RANGE;
    if (offset == l->next_offset)
        return 0;
    for (int i = find_seg(l, offset); i < l->nsegs; i++) {
        const struct segment *s = l->segs[i];
        int64_t pos;
        int32_t size;
        if (seg_find(s, offset, &pos, &size) < 0)
            continue; /* the offset was compacted or cut away: try the next segment */
        int64_t avail = s->size - pos;
        int64_t len = avail < max_bytes ? avail : max_bytes;
        if (len < size) {
            if (!min_one)
                return 0;
            len = size; /* at least one whole batch, or the consumer stalls */
        }
        out->fd = s->fd;
        out->pos = pos;
        out->len = (int32_t)len;
        return 0;
    }
    return 0;
}

/* The first record of the batch at pos with a timestamp >= ts. */
static int64_t first_record_at_or_after(const struct segment *s, int64_t pos, int64_t ts, int64_t *found_ts)
{
    uint8_t h[RECORDS_V2_OVERHEAD];
    if (pread(s->fd, h, sizeof h, pos) != (ssize_t)sizeof h)
        return -1;
    struct records_batch_info bi;
    records_parse_header(h, sizeof h, &bi);
    size_t n = (size_t)bi.batch_length + RECORDS_LOG_OVERHEAD;
    if (bi.attributes & RECORDS_ATTR_LOG_APPEND_TIME) {
        *found_ts = bi.max_timestamp; /* every record carries the append time */
        return bi.base_offset;
    }
    uint8_t *batch = xmalloc(n);
    if (!batch || pread(s->fd, batch, n, pos) != (ssize_t)n) {
        xfree(batch);
        return -1;
    }
    struct obuf scratch;
    obuf_init(&scratch);
    struct records_limits lim = {0, 0, true};
    const uint8_t *body;
    size_t len;
    int64_t found = -1;
    if (records_batch_body(batch, n, &lim, &scratch, &body, &len) == 0) {
        const uint8_t *p = body, *end = body + len;
        struct records_record_view rv;
        for (int32_t i = 0; i < bi.record_count && records_record_next(&p, end, &rv) == 0; i++)
            if (bi.base_timestamp + rv.timestamp_delta >= ts) {
                found = bi.base_offset + rv.offset_delta;
                *found_ts = bi.base_timestamp + rv.timestamp_delta;
                break;
            }
    }
    obuf_free(&scratch);
    xfree(batch);
    return found;
}

int64_t plog_offset_for_time(const struct plog *l, int64_t ts, int64_t *found_ts)
{
    for (int i = 0; i < l->nsegs; i++) {
        const struct segment *s = l->segs[i];
        int64_t pos, base;
        if (seg_find_time(s, ts, &pos, &base) < 0)
            continue;
        /* the batch's maxTimestamp reaches ts, but its records need not be
         * in order: look inside, and on to later batches if needed */
        while (pos < s->size) {
            int64_t off = first_record_at_or_after(s, pos, ts, found_ts);
            if (off >= 0)
                return off < l->log_start_offset ? l->log_start_offset : off;
            uint8_t h[12];
            if (pread(s->fd, h, sizeof h, pos) != (ssize_t)sizeof h)
                break;
            int32_t blen = (int32_t)((uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11]);
            if (blen < RECORDS_V2_OVERHEAD - 12)
                break; /* damaged: stop rather than loop */
            pos += 12 + (int64_t)blen;
        }
    }
    return -1;
}

void plog_maybe_roll_by_age(struct plog *l, int64_t now_ms)
{
    struct segment *a = l->segs[l->nsegs - 1];
    if (a->size > 0 && now_ms - a->created_ms >= l->settings->segment_ms)
        roll(l);
}

int plog_take_dirty_fds(struct plog *l, int *fds, int max, int64_t now_ms)
{
    int n = 0;
    /* the active segment, and one just sealed by a roll */
    for (int i = l->nsegs - 1; i >= 0 && i >= l->nsegs - 2 && n < max; i--) {
        int fd = dup(l->segs[i]->fd);
        if (fd >= 0)
            fds[n++] = fd;
    }
    l->unflushed = 0;
    l->last_flush_ms = now_ms;
    return n;
}

int64_t plog_size(const struct plog *l)
{
    int64_t n = 0;
    for (int i = 0; i < l->nsegs; i++)
        n += l->segs[i]->size;
    return n;
}

int plog_for_each_batch(const struct plog *l, int64_t from,
                        int (*fn)(void *arg, const uint8_t *batch, size_t n), void *arg)
{
    size_t cap = 1 << 20;
    uint8_t *buf = xmalloc(cap);
    if (!buf)
        return -1;
    int rc = 0;
    for (int i = from > l->log_start_offset ? find_seg(l, from) : 0; i < l->nsegs && !rc; i++) {
        const struct segment *s = l->segs[i];
        int64_t pos = 0;
        int32_t size;
        if (from > s->base_offset && seg_find(s, from, &pos, &size) < 0)
            continue;
        while (pos < s->size && !rc) {
            size_t want = (size_t)(s->size - pos) < cap ? (size_t)(s->size - pos) : cap;
            ssize_t got = pread(s->fd, buf, want, pos);
            if (got <= 0) {
                rc = -1;
                break;
            }
            struct records_iter it;
            records_iter_init(&it, buf, (size_t)got, false);
            const uint8_t *batch;
            size_t n;
            int r;
            while ((r = records_iter_next(&it, NULL, &batch, &n)) == RECORDS_ITER_BATCH && !rc)
                rc = fn(arg, batch, n);
            if (rc)
                break;
            if (it.pos == 0) {
                if (r != RECORDS_ITER_TRUNCATED || (size_t)got < want) {
                    rc = r == RECORDS_ITER_TRUNCATED && (size_t)got == want ? 0 : -1;
                    break;
                }
                /* one batch larger than the buffer: grow and retry */
                uint8_t hdr[12];
                memcpy(hdr, buf, 12);
                size_t need = ((size_t)hdr[8] << 24 | (size_t)hdr[9] << 16 | (size_t)hdr[10] << 8 | hdr[11]) + 12;
                uint8_t *nb = need <= (1u << 30) ? xrealloc(buf, need) : NULL;
                if (!nb) {
                    rc = -1;
                    break;
                }
                buf = nb;
                cap = need;
                continue;
            }
            pos += (int64_t)it.pos;
        }
    }
    xfree(buf);
    return rc;
}

static void drop_first_segment(struct plog *l)
{
    struct segment *s = l->segs[0];
    log_info("%s: deleting segment %020lld (%lld bytes)", l->dir, (long long)s->base_offset, (long long)s->size);
    memmove(l->segs, l->segs + 1, (size_t)(l->nsegs - 1) * sizeof *l->segs);
    l->nsegs--;
    seg_delete(s);
    if (l->segs[0]->base_offset > l->log_start_offset)
        l->log_start_offset = l->segs[0]->base_offset;
}

int plog_apply_retention(struct plog *l, int64_t now_ms)
{
    const struct topic_settings *ts = l->settings;
    if (!ts->delete_policy)
        return 0;
    int deleted = 0;
    if (ts->retention_ms >= 0) {
        struct segment *a = l->segs[l->nsegs - 1];
        /* when even the active segment has expired, roll it so it can go */
        if (a->size > 0 && a->max_timestamp >= 0 && now_ms - a->max_timestamp > ts->retention_ms)
            roll(l);
        while (l->nsegs > 1 && l->segs[0]->max_timestamp >= 0 &&
               now_ms - l->segs[0]->max_timestamp > ts->retention_ms) {
            drop_first_segment(l);
            deleted++;
        }
    }
    if (ts->retention_bytes >= 0) {
        int64_t total = plog_size(l);
        while (l->nsegs > 1 && total - l->segs[0]->size >= ts->retention_bytes) {
            total -= l->segs[0]->size;
            drop_first_segment(l);
            deleted++;
        }
    }
    if (deleted > 0)
        ecache_truncate_from_start(&l->epochs, l->log_start_offset);
    return deleted;
}

/* The log start offset inside the first segment survives restarts in a
 * small file beside the segments (Kafka keeps a checkpoint likewise). */
static int save_log_start(const struct plog *l)
{
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/log-start-offset", l->dir);
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)l->log_start_offset);
    return file_replace(path, buf, (size_t)n);
}

int plog_delete_records(struct plog *l, int64_t offset)
{
    if (offset < 0 || offset > l->next_offset)
        return KERR_OFFSET_OUT_OF_RANGE;
    if (offset <= l->log_start_offset)
        return 0;
    int64_t old = l->log_start_offset;
    l->log_start_offset = offset;
    if (save_log_start(l) < 0) {
        l->log_start_offset = old;
        return KERR_KAFKA_STORAGE_ERROR;
    }
    while (l->nsegs > 1 && l->segs[1]->base_offset <= offset)
        drop_first_segment(l);
    ecache_truncate_from_start(&l->epochs, l->log_start_offset);
    return 0;
}

int plog_replace_segment(struct plog *l, int k, const char *path)
{
    struct segment *old = l->segs[k];
    char from[4300], to[4300], idx[4300];
    snprintf(from, sizeof from, "%s.log.cleaned", path);
    snprintf(to, sizeof to, "%s.log", path);
    /* stale indexes must not survive the rename: without them the segment
     * is rescanned at the next start */
    snprintf(idx, sizeof idx, "%s.index", path);
    unlink(idx);
    snprintf(idx, sizeof idx, "%s.timeindex", path);
    unlink(idx);
    if (rename(from, to) < 0)
        return -1;
    int dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    int64_t cut;
    struct segment *s = seg_open(l->dir, old->base_offset, true, &cut);
    if (!s) {
        /* the old descriptor still reads the old file; keep serving it */
        return -1;
    }
    s->next_offset = old->next_offset; /* the last records may be gone, the offsets are not */
    seg_seal(s);
    s->created_ms = old->created_ms;
    l->segs[k] = s;
    seg_close(old);
    return 0;
}

int plog_save_recovery_point(struct plog *l, int64_t offset)
{
    if (offset < l->recovery_point)
        return 0;
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/recovery-point", l->dir);
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)offset);
    if (file_replace(path, buf, (size_t)n) < 0)
        return -1;
    l->recovery_point = offset;
    return 0;
}

int plog_take_unsynced_fds(struct plog *l, int *fds, int max)
{
    int n = 0;
    for (int i = l->nsegs - 1; i >= 0 && n < max; i--) {
        if (l->segs[i]->next_offset <= l->recovery_point && i < l->nsegs - 1)
            break;
        int fd = dup(l->segs[i]->fd);
        if (fd >= 0)
            fds[n++] = fd;
    }
    return n;
}

/* --- tail truncation (followers) ------------------------------------------ */

/* Writes the recovery point as given, lower too (plog_save_recovery_point
 * only raises it), durably: a recovery point above the log end would let
 * data appended after a truncation pass unchecked after a crash. */
static int write_recovery_point(struct plog *l, int64_t offset)
{
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/recovery-point", l->dir);
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)offset);
    if (file_replace(path, buf, (size_t)n) < 0 || file_fsync_dir(l->dir) < 0)
        return -1;
    l->recovery_point = offset;
    /* a checkpoint flush under way would move it back up past the cut:
     * its answer is ignored (the broker matches it by token) */
    if (l->checkpoint_target > offset)
        l->checkpoint_token = 0;
    return 0;
}

/* Sets the cleaner offset, and its file when there is one (the file's
 * existence tells plog_open that the log has gaps; it is not created). */
static void set_cleaner_offset(struct plog *l, int64_t offset)
{
    if (l->cleaner_offset == offset)
        return;
    l->cleaner_offset = offset;
    char path[4200], buf[32];
    snprintf(path, sizeof path, "%s/cleaner-offset", l->dir);
    if (access(path, F_OK) != 0)
        return;
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)offset);
    if (file_replace(path, buf, (size_t)n) < 0)
        log_warn("%s: cannot save the cleaner offset: %s", l->dir, strerror(errno));
}

/* Producer state after a truncation: rebuilt by rereading every batch from
 * the log start, then saved (the saved state may describe removed
 * batches).  O(log size), but truncation is rare, and this is exact where
 * undoing the removed batches would need history the state does not keep. */
static void rebuild_producers(struct plog *l)
{
    pstate_free(&l->producers);
    pstate_init(&l->producers);
    struct replay_ctx rc = {l, INT64_MIN};
    if (plog_for_each_batch(l, l->log_start_offset, replay_producer, &rc) < 0)
        log_warn("%s: could not rebuild all producer state", l->dir);
    save_producers(l);
}

int plog_truncate_to(struct plog *l, int64_t offset)
{
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (offset <= l->log_start_offset)
        return plog_truncate_fully(l, offset);
    if (offset >= l->next_offset)
        return 0;
    /* the first batch whose last offset reaches offset: segment k, byte pos */
    int k;
    int64_t pos = 0, cut_base = -1;
    for (k = find_seg(l, offset); k < l->nsegs; k++) {
        int r = seg_locate(l->segs[k], offset, &pos, &cut_base);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
    }
    if (k == l->nsegs)
        return 0; /* past offset lies only an offset gap (a compacted log) */
    /* a segment cut at its first byte goes whole; the cut moves to the end
     * of the segment before, which becomes the active one */
    while (pos == 0 && k > 0)
        pos = l->segs[--k]->size;
    if ((pos == 0 && k == 0) || cut_base <= l->log_start_offset) {
        /* nothing at or above the log start would remain */
        int64_t start = cut_base < offset ? cut_base : offset;
        return plog_truncate_fully(l, start > l->log_start_offset ? start : l->log_start_offset);
    }
    int64_t old_end = l->next_offset;
    /* Later segments go first, newest first: a crash part way leaves a
     * prefix of the log, never a hole followed by data. */
    bool deleted = l->nsegs > k + 1;
    while (l->nsegs > k + 1)
        seg_delete(l->segs[--l->nsegs]);
    if (deleted && file_fsync_dir(l->dir) < 0)
        goto io_err;
    if (seg_truncate(l->segs[k], pos) < 0)
        goto io_err;
    int64_t end = l->segs[k]->next_offset;
    l->next_offset = end;
    if (end < l->log_start_offset) /* the log start lay in an offset gap */
        return plog_truncate_fully(l, l->log_start_offset);
    /* The cut segment was fsynced; the one before may hold data not yet
     * flushed (plog_take_dirty_fds hands out those two).  Syncing it makes
     * everything left durable. */
    if (k > 0 && fdatasync(l->segs[k - 1]->fd) < 0)
        goto io_err;
    l->unflushed = 0;
    if (l->recovery_point > end && write_recovery_point(l, end) < 0)
        goto io_err;
    if (l->cleaner_offset > end)
        set_cleaner_offset(l, end);
    rebuild_producers(l);
    ecache_truncate_from_end(&l->epochs, end);
    log_info("%s: truncated to offset %lld (the log ended at %lld)", l->dir, (long long)end, (long long)old_end);
    return 0;
io_err:
    log_error("%s: truncation to offset %lld failed: %s", l->dir, (long long)offset, strerror(errno));
    l->next_offset = l->segs[l->nsegs - 1]->next_offset;
    return -1;
}

int plog_truncate_fully(struct plog *l, int64_t new_start)
{
    if (new_start < 0) {
        errno = EINVAL;
        return -1;
    }
    /* The segment that will hold the log is made first (or is the one
     * already based at new_start), so that a crash part way never leaves a
     * directory without segments, which would restart the log at 0. */
    int keep = -1;
    for (int i = 0; i < l->nsegs; i++)
        if (l->segs[i]->base_offset == new_start)
            keep = i;
    struct segment *s = keep >= 0 ? l->segs[keep] : seg_create(l->dir, new_start);
    if (!s)
        return -1;
    int64_t old_start = l->log_start_offset, old_end = l->next_offset;
    l->log_start_offset = new_start;
    if (save_log_start(l) < 0 || file_fsync_dir(l->dir) < 0) {
        l->log_start_offset = old_start;
        if (keep < 0)
            seg_delete(s);
        log_error("%s: cannot restart the log at %lld: %s", l->dir, (long long)new_start, strerror(errno));
        return -1;
    }
    for (int i = l->nsegs - 1; i >= 0; i--)
        if (i != keep)
            seg_delete(l->segs[i]);
    l->segs[0] = s;
    l->nsegs = 1;
    l->next_offset = new_start;
    if ((keep >= 0 && seg_truncate(s, 0) < 0) || file_fsync_dir(l->dir) < 0)
        goto io_err;
    l->unflushed = 0;
    if (write_recovery_point(l, new_start) < 0)
        goto io_err;
    set_cleaner_offset(l, new_start);
    pstate_free(&l->producers);
    pstate_init(&l->producers);
    save_producers(l);
    ecache_clear(&l->epochs);
    log_info("%s: emptied and restarted at offset %lld (it held %lld..%lld)", l->dir, (long long)new_start,
             (long long)old_start, (long long)old_end);
    return 0;
io_err:
    log_error("%s: restarting the log at %lld failed: %s", l->dir, (long long)new_start, strerror(errno));
    return -1;
}
