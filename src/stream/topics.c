/* topics.c: see topics.h.  One CreateTopics request for all missing topics;
 * TOPIC_ALREADY_EXISTS (another instance won the race) counts as success. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#include "common/alloc.h"
#include "stream/topics.h"

int stream_topics_create(rd_kafka_t *rk, const struct stream_topic_spec *specs, size_t n,
                         int timeout_ms, char *errstr, size_t errsz)
{
    rd_kafka_NewTopic_t **nts = NULL;
    const char **names = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t nnew = 0;
    int rc = -1;
    char e[256];

    if (n == 0)
        return 0;
    if (!(nts = xcalloc(n, sizeof *nts)) || !(names = xcalloc(n, sizeof *names))) {
        xfree(nts);
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        int have = stream_topic_partitions(rk, specs[k].name, timeout_ms, errstr, errsz);

        if (have < 0)
            goto out;
        if (have > 0)
            continue;
        nts[nnew] = rd_kafka_NewTopic_new(specs[k].name, specs[k].partitions, specs[k].replicas,
                                          e, sizeof e);
        if (!nts[nnew]) {
            snprintf(errstr, errsz, "topic %s: %s", specs[k].name, e);
            goto out;
        }
        if (specs[k].compacted &&
            rd_kafka_NewTopic_set_config(nts[nnew], "cleanup.policy", "compact")) {
            snprintf(errstr, errsz, "topic %s: cannot set cleanup.policy", specs[k].name);
            rd_kafka_NewTopic_destroy(nts[nnew]);
            goto out;
        }
        names[nnew] = specs[k].name;
        nnew++;
    }
    if (nnew == 0) {
        rc = 0;
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, e, sizeof e);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, e, sizeof e);
    rd_kafka_CreateTopics(rk, nts, nnew, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        snprintf(errstr, errsz, "creating topics timed out after %d ms", timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errsz, "creating topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    {
        size_t nres;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);

        for (size_t k = 0; k < nres; k++) {
            rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[k]);

            if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                const char *why = rd_kafka_topic_result_error_string(res[k]);

                snprintf(errstr, errsz, "creating topic %s: %s", rd_kafka_topic_result_name(res[k]),
                         why ? why : rd_kafka_err2str(err));
                goto out;
            }
        }
    }
    /* In a cluster the other brokers learn of a new topic a moment after
     * the controller answered (in Kafka too): wait until the metadata
     * shows every created topic, so that the caller's checks see them. */
    for (size_t k = 0; k < nnew; k++) {
        const char *name = names[k];
        int64_t deadline = clock_mono_ms() + timeout_ms;
        int have;
        while ((have = stream_topic_partitions(rk, name, timeout_ms, errstr, errsz)) == 0 &&
               clock_mono_ms() < deadline) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (have <= 0) {
            if (have == 0)
                snprintf(errstr, errsz, "topic %s was created but does not appear in the metadata", name);
            goto out;
        }
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    for (size_t k = 0; k < nnew; k++)
        rd_kafka_NewTopic_destroy(nts[k]);
    xfree(nts);
    xfree(names);
    return rc;
}

int stream_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                            size_t errsz)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int n = 0;

    /* Asking for one topic by name could make a cluster that auto-creates
     * topics create it with the wrong settings, so ask for all topics. */
    err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errsz, "cannot read the cluster's metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    for (int k = 0; k < md->topic_cnt; k++)
        if (!strcmp(md->topics[k].topic, topic) && md->topics[k].err == 0)
            n = md->topics[k].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

int stream_topic_partitions_settled(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                                    size_t errsz)
{
    /* the brokers of a cluster learn of a topic a moment apart: a topic
     * missing from one broker's answer is asked about again for a while */
    int64_t deadline = clock_mono_ms() + TOPIC_SETTLE_MS;
    int n;
    while ((n = stream_topic_partitions(rk, topic, timeout_ms, errstr, errsz)) == 0 &&
           clock_mono_ms() < deadline) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return n;
}
