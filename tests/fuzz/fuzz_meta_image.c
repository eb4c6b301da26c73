/* fuzz_meta_image.c: libFuzzer harness for the cluster metadata decoders
 * (cluster/meta_image.c): the commands every broker applies from the Raft
 * log and the snapshots a broker restores.  Byte 0 picks the target:
 *   even: the rest is one command, applied to a small image (three brokers,
 *         one topic of two partitions); whatever is applied must leave an
 *         image that encodes, decodes and encodes again to the same bytes;
 *   odd:  the rest is a snapshot; one that decodes must encode back to the
 *         same bytes (snapshots are canonical).
 * The input is copied into an exactly-sized heap block so that ASan sees
 * any read past its end; a failed check aborts.
 *
 * Build and run (from the repository root):
 *   make build/fuzz/fuzz_meta_image
 *   build/fuzz/fuzz_meta_image -max_total_time=60 build/fuzz/corpus/fuzz_meta_image */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/meta_image.h"
#include "common/obuf.h"

static void die_if(int cond)
{
    if (cond)
        abort();
}

/* An image to apply commands to: brokers 1-3, topic "t" on them. */
static void base_image(struct meta_image *m)
{
    char err[256];
    struct obuf w;
    int64_t off = 0;
    kuuid inc = {{0}};
    for (int32_t id = 1; id <= 3; id++) {
        obuf_init(&w);
        inc.b[0] = (uint8_t)id;
        mi_enc_register_broker(&w, id, "127.0.0.1", 9090 + id, inc);
        meta_image_apply(m, w.data, w.len, ++off, NULL, err, sizeof err);
        obuf_free(&w);
    }
    kuuid tid = {{0}};
    tid.b[15] = 7;
    int32_t counts[2] = {3, 3}, replicas[6] = {1, 2, 3, 2, 3, 1};
    obuf_init(&w);
    mi_enc_create_topic(&w, "t", tid, 2, counts, replicas, 0, NULL, NULL);
    meta_image_apply(m, w.data, w.len, ++off, NULL, err, sizeof err);
    obuf_free(&w);
}

/* encode -> decode -> encode gives the same bytes */
static void check_canonical(const struct meta_image *m)
{
    char err[256];
    struct obuf a, b;
    obuf_init(&a);
    obuf_init(&b);
    if (meta_image_encode(m, &a) == 0 && !a.oom) {
        struct meta_image copy;
        meta_image_init(&copy);
        die_if(meta_image_decode(&copy, a.data, a.len, err, sizeof err) != 0);
        die_if(meta_image_encode(&copy, &b) != 0);
        die_if(b.len != a.len || memcmp(a.data, b.data, a.len) != 0);
        meta_image_free(&copy);
    }
    obuf_free(&a);
    obuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);
    char err[256];
    struct meta_image m;
    meta_image_init(&m);
    if (data[0] % 2 == 0) {
        base_image(&m);
        int64_t result;
        meta_image_apply(&m, in, n, m.offset + 1, &result, err, sizeof err);
        check_canonical(&m);
    } else if (meta_image_decode(&m, in, n, err, sizeof err) == 0) {
        struct obuf w;
        obuf_init(&w);
        die_if(meta_image_encode(&m, &w) != 0);
        die_if(w.len != n || memcmp(w.data, in, n) != 0);
        obuf_free(&w);
    }
    meta_image_free(&m);
    free(in);
    return 0;
}
