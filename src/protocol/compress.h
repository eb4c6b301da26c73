/* compress.h: the compression codecs of Kafka record batches and legacy
 * wrapper messages: gzip (zlib), snappy (raw and xerial-framed), lz4 (LZ4
 * frame format) and zstd.  Decompression streams into a capped output so
 * that a compression bomb never makes us allocate more than the cap.
 *
 * This module knows nothing of record formats (records.c decides what to
 * decompress and which Kafka error to report).  Codec numbers are Kafka's
 * attribute bits 0-2, described in shared/kafka-protocol/README.md
 * ("RecordBatch" and "Legacy MessageSet"). */
#ifndef SHOPSTREAM_COMPRESS_H
#define SHOPSTREAM_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/obuf.h"

/* Kafka's codec numbers (RecordBatch attributes bits 0-2). */
enum compress_codec {
    COMPRESS_NONE = 0,
    COMPRESS_GZIP = 1,
    COMPRESS_SNAPPY = 2,
    COMPRESS_LZ4 = 3,
    COMPRESS_ZSTD = 4,
};

/* Results: 0 on success, otherwise one of these negative values. */
enum compress_err {
    COMPRESS_OK = 0,
    COMPRESS_ECORRUPT = -1,     /* malformed, truncated or trailing-garbage input */
    COMPRESS_ETOOBIG = -2,      /* the output would exceed max_out */
    COMPRESS_ENOMEM = -3,       /* an allocation failed (out->oom may be set) */
    COMPRESS_EUNSUPPORTED = -4, /* codec number not 0..4 */
};

/* Decompresses in[0..n) with `codec` and appends the result to out.
 * Borrows in and out.  At most max_out bytes are appended, and out's
 * capacity is grown to no more than out->len + max_out: when the data would
 * inflate past that, decoding stops and COMPRESS_ETOOBIG is returned.
 * On any error out->len is restored to its value on entry (capacity grown
 * so far is kept).  Inputs above INT32_MAX bytes are refused (ETOOBIG).
 *
 * Formats accepted:
 *   gzip:   a gzip stream (several members allowed) or a zlib stream.
 *   snappy: raw snappy (librdkafka) or xerial framing ("\x82SNAPPY\0",
 *           int32 version, int32 compat, then int32-big-endian-length blocks
 *           of raw snappy), as the Java client and kafka-python write.
 *   lz4:    LZ4 frame format, one or more frames.
 *   zstd:   one or more zstd frames.
 *   none:   the input is copied.
 * Codec libraries may allocate their own working state with malloc: zstd at
 * most a window of min(max(2 MiB, max_out), 128 MiB), lz4 at most ~4 MiB. */
int compress_decompress(int codec, const uint8_t *in, size_t n, struct obuf *out, size_t max_out);

/* Compresses in[0..n) and appends the result to out.  Borrows in and out.
 * gzip writes a gzip header; snappy writes raw snappy (no xerial framing);
 * lz4 writes one LZ4 frame of independent 64 KiB blocks; zstd uses level 3.
 * Returns 0, COMPRESS_ENOMEM, COMPRESS_EUNSUPPORTED, or COMPRESS_ETOOBIG for
 * inputs above INT32_MAX bytes.  On error out->len is restored. */
int compress_compress(int codec, const uint8_t *in, size_t n, struct obuf *out);

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown".  Static string. */
const char *compress_codec_name(int codec);

#endif
