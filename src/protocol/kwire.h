/* kwire.h: the primitive Kafka wire types and their bounded readers and
 * writers, used by the generated codecs (kmsg.c) and by hand-written code
 * for headers.  Encodings are described in shared/kafka-protocol/README.md.
 *
 * Reading is "sticky error" style: every kr_* call checks the bytes left;
 * on any violation it sets r->err, returns a zero value, and all later calls
 * do nothing, so a decoder checks r->err once per loop and at the end. */
#ifndef SHOPSTREAM_KWIRE_H
#define SHOPSTREAM_KWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/obuf.h"
#include "common/varint.h"

/* A string: a view into the frame.  len -1 is null.  Not NUL-terminated. */
typedef struct {
    const char *ptr;
    int32_t len;
} kstr;

/* Bytes: a view.  len -1 is null. */
typedef struct {
    const uint8_t *ptr;
    int32_t len;
} kbytes;

/* Records: bytes in memory (fd < 0) or a range of a file (fd >= 0, which the
 * encoder dup()s into the output; the caller keeps its own fd). */
typedef struct {
    const uint8_t *ptr;
    int32_t len;
    int fd;
    int64_t file_off;
} krecords;

typedef struct {
    uint8_t b[16];
} kuuid;

static inline bool kuuid_is_zero(const kuuid *u)
{
    static const kuuid z;
    return memcmp(u, &z, sizeof z) == 0;
}

static inline kstr kstr_c(const char *s)
{
    return (kstr){s, s ? (int32_t)strlen(s) : -1};
}

static inline bool kstr_eq(kstr a, const char *b)
{
    size_t n = strlen(b);
    return a.len >= 0 && (size_t)a.len == n && memcmp(a.ptr, b, n) == 0;
}

enum kread_err {
    KR_OK = 0,
    KR_ETRUNC = 1,   /* a length or field runs past the end of the frame */
    KR_EINVAL = 2,   /* a negative length other than -1, an over-long varint */
    KR_ENOMEM = 3,   /* arena allocation failed */
};

struct kread {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte of this frame (or sub-range) */
    int err;            /* sticky enum kread_err */
};

static inline void kread_init(struct kread *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->err = 0;
}

static inline size_t kr_left(const struct kread *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}

static inline const uint8_t *kr_take(struct kread *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) {
        if (!r->err)
            r->err = KR_ETRUNC;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static inline uint8_t kr_u8(struct kread *r)
{
    const uint8_t *p = kr_take(r, 1);
    return p ? p[0] : 0;
}
static inline uint16_t kr_u16(struct kread *r)
{
    const uint8_t *p = kr_take(r, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}
static inline uint32_t kr_u32(struct kread *r)
{
    const uint8_t *p = kr_take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}
static inline uint64_t kr_u64(struct kread *r)
{
    const uint8_t *p = kr_take(r, 8);
    if (!p)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static inline bool kr_bool(struct kread *r) { return kr_u8(r) != 0; }
static inline int8_t kr_int8(struct kread *r) { return (int8_t)kr_u8(r); }
static inline int16_t kr_int16(struct kread *r) { return (int16_t)kr_u16(r); }
static inline int32_t kr_int32(struct kread *r) { return (int32_t)kr_u32(r); }
static inline int64_t kr_int64(struct kread *r) { return (int64_t)kr_u64(r); }
static inline uint16_t kr_uint16(struct kread *r) { return kr_u16(r); }
static inline uint32_t kr_uint32(struct kread *r) { return kr_u32(r); }
static inline double kr_float64(struct kread *r)
{
    uint64_t u = kr_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
static inline kuuid kr_uuid(struct kread *r)
{
    kuuid u = {{0}};
    const uint8_t *p = kr_take(r, 16);
    if (p)
        memcpy(u.b, p, 16);
    return u;
}

/* Unsigned varint that must fit in 31 bits (lengths, counts, tags). */
static inline uint32_t kr_uvarint(struct kread *r)
{
    if (r->err)
        return 0;
    uint64_t v;
    size_t n = varint_get_u64(r->p, r->end, 5, &v);
    if (!n || v > 0x7fffffff) {
        r->err = n ? KR_EINVAL : (r->p + 5 <= r->end ? KR_EINVAL : KR_ETRUNC);
        return 0;
    }
    r->p += n;
    return (uint32_t)v;
}

/* A length prefix: int16/int32 (classic, -1 null) or uvarint N+1 (compact,
 * 0 null).  Returns -1 for null (only when nullable), else the length, which
 * has been checked against the bytes left. */
static inline int32_t kr__len(struct kread *r, bool compact, bool wide, bool nullable)
{
    int32_t n;
    if (compact)
        n = (int32_t)kr_uvarint(r) - 1;
    else
        n = wide ? kr_int32(r) : kr_int16(r);
    if (r->err)
        return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        r->err = KR_EINVAL;
        return 0;
    }
    if (n > 0 && (size_t)n > kr_left(r)) {
        r->err = KR_ETRUNC;
        return 0;
    }
    return n;
}

static inline kstr kr_str(struct kread *r, bool compact, bool nullable)
{
    kstr s = {NULL, -1};
    int32_t n = kr__len(r, compact, false, nullable);
    if (r->err || n < 0)
        return r->err ? (kstr){"", 0} : s;
    s.ptr = (const char *)kr_take(r, (size_t)n);
    s.len = n;
    return s;
}

static inline kbytes kr_bytes(struct kread *r, bool compact, bool nullable)
{
    kbytes b = {NULL, -1};
    int32_t n = kr__len(r, compact, true, nullable);
    if (r->err || n < 0)
        return r->err ? (kbytes){NULL, 0} : b;
    b.ptr = kr_take(r, (size_t)n);
    b.len = n;
    return b;
}

static inline krecords kr_records(struct kread *r, bool compact, bool nullable)
{
    kbytes b = kr_bytes(r, compact, nullable);
    return (krecords){b.ptr, b.len, -1, 0};
}

/* An array count: -1 for null (only when nullable).  A count that could not
 * fit in the bytes left (count x min_elem > left) is rejected before any
 * allocation. */
static inline int32_t kr_array_len(struct kread *r, bool compact, bool nullable, size_t min_elem)
{
    int32_t n = compact ? (int32_t)kr_uvarint(r) - 1 : kr_int32(r);
    if (r->err)
        return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        r->err = KR_EINVAL;
        return 0;
    }
    if (n > 0 && (size_t)n > kr_left(r) / (min_elem ? min_elem : 1)) {
        r->err = KR_ETRUNC;
        return 0;
    }
    return n;
}

/* The count of a tagged-field section; each field takes at least 2 bytes. */
static inline int32_t kr_tag_count(struct kread *r)
{
    uint32_t n = kr_uvarint(r);
    if (!r->err && n > kr_left(r) / 2)
        r->err = KR_ETRUNC;
    return r->err ? 0 : (int32_t)n;
}

/* Splits off the next n bytes as their own reader (a tagged field's value). */
static inline int kr_sub(struct kread *r, size_t n, struct kread *sub)
{
    const uint8_t *p = kr_take(r, n);
    if (!p)
        return -1;
    kread_init(sub, p, n);
    return 0;
}

/* ---- writers ----------------------------------------------------------- */

static inline void kw_bool(struct obuf *w, bool v) { obuf_put_u8(w, v ? 1 : 0); }
static inline void kw_int8(struct obuf *w, int8_t v) { obuf_put_u8(w, (uint8_t)v); }
static inline void kw_int16(struct obuf *w, int16_t v) { obuf_put_be16(w, (uint16_t)v); }
static inline void kw_int32(struct obuf *w, int32_t v) { obuf_put_be32(w, (uint32_t)v); }
static inline void kw_int64(struct obuf *w, int64_t v) { obuf_put_be64(w, (uint64_t)v); }
static inline void kw_uint16(struct obuf *w, uint16_t v) { obuf_put_be16(w, v); }
static inline void kw_uint32(struct obuf *w, uint32_t v) { obuf_put_be32(w, v); }
static inline void kw_float64(struct obuf *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    obuf_put_be64(w, u);
}
static inline void kw_uuid(struct obuf *w, kuuid u) { obuf_put(w, u.b, 16); }

static inline void kw_uvarint(struct obuf *w, uint64_t v)
{
    uint8_t t[10];
    obuf_put(w, t, varint_put_u64(t, v));
}

static inline void kw__len(struct obuf *w, int32_t n, bool compact, bool wide)
{
    if (compact)
        kw_uvarint(w, (uint64_t)((int64_t)n + 1));
    else if (wide)
        kw_int32(w, n);
    else
        kw_int16(w, (int16_t)n);
}

static inline void kw_str(struct obuf *w, kstr s, bool compact, bool nullable)
{
    if (s.len < 0 && !nullable)
        s = (kstr){"", 0};
    kw__len(w, s.len < 0 ? -1 : s.len, compact, false);
    if (s.len > 0)
        obuf_put(w, s.ptr, (size_t)s.len);
}

static inline void kw_bytes(struct obuf *w, kbytes b, bool compact, bool nullable)
{
    if (b.len < 0 && !nullable)
        b = (kbytes){NULL, 0};
    kw__len(w, b.len < 0 ? -1 : b.len, compact, true);
    if (b.len > 0)
        obuf_put(w, b.ptr, (size_t)b.len);
}

/* Defined in kwire.c: splices a file range when r->fd >= 0. */
void kw_records(struct obuf *w, const krecords *r, bool compact, bool nullable);

static inline void kw_array_len(struct obuf *w, int32_t n, bool compact, bool nullable)
{
    if (n < 0 && !nullable)
        n = 0;
    if (compact)
        kw_uvarint(w, (uint64_t)((int64_t)n + 1));
    else
        kw_int32(w, n);
}

/* Tagged fields: kw_tag_begin writes the tag and returns a mark; after the
 * value is written, kw_tag_end inserts its size before it. */
static inline size_t kw_tag_begin(struct obuf *w, uint32_t tag)
{
    kw_uvarint(w, tag);
    return w->len;
}

static inline void kw_tag_end(struct obuf *w, size_t mark)
{
    uint8_t t[10];
    size_t n = varint_put_u64(t, w->len - mark);
    obuf_insert(w, mark, t, n);
}

#endif
