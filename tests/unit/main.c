/* main.c: the unit-test runner (see test.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 1024

static struct {
    const char *name;
    void (*fn)(void);
} tests[MAX_TESTS];
static int ntests;
static char tmpdir[256];

void test_register(const char *name, void (*fn)(void))
{
    if (ntests < MAX_TESTS)
        tests[ntests++] = (__typeof__(tests[0])){name, fn};
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/shopstream-unit-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return tmpdir;
}

static int run_one(int i)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        tests[i].fn();
        if (tmpdir[0]) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
            if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
        }
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok && WIFSIGNALED(st))
        fprintf(stderr, "  killed by signal %d\n", WTERMSIG(st));
    printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
    return ok;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    for (int i = 0; i < ntests; i++) {
        int selected = argc == 1;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], tests[i].name) == 0)
                selected = 1;
        if (!selected)
            continue;
        if (run_one(i))
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
