/* topic_config.h: the per-topic settings Kafka defines, each with the broker
 * property that supplies its default (e.g. segment.bytes <- log.segment.bytes),
 * its type and its valid range.  Used to validate CreateTopics/AlterConfigs
 * and to answer DescribeConfigs.  Values are kept as strings, as Kafka does,
 * and resolved into struct topic_settings for the hot path. */
#ifndef SHOPSTREAM_TOPIC_CONFIG_H
#define SHOPSTREAM_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum tc_type { TC_LONG, TC_INT, TC_DOUBLE, TC_BOOL, TC_STRING, TC_LIST };

struct topic_config_def {
    const char *name;            /* topic-level name, e.g. "retention.ms" */
    const char *broker_property; /* broker default property, or NULL */
    const char *default_value;   /* Kafka's default */
    enum tc_type type;
    int64_t min, max;            /* for numbers */
    const char *const *choices;  /* for enumerated strings/lists, NULL-terminated */
};

/* The table, terminated by a NULL name. */
extern const struct topic_config_def topic_config_defs[];

const struct topic_config_def *topic_config_def(const char *name);

/* Checks one name=value for a topic.  Returns 0, or -1 with a message. */
int topic_config_validate(const char *name, const char *value, char *err, size_t errlen);

/* The effective value of name for a topic: its override, else the broker
 * property, else Kafka's default.  *source is set to 1 (topic override),
 * 4 (static broker config) or 5 (default) as in DescribeConfigs v1+. */
const char *topic_config_value(const struct config *overrides, const struct config *broker,
                               const char *name, int *source);

/* IncrementalAlterConfigs operations (Kafka's numbers). */
enum tc_op { TC_OP_SET = 0, TC_OP_DELETE = 1, TC_OP_APPEND = 2, TC_OP_SUBTRACT = 3 };

/* Applies one operation to a topic's overrides (value may be NULL for
 * DELETE).  APPEND and SUBTRACT work on list configs, starting from the
 * effective value.  Returns 0, or -1 with a message (nothing changed). */
int topic_config_apply(struct config *overrides, const struct config *broker, const char *name, int op,
                       const char *value, char *err, size_t errlen);

/* What the log needs, resolved from the strings above. */
struct topic_settings {
    int64_t segment_bytes;
    int64_t segment_ms;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t flush_messages;
    int64_t flush_ms;
    int32_t index_interval_bytes;
    int32_t max_message_bytes;
    bool log_append_time;  /* message.timestamp.type=LogAppendTime */
    bool compact;          /* cleanup.policy contains compact */
    bool delete_policy;    /* cleanup.policy contains delete */
    int64_t producer_expiration_ms; /* broker's producer.id.expiration.ms */
    int64_t delete_retention_ms;    /* tombstones live this long */
    int64_t min_compaction_lag_ms;
    double min_cleanable_ratio;     /* min.cleanable.dirty.ratio */
};

void topic_settings_resolve(struct topic_settings *s, const struct config *overrides,
                            const struct config *broker);

#endif
