/* alloc.c: counting allocator.  Each block carries a 16-byte header with its
 * size so that xfree can keep the live count exact. */
#include "common/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16

static atomic_size_t live;
static atomic_long fail_countdown = -1;

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *xmalloc(size_t size)
{
    if (should_fail() || size > SIZE_MAX - HDR)
        return NULL;
    uint8_t *p = malloc(size + HDR);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    atomic_fetch_add_explicit(&live, size, memory_order_relaxed);
    return p + HDR;
}

void *xcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = xmalloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    if (!p)
        return xmalloc(size);
    if (should_fail() || size > SIZE_MAX - HDR)
        return NULL;
    uint8_t *base = (uint8_t *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    uint8_t *nb = realloc(base, size + HDR);
    if (!nb)
        return NULL;
    memcpy(nb, &size, sizeof size);
    atomic_fetch_add_explicit(&live, size, memory_order_relaxed);
    atomic_fetch_sub_explicit(&live, old, memory_order_relaxed);
    return nb + HDR;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

void xfree(void *p)
{
    if (!p)
        return;
    uint8_t *base = (uint8_t *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    atomic_fetch_sub_explicit(&live, old, memory_order_relaxed);
    free(base);
}

size_t alloc_live_bytes(void)
{
    return atomic_load(&live);
}

void alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}
