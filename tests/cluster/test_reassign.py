#!/usr/bin/python3
"""Brokers joining, partition reassignment and broker removal (issue 10).

Five brokers on 127.0.0.1 form one cluster: 3, 4 and 5 are the metadata
quorum's voters, 1 and 2 join it as non-voting members
(controller.quorum.bootstrap.servers).  Topic admin through any broker
(kafka-python sends AlterConfigs and CreatePartitions to whichever broker
it likes; brokers forward them to the controller) reaches every broker.  A partition with replicas on
brokers 1 and 2 gets 5,000 acknowledged records; `shopstream cluster
reassign` moves it to brokers 3 and 4 and waits; then brokers 1 and 2 are
killed -9 and every record is read back from the new replicas, and broker
1, holding nothing any more, is removed with `shopstream cluster
remove-broker`.  Brokers a partition left delete their copies, and a
broker that replays such a departure at restart keeps a log the present
assignment needs (see bounce).  Bad reassignments are refused with a sentence and exit 1.
Prints "ok ..." lines; exits 1 on the first failure."""
import os
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
import kafka
import kafka.admin
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wire"))
from test_failover_clients import BIN, Cluster, LOGDIR, fail  # noqa: E402

TOPIC = "moving"


def shop(*args, ok=True):
    r = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if ok and r.returncode != 0:
        fail("shopstream %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def replicas(cl):
    t = cl.metadata().topics.get(TOPIC)
    if t is None or 0 not in t.partitions:
        return [], [], -1
    md = t.partitions[0]
    return list(md.replicas), list(md.isrs), md.leader


def wait_gone(tmp, topic, brokers, timeout=15):
    """Waits for the brokers' data dirs to lose the topic; returns those that
    still hold it."""
    deadline = time.time() + timeout
    while True:
        left = [b for b in brokers if os.path.exists(os.path.join(tmp, "d%d" % b, "topics", topic))]
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


def until_every_broker(cl, brokers, ok, timeout=10):
    """Asks each broker's own Metadata (brokers apply the metadata a moment
    apart) until ok(metadata) holds on all of them; returns the brokers on
    which it still does not."""
    from kmeta import metadata
    deadline = time.time() + timeout
    while True:
        bad = []
        for b in brokers:
            try:
                if not ok(metadata("127.0.0.1", cl.ports[b - 1])):
                    bad.append(b)
            except OSError:
                bad.append(b)
        if not bad or time.time() > deadline:
            return bad
        time.sleep(0.2)


def read_all(cl, topic):
    r = subprocess.run(["kcat", "-C", "-b", cl.boot, "-t", topic, "-p", "0", "-o", "beginning", "-e",
                        "-f", "%o %s\n"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    got = {}
    for line in r.stdout.splitlines():
        off, val = line.split(b" ", 1)
        got[int(off)] = val
    return got


def produce_acked(cl, topic, n):
    p = Producer({"bootstrap.servers": cl.boot, "acks": "all", "enable.idempotence": True})
    acked = []
    for i in range(n):
        p.produce(topic, value=b"r-%d" % i, on_delivery=lambda e, m: e is None and acked.append(m.offset()))
        if i % 500 == 0:
            p.poll(0)
    p.flush(30)
    if len(acked) != n:
        fail("%s: %d of %d records acknowledged" % (topic, len(acked), n))
    return acked


def wait_partition(cl, topic, want, timeout=30):
    """Waits until (replicas, isr, leader) of partition 0 satisfies want."""
    deadline = time.time() + timeout
    while True:
        try:
            t = cl.metadata().topics.get(topic)
            md = t.partitions[0] if t is not None and 0 in t.partitions else None
            state = (list(md.replicas), sorted(md.isrs), md.leader) if md else ([], [], -1)
        except Exception as e:  # a broker just killed: ask again
            state = ([], [], -1, str(e))
        if want(state) or time.time() > deadline:
            return state
        time.sleep(0.2)


def bounce(cl, tmp):
    """A replica that left broker 1 and came back: when broker 1 restarts it
    replays the metadata, the departure included, and must not delete the
    log the present assignment needs.  Broker 1 is made the last in-sync
    replica before it is killed, so a log deleted during the replay would
    lose every record.  (Whether the replay is reconciled at the departure
    depends on how the applied entries are drained, so a broker without the
    caught-up rule fails this only sometimes; the rule itself is in
    cluster.c, set_fenced.)"""
    name = "bounce"
    a = AdminClient({"bootstrap.servers": cl.boot})
    for f in a.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[[1, 3]])]).values():
        f.result(15)
    wait_partition(cl, name, lambda s: s[1] == [1, 3])
    acked = produce_acked(cl, name, 2000)
    shop("cluster", "reassign", name, "0", "3,4", "--wait", "--bootstrap", cl.boot)
    if wait_gone(tmp, name, (1,)):
        fail("broker 1 kept its log of %s after it moved away" % name)
    shop("cluster", "reassign", name, "0", "1,3", "--wait", "--bootstrap", cl.boot)
    st = wait_partition(cl, name, lambda s: s[0] == [1, 3] and s[1] == [1, 3])
    if st[1] != [1, 3]:
        fail("%s did not come back to brokers 1,3: %s" % (name, st))
    cl.procs[2].kill()  # broker 3: broker 1 becomes the only in-sync replica
    cl.procs[2].wait()
    st = wait_partition(cl, name, lambda s: s[1] == [1] and s[2] == 1)
    if st[1] != [1] or st[2] != 1:
        fail("%s: broker 1 did not take over alone: %s" % (name, st))
    cl.procs[0].kill()
    cl.procs[0].wait()
    cl.start(0)
    st = wait_partition(cl, name, lambda s: s[2] == 1)
    if st[2] != 1:
        fail("%s: broker 1 did not lead again after its restart: %s" % (name, st))
    # the metadata may still name broker 1 from before the kill: read until
    # its restarted self leads, for 30 s (a deleted log stays empty)
    deadline = time.time() + 30
    while True:
        got = read_all(cl, name)
        missing = [o for o in acked if got.get(o) != b"r-%d" % o]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.5)
    if missing:
        fail("%d of %s's records lost across broker 1's restart, e.g. offsets %s"
             % (len(missing), name, missing[:5]))
    cl.start(2)
    cl.wait_ready()
    for f in a.delete_topics([name]).values():  # broker 1 is removed later: it must hold nothing
        f.result(15)
    print("ok a replica that moved away and back keeps its records across a restart", flush=True)


def metadata_churn(cl, n):
    """n metadata commands: retention.ms of topic "churn" set to n new
    values, IncrementalAlterConfigs v0 pipelined to the controller 200 at a
    time (a value equal to the present one would be no command)."""
    import struct
    from kwire import Conn, request, string, i8, i32, boolean, array
    ctl = cl.metadata().controller_id
    with Conn(cl.ports[ctl - 1], timeout=30) as c:
        done = 0
        while done < n:
            k = min(200, n - done)
            for j in range(k):
                cfg = array([("retention.ms", 0, "%d" % (600000 + done + j))],
                            lambda e: string(e[0]) + i8(e[1]) + string(e[2]))
                body = array([(2, "churn")], lambda r: i8(r[0]) + string(r[1]) + cfg) + boolean(False)
                c.send(request(44, 0, done + j + 1, body))
            for j in range(k):
                data = bytes(c.recv_frame())
                corr, _throttle, count, code = struct.unpack(">iiih", data[:14])
                if corr != done + j + 1 or count != 1 or code != 0:
                    fail("churn: IncrementalAlterConfigs answer %d: count %d, error %d" % (corr, count, code))
            done += k


def deleted_while_away(cl, tmp):
    """A topic deleted while one of its replicas' brokers is down, and so
    much metadata written after it that the controller's log no longer holds
    the deletion: the restarted broker gets a snapshot instead, which names
    no deletion, finds its log named by no topic of the metadata and deletes
    it once it has caught up (a stray log, as Kafka calls it)."""
    name = "away"
    # the victim is a voter but not the controller, so the quorum and the
    # controller stay put (librdkafka sends DeleteTopics to the controller
    # it knows; a dead one would stall the deletion)
    ctl = cl.metadata().controller_id
    victim = 5 if ctl != 5 else 4
    other = 4 if victim == 5 else 3
    a = AdminClient({"bootstrap.servers": cl.boot})
    fs = a.create_topics([NewTopic(name, num_partitions=2, replica_assignment=[[other, victim], [victim, other]]),
                          NewTopic("churn", num_partitions=1, replica_assignment=[[ctl]])])
    for f in fs.values():
        f.result(15)
    wait_partition(cl, name, lambda s: s[1] == sorted([other, victim]))
    produce_acked(cl, name, 500)
    cl.procs[victim - 1].kill()
    cl.procs[victim - 1].wait()
    for f in a.delete_topics([name]).values():
        f.result(30)
    if wait_gone(tmp, name, (other,)):
        fail("broker %d kept %s after its deletion" % (other, name))
    if not os.path.exists(os.path.join(tmp, "d%d" % victim, "topics", name)):
        fail("test setup: broker %d has no log of %s to find at its restart" % (victim, name))
    # the controller snapshots every 1,024 commands and keeps 2,048 behind
    # its snapshot: past that, broker 5 can only be sent a snapshot
    metadata_churn(cl, 4000)
    time.sleep(1)  # answered once committed; the controller's last snapshot takes a moment to write
    cl.start(victim - 1)
    cl.wait_ready()
    if wait_gone(tmp, name, (victim,), timeout=30):
        fail("broker %d kept the log of %s, deleted while it was down, after its restart" % (victim, name))
    with open(os.path.join(tmp, "broker%d.log" % victim)) as f:
        log = f.read()
    if "deleted while this broker was away" not in log:
        fail("broker %d did not remove %s as a stray (the deletion reached it as a log entry?)" % (victim, name))
    for f in a.delete_topics(["churn"]).values():
        f.result(15)
    print("ok a topic deleted while its broker was down, known to it only from a snapshot, is removed "
          "from it at its restart", flush=True)


def config_call(port, api, body):
    """One DescribeConfigs or IncrementalAlterConfigs v0 for one resource;
    returns (error code, the rest of the answer)."""
    import struct
    from kwire import Conn, request
    with Conn(port, timeout=30) as c:
        c.send(request(api, 0, 7, body))
        data = bytes(c.recv_frame())
    corr, _throttle, count, code = struct.unpack(">iiih", data[:14])
    if corr != 7 or count != 1:
        fail("config call to %d: correlation %d, %d results" % (port, corr, count))
    return code, data[14:]


def served_without_a_replica(cl):
    """A broker answers for topics it holds no replica of: configs are read
    and changed through every broker, and group offsets commit whichever
    broker coordinates the group (the metadata, not the local logs, says
    what exists)."""
    from kwire import string, i8, array, i32
    from confluent_kafka import Consumer, TopicPartition
    name = "on-three"
    a = AdminClient({"bootstrap.servers": cl.boot})
    for f in a.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[[3]])]).values():
        f.result(15)
    wait_partition(cl, name, lambda s: s[1] == [3])
    for k in (3, 4, 5):
        body = array([(2, name)], lambda r: i8(r[0]) + string(r[1]) +
                     array([("retention.ms", 0, "%d" % (86400000 + k))],
                           lambda e: string(e[0]) + i8(e[1]) + string(e[2]))) + b"\x00"
        code, _ = config_call(cl.ports[k - 1], 44, body)
        if code != 0:
            fail("IncrementalAlterConfigs of %s through broker %d: error %d" % (name, k, code))
        want = b"%d" % (86400000 + k)
        deadline = time.time() + 10
        for j in (3, 4, 5):
            while True:
                code, rest = config_call(cl.ports[j - 1], 32, array([(2, name)], lambda r: i8(r[0]) + string(r[1]) + i32(-1)))
                if code != 0:
                    fail("DescribeConfigs of %s through broker %d: error %d" % (name, j, code))
                if want in rest or time.time() > deadline:
                    break
                time.sleep(0.2)
            if want not in rest:
                fail("broker %d does not show retention.ms=%s set through broker %d" % (j, want.decode(), k))
    for g in range(6):  # six groups: their coordinators spread over the brokers
        group = "far-%d" % g
        c = Consumer({"bootstrap.servers": cl.boot, "group.id": group, "enable.auto.commit": False})
        try:
            c.commit(offsets=[TopicPartition(name, 0, 17 + g)], asynchronous=False)
            got = c.committed([TopicPartition(name, 0)], timeout=15)
        except Exception as e:
            fail("group %s: committing an offset of %s: %s" % (group, name, e))
        finally:
            c.close()
        if got[0].offset != 17 + g:
            fail("group %s: committed %d, read back %d" % (group, 17 + g, got[0].offset))
    for f in a.delete_topics([name]).values():
        f.result(15)
    print("ok configs and group offsets of a topic on one broker, through every broker", flush=True)


def produce_unknown_refused(cl, tmp):
    """A Produce naming a topic the cluster does not know creates nothing
    (only the controller creates topics; a client's Metadata asks it to)."""
    from kwire import Conn, API_PRODUCE, produce_body, decode_produce, record_batch
    name = "never-created"
    with Conn(cl.ports[2]) as c:
        body = produce_body(7, 1, [(name, [(0, record_batch([(None, b"x")]))])])
        out = decode_produce(c.roundtrip(API_PRODUCE, 7, body), 7)
    err = out["topics"][0]["partitions"][0]["error"]
    if err != 3:  # UNKNOWN_TOPIC_OR_PARTITION
        fail("Produce to an unknown topic in a cluster: error %d, not UNKNOWN_TOPIC_OR_PARTITION" % err)
    if os.path.exists(os.path.join(tmp, "d3", "topics", name)):
        fail("a Produce to an unknown topic made a local log on broker 3")
    print("ok a Produce to an unknown topic is refused and creates no log", flush=True)


def standalone_dir_refused(tmp):
    """A single broker's data dir, holding topics, is refused as a cluster
    member's: its topics are in no cluster's metadata and would be deleted
    as strays."""
    d = os.path.join(tmp, "standalone")
    port = Cluster(1, tmp).ports[0]
    p = subprocess.Popen([BIN, "broker", "--data-dir", d, "--listen", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = None
        deadline = time.time() + 15
        while time.time() < deadline:
            r = subprocess.run([BIN, "topic", "create", "kept", "--partitions", "1", "--bootstrap",
                                "127.0.0.1:%d" % port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        if r.returncode != 0:
            fail("standalone broker: topic create: %s" % r.stderr.strip())
    finally:
        p.terminate()
        p.wait(20)
    c = Cluster(1, tmp)
    p = subprocess.Popen([BIN, "broker", "--data-dir", d, "--set", "node.id=1",
                          "--set", "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d"
                          % (c.ports[0], c.raft[0]),
                          "--set", "controller.quorum.voters=1@127.0.0.1:%d" % c.raft[0]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, errout = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("a cluster member started on a single broker's data dir holding topics")
    if p.returncode == 0 or "single broker" not in errout:
        fail("a cluster member on a standalone data dir: exit %d, %s" % (p.returncode, errout.strip()[-300:]))
    if not os.path.isdir(os.path.join(d, "topics", "kept")):
        fail("the refused cluster member touched the standalone topic")
    print("ok a cluster member refuses a single broker's data dir", flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix="shopstream-reassign.")
    LOGDIR[0] = tmp
    cl = Cluster(5, tmp, voters=[3, 4, 5])
    try:
        for i in range(5):
            cl.start(i)
        cl.wait_ready()
        a = AdminClient({"bootstrap.servers": cl.boot})
        for f in a.create_topics([NewTopic(TOPIC, num_partitions=1, replica_assignment=[[1, 2]])]).values():
            f.result(15)
        deadline = time.time() + 15
        state = replicas(cl)
        while time.time() < deadline and (sorted(state[0]) != [1, 2] or sorted(state[1]) != [1, 2]):
            time.sleep(0.2)
            state = replicas(cl)  # brokers apply the metadata a moment apart
        if sorted(state[0]) != [1, 2]:
            fail("the topic was not created on brokers 1 and 2: %s" % (state,))
        acked = produce_acked(cl, TOPIC, 5000)
        print("ok 5000 records on brokers 1,2", flush=True)

        r = shop("cluster", "reassign", TOPIC, "0", "3,4", "--wait", "--bootstrap", cl.boot)
        deadline = time.time() + 5
        reps, isr, leader = replicas(cl)
        while time.time() < deadline and (reps != [3, 4] or sorted(isr) != [3, 4]):
            time.sleep(0.2)
            reps, isr, leader = replicas(cl)
        if reps != [3, 4] or sorted(isr) != [3, 4] or leader not in (3, 4):
            fail("after the reassignment: replicas %s, isr %s, leader %d" % (reps, isr, leader))
        print("ok reassigned to 3,4 (%s)" % r.stdout.strip().replace("\n", "; "), flush=True)
        r = shop("cluster", "reassignments", "--bootstrap", cl.boot)
        if "no reassignment under way" not in r.stdout:
            fail("reassignments still listed: %s" % r.stdout)

        for bad, why in ((["3,3"], "listed twice"), (["9"], "not registered")):
            r = shop("cluster", "reassign", TOPIC, "0", bad[0], "--bootstrap", cl.boot, ok=False)
            if r.returncode != 1 or why not in r.stderr:
                fail("reassign to %s: exit %d, %s" % (bad[0], r.returncode, r.stderr.strip()))
        r = shop("cluster", "reassign", "no-such-topic", "0", "1", "--bootstrap", cl.boot, ok=False)
        if r.returncode != 1 or "UNKNOWN_TOPIC_OR_PARTITION" not in r.stderr:
            fail("reassign of a missing topic: exit %d, %s" % (r.returncode, r.stderr.strip()))
        print("ok bad reassignments refused with a sentence", flush=True)

        # the brokers the partition left delete their copies
        gone = wait_gone(tmp, TOPIC, (1, 2))
        if gone:
            fail("brokers %s still hold a log of %s after it moved away" % (gone, TOPIC))
        print("ok brokers 1,2 deleted their logs of %s" % TOPIC, flush=True)
        bounce(cl, tmp)
        deleted_while_away(cl, tmp)
        produce_unknown_refused(cl, tmp)
        standalone_dir_refused(tmp)

        for b in (1, 2):
            cl.procs[b - 1].kill()
            cl.procs[b - 1].wait()
        # kcat without a group: no __consumer_offsets replicas on broker 1
        got = read_all(cl, TOPIC)
        missing = [o for o in acked if got.get(o) != b"r-%d" % o]
        if missing:
            fail("%d records missing after brokers 1 and 2 died, e.g. offsets %s" % (len(missing), missing[:5]))
        print("ok all 5000 records read from the new replicas with brokers 1,2 dead", flush=True)

        deadline = time.time() + 20
        while True:
            r = shop("cluster", "remove-broker", "1", "--bootstrap", cl.boot, ok=False)
            if r.returncode == 0 or time.time() > deadline:
                break
            time.sleep(1)  # the controller may be moving after the kills
        if r.returncode != 0:
            fail("remove-broker 1: exit %d, %s" % (r.returncode, r.stderr.strip()))
        r = shop("cluster", "remove-broker", "1", "--bootstrap", cl.boot, ok=False)
        if r.returncode != 1 or "BROKER_ID_NOT_REGISTERED" not in r.stderr:
            fail("removing broker 1 twice: exit %d, %s" % (r.returncode, r.stderr.strip()))
        ctl = cl.metadata().controller_id
        holder = 3 if ctl != 3 else 4  # holds a replica; the controller is refused for another reason
        r = shop("cluster", "remove-broker", str(holder), "--bootstrap", cl.boot, ok=False)
        if r.returncode != 1 or "holds replicas" not in r.stderr:
            fail("removing broker %d, which holds a replica: exit %d, %s" % (holder, r.returncode, r.stderr.strip()))
        bad = until_every_broker(cl, (3, 4, 5), lambda md: 1 not in md["brokers"])
        if bad:
            fail("brokers %s still list broker 1 after its removal" % bad)
        print("ok broker 1 removed; broker %d, holding a replica, refused" % holder, flush=True)

        # admin through each broker: configs, partitions, deletion
        live = [k for k in range(3, 6)]
        for k in live:
            adm = kafka.KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % cl.ports[k - 1])
            name = "admin-%d" % k
            adm.create_topics([kafka.admin.NewTopic(name, 2, 3)])
            adm.alter_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, name,
                                                          configs={"retention.ms": "%d" % (1000 * k)})])
            adm.create_partitions({name: kafka.admin.NewPartitions(4)})
            adm.close()
        deadline = time.time() + 10
        while True:
            ok = True
            for k in live:
                md = kafka.KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % cl.ports[k - 1])
                for j in live:
                    name = "admin-%d" % j
                    cfg = md.describe_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC,
                                                                          name)])[0].resources[0][4]
                    got = {c[0]: c[1] for c in cfg}
                    parts = md.describe_topics([name])[0]["partitions"]
                    ok = ok and got.get("retention.ms") == "%d" % (1000 * j) and len(parts) == 4
                md.close()
            if ok or time.time() > deadline:
                break
            time.sleep(0.5)
        if not ok:
            fail("a broker does not show the configs or partitions set through another broker")
        adm = kafka.KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % cl.ports[live[0] - 1])
        r = adm.delete_topics(["admin-%d" % k for k in live], timeout_ms=15000)
        errs = [e for e in r.topic_error_codes if e[1] != 0]
        if errs:
            fail("DeleteTopics through broker %d: %s" % (live[0], errs))
        adm.close()
        bad = until_every_broker(cl, live, lambda md: not any(t.startswith("admin-") for t in md["topics"]))
        if bad:
            fail("brokers %s still list the deleted topics" % bad)
        print("ok topics created, altered, grown and deleted through every broker", flush=True)
        served_without_a_replica(cl)
    finally:
        cl.stop_all()
        if not os.environ.get("KEEP"):
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
