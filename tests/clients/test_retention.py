#!/usr/bin/python3
"""Log compaction and time retention, with real clients (confluent-kafka).

compaction: 1,000,000 updates over 10,000 keys (and tombstones for 500 of
  them) go to a compacted topic with small segments while a consumer keeps
  reading it from the beginning.  The topic shrinks; reading it afterwards
  gives, for every key, its latest value (and nothing for deleted keys once
  delete.retention.ms has passed); offsets only ever increase; the reader
  never sees an error.
retention: a topic with retention.ms=2000 and segment.ms=500 drops its old
  segments whole: the log start offset moves past the old records, and
  consumers from the beginning no longer see them.

Set SHOPSTREAM_COMPACTION_UPDATES to change the number of updates.
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

UPDATES = int(os.environ.get("SHOPSTREAM_COMPACTION_UPDATES", "1000000"))
KEYS = 10000
DELETED = 500


def dir_bytes(path, sealed_only=False):
    """Bytes of the segment files under path; with sealed_only, without each
    partition's active (newest) segment, which compaction never touches and
    whose fill depends on where the last roll happened."""
    total = 0
    for root, _, files in os.walk(path):
        logs = sorted(f for f in files if f.endswith(".log"))
        if sealed_only and logs:
            logs = logs[:-1]
        for f in logs:
            total += os.path.getsize(os.path.join(root, f))
    return total


def read_partition(bootstrap, topic, group):
    """All (offset, key, value) of partition 0 from the beginning."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
    out = []
    deadline = time.time() + 60
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                break
            c.close()
            raise RuntimeError("consume error: %s" % m.error())
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


class Reader(threading.Thread):
    """Reads the topic from the beginning over and over until stopped."""

    def __init__(self, bootstrap, topic):
        super().__init__()
        self.bootstrap, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.error = None
        self.rounds = 0
        self.records = 0

    def run(self):
        try:
            while not self.stop.is_set():
                recs = read_partition(self.bootstrap, self.topic, "retention-reader")
                for i in range(1, len(recs)):
                    if recs[i][0] <= recs[i - 1][0]:
                        raise RuntimeError("offset %d after %d" % (recs[i][0], recs[i - 1][0]))
                self.rounds += 1
                self.records += len(recs)
        except Exception as e:
            self.error = repr(e)


def main():
    work = tempfile.mkdtemp(prefix="shopstream-retention.")
    broker = Broker(work, "retention", ["--set", "log.cleaner.backoff.ms=500",
                                         "--set", "log.retention.check.interval.ms=500"])
    bootstrap = broker.bootstrap
    data = broker.data_dir
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
        fs = admin.create_topics([
            NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "1000000",
                                                "min.cleanable.dirty.ratio": "0.2",
                                                "delete.retention.ms": "1000"}),
            NewTopic("timed", 1, 1, config={"retention.ms": "2000", "segment.ms": "500"}),
        ])
        for f in fs.values():
            f.result(10)

        # --- compaction ---
        reader = Reader(bootstrap, "compacted")
        reader.start()
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"})
        latest = {}
        for i in range(UPDATES):
            key = b"key-%05d" % (i % KEYS)
            value = b"value-%d-%s" % (i, b"x" * 24)
            while True:
                try:
                    p.produce("compacted", key=key, value=value)
                    break
                except BufferError:
                    p.poll(0.05)
            latest[key] = value
            if i % 20000 == 0:
                p.poll(0)
        for k in range(DELETED):
            key = b"key-%05d" % k
            p.produce("compacted", key=key, value=None)
            latest.pop(key, None)
        p.flush(60)
        produced_bytes = dir_bytes(os.path.join(data, "topics", "compacted"))
        # let the cleaner run over the sealed segments, then seal the tail by
        # writing enough fresh updates of the same keys to roll a segment
        time.sleep(3)
        for i in range(40000):
            key = b"key-%05d" % (DELETED + i % (KEYS - DELETED))
            value = b"again-%d-%s" % (i, b"y" * 24)
            while True:
                try:
                    p.produce("compacted", key=key, value=value)
                    break
                except BufferError:
                    p.poll(0.05)
            latest[key] = value
        p.flush(60)
        # (the cleaner backs off between passes; on a loaded machine a pass
        # over the fresh tail can take a while, so wait generously)
        deadline = time.time() + 90
        cdir = os.path.join(data, "topics", "compacted")
        while time.time() < deadline and dir_bytes(cdir, sealed_only=True) > produced_bytes / 4:
            time.sleep(0.5)
        time.sleep(2)
        reader.stop.set()
        reader.join(120)
        after = dir_bytes(cdir, sealed_only=True)
        recs = read_partition(bootstrap, "compacted", "retention-final")
        total = UPDATES + DELETED + 40000
        # what is left: one record per key in the cleaned segments, plus the
        # active segment, which is never cleaned
        result("compacted topic shrinks (%d bytes of segments -> %d in sealed segments, %d of %d records left)"
               % (produced_bytes, after, len(recs), total),
               None if after < produced_bytes / 4 and len(recs) < total / 5 else "it did not shrink enough")
        seen = {}
        err = None
        for off, key, value in recs:
            if value is None:
                seen.pop(key, None)
            else:
                seen[key] = value
        if seen != latest:
            wrong = [k for k in latest if seen.get(k) != latest[k]][:3]
            extra = [k for k in seen if k not in latest][:3]
            err = "%d keys differ (e.g. %s), %d deleted keys still present (e.g. %s)" % (
                len([k for k in latest if seen.get(k) != latest[k]]), wrong, len([k for k in seen if k not in latest]),
                extra)
        result("latest value per key after compaction (%d records read for %d keys)" % (len(recs), len(latest)), err)
        result("a consumer kept reading during compaction (%d passes, %d records)" % (reader.rounds, reader.records),
               reader.error or (None if reader.rounds > 0 else "the reader never finished a pass"))

        # --- time retention ---
        p.produce("timed", key=b"old", value=b"old")
        p.flush(10)
        time.sleep(3.5)  # past retention.ms; the segment ages out (segment.ms) and is deleted
        p.produce("timed", key=b"new", value=b"new")
        p.flush(10)
        deadline = time.time() + 10
        recs = []
        while time.time() < deadline:
            recs = read_partition(bootstrap, "timed", "retention-timed")
            if [r[1] for r in recs] == [b"new"]:
                break
            time.sleep(0.5)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
        low, high = c.get_watermark_offsets(TopicPartition("timed", 0), timeout=10)
        c.close()
        result("time retention drops the old segment (low watermark %d, high %d)" % (low, high),
               None if [r[1] for r in recs] == [b"new"] and low == 1 and high == 2
               else "read %s, watermarks %d..%d" % ([r[1] for r in recs], low, high))
        broker.stop(signal.SIGTERM)
    except Exception as e:
        result("retention run", repr(e))
    finally:
        broker.stop(signal.SIGKILL)
        if failed:
            sys.stdout.write(broker.tail())
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
