#!/usr/bin/python3
"""Consumer groups with real clients, and `shopstream group ...`.

Every test starts its own broker (free port, own data dir,
group.initial.rebalance.delay.ms=0) and stops it.
  seed        the seed program of DESIGN.md, verbatim (bootstrap port
              substituted): the first run on a fresh broker prints nothing,
              the second prints exactly b'message' once.
  split-kafka-python / split-confluent / split-librdkafka / split-mixed
              three members of one group split a 6-partition topic without
              overlap; one is killed with SIGKILL and the survivors take its
              partitions within the session timeout (6 s, plus a margin for
              the heartbeat that notices the rebalance); every produced
              record is consumed (no gap; duplicates only after the kill);
              members that close cleanly commit their position, and a
              restarted member resumes exactly there, also after a broker
              restart (SIGTERM, same data dir and port).
  describe    `shopstream group describe` and `group list` agree with
              kafka-python's KafkaAdminClient and confluent-kafka's
              AdminClient.list_groups on state, members, assignments and
              committed offsets; its lag is right while a producer runs
              (within the watermarks and commits read around it) and exact
              once it stops.
  reset       `group reset-offsets` (earliest, offset, datetime, latest,
              dry run; refused while members are active), then a consumer in
              the group starts exactly there; `group delete` removes the
              group and its offsets (also across a broker restart).
usage: test_groups.py [TEST...]   Prints per-check lines, then "N passed, N failed".
Run with Debian's /usr/bin/python3.
"""
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grouplib as gl  # noqa: E402
from grouplib import Broker, Member, wait_for  # noqa: E402

from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

SESSION_S = gl.SESSION_MS / 1000.0
# How long after SIGKILL the survivors may take to own every partition: the
# session timeout, then up to one heartbeat interval (1 s) for each survivor
# to hear of the rebalance, and the JoinGroup/SyncGroup round trips.
FAILOVER_LIMIT_S = SESSION_S + 3.0

SEED = """from kafka import KafkaProducer, KafkaConsumer
producer = KafkaProducer(bootstrap_servers='localhost:9092')
producer.send('topic', b'message')
consumer = KafkaConsumer('topic', group_id='group', bootstrap_servers='localhost:9092')
for msg in consumer:
    print(msg.value)
"""

WORK = None
RDKAFKA_MEMBER = None


def workdir(name):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return d


def finish(checks, name, broker, members=()):
    """Stops what a test started; a broker that does not exit 0 on SIGTERM
    fails the test.  Prints the broker log tail when a check failed."""
    for m in members:
        if m.alive():
            m.kill()
    if broker.proc and broker.proc.poll() is None:
        rc = broker.stop()
        checks.check("%s: broker exits 0 on SIGTERM" % name, rc == 0, "exit status %s" % rc)
    if any(f.startswith(name) for f in checks.failures):
        sys.stdout.write("---- %s broker log tail ----\n%s\n" % (name, broker.tail()))


# ---------------------------------------------------------------- a. seed

def run_seed(script, timeout, stop_when):
    """Runs the seed program until stop_when(stdout so far) is true or
    timeout passes, then SIGTERM.  Returns its stdout."""
    p = subprocess.Popen([gl.PY, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = []
    import threading
    t = threading.Thread(target=lambda: out.extend(p.stdout), daemon=True)
    t.start()
    wait_for(lambda: stop_when(b"".join(out)) or p.poll() is not None, timeout)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    t.join(5)
    err = p.stderr.read().decode(errors="replace")
    return b"".join(out), p.returncode, err


def test_seed(checks):
    name = "seed"
    broker = Broker(workdir(name), name)
    broker.start()
    try:
        script = os.path.join(workdir(name), "seed.py")
        with open(script, "w") as f:
            f.write(SEED.replace("localhost:9092", "localhost:%d" % broker.port))

        def committed_topic():
            try:
                return gl.committed(broker.bootstrap, "group", "topic", 1).get(0, -1) >= 0
            except Exception:
                return False

        # First run: wait until the group has committed its (latest) position,
        # as a long-running consumer does after auto.commit.interval (5 s).
        out1, rc1, err1 = run_seed(script, 30, lambda out: out or committed_topic())
        checks.check("seed: first run on a fresh broker prints nothing", out1 == b"",
                     "printed %r (exit %s, stderr %s)" % (out1, rc1, err1[-500:]))
        checks.check("seed: first run commits the group's position", committed_topic(),
                     "no committed offset for group 'group' on topic 'topic' after 30 s")
        # Second run: wait for the first line, then a while longer for any repeat.
        seen = {}

        def got_line(out):
            if out and "t" not in seen:
                seen["t"] = time.time()
            return "t" in seen and time.time() - seen["t"] > 3

        out2, rc2, err2 = run_seed(script, 40, got_line)
        checks.check("seed: second run prints exactly b'message' once",
                     out2 == b"b'message'\n",
                     "printed %r (exit %s, stderr %s)" % (out2, rc2, err2[-500:]))
    finally:
        finish(checks, name, broker)


# ---------------------------------------------------------------- b. split

def consumed_union(members):
    out = []
    for m in members:
        out.extend(m.records())
    return out


def check_resume(checks, name, label, broker, kind, topic, group, assignor, nparts, producer, n):
    """Produces n records, starts one member of kind in group and checks it
    starts at the group's committed offsets and consumes exactly the new
    records.  Closes it cleanly.  Returns the member."""
    before = gl.committed(broker.bootstrap, group, topic, nparts)
    ends = gl.watermarks(broker.bootstrap, topic, nparts)
    checks.check("%s: %s: committed offsets are the log end (%s)" % (name, label, before),
                 all(before[p] == ends[p][1] for p in range(nparts)),
                 "committed %s, log end %s" % (before, {p: ends[p][1] for p in ends}))
    start_acked = producer.acked_set()
    producer.produce(n)
    new = producer.acked_set() - start_acked
    m = Member(kind, broker.bootstrap, topic, group, "%s-%s-restart" % (kind, label.replace(" ", "-")),
               assignor, RDKAFKA_MEMBER)
    got_all = wait_for(lambda: {(p, o) for p, o, _ in m.records()} >= new, 30)
    recs = m.records()
    first = {}
    for p, o, _ in recs:
        first.setdefault(p, o)
    err = None
    if len(new) != n:
        err = "only %d of %d new records were acknowledged" % (len(new), n)
    elif not got_all:
        err = "consumed %d of the %d new records in 30 s (%s)" % (
            len({(p, o) for p, o, _ in recs} & new), n, m.describe())
    else:
        wrong = {p: (first.get(p), before[p]) for p in range(nparts) if first.get(p) != before[p]}
        extra = [(p, o) for p, o, _ in recs if (p, o) not in new]
        dups = len(recs) - len({(p, o) for p, o, _ in recs})
        if wrong:
            err = "first offsets (got, committed) differ: %s" % wrong
        elif extra or dups:
            err = "%d records from before the commit, %d duplicates" % (len(extra), dups)
    checks.result("%s: %s: a restarted %s member resumes exactly after the last commit" % (name, label, kind), err)
    checks.check("%s: %s: the restarted member closes cleanly" % (name, label), m.close(),
                 m.describe())
    return m


def split_test(checks, name, kinds, assignor):
    broker = Broker(workdir(name), name)
    broker.start()
    members = []
    topic, group, nparts = "split6", "split-" + name, 6
    try:
        gl.create_topic(broker.bootstrap, topic, nparts)
        members = [Member(kind, broker.bootstrap, topic, group, "%s-%d" % (kind, i), assignor,
                          RDKAFKA_MEMBER) for i, kind in enumerate(kinds)]
        t0 = time.time()
        ok = wait_for(lambda: gl.split_ok(members, nparts) is None, 40)
        why = gl.split_ok(members, nparts)
        if not checks.check("%s: 3 members split 6 partitions disjointly, covering all" % name, ok,
                            "%s after 40 s: %s; members: %s" % (
                                why, {m.client_id: sorted(m.assignment()) for m in members},
                                "; ".join(m.describe() for m in members))):
            return
        gl.log("%s: split after %.1f s: %s" % (name, time.time() - t0,
                                             {m.client_id: sorted(m.assignment()) for m in members}))

        producer = gl.BackgroundProducer(broker.bootstrap, topic, nparts, rate=300)
        producer.start()
        time.sleep(2.0)
        stray = {}
        for m in members:
            parts = m.assignment()
            bad = {p for p, _, _ in m.records() if p not in parts}
            if bad:
                stray[m.client_id] = sorted(bad)
        checks.check("%s: each member gets records only of its own partitions" % name,
                     not stray and all(m.records() for m in members),
                     "stray partitions %s; records per member %s" % (
                         stray, {m.client_id: len(m.records()) for m in members}))

        victim = members[1]
        survivors = [m for m in members if m is not victim]
        victim_parts = sorted(victim.assignment())
        kill_t = time.time()
        victim.kill()
        ok = wait_for(lambda: gl.split_ok(survivors, nparts) is None, SESSION_S + 20)
        took = time.time() - kill_t
        checks.check("%s: after SIGKILL of %s, its partitions %s move to the survivors within %.0f s"
                     % (name, victim.client_id, victim_parts, FAILOVER_LIMIT_S),
                     ok and took <= FAILOVER_LIMIT_S,
                     "took %.1f s (%s): %s" % (took, "done" if ok else "not done",
                                               gl.split_ok(survivors, nparts)))
        gl.log("%s: failover took %.1f s: %s" % (name, took,
                                                 {m.client_id: sorted(m.assignment()) for m in survivors}))
        time.sleep(1.0)
        producer.stop()
        acked = producer.acked_set()
        drained = wait_for(lambda: {(p, o) for p, o, _ in consumed_union(members)} >= acked, 30)
        recs = consumed_union(members)
        got = {(p, o) for p, o, _ in recs}
        missing = sorted(acked - got)
        checks.check("%s: every produced record is consumed (%d records, no gap)" % (name, len(acked)),
                     drained and not producer.errors and len(acked) > 0,
                     "%d missing, first %s; producer errors %s" % (len(missing), missing[:5],
                                                                   producer.errors[:3]))
        phantom = sorted(got - acked)
        checks.check("%s: nothing is consumed that was not produced" % name, not phantom,
                     "%d unknown (partition, offset), first %s" % (len(phantom), phantom[:5]))
        before = [(p, o) for p, o, t in recs if t < kill_t]
        dups_before = len(before) - len(set(before))
        dups_after = len(recs) - len(got)
        checks.check("%s: no duplicates before the kill (%d after it, allowed)" % (name, dups_after),
                     dups_before == 0, "%d duplicate deliveries before the kill" % dups_before)

        closed = [m.close() for m in survivors]
        checks.check("%s: the survivors close cleanly" % name, all(closed),
                     "; ".join(m.describe() for m in survivors))

        check_resume(checks, name, "restart", broker, kinds[0], topic, group, assignor, nparts,
                     producer, 60)

        rc = broker.stop()
        checks.check("%s: broker exits 0 on SIGTERM" % name, rc == 0, "exit status %s" % rc)
        broker.start()
        producer2 = gl.BackgroundProducer(broker.bootstrap, topic, nparts, start=producer.next)
        check_resume(checks, name, "after broker restart", broker, kinds[-1], topic, group,
                     assignor, nparts, producer2, 60)
    finally:
        finish(checks, name, broker, members)


def test_split_kafka_python(checks):
    split_test(checks, "split-kafka-python", ["kafka-python"] * 3, "range")


def test_split_confluent(checks):
    split_test(checks, "split-confluent", ["confluent"] * 3, "roundrobin")


def test_split_librdkafka(checks):
    split_test(checks, "split-librdkafka", ["librdkafka"] * 3, "range")


def test_split_mixed(checks):
    split_test(checks, "split-mixed", ["kafka-python", "confluent", "librdkafka"], "roundrobin")


# ---------------------------------------------------------------- c. describe

def kp_admin(bootstrap):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-groups-admin")


def kp_describe(admin, group):
    """kafka-python's view: (state, protocol_type, protocol,
    {member_id: (client_id, host, {topic: [partitions]})})."""
    g = admin.describe_consumer_groups([group])[0]
    members = {}
    for m in g.members:
        asg = {}
        if m.member_assignment:
            for t, ps in m.member_assignment.assignment:
                asg[t] = sorted(ps)
        members[m.member_id] = (m.client_id, m.client_host, asg)
    return g.state, g.protocol_type, g.protocol, members


def cf_describe(bootstrap, group):
    """confluent-kafka's view (list_groups), with the assignment decoded here."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    gs = [g for g in admin.list_groups(group, timeout=10) if g.id == group]
    if not gs:
        return None
    g = gs[0]
    members = {m.id: (m.client_id, m.client_host, gl.decode_assignment(m.assignment))
               for m in g.members}
    return g.state, g.protocol_type, g.protocol, members


def cli_describe(bootstrap, group):
    rc, out, err = gl.cli("group", "describe", group, "--bootstrap", bootstrap)
    if rc != 0:
        raise RuntimeError("group describe exited %d: %s" % (rc, err.strip()))
    d = gl.parse_describe(out)
    members = {m["id"]: (m.get("client-id") or "", m.get("host") or "", m["assignment"])
               for m in d["members"]}
    f = d["fields"]
    return (f.get("state"), "" if f.get("protocol-type") == "-" else f.get("protocol-type"),
            "" if f.get("assignor") == "-" else f.get("assignor"), members), d


def test_describe(checks):
    name = "describe"
    broker = Broker(workdir(name), name)
    broker.start()
    members = []
    topic, group, nparts = "lagged", "lag-group", 3
    b = broker.bootstrap
    try:
        gl.create_topic(b, topic, nparts)
        members = [Member("kafka-python", b, topic, group, "kp-lag", "range"),
                   Member("confluent", b, topic, group, "cf-lag", "range")]
        ok = wait_for(lambda: gl.split_ok(members, nparts) is None, 40)
        if not checks.check("describe: two members split the topic", ok,
                            "%s; %s" % (gl.split_ok(members, nparts),
                                        "; ".join(m.describe() for m in members))):
            return
        producer = gl.BackgroundProducer(b, topic, nparts, rate=150)
        producer.start()
        time.sleep(1.5)

        # Membership, state and assignments, three ways, while records flow.
        admin = kp_admin(b)
        mine, d = cli_describe(b, group)
        kp = kp_describe(admin, group)
        cf = cf_describe(b, group)
        checks.check("describe: state Stable, protocol type consumer, assignor range",
                     mine[:3] == ("Stable", "consumer", "range"), "shopstream says %s" % (mine[:3],))
        checks.check("describe: agrees with kafka-python's describe_consumer_groups",
                     mine == kp, "shopstream %s\nkafka-python %s" % (mine, kp))
        checks.check("describe: agrees with confluent-kafka's list_groups",
                     cf is not None and mine == cf, "shopstream %s\nconfluent %s" % (mine, cf))
        hosts = sorted(v[1] for v in mine[3].values())
        checks.check("describe: member host is '/127.0.0.1', as Kafka reports it "
                     "(InetAddress.toString() of the client's address, no port)",
                     hosts == ["/127.0.0.1"] * len(members), "hosts %s" % hosts)
        reported = {m.client_id: sorted(m.assignment()) for m in members}
        described = {v[0]: sorted(v[2].get(topic, [])) for v in mine[3].values()}
        checks.check("describe: assignments match what the members were given",
                     reported == described, "members say %s, describe %s" % (reported, described))
        row_owner = {r["partition"]: r["consumer"] for r in d["rows"]}
        by_id = {mid: v[2].get(topic, []) for mid, v in mine[3].items()}
        checks.check("describe: each offsets row names the member that owns the partition",
                     all(row_owner.get(p) in by_id and p in by_id[row_owner[p]] for p in range(nparts)),
                     "rows %s, members %s" % (row_owner, by_id))

        # Lag while the producer runs: bracketed by reads before and after
        # (once every partition has a commit, so the figures are exercised).
        wait_for(lambda: min(gl.committed(b, group, topic, nparts).values()) >= 0, 10, step=0.3)
        errs = []
        for _ in range(3):
            wm0 = gl.watermarks(b, topic, nparts)
            co0 = gl.committed(b, group, topic, nparts)
            _, d = cli_describe(b, group)
            co1 = gl.committed(b, group, topic, nparts)
            wm1 = gl.watermarks(b, topic, nparts)
            rows = {r["partition"]: r for r in d["rows"] if r["topic"] == topic}
            for p in range(nparts):
                r = rows.get(p)
                if not r or r["end"] is None:
                    errs.append("partition %d: no row / no log end: %s" % (p, r))
                    continue
                if not wm0[p][1] <= r["end"] <= wm1[p][1]:
                    errs.append("partition %d: log end %d outside [%d, %d]" % (p, r["end"], wm0[p][1], wm1[p][1]))
                if r["current"] is None and co0[p] == -1:
                    if r["lag"] is not None:
                        errs.append("partition %d: lag %s without a committed offset" % (p, r["lag"]))
                elif r["current"] is None or not co0[p] <= r["current"] <= co1[p]:
                    errs.append("partition %d: current %s outside [%d, %d]" % (p, r["current"], co0[p], co1[p]))
                elif r["lag"] != r["end"] - r["current"]:
                    errs.append("partition %d: lag %s != %d - %d" % (p, r["lag"], r["end"], r["current"]))
            time.sleep(0.5)
        checks.check("describe: lag figures are right while a producer runs", not errs, "; ".join(errs[:4]))

        producer.stop()
        acked = producer.acked_set()
        ends = gl.watermarks(b, topic, nparts)
        caught_up = wait_for(lambda: gl.committed(b, group, topic, nparts) ==
                             {p: ends[p][1] for p in range(nparts)}, 20, step=0.3)
        checks.check("describe: the members consume and commit everything (%d records)" % len(acked),
                     caught_up, "committed %s, log end %s" % (gl.committed(b, group, topic, nparts), ends))
        _, d = cli_describe(b, group)
        kpo = {tp.partition: om.offset for tp, om in admin.list_consumer_group_offsets(group).items()
               if tp.topic == topic}
        rows = {r["partition"]: (r["current"], r["end"], r["lag"]) for r in d["rows"]}
        want = {p: (ends[p][1], ends[p][1], 0) for p in range(nparts)}
        checks.check("describe: exact once the producer stops (current = committed = log end, lag 0)",
                     rows == want and kpo == {p: ends[p][1] for p in range(nparts)},
                     "describe %s, want %s, kafka-python offsets %s" % (rows, want, kpo))

        # Members gone: Empty, no owners, and an exact lag of what follows.
        closed = [m.close() for m in members]
        checks.check("describe: the members close cleanly", all(closed),
                     "; ".join(m.describe() for m in members))
        extra = {0: 5, 1: 7, 2: 9}
        for p, n in extra.items():
            for _ in range(n):
                producer.p.produce(topic, value=b"x", partition=p)
        producer.p.flush(10)
        mine, d = cli_describe(b, group)
        kp = kp_describe(admin, group)
        cf = cf_describe(b, group)
        rows = {r["partition"]: (r["current"], r["end"], r["lag"], r["consumer"]) for r in d["rows"]}
        want = {p: (ends[p][1], ends[p][1] + extra[p], extra[p], None) for p in range(nparts)}
        checks.check("describe: an Empty group shows no members and the exact lag",
                     mine[0] == "Empty" and not mine[3] and rows == want
                     and d["fields"].get("members") == "0",
                     "state %s members %s rows %s want %s" % (mine[0], mine[3], rows, want))
        checks.check("describe: kafka-python and confluent-kafka agree the group is Empty",
                     kp[0] == "Empty" and not kp[3] and cf is not None and cf[0] == "Empty" and not cf[3],
                     "kafka-python %s, confluent %s" % (kp, cf))

        # group list against both clients' lists.
        rc, out, err = gl.cli("group", "list", "--bootstrap", b)
        listed = [line.split(" ") for line in out.splitlines()]
        kpl = sorted(admin.list_consumer_groups())
        cfl = sorted(g.id for g in AdminClient({"bootstrap.servers": b}).list_groups(timeout=10))
        checks.check("list: one line 'lag-group Empty consumer', the same groups as both clients",
                     rc == 0 and listed == [[group, "Empty", "consumer"]] and kpl == [(group, "consumer")]
                     and cfl == [group],
                     "exit %d, shopstream %s, kafka-python %s, confluent %s, stderr %s" % (
                         rc, listed, kpl, cfl, err.strip()))
        admin.close()
    finally:
        finish(checks, name, broker, members)


# ---------------------------------------------------------------- d. reset and delete

def first_offsets(bootstrap, topic, group, nparts, timeout=20):
    """Joins group with a confluent-kafka consumer that never commits and
    returns {partition: offset of the first record it is given}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": gl.SESSION_MS,
                  "heartbeat.interval.ms": 1000})
    c.subscribe([topic])
    first = {}
    deadline = time.time() + timeout
    try:
        while len(first) < nparts and time.time() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    return first


def iso(ms, zone_minutes=0):
    tz = datetime.timezone(datetime.timedelta(minutes=zone_minutes))
    return datetime.datetime.fromtimestamp(ms / 1000.0, tz).isoformat(timespec="milliseconds")


def test_reset(checks):
    name = "reset"
    broker = Broker(workdir(name), name)
    broker.start()
    members = []
    topic, group, nparts, per = "resettable", "reset-group", 2, 20
    b = broker.bootstrap
    try:
        gl.create_topic(b, topic, nparts)
        # Record i of each partition has timestamp base + i seconds.
        base = (int(time.time()) - 3600) * 1000
        producer = gl.BackgroundProducer(b, topic, nparts,
                                         timestamp_ms=lambda i: base + (i // nparts) * 1000)
        producer.produce(per * nparts)
        ends = gl.watermarks(b, topic, nparts)
        checks.check("reset: setup: %d records per partition" % per,
                     all(ends[p] == (0, per) for p in range(nparts)), "watermarks %s" % ends)

        def reset(*args):
            return gl.cli("group", "reset-offsets", group, "--topic", topic, "--bootstrap", b, *args)

        def expect_plan(label, out, want):
            lines = out.splitlines()
            got = {int(w[1]): int(w[2]) for w in (ln.split(" ") for ln in lines[1:])}
            return checks.check("reset: %s prints the plan %s" % (label, want),
                                lines[:1] == ["TOPIC PARTITION NEW-OFFSET"] and got == want,
                                "printed %r" % out)

        # A member is active: refused, and nothing changes.
        m = Member("confluent", b, topic, group, "cf-reset", "range")
        members.append(m)
        wait_for(lambda: gl.split_ok([m], nparts) is None, 30)
        wait_for(lambda: len(m.records()) >= per * nparts, 20)
        time.sleep(1.5)  # an auto-commit
        before = gl.committed(b, group, topic, nparts)
        rc, out, err = reset("--to-earliest")
        after = gl.committed(b, group, topic, nparts)
        checks.check("reset: refused while the group has an active member",
                     rc != 0 and "active" in err and before == after and out == "",
                     "exit %d, stdout %r, stderr %r, offsets %s -> %s" % (rc, out, err, before, after))
        rc, out, err = gl.cli("group", "delete", group, "--bootstrap", b)
        checks.check("delete: refused while the group has an active member",
                     rc != 0 and "active members" in err,
                     "exit %d, stdout %r, stderr %r" % (rc, out, err))
        checks.check("reset: setup: the member closes cleanly", m.close(), m.describe())
        committed_end = gl.committed(b, group, topic, nparts)
        checks.check("reset: setup: the group committed the log end", committed_end == {0: per, 1: per},
                     "committed %s" % committed_end)

        rc, out, err = reset("--to-earliest")
        if checks.check("reset: --to-earliest exits 0", rc == 0, err.strip()):
            expect_plan("--to-earliest", out, {0: 0, 1: 0})
        got = first_offsets(b, topic, group, nparts)
        checks.check("reset: after --to-earliest a consumer starts at 0", got == {0: 0, 1: 0}, "got %s" % got)

        rc, out, err = reset("--to-offset", "7", "--partition", "1")
        if checks.check("reset: --to-offset 7 --partition 1 exits 0", rc == 0, err.strip()):
            expect_plan("--to-offset 7 --partition 1", out, {1: 7})
        got = first_offsets(b, topic, group, nparts)
        checks.check("reset: then partition 1 starts at 7 and partition 0 stays at 0",
                     got == {0: 0, 1: 7}, "got %s" % got)

        # Records at base + 5 s .. : 5.5 s after base is first reached by record 6.
        when = base + 5500
        rc, out, err = reset("--to-datetime", iso(when))
        if checks.check("reset: --to-datetime %s exits 0" % iso(when), rc == 0, err.strip()):
            expect_plan("--to-datetime", out, {0: 6, 1: 6})
        got = first_offsets(b, topic, group, nparts)
        checks.check("reset: after --to-datetime a consumer starts at the first record at or after it",
                     got == {0: 6, 1: 6}, "got %s" % got)
        rc2, out2, err2 = reset("--to-datetime", iso(when, 120), "--dry-run")
        checks.check("reset: the same instant in +02:00 gives the same plan",
                     rc2 == 0 and out2 == out, "exit %d: %r vs %r %s" % (rc2, out2, out, err2.strip()))
        rc2, out2, err2 = reset("--to-datetime", "2999-01-01T00:00:00Z", "--dry-run")
        if checks.check("reset: a datetime after every record exits 0", rc2 == 0, err2.strip()):
            expect_plan("a datetime after every record (the log end)", out2, {0: per, 1: per})

        before = gl.committed(b, group, topic, nparts)
        rc, out, err = reset("--to-latest", "--dry-run")
        after = gl.committed(b, group, topic, nparts)
        checks.check("reset: --dry-run prints the plan and commits nothing",
                     rc == 0 and "dry run" in err and before == after == {0: 6, 1: 6},
                     "exit %d, stderr %r, offsets %s -> %s" % (rc, err, before, after))
        if rc == 0:
            expect_plan("--to-latest --dry-run", out, {0: per, 1: per})
        rc, out, err = reset("--to-offset", "99")
        checks.check("reset: --to-offset past the end is clamped to the log end",
                     rc == 0 and gl.committed(b, group, topic, nparts) == {0: per, 1: per},
                     "exit %d, %r %r" % (rc, out, err))
        rc, out, err = reset("--to-latest")
        producer.produce(nparts)  # offset `per` in each partition
        got = first_offsets(b, topic, group, nparts)
        checks.check("reset: after --to-latest a consumer starts at the new records",
                     rc == 0 and got == {0: per, 1: per}, "exit %d, got %s, %s" % (rc, got, err.strip()))

        rc, out, err = gl.cli("group", "reset-offsets", group, "--topic", topic, "--bootstrap", b,
                              "--to-earliest", "--partition", "5")
        checks.check("reset: a partition the topic does not have is an error",
                     rc != 0 and "no partition 5" in err, "exit %d, %r" % (rc, err))
        rc, out, err = gl.cli("group", "reset-offsets", group, "--topic", topic, "--bootstrap", b,
                              "--to-earliest", "--to-latest")
        checks.check("reset: two --to-* options are a usage error", rc == 2, "exit %d, %r" % (rc, err))

        # Delete: the group and its offsets go, and stay gone after a restart.
        rc, out, err = gl.cli("group", "delete", group, "--bootstrap", b)
        checks.check("delete: prints 'deleted group reset-group'",
                     rc == 0 and out == "deleted group %s\n" % group, "exit %d, %r %r" % (rc, out, err))
        rc, out, err = gl.cli("group", "describe", group, "--bootstrap", b)
        checks.check("delete: describe then says the group does not exist",
                     rc == 1 and "does not exist" in err and out == "", "exit %d, %r %r" % (rc, out, err))
        admin = kp_admin(b)
        kp = admin.describe_consumer_groups([group])[0]
        kpo = admin.list_consumer_group_offsets(group)
        checks.check("delete: kafka-python sees the group Dead with no offsets",
                     kp.state == "Dead" and not kpo, "state %s, offsets %s" % (kp.state, kpo))
        admin.close()
        rc, out, err = gl.cli("group", "list", "--bootstrap", b)
        checks.check("delete: group list no longer shows it", rc == 0 and group not in out,
                     "exit %d, %r" % (rc, out))
        rc, out, err = gl.cli("group", "delete", group, "--bootstrap", b)
        checks.check("delete: deleting it again says it does not exist",
                     rc == 1 and "does not exist" in err, "exit %d, %r %r" % (rc, out, err))
        rc = broker.stop()
        checks.check("reset: broker exits 0 on SIGTERM", rc == 0, "exit status %s" % rc)
        broker.start()
        co = gl.committed(b, group, topic, nparts)
        rc, out, err = gl.cli("group", "describe", group, "--bootstrap", b)
        checks.check("delete: after a broker restart the group and its offsets are still gone",
                     co == {0: -1, 1: -1} and rc == 1, "committed %s, describe exit %d %r" % (co, rc, out))
        got = first_offsets(b, topic, group, nparts)
        checks.check("delete: a new consumer in that group starts from auto.offset.reset (earliest)",
                     got == {0: 0, 1: 0}, "got %s" % got)
    finally:
        finish(checks, name, broker, members)


# ---------------------------------------------------------------- commit during a rebalance

def test_commit_in_rebalance(checks):
    """A member of the current generation commits while the group is
    PreparingRebalance (a second consumer has sent JoinGroup and the first
    has not rejoined yet).  Apache Kafka stores such a commit (its
    GroupCoordinator accepts commits in Stable and PreparingRebalance and
    answers REBALANCE_IN_PROGRESS only in CompletingRebalance); it is how
    eager consumers commit in onPartitionsRevoked / on close."""
    import threading
    from confluent_kafka import KafkaException
    name = "commit-in-rebalance"
    broker = Broker(workdir(name), name)
    broker.start()
    b = broker.bootstrap
    topic = "rebal"
    try:
        gl.create_topic(b, topic, 1)
        gl.BackgroundProducer(b, topic, 1).produce(10)
        admin = kp_admin(b)
        # The window lasts until A's next heartbeat (3 s apart) tells it to
        # rejoin; A never polls meanwhile, so it stays in the old generation.
        for attempt in range(3):
            group = "rebal-%d" % attempt
            conf = {"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False,
                    "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                    "heartbeat.interval.ms": 3000}
            a = Consumer(dict(conf, **{"client.id": "member-a"}))
            a.subscribe([topic])
            n, deadline = 0, time.time() + 20
            while n < 10 and time.time() < deadline:
                m = a.poll(0.2)
                if m is not None and not m.error():
                    n += 1
            stop = threading.Event()

            def run_b():
                c = Consumer(dict(conf, **{"client.id": "member-b"}))
                c.subscribe([topic])
                while not stop.is_set():
                    c.poll(0.1)
                c.close()

            tb = threading.Thread(target=run_b, daemon=True)
            tb.start()
            preparing = wait_for(lambda: admin.describe_consumer_groups([group])[0].state
                                 == "PreparingRebalance", 5, step=0.02)
            err = None
            if preparing:
                try:
                    a.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
                except KafkaException as e:
                    err = e.args[0]
            stop.set()
            tb.join(15)
            a.close()
            if preparing:
                break
        if not checks.check("%s: the group is PreparingRebalance after a second member joins" % name,
                            preparing, "never saw PreparingRebalance in 3 attempts"):
            return
        checks.check("%s: a commit by a current member during PreparingRebalance is accepted "
                     "(as Kafka does)" % name, err is None,
                     "OffsetCommit was answered %s (%s); Kafka answers REBALANCE_IN_PROGRESS only in "
                     "CompletingRebalance" % (err.name() if err else None, err))
        co = gl.committed(b, group, topic, 1)
        checks.check("%s: the offset is stored" % name, co == {0: 10}, "committed %s" % co)
        admin.close()
    finally:
        finish(checks, name, broker)


TESTS = [
    ("seed", test_seed),
    ("split-kafka-python", test_split_kafka_python),
    ("split-confluent", test_split_confluent),
    ("split-librdkafka", test_split_librdkafka),
    ("split-mixed", test_split_mixed),
    ("describe", test_describe),
    ("reset", test_reset),
    ("commit-in-rebalance", test_commit_in_rebalance),
]


def main():
    global WORK, RDKAFKA_MEMBER
    names = [n for n, _ in TESTS]
    for a in sys.argv[1:]:
        if a not in names:
            sys.exit("usage: test_groups.py [TEST...]   (TEST: %s)" % " ".join(names))
    WORK = tempfile.mkdtemp(prefix="shopstream-groups.")
    try:
        RDKAFKA_MEMBER = gl.build_rdkafka_member(WORK)
        return gl.run_main(TESTS, sys.argv[1:])
    finally:
        if os.environ.get("SHOPSTREAM_TEST_KEEP") == "1":
            print("kept %s" % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
