"""Issue 6: out-of-order events within the allowed lateness land in their
window; events whose window has closed (largest ts seen - lateness passed
its end) are counted in late_events of the newest window of that size, not
in their own; the wider windows, still open, count them normally."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import (Broker, produce_lines, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

BASE = 1700000040000  # a minute boundary


def view(i, ts):
    e = {"id": "e%d" % i, "type": "page_view", "ts": ts, "user_id": "u1", "session_id": "s1"}
    return "shop.clicks\tu1\t" + json.dumps(e)


def main():
    work = workdir("analytics-late")
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    p = None
    try:
        offsets = [1000, 30000, 70000, 62000, 58000, 59000, 200000]
        # 62000 is out of order but its window [60000, 120000) is open (the
        # watermark is 70000 - 5000); 58000 and 59000 belong to [0, 60000),
        # which closed when 70000 arrived.
        produce_lines(b.bootstrap, [view(i, BASE + o) for i, o in enumerate(offsets)])
        p = start(["process", "analytics", "--bootstrap", b.bootstrap, "--partitions", "1",
                   "--lateness", "5000", "--finish-idle-ms", "2000"], os.path.join(work, "analytics.log"))
        wait_caught_up(b.bootstrap, "shopstream-analytics", ["shop.clicks"], procs=[p])
        want_keys = {"1m@%d" % BASE, "1m@%d" % (BASE + 60000), "1m@%d" % (BASE + 180000)}
        finals = {}
        deadline = time.time() + 60
        while time.time() < deadline and not want_keys <= set(finals):
            for (_p, _o, k, v, _t) in read_topic(b.bootstrap, "shop.kpis"):
                d = json.loads(v)
                if d["final"]:
                    finals[k.decode()] = d
            time.sleep(0.5)
        assert want_keys <= set(finals), sorted(finals)
        w0, w1, w3 = (finals[k] for k in sorted(want_keys, key=lambda k: int(k.split("@")[1])))
        assert (w0["pv"], w0["late_events"]) == (2, 0), w0
        assert (w1["pv"], w1["late_events"]) == (2, 2), w1
        assert (w3["pv"], w3["late_events"]) == (1, 0), w3
        hours = [d for k, d in finals.items() if k.startswith("1h@")]
        assert len(hours) == 1 and hours[0]["pv"] == 7 and hours[0]["late_events"] == 0, hours
        print("ok: in-lateness event counted in its window, 2 late events counted as late")
    finally:
        if p:
            stop(p)
        b.stop()


if __name__ == "__main__":
    main()
