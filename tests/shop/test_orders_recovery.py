"""Issue 5, done-when 2 and 3: the order processor's shop.order-state does
not depend on crashes, rebalances, duplicates or malformed records.

The same simulated events go to three brokers while processors run:
  A  clean input, one instance, never interrupted (the reference);
  B  input with duplicated and malformed records, one instance killed with
     SIGKILL twice mid-stream and restarted;
  C  clean input, three instances in one group, one killed with SIGKILL
     mid-stream (the other two take its partitions over).
Every key of shop.order-state must have the same last value in B and C as
in A, and every malformed record must be in B's shop.deadletter with a
reason."""
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import (Broker, latest_by_key, produce_lines, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

INPUTS = ["shop.orders", "shop.aftersales"]
GROUP = "shopstream-orders"
CHUNKS = 12


def simulated_lines():
    out = run(["simulate", "--stdout", "--seed", "11", "--start", "1700000000000", "--rate", "1",
               "--events", "60000", "--time-scale", "20", "--as-fast-as-possible"]).stdout
    return [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]


def dirty(lines, rnd):
    """Inserts duplicates of earlier records and malformed records; returns
    (lines, the malformed values)."""
    out = []
    bad = []
    for i, l in enumerate(lines):
        out.append(l)
        if i > 10 and rnd.random() < 0.08:
            out.append(lines[rnd.randrange(i)])  # a duplicate of an earlier record
        if i > 10 and rnd.random() < 0.01:
            ts = json.loads(l.split("\t", 2)[2])["ts"]
            k = len(bad)
            choices = [
                ("shop.orders", "bad-%d" % k, '{"id":"bad-%d","type":"order_paid",' % k),
                ("shop.orders", "bad-%d" % k, '{"id":"bad-%d","type":"order_teleported","ts":%d,"order_id":"bad-%d","user_id":"u1"}' % (k, ts, k)),
                ("shop.orders", "bad-%d" % k, '{"id":"bad-%d","type":"order_paid","ts":%d,"order_id":"bad-%d"}' % (k, ts, k)),
                ("shop.aftersales", "bad-%d" % k, '{"id":"bad-%d","type":"refund_issued","ts":%d,"order_id":"bad-%d","user_id":"u1","amount":"lots"}' % (k, ts, k)),
                ("shop.orders", "bad-%d" % k, 'not json at all %d' % k),
                ("shop.orders", "bad-%d" % k, '{"id":"bad-%d","type":"order_shipped","ts":%d,"order_id":"other-%d","user_id":"u1","carrier":"x"}' % (k, ts, k)),
            ]
            topic, key, value = choices[k % len(choices)]
            out.append("%s\t%s\t%s" % (topic, key, value))
            bad.append(value)
    return out, bad


def feed(bootstrap, lines, events, pause=0.4):
    """Produces lines in CHUNKS parts; sets events[i] after part i."""
    n = len(lines)
    for i in range(CHUNKS):
        produce_lines(bootstrap, lines[i * n // CHUNKS:(i + 1) * n // CHUNKS])
        events[i].set()
        time.sleep(pause)


def order_state(bootstrap):
    return latest_by_key(read_topic(bootstrap, "shop.order-state"))


def processor(b, work, name, extra=()):
    return start(["process", "orders", "--bootstrap", b.bootstrap, "--partitions", "6",
                  "--ship-sla-hours", "1", "--commit-interval-ms", "300",
                  "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"] + list(extra),
                 os.path.join(work, name + ".log"))


def run_case(work, name, lines, kills):
    """Runs processors against a fresh broker while lines are fed; kills is
    a list of (after chunk, action) with action 'kill-restart' or
    'kill-one' (of three instances).  Returns (broker, order-state)."""
    b = Broker(work, name=name, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    run(["topic", "create", "shop.orders", "--partitions", "6", "--bootstrap", b.bootstrap])
    run(["topic", "create", "shop.aftersales", "--partitions", "6", "--bootstrap", b.bootstrap])
    instances = 3 if any(a == "kill-one" for _c, a in kills) else 1
    procs = [processor(b, work, "%s-p%d" % (name, k)) for k in range(instances)]
    events = [threading.Event() for _ in range(CHUNKS)]
    t = threading.Thread(target=feed, args=(b.bootstrap, lines, events))
    t.start()
    restarts = 0
    for chunk, action in kills:
        events[chunk].wait(120)
        time.sleep(0.2)
        victim = procs.pop(0)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        if action == "kill-restart":
            restarts += 1
            procs.append(processor(b, work, "%s-r%d" % (name, restarts)))
    t.join()
    wait_caught_up(b.bootstrap, GROUP, INPUTS, timeout=240, procs=procs)
    for p in procs:
        assert stop(p) == 0, "%s: a processor did not stop cleanly" % name
    return b, order_state(b.bootstrap)


def main():
    work = workdir("orders-recovery")
    rnd = random.Random(3)
    lines = simulated_lines()
    dirty_lines, bad = dirty(lines, rnd)
    assert len(bad) >= 20, len(bad)
    brokers = []
    try:
        a, state_a = run_case(work, "a", lines, [])
        brokers.append(a)
        assert len(state_a) > 1000, len(state_a)
        statuses = {}
        for v in state_a.values():
            s = json.loads(v)["status"]
            statuses[s] = statuses.get(s, 0) + 1
        print("reference: %d orders, statuses %s" % (len(state_a), statuses))
        for want in ("paid", "shipped", "delivered", "cancelled", "refunded", "return_requested"):
            assert statuses.get(want), "no %s order in the reference run" % want
        assert any(json.loads(v)["sla_breached"] for v in state_a.values()), "no SLA breach"

        b, state_b = run_case(work, "b", dirty_lines, [(3, "kill-restart"), (7, "kill-restart")])
        brokers.append(b)
        c, state_c = run_case(work, "c", lines, [(4, "kill-one")])
        brokers.append(c)
        for name, st in (("b (duplicates, malformed, killed twice)", state_b),
                         ("c (three instances, one killed)", state_c)):
            missing = set(state_a) - set(st)
            extra = set(st) - set(state_a)
            diff = [k for k in state_a if k in st and st[k] != state_a[k]]
            assert not missing and not extra and not diff, "%s: %d missing, %d extra, %d differ; e.g. %s" % (
                name, len(missing), len(extra), len(diff),
                [(k, state_a.get(k), st.get(k)) for k in (list(diff) + list(missing) + list(extra))[:2]])
            print("%s: all %d keys equal" % (name, len(st)))

        dead = [json.loads(v) for (_p, _o, _k, v, _t) in read_topic(b.bootstrap, "shop.deadletter")]
        by_value = {}
        for d in dead:
            assert d.get("reason"), d
            if "value" in d:
                by_value.setdefault(d["value"], d["reason"])
        missing = [v for v in bad if v not in by_value]
        assert not missing, "%d malformed records not in shop.deadletter, e.g. %s" % (len(missing), missing[:3])
        print("b: all %d malformed records dead-lettered with a reason, e.g. %r" % (
            len(bad), sorted(set(by_value[v] for v in bad))[:6]))
        alerts = [json.loads(v) for (_p, _o, _k, v, _t) in read_topic(a.bootstrap, "shop.alerts")]
        assert alerts and all(x["type"] == "sla_breach" for x in alerts)
        print("ok")
    finally:
        for b in brokers:
            b.stop()


if __name__ == "__main__":
    main()
