/* test_store.c: the keyed in-memory state store (stream/store.c): put, get,
 * delete and overwrite; growth; empty keys and keys with embedded NULs;
 * backward-shift deletion and tombstones checked against a simple reference
 * model through a long random run of put/del/load/unload/flush (every key
 * and every counter compared after each batch, and the probe invariant of
 * the table checked slot by slot); what store_flush_dirty delivers; a flush
 * callback that fails; and allocation failures that leave the store as it
 * was. */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "stream/store.h"
#include "test.h"

static int get_is(const struct store *s, const void *k, size_t kl, const char *v, size_t vl)
{
    size_t n = 12345;
    const void *p = store_get(s, k, kl, &n);
    if (!v)
        return p == NULL;
    return p && n == vl && (vl == 0 || memcmp(p, v, vl) == 0);
}

#define PUTS(s, k, v) store_put((s), (k), strlen(k), (v), strlen(v))
/* get_is for C-string key and value (v NULL: absent). */
static int gets_is(const struct store *s, const char *k, const char *v)
{
    return get_is(s, k, strlen(k), v, v ? strlen(v) : 0);
}
#define GETS(s, k, v) gets_is((s), (k), (v))

TEST(store_put_get_del_overwrite)
{
    struct store s;
    size_t base = alloc_live_bytes();

    store_init(&s);
    CHECK(GETS(&s, "a", NULL)); /* an empty store has no table yet */
    CHECK_EQ(store_del(&s, "a", 1), 0);
    store_unload(&s, "a", 1);
    CHECK_EQ(PUTS(&s, "a", "one"), 0);
    CHECK_EQ(PUTS(&s, "b", "two"), 0);
    CHECK(GETS(&s, "a", "one"));
    CHECK(GETS(&s, "b", "two"));
    CHECK(GETS(&s, "c", NULL));
    CHECK(GETS(&s, "ab", NULL));
    CHECK_EQ(s.live, 2);
    CHECK_EQ(s.count, 2);
    CHECK_EQ(s.ndirty, 2);
    CHECK_EQ(s.bytes, 1 + 3 + 1 + 3);

    CHECK_EQ(PUTS(&s, "a", "uno!"), 0);
    CHECK(GETS(&s, "a", "uno!"));
    CHECK_EQ(s.live, 2);
    CHECK_EQ(s.ndirty, 2);
    CHECK_EQ(s.bytes, 1 + 4 + 1 + 3);

    CHECK_EQ(store_del(&s, "a", 1), 0);
    CHECK(GETS(&s, "a", NULL));
    CHECK_EQ(s.live, 1);
    CHECK_EQ(s.count, 2); /* the tombstone stays until flushed */
    CHECK_EQ(s.bytes, 1 + 1 + 3);
    CHECK_EQ(store_del(&s, "a", 1), 0); /* deleting twice is harmless */
    CHECK_EQ(s.live, 1);
    CHECK_EQ(s.ndirty, 2);

    /* A put over a tombstone revives the key. */
    CHECK_EQ(PUTS(&s, "a", "again"), 0);
    CHECK(GETS(&s, "a", "again"));
    CHECK_EQ(s.live, 2);
    CHECK_EQ(s.count, 2);

    /* A zero-length value is a value, not a deletion. */
    CHECK_EQ(store_put(&s, "z", 1, "", 0), 0);
    CHECK(get_is(&s, "z", 1, "", 0));
    CHECK_EQ(s.live, 3);

    store_free(&s);
    CHECK_EQ(alloc_live_bytes(), base);
    CHECK_EQ(s.cap, 0);
}

TEST(store_binary_and_empty_keys)
{
    struct store s;
    store_init(&s);
    static const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a'}, k4[] = {0};
    CHECK_EQ(store_put(&s, k1, 3, "v1", 2), 0);
    CHECK_EQ(store_put(&s, k2, 3, "v2", 2), 0);
    CHECK_EQ(store_put(&s, k3, 1, "v3", 2), 0);
    CHECK_EQ(store_put(&s, k4, 1, "v4\0x", 4), 0);
    CHECK_EQ(store_put(&s, "", 0, "empty", 5), 0);
    CHECK(get_is(&s, k1, 3, "v1", 2));
    CHECK(get_is(&s, k2, 3, "v2", 2));
    CHECK(get_is(&s, k3, 1, "v3", 2));
    CHECK(get_is(&s, k4, 1, "v4\0x", 4));
    CHECK(get_is(&s, "", 0, "empty", 5));
    CHECK(get_is(&s, k1, 2, NULL, 0)); /* "a\0" is yet another key */
    CHECK_EQ(s.live, 5);
    CHECK_EQ(store_del(&s, "", 0), 0);
    CHECK(get_is(&s, "", 0, NULL, 0));
    CHECK(get_is(&s, k3, 1, "v3", 2));
    CHECK_EQ(store_del(&s, k1, 3), 0);
    CHECK(get_is(&s, k2, 3, "v2", 2));
    CHECK(get_is(&s, k1, 3, NULL, 0));
    CHECK_EQ(s.live, 3);
    store_free(&s);
}

TEST(store_grows_through_many_keys)
{
    struct store s;
    char k[32], v[32];
    size_t bytes = 0;

    store_init(&s);
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(k, sizeof k, "key-%d", i), vl = snprintf(v, sizeof v, "val-%d", i * 7);
        CHECK_EQ(store_put(&s, k, (size_t)kl, v, (size_t)vl), 0);
        bytes += (size_t)(kl + vl);
        CHECK(s.count * 4 <= s.cap * 3);
    }
    CHECK_EQ(s.live, 20000);
    CHECK_EQ(s.bytes, bytes);
    CHECK(s.cap >= 20000 * 4 / 3 && (s.cap & (s.cap - 1)) == 0);
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(k, sizeof k, "key-%d", i), vl = snprintf(v, sizeof v, "val-%d", i * 7);
        CHECK(get_is(&s, k, (size_t)kl, v, (size_t)vl));
    }
    CHECK(GETS(&s, "key-20000", NULL));
    store_free(&s);
}

/* --- a reference model and a long random run -------------------------------- */

#define NKEYS 600
#define MAXV 24

struct model_key {
    char key[12];
    size_t klen;
    int present;        /* in the store: a value or a dirty tombstone */
    int has_val;
    char val[MAXV];
    size_t vlen;
    int dirty;
    int flushed;        /* seen by the flush callback in the current flush */
};

static struct model_key model[NKEYS];

/* Keys of 0..11 bytes, some with NULs, one empty; a few share prefixes. */
static void model_init(void)
{
    memset(model, 0, sizeof model);
    for (int i = 0; i < NKEYS; i++) {
        struct model_key *m = &model[i];
        m->klen = (size_t)(i % 12);
        for (size_t j = 0; j < m->klen; j++)
            m->key[j] = (char)((i * 31 + (int)j * 7) % 5 == 0 ? 0 : 'a' + (i + (int)j * 13) % 26);
        /* make the keys distinct: the first 2 bytes carry i when long enough */
        if (m->klen >= 2) {
            m->key[0] = (char)(i & 0xff);
            m->key[1] = (char)(i >> 8);
        }
    }
    /* Short keys (0 or 1 bytes) would collide: only one of each length. */
    for (int i = 0; i < NKEYS; i++)
        if (model[i].klen < 2 && i >= 12)
            model[i].klen = 2, model[i].key[0] = (char)(i & 0xff), model[i].key[1] = (char)(i >> 8);
}

/* Checks every key and every counter against the model, and that each
 * occupied slot can be reached from its home without crossing an empty one
 * (what backward-shift deletion must keep true). */
static void model_check(const struct store *s)
{
    size_t live = 0, count = 0, ndirty = 0, bytes = 0;
    for (int i = 0; i < NKEYS; i++) {
        const struct model_key *m = &model[i];
        if (!get_is(s, m->key, m->klen, m->has_val ? m->val : NULL, m->vlen)) {
            fprintf(stderr, "  key %d: store and model differ\n", i);
            CHECK(0);
        }
        live += (size_t)m->has_val;
        count += (size_t)m->present;
        ndirty += (size_t)(m->present && m->dirty);
        bytes += m->present ? m->klen + (m->has_val ? m->vlen : 0) : 0;
    }
    CHECK_EQ(s->live, live);
    CHECK_EQ(s->count, count);
    CHECK_EQ(s->ndirty, ndirty);
    CHECK_EQ(s->bytes, bytes);
    size_t occupied = 0, mask = s->cap - 1;
    for (size_t j = 0; j < s->cap; j++) {
        const struct store_entry *e = &s->slots[j];
        if (!e->key) {
            CHECK(!e->val && !e->dirty);
            continue;
        }
        occupied++;
        CHECK(e->val || e->dirty); /* a clean tombstone must not exist */
        CHECK_EQ(e->hash, store_hash(e->key, e->klen));
        for (size_t k = e->hash & mask; k != j; k = (k + 1) & mask)
            CHECK(s->slots[k].key);
    }
    CHECK_EQ(occupied, count);
}

static int model_flush_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    int *calls = arg;
    for (int i = 0; i < NKEYS; i++) {
        struct model_key *m = &model[i];
        if (m->klen == klen && !memcmp(m->key, key, klen)) {
            CHECK(m->present && m->dirty && !m->flushed);
            m->flushed = 1;
            if (m->has_val)
                CHECK(val && vlen == m->vlen && !memcmp(val, m->val, vlen));
            else
                CHECK(!val);
            (*calls)++;
            return 0;
        }
    }
    CHECK(0);
    return -1;
}

static void set_val(struct model_key *m, unsigned *seed)
{
    m->vlen = (size_t)rand_r(seed) % MAXV;
    for (size_t j = 0; j < m->vlen; j++)
        m->val[j] = (char)rand_r(seed);
}

TEST(store_random_operations_match_a_model)
{
    struct store s;
    unsigned seed = 4242;
    size_t base = alloc_live_bytes();
    int flushes = 0, removed_tombstones = 0;

    model_init();
    store_init(&s);
    for (int step = 0; step < 200000; step++) {
        /* Bias towards a subset of keys in phases so the table fills, then
         * empties, then fills again (growth and long deletion runs). */
        int phase = (step / 20000) % 3;
        int range = phase == 0 ? NKEYS : phase == 1 ? NKEYS / 3 : NKEYS / 10 + 1;
        struct model_key *m = &model[rand_r(&seed) % range];
        int op = rand_r(&seed) % 100;

        if (op < 40) {
            set_val(m, &seed);
            CHECK_EQ(store_put(&s, m->key, m->klen, m->val, m->vlen), 0);
            m->present = m->has_val = m->dirty = 1;
        } else if (op < 70) {
            CHECK_EQ(store_del(&s, m->key, m->klen), 0);
            if (m->has_val) {
                m->has_val = 0;
                m->vlen = 0;
                m->dirty = 1;
            }
        } else if (op < 85) {
            set_val(m, &seed);
            CHECK_EQ(store_load(&s, m->key, m->klen, m->val, m->vlen), 0);
            if (!m->present)
                m->dirty = 0;
            m->present = m->has_val = 1;
        } else if (op < 99) {
            store_unload(&s, m->key, m->klen);
            m->present = m->has_val = m->dirty = 0;
            m->vlen = 0;
        } else {
            int calls = 0, want = 0;
            for (int i = 0; i < NKEYS; i++) {
                model[i].flushed = 0;
                want += model[i].present && model[i].dirty;
            }
            CHECK_EQ(store_flush_dirty(&s, model_flush_cb, &calls), 0);
            CHECK_EQ(calls, want);
            for (int i = 0; i < NKEYS; i++) {
                struct model_key *f = &model[i];
                CHECK_EQ(f->flushed, f->present && f->dirty);
                if (f->present && !f->has_val) {
                    f->present = 0;
                    removed_tombstones++;
                }
                f->dirty = 0;
            }
            flushes++;
        }
        if (step % 97 == 0)
            model_check(&s);
    }
    model_check(&s);
    CHECK(flushes > 1000);
    CHECK(removed_tombstones > 1000);
    store_free(&s);
    CHECK_EQ(alloc_live_bytes(), base);
}

static int nop_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)arg, (void)key, (void)klen, (void)val, (void)vlen;
    return 0;
}

/* Puts keys that all hash to the same home slot of a 64-slot table, then
 * deletes them in every position of the run (and across the wrap-around). */
TEST(store_backward_shift_in_one_probe_run)
{
    /* Find 12 keys whose home in a 64-slot table is 62 (so the run wraps). */
    char keys[12][16];
    size_t nk = 0;
    for (unsigned i = 0; nk < 12; i++) {
        snprintf(keys[nk], sizeof keys[nk], "k%u", i);
        if ((store_hash(keys[nk], strlen(keys[nk])) & 63) == 62)
            nk++;
    }
    for (size_t victim = 0; victim < nk; victim++) {
        struct store s;
        store_init(&s);
        for (size_t i = 0; i < nk; i++)
            CHECK_EQ(store_load(&s, keys[i], strlen(keys[i]), keys[i], strlen(keys[i])), 0);
        CHECK_EQ(s.cap, 64);
        store_unload(&s, keys[victim], strlen(keys[victim]));
        for (size_t i = 0; i < nk; i++)
            CHECK(GETS(&s, keys[i], i == victim ? NULL : keys[i]));
        /* and a tombstone in the run dropped by a flush */
        size_t other = (victim + 5) % nk;
        CHECK_EQ(store_del(&s, keys[other], strlen(keys[other])), 0);
        CHECK_EQ(store_flush_dirty(&s, nop_cb, NULL), 0);
        for (size_t i = 0; i < nk; i++)
            CHECK(GETS(&s, keys[i], i == victim || i == other ? NULL : keys[i]));
        CHECK_EQ(s.count, nk - 2);
        store_free(&s);
    }
}

/* --- flushing ---------------------------------------------------------------- */

struct seen {
    int n;
    int fail_at;            /* return -1 on this call (1-based); 0: never */
    char keys[16][8];
    char vals[16][8];       /* "-" for a tombstone */
};

static int seen_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct seen *sn = arg;
    CHECK(sn->n < 16 && klen < 8 && vlen < 8);
    sn->n++;
    if (sn->fail_at && sn->n == sn->fail_at)
        return -1;
    memcpy(sn->keys[sn->n - 1], key, klen);
    sn->keys[sn->n - 1][klen] = 0;
    if (val) {
        memcpy(sn->vals[sn->n - 1], val, vlen);
        sn->vals[sn->n - 1][vlen] = 0;
    } else {
        strcpy(sn->vals[sn->n - 1], "-");
    }
    return 0;
}

static const char *seen_val(const struct seen *sn, const char *key)
{
    for (int i = 0; i < sn->n; i++)
        if (!strcmp(sn->keys[i], key))
            return sn->vals[i];
    return NULL;
}

TEST(store_flush_delivers_the_dirty_keys_once)
{
    struct store s;
    struct seen sn;

    store_init(&s);
    CHECK_EQ(store_load(&s, "l1", 2, "x", 1), 0);   /* restored: not dirty */
    CHECK_EQ(store_load(&s, "l2", 2, "y", 1), 0);
    CHECK_EQ(s.ndirty, 0);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(store_flush_dirty(&s, seen_cb, &sn), 0);
    CHECK_EQ(sn.n, 0);

    CHECK_EQ(PUTS(&s, "a", "1"), 0);
    CHECK_EQ(PUTS(&s, "a", "2"), 0);     /* latest value wins */
    CHECK_EQ(PUTS(&s, "b", "1"), 0);
    CHECK_EQ(store_del(&s, "b", 1), 0);  /* put then delete: a tombstone */
    CHECK_EQ(store_del(&s, "l1", 2), 0); /* delete of a loaded key */
    CHECK_EQ(store_del(&s, "nope", 4), 0);
    CHECK_EQ(PUTS(&s, "c", "3"), 0);
    store_unload(&s, "c", 1);            /* unloaded: nothing to write */
    CHECK_EQ(s.ndirty, 3);
    CHECK_EQ(s.count, 4);

    memset(&sn, 0, sizeof sn);
    CHECK_EQ(store_flush_dirty(&s, seen_cb, &sn), 0);
    CHECK_EQ(sn.n, 3);
    CHECK(!strcmp(seen_val(&sn, "a"), "2"));
    CHECK(!strcmp(seen_val(&sn, "b"), "-"));
    CHECK(!strcmp(seen_val(&sn, "l1"), "-"));
    CHECK(!seen_val(&sn, "l2") && !seen_val(&sn, "c"));
    CHECK_EQ(s.ndirty, 0);
    CHECK_EQ(s.count, 2); /* tombstones dropped */
    CHECK_EQ(s.live, 2);
    CHECK_EQ(s.bytes, 1 + 1 + 2 + 1);
    CHECK(GETS(&s, "a", "2"));
    CHECK(GETS(&s, "l2", "y"));

    /* Nothing is dirty any more. */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(store_flush_dirty(&s, seen_cb, &sn), 0);
    CHECK_EQ(sn.n, 0);
    store_free(&s);
}

TEST(store_failed_flush_keeps_the_marks)
{
    struct store s;
    struct seen sn;
    char k[8];

    store_init(&s);
    for (int i = 0; i < 6; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK_EQ(PUTS(&s, k, "v"), 0);
    }
    CHECK_EQ(store_del(&s, "k3", 2), 0);
    size_t count = s.count, bytes = s.bytes;
    for (int fail_at = 1; fail_at <= 6; fail_at++) {
        memset(&sn, 0, sizeof sn);
        sn.fail_at = fail_at;
        CHECK_EQ(store_flush_dirty(&s, seen_cb, &sn), -1);
        CHECK_EQ(sn.n, fail_at);
        CHECK_EQ(s.ndirty, 6);
        CHECK_EQ(s.count, count);
        CHECK_EQ(s.bytes, bytes);
        CHECK(GETS(&s, "k3", NULL));
    }
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(store_flush_dirty(&s, seen_cb, &sn), 0);
    CHECK_EQ(sn.n, 6);
    CHECK(!strcmp(seen_val(&sn, "k3"), "-"));
    CHECK(!strcmp(seen_val(&sn, "k5"), "v"));
    CHECK_EQ(s.ndirty, 0);
    CHECK_EQ(s.count, 5);
    store_free(&s);
}

struct fe {
    int n;
    size_t bytes;
};

static void fe_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct fe *f = arg;
    (void)key;
    CHECK(val);
    f->n++;
    f->bytes += klen + vlen;
}

TEST(store_foreach_visits_live_entries)
{
    struct store s;
    struct fe f = {0, 0};
    store_init(&s);
    store_foreach(&s, fe_cb, &f);
    CHECK_EQ(f.n, 0);
    CHECK_EQ(PUTS(&s, "a", "1"), 0);
    CHECK_EQ(PUTS(&s, "bb", "22"), 0);
    CHECK_EQ(PUTS(&s, "ccc", "333"), 0);
    CHECK_EQ(store_del(&s, "bb", 2), 0);
    store_foreach(&s, fe_cb, &f);
    CHECK_EQ(f.n, 2);
    CHECK_EQ(f.bytes, 2 + 6);
    store_free(&s);
}

/* --- allocation failures ---------------------------------------------------- */

/* A summary of everything observable in s, to compare before and after. */
static uint64_t fingerprint(const struct store *s, int nkeys)
{
    uint64_t h = s->live * 1000003u ^ s->count * 10007u ^ s->ndirty * 101u ^ s->bytes;
    char k[16];
    for (int i = 0; i < nkeys; i++) {
        int kl = snprintf(k, sizeof k, "key%d", i);
        size_t vl = 0;
        const char *v = store_get(s, k, (size_t)kl, &vl);
        h = h * 31 + (v ? store_hash(v, vl) + vl : 7);
    }
    return h;
}

TEST(store_allocation_failure_leaves_the_store_unchanged)
{
    struct store s;
    char k[16];
    int failures = 0;

    store_init(&s);
    /* 48 keys in 64 slots: the next new key makes the table grow. */
    for (int i = 0; i < 48; i++) {
        int kl = snprintf(k, sizeof k, "key%d", i);
        CHECK_EQ(store_put(&s, k, (size_t)kl, k, (size_t)kl), 0);
    }
    CHECK_EQ(store_del(&s, "key7", 4), 0);
    CHECK_EQ(s.cap, 64);
    uint64_t before = fingerprint(&s, 60);
    size_t live_bytes = alloc_live_bytes();
    /* growth fails; growth works but the value copy fails; (grown now)
     * the value copy works but the key copy fails */
    static const long fail_after[] = {0, 1, 1};
    for (int i = 0; i < 3; i++) {
        long n = fail_after[i];
        alloc_fail_after(n);
        int rc = store_put(&s, "key48", 5, "new", 3);
        alloc_fail_after(-1);
        CHECK_EQ(rc, -1);
        failures++;
        CHECK_EQ(fingerprint(&s, 60), before);
        /* only the grown table may remain */
        CHECK_EQ(s.cap, n == 0 ? 64 : 128);
        CHECK(alloc_live_bytes() == live_bytes || i == 1);
        live_bytes = alloc_live_bytes();
    }
    /* an overwrite and a revival of a tombstone that cannot copy the value */
    alloc_fail_after(0);
    CHECK_EQ(store_put(&s, "key3", 4, "other", 5), -1);
    CHECK_EQ(store_put(&s, "key7", 4, "other", 5), -1);
    CHECK_EQ(store_load(&s, "key9", 4, "other", 5), -1);
    /* deleting, unloading and flushing do not allocate */
    CHECK_EQ(store_del(&s, "key1", 4), 0);
    store_unload(&s, "key2", 4);
    CHECK_EQ(store_flush_dirty(&s, nop_cb, NULL), 0);
    alloc_fail_after(-1);
    CHECK(GETS(&s, "key3", "key3"));
    CHECK(GETS(&s, "key7", NULL));
    CHECK(GETS(&s, "key9", "key9"));
    CHECK(GETS(&s, "key1", NULL));
    CHECK(GETS(&s, "key2", NULL));
    CHECK_EQ(store_put(&s, "key48", 5, "new", 3), 0);
    CHECK(GETS(&s, "key48", "new"));
    CHECK_EQ(failures, 3);
    store_free(&s);
}
