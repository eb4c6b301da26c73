# shellcheck shell=bash
# Shell helpers for the real-client tests.  Source it from bash:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   ss_start_broker [--set key=value]...   # sets SS_BOOTSTRAP (host:port)
#   ...run a client against "$SS_BOOTSTRAP"...
#   ss_stop_broker                         # also done by the EXIT trap
#
# Environment:
#   SHOPSTREAM_TEST_BOOTSTRAP=host:port  use that broker (e.g. librdkafka's mock
#                                        cluster) instead of starting one
#   SHOPSTREAM_BIN=path                  broker binary (default: <repo>/bin/shopstream)
#   SHOPSTREAM_TEST_BROKER_ARGS="..."    extra broker arguments (word-split)
#   SHOPSTREAM_TEST_KEEP=1               keep the broker's data dir and log
#   SHOPSTREAM_TEST_SKIP_CREATE=1        do not create topics (mock cluster: it
#                                        auto-creates them with 4 partitions)
#   SHOPSTREAM_TEST_CODECS="none gzip"   codecs to test (default: all five)
#   SHOPSTREAM_TEST_RECORDS=N            records per codec (default 100000)
#   SHOPSTREAM_TEST_ALLOW_UNCLEAN_EXIT=1 do not fail when the broker does not
#                                        exit 0 on SIGTERM

SS_CLIENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SS_ROOT="$(cd "$SS_CLIENTS_DIR/../.." && pwd)"
SS_BIN="${SHOPSTREAM_BIN:-$SS_ROOT/bin/shopstream}"
SS_PY=/usr/bin/python3 # Debian's python: it has kafka, confluent_kafka, snappy, lz4, zstandard
SS_BROKER_PID=""
SS_BOOTSTRAP=""
SS_WORK=""
SS_BROKER_LOG=""
SS_DATA_DIR=""
SS_TMPDIRS=() # more temporary dirs for ss_cleanup to remove

ss_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ss_now() { date +%s%N | cut -c1-13; } # milliseconds since the epoch

# ss_free_port: print a TCP port on 127.0.0.1 that nothing listens on.
ss_free_port() {
    if [ -x "$SS_PY" ]; then
        "$SS_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
    fi
    # Fallback: probe random high ports with bash's /dev/tcp.
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# ss_port_open PORT: true when 127.0.0.1:PORT accepts a connection.
ss_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ss_start_broker [broker args...]: start a fresh broker with its own data dir
# and wait (10 s at most) until it accepts connections.  Sets SS_BOOTSTRAP and
# exports SHOPSTREAM_TEST_BOOTSTRAP for child processes.
ss_start_broker() {
    if [ -n "${SHOPSTREAM_TEST_BOOTSTRAP:-}" ]; then
        SS_BOOTSTRAP="$SHOPSTREAM_TEST_BOOTSTRAP"
        ss_log "using external broker at $SS_BOOTSTRAP (SHOPSTREAM_TEST_BOOTSTRAP)"
        return 0
    fi
    if [ ! -x "$SS_BIN" ]; then
        ss_log "broker binary $SS_BIN not found: run 'make' first"
        return 1
    fi
    local port
    port="$(ss_free_port)" || { ss_log "no free port found"; return 1; }
    SS_WORK="$(mktemp -d "${TMPDIR:-/tmp}/shopstream-clienttest.XXXXXX")"
    SS_DATA_DIR="$SS_WORK/data"
    SS_BROKER_LOG="$SS_WORK/broker.log"
    mkdir -p "$SS_DATA_DIR"
    # shellcheck disable=SC2086
    "$SS_BIN" broker --listen "127.0.0.1:$port" --data-dir "$SS_DATA_DIR" \
        ${SHOPSTREAM_TEST_BROKER_ARGS:-} "$@" </dev/null >>"$SS_BROKER_LOG" 2>&1 &
    SS_BROKER_PID=$!
    local deadline=$((SECONDS + 10))
    while ! ss_port_open "$port"; do
        if ! kill -0 "$SS_BROKER_PID" 2>/dev/null; then
            wait "$SS_BROKER_PID"
            ss_log "broker exited early with status $?; log:"
            tail -n 40 "$SS_BROKER_LOG" >&2
            SS_BROKER_PID=""
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            ss_log "broker did not accept connections on port $port within 10 s; log:"
            tail -n 40 "$SS_BROKER_LOG" >&2
            return 1
        fi
        sleep 0.05
    done
    SS_BOOTSTRAP="127.0.0.1:$port"
    export SHOPSTREAM_TEST_BOOTSTRAP="$SS_BOOTSTRAP"
    ss_log "broker pid $SS_BROKER_PID listening on $SS_BOOTSTRAP (data dir $SS_DATA_DIR)"
}

# ss_alive PID: true while PID runs (an exited child that is not yet reaped
# still answers kill -0, so look at its state).
ss_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)"
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ss_stop_broker: SIGTERM, wait up to 10 s, then SIGKILL.  Returns non-zero if
# the broker had to be killed or did not exit with status 0.
ss_stop_broker() {
    [ -n "$SS_BROKER_PID" ] || return 0
    local pid="$SS_BROKER_PID" rc=0 status
    SS_BROKER_PID=""
    if ss_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        local deadline=$((SECONDS + 10))
        while ss_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.05
        done
        if ss_alive "$pid"; then
            ss_log "broker pid $pid still running 10 s after SIGTERM: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            rc=1
        fi
    fi
    wait "$pid" 2>/dev/null
    status=$?
    if [ "$rc" -eq 0 ] && [ "$status" -ne 0 ]; then
        ss_log "broker exited with status $status after SIGTERM (expected 0)"
        rc=1
    fi
    [ "${SHOPSTREAM_TEST_ALLOW_UNCLEAN_EXIT:-0}" = 1 ] && rc=0
    return "$rc"
}

# ss_cleanup: EXIT trap.  Stops the broker, shows its log on failure, removes
# the temporary dir (unless SHOPSTREAM_TEST_KEEP=1).
ss_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SS_BROKER_PID" ]; then
        ss_stop_broker || { [ "$rc" -eq 0 ] && rc=1; }
    fi
    if [ "$rc" -ne 0 ] && [ -n "$SS_BROKER_LOG" ] && [ -f "$SS_BROKER_LOG" ]; then
        ss_log "test failed (status $rc); last lines of the broker log $SS_BROKER_LOG:"
        tail -n 30 "$SS_BROKER_LOG" >&2
    fi
    local d
    for d in "${SS_TMPDIRS[@]}"; do [ -d "$d" ] && rm -rf "$d"; done
    if [ -n "$SS_WORK" ] && [ -d "$SS_WORK" ]; then
        if [ "${SHOPSTREAM_TEST_KEEP:-0}" = 1 ]; then
            ss_log "kept $SS_WORK"
        else
            rm -rf "$SS_WORK"
        fi
    fi
    exit "$rc"
}
trap ss_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ss_codecs: the compression codecs to test (SHOPSTREAM_TEST_CODECS overrides).
ss_codecs() { echo "${SHOPSTREAM_TEST_CODECS:-none gzip snappy lz4 zstd}"; }

# ss_records: records per codec (SHOPSTREAM_TEST_RECORDS overrides).
ss_records() { echo "${SHOPSTREAM_TEST_RECORDS:-100000}"; }

# ss_run_id: a short id that makes topic names unique per run.
ss_run_id() { echo "$$-$(date +%s)"; }

# ss_create_topic NAME PARTITIONS: create a topic with the shopstream CLI.
# Without a broker binary (e.g. against SHOPSTREAM_TEST_BOOTSTRAP=<mock
# cluster> before the CLI exists) it falls back to confluent-kafka's
# AdminClient.  SHOPSTREAM_TEST_SKIP_CREATE=1 skips the create (for librdkafka's
# mock cluster, whose Metadata names a controller id that does not exist, so
# admin requests never leave the client; it auto-creates 4-partition topics).
ss_create_topic() {
    local name="$1" parts="$2"
    if [ "${SHOPSTREAM_TEST_SKIP_CREATE:-0}" = 1 ]; then
        ss_log "not creating $name (SHOPSTREAM_TEST_SKIP_CREATE=1): relying on auto-creation"
        return 0
    fi
    if [ -x "$SS_BIN" ] && [ "${SHOPSTREAM_TEST_CREATE_WITH_ADMIN:-0}" != 1 ]; then
        "$SS_BIN" topic create "$name" --partitions "$parts" --bootstrap "$SS_BOOTSTRAP"
        return
    fi
    ss_log "creating $name with confluent-kafka AdminClient (no $SS_BIN)"
    "$SS_PY" - "$SS_BOOTSTRAP" "$name" "$parts" <<'PYEOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, name, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
fs = admin.create_topics(
    [NewTopic(name, num_partitions=parts, replication_factor=1)], operation_timeout=10)
fs[name].result(timeout=30)
PYEOF
}
