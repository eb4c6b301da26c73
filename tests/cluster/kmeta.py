"""A minimal Kafka Metadata (v1) request over a plain socket, so that each
broker can be asked on its own what it believes (brokers, controller,
partition leaders, replicas, ISR) without a client library's caching or
connection to other brokers.  Used for cluster readiness and for finding
partition leaders for the nemesis and the leader-change poller."""
import socket
import struct

API_METADATA = 3


class MetadataError(Exception):
    pass


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise MetadataError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


class _Reader:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.i:self.i + n].decode("utf-8", "replace")
        self.i += n
        return s

    def array(self, item):
        n = self.take(">i")
        return [] if n < 0 else [item() for _ in range(n)]


def encode_request(topics=None, correlation_id=1, client_id="shopstream-faults"):
    cid = client_id.encode()
    body = struct.pack(">hhih", API_METADATA, 1, correlation_id, len(cid)) + cid
    if topics is None:
        body += struct.pack(">i", -1)
    else:
        body += struct.pack(">i", len(topics))
        for t in topics:
            tb = t.encode()
            body += struct.pack(">h", len(tb)) + tb
    return struct.pack(">i", len(body)) + body


def decode_response(data, correlation_id=1):
    r = _Reader(data)
    if r.take(">i") != correlation_id:
        raise MetadataError("correlation id mismatch")

    def broker():
        node = r.take(">i")
        host = r.string()
        port = r.take(">i")
        r.string()  # rack
        return node, (host, port)

    brokers = dict(r.array(broker))
    controller = r.take(">i")

    def partition():
        err = r.take(">h")
        idx = r.take(">i")
        leader = r.take(">i")
        replicas = r.array(lambda: r.take(">i"))
        isr = r.array(lambda: r.take(">i"))
        return idx, {"error": err, "leader": leader, "replicas": replicas, "isr": isr}

    def topic():
        err = r.take(">h")
        name = r.string()
        internal = r.take(">?")
        parts = dict(r.array(partition))
        return name, {"error": err, "internal": internal, "partitions": parts}

    topics = dict(r.array(topic))
    return {"brokers": brokers, "controller": controller, "topics": topics}


def metadata(host, port, topics=None, timeout=1.0):
    """Metadata as seen by the broker at host:port: {"brokers": {id: (host,
    port)}, "controller": id, "topics": {name: {"error", "internal",
    "partitions": {p: {"error", "leader", "replicas", "isr"}}}}}.  Raises
    OSError or MetadataError."""
    with socket.create_connection((host, port), timeout) as s:
        s.settimeout(timeout)
        s.sendall(encode_request(topics))
        n = struct.unpack(">i", _recv_exact(s, 4))[0]
        if n < 4 or n > 64 << 20:
            raise MetadataError("bad response length %d" % n)
        return decode_response(_recv_exact(s, n))
