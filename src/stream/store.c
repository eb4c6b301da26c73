/* store.c: see store.h.  The table doubles when 3/4 full; deleted entries
 * that are still dirty stay in their slot (val NULL) until the next flush so
 * the changelog gets a tombstone. */
#include <string.h>

#include "common/alloc.h"
#include "stream/store.h"

#define STORE_MIN_CAP 64

/* FNV-1a, then a final mix so that linear probing sees spread-out bits. */
uint64_t store_hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;

    for (size_t k = 0; k < klen; k++) {
        h ^= p[k];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void store_init(struct store *s)
{
    memset(s, 0, sizeof *s);
}

void store_free(struct store *s)
{
    for (size_t k = 0; k < s->cap; k++) {
        xfree(s->slots[k].key);
        xfree(s->slots[k].val);
    }
    xfree(s->slots);
    memset(s, 0, sizeof *s);
}

static size_t find_slot(const struct store *s, const void *key, size_t klen, uint64_t h)
{
    size_t mask = s->cap - 1, k = h & mask;

    while (s->slots[k].key) {
        const struct store_entry *e = &s->slots[k];
        if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen))
            return k;
        k = (k + 1) & mask;
    }
    return k;
}

static int grow(struct store *s)
{
    size_t ncap = s->cap ? s->cap * 2 : STORE_MIN_CAP;
    struct store_entry *ns = xcalloc(ncap, sizeof *ns), *old = s->slots;
    size_t ocap = s->cap;

    if (!ns)
        return -1;
    s->slots = ns;
    s->cap = ncap;
    for (size_t k = 0; k < ocap; k++)
        if (old[k].key)
            ns[find_slot(s, old[k].key, old[k].klen, old[k].hash)] = old[k];
    xfree(old);
    return 0;
}

const void *store_get(const struct store *s, const void *key, size_t klen, size_t *vlen)
{
    if (!s->cap)
        return NULL;
    const struct store_entry *e = &s->slots[find_slot(s, key, klen, store_hash(key, klen))];
    if (!e->key || !e->val)
        return NULL;
    *vlen = e->vlen;
    return e->val;
}

static int set(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
               int dirty)
{
    uint64_t h = store_hash(key, klen);
    struct store_entry *e;
    char *v;

    if ((s->count + 1) * 4 > s->cap * 3 && grow(s) < 0)
        return -1;
    e = &s->slots[find_slot(s, key, klen, h)];
    if (!(v = xmalloc(vlen ? vlen : 1)))
        return -1;
    if (vlen)
        memcpy(v, val, vlen);
    if (!e->key) {
        if (!(e->key = xmalloc(klen ? klen : 1))) {
            xfree(v);
            return -1;
        }
        if (klen)
            memcpy(e->key, key, klen);
        e->klen = klen;
        e->hash = h;
        s->count++;
        s->bytes += klen;
    }
    if (e->val) {
        s->bytes -= e->vlen;
        xfree(e->val);
    } else {
        s->live++;
    }
    e->val = v;
    e->vlen = vlen;
    s->bytes += vlen;
    if (dirty && !e->dirty) {
        e->dirty = 1;
        s->ndirty++;
    }
    return 0;
}

int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    return set(s, key, klen, val, vlen, 1);
}

int store_load(struct store *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    return set(s, key, klen, val, vlen, 0);
}

/* Empties slot k and shifts later entries of its probe run back, so that
 * lookups never stop early at the hole. */
static void remove_slot(struct store *s, size_t k)
{
    size_t mask = s->cap - 1, hole = k, j = k;

    s->bytes -= s->slots[k].klen + (s->slots[k].val ? s->slots[k].vlen : 0);
    if (s->slots[k].val)
        s->live--;
    if (s->slots[k].dirty)
        s->ndirty--;
    xfree(s->slots[k].key);
    xfree(s->slots[k].val);
    memset(&s->slots[k], 0, sizeof s->slots[k]);
    s->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!s->slots[j].key)
            break;
        size_t home = s->slots[j].hash & mask;
        /* Move j into the hole if its home is not in (hole, j] cyclically. */
        if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
            s->slots[hole] = s->slots[j];
            memset(&s->slots[j], 0, sizeof s->slots[j]);
            hole = j;
        }
    }
}

int store_del(struct store *s, const void *key, size_t klen)
{
    if (!s->cap)
        return 0;
    struct store_entry *e = &s->slots[find_slot(s, key, klen, store_hash(key, klen))];
    if (!e->key || !e->val)
        return 0;
    s->bytes -= e->vlen;
    xfree(e->val);
    e->val = NULL;
    e->vlen = 0;
    s->live--;
    if (!e->dirty) {
        e->dirty = 1;
        s->ndirty++;
    }
    return 0;
}

void store_unload(struct store *s, const void *key, size_t klen)
{
    if (!s->cap)
        return;
    size_t k = find_slot(s, key, klen, store_hash(key, klen));
    if (s->slots[k].key)
        remove_slot(s, k);
}

int store_flush_dirty(struct store *s,
                      int (*fn)(void *arg, const void *key, size_t klen, const void *val,
                                size_t vlen),
                      void *arg)
{
    if (!s->ndirty)
        return 0;
    for (size_t k = 0; k < s->cap; k++) {
        struct store_entry *e = &s->slots[k];
        if (e->key && e->dirty && fn(arg, e->key, e->klen, e->val, e->vlen) < 0)
            return -1;
    }
    /* Second pass: clear marks, drop tombstones (removal shifts entries, so
     * a slot is looked at again after a removal). */
    for (size_t k = 0; k < s->cap;) {
        struct store_entry *e = &s->slots[k];
        if (e->key && e->dirty) {
            if (!e->val) {
                remove_slot(s, k);
                continue;
            }
            e->dirty = 0;
            s->ndirty--;
        }
        k++;
    }
    return 0;
}

void store_foreach(const struct store *s,
                   void (*fn)(void *arg, const void *key, size_t klen, const void *val,
                              size_t vlen),
                   void *arg)
{
    for (size_t k = 0; k < s->cap; k++)
        if (s->slots[k].key && s->slots[k].val)
            fn(arg, s->slots[k].key, s->slots[k].klen, s->slots[k].val, s->slots[k].vlen);
}
