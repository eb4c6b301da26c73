/* api.h: the table of Kafka APIs the broker serves, with the version range
 * it advertises in ApiVersions, and one handler per API (handle_<api>.c).
 * A handler decodes r->body with the generated codec, writes the response
 * body into r->out, and returns API_DONE; or keeps the request and returns
 * API_PARKED, calling request_done() later; or returns API_CLOSE when the
 * request is malformed (the connection is closed without a reply, as Kafka
 * does). */
#ifndef SHOPSTREAM_API_H
#define SHOPSTREAM_API_H

#include <stdint.h>

#include "broker/broker.h"

enum { API_DONE = 0, API_PARKED = 1, API_CLOSE = -1 };

typedef int api_handler(struct broker *b, struct request *r);

struct api_entry {
    int16_t key;
    int16_t min_version, max_version; /* advertised */
    api_handler *handle;
};

extern const struct api_entry api_table[];
extern const int api_table_len;

/* The entry for key, or NULL when the broker does not serve it. */
const struct api_entry *api_find(int16_t key);

api_handler handle_offset_for_leader_epoch, handle_api_versions, handle_metadata, handle_produce, handle_fetch,
    handle_list_offsets, handle_create_topics, handle_delete_topics,
    handle_create_partitions, handle_describe_configs, handle_offset_commit, handle_offset_fetch,
    handle_find_coordinator, handle_join_group, handle_heartbeat, handle_leave_group, handle_sync_group,
    handle_describe_groups, handle_list_groups, handle_delete_groups, handle_offset_delete,
    handle_alter_configs, handle_incremental_alter_configs, handle_delete_records,
    handle_init_producer_id, handle_describe_log_dirs;

/* Fetch: re-checks parked fetches after appends and at their deadlines. */
void fetch_wake_parked(struct broker *b, bool timeout_pass);
/* Drops parked fetches of a closed connection. */
void fetch_forget_conn(struct broker *b, struct conn *c);

#endif
