/* arena.h: a bump allocator for everything that lives as long as one request
 * (decoded arrays, response structs).  Freed all at once with arena_reset or
 * arena_free.  Leaf module. */
#ifndef SHOPSTREAM_ARENA_H
#define SHOPSTREAM_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head; /* newest block first */
    size_t total;             /* bytes held in blocks, for caps and metrics */
};

void arena_init(struct arena *a);
/* Returns a view valid until arena_reset/arena_free; zeroed; 16-byte aligned.
 * NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Frees all blocks but the first, which is kept for reuse. */
void arena_reset(struct arena *a);
void arena_free(struct arena *a);

#endif
