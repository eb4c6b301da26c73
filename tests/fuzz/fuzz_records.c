/* fuzz_records.c: libFuzzer harness for the record decoders and codecs:
 * records_validate_v2, records_iter_next, records_upconvert,
 * records_downconvert and compress_decompress, all with small caps so that
 * bombs are cheap to find.  The first byte picks the target; a "fixup"
 * target first makes batchLength and the CRC-32C (or a legacy message's
 * CRC-32) consistent, so the fuzzer reaches the record walk and the
 * decompressors instead of stopping at the checksum.
 *
 * Build (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_records.c \
 *     src/protocol/records.c src/protocol/compress.c src/protocol/kerr.c \
 *     src/common/alloc.c src/common/obuf.c src/common/crc32c.c \
 *     -lz -lsnappy -llz4 -lzstd -o fuzz_records
 *   ./fuzz_records -max_total_time=60 corpus/ */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/obuf.h"
#include "protocol/compress.h"
#include "protocol/kerr.h"
#include "protocol/records.h"

#define FUZZ_CAP (256u << 10)

static const struct records_limits lim_small = {64u << 10, FUZZ_CAP, true};

static void die_if(int cond)
{
    if (cond)
        abort();
}

/* Everything records_validate_v2 accepts must read back record by record,
 * and must down-convert. */
static void check_valid_batch(const uint8_t *b, size_t n)
{
    struct obuf scratch, out;
    obuf_init(&scratch);
    obuf_init(&out);
    struct records_batch_info info;
    if (records_validate_v2(b, n, &lim_small, &info, &scratch) == KERR_NONE) {
        const uint8_t *body;
        size_t blen;
        die_if(records_batch_body(b, n, &lim_small, &scratch, &body, &blen) != KERR_NONE);
        const uint8_t *p = body, *end = body + blen;
        for (int32_t i = 0; i < info.record_count; i++) {
            struct records_record_view r;
            die_if(records_record_next(&p, end, &r) != 0);
            const uint8_t *h = r.headers, *hend = r.headers + r.headers_len;
            for (int32_t k = 0; k < r.header_count; k++) {
                struct records_header hd;
                die_if(records_header_next(&h, hend, &hd) != 0);
            }
            die_if(h != hend);
        }
        die_if(p != end);
        int rc = records_downconvert(b, n, 1, &lim_small, &out, &scratch);
        die_if(rc != KERR_NONE && rc != KERR_MESSAGE_TOO_LARGE);
    }
    obuf_free(&scratch);
    obuf_free(&out);
}

/* Recomputes the CRC-32 of each legacy message whose size fits. */
static void fix_legacy_crcs(uint8_t *p, size_t n)
{
    size_t pos = 0;
    while (n - pos >= 26) {
        uint32_t size = (uint32_t)p[pos + 8] << 24 | (uint32_t)p[pos + 9] << 16 | (uint32_t)p[pos + 10] << 8 |
                        p[pos + 11];
        if (size < 14 || size > n - pos - 12)
            return;
        uint32_t crc = (uint32_t)crc32(0, p + pos + 16, size - 4);
        p[pos + 12] = (uint8_t)(crc >> 24);
        p[pos + 13] = (uint8_t)(crc >> 16);
        p[pos + 14] = (uint8_t)(crc >> 8);
        p[pos + 15] = (uint8_t)crc;
        pos += 12 + size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    /* A private copy of exactly the input, so ASan sees any overread. */
    size_t n = size - 1;
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);
    struct obuf out, scratch;
    obuf_init(&out);
    obuf_init(&scratch);

    switch (sel & 7) {
    case 0: /* a produced batch, as sent */
        records_validate_v2(in, n, &lim_small, NULL, &scratch);
        check_valid_batch(in, n);
        break;
    case 1: /* a produced batch with length and CRC made consistent */
        if (n >= RECORDS_V2_OVERHEAD) {
            uint32_t bl = (uint32_t)(n - RECORDS_LOG_OVERHEAD);
            in[8] = (uint8_t)(bl >> 24);
            in[9] = (uint8_t)(bl >> 16);
            in[10] = (uint8_t)(bl >> 8);
            in[11] = (uint8_t)bl;
            in[16] = 2;
            records_update_crc(in, n);
        }
        check_valid_batch(in, n);
        break;
    case 2: /* a legacy MessageSet (Produce v0-2) */
    case 3: {
        if (sel & 1)
            fix_legacy_crcs(in, n);
        struct records_batch_info info;
        int rc = records_upconvert(in, n, 12345, &lim_small, &out, &info);
        if (rc == KERR_NONE) {
            /* What up-conversion writes must validate. */
            struct records_limits any = {out.len, FUZZ_CAP * 2, true};
            die_if(records_validate_v2(out.data, out.len, &any, NULL, &scratch) != KERR_NONE);
        } else {
            die_if(out.len != 0);
        }
        break;
    }
    case 4: /* log bytes for Fetch v0-3 */
    case 5: {
        int rc = records_downconvert(in, n, (sel >> 3) & 1, &lim_small, &out, &scratch);
        die_if(rc != KERR_NONE && out.len != 0);
        break;
    }
    case 6: { /* log bytes for recovery */
        struct records_iter it;
        records_iter_init(&it, in, n, (sel >> 3) & 1);
        const uint8_t *b;
        size_t bsz;
        struct records_batch_info info;
        while (records_iter_next(&it, &info, &b, &bsz) == RECORDS_ITER_BATCH)
            die_if(b + bsz > in + n || bsz < RECORDS_V2_OVERHEAD);
        die_if(it.pos > n);
        break;
    }
    default: { /* a compressed payload: bits 3-5 pick the codec */
        int codec = (sel >> 3) & 7;
        obuf_put(&out, "pre", 3);
        int rc = compress_decompress(codec, in, n, &out, FUZZ_CAP);
        die_if(out.len > 3 + FUZZ_CAP);
        die_if(rc != 0 && out.len != 3);
        die_if(out.cap > 3 + FUZZ_CAP && out.cap > 256);
        break;
    }
    }
    obuf_free(&out);
    obuf_free(&scratch);
    free(in);
    return 0;
}
