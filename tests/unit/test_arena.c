/* test_arena.c: the request arena (common/arena.c): zeroed 16-byte aligned
 * views, big one-off blocks, reset keeping one block, and failures. */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "test.h"

TEST(arena_alignment_and_zeroing)
{
    struct arena a;
    arena_init(&a);
    static const size_t sizes[] = {1, 3, 15, 16, 17, 31, 100, 7, 4095, 1};
    uint8_t *prev = NULL;
    size_t prev_n = 0;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            uint8_t *p = arena_alloc(&a, n);
            CHECK(p != NULL);
            CHECK_EQ((uintptr_t)p % 16, 0);
            for (size_t k = 0; k < n; k++)
                CHECK_EQ(p[k], 0);
            memset(p, 0xee, n);
            /* the previous allocation was not overwritten by zeroing this one */
            if (prev)
                for (size_t k = 0; k < prev_n; k++)
                    CHECK_EQ(prev[k], 0xee);
            prev = p;
            prev_n = n;
        }
    }
    arena_free(&a);
    CHECK(a.head == NULL);
    CHECK_EQ(a.total, 0);
}

TEST(arena_zero_size_allocations)
{
    struct arena a;
    arena_init(&a);
    void *p = arena_alloc(&a, 0);
    CHECK(p != NULL);
    uint8_t *q = arena_alloc(&a, 8);
    CHECK(q != NULL);
    memset(q, 1, 8);
    arena_free(&a);
}

TEST(arena_big_allocation)
{
    size_t base = alloc_live_bytes();
    struct arena a;
    arena_init(&a);
    uint8_t *small = arena_alloc(&a, 100);
    CHECK(small);
    CHECK_EQ(a.total, 8192);
    size_t big_n = 100000;
    uint8_t *big = arena_alloc(&a, big_n);
    CHECK(big);
    CHECK_EQ((uintptr_t)big % 16, 0);
    for (size_t i = 0; i < big_n; i++)
        CHECK_EQ(big[i], 0);
    memset(big, 0x5a, big_n);
    CHECK(a.total >= 8192 + big_n);
    size_t total_after_big = a.total;
    /* The big block did not take the small block's place: small
     * allocations keep filling the first block without a new block. */
    uint8_t *s2 = arena_alloc(&a, 200);
    CHECK(s2);
    CHECK_EQ(a.total, total_after_big);
    CHECK(s2 >= small && s2 < small + 8192);
    memset(s2, 1, 200);
    for (size_t i = 0; i < big_n; i++)
        CHECK_EQ(big[i], 0x5a);
    arena_free(&a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(arena_many_blocks_and_reset)
{
    size_t base = alloc_live_bytes();
    struct arena a;
    arena_init(&a);
    for (int round = 0; round < 5; round++) {
        uint8_t *ptrs[300];
        for (int i = 0; i < 300; i++) {
            ptrs[i] = arena_alloc(&a, 1000);
            CHECK(ptrs[i]);
            memset(ptrs[i], i & 0xff, 1000);
        }
        for (int i = 0; i < 300; i++)
            for (int k = 0; k < 1000; k += 97)
                CHECK_EQ(ptrs[i][k], i & 0xff);
        CHECK(a.total >= 300000);
        arena_reset(&a);
        /* one normal block is kept for reuse */
        CHECK_EQ(a.total, 8192);
        CHECK(alloc_live_bytes() - base >= 8192 && alloc_live_bytes() - base < 8192 + 256);
        uint8_t *p = arena_alloc(&a, 64);
        CHECK(p);
        for (int k = 0; k < 64; k++)
            CHECK_EQ(p[k], 0); /* reused memory is zeroed again */
        CHECK_EQ(a.total, 8192);
    }
    arena_free(&a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(arena_reset_frees_all_but_one_block)
{
    size_t base = alloc_live_bytes();
    struct arena a;
    arena_init(&a);
    for (int i = 0; i < 100; i++)
        CHECK(arena_alloc(&a, 5000));
    CHECK(arena_alloc(&a, 1 << 20));
    arena_reset(&a);
    size_t live = alloc_live_bytes() - base;
    CHECK(live >= 8192 && live < 8192 + 256); /* one block and its header */
    arena_reset(&a);
    CHECK_EQ(alloc_live_bytes() - base, live);
    arena_free(&a);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(arena_reset_when_only_big_blocks)
{
    size_t base = alloc_live_bytes();
    struct arena a;
    arena_init(&a);
    CHECK(arena_alloc(&a, 50000));
    arena_reset(&a);
    CHECK_EQ(a.total, 0);
    CHECK_EQ(alloc_live_bytes(), base);
    uint8_t *p = arena_alloc(&a, 10);
    CHECK(p);
    arena_reset(&a);
    arena_reset(&a);
    p = arena_alloc(&a, 10);
    CHECK(p);
    arena_free(&a);
    arena_free(&a); /* freeing twice is harmless: head is NULL */
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(arena_strndup_copies)
{
    struct arena a;
    arena_init(&a);
    char *s = arena_strndup(&a, "hello world", 5);
    CHECK(s);
    CHECK(strcmp(s, "hello") == 0);
    char *e = arena_strndup(&a, "", 0);
    CHECK(e);
    CHECK_EQ(e[0], 0);
    arena_free(&a);
}

TEST(arena_allocation_failure)
{
    struct arena a;
    arena_init(&a);
    alloc_fail_after(0);
    CHECK(arena_alloc(&a, 10) == NULL);
    CHECK(arena_strndup(&a, "x", 1) == NULL);
    alloc_fail_after(-1);
    CHECK(arena_alloc(&a, 10) != NULL);
    /* the first block has room: no allocation needed */
    alloc_fail_after(0);
    CHECK(arena_alloc(&a, 10) != NULL);
    CHECK(arena_alloc(&a, 20000) == NULL); /* needs a block */
    CHECK(arena_alloc(&a, 16) != NULL);    /* still served from the first */
    alloc_fail_after(-1);
    arena_free(&a);
}

/* A size near SIZE_MAX must not wrap to a tiny allocation when rounded up
 * to 16: the contract is NULL when the memory cannot be had. */
TEST(arena_huge_size_returns_null)
{
    struct arena a;
    arena_init(&a);
    CHECK(arena_alloc(&a, SIZE_MAX - 100) == NULL);
    CHECK(arena_alloc(&a, SIZE_MAX) == NULL);
    CHECK(arena_alloc(&a, SIZE_MAX - 7) == NULL);
    arena_free(&a);
}
