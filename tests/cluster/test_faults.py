#!/usr/bin/python3
"""Jepsen-style fault test of a replicated shopstream cluster.

Three brokers (the cluster start contract of cluster.broker_argv), each in
its own network namespace (netsim.py), a topic of 6 partitions with 3
replicas; 2 idempotent acks=all producers and 3 consumers in one group run
while a seeded nemesis injects, one at a time with a settle pause between
them: kill -9 and restart after 1-5 s, SIGSTOP/SIGCONT pauses of 1-5 s, one
broker cut off from everyone, and a partition's leader isolated from the
other brokers (the clients still reach it), healed after 2-6 s.  Then the
network heals, producers run on for a while and stop, the group catches up
to the end, a fresh reader reads every partition from the beginning, and
checker.py judges the history (every acknowledged record at its offset, no
duplicates, no disagreement, consumption resumed after every fault).

usage: test_faults.py [--long] [--single] [--seconds N] [--seed S] [--faults K,...] [--keep] [--sabotage]
  --long      600 s of faults (default 60, or SHOPSTREAM_FAULT_SECONDS)
  --single    one broker started the pre-cluster way (--listen, fsync before
              acknowledging), only kill -9 and pause faults; 20 s by default
  --seed S    nemesis seed (default SHOPSTREAM_FAULT_SEED or random; printed)
  --faults K  fault kinds to draw from: kill,pause,cutoff,isolate-leader
  --keep      keep the work dir (broker logs, client log, history.json)
  --sabotage  self-test of the whole chain: each kill also truncates the
              topic's segment files, losing acknowledged records; must FAIL
Prints ok/FAIL per check, one JSON summary line, "N passed, N failed".  The
work dir is kept when anything fails.  Prints SKIP and exits 0 when network
namespaces cannot be used (not root, no iproute2, no permission)."""
import argparse
import collections
import glob
import json
import os
import random
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netsim  # noqa: E402

TOPIC = "faults"
PARTITIONS = 6
CONSUMERS = 3
PRODUCERS = 2
RATE = int(os.environ.get("SHOPSTREAM_FAULT_RATE", "200"))      # records/s per producer
TAIL = 10          # producers go on this long after the last fault healed
WARMUP_LIMIT = 60  # the group must have read something within this
RESUME_BOUND = 30


class Result:
    def __init__(self):
        self.passed = self.failed = 0
        self.messages = []

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % name, flush=True)
        else:
            self.failed += 1
            self.messages.append("%s: %s" % (name, detail))
            print("FAIL %s%s" % (name, (": " + detail) if detail else ""), flush=True)
        return ok


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--faults", help="comma-separated fault kinds to draw from (default: kill,pause,cutoff,"
                                     "isolate-leader; --single: kill,pause)")
    ap.add_argument("--sabotage", action="store_true",
                    help="self-test: only kills, and each kill also cuts the tail off the topic's newest "
                         "segment files, so acknowledged records are lost: the run must FAIL")
    a = ap.parse_args(argv)
    if a.seconds is None:
        env = os.environ.get("SHOPSTREAM_FAULT_SECONDS")
        a.seconds = 600.0 if a.long else float(env) if env else 20.0 if a.single else 60.0
    kinds = ["kill", "pause", "cutoff", "isolate-leader"]
    if a.faults:
        a.faults = [k.strip() for k in a.faults.split(",") if k.strip()]
        bad = [k for k in a.faults if k not in kinds]
        if bad or not a.faults:
            ap.error("unknown fault kind(s) %s (known: %s)" % (bad, ",".join(kinds)))
    else:
        a.faults = kinds[:2] if a.single else kinds
    if a.seed is None:
        env = os.environ.get("SHOPSTREAM_FAULT_SEED")
        a.seed = int(env) if env else random.SystemRandom().randrange(1, 2 ** 31)
    return a


class Nemesis:
    """Injects one fault at a time from a seeded schedule, watching for
    brokers that exit by themselves (recorded and restarted)."""

    def __init__(self, cluster, net, rnd, kinds, log, sabotage=False):
        self.cluster = cluster
        self.net = net
        self.rnd = rnd
        self.sabotage = sabotage
        self.kinds = ["kill"] if sabotage else list(kinds)
        self.faults = []
        self.crashes = []
        self.log = log

    def watch(self):
        for i, b in self.cluster.brokers.items():
            rc = b.unexpected_exit()
            if rc is not None:
                self.crashes.append({"broker": i, "status": rc, "t": time.time()})
                self.log("broker %d exited by itself (status %s); restarting it" % (i, rc))
                b.start()

    def sleep(self, secs):
        end = time.time() + secs
        while True:
            self.watch()
            left = end - time.time()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

    def cut_tails(self, node):
        """Sabotage (self-test only): truncate the newest .log file of every
        partition directory of TOPIC in the broker's data dir to 60%."""
        data = self.cluster.brokers[node].data_dir
        cut = 0
        for d, _, files in os.walk(data):
            if TOPIC not in d:
                continue
            logs = sorted(f for f in files if f.endswith(".log"))
            if logs:
                path = os.path.join(d, logs[-1])
                size = os.path.getsize(path)
                os.truncate(path, size * 6 // 10)
                cut += size - size * 6 // 10
        return cut

    def one(self):
        kind = self.rnd.choice(self.kinds)
        ids = self.cluster.ids()
        node = self.rnd.choice(ids)
        partition = None
        if kind in ("kill", "pause"):
            dur = self.rnd.uniform(1, 5)
        else:
            dur = self.rnd.uniform(2, 6)
        if kind == "isolate-leader":
            partition = self.rnd.randrange(PARTITIONS)
            leader = self.cluster.leaders(TOPIC).get(partition)
            if leader in ids:
                node = leader
        b = self.cluster.brokers[node]
        self.log("%s broker %d%s for %.1f s" % (kind, node,
                                                "" if partition is None else " (leader of partition %d)" % partition, dur))
        start = time.time()
        if kind == "kill":
            b.kill()
            if self.sabotage:
                self.log("sabotage: cut %d bytes off broker %d's segment tails" % (self.cut_tails(node), node))
            self.sleep(dur)
            b.start()
        elif kind == "pause":
            b.pause()
            self.sleep(dur)
            b.resume()
        elif kind == "cutoff":
            self.net.cut_off(node)
            self.sleep(dur)
            self.net.heal()
        else:
            self.net.isolate_from_peers(node)
            self.sleep(dur)
            self.net.heal()
        f = {"kind": kind, "node": node, "start": start, "end": time.time()}
        if partition is not None:
            f["partition"] = partition
        self.faults.append(f)

    def run(self, seconds):
        stop_at = time.time() + seconds
        while True:
            self.sleep(self.rnd.uniform(3, 6))
            if time.time() >= stop_at:
                return
            self.one()

    def heal_all(self):
        self.net.heal()
        for b in self.cluster.brokers.values():
            if b.state == "paused":
                b.resume()
            elif b.state == "dead":
                b.start()


def producer_ids(work, wanted):
    """[[p, off, producer id, producer epoch]] for the positions wanted,
    from the batch headers in the brokers' segment files (any replica: the
    positions asked about are below the high watermark)."""
    want = set(wanted)
    found = {}
    for d in sorted(glob.glob(os.path.join(work, "b*-data", "topics", TOPIC, "*"))):
        try:
            p = int(os.path.basename(d))
        except ValueError:
            continue
        offs = sorted(off for q, off in want if q == p)
        if not offs:
            continue
        for seg in sorted(glob.glob(os.path.join(d, "*.log"))):
            with open(seg, "rb") as f:
                data = f.read()
            i = 0
            while i + 61 <= len(data):
                base, blen = struct.unpack(">qi", data[i:i + 12])
                if blen < 49 or i + 12 + blen > len(data):
                    break
                last = base + struct.unpack(">i", data[i + 23:i + 27])[0]
                pid, epoch = struct.unpack(">qh", data[i + 43:i + 53])
                for off in offs:
                    if base <= off <= last:
                        found.setdefault((p, off), (pid, epoch))
                i += 12 + blen
    return [[p, off, pid, epoch] for (p, off), (pid, epoch) in sorted(found.items())]


def main(argv):
    args = parse_args(argv)
    try:
        netsim.check_available()
    except netsim.NetUnavailable as e:
        print("SKIP fault test: %s" % e)
        print("0 passed, 0 failed")
        return 0
    import cluster as cl
    import checker
    import workload

    mode = "single broker" if args.single else "3-broker cluster"
    print("fault test: %s, %.0f s of faults (%s), seed %d (SHOPSTREAM_FAULT_SEED=%d to repeat the schedule)"
          % (mode, args.seconds, ",".join(args.faults), args.seed, args.seed), flush=True)
    res = Result()
    cl.install_cleanup()
    work = tempfile.mkdtemp(prefix="shopstream-faults.")
    t_begin = time.time()

    def log(msg):
        print("%7.1f  %s" % (time.time() - t_begin, msg), flush=True)

    summary = {"mode": "single" if args.single else "cluster", "seed": args.seed, "seconds": args.seconds}
    cluster = None
    with netsim.lock():
        netsim.cleanup_stale()
        net = netsim.Net(1 if args.single else 3)
        cl.register_net(net)
        try:
            net.setup()
            cluster = cl.Cluster(net, work, single=args.single)
            run(args, cluster, net, res, log, work, summary, checker, workload)
        except Exception as e:
            import traceback
            traceback.print_exc()
            res("fault test run", False, "%s: %s" % (type(e).__name__, e))
        finally:
            if cluster:
                statuses = {i: st for i, st in cluster.stop().items() if cluster.brokers[i].popen}
                res("every broker stopped cleanly on SIGTERM", all(s == 0 for s in statuses.values()),
                    "exit statuses %s (None: had to be killed)" % statuses)
            cl.cleanup_all()
    summary["result"] = "PASS" if res.failed == 0 else "FAIL"
    summary["elapsed_s"] = round(time.time() - t_begin, 1)
    if res.failed:
        summary["failures"] = res.messages[:10]
    print(json.dumps(summary), flush=True)
    if res.failed or args.keep:
        print("work dir kept: %s (b<i>.log broker logs, clients.log, history.json)" % work)
        if res.failed and cluster:
            for i, b in cluster.brokers.items():
                print("---- broker %d log tail ----" % i)
                print(b.tail(1500))
    else:
        cl.remove_tree(work)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


def run(args, cluster, net, res, log, work, summary, checker, workload):
    rnd = random.Random(args.seed)
    logger = workload.client_logger(os.path.join(work, "clients.log"))

    # --- the cluster
    cluster.start()
    cluster.wait_brokers(60)
    cluster.create_topic(TOPIC, PARTITIONS)
    cluster.wait_topic(TOPIC, PARTITIONS, 60)
    res("%s ready: every broker sees %d broker(s), all %d partitions led"
        % ("cluster" if not args.single else "broker", len(cluster.brokers), PARTITIONS), True)
    log("bootstrap %s; leaders %s" % (cluster.bootstrap, cluster.leaders(TOPIC)))

    # --- the clients
    poller = workload.LeaderPoller(cluster, TOPIC)
    poller.start()
    group = "faults-%d-%d" % (args.seed, time.time())
    consumers = [workload.ConsumerThread("c%d" % i, cluster.bootstrap, TOPIC, group, logger) for i in range(CONSUMERS)]
    producers = [workload.ProducerThread(i, cluster.bootstrap, TOPIC, RATE, logger) for i in range(PRODUCERS)]
    for t in consumers + producers:
        t.start()
    deadline = time.time() + WARMUP_LIMIT
    while time.time() < deadline and not (all(p.acks for p in producers) and any(c.reads for c in consumers)):
        time.sleep(0.1)
    if not res("workload running (producers acknowledged, group consuming)",
               all(p.acks for p in producers) and any(c.reads for c in consumers),
               "acks %s, reads %s, errors %s" % ([len(p.acks) for p in producers], [len(c.reads) for c in consumers],
                                               [dict(c.errors) for c in consumers] + [dict(p.errors) for p in producers])):
        for t in producers + consumers:
            t.stop.set()
        return

    # --- the faults
    nemesis = Nemesis(cluster, net, rnd, args.faults, log, args.sabotage)
    try:
        nemesis.run(args.seconds)
    finally:
        nemesis.heal_all()
    log("faults over (%d), healed; producing %d s more" % (len(nemesis.faults), TAIL))
    nemesis.sleep(TAIL)

    # --- stop producing, let the group catch up
    for p in producers:
        p.stop.set()
    for p in producers:
        p.join(150)
    nemesis.watch()
    ends = workload.end_offsets(cluster.bootstrap, TOPIC, PARTITIONS)
    log("producers stopped; end offsets %s" % ends)
    catchup = 120 if args.long else 60
    deadline = time.time() + catchup
    behind = {}
    while time.time() < deadline:
        got = collections.Counter()
        for c in consumers:
            for p, off in list(c.maxoff.items()):
                got[p] = max(got[p], off + 1)
        behind = {p: e - got[p] for p, e in ends.items() if got[p] < e}
        if not behind:
            break
        nemesis.sleep(0.2)
    res("group caught up to the end within %d s" % catchup, not behind,
        "records behind per partition: %s" % behind)
    for c in consumers:
        c.stop.set()
    for c in consumers:
        c.join(60)

    # --- the final read
    final, complete = workload.final_read(cluster.bootstrap, TOPIC, ends, logger)
    res("final reader read every partition to its end (%d records)" % len(final), complete)
    poller.stop.set()
    poller.join(10)
    nemesis.watch()

    # --- client health
    for t in producers + consumers:
        res("%s ran without an exception" % t.name, t.exc is None and not t.is_alive(),
            "still running" if t.is_alive() else repr(t.exc))
    res("no broker exited by itself", not nemesis.crashes, str(nemesis.crashes))
    res("nemesis injected faults", bool(nemesis.faults) or args.seconds < 8, "none in %.0f s" % args.seconds)

    # --- the history and its check
    reads = {c.name: c.reads for c in consumers}
    reads["final"] = final
    h = {"acks": [a for p in producers for a in p.acks], "reads": reads,
         "group": [c.name for c in consumers], "final": "final",
         "final_end": {str(p): e for p, e in ends.items()},
         "faults": nemesis.faults, "leader_changes": poller.changes,
         "sent": sum(p.sent for p in producers),
         "failed_deliveries": sum(sum(p.failed.values()) for p in producers),
         "producer_restarts": sum(p.restarts for p in producers),
         "broker_crashes": len(nemesis.crashes),
         "seed": args.seed, "mode": summary["mode"]}
    dups = checker.duplicate_positions(h)
    if dups:
        h["producer_ids"] = producer_ids(work, dups)
    with open(os.path.join(work, "history.json"), "w") as f:
        json.dump(h, f)
    r = checker.check(h, resume_bound=RESUME_BOUND)
    for name, desc in checker.PROPERTIES:
        v = r["violations"].get(name)
        res("%s: %s" % (name, desc), v is None,
            "" if v is None else "%d violation(s), e.g.\n       %s" % (v["count"], "\n       ".join(v["examples"])))
    fails = collections.Counter()
    for p in producers:
        fails.update(p.failed)
    summary.update(r["counts"])
    summary.update(r["stats"])
    summary["violations"] = {k: v["count"] for k, v in r["violations"].items()}
    summary["delivery_errors"] = dict(fails.most_common(5))
    summary["in_flight_at_end"] = sum(p.in_flight_at_end for p in producers)
    log("acked %d of %d sent; %d faults %s; %d leader changes" % (
        len(h["acks"]), h["sent"], len(nemesis.faults), r["counts"]["faults"], poller.changes))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
