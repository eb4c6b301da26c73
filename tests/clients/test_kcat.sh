#!/usr/bin/env bash
# shellcheck disable=SC2119
# kcat round trip: for each compression codec, create a 4-partition topic with
# `bin/shopstream topic create` (kcat cannot create topics), produce 100,000
# keyed records with `kcat -P -K '\t' -H ... -z CODEC`, consume them back with
# `kcat -C -e -f ...` (legacy per-partition consumer, no group) and check key,
# value, headers, timestamp, partition and offset of every record.
#
# kcat 1.7.1 cannot set a per-message timestamp or per-message headers with -P:
#  - headers: -H applies to every message of one kcat run, so the records are
#    produced by two kcat runs, the first with two headers (src, part=a), the
#    second with one (part=b); each consumed record must carry its run's set.
#  - timestamps: librdkafka stamps each message with the wall clock at
#    produce() time (CreateTime), so the check is that every consumed %T lies
#    inside the wall-clock window of its kcat run (1 s slack) and is
#    non-decreasing per partition within a run (1 s slack), and that -J reports
#    tstype "create".
# Which partition a key goes to is computed here with librdkafka's
# "consistent_random" partitioner (set explicitly): CRC-32(key) % partitions.
# The expected per-partition sequence is then the input order (kcat produces
# lines in order; one producer, so per-partition order is preserved), and
# offsets start at 0 in the fresh topic.
#
# Usage: test_kcat.sh   (env: SHOPSTREAM_TEST_BOOTSTRAP, SHOPSTREAM_TEST_CODECS,
#                        SHOPSTREAM_TEST_RECORDS, see lib.sh)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=4
N="$(ss_records)"
RUN="$(ss_run_id)"
command -v kcat >/dev/null || { echo "FAIL: kcat not installed" >&2; exit 1; }

ss_start_broker || exit 1
TMP="$(mktemp -d "${TMPDIR:-/tmp}/shopstream-kcat.XXXXXX")"
SS_TMPDIRS+=("$TMP")
B="$SS_BOOTSTRAP"

# Producer tuning: big batches, short linger, room for all 100k in the queue.
PROD_X=(-X linger.ms=20 -X batch.num.messages=10000 -X queue.buffering.max.messages=200000
        -X queue.buffering.max.kbytes=262144 -X partitioner=consistent_random)
CONS_X=(-X check.crcs=true -X fetch.max.bytes=52428800 -X max.partition.fetch.bytes=4194304
        -X queued.min.messages=200000)

failed=0
for codec in $(ss_codecs); do
    start=$SECONDS
    topic="kcat-$codec-$RUN"
    half=$((N / 2))
    ss_log "kcat/$codec: topic $topic, $N records"
    if ! ss_create_topic "$topic" "$PARTS"; then
        echo "FAIL kcat/$codec: topic create failed" >&2; failed=1; continue
    fi
    # The topic must be visible with all its partitions.
    md="$(timeout 30 kcat -L -b "$B" -t "$topic" -m 10 2>&1)"
    if ! grep -q "topic \"$topic\" with $PARTS partitions" <<<"$md"; then
        echo "FAIL kcat/$codec: metadata does not show $PARTS partitions:" >&2
        echo "$md" >&2; failed=1; continue
    fi

    # Input: "key<TAB>value" lines; part a = records [0, half), part b = the rest.
    "$SS_PY" - "$codec" "$N" "$half" "$TMP/in.a" "$TMP/in.b" <<'PYEOF'
import sys
codec, n, half = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def line(i):
    return "key-%06d\tkcat|%s|%06d|payload-abcdefghijklmnopqrstuvwxyz\n" % (i, codec, i)
with open(sys.argv[4], "w") as f:
    f.write("".join(line(i) for i in range(half)))
with open(sys.argv[5], "w") as f:
    f.write("".join(line(i) for i in range(half, n)))
PYEOF

    ta0=$(ss_now)
    if ! timeout 300 kcat -P -b "$B" -t "$topic" -K '\t' -z "$codec" \
            -H "src=kcat" -H "part=a" "${PROD_X[@]}" <"$TMP/in.a"; then
        echo "FAIL kcat/$codec: kcat -P (part a) failed" >&2; failed=1; continue
    fi
    ta1=$(ss_now)
    if ! timeout 300 kcat -P -b "$B" -t "$topic" -K '\t' -z "$codec" \
            -H "part=b" "${PROD_X[@]}" <"$TMP/in.b"; then
        echo "FAIL kcat/$codec: kcat -P (part b) failed" >&2; failed=1; continue
    fi
    tb1=$(ss_now)
    tp=$SECONDS

    if ! timeout 300 kcat -C -b "$B" -t "$topic" -o beginning -e -q "${CONS_X[@]}" \
            -f '%p\t%o\t%T\t%k\t%s\t%h\n' >"$TMP/out" 2>"$TMP/cons.err"; then
        echo "FAIL kcat/$codec: kcat -C failed:" >&2; tail -n 20 "$TMP/cons.err" >&2
        failed=1; continue
    fi
    timeout 60 kcat -C -b "$B" -t "$topic" -p 0 -o beginning -c 5 -e -q -J \
        >"$TMP/out.json" 2>>"$TMP/cons.err"

    if "$SS_PY" - "$codec" "$N" "$half" "$PARTS" "$ta0" "$ta1" "$tb1" \
            "$TMP/out" "$TMP/out.json" <<'PYEOF'
import json, sys, zlib
codec = sys.argv[1]
n, half, parts = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ta0, ta1, tb1 = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
SLACK = 1000
errors = []
def err(msg):
    errors.append(msg)
    if len(errors) <= 20:
        print("  mismatch: " + msg, file=sys.stderr)

def key(i): return "key-%06d" % i
def value(i): return "kcat|%s|%06d|payload-abcdefghijklmnopqrstuvwxyz" % (codec, i)

# Expected per-partition sequence (librdkafka consistent_random = crc32 % parts).
expected = [[] for _ in range(parts)]
for i in range(n):
    expected[zlib.crc32(key(i).encode()) % parts].append(i)

got = [[] for _ in range(parts)]
with open(sys.argv[8], "rb") as f:
    for lineno, raw in enumerate(f, 1):
        fields = raw.decode("utf-8", "replace").rstrip("\n").split("\t")
        if len(fields) != 6:
            err("line %d: cannot parse %r" % (lineno, raw[:200])); continue
        p, o, ts, k, v, h = fields
        p, o, ts = int(p), int(o), int(ts)
        if not 0 <= p < parts:
            err("line %d: partition %d" % (lineno, p)); continue
        got[p].append((o, ts, k, v, h))

total = 0
for p in range(parts):
    exp, g = expected[p], got[p]
    total += len(g)
    if not exp:
        err("partition %d got no records (keys not spread)" % p)
    if len(g) != len(exp):
        err("partition %d: consumed %d records, produced %d" % (p, len(g), len(exp)))
    last_ts = {"a": None, "b": None}
    for j, (o, ts, k, v, h) in enumerate(g):
        if j >= len(exp):
            err("partition %d: extra record at offset %d key %s" % (p, o, k)); break
        i = exp[j]
        part = "a" if i < half else "b"
        try:
            seq = int(v.split("|")[2])
        except (IndexError, ValueError):
            seq = None
        where = "partition %d index %d offset %d" % (p, j, o)
        if o != j:
            err("%s: offset %d, expected %d" % (where, o, j))
        if seq != i or k != key(i) or v != value(i):
            err("%s: got key %r value %r (seq %s), expected key %r value %r"
                % (where, k, v, seq, key(i), value(i)))
            continue
        want_h = "src=kcat,part=a" if part == "a" else "part=b"
        if h != want_h:
            err("%s: headers %r, expected %r" % (where, h, want_h))
        lo, hi = (ta0, ta1) if part == "a" else (ta1, tb1)
        if not (lo - SLACK <= ts <= hi + SLACK):
            err("%s: timestamp %d outside the produce window [%d, %d]" % (where, ts, lo, hi))
        if last_ts[part] is not None and ts < last_ts[part] - SLACK:
            err("%s: timestamp %d goes back from %d" % (where, ts, last_ts[part]))
        last_ts[part] = ts

with open(sys.argv[9]) as f:
    js = [json.loads(l) for l in f if l.strip()]
if not js:
    err("kcat -J consumed nothing from partition 0")
for m in js:
    if m.get("tstype") != "create":
        err("kcat -J: tstype %r, expected 'create' (%r)" % (m.get("tstype"), m))

if errors:
    print("  %d mismatches; consumed %d of %d records" % (len(errors), total, n), file=sys.stderr)
    sys.exit(1)
print("  verified %d records: per partition %s" % (total, [len(e) for e in expected]), file=sys.stderr)
PYEOF
    then
        ss_log "ok kcat/$codec: produce $((tp - start))s, consume+verify $((SECONDS - tp))s"
    else
        echo "FAIL kcat/$codec" >&2
        tail -n 5 "$TMP/cons.err" >&2
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "kcat: FAILED" >&2
    exit 1
fi
ss_stop_broker || { echo "FAIL: the broker did not exit cleanly on SIGTERM" >&2; exit 1; }
echo "kcat: all codecs passed"
