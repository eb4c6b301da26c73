#!/usr/bin/python3
"""test_cluster_cli.py: the admin CLI's view of replication, `shopstream topic
create --replicas`, `topic describe` (leader, replicas, ISR per partition) and
`shopstream cluster status`, against a broker of its own (free port, temporary
data dir, stopped by PID):

  - create with --replicas 1 works; --replicas 3 on one broker is refused
    with one sentence on stderr and exit code 1, and creates nothing;
  - describe shows the single broker as leader, only replica and only ISR of
    every partition, the watermarks and the configs;
  - cluster status (text and --json) shows the cluster id, one broker that
    is the controller, topic and partition counts that agree with `topic
    list` / `topic describe`, and "healthy" with exit code 0;
  - --help exits 0; bad options and arguments exit 2 with one sentence and
    print nothing on stdout;
  - status against a closed port exits 1 within its bounded timeout.

Then, when a C compiler and librdkafka's headers are there, the same
commands against librdkafka's mock cluster of three brokers (a helper built
from the C text below): describe shows three replicas per partition, and a
partition whose leader is taken away makes status report it offline and exit
with code 3.  Without a compiler those checks are reported as skipped.

Prints "ok NAME" / "FAIL NAME: why" per check and "N passed, N failed" last;
exits 1 if any check failed.

    /usr/bin/python3 tests/e2e/test_cluster_cli.py [-v]
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
VERBOSE = "-v" in sys.argv[1:]

RESULTS = {"passed": 0, "failed": 0}


def check(name, cond, why=""):
    if cond:
        RESULTS["passed"] += 1
        print("ok %s" % name)
    else:
        RESULTS["failed"] += 1
        print("FAIL %s: %s" % (name, why))
    sys.stdout.flush()
    return cond


def run(*args, timeout=60, stdin=None):
    """Runs bin/shopstream ARGS; returns (exit code, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([BIN] + [str(a) for a in args], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    dt = time.monotonic() - t0
    if VERBOSE:
        print("  $ shopstream %s -> %d in %.1fs\n%s%s" % (
            " ".join(map(str, args)), r.returncode, dt,
            "".join("  | " + l + "\n" for l in r.stdout.splitlines()),
            "".join("  ! " + l + "\n" for l in r.stderr.splitlines())))
    return r.returncode, r.stdout, r.stderr, dt


def one_sentence(err):
    """stderr holds exactly one line that ends a sentence."""
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].rstrip().endswith(".")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    """Today's single broker on a free port with its own data dir."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="shopstream-test-cluster-cli.")
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.p = subprocess.Popen([BIN, "broker", "--listen", self.addr, "--data-dir", self.dir],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 20
        while time.time() < end and self.p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("the broker did not start listening on %s" % self.addr)

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


PARTITION_RE = re.compile(r"^partition (\d+) leader (-?\d+) replicas (\S+) isr (\S+) "
                          r"low (-?\d+) high (-?\d+)((?: offline-replicas \S+)?)((?: error \S+)?)$")


def ids(s):
    return [] if s == "-" else [int(x) for x in s.split(",")]


def parse_describe(out):
    """`topic describe` output -> dict with name, partitions, rf, parts
    {id: dict}, configs [lines] and unknown [lines]."""
    d = {"parts": {}, "configs": [], "unknown": []}
    for line in out.splitlines():
        m = PARTITION_RE.match(line)
        if m:
            d["parts"][int(m.group(1))] = {
                "leader": int(m.group(2)), "replicas": ids(m.group(3)), "isr": ids(m.group(4)),
                "low": int(m.group(5)), "high": int(m.group(6)),
                "offline": m.group(7).strip(), "error": m.group(8).strip()}
        elif line.startswith("topic "):
            d["name"] = line[6:]
        elif line.startswith("partitions "):
            d["partitions"] = int(line.split()[1])
        elif line.startswith("replication-factor "):
            d["rf"] = int(line.split()[1])
        elif line.startswith("config "):
            d["configs"].append(line)
        else:
            d["unknown"].append(line)
    return d


def parse_status(out):
    """`cluster status` text -> dict of the single-valued lines, plus
    brokers [(id, hostport, role)], offline [lines], under [lines]."""
    d = {"brokers_list": [], "offline": [], "under": []}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        if key == "broker":
            bid, hostport, role = rest.split(" ")
            d["brokers_list"].append((int(bid), hostport, role))
        elif key == "offline":
            d["offline"].append(rest)
        elif key == "under-replicated":
            d["under"].append(rest)
        else:
            d[key] = rest
    return d


def test_help():
    rc, out, err, _ = run("--help")
    check("help: main lists cluster", rc == 0 and re.search(r"^  cluster ", out, re.M), out)
    rc, out, err, _ = run("cluster", "--help")
    check("help: cluster --help", rc == 0 and out.startswith("usage: shopstream cluster status")
          and "3  degraded" in out and "1  the cluster could not be reached" in out, (rc, out, err))
    rc, out, err, _ = run("cluster", "status", "--help")
    check("help: cluster status --help", rc == 0 and "usage: shopstream cluster status" in out
          and "--json" in out, (rc, out, err))
    rc, out, err, _ = run("topic", "--help")
    check("help: topic --help", rc == 0 and "--replicas R" in out and "isr" in out, (rc, out, err))


def test_bad_options():
    closed = "127.0.0.1:%d" % free_port()
    cases = [
        ("cluster", "status", "--bogus"),
        ("cluster", "status", "--json", "extra"),
        ("cluster", "bogus"),
        ("cluster", "status", "--timeout-ms", "0"),
        ("cluster", "status", "--timeout-ms"),
        ("cluster", "status", "-X", "novalue"),
        ("cluster", "status", "--partitions", "3"),
        ("topic", "describe", "t", "--bogus"),
        ("topic", "describe", "t", "--replicas", "1"),
        ("topic", "describe"),
        ("topic", "create", "t", "--replicas", "0"),
        ("topic", "create", "t", "--replicas", "abc"),
        ("topic", "create", "t", "--replicas", "40000"),
        ("topic", "create", "t", "--replicas"),
    ]
    for args in cases:
        rc, out, err, dt = run(*(args + ("--bootstrap", closed)), timeout=30)
        check("bad options: %s" % " ".join(args),
              rc == 2 and one_sentence(err) and out == "" and dt < 3,
              "exit %d in %.1fs, stdout %r, stderr %r" % (rc, dt, out, err))
    rc, out, err, _ = run("cluster", timeout=30)
    check("bad options: cluster without a subcommand", rc == 2 and out == ""
          and "usage: shopstream cluster" in err, (rc, out, err))


def test_unreachable():
    closed = "127.0.0.1:%d" % free_port()
    rc, out, err, dt = run("cluster", "status", "--bootstrap", closed, timeout=60)
    check("unreachable: status exits 1 within its 5 s default",
          rc == 1 and out == "" and one_sentence(err) and closed in err and dt < 9,
          "exit %d in %.1fs, stdout %r, stderr %r" % (rc, dt, out, err))
    rc, out, err, dt = run("cluster", "status", "--json", "--timeout-ms", "1000", "--bootstrap",
                           closed, timeout=60)
    check("unreachable: --json --timeout-ms 1000 exits 1 in about a second",
          rc == 1 and out == "" and one_sentence(err) and dt < 4,
          "exit %d in %.1fs, stdout %r, stderr %r" % (rc, dt, out, err))


def test_single_broker():
    with Broker() as b:
        B = ("--bootstrap", b.addr)

        rc, out, err, _ = run("cluster", "status", "--json", *B)
        try:
            j = json.loads(out)
        except ValueError:
            j = None
        if not check("single: status --json answers", rc == 0 and isinstance(j, dict),
                     (rc, out, err)):
            return
        bid = j["brokers"][0]["id"] if j.get("brokers") else None

        # create
        rc, out, err, _ = run("topic", "create", "t-rf1", "--partitions", 3, "--replicas", 1, *B)
        check("single: create --replicas 1", rc == 0 and out.strip() == "created topic t-rf1",
              (rc, out, err))
        rc, out, err, _ = run("topic", "create", "t-default", *B)
        check("single: create without --replicas (broker default)", rc == 0, (rc, out, err))
        rc, out, err, _ = run("topic", "create", "t-rf3", "--partitions", 2, "--replicas", 3, *B)
        check("single: create --replicas 3 on one broker fails with one sentence",
              rc == 1 and out == "" and one_sentence(err)
              and err.startswith("shopstream topic create: could not create topic 't-rf3': ")
              and "replication factor" in err.lower(),
              "exit %d, stdout %r, stderr %r" % (rc, out, err))
        rc, out, err, _ = run("topic", "list", *B)
        check("single: the refused topic does not exist", rc == 0
              and sorted(out.split()) == ["t-default", "t-rf1"], (rc, out, err))

        # describe
        rc, out, err, _ = run("produce", "t-rf1", "--partition", 0, *B, stdin="a\nb\n")
        check("single: two records into partition 0", rc == 0, (rc, out, err))
        rc, out, err, _ = run("topic", "describe", "t-rf1", *B)
        d = parse_describe(out)
        check("single: describe exits 0 with a known layout", rc == 0 and not d["unknown"],
              (rc, d["unknown"], err))
        check("single: describe header", (d.get("name"), d.get("partitions"), d.get("rf"))
              == ("t-rf1", 3, 1), d)
        check("single: describe has a line per partition", sorted(d["parts"]) == [0, 1, 2],
              out)
        for p, v in sorted(d["parts"].items()):
            check("single: partition %d leader/replicas/isr are broker %s" % (p, bid),
                  (v["leader"], v["replicas"], v["isr"], v["offline"], v["error"])
                  == (bid, [bid], [bid], "", ""), v)
        check("single: watermarks", [(v["low"], v["high"]) for _, v in sorted(d["parts"].items())]
              == [(0, 2), (0, 0), (0, 0)], d["parts"])
        check("single: describe still lists the configs",
              any(c.endswith(" cleanup.policy=delete") for c in d["configs"]), d["configs"])
        rc, out, err, _ = run("topic", "describe", "t-default", "--no-configs", *B)
        d = parse_describe(out)
        check("single: broker default replication factor is 1",
              rc == 0 and d.get("rf") == 1 and not d["configs"]
              and all(v["replicas"] == [bid] for v in d["parts"].values()), (rc, out, err))
        rc, out, err, _ = run("topic", "describe", "t-missing", *B)
        check("single: describe of a missing topic exits 1", rc == 1 and out == ""
              and one_sentence(err) and "does not exist" in err, (rc, out, err))

        # what status should count: every topic of `topic list --all`
        rc, out, err, _ = run("topic", "list", "--all", *B)
        topics = out.split()
        nparts = 0
        for t in topics:
            _, o, _, _ = run("topic", "describe", t, "--no-configs", *B)
            nparts += parse_describe(o).get("partitions", 0)

        # status, text
        rc, out, err, _ = run("cluster", "status", *B)
        s = parse_status(out)
        check("single: status exits 0", rc == 0 and err == "", (rc, err))
        check("single: status names the cluster id", s.get("cluster-id") not in (None, "", "-"),
              out)
        check("single: status shows one broker that is the controller",
              s.get("brokers") == "1" and s["brokers_list"] == [(bid, b.addr, "controller")]
              and s.get("controller") == str(bid), out)
        check("single: status counts topics and partitions",
              (s.get("topics"), s.get("partitions")) == (str(len(topics)), str(nparts)),
              "%s vs %d topics, %d partitions" % (out, len(topics), nparts))
        check("single: status healthy", s.get("offline-partitions") == "0"
              and s.get("under-replicated-partitions") == "0" and not s["offline"]
              and not s["under"] and s.get("status") == "healthy", out)

        # status, JSON
        rc, out, err, _ = run("cluster", "status", "--json", *B)
        j = json.loads(out) if rc == 0 else {}
        check("single: status --json", rc == 0 and j.get("cluster_id") == s.get("cluster-id")
              and j.get("controller_id") == bid
              and j.get("brokers") == [{"id": bid, "host": "127.0.0.1", "port": b.port,
                                        "controller": True}]
              and (j.get("topics"), j.get("partitions")) == (len(topics), nparts)
              and j.get("offline_partitions") == [] and j.get("under_replicated_partitions") == []
              and j.get("problems") == [] and j.get("status") == "healthy", (rc, out, err))


# librdkafka's mock cluster of three brokers with topic "orders" (3
# partitions, replication factor 3); with the argument "offline", partition 2
# loses its leader.  Prints its bootstrap list, serves until SIGTERM.
MOCK_C = r"""
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }
int main(int argc, char **argv) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) return 1;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 3);
    if (!mc || rd_kafka_mock_topic_create(mc, "orders", 3, 3)) return 1;
    if (argc > 1 && !strcmp(argv[1], "offline"))
        rd_kafka_mock_partition_set_leader(mc, "orders", 2, -1);
    signal(SIGTERM, on_sig);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!stop) pause();
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
"""


class Mock:
    def __init__(self, exe, mode):
        self.exe, self.mode = exe, mode

    def __enter__(self):
        self.p = subprocess.Popen([self.exe, self.mode], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.addr = self.p.stdout.readline().strip()
        if not self.addr:
            self.__exit__()
            raise RuntimeError("the mock cluster did not start")
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def test_mock_cluster():
    cc = shutil.which("cc")
    tmp = tempfile.mkdtemp(prefix="shopstream-test-cluster-cli-mock.")
    try:
        exe = os.path.join(tmp, "mock")
        src = os.path.join(tmp, "mock.c")
        with open(src, "w") as f:
            f.write(MOCK_C)
        if not cc or subprocess.run([cc, "-o", exe, src, "-lrdkafka"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode != 0:
            print("skip mock cluster: cannot build the helper (cc, librdkafka/rdkafka_mock.h)")
            return
        with Mock(exe, "healthy") as m:
            rc, out, err, _ = run("topic", "describe", "orders", "--no-configs", "--bootstrap",
                                  m.addr)
            d = parse_describe(out)
            check("mock: describe shows three replicas in sync",
                  rc == 0 and d.get("rf") == 3 and sorted(d["parts"]) == [0, 1, 2]
                  and all(sorted(v["replicas"]) == [1, 2, 3] and sorted(v["isr"]) == [1, 2, 3]
                          and v["leader"] in v["replicas"] for v in d["parts"].values()),
                  (rc, out, err))
            rc, out, err, _ = run("cluster", "status", "--bootstrap", m.addr)
            s = parse_status(out)
            check("mock: status of a healthy 3-broker cluster", rc == 0
                  and [x[0] for x in s["brokers_list"]] == [1, 2, 3]
                  and s.get("status") == "healthy", (rc, out, err))
        with Mock(exe, "offline") as m:
            rc, out, err, _ = run("cluster", "status", "--bootstrap", m.addr)
            s = parse_status(out)
            check("mock: an offline partition is listed and exits 3", rc == 3
                  and s.get("offline-partitions") == "1"
                  and s["offline"] == ["orders 2 leader -1 replicas 1,2,3 isr 1,2,3"]
                  and s.get("status", "").startswith("degraded: 1 partition is offline"),
                  (rc, out, err))
            rc, out, err, _ = run("cluster", "status", "--json", "--bootstrap", m.addr)
            j = json.loads(out) if out else {}
            check("mock: --json says degraded and exits 3", rc == 3
                  and j.get("status") == "degraded"
                  and [(x["topic"], x["partition"], x["leader"])
                       for x in j.get("offline_partitions", [])] == [("orders", 2, -1)]
                  and len(j.get("problems", [])) == 1, (rc, out, err))
            rc, out, err, _ = run("topic", "describe", "orders", "--no-configs", "--bootstrap",
                                  m.addr)
            d = parse_describe(out)
            check("mock: describe shows the partition without a leader",
                  rc == 0 and d["parts"].get(2, {}).get("leader") == -1
                  and (d["parts"][2]["low"], d["parts"][2]["high"]) == (-1, -1), (rc, out, err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL setup: %s is not built (make)" % BIN)
        return 1
    for t in (test_help, test_bad_options, test_unreachable, test_single_broker,
              test_mock_cluster):
        try:
            t()
        except Exception as e:  # a crash of one group is a failure, not the end
            check(t.__name__, False, "%s: %s" % (type(e).__name__, e))
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
