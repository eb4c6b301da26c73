#!/usr/bin/env bash
# Real-client acceptance tests: kcat, kafka-python, confluent-kafka, librdkafka
# (C) and KafkaJS each round-trip 100,000 records per compression codec through
# a fresh shopstream broker (every test starts its own on a free port with its
# own data dir, and stops it).
#
# usage: tests/clients/run.sh [TEST...]      TEST: kcat kafka-python confluent rdkafka kafkajs durability groups crash retention
#        tests/clients/run.sh --list
# Prints one line per test (PASS/FAIL and seconds), then "N passed, N failed";
# exits 1 if any test failed, 2 on a usage error.
#
# Environment (see lib.sh for the rest):
#   SHOPSTREAM_TEST_BOOTSTRAP=host:port  run against that broker instead
#   SHOPSTREAM_TEST_CODECS, SHOPSTREAM_TEST_RECORDS   narrow a run
#   SHOPSTREAM_TEST_TIMEOUT=seconds      per-test limit (default 900)
#   SHOPSTREAM_TEST_VERBOSE=1            stream each test's output (otherwise only
#                                        a failing test's output is shown)
set -u
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
ALL=(kcat kafka-python confluent rdkafka kafkajs durability groups crash retention)

usage() { echo "usage: $0 [--list] [TEST...]   (TEST: ${ALL[*]})" >&2; exit 2; }

selected=()
for a in "$@"; do
    case "$a" in
        --list) printf '%s\n' "${ALL[@]}"; exit 0 ;;
        -h|--help) usage ;;
        kafka_python|kafkapython) selected+=(kafka-python) ;;
        confluent-kafka|confluent_kafka) selected+=(confluent) ;;
        librdkafka) selected+=(rdkafka) ;;
        *)
            found=0
            for t in "${ALL[@]}"; do [ "$a" = "$t" ] && found=1; done
            [ "$found" = 1 ] || { echo "unknown test: $a" >&2; usage; }
            selected+=("$a")
            ;;
    esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${ALL[@]}")

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/shopstream-clients-logs.XXXXXX")"
TIMEOUT="${SHOPSTREAM_TEST_TIMEOUT:-900}"

# Commands of each test.  Python and node tests go through with_broker.sh,
# which starts and stops the broker (or uses SHOPSTREAM_TEST_BOOTSTRAP).
set_cmd() {
    case "$1" in
        kcat) CMD=(bash "$DIR/test_kcat.sh") ;;
        kafka-python) CMD=(bash "$DIR/with_broker.sh" /usr/bin/python3 "$DIR/test_kafka_python.py") ;;
        confluent) CMD=(bash "$DIR/with_broker.sh" /usr/bin/python3 "$DIR/test_confluent.py") ;;
        rdkafka) CMD=(bash "$DIR/test_rdkafka.sh") ;;
        kafkajs) CMD=(bash "$DIR/with_broker.sh" node "$DIR/kafkajs_roundtrip.js") ;;
        durability) CMD=(/usr/bin/python3 "$DIR/test_durability.py") ;;
        crash) CMD=(/usr/bin/python3 "$DIR/test_crash.py") ;;
        retention) CMD=(/usr/bin/python3 "$DIR/test_retention.py") ;;
        groups) CMD=(/usr/bin/python3 "$DIR/test_groups.py") ;;
    esac
}

# KafkaJS and its codecs come from npm (make deps runs npm ci); try once here.
prepare() {
    if [ "$1" = kafkajs ] && [ ! -d "$DIR/node_modules/kafkajs" ]; then
        echo "node_modules missing: running npm ci in $DIR"
        (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

now() { date +%s%N; }

passed=0
failed=0
for t in "${selected[@]}"; do
    log="$LOGS/$t.log"
    set_cmd "$t"
    start=$(now)
    if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" = 1 ]; then
        { prepare "$t" && (cd "$ROOT" && timeout -k 15 "$TIMEOUT" "${CMD[@]}"); } 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        { prepare "$t" && (cd "$ROOT" && timeout -k 15 "$TIMEOUT" "${CMD[@]}"); } >"$log" 2>&1 </dev/null
        rc=$?
    fi
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'PASS %-13s %7ss\n' "$t" "$secs"
    else
        failed=$((failed + 1))
        [ "$rc" -eq 124 ] && echo "  (timed out after ${TIMEOUT}s)" >>"$log"
        if [ "${SHOPSTREAM_TEST_VERBOSE:-0}" != 1 ]; then
            echo "---- $t output (last 60 lines of $log) ----"
            tail -n 60 "$log" | sed 's/^/  /'
        fi
        printf 'FAIL %-13s %7ss  (exit %d, log %s)\n' "$t" "$secs" "$rc" "$log"
    fi
done

[ "$failed" -eq 0 ] && rm -rf "$LOGS"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
