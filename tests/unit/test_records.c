/* test_records.c: record formats (protocol/records.c): building and
 * validating v2 batches with one test per rejection rule of
 * shared/RELIABILITY.md rows 20-27, batch iteration, up-conversion of
 * hand-built magic-0/1 MessageSets, down-conversion of compressed v2
 * batches, truncation at every length, and allocation failures.  The
 * legacy-format encoder and parser here are written independently of
 * records.c so that the two check each other. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"
#include "protocol/records.h"
#include "test.h"

static const struct records_limits LIM = {0, 0, true};

/* ---- helpers ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void set_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const struct records_header sample_hdrs[] = {
    {(const uint8_t *)"trace-id", 8, (const uint8_t *)"abc123", 6},
    {(const uint8_t *)"empty", 5, NULL, -1},
};

#define NSAMPLE 12
static char sample_keys[NSAMPLE][16], sample_vals[NSAMPLE][64];

/* Record i: key "key-i" (null when i % 3 == 1), value "value-i ..." (null
 * when i % 5 == 4), headers on even records, timestamps ts0 + 10 i except
 * record 2, which is the latest. */
static void sample(struct records_rec *r, int n, int64_t ts0)
{
    for (int i = 0; i < n; i++) {
        snprintf(sample_keys[i], sizeof sample_keys[i], "key-%d", i);
        snprintf(sample_vals[i], sizeof sample_vals[i], "value-%d of the shopstream order stream", i);
        r[i] = (struct records_rec){
            .key = i % 3 == 1 ? NULL : (const uint8_t *)sample_keys[i],
            .key_len = i % 3 == 1 ? -1 : (int32_t)strlen(sample_keys[i]),
            .value = i % 5 == 4 ? NULL : (const uint8_t *)sample_vals[i],
            .value_len = i % 5 == 4 ? -1 : (int32_t)strlen(sample_vals[i]),
            .timestamp = i == 2 ? ts0 + 100000 : ts0 + 10 * i,
            .headers = i % 2 == 0 ? sample_hdrs : NULL,
            .nheaders = i % 2 == 0 ? 2 : 0,
        };
    }
}

static void build(struct obuf *o, int codec, int n, int64_t ts0)
{
    struct records_rec r[NSAMPLE];
    sample(r, n, ts0);
    CHECK_EQ(records_build_v2(o, codec, ts0, r, n, -1, -1, -1), 0);
}

/* A batch around a hand-written records body, with a correct CRC. */
static void raw_batch(struct obuf *o, const void *body, size_t len, int32_t count, int16_t attrs)
{
    obuf_reset(o);
    obuf_put_be64(o, 0);
    obuf_put_be32(o, (uint32_t)(49 + len));
    obuf_put_be32(o, (uint32_t)-1);
    obuf_put_u8(o, 2);
    obuf_put_be32(o, 0);
    obuf_put_be16(o, (uint16_t)attrs);
    obuf_put_be32(o, (uint32_t)(count - 1));
    obuf_put_be64(o, 1000);
    obuf_put_be64(o, 1000);
    obuf_put_be64(o, (uint64_t)-1);
    obuf_put_be16(o, (uint16_t)-1);
    obuf_put_be32(o, (uint32_t)-1);
    obuf_put_be32(o, (uint32_t)count);
    obuf_put(o, body, len);
    records_update_crc(o->data, o->len);
}

static int validate(const struct obuf *o, const struct records_limits *lim)
{
    struct obuf scratch;
    obuf_init(&scratch);
    struct records_batch_info info;
    int rc = records_validate_v2(o->data, o->len, lim, &info, &scratch);
    obuf_free(&scratch);
    return rc;
}

static int validate_body(const void *body, size_t len, int32_t count)
{
    struct obuf o;
    obuf_init(&o);
    raw_batch(&o, body, len, count, 0);
    int rc = validate(&o, &LIM);
    obuf_free(&o);
    return rc;
}

/* Appends one legacy message (an encoder independent of records.c). */
static void put_msg(struct obuf *o, int magic, int64_t offset, int attr, int64_t ts, const void *key, int32_t klen,
                    const void *val, int32_t vlen)
{
    size_t at = o->len;
    int32_t size = 4 + 1 + 1 + (magic ? 8 : 0) + 4 + (klen > 0 ? klen : 0) + 4 + (vlen > 0 ? vlen : 0);
    obuf_put_be64(o, (uint64_t)offset);
    obuf_put_be32(o, (uint32_t)size);
    obuf_put_be32(o, 0);
    obuf_put_u8(o, (uint8_t)magic);
    obuf_put_u8(o, (uint8_t)attr);
    if (magic)
        obuf_put_be64(o, (uint64_t)ts);
    obuf_put_be32(o, (uint32_t)klen);
    if (klen > 0)
        obuf_put(o, key, (size_t)klen);
    obuf_put_be32(o, (uint32_t)vlen);
    if (vlen > 0)
        obuf_put(o, val, (size_t)vlen);
    obuf_patch_be32(o, at + 12, (uint32_t)crc32(0, o->data + at + 16, (uInt)size - 4));
}

static void put_msg_s(struct obuf *o, int magic, int64_t offset, int64_t ts, const char *key, const char *val)
{
    put_msg(o, magic, offset, 0, ts, key, key ? (int32_t)strlen(key) : -1, val, val ? (int32_t)strlen(val) : -1);
}

struct lmsg {
    int64_t offset;
    int magic, attr;
    int64_t ts;
    const uint8_t *key, *val;
    int32_t klen, vlen;
};

/* Parses a legacy message set, checking every CRC-32; returns the count. */
static int parse_legacy(const uint8_t *p, size_t n, struct lmsg *m, int max)
{
    int count = 0;
    size_t pos = 0;
    while (pos < n) {
        CHECK(count < max);
        CHECK(n - pos >= 26);
        struct lmsg *x = &m[count++];
        x->offset = (int64_t)be64(p + pos);
        uint32_t size = be32(p + pos + 8);
        CHECK(size <= n - pos - 12);
        const uint8_t *q = p + pos + 12;
        CHECK_EQ(be32(q), crc32(0, q + 4, size - 4));
        x->magic = q[4];
        x->attr = q[5];
        q += 6;
        x->ts = -1;
        if (x->magic == 1) {
            x->ts = (int64_t)be64(q);
            q += 8;
        }
        x->klen = (int32_t)be32(q);
        q += 4;
        x->key = x->klen >= 0 ? q : NULL;
        q += x->klen > 0 ? x->klen : 0;
        x->vlen = (int32_t)be32(q);
        q += 4;
        x->val = x->vlen >= 0 ? q : NULL;
        q += x->vlen > 0 ? x->vlen : 0;
        CHECK(q == p + pos + 12 + size);
        pos += 12 + size;
    }
    return count;
}

static int bytes_eq(const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen)
{
    if (alen != blen)
        return 0;
    if (alen < 0)
        return a == NULL && b == NULL;
    return alen == 0 || memcmp(a, b, (size_t)alen) == 0;
}

/* ---- kerr ---- */

TEST(kerr_names)
{
    CHECK(strcmp(kerr_name(KERR_NONE), "NONE") == 0);
    CHECK(strcmp(kerr_name(-1), "UNKNOWN_SERVER_ERROR") == 0);
    CHECK(strcmp(kerr_name(87), "INVALID_RECORD") == 0);
    CHECK(strcmp(kerr_name(76), "UNSUPPORTED_COMPRESSION_TYPE") == 0);
    CHECK(strcmp(kerr_name(99), "POSITION_OUT_OF_RANGE") == 0);
    CHECK(strcmp(kerr_name(100), "UNKNOWN_TOPIC_ID") == 0);
    CHECK(strcmp(kerr_name(-2), "UNKNOWN_ERROR_CODE") == 0);
    CHECK(strcmp(kerr_name(5000), "UNKNOWN_ERROR_CODE") == 0);
    CHECK_EQ(KERR_CORRUPT_MESSAGE, 2);
    CHECK_EQ(KERR_MESSAGE_TOO_LARGE, 10);
    CHECK_EQ(KERR_INVALID_TXN_STATE, 48);
    for (int c = -1; c <= KERR__MAX; c++)
        CHECK(strcmp(kerr_name(c), "UNKNOWN_ERROR_CODE") != 0);
}

/* ---- building, header, validation of good batches ---- */

TEST(records_build_and_validate_every_codec)
{
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf o, scratch;
        obuf_init(&o);
        obuf_init(&scratch);
        build(&o, codec, NSAMPLE, 1700000000000);
        struct records_batch_info info;
        CHECK_EQ(records_validate_v2(o.data, o.len, &LIM, &info, &scratch), KERR_NONE);
        CHECK_EQ(info.base_offset, 0);
        CHECK_EQ(info.batch_length, o.len - 12);
        CHECK_EQ(info.magic, 2);
        CHECK_EQ(info.codec, codec);
        CHECK_EQ(info.record_count, NSAMPLE);
        CHECK_EQ(info.last_offset_delta, NSAMPLE - 1);
        CHECK_EQ(info.base_timestamp, 1700000000000);
        CHECK_EQ(info.max_timestamp, 1700000000000 + 100000);
        CHECK_EQ(info.producer_id, -1);
        CHECK_EQ(info.producer_epoch, -1);
        CHECK_EQ(info.base_sequence, -1);
        CHECK_EQ(info.partition_leader_epoch, -1);
        CHECK(!info.is_control && !info.is_transactional);
        CHECK_EQ(info.crc, crc32c(0, o.data + 21, o.len - 21));
        /* Without a scratch buffer a temporary is used. */
        CHECK_EQ(records_validate_v2(o.data, o.len, &LIM, NULL, NULL), KERR_NONE);
        /* NULL limits: defaults, zstd allowed. */
        CHECK_EQ(records_validate_v2(o.data, o.len, NULL, NULL, NULL), KERR_NONE);
        obuf_free(&o);
        obuf_free(&scratch);
    }
}

TEST(records_read_back_every_codec)
{
    struct records_rec want[NSAMPLE];
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf o, scratch;
        obuf_init(&o);
        obuf_init(&scratch);
        build(&o, codec, NSAMPLE, 5000);
        sample(want, NSAMPLE, 5000);
        const uint8_t *body;
        size_t blen;
        CHECK_EQ(records_batch_body(o.data, o.len, &LIM, &scratch, &body, &blen), KERR_NONE);
        const uint8_t *p = body, *end = body + blen;
        for (int i = 0; i < NSAMPLE; i++) {
            struct records_record_view r;
            CHECK_EQ(records_record_next(&p, end, &r), 0);
            CHECK_EQ(r.offset_delta, i);
            CHECK_EQ(5000 + r.timestamp_delta, want[i].timestamp);
            CHECK(bytes_eq(r.key, r.key_len, want[i].key, want[i].key_len));
            CHECK(bytes_eq(r.value, r.value_len, want[i].value, want[i].value_len));
            CHECK_EQ(r.header_count, want[i].nheaders);
            const uint8_t *h = r.headers, *hend = r.headers + r.headers_len;
            for (int k = 0; k < r.header_count; k++) {
                struct records_header hd;
                CHECK_EQ(records_header_next(&h, hend, &hd), 0);
                CHECK(bytes_eq(hd.key, hd.key_len, sample_hdrs[k].key, sample_hdrs[k].key_len));
                CHECK(bytes_eq(hd.value, hd.value_len, sample_hdrs[k].value, sample_hdrs[k].value_len));
            }
            CHECK(h == hend);
        }
        CHECK(p == end);
        obuf_free(&o);
        obuf_free(&scratch);
    }
}

TEST(records_parse_header_needs_61_bytes)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 1, 0);
    struct records_batch_info info;
    CHECK_EQ(records_parse_header(o.data, 60, &info), -1);
    CHECK_EQ(records_parse_header(o.data, 61, &info), 0);
    CHECK_EQ(info.record_count, 1);
    obuf_free(&o);
}

TEST(records_producer_fields_and_transactional_flag)
{
    struct records_rec r[2];
    sample(r, 2, 10);
    struct obuf o;
    obuf_init(&o);
    CHECK_EQ(records_build_v2(&o, COMPRESS_SNAPPY, 10, r, 2, 4242, 7, 100), 0);
    o.data[22] |= RECORDS_ATTR_TRANSACTIONAL;
    records_update_crc(o.data, o.len);
    struct records_batch_info info;
    CHECK_EQ(records_validate_v2(o.data, o.len, &LIM, &info, NULL), KERR_NONE);
    CHECK_EQ(info.producer_id, 4242);
    CHECK_EQ(info.producer_epoch, 7);
    CHECK_EQ(info.base_sequence, 100);
    CHECK(info.is_transactional);
    obuf_free(&o);
}

TEST(records_set_base_offset_keeps_crc)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_LZ4, 3, 0);
    records_set_base_offset(o.data, 123456789012345);
    records_set_partition_leader_epoch(o.data, 9);
    struct records_batch_info info;
    CHECK_EQ(records_validate_v2(o.data, o.len, &LIM, &info, NULL), KERR_NONE);
    CHECK_EQ(info.base_offset, 123456789012345);
    CHECK_EQ(info.partition_leader_epoch, 9);
    obuf_free(&o);
}

TEST(records_set_log_append_time_recomputes_crc)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 1000);
    uint32_t crc_before = be32(o.data + 17);
    records_set_log_append_time(o.data, o.len, 987654321);
    struct records_batch_info info;
    CHECK_EQ(records_validate_v2(o.data, o.len, &LIM, &info, NULL), KERR_NONE);
    CHECK(info.attributes & RECORDS_ATTR_LOG_APPEND_TIME);
    CHECK_EQ(info.max_timestamp, 987654321);
    CHECK_EQ(info.base_timestamp, 1000);
    CHECK(info.crc != crc_before);
    obuf_free(&o);
}

/* ---- validation: one test per rejection rule ---- */

TEST(records_reject_short_blob)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 1, 0);
    CHECK_EQ(records_validate_v2(o.data, 60, &LIM, NULL, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(records_validate_v2(o.data, 10, &LIM, NULL, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(records_validate_v2(o.data, 0, &LIM, NULL, NULL), KERR_CORRUPT_MESSAGE);
    obuf_free(&o);
}

TEST(records_reject_batch_length_below_overhead)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 1, 0);
    set_be32(o.data + 8, 48);
    CHECK_EQ(validate(&o, &LIM), KERR_CORRUPT_MESSAGE);
    set_be32(o.data + 8, (uint32_t)-5);
    CHECK_EQ(validate(&o, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_free(&o);
}

TEST(records_reject_truncated_batch)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    CHECK_EQ(records_validate_v2(o.data, o.len - 1, &LIM, NULL, NULL), KERR_CORRUPT_MESSAGE);
    /* batchLength claiming more than was sent. */
    set_be32(o.data + 8, (uint32_t)(o.len - 12 + 1));
    CHECK_EQ(validate(&o, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_free(&o);
}

TEST(records_reject_trailing_bytes)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    obuf_put_u8(&o, 0);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    obuf_free(&o);
}

TEST(records_reject_two_batches)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    build(&o, COMPRESS_NONE, 2, 0);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    obuf_free(&o);
}

TEST(records_reject_wrong_magic)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    for (int magic = 0; magic < 256; magic++) {
        if (magic == 2)
            continue;
        o.data[16] = (uint8_t)magic;
        CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    }
    /* A small legacy message (under 61 bytes) is a wrong magic too. */
    struct obuf m;
    obuf_init(&m);
    put_msg_s(&m, 1, 0, 5, "k", "v");
    CHECK(m.len < 61);
    CHECK_EQ(validate(&m, &LIM), KERR_INVALID_RECORD);
    obuf_free(&m);
    obuf_free(&o);
}

TEST(records_reject_message_too_large)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, NSAMPLE, 0);
    struct records_limits lim = {o.len - 1, 0, true};
    CHECK_EQ(validate(&o, &lim), KERR_MESSAGE_TOO_LARGE);
    lim.max_batch_bytes = o.len;
    CHECK_EQ(validate(&o, &lim), KERR_NONE);
    /* The default is Kafka's message.max.bytes. */
    CHECK_EQ(RECORDS_DEFAULT_MAX_BATCH_BYTES, 1048588);
    obuf_free(&o);
}

TEST(records_reject_bad_crc)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    /* Every byte the CRC covers, flipped, is caught. */
    for (size_t i = 21; i < o.len; i++) {
        o.data[i] ^= 0x01;
        CHECK_EQ(validate(&o, &LIM), KERR_CORRUPT_MESSAGE);
        o.data[i] ^= 0x01;
    }
    o.data[17] ^= 0x80; /* the CRC itself */
    CHECK_EQ(validate(&o, &LIM), KERR_CORRUPT_MESSAGE);
    o.data[17] ^= 0x80;
    CHECK_EQ(validate(&o, &LIM), KERR_NONE);
    obuf_free(&o);
}

TEST(records_reject_unknown_codec)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    for (int codec = 5; codec <= 7; codec++) {
        o.data[22] = (uint8_t)((o.data[22] & ~7) | codec);
        records_update_crc(o.data, o.len);
        CHECK_EQ(validate(&o, &LIM), KERR_UNSUPPORTED_COMPRESSION_TYPE);
    }
    obuf_free(&o);
}

TEST(records_reject_zstd_when_not_allowed)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_ZSTD, 3, 0);
    struct records_limits lim = {0, 0, false};
    CHECK_EQ(validate(&o, &lim), KERR_UNSUPPORTED_COMPRESSION_TYPE);
    lim.allow_zstd = true;
    CHECK_EQ(validate(&o, &lim), KERR_NONE);
    obuf_free(&o);
}

TEST(records_reject_control_bit)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 1, 0);
    o.data[22] |= RECORDS_ATTR_CONTROL;
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    obuf_free(&o);
}

TEST(records_reject_record_count_mismatch)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    /* Claim 4 (and lastOffsetDelta 3): one record missing. */
    set_be32(o.data + 57, 4);
    set_be32(o.data + 23, 3);
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    /* Claim 2: a record left over. */
    set_be32(o.data + 57, 2);
    set_be32(o.data + 23, 1);
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    /* Claim 0, or a huge count. */
    set_be32(o.data + 57, 0);
    set_be32(o.data + 23, (uint32_t)-1);
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    set_be32(o.data + 57, INT32_MAX);
    set_be32(o.data + 23, INT32_MAX - 1);
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    /* The same for a compressed batch. */
    obuf_reset(&o);
    build(&o, COMPRESS_GZIP, 3, 0);
    set_be32(o.data + 57, 4);
    set_be32(o.data + 23, 3);
    records_update_crc(o.data, o.len);
    CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    obuf_free(&o);
}

TEST(records_reject_bad_last_offset_delta)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 3, 0);
    static const int32_t bad[] = {0, 1, 3, -1, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_be32(o.data + 23, (uint32_t)bad[i]);
        records_update_crc(o.data, o.len);
        CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
    }
    obuf_free(&o);
}

/* The hand-written record {key "k", value "v"}: length 8, attributes 0,
 * timestampDelta 0, offsetDelta 0, keyLength 1, "k", valueLength 1, "v",
 * headerCount 0 (zigzag varints: 1 is 0x02, -1 is 0x01). */
static const uint8_t REC_KV[] = {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};

TEST(records_raw_batch_sanity)
{
    CHECK_EQ(validate_body(REC_KV, sizeof REC_KV, 1), KERR_NONE);
    uint8_t two[2 * sizeof REC_KV];
    memcpy(two, REC_KV, sizeof REC_KV);
    memcpy(two + sizeof REC_KV, REC_KV, sizeof REC_KV);
    two[sizeof REC_KV + 3] = 0x02; /* offsetDelta 1 */
    CHECK_EQ(validate_body(two, sizeof two, 2), KERR_NONE);
}

TEST(records_reject_offset_delta_out_of_order)
{
    uint8_t b[sizeof REC_KV];
    memcpy(b, REC_KV, sizeof b);
    b[3] = 0x02; /* offsetDelta 1 for the first record */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
    b[3] = 0x01; /* -1 */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_key_length_past_end)
{
    uint8_t b[sizeof REC_KV];
    memcpy(b, REC_KV, sizeof b);
    b[4] = 0x0a; /* key length 5, record has 3 bytes left */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
    b[4] = 0xfe; /* a varint that runs past the record end */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
    /* Value length past the record end. */
    memcpy(b, REC_KV, sizeof b);
    b[6] = 0x06;
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_negative_lengths)
{
    uint8_t b[sizeof REC_KV];
    memcpy(b, REC_KV, sizeof b);
    b[4] = 0x03; /* key length -2 */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
    memcpy(b, REC_KV, sizeof b);
    b[6] = 0x05; /* value length -3 */
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
    /* Null key and null value (-1) are fine: length 6, no key/value bytes. */
    static const uint8_t nulls[] = {0x0c, 0, 0, 0, 0x01, 0x01, 0};
    CHECK_EQ(validate_body(nulls, sizeof nulls, 1), KERR_NONE);
    /* Record length negative or zero. */
    static const uint8_t neg[] = {0x01, 0, 0, 0, 0x01, 0x01, 0};
    CHECK_EQ(validate_body(neg, sizeof neg, 1), KERR_INVALID_RECORD);
    static const uint8_t zero[] = {0x00};
    CHECK_EQ(validate_body(zero, sizeof zero, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_header_problems)
{
    /* One header, key "h", null value: valid. */
    static const uint8_t ok[] = {0x12, 0, 0, 0, 0, 0, 0x02, 0x02, 'h', 0x01};
    CHECK_EQ(validate_body(ok, sizeof ok, 1), KERR_NONE);
    /* Header count INT32_MAX in a 10-byte record. */
    static const uint8_t huge[] = {0x14, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f};
    CHECK_EQ(validate_body(huge, sizeof huge, 1), KERR_INVALID_RECORD);
    /* Header count 2 with room for one. */
    static const uint8_t two[] = {0x12, 0, 0, 0, 0, 0, 0x04, 0x02, 'h', 0x01};
    CHECK_EQ(validate_body(two, sizeof two, 1), KERR_INVALID_RECORD);
    /* Header count -1. */
    static const uint8_t neg[] = {0x0c, 0, 0, 0, 0, 0, 0x01};
    CHECK_EQ(validate_body(neg, sizeof neg, 1), KERR_INVALID_RECORD);
    /* Header key length -1 (header keys cannot be null). */
    static const uint8_t nullkey[] = {0x10, 0, 0, 0, 0, 0, 0x02, 0x01, 0x00};
    CHECK_EQ(validate_body(nullkey, sizeof nullkey, 1), KERR_INVALID_RECORD);
    /* Header value length -2. */
    static const uint8_t negval[] = {0x12, 0, 0, 0, 0, 0, 0x02, 0x02, 'h', 0x03};
    CHECK_EQ(validate_body(negval, sizeof negval, 1), KERR_INVALID_RECORD);
    /* Header value length past the record end. */
    static const uint8_t longval[] = {0x12, 0, 0, 0, 0, 0, 0x02, 0x02, 'h', 0x08};
    CHECK_EQ(validate_body(longval, sizeof longval, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_record_length_mismatch)
{
    /* Declared 9, content 8: a byte is left inside the record. */
    static const uint8_t longer[] = {0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0, 0};
    CHECK_EQ(validate_body(longer, sizeof longer, 1), KERR_INVALID_RECORD);
    /* Declared 7, content 8: the header count falls outside the record. */
    static const uint8_t shorter[] = {0x0e, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CHECK_EQ(validate_body(shorter, sizeof shorter, 1), KERR_INVALID_RECORD);
    /* Declared longer than the batch. */
    static const uint8_t past[] = {0x7e, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CHECK_EQ(validate_body(past, sizeof past, 1), KERR_INVALID_RECORD);
    /* A first record whose length (17) swallows the whole second record:
     * read field by field the two records look fine, so only the length
     * check can catch it. */
    static const uint8_t swallow[] = {0x22, 0, 0, 0,    0x02, 'k',  0x02, 'v', 0,
                                      0x10, 0, 0, 0x02, 0x02, 'k', 0x02, 'v', 0};
    CHECK_EQ(validate_body(swallow, sizeof swallow, 2), KERR_INVALID_RECORD);
}

TEST(records_reject_bytes_after_last_record)
{
    uint8_t b[sizeof REC_KV + 1];
    memcpy(b, REC_KV, sizeof REC_KV);
    b[sizeof REC_KV] = 0;
    CHECK_EQ(validate_body(b, sizeof b, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_overlong_varints)
{
    /* timestampDelta as an 11-byte varlong. */
    static const uint8_t ts[] = {0x22, 0,    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                 0x80, 0x80, 0x80, 0x00, 0,    0x01, 0x01, 0,    0};
    CHECK_EQ(validate_body(ts, sizeof ts, 1), KERR_INVALID_RECORD);
    /* offsetDelta as a 6-byte varint. */
    static const uint8_t off[] = {0x18, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01, 0x01, 0, 0};
    CHECK_EQ(validate_body(off, sizeof off, 1), KERR_INVALID_RECORD);
}

TEST(records_reject_corrupt_compressed_data)
{
    struct obuf o;
    obuf_init(&o);
    for (int codec = COMPRESS_GZIP; codec <= COMPRESS_ZSTD; codec++) {
        obuf_reset(&o);
        build(&o, codec, NSAMPLE, 0);
        /* Garbage instead of the compressed records. */
        for (size_t i = 61; i < o.len; i++)
            o.data[i] = (uint8_t)(i * 37);
        records_update_crc(o.data, o.len);
        CHECK_EQ(validate(&o, &LIM), KERR_INVALID_RECORD);
        /* Compressed data cut short (batch length adjusted to match). */
        obuf_reset(&o);
        build(&o, codec, NSAMPLE, 0);
        o.len -= 5;
        set_be32(o.data + 8, (uint32_t)(o.len - 12));
        records_update_crc(o.data, o.len);
        int rc = validate(&o, &LIM);
        CHECK(rc == KERR_INVALID_RECORD);
    }
    obuf_free(&o);
}

TEST(records_reject_compression_bomb)
{
    /* 64 MiB of zero bytes, gzip-compressed into a batch of ~64 KiB. */
    size_t big = 64u << 20;
    uint8_t *zero = calloc(1, big);
    struct obuf c, o;
    obuf_init(&c);
    obuf_init(&o);
    CHECK_EQ(compress_compress(COMPRESS_GZIP, zero, big, &c), 0);
    free(zero);
    raw_batch(&o, c.data, c.len, 1, COMPRESS_GZIP);
    CHECK(o.len < 1048588);
    struct records_limits lim = {0, 1u << 20, true};
    size_t live0 = alloc_live_bytes();
    struct obuf scratch;
    obuf_init(&scratch);
    CHECK_EQ(records_validate_v2(o.data, o.len, &lim, NULL, &scratch), KERR_MESSAGE_TOO_LARGE);
    CHECK(scratch.cap <= 1u << 20);
    CHECK(alloc_live_bytes() - live0 <= (1u << 20));
    obuf_free(&scratch);
    obuf_free(&c);
    obuf_free(&o);
}

/* Every proper prefix of a valid batch is rejected, and nothing crashes. */
TEST(records_validate_every_truncation)
{
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        struct obuf o, scratch;
        obuf_init(&o);
        obuf_init(&scratch);
        build(&o, codec, NSAMPLE, 0);
        for (size_t len = 0; len < o.len; len++) {
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, o.data, len);
            CHECK(records_validate_v2(cut, len, &LIM, NULL, &scratch) != KERR_NONE);
            /* Also with batchLength and CRC made consistent with the cut. */
            if (len >= 61) {
                set_be32(cut + 8, (uint32_t)(len - 12));
                records_update_crc(cut, len);
                CHECK(records_validate_v2(cut, len, &LIM, NULL, &scratch) != KERR_NONE);
            }
            free(cut);
        }
        obuf_free(&o);
        obuf_free(&scratch);
    }
}

/* Every single-byte change of the records, with the CRC fixed up so that
 * the record walk sees it: never a crash, only known answers. */
TEST(records_validate_every_mutation)
{
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_LZ4; codec += 3) {
        struct obuf o, m, scratch;
        obuf_init(&o);
        obuf_init(&m);
        obuf_init(&scratch);
        build(&o, codec, 4, 0);
        for (size_t i = 61; i < o.len; i++) {
            for (int v = 0; v < 256; v += 17) {
                obuf_reset(&m);
                obuf_put(&m, o.data, o.len);
                m.data[i] = (uint8_t)v;
                records_update_crc(m.data, m.len);
                int rc = records_validate_v2(m.data, m.len, &LIM, NULL, &scratch);
                CHECK(rc == KERR_NONE || rc == KERR_INVALID_RECORD);
            }
        }
        obuf_free(&o);
        obuf_free(&m);
        obuf_free(&scratch);
    }
}

/* ---- iteration ---- */

TEST(records_iter_batches_and_truncated_tail)
{
    struct obuf o;
    obuf_init(&o);
    size_t ends[3];
    for (int i = 0; i < 3; i++) {
        size_t at = o.len;
        build(&o, i == 1 ? COMPRESS_ZSTD : COMPRESS_NONE, i + 1, 0);
        records_set_base_offset(o.data + at, 10 * i);
        ends[i] = o.len;
    }
    size_t whole = o.len;
    build(&o, COMPRESS_NONE, 2, 0);
    size_t full = o.len;

    /* Cut the fourth batch at every length: three whole batches, then a
     * truncated tail (or the end, when nothing of it is there). */
    for (size_t cut = whole; cut < full; cut++) {
        struct records_iter it;
        records_iter_init(&it, o.data, cut, true);
        struct records_batch_info info;
        const uint8_t *b;
        size_t sz;
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(records_iter_next(&it, &info, &b, &sz), RECORDS_ITER_BATCH);
            CHECK_EQ(info.base_offset, 10 * i);
            CHECK_EQ(info.record_count, i + 1);
            CHECK_EQ(it.pos, ends[i]);
            CHECK_EQ(sz, ends[i] - (i ? ends[i - 1] : 0));
        }
        int r = records_iter_next(&it, &info, &b, &sz);
        CHECK_EQ(r, cut == whole ? RECORDS_ITER_END : RECORDS_ITER_TRUNCATED);
        CHECK_EQ(it.pos, whole);
        CHECK_EQ(records_iter_next(&it, &info, &b, &sz), r); /* sticky */
    }
    obuf_free(&o);
}

TEST(records_iter_corrupt)
{
    struct obuf o;
    obuf_init(&o);
    build(&o, COMPRESS_NONE, 2, 0);
    size_t first = o.len;
    build(&o, COMPRESS_NONE, 2, 0);
    const uint8_t *b;
    size_t sz;
    struct records_iter it;

    /* A flipped record byte: only caught with check_crc. */
    o.data[first + 70] ^= 1;
    records_iter_init(&it, o.data, o.len, true);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_BATCH);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_CORRUPT);
    CHECK_EQ(it.pos, first);
    records_iter_init(&it, o.data, o.len, false);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_BATCH);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_BATCH);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_END);
    o.data[first + 70] ^= 1;

    /* A zero-filled tail (a preallocated or torn file) is corrupt. */
    struct obuf z;
    obuf_init(&z);
    obuf_put(&z, o.data, first);
    uint8_t zeros[100] = {0};
    obuf_put(&z, zeros, sizeof zeros);
    records_iter_init(&it, z.data, z.len, false);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_BATCH);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_CORRUPT);
    CHECK_EQ(it.pos, first);

    /* A wrong magic is corrupt, even when the rest is cut off. */
    o.data[first + 16] = 1;
    records_iter_init(&it, o.data, first + 20, false);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_BATCH);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_CORRUPT);
    /* Fewer than 12 bytes: truncated. */
    records_iter_init(&it, o.data, 11, false);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_TRUNCATED);
    records_iter_init(&it, o.data, 0, false);
    CHECK_EQ(records_iter_next(&it, NULL, &b, &sz), RECORDS_ITER_END);
    obuf_free(&z);
    obuf_free(&o);
}

/* ---- up-conversion ---- */

/* Checks that out holds one valid v2 batch whose records are the given
 * keys, values and timestamps. */
static void check_upconverted(const struct obuf *out, int n, const char *const *keys, const char *const *vals,
                              const int64_t *ts)
{
    struct records_batch_info info;
    CHECK_EQ(records_validate_v2(out->data, out->len, &LIM, &info, NULL), KERR_NONE);
    CHECK_EQ(info.record_count, n);
    CHECK_EQ(info.codec, 0);
    CHECK_EQ(info.producer_id, -1);
    CHECK_EQ(info.producer_epoch, -1);
    CHECK_EQ(info.base_sequence, -1);
    CHECK_EQ(info.base_offset, 0);
    CHECK(!(info.attributes & RECORDS_ATTR_LOG_APPEND_TIME));
    CHECK_EQ(info.base_timestamp, ts[0]);
    int64_t max = ts[0];
    for (int i = 1; i < n; i++)
        if (ts[i] > max)
            max = ts[i];
    CHECK_EQ(info.max_timestamp, max);
    const uint8_t *p = out->data + 61, *end = out->data + out->len;
    for (int i = 0; i < n; i++) {
        struct records_record_view r;
        CHECK_EQ(records_record_next(&p, end, &r), 0);
        CHECK_EQ(r.offset_delta, i);
        CHECK_EQ(info.base_timestamp + r.timestamp_delta, ts[i]);
        CHECK(bytes_eq(r.key, r.key_len, (const uint8_t *)keys[i], keys[i] ? (int32_t)strlen(keys[i]) : -1));
        CHECK(bytes_eq(r.value, r.value_len, (const uint8_t *)vals[i], vals[i] ? (int32_t)strlen(vals[i]) : -1));
        CHECK_EQ(r.header_count, 0);
    }
}

static const char *const UP_KEYS[] = {"k0", NULL, "k2", "k3"};
static const char *const UP_VALS[] = {"v0", "v1", NULL, "value three"};

TEST(records_upconvert_magic0)
{
    struct obuf in, out;
    obuf_init(&in);
    obuf_init(&out);
    for (int i = 0; i < 4; i++)
        put_msg_s(&in, 0, i, 0, UP_KEYS[i], UP_VALS[i]);
    struct records_batch_info info;
    CHECK_EQ(records_upconvert(in.data, in.len, 555, &LIM, &out, &info), KERR_NONE);
    CHECK_EQ(info.record_count, 4);
    CHECK_EQ(info.batch_length, out.len - 12);
    static const int64_t ts[] = {-1, -1, -1, -1};
    check_upconverted(&out, 4, UP_KEYS, UP_VALS, ts);
    obuf_free(&in);
    obuf_free(&out);
}

TEST(records_upconvert_magic1)
{
    struct obuf in, out;
    obuf_init(&in);
    obuf_init(&out);
    static const int64_t ts[] = {1000, 3000, 2000, 2500};
    for (int i = 0; i < 4; i++)
        put_msg_s(&in, 1, i, ts[i], UP_KEYS[i], UP_VALS[i]);
    obuf_put(&out, "keep", 4); /* appends after what is there */
    CHECK_EQ(records_upconvert(in.data, in.len, 555, &LIM, &out, NULL), KERR_NONE);
    CHECK(memcmp(out.data, "keep", 4) == 0);
    struct obuf b;
    obuf_init(&b);
    obuf_put(&b, out.data + 4, out.len - 4);
    check_upconverted(&b, 4, UP_KEYS, UP_VALS, ts);
    obuf_free(&b);
    obuf_free(&in);
    obuf_free(&out);
}

TEST(records_upconvert_log_append_time_uses_now)
{
    struct obuf in, out;
    obuf_init(&in);
    obuf_init(&out);
    put_msg(&in, 1, 0, RECORDS_LEGACY_ATTR_LOG_APPEND_TIME, 5, "k", 1, "v", 1);
    put_msg(&in, 1, 1, 0, 7, "k", 1, "v", 1);
    CHECK_EQ(records_upconvert(in.data, in.len, 777777, &LIM, &out, NULL), KERR_NONE);
    static const char *const k[] = {"k", "k"}, *const v[] = {"v", "v"};
    static const int64_t ts[] = {777777, 7};
    check_upconverted(&out, 2, k, v, ts);
    obuf_free(&in);
    obuf_free(&out);
}

/* A wrapper message of `magic` whose value is the inner set compressed with
 * codec (xerial framing for codec -2). */
static void put_wrapper(struct obuf *o, int magic, int codec, int64_t wrapper_offset, int64_t wrapper_ts,
                        const struct obuf *inner)
{
    struct obuf c;
    obuf_init(&c);
    if (codec == -COMPRESS_SNAPPY) {
        static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
        obuf_put(&c, hdr, 16);
        struct obuf blk;
        obuf_init(&blk);
        CHECK_EQ(compress_compress(COMPRESS_SNAPPY, inner->data, inner->len, &blk), 0);
        obuf_put_be32(&c, (uint32_t)blk.len);
        obuf_put(&c, blk.data, blk.len);
        obuf_free(&blk);
        codec = COMPRESS_SNAPPY;
    } else {
        CHECK_EQ(compress_compress(codec, inner->data, inner->len, &c), 0);
    }
    put_msg(o, magic, wrapper_offset, codec, wrapper_ts, NULL, -1, c.data, (int32_t)c.len);
    obuf_free(&c);
}

TEST(records_upconvert_compressed_magic1)
{
    static const int codecs[] = {COMPRESS_GZIP, COMPRESS_SNAPPY, -COMPRESS_SNAPPY, COMPRESS_LZ4};
    static const int64_t ts[] = {1000, 3000, 2000, 2500};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        struct obuf inner, in, out;
        obuf_init(&inner);
        obuf_init(&in);
        obuf_init(&out);
        /* Magic 1: inner offsets are relative, the wrapper carries the
         * absolute offset of the last inner message. */
        for (int i = 0; i < 3; i++)
            put_msg_s(&inner, 1, i, ts[i], UP_KEYS[i], UP_VALS[i]);
        put_wrapper(&in, 1, codecs[c], 2, 3000, &inner);
        put_msg_s(&in, 1, 3, ts[3], UP_KEYS[3], UP_VALS[3]);
        CHECK_EQ(records_upconvert(in.data, in.len, 0, &LIM, &out, NULL), KERR_NONE);
        check_upconverted(&out, 4, UP_KEYS, UP_VALS, ts);
        obuf_free(&inner);
        obuf_free(&in);
        obuf_free(&out);
    }
}

TEST(records_upconvert_compressed_magic0)
{
    struct obuf inner, in, out;
    obuf_init(&inner);
    obuf_init(&in);
    obuf_init(&out);
    /* Magic 0: inner offsets are absolute. */
    for (int i = 0; i < 4; i++)
        put_msg_s(&inner, 0, 40 + i, 0, UP_KEYS[i], UP_VALS[i]);
    put_wrapper(&in, 0, COMPRESS_GZIP, 43, 0, &inner);
    CHECK_EQ(records_upconvert(in.data, in.len, 0, &LIM, &out, NULL), KERR_NONE);
    static const int64_t ts[] = {-1, -1, -1, -1};
    check_upconverted(&out, 4, UP_KEYS, UP_VALS, ts);
    obuf_free(&inner);
    obuf_free(&in);
    obuf_free(&out);
}

TEST(records_upconvert_wrapper_log_append_time)
{
    struct obuf inner, in, out;
    obuf_init(&inner);
    obuf_init(&in);
    obuf_init(&out);
    put_msg_s(&inner, 1, 0, 11, "a", "b");
    put_msg_s(&inner, 1, 1, 12, "c", "d");
    struct obuf c;
    obuf_init(&c);
    CHECK_EQ(compress_compress(COMPRESS_LZ4, inner.data, inner.len, &c), 0);
    put_msg(&in, 1, 1, COMPRESS_LZ4 | RECORDS_LEGACY_ATTR_LOG_APPEND_TIME, 12, NULL, -1, c.data, (int32_t)c.len);
    CHECK_EQ(records_upconvert(in.data, in.len, 4444, &LIM, &out, NULL), KERR_NONE);
    static const char *const k[] = {"a", "c"}, *const v[] = {"b", "d"};
    static const int64_t ts[] = {4444, 4444};
    check_upconverted(&out, 2, k, v, ts);
    obuf_free(&c);
    obuf_free(&inner);
    obuf_free(&in);
    obuf_free(&out);
}

static int upconvert(const struct obuf *in, const struct records_limits *lim)
{
    struct obuf out;
    obuf_init(&out);
    obuf_put(&out, "xx", 2);
    int rc = records_upconvert(in->data, in->len, 0, lim, &out, NULL);
    if (rc)
        CHECK_EQ(out.len, 2); /* restored on error */
    obuf_free(&out);
    return rc;
}

TEST(records_upconvert_rejects_bad_crc)
{
    struct obuf in;
    obuf_init(&in);
    put_msg_s(&in, 1, 0, 5, "key", "value");
    size_t second = in.len;
    put_msg_s(&in, 0, 1, 0, "key", "value");
    CHECK_EQ(upconvert(&in, &LIM), KERR_NONE);
    /* Any byte flipped is caught, except in the offset fields (which the
     * broker ignores; they are outside the CRC). */
    for (size_t i = 8; i < in.len; i++) {
        if (i >= second && i < second + 8)
            continue;
        in.data[i] ^= 0x10;
        int rc = upconvert(&in, &LIM);
        CHECK(rc != KERR_NONE);
        in.data[i] ^= 0x10;
    }
    in.data[12] ^= 1; /* the CRC itself */
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_free(&in);

    /* A bad CRC inside a compressed wrapper. */
    struct obuf inner;
    obuf_init(&inner);
    obuf_init(&in);
    put_msg_s(&inner, 1, 0, 5, "key", "value");
    inner.data[inner.len - 1] ^= 1;
    put_wrapper(&in, 1, COMPRESS_GZIP, 0, 5, &inner);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_free(&inner);
    obuf_free(&in);
}

TEST(records_upconvert_rejects_malformed_messages)
{
    struct obuf in;
    obuf_init(&in);

    /* An empty set. */
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);

    /* Magic 2 (or more) is not a legacy message. */
    put_msg_s(&in, 2, 0, 0, "k", "v");
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);

    /* Key length -2 and key length past the message, CRCs correct. */
    obuf_reset(&in);
    put_msg(&in, 0, 0, 0, 0, "k", -2, "v", 1);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_reset(&in);
    put_msg_s(&in, 0, 0, 0, "k", "v");
    set_be32(in.data + 18, 100);
    obuf_patch_be32(&in, 12, (uint32_t)crc32(0, in.data + 16, (uInt)in.len - 16));
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    /* Value length -5. */
    obuf_reset(&in);
    put_msg(&in, 1, 0, 0, 0, "k", 1, "v", -5);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);

    /* messageSize below the minimum, negative, or past the end. */
    obuf_reset(&in);
    put_msg_s(&in, 0, 0, 0, "k", "v");
    set_be32(in.data + 8, 13);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    set_be32(in.data + 8, (uint32_t)-1);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    set_be32(in.data + 8, 1000);
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);

    /* A magic 1 message too short for its timestamp. */
    obuf_reset(&in);
    put_msg(&in, 0, 0, 0, 0, NULL, -1, "12345678", 8); /* 22 bytes as magic 0 */
    in.data[16] = 1;
    obuf_patch_be32(&in, 12, (uint32_t)crc32(0, in.data + 16, (uInt)in.len - 16));
    CHECK_EQ(upconvert(&in, &LIM), KERR_CORRUPT_MESSAGE);
    obuf_free(&in);
}

TEST(records_upconvert_rejects_bad_wrappers)
{
    struct obuf inner, in, nested;
    obuf_init(&inner);
    obuf_init(&in);
    obuf_init(&nested);
    put_msg_s(&inner, 1, 0, 5, "k", "v");

    /* zstd and codecs 5..7 are not legal in magic 0/1. */
    for (int codec = 4; codec <= 7; codec++) {
        obuf_reset(&in);
        put_msg(&in, 1, 0, codec, 5, NULL, -1, inner.data, (int32_t)inner.len);
        CHECK_EQ(upconvert(&in, &LIM), KERR_UNSUPPORTED_COMPRESSION_TYPE);
    }
    /* A wrapper with a null value. */
    obuf_reset(&in);
    put_msg(&in, 1, 0, COMPRESS_GZIP, 5, NULL, -1, NULL, -1);
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);
    /* Corrupt compressed data. */
    obuf_reset(&in);
    put_msg(&in, 1, 0, COMPRESS_GZIP, 5, NULL, -1, "not gzip at all", 15);
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);
    /* A wrapper around nothing. */
    obuf_reset(&in);
    struct obuf empty;
    obuf_init(&empty);
    put_wrapper(&in, 1, COMPRESS_GZIP, 0, 5, &empty);
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);
    /* Nested compression. */
    obuf_reset(&in);
    put_wrapper(&nested, 1, COMPRESS_GZIP, 0, 5, &inner);
    put_wrapper(&in, 1, COMPRESS_GZIP, 0, 5, &nested);
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);
    /* Inner magic different from the wrapper's. */
    obuf_reset(&in);
    put_wrapper(&in, 0, COMPRESS_GZIP, 0, 5, &inner);
    CHECK_EQ(upconvert(&in, &LIM), KERR_INVALID_RECORD);
    /* The good case, for contrast. */
    obuf_reset(&in);
    put_wrapper(&in, 1, COMPRESS_GZIP, 0, 5, &inner);
    CHECK_EQ(upconvert(&in, &LIM), KERR_NONE);
    obuf_free(&empty);
    obuf_free(&inner);
    obuf_free(&in);
    obuf_free(&nested);
}

TEST(records_upconvert_size_limits)
{
    struct obuf in;
    obuf_init(&in);
    put_msg_s(&in, 1, 0, 5, "key", "a value of some length");
    struct records_limits lim = {in.len - 1, 0, true};
    CHECK_EQ(upconvert(&in, &lim), KERR_MESSAGE_TOO_LARGE);
    lim.max_batch_bytes = in.len;
    CHECK_EQ(upconvert(&in, &lim), KERR_NONE);

    /* A bomb inside a wrapper: 8 MiB of zero-valued messages. */
    struct obuf inner;
    obuf_init(&inner);
    static uint8_t zero[65536];
    for (int i = 0; i < 128; i++)
        put_msg(&inner, 1, i, 0, 5, NULL, -1, zero, sizeof zero);
    obuf_reset(&in);
    put_wrapper(&in, 1, COMPRESS_GZIP, 127, 5, &inner);
    lim = (struct records_limits){0, 1u << 20, true};
    CHECK_EQ(upconvert(&in, &lim), KERR_MESSAGE_TOO_LARGE);
    /* The budget is shared by all wrappers of a set. */
    obuf_reset(&inner);
    for (int i = 0; i < 10; i++)
        put_msg(&inner, 1, i, 0, 5, NULL, -1, zero, sizeof zero);
    obuf_reset(&in);
    for (int w = 0; w < 3; w++)
        put_wrapper(&in, 1, COMPRESS_GZIP, 9, 5, &inner);
    lim.max_decompressed = 2 * inner.len + 100;
    CHECK_EQ(upconvert(&in, &lim), KERR_MESSAGE_TOO_LARGE);
    lim.max_decompressed = 3 * inner.len;
    CHECK_EQ(upconvert(&in, &lim), KERR_NONE);
    obuf_free(&inner);
    obuf_free(&in);
}

/* Every prefix: either a shorter valid set (cut between messages) or an
 * error, never a crash. */
TEST(records_upconvert_every_truncation)
{
    struct obuf inner, in, out;
    obuf_init(&inner);
    obuf_init(&in);
    obuf_init(&out);
    for (int i = 0; i < 3; i++)
        put_msg_s(&inner, 1, i, 100 + i, UP_KEYS[i], UP_VALS[i]);
    put_msg_s(&in, 1, 0, 99, "first", "message");
    put_wrapper(&in, 1, COMPRESS_SNAPPY, 3, 102, &inner);
    size_t boundary1 = in.len;
    put_msg_s(&in, 0, 4, 0, NULL, "last");
    int ok = 0;
    for (size_t len = 0; len < in.len; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, in.data, len);
        obuf_reset(&out);
        int rc = records_upconvert(cut, len, 0, &LIM, &out, NULL);
        if (rc == KERR_NONE) {
            ok++;
            CHECK_EQ(records_validate_v2(out.data, out.len, &LIM, NULL, NULL), KERR_NONE);
        } else {
            CHECK(rc == KERR_CORRUPT_MESSAGE || rc == KERR_INVALID_RECORD);
            CHECK_EQ(out.len, 0);
        }
        free(cut);
    }
    CHECK_EQ(ok, 2); /* after the first message and after the wrapper */
    CHECK(boundary1 > 0);
    obuf_free(&inner);
    obuf_free(&in);
    obuf_free(&out);
}

/* ---- down-conversion ---- */

/* A log range: gzip batch at 100 (3 records), zstd batch at 103 (2), a
 * control batch at 105, an uncompressed batch at 106 (1). */
static void make_log(struct obuf *log, size_t *whole_end)
{
    struct records_rec r[NSAMPLE];
    sample(r, NSAMPLE, 1000);
    size_t at = log->len;
    CHECK_EQ(records_build_v2(log, COMPRESS_GZIP, 1000, r, 3, -1, -1, -1), 0);
    records_set_base_offset(log->data + at, 100);
    at = log->len;
    CHECK_EQ(records_build_v2(log, COMPRESS_ZSTD, 1030, r + 3, 2, -1, -1, -1), 0);
    records_set_base_offset(log->data + at, 103);
    /* Control record: key {version 0, type 1 commit}, value {0, epoch 0}. */
    static const uint8_t ctrl[] = {0x20, 0, 0, 0, 0x08, 0, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 0, 0};
    struct obuf c;
    obuf_init(&c);
    raw_batch(&c, ctrl, sizeof ctrl, 1, RECORDS_ATTR_CONTROL | RECORDS_ATTR_TRANSACTIONAL);
    records_set_base_offset(c.data, 105);
    obuf_put(log, c.data, c.len);
    obuf_free(&c);
    at = log->len;
    CHECK_EQ(records_build_v2(log, COMPRESS_NONE, 1050, r + 5, 1, -1, -1, -1), 0);
    records_set_base_offset(log->data + at, 106);
    *whole_end = log->len;
    /* A partial batch at the end, as a fetch cut at max_bytes leaves. */
    at = log->len;
    CHECK_EQ(records_build_v2(log, COMPRESS_NONE, 1060, r + 6, 3, -1, -1, -1), 0);
    records_set_base_offset(log->data + at, 107);
    log->len -= 10;
}

TEST(records_downconvert_compressed_to_magic0_and_1)
{
    struct records_rec want[NSAMPLE];
    sample(want, NSAMPLE, 1000);
    static const int64_t offsets[] = {100, 101, 102, 103, 104, 106};
    for (int magic = 0; magic <= 1; magic++) {
        struct obuf log, out, scratch;
        obuf_init(&log);
        obuf_init(&out);
        obuf_init(&scratch);
        size_t whole;
        make_log(&log, &whole);
        CHECK_EQ(records_downconvert(log.data, log.len, magic, &LIM, &out, &scratch), KERR_NONE);
        struct lmsg m[16];
        int n = parse_legacy(out.data, out.len, m, 16);
        CHECK_EQ(n, 6);
        for (int i = 0; i < n; i++) {
            CHECK_EQ(m[i].offset, offsets[i]);
            CHECK_EQ(m[i].magic, magic);
            CHECK_EQ(m[i].attr, 0);
            CHECK(bytes_eq(m[i].key, m[i].klen, want[i].key, want[i].key_len));
            CHECK(bytes_eq(m[i].val, m[i].vlen, want[i].value, want[i].value_len));
            /* Batch timestamps were rebased (1000, 1030, 1050) but records
             * keep their absolute timestamps. */
            int64_t ts = want[i].timestamp;
            CHECK_EQ(m[i].ts, magic == 1 ? ts : -1);
        }
        obuf_free(&log);
        obuf_free(&out);
        obuf_free(&scratch);
    }
}

TEST(records_downconvert_log_append_time)
{
    struct obuf b, out, scratch;
    obuf_init(&b);
    obuf_init(&out);
    obuf_init(&scratch);
    build(&b, COMPRESS_SNAPPY, 2, 10);
    records_set_log_append_time(b.data, b.len, 999000);
    struct lmsg m[4];
    CHECK_EQ(records_downconvert(b.data, b.len, 1, &LIM, &out, &scratch), KERR_NONE);
    CHECK_EQ(parse_legacy(out.data, out.len, m, 4), 2);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(m[i].ts, 999000);
        CHECK_EQ(m[i].attr, RECORDS_LEGACY_ATTR_LOG_APPEND_TIME);
    }
    obuf_reset(&out);
    CHECK_EQ(records_downconvert(b.data, b.len, 0, &LIM, &out, &scratch), KERR_NONE);
    CHECK_EQ(parse_legacy(out.data, out.len, m, 4), 2);
    CHECK_EQ(m[0].attr, 0);
    obuf_free(&b);
    obuf_free(&out);
    obuf_free(&scratch);
}

/* Down then up again gives back the same records. */
TEST(records_downconvert_then_upconvert)
{
    struct obuf b, legacy, back, scratch;
    obuf_init(&b);
    obuf_init(&legacy);
    obuf_init(&back);
    obuf_init(&scratch);
    build(&b, COMPRESS_ZSTD, NSAMPLE, 77);
    CHECK_EQ(records_downconvert(b.data, b.len, 1, &LIM, &legacy, &scratch), KERR_NONE);
    CHECK_EQ(records_upconvert(legacy.data, legacy.len, 0, &LIM, &back, NULL), KERR_NONE);
    struct records_rec want[NSAMPLE];
    sample(want, NSAMPLE, 77);
    struct records_batch_info info;
    CHECK_EQ(records_validate_v2(back.data, back.len, &LIM, &info, NULL), KERR_NONE);
    CHECK_EQ(info.record_count, NSAMPLE);
    CHECK_EQ(info.max_timestamp, 77 + 100000);
    const uint8_t *p = back.data + 61, *end = back.data + back.len;
    for (int i = 0; i < NSAMPLE; i++) {
        struct records_record_view r;
        CHECK_EQ(records_record_next(&p, end, &r), 0);
        CHECK_EQ(info.base_timestamp + r.timestamp_delta, want[i].timestamp);
        CHECK(bytes_eq(r.key, r.key_len, want[i].key, want[i].key_len));
        CHECK(bytes_eq(r.value, r.value_len, want[i].value, want[i].value_len));
        CHECK_EQ(r.header_count, 0); /* headers do not survive magic 1 */
    }
    obuf_free(&b);
    obuf_free(&legacy);
    obuf_free(&back);
    obuf_free(&scratch);
}

TEST(records_downconvert_corrupt_and_limits)
{
    struct obuf log, out, scratch;
    obuf_init(&log);
    obuf_init(&out);
    obuf_init(&scratch);
    size_t whole;
    make_log(&log, &whole);
    struct lmsg m[16];

    /* A bad magic is refused. */
    CHECK_EQ(records_downconvert(log.data, log.len, 2, &LIM, &out, &scratch), KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);

    /* Corruption in the first batch is an error; in a later batch it ends
     * the output after the good ones. */
    struct obuf bad;
    obuf_init(&bad);
    obuf_put(&bad, log.data, log.len);
    set_be32(bad.data + 8, 0);
    obuf_put(&out, "zz", 2);
    CHECK_EQ(records_downconvert(bad.data, bad.len, 1, &LIM, &out, &scratch), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(out.len, 2);
    obuf_reset(&out);
    size_t second = be32(log.data + 8) + 12; /* where batch 2 starts */
    obuf_reset(&bad);
    obuf_put(&bad, log.data, log.len);
    /* Garbage instead of the zstd batch's compressed records. */
    memset(bad.data + second + 61, 0xee, be32(bad.data + second + 8) - 49);
    CHECK_EQ(records_downconvert(bad.data, bad.len, 1, &LIM, &out, &scratch), KERR_NONE);
    CHECK_EQ(parse_legacy(out.data, out.len, m, 16), 3);
    /* A record count that disagrees with the records. */
    obuf_reset(&bad);
    obuf_reset(&out);
    obuf_put(&bad, log.data, log.len);
    set_be32(bad.data + 57, 4);
    CHECK_EQ(records_downconvert(bad.data, bad.len, 0, &LIM, &out, &scratch), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(out.len, 0);

    /* Output budget: whole batches while within max_decompressed, but
     * always the first. */
    struct records_limits lim = {0, 1, true};
    obuf_reset(&out);
    CHECK_EQ(records_downconvert(log.data, log.len, 0, &lim, &out, &scratch), KERR_MESSAGE_TOO_LARGE);
    struct obuf plain;
    obuf_init(&plain);
    build(&plain, COMPRESS_NONE, 3, 0);
    build(&plain, COMPRESS_NONE, 3, 0);
    lim.max_decompressed = 1;
    obuf_reset(&out);
    CHECK_EQ(records_downconvert(plain.data, plain.len, 0, &lim, &out, &scratch), KERR_NONE);
    CHECK_EQ(parse_legacy(out.data, out.len, m, 16), 3);
    lim.max_decompressed = 10000;
    obuf_reset(&out);
    CHECK_EQ(records_downconvert(plain.data, plain.len, 0, &lim, &out, &scratch), KERR_NONE);
    CHECK_EQ(parse_legacy(out.data, out.len, m, 16), 6);

    /* Only control batches, or only a partial batch: nothing, no error. */
    obuf_reset(&out);
    CHECK_EQ(records_downconvert(log.data, 30, 1, &LIM, &out, &scratch), KERR_NONE);
    CHECK_EQ(out.len, 0);
    obuf_free(&plain);
    obuf_free(&bad);
    obuf_free(&log);
    obuf_free(&out);
    obuf_free(&scratch);
}

/* Every prefix of a log range converts to the messages of its whole
 * batches, never crashing. */
TEST(records_downconvert_every_truncation)
{
    struct obuf log, full, out, scratch;
    obuf_init(&log);
    obuf_init(&full);
    obuf_init(&out);
    obuf_init(&scratch);
    size_t whole;
    make_log(&log, &whole);
    CHECK_EQ(records_downconvert(log.data, log.len, 1, &LIM, &full, &scratch), KERR_NONE);
    for (size_t len = 0; len <= log.len; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, log.data, len);
        obuf_reset(&out);
        CHECK_EQ(records_downconvert(cut, len, 1, &LIM, &out, &scratch), KERR_NONE);
        CHECK(out.len <= full.len);
        CHECK(out.len == 0 || memcmp(out.data, full.data, out.len) == 0);
        if (len >= whole)
            CHECK_EQ(out.len, full.len);
        free(cut);
    }
    obuf_free(&log);
    obuf_free(&full);
    obuf_free(&out);
    obuf_free(&scratch);
}

/* ---- allocation failures ---- */

TEST(records_allocation_failures)
{
    struct obuf b, legacy, scratch, out;
    obuf_init(&b);
    obuf_init(&legacy);
    obuf_init(&scratch);
    build(&b, COMPRESS_GZIP, NSAMPLE, 0);
    CHECK_EQ(records_downconvert(b.data, b.len, 1, &LIM, &legacy, &scratch), KERR_NONE);
    obuf_free(&scratch);
    for (long k = 0; k < 40; k++) {
        int rc;
        obuf_init(&scratch);
        alloc_fail_after(k);
        rc = records_validate_v2(b.data, b.len, &LIM, NULL, &scratch);
        alloc_fail_after(-1);
        CHECK(rc == KERR_NONE || rc == KERR_UNKNOWN_SERVER_ERROR);
        obuf_free(&scratch);

        obuf_init(&out);
        obuf_init(&scratch);
        alloc_fail_after(k);
        rc = records_downconvert(b.data, b.len, 0, &LIM, &out, &scratch);
        alloc_fail_after(-1);
        CHECK(rc == KERR_NONE || rc == KERR_UNKNOWN_SERVER_ERROR);
        if (rc)
            CHECK_EQ(out.len, 0);
        obuf_free(&out);
        obuf_free(&scratch);

        obuf_init(&out);
        alloc_fail_after(k);
        rc = records_upconvert(legacy.data, legacy.len, 0, &LIM, &out, NULL);
        alloc_fail_after(-1);
        CHECK(rc == KERR_NONE || rc == KERR_UNKNOWN_SERVER_ERROR);
        if (rc)
            CHECK_EQ(out.len, 0);
        obuf_free(&out);

        struct records_rec r[NSAMPLE];
        sample(r, NSAMPLE, 0);
        obuf_init(&out);
        alloc_fail_after(k);
        rc = records_build_v2(&out, COMPRESS_GZIP, 0, r, NSAMPLE, -1, -1, -1);
        alloc_fail_after(-1);
        CHECK(rc == 0 || rc == COMPRESS_ENOMEM);
        if (rc)
            CHECK_EQ(out.len, 0);
        obuf_free(&out);
    }
    obuf_free(&b);
    obuf_free(&legacy);
}
