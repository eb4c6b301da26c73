#!/usr/bin/python3
"""One consumer-group member for the group tests (test_groups.py), with
kafka-python or confluent-kafka.  Same line protocol as
rdkafka_group_member.c: one JSON object per line on stdout,
  {"ev":"start","t":T}
  {"ev":"assigned","t":T,"parts":[0,1]}   after each assignment
  {"ev":"revoked","t":T,"parts":[0,1]}    after each revocation
  {"ev":"rec","t":T,"p":P,"o":O}          per record
  {"ev":"closed","t":T}                   after a clean close
Offsets are auto-committed every second and on close; SIGTERM/SIGINT close
cleanly, SIGKILL does not.

usage: group_member.py kafka-python|confluent BOOTSTRAP TOPIC GROUP CLIENT_ID ASSIGNOR SESSION_MS
ASSIGNOR: range or roundrobin.  Run with Debian's /usr/bin/python3.
"""
import json
import signal
import sys
import time

stop = False


def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = time.time()
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def on_signal(sig, frame):
    global stop
    stop = True


def run_kafka_python(bootstrap, topic, group, client_id, assignor, session_ms):
    from kafka import KafkaConsumer, ConsumerRebalanceListener
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    strategy = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[assignor]

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("revoked", parts=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit("assigned", parts=sorted(tp.partition for tp in assigned))

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                      auto_offset_reset="earliest", enable_auto_commit=True,
                      auto_commit_interval_ms=1000, session_timeout_ms=session_ms,
                      heartbeat_interval_ms=1000, partition_assignment_strategy=[strategy])
    c.subscribe([topic], listener=Listener())
    emit("start")
    while not stop:
        for tp, msgs in c.poll(timeout_ms=100).items():
            for m in msgs:
                emit("rec", p=m.partition, o=m.offset)
    c.close(autocommit=True)
    emit("closed")


def run_confluent(bootstrap, topic, group, client_id, assignor, session_ms):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                  "auto.commit.interval.ms": 1000, "session.timeout.ms": session_ms,
                  "heartbeat.interval.ms": 1000, "partition.assignment.strategy": assignor})

    def on_assign(consumer, parts):
        emit("assigned", parts=sorted(tp.partition for tp in parts))

    def on_revoke(consumer, parts):
        emit("revoked", parts=sorted(tp.partition for tp in parts))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    emit("start")
    while not stop:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            if m.error().code() != -191:  # _PARTITION_EOF
                sys.stderr.write("group_member: %s\n" % m.error())
            continue
        emit("rec", p=m.partition(), o=m.offset())
    c.close()
    emit("closed")


def main():
    if len(sys.argv) != 8:
        sys.stderr.write(__doc__)
        return 2
    client, bootstrap, topic, group, client_id, assignor, session_ms = sys.argv[1:]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run = {"kafka-python": run_kafka_python, "confluent": run_confluent}[client]
    run(bootstrap, topic, group, client_id, assignor, int(session_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
