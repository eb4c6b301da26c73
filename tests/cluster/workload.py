"""The fault test's clients (confluent-kafka, in threads of the test process,
in the root namespace): idempotent acks=all producers that record every
acknowledged (partition, offset, value), group consumers that record every
record they read with the time, a poller that watches partition leaders
through Metadata, and the final reader (assign() from the beginning, no
group)."""
import collections
import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition


def client_logger(path):
    lg = logging.getLogger("rdkafka:" + path)
    if not lg.handlers:
        h = logging.FileHandler(path)
        h.setFormatter(logging.Formatter("%(created).3f %(threadName)s %(message)s"))
        lg.addHandler(h)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    return lg


class ProducerThread(threading.Thread):
    """Produces "p<idx>-<seq>" at `rate` records/s until stopped; keys
    spread the records over the partitions.  A producer that hits a fatal
    error (e.g. its idempotence state is lost) is replaced by a new one; the
    sequence numbers go on, so values stay unique."""

    def __init__(self, idx, bootstrap, topic, rate, logger):
        super().__init__(name="producer-%d" % idx, daemon=True)
        self.idx = idx
        self.topic = topic
        self.rate = rate
        self.logger = logger
        self.conf = {"bootstrap.servers": bootstrap, "client.id": "faults-p%d" % idx,
                     "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                     "message.timeout.ms": 60000, "request.timeout.ms": 10000,
                     "retry.backoff.ms": 100, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 1000,
                     "topic.metadata.refresh.interval.ms": 5000,
                     "logger": logger, "error_cb": self._on_error}
        self.acks = []          # [idx, partition, offset, value, t_ack]
        self.failed = collections.Counter()   # delivery error -> count (indeterminate writes)
        self.errors = collections.Counter()   # error_cb errors
        self.sent = 0
        self.restarts = 0
        self.in_flight_at_end = 0
        self.fatal = None
        self.stop = threading.Event()
        self.exc = None

    def _on_error(self, err):
        self.errors[err.str()] += 1
        if err.fatal():
            self.fatal = err

    def _on_delivery(self, err, msg):
        if err is None:
            self.acks.append([self.idx, msg.partition(), msg.offset(), msg.value().decode(), time.time()])
        else:
            self.failed[err.str()] += 1

    def _drain(self, p, timeout):
        deadline = time.time() + timeout
        left = len(p)
        while left and time.time() < deadline:
            try:
                left = p.flush(min(1.0, max(0.01, deadline - time.time())))
            except KafkaException as e:
                self._on_exception(e)
                if self.fatal is not None:
                    return len(p)
        return left

    def _on_exception(self, e):
        err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
        self.errors[err.str() if err else str(e)] += 1
        if err is not None and err.fatal():
            self.fatal = err

    def run(self):
        try:
            self._run()
        except Exception as e:   # reported by the test
            self.exc = e

    def _run(self):
        p = Producer(self.conf)
        t0 = time.time()
        seq = 0
        while not self.stop.is_set():
            if self.fatal is not None:
                self.logger.warning("producer %d: fatal error %s: replacing the producer", self.idx, self.fatal)
                try:
                    p.purge()
                    p.poll(0)
                except KafkaException:
                    pass
                p = Producer(self.conf)
                self.fatal = None
                self.restarts += 1
            due = min(int((time.time() - t0) * self.rate) - seq, 500)
            try:
                for _ in range(max(due, 0)):
                    v = "p%d-%d" % (self.idx, seq)
                    try:
                        p.produce(self.topic, key=b"k%d" % (seq % 61), value=v.encode(),
                                  on_delivery=self._on_delivery)
                    except BufferError:
                        break
                    seq += 1
                self.sent = seq
                p.poll(0.01)
            except KafkaException as e:   # a fatal error raised by produce() or poll()
                self._on_exception(e)
                time.sleep(0.01)
        self.in_flight_at_end = self._drain(p, 90)


class ConsumerThread(threading.Thread):
    """A member of `group` reading `topic`; records
    [partition, offset, value, t_read, t_produced] for every record."""

    def __init__(self, name, bootstrap, topic, group, logger):
        super().__init__(name=name, daemon=True)
        self.topic = topic
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": "faults-" + name,
                     "auto.offset.reset": "earliest", "enable.auto.commit": True,
                     # offsets stored by hand, for the records the thread
                     # has recorded: librdkafka 2.0's batch consume stores
                     # the offsets of records it then drops at a rebalance
                     # (fixed in 2.1, librdkafka PR 4208), and auto-commit
                     # would skip them
                     "enable.auto.offset.store": False,
                     "auto.commit.interval.ms": 1000, "session.timeout.ms": 10000,
                     "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 300000,
                     "fetch.wait.max.ms": 100, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 1000,
                     "topic.metadata.refresh.interval.ms": 5000,
                     "logger": logger, "error_cb": self._on_error}
        self.reads = []
        self.maxoff = {}       # partition -> highest offset read
        self.errors = collections.Counter()
        self.events = []       # (t, "assign"/"revoke", [partitions])
        self.stop = threading.Event()
        self.exc = None

    def _on_error(self, err):
        self.errors[err.str()] += 1

    def run(self):
        try:
            c = Consumer(self.conf)
            c.subscribe([self.topic],
                        on_assign=lambda c_, ps: self.events.append((time.time(), "assign", [x.partition for x in ps])),
                        on_revoke=lambda c_, ps: self.events.append((time.time(), "revoke", [x.partition for x in ps])))
            while not self.stop.is_set():
                for m in c.consume(500, 0.2):
                    if m.error():
                        self.errors[m.error().str()] += 1
                        continue
                    now = time.time()
                    ts = m.timestamp()[1]
                    p, off = m.partition(), m.offset()
                    self.reads.append([p, off, m.value().decode(), now, ts / 1000.0 if ts > 0 else None])
                    if off > self.maxoff.get(p, -1):
                        self.maxoff[p] = off
                    try:
                        c.store_offsets(message=m)
                    except KafkaException:
                        self.errors["store_offsets: partition no longer assigned"] += 1
            c.close()
        except Exception as e:
            self.exc = e


class LeaderPoller(threading.Thread):
    """Asks every broker for Metadata each `interval` s; counts how often a
    partition's (majority) leader changes."""

    def __init__(self, cluster, topic, interval=1.0):
        super().__init__(name="leader-poller", daemon=True)
        self.cluster = cluster
        self.topic = topic
        self.interval = interval
        self.current = {}
        self.changes = 0
        self.timeline = []     # (t, {partition: leader}) at each change
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.interval):
            try:
                leaders = self.cluster.leaders(self.topic)
            except Exception:
                continue
            changed = False
            for p, l in leaders.items():
                if p in self.current and self.current[p] != l:
                    self.changes += 1
                    changed = True
                if self.current.get(p) != l:
                    changed = True
                self.current[p] = l
            if changed:
                self.timeline.append((time.time(), dict(leaders)))


def end_offsets(bootstrap, topic, partitions, timeout=60):
    """{partition: high watermark}, retried until every partition answers."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-watermarks", "enable.auto.commit": False})
    out = {}
    deadline = time.time() + timeout
    try:
        while len(out) < partitions and time.time() < deadline:
            for p in range(partitions):
                if p in out:
                    continue
                try:
                    out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1]
                except Exception:
                    time.sleep(0.2)
    finally:
        c.close()
    if len(out) < partitions:
        raise RuntimeError("no end offsets for partitions %s after %d s" % (
            sorted(set(range(partitions)) - set(out)), timeout))
    return out


def final_read(bootstrap, topic, ends, logger, timeout=120):
    """Reads every partition from the beginning to ends[p] with assign()
    (no group).  Returns (records, complete)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-final-%d" % time.time_ns(),
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest", "client.id": "faults-final", "logger": logger})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    recs = []
    done = {p for p, e in ends.items() if e == 0}
    deadline = time.time() + timeout
    while len(done) < len(ends) and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= ends.get(m.partition(), 0):
                        done.add(m.partition())
                continue
            ts = m.timestamp()[1]
            recs.append([m.partition(), m.offset(), m.value().decode(), time.time(),
                         ts / 1000.0 if ts > 0 else None])
            if m.offset() + 1 >= ends.get(m.partition(), 0):
                done.add(m.partition())
    c.close()
    return recs, len(done) == len(ends)
