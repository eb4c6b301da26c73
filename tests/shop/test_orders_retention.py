"""Issue 5 (bounded state): the order processor forgets an order
--order-retention-days after its newest event (event time), so its store
holds only recent orders, while shop.order-state keeps every order's last
state.  Three simulated days with a one-day retention."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import (Broker, latest_by_key, produce_lines, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

INPUTS = ["shop.orders", "shop.aftersales"]


def main():
    work = workdir("orders-retention")
    out = run(["simulate", "--stdout", "--seed", "4", "--start", "2024-05-01T00:00:00Z", "--rate", "0.5",
               "--duration", str(3 * 86400), "--time-scale", "50", "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]
    orders = {json.loads(l.split("\t", 2)[2])["order_id"] for l in lines if '"order_created"' in l}
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0", "--set", "log.retention.hours=-1"])
    b.start()
    p = None
    try:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "3", "--bootstrap", b.bootstrap])
        produce_lines(b.bootstrap, lines)
        log = os.path.join(work, "orders.log")
        p = start(["process", "orders", "--bootstrap", b.bootstrap, "--order-retention-days", "1"], log)
        wait_caught_up(b.bootstrap, "shopstream-orders", INPUTS, timeout=180, procs=[p])
        assert stop(p) == 0
        p = None
        m = re.search(r"(\d+) orders held, (\d+) forgotten", open(log).read())
        held, forgotten = int(m.group(1)), int(m.group(2))
        states = latest_by_key(read_topic(b.bootstrap, "shop.order-state"))
        assert {k.decode() for k in states} >= orders, "shop.order-state lost orders"
        # About one day of the three is held (plus the lateness of each
        # partition's watermark); the rest is forgotten.
        assert forgotten > len(orders) / 2 and held < len(orders) / 2, (held, forgotten, len(orders))
        assert held + forgotten == len(states), (held, forgotten, len(states))
        print("ok: %d orders over 3 days, %d held, %d forgotten, all %d in shop.order-state" % (
            len(orders), held, forgotten, len(states)))
    finally:
        if p:
            stop(p)
        b.stop()


if __name__ == "__main__":
    main()
