#!/usr/bin/python3
"""test_promcheck.py: the Prometheus text-format validator (promcheck.py) on
good and bad expositions, its command line, and a live check of
`shopstream broker --metrics` (started on free ports with its own data dir,
stopped by PID): /metrics validates and counts what was produced, other
paths and methods get JSON errors.  The last line is "N passed, N failed".

    /usr/bin/python3 tests/e2e/test_promcheck.py [-v] [TestName...]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))

import promcheck  # noqa: E402

BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
PROMCHECK = os.path.join(HERE, "promcheck.py")

GOOD = """\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400",} 3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# HELP t_nan Specials and a UTF-8 value \\\\ with escapes\\n.
# TYPE t_nan gauge
t_nan{v="é ✓"} NaN
t_nan{v="neg"} -Inf
t_nan { v = "spaced" } -1.5e-3

# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"""

HIST = """\
# TYPE h histogram
h_bucket{a="x",le="1"} 1
h_bucket{a="x",le="+Inf"} 2
h_sum{a="x"} 3
h_count{a="x"} 2
"""


def check_error(tc, text, pattern):
    with tc.assertRaises(ValueError) as cm:
        promcheck.check(text)
    tc.assertRegex(str(cm.exception), pattern)
    return str(cm.exception)


class Good(unittest.TestCase):
    def test_reference_example(self):
        samples = promcheck.check(GOOD)
        self.assertEqual(len(samples), 21)
        s = samples[2]
        self.assertEqual(s.name, "msdos_file_access_time_seconds")
        self.assertEqual(s.labels, {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'})
        self.assertEqual(s.value, 1.458255915e9)
        self.assertEqual(samples[4].timestamp, -3982045)
        self.assertEqual(samples[0].type, "counter")
        self.assertEqual(samples[7].labels, {"v": "spaced"})
        self.assertEqual([x.family for x in samples if x.type == "histogram"],
                         ["http_request_duration_seconds"] * 8)

    def test_bytes_empty_and_comments(self):
        self.assertEqual(promcheck.check(b""), [])
        self.assertEqual(promcheck.check("# just a comment\n#HELP not a help line\n"), [])
        self.assertEqual(len(promcheck.check(HIST.encode())), 4)

    def test_help_after_type_and_two_histogram_series(self):
        text = HIST + HIST.replace('a="x"', 'a="y"').replace("# TYPE h histogram\n", "")
        self.assertEqual(len(promcheck.check(text)), 8)
        self.assertEqual(len(promcheck.check("# TYPE g gauge\n# HELP g help\ng 1\n")), 1)


class Bad(unittest.TestCase):
    def test_lexical(self):
        check_error(self, "a 1", r"^line 1: the last line does not end")
        check_error(self, b"a{l=\"\xff\"} 1\n", r"^line 1: not UTF-8")
        check_error(self, "1a 1\n", r"^line 1: expected a metric name")
        check_error(self, "a-b 1\n", r"^line 1: expected a blank")
        check_error(self, "a{1l=\"x\"} 1\n", r"label name")
        check_error(self, "a{__name__=\"x\"} 1\n", r"reserved")
        check_error(self, "a{l=\"x\",l=\"y\"} 1\n", r"repeated")
        check_error(self, "a{l=\"x\\t\"} 1\n", r"invalid escape \\t")
        check_error(self, "a{l=\"x} 1\n", r"unterminated")
        check_error(self, "a{l=x} 1\n", r"quoted value")
        check_error(self, "a{l=\"x\" m=\"y\"} 1\n", r"expected , or }")
        check_error(self, "a{l=\"x\"}1\n", r"blank before the value")
        check_error(self, "a\n", r"no value")
        check_error(self, "a one\n", r"invalid value 'one'")
        check_error(self, "a 0x10\n", r"invalid value")
        check_error(self, "a nan\n", r"invalid value")
        check_error(self, "a 1 1.5\n", r"invalid timestamp")
        check_error(self, "a 1 2 3\n", r"after the timestamp")
        check_error(self, "a 1\r\n", r"invalid value")
        check_error(self, "# HELP a bad \\escape\n", r"invalid escape")
        check_error(self, "# TYPE a\n", r"unknown type")
        check_error(self, "# TYPE a counters\n", r"unknown type")
        check_error(self, "# HELP 1a x\n", r"HELP without a valid metric name")

    def test_families(self):
        msg = check_error(self, "a 1\nb 1\na{x=\"1\"} 2\n", r"^line 3: family a appears again")
        self.assertIn("together", msg)
        check_error(self, "# TYPE a gauge\nb 1\na 1\n", r"line 3: family a appears again")
        check_error(self, "# TYPE a gauge\n# TYPE a gauge\n", r"second TYPE")
        check_error(self, "# HELP a x\n# HELP a y\n", r"second HELP")
        check_error(self, "a 1\n# TYPE a gauge\n", r"TYPE line for a after its samples")
        check_error(self, "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n", r"^line 2: duplicate series")
        check_error(self, "# TYPE c counter\nc -1\n", r"counter c is negative")
        check_error(self, "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# TYPE h_count gauge\n",
                    r"clashes")
        check_error(self, "x_count 1\n# TYPE x histogram\n", r"^line 2: histogram x clashes with the family x_count")
        check_error(self, "# TYPE g gauge\ng_sum 1\n# TYPE g_sum_x gauge\ng{a=\"1\"} 1\n", r"appears again")

    def test_histograms(self):
        check_error(self, HIST.replace('h_count{a="x"} 2', 'h_count{a="x"} 3'),
                    r"\+Inf bucket 2.0 differs from _count 3.0")
        check_error(self, HIST.replace('le="+Inf"} 2', 'le="+Inf"} 0'), r"not cumulative")
        check_error(self, HIST.replace('h_bucket{a="x",le="+Inf"}', 'h_bucket{a="x",le="0.5"} 1\nh_bucket{a="x",le="+Inf"}'),
                    r"^line 3: le 0.5 after le 1.0: buckets must be in increasing order")
        check_error(self, HIST.replace('h_bucket{a="x",le="+Inf"} 2\n', ""), r"no \+Inf bucket")
        check_error(self, HIST.replace('h_count{a="x"} 2\n', ""), r"no _count")
        check_error(self, HIST.replace('h_sum{a="x"} 3\n', ""), r"no _sum")
        check_error(self, HIST.replace('h_bucket{a="x",le="1"} 1', 'h_bucket{a="x"} 1'), r"without an le")
        check_error(self, HIST.replace('le="1"', 'le="one"'), r"invalid le")
        check_error(self, HIST + "h 1\n", r"without _bucket")
        check_error(self, HIST.replace('h_count{a="x"} 2', 'h_count{a="x"} 2.5'), r"not a count")
        check_error(self, "# TYPE s summary\ns{quantile=\"2\"} 1\ns_sum 1\ns_count 1\n", r"invalid quantile")
        check_error(self, "# TYPE s summary\ns 1\ns_sum 1\ns_count 1\n", r"without a quantile")


class CommandLine(unittest.TestCase):
    def run_cli(self, data, *args):
        return subprocess.run(["/usr/bin/python3", PROMCHECK] + list(args), input=data,
                              capture_output=True, text=True, timeout=30)

    def test_stdin_and_file(self):
        p = self.run_cli(GOOD, "-")
        self.assertEqual((p.returncode, p.stdout), (0, "ok 21 samples\n"))
        p = self.run_cli("a 1\na 2\n")
        self.assertEqual((p.returncode, p.stdout), (1, "line 2: duplicate series a\n"))
        d = tempfile.mkdtemp(prefix="shopstream-promcheck.")
        try:
            f = os.path.join(d, "m.txt")
            with open(f, "w") as fh:
                fh.write(HIST)
            p = self.run_cli("", f)
            self.assertEqual((p.returncode, p.stdout), (0, "ok 4 samples\n"))
            p = self.run_cli("", os.path.join(d, "missing"))
            self.assertEqual(p.returncode, 2)
            self.assertIn("cannot read", p.stderr)
        finally:
            shutil.rmtree(d)


def http(method, url, timeout=10):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def metric_value(samples, name, **labels):
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


@unittest.skipUnless(os.access(BIN, os.X_OK) and shutil.which("kcat"), "needs bin/shopstream and kcat")
class LiveBroker(unittest.TestCase):
    def setUp(self):
        from brokerproc import Broker
        self.work = tempfile.mkdtemp(prefix="shopstream-metrics.")
        self.broker = Broker(self.work, extra=["--metrics", "127.0.0.1:0"])
        self.broker.start()
        deadline = time.time() + 10
        m = None
        while time.time() < deadline and not m:
            m = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", self.broker.tail(100000))
            time.sleep(0.05)
        self.assertTrue(m, "no 'metrics on' line in the log:\n" + self.broker.tail())
        self.url = m.group(1)

    def tearDown(self):
        status = self.broker.stop()
        log = self.broker.tail(100000)
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(status, 0, log)

    def test_metrics_endpoint(self):
        lines = "".join("message %d\n" % i for i in range(500))
        p = subprocess.run(["kcat", "-P", "-b", self.broker.bootstrap, "-t", "metrics-test", "-p", "0"],
                           input=lines, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the log snapshot is published once a second
        deadline = time.time() + 10
        while True:
            status, headers, body = http("GET", self.url)
            self.assertEqual(status, 200)
            self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            samples = promcheck.check(body)
            leo = metric_value(samples, "shopstream_broker_log_end_offset", topic="metrics-test", partition="0")
            if leo == 500 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(leo, 500)
        self.assertGreater(metric_value(samples, "shopstream_broker_log_size_bytes",
                                        topic="metrics-test", partition="0"), 500 * 9)
        self.assertGreaterEqual(metric_value(samples, "shopstream_broker_requests_total", api="Produce"), 1)
        self.assertGreaterEqual(metric_value(samples, "shopstream_broker_requests_total", api="Metadata"), 1)
        self.assertEqual(metric_value(samples, "shopstream_broker_records_in_total"), 500)
        self.assertGreater(metric_value(samples, "shopstream_broker_bytes_in_total"), 500 * 9)
        self.assertGreater(metric_value(samples, "shopstream_broker_bytes_out_total"), 0)
        self.assertGreaterEqual(metric_value(samples, "shopstream_broker_connections_accepted_total"), 1)
        self.assertIsNotNone(metric_value(samples, "shopstream_broker_connections"))
        self.assertGreaterEqual(metric_value(samples, "shopstream_broker_request_seconds_count", api="Produce"), 1)
        self.assertIsNotNone(metric_value(samples, "shopstream_broker_flush_seconds_count"))
        # the CLI reads it over HTTP too
        p = subprocess.run(["/usr/bin/python3", PROMCHECK, self.url], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^ok \d+ samples\n$")
        # HEAD: headers only
        status, headers, body = http("HEAD", self.url)
        self.assertEqual((status, body), (200, b""))

    def test_errors_are_json(self):
        base = self.url[: -len("/metrics")]
        for method, path, code in (("GET", "/", 404), ("GET", "/metricsx", 404), ("POST", "/metrics", 405),
                                   ("DELETE", "/metrics", 405)):
            status, headers, body = http(method, base + path)
            self.assertEqual(status, code, (method, path))
            self.assertTrue(headers["Content-Type"].startswith("application/json"))
            doc = json.loads(body)
            self.assertEqual(doc["status"], code)
            self.assertIsInstance(doc["error"], str)
            if code == 405:
                self.assertIn("GET", headers["Allow"])


if __name__ == "__main__":
    verbosity = 2 if "-v" in sys.argv else 1
    names = [a for a in sys.argv[1:] if a != "-v"]
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames(names, sys.modules[__name__]) if names else \
        loader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
