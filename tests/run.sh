#!/usr/bin/env bash
# tests/run.sh: every test suite of `make test`, in order: unit tests, wire
# tests (raw frames against a real broker), client tests (kcat, librdkafka,
# kafka-python, confluent-kafka, KafkaJS), e-commerce tests (event sources and
# stream processors), cluster tests (3 brokers under faults, clients across
# leader changes), end-to-end tests (the HTTP API, /metrics and the
# dashboard in headless Chromium).  Each suite ends with a line "N passed,
# N failed"; this script adds them up and prints the total last.
set -u
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0
failed_suites=()

run_suite() {
    local name=$1
    shift
    echo "=== $name: $*"
    local out rc
    out=$(mktemp)
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "=== $name: no result line (exit $rc)"
        total_fail=$((total_fail + 1))
        failed_suites+=("$name")
        return
    fi
    local p f
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        total_fail=$((total_fail + 1))
    fi
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        failed_suites+=("$name")
    fi
}

run_suite unit "${SHOPSTREAM_UNIT_TESTS:-./bin/unit_tests}"
run_suite wire /usr/bin/python3 tests/wire/run_wire.py
run_suite connections /usr/bin/python3 tests/wire/test_connections.py
run_suite clients ./tests/clients/run.sh
run_suite shop ./tests/shop/run.sh
run_suite cluster ./tests/cluster/run.sh
run_suite e2e ./tests/e2e/run.sh

echo
if [ ${#failed_suites[@]} -gt 0 ]; then
    echo "failed suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
