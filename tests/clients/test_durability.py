#!/usr/bin/python3
"""Durability across restarts, with a real client (confluent-kafka).

1. A broker with the durable flush setting (log.flush.interval.messages=1:
   fsync before acknowledging) takes keyed records with acks=all.
2. Clean restart (SIGTERM): every acknowledged record is read back at its
   offset with its key and value.
3. The producer keeps writing while the broker is killed with SIGKILL; after
   a restart every record that was acknowledged before the kill is there, at
   the offset the acknowledgement named, and the log is readable to its end
   (no gap, no garbage).
Run with Debian's /usr/bin/python3.  Prints "N passed, N failed".
"""
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brokerproc import Broker  # noqa: E402
TOPIC = "durable"
PARTITIONS = 3


def produce(bootstrap, start, n, acked, stop_event=None):
    """Produces n records; records (partition, offset, key, value) of each ack."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                  "message.timeout.ms": 5000, "retries": 0 if stop_event else 5})
    lock = threading.Lock()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for i in range(start, start + n):
        if stop_event is not None and stop_event.is_set():
            break
        key = b"key-%d" % (i % 97)
        while True:
            try:
                p.produce(TOPIC, key=key, value=b"value-%08d" % i, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 500 == 0:
            p.poll(0)
            if stop_event is not None:
                time.sleep(0.002)  # keep a steady stream while the broker is killed
    p.flush(15)


def read_all(bootstrap):
    """Returns {partition: [(offset, key, value), ...]} from the beginning to the end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "durability-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    eof = set()
    deadline = time.time() + 60
    while len(eof) < PARTITIONS and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            raise RuntimeError("consume error: %s" % m.error())
        out[m.partition()].append((m.offset(), m.key(), m.value()))
    c.close()
    if len(eof) < PARTITIONS:
        raise RuntimeError("did not reach the end of every partition")
    return out


def check(acked, got):
    """Every acknowledged record is at its offset; offsets are contiguous."""
    index = {}
    for p, recs in got.items():
        for i, (off, key, value) in enumerate(recs):
            if i and off != recs[i - 1][0] + 1:
                return "partition %d: offset %d follows %d" % (p, off, recs[i - 1][0])
            index[(p, off)] = (key, value)
    for p, off, key, value in acked:
        if index.get((p, off)) != (key, value):
            return "acknowledged record %s at %d/%d is %s after the restart" % (value, p, off, index.get((p, off)))
    return None


def main():
    work = tempfile.mkdtemp(prefix="shopstream-durability.")
    broker = Broker(work, "durability", ["--set", "log.flush.interval.messages=1",
                                          "--set", "group.initial.rebalance.delay.ms=0"])
    bootstrap = broker.bootstrap
    passed = failed = 0

    def result(name, err):
        nonlocal passed, failed
        if err:
            failed += 1
            print("FAIL %s: %s" % (name, err), flush=True)
        else:
            passed += 1
            print("ok   %s" % name, flush=True)

    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(10)

        acked = []
        produce(bootstrap, 0, 20000, acked)
        rc = broker.stop(signal.SIGTERM)
        result("clean shutdown exits 0", None if rc == 0 else "exit status %s" % rc)
        broker.start()
        got = read_all(bootstrap)
        err = check(acked, got) or (None if len(acked) == 20000 else "only %d of 20000 acknowledged" % len(acked))
        result("clean restart keeps every acknowledged record (%d)" % len(acked), err)

        # Keep producing, kill -9 in the middle of it.
        stop = threading.Event()
        acked2 = []
        t = threading.Thread(target=produce, args=(bootstrap, 20000, 10 ** 7, acked2, stop))
        t.start()
        time.sleep(2.0)
        before_kill = len(acked2)
        broker.stop(signal.SIGKILL)
        time.sleep(0.5)
        stop.set()
        t.join(60)
        broker.start()
        got = read_all(bootstrap)
        err = check(acked + acked2, got)
        if not err and before_kill == 0:
            err = "nothing was acknowledged before the kill: the test did not exercise it"
        result("kill -9 keeps every acknowledged record (%d acknowledged)" % (len(acked) + len(acked2)), err)
        broker.stop(signal.SIGTERM)
    except Exception as e:  # a broken run is a failure, with its reason
        result("durability run", repr(e))
        broker.stop(signal.SIGKILL)
    finally:
        if failed:
            sys.stdout.write(broker.tail())
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
