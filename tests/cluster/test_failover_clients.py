#!/usr/bin/python3
"""Real clients and shopstream's processors keep working across leader
changes, without being restarted (issue 10).

Three brokers on 127.0.0.1 (free ports) form one cluster.  While kcat,
kafka-python and confluent-kafka produce (acks=all) and consume (each in a
consumer group), and the simulator feeds the order processor, the test
kills -9 the leader of a partition and restarts it, then stops the active
controller and restarts it.  Afterwards:
  - every record a producer saw acknowledged is read back by a fresh reader
    at the offset the acknowledgement named (kcat: every line it was given);
  - every consumer read records produced after the last fault;
  - the order processor is still running and wrote shop.order-state after
    the last fault.
Prints "ok ..." lines; exits 1 on the first failure."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import kafka

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
TOPIC = "failover"


_given = set()


def free_port():
    """A free port not handed out before by this process (the kernel may
    offer a just-closed port again)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _given:
            _given.add(p)
            return p


LOGDIR = [None]
PROCS = []  # every process started, killed by fail() (which skips the finally blocks)


def fail(msg):
    print("FAIL " + msg, flush=True)
    for p in PROCS:
        if p.poll() is None:
            p.kill()
    if LOGDIR[0]:
        for name in sorted(os.listdir(LOGDIR[0])):
            if name.endswith(".log"):
                with open(os.path.join(LOGDIR[0], name), errors="replace") as f:
                    lines = [l for l in f.read().splitlines() if not l.startswith("%")]
                print("---- %s (last 15 lines)" % name)
                print("\n".join(lines[-15:]), flush=True)
    sys.stdout.flush()
    os._exit(1)  # client threads may hang on a dead cluster


class Cluster:
    def __init__(self, n, tmp, voters=None):
        """n brokers, node ids 1..n; voters (default all) form the metadata
        quorum, the others join it as non-voting members."""
        self.n, self.tmp = n, tmp
        self.voters = voters or list(range(1, n + 1))
        self.ports = [free_port() for _ in range(n)]
        self.raft = [free_port() for _ in range(n)]
        self.procs = [None] * n
        self.boot = ",".join("127.0.0.1:%d" % p for p in self.ports)

    def start(self, i):
        voters = ",".join("%d@127.0.0.1:%d" % (k, self.raft[k - 1]) for k in self.voters)
        log = open(os.path.join(self.tmp, "broker%d.log" % (i + 1)), "a")
        join = [] if i + 1 in self.voters else [
            "--set", "controller.quorum.bootstrap.servers=" +
            ",".join("127.0.0.1:%d" % self.ports[k - 1] for k in self.voters)]
        verbose = ["--verbose"] if os.environ.get("SHOPSTREAM_BROKER_VERBOSE") else []
        self.procs[i] = subprocess.Popen(
            [BIN, "broker", "--data-dir", os.path.join(self.tmp, "d%d" % (i + 1))] + verbose + join + [
             "--set", "node.id=%d" % (i + 1),
             "--set", "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (self.ports[i], self.raft[i]),
             "--set", "controller.quorum.voters=" + voters,
             "--set", "broker.session.timeout.ms=3000", "--set", "broker.heartbeat.interval.ms=500",
             "--set", "replica.lag.time.max.ms=3000", "--set", "default.replication.factor=3",
             "--set", "min.insync.replicas=2", "--set", "offsets.topic.replication.factor=3",
             "--set", "offsets.topic.num.partitions=6"],
            stdout=log, stderr=log)
        PROCS.append(self.procs[i])

    def metadata(self):
        a = AdminClient({"bootstrap.servers": self.boot})
        return a.list_topics(timeout=5)

    def wait_ready(self, topics=(), timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                md = self.metadata()
                if len(md.brokers) == self.n and md.controller_id > 0 and all(
                        t in md.topics and all(p.leader >= 0 and len(p.isrs) == self.n
                                               for p in md.topics[t].partitions.values()) for t in topics):
                    return md
            except Exception:
                pass
            time.sleep(0.2)
        fail("the cluster did not get ready (%d brokers, topics %s)" % (self.n, list(topics)))

    def stop_all(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


class Seq:
    """Values 'tag-N' handed out in order; acks recorded."""

    def __init__(self, tag):
        self.tag, self.n, self.acked, self.lock = tag, 0, [], threading.Lock()

    def next(self):
        with self.lock:
            self.n += 1
            return "%s-%d" % (self.tag, self.n)


def confluent_producer(boot, seq, stop):
    p = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})

    def cb(err, msg):
        if err is None:
            seq.acked.append((msg.partition(), msg.offset(), msg.value().decode()))
    while not stop.is_set():
        p.produce(TOPIC, value=seq.next().encode(), on_delivery=cb)
        p.poll(0.005)
    p.flush(60)


def kafka_python_producer(boot, seq, stop):
    p = kafka.KafkaProducer(bootstrap_servers=boot.split(","), acks="all", retries=50,
                            max_in_flight_requests_per_connection=1, retry_backoff_ms=200)
    while not stop.is_set():
        v = seq.next()
        fut = p.send(TOPIC, value=v.encode())
        fut.add_callback(lambda md, v=v: seq.acked.append((md.partition, md.offset, v)))
        time.sleep(0.005)
    p.flush(60)
    p.close(10)


def confluent_consumer(boot, seen, stop):
    c = Consumer({"bootstrap.servers": boot, "group.id": "failover-confluent",
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    c.subscribe([TOPIC])
    while not stop.is_set():
        m = c.poll(0.2)
        if m is not None and not m.error():
            seen.append((time.time(), m.value().decode()))
    c.close()


def kafka_python_consumer(boot, seen, stop):
    c = kafka.KafkaConsumer(TOPIC, bootstrap_servers=boot.split(","), group_id="failover-kafka-python",
                            auto_offset_reset="earliest", session_timeout_ms=10000,
                            request_timeout_ms=30000)
    while not stop.is_set():
        for recs in c.poll(200).values():
            for r in recs:
                seen.append((time.time(), r.value.decode()))
    c.close()


def read_all(boot):
    """A fresh reader: (partition, offset) -> value over the whole topic."""
    c = Consumer({"bootstrap.servers": boot, "group.id": "failover-final", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    md = c.list_topics(TOPIC, timeout=10)
    parts = list(md.topics[TOPIC].partitions)
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        ends[p] = hi
    c.assign([TopicPartition(TOPIC, p, 0) for p in parts])
    got = {}
    deadline = time.time() + 60
    while time.time() < deadline and any(sum(1 for (q, _) in got if q == p) < ends[p] for p in parts):
        m = c.poll(0.5)
        if m is not None and not m.error():
            got[(m.partition(), m.offset())] = m.value().decode()
    c.close()
    return got


def leader_of(cluster, partition):
    md = cluster.metadata()
    return md.topics[TOPIC].partitions[partition].leader, md.controller_id


def main():
    tmp = tempfile.mkdtemp(prefix="shopstream-failover.")
    LOGDIR[0] = tmp
    cl = Cluster(3, tmp)
    procs = []
    try:
        for i in range(3):
            cl.start(i)
        cl.wait_ready()
        a = AdminClient({"bootstrap.servers": cl.boot})
        for f in a.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=3)]).values():
            f.result(15)
        cl.wait_ready([TOPIC])
        print("ok 3 brokers, topic with 3 replicas per partition", flush=True)

        stop_prod, stop_cons = threading.Event(), threading.Event()
        seqs = {"confluent": Seq("c"), "kafka-python": Seq("k")}
        seen = {"confluent": [], "kafka-python": [], "kcat": []}
        threads = [threading.Thread(daemon=True, target=confluent_producer, args=(cl.boot, seqs["confluent"], stop_prod)),
                   threading.Thread(daemon=True, target=kafka_python_producer, args=(cl.boot, seqs["kafka-python"], stop_prod)),
                   threading.Thread(daemon=True, target=confluent_consumer, args=(cl.boot, seen["confluent"], stop_cons)),
                   threading.Thread(daemon=True, target=kafka_python_consumer, args=(cl.boot, seen["kafka-python"], stop_cons))]
        for t in threads:
            t.start()
        # kcat: a producer fed line by line, a group consumer.  -E: kcat
        # exits on any error librdkafka reports unless told not to, also on
        # transient ones (a connection to the killed broker failing)
        kcat_p = subprocess.Popen(["kcat", "-E", "-P", "-b", cl.boot, "-t", TOPIC, "-X", "acks=all",
                                   "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000"],
                                  stdin=subprocess.PIPE, stderr=open(os.path.join(tmp, "kcat-producer.log"), "w"),
                                  text=True)
        kcat_c = subprocess.Popen(["kcat", "-E", "-b", cl.boot, "-G", "failover-kcat", TOPIC,
                                   "-X", "auto.offset.reset=earliest", "-u"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs += [kcat_p, kcat_c]

        def read_kcat():
            for line in kcat_c.stdout:
                seen["kcat"].append((time.time(), line.strip()))
        threading.Thread(daemon=True, target=read_kcat).start()
        kcat_n = [0]

        kcat_died = [False]

        def feed_kcat():
            while not stop_prod.is_set():
                try:
                    kcat_p.stdin.write("kc-%d\n" % (kcat_n[0] + 1))
                    kcat_p.stdin.flush()
                except (BrokenPipeError, ValueError):
                    kcat_died[0] = True  # judged below, with its log
                    return
                kcat_n[0] += 1
                time.sleep(0.01)
        feeder = threading.Thread(daemon=True, target=feed_kcat)
        feeder.start()
        # the processors: simulated shop traffic into the order processor
        sim = subprocess.Popen([BIN, "simulate", "--bootstrap", cl.boot, "--rate", "200", "--duration", "600",
                                "--time-scale", "3600", "--partitions", "3"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "simulate.log"), "w"))
        cl.wait_ready(["shop.orders", "shop.aftersales"])  # the simulator creates them
        proc = subprocess.Popen([BIN, "process", "orders", "--bootstrap", cl.boot, "--partitions", "3"],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "process.log"), "w"))
        procs += [sim, proc]
        PROCS.extend(procs)
        time.sleep(6)

        # fault 1: kill -9 the leader of partition 0, restart it
        leader, ctl = leader_of(cl, 0)
        cl.procs[leader - 1].kill()
        print("ok killed broker %d (leader of partition 0)" % leader, flush=True)
        # fenced after broker.session.timeout.ms (3 s); when it was also the
        # controller, a new controller is elected first and gives every
        # broker a full session
        deadline = time.time() + 15
        new_leader = leader
        while time.time() < deadline and new_leader in (leader, -1):
            time.sleep(0.5)
            new_leader, _ = leader_of(cl, 0)
        if new_leader in (leader, -1):
            fail("partition 0 has no new leader 15 s after its leader died (leader %d)" % new_leader)
        print("ok partition 0 moved to broker %d" % new_leader, flush=True)
        cl.start(leader - 1)
        time.sleep(5)
        # fault 2: stop the active controller, restart it
        _, ctl = leader_of(cl, 0)
        cl.procs[ctl - 1].send_signal(signal.SIGTERM)
        cl.procs[ctl - 1].wait(20)
        print("ok stopped the active controller, broker %d" % ctl, flush=True)
        deadline = time.time() + 10
        ctl2 = ctl
        while time.time() < deadline and ctl2 in (ctl, -1):
            time.sleep(0.5)
            _, ctl2 = leader_of(cl, 0)
        if ctl2 in (ctl, -1):
            fail("no new controller 10 s after the controller stopped")
        time.sleep(2)
        cl.start(ctl - 1)
        cl.wait_ready([TOPIC], timeout=30)
        healed = time.time()
        marks = {k: s.n for k, s in seqs.items()}
        kcat_mark = kcat_n[0]
        ostate_before = end_offsets(cl.boot, "shop.order-state")
        print("ok cluster healed, new controller %d" % ctl2, flush=True)
        time.sleep(12)

        stop_prod.set()
        feeder.join()
        if kcat_died[0]:
            fail("kcat -P exited during the faults (exit %s)" % kcat_p.poll())
        kcat_p.stdin.close()
        if kcat_p.wait(90) != 0:
            fail("kcat -P exited %d (a delivery failed)" % kcat_p.returncode)
        for t in threads[:2]:
            t.join(120)
        time.sleep(3)
        stop_cons.set()
        for t in threads[2:]:
            t.join(60)
        kcat_c.send_signal(signal.SIGTERM)

        got = read_all(cl.boot)
        values = set(got.values())
        where = {}
        for off, v in got.items():
            where.setdefault(v, []).append(off)
        dups = {v: o for v, o in where.items() if len(o) > 1}
        # kafka-python 2.0.2 has no idempotent producer: a retry after a
        # leader change may write a record twice (at-least-once, as with
        # Kafka); the idempotent producers (confluent-kafka, kcat) must not
        bad = {v: o for v, o in dups.items() if not v.startswith("k-")}
        if bad:
            fail("idempotently produced values at two offsets: %s" % list(bad.items())[:5])
        if dups:
            print("ok %d kafka-python records written twice by its (non-idempotent) retries" % len(dups),
                  flush=True)
        for name, s in seqs.items():
            if not s.acked:
                fail("%s: nothing acknowledged" % name)
            wrong = [x for x in s.acked if got.get((x[0], x[1])) != x[2]]
            if wrong:
                fail("%s: %d acknowledged records not at their offsets, e.g. %s" % (name, len(wrong), wrong[:3]))
            print("ok %s: %d acknowledged records, each at its offset" % (name, len(s.acked)), flush=True)
        kc = sum(1 for v in values if v.startswith("kc-"))
        if kc < kcat_n[0]:
            fail("kcat: %d lines given, %d read back" % (kcat_n[0], kc))
        print("ok kcat: %d lines, all read back" % kcat_n[0], flush=True)
        for name, recs in seen.items():
            late = [v for (t, v) in recs if t > healed]
            if name == "kcat":
                after = [v for v in late if v.startswith("kc-") and int(v[3:]) > kcat_mark]
            else:
                after = [v for v in late if v.split("-")[0] in ("c", "k") and int(v.split("-")[1]) >
                         marks["confluent" if v[0] == "c" else "kafka-python"]]
            if not after:
                fail("%s consumer read nothing produced after the faults (%d records in all)" % (name, len(recs)))
            print("ok %s consumer: %d records, %d produced after the faults" % (name, len(recs), len(after)),
                  flush=True)
        if proc.poll() is not None:
            fail("the order processor exited (%s)" % proc.returncode)
        ostate_after = end_offsets(cl.boot, "shop.order-state")
        if sum(ostate_after.values()) <= sum(ostate_before.values()):
            fail("the order processor wrote nothing after the faults (%s -> %s)" % (ostate_before, ostate_after))
        print("ok order processor: shop.order-state grew from %d to %d after the faults" %
              (sum(ostate_before.values()), sum(ostate_after.values())), flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        cl.stop_all()
        subprocess.run(["rm", "-rf", tmp])


def end_offsets(boot, topic):
    """Partition -> end offset; retried while the cluster settles."""
    deadline = time.time() + 30
    while True:
        c = Consumer({"bootstrap.servers": boot, "group.id": "failover-offsets"})
        try:
            md = c.list_topics(topic, timeout=10)
            res = {}
            for p in md.topics[topic].partitions:
                res[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            if res:
                return res
        except Exception as e:
            if time.time() > deadline:
                fail("cannot read the end offsets of %s: %s" % (topic, e))
        finally:
            c.close()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
