#!/usr/bin/env bash
# Cluster fault tests (Jepsen-style): the history checker's unit tests, the
# harness self-test (network namespaces, partitions, process control,
# cleanup), and the fault test: 3 brokers in their own network namespaces
# under kill -9, SIGSTOP and network partitions while idempotent producers
# and a consumer group run (tests/cluster/test_faults.py).
#
# usage: tests/cluster/run.sh [--long] [TEST...]     (needs root; else SKIP)
#        tests/cluster/run.sh --list
#   TEST: checker   checker unit tests (synthetic histories)
#         harness   network + process control self-test, no broker
#         faults    the 3-broker fault test, 60 s of faults (--long: 600 s)
#         single    the same workload against ONE pre-cluster broker (kill -9
#                   and pause only, fsync before acknowledging), 20 s
#         sabotage  self-test of the whole chain: the single-broker run with
#                   segment tails cut at each kill must FAIL acked-at-offset
#         clients   kcat, kafka-python, confluent-kafka and the order
#                   processor across leader changes (3 brokers on 127.0.0.1,
#                   test_failover_clients.py; no namespaces needed)
#         reassign  partition reassignment and broker removal (5 brokers on
#                   127.0.0.1, test_reassign.py)
#   default: checker harness faults clients reassign
# Prints one line per test (PASS/FAIL/SKIP and seconds), then
# "N passed, N failed"; exits 1 if any test failed, 2 on a usage error.
#
# Environment: SHOPSTREAM_BIN (default bin/shopstream), SHOPSTREAM_FAULT_SEED,
# SHOPSTREAM_FAULT_SECONDS, SHOPSTREAM_FAULT_RATE (records/s per producer,
# 200), SHOPSTREAM_TEST_TIMEOUT (per test; default 900, 2400 with --long),
# SHOPSTREAM_TEST_VERBOSE=1 (stream each test's output).
set -u
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
PY=/usr/bin/python3
ALL=(checker harness faults single sabotage clients reassign)
DEFAULT=(checker harness faults clients reassign)

usage() { echo "usage: $0 [--long] [--list] [TEST...]   (TEST: ${ALL[*]})" >&2; exit 2; }

long=0
selected=()
for a in "$@"; do
    case "$a" in
        --list) printf '%s\n' "${ALL[@]}"; exit 0 ;;
        --long) long=1 ;;
        -h|--help) usage ;;
        *)
            found=0
            for t in "${ALL[@]}"; do [ "$a" = "$t" ] && found=1; done
            [ "$found" = 1 ] || { echo "unknown test: $a" >&2; usage; }
            selected+=("$a")
            ;;
    esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${DEFAULT[@]}")
if [ "$long" = 1 ]; then TIMEOUT="${SHOPSTREAM_TEST_TIMEOUT:-2400}"; else TIMEOUT="${SHOPSTREAM_TEST_TIMEOUT:-900}"; fi
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/shopstream-cluster-logs.XXXXXX")"

set_cmd() {
    EXPECT_FAIL=0
    case "$1" in
        checker) CMD=($PY "$DIR/test_checker.py") ;;
        harness) CMD=($PY "$DIR/test_harness.py") ;;
        faults) if [ "$long" = 1 ]; then CMD=($PY "$DIR/test_faults.py" --long); else CMD=($PY "$DIR/test_faults.py"); fi ;;
        single) CMD=($PY "$DIR/test_faults.py" --single) ;;
        sabotage) CMD=($PY "$DIR/test_faults.py" --single --sabotage --seconds 15); EXPECT_FAIL=1 ;;
        clients) CMD=($PY "$DIR/test_failover_clients.py") ;;
        reassign) CMD=($PY "$DIR/test_reassign.py") ;;
    esac
}

now() { date +%s%N; }

passed=0
failed=0
skipped=0
for t in "${selected[@]}"; do
    log="$LOGS/$t.log"
    set_cmd "$t"
    start=$(now)
    if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" = 1 ]; then
        (cd "$ROOT" && timeout -k 30 "$TIMEOUT" "${CMD[@]}") 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        (cd "$ROOT" && timeout -k 30 "$TIMEOUT" "${CMD[@]}") >"$log" 2>&1 </dev/null
        rc=$?
    fi
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    ok=0
    if [ "$EXPECT_FAIL" = 1 ]; then
        # must fail, and for the planted reason (not e.g. a cluster that never formed)
        [ "$rc" -eq 1 ] && grep -q '^FAIL acked-at-offset' "$log" && ok=1
    else
        [ "$rc" -eq 0 ] && ok=1
    fi
    if [ "$rc" -eq 0 ] && grep -q '^SKIP' "$log"; then
        skipped=$((skipped + 1))
        printf 'SKIP %-10s %7ss  %s\n' "$t" "$secs" "$(grep -m1 '^SKIP' "$log" | cut -c6-)"
    elif [ "$ok" = 1 ]; then
        passed=$((passed + 1))
        printf 'PASS %-10s %7ss\n' "$t" "$secs"
        grep -E '^\{' "$log" | tail -n 1 | cut -c1-400 | sed 's/^/    /'
    else
        failed=$((failed + 1))
        [ "$rc" -eq 124 ] && echo "  (timed out after ${TIMEOUT}s)" >>"$log"
        if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" != 1 ]; then
            echo "---- $t output (last 80 lines of $log) ----"
            tail -n 80 "$log" | sed 's/^/  /'
        fi
        [ "$EXPECT_FAIL" = 1 ] && echo "  (this self-test must FAIL acked-at-offset with exit 1)"
        printf 'FAIL %-10s %7ss  (exit %d, log %s)\n' "$t" "$secs" "$rc" "$log"
    fi
done

[ "$failed" -eq 0 ] && rm -rf "$LOGS"
[ "$skipped" -gt 0 ] && echo "$skipped skipped (network namespaces unavailable)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
