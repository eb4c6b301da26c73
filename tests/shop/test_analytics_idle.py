"""Issue 6: an idle partition does not hold windows back.  All events are of
one user, so one task of four gets them and three never do; with
--idle-timeout-ms the silent tasks are left out of the watermark and the
windows the busy task has passed become final (and equal to the brute
force), while with --idle-timeout-ms 0 none ever does."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kpi_brute  # noqa: E402
from shoplib import Broker, produce_lines, read_topic, run, start, stop, wait_caught_up, workdir  # noqa: E402

INPUTS = ["shop.clicks", "shop.orders", "shop.aftersales"]


def finals(bootstrap, prefix):
    out = {}
    for (_p, _o, k, v, _t) in read_topic(bootstrap, "shop.kpis"):
        d = json.loads(v)
        if d["final"]:
            out[k.decode()] = d
    return out


def main():
    work = workdir("analytics-idle")
    out = run(["simulate", "--stdout", "--seed", "8", "--start", "2024-06-01T10:00:00Z", "--rate", "5",
               "--events", "3000", "--users", "1", "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.startswith("shop.clicks\t")]
    events = [json.loads(l.split("\t", 2)[2]) for l in lines]
    want = {"%s@%d" % key: kpi_brute.kpis(a) for key, a in kpi_brute.windows(events).items()}
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0", "--set", "log.retention.hours=-1"])
    b.start()
    procs = []
    try:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "4", "--bootstrap", b.bootstrap])
        produce_lines(b.bootstrap, lines)
        # Without the timeout: the three silent tasks hold everything back.
        p = start(["process", "analytics", "--bootstrap", b.bootstrap, "--app-prefix", "nowait",
                   "--idle-timeout-ms", "0"], os.path.join(work, "nowait.log"))
        procs.append(p)
        wait_caught_up(b.bootstrap, "nowait-analytics", INPUTS, procs=[p])
        time.sleep(4)
        assert stop(p) == 0
        procs.remove(p)
        assert not finals(b.bootstrap, "nowait"), "windows became final with three silent tasks"
        # With it: the busy task's windows become final.
        p = start(["process", "analytics", "--bootstrap", b.bootstrap, "--idle-timeout-ms", "1500"],
                  os.path.join(work, "idle.log"))
        procs.append(p)
        wait_caught_up(b.bootstrap, "shopstream-analytics", INPUTS, procs=[p])
        got = {}
        deadline = time.time() + 30
        last_end = max(e["ts"] for e in events) - 5000
        closable = {k for k, w in want.items() if w["end"] <= last_end}
        while time.time() < deadline and not closable <= set(got):
            time.sleep(1)
            got = finals(b.bootstrap, "shopstream")
        assert stop(p) == 0
        procs.remove(p)
        missing = closable - set(got)
        assert not missing, "%d windows not final, e.g. %s" % (len(missing), sorted(missing)[:3])
        for k in closable:
            d = kpi_brute.compare(got[k], want[k])
            assert not d, (k, d)
        print("ok: no final window while three tasks were silent; with --idle-timeout-ms all %d "
              "windows the busy task passed are final and equal the brute force" % len(closable))
    finally:
        for p in procs:
            stop(p)
        b.stop()


if __name__ == "__main__":
    main()
