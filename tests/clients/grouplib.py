"""Shared helpers of the consumer-group tests (test_groups.py): a broker
process on a free port with its own data dir, consumer-group member
processes (group_member.py for kafka-python / confluent-kafka,
rdkafka_group_member.c for librdkafka) whose JSON-lines reports are
collected by a reader thread, a background producer that records where each
record landed, and per-check result lines.
Run with Debian's /usr/bin/python3 (it has kafka-python and confluent-kafka).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import brokerproc
from brokerproc import BIN, free_port  # noqa: F401 (used by the tests)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
SESSION_MS = 6000


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Broker(brokerproc.Broker):
    """A broker whose groups rebalance at once (no initial delay)."""

    def __init__(self, work, name):
        super().__init__(work, name, ["--set", "group.initial.rebalance.delay.ms=0"])


class Checks:
    """Per-check result lines and the final count."""

    def __init__(self):
        self.passed = self.failed = 0
        self.failures = []

    def result(self, name, err=None):
        if err:
            self.failed += 1
            self.failures.append(name)
            print("FAIL %s: %s" % (name, err), flush=True)
        else:
            self.passed += 1
            print("ok   %s" % name, flush=True)
        return not err

    def check(self, name, cond, why):
        return self.result(name, None if cond else why)


def build_rdkafka_member(work):
    """Compiles rdkafka_group_member.c into work; returns the binary's path."""
    out = os.path.join(work, "rdkafka_group_member")
    src = os.path.join(HERE, "rdkafka_group_member.c")
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2",
                    "-o", out, src, "-lrdkafka"], check=True)
    return out


class Member:
    """A group member process and what it reported."""

    def __init__(self, kind, bootstrap, topic, group, client_id, assignor, rdkafka_bin=None,
                 session_ms=SESSION_MS):
        self.kind, self.client_id = kind, client_id
        if kind == "librdkafka":
            argv = [rdkafka_bin, bootstrap, topic, group, client_id, assignor, str(session_ms)]
        else:
            argv = [PY, os.path.join(HERE, "group_member.py"), kind, bootstrap, topic, group,
                    client_id, assignor, str(session_ms)]
        self.events = []
        self.lock = threading.Lock()
        self.stderr = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err_reader = threading.Thread(target=self._read_err, daemon=True)
        self.err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def assignment(self):
        """The member's current partitions (after its last assign/revoke)."""
        parts = set()
        for ev in self.snapshot():
            if ev["ev"] == "assigned":
                parts = set(ev["parts"])
            elif ev["ev"] == "revoked":
                parts = set()
        return parts

    def records(self):
        return [(ev["p"], ev["o"], ev["t"]) for ev in self.snapshot() if ev["ev"] == "rec"]

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join(5)

    def close(self, timeout=20):
        """SIGTERM (a clean close that commits); returns True if it closed cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode == 0 and any(ev["ev"] == "closed" for ev in self.snapshot())

    def describe(self):
        return "%s %s (pid %d, exit %s)%s" % (self.kind, self.client_id, self.proc.pid,
                                              self.proc.poll(),
                                              (": " + " | ".join(self.stderr[-3:])) if self.stderr else "")


def wait_for(cond, timeout, step=0.1):
    """Polls cond() until it returns a true value or timeout passes; returns the last value."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def split_ok(members, nparts):
    """None if the members' current assignments are non-empty, disjoint and
    cover 0..nparts-1; otherwise why not."""
    seen = {}
    for m in members:
        parts = m.assignment()
        if not parts:
            return "%s has no partitions" % m.client_id
        for p in parts:
            if p in seen:
                return "partition %d is assigned to both %s and %s" % (p, seen[p], m.client_id)
            seen[p] = m.client_id
    if set(seen) != set(range(nparts)):
        return "partitions %s are not assigned" % sorted(set(range(nparts)) - set(seen))
    return None


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)
    # Wait until the metadata shows every partition with a leader.
    deadline = time.time() + 10
    while time.time() < deadline:
        md = admin.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t and not t.error and len(t.partitions) == partitions and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError("topic %s has no leaders after creation" % topic)


class BackgroundProducer:
    """Produces record i to partition i % partitions (value b"<i>") at about
    rate records/s until stopped; acked holds (partition, offset) of every
    acknowledged record."""

    def __init__(self, bootstrap, topic, partitions, rate=200, start=0, timestamp_ms=None):
        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.next, self.timestamp_ms = start, timestamp_ms
        self.acked, self.errors = [], []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                           "message.timeout.ms": 20000, "log.connection.close": False})
        self.thread = None

    def _cb(self, err, msg):
        with self.lock:
            if err:
                self.errors.append(str(err))
            else:
                self.acked.append((msg.partition(), msg.offset()))

    def produce(self, n):
        """Produces n records now and waits for their acknowledgements."""
        for _ in range(n):
            self._one()
        self.p.flush(20)

    def _one(self):
        i = self.next
        self.next += 1
        kw = {}
        if self.timestamp_ms is not None:
            kw["timestamp"] = self.timestamp_ms(i)
        self.p.produce(self.topic, value=b"%d" % i, partition=i % self.partitions,
                       on_delivery=self._cb, **kw)
        self.p.poll(0)

    def _run(self):
        interval = 1.0 / self.rate
        t0 = time.time()
        k = 0
        while not self.stop_event.is_set():
            self._one()
            k += 1
            delay = t0 + k * interval - time.time()
            if delay > 0:
                time.sleep(delay)
        self.p.flush(20)

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        if self.thread:
            self.thread.join(30)

    def acked_set(self):
        with self.lock:
            return set(self.acked)


def watermarks(bootstrap, topic, partitions):
    """{partition: (low, high)} read with confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermark-reader",
                  "enable.auto.commit": False, "log.connection.close": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in range(partitions)}
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions):
    """{partition: committed offset or -1}, read with OffsetFetch (confluent-kafka)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "log.connection.close": False})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset if tp.offset >= 0 else -1 for tp in res}
    finally:
        c.close()


def cli(*args, timeout=30):
    """Runs bin/shopstream ARGS; returns (exit status, stdout, stderr)."""
    r = subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def parse_describe(out):
    """Parses `shopstream group describe` output into a dict:
    fields (the key/value header lines), members [{id, client-id, host,
    instance-id, assignment {topic: [partitions]}}], rows [{topic, partition,
    current, end, lag, consumer}] with None for "-"."""
    fields, members, rows = {}, [], []
    in_rows = False
    for line in out.splitlines():
        w = line.split(" ")
        if line == "TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID":
            in_rows = True
            continue
        if in_rows:
            num = lambda s: None if s == "-" else int(s)  # noqa: E731
            rows.append({"topic": w[0], "partition": int(w[1]), "current": num(w[2]),
                         "end": num(w[3]), "lag": num(w[4]),
                         "consumer": None if w[5] == "-" else w[5]})
        elif w[0] == "member":
            m = {"id": w[1]}
            for k in range(2, len(w) - 1, 2):
                m[w[k]] = None if w[k + 1] == "-" else w[k + 1]
            assignment = {}
            if m.get("assignment"):
                for part in m["assignment"].split(";"):
                    t, ps = part.split(":")
                    assignment[t] = [int(x) for x in ps.split(",")]
            m["assignment"] = assignment
            members.append(m)
        else:
            fields[w[0]] = " ".join(w[1:])
    return {"fields": fields, "members": members, "rows": rows}


def decode_assignment(data):
    """Decodes a ConsumerProtocolAssignment (v0-3): int16 version,
    [topic: string, [int32 partition]], bytes user data.  Returns
    {topic: [partitions]} (an independent decoder for cross-checks)."""
    import struct
    if not data:
        return {}
    pos = 2
    (ntopics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = {}
    for _ in range(ntopics):
        (tlen,) = struct.unpack_from(">h", data, pos)
        pos += 2
        topic = data[pos:pos + tlen].decode()
        pos += tlen
        (nparts,) = struct.unpack_from(">i", data, pos)
        pos += 4
        parts = list(struct.unpack_from(">%di" % nparts, data, pos))
        pos += 4 * nparts
        out[topic] = sorted(parts)
    return out


def run_main(tests, selected):
    """Runs the named test functions (each takes a Checks), prints
    "N passed, N failed" and returns the exit status."""
    checks = Checks()
    t_all = time.time()
    for name, fn in tests:
        if selected and name not in selected:
            continue
        t0 = time.time()
        log("---- %s" % name)
        try:
            fn(checks)
        except Exception as e:  # a broken run is a failure, with its reason
            import traceback
            traceback.print_exc()
            checks.result("%s: run" % name, repr(e))
        log("---- %s took %.1f s" % (name, time.time() - t0))
    log("all took %.1f s" % (time.time() - t_all))
    print("%d passed, %d failed" % (checks.passed, checks.failed), flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit("grouplib.py is a module; run test_groups.py")
