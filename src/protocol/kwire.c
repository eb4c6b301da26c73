/* kwire.c: the out-of-line wire writers. */
#include "protocol/kwire.h"

#include <unistd.h>

void kw_records(struct obuf *w, const krecords *r, bool compact, bool nullable)
{
    int32_t len = r->len;
    if (len < 0 && !nullable)
        len = 0;
    kw__len(w, len < 0 ? -1 : len, compact, true);
    if (len <= 0)
        return;
    if (r->fd >= 0) {
        int fd = dup(r->fd);
        if (fd < 0) {
            w->oom = 1;
            return;
        }
        obuf_put_file(w, fd, r->file_off, len);
    } else {
        obuf_put(w, r->ptr, (size_t)len);
    }
}
