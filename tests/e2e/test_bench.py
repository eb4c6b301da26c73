#!/usr/bin/python3
"""test_bench.py: every `shopstream bench` mode with small counts, on private
brokers started by the bench itself (free ports, temporary data dirs): each
prints one line of JSON whose figures agree with what was asked (every record
delivered, read and measured, none lost), and bad options get exit code 2 and
one sentence.  Speed is not judged here (that is `make bench`).  The last
line is "N passed, N failed".

    /usr/bin/python3 tests/e2e/test_bench.py [-v] [TestName...]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))


def bench(*args, timeout=240):
    r = subprocess.run([BIN, "bench"] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    return r.returncode, (json.loads(lines[-1]) if lines else None), r.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    """A broker of our own for the --bootstrap cases, stopped by PID."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="shopstream-test-bench.")
        self.port = free_port()
        self.p = subprocess.Popen([BIN, "broker", "--listen", "127.0.0.1:%d" % self.port,
                                   "--data-dir", self.dir], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        end = time.time() + 15
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        self.addr = "127.0.0.1:%d" % self.port
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(20)
        subprocess.run(["rm", "-rf", self.dir])


class Produce(unittest.TestCase):
    def test_single_producer(self):
        rc, j, err = bench("produce", "--records", 30000, "--record-bytes", 200)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["bench"], j["records"], j["delivered"], j["failed"], j["record_bytes"]),
                         ("produce", 30000, 30000, 0, 200))
        self.assertGreater(j["records_per_sec"], 0)
        self.assertAlmostEqual(j["mb_per_sec"], j["records_per_sec"] * 200 / 1e6, delta=0.2)

    def test_durable_acks_all_compressed(self):
        rc, j, err = bench("produce", "--records", 20000, "--acks", "all", "--compression", "zstd",
                           "--set", "log.flush.interval.messages=1")
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["acks"], j["compression"], j["delivered"]), ("all", "zstd", 20000))

    def test_producers_and_consumers(self):
        rc, j, err = bench("produce", "--records", 40000, "--producers", 3, "--consumers", 3,
                           "--partitions", 6)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["producers"], j["consumers"], j["partitions"]), (3, 3, 6))
        self.assertEqual((j["delivered"], j["consumed"]), (40000, 40000))
        for k in ("producer_rate_min_vs_mean", "consumer_share_min_vs_mean", "consumer_tail_ms"):
            self.assertIn(k, j)
        self.assertLessEqual(j["producer_rate_min_vs_mean"], 1.0)
        self.assertGreaterEqual(j["producer_rate_max_vs_mean"], 1.0)

    def test_existing_topic_on_a_cluster(self):
        with Broker() as b:
            for _ in range(2):
                rc, j, err = bench("produce", "--bootstrap", b.addr, "--topic", "t-bench",
                                   "--records", 5000, "--partitions", 2)
                self.assertEqual(rc, 0, err)
                self.assertEqual((j["partitions"], j["delivered"]), (2, 5000))
            # the topic now holds both runs
            rc, j, err = bench("consume", "--bootstrap", b.addr, "--topic", "t-bench", "--records", 10000)
            self.assertEqual(rc, 0, err)
            self.assertEqual(j["records"], 10000)


class Consume(unittest.TestCase):
    def test_native_private_broker(self):
        rc, j, err = bench("consume", "--records", 100000, "--partitions", 2)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["client"], j["records"], j["partitions"], j["crc_checked"]),
                         ("native", 100000, 2, True))
        self.assertEqual(j["bytes"], 100000 * 100)

    def test_compressed_and_librdkafka(self):
        with Broker() as b:
            rc, j, err = bench("consume", "--bootstrap", b.addr, "--topic", "c", "--records", 30000,
                               "--compression", "lz4", "--fill-only")
            self.assertEqual(rc, 0, err)
            for client in ("native", "librdkafka"):
                rc, j, err = bench("consume", "--bootstrap", b.addr, "--topic", "c", "--records", 30000,
                                   "--client", client)
                self.assertEqual(rc, 0, err)
                self.assertEqual((j["client"], j["records"]), (client, 30000))

    def test_reads_what_the_topic_holds(self):
        with Broker() as b:
            rc, j, err = bench("consume", "--bootstrap", b.addr, "--topic", "few", "--records", 1000,
                               "--fill-only")
            self.assertEqual(rc, 0, err)
            # with --bootstrap the topic is read as it is: N = what it holds
            rc, j, err = bench("consume", "--bootstrap", b.addr, "--topic", "few", "--records", 5000)
            self.assertEqual(rc, 0, err)
            self.assertEqual(j["records"], 1000)


class E2E(unittest.TestCase):
    def test_latency_line(self):
        rc, j, err = bench("e2e", "--rate", 2000, "--seconds", 2, "--warmup-s", 1)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["measured"], j["lost"], j["rate"]), (4000, 0, 2000))
        self.assertTrue(0 < j["p50_ms"] <= j["p99_ms"] <= j["p999_ms"] <= j["max_ms"])


class StartMemory(unittest.TestCase):
    def test_start_empty(self):
        rc, j, err = bench("start", "--runs", 3)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["runs"], j["data_bytes"]), (3, 0))
        self.assertTrue(0 < j["ready_ms_median"] <= j["ready_ms_max"])

    def test_memory(self):
        rc, j, err = bench("memory", "--partitions", 40, "--connections", 10)
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["partitions"], j["connections"]), (40, 10))
        self.assertTrue(0 < j["idle_rss_kb"] <= j["loaded_rss_kb"])


class BadInput(unittest.TestCase):
    CASES = [
        ("nosuchmode",),
        ("produce", "--records", "0"),
        ("produce", "--acks", "2"),
        ("produce", "--consumers", 2, "--topic", "x"),
        ("produce", "--set", "no-equals"),
        ("produce", "--bootstrap", "127.0.0.1:1", "--set", "a=b"),
        ("e2e", "--record-bytes", "8"),
        ("e2e", "--bogus"),
        ("consume", "--client", "java"),
        ("start", "--runs", "0"),
        ("memory", "--partitions", "-1"),
        ("process", "nothing"),
    ]

    def test_bad_options(self):
        for args in self.CASES:
            rc, j, err = bench(*args, timeout=30)
            self.assertEqual(rc, 2, "%s: exit %d, %s" % (args, rc, err))
            self.assertTrue(err.strip(), "%s: no message" % (args,))
            self.assertIsNone(j, "%s printed a result" % (args,))

    def test_help(self):
        for mode in ("produce", "consume", "e2e", "start", "memory", "process"):
            r = subprocess.run([BIN, "bench", mode, "--help"], stdout=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, 0, mode)
            self.assertIn("usage: shopstream bench " + mode, r.stdout)

    def test_unreachable_cluster(self):
        rc, j, err = bench("produce", "--bootstrap", "127.0.0.1:%d" % free_port(), "--records", 10,
                           "--timeout-ms", 2000, timeout=60)
        self.assertNotEqual(rc, 0)
        self.assertIn("shopstream bench", err)


if __name__ == "__main__":
    argv = [a for a in sys.argv[1:] if a != "-v"]
    verbosity = 2 if "-v" in sys.argv else 1
    suite = unittest.defaultTestLoader.loadTestsFromNames(argv, sys.modules[__name__]) if argv \
        else unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed, failed))
    sys.exit(1 if failed else 0)
