/* arena.c: blocks of at least 8 KiB, chained newest first. */
#include "common/arena.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

#define ARENA_BLOCK 8192

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + 15) & ~(size_t)15;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        if (cap > SIZE_MAX - sizeof *b)
            return NULL;
        b = xmalloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        a->total += cap;
        /* A big one-off block goes behind the current one so that the
         * current block's free space is not wasted. */
        if (a->head && size > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

void arena_reset(struct arena *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    /* keep the last (oldest, normal-sized) block */
    struct arena_block *keep = NULL;
    while (b) {
        struct arena_block *n = b->next;
        if (!n && b->cap == ARENA_BLOCK) {
            keep = b;
        } else {
            xfree(b);
        }
        b = n;
    }
    a->head = keep;
    a->total = keep ? keep->cap : 0;
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
}

void arena_free(struct arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *n = b->next;
        xfree(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}
