/* obuf.c: see obuf.h. */
#include "common/obuf.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"

void obuf_init(struct obuf *b)
{
    memset(b, 0, sizeof *b);
}

void obuf_reset(struct obuf *b)
{
    for (int i = 0; i < b->nfiles; i++)
        close(b->files[i].fd);
    b->nfiles = 0;
    b->len = 0;
    b->file_bytes = 0;
    b->oom = 0;
}

void obuf_free(struct obuf *b)
{
    obuf_reset(b);
    xfree(b->data);
    xfree(b->files);
    memset(b, 0, sizeof *b);
}

uint8_t *obuf_reserve(struct obuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (n == 0 && !b->data) {
        static uint8_t none[1]; /* a valid pointer for zero bytes */
        return none;
    }
    if (b->cap - b->len < n) {
        if (n > SIZE_MAX / 4 - b->len) {
            b->oom = 1;
            return NULL;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *d = xrealloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

void obuf_put(struct obuf *b, const void *p, size_t n)
{
    uint8_t *d = obuf_reserve(b, n);
    if (!d)
        return;
    if (n)
        memcpy(d, p, n);
    b->len += n;
}

void obuf_put_u8(struct obuf *b, uint8_t v)
{
    obuf_put(b, &v, 1);
}

void obuf_put_be16(struct obuf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    obuf_put(b, t, 2);
}

void obuf_put_be32(struct obuf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    obuf_put(b, t, 4);
}

void obuf_put_be64(struct obuf *b, uint64_t v)
{
    obuf_put_be32(b, (uint32_t)(v >> 32));
    obuf_put_be32(b, (uint32_t)v);
}

void obuf_patch_be32(struct obuf *b, size_t at, uint32_t v)
{
    if (b->oom || at + 4 > b->len)
        return;
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}

void obuf_put_file(struct obuf *b, int fd, int64_t off, int32_t len)
{
    if (b->oom) {
        close(fd);
        return;
    }
    if (b->nfiles == b->files_cap) {
        int cap = b->files_cap ? b->files_cap * 2 : 8;
        struct obuf_file *f = xrealloc(b->files, (size_t)cap * sizeof *f);
        if (!f) {
            b->oom = 1;
            close(fd);
            return;
        }
        b->files = f;
        b->files_cap = cap;
    }
    b->files[b->nfiles++] = (struct obuf_file){b->len, fd, off, len};
    b->file_bytes += len;
}

void obuf_insert(struct obuf *b, size_t at, const void *p, size_t n)
{
    if (!obuf_reserve(b, n) || at > b->len)
        return;
    memmove(b->data + at + n, b->data + at, b->len - at);
    memcpy(b->data + at, p, n);
    b->len += n;
}
