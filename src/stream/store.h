/* store.h: a keyed in-memory state store, one per task (input partition) of a
 * stream processor.  Keys and values are byte strings copied in.  A put marks
 * the key dirty; the runtime writes each dirty key's latest value to the
 * store's changelog partition when it commits (see runtime.h), so a key
 * updated many times between commits costs one changelog record.
 *
 * Open addressing with linear probing and backward-shift deletion; no
 * per-lookup allocation.  Not thread-safe: one task, one thread. */
#ifndef SHOPSTREAM_STREAM_STORE_H
#define SHOPSTREAM_STREAM_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store_entry {
    char *key;          /* owned */
    size_t klen;
    char *val;          /* owned; NULL once deleted but still dirty (a tombstone) */
    size_t vlen;
    uint64_t hash;
    int dirty;          /* changed since the last changelog write */
};

struct store {
    struct store_entry *slots;  /* cap slots; key == NULL means empty */
    size_t cap, count;          /* count includes dirty tombstones */
    size_t live;                /* entries with a value */
    size_t ndirty;
    size_t bytes;               /* key + value bytes held */
};

void store_init(struct store *s);
void store_free(struct store *s);

/* The value of key, or NULL if absent.  *vlen gets its length.  View: valid
 * until the next store_put/store_del/store_clear on s. */
const void *store_get(const struct store *s, const void *key, size_t klen, size_t *vlen);

/* Sets key to a copy of val[0..vlen) and marks it dirty.  Returns 0, or -1
 * when out of memory (the store is unchanged). */
int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen);

/* Deletes key (a tombstone goes to the changelog).  Returns 0 or -1 (OOM). */
int store_del(struct store *s, const void *key, size_t klen);

/* Like store_put but not dirty: for restoring from the changelog. */
int store_load(struct store *s, const void *key, size_t klen, const void *val, size_t vlen);
/* Removes key without a tombstone: for restoring a changelog tombstone. */
void store_unload(struct store *s, const void *key, size_t klen);

/* Calls fn for each dirty entry (val NULL = deleted), then clears the dirty
 * marks and drops the tombstones.  fn returns 0, or -1 to stop (marks are
 * then kept).  Returns 0 or -1. */
int store_flush_dirty(struct store *s,
                      int (*fn)(void *arg, const void *key, size_t klen, const void *val,
                                size_t vlen),
                      void *arg);

/* Calls fn for every live entry, in slot order.  fn must not modify s. */
void store_foreach(const struct store *s,
                   void (*fn)(void *arg, const void *key, size_t klen, const void *val,
                              size_t vlen),
                   void *arg);

uint64_t store_hash(const void *key, size_t klen);

#endif
