/* handle_describe_log_dirs.c: DescribeLogDirs (key 35), v0-4.  The broker
 * has one log dir (the first of log.dirs), reported by its absolute path
 * with ErrorCode 0.  A null Topics array asks for every partition of every
 * topic; otherwise for the named partitions, where unknown topics and
 * partitions are simply left out and duplicates are merged (as Kafka does).
 * PartitionSize is what Kafka reports, the bytes of the partition's segment
 * (.log) files, taken from the sizes the partition log keeps in memory, so
 * no file is stat()ed.  OffsetLag is 0 (the log end is the high watermark)
 * and IsFutureKey false (there is no AlterReplicaLogDirs).  v4 adds the
 * volume's TotalBytes and UsableBytes, from statvfs(2) of the log dir.
 * Wire format: shared/kafka-protocol/message/DescribeLogDirs*.json. */
#include <limits.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/handler.h"
#include "storage/catalog.h"

/* One topic picked by the request, with the partitions asked for. */
struct pick {
    struct topic *t; /* borrows */
    bool *want;      /* npartitions flags, in the arena */
    int32_t nwant;   /* how many flags are set */
};

/* blocks × block size, or INT64_MAX when that does not fit (Kafka reports
 * Long.MAX_VALUE for volumes too large for a long). */
static int64_t volume_bytes(uint64_t blocks, uint64_t frsize)
{
    if (frsize && blocks > (uint64_t)INT64_MAX / frsize)
        return INT64_MAX;
    return (int64_t)(blocks * frsize);
}

/* The log dir as an absolute path, in the arena: canonical when realpath
 * resolves it (it exists: the catalog opened it), else joined to the
 * working directory as Java's File.getAbsolutePath would. */
static kstr absolute_dir(struct request *r, const char *dir)
{
    char buf[PATH_MAX];
    if (realpath(dir, buf))
        return handler_kstr(r, buf);
    if (dir[0] == '/' || !getcwd(buf, sizeof buf))
        return handler_kstr(r, dir);
    size_t n = strlen(buf);
    char *out = arena_alloc(&r->arena, n + 1 + strlen(dir) + 1);
    if (!out)
        return handler_kstr(r, dir);
    memcpy(out, buf, n);
    out[n] = '/';
    strcpy(out + n + 1, dir);
    return kstr_c(out);
}

/* Fills one response topic with the picked partitions, in index order. */
static int fill_topic(struct request *r, struct DescribeLogDirsResponse_DescribeLogDirsTopic *out,
                      const struct pick *pk)
{
    struct topic *t = pk->t;
    out->Name = kstr_c(t->name);
    if (HANDLER_ITEMS(r, out->Partitions, pk->nwant, DescribeLogDirsResponse_DescribeLogDirsPartition_init) < 0)
        return -1;
    int32_t k = 0;
    for (int32_t i = 0; i < t->npartitions && k < pk->nwant; i++) {
        if (pk->want && !pk->want[i])
            continue;
        struct DescribeLogDirsResponse_DescribeLogDirsPartition *p = &out->Partitions.items[k++];
        p->PartitionIndex = i;
        p->PartitionSize = plog_size(t->parts[i]->log);
        p->OffsetLag = 0;
        p->IsFutureKey = false;
    }
    return 0;
}

/* The topics a request names that exist, each once, in the order of their
 * first mention, with the existing partitions asked for.  Topics with no
 * such partition are dropped.  Returns the count, or -1 when out of memory.
 * The cost per entry is one catalog lookup plus a scan of the topics
 * picked so far, which are distinct catalog topics: O(entries × topics),
 * as for Metadata. */
static int32_t pick_named(struct broker *b, struct request *r, const struct DescribeLogDirsRequest *req,
                          struct pick **out)
{
    int32_t cap = req->Topics.count < b->cat.ntopics ? req->Topics.count : b->cat.ntopics;
    struct pick *picks = cap > 0 ? arena_alloc(&r->arena, (size_t)cap * sizeof *picks) : NULL;
    if (cap > 0 && !picks)
        return -1;
    int32_t npicks = 0;
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const struct DescribeLogDirsRequest_DescribableLogDirTopic *q = &req->Topics.items[i];
        if (q->Topic.len <= 0 || q->Partitions.count <= 0)
            continue;
        struct topic *t = catalog_find(&b->cat, q->Topic.ptr, (size_t)q->Topic.len);
        if (!t || t->npartitions <= 0)
            continue;
        struct pick *pk = NULL;
        for (int32_t j = 0; j < npicks && !pk; j++)
            if (picks[j].t == t)
                pk = &picks[j];
        if (!pk) {
            if (npicks == cap)
                continue; /* cannot happen: distinct topics <= ntopics */
            pk = &picks[npicks++];
            pk->t = t;
            pk->nwant = 0;
            pk->want = arena_alloc(&r->arena, (size_t)t->npartitions * sizeof *pk->want);
            if (!pk->want)
                return -1;
        }
        for (int32_t k = 0; k < q->Partitions.count; k++) {
            int32_t p = q->Partitions.items[k];
            if (p >= 0 && p < t->npartitions && !pk->want[p]) {
                pk->want[p] = true;
                pk->nwant++;
            }
        }
    }
    int32_t n = 0;
    for (int32_t j = 0; j < npicks; j++)
        if (picks[j].nwant > 0)
            picks[n++] = picks[j];
    *out = picks;
    return n;
}

/* Every partition of every topic, in catalog order. */
static int32_t pick_all(struct broker *b, struct request *r, struct pick **out)
{
    int32_t n = 0;
    struct pick *picks = b->cat.ntopics > 0 ? arena_alloc(&r->arena, (size_t)b->cat.ntopics * sizeof *picks)
                                            : NULL;
    if (b->cat.ntopics > 0 && !picks)
        return -1;
    for (int i = 0; i < b->cat.ntopics; i++) {
        struct topic *t = b->cat.topics[i];
        if (t->npartitions > 0)
            picks[n++] = (struct pick){t, NULL, t->npartitions};
    }
    *out = picks;
    return n;
}

int handle_describe_log_dirs(struct broker *b, struct request *r)
{
    int16_t v = r->api_version;
    struct DescribeLogDirsRequest req;
    if (DescribeLogDirsRequest_decode(&r->body, &r->arena, v, &req) < 0)
        return API_CLOSE;
    struct pick *picks = NULL;
    int32_t npicks = req.Topics.count < 0 ? pick_all(b, r, &picks) : pick_named(b, r, &req, &picks);
    if (npicks < 0)
        return API_CLOSE;

    struct DescribeLogDirsResponse resp;
    DescribeLogDirsResponse_init(&resp);
    resp.ErrorCode = KERR_NONE;
    if (HANDLER_ITEMS(r, resp.Results, 1, DescribeLogDirsResponse_DescribeLogDirsResult_init) < 0)
        return API_CLOSE;
    struct DescribeLogDirsResponse_DescribeLogDirsResult *dir = &resp.Results.items[0];
    dir->ErrorCode = KERR_NONE;
    dir->LogDir = absolute_dir(r, b->cat.data_dir);
    if (v >= 4) {
        /* the volume's size; left at -1 (unknown) if statvfs fails, while
         * the partition sizes, which come from memory, are still valid */
        struct statvfs sv;
        if (statvfs(b->cat.data_dir, &sv) == 0) {
            dir->TotalBytes = volume_bytes(sv.f_blocks, sv.f_frsize);
            dir->UsableBytes = volume_bytes(sv.f_bavail, sv.f_frsize);
        }
    }
    if (HANDLER_ITEMS(r, dir->Topics, npicks, DescribeLogDirsResponse_DescribeLogDirsTopic_init) < 0)
        return API_CLOSE;
    for (int32_t i = 0; i < npicks; i++)
        if (fill_topic(r, &dir->Topics.items[i], &picks[i]) < 0)
            return API_CLOSE;
    DescribeLogDirsResponse_encode(&r->out, v, &resp);
    return API_DONE;
}
