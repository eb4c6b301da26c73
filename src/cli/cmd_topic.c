/* cmd_topic.c: `shopstream topic create|list|describe|delete|alter`, topic
 * administration for any Kafka cluster through librdkafka's Admin API
 * (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
 * AlterConfigs) and Metadata.  Connection options come from client_opts.c.
 *
 * Output (stdout; errors are one sentence on stderr):
 *   create    "created topic NAME"
 *   list      one topic name per line, sorted
 *   describe  "topic NAME", "partitions N", "replication-factor R" (the
 *             replica count of the first partition), then one
 *             "partition P leader L replicas A,B isr A,B low LO high HI" per
 *             partition (leader -1 when there is none, "-" for an empty
 *             list, low/high -1 when the watermarks could not be read or the
 *             partition has no live leader to ask), followed by
 *             " offline-replicas A,B" when some replicas are on brokers that
 *             are not live and " error NAME" when the metadata gives the
 *             partition an error (e.g. LEADER_NOT_AVAILABLE); then one
 *             "config SOURCE NAME=VALUE" per topic config: non-default
 *             ones first, each group sorted by name, SOURCE as librdkafka
 *             names it (DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...)
 *   delete    "deleted topic NAME"
 *   alter     "topic NAME now has N partitions" / "altered configs of topic NAME"
 *
 * Leader, replicas and ISR come from Metadata, which every Kafka version
 * answers.  librdkafka 2.0.2's metadata struct drops the OfflineReplicas
 * field, so a replica counts as offline when its broker is not among the
 * live brokers of the same response (what Kafka reports for a dead broker).
 *
 * librdkafka 2.0 has no IncrementalAlterConfigs, and AlterConfigs replaces the
 * whole set of a topic's dynamic configs, so `alter --config` reads the
 * current dynamic configs first and sends them merged with the changes. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "common/alloc.h"

/* Kafka's own limit on partitions per CreateTopics / CreatePartitions. */
#define TOPIC_MAX_PARTITIONS 100000

static const char usage_text[] =
    "usage: shopstream topic create NAME [--partitions N] [--replicas R] [--config k=v]...\n"
    "       shopstream topic list [--all]\n"
    "       shopstream topic describe NAME [--no-configs]\n"
    "       shopstream topic delete NAME\n"
    "       shopstream topic alter NAME [--partitions N] [--config k=v]... [--delete-config k]...\n"
    "\n"
    "Topic administration on any Kafka cluster.\n"
    "\n"
    "  --partitions N     create: partition count (default -1 = broker default);\n"
    "                     alter: new total partition count (can only grow)\n"
    "  --replicas R       replication factor (default -1 = broker default)\n"
    "  --config k=v       topic config (e.g. cleanup.policy=compact); repeatable\n"
    "  --delete-config k  alter: remove a topic config override; repeatable\n"
    "  --all              list: include internal topics (names starting with __)\n"
    "  --no-configs       describe: skip the DescribeConfigs request\n"
    "\n"
    "describe prints one line per partition: \"partition P leader L replicas A,B,C\n"
    "isr A,B low LO high HI\", plus \"offline-replicas C\" when replicas sit on brokers\n"
    "that are down and \"error NAME\" when the partition has one (leader -1: none).\n"
    "A --replicas larger than the live brokers is refused by the cluster (exit 1).\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     time limit of each request (default 10000)\n";

/* What one `topic SUB` invocation asked for.  Strings borrow from argv. */
struct topic_args {
    struct client_opts co;
    const char *cmd;         /* "shopstream topic SUB", the error prefix */
    const char *name;        /* the topic NAME operand */
    long long partitions;    /* --partitions, or -1 */
    int partitions_given;    /* --partitions appeared */
    long long replicas;      /* --replicas, or -1 */
    const char **configs;    /* --config "k=v" values; owned array */
    size_t nconfigs;
    const char **deletes;    /* --delete-config keys; owned array */
    size_t ndeletes;
    int all;                 /* --all */
    int no_configs;          /* --no-configs */
};

static int push(const char ***arr, size_t *n, const char *s)
{
    const char **grown = xrealloc(*arr, (*n + 1) * sizeof *grown);

    if (!grown)
        return -1;
    *arr = grown;
    grown[(*n)++] = s;
    return 0;
}

/* Splits "k=v" into an owned key (xfree) and a view of the value. */
static char *split_kv(const char *kv, const char **value)
{
    const char *eq = strchr(kv, '=');

    *value = eq + 1;
    return xstrndup(kv, (size_t)(eq - kv));
}

/* Which options each subcommand accepts. */
enum {
    OPT_PARTITIONS = 1 << 0,
    OPT_REPLICAS = 1 << 1,
    OPT_CONFIG = 1 << 2,
    OPT_DELETE_CONFIG = 1 << 3,
    OPT_ALL = 1 << 4,
    OPT_NO_CONFIGS = 1 << 5,
    OPT_NAME = 1 << 6, /* takes the NAME operand */
};

/* Returns 0 to go on, 1 when --help was printed, or -1 after an error. */
static int parse_args(struct topic_args *a, int allowed, int argc, char **argv)
{
    const char *v;
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
        if ((allowed & OPT_PARTITIONS) &&
            (r = client_opt_value(a->cmd, "--partitions", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(a->cmd, "--partitions", v, -1, TOPIC_MAX_PARTITIONS,
                                          &a->partitions) < 0)
                return -1;
            if (a->partitions == 0) {
                fprintf(stderr, "%s: --partitions must be -1 or at least 1.\n", a->cmd);
                return -1;
            }
            a->partitions_given = 1;
            continue;
        }
        if ((allowed & OPT_REPLICAS) &&
            (r = client_opt_value(a->cmd, "--replicas", argc, argv, &i, &v)) != 0) {
            if (r < 0 || client_parse_int(a->cmd, "--replicas", v, -1, SHRT_MAX, &a->replicas) < 0)
                return -1;
            if (a->replicas == 0) {
                fprintf(stderr, "%s: --replicas must be -1 or at least 1.\n", a->cmd);
                return -1;
            }
            continue;
        }
        if ((allowed & OPT_CONFIG) &&
            (r = client_opt_value(a->cmd, "--config", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                return -1;
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "%s: --config expects key=value, not '%s'.\n", a->cmd, v);
                return -1;
            }
            if (push(&a->configs, &a->nconfigs, v) < 0)
                goto oom;
            continue;
        }
        if ((allowed & OPT_DELETE_CONFIG) &&
            (r = client_opt_value(a->cmd, "--delete-config", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                return -1;
            if (!*v || strchr(v, '=')) {
                fprintf(stderr, "%s: --delete-config expects a config name, not '%s'.\n", a->cmd,
                        v);
                return -1;
            }
            if (push(&a->deletes, &a->ndeletes, v) < 0)
                goto oom;
            continue;
        }
        if ((allowed & OPT_ALL) && !strcmp(arg, "--all")) {
            a->all = 1;
            i++;
            continue;
        }
        if ((allowed & OPT_NO_CONFIGS) && !strcmp(arg, "--no-configs")) {
            a->no_configs = 1;
            i++;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "%s: unknown option '%s'; see `shopstream topic --help`.\n", a->cmd,
                    arg);
            return -1;
        }
        if (!(allowed & OPT_NAME) || a->name) {
            fprintf(stderr, "%s: unexpected argument '%s'; see `shopstream topic --help`.\n",
                    a->cmd, arg);
            return -1;
        }
        a->name = arg;
        i++;
    }
    if ((allowed & OPT_NAME) && (!a->name || !*a->name)) {
        fprintf(stderr, "%s: a topic NAME is required; see `shopstream topic --help`.\n", a->cmd);
        return -1;
    }
    return 0;
oom:
    fprintf(stderr, "%s: out of memory.\n", a->cmd);
    return -1;
}

/* An admin request's options with both timeouts set to --timeout-ms.
 * Returns owned (rd_kafka_AdminOptions_destroy). */
static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, const struct topic_args *a,
                                              rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    char err[256];

    rd_kafka_AdminOptions_set_request_timeout(opts, a->co.timeout_ms, err, sizeof err);
    /* Only CreateTopics, DeleteTopics and CreatePartitions have an operation
     * timeout (how long the controller waits for the change to spread);
     * setting it on others fails harmlessly. */
    rd_kafka_AdminOptions_set_operation_timeout(opts, a->co.timeout_ms, err, sizeof err);
    return opts;
}

static rd_kafka_event_t *admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, const struct topic_args *a,
                                    const char *what)
{
    return client_admin_wait(rk, q, &a->co, a->cmd, what);
}

/* Reports the per-topic result of CreateTopics / DeleteTopics /
 * CreatePartitions.  Returns 0 when the topic's operation succeeded. */
static int check_topic_results(rd_kafka_t *rk, const struct topic_args *a,
                               const rd_kafka_topic_result_t **res, size_t n, const char *what)
{
    for (size_t k = 0; k < n; k++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[k]);

        if (err) {
            client_report(rk, &a->co, a->cmd, what, err,
                          rd_kafka_topic_result_error_string(res[k]));
            return -1;
        }
    }
    if (n == 0) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the broker returned no result for the topic");
        return -1;
    }
    return 0;
}

static int topic_create(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    char err[512], what[300];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = 1;

    snprintf(what, sizeof what, "could not create topic '%s'", a->name);
    nt = rd_kafka_NewTopic_new(a->name, (int)a->partitions, (int)a->replicas, err, sizeof err);
    if (!nt) {
        fprintf(stderr, "%s: %s: %s.\n", a->cmd, what, err);
        return 1;
    }
    for (size_t k = 0; k < a->nconfigs; k++) {
        const char *val;
        char *key = split_kv(a->configs[k], &val);
        rd_kafka_resp_err_t e = key ? rd_kafka_NewTopic_set_config(nt, key, val)
                                    : RD_KAFKA_RESP_ERR__FAIL;

        xfree(key);
        if (e) {
            fprintf(stderr, "%s: %s: bad config '%s': %s.\n", a->cmd, what, a->configs[k],
                    rd_kafka_err2str(e));
            rd_kafka_NewTopic_destroy(nt);
            return 1;
        }
    }
    opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);
    if (!(ev = admin_wait(rk, q, a, what)))
        return 1;
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (check_topic_results(rk, a, res, n, what) == 0) {
        printf("created topic %s\n", a->name);
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

static int topic_delete(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    char what[300];
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(a->name);
    rd_kafka_AdminOptions_t *opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = 1;

    snprintf(what, sizeof what, "could not delete topic '%s'", a->name);
    rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteTopic_destroy(dt);
    if (!(ev = admin_wait(rk, q, a, what)))
        return 1;
    res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    if (check_topic_results(rk, a, res, n, what) == 0) {
        printf("deleted topic %s\n", a->name);
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int topic_list(struct topic_args *a, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *mt;
    const char **names;
    size_t n = 0;

    if (client_topic_metadata(rk, &a->co, a->cmd, NULL, &md, &mt) < 0)
        return 1;
    names = xcalloc((size_t)md->topic_cnt + 1, sizeof *names);
    if (!names) {
        fprintf(stderr, "%s: out of memory.\n", a->cmd);
        rd_kafka_metadata_destroy(md);
        return 1;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        const char *name = md->topics[t].topic;

        if (md->topics[t].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        if (!a->all && !strncmp(name, "__", 2))
            continue;
        names[n++] = name;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t k = 0; k < n; k++)
        printf("%s\n", names[k]);
    xfree(names);
    rd_kafka_metadata_destroy(md);
    return 0;
}

static void print_id_list(const int32_t *ids, int n)
{
    if (n <= 0) {
        fputs("-", stdout);
        return;
    }
    for (int k = 0; k < n; k++)
        printf("%s%d", k ? "," : "", (int)ids[k]);
}

/* Whether broker id is among the live brokers of md. */
static int broker_live(const struct rd_kafka_metadata *md, int32_t id)
{
    for (int b = 0; b < md->broker_cnt; b++)
        if (md->brokers[b].id == id)
            return 1;
    return 0;
}

/* Prints " offline-replicas A,B" when some of p's replicas are on brokers
 * that md does not list as live; nothing otherwise. */
static void print_offline_replicas(const struct rd_kafka_metadata *md,
                                   const rd_kafka_metadata_partition_t *p)
{
    int first = 1;

    for (int k = 0; k < p->replica_cnt; k++) {
        if (broker_live(md, p->replicas[k]))
            continue;
        printf("%s%d", first ? " offline-replicas " : ",", (int)p->replicas[k]);
        first = 0;
    }
}

/* Reads the low and high watermarks of the partitions of topic that broker
 * leads (among the n partitions parts) into lo[k] and hi[k]. */
static void read_leader_watermarks(rd_kafka_t *rk, const struct topic_args *a, int32_t broker,
                                   const char *topic,
                                   const rd_kafka_metadata_partition_t **parts, int n,
                                   int64_t *lo, int64_t *hi)
{
    for (int pass = 0; pass < 2; pass++) {
        int64_t *out = pass == 0 ? lo : hi;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

        for (int k = 0; k < n; k++)
            if (parts[k]->leader == broker && (pass == 0 || lo[k] >= 0))
                /* As ListOffsets timestamps, -2 and -1 mean earliest and latest. */
                rd_kafka_topic_partition_list_add(l, topic, parts[k]->id)->offset =
                    pass == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        /* A call that fails (or times out) fills in nothing. */
        if (l->cnt > 0 && rd_kafka_offsets_for_times(rk, l, a->co.timeout_ms) == 0)
            for (int k = 0; k < n; k++) {
                const rd_kafka_topic_partition_t *tp;

                if (parts[k]->leader != broker)
                    continue;
                tp = rd_kafka_topic_partition_list_find(l, topic, parts[k]->id);
                if (tp && !tp->err && tp->offset >= 0)
                    out[k] = tp->offset;
            }
        rd_kafka_topic_partition_list_destroy(l);
    }
    /* Half a pair is no use. */
    for (int k = 0; k < n; k++)
        if (parts[k]->leader == broker && hi[k] < 0)
            lo[k] = -1;
}

/* Reads the low and high watermarks of the n partitions parts of topic into
 * lo[k] and hi[k], -1 where unknown.  ListOffsets through
 * rd_kafka_offsets_for_times() with the timestamps -2 (earliest) and -1
 * (latest), one call per live leader and pass, each bounded by
 * --timeout-ms, so a leader that is listed but down (Kafka has not noticed
 * yet) costs its own partitions and one timeout, and no more.
 * rd_kafka_query_watermark_offsets() would cost two round trips per
 * partition, and librdkafka 2.0.2 lets it wait forever for such a leader. */
static void read_watermarks(rd_kafka_t *rk, const struct topic_args *a,
                            const struct rd_kafka_metadata *md, const char *topic,
                            const rd_kafka_metadata_partition_t **parts, int n, int64_t *lo,
                            int64_t *hi)
{
    for (int k = 0; k < n; k++)
        lo[k] = hi[k] = -1;
    for (int b = 0; b < md->broker_cnt; b++)
        read_leader_watermarks(rk, a, md->brokers[b].id, topic, parts, n, lo, hi);
}

static int cmp_partition(const void *x, const void *y)
{
    const rd_kafka_metadata_partition_t *p = *(const rd_kafka_metadata_partition_t *const *)x;
    const rd_kafka_metadata_partition_t *q = *(const rd_kafka_metadata_partition_t *const *)y;

    return (p->id > q->id) - (p->id < q->id);
}

/* Asks for the configs of topic a->name.  Returns an owned DescribeConfigs
 * result event (rd_kafka_event_destroy) and sets *res to the topic's
 * resource (a view valid until the event is destroyed), or returns NULL after
 * printing an error. */
static rd_kafka_event_t *describe_configs(struct topic_args *a, rd_kafka_t *rk,
                                          rd_kafka_queue_t *q,
                                          const rd_kafka_ConfigResource_t **res)
{
    char what[300];
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, a->name);
    rd_kafka_AdminOptions_t *opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_event_t *ev;
    const rd_kafka_ConfigResource_t **rs;
    size_t n;

    snprintf(what, sizeof what, "could not read the configs of topic '%s'", a->name);
    rd_kafka_DescribeConfigs(rk, &cr, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(cr);
    if (!(ev = admin_wait(rk, q, a, what)))
        return NULL;
    rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    if (n == 0) {
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the broker returned no result for the topic");
        goto err;
    }
    if (rd_kafka_ConfigResource_error(rs[0])) {
        client_report(rk, &a->co, a->cmd, what, rd_kafka_ConfigResource_error(rs[0]),
                      rd_kafka_ConfigResource_error_string(rs[0]));
        goto err;
    }
    *res = rs[0];
    return ev;
err:
    rd_kafka_event_destroy(ev);
    return NULL;
}

static int cmp_config(const void *x, const void *y)
{
    const rd_kafka_ConfigEntry_t *p = *(const rd_kafka_ConfigEntry_t *const *)x;
    const rd_kafka_ConfigEntry_t *q = *(const rd_kafka_ConfigEntry_t *const *)y;
    int dp = rd_kafka_ConfigEntry_is_default(p), dq = rd_kafka_ConfigEntry_is_default(q);

    if (dp != dq)
        return dp - dq;
    return strcmp(rd_kafka_ConfigEntry_name(p), rd_kafka_ConfigEntry_name(q));
}

static int topic_describe(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *mt;
    const rd_kafka_metadata_partition_t **parts;
    int64_t *lows, *highs;
    const rd_kafka_ConfigResource_t *res;
    const rd_kafka_ConfigEntry_t **entries;
    rd_kafka_event_t *ev;
    size_t n;
    int rc = 0;

    if (client_topic_metadata(rk, &a->co, a->cmd, a->name, &md, &mt) < 0)
        return 1;
    parts = xcalloc((size_t)mt->partition_cnt + 1, sizeof *parts);
    lows = xcalloc((size_t)mt->partition_cnt + 1, sizeof *lows);
    highs = xcalloc((size_t)mt->partition_cnt + 1, sizeof *highs);
    if (!parts || !lows || !highs) {
        xfree(parts);
        xfree(lows);
        xfree(highs);
        fprintf(stderr, "%s: out of memory.\n", a->cmd);
        rd_kafka_metadata_destroy(md);
        return 1;
    }
    for (int p = 0; p < mt->partition_cnt; p++)
        parts[p] = &mt->partitions[p];
    if ((size_t)mt->partition_cnt > 1)
        qsort(parts, (size_t)mt->partition_cnt, sizeof *parts, cmp_partition);

    printf("topic %s\n", mt->topic);
    printf("partitions %d\n", mt->partition_cnt);
    printf("replication-factor %d\n", mt->partition_cnt > 0 ? parts[0]->replica_cnt : 0);
    read_watermarks(rk, a, md, mt->topic, parts, mt->partition_cnt, lows, highs);
    for (int p = 0; p < mt->partition_cnt; p++) {
        printf("partition %d leader %d replicas ", (int)parts[p]->id, (int)parts[p]->leader);
        print_id_list(parts[p]->replicas, parts[p]->replica_cnt);
        fputs(" isr ", stdout);
        print_id_list(parts[p]->isrs, parts[p]->isr_cnt);
        printf(" low %lld high %lld", (long long)lows[p], (long long)highs[p]);
        print_offline_replicas(md, parts[p]);
        if (parts[p]->err)
            printf(" error %s", rd_kafka_err2name(parts[p]->err));
        fputs("\n", stdout);
    }
    xfree(parts);
    xfree(lows);
    xfree(highs);
    rd_kafka_metadata_destroy(md);
    fflush(stdout);

    if (a->no_configs)
        return 0;
    if (!(ev = describe_configs(a, rk, q, &res)))
        return 1;
    {
        const rd_kafka_ConfigEntry_t **cs = rd_kafka_ConfigResource_configs(res, &n);

        entries = xcalloc(n + 1, sizeof *entries);
        if (!entries) {
            fprintf(stderr, "%s: out of memory.\n", a->cmd);
            rd_kafka_event_destroy(ev);
            return 1;
        }
        memcpy(entries, cs, n * sizeof *entries);
    }
    if (n > 1)
        qsort(entries, n, sizeof *entries, cmp_config);
    for (size_t k = 0; k < n; k++) {
        const char *val = rd_kafka_ConfigEntry_value(entries[k]);

        printf("config %s %s=%s\n",
               rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(entries[k])),
               rd_kafka_ConfigEntry_name(entries[k]), val ? val : "");
    }
    xfree(entries);
    rd_kafka_event_destroy(ev);
    return rc;
}

static int alter_partitions(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    char err[512], what[300];
    rd_kafka_NewPartitions_t *np;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = 1;

    snprintf(what, sizeof what, "could not grow topic '%s' to %lld partitions", a->name,
             a->partitions);
    if (a->partitions < 1) {
        fprintf(stderr, "%s: %s: the new partition count must be at least 1.\n", a->cmd, what);
        return 1;
    }
    np = rd_kafka_NewPartitions_new(a->name, (size_t)a->partitions, err, sizeof err);
    if (!np) {
        fprintf(stderr, "%s: %s: %s.\n", a->cmd, what, err);
        return 1;
    }
    opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(rk, &np, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewPartitions_destroy(np);
    if (!(ev = admin_wait(rk, q, a, what)))
        return 1;
    res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    if (check_topic_results(rk, a, res, n, what) == 0) {
        printf("topic %s now has %lld partitions\n", a->name, a->partitions);
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* Whether config name is set by --config or removed by --delete-config. */
static int config_changed(const struct topic_args *a, const char *name)
{
    size_t len = strlen(name);

    for (size_t k = 0; k < a->nconfigs; k++)
        if (!strncmp(a->configs[k], name, len) && a->configs[k][len] == '=')
            return 1;
    for (size_t k = 0; k < a->ndeletes; k++)
        if (!strcmp(a->deletes[k], name))
            return 1;
    return 0;
}

/* Whether a described entry is an override of this topic that a
 * non-incremental AlterConfigs would otherwise drop. */
static int is_topic_override(const rd_kafka_ConfigEntry_t *e)
{
    rd_kafka_ConfigSource_t src = rd_kafka_ConfigEntry_source(e);

    if (src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
        return 1;
    /* DescribeConfigs v0 does not say where a value comes from. */
    return src == RD_KAFKA_CONFIG_SOURCE_UNKNOWN_CONFIG && !rd_kafka_ConfigEntry_is_default(e) &&
           !rd_kafka_ConfigEntry_is_read_only(e);
}

static int alter_configs(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    char what[300];
    const rd_kafka_ConfigResource_t *cur;
    const rd_kafka_ConfigEntry_t **cs;
    rd_kafka_ConfigResource_t *cr;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_event_t *ev;
    const rd_kafka_ConfigResource_t **rs;
    size_t n;
    int rc = 1;

    if (!(ev = describe_configs(a, rk, q, &cur)))
        return 1;
    snprintf(what, sizeof what, "could not alter the configs of topic '%s'", a->name);
    cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, a->name);
    cs = rd_kafka_ConfigResource_configs(cur, &n);
    for (size_t k = 0; k < n; k++) {
        const char *name = rd_kafka_ConfigEntry_name(cs[k]);
        const char *val = rd_kafka_ConfigEntry_value(cs[k]);

        if (!is_topic_override(cs[k]) || config_changed(a, name))
            continue;
        if (!val) {
            fprintf(stderr,
                    "%s: warning: the sensitive config %s cannot be read back and will be "
                    "reset.\n",
                    a->cmd, name);
            continue;
        }
        rd_kafka_ConfigResource_set_config(cr, name, val);
    }
    rd_kafka_event_destroy(ev);
    for (size_t k = 0; k < a->nconfigs; k++) {
        const char *val;
        char *key = split_kv(a->configs[k], &val);

        if (!key) {
            fprintf(stderr, "%s: out of memory.\n", a->cmd);
            rd_kafka_ConfigResource_destroy(cr);
            return 1;
        }
        rd_kafka_ConfigResource_set_config(cr, key, val);
        xfree(key);
    }

    opts = admin_options(rk, a, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(rk, &cr, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(cr);
    if (!(ev = admin_wait(rk, q, a, what)))
        return 1;
    rs = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
    if (n == 0)
        client_report(rk, &a->co, a->cmd, what, RD_KAFKA_RESP_ERR__BAD_MSG,
                      "the broker returned no result for the topic");
    else if (rd_kafka_ConfigResource_error(rs[0]))
        client_report(rk, &a->co, a->cmd, what, rd_kafka_ConfigResource_error(rs[0]),
                      rd_kafka_ConfigResource_error_string(rs[0]));
    else {
        printf("altered configs of topic %s\n", a->name);
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

static int topic_alter(struct topic_args *a, rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    if (a->partitions_given && alter_partitions(a, rk, q) != 0)
        return 1;
    if ((a->nconfigs || a->ndeletes) && alter_configs(a, rk, q) != 0)
        return 1;
    return 0;
}

int cmd_topic(int argc, char **argv)
{
    static const struct client_subcommand subs[] = {
        {"create", OPT_NAME | OPT_PARTITIONS | OPT_REPLICAS | OPT_CONFIG},
        {"list", OPT_ALL},
        {"describe", OPT_NAME | OPT_NO_CONFIGS},
        {"delete", OPT_NAME},
        {"alter", OPT_NAME | OPT_PARTITIONS | OPT_CONFIG | OPT_DELETE_CONFIG},
    };
    struct topic_args a;
    char cmd[64];
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    size_t s;
    int rc = 2, r;

    int picked = client_pick_subcommand("shopstream topic", usage_text, "create, list, describe, delete or alter", subs,
                                        sizeof subs / sizeof subs[0], argc, argv, &s);
    if (picked >= 0)
        return picked;

    memset(&a, 0, sizeof a);
    client_opts_init(&a.co);
    snprintf(cmd, sizeof cmd, "shopstream topic %s", subs[s].name);
    a.cmd = cmd;
    a.partitions = -1;
    a.replicas = -1;
    r = parse_args(&a, subs[s].allowed, argc - 1, argv + 1);
    if (r != 0) {
        rc = r > 0 ? 0 : 2;
        goto out;
    }
    if (!strcmp(subs[s].name, "alter") && !a.partitions_given && !a.nconfigs && !a.ndeletes) {
        fprintf(stderr,
                "%s: nothing to change; give --partitions N, --config k=v or "
                "--delete-config k.\n",
                cmd);
        goto out;
    }

    rc = 1;
    if (!(rk = client_admin_new(&a.co, cmd)))
        goto out;
    q = rd_kafka_queue_new(rk);
    switch (s) {
    case 0: rc = topic_create(&a, rk, q); break;
    case 1: rc = topic_list(&a, rk); break;
    case 2: rc = topic_describe(&a, rk, q); break;
    case 3: rc = topic_delete(&a, rk, q); break;
    default: rc = topic_alter(&a, rk, q); break;
    }
out:
    if (q)
        rd_kafka_queue_destroy(q);
    if (rk)
        rd_kafka_destroy(rk);
    xfree(a.configs);
    xfree(a.deletes);
    client_opts_free(&a.co);
    return rc;
}
