/* test_producer_state.c: the idempotent producer state of a partition
 * (storage/producer_state.c): the sequence rules of producer_state.h (start
 * at 0, duplicates of the last five batches, gaps, fenced and bumped epochs,
 * wrap-around at INT32_MAX), a table of thousands of producers, expiry of
 * idle producers, the producer-state file (round trip, every truncation,
 * every flipped bit, wrong magic, well-checksummed but malformed contents),
 * and every injected allocation failure during update, save, load and
 * expire. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "storage/producer_state.h"
#include "test.h"

/* ---- helpers --------------------------------------------------------------- */

static const char *state_path(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/producer-state", test_tmpdir());
    return p;
}

static int check(const struct pstate *ps, int64_t id, int16_t epoch, int32_t seq, int32_t delta, int64_t *dup_base,
                 int32_t *dup_delta)
{
    int64_t b = -99;
    int32_t d = -99;
    int rc = pstate_check(ps, id, epoch, seq, delta, &b, &d);
    if (dup_base)
        *dup_base = b;
    if (dup_delta)
        *dup_delta = d;
    return rc;
}

/* Asserts that (id, epoch, seq, delta) is a duplicate answered with base and
 * delta. */
static void expect_dup(const struct pstate *ps, int64_t id, int16_t epoch, int32_t seq, int32_t delta, int64_t base)
{
    int64_t b;
    int32_t d;
    CHECK_EQ(check(ps, id, epoch, seq, delta, &b, &d), PSTATE_DUPLICATE);
    CHECK_EQ(b, base);
    CHECK_EQ(d, delta);
}

/* The entry of id, found by scanning the whole table (independent of the
 * hashing under test). */
static const struct pstate_entry *entry_of(const struct pstate *ps, int64_t id)
{
    const struct pstate_entry *found = NULL;
    for (int i = 0; i < ps->cap; i++)
        if (ps->entries[i].producer_id == id) {
            CHECK(found == NULL); /* never twice */
            found = &ps->entries[i];
        }
    return found;
}

static int live_entries(const struct pstate *ps)
{
    int n = 0;
    for (int i = 0; i < ps->cap; i++)
        if (ps->entries[i].producer_id >= 0)
            n++;
    return n;
}

static void expect_same_state(const struct pstate *a, const struct pstate *b)
{
    CHECK_EQ(a->count, b->count);
    CHECK_EQ(live_entries(a), a->count);
    CHECK_EQ(live_entries(b), b->count);
    for (int i = 0; i < a->cap; i++) {
        const struct pstate_entry *x = &a->entries[i];
        if (x->producer_id < 0)
            continue;
        const struct pstate_entry *y = entry_of(b, x->producer_id);
        CHECK(y != NULL);
        CHECK_EQ(y->epoch, x->epoch);
        CHECK_EQ(y->last_ms, x->last_ms);
        CHECK_EQ(y->nbatches, x->nbatches);
        for (int k = 0; k < x->nbatches; k++) {
            CHECK_EQ(y->batches[k].first_seq, x->batches[k].first_seq);
            CHECK_EQ(y->batches[k].last_seq, x->batches[k].last_seq);
            CHECK_EQ(y->batches[k].base_offset, x->batches[k].base_offset);
            CHECK_EQ(y->batches[k].last_offset_delta, x->batches[k].last_offset_delta);
        }
    }
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
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

static void spit(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(p, 1, n, f), n);
    CHECK_EQ(fclose(f), 0);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Rewrites the trailing CRC-32C so that only the contents are wrong. */
static void fix_crc(uint8_t *p, size_t n)
{
    put_be32(p + n - 4, crc32c(0, p, n - 4));
}

/* A state with a few producers of 1..5 batches, some sequences wrapping. */
static void small_state(struct pstate *ps)
{
    pstate_init(ps);
    /* producer 7: 7 batches of 3 records: the last 5 are kept */
    for (int b = 0; b < 7; b++)
        CHECK_EQ(pstate_update(ps, 7, 2, b * 3, 2, 100 + b * 10, 5000 + b), 0);
    /* producer 1: one batch */
    CHECK_EQ(pstate_update(ps, 1, 0, 0, 0, 42, 1234), 0);
    /* producer 2^40+5: epoch 32767, a batch across the wrap */
    CHECK_EQ(pstate_update(ps, ((int64_t)1 << 40) + 5, 32767, INT32_MAX - 1, 3, 9000000000LL, -7), 0);
}

static int load_into_fresh(struct pstate *ps, const char *path, int64_t *offset)
{
    pstate_init(ps);
    *offset = pstate_load(ps, path);
    return ps->count;
}

/* ---- sequence rules ------------------------------------------------------- */

TEST(pstate_new_producer_must_start_at_zero)
{
    struct pstate ps;
    pstate_init(&ps);
    CHECK_EQ(check(&ps, 5, 0, 0, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 5, 0, 0, 9, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 5, 0, 1, 0, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 5, 3, 17, 2, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 5, 0, -1, 0, NULL, NULL), -45);
    /* the same with other producers in the table */
    CHECK_EQ(pstate_update(&ps, 6, 0, 0, 4, 0, 1), 0);
    CHECK_EQ(check(&ps, 5, 0, 5, 0, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 5, 0, 0, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(ps.count, 1);
    pstate_free(&ps);
    CHECK(ps.entries == NULL);
    CHECK_EQ(ps.count, 0);
}

TEST(pstate_sequence_must_continue_without_gap)
{
    struct pstate ps;
    pstate_init(&ps);
    CHECK_EQ(pstate_update(&ps, 9, 1, 0, 4, 100, 1), 0); /* seq 0..4 */
    CHECK_EQ(check(&ps, 9, 1, 5, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 9, 1, 5, 99, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 9, 1, 6, 0, NULL, NULL), -45); /* a gap */
    CHECK_EQ(check(&ps, 9, 1, 4, 0, NULL, NULL), -45); /* overlaps, not a duplicate */
    CHECK_EQ(check(&ps, 9, 1, 0, 3, NULL, NULL), -45); /* same first, other last */
    CHECK_EQ(check(&ps, 9, 1, 0, 5, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 9, 1, 1, 3, NULL, NULL), -45);
    expect_dup(&ps, 9, 1, 0, 4, 100);
    CHECK_EQ(pstate_update(&ps, 9, 1, 5, 0, 105, 2), 0); /* seq 5 */
    CHECK_EQ(check(&ps, 9, 1, 6, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 9, 1, 5, 1, NULL, NULL), -45);
    expect_dup(&ps, 9, 1, 5, 0, 105);
    expect_dup(&ps, 9, 1, 0, 4, 100);
    const struct pstate_entry *e = entry_of(&ps, 9);
    CHECK(e != NULL);
    CHECK_EQ(e->nbatches, 2);
    CHECK_EQ(e->last_ms, 2);
    pstate_free(&ps);
}

TEST(pstate_duplicates_of_last_five_batches_only)
{
    struct pstate ps;
    pstate_init(&ps);
    /* 8 batches of 3 records: seq 3b..3b+2 at offsets 1000+10b */
    for (int b = 0; b < 8; b++) {
        CHECK_EQ(check(&ps, 77, 0, b * 3, 2, NULL, NULL), PSTATE_APPEND);
        CHECK_EQ(pstate_update(&ps, 77, 0, b * 3, 2, 1000 + b * 10, b), 0);
    }
    for (int b = 3; b < 8; b++)
        expect_dup(&ps, 77, 0, b * 3, 2, 1000 + b * 10);
    /* older than the last five: out of order, not a duplicate */
    for (int b = 0; b < 3; b++)
        CHECK_EQ(check(&ps, 77, 0, b * 3, 2, NULL, NULL), -45);
    const struct pstate_entry *e = entry_of(&ps, 77);
    CHECK_EQ(e->nbatches, PSTATE_BATCHES);
    CHECK_EQ(e->batches[0].first_seq, 9);
    CHECK_EQ(e->batches[4].first_seq, 21);
    CHECK_EQ(e->batches[4].last_seq, 23);
    CHECK_EQ(check(&ps, 77, 0, 24, 0, NULL, NULL), PSTATE_APPEND);
    /* a duplicate from another producer id does not count */
    CHECK_EQ(check(&ps, 78, 0, 21, 2, NULL, NULL), -45);
    pstate_free(&ps);
}

TEST(pstate_epoch_fencing_and_bump)
{
    struct pstate ps;
    pstate_init(&ps);
    CHECK_EQ(pstate_update(&ps, 3, 5, 0, 1, 10, 1), 0);
    CHECK_EQ(pstate_update(&ps, 3, 5, 2, 1, 12, 2), 0);
    /* lower epoch: fenced, whatever the sequence (even a duplicate's) */
    CHECK_EQ(check(&ps, 3, 4, 4, 0, NULL, NULL), -47);
    CHECK_EQ(check(&ps, 3, 4, 0, 1, NULL, NULL), -47);
    CHECK_EQ(check(&ps, 3, 0, 0, 0, NULL, NULL), -47);
    /* higher epoch: only from sequence 0 */
    CHECK_EQ(check(&ps, 3, 6, 0, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 3, 6, 4, 0, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 3, 6, 2, 1, NULL, NULL), -45); /* an old batch's seqs under a new epoch */
    /* a higher epoch with seq 0 and the same range as a known batch is new */
    CHECK_EQ(check(&ps, 3, 6, 0, 1, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(pstate_update(&ps, 3, 6, 0, 2, 20, 3), 0);
    const struct pstate_entry *e = entry_of(&ps, 3);
    CHECK_EQ(e->epoch, 6);
    CHECK_EQ(e->nbatches, 1); /* the old epoch's batches are gone */
    CHECK_EQ(check(&ps, 3, 5, 4, 0, NULL, NULL), -47);
    CHECK_EQ(check(&ps, 3, 5, 2, 1, NULL, NULL), -47);
    CHECK_EQ(check(&ps, 3, 6, 3, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 3, 6, 0, 1, NULL, NULL), -45); /* old epoch's (0,1) is no duplicate now */
    expect_dup(&ps, 3, 6, 0, 2, 20);
    /* int16 epochs above 32767 do not exist; 32767 is above 6 */
    CHECK_EQ(check(&ps, 3, 32767, 0, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 3, 32767, 1, 0, NULL, NULL), -45);
    pstate_free(&ps);
}

TEST(pstate_sequence_wraps_at_int32_max)
{
    struct pstate ps;
    pstate_init(&ps);
    /* a producer near the top (as after a long life or a loaded state) */
    CHECK_EQ(pstate_update(&ps, 11, 0, INT32_MAX - 2, 2, 500, 1), 0); /* ..INT32_MAX */
    const struct pstate_entry *e = entry_of(&ps, 11);
    CHECK_EQ(e->batches[0].last_seq, INT32_MAX);
    CHECK_EQ(check(&ps, 11, 0, 0, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 11, 0, INT32_MAX, 0, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 11, 0, 1, 0, NULL, NULL), -45);
    expect_dup(&ps, 11, 0, INT32_MAX - 2, 2, 500);
    /* a batch across the wrap: INT32_MAX-1, INT32_MAX, 0, 1 */
    CHECK_EQ(pstate_update(&ps, 12, 0, INT32_MAX - 1, 3, 900, 1), 0);
    e = entry_of(&ps, 12);
    CHECK_EQ(e->batches[0].last_seq, 1);
    CHECK_EQ(check(&ps, 12, 0, 2, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&ps, 12, 0, 0, 0, NULL, NULL), -45);
    CHECK_EQ(check(&ps, 12, 0, INT32_MAX - 1, 2, NULL, NULL), -45);
    expect_dup(&ps, 12, 0, INT32_MAX - 1, 3, 900);
    CHECK_EQ(pstate_update(&ps, 12, 0, 2, 5, 904, 2), 0);
    CHECK_EQ(check(&ps, 12, 0, 8, 0, NULL, NULL), PSTATE_APPEND);
    expect_dup(&ps, 12, 0, INT32_MAX - 1, 3, 900);
    expect_dup(&ps, 12, 0, 2, 5, 904);
    pstate_free(&ps);
}

/* ---- many producers ------------------------------------------------------- */

#define MANY 5000

static int64_t many_id(int i)
{
    /* ids sharing their low bits stress the probing as well */
    return i % 2 ? (int64_t)i << 20 : (int64_t)i * 7919 + 123456789;
}

TEST(pstate_thousands_of_producers_grow_and_stay_findable)
{
    struct pstate ps;
    pstate_init(&ps);
    for (int i = 0; i < MANY; i++) {
        CHECK_EQ(check(&ps, many_id(i), (int16_t)(i % 7), 0, i % 4, NULL, NULL), PSTATE_APPEND);
        CHECK_EQ(pstate_update(&ps, many_id(i), (int16_t)(i % 7), 0, i % 4, 10LL * i, i), 0);
        CHECK_EQ(ps.count, i + 1);
        CHECK(ps.count * 4 <= ps.cap * 3);
        CHECK_EQ(ps.cap & (ps.cap - 1), 0);
    }
    for (int i = 0; i < MANY; i++) {
        expect_dup(&ps, many_id(i), (int16_t)(i % 7), 0, i % 4, 10LL * i);
        CHECK_EQ(check(&ps, many_id(i), (int16_t)(i % 7), i % 4 + 1, 0, NULL, NULL), PSTATE_APPEND);
    }
    /* a second batch each: no new entries */
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(pstate_update(&ps, many_id(i), (int16_t)(i % 7), i % 4 + 1, 0, 10LL * i + 5, i), 0);
    CHECK_EQ(ps.count, MANY);
    CHECK_EQ(live_entries(&ps), MANY);
    for (int i = 0; i < MANY; i++) {
        expect_dup(&ps, many_id(i), (int16_t)(i % 7), i % 4 + 1, 0, 10LL * i + 5);
        CHECK_EQ(entry_of(&ps, many_id(i))->nbatches, 2);
    }
    CHECK_EQ(check(&ps, 999999999999LL, 0, 1, 0, NULL, NULL), -45);
    pstate_free(&ps);
}

TEST(pstate_expire_drops_only_idle_producers)
{
    struct pstate ps;
    pstate_init(&ps);
    /* even i: last append at 1000; odd i: at 5000; i % 10 == 3: exactly at
     * the limit (idle == max_idle is not "longer than") */
    for (int i = 0; i < 1000; i++) {
        int64_t last = i % 10 == 3 ? 4000 : i % 2 ? 5000 : 1000;
        CHECK_EQ(pstate_update(&ps, many_id(i), 1, 0, 1, i, last), 0);
    }
    pstate_expire(&ps, 6000, 2000);
    CHECK_EQ(ps.count, 500);
    CHECK_EQ(live_entries(&ps), 500);
    for (int i = 0; i < 1000; i++) {
        if (i % 2) {
            expect_dup(&ps, many_id(i), 1, 0, 1, i);
            CHECK_EQ(check(&ps, many_id(i), 1, 2, 0, NULL, NULL), PSTATE_APPEND);
        } else {
            CHECK(entry_of(&ps, many_id(i)) == NULL);
            CHECK_EQ(check(&ps, many_id(i), 1, 2, 0, NULL, NULL), -45); /* unknown again */
            CHECK_EQ(check(&ps, many_id(i), 1, 0, 1, NULL, NULL), PSTATE_APPEND);
        }
    }
    /* the table still takes new producers and finds all */
    for (int i = 1000; i < 3000; i++)
        CHECK_EQ(pstate_update(&ps, many_id(i), 0, 0, 0, i, 7000), 0);
    CHECK_EQ(ps.count, 2500);
    for (int i = 1; i < 1000; i += 2)
        expect_dup(&ps, many_id(i), 1, 0, 1, i);
    for (int i = 1000; i < 3000; i++)
        expect_dup(&ps, many_id(i), 0, 0, 0, i);
    /* nothing idle: nothing changes */
    pstate_expire(&ps, 7000, 100000);
    CHECK_EQ(ps.count, 2500);
    /* everything idle: empty */
    pstate_expire(&ps, 1000000, 10);
    CHECK_EQ(ps.count, 0);
    CHECK_EQ(live_entries(&ps), 0);
    CHECK_EQ(check(&ps, many_id(1), 1, 2, 0, NULL, NULL), -45);
    CHECK_EQ(pstate_update(&ps, 5, 0, 0, 0, 1, 1), 0);
    expect_dup(&ps, 5, 0, 0, 0, 1);
    pstate_free(&ps);
}

/* ---- the file ------------------------------------------------------------- */

TEST(pstate_save_load_round_trip)
{
    struct pstate a, b;
    small_state(&a);
    /* and many more producers with 1..5 batches */
    for (int i = 0; i < 700; i++)
        for (int k = 0; k <= i % 6; k++)
            CHECK_EQ(pstate_update(&a, many_id(i) + 1000, (int16_t)(i * 37 % 32768), k * 2, 1,
                                   (int64_t)i * 100 + k * 2, 1700000000000LL + i),
                     0);
    CHECK_EQ(pstate_save(&a, state_path(), 987654321012LL), 0);
    int64_t off;
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, 987654321012LL);
    CHECK_EQ(b.count, 703);
    expect_same_state(&a, &b);
    expect_same_state(&b, &a);
    /* what the loaded state answers */
    expect_dup(&b, 7, 2, 18, 2, 160);
    expect_dup(&b, 7, 2, 6, 2, 120);                  /* the 3rd of 7: one of the last five */
    CHECK_EQ(check(&b, 7, 2, 3, 2, NULL, NULL), -45); /* the 2nd: older than five */
    CHECK_EQ(check(&b, 7, 2, 21, 0, NULL, NULL), PSTATE_APPEND);
    CHECK_EQ(check(&b, 7, 1, 21, 0, NULL, NULL), -47);
    expect_dup(&b, ((int64_t)1 << 40) + 5, 32767, INT32_MAX - 1, 3, 9000000000LL);
    CHECK_EQ(check(&b, ((int64_t)1 << 40) + 5, 32767, 2, 0, NULL, NULL), PSTATE_APPEND);
    const struct pstate_entry *e = entry_of(&b, 1);
    CHECK_EQ(e->last_ms, 1234);
    CHECK_EQ(entry_of(&b, ((int64_t)1 << 40) + 5)->last_ms, -7);
    /* no temp file left beside it */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", state_path());
    CHECK(access(tmp, F_OK) != 0);
    /* saving again replaces the file */
    CHECK_EQ(pstate_update(&a, 7, 3, 0, 0, 5555, 9), 0);
    CHECK_EQ(pstate_save(&a, state_path(), 5), 0);
    pstate_free(&b);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, 5);
    expect_same_state(&a, &b);
    CHECK_EQ(entry_of(&b, 7)->epoch, 3);
    CHECK_EQ(entry_of(&b, 7)->nbatches, 1);
    pstate_free(&a);
    pstate_free(&b);
}

TEST(pstate_save_load_empty_state)
{
    struct pstate a, b;
    pstate_init(&a);
    CHECK_EQ(pstate_save(&a, state_path(), 0), 0);
    size_t n;
    uint8_t *bytes = slurp(state_path(), &n);
    CHECK_EQ(n, 20); /* magic, offset, count, crc */
    CHECK_EQ(bytes[0], 'P');
    CHECK_EQ(bytes[3], '1');
    free(bytes);
    int64_t off;
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, 0);
    CHECK_EQ(b.count, 0);
    pstate_free(&b);
    /* a missing file */
    unlink(state_path());
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);
    CHECK_EQ(b.cap, 0);
}

TEST(pstate_file_layout_is_as_documented)
{
    struct pstate a;
    pstate_init(&a);
    CHECK_EQ(pstate_update(&a, 0x0102030405060708LL, 0x0a0b, 3, 2, 0x1112131415161718LL, 0x2122232425262728LL), 0);
    CHECK_EQ(pstate_save(&a, state_path(), 0x3132333435363738LL), 0);
    size_t n;
    uint8_t *p = slurp(state_path(), &n);
    static const uint8_t want[] = {
        0x50, 0x53, 0x54, 0x31,                         /* magic */
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, /* offset */
        0, 0, 0, 1,                                     /* count */
        1, 2, 3, 4, 5, 6, 7, 8,                         /* id */
        0x0a, 0x0b,                                     /* epoch */
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* last ms */
        1,                                              /* n */
        0, 0, 0, 3, 0, 0, 0, 5,                         /* first, last seq */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* base offset */
        0, 0, 0, 2,                                     /* last offset delta */
    };
    CHECK_EQ(n, sizeof want + 4);
    CHECK(memcmp(p, want, sizeof want) == 0);
    uint32_t crc = (uint32_t)p[n - 4] << 24 | (uint32_t)p[n - 3] << 16 | (uint32_t)p[n - 2] << 8 | p[n - 1];
    CHECK_EQ(crc, crc32c(0, p, n - 4));
    free(p);
    pstate_free(&a);
}

TEST(pstate_load_refuses_every_truncation)
{
    struct pstate a, b;
    small_state(&a);
    CHECK_EQ(pstate_save(&a, state_path(), 777), 0);
    size_t n;
    uint8_t *good = slurp(state_path(), &n);
    CHECK(n > 100);
    size_t base = alloc_live_bytes();
    for (size_t len = 0; len < n; len++) {
        spit(state_path(), good, len);
        int64_t off;
        load_into_fresh(&b, state_path(), &off);
        if (off != -1 || b.count != 0 || b.cap != 0)
            fprintf(stderr, "  truncated to %zu bytes\n", len);
        CHECK_EQ(off, -1);
        CHECK_EQ(b.count, 0);
        CHECK_EQ(b.cap, 0);
        CHECK_EQ(alloc_live_bytes(), base);
    }
    /* and bytes appended after the CRC */
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, good, n);
    longer[n] = 0;
    spit(state_path(), longer, n + 1);
    int64_t off;
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);
    free(longer);
    /* the whole file still loads */
    spit(state_path(), good, n);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, 777);
    expect_same_state(&a, &b);
    pstate_free(&b);
    free(good);
    pstate_free(&a);
}

TEST(pstate_load_refuses_every_flipped_bit)
{
    struct pstate a, b;
    small_state(&a);
    CHECK_EQ(pstate_save(&a, state_path(), 777), 0);
    size_t n;
    uint8_t *good = slurp(state_path(), &n);
    size_t base = alloc_live_bytes();
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            good[i] ^= (uint8_t)(1 << bit);
            spit(state_path(), good, n);
            good[i] ^= (uint8_t)(1 << bit);
            int64_t off;
            load_into_fresh(&b, state_path(), &off);
            if (off != -1)
                fprintf(stderr, "  byte %zu bit %d\n", i, bit);
            CHECK_EQ(off, -1);
            CHECK_EQ(b.count, 0);
            CHECK_EQ(b.cap, 0);
            CHECK_EQ(alloc_live_bytes(), base);
        }
    free(good);
    pstate_free(&a);
}

/* Damage that the CRC does not catch because the CRC was recomputed: the
 * contents themselves must be judged. */
TEST(pstate_load_refuses_malformed_contents_with_good_crc)
{
    struct pstate a, b;
    small_state(&a);
    CHECK_EQ(pstate_save(&a, state_path(), 777), 0);
    size_t n;
    uint8_t *good = slurp(state_path(), &n);
    uint8_t *p = malloc(n + 64);
    int64_t off;
    size_t base = alloc_live_bytes();

    /* wrong magic */
    memcpy(p, good, n);
    p[0] = 'X';
    fix_crc(p, n);
    spit(state_path(), p, n);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);

    /* a count larger than the entries */
    for (uint32_t cnt = 4; cnt < 7; cnt++) {
        memcpy(p, good, n);
        put_be32(p + 12, cnt);
        fix_crc(p, n);
        spit(state_path(), p, n);
        load_into_fresh(&b, state_path(), &off);
        CHECK_EQ(off, -1);
        CHECK_EQ(b.count, 0);
        CHECK_EQ(b.cap, 0);
    }
    memcpy(p, good, n);
    put_be32(p + 12, 0xffffffffu);
    fix_crc(p, n);
    spit(state_path(), p, n);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);

    /* a count smaller than the entries (bytes left over) */
    memcpy(p, good, n);
    put_be32(p + 12, 2);
    fix_crc(p, n);
    spit(state_path(), p, n);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);
    CHECK_EQ(b.cap, 0);

    /* the first entry (at byte 16) claiming 6 batches, or more than it has */
    for (int nb = 6; nb < 256; nb += 83) {
        memcpy(p, good, n);
        p[16 + 18] = (uint8_t)nb;
        fix_crc(p, n);
        spit(state_path(), p, n);
        load_into_fresh(&b, state_path(), &off);
        CHECK_EQ(off, -1);
        CHECK_EQ(b.count, 0);
    }

    /* one producer with 6 whole batches: more than a state ever holds */
    {
        uint8_t q[16 + 19 + 6 * 20 + 4];
        memcpy(q, good, 16); /* magic, offset */
        put_be32(q + 12, 1);
        memset(q + 16, 0, sizeof q - 16);
        q[16 + 7] = 9; /* id 9, epoch 0, last ms 0 */
        q[16 + 18] = 6;
        for (int k = 0; k < 6; k++) {
            uint8_t *bp = q + 16 + 19 + k * 20;
            put_be32(bp, (uint32_t)k);      /* first seq */
            put_be32(bp + 4, (uint32_t)k);  /* last seq */
            bp[15] = (uint8_t)(10 + k);     /* base offset */
        }
        fix_crc(q, sizeof q);
        spit(state_path(), q, sizeof q);
        load_into_fresh(&b, state_path(), &off);
        CHECK_EQ(off, -1);
        CHECK_EQ(b.count, 0);
        /* the same with 5 is good */
        q[16 + 18] = 5;
        memmove(q + 16 + 19 + 5 * 20, q + 16 + 19 + 6 * 20, 4);
        fix_crc(q, sizeof q - 20);
        spit(state_path(), q, sizeof q - 20);
        load_into_fresh(&b, state_path(), &off);
        CHECK_EQ(off, 777);
        CHECK_EQ(b.count, 1);
        expect_dup(&b, 9, 0, 4, 0, 14);
        pstate_free(&b);
    }

    /* a negative producer id in the last entry: the entries before it were
     * already taken, and must be dropped again */
    {
        /* find the last entry: walk the entries */
        size_t at = 16, last = 0;
        for (int i = 0; i < 3; i++) {
            last = at;
            at += 19 + (size_t)good[at + 18] * 20;
        }
        CHECK_EQ(at, n - 4);
        memcpy(p, good, n);
        p[last] = 0x80;
        fix_crc(p, n);
        spit(state_path(), p, n);
        load_into_fresh(&b, state_path(), &off);
        CHECK_EQ(off, -1);
        CHECK_EQ(b.count, 0);
        CHECK_EQ(b.cap, 0);
    }

    /* garbage after the last entry */
    memcpy(p, good, n - 4);
    memset(p + n - 4, 0, 20);
    fix_crc(p, n + 20);
    spit(state_path(), p, n + 20);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, -1);
    CHECK_EQ(b.count, 0);
    CHECK_EQ(alloc_live_bytes(), base);

    /* and the untouched file loads */
    spit(state_path(), good, n);
    load_into_fresh(&b, state_path(), &off);
    CHECK_EQ(off, 777);
    CHECK_EQ(b.count, 3);
    pstate_free(&b);
    free(p);
    free(good);
    pstate_free(&a);
}

/* ---- allocation failures ---------------------------------------------------- */

TEST(pstate_update_survives_every_allocation_failure)
{
    int failures_seen = 0;
    for (long n = 0;; n++) {
        size_t base = alloc_live_bytes();
        struct pstate ps;
        pstate_init(&ps);
        bool ok[200];
        alloc_fail_after(n);
        int failed = 0;
        for (int i = 0; i < 200; i++) {
            int rc = pstate_update(&ps, many_id(i), 0, 0, 2, i * 3, i);
            CHECK(rc == 0 || rc == -1);
            ok[i] = rc == 0;
            failed += rc != 0;
        }
        alloc_fail_after(-1);
        /* what was recorded is whole; what failed left no trace */
        int recorded = 0;
        for (int i = 0; i < 200; i++) {
            if (ok[i]) {
                expect_dup(&ps, many_id(i), 0, 0, 2, i * 3);
                recorded++;
            } else {
                CHECK_EQ(check(&ps, many_id(i), 0, 0, 2, NULL, NULL), PSTATE_APPEND);
                CHECK(entry_of(&ps, many_id(i)) == NULL);
            }
        }
        CHECK_EQ(ps.count, recorded);
        /* and it works again once memory is back */
        CHECK_EQ(pstate_update(&ps, 424242, 0, 0, 0, 1, 1), 0);
        expect_dup(&ps, 424242, 0, 0, 0, 1);
        pstate_free(&ps);
        CHECK_EQ(alloc_live_bytes(), base);
        if (!failed)
            break;
        failures_seen++;
    }
    CHECK(failures_seen >= 4); /* 16, 32, 64, 128, 256 slots */
}

TEST(pstate_save_survives_every_allocation_failure)
{
    struct pstate a, b;
    small_state(&a);
    for (int i = 0; i < 300; i++)
        CHECK_EQ(pstate_update(&a, many_id(i) + 50, 0, 0, 0, i, i), 0);
    CHECK_EQ(pstate_save(&a, state_path(), 1), 0); /* the previous good file */
    int failures_seen = 0;
    for (long n = 0;; n++) {
        size_t base = alloc_live_bytes();
        alloc_fail_after(n);
        int rc = pstate_save(&a, state_path(), 1000 + n);
        alloc_fail_after(-1);
        CHECK_EQ(alloc_live_bytes(), base);
        int64_t off;
        load_into_fresh(&b, state_path(), &off);
        /* either the new file or the old one, never a damaged one */
        CHECK_EQ(off, rc == 0 ? 1000 + n : 1);
        expect_same_state(&a, &b);
        pstate_free(&b);
        if (rc == 0)
            break;
        CHECK_EQ(rc, -1);
        failures_seen++;
        CHECK_EQ(pstate_save(&a, state_path(), 1), 0);
    }
    CHECK(failures_seen >= 1);
    pstate_free(&a);
}

TEST(pstate_load_survives_every_allocation_failure)
{
    struct pstate a, b;
    small_state(&a);
    for (int i = 0; i < 300; i++)
        CHECK_EQ(pstate_update(&a, many_id(i) + 50, 0, 0, 0, i, i), 0);
    CHECK_EQ(pstate_save(&a, state_path(), 31337), 0);
    int failures_seen = 0;
    for (long n = 0;; n++) {
        size_t base = alloc_live_bytes();
        pstate_init(&b);
        alloc_fail_after(n);
        int64_t off = pstate_load(&b, state_path());
        alloc_fail_after(-1);
        if (off == -1) {
            /* all or nothing */
            CHECK_EQ(b.count, 0);
            CHECK_EQ(b.cap, 0);
            CHECK(b.entries == NULL);
            failures_seen++;
        } else {
            CHECK_EQ(off, 31337);
            expect_same_state(&a, &b);
        }
        pstate_free(&b);
        CHECK_EQ(alloc_live_bytes(), base);
        if (off != -1)
            break;
    }
    CHECK(failures_seen >= 5); /* the buffer, then each table growth */
    pstate_free(&a);
}

/* pstate_expire rebuilds its table; when that needs memory and none is
 * left, the producers that are not idle must still be there: losing one
 * turns its next batch into OUT_OF_ORDER_SEQUENCE_NUMBER. */
TEST(pstate_expire_under_allocation_failure_keeps_active_producers)
{
    for (long n = 0; n < 12; n++) {
        size_t base = alloc_live_bytes();
        struct pstate ps;
        pstate_init(&ps);
        for (int i = 0; i < 200; i++)
            CHECK_EQ(pstate_update(&ps, many_id(i), 0, 0, 0, i, i % 2 ? 5000 : 1000), 0);
        alloc_fail_after(n);
        pstate_expire(&ps, 6000, 2000);
        alloc_fail_after(-1);
        for (int i = 1; i < 200; i += 2) {
            if (check(&ps, many_id(i), 0, 0, 0, NULL, NULL) != PSTATE_DUPLICATE)
                fprintf(stderr, "  allocation %ld failed: active producer %d lost\n", n, i);
            expect_dup(&ps, many_id(i), 0, 0, 0, i);
        }
        CHECK(live_entries(&ps) >= 100);
        CHECK_EQ(live_entries(&ps), ps.count);
        pstate_free(&ps);
        CHECK_EQ(alloc_live_bytes(), base);
    }
}
