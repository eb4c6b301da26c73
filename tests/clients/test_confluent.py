#!/usr/bin/python3
"""confluent-kafka round trip (Debian's python3-confluent-kafka 1.7.0, linked to
the system librdkafka 2.0.2; run with /usr/bin/python3).

For each codec (none, gzip, snappy, lz4, zstd): AdminClient.create_topics a
4-partition topic, produce 100,000 keyed records (compression.type=codec,
explicit timestamps, 1-2 headers) recording partition/offset from the delivery
callbacks, then consume with Consumer.assign() from OFFSET_BEGINNING and check
every record (see roundtrip_common.py).  librdkafka's assign() needs a group.id,
so the consumer has a throw-away one with auto-commit off; it never commits.

usage: test_confluent.py [BOOTSTRAP]
  Without BOOTSTRAP and without $SHOPSTREAM_TEST_BOOTSTRAP it starts a fresh
  broker through with_broker.sh.  Env: SHOPSTREAM_TEST_CODECS,
  SHOPSTREAM_TEST_RECORDS, SHOPSTREAM_TEST_SKIP_CREATE (see lib.sh).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import roundtrip_common as rc  # noqa: E402

rc.ensure_system_python(["confluent_kafka"])

import confluent_kafka  # noqa: E402
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError,  # noqa: E402
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLIENT = "confluent-kafka"


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=rc.PARTITIONS, replication_factor=1)],
                             operation_timeout=10, request_timeout=30)
    fs[topic].result(timeout=60)


def wait_partitions(client, topic, timeout=30):
    deadline = time.time() + timeout
    parts = None
    while time.time() < deadline:
        md = client.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None:
            parts = t.partitions
            if len(parts) == rc.PARTITIONS and all(pm.leader >= 0 and pm.error is None for pm in parts.values()):
                return True
        time.sleep(0.2)
    rc.log("topic %s: metadata shows partitions %r, expected %d" % (topic, parts, rc.PARTITIONS))
    return False


def produce(bootstrap, topic, codec, recs):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "shopstream-test-producer",
        "compression.type": codec,
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 200000,
        "queue.buffering.max.kbytes": 262144,
        "message.timeout.ms": 120000,
    })
    if not wait_partitions(producer, topic):
        recs.error("topic metadata incomplete")
        return False
    dr_errors = []

    def on_delivery(err, msg):
        i = recs.seq_of_key(msg.key())
        if err is not None or not 0 <= i < recs.n:
            dr_errors.append((i, err))
            return
        recs.delivered(i, msg.partition(), msg.offset())

    keys, values, headers, tss = recs.keys, recs.values, recs.headers, recs.timestamps
    prod = producer.produce
    for i in range(recs.n):
        while True:
            try:
                prod(topic, value=values[i], key=keys[i], headers=headers[i], timestamp=tss[i],
                     on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(180)
    if left:
        recs.error("%d records still queued after flush(180)" % left)
    for i, err in dr_errors[:5]:
        recs.error("record #%d not delivered: %s" % (i, err))
    if recs.errors:
        return False
    return recs.finish_produce()


def consume(bootstrap, topic, recs):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "shopstream-test-consumer",
        "group.id": "%s-assign" % topic,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "check.crcs": True,
        "fetch.max.bytes": 50 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "queued.min.messages": 200000,
    })
    eof = [False] * rc.PARTITIONS
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(rc.PARTITIONS)])
        last_progress = time.time()
        while not (recs.all_done() and all(eof)):
            if time.time() - last_progress > 30:
                recs.error("nothing consumed for 30 s (%d of %d records)" % (recs.consumed(), recs.n))
                break
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if 0 <= m.partition() < rc.PARTITIONS:
                            eof[m.partition()] = True
                    elif err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                        rc.log("consumer: %s" % err)
                    else:
                        recs.error("consumer error: %s" % err)
                    continue
                last_progress = time.time()
                p = m.partition()
                if 0 <= p < rc.PARTITIONS:
                    eof[p] = False
                tstype, ts = m.timestamp()
                recs.check(p, m.offset(), m.key(), m.value(), m.headers(), ts,
                           create_time=(tstype == TIMESTAMP_CREATE_TIME))
            if len(recs.errors) > rc.MAX_REPORTED:
                break
    finally:
        consumer.close()
    return recs.finish_consume()


def main():
    bootstrap = rc.bootstrap_or_reexec()
    n = rc.settings()[1]
    rc.log("confluent-kafka %s (librdkafka %s), bootstrap %s, %d records per codec"
           % (confluent_kafka.version()[0], confluent_kafka.libversion()[0], bootstrap, n))
    return rc.run_codecs(CLIENT, "confluent", bootstrap, create_topic, produce, consume)


if __name__ == "__main__":
    sys.exit(main())
