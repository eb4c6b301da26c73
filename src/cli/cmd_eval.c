/* cmd_eval.c: `shopstream eval recommend --train FILE --test FILE [--k 20]`,
 * the offline evaluation of the recommender (DESIGN.md, "Recommender
 * evaluation").  This file parses options and opens the files; the protocol
 * and the metrics live in shop/reco_eval.c and shop/recommend.c, the same
 * scoring code the stream processor uses.
 *
 * stdout gets exactly one line, `HR@K=0.xxxx MRR@K=0.xxxx points=N`.  With
 * --stats stderr also gets counts and timings.  --set NAME=VALUE overrides a
 * model parameter (struct reco_params; for experiments).  Exit status: 0;
 * 1 when a file cannot be read or is malformed; 2 after bad options. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "shop/csv.h"
#include "shop/reco_eval.h"
#include "shop/recommend.h"

#define CMD "shopstream eval"

static const char usage_text[] =
    "usage: shopstream eval recommend --train FILE --test FILE [--k 20] [--stats]\n"
    "                                 [--set NAME=VALUE]...\n"
    "Trains the recommender on FILE (TSV: SessionId, ItemId, Time with a header),\n"
    "then predicts each next event of every test session, and prints\n"
    "HR@K=... MRR@K=... points=N.  --set overrides a model parameter: max_items,\n"
    "max_neighbours, max_keys, window, window_s, half_life_s, query_items, w_seq,\n"
    "w_cos, cos_alpha, w_repeat, repeat_decay, source_decay, w_pop.\n";

static long file_read(void *ctx, char *buf, size_t n, char *err, size_t errsz)
{
    FILE *f = ctx;
    size_t got = fread(buf, 1, n, f);

    if (got == 0 && ferror(f)) {
        snprintf(err, errsz, "read error: %s", strerror(errno));
        return -1;
    }
    return (long)got;
}

/* Applies "NAME=VALUE" to p.  Returns 0, or -1 for an unknown name or a
 * value that is not a number. */
static int set_param(struct reco_params *p, const char *s)
{
    static const struct {
        const char *name;
        size_t off;
        int is_u32;
    } tab[] = {
#define D(f) {#f, offsetof(struct reco_params, f), 0}
#define U(f) {#f, offsetof(struct reco_params, f), 1}
        U(max_items), U(max_neighbours), U(max_keys), U(window), D(window_s), D(half_life_s),
        U(query_items), D(w_seq), D(w_cos), D(cos_alpha), D(w_repeat), D(repeat_decay),
        D(source_decay), D(w_pop),
#undef D
#undef U
    };
    const char *eq = strchr(s, '=');
    char *end;
    double v;

    if (!eq || !eq[1])
        return -1;
    errno = 0;
    v = strtod(eq + 1, &end);
    if (*end || errno)
        return -1;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].name) == (size_t)(eq - s) && !strncmp(tab[i].name, s, (size_t)(eq - s))) {
            if (tab[i].is_u32) {
                if (v < 0 || v > 4294967295.0 || v != (double)(uint32_t)v)
                    return -1;
                *(uint32_t *)((char *)p + tab[i].off) = (uint32_t)v;
            } else {
                *(double *)((char *)p + tab[i].off) = v;
            }
            return 0;
        }
    return -1;
}

int cmd_eval(int argc, char **argv)
{
    const char *train = NULL, *test = NULL;
    long k = 20;
    int stats = 0, rc = 1;
    struct reco_params params;
    struct reco_model *model = NULL;
    struct csv_reader *rtrain = NULL, *rtest = NULL;
    FILE *ftrain = NULL, *ftest = NULL;
    struct reco_eval_result res;
    char err[512];

    reco_params_default(&params);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "recommend")) {
        fprintf(stderr, CMD ": expected `eval recommend`; see `shopstream eval --help`.\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--stats")) {
            stats = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, CMD ": unknown option or missing value: '%s'; see --help.\n", a);
            return 2;
        }
        if (!strcmp(a, "--train")) {
            train = argv[++i];
        } else if (!strcmp(a, "--test")) {
            test = argv[++i];
        } else if (!strcmp(a, "--k")) {
            char *end;
            errno = 0;
            k = strtol(argv[++i], &end, 10);
            if (*end || errno || k < 1 || k > RECO_MAX_K) {
                fprintf(stderr, CMD ": --k must be a whole number from 1 to %d.\n", RECO_MAX_K);
                return 2;
            }
        } else if (!strcmp(a, "--set")) {
            if (set_param(&params, argv[++i]) < 0) {
                fprintf(stderr, CMD ": --set '%s' is not NAME=NUMBER with a known NAME.\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, CMD ": unknown option '%s'; see --help.\n", a);
            return 2;
        }
    }
    if (!train || !test) {
        fprintf(stderr, CMD ": both --train FILE and --test FILE are required.\n");
        return 2;
    }
    if (!(model = reco_model_new(&params))) {
        fprintf(stderr, CMD ": the model parameters are out of range (or out of memory).\n");
        return 2;
    }
    if (!(ftrain = fopen(train, "rb"))) {
        fprintf(stderr, CMD ": cannot open train file %s: %s.\n", train, strerror(errno));
        goto out;
    }
    if (!(ftest = fopen(test, "rb"))) {
        fprintf(stderr, CMD ": cannot open test file %s: %s.\n", test, strerror(errno));
        goto out;
    }
    if (!(rtrain = csv_open(file_read, ftrain, '\t')) || !(rtest = csv_open(file_read, ftest, '\t'))) {
        fprintf(stderr, CMD ": out of memory.\n");
        goto out;
    }
    if (reco_eval_run(model, rtrain, rtest, (size_t)k, &res, err, sizeof err) < 0) {
        fprintf(stderr, CMD ": %s.\n", err);
        goto out;
    }
    printf("HR@%ld=%.4f MRR@%ld=%.4f points=%llu\n", k, reco_metrics_hr(&res.mt), k,
           reco_metrics_mrr(&res.mt), (unsigned long long)res.mt.points);
    if (stats) {
        struct reco_stats st;
        reco_get_stats(model, &st);
        fprintf(stderr,
                "train events %llu (%llu items), test events %llu in %llu sessions; "
                "observe %.2f us mean; recommend p50 %.2f us, p99 %.2f us; model %zu items, "
                "%zu keys, %zu neighbour entries, %zu bytes\n",
                (unsigned long long)res.train_events, (unsigned long long)res.train_items,
                (unsigned long long)res.test_events, (unsigned long long)res.test_sessions,
                res.observe_ns / 1e3, res.recommend_p50_ns / 1e3, res.recommend_p99_ns / 1e3,
                st.items, st.keys, st.neighbours, st.bytes);
    }
    rc = 0;
out:
    csv_close(rtrain);
    csv_close(rtest);
    if (ftrain)
        fclose(ftrain);
    if (ftest)
        fclose(ftest);
    reco_model_free(model);
    return rc;
}
