/* test_alloc.c: the counting allocator (common/alloc.c): live byte counts
 * through every entry point, and injected failures with alloc_fail_after.
 * Each test runs in its own process, so the global counters start fresh. */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "test.h"

TEST(alloc_counts_live_bytes)
{
    size_t base = alloc_live_bytes();
    void *a = xmalloc(100);
    CHECK(a);
    CHECK_EQ(alloc_live_bytes(), base + 100);
    void *b = xcalloc(10, 7);
    CHECK(b);
    for (int i = 0; i < 70; i++)
        CHECK_EQ(((uint8_t *)b)[i], 0);
    CHECK_EQ(alloc_live_bytes(), base + 170);
    a = xrealloc(a, 1000);
    CHECK(a);
    CHECK_EQ(alloc_live_bytes(), base + 1070);
    a = xrealloc(a, 10);
    CHECK(a);
    CHECK_EQ(alloc_live_bytes(), base + 80);
    char *s = xstrdup("hello");
    CHECK(s);
    CHECK(strcmp(s, "hello") == 0);
    CHECK_EQ(alloc_live_bytes(), base + 86);
    char *t = xstrndup("abcdef", 3);
    CHECK(t);
    CHECK(strcmp(t, "abc") == 0);
    CHECK_EQ(alloc_live_bytes(), base + 90);
    xfree(a);
    xfree(b);
    xfree(s);
    xfree(t);
    xfree(NULL);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(alloc_realloc_null_is_malloc)
{
    size_t base = alloc_live_bytes();
    void *p = xrealloc(NULL, 33);
    CHECK(p);
    memset(p, 0xab, 33);
    CHECK_EQ(alloc_live_bytes(), base + 33);
    xfree(p);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(alloc_realloc_keeps_contents)
{
    uint8_t *p = xmalloc(16);
    for (int i = 0; i < 16; i++)
        p[i] = (uint8_t)i;
    p = xrealloc(p, 1 << 20);
    CHECK(p);
    for (int i = 0; i < 16; i++)
        CHECK_EQ(p[i], i);
    xfree(p);
}

TEST(alloc_overflow_returns_null)
{
    size_t base = alloc_live_bytes();
    CHECK(xcalloc(SIZE_MAX / 2, 3) == NULL);
    CHECK(xmalloc(SIZE_MAX) == NULL);
    CHECK(xmalloc(SIZE_MAX - 8) == NULL);
    void *p = xmalloc(8);
    CHECK(xrealloc(p, SIZE_MAX) == NULL);
    CHECK_EQ(alloc_live_bytes(), base + 8); /* the old block is intact */
    xfree(p);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(alloc_fail_after_n)
{
    size_t base = alloc_live_bytes();
    alloc_fail_after(2);
    void *a = xmalloc(10);
    void *b = xmalloc(10);
    void *c = xmalloc(10);
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(c == NULL);
    CHECK_EQ(alloc_live_bytes(), base + 20);
    alloc_fail_after(-1);
    c = xmalloc(10);
    CHECK(c != NULL);
    xfree(a);
    xfree(b);
    xfree(c);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(alloc_fail_after_zero_fails_every_entry_point)
{
    void *keep = xmalloc(4);
    size_t base = alloc_live_bytes();
    alloc_fail_after(0);
    CHECK(xmalloc(1) == NULL);
    CHECK(xcalloc(1, 1) == NULL);
    CHECK(xstrdup("x") == NULL);
    CHECK(xstrndup("xy", 1) == NULL);
    CHECK(xrealloc(NULL, 5) == NULL);
    /* A failed realloc leaves the block and the count as they were. */
    CHECK(xrealloc(keep, 100) == NULL);
    CHECK_EQ(alloc_live_bytes(), base);
    alloc_fail_after(-1);
    memset(keep, 1, 4);
    xfree(keep);
    CHECK_EQ(alloc_live_bytes(), base - 4);
}

TEST(alloc_fail_after_counts_realloc_and_calloc)
{
    /* Every entry point consumes one success from the countdown. */
    alloc_fail_after(3);
    void *a = xcalloc(2, 2);
    void *b = xrealloc(NULL, 3);
    char *s = xstrdup("z");
    void *d = xmalloc(1);
    CHECK(a && b && s);
    CHECK(d == NULL);
    alloc_fail_after(-1);
    xfree(a);
    xfree(b);
    xfree(s);
}
