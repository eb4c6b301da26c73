#!/usr/bin/env bash
# make demo: starts a shopstream broker and shows a producer/consumer round
# trip through it with the shopstream CLI, then keeps the broker running for
# your own clients until Ctrl-C.  (The full e-commerce demo, `shopstream
# demo`, comes with the processors and the dashboard.)
set -eu
cd "$(dirname "$0")/.."
BIN=./bin/shopstream
PORT=${SHOPSTREAM_DEMO_PORT:-9092}
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    PORT=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
fi
DATA=$(mktemp -d /tmp/shopstream-demo.XXXXXX)
BOOT=127.0.0.1:$PORT
$BIN broker --listen "$BOOT" --data-dir "$DATA/data" --set group.initial.rebalance.delay.ms=0 2>"$DATA/broker.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "broker: $BOOT (data in $DATA/data, log in $DATA/broker.log)"
$BIN topic create shop.orders --partitions 3 --bootstrap "$BOOT"
echo "producing 5 order events keyed by order id..."
for i in 1 2 3 4 5; do
    printf 'order-%d\t{"id":"ev-%d","type":"order_created","order_id":"order-%d","amount":%d,"currency":"EUR"}\n' \
        "$i" "$i" "$i" $((i * 1250))
done | $BIN produce shop.orders --key-separator $'\t' --bootstrap "$BOOT"
echo "consuming them back:"
$BIN consume shop.orders --from-beginning --count 5 --print-key --bootstrap "$BOOT"
$BIN topic describe shop.orders --bootstrap "$BOOT" --no-configs
echo
echo "The broker keeps running at $BOOT: point any Kafka client at it (kcat -b $BOOT -L)."
echo "Press Ctrl-C to stop."
wait $PID
