/* clock.h: wall-clock and monotonic time in milliseconds.  Leaf module. */
#ifndef SHOPSTREAM_CLOCK_H
#define SHOPSTREAM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (record timestamps, segment ages). */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds on a clock that never jumps (timeouts, deadlines). */
static inline int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
