/* rdkafka_group_member.c: one librdkafka consumer-group member for the group
 * tests (test_groups.py).  It subscribes to TOPIC in GROUP and reports on
 * stdout, one JSON object per line, what group_member.py reports for
 * kafka-python and confluent-kafka:
 *   {"ev":"start","t":T}
 *   {"ev":"assigned","t":T,"parts":[0,1]}   after each assignment
 *   {"ev":"revoked","t":T,"parts":[0,1]}    after each revocation
 *   {"ev":"rec","t":T,"p":P,"o":O}          per record
 *   {"ev":"closed","t":T}                   after a clean close
 * T is wall-clock seconds.  Offsets are auto-committed every second and on
 * close (SIGTERM/SIGINT close the consumer cleanly; SIGKILL does not).
 *
 * usage: rdkafka_group_member BOOTSTRAP TOPIC GROUP CLIENT_ID ASSIGNOR SESSION_MS
 * Build: cc -O2 -o rdkafka_group_member rdkafka_group_member.c -lrdkafka */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_parts(const char *ev, const rd_kafka_topic_partition_list_t *parts)
{
    printf("{\"ev\":\"%s\",\"t\":%.6f,\"parts\":[", ev, now());
    for (int i = 0; parts && i < parts->cnt; i++)
        printf("%s%d", i ? "," : "", (int)parts->elems[i].partition);
    printf("]}\n");
    fflush(stdout);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        print_parts("assigned", parts);
    } else {
        print_parts("revoked", parts);
        rd_kafka_assign(rk, NULL);
    }
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];

    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rdkafka_group_member: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *subs;
    char err[512];
    struct sigaction sa;

    if (argc != 7) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC GROUP CLIENT_ID ASSIGNOR SESSION_MS\n", argv[0]);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", argv[1]) || set(conf, "group.id", argv[3]) ||
        set(conf, "client.id", argv[4]) || set(conf, "partition.assignment.strategy", argv[5]) ||
        set(conf, "session.timeout.ms", argv[6]) || set(conf, "heartbeat.interval.ms", "1000") ||
        set(conf, "auto.offset.reset", "earliest") || set(conf, "enable.auto.commit", "true") ||
        set(conf, "auto.commit.interval.ms", "1000") || set(conf, "log.connection.close", "false"))
        return 2;
    /* RDKAFKA_GROUP_MEMBER_DEBUG=cgrp,protocol turns on librdkafka's logs. */
    if (getenv("RDKAFKA_GROUP_MEMBER_DEBUG") && set(conf, "debug", getenv("RDKAFKA_GROUP_MEMBER_DEBUG")))
        return 2;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
        fprintf(stderr, "rdkafka_group_member: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, argv[2], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(rk, subs)) {
        fprintf(stderr, "rdkafka_group_member: subscribe failed\n");
        return 1;
    }
    rd_kafka_topic_partition_list_destroy(subs);
    printf("{\"ev\":\"start\",\"t\":%.6f}\n", now());
    fflush(stdout);

    while (!stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "rdkafka_group_member: %s\n", rd_kafka_message_errstr(m));
        } else {
            printf("{\"ev\":\"rec\",\"t\":%.6f,\"p\":%d,\"o\":%lld}\n", now(), (int)m->partition,
                   (long long)m->offset);
            fflush(stdout);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("{\"ev\":\"closed\",\"t\":%.6f}\n", now());
    fflush(stdout);
    return 0;
}
