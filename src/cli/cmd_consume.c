/* cmd_consume.c: `shopstream consume TOPIC`, the console consumer.  Prints
 * each record of TOPIC on any Kafka cluster as one line on stdout: the value,
 * or with --print-key "KEY<separator>VALUE" (separator default tab).  Null
 * keys and values print as empty text.
 *
 * Without --group it reads like an observer: it assigns itself every
 * partition (from metadata) or the one --partition names, starting at the end
 * unless --from-beginning or --offset says otherwise, under a throwaway
 * group.id that never joins a group and never commits.  With --group it is an
 * ordinary group member (subscribe, rebalances, auto-commit), starting where
 * the group left off, or at the earliest/latest offset for a new group.
 *
 * It stops cleanly (exit 0) after --count records, on SIGINT/SIGTERM, or when
 * --timeout-ms passes without a record. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "common/clock.h"

#define CMD "shopstream consume"

/* How long one poll may block, so signals and --timeout-ms are noticed. */
#define CONSUME_POLL_MS 100

static const char usage_text[] =
    "usage: shopstream consume TOPIC [--group G] [--from-beginning] [--count N]\n"
    "                          [--partition P] [--offset O] [--print-key] [--key-separator C]\n"
    "                          [--timeout-ms T]\n"
    "\n"
    "Prints the records of TOPIC to stdout, one value per line.\n"
    "\n"
    "  --group G          consume as member G of a consumer group (commits offsets);\n"
    "                     without it, read all partitions and commit nothing\n"
    "  --from-beginning   start at the earliest offset (default: the latest,\n"
    "                     or the group's committed offset)\n"
    "  --count N          stop after N records\n"
    "  --partition P      read only partition P (not with --group)\n"
    "  --offset O         start at offset O: a number, -N for N before the end,\n"
    "                     or earliest / latest (not with --group)\n"
    "  --print-key        print KEY<separator>VALUE\n"
    "  --key-separator C  separator for --print-key (default tab; \\t means tab)\n"
    "  --timeout-ms T     stop after T ms without a record (default: never)\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "\n"
    "Stops with exit 0 after --count records, on Ctrl-C / SIGTERM, or after --timeout-ms.\n";

/* Parses --offset: a non-negative offset, -N (N before the end), or a name.
 * Returns 0 and sets *off to an offset or a librdkafka logical offset. */
static int parse_offset(const char *v, int64_t *off)
{
    long long n;

    if (!strcmp(v, "earliest") || !strcmp(v, "beginning")) {
        *off = RD_KAFKA_OFFSET_BEGINNING;
        return 0;
    }
    if (!strcmp(v, "latest") || !strcmp(v, "end")) {
        *off = RD_KAFKA_OFFSET_END;
        return 0;
    }
    if (v[0] == '-') {
        if (client_parse_int(CMD, "--offset", v + 1, 1, INT64_MAX, &n) < 0)
            return -1;
        *off = RD_KAFKA_OFFSET_TAIL(n);
        return 0;
    }
    if (client_parse_int(CMD, "--offset", v, 0, INT64_MAX, &n) < 0)
        return -1;
    *off = n;
    return 0;
}

/* Writes one record as a line.  Returns 0, or -1 with errno set when stdout
 * fails. */
static int print_record(const rd_kafka_message_t *m, int print_key, const char *sep)
{
    if (print_key) {
        if (m->key_len > 0 && fwrite(m->key, 1, m->key_len, stdout) != m->key_len)
            return -1;
        if (fputs(sep, stdout) == EOF)
            return -1;
    }
    if (m->payload && m->len > 0 && fwrite(m->payload, 1, m->len, stdout) != m->len)
        return -1;
    if (putchar('\n') == EOF)
        return -1;
    return 0;
}

/* Assigns the partitions to read when there is no group.  Returns 0 or -1
 * after printing an error. */
static int assign_partitions(rd_kafka_t *rk, const struct client_opts *co, const char *topic,
                             long long partition, int64_t start)
{
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *mt;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;
    int rc = -1;

    if (client_topic_metadata(rk, co, CMD, topic, &md, &mt) < 0)
        return -1;
    list = rd_kafka_topic_partition_list_new(partition >= 0 ? 1 : mt->partition_cnt);
    if (partition >= 0) {
        int found = 0;

        for (int p = 0; p < mt->partition_cnt; p++)
            found |= mt->partitions[p].id == partition;
        if (!found) {
            fprintf(stderr, CMD ": topic '%s' has no partition %lld (it has %d).\n", topic,
                    partition, mt->partition_cnt);
            goto out;
        }
        rd_kafka_topic_partition_list_add(list, topic, (int32_t)partition)->offset = start;
    } else {
        for (int p = 0; p < mt->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, topic, mt->partitions[p].id)->offset = start;
    }
    if ((err = rd_kafka_assign(rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        client_report(rk, co, CMD, "could not assign the partitions", err, NULL);
        goto out;
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_metadata_destroy(md);
    return rc;
}

int cmd_consume(int argc, char **argv)
{
    struct client_opts co;
    const char *topic = NULL, *group = NULL, *sep = "\t", *v;
    int from_beginning = 0, print_key = 0, offset_given = 0, rc = 2, r;
    long long count = -1, partition = -1;
    int64_t start = RD_KAFKA_OFFSET_END;
    char throwaway_group[64];
    const char *defaults[7];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *subs;
    rd_kafka_resp_err_t err, last_warned = RD_KAFKA_RESP_ERR_NO_ERROR;
    long long seen = 0;
    int64_t last_record;

    client_opts_init(&co);
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        }
        if ((r = client_opts_take(&co, CMD, argc, argv, &i)) != 0) {
            if (r < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--group", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            if (!*v) {
                fprintf(stderr, CMD ": --group must not be empty.\n");
                goto out;
            }
            group = v;
            continue;
        }
        if ((r = client_opt_value(CMD, "--count", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--count", v, 1, LLONG_MAX, &count) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--partition", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--partition", v, 0, INT32_MAX, &partition) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--offset", argc, argv, &i, &v)) != 0) {
            if (r < 0 || parse_offset(v, &start) < 0)
                goto out;
            offset_given = 1;
            continue;
        }
        if ((r = client_opt_value(CMD, "--key-separator", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            sep = client_separator(v);
            continue;
        }
        if (!strcmp(arg, "--from-beginning")) {
            from_beginning = 1;
            i++;
            continue;
        }
        if (!strcmp(arg, "--print-key")) {
            print_key = 1;
            i++;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, CMD ": unknown option '%s'; see `shopstream consume --help`.\n", arg);
            goto out;
        }
        if (topic) {
            fprintf(stderr, CMD ": unexpected argument '%s'; see `shopstream consume --help`.\n",
                    arg);
            goto out;
        }
        topic = arg;
        i++;
    }
    if (!topic || !*topic) {
        fprintf(stderr, CMD ": a TOPIC is required; see `shopstream consume --help`.\n");
        goto out;
    }
    if (group && (partition >= 0 || offset_given)) {
        fprintf(stderr, CMD ": --partition and --offset cannot be used with --group, whose "
                        "members get partitions and offsets from the group.\n");
        goto out;
    }
    if (offset_given && from_beginning) {
        fprintf(stderr, CMD ": give either --offset or --from-beginning, not both.\n");
        goto out;
    }
    if (from_beginning)
        start = RD_KAFKA_OFFSET_BEGINNING;

    rc = 1;
    defaults[0] = "group.id";
    defaults[2] = "auto.offset.reset";
    defaults[3] = from_beginning ? "earliest" : "latest";
    if (group) {
        defaults[1] = group;
        defaults[4] = NULL;
    } else {
        /* librdkafka's consumer API needs a group.id even when partitions are
         * assigned by hand; this one is never joined or committed to. */
        snprintf(throwaway_group, sizeof throwaway_group, "shopstream-console-%ld-%lld",
                 (long)getpid(), (long long)clock_wall_ms());
        defaults[1] = throwaway_group;
        defaults[4] = "enable.auto.commit";
        defaults[5] = "false";
        defaults[6] = NULL;
    }
    if (!(conf = client_conf_new(&co, CMD, RD_KAFKA_CONSUMER, defaults)))
        goto out;
    if (!(rk = client_handle_new(CMD, RD_KAFKA_CONSUMER, conf)))
        goto out;
    /* Serve errors and rebalances from rd_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(rk);

    if (group) {
        const struct rd_kafka_metadata *md;
        const rd_kafka_metadata_topic_t *mt;

        /* A group member waits for a topic that does not exist yet, but an
         * unreachable cluster should fail now, as it does without --group. */
        if (client_topic_metadata(rk, &co, CMD, NULL, &md, &mt) < 0)
            goto close;
        rd_kafka_metadata_destroy(md);
        subs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (err) {
            client_report(rk, &co, CMD, "could not subscribe", err, NULL);
            goto close;
        }
    } else if (assign_partitions(rk, &co, topic, partition, start) < 0) {
        goto close;
    }

    /* A reader that went away (`| head`) ends the command quietly. */
    signal(SIGPIPE, SIG_IGN);
    client_catch_signals();
    rc = 0;
    last_record = clock_mono_ms();
    while (!client_interrupted() && (count < 0 || seen < count)) {
        int wait = CONSUME_POLL_MS;
        rd_kafka_message_t *m;

        if (co.timeout_given) {
            int64_t left = co.timeout_ms - (clock_mono_ms() - last_record);

            if (left <= 0)
                break;
            if (left < wait)
                wait = (int)left;
        }
        if (!(m = rd_kafka_consumer_poll(rk, 0))) {
            /* Nothing buffered: show what was printed before blocking. */
            if (fflush(stdout) == EOF)
                goto write_failed;
            if (!(m = rd_kafka_consumer_poll(rk, wait)))
                continue;
        }
        if (m->err) {
            err = m->err;
            if (err != RD_KAFKA_RESP_ERR__PARTITION_EOF && err != last_warned) {
                /* Most consumer errors are transient (the topic may yet be
                 * created, the broker may come back); say so once and go on. */
                fprintf(stderr, CMD ": warning: %s.\n", rd_kafka_message_errstr(m));
                last_warned = err;
            }
            rd_kafka_message_destroy(m);
            if (rd_kafka_fatal_error(rk, NULL, 0)) {
                client_report(rk, &co, CMD, "the consumer failed", err, NULL);
                rc = 1;
                break;
            }
            continue;
        }
        r = print_record(m, print_key, sep);
        rd_kafka_message_destroy(m);
        if (r < 0)
            goto write_failed;
        seen++;
        last_record = clock_mono_ms();
    }
    if (fflush(stdout) == EOF)
        goto write_failed;
    goto close;

write_failed:
    if (errno != EPIPE) {
        fprintf(stderr, CMD ": could not write to stdout: %s.\n", strerror(errno));
        rc = 1;
    }
close:
    /* Leaves the group (committing with --group) before the handle goes. */
    rd_kafka_consumer_close(rk);
out:
    if (rk)
        rd_kafka_destroy(rk);
    client_opts_free(&co);
    return rc;
}
