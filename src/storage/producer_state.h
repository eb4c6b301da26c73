/* producer_state.h: what one partition knows of each idempotent producer
 * (producer id, epoch, and the sequence numbers and offsets of its last five
 * batches), so that a retried batch gets its original offsets back instead
 * of being written twice, and a gap or a fenced epoch is refused.
 *
 * Rules (Kafka's, for producers without transactions):
 *   epoch below the known one            INVALID_PRODUCER_EPOCH (47)
 *   epoch above it                       accepted only with sequence 0
 *   same (first, last) sequence as one of
 *   the last five batches                a duplicate: answer its offsets
 *   first sequence != last sequence + 1  OUT_OF_ORDER_SEQUENCE_NUMBER (45)
 *   unknown producer, sequence != 0      OUT_OF_ORDER_SEQUENCE_NUMBER
 * Sequences wrap from INT32_MAX to 0.
 *
 * The state is saved in <partition dir>/producer-state (format below) when
 * the log closes cleanly and when a segment rolls; after a crash the
 * partition log replays the batches after the saved offset.  Loop thread.
 *
 * File format, big-endian: u32 magic 0x50535431 ("PST1"), i64 offset the
 * state covers up to, u32 count, then per producer: i64 id, i16 epoch,
 * i64 last append wall time, u8 n, n x (i32 first seq, i32 last seq,
 * i64 base offset, i32 last offset delta); then u32 CRC-32C of all before. */
#ifndef SHOPSTREAM_PRODUCER_STATE_H
#define SHOPSTREAM_PRODUCER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define PSTATE_BATCHES 5

struct pstate_batch {
    int32_t first_seq, last_seq;
    int64_t base_offset;
    int32_t last_offset_delta;
};

struct pstate_entry {
    int64_t producer_id;
    int16_t epoch;
    int64_t last_ms;                 /* wall time of its last append */
    struct pstate_batch batches[PSTATE_BATCHES]; /* oldest first */
    int nbatches;
};

struct pstate {
    struct pstate_entry *entries;    /* owned, open addressing by producer id */
    int cap, count;
};

enum { PSTATE_APPEND = 0, PSTATE_DUPLICATE = 1 };

void pstate_init(struct pstate *ps);
void pstate_free(struct pstate *ps);

/* Checks a batch before it is appended.  Returns PSTATE_APPEND,
 * PSTATE_DUPLICATE with the original *dup_base_offset and
 * *dup_last_offset_delta, or a negative Kafka error code (-45, -47). */
int pstate_check(const struct pstate *ps, int64_t producer_id, int16_t epoch, int32_t base_seq,
                 int32_t last_offset_delta, int64_t *dup_base_offset, int32_t *dup_last_offset_delta);
/* Records an appended batch.  Returns 0 or -1 when out of memory. */
int pstate_update(struct pstate *ps, int64_t producer_id, int16_t epoch, int32_t base_seq,
                  int32_t last_offset_delta, int64_t base_offset, int64_t now_ms);
/* Drops producers idle for longer than max_idle_ms. */
void pstate_expire(struct pstate *ps, int64_t now_ms, int64_t max_idle_ms);

/* Writes the state as of `offset` to path atomically.  Returns 0 or -1. */
int pstate_save(const struct pstate *ps, const char *path, int64_t offset);
/* Loads path into an empty ps.  Returns the offset it covers, or -1 when
 * the file is missing or damaged (ps is left empty). */
int64_t pstate_load(struct pstate *ps, const char *path);

#endif
