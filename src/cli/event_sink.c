/* event_sink.c: see event_sink.h. */
#include <stdio.h>

#include "cli/event_sink.h"

struct shop_sink *event_sink_open(const struct client_opts *co, const char *cmd, int to_stdout,
                                  int partitions)
{
    const char *defaults[32];
    char timeout_str[32], errstr[512];
    size_t d = 0;
    rd_kafka_t *admin, *producer;
    rd_kafka_conf_t *conf;
    const struct rd_kafka_metadata *md;
    struct shop_sink *sink;

    if (to_stdout) {
        if (!(sink = shop_sink_file(stdout)))
            fprintf(stderr, "%s: out of memory.\n", cmd);
        return sink;
    }
    /* client_conf_new applies bootstrap.servers and the partitioner, then
     * `defaults`, then every -X: the sink's wishes (idempotence, acks=all,
     * linger, lz4) go in as defaults so that -X wins over them.  The
     * delivery report callback is no string setting -X could name; it is
     * set on the finished conf, before the handle exists. */
    for (size_t k = 0; shop_sink_producer_defaults[k] && d + 4 < sizeof defaults / sizeof *defaults;
         k += 2) {
        defaults[d++] = shop_sink_producer_defaults[k];
        defaults[d++] = shop_sink_producer_defaults[k + 1];
    }
    if (co->timeout_given) {
        snprintf(timeout_str, sizeof timeout_str, "%d", co->timeout_ms);
        defaults[d++] = "message.timeout.ms";
        defaults[d++] = timeout_str;
    }
    defaults[d] = NULL;

    /* Topics first: without a cluster there is no point producing. */
    if (!(admin = client_admin_new(co, cmd)))
        return NULL;
    if (shop_topics_ensure(admin, partitions, -1, co->timeout_ms, errstr, sizeof errstr) < 0) {
        client_report(admin, co, cmd, "could not create the shop topics",
                      RD_KAFKA_RESP_ERR__TIMED_OUT, errstr);
        rd_kafka_destroy(admin);
        return NULL;
    }
    rd_kafka_destroy(admin);
    if (!(conf = client_conf_new(co, cmd, RD_KAFKA_PRODUCER, defaults)))
        return NULL;
    shop_sink_producer_conf(conf);
    if (!(producer = client_handle_new(cmd, RD_KAFKA_PRODUCER, conf)))
        return NULL;
    /* Fill the producer's metadata cache now: otherwise the first event of
     * each topic waits for librdkafka's one-second topic scan to learn the
     * leaders (measured: a 1 s stall at start). */
    if (rd_kafka_metadata(producer, 1, NULL, &md, co->timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    if (!(sink = shop_sink_kafka(producer))) /* takes producer */
        fprintf(stderr, "%s: out of memory.\n", cmd);
    return sink;
}
