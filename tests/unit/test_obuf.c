/* test_obuf.c: the output buffer (common/obuf.c): big-endian puts, patch,
 * insert, spliced file ranges with obuf_wire_len, and the sticky oom flag
 * under injected allocation failures. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/obuf.h"
#include "test.h"

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static int scratch_fd(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/scratch", test_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0);
    return fd;
}

TEST(obuf_put_big_endian)
{
    struct obuf b;
    obuf_init(&b);
    obuf_put_u8(&b, 0xab);
    obuf_put_be16(&b, 0x0102);
    obuf_put_be32(&b, 0x03040506);
    obuf_put_be64(&b, 0x0708090a0b0c0d0eull);
    obuf_put(&b, "xyz", 3);
    obuf_put(&b, NULL, 0);
    static const uint8_t want[] = {0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 'x', 'y', 'z'};
    CHECK_EQ(b.len, sizeof want);
    CHECK(memcmp(b.data, want, sizeof want) == 0);
    CHECK_EQ(obuf_wire_len(&b), sizeof want);
    CHECK_EQ(b.oom, 0);
    obuf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
}

TEST(obuf_grows_and_keeps_contents)
{
    struct obuf b;
    obuf_init(&b);
    for (uint32_t i = 0; i < 100000; i++)
        obuf_put_be32(&b, i);
    CHECK_EQ(b.len, 400000);
    CHECK(b.cap >= b.len);
    for (uint32_t i = 0; i < 100000; i += 777) {
        const uint8_t *p = b.data + 4 * i;
        CHECK_EQ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3], i);
    }
    obuf_free(&b);
}

TEST(obuf_reserve_then_commit)
{
    struct obuf b;
    obuf_init(&b);
    uint8_t *p = obuf_reserve(&b, 1000);
    CHECK(p != NULL);
    CHECK_EQ(b.len, 0);
    CHECK(b.cap >= 1000);
    memset(p, 7, 1000);
    b.len += 1000;
    CHECK_EQ(b.data[999], 7);
    obuf_free(&b);
}

TEST(obuf_patch_in_place)
{
    struct obuf b;
    obuf_init(&b);
    obuf_put_be32(&b, 0);
    obuf_put(&b, "abcd", 4);
    obuf_patch_be32(&b, 0, 0xdeadbeef);
    obuf_patch_be32(&b, 4, 0x01020304);
    static const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    CHECK(memcmp(b.data, want, 8) == 0);
    /* A patch that would run past the end does nothing. */
    obuf_patch_be32(&b, 5, 0xffffffff);
    obuf_patch_be32(&b, 100, 0xffffffff);
    CHECK(memcmp(b.data, want, 8) == 0);
    CHECK_EQ(b.len, 8);
    obuf_free(&b);
}

TEST(obuf_insert_front_middle_end)
{
    struct obuf b;
    obuf_init(&b);
    obuf_put(&b, "ad", 2);
    obuf_insert(&b, 1, "bc", 2);
    obuf_insert(&b, 0, "<", 1);
    obuf_insert(&b, b.len, ">", 1);
    CHECK_EQ(b.len, 6);
    CHECK(memcmp(b.data, "<abcd>", 6) == 0);
    /* past the end: ignored */
    obuf_insert(&b, 7, "!", 1);
    CHECK_EQ(b.len, 6);
    CHECK(memcmp(b.data, "<abcd>", 6) == 0);
    /* an insert that forces growth keeps everything */
    char big[5000];
    memset(big, 'q', sizeof big);
    obuf_insert(&b, 3, big, sizeof big);
    CHECK_EQ(b.len, 6 + sizeof big);
    CHECK(memcmp(b.data, "<ab", 3) == 0);
    CHECK_EQ(b.data[3], 'q');
    CHECK_EQ(b.data[3 + sizeof big - 1], 'q');
    CHECK(memcmp(b.data + 3 + sizeof big, "cd>", 3) == 0);
    obuf_free(&b);
}

TEST(obuf_file_ranges_and_wire_len)
{
    int fd = scratch_fd();
    struct obuf b;
    obuf_init(&b);
    obuf_put_be32(&b, 0);
    obuf_put_file(&b, dup(fd), 100, 50);
    obuf_put(&b, "xy", 2);
    obuf_put_file(&b, dup(fd), 0, 7);
    obuf_put_file(&b, dup(fd), 9, 0);
    CHECK_EQ(b.len, 6);
    CHECK_EQ(b.nfiles, 3);
    CHECK_EQ(b.file_bytes, 57);
    CHECK_EQ(obuf_wire_len(&b), 63);
    CHECK_EQ(b.files[0].at, 4);
    CHECK_EQ(b.files[0].off, 100);
    CHECK_EQ(b.files[0].len, 50);
    CHECK_EQ(b.files[1].at, 6);
    CHECK_EQ(b.files[1].off, 0);
    CHECK_EQ(b.files[1].len, 7);
    CHECK_EQ(b.files[2].at, 6);
    /* the size prefix is patched with the wire length */
    obuf_patch_be32(&b, 0, (uint32_t)(obuf_wire_len(&b) - 4));
    CHECK_EQ(b.data[3], 59);
    int f0 = b.files[0].fd, f1 = b.files[1].fd, f2 = b.files[2].fd;
    CHECK(fd_is_open(f0) && fd_is_open(f1) && fd_is_open(f2));
    obuf_reset(&b);
    /* reset closes the taken fds and forgets the ranges */
    CHECK(!fd_is_open(f0));
    CHECK(!fd_is_open(f1));
    CHECK(!fd_is_open(f2));
    CHECK_EQ(b.nfiles, 0);
    CHECK_EQ(b.file_bytes, 0);
    CHECK_EQ(obuf_wire_len(&b), 0);
    CHECK(fd_is_open(fd));
    /* many ranges grow the table */
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = dup(fd);
        obuf_put_u8(&b, (uint8_t)i);
        obuf_put_file(&b, fds[i], i, i + 1);
    }
    CHECK_EQ(b.nfiles, 20);
    CHECK_EQ(b.file_bytes, 210);
    CHECK_EQ(obuf_wire_len(&b), 230);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(b.files[i].at, i + 1);
    obuf_free(&b);
    for (int i = 0; i < 20; i++)
        CHECK(!fd_is_open(fds[i]));
    close(fd);
}

TEST(obuf_oom_is_sticky)
{
    size_t base = alloc_live_bytes();
    struct obuf b;
    obuf_init(&b);
    obuf_put(&b, "abc", 3);
    CHECK_EQ(b.oom, 0);
    alloc_fail_after(0);
    char big[1000];
    memset(big, 1, sizeof big);
    obuf_put(&b, big, sizeof big); /* needs to grow: fails */
    CHECK_EQ(b.oom, 1);
    CHECK_EQ(b.len, 3);
    alloc_fail_after(-1);
    /* sticky: nothing more is written even though memory is back */
    obuf_put(&b, "d", 1);
    obuf_put_be32(&b, 5);
    CHECK_EQ(b.len, 3);
    CHECK(obuf_reserve(&b, 1) == NULL);
    obuf_insert(&b, 0, "z", 1);
    CHECK_EQ(b.len, 3);
    CHECK(memcmp(b.data, "abc", 3) == 0);
    /* a file range offered while oom is closed, not leaked */
    int fd = scratch_fd();
    int d = dup(fd);
    obuf_put_file(&b, d, 0, 10);
    CHECK(!fd_is_open(d));
    CHECK_EQ(b.nfiles, 0);
    CHECK_EQ(obuf_wire_len(&b), 3);
    /* reset clears it */
    obuf_reset(&b);
    CHECK_EQ(b.oom, 0);
    obuf_put(&b, "ok", 2);
    CHECK_EQ(b.len, 2);
    obuf_free(&b);
    close(fd);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(obuf_oom_on_first_allocation)
{
    struct obuf b;
    obuf_init(&b);
    alloc_fail_after(0);
    obuf_put_u8(&b, 1);
    CHECK_EQ(b.oom, 1);
    CHECK_EQ(b.len, 0);
    alloc_fail_after(-1);
    obuf_free(&b);
}

TEST(obuf_oom_growing_file_table)
{
    int fd = scratch_fd();
    struct obuf b;
    obuf_init(&b);
    obuf_put(&b, "h", 1); /* the data block exists */
    for (int i = 0; i < 8; i++)
        obuf_put_file(&b, dup(fd), 0, 1); /* first table of 8 */
    CHECK_EQ(b.nfiles, 8);
    alloc_fail_after(0);
    int d = dup(fd);
    obuf_put_file(&b, d, 0, 1); /* the table must grow: fails */
    alloc_fail_after(-1);
    CHECK_EQ(b.oom, 1);
    CHECK(!fd_is_open(d));
    CHECK_EQ(b.nfiles, 8);
    CHECK_EQ(b.file_bytes, 8);
    obuf_free(&b);
    close(fd);
}

/* Every injected failure point while building a buffer leaves either the
 * complete content or the oom flag, never silently partial content. */
TEST(obuf_every_failure_point)
{
    for (long n = 0; n < 20; n++) {
        struct obuf b;
        obuf_init(&b);
        alloc_fail_after(n);
        for (int i = 0; i < 3000; i++)
            obuf_put_be16(&b, (uint16_t)i);
        obuf_insert(&b, 10, "insert", 6);
        alloc_fail_after(-1);
        if (!b.oom) {
            CHECK_EQ(b.len, 6006);
            CHECK(memcmp(b.data + 10, "insert", 6) == 0);
            CHECK_EQ(b.data[6005], 2999 & 0xff);
        }
        obuf_free(&b);
    }
}

/* A request for more room than can ever exist must fail with oom set, not
 * spin: the capacity doubling would wrap to 0 and loop forever. */
TEST(obuf_reserve_impossible_size_fails)
{
    alarm(5); /* a hang fails the test quickly instead of after 60 s */
    struct obuf b;
    obuf_init(&b);
    obuf_put(&b, "a", 1);
    CHECK(obuf_reserve(&b, SIZE_MAX / 2 + 2) == NULL);
    CHECK_EQ(b.oom, 1);
    obuf_free(&b);
    obuf_init(&b);
    CHECK(obuf_reserve(&b, SIZE_MAX) == NULL);
    CHECK_EQ(b.oom, 1);
    obuf_free(&b);
    alarm(0);
}
