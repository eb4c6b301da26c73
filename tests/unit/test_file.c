/* test_file.c: common/file.c: mkdir -p semantics of file_mkdirs and the
 * atomic replace. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "test.h"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(file_mkdirs_creates_parents)
{
    char p[1024], f[600];
    snprintf(p, sizeof p, "%s/mk/a/b/c", test_tmpdir());
    CHECK(file_mkdirs(p) == 0);
    CHECK(is_dir(p));
    CHECK(file_mkdirs(p) == 0);          /* existing: fine */
    snprintf(p, sizeof p, "%s/mk/a//b/d/", test_tmpdir());
    CHECK(file_mkdirs(p) == 0);          /* doubled and trailing slashes */
    snprintf(p, sizeof p, "%s/mk/a/b/d", test_tmpdir());
    CHECK(is_dir(p));
    /* a file in the way */
    snprintf(f, sizeof f, "%s/mk/file", test_tmpdir());
    CHECK(file_replace(f, "x", 1) == 0);
    CHECK(file_mkdirs(f) == -1 && errno == ENOTDIR);
    snprintf(p, sizeof p, "%s/below", f);
    CHECK(file_mkdirs(p) == -1);
    CHECK(file_mkdirs("") == -1);
}
