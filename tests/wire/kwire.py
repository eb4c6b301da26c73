"""kwire.py: Kafka wire-format helpers for the byte-exact wire tests.

Builds request frames (header v1/v2, classic and compact fields, varints),
record batches (magic 2, CRC-32C) and legacy MessageSets (magic 0/1,
CRC-32), and reads responses back with a strict reader that fails on any
short or trailing byte.  Standard library only.  The wire format is
described in /work/shared/kafka-protocol/README.md and the JSON message
specs next to it; nothing here knows about the broker under test.
"""
import socket
import struct
import time
import zlib

# ---------------------------------------------------------------- CRC-32C

def _make_crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as used by RecordBatch v2."""
    t = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value

# ---------------------------------------------------------------- primitives

def i8(v):
    return struct.pack(">b", v)


def u8(v):
    return struct.pack(">B", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def u32(v):
    return struct.pack(">I", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def uvarint(v):
    """Unsigned varint (compact lengths, tagged fields)."""
    assert v >= 0
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    """Zigzag varint (32-bit), used inside record batches."""
    return uvarint(((v << 1) ^ (v >> 31)) & 0xFFFFFFFF)


def varlong(v):
    """Zigzag varlong (64-bit), used inside record batches."""
    return uvarint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _enc(s):
    return s.encode() if isinstance(s, str) else s


def string(s):
    """Classic nullable string: int16 length (-1 = null) + bytes."""
    if s is None:
        return i16(-1)
    s = _enc(s)
    return i16(len(s)) + s


def compact_string(s):
    """Compact nullable string: uvarint(len+1) + bytes (0 = null)."""
    if s is None:
        return uvarint(0)
    s = _enc(s)
    return uvarint(len(s) + 1) + s


def kbytes(b):
    """Classic nullable bytes: int32 length (-1 = null) + data."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def compact_bytes(b):
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


def array(items, enc=None):
    """Classic array: int32 count (-1 = null) + encoded elements.
    items may be pre-encoded bytes elements (enc None) or values for enc."""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) if enc else x for x in items)


def compact_array(items, enc=None):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(enc(x) if enc else x for x in items)


def tags(fields=()):
    """A tagged-field section; fields = [(tag, raw bytes)], increasing tags."""
    out = uvarint(len(fields))
    for tag, data in fields:
        out += uvarint(tag) + uvarint(len(data)) + data
    return out

# ---------------------------------------------------------------- requests

# First flexible version of each API the tests use (README quick index).
FLEXIBLE_FROM = {0: 9, 1: 12, 2: 6, 3: 9, 18: 3, 19: 5, 20: 4, 32: 4, 37: 2}

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_API_VERSIONS, API_CREATE_TOPICS, API_DELETE_TOPICS = 18, 19, 20
API_DESCRIBE_CONFIGS, API_CREATE_PARTITIONS = 32, 37


def is_flexible(api_key, version):
    f = FLEXIBLE_FROM.get(api_key)
    return f is not None and version >= f


def request_header(api_key, version, corr, client_id="wire-test", flexible=None):
    """Request header v1, or v2 (v1 + an empty tag section) when flexible.
    client_id keeps its int16 length in both."""
    if flexible is None:
        flexible = is_flexible(api_key, version)
    h = i16(api_key) + i16(version) + i32(corr) + string(client_id)
    if flexible:
        h += tags()
    return h


def frame(payload):
    return i32(len(payload)) + payload


def request(api_key, version, corr, body, client_id="wire-test", flexible=None):
    return frame(request_header(api_key, version, corr, client_id, flexible) + body)

# ---------------------------------------------------------------- reader

class DecodeError(Exception):
    pass


class Reader:
    """Strict big-endian reader over one response body."""

    def __init__(self, data, pos=0):
        self.data = bytes(data)
        self.pos = pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("need %d bytes at %d, have %d" % (n, self.pos, len(self.data) - self.pos))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self):
        return self._unpack(">b", 1)

    def u8(self):
        return self._unpack(">B", 1)

    def i16(self):
        return self._unpack(">h", 2)

    def i32(self):
        return self._unpack(">i", 4)

    def u32(self):
        return self._unpack(">I", 4)

    def i64(self):
        return self._unpack(">q", 8)

    def boolean(self):
        v = self.u8()
        if v > 1:
            raise DecodeError("bool byte %d" % v)
        return bool(v)

    def uvarint(self):
        v = shift = 0
        for _ in range(10):
            b = self.u8()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
        raise DecodeError("varint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    varlong = varint

    def string(self):
        n = self.i16()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError("string length %d" % n)
        return self.take(n).decode("utf-8", "replace")

    def compact_string(self):
        n = self.uvarint()
        if n == 0:
            return None
        return self.take(n - 1).decode("utf-8", "replace")

    def kbytes(self):
        n = self.i32()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError("bytes length %d" % n)
        return self.take(n)

    def array(self, fn):
        n = self.i32()
        if n == -1:
            return None
        if n < -1 or n > len(self.data):
            raise DecodeError("array count %d" % n)
        return [fn(self) for _ in range(n)]

    def compact_array(self, fn):
        n = self.uvarint()
        if n == 0:
            return None
        if n - 1 > len(self.data):
            raise DecodeError("array count %d" % (n - 1))
        return [fn(self) for _ in range(n - 1)]

    def tags(self):
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out

    def remaining(self):
        return len(self.data) - self.pos

    def done(self):
        if self.pos != len(self.data):
            raise DecodeError("%d trailing bytes" % (len(self.data) - self.pos))

# ---------------------------------------------------------------- connections

class Closed(Exception):
    """The broker closed the connection."""


class Conn:
    """One blocking client connection with frame-level send/receive."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.corr = 1000

    def next_corr(self):
        self.corr += 1
        return self.corr

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out with %d of %d bytes" % (len(buf), n))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except ConnectionResetError:
                raise Closed("connection reset after %d of %d bytes" % (len(buf), n))
            if not chunk:
                raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self, timeout=None):
        """Returns the payload of the next response frame (without size)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        (size,) = struct.unpack(">i", self._recv_exact(4, deadline))
        if size < 4 or size > 512 << 20:
            raise DecodeError("response frame size %d" % size)
        return self._recv_exact(size, deadline)

    def roundtrip(self, api_key, version, body, corr=None, client_id="wire-test", flexible_resp=None,
                  timeout=None):
        """Sends one request and returns a Reader over the response body,
        after checking the correlation id (and the response-header tags
        for flexible versions; ApiVersions always uses header v0)."""
        if corr is None:
            corr = self.next_corr()
        self.send(request(api_key, version, corr, body, client_id))
        payload = self.recv_frame(timeout)
        r = Reader(payload)
        got = r.i32()
        if got != corr:
            raise DecodeError("correlation id %d, expected %d" % (got, corr))
        if flexible_resp is None:
            flexible_resp = is_flexible(api_key, version) and api_key != API_API_VERSIONS
        if flexible_resp:
            t = r.tags()
            if t:
                raise DecodeError("unexpected response header tags %r" % t)
        return r

    def expect_closed(self, timeout=3.0):
        """Waits for the broker to close without sending anything.
        Returns None on success, or a string describing what happened."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "connection still open after %.1fs (received %d bytes)" % (timeout, len(got))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                continue
            if not chunk:
                if got:
                    return "closed, but only after sending %d bytes: %s" % (len(got), bytes(got[:64]).hex())
                return None
            got += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

# ---------------------------------------------------------------- RecordBatch v2

CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2, 3, 4
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20


def gzip_compress(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def gzip_decompress(data):
    return zlib.decompress(data, 47)


def zstd_raw_frame(data):
    """A valid zstd frame holding data in one raw (stored) block, so zstd
    payloads can be made without a zstd library.  Frame header: single
    segment, 4-byte content size, no checksum."""
    assert len(data) < 128 * 1024
    hdr = struct.pack("<I", 0xFD2FB528) + bytes([0xA0]) + struct.pack("<I", len(data))
    block = (len(data) << 3) | 1  # last block, type raw
    return hdr + struct.pack("<I", block)[:3] + data


def encode_record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + varlong(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = _enc(hk)
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=1_700_000_000_000, ts_deltas=None, base_offset=0, codec=CODEC_NONE,
                 attributes=0, leader_epoch=-1, magic=2, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1, last_offset_delta=None, record_count=None, max_ts=None,
                 batch_length=None, bad_crc=False, payload=None, compressed_override=None):
    """Builds one RecordBatch.  records is a list of (key, value) or
    (key, value, headers).  The keyword arguments break single fields on
    purpose; the CRC is computed over whatever was built (bad_crc flips it),
    so each broken field is seen on its own."""
    if ts_deltas is None:
        ts_deltas = list(range(len(records)))
    if payload is None:
        payload = b"".join(
            encode_record(i, ts_deltas[i], r[0], r[1], r[2] if len(r) > 2 else ())
            for i, r in enumerate(records))
    if compressed_override is not None:
        payload = compressed_override
    elif codec == CODEC_GZIP:
        payload = gzip_compress(payload)
    elif codec == CODEC_ZSTD:
        payload = zstd_raw_frame(payload)
    attrs = (attributes & ~7) | codec
    if last_offset_delta is None:
        last_offset_delta = len(records) - 1
    if record_count is None:
        record_count = len(records)
    if max_ts is None:
        max_ts = base_ts + (max(ts_deltas) if ts_deltas else 0)
    after_crc = (i16(attrs) + i32(last_offset_delta) + i64(base_ts) + i64(max_ts) + i64(producer_id) +
                 i16(producer_epoch) + i32(base_sequence) + i32(record_count) + payload)
    crc = crc32c(after_crc)
    if bad_crc:
        crc ^= 0x00010000
    rest = i32(leader_epoch) + i8(magic) + u32(crc) + after_crc
    if batch_length is None:
        batch_length = len(rest)
    return i64(base_offset) + i32(batch_length) + rest


BATCH_OVERHEAD = 61


def parse_batches(blob):
    """Splits a records blob into magic-2 batches.  Returns (batches,
    partial_tail_len).  Each batch is a dict with its header fields, its
    raw bytes, crc_ok and (when decodable) its records."""
    out = []
    pos = 0
    while len(blob) - pos >= 12:
        base_offset, blen = struct.unpack_from(">qi", blob, pos)
        if blen < 0 or pos + 12 + blen > len(blob):
            break
        raw = blob[pos:pos + 12 + blen]
        pos += 12 + blen
        b = {"raw": raw, "base_offset": base_offset, "batch_length": blen}
        if len(raw) < BATCH_OVERHEAD:
            b["magic"] = raw[16] if len(raw) > 16 else None
            out.append(b)
            continue
        (b["leader_epoch"], b["magic"], b["crc"], b["attributes"], b["last_offset_delta"], b["base_ts"],
         b["max_ts"], b["producer_id"], b["producer_epoch"], b["base_sequence"],
         b["record_count"]) = struct.unpack_from(">ibIhiqqqhii", raw, 12)
        if b["magic"] != 2:
            out.append(b)
            continue
        b["crc_ok"] = crc32c(raw[21:]) == b["crc"]
        codec = b["attributes"] & 7
        payload = raw[BATCH_OVERHEAD:]
        try:
            if codec == CODEC_GZIP:
                payload = gzip_decompress(payload)
            elif codec != CODEC_NONE:
                payload = None
            if payload is not None:
                b["records"] = decode_records(payload, b["record_count"], b["base_offset"], b["base_ts"])
        except (DecodeError, zlib.error) as e:
            b["records_error"] = str(e)
        out.append(b)
    return out, len(blob) - pos


def decode_records(payload, count, base_offset, base_ts):
    r = Reader(payload)
    recs = []
    for _ in range(count):
        length = r.varint()
        start = r.pos
        attrs = r.i8()
        tsd = r.varlong()
        od = r.varint()
        kl = r.varint()
        key = None if kl < 0 else r.take(kl)
        vl = r.varint()
        value = None if vl < 0 else r.take(vl)
        headers = []
        for _ in range(r.varint()):
            hk = r.take(r.varint())
            hl = r.varint()
            headers.append((hk, None if hl < 0 else r.take(hl)))
        if r.pos - start != length:
            raise DecodeError("record length %d but used %d" % (length, r.pos - start))
        recs.append({"offset": base_offset + od, "timestamp": base_ts + tsd, "key": key, "value": value,
                     "headers": headers, "attributes": attrs})
    r.done()
    return recs

# ---------------------------------------------------------------- legacy MessageSet

def legacy_message(magic, key, value, offset=0, timestamp=-1, attributes=0, bad_crc=False):
    """One MessageSet entry (offset, size, message) for magic 0 or 1."""
    body = i8(magic) + i8(attributes)
    if magic == 1:
        body += i64(timestamp)
    body += kbytes(key) + kbytes(value)
    crc = zlib.crc32(body) & 0xFFFFFFFF
    if bad_crc:
        crc ^= 1
    msg = u32(crc) + body
    return i64(offset) + i32(len(msg)) + msg


def legacy_set(magic, msgs, timestamps=None, first_offset=0):
    """A MessageSet of uncompressed messages; msgs = [(key, value)]."""
    out = b""
    for i, (k, v) in enumerate(msgs):
        ts = timestamps[i] if timestamps else -1
        out += legacy_message(magic, k, v, offset=first_offset + i, timestamp=ts)
    return out


def legacy_gzip_wrapper(magic, msgs, timestamps=None, wrapper_offset=None):
    """A gzip wrapper message around an inner MessageSet.  Inner offsets
    are 0..n-1 (relative for magic 1); the wrapper carries n-1 (magic 1) or
    0 (magic 0) and the largest inner timestamp."""
    inner = legacy_set(magic, msgs, timestamps)
    ts = max(timestamps) if timestamps else -1
    if wrapper_offset is None:
        wrapper_offset = len(msgs) - 1 if magic == 1 else 0
    return legacy_message(magic, None, gzip_compress(inner), offset=wrapper_offset, timestamp=ts,
                          attributes=CODEC_GZIP)


def parse_message_set(blob, depth=0):
    """Parses a legacy MessageSet; compressed wrappers are expanded with
    absolute offsets.  Returns (messages, partial_tail_len); each message
    is a dict with offset, magic, attributes, timestamp, key, value, crc_ok."""
    out = []
    pos = 0
    while len(blob) - pos >= 12:
        offset, size = struct.unpack_from(">qi", blob, pos)
        if size < 0 or pos + 12 + size > len(blob):
            break
        msg = blob[pos + 12:pos + 12 + size]
        pos += 12 + size
        r = Reader(msg)
        crc = r.u32()
        magic = r.i8()
        attrs = r.i8()
        ts = r.i64() if magic == 1 else None
        key = r.kbytes()
        value = r.kbytes()
        r.done()
        m = {"offset": offset, "magic": magic, "attributes": attrs, "timestamp": ts, "key": key,
             "value": value, "crc_ok": (zlib.crc32(msg[4:]) & 0xFFFFFFFF) == crc, "wrapped": depth > 0}
        codec = attrs & 7
        if codec and depth == 0:
            if codec != CODEC_GZIP:
                raise DecodeError("codec %d in a fetched MessageSet" % codec)
            inner, tail = parse_message_set(gzip_decompress(value), depth + 1)
            if tail:
                raise DecodeError("partial inner message")
            if not m["crc_ok"]:
                raise DecodeError("wrapper CRC mismatch")
            if magic == 1:
                # inner offsets are relative; the wrapper has the last absolute offset
                first = offset - inner[-1]["offset"]
                for x in inner:
                    x["offset"] += first
            out.extend(inner)
        else:
            out.append(m)
    return out, len(blob) - pos

# ---------------------------------------------------------------- API bodies
# Request bodies and strict response decoders for the versions the broker
# serves (all non-flexible except ApiVersions v3).  Decoders call done(),
# so a missing or extra byte in a response fails the test.

def api_versions_body(v, software="shopstream-wire", version="1.0"):
    if v >= 3:
        return compact_string(software) + compact_string(version) + tags()
    return b""


def decode_api_versions(r, v):
    out = {"error": r.i16()}
    if v >= 3:
        def key(r):
            k = (r.i16(), r.i16(), r.i16())
            if r.tags():
                raise DecodeError("tags in ApiVersion")
            return k
        out["keys"] = r.compact_array(key)
    else:
        out["keys"] = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    if v >= 1:
        out["throttle"] = r.i32()
    if v >= 3:
        out["tags"] = r.tags()
    r.done()
    return out


def metadata_body(v, topics, allow_auto=True):
    if v == 0:
        body = array(topics, string)
    else:
        body = array(topics, string)
    if v >= 4:
        body += boolean(allow_auto)
    return body


def decode_metadata(r, v):
    out = {}
    if v >= 3:
        out["throttle"] = r.i32()

    def broker(r):
        b = {"node_id": r.i32(), "host": r.string(), "port": r.i32()}
        if v >= 1:
            b["rack"] = r.string()
        return b
    out["brokers"] = r.array(broker)
    if v >= 2:
        out["cluster_id"] = r.string()
    if v >= 1:
        out["controller_id"] = r.i32()

    def part(r):
        p = {"error": r.i16(), "index": r.i32(), "leader": r.i32()}
        p["replicas"] = r.array(lambda r: r.i32())
        p["isr"] = r.array(lambda r: r.i32())
        if v >= 5:
            p["offline"] = r.array(lambda r: r.i32())
        return p

    def topic(r):
        t = {"error": r.i16(), "name": r.string()}
        if v >= 1:
            t["internal"] = r.boolean()
        t["partitions"] = r.array(part)
        return t
    out["topics"] = r.array(topic)
    r.done()
    return out


def produce_body(v, acks, topic_data, timeout_ms=5000, transactional_id=None):
    """topic_data = [(name, [(partition, records_bytes_or_None)])]"""
    body = string(transactional_id) if v >= 3 else b""
    body += i16(acks) + i32(timeout_ms)
    body += array(topic_data, lambda td: string(td[0]) + array(
        td[1], lambda pd: i32(pd[0]) + kbytes(pd[1])))
    return body


def decode_produce(r, v):
    def part(r):
        p = {"index": r.i32(), "error": r.i16(), "base_offset": r.i64()}
        if v >= 2:
            p["log_append_time"] = r.i64()
        if v >= 5:
            p["log_start_offset"] = r.i64()
        return p
    out = {"topics": r.array(lambda r: {"name": r.string(), "partitions": r.array(part)})}
    if v >= 1:
        out["throttle"] = r.i32()
    r.done()
    return out


def fetch_body(v, topics, max_wait_ms=0, min_bytes=1, max_bytes=10 << 20, isolation=0, session_id=0,
               session_epoch=-1, replica_id=-1, forgotten=(), rack=""):
    """topics = [(name, [(partition, offset, partition_max_bytes)])]"""
    body = i32(replica_id) + i32(max_wait_ms) + i32(min_bytes)
    if v >= 3:
        body += i32(max_bytes)
    if v >= 4:
        body += i8(isolation)
    if v >= 7:
        body += i32(session_id) + i32(session_epoch)

    def part(p):
        b = i32(p[0])
        if v >= 9:
            b += i32(-1)  # current leader epoch
        b += i64(p[1])
        if v >= 5:
            b += i64(-1)  # log start offset (followers only)
        return b + i32(p[2])
    body += array(topics, lambda t: string(t[0]) + array(t[1], part))
    if v >= 7:
        body += array(list(forgotten), lambda f: string(f[0]) + array(f[1], i32))
    if v >= 11:
        body += string(rack)
    return body


def decode_fetch(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    if v >= 7:
        out["error"] = r.i16()
        out["session_id"] = r.i32()

    def part(r):
        p = {"index": r.i32(), "error": r.i16(), "hwm": r.i64()}
        if v >= 4:
            p["lso"] = r.i64()
        if v >= 5:
            p["log_start"] = r.i64()
        if v >= 4:
            p["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
        if v >= 11:
            p["preferred_read_replica"] = r.i32()
        p["records"] = r.kbytes()
        return p
    out["topics"] = r.array(lambda r: {"name": r.string(), "partitions": r.array(part)})
    r.done()
    return out


def list_offsets_body(v, topics, replica_id=-1, isolation=0):
    """topics = [(name, [(partition, timestamp, max_num_offsets)])]"""
    body = i32(replica_id)
    if v >= 2:
        body += i8(isolation)

    def part(p):
        b = i32(p[0]) + i64(p[1])
        if v == 0:
            b += i32(p[2] if len(p) > 2 else 1)
        return b
    return body + array(topics, lambda t: string(t[0]) + array(t[1], part))


def decode_list_offsets(r, v):
    out = {}
    if v >= 2:
        out["throttle"] = r.i32()

    def part(r):
        p = {"index": r.i32(), "error": r.i16()}
        if v == 0:
            p["offsets"] = r.array(lambda r: r.i64())
        else:
            p["timestamp"] = r.i64()
            p["offset"] = r.i64()
        return p
    out["topics"] = r.array(lambda r: {"name": r.string(), "partitions": r.array(part)})
    r.done()
    return out


def create_topics_body(v, topics, timeout_ms=5000, validate_only=False):
    """topics = [(name, num_partitions, replication_factor, assignments, configs)]
    assignments = [(partition, [broker ids])], configs = [(name, value)]"""
    def topic(t):
        name, n, rf = t[0], t[1], t[2]
        assignments = t[3] if len(t) > 3 else []
        configs = t[4] if len(t) > 4 else []
        return (string(name) + i32(n) + i16(rf) +
                array(assignments, lambda a: i32(a[0]) + array(a[1], i32)) +
                array(configs, lambda c: string(c[0]) + string(c[1])))
    body = array(topics, topic) + i32(timeout_ms)
    if v >= 1:
        body += boolean(validate_only)
    return body


def decode_create_topics(r, v):
    out = {}
    if v >= 2:
        out["throttle"] = r.i32()

    def topic(r):
        t = {"name": r.string(), "error": r.i16()}
        if v >= 1:
            t["message"] = r.string()
        return t
    out["topics"] = r.array(topic)
    r.done()
    return out


def delete_topics_body(v, names, timeout_ms=5000):
    return array(names, string) + i32(timeout_ms)


def decode_delete_topics(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["topics"] = r.array(lambda r: {"name": r.string(), "error": r.i16()})
    r.done()
    return out


def create_partitions_body(v, topics, timeout_ms=5000, validate_only=False):
    """topics = [(name, count, assignments or None)]"""
    return array(topics, lambda t: string(t[0]) + i32(t[1]) + array(
        t[2] if len(t) > 2 else None, lambda a: array(a, i32))) + i32(timeout_ms) + boolean(validate_only)


def decode_create_partitions(r, v):
    out = {"throttle": r.i32(),
           "topics": r.array(lambda r: {"name": r.string(), "error": r.i16(), "message": r.string()})}
    r.done()
    return out


def describe_configs_body(v, resources, include_synonyms=False):
    """resources = [(type, name, keys or None)]"""
    body = array(resources, lambda res: i8(res[0]) + string(res[1]) + array(res[2], string))
    if v >= 1:
        body += boolean(include_synonyms)
    return body


def decode_describe_configs(r, v):
    out = {"throttle": r.i32()}

    def config(r):
        c = {"name": r.string(), "value": r.string(), "read_only": r.boolean()}
        if v == 0:
            c["is_default"] = r.boolean()
        if v >= 1:
            c["source"] = r.i8()
        c["sensitive"] = r.boolean()
        if v >= 1:
            c["synonyms"] = r.array(lambda r: (r.string(), r.string(), r.i8()))
        return c

    def result(r):
        return {"error": r.i16(), "message": r.string(), "type": r.i8(), "name": r.string(),
                "configs": r.array(config)}
    out["results"] = r.array(result)
    r.done()
    return out

# ---------------------------------------------------------------- group coordinator APIs
# FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
# OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, and the
# config/records admin APIs AlterConfigs, IncrementalAlterConfigs and
# DeleteRecords.  Field layouts follow the JSON specs in
# /work/shared/kafka-protocol/message/.

API_OFFSET_COMMIT, API_OFFSET_FETCH, API_FIND_COORDINATOR = 8, 9, 10
API_JOIN_GROUP, API_HEARTBEAT, API_LEAVE_GROUP, API_SYNC_GROUP = 11, 12, 13, 14
API_DESCRIBE_GROUPS, API_LIST_GROUPS, API_DELETE_RECORDS = 15, 16, 21
API_ALTER_CONFIGS, API_DELETE_GROUPS, API_INCREMENTAL_ALTER_CONFIGS, API_OFFSET_DELETE = 33, 42, 44, 47

FLEXIBLE_FROM.update({8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4, 15: 5, 16: 3, 21: 2, 33: 2, 42: 2, 44: 1})


def consumer_subscription(topics, userdata=None, version=0):
    """ConsumerProtocolSubscription v0: int16 version, [string] topics,
    nullable bytes user data (v1+ would add owned partitions)."""
    return i16(version) + array(topics, string) + kbytes(userdata)


def consumer_assignment(partitions, userdata=None, version=0):
    """ConsumerProtocolAssignment v0; partitions = [(topic, [partition])]."""
    return i16(version) + array(partitions, lambda tp: string(tp[0]) + array(tp[1], i32)) + kbytes(userdata)


def find_coordinator_body(v, key, key_type=0):
    body = string(key)
    if v >= 1:
        body += i8(key_type)
    return body


def decode_find_coordinator(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    if v >= 1:
        out["message"] = r.string()
    out["node_id"] = r.i32()
    out["host"] = r.string()
    out["port"] = r.i32()
    r.done()
    return out


def join_group_body(v, group, member_id="", protocols=(), session_ms=30000, rebalance_ms=10000,
                    protocol_type="consumer", instance_id=None):
    """protocols = [(name, metadata bytes)]"""
    body = string(group) + i32(session_ms)
    if v >= 1:
        body += i32(rebalance_ms)
    body += string(member_id)
    if v >= 5:
        body += string(instance_id)
    body += string(protocol_type)
    body += array(list(protocols), lambda p: string(p[0]) + kbytes(p[1]))
    return body


def decode_join_group(r, v):
    out = {}
    if v >= 2:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    out["generation"] = r.i32()
    out["protocol"] = r.string()
    out["leader"] = r.string()
    out["member_id"] = r.string()

    def member(r):
        m = {"member_id": r.string()}
        if v >= 5:
            m["instance_id"] = r.string()
        m["metadata"] = r.kbytes()
        return m
    out["members"] = r.array(member)
    r.done()
    return out


def sync_group_body(v, group, generation, member_id, assignments=(), instance_id=None):
    """assignments = [(member_id, assignment bytes)]"""
    body = string(group) + i32(generation) + string(member_id)
    if v >= 3:
        body += string(instance_id)
    return body + array(list(assignments), lambda a: string(a[0]) + kbytes(a[1]))


def decode_sync_group(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    out["assignment"] = r.kbytes()
    r.done()
    return out


def heartbeat_body(v, group, generation, member_id, instance_id=None):
    body = string(group) + i32(generation) + string(member_id)
    if v >= 3:
        body += string(instance_id)
    return body


def decode_heartbeat(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    r.done()
    return out


def leave_group_body(v, group, member_id="", members=()):
    """v0-2: one member_id; v3: members = [(member_id, instance_id)]"""
    if v >= 3:
        return string(group) + array(list(members), lambda m: string(m[0]) + string(m[1]))
    return string(group) + string(member_id)


def decode_leave_group(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    if v >= 3:
        out["members"] = r.array(lambda r: {"member_id": r.string(), "instance_id": r.string(), "error": r.i16()})
    r.done()
    return out


def offset_commit_body(v, group, topics, generation=-1, member_id="", instance_id=None, retention_ms=-1,
                       commit_ts=-1):
    """topics = [(name, [(partition, offset, metadata[, leader_epoch])])]"""
    body = string(group)
    if v >= 1:
        body += i32(generation) + string(member_id)
    if v >= 7:
        body += string(instance_id)
    if 2 <= v <= 4:
        body += i64(retention_ms)

    def part(p):
        b = i32(p[0]) + i64(p[1])
        if v >= 6:
            b += i32(p[3] if len(p) > 3 else -1)
        if v == 1:
            b += i64(commit_ts)
        return b + string(p[2])
    return body + array(list(topics), lambda t: string(t[0]) + array(list(t[1]), part))


def decode_offset_commit(r, v):
    out = {}
    if v >= 3:
        out["throttle"] = r.i32()
    out["topics"] = r.array(lambda r: {"name": r.string(), "partitions": r.array(
        lambda r: {"index": r.i32(), "error": r.i16()})})
    r.done()
    return out


def offset_fetch_body(v, group, topics):
    """topics = [(name, [partition])] or None (all, v2+)"""
    return string(group) + array(None if topics is None else list(topics),
                                 lambda t: string(t[0]) + array(list(t[1]), i32))


def decode_offset_fetch(r, v):
    out = {}
    if v >= 3:
        out["throttle"] = r.i32()

    def part(r):
        p = {"index": r.i32(), "offset": r.i64()}
        if v >= 5:
            p["leader_epoch"] = r.i32()
        p["metadata"] = r.string()
        p["error"] = r.i16()
        return p
    out["topics"] = r.array(lambda r: {"name": r.string(), "partitions": r.array(part)})
    if v >= 2:
        out["error"] = r.i16()
    r.done()
    return out


def describe_groups_body(v, groups, include_ops=False):
    body = array(list(groups), string)
    if v >= 3:
        body += boolean(include_ops)
    return body


def decode_describe_groups(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()

    def member(r):
        m = {"member_id": r.string()}
        if v >= 4:
            m["instance_id"] = r.string()
        m["client_id"] = r.string()
        m["client_host"] = r.string()
        m["metadata"] = r.kbytes()
        m["assignment"] = r.kbytes()
        return m

    def group(r):
        g = {"error": r.i16(), "group_id": r.string(), "state": r.string(), "protocol_type": r.string(),
             "protocol": r.string(), "members": r.array(member)}
        if v >= 3:
            g["authorized_operations"] = r.i32()
        return g
    out["groups"] = r.array(group)
    r.done()
    return out


def decode_list_groups(r, v):
    out = {}
    if v >= 1:
        out["throttle"] = r.i32()
    out["error"] = r.i16()
    out["groups"] = r.array(lambda r: {"group_id": r.string(), "protocol_type": r.string()})
    r.done()
    return out


def delete_groups_body(v, groups):
    return array(list(groups), string)


def decode_delete_groups(r, v):
    out = {"throttle": r.i32(), "results": r.array(lambda r: {"group_id": r.string(), "error": r.i16()})}
    r.done()
    return out


def offset_delete_body(v, group, topics):
    """topics = [(name, [partition])]"""
    return string(group) + array(list(topics), lambda t: string(t[0]) + array(list(t[1]), i32))


def decode_offset_delete(r, v):
    out = {"error": r.i16(), "throttle": r.i32()}
    out["topics"] = r.array(lambda r: {"name": r.string(), "partitions": r.array(
        lambda r: {"index": r.i32(), "error": r.i16()})})
    r.done()
    return out

# ---------------------------------------------------------------- config and records admin

RESOURCE_TOPIC, RESOURCE_BROKER = 2, 4
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def alter_configs_body(v, resources, validate_only=False):
    """resources = [(type, name, [(config name, value or None)])]"""
    return array(list(resources), lambda res: i8(res[0]) + string(res[1]) + array(
        list(res[2]), lambda c: string(c[0]) + string(c[1]))) + boolean(validate_only)


def decode_alter_configs(r, v):
    out = {"throttle": r.i32(), "responses": r.array(
        lambda r: {"error": r.i16(), "message": r.string(), "type": r.i8(), "name": r.string()})}
    r.done()
    return out


def incremental_alter_configs_body(v, resources, validate_only=False):
    """resources = [(type, name, [(config name, op, value or None)])]; v1 is flexible."""
    if v >= 1:
        def cfg(c):
            return compact_string(c[0]) + i8(c[1]) + compact_string(c[2]) + tags()
        return compact_array(list(resources), lambda res: i8(res[0]) + compact_string(res[1]) + compact_array(
            list(res[2]), cfg) + tags()) + boolean(validate_only) + tags()
    return array(list(resources), lambda res: i8(res[0]) + string(res[1]) + array(
        list(res[2]), lambda c: string(c[0]) + i8(c[1]) + string(c[2]))) + boolean(validate_only)


def decode_incremental_alter_configs(r, v):
    if v >= 1:
        def res(r):
            x = {"error": r.i16(), "message": r.compact_string(), "type": r.i8(), "name": r.compact_string()}
            x["tags"] = r.tags()
            return x
        out = {"throttle": r.i32(), "responses": r.compact_array(res)}
        out["tags"] = r.tags()
    else:
        out = {"throttle": r.i32(), "responses": r.array(
            lambda r: {"error": r.i16(), "message": r.string(), "type": r.i8(), "name": r.string()})}
    r.done()
    return out


def delete_records_body(v, topics, timeout_ms=5000):
    """topics = [(name, [(partition, offset)])]"""
    return array(list(topics), lambda t: string(t[0]) + array(
        list(t[1]), lambda p: i32(p[0]) + i64(p[1]))) + i32(timeout_ms)


def decode_delete_records(r, v):
    out = {"throttle": r.i32(), "topics": r.array(lambda r: {"name": r.string(), "partitions": r.array(
        lambda r: {"index": r.i32(), "low_watermark": r.i64(), "error": r.i16()})})}
    r.done()
    return out

# ---------------------------------------------------------------- DescribeLogDirs
# Key 35; v2+ is flexible, v3 adds a top-level ErrorCode, v4 each log dir's
# TotalBytes and UsableBytes (message/DescribeLogDirs*.json).

API_DESCRIBE_LOG_DIRS = 35

FLEXIBLE_FROM.update({35: 2})


def describe_log_dirs_body(v, topics):
    """topics = None (every topic) or [(name, [partition])]"""
    if v >= 2:
        return compact_array(None if topics is None else list(topics), lambda t: compact_string(t[0]) + compact_array(
            list(t[1]), i32) + tags()) + tags()
    return array(None if topics is None else list(topics), lambda t: string(t[0]) + array(list(t[1]), i32))


def describe_log_dirs_response(v, dirs, error=0, throttle=0):
    """The exact body a broker should send.  dirs = [(error, path, [(topic,
    [(partition, size, offset_lag, is_future)])], total, usable)]."""
    flex = v >= 2
    arr, s, end = (compact_array, compact_string, tags()) if flex else (array, string, b"")

    def part(p):
        return i32(p[0]) + i64(p[1]) + i64(p[2]) + boolean(p[3]) + end

    def topic(t):
        return s(t[0]) + arr(list(t[1]), part) + end

    def result(d):
        out = i16(d[0]) + s(d[1]) + arr(list(d[2]), topic)
        if v >= 4:
            out += i64(d[3]) + i64(d[4])
        return out + end
    return i32(throttle) + (i16(error) if v >= 3 else b"") + arr(list(dirs), result) + end


def decode_describe_log_dirs(r, v):
    flex = v >= 2
    arr = r.compact_array if flex else r.array
    s = r.compact_string if flex else r.string

    def part(r):
        p = {"index": r.i32(), "size": r.i64(), "offset_lag": r.i64(), "is_future": r.boolean()}
        if flex:
            p["tags"] = r.tags()
        return p

    def topic(r):
        t = {"name": s(), "partitions": arr(part)}
        if flex:
            t["tags"] = r.tags()
        return t

    def result(r):
        d = {"error": r.i16(), "log_dir": s(), "topics": arr(topic)}
        if v >= 4:
            d["total_bytes"], d["usable_bytes"] = r.i64(), r.i64()
        if flex:
            d["tags"] = r.tags()
        return d
    out = {"throttle": r.i32()}
    if v >= 3:
        out["error"] = r.i16()
    out["results"] = arr(result)
    if flex:
        out["tags"] = r.tags()
    r.done()
    return out
