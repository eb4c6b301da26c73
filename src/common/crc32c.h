/* crc32c.h: CRC-32C (Castagnoli), the checksum of Kafka record batches.
 * Uses the SSE4.2 instruction when the CPU has it.  Leaf module. */
#ifndef SHOPSTREAM_CRC32C_H
#define SHOPSTREAM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c(0, p, n) is the checksum of p[0..n); pass a previous result as crc
 * to continue over more bytes. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
