"""Issue 6: every KPI of every final window of the analytics processor
equals a brute-force recomputation (kpi_brute.py) on a simulated stream:
with one instance, with three instances of which one is killed mid-run,
and with HyperLogLog distinct counts (UV within 3 standard errors).  The
processors run with --finish-idle-ms, so once the input is read every
window closes and all of them are compared.  A separate test checks
out-of-order events against the lateness (test_analytics_lateness.py)."""
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kpi_brute  # noqa: E402
from shoplib import (Broker, latest_by_key, produce_lines, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

INPUTS = ["shop.clicks", "shop.orders", "shop.aftersales"]
GROUP = "shopstream-analytics"
CHUNKS = 8


def simulated():
    out = run(["simulate", "--stdout", "--seed", "21", "--start", "2023-11-14T23:50:00Z", "--rate", "40",
               "--events", "50000", "--time-scale", "200", "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]
    return lines, [json.loads(l.split("\t", 2)[2]) for l in lines]


def analytics(b, work, name, extra=()):
    return start(["process", "analytics", "--bootstrap", b.bootstrap, "--partitions", "6",
                  "--finish-idle-ms", "3000", "--commit-interval-ms", "300",
                  "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"] + list(extra),
                 os.path.join(work, name + ".log"))


def finals(bootstrap):
    out = {}
    for (_p, _o, k, v, _t) in read_topic(bootstrap, "shop.kpis"):
        d = json.loads(v)
        if d["final"]:
            out[k.decode()] = d
    return out


def run_case(work, name, lines, want, instances=1, kill_after=None, extra=()):
    b = Broker(work, name=name, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    try:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "6", "--bootstrap", b.bootstrap])
        if kill_after is None:
            # A backlog: the processors start after all events are in.
            produce_lines(b.bootstrap, lines)
            chunks = 0
        else:
            # Fed while running: the events of one chunk, written in a few
            # milliseconds, span minutes of event time, and reach the
            # processor a few milliseconds apart per topic; the lateness
            # must cover that skew.
            chunks = CHUNKS
            extra = list(extra) + ["--lateness", "600000"]
        procs = [analytics(b, work, "%s-%d" % (name, k), extra) for k in range(instances)]
        n = len(lines)
        for i in range(chunks):
            produce_lines(b.bootstrap, lines[i * n // CHUNKS:(i + 1) * n // CHUNKS])
            if kill_after == i:
                time.sleep(0.5)
                victim = procs.pop(0)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
            time.sleep(0.3)
        wait_caught_up(b.bootstrap, GROUP, INPUTS, timeout=240, procs=procs)
        deadline = time.time() + 90
        got = {}
        while time.time() < deadline:
            got = finals(b.bootstrap)
            if len(got) >= len(want):
                break
            time.sleep(1)
        for p in procs:
            assert stop(p) == 0, "%s: an analytics instance did not stop cleanly" % name
        return got
    finally:
        b.stop()


def check(name, got, want, uv_rel_error=0.0):
    missing = sorted(set(want) - set(got))
    assert not missing, "%s: %d windows never final, e.g. %s (got %d of %d)" % (
        name, len(missing), missing[:3], len(got), len(want))
    bad = []
    for k, w in want.items():
        d = kpi_brute.compare(got[k], w, uv_rel_error)
        if got[k]["late_events"] != 0:
            d.append(("late_events", got[k]["late_events"], 0))
        if d:
            bad.append((k, d[:3]))
    assert not bad, "%s: %d windows differ, e.g. %s" % (name, len(bad), bad[:3])
    print("%s: all %d final windows equal the brute force (%s)" % (
        name, len(want), ", ".join("%d %s" % (sum(1 for k in want if k.startswith(w + "@")), w) for w in ("1m", "1h", "1d"))))


def main():
    work = workdir("analytics")
    lines, events = simulated()
    want = {"%s@%d" % key: kpi_brute.kpis(a) for key, a in kpi_brute.windows(events).items()}
    assert any(w["refunds"] for w in want.values()) and any(w["funnel"]["purchase"] for w in want.values())
    check("one instance", run_case(work, "one", lines, want), want)
    check("three instances, one killed", run_case(work, "three", lines, want, instances=3, kill_after=2), want)
    got = run_case(work, "hll", lines, want, extra=["--uv-exact-cap", "40"])
    assert any(not g["uv_exact"] for g in got.values()), "the HLL run never left exact counting"
    check("HyperLogLog above 40 users", got, want, uv_rel_error=0.0081)
    print("ok")


if __name__ == "__main__":
    main()
