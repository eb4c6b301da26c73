/* conn.h: client connections (conn.c).  Loop thread only. */
#ifndef SHOPSTREAM_CONN_H
#define SHOPSTREAM_CONN_H

#include "broker/broker.h"

/* Binds and listens on b->listen_host:listen_port.  Returns 0 or -1 with err. */
int conn_listen(struct broker *b, char *err, size_t errlen);
/* Closes a connection; parked requests are freed when their work ends. */
void conn_close(struct conn *c, const char *why);
/* Closes connections past the frame deadline or idle too long. */
void conn_reap(struct broker *b);
void conn_pause_accept(struct broker *b);
void conn_resume_accept(struct broker *b);

#endif
