/* compress.c: Kafka's four codecs over zlib, snappy-c, LZ4F and zstd, with
 * streaming decompression into a capped output buffer (see compress.h).
 *
 * Output growth is done here by hand instead of with obuf_reserve, because
 * obuf doubles its capacity and could so allocate up to twice the cap; here
 * the capacity never exceeds the length on entry plus max_out.  When the
 * output has reached the cap, the decoder is given a one-byte "probe"
 * buffer: if it writes anything there, the data is bigger than the cap. */
#include "protocol/compress.h"

#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/alloc.h"

/* How much output to ask for at least each time the buffer grows. */
#define SINK_MIN_GROW 16384

/* Xerial's stream header: magic, then int32 version and int32 compat. */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_LEN 16

/* The capped output of one decompression. */
struct sink {
    struct obuf *o;   /* borrowed */
    size_t base;      /* o->len on entry, restored on error */
    size_t limit;     /* o->len may not go past this */
    size_t hint;      /* expected output size, for the first growth */
    uint8_t probe[1]; /* where the decoder writes once the cap is reached */
};

/* Gives the decoder a place to write: room bytes at *dst.  Returns 0 for
 * real output space, 1 for the probe byte (the cap is reached), or
 * COMPRESS_ENOMEM. */
static int sink_room(struct sink *s, uint8_t **dst, size_t *room)
{
    struct obuf *o = s->o;
    if (o->len >= s->limit) {
        *dst = s->probe;
        *room = sizeof s->probe;
        return 1;
    }
    if (o->cap <= o->len) {
        size_t want = s->hint > SINK_MIN_GROW ? s->hint : SINK_MIN_GROW;
        size_t ncap = o->cap > SIZE_MAX / 2 ? SIZE_MAX : o->cap * 2;
        if (ncap < o->len + want)
            ncap = want > SIZE_MAX - o->len ? SIZE_MAX : o->len + want;
        if (ncap > s->limit)
            ncap = s->limit;
        uint8_t *d = xrealloc(o->data, ncap);
        if (!d) {
            o->oom = 1;
            return COMPRESS_ENOMEM;
        }
        o->data = d;
        o->cap = ncap;
        s->hint = 0;
    }
    size_t end = o->cap < s->limit ? o->cap : s->limit;
    *dst = o->data + o->len;
    *room = end - o->len;
    return 0;
}

/* Makes sure exactly n more bytes fit (n within the cap already checked). */
static int sink_exact(struct sink *s, size_t n)
{
    struct obuf *o = s->o;
    if (o->cap - o->len >= n)
        return 0;
    uint8_t *d = xrealloc(o->data, o->len + n);
    if (!d) {
        o->oom = 1;
        return COMPRESS_ENOMEM;
    }
    o->data = d;
    o->cap = o->len + n;
    return 0;
}

/* ---- gzip / zlib ---- */

/* zlib allocates through our counting allocator. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return xmalloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    xfree(p);
}

static int gzip_decompress(const uint8_t *in, size_t n, struct sink *s)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    /* 15 + 32: a 32 KiB window, and detect a zlib or a gzip header. */
    int zr = inflateInit2(&zs, 15 + 32);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? COMPRESS_ENOMEM : COMPRESS_ECORRUPT;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n; /* n <= INT32_MAX, checked by the caller */
    int rc;
    for (;;) {
        uint8_t *dst;
        size_t room;
        int probe = sink_room(s, &dst, &room);
        if (probe < 0) {
            rc = probe;
            break;
        }
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs.next_out = dst;
        zs.avail_out = (uInt)room;
        uInt in_before = zs.avail_in;
        zr = inflate(&zs, Z_NO_FLUSH);
        size_t produced = room - zs.avail_out;
        if (probe && produced) {
            rc = COMPRESS_ETOOBIG;
            break;
        }
        if (!probe)
            s->o->len += produced;
        if (zr == Z_STREAM_END) {
            if (zs.avail_in == 0) {
                rc = 0;
                break;
            }
            /* Another gzip member may follow; anything else is garbage. */
            if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b &&
                inflateReset(&zs) == Z_OK)
                continue;
            rc = COMPRESS_ECORRUPT;
            break;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR && (produced || zs.avail_in != in_before))
            continue;
        /* Z_BUF_ERROR without progress means the input ended early. */
        rc = zr == Z_MEM_ERROR ? COMPRESS_ENOMEM : COMPRESS_ECORRUPT;
        break;
    }
    inflateEnd(&zs);
    return rc;
}

static int gzip_compress(const uint8_t *in, size_t n, struct obuf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    /* 15 + 16: a 32 KiB window with a gzip header, as Kafka's clients write. */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return COMPRESS_ENOMEM;
    uLong bound = deflateBound(&zs, (uLong)n);
    uint8_t *dst = obuf_reserve(out, bound);
    if (!dst) {
        deflateEnd(&zs);
        return COMPRESS_ENOMEM;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = dst;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    size_t written = bound - zs.avail_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END)
        return zr == Z_MEM_ERROR ? COMPRESS_ENOMEM : COMPRESS_ECORRUPT;
    out->len += written;
    return 0;
}

/* ---- snappy ---- */

static int snappy_raw_decompress(const uint8_t *in, size_t n, struct sink *s)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)in, n, &ulen) != SNAPPY_OK)
        return COMPRESS_ECORRUPT;
    /* The length is declared up front: check it before allocating. */
    if (ulen > s->limit - s->o->len)
        return COMPRESS_ETOOBIG;
    if (ulen == 0) {
        char dummy[1];
        size_t got = sizeof dummy;
        return snappy_uncompress((const char *)in, n, dummy, &got) == SNAPPY_OK && got == 0
                   ? 0
                   : COMPRESS_ECORRUPT;
    }
    int rc = sink_exact(s, ulen);
    if (rc)
        return rc;
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, n, (char *)s->o->data + s->o->len, &got) != SNAPPY_OK ||
        got != ulen)
        return COMPRESS_ECORRUPT;
    s->o->len += ulen;
    return 0;
}

static int snappy_decompress(const uint8_t *in, size_t n, struct sink *s)
{
    if (n < sizeof xerial_magic || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_raw_decompress(in, n, s);
    if (n < XERIAL_HEADER_LEN)
        return COMPRESS_ECORRUPT;
    /* The version and compat fields are not checked: every writer uses 1. */
    size_t pos = XERIAL_HEADER_LEN;
    while (pos < n) {
        if (n - pos < 4)
            return COMPRESS_ECORRUPT;
        uint32_t blen = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 |
                        (uint32_t)in[pos + 2] << 8 | in[pos + 3];
        pos += 4;
        if (blen == 0 || blen > n - pos)
            return COMPRESS_ECORRUPT;
        int rc = snappy_raw_decompress(in + pos, blen, s);
        if (rc)
            return rc;
        pos += blen;
    }
    return 0;
}

static int snappy_compress_raw(const uint8_t *in, size_t n, struct obuf *out)
{
    size_t bound = snappy_max_compressed_length(n);
    uint8_t *dst = obuf_reserve(out, bound);
    if (!dst)
        return COMPRESS_ENOMEM;
    size_t got = bound;
    if (snappy_compress((const char *)in, n, (char *)dst, &got) != SNAPPY_OK)
        return COMPRESS_ENOMEM; /* only fails when the buffer is too small */
    out->len += got;
    return 0;
}

/* ---- lz4 ---- */

static int lz4_decompress(const uint8_t *in, size_t n, struct sink *s)
{
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return COMPRESS_ENOMEM;
    size_t pos = 0;
    int rc;
    for (;;) {
        uint8_t *dst;
        size_t room;
        int probe = sink_room(s, &dst, &room);
        if (probe < 0) {
            rc = probe;
            break;
        }
        size_t dsz = room, ssz = n - pos;
        size_t r = LZ4F_decompress(dctx, dst, &dsz, in + pos, &ssz, NULL);
        if (LZ4F_isError(r)) {
            rc = COMPRESS_ECORRUPT;
            break;
        }
        if (probe && dsz) {
            rc = COMPRESS_ETOOBIG;
            break;
        }
        if (!probe)
            s->o->len += dsz;
        pos += ssz;
        if (r == 0 && pos == n) { /* last frame decoded and flushed */
            rc = 0;
            break;
        }
        if (ssz == 0 && dsz == 0) { /* input used up mid-frame */
            rc = COMPRESS_ECORRUPT;
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

static int lz4_compress(const uint8_t *in, size_t n, struct obuf *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    /* Independent 64 KiB blocks and no content size: the forms every Kafka
     * client's LZ4 reader accepts. */
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(n, &prefs);
    uint8_t *dst = obuf_reserve(out, bound);
    if (!dst)
        return COMPRESS_ENOMEM;
    size_t r = LZ4F_compressFrame(dst, bound, in, n, &prefs);
    if (LZ4F_isError(r))
        return COMPRESS_ENOMEM;
    out->len += r;
    return 0;
}

/* ---- zstd ---- */

static int zstd_err(size_t r)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_memory_allocation:
        return COMPRESS_ENOMEM;
    case ZSTD_error_frameParameter_windowTooLarge:
        return COMPRESS_ETOOBIG;
    default:
        return COMPRESS_ECORRUPT;
    }
}

/* The largest window worth accepting for output capped at max_out: a frame
 * never needs to look back further than its own output, but common writers
 * declare 2 MiB windows (level 3 with unknown size) even for small data. */
static int zstd_window_log(size_t max_out)
{
    int wl = 21;
    while (wl < 27 && ((size_t)1 << wl) < max_out)
        wl++;
    return wl;
}

static int zstd_decompress(const uint8_t *in, size_t n, struct sink *s, size_t max_out)
{
    unsigned long long csize = ZSTD_getFrameContentSize(in, n);
    if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize != ZSTD_CONTENTSIZE_ERROR) {
        if (csize > max_out)
            return COMPRESS_ETOOBIG;
        s->hint = (size_t)csize;
    }
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return COMPRESS_ENOMEM;
    size_t r = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, zstd_window_log(max_out));
    if (ZSTD_isError(r)) {
        ZSTD_freeDCtx(dctx);
        return COMPRESS_ENOMEM;
    }
    ZSTD_inBuffer ib = {in, n, 0};
    int rc;
    for (;;) {
        uint8_t *dst;
        size_t room;
        int probe = sink_room(s, &dst, &room);
        if (probe < 0) {
            rc = probe;
            break;
        }
        ZSTD_outBuffer ob = {dst, room, 0};
        size_t in_before = ib.pos;
        r = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = zstd_err(r);
            break;
        }
        if (probe && ob.pos) {
            rc = COMPRESS_ETOOBIG;
            break;
        }
        if (!probe)
            s->o->len += ob.pos;
        if (r == 0 && ib.pos == ib.size) { /* last frame decoded and flushed */
            rc = 0;
            break;
        }
        /* A call that neither consumes input nor produces output, although
         * it had room, means the decoder wants input that is not there: the
         * frame is truncated. */
        if (ib.pos == in_before && ob.pos == 0) {
            rc = COMPRESS_ECORRUPT;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

static int zstd_compress(const uint8_t *in, size_t n, struct obuf *out)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *dst = obuf_reserve(out, bound);
    if (!dst)
        return COMPRESS_ENOMEM;
    size_t r = ZSTD_compress(dst, bound, in, n, 3);
    if (ZSTD_isError(r))
        return zstd_err(r);
    out->len += r;
    return 0;
}

/* ---- public ---- */

int compress_decompress(int codec, const uint8_t *in, size_t n, struct obuf *out, size_t max_out)
{
    if (codec < COMPRESS_NONE || codec > COMPRESS_ZSTD)
        return COMPRESS_EUNSUPPORTED;
    if (out->oom)
        return COMPRESS_ENOMEM;
    if (n > INT32_MAX)
        return COMPRESS_ETOOBIG;
    struct sink s = {
        .o = out,
        .base = out->len,
        .limit = max_out > SIZE_MAX - out->len ? SIZE_MAX : out->len + max_out,
        /* A guess for the first growth: Kafka payloads typically shrink 2-5x. */
        .hint = n > SIZE_MAX / 4 ? SIZE_MAX : n * 4,
    };
    int rc;
    switch (codec) {
    case COMPRESS_NONE:
        if (n > max_out) {
            rc = COMPRESS_ETOOBIG;
        } else if (!(rc = sink_exact(&s, n)) && n) {
            memcpy(out->data + out->len, in, n);
            out->len += n;
        }
        break;
    case COMPRESS_GZIP:
        rc = gzip_decompress(in, n, &s);
        break;
    case COMPRESS_SNAPPY:
        rc = snappy_decompress(in, n, &s);
        break;
    case COMPRESS_LZ4:
        rc = lz4_decompress(in, n, &s);
        break;
    default:
        rc = zstd_decompress(in, n, &s, max_out);
        break;
    }
    if (rc)
        out->len = s.base;
    return rc;
}

int compress_compress(int codec, const uint8_t *in, size_t n, struct obuf *out)
{
    if (codec < COMPRESS_NONE || codec > COMPRESS_ZSTD)
        return COMPRESS_EUNSUPPORTED;
    if (out->oom)
        return COMPRESS_ENOMEM;
    if (n > INT32_MAX)
        return COMPRESS_ETOOBIG;
    size_t base = out->len;
    int rc;
    switch (codec) {
    case COMPRESS_NONE:
        if (n) /* obuf_put of 0 bytes to an empty obuf computes NULL + 0 */
            obuf_put(out, in, n);
        rc = out->oom ? COMPRESS_ENOMEM : 0;
        break;
    case COMPRESS_GZIP:
        rc = gzip_compress(in, n, out);
        break;
    case COMPRESS_SNAPPY:
        rc = snappy_compress_raw(in, n, out);
        break;
    case COMPRESS_LZ4:
        rc = lz4_compress(in, n, out);
        break;
    default:
        rc = zstd_compress(in, n, out);
        break;
    }
    if (rc)
        out->len = base;
    return rc;
}

const char *compress_codec_name(int codec)
{
    switch (codec) {
    case COMPRESS_NONE:
        return "none";
    case COMPRESS_GZIP:
        return "gzip";
    case COMPRESS_SNAPPY:
        return "snappy";
    case COMPRESS_LZ4:
        return "lz4";
    case COMPRESS_ZSTD:
        return "zstd";
    default:
        return "unknown";
    }
}
