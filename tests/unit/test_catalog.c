/* test_catalog.c: the topic catalog (storage/catalog.c): Kafka's topic name
 * rule, create / find / delete / add_partitions / set_config, and that all
 * of it, the topic ids, the cluster id and the partitions' data persist
 * across catalog_close and catalog_open, with the clean-shutdown mark, and
 * that a data dir is opened by one process at a time. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"
#include "protocol/records.h"
#include "storage/catalog.h"
#include "test.h"

static int name_ok(const char *s)
{
    const char *why = NULL;
    int rc = catalog_check_name(s, strlen(s), &why);
    if (rc < 0)
        CHECK(why != NULL && why[0]);
    return rc == 0;
}

TEST(catalog_topic_name_rules)
{
    char n[300];
    memset(n, 'a', sizeof n);
    n[249] = 0;
    CHECK(name_ok(n));
    n[249] = 'a';
    n[250] = 0;
    CHECK(!name_ok(n));
    CHECK(name_ok("a"));
    CHECK(name_ok("orders"));
    CHECK(name_ok("Orders.v2_final-1"));
    CHECK(name_ok("__consumer_offsets"));
    CHECK(name_ok("..."));
    CHECK(name_ok(".hidden"));
    CHECK(name_ok("a..b"));
    CHECK(!name_ok(""));
    CHECK(!name_ok("."));
    CHECK(!name_ok(".."));
    CHECK(!name_ok("a b"));
    CHECK(!name_ok("a/b"));
    CHECK(!name_ok("../etc"));
    CHECK(!name_ok("a\\b"));
    CHECK(!name_ok("a:b"));
    CHECK(!name_ok("a*"));
    CHECK(!name_ok("caf\xc3\xa9"));
    CHECK(!name_ok("tab\t"));
    /* the length is what counts, not a NUL */
    const char *why;
    CHECK_EQ(catalog_check_name("ab\0cd", 5, &why), -1);
    CHECK_EQ(catalog_check_name("ab\0cd", 2, &why), 0);
    CHECK_EQ(catalog_check_name("..x", 2, &why), -1);
}

static const char *datadir(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/data", test_tmpdir());
    return p;
}

static int exists(const char *fmt, const char *a)
{
    char p[1024];
    snprintf(p, sizeof p, fmt, datadir(), a);
    struct stat st;
    return stat(p, &st) == 0;
}

static int64_t append_one(struct partition *p, const char *value)
{
    struct records_rec r = {NULL, -1, (const uint8_t *)value, (int32_t)strlen(value), 1000, NULL, 0};
    struct obuf b;
    obuf_init(&b);
    CHECK_EQ(records_build_v2(&b, COMPRESS_NONE, 1000, &r, 1, -1, -1, -1), 0);
    int64_t base = -1;
    CHECK_EQ(plog_append(p->log, b.data, b.len, clock_wall_ms(), &base), 0);
    obuf_free(&b);
    return base;
}

static void open_catalog(struct catalog *c, const struct config *broker)
{
    char err[256] = "";
    int rc = catalog_open(c, datadir(), broker, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  catalog_open: %s\n", err);
    CHECK_EQ(rc, 0);
}

TEST(catalog_open_fresh_directory)
{
    struct config broker;
    config_init(&broker);
    config_set(&broker, "broker.id", "7");
    struct catalog c;
    open_catalog(&c, &broker);
    CHECK(exists("%s/topics", ""));
    CHECK(exists("%s/meta.properties", ""));
    CHECK_EQ(strlen(c.cluster_id), 22);
    for (int i = 0; i < 22; i++) {
        char ch = c.cluster_id[i];
        CHECK((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_');
    }
    CHECK_EQ(c.ntopics, 0);
    CHECK(c.was_clean); /* a new directory has nothing to recover */
    char cid[32];
    strcpy(cid, c.cluster_id);
    struct config meta;
    config_init(&meta);
    char path[600], err[128];
    snprintf(path, sizeof path, "%s/meta.properties", datadir());
    CHECK_EQ(config_load_file(&meta, path, err, sizeof err), 0);
    CHECK(strcmp(config_get(&meta, "cluster.id"), cid) == 0);
    CHECK(strcmp(config_get(&meta, "broker.id"), "7") == 0);
    config_free(&meta);
    catalog_close(&c);
    CHECK(exists("%s/.clean-shutdown", ""));
    /* reopen: same cluster id, clean, and the mark is consumed */
    open_catalog(&c, &broker);
    CHECK(strcmp(c.cluster_id, cid) == 0);
    CHECK(c.was_clean);
    CHECK(!exists("%s/.clean-shutdown", ""));
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_create_find_and_errors)
{
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    struct config over;
    config_init(&over);
    config_set(&over, "retention.ms", "1000");
    config_set(&over, "segment.bytes", "4096");
    struct topic *t = NULL;
    char err[256];
    CHECK_EQ(catalog_create(&c, "orders", 3, &over, &t, err, sizeof err), 0);
    CHECK(t);
    CHECK(strcmp(t->name, "orders") == 0);
    CHECK_EQ(t->npartitions, 3);
    CHECK(!kuuid_is_zero(&t->id));
    CHECK(!t->internal);
    CHECK_EQ(t->settings.retention_ms, 1000);
    CHECK_EQ(t->settings.segment_bytes, 4096);
    CHECK(strcmp(config_get(&t->overrides, "retention.ms"), "1000") == 0);
    CHECK(exists("%s/topics/%s/topic.properties", "orders"));
    CHECK(exists("%s/topics/%s/0", "orders"));
    CHECK(exists("%s/topics/%s/2", "orders"));
    CHECK(!exists("%s/topics/%s/3", "orders"));
    CHECK(catalog_find(&c, "orders", 6) == t);
    CHECK(catalog_find(&c, "ordersX", 6) == t); /* by length */
    CHECK(catalog_find(&c, "order", 5) == NULL);
    CHECK(catalog_find(&c, "orders2", 7) == NULL);
    for (int i = 0; i < 3; i++) {
        struct partition *p = catalog_partition(t, i);
        CHECK(p);
        CHECK_EQ(p->index, i);
        CHECK(p->topic == t);
        CHECK(p->log);
        CHECK(p->log->settings == &t->settings);
    }
    CHECK(catalog_partition(t, 3) == NULL);
    CHECK(catalog_partition(t, -1) == NULL);
    CHECK(catalog_partition(NULL, 0) == NULL);
    /* errors */
    CHECK_EQ(catalog_create(&c, "orders", 1, NULL, NULL, err, sizeof err), KERR_TOPIC_ALREADY_EXISTS);
    CHECK(strstr(err, "orders") != NULL);
    CHECK_EQ(catalog_create(&c, "bad name", 1, NULL, NULL, err, sizeof err), KERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ(catalog_create(&c, "..", 1, NULL, NULL, err, sizeof err), KERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ(catalog_create(&c, "zero", 0, NULL, NULL, err, sizeof err), KERR_INVALID_PARTITIONS);
    CHECK_EQ(catalog_create(&c, "neg", -3, NULL, NULL, err, sizeof err), KERR_INVALID_PARTITIONS);
    CHECK_EQ(c.ntopics, 1);
    CHECK(!exists("%s/topics/%s", "zero"));
    /* internal topics */
    CHECK_EQ(catalog_create(&c, "__consumer_offsets", 1, NULL, &t, err, sizeof err), 0);
    CHECK(t->internal);
    CHECK_EQ(c.ntopics, 2);
    catalog_close(&c);
    config_free(&over);
    config_free(&broker);
}

TEST(catalog_persists_across_reopen)
{
    struct config broker;
    config_init(&broker);
    config_set(&broker, "log.retention.hours", "2");
    struct catalog c;
    open_catalog(&c, &broker);
    struct config over;
    config_init(&over);
    config_set(&over, "cleanup.policy", "compact");
    char err[256];
    struct topic *a, *b;
    CHECK_EQ(catalog_create(&c, "alpha", 2, &over, &a, err, sizeof err), 0);
    CHECK_EQ(catalog_create(&c, "beta", 1, NULL, &b, err, sizeof err), 0);
    kuuid ida = a->id, idb = b->id;
    CHECK(memcmp(ida.b, idb.b, 16) != 0);
    CHECK_EQ(append_one(catalog_partition(a, 1), "one"), 0);
    CHECK_EQ(append_one(catalog_partition(a, 1), "two"), 1);
    CHECK_EQ(append_one(catalog_partition(b, 0), "x"), 0);
    catalog_close(&c);
    config_free(&over);

    open_catalog(&c, &broker);
    CHECK(c.was_clean);
    CHECK_EQ(c.ntopics, 2);
    a = catalog_find(&c, "alpha", 5);
    b = catalog_find(&c, "beta", 4);
    CHECK(a && b);
    CHECK(memcmp(a->id.b, ida.b, 16) == 0);
    CHECK(memcmp(b->id.b, idb.b, 16) == 0);
    CHECK_EQ(a->npartitions, 2);
    CHECK_EQ(b->npartitions, 1);
    CHECK(strcmp(config_get(&a->overrides, "cleanup.policy"), "compact") == 0);
    CHECK_EQ(a->overrides.n, 1);
    CHECK_EQ(b->overrides.n, 0);
    CHECK(a->settings.compact);
    CHECK(!b->settings.compact);
    CHECK_EQ(a->settings.retention_ms, 7200000); /* from the broker's hours */
    CHECK_EQ(catalog_partition(a, 0)->log->next_offset, 0);
    CHECK_EQ(catalog_partition(a, 1)->log->next_offset, 2);
    CHECK_EQ(catalog_partition(b, 0)->log->next_offset, 1);
    struct plog_slice s;
    CHECK_EQ(plog_read(catalog_partition(a, 1)->log, 1, 1 << 20, false, &s), 0);
    CHECK(s.len > 0);
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_add_partitions_and_set_config_persist)
{
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    char err[256];
    struct topic *t;
    CHECK_EQ(catalog_create(&c, "grow", 2, NULL, &t, err, sizeof err), 0);
    CHECK_EQ(append_one(catalog_partition(t, 0), "keep"), 0);
    CHECK_EQ(catalog_add_partitions(&c, t, 5, err, sizeof err), 0);
    CHECK_EQ(t->npartitions, 5);
    CHECK(catalog_partition(t, 4) != NULL);
    CHECK_EQ(catalog_partition(t, 4)->index, 4);
    CHECK(catalog_partition(t, 4)->topic == t);
    CHECK_EQ(catalog_partition(t, 0)->log->next_offset, 1); /* old data kept */
    CHECK(exists("%s/topics/%s/4", "grow"));
    CHECK_EQ(catalog_add_partitions(&c, t, 5, err, sizeof err), KERR_INVALID_PARTITIONS);
    CHECK_EQ(catalog_add_partitions(&c, t, 3, err, sizeof err), KERR_INVALID_PARTITIONS);
    CHECK_EQ(t->npartitions, 5);
    struct config over;
    config_init(&over);
    config_set(&over, "retention.ms", "5000");
    CHECK_EQ(catalog_set_config(&c, t, &over), 0);
    CHECK_EQ(t->settings.retention_ms, 5000);
    config_free(&over);
    catalog_close(&c);

    open_catalog(&c, &broker);
    t = catalog_find(&c, "grow", 4);
    CHECK(t);
    CHECK_EQ(t->npartitions, 5);
    CHECK_EQ(catalog_partition(t, 0)->log->next_offset, 1);
    CHECK(strcmp(config_get(&t->overrides, "retention.ms"), "5000") == 0);
    CHECK_EQ(t->settings.retention_ms, 5000);
    /* replacing the overrides drops the old ones */
    struct config none;
    config_init(&none);
    CHECK_EQ(catalog_set_config(&c, t, &none), 0);
    CHECK_EQ(t->settings.retention_ms, 604800000);
    catalog_close(&c);
    open_catalog(&c, &broker);
    t = catalog_find(&c, "grow", 4);
    CHECK_EQ(t->overrides.n, 0);
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_delete_removes_data)
{
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    char err[256];
    struct topic *t;
    CHECK_EQ(catalog_create(&c, "doomed", 3, NULL, &t, err, sizeof err), 0);
    CHECK_EQ(catalog_create(&c, "kept", 1, NULL, NULL, err, sizeof err), 0);
    append_one(catalog_partition(t, 2), "bye");
    catalog_delete(&c, t);
    CHECK_EQ(c.ntopics, 1);
    CHECK(catalog_find(&c, "doomed", 6) == NULL);
    CHECK(catalog_find(&c, "kept", 4) != NULL);
    CHECK(!exists("%s/topics/%s", "doomed"));
    /* the name can be used again, with a new id and empty logs */
    CHECK_EQ(catalog_create(&c, "doomed", 1, NULL, &t, err, sizeof err), 0);
    CHECK_EQ(catalog_partition(t, 0)->log->next_offset, 0);
    catalog_close(&c);
    open_catalog(&c, &broker);
    CHECK_EQ(c.ntopics, 2);
    t = catalog_find(&c, "doomed", 6);
    CHECK(t);
    CHECK_EQ(t->npartitions, 1);
    catalog_delete(&c, t);
    catalog_close(&c);
    open_catalog(&c, &broker);
    CHECK_EQ(c.ntopics, 1);
    CHECK(catalog_find(&c, "doomed", 6) == NULL);
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_unclean_stop_is_detected_and_recovered)
{
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    char err[256];
    CHECK_EQ(catalog_create(&c, "crashy", 1, NULL, NULL, err, sizeof err), 0);
    catalog_close(&c);
    /* a child appends and dies without closing (no clean mark) */
    pid_t pid = fork();
    if (pid == 0) {
        struct catalog cc;
        char e2[256];
        if (catalog_open(&cc, datadir(), &broker, e2, sizeof e2) != 0)
            _exit(2);
        struct topic *t = catalog_find(&cc, "crashy", 6);
        if (!t)
            _exit(3);
        for (int i = 0; i < 3; i++)
            append_one(catalog_partition(t, 0), "data");
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(!exists("%s/.clean-shutdown", ""));
    open_catalog(&c, &broker);
    CHECK(!c.was_clean);
    struct topic *t = catalog_find(&c, "crashy", 6);
    CHECK(t);
    CHECK_EQ(catalog_partition(t, 0)->log->next_offset, 3);
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_skips_broken_topic_directories)
{
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    char err[256];
    CHECK_EQ(catalog_create(&c, "good", 1, NULL, NULL, err, sizeof err), 0);
    catalog_close(&c);
    char p[700];
    /* no topic.properties */
    snprintf(p, sizeof p, "%s/topics/empty-dir", datadir());
    CHECK_EQ(mkdir(p, 0755), 0);
    /* a bad partition count */
    snprintf(p, sizeof p, "%s/topics/bad-count", datadir());
    CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/topics/bad-count/topic.properties", datadir());
    FILE *f = fopen(p, "w");
    fputs("partitions=0\ntopic.id=000102030405060708090a0b0c0d0e0f\n", f);
    fclose(f);
    /* a name that is not a valid topic */
    snprintf(p, sizeof p, "%s/topics/not valid", datadir());
    CHECK_EQ(mkdir(p, 0755), 0);
    open_catalog(&c, &broker);
    CHECK_EQ(c.ntopics, 1);
    CHECK(catalog_find(&c, "good", 4) != NULL);
    catalog_close(&c);
    config_free(&broker);
}

TEST(catalog_data_dir_is_locked)
{
    size_t base = alloc_live_bytes();
    struct config broker;
    config_init(&broker);
    struct catalog c, c2;
    open_catalog(&c, &broker);
    char err[256] = "";
    /* a second open, in this process or another, is refused before it
     * touches anything (the clean mark in particular) */
    CHECK_EQ(catalog_open(&c2, datadir(), &broker, err, sizeof err), -1);
    CHECK(strstr(err, "in use by another process") != NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct catalog cc;
        char e2[256];
        _exit(catalog_open(&cc, datadir(), &broker, e2, sizeof e2) == -1 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    catalog_close(&c);
    /* the lock goes with the catalog */
    open_catalog(&c2, &broker);
    CHECK(c2.was_clean);
    catalog_close(&c2);
    config_free(&broker);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(catalog_no_leaks)
{
    size_t base = alloc_live_bytes();
    struct config broker;
    config_init(&broker);
    struct catalog c;
    open_catalog(&c, &broker);
    char err[256];
    struct topic *t;
    CHECK_EQ(catalog_create(&c, "t1", 4, NULL, &t, err, sizeof err), 0);
    CHECK_EQ(catalog_add_partitions(&c, t, 6, err, sizeof err), 0);
    CHECK_EQ(catalog_create(&c, "t2", 2, NULL, &t, err, sizeof err), 0);
    catalog_delete(&c, t);
    catalog_close(&c);
    open_catalog(&c, &broker);
    catalog_close(&c);
    config_free(&broker);
    CHECK_EQ(alloc_live_bytes(), base);
}
