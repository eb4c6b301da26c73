/* test_recovery.c: crash recovery of a partition log under random damage.
 * A log of several segments is written and closed; then, 240 times, a copy
 * of it is damaged at a random place (a .log file truncated, bytes flipped
 * or garbage appended; an .index or .timeindex file truncated or flipped),
 * its recovery point removed (nothing is known to be synced), and it is
 * opened as after a crash.  It must open, serve every whole batch before the
 * damage exactly as written, nothing from the damage on, and take the next
 * append at the offset right after what it kept. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "storage/partition_log.h"
#include "test.h"

#define NBATCHES 90
#define CASES 240

struct batch_ref {
    int64_t base;
    int segment;  /* index in bases[] */
    int64_t pos;  /* byte position in its segment */
    size_t size;
    uint8_t *bytes; /* as stored (base offset written) */
};

static struct batch_ref batches[NBATCHES];
static int64_t bases[64];
static int nsegs;

static struct topic_settings settings(void)
{
    struct topic_settings s;
    topic_settings_resolve(&s, NULL, NULL);
    s.segment_bytes = 3000;
    s.index_interval_bytes = 200;
    return s;
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    CHECK(system(cmd) == 0);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 ? -1 : st.st_size;
}

/* Builds the original log and remembers every batch. */
static void build(const char *dir, const struct topic_settings *ts)
{
    struct plog *l = plog_open(dir, ts, true);
    CHECK(l != NULL);
    uint8_t val[400];
    for (int b = 0; b < NBATCHES; b++) {
        int n = 1 + b % 4, vlen = 20 + (b * 37) % 300;
        memset(val, 'a' + b % 26, sizeof val);
        struct records_rec recs[4];
        char key[16];
        snprintf(key, sizeof key, "key-%d", b);
        for (int i = 0; i < n; i++)
            recs[i] = (struct records_rec){(const uint8_t *)key, (int32_t)strlen(key), val, vlen,
                                           1700000000000 + b * 10 + i, NULL, 0};
        struct obuf o;
        obuf_init(&o);
        CHECK_EQ(records_build_v2(&o, b % 3 == 0 ? COMPRESS_GZIP : COMPRESS_NONE, 1700000000000 + b * 10, recs, n,
                                  -1, -1, -1),
                 0);
        int64_t base;
        CHECK_EQ(plog_append(l, o.data, o.len, 1700000000000, &base), 0);
        /* where it landed: the active segment, at its end */
        struct segment *s = l->segs[l->nsegs - 1];
        batches[b] = (struct batch_ref){base, l->nsegs - 1, s->size - (int64_t)o.len, o.len, xmalloc(o.len)};
        memcpy(batches[b].bytes, o.data, o.len); /* base offset already written by plog_append */
        obuf_free(&o);
    }
    nsegs = l->nsegs;
    CHECK(nsegs >= 5);
    for (int i = 0; i < nsegs; i++)
        bases[i] = l->segs[i]->base_offset;
    plog_close(l);
}

struct seen {
    int64_t base[NBATCHES + 8];
    size_t size[NBATCHES + 8];
    int n;
    int mismatch; /* a served batch differs from what was written */
};

static int collect(void *arg, const uint8_t *batch, size_t n)
{
    struct seen *s = arg;
    struct records_batch_info bi;
    records_parse_header(batch, n, &bi);
    if (s->n >= NBATCHES + 8)
        return -1;
    int k = s->n++;
    s->base[k] = bi.base_offset;
    s->size[k] = n;
    /* compare with what was written (partitionLeaderEpoch aside: not ours) */
    int found = 0;
    for (int b = 0; b < NBATCHES; b++)
        if (batches[b].base == bi.base_offset && batches[b].size == n) {
            found = memcmp(batches[b].bytes, batch, 12) == 0 &&
                    memcmp(batches[b].bytes + 16, batch + 16, n - 16) == 0;
            break;
        }
    if (!found)
        s->mismatch++;
    return 0;
}

TEST(recovery_survives_random_damage)
{
    char orig[600], work[600];
    snprintf(orig, sizeof orig, "%s/orig", test_tmpdir());
    snprintf(work, sizeof work, "%s/work", test_tmpdir());
    struct topic_settings ts = settings();
    build(orig, &ts);
    srand(12345);
    int by_kind[6] = {0};
    for (int c = 0; c < CASES; c++) {
        copy_dir(orig, work);
        char path[800];
        snprintf(path, sizeof path, "%s/recovery-point", work);
        unlink(path); /* nothing known to be synced: everything is checked */
        int seg = rand() % nsegs;
        int kind = rand() % 6; /* 0 truncate log, 1 flip log, 2 garbage after log, 3/4 damage index, 5 timeindex */
        by_kind[kind]++;
        const char *ext = kind <= 2 ? ".log" : kind == 5 ? ".timeindex" : ".index";
        snprintf(path, sizeof path, "%s/%020lld%s", work, (long long)bases[seg], ext);
        int64_t size = file_size(path);
        int64_t damage_at = -1; /* first byte of the .log no longer trusted */
        if (size > 0) {
            int fd = open(path, O_RDWR);
            CHECK(fd >= 0);
            int64_t at = rand() % size;
            if (kind == 0 || kind == 3) {
                CHECK(ftruncate(fd, at) == 0);
            } else if (kind == 2) {
                uint8_t junk[37];
                for (size_t i = 0; i < sizeof junk; i++)
                    junk[i] = (uint8_t)rand();
                CHECK(pwrite(fd, junk, sizeof junk, size) == (ssize_t)sizeof junk);
                at = size;
            } else {
                int nflip = 1 + rand() % 3;
                for (int i = 0; i < nflip && at + i < size; i++) {
                    uint8_t byte;
                    CHECK(pread(fd, &byte, 1, at + i) == 1);
                    byte ^= (uint8_t)(1 + rand() % 255);
                    CHECK(pwrite(fd, &byte, 1, at + i) == 1);
                }
            }
            close(fd);
            if (kind <= 2)
                damage_at = at;
        }
        struct plog *l = plog_open(work, &ts, false);
        CHECK(l != NULL);
        struct seen s = {0};
        CHECK_EQ(plog_for_each_batch(l, 0, collect, &s), 0);
        /* what must survive: every batch before the damage */
        int expect = 0;
        for (int b = 0; b < NBATCHES; b++) {
            const struct batch_ref *r = &batches[b];
            bool before = damage_at < 0 || r->segment < seg ||
                          (r->segment == seg && r->pos + (int64_t)r->size <= damage_at);
            /* a flip inside partitionLeaderEpoch (bytes 12-15, outside the
             * CRC) harms nothing: that batch and the rest survive */
            if (!before && kind == 1 && r->segment == seg && damage_at >= r->pos + 12 &&
                damage_at + 3 < r->pos + 16 && r->pos <= damage_at)
                damage_at = -1, before = true;
            if (!before)
                break;
            expect++;
        }
        if (s.n != expect || s.mismatch) {
            fprintf(stderr, "  case %d: kind %d in segment %d (%s) at %lld: served %d batches (%d differ), expected %d\n",
                    c, kind, seg, ext, (long long)damage_at, s.n, s.mismatch, expect);
        }
        CHECK_EQ(s.mismatch, 0);
        CHECK_EQ(s.n, expect);
        for (int b = 0; b < expect; b++)
            CHECK_EQ(s.base[b], batches[b].base);
        /* the log continues right after what it kept */
        int64_t next = expect ? batches[expect - 1].base + batches[expect - 1].size * 0 : 0;
        (void)next;
        int64_t want_next = expect < NBATCHES ? batches[expect].base : l->next_offset;
        CHECK_EQ(l->next_offset, want_next);
        struct obuf o;
        obuf_init(&o);
        struct records_rec one = {(const uint8_t *)"k", 1, (const uint8_t *)"v", 1, 1, NULL, 0};
        CHECK_EQ(records_build_v2(&o, COMPRESS_NONE, 1, &one, 1, -1, -1, -1), 0);
        int64_t base;
        CHECK_EQ(plog_append(l, o.data, o.len, 1700000000000, &base), 0);
        CHECK_EQ(base, want_next);
        obuf_free(&o);
        plog_close(l);
    }
    for (int k = 0; k < 6; k++)
        CHECK(by_kind[k] > 10);
    for (int b = 0; b < NBATCHES; b++)
        xfree(batches[b].bytes);
}

/* Found by fuzz_segment: a .log whose first batch header carries a base
 * offset near INT64_MIN made the offset arithmetic overflow (undefined
 * behaviour).  The segment must open (as empty) without it. */
TEST(recovery_fuzz_regression_offset_overflow)
{
    static const uint8_t log[] = {
        0x80, 0x0, 0x0, 0x0, 0x0, 0x0, 0x31, 0x0, 0x80, 0x0, 0x0, 0x0, 0x36, 0x38, 0x0, 0x16, 0x0, 0x2, 0x88,
        0x0, 0x62, 0x5b, 0xd0, 0xfd, 0xb8, 0x1b, 0xdf, 0xe5, 0x11, 0x39, 0x35, 0x16, 0x0, 0x2, 0x2, 0x88, 0x0,
        0x62, 0x5b, 0xd0, 0xfd, 0xb8, 0x1b, 0x0, 0x0, 0x69, 0x72, 0x74, 0x79, 0x8, 0x33, 0x2b, 0x79, 0xd6, 0xff,
        0xe9, 0xff, 0xfe, 0x3f, 0xd7, 0xff, 0x2, 0x92, 0x1, 0x92, 0x35, 0x1};
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/fz", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(log, 1, sizeof log, f) == sizeof log);
    fclose(f);
    int64_t cut;
    struct segment *s = seg_open_checked(dir, 0, false, true, &cut);
    CHECK(s != NULL);
    int64_t pos, base;
    int32_t size;
    CHECK_EQ(seg_find(s, 0, &pos, &size), -1);
    CHECK_EQ(seg_find_time(s, 0, &pos, &base), -1);
    seg_close(s);
    struct topic_settings ts = settings();
    ts.compact = true;
    struct plog *l = plog_open(dir, &ts, false);
    CHECK(l != NULL);
    CHECK_EQ(l->next_offset, 0);
    plog_close(l);
}
