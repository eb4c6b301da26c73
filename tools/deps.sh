#!/bin/sh
# Installs everything shopstream needs on Debian 12: build libraries, the
# reference Kafka clients used by the tests, and KafkaJS from npm.
set -e
PKGS="build-essential pkg-config librdkafka-dev kcat zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev libcjson-dev libmicrohttpd-dev libraft-dev libuv1-dev iproute2 util-linux \
python3 python3-kafka python3-confluent-kafka python3-snappy python3-lz4 python3-zstandard nodejs npm chromium"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# nodejs may come from another source than Debian; npm then ships with it.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -v -x -e nodejs -e npm | tr '\n' ' ')
fi
if [ -n "$(echo $missing)" ]; then
    echo "deps: installing$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    echo "deps: installing playwright-core (drives Debian's chromium in the dashboard test)"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/clients/node_modules/kafkajs ]; then
    echo "deps: installing KafkaJS and pure-JS codecs from npm"
    (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
fi
