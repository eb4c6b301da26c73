/* strmap.h: a map from strings to 32-bit values (open addressing, linear
 * probing, backward-shift deletion, so no tombstones and no slow-down after
 * many deletions).  The map owns a copy of every key.  Used where a module
 * interns names into dense integer ids (shop/recommend.c) or needs a set of
 * strings (shop/reco_eval.c).  Not thread-safe: one map, one thread.
 *
 * Leaf module apart from common/alloc.h. */
#ifndef SHOPSTREAM_STRMAP_H
#define SHOPSTREAM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap;

/* Returns owned (free with strmap_free), or NULL when out of memory. */
struct strmap *strmap_new(void);
void strmap_free(struct strmap *m);

/* Looks key up.  Returns 1 and sets *value when present, else 0. */
int strmap_get(const struct strmap *m, const char *key, uint32_t *value);

/* Inserts key (copied) or replaces its value.  Returns 0, or -1 when out of
 * memory (the map is then unchanged).  When stored_key is not NULL it gets a
 * view of the map's copy of the key, valid until the key is deleted or the
 * map freed (growing the map does not move keys). */
int strmap_put(struct strmap *m, const char *key, uint32_t value, const char **stored_key);

/* Removes key.  Returns 1 if it was present, else 0. */
int strmap_del(struct strmap *m, const char *key);

size_t strmap_count(const struct strmap *m);

/* Bytes held by the map (slots and key copies), for memory reports. */
size_t strmap_bytes(const struct strmap *m);

#endif
