#!/usr/bin/env bash
# shellcheck disable=SC2119
# with_broker.sh CMD [ARGS...]: start a fresh shopstream broker (own free port,
# own temporary data dir), run CMD with SHOPSTREAM_TEST_BOOTSTRAP=127.0.0.1:PORT
# in its environment, then stop the broker (SIGTERM, SIGKILL after 10 s).
# Exits with CMD's status, or 1 if CMD passed but the broker did not stop
# cleanly.  With SHOPSTREAM_TEST_BOOTSTRAP already set, no broker is started.
# Any argument equal to @BOOTSTRAP@ is replaced by the broker's address.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
ss_start_broker || exit 1
args=()
for a in "$@"; do
    if [ "$a" = @BOOTSTRAP@ ]; then args+=("$SS_BOOTSTRAP"); else args+=("$a"); fi
done
SHOPSTREAM_TEST_BOOTSTRAP="$SS_BOOTSTRAP" "${args[@]}"
rc=$?
if ! ss_stop_broker && [ "$rc" -eq 0 ]; then
    echo "FAIL: the broker did not exit cleanly on SIGTERM" >&2
    rc=1
fi
exit "$rc"
