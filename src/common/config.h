/* config.h: Java-style `key=value` properties (Kafka's server.properties
 * format): '#' and '!' comments, blank lines, `key=value` or `key: value`,
 * whitespace around keys and values trimmed.  Later settings override
 * earlier ones, so a file is loaded first and `--set` pairs after it.
 * Leaf module apart from the allocator. */
#ifndef SHOPSTREAM_CONFIG_H
#define SHOPSTREAM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_entry {
    char *key;   /* owned */
    char *value; /* owned */
};

struct config {
    struct config_entry *entries; /* owned, in insertion order */
    int n, cap;
};

void config_init(struct config *c);
void config_free(struct config *c);
/* Sets key to value (copies both).  Returns 0 or -1 when out of memory. */
int config_set(struct config *c, const char *key, const char *value);
/* Parses "key=value".  Returns 0, or -1 with a message in err. */
int config_set_pair(struct config *c, const char *pair, char *err, size_t errlen);
/* Loads a properties file.  Returns 0, or -1 with a message in err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);
/* Writes every entry as key=value lines to path atomically (tmp, fsync,
 * rename).  Returns 0 or -1 with errno set. */
int config_save_file(const struct config *c, const char *path);
/* A view valid until the key is set again or the config is freed; NULL if
 * unset. */
const char *config_get(const struct config *c, const char *key);
bool config_has(const struct config *c, const char *key);
int config_remove(struct config *c, const char *key);

/* Strict number parsing: the whole string must be a number in range.
 * Return 0 or -1. */
int config_parse_i64(const char *s, int64_t *out);
int config_parse_double(const char *s, double *out);
int config_parse_bool(const char *s, bool *out);

#endif
