/* segment.c: see segment.h. */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "protocol/records.h"

#define SCAN_BUF (1 << 20)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static char *seg_path(const char *dir, int64_t base)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/%020" PRId64, dir, base);
    return xstrdup(buf);
}

static int file_path(const struct segment *s, const char *ext, char *out, size_t n)
{
    return snprintf(out, n, "%s%s", s->path, ext) >= (int)n ? -1 : 0;
}

/* Segment ids; segments are opened and truncated on the loop thread only. */
static uint64_t next_id;

static struct segment *seg_alloc(const char *dir, int64_t base)
{
    struct segment *s = xcalloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = ++next_id;
    s->base_offset = base;
    s->next_offset = base;
    s->fd = -1;
    s->max_timestamp = -1;
    s->last_batch_base = -1;
    s->path = seg_path(dir, base);
    if (!s->path) {
        xfree(s);
        return NULL;
    }
    return s;
}

static int add_index(struct segment *s, int64_t offset, int64_t pos)
{
    if (s->nidx == s->capidx) {
        int cap = s->capidx ? s->capidx * 2 : 64;
        struct seg_index_entry *n = xrealloc(s->idx, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        s->idx = n;
        s->capidx = cap;
    }
    s->idx[s->nidx++] = (struct seg_index_entry){(uint32_t)(offset - s->base_offset), (uint32_t)pos};
    return 0;
}

static int add_time(struct segment *s, int64_t ts, int64_t offset)
{
    if (s->ntidx && s->tidx[s->ntidx - 1].timestamp >= ts)
        return 0;
    if (s->ntidx == s->captidx) {
        int cap = s->captidx ? s->captidx * 2 : 64;
        struct seg_time_entry *n = xrealloc(s->tidx, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        s->tidx = n;
        s->captidx = cap;
    }
    s->tidx[s->ntidx++] = (struct seg_time_entry){ts, (uint32_t)(offset - s->base_offset)};
    return 0;
}

/* Records one batch at pos in the in-memory indexes. */
static void index_batch(struct segment *s, int64_t pos, int64_t base, int64_t max_ts, size_t n,
                        int32_t interval)
{
    if (s->bytes_since_index >= interval || (pos == 0 && s->nidx == 0)) {
        if (add_index(s, base, pos) == 0)
            s->bytes_since_index = 0;
        add_time(s, max_ts > s->max_timestamp ? max_ts : s->max_timestamp, base);
    }
    s->bytes_since_index += (int64_t)n;
    if (max_ts > s->max_timestamp)
        s->max_timestamp = max_ts;
    s->last_batch_base = base;
}

struct segment *seg_create(const char *dir, int64_t base_offset)
{
    struct segment *s = seg_alloc(dir, base_offset);
    if (!s)
        return NULL;
    char p[4200];
    file_path(s, ".log", p, sizeof p);
    s->fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        log_error("cannot create segment %s: %s", p, strerror(errno));
        seg_close(s);
        return NULL;
    }
    s->created_ms = clock_wall_ms();
    return s;
}

static int load_indexes(struct segment *s)
{
    char p[4200];
    struct stat st;
    file_path(s, ".index", p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_size % 8 != 0) {
        close(fd);
        return -1;
    }
    uint8_t *buf = st.st_size ? xmalloc((size_t)st.st_size) : NULL;
    if (st.st_size && (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)) {
        xfree(buf);
        close(fd);
        return -1;
    }
    close(fd);
    s->nidx = 0;
    int64_t lastpos = -1;
    for (off_t i = 0; i < st.st_size; i += 8) {
        int64_t pos = be32(buf + i + 4);
        if (pos <= lastpos || pos >= s->size) {
            xfree(buf);
            return -1;
        }
        lastpos = pos;
        add_index(s, s->base_offset + be32(buf + i), pos);
    }
    xfree(buf);

    file_path(s, ".timeindex", p, sizeof p);
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_size % 12 != 0) {
        close(fd);
        return -1;
    }
    buf = st.st_size ? xmalloc((size_t)st.st_size) : NULL;
    if (st.st_size && (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)) {
        xfree(buf);
        close(fd);
        return -1;
    }
    close(fd);
    s->ntidx = 0;
    for (off_t i = 0; i < st.st_size; i += 12) {
        int64_t ts = (int64_t)be64(buf + i);
        add_time(s, ts, s->base_offset + be32(buf + i + 8));
        if (ts > s->max_timestamp)
            s->max_timestamp = ts;
    }
    xfree(buf);
    return 0;
}

/* Reads the whole log, checking each batch, and cuts a bad tail. */
static int scan(struct segment *s, bool contiguous, int64_t *truncated)
{
    uint8_t *buf = xmalloc(SCAN_BUF);
    if (!buf)
        return -1;
    s->nidx = s->ntidx = 0;
    s->bytes_since_index = 0;
    s->max_timestamp = -1;
    int64_t pos = 0, file_size = s->size, next = s->base_offset;
    const char *why = NULL;
    uint8_t *big = NULL;
    while (pos < file_size) {
        uint8_t hdr[RECORDS_V2_OVERHEAD];
        if (file_size - pos < RECORDS_V2_OVERHEAD) {
            why = "torn batch header";
            break;
        }
        if (pread(s->fd, hdr, sizeof hdr, pos) != (ssize_t)sizeof hdr) {
            why = "read error";
            break;
        }
        struct records_batch_info bi;
        records_parse_header(hdr, sizeof hdr, &bi);
        int64_t total = (int64_t)bi.batch_length + 12;
        if (bi.batch_length < RECORDS_V2_OVERHEAD - 12 || bi.magic != 2) {
            why = "bad batch length or magic";
            break;
        }
        if (pos + total > file_size) {
            why = "torn batch";
            break;
        }
        if (bi.base_offset < next || bi.last_offset_delta < 0 || bi.base_offset > INT64_MAX - INT32_MAX - 1 ||
            (contiguous && bi.base_offset != next)) {
            why = "offsets not increasing";
            break;
        }
        /* CRC-32C over attributes..end */
        uint8_t *data = buf;
        if (total > SCAN_BUF) {
            xfree(big);
            big = xmalloc((size_t)total);
            if (!big) {
                why = "out of memory";
                break;
            }
            data = big;
        }
        if (pread(s->fd, data, (size_t)total, pos) != total) {
            why = "read error";
            break;
        }
        if (crc32c(0, data + 21, (size_t)total - 21) != bi.crc) {
            why = "CRC-32C mismatch";
            break;
        }
        index_batch(s, pos, bi.base_offset, bi.max_timestamp, (size_t)total, 4096);
        next = bi.base_offset + bi.last_offset_delta + 1;
        pos += total;
    }
    xfree(big);
    xfree(buf);
    *truncated = file_size - pos;
    if (pos < file_size) {
        log_warn("segment %s.log: %s at byte %" PRId64 "; cutting %" PRId64 " bytes", s->path,
                 why ? why : "?", pos, file_size - pos);
        if (ftruncate(s->fd, pos) < 0)
            return -1;
        fdatasync(s->fd);
    }
    s->size = pos;
    s->next_offset = next;
    return 0;
}

struct segment *seg_open(const char *dir, int64_t base_offset, bool want_scan, int64_t *truncated)
{
    return seg_open_checked(dir, base_offset, want_scan, false, truncated);
}

struct segment *seg_open_checked(const char *dir, int64_t base_offset, bool want_scan, bool contiguous,
                                 int64_t *truncated)
{
    *truncated = 0;
    struct segment *s = seg_alloc(dir, base_offset);
    if (!s)
        return NULL;
    char p[4200];
    file_path(s, ".log", p, sizeof p);
    s->fd = open(p, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) < 0) {
        log_error("cannot open segment %s: %s", p, strerror(errno));
        seg_close(s);
        return NULL;
    }
    s->size = st.st_size;
    s->created_ms = (int64_t)st.st_mtim.tv_sec * 1000;
    if (!want_scan && load_indexes(s) == 0) {
        s->sealed = true;
        s->next_offset = -1; /* the caller knows it from the next segment */
        return s;
    }
    if (scan(s, contiguous, truncated) < 0) {
        seg_close(s);
        return NULL;
    }
    return s;
}

void seg_close(struct segment *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    xfree(s->idx);
    xfree(s->tidx);
    xfree(s->path);
    xfree(s);
}

void seg_delete(struct segment *s)
{
    /* the indexes first: a crash in between leaves a .log without indexes,
     * which is scanned when opened, never indexes that outlive their log */
    static const char *exts[] = {".index", ".timeindex", ".log"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        file_path(s, exts[i], p, sizeof p);
        unlink(p);
    }
    seg_close(s);
}

int seg_append(struct segment *s, const uint8_t *batch, size_t n, int64_t last_offset,
               int64_t max_timestamp, int32_t index_interval)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(s->fd, batch + done, n - done, s->size + (int64_t)done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            if (ftruncate(s->fd, s->size) < 0)
                log_error("segment %s: cannot undo a failed write", s->path);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    int64_t base = last_offset - (int64_t)be32(batch + 23);
    index_batch(s, s->size, base, max_timestamp, n, index_interval);
    if (s->size == 0)
        s->created_ms = clock_wall_ms();
    s->size += (int64_t)n;
    s->next_offset = last_offset + 1;
    return 0;
}

int seg_seal(struct segment *s)
{
    char p[4200];
    /* the time index ends with the segment's largest timestamp, so that a
     * reopened segment knows it exactly (retention depends on it) */
    if (s->last_batch_base >= 0)
        add_time(s, s->max_timestamp, s->last_batch_base);
    uint8_t *buf = xmalloc((size_t)(s->nidx * 8 + s->ntidx * 12 + 1));
    if (!buf)
        return -1;
    for (int i = 0; i < s->nidx; i++) {
        put32(buf + i * 8, s->idx[i].rel_offset);
        put32(buf + i * 8 + 4, s->idx[i].pos);
    }
    file_path(s, ".index", p, sizeof p);
    int rc = file_write_synced(p, buf, (size_t)s->nidx * 8);
    for (int i = 0; i < s->ntidx; i++) {
        put32(buf + i * 12, (uint32_t)((uint64_t)s->tidx[i].timestamp >> 32));
        put32(buf + i * 12 + 4, (uint32_t)s->tidx[i].timestamp);
        put32(buf + i * 12 + 8, s->tidx[i].rel_offset);
    }
    file_path(s, ".timeindex", p, sizeof p);
    if (rc == 0)
        rc = file_write_synced(p, buf, (size_t)s->ntidx * 12);
    xfree(buf);
    if (rc == 0)
        s->sealed = true;
    return rc;
}

int seg_fsync(int fd)
{
    return fdatasync(fd);
}

/* Reads the header of the batch at pos: its base offset, last offset and size. */
static int batch_at(const struct segment *s, int64_t pos, int64_t *base, int64_t *last, int32_t *size,
                    int64_t *max_ts)
{
    uint8_t h[RECORDS_V2_OVERHEAD];
    if (pos + (int64_t)sizeof h > s->size || pread(s->fd, h, sizeof h, pos) != (ssize_t)sizeof h)
        return -1;
    *base = (int64_t)be64(h);
    int32_t blen = (int32_t)be32(h + 8);
    /* a damaged length must not stall or reverse a walk over the file */
    if (blen < RECORDS_V2_OVERHEAD - 12 || pos + 12 + (int64_t)blen > s->size)
        return -1;
    int32_t delta = (int32_t)be32(h + 23);
    /* offsets from a damaged file must not overflow the arithmetic below */
    if (*base < 0 || delta < 0 || *base > INT64_MAX - INT32_MAX - 1)
        return -1;
    *size = blen + 12;
    *last = *base + delta;
    *max_ts = (int64_t)be64(h + 35);
    return 0;
}

/* The position of the last index entry at or before offset (0 when none):
 * every batch before it ends below offset. */
static int64_t index_floor(const struct segment *s, int64_t offset)
{
    int lo = 0, hi = s->nidx - 1, best = -1;
    int64_t rel = offset - s->base_offset;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if ((int64_t)s->idx[mid].rel_offset <= rel) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best >= 0 ? s->idx[best].pos : 0;
}

int seg_find(const struct segment *s, int64_t offset, int64_t *pos, int32_t *batch_size)
{
    int64_t p = index_floor(s, offset);
    while (p < s->size) {
        int64_t base, last, ts;
        int32_t size;
        if (batch_at(s, p, &base, &last, &size, &ts) < 0)
            return -1;
        if (last >= offset) {
            *pos = p;
            *batch_size = size;
            return 0;
        }
        p += size;
    }
    return -1;
}

int seg_find_time(const struct segment *s, int64_t ts, int64_t *pos, int64_t *base_offset)
{
    if (s->max_timestamp < ts)
        return -1;
    /* the last time entry below ts tells where a batch reaching ts can start */
    int64_t start_rel = 0;
    for (int i = 0; i < s->ntidx && s->tidx[i].timestamp < ts; i++)
        start_rel = s->tidx[i].rel_offset;
    int64_t p;
    int32_t size;
    if (seg_find(s, s->base_offset + start_rel, &p, &size) < 0)
        return -1;
    while (p < s->size) {
        int64_t base, last, mts;
        if (batch_at(s, p, &base, &last, &size, &mts) < 0)
            return -1;
        if (mts >= ts) {
            *pos = p;
            *base_offset = base;
            return 0;
        }
        p += size;
    }
    return -1;
}

int seg_locate(const struct segment *s, int64_t offset, int64_t *pos, int64_t *batch_base)
{
    int64_t p = index_floor(s, offset);
    while (p < s->size) {
        int64_t base, last, ts;
        int32_t size;
        if (batch_at(s, p, &base, &last, &size, &ts) < 0) {
            errno = EIO;
            return -1;
        }
        if (last >= offset) {
            *pos = p;
            *batch_base = base;
            return 0;
        }
        p += size;
    }
    *pos = s->size;
    *batch_base = -1;
    return 1;
}

int seg_truncate(struct segment *s, int64_t pos)
{
    if (pos < 0 || pos > s->size) {
        errno = EINVAL;
        return -1;
    }
    /* What stays: the index entries of batches before pos, and the state
     * (end offset, last batch, largest timestamp) of the batches from the
     * last of those entries up to pos, read from their headers.  The time
     * entry at or before that index entry already holds the largest
     * timestamp up to it (index_batch records the running maximum). */
    int nidx = s->nidx;
    while (nidx > 0 && s->idx[nidx - 1].pos >= pos)
        nidx--;
    int64_t from = nidx > 0 ? s->idx[nidx - 1].pos : 0;
    int64_t p = from, end = s->base_offset, last_base = -1, max_ts = -1;
    while (p < pos) {
        int64_t base, last, ts;
        int32_t size;
        if (batch_at(s, p, &base, &last, &size, &ts) < 0) {
            errno = EIO;
            return -1;
        }
        if (p + size > pos) {
            errno = EINVAL; /* pos is not where a batch starts */
            return -1;
        }
        end = last + 1;
        last_base = base;
        if (ts > max_ts)
            max_ts = ts;
        p += size;
    }
    int ntidx = s->ntidx;
    while (ntidx > 0 && s->base_offset + (int64_t)s->tidx[ntidx - 1].rel_offset >= end)
        ntidx--;
    if (ntidx > 0 && s->tidx[ntidx - 1].timestamp > max_ts)
        max_ts = s->tidx[ntidx - 1].timestamp;
    if (pos < s->size) {
        /* The index files on disk describe the longer file: they go first
         * (durably), so that a crash cannot pair them with the cut log. */
        char path[4200];
        file_path(s, ".index", path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT)
            return -1;
        file_path(s, ".timeindex", path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT)
            return -1;
        if (file_fsync_parent(s->path) < 0 || ftruncate(s->fd, pos) < 0 || fsync(s->fd) < 0) {
            log_error("segment %s: cannot truncate to byte %" PRId64 ": %s", s->path, pos, strerror(errno));
            return -1;
        }
        s->id = ++next_id; /* not the segment it was: a compaction of it must not be swapped in */
    }
    s->nidx = nidx;
    s->ntidx = ntidx;
    s->size = pos;
    s->next_offset = end;
    s->last_batch_base = last_base;
    s->max_timestamp = max_ts;
    s->bytes_since_index = pos - from;
    s->sealed = false;
    return 0;
}
