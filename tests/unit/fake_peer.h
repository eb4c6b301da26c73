/* fake_peer.h: the socket plumbing of the scripted Kafka peers that unit
 * tests run in a thread to talk to a client (test_kconn, test_fetcher,
 * test_logdirs); each test keeps its own script of answers. */
#ifndef SHOPSTREAM_TEST_FAKE_PEER_H
#define SHOPSTREAM_TEST_FAKE_PEER_H

#include <stddef.h>
#include <stdint.h>

/* A listening socket on a free 127.0.0.1 port (in *port); -1 on failure. */
int fake_listen(int *port);
/* Reads exactly n bytes: 0, or -1 on error or end of stream. */
int fake_read_full(int fd, uint8_t *p, size_t n);
/* Writes all n bytes (no SIGPIPE): 0, or -1. */
int fake_write_full(int fd, const uint8_t *p, size_t n);
/* Reads one request frame: its payload after the 4-byte size into buf
 * (at most max bytes) and its length into *len.  0, or -1 (error, end of
 * stream, or a frame over max). */
int fake_read_frame(int fd, uint8_t *buf, size_t max, size_t *len);
/* Waits until the client hangs up, so that it never sees a reset. */
void fake_drain(int fd);

#endif
