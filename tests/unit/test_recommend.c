/* test_recommend.c: the incremental recommender (shop/recommend.h) and its
 * offline evaluation (shop/reco_eval.h): co-occurrence and transitions,
 * the tie order of ids, exclusion, the popularity fallback, purchases left
 * out, decay, the memory caps and eviction, determinism, allocation
 * failures, and HR@K / MRR@K on a tiny dataset worked out by hand. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/reco_eval.h"
#include "shop/recommend.h"
#include "test.h"

static struct reco_model *model(void)
{
    struct reco_model *m = reco_model_new(NULL);

    CHECK(m);
    return m;
}

static void see(struct reco_model *m, const char *key, const char *item, double ts)
{
    CHECK_EQ(reco_observe(m, key, item, RECO_VIEW, ts), 0);
}

static int has(const struct reco_hit *h, size_t n, const char *item)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(h[i].item, item))
            return 1;
    return 0;
}

TEST(reco_item_cmp_numeric_then_string)
{
    CHECK(reco_item_cmp("9", "10") < 0);
    CHECK(reco_item_cmp("10", "9") > 0);
    CHECK(reco_item_cmp("214536502", "214536506") < 0);
    CHECK(reco_item_cmp("10", "9a") < 0);   /* not both decimal: strcmp */
    CHECK(reco_item_cmp("b", "a") > 0);
    CHECK(reco_item_cmp("07", "7") < 0);    /* numerically equal: strcmp */
    CHECK(reco_item_cmp("7", "7") == 0);
}

TEST(reco_similar_follows_cooccurrence)
{
    struct reco_model *m = model();
    struct reco_hit h[8];

    see(m, "s1", "a", 1), see(m, "s1", "b", 2);
    see(m, "s2", "a", 3), see(m, "s2", "b", 4);
    see(m, "s3", "a", 5), see(m, "s3", "c", 6);
    CHECK_EQ(reco_similar(m, "a", 8, h), 2);
    CHECK(!strcmp(h[0].item, "b") && !strcmp(h[1].item, "c"));
    CHECK(h[0].score > h[1].score);
    /* co-occurrence is symmetric: c's neighbour is a */
    CHECK_EQ(reco_similar(m, "c", 8, h), 1);
    CHECK(!strcmp(h[0].item, "a"));
    CHECK_EQ(reco_similar(m, "nope", 8, h), 0);
    reco_model_free(m);
}

TEST(reco_ties_break_by_smaller_id)
{
    struct reco_model *m = model();
    struct reco_hit h[8];

    /* "10" and "9" have identical statistics as neighbours of x (same times,
     * so decay weighs them alike). */
    see(m, "s1", "x", 1), see(m, "s1", "10", 2);
    see(m, "s2", "x", 1), see(m, "s2", "9", 2);
    CHECK_EQ(reco_similar(m, "x", 8, h), 2);
    CHECK(h[0].score == h[1].score);
    CHECK(!strcmp(h[0].item, "9") && !strcmp(h[1].item, "10"));
    reco_model_free(m);
}

static int reject_b(void *ctx, const char *item)
{
    (*(int *)ctx)++;
    return !strcmp(item, "b");
}

TEST(reco_session_learns_at_once_and_excludes)
{
    struct reco_model *m = model();
    struct reco_hit h[4];
    struct reco_event ev[1] = {{"a", RECO_VIEW, 10}};
    int calls = 0;

    see(m, "s1", "a", 1);
    see(m, "s1", "b", 2);
    /* one event later the transition a -> b is already used: P(b|a) = 1 plus
     * the cosine beats the re-visit term 1 of a */
    CHECK_EQ(reco_for_session(m, ev, 1, 2, NULL, NULL, h), 2);
    CHECK(!strcmp(h[0].item, "b"));
    CHECK(!strcmp(h[1].item, "a"));
    CHECK_EQ(reco_for_session(m, ev, 1, 4, reject_b, &calls, h), 1);
    CHECK(!strcmp(h[0].item, "a"));
    CHECK(calls >= 2);
    reco_model_free(m);
}

TEST(reco_popularity_fallback_for_new_users)
{
    struct reco_model *m = model();
    struct reco_hit h[4], p[4];

    see(m, "s1", "a", 1), see(m, "s2", "a", 2), see(m, "s3", "a", 3);
    see(m, "s1", "b", 4), see(m, "s2", "b", 5);
    see(m, "s4", "c", 6);
    CHECK_EQ(reco_popular(m, 4, p), 3);
    CHECK(!strcmp(p[0].item, "a") && !strcmp(p[1].item, "b") && !strcmp(p[2].item, "c"));
    CHECK(p[0].score == 1.0);
    CHECK_EQ(reco_for_key(m, "new-user", 4, NULL, NULL, h), 3);
    for (int i = 0; i < 3; i++)
        CHECK(!strcmp(h[i].item, p[i].item));
    CHECK_EQ(reco_for_session(m, NULL, 0, 2, NULL, NULL, h), 2);
    CHECK(!strcmp(h[0].item, "a") && !strcmp(h[1].item, "b"));
    reco_model_free(m);
}

TEST(reco_for_key_leaves_out_purchases)
{
    struct reco_model *m = model();
    struct reco_hit h[8];
    size_t n;

    see(m, "s1", "a", 1), see(m, "s1", "b", 2), see(m, "s1", "c", 3);
    see(m, "u1", "a", 10);
    CHECK_EQ(reco_observe(m, "u1", "b", RECO_PURCHASE, 11), 0);
    n = reco_for_key(m, "u1", 8, NULL, NULL, h);
    CHECK(n >= 2);
    CHECK(!has(h, n, "b"));
    CHECK(has(h, n, "a") && has(h, n, "c"));
    reco_model_free(m);
}

TEST(reco_decay_prefers_recent_pairs)
{
    struct reco_model *m = model();
    struct reco_hit h[4];
    double day = 86400;

    see(m, "s1", "a", 0), see(m, "s1", "b", 1);
    see(m, "s2", "a", 2), see(m, "s2", "b", 3);
    see(m, "s3", "a", 30 * day), see(m, "s3", "c", 30 * day + 1);
    CHECK_EQ(reco_similar(m, "a", 4, h), 2);
    CHECK(!strcmp(h[0].item, "c"));     /* 1 recent pair beats 2 from a month ago */
    /* far in the future: the weights are rebased, ratios survive */
    see(m, "s4", "a", 3000 * day), see(m, "s4", "b", 3000 * day + 1);
    CHECK_EQ(reco_similar(m, "a", 4, h), 2);
    CHECK(!strcmp(h[0].item, "b"));
    CHECK(isfinite(h[0].score) && h[0].score > 0);
    reco_model_free(m);
}

TEST(reco_memory_caps_and_eviction)
{
    struct reco_params p;
    struct reco_model *m;
    struct reco_stats st;
    struct reco_hit h[16];
    char item[16], key[16];

    reco_params_default(&p);
    p.max_items = 4;
    p.max_neighbours = 2;
    p.max_keys = 3;
    CHECK((m = reco_model_new(&p)));
    for (int i = 0; i < 10; i++) {
        snprintf(item, sizeof item, "i%d", i);
        snprintf(key, sizeof key, "k%d", i % 5);
        see(m, key, item, i);
    }
    reco_get_stats(m, &st);
    CHECK_EQ(st.items, 4);
    CHECK_EQ(st.items_evicted, 6);
    CHECK_EQ(st.keys, 3);
    CHECK_EQ(st.keys_evicted, 7);  /* k0..k4 round robin over 3 slots */
    CHECK_EQ(reco_similar(m, "i0", 16, h), 0);  /* evicted: the coldest */
    CHECK_EQ(reco_popular(m, 16, h), 4);
    CHECK(!has(h, 4, "i0"));

    /* a hub with 3 neighbours keeps only 2, and a reborn item starts clean */
    reco_model_free(m);
    CHECK((m = reco_model_new(&p)));
    see(m, "a", "hub", 1), see(m, "a", "x", 2);
    see(m, "b", "hub", 3), see(m, "b", "y", 4);
    see(m, "c", "hub", 5), see(m, "c", "y", 6);
    see(m, "d", "hub", 7), see(m, "d", "z", 8);
    CHECK(reco_similar(m, "hub", 16, h) <= 2);
    reco_get_stats(m, &st);
    CHECK(st.neighbours_replaced >= 1);
    CHECK(st.items <= 4);
    reco_model_free(m);
}

TEST(reco_rejects_bad_input)
{
    struct reco_model *m = model();
    struct reco_params p;
    char big[RECO_MAX_NAME + 2];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ(reco_observe(m, "", "a", RECO_VIEW, 1), RECO_EINVAL);
    CHECK_EQ(reco_observe(m, "k", "", RECO_VIEW, 1), RECO_EINVAL);
    CHECK_EQ(reco_observe(m, "k", big, RECO_VIEW, 1), RECO_EINVAL);
    CHECK_EQ(reco_observe(m, "k", "a", RECO_KINDS, 1), RECO_EINVAL);
    CHECK_EQ(reco_observe(m, "k", "a", RECO_VIEW, NAN), RECO_EINVAL);
    reco_model_free(m);
    reco_params_default(&p);
    p.window = 0;
    CHECK(!reco_model_new(&p));
    reco_params_default(&p);
    p.cos_alpha = 2;
    CHECK(!reco_model_new(&p));
}

/* Feeds the same pseudo-random stream to a model; returns it. */
static struct reco_model *fed(void)
{
    struct reco_params p;
    struct reco_model *m;
    unsigned x = 12345;
    char key[16], item[16];

    reco_params_default(&p);
    p.max_items = 50;
    p.max_neighbours = 5;
    p.max_keys = 20;
    CHECK((m = reco_model_new(&p)));
    for (int i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        snprintf(key, sizeof key, "k%u", (x >> 8) % 40);
        snprintf(item, sizeof item, "%u", (x >> 16) % 80);
        CHECK_EQ(reco_observe(m, key, item, (enum reco_kind)((x >> 4) % 3), i * 10.0), 0);
    }
    return m;
}

TEST(reco_deterministic)
{
    struct reco_model *a = fed(), *b = fed();
    struct reco_hit ha[20], hb[20];
    size_t na, nb;

    for (int k = 0; k < 40; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        na = reco_for_key(a, key, 20, NULL, NULL, ha);
        nb = reco_for_key(b, key, 20, NULL, NULL, hb);
        CHECK_EQ(na, nb);
        CHECK(na == 20);
        for (size_t i = 0; i < na; i++) {
            CHECK(!strcmp(ha[i].item, hb[i].item));
            CHECK(ha[i].score == hb[i].score);
            if (i)  /* sorted by score, then id */
                CHECK(ha[i - 1].score > ha[i].score ||
                      (ha[i - 1].score == ha[i].score && reco_item_cmp(ha[i - 1].item, ha[i].item) < 0));
        }
    }
    reco_model_free(a);
    reco_model_free(b);
}

TEST(reco_survives_allocation_failures)
{
    size_t base = alloc_live_bytes();

    for (long n = 0; n < 200; n++) {
        struct reco_model *m;
        struct reco_hit h[5];
        alloc_fail_after(n);
        m = reco_model_new(NULL);
        if (m) {
            for (int i = 0; i < 30; i++) {
                char it[8];
                snprintf(it, sizeof it, "%d", i % 7);
                int rc = reco_observe(m, i % 2 ? "a" : "b", it, RECO_VIEW, i);
                CHECK(rc == 0 || rc == RECO_ENOMEM);
            }
            reco_for_key(m, "a", 5, NULL, NULL, h);
        }
        alloc_fail_after(-1);
        reco_model_free(m);
        CHECK_EQ(alloc_live_bytes(), base);
    }
}

/* ---- metrics ------------------------------------------------------------ */

TEST(reco_metrics_by_hand)
{
    struct reco_metrics mt;
    struct reco_hit l1[3] = {{"x", 3}, {"y", 2}, {"z", 1}};

    /* K = 2: target y at rank 2 (1/2), x at rank 1 (1), z at rank 3 (past K:
     * 0), w absent (0).  HR = 2/4 = 0.5, MRR = (0.5 + 1) / 4 = 0.375. */
    reco_metrics_init(&mt, 2);
    CHECK_EQ(reco_metrics_add(&mt, l1, 3, "y"), 2);
    CHECK_EQ(reco_metrics_add(&mt, l1, 3, "x"), 1);
    CHECK_EQ(reco_metrics_add(&mt, l1, 3, "z"), 0);
    CHECK_EQ(reco_metrics_add(&mt, l1, 3, "w"), 0);
    CHECK_EQ(mt.points, 4);
    CHECK(reco_metrics_hr(&mt) == 0.5);
    CHECK(reco_metrics_mrr(&mt) == 0.375);
    reco_metrics_init(&mt, 20);
    CHECK(reco_metrics_hr(&mt) == 0 && reco_metrics_mrr(&mt) == 0);
}

/* The tiny dataset, also used by tests/shop/test_eval.py.
 *
 * Train: sessions 1: 1 2, 2: 1 2, 3: 1 3, 4: 4 1 (seconds apart).
 * Test:  session 10: 1 2 2, session 11: 4 3.  Three prediction points:
 *   10, p=1, seen [1], target 2.  Item 1 scores the re-visit term 1.0 (+
 *     0.001 popularity); item 2 P(2|1) = 2/3 plus a cosine of about 0.05;
 *     item 3 about 1/3.  Ranking 1, 2, 3: target at rank 2.
 *   10, p=2, seen [1 2], target 2.  Item 2 has the re-visit term 1.0 plus
 *     0.5 x P(2|1) (now 3/4); item 1 only 0.3 plus a small cosine.  Rank 1.
 *   11, p=1, seen [4], target 3.  Item 1 gets P(1|4) = 1 plus a cosine of
 *     about 0.06, item 4 the re-visit 1.0; item 3 has no link to 4 and is
 *     below both (popularity only).  Rank >= 3.
 * K = 2: HR = 2/3 = 0.6667, MRR = (1/2 + 1 + 0) / 3 = 0.5000.
 * K = 1: HR = 1/3, MRR = 1/3. */
static const char tiny_train[] = "SessionId\tItemId\tTime\n"
                                 "1\t1\t100\n1\t2\t101\n2\t1\t102\n2\t2\t103\n"
                                 "3\t1\t104\n3\t3\t105\n4\t4\t106\n4\t1\t107\n";
static const char tiny_test[] = "SessionId\tItemId\tTime\n"
                                "10\t1\t200\n10\t2\t201\n10\t2\t202\n11\t4\t203\n11\t3\t204\n";

static int eval_mem(const char *train, const char *test, size_t k, struct reco_eval_result *res,
                    char *err, size_t errsz)
{
    struct reco_model *m = model();
    struct csv_reader *a = csv_open_mem(train, strlen(train), '\t');
    struct csv_reader *b = csv_open_mem(test, strlen(test), '\t');
    int rc;

    CHECK(a && b);
    rc = reco_eval_run(m, a, b, k, res, err, errsz);
    csv_close(a);
    csv_close(b);
    reco_model_free(m);
    return rc;
}

TEST(reco_eval_tiny_dataset_by_hand)
{
    struct reco_eval_result r;
    char err[256];

    CHECK_EQ(eval_mem(tiny_train, tiny_test, 2, &r, err, sizeof err), 0);
    CHECK_EQ(r.mt.points, 3);
    CHECK_EQ(r.mt.hits, 2);
    CHECK(fabs(reco_metrics_hr(&r.mt) - 2.0 / 3) < 1e-12);
    CHECK(fabs(reco_metrics_mrr(&r.mt) - 0.5) < 1e-12);
    CHECK_EQ(r.train_events, 8);
    CHECK_EQ(r.test_sessions, 2);
    CHECK_EQ(eval_mem(tiny_train, tiny_test, 1, &r, err, sizeof err), 0);
    CHECK_EQ(r.mt.hits, 1);
    CHECK(fabs(reco_metrics_mrr(&r.mt) - 1.0 / 3) < 1e-12);
}

TEST(reco_eval_rejects_hostile_input)
{
    struct reco_eval_result r;
    char err[256];

    CHECK_EQ(eval_mem("", tiny_test, 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "train file is empty"));
    CHECK_EQ(eval_mem("Session\tItem\tTime\n1\t2\t3\n", tiny_test, 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "header"));
    CHECK_EQ(eval_mem("SessionId\tItemId\tTime\n1\t2\tsoon\n", tiny_test, 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "line 2") && strstr(err, "Time"));
    CHECK_EQ(eval_mem("SessionId\tItemId\tTime\n1\t2\n", tiny_test, 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "expected 3"));
    CHECK_EQ(eval_mem("SessionId\tItemId\tTime\n", tiny_test, 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "no events"));
    CHECK_EQ(eval_mem(tiny_train, "SessionId\tItemId\tTime\n1\t1\t1\n2\t1\t2\n1\t2\t3\n", 20, &r, err,
                      sizeof err), -1);
    CHECK(strstr(err, "test file: line 4") && strstr(err, "contiguous"));
    CHECK_EQ(eval_mem(tiny_train, "SessionId\tItemId\tTime\n1\t\t1\n", 20, &r, err, sizeof err), -1);
    CHECK(strstr(err, "ItemId is empty"));
    CHECK_EQ(eval_mem(tiny_train, tiny_test, 0, &r, err, sizeof err), -1);
}
