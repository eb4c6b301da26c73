/* bench_util.c: the private broker and the small helpers of bench.h. */
#include "cli/bench.h"
#include "cli/client_opts.h"
#include "stream/topics.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int bench_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

pid_t bench_spawn_self(char *const argv[], int quiet)
{
    pid_t pid;
    posix_spawn_file_actions_t fa;

    posix_spawn_file_actions_init(&fa);
    if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

int bench_run_self(char *const argv[], int quiet)
{
    int st;
    pid_t pid = bench_spawn_self(argv, quiet);

    if (pid < 0)
        return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Polls connect() until the port accepts, the process exits, or 30 s. */
static int wait_ready(struct bench_broker *b)
{
    struct sockaddr_in a;
    int64_t deadline = bench_now_us() + 30 * 1000000LL;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)b->port);
    while (bench_now_us() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok) {
            b->ready_us = bench_now_us();
            return 0;
        }
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            b->pid = -1;
            return -1;
        }
        usleep(100);
    }
    return -1;
}

int bench_broker_start(struct bench_broker *b, const char *data_dir, const char *const *sets, int quiet)
{
    char *argv[64];
    int n = 0;

    memset(b, 0, sizeof *b);
    b->pid = -1;
    b->port = bench_free_port();
    if (b->port < 0) {
        fprintf(stderr, "%s: no free port for a private broker: %s.\n", BENCH_CMD, strerror(errno));
        return -1;
    }
    if (!data_dir) {
        snprintf(b->dir, sizeof b->dir, "/tmp/shopstream-bench.XXXXXX");
        if (!mkdtemp(b->dir)) {
            fprintf(stderr, "%s: cannot make a data dir for a private broker: %s.\n", BENCH_CMD,
                    strerror(errno));
            b->dir[0] = '\0';
            return -1;
        }
        data_dir = b->dir;
    }
    snprintf(b->bootstrap, sizeof b->bootstrap, "127.0.0.1:%d", b->port);
    argv[n++] = "shopstream";
    argv[n++] = "broker";
    argv[n++] = "--listen";
    argv[n++] = b->bootstrap;
    argv[n++] = "--data-dir";
    argv[n++] = (char *)data_dir;
    argv[n++] = "--set";
    argv[n++] = "group.initial.rebalance.delay.ms=0";
    for (int i = 0; sets && sets[i] && n < 60; i++) {
        argv[n++] = "--set";
        argv[n++] = (char *)sets[i];
    }
    argv[n] = NULL;
    b->start_us = bench_now_us();
    if ((b->pid = bench_spawn_self(argv, quiet)) < 0 || wait_ready(b) < 0) {
        fprintf(stderr, "%s: the private broker did not start.\n", BENCH_CMD);
        bench_broker_stop(b);
        return -1;
    }
    return 0;
}

void bench_broker_stop(struct bench_broker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        b->pid = -1;
    }
    if (b->dir[0]) {
        char *rargv[] = {"rm", "-rf", b->dir, NULL};
        pid_t p;
        if (posix_spawnp(&p, "rm", NULL, NULL, rargv, environ) == 0)
            waitpid(p, NULL, 0);
        b->dir[0] = '\0';
    }
}

long bench_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

void bench_sort(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
}

int64_t bench_percentile(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    /* nearest rank: the smallest value with at least q of the values at or below it */
    size_t rank = (size_t)(q * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* Some peers (librdkafka's mock cluster) name a controller that does not
 * exist, so the Admin API cannot create topics there; they create a topic
 * with their default partition count when a client asks for its metadata. */
static int auto_create(const struct client_opts *o, const char *topic)
{
    const char *defaults[] = {"allow.auto.create.topics", "true", NULL};
    rd_kafka_conf_t *c = client_conf_new(o, BENCH_CMD, RD_KAFKA_PRODUCER, defaults);
    rd_kafka_t *rk = c ? client_handle_new(BENCH_CMD, RD_KAFKA_PRODUCER, c) : NULL;
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t;
    int rc = -1;

    if (!rk)
        return -1;
    if ((t = rd_kafka_topic_new(rk, topic, NULL))) {
        if (rd_kafka_metadata(rk, 0, t, &md, o->timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = 0;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
    }
    rd_kafka_destroy(rk);
    return rc;
}

int bench_topic_ensure(rd_kafka_t *admin, const struct client_opts *o, const char *topic, int partitions)
{
    struct stream_topic_spec spec = {topic, partitions, -1, 0};
    char err[512], err2[512];
    int n;

    /* an existing topic is used as it is (and the mock is not asked again) */
    if ((n = stream_topic_partitions(admin, topic, o->timeout_ms, err2, sizeof err2)) > 0)
        return n;
    if (stream_topics_create(admin, &spec, 1, o->timeout_ms, err, sizeof err) < 0 &&
        auto_create(o, topic) < 0) {
        fprintf(stderr, "%s: creating topic %s: %s.\n", BENCH_CMD, topic, err);
        return -1;
    }
    for (int tries = 0; tries < 50; tries++) {
        if ((n = stream_topic_partitions(admin, topic, o->timeout_ms, err2, sizeof err2)) != 0)
            break;
        usleep(100000);
    }
    if (n <= 0)
        fprintf(stderr, "%s: topic %s is not there: %s.\n", BENCH_CMD, topic, n < 0 ? err2 : err);
    return n > 0 ? n : -1;
}

int bench_is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int bench_opts_take(struct bench_opts *b, int allowed, struct client_opts *o, const char *cmd, int argc,
                    char **argv, int *i)
{
    const char *v;
    long long x;
    int t;

    if ((t = client_opts_take(o, cmd, argc, argv, i)) != 0)
        return t;
    if ((allowed & BENCH_OPT_RECORDS) && (t = client_opt_value(cmd, "--records", argc, argv, i, &v)) != 0)
        return t < 0 || client_parse_int(cmd, "--records", v, 1, 1000000000000LL, &b->records) < 0 ? -1 : 1;
    if ((allowed & BENCH_OPT_RECORD_BYTES) &&
        (t = client_opt_value(cmd, "--record-bytes", argc, argv, i, &v)) != 0) {
        if (t < 0 || client_parse_int(cmd, "--record-bytes", v, b->min_record_bytes, 1000000, &x) < 0)
            return -1;
        b->record_bytes = (int)x;
        return 1;
    }
    if ((allowed & BENCH_OPT_ACKS) && (t = client_opt_value(cmd, "--acks", argc, argv, i, &v)) != 0) {
        if (t < 0)
            return -1;
        if (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "all") && strcmp(v, "-1")) {
            fprintf(stderr, "%s: --acks must be 0, 1 or all, not '%s'.\n", cmd, v);
            return -1;
        }
        b->acks = v;
        return 1;
    }
    if ((allowed & BENCH_OPT_LINGER) && (t = client_opt_value(cmd, "--linger-ms", argc, argv, i, &v)) != 0) {
        if (t < 0 || client_parse_int(cmd, "--linger-ms", v, 0, 900000, &x) < 0)
            return -1;
        b->linger = v;
        return 1;
    }
    if ((allowed & BENCH_OPT_COMPRESSION) &&
        (t = client_opt_value(cmd, "--compression", argc, argv, i, &v)) != 0) {
        if (t < 0)
            return -1;
        b->codec = v;
        return 1;
    }
    if ((allowed & BENCH_OPT_PARTITIONS) &&
        (t = client_opt_value(cmd, "--partitions", argc, argv, i, &v)) != 0)
        return t < 0 || client_parse_int(cmd, "--partitions", v, 1, 100000, &b->partitions) < 0 ? -1 : 1;
    if ((allowed & BENCH_OPT_TOPIC) && (t = client_opt_value(cmd, "--topic", argc, argv, i, &v)) != 0) {
        if (t < 0)
            return -1;
        if (!*v) {
            fprintf(stderr, "%s: --topic needs a name.\n", cmd);
            return -1;
        }
        b->topic = v;
        b->topic_given = 1;
        return 1;
    }
    if ((allowed & BENCH_OPT_SET) && (t = client_opt_value(cmd, "--set", argc, argv, i, &v)) != 0) {
        if (t < 0)
            return -1;
        if (v[0] == '=' || !strchr(v, '=')) {
            fprintf(stderr, "%s: --set takes key=value, not '%s'.\n", cmd, v);
            return -1;
        }
        if (b->nsets >= BENCH_MAX_SETS) {
            fprintf(stderr, "%s: at most %d --set options are taken.\n", cmd, BENCH_MAX_SETS);
            return -1;
        }
        b->sets[b->nsets++] = v;
        b->sets[b->nsets] = NULL;
        return 1;
    }
    return 0;
}

int bench_target(struct bench_broker *b, struct client_opts *o, const struct bench_opts *bo, const char *cmd)
{
    if (bo->nsets && o->bootstrap) {
        fprintf(stderr, "%s: --set configures the private broker; it cannot go with --bootstrap.\n", cmd);
        return 2;
    }
    if (!o->bootstrap) {
        if (bench_broker_start(b, NULL, bo->sets, 1) < 0)
            return 1;
        o->bootstrap = b->bootstrap;
    }
    return 0;
}
