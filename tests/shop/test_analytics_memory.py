"""Issue 6: memory stays bounded with many windows: a simulated stream over
three days (about 4,300 one-minute windows) goes through the analytics
processor, which must never hold more than a few windows per task and
size at once (closed windows are emitted, then dropped), and must have
published every one of them as final."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import Broker, produce_lines, read_topic, run, start, stop, wait_caught_up, workdir  # noqa: E402

INPUTS = ["shop.clicks", "shop.orders", "shop.aftersales"]


def main():
    work = workdir("analytics-mem")
    out = run(["simulate", "--stdout", "--seed", "3", "--start", "2024-03-01T00:00:00Z", "--rate", "0.4",
               "--duration", str(3 * 86400), "--users", "2000", "--time-scale", "100",
               "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]
    minutes = {json.loads(l.split("\t", 2)[2])["ts"] // 60000 for l in lines}
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0", "--set", "log.retention.hours=-1"])
    b.start()
    p = None
    try:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "3", "--bootstrap", b.bootstrap])
        produce_lines(b.bootstrap, lines)
        log = os.path.join(work, "analytics.log")
        p = start(["process", "analytics", "--bootstrap", b.bootstrap, "--finish-idle-ms", "1500"], log)
        wait_caught_up(b.bootstrap, "shopstream-analytics", INPUTS, timeout=300, procs=[p])
        import time
        deadline = time.time() + 60
        finals = set()
        while time.time() < deadline and len(finals) < len(minutes):
            finals = {k for (_p, _o, k, v, _t) in read_topic(b.bootstrap, "shop.kpis")
                      if k.startswith(b"1m@") and json.loads(v)["final"]}
            time.sleep(1)
        assert stop(p) == 0
        p = None
        assert len(finals) == len(minutes), (len(finals), len(minutes))
        summary = open(log).read()
        peak = int(re.search(r"(\d+) windows open at most", summary).group(1))
        # 3 tasks x 3 sizes, the current window and the next, and a little slack
        assert peak <= 3 * 3 * 4, "up to %d windows in memory for %d minutes of events" % (peak, len(minutes))
        print("ok: %d events, %d one-minute windows all final, at most %d windows in memory" % (
            len(lines), len(minutes), peak))
    finally:
        if p:
            stop(p)
        b.stop()


if __name__ == "__main__":
    main()
