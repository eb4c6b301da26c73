#!/usr/bin/python3
"""kafka-python 2.0.2 round trip (run with Debian's /usr/bin/python3).

For each codec (none, gzip, snappy, lz4, zstd): KafkaAdminClient.create_topics
a 4-partition topic, produce 100,000 keyed records with explicit timestamps and
1-2 headers (compression_type=codec), take partition/offset from each send()
future after flush(), then consume with KafkaConsumer.assign() (no group) from
the beginning and check every record (see roundtrip_common.py).

usage: test_kafka_python.py [BOOTSTRAP]
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

rc.ensure_system_python(["kafka", "snappy", "lz4", "zstandard"])

import logging  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.errors import for_code  # noqa: E402

CLIENT = "kafka-python"


def create_topic(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="shopstream-test-admin",
                             request_timeout_ms=30000)
    try:
        resp = admin.create_topics([NewTopic(name=topic, num_partitions=rc.PARTITIONS, replication_factor=1)],
                                   timeout_ms=30000)
        for t in resp.topic_errors:
            name, code = t[0], t[1]
            if code != 0:
                raise RuntimeError("create_topics %s: %s" % (name, for_code(code).__name__))
    finally:
        admin.close()


def wait_partitions(producer, topic, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        parts = producer.partitions_for(topic)
        if parts and len(parts) == rc.PARTITIONS:
            return True
        time.sleep(0.2)
    rc.log("topic %s: metadata shows partitions %r, expected %d" % (topic, parts, rc.PARTITIONS))
    return False


def produce(bootstrap, topic, codec, recs):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="shopstream-test-producer",
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        batch_size=256 * 1024,
        buffer_memory=256 * 1024 * 1024,
        max_block_ms=60000,
        request_timeout_ms=60000,
    )
    try:
        if not wait_partitions(producer, topic):
            recs.error("topic metadata incomplete")
            return False
        futures = []
        send = producer.send
        keys, values, headers, tss = recs.keys, recs.values, recs.headers, recs.timestamps
        for i in range(recs.n):
            futures.append(send(topic, key=keys[i], value=values[i], headers=headers[i], timestamp_ms=tss[i]))
        producer.flush(timeout=180)
        failed = 0
        for i, f in enumerate(futures):
            if not f.is_done or f.failed():
                failed += 1
                if failed <= 5:
                    recs.error("record #%d not delivered: %r" % (i, f.exception if f.is_done else "timeout"))
                continue
            md = f.value
            recs.delivered(i, md.partition, md.offset)
    finally:
        producer.close(timeout=10)
    return recs.finish_produce()


def consume(bootstrap, topic, recs):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="shopstream-test-consumer",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        max_poll_records=50000,
        fetch_max_wait_ms=200,
        check_crcs=True,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(rc.PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        last_progress = time.time()
        while not recs.all_done():
            if time.time() - last_progress > 30:
                recs.error("nothing consumed for 30 s (%d of %d records)" % (recs.consumed(), recs.n))
                break
            batches = consumer.poll(timeout_ms=500)
            for tp, msgs in batches.items():
                if msgs:
                    last_progress = time.time()
                for m in msgs:
                    recs.check(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp,
                               create_time=(m.timestamp_type == 0))
            if len(recs.errors) > rc.MAX_REPORTED:
                break
        # Fresh topic: the end offsets must be exactly the last delivered offset + 1.
        ends = consumer.end_offsets(tps)
        for tp in tps:
            exp = recs.expected[tp.partition]
            want = recs.offset[exp[-1]] + 1 if exp else 0
            if ends.get(tp) != want:
                recs.error("partition %d: end offset %r, expected %d" % (tp.partition, ends.get(tp), want))
    finally:
        consumer.close(autocommit=False)
    return recs.finish_consume()


def main():
    bootstrap = rc.bootstrap_or_reexec()
    n = rc.settings()[1]
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    rc.log("kafka-python %s, bootstrap %s, %d records per codec" % (__import__("kafka").__version__, bootstrap, n))
    return rc.run_codecs(CLIENT, "kafkapython", bootstrap, create_topic, produce, consume)


if __name__ == "__main__":
    sys.exit(main())
