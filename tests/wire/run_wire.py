#!/usr/bin/python3
"""run_wire.py: byte-exact wire tests against a real shopstream broker.

Each test group starts one broker process (bin/shopstream broker) on a free
port with a fresh data directory and its own settings, runs its tests, and
stops the broker by PID (SIGTERM, then SIGKILL).  After every test the
runner checks that the broker process is alive and answers ApiVersions on a
fresh connection; if not, the test fails and the broker is restarted for the
rest of the group.  Broker.restart(signal) stops a broker with SIGTERM or
SIGKILL and starts it again on the same data directory (persistence tests).
The "groups" group runs the group coordinator tests with
group.initial.rebalance.delay.ms=0.

Usage: /usr/bin/python3 tests/wire/run_wire.py [-v] [NAME_OR_PREFIX...]
Prints "ok NAME" or "FAIL NAME: reason" per test and "N passed, N failed".
SHOPSTREAM_BIN overrides the broker binary.  Wire format reference:
/work/shared/kafka-protocol/README.md; hostile-input cases:
/work/shared/RELIABILITY.md.
"""
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kwire import *  # noqa: E402,F401,F403

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SHOPSTREAM_BIN", os.path.join(ROOT, "bin", "shopstream"))
VERBOSE = False

# Kafka error codes used below.
NONE, OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION = 0, 1, 2, 3
MESSAGE_TOO_LARGE, INVALID_TOPIC_EXCEPTION, INVALID_REQUIRED_ACKS = 10, 17, 21
UNSUPPORTED_VERSION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS = 35, 36, 37
INVALID_REPLICATION_FACTOR, INVALID_CONFIG, INVALID_REQUEST = 38, 40, 42
INVALID_TXN_STATE, UNSUPPORTED_COMPRESSION_TYPE, INVALID_RECORD = 48, 76, 87
OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH = 45, 47
OFFSET_METADATA_TOO_LARGE, COORDINATOR_NOT_AVAILABLE = 12, 15
ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID = 22, 23, 24, 25
INVALID_SESSION_TIMEOUT, REBALANCE_IN_PROGRESS, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND = 26, 27, 68, 69
MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID, GROUP_SUBSCRIBED_TO_TOPIC = 79, 82, 86

# The ranges the broker must advertise (the brief); more keys may appear.
EXPECTED_RANGES = {0: (0, 7), 1: (0, 11), 2: (0, 3), 3: (0, 6), 18: (0, 3), 19: (0, 4), 20: (0, 3),
                   32: (0, 2), 37: (0, 1)}

# ---------------------------------------------------------------- broker process


class BrokerStartError(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """One broker process with its own port and data directory."""

    def __init__(self, settings):
        self.settings = dict(settings)
        self.proc = None
        self.dir = None
        self.port = None

    def start(self):
        if not os.access(BIN, os.X_OK):
            raise BrokerStartError("%s is missing: run make bin/shopstream" % BIN)
        last = ""
        for _ in range(5):
            self.dir = tempfile.mkdtemp(prefix="shopstream-wire-")
            self.port = free_port()
            args = [BIN, "broker", "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                    os.path.join(self.dir, "data")]
            for k, v in self.settings.items():
                args += ["--set", "%s=%s" % (k, v)]
            self.log_path = os.path.join(self.dir, "broker.log")
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with Conn(self.port, timeout=1) as c:
                        r = c.roundtrip(API_API_VERSIONS, 0, b"")
                        decode_api_versions(r, 0)
                    return
                except (OSError, Closed, DecodeError):
                    time.sleep(0.05)
            last = self.log_tail()
            self.stop()
        raise BrokerStartError("broker did not start: " + last)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status_kb(self, field):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def log_tail(self, n=8):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return " | ".join(lines[-n:])
        except (OSError, AttributeError):
            return ""

    def keep_log(self):
        """Copies the broker log out of the data directory; returns its path."""
        try:
            fd, path = tempfile.mkstemp(prefix="shopstream-wire-failed-", suffix=".log")
            os.close(fd)
            shutil.copyfile(self.log_path, path)
            return path
        except (OSError, AttributeError):
            return None

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, signal.SIGTERM)
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                except ProcessLookupError:
                    pass
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout=timeout)

    def restart(self, sig=signal.SIGTERM):
        """Stops the process with sig (SIGTERM: clean shutdown, SIGKILL: a
        crash) and starts it again on the same data directory, on the same
        port when it is free.  Raises BrokerStartError if it does not come
        back."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise BrokerStartError("broker did not exit within 10 s of signal %d" % sig)
        self.proc = None
        for attempt in range(3):
            if attempt:
                self.port = free_port()
            args = [BIN, "broker", "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                    os.path.join(self.dir, "data")]
            for k, v in self.settings.items():
                args += ["--set", "%s=%s" % (k, v)]
            with open(self.log_path, "ab") as log:
                log.write(b"---- restart after signal %d ----\n" % sig)
                log.flush()
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with Conn(self.port, timeout=1) as c:
                        decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b""), 0)
                    return
                except (OSError, Closed, DecodeError):
                    time.sleep(0.05)
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None
        raise BrokerStartError("broker did not restart on its data dir: " + self.log_tail())

# ---------------------------------------------------------------- assertions


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


def one_of(actual, allowed, what):
    if actual not in allowed:
        raise TestFailure("%s: expected one of %r, got %r" % (what, allowed, actual))


def bytes_eq(actual, expected, what):
    if actual != expected:
        n = next((i for i in range(min(len(actual), len(expected))) if actual[i] != expected[i]),
                 min(len(actual), len(expected)))
        raise TestFailure("%s: bytes differ at %d (len %d vs expected %d): got %s... expected %s..." % (
            what, n, len(actual), len(expected), actual[max(0, n - 4):n + 16].hex(),
            expected[max(0, n - 4):n + 16].hex()))

# ---------------------------------------------------------------- request helpers


def api_versions_ok(b, timeout=3.0):
    """None when the broker answers ApiVersions v0 on a fresh connection."""
    if not b.alive():
        return "broker process exited (status %r): %s" % (b.proc.poll() if b.proc else None, b.log_tail())
    try:
        with b.conn(timeout) as c:
            r = c.roundtrip(API_API_VERSIONS, 0, b"", timeout=timeout)
            out = decode_api_versions(r, 0)
            if out["error"] != 0:
                return "ApiVersions error %d" % out["error"]
    except (OSError, Closed, DecodeError) as e:
        return "ApiVersions on a fresh connection failed: %s" % e
    return None


def call(c, api, v, body, decode, **kw):
    return decode(c.roundtrip(api, v, body, **kw), v)


def metadata(c, v, topics, allow_auto=True):
    return call(c, API_METADATA, v, metadata_body(v, topics, allow_auto), decode_metadata)


def create_topics(c, topics, v=4, validate_only=False):
    return call(c, API_CREATE_TOPICS, v, create_topics_body(v, topics, validate_only=validate_only),
                decode_create_topics)


def create_topic(b, name, partitions=1, configs=()):
    with b.conn() as c:
        out = create_topics(c, [(name, partitions, 1, [], list(configs))])
    eq(out["topics"][0]["error"], 0, "CreateTopics %s error" % name)


def topic_exists(c, name):
    """Metadata v4 without auto-creation: True, False (error 3), or failure."""
    t = metadata(c, 4, [name], allow_auto=False)["topics"][0]
    if t["error"] == UNKNOWN_TOPIC_OR_PARTITION:
        return False
    eq(t["error"], 0, "Metadata error for %s" % name)
    return True


def produce(c, topic, partition, records, v=7, acks=1, timeout_ms=5000):
    """One batch (or None) to one partition; returns the partition response."""
    out = call(c, API_PRODUCE, v, produce_body(v, acks, [(topic, [(partition, records)])], timeout_ms),
               decode_produce)
    eq(len(out["topics"]), 1, "Produce response topic count")
    eq(out["topics"][0]["name"], topic, "Produce response topic")
    eq(len(out["topics"][0]["partitions"]), 1, "Produce response partition count")
    p = out["topics"][0]["partitions"][0]
    eq(p["index"], partition, "Produce response partition")
    return p


def produce_ok(b, topic, partition, records, v=7, expect_base=None):
    with b.conn() as c:
        p = produce(c, topic, partition, records, v=v)
    eq(p["error"], 0, "Produce error")
    if expect_base is not None:
        eq(p["base_offset"], expect_base, "Produce base offset")
    return p


def fetch(c, topic, partition, offset, v=11, max_wait_ms=0, min_bytes=1, max_bytes=10 << 20,
          partition_max_bytes=1 << 20, timeout=None):
    out = call(c, API_FETCH, v, fetch_body(v, [(topic, [(partition, offset, partition_max_bytes)])],
                                           max_wait_ms, min_bytes, max_bytes), decode_fetch, timeout=timeout)
    eq(len(out["topics"]), 1, "Fetch response topic count")
    eq(out["topics"][0]["name"], topic, "Fetch response topic")
    eq(len(out["topics"][0]["partitions"]), 1, "Fetch response partition count")
    p = out["topics"][0]["partitions"][0]
    eq(p["index"], partition, "Fetch response partition")
    return p, out


def log_end(c, topic, partition=0):
    out = call(c, API_LIST_OFFSETS, 1, list_offsets_body(1, [(topic, [(partition, -1)])]),
               decode_list_offsets)
    p = out["topics"][0]["partitions"][0]
    eq(p["error"], 0, "ListOffsets error")
    return p["offset"]


def expect_log_end(b, topic, expected, partition=0):
    with b.conn() as c:
        eq(log_end(c, topic, partition), expected, "log end offset of %s-%d" % (topic, partition))


def records_of(blob):
    """(offset, key, value) of every record in a v2 records blob."""
    batches, tail = parse_batches(blob or b"")
    eq(tail, 0, "partial batch bytes at the end of the fetch")
    out = []
    for bt in batches:
        eq(bt["magic"], 2, "fetched batch magic")
        check(bt["crc_ok"], "fetched batch at %d has a bad CRC-32C" % bt["base_offset"])
        check("records" in bt, "fetched batch records undecodable: %s" % bt.get("records_error"))
        out += [(x["offset"], x["key"], x["value"]) for x in bt["records"]]
    return out


def send_and_expect_close(b, data, what, timeout=3.0):
    with b.conn() as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return
        err = c.expect_closed(timeout)
    if err:
        raise TestFailure("%s: %s" % (what, err))


def recs(n, prefix="k"):
    return [(("%s%d" % (prefix, i)).encode(), ("value-%d" % i).encode()) for i in range(n)]

# ---------------------------------------------------------------- registry

TESTS = []
GROUPS = {
    "main": {},
    "small": {"message.max.bytes": "1000"},
    "slow": {"request.completion.timeout.ms": "1000"},
    "caps": {"connections.max.idle.ms": "1000", "max.connections.per.ip": "20",
             "socket.request.max.bytes": "10000"},
    # group coordinator tests: no initial rebalance delay, so a lone member's
    # first JoinGroup completes at once
    "groups": {"group.initial.rebalance.delay.ms": "0"},
}


def test(group="main"):
    def deco(fn):
        TESTS.append((fn.__name__, group, fn))
        return fn
    return deco

# ================================================================ ApiVersions


def check_ranges(keys):
    seen = {}
    for k, lo, hi in keys:
        check(k not in seen, "api key %d listed twice" % k)
        seen[k] = (lo, hi)
        check(0 <= lo <= hi, "api key %d has range %d..%d" % (k, lo, hi))
    for k, rng in EXPECTED_RANGES.items():
        eq(seen.get(k), rng, "advertised range for api key %d" % k)


@test()
def api_versions_v0(b):
    with b.conn() as c:
        corr = c.next_corr()
        c.send(request(API_API_VERSIONS, 0, corr, b""))
        payload = c.recv_frame()
    r = Reader(payload)
    eq(r.i32(), corr, "correlation id")
    out = decode_api_versions(r, 0)
    eq(out["error"], 0, "error code")
    check_ranges(out["keys"])
    # the v0 body is exactly error + array of 6-byte entries
    eq(len(payload), 4 + 2 + 4 + 6 * len(out["keys"]), "v0 response size")


@test()
def api_versions_v1_v2(b):
    with b.conn() as c:
        for v in (1, 2):
            out = decode_api_versions(c.roundtrip(API_API_VERSIONS, v, b""), v)
            eq(out["error"], 0, "v%d error" % v)
            eq(out["throttle"], 0, "v%d throttle" % v)
            check_ranges(out["keys"])


@test()
def api_versions_v3(b):
    with b.conn() as c:
        corr = c.next_corr()
        c.send(request(API_API_VERSIONS, 3, corr, api_versions_body(3)))
        payload = c.recv_frame()
    # response header v0: the error code follows the correlation id directly
    eq(payload[:4], i32(corr), "correlation id bytes")
    eq(payload[4:6], b"\x00\x00", "error code right after correlation id (no header tag byte)")
    r = Reader(payload, 4)
    out = decode_api_versions(r, 3)
    eq(out["error"], 0, "error code")
    eq(out["throttle"], 0, "throttle")
    check_ranges(out["keys"])
@test()
def api_versions_v99_unsupported(b):
    with b.conn() as c:
        corr = c.next_corr()
        c.send(request(API_API_VERSIONS, 99, corr, api_versions_body(3), flexible=True))
        payload = c.recv_frame()
        expected = i32(corr) + i16(UNSUPPORTED_VERSION) + array([i16(18) + i16(0) + i16(3)])
        bytes_eq(payload, expected, "ApiVersions v99 response (v0 body, error 35, key 18 range)")
        # the connection stays usable for the retry at a supported version
        out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 3, api_versions_body(3)), 3)
        eq(out["error"], 0, "retry at v3")

# ================================================================ Metadata


def md_broker(b, v):
    x = i32(0) + string("127.0.0.1") + i32(b.port)
    if v >= 1:
        x += string(None)
    return x


def md_topic(v, name, nparts, error=0):
    def part(p):
        x = i16(0) + i32(p) + i32(0) + array([0], i32) + array([0], i32)
        if v >= 5:
            x += array([], i32)
        return x
    x = i16(error) + string(name)
    if v >= 1:
        x += boolean(False)
    return x + array([part(p) for p in range(nparts)])


@test()
def metadata_v0_exact(b):
    create_topic(b, "md-exact", 2)
    with b.conn() as c:
        payload = c.roundtrip(API_METADATA, 0, metadata_body(0, ["md-exact"])).data[4:]
    expected = array([md_broker(b, 0)]) + array([md_topic(0, "md-exact", 2)])
    bytes_eq(payload, expected, "Metadata v0 response")


@test()
def metadata_v1_exact_and_controller(b):
    create_topic(b, "md-v1", 3)
    with b.conn() as c:
        payload = c.roundtrip(API_METADATA, 1, metadata_body(1, ["md-v1"])).data[4:]
    expected = array([md_broker(b, 1)]) + i32(0) + array([md_topic(1, "md-v1", 3)])
    bytes_eq(payload, expected, "Metadata v1 response (broker 0 at 127.0.0.1:port, controller 0)")


@test()
def metadata_v2_v5_v6_exact(b):
    create_topic(b, "md-v5", 1)
    with b.conn() as c:
        out2 = metadata(c, 2, ["md-v5"])
        cid = out2["cluster_id"]
        check(isinstance(cid, str) and len(cid) > 0, "cluster id is %r" % cid)
        for v in (2, 3, 5, 6):
            payload = c.roundtrip(API_METADATA, v, metadata_body(v, ["md-v5"])).data[4:]
            expected = (i32(0) if v >= 3 else b"") + array([md_broker(b, v)]) + string(cid) + i32(0) + \
                array([md_topic(v, "md-v5", 1)])
            bytes_eq(payload, expected, "Metadata v%d response" % v)


@test()
def metadata_v0_empty_means_all(b):
    create_topic(b, "md-all-a", 2)
    create_topic(b, "md-all-b", 1)
    with b.conn() as c:
        all0 = metadata(c, 0, [])
        all1 = metadata(c, 1, None)
    names0 = {t["name"]: len(t["partitions"]) for t in all0["topics"]}
    names1 = {t["name"]: len(t["partitions"]) for t in all1["topics"]}
    eq(names0.get("md-all-a"), 2, "v0 [] lists md-all-a with 2 partitions")
    eq(names0.get("md-all-b"), 1, "v0 [] lists md-all-b with 1 partition")
    eq(names0, names1, "v0 [] and v1 null list the same topics")
    for t in all0["topics"]:
        eq(t["error"], 0, "topic %s error" % t["name"])


@test()
def metadata_v1_empty_means_none(b):
    create_topic(b, "md-none", 1)
    with b.conn() as c:
        payload = c.roundtrip(API_METADATA, 1, metadata_body(1, [])).data[4:]
    bytes_eq(payload, array([md_broker(b, 1)]) + i32(0) + array([]), "Metadata v1 [] response")


@test()
def metadata_auto_create(b):
    with b.conn() as c:
        out = metadata(c, 4, ["md-auto-yes"], allow_auto=True)
        t = out["topics"][0]
        eq((t["name"], t["error"], len(t["partitions"])), ("md-auto-yes", 0, 1), "auto-created topic")
        check(topic_exists(c, "md-auto-yes"), "md-auto-yes exists after auto-creation")
        payload = c.roundtrip(API_METADATA, 4, metadata_body(4, ["md-auto-no"], False)).data[4:]
        cid = metadata(c, 4, [], False)["cluster_id"]
        expected = i32(0) + array([md_broker(b, 4)]) + string(cid) + i32(0) + \
            array([md_topic(4, "md-auto-no", 0, error=UNKNOWN_TOPIC_OR_PARTITION)])
        bytes_eq(payload, expected, "Metadata v4 allow_auto_topic_creation=false for a missing topic")
        check(not topic_exists(c, "md-auto-no"), "md-auto-no was created although creation was off")
        # v1-3 always auto-create (as in Kafka)
        t = metadata(c, 1, ["md-auto-v1"])["topics"][0]
        eq((t["error"], len(t["partitions"])), (0, 1), "Metadata v1 auto-creates")


@test()
def metadata_invalid_topic_names(b):
    bad = ["bad name", ".", "..", "a" * 250, "slash/name", b"bad\xffutf8", "", "tab\tname"]
    with b.conn() as c:
        out = metadata(c, 1, bad)
        eq(len(out["topics"]), len(bad), "topic count")
        for name, t in zip(bad, out["topics"]):
            eq(t["error"], INVALID_TOPIC_EXCEPTION, "error for %r" % (name,))
            eq(t["partitions"], [], "partitions for %r" % (name,))
        names = {t["name"] for t in metadata(c, 1, None)["topics"]}
        for name in bad:
            if isinstance(name, str):
                check(name not in names, "invalid topic %r was created" % name)
        # 249 characters is the longest legal name
        t = metadata(c, 1, ["b" * 249])["topics"][0]
        eq(t["error"], 0, "249-character topic name")

# ================================================================ topic admin


@test()
def create_topics_defaults(b):
    with b.conn() as c:
        payload = c.roundtrip(API_CREATE_TOPICS, 4, create_topics_body(4, [("ct-def", -1, -1)])).data[4:]
        res = decode_create_topics(Reader(payload), 4)["topics"][0]
        eq((res["error"], res["message"]), (0, None), "CreateTopics v4 (error, error_message) on success")
        bytes_eq(payload, i32(0) + array([string("ct-def") + i16(0) + string(None)]),
                 "CreateTopics v4 response for -1/-1")
        t = metadata(c, 1, ["ct-def"])["topics"][0]
        eq((t["error"], len(t["partitions"])), (0, 1), "default partition count (num.partitions=1)")
        out = create_topics(c, [("ct-three", 3, 1)])
        eq(out["topics"][0]["error"], 0, "3 partitions, RF 1")
        eq(len(metadata(c, 1, ["ct-three"])["topics"][0]["partitions"]), 3, "partitions of ct-three")
        for v in (0, 1, 2, 3):
            out = create_topics(c, [("ct-v%d" % v, 2, 1)], v=v)
            eq(out["topics"][0]["error"], 0, "CreateTopics v%d" % v)
            if v >= 2:
                eq(out["throttle"], 0, "CreateTopics v%d throttle" % v)
            if v >= 1:
                eq(out["topics"][0]["message"], None, "CreateTopics v%d message on success" % v)


@test()
def create_topics_errors(b):
    create_topic(b, "ct-exists", 1)
    cases = [
        (("ct-rf2", 1, 2), INVALID_REPLICATION_FACTOR),
        (("ct-rf0", 1, 0), INVALID_REPLICATION_FACTOR),
        (("ct-zero", 0, 1), INVALID_PARTITIONS),
        (("ct-neg", -5, 1), INVALID_PARTITIONS),
        (("ct-exists", 1, 1), TOPIC_ALREADY_EXISTS),
        (("ct-badcfg", 1, 1, [], [("no.such.config", "1")]), INVALID_CONFIG),
        (("ct-badval", 1, 1, [], [("retention.ms", "abc")]), INVALID_CONFIG),
        (("ct-badval2", 1, 1, [], [("cleanup.policy", "shred")]), INVALID_CONFIG),
        (("bad name", 1, 1), INVALID_TOPIC_EXCEPTION),
    ]
    with b.conn() as c:
        out = create_topics(c, [t for t, _ in cases])
        eq(len(out["topics"]), len(cases), "result count")
        for (t, code), res in zip(cases, out["topics"]):
            eq(res["name"], t[0], "result name")
            eq(res["error"], code, "error for %s" % t[0])
            check(res["message"] is not None, "no error message for %s" % t[0])
        for t, _ in cases:
            if t[0] not in ("ct-exists", "bad name"):
                check(not topic_exists(c, t[0]), "%s was created despite the error" % t[0])


@test()
def create_topics_validate_only(b):
    with b.conn() as c:
        payload = c.roundtrip(API_CREATE_TOPICS, 4, create_topics_body(
            4, [("ct-val", 3, 1)], validate_only=True)).data[4:]
        res = decode_create_topics(Reader(payload), 4)["topics"][0]
        eq((res["error"], res["message"]), (0, None), "validateOnly (error, error_message)")
        bytes_eq(payload, i32(0) + array([string("ct-val") + i16(0) + string(None)]),
                 "validateOnly response")
        check(not topic_exists(c, "ct-val"), "validateOnly created the topic")
        out = create_topics(c, [("ct-val2", 1, 2)], validate_only=True)
        eq(out["topics"][0]["error"], INVALID_REPLICATION_FACTOR, "validateOnly with RF 2")


@test()
def delete_topics(b):
    create_topic(b, "dt-x", 2)
    produce_ok(b, "dt-x", 0, record_batch(recs(3)), expect_base=0)
    with b.conn() as c:
        payload = c.roundtrip(API_DELETE_TOPICS, 1, delete_topics_body(1, ["dt-x", "dt-missing"])).data[4:]
        bytes_eq(payload, i32(0) + array([string("dt-x") + i16(0), string("dt-missing") + i16(3)]),
                 "DeleteTopics v1 response")
        check(not topic_exists(c, "dt-x"), "dt-x still exists after delete")
        out = call(c, API_DELETE_TOPICS, 0, delete_topics_body(0, ["dt-x"]), decode_delete_topics)
        eq(out["topics"][0]["error"], UNKNOWN_TOPIC_OR_PARTITION, "second delete")
        # a new topic with the same name starts empty
        eq(create_topics(c, [("dt-x", 1, 1)])["topics"][0]["error"], 0, "re-create dt-x")
        eq(log_end(c, "dt-x"), 0, "log end of re-created topic")
        p = produce(c, "dt-x", 0, record_batch(recs(1)))
        eq((p["error"], p["base_offset"]), (0, 0), "first produce to re-created topic")


@test()
def create_partitions(b):
    create_topic(b, "cp-x", 3)
    with b.conn() as c:
        def cp(topics, validate_only=False):
            return call(c, API_CREATE_PARTITIONS, 1, create_partitions_body(1, topics, validate_only=validate_only),
                        decode_create_partitions)
        for count in (2, 3):
            res = cp([("cp-x", count, None)])["topics"][0]
            eq(res["error"], INVALID_PARTITIONS, "count %d on a 3-partition topic" % count)
            check(res["message"] is not None, "error message")
        eq(cp([("cp-missing", 4, None)])["topics"][0]["error"], UNKNOWN_TOPIC_OR_PARTITION, "missing topic")
        eq(cp([("cp-x", 5, None)], validate_only=True)["topics"][0]["error"], 0, "validateOnly")
        eq(len(metadata(c, 1, ["cp-x"])["topics"][0]["partitions"]), 3, "partitions after validateOnly")
        payload = c.roundtrip(API_CREATE_PARTITIONS, 0, create_partitions_body(0, [("cp-x", 5, None)])).data[4:]
        bytes_eq(payload, i32(0) + array([string("cp-x") + i16(0) + string(None)]), "CreatePartitions v0 response")
        eq(len(metadata(c, 1, ["cp-x"])["topics"][0]["partitions"]), 5, "partitions after growing")
        p = produce(c, "cp-x", 4, record_batch(recs(2)))
        eq((p["error"], p["base_offset"]), (0, 0), "produce to new partition 4")


@test()
def describe_configs(b):
    create_topic(b, "dc-x", 1, [("retention.ms", "3600000"), ("cleanup.policy", "compact")])
    create_topic(b, "dc-plain", 1)
    with b.conn() as c:
        payload = c.roundtrip(API_DESCRIBE_CONFIGS, 1, describe_configs_body(
            1, [(2, "dc-x", ["retention.ms"])])).data[4:]
        expected = i32(0) + array([i16(0) + string(None) + i8(2) + string("dc-x") + array([
            string("retention.ms") + string("3600000") + boolean(False) + i8(1) + boolean(False) + array([])])])
        bytes_eq(payload, expected, "DescribeConfigs v1 retention.ms override (source TOPIC_CONFIG=1)")
        payload = c.roundtrip(API_DESCRIBE_CONFIGS, 1, describe_configs_body(
            1, [(2, "dc-plain", ["retention.ms"])])).data[4:]
        expected = i32(0) + array([i16(0) + string(None) + i8(2) + string("dc-plain") + array([
            string("retention.ms") + string("604800000") + boolean(False) + i8(5) + boolean(False) + array([])])])
        bytes_eq(payload, expected, "DescribeConfigs v1 retention.ms default (source DEFAULT_CONFIG=5)")
        # v0: all configs, with is_default
        out = call(c, API_DESCRIBE_CONFIGS, 0, describe_configs_body(0, [(2, "dc-x", None), (2, "dc-plain", None)]),
                   decode_describe_configs)
        eq(len(out["results"]), 2, "result count")
        x = {cf["name"]: cf for cf in out["results"][0]["configs"]}
        p = {cf["name"]: cf for cf in out["results"][1]["configs"]}
        eq((x["retention.ms"]["value"], x["retention.ms"]["is_default"]), ("3600000", False), "dc-x retention.ms")
        eq((x["cleanup.policy"]["value"], x["cleanup.policy"]["is_default"]), ("compact", False),
           "dc-x cleanup.policy")
        eq((p["retention.ms"]["value"], p["retention.ms"]["is_default"]), ("604800000", True),
           "dc-plain retention.ms")
        eq((p["cleanup.policy"]["value"], p["cleanup.policy"]["is_default"]), ("delete", True),
           "dc-plain cleanup.policy")
        eq(p["segment.bytes"]["value"], "1073741824", "segment.bytes default")
        eq(p["max.message.bytes"]["value"], "1048588", "max.message.bytes default")
        # synonyms start with the topic override
        out = call(c, API_DESCRIBE_CONFIGS, 1, describe_configs_body(1, [(2, "dc-x", ["retention.ms"])], True),
                   decode_describe_configs)
        syn = out["results"][0]["configs"][0]["synonyms"]
        check(syn and syn[0] == ("retention.ms", "3600000", 1), "first synonym is the override: %r" % syn)
        out = call(c, API_DESCRIBE_CONFIGS, 2, describe_configs_body(2, [(2, "dc-missing", None)]),
                   decode_describe_configs)
        eq(out["results"][0]["error"], UNKNOWN_TOPIC_OR_PARTITION, "unknown topic")

# ================================================================ Produce


def produce_resp_v7(topic, part, base, error=0, log_start=0):
    return array([string(topic) + array([i32(part) + i16(error) + i64(base) + i64(-1) + i64(log_start)])]) + i32(0)


@test()
def produce_base_offsets(b):
    create_topic(b, "pr-base", 1)
    with b.conn() as c:
        payload = c.roundtrip(API_PRODUCE, 7, produce_body(7, 1, [("pr-base", [(0, record_batch(recs(3)))])])).data[4:]
        bytes_eq(payload, produce_resp_v7("pr-base", 0, 0), "Produce v7 response, first batch")
        payload = c.roundtrip(API_PRODUCE, 7, produce_body(7, 1, [("pr-base", [(0, record_batch(recs(2)))])])).data[4:]
        bytes_eq(payload, produce_resp_v7("pr-base", 0, 3), "Produce v7 response, second batch")
        payload = c.roundtrip(API_PRODUCE, 3, produce_body(3, 1, [("pr-base", [(0, record_batch(recs(1)))])])).data[4:]
        bytes_eq(payload, array([string("pr-base") + array([i32(0) + i16(0) + i64(5) + i64(-1)])]) + i32(0),
                 "Produce v3 response")
        # a client-supplied baseOffset is ignored
        p = produce(c, "pr-base", 0, record_batch(recs(1), base_offset=12345))
        eq((p["error"], p["base_offset"]), (0, 6), "batch with bogus baseOffset")
        eq(log_end(c, "pr-base"), 7, "log end")


@test()
def produce_acks0_no_response(b):
    create_topic(b, "pr-acks0", 1)
    with b.conn() as c:
        c.send(request(API_PRODUCE, 7, 501, produce_body(7, 0, [("pr-acks0", [(0, record_batch(recs(2)))])])))
        c.send(request(API_API_VERSIONS, 0, 502, b""))
        payload = c.recv_frame()
        eq(struct.unpack(">i", payload[:4])[0], 502, "correlation id of the next response (acks=0 must not answer)")
        decode_api_versions(Reader(payload, 4), 0)
        eq(log_end(c, "pr-acks0"), 2, "log end after acks=0 produce")
        # an acks=0 produce that fails gets no response either (Kafka closes
        # the connection instead, so the producer notices; both are accepted)
        c.send(request(API_PRODUCE, 7, 503, produce_body(7, 0, [("pr-acks0", [(0, record_batch(recs(1),
                                                                                          bad_crc=True))])])))
        try:
            c.send(request(API_API_VERSIONS, 0, 504, b""))
            got = struct.unpack(">i", c.recv_frame()[:4])[0]
        except (Closed, BrokenPipeError, ConnectionResetError):
            got = None
        one_of(got, (504, None), "correlation id after a failing acks=0 produce (None = closed)")
    expect_log_end(b, "pr-acks0", 2)


@test()
def produce_acks_all(b):
    create_topic(b, "pr-acksall", 1)
    with b.conn() as c:
        payload = c.roundtrip(API_PRODUCE, 7, produce_body(7, -1, [("pr-acksall", [(0, record_batch(recs(4)))])])).data[4:]
        bytes_eq(payload, produce_resp_v7("pr-acksall", 0, 0), "Produce acks=-1 response")
        eq(log_end(c, "pr-acksall"), 4, "log end")


@test()
def data_dir_in_use_refused(b):
    """A second broker on a data dir in use exits with a clear error before it
    touches anything: the first keeps serving, its data and its clean-shutdown
    mark intact."""
    create_topic(b, "dd-lock", 1)
    produce_ok(b, "dd-lock", 0, record_batch(recs(5)))
    args = [BIN, "broker", "--listen", "127.0.0.1:%d" % free_port(), "--data-dir",
            os.path.join(b.dir, "data")]
    try:
        r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise TestFailure("a second broker on the same data dir kept running")
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode != 0, "second broker exited %d" % r.returncode)
    check("in use by another process" in err, "second broker's error: %r" % err[-300:])
    with b.conn() as c:
        eq(log_end(c, "dd-lock"), 5, "first broker's log end")
    produce_ok(b, "dd-lock", 0, record_batch(recs(2)), expect_base=5)
    b.restart(signal.SIGTERM)
    with open(b.log_path, "rb") as f:
        after = f.read().decode("utf-8", "replace").rsplit("---- restart", 1)[-1]
    check("not clean" not in after, "the clean-shutdown mark was lost: " + after[-300:])
    with b.conn() as c:
        eq(log_end(c, "dd-lock"), 7, "log end after restart")


@test()
def produce_bad_acks(b):
    create_topic(b, "pr-badacks", 1)
    with b.conn() as c:
        for acks in (2, -2, 100):
            payload = c.roundtrip(API_PRODUCE, 7, produce_body(
                7, acks, [("pr-badacks", [(0, record_batch(recs(1)))])])).data[4:]
            bytes_eq(payload, produce_resp_v7("pr-badacks", 0, -1, INVALID_REQUIRED_ACKS, -1),
                     "Produce acks=%d response" % acks)
        eq(log_end(c, "pr-badacks"), 0, "log end after bad acks")


@test()
def produce_crc_mismatch(b):
    create_topic(b, "pr-crc", 1)
    first = record_batch(recs(1))
    produce_ok(b, "pr-crc", 0, first, expect_base=0)
    with b.conn() as c:
        p = produce(c, "pr-crc", 0, record_batch(recs(3), bad_crc=True))
        eq((p["error"], p["base_offset"]), (CORRUPT_MESSAGE, -1), "bad CRC")
        # same connection still works
        out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b""), 0)
        eq(out["error"], 0, "ApiVersions on the same connection")
        eq(log_end(c, "pr-crc"), 1, "log end unchanged")
        fp, _ = fetch(c, "pr-crc", 0, 0)
        eq(fp["hwm"], 1, "high watermark")
        eq([r[0] for r in records_of(fp["records"])], [0], "fetched offsets")


def expect_produce_error(b, topic, batch, allowed, what, v=7):
    with b.conn() as c:
        before = log_end(c, topic)
        p = produce(c, topic, 0, batch, v=v)
        one_of(p["error"], allowed, what)
        eq(p["base_offset"], -1, what + ": base offset")
        eq(log_end(c, topic), before, what + ": log end unchanged")


@test()
def produce_bad_batch_length(b):
    create_topic(b, "pr-blen", 1)
    good = record_batch(recs(2))
    real = len(good) - 12
    for blen, what in ((10, "batchLength 10 (below the 49-byte header)"), (0, "batchLength 0"),
                       (-1, "batchLength -1"), (real + 5, "batchLength past the supplied bytes"),
                       (real - 3, "batchLength shorter than the supplied bytes")):
        expect_produce_error(b, "pr-blen", record_batch(recs(2), batch_length=blen),
                             (CORRUPT_MESSAGE, INVALID_RECORD), what)
    # a batch cut short (fewer bytes than 61) is rejected, too
    expect_produce_error(b, "pr-blen", good[:40], (CORRUPT_MESSAGE, INVALID_RECORD), "40-byte batch")
    produce_ok(b, "pr-blen", 0, good, expect_base=0)


@test()
def produce_record_count_mismatch(b):
    create_topic(b, "pr-count", 1)
    expect_produce_error(b, "pr-count", record_batch(recs(2), record_count=3, last_offset_delta=2),
                         (INVALID_RECORD,), "count 3 with 2 records")
    expect_produce_error(b, "pr-count", record_batch(recs(2), record_count=1, last_offset_delta=0),
                         (INVALID_RECORD,), "count 1 with 2 records")
    expect_produce_error(b, "pr-count", record_batch(recs(2), record_count=0, last_offset_delta=-1),
                         (INVALID_RECORD,), "count 0 with 2 records")
    expect_produce_error(b, "pr-count", record_batch([], record_count=0, last_offset_delta=-1, ts_deltas=[]),
                         (INVALID_RECORD, CORRUPT_MESSAGE), "empty batch")


@test()
def produce_last_offset_delta_wrong(b):
    create_topic(b, "pr-lod", 1)
    expect_produce_error(b, "pr-lod", record_batch(recs(2), last_offset_delta=5), (INVALID_RECORD,),
                         "lastOffsetDelta 5 with 2 records")
    expect_produce_error(b, "pr-lod", record_batch(recs(2), last_offset_delta=0), (INVALID_RECORD,),
                         "lastOffsetDelta 0 with 2 records")


@test()
def produce_trailing_bytes(b):
    create_topic(b, "pr-trail", 1)
    good = record_batch(recs(2))
    expect_produce_error(b, "pr-trail", good + b"\x00" * 7, (INVALID_RECORD, CORRUPT_MESSAGE),
                         "7 bytes after the batch")
    expect_produce_error(b, "pr-trail", good + record_batch(recs(1)), (INVALID_RECORD,),
                         "two batches for one partition")
    # trailing bytes inside the batch: records end before batchLength does
    payload = b"".join(encode_record(i, i, k, v) for i, (k, v) in enumerate(recs(2))) + b"\x00\x00\x00"
    expect_produce_error(b, "pr-trail", record_batch(recs(2), payload=payload), (INVALID_RECORD,),
                         "3 bytes after the last record inside the batch")


@test()
def produce_magic_not_2(b):
    create_topic(b, "pr-magic", 1)
    for v in (3, 7):
        expect_produce_error(b, "pr-magic", legacy_set(1, recs(2), [1, 2]), (INVALID_RECORD,),
                             "MessageSet magic 1 in Produce v%d" % v, v=v)
        expect_produce_error(b, "pr-magic", legacy_set(0, recs(2)), (INVALID_RECORD,),
                             "MessageSet magic 0 in Produce v%d" % v, v=v)
    expect_produce_error(b, "pr-magic", record_batch(recs(2), magic=3), (INVALID_RECORD, CORRUPT_MESSAGE),
                         "batch magic 3")


@test()
def produce_unknown_codec(b):
    create_topic(b, "pr-codec", 1)
    for codec in (5, 6, 7):
        expect_produce_error(b, "pr-codec", record_batch(recs(2), codec=codec), (UNSUPPORTED_COMPRESSION_TYPE,),
                             "codec %d" % codec)


@test()
def produce_zstd_needs_v7(b):
    create_topic(b, "pr-zstd", 1)
    batch = record_batch(recs(3), codec=CODEC_ZSTD)
    expect_produce_error(b, "pr-zstd", batch, (UNSUPPORTED_COMPRESSION_TYPE,), "zstd in Produce v6", v=6)
    expect_produce_error(b, "pr-zstd", batch, (UNSUPPORTED_COMPRESSION_TYPE,), "zstd in Produce v3", v=3)
    produce_ok(b, "pr-zstd", 0, batch, v=7, expect_base=0)
    with b.conn() as c:
        fp, _ = fetch(c, "pr-zstd", 0, 0, v=11)
    batches, _ = parse_batches(fp["records"])
    eq(len(batches), 1, "fetched batch count")
    eq(batches[0]["raw"][16:], batch[16:], "zstd batch stored as sent")
    # Kafka serves zstd only to Fetch v10+ (older fetchers get error 76);
    # shopstream serves the batch as stored to v4-v9 too, because
    # kafka-python 2.0.2 fetches with v4 and reads zstd; v0-3 get it
    # converted to uncompressed messages
    with b.conn() as c:
        for v in (9, 4):
            fp, _ = fetch(c, "pr-zstd", 0, 0, v=v)
            eq(fp["error"], 0, "Fetch v%d of a zstd batch" % v)
            got, _ = parse_batches(fp["records"])
            eq(len(got), 1, "Fetch v%d batch count" % v)
            eq(got[0]["raw"][16:], batch[16:], "Fetch v%d serves the zstd batch as stored" % v)
        for v in (2, 0):
            fp, _ = fetch(c, "pr-zstd", 0, 0, v=v)
            eq(fp["error"], 0, "Fetch v%d of a zstd batch" % v)
            check_message_set(fp["records"], 1 if v == 2 else 0,
                              [(i, k, val) for i, (k, val) in enumerate(recs(3))], {})


@test()
def produce_gzip_batch(b):
    create_topic(b, "pr-gzip", 1)
    batch = record_batch(recs(5), codec=CODEC_GZIP)
    produce_ok(b, "pr-gzip", 0, batch, expect_base=0)
    # a gzip payload that is not gzip
    expect_produce_error(b, "pr-gzip", record_batch(recs(2), codec=CODEC_GZIP, compressed_override=b"not gzip!"),
                         (INVALID_RECORD, CORRUPT_MESSAGE), "garbage gzip payload")
    with b.conn() as c:
        fp, _ = fetch(c, "pr-gzip", 0, 0)
    eq(records_of(fp["records"]), [(i, k, v) for i, (k, v) in enumerate(recs(5))], "gzip records read back")


@test()
def produce_control_and_txn_bits(b):
    create_topic(b, "pr-ctl", 1)
    control = record_batch([(i16(0) + i16(1), i16(0) + i32(0))], attributes=ATTR_CONTROL)
    expect_produce_error(b, "pr-ctl", control, (INVALID_RECORD,), "control batch from a client")
    expect_produce_error(b, "pr-ctl", record_batch(recs(1), attributes=ATTR_TRANSACTIONAL),
                         (INVALID_RECORD, INVALID_TXN_STATE), "transactional batch outside a transaction")


@test("small")
def produce_message_too_large(b):
    create_topic(b, "pr-big", 1)
    big = record_batch([(b"k", b"x" * 1500)])
    check(len(big) > 1000, "test batch is %d bytes" % len(big))
    expect_produce_error(b, "pr-big", big, (MESSAGE_TOO_LARGE,), "1.5 KB batch with message.max.bytes=1000")
    small = record_batch([(b"k", b"x" * 500)])
    produce_ok(b, "pr-big", 0, small, expect_base=0)
    # compressed size counts: 1500 zeros gzip to well under 1000 bytes
    produce_ok(b, "pr-big", 0, record_batch([(b"k", b"\0" * 1500)], codec=CODEC_GZIP), expect_base=1)


@test()
def produce_duplicate_partition(b):
    create_topic(b, "pr-dup", 2)
    with b.conn() as c:
        out = call(c, API_PRODUCE, 7, produce_body(7, 1, [("pr-dup", [(0, record_batch(recs(3))),
                                                                       (0, record_batch(recs(2)))])]),
                   decode_produce)
        parts = out["topics"][0]["partitions"]
        eq([p["index"] for p in parts], [0, 0], "partition indexes")
        codes = [p["error"] for p in parts]
        check(INVALID_REQUEST in codes, "no INVALID_REQUEST for a duplicate partition: %r" % codes)
        appended = sum(n for p, n in zip(parts, (3, 2)) if p["error"] == 0)
        eq(log_end(c, "pr-dup", 0), appended, "log end (no double append)")
        before = appended
        # the same partition through two entries for the topic
        out = call(c, API_PRODUCE, 7, produce_body(7, 1, [("pr-dup", [(1, record_batch(recs(3)))]),
                                                          ("pr-dup", [(1, record_batch(recs(2)))])]),
                   decode_produce)
        codes = [t["partitions"][0]["error"] for t in out["topics"]]
        check(INVALID_REQUEST in codes, "no INVALID_REQUEST for a duplicate topic entry: %r" % codes)
        appended = sum(n for t, n in zip(out["topics"], (3, 2)) if t["partitions"][0]["error"] == 0)
        eq(log_end(c, "pr-dup", 1), appended, "log end of partition 1 (no double append)")
        eq(log_end(c, "pr-dup", 0), before, "partition 0 untouched")


@test()
def produce_bad_partition(b):
    create_topic(b, "pr-part", 2)
    with b.conn() as c:
        for part in (2, 5, -1, -2147483648, 2147483647):
            payload = c.roundtrip(API_PRODUCE, 7, produce_body(
                7, 1, [("pr-part", [(part, record_batch(recs(1)))])])).data[4:]
            bytes_eq(payload, produce_resp_v7("pr-part", part, -1, UNKNOWN_TOPIC_OR_PARTITION, -1),
                     "Produce to partition %d" % part)
        eq(log_end(c, "pr-part", 0) + log_end(c, "pr-part", 1), 0, "nothing appended")


@test()
def produce_invalid_topic_and_null_records(b):
    with b.conn() as c:
        p = produce(c, "bad topic!", 0, record_batch(recs(1)))
        eq(p["error"], INVALID_TOPIC_EXCEPTION, "Produce to an invalid topic name")
        create_topic(b, "pr-null", 1)
        p = produce(c, "pr-null", 0, None)
        one_of(p["error"], (INVALID_RECORD, CORRUPT_MESSAGE), "null records")
        p = produce(c, "pr-null", 0, b"")
        one_of(p["error"], (INVALID_RECORD, CORRUPT_MESSAGE), "empty records")
        eq(log_end(c, "pr-null"), 0, "log end")


_BOMB = None


def bomb_batch():
    """One record whose 200 MB value is zeros, gzip-compressed (~200 KB)."""
    global _BOMB
    if _BOMB is None:
        size = 200 << 20
        head = i8(0) + varlong(0) + varint(0) + varint(-1) + varint(size)
        rec_len = len(head) + size + 1
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [c.compress(varint(rec_len) + head)]
        chunk = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            parts.append(c.compress(chunk))
        parts.append(c.compress(varint(0)) + c.flush())
        _BOMB = record_batch([(None, None)], codec=CODEC_GZIP, compressed_override=b"".join(parts))
    return _BOMB


@test()
def produce_compression_bomb(b):
    create_topic(b, "pr-bomb", 1)
    batch = bomb_batch()
    check(len(batch) < 1000000, "bomb is %d bytes" % len(batch))
    expect_produce_error(b, "pr-bomb", batch, (MESSAGE_TOO_LARGE, INVALID_RECORD), "gzip bomb (200 MB of zeros)")
    err = api_versions_ok(b)
    check(err is None, "after the bomb: %s" % err)
    hwm = b.status_kb("VmHWM")
    check(0 < hwm < 300 * 1024, "broker peak RSS (VmHWM) %d kB after the bomb" % hwm)

@test()
def produce_to_internal_topic(b):
    # Kafka refuses client appends to internal topics ("Cannot append to
    # internal topic"), so clients cannot forge group offsets.  The broker
    # creates __consumer_offsets on the first group write, like Kafka.
    create_topic(b, "internal-probe", 1)
    with b.conn() as c:
        eq(commit_offsets(c, "internal-probe-group", [("internal-probe", [(0, 1, "")])]),
           {("internal-probe", 0): 0}, "a commit creates __consumer_offsets")
        t = metadata(c, 4, ["__consumer_offsets"], allow_auto=False)["topics"][0]
        eq((t["error"], t["internal"]), (0, True), "__consumer_offsets metadata (error, is_internal)")
        before = log_end(c, "__consumer_offsets", 0)
        p = produce(c, "__consumer_offsets", 0, record_batch([(b"\x00\x01forged-key", b"\xff\xff")]))
        eq((p["error"], p["base_offset"]), (INVALID_TOPIC_EXCEPTION, -1), "Produce to __consumer_offsets")
        eq(log_end(c, "__consumer_offsets", 0), before, "__consumer_offsets-0 log end unchanged")


# ================================================================ legacy formats

LEGACY_TS = [1000, 1001, 1002, 2000, 2001]


def legacy_fill(b, topic):
    """Produces four legacy MessageSets with Produce v2 and returns the
    expected (offset, key, value) list and the magic-1 timestamps."""
    create_topic(b, topic, 1)
    sets = [
        (legacy_set(1, [(b"k0", b"v0"), (b"k1", b"v1"), (None, b"v2")], LEGACY_TS[:3]), 0),
        (legacy_set(0, [(b"k3", b"v3"), (b"k4", None)]), 3),
        (legacy_gzip_wrapper(1, [(b"k5", b"v5"), (b"k6", b"v6")], LEGACY_TS[3:]), 5),
        (legacy_gzip_wrapper(0, [(b"k7", b"v7"), (b"k8", b"v8")]), 7),
    ]
    with b.conn() as c:
        for i, (ms, base) in enumerate(sets):
            payload = c.roundtrip(API_PRODUCE, 2, produce_body(2, 1, [(topic, [(0, ms)])])).data[4:]
            r = Reader(payload)
            out = decode_produce(r, 2)
            p = out["topics"][0]["partitions"][0]
            eq((p["error"], p["base_offset"]), (0, base), "Produce v2 MessageSet #%d" % i)
            eq(out["throttle"], 0, "throttle")
        eq(log_end(c, topic), 9, "log end after legacy produce")
    expected = [(0, b"k0", b"v0"), (1, b"k1", b"v1"), (2, None, b"v2"), (3, b"k3", b"v3"), (4, b"k4", None),
                (5, b"k5", b"v5"), (6, b"k6", b"v6"), (7, b"k7", b"v7"), (8, b"k8", b"v8")]
    ts = {0: 1000, 1: 1001, 2: 1002, 5: 2000, 6: 2001}
    return expected, ts


@test()
def legacy_produce_fetch_v4(b):
    expected, ts = legacy_fill(b, "lg-v4")
    with b.conn() as c:
        fp, _ = fetch(c, "lg-v4", 0, 0, v=4)
    eq((fp["error"], fp["hwm"], fp["lso"]), (0, 9, 9), "Fetch v4 error/HWM/LSO")
    batches, tail = parse_batches(fp["records"])
    eq(tail, 0, "partial batch")
    eq([bt["base_offset"] for bt in batches], [0, 3, 5, 7], "one v2 batch per MessageSet")
    eq(records_of(fp["records"]), expected, "records (offset, key, value)")
    got_ts = {x["offset"]: x["timestamp"] for bt in batches for x in bt["records"]}
    for off, t in ts.items():
        eq(got_ts[off], t, "timestamp of offset %d" % off)


def check_message_set(blob, magic, expected, ts):
    msgs, tail = parse_message_set(blob)
    eq(tail, 0, "partial message at the end")
    for m in msgs:
        eq(m["magic"], magic, "message magic at offset %d" % m["offset"])
        check(m["crc_ok"], "CRC-32 of message at offset %d" % m["offset"])
    eq([(m["offset"], m["key"], m["value"]) for m in msgs], expected, "messages (offset, key, value)")
    if magic == 1:
        for m in msgs:
            if m["offset"] in ts:
                eq(m["timestamp"], ts[m["offset"]], "timestamp of offset %d" % m["offset"])


@test()
def legacy_fetch_v2_magic1(b):
    expected, ts = legacy_fill(b, "lg-v2")
    with b.conn() as c:
        fp, _ = fetch(c, "lg-v2", 0, 0, v=2)
        eq((fp["error"], fp["hwm"]), (0, 9), "Fetch v2 error/HWM")
        check_message_set(fp["records"], 1, expected, ts)
        fp, _ = fetch(c, "lg-v2", 0, 5, v=3)
        msgs, _ = parse_message_set(fp["records"])
        check(msgs and msgs[0]["offset"] <= 5 and 5 in [m["offset"] for m in msgs],
              "Fetch v3 from 5 returns offset 5: %r" % [m["offset"] for m in msgs])


@test()
def legacy_fetch_v0_magic0(b):
    expected, ts = legacy_fill(b, "lg-v0")
    # v2-produced data must come back as magic 0 as well
    produce_ok(b, "lg-v0", 0, record_batch([(b"k9", b"v9"), (b"k10", b"v10")]), expect_base=9)
    expected = expected + [(9, b"k9", b"v9"), (10, b"k10", b"v10")]
    with b.conn() as c:
        for v in (0, 1):
            fp, _ = fetch(c, "lg-v0", 0, 0, v=v)
            eq((fp["error"], fp["hwm"]), (0, 11), "Fetch v%d error/HWM" % v)
            check_message_set(fp["records"], 0, expected, ts)


@test()
def legacy_bad_crc(b):
    create_topic(b, "lg-crc", 1)
    ms = legacy_message(1, b"k", b"v", timestamp=5) + legacy_message(1, b"k", b"v", offset=1, timestamp=5,
                                                                     bad_crc=True)
    expect_produce_error(b, "lg-crc", ms, (CORRUPT_MESSAGE,), "MessageSet with a bad CRC-32", v=2)

# ================================================================ Fetch


@test()
def fetch_exact_bytes(b):
    create_topic(b, "fe-x", 1)
    a = record_batch([(b"ka", b"va", [("h1", b"x"), ("h2", None)]), (None, b"vb"), (b"kc", None)],
                     base_ts=1_700_000_000_000)
    g = record_batch(recs(2), codec=CODEC_GZIP, base_ts=1_700_000_001_000)
    produce_ok(b, "fe-x", 0, a, expect_base=0)
    produce_ok(b, "fe-x", 0, g, expect_base=3)
    with b.conn() as c:
        fp, out = fetch(c, "fe-x", 0, 0, v=11)
    eq((out["throttle"], out["error"], out["session_id"]), (0, 0, 0), "Fetch v11 top-level fields")
    eq((fp["error"], fp["hwm"], fp["lso"], fp["log_start"], fp["aborted"], fp["preferred_read_replica"]),
       (0, 5, 5, 0, None, -1), "partition fields (error, HWM, LSO, log start, aborted, preferred replica)")
    got = fp["records"]
    eq(len(got), len(a) + len(g), "records size")
    for sent, base, at in ((a, 0, 0), (g, 3, len(a))):
        part = got[at:at + len(sent)]
        eq(part[:8], i64(base), "baseOffset of batch at %d" % base)
        bytes_eq(part[8:12], sent[8:12], "batchLength of batch %d" % base)
        bytes_eq(part[16:], sent[16:], "batch %d from magic on (CRC and everything it covers)" % base)


@test()
def fetch_at_and_above_hwm(b):
    create_topic(b, "fe-hwm", 1)
    produce_ok(b, "fe-hwm", 0, record_batch(recs(2)), expect_base=0)
    with b.conn() as c:
        fp, _ = fetch(c, "fe-hwm", 0, 2)
        eq((fp["error"], fp["hwm"], fp["lso"], fp["records"]), (0, 2, 2, b""),
           "fetch at HWM (error, HWM, LSO, records)")
        for off in (3, 1000, -1):
            fp, _ = fetch(c, "fe-hwm", 0, off)
            eq(fp["error"], OFFSET_OUT_OF_RANGE, "fetch at offset %d" % off)
            check(not fp["records"], "records returned for offset %d" % off)
        fp, _ = fetch(c, "fe-hwm", 0, 3, v=0)
        eq(fp["error"], OFFSET_OUT_OF_RANGE, "Fetch v0 above HWM")


@test()
def fetch_unknown_topic_or_partition(b):
    create_topic(b, "fe-known", 1)
    with b.conn() as c:
        for v in (0, 4, 11):
            fp, _ = fetch(c, "fe-unknown", 0, 0, v=v)
            eq(fp["error"], UNKNOWN_TOPIC_OR_PARTITION, "Fetch v%d unknown topic" % v)
            fp, _ = fetch(c, "fe-known", 7, 0, v=v)
            eq(fp["error"], UNKNOWN_TOPIC_OR_PARTITION, "Fetch v%d unknown partition" % v)
        check(not topic_exists(c, "fe-unknown"), "Fetch auto-created a topic")


@test()
def fetch_min_one_batch(b):
    create_topic(b, "fe-min", 1)
    big = record_batch([(b"k", b"y" * 4000)])
    produce_ok(b, "fe-min", 0, big, expect_base=0)
    produce_ok(b, "fe-min", 0, record_batch(recs(1)), expect_base=1)
    with b.conn() as c:
        fp, _ = fetch(c, "fe-min", 0, 0, v=11, max_bytes=100, partition_max_bytes=100)
    batches, _ = parse_batches(fp["records"])
    check(batches and batches[0]["base_offset"] == 0 and len(batches[0]["raw"]) == len(big),
          "first complete batch returned despite max bytes 100 (got %d bytes)" % len(fp["records"] or b""))


@test()
def fetch_long_poll_timeout(b):
    create_topic(b, "fe-empty", 1)
    with b.conn(timeout=10) as c:
        t0 = time.monotonic()
        fp, _ = fetch(c, "fe-empty", 0, 0, v=11, max_wait_ms=2000, min_bytes=1, timeout=10)
        dt = time.monotonic() - t0
    check(1.5 <= dt <= 5.0, "long poll returned after %.2fs (max_wait 2000 ms)" % dt)
    eq((fp["error"], fp["hwm"], fp["records"]), (0, 0, b""), "empty long-poll result")


@test()
def fetch_parked_woken_by_produce(b):
    create_topic(b, "fe-wake", 1)
    with b.conn(timeout=15) as a, b.conn() as p:
        corr = a.next_corr()
        a.send(request(API_FETCH, 11, corr, fetch_body(11, [("fe-wake", [(0, 0, 1 << 20)])], 10000, 1)))
        time.sleep(0.4)
        r, _, _ = select.select([a.sock], [], [], 0)
        check(not r, "fetch answered before any data arrived")
        t0 = time.monotonic()
        pr = produce(p, "fe-wake", 0, record_batch(recs(2)))
        eq(pr["error"], 0, "produce")
        payload = a.recv_frame(timeout=5)
        dt = time.monotonic() - t0
    check(dt < 1.0, "parked fetch answered %.2fs after the produce" % dt)
    rd = Reader(payload)
    eq(rd.i32(), corr, "correlation id")
    out = decode_fetch(rd, 11)
    fp = out["topics"][0]["partitions"][0]
    eq((fp["error"], fp["hwm"]), (0, 2), "woken fetch error/HWM")
    eq(records_of(fp["records"]), [(0, b"k0", b"value-0"), (1, b"k1", b"value-1")], "woken fetch records")


@test()
def fetch_multi_partition_and_versions(b):
    create_topic(b, "fe-multi", 3)
    for part in range(3):
        produce_ok(b, "fe-multi", part, record_batch(recs(part + 1, "p%d-" % part)), expect_base=0)
    with b.conn() as c:
        for v in (4, 5, 6, 7, 8, 9, 10, 11):
            out = call(c, API_FETCH, v, fetch_body(v, [("fe-multi", [(p, 0, 1 << 20) for p in range(3)])]),
                       decode_fetch)
            parts = out["topics"][0]["partitions"]
            eq([p["index"] for p in parts], [0, 1, 2], "Fetch v%d partitions" % v)
            for p in parts:
                eq((p["error"], p["hwm"]), (0, p["index"] + 1), "Fetch v%d partition %d" % (v, p["index"]))
                eq([r[0] for r in records_of(p["records"])], list(range(p["index"] + 1)),
                   "Fetch v%d offsets of partition %d" % (v, p["index"]))

@test()
def fetch_min_bytes_respected(b):
    create_topic(b, "fe-minb", 1)
    produce_ok(b, "fe-minb", 0, record_batch(recs(1)), expect_base=0)
    with b.conn(timeout=10) as a, b.conn() as p:
        corr = a.next_corr()
        t0 = time.monotonic()
        a.send(request(API_FETCH, 11, corr, fetch_body(11, [("fe-minb", [(0, 0, 1 << 20)])], 1500, 100000)))
        time.sleep(0.3)
        eq(produce(p, "fe-minb", 0, record_batch(recs(1)))["error"], 0, "small produce while parked")
        payload = a.recv_frame(timeout=6)
        dt = time.monotonic() - t0
    check(1.2 <= dt <= 4.0, "fetch with min_bytes 100000 returned after %.2fs (max_wait 1500 ms)" % dt)
    rd = Reader(payload)
    eq(rd.i32(), corr, "correlation id")
    fp = decode_fetch(rd, 11)["topics"][0]["partitions"][0]
    eq([r[0] for r in records_of(fp["records"])], [0, 1], "what was there at the deadline")


@test()
def fetch_parked_topic_deleted(b):
    create_topic(b, "fe-gone", 1)
    with b.conn(timeout=10) as a, b.conn() as d:
        corr = a.next_corr()
        a.send(request(API_FETCH, 11, corr, fetch_body(11, [("fe-gone", [(0, 0, 1 << 20)])], 5000, 1)))
        time.sleep(0.3)
        out = call(d, API_DELETE_TOPICS, 1, delete_topics_body(1, ["fe-gone"]), decode_delete_topics)
        eq(out["topics"][0]["error"], 0, "delete")
        t0 = time.monotonic()
        payload = a.recv_frame(timeout=6)
        dt = time.monotonic() - t0
    check(dt < 1.0, "parked fetch on a deleted topic answered after %.2fs" % dt)
    rd = Reader(payload)
    eq(rd.i32(), corr, "correlation id")
    fp = decode_fetch(rd, 11)["topics"][0]["partitions"][0]
    eq(fp["error"], UNKNOWN_TOPIC_OR_PARTITION, "error for the deleted topic")


@test()
def fetch_parked_client_gone(b):
    create_topic(b, "fe-left", 1)
    for _ in range(3):
        a = b.conn()
        a.send(request(API_FETCH, 11, 1, fetch_body(11, [("fe-left", [(0, 0, 1 << 20)])], 800, 1)) +
               request(API_METADATA, 1, 2, metadata_body(1, None)))
        time.sleep(0.1)
        a.close()
    produce_ok(b, "fe-left", 0, record_batch(recs(1)))
    time.sleep(1.0)  # past the parked fetches' deadlines
    produce_ok(b, "fe-left", 0, record_batch(recs(1)), expect_base=1)


@test()
def fetch_mid_batch(b):
    create_topic(b, "fe-mid", 1)
    produce_ok(b, "fe-mid", 0, record_batch(recs(3)), expect_base=0)
    produce_ok(b, "fe-mid", 0, record_batch(recs(2)), expect_base=3)
    with b.conn() as c:
        fp, _ = fetch(c, "fe-mid", 0, 1, v=11)
        got = [r[0] for r in records_of(fp["records"])]
        eq(got, [0, 1, 2, 3, 4], "Fetch v11 from offset 1 returns whole batches from the one holding 1")
        fp, _ = fetch(c, "fe-mid", 0, 4, v=11)
        eq([r[0] for r in records_of(fp["records"])], [3, 4], "Fetch v11 from offset 4")
        fp, _ = fetch(c, "fe-mid", 0, 1, v=2)
        msgs, _ = parse_message_set(fp["records"])
        offs = [m["offset"] for m in msgs]
        check(offs in ([0, 1, 2, 3, 4], [1, 2, 3, 4]), "Fetch v2 from offset 1 returned offsets %r" % offs)


@test()
def produce_multi_topic(b):
    create_topic(b, "mt-a", 2)
    create_topic(b, "mt-b", 1)
    produce_ok(b, "mt-a", 1, record_batch(recs(4)), expect_base=0)
    with b.conn() as c:
        body = produce_body(7, 1, [("mt-a", [(1, record_batch(recs(2))), (0, record_batch(recs(3)))]),
                                   ("mt-b", [(0, record_batch(recs(1))), (9, record_batch(recs(1)))])])
        payload = c.roundtrip(API_PRODUCE, 7, body).data[4:]
        expected = array([
            string("mt-a") + array([i32(1) + i16(0) + i64(4) + i64(-1) + i64(0),
                                    i32(0) + i16(0) + i64(0) + i64(-1) + i64(0)]),
            string("mt-b") + array([i32(0) + i16(0) + i64(0) + i64(-1) + i64(0),
                                    i32(9) + i16(3) + i64(-1) + i64(-1) + i64(-1)])]) + i32(0)
        bytes_eq(payload, expected, "Produce v7 to two topics, four partitions")
        eq([log_end(c, "mt-a", 0), log_end(c, "mt-a", 1), log_end(c, "mt-b", 0)], [3, 6, 1], "log ends")


@test()
def fetch_large_responses(b):
    create_topic(b, "fe-large", 1)
    sent = []
    with b.conn(timeout=20) as c:
        for i in range(20):
            bt = record_batch([(b"k%d" % i, bytes([65 + i]) * 500000)])
            p = produce(c, "fe-large", 0, bt)
            eq((p["error"], p["base_offset"]), (0, i), "produce of 500 KB batch %d" % i)
            sent.append(bt)
        # two big fetches and an ApiVersions, pipelined; read slowly
        body = fetch_body(11, [("fe-large", [(0, 0, 20 << 20)])], max_bytes=50 << 20)
        c.send(request(API_FETCH, 11, 71, body) + request(API_API_VERSIONS, 0, 72, b"") +
               request(API_FETCH, 11, 73, fetch_body(11, [("fe-large", [(0, 10, 20 << 20)])])))
        time.sleep(0.5)
        frames = [c.recv_frame(timeout=20) for _ in range(3)]
    eq([struct.unpack(">i", f[:4])[0] for f in frames], [71, 72, 73], "response order")
    for f, first in ((frames[0], 0), (frames[2], 10)):
        rd = Reader(f, 4)
        fp = decode_fetch(rd, 11)["topics"][0]["partitions"][0]
        eq((fp["error"], fp["hwm"]), (0, 20), "large fetch error/HWM")
        batches, tail = parse_batches(fp["records"])
        eq(tail, 0, "partial batch")
        eq([bt["base_offset"] for bt in batches], list(range(first, 20)), "batches from %d" % first)
        for bt in batches:
            check(bt["crc_ok"], "batch %d CRC" % bt["base_offset"])
            bytes_eq(bt["raw"][16:], sent[bt["base_offset"]][16:], "batch %d bytes" % bt["base_offset"])
    with b.conn(timeout=20) as c:
        fp, _ = fetch(c, "fe-large", 0, 18, v=2, partition_max_bytes=20 << 20, timeout=20)
    msgs, _ = parse_message_set(fp["records"])
    eq([(m["offset"], m["key"], len(m["value"])) for m in msgs], [(18, b"k18", 500000), (19, b"k19", 500000)],
       "Fetch v2 of large batches")
    check(all(m["crc_ok"] for m in msgs), "CRC of down-converted large messages")


# ================================================================ ListOffsets


def lo_fill(b, topic):
    create_topic(b, topic, 1)
    produce_ok(b, topic, 0, record_batch(recs(3), base_ts=1000, ts_deltas=[0, 1, 2]), expect_base=0)
    produce_ok(b, topic, 0, record_batch(recs(2), base_ts=2000, ts_deltas=[0, 1]), expect_base=3)


@test()
def list_offsets_v0(b):
    lo_fill(b, "lo-v0")
    with b.conn() as c:
        payload = c.roundtrip(API_LIST_OFFSETS, 0, list_offsets_body(
            0, [("lo-v0", [(0, -1, 10), (0, -2, 10)])])).data[4:]
        expected = array([string("lo-v0") + array([
            i32(0) + i16(0) + array([5, 0], i64),
            i32(0) + i16(0) + array([0], i64)])])
        bytes_eq(payload, expected, "ListOffsets v0 latest/earliest")
        out = call(c, API_LIST_OFFSETS, 0, list_offsets_body(0, [("lo-v0", [(0, -1, 1)]), ("lo-missing", [(0, -1, 1)])]),
                   decode_list_offsets)
        eq(out["topics"][0]["partitions"][0]["offsets"], [5], "v0 latest with max 1")
        eq(out["topics"][1]["partitions"][0]["error"], UNKNOWN_TOPIC_OR_PARTITION, "v0 unknown topic")


@test()
def list_offsets_v1_earliest_latest(b):
    lo_fill(b, "lo-v1")
    with b.conn() as c:
        payload = c.roundtrip(API_LIST_OFFSETS, 1, list_offsets_body(
            1, [("lo-v1", [(0, -2), (0, -1), (3, -1)])])).data[4:]
        expected = array([string("lo-v1") + array([
            i32(0) + i16(0) + i64(-1) + i64(0),
            i32(0) + i16(0) + i64(-1) + i64(5),
            i32(3) + i16(UNKNOWN_TOPIC_OR_PARTITION) + i64(-1) + i64(-1)])])
        bytes_eq(payload, expected, "ListOffsets v1 earliest/latest/bad partition")
        payload = c.roundtrip(API_LIST_OFFSETS, 2, list_offsets_body(2, [("lo-v1", [(0, -1)])])).data[4:]
        bytes_eq(payload, i32(0) + array([string("lo-v1") + array([i32(0) + i16(0) + i64(-1) + i64(5)])]),
                 "ListOffsets v2 latest")


@test()
def list_offsets_by_timestamp(b):
    lo_fill(b, "lo-ts")
    # Kafka answers with the first record whose timestamp >= the target,
    # and that record's own timestamp
    cases = [(0, 0, 1000), (1000, 0, 1000), (1001, 1, 1001), (1002, 2, 1002), (1500, 3, 2000),
             (2001, 4, 2001), (5000, -1, -1)]
    with b.conn() as c:
        out = call(c, API_LIST_OFFSETS, 1, list_offsets_body(1, [("lo-ts", [(0, t) for t, _, _ in cases])]),
                   decode_list_offsets)
    got = [(p["offset"], p["timestamp"]) for p in out["topics"][0]["partitions"]]
    bad = ["%d -> %r, expected %r" % (t, g, (off, ts)) for (t, off, ts), g in zip(cases, got) if g != (off, ts)]
    check(not bad, "ListOffsets v1 timestamp -> (offset, timestamp): " + "; ".join(bad))
    for p in out["topics"][0]["partitions"]:
        eq(p["error"], 0, "error")

@test()
def produce_bad_record_fields(b):
    create_topic(b, "pr-rec", 1)

    def rec(body):
        return varint(len(body)) + body

    def batch(payload, n=1):
        return record_batch([(None, None)] * n, payload=payload)
    ok_tail = varint(-1) + varint(1) + b"v" + varint(0)
    cases = [
        (rec(i8(0) + varlong(0) + varint(0) + varint(-5) + varint(1) + b"v" + varint(0)), "key length -5"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(-1) + varint(-3) + varint(0)), "value length -3"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(1000) + b"k" + varint(1) + b"v" + varint(0)),
         "key length past the batch end"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(-1) + varint(1) + b"v" + varint(1000000)),
         "header count 1,000,000"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(-1) + varint(1) + b"v" + varint(-2)), "header count -2"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(-1) + varint(1) + b"v" + varint(1) + varint(-1) +
             varint(-1)), "header key length -1"),
        (rec(i8(0) + varlong(0) + varint(0) + varint(-1) + varint(1) + b"v" + varint(1) + varint(1) + b"h" +
             varint(-4)), "header value length -4"),
        (varint(500) + i8(0) + varlong(0) + varint(0) + ok_tail, "record length past the batch end"),
        (varint(-2) + i8(0) + varlong(0) + varint(0) + ok_tail, "record length -2"),
        (rec(i8(0) + varlong(0) + varint(0) + ok_tail + b"\x00\x00"), "record length longer than its fields"),
        (rec(i8(0) + varlong(0) + b"\x80\x80\x80\x80\x80\x01" + ok_tail), "offsetDelta varint of 6 bytes"),
        (rec(i8(0) + b"\xff" * 10 + b"\x01" + varint(0) + ok_tail), "timestampDelta varlong of 11 bytes"),
        (rec(i8(0) + varlong(0) + varint(1) + ok_tail), "offsetDelta 1 for the first record"),
    ]
    for payload, what in cases:
        expect_produce_error(b, "pr-rec", batch(payload), (INVALID_RECORD, CORRUPT_MESSAGE), what)
    produce_ok(b, "pr-rec", 0, batch(rec(i8(0) + varlong(0) + varint(0) + ok_tail)), expect_base=0)


@test()
def produce_log_append_time(b):
    create_topic(b, "pr-lat", 1, [("message.timestamp.type", "LogAppendTime")])
    sent = record_batch(recs(3), base_ts=1000)
    t0 = int(time.time() * 1000)
    with b.conn() as c:
        p = produce(c, "pr-lat", 0, sent)
        t1 = int(time.time() * 1000)
        eq((p["error"], p["base_offset"]), (0, 0), "produce")
        lat = p["log_append_time"]
        check(t0 - 1000 <= lat <= t1 + 1000, "log_append_time %d not within [%d, %d]" % (lat, t0, t1))
        fp, _ = fetch(c, "pr-lat", 0, 0)
    batches, _ = parse_batches(fp["records"])
    eq(len(batches), 1, "batch count")
    bt = batches[0]
    check(bt["attributes"] & ATTR_LOG_APPEND_TIME, "timestamp-type bit not set: attributes %#x" % bt["attributes"])
    eq(bt["max_ts"], lat, "maxTimestamp is the log append time")
    check(bt["crc_ok"], "CRC-32C not recomputed after setting LogAppendTime")
    with b.conn() as c:
        fp, _ = fetch(c, "pr-lat", 0, 0, v=2)
    msgs, _ = parse_message_set(fp["records"])
    eq([m["timestamp"] for m in msgs], [lat] * 3, "Fetch v2 timestamps are the log append time")
    for m in msgs:
        check(m["attributes"] & 0x08, "magic-1 timestamp-type bit at offset %d" % m["offset"])


@test()
def legacy_produce_v0_v1_exact(b):
    create_topic(b, "lg-old", 1)
    with b.conn() as c:
        payload = c.roundtrip(API_PRODUCE, 0, produce_body(0, 1, [("lg-old", [(0, legacy_set(0, recs(2)))])])).data[4:]
        bytes_eq(payload, array([string("lg-old") + array([i32(0) + i16(0) + i64(0)])]), "Produce v0 response")
        payload = c.roundtrip(API_PRODUCE, 1, produce_body(1, 1, [("lg-old", [(0, legacy_set(0, recs(1)))])])).data[4:]
        bytes_eq(payload, array([string("lg-old") + array([i32(0) + i16(0) + i64(2)])]) + i32(0),
                 "Produce v1 response")
        payload = c.roundtrip(API_PRODUCE, 2, produce_body(2, 1, [("lg-old", [(0, legacy_set(1, recs(1), [7]))])])).data[4:]
        bytes_eq(payload, array([string("lg-old") + array([i32(0) + i16(0) + i64(3) + i64(-1)])]) + i32(0),
                 "Produce v2 response")
        eq(log_end(c, "lg-old"), 4, "log end")


@test()
def empty_arrays(b):
    with b.conn() as c:
        cases = [
            (API_PRODUCE, 7, produce_body(7, 1, []), array([]) + i32(0)),
            (API_PRODUCE, 7, produce_body(7, 1, [("ea-x", [])]), array([string("ea-x") + array([])]) + i32(0)),
            (API_FETCH, 11, fetch_body(11, [], max_wait_ms=500), i32(0) + i16(0) + i32(0) + array([])),
            (API_FETCH, 4, fetch_body(4, [], max_wait_ms=500), i32(0) + array([])),
            (API_LIST_OFFSETS, 1, list_offsets_body(1, []), array([])),
            (API_CREATE_TOPICS, 4, create_topics_body(4, []), i32(0) + array([])),
            (API_DELETE_TOPICS, 1, delete_topics_body(1, []), i32(0) + array([])),
            (API_CREATE_PARTITIONS, 1, create_partitions_body(1, []), i32(0) + array([])),
            (API_DESCRIBE_CONFIGS, 1, describe_configs_body(1, []), i32(0) + array([])),
        ]
        for api, v, body, expected in cases:
            payload = c.roundtrip(api, v, body).data[4:]
            bytes_eq(payload, expected, "api %d v%d with an empty array" % (api, v))


@test()
def fetch_clamps_and_replica_id(b):
    create_topic(b, "fe-clamp", 1)
    produce_ok(b, "fe-clamp", 0, record_batch(recs(2)), expect_base=0)
    with b.conn() as c:
        t0 = time.monotonic()
        out = call(c, API_FETCH, 11, fetch_body(11, [("fe-clamp", [(0, 0, 0x7FFFFFFF)])], max_wait_ms=-1,
                                                min_bytes=0x7FFFFFFF, max_bytes=0x7FFFFFFF), decode_fetch)
        check(time.monotonic() - t0 < 1.0, "negative max_wait was not clamped to 0")
        fp = out["topics"][0]["partitions"][0]
        eq(fp["error"], 0, "error with INT32_MAX max bytes")
        eq([r[0] for r in records_of(fp["records"])], [0, 1], "records with INT32_MAX max bytes")
        # a fetch claiming to come from a follower (replica_id >= 0) must not
        # be served to an unauthenticated client
        out = call(c, API_FETCH, 11, fetch_body(11, [("fe-clamp", [(0, 0, 1 << 20)])], replica_id=5),
                   decode_fetch)
        fp = out["topics"][0]["partitions"][0]
        check(out["error"] != 0 or fp["error"] != 0, "replica fetch served without an error")
        check(not fp["records"], "replica fetch returned records")


@test()
def pipeline_order_with_parked_fetch(b):
    create_topic(b, "pl-order", 1)
    with b.conn(timeout=10) as c:
        c.send(request(API_FETCH, 11, 901, fetch_body(11, [("pl-order", [(0, 0, 1 << 20)])], 1000, 1)) +
               request(API_API_VERSIONS, 0, 902, b"") +
               request(API_METADATA, 1, 903, metadata_body(1, [])))
        t0 = time.monotonic()
        ids = [struct.unpack(">i", c.recv_frame(timeout=5)[:4])[0] for _ in range(3)]
        dt = time.monotonic() - t0
    eq(ids, [901, 902, 903], "response order behind a parked fetch")
    check(0.7 <= dt <= 4, "responses took %.2fs (fetch max_wait 1000 ms)" % dt)


@test()
def api_versions_v3_bad_software_name(b):
    with b.conn() as c:
        out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 3, api_versions_body(3, "bad name!", "1.0")), 3)
        eq(out["error"], INVALID_REQUEST, "ApiVersions v3 with an invalid client software name")


# ================================================================ hostile input


@test()
def hostile_frame_length_negative_zero_small(b):
    for n in (-1, -2147483648, 0, 4, 7, 8):
        send_and_expect_close(b, i32(n) + b"\x00\x12\x00\x00\x00\x00\x00\x01" * 2, "frame length %d" % n)
        err = api_versions_ok(b)
        check(err is None, "after length %d: %s" % (n, err))


@test()
def hostile_frame_length_too_big(b):
    http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    eq(struct.unpack(">i", http[:4])[0], 1195725856, "HTTP length")
    tls = bytes.fromhex("160301020001") + b"\x00" * 60
    eq(struct.unpack(">i", tls[:4])[0], 369295618, "TLS length")
    for data, what in ((http, "HTTP GET"), (tls, "TLS ClientHello"), (i32((100 << 20) + 1) + b"\0" * 16,
                                                                        "100 MiB + 1")):
        send_and_expect_close(b, data, what)
        err = api_versions_ok(b)
        check(err is None, "after %s: %s" % (what, err))


@test()
def hostile_truncated_frame(b):
    full = request(API_METADATA, 1, 77, metadata_body(1, ["hx-trunc"]))
    for how in ("fin", "rst"):
        c = b.conn()
        c.send(full[:len(full) - 3])
        if how == "rst":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        err = api_versions_ok(b)
        check(err is None, "after truncated frame + %s: %s" % (how, err))
    # a large announced frame, partly sent
    c = b.conn()
    c.send(i32(50 << 20) + request_header(API_PRODUCE, 7, 1)[:8] + b"\0" * 100000)
    c.close()
    check(api_versions_ok(b) is None, "after truncated 50 MB frame")
    with b.conn() as c:
        check(not topic_exists(c, "hx-trunc"), "the truncated Metadata request was processed")


@test()
def hostile_unknown_api_key(b):
    for key in (-1, 32767, 9999, 1000):
        send_and_expect_close(b, frame(i16(key) + i16(0) + i32(5) + string("x")), "api key %d" % key)
    # a good request pipelined after the bad one is not answered either
    with b.conn() as c:
        c.send(frame(i16(-1) + i16(0) + i32(5) + string("x")) + request(API_API_VERSIONS, 0, 6, b""))
        err = c.expect_closed()
    check(err is None, "pipelined after unknown key: %s" % err)


@test()
def hostile_unsupported_version(b):
    for key, v in ((API_METADATA, 99), (API_METADATA, 7), (API_PRODUCE, 8), (API_FETCH, 12),
                   (API_LIST_OFFSETS, 4), (API_CREATE_TOPICS, 5), (API_METADATA, -1)):
        send_and_expect_close(b, request(key, v, 9, metadata_body(1, None)), "api %d v%d" % (key, v))


@test()
def hostile_client_id(b):
    base = i16(API_API_VERSIONS) + i16(0) + i32(3)
    send_and_expect_close(b, frame(base + i16(-2) + b"abc"), "client_id length -2")
    send_and_expect_close(b, frame(base + i16(-32768)), "client_id length -32768")
    send_and_expect_close(b, frame(base + i16(100) + b"abc"), "client_id length past the frame end")
    send_and_expect_close(b, frame(i16(API_METADATA) + i16(1) + i32(3) + i16(5) + b"ab"), "Metadata client_id past end")
    # null and empty client ids are fine
    with b.conn() as c:
        for cid in (None, ""):
            out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b"", client_id=cid), 0)
            eq(out["error"], 0, "client_id %r" % cid)


@test()
def hostile_header_tagged_fields(b):
    base = i16(API_API_VERSIONS) + i16(3) + i32(3) + string("x")
    body = api_versions_body(3)
    for tagsec, what in ((b"\xff\xff\xff\xff\x0f", "tag count 2^32-1"),
                         (uvarint(1000000), "tag count 1,000,000"),
                         (uvarint(0x7FFFFFFF), "tag count INT32_MAX"),
                         (uvarint(1) + uvarint(5) + uvarint(1000), "tag size past the end"),
                         (b"\x80\x80\x80\x80\x80\x01", "6-byte tag count varint")):
        send_and_expect_close(b, frame(base + tagsec + body), "header v2 " + what)
    # a header with a real (unknown) tagged field is skipped
    with b.conn() as c:
        c.send(frame(base + tags([(7, b"hello")]) + body))
        r = Reader(c.recv_frame())
        eq(r.i32(), 3, "correlation id")
        eq(decode_api_versions(r, 3)["error"], 0, "ApiVersions v3 with an unknown header tag")


@test()
def hostile_array_count_huge(b):
    rss0 = b.status_kb("VmRSS")
    hdr = lambda api, v: request_header(api, v, 11)  # noqa: E731
    cases = [
        (frame(hdr(API_METADATA, 1) + i32(0x7FFFFFFF)), "Metadata topics INT32_MAX"),
        (frame(hdr(API_METADATA, 1) + i32(0x7FFFFFFF) + b"\x00\x01a" * 3), "Metadata topics INT32_MAX, 9 bytes"),
        (frame(hdr(API_PRODUCE, 7) + string(None) + i16(1) + i32(1000) + i32(0x7FFFFFFF)), "Produce topics"),
        (frame(hdr(API_PRODUCE, 7) + string(None) + i16(1) + i32(1000) + i32(1) + string("t") + i32(0x7FFFFFFF)),
         "Produce partitions"),
        (frame(hdr(API_FETCH, 11) + i32(-1) + i32(0) + i32(1) + i32(1000) + i8(0) + i32(0) + i32(-1) +
               i32(0x7FFFFFFF)), "Fetch topics"),
        (frame(hdr(API_CREATE_TOPICS, 4) + i32(0x7FFFFFFF)), "CreateTopics topics"),
        (frame(hdr(API_API_VERSIONS, 3) + b"\xff\xff\xff\xff\x07"), "ApiVersions v3 compact string INT32_MAX"),
    ]
    for data, what in cases:
        send_and_expect_close(b, data, what)
    err = api_versions_ok(b)
    check(err is None, "after huge counts: %s" % err)
    rss1 = b.status_kb("VmRSS")
    check(rss1 - rss0 < 64 * 1024, "broker RSS grew from %d kB to %d kB" % (rss0, rss1))


@test()
def hostile_negative_lengths(b):
    hdr = lambda api, v: request_header(api, v, 12)  # noqa: E731
    cases = [
        (frame(hdr(API_METADATA, 1) + i32(1) + i16(-2)), "Metadata topic name length -2"),
        (frame(hdr(API_METADATA, 1) + i32(1) + i16(-1)), "Metadata topic name null (not nullable)"),
        (frame(hdr(API_METADATA, 1) + i32(-2)), "Metadata topics count -2"),
        (frame(hdr(API_METADATA, 0) + i32(-1)), "Metadata v0 topics null (not nullable in v0)"),
        (frame(hdr(API_PRODUCE, 7) + i16(-3) + i16(1) + i32(1000) + i32(0)), "transactional_id length -3"),
        (frame(hdr(API_CREATE_TOPICS, 4) + i32(1) + i16(-7)), "CreateTopics name length -7"),
        (frame(hdr(API_LIST_OFFSETS, 1) + i32(-1) + i32(-5)), "ListOffsets topics count -5"),
    ]
    for data, what in cases:
        send_and_expect_close(b, data, what)


@test()
def hostile_nested_length_past_end(b):
    hdr = request_header(API_PRODUCE, 7, 13)
    rb = record_batch(recs(1))
    body = string(None) + i16(1) + i32(1000) + i32(1) + string("hx-nested") + i32(1) + i32(0) + i32(len(rb) + 1000) + rb
    send_and_expect_close(b, frame(hdr + body), "records length past the frame end")
    send_and_expect_close(b, frame(request_header(API_METADATA, 1, 14) + i32(1) + i16(200) + b"abc"),
                          "topic name length past the frame end")
    with b.conn() as c:
        check(not topic_exists(c, "hx-nested"), "the malformed Produce created a topic")


@test()
def hostile_varint_too_long(b):
    base = request_header(API_API_VERSIONS, 3, 15)
    for enc, what in ((b"\x80\x80\x80\x80\x80\x01", "6-byte compact string length"),
                      (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "11-byte compact string length"),
                      (b"\x80\x80\x80\x80\x10", "5-byte varint above 2^32")):
        send_and_expect_close(b, frame(base + enc + b"abc" + compact_string("1") + tags()), what)


@test()
def hostile_pipelined_flood(b):
    rss0 = b.status_kb("VmRSS")
    n = 5000
    reqs = [request(API_METADATA, 1, i, metadata_body(1, None)) for i in range(n)]
    blob = b"".join(reqs)
    sizes = [len(x) for x in reqs]
    c = b.conn()
    c.sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 3.0
    while sent < len(blob) and time.monotonic() < deadline:
        _, w, _ = select.select([], [c.sock], [], 0.05)
        if w:
            try:
                sent += c.sock.send(blob[sent:sent + 65536])
            except BlockingIOError:
                pass
    complete = 0
    acc = 0
    for s in sizes:
        if acc + s > sent:
            break
        acc += s
        complete += 1
    # meanwhile a second client is served
    t0 = time.monotonic()
    err = api_versions_ok(b, timeout=2.0)
    check(err is None, "second client during the flood: %s" % err)
    check(time.monotonic() - t0 < 2.0, "second client waited %.2fs" % (time.monotonic() - t0))
    rss_mid = b.status_kb("VmRSS")
    # now read everything that was fully sent, in order
    c.sock.setblocking(True)
    for i in range(complete):
        payload = c.recv_frame(timeout=10)
        got = struct.unpack(">i", payload[:4])[0]
        if got != i:
            c.close()
            raise TestFailure("response %d has correlation id %d" % (i, got))
    c.close()
    check(complete >= 500, "only %d requests could be sent" % complete)
    check(rss_mid - rss0 < 200 * 1024, "broker RSS grew from %d kB to %d kB during the flood" % (rss0, rss_mid))
    if VERBOSE:
        print("  flood: %d of %d requests sent, RSS %d -> %d kB" % (complete, n, rss0, rss_mid))


@test()
def hostile_many_idle_connections(b):
    conns = []
    try:
        for _ in range(500):
            conns.append(socket.create_connection(("127.0.0.1", b.port), timeout=5))
        t0 = time.monotonic()
        err = api_versions_ok(b, timeout=3.0)
        check(err is None, "new client with 500 idle connections open: %s" % err)
        check(time.monotonic() - t0 < 2.0, "new client took %.2fs" % (time.monotonic() - t0))
        # the idle connections themselves still work
        s = conns[0]
        s.sendall(request(API_API_VERSIONS, 0, 42, b""))
        hdr = s.recv(8)
        check(len(hdr) >= 8 and struct.unpack(">i", hdr[4:8])[0] == 42, "oldest idle connection answers")
    finally:
        for s in conns:
            s.close()


def trickle_until_closed(b, first, rest, interval=0.3, limit=6.0):
    """Sends first, then one byte of rest per interval, until the broker
    closes.  Meanwhile checks another client is served.  Returns the
    seconds from the first byte to the close (or None)."""
    c = b.conn()
    t0 = time.monotonic()
    c.send(first)
    served = False
    i = 0
    closed_at = None
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([c.sock], [], [], interval)
        if r:
            try:
                data = c.sock.recv(100)
            except ConnectionResetError:
                data = b""
            if data:
                c.close()
                raise TestFailure("broker sent %d bytes to a slowloris connection" % len(data))
            closed_at = time.monotonic() - t0
            break
        if not served and time.monotonic() - t0 > 0.4:
            err = api_versions_ok(b, timeout=1.0)
            check(err is None, "another client during slowloris: %s" % err)
            served = True
        if i < len(rest):
            try:
                c.send(rest[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            i += 1
    c.close()
    check(served, "the other client was not tried")
    return closed_at


@test("slow")
def slowloris_length_prefix(b):
    full = request(API_METADATA, 1, 1, metadata_body(1, None))
    dt = trickle_until_closed(b, full[:2], full[2:])
    check(dt is not None, "slowloris connection (1 byte/300 ms of the length) still open after 6 s")
    check(0.8 <= dt <= 3.5, "slowloris connection closed after %.2fs (deadline 1000 ms)" % dt)


@test("slow")
def slowloris_body(b):
    full = request(API_METADATA, 1, 1, metadata_body(1, ["s" * 200]))
    dt = trickle_until_closed(b, full[:10], full[10:])
    check(dt is not None, "slowloris connection (1 byte/300 ms of the body) still open after 6 s")
    check(0.8 <= dt <= 3.5, "slowloris connection closed after %.2fs (deadline 1000 ms)" % dt)


@test("slow")
def slow_idle_connection_not_reaped(b):
    # the frame deadline applies to partial frames only, not to quiet clients
    with b.conn() as c:
        out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b""), 0)
        eq(out["error"], 0, "first request")
        time.sleep(2.5)
        out = decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b""), 0)
        eq(out["error"], 0, "request after 2.5 s of silence")
        # a frame sent whole after silence is fine, and one sent in two
        # halves 500 ms apart completes within the deadline
        full = request(API_API_VERSIONS, 0, 77, b"")
        c.send(full[:6])
        time.sleep(0.5)
        c.send(full[6:])
        eq(struct.unpack(">i", c.recv_frame()[:4])[0], 77, "split frame answered")

@test("caps")
def caps_idle_connection_reaped(b):
    with b.conn() as c:
        eq(decode_api_versions(c.roundtrip(API_API_VERSIONS, 0, b""), 0)["error"], 0, "first request")
        t0 = time.monotonic()
        err = c.expect_closed(timeout=5.0)
        dt = time.monotonic() - t0
    check(err is None, "idle connection with connections.max.idle.ms=1000: %s" % err)
    check(0.9 <= dt <= 3.5, "idle connection closed after %.2fs" % dt)
    # a connection waiting on a long poll is not idle
    create_topic(b, "cap-poll", 1)
    with b.conn(timeout=10) as c:
        fp, _ = fetch(c, "cap-poll", 0, 0, max_wait_ms=2500, timeout=10)
        eq(fp["error"], 0, "long poll across the idle timeout")


@test("caps")
def caps_connections_per_ip(b):
    time.sleep(0.2)  # let the broker see earlier connections close
    conns = []
    try:
        for i in range(19):
            conns.append(b.conn())
        last = b.conn()
        conns.append(last)
        eq(decode_api_versions(last.roundtrip(API_API_VERSIONS, 0, b""), 0)["error"], 0, "20th connection")
        extra = b.conn()
        conns.append(extra)
        try:
            extra.send(request(API_API_VERSIONS, 0, 5, b""))
        except (BrokenPipeError, ConnectionResetError):
            pass
        err = extra.expect_closed(timeout=2.0)
        check(err is None, "21st connection with max.connections.per.ip=20: %s" % err)
    finally:
        for c in conns:
            c.close()
    time.sleep(0.2)
    check(api_versions_ok(b) is None, "a new connection after closing the others")


@test("caps")
def caps_socket_request_max_bytes(b):
    create_topic(b, "cap-max", 1)
    big = record_batch([(b"k", b"x" * 12000)])
    send_and_expect_close(b, request(API_PRODUCE, 7, 1, produce_body(7, 1, [("cap-max", [(0, big)])])),
                          "Produce frame above socket.request.max.bytes=10000")
    produce_ok(b, "cap-max", 0, record_batch([(b"k", b"x" * 8000)]), expect_base=0)
    expect_log_end(b, "cap-max", 1)


# ================================================================ group coordinator
# Group tests run on a broker with group.initial.rebalance.delay.ms=0.
# Group protocol versions under test: FindCoordinator 0-2, JoinGroup 0-5,
# SyncGroup/Heartbeat/LeaveGroup 0-3, OffsetCommit 0-7, OffsetFetch 0-5,
# DescribeGroups 0-4, ListGroups 0-2, DeleteGroups 0-1, OffsetDelete 0.

INT32_MIN = -2147483648


def send_req(c, api, v, body, client_id="wire-test"):
    """Sends one request without waiting; returns its correlation id."""
    corr = c.next_corr()
    c.send(request(api, v, corr, body, client_id))
    return corr


def recv_raw(c, corr, api, v, timeout=None):
    """Reads the next response on c, checks its correlation id (and header
    tags when flexible), and returns a Reader positioned at the body."""
    r = Reader(c.recv_frame(timeout))
    eq(r.i32(), corr, "correlation id of the api %d v%d response" % (api, v))
    if is_flexible(api, v):
        t = r.tags()
        check(not t, "unexpected response header tags %r" % t)
    return r


def no_response_within(c, seconds):
    """True when nothing arrives on c within the given time."""
    r, _, _ = select.select([c.sock], [], [], seconds)
    return not r


def body_bytes(c, api, v, body, **kw):
    """The response body bytes (after the correlation id and, for flexible
    versions, the response header's tag section)."""
    r = c.roundtrip(api, v, body, **kw)
    return r.data[r.pos:]


def sub(topics, userdata=None):
    return consumer_subscription(list(topics), userdata)


class Member:
    """One group member with its own connection.  v is the JoinGroup
    version; SyncGroup, Heartbeat and LeaveGroup use min(v, 3)."""

    def __init__(self, b, group, v=5, topics=("wire-topic",), client_id="wire-member", session_ms=30000,
                 rebalance_ms=10000, instance_id=None, protocols=None, protocol_type="consumer"):
        self.group, self.v, self.client_id = group, v, client_id
        self.session_ms, self.rebalance_ms = session_ms, rebalance_ms
        self.instance_id = instance_id
        self.protocol_type = protocol_type
        self.protocols = protocols if protocols is not None else [("range", sub(topics))]
        self.id = ""
        self.gen = -1
        self.last = None
        self.c = b.conn(timeout=15)
        self.corr = None

    @property
    def sv(self):
        return min(self.v, 3)

    def close(self):
        self.c.close()

    def join_body(self, member_id=None):
        return join_group_body(self.v, self.group, self.id if member_id is None else member_id, self.protocols,
                               self.session_ms, self.rebalance_ms, self.protocol_type, self.instance_id)

    def send_join(self):
        self.corr = send_req(self.c, API_JOIN_GROUP, self.v, self.join_body(), self.client_id)

    def recv_join(self, timeout=None):
        out = decode_join_group(recv_raw(self.c, self.corr, API_JOIN_GROUP, self.v, timeout), self.v)
        if out["error"] == 0:
            self.id, self.gen = out["member_id"], out["generation"]
        self.last = out
        return out

    def join(self, timeout=None):
        """JoinGroup, answering MEMBER_ID_REQUIRED (v4+) by rejoining with
        the id handed out.  Fails the test on any other error."""
        self.send_join()
        out = self.recv_join(timeout)
        if out["error"] == MEMBER_ID_REQUIRED and self.v >= 4 and not self.id:
            self.id = out["member_id"]
            check(self.id, "MEMBER_ID_REQUIRED without a member id")
            self.send_join()
            out = self.recv_join(timeout)
        eq(out["error"], 0, "JoinGroup v%d error for %s in %s" % (self.v, self.client_id, self.group))
        return out

    def send_sync(self, assignments=()):
        self.corr = send_req(self.c, API_SYNC_GROUP, self.sv, sync_group_body(
            self.sv, self.group, self.gen, self.id, assignments, self.instance_id), self.client_id)

    def recv_sync(self, timeout=None):
        return decode_sync_group(recv_raw(self.c, self.corr, API_SYNC_GROUP, self.sv, timeout), self.sv)

    def sync(self, assignments=(), timeout=None):
        self.send_sync(assignments)
        return self.recv_sync(timeout)

    def heartbeat(self, gen=None, member_id=None, instance_id=None):
        iid = self.instance_id if instance_id is None else instance_id
        out = call(self.c, API_HEARTBEAT, self.sv, heartbeat_body(
            self.sv, self.group, self.gen if gen is None else gen, self.id if member_id is None else member_id,
            iid), decode_heartbeat, client_id=self.client_id)
        return out["error"]

    def leave(self):
        lv = self.sv
        if lv >= 3:
            out = call(self.c, API_LEAVE_GROUP, 3, leave_group_body(3, self.group, members=[(self.id, self.instance_id)]),
                       decode_leave_group)
            eq((out["error"], [m["error"] for m in out["members"]]), (0, [0]), "LeaveGroup v3 of %s" % self.id)
        else:
            out = call(self.c, API_LEAVE_GROUP, lv, leave_group_body(lv, self.group, self.id), decode_leave_group)
            eq(out["error"], 0, "LeaveGroup v%d of %s" % (lv, self.id))

    def commit(self, topics, v=2, gen=None, member_id=None):
        """OffsetCommit as this member; returns {(topic, partition): error}."""
        out = call(self.c, API_OFFSET_COMMIT, v, offset_commit_body(
            v, self.group, topics, self.gen if gen is None else gen, self.id if member_id is None else member_id,
            self.instance_id if v >= 7 else None), decode_offset_commit)
        return {(t["name"], p["index"]): p["error"] for t in out["topics"] for p in t["partitions"]}


def stable_member(b, group, assignment=b"assigned", **kw):
    """A lone member that has joined and synced (the group is Stable)."""
    m = Member(b, group, **kw)
    try:
        m.join()
        out = m.sync([(m.id, assignment)])
        eq((out["error"], out["assignment"]), (0, assignment), "SyncGroup of the lone member")
    except BaseException:
        m.close()
        raise
    return m


def wait_heartbeat_error(m, code, limit=3.0):
    """Heartbeats until the error is code (the broker has seen a rebalance
    trigger sent on another connection); returns the last error."""
    deadline = time.monotonic() + limit
    while True:
        err = m.heartbeat()
        if err == code or time.monotonic() > deadline:
            return err
        time.sleep(0.05)


def two_member_stable(b, group, a_kw=None, b_kw=None, assignments=None):
    """Members a (leader) and b in a Stable group at generation 2.
    assignments(a, b) -> [(member id, bytes)] for the leader's SyncGroup."""
    a = stable_member(b, group, **(a_kw or {}))
    m2 = Member(b, group, **(b_kw or {}))
    try:
        m2.send_join()
        err = wait_heartbeat_error(a, REBALANCE_IN_PROGRESS)
        eq(err, REBALANCE_IN_PROGRESS, "leader's heartbeat after a second member's JoinGroup")
        a.send_join()
        oa = a.recv_join()
        ob = m2.recv_join()
        if ob["error"] == MEMBER_ID_REQUIRED:
            raise TestFailure("second member got MEMBER_ID_REQUIRED; use a version below 4 for it")
        eq((oa["error"], ob["error"]), (0, 0), "JoinGroup errors of the rebalance")
        m2.send_sync()
        asg = assignments(a, m2) if assignments else [(a.id, b"asg-a"), (m2.id, b"asg-b")]
        sa = a.sync(asg)
        sb = m2.recv_sync()
        eq((sa["error"], sb["error"]), (0, 0), "SyncGroup errors of the rebalance")
    except BaseException:
        a.close()
        m2.close()
        raise
    return a, m2


def describe_group(c, group, v=4):
    out = call(c, API_DESCRIBE_GROUPS, v, describe_groups_body(v, [group]), decode_describe_groups)
    eq(len(out["groups"]), 1, "DescribeGroups group count")
    return out["groups"][0]


def fetch_offsets(c, group, topics, v=5):
    """{(topic, partition): (offset, metadata, error)} from OffsetFetch."""
    out = call(c, API_OFFSET_FETCH, v, offset_fetch_body(v, group, topics), decode_offset_fetch)
    if v >= 2:
        eq(out["error"], 0, "OffsetFetch v%d top-level error for %s" % (v, group))
    return {(t["name"], p["index"]): (p["offset"], p["metadata"], p["error"])
            for t in out["topics"] for p in t["partitions"]}


def commit_offsets(c, group, topics, v=2, generation=-1, member_id=""):
    """OffsetCommit; returns {(topic, partition): error}."""
    out = call(c, API_OFFSET_COMMIT, v, offset_commit_body(v, group, topics, generation, member_id),
               decode_offset_commit)
    return {(t["name"], p["index"]): p["error"] for t in out["topics"] for p in t["partitions"]}


def join_error_bytes(v, err, member_id=""):
    """A JoinGroup v0-5 error response body as Kafka writes it: generation
    -1, empty protocol name and leader, the request's member id, no members."""
    return (i32(0) if v >= 2 else b"") + i16(err) + i32(-1) + string("") + string("") + string(member_id) + \
        array([])


class Soft:
    """Collects failed checks so one test reports every deviation it saw:
    soft(bytes_eq, got, expected, what); soft.done() at the end."""

    def __init__(self):
        self.problems = []

    def __call__(self, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except TestFailure as e:
            self.problems.append(str(e))

    def done(self):
        check(not self.problems, " || ".join(self.problems))


@test("groups")
def grp_find_coordinator(b):
    with b.conn() as c:
        bytes_eq(body_bytes(c, API_FIND_COORDINATOR, 0, find_coordinator_body(0, "fc-group")),
                 i16(0) + i32(0) + string("127.0.0.1") + i32(b.port), "FindCoordinator v0 (node 0 at 127.0.0.1:port)")
        for v in (1, 2):
            bytes_eq(body_bytes(c, API_FIND_COORDINATOR, v, find_coordinator_body(v, "fc-group-%d" % v, 0)),
                     i32(0) + i16(0) + string(None) + i32(0) + string("127.0.0.1") + i32(b.port),
                     "FindCoordinator v%d group key" % v)
        for v in (1, 2):
            out = call(c, API_FIND_COORDINATOR, v, find_coordinator_body(v, "fc-txn", 1), decode_find_coordinator)
            # shopstream offers no transactions: a fatal error for the client
            # (53) rather than COORDINATOR_NOT_AVAILABLE, which it would retry
            # forever
            eq((out["error"], out["node_id"], out["host"], out["port"]), (53, -1, "", -1),
               "FindCoordinator v%d key type 1 (transaction): (error, node, host, port) [message %r]" % (
                   v, out["message"]))


@test("groups")
def grp_single_member_flow_v0_v5(b):
    """One member through JoinGroup, SyncGroup, Heartbeat and LeaveGroup at
    every JoinGroup version (SyncGroup/Heartbeat/LeaveGroup at min(v, 3))."""
    meta = sub(["sm-topic"])
    protos = [("range", meta), ("roundrobin", sub(["sm-topic"], b"rr"))]
    asg = consumer_assignment([("sm-topic", [0])])
    for v in range(6):
        group = "sm-v%d" % v
        what = "JoinGroup v%d" % v
        with b.conn() as c:
            mid = ""
            if v >= 4:
                payload = body_bytes(c, API_JOIN_GROUP, v, join_group_body(v, group, "", protos))
                mid = decode_join_group(Reader(payload), v)["member_id"]
                check(mid, "%s MEMBER_ID_REQUIRED without a member id" % what)
                bytes_eq(payload, join_error_bytes(v, MEMBER_ID_REQUIRED, mid), what + " with an empty member id")
            payload = body_bytes(c, API_JOIN_GROUP, v, join_group_body(v, group, mid, protos))
            out = decode_join_group(Reader(payload), v)
            eq(out["error"], 0, what + " error")
            if v >= 4:
                eq(out["member_id"], mid, what + " member id after MEMBER_ID_REQUIRED")
            mid = out["member_id"]
            check(mid, what + " handed out an empty member id")
            expected = (i32(0) if v >= 2 else b"") + i16(0) + i32(1) + string("range") + string(mid) + \
                string(mid) + array([string(mid) + (string(None) if v >= 5 else b"") + kbytes(meta)])
            bytes_eq(payload, expected, what + " response (generation 1, range, leader gets its own metadata)")
            sv = min(v, 3)
            bytes_eq(body_bytes(c, API_SYNC_GROUP, sv, sync_group_body(sv, group, 1, mid, [(mid, asg)])),
                     (i32(0) if sv >= 1 else b"") + i16(0) + kbytes(asg), "SyncGroup v%d response" % sv)
            # in Stable, SyncGroup again returns the same assignment
            bytes_eq(body_bytes(c, API_SYNC_GROUP, sv, sync_group_body(sv, group, 1, mid, [])),
                     (i32(0) if sv >= 1 else b"") + i16(0) + kbytes(asg), "second SyncGroup v%d in Stable" % sv)
            bytes_eq(body_bytes(c, API_HEARTBEAT, sv, heartbeat_body(sv, group, 1, mid)),
                     (i32(0) if sv >= 1 else b"") + i16(0), "Heartbeat v%d response" % sv)
            g = describe_group(c, group)
            eq((g["state"], g["protocol_type"], g["protocol"], [m["member_id"] for m in g["members"]]),
               ("Stable", "consumer", "range", [mid]), "DescribeGroups after v%d flow" % v)
            if sv >= 3:
                bytes_eq(body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(3, group, members=[(mid, None)])),
                         i32(0) + i16(0) + array([string(mid) + string(None) + i16(0)]), "LeaveGroup v3 response")
            else:
                bytes_eq(body_bytes(c, API_LEAVE_GROUP, sv, leave_group_body(sv, group, mid)),
                         (i32(0) if sv >= 1 else b"") + i16(0), "LeaveGroup v%d response" % sv)
            out = call(c, API_HEARTBEAT, sv, heartbeat_body(sv, group, 1, mid), decode_heartbeat)
            eq(out["error"], UNKNOWN_MEMBER_ID, "Heartbeat v%d after leaving" % sv)
            g = describe_group(c, group)
            eq((g["state"], g["members"]), ("Empty", []), "group after its only member left (v%d)" % v)


@test("groups")
def grp_two_members_rebalance(b):
    """A second member's JoinGroup starts a rebalance: the first gets
    REBALANCE_IN_PROGRESS on Heartbeat and rejoins; the generation goes up;
    only the leader gets the member list; the follower's SyncGroup waits
    for the leader's."""
    group = "tm-group"
    meta_a, meta_b = sub(["tm-t"]), sub(["tm-t", "tm-u"], b"ud")
    a = Member(b, group, v=5, topics=["tm-t"], client_id="member-a")
    m2 = Member(b, group, v=2, protocols=[("range", meta_b)], client_id="member-b")
    try:
        out = a.join()
        eq((out["generation"], out["leader"]), (1, a.id), "first member's JoinGroup (generation, leader)")
        eq(a.sync([(a.id, b"A1")])["assignment"], b"A1", "first assignment")
        eq(a.heartbeat(), 0, "heartbeat in Stable")
        m2.send_join()
        check(no_response_within(m2.c, 0.4), "second member's JoinGroup answered before the first member rejoined")
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS,
           "first member's Heartbeat while the second joins")
        with b.conn() as c:
            eq(describe_group(c, group)["state"], "PreparingRebalance", "state while waiting for the rejoin")
        a.send_join()
        oa = a.recv_join()
        ob = m2.recv_join()
        eq((oa["error"], ob["error"]), (0, 0), "rejoin errors")
        check(m2.id and m2.id != a.id, "second member id %r (first %r)" % (m2.id, a.id))
        eq((oa["generation"], ob["generation"]), (2, 2), "generation after the rebalance")
        eq((oa["leader"], ob["leader"]), (a.id, a.id), "leader seen by both members")
        eq((oa["protocol"], ob["protocol"]), ("range", "range"), "protocol seen by both members")
        eq(ob["members"], [], "member list given to the non-leader")
        got = sorted((m["member_id"], m["instance_id"], m["metadata"]) for m in oa["members"])
        eq(got, sorted([(a.id, None, meta_a), (m2.id, None, meta_b)]), "leader's member list (id, instance, metadata)")
        # heartbeats between JoinGroup and SyncGroup are fine (Kafka: NONE in CompletingRebalance)
        eq(a.heartbeat(), 0, "leader's Heartbeat in CompletingRebalance")
        m2.send_sync()
        check(no_response_within(m2.c, 0.5), "follower's SyncGroup answered before the leader's SyncGroup")
        sa = a.sync([(a.id, b"A2"), (m2.id, b"B2")])
        eq((sa["error"], sa["assignment"]), (0, b"A2"), "leader's SyncGroup")
        sb = m2.recv_sync(timeout=3)
        eq((sb["error"], sb["assignment"]), (0, b"B2"), "follower's SyncGroup after the leader's")
        eq((a.heartbeat(), m2.heartbeat()), (0, 0), "heartbeats in the new generation")
        eq(a.heartbeat(gen=1), ILLEGAL_GENERATION, "Heartbeat with the previous generation")
        # a follower rejoining with unchanged metadata in Stable just learns the
        # current generation (no rebalance)
        ob = m2.join()
        eq((ob["generation"], ob["leader"], ob["members"]), (2, a.id, []), "follower rejoin in Stable")
        eq(a.heartbeat(), 0, "leader's Heartbeat after the follower's unchanged rejoin")
        with b.conn() as c:
            g = describe_group(c, group)
        eq((g["state"], sorted(m["member_id"] for m in g["members"])), ("Stable", sorted([a.id, m2.id])),
           "group after the rebalance")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_commit_during_rebalance(b):
    """Kafka accepts OffsetCommit from a member of the current generation
    while the group is PreparingRebalance (consumers commit in their
    revocation callback before rejoining), refuses it with
    REBALANCE_IN_PROGRESS in CompletingRebalance, and with
    ILLEGAL_GENERATION once the generation has moved on."""
    create_topic(b, "cr-t", 1)
    group = "cr-group"
    a = stable_member(b, group, topics=["cr-t"])
    m2 = Member(b, group, v=3, topics=["cr-t"])
    problems = []
    try:
        eq(a.commit([("cr-t", [(0, 1, "")])]), {("cr-t", 0): 0}, "commit in Stable")
        m2.send_join()
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after second join")
        got = a.commit([("cr-t", [(0, 2, "")])])[("cr-t", 0)]
        if got != 0:
            problems.append("OffsetCommit v2 from the generation-1 member during PreparingRebalance: "
                            "expected 0 (Kafka allows it), got %d" % got)
        a.send_join()
        a.recv_join()
        m2.recv_join()
        eq((a.gen, m2.gen), (2, 2), "generation after the rebalance")
        got = a.commit([("cr-t", [(0, 3, "")])])[("cr-t", 0)]
        if got != REBALANCE_IN_PROGRESS:
            problems.append("OffsetCommit in CompletingRebalance: expected 27, got %d" % got)
        m2.send_sync()
        a.sync([(a.id, b"a"), (m2.id, b"b")])
        m2.recv_sync()
        got = a.commit([("cr-t", [(0, 4, "")])], gen=1)[("cr-t", 0)]
        if got != ILLEGAL_GENERATION:
            problems.append("OffsetCommit with the old generation 1 in Stable: expected 22, got %d" % got)
        eq(a.commit([("cr-t", [(0, 5, "")])]), {("cr-t", 0): 0}, "commit with generation 2 in Stable")
        with b.conn() as c:
            eq(fetch_offsets(c, group, [("cr-t", [0])])[("cr-t", 0)][0], 5, "committed offset")
    finally:
        a.close()
        m2.close()
    check(not problems, "; ".join(problems))


@test("groups")
def grp_unknown_member_id(b):
    create_topic(b, "um-t", 1)
    group = "um-group"
    a = stable_member(b, group)
    soft = Soft()
    try:
        with b.conn() as c:
            for v in (0, 1, 3):
                soft(bytes_eq, body_bytes(c, API_HEARTBEAT, v, heartbeat_body(v, group, 1, "nope")),
                     (i32(0) if v >= 1 else b"") + i16(UNKNOWN_MEMBER_ID), "Heartbeat v%d unknown member" % v)
                soft(bytes_eq, body_bytes(c, API_SYNC_GROUP, v, sync_group_body(v, group, 1, "nope", [("nope", b"x")])),
                     (i32(0) if v >= 1 else b"") + i16(UNKNOWN_MEMBER_ID) + kbytes(b""),
                     "SyncGroup v%d unknown member" % v)
            for v in (2, 7):
                soft(bytes_eq, body_bytes(c, API_OFFSET_COMMIT, v, offset_commit_body(
                    v, group, [("um-t", [(0, 5, "")])], 1, "nope")),
                    (i32(0) if v >= 3 else b"") + array([string("um-t") + array([i32(0) + i16(UNKNOWN_MEMBER_ID)])]),
                    "OffsetCommit v%d unknown member" % v)
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 0, leave_group_body(0, group, "nope")),
                 i16(UNKNOWN_MEMBER_ID), "LeaveGroup v0 unknown member")
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 1, leave_group_body(1, group, "nope")),
                 i32(0) + i16(UNKNOWN_MEMBER_ID), "LeaveGroup v1 unknown member")
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(3, group, members=[("nope", None)])),
                 i32(0) + i16(0) + array([string("nope") + string(None) + i16(UNKNOWN_MEMBER_ID)]),
                 "LeaveGroup v3 unknown member (per-member error)")
            soft(bytes_eq, body_bytes(c, API_JOIN_GROUP, 2, join_group_body(2, group, "nope", [("range", sub(["um-t"]))])),
                 join_error_bytes(2, UNKNOWN_MEMBER_ID, "nope"), "JoinGroup v2 with an unknown member id")
            # unknown group
            soft(bytes_eq, body_bytes(c, API_HEARTBEAT, 1, heartbeat_body(1, "um-nogroup", 1, "nope")),
                 i32(0) + i16(UNKNOWN_MEMBER_ID), "Heartbeat to an unknown group")
            soft(bytes_eq, body_bytes(c, API_SYNC_GROUP, 1, sync_group_body(1, "um-nogroup", 1, "nope")),
                 i32(0) + i16(UNKNOWN_MEMBER_ID) + kbytes(b""), "SyncGroup to an unknown group")
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 1, leave_group_body(1, "um-nogroup", "nope")),
                 i32(0) + i16(UNKNOWN_MEMBER_ID), "LeaveGroup v1 to an unknown group")
            soft(bytes_eq, body_bytes(c, API_JOIN_GROUP, 2, join_group_body(2, "um-nogroup", "nope", [("range", b"")])),
                 join_error_bytes(2, UNKNOWN_MEMBER_ID, "nope"), "JoinGroup v2 with a member id to an unknown group")
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(3, "um-nogroup", members=[("nope", None)])),
                 i32(0) + i16(0) + array([string("nope") + string(None) + i16(UNKNOWN_MEMBER_ID)]),
                 "LeaveGroup v3 to an unknown group (Kafka: top-level 0, per-member 25)")
        soft(eq, a.heartbeat(), 0, "the real member is unaffected")
    finally:
        a.close()
    soft.done()


@test("groups")
def grp_illegal_generation(b):
    create_topic(b, "ig-t", 1)
    group = "ig-group"
    a = stable_member(b, group, v=3)
    try:
        for gen in (0, 2, -1, 1000):
            eq(a.heartbeat(gen=gen), ILLEGAL_GENERATION, "Heartbeat with generation %d (current 1)" % gen)
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_SYNC_GROUP, 3, sync_group_body(3, group, 5, a.id, [])),
                     i32(0) + i16(ILLEGAL_GENERATION) + kbytes(b""), "SyncGroup v3 with generation 5")
            bytes_eq(body_bytes(c, API_SYNC_GROUP, 0, sync_group_body(0, group, 0, a.id, [])),
                     i16(ILLEGAL_GENERATION) + kbytes(b""), "SyncGroup v0 with generation 0")
        for v in (2, 5, 7):
            eq(a.commit([("ig-t", [(0, 3, "")])], v=v, gen=7), {("ig-t", 0): ILLEGAL_GENERATION},
               "OffsetCommit v%d with generation 7" % v)
        eq(a.heartbeat(), 0, "heartbeat with the right generation")
    finally:
        a.close()


@test("groups")
def grp_inconsistent_protocol(b):
    group = "ip-group"
    a = stable_member(b, group, protocols=[("range", sub(["ip-t"])), ("roundrobin", sub(["ip-t"]))])
    try:
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_JOIN_GROUP, 2, join_group_body(2, group, "", [("range", sub(["ip-t"]))],
                                                                        protocol_type="connect")),
                     join_error_bytes(2, INCONSISTENT_GROUP_PROTOCOL), "JoinGroup with protocol type connect")
            bytes_eq(body_bytes(c, API_JOIN_GROUP, 2, join_group_body(2, group, "", [("sticky", sub(["ip-t"]))])),
                     join_error_bytes(2, INCONSISTENT_GROUP_PROTOCOL), "JoinGroup with no protocol in common")
            bytes_eq(body_bytes(c, API_JOIN_GROUP, 5, join_group_body(5, group, "", [("sticky", sub(["ip-t"]))])),
                     join_error_bytes(5, INCONSISTENT_GROUP_PROTOCOL),
                     "JoinGroup v5 with no protocol in common (checked before MEMBER_ID_REQUIRED)")
            bytes_eq(body_bytes(c, API_JOIN_GROUP, 1, join_group_body(1, "ip-new", "", [("range", b"")],
                                                                        protocol_type="")),
                     join_error_bytes(1, INCONSISTENT_GROUP_PROTOCOL), "JoinGroup to a new group with protocol type ''")
            bytes_eq(body_bytes(c, API_JOIN_GROUP, 1, join_group_body(1, "ip-new", "", [])),
                     join_error_bytes(1, INCONSISTENT_GROUP_PROTOCOL), "JoinGroup to a new group with no protocols")
            eq(describe_group(c, "ip-new")["state"], "Dead", "refused joins do not create ip-new")
        eq(a.heartbeat(), 0, "the existing member is unaffected")
        # a second member supporting only roundrobin makes roundrobin the common choice
        m2 = Member(b, group, v=2, protocols=[("roundrobin", sub(["ip-t"]))])
        try:
            m2.send_join()
            eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after second join")
            a.send_join()
            oa, ob = a.recv_join(), m2.recv_join()
            eq((oa["error"], ob["error"], oa["protocol"], ob["protocol"]), (0, 0, "roundrobin", "roundrobin"),
               "the protocol every member supports is chosen")
        finally:
            m2.close()
    finally:
        a.close()


@test("groups")
def grp_invalid_group_id(b):
    """An empty group id is INVALID_GROUP_ID (24) for the membership APIs.
    (Kafka accepts '' in OffsetCommit, OffsetFetch, DescribeGroups and
    DeleteGroups for backwards compatibility; not checked here.)"""
    soft = Soft()
    with b.conn() as c:
        for v in (0, 2, 5):
            soft(bytes_eq, body_bytes(c, API_JOIN_GROUP, v, join_group_body(v, "", "", [("range", b"")])),
                 join_error_bytes(v, INVALID_GROUP_ID), "JoinGroup v%d with group id ''" % v)
        for v in (0, 1, 3):
            soft(bytes_eq, body_bytes(c, API_SYNC_GROUP, v, sync_group_body(v, "", 1, "m")),
                 (i32(0) if v >= 1 else b"") + i16(INVALID_GROUP_ID) + kbytes(b""), "SyncGroup v%d with group id ''" % v)
            soft(bytes_eq, body_bytes(c, API_HEARTBEAT, v, heartbeat_body(v, "", 1, "m")),
                 (i32(0) if v >= 1 else b"") + i16(INVALID_GROUP_ID), "Heartbeat v%d with group id ''" % v)
        for v in (0, 1):
            soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, v, leave_group_body(v, "", "m")),
                 (i32(0) if v >= 1 else b"") + i16(INVALID_GROUP_ID), "LeaveGroup v%d with group id ''" % v)
        soft(bytes_eq, body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(3, "", members=[("m", None)])),
             i32(0) + i16(INVALID_GROUP_ID) + array([]), "LeaveGroup v3 with group id ''")
    soft.done()


@test("groups")
def grp_invalid_session_timeout(b):
    with b.conn() as c:
        bytes_eq(body_bytes(c, API_JOIN_GROUP, 2, join_group_body(2, "st-group", "", [("range", b"")], session_ms=5999)),
                 join_error_bytes(2, INVALID_SESSION_TIMEOUT), "JoinGroup v2 session timeout 5999 (min 6000)")
        bytes_eq(body_bytes(c, API_JOIN_GROUP, 0, join_group_body(0, "st-group", "", [("range", b"")], session_ms=10)),
                 join_error_bytes(0, INVALID_SESSION_TIMEOUT), "JoinGroup v0 session timeout 10")
        bytes_eq(body_bytes(c, API_JOIN_GROUP, 5, join_group_body(5, "st-group", "", [("range", b"")],
                                                                    session_ms=1800001)),
                 join_error_bytes(5, INVALID_SESSION_TIMEOUT), "JoinGroup v5 session timeout 1800001 (max 1800000)")
        eq(describe_group(c, "st-group")["state"], "Dead", "refused joins do not create the group")
    m = Member(b, "st-group", v=2, session_ms=6000)
    try:
        eq(m.join()["generation"], 1, "JoinGroup with session timeout 6000 (the minimum)")
    finally:
        m.close()


@test("groups")
def grp_static_membership(b):
    """JoinGroup v5 with group.instance.id: no MEMBER_ID_REQUIRED; a restarted
    instance (same instance id, empty member id) gets a new member id and the
    old member id is fenced (FENCED_INSTANCE_ID) everywhere."""
    create_topic(b, "sta-t", 1)
    group = "static-group"
    a = Member(b, group, v=5, instance_id="inst-a", client_id="static-a", topics=["sta-t"])
    a2 = Member(b, group, v=5, instance_id="inst-a", client_id="static-a2", topics=["sta-t"])
    try:
        a.send_join()
        out = a.recv_join()
        eq(out["error"], 0, "first JoinGroup v5 of a static member (no MEMBER_ID_REQUIRED for static members)")
        eq([(m["member_id"], m["instance_id"]) for m in out["members"]], [(a.id, "inst-a")],
           "leader's member list (member id, group instance id)")
        eq(a.sync([(a.id, b"sa")])["assignment"], b"sa", "SyncGroup v3 with the instance id")
        eq(a.heartbeat(), 0, "Heartbeat v3 with the instance id")
        old, old_gen = a.id, a.gen
        a2.join()
        check(a2.id and a2.id != old, "rejoin with the same instance id got member id %r (old %r)" % (a2.id, old))
        problems = []
        err = a.heartbeat(gen=old_gen)
        if err != FENCED_INSTANCE_ID:
            problems.append("Heartbeat v3 (old member id, inst-a): %d" % err)
        with b.conn() as c:
            err = call(c, API_SYNC_GROUP, 3, sync_group_body(3, group, old_gen, old, [], "inst-a"),
                       decode_sync_group)["error"]
            if err != FENCED_INSTANCE_ID:
                problems.append("SyncGroup v3 (old member id, inst-a): %d" % err)
            err = call(c, API_OFFSET_COMMIT, 7, offset_commit_body(7, group, [("sta-t", [(0, 1, "")])], old_gen, old,
                                                                   "inst-a"), decode_offset_commit)
            err = err["topics"][0]["partitions"][0]["error"]
            if err != FENCED_INSTANCE_ID:
                problems.append("OffsetCommit v7 (old member id, inst-a): %d" % err)
            err = call(c, API_JOIN_GROUP, 5, join_group_body(5, group, old, a.protocols, instance_id="inst-a"),
                       decode_join_group)["error"]
            if err != FENCED_INSTANCE_ID:
                problems.append("JoinGroup v5 (old member id, inst-a): %d" % err)
            out = call(c, API_LEAVE_GROUP, 3, leave_group_body(3, group, members=[(old, "inst-a")]), decode_leave_group)
            if (out["error"], [m["error"] for m in out["members"]]) != (0, [FENCED_INSTANCE_ID]):
                problems.append("LeaveGroup v3 (old member id, inst-a): top %d, members %r" % (
                    out["error"], [m["error"] for m in out["members"]]))
        check(not problems, "the old member id of a replaced static member must get FENCED_INSTANCE_ID (82): " +
              "; ".join(problems))
        # the new identity works
        if a2.last["members"]:
            s = a2.sync([(a2.id, b"sa2")])
        else:
            s = a2.sync()
        eq(s["error"], 0, "SyncGroup of the new static member id")
        eq(a2.heartbeat(), 0, "Heartbeat of the new static member id")
        # KIP-345 admin removal: LeaveGroup v3 by instance id with an empty member id
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(3, group, members=[("", "inst-a")])),
                     i32(0) + i16(0) + array([string("") + string("inst-a") + i16(0)]),
                     "LeaveGroup v3 by group instance id")
            g = describe_group(c, group)
            eq((g["state"], g["members"]), ("Empty", []), "group after removing the static member")
    finally:
        a.close()
        a2.close()


@test("groups")
def grp_leave_group_batch_v3(b):
    group = "lg-group"
    a, m2 = two_member_stable(b, group, b_kw={"v": 3})
    try:
        with b.conn() as c:
            payload = body_bytes(c, API_LEAVE_GROUP, 3, leave_group_body(
                3, group, members=[(a.id, None), (m2.id, None), ("ghost", None)]))
            bytes_eq(payload, i32(0) + i16(0) + array([string(a.id) + string(None) + i16(0),
                                                       string(m2.id) + string(None) + i16(0),
                                                       string("ghost") + string(None) + i16(UNKNOWN_MEMBER_ID)]),
                     "LeaveGroup v3 of both members and a ghost")
            g = describe_group(c, group)
            eq((g["state"], g["members"]), ("Empty", []), "group after the batch leave")
        eq((a.heartbeat(), m2.heartbeat()), (UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID), "heartbeats after leaving")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_leave_group_v0_rebalances(b):
    """A LeaveGroup v0 by the follower starts a rebalance the leader learns
    about from Heartbeat."""
    group = "lg0-group"
    a, m2 = two_member_stable(b, group, b_kw={"v": 0})
    try:
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_LEAVE_GROUP, 0, leave_group_body(0, group, m2.id)), i16(0),
                     "LeaveGroup v0 of the follower")
        eq(a.heartbeat(), REBALANCE_IN_PROGRESS, "leader's Heartbeat after the follower left")
        out = a.join()
        eq((out["generation"], [m["member_id"] for m in out["members"]]), (3, [a.id]), "leader rejoins alone")
        eq(a.sync([(a.id, b"x")])["assignment"], b"x", "SyncGroup after the leave")
        eq(a.heartbeat(), 0, "Heartbeat in generation 3")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_offset_commit_fetch(b):
    create_topic(b, "oc-t", 3)
    create_topic(b, "oc-other", 1)
    group = "oc-group"
    a = stable_member(b, group, topics=["oc-t"])
    try:
        with b.conn() as c:
            payload = body_bytes(c, API_OFFSET_COMMIT, 2, offset_commit_body(
                2, group, [("oc-t", [(0, 10, "m0"), (1, 11, None)])], a.gen, a.id))
            bytes_eq(payload, array([string("oc-t") + array([i32(0) + i16(0), i32(1) + i16(0)])]),
                     "OffsetCommit v2 response")
            payload = body_bytes(c, API_OFFSET_COMMIT, 7, offset_commit_body(
                7, group, [("oc-t", [(2, 42, "m2", 5)])], a.gen, a.id))
            bytes_eq(payload, i32(0) + array([string("oc-t") + array([i32(2) + i16(0)])]), "OffsetCommit v7 response")
            req = [("oc-t", [0, 1, 2]), ("oc-other", [0])]
            payload = body_bytes(c, API_OFFSET_FETCH, 1, offset_fetch_body(1, group, req))
            bytes_eq(payload, array([
                string("oc-t") + array([i32(0) + i64(10) + string("m0") + i16(0),
                                        i32(1) + i64(11) + string("") + i16(0),
                                        i32(2) + i64(42) + string("m2") + i16(0)]),
                string("oc-other") + array([i32(0) + i64(-1) + string("") + i16(0)])]),
                "OffsetFetch v1 (committed offsets and metadata; -1 without a commit)")
            payload = body_bytes(c, API_OFFSET_FETCH, 5, offset_fetch_body(5, group, req))
            bytes_eq(payload, i32(0) + array([
                string("oc-t") + array([i32(0) + i64(10) + i32(-1) + string("m0") + i16(0),
                                        i32(1) + i64(11) + i32(-1) + string("") + i16(0),
                                        i32(2) + i64(42) + i32(5) + string("m2") + i16(0)]),
                string("oc-other") + array([i32(0) + i64(-1) + i32(-1) + string("") + i16(0)])]) + i16(0),
                "OffsetFetch v5 (with leader epochs)")
            # null topics (v2+): everything the group committed
            for v in (2, 3, 4, 5):
                got = fetch_offsets(c, group, None, v=v)
                eq(got, {("oc-t", 0): (10, "m0", 0), ("oc-t", 1): (11, "", 0), ("oc-t", 2): (42, "m2", 0)},
                   "OffsetFetch v%d with null topics" % v)
            # unknown group: -1, no error
            payload = body_bytes(c, API_OFFSET_FETCH, 3, offset_fetch_body(3, "oc-nogroup", [("oc-t", [0])]))
            bytes_eq(payload, i32(0) + array([string("oc-t") + array([i32(0) + i64(-1) + string("") + i16(0)])]) +
                     i16(0), "OffsetFetch v3 of an unknown group")
            bytes_eq(body_bytes(c, API_OFFSET_FETCH, 2, offset_fetch_body(2, "oc-nogroup", None)), array([]) + i16(0),
                     "OffsetFetch v2 null topics of an unknown group")
            # every OffsetCommit version from the member (v1-v7), read back
            for v in range(1, 8):
                got = commit_offsets(c, group, [("oc-t", [(0, 100 + v, "v%d" % v, 3)])], v=v, generation=a.gen,
                                     member_id=a.id)
                eq(got, {("oc-t", 0): 0}, "OffsetCommit v%d" % v)
                eq(fetch_offsets(c, group, [("oc-t", [0])])[("oc-t", 0)], (100 + v, "v%d" % v, 0),
                   "offset after OffsetCommit v%d" % v)
            out = call(c, API_OFFSET_FETCH, 5, offset_fetch_body(5, group, [("oc-t", [0])]), decode_offset_fetch)
            eq(out["topics"][0]["partitions"][0]["leader_epoch"], 3, "leader epoch committed with v7")
    finally:
        a.close()


@test("groups")
def grp_commit_without_membership(b):
    """generation -1 with member '' (assign()-style) is accepted while the
    group has no members and refused with UNKNOWN_MEMBER_ID while it has."""
    create_topic(b, "as-t", 2)
    group = "as-group"
    with b.conn() as c:
        bytes_eq(body_bytes(c, API_OFFSET_COMMIT, 2, offset_commit_body(2, group, [("as-t", [(0, 5, "x")])])),
                 array([string("as-t") + array([i32(0) + i16(0)])]), "assign-style OffsetCommit v2 to a new group")
        eq(commit_offsets(c, group, [("as-t", [(1, 6, "")])], v=7), {("as-t", 1): 0}, "assign-style OffsetCommit v7")
        eq(commit_offsets(c, group, [("as-t", [(1, 7, "")])], v=5), {("as-t", 1): 0}, "assign-style OffsetCommit v5")
        eq(fetch_offsets(c, group, [("as-t", [0, 1])]), {("as-t", 0): (5, "x", 0), ("as-t", 1): (7, "", 0)},
           "offsets after assign-style commits")
        g = describe_group(c, group)
        eq((g["state"], g["members"]), ("Empty", []), "group created by commits")
    a = stable_member(b, group, topics=["as-t"])
    try:
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_OFFSET_COMMIT, 2, offset_commit_body(2, group, [("as-t", [(0, 8, "")])])),
                     array([string("as-t") + array([i32(0) + i16(UNKNOWN_MEMBER_ID)])]),
                     "assign-style OffsetCommit while the group has a member")
            eq(fetch_offsets(c, group, [("as-t", [0])])[("as-t", 0)][0], 5, "refused commit did not change the offset")
            eq(a.commit([("as-t", [(0, 9, "")])]), {("as-t", 0): 0}, "member's own commit")
            a.leave()
            eq(commit_offsets(c, group, [("as-t", [(0, 10, "")])]), {("as-t", 0): 0},
               "assign-style commit after the last member left (group Empty, generation > 0)")
            eq(fetch_offsets(c, group, [("as-t", [0])])[("as-t", 0)][0], 10, "offset after the member left")
    finally:
        a.close()


@test("groups")
def grp_commit_errors(b):
    create_topic(b, "ce-t", 1)
    group = "ce-group"
    with b.conn() as c:
        payload = body_bytes(c, API_OFFSET_COMMIT, 2, offset_commit_body(
            2, group, [("ce-missing", [(0, 1, "")]), ("ce-t", [(5, 1, ""), (0, 1, "x" * 4096)])]))
        bytes_eq(payload, array([string("ce-missing") + array([i32(0) + i16(UNKNOWN_TOPIC_OR_PARTITION)]),
                                 string("ce-t") + array([i32(5) + i16(UNKNOWN_TOPIC_OR_PARTITION), i32(0) + i16(0)])]),
                 "OffsetCommit to an unknown topic, an unknown partition, and 4096 bytes of metadata")
        check(not topic_exists(c, "ce-missing"), "OffsetCommit created the unknown topic")
        payload = body_bytes(c, API_OFFSET_COMMIT, 2, offset_commit_body(2, group, [("ce-t", [(0, 2, "y" * 4097)])]))
        bytes_eq(payload, array([string("ce-t") + array([i32(0) + i16(OFFSET_METADATA_TOO_LARGE)])]),
                 "OffsetCommit with 4097 bytes of metadata (offset.metadata.max.bytes 4096)")
        eq(fetch_offsets(c, group, [("ce-t", [0])])[("ce-t", 0)], (1, "x" * 4096, 0),
           "the refused commit left the 4096-byte one in place")


def restart_check_offsets(b, sig):
    create_topic(b, "rs-t-%d" % sig, 2)
    t = "rs-t-%d" % sig
    g_member, g_assign = "rs-member-%d" % sig, "rs-assign-%d" % sig
    a = stable_member(b, g_member, topics=[t])
    try:
        eq(a.commit([(t, [(0, 7, "meta-a"), (1, 8, "")])], v=7), {(t, 0): 0, (t, 1): 0}, "member commit")
        eq(a.commit([(t, [(0, 17, "meta-a2")])], v=2), {(t, 0): 0}, "member commit overwrite")
    finally:
        a.close()
    with b.conn() as c:
        eq(commit_offsets(c, g_assign, [(t, [(1, 9, "meta-b")])]), {(t, 1): 0}, "assign-style commit")
    b.restart(sig)
    with b.conn() as c:
        eq(fetch_offsets(c, g_member, [(t, [0, 1])]), {(t, 0): (17, "meta-a2", 0), (t, 1): (8, "", 0)},
           "member-committed offsets after restart (signal %d)" % sig)
        eq(fetch_offsets(c, g_assign, [(t, [0, 1])]), {(t, 0): (-1, "", 0), (t, 1): (9, "meta-b", 0)},
           "assign-style offsets after restart (signal %d)" % sig)
        eq(fetch_offsets(c, g_assign, None, v=2), {(t, 1): (9, "meta-b", 0)},
           "OffsetFetch v2 null topics after restart (signal %d)" % sig)
        names = {x["group_id"] for x in call(c, API_LIST_GROUPS, 2, b"", decode_list_groups)["groups"]}
        check({g_member, g_assign} <= names, "ListGroups after restart lacks %r" % ({g_member, g_assign} - names))
        # the coordinator keeps working after the restart
        eq(commit_offsets(c, g_assign, [(t, [(1, 10, "")])]), {(t, 1): 0}, "commit after restart")
        eq(fetch_offsets(c, g_assign, [(t, [1])])[(t, 1)][0], 10, "offset after the post-restart commit")


@test("groups")
def grp_commits_survive_clean_restart(b):
    restart_check_offsets(b, signal.SIGTERM)


@test("groups")
def grp_commits_survive_kill9(b):
    restart_check_offsets(b, signal.SIGKILL)


@test("groups")
def grp_describe_groups(b):
    create_topic(b, "dg-t", 2)
    group = "dg-group"
    meta_a, meta_b = sub(["dg-t"]), sub(["dg-t"], b"b-data")
    asg_a, asg_b = consumer_assignment([("dg-t", [0])]), consumer_assignment([("dg-t", [1])])
    a, m2 = two_member_stable(b, group, a_kw={"client_id": "dg-client-a", "topics": ["dg-t"]},
                              b_kw={"v": 3, "client_id": "dg-client-b", "protocols": [("range", meta_b)]},
                              assignments=lambda x, y: [(x.id, asg_a), (y.id, asg_b)])
    try:
        expected = {a.id: ("dg-client-a", meta_a, asg_a), m2.id: ("dg-client-b", meta_b, asg_b)}
        hosts = set()
        with b.conn() as c:
            for v in range(5):
                out = call(c, API_DESCRIBE_GROUPS, v, describe_groups_body(v, [group, "dg-unknown"]),
                           decode_describe_groups)
                if v >= 1:
                    eq(out["throttle"], 0, "DescribeGroups v%d throttle" % v)
                eq(len(out["groups"]), 2, "DescribeGroups v%d group count" % v)
                g, u = out["groups"]
                eq((g["error"], g["group_id"], g["state"], g["protocol_type"], g["protocol"]),
                   (0, group, "Stable", "consumer", "range"), "DescribeGroups v%d of a Stable group" % v)
                got = {m["member_id"]: (m["client_id"], m["metadata"], m["assignment"]) for m in g["members"]}
                eq(got, expected, "DescribeGroups v%d members (client id, metadata, assignment)" % v)
                for m in g["members"]:
                    hosts.add(m["client_host"])
                    if v >= 4:
                        eq(m["instance_id"], None, "DescribeGroups v4 group instance id")
                if v >= 3:
                    eq((g["authorized_operations"], u["authorized_operations"]), (INT32_MIN, INT32_MIN),
                       "authorized operations when not asked for")
                eq((u["error"], u["group_id"], u["state"], u["protocol_type"], u["protocol"], u["members"]),
                   (0, "dg-unknown", "Dead", "", "", []), "DescribeGroups v%d of an unknown group" % v)
                bytes_eq(body_bytes(c, API_DESCRIBE_GROUPS, v, describe_groups_body(v, ["dg-unknown"])),
                         (i32(0) if v >= 1 else b"") + array([i16(0) + string("dg-unknown") + string("Dead") +
                                                              string("") + string("") + array([]) +
                                                              (i32(INT32_MIN) if v >= 3 else b"")]),
                         "DescribeGroups v%d of an unknown group (bytes)" % v)
        eq(hosts, {"/127.0.0.1"}, "client_host values (Kafka: InetAddress.toString(), no port)")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_list_groups(b):
    create_topic(b, "lsg-t", 1)
    a = stable_member(b, "lsg-consumer", topics=["lsg-t"])
    try:
        with b.conn() as c:
            eq(commit_offsets(c, "lsg-assign", [("lsg-t", [(0, 1, "")])]), {("lsg-t", 0): 0}, "assign-style commit")
            for v in range(3):
                payload = body_bytes(c, API_LIST_GROUPS, v, b"")
                out = decode_list_groups(Reader(payload), v)
                eq(out["error"], 0, "ListGroups v%d error" % v)
                if v >= 1:
                    eq(out["throttle"], 0, "ListGroups v%d throttle" % v)
                ids = [x["group_id"] for x in out["groups"]]
                eq(len(ids), len(set(ids)), "ListGroups v%d lists a group twice" % v)
                types = {x["group_id"]: x["protocol_type"] for x in out["groups"]}
                eq((types.get("lsg-consumer"), types.get("lsg-assign")), ("consumer", ""),
                   "ListGroups v%d protocol types (consumer group, offsets-only group)" % v)
    finally:
        a.close()


@test("groups")
def grp_delete_groups(b):
    create_topic(b, "dgr-t", 1)
    busy = stable_member(b, "dgr-busy", topics=["dgr-t"])
    try:
        with b.conn() as c:
            eq(commit_offsets(c, "dgr-empty", [("dgr-t", [(0, 5, "")])]), {("dgr-t", 0): 0}, "assign-style commit")
            bytes_eq(body_bytes(c, API_DELETE_GROUPS, 0, delete_groups_body(0, ["dgr-busy", "dgr-missing"])),
                     i32(0) + array([string("dgr-busy") + i16(NON_EMPTY_GROUP),
                                     string("dgr-missing") + i16(GROUP_ID_NOT_FOUND)]),
                     "DeleteGroups v0 of a group with a member and of an unknown group")
            bytes_eq(body_bytes(c, API_DELETE_GROUPS, 1, delete_groups_body(1, ["dgr-empty"])),
                     i32(0) + array([string("dgr-empty") + i16(0)]), "DeleteGroups v1 of an Empty group")
            eq(fetch_offsets(c, "dgr-empty", [("dgr-t", [0])]), {("dgr-t", 0): (-1, "", 0)},
               "OffsetFetch after DeleteGroups")
            eq(describe_group(c, "dgr-empty")["state"], "Dead", "state after DeleteGroups")
            eq(call(c, API_DELETE_GROUPS, 1, delete_groups_body(1, ["dgr-empty"]), decode_delete_groups)["results"],
               [{"group_id": "dgr-empty", "error": GROUP_ID_NOT_FOUND}], "second DeleteGroups")
            eq(fetch_offsets(c, "dgr-busy", [("dgr-t", [0])]), {("dgr-t", 0): (-1, "", 0)}, "busy group untouched")
            eq(busy.commit([("dgr-t", [(0, 3, "")])]), {("dgr-t", 0): 0}, "busy member still commits")
            busy.leave()
            eq(call(c, API_DELETE_GROUPS, 1, delete_groups_body(1, ["dgr-busy"]), decode_delete_groups)["results"],
               [{"group_id": "dgr-busy", "error": 0}], "DeleteGroups after the last member left")
            eq(fetch_offsets(c, "dgr-busy", [("dgr-t", [0])]), {("dgr-t", 0): (-1, "", 0)},
               "offsets of the deleted group")
        # a deleted group can be used again and starts over
        again = stable_member(b, "dgr-busy", topics=["dgr-t"])
        again.close()
        eq(again.gen, 1, "generation of a re-created group")
        # a deleted group stays deleted across a restart
        b.restart(signal.SIGTERM)
        with b.conn() as c:
            eq(fetch_offsets(c, "dgr-empty", [("dgr-t", [0])]), {("dgr-t", 0): (-1, "", 0)},
               "deleted group's offsets after restart")
            names = {x["group_id"] for x in call(c, API_LIST_GROUPS, 2, b"", decode_list_groups)["groups"]}
            check("dgr-empty" not in names, "deleted group dgr-empty listed after restart")
    finally:
        busy.close()


@test("groups")
def grp_offset_delete(b):
    create_topic(b, "od-sub", 2)
    create_topic(b, "od-free", 1)
    group = "od-group"
    a = stable_member(b, group, topics=["od-sub"])
    try:
        eq(a.commit([("od-sub", [(0, 3, ""), (1, 4, "")]), ("od-free", [(0, 5, "")])]),
           {("od-sub", 0): 0, ("od-sub", 1): 0, ("od-free", 0): 0}, "commits")
        with b.conn() as c:
            bytes_eq(body_bytes(c, API_OFFSET_DELETE, 0, offset_delete_body(0, group, [("od-free", [0])])),
                     i16(0) + i32(0) + array([string("od-free") + array([i32(0) + i16(0)])]),
                     "OffsetDelete of a topic no member subscribes to")
            eq(fetch_offsets(c, group, [("od-free", [0])]), {("od-free", 0): (-1, "", 0)}, "offset after OffsetDelete")
            bytes_eq(body_bytes(c, API_OFFSET_DELETE, 0, offset_delete_body(0, group, [("od-sub", [0, 1])])),
                     i16(0) + i32(0) + array([string("od-sub") + array([i32(0) + i16(GROUP_SUBSCRIBED_TO_TOPIC),
                                                                       i32(1) + i16(GROUP_SUBSCRIBED_TO_TOPIC)])]),
                     "OffsetDelete of a topic the active member subscribes to")
            eq(fetch_offsets(c, group, [("od-sub", [0, 1])]), {("od-sub", 0): (3, "", 0), ("od-sub", 1): (4, "", 0)},
               "subscribed offsets kept")
            bytes_eq(body_bytes(c, API_OFFSET_DELETE, 0, offset_delete_body(0, "od-nogroup", [("od-sub", [0])])),
                     i16(GROUP_ID_NOT_FOUND) + i32(0) + array([]), "OffsetDelete of an unknown group")
            a.leave()
            bytes_eq(body_bytes(c, API_OFFSET_DELETE, 0, offset_delete_body(0, group, [("od-sub", [0])])),
                     i16(0) + i32(0) + array([string("od-sub") + array([i32(0) + i16(0)])]),
                     "OffsetDelete after the member left")
            eq(fetch_offsets(c, group, [("od-sub", [0, 1])]), {("od-sub", 0): (-1, "", 0), ("od-sub", 1): (4, "", 0)},
               "only partition 0 was deleted")
    finally:
        a.close()


@test("groups")
def grp_malformed_requests(b):
    h = request_header
    join_ok = join_group_body(2, "mf-group", "", [("range", sub(["mf-t"]))])
    cases = [
        (frame(h(API_JOIN_GROUP, 2, 31) + join_ok[:-3]), "JoinGroup v2 truncated in the protocol metadata"),
        (frame(h(API_JOIN_GROUP, 2, 31) + join_ok[:9]), "JoinGroup v2 truncated after the session timeout"),
        (frame(h(API_JOIN_GROUP, 2, 31) + string("mf-group") + i32(30000) + i32(10000) + string("") +
               string("consumer") + i32(-2)), "JoinGroup v2 protocols count -2"),
        (frame(h(API_JOIN_GROUP, 2, 31) + string("mf-group") + i32(30000) + i32(10000) + string("") +
               string("consumer") + i32(0x7FFFFFFF)), "JoinGroup v2 protocols count INT32_MAX"),
        (frame(h(API_JOIN_GROUP, 5, 31) + string("mf-group") + i32(30000) + i32(10000) + string("") + string(None) +
               string("consumer") + i32(1) + string("range") + i32(5000) + b"abc"),
         "JoinGroup v5 metadata length past the end"),
        (frame(h(API_JOIN_GROUP, 1, 31) + string("mf-group") + i32(30000) + i32(10000) + string("") +
               string("consumer") + i32(1) + string("range") + i32(-7)), "JoinGroup v1 metadata length -7"),
        (frame(h(API_SYNC_GROUP, 1, 32) + string("mf-group") + i32(1) + string("m") + i32(-5)),
         "SyncGroup v1 assignments count -5"),
        (frame(h(API_SYNC_GROUP, 3, 32) + string("mf-group") + i32(1) + string("m")), "SyncGroup v3 truncated"),
        (frame(h(API_HEARTBEAT, 1, 33) + string("mf-group") + i32(1) + i16(40) + b"m"),
         "Heartbeat v1 member id past the end"),
        (frame(h(API_HEARTBEAT, 3, 33) + string("mf-group") + i32(1) + string("m")), "Heartbeat v3 truncated"),
        (frame(h(API_LEAVE_GROUP, 3, 34) + string("mf-group") + i32(-2)), "LeaveGroup v3 members count -2"),
        (frame(h(API_LEAVE_GROUP, 0, 34) + string("mf-group")), "LeaveGroup v0 without a member id"),
        (frame(h(API_OFFSET_COMMIT, 2, 35) + string("mf-group") + i32(-1) + string("") + i64(-1) + i32(-3)),
         "OffsetCommit v2 topics count -3"),
        (frame(h(API_OFFSET_COMMIT, 7, 35) + string("mf-group") + i32(-1) + string("") + string(None) + i32(1) +
               string("mf-t") + i32(0x7FFFFFFF)), "OffsetCommit v7 partitions count INT32_MAX"),
        (frame(h(API_OFFSET_COMMIT, 2, 35) + string("mf-group") + i32(-1) + string("") + i64(-1) + i32(1) +
               string("mf-t") + i32(1) + i32(0) + i64(5)), "OffsetCommit v2 truncated before the metadata"),
        (frame(h(API_OFFSET_FETCH, 1, 36) + string("mf-group") + i32(-1)), "OffsetFetch v1 null topics (not nullable)"),
        (frame(h(API_OFFSET_FETCH, 5, 36) + string("mf-group") + i32(1) + string("mf-t") + i32(-2)),
         "OffsetFetch v5 partitions count -2"),
        (frame(h(API_DESCRIBE_GROUPS, 4, 37) + i32(-2) + boolean(False)), "DescribeGroups v4 groups count -2"),
        (frame(h(API_DESCRIBE_GROUPS, 3, 37) + array(["mf-group"], string)),
         "DescribeGroups v3 without include_authorized_operations"),
        (frame(h(API_DELETE_GROUPS, 1, 38) + i32(-7)), "DeleteGroups v1 groups count -7"),
        (frame(h(API_DELETE_GROUPS, 0, 38) + i32(1) + i16(-4)), "DeleteGroups v0 group name length -4"),
        (frame(h(API_OFFSET_DELETE, 0, 39) + string("mf-group") + i32(1) + string("mf-t") + i32(-2)),
         "OffsetDelete partitions count -2"),
        (frame(h(API_FIND_COORDINATOR, 1, 40) + string("mf-group")), "FindCoordinator v1 without the key type"),
        (frame(h(API_FIND_COORDINATOR, 0, 40) + i16(30) + b"mf"), "FindCoordinator v0 key past the end"),
    ]
    for data, what in cases:
        send_and_expect_close(b, data, what)
    err = api_versions_ok(b)
    check(err is None, "after malformed group requests: %s" % err)
    with b.conn() as c:
        eq(describe_group(c, "mf-group")["state"], "Dead", "malformed requests created mf-group")
    m = Member(b, "mf-group", v=2)
    try:
        eq(m.join()["generation"], 1, "a good JoinGroup after the malformed ones")
    finally:
        m.close()

@test("groups")
def grp_rebalance_timeout_removes_laggard(b):
    """A member that does not rejoin within the rebalance timeout is removed
    and the rebalance completes without it."""
    group = "rt-group"
    a = stable_member(b, group, rebalance_ms=1500)
    m2 = Member(b, group, v=3, rebalance_ms=1500)
    try:
        t0 = time.monotonic()
        m2.send_join()
        out = m2.recv_join(timeout=8)
        dt = time.monotonic() - t0
        eq(out["error"], 0, "JoinGroup of the second member")
        eq((out["generation"], out["leader"], [m["member_id"] for m in out["members"]]), (2, m2.id, [m2.id]),
           "generation 2 without the member that did not rejoin")
        check(1.2 <= dt <= 4.5, "rebalance completed %.2fs after it began (rebalance timeout 1.5 s)" % dt)
        eq(a.heartbeat(), UNKNOWN_MEMBER_ID, "Heartbeat of the removed member")
        eq(m2.sync([(m2.id, b"x")])["assignment"], b"x", "SyncGroup of the remaining member")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_parked_requests_client_gone(b):
    """A JoinGroup or SyncGroup parked on a connection that then closes is
    completed without harm to the others."""
    a = stable_member(b, "cg-join")
    try:
        ghost = Member(b, "cg-join", v=3)
        ghost.send_join()
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after the ghost's join")
        ghost.close()
        time.sleep(0.1)
        out = a.join()
        eq(out["generation"], 2, "leader's rejoin while a parked JoinGroup's connection is closed")
        s = a.sync([(m["member_id"], b"x") for m in out["members"]])
        eq((s["error"], s["assignment"]), (0, b"x"), "leader's SyncGroup")
    finally:
        a.close()
    a = stable_member(b, "cg-sync")
    d = Member(b, "cg-sync", v=3)
    try:
        d.send_join()
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after the second join")
        a.send_join()
        a.recv_join()
        eq(d.recv_join()["error"], 0, "second member's JoinGroup")
        d.send_sync()
        time.sleep(0.1)
        d.close()
        time.sleep(0.1)
        s = a.sync([(a.id, b"a"), (d.id, b"d")])
        eq((s["error"], s["assignment"]), (0, b"a"), "leader's SyncGroup after the follower's connection closed")
        eq(a.heartbeat(), 0, "leader's Heartbeat")
    finally:
        a.close()
        d.close()


@test("groups")
def grp_pipelined_behind_parked_join(b):
    """Requests pipelined behind a parked JoinGroup are answered after it,
    in order."""
    a = stable_member(b, "pj-group")
    m2 = Member(b, "pj-group", v=3)
    try:
        jc = m2.c.next_corr()
        m2.c.send(request(API_JOIN_GROUP, 3, jc, m2.join_body()) + request(API_API_VERSIONS, 0, jc + 1, b"") +
                  request(API_METADATA, 1, jc + 2, metadata_body(1, [])))
        m2.c.corr = jc + 2
        check(no_response_within(m2.c, 0.4), "a response overtook the parked JoinGroup")
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after the second join")
        a.send_join()
        eq(a.recv_join()["error"], 0, "leader's rejoin")
        ids = [struct.unpack(">i", m2.c.recv_frame(timeout=5)[:4])[0] for _ in range(3)]
        eq(ids, [jc, jc + 1, jc + 2], "correlation ids behind the parked JoinGroup")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_leader_leaves_during_sync(b):
    """If the leader leaves before its SyncGroup, a follower waiting in
    SyncGroup gets REBALANCE_IN_PROGRESS and the group rebalances without
    the leader."""
    group = "ll-group"
    a = stable_member(b, group)
    m2 = Member(b, group, v=3)
    try:
        m2.send_join()
        eq(wait_heartbeat_error(a, REBALANCE_IN_PROGRESS), REBALANCE_IN_PROGRESS, "heartbeat after the second join")
        a.send_join()
        a.recv_join()
        eq(m2.recv_join()["error"], 0, "follower's JoinGroup")
        m2.send_sync()
        check(no_response_within(m2.c, 0.3), "follower's SyncGroup answered before the leader's")
        with b.conn() as c:
            eq(call(c, API_LEAVE_GROUP, 1, leave_group_body(1, group, a.id), decode_leave_group)["error"], 0,
               "leader's LeaveGroup")
        t0 = time.monotonic()
        s = m2.recv_sync(timeout=5)
        check(time.monotonic() - t0 < 1.0, "follower's SyncGroup answered %.2fs after the leader left" % (
            time.monotonic() - t0))
        eq(s["error"], REBALANCE_IN_PROGRESS, "follower's parked SyncGroup after the leader left")
        out = m2.join()
        eq((out["generation"], out["leader"], [m["member_id"] for m in out["members"]]), (3, m2.id, [m2.id]),
           "follower rejoins as the new leader")
        eq(m2.sync([(m2.id, b"y")])["assignment"], b"y", "new leader's SyncGroup")
    finally:
        a.close()
        m2.close()


@test("groups")
def grp_session_and_pending_member_expiry(b):
    """A member that stops heartbeating is removed after its 6000 ms session
    timeout and the group becomes Empty; heartbeats keep it alive.  A member
    id handed out with MEMBER_ID_REQUIRED that is not used within the
    session timeout expires as well (Kafka's pending members)."""
    group = "se-group"
    with b.conn() as c:
        out = call(c, API_JOIN_GROUP, 4, join_group_body(4, "se-pending", "", [("range", sub(["x"]))], 6000),
                   decode_join_group)
        eq(out["error"], MEMBER_ID_REQUIRED, "JoinGroup v4 with an empty member id")
        pending = out["member_id"]
    m = stable_member(b, group, v=3, session_ms=6000, rebalance_ms=6000)
    try:
        for _ in range(2):
            time.sleep(3.5)
            eq(m.heartbeat(), 0, "heartbeat within the session timeout")
        # 7 s since the JoinGroup: only the heartbeats kept the member alive
        t0 = time.monotonic()
        state, members = None, None
        with b.conn() as c:
            while time.monotonic() - t0 < 12:
                g = describe_group(c, group)
                state, members = g["state"], g["members"]
                if state == "Empty":
                    break
                time.sleep(0.25)
        dt = time.monotonic() - t0
        eq((state, members), ("Empty", []), "group after the session timeout")
        check(5.5 <= dt <= 9.0, "member removed %.2fs after its last heartbeat (session timeout 6 s)" % dt)
        eq(m.heartbeat(), UNKNOWN_MEMBER_ID, "Heartbeat of the expired member")
    finally:
        m.close()
    # 13+ s after MEMBER_ID_REQUIRED with a 6 s session timeout
    with b.conn() as c:
        out = call(c, API_JOIN_GROUP, 4, join_group_body(4, "se-pending", pending, [("range", sub(["x"]))], 6000),
                   decode_join_group)
        eq(out["error"], UNKNOWN_MEMBER_ID,
           "JoinGroup v4 with a MEMBER_ID_REQUIRED id unused for 13 s (session timeout 6 s; Kafka expires "
           "pending members)")


@test("groups")
def grp_generation_after_restart(b):
    """After a restart (clean or kill -9) a Stable group comes back as it
    was, as Kafka restores it: its member keeps heartbeating in the same
    generation, gets its assignment from SyncGroup and can commit."""
    create_topic(b, "gr-t", 1)
    for k, sig in enumerate((signal.SIGTERM, signal.SIGKILL)):
        group = "gr-group-%d" % k
        a = stable_member(b, group, topics=["gr-t"])
        a.close()
        eq(a.gen, 1, "generation before restart")
        b.restart(sig)
        a.c = b.conn(timeout=15)
        try:
            eq(a.heartbeat(), 0, "Heartbeat of the restored member after restart (signal %d)" % sig)
            eq(a.sync([])["error"], 0, "SyncGroup of the restored member")
            eq(a.commit([("gr-t", [(0, 4, "")])]), {("gr-t", 0): 0}, "commit after restart")
        finally:
            a.close()


@test("groups")
def grp_empty_arrays(b):
    with b.conn() as c:
        cases = [
            (API_OFFSET_COMMIT, 2, offset_commit_body(2, "ea-g", []), array([])),
            (API_OFFSET_COMMIT, 7, offset_commit_body(7, "ea-g", []), i32(0) + array([])),
            (API_OFFSET_FETCH, 1, offset_fetch_body(1, "ea-g", []), array([])),
            (API_OFFSET_FETCH, 5, offset_fetch_body(5, "ea-g", []), i32(0) + array([]) + i16(0)),
            (API_DESCRIBE_GROUPS, 1, describe_groups_body(1, []), i32(0) + array([])),
            (API_DELETE_GROUPS, 1, delete_groups_body(1, []), i32(0) + array([])),
            (API_DELETE_RECORDS, 1, delete_records_body(1, []), i32(0) + array([])),
            (API_ALTER_CONFIGS, 1, alter_configs_body(1, []), i32(0) + array([])),
            (API_INCREMENTAL_ALTER_CONFIGS, 0, incremental_alter_configs_body(0, []), i32(0) + array([])),
        ]
        for api, v, body, expected in cases:
            bytes_eq(body_bytes(c, api, v, body), expected, "api %d v%d with an empty array" % (api, v))

@test()
def grp_initial_rebalance_delay(b):
    """With the default group.initial.rebalance.delay.ms (3000), the first
    rebalance of an empty group waits 3 s for more members, and a member
    joining within the delay lands in the same (first) generation."""
    group = "idl-group"
    a = Member(b, group, v=3, rebalance_ms=20000)
    m2 = Member(b, group, v=3, rebalance_ms=20000)
    try:
        t0 = time.monotonic()
        a.send_join()
        time.sleep(0.5)
        check(no_response_within(a.c, 0.1), "first JoinGroup answered within 0.6 s (initial delay 3 s)")
        m2.send_join()
        oa, ob = a.recv_join(timeout=10), m2.recv_join(timeout=10)
        dt = time.monotonic() - t0
        eq((oa["error"], ob["error"]), (0, 0), "JoinGroup errors")
        eq((oa["generation"], ob["generation"]), (1, 1), "both members join generation 1")
        leader = oa if oa["members"] else ob
        eq(sorted(m["member_id"] for m in leader["members"]), sorted([a.id, m2.id]), "leader's member list")
        check(2.8 <= dt <= 6.0, "first rebalance completed after %.2fs (delay 3 s, extended once)" % dt)
    finally:
        a.close()
        m2.close()


# ================================================================ AlterConfigs, IncrementalAlterConfigs, DeleteRecords


def describe_topic_configs(c, topic, names):
    """{name: (value, source)} from DescribeConfigs v1."""
    out = call(c, API_DESCRIBE_CONFIGS, 1, describe_configs_body(1, [(RESOURCE_TOPIC, topic, list(names))]),
               decode_describe_configs)
    res = out["results"][0]
    eq(res["error"], 0, "DescribeConfigs error for %s" % topic)
    return {cf["name"]: (cf["value"], cf["source"]) for cf in res["configs"]}


SRC_TOPIC, SRC_DEFAULT = 1, 5


@test()
def alter_configs_topic(b):
    create_topic(b, "ac-x", 1, [("retention.ms", "3600000")])
    names = ["retention.ms", "cleanup.policy", "segment.bytes"]
    with b.conn() as c:
        for v in (0, 1):
            payload = body_bytes(c, API_ALTER_CONFIGS, v, alter_configs_body(v, [(RESOURCE_TOPIC, "ac-x", [
                ("cleanup.policy", "compact"), ("segment.bytes", str(1048576 * (v + 1)))])]))
            bytes_eq(payload, i32(0) + array([i16(0) + string(None) + i8(RESOURCE_TOPIC) + string("ac-x")]),
                     "AlterConfigs v%d response" % v)
            eq(describe_topic_configs(c, "ac-x", names),
               {"retention.ms": ("604800000", SRC_DEFAULT), "cleanup.policy": ("compact", SRC_TOPIC),
                "segment.bytes": (str(1048576 * (v + 1)), SRC_TOPIC)},
               "configs after AlterConfigs v%d (the set replaces all overrides)" % v)
        before = describe_topic_configs(c, "ac-x", names)
        out = call(c, API_ALTER_CONFIGS, 1, alter_configs_body(1, [(RESOURCE_TOPIC, "ac-x", [("retention.ms", "1000")])],
                                                               validate_only=True), decode_alter_configs)
        eq(out["responses"][0]["error"], 0, "validate_only AlterConfigs")
        eq(describe_topic_configs(c, "ac-x", names), before, "validate_only changed the configs")
        bad = [
            ((RESOURCE_TOPIC, "ac-x", [("retention.ms", "abc")]), INVALID_CONFIG),
            ((RESOURCE_TOPIC, "ac-x", [("cleanup.policy", "shred")]), INVALID_CONFIG),
            ((RESOURCE_TOPIC, "ac-x", [("retention.ms", "1000"), ("no.such.config", "1")]), INVALID_CONFIG),
            ((RESOURCE_TOPIC, "ac-missing", [("retention.ms", "1000")]), UNKNOWN_TOPIC_OR_PARTITION),
        ]
        out = call(c, API_ALTER_CONFIGS, 0, alter_configs_body(0, [r for r, _ in bad]), decode_alter_configs)
        eq(len(out["responses"]), len(bad), "response count")
        for (res, code), got in zip(bad, out["responses"]):
            eq((got["error"], got["type"], got["name"]), (code, res[0], res[1]), "AlterConfigs %r" % (res[2],))
            check(got["message"], "no error message for %r" % (res[2],))
        eq(describe_topic_configs(c, "ac-x", names), before, "failed AlterConfigs changed the configs")
        out = call(c, API_ALTER_CONFIGS, 1, alter_configs_body(1, [(RESOURCE_BROKER, "0", [("log.retention.ms", "1000")])]),
                   decode_alter_configs)
        r = out["responses"][0]
        check(r["error"] != 0, "AlterConfigs of a broker resource succeeded")
        eq((r["type"], r["name"]), (RESOURCE_BROKER, "0"), "broker resource echoed")


@test()
def incremental_alter_configs_topic(b):
    names = ["retention.ms", "cleanup.policy", "segment.bytes"]
    for v in (0, 1):
        t = "iac-v%d" % v
        create_topic(b, t, 1, [("segment.bytes", "2097152")])

        def iac(resources, validate_only=False):
            return call(c, API_INCREMENTAL_ALTER_CONFIGS, v, incremental_alter_configs_body(v, resources, validate_only),
                        decode_incremental_alter_configs)["responses"]
        with b.conn() as c:
            payload = body_bytes(c, API_INCREMENTAL_ALTER_CONFIGS, v, incremental_alter_configs_body(
                v, [(RESOURCE_TOPIC, t, [("retention.ms", OP_SET, "1000")])]))
            if v >= 1:
                expected = i32(0) + compact_array([i16(0) + compact_string(None) + i8(RESOURCE_TOPIC) +
                                                   compact_string(t) + tags()]) + tags()
            else:
                expected = i32(0) + array([i16(0) + string(None) + i8(RESOURCE_TOPIC) + string(t)])
            bytes_eq(payload, expected, "IncrementalAlterConfigs v%d SET response" % v)
            eq(describe_topic_configs(c, t, names),
               {"retention.ms": ("1000", SRC_TOPIC), "cleanup.policy": ("delete", SRC_DEFAULT),
                "segment.bytes": ("2097152", SRC_TOPIC)}, "v%d after SET (other overrides kept)" % v)
            eq([r["error"] for r in iac([(RESOURCE_TOPIC, t, [("retention.ms", OP_DELETE, None)])])], [0],
               "v%d DELETE" % v)
            eq(describe_topic_configs(c, t, names)["retention.ms"], ("604800000", SRC_DEFAULT), "v%d after DELETE" % v)
            eq([r["error"] for r in iac([(RESOURCE_TOPIC, t, [("cleanup.policy", OP_APPEND, "compact")])])], [0],
               "v%d APPEND" % v)
            eq(describe_topic_configs(c, t, names)["cleanup.policy"], ("delete,compact", SRC_TOPIC),
               "v%d cleanup.policy after APPEND compact to the default delete" % v)
            eq([r["error"] for r in iac([(RESOURCE_TOPIC, t, [("cleanup.policy", OP_SUBTRACT, "delete")])])], [0],
               "v%d SUBTRACT" % v)
            eq(describe_topic_configs(c, t, names)["cleanup.policy"], ("compact", SRC_TOPIC), "v%d after SUBTRACT" % v)
            before = describe_topic_configs(c, t, names)
            eq([r["error"] for r in iac([(RESOURCE_TOPIC, t, [("retention.ms", OP_SET, "5")])], True)], [0],
               "v%d validate_only" % v)
            eq(describe_topic_configs(c, t, names), before, "v%d validate_only changed the configs" % v)
            bad = [
                ((RESOURCE_TOPIC, t, [("retention.ms", OP_SET, "abc")]), INVALID_CONFIG),
                ((RESOURCE_TOPIC, t, [("segment.bytes", OP_SET, "1"), ("retention.ms", OP_APPEND, "5")]),
                 INVALID_CONFIG),
                ((RESOURCE_TOPIC, t, [("no.such.config", OP_SET, "1")]), INVALID_CONFIG),
                ((RESOURCE_TOPIC, "iac-missing", [("retention.ms", OP_SET, "1000")]), UNKNOWN_TOPIC_OR_PARTITION),
            ]
            got = iac([r for r, _ in bad])
            eq(len(got), len(bad), "v%d response count" % v)
            for (res, code), r in zip(bad, got):
                eq((r["error"], r["type"], r["name"]), (code, res[0], res[1]), "v%d %r" % (v, res[2]))
                check(r["message"], "v%d no error message for %r" % (v, res[2]))
            eq(describe_topic_configs(c, t, names), before, "v%d failed operations changed the configs" % v)
            r = iac([(RESOURCE_BROKER, "0", [("log.retention.ms", OP_SET, "1000")])])[0]
            check(r["error"] != 0, "v%d IncrementalAlterConfigs of a broker resource succeeded" % v)


def delete_records(c, topics, v=1):
    out = call(c, API_DELETE_RECORDS, v, delete_records_body(v, topics), decode_delete_records)
    return {(t["name"], p["index"]): (p["low_watermark"], p["error"]) for t in out["topics"] for p in t["partitions"]}


def log_start(c, topic, partition=0):
    out = call(c, API_LIST_OFFSETS, 1, list_offsets_body(1, [(topic, [(partition, -2)])]), decode_list_offsets)
    p = out["topics"][0]["partitions"][0]
    eq(p["error"], 0, "ListOffsets earliest error")
    return p["offset"]


@test()
def delete_records_low_watermark(b):
    create_topic(b, "dr-x", 1)
    create_topic(b, "dr-y", 1)
    produce_ok(b, "dr-x", 0, record_batch(recs(5)), expect_base=0)
    produce_ok(b, "dr-x", 0, record_batch(recs(5, "m")), expect_base=5)
    produce_ok(b, "dr-y", 0, record_batch(recs(3)), expect_base=0)

    def check_x(c, low, when):
        eq(log_start(c, "dr-x"), low, "ListOffsets earliest %s" % when)
        out = call(c, API_LIST_OFFSETS, 0, list_offsets_body(0, [("dr-x", [(0, -2, 1)])]), decode_list_offsets)
        eq(out["topics"][0]["partitions"][0]["offsets"], [low], "ListOffsets v0 earliest %s" % when)
        fp, _ = fetch(c, "dr-x", 0, low - 1)
        eq(fp["error"], OFFSET_OUT_OF_RANGE, "Fetch at %d (below the log start %d) %s" % (low - 1, low, when))
        check(not fp["records"], "records below the log start %s" % when)
        fp, _ = fetch(c, "dr-x", 0, low)
        eq((fp["error"], fp["log_start"], fp["hwm"]), (0, low, 10), "Fetch at the log start %s" % when)
        offs = [r[0] for r in records_of(fp["records"])]
        check(low in offs and offs[-1] == 9, "Fetch from %d %s returned offsets %r" % (low, when, offs))
        fp, _ = fetch(c, "dr-x", 0, 0, v=4)
        eq(fp["error"], OFFSET_OUT_OF_RANGE, "Fetch v4 at 0 %s" % when)

    with b.conn() as c:
        bytes_eq(body_bytes(c, API_DELETE_RECORDS, 0, delete_records_body(0, [("dr-x", [(0, 5)])])),
                 i32(0) + array([string("dr-x") + array([i32(0) + i64(5) + i16(0)])]), "DeleteRecords v0 to 5")
        check_x(c, 5, "after deleting to 5")
        eq(delete_records(c, [("dr-x", [(0, 7)])]), {("dr-x", 0): (7, 0)}, "DeleteRecords v1 to 7 (mid-batch)")
        check_x(c, 7, "after deleting to 7")
        eq(delete_records(c, [("dr-x", [(0, 2)])]), {("dr-x", 0): (7, 0)},
           "DeleteRecords below the log start (no-op, reports the current low watermark)")
        bytes_eq(body_bytes(c, API_DELETE_RECORDS, 1, delete_records_body(1, [("dr-x", [(0, 11), (4, 1)]),
                                                                               ("dr-missing", [(0, 1)])])),
                 i32(0) + array([string("dr-x") + array([i32(0) + i64(-1) + i16(OFFSET_OUT_OF_RANGE),
                                                         i32(4) + i64(-1) + i16(UNKNOWN_TOPIC_OR_PARTITION)]),
                                 string("dr-missing") + array([i32(0) + i64(-1) + i16(UNKNOWN_TOPIC_OR_PARTITION)])]),
                 "DeleteRecords above the high watermark, to an unknown partition and an unknown topic")
        eq(delete_records(c, [("dr-y", [(0, -1)])]), {("dr-y", 0): (3, 0)}, "DeleteRecords -1 (the high watermark)")
        eq(log_start(c, "dr-y"), 3, "dr-y log start")
        fp, _ = fetch(c, "dr-y", 0, 3)
        eq((fp["error"], fp["records"], fp["log_start"]), (0, b"", 3), "Fetch at the new log start == HWM")
        check_x(c, 7, "before the restarts")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        b.restart(sig)
        with b.conn() as c:
            check_x(c, 7, "after restart (signal %d)" % sig)
            eq(log_start(c, "dr-y"), 3, "dr-y log start after restart (signal %d)" % sig)
    produce_ok(b, "dr-x", 0, record_batch(recs(1)), expect_base=10)
    with b.conn() as c:
        eq(log_start(c, "dr-x"), 7, "log start after a new append")


# ================================================================ runner


def run_group(group, tests):
    results = []
    broker = Broker(GROUPS[group])
    try:
        broker.start()
    except BrokerStartError as e:
        return [(name, "broker for group %s: %s" % (group, e)) for name, _ in tests]
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            reason = None
            try:
                fn(broker)
            except TestFailure as e:
                reason = str(e)
            except (Closed, DecodeError, socket.timeout, OSError) as e:
                reason = "%s: %s" % (type(e).__name__, e)
            except Exception as e:  # a bug in the test itself
                import traceback
                reason = "test error %s: %s | %s" % (type(e).__name__, e,
                                                     traceback.format_exc().strip().splitlines()[-3])
            health = api_versions_ok(broker)
            if health:
                time.sleep(0.3)
                status = broker.proc.poll() if broker.proc else None
                kept = broker.keep_log()
                reason = (reason + "; " if reason else "") + "broker unhealthy after test: %s (exit status %r%s)" % (
                    health, status, ", log kept in " + kept if kept else "")
            results.append((name, reason))
            line = ("ok %s" % name) if reason is None else ("FAIL %s: %s" % (name, reason))
            if VERBOSE:
                line += "  (%.2fs)" % (time.monotonic() - t0)
            print(line, flush=True)
            if health:
                broker.stop()
                broker = Broker(GROUPS[group])
                try:
                    broker.start()
                except BrokerStartError as e:
                    rest = tests[tests.index((name, fn)) + 1:]
                    for n2, _ in rest:
                        results.append((n2, "broker restart failed: %s" % e))
                        print("FAIL %s: broker restart failed: %s" % (n2, e), flush=True)
                    return results
    finally:
        broker.stop()
    return results



# ---- idempotent producers (RELIABILITY.md rows 27-28) ----------------------

API_INIT_PRODUCER_ID = 22


def init_producer_id(c, v=1, transactional_id=None):
    body = string(transactional_id) + i32(60000)
    r = c.roundtrip(API_INIT_PRODUCER_ID, v, body)
    out = {"throttle": r.i32(), "error": r.i16(), "producer_id": r.i64(), "epoch": r.i16()}
    check(r.pos == len(r.data), "InitProducerId v%d response has %d trailing bytes" % (v, len(r.data) - r.pos))
    return out


@test()
def idempotent_producer_sequences(b):
    create_topic(b, "idem", 1)
    with b.conn() as c:
        a = init_producer_id(c)
        a2 = init_producer_id(c)
        eq(a["error"], 0, "InitProducerId error")
        eq(a["epoch"], 0, "InitProducerId epoch")
        check(a["producer_id"] >= 0 and a2["producer_id"] != a["producer_id"],
              "two InitProducerId calls gave ids %d and %d" % (a["producer_id"], a2["producer_id"]))
        tx = init_producer_id(c, transactional_id="tx-1")
        eq(tx["error"], 53, "InitProducerId with a transactional id (no transactions offered)")
        pid = a["producer_id"]

        def batch(seq, n=3, epoch=0, attributes=0, producer=pid):
            return record_batch(recs(n, "s%d-" % seq), producer_id=producer, producer_epoch=epoch,
                                base_sequence=seq, attributes=attributes)

        eq(produce(c, "idem", 0, batch(0))["base_offset"], 0, "first batch (seq 0-2)")
        first = batch(0)
        p = produce(c, "idem", 0, first)
        eq((p["error"], p["base_offset"]), (0, 0), "a retried batch gets its first offsets")
        eq(log_end(c, "idem"), 3, "log end after the retry (not written twice)")
        eq(produce(c, "idem", 0, batch(3))["base_offset"], 3, "next batch (seq 3-5)")
        p = produce(c, "idem", 0, batch(10))
        eq((p["error"], p["base_offset"]), (OUT_OF_ORDER_SEQUENCE_NUMBER, -1), "a sequence gap")
        p = produce(c, "idem", 0, batch(7, producer=a2["producer_id"]))
        eq(p["error"], OUT_OF_ORDER_SEQUENCE_NUMBER, "an unknown producer starting at sequence 7")
        eq(produce(c, "idem", 0, batch(0, epoch=1))["error"], 0, "a new epoch starts at sequence 0")
        p = produce(c, "idem", 0, batch(6, epoch=0))
        eq(p["error"], INVALID_PRODUCER_EPOCH, "a stale epoch")
        p = produce(c, "idem", 0, batch(3, epoch=1, attributes=0x10))
        eq(p["error"], INVALID_TXN_STATE, "a transactional batch outside a transaction")
        eq(log_end(c, "idem"), 9, "log end after the refusals")
    # producer state survives a clean restart and a kill -9
    for sig in (signal.SIGTERM, signal.SIGKILL):
        b.restart(sig)
        with b.conn() as c:
            p = produce(c, "idem", 0, record_batch(recs(3, "s0-"), producer_id=pid, producer_epoch=1,
                                                   base_sequence=0))
            eq((p["error"], p["base_offset"]), (0, 6),
               "after a restart (signal %d) a retried batch still gets its first offsets" % sig)
            eq(log_end(c, "idem"), 9, "log end after the retry across a restart")

# ================================================================ DescribeLogDirs
# Key 35, v0-4, in its own group: a fresh broker whose topics the tests know,
# so "every topic" can be checked byte for byte.  The broker has one log dir
# (log.dirs, reported by its absolute path); PartitionSize is what Kafka
# reports, the bytes of the partition's .log segment files, which the tests
# read from the data directory and also derive from the batches produced.

GROUPS["logdirs"] = {}
LD_VERSIONS = range(0, 5)


def ld_data_dir(b):
    return os.path.realpath(os.path.join(b.dir, "data"))


def ld_disk_sizes(b):
    """{(topic, partition): bytes of its *.log segment files} from the data dir."""
    root = os.path.join(b.dir, "data", "topics")
    out = {}
    for topic in os.listdir(root):
        for part in os.listdir(os.path.join(root, topic)):
            pdir = os.path.join(root, topic, part)
            if os.path.isdir(pdir) and part.isdigit():
                out[(topic, int(part))] = sum(os.path.getsize(os.path.join(pdir, f))
                                              for f in os.listdir(pdir) if f.endswith(".log"))
    return out


def ld_segments(b, topic, partition):
    return len([f for f in os.listdir(os.path.join(b.dir, "data", "topics", topic, str(partition)))
                if f.endswith(".log")])


def ld_body(c, v, topics):
    return body_bytes(c, API_DESCRIBE_LOG_DIRS, v, describe_log_dirs_body(v, topics))


def ld_volume(b, v, payload):
    """(total, usable) for the expected v4 body: total must be the volume's
    size exactly; usable (free space) moves as files are written, so it is
    taken from the response after checking it is close to statvfs's."""
    if v < 4:
        return -1, -1
    got = decode_describe_log_dirs(Reader(payload), v)["results"][0]
    st = os.statvfs(ld_data_dir(b))
    total, usable = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    eq(got["total_bytes"], total, "v4 TotalBytes (statvfs f_blocks x f_frsize)")
    check(0 <= got["usable_bytes"] <= total and abs(got["usable_bytes"] - usable) < 256 << 20,
          "v4 UsableBytes %d, statvfs says %d of %d" % (got["usable_bytes"], usable, total))
    return total, got["usable_bytes"]


def ld_expect(b, v, payload, topics):
    """The exact body for one log dir listing topics = [(name, [(partition, size)])]."""
    total, usable = ld_volume(b, v, payload)
    return describe_log_dirs_response(v, [(0, ld_data_dir(b), [(t, [(p, size, 0, False) for p, size in parts])
                                                               for t, parts in topics], total, usable)])


def ld_sizes(c, v, topics):
    """{(topic, partition): size} from one DescribeLogDirs call (one log dir, no errors)."""
    out = call(c, API_DESCRIBE_LOG_DIRS, v, describe_log_dirs_body(v, topics), decode_describe_log_dirs)
    eq(len(out["results"]), 1, "log dir count")
    eq(out["results"][0]["error"], 0, "log dir error")
    sizes = {}
    for t in out["results"][0]["topics"]:
        for p in t["partitions"]:
            check((t["name"], p["index"]) not in sizes, "%s-%d listed twice" % (t["name"], p["index"]))
            sizes[(t["name"], p["index"])] = p["size"]
    return sizes


def ld_setup(b):
    """ld-a: 2 partitions, one batch in partition 0; ld-b: 1 partition in
    several small segments.  Returns the bytes produced per partition."""
    produced = {}
    if ("ld-a", 0) not in ld_disk_sizes(b):
        create_topic(b, "ld-a", 2)
        create_topic(b, "ld-b", 1, [("segment.bytes", "300")])
        batch = record_batch(recs(3))
        produce_ok(b, "ld-a", 0, batch)
        produced[("ld-a", 0)] = len(batch)
        produced[("ld-b", 0)] = 0
        for i in range(5):
            batch = record_batch(recs(4, "b%d-" % i))
            produce_ok(b, "ld-b", 0, batch)
            produced[("ld-b", 0)] += len(batch)
    return produced


@test("logdirs")
def describe_log_dirs_advertised(b):
    with b.conn() as c:
        for v in (0, 3):
            out = decode_api_versions(c.roundtrip(API_API_VERSIONS, v, api_versions_body(v)), v)
            eq({k: (lo, hi) for k, lo, hi in out["keys"]}.get(API_DESCRIBE_LOG_DIRS), (0, 4),
               "ApiVersions v%d range of DescribeLogDirs" % v)


@test("logdirs")
def describe_log_dirs_all_topics(b):
    produced = ld_setup(b)
    disk = ld_disk_sizes(b)
    for key, n in produced.items():
        eq(disk[key], n, "bytes of %s-%d's .log files vs the batches produced" % key)
    check(ld_segments(b, "ld-b", 0) >= 2, "ld-b has a single segment; the test needs several")
    with b.conn() as c:
        md = metadata(c, 1, None)
        want = {t["name"]: len(t["partitions"]) for t in md["topics"]}
        check({"ld-a", "ld-b"} <= set(want), "Metadata topics %r" % sorted(want))
        for v in LD_VERSIONS:
            payload = ld_body(c, v, None)
            got = decode_describe_log_dirs(Reader(payload), v)
            order = [t["name"] for t in got["results"][0]["topics"]]
            eq(sorted(order), sorted(want), "v%d topics listed for a null Topics (every topic)" % v)
            expected = ld_expect(b, v, payload, [(t, [(p, disk[(t, p)]) for p in range(want[t])]) for t in order])
            bytes_eq(payload, expected, "DescribeLogDirs v%d, every topic" % v)
        # an empty (not null) list asks for nothing: the log dir with no topics
        for v in LD_VERSIONS:
            payload = ld_body(c, v, [])
            bytes_eq(payload, ld_expect(b, v, payload, []), "DescribeLogDirs v%d, empty Topics" % v)


@test("logdirs")
def describe_log_dirs_named_topics(b):
    ld_setup(b)
    disk = ld_disk_sizes(b)
    ask = [("ld-a", [1, 0, 0, 9, -1]), ("ld-missing", [0]), ("ld-b", [0]), ("ld-a", [1]), ("ld-b", []),
           ("", [0])]
    with b.conn() as c:
        for v in LD_VERSIONS:
            # unknown topics and partitions are left out; a topic named twice
            # is listed once with the union of its partitions, in index order
            payload = ld_body(c, v, ask)
            expected = ld_expect(b, v, payload, [("ld-a", [(0, disk[("ld-a", 0)]), (1, 0)]),
                                                 ("ld-b", [(0, disk[("ld-b", 0)])])])
            bytes_eq(payload, expected, "DescribeLogDirs v%d, named topics with unknowns and repeats" % v)
            payload = ld_body(c, v, [("ld-missing", [0, 1]), ("ld-a", [2])])
            bytes_eq(payload, ld_expect(b, v, payload, []), "DescribeLogDirs v%d, only unknown names" % v)


@test("logdirs")
def describe_log_dirs_sizes_follow_the_log(b):
    ld_setup(b)
    with b.conn() as c:
        before = ld_sizes(c, 1, [("ld-a", [0, 1])])
        batch = record_batch(recs(7, "grow"))
        eq(produce(c, "ld-a", 1, batch)["error"], 0, "Produce to ld-a-1")
        for v in LD_VERSIONS:
            after = ld_sizes(c, v, [("ld-a", [0, 1])])
            eq(after, {("ld-a", 0): before[("ld-a", 0)], ("ld-a", 1): before[("ld-a", 1)] + len(batch)},
               "v%d sizes after producing %d bytes to ld-a-1" % (v, len(batch)))
        eq(ld_sizes(c, 2, None), {k: s for k, s in ld_disk_sizes(b).items()}, "every size vs the data dir")
        # DeleteRecords removes the segments wholly below the new log start
        segs, size = ld_segments(b, "ld-b", 0), ld_sizes(c, 1, [("ld-b", [0])])[("ld-b", 0)]
        end = log_end(c, "ld-b")
        eq(delete_records(c, [("ld-b", [(0, end)])]), {("ld-b", 0): (end, 0)}, "DeleteRecords ld-b to its end")
        check(ld_segments(b, "ld-b", 0) < segs, "DeleteRecords left all %d segments of ld-b" % segs)
        shrunk = ld_sizes(c, 1, [("ld-b", [0])])[("ld-b", 0)]
        check(shrunk < size, "ld-b size %d after DeleteRecords, %d before" % (shrunk, size))
        eq(shrunk, ld_disk_sizes(b)[("ld-b", 0)], "ld-b size after DeleteRecords vs its .log files")
    # the sizes are rebuilt from the files after a clean stop and after a crash
    for sig in (signal.SIGTERM, signal.SIGKILL):
        before = ld_disk_sizes(b)
        b.restart(sig)
        with b.conn() as c:
            eq(ld_sizes(c, 4, None), before, "every size after a restart (signal %d)" % sig)


@test("logdirs")
def describe_log_dirs_hostile(b):
    def hdr(v):
        return request_header(API_DESCRIBE_LOG_DIRS, v, 7)
    cases = [
        (frame(hdr(1) + i32(0x7fffffff)), "v1 Topics count INT32_MAX with no bytes behind it"),
        (frame(hdr(1) + i32(-2)), "v1 Topics count -2"),
        (frame(hdr(1) + i32(1) + string("ld-a") + i32(0x10000000) + i32(0)),
         "v1 Partitions count 2^28 with 4 bytes behind it"),
        (frame(hdr(0) + i32(1) + string("ld-a") + i32(-1)), "v0 null Partitions (not nullable)"),
        (frame(hdr(0) + i32(1) + i16(100) + b"abc"), "v0 topic name longer than the frame"),
        (frame(hdr(0) + i32(1) + string("ld-a")), "v0 topic cut before its Partitions"),
        (frame(hdr(2) + uvarint(0x7ffffff0) + tags()), "v2 compact Topics count near INT32_MAX"),
        (frame(hdr(2) + b"\xff\xff\xff\xff\xff\x01"), "v2 over-long varint Topics count"),
        (frame(hdr(4) + compact_array([compact_string("ld-a") + uvarint(0x1000000)])),
         "v4 compact Partitions count 2^24 with nothing behind it"),
        (frame(hdr(3) + compact_array([compact_string("ld-a") + compact_array([0], i32) + uvarint(5) + b"\x01"])),
         "v3 tagged-field count past the end"),
        (request(API_DESCRIBE_LOG_DIRS, 5, 7, compact_array(None) + tags(), flexible=True),
         "DescribeLogDirs v5 (unsupported: Kafka closes the connection)"),
    ]
    for data, what in cases:
        send_and_expect_close(b, data, what)
    # the broker still serves the API afterwards
    with b.conn() as c:
        ld_sizes(c, 1, None)


def main(argv):
    global VERBOSE
    args = [a for a in argv if a != "-v"]
    VERBOSE = len(args) != len(argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        print("tests:", " ".join(n for n, _, _ in TESTS))
        return 0
    selected = [(n, g, f) for n, g, f in TESTS if not args or any(n == a or n.startswith(a) for a in args)]
    unmatched = [a for a in args if not any(n == a or n.startswith(a) for n, _, _ in TESTS)]
    for a in unmatched:
        print("FAIL %s: no test has this name or prefix" % a)
    t0 = time.monotonic()
    passed, failed = 0, len(unmatched)
    for group in GROUPS:
        tests = [(n, f) for n, g, f in selected if g == group]
        if not tests:
            continue
        for name, reason in run_group(group, tests):
            if reason is None:
                passed += 1
            else:
                failed += 1
    if VERBOSE:
        print("(%.1fs)" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
