/* cmd_bench.c: `shopstream bench MODE ...`: hands argv to the mode's file
 * (bench.h).  Every mode prints one line of JSON with its figures; `make
 * bench` (bench/suite.sh) runs them against shopstream and against a peer
 * broker and writes the summary table. */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/commands.h"

static const char usage_text[] =
    "usage: shopstream bench MODE [options]   (MODE --help for its options)\n"
    "\n"
    "  produce     producer throughput (librdkafka), any acks, producers and partitions;\n"
    "              with --consumers also consumers at once, and per-client figures\n"
    "  consume     consumer throughput from the start of a topic (shopstream's own\n"
    "              fetch client, or librdkafka)\n"
    "  e2e         produce-to-consume latency at a fixed rate: p50, p99, p99.9, max\n"
    "  start       broker start-up time to the first accepted connection\n"
    "  memory      broker resident memory idle and with many partitions and connections\n"
    "  process     a stream processor's throughput (analytics, recommend)\n"
    "\n"
    "Without --bootstrap each starts a private broker on a free port.\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} modes[] = {
    {"produce", bench_produce}, {"consume", bench_consume}, {"e2e", bench_e2e},
    {"start", bench_start},     {"memory", bench_memory},   {"process", bench_process},
};

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2)
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            if (!strcmp(argv[1], modes[i].name))
                return modes[i].run(argc - 1, argv + 1);
    int help = argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    if (argc > 1 && !help)
        fprintf(stderr, "%s: unknown mode '%s'.\n", BENCH_CMD, argv[1]);
    fputs(usage_text, help ? stdout : stderr);
    return help ? 0 : 2;
}
