/* topic_config.c: the table of Kafka topic configs with their defaults. */
#include "storage/topic_config.h"

#include "common/alloc.h"

#include <stdio.h>
#include <string.h>

#define L64 INT64_MAX

static const char *const cleanup_choices[] = {"delete", "compact", NULL};
static const char *const ts_choices[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const compression_choices[] = {"producer", NULL};

const struct topic_config_def topic_config_defs[] = {
    {"cleanup.policy", "log.cleanup.policy", "delete", TC_LIST, 0, 0, cleanup_choices},
    {"compression.type", "compression.type", "producer", TC_STRING, 0, 0, compression_choices},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", TC_LONG, 0, L64, NULL},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", TC_LONG, 0, L64, NULL},
    {"flush.messages", "log.flush.interval.messages", "9223372036854775807", TC_LONG, 1, L64, NULL},
    {"flush.ms", "log.flush.interval.ms", "9223372036854775807", TC_LONG, 0, L64, NULL},
    {"index.interval.bytes", "log.index.interval.bytes", "4096", TC_INT, 0, INT32_MAX, NULL},
    {"max.message.bytes", "message.max.bytes", "1048588", TC_INT, 0, INT32_MAX, NULL},
    {"message.timestamp.type", "log.message.timestamp.type", "CreateTime", TC_STRING, 0, 0, ts_choices},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", TC_DOUBLE, 0, 1, NULL},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", TC_LONG, 0, L64, NULL},
    {"min.insync.replicas", "min.insync.replicas", "1", TC_INT, 1, INT32_MAX, NULL},
    {"retention.bytes", "log.retention.bytes", "-1", TC_LONG, -1, L64, NULL},
    {"retention.ms", "log.retention.ms", "604800000", TC_LONG, -1, L64, NULL},
    {"segment.bytes", "log.segment.bytes", "1073741824", TC_INT, 14, INT32_MAX, NULL},
    {"segment.index.bytes", "log.index.size.max.bytes", "10485760", TC_INT, 4, INT32_MAX, NULL},
    {"segment.ms", "log.roll.ms", "604800000", TC_LONG, 1, L64, NULL},
    {NULL, NULL, NULL, TC_STRING, 0, 0, NULL},
};

const struct topic_config_def *topic_config_def(const char *name)
{
    for (const struct topic_config_def *d = topic_config_defs; d->name; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static int in_choices(const char *const *choices, const char *v, size_t n)
{
    for (; *choices; choices++)
        if (strlen(*choices) == n && strncmp(*choices, v, n) == 0)
            return 1;
    return 0;
}

int topic_config_validate(const char *name, const char *value, char *err, size_t errlen)
{
    const struct topic_config_def *d = topic_config_def(name);
    if (!d) {
        snprintf(err, errlen, "Unknown topic config name: %s", name);
        return -1;
    }
    int64_t n;
    double dv;
    bool b;
    switch (d->type) {
    case TC_LONG:
    case TC_INT:
        if (config_parse_i64(value, &n) < 0 || n < d->min || n > d->max) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: must be an integer in [%lld, %lld]",
                     value, name, (long long)d->min, (long long)d->max);
            return -1;
        }
        return 0;
    case TC_DOUBLE:
        if (config_parse_double(value, &dv) < 0 || dv < (double)d->min || dv > (double)d->max) {
            snprintf(err, errlen, "Invalid value %s for configuration %s", value, name);
            return -1;
        }
        return 0;
    case TC_BOOL:
        if (config_parse_bool(value, &b) < 0) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: must be true or false", value, name);
            return -1;
        }
        return 0;
    case TC_STRING:
        if (d->choices && !in_choices(d->choices, value, strlen(value))) {
            snprintf(err, errlen, "Invalid value %s for configuration %s", value, name);
            return -1;
        }
        return 0;
    case TC_LIST: {
        const char *p = value;
        if (!*p) {
            snprintf(err, errlen, "Invalid empty value for configuration %s", name);
            return -1;
        }
        while (*p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            while (len && *p == ' ') {
                p++;
                len--;
            }
            while (len && p[len - 1] == ' ')
                len--;
            if (d->choices && !in_choices(d->choices, p, len)) {
                snprintf(err, errlen, "Invalid value %s for configuration %s", value, name);
                return -1;
            }
            p = c ? c + 1 : p + strlen(p);
        }
        return 0;
    }
    }
    return 0;
}

const char *topic_config_value(const struct config *overrides, const struct config *broker,
                               const char *name, int *source)
{
    const struct topic_config_def *d = topic_config_def(name);
    const char *v = overrides ? config_get(overrides, name) : NULL;
    if (v) {
        if (source)
            *source = 1;
        return v;
    }
    if (d && d->broker_property && broker) {
        v = config_get(broker, d->broker_property);
        /* Kafka derives log.retention.ms from .minutes or .hours when unset */
        if (!v && strcmp(name, "retention.ms") == 0) {
            static __thread char buf[32];
            const char *m = config_get(broker, "log.retention.minutes");
            const char *h = config_get(broker, "log.retention.hours");
            int64_t x;
            /* the product must not overflow: it is capped (forever, in effect) */
            if (m && config_parse_i64(m, &x) == 0) {
                snprintf(buf, sizeof buf, "%lld", x < 0 ? -1LL : x > INT64_MAX / 60000 ? (long long)INT64_MAX : (long long)x * 60000);
                v = buf;
            } else if (h && config_parse_i64(h, &x) == 0) {
                snprintf(buf, sizeof buf, "%lld",
                         x < 0 ? -1LL : x > INT64_MAX / 3600000 ? (long long)INT64_MAX : (long long)x * 3600000);
                v = buf;
            }
        }
        if (!v && strcmp(name, "segment.ms") == 0) {
            static __thread char buf2[32];
            const char *h = config_get(broker, "log.roll.hours");
            int64_t x;
            if (h && config_parse_i64(h, &x) == 0 && x > 0) {
                snprintf(buf2, sizeof buf2, "%lld", x > INT64_MAX / 3600000 ? (long long)INT64_MAX : (long long)x * 3600000);
                v = buf2;
            }
        }
        if (v) {
            if (source)
                *source = 4;
            return v;
        }
    }
    if (source)
        *source = 5;
    return d ? d->default_value : NULL;
}

static int64_t get_i64(const struct config *o, const struct config *b, const char *name)
{
    int64_t v = 0;
    const char *s = topic_config_value(o, b, name, NULL);
    if (!s || config_parse_i64(s, &v) < 0) {
        const struct topic_config_def *d = topic_config_def(name);
        config_parse_i64(d->default_value, &v);
    }
    return v;
}

void topic_settings_resolve(struct topic_settings *s, const struct config *o, const struct config *b)
{
    s->segment_bytes = get_i64(o, b, "segment.bytes");
    s->segment_ms = get_i64(o, b, "segment.ms");
    s->retention_ms = get_i64(o, b, "retention.ms");
    s->retention_bytes = get_i64(o, b, "retention.bytes");
    s->flush_messages = get_i64(o, b, "flush.messages");
    s->flush_ms = get_i64(o, b, "flush.ms");
    s->index_interval_bytes = (int32_t)get_i64(o, b, "index.interval.bytes");
    s->max_message_bytes = (int32_t)get_i64(o, b, "max.message.bytes");
    const char *ts = topic_config_value(o, b, "message.timestamp.type", NULL);
    s->log_append_time = ts && strcmp(ts, "LogAppendTime") == 0;
    const char *cp = topic_config_value(o, b, "cleanup.policy", NULL);
    s->compact = cp && strstr(cp, "compact") != NULL;
    s->delete_policy = cp && strstr(cp, "delete") != NULL;
    s->delete_retention_ms = get_i64(o, b, "delete.retention.ms");
    s->min_compaction_lag_ms = get_i64(o, b, "min.compaction.lag.ms");
    double ratio = 0.5;
    config_parse_double(topic_config_value(o, b, "min.cleanable.dirty.ratio", NULL), &ratio);
    s->min_cleanable_ratio = ratio;
    int64_t exp;
    const char *pe = b ? config_get(b, "producer.id.expiration.ms") : NULL;
    s->producer_expiration_ms = pe && config_parse_i64(pe, &exp) == 0 && exp > 0 ? exp : 86400000;
}

/* The next element of a comma-separated list at *p, trimmed of spaces as
 * Kafka's list parser does: sets *start and *len and advances *p.  Returns
 * 0 at the end. */
static int list_next(const char **p, const char **start, size_t *len)
{
    if (!**p)
        return 0;
    const char *c = strchr(*p, ',');
    const char *e = c ? c : *p + strlen(*p);
    const char *b = *p;
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    *start = b;
    *len = (size_t)(e - b);
    *p = c ? c + 1 : *p + strlen(*p);
    return 1;
}

/* Whether item (len n) is an element of the comma-separated list. */
static int list_has(const char *list, const char *item, size_t n)
{
    const char *p = list, *el;
    size_t len;
    while (list_next(&p, &el, &len))
        if (len == n && strncmp(el, item, n) == 0)
            return 1;
    return 0;
}

int topic_config_apply(struct config *overrides, const struct config *broker, const char *name, int op,
                       const char *value, char *err, size_t errlen)
{
    const struct topic_config_def *d = topic_config_def(name);
    if (!d) {
        snprintf(err, errlen, "Unknown topic config name: %s", name);
        return -1;
    }
    if (op == TC_OP_DELETE) {
        config_remove(overrides, name);
        return 0;
    }
    if (!value) {
        snprintf(err, errlen, "Null value not supported for topic config %s", name);
        return -1;
    }
    char *buf = NULL; /* owned: the new list for APPEND and SUBTRACT */
    if (op == TC_OP_APPEND || op == TC_OP_SUBTRACT) {
        if (d->type != TC_LIST) {
            snprintf(err, errlen, "Config %s is not a list: APPEND and SUBTRACT do not apply", name);
            return -1;
        }
        const char *cur = topic_config_value(overrides, broker, name, NULL);
        if (!cur)
            cur = "";
        size_t cap = strlen(cur) + strlen(value) + 2, n = 0;
        buf = xmalloc(cap);
        if (!buf) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        buf[0] = 0;
        if (op == TC_OP_APPEND) {
            n = (size_t)snprintf(buf, cap, "%s", cur);
            if (!list_has(buf, value, strlen(value)))
                snprintf(buf + n, cap - n, "%s%s", n ? "," : "", value);
        } else {
            const char *p = cur, *el;
            size_t len;
            while (list_next(&p, &el, &len))
                if (len && !(len == strlen(value) && strncmp(el, value, len) == 0))
                    n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? "," : "", (int)len, el);
        }
        value = buf;
        if (!*value) {
            xfree(buf);
            config_remove(overrides, name);
            return 0;
        }
    } else if (op != TC_OP_SET) {
        snprintf(err, errlen, "Unknown config operation %d", op);
        return -1;
    }
    int rc = 0;
    if (topic_config_validate(name, value, err, errlen) < 0)
        rc = -1;
    else if (config_set(overrides, name, value) < 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    xfree(buf);
    return rc;
}
