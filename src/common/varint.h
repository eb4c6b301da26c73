/* varint.h: unsigned LEB128 varints (Kafka's compact lengths and tags) and
 * zigzag varints (record fields).  Decoders are bounded: they never read at
 * or past `end` and reject encodings longer than the type allows.  Leaf. */
#ifndef SHOPSTREAM_VARINT_H
#define SHOPSTREAM_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Reads an unsigned varint of at most maxbytes (5 for 32 bits, 10 for 64).
 * Returns bytes consumed, or 0 on truncation or an over-long encoding. */
static inline size_t varint_get_u64(const uint8_t *p, const uint8_t *end, int maxbytes, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < maxbytes; i++) {
        if (p + i >= end)
            return 0;
        uint8_t b = p[i];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return (size_t)i + 1;
        }
    }
    return 0;
}

/* Zigzag int32 (varint) and int64 (varlong). Returns bytes consumed or 0. */
static inline size_t varint_get_zz32(const uint8_t *p, const uint8_t *end, int32_t *out)
{
    uint64_t u;
    size_t n = varint_get_u64(p, end, 5, &u);
    if (!n || u > 0xffffffffu)
        return 0;
    uint32_t x = (uint32_t)u;
    *out = (int32_t)((x >> 1) ^ (0u - (x & 1)));
    return n;
}

static inline size_t varint_get_zz64(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t u;
    size_t n = varint_get_u64(p, end, 10, &u);
    if (!n)
        return 0;
    *out = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return n;
}

/* Writes an unsigned varint into p (room for 10 bytes); returns its length. */
static inline size_t varint_put_u64(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline size_t varint_put_zz64(uint8_t *p, int64_t v)
{
    return varint_put_u64(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline size_t varint_len_zz64(int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

#endif
