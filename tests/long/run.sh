#!/usr/bin/env bash
# tests/long/run.sh: `make test-long`, the fault and soak runs too long for
# `make test` (each starts its own brokers on free ports):
#   crash-200      the crash test (tests/clients/test_crash.py) with 200
#                  SIGKILLs of the broker under an idempotent acks=all
#                  producer, two seeds: every acknowledged record exactly
#                  once, in order, at the offset its acknowledgement named
#   durability     tests/clients/test_durability.py three times
#   soak-group     16 producers and 16 librdkafka group consumers, 20 M
#                  records over 64 partitions: every record read
#   soak-fetch     the same with 40 M records and shopstream's fetch client
#   soak-durable   8 producers, acks=all, fsync before acknowledging,
#                  10 M records with 8 fetch consumers: every record read
#   latency-60s    a minute of produce-to-consume at 5,000 records/s:
#                  nothing lost (speed is judged by `make bench`)
#   cluster-faults the cluster fault test (tests/cluster/test_faults.py)
#                  with 10 minutes of kill -9, pauses and network partitions
# Prints PASS/FAIL per run, then "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BIN=bin/shopstream
PY=/usr/bin/python3
pass=0
fail=0
run() {
    local name=$1
    shift
    local t0 log
    t0=$(date +%s)
    log=$(mktemp)
    if timeout -k 10 3600 env "$@" >"$log" 2>&1; then
        echo "PASS $name ($(( $(date +%s) - t0 )) s)"
        pass=$((pass + 1))
    else
        echo "FAIL $name ($(( $(date +%s) - t0 )) s)"
        tail -n 30 "$log" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
    grep -E '^\{' "$log" | tail -n 1 | cut -c1-400 | sed 's/^/    /'
    rm -f "$log"
}
run crash-200-seed7 SHOPSTREAM_CRASH_KILLS=200 SHOPSTREAM_CRASH_SEED=7 $PY tests/clients/test_crash.py
run crash-200-seed11 SHOPSTREAM_CRASH_KILLS=200 SHOPSTREAM_CRASH_SEED=11 $PY tests/clients/test_crash.py
for i in 1 2 3; do
    run "durability-$i" $PY tests/clients/test_durability.py
done
run soak-group $BIN bench produce --records 20000000 --producers 16 --consumers 16 --partitions 64 \
    --consumer-client librdkafka
run soak-fetch $BIN bench produce --records 40000000 --producers 16 --consumers 16 --partitions 64
run soak-durable $BIN bench produce --records 10000000 --producers 8 --consumers 8 --partitions 16 \
    --acks all --set log.flush.interval.messages=1
run latency-60s $BIN bench e2e --seconds 60
run cluster-faults ./tests/cluster/run.sh --long faults
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
