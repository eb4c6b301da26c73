"""Shared parts of the Python real-client round-trip tests.

Record i of a run is fully determined by (client, codec, i, base_ts):
  key       b"key-%06d" % i                      (distinct keys -> spread over partitions)
  value     b"<client>|<codec>|%06d|payload-..." (about 50 bytes, embeds the sequence number)
  headers   [("seq", b"<i>")] plus ("trace", b"t-%06d") when i % 3 == 0
  timestamp base_ts + i + (i % 7) * 1000         (explicit CreateTime, deliberately not
                                                  monotonic inside a batch)
The producer's delivery reports give (partition, offset) per record; the
consumer must then return, for each partition, exactly those records in offset
order with the same key, value, headers and timestamp.
"""
import os
import sys
import time

PARTITIONS = 4
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_REPORTED = 20
HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"


def ensure_system_python(modules):
    """Re-exec under Debian's /usr/bin/python3 if `modules` are not importable
    here (the python3 first on PATH may be a pyenv shim without them)."""
    try:
        for m in modules:
            __import__(m)
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and os.path.exists(SYSTEM_PYTHON):
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
        raise


def bootstrap_or_reexec():
    """Return the broker address: argv[1] or $SHOPSTREAM_TEST_BOOTSTRAP.  With
    neither, re-run this script under with_broker.sh, which starts a fresh
    broker and sets SHOPSTREAM_TEST_BOOTSTRAP."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    env = os.environ.get("SHOPSTREAM_TEST_BOOTSTRAP")
    if env:
        return env
    wrapper = os.path.join(HERE, "with_broker.sh")
    os.execv("/bin/bash", ["bash", wrapper, sys.executable, os.path.abspath(sys.argv[0])])
    return None  # not reached


def settings():
    codecs = os.environ.get("SHOPSTREAM_TEST_CODECS", "").replace(",", " ").split() or list(CODECS)
    n = int(os.environ.get("SHOPSTREAM_TEST_RECORDS", "") or 100000)
    skip_create = os.environ.get("SHOPSTREAM_TEST_SKIP_CREATE") == "1"
    return codecs, n, skip_create


def run_id():
    return "%d-%d" % (os.getpid(), int(time.time()))


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Records:
    """Expected records of one (client, codec) run plus the delivery state."""

    def __init__(self, client, codec, n):
        self.client, self.codec, self.n = client, codec, n
        # An hour ago, whole seconds: clearly not the broker's clock.
        self.base_ts = (int(time.time() * 1000) - 3600 * 1000) // 1000 * 1000
        prefix = b"%s|%s|" % (client.encode(), codec.encode())
        self.keys = [b"key-%06d" % i for i in range(n)]
        self.values = [prefix + b"%06d|payload-abcdefghijklmnopqrstuvwxyz" % i for i in range(n)]
        self.headers = [[("seq", b"%d" % i), ("trace", b"t-%06d" % i)] if i % 3 == 0 else [("seq", b"%d" % i)]
                        for i in range(n)]
        self.timestamps = [self.base_ts + i + (i % 7) * 1000 for i in range(n)]
        self.partition = [None] * n
        self.offset = [None] * n
        self.errors = []
        self.expected = None  # per partition: sequence numbers in offset order
        self.pos = None
        self.extra = 0

    def error(self, msg):
        self.errors.append(msg)
        if len(self.errors) <= MAX_REPORTED:
            print("  MISMATCH %s/%s: %s" % (self.client, self.codec, msg), file=sys.stderr, flush=True)

    def delivered(self, i, partition, offset):
        self.partition[i] = partition
        self.offset[i] = offset

    def seq_of_key(self, key):
        try:
            return int(key[4:])
        except (TypeError, ValueError):
            return -1

    def finish_produce(self):
        """Check the delivery reports and build the per-partition expectation.
        Returns False when records were not delivered."""
        missing = [i for i in range(self.n) if self.partition[i] is None or self.offset[i] is None
                   or self.offset[i] < 0]
        if missing:
            self.error("%d records without a successful delivery report (first #%d)" % (len(missing), missing[0]))
            return False
        self.expected = [[] for _ in range(PARTITIONS)]
        for i in range(self.n):
            p = self.partition[i]
            if not 0 <= p < PARTITIONS:
                self.error("record #%d delivered to partition %d" % (i, p))
                return False
            self.expected[p].append(i)
        for p, seqs in enumerate(self.expected):
            if not seqs:
                self.error("partition %d received no records: keys are not spread" % p)
            seqs.sort(key=lambda i: self.offset[i])
            for a, b in zip(seqs, seqs[1:]):
                if self.offset[a] == self.offset[b]:
                    self.error("partition %d: #%d and #%d both reported at offset %d" % (p, a, b, self.offset[a]))
                elif b < a:
                    self.error("partition %d: produce order not kept: #%d at offset %d after #%d"
                               % (p, b, self.offset[b], a))
        self.pos = [0] * PARTITIONS
        return not self.errors

    def check(self, partition, offset, key, value, headers, timestamp, create_time=True):
        """Check one consumed record against the next expected one of its
        partition.  headers: list of (str name, bytes value)."""
        if not 0 <= partition < PARTITIONS:
            self.error("record from partition %d" % partition)
            return
        exp = self.expected[partition]
        j = self.pos[partition]
        if j >= len(exp):
            self.extra += 1
            self.error("partition %d: extra record at offset %d key %r (all %d expected already consumed)"
                       % (partition, offset, key, len(exp)))
            return
        self.pos[partition] = j + 1
        i = exp[j]
        where = "partition %d offset %d" % (partition, offset)
        if offset != self.offset[i]:
            self.error("%s: expected offset %d (record #%d) at index %d" % (where, self.offset[i], i, j))
            return
        if key != self.keys[i] or value != self.values[i]:
            self.error("%s: key %r value %r, expected key %r value %r" % (where, key, value, self.keys[i],
                                                                          self.values[i]))
            return
        if list(headers or []) != self.headers[i]:
            self.error("%s: headers %r, expected %r" % (where, headers, self.headers[i]))
        if timestamp != self.timestamps[i] or not create_time:
            self.error("%s: timestamp %r (CreateTime: %s), expected CreateTime %d"
                       % (where, timestamp, create_time, self.timestamps[i]))

    def partition_done(self, p):
        return self.pos[p] >= len(self.expected[p])

    def all_done(self):
        return all(self.partition_done(p) for p in range(PARTITIONS))

    def consumed(self):
        return sum(self.pos)

    def finish_consume(self):
        for p in range(PARTITIONS):
            if self.pos[p] != len(self.expected[p]):
                self.error("partition %d: consumed %d of %d records" % (p, self.pos[p], len(self.expected[p])))
        return not self.errors

    def summary(self):
        return "per partition %s" % [len(e) for e in self.expected] if self.expected else ""


def run_codecs(client, prefix, bootstrap, create_topic, produce, consume):
    """The round trip of one client over every codec of settings(): for each,
    a fresh topic "<prefix>-<codec>-<run id>", create (unless skipped),
    produce, consume and verify; one line per codec.  Returns the exit code."""
    codecs, n, skip_create = settings()
    rid = run_id()
    failed = []
    for codec in codecs:
        topic = "%s-%s-%s" % (prefix, codec, rid)
        recs = Records(client, codec, n)
        t0 = time.time()
        ok = False
        try:
            if not skip_create:
                create_topic(bootstrap, topic)
            t1 = time.time()
            if produce(bootstrap, topic, codec, recs):
                t2 = time.time()
                ok = consume(bootstrap, topic, recs)
                t3 = time.time()
        except Exception as e:  # report and go on with the next codec
            recs.error("%s: %s" % (type(e).__name__, e))
            ok = False
        if ok:
            print("ok   %s/%s: topic %s, %s, create %.1fs produce %.1fs consume+verify %.1fs"
                  % (client, codec, topic, recs.summary(), t1 - t0, t2 - t1, t3 - t2), flush=True)
        else:
            print("FAIL %s/%s: topic %s, %d mismatches" % (client, codec, topic, len(recs.errors)), flush=True)
            failed.append(codec)
    if failed:
        print("%s: FAILED (%s)" % (client, " ".join(failed)))
        return 1
    print("%s: all codecs passed" % client)
    return 0
