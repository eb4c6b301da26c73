/* alloc.h: the one allocation wrapper.  Every heap allocation of shopstream
 * goes through here so that live bytes can be counted (for metrics and for
 * leak checks in tests) and so that tests can make the Nth allocation fail.
 * Leaf module: libc only. */
#ifndef SHOPSTREAM_ALLOC_H
#define SHOPSTREAM_ALLOC_H

#include <stddef.h>

/* Returns owned memory (free with xfree), or NULL when out of memory or when
 * a test asked for a failure. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void xfree(void *p);

/* Bytes currently allocated through this wrapper (all threads). */
size_t alloc_live_bytes(void);

/* Tests only: make the allocation after the next n succeed-ones fail (n < 0
 * turns failures off). */
void alloc_fail_after(long n);

#endif
