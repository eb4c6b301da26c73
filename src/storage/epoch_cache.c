/* epoch_cache.c: see epoch_cache.h (format and rules there). */
#include "storage/epoch_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/log.h"

/* The longest entry line: a 10-digit epoch, a space, a 19-digit offset, a
 * newline. */
#define LINE_MAX_BYTES 32

static int reserve(struct ecache *c, int want)
{
    if (want <= c->cap)
        return 0;
    int cap = c->cap ? c->cap : 8;
    while (cap < want)
        cap *= 2;
    struct epoch_entry *n = xrealloc(c->e, (size_t)cap * sizeof *n);
    if (!n)
        return -1;
    c->e = n;
    c->cap = cap;
    return 0;
}

/* Reads a decimal number, no sign, that fits an int64 from *p (< end);
 * advances *p past it.  Returns 0 or -1. */
static int parse_num(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1; /* too large for an int64 */
        v = v * 10 + d;
        s++;
    }
    if (s == *p)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

/* Parses a checkpoint file's bytes into c (empty on entry).  Returns 0 or
 * -1 (corrupt; c may hold some entries) with *why set; errno ENOMEM when
 * out of memory. */
static int parse(struct ecache *c, const char *buf, size_t n, const char **why)
{
    const char *p = buf, *end = buf + n;
    int64_t version, count;
    errno = 0;
    if (n == 0)
        return 0; /* Kafka reads an empty file as an empty cache */
    if (parse_num(&p, end, &version) < 0 || version != 0) {
        *why = "unknown version";
        return -1;
    }
    if (p < end && *p++ != '\n') {
        *why = "bad version line";
        return -1;
    }
    if (p == end)
        return 0; /* a version and nothing else: empty, as in Kafka */
    if (parse_num(&p, end, &count) < 0 || (p < end && *p++ != '\n')) {
        *why = "bad count line";
        return -1;
    }
    /* each entry needs at least "0 0\n" (the last one may lack the newline) */
    if (count > ((int64_t)(end - p) + 1) / 4) {
        *why = "count larger than the file";
        return -1;
    }
    if (reserve(c, (int)count) < 0) {
        *why = "out of memory";
        errno = ENOMEM;
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t epoch, start;
        if (parse_num(&p, end, &epoch) < 0 || epoch > INT32_MAX) {
            *why = "bad epoch";
            return -1;
        }
        if (p == end || (*p != ' ' && *p != '\t')) {
            *why = "malformed entry";
            return -1;
        }
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (parse_num(&p, end, &start) < 0) {
            *why = "bad start offset";
            return -1;
        }
        if (p < end && *p++ != '\n') {
            *why = "malformed entry";
            return -1;
        }
        if (c->n > 0 && (epoch <= c->e[c->n - 1].epoch || start <= c->e[c->n - 1].start_offset)) {
            *why = "entries out of order";
            return -1;
        }
        c->e[c->n++] = (struct epoch_entry){(int32_t)epoch, start};
    }
    if (p != end) {
        *why = "more entries than counted";
        return -1;
    }
    return 0;
}

int ecache_open(struct ecache *c, const char *dir)
{
    *c = (struct ecache){0};
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, ECACHE_FILE_NAME) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    c->path = xstrdup(path);
    if (!c->path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("%s: cannot open (%s); starting with an empty leader epoch cache", path, strerror(errno));
        return 0;
    }
    struct stat st;
    char *buf = NULL;
    const char *why = NULL;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        why = "cannot stat";
    } else if (st.st_size > ECACHE_MAX_FILE_BYTES) {
        why = "file too large";
    } else if (!(buf = xmalloc((size_t)st.st_size + 1))) {
        why = "out of memory";
        rc = -1;
    } else if (pread(fd, buf, (size_t)st.st_size, 0) != (ssize_t)st.st_size) {
        why = "read error";
    } else if (parse(c, buf, (size_t)st.st_size, &why) < 0) {
        if (errno == ENOMEM)
            rc = -1;
    }
    close(fd);
    xfree(buf);
    if (why) {
        log_warn("%s: %s; starting with an empty leader epoch cache", path, why);
        c->n = 0;
    }
    return rc;
}

void ecache_close(struct ecache *c)
{
    xfree(c->e);
    xfree(c->path);
    *c = (struct ecache){0};
}

int ecache_save(struct ecache *c)
{
    size_t cap = 32 + (size_t)c->n * LINE_MAX_BYTES;
    char *buf = xmalloc(cap);
    if (!buf) {
        c->unsaved = true;
        return -1;
    }
    size_t len = (size_t)snprintf(buf, cap, "0\n%d\n", c->n);
    for (int i = 0; i < c->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%d %lld\n", (int)c->e[i].epoch,
                                (long long)c->e[i].start_offset);
    int rc = file_replace(c->path, buf, len);
    if (rc == 0)
        rc = file_fsync_parent(c->path);
    xfree(buf);
    c->unsaved = rc < 0;
    if (rc < 0)
        log_warn("%s: cannot write the leader epoch checkpoint: %s", c->path, strerror(errno));
    return rc;
}

int ecache_assign(struct ecache *c, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0 || start_offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (c->n > 0) {
        const struct epoch_entry *last = &c->e[c->n - 1];
        if (epoch < last->epoch || (epoch == last->epoch && start_offset >= last->start_offset))
            return 0;
    }
    if (reserve(c, c->n + 1) < 0)
        return -1;
    /* entries this one contradicts: a later or equal epoch, or a start at or
     * after its start (Kafka's maybeTruncateNonMonotonicEntries) */
    int keep = c->n;
    while (keep > 0 && (c->e[keep - 1].epoch >= epoch || c->e[keep - 1].start_offset >= start_offset))
        keep--;
    if (keep < c->n - 1 || (keep == c->n - 1 && c->e[keep].start_offset != start_offset))
        log_warn("%s: epoch %d at offset %lld replaces %d later entries", c->path, (int)epoch,
                 (long long)start_offset, c->n - keep);
    c->n = keep;
    c->e[c->n++] = (struct epoch_entry){epoch, start_offset};
    return ecache_save(c);
}

int32_t ecache_latest_epoch(const struct ecache *c)
{
    return c->n > 0 ? c->e[c->n - 1].epoch : ECACHE_UNDEFINED_EPOCH;
}

/* Kafka 2.0 answered an epoch older than every cached one with UNDEFINED,
 * as here; Kafka 2.1+ (KAFKA-7415/KIP-320) answers (epoch, start offset of
 * the first cached epoch), so that a consumer validating an old position
 * after retention is not reset.  This follows the 2.0 rule as specified for
 * shopstream; the later rule is the one-line change marked below. */
void ecache_end_offset_for(const struct ecache *c, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                           int64_t *out_end)
{
    *out_epoch = ECACHE_UNDEFINED_EPOCH;
    *out_end = ECACHE_UNDEFINED_OFFSET;
    if (epoch < 0 || c->n == 0)
        return;
    if (epoch == c->e[c->n - 1].epoch) {
        /* the epoch still being written: it ends at the log end */
        *out_epoch = epoch;
        *out_end = log_end;
        return;
    }
    /* the first entry with an epoch above the requested one */
    int lo = 0, hi = c->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (c->e[mid].epoch > epoch)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == c->n)
        return; /* above the latest epoch */
    if (lo == 0)
        return; /* below the first epoch (Kafka 2.1+: (epoch, c->e[0].start_offset)) */
    *out_epoch = c->e[lo - 1].epoch;
    *out_end = c->e[lo].start_offset;
}

int ecache_truncate_from_end(struct ecache *c, int64_t end_offset)
{
    int keep = c->n;
    while (keep > 0 && c->e[keep - 1].start_offset >= end_offset)
        keep--;
    if (keep == c->n && !c->unsaved)
        return 0;
    c->n = keep;
    return ecache_save(c);
}

int ecache_truncate_from_start(struct ecache *c, int64_t start_offset)
{
    /* the last entry starting at or below start_offset */
    int k = -1;
    while (k + 1 < c->n && c->e[k + 1].start_offset <= start_offset)
        k++;
    if ((k < 0 || (k == 0 && c->e[0].start_offset == start_offset)) && !c->unsaved)
        return 0;
    if (k >= 0) {
        memmove(c->e, c->e + k, (size_t)(c->n - k) * sizeof *c->e);
        c->n -= k;
        c->e[0].start_offset = start_offset;
    }
    return ecache_save(c);
}

int ecache_clear(struct ecache *c)
{
    if (c->n == 0 && !c->unsaved)
        return 0;
    c->n = 0;
    return ecache_save(c);
}
