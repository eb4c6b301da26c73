"""Issue 5, done-when 4: `shopstream process orders` runs unchanged against
another Kafka-protocol broker.  librdkafka's mock cluster (bin/mockbroker,
from ../shared/tools) and a shopstream broker get the same simulated events;
the processor, with the same command line, must leave the same
shop.order-state in both."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import (ROOT, Broker, latest_by_key, produce_lines, read_topic, run, start,  # noqa: E402
                     stop, wait_caught_up, workdir)

INPUTS = ["shop.orders", "shop.aftersales"]


TOPICS = INPUTS + ["shop.clicks", "shop.order-state", "shop.kpis", "shop.recs", "shop.alerts",
                   "shop.deadletter", "shopstream-orders-store-changelog"]


def create_topics(bootstrap, mock):
    """The mock cluster answers CreateTopics without a controller, which the
    Admin API refuses; it creates a topic (4 partitions) when a client asks
    for its metadata instead."""
    if not mock:
        for t in INPUTS:
            run(["topic", "create", t, "--partitions", "4", "--bootstrap", bootstrap])
        return
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for t in TOPICS:
        md = p.list_topics(t, timeout=10)
        assert len(md.topics[t].partitions) == 4, (t, md.topics[t].partitions)


def process_all(bootstrap, lines, work, name):
    create_topics(bootstrap, name == "mock")
    produce_lines(bootstrap, lines)
    p = start(["process", "orders", "--bootstrap", bootstrap, "--partitions", "4",
               "--commit-interval-ms", "300"], os.path.join(work, name + ".log"))
    try:
        wait_caught_up(bootstrap, "shopstream-orders", INPUTS, timeout=120, procs=[p])
    finally:
        rc = stop(p)
    assert rc == 0, "%s: the processor exited %s:\n%s" % (name, rc, open(os.path.join(work, name + ".log")).read()[-3000:])
    return latest_by_key(read_topic(bootstrap, "shop.order-state"))


def main():
    work = workdir("orders-mock")
    out = run(["simulate", "--stdout", "--seed", "5", "--start", "1700000000000", "--rate", "2",
               "--events", "20000", "--time-scale", "50", "--as-fast-as-possible"]).stdout
    lines = [l for l in out.splitlines() if l.split("\t", 1)[0] in INPUTS]
    mock_bin = os.path.join(ROOT, "bin", "mockbroker")
    if not os.path.exists(mock_bin):
        subprocess.run(["make", "-C", ROOT, "bin/mockbroker"], check=True, capture_output=True)
    mock = subprocess.Popen([mock_bin, "1"], stdout=subprocess.PIPE, text=True)
    b = Broker(work, extra=["--set", "group.initial.rebalance.delay.ms=0"])
    try:
        mock_bootstrap = mock.stdout.readline().strip()
        assert mock_bootstrap, "mockbroker printed no bootstrap address"
        on_mock = process_all(mock_bootstrap, lines, work, "mock")
        b.start()
        on_ours = process_all(b.bootstrap, lines, work, "ours")
        assert len(on_mock) > 200, len(on_mock)
        assert on_mock == on_ours, "order states differ: %d vs %d keys, %d differ" % (
            len(on_mock), len(on_ours), sum(1 for k in on_ours if on_mock.get(k) != on_ours[k]))
        print("ok: %d orders, same shop.order-state on librdkafka's mock cluster and on shopstream" % len(on_mock))
    finally:
        mock.terminate()
        mock.wait()
        b.stop()


if __name__ == "__main__":
    main()
