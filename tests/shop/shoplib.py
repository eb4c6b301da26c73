"""Shared helpers for the e-commerce tests: the shopstream binary, a broker
(tests/clients/brokerproc.py), running a subcommand, and reading a whole
topic with confluent-kafka."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))

from brokerproc import Broker, free_port  # noqa: E402,F401

BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))


def workdir(name):
    return tempfile.mkdtemp(prefix="shopstream-%s." % name)


def run(args, timeout=300, check=True, **kw):
    """Runs `shopstream ARGS...`; returns the CompletedProcess (text)."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("shopstream %s exited %d:\n%s%s" % (
            " ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def read_topic(bootstrap, topic, timeout=30.0):
    """Every record of topic from the beginning to the current end, as a list
    of (partition, offset, key bytes, value bytes, timestamp ms)."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "shoptest-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        c.close()
        return []
    parts = sorted(t.partitions)
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        ends[p] = hi
    want = [p for p in parts if ends[p] > 0]
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in want])
    out = []
    done = set()
    import time
    deadline = time.time() + timeout
    while len(done) < len(want) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                if m.offset() >= ends[m.partition()]:
                    done.add(m.partition())
                continue
            raise AssertionError("read %s: %s" % (topic, m.error()))
        out.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1]))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    if len(done) < len(want):
        raise AssertionError("read %s: timed out" % topic)
    return out


def latest_by_key(records):
    """The last value per key (a compacted topic's view)."""
    d = {}
    for (_p, _o, k, v, _ts) in sorted(records, key=lambda r: (r[0], r[1])):
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


def produce_lines(bootstrap, lines, extra=None):
    """Produces "TOPIC<TAB>KEY<TAB>VALUE" lines (the format of `simulate
    --stdout` and `replay --stdout`) in order, keyed, with the event's ts as
    the record timestamp when the value is JSON with one; returns the count.
    Partitioned with murmur2 like shopstream's own producers."""
    import json
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
            "enable.idempotence": True, "linger.ms": 5}
    conf.update(extra or {})
    p = Producer(conf)
    errors = []

    def dr(err, _msg):
        if err is not None:
            errors.append(err)
    n = 0
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        topic, key, value = line.split("\t", 2)
        ts = 0
        try:
            ts = int(json.loads(value).get("ts", 0))
        except Exception:
            pass
        while True:
            try:
                p.produce(topic, key=key.encode(), value=value.encode(), timestamp=ts, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        n += 1
    p.flush(60)
    if errors:
        raise AssertionError("produce: %d failures, first %s" % (len(errors), errors[0]))
    return n


def group_lag(bootstrap, group, topics, timeout=10.0):
    """Total lag of group over topics (end offset minus committed offset,
    uncommitted partitions counting from 0)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = []
        md = c.list_topics(timeout=timeout)
        for t in topics:
            if t in md.topics:
                tps += [TopicPartition(t, p) for p in md.topics[t].partitions]
        committed = c.committed(tps, timeout=timeout)
        lag = 0
        for tp in committed:
            lo, hi = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout)
            off = tp.offset if tp.offset >= 0 else lo
            lag += max(0, hi - off)
        return lag
    finally:
        c.close()


def wait_caught_up(bootstrap, group, topics, timeout=180.0, procs=()):
    """Waits until group has committed everything in topics; fails if one of
    procs (Popen) exits meanwhile."""
    import time
    deadline = time.time() + timeout
    lag = None
    while time.time() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError("a processor exited with %s" % p.returncode)
        try:
            lag = group_lag(bootstrap, group, topics)
        except Exception as e:  # the group may be rebalancing
            lag = str(e)
        if lag == 0:
            return
        time.sleep(0.5)
    raise AssertionError("group %s did not catch up within %d s (lag %s)" % (group, timeout, lag))


def start(args, log_path):
    """Starts `shopstream ARGS...` in the background, output to log_path."""
    logf = open(log_path, "a")
    return subprocess.Popen([BIN] + list(args), stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)


def stop(proc, sig=None, timeout=30):
    """Stops a background process by PID (SIGTERM unless sig), then waits."""
    import signal
    if proc.poll() is None:
        proc.send_signal(sig or signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
