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

struct client_opts;
typedef struct rd_kafka_s rd_kafka_t;
/* Creates topic with the given partitions unless it exists, or has the
 * cluster create it on first use where the Admin API cannot (librdkafka's
 * mock cluster, which then picks the partition count).  Returns the
 * topic's partition count, or -1 with a sentence on stderr. */
int bench_topic_ensure(rd_kafka_t *admin, const struct client_opts *o, const char *topic, int partitions);

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
