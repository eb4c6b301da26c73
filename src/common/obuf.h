/* obuf.h: an output buffer of bytes in memory with file ranges spliced in.
 * Responses are built here: a Fetch response refers to record bytes in a
 * segment file by (fd, offset, length) instead of copying them, and the
 * sender writes memory with write() and file ranges with sendfile().
 * Leaf module. */
#ifndef SHOPSTREAM_OBUF_H
#define SHOPSTREAM_OBUF_H

#include <stddef.h>
#include <stdint.h>

/* A file range that stands logically at byte `at` of the memory part. */
struct obuf_file {
    size_t at;     /* position in data[] where the range is inserted */
    int fd;        /* owned: a dup() of the segment fd, closed by obuf_free */
    int64_t off;   /* offset in the file */
    int32_t len;   /* bytes */
};

struct obuf {
    uint8_t *data;           /* owned */
    size_t len, cap;
    struct obuf_file *files; /* owned, in increasing `at` order */
    int nfiles, files_cap;
    int64_t file_bytes;      /* sum of files[].len */
    int oom;                 /* sticky: an allocation failed, contents are incomplete */
};

void obuf_init(struct obuf *b);
void obuf_free(struct obuf *b);
void obuf_reset(struct obuf *b);
/* Room for n more bytes; returns a pointer to write them, or NULL (oom set). */
uint8_t *obuf_reserve(struct obuf *b, size_t n);
void obuf_put(struct obuf *b, const void *p, size_t n);
void obuf_put_u8(struct obuf *b, uint8_t v);
void obuf_put_be16(struct obuf *b, uint16_t v);
void obuf_put_be32(struct obuf *b, uint32_t v);
void obuf_put_be64(struct obuf *b, uint64_t v);
void obuf_patch_be32(struct obuf *b, size_t at, uint32_t v);
/* Splices a file range in at the current end.  Takes fd (closed on free). */
void obuf_put_file(struct obuf *b, int fd, int64_t off, int32_t len);
/* Inserts n bytes at position at (memory part only, no file ranges after it). */
void obuf_insert(struct obuf *b, size_t at, const void *p, size_t n);
/* Total bytes on the wire: memory plus file ranges. */
static inline int64_t obuf_wire_len(const struct obuf *b) { return (int64_t)b->len + b->file_bytes; }

#endif
