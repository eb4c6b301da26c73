"""Issue 7: `shopstream process recommend` learns from shop.clicks and
shop.orders as events arrive and publishes shop.recs: "product:<id>" (similar
products, never the product itself, best first), "user:<id>" (never an item
the user bought), "popular" (the fallback).  With two instances in the group
every product and user still gets its records, published by the instance
that owns its partition."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import (Broker, latest_by_key, produce_lines, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

INPUTS = ["shop.clicks", "shop.orders"]


def main():
    work = workdir("recommend")
    out = run(["simulate", "--stdout", "--seed", "9", "--rate", "50", "--events", "40000",
               "--time-scale", "100", "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]
    events = [json.loads(l.split("\t", 2)[2]) for l in lines]
    bought = {}
    lines_bought = {}
    viewed = set()
    for e in events:
        if e["type"] == "order_created":
            bought.setdefault(e["user_id"], set()).update(i["product_id"] for i in e["items"])
            lines_bought[e["user_id"]] = lines_bought.get(e["user_id"], 0) + len(e["items"])
        if e["type"] in ("product_view", "add_to_cart"):
            viewed.add(e["user_id"])
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    procs = []
    try:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "4", "--bootstrap", b.bootstrap])
        produce_lines(b.bootstrap, lines)
        procs = [start(["process", "recommend", "--bootstrap", b.bootstrap, "--partitions", "4"],
                       os.path.join(work, "recommend-%d.log" % k)) for k in range(2)]
        wait_caught_up(b.bootstrap, "shopstream-recommend", INPUTS, timeout=180, procs=procs)
        # The model learns through the observations topic after the inputs
        # are committed; a stop publishes whatever is still pending.
        deadline = time.time() + 60
        while time.time() < deadline:
            recs = latest_by_key(read_topic(b.bootstrap, "shop.recs"))
            if viewed <= {k[5:].decode() for k in recs if k.startswith(b"user:")} and b"popular" in recs:
                break
            time.sleep(1)
        time.sleep(2)
        for p in procs:
            assert stop(p) == 0, "a recommend instance did not stop cleanly"
        procs = []
        recs = latest_by_key(read_topic(b.bootstrap, "shop.recs"))
        users = {k[5:].decode(): json.loads(v) for k, v in recs.items() if k.startswith(b"user:")}
        missing = viewed - set(users)
        assert not missing, "%d users with views got no recommendations, e.g. %s" % (len(missing), sorted(missing)[:3])
        popular = json.loads(recs[b"popular"])["popular"]
        assert len(popular) == 20, popular
        products = {k[8:].decode(): json.loads(v) for k, v in recs.items() if k.startswith(b"product:")}
        assert len(products) > 100, len(products)
        for pid, v in products.items():
            sims = [h["product_id"] for h in v["similar"]]
            scores = [h["score"] for h in v["similar"]]
            assert pid not in sims, (pid, sims)
            assert scores == sorted(scores, reverse=True), (pid, scores)
        checked = 0
        for u, v in users.items():
            items = [h["product_id"] for h in v["recommended"]]
            assert len(items) == 20, (u, items)
            mine = bought.get(u, set())
            # (the model remembers a user's last 16 distinct purchased items)
            if 0 < len(mine) <= 16:
                assert not (set(items) & mine), "user %s is recommended what they bought: %s (%d purchases of %d products)" % (
                    u, set(items) & mine, lines_bought[u], len(mine))
                checked += 1
        assert checked > 50, checked
        print("ok: %d products, %d users (%d buyers checked), popular fallback of %d" % (
            len(products), len(users), checked, len(popular)))
    finally:
        for p in procs:
            stop(p)
        b.stop()


if __name__ == "__main__":
    main()
