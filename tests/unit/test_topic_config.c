/* test_topic_config.c: topic configs (storage/topic_config.c): validation
 * of values against each config's type and range, the precedence of a
 * topic override over the broker property over Kafka's default (with the
 * DescribeConfigs source codes), the derived retention and roll settings,
 * topic_settings_resolve, and IncrementalAlterConfigs operations. */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/config.h"
#include "storage/topic_config.h"
#include "test.h"

static int valid(const char *name, const char *value)
{
    char err[256] = "";
    int rc = topic_config_validate(name, value, err, sizeof err);
    if (rc < 0)
        CHECK(err[0] != 0); /* a rejection always says why */
    return rc == 0;
}

TEST(topic_config_table_lookup)
{
    const struct topic_config_def *d = topic_config_def("retention.ms");
    CHECK(d);
    CHECK(strcmp(d->broker_property, "log.retention.ms") == 0);
    CHECK(strcmp(d->default_value, "604800000") == 0);
    CHECK_EQ(d->type, TC_LONG);
    d = topic_config_def("segment.bytes");
    CHECK(d && strcmp(d->broker_property, "log.segment.bytes") == 0);
    CHECK(strcmp(d->default_value, "1073741824") == 0);
    d = topic_config_def("max.message.bytes");
    CHECK(d && strcmp(d->broker_property, "message.max.bytes") == 0);
    CHECK(strcmp(d->default_value, "1048588") == 0);
    CHECK(topic_config_def("no.such.config") == NULL);
    CHECK(topic_config_def("") == NULL);
    /* every entry has a default that passes its own validation */
    int n = 0;
    for (const struct topic_config_def *e = topic_config_defs; e->name; e++, n++) {
        if (!valid(e->name, e->default_value))
            fprintf(stderr, "  default of %s is invalid\n", e->name);
        CHECK(valid(e->name, e->default_value));
    }
    CHECK(n >= 15);
}

TEST(topic_config_validate_numbers)
{
    CHECK(valid("retention.ms", "-1"));
    CHECK(valid("retention.ms", "0"));
    CHECK(valid("retention.ms", "9223372036854775807"));
    CHECK(!valid("retention.ms", "-2"));
    CHECK(!valid("retention.ms", "abc"));
    CHECK(!valid("retention.ms", "12x"));
    CHECK(!valid("retention.ms", ""));
    CHECK(!valid("retention.ms", "1.5"));
    CHECK(!valid("retention.ms", "9223372036854775808"));
    CHECK(valid("segment.bytes", "14"));
    CHECK(valid("segment.bytes", "2147483647"));
    CHECK(!valid("segment.bytes", "13"));
    CHECK(!valid("segment.bytes", "2147483648"));
    CHECK(valid("segment.ms", "1"));
    CHECK(!valid("segment.ms", "0"));
    CHECK(valid("flush.messages", "1"));
    CHECK(!valid("flush.messages", "0"));
    CHECK(valid("min.insync.replicas", "1"));
    CHECK(!valid("min.insync.replicas", "0"));
    CHECK(valid("index.interval.bytes", "0"));
    CHECK(!valid("index.interval.bytes", "-1"));
    CHECK(valid("max.message.bytes", "0"));
    CHECK(!valid("max.message.bytes", "-5"));
    CHECK(valid("retention.bytes", "-1"));
    CHECK(valid("retention.bytes", "1073741824"));
    CHECK(valid("min.cleanable.dirty.ratio", "0"));
    CHECK(valid("min.cleanable.dirty.ratio", "0.5"));
    CHECK(valid("min.cleanable.dirty.ratio", "1"));
    CHECK(!valid("min.cleanable.dirty.ratio", "1.01"));
    CHECK(!valid("min.cleanable.dirty.ratio", "-0.1"));
    CHECK(!valid("min.cleanable.dirty.ratio", "half"));
    CHECK(!valid("min.cleanable.dirty.ratio", ""));
}

TEST(topic_config_validate_strings_and_lists)
{
    CHECK(valid("cleanup.policy", "delete"));
    CHECK(valid("cleanup.policy", "compact"));
    CHECK(valid("cleanup.policy", "delete,compact"));
    CHECK(valid("cleanup.policy", "compact, delete"));
    CHECK(!valid("cleanup.policy", ""));
    CHECK(!valid("cleanup.policy", "foo"));
    CHECK(!valid("cleanup.policy", "delete,foo"));
    CHECK(!valid("cleanup.policy", "Delete"));
    CHECK(!valid("cleanup.policy", "delete,,compact"));
    CHECK(valid("message.timestamp.type", "CreateTime"));
    CHECK(valid("message.timestamp.type", "LogAppendTime"));
    CHECK(!valid("message.timestamp.type", "createtime"));
    CHECK(!valid("message.timestamp.type", "LogAppendTimeX"));
    CHECK(!valid("message.timestamp.type", ""));
    CHECK(valid("compression.type", "producer"));
    CHECK(!valid("compression.type", "brotli"));
    char err[256] = "";
    CHECK_EQ(topic_config_validate("not.a.config", "1", err, sizeof err), -1);
    CHECK(strstr(err, "not.a.config") != NULL);
}

TEST(topic_config_value_precedence)
{
    struct config over, broker;
    config_init(&over);
    config_init(&broker);
    int src = -1;
    /* Kafka's default */
    CHECK(strcmp(topic_config_value(&over, &broker, "segment.bytes", &src), "1073741824") == 0);
    CHECK_EQ(src, 5);
    CHECK(strcmp(topic_config_value(NULL, NULL, "cleanup.policy", &src), "delete") == 0);
    CHECK_EQ(src, 5);
    /* the broker property */
    config_set(&broker, "log.segment.bytes", "5000");
    src = -1;
    CHECK(strcmp(topic_config_value(&over, &broker, "segment.bytes", &src), "5000") == 0);
    CHECK_EQ(src, 4);
    /* a topic-level name in the broker config is not the broker property */
    config_set(&broker, "cleanup.policy", "compact");
    CHECK(strcmp(topic_config_value(&over, &broker, "cleanup.policy", &src), "delete") == 0);
    CHECK_EQ(src, 5);
    /* the topic override wins */
    config_set(&over, "segment.bytes", "777");
    CHECK(strcmp(topic_config_value(&over, &broker, "segment.bytes", &src), "777") == 0);
    CHECK_EQ(src, 1);
    /* source may be NULL */
    CHECK(strcmp(topic_config_value(&over, &broker, "segment.bytes", NULL), "777") == 0);
    /* compression.type has the same name at both levels */
    config_set(&broker, "compression.type", "producer");
    CHECK(strcmp(topic_config_value(&over, &broker, "compression.type", &src), "producer") == 0);
    CHECK_EQ(src, 4);
    /* an unknown name has no default */
    CHECK(topic_config_value(&over, &broker, "no.such", &src) == NULL);
    config_free(&over);
    config_free(&broker);
}

TEST(topic_config_retention_derivation)
{
    struct config broker;
    config_init(&broker);
    int src = -1;
    config_set(&broker, "log.retention.hours", "168");
    CHECK(strcmp(topic_config_value(NULL, &broker, "retention.ms", &src), "604800000") == 0);
    CHECK_EQ(src, 4);
    config_set(&broker, "log.retention.hours", "1");
    CHECK(strcmp(topic_config_value(NULL, &broker, "retention.ms", &src), "3600000") == 0);
    /* minutes beat hours */
    config_set(&broker, "log.retention.minutes", "2");
    CHECK(strcmp(topic_config_value(NULL, &broker, "retention.ms", &src), "120000") == 0);
    /* milliseconds beat both */
    config_set(&broker, "log.retention.ms", "1234");
    CHECK(strcmp(topic_config_value(NULL, &broker, "retention.ms", &src), "1234") == 0);
    CHECK_EQ(src, 4);
    /* and a topic override beats them all */
    struct config over;
    config_init(&over);
    config_set(&over, "retention.ms", "-1");
    CHECK(strcmp(topic_config_value(&over, &broker, "retention.ms", &src), "-1") == 0);
    CHECK_EQ(src, 1);
    /* an unparsable hours value is ignored: the default applies */
    config_remove(&broker, "log.retention.ms");
    config_remove(&broker, "log.retention.minutes");
    config_set(&broker, "log.retention.hours", "many");
    CHECK(strcmp(topic_config_value(NULL, &broker, "retention.ms", &src), "604800000") == 0);
    CHECK_EQ(src, 5);
    /* log.roll.hours gives segment.ms; log.roll.ms beats it */
    config_set(&broker, "log.roll.hours", "2");
    CHECK(strcmp(topic_config_value(NULL, &broker, "segment.ms", &src), "7200000") == 0);
    CHECK_EQ(src, 4);
    config_set(&broker, "log.roll.ms", "99");
    CHECK(strcmp(topic_config_value(NULL, &broker, "segment.ms", &src), "99") == 0);
    config_free(&over);
    config_free(&broker);
}

TEST(topic_settings_resolve_defaults_and_overrides)
{
    struct topic_settings s;
    topic_settings_resolve(&s, NULL, NULL);
    CHECK_EQ(s.segment_bytes, 1073741824);
    CHECK_EQ(s.segment_ms, 604800000);
    CHECK_EQ(s.retention_ms, 604800000);
    CHECK_EQ(s.retention_bytes, -1);
    CHECK(s.flush_messages == INT64_MAX);
    CHECK(s.flush_ms == INT64_MAX);
    CHECK_EQ(s.index_interval_bytes, 4096);
    CHECK_EQ(s.max_message_bytes, 1048588);
    CHECK(!s.log_append_time);
    CHECK(!s.compact);
    CHECK(s.delete_policy);
    struct config over, broker;
    config_init(&over);
    config_init(&broker);
    config_set(&broker, "log.segment.bytes", "2048");
    config_set(&broker, "log.retention.hours", "1");
    config_set(&broker, "message.max.bytes", "not-a-number"); /* falls back to the default */
    config_set(&over, "cleanup.policy", "compact,delete");
    config_set(&over, "message.timestamp.type", "LogAppendTime");
    config_set(&over, "flush.messages", "1");
    config_set(&over, "index.interval.bytes", "100");
    topic_settings_resolve(&s, &over, &broker);
    CHECK_EQ(s.segment_bytes, 2048);
    CHECK_EQ(s.retention_ms, 3600000);
    CHECK_EQ(s.max_message_bytes, 1048588);
    CHECK_EQ(s.flush_messages, 1);
    CHECK_EQ(s.index_interval_bytes, 100);
    CHECK(s.log_append_time);
    CHECK(s.compact);
    CHECK(s.delete_policy);
    config_set(&over, "cleanup.policy", "compact");
    topic_settings_resolve(&s, &over, &broker);
    CHECK(s.compact);
    CHECK(!s.delete_policy);
    config_free(&over);
    config_free(&broker);
}

TEST(topic_config_apply_set_and_delete)
{
    struct config over;
    config_init(&over);
    char err[256];
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_SET, "1000", err, sizeof err), 0);
    CHECK(strcmp(config_get(&over, "retention.ms"), "1000") == 0);
    /* an invalid value changes nothing */
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_SET, "-7", err, sizeof err), -1);
    CHECK(strcmp(config_get(&over, "retention.ms"), "1000") == 0);
    CHECK_EQ(topic_config_apply(&over, NULL, "nope", TC_OP_SET, "1", err, sizeof err), -1);
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_SET, NULL, err, sizeof err), -1);
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", 9, "5", err, sizeof err), -1);
    CHECK(strcmp(config_get(&over, "retention.ms"), "1000") == 0);
    /* APPEND on a non-list */
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_APPEND, "5", err, sizeof err), -1);
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_DELETE, NULL, err, sizeof err), 0);
    CHECK(config_get(&over, "retention.ms") == NULL);
    /* deleting what is not set is fine */
    CHECK_EQ(topic_config_apply(&over, NULL, "retention.ms", TC_OP_DELETE, NULL, err, sizeof err), 0);
    config_free(&over);
}

TEST(topic_config_apply_list_operations)
{
    struct config over;
    config_init(&over);
    char err[256];
    /* APPEND starts from the effective value (the default "delete") */
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_APPEND, "compact", err, sizeof err), 0);
    CHECK(strcmp(config_get(&over, "cleanup.policy"), "delete,compact") == 0);
    /* appending what is there already changes nothing */
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_APPEND, "delete", err, sizeof err), 0);
    CHECK(strcmp(config_get(&over, "cleanup.policy"), "delete,compact") == 0);
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SUBTRACT, "delete", err, sizeof err), 0);
    CHECK(strcmp(config_get(&over, "cleanup.policy"), "compact") == 0);
    /* an invalid element is refused */
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_APPEND, "foo", err, sizeof err), -1);
    CHECK(strcmp(config_get(&over, "cleanup.policy"), "compact") == 0);
    /* subtracting the last element leaves no override */
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SUBTRACT, "compact", err, sizeof err), 0);
    CHECK(config_get(&over, "cleanup.policy") == NULL);
    /* the broker's value is the starting point when set */
    struct config broker;
    config_init(&broker);
    config_set(&broker, "log.cleanup.policy", "compact");
    CHECK_EQ(topic_config_apply(&over, &broker, "cleanup.policy", TC_OP_APPEND, "delete", err, sizeof err), 0);
    CHECK(strcmp(config_get(&over, "cleanup.policy"), "compact,delete") == 0);
    config_free(&broker);
    config_free(&over);
}

/* A list value set with spaces after the commas (which validation accepts)
 * is still a list of the same elements for APPEND and SUBTRACT, as in
 * Kafka, whose list parser trims around each comma. */
TEST(topic_config_apply_list_with_spaces)
{
    struct config over;
    config_init(&over);
    char err[256];
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SET, "compact, delete", err, sizeof err), 0);
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SUBTRACT, "delete", err, sizeof err), 0);
    struct topic_settings s;
    topic_settings_resolve(&s, &over, NULL);
    CHECK(s.compact);
    CHECK(!s.delete_policy); /* "delete" was removed */
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SET, "compact, delete", err, sizeof err), 0);
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_APPEND, "delete", err, sizeof err), 0);
    const char *v = config_get(&over, "cleanup.policy");
    /* "delete" is already an element: not added a second time */
    const char *first = strstr(v, "delete");
    CHECK(first != NULL);
    CHECK(strstr(first + 1, "delete") == NULL);
    config_free(&over);
}

TEST(topic_config_no_leaks)
{
    size_t base = alloc_live_bytes();
    struct config over, broker;
    config_init(&over);
    config_init(&broker);
    config_set(&broker, "log.retention.minutes", "5");
    char err[128];
    for (int i = 0; i < 50; i++) {
        topic_config_apply(&over, &broker, "cleanup.policy", i % 2 ? TC_OP_APPEND : TC_OP_SUBTRACT, "compact", err,
                           sizeof err);
        struct topic_settings s;
        topic_settings_resolve(&s, &over, &broker);
        CHECK_EQ(s.retention_ms, 300000);
    }
    config_free(&over);
    config_free(&broker);
    CHECK_EQ(alloc_live_bytes(), base);
}

/* APPEND to a list value longer than the operation's 1024-byte buffer
 * (a long but valid "delete,delete,..." set earlier, or a long broker
 * default) must give the right list, as Kafka does, and never write past
 * the buffer: snprintf returns the untruncated length, and using it as the
 * next write position writes ",compact" 1399 bytes into a 1024-byte stack
 * buffer (clang -fsanitize=bounds reports it at topic_config.c; with GCC
 * the write lands silently in the caller's frame). */
TEST(topic_config_apply_append_to_long_list)
{
    struct config over;
    config_init(&over);
    char err[256];
    char longv[1500] = "";
    while (strlen(longv) + 7 < 1400)
        strcat(longv, strlen(longv) ? ",delete" : "delete");
    CHECK(strlen(longv) > 1024);
    CHECK_EQ(topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_SET, longv, err, sizeof err), 0);
    int rc = topic_config_apply(&over, NULL, "cleanup.policy", TC_OP_APPEND, "compact", err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  APPEND refused: %.80s...\n", err);
    CHECK_EQ(rc, 0);
    const char *v = config_get(&over, "cleanup.policy");
    CHECK(strncmp(v, longv, strlen(longv)) == 0);
    CHECK(strcmp(v + strlen(longv), ",compact") == 0);
    /* the same through a long broker default */
    struct config broker, none;
    config_init(&broker);
    config_init(&none);
    config_set(&broker, "log.cleanup.policy", longv);
    CHECK_EQ(topic_config_apply(&none, &broker, "cleanup.policy", TC_OP_APPEND, "compact", err, sizeof err), 0);
    CHECK(strstr(config_get(&none, "cleanup.policy"), "compact") != NULL);
    config_free(&none);
    config_free(&broker);
    config_free(&over);
}

/* log.retention.hours and .minutes are multiplied into milliseconds; a
 * value whose product does not fit 64 bits must not wrap (signed overflow
 * is undefined behaviour).  Wrapped, hours=2562047788016 gives a negative
 * retention, and hours=5124095576030432 gives retention.ms=3584000: data
 * older than an hour would be deleted.  Kafka reads hours as an int,
 * so such values are refused there; here the value may be ignored (the
 * default applies) or capped, but never wrap. */
TEST(topic_config_retention_hours_overflow)
{
    static const struct {
        const char *key, *value, *name, *dflt;
        int64_t at_least; /* the product, capped at INT64_MAX */
    } cases[] = {
        {"log.retention.hours", "2562047788016", "retention.ms", "604800000", INT64_MAX},
        {"log.retention.hours", "5124095576030432", "retention.ms", "604800000", INT64_MAX},
        {"log.retention.minutes", "153722867280913", "retention.ms", "604800000", INT64_MAX},
        {"log.roll.hours", "2562047788016", "segment.ms", "604800000", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config broker;
        config_init(&broker);
        config_set(&broker, cases[i].key, cases[i].value);
        const char *v = topic_config_value(NULL, &broker, cases[i].name, NULL);
        int64_t ms = 0;
        CHECK_EQ(config_parse_i64(v, &ms), 0);
        int ok = strcmp(v, cases[i].dflt) == 0 || ms >= cases[i].at_least;
        if (!ok)
            fprintf(stderr, "  %s=%s gives %s=%s\n", cases[i].key, cases[i].value, cases[i].name, v);
        CHECK(ok);
        config_free(&broker);
    }
}
