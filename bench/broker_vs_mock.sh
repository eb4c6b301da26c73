#!/usr/bin/env bash
# bench/broker_vs_mock.sh [ROUNDS]: produce and consume throughput of
# shopstream against librdkafka's in-memory mock cluster (an upper bound for
# produce on this machine), measured with shared/tools/kbench in one run,
# alternating, and reported as medians and the ratio.  Prints JSON lines.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
N=${KBENCH_COUNT:-1000000}
make -s bin/shopstream bin/kbench bin/mockbroker
WORK=$(mktemp -d /tmp/shopstream-bench.XXXXXX)
PORT=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
./bin/shopstream broker --listen 127.0.0.1:$PORT --data-dir "$WORK/data" 2>"$WORK/broker.log" &
BPID=$!
./bin/mockbroker >"$WORK/mock.addr" 2>/dev/null &
MPID=$!
trap 'kill $BPID $MPID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && [ -s "$WORK/mock.addr" ] && break; sleep 0.1; done
MOCK=$(head -1 "$WORK/mock.addr")
./bin/shopstream topic create bench --partitions 1 --bootstrap 127.0.0.1:$PORT >/dev/null
ours=() mock=() cons=()
for r in $(seq "$ROUNDS"); do
    m=$(./bin/kbench produce -b "$MOCK" -t bench -n "$N" -s 100 2>/dev/null | tail -1)
    o=$(./bin/kbench produce -b 127.0.0.1:$PORT -t bench -n "$N" -s 100 2>/dev/null | tail -1)
    c=$(./bin/kbench consume -b 127.0.0.1:$PORT -t bench -n "$N" -g "bench-$r" 2>/dev/null | tail -1)
    echo "round $r mock:  $m"
    echo "round $r ours:  $o"
    echo "round $r consume ours: $c"
    mock+=("$(echo "$m" | sed -E 's/.*"msgs_per_s":([0-9]+).*/\1/')")
    ours+=("$(echo "$o" | sed -E 's/.*"msgs_per_s":([0-9]+).*/\1/')")
    cons+=("$(echo "$c" | sed -E 's/.*"msgs_per_s":([0-9]+).*/\1/')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mm=$(median "${mock[@]}")
om=$(median "${ours[@]}")
cm=$(median "${cons[@]}")
echo "{\"bench\":\"produce-100B-acks1\",\"rounds\":$ROUNDS,\"shopstream_msgs_per_s\":$om,\"mock_msgs_per_s\":$mm,\"ratio\":$(awk "BEGIN{printf \"%.2f\", $om/$mm}"),\"shopstream_consume_msgs_per_s\":$cm}"
