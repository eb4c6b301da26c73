/* process_setup.h: building one stream processor from command-line options,
 * shared by `shopstream process` and `shopstream bench process`. */
#ifndef SHOPSTREAM_PROCESS_SETUP_H
#define SHOPSTREAM_PROCESS_SETUP_H

#include <librdkafka/rdkafka.h>

#include "cli/client_opts.h"
#include "shop/processors.h"
#include "stream/runtime.h"

/* Creates processor `kind` ("orders", "aftersales", "analytics") named
 * "<prefix>-<kind>", its internal topics (through admin, borrowed), and its
 * application with the user's client settings o (and static membership
 * when instance is not NULL).  The shop topics must exist.  On success
 * returns 0 with *procp and *appp owned (stream_app_destroy, then
 * proc_free); on failure prints one sentence and returns -1 (*procp may
 * still need proc_free). */
int process_setup(const char *kind, const char *prefix, const char *instance,
                  const struct proc_settings *s, int commit_ms, const struct client_opts *o,
                  rd_kafka_t *admin, struct proc **procp, struct stream_app **appp);

#endif
