#!/usr/bin/env bash
# shellcheck disable=SC2119
# librdkafka C round trip: builds bin/test_rdkafka_roundtrip if it is missing or
# older than rdkafka_roundtrip.c, then runs it against a fresh broker (see
# rdkafka_roundtrip.c for what it checks).  Env: see lib.sh.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROG="$SS_ROOT/bin/test_rdkafka_roundtrip"
SRC="$SS_CLIENTS_DIR/rdkafka_roundtrip.c"
if [ ! -x "$PROG" ] || [ "$SRC" -nt "$PROG" ]; then
    ss_log "building $PROG"
    if ! make -s -C "$SS_ROOT" bin/test_rdkafka_roundtrip; then
        ss_log "make failed; compiling directly"
        mkdir -p "$SS_ROOT/bin"
        cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o "$PROG" "$SRC" -lrdkafka || exit 1
    fi
fi

ss_start_broker || exit 1
timeout 900 "$PROG" "$SS_BOOTSTRAP"
rc=$?
[ "$rc" -eq 124 ] && echo "FAIL: test_rdkafka_roundtrip timed out" >&2
if ! ss_stop_broker && [ "$rc" -eq 0 ]; then
    echo "FAIL: the broker did not exit cleanly on SIGTERM" >&2
    rc=1
fi
exit "$rc"
