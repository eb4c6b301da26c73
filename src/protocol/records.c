/* records.c: Kafka record batches (magic 2) and legacy MessageSets (magic 0
 * and 1) as pure functions over bytes; see records.h for the contracts and
 * shared/kafka-protocol/README.md for the formats.
 *
 * Every length read from the input is checked against the bytes that remain
 * of the innermost enclosing structure (record, message, batch) before it is
 * used, and all arithmetic on offsets and timestamps taken from the input is
 * done in unsigned 64-bit so that hostile values wrap instead of being
 * undefined behaviour. */
#include "protocol/records.h"

#include <string.h>
#include <zlib.h>

#include "common/crc32c.h"
#include "common/varint.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"

/* Smallest record body: attributes and five one-byte varints. */
#define RECORD_MIN_BODY 6
/* Smallest legacy message (after offset and size): crc, magic, attributes,
 * key length, value length; magic 1 adds an 8-byte timestamp. */
#define LEGACY_MIN_V0 14
#define LEGACY_TS_LEN 8

static const uint8_t empty_bytes[1];

static uint16_t rd_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd_be64(const uint8_t *p)
{
    return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

static void wr_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void wr_be64(uint8_t *p, uint64_t v)
{
    wr_be32(p, (uint32_t)(v >> 32));
    wr_be32(p + 4, (uint32_t)v);
}

static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t sub_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static size_t lim_batch(const struct records_limits *lim)
{
    return lim && lim->max_batch_bytes ? lim->max_batch_bytes : RECORDS_DEFAULT_MAX_BATCH_BYTES;
}

static size_t lim_decompressed(const struct records_limits *lim)
{
    return lim && lim->max_decompressed ? lim->max_decompressed : RECORDS_DEFAULT_MAX_DECOMPRESSED;
}

static bool lim_zstd(const struct records_limits *lim)
{
    return lim ? lim->allow_zstd : true;
}

/* Maps a compress_decompress failure to the Kafka code a client gets. */
static int kerr_from_compress(int rc)
{
    switch (rc) {
    case COMPRESS_OK:
        return KERR_NONE;
    case COMPRESS_ETOOBIG:
        return KERR_MESSAGE_TOO_LARGE;
    case COMPRESS_ENOMEM:
        return KERR_UNKNOWN_SERVER_ERROR;
    case COMPRESS_EUNSUPPORTED:
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    default:
        return KERR_INVALID_RECORD;
    }
}

/* ---- header ---- */

int records_parse_header(const uint8_t *p, size_t n, struct records_batch_info *out)
{
    if (n < RECORDS_V2_OVERHEAD)
        return -1;
    out->base_offset = (int64_t)rd_be64(p + RECORDS_OFF_BASE_OFFSET);
    out->batch_length = (int32_t)rd_be32(p + RECORDS_OFF_BATCH_LENGTH);
    out->partition_leader_epoch = (int32_t)rd_be32(p + RECORDS_OFF_PARTITION_LEADER_EPOCH);
    out->magic = (int8_t)p[RECORDS_OFF_MAGIC];
    out->crc = rd_be32(p + RECORDS_OFF_CRC);
    out->attributes = (int16_t)rd_be16(p + RECORDS_OFF_ATTRIBUTES);
    out->last_offset_delta = (int32_t)rd_be32(p + RECORDS_OFF_LAST_OFFSET_DELTA);
    out->base_timestamp = (int64_t)rd_be64(p + RECORDS_OFF_BASE_TIMESTAMP);
    out->max_timestamp = (int64_t)rd_be64(p + RECORDS_OFF_MAX_TIMESTAMP);
    out->producer_id = (int64_t)rd_be64(p + RECORDS_OFF_PRODUCER_ID);
    out->producer_epoch = (int16_t)rd_be16(p + RECORDS_OFF_PRODUCER_EPOCH);
    out->base_sequence = (int32_t)rd_be32(p + RECORDS_OFF_BASE_SEQUENCE);
    out->record_count = (int32_t)rd_be32(p + RECORDS_OFF_RECORD_COUNT);
    out->codec = out->attributes & RECORDS_ATTR_CODEC_MASK;
    out->is_transactional = (out->attributes & RECORDS_ATTR_TRANSACTIONAL) != 0;
    out->is_control = (out->attributes & RECORDS_ATTR_CONTROL) != 0;
    return 0;
}

void records_update_crc(uint8_t *batch, size_t n)
{
    if (n < RECORDS_V2_OVERHEAD)
        return;
    wr_be32(batch + RECORDS_OFF_CRC, crc32c(0, batch + RECORDS_CRC_START, n - RECORDS_CRC_START));
}

void records_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    wr_be64(batch + RECORDS_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void records_set_partition_leader_epoch(uint8_t *batch, int32_t epoch)
{
    wr_be32(batch + RECORDS_OFF_PARTITION_LEADER_EPOCH, (uint32_t)epoch);
}

void records_set_log_append_time(uint8_t *batch, size_t n, int64_t ts)
{
    if (n < RECORDS_V2_OVERHEAD)
        return;
    uint16_t attr = rd_be16(batch + RECORDS_OFF_ATTRIBUTES);
    wr_be16(batch + RECORDS_OFF_ATTRIBUTES, attr | RECORDS_ATTR_LOG_APPEND_TIME);
    wr_be64(batch + RECORDS_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    records_update_crc(batch, n);
}

/* ---- records inside a batch ---- */

/* Reads a zigzag varint length that may be -1 (null) and must fit in the
 * bytes left before end.  Returns bytes consumed, or 0 when invalid. */
static size_t get_len(const uint8_t *p, const uint8_t *end, int32_t min, int32_t *len)
{
    size_t k = varint_get_zz32(p, end, len);
    if (!k || *len < min || (*len > 0 && (size_t)*len > (size_t)(end - p) - k))
        return 0;
    return k;
}

int records_header_next(const uint8_t **pp, const uint8_t *end, struct records_header *h)
{
    const uint8_t *p = *pp;
    size_t k = get_len(p, end, 0, &h->key_len);
    if (!k)
        return -1;
    p += k;
    h->key = p;
    p += h->key_len;
    k = get_len(p, end, -1, &h->value_len);
    if (!k)
        return -1;
    p += k;
    h->value = h->value_len >= 0 ? p : NULL;
    if (h->value_len > 0)
        p += h->value_len;
    *pp = p;
    return 0;
}

int records_record_next(const uint8_t **pp, const uint8_t *end, struct records_record_view *r)
{
    const uint8_t *p = *pp;
    int32_t len;
    size_t k = varint_get_zz32(p, end, &len);
    if (!k || len < RECORD_MIN_BODY || (size_t)len > (size_t)(end - p) - k)
        return -1;
    p += k;
    /* From here on everything must lie within the record's own length. */
    const uint8_t *rend = p + len;
    r->attributes = (int8_t)*p++;
    if (!(k = varint_get_zz64(p, rend, &r->timestamp_delta)))
        return -1;
    p += k;
    if (!(k = varint_get_zz32(p, rend, &r->offset_delta)))
        return -1;
    p += k;
    if (!(k = get_len(p, rend, -1, &r->key_len)))
        return -1;
    p += k;
    r->key = r->key_len >= 0 ? p : NULL;
    if (r->key_len > 0)
        p += r->key_len;
    if (!(k = get_len(p, rend, -1, &r->value_len)))
        return -1;
    p += k;
    r->value = r->value_len >= 0 ? p : NULL;
    if (r->value_len > 0)
        p += r->value_len;
    if (!(k = varint_get_zz32(p, rend, &r->header_count)))
        return -1;
    p += k;
    /* Each header takes at least two bytes (two one-byte lengths). */
    if (r->header_count < 0 || (size_t)r->header_count > (size_t)(rend - p) / 2)
        return -1;
    r->headers = p;
    for (int32_t i = 0; i < r->header_count; i++) {
        struct records_header h;
        if (records_header_next(&p, rend, &h))
            return -1;
    }
    r->headers_len = (size_t)(p - r->headers);
    if (p != rend)
        return -1;
    *pp = p;
    return 0;
}

/* Walks count records of a body: each must parse, offsetDeltas must run
 * 0..count-1, and nothing may follow the last.  Returns 0 or -1. */
static int walk_records(const uint8_t *p, size_t len, int32_t count)
{
    const uint8_t *end = p + len;
    for (int32_t i = 0; i < count; i++) {
        struct records_record_view r;
        if (records_record_next(&p, end, &r) || r.offset_delta != i)
            return -1;
    }
    return p == end ? 0 : -1;
}

int records_batch_body(const uint8_t *batch, size_t n, const struct records_limits *lim,
                       struct obuf *scratch, const uint8_t **body, size_t *body_len)
{
    if (n < RECORDS_V2_OVERHEAD)
        return KERR_CORRUPT_MESSAGE;
    int codec = rd_be16(batch + RECORDS_OFF_ATTRIBUTES) & RECORDS_ATTR_CODEC_MASK;
    if (codec == COMPRESS_NONE) {
        *body = n > RECORDS_V2_OVERHEAD ? batch + RECORDS_V2_OVERHEAD : empty_bytes;
        *body_len = n - RECORDS_V2_OVERHEAD;
        return KERR_NONE;
    }
    if (codec > COMPRESS_ZSTD)
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    obuf_reset(scratch);
    int rc = compress_decompress(codec, batch + RECORDS_V2_OVERHEAD, n - RECORDS_V2_OVERHEAD, scratch,
                                 lim_decompressed(lim));
    if (rc)
        return kerr_from_compress(rc);
    *body = scratch->len ? scratch->data : empty_bytes;
    *body_len = scratch->len;
    return KERR_NONE;
}

/* ---- validation of a produced batch ---- */

int records_validate_v2(const uint8_t *blob, size_t n, const struct records_limits *lim,
                        struct records_batch_info *info, struct obuf *scratch)
{
    struct records_batch_info bi;
    if (n > RECORDS_OFF_MAGIC && blob[RECORDS_OFF_MAGIC] != 2)
        return KERR_INVALID_RECORD;
    if (records_parse_header(blob, n, &bi))
        return KERR_CORRUPT_MESSAGE;
    if (bi.batch_length < RECORDS_V2_OVERHEAD - RECORDS_LOG_OVERHEAD)
        return KERR_CORRUPT_MESSAGE;
    size_t total = (size_t)bi.batch_length + RECORDS_LOG_OVERHEAD;
    if (total > n)
        return KERR_CORRUPT_MESSAGE;
    if (total < n)
        return KERR_INVALID_RECORD; /* a second batch or trailing garbage */
    if (n > lim_batch(lim))
        return KERR_MESSAGE_TOO_LARGE;
    if (crc32c(0, blob + RECORDS_CRC_START, n - RECORDS_CRC_START) != bi.crc)
        return KERR_CORRUPT_MESSAGE;
    if (bi.codec > COMPRESS_ZSTD || (bi.codec == COMPRESS_ZSTD && !lim_zstd(lim)))
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (bi.is_control)
        return KERR_INVALID_RECORD;
    if (bi.record_count < 1 || bi.last_offset_delta != bi.record_count - 1)
        return KERR_INVALID_RECORD;

    struct obuf tmp;
    obuf_init(&tmp);
    const uint8_t *body;
    size_t body_len;
    int rc = records_batch_body(blob, n, lim, scratch ? scratch : &tmp, &body, &body_len);
    if (rc == KERR_NONE && walk_records(body, body_len, bi.record_count))
        rc = KERR_INVALID_RECORD;
    obuf_free(&tmp);
    if (rc == KERR_NONE && info)
        *info = bi;
    return rc;
}

/* ---- iteration ---- */

void records_iter_init(struct records_iter *it, const uint8_t *p, size_t n, bool check_crc)
{
    it->p = p;
    it->n = n;
    it->pos = 0;
    it->check_crc = check_crc;
}

int records_iter_next(struct records_iter *it, struct records_batch_info *info, const uint8_t **batch,
                      size_t *size)
{
    size_t rem = it->n - it->pos;
    if (rem == 0)
        return RECORDS_ITER_END;
    const uint8_t *p = it->p + it->pos;
    if (rem < RECORDS_LOG_OVERHEAD)
        return RECORDS_ITER_TRUNCATED;
    int32_t bl = (int32_t)rd_be32(p + RECORDS_OFF_BATCH_LENGTH);
    if (bl < RECORDS_V2_OVERHEAD - RECORDS_LOG_OVERHEAD)
        return RECORDS_ITER_CORRUPT;
    if (rem > RECORDS_OFF_MAGIC && p[RECORDS_OFF_MAGIC] != 2)
        return RECORDS_ITER_CORRUPT;
    size_t total = (size_t)bl + RECORDS_LOG_OVERHEAD;
    if (total > rem)
        return RECORDS_ITER_TRUNCATED;
    if (it->check_crc &&
        crc32c(0, p + RECORDS_CRC_START, total - RECORDS_CRC_START) != rd_be32(p + RECORDS_OFF_CRC))
        return RECORDS_ITER_CORRUPT;
    if (info)
        records_parse_header(p, total, info);
    *batch = p;
    *size = total;
    it->pos += total;
    return RECORDS_ITER_BATCH;
}

/* ---- building ---- */

static void put_zz(struct obuf *o, int64_t v)
{
    uint8_t t[10];
    obuf_put(o, t, varint_put_zz64(t, v));
}

static size_t len_bytes(int32_t len)
{
    return varint_len_zz64(len) + (len > 0 ? (size_t)len : 0);
}

/* Appends one record.  Returns 0, or -1 when its length would not fit the
 * int32 length field. */
static int put_record(struct obuf *o, int64_t ts_delta, int32_t offset_delta, const uint8_t *key,
                      int32_t key_len, const uint8_t *value, int32_t value_len,
                      const struct records_header *hdrs, int nhdrs)
{
    if (key_len < -1)
        key_len = -1;
    if (value_len < -1)
        value_len = -1;
    uint64_t body = 1 + varint_len_zz64(ts_delta) + varint_len_zz64(offset_delta) + len_bytes(key_len) +
                    len_bytes(value_len) + varint_len_zz64(nhdrs);
    for (int i = 0; i < nhdrs; i++)
        body += len_bytes(hdrs[i].key_len < 0 ? 0 : hdrs[i].key_len) +
                len_bytes(hdrs[i].value_len < -1 ? -1 : hdrs[i].value_len);
    if (body > INT32_MAX)
        return -1;
    put_zz(o, (int64_t)body);
    obuf_put_u8(o, 0);
    put_zz(o, ts_delta);
    put_zz(o, offset_delta);
    put_zz(o, key_len);
    if (key_len > 0)
        obuf_put(o, key, (size_t)key_len);
    put_zz(o, value_len);
    if (value_len > 0)
        obuf_put(o, value, (size_t)value_len);
    put_zz(o, nhdrs);
    for (int i = 0; i < nhdrs; i++) {
        int32_t hk = hdrs[i].key_len < 0 ? 0 : hdrs[i].key_len;
        int32_t hv = hdrs[i].value_len < -1 ? -1 : hdrs[i].value_len;
        put_zz(o, hk);
        if (hk > 0)
            obuf_put(o, hdrs[i].key, (size_t)hk);
        put_zz(o, hv);
        if (hv > 0)
            obuf_put(o, hdrs[i].value, (size_t)hv);
    }
    return 0;
}

/* Fills in the header of the batch that starts at out->data[base] and runs
 * to out->len, and computes its CRC.  Returns 0, or -1 when the batch is
 * longer than batchLength can say. */
static int finish_batch(struct obuf *out, size_t base, int16_t attributes, int32_t count, int64_t base_ts,
                        int64_t max_ts, int64_t producer_id, int16_t epoch, int32_t base_sequence)
{
    size_t n = out->len - base;
    if (n - RECORDS_LOG_OVERHEAD > INT32_MAX)
        return -1;
    uint8_t *b = out->data + base;
    wr_be64(b + RECORDS_OFF_BASE_OFFSET, 0);
    wr_be32(b + RECORDS_OFF_BATCH_LENGTH, (uint32_t)(n - RECORDS_LOG_OVERHEAD));
    wr_be32(b + RECORDS_OFF_PARTITION_LEADER_EPOCH, (uint32_t)-1);
    b[RECORDS_OFF_MAGIC] = 2;
    wr_be16(b + RECORDS_OFF_ATTRIBUTES, (uint16_t)attributes);
    wr_be32(b + RECORDS_OFF_LAST_OFFSET_DELTA, (uint32_t)(count - 1));
    wr_be64(b + RECORDS_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    wr_be64(b + RECORDS_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    wr_be64(b + RECORDS_OFF_PRODUCER_ID, (uint64_t)producer_id);
    wr_be16(b + RECORDS_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    wr_be32(b + RECORDS_OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
    wr_be32(b + RECORDS_OFF_RECORD_COUNT, (uint32_t)count);
    records_update_crc(b, n);
    return 0;
}

/* Appends a zeroed 61-byte header to be filled by finish_batch. */
static int reserve_header(struct obuf *out)
{
    uint8_t *h = obuf_reserve(out, RECORDS_V2_OVERHEAD);
    if (!h)
        return -1;
    memset(h, 0, RECORDS_V2_OVERHEAD);
    out->len += RECORDS_V2_OVERHEAD;
    return 0;
}

int records_build_v2(struct obuf *out, int codec, int64_t base_ts, const struct records_rec *recs, int n,
                     int64_t producer_id, int16_t epoch, int32_t base_sequence)
{
    if (codec < COMPRESS_NONE || codec > COMPRESS_ZSTD || n < 0)
        return COMPRESS_EUNSUPPORTED;
    if (out->oom)
        return COMPRESS_ENOMEM;
    size_t base = out->len;
    struct obuf tmp;
    obuf_init(&tmp);
    int rc = 0;
    if (reserve_header(out)) {
        rc = COMPRESS_ENOMEM;
        goto err;
    }
    struct obuf *dst = codec == COMPRESS_NONE ? out : &tmp;
    int64_t max_ts = n ? recs[0].timestamp : base_ts;
    for (int i = 0; i < n; i++) {
        const struct records_rec *r = &recs[i];
        if (put_record(dst, sub_wrap(r->timestamp, base_ts), i, r->key, r->key_len, r->value, r->value_len,
                       r->headers, r->headers && r->nheaders > 0 ? r->nheaders : 0)) {
            rc = COMPRESS_ETOOBIG;
            goto err;
        }
        if (r->timestamp > max_ts)
            max_ts = r->timestamp;
    }
    if (dst->oom) {
        rc = COMPRESS_ENOMEM;
        goto err;
    }
    if (codec != COMPRESS_NONE) {
        rc = compress_compress(codec, tmp.len ? tmp.data : empty_bytes, tmp.len, out);
        if (rc)
            goto err;
    }
    if (finish_batch(out, base, (int16_t)codec, n, base_ts, max_ts, producer_id, epoch, base_sequence)) {
        rc = COMPRESS_ETOOBIG;
        goto err;
    }
    obuf_free(&tmp);
    return 0;
err:
    obuf_free(&tmp);
    out->len = base;
    return rc;
}

/* ---- legacy MessageSet: parsing ---- */

/* One legacy message, parsed.  Pointers are views into the message set. */
struct legacy_msg {
    int8_t magic;
    int8_t attributes;
    int64_t timestamp; /* -1 for magic 0 */
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    size_t entry_size; /* offset + size fields + message */
};

/* Reads an int32 length (-1 null) within [*q, end).  Returns 0 or -1. */
static int legacy_bytes(const uint8_t **q, const uint8_t *end, const uint8_t **ptr, int32_t *len)
{
    if (end - *q < 4)
        return -1;
    *len = (int32_t)rd_be32(*q);
    *q += 4;
    if (*len < -1 || (*len > 0 && (size_t)*len > (size_t)(end - *q)))
        return -1;
    *ptr = *len >= 0 ? *q : NULL;
    if (*len > 0)
        *q += *len;
    return 0;
}

/* Parses and checks the message entry at p (rem bytes left in its set).
 * Returns a Kafka code. */
static int legacy_parse(const uint8_t *p, size_t rem, struct legacy_msg *m)
{
    if (rem < RECORDS_LOG_OVERHEAD)
        return KERR_CORRUPT_MESSAGE;
    int32_t size = (int32_t)rd_be32(p + 8);
    if (size < LEGACY_MIN_V0 || (size_t)size > rem - RECORDS_LOG_OVERHEAD)
        return KERR_CORRUPT_MESSAGE;
    const uint8_t *msg = p + RECORDS_LOG_OVERHEAD, *end = msg + size;
    m->magic = (int8_t)msg[4];
    if (m->magic != 0 && m->magic != 1)
        return KERR_INVALID_RECORD;
    if ((uint32_t)crc32_z(0, msg + 4, (size_t)size - 4) != rd_be32(msg))
        return KERR_CORRUPT_MESSAGE;
    m->attributes = (int8_t)msg[5];
    const uint8_t *q = msg + 6;
    m->timestamp = -1;
    if (m->magic == 1) {
        if (end - q < LEGACY_TS_LEN)
            return KERR_CORRUPT_MESSAGE;
        m->timestamp = (int64_t)rd_be64(q);
        q += LEGACY_TS_LEN;
    }
    if (legacy_bytes(&q, end, &m->key, &m->key_len) || legacy_bytes(&q, end, &m->value, &m->value_len) ||
        q != end)
        return KERR_CORRUPT_MESSAGE;
    m->entry_size = RECORDS_LOG_OVERHEAD + (size_t)size;
    return KERR_NONE;
}

/* ---- legacy MessageSet: up-conversion ---- */

struct upconv {
    struct obuf *out;  /* borrowed: the batch being written */
    int32_t count;     /* records written so far */
    int64_t base_ts;   /* timestamp of the first record */
    int64_t max_ts;
    int64_t now_ms;
    size_t budget;     /* decompressed bytes still allowed */
    size_t max_msg;    /* lim->max_batch_bytes */
    struct obuf inner; /* owned: the decompressed inner set of one wrapper */
};

static int up_emit(struct upconv *u, int64_t ts, const struct legacy_msg *m)
{
    if (u->count == INT32_MAX)
        return KERR_INVALID_RECORD;
    if (u->count == 0)
        u->base_ts = u->max_ts = ts;
    else if (ts > u->max_ts)
        u->max_ts = ts;
    if (put_record(u->out, sub_wrap(ts, u->base_ts), u->count, m->key, m->key_len, m->value, m->value_len,
                   NULL, 0))
        return KERR_MESSAGE_TOO_LARGE;
    if (u->out->oom)
        return KERR_UNKNOWN_SERVER_ERROR;
    u->count++;
    return KERR_NONE;
}

/* Converts the messages of set p[0..n).  depth 0 is the produced set;
 * depth 1 is the inner set of a wrapper of the given magic, whose records
 * take now_ms as timestamp when use_now. */
static int up_set(struct upconv *u, const uint8_t *p, size_t n, int depth, int wrapper_magic, bool use_now)
{
    size_t pos = 0;
    while (pos < n) {
        if (depth == 0 && n - pos >= RECORDS_LOG_OVERHEAD) {
            int32_t size = (int32_t)rd_be32(p + pos + 8);
            if (size > 0 && (size_t)size + RECORDS_LOG_OVERHEAD > u->max_msg)
                return KERR_MESSAGE_TOO_LARGE;
        }
        struct legacy_msg m;
        int rc = legacy_parse(p + pos, n - pos, &m);
        if (rc)
            return rc;
        int codec = m.attributes & RECORDS_LEGACY_ATTR_CODEC_MASK;
        bool lat = m.magic == 1 && (m.attributes & RECORDS_LEGACY_ATTR_LOG_APPEND_TIME);
        if (depth > 0 && (m.magic != wrapper_magic || codec != COMPRESS_NONE))
            return KERR_INVALID_RECORD;
        if (codec == COMPRESS_NONE) {
            rc = up_emit(u, use_now || lat ? u->now_ms : m.timestamp, &m);
        } else {
            if (codec > COMPRESS_LZ4)
                return KERR_UNSUPPORTED_COMPRESSION_TYPE;
            if (m.value_len < 0)
                return KERR_INVALID_RECORD;
            obuf_reset(&u->inner);
            rc = kerr_from_compress(
                compress_decompress(codec, m.value ? m.value : empty_bytes, (size_t)m.value_len, &u->inner, u->budget));
            if (rc)
                return rc;
            u->budget -= u->inner.len;
            if (u->inner.len == 0)
                return KERR_INVALID_RECORD;
            /* Depth 1 never decompresses, so u->inner stays put meanwhile. */
            rc = up_set(u, u->inner.data, u->inner.len, 1, m.magic, lat);
        }
        if (rc)
            return rc;
        pos += m.entry_size;
    }
    return KERR_NONE;
}

int records_upconvert(const uint8_t *msgset, size_t n, int64_t now_ms, const struct records_limits *lim,
                      struct obuf *out, struct records_batch_info *info)
{
    if (out->oom)
        return KERR_UNKNOWN_SERVER_ERROR;
    size_t base = out->len;
    struct upconv u = {
        .out = out,
        .now_ms = now_ms,
        .budget = lim_decompressed(lim),
        .max_msg = lim_batch(lim),
    };
    obuf_init(&u.inner);
    int rc;
    if (reserve_header(out)) {
        rc = KERR_UNKNOWN_SERVER_ERROR;
        goto err;
    }
    rc = up_set(&u, msgset, n, 0, 0, false);
    if (rc)
        goto err;
    if (u.count == 0) {
        rc = KERR_INVALID_RECORD;
        goto err;
    }
    if (out->oom) {
        rc = KERR_UNKNOWN_SERVER_ERROR;
        goto err;
    }
    if (finish_batch(out, base, 0, u.count, u.base_ts, u.max_ts, -1, -1, -1)) {
        rc = KERR_MESSAGE_TOO_LARGE;
        goto err;
    }
    if (info)
        records_parse_header(out->data + base, out->len - base, info);
    obuf_free(&u.inner);
    return KERR_NONE;
err:
    obuf_free(&u.inner);
    out->len = base;
    return rc;
}

/* ---- legacy MessageSet: down-conversion ---- */

/* Appends one legacy message.  Returns a Kafka code. */
static int put_legacy(struct obuf *out, int magic, int64_t offset, int64_t ts, bool lat,
                      const struct records_record_view *r)
{
    size_t klen = r->key_len > 0 ? (size_t)r->key_len : 0;
    size_t vlen = r->value_len > 0 ? (size_t)r->value_len : 0;
    size_t msize = LEGACY_MIN_V0 + (magic == 1 ? LEGACY_TS_LEN : 0) + klen + vlen;
    if (msize > INT32_MAX)
        return KERR_MESSAGE_TOO_LARGE;
    uint8_t *d = obuf_reserve(out, RECORDS_LOG_OVERHEAD + msize);
    if (!d)
        return KERR_UNKNOWN_SERVER_ERROR;
    uint8_t *q = d;
    wr_be64(q, (uint64_t)offset);
    wr_be32(q + 8, (uint32_t)msize);
    q += 16; /* offset, size, and the CRC filled in below */
    *q++ = (uint8_t)magic;
    *q++ = magic == 1 && lat ? RECORDS_LEGACY_ATTR_LOG_APPEND_TIME : 0;
    if (magic == 1) {
        wr_be64(q, (uint64_t)ts);
        q += LEGACY_TS_LEN;
    }
    wr_be32(q, (uint32_t)r->key_len);
    q += 4;
    if (klen) {
        memcpy(q, r->key, klen);
        q += klen;
    }
    wr_be32(q, (uint32_t)r->value_len);
    q += 4;
    if (vlen) {
        memcpy(q, r->value, vlen);
        q += vlen;
    }
    wr_be32(d + 12, (uint32_t)crc32_z(0, d + 16, msize - 4));
    out->len += RECORDS_LOG_OVERHEAD + msize;
    return KERR_NONE;
}

static int down_batch(const uint8_t *b, size_t bsz, const struct records_batch_info *bi, int magic,
                      const struct records_limits *lim, struct obuf *out, struct obuf *scratch)
{
    const uint8_t *body;
    size_t blen;
    int rc = records_batch_body(b, bsz, lim, scratch, &body, &blen);
    if (rc)
        return rc == KERR_INVALID_RECORD ? KERR_CORRUPT_MESSAGE : rc;
    bool lat = (bi->attributes & RECORDS_ATTR_LOG_APPEND_TIME) != 0;
    const uint8_t *p = body, *end = body + blen;
    int32_t i = 0;
    while (p < end) {
        struct records_record_view r;
        if (i == bi->record_count || records_record_next(&p, end, &r))
            return KERR_CORRUPT_MESSAGE;
        i++;
        int64_t ts = lat ? bi->max_timestamp : add_wrap(bi->base_timestamp, r.timestamp_delta);
        rc = put_legacy(out, magic, add_wrap(bi->base_offset, r.offset_delta), ts, lat, &r);
        if (rc)
            return rc;
    }
    return i == bi->record_count ? KERR_NONE : KERR_CORRUPT_MESSAGE;
}

int records_downconvert(const uint8_t *batches, size_t n, int magic, const struct records_limits *lim,
                        struct obuf *out, struct obuf *scratch)
{
    if (magic != 0 && magic != 1)
        return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (out->oom)
        return KERR_UNKNOWN_SERVER_ERROR;
    size_t base = out->len, budget = lim_decompressed(lim);
    struct records_iter it;
    records_iter_init(&it, batches, n, false);
    bool first = true;
    int rc = KERR_NONE;
    for (;;) {
        const uint8_t *b;
        size_t bsz;
        struct records_batch_info bi;
        int r = records_iter_next(&it, &bi, &b, &bsz);
        if (r != RECORDS_ITER_BATCH) {
            if (r == RECORDS_ITER_CORRUPT && first)
                rc = KERR_CORRUPT_MESSAGE;
            break;
        }
        if (bi.is_control)
            continue;
        size_t before = out->len;
        int brc = down_batch(b, bsz, &bi, magic, lim, out, scratch);
        if (brc || out->oom) {
            out->len = before;
            if (first || out->oom)
                rc = brc ? brc : KERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        if (!first && out->len - base > budget) {
            out->len = before;
            break;
        }
        first = false;
    }
    if (rc)
        out->len = base;
    return rc;
}
