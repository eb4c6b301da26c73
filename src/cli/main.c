/* main.c: bin/shopstream, one binary with subcommands (DESIGN.md, "Command-line
 * contract").  Dispatch only; each subcommand lives in its own cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"demo", cmd_demo, "broker, processors, simulator and dashboard in one process"},
    {"broker", cmd_broker, "run the Kafka-compatible broker"},
    {"topic", cmd_topic, "create, list, describe, delete or alter topics"},
    {"cluster", cmd_cluster, "cluster health: controller, brokers, offline or under-replicated partitions"},
    {"produce", cmd_produce, "console producer: lines on stdin become records"},
    {"consume", cmd_consume, "console consumer: records become lines on stdout"},
    {"group", cmd_group, "list, describe, reset offsets of or delete consumer groups"},
    {"simulate", cmd_simulate, "generate realistic synthetic shop traffic"},
    {"process", cmd_process, "run the stream processors (orders, aftersales, all)"},
    {"serve", cmd_serve, "HTTP API, dashboard and Prometheus metrics over the result topics"},
    {"bench", cmd_bench, "benchmarks: produce, consume, e2e, start, memory, process"},
    {"replay", cmd_replay, "replay a public dataset (online-retail, olist, yoochoose) as events"},
    {"eval", cmd_eval, "offline evaluation: eval recommend --train FILE --test FILE [--k 20]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: shopstream COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`shopstream COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "shopstream: unknown command '%s'; see `shopstream --help`.\n", argv[1]);
    return 2;
}
