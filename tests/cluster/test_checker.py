#!/usr/bin/python3
"""Unit tests of checker.py on synthetic histories: a correct history
passes (including the legal oddities of at-least-once consumption), and
for every property there are histories that must fail it.
Run: /usr/bin/python3 tests/cluster/test_checker.py  (prints "N passed, N failed")."""
import copy
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

T0 = 1000.0


def history(parts=3, per_part=20, consumers=("c0", "c1")):
    """A correct history: records produced 0.1 s apart, round-robin over
    partitions, all acknowledged; consumer i reads the partitions p with
    p % len(consumers) == i, 0.5 s after production; the final reader reads
    everything; one fault (a kill of broker 2) from T0+0.5 to T0+1.0."""
    acks, reads = [], {c: [] for c in consumers}
    final = []
    n = 0
    for i in range(per_part):
        for p in range(parts):
            t = T0 + n * 0.1
            v = "p%d-%d" % (n % 2, n)
            acks.append([n % 2, p, i, v, t + 0.01])
            reads[consumers[p % len(consumers)]].append([p, i, v, t + 0.5, t])
            final.append([p, i, v, T0 + 100, t])
            n += 1
    reads["final"] = final
    return {"acks": acks, "reads": reads, "group": list(consumers), "final": "final",
            "final_end": {str(p): per_part for p in range(parts)},
            "faults": [{"kind": "kill", "node": 2, "start": T0 + 0.5, "end": T0 + 1.0}],
            "leader_changes": 1}


def find(h, obs, p, off):
    for r in h["reads"][obs]:
        if r[0] == p and r[1] == off:
            return r
    raise KeyError((obs, p, off))


class CheckerTest(unittest.TestCase):
    def assertViolated(self, h, *props):
        r = checker.check(h)
        self.assertFalse(r["ok"])
        self.assertEqual(sorted(props), sorted(r["violations"]), r["violations"])
        for p in props:
            self.assertGreater(r["violations"][p]["count"], 0)
            self.assertTrue(r["violations"][p]["examples"])
        return r

    def assertOk(self, h):
        r = checker.check(h)
        self.assertTrue(r["ok"], r["violations"])
        return r

    # -- correct histories ---------------------------------------------
    def test_clean_history_passes(self):
        r = self.assertOk(history())
        self.assertEqual(r["counts"]["acked"], 60)
        self.assertEqual(r["counts"]["read"]["final"], 60)
        self.assertEqual(r["counts"]["faults"], {"kill": 1})
        self.assertEqual(r["counts"]["leader_changes"], 1)
        self.assertIn("resume_s_max", r["stats"])

    def test_empty_history_passes(self):
        self.assertOk({"acks": [], "reads": {"final": []}, "group": [], "final": "final", "faults": []})

    def test_reread_after_rebalance_is_fine(self):
        # at-least-once: c1 reads again, at the same offsets, what c0 read
        h = history()
        for r in list(h["reads"]["c0"][:10]):
            h["reads"]["c1"].append([r[0], r[1], r[2], r[3] + 5, r[4]])
        self.assertOk(h)

    def test_unacknowledged_records_may_be_read(self):
        # a record whose acknowledgement was lost (timeout) but was written
        h = history()
        del h["acks"][5]
        self.assertOk(h)

    def test_unacknowledged_record_may_be_missing(self):
        # a write that timed out and never made it is not an acknowledged loss
        h = history(per_part=5)
        p, off = 0, 4
        h["acks"] = [a for a in h["acks"] if (a[1], a[2]) != (p, off)]
        for obs in h["reads"]:
            h["reads"][obs] = [r for r in h["reads"][obs] if (r[0], r[1]) != (p, off)]
        h["final_end"]["0"] = 4
        self.assertOk(h)

    def test_partition_keys_as_strings_or_ints(self):
        h = json.loads(json.dumps(history()))   # as read back from history.json
        self.assertOk(h)

    # -- 1: acked-at-offset --------------------------------------------
    def test_lost_acknowledged_record_fails(self):
        h = history()
        h["reads"]["final"] = [r for r in h["reads"]["final"] if (r[0], r[1]) != (1, 7)]
        r = self.assertViolated(h, "acked-at-offset", "agreement")  # c1 read it: vanished too
        self.assertIn("offset 7", r["violations"]["acked-at-offset"]["examples"][0])
        self.assertIn("nothing there", r["violations"]["acked-at-offset"]["examples"][0])

    def test_lost_record_nobody_read_fails(self):
        h = history()
        for obs in h["reads"]:
            h["reads"][obs] = [r for r in h["reads"][obs] if (r[0], r[1]) != (2, 19)]
        h["final_end"]["2"] = 19      # the log really ends before it (truncated)
        self.assertViolated(h, "acked-at-offset", "group-read-all")

    def test_acknowledged_without_offset_passes_when_stored(self):
        # librdkafka acknowledges a batch whose answer was lost without an
        # offset when a later batch of the producer succeeds
        h = history()
        h["acks"][3][2] = None
        self.assertOk(json.loads(json.dumps(h)))

    def test_acknowledged_without_offset_and_lost_fails(self):
        h = history()
        p, off = h["acks"][3][1], h["acks"][3][2]
        h["acks"][3][2] = None
        for obs in h["reads"]:
            h["reads"][obs] = [r for r in h["reads"][obs] if (r[0], r[1]) != (p, off)]
        h["final_end"][str(p)] = off  # the log ends before it
        r = self.assertViolated(h, "acked-at-offset", "group-read-all")
        self.assertIn("without an offset", r["violations"]["acked-at-offset"]["examples"][0])

    def test_acknowledged_at_another_offset_fails(self):
        h = history()
        h["acks"][0][2] = 5           # acknowledged at offset 5, stored at 0
        r = self.assertViolated(h, "acked-at-offset", "no-duplicates")
        self.assertIn("offset 5", r["violations"]["acked-at-offset"]["examples"][0])

    def test_other_value_at_acknowledged_offset_fails(self):
        # the log was truncated and another record took the offset everywhere
        h = history()
        for obs in h["reads"]:
            for r in h["reads"][obs]:
                if (r[0], r[1]) == (0, 3):
                    r[2] = "p9-999"
        self.assertViolated(h, "acked-at-offset")

    # -- 2: no-duplicates ----------------------------------------------
    def test_duplicate_in_final_read_fails(self):
        h = history()
        v = find(h, "final", 0, 2)[2]
        h["reads"]["final"].append([0, 20, v, T0 + 100, T0 + 50])
        h["final_end"]["0"] = 21
        r = self.assertViolated(h, "no-duplicates")
        self.assertIn(repr(v), r["violations"]["no-duplicates"]["examples"][0])

    def test_duplicate_across_consumers_fails(self):
        # c0 read the value at offset 2, c1 (after a rebalance) at offset 12
        h = history()
        v = find(h, "c0", 0, 2)[2]
        h["reads"]["c1"].append([0, 12, v, T0 + 60, T0 + 50])
        r = self.assertViolated(h, "no-duplicates", "agreement")   # c1 also disagrees with the final read at 0/12
        self.assertIn("c1", r["violations"]["no-duplicates"]["examples"][0])

    def test_duplicate_across_partitions_fails(self):
        h = history()
        v = find(h, "final", 1, 4)[2]
        h["reads"]["final"].append([2, 20, v, T0 + 100, T0 + 50])
        h["final_end"]["2"] = 21
        self.assertViolated(h, "no-duplicates")

    def resent_history(self, ids):
        # the final read holds one value twice in partition 0: at 2 and again at 20
        h = history()
        v = find(h, "final", 0, 2)[2]
        h["reads"]["final"].append([0, 20, v, T0 + 100, T0 + 50])
        h["final_end"]["0"] = 21
        self.assertEqual(checker.duplicate_positions(h), [(0, 2), (0, 20)])
        h["producer_ids"] = ids
        return h

    def test_resent_after_producer_epoch_bump_passes(self):
        # same producer id, a later epoch: librdkafka sent it again (KIP-360)
        r = self.assertOk(self.resent_history([[0, 2, 4096, 0], [0, 20, 4096, 1]]))
        self.assertEqual(r["stats"]["resent_after_epoch_bump"], 1)

    def test_duplicate_within_one_producer_epoch_fails(self):
        # the broker should have deduplicated this one
        self.assertViolated(self.resent_history([[0, 2, 4096, 0], [0, 20, 4096, 0]]), "no-duplicates")

    def test_duplicate_from_two_producer_ids_or_unknown_fails(self):
        self.assertViolated(self.resent_history([[0, 2, 4096, 0], [0, 20, 8192, 1]]), "no-duplicates")
        self.assertViolated(self.resent_history([[0, 2, 4096, 0]]), "no-duplicates")

    # -- 3: agreement ----------------------------------------------------
    def test_two_consumers_disagree_fails(self):
        h = history()
        r = find(h, "c0", 0, 4)
        h["reads"]["c1"].append([0, 4, "p7-777", r[3] + 1, r[4]])
        res = self.assertViolated(h, "agreement")
        ex = res["violations"]["agreement"]["examples"][0]
        self.assertIn("partition 0 offset 4", ex)
        self.assertIn("c1", ex)
        self.assertIn("p7-777", ex)

    def test_consumer_and_final_disagree_fails(self):
        h = history()
        find(h, "c1", 1, 9)[2] = "p5-555"   # c1 was served a record later replaced
        r = self.assertViolated(h, "agreement")
        self.assertIn("final", r["violations"]["agreement"]["examples"][0])

    def test_one_consumer_sees_two_values_at_one_offset_fails(self):
        h = history()
        r = find(h, "c0", 2, 6)
        h["reads"]["c0"].append([2, 6, "p4-444", r[3] + 3, r[4]])
        self.assertViolated(h, "agreement")

    def test_read_record_vanished_from_final_read_fails(self):
        # c0 read an unacknowledged record at 0/10 that the final read lacks
        # although it reads past offset 10
        h = history()
        h["acks"] = [a for a in h["acks"] if (a[1], a[2]) != (0, 10)]
        h["reads"]["final"] = [r for r in h["reads"]["final"] if (r[0], r[1]) != (0, 10)]
        r = self.assertViolated(h, "agreement")
        self.assertIn("missing from the final read", r["violations"]["agreement"]["examples"][0])

    # -- 4: resumed --------------------------------------------------------
    def test_no_consumption_after_fault_fails(self):
        h = history()
        h["faults"].append({"kind": "partition-leader", "node": 1, "start": T0 + 100, "end": T0 + 105})
        r = self.assertViolated(h, "resumed")
        self.assertIn("partition-leader of 1", r["violations"]["resumed"]["examples"][0])

    def test_slow_resumption_fails(self):
        h = history()
        end = h["faults"][0]["end"]
        for obs in h["group"]:
            for r in h["reads"][obs]:
                if r[4] > end:
                    r[3] = max(r[3], end + 45)     # nothing read for 45 s
        r = self.assertViolated(h, "resumed")
        self.assertIn("45.0 s later", r["violations"]["resumed"]["examples"][0])
        self.assertTrue(checker.check(h, resume_bound=60)["ok"])

    def test_only_old_records_read_after_fault_fails(self):
        # consumers read only records produced before the fault ended
        h = history()
        end = h["faults"][0]["end"]
        for obs in h["group"]:
            h["reads"][obs] = [r for r in h["reads"][obs] if r[4] <= end]
        r = checker.check(h)
        self.assertIn("resumed", r["violations"])
        self.assertIn("no group consumer read", r["violations"]["resumed"]["examples"][0])

    def test_final_reader_does_not_count_as_resumption(self):
        h = history()
        end = h["faults"][0]["end"]
        for obs in h["group"]:
            h["reads"][obs] = [r for r in h["reads"][obs] if r[4] <= end]
        r = checker.check(h)
        self.assertIn("resumed", r["violations"])

    def test_resumption_within_bound_passes(self):
        h = history()
        h["faults"] = [{"kind": "pause", "node": 3, "start": T0 + 1, "end": T0 + 2},
                       {"kind": "partition-one", "node": 1, "start": T0 + 3, "end": T0 + 4.5}]
        r = self.assertOk(h)
        self.assertEqual(r["counts"]["faults"], {"partition-one": 1, "pause": 1})
        self.assertLessEqual(r["stats"]["resume_s_max"], 1.0)

    # -- 5: group-read-all -------------------------------------------------
    def test_group_skipped_acknowledged_record_fails(self):
        h = history()
        h["reads"]["c0"] = [r for r in h["reads"]["c0"] if (r[0], r[1]) != (0, 8)]
        r = self.assertViolated(h, "group-read-all")
        self.assertEqual(r["violations"]["group-read-all"]["count"], 1)
        self.assertIn("offset 8", r["violations"]["group-read-all"]["examples"][0])

    # -- several at once, report and the command line -------------------------
    def test_every_property_reported(self):
        h = history()
        h["reads"]["final"] = [r for r in h["reads"]["final"] if (r[0], r[1]) != (1, 7)]   # 1
        v = find(h, "final", 0, 2)[2]
        h["reads"]["final"].append([0, 20, v, T0 + 100, T0 + 50])                            # 2
        find(h, "c1", 1, 9)[2] = "p5-555"                                                   # 3
        h["faults"].append({"kind": "pause", "node": 1, "start": T0 + 100, "end": T0 + 105})   # 4
        h["reads"]["c0"] = [r for r in h["reads"]["c0"] if (r[0], r[1]) != (0, 8)]         # 5
        r = checker.check(h)
        self.assertEqual(set(r["violations"]), {name for name, _ in checker.PROPERTIES})
        out = io.StringIO()
        checker.report(r, out)
        text = out.getvalue()
        self.assertEqual(text.count("FAIL "), 5, text)
        self.assertIn("e.g.", text)

    def test_examples_are_bounded(self):
        h = history(per_part=50)
        h["reads"]["final"] = []
        r = checker.check(h)
        self.assertEqual(r["violations"]["acked-at-offset"]["count"], 150)
        self.assertLessEqual(len(r["violations"]["acked-at-offset"]["examples"]), checker.EXAMPLES)

    def test_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "good.json")
            bad = os.path.join(d, "bad.json")
            h = history()
            with open(good, "w") as f:
                json.dump(h, f)
            h2 = copy.deepcopy(h)
            h2["reads"]["final"] = h2["reads"]["final"][1:]
            with open(bad, "w") as f:
                json.dump(h2, f)
            old = sys.stdout
            try:
                sys.stdout = io.StringIO()
                self.assertEqual(checker.main(["checker.py", good]), 0)
                self.assertEqual(checker.main(["checker.py", bad]), 1)
                text = sys.stdout.getvalue()
            finally:
                sys.stdout = old
            self.assertIn("FAIL acked-at-offset", text)
            summary = json.loads([ln for ln in text.splitlines() if ln.startswith("{")][-1])
            self.assertFalse(summary["ok"])


if __name__ == "__main__":
    res = unittest.main(exit=False, verbosity=2).result
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed, failed))
    sys.exit(1 if failed else 0)
