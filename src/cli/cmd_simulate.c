/* cmd_simulate.c: `shopstream simulate`, realistic synthetic shop traffic.
 * The events come from the generator of shop/simulate.c (a pure function of
 * seed, start and options); this file parses the options, paces the events
 * against the wall clock, and hands them to a sink (shop/sink.h): a Kafka
 * producer on any cluster, after creating the shop topics, or lines on
 * stdout with --stdout.
 *
 * Pacing: event time runs at wall-clock speed from the start, so an event
 * with timestamp ts is emitted when wall time reaches wall_start + (ts -
 * start) and --rate is the rate actually emitted; --as-fast-as-possible
 * drops the pacing.  A paced run with a duration lasts the whole duration.
 *
 * Output: a progress line on stderr updated in place about once a second
 * when stderr is a terminal, and always a last line "simulated N events (X
 * clicks, Y orders, Z aftersales) in T s" (N counts events handed to the
 * sink).  The exit status is non-zero after bad options or if any event
 * could not be delivered.  Ctrl-C stops the run; what was emitted is
 * flushed first. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "cli/event_sink.h"
#include "common/clock.h"
#include "shop/event.h"
#include "shop/simulate.h"
#include "shop/sink.h"

#define CMD "shopstream simulate"
#define DEFAULT_PARTITIONS 6
/* How long the Kafka sink waits for outstanding acknowledgements at the end
 * when --timeout-ms was not given (librdkafka's own message timeout is five
 * minutes, too long to keep a user waiting for a dead cluster). */
#define DEFAULT_FLUSH_MS 60000

static const char usage_text[] =
    "usage: shopstream simulate [--rate EV_PER_S] [--duration S] [--users N] [--products N]\n"
    "                           [--seed S] [--start ISO8601|MS] [--time-scale K] [--events N]\n"
    "                           [--as-fast-as-possible] [--partitions N] [--stdout]\n"
    "\n"
    "Generates realistic shop traffic: sessions of clicks (shop.clicks), the orders\n"
    "they place (shop.orders) and their returns and refunds (shop.aftersales).  The\n"
    "stream is fully determined by the seed, the start and the options.\n"
    "\n"
    "  --rate R           mean events per second over a day, all topics (default 100);\n"
    "                     sessions follow a daily curve in event time (UTC), low at\n"
    "                     04:00 and highest at 20:00\n"
    "  --duration S       seconds of event time to simulate (default 60; unlimited\n"
    "                     when --events is given without --duration)\n"
    "  --users N          number of users (default 10000)\n"
    "  --products N       number of products (default 1000)\n"
    "  --seed S           random seed, an unsigned integer (default 1)\n"
    "  --id-prefix P      put P before order, session and return ids, so that two\n"
    "                     runs into the same topics do not share them (default none)\n"
    "  --start T          event time of the start: ISO 8601 (UTC unless a zone is\n"
    "                     given) or ms since the epoch (default: now)\n"
    "  --time-scale K     divide order fulfilment and return delays (hours to days)\n"
    "                     by K, so orders complete within a short run (default 1)\n"
    "  --events N         stop after N events\n"
    "  --as-fast-as-possible  do not pace events to the wall clock\n"
    "  --partitions N     partitions of the shop topics it creates (default 6)\n"
    "  --stdout           write \"TOPIC<TAB>KEY<TAB>JSON\" lines to stdout instead of\n"
    "                     producing to a cluster\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     timeout of topic creation and of each event's delivery\n"
    "\n"
    "Prints \"simulated N events (X clicks, Y orders, Z aftersales) in T s\" to stderr\n"
    "at the end; exits 1 if any event could not be delivered.\n";

/* Progress and end-of-run counts of events the sink accepted. */
struct counts {
    long long events, clicks, orders, aftersales;
};

static int parse_double(const char *name, const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, CMD ": %s expects a number from %g to %g, not '%s'.\n", name, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *name, const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || s[0] == '+') {
        fprintf(stderr, CMD ": %s expects an unsigned integer, not '%s'.\n", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Sleeps up to ms milliseconds; a signal cuts it short. */
static void sleep_ms(int64_t ms)
{
    struct timespec t;

    if (ms <= 0)
        return;
    t.tv_sec = (time_t)(ms / 1000);
    t.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&t, NULL);
}

static void format_clock(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "%lld", (long long)ms);
}

static void show_progress(const struct counts *c, struct sim *sim, int64_t wall0, int64_t now)
{
    struct sim_stats st;
    char clock[40];
    double secs = (double)(now - wall0) / 1000.0;

    sim_get_stats(sim, &st);
    format_clock(st.clock_ms, clock, sizeof clock);
    fprintf(stderr, "\r\033[K%lld events  %.0f ev/s  event time %s UTC  %lld orders", c->events,
            secs > 0 ? (double)c->events / secs : 0.0, clock, st.orders);
    fflush(stderr);
}

int cmd_simulate(int argc, char **argv)
{
    struct client_opts co;
    struct sim_opts so;
    struct sim *sim = NULL;
    struct shop_sink *sink = NULL;
    struct shop_sink_stats fin;
    struct counts c = {0, 0, 0, 0};
    const char *v, *start_arg = NULL;
    char errstr[512];
    long long tmp, partitions = DEFAULT_PARTITIONS;
    double duration_s = 60;
    int duration_given = 0, afap = 0, to_stdout = 0, tty, progress_shown = 0, emit_failed = 0;
    int rc = 2, r;
    int64_t wall0, last_progress, now;

    sim_opts_default(&so);
    client_opts_init(&co);
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(arg, "--as-fast-as-possible")) {
            afap = 1;
            i++;
            continue;
        }
        if (!strcmp(arg, "--stdout")) {
            to_stdout = 1;
            i++;
            continue;
        }
        if ((r = client_opts_take(&co, CMD, argc, argv, &i)) != 0) {
            if (r < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--rate", argc, argv, &i, &v)) != 0) {
            if (r < 0 || parse_double("--rate", v, 1e-6, 1e9, &so.rate) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--duration", argc, argv, &i, &v)) != 0) {
            /* Up to ten years of event time. */
            if (r < 0 || parse_double("--duration", v, 0.001, 3.2e8, &duration_s) < 0)
                goto out;
            duration_given = 1;
            continue;
        }
        if ((r = client_opt_value(CMD, "--users", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--users", v, 1, SIM_MAX_USERS, &tmp) < 0)
                goto out;
            so.users = (int)tmp;
            continue;
        }
        if ((r = client_opt_value(CMD, "--products", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--products", v, 1, SIM_MAX_PRODUCTS, &tmp) < 0)
                goto out;
            so.products = (int)tmp;
            continue;
        }
        if ((r = client_opt_value(CMD, "--seed", argc, argv, &i, &v)) != 0) {
            if (r < 0 || parse_u64("--seed", v, &so.seed) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--id-prefix", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            if (strlen(v) >= sizeof so.id_prefix) {
                fprintf(stderr, CMD ": --id-prefix takes at most %zu bytes.\n", sizeof so.id_prefix - 1);
                goto out;
            }
            memcpy(so.id_prefix, v, strlen(v) + 1);
            continue;
        }
        if ((r = client_opt_value(CMD, "--start", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto out;
            if (sim_parse_time(v, &so.start_ms) < 0 || so.start_ms > INT64_MAX / 8) {
                fprintf(stderr,
                        CMD ": --start expects YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] or ms since "
                            "the epoch, not '%s'.\n",
                        v);
                goto out;
            }
            start_arg = v;
            continue;
        }
        if ((r = client_opt_value(CMD, "--time-scale", argc, argv, &i, &v)) != 0) {
            if (r < 0 || parse_double("--time-scale", v, 0.001, 1e12, &so.time_scale) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--events", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--events", v, 1, LLONG_MAX, &so.max_events) < 0)
                goto out;
            continue;
        }
        if ((r = client_opt_value(CMD, "--partitions", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(CMD, "--partitions", v, 1, 100000, &partitions) < 0)
                goto out;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0')
            fprintf(stderr, CMD ": unknown option '%s'; see `shopstream simulate --help`.\n", arg);
        else
            fprintf(stderr, CMD ": unexpected argument '%s'; see `shopstream simulate --help`.\n",
                    arg);
        goto out;
    }
    if (!start_arg)
        so.start_ms = clock_wall_ms();
    /* --events alone means "this many events", however long that takes. */
    so.duration_ms = so.max_events > 0 && !duration_given ? -1 : (int64_t)llround(duration_s * 1000);

    rc = 1;
    if (!(sim = sim_new(&so, errstr, sizeof errstr))) {
        fprintf(stderr, CMD ": %s.\n", errstr);
        goto out;
    }

    if (!(sink = event_sink_open(&co, CMD, to_stdout, (int)partitions)))
        goto out;

    client_catch_signals();
    tty = isatty(STDERR_FILENO);
    wall0 = last_progress = clock_mono_ms();
    for (;;) {
        struct shop_event ev;

        if (client_interrupted() || !sim_next(sim, &ev))
            break;
        if (!afap) {
            int64_t due = wall0 + (ev.ts - so.start_ms);

            while (!client_interrupted() && (now = clock_mono_ms()) < due) {
                sleep_ms(due - now < 100 ? due - now : 100);
                shop_sink_poll(sink);
                now = clock_mono_ms();
                if (tty && now - last_progress >= 1000) {
                    show_progress(&c, sim, wall0, now);
                    progress_shown = 1;
                    last_progress = now;
                }
            }
            if (client_interrupted())
                break;
        }
        if (shop_sink_emit(sink, &ev) < 0) {
            emit_failed = 1;
            break;
        }
        c.events++;
        switch (shop_event_stream(ev.type)) {
        case SHOP_STREAM_CLICKS: c.clicks++; break;
        case SHOP_STREAM_ORDERS: c.orders++; break;
        case SHOP_STREAM_AFTERSALES: c.aftersales++; break;
        }
        if (tty && (c.events & 255) == 0 && (now = clock_mono_ms()) - last_progress >= 1000) {
            show_progress(&c, sim, wall0, now);
            progress_shown = 1;
            last_progress = now;
        }
    }
    /* A paced run lasts its whole duration, even when the last event came
     * earlier. */
    if (!afap && !emit_failed && so.duration_ms >= 0 &&
        !(so.max_events > 0 && c.events >= so.max_events)) {
        int64_t end = wall0 + so.duration_ms;

        while (!client_interrupted() && (now = clock_mono_ms()) < end) {
            sleep_ms(end - now < 100 ? end - now : 100);
            shop_sink_poll(sink);
        }
    }
    if (progress_shown) {
        show_progress(&c, sim, wall0, clock_mono_ms());
        fputc('\n', stderr);
    }

    {
        int flush_ms = co.timeout_given ? co.timeout_ms + 5000 : DEFAULT_FLUSH_MS;
        double secs;

        if (client_interrupted() && flush_ms > co.timeout_ms)
            flush_ms = co.timeout_ms; /* the user wants out: a bounded flush */
        r = shop_sink_close(sink, flush_ms, &fin);
        sink = NULL;
        secs = (double)(clock_mono_ms() - wall0) / 1000.0;
        if (to_stdout)
            fflush(stdout);
        fprintf(stderr, "simulated %lld events (%lld clicks, %lld orders, %lld aftersales) in %.1f s\n",
                c.events, c.clicks, c.orders, c.aftersales, secs);
        if (r < 0 || fin.failed > 0) {
            char last[256];

            fprintf(stderr, CMD ": %lld of %lld events could not be delivered: %s", fin.failed,
                    fin.emitted, fin.first_error[0] ? fin.first_error : "unknown error");
            if (!to_stdout && client_last_error(last, sizeof last))
                fprintf(stderr, " (is the cluster at %s up? last client error: %s)", co.bootstrap,
                        last);
            fputs(".\n", stderr);
            goto out;
        }
    }
    rc = 0;
out:
    if (sink)
        shop_sink_close(sink, 0, NULL);
    sim_free(sim);
    client_opts_free(&co);
    return rc;
}
