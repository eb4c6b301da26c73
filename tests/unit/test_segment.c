/* test_segment.c: one log segment (storage/segment.c): appends and the
 * in-memory indexes, seg_find / seg_find_time, the index files written by
 * seg_seal (format in segment.h), reopening from them, the batch-by-
 * batch scan that cuts a torn or corrupt tail, and seg_locate/seg_truncate
 * (a follower's cut) before every batch.  Batches are built with
 * records_build_v2. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/segment.h"
#include "test.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A batch of n records with timestamps ts, ts+1, ..., at base offset base,
 * each value `vlen` bytes.  Returns its size; the bytes are in out. */
static size_t make_batch(struct obuf *out, int n, int64_t ts, int64_t base, int vlen)
{
    struct records_rec recs[64];
    static uint8_t val[4096];
    CHECK(n <= 64 && vlen <= (int)sizeof val);
    memset(val, 'v', sizeof val);
    for (int i = 0; i < n; i++)
        recs[i] = (struct records_rec){(const uint8_t *)"key", 3, val, vlen, ts + i, NULL, 0};
    obuf_reset(out);
    CHECK_EQ(records_build_v2(out, COMPRESS_NONE, ts, recs, n, -1, -1, -1), 0);
    records_set_base_offset(out->data, base);
    return out->len;
}

static const char *dir(void)
{
    return test_tmpdir();
}

static int64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    return st.st_size;
}

static char *path_of(int64_t base, const char *ext)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%020lld%s", dir(), (long long)base, ext);
    return p[k];
}

/* Appends `count` batches of `per` records starting at offset first;
 * positions and sizes of the batches go to pos[]/size[]. */
static void fill(struct segment *s, int count, int per, int64_t first, int64_t ts0, int32_t interval,
                 int64_t *pos, int32_t *size)
{
    struct obuf b;
    obuf_init(&b);
    int64_t off = first;
    for (int i = 0; i < count; i++) {
        size_t n = make_batch(&b, per, ts0 + i * 10, off, 20 + i % 7);
        if (pos)
            pos[i] = s->size;
        if (size)
            size[i] = (int32_t)n;
        CHECK_EQ(seg_append(s, b.data, n, off + per - 1, ts0 + i * 10 + per - 1, interval), 0);
        off += per;
    }
    obuf_free(&b);
}

TEST(segment_create_names_and_append)
{
    struct segment *s = seg_create(dir(), 1234);
    CHECK(s);
    CHECK_EQ(s->base_offset, 1234);
    CHECK_EQ(s->next_offset, 1234);
    CHECK_EQ(s->size, 0);
    CHECK_EQ(s->max_timestamp, -1);
    CHECK(!s->sealed);
    CHECK_EQ(file_size(path_of(1234, ".log")), 0);
    CHECK(strcmp(s->path + strlen(s->path) - 20, "00000000000000001234") == 0);
    int64_t pos[5];
    int32_t size[5];
    fill(s, 5, 3, 1234, 1000, 4096, pos, size);
    CHECK_EQ(s->next_offset, 1234 + 15);
    int64_t total = 0;
    for (int i = 0; i < 5; i++)
        total += size[i];
    CHECK_EQ(s->size, total);
    CHECK_EQ(file_size(path_of(1234, ".log")), total);
    CHECK_EQ(s->max_timestamp, 1000 + 40 + 2);
    /* interval 4096: only the first batch is indexed */
    CHECK_EQ(s->nidx, 1);
    CHECK_EQ(s->idx[0].rel_offset, 0);
    CHECK_EQ(s->idx[0].pos, 0);
    seg_close(s);
}

TEST(segment_find_every_offset)
{
    static const int32_t intervals[] = {0, 700, 3000};
    for (int ii = 0; ii < 3; ii++) {
        int32_t interval = intervals[ii];
        struct segment *s = seg_create(dir(), 500);
        CHECK(s);
        int64_t pos[40];
        int32_t size[40];
        fill(s, 40, 5, 500, 1000, interval, pos, size);
        if (interval == 0)
            CHECK_EQ(s->nidx, 40); /* every batch */
        else
            CHECK(s->nidx > 1 && s->nidx < 40);
        for (int64_t off = 500; off < 700; off++) {
            int64_t p = -1;
            int32_t sz = -1;
            CHECK_EQ(seg_find(s, off, &p, &sz), 0);
            int b = (int)((off - 500) / 5);
            CHECK_EQ(p, pos[b]);
            CHECK_EQ(sz, size[b]);
        }
        int64_t p;
        int32_t sz;
        CHECK_EQ(seg_find(s, 700, &p, &sz), -1);
        CHECK_EQ(seg_find(s, 100000, &p, &sz), -1);
        /* an offset below the base finds the first batch */
        CHECK_EQ(seg_find(s, 3, &p, &sz), 0);
        CHECK_EQ(p, 0);
        seg_close(s);
    }
}

TEST(segment_find_time)
{
    struct segment *s = seg_create(dir(), 0);
    CHECK(s);
    int64_t pos[20];
    fill(s, 20, 2, 0, 10000, 100, pos, NULL); /* batch i: ts 10000+10i .. +1 */
    int64_t p, base;
    CHECK_EQ(seg_find_time(s, 0, &p, &base), 0);
    CHECK_EQ(base, 0);
    CHECK_EQ(p, 0);
    CHECK_EQ(seg_find_time(s, 10001, &p, &base), 0);
    CHECK_EQ(base, 0);
    CHECK_EQ(seg_find_time(s, 10002, &p, &base), 0);
    CHECK_EQ(base, 2);
    CHECK_EQ(p, pos[1]);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(seg_find_time(s, 10000 + 10 * i, &p, &base), 0);
        CHECK_EQ(base, 2 * i);
        CHECK_EQ(p, pos[i]);
    }
    CHECK_EQ(seg_find_time(s, 10000 + 10 * 19 + 1, &p, &base), 0);
    CHECK_EQ(base, 38);
    CHECK_EQ(seg_find_time(s, 10000 + 10 * 19 + 2, &p, &base), -1);
    seg_close(s);
}

TEST(segment_seal_writes_index_files)
{
    struct segment *s = seg_create(dir(), 7);
    int64_t pos[6];
    fill(s, 6, 1, 7, 5000, 0, pos, NULL);
    CHECK_EQ(seg_seal(s), 0);
    CHECK(s->sealed);
    CHECK_EQ(file_size(path_of(7, ".index")), 6 * 8);
    CHECK_EQ(file_size(path_of(7, ".timeindex")), (int64_t)s->ntidx * 12);
    CHECK(s->ntidx >= 1);
    FILE *f = fopen(path_of(7, ".index"), "rb");
    uint8_t buf[48];
    CHECK_EQ(fread(buf, 1, 48, f), 48);
    fclose(f);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(be32(buf + 8 * i), i); /* offset minus base */
        CHECK_EQ(be32(buf + 8 * i + 4), pos[i]);
    }
    f = fopen(path_of(7, ".timeindex"), "rb");
    uint8_t tb[12];
    CHECK_EQ(fread(tb, 1, 12, f), 12);
    fclose(f);
    CHECK_EQ(((int64_t)be32(tb) << 32) | be32(tb + 4), 5000);
    CHECK_EQ(be32(tb + 8), 0);
    seg_close(s);
}

TEST(segment_reopen_from_index_files)
{
    struct segment *s = seg_create(dir(), 100);
    int64_t pos[30];
    int32_t size[30];
    fill(s, 30, 4, 100, 1000, 200, pos, size);
    int nidx = s->nidx;
    int64_t sz = s->size;
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    int64_t cut = -1;
    s = seg_open(dir(), 100, false, &cut);
    CHECK(s);
    CHECK_EQ(cut, 0);
    CHECK(s->sealed);
    CHECK_EQ(s->nidx, nidx);
    CHECK_EQ(s->size, sz);
    for (int64_t off = 100; off < 220; off += 3) {
        int64_t p;
        int32_t bs;
        CHECK_EQ(seg_find(s, off, &p, &bs), 0);
        CHECK_EQ(p, pos[(off - 100) / 4]);
        CHECK_EQ(bs, size[(off - 100) / 4]);
    }
    seg_close(s);
    /* scanning instead gives the same answers and the end offset */
    s = seg_open(dir(), 100, true, &cut);
    CHECK(s);
    CHECK_EQ(cut, 0);
    CHECK_EQ(s->next_offset, 220);
    CHECK_EQ(s->size, sz);
    int64_t p;
    int32_t bs;
    CHECK_EQ(seg_find(s, 219, &p, &bs), 0);
    CHECK_EQ(p, pos[29]);
    seg_close(s);
}

/* The sealed segment keeps its largest timestamp across a reopen, so that
 * a lookup by time still finds batches after the last index entry. */
TEST(segment_reopen_keeps_max_timestamp)
{
    struct segment *s = seg_create(dir(), 0);
    fill(s, 10, 1, 0, 1000, 4096, NULL, NULL); /* one index entry only */
    CHECK_EQ(s->max_timestamp, 1090);
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    int64_t cut;
    s = seg_open(dir(), 0, false, &cut);
    CHECK(s);
    CHECK_EQ(s->max_timestamp, 1090);
    int64_t p, base;
    CHECK_EQ(seg_find_time(s, 1050, &p, &base), 0);
    CHECK_EQ(base, 5);
    seg_close(s);
}

static void truncate_to(const char *path, int64_t n)
{
    CHECK_EQ(truncate(path, n), 0);
}

static void flip_byte(const char *path, int64_t at)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t c;
    CHECK_EQ(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    CHECK_EQ(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* Writes 8 batches of 2 records at base 0; returns their positions. */
static struct segment *eight_batches(int64_t *pos, int32_t *size)
{
    struct segment *s = seg_create(dir(), 0);
    CHECK(s);
    fill(s, 8, 2, 0, 1000, 0, pos, size);
    return s;
}

TEST(segment_scan_cuts_torn_tail)
{
    int64_t pos[8];
    int32_t size[8];
    struct segment *s = eight_batches(pos, size);
    int64_t full = s->size;
    seg_close(s);
    /* cut inside the last batch's records */
    truncate_to(path_of(0, ".log"), full - 5);
    int64_t cut = -1;
    s = seg_open(dir(), 0, true, &cut);
    CHECK(s);
    CHECK_EQ(cut, size[7] - 5);
    CHECK_EQ(s->size, pos[7]);
    CHECK_EQ(s->next_offset, 14);
    CHECK_EQ(file_size(path_of(0, ".log")), pos[7]);
    int64_t p;
    int32_t bs;
    CHECK_EQ(seg_find(s, 13, &p, &bs), 0);
    CHECK_EQ(p, pos[6]);
    CHECK_EQ(seg_find(s, 14, &p, &bs), -1);
    seg_close(s);
    /* cut inside a header */
    truncate_to(path_of(0, ".log"), pos[6] + 30);
    s = seg_open(dir(), 0, true, &cut);
    CHECK(s);
    CHECK_EQ(cut, 30);
    CHECK_EQ(s->size, pos[6]);
    CHECK_EQ(s->next_offset, 12);
    seg_close(s);
}

TEST(segment_scan_cuts_corrupt_batch)
{
    int64_t pos[8];
    int32_t size[8];
    struct segment *s = eight_batches(pos, size);
    int64_t full = s->size;
    seg_close(s);
    /* a flipped byte inside the last batch's records: CRC mismatch */
    flip_byte(path_of(0, ".log"), pos[7] + size[7] - 3);
    int64_t cut;
    s = seg_open(dir(), 0, true, &cut);
    CHECK(s);
    CHECK_EQ(cut, full - pos[7]);
    CHECK_EQ(s->size, pos[7]);
    CHECK_EQ(s->next_offset, 14);
    seg_close(s);
    /* a flipped byte in the middle cuts everything from that batch on */
    flip_byte(path_of(0, ".log"), pos[3] + 40); /* maxTimestamp: under the CRC */
    s = seg_open(dir(), 0, true, &cut);
    CHECK(s);
    CHECK_EQ(s->size, pos[3]);
    CHECK_EQ(s->next_offset, 6);
    CHECK_EQ(file_size(path_of(0, ".log")), pos[3]);
    seg_close(s);
}

TEST(segment_scan_cuts_garbage_and_bad_headers)
{
    int64_t pos[8];
    int32_t size[8];
    struct segment *s = eight_batches(pos, size);
    int64_t full = s->size;
    seg_close(s);
    int64_t cut;
    /* zeros, as a crash can leave after the last write */
    static uint8_t zeros[4096];
    append_bytes(path_of(0, ".log"), zeros, sizeof zeros);
    s = seg_open(dir(), 0, true, &cut);
    CHECK(s);
    CHECK_EQ(cut, 4096);
    CHECK_EQ(s->size, full);
    CHECK_EQ(s->next_offset, 16);
    seg_close(s);
    /* random-looking garbage */
    uint8_t g[200];
    for (int i = 0; i < 200; i++)
        g[i] = (uint8_t)(i * 37 + 11);
    append_bytes(path_of(0, ".log"), g, sizeof g);
    s = seg_open(dir(), 0, true, &cut);
    CHECK_EQ(cut, 200);
    CHECK_EQ(s->size, full);
    seg_close(s);
    /* a copy of a valid batch whose offsets go backwards */
    uint8_t *copy = malloc((size_t)size[0]);
    int fd = open(path_of(0, ".log"), O_RDONLY);
    CHECK_EQ(pread(fd, copy, (size_t)size[0], 0), size[0]);
    close(fd);
    append_bytes(path_of(0, ".log"), copy, (size_t)size[0]);
    s = seg_open(dir(), 0, true, &cut);
    CHECK_EQ(cut, size[0]);
    CHECK_EQ(s->next_offset, 16);
    seg_close(s);
    /* the same batch with the right next offset is kept */
    records_set_base_offset(copy, 16);
    append_bytes(path_of(0, ".log"), copy, (size_t)size[0]);
    s = seg_open(dir(), 0, true, &cut);
    CHECK_EQ(cut, 0);
    CHECK_EQ(s->next_offset, 18);
    seg_close(s);
    free(copy);
    /* a batch with magic 1 ends the log */
    flip_byte(path_of(0, ".log"), full + 16); /* magic 2 -> 0x42 */
    s = seg_open(dir(), 0, true, &cut);
    CHECK_EQ(cut, size[0]);
    CHECK_EQ(s->size, full);
    seg_close(s);
}

TEST(segment_missing_or_corrupt_index_is_rebuilt)
{
    int64_t pos[8];
    int32_t size[8];
    struct segment *s = eight_batches(pos, size);
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    int64_t cut;
    /* missing .index */
    CHECK_EQ(unlink(path_of(0, ".index")), 0);
    s = seg_open(dir(), 0, false, &cut);
    CHECK(s);
    CHECK_EQ(s->next_offset, 16); /* it was scanned */
    CHECK(s->nidx >= 1);
    int64_t p;
    int32_t bs;
    CHECK_EQ(seg_find(s, 9, &p, &bs), 0);
    CHECK_EQ(p, pos[4]);
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    /* an .index of a size that is not a whole number of entries */
    truncate_to(path_of(0, ".index"), 13);
    s = seg_open(dir(), 0, false, &cut);
    CHECK(s);
    CHECK_EQ(s->next_offset, 16);
    CHECK_EQ(seg_find(s, 15, &p, &bs), 0);
    CHECK_EQ(p, pos[7]);
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    /* an entry that points past the end of the log */
    int fd = open(path_of(0, ".index"), O_WRONLY);
    uint8_t bad[4] = {0x7f, 0, 0, 0};
    CHECK_EQ(pwrite(fd, bad, 4, 8 * 3 + 4), 4);
    close(fd);
    s = seg_open(dir(), 0, false, &cut);
    CHECK(s);
    CHECK_EQ(s->next_offset, 16);
    CHECK_EQ(seg_find(s, 7, &p, &bs), 0);
    CHECK_EQ(p, pos[3]);
    CHECK_EQ(seg_seal(s), 0);
    seg_close(s);
    /* missing .timeindex */
    CHECK_EQ(unlink(path_of(0, ".timeindex")), 0);
    s = seg_open(dir(), 0, false, &cut);
    CHECK(s);
    CHECK_EQ(s->next_offset, 16);
    int64_t base;
    CHECK_EQ(seg_find_time(s, 1031, &p, &base), 0);
    CHECK_EQ(base, 6);
    CHECK_EQ(p, pos[3]);
    seg_close(s);
}

TEST(segment_delete_removes_files)
{
    struct segment *s = seg_create(dir(), 42);
    fill(s, 2, 1, 42, 0, 0, NULL, NULL);
    CHECK_EQ(seg_seal(s), 0);
    CHECK(file_size(path_of(42, ".index")) >= 0);
    seg_delete(s);
    CHECK_EQ(file_size(path_of(42, ".log")), -1);
    CHECK_EQ(file_size(path_of(42, ".index")), -1);
    CHECK_EQ(file_size(path_of(42, ".timeindex")), -1);
    int64_t cut;
    CHECK(seg_open(dir(), 42, true, &cut) == NULL);
}

TEST(segment_fsync_and_bad_fd)
{
    struct segment *s = seg_create(dir(), 0);
    fill(s, 1, 1, 0, 0, 0, NULL, NULL);
    CHECK_EQ(seg_fsync(s->fd), 0);
    CHECK_EQ(seg_fsync(-1), -1);
    seg_close(s);
}

static void put_be32_at(const char *path, int64_t at, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, b, 4, at), 4);
    close(fd);
}

/* A sealed segment is opened from its index files without a scan, so a
 * batchLength damaged on disk is met by the lookups.  They must fail, not
 * loop: a batchLength of -12 makes the walk's step 0, and other negative
 * values step backwards. */
TEST(segment_find_survives_corrupt_batch_length)
{
    static const uint32_t bad[] = {0xfffffff4u /* -12: step 0 */, 0xffffff00u /* steps back */, 0u};
    for (int k = 0; k < 3; k++) {
        int64_t pos[8];
        int32_t size[8];
        struct segment *s = seg_create(dir(), 0);
        fill(s, 8, 2, 0, 1000, 1 << 20, pos, size); /* one index entry, at 0 */
        CHECK_EQ(seg_seal(s), 0);
        seg_close(s);
        put_be32_at(path_of(0, ".log"), pos[2] + RECORDS_OFF_BATCH_LENGTH, bad[k]);
        int64_t cut;
        s = seg_open(dir(), 0, false, &cut);
        CHECK(s);
        alarm(5); /* a hang fails here */
        int64_t p = -1;
        int32_t bs = -1;
        /* before the damage: found as usual */
        CHECK_EQ(seg_find(s, 3, &p, &bs), 0);
        CHECK_EQ(p, pos[1]);
        /* at or after it: either not found, or a position inside the file */
        int rc = seg_find(s, 9, &p, &bs);
        CHECK(rc == -1 || (p >= 0 && p < s->size && bs > 0));
        int64_t base;
        rc = seg_find_time(s, 1060, &p, &base);
        CHECK(rc == -1 || (p >= 0 && p < s->size));
        alarm(0);
        seg_close(s);
    }
}

/* ---- seg_locate / seg_truncate ---------------------------------------------- */

struct trunc_fixture {
    int64_t pos[16], base[16], max_ts[16];
    int32_t size[16], per[16];
    int n;
};

/* n batches at base 1000; batch i holds 1 + i % 3 records, and its
 * timestamps go down every fourth batch, so that the largest timestamp of
 * a prefix is not the one of its last batch. */
static struct segment *trunc_build(struct trunc_fixture *f, int n, int32_t interval)
{
    struct segment *s = seg_create(dir(), 1000);
    CHECK(s);
    struct obuf b;
    obuf_init(&b);
    int64_t off = 1000;
    f->n = n;
    for (int i = 0; i < n; i++) {
        int per = 1 + i % 3;
        int64_t ts = i % 4 == 3 ? 500 + i : 2000 + 10 * i;
        size_t sz = make_batch(&b, per, ts, off, 30);
        f->pos[i] = s->size;
        f->base[i] = off;
        f->size[i] = (int32_t)sz;
        f->per[i] = per;
        f->max_ts[i] = ts + per - 1;
        CHECK_EQ(seg_append(s, b.data, sz, off + per - 1, ts + per - 1, interval), 0);
        off += per;
    }
    obuf_free(&b);
    return s;
}

/* Cuts before every batch (and at the end) of segments indexed densely,
 * sparsely and once, freshly written or reopened from index files: the
 * size, end offset, largest timestamp and lookups must describe exactly
 * the batches kept, and the segment must take appends again. */
TEST(segment_truncate_at_every_batch)
{
    static const int32_t intervals[] = {0, 250, 1 << 20};
    enum { N = 12 };
    for (int ii = 0; ii < 3; ii++)
        for (int reopened = 0; reopened < 2; reopened++)
            for (int c = 0; c <= N; c++) {
                struct trunc_fixture f;
                struct segment *s = trunc_build(&f, N, intervals[ii]);
                int64_t end = s->next_offset, total = s->size;
                if (reopened) {
                    CHECK_EQ(seg_seal(s), 0);
                    seg_close(s);
                    int64_t cut;
                    s = seg_open(dir(), 1000, false, &cut);
                    CHECK(s && s->sealed);
                    s->next_offset = end;
                }
                uint64_t id = s->id;
                int64_t pos = -1, base = -1;
                if (c < N) {
                    /* any offset of batch c locates batch c */
                    CHECK_EQ(seg_locate(s, f.base[c] + f.per[c] - 1, &pos, &base), 0);
                    CHECK_EQ(pos, f.pos[c]);
                    CHECK_EQ(base, f.base[c]);
                    CHECK_EQ(seg_locate(s, f.base[c], &pos, &base), 0);
                    CHECK_EQ(pos, f.pos[c]);
                } else {
                    CHECK_EQ(seg_locate(s, end, &pos, &base), 1);
                    CHECK_EQ(pos, total);
                    CHECK_EQ(base, -1);
                }
                CHECK_EQ(seg_truncate(s, pos), 0);
                int64_t want_end = c < N ? f.base[c] : end, want_max = -1;
                for (int i = 0; i < c; i++)
                    if (f.max_ts[i] > want_max)
                        want_max = f.max_ts[i];
                CHECK_EQ(s->size, pos);
                CHECK_EQ(file_size(path_of(1000, ".log")), pos);
                CHECK_EQ(s->next_offset, want_end);
                CHECK_EQ(s->max_timestamp, want_max);
                CHECK_EQ(s->last_batch_base, c > 0 ? f.base[c - 1] : -1);
                CHECK(!s->sealed);
                CHECK(c < N ? s->id != id : s->id == id);
                if (reopened && c < N)
                    CHECK_EQ(file_size(path_of(1000, ".index")), -1); /* stale: removed */
                if (reopened && c == N)
                    CHECK(file_size(path_of(1000, ".index")) >= 0); /* nothing cut: still right */
                for (int i = 0; i < c; i++)
                    for (int k = 0; k < f.per[i]; k++) {
                        int64_t p;
                        int32_t sz;
                        CHECK_EQ(seg_find(s, f.base[i] + k, &p, &sz), 0);
                        CHECK_EQ(p, f.pos[i]);
                        CHECK_EQ(sz, f.size[i]);
                    }
                int64_t p, b2;
                int32_t sz;
                CHECK_EQ(seg_find(s, want_end, &p, &sz), -1);
                CHECK_EQ(seg_find_time(s, want_max + 1, &p, &b2), -1);
                if (c > 0) {
                    CHECK_EQ(seg_find_time(s, want_max, &p, &b2), 0);
                    CHECK(b2 < want_end);
                }
                /* appends continue at the cut */
                struct obuf b;
                obuf_init(&b);
                size_t n = make_batch(&b, 2, 7000, want_end, 10);
                CHECK_EQ(seg_append(s, b.data, n, want_end + 1, 7001, intervals[ii]), 0);
                obuf_free(&b);
                CHECK_EQ(seg_find(s, want_end + 1, &p, &sz), 0);
                CHECK_EQ(p, pos);
                CHECK_EQ(s->max_timestamp, 7001);
                /* and a scan of the file agrees */
                int64_t size_after = s->size;
                seg_close(s);
                int64_t cut = -1;
                s = seg_open(dir(), 1000, true, &cut);
                CHECK(s);
                CHECK_EQ(cut, 0);
                CHECK_EQ(s->size, size_after);
                CHECK_EQ(s->next_offset, want_end + 2);
                seg_delete(s);
            }
}

TEST(segment_truncate_refuses_a_position_inside_a_batch)
{
    struct trunc_fixture f;
    struct segment *s = trunc_build(&f, 6, 0);
    int64_t size = s->size, end = s->next_offset;
    errno = 0;
    CHECK_EQ(seg_truncate(s, f.pos[3] + 5), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(seg_truncate(s, size + 1), -1);
    CHECK_EQ(seg_truncate(s, -1), -1);
    CHECK_EQ(s->size, size);
    CHECK_EQ(s->next_offset, end);
    CHECK_EQ(file_size(path_of(1000, ".log")), size);
    /* a damaged header on the way is an error, not a silent cut */
    int fd = open(path_of(1000, ".log"), O_RDWR);
    uint8_t m[4] = {0xff, 0xff, 0xff, 0xf0};
    CHECK_EQ(pwrite(fd, m, 4, f.pos[0] + RECORDS_OFF_BATCH_LENGTH), 4);
    close(fd);
    int64_t pos, base;
    s->nidx = 0; /* walk from the first batch */
    errno = 0;
    CHECK_EQ(seg_locate(s, f.base[4], &pos, &base), -1);
    CHECK_EQ(errno, EIO);
    seg_close(s);
}
