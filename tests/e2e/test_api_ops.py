"""Issue 8: the operations console of `shopstream serve` (src/serve/ops.c)
against a real broker.

A broker on a free port with its own data dir, and `shopstream serve` on
another; the test writes topics, records (keys, values, headers,
timestamps, bytes that are not UTF-8), consumer groups and committed offsets
with confluent-kafka, and checks that every console endpoint of
spec/api.md ("Operations console") reports exactly what was written:
brokers, topics and partitions with their watermarks, sizes and configs,
the message browser (last N, by offset, by time, filtered by q, bounded by
scan), groups with members, assignments, committed offsets and lag.  Bad
parameters and unknown names get a 400/404 JSON error and never a crash;
concurrent requests all succeed; a stopped cluster gives 502/504 in about
the client timeout while serve keeps answering.

Ends with "N passed, N failed" like the other suites."""
import json
import os
import shutil
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "shop"))
from shoplib import Broker, free_port, start, stop, workdir  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# serve's client timeout for console queries (its default is 5000 ms)
TIMEOUT_MS = 3000

W = {}  # the world: work dir, broker, serve process, base URL


def get(path):
    """GET path from serve; returns (status, parsed JSON body).  Every
    console answer, errors included, must be JSON."""
    url = W["base"] + path
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    if not ctype.startswith("application/json"):
        raise AssertionError("%s: %d answered %r, not JSON: %r" % (path, status, ctype, body[:200]))
    return status, json.loads(body)


def ok(path):
    status, body = get(path)
    if status != 200:
        raise AssertionError("%s: %d %s" % (path, status, body))
    return body


def admin():
    # one client for the run: a future's result needs its client alive
    if "admin" not in W:
        W["admin"] = AdminClient({"bootstrap.servers": W["bootstrap"], "log_level": 0})
    return W["admin"]


def create_topic(name, partitions, config=None):
    fs = admin().create_topics([NewTopic(name, partitions, 1, config=config or {})])
    fs[name].result(15)
    # wait until the metadata shows it with leaders
    deadline = time.time() + 15
    while time.time() < deadline:
        md = admin().list_topics(timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise AssertionError("topic %s did not appear" % name)


def produce(topic, records):
    """records: dicts with partition, key, value and optionally headers,
    timestamp.  Returns the (partition, offset) of each, in order."""
    p = Producer({"bootstrap.servers": W["bootstrap"], "linger.ms": 0})
    out = [None] * len(records)

    def dr(i):
        def cb(err, msg):
            if err is not None:
                raise AssertionError("produce failed: %s" % err)
            out[i] = (msg.partition(), msg.offset())
        return cb
    for i, r in enumerate(records):
        kw = {}
        if "headers" in r:
            kw["headers"] = r["headers"]
        if "timestamp" in r:
            kw["timestamp"] = r["timestamp"]
        p.produce(topic, key=r.get("key"), value=r.get("value"), partition=r["partition"],
                  on_delivery=dr(i), **kw)
        # one record per batch, so that offsets_for_times finds each exactly
        p.flush(15)
    assert None not in out
    return out


def watermarks(topic, partition):
    c = Consumer({"bootstrap.servers": W["bootstrap"], "group.id": "ops-test-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def setUpModule():
    # unittest skips tearDownModule when this fails: stop what started
    try:
        start_world()
    except BaseException:
        tearDownModule()
        raise


def start_world():
    W["work"] = workdir("api-ops")
    b = Broker(W["work"], name="ops", extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    W["broker"] = b
    W["bootstrap"] = b.bootstrap
    hport = free_port()
    W["base"] = "http://127.0.0.1:%d" % hport
    W["serve_log"] = os.path.join(W["work"], "serve.log")
    W["serve"] = start(["serve", "--bootstrap", b.bootstrap, "--http", "127.0.0.1:%d" % hport,
                        "--timeout-ms", str(TIMEOUT_MS)], W["serve_log"])
    deadline = time.time() + 30
    while time.time() < deadline:
        if W["serve"].poll() is not None:
            raise AssertionError("serve exited with %s" % W["serve"].returncode)
        try:
            if get("/api/cluster")[0] == 200:
                break
        except (OSError, AssertionError):
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("serve did not answer /api/cluster within 30 s")

    # The topics and records most tests read.
    create_topic("ops.sizes", 3)
    create_topic("ops.compact", 1, {"cleanup.policy": "compact", "retention.ms": "3600000"})
    create_topic("ops.msgs", 2)
    W["t0"] = int(time.time() * 1000) - 3600 * 1000
    recs = []
    for i in range(30):
        recs.append({"partition": 0, "key": b"key-%d" % i,
                     "value": b"value-%d colour=%s" % (i, b"red" if i % 3 == 0 else b"blue"),
                     "timestamp": W["t0"] + i * 1000,
                     "headers": [("i", b"%d" % i), ("empty", None)]})
    # partition 1: bytes that are not UTF-8, null key and value
    recs.append({"partition": 1, "key": b"\xff\xfek", "value": "café".encode() + b"\x80\x00\"\\",
                 "headers": [("h\xe9", b"\xc3\xa9\xff")]})
    recs.append({"partition": 1, "key": None, "value": None})
    produce("ops.msgs", recs)


def tearDownModule():
    if "serve" in W:
        stop(W["serve"])
    if "broker" in W:
        W["broker"].stop()


def serve_alive(tc):
    tc.assertIsNone(W["serve"].poll(), "serve exited")


class Cluster(unittest.TestCase):
    def test_cluster(self):
        c = ok("/api/cluster")
        md = admin().list_topics(timeout=10)
        self.assertEqual(c["cluster_id"], md.cluster_id)
        self.assertEqual(c["controller_id"], md.controller_id)
        want = sorted((b.id, b.host, b.port) for b in md.brokers.values())
        self.assertEqual([(b["id"], b["host"], b["port"]) for b in c["brokers"]], want)
        self.assertEqual(c["brokers"][0]["port"], W["broker"].port)
        self.assertEqual(set(c), {"cluster_id", "controller_id", "brokers"})


class Topics(unittest.TestCase):
    def test_list_sorted_with_counts(self):
        t = ok("/api/topics")["topics"]
        names = [x["name"] for x in t]
        self.assertEqual(names, sorted(names))
        md = admin().list_topics(timeout=10)
        self.assertEqual(set(names), set(md.topics))
        by = {x["name"]: x for x in t}
        m = by["ops.msgs"]
        self.assertEqual(set(m), {"name", "partitions", "replication_factor", "internal",
                                  "messages", "size_bytes"})
        self.assertEqual((m["partitions"], m["replication_factor"], m["internal"]), (2, 1, False))
        self.assertEqual(m["messages"], 32)
        self.assertGreater(m["size_bytes"], 0)
        self.assertEqual(by["ops.compact"]["messages"], 0)
        for x in t:
            self.assertEqual(x["internal"], x["name"].startswith("__"), x)

    def test_sizes_grow(self):
        before = {x["name"]: x for x in ok("/api/topics")["topics"]}["ops.sizes"]
        self.assertEqual(before["messages"], 0)
        produce("ops.sizes", [{"partition": p, "key": b"k", "value": b"x" * 1000} for p in (0, 1, 2, 2)])
        time.sleep(2.3)  # sizes are cached for 2 s
        mid = {x["name"]: x for x in ok("/api/topics")["topics"]}["ops.sizes"]
        self.assertEqual(mid["messages"], 4)
        self.assertGreater(mid["size_bytes"], 4000)
        detail = ok("/api/topics/ops.sizes")
        sizes = [p["size_bytes"] for p in detail["partitions"]]
        self.assertTrue(sizes[2] > sizes[0] > 0 and sizes[1] > 0, sizes)
        self.assertEqual(sum(sizes), mid["size_bytes"])
        produce("ops.sizes", [{"partition": 0, "key": b"k", "value": b"y" * 5000}])
        time.sleep(2.3)
        after = {x["name"]: x for x in ok("/api/topics")["topics"]}["ops.sizes"]
        self.assertEqual(after["messages"], 5)
        self.assertGreater(after["size_bytes"], mid["size_bytes"] + 5000)

    def test_detail(self):
        d = ok("/api/topics/ops.msgs")
        self.assertEqual(set(d), {"name", "internal", "partitions", "configs"})
        self.assertEqual((d["name"], d["internal"]), ("ops.msgs", False))
        bid = ok("/api/cluster")["brokers"][0]["id"]
        self.assertEqual([p["partition"] for p in d["partitions"]], [0, 1])
        for p in d["partitions"]:
            self.assertEqual(set(p), {"partition", "leader", "replicas", "isr", "low", "high",
                                      "size_bytes"})
            self.assertEqual((p["leader"], p["replicas"], p["isr"]), (bid, [bid], [bid]))
            self.assertEqual((p["low"], p["high"]), watermarks("ops.msgs", p["partition"]))
            self.assertGreater(p["size_bytes"], 0)
        self.assertEqual([p["high"] for p in d["partitions"]], [30, 2])
        names = [c["name"] for c in d["configs"]]
        self.assertEqual(names, sorted(names))
        for c in d["configs"]:
            self.assertEqual(set(c), {"name", "value", "default", "sensitive"})
            self.assertIsInstance(c["default"], bool)
            self.assertIsInstance(c["sensitive"], bool)

    def test_detail_configs(self):
        d = ok("/api/topics/ops.compact")
        cfg = {c["name"]: c for c in d["configs"]}
        self.assertEqual((cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["default"]),
                         ("compact", False))
        self.assertEqual((cfg["retention.ms"]["value"], cfg["retention.ms"]["default"]),
                         ("3600000", False))
        self.assertTrue(cfg["segment.bytes"]["default"])
        self.assertEqual(d["partitions"][0]["low"], 0)
        self.assertEqual(d["partitions"][0]["high"], 0)

    def test_unknown_topic(self):
        for path in ("/api/topics/ops.nope", "/api/topics/ops.nope/messages?partition=0"):
            st, body = get(path)
            self.assertEqual(st, 404, body)
            self.assertEqual(body["status"], 404)
            self.assertIn("ops.nope", body["error"])
        # and asking did not create it
        self.assertNotIn("ops.nope", admin().list_topics(timeout=10).topics)


class Messages(unittest.TestCase):
    P = "/api/topics/ops.msgs/messages"

    def check_record(self, m, i):
        self.assertEqual(set(m), {"partition", "offset", "timestamp", "key", "value", "headers"})
        self.assertEqual((m["partition"], m["offset"]), (0, i))
        self.assertEqual(m["key"], "key-%d" % i)
        self.assertEqual(m["value"], "value-%d colour=%s" % (i, "red" if i % 3 == 0 else "blue"))
        self.assertEqual(m["timestamp"], W["t0"] + i * 1000)
        self.assertEqual(m["headers"], [{"key": "i", "value": str(i)}, {"key": "empty", "value": None}])

    def test_last_n(self):
        r = ok(q(self.P, partition=0, limit=5))
        self.assertEqual(set(r), {"topic", "partition", "messages", "next_offset", "scanned", "high"})
        self.assertEqual((r["topic"], r["partition"], r["high"], r["next_offset"], r["scanned"]),
                         ("ops.msgs", 0, 30, 30, 5))
        self.assertEqual([m["offset"] for m in r["messages"]], [25, 26, 27, 28, 29])
        for m in r["messages"]:
            self.check_record(m, m["offset"])

    def test_default_limit_takes_all(self):
        r = ok(q(self.P, partition=0))
        self.assertEqual([m["offset"] for m in r["messages"]], list(range(30)))
        for m in r["messages"]:
            self.check_record(m, m["offset"])

    def test_by_offset(self):
        r = ok(q(self.P, partition=0, offset=10, limit=3))
        self.assertEqual([m["offset"] for m in r["messages"]], [10, 11, 12])
        self.assertEqual((r["next_offset"], r["scanned"]), (13, 3))
        # going on from next_offset
        r2 = ok(q(self.P, partition=0, offset=r["next_offset"], limit=2))
        self.assertEqual([m["offset"] for m in r2["messages"]], [13, 14])
        # past the end: nothing, and next_offset stays at the end
        r3 = ok(q(self.P, partition=0, offset=1000))
        self.assertEqual((r3["messages"], r3["next_offset"], r3["scanned"]), ([], 30, 0))

    def test_by_time(self):
        r = ok(q(self.P, partition=0, time=W["t0"] + 15500, limit=2))
        self.assertEqual([m["offset"] for m in r["messages"]], [16, 17])
        r = ok(q(self.P, partition=0, time=W["t0"] + 7000, limit=1))
        self.assertEqual([m["offset"] for m in r["messages"]], [7])
        r = ok(q(self.P, partition=0, time=0, limit=1))
        self.assertEqual([m["offset"] for m in r["messages"]], [0])
        r = ok(q(self.P, partition=0, time=W["t0"] + 10 ** 9))
        self.assertEqual((r["messages"], r["next_offset"]), ([], 30))

    def test_filter(self):
        r = ok(q(self.P, partition=0, offset=0, q="colour=red"))
        self.assertEqual([m["offset"] for m in r["messages"]], list(range(0, 30, 3)))
        self.assertEqual((r["scanned"], r["next_offset"]), (30, 30))
        # keys too, case-sensitive
        r = ok(q(self.P, partition=0, offset=0, q="key-2"))
        self.assertEqual([m["offset"] for m in r["messages"]], [2] + list(range(20, 30)))
        self.assertEqual(ok(q(self.P, partition=0, offset=0, q="KEY"))["messages"], [])
        # limit counts matches
        r = ok(q(self.P, partition=0, offset=0, q="colour=red", limit=2))
        self.assertEqual([m["offset"] for m in r["messages"]], [0, 3])
        self.assertEqual((r["scanned"], r["next_offset"]), (4, 4))
        # scan bounds the records examined
        r = ok(q(self.P, partition=0, offset=1, q="colour=red", scan=5))
        self.assertEqual([m["offset"] for m in r["messages"]], [3])
        self.assertEqual((r["scanned"], r["next_offset"]), (5, 6))

    def test_bytes_and_nulls(self):
        r = ok(q(self.P, partition=1))
        self.assertEqual(len(r["messages"]), 2)
        a, b = r["messages"]
        self.assertEqual(a["key"], b"\xff\xfek".decode("utf-8", "replace"))
        self.assertEqual(a["value"], ("café".encode() + b"\x80\x00\"\\").decode("utf-8", "replace"))
        self.assertEqual(a["headers"], [{"key": "h\xe9", "value": b"\xc3\xa9\xff".decode("utf-8", "replace")}])
        self.assertEqual((b["key"], b["value"], b["headers"]), (None, None, []))
        self.assertIsInstance(b["timestamp"], int)
        # q matches the bytes, UTF-8 included
        r = ok(q(self.P, partition=1, offset=0, q="café"))
        self.assertEqual([m["offset"] for m in r["messages"]], [0])

    def test_empty_partition(self):
        r = ok(q("/api/topics/ops.compact/messages", partition=0))
        self.assertEqual(r, {"topic": "ops.compact", "partition": 0, "messages": [], "next_offset": 0,
                             "scanned": 0, "high": 0})

    def test_bad_parameters(self):
        for params, want in (({}, 400), ({"partition": "x"}, 400), ({"partition": -1}, 400),
                             ({"partition": 2}, 400), ({"partition": 0, "limit": 0}, 400),
                             ({"partition": 0, "limit": 501}, 400), ({"partition": 0, "scan": 0}, 400),
                             ({"partition": 0, "scan": 100001}, 400),
                             ({"partition": 0, "offset": 1, "time": 1}, 400),
                             ({"partition": 0, "offset": "1x"}, 400)):
            st, body = get(q(self.P, **params))
            self.assertEqual((st, body.get("status")), (want, want), (params, body))
            self.assertIsInstance(body.get("error"), str)
        # the limits themselves are fine
        self.assertEqual(len(ok(q(self.P, partition=0, limit=500, scan=100000))["messages"]), 30)
        serve_alive(self)


class Groups(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        create_topic("ops.grp", 2)
        produce("ops.grp", [{"partition": i % 2, "key": b"k", "value": b"v%d" % i} for i in range(20)])
        c = Consumer({"bootstrap.servers": W["bootstrap"], "group.id": "ops-grp",
                      "client.id": "ops-client", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        c.subscribe(["ops.grp"])
        deadline = time.time() + 30
        while len(c.assignment()) < 2 and time.time() < deadline:
            c.poll(0.2)
        assert len(c.assignment()) == 2, c.assignment()
        c.commit(offsets=[TopicPartition("ops.grp", 0, 7), TopicPartition("ops.grp", 1, 10)],
                 asynchronous=False)
        cls.consumer = c
        # 5 more on partition 0: high 15, lag 8
        produce("ops.grp", [{"partition": 0, "key": b"k", "value": b"late"} for _ in range(5)])
        # a group that only commits offsets (assign(), no join)
        s = Consumer({"bootstrap.servers": W["bootstrap"], "group.id": "ops-simple",
                      "enable.auto.commit": False})
        s.commit(offsets=[TopicPartition("ops.grp", 1, 4)], asynchronous=False)
        s.close()

    @classmethod
    def tearDownClass(cls):
        if cls.consumer is not None:
            cls.consumer.close()

    def test_a_list(self):
        gs = ok("/api/groups")["groups"]
        ids = [g["group_id"] for g in gs]
        self.assertEqual(ids, sorted(ids))
        by = {g["group_id"]: g for g in gs}
        self.assertNotIn("shopstream-serve-browser", by)
        g = by["ops-grp"]
        self.assertEqual(g, {"group_id": "ops-grp", "state": "Stable", "protocol_type": "consumer",
                             "members": 1, "lag": 8})
        s = by["ops-simple"]
        self.assertEqual((s["protocol_type"], s["members"], s["lag"]), ("", 0, 6))

    def test_b_detail(self):
        self.consumer.poll(0.1)  # stay a live member
        d = ok("/api/groups/ops-grp")
        self.assertEqual(set(d), {"group_id", "state", "protocol_type", "protocol", "coordinator",
                                  "members", "offsets", "lag"})
        self.assertEqual((d["group_id"], d["state"], d["protocol_type"]), ("ops-grp", "Stable", "consumer"))
        self.assertIn(d["protocol"], ("range", "roundrobin", "cooperative-sticky"))
        self.assertEqual(d["coordinator"], ok("/api/cluster")["brokers"][0]["id"])
        self.assertEqual(len(d["members"]), 1)
        m = d["members"][0]
        self.assertEqual(m["client_id"], "ops-client")
        self.assertTrue(m["member_id"].startswith("ops-client-"), m)
        self.assertIn("127.0.0.1", m["host"])
        self.assertEqual(m["assignments"], [{"topic": "ops.grp", "partition": 0},
                                            {"topic": "ops.grp", "partition": 1}])
        self.assertEqual(d["offsets"], [
            {"topic": "ops.grp", "partition": 0, "committed": 7, "high": 15, "lag": 8},
            {"topic": "ops.grp", "partition": 1, "committed": 10, "high": 10, "lag": 0}])
        self.assertEqual(d["lag"], 8)
        # what the client itself sees as committed
        got = self.consumer.committed([TopicPartition("ops.grp", 0), TopicPartition("ops.grp", 1)], timeout=10)
        self.assertEqual([o["committed"] for o in d["offsets"]], [tp.offset for tp in got])

    def test_c_simple_group(self):
        d = ok("/api/groups/ops-simple")
        self.assertEqual((d["members"], d["protocol_type"]), ([], ""))
        self.assertEqual(d["offsets"], [{"topic": "ops.grp", "partition": 1, "committed": 4, "high": 10, "lag": 6}])
        self.assertEqual(d["lag"], 6)

    def test_d_after_member_leaves(self):
        Groups.consumer.close()
        Groups.consumer = None
        deadline = time.time() + 15
        while time.time() < deadline:
            d = ok("/api/groups/ops-grp")
            if d["state"] == "Empty":
                break
            time.sleep(0.2)
        self.assertEqual((d["state"], d["members"], d["lag"]), ("Empty", [], 8))
        g = {g["group_id"]: g for g in ok("/api/groups")["groups"]}["ops-grp"]
        self.assertEqual((g["state"], g["members"], g["lag"]), ("Empty", 0, 8))

    def test_unknown_group(self):
        for gid in ("ops-nope", "%C3%A9t%C3%A9"):
            st, body = get("/api/groups/" + gid)
            self.assertEqual((st, body["status"]), (404, 404), body)
            self.assertIn("does not exist", body["error"])
        self.assertNotIn("ops-nope", [g["group_id"] for g in ok("/api/groups")["groups"]])


class YConcurrency(unittest.TestCase):
    """After Groups (the class names run in order), which made ops-grp."""

    def test_parallel_requests(self):
        paths = ["/api/topics", "/api/groups", "/api/cluster", "/api/topics/ops.msgs",
                 q("/api/topics/ops.msgs/messages", partition=0, limit=3),
                 q("/api/topics/ops.msgs/messages", partition=1),
                 q("/api/topics/ops.msgs/messages", partition=0, offset=0, q="red"),
                 "/api/groups/ops-grp", "/api/topics/ops.nope"]
        errors = []

        def worker(k):
            for i in range(12):
                path = paths[(k + i) % len(paths)]
                try:
                    st, body = get(path)
                    want = 404 if "nope" in path else 200
                    if st != want:
                        errors.append((path, st, body))
                    elif path.endswith("limit=3") and [m["offset"] for m in body["messages"]] != [27, 28, 29]:
                        errors.append((path, body))
                except Exception as e:  # noqa: BLE001
                    errors.append((path, repr(e)))
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        serve_alive(self)


class ZClusterDown(unittest.TestCase):
    """Last (the class names run in order): the broker goes away."""

    def test_errors_while_down(self):
        W["broker"].stop()
        for path in ("/api/cluster", "/api/topics", "/api/topics/ops.msgs", "/api/groups",
                     "/api/groups/ops-grp", q("/api/topics/ops.msgs/messages", partition=0)):
            t = time.time()
            st, body = get(path)
            took = time.time() - t
            self.assertIn(st, (502, 504), (path, body))
            self.assertEqual(body["status"], st)
            self.assertLess(took, TIMEOUT_MS / 1000.0 * 2 + 2, path)
        serve_alive(self)
        # and it recovers when the broker is back: every endpoint answers
        # again within a few seconds (serve's clients back off at most 1 s)
        W["broker"].start()
        back = time.time()
        for path in ("/api/topics", "/api/groups", "/api/groups/ops-grp", "/api/cluster",
                     q("/api/topics/ops.msgs/messages", partition=0, limit=2)):
            while True:
                st, body = get(path)
                if st == 200 or time.time() - back > 20:
                    break
                time.sleep(0.3)
            self.assertEqual(st, 200, (path, body))
        self.assertLess(time.time() - back, 15)
        r = ok(q("/api/topics/ops.msgs/messages", partition=0, limit=2))
        self.assertEqual([m["offset"] for m in r["messages"]], [28, 29])
        self.assertEqual(ok("/api/groups/ops-grp")["lag"], 8)
        serve_alive(self)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    bad = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    if W.get("serve_log") and bad:
        try:
            with open(W["serve_log"]) as f:
                print("--- serve.log (tail)\n" + f.read()[-3000:])
        except OSError:
            pass
    print("%d passed, %d failed" % (max(0, res.testsRun - bad - len(res.skipped)), bad))
    if not bad and W.get("work"):
        shutil.rmtree(W["work"], ignore_errors=True)
    return 1 if bad or not res.wasSuccessful() else 0


if __name__ == "__main__":
    sys.exit(main())
