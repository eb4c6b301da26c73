#!/usr/bin/env bash
# E-commerce tests: the event sources (simulate, replay) and the stream
# processors, each test_*.py in its own process against brokers it starts
# itself (tests/clients/brokerproc.py) on free ports.
#
# usage: tests/shop/run.sh [NAME...]   NAME: a test file without test_ and .py
# Prints one line per test (PASS/FAIL and seconds), then "N passed, N failed".
#   SHOPSTREAM_TEST_VERBOSE=1  stream each test's output
set -u
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TIMEOUT="${SHOPSTREAM_TEST_TIMEOUT:-900}"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in "$DIR"/test_*.py; do
        n=$(basename "$f" .py)
        names+=("${n#test_}")
    done
fi
pass=0
fail=0
for n in "${names[@]}"; do
    f="$DIR/test_$n.py"
    [ -f "$f" ] || { echo "FAIL $n (no such test file $f)"; fail=$((fail + 1)); continue; }
    log=$(mktemp)
    t0=$(date +%s)
    if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" = 1 ]; then
        timeout -k 10 "$TIMEOUT" /usr/bin/python3 "$f" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        timeout -k 10 "$TIMEOUT" /usr/bin/python3 "$f" >"$log" 2>&1
        rc=$?
    fi
    t1=$(date +%s)
    if [ "$rc" -eq 0 ]; then
        echo "PASS $n ($((t1 - t0)) s)"
        pass=$((pass + 1))
    else
        [ "${SHOPSTREAM_TEST_VERBOSE:-0}" = 1 ] || tail -n 60 "$log"
        echo "FAIL $n (exit $rc, $((t1 - t0)) s)"
        fail=$((fail + 1))
    fi
    rm -f "$log"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
