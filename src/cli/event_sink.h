/* event_sink.h: opening the sink of the event sources (`simulate`,
 * `replay`) from their command-line options: lines on stdout, or a Kafka
 * producer on the cluster of --bootstrap after the shop topics exist. */
#ifndef SHOPSTREAM_EVENT_SINK_H
#define SHOPSTREAM_EVENT_SINK_H

#include "cli/client_opts.h"
#include "shop/sink.h"

/* Returns an owned sink (shop_sink_close), or NULL after printing one
 * sentence prefixed by cmd.  With to_stdout, lines go to stdout and no
 * cluster is needed; otherwise the shop topics are created with
 * `partitions` partitions where missing, and the producer takes the sink's
 * settings as defaults, so that the user's -X still wins (and --timeout-ms,
 * when given, bounds each event's delivery). */
struct shop_sink *event_sink_open(const struct client_opts *co, const char *cmd, int to_stdout,
                                  int partitions);

#endif
