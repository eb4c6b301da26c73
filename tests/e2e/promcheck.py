#!/usr/bin/python3
"""promcheck.py: a strict validator of the Prometheus text exposition format
0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/), for
shopstream's /metrics.  promtool is not installed here, and it is lenient
where this is not: what Prometheus would accept but a careful exporter never
writes (a family split in two, a histogram whose +Inf bucket differs from
its _count, buckets out of order, an unknown escape, a reserved label name)
is an error.

    /usr/bin/python3 tests/e2e/promcheck.py [FILE | - | http://HOST:PORT/metrics]

prints "ok N samples" and exits 0, or prints "line N: reason" and exits 1
(2 when the input cannot be read).  As a module: check(text) returns the
samples and raises ValueError("line N: reason").

Rules checked:
- the input is UTF-8 and, unless empty, ends with a line feed;
- comments: "# HELP name text" (text escapes only \\\\ and \\n) and
  "# TYPE name counter|gauge|histogram|summary|untyped", at most one of
  each per family, TYPE before the family's first sample; other comments
  are ignored;
- samples: name{label="value",...} value [timestamp], metric names
  [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not starting
  with __ and not repeated, label values with the escapes \\\\, \\" and \\n
  only; values are floats (decimal or exponent notation, NaN, +Inf, -Inf),
  timestamps are int64 milliseconds;
- families: all the samples of a family (with its HELP and TYPE lines) are
  contiguous; no series (name and label set) appears twice; the sample names
  of a family match its type (counter and gauge: the name itself; histogram:
  _bucket with le, _sum, _count; summary: the name with quantile, _sum,
  _count); counters are not negative;
- histograms, per series: le values strictly increasing, ending with +Inf,
  counts non-decreasing, _count present and equal to the +Inf bucket, _sum
  present; summaries: quantiles in [0, 1], increasing.
"""
import collections
import math
import re
import sys
import urllib.error
import urllib.request

Sample = collections.namedtuple("Sample", "name labels value timestamp family type line")

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}
TIMESTAMP = re.compile(r"-?[0-9]+\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
BLANKS = " \t"


class _Family:
    def __init__(self, name):
        self.name = name
        self.type = None        # None: untyped without a TYPE line
        self.help = False
        self.samples = 0
        # histogram/summary series, by their labels without le/quantile
        self.series = collections.OrderedDict()


def _fail(line, reason):
    raise ValueError("line %d: %s" % (line, reason))


def parse_float(s):
    """A sample value or le bound as the format allows it, or None."""
    if s in SPECIAL:
        return SPECIAL[s]
    if FLOAT.match(s):
        return float(s)
    return None


def _unescape(s, i, line, quote):
    """Reads an escaped text from s[i:] up to a closing quote (label values)
    or the end (HELP).  Returns (text, index after it)."""
    out = []
    allowed = {"\\": "\\", "n": "\n"}
    if quote:
        allowed['"'] = '"'
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                _fail(line, "a backslash at the end of the line")
            e = s[i + 1]
            if e not in allowed:
                _fail(line, "invalid escape \\%s" % e)
            out.append(allowed[e])
            i += 2
            continue
        if quote and c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    if quote:
        _fail(line, "unterminated label value")
    return "".join(out), i


def _skip_blanks(s, i):
    while i < len(s) and s[i] in BLANKS:
        i += 1
    return i


def _parse_sample(s, line):
    """name, {label: value}, value, timestamp of a sample line."""
    m = METRIC_NAME.match(s)
    if not m:
        _fail(line, "expected a metric name, got %r" % s[:40])
    name = m.group(0)
    i = _skip_blanks(s, m.end())
    labels = collections.OrderedDict()
    if i < len(s) and s[i] == "{":
        i = _skip_blanks(s, i + 1)
        while True:
            if i < len(s) and s[i] == "}":
                i += 1
                break
            lm = LABEL_NAME.match(s, i)
            if not lm:
                _fail(line, "expected a label name or }, got %r" % s[i:i + 20])
            lname = lm.group(0)
            if lname.startswith("__"):
                _fail(line, "label name %s is reserved (starts with __)" % lname)
            if lname in labels:
                _fail(line, "label %s repeated" % lname)
            i = _skip_blanks(s, lm.end())
            if i >= len(s) or s[i] != "=":
                _fail(line, "expected = after label %s" % lname)
            i = _skip_blanks(s, i + 1)
            if i >= len(s) or s[i] != '"':
                _fail(line, "expected a quoted value for label %s" % lname)
            labels[lname], i = _unescape(s, i + 1, line, True)
            i = _skip_blanks(s, i)
            if i < len(s) and s[i] == ",":
                i = _skip_blanks(s, i + 1)
            elif i >= len(s) or s[i] != "}":
                _fail(line, "expected , or } after label %s" % lname)
        if i >= len(s) or s[i] not in BLANKS:
            _fail(line, "expected a blank before the value")
    elif i == len(s):
        _fail(line, "no value")
    elif i == m.end():
        _fail(line, "expected a blank or { after the metric name")
    rest = s[i:].strip(BLANKS)
    if not rest:
        _fail(line, "no value")
    fields = re.split(r"[ \t]+", rest)
    if len(fields) > 2:
        _fail(line, "unexpected text after the timestamp: %r" % fields[2])
    value = parse_float(fields[0])
    if value is None:
        _fail(line, "invalid value %r" % fields[0])
    ts = None
    if len(fields) == 2:
        if not TIMESTAMP.match(fields[1]):
            _fail(line, "invalid timestamp %r" % fields[1])
        ts = int(fields[1])
        if not -(1 << 63) <= ts < (1 << 63):
            _fail(line, "timestamp out of int64 range")
    return name, labels, value, ts


def _check_series_end(fam, line):
    """Histogram and summary consistency once a family is complete."""
    for key, st in fam.series.items():
        where = "%s{%s}" % (fam.name, ",".join('%s="%s"' % kv for kv in key))
        if fam.type == "histogram":
            if not st["buckets"]:
                _fail(st["line"], "histogram %s has no buckets" % where)
            if st["buckets"][-1][0] != math.inf:
                _fail(st["line"], "histogram %s has no +Inf bucket" % where)
            if st["count"] is None:
                _fail(st["line"], "histogram %s has no _count" % where)
            if st["sum"] is None:
                _fail(st["line"], "histogram %s has no _sum" % where)
            if st["buckets"][-1][1] != st["count"]:
                _fail(st["line"], "histogram %s: +Inf bucket %s differs from _count %s"
                      % (where, st["buckets"][-1][1], st["count"]))
        elif fam.type == "summary":
            if st["count"] is None or st["sum"] is None:
                _fail(st["line"], "summary %s needs _sum and _count" % where)


def check(text):
    """Validates an exposition; returns its samples (a list of Sample) or
    raises ValueError("line N: reason")."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            line = bytes(text)[:e.start].count(b"\n") + 1
            _fail(line, "not UTF-8: %s" % e.reason)
    if text and not text.endswith("\n"):
        _fail(text.count("\n") + 1, "the last line does not end with a line feed")
    families = {}        # name -> _Family, every family seen
    done = set()         # families whose block has ended
    current = None       # the family whose block is open
    seen = set()         # (sample name, frozenset(labels)) already written
    samples = []

    def enter(fam, line):
        nonlocal current
        if current is fam:
            return
        if fam.name in done:
            _fail(line, "family %s appears again after other families (its samples must be together)" % fam.name)
        if current is not None:
            _check_series_end(current, line)
            done.add(current.name)
        current = fam

    def family_for_meta(name, line):
        fam = families.get(name)
        if fam is None:
            for other in families.values():
                if _names_clash(other, name):
                    _fail(line, "%s clashes with the samples of %s %s" % (name, other.type, other.name))
            fam = families[name] = _Family(name)
        enter(fam, line)
        return fam

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, raw in enumerate(lines, 1):
        s = raw.lstrip(BLANKS)
        if s == "":
            continue
        if s.startswith("#"):
            rest = s[1:]
            toks = rest.lstrip(BLANKS)
            if toks == rest and rest:   # "#HELP": not a HELP line, a comment
                continue
            kw = re.match(r"(HELP|TYPE)(?:[ \t]+|\Z)", toks)
            if not kw:
                continue
            body = toks[kw.end():]
            m = METRIC_NAME.match(body)
            if not m:
                _fail(n, "%s without a valid metric name" % kw.group(1))
            name = m.group(0)
            after = body[m.end():]
            if after and after[0] not in BLANKS:
                _fail(n, "invalid metric name %r" % (name + after.split()[0]))
            fam = family_for_meta(name, n)
            if kw.group(1) == "HELP":
                if fam.help:
                    _fail(n, "a second HELP line for %s" % name)
                fam.help = True
                _unescape(after[1:] if after else "", 0, n, False)
            else:
                t = after.strip(BLANKS)
                if t not in TYPES:
                    _fail(n, "unknown type %r for %s" % (t, name))
                if fam.type is not None:
                    _fail(n, "a second TYPE line for %s" % name)
                if fam.samples:
                    _fail(n, "TYPE line for %s after its samples" % name)
                fam.type = t
                for other in families.values():
                    if other is not fam and _names_clash(fam, other.name):
                        _fail(n, "%s %s clashes with the family %s" % (t, name, other.name))
            continue

        name, labels, value, ts = _parse_sample(s, n)
        fam, suffix = _resolve(families, current, name)
        if fam is None:
            for other in families.values():
                if _names_clash(other, name):
                    _fail(n, "sample %s clashes with %s %s" % (name, other.type, other.name))
            fam = families[name] = _Family(name)
            suffix = ""
        enter(fam, n)
        ftype = fam.type or "untyped"
        key = (name, frozenset(labels.items()))
        if key in seen:
            _fail(n, "duplicate series %s%s" % (name, _fmt_labels(labels)))
        seen.add(key)
        fam.samples += 1
        samples.append(Sample(name, dict(labels), value, ts, fam.name, ftype, n))

        if ftype in ("counter", "gauge", "untyped"):
            if suffix:
                _fail(n, "sample %s does not belong to %s %s" % (name, ftype, fam.name))
            if ftype == "counter" and value < 0:
                _fail(n, "counter %s is negative" % name)
            continue
        special = "le" if ftype == "histogram" else "quantile"
        base = tuple(sorted((k, v) for k, v in labels.items() if not (suffix in ("_bucket", "") and k == special)))
        st = fam.series.setdefault(base, {"buckets": [], "count": None, "sum": None, "line": n})
        if suffix == "_sum":
            if special in labels:
                _fail(n, "%s has a %s label" % (name, special))
            st["sum"] = value
        elif suffix == "_count":
            if special in labels:
                _fail(n, "%s has a %s label" % (name, special))
            if value < 0 or value != math.floor(value):
                _fail(n, "%s is not a count: %s" % (name, value))
            st["count"] = value
        elif ftype == "histogram":
            if suffix != "_bucket":
                _fail(n, "histogram %s has a sample without _bucket, _sum or _count" % fam.name)
            if "le" not in labels:
                _fail(n, "bucket of %s without an le label" % fam.name)
            le = parse_float(labels["le"])
            if le is None or math.isnan(le):
                _fail(n, "invalid le %r" % labels["le"])
            if st["count"] is not None:
                _fail(n, "bucket of %s after its _count" % fam.name)
            if value < 0 or math.isnan(value):
                _fail(n, "bucket count %s is not a count" % value)
            if st["buckets"]:
                ple, pv = st["buckets"][-1]
                if le <= ple:
                    _fail(n, "le %s after le %s: buckets must be in increasing order" % (labels["le"], ple))
                if value < pv:
                    _fail(n, "bucket le=%s has %s, less than the bucket before (%s): not cumulative"
                          % (labels["le"], value, pv))
            st["buckets"].append((le, value))
        else:  # summary quantile
            if suffix != "" or "quantile" not in labels:
                _fail(n, "summary %s sample without a quantile label" % fam.name)
            q = parse_float(labels["quantile"])
            if q is None or not 0 <= q <= 1:
                _fail(n, "invalid quantile %r" % labels["quantile"])
            if st["buckets"] and q <= st["buckets"][-1][0]:
                _fail(n, "quantiles of %s must be in increasing order" % fam.name)
            st["buckets"].append((q, value))
    if current is not None:
        _check_series_end(current, len(lines))
    return samples


def _fmt_labels(labels):
    if not labels:
        return ""
    return "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"


def _resolve(families, current, name):
    """The family a sample name belongs to and the suffix it carries."""
    fam = families.get(name)
    if fam is not None:
        return fam, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = families.get(name[: -len(suffix)])
            if base is not None and base.type in ("histogram", "summary"):
                if suffix == "_bucket" and base.type != "histogram":
                    return None, ""
                return base, suffix
    return None, ""


def _names_clash(fam, name):
    """Whether a new family or sample called name would collide with the
    sample names of fam (x_bucket, x_sum, x_count of a histogram x)."""
    if fam.type == "histogram":
        return name in (fam.name + "_bucket", fam.name + "_sum", fam.name + "_count")
    if fam.type == "summary":
        return name in (fam.name + "_sum", fam.name + "_count")
    return False


def _read(src):
    if src == "-":
        return sys.stdin.buffer.read()
    if src.startswith(("http://", "https://")):
        with urllib.request.urlopen(src, timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            body = r.read()
        parts = [p.strip() for p in ctype.split(";")]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if parts[0] != "text/plain" or params.get("version", "0.0.4") != "0.0.4" or \
                params.get("charset", "utf-8").lower() != "utf-8":
            raise ValueError("line 0: Content-Type %r is not text/plain; version=0.0.4; charset=utf-8" % ctype)
        return body
    with open(src, "rb") as f:
        return f.read()


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print("usage: promcheck.py [FILE | - | http://HOST:PORT/metrics]", file=sys.stderr)
        return 2
    src = argv[1] if len(argv) == 2 else "-"
    try:
        data = _read(src)
    except (OSError, urllib.error.URLError) as e:
        print("promcheck: cannot read %s: %s" % (src, e), file=sys.stderr)
        return 2
    except ValueError as e:
        print(e)
        return 1
    try:
        samples = check(data)
    except ValueError as e:
        print(e)
        return 1
    print("ok %d samples" % len(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
