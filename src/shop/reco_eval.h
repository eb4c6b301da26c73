/* reco_eval.h: the offline evaluation of the recommender (shop/recommend.h)
 * with the session-rec protocol of DESIGN.md ("Recommender evaluation"),
 * behind `shopstream eval recommend`.  It reads the two files through the
 * TSV reader (shop/csv.h); opening files is left to the caller.
 *
 * Input: tab-separated text with a header naming the columns SessionId,
 * ItemId and Time (any order, other columns ignored); Time is unix seconds
 * (a decimal number, fractions allowed).
 *
 * Protocol:
 *   1. Training: every train event is fed to reco_observe in time order
 *      (ties keep file order), keyed by its session, as a view.
 *   2. Testing: test sessions are taken in file order; a session's events
 *      must be contiguous and are used in file order.  For each session the
 *      model first observes event 0; then for each position p >= 1 it ranks
 *      all training items for the session's events 0..p-1
 *      (reco_for_session, items not in the train file excluded), the target
 *      is event p, the point is scored (reco_metrics_add), and only then is
 *      event p observed.  So the model keeps learning online from the test
 *      events it has already been shown, including earlier test sessions,
 *      exactly as the stream processor would; it never sees an event before
 *      it is asked to predict it.  (session-rec's own loop gives its models
 *      the current session's prefix too; that its models mostly do not update
 *      their statistics from it is a property of those models, not of the
 *      protocol.)
 *   3. HR@K = hits / points, MRR@K = sum of 1/rank / points (0 past K).
 *
 * Variants measured on the YOOCHOOSE sample (train_full / test, K = 20,
 * 10,152 points; `--set` of `shopstream eval`); the defaults of
 * reco_params_default are the row "defaults":
 *   variant                                              HR@20   MRR@20
 *   transitions of the last item only, no re-visits      0.3760  0.1924
 *   transitions of the last 5 items, no re-visits        0.5239  0.2188
 *   + re-visit term, no decay over the session           0.6875  0.3387
 *   + re-visit decay 0.3                                 0.6923  0.3757
 *   cosine only (w_seq 0, w_cos 1), re-visits            0.6897  0.3583
 *   defaults: transitions + cosine 0.1 (a 0.7) + re-visits 0.7012  0.3773
 *   defaults, cosine a 0.5                               0.6981  0.3763
 *   defaults, w_cos 0.2                                  0.7016  0.3769
 *   defaults, no time decay / half-life 1 day            0.7005 / 0.6915
 *   defaults, 32 / 128 / 1000 neighbours per item        0.6936 / 0.7013 / 0.7011
 *   defaults, window 5 / 20                              0.7031 / 0.7003
 * On the 99 test sessions (387 points) of session-rec's saved lists:
 * AR 0.5917 / 0.3160, SR 0.5607 / 0.3275, V-SKNN 0.6098 / 0.3342,
 * GRU4Rec 0.5711 / 0.3289, this model 0.6382 / 0.3596.
 */
#ifndef SHOPSTREAM_RECO_EVAL_H
#define SHOPSTREAM_RECO_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "shop/csv.h"
#include "shop/recommend.h"

struct reco_eval_result {
    struct reco_metrics mt;     /* HR@K and MRR@K */
    uint64_t train_events;
    uint64_t test_events;
    uint64_t test_sessions;
    uint64_t train_items;       /* distinct items of the train file */
    double observe_ns;          /* mean time of one reco_observe */
    double recommend_p50_ns;    /* median time of one reco_for_session */
    double recommend_p99_ns;
};

/* Runs the protocol above: model (borrowed, normally empty) learns from
 * train and is evaluated on test (both readers borrowed, tab-separated),
 * with cut-off k (1..RECO_MAX_K).  Returns 0 and fills *res, or -1 after
 * writing one sentence (no final period) naming the file ("train" or
 * "test") and line to err[0..errsz). */
int reco_eval_run(struct reco_model *model, struct csv_reader *train, struct csv_reader *test,
                  size_t k, struct reco_eval_result *res, char *err, size_t errsz);

#endif
