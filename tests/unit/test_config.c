/* test_config.c: properties files and strict number parsing
 * (common/config.c). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/config.h"
#include "test.h"

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *read_all(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

TEST(config_load_properties_syntax)
{
    const char *path = write_file("a.properties",
                                  "# a comment\n"
                                  "! another comment\n"
                                  "\n"
                                  "   \t\n"
                                  "broker.id=1\n"
                                  "  log.dirs = /tmp/data  \n"
                                  "listeners: PLAINTEXT://:9092\n"
                                  "\tnum.partitions\t=\t3\t\n"
                                  "   # indented comment\n"
                                  "empty=\n"
                                  "url=a=b:c\n"
                                  "colon:x=y\n"
                                  "crlf=yes\r\n"
                                  "broker.id=7\n"
                                  "last=no newline at end");
    struct config c;
    config_init(&c);
    char err[256] = "";
    CHECK_EQ(config_load_file(&c, path, err, sizeof err), 0);
    CHECK(strcmp(config_get(&c, "broker.id"), "7") == 0); /* later overrides */
    CHECK(strcmp(config_get(&c, "log.dirs"), "/tmp/data") == 0);
    CHECK(strcmp(config_get(&c, "listeners"), "PLAINTEXT://:9092") == 0);
    CHECK(strcmp(config_get(&c, "num.partitions"), "3") == 0);
    CHECK(strcmp(config_get(&c, "empty"), "") == 0);
    CHECK(strcmp(config_get(&c, "url"), "a=b:c") == 0); /* first separator wins */
    CHECK(strcmp(config_get(&c, "colon"), "x=y") == 0);
    CHECK(strcmp(config_get(&c, "crlf"), "yes") == 0);
    CHECK(strcmp(config_get(&c, "last"), "no newline at end") == 0);
    CHECK(config_get(&c, "# a comment") == NULL);
    CHECK(config_get(&c, "a comment") == NULL);
    CHECK(config_get(&c, "missing") == NULL);
    CHECK(config_has(&c, "empty"));
    CHECK(!config_has(&c, "missing"));
    /* broker.id set twice is still one entry, at its first position */
    CHECK_EQ(c.n, 9);
    CHECK(strcmp(c.entries[0].key, "broker.id") == 0);
    config_free(&c);
    CHECK_EQ(c.n, 0);
}

TEST(config_set_pair_overrides_file)
{
    const char *path = write_file("b.properties", "a=1\nb=2\n");
    struct config c;
    config_init(&c);
    char err[256];
    CHECK_EQ(config_load_file(&c, path, err, sizeof err), 0);
    CHECK_EQ(config_set_pair(&c, "b = 20", err, sizeof err), 0);
    CHECK_EQ(config_set_pair(&c, "c:30", err, sizeof err), 0);
    CHECK(strcmp(config_get(&c, "a"), "1") == 0);
    CHECK(strcmp(config_get(&c, "b"), "20") == 0);
    CHECK(strcmp(config_get(&c, "c"), "30") == 0);
    CHECK_EQ(config_set_pair(&c, "novalue", err, sizeof err), -1);
    CHECK(strstr(err, "novalue") != NULL);
    CHECK_EQ(config_set_pair(&c, " = v", err, sizeof err), -1);
    CHECK_EQ(config_set_pair(&c, "=v", err, sizeof err), -1);
    CHECK_EQ(c.n, 3);
    config_free(&c);
}

TEST(config_load_errors)
{
    struct config c;
    config_init(&c);
    char err[256] = "";
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope.properties", test_tmpdir());
    CHECK_EQ(config_load_file(&c, missing, err, sizeof err), -1);
    CHECK(strstr(err, "nope.properties") != NULL);
    const char *path = write_file("bad.properties", "a=1\n# ok\njust a line\nb=2\n");
    CHECK_EQ(config_load_file(&c, path, err, sizeof err), -1);
    CHECK(strstr(err, ":3:") != NULL); /* names the line */
    config_free(&c);
}

TEST(config_set_get_remove)
{
    struct config c;
    config_init(&c);
    for (int i = 0; i < 100; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        CHECK_EQ(config_set(&c, k, v), 0);
    }
    CHECK_EQ(c.n, 100);
    CHECK(strcmp(config_get(&c, "k57"), "v57") == 0);
    CHECK_EQ(config_set(&c, "k57", "changed"), 0);
    CHECK_EQ(c.n, 100);
    CHECK(strcmp(config_get(&c, "k57"), "changed") == 0);
    CHECK_EQ(config_remove(&c, "k0"), 0);
    CHECK_EQ(config_remove(&c, "k0"), -1);
    CHECK_EQ(c.n, 99);
    CHECK(config_get(&c, "k0") == NULL);
    CHECK(strcmp(config_get(&c, "k1"), "v1") == 0);
    CHECK(strcmp(config_get(&c, "k99"), "v99") == 0);
    CHECK(strcmp(c.entries[0].key, "k1") == 0); /* order kept */
    CHECK_EQ(config_remove(&c, "k99"), 0);
    CHECK_EQ(c.n, 98);
    config_free(&c);
}

TEST(config_save_load_roundtrip)
{
    size_t base = alloc_live_bytes();
    struct config c;
    config_init(&c);
    config_set(&c, "z.last", "1");
    config_set(&c, "a.first", "two words");
    config_set(&c, "empty", "");
    config_set(&c, "url", "http://x:1/?a=b");
    char path[512];
    snprintf(path, sizeof path, "%s/saved.properties", test_tmpdir());
    CHECK_EQ(config_save_file(&c, path), 0);
    CHECK(strcmp(read_all(path), "z.last=1\na.first=two words\nempty=\nurl=http://x:1/?a=b\n") == 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "r");
    CHECK(f == NULL); /* the temporary was renamed away */
    struct config d;
    config_init(&d);
    char err[256];
    CHECK_EQ(config_load_file(&d, path, err, sizeof err), 0);
    CHECK_EQ(d.n, c.n);
    for (int i = 0; i < c.n; i++) {
        CHECK(strcmp(d.entries[i].key, c.entries[i].key) == 0);
        CHECK(strcmp(d.entries[i].value, c.entries[i].value) == 0);
    }
    /* saving again replaces the file */
    config_set(&c, "z.last", "9");
    config_remove(&c, "url");
    CHECK_EQ(config_save_file(&c, path), 0);
    CHECK(strcmp(read_all(path), "z.last=9\na.first=two words\nempty=\n") == 0);
    config_free(&c);
    config_free(&d);
    CHECK_EQ(alloc_live_bytes(), base);
}

TEST(config_save_to_missing_directory_fails)
{
    struct config c;
    config_init(&c);
    config_set(&c, "a", "b");
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/x.properties", test_tmpdir());
    CHECK_EQ(config_save_file(&c, path), -1);
    config_free(&c);
}

TEST(config_parse_i64_strict)
{
    int64_t v = 99;
    CHECK_EQ(config_parse_i64("0", &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(config_parse_i64("-5", &v), 0);
    CHECK_EQ(v, -5);
    CHECK_EQ(config_parse_i64("9223372036854775807", &v), 0);
    CHECK(v == INT64_MAX);
    CHECK_EQ(config_parse_i64("-9223372036854775808", &v), 0);
    CHECK(v == INT64_MIN);
    v = 42;
    CHECK_EQ(config_parse_i64("12x", &v), -1);
    CHECK_EQ(config_parse_i64("", &v), -1);
    CHECK_EQ(config_parse_i64(NULL, &v), -1);
    CHECK_EQ(config_parse_i64("9223372036854775808", &v), -1);
    CHECK_EQ(config_parse_i64("-9223372036854775809", &v), -1);
    CHECK_EQ(config_parse_i64("99999999999999999999999", &v), -1);
    CHECK_EQ(config_parse_i64("1.5", &v), -1);
    CHECK_EQ(config_parse_i64("0x10", &v), -1);
    CHECK_EQ(config_parse_i64("12 ", &v), -1);
    CHECK_EQ(config_parse_i64("-", &v), -1);
    CHECK_EQ(config_parse_i64("abc", &v), -1);
    CHECK_EQ(v, 42); /* untouched on failure */
}

TEST(config_parse_double_strict)
{
    double d = 0;
    CHECK_EQ(config_parse_double("0.5", &d), 0);
    CHECK(d == 0.5);
    CHECK_EQ(config_parse_double("-1e3", &d), 0);
    CHECK(d == -1000.0);
    CHECK_EQ(config_parse_double("3", &d), 0);
    CHECK(d == 3.0);
    d = 7;
    CHECK_EQ(config_parse_double("", &d), -1);
    CHECK_EQ(config_parse_double(NULL, &d), -1);
    CHECK_EQ(config_parse_double("0.5x", &d), -1);
    CHECK_EQ(config_parse_double("1e999", &d), -1); /* overflow */
    CHECK_EQ(config_parse_double("x", &d), -1);
    CHECK(d == 7);
}

TEST(config_parse_bool_strict)
{
    bool b = false;
    CHECK_EQ(config_parse_bool("true", &b), 0);
    CHECK(b);
    CHECK_EQ(config_parse_bool("FALSE", &b), 0);
    CHECK(!b);
    CHECK_EQ(config_parse_bool("True", &b), 0);
    CHECK(b);
    CHECK_EQ(config_parse_bool("yes", &b), -1);
    CHECK_EQ(config_parse_bool("1", &b), -1);
    CHECK_EQ(config_parse_bool("", &b), -1);
    CHECK_EQ(config_parse_bool("truex", &b), -1);
    CHECK_EQ(config_parse_bool(NULL, &b), -1);
    CHECK(b);
}

TEST(config_set_out_of_memory)
{
    struct config c;
    config_init(&c);
    CHECK_EQ(config_set(&c, "a", "1"), 0);
    size_t live = alloc_live_bytes();
    for (long n = 0; n < 3; n++) {
        alloc_fail_after(n);
        int rc = config_set(&c, "newkey", "v");
        alloc_fail_after(-1);
        if (rc == 0) {
            CHECK(strcmp(config_get(&c, "newkey"), "v") == 0);
            break;
        }
        CHECK_EQ(rc, -1);
        CHECK(config_get(&c, "newkey") == NULL);
        CHECK_EQ(c.n, 1);
        CHECK_EQ(alloc_live_bytes(), live); /* nothing leaked */
    }
    alloc_fail_after(0);
    char err[64];
    CHECK_EQ(config_set_pair(&c, "a=2", err, sizeof err), -1);
    alloc_fail_after(-1);
    CHECK(strcmp(config_get(&c, "a"), "1") == 0); /* unchanged on failure */
    config_free(&c);
}
