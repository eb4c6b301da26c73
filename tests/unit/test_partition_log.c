/* test_partition_log.c: a partition's log (storage/partition_log.c):
 * offset assignment, reads as file ranges of whole batches, rolls by size
 * and age, lookups by time, reopen after a clean close, recovery after
 * an unclean stop with a torn, corrupt or garbage-extended active segment,
 * a follower's tail truncation (in the active segment, across segments, a
 * straddling batch, full; reopened cleanly or after a crash; producer
 * state), the leader epoch cache built from stamped batches and cut with
 * the log, and replica appends.  Every test works in its own test_tmpdir(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"
#include "protocol/records.h"
#include "storage/partition_log.h"
#include "test.h"

static struct topic_settings settings(int64_t segment_bytes, int32_t index_interval)
{
    struct topic_settings s;
    topic_settings_resolve(&s, NULL, NULL);
    s.segment_bytes = segment_bytes;
    s.index_interval_bytes = index_interval;
    return s;
}

static const char *logdir(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/orders-0", test_tmpdir());
    return p;
}

static char *seg_file(int64_t base, const char *ext)
{
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%020lld%s", logdir(), (long long)base, ext);
    return p[k];
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 ? -1 : st.st_size;
}

/* Appends a batch of n records (timestamps ts..ts+n-1, values vlen bytes);
 * returns the base offset the log gave it.  *size gets the batch size. */
static int64_t append(struct plog *l, int n, int64_t ts, int vlen, int64_t now, size_t *size)
{
    static uint8_t val[8192];
    memset(val, 'x', sizeof val);
    struct records_rec recs[64];
    CHECK(n <= 64 && vlen <= (int)sizeof val);
    for (int i = 0; i < n; i++)
        recs[i] = (struct records_rec){(const uint8_t *)"k", 1, val, vlen, ts + i, NULL, 0};
    struct obuf b;
    obuf_init(&b);
    CHECK_EQ(records_build_v2(&b, COMPRESS_NONE, ts, recs, n, -1, -1, -1), 0);
    int64_t base = -1;
    CHECK_EQ(plog_append(l, b.data, b.len, now, &base), 0);
    if (size)
        *size = b.len;
    obuf_free(&b);
    return base;
}

/* Reads a slice and walks its batches: each must be whole (a cut last one
 * only when allow_partial), offsets increasing.  Returns the number of
 * whole batches; *first and *last get the first base and last offset. */
static int walk_slice(const struct plog_slice *s, bool allow_partial, int64_t *first, int64_t *last)
{
    CHECK(s->fd >= 0);
    CHECK(s->len > 0);
    uint8_t *buf = malloc((size_t)s->len);
    CHECK_EQ(pread(s->fd, buf, (size_t)s->len, s->pos), s->len);
    struct records_iter it;
    records_iter_init(&it, buf, (size_t)s->len, true);
    struct records_batch_info bi;
    const uint8_t *batch;
    size_t size;
    int n = 0, r;
    int64_t prev_end = -1;
    while ((r = records_iter_next(&it, &bi, &batch, &size)) == RECORDS_ITER_BATCH) {
        if (n == 0)
            *first = bi.base_offset;
        if (prev_end >= 0)
            CHECK_EQ(bi.base_offset, prev_end);
        prev_end = bi.base_offset + bi.last_offset_delta + 1;
        *last = prev_end - 1;
        n++;
    }
    if (!allow_partial)
        CHECK_EQ(r, RECORDS_ITER_END);
    else
        CHECK(r == RECORDS_ITER_END || r == RECORDS_ITER_TRUNCATED);
    free(buf);
    return n;
}

static int count_files(const char *ext)
{
    DIR *d = opendir(logdir());
    CHECK(d);
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (k > el && strcmp(e->d_name + k - el, ext) == 0)
            n++;
    }
    closedir(d);
    return n;
}

TEST(plog_open_empty_creates_segment)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK_EQ(l->nsegs, 1);
    CHECK_EQ(l->log_start_offset, 0);
    CHECK_EQ(l->next_offset, 0);
    CHECK_EQ(plog_size(l), 0);
    CHECK_EQ(file_size(seg_file(0, ".log")), 0);
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 0, 1000, true, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, 1, 1000, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    int64_t fts = 0;
    CHECK_EQ(plog_offset_for_time(l, 0, &fts), -1);
    plog_close(l);
}

TEST(plog_append_assigns_offsets_and_reads_whole_batches)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t pos[5];
    size_t sz[5];
    int64_t total = 0;
    for (int i = 0; i < 5; i++) {
        pos[i] = total;
        CHECK_EQ(append(l, 3, 1000 + i, 50, clock_wall_ms(), &sz[i]), 3 * i);
        total += (int64_t)sz[i];
    }
    CHECK_EQ(l->next_offset, 15);
    CHECK_EQ(l->unflushed, 15);
    CHECK_EQ(plog_size(l), total);
    /* the base offsets were written into the file */
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 0, 1 << 20, false, &s), 0);
    CHECK_EQ(s.pos, 0);
    CHECK_EQ(s.len, total);
    int64_t first, last;
    CHECK_EQ(walk_slice(&s, false, &first, &last), 5);
    CHECK_EQ(first, 0);
    CHECK_EQ(last, 14);
    /* an offset inside a batch starts at that batch */
    for (int64_t off = 0; off < 15; off++) {
        CHECK_EQ(plog_read(l, off, 1 << 20, false, &s), 0);
        int b = (int)(off / 3);
        CHECK_EQ(s.pos, pos[b]);
        CHECK_EQ(s.len, total - pos[b]);
        CHECK_EQ(walk_slice(&s, false, &first, &last), 5 - b);
        CHECK_EQ(first, 3 * b);
        CHECK_EQ(last, 14);
    }
    /* the log end: nothing; past it or before the start: out of range */
    CHECK_EQ(plog_read(l, 15, 1 << 20, true, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, 16, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ(plog_read(l, -1, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ(plog_read(l, INT64_MAX, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    plog_close(l);
}

TEST(plog_read_max_bytes_and_min_one)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    size_t sz[4];
    for (int i = 0; i < 4; i++)
        append(l, 2, 1000, 500, clock_wall_ms(), &sz[i]);
    struct plog_slice s;
    /* smaller than the first batch: nothing, or the whole batch with min_one */
    CHECK_EQ(plog_read(l, 0, 100, false, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, 0, 100, true, &s), 0);
    CHECK_EQ(s.pos, 0);
    CHECK_EQ(s.len, (int32_t)sz[0]);
    int64_t first, last;
    CHECK_EQ(walk_slice(&s, false, &first, &last), 1);
    CHECK_EQ(last, 1);
    CHECK_EQ(plog_read(l, 0, 0, true, &s), 0);
    CHECK_EQ(s.len, (int32_t)sz[0]);
    /* exactly two batches */
    CHECK_EQ(plog_read(l, 1, (int32_t)(sz[0] + sz[1]), false, &s), 0);
    CHECK_EQ(s.len, (int32_t)(sz[0] + sz[1]));
    CHECK_EQ(walk_slice(&s, false, &first, &last), 2);
    CHECK_EQ(last, 3);
    /* one and a half: the cut second batch is the caller's to drop */
    int32_t mb = (int32_t)(sz[0] + sz[1] / 2);
    CHECK_EQ(plog_read(l, 0, mb, false, &s), 0);
    CHECK_EQ(s.pos, 0);
    CHECK_EQ(s.len, mb);
    CHECK_EQ(walk_slice(&s, true, &first, &last), 1);
    /* from the third batch, a limit bigger than what is left */
    CHECK_EQ(plog_read(l, 5, 1 << 30, false, &s), 0);
    CHECK_EQ(s.pos, (int64_t)(sz[0] + sz[1]));
    CHECK_EQ(s.len, (int32_t)(sz[2] + sz[3]));
    plog_close(l);
}

TEST(plog_roll_by_segment_bytes)
{
    size_t one;
    {
        /* measure one batch */
        struct topic_settings st = settings(1 << 30, 4096);
        struct plog *l = plog_open(logdir(), &st, true);
        append(l, 1, 0, 100, 0, &one);
        plog_destroy(l);
    }
    /* three batches fit a segment, the fourth rolls */
    struct topic_settings st = settings((int64_t)one * 3, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    CHECK(l);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 10; i++)
        CHECK_EQ(append(l, 1, 1000 + i, 100, now, NULL), i);
    CHECK_EQ(l->nsegs, 4);
    CHECK_EQ(l->segs[0]->base_offset, 0);
    CHECK_EQ(l->segs[1]->base_offset, 3);
    CHECK_EQ(l->segs[2]->base_offset, 6);
    CHECK_EQ(l->segs[3]->base_offset, 9);
    for (int i = 0; i < 3; i++) {
        CHECK(l->segs[i]->sealed);
        CHECK_EQ(l->segs[i]->size, (int64_t)one * 3);
        CHECK_EQ(file_size(seg_file(l->segs[i]->base_offset, ".index")), 8);
    }
    CHECK(!l->segs[3]->sealed);
    CHECK_EQ(count_files(".log"), 4);
    CHECK_EQ(plog_size(l), (int64_t)one * 10);
    /* a read stays inside the segment holding the offset */
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 4, 1 << 20, false, &s), 0);
    CHECK_EQ(s.fd, l->segs[1]->fd);
    CHECK_EQ(s.pos, (int64_t)one);
    CHECK_EQ(s.len, (int64_t)one * 2);
    CHECK_EQ(plog_read(l, 9, 1 << 20, false, &s), 0);
    CHECK_EQ(s.fd, l->segs[3]->fd);
    CHECK_EQ(s.pos, 0);
    /* a batch bigger than segment.bytes still goes in (alone) */
    append(l, 1, 5000, 4000, now, NULL);
    CHECK_EQ(l->nsegs, 5);
    CHECK_EQ(l->segs[4]->base_offset, 10);
    append(l, 1, 5000, 10, now, NULL);
    CHECK_EQ(l->nsegs, 6);
    plog_close(l);
}

TEST(plog_roll_by_segment_ms)
{
    struct topic_settings st = settings(1 << 30, 4096);
    st.segment_ms = 60000;
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    append(l, 1, now, 10, now, NULL);
    append(l, 1, now, 10, now + 1000, NULL);
    CHECK_EQ(l->nsegs, 1);
    /* not yet old enough */
    plog_maybe_roll_by_age(l, now + 30000);
    CHECK_EQ(l->nsegs, 1);
    plog_maybe_roll_by_age(l, now + 61000);
    CHECK_EQ(l->nsegs, 2);
    CHECK_EQ(l->segs[1]->base_offset, 2);
    /* an empty active segment does not roll however old */
    plog_maybe_roll_by_age(l, now + 10000000);
    CHECK_EQ(l->nsegs, 2);
    /* an append far in the future rolls before writing */
    append(l, 1, now, 10, now + 62000, NULL);
    CHECK_EQ(l->nsegs, 2);
    CHECK_EQ(append(l, 1, now, 10, clock_wall_ms() + 120000, NULL), 3);
    CHECK_EQ(l->nsegs, 3);
    CHECK_EQ(l->segs[2]->base_offset, 3);
    CHECK_EQ(l->segs[1]->size > 0, 1);
    plog_close(l);
}

/* Many small batches over many segments with a small index interval:
 * every offset's read starts exactly at the batch holding it. */
TEST(plog_index_lookup_across_segments)
{
    struct topic_settings st = settings(8000, 300);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    int64_t next = 0;
    for (int i = 0; i < 400; i++) {
        int n = 1 + i % 4;
        CHECK_EQ(append(l, n, 1000 + i, 10 + i % 13, now, NULL), next);
        next += n;
    }
    CHECK(l->nsegs > 5);
    CHECK(l->segs[0]->nidx > 2);
    for (int64_t off = 0; off < next; off++) {
        struct plog_slice s;
        CHECK_EQ(plog_read(l, off, 1 << 20, false, &s), 0);
        uint8_t h[RECORDS_V2_OVERHEAD];
        CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
        struct records_batch_info bi;
        records_parse_header(h, sizeof h, &bi);
        CHECK(bi.base_offset <= off);
        CHECK(bi.base_offset + bi.last_offset_delta >= off);
        CHECK(s.len >= bi.batch_length + 12);
    }
    /* and the same after a clean close and reopen, from the index files */
    plog_close(l);
    l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK_EQ(l->next_offset, next);
    for (int64_t off = 0; off < next; off += 7) {
        struct plog_slice s;
        CHECK_EQ(plog_read(l, off, 1 << 20, false, &s), 0);
        uint8_t h[RECORDS_V2_OVERHEAD];
        CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
        struct records_batch_info bi;
        records_parse_header(h, sizeof h, &bi);
        CHECK(bi.base_offset <= off && bi.base_offset + bi.last_offset_delta >= off);
    }
    plog_close(l);
}

/* ts(o) looks up o by time and checks the record's timestamp too. */
static int64_t ts_lookup(const struct plog *l, int64_t ts, int64_t want_ts)
{
    int64_t found = -12345;
    int64_t off = plog_offset_for_time(l, ts, &found);
    if (off >= 0 && want_ts != -12345 && found != want_ts) {
        fprintf(stderr, "  lookup %lld: offset %lld with timestamp %lld, want timestamp %lld\n", (long long)ts,
                (long long)off, (long long)found, (long long)want_ts);
        exit(1);
    }
    return off;
}

TEST(plog_time_lookup)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    /* batch i: records at 1000*(i+1) and 1000*(i+1)+1, offsets 2i, 2i+1 */
    for (int i = 0; i < 10; i++)
        append(l, 2, 1000 * (i + 1), 10, now, NULL);
    CHECK_EQ(ts_lookup(l, 0, 1000), 0);
    CHECK_EQ(ts_lookup(l, 1000, 1000), 0);
    CHECK_EQ(ts_lookup(l, 1001, 1001), 1); /* inside the first batch */
    CHECK_EQ(ts_lookup(l, 1002, 2000), 2);
    CHECK_EQ(ts_lookup(l, 5500, 6000), 10);
    CHECK_EQ(ts_lookup(l, 10001, 10001), 19);
    CHECK_EQ(ts_lookup(l, 10002, 0), -1);
    plog_close(l);
}

/* Record timestamps need not increase inside a batch: the answer is the
 * first record in offset order whose timestamp reaches ts. */
TEST(plog_time_lookup_unordered_records)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    struct records_rec recs[3];
    static const int64_t ts[3] = {5000, 1000, 7000};
    for (int i = 0; i < 3; i++)
        recs[i] = (struct records_rec){(const uint8_t *)"k", 1, (const uint8_t *)"v", 1, ts[i], NULL, 0};
    struct obuf b;
    obuf_init(&b);
    CHECK_EQ(records_build_v2(&b, COMPRESS_NONE, 1000, recs, 3, -1, -1, -1), 0);
    int64_t base;
    CHECK_EQ(plog_append(l, b.data, b.len, clock_wall_ms(), &base), 0);
    obuf_free(&b);
    CHECK_EQ(ts_lookup(l, 500, 5000), 0);
    CHECK_EQ(ts_lookup(l, 5000, 5000), 0);
    CHECK_EQ(ts_lookup(l, 6000, 7000), 2);
    CHECK_EQ(ts_lookup(l, 7001, 0), -1);
    plog_close(l);
}

TEST(plog_time_lookup_across_segments)
{
    struct topic_settings st = settings(400, 100);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 30; i++)
        append(l, 1, 1000 * (i + 1), 100, now, NULL);
    CHECK(l->nsegs >= 5);
    for (int i = 0; i < 30; i++) {
        CHECK_EQ(ts_lookup(l, 1000 * (i + 1), 1000 * (i + 1)), i);
        CHECK_EQ(ts_lookup(l, 1000 * (i + 1) - 500, 1000 * (i + 1)), i);
    }
    CHECK_EQ(ts_lookup(l, 31000, 0), -1);
    plog_close(l);
}

/* After a clean close and reopen, a lookup by time gives the same answer
 * as before: each segment must still know its largest timestamp, not only
 * the one of its last time-index entry. */
TEST(plog_time_lookup_after_reopen)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 10; i++)
        append(l, 1, 1000 * (i + 1), 10, now, NULL);
    CHECK_EQ(ts_lookup(l, 5000, 5000), 4);
    plog_close(l);
    l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK_EQ(l->next_offset, 10);
    CHECK_EQ(ts_lookup(l, 1000, 1000), 0);
    CHECK_EQ(ts_lookup(l, 5000, 5000), 4);
    CHECK_EQ(ts_lookup(l, 10000, 10000), 9);
    plog_close(l);
    /* the same for a sealed (rolled) segment */
    struct topic_settings small = settings(2000, 4096);
    l = plog_open(logdir(), &small, true);
    for (int i = 10; i < 40; i++)
        append(l, 1, 1000 * (i + 1), 10, now, NULL);
    CHECK(l->nsegs >= 2);
    plog_close(l);
    l = plog_open(logdir(), &small, true);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(ts_lookup(l, 1000 * (i + 1), 1000 * (i + 1)), i);
    plog_close(l);
}

static uint8_t *read_whole(const struct plog *l, int64_t *n)
{
    struct plog_slice s;
    *n = 0;
    uint8_t *all = NULL;
    int64_t off = l->log_start_offset;
    while (off < l->next_offset) {
        CHECK_EQ(plog_read(l, off, 1 << 30, false, &s), 0);
        CHECK(s.len > 0);
        all = realloc(all, (size_t)(*n + s.len));
        CHECK_EQ(pread(s.fd, all + *n, (size_t)s.len, s.pos), s.len);
        int64_t first, last;
        walk_slice(&s, false, &first, &last);
        *n += s.len;
        off = last + 1;
    }
    return all;
}

TEST(plog_reopen_after_clean_close)
{
    struct topic_settings st = settings(2000, 200);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 50; i++)
        append(l, 1 + i % 3, 1000 + i, 30, now, NULL);
    int64_t next = l->next_offset, size = plog_size(l);
    int nsegs = l->nsegs;
    int64_t n1;
    uint8_t *before = read_whole(l, &n1);
    CHECK_EQ(n1, size);
    plog_close(l);
    for (int round = 0; round < 2; round++) {
        l = plog_open(logdir(), &st, true);
        CHECK(l);
        CHECK_EQ(l->nsegs, nsegs);
        CHECK_EQ(l->next_offset, next);
        CHECK_EQ(l->log_start_offset, 0);
        CHECK_EQ(plog_size(l), size);
        int64_t n2;
        uint8_t *after = read_whole(l, &n2);
        CHECK_EQ(n2, n1);
        CHECK(memcmp(before, after, (size_t)n1) == 0);
        free(after);
        plog_close(l);
    }
    /* appends continue at the old end, in the old active segment */
    l = plog_open(logdir(), &st, true);
    CHECK_EQ(append(l, 1, 5000, 10, now, NULL), next);
    CHECK_EQ(l->next_offset, next + 1);
    plog_close(l);
    l = plog_open(logdir(), &st, false); /* and it survives an unclean open */
    CHECK_EQ(l->next_offset, next + 1);
    plog_close(l);
    free(before);
}

/* Appends 6 batches into the active segment, "crashes" (the files are left
 * as they are) and returns the positions and sizes of the batches. */
static void crash_fixture(int64_t *pos, size_t *sz, int64_t *next_before)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    int64_t p = 0;
    for (int i = 0; i < 6; i++) {
        pos[i] = p;
        CHECK_EQ(append(l, 2, 1000 + i, 40, now, &sz[i]), 2 * i);
        p += (int64_t)sz[i];
    }
    *next_before = l->next_offset;
    /* free without sealing, as a crash would leave it */
    for (int i = 0; i < l->nsegs; i++)
        seg_close(l->segs[i]);
    l->nsegs = 0;
    plog_close(l);
}

static void check_recovered(int64_t cut_at, int64_t expect_next)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, false);
    CHECK(l);
    CHECK_EQ(l->next_offset, expect_next);
    CHECK_EQ(plog_size(l), cut_at);
    CHECK_EQ(file_size(seg_file(0, ".log")), cut_at);
    struct plog_slice s;
    /* nothing is served after the cut */
    CHECK_EQ(plog_read(l, expect_next, 1 << 20, true, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, expect_next + 1, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    if (expect_next > 0) {
        CHECK_EQ(plog_read(l, 0, 1 << 20, false, &s), 0);
        CHECK_EQ(s.len, cut_at);
        int64_t first, last;
        walk_slice(&s, false, &first, &last);
        CHECK_EQ(last, expect_next - 1);
    }
    /* and the log takes new appends right after the cut */
    CHECK_EQ(append(l, 1, 9000, 5, clock_wall_ms(), NULL), expect_next);
    CHECK_EQ(plog_read(l, expect_next, 1 << 20, false, &s), 0);
    CHECK_EQ(s.pos, cut_at);
    plog_close(l);
}

TEST(plog_recovery_truncated_mid_batch)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    CHECK_EQ(next, 12);
    CHECK_EQ(truncate(seg_file(0, ".log"), pos[5] + (int64_t)sz[5] / 2), 0);
    check_recovered(pos[5], 10);
}

TEST(plog_recovery_truncated_mid_header)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    CHECK_EQ(truncate(seg_file(0, ".log"), pos[4] + 20), 0);
    check_recovered(pos[4], 8);
}

TEST(plog_recovery_flipped_byte_in_last_batch)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    int fd = open(seg_file(0, ".log"), O_RDWR);
    uint8_t c;
    int64_t at = pos[5] + (int64_t)sz[5] - 10;
    CHECK_EQ(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    CHECK_EQ(pwrite(fd, &c, 1, at), 1);
    close(fd);
    check_recovered(pos[5], 10);
}

TEST(plog_recovery_flipped_crc)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    int fd = open(seg_file(0, ".log"), O_RDWR);
    uint8_t c;
    CHECK_EQ(pread(fd, &c, 1, pos[5] + RECORDS_OFF_CRC), 1);
    c ^= 0x80;
    CHECK_EQ(pwrite(fd, &c, 1, pos[5] + RECORDS_OFF_CRC), 1);
    close(fd);
    check_recovered(pos[5], 10);
}

TEST(plog_recovery_garbage_appended)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    int64_t end = pos[5] + (int64_t)sz[5];
    int fd = open(seg_file(0, ".log"), O_WRONLY | O_APPEND);
    uint8_t g[777];
    for (size_t i = 0; i < sizeof g; i++)
        g[i] = (uint8_t)(i * 131 + 7);
    CHECK_EQ(write(fd, g, sizeof g), (ssize_t)sizeof g);
    close(fd);
    check_recovered(end, 12);
}

TEST(plog_recovery_everything_bad)
{
    int64_t pos[6], next;
    size_t sz[6];
    crash_fixture(pos, sz, &next);
    int fd = open(seg_file(0, ".log"), O_RDWR);
    uint8_t z = 0x07;
    CHECK_EQ(pwrite(fd, &z, 1, RECORDS_OFF_MAGIC), 1);
    close(fd);
    check_recovered(0, 0);
}

TEST(plog_recovery_only_checks_active_segment_tail)
{
    /* two sealed segments and an active one; the active one is torn */
    struct topic_settings st = settings(300, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 9; i++)
        append(l, 1, 1000 + i, 100, now, NULL);
    CHECK(l->nsegs >= 3);
    int nsegs = l->nsegs;
    int64_t active_base = l->segs[nsegs - 1]->base_offset;
    int64_t active_size = l->segs[nsegs - 1]->size;
    for (int i = 0; i < l->nsegs; i++)
        seg_close(l->segs[i]);
    l->nsegs = 0;
    plog_close(l);
    CHECK_EQ(truncate(seg_file(active_base, ".log"), active_size - 1), 0);
    l = plog_open(logdir(), &st, false);
    CHECK(l);
    CHECK_EQ(l->nsegs, nsegs);
    /* the active segment held one or more whole batches; the last is cut */
    CHECK(l->next_offset < 9);
    CHECK(l->next_offset >= active_base);
    CHECK_EQ(l->segs[nsegs - 1]->next_offset, l->next_offset);
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 0, 1 << 20, false, &s), 0);
    CHECK(s.len > 0);
    plog_close(l);
}

/* A sealed segment whose .index is missing or damaged is read anyway: the
 * index is rebuilt from the log. */
TEST(plog_sealed_segment_index_rebuilt)
{
    struct topic_settings st = settings(1500, 100);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 40; i++)
        append(l, 2, 1000 + i, 40, now, NULL);
    int64_t next = l->next_offset;
    CHECK(l->nsegs >= 3);
    int64_t second = l->segs[1]->base_offset;
    plog_close(l);
    for (int damage = 0; damage < 3; damage++) {
        if (damage == 0) {
            CHECK_EQ(unlink(seg_file(0, ".index")), 0);
        } else if (damage == 1) {
            CHECK_EQ(truncate(seg_file(second, ".index"), 3), 0);
        } else {
            int fd = open(seg_file(0, ".index"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            uint8_t junk[16] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0x00, 0, 0, 0, 1, 0, 0, 0, 0};
            CHECK_EQ(write(fd, junk, 16), 16);
            close(fd);
        }
        l = plog_open(logdir(), &st, true);
        CHECK(l);
        CHECK_EQ(l->next_offset, next);
        for (int64_t off = 0; off < next; off++) {
            struct plog_slice s;
            CHECK_EQ(plog_read(l, off, 1 << 20, false, &s), 0);
            uint8_t h[RECORDS_V2_OVERHEAD];
            CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
            struct records_batch_info bi;
            records_parse_header(h, sizeof h, &bi);
            CHECK(bi.base_offset <= off && bi.base_offset + bi.last_offset_delta >= off);
        }
        CHECK_EQ(ts_lookup(l, 1020, 1020), 39); /* batch 19 holds ts 1019, 1020 */
        plog_close(l);
    }
}

TEST(plog_dirty_fds_for_flush)
{
    struct topic_settings st = settings(200, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 3; i++)
        append(l, 2, 1000, 100, now, NULL);
    CHECK(l->nsegs >= 2);
    CHECK_EQ(l->unflushed, 6);
    int fds[8];
    int n = plog_take_dirty_fds(l, fds, 8, 12345);
    CHECK_EQ(n, 2); /* the active segment and the one sealed before it */
    CHECK_EQ(l->unflushed, 0);
    CHECK_EQ(l->last_flush_ms, 12345);
    for (int i = 0; i < n; i++) {
        CHECK(fds[i] != l->segs[l->nsegs - 1]->fd && fds[i] != l->segs[l->nsegs - 2]->fd);
        CHECK_EQ(seg_fsync(fds[i]), 0);
        close(fds[i]);
    }
    CHECK_EQ(plog_take_dirty_fds(l, fds, 1, 0), 1);
    close(fds[0]);
    plog_close(l);
}

TEST(plog_destroy_removes_directory)
{
    struct topic_settings st = settings(300, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 5; i++)
        append(l, 1, 0, 100, clock_wall_ms(), NULL);
    CHECK(l->nsegs > 1);
    plog_destroy(l);
    struct stat sb;
    CHECK_EQ(stat(logdir(), &sb), -1);
}

TEST(plog_no_leaks_open_close)
{
    size_t base = alloc_live_bytes();
    struct topic_settings st = settings(300, 50);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 20; i++)
        append(l, 1, 0, 100, clock_wall_ms(), NULL);
    plog_close(l);
    l = plog_open(logdir(), &st, false);
    plog_close(l);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* A clean open trusts the index files and walks batch headers from the
 * last index entry to find the log end; a damaged batchLength there must
 * not hang the open (or a later read). */
TEST(plog_clean_open_survives_corrupt_batch_length)
{
    struct topic_settings st = settings(1 << 30, 1 << 20);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t pos[5];
    size_t sz[5];
    int64_t p = 0;
    for (int i = 0; i < 5; i++) {
        pos[i] = p;
        append(l, 1, 1000 + i, 20, clock_wall_ms(), &sz[i]);
        p += (int64_t)sz[i];
    }
    plog_close(l);
    int fd = open(seg_file(0, ".log"), O_RDWR);
    uint8_t m12[4] = {0xff, 0xff, 0xff, 0xf4}; /* batchLength -12 */
    CHECK_EQ(pwrite(fd, m12, 4, pos[3] + RECORDS_OFF_BATCH_LENGTH), 4);
    close(fd);
    alarm(5); /* a hang fails here */
    l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK(l->next_offset >= 3 && l->next_offset <= 5);
    struct plog_slice s;
    int rc = plog_read(l, 2, 1 << 20, false, &s);
    CHECK(rc == 0 || rc == KERR_OFFSET_OUT_OF_RANGE);
    int64_t ts;
    plog_offset_for_time(l, 1004, &ts);
    alarm(0);
    plog_close(l);
}

/* ---- truncation, epochs, replica appends -------------------------------------- */

/* One batch of n one-byte records at timestamps ts.., as producer pid
 * (sequence seq; pid < 0: not idempotent), stamped with leader epoch
 * lepoch when >= 0.  The bytes are in *b (caller frees). */
static void build_batch(struct obuf *b, int n, int64_t ts, int64_t pid, int32_t seq, int32_t lepoch)
{
    struct records_rec recs[16];
    CHECK(n <= 16);
    for (int i = 0; i < n; i++)
        recs[i] = (struct records_rec){(const uint8_t *)"k", 1, (const uint8_t *)"v", 1, ts + i, NULL, 0};
    obuf_init(b);
    CHECK_EQ(records_build_v2(b, COMPRESS_NONE, ts, recs, n, pid, (int16_t)(pid >= 0 ? 0 : -1), pid >= 0 ? seq : -1),
             0);
    if (lepoch >= 0)
        plog_stamp_leader_epoch(b->data, lepoch);
}

static int64_t append_ex(struct plog *l, int n, int64_t ts, int64_t pid, int32_t seq, int32_t lepoch)
{
    struct obuf b;
    build_batch(&b, n, ts, pid, seq, lepoch);
    int64_t base = -1;
    CHECK_EQ(plog_append(l, b.data, b.len, clock_wall_ms(), &base), 0);
    obuf_free(&b);
    return base;
}

/* Every offset from the log start to the end reads from the batch holding
 * it, whole batches only; the end reads nothing, past it is out of range. */
static void check_reads(const struct plog *l)
{
    struct plog_slice s;
    for (int64_t off = l->log_start_offset; off < l->next_offset; off++) {
        CHECK_EQ(plog_read(l, off, 1 << 20, false, &s), 0);
        uint8_t h[RECORDS_V2_OVERHEAD];
        CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
        struct records_batch_info bi;
        records_parse_header(h, sizeof h, &bi);
        CHECK(bi.base_offset <= off && bi.base_offset + bi.last_offset_delta >= off);
        int64_t first, last;
        walk_slice(&s, false, &first, &last);
        CHECK(last < l->next_offset);
    }
    CHECK_EQ(plog_read(l, l->next_offset, 1 << 20, true, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, l->next_offset + 1, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
}

static int64_t read_number_file(const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", logdir(), name);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long long v = -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* Frees the log as a crash would leave it: nothing sealed or saved. */
static void crash(struct plog *l)
{
    for (int i = 0; i < l->nsegs; i++)
        seg_close(l->segs[i]);
    l->nsegs = 0;
    plog_close(l);
}

TEST(plog_truncate_in_active_segment)
{
    struct topic_settings st = settings(1 << 30, 100);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t pos[10];
    size_t sz[10];
    int64_t p = 0;
    for (int i = 0; i < 10; i++) {
        pos[i] = p;
        CHECK_EQ(append(l, 2, 1000 + 10 * i, 40, clock_wall_ms(), &sz[i]), 2 * i);
        p += (int64_t)sz[i];
    }
    CHECK(l->segs[0]->nidx > 2);
    /* at or past the end: nothing to do */
    CHECK_EQ(plog_truncate_to(l, 100), 0);
    CHECK_EQ(plog_truncate_to(l, 20), 0);
    CHECK_EQ(l->next_offset, 20);
    CHECK_EQ(plog_size(l), p);
    CHECK_EQ(plog_save_recovery_point(l, 20), 0);
    CHECK_EQ(plog_truncate_to(l, 14), 0);
    CHECK_EQ(l->next_offset, 14);
    CHECK_EQ(l->nsegs, 1);
    CHECK_EQ(plog_size(l), pos[7]);
    CHECK_EQ(file_size(seg_file(0, ".log")), pos[7]);
    CHECK_EQ(l->recovery_point, 14);
    CHECK_EQ(read_number_file("recovery-point"), 14);
    CHECK_EQ(l->unflushed, 0);
    check_reads(l);
    /* the removed timestamps are gone from the time lookups */
    CHECK_EQ(ts_lookup(l, 1060, 1060), 12);
    CHECK_EQ(ts_lookup(l, 1062, 0), -1);
    CHECK_EQ(l->segs[0]->max_timestamp, 1061);
    /* the next append lands right at the cut */
    CHECK_EQ(append(l, 1, 5000, 10, clock_wall_ms(), NULL), 14);
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 14, 1 << 20, false, &s), 0);
    CHECK_EQ(s.pos, pos[7]);
    check_reads(l);
    plog_close(l);
}

/* A batch holding the cut offset goes entirely. */
TEST(plog_truncate_straddling_batch)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t pos2 = 0;
    for (int i = 0; i < 4; i++) {
        size_t sz;
        append(l, 3, 1000, 20, clock_wall_ms(), &sz);
        if (i < 2)
            pos2 += (int64_t)sz;
    }
    CHECK_EQ(plog_truncate_to(l, 7), 0); /* batch 6..8 straddles 7 */
    CHECK_EQ(l->next_offset, 6);
    CHECK_EQ(plog_size(l), pos2);
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 6, 1 << 20, true, &s), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(plog_read(l, 7, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    check_reads(l);
    /* the first batch straddling the cut: everything goes */
    CHECK_EQ(plog_truncate_to(l, 1), 0);
    CHECK_EQ(l->next_offset, 0);
    CHECK_EQ(l->log_start_offset, 0);
    CHECK_EQ(plog_size(l), 0);
    CHECK_EQ(append(l, 1, 1000, 5, clock_wall_ms(), NULL), 0);
    plog_close(l);
}

/* Five segments of six batches; a cut in the middle of the third deletes
 * the two above, and the third (sealed) becomes the active segment. */
TEST(plog_truncate_across_segments)
{
    size_t one;
    {
        struct topic_settings st = settings(1 << 30, 4096);
        struct plog *l = plog_open(logdir(), &st, true);
        append(l, 1, 0, 100, 0, &one);
        plog_destroy(l);
    }
    struct topic_settings st = settings((int64_t)one * 6, (int32_t)one * 2);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 30; i++)
        CHECK_EQ(append(l, 1, 1000 + i, 100, clock_wall_ms(), NULL), i);
    CHECK_EQ(l->nsegs, 5);
    CHECK_EQ(l->segs[2]->base_offset, 12);
    CHECK(l->segs[2]->sealed);
    CHECK(file_size(seg_file(12, ".index")) > 0);
    CHECK_EQ(count_files(".log"), 5);
    CHECK_EQ(plog_truncate_to(l, 15), 0);
    CHECK_EQ(l->next_offset, 15);
    CHECK_EQ(l->nsegs, 3);
    CHECK_EQ(count_files(".log"), 3);
    CHECK_EQ(file_size(seg_file(18, ".log")), -1);
    CHECK_EQ(file_size(seg_file(24, ".log")), -1);
    CHECK_EQ(file_size(seg_file(24, ".index")), -1);
    struct segment *a = l->segs[2];
    CHECK(!a->sealed);
    CHECK_EQ(a->size, (int64_t)one * 3);
    CHECK_EQ(a->next_offset, 15);
    CHECK_EQ(file_size(seg_file(12, ".log")), (int64_t)one * 3);
    CHECK_EQ(file_size(seg_file(12, ".index")), -1); /* described the longer file */
    CHECK(l->segs[1]->sealed);
    check_reads(l);
    CHECK_EQ(ts_lookup(l, 1014, 1014), 14);
    CHECK_EQ(ts_lookup(l, 1015, 0), -1);
    /* the re-opened segment takes appends until it is full, then rolls */
    for (int i = 15; i < 20; i++)
        CHECK_EQ(append(l, 1, 2000 + i, 100, clock_wall_ms(), NULL), i);
    CHECK_EQ(l->nsegs, 4);
    CHECK_EQ(l->segs[2]->size, (int64_t)one * 6);
    CHECK(l->segs[2]->sealed);
    CHECK_EQ(l->segs[3]->base_offset, 18);
    check_reads(l);
    CHECK_EQ(ts_lookup(l, 2015, 2015), 15);
    int64_t n1;
    uint8_t *before = read_whole(l, &n1);
    plog_close(l);
    /* the same after a clean reopen, from the index files */
    l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK_EQ(l->next_offset, 20);
    CHECK_EQ(l->nsegs, 4);
    check_reads(l);
    int64_t n2;
    uint8_t *after = read_whole(l, &n2);
    CHECK_EQ(n2, n1);
    CHECK(memcmp(before, after, (size_t)n1) == 0);
    free(before);
    free(after);
    plog_close(l);
}

/* A cut exactly at a segment's first batch removes that segment; the one
 * before becomes active (it is full, so the next append rolls). */
TEST(plog_truncate_at_segment_boundary)
{
    struct topic_settings st = settings(1 << 30, 4096);
    size_t one;
    {
        struct plog *l = plog_open(logdir(), &st, true);
        append(l, 1, 0, 100, 0, &one);
        plog_destroy(l);
    }
    st = settings((int64_t)one * 6, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 20; i++)
        append(l, 1, 1000 + i, 100, clock_wall_ms(), NULL);
    CHECK_EQ(l->nsegs, 4);
    CHECK_EQ(plog_truncate_to(l, 12), 0);
    CHECK_EQ(l->next_offset, 12);
    CHECK_EQ(l->nsegs, 2);
    CHECK_EQ(count_files(".log"), 2);
    CHECK(!l->segs[1]->sealed);
    CHECK_EQ(l->segs[1]->next_offset, 12);
    CHECK_EQ(file_size(seg_file(6, ".index")), 8); /* nothing cut: still right */
    check_reads(l);
    CHECK_EQ(append(l, 1, 3000, 100, clock_wall_ms(), NULL), 12);
    CHECK_EQ(l->nsegs, 3);
    CHECK_EQ(l->segs[2]->base_offset, 12);
    check_reads(l);
    plog_close(l);
    l = plog_open(logdir(), &st, false);
    CHECK_EQ(l->next_offset, 13);
    check_reads(l);
    plog_close(l);
}

/* What a truncation leaves is what a reopen finds, after a clean close or
 * a crash right after it returned. */
TEST(plog_truncate_then_reopen)
{
    struct topic_settings st = settings(1500, 200);
    for (int clean = 0; clean < 2; clean++) {
        struct plog *l = plog_open(logdir(), &st, true);
        for (int i = 0; i < 40; i++)
            append(l, 1 + i % 3, 1000 + i, 30, clock_wall_ms(), NULL);
        CHECK(l->nsegs >= 4);
        CHECK_EQ(plog_save_recovery_point(l, l->next_offset), 0);
        int64_t cut = l->next_offset / 2 + 1;
        CHECK_EQ(plog_truncate_to(l, cut), 0);
        int64_t end = l->next_offset, size = plog_size(l);
        int nsegs = l->nsegs;
        CHECK(end <= cut && end > cut - 3);
        CHECK_EQ(read_number_file("recovery-point"), end);
        int64_t n1;
        uint8_t *before = read_whole(l, &n1);
        if (clean)
            plog_close(l);
        else
            crash(l);
        l = plog_open(logdir(), &st, clean);
        CHECK(l);
        CHECK_EQ(l->next_offset, end);
        CHECK_EQ(l->nsegs, nsegs);
        CHECK_EQ(plog_size(l), size);
        CHECK_EQ(l->log_start_offset, 0);
        int64_t n2;
        uint8_t *after = read_whole(l, &n2);
        CHECK_EQ(n2, n1);
        CHECK(memcmp(before, after, (size_t)n1) == 0);
        free(before);
        free(after);
        check_reads(l);
        CHECK_EQ(append(l, 1, 9000, 10, clock_wall_ms(), NULL), end);
        plog_destroy(l);
    }
}

TEST(plog_truncate_fully_restarts_log)
{
    struct topic_settings st = settings(200, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 10; i++)
        append_ex(l, 1, 1000 + i, 5, i, 1);
    CHECK(l->nsegs > 2);
    CHECK_EQ(l->epochs.n, 1);
    CHECK_EQ(plog_truncate_fully(l, 100), 0);
    CHECK_EQ(l->log_start_offset, 100);
    CHECK_EQ(l->next_offset, 100);
    CHECK_EQ(l->nsegs, 1);
    CHECK_EQ(l->segs[0]->base_offset, 100);
    CHECK_EQ(count_files(".log"), 1);
    CHECK_EQ(file_size(seg_file(100, ".log")), 0);
    CHECK_EQ(l->recovery_point, 100);
    CHECK_EQ(read_number_file("recovery-point"), 100);
    CHECK_EQ(read_number_file("log-start-offset"), 100);
    CHECK_EQ(l->epochs.n, 0);
    check_reads(l);
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 99, 1 << 20, true, &s), KERR_OFFSET_OUT_OF_RANGE);
    /* the producer is forgotten: its next sequence is no duplicate */
    struct obuf b;
    build_batch(&b, 1, 1000, 5, 0, -1);
    int64_t dup_base;
    int32_t dup_delta;
    CHECK_EQ(plog_check_producer(l, b.data, b.len, &dup_base, &dup_delta), PSTATE_APPEND);
    obuf_free(&b);
    CHECK_EQ(append(l, 1, 2000, 10, clock_wall_ms(), NULL), 100);
    plog_close(l);
    l = plog_open(logdir(), &st, true);
    CHECK_EQ(l->log_start_offset, 100);
    CHECK_EQ(l->next_offset, 101);
    /* truncate_to at or below the log start empties the log too */
    CHECK_EQ(plog_truncate_to(l, 50), 0);
    CHECK_EQ(l->log_start_offset, 50);
    CHECK_EQ(l->next_offset, 50);
    CHECK_EQ(count_files(".log"), 1);
    CHECK_EQ(file_size(seg_file(50, ".log")), 0);
    /* restarting at the base of the existing segment reuses its file */
    CHECK_EQ(append(l, 2, 2000, 10, clock_wall_ms(), NULL), 50);
    CHECK_EQ(plog_truncate_fully(l, 50), 0);
    CHECK_EQ(l->next_offset, 50);
    CHECK_EQ(file_size(seg_file(50, ".log")), 0);
    CHECK_EQ(append(l, 1, 2000, 10, clock_wall_ms(), NULL), 50);
    crash(l);
    l = plog_open(logdir(), &st, false);
    CHECK_EQ(l->log_start_offset, 50);
    CHECK_EQ(l->next_offset, 51);
    CHECK_EQ(plog_truncate_fully(l, -1), -1);
    plog_close(l);
}

static int producer_check(const struct plog *l, int64_t pid, int32_t seq, int64_t *dup_base)
{
    struct obuf b;
    build_batch(&b, 1, 1000, pid, seq, -1);
    int32_t dup_delta;
    int rc = plog_check_producer(l, b.data, b.len, dup_base, &dup_delta);
    obuf_free(&b);
    return rc;
}

/* After a truncation the producer state is the one of the log that is
 * left, in memory and after reopening. */
TEST(plog_truncate_rebuilds_producer_state)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    CHECK_EQ(append_ex(l, 1, 1000, 7, 0, -1), 0);
    CHECK_EQ(append_ex(l, 1, 1000, 7, 1, -1), 1);
    CHECK_EQ(append_ex(l, 1, 1000, 7, 2, -1), 2);
    CHECK_EQ(append_ex(l, 1, 1000, 8, 0, -1), 3);
    CHECK_EQ(append_ex(l, 1, 1000, 7, 3, -1), 4);
    int64_t dup = -1;
    CHECK_EQ(producer_check(l, 7, 2, &dup), PSTATE_DUPLICATE);
    CHECK_EQ(dup, 2);
    CHECK_EQ(producer_check(l, 8, 0, &dup), PSTATE_DUPLICATE);
    CHECK_EQ(plog_truncate_to(l, 2), 0);
    for (int round = 0; round < 3; round++) {
        /* seq 1 is still in the log; seq 2 and producer 8 are not */
        CHECK_EQ(producer_check(l, 7, 1, &dup), PSTATE_DUPLICATE);
        CHECK_EQ(dup, 1);
        CHECK_EQ(producer_check(l, 7, 2, &dup), PSTATE_APPEND);
        CHECK_EQ(producer_check(l, 7, 3, &dup), -45);
        CHECK_EQ(producer_check(l, 8, 0, &dup), PSTATE_APPEND);
        if (round == 0) {
            plog_close(l);
            l = plog_open(logdir(), &st, true);
        } else if (round == 1) {
            crash(l);
            l = plog_open(logdir(), &st, false);
        }
        CHECK(l);
    }
    CHECK_EQ(append_ex(l, 1, 1000, 7, 2, -1), 2);
    CHECK_EQ(producer_check(l, 7, 2, &dup), PSTATE_DUPLICATE);
    plog_close(l);
}

static const char *ckpt_text(void)
{
    static char buf[1024];
    char p[700];
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", logdir());
    FILE *f = fopen(p, "r");
    if (!f)
        return "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Stamped batches start epochs in the cache; the cache follows the log
 * through reopen, truncation, DeleteRecords and retention. */
TEST(plog_stamped_epochs_build_the_cache)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), -1);
    static const int32_t epochs[] = {0, 0, 1, 1, -1, 3, 2, 3, 5};
    for (int i = 0; i < 9; i++)
        CHECK_EQ(append_ex(l, 1, 1000 + i, -1, 0, epochs[i]), i);
    CHECK_EQ(strcmp(ckpt_text(), "0\n4\n0 0\n1 2\n3 5\n5 8\n"), 0);
    /* the stamp is in the stored batch, whose CRC still holds */
    struct plog_slice s;
    CHECK_EQ(plog_read(l, 5, 1 << 20, false, &s), 0);
    uint8_t h[RECORDS_V2_OVERHEAD];
    CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
    struct records_batch_info bi;
    records_parse_header(h, sizeof h, &bi);
    CHECK_EQ(bi.partition_leader_epoch, 3);
    int64_t first, last;
    walk_slice(&s, false, &first, &last); /* checks every CRC */
    int32_t e;
    int64_t end;
    ecache_end_offset_for(&l->epochs, 1, l->next_offset, &e, &end);
    CHECK_EQ(e, 1);
    CHECK_EQ(end, 5);
    ecache_end_offset_for(&l->epochs, 5, l->next_offset, &e, &end);
    CHECK_EQ(end, 9);
    plog_close(l);
    l = plog_open(logdir(), &st, true);
    CHECK_EQ(l->epochs.n, 4);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 5);
    /* truncation drops the epochs that started in the removed part */
    CHECK_EQ(plog_truncate_to(l, 6), 0);
    CHECK_EQ(strcmp(ckpt_text(), "0\n3\n0 0\n1 2\n3 5\n"), 0);
    CHECK_EQ(plog_truncate_to(l, 5), 0);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 1);
    /* a new leader's epoch starts at the new end */
    CHECK_EQ(append_ex(l, 1, 2000, -1, 0, 7), 5);
    CHECK_EQ(strcmp(ckpt_text(), "0\n3\n0 0\n1 2\n7 5\n"), 0);
    /* DeleteRecords moves the first epoch's start up */
    CHECK_EQ(plog_delete_records(l, 3), 0);
    CHECK_EQ(strcmp(ckpt_text(), "0\n2\n1 3\n7 5\n"), 0);
    plog_close(l);
}

TEST(plog_retention_moves_epoch_start)
{
    struct topic_settings st = settings(300, 4096);
    st.delete_policy = true;
    st.retention_ms = -1;
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 12; i++)
        append_ex(l, 1, 1000 + i, -1, 0, i / 4);
    CHECK(l->nsegs >= 3);
    int64_t total = plog_size(l);
    st.retention_bytes = total - l->segs[0]->size - l->segs[1]->size;
    CHECK(plog_apply_retention(l, clock_wall_ms()) >= 2);
    int64_t start = l->log_start_offset;
    CHECK(start > 0);
    CHECK_EQ(l->epochs.e[0].start_offset, start);
    CHECK_EQ(l->epochs.e[0].epoch, (int32_t)(start / 4));
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 2);
    plog_close(l);
}

/* The checkpoint is written when an epoch starts, before its data is
 * synced; after a crash that cut that data, the entry goes too. */
TEST(plog_recovery_cuts_epoch_cache)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    int64_t cut_at = 0;
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            cut_at = plog_size(l);
        append_ex(l, 1, 1000 + i, -1, 0, i < 4 ? 1 : 2);
    }
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 2);
    crash(l);
    CHECK_EQ(truncate(seg_file(0, ".log"), cut_at + 10), 0);
    l = plog_open(logdir(), &st, false);
    CHECK_EQ(l->next_offset, 4);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 1);
    CHECK_EQ(strcmp(ckpt_text(), "0\n1\n1 0\n"), 0);
    plog_close(l);
}

/* A corrupt checkpoint: the log opens, with an empty cache that refills. */
TEST(plog_corrupt_epoch_checkpoint)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    append_ex(l, 1, 1000, -1, 0, 4);
    plog_close(l);
    char p[700];
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", logdir());
    FILE *f = fopen(p, "w");
    fputs("0\n3\n4 0\n", f);
    fclose(f);
    l = plog_open(logdir(), &st, true);
    CHECK(l);
    CHECK_EQ(l->next_offset, 1);
    CHECK_EQ(l->epochs.n, 0);
    append_ex(l, 1, 1000, -1, 0, 4);
    CHECK_EQ(strcmp(ckpt_text(), "0\n1\n4 1\n"), 0);
    plog_close(l);
}

TEST(plog_append_replica_checks_base_offset)
{
    struct topic_settings st = settings(1 << 30, 4096);
    struct plog *l = plog_open(logdir(), &st, true);
    struct obuf b;
    int64_t now = clock_wall_ms();
    /* the leader's batches carry their offsets and its epoch */
    build_batch(&b, 3, 1000, 9, 0, 2);
    records_set_base_offset(b.data, 0);
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), 0);
    CHECK_EQ(l->next_offset, 3);
    CHECK_EQ(l->unflushed, 3);
    int64_t size = plog_size(l);
    /* the same batch again, or one past the end: refused, nothing written */
    errno = 0;
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), -1);
    CHECK_EQ(errno, EINVAL);
    obuf_free(&b);
    build_batch(&b, 2, 1000, 9, 3, 2);
    records_set_base_offset(b.data, 4);
    errno = 0;
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), -1);
    CHECK_EQ(errno, EINVAL);
    /* damaged: a flipped record byte, a short buffer */
    records_set_base_offset(b.data, 3);
    b.data[b.len - 2] ^= 1;
    errno = 0;
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), -1);
    CHECK_EQ(errno, EBADMSG);
    b.data[b.len - 2] ^= 1;
    CHECK_EQ(plog_append_replica(l, b.data, b.len - 1, now), -1);
    CHECK_EQ(plog_append_replica(l, b.data, 20, now), -1);
    CHECK_EQ(l->next_offset, 3);
    CHECK_EQ(plog_size(l), size);
    /* the right base offset */
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), 0);
    CHECK_EQ(l->next_offset, 5);
    check_reads(l);
    /* producer state and epochs as for a leader's append */
    int64_t dup = -1;
    int32_t dup_delta = -1;
    CHECK_EQ(plog_check_producer(l, b.data, b.len, &dup, &dup_delta), PSTATE_DUPLICATE);
    CHECK_EQ(dup, 3);
    CHECK_EQ(dup_delta, 1);
    obuf_free(&b);
    CHECK_EQ(l->epochs.n, 1);
    CHECK_EQ(l->epochs.e[0].epoch, 2);
    CHECK_EQ(l->epochs.e[0].start_offset, 0);
    build_batch(&b, 1, 1000, -1, 0, 6);
    records_set_base_offset(b.data, 5);
    CHECK_EQ(plog_append_replica(l, b.data, b.len, now), 0);
    obuf_free(&b);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 6);
    CHECK_EQ(l->epochs.e[1].start_offset, 5);
    /* and it survives a crash and recovery */
    crash(l);
    l = plog_open(logdir(), &st, false);
    CHECK_EQ(l->next_offset, 6);
    CHECK_EQ(ecache_latest_epoch(&l->epochs), 6);
    plog_destroy(l);
}

/* A compacted leader's log has offset gaps; its follower copies them. */
TEST(plog_append_replica_gap_in_compacted_log)
{
    struct topic_settings st = settings(1 << 30, 4096);
    st.compact = true;
    struct plog *l = plog_open(logdir(), &st, true);
    struct obuf b;
    build_batch(&b, 2, 1000, -1, 0, 1);
    records_set_base_offset(b.data, 0);
    CHECK_EQ(plog_append_replica(l, b.data, b.len, clock_wall_ms()), 0);
    records_set_base_offset(b.data, 10);
    CHECK_EQ(plog_append_replica(l, b.data, b.len, clock_wall_ms()), 0);
    CHECK_EQ(l->next_offset, 12);
    records_set_base_offset(b.data, 11);
    CHECK_EQ(plog_append_replica(l, b.data, b.len, clock_wall_ms()), -1);
    obuf_free(&b);
    /* a cut in the gap removes the batch after it; the end is that of the
     * last batch kept (what a reopen finds) */
    CHECK_EQ(plog_truncate_to(l, 5), 0);
    CHECK_EQ(l->next_offset, 2);
    crash(l);
    l = plog_open(logdir(), &st, false);
    CHECK_EQ(l->next_offset, 2);
    plog_close(l);
}

TEST(plog_truncate_no_leaks)
{
    size_t base = alloc_live_bytes();
    struct topic_settings st = settings(400, 100);
    struct plog *l = plog_open(logdir(), &st, true);
    for (int i = 0; i < 20; i++)
        append_ex(l, 1, 1000 + i, 3, i, i / 5);
    CHECK_EQ(plog_truncate_to(l, 13), 0);
    CHECK_EQ(plog_truncate_to(l, 4), 0);
    CHECK_EQ(plog_truncate_fully(l, 30), 0);
    append_ex(l, 1, 1000, 3, 0, 9);
    plog_close(l);
    CHECK_EQ(alloc_live_bytes(), base);
}
