/* sink.c: see sink.h.  The Kafka sink counts deliveries in the delivery
 * report callback, which librdkafka runs inside rd_kafka_poll/flush on the
 * caller's thread; each message carries the sink as its opaque, so the
 * callback needs no global state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "shop/sink.h"
#include "stream/topics.h"

struct shop_sink {
    rd_kafka_t *rk;              /* owned producer, or NULL for a FILE sink */
    FILE *f;                     /* borrowed, FILE sink only */
    struct jbuf json;            /* reused for every event */
    struct shop_sink_stats st;
};

const char *const shop_sink_producer_defaults[] = {
    "enable.idempotence", "true",
    "acks", "all",
    "linger.ms", "5",
    "compression.codec", "lz4",
    NULL,
};

static void note_failure(struct shop_sink *s, const char *why)
{
    if (s->st.failed++ == 0)
        snprintf(s->st.first_error, sizeof s->st.first_error, "%s", why);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct shop_sink *s = m->_private;

    (void)rk;
    (void)opaque;
    if (!s)
        return;
    if (m->err)
        note_failure(s, rd_kafka_err2str(m->err));
    else
        s->st.delivered++;
}

void shop_sink_producer_conf(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
}

static struct shop_sink *sink_new(void)
{
    struct shop_sink *s = xcalloc(1, sizeof *s);

    if (s)
        jbuf_init(&s->json);
    return s;
}

struct shop_sink *shop_sink_kafka(rd_kafka_t *producer)
{
    struct shop_sink *s = sink_new();

    if (!s) {
        rd_kafka_destroy(producer);
        return NULL;
    }
    s->rk = producer;
    return s;
}

struct shop_sink *shop_sink_file(FILE *f)
{
    struct shop_sink *s = sink_new();

    if (s)
        s->f = f;
    return s;
}

int shop_sink_emit(struct shop_sink *s, const struct shop_event *ev)
{
    struct shop_str key = shop_event_key(ev);
    const char *topic = shop_stream_topic(shop_event_stream(ev->type));
    rd_kafka_resp_err_t err;

    s->st.emitted++;
    jbuf_reset(&s->json);
    if (shop_event_write(ev, &s->json) < 0 || s->json.oom) {
        note_failure(s, "out of memory");
        return -1;
    }
    if (s->f) {
        fprintf(s->f, "%s\t%.*s\t%.*s\n", topic, (int)key.n, key.p ? key.p : "",
                (int)s->json.len, s->json.p);
        if (ferror(s->f)) {
            note_failure(s, strerror(errno));
            return -1;
        }
        s->st.delivered++;
        return 0;
    }
    for (;;) {
        err = rd_kafka_producev(s->rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key.p, key.n),
                                RD_KAFKA_V_VALUE(s->json.p, s->json.len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_TIMESTAMP(ev->ts), RD_KAFKA_V_OPAQUE(s),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* The local queue is full: serve delivery reports until room frees. */
        rd_kafka_poll(s->rk, 10);
    }
    if (err) {
        note_failure(s, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(s->rk, 0);
    return 0;
}

void shop_sink_poll(struct shop_sink *s)
{
    if (s->rk)
        rd_kafka_poll(s->rk, 0);
}

void shop_sink_stats(const struct shop_sink *s, struct shop_sink_stats *out)
{
    *out = s->st;
}

int shop_sink_close(struct shop_sink *s, int timeout_ms, struct shop_sink_stats *final)
{
    int rc;

    if (s->rk) {
        rd_kafka_flush(s->rk, timeout_ms);
        long long lost = s->st.emitted - s->st.delivered - s->st.failed;
        if (lost > 0) {
            char why[128];
            snprintf(why, sizeof why, "%lld events not acknowledged within %d ms", lost,
                     timeout_ms);
            note_failure(s, why);
            s->st.failed += lost - 1;
        }
        rd_kafka_destroy(s->rk);
    } else if (s->f && fflush(s->f) != 0) {
        note_failure(s, strerror(errno));
    }
    rc = s->st.failed ? -1 : 0;
    if (final)
        *final = s->st;
    jbuf_free(&s->json);
    xfree(s);
    return rc;
}

int shop_topics_ensure(rd_kafka_t *admin, int partitions, int replicas, int timeout_ms,
                       char *errstr, size_t errsz)
{
    const struct stream_topic_spec specs[] = {
        {SHOP_TOPIC_ORDERS, partitions, replicas, 0},
        {SHOP_TOPIC_CLICKS, partitions, replicas, 0},
        {SHOP_TOPIC_AFTERSALES, partitions, replicas, 0},
        {SHOP_TOPIC_ORDER_STATE, partitions, replicas, 1},
        {SHOP_TOPIC_KPIS, partitions, replicas, 0},
        {SHOP_TOPIC_RECS, partitions, replicas, 1},
        {SHOP_TOPIC_ALERTS, partitions, replicas, 0},
        {SHOP_TOPIC_DEADLETTER, partitions, replicas, 0},
    };

    return stream_topics_create(admin, specs, sizeof specs / sizeof specs[0], timeout_ms, errstr,
                                errsz);
}
