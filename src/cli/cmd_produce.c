/* cmd_produce.c: `shopstream produce TOPIC`, the console producer.  Each line
 * of stdin (without its '\n') becomes one record of TOPIC on any Kafka
 * cluster, through librdkafka.  With --key-separator, the text before the
 * first separator is the record key and the rest the value; a line without
 * the separator becomes a record with a null key and the whole line as value.
 *
 * Records are partitioned by key with the Java-compatible murmur2 partitioner
 * unless --partitioner or --partition says otherwise (DESIGN.md).  At EOF the
 * producer flushes, prints "produced N records" (N = records the cluster
 * acknowledged) to stderr, and exits non-zero if any record failed. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/client_opts.h"
#include "cli/commands.h"

#define CMD "shopstream produce"

static const char usage_text[] =
    "usage: shopstream produce TOPIC [--key-separator C] [--partition P] [--header k=v]...\n"
    "                          [--compression none|gzip|snappy|lz4|zstd] [--partitioner NAME]\n"
    "\n"
    "Reads lines from stdin; each line becomes one record of TOPIC.\n"
    "\n"
    "  --key-separator C  the text before the first C is the key (\\t means tab);\n"
    "                     lines without C get a null key\n"
    "  --partition P      write every record to partition P\n"
    "  --header k=v       add a record header; repeatable\n"
    "  --compression X    compression codec (default none)\n"
    "  --partitioner NAME librdkafka partitioner (default " CLIENT_DEFAULT_PARTITIONER ",\n"
    "                     Java-compatible)\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     give up on a record not delivered within T ms\n"
    "                     (default: librdkafka's message.timeout.ms, 5 minutes)\n"
    "\n"
    "Prints \"produced N records\" to stderr at the end; exits 1 if any record\n"
    "could not be delivered.\n";

/* Delivery outcome, updated by the delivery report callback, which runs
 * inside rd_kafka_poll / rd_kafka_flush on the command's thread. */
struct produce_stats {
    long long delivered;             /* acknowledged by the cluster */
    long long failed;                /* refused locally or by the cluster */
    rd_kafka_resp_err_t first_err;   /* why the first failure failed */
    char first_errstr[256];
};

static void note_failure(struct produce_stats *st, rd_kafka_resp_err_t err, const char *why)
{
    if (st->failed++ == 0) {
        st->first_err = err;
        snprintf(st->first_errstr, sizeof st->first_errstr, "%s", why);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct produce_stats *st = opaque;

    (void)rk;
    if (m->err)
        note_failure(st, m->err, rd_kafka_err2str(m->err));
    else
        st->delivered++;
}

static int valid_compression(const char *c)
{
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};

    for (size_t k = 0; k < sizeof codecs / sizeof codecs[0]; k++)
        if (!strcmp(c, codecs[k]))
            return 1;
    return 0;
}

int cmd_produce(int argc, char **argv)
{
    struct client_opts co;
    struct produce_stats st;
    const char *topic = NULL, *sep = NULL, *compression = NULL, *v;
    long long partition = RD_KAFKA_PARTITION_UA, tmp;
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    char *line = NULL;
    size_t cap = 0, seplen = 0;
    long long records = 0;
    int rc = 2, r, read_failed = 0;
    char timeout_str[32];
    const char *defaults[5] = {NULL};

    memset(&st, 0, sizeof st);
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
        if ((r = client_opt_value(CMD, "--key-separator", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            if (!*v) {
                fprintf(stderr, CMD ": --key-separator must not be empty.\n");
                goto out;
            }
            sep = client_separator(v);
            seplen = strlen(sep);
            continue;
        }
        if ((r = client_opt_value(CMD, "--partition", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--partition", v, 0, INT32_MAX, &tmp) < 0)
                goto out;
            partition = tmp;
            continue;
        }
        if ((r = client_opt_value(CMD, "--header", argc, argv, &i, &v)) != 0) {
            const char *eq;

            if (r < 0)
                goto out;
            eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, CMD ": --header expects key=value, not '%s'.\n", v);
                goto out;
            }
            if (!hdrs)
                hdrs = rd_kafka_headers_new(4);
            rd_kafka_header_add(hdrs, v, eq - v, eq + 1, -1);
            continue;
        }
        if ((r = client_opt_value(CMD, "--compression", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            if (!valid_compression(v)) {
                fprintf(stderr,
                        CMD ": --compression expects none, gzip, snappy, lz4 or zstd, "
                            "not '%s'.\n",
                        v);
                goto out;
            }
            compression = v;
            continue;
        }
        if ((r = client_opt_value(CMD, "--partitioner", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            co.partitioner = v;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, CMD ": unknown option '%s'; see `shopstream produce --help`.\n", arg);
            goto out;
        }
        if (topic) {
            fprintf(stderr, CMD ": unexpected argument '%s'; see `shopstream produce --help`.\n",
                    arg);
            goto out;
        }
        topic = arg;
        i++;
    }
    if (!topic || !*topic) {
        fprintf(stderr, CMD ": a TOPIC is required; see `shopstream produce --help`.\n");
        goto out;
    }

    rc = 1;
    {
        size_t d = 0;

        if (compression) {
            defaults[d++] = "compression.codec";
            defaults[d++] = compression;
        }
        if (co.timeout_given) {
            snprintf(timeout_str, sizeof timeout_str, "%d", co.timeout_ms);
            defaults[d++] = "message.timeout.ms";
            defaults[d++] = timeout_str;
        }
    }
    if (!(conf = client_conf_new(&co, CMD, RD_KAFKA_PRODUCER, defaults)))
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    if (!(rk = client_handle_new(CMD, RD_KAFKA_PRODUCER, conf)))
        goto out;

    client_catch_signals();
    while (!client_interrupted()) {
        ssize_t len;
        const char *value;
        size_t vlen;
        rd_kafka_vu_t vu[7];
        size_t nvu = 0;
        rd_kafka_headers_t *h = NULL;
        rd_kafka_error_t *error;
        const char *hit;

        errno = 0;
        len = getline(&line, &cap, stdin);
        if (len < 0) {
            if (errno == EINTR)
                continue; /* the loop condition sees the signal */
            if (ferror(stdin)) {
                fprintf(stderr, CMD ": could not read stdin: %s.\n", strerror(errno));
                read_failed = 1;
            }
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        value = line;
        vlen = (size_t)len;

        vu[nvu].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[nvu++].u.cstr = topic;
        vu[nvu].vtype = RD_KAFKA_VTYPE_PARTITION;
        vu[nvu++].u.i32 = (int32_t)partition;
        vu[nvu].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[nvu++].u.i = RD_KAFKA_MSG_F_COPY;
        if (sep && (hit = memmem(line, (size_t)len, sep, seplen)) != NULL) {
            vu[nvu].vtype = RD_KAFKA_VTYPE_KEY;
            vu[nvu].u.mem.ptr = line;
            vu[nvu++].u.mem.size = (size_t)(hit - line);
            value = hit + seplen;
            vlen = (size_t)len - (size_t)(hit - line) - seplen;
        }
        vu[nvu].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[nvu].u.mem.ptr = (void *)value;
        vu[nvu++].u.mem.size = vlen;
        if (hdrs) {
            /* produceva takes the headers only when it succeeds. */
            h = rd_kafka_headers_copy(hdrs);
            vu[nvu].vtype = RD_KAFKA_VTYPE_HEADERS;
            vu[nvu++].u.headers = h;
        }
        records++;
        for (;;) {
            error = rd_kafka_produceva(rk, vu, nvu);
            if (!error || rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                client_interrupted())
                break;
            /* The local queue is full: let deliveries drain it, then retry. */
            rd_kafka_error_destroy(error);
            rd_kafka_poll(rk, 100);
        }
        if (error) {
            note_failure(&st, rd_kafka_error_code(error), rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            if (h)
                rd_kafka_headers_destroy(h);
        }
        rd_kafka_poll(rk, 0);
    }

    if (client_interrupted()) {
        /* Give what is queued a bounded chance, then fail the rest so that
         * the count printed below is true. */
        rd_kafka_flush(rk, co.timeout_ms);
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 1000);
    } else {
        /* Bounded by message.timeout.ms: every record is then delivered or
         * failed. */
        while (rd_kafka_outq_len(rk) > 0)
            rd_kafka_flush(rk, 1000);
    }
    rd_kafka_poll(rk, 0);

    fprintf(stderr, "produced %lld records\n", st.delivered);
    if (st.failed > 0) {
        char what[128];

        snprintf(what, sizeof what, "%lld of %lld records could not be delivered", st.failed,
                 records);
        client_report(rk, &co, CMD, what, st.first_err, st.first_errstr);
    } else if (st.delivered + st.failed < records) {
        fprintf(stderr, CMD ": %lld records were still undelivered when the producer stopped.\n",
                records - st.delivered - st.failed);
    }
    rc = (st.failed > 0 || st.delivered < records || read_failed) ? 1 : 0;
out:
    free(line); /* allocated by getline */
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    if (rk)
        rd_kafka_destroy(rk);
    client_opts_free(&co);
    return rc;
}
