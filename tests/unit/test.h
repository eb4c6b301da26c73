/* test.h: the unit-test registry.  Each TEST registers itself; bin/unit_tests
 * runs every test in its own child process (a crash fails one test, not the
 * run), or only the tests named on the command line.  The last line it prints
 * is "N passed, N failed". */
#ifndef SHOPSTREAM_TEST_H
#define SHOPSTREAM_TEST_H

#include <stdio.h>
#include <stdlib.h>

void test_register(const char *name, void (*fn)(void));

#define TEST(name)                                                         \
    static void name(void);                                                \
    __attribute__((constructor)) static void test_reg_##name(void)         \
    {                                                                      \
        test_register(#name, name);                                        \
    }                                                                      \
    static void name(void)

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ != b_) {                                                            \
            fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",  \
                    __FILE__, __LINE__, #a, a_, #b, b_);                           \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

/* A fresh empty directory under /tmp for this test; removed by the runner. */
const char *test_tmpdir(void);

#endif
