#!/usr/bin/env python3
"""Generate the Kafka message codecs (src/protocol/kmsg.h, kmsg.c) from
Apache Kafka's JSON message specs.

Usage: tools/gen_protocol.py [SPEC_DIR] [OUT_DIR]
  SPEC_DIR defaults to ../shared/kafka-protocol/message
  OUT_DIR  defaults to src/protocol

The output is committed, so a build never runs this script.  Each API in
APIS gets, for both its request and its response:
  struct <Name>                       every field of every version
  void <Name>_init(struct <Name> *)   sets the spec's defaults
  int  <Name>_decode(struct kread *, struct arena *, int16_t v, struct <Name> *)
  void <Name>_encode(struct obuf *, int16_t v, const struct <Name> *)
Field names are Kafka's own, so code can be checked against the spec by grep.
The primitive readers and writers live in src/protocol/kwire.h.
"""
import json
import os
import re
import sys

# The APIs shopstream's broker and tools speak.  The broker advertises its own
# ranges (src/broker/api_versions.c); these are what the codec can handle.
APIS = [
    "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch",
    "FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
    "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
    "DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
    "DescribeConfigs", "AlterConfigs", "DescribeLogDirs", "SaslAuthenticate", "CreatePartitions",
    "DeleteGroups", "IncrementalAlterConfigs", "OffsetDelete", "AlterPartition", "DescribeCluster",
    "BrokerRegistration", "BrokerHeartbeat", "AlterPartitionReassignments", "ListPartitionReassignments",
    "UnregisterBroker",
]

MAXV = 0x7fff


def parse_versions(s):
    """'3+' -> (3, MAXV); '0-2' -> (0, 2); '5' -> (5, 5); 'none' -> None."""
    if s is None or s == "none":
        return None
    if s.endswith("+"):
        return (int(s[:-1]), MAXV)
    if "-" in s:
        a, b = s.split("-")
        return (int(a), int(b))
    return (int(s), int(s))


def load(path):
    with open(path) as f:
        text = "\n".join(l for l in f if not l.strip().startswith("//"))
    return json.loads(text)


SCALARS = {
    "bool": ("bool", 1), "int8": ("int8_t", 1), "int16": ("int16_t", 2),
    "int32": ("int32_t", 4), "int64": ("int64_t", 8), "uint16": ("uint16_t", 2),
    "uint32": ("uint32_t", 4), "float64": ("double", 8), "uuid": ("kuuid", 16),
}
VARLEN = {"string": "kstr", "bytes": "kbytes", "records": "krecords"}


class Field:
    def __init__(self, msg, j, prefix):
        self.name = j["name"]
        t = j["type"]
        self.is_array = t.startswith("[]")
        self.base = t[2:] if self.is_array else t
        self.versions = parse_versions(j.get("versions"))
        self.nullable = parse_versions(j.get("nullableVersions"))
        self.tagged = parse_versions(j.get("taggedVersions"))
        self.tag = None if j.get("tag") is None else int(j.get("tag"))
        self.flex_override = parse_versions(j.get("flexibleVersions")) if "flexibleVersions" in j else False
        self.default = j.get("default")
        self.struct = None
        if self.base not in SCALARS and self.base not in VARLEN:
            if "fields" in j:
                self.struct = Struct(msg, prefix + "_" + self.base, j["fields"])
                msg.structs_by_name[self.base] = self.struct
            else:
                self.struct_ref = self.base  # a commonStruct, resolved later

    def present(self, v):
        return self.versions is not None and self.versions[0] <= v <= self.versions[1]

    def is_tagged(self, v):
        return self.tagged is not None and self.tagged[0] <= v <= self.tagged[1]


class Struct:
    def __init__(self, msg, cname, fields):
        self.cname = cname
        self.msg = msg
        self.fields = [Field(msg, f, msg.name) for f in fields]
        msg.structs.append(self)


class Message:
    def __init__(self, j):
        self.name = j["name"]
        self.api_key = j.get("apiKey")
        self.valid = parse_versions(j["validVersions"])
        self.flex = parse_versions(j["flexibleVersions"])
        self.structs = []
        self.structs_by_name = {}
        for cs in j.get("commonStructs", []):
            self.structs_by_name[cs["name"]] = Struct(self, self.name + "_" + cs["name"], cs["fields"])
        self.top = Struct(self, self.name, j["fields"])
        for s in self.structs:
            for f in s.fields:
                if f.struct is None and hasattr(f, "struct_ref"):
                    f.struct = self.structs_by_name[f.struct_ref]


def ctype(f):
    if f.struct:
        el = "struct " + f.struct.cname
    elif f.base in SCALARS:
        el = SCALARS[f.base][0]
    else:
        el = VARLEN[f.base]
    return el


def vcond(rng, var="v"):
    """A C condition for 'v in rng'; None means always."""
    lo, hi = rng
    if lo == 0 and hi == MAXV:
        return None
    if hi == MAXV:
        return "%s >= %d" % (var, lo)
    if lo == hi:
        return "%s == %d" % (var, lo)
    if lo == 0:
        return "%s <= %d" % (var, hi)
    return "(%s >= %d && %s <= %d)" % (var, lo, var, hi)


def vexpr(rng, var="v"):
    if rng is None:
        return "0"
    c = vcond(rng, var)
    return "1" if c is None else c


def flex_expr(msg, f=None):
    if f is not None and f.flex_override is not False:
        return vexpr(f.flex_override)
    return vexpr(msg.flex)


def default_value(f):
    d = f.default
    if f.is_array:
        return None
    if f.base == "bool":
        return "1" if d == "true" else "0"
    if f.base in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        if d is None:
            return "0"
        return str(int(str(d), 0)) + ("LL" if f.base == "int64" else "")
    if f.base == "float64":
        return d if d else "0"
    if f.base == "string":
        if d == "null":
            return "null"
        return None if not d else d
    return None


def min_size(struct, v, msg):
    n = 0
    flex = msg.flex is not None and msg.flex[0] <= v <= msg.flex[1]
    for f in struct.fields:
        if not f.present(v) or f.is_tagged(v):
            continue
        if f.is_array:
            n += 1 if flex else 4
        elif f.struct:
            n += min_size(f.struct, v, msg)
        elif f.base in SCALARS:
            n += SCALARS[f.base][1]
        elif f.base == "string":
            n += 1 if flex else 2
        else:
            n += 1 if flex else 4
    if flex:
        n += 1
    return n


def struct_min(struct, msg):
    lo, hi = msg.valid
    return max(1, min(min_size(struct, v, msg) for v in range(lo, hi + 1)))


class Gen:
    def __init__(self):
        self.h = []
        self.c = []

    def emit_struct_decl(self, s):
        self.h.append("struct %s {" % s.cname)
        for f in s.fields:
            t = ctype(f)
            if f.is_array:
                self.h.append("    struct { int32_t count; %s *items; } %s;" % (t, f.name))
            else:
                self.h.append("    %s %s;" % (t, f.name))
            if f.tagged is not None and f.struct and not f.is_array:
                self.h.append("    bool has_%s; /* tagged: written only when set */" % f.name)
        if not s.fields:
            self.h.append("    char unused_;")
        self.h.append("};")
        self.h.append("")

    # ---- init -------------------------------------------------------------
    def emit_init(self, s, static):
        c = self.c
        c.append("%svoid %s_init(struct %s *m)" % ("static " if static else "", s.cname, s.cname))
        c.append("{")
        c.append("    memset(m, 0, sizeof *m);")
        for f in s.fields:
            if f.is_array:
                if f.default == "null":
                    c.append("    m->%s.count = -1;" % f.name)
                continue
            if f.struct:
                c.append("    %s_init(&m->%s);" % (f.struct.cname, f.name))
                continue
            if f.base in ("string", "bytes", "records"):
                dv = default_value(f) if f.base == "string" else None
                if dv == "null" or (f.base != "string" and f.default == "null"):
                    c.append("    m->%s.len = -1;" % f.name)
                elif dv:
                    c.append('    m->%s.ptr = "%s"; m->%s.len = %d;' % (f.name, dv, f.name, len(dv)))
                if f.base == "records":
                    c.append("    m->%s.fd = -1;" % f.name)
                continue
            if f.base == "uuid":
                continue
            dv = default_value(f)
            if dv not in (None, "0", "0LL"):
                c.append("    m->%s = %s;" % (f.name, dv))
        c.append("}")
        c.append("")

    # ---- decode -----------------------------------------------------------
    def dec_value(self, msg, f, lhs, ind, nullable):
        c = self.c
        fl = flex_expr(msg, f)
        if f.struct:
            c.append(ind + "if (%s_decode_(r, a, v, &%s) < 0) return -1;" % (f.struct.cname, lhs))
        elif f.base in SCALARS:
            c.append(ind + "%s = kr_%s(r);" % (lhs, f.base))
        elif f.base == "string":
            c.append(ind + "%s = kr_str(r, %s, %s);" % (lhs, fl, nullable))
        elif f.base == "bytes":
            c.append(ind + "%s = kr_bytes(r, %s, %s);" % (lhs, fl, nullable))
        else:
            c.append(ind + "%s = kr_records(r, %s, %s);" % (lhs, fl, nullable))

    def dec_field(self, msg, f, ind):
        c = self.c
        nullable = vexpr(f.nullable)
        lhs = "m->" + f.name
        if f.is_array:
            mn = struct_min(f.struct, msg) if f.struct else (
                SCALARS[f.base][1] if f.base in SCALARS else 1)
            c.append(ind + "{")
            c.append(ind + "    int32_t n = kr_array_len(r, %s, %s, %d);" % (flex_expr(msg, f), nullable, mn))
            c.append(ind + "    if (r->err) return -1;")
            c.append(ind + "    %s.count = n;" % lhs)
            c.append(ind + "    %s.items = n > 0 ? arena_alloc(a, (size_t)n * sizeof *%s.items) : NULL;" % (lhs, lhs))
            c.append(ind + "    if (n > 0 && !%s.items) { r->err = KR_ENOMEM; return -1; }" % lhs)
            c.append(ind + "    for (int32_t i = 0; i < n; i++) {")
            if f.struct:
                c.append(ind + "        %s_init(&%s.items[i]);" % (f.struct.cname, lhs))
            self.dec_value(msg, f, "%s.items[i]" % lhs, ind + "        ", "0")
            c.append(ind + "        if (r->err) return -1;")
            c.append(ind + "    }")
            c.append(ind + "}")
        else:
            self.dec_value(msg, f, lhs, ind, nullable)

    def emit_decode(self, msg, s):
        c = self.c
        for f in s.fields:
            if f.tagged is None:
                continue
            # a tagged field's value decodes from its own sub-reader
            c.append("static int %s_tag%d_(struct kread *r, struct arena *a, int16_t v, struct %s *m)" % (s.cname, f.tag, s.cname))
            c.append("{")
            c.append("    (void)a; (void)v;")
            self.dec_field(msg, f, "    ")
            if f.struct and not f.is_array:
                c.append("    m->has_%s = 1;" % f.name)
            c.append("    return r->err ? -1 : 0;")
            c.append("}")
            c.append("")
        c.append("static int %s_decode_(struct kread *r, struct arena *a, int16_t v, struct %s *m)" % (s.cname, s.cname))
        c.append("{")
        c.append("    (void)a; (void)v; (void)m;")
        for f in s.fields:
            if f.versions is None:
                continue
            conds = [x for x in (vcond(f.versions),) if x]
            if f.tagged is not None:
                # a field tagged in some versions is read in place only where it is not tagged
                if f.tagged[0] <= f.versions[0] and f.tagged[1] >= f.versions[1]:
                    continue
                conds.append("!(%s)" % vexpr(f.tagged))
            if conds:
                c.append("    if (%s) {" % " && ".join(conds))
                self.dec_field(msg, f, "        ")
                c.append("    }")
            else:
                self.dec_field(msg, f, "    ")
        tagged = [f for f in s.fields if f.tagged is not None]
        c.append("    if (%s) {" % flex_expr(msg))
        c.append("        int32_t ntags = kr_tag_count(r);")
        c.append("        for (int32_t t = 0; t < ntags && !r->err; t++) {")
        c.append("            uint32_t tag = kr_uvarint(r);")
        c.append("            uint32_t size = kr_uvarint(r);")
        c.append("            struct kread sub;")
        c.append("            if (kr_sub(r, size, &sub) < 0) return -1;")
        if tagged:
            c.append("            switch (tag) {")
            for f in tagged:
                c.append("            case %d:" % f.tag)
                c.append("                if ((%s) && %s_tag%d_(&sub, a, v, m) < 0) {" % (vexpr(f.tagged), s.cname, f.tag))
                c.append("                    r->err = sub.err ? sub.err : KR_EINVAL;")
                c.append("                    return -1;")
                c.append("                }")
                c.append("                break;")
            c.append("            default: break;")
            c.append("            }")
        else:
            c.append("            (void)tag;")
        c.append("        }")
        c.append("    }")
        c.append("    return r->err ? -1 : 0;")
        c.append("}")
        c.append("")

    # ---- encode -----------------------------------------------------------
    def enc_value(self, msg, f, rhs, ind, nullable):
        c = self.c
        fl = flex_expr(msg, f)
        if f.struct:
            c.append(ind + "%s_encode_(w, v, &%s);" % (f.struct.cname, rhs))
        elif f.base in SCALARS:
            c.append(ind + "kw_%s(w, %s);" % (f.base, rhs))
        elif f.base == "string":
            c.append(ind + "kw_str(w, %s, %s, %s);" % (rhs, fl, nullable))
        elif f.base == "bytes":
            c.append(ind + "kw_bytes(w, %s, %s, %s);" % (rhs, fl, nullable))
        else:
            c.append(ind + "kw_records(w, &%s, %s, %s);" % (rhs, fl, nullable))

    def enc_field(self, msg, f, ind):
        c = self.c
        nullable = vexpr(f.nullable)
        rhs = "m->" + f.name
        if f.is_array:
            c.append(ind + "kw_array_len(w, %s.count, %s, %s);" % (rhs, flex_expr(msg, f), nullable))
            c.append(ind + "for (int32_t i = 0; i < %s.count; i++) {" % rhs)
            self.enc_value(msg, f, "%s.items[i]" % rhs, ind + "    ", "0")
            c.append(ind + "}")
        else:
            self.enc_value(msg, f, rhs, ind, nullable)

    def tag_present(self, f):
        """C expression: should this tagged field be written (it differs from its default)?"""
        rhs = "m->" + f.name
        if f.is_array:
            return "%s.count > 0" % rhs
        if f.struct:
            return "m->has_%s" % f.name
        if f.base in ("string", "bytes"):
            dv = default_value(f) if f.base == "string" else None
            if dv == "null" or f.default == "null":
                return "%s.len >= 0" % rhs
            return "%s.len > 0" % rhs
        if f.base == "uuid":
            return "!kuuid_is_zero(&%s)" % rhs
        return "%s != %s" % (rhs, default_value(f))

    def emit_encode(self, msg, s):
        c = self.c
        c.append("static void %s_encode_(struct obuf *w, int16_t v, const struct %s *m)" % (s.cname, s.cname))
        c.append("{")
        c.append("    (void)w; (void)v; (void)m;")
        for f in s.fields:
            if f.versions is None:
                continue
            conds = [x for x in (vcond(f.versions),) if x]
            if f.tagged is not None:
                # a field tagged in some versions is read in place only where it is not tagged
                if f.tagged[0] <= f.versions[0] and f.tagged[1] >= f.versions[1]:
                    continue
                conds.append("!(%s)" % vexpr(f.tagged))
            if conds:
                c.append("    if (%s) {" % " && ".join(conds))
                self.enc_field(msg, f, "        ")
                c.append("    }")
            else:
                self.enc_field(msg, f, "    ")
        tagged = sorted([f for f in s.fields if f.tagged is not None], key=lambda f: f.tag)
        c.append("    if (%s) {" % flex_expr(msg))
        if not tagged:
            c.append("        kw_uvarint(w, 0);")
        else:
            c.append("        uint32_t ntags = 0;")
            for f in tagged:
                c.append("        if ((%s) && %s) ntags++;" % (vexpr(f.tagged), self.tag_present(f)))
            c.append("        kw_uvarint(w, ntags);")
            for f in tagged:
                c.append("        if ((%s) && %s) {" % (vexpr(f.tagged), self.tag_present(f)))
                c.append("            size_t mark = kw_tag_begin(w, %d);" % f.tag)
                self.enc_field(msg, f, "            ")
                c.append("            kw_tag_end(w, mark);")
                c.append("        }")
        c.append("    }")
        c.append("}")
        c.append("")

    def emit_message(self, msg):
        for s in msg.structs:
            self.emit_struct_decl(s)
        for s in msg.structs:
            if s is not msg.top:
                self.h.append("void %s_init(struct %s *m);" % (s.cname, s.cname))
        self.h.append("void %s_init(struct %s *m);" % (msg.name, msg.name))
        self.h.append("int %s_decode(struct kread *r, struct arena *a, int16_t v, struct %s *m);" % (msg.name, msg.name))
        self.h.append("void %s_encode(struct obuf *w, int16_t v, const struct %s *m);" % (msg.name, msg.name))
        self.h.append("")
        for s in msg.structs:
            self.c.append("static int %s_decode_(struct kread *r, struct arena *a, int16_t v, struct %s *m);" % (s.cname, s.cname))
            self.c.append("static void %s_encode_(struct obuf *w, int16_t v, const struct %s *m);" % (s.cname, s.cname))
        self.c.append("")
        for s in msg.structs:
            self.emit_init(s, False)
            self.emit_decode(msg, s)
            self.emit_encode(msg, s)
        self.c.append("int %s_decode(struct kread *r, struct arena *a, int16_t v, struct %s *m)" % (msg.name, msg.name))
        self.c.append("{")
        self.c.append("    %s_init(m);" % msg.name)
        self.c.append("    return %s_decode_(r, a, v, m);" % msg.name)
        self.c.append("}")
        self.c.append("")
        self.c.append("void %s_encode(struct obuf *w, int16_t v, const struct %s *m)" % (msg.name, msg.name))
        self.c.append("{")
        self.c.append("    %s_encode_(w, v, m);" % msg.name)
        self.c.append("}")
        self.c.append("")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "kafka-protocol", "message")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "src", "protocol")
    g = Gen()
    apis = []
    for name in APIS:
        req = Message(load(os.path.join(spec, name + "Request.json")))
        resp = Message(load(os.path.join(spec, name + "Response.json")))
        g.emit_message(req)
        g.emit_message(resp)
        apis.append((req.api_key, name, req.valid, req.flex))
    apis.sort()

    hdr = [
        "/* kmsg.h: Kafka request and response codecs, GENERATED by tools/gen_protocol.py",
        " * from Apache Kafka 3.8.0's JSON message specs (shared/kafka-protocol/message).",
        " * Do not edit; change the generator and run `make gen`.",
        " *",
        " * Decoded strings and byte fields are views into the request frame; arrays live",
        " * in the arena passed to decode.  Both are valid until the frame and the arena",
        " * are released.  Field names are Kafka's. */",
        "#ifndef SHOPSTREAM_KMSG_H",
        "#define SHOPSTREAM_KMSG_H",
        "",
        '#include "protocol/kwire.h"',
        "",
    ]
    for key, name, valid, flex in apis:
        hdr.append("#define KAPI_%s %d" % (name.upper(), key))
    hdr.append("")
    hdr.append("/* One row per API the codec knows: its key, name, the versions the spec")
    hdr.append(" * allows and the first flexible version (-1: none). */")
    hdr.append("struct kmsg_api {")
    hdr.append("    int16_t key;")
    hdr.append("    const char *name;")
    hdr.append("    int16_t min_version, max_version;")
    hdr.append("    int16_t flexible_from;")
    hdr.append("};")
    hdr.append("")
    hdr.append("/* The row for key, or NULL when the codec does not know the API. */")
    hdr.append("const struct kmsg_api *kmsg_api(int16_t key);")
    hdr.append("")
    body = [
        "/* kmsg.c: GENERATED by tools/gen_protocol.py; see kmsg.h. */",
        "#include <string.h>",
        '#include "protocol/kmsg.h"',
        "",
        "static const struct kmsg_api apis[] = {",
    ]
    for key, name, valid, flex in apis:
        body.append('    {%d, "%s", %d, %d, %d},' % (key, name, valid[0], valid[1], flex[0] if flex else -1))
    body.append("};")
    body.append("")
    body.append("const struct kmsg_api *kmsg_api(int16_t key)")
    body.append("{")
    body.append("    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)")
    body.append("        if (apis[i].key == key)")
    body.append("            return &apis[i];")
    body.append("    return NULL;")
    body.append("}")
    body.append("")
    with open(os.path.join(out, "kmsg.h"), "w") as f:
        f.write("\n".join(hdr + g.h + ["#endif", ""]))
    with open(os.path.join(out, "kmsg.c"), "w") as f:
        f.write("\n".join(body + g.c))


if __name__ == "__main__":
    main()
