#!/usr/bin/python3
"""Crash test: an idempotent producer (confluent-kafka, acks=all,
enable.idempotence=true) writes numbered records to a 3-partition topic while
the broker is killed with SIGKILL and restarted at random moments, KILLS
times (default 20; SHOPSTREAM_CRASH_KILLS overrides).  Afterwards every
acknowledged record is read back exactly once, at the offset its
acknowledgement named, and every partition holds its records in the order
they were produced, with no duplicate at all.

Run with Debian's /usr/bin/python3.  Prints "N passed, N failed".
"""
import os
import random
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

TOPIC = "crash"
PARTITIONS = 3
KILLS = int(os.environ.get("SHOPSTREAM_CRASH_KILLS", "20"))


class Writer(threading.Thread):
    """Produces value n = 0, 1, 2, ... until stopped; keys spread them over partitions."""

    def __init__(self, bootstrap):
        super().__init__()
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                           "linger.ms": 5, "message.timeout.ms": 120000,
                           "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                           "log_level": 0})
        self.acked = []    # (partition, offset, n)
        self.failed = []   # (n, error)
        self.sent = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def on_delivery(self, err, msg):
        n = int(msg.value())
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), n))
            else:
                self.failed.append((n, str(err)))

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                self.p.produce(TOPIC, key=b"k%d" % (n % 31), value=b"%d" % n, on_delivery=self.on_delivery)
                n += 1
            except BufferError:
                self.p.poll(0.05)
                continue
            if n % 200 == 0:
                self.p.poll(0)
                time.sleep(0.01)
        self.sent = n
        self.p.flush(120)


def read_all(bootstrap):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-reader", "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    eof = set()
    deadline = time.time() + 120
    while len(eof) < PARTITIONS and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                eof.add(m.partition())
                continue
            raise RuntimeError("consume error: %s" % m.error())
        eof.discard(m.partition())
        out[m.partition()].append((m.offset(), int(m.value())))
    c.close()
    if len(eof) < PARTITIONS:
        raise RuntimeError("did not reach the end of every partition")
    return out


def main():
    work = tempfile.mkdtemp(prefix="shopstream-crash.")
    # fsync before acknowledging widens the window in which a batch is written
    # but not yet acknowledged when the kill comes, so retries do happen
    broker = Broker(work, "crash", ["--set", "log.flush.interval.messages=1"])
    bootstrap = broker.bootstrap
    rnd = random.Random(int(os.environ.get("SHOPSTREAM_CRASH_SEED", "7")))
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
        w = Writer(bootstrap)
        w.start()
        for i in range(KILLS):
            time.sleep(rnd.uniform(0.2, 1.2))
            broker.stop(signal.SIGKILL)
            time.sleep(rnd.uniform(0.0, 0.3))
            broker.start()
        time.sleep(1.0)
        w.stop.set()
        w.join(180)
        result("producer finished after %d kills (%d sent, %d acknowledged, %d failed)"
               % (KILLS, w.sent, len(w.acked), len(w.failed)),
               None if not w.is_alive() and not w.failed and len(w.acked) == w.sent
               else "sent %d, acknowledged %d, failed %s" % (w.sent, len(w.acked), w.failed[:3]))
        got = read_all(bootstrap)
        # exactly once, at its offset, in order
        at = {}
        seen = {}
        err = None
        for p, recs in got.items():
            last = -1
            for off, n in recs:
                if n in seen:
                    err = err or "value %d stored twice (%s and %d/%d)" % (n, seen[n], p, off)
                seen[n] = (p, off)
                at[(p, off)] = n
                if n <= last:
                    err = err or "partition %d: %d after %d at offset %d (out of order)" % (p, n, last, off)
                last = n
        for p, off, n in w.acked:
            if at.get((p, off)) != n:
                err = err or "acknowledged %d at %d/%d, found %s" % (n, p, off, at.get((p, off)))
        result("every acknowledged record exactly once, at its offset, in order (%d records)" % len(seen), err)
        broker.stop(signal.SIGTERM)
    except Exception as e:
        result("crash run", repr(e))
    finally:
        broker.stop(signal.SIGKILL)
        if failed:
            sys.stdout.write(broker.tail(4000))
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
