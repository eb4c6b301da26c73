#!/usr/bin/python3
"""run_wire.py: byte-exact wire tests against a real shopstream broker.

Each test group starts one broker process (bin/shopstream broker) on a free
port with a fresh data directory and its own settings, runs its tests, and
stops the broker by PID (SIGTERM, then SIGKILL).  After every test the
runner checks that the broker process is alive and answers ApiVersions on a
fresh connection; if not, the test fails and the broker is restarted for the
rest of the group.

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
        return "broker process exited (status %r): %s" % (b.proc.poll(), b.log_tail())
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
    # Kafka serves zstd only to Fetch v10+; older fetchers get error 76
    # (v4-v9 clients cannot read zstd batches; v0-3 may get them converted
    # to uncompressed messages instead)
    bad = []
    with b.conn() as c:
        for v in (9, 4):
            fp, _ = fetch(c, "pr-zstd", 0, 0, v=v)
            if (fp["error"], fp["records"] or b"") != (UNSUPPORTED_COMPRESSION_TYPE, b""):
                bad.append("v%d gave error %d with %d record bytes" % (v, fp["error"], len(fp["records"] or b"")))
        for v in (2, 0):
            fp, _ = fetch(c, "pr-zstd", 0, 0, v=v)
            if fp["error"] == UNSUPPORTED_COMPRESSION_TYPE and not fp["records"]:
                continue
            eq(fp["error"], 0, "Fetch v%d of a zstd batch" % v)
            check_message_set(fp["records"], 1 if v == 2 else 0,
                              [(i, k, val) for i, (k, val) in enumerate(recs(3))], {})
    check(not bad, "Fetch v4-v9 of a zstd batch must fail with 76: " + "; ".join(bad))


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
    # internal topic"), so clients cannot forge group offsets.  Only checked
    # once the broker has __consumer_offsets.
    with b.conn() as c:
        t = metadata(c, 4, ["__consumer_offsets"], allow_auto=False)["topics"][0]
        if t["error"] == UNKNOWN_TOPIC_OR_PARTITION:
            return
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
