/* fuzz_kpi.c: libFuzzer harness for kpi_agg_decode (shop/kpi.c), the decoder
 * of the window aggregates kept in changelogs and partial records.  Byte 0
 * picks the exact-set cap (0..255, so "n above the cap" is reachable); the
 * rest is the encoding, copied into an exactly-sized heap block so that ASan
 * sees any read past its end.  Whatever decodes must be canonical (encoding
 * it again gives the input back byte for byte), must write its JSON, and
 * must merge with a second decoding of itself; a failure aborts.
 *
 * Build and run (from the repository root):
 *   make build/fuzz/fuzz_kpi
 *   build/fuzz/fuzz_kpi -max_total_time=60 build/fuzz/corpus/fuzz_kpi \
 *       tests/fuzz/seeds/fuzz_kpi */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shop/json.h"
#include "shop/kpi.h"

static void die_if(int cond)
{
    if (cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = data[0];
    size_t n = size - 1;
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);
    struct kpi_agg *a = kpi_agg_decode(in, n, cap);
    if (a) {
        struct jbuf b;
        jbuf_init(&b);
        die_if(kpi_agg_encode(a, &b) != 0);
        die_if(b.len != n || memcmp(b.p, in, n) != 0);
        jbuf_reset(&b);
        die_if(kpi_agg_write_json(a, 1, &b) != 0);
        die_if(b.len == 0 || b.p[0] != '{' || b.p[b.len - 1] != '}');
        struct kpi_agg *again = kpi_agg_decode(in, n, cap);
        die_if(!again);
        int64_t uv = kpi_distinct_count(&a->uv);
        die_if(kpi_agg_merge(a, again) != 0);
        /* a union with itself is the same set, exact or not */
        die_if(kpi_distinct_count(&a->uv) != uv);
        jbuf_reset(&b);
        die_if(kpi_agg_write_json(a, 0, &b) != 0);
        jbuf_reset(&b);
        die_if(kpi_agg_encode(a, &b) != 0);
        kpi_agg_free(again);
        jbuf_free(&b);
        kpi_agg_free(a);
    }
    free(in);
    return 0;
}
