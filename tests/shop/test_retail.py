"""Issues 5 and 6, done-when 1: replaying an Online Retail file through the
order processor and the analytics processor gives per-day order counts, GMV
and refund totals (from shop.order-state, and from the final 1d windows of
shop.kpis) equal to a direct computation from the CSV (retail_csv.per_day).
The real file is checked the same way by bench/online_retail.py."""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import retail_csv  # noqa: E402
from shoplib import (Broker, latest_by_key, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)


def main():
    work = workdir("orders-retail")
    text = retail_csv.generate(seed=5, invoices=600, days=8)
    path = os.path.join(work, "retail.csv")
    with open(path, "w") as f:
        f.write(text)
    want = retail_csv.per_day(text)
    assert sum(v[2] for v in want.values()) > 0 and sum(v[0] for v in want.values()) > 100

    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    proc = ana = None
    try:
        run(["replay", "online-retail", path, "--bootstrap", b.bootstrap, "--partitions", "3"])
        proc = start(["process", "orders", "--bootstrap", b.bootstrap, "--commit-interval-ms", "200"],
                     os.path.join(work, "orders.log"))
        ana = start(["process", "analytics", "--bootstrap", b.bootstrap, "--finish-idle-ms", "1500"],
                    os.path.join(work, "analytics.log"))
        wait_caught_up(b.bootstrap, "shopstream-orders", ["shop.orders", "shop.aftersales"], procs=[proc])
        assert stop(proc) == 0, "the processor did not stop cleanly"
        states = [json.loads(v) for v in latest_by_key(read_topic(b.bootstrap, "shop.order-state")).values()]
        got = retail_csv.per_day_from_states(states)
        assert got == want, "per-day figures differ:\n got  %s\n want %s" % (sorted(got.items()), sorted(want.items()))
        # Invoices are created and paid at once, so every order is paid.
        for s in states:
            assert s["status"] in ("paid", "refunded"), s
            if s["status"] == "paid":
                assert s["paid"] == s["amount"] and not s["external"], s
        dead = [json.loads(v) for (_p, _o, _k, v, _t) in read_topic(b.bootstrap, "shop.deadletter")]
        # Only cancellations of zero-priced rows (refund of 0) may be refused.
        for d in dead:
            assert "above zero" in d["reason"], d
        deadline = time.time() + 90
        while True:
            days = {}
            for (_p, _o, _k, v, _t) in read_topic(b.bootstrap, "shop.kpis"):
                d = json.loads(v)
                if d["window"] == "1d" and d["final"]:
                    day = datetime.datetime.fromtimestamp(d["start"] / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
                    days[day] = [d["orders"], d["gmv"], d["refunds"]]
                    assert d["currency"] == "GBP" and d["paid_revenue"] == d["gmv"], d
            if len(days) >= len(want) or time.time() > deadline:
                break
            time.sleep(0.5)
        assert days == want, "final 1d windows differ:\n got  %s\n want %s" % (sorted(days.items()), sorted(want.items()))
        assert stop(ana) == 0, "the analytics processor did not stop cleanly"
        print("ok: %d days, %d orders, %d refunds in cents; %d dead letters" % (
            len(want), sum(v[0] for v in want.values()), sum(v[2] for v in want.values()), len(dead)))
    finally:
        if proc:
            stop(proc)
        if ana:
            stop(ana)
        b.stop()


if __name__ == "__main__":
    main()
