#!/usr/bin/python3
"""bench/suite.py: `make bench`, the performance suite of issue 9.

Runs `shopstream bench` modes against shopstream's broker and, where it is a
meaningful peer, against librdkafka's in-memory mock cluster
(shared/tools/mockbroker), alternating runs in one session, and writes a
one-page markdown summary (medians, ratios, targets) to build/bench/summary.md
and stdout; every raw JSON line goes to build/bench/runs.jsonl.

usage: bench/suite.py [--rounds N] [--quick] [--no-10gb]
  --rounds N  runs per figure (default 5; the figure is the median)
  --quick     smaller counts and 3 rounds, to try the suite (not the targets)
  --no-10gb   skip the start-up with 10 GB of data (writes 10 GB to /tmp)

The mock keeps its topics in memory with its own default of 4 partitions
(its Admin API cannot create topics), answers fetches without waiting for
new data, and drops old data; so it is the peer for produce throughput only.
Consume, latency, memory and start-up have absolute targets.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin", "shopstream")
MOCK = os.path.join(ROOT, "bin", "mockbroker")
KBENCH = os.path.join(ROOT, "bin", "kbench")
OUT = os.path.join(ROOT, "build", "bench")


_given = set()


def free_port():
    """A free port not handed out before (the kernel may offer a port that
    was just closed again)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _given:
            _given.add(p)
            return p


def wait_port(port, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d did not open" % port)


class Suite:
    def __init__(self, rounds, quick):
        self.rounds = rounds
        self.quick = quick
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="shopstream-suite.")
        os.makedirs(OUT, exist_ok=True)
        self.raw = open(os.path.join(OUT, "runs.jsonl"), "w")

    def broker(self, name, *sets):
        port = free_port()
        args = [BIN, "broker", "--listen", "127.0.0.1:%d" % port,
                "--data-dir", os.path.join(self.tmp, name)]
        for s in sets:
            args += ["--set", s]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port)
        return "127.0.0.1:%d" % port

    def cluster(self, n=3):
        """n brokers in one cluster (every one a voter), default
        replication factor n, min.insync.replicas 2; bootstrap list."""
        ports = [free_port() for _ in range(n)]
        raft = [free_port() for _ in range(n)]
        voters = ",".join("%d@127.0.0.1:%d" % (i + 1, raft[i]) for i in range(n))
        for i in range(n):
            args = [BIN, "broker", "--data-dir", os.path.join(self.tmp, "cluster%d" % (i + 1)),
                    "--set", "node.id=%d" % (i + 1),
                    "--set", "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (ports[i], raft[i]),
                    "--set", "controller.quorum.voters=" + voters,
                    "--set", "default.replication.factor=%d" % n,
                    "--set", "min.insync.replicas=%d" % min(2, n)]
            self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        boot = ",".join("127.0.0.1:%d" % p for p in ports)
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run(["kcat", "-L", "-b", boot, "-m", "2"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if r.stdout.count("broker ") >= n + 1 and "(controller)" in r.stdout:
                return boot
            time.sleep(0.2)
        raise RuntimeError("the %d-broker cluster did not form" % n)

    def mock(self):
        p = subprocess.Popen([MOCK], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        addr = p.stdout.readline().strip()
        if not addr:
            raise RuntimeError("mockbroker printed no address")
        return addr

    def run(self, label, *args, timeout=600):
        cmd = [BIN, "bench"] + [str(a) for a in args]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        try:
            res = json.loads(line)
        except ValueError:
            res = {}
        res["_label"] = label
        res["_exit"] = r.returncode
        self.raw.write(json.dumps(res) + "\n")
        self.raw.flush()
        if r.returncode != 0:
            tail = " ".join(r.stderr.strip().splitlines()[-2:])
            print("  %s: exit %d: %s" % (label, r.returncode, tail), file=sys.stderr)
        print("  %-28s %s" % (label, line[:160]), file=sys.stderr)
        return res

    def kbench(self, label, *args):
        """shared/tools/kbench, the peer's own tool, as a cross-check."""
        r = subprocess.run([KBENCH] + [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=600)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        try:
            res = json.loads(line)
        except ValueError:
            res = {}
        res["records_per_sec"] = res.get("msgs_per_s")
        res["_label"] = label
        res["_exit"] = r.returncode
        self.raw.write(json.dumps(res) + "\n")
        print("  %-28s %s" % (label, line[:160]), file=sys.stderr)
        return res

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", self.tmp])
        self.raw.close()


def med(rs, key):
    v = [r[key] for r in rs if r.get("_exit") == 0 and key in r]
    return statistics.median(v) if v else None


def med_ratio(num, den, key="records_per_sec"):
    """Median of the per-round ratios: each round's two runs were taken
    back to back, so drift of the machine between rounds cancels."""
    v = [a[key] / b[key] for a, b in zip(num, den)
         if a.get("_exit") == 0 and b.get("_exit") == 0 and a.get(key) and b.get(key)]
    return statistics.median(v) if v else None


def fmt_rate(x):
    return "—" if x is None else "%.2f M/s" % (x / 1e6)


def fmt_ms(x):
    return "—" if x is None else "%.0f ms" % x if x >= 10 else "%.2f ms" % x


def fmt_mb(kb):
    return "—" if kb is None else "%.1f MB" % (kb / 1024.0)


def verdict(ok):
    return "—" if ok is None else ("yes" if ok else "**no**")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-10gb", action="store_true")
    a = ap.parse_args()
    rounds = 3 if a.quick else a.rounds
    n_prod = 300000 if a.quick else 1000000
    n_cons = 1000000 if a.quick else 10000000
    e2e_s = 3 if a.quick else 10
    mixed_n = 500000 if a.quick else 2000000
    s = Suite(rounds, a.quick)
    rows = []
    try:
        ours = s.broker("ours")
        durable = s.broker("durable", "log.flush.interval.messages=1")
        mock = s.mock()
        cluster = s.cluster(3)
        print("brokers: ours %s, durable %s, mock %s, cluster %s" % (ours, durable, mock, cluster),
              file=sys.stderr)

        # 1. produce, alternating peer and ours in each round, with
        # shopstream bench and with kbench (the peer's tool) in the same
        # round, so that both see the machine in the same state (the
        # broker's page cache grows as the rounds write; see README)
        pm, po, pd, km, ko, pr = [], [], [], [], [], []
        for r in range(rounds):
            pm.append(s.run("produce mock", "produce", "--bootstrap", mock, "--records", n_prod))
            po.append(s.run("produce ours acks=1", "produce", "--bootstrap", ours, "--records", n_prod))
            km.append(s.kbench("kbench produce mock", "produce", "-b", mock, "-t", "bench", "-n", n_prod))
            ko.append(s.kbench("kbench produce ours", "produce", "-b", ours, "-t", "bench", "-n", n_prod))
            pd.append(s.run("produce ours acks=all+fsync", "produce", "--bootstrap", durable,
                            "--records", n_prod, "--acks", "all"))
            pr.append(s.run("produce 3 replicas acks=all", "produce", "--bootstrap", cluster,
                            "--records", n_prod, "--acks", "all", "--topic", "bench-rf3"))
        m, o, d = med(pm, "records_per_sec"), med(po, "records_per_sec"), med(pd, "records_per_sec")
        k_m, k_o = med(km, "records_per_sec"), med(ko, "records_per_sec")
        ro, rk, rd = med_ratio(po, pm), med_ratio(ko, km), med_ratio(pd, po)
        rows.append(("Produce 100 B, 1 partition, acks=1 (mock: its 4)", fmt_rate(o), fmt_rate(m),
                     "%.2f×" % ro if ro else "—", "≥ 1.0× mock", verdict(ro >= 1.0 if ro else None)))
        rows.append(("  the same measured with kbench", fmt_rate(k_o), fmt_rate(k_m),
                     "%.2f×" % rk if rk else "—", "≥ 1.0× mock", verdict(rk >= 1.0 if rk else None)))
        rows.append(("Produce acks=all, fsync before ack", fmt_rate(d), fmt_rate(o) + " (acks=1)",
                     "%.2f×" % rd if rd else "—", "≥ 0.7× acks=1", verdict(rd >= 0.7 if rd else None)))
        r3, rr3 = med(pr, "records_per_sec"), med_ratio(pr, po)
        rows.append(("Produce acks=all, 3 brokers, 3 replicas (one machine)", fmt_rate(r3),
                     fmt_rate(o) + " (1 broker, acks=1)", "%.2f×" % rr3 if rr3 else "—", "(reported)", ""))

        # 2. consume from the start, our own fetch client; librdkafka for reference
        topic = "suite-consume"
        s.run("fill for consume", "consume", "--bootstrap", ours, "--topic", topic,
              "--records", n_cons, "--fill-only")
        cs = [s.run("consume ours native", "consume", "--bootstrap", ours, "--topic", topic,
                    "--records", n_cons) for _ in range(rounds)]
        cl = s.run("consume ours librdkafka", "consume", "--bootstrap", ours, "--topic", topic,
                   "--records", n_cons, "--client", "librdkafka")
        c = med(cs, "records_per_sec")
        rows.append(("Consume %dM records from the start" % (n_cons // 1000000), fmt_rate(c),
                     "librdkafka client: " + fmt_rate(cl.get("records_per_sec")), "",
                     "≥ 2.5 M/s", verdict(c >= 2.5e6 if c else None)))

        # 3. end-to-end latency at 5,000 records/s, linger 0
        es = [s.run("e2e ours", "e2e", "--bootstrap", ours, "--seconds", e2e_s) for _ in range(rounds)]
        em = s.run("e2e mock", "e2e", "--bootstrap", mock, "--seconds", min(e2e_s, 3))
        p99, p999 = med(es, "p99_ms"), med(es, "p999_ms")
        rows.append(("E2E latency 5k rec/s, linger 0: p99", fmt_ms(p99), fmt_ms(em.get("p99_ms")), "",
                     "< 1 ms", verdict(p99 < 1 if p99 is not None else None)))
        rows.append(("E2E latency: p99.9", fmt_ms(p999), fmt_ms(em.get("p999_ms")), "", "< 5 ms",
                     verdict(p999 < 5 if p999 is not None else None)))

        # 4. many clients: 16 producers and 16 consumers over 64 partitions,
        # consumers with shopstream's fetch client (the lightest client, so
        # the 2 cores go to the broker and the producers) and, for reference,
        # as one librdkafka consumer group
        ms_ = [s.run("16P+16C ours", "produce", "--bootstrap", ours, "--records", mixed_n,
                     "--producers", 16, "--consumers", 16, "--partitions", 64)
               for _ in range(rounds)]
        mg = s.run("16P+16C ours, group", "produce", "--bootstrap", ours, "--records", mixed_n,
                   "--producers", 16, "--consumers", 16, "--partitions", 64,
                   "--consumer-client", "librdkafka")
        mx = med(ms_, "records_per_sec")
        rows.append(("16 producers + 16 consumers, 64 partitions", fmt_rate(mx), fmt_rate(o) + " (1 producer)",
                     "%.2f×" % (mx / o) if mx and o else "—", "≥ 0.8× single",
                     verdict(mx / o >= 0.8 if mx and o else None)))
        gx = mg.get("records_per_sec") if mg.get("_exit") == 0 else None
        rows.append(("  consumers as a librdkafka group instead", fmt_rate(gx), fmt_rate(o) + " (1 producer)",
                     "%.2f×" % (gx / o) if gx and o else "—", "(reference)", ""))
        ok = [r for r in ms_ if r.get("_exit") == 0]
        pmin = min([r.get("producer_rate_min_vs_mean", 0) for r in ok] or [0])
        cmin = min([r.get("consumer_read_by_end_min", 0) for r in ok] or [0])
        rows.append(("  slowest producer vs mean; least read by the end", "%.2f; %.2f" % (pmin, cmin), "", "",
                     "no client starved (≥ 0.5)", verdict(pmin >= 0.5 and cmin >= 0.5 if ok else None)))

        # 5. memory and start-up (private brokers)
        mem = s.run("memory", "memory")
        rows.append(("Idle resident memory", fmt_mb(mem.get("idle_rss_kb")), "", "", "< 10 MB",
                     verdict(mem.get("idle_rss_kb", 1e9) < 10 * 1024 if mem.get("_exit") == 0 else None)))
        rows.append(("RSS, 1,000 partitions + 100 connections", fmt_mb(mem.get("loaded_rss_kb")), "", "",
                     "< 64 MB",
                     verdict(mem.get("loaded_rss_kb", 1e9) < 64 * 1024 if mem.get("_exit") == 0 else None)))
        st = s.run("start empty", "start", "--runs", rounds)
        v = st.get("ready_ms_median")
        rows.append(("Start to first accepted connection, empty", fmt_ms(v), "", "", "< 20 ms",
                     verdict(v < 20 if v is not None else None)))
        if not a.no_10gb and not a.quick:
            st10 = s.run("start 10 GB", "start", "--data-gb", 10, "--runs", rounds, timeout=1800)
            v = st10.get("ready_ms_median")
            rows.append(("Start with 10 GB of data", fmt_ms(v), "", "", "< 200 ms",
                         verdict(v < 200 if v is not None else None)))
    finally:
        s.close()

    lines = ["# shopstream performance summary", "",
             "%s, %d rounds per figure (medians), %s." % (
                 time.strftime("%Y-%m-%d %H:%M"), rounds, "quick counts" if a.quick else "full counts"),
             "Peer: librdkafka's in-memory mock cluster (shared/tools/mockbroker) in the same session, "
             "alternating runs. Clients: `shopstream bench` (librdkafka for produce and e2e, "
             "shopstream's fetch client for consume).", "",
             "Ratios are the median of per-round ratios.", "",
             "| figure | shopstream | peer / reference | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    lines.append("")
    lines.append("Raw results: build/bench/runs.jsonl.")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
