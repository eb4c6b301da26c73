#!/usr/bin/python3
"""The fault test's history checker, after the way Jepsen checks Kafka.
Pure Python; usage as a program: checker.py HISTORY.json (exit 1 on a
violation).

A history is a dict:
  "acks":   [[producer, partition, offset, value, t_ack], ...]
            every record whose delivery callback reported success
  "reads":  {observer: [[partition, offset, value, t_read, t_produced], ...]}
            every record each consumer read (t_produced: the record's
            timestamp, the producer's clock at produce(), seconds)
  "group":  [observer, ...]   the consumers of the group
  "final":  observer          the fresh reader that read everything at the end
  "final_end": {partition: end offset} the end of the log it read up to
  "faults": [{"kind", "node", "start", "end"}, ...]
  optional: "producer_ids": [[partition, offset, producer id, producer epoch], ...]
            for the positions of values found at several positions (see
            duplicate_positions), read from the brokers' log files
  optional: "leader_changes", "sent", "failed_deliveries", "seed", ...

Properties:
  1 acked-at-offset  every acknowledged record is in the final read at exactly
                     the offset its acknowledgement named
  2 no-duplicates    no value is at two positions (partition, offset): in the
                     final read, across all observers, or in the acks.  Not
                     counted: copies written by one producer id under
                     different producer epochs.  The broker deduplicates
                     within an epoch, as Kafka does; librdkafka bumps the
                     epoch and sends again what it could not confirm
                     (KIP-360), which a Kafka broker stores twice too.  They
                     are reported as stats["resent_after_epoch_bump"].
  3 agreement        no two observers saw different values at one
                     (partition, offset), and nothing a consumer read is
                     missing from the final read below its end
  4 resumed          after each fault's end, some group consumer read a record
                     produced after that end, within RESUME_BOUND seconds
  5 group-read-all   the group's consumers together read every acknowledged
                     record (no offset skipped by commits or rebalances)
"""
import bisect
import collections
import json
import sys

RESUME_BOUND = 30.0
EXAMPLES = 5

PROPERTIES = [
    ("acked-at-offset", "every acknowledged record read back at exactly its acknowledged offset"),
    ("no-duplicates", "no value at two offsets"),
    ("agreement", "no two observers disagree on what is at an offset"),
    ("resumed", "consumption resumed after each fault"),
    ("group-read-all", "the group's consumers read every acknowledged record"),
]


def _key(p):
    return int(p)


def _value_positions(h):
    """value -> {(p, off)} over all observers and acks, and value ->
    [(observer, p, off)] for examples."""
    positions = collections.defaultdict(set)
    where = collections.defaultdict(list)
    for obs, recs in h.get("reads", {}).items():
        for p, off, v, *_ in recs:
            pos = (_key(p), off)
            if pos not in positions[v]:
                positions[v].add(pos)
                where[v].append((obs, pos[0], off))
    for prod, p, off, v, *_ in h.get("acks", []):
        if off is None:
            continue  # no position claimed (see 1)
        pos = (_key(p), off)
        if pos not in positions[v]:
            positions[v].add(pos)
            where[v].append(("ack", pos[0], off))
    return positions, where


def duplicate_positions(h):
    """The positions (p, off) of every value found at more than one."""
    positions, _ = _value_positions(h)
    return sorted(x for pos in positions.values() if len(pos) > 1 for x in pos)


def check(h, resume_bound=RESUME_BOUND):
    """Returns {"ok", "violations": {property: {"count", "examples"}},
    "counts": {...}, "stats": {...}}."""
    reads = h.get("reads", {})
    final_name = h.get("final", "final")
    group = list(h.get("group", [o for o in reads if o != final_name]))
    acks = h.get("acks", [])
    final = reads.get(final_name, [])
    faults = h.get("faults", [])
    viol = collections.OrderedDict((name, []) for name, _ in PROPERTIES)

    # the final read as (p, off) -> value; a second value at one offset in
    # the final read itself is disagreement too
    final_at = {}
    for p, off, v, *_ in final:
        final_at.setdefault((_key(p), off), v)
    final_end = {_key(p): e for p, e in h.get("final_end", {}).items()}
    for (p, off) in final_at:
        final_end[p] = max(final_end.get(p, 0), off + 1)

    # 1: acknowledged at exactly its offset.  librdkafka's idempotent
    # producer acknowledges a batch whose own answer was lost, without an
    # offset, when a later batch of the same producer succeeds (the broker
    # would have refused it otherwise): such a record must be in the final
    # read, in its partition, once (the no-duplicates check counts it)
    final_values = collections.defaultdict(set)   # value -> {partition}
    for (p, off), v in final_at.items():
        final_values[v].add(p)
    for prod, p, off, v, *_ in acks:
        if off is None:
            if _key(p) not in final_values.get(v, ()):
                viol["acked-at-offset"].append(
                    "%r acknowledged without an offset in partition %d (producer %s): not in the final read" % (
                        v, _key(p), prod))
            continue
        got = final_at.get((_key(p), off))
        if got != v:
            viol["acked-at-offset"].append(
                "%r acknowledged at partition %d offset %d (producer %s): final read has %s" % (
                    v, _key(p), off, prod, "nothing there" if got is None else repr(got)))

    # 2: a value at two positions (within the final read, across observers, in acks)
    positions, where = _value_positions(h)
    ids = {(_key(p), off): (pid, epoch) for p, off, pid, epoch in h.get("producer_ids", [])}
    resent = 0
    for v, pos in positions.items():
        if len(pos) > 1:
            owners = [ids.get(x) for x in pos]
            if all(owners) and len({o[0] for o in owners}) == 1 and len({o[1] for o in owners}) == len(owners):
                resent += 1
                continue
            viol["no-duplicates"].append("%r at %s" % (v, ", ".join(
                "p%d/%d (%s)" % (p, off, obs) for obs, p, off in sorted(where[v], key=lambda x: (x[1], x[2], x[0])))))

    # 3: observers agree at every offset; nothing read vanishes below the end
    seen = {}            # (p, off) -> the first value seen there
    conflicts = set()
    for obs, recs in reads.items():
        for p, off, v, *_ in recs:
            k = (_key(p), off)
            prev = seen.setdefault(k, v)
            if prev != v:
                conflicts.add(k)
    if conflicts:
        who = collections.defaultdict(lambda: collections.defaultdict(set))
        for obs, recs in reads.items():
            for p, off, v, *_ in recs:
                k = (_key(p), off)
                if k in conflicts:
                    who[k][v].add(obs)
        for k in sorted(conflicts):
            viol["agreement"].append("partition %d offset %d: %s" % (k[0], k[1], "; ".join(
                "%s read %r" % ("+".join(sorted(obs)), v) for v, obs in sorted(who[k].items(), key=lambda x: min(x[1])))))
    if final_at:
        for obs in group:
            for p, off, v, *_ in reads.get(obs, []):
                k = (_key(p), off)
                if k not in final_at and off < final_end.get(k[0], 0):
                    viol["agreement"].append("partition %d offset %d: %s read %r, missing from the final read" % (
                        k[0], off, obs, v))

    # 4: consumption resumed after each fault
    group_reads = sorted(((r[4], r[3]) for obs in group for r in reads.get(obs, [])
                          if len(r) >= 5 and r[4] is not None), key=lambda x: x[0])
    # suffix minimum of t_read over reads ordered by production time
    suffix_min = [0.0] * (len(group_reads) + 1)
    suffix_min[-1] = float("inf")
    for i in range(len(group_reads) - 1, -1, -1):
        suffix_min[i] = min(group_reads[i][1], suffix_min[i + 1])
    produced = [x[0] for x in group_reads]
    resume_times = []
    for f in faults:
        end = f["end"]
        i = bisect.bisect_right(produced, end)
        t = suffix_min[i]
        desc = "%s of %s at %.1f-%.1f" % (f["kind"], f.get("node"), f["start"], end)
        if t == float("inf"):
            viol["resumed"].append("%s: no group consumer read any record produced after it" % desc)
        else:
            resume_times.append(t - end)
            if t - end > resume_bound:
                viol["resumed"].append("%s: first record produced after it read %.1f s later (bound %.0f s)" % (
                    desc, t - end, resume_bound))

    # 5: the group read every acknowledged record
    group_pos = set()
    group_vals = set()
    for obs in group:
        for p, off, v, *_ in reads.get(obs, []):
            group_pos.add((_key(p), off))
            group_vals.add((_key(p), v))
    missed = collections.Counter()
    missed_ex = []
    for prod, p, off, v, *_ in acks:
        if off is None:
            if (_key(p), v) not in group_vals:  # acknowledged without an offset (see 1)
                missed[_key(p)] += 1
                if len(missed_ex) < EXAMPLES:
                    missed_ex.append("%r in partition %d never read by the group" % (v, _key(p)))
            continue
        if (_key(p), off) not in group_pos:
            missed[_key(p)] += 1
            if len(missed_ex) < EXAMPLES:
                missed_ex.append("%r at partition %d offset %d never read by the group" % (v, _key(p), off))
    if missed:
        viol["group-read-all"] = missed_ex + ["per partition: %s" % dict(sorted(missed.items()))]
        viol_count_group = sum(missed.values())
    else:
        viol_count_group = 0

    violations = collections.OrderedDict()
    for name, _ in PROPERTIES:
        v = viol[name]
        if v:
            count = viol_count_group if name == "group-read-all" else len(v)
            violations[name] = {"count": count, "examples": v[:EXAMPLES + (1 if name == "group-read-all" else 0)]}

    kinds = collections.Counter(f["kind"] for f in faults)
    counts = {
        "acked": len(acks),
        "read": {obs: len(recs) for obs, recs in reads.items()},
        "distinct_offsets_read": len(seen),
        "final_records": len(final_at),
        "faults": dict(sorted(kinds.items())),
        "leader_changes": h.get("leader_changes"),
    }
    for k in ("sent", "failed_deliveries", "producer_restarts", "broker_crashes"):
        if k in h:
            counts[k] = h[k]
    stats = {"resent_after_epoch_bump": resent}
    if resume_times:
        stats["resume_s_max"] = round(max(resume_times), 2)
        stats["resume_s_median"] = round(sorted(resume_times)[len(resume_times) // 2], 2)
    return {"ok": not violations, "violations": violations, "counts": counts, "stats": stats}


def report(result, out=None):
    """One line per property (ok / FAIL with examples)."""
    out = out or sys.stdout
    for name, desc in PROPERTIES:
        v = result["violations"].get(name)
        if v is None:
            print("ok   %s: %s" % (name, desc), file=out)
        else:
            print("FAIL %s: %s -- %d violation(s), e.g.:" % (name, desc, v["count"]), file=out)
            for ex in v["examples"]:
                print("       %s" % ex, file=out)
    out.flush()


def main(argv):
    if len(argv) != 2:
        print("usage: checker.py HISTORY.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        h = json.load(f)
    r = check(h)
    report(r)
    print(json.dumps({"ok": r["ok"], "counts": r["counts"], "stats": r["stats"],
                      "violations": {k: v["count"] for k, v in r["violations"].items()}}))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
