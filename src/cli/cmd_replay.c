/* cmd_replay.c: `shopstream replay online-retail|olist|yoochoose FILE...`,
 * public e-commerce datasets replayed as the events of DESIGN.md ("Event
 * contract").  The mapping of each dataset lives in shop/replay.h; this file
 * reads the inputs (all of them, before the first event), then hands the
 * events in event-time order to a sink (shop/sink.h): Kafka through
 * librdkafka (the shop topics are created first, with --partitions
 * partitions), or "TOPIC<TAB>KEY<TAB>JSON" lines on stdout with --stdout.
 *
 * Pacing: as fast as possible by default; --speed X waits so that the wall
 * time between two events is their event-time gap divided by X.
 *
 * stderr gets the first few skipped rows (file, line, reason) and one
 * summary line: rows read and skipped per reason, events per type, time and
 * rate.  Exit status: 0; 1 when an input cannot be read or is not the
 * dataset, or an event could not be delivered; 2 after bad options. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "cli/event_sink.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "shop/event.h"
#include "shop/replay.h"
#include "shop/sink.h"

#define CMD "shopstream replay"
#define DEFAULT_PARTITIONS 6
/* How long the Kafka sink waits for outstanding acknowledgements at the end
 * when --timeout-ms was not given. */
#define DEFAULT_FLUSH_MS 60000

static const char usage_text[] =
    "usage: shopstream replay online-retail|olist|yoochoose FILE... [--speed X]\n"
    "                         [--as-fast-as-possible] [--partitions N] [--stdout] [--limit N]\n"
    "\n"
    "Replays a public e-commerce dataset as shop events, in event-time order.\n"
    "FILE may be zstd-compressed; \"-\" reads stdin.\n"
    "\n"
    "  online-retail  UCI Online Retail CSV (InvoiceNo, StockCode, Quantity,\n"
    "                 InvoiceDate, UnitPrice, CustomerID): order_created + order_paid\n"
    "                 per invoice, refund_issued per cancelled (C) invoice\n"
    "  olist          Olist orders CSV, plus optional payments and items CSVs in any\n"
    "                 order: order_created/paid/shipped/delivered/cancelled\n"
    "  yoochoose      session-rec TSV (SessionId, ItemId, Time): product_view clicks\n"
    "\n"
    "  --speed X              replay event-time gaps divided by X in wall time\n"
    "  --as-fast-as-possible  no pacing (the default)\n"
    "  --partitions N         partitions of the shop topics it creates (default 6)\n"
    "  --stdout               write \"TOPIC<TAB>KEY<TAB>JSON\" lines to stdout, no Kafka\n"
    "  --limit N              stop after N events\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value           librdkafka setting; repeatable\n"
    "  --timeout-ms T         give up on an event not delivered within T ms\n"
    "\n"
    "Prints skipped rows and a summary to stderr; exits 1 if an input is not the\n"
    "dataset or an event could not be delivered.\n";

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void print_summary(const char *dataset, const struct replay_stats *st,
                          const long long *emitted, long long total, double load_s,
                          double emit_s)
{
    int first = 1;

    fprintf(stderr, "replay %s: %lld rows read in %.2f s, %lld skipped", dataset, st->rows,
            load_s, st->bad_rows);
    if (st->bad_rows > 0) {
        fputs(" (", stderr);
        for (int b = 0; b < REPLAY_BAD__COUNT; b++) {
            if (!st->bad[b])
                continue;
            fprintf(stderr, "%s%s %lld", first ? "" : ", ", replay_bad_name(b), st->bad[b]);
            first = 0;
        }
        fputc(')', stderr);
    }
    if (st->not_items > 0)
        fprintf(stderr, ", %lld rows not items (Quantity or UnitPrice <= 0)", st->not_items);
    if (st->skipped_orders > 0)
        fprintf(stderr, ", %lld %s made no event", st->skipped_orders,
                !strcmp(dataset, "online-retail") ? "invoices" : "orders");
    if (st->unmatched > 0)
        fprintf(stderr, ", %lld payment/item rows of orders not in the orders file",
                st->unmatched);
    fprintf(stderr, "; %lld events (", total);
    first = 1;
    for (int t = 1; t < SHOP_EV__COUNT; t++) {
        if (!emitted[t])
            continue;
        fprintf(stderr, "%s%s %lld", first ? "" : ", ", shop_event_type_name(t), emitted[t]);
        first = 0;
    }
    fprintf(stderr, ") in %.2f s (%.0f events/s)\n", emit_s,
            emit_s > 0 ? (double)total / emit_s : 0.0);
}

int cmd_replay(int argc, char **argv)
{
    struct client_opts co;
    const char *dataset = NULL, *v;
    const char **files = NULL;
    size_t nfiles = 0;
    enum replay_dataset ds = REPLAY_ONLINE_RETAIL;
    struct replay *rp = NULL;
    struct shop_sink *sink = NULL;
    struct shop_sink_stats fin;
    char errstr[512];
    long long partitions = DEFAULT_PARTITIONS, limit = -1, tmp;
    long long emitted[SHOP_EV__COUNT] = {0}, total = 0;
    double speed = 0;
    int afap_given = 0, to_stdout = 0, emit_failed = 0, rc = 2, r;
    int64_t t0, t1, wall0 = 0, ts0 = 0, now;

    client_opts_init(&co);
    if (!(files = xcalloc((size_t)argc + 1, sizeof *files))) {
        fprintf(stderr, CMD ": out of memory.\n");
        goto out;
    }
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
        if ((r = client_opt_value(CMD, "--speed", argc, argv, &i, &v)) != 0) {
            char *end;

            if (r < 0)
                goto out;
            speed = strtod(v, &end);
            if (end == v || *end || !isfinite(speed) || speed <= 0) {
                fprintf(stderr, CMD ": --speed expects a number > 0, not '%s'.\n", v);
                goto out;
            }
            continue;
        }
        if (!strcmp(arg, "--as-fast-as-possible")) {
            afap_given = 1;
            i++;
            continue;
        }
        if (!strcmp(arg, "--stdout")) {
            to_stdout = 1;
            i++;
            continue;
        }
        if ((r = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--partitions", v, 1, 100000, &partitions) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--limit", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--limit", v, 0, LLONG_MAX, &tmp) < 0)
                goto out;
            limit = tmp;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, CMD ": unknown option '%s'; see `shopstream replay --help`.\n", arg);
            goto out;
        }
        if (!dataset) {
            dataset = arg;
            if (replay_dataset_parse(arg, &ds) < 0) {
                fprintf(stderr,
                        CMD ": unknown dataset '%s'; expected online-retail, olist or "
                            "yoochoose.\n",
                        arg);
                goto out;
            }
        } else {
            files[nfiles++] = arg;
        }
        i++;
    }
    if (!dataset) {
        fprintf(stderr, CMD ": a dataset (online-retail, olist or yoochoose) is required; "
                            "see `shopstream replay --help`.\n");
        goto out;
    }
    if (nfiles == 0) {
        fprintf(stderr, CMD ": at least one FILE is required; see `shopstream replay --help`.\n");
        goto out;
    }
    if (afap_given && speed > 0) {
        fprintf(stderr, CMD ": --speed and --as-fast-as-possible exclude each other.\n");
        goto out;
    }

    /* Read everything first: a wrong file fails before any cluster is
     * touched. */
    rc = 1;
    if (!(rp = replay_new(ds))) {
        fprintf(stderr, CMD ": out of memory.\n");
        goto out;
    }
    t0 = clock_mono_ms();
    for (size_t f = 0; f < nfiles; f++) {
        if (replay_load_file(rp, files[f], errstr, sizeof errstr) < 0) {
            fprintf(stderr, CMD ": %s.\n", errstr);
            goto out;
        }
    }
    if (replay_finish(rp, errstr, sizeof errstr) < 0) {
        fprintf(stderr, CMD ": %s.\n", errstr);
        goto out;
    }
    t1 = clock_mono_ms();
    {
        const struct replay_stats *st = replay_stats(rp);

        for (int k = 0; k < st->nreported; k++)
            fprintf(stderr, CMD ": skipped %s.\n", st->reported[k]);
        if (st->bad_rows > st->nreported)
            fprintf(stderr, CMD ": skipped %lld more rows (see the summary).\n",
                    st->bad_rows - st->nreported);
        if (st->oversized > 0)
            fprintf(stderr,
                    CMD ": warning: %lld orders have more than %d items; consumers that "
                        "enforce SHOP_MAX_ITEMS will reject them.\n",
                    st->oversized, SHOP_MAX_ITEMS);
    }

    if (!(sink = event_sink_open(&co, CMD, to_stdout, (int)partitions)))
        goto out;

    client_catch_signals();
    wall0 = clock_mono_ms();
    for (;;) {
        const struct shop_event *ev;

        if (client_interrupted() || (limit >= 0 && total >= limit) || !(ev = replay_next(rp)))
            break;
        if (speed > 0) {
            int64_t due;

            if (total == 0)
                ts0 = ev->ts;
            due = wall0 + (int64_t)((double)(ev->ts - ts0) / speed);
            if (clock_mono_ms() < due && to_stdout)
                fflush(stdout); /* what is due now is visible while we wait */
            while (!client_interrupted() && (now = clock_mono_ms()) < due) {
                sleep_ms(due - now < 100 ? due - now : 100);
                shop_sink_poll(sink);
            }
            if (client_interrupted())
                break;
        }
        if (shop_sink_emit(sink, ev) < 0) {
            emit_failed = 1;
            break;
        }
        emitted[ev->type]++;
        total++;
    }

    {
        int flush_ms = co.timeout_given ? co.timeout_ms + 5000 : DEFAULT_FLUSH_MS;

        if (client_interrupted() && flush_ms > co.timeout_ms)
            flush_ms = co.timeout_ms;
        r = shop_sink_close(sink, flush_ms, &fin);
        sink = NULL;
        if (to_stdout)
            fflush(stdout);
        print_summary(dataset, replay_stats(rp), emitted, total, (double)(t1 - t0) / 1000.0,
                      (double)(clock_mono_ms() - wall0) / 1000.0);
        if (r < 0 || fin.failed > 0 || emit_failed) {
            char last[256];

            fprintf(stderr, CMD ": %lld of %lld events could not be delivered: %s", fin.failed,
                    fin.emitted, fin.first_error[0] ? fin.first_error : "unknown error");
            if (!to_stdout && client_last_error(last, sizeof last))
                fprintf(stderr, " (%s, last error: %s)", co.bootstrap, last);
            fputs(".\n", stderr);
            goto out;
        }
    }
    rc = client_interrupted() ? 1 : 0;
out:
    if (sink)
        shop_sink_close(sink, 0, NULL);
    replay_free(rp);
    xfree(files);
    client_opts_free(&co);
    return rc;
}
