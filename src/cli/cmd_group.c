/* cmd_group.c: `shopstream group list|describe|reset-offsets|delete`,
 * consumer-group administration for any Kafka cluster, in the spirit of
 * kafka-consumer-groups.sh.  Built on librdkafka's Admin API
 * (ListConsumerGroups, DescribeConsumerGroups, ListConsumerGroupOffsets,
 * AlterConsumerGroupOffsets, DeleteGroups), Metadata, ListOffsets
 * (rd_kafka_query_watermark_offsets, rd_kafka_offsets_for_times).
 * Connection options come from client_opts.c.
 *
 * Output (stdout; errors are one sentence on stderr).  Fields are separated
 * by one space.  A group, member, client or instance id is printed as is,
 * except that spaces, control bytes, DEL and backslashes become \xHH, so
 * every field is one word; an empty or missing value prints as "-".
 *   list       one "GROUP STATE PROTOCOL-TYPE" line per consumer group,
 *              sorted by group id.  STATE is Kafka's name (Stable, Empty,
 *              PreparingRebalance, CompletingRebalance, Dead, Unknown);
 *              PROTOCOL-TYPE is "consumer", or "-" for a group that only
 *              holds committed offsets (assign()-style consumers).
 *   describe   "group G", "state S", "protocol-type T", "assignor A" ("-"
 *              when none), "coordinator ID HOST:PORT", "members N", then one
 *              "member MEMBER-ID client-id C host H instance-id I
 *              assignment ASSIGNMENT" per member sorted by member id, where
 *              ASSIGNMENT is "topic:0,1,2;other:0" (topics and partitions
 *              sorted) or "-"; then the header line
 *              "TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID"
 *              and one line per partition that has a committed offset or is
 *              assigned to a member, sorted by topic and partition.
 *              CURRENT-OFFSET and LAG are "-" when nothing is committed,
 *              LOG-END-OFFSET is "-" when it could not be read, CONSUMER-ID
 *              is "-" when no member has the partition.  LAG is
 *              LOG-END-OFFSET - CURRENT-OFFSET.  A group the cluster does
 *              not know (Dead, or GROUP_ID_NOT_FOUND) is an error, exit 1.
 *   reset-offsets  the header "TOPIC PARTITION NEW-OFFSET" and one line per
 *              partition, sorted; then the offsets are committed (unless
 *              --dry-run, which says so on stderr).
 *   delete     "deleted group G"
 *
 * Two librdkafka 2.0.2 details shape this file.  Its DescribeConsumerGroups
 * decodes each member's ConsumerProtocolAssignment (int16 version, then
 * [topic, [partition]]; the trailing user data of v0-3 is ignored), so the
 * assignment comes decoded.  Its ListConsumerGroupOffsets without a
 * partition list sends OffsetFetch with an *empty* topic array (not null)
 * below v6, which a broker rightly answers with nothing; so describe also
 * asks for every partition of every topic in the metadata and merges both
 * answers. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "common/alloc.h"

static const char usage_text[] =
    "usage: shopstream group list\n"
    "       shopstream group describe GROUP\n"
    "       shopstream group reset-offsets GROUP --topic T\n"
    "                  (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO8601)\n"
    "                  [--partition P]... [--dry-run]\n"
    "       shopstream group delete GROUP\n"
    "\n"
    "Consumer-group administration on any Kafka cluster.\n"
    "\n"
    "  list           one line per group: GROUP STATE PROTOCOL-TYPE (sorted; \"-\" for a\n"
    "                 group that only holds committed offsets)\n"
    "  describe       \"group G\", \"state S\", \"protocol-type T\", \"assignor A\",\n"
    "                 \"coordinator ID HOST:PORT\", \"members N\", one line per member:\n"
    "                   member MEMBER-ID client-id C host H instance-id I assignment T:0,1;U:2\n"
    "                 then the offsets table, one line per committed or assigned partition:\n"
    "                   TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID\n"
    "                 (\"-\" where there is no value; LAG = LOG-END-OFFSET - CURRENT-OFFSET).\n"
    "                 Exits 1 if the group does not exist.\n"
    "  reset-offsets  commits new offsets for the group on TOPIC (all its partitions, or\n"
    "                 those given with --partition); refused while the group has active\n"
    "                 members.  Prints TOPIC PARTITION NEW-OFFSET lines.\n"
    "  delete         deletes a group without active members and its committed offsets\n"
    "\n"
    "  --topic T          reset-offsets: the topic whose offsets to reset\n"
    "  --partition P      reset-offsets: only partition P; repeatable\n"
    "  --to-earliest      reset to the log start offset\n"
    "  --to-latest        reset to the log end offset\n"
    "  --to-offset N      reset to offset N (kept within [log start, log end])\n"
    "  --to-datetime ISO  reset to the first record with a timestamp at or after ISO, or to\n"
    "                     the log end if none: YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z|+HH:MM|-HH:MM]\n"
    "                     (UTC when no zone is given)\n"
    "  --dry-run          reset-offsets: print the new offsets without committing them\n"
    "\n"
    "Ids containing spaces, control characters or backslashes are printed with those\n"
    "bytes as \\xHH; empty values print as \"-\".\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     time limit of each request (default 10000)\n";

/* Where reset-offsets moves the group's offsets. */
enum reset_to {
    RESET_NONE,     /* no --to-* given */
    RESET_EARLIEST, /* the log start offset */
    RESET_LATEST,   /* the log end offset (high watermark) */
    RESET_OFFSET,   /* --to-offset N, clamped to [start, end] */
    RESET_DATETIME, /* --to-datetime: offsets_for_times, else the log end */
};

/* What one `group SUB` invocation asked for.  Strings borrow from argv. */
struct group_args {
    struct client_opts co;
    const char *cmd;        /* "shopstream group SUB", the error prefix */
    const char *group;      /* the GROUP operand */
    const char *topic;      /* --topic */
    int32_t *partitions;    /* --partition values; owned array */
    size_t npartitions;
    enum reset_to to;       /* which --to-* */
    int ntos;               /* how many --to-* options appeared */
    int64_t to_offset;      /* --to-offset N */
    int64_t to_ms;          /* --to-datetime, ms since the epoch */
    int dry_run;            /* --dry-run */
};

/* Which options each subcommand accepts. */
enum {
    OPT_GROUP = 1 << 0, /* takes the GROUP operand */
    OPT_RESET = 1 << 1, /* --topic, --partition, --to-*, --dry-run */
};

/* Parses YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[:MM]] into ms
 * since the epoch.  Without a zone the time is UTC.  Returns 0 or -1. */
static int parse_datetime(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, ms = 0;
    long zone_s = 0;
    const char *p;
    time_t t;

    memset(&tm, 0, sizeof tm);
    for (int k = 0; k < 10; k++)
        if (k == 4 || k == 7 ? s[k] != '-' : !isdigit((unsigned char)s[k]))
            return -1;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    p = s + n;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != ':' ||
            !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]))
            return -1;
        h = (p[0] - '0') * 10 + (p[1] - '0');
        mi = (p[3] - '0') * 10 + (p[4] - '0');
        p += 5;
        if (*p == ':') {
            if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
                return -1;
            sec = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
            if (*p == '.' || *p == ',') {
                int digits = 0;

                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                for (; isdigit((unsigned char)*p); p++, digits++)
                    if (digits < 3)
                        ms = ms * 10 + (*p - '0');
                for (; digits < 3; digits++)
                    ms *= 10;
            }
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, zh, zm = 0;

        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
            return -1;
        zh = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
            zm = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
        if (zh > 23 || zm > 59)
            return -1;
        zone_s = sign * (zh * 3600L + zm * 60L);
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm normalises 31 February into March: refuse such dates. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;
    *out = ((int64_t)t - zone_s) * 1000 + ms;
    return 0;
}

static void set_to(struct group_args *a, enum reset_to to)
{
    a->to = to;
    a->ntos++;
}

/* Returns 0 to go on, 1 when --help was printed, or -1 after an error. */
static int parse_args(struct group_args *a, int allowed, int argc, char **argv)
{
    const char *v;
    long long n;
    int r;

    for (int i = 1; i < argc;) {
        const char *arg = argv[i];

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 1;
        }
        if ((r = client_opts_take(&a->co, a->cmd, argc, argv, &i)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (allowed & OPT_RESET) {
            if ((r = client_opt_value(a->cmd, "--topic", argc, argv, &i, &v)) != 0) {
                if (r < 0)
                    return -1;
                if (!*v) {
                    fprintf(stderr, "%s: --topic must not be empty.\n", a->cmd);
                    return -1;
                }
                a->topic = v;
                continue;
            }
            if ((r = client_opt_value(a->cmd, "--partition", argc, argv, &i, &v)) != 0) {
                int32_t *grown;

                if (r < 0 || client_parse_int(a->cmd, "--partition", v, 0, INT32_MAX, &n) < 0)
                    return -1;
                grown = xrealloc(a->partitions, (a->npartitions + 1) * sizeof *grown);
                if (!grown) {
                    fprintf(stderr, "%s: out of memory.\n", a->cmd);
                    return -1;
                }
                a->partitions = grown;
                grown[a->npartitions++] = (int32_t)n;
                continue;
            }
            if ((r = client_opt_value(a->cmd, "--to-offset", argc, argv, &i, &v)) != 0) {
                if (r < 0 || client_parse_int(a->cmd, "--to-offset", v, 0, INT64_MAX, &n) < 0)
                    return -1;
                a->to_offset = n;
                set_to(a, RESET_OFFSET);
                continue;
            }
            if ((r = client_opt_value(a->cmd, "--to-datetime", argc, argv, &i, &v)) != 0) {
                if (r < 0)
                    return -1;
                if (parse_datetime(v, &a->to_ms) < 0 || a->to_ms < 0) {
                    fprintf(stderr,
                            "%s: --to-datetime expects YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] "
                            "(after 1970), not '%s'.\n",
                            a->cmd, v);
                    return -1;
                }
                set_to(a, RESET_DATETIME);
                continue;
            }
            if (!strcmp(arg, "--to-earliest")) {
                set_to(a, RESET_EARLIEST);
                i++;
                continue;
            }
            if (!strcmp(arg, "--to-latest")) {
                set_to(a, RESET_LATEST);
                i++;
                continue;
            }
            if (!strcmp(arg, "--dry-run")) {
                a->dry_run = 1;
                i++;
                continue;
            }
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "%s: unknown option '%s'; see `shopstream group --help`.\n", a->cmd,
                    arg);
            return -1;
        }
        if (!(allowed & OPT_GROUP) || a->group) {
            fprintf(stderr, "%s: unexpected argument '%s'; see `shopstream group --help`.\n",
                    a->cmd, arg);
            return -1;
        }
        a->group = arg;
        i++;
    }
    if ((allowed & OPT_GROUP) && (!a->group || !*a->group)) {
        fprintf(stderr, "%s: a GROUP is required; see `shopstream group --help`.\n", a->cmd);
        return -1;
    }
    if (allowed & OPT_RESET) {
        if (!a->topic) {
            fprintf(stderr, "%s: --topic T is required.\n", a->cmd);
            return -1;
        }
        if (a->ntos != 1) {
            fprintf(stderr,
                    "%s: give exactly one of --to-earliest, --to-latest, --to-offset N and "
                    "--to-datetime ISO8601.\n",
                    a->cmd);
            return -1;
        }
    }
    return 0;
}

/* Prints s as one word: "-" when NULL or empty; spaces, control bytes, DEL
 * and backslashes as \xHH. */
static void put_word(const char *s)
{
    if (!s || !*s) {
        fputs("-", stdout);
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c <= 0x20 || c == 0x7f || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* An admin request's options with the request timeout set to --timeout-ms.
 * Returns owned (rd_kafka_AdminOptions_destroy). */
static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, const struct group_args *a,
                                              rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    char err[256];

    rd_kafka_AdminOptions_set_request_timeout(opts, a->co.timeout_ms, err, sizeof err);
    return opts;
}

static rd_kafka_event_t *admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, const struct group_args *a,
                                    const char *what)
{
    return client_admin_wait(rk, q, &a->co, a->cmd, what);
}

/* Sends DescribeConsumerGroups for groups.  Returns an owned result event
 * (rd_kafka_event_destroy) with *res a view of its n descriptions, or NULL
 * after printing an error. */
static rd_kafka_event_t *describe_groups(struct group_args *a, rd_kafka_t *rk,
                                         rd_kafka_queue_t *q, const char **groups, size_t n,
                                         const rd_kafka_ConsumerGroupDescription_t ***res,
                                         size_t *nres)
{
    rd_kafka_AdminOptions_t *opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_event_t *ev;
    char what[300];

    if (n == 1)
        snprintf(what, sizeof what, "could not describe group '%s'", groups[0]);
    else
        snprintf(what, sizeof what, "could not describe the groups");
    rd_kafka_DescribeConsumerGroups(rk, groups, n, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    if (!(ev = admin_wait(rk, q, a, what)))
        return NULL;
    *res = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), nres);
    return ev;
}

/* Describes a->group.  Returns an owned event with *desc a view of the
 * group's description, or NULL after printing an error.  *missing is set
 * (and NULL returned without an error message) when the cluster does not
 * know the group, so the caller decides whether that is an error. */
static rd_kafka_event_t *describe_one(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q,
                                      const rd_kafka_ConsumerGroupDescription_t **desc,
                                      int *missing)
{
    const rd_kafka_ConsumerGroupDescription_t **res;
    const rd_kafka_error_t *gerr;
    rd_kafka_event_t *ev;
    size_t n;
    char what[300];

    *missing = 0;
    if (!(ev = describe_groups(a, rk, q, &a->group, 1, &res, &n)))
        return NULL;
    snprintf(what, sizeof what, "could not describe group '%s'", a->group);
    if (n != 1) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the cluster returned no description of the group");
        goto err;
    }
    if ((gerr = rd_kafka_ConsumerGroupDescription_error(res[0]))) {
        if (rd_kafka_error_code(gerr) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            *missing = 1;
            goto err;
        }
        client_report(rk, &a->co, a->cmd, what, rd_kafka_error_code(gerr),
                      rd_kafka_error_string(gerr));
        goto err;
    }
    if (rd_kafka_ConsumerGroupDescription_state(res[0]) == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        *missing = 1;
        goto err;
    }
    *desc = res[0];
    return ev;
err:
    rd_kafka_event_destroy(ev);
    return NULL;
}

static int cmp_listing(const void *x, const void *y)
{
    return strcmp(
        rd_kafka_ConsumerGroupListing_group_id(*(const rd_kafka_ConsumerGroupListing_t *const *)x),
        rd_kafka_ConsumerGroupListing_group_id(*(const rd_kafka_ConsumerGroupListing_t *const *)y));
}

static int group_list(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    rd_kafka_AdminOptions_t *opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    const rd_kafka_ConsumerGroupListing_t **valid, **sorted = NULL;
    const rd_kafka_error_t **errors;
    const rd_kafka_ConsumerGroupDescription_t **descs = NULL;
    const rd_kafka_ListConsumerGroups_result_t *res;
    rd_kafka_event_t *ev, *dev = NULL;
    const char **unknown = NULL;
    size_t nvalid, nerrors, nunknown = 0, ndescs = 0;
    int rc = 1;

    rd_kafka_ListConsumerGroups(rk, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    if (!(ev = admin_wait(rk, q, a, "could not list the groups")))
        return 1;
    res = rd_kafka_event_ListConsumerGroups_result(ev);
    valid = rd_kafka_ListConsumerGroups_result_valid(res, &nvalid);
    errors = rd_kafka_ListConsumerGroups_result_errors(res, &nerrors);
    if (nerrors > 0) {
        /* Some broker did not answer: its groups are missing from the list,
         * which must not pass for a complete answer.  librdkafka's message
         * names the broker. */
        client_report(rk, &a->co, a->cmd, "could not list the groups",
                      rd_kafka_error_code(errors[0]), rd_kafka_error_string(errors[0]));
        goto out;
    }
    sorted = xcalloc(nvalid + 1, sizeof *sorted);
    unknown = xcalloc(nvalid + 1, sizeof *unknown);
    if (!sorted || !unknown) {
        fprintf(stderr, "%s: out of memory.\n", a->cmd);
        goto out;
    }
    if (nvalid) { /* valid may be NULL when there are no groups */
        memcpy(sorted, valid, nvalid * sizeof *sorted);
        if (nvalid > 1)
            qsort(sorted, nvalid, sizeof *sorted, cmp_listing);
    }
    /* ListGroups below v4 has no state: ask DescribeGroups for it. */
    for (size_t k = 0; k < nvalid; k++)
        if (rd_kafka_ConsumerGroupListing_state(sorted[k]) == RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN)
            unknown[nunknown++] = rd_kafka_ConsumerGroupListing_group_id(sorted[k]);
    if (nunknown > 0 && !(dev = describe_groups(a, rk, q, unknown, nunknown, &descs, &ndescs)))
        goto out;
    for (size_t k = 0; k < nvalid; k++) {
        const char *id = rd_kafka_ConsumerGroupListing_group_id(sorted[k]);
        rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupListing_state(sorted[k]);
        int simple = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(sorted[k]);

        for (size_t j = 0; j < ndescs && state == RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN; j++)
            if (!strcmp(rd_kafka_ConsumerGroupDescription_group_id(descs[j]), id) &&
                !rd_kafka_ConsumerGroupDescription_error(descs[j])) {
                state = rd_kafka_ConsumerGroupDescription_state(descs[j]);
                simple = rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(descs[j]);
            }
        put_word(id);
        printf(" %s %s\n", rd_kafka_consumer_group_state_name(state), simple ? "-" : "consumer");
    }
    rc = 0;
out:
    xfree(sorted);
    xfree(unknown);
    if (dev)
        rd_kafka_event_destroy(dev);
    rd_kafka_event_destroy(ev);
    return rc;
}

/* One line of describe's offsets table. */
struct offset_row {
    const char *topic;     /* view into a partition list or description */
    int32_t partition;
    int64_t committed;     /* -1 when nothing is committed */
    const char *member_id; /* view; NULL when no member has the partition */
};

struct offset_rows {
    struct offset_row *rows; /* owned */
    size_t n, cap;
};

/* Finds (topic, partition), adding a row with nothing committed and no
 * member if missing.  Returns a view into r, or NULL when out of memory. */
static struct offset_row *row_get(struct offset_rows *r, const char *topic, int32_t partition)
{
    for (size_t k = 0; k < r->n; k++)
        if (r->rows[k].partition == partition && !strcmp(r->rows[k].topic, topic))
            return &r->rows[k];
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct offset_row *grown = xrealloc(r->rows, cap * sizeof *grown);

        if (!grown)
            return NULL;
        r->rows = grown;
        r->cap = cap;
    }
    r->rows[r->n] = (struct offset_row){topic, partition, -1, NULL};
    return &r->rows[r->n++];
}

static int cmp_row(const void *x, const void *y)
{
    const struct offset_row *p = x, *q = y;
    int c = strcmp(p->topic, q->topic);

    return c ? c : (p->partition > q->partition) - (p->partition < q->partition);
}

static int cmp_tp(const void *x, const void *y)
{
    const rd_kafka_topic_partition_t *p = *(const rd_kafka_topic_partition_t *const *)x;
    const rd_kafka_topic_partition_t *q = *(const rd_kafka_topic_partition_t *const *)y;
    int c = strcmp(p->topic, q->topic);

    return c ? c : (p->partition > q->partition) - (p->partition < q->partition);
}

static int cmp_member(const void *x, const void *y)
{
    const rd_kafka_MemberDescription_t *p = *(const rd_kafka_MemberDescription_t *const *)x;
    const rd_kafka_MemberDescription_t *q = *(const rd_kafka_MemberDescription_t *const *)y;

    return strcmp(rd_kafka_MemberDescription_consumer_id(p),
                  rd_kafka_MemberDescription_consumer_id(q));
}

/* Prints a member's assignment as "t:0,1;u:2" (sorted), or "-".  Returns 0
 * or -1 when out of memory. */
static int put_assignment(const rd_kafka_topic_partition_list_t *parts)
{
    const rd_kafka_topic_partition_t **v;

    if (!parts || parts->cnt == 0) {
        fputs("-", stdout);
        return 0;
    }
    if (!(v = xcalloc((size_t)parts->cnt, sizeof *v)))
        return -1;
    for (int k = 0; k < parts->cnt; k++)
        v[k] = &parts->elems[k];
    if ((size_t)parts->cnt > 1)
        qsort(v, (size_t)parts->cnt, sizeof *v, cmp_tp);
    for (int k = 0; k < parts->cnt; k++) {
        if (k == 0 || strcmp(v[k]->topic, v[k - 1]->topic)) {
            if (k)
                putchar(';');
            put_word(v[k]->topic);
            putchar(':');
        } else {
            putchar(',');
        }
        printf("%d", (int)v[k]->partition);
    }
    xfree(v);
    return 0;
}

/* Asks for the group's committed offsets of parts (NULL: "all", see the top
 * of the file).  Returns an owned event whose *out is a view of the
 * answer, or NULL after printing an error. */
static rd_kafka_event_t *committed_offsets(struct group_args *a, rd_kafka_t *rk,
                                           rd_kafka_queue_t *q,
                                           const rd_kafka_topic_partition_list_t *parts,
                                           const rd_kafka_topic_partition_list_t **out)
{
    rd_kafka_AdminOptions_t *opts =
        admin_options(rk, a, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(a->group, parts);
    const rd_kafka_group_result_t **res;
    const rd_kafka_error_t *gerr;
    rd_kafka_event_t *ev;
    size_t n;
    char what[300];

    snprintf(what, sizeof what, "could not read the committed offsets of group '%s'", a->group);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (!(ev = admin_wait(rk, q, a, what)))
        return NULL;
    res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    if (n != 1) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the cluster returned no result for the group");
        goto err;
    }
    if ((gerr = rd_kafka_group_result_error(res[0]))) {
        client_report(rk, &a->co, a->cmd, what, rd_kafka_error_code(gerr),
                      rd_kafka_error_string(gerr));
        goto err;
    }
    *out = rd_kafka_group_result_partitions(res[0]);
    return ev;
err:
    rd_kafka_event_destroy(ev);
    return NULL;
}

/* Adds the committed offsets in parts to rows.  Returns 0 or -1 (out of
 * memory). */
static int add_committed(struct offset_rows *rows, const rd_kafka_topic_partition_list_t *parts)
{
    for (int k = 0; parts && k < parts->cnt; k++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[k];
        struct offset_row *row;

        if (tp->err || tp->offset < 0)
            continue;
        if (!(row = row_get(rows, tp->topic, tp->partition)))
            return -1;
        row->committed = tp->offset;
    }
    return 0;
}

static int group_describe(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    const rd_kafka_ConsumerGroupDescription_t *desc;
    const rd_kafka_MemberDescription_t **members = NULL;
    const rd_kafka_topic_partition_list_t *got;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    rd_kafka_topic_partition_list_t *every = NULL;
    rd_kafka_event_t *ev, *ev_all = NULL, *ev_every = NULL;
    const rd_kafka_Node_t *node;
    struct offset_rows rows = {0};
    const char *assignor;
    size_t nmembers;
    int missing, rc = 1;

    if (!(ev = describe_one(a, rk, q, &desc, &missing))) {
        if (missing)
            fprintf(stderr, "%s: group '%s' does not exist.\n", a->cmd, a->group);
        return 1;
    }
    nmembers = rd_kafka_ConsumerGroupDescription_member_count(desc);
    if (!(members = xcalloc(nmembers + 1, sizeof *members)))
        goto oom;
    for (size_t k = 0; k < nmembers; k++)
        members[k] = rd_kafka_ConsumerGroupDescription_member(desc, k);
    if (nmembers > 1)
        qsort(members, nmembers, sizeof *members, cmp_member);

    /* Rows: every assigned partition, then every committed one. */
    for (size_t k = 0; k < nmembers; k++) {
        const rd_kafka_topic_partition_list_t *parts =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(members[k]));

        for (int p = 0; parts && p < parts->cnt; p++) {
            struct offset_row *row = row_get(&rows, parts->elems[p].topic, parts->elems[p].partition);

            if (!row)
                goto oom;
            row->member_id = rd_kafka_MemberDescription_consumer_id(members[k]);
        }
    }
    if (!(ev_all = committed_offsets(a, rk, q, NULL, &got)))
        goto out;
    if (add_committed(&rows, got) < 0)
        goto oom;
    if (client_topic_metadata(rk, &a->co, a->cmd, NULL, &md, &mt) < 0)
        goto out;
    every = rd_kafka_topic_partition_list_new(64);
    for (int t = 0; t < md->topic_cnt; t++)
        for (int p = 0; p < md->topics[t].partition_cnt && !md->topics[t].err; p++)
            rd_kafka_topic_partition_list_add(every, md->topics[t].topic,
                                              md->topics[t].partitions[p].id);
    if (every->cnt > 0) {
        if (!(ev_every = committed_offsets(a, rk, q, every, &got)))
            goto out;
        if (add_committed(&rows, got) < 0)
            goto oom;
    }
    if (rows.n > 1)
        qsort(rows.rows, rows.n, sizeof *rows.rows, cmp_row);

    assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(desc);
    node = rd_kafka_ConsumerGroupDescription_coordinator(desc);
    printf("group ");
    put_word(rd_kafka_ConsumerGroupDescription_group_id(desc));
    printf("\nstate %s\n",
           rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(desc)));
    printf("protocol-type %s\n",
           rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(desc) ? "-" : "consumer");
    printf("assignor ");
    put_word(assignor);
    if (node)
        printf("\ncoordinator %d %s:%u\n", rd_kafka_Node_id(node), rd_kafka_Node_host(node),
               (unsigned)rd_kafka_Node_port(node));
    else
        printf("\ncoordinator - -\n");
    printf("members %zu\n", nmembers);
    for (size_t k = 0; k < nmembers; k++) {
        printf("member ");
        put_word(rd_kafka_MemberDescription_consumer_id(members[k]));
        printf(" client-id ");
        put_word(rd_kafka_MemberDescription_client_id(members[k]));
        printf(" host ");
        put_word(rd_kafka_MemberDescription_host(members[k]));
        printf(" instance-id ");
        put_word(rd_kafka_MemberDescription_group_instance_id(members[k]));
        printf(" assignment ");
        if (put_assignment(rd_kafka_MemberAssignment_partitions(
                rd_kafka_MemberDescription_assignment(members[k]))) < 0)
            goto oom;
        putchar('\n');
    }
    printf("TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID\n");
    for (size_t k = 0; k < rows.n; k++) {
        const struct offset_row *row = &rows.rows[k];
        int64_t lo, hi;
        int have_end = rd_kafka_query_watermark_offsets(rk, row->topic, row->partition, &lo, &hi,
                                                        a->co.timeout_ms) == 0;

        put_word(row->topic);
        printf(" %d ", (int)row->partition);
        if (row->committed >= 0)
            printf("%lld ", (long long)row->committed);
        else
            fputs("- ", stdout);
        if (have_end)
            printf("%lld ", (long long)hi);
        else
            fputs("- ", stdout);
        if (have_end && row->committed >= 0)
            printf("%lld ", (long long)(hi - row->committed));
        else
            fputs("- ", stdout);
        put_word(row->member_id);
        putchar('\n');
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "%s: out of memory.\n", a->cmd);
out:
    if (every)
        rd_kafka_topic_partition_list_destroy(every);
    if (md)
        rd_kafka_metadata_destroy(md);
    xfree(rows.rows);
    xfree(members);
    if (ev_every)
        rd_kafka_event_destroy(ev_every);
    if (ev_all)
        rd_kafka_event_destroy(ev_all);
    rd_kafka_event_destroy(ev);
    return rc;
}

/* Fills the new offset of every partition of list for a->to.  Returns 0 or
 * -1 after printing an error. */
static int compute_offsets(struct group_args *a, rd_kafka_t *rk,
                           rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *times = NULL;
    rd_kafka_resp_err_t err;

    if (a->to == RESET_DATETIME) {
        times = rd_kafka_topic_partition_list_copy(list);
        for (int k = 0; k < times->cnt; k++)
            times->elems[k].offset = a->to_ms;
        err = rd_kafka_offsets_for_times(rk, times, a->co.timeout_ms);
        if (err) {
            client_report(rk, &a->co, a->cmd, "could not look up the offsets for the time", err,
                          NULL);
            goto err;
        }
    }
    for (int k = 0; k < list->cnt; k++) {
        rd_kafka_topic_partition_t *tp = &list->elems[k];
        int64_t lo, hi;

        err = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi,
                                               a->co.timeout_ms);
        if (err) {
            char what[300];

            snprintf(what, sizeof what, "could not read the offsets of %s partition %d",
                     tp->topic, (int)tp->partition);
            client_report(rk, &a->co, a->cmd, what, err, NULL);
            goto err;
        }
        switch (a->to) {
        case RESET_EARLIEST: tp->offset = lo; break;
        case RESET_LATEST: tp->offset = hi; break;
        case RESET_OFFSET:
            tp->offset = a->to_offset;
            if (tp->offset < lo || tp->offset > hi) {
                int64_t to = tp->offset < lo ? lo : hi;

                fprintf(stderr,
                        "%s: warning: offset %lld is outside %s partition %d [%lld, %lld]; "
                        "using %lld.\n",
                        a->cmd, (long long)tp->offset, tp->topic, (int)tp->partition,
                        (long long)lo, (long long)hi, (long long)to);
                tp->offset = to;
            }
            break;
        default: {
            const rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_find(times, tp->topic, tp->partition);

            if (t && t->err) {
                char what[300];

                snprintf(what, sizeof what, "could not look up the offset for the time in %s "
                                            "partition %d", tp->topic, (int)tp->partition);
                client_report(rk, &a->co, a->cmd, what, t->err, NULL);
                goto err;
            }
            /* No record at or after the time: the end, as Kafka does. */
            tp->offset = t && t->offset >= 0 ? t->offset : hi;
            break;
        }
        }
    }
    if (times)
        rd_kafka_topic_partition_list_destroy(times);
    return 0;
err:
    if (times)
        rd_kafka_topic_partition_list_destroy(times);
    return -1;
}

/* Commits the offsets in list for a->group.  Returns 0 or -1 after printing
 * an error. */
static int commit_offsets(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q,
                          const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_AdminOptions_t *opts =
        admin_options(rk, a, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(a->group, list);
    const rd_kafka_group_result_t **res;
    const rd_kafka_topic_partition_list_t *parts;
    const rd_kafka_error_t *gerr;
    rd_kafka_event_t *ev;
    size_t n;
    char what[300];
    int rc = -1;

    snprintf(what, sizeof what, "could not commit the new offsets of group '%s'", a->group);
    rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    if (!(ev = admin_wait(rk, q, a, what)))
        return -1;
    res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    if (n != 1) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the cluster returned no result for the group");
        goto out;
    }
    if ((gerr = rd_kafka_group_result_error(res[0]))) {
        client_report(rk, &a->co, a->cmd, what, rd_kafka_error_code(gerr),
                      rd_kafka_error_string(gerr));
        goto out;
    }
    parts = rd_kafka_group_result_partitions(res[0]);
    for (int k = 0; parts && k < parts->cnt; k++)
        if (parts->elems[k].err) {
            char pwhat[400];

            snprintf(pwhat, sizeof pwhat, "%s for %s partition %d", what, parts->elems[k].topic,
                     (int)parts->elems[k].partition);
            client_report(rk, &a->co, a->cmd, pwhat, parts->elems[k].err, NULL);
            goto out;
        }
    rc = 0;
out:
    rd_kafka_event_destroy(ev);
    return rc;
}

static int group_reset(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    const rd_kafka_ConsumerGroupDescription_t *desc;
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *mt;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_event_t *ev;
    int missing, rc = 1;

    /* Kafka resets only an inactive group (Empty, or Dead: unknown). */
    if ((ev = describe_one(a, rk, q, &desc, &missing))) {
        rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(desc);
        size_t nm = rd_kafka_ConsumerGroupDescription_member_count(desc);

        if (st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY || nm > 0) {
            fprintf(stderr,
                    "%s: could not reset the offsets of group '%s': it is %s with %zu active "
                    "member%s, and offsets can be reset only while a group has none; stop its "
                    "consumers first.\n",
                    a->cmd, a->group, rd_kafka_consumer_group_state_name(st), nm,
                    nm == 1 ? "" : "s");
            rd_kafka_event_destroy(ev);
            return 1;
        }
        rd_kafka_event_destroy(ev);
    } else if (!missing) {
        return 1;
    }

    if (client_topic_metadata(rk, &a->co, a->cmd, a->topic, &md, &mt) < 0)
        return 1;
    list = rd_kafka_topic_partition_list_new(mt->partition_cnt);
    if (a->npartitions == 0) {
        for (int p = 0; p < mt->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, a->topic, mt->partitions[p].id);
    } else {
        for (size_t k = 0; k < a->npartitions; k++) {
            int found = 0;

            for (int p = 0; p < mt->partition_cnt; p++)
                found |= mt->partitions[p].id == a->partitions[k];
            if (!found) {
                fprintf(stderr, "%s: topic '%s' has no partition %d (it has %d).\n", a->cmd,
                        a->topic, (int)a->partitions[k], mt->partition_cnt);
                goto out;
            }
            if (!rd_kafka_topic_partition_list_find(list, a->topic, a->partitions[k]))
                rd_kafka_topic_partition_list_add(list, a->topic, a->partitions[k]);
        }
    }
    rd_kafka_topic_partition_list_sort(list, NULL, NULL);
    if (compute_offsets(a, rk, list) < 0)
        goto out;
    if (!a->dry_run && commit_offsets(a, rk, q, list) < 0)
        goto out;
    printf("TOPIC PARTITION NEW-OFFSET\n");
    for (int k = 0; k < list->cnt; k++) {
        put_word(list->elems[k].topic);
        printf(" %d %lld\n", (int)list->elems[k].partition, (long long)list->elems[k].offset);
    }
    if (a->dry_run) {
        fflush(stdout);
        fprintf(stderr, "%s: dry run: nothing was committed.\n", a->cmd);
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int group_delete(struct group_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    rd_kafka_DeleteGroup_t *dg = rd_kafka_DeleteGroup_new(a->group);
    rd_kafka_AdminOptions_t *opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    const rd_kafka_group_result_t **res;
    const rd_kafka_error_t *gerr;
    rd_kafka_event_t *ev;
    size_t n;
    char what[300];
    int rc = 1;

    snprintf(what, sizeof what, "could not delete group '%s'", a->group);
    rd_kafka_DeleteGroups(rk, &dg, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteGroup_destroy(dg);
    if (!(ev = admin_wait(rk, q, a, what)))
        return 1;
    res = rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
    if (n != 1) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the cluster returned no result for the group");
    } else if ((gerr = rd_kafka_group_result_error(res[0]))) {
        rd_kafka_resp_err_t code = rd_kafka_error_code(gerr);

        if (code == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
            fprintf(stderr, "%s: group '%s' does not exist.\n", a->cmd, a->group);
        else if (code == RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP)
            fprintf(stderr, "%s: %s: it still has active members; stop its consumers first.\n",
                    a->cmd, what);
        else
            client_report(rk, &a->co, a->cmd, what, code, rd_kafka_error_string(gerr));
    } else {
        printf("deleted group ");
        put_word(a->group);
        putchar('\n');
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

int cmd_group(int argc, char **argv)
{
    static const struct client_subcommand subs[] = {
        {"list", 0},
        {"describe", OPT_GROUP},
        {"reset-offsets", OPT_GROUP | OPT_RESET},
        {"delete", OPT_GROUP},
    };
    struct group_args a;
    char cmd[64];
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    size_t s;
    int rc = 2, r;

    int picked = client_pick_subcommand("shopstream group", usage_text, "list, describe, reset-offsets or delete", subs,
                                        sizeof subs / sizeof subs[0], argc, argv, &s);
    if (picked >= 0)
        return picked;

    memset(&a, 0, sizeof a);
    client_opts_init(&a.co);
    snprintf(cmd, sizeof cmd, "shopstream group %s", subs[s].name);
    a.cmd = cmd;
    r = parse_args(&a, subs[s].allowed, argc - 1, argv + 1);
    if (r != 0) {
        rc = r > 0 ? 0 : 2;
        goto out;
    }

    rc = 1;
    if (!(rk = client_admin_new(&a.co, cmd)))
        goto out;
    q = rd_kafka_queue_new(rk);
    switch (s) {
    case 0: rc = group_list(&a, rk, q); break;
    case 1: rc = group_describe(&a, rk, q); break;
    case 2: rc = group_reset(&a, rk, q); break;
    default: rc = group_delete(&a, rk, q); break;
    }
    if (fflush(stdout) == EOF && rc == 0) {
        fprintf(stderr, "%s: could not write to stdout.\n", cmd);
        rc = 1;
    }
out:
    if (q)
        rd_kafka_queue_destroy(q);
    if (rk)
        rd_kafka_destroy(rk);
    xfree(a.partitions);
    client_opts_free(&a.co);
    return rc;
}
