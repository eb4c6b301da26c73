#!/usr/bin/env bash
# End-to-end tests of the serving layer (issue 8): the JSON API against the
# result topics (test_api.py), the operations console (test_api_ops.py), the
# Prometheus format checker (test_promcheck.py), every `shopstream bench`
# mode with small counts (test_bench.py), and the dashboard in
# headless Chromium driven by playwright-core (dashboard.mjs, which starts
# `shopstream demo` itself).  Each starts what it needs on free ports.
#
# usage: tests/e2e/run.sh [NAME...]  NAME: api, api_ops, promcheck, bench, cluster_cli, dashboard
# Prints PASS/FAIL per test, then "N passed, N failed".
#   SHOPSTREAM_TEST_VERBOSE=1  stream each test's output
set -u
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$DIR")")"
TIMEOUT="${SHOPSTREAM_TEST_TIMEOUT:-600}"
BIN="${SHOPSTREAM_BIN:-$ROOT/bin/shopstream}"
OUT="${SHOPSTREAM_E2E_OUT:-$ROOT/build/e2e}"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(promcheck api api_ops bench cluster_cli dashboard)
pass=0
fail=0
mkdir -p "$OUT"
for n in "${names[@]}"; do
    if [ "$n" = dashboard ]; then
        cmd=(node "$DIR/dashboard.mjs" --bin "$BIN" --out "$OUT")
    else
        cmd=(/usr/bin/python3 "$DIR/test_$n.py")
    fi
    log=$(mktemp)
    t0=$(date +%s)
    if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" = 1 ]; then
        timeout -k 10 "$TIMEOUT" "${cmd[@]}" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        timeout -k 10 "$TIMEOUT" "${cmd[@]}" >"$log" 2>&1
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
