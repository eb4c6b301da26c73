/* fuzz_segment.c: libFuzzer harness for the on-disk readers: a segment's
 * .log (recovery scan), its .index and .timeindex files (loading), lookups
 * by offset and time over whatever was accepted, and a partition log opened
 * over the damaged files, clean and unclean.
 * Input: byte 0 = flags, bytes 1-2 = .index length, bytes 3-4 = .timeindex
 * length, then the .index, the .timeindex and the .log contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/partition_log.h"
#include "storage/segment.h"

static char dir[256];

static void put_file(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/shopstream-fuzz-segment-%d", (int)getpid());
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
        if (system(cmd) != 0)
            abort();
        log_min_level = LOG_ERROR + 1;
    }
    if (size < 5)
        return 0;
    int flags = data[0];
    size_t ilen = (size_t)(data[1] << 8 | data[2]), tlen = (size_t)(data[3] << 8 | data[4]);
    data += 5;
    size -= 5;
    if (ilen > size)
        ilen = size;
    if (tlen > size - ilen)
        tlen = size - ilen;
    put_file("00000000000000000000.index", data, ilen);
    put_file("00000000000000000000.timeindex", data + ilen, tlen);
    put_file("00000000000000000000.log", data + ilen + tlen, size - ilen - tlen);
    unlink("recovery-point");

    int64_t cut;
    struct segment *s = seg_open_checked(dir, 0, flags & 1, flags & 2, &cut);
    if (s) {
        int64_t pos, base;
        int32_t bsize;
        for (int64_t off = 0; off < 64; off += 7)
            seg_find(s, off, &pos, &bsize);
        seg_find_time(s, 0, &pos, &base);
        seg_find_time(s, INT64_MAX / 2, &pos, &base);
        seg_close(s);
    }
    /* the whole partition log over the same files (rewritten: the scan may
     * have cut the .log) */
    put_file("00000000000000000000.index", data, ilen);
    put_file("00000000000000000000.timeindex", data + ilen, tlen);
    put_file("00000000000000000000.log", data + ilen + tlen, size - ilen - tlen);
    struct topic_settings ts;
    topic_settings_resolve(&ts, NULL, NULL);
    ts.compact = flags & 4;
    struct plog *l = plog_open(dir, &ts, flags & 8);
    if (l) {
        struct plog_slice sl;
        plog_read(l, l->log_start_offset, 1 << 20, true, &sl);
        int64_t found;
        plog_offset_for_time(l, 0, &found);
        plog_destroy(l);
        mkdir(dir, 0755);
    }
    return 0;
}
