/* test_cleaner.c: log compaction (storage/cleaner.c) on real partition logs.
 *
 * Each test appends batches of keyed (and keyless, and null-valued) records
 * with records_build_v2 and keeps a model of every record and batch.  After
 * a cleaning, the model applies the rules of cleaner.h to the range that
 * was cleaned (from the old cleaner offset to the new one): a record goes
 * when a later record of its key lies in the dirty range, or when it is a
 * tombstone older than delete.retention.ms.  The whole log is then read
 * back with plog_for_each_batch and must hold exactly the model's records,
 * at their original offsets, with their values, in batches that keep their
 * base offset, lastOffsetDelta and codec, a valid CRC, and (when untouched)
 * their original bytes.  The active segment must be byte-for-byte what it
 * was.  Also: the threaded path (schedule, wake, finish), forget and free
 * with a job pending, min.cleanable.dirty.ratio, min.compaction.lag.ms,
 * reopening (clean and unclean), a leftover *.log.cleaned, and reads of
 * compacted-away offsets. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"
#include "protocol/records.h"
#include "storage/cleaner.h"
#include "storage/partition_log.h"
#include "test.h"

#define T0 1700000000000LL
#define VLEN 48
#define MAXR 8000
#define MAXB 3000
#define NKEYS 4096

/* ---- the model ---------------------------------------------------------------- */

struct mrec {
    int64_t off;
    int key;    /* -1: no key */
    bool tomb;  /* null value */
    int64_t ts;
    bool alive;
};

struct mbatch {
    int64_t base;
    int32_t last_delta;
    int codec;
    int n;
    uint8_t *bytes; /* as stored (base offset written) */
    size_t len;
};

static struct mrec R[MAXR];
static int NR;
static struct mbatch B[MAXB];
static int NB;

static const char *logdir(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/compacted-0", test_tmpdir());
    return p;
}

static struct topic_settings settings(int64_t segment_bytes, int64_t delete_retention_ms)
{
    struct topic_settings s;
    topic_settings_resolve(&s, NULL, NULL);
    s.segment_bytes = segment_bytes;
    s.segment_ms = INT64_MAX / 4;
    s.index_interval_bytes = 256;
    s.compact = true;
    s.delete_policy = false;
    s.min_cleanable_ratio = 0.01;
    s.delete_retention_ms = delete_retention_ms;
    s.min_compaction_lag_ms = 0;
    return s;
}

static int value_of(int64_t off, uint8_t *buf)
{
    int n = snprintf((char *)buf, VLEN + 1, "value-of-%lld-", (long long)off);
    for (int i = n; i < VLEN; i++)
        buf[i] = (uint8_t)('a' + (off + i) % 26);
    return VLEN;
}

/* Appends one batch: record i has key keys[i] (-1: none), a null value when
 * tombs[i], timestamp ts + i.  Returns its base offset. */
static int64_t put(struct plog *l, int codec, const int *keys, const bool *tombs, int n, int64_t ts)
{
    CHECK(n >= 1 && n <= 16 && NR + n <= MAXR && NB < MAXB);
    int64_t base = l->next_offset;
    struct records_rec recs[16];
    char kbuf[16][16];
    uint8_t vbuf[16][VLEN + 1];
    for (int i = 0; i < n; i++) {
        recs[i] = (struct records_rec){NULL, -1, NULL, -1, ts + i, NULL, 0};
        if (keys[i] >= 0) {
            recs[i].key = (const uint8_t *)kbuf[i];
            recs[i].key_len = snprintf(kbuf[i], sizeof kbuf[i], "key-%d", keys[i]);
        }
        if (!(tombs && tombs[i])) {
            recs[i].value = vbuf[i];
            recs[i].value_len = value_of(base + i, vbuf[i]);
        }
    }
    struct obuf o;
    obuf_init(&o);
    CHECK_EQ(records_build_v2(&o, codec, ts, recs, n, -1, -1, -1), 0);
    int64_t got = -1;
    CHECK_EQ(plog_append(l, o.data, o.len, T0, &got), 0);
    CHECK_EQ(got, base);
    B[NB] = (struct mbatch){base, n - 1, codec, n, malloc(o.len), o.len};
    memcpy(B[NB].bytes, o.data, o.len);
    NB++;
    obuf_free(&o);
    for (int i = 0; i < n; i++)
        R[NR++] = (struct mrec){base + i, keys[i], tombs && tombs[i], ts + i, true};
    return base;
}

static int64_t put1(struct plog *l, int key, bool tomb, int64_t ts)
{
    return put(l, COMPRESS_NONE, &key, &tomb, 1, ts);
}

/* Appends single-record batches of fresh keys (10000+) until the active
 * segment rolls, so that everything before is sealed. */
static void fill_until_roll(struct plog *l, int64_t ts)
{
    static int fresh;
    int before = l->nsegs;
    while (l->nsegs == before)
        put1(l, 2000 + fresh++ % 2000, false, ts);
}

/* Applies a cleaning of [from, to) at now to the model. */
static int model_clean(int64_t from, int64_t to, int64_t now, int64_t retention)
{
    static int64_t latest[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        latest[k] = -1;
    for (int i = 0; i < NR; i++)
        if (R[i].alive && R[i].key >= 0 && R[i].off >= from && R[i].off < to && R[i].off > latest[R[i].key])
            latest[R[i].key] = R[i].off;
    int removed = 0;
    for (int i = 0; i < NR; i++) {
        struct mrec *r = &R[i];
        if (!r->alive || r->off >= to || r->key < 0)
            continue;
        if (latest[r->key] > r->off || (r->tomb && now - r->ts > retention)) {
            r->alive = false;
            removed++;
        }
    }
    return removed;
}

static const struct mbatch *model_batch(int64_t base)
{
    int lo = 0, hi = NB - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (B[mid].base == base)
            return &B[mid];
        if (B[mid].base < base)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* ---- reading the log back ------------------------------------------------------- */

struct got {
    int64_t off;
    int key;
    bool tomb;
    int64_t batch_base;
};

static struct got G[MAXR];
static int NG;
static int64_t G_last;
static int G_batches, G_rewritten, G_rewritten_compressed;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int collect(void *arg, const uint8_t *batch, size_t n)
{
    (void)arg;
    struct records_batch_info bi;
    CHECK_EQ(records_parse_header(batch, n, &bi), 0);
    CHECK_EQ(bi.magic, 2);
    CHECK_EQ((int64_t)bi.batch_length + 12, n);
    CHECK_EQ(crc32c(0, batch + RECORDS_CRC_START, n - RECORDS_CRC_START), bi.crc);
    const struct mbatch *mb = model_batch(bi.base_offset);
    if (!mb)
        fprintf(stderr, "  unknown batch at offset %lld\n", (long long)bi.base_offset);
    CHECK(mb != NULL);
    CHECK_EQ(bi.last_offset_delta, mb->last_delta);
    CHECK_EQ(bi.codec, mb->codec);
    CHECK(bi.record_count >= 1 && bi.record_count <= mb->n);
    G_batches++;
    if (bi.record_count == mb->n) {
        /* untouched: byte for byte as written */
        CHECK_EQ(n, mb->len);
        CHECK(memcmp(batch, mb->bytes, n) == 0);
    } else {
        /* rewritten: the same header but for length, CRC and count */
        CHECK(memcmp(batch, mb->bytes, 8) == 0);
        CHECK(memcmp(batch + 12, mb->bytes + 12, 5) == 0);
        CHECK(memcmp(batch + 21, mb->bytes + 21, 57 - 21) == 0);
        CHECK_EQ(be32(batch + 57), bi.record_count);
        G_rewritten++;
        if (bi.codec != COMPRESS_NONE)
            G_rewritten_compressed++;
    }
    struct obuf scratch;
    obuf_init(&scratch);
    const uint8_t *body;
    size_t len;
    CHECK_EQ(records_batch_body(batch, n, NULL, &scratch, &body, &len), KERR_NONE);
    if (bi.codec != COMPRESS_NONE) {
        /* the records were really compressed: they came out of scratch */
        CHECK(body == scratch.data);
        CHECK(len != n - RECORDS_V2_OVERHEAD || memcmp(body, batch + RECORDS_V2_OVERHEAD, len) != 0);
    }
    const uint8_t *p = body, *end = body + len;
    for (int32_t i = 0; i < bi.record_count; i++) {
        struct records_record_view rv;
        CHECK_EQ(records_record_next(&p, end, &rv), 0);
        CHECK(rv.offset_delta >= 0 && rv.offset_delta <= bi.last_offset_delta);
        int64_t off = bi.base_offset + rv.offset_delta;
        CHECK(off > G_last); /* increasing across the whole log */
        G_last = off;
        CHECK(NG < MAXR);
        struct got *g = &G[NG++];
        g->off = off;
        g->batch_base = bi.base_offset;
        g->key = -1;
        if (rv.key_len >= 0) {
            char k[32];
            CHECK(rv.key_len < (int)sizeof k);
            memcpy(k, rv.key, (size_t)rv.key_len);
            k[rv.key_len] = 0;
            CHECK_EQ(sscanf(k, "key-%d", &g->key), 1);
        }
        g->tomb = rv.value_len < 0;
        if (!g->tomb) {
            uint8_t want[VLEN + 1];
            CHECK_EQ(rv.value_len, value_of(off, want));
            CHECK(memcmp(rv.value, want, VLEN) == 0);
        }
    }
    CHECK(p == end);
    obuf_free(&scratch);
    return 0;
}

static void read_all(const struct plog *l)
{
    NG = 0;
    G_last = -1;
    G_batches = G_rewritten = G_rewritten_compressed = 0;
    CHECK_EQ(plog_for_each_batch(l, l->log_start_offset, collect, NULL), 0);
}

/* The log holds exactly the model's live records. */
static void verify(const struct plog *l)
{
    read_all(l);
    int k = 0;
    for (int i = 0; i < NR; i++) {
        if (!R[i].alive)
            continue;
        if (k >= NG || G[k].off != R[i].off)
            fprintf(stderr, "  expected offset %lld (key %d%s), log has %lld\n", (long long)R[i].off, R[i].key,
                    R[i].tomb ? ", tombstone" : "", k < NG ? (long long)G[k].off : -1LL);
        CHECK(k < NG);
        CHECK_EQ(G[k].off, R[i].off);
        CHECK_EQ(G[k].key, R[i].key);
        CHECK_EQ(G[k].tomb, R[i].tomb);
        k++;
    }
    if (k != NG)
        fprintf(stderr, "  the log has %d records past the model's last: first at %lld\n", NG - k,
                (long long)G[k].off);
    CHECK_EQ(NG, k);
}

/* Every live offset reads from a batch that holds it; a compacted-away
 * offset reads from the next batch that has a live record at or after it
 * (or a batch whose header range covers it). */
static void verify_reads(const struct plog *l)
{
    for (int i = 0; i < NR; i++) {
        struct plog_slice s;
        CHECK_EQ(plog_read(l, R[i].off, 1 << 20, true, &s), 0);
        /* the first live record at or after this offset */
        int j = i;
        while (j < NR && !R[j].alive)
            j++;
        if (j == NR) {
            continue;
        }
        CHECK(s.len >= RECORDS_V2_OVERHEAD);
        uint8_t h[RECORDS_V2_OVERHEAD];
        CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
        struct records_batch_info bi;
        records_parse_header(h, sizeof h, &bi);
        /* the batch must cover the offset, or start after it with nothing
         * live in between; either way it must not start past the next live
         * record */
        CHECK(bi.base_offset + bi.last_offset_delta >= R[i].off);
        CHECK(bi.base_offset <= R[j].off);
    }
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *n = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    CHECK(buf != NULL);
    CHECK_EQ(fread(buf, 1, (size_t)size, f), size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* "name size crc\n" for every file of dir (only *.log and *.cleaned files
 * when logs_only), sorted by name. */
static char *dir_snapshot_of(const char *dir, bool logs_only)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    CHECK(n >= 0);
    size_t cap = 64 + (size_t)n * 128, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t nl = strlen(nm);
        bool is_log = (nl > 4 && strcmp(nm + nl - 4, ".log") == 0) || (nl > 8 && strcmp(nm + nl - 8, ".cleaned") == 0);
        if (nm[0] != '.' && (is_log || !logs_only)) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]->d_name);
            size_t sz;
            uint8_t *b = slurp(p, &sz);
            len += (size_t)snprintf(out + len, cap - len, "%s %zu %08x\n", names[i]->d_name, sz,
                                    b ? crc32c(0, b, sz) : 0u);
            free(b);
        }
        free(names[i]);
    }
    free(names);
    return out;
}

static char *dir_snapshot(const char *dir)
{
    return dir_snapshot_of(dir, false);
}

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int64_t saved_cleaner_offset(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/cleaner-offset", logdir());
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long long v = -1;
    CHECK_EQ(fscanf(f, "%lld", &v), 1);
    fclose(f);
    return v;
}

static uint8_t *active_bytes(const struct plog *l, size_t *n)
{
    char p[600];
    snprintf(p, sizeof p, "%s.log", l->segs[l->nsegs - 1]->path);
    uint8_t *b = slurp(p, n);
    CHECK(b != NULL);
    CHECK_EQ(*n, l->segs[l->nsegs - 1]->size);
    return b;
}

/* A pseudo-random stream that is the same on every run. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

/* Appends nb batches of 1..5 records over `nkeys` keys; records with
 * (offset % 7 == 3) have no key. */
static void put_random(struct plog *l, int nb, int nkeys, int codec, int64_t ts)
{
    for (int b = 0; b < nb; b++) {
        int n = 1 + (int)(rnd() % 5), keys[16];
        for (int i = 0; i < n; i++)
            keys[i] = (l->next_offset + i) % 7 == 3 ? -1 : (int)(rnd() % (uint32_t)nkeys);
        put(l, codec, keys, NULL, n, ts + b * 10);
    }
}

/* One cleaning on the calling thread, checked against the model. */
static int clean_and_check(struct plog *l, int64_t now, bool expect_work)
{
    int64_t from = l->cleaner_offset;
    struct segment *active = l->segs[l->nsegs - 1];
    int nsegs = l->nsegs;
    size_t alen;
    uint8_t *abytes = active_bytes(l, &alen);
    int64_t size_before = plog_size(l);
    int rc = cleaner_clean_now(l, now);
    CHECK_EQ(rc, expect_work ? 1 : 0);
    /* the active segment is untouched */
    CHECK(l->segs[l->nsegs - 1] == active);
    CHECK_EQ(l->nsegs, nsegs);
    size_t alen2;
    uint8_t *abytes2 = active_bytes(l, &alen2);
    CHECK_EQ(alen2, alen);
    CHECK(memcmp(abytes, abytes2, alen) == 0);
    free(abytes);
    free(abytes2);
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    /* a rewritten segment keeps its offset range even when its last
     * records are gone */
    for (int i = 0; i + 1 < l->nsegs; i++)
        CHECK_EQ(l->segs[i]->next_offset, l->segs[i + 1]->base_offset);
    int removed = 0;
    if (expect_work) {
        removed = model_clean(from, l->cleaner_offset, now, l->settings->delete_retention_ms);
        CHECK_EQ(saved_cleaner_offset(), l->cleaner_offset);
        CHECK(plog_size(l) <= size_before);
        if (removed)
            CHECK(plog_size(l) < size_before);
    } else {
        CHECK_EQ(l->cleaner_offset, from);
        CHECK_EQ(plog_size(l), size_before);
    }
    verify(l);
    verify_reads(l);
    return removed;
}

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER;
static int wakes;

static void on_wake(void *arg)
{
    CHECK(arg == &wakes);
    pthread_mutex_lock(&wmu);
    wakes++;
    pthread_cond_broadcast(&wcv);
    pthread_mutex_unlock(&wmu);
}

static void wait_wakes(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&wmu);
    while (wakes < n && pthread_cond_timedwait(&wcv, &wmu, &ts) != ETIMEDOUT)
        ;
    int got = wakes;
    pthread_mutex_unlock(&wmu);
    CHECK_EQ(got, n);
}

/* ---- tests ----------------------------------------------------------------------- */

TEST(cleaner_keeps_latest_record_of_each_key)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    CHECK_EQ(l->cleaner_offset, 0);
    put_random(l, 80, 15, COMPRESS_NONE, T0);
    CHECK(l->nsegs >= 6);
    verify(l); /* the reader agrees with the model before cleaning */
    int64_t active_base = l->segs[l->nsegs - 1]->base_offset;
    int removed = clean_and_check(l, T0 + 100000, true);
    CHECK_EQ(l->cleaner_offset, active_base);
    CHECK(removed >= 100);
    CHECK(G_rewritten >= 10);
    /* every key with records in the cleaned range has exactly one left
     * there */
    int per_key[16] = {0};
    for (int i = 0; i < NG; i++)
        if (G[i].off < active_base && G[i].key >= 0)
            per_key[G[i].key]++;
    for (int k = 0; k < 15; k++)
        CHECK_EQ(per_key[k], 1);
    /* keyless records all stay */
    int keyless = 0, keyless_model = 0;
    for (int i = 0; i < NG; i++)
        keyless += G[i].key < 0;
    for (int i = 0; i < NR; i++)
        keyless_model += R[i].key < 0;
    CHECK_EQ(keyless, keyless_model);
    CHECK(keyless > 20);
    /* nothing new is dirty: a second cleaning does nothing at all */
    char *snap = dir_snapshot(logdir());
    CHECK_EQ(cleaner_clean_now(l, T0 + 200000), 0);
    char *snap2 = dir_snapshot(logdir());
    CHECK(strcmp(snap, snap2) == 0);
    free(snap);
    free(snap2);
    plog_close(l);
}

TEST(cleaner_second_pass_removes_records_replaced_later)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 60, 40, COMPRESS_NONE, T0);
    clean_and_check(l, T0 + 100000, true);
    int64_t first_to = l->cleaner_offset;
    /* new values for some of the old keys (0..9) and new keys */
    for (int b = 0; b < 40; b++) {
        int keys[3] = {b % 10, 100 + b, -1};
        put(l, COMPRESS_NONE, keys, NULL, 3, T0 + 50000 + b);
    }
    fill_until_roll(l, T0 + 60000);
    int removed = clean_and_check(l, T0 + 100000, true);
    CHECK(l->cleaner_offset > first_to);
    CHECK(removed >= 40);
    /* keys 0..9 now live only after the first cleaned range */
    for (int i = 0; i < NG; i++)
        if (G[i].key >= 0 && G[i].key < 10)
            CHECK(G[i].off >= first_to);
    /* keys 10..39 were not written again: one record each is left, for
     * many of them the one kept by the first cleaning */
    int per_key[40] = {0}, old_kept = 0;
    for (int i = 0; i < NG; i++)
        if (G[i].key >= 10 && G[i].key < 40) {
            per_key[G[i].key]++;
            old_kept += G[i].off < first_to;
        }
    for (int k = 10; k < 40; k++)
        CHECK_EQ(per_key[k], 1);
    CHECK(old_kept >= 15);
    plog_close(l);
}

TEST(cleaner_tombstones_live_for_delete_retention)
{
    const int64_t R_MS = 1000;
    struct topic_settings ts = settings(1200, R_MS);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    const int A = 1, Bk = 2, C = 3, D = 4;
    int64_t a_val = put1(l, A, false, T0);
    int64_t b_val = put1(l, Bk, false, T0 + 1);
    int64_t c_tomb = put1(l, C, true, T0 + 2); /* a tombstone with nothing before it */
    const int64_t TA = T0 + 100;
    int64_t a_tomb = put1(l, A, true, TA);
    fill_until_roll(l, T0 + 200);
    /* young: the tombstone stays, what it deletes goes */
    clean_and_check(l, TA + 500, true);
    CHECK(!R[a_val].alive);
    CHECK(R[a_tomb].alive);
    CHECK(R[b_val].alive);
    CHECK(R[c_tomb].alive);
    /* exactly delete.retention.ms old: still there */
    fill_until_roll(l, T0 + 300);
    clean_and_check(l, TA + R_MS, true);
    CHECK(R[a_tomb].alive);
    CHECK(!R[c_tomb].alive); /* T0+2 is more than R_MS before TA+R_MS */
    int found = 0;
    for (int i = 0; i < NG; i++)
        if (G[i].key == A) {
            CHECK(G[i].tomb);
            CHECK_EQ(G[i].off, a_tomb);
            found++;
        }
    CHECK_EQ(found, 1);
    /* older: gone.  An old tombstone in the active segment stays */
    fill_until_roll(l, T0 + 400);
    int64_t d_tomb = put1(l, D, true, T0);
    clean_and_check(l, TA + R_MS + 1, true);
    CHECK(!R[a_tomb].alive);
    CHECK(!R[c_tomb].alive);
    CHECK(R[b_val].alive);
    CHECK(R[d_tomb].alive);
    for (int i = 0; i < NG; i++) {
        CHECK(G[i].key != A);
        CHECK(G[i].key != C);
    }
    CHECK_EQ(G[NG - 1].off, d_tomb);
    CHECK(G[NG - 1].tomb);
    plog_close(l);
}

/* delete.retention.ms may be anything up to Long.MAX_VALUE (topic_config.c);
 * with the largest value a tombstone must never expire. */
TEST(cleaner_tombstone_kept_with_max_delete_retention)
{
    struct topic_settings ts = settings(1200, INT64_MAX);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put1(l, 1, false, T0);
    int64_t tomb = put1(l, 1, true, T0 + 100);
    fill_until_roll(l, T0 + 200);
    clean_and_check(l, T0 + 1000, true);
    CHECK(R[tomb].alive);
    CHECK_EQ(G[0].off, tomb);
    CHECK(G[0].tomb);
    plog_close(l);
}

TEST(cleaner_keeps_keyless_batches_byte_for_byte)
{
    struct topic_settings ts = settings(1500, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    int64_t keyless_bases[40];
    for (int b = 0; b < 40; b++) {
        int keyless[4] = {-1, -1, -1, -1}, keyed[4] = {b % 3, b % 3, 5, 6};
        keyless_bases[b] = put(l, COMPRESS_NONE, keyless, NULL, 4, T0 + b);
        put(l, COMPRESS_NONE, keyed, NULL, 4, T0 + b);
    }
    fill_until_roll(l, T0 + 100);
    clean_and_check(l, T0 + 100000, true);
    /* collect() compared every untouched batch with its original bytes;
     * each keyless batch must be among them, whole */
    for (int b = 0; b < 40; b++) {
        int n = 0;
        for (int i = 0; i < NG; i++)
            if (G[i].batch_base == keyless_bases[b])
                n++;
        CHECK_EQ(n, 4);
    }
    plog_close(l);
}

static void compressed_case(int codec)
{
    struct topic_settings ts = settings(2000, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    for (int b = 0; b < 50; b++) {
        int n = 3 + b % 5, keys[16];
        for (int i = 0; i < n; i++)
            keys[i] = i == 1 ? -1 : (int)(rnd() % 8);
        put(l, codec, keys, NULL, n, T0 + b * 10);
    }
    fill_until_roll(l, T0 + 1000);
    clean_and_check(l, T0 + 100000, true);
    CHECK(G_rewritten_compressed >= 5);
    plog_close(l);
    /* and after reopening */
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    verify(l);
    plog_close(l);
}

TEST(cleaner_rewrites_gzip_batches_compressed)
{
    compressed_case(COMPRESS_GZIP);
}

TEST(cleaner_rewrites_lz4_batches_compressed)
{
    compressed_case(COMPRESS_LZ4);
}

TEST(cleaner_rewrites_zstd_batches_compressed)
{
    compressed_case(COMPRESS_ZSTD);
}

TEST(cleaner_rewrites_snappy_batches_compressed)
{
    compressed_case(COMPRESS_SNAPPY);
}

/* Reads the base offset of the first batch plog_read returns for offset. */
static int64_t read_base(const struct plog *l, int64_t offset)
{
    struct plog_slice s;
    CHECK_EQ(plog_read(l, offset, 1 << 20, true, &s), 0);
    if (s.len == 0)
        return -1;
    uint8_t h[RECORDS_V2_OVERHEAD];
    CHECK_EQ(pread(s.fd, h, sizeof h, s.pos), (ssize_t)sizeof h);
    struct records_batch_info bi;
    records_parse_header(h, sizeof h, &bi);
    return bi.base_offset;
}

static void replaced_batches_case(int64_t segment_bytes)
{
    struct topic_settings ts = settings(segment_bytes, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    int a[2] = {1, 2}, b[1] = {3}, d[3] = {4, 5, 6}, e[1] = {5}, f[1] = {6};
    CHECK_EQ(put(l, COMPRESS_NONE, a, NULL, 2, T0), 0);     /* 0-1: replaced by C */
    CHECK_EQ(put(l, COMPRESS_NONE, b, NULL, 1, T0), 2);     /* 2 */
    CHECK_EQ(put(l, COMPRESS_NONE, a, NULL, 2, T0), 3);     /* 3-4 */
    CHECK_EQ(put(l, COMPRESS_NONE, d, NULL, 3, T0), 5);     /* 5-7: keeps only 5 */
    CHECK_EQ(put(l, COMPRESS_NONE, e, NULL, 1, T0), 8);     /* 8 */
    CHECK_EQ(put(l, COMPRESS_NONE, f, NULL, 1, T0), 9);     /* 9 */
    CHECK_EQ(put(l, COMPRESS_NONE, a, NULL, 2, T0), 10);    /* 10-11: replaces 3-4 */
    CHECK_EQ(put(l, COMPRESS_NONE, b, NULL, 1, T0), 12);    /* 12: replaces 2 */
    fill_until_roll(l, T0);
    clean_and_check(l, T0 + 1000, true);
    /* the batches at 0, 2 and 3 are gone entirely */
    CHECK(model_batch(0) != NULL);
    for (int i = 0; i < NG; i++)
        CHECK(G[i].batch_base != 0 && G[i].batch_base != 2 && G[i].batch_base != 3);
    CHECK_EQ(G[0].off, 5);
    CHECK_EQ(G[0].batch_base, 5);
    CHECK_EQ(G[1].off, 8);
    CHECK_EQ(G[2].off, 9);
    CHECK_EQ(G[3].off, 10);
    CHECK_EQ(G[4].off, 11);
    CHECK_EQ(G[5].off, 12);
    /* reads of compacted offsets go to the next batch still there */
    CHECK_EQ(read_base(l, 0), 5);
    CHECK_EQ(read_base(l, 1), 5);
    CHECK_EQ(read_base(l, 2), 5);
    CHECK_EQ(read_base(l, 4), 5);
    CHECK_EQ(read_base(l, 5), 5);
    /* 6 and 7 are inside the batch at 5 (its header still spans 5-7) */
    CHECK_EQ(read_base(l, 6), 5);
    CHECK_EQ(read_base(l, 7), 5);
    CHECK_EQ(read_base(l, 8), 8);
    CHECK_EQ(read_base(l, 12), 12);
    CHECK_EQ(read_base(l, l->next_offset), -1);
    plog_close(l);
    /* the same after a clean reopen */
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    verify(l);
    CHECK_EQ(read_base(l, 0), 5);
    CHECK_EQ(read_base(l, 3), 5);
    CHECK_EQ(read_base(l, 6), 5);
    plog_close(l);
}

TEST(cleaner_drops_replaced_batches_and_reads_skip_them)
{
    replaced_batches_case(4000); /* all in one segment */
}

TEST(cleaner_drops_replaced_batches_one_batch_per_segment)
{
    replaced_batches_case(60); /* every batch rolls: whole segments become empty */
}

TEST(cleaner_respects_min_cleanable_dirty_ratio)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 60, 10, COMPRESS_NONE, T0);
    clean_and_check(l, T0 + 100000, true);
    /* one more sealed segment of dirty data */
    int64_t from = l->cleaner_offset;
    fill_until_roll(l, T0 + 200);
    int64_t dirty = 0, total = 0;
    for (int i = 0; i < l->nsegs - 1; i++) {
        total += l->segs[i]->size;
        if (l->segs[i]->next_offset > from)
            dirty += l->segs[i]->size;
    }
    CHECK(dirty > 0 && dirty < total);
    double ratio = (double)dirty / (double)total;
    ts.min_cleanable_ratio = ratio + 0.001;
    clean_and_check(l, T0 + 100000, false);
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 0);
    CHECK(!l->cleaning);
    cleaner_free(c);
    ts.min_cleanable_ratio = ratio - 0.001;
    clean_and_check(l, T0 + 100000, true);
    CHECK(l->cleaner_offset > from);
    plog_close(l);
}

TEST(cleaner_respects_min_compaction_lag)
{
    struct topic_settings ts = settings(1000, 86400000);
    ts.min_compaction_lag_ms = 5000;
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    /* 60 batches, 1 s apart in record time */
    for (int b = 0; b < 60; b++) {
        int keys[3] = {b % 4, (b + 1) % 4, -1};
        put(l, COMPRESS_NONE, keys, NULL, 3, T0 + b * 1000);
    }
    CHECK(l->nsegs >= 8);
    /* too early for even the first sealed segment */
    int64_t first_max = l->segs[0]->max_timestamp;
    clean_and_check(l, first_max + 5000 - 1, false);
    /* old enough: the first k sealed segments */
    int k = 3;
    int64_t now = l->segs[k - 1]->max_timestamp + 5000;
    CHECK(now - l->segs[k]->max_timestamp < 5000);
    char snaps[64][64];
    int nsegs = l->nsegs;
    CHECK(nsegs <= 64);
    /* the segments from k on must not change */
    size_t sz[64];
    uint8_t *bytes[64];
    for (int i = k; i < nsegs; i++) {
        snprintf(snaps[i], sizeof snaps[i], "%020lld.log", (long long)l->segs[i]->base_offset);
        char p[700];
        snprintf(p, sizeof p, "%s/%s", logdir(), snaps[i]);
        bytes[i] = slurp(p, &sz[i]);
    }
    clean_and_check(l, now, true);
    CHECK_EQ(l->cleaner_offset, l->segs[k]->base_offset);
    for (int i = k; i < nsegs; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", logdir(), snaps[i]);
        size_t n;
        uint8_t *b = slurp(p, &n);
        CHECK_EQ(n, sz[i]);
        CHECK(memcmp(b, bytes[i], n) == 0);
        free(b);
        free(bytes[i]);
    }
    /* records of keys 0..3 from segment k on stay, even those replaced
     * later: they were not cleanable yet */
    int after = 0;
    for (int i = 0; i < NR; i++)
        if (R[i].off >= l->segs[k]->base_offset) {
            CHECK(R[i].alive);
            after++;
        }
    CHECK(after > 100);
    plog_close(l);
}

static void reopen_case(int64_t segment_bytes)
{
    struct topic_settings ts = settings(segment_bytes, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 60, 6, COMPRESS_NONE, T0);
    clean_and_check(l, T0 + 100000, true);
    int64_t next = l->next_offset, cleaned = l->cleaner_offset;
    int nsegs = l->nsegs;
    plog_close(l);

    /* clean reopen */
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    CHECK_EQ(l->next_offset, next);
    CHECK_EQ(l->cleaner_offset, cleaned);
    CHECK_EQ(l->nsegs, nsegs);
    CHECK_EQ(l->log_start_offset, 0);
    verify(l);
    verify_reads(l);
    CHECK_EQ(cleaner_clean_now(l, T0 + 200000), 0);
    CHECK_EQ(put1(l, 1, false, T0 + 5000), next);
    next++;
    nsegs = l->nsegs;
    plog_close(l);

    /* unclean reopen: the active segment is checked */
    l = plog_open(logdir(), &ts, false);
    CHECK(l != NULL);
    CHECK_EQ(l->next_offset, next);
    CHECK_EQ(l->cleaner_offset, cleaned);
    verify(l);
    verify_reads(l);
    plog_close(l);

    /* unclean, nothing known synced and no index files: every segment is
     * scanned */
    char p[700];
    snprintf(p, sizeof p, "%s/recovery-point", logdir());
    CHECK_EQ(unlink(p), 0);
    DIR *d = opendir(logdir());
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if ((n > 6 && strcmp(e->d_name + n - 6, ".index") == 0) ||
            (n > 10 && strcmp(e->d_name + n - 10, ".timeindex") == 0)) {
            snprintf(p, sizeof p, "%s/%s", logdir(), e->d_name);
            CHECK_EQ(unlink(p), 0);
        }
    }
    closedir(d);
    l = plog_open(logdir(), &ts, false);
    CHECK(l != NULL);
    CHECK_EQ(l->next_offset, next);
    CHECK_EQ(l->nsegs, nsegs);
    CHECK_EQ(l->cleaner_offset, cleaned);
    verify(l);
    verify_reads(l);
    CHECK_EQ(put1(l, 2, false, T0 + 6000), next);
    verify(l);
    plog_close(l);
}

TEST(cleaner_result_survives_reopen)
{
    reopen_case(1200);
}

TEST(cleaner_result_with_empty_segments_survives_reopen)
{
    reopen_case(150); /* about one batch per segment: many segments empty */
}

/* A crash after compaction and before the first checkpoint flush, then a
 * change of cleanup.policy from compact to delete: the compacted segments
 * are checked on start-up and must still be served whole. */
TEST(cleaner_result_survives_unclean_reopen_as_delete_policy)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 60, 6, COMPRESS_NONE, T0);
    clean_and_check(l, T0 + 100000, true);
    int64_t next = l->next_offset;
    plog_close(l);
    char p[700];
    snprintf(p, sizeof p, "%s/recovery-point", logdir());
    CHECK_EQ(unlink(p), 0);
    ts.compact = false;
    ts.delete_policy = true;
    l = plog_open(logdir(), &ts, false);
    CHECK(l != NULL);
    if (l->next_offset != next)
        fprintf(stderr, "  log end %lld after reopen, was %lld\n", (long long)l->next_offset, (long long)next);
    CHECK_EQ(l->next_offset, next);
    verify(l);
    plog_close(l);
}

TEST(cleaner_leftover_cleaned_file_is_removed_on_open)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 40, 6, COMPRESS_NONE, T0);
    CHECK(l->nsegs >= 3);
    int64_t base0 = l->segs[0]->base_offset, base1 = l->segs[1]->base_offset;
    plog_close(l);
    char *before = dir_snapshot_of(logdir(), true);
    /* a half-written compaction result of segment 0 (the bytes of segment 1) */
    char from[700], to[700];
    snprintf(from, sizeof from, "%s/%020lld.log", logdir(), (long long)base1);
    snprintf(to, sizeof to, "%s/%020lld.log.cleaned", logdir(), (long long)base0);
    size_t n;
    uint8_t *b = slurp(from, &n);
    FILE *f = fopen(to, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(b, 1, n / 2, f), n / 2);
    fclose(f);
    free(b);
    for (int clean = 1; clean >= 0; clean--) {
        l = plog_open(logdir(), &ts, clean);
        CHECK(l != NULL);
        CHECK(access(to, F_OK) != 0);
        CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
        verify(l); /* the original stands, nothing was compacted */
        CHECK_EQ(l->cleaner_offset, 0);
        plog_close(l);
        char *after = dir_snapshot_of(logdir(), true);
        CHECK(strcmp(before, after) == 0);
        free(after);
        f = fopen(to, "wb");
        CHECK(f != NULL);
        fclose(f); /* an empty one for the unclean round */
    }
    free(before);
}

TEST(cleaner_does_nothing_for_delete_policy)
{
    struct topic_settings ts = settings(1200, 86400000);
    ts.compact = false;
    ts.delete_policy = true;
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 40, 3, COMPRESS_NONE, T0);
    char *before = dir_snapshot(logdir());
    CHECK_EQ(cleaner_clean_now(l, T0 + 100000), 0);
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 0);
    cleaner_free(c);
    char *after = dir_snapshot(logdir());
    CHECK(strcmp(before, after) == 0);
    CHECK_EQ(l->cleaner_offset, 0);
    verify(l);
    free(before);
    free(after);
    plog_close(l);
}

/* ---- the cleaner thread ---------------------------------------------------------- */

TEST(cleaner_thread_schedule_wake_finish)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 80, 12, COMPRESS_NONE, T0);
    int64_t dirty_to = l->segs[l->nsegs - 1]->base_offset;
    int64_t size_before = plog_size(l);
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_bytes_removed(c), 0);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    CHECK(l->cleaning);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 0); /* busy */
    CHECK_EQ(cleaner_clean_now(l, T0 + 100000), 0);         /* already being cleaned */
    /* the loop goes on appending meanwhile, rolling a new segment */
    int64_t size_appended = plog_size(l);
    fill_until_roll(l, T0 + 5000);
    put_random(l, 3, 12, COMPRESS_NONE, T0 + 6000);
    size_appended = plog_size(l) - size_appended;
    wait_wakes(1);
    /* nothing is swapped in before cleaner_finish */
    CHECK(count_suffix(logdir(), ".log.cleaned") >= 1);
    CHECK_EQ(l->cleaner_offset, 0);
    verify(l);
    size_t alen;
    uint8_t *abytes = active_bytes(l, &alen);
    cleaner_finish(c);
    CHECK(!l->cleaning);
    CHECK_EQ(l->cleaner_offset, dirty_to);
    CHECK_EQ(saved_cleaner_offset(), dirty_to);
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    size_t alen2;
    uint8_t *abytes2 = active_bytes(l, &alen2);
    CHECK_EQ(alen, alen2);
    CHECK(memcmp(abytes, abytes2, alen) == 0);
    free(abytes);
    free(abytes2);
    int removed = model_clean(0, dirty_to, T0 + 100000, ts.delete_retention_ms);
    CHECK(removed >= 100);
    verify(l);
    verify_reads(l);
    CHECK_EQ(cleaner_bytes_removed(c), size_before + size_appended - plog_size(l));
    CHECK(cleaner_bytes_removed(c) > 0);
    /* the segment rolled meanwhile is dirty now; after it nothing is */
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    wait_wakes(2);
    cleaner_finish(c);
    model_clean(dirty_to, l->cleaner_offset, T0 + 100000, ts.delete_retention_ms);
    verify(l);
    CHECK_EQ(l->cleaner_offset, l->segs[l->nsegs - 1]->base_offset);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 0);
    cleaner_finish(c); /* nothing to do */
    cleaner_free(c);
    plog_close(l);
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    verify(l);
    plog_close(l);
}

static void forget_case(bool after_wake)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 80, 12, COMPRESS_NONE, T0);
    plog_close(l); /* index files of every segment on disk: a stable snapshot */
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    char *before = dir_snapshot(logdir());
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    if (after_wake) {
        wait_wakes(1);
        CHECK(count_suffix(logdir(), ".log.cleaned") >= 1);
        cleaner_forget(c, l);
    } else {
        cleaner_forget(c, l);
        wait_wakes(1);
    }
    cleaner_finish(c);
    /* the log is as it was and the temporary files are gone */
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    char *after = dir_snapshot(logdir());
    if (strcmp(before, after) != 0)
        fprintf(stderr, "  before:\n%s  after:\n%s", before, after);
    CHECK(strcmp(before, after) == 0);
    CHECK_EQ(l->cleaner_offset, 0);
    CHECK_EQ(saved_cleaner_offset(), -1);
    verify(l);
    cleaner_free(c);
    free(before);
    free(after);
    plog_close(l);
}

TEST(cleaner_forget_before_the_job_ends)
{
    forget_case(false);
}

TEST(cleaner_forget_after_the_job_ends)
{
    forget_case(true);
}

TEST(cleaner_free_with_a_finished_job_pending)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 80, 12, COMPRESS_NONE, T0);
    plog_close(l);
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    char *before = dir_snapshot(logdir());
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    wait_wakes(1);
    CHECK(count_suffix(logdir(), ".log.cleaned") >= 1);
    cleaner_free(c); /* the job is abandoned */
    CHECK(!l->cleaning);
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    char *after = dir_snapshot(logdir());
    CHECK(strcmp(before, after) == 0);
    verify(l);
    /* and it can be cleaned later */
    clean_and_check(l, T0 + 100000, true);
    free(before);
    free(after);
    plog_close(l);
}

TEST(cleaner_free_right_after_schedule)
{
    struct topic_settings ts = settings(1200, 86400000);
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    put_random(l, 80, 12, COMPRESS_NONE, T0);
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    cleaner_free(c); /* queued, running or done: nothing is applied */
    CHECK(!l->cleaning);
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    CHECK_EQ(l->cleaner_offset, 0);
    verify(l);
    clean_and_check(l, T0 + 100000, true);
    plog_close(l);
}

/* Segments deleted (DeleteRecords or retention) while their compaction was
 * under way: cleaner_finish must drop those results, never bring the
 * deleted files back, and leave the segments created since untouched.  All
 * batches have the same size, so segments do too: a segment made after
 * the deletion looks like a deleted one except for its identity. */
TEST(cleaner_finish_after_segments_were_deleted)
{
    struct topic_settings ts = settings(1000, 86400000);
    ts.delete_policy = true;
    ts.retention_ms = -1;
    ts.retention_bytes = -1;
    struct plog *l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    for (int b = 0; l->nsegs < 9; b++)
        put1(l, 1000 + b % 4, false, T0 + b);
    int64_t seg_size = l->segs[0]->size;
    for (int i = 0; i < l->nsegs - 1; i++)
        CHECK_EQ(l->segs[i]->size, seg_size);
    int64_t dirty_to = l->segs[l->nsegs - 1]->base_offset;
    struct cleaner *c = cleaner_new(on_wake, &wakes);
    CHECK(c != NULL);
    CHECK_EQ(cleaner_maybe_schedule(c, l, T0 + 100000), 1);
    wait_wakes(1);
    /* the first two segments go */
    int64_t start = l->segs[2]->base_offset;
    int64_t gone0 = l->segs[0]->base_offset, gone1 = l->segs[1]->base_offset;
    CHECK_EQ(plog_delete_records(l, start), 0);
    CHECK_EQ(l->segs[0]->base_offset, start);
    /* two new segments of the same size */
    int64_t new_base = l->segs[l->nsegs - 1]->base_offset;
    for (int b = 0; l->segs[l->nsegs - 1]->base_offset == new_base || l->nsegs < 9; b++)
        put1(l, 1100 + b, false, T0 + 50000 + b);
    int nsegs = l->nsegs;
    cleaner_finish(c);
    CHECK_EQ(l->nsegs, nsegs);
    CHECK_EQ(count_suffix(logdir(), ".cleaned"), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/%020lld.log", logdir(), (long long)gone0);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/%020lld.log", logdir(), (long long)gone1);
    if (access(p, F_OK) == 0)
        fprintf(stderr, "  the deleted segment %lld is back on disk\n", (long long)gone1);
    CHECK(access(p, F_OK) != 0);
    CHECK_EQ(count_suffix(logdir(), ".log"), nsegs);
    for (int i = 0; i < l->nsegs; i++) {
        snprintf(p, sizeof p, "%s/%020lld.log", logdir(), (long long)l->segs[i]->base_offset);
        struct stat st;
        CHECK_EQ(stat(p, &st), 0);
        CHECK_EQ(st.st_size, l->segs[i]->size);
    }
    model_clean(0, dirty_to, T0 + 100000, ts.delete_retention_ms);
    for (int i = 0; i < NR; i++)
        if (R[i].off < start)
            R[i].alive = false;
    verify(l);
    cleaner_free(c);
    plog_close(l);
    /* and the same after reopening */
    l = plog_open(logdir(), &ts, true);
    CHECK(l != NULL);
    CHECK_EQ(l->nsegs, nsegs);
    CHECK_EQ(l->log_start_offset, start);
    verify(l);
    plog_close(l);
}
