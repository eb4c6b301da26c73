"""`shopstream simulate` end to end: --stdout is determined by the seed (two
runs, byte-identical; another seed differs); a Kafka run against a real
broker puts exactly the summary's counts on shop.clicks / shop.orders /
shop.aftersales, every record is an event whose key is its order_id or
user_id and whose record timestamp is its ts; a paced run lasts its
duration; bad options fail with one sentence."""
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import Broker, read_topic, run, workdir  # noqa: E402

SUMMARY = re.compile(r"^simulated (\d+) events \((\d+) clicks, (\d+) orders, (\d+) aftersales\) "
                     r"in ([0-9.]+) s$", re.M)
TOPICS = ("shop.clicks", "shop.orders", "shop.aftersales")
ORDER_TYPES = {"order_created", "order_paid", "order_shipped", "order_delivered", "order_cancelled"}
CLICK_TYPES = {"page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
               "checkout", "purchase"}
AFTERSALES_TYPES = {"return_requested", "return_approved", "return_rejected", "return_received",
                    "refund_issued"}
TYPES = {"shop.clicks": CLICK_TYPES, "shop.orders": ORDER_TYPES,
         "shop.aftersales": AFTERSALES_TYPES}


def summary(stderr):
    m = SUMMARY.search(stderr)
    assert m, "no summary line in:\n" + stderr
    n, clicks, orders, aftersales = (int(m.group(k)) for k in range(1, 5))
    assert n == clicks + orders + aftersales, m.group(0)
    return {"events": n, "shop.clicks": clicks, "shop.orders": orders,
            "shop.aftersales": aftersales, "seconds": float(m.group(5))}


def key_of(topic, ev):
    return ev["user_id"] if topic == "shop.clicks" else ev["order_id"]


def test_stdout_deterministic():
    args = ["simulate", "--stdout", "--as-fast-as-possible", "--events", "30000",
            "--time-scale", "2000", "--seed", "17", "--start", "2024-05-01T18:00:00Z"]
    a = run(args)
    b = run(args)
    assert a.stdout == b.stdout, "same seed, different streams"
    lines = a.stdout.splitlines()
    assert len(lines) == 30000, len(lines)
    counts = {t: 0 for t in TOPICS}
    last_ts = 0
    ids = set()
    for line in lines:
        topic, key, value = line.split("\t")
        ev = json.loads(value)
        assert ev["type"] in TYPES[topic], line
        assert key == key_of(topic, ev), line
        assert ev["ts"] >= last_ts, line
        assert ev["ts"] >= 1714586400000, line  # the start
        last_ts = ev["ts"]
        ids.add(ev["id"])
        counts[topic] += 1
    assert len(ids) == len(lines), "event ids are not unique"
    s = summary(a.stderr)
    for t in TOPICS:
        assert counts[t] == s[t], (t, counts[t], s)
    assert counts["shop.aftersales"] > 0 and counts["shop.orders"] > 0

    c = run(args[:-4] + ["--seed", "18", "--start", "2024-05-01T18:00:00Z"])
    assert c.stdout != a.stdout, "another seed gave the same stream"
    print("stdout: 30000 events, identical twice, %s" % counts)


def topic_counts(bootstrap):
    return {t: len(read_topic(bootstrap, t)) for t in TOPICS}


def test_kafka(broker):
    p = run(["simulate", "--bootstrap", broker.bootstrap, "--as-fast-as-possible",
             "--events", "20000", "--time-scale", "1000", "--seed", "5"], timeout=120)
    s = summary(p.stderr)
    assert s["events"] == 20000, s
    total = 0
    ids = set()
    for topic in TOPICS:
        recs = read_topic(broker.bootstrap, topic)
        assert len(recs) == s[topic], (topic, len(recs), s)
        partitions = set()
        for (part, _off, key, value, ts) in recs:
            ev = json.loads(value)
            assert ev["type"] in TYPES[topic], value
            assert key is not None and key.decode() == key_of(topic, ev), (key, value)
            assert ts == ev["ts"], (ts, value)
            ids.add(ev["id"])
            partitions.add(part)
        if len(recs) > 100:
            assert len(partitions) > 1, (topic, partitions)  # keyed over 6 partitions
        total += len(recs)
    assert total == 20000
    assert len(ids) == 20000, "event ids are not unique"
    assert s["shop.aftersales"] > 0, s
    print("kafka: %s in %.1f s" % (s, s["seconds"]))
    return s


def test_paced(broker, before):
    t0 = time.time()
    p = run(["simulate", "--bootstrap", broker.bootstrap, "--rate", "200", "--duration", "3",
             "--seed", "6"], timeout=60)
    wall = time.time() - t0
    s = summary(p.stderr)
    assert 2.9 <= s["seconds"] <= 4.5, s
    assert 2.9 <= wall <= 6.0, wall
    assert s["events"] > 50, s  # 200/s times the daily curve (>= 0.39) times 3 s
    after = topic_counts(broker.bootstrap)
    for t in TOPICS:
        assert after[t] - before[t] == s[t], (t, before, after, s)
    print("paced: %s, %.2f s wall" % (s, wall))


def test_bad_options():
    for args in (["--rate", "0"], ["--users", "x"], ["--start", "yesterday"], ["--bogus"],
                 ["--time-scale", "-1"], ["extra"]):
        p = run(["simulate", "--stdout"] + args, check=False)
        assert p.returncode != 0, args
        assert p.stdout == "", args
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("shopstream simulate: "), (args, p.stderr)
    p = run(["simulate", "--help"])
    assert "usage: shopstream simulate" in p.stdout


def main():
    test_bad_options()
    test_stdout_deterministic()
    work = workdir("simulate")
    broker = Broker(work)
    broker.start()
    try:
        s = test_kafka(broker)
        test_paced(broker, {t: s[t] for t in TOPICS})
    except Exception:
        print(broker.tail(), file=sys.stderr)
        raise
    finally:
        broker.stop()
    shutil.rmtree(work, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
