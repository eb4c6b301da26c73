#!/bin/sh
# check-deps.sh build|test: exits 0 when what that stage needs is present.
need_build() {
    for h in librdkafka/rdkafka.h microhttpd.h zlib.h snappy-c.h lz4frame.h zstd.h raft.h raft/uv.h uv.h; do
        [ -f "/usr/include/$h" ] || return 1
    done
    command -v cc >/dev/null || return 1
}
need_test() {
    need_build || return 1
    command -v kcat >/dev/null || return 1
    command -v ip >/dev/null && command -v setpriv >/dev/null || return 1
    /usr/bin/python3 -c 'import kafka, confluent_kafka, snappy, lz4, zstandard' 2>/dev/null || return 1
    command -v node >/dev/null || return 1
    [ -d tests/clients/node_modules/kafkajs ] || return 1
    [ -x /usr/bin/chromium ] || return 1
    [ -d tests/e2e/node_modules/playwright-core ] || return 1
}
case "$1" in
    build) need_build ;;
    test) need_test ;;
    *) echo "usage: check-deps.sh build|test" >&2; exit 2 ;;
esac
