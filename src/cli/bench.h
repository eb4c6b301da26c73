/* bench.h: what the `shopstream bench` modes share.  Each mode is one file
 * (bench_<mode>.c) with one entry point taking argv with argv[0] = the mode
 * name; it prints one line of JSON on stdout and errors as one sentence on
 * stderr, and returns the exit code.
 *
 * A mode given no --bootstrap starts a private broker: this binary, on a
 * free 127.0.0.1 port, with its data in a temporary directory that is
 * removed afterwards, and extra broker settings (--set k=v) when asked. */
#ifndef SHOPSTREAM_BENCH_H
#define SHOPSTREAM_BENCH_H

#include <stdint.h>
#include <sys/types.h>

#define BENCH_CMD "shopstream bench"

int bench_process(int argc, char **argv);
int bench_produce(int argc, char **argv);
int bench_consume(int argc, char **argv);
int bench_e2e(int argc, char **argv);
int bench_start(int argc, char **argv);
int bench_memory(int argc, char **argv);

/* Options several modes share; a mode passes the set it takes
 * (BENCH_OPT_* bits) and its defaults in the struct. */
enum {
    BENCH_OPT_RECORDS = 1 << 0,      /* --records N */
    BENCH_OPT_RECORD_BYTES = 1 << 1, /* --record-bytes S (at least min_record_bytes) */
    BENCH_OPT_ACKS = 1 << 2,         /* --acks 0|1|all */
    BENCH_OPT_LINGER = 1 << 3,       /* --linger-ms L */
    BENCH_OPT_COMPRESSION = 1 << 4,  /* --compression C (librdkafka checks the name) */
    BENCH_OPT_PARTITIONS = 1 << 5,   /* --partitions P */
    BENCH_OPT_TOPIC = 1 << 6,        /* --topic T */
    BENCH_OPT_SET = 1 << 7,          /* --set k=v, for the private broker */
};
#define BENCH_MAX_SETS 16

struct bench_opts {
    long long records;
    int record_bytes, min_record_bytes;
    const char *acks, *linger, *codec;
    long long partitions;
    const char *topic;
    int topic_given;
    const char *sets[BENCH_MAX_SETS + 1];   /* NULL-terminated */
    int nsets;
};

struct client_opts;
/* Looks at argv[*i]: a client option (--bootstrap, -X, --timeout-ms) or
 * one of the shared options in allowed is consumed with its value (*i
 * advanced) and 1 returned; 0 when it is neither; -1 after printing one
 * sentence prefixed by cmd. */
int bench_opts_take(struct bench_opts *b, int allowed, struct client_opts *o, const char *cmd, int argc,
                    char **argv, int *i);
/* 1 when argv[i] asks for help. */
int bench_is_help(const char *arg);

/* A broker process started by a bench. */
struct bench_broker {
    pid_t pid;
    int port;
    char bootstrap[64];     /* "127.0.0.1:PORT" */
    char dir[64];           /* its data dir when temporary, else "" */
    int64_t start_us;       /* monotonic time of the spawn */
    int64_t ready_us;       /* monotonic time of the first accepted connection */
};

/* Starts `shopstream broker` on a free port.  data_dir NULL: a fresh
 * temporary directory, removed by bench_broker_stop.  sets: NULL-terminated
 * "key=value" broker settings, or NULL.  Waits until it accepts a
 * connection (polling connect every 100 us, so ready_us - start_us is its
 * start-up time to the first accepted connection).  quiet sends its output
 * to /dev/null.  Returns 0, or -1 with a sentence on stderr. */
int bench_broker_start(struct bench_broker *b, const char *data_dir, const char *const *sets, int quiet);
/* SIGTERM, wait for it, remove the temporary data dir. */
void bench_broker_stop(struct bench_broker *b);

typedef struct rd_kafka_s rd_kafka_t;
/* Creates topic with the given partitions unless it exists, or has the
 * cluster create it on first use where the Admin API cannot (librdkafka's
 * mock cluster, which then picks the partition count).  Returns the
 * topic's partition count, or -1 with a sentence on stderr. */
int bench_topic_ensure(rd_kafka_t *admin, const struct client_opts *o, const char *topic, int partitions);

/* The cluster a mode measures: o->bootstrap when given (then --set, which
 * configures a private broker, is refused), else a private broker started
 * with bo's settings, whose address goes into o->bootstrap.  Returns 0, or
 * the exit code (2: bad options, 1: no broker) after one sentence. */
int bench_target(struct bench_broker *b, struct client_opts *o, const struct bench_opts *bo, const char *cmd);

/* Resident set size of a process in KiB (VmRSS), or -1. */
long bench_rss_kb(pid_t pid);
/* A free TCP port on 127.0.0.1, or -1. */
int bench_free_port(void);
/* Spawns this binary with argv (argv[0] is ignored); quiet: output to
 * /dev/null.  Returns the pid or -1. */
pid_t bench_spawn_self(char *const argv[], int quiet);
/* Runs this binary with argv and waits; returns its exit code or -1. */
int bench_run_self(char *const argv[], int quiet);
/* Monotonic time in microseconds. */
int64_t bench_now_us(void);

/* Percentile q (0..1) of n sorted values, nearest rank; 0 when n is 0. */
int64_t bench_percentile(const int64_t *sorted, size_t n, double q);
/* Sorts n int64 values ascending. */
void bench_sort(int64_t *v, size_t n);

#endif
