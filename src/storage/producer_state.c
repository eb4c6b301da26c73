/* producer_state.c: see producer_state.h. */
#include "storage/producer_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/file.h"
#include "common/obuf.h"

#define PSTATE_MAGIC 0x50535431u

void pstate_init(struct pstate *ps)
{
    memset(ps, 0, sizeof *ps);
}

void pstate_free(struct pstate *ps)
{
    xfree(ps->entries);
    memset(ps, 0, sizeof *ps);
}

static uint64_t hash_id(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* The slot of id, or of the empty slot where it would go (-1 if no table). */
static int find_slot(const struct pstate *ps, int64_t id)
{
    if (!ps->cap)
        return -1;
    int i = (int)(hash_id(id) & (uint64_t)(ps->cap - 1));
    while (ps->entries[i].producer_id != -1 && ps->entries[i].producer_id != id)
        i = (i + 1) & (ps->cap - 1);
    return i;
}

static const struct pstate_entry *lookup(const struct pstate *ps, int64_t id)
{
    int i = find_slot(ps, id);
    return i >= 0 && ps->entries[i].producer_id == id ? &ps->entries[i] : NULL;
}

static int grow(struct pstate *ps)
{
    int cap = ps->cap ? ps->cap * 2 : 16;
    struct pstate_entry *n = xmalloc((size_t)cap * sizeof *n);
    if (!n)
        return -1;
    for (int i = 0; i < cap; i++)
        n[i].producer_id = -1;
    struct pstate old = *ps;
    ps->entries = n;
    ps->cap = cap;
    ps->count = 0;
    for (int i = 0; i < old.cap; i++)
        if (old.entries[i].producer_id != -1) {
            int j = find_slot(ps, old.entries[i].producer_id);
            ps->entries[j] = old.entries[i];
            ps->count++;
        }
    xfree(old.entries);
    return 0;
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    int64_t s = (int64_t)seq + n;
    return (int32_t)(s > INT32_MAX ? s - INT32_MAX - 1 : s);
}

int pstate_check(const struct pstate *ps, int64_t producer_id, int16_t epoch, int32_t base_seq,
                 int32_t last_offset_delta, int64_t *dup_base_offset, int32_t *dup_last_offset_delta)
{
    const struct pstate_entry *e = lookup(ps, producer_id);
    if (!e)
        return base_seq == 0 ? PSTATE_APPEND : -45;
    if (epoch < e->epoch)
        return -47;
    if (epoch > e->epoch)
        return base_seq == 0 ? PSTATE_APPEND : -45;
    int32_t last_seq = seq_add(base_seq, last_offset_delta);
    for (int i = 0; i < e->nbatches; i++)
        if (e->batches[i].first_seq == base_seq && e->batches[i].last_seq == last_seq) {
            *dup_base_offset = e->batches[i].base_offset;
            *dup_last_offset_delta = e->batches[i].last_offset_delta;
            return PSTATE_DUPLICATE;
        }
    if (e->nbatches == 0)
        return base_seq == 0 ? PSTATE_APPEND : -45;
    int32_t expected = seq_add(e->batches[e->nbatches - 1].last_seq, 1);
    return base_seq == expected ? PSTATE_APPEND : -45;
}

int pstate_update(struct pstate *ps, int64_t producer_id, int16_t epoch, int32_t base_seq,
                  int32_t last_offset_delta, int64_t base_offset, int64_t now_ms)
{
    /* a known producer needs no room; a new one may need a bigger table */
    if (!lookup(ps, producer_id) && (ps->count + 1) * 4 > ps->cap * 3 && grow(ps) < 0)
        return -1;
    int i = find_slot(ps, producer_id);
    struct pstate_entry *e = &ps->entries[i];
    if (e->producer_id != producer_id) {
        memset(e, 0, sizeof *e);
        e->producer_id = producer_id;
        e->epoch = epoch;
        ps->count++;
    }
    if (epoch != e->epoch) {
        /* a new epoch starts its sequences afresh */
        e->epoch = epoch;
        e->nbatches = 0;
    }
    if (e->nbatches == PSTATE_BATCHES) {
        memmove(e->batches, e->batches + 1, (PSTATE_BATCHES - 1) * sizeof e->batches[0]);
        e->nbatches--;
    }
    e->batches[e->nbatches++] =
        (struct pstate_batch){base_seq, seq_add(base_seq, last_offset_delta), base_offset, last_offset_delta};
    e->last_ms = now_ms;
    return 0;
}

void pstate_expire(struct pstate *ps, int64_t now_ms, int64_t max_idle_ms)
{
    int keep = 0, drop = 0;
    for (int i = 0; i < ps->cap; i++) {
        if (ps->entries[i].producer_id < 0)
            continue;
        if (now_ms - ps->entries[i].last_ms > max_idle_ms)
            drop++;
        else
            keep++;
    }
    if (!drop)
        return;
    /* a new table first: if it cannot be had, nobody is forgotten */
    int cap = 16;
    while (keep * 4 > cap * 3)
        cap *= 2;
    struct pstate_entry *n = xmalloc((size_t)cap * sizeof *n);
    if (!n)
        return;
    for (int i = 0; i < cap; i++)
        n[i].producer_id = -1;
    struct pstate old = *ps;
    ps->entries = n;
    ps->cap = cap;
    ps->count = 0;
    for (int i = 0; i < old.cap; i++) {
        const struct pstate_entry *e = &old.entries[i];
        if (e->producer_id < 0 || now_ms - e->last_ms > max_idle_ms)
            continue;
        int j = find_slot(ps, e->producer_id);
        ps->entries[j] = *e;
        ps->count++;
    }
    xfree(old.entries);
}

int pstate_save(const struct pstate *ps, const char *path, int64_t offset)
{
    struct obuf b;
    obuf_init(&b);
    obuf_put_be32(&b, PSTATE_MAGIC);
    obuf_put_be64(&b, (uint64_t)offset);
    obuf_put_be32(&b, (uint32_t)ps->count);
    for (int i = 0; i < ps->cap; i++) {
        const struct pstate_entry *e = &ps->entries[i];
        if (e->producer_id < 0)
            continue;
        obuf_put_be64(&b, (uint64_t)e->producer_id);
        obuf_put_be16(&b, (uint16_t)e->epoch);
        obuf_put_be64(&b, (uint64_t)e->last_ms);
        obuf_put_u8(&b, (uint8_t)e->nbatches);
        for (int k = 0; k < e->nbatches; k++) {
            obuf_put_be32(&b, (uint32_t)e->batches[k].first_seq);
            obuf_put_be32(&b, (uint32_t)e->batches[k].last_seq);
            obuf_put_be64(&b, (uint64_t)e->batches[k].base_offset);
            obuf_put_be32(&b, (uint32_t)e->batches[k].last_offset_delta);
        }
    }
    obuf_put_be32(&b, crc32c(0, b.data, b.len));
    int rc = b.oom ? -1 : file_replace(path, b.data, b.len);
    obuf_free(&b);
    return rc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int64_t pstate_load(struct pstate *ps, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 20 || size > (64 << 20)) {
        close(fd);
        return -1;
    }
    uint8_t *buf = xmalloc((size_t)size);
    if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
        xfree(buf);
        close(fd);
        return -1;
    }
    close(fd);
    const uint8_t *p = buf, *end = buf + size - 4;
    int64_t offset = -1;
    if (be32(end) != crc32c(0, buf, (size_t)(size - 4)) || be32(p) != PSTATE_MAGIC)
        goto out;
    int64_t covered = (int64_t)be64(p + 4);
    uint32_t count = be32(p + 12);
    p += 16;
    for (uint32_t i = 0; i < count; i++) {
        if (end - p < 19)
            goto bad;
        int64_t id = (int64_t)be64(p);
        int16_t epoch = (int16_t)(p[8] << 8 | p[9]);
        int64_t last_ms = (int64_t)be64(p + 10);
        int n = p[18];
        p += 19;
        if (n > PSTATE_BATCHES || end - p < n * 20 || id < 0)
            goto bad;
        for (int k = 0; k < n; k++, p += 20) {
            int32_t first = (int32_t)be32(p);
            int32_t delta = (int32_t)be32(p + 16);
            if (pstate_update(ps, id, epoch, first, delta, (int64_t)be64(p + 8), last_ms) < 0)
                goto bad;
        }
    }
    if (p != end)
        goto bad;
    offset = covered;
    goto out;
bad:
    pstate_free(ps);
    pstate_init(ps);
out:
    xfree(buf);
    return offset;
}
