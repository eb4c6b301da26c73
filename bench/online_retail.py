#!/usr/bin/python3
"""Benchmark and check (issues 5 and 6): the whole UCI Online Retail file
replayed on a fresh shopstream broker through the order processor and the
analytics processor (both at once).  Prints the time of each phase and
compares per-day orders, GMV and refund totals, from shop.order-state and
from the final 1d windows of shop.kpis, with online_retail_direct.py.

usage: bench/online_retail.py [FILE]   (default ../shared/data/online_retail/online_retail.csv.zst)
Exit 1 when a day differs."""
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "shop"))
sys.path.insert(0, HERE)
import online_retail_direct  # noqa: E402
from shoplib import Broker, latest_by_key, read_topic, run, start, stop, wait_caught_up, workdir  # noqa: E402

DEFAULT = os.path.join(ROOT, "..", "shared", "data", "online_retail", "online_retail.csv.zst")


def day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    t0 = time.time()
    want = online_retail_direct.per_day(online_retail_direct.open_text(path))
    print("direct computation: %d days in %.1f s" % (len(want), time.time() - t0))
    work = workdir("bench-retail")
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    try:
        t0 = time.time()
        r = run(["replay", "online-retail", path, "--bootstrap", b.bootstrap], timeout=600)
        t_replay = time.time() - t0
        print("replay: %.2f s; %s" % (t_replay, r.stderr.strip().splitlines()[-1]))
        t0 = time.time()
        p = start(["process", "orders", "--bootstrap", b.bootstrap], os.path.join(work, "orders.log"))
        a = start(["process", "analytics", "--bootstrap", b.bootstrap, "--finish-idle-ms", "2000"],
                  os.path.join(work, "analytics.log"))
        wait_caught_up(b.bootstrap, "shopstream-orders", ["shop.orders", "shop.aftersales"], timeout=600, procs=[p])
        t_proc = time.time() - t0
        stop(p)
        summary = [l for l in open(os.path.join(work, "orders.log")) if "records" in l][-1].strip()
        print("process orders: %.2f s to commit everything (start-up and group join included); %s" % (t_proc, summary))
        states = [json.loads(v) for v in latest_by_key(read_topic(b.bootstrap, "shop.order-state", timeout=120)).values()]
        got = {}
        for s in states:
            if s["created_ts"] is not None:
                e = got.setdefault(day(s["created_ts"]), [0, 0, 0])
                e[0] += 1
                e[1] += s["amount"]
            for f in s["refunds"]:
                got.setdefault(day(f["ts"]), [0, 0, 0])[2] += f["amount"]
        results = [("shop.order-state", got)]

        wait_caught_up(b.bootstrap, "shopstream-analytics", ["shop.clicks", "shop.orders", "shop.aftersales"],
                       timeout=600, procs=[a])
        deadline = time.time() + 120
        while True:
            kpis = {}
            for (_p, _o, k, v, _t) in read_topic(b.bootstrap, "shop.kpis", timeout=120):
                d = json.loads(v)
                if d["window"] == "1d" and d["final"]:
                    kpis[day(d["start"])] = [d["orders"], d["gmv"], d["refunds"]]
            if len(kpis) >= len(want) or time.time() > deadline:
                break
            time.sleep(1)
        print("process analytics: every 1d window final after %.2f s (with --finish-idle-ms 2000)" % (time.time() - t0))
        stop(a)
        results.append(("shop.kpis final 1d windows", kpis))

        tot = [sum(v[i] for v in want.values()) for i in range(3)]
        print("days %d, orders %d, GMV %d pence, refunds %d pence" % (len(want), tot[0], tot[1], tot[2]))
        rc = 0
        for name, got in results:
            bad = [d for d in sorted(set(want) | set(got)) if want.get(d) != got.get(d)]
            if bad:
                for d in bad[:10]:
                    print("  %s %s: processor %s, direct %s" % (name, d, got.get(d), want.get(d)))
                print("%s: MISMATCH on %d days" % (name, len(bad)))
                rc = 1
            else:
                print("%s: every day matches: orders, GMV and refunds equal the direct computation" % name)
        return rc
    finally:
        b.stop()


if __name__ == "__main__":
    sys.exit(main())
