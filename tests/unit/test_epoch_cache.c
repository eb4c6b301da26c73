/* test_epoch_cache.c: the leader epoch cache (storage/epoch_cache.c):
 * Kafka's assign rules (later epochs only, contradicted entries dropped),
 * every case of OffsetForLeaderEpoch's end offset, truncation from the end
 * and from the start, the leader-epoch-checkpoint file (Kafka's text
 * format, byte for byte, read back after reopen, hand-written variants),
 * corrupt and oversized files (an empty cache, never a failure), a failed
 * write, injected allocation failures and leaks. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "storage/epoch_cache.h"
#include "test.h"

static const char *ckpt_path(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", test_tmpdir(), ECACHE_FILE_NAME);
    return p;
}

static void write_file(const char *text, size_t n)
{
    FILE *f = fopen(ckpt_path(), "wb");
    CHECK(f);
    CHECK_EQ(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* The checkpoint file's contents, NUL-terminated (static buffer). */
static const char *read_ckpt(void)
{
    static char buf[4096];
    FILE *f = fopen(ckpt_path(), "rb");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void check_entries(const struct ecache *c, int n, const struct epoch_entry *want)
{
    CHECK_EQ(c->n, n);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(c->e[i].epoch, want[i].epoch);
        CHECK_EQ(c->e[i].start_offset, want[i].start_offset);
    }
}

static void check_end(const struct ecache *c, int32_t epoch, int64_t log_end, int32_t want_epoch, int64_t want_end)
{
    int32_t e = -99;
    int64_t o = -99;
    ecache_end_offset_for(c, epoch, log_end, &e, &o);
    if (e != want_epoch || o != want_end) {
        fprintf(stderr, "  end_offset_for(%d, %lld) = (%d, %lld), want (%d, %lld)\n", (int)epoch,
                (long long)log_end, (int)e, (long long)o, (int)want_epoch, (long long)want_end);
        exit(1);
    }
}

/* Opens the cache in the test directory; it must open. */
static void open_cache(struct ecache *c)
{
    CHECK_EQ(ecache_open(c, test_tmpdir()), 0);
}

TEST(ecache_missing_file_is_empty)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(ecache_latest_epoch(&c), -1);
    CHECK(read_ckpt() == NULL); /* opening writes nothing */
    check_end(&c, -1, 100, -1, -1);
    check_end(&c, 0, 100, -1, -1);
    check_end(&c, 5, 100, -1, -1);
    ecache_close(&c);
}

TEST(ecache_assign_rules)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_assign(&c, 0, 0), 0);
    CHECK_EQ(ecache_assign(&c, 1, 10), 0);
    CHECK_EQ(ecache_assign(&c, 3, 20), 0);
    CHECK_EQ(ecache_latest_epoch(&c), 3);
    static const struct epoch_entry three[] = {{0, 0}, {1, 10}, {3, 20}};
    check_entries(&c, 3, three);
    /* a lower epoch, or the latest one again at or after its start: ignored */
    CHECK_EQ(ecache_assign(&c, 2, 25), 0);
    CHECK_EQ(ecache_assign(&c, 1, 5), 0);
    CHECK_EQ(ecache_assign(&c, 3, 30), 0);
    CHECK_EQ(ecache_assign(&c, 3, 20), 0);
    check_entries(&c, 3, three);
    /* the latest epoch at an earlier start replaces its entry */
    CHECK_EQ(ecache_assign(&c, 3, 15), 0);
    static const struct epoch_entry moved[] = {{0, 0}, {1, 10}, {3, 15}};
    check_entries(&c, 3, moved);
    /* a later epoch starting below existing entries drops them */
    CHECK_EQ(ecache_assign(&c, 5, 12), 0);
    static const struct epoch_entry dropped[] = {{0, 0}, {1, 10}, {5, 12}};
    check_entries(&c, 3, dropped);
    CHECK_EQ(ecache_assign(&c, 9, 0), 0);
    static const struct epoch_entry only[] = {{9, 0}};
    check_entries(&c, 1, only);
    /* negative arguments are refused */
    errno = 0;
    CHECK_EQ(ecache_assign(&c, -1, 50), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ecache_assign(&c, 10, -1), -1);
    check_entries(&c, 1, only);
    ecache_close(&c);
}

TEST(ecache_end_offset_for_every_case)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_assign(&c, 1, 0), 0);
    CHECK_EQ(ecache_assign(&c, 3, 10), 0);
    CHECK_EQ(ecache_assign(&c, 6, 20), 0);
    check_end(&c, 6, 30, 6, 30);   /* the latest: the log end */
    check_end(&c, 6, 20, 6, 20);
    check_end(&c, 7, 30, -1, -1);  /* above the latest */
    check_end(&c, 1000, 30, -1, -1);
    check_end(&c, 0, 30, -1, -1);  /* below the first */
    check_end(&c, -1, 30, -1, -1); /* UNDEFINED_EPOCH */
    check_end(&c, 1, 30, 1, 10);   /* a cached epoch: the next one's start */
    check_end(&c, 3, 30, 3, 20);
    check_end(&c, 2, 30, 1, 10);   /* between: the epoch below, the next start */
    check_end(&c, 4, 30, 3, 20);
    check_end(&c, 5, 30, 3, 20);
    /* a single entry */
    CHECK_EQ(ecache_assign(&c, 8, 0), 0);
    check_end(&c, 8, 5, 8, 5);
    check_end(&c, 7, 5, -1, -1);
    check_end(&c, 9, 5, -1, -1);
    ecache_close(&c);
}

TEST(ecache_file_is_kafka_text_and_survives_reopen)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_assign(&c, 1, 0), 0);
    CHECK_EQ(strcmp(read_ckpt(), "0\n1\n1 0\n"), 0);
    CHECK_EQ(ecache_assign(&c, 3, 10), 0);
    CHECK_EQ(ecache_assign(&c, 2147483647, 9223372036854775807LL), 0);
    CHECK_EQ(strcmp(read_ckpt(), "0\n3\n1 0\n3 10\n2147483647 9223372036854775807\n"), 0);
    ecache_close(&c);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", ckpt_path());
    CHECK(access(tmp, F_OK) != 0); /* the temporary was renamed */
    open_cache(&c);
    static const struct epoch_entry want[] = {{1, 0}, {3, 10}, {2147483647, 9223372036854775807LL}};
    check_entries(&c, 3, want);
    CHECK_EQ(c.unsaved, 0);
    ecache_close(&c);
}

/* Files as Kafka or a person may write them: no final newline, a tab, an
 * empty file, a version line alone. */
TEST(ecache_reads_kafka_variants)
{
    static const char *ok[] = {"0\n2\n0 0\n4 100", "0\n2\n0\t0\n4   100\n", "0\n0\n", "0\n0", "", "0\n", "0"};
    static const int count[] = {2, 2, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        write_file(ok[i], strlen(ok[i]));
        struct ecache c;
        open_cache(&c);
        CHECK_EQ(c.n, count[i]);
        if (count[i] == 2) {
            static const struct epoch_entry want[] = {{0, 0}, {4, 100}};
            check_entries(&c, 2, want);
        }
        ecache_close(&c);
    }
}

TEST(ecache_corrupt_file_gives_empty_cache)
{
    static const char *bad[] = {
        "1\n1\n0 0\n",                /* unknown version */
        "x\n",                        /* not a number */
        "0\n2\n0 0\n",                /* fewer entries than counted */
        "0\n1\n0 0\n3 5\n",           /* more */
        "0\n1\n5",                    /* an entry without its offset */
        "0\n1\n5 \n",
        "0\n1\n-1 0\n",               /* negative epoch */
        "0\n1\n1 -5\n",               /* negative offset */
        "0\n1\n2147483648 0\n",       /* epoch past int32 */
        "0\n1\n1 99999999999999999999\n", /* offset past int64 */
        "0\n1\n1 9223372036854775808\n",  /* INT64_MAX + 1 */
        "0\n2\n3 10\n2 20\n",         /* epochs decreasing */
        "0\n2\n2 10\n3 10\n",         /* start offsets not increasing */
        "0\n999999999\n0 0\n",        /* a count the file cannot hold */
        "0\n-1\n",
        " 0\n0\n",
        "0\n1\n1 2 3\n",
        "0\n1\n1 2\n\n",
        "\x00\x01\x02\xff garbage",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = i == sizeof bad / sizeof *bad - 1 ? 12 : strlen(bad[i]);
        write_file(bad[i], n);
        struct ecache c;
        CHECK_EQ(ecache_open(&c, test_tmpdir()), 0);
        if (c.n != 0) {
            fprintf(stderr, "  case %zu was accepted\n", i);
            exit(1);
        }
        /* and the cache works: the next assign rewrites the file */
        CHECK_EQ(ecache_assign(&c, 2, 7), 0);
        CHECK_EQ(strcmp(read_ckpt(), "0\n1\n2 7\n"), 0);
        ecache_close(&c);
    }
}

TEST(ecache_oversized_file_gives_empty_cache)
{
    int fd = open(ckpt_path(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "0\n1\n1 0\n", 8), 8);
    CHECK_EQ(ftruncate(fd, ECACHE_MAX_FILE_BYTES + 1), 0);
    close(fd);
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(c.n, 0);
    ecache_close(&c);
}

TEST(ecache_truncate_from_end_drops_later_entries)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_assign(&c, 1, 0), 0);
    CHECK_EQ(ecache_assign(&c, 3, 10), 0);
    CHECK_EQ(ecache_assign(&c, 6, 20), 0);
    CHECK_EQ(ecache_truncate_from_end(&c, 21), 0); /* nothing starts at or past 21 */
    CHECK_EQ(c.n, 3);
    CHECK_EQ(ecache_truncate_from_end(&c, 20), 0);
    static const struct epoch_entry two[] = {{1, 0}, {3, 10}};
    check_entries(&c, 2, two);
    CHECK_EQ(strcmp(read_ckpt(), "0\n2\n1 0\n3 10\n"), 0);
    CHECK_EQ(ecache_truncate_from_end(&c, 11), 0);
    check_entries(&c, 2, two);
    CHECK_EQ(ecache_truncate_from_end(&c, 10), 0);
    check_entries(&c, 1, two);
    CHECK_EQ(ecache_truncate_from_end(&c, 0), 0);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(strcmp(read_ckpt(), "0\n0\n"), 0);
    ecache_close(&c);
}

TEST(ecache_truncate_from_start_moves_first_entry)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_assign(&c, 1, 0), 0);
    CHECK_EQ(ecache_assign(&c, 3, 10), 0);
    CHECK_EQ(ecache_assign(&c, 6, 20), 0);
    CHECK_EQ(ecache_truncate_from_start(&c, 0), 0); /* nothing below */
    CHECK_EQ(c.n, 3);
    CHECK_EQ(ecache_truncate_from_start(&c, 5), 0);
    static const struct epoch_entry a[] = {{1, 5}, {3, 10}, {6, 20}};
    check_entries(&c, 3, a);
    CHECK_EQ(ecache_truncate_from_start(&c, 15), 0);
    static const struct epoch_entry b[] = {{3, 15}, {6, 20}};
    check_entries(&c, 2, b);
    CHECK_EQ(ecache_truncate_from_start(&c, 20), 0);
    static const struct epoch_entry d[] = {{6, 20}};
    check_entries(&c, 1, d);
    CHECK_EQ(ecache_truncate_from_start(&c, 25), 0);
    static const struct epoch_entry e[] = {{6, 25}};
    check_entries(&c, 1, e);
    CHECK_EQ(strcmp(read_ckpt(), "0\n1\n6 25\n"), 0);
    /* the answers follow: epoch 6 is still the latest */
    check_end(&c, 6, 40, 6, 40);
    check_end(&c, 3, 40, -1, -1);
    ecache_close(&c);
    open_cache(&c);
    check_entries(&c, 1, e);
    ecache_close(&c);
}

TEST(ecache_clear_empties_file)
{
    struct ecache c;
    open_cache(&c);
    CHECK_EQ(ecache_clear(&c), 0);
    CHECK(read_ckpt() == NULL); /* nothing to clear: nothing written */
    CHECK_EQ(ecache_assign(&c, 2, 4), 0);
    CHECK_EQ(ecache_clear(&c), 0);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(ecache_latest_epoch(&c), -1);
    CHECK_EQ(strcmp(read_ckpt(), "0\n0\n"), 0);
    ecache_close(&c);
}

/* A write that fails leaves memory right and says so; the next change
 * that succeeds writes everything. */
TEST(ecache_failed_write)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/gone", test_tmpdir());
    struct ecache c;
    CHECK_EQ(ecache_open(&c, dir), 0); /* a directory that is not there: empty */
    CHECK_EQ(ecache_assign(&c, 1, 0), -1);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(c.unsaved, 1);
    CHECK_EQ(ecache_latest_epoch(&c), 1);
    CHECK_EQ(mkdir(dir, 0755), 0);
    /* a change that removes nothing still writes what is unsaved */
    CHECK_EQ(ecache_truncate_from_end(&c, 100), 0);
    CHECK_EQ(c.unsaved, 0);
    ecache_close(&c);
    CHECK_EQ(ecache_open(&c, dir), 0);
    CHECK_EQ(c.n, 1);
    ecache_close(&c);
}

TEST(ecache_allocation_failures_and_leaks)
{
    size_t base = alloc_live_bytes();
    {
        struct ecache c;
        open_cache(&c);
        for (int i = 0; i < 40; i++)
            CHECK_EQ(ecache_assign(&c, i, 10 * i), 0);
        ecache_close(&c);
    }
    CHECK_EQ(alloc_live_bytes(), base);
    for (long k = 0; k < 20; k++) {
        alloc_fail_after(k);
        struct ecache c;
        int rc = ecache_open(&c, test_tmpdir());
        alloc_fail_after(-1);
        CHECK(rc == 0 || rc == -1);
        CHECK(rc == -1 || c.n == 40);
        if (rc == 0) {
            alloc_fail_after(0);
            int arc = ecache_assign(&c, 100, 1000); /* the file cannot be written */
            alloc_fail_after(-1);
            CHECK(arc == -1 || arc == 0);
            CHECK_EQ(ecache_latest_epoch(&c), arc == 0 || c.unsaved ? 100 : 39);
        }
        ecache_close(&c);
        CHECK_EQ(alloc_live_bytes(), base);
    }
}
