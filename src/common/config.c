/* config.c: see config.h. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
}

void config_free(struct config *c)
{
    for (int i = 0; i < c->n; i++) {
        xfree(c->entries[i].key);
        xfree(c->entries[i].value);
    }
    xfree(c->entries);
    memset(c, 0, sizeof *c);
}

static struct config_entry *find(const struct config *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].key, key) == 0)
            return &c->entries[i];
    return NULL;
}

int config_set(struct config *c, const char *key, const char *value)
{
    struct config_entry *e = find(c, key);
    char *v = xstrdup(value);
    if (!v)
        return -1;
    if (e) {
        xfree(e->value);
        e->value = v;
        return 0;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        struct config_entry *n = xrealloc(c->entries, (size_t)cap * sizeof *n);
        if (!n) {
            xfree(v);
            return -1;
        }
        c->entries = n;
        c->cap = cap;
    }
    char *k = xstrdup(key);
    if (!k) {
        xfree(v);
        return -1;
    }
    c->entries[c->n++] = (struct config_entry){k, v};
    return 0;
}

int config_remove(struct config *c, const char *key)
{
    struct config_entry *e = find(c, key);
    if (!e)
        return -1;
    xfree(e->key);
    xfree(e->value);
    int i = (int)(e - c->entries);
    memmove(e, e + 1, (size_t)(c->n - i - 1) * sizeof *e);
    c->n--;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int config_set_pair(struct config *c, const char *pair, char *err, size_t errlen)
{
    char buf[4096];
    if (strlen(pair) >= sizeof buf) {
        snprintf(err, errlen, "setting is too long");
        return -1;
    }
    strcpy(buf, pair);
    char *sep = strpbrk(buf, "=:");
    if (!sep) {
        snprintf(err, errlen, "'%s' is not key=value", pair);
        return -1;
    }
    *sep = 0;
    char *k = trim(buf), *v = trim(sep + 1);
    if (!*k) {
        snprintf(err, errlen, "'%s' has an empty key", pair);
        return -1;
    }
    if (config_set(c, k, v) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char e2[256];
        if (config_set_pair(c, s, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e2);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int config_save_file(const struct config *c, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (int i = 0; i < c->n; i++)
        fprintf(f, "%s=%s\n", c->entries[i].key, c->entries[i].value);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int e = errno;
        fclose(f);
        unlink(tmp);
        errno = e;
        return -1;
    }
    fclose(f);
    if (rename(tmp, path) < 0)
        return -1;
    /* make the rename itself durable */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

const char *config_get(const struct config *c, const char *key)
{
    struct config_entry *e = find(c, key);
    return e ? e->value : NULL;
}

bool config_has(const struct config *c, const char *key)
{
    return find(c, key) != NULL;
}

int config_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int config_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int config_parse_bool(const char *s, bool *out)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "true")) {
        *out = true;
        return 0;
    }
    if (!strcasecmp(s, "false")) {
        *out = false;
        return 0;
    }
    return -1;
}
