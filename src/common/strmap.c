/* strmap.c: string -> uint32 map with linear probing; see strmap.h.  The
 * table is a power of two, at most 3/4 full; deletion shifts later members of
 * the probe run back, which keeps lookups short without tombstones. */
#include "common/strmap.h"

#include <string.h>

#include "common/alloc.h"

struct slot {
    char *key;          /* owned copy, NULL for an empty slot */
    uint64_t hash;      /* full hash of key */
    uint32_t value;
};

struct strmap {
    struct slot *slot;  /* cap slots */
    size_t cap;         /* a power of two (or 0 before the first put) */
    size_t n;           /* keys stored */
    size_t key_bytes;   /* sum of strlen(key) + 1 */
};

/* FNV-1a 64 with a final mix, so the low bits used for the index vary. */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

struct strmap *strmap_new(void)
{
    return xcalloc(1, sizeof(struct strmap));
}

void strmap_free(struct strmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        xfree(m->slot[i].key);
    xfree(m->slot);
    xfree(m);
}

/* The slot of key, or of the empty slot where it would go. */
static size_t find(const struct strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;

    while (m->slot[i].key && (m->slot[i].hash != h || strcmp(m->slot[i].key, key)))
        i = (i + 1) & mask;
    return i;
}

int strmap_get(const struct strmap *m, const char *key, uint32_t *value)
{
    size_t i;

    if (m->n == 0)
        return 0;
    i = find(m, key, hash_str(key));
    if (!m->slot[i].key)
        return 0;
    *value = m->slot[i].value;
    return 1;
}

static int grow(struct strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct slot *s = xcalloc(cap, sizeof *s), *old = m->slot;
    size_t oldcap = m->cap;

    if (!s)
        return -1;
    m->slot = s;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            m->slot[find(m, old[i].key, old[i].hash)] = old[i];
    xfree(old);
    return 0;
}

int strmap_put(struct strmap *m, const char *key, uint32_t value, const char **stored_key)
{
    uint64_t h = hash_str(key);
    size_t i, len;
    char *copy;

    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    i = find(m, key, h);
    if (!m->slot[i].key) {
        len = strlen(key);
        if (!(copy = xmalloc(len + 1)))
            return -1;
        memcpy(copy, key, len + 1);
        m->slot[i].key = copy;
        m->slot[i].hash = h;
        m->n++;
        m->key_bytes += len + 1;
    }
    m->slot[i].value = value;
    if (stored_key)
        *stored_key = m->slot[i].key;
    return 0;
}

int strmap_del(struct strmap *m, const char *key)
{
    size_t mask, i, j, home;

    if (m->n == 0)
        return 0;
    mask = m->cap - 1;
    i = find(m, key, hash_str(key));
    if (!m->slot[i].key)
        return 0;
    m->key_bytes -= strlen(m->slot[i].key) + 1;
    xfree(m->slot[i].key);
    m->slot[i].key = NULL;
    m->n--;
    /* Shift back every later member of the run whose home slot is not in
     * (i, j], so that no lookup stops early at the hole. */
    for (j = (i + 1) & mask; m->slot[j].key; j = (j + 1) & mask) {
        home = (size_t)m->slot[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slot[i] = m->slot[j];
            m->slot[j].key = NULL;
            i = j;
        }
    }
    return 1;
}

size_t strmap_count(const struct strmap *m)
{
    return m->n;
}

size_t strmap_bytes(const struct strmap *m)
{
    return m->cap * sizeof(struct slot) + m->key_bytes;
}
