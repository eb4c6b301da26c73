/* cmd_cluster.c: `shopstream cluster status`, the health of any Kafka cluster
 * seen through one librdkafka Metadata request (all topics): the cluster id
 * and active controller (rd_kafka_clusterid / rd_kafka_controllerid, filled
 * from that same response), every live broker, topic and partition counts,
 * and each partition that has no leader (offline) or fewer in-sync replicas
 * than replicas (under-replicated), in the spirit of kafka-topics.sh
 * --unavailable-partitions / --under-replicated-partitions.  Connection
 * options come from client_opts.c.
 *
 * librdkafka 2.0.2 has no DescribeCluster and its metadata struct drops the
 * OfflineReplicas field of MetadataResponse v5+, so a replica counts as
 * offline here when its broker is not among the live brokers the response
 * lists.  Kafka (ZooKeeper or KRaft) lists only live brokers, so that is
 * what the field would say for a dead broker; a replica on a failed log dir
 * of a live broker is not seen as offline.
 *
 * Output (stdout; errors are one sentence on stderr).  Fields are separated
 * by one space; an empty list or a missing value is "-".
 *   "cluster-id ID", "controller ID" (-1 when there is none), "brokers N",
 *   one "broker ID HOST:PORT ROLE" per broker sorted by id (ROLE is
 *   "controller" or "broker"), "topics N" (internal ones included),
 *   "partitions N", "offline-partitions N", then one
 *   "offline TOPIC PARTITION leader -1 replicas A,B isr A,B" per offline
 *   partition, "under-replicated-partitions N", then one
 *   "under-replicated TOPIC PARTITION leader L replicas A,B,C isr A,B" per
 *   under-replicated partition (both lists sorted by topic and partition,
 *   with " offline-replicas C" appended when some replicas are on brokers
 *   that are not live), and last "status healthy" or "status degraded: "
 *   followed by what is wrong.
 *   --json prints one JSON object instead (see usage_text).
 *
 * Exit codes: 0 healthy, 1 the cluster could not be reached (or any other
 * error), 2 bad usage, 3 reached but degraded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "shop/json.h"

/* A health check answers fast: unless --timeout-ms says otherwise, give up
 * on an unreachable cluster after 5 s rather than the 10 s of the other
 * client commands. */
#define CLUSTER_STATUS_TIMEOUT_MS 5000

/* Exit codes of `cluster status` (documented in usage_text). */
enum {
    STATUS_HEALTHY = 0,
    STATUS_ERROR = 1,
    STATUS_USAGE = 2,
    STATUS_DEGRADED = 3,
};

static const char usage_text[] =
    "usage: shopstream cluster status [--json]\n"
    "       shopstream cluster reassign TOPIC PARTITION BROKER[,BROKER...]|cancel [--wait]\n"
    "       shopstream cluster reassignments\n"
    "       shopstream cluster remove-broker BROKER\n"
    "  (see shopstream cluster reassign --help)\n"
    "\n"
    "The health of any Kafka cluster, from one Metadata request: the cluster id, the\n"
    "active controller, every live broker, topic and partition counts, and each\n"
    "partition that is offline (no leader) or under-replicated (fewer in-sync\n"
    "replicas than replicas).  A replica is offline when its broker is not live.\n"
    "\n"
    "  --json             one JSON object: cluster_id (null if unknown), controller_id,\n"
    "                     brokers [{id, host, port, controller}], topics, partitions,\n"
    "                     offline_partitions and under_replicated_partitions\n"
    "                     [{topic, partition, leader, replicas, isr, offline_replicas}],\n"
    "                     status (\"healthy\" or \"degraded\"), problems [sentences]\n"
    "\n"
    "Exit status:\n"
    "  0  healthy: a controller, every partition led and fully in sync\n"
    "  1  the cluster could not be reached (or another error)\n"
    "  2  bad usage\n"
    "  3  degraded: offline or under-replicated partitions, or no active controller\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     time limit of the metadata request (default 5000 here)\n";

/* What one `cluster status` invocation asked for.  Strings borrow from argv. */
struct status_args {
    struct client_opts co;
    const char *cmd; /* "shopstream cluster status", the error prefix */
    int json;        /* --json */
};

/* One partition of the metadata, with the topic it belongs to (views into
 * the metadata). */
struct part_ref {
    const rd_kafka_metadata_topic_t *t;
    const rd_kafka_metadata_partition_t *p;
};

/* What the metadata says about the cluster's health.  Arrays are owned
 * (xfree through health_free); the refs are views into the metadata. */
struct health {
    const struct rd_kafka_metadata_broker **brokers; /* sorted by id */
    int ntopics;
    size_t npartitions;
    struct part_ref *offline; /* partitions without a live leader, sorted */
    size_t noffline;
    struct part_ref *under;   /* led, but the ISR is smaller than the replicas or a
                               * replica's broker is not live; sorted */
    size_t nunder;
};

/* Returns 0 to go on, 1 when --help was printed, or -1 after an error. */
static int parse_args(struct status_args *a, int argc, char **argv)
{
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];
        int r;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 1;
        }
        if ((r = client_opts_take(&a->co, a->cmd, argc, argv, &i)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (!strcmp(arg, "--json")) {
            a->json = 1;
            i++;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0')
            fprintf(stderr, "%s: unknown option '%s'; see `shopstream cluster --help`.\n", a->cmd,
                    arg);
        else
            fprintf(stderr, "%s: unexpected argument '%s'; see `shopstream cluster --help`.\n",
                    a->cmd, arg);
        return -1;
    }
    return 0;
}

static int cmp_broker(const void *x, const void *y)
{
    const struct rd_kafka_metadata_broker *p = *(const struct rd_kafka_metadata_broker *const *)x;
    const struct rd_kafka_metadata_broker *q = *(const struct rd_kafka_metadata_broker *const *)y;

    return (p->id > q->id) - (p->id < q->id);
}

static int cmp_part_ref(const void *x, const void *y)
{
    const struct part_ref *p = x, *q = y;
    int c = strcmp(p->t->topic, q->t->topic);

    if (c)
        return c;
    return (p->p->id > q->p->id) - (p->p->id < q->p->id);
}

/* Whether broker id is among the live brokers of md. */
static int broker_live(const struct rd_kafka_metadata *md, int32_t id)
{
    for (int b = 0; b < md->broker_cnt; b++)
        if (md->brokers[b].id == id)
            return 1;
    return 0;
}

/* How many of p's replicas are on brokers that are not live. */
static int offline_replica_cnt(const struct rd_kafka_metadata *md,
                               const rd_kafka_metadata_partition_t *p)
{
    int n = 0;

    for (int r = 0; r < p->replica_cnt; r++)
        n += !broker_live(md, p->replicas[r]);
    return n;
}

/* Whether the metadata lists topic t (a topic it does not know, or one with
 * an error and no partitions yet, such as one still being created, is left
 * out, as `topic list` does). */
static int topic_counts(const rd_kafka_metadata_topic_t *t)
{
    return t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
           !(t->err && t->partition_cnt == 0);
}

static void health_free(struct health *h)
{
    xfree(h->brokers);
    xfree(h->offline);
    xfree(h->under);
    memset(h, 0, sizeof *h);
}

/* Fills h from md.  Returns 0, or -1 when out of memory. */
static int health_build(struct health *h, const struct rd_kafka_metadata *md)
{
    size_t nparts = 0;

    memset(h, 0, sizeof *h);
    for (int t = 0; t < md->topic_cnt; t++)
        if (topic_counts(&md->topics[t]))
            nparts += (size_t)md->topics[t].partition_cnt;
    h->brokers = xcalloc((size_t)md->broker_cnt + 1, sizeof *h->brokers);
    h->offline = xcalloc(nparts + 1, sizeof *h->offline);
    h->under = xcalloc(nparts + 1, sizeof *h->under);
    if (!h->brokers || !h->offline || !h->under) {
        health_free(h);
        return -1;
    }
    for (int b = 0; b < md->broker_cnt; b++)
        h->brokers[b] = &md->brokers[b];
    qsort(h->brokers, (size_t)md->broker_cnt, sizeof *h->brokers, cmp_broker);
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];

        if (!topic_counts(mt))
            continue;
        h->ntopics++;
        for (int p = 0; p < mt->partition_cnt; p++) {
            const rd_kafka_metadata_partition_t *mp = &mt->partitions[p];

            h->npartitions++;
            /* A leader that is not live is no leader: Kafka names only
             * live brokers as leaders, but a cached answer may lag. */
            if (mp->leader < 0 || !broker_live(md, mp->leader))
                h->offline[h->noffline++] = (struct part_ref){mt, mp};
            else if (mp->isr_cnt < mp->replica_cnt || offline_replica_cnt(md, mp) > 0)
                h->under[h->nunder++] = (struct part_ref){mt, mp};
        }
    }
    qsort(h->offline, h->noffline, sizeof *h->offline, cmp_part_ref);
    qsort(h->under, h->nunder, sizeof *h->under, cmp_part_ref);
    return 0;
}

/* What is wrong with a cluster, as short clauses ("2 partitions are
 * offline (no leader)"); the text output joins them, --json lists them. */
struct problems {
    char what[3][64];
    int n;
};

static void health_problems(const struct health *h, int32_t controller, struct problems *pr)
{
    pr->n = 0;
    if (h->noffline)
        snprintf(pr->what[pr->n++], sizeof pr->what[0], "%zu partition%s offline (no leader)",
                 h->noffline, h->noffline == 1 ? " is" : "s are");
    if (h->nunder)
        snprintf(pr->what[pr->n++], sizeof pr->what[0], "%zu partition%s under-replicated",
                 h->nunder, h->nunder == 1 ? " is" : "s are");
    if (controller < 0)
        snprintf(pr->what[pr->n++], sizeof pr->what[0], "there is no active controller");
}

static void print_ids(const int32_t *ids, int n)
{
    if (n <= 0) {
        fputs("-", stdout);
        return;
    }
    for (int k = 0; k < n; k++)
        printf("%s%d", k ? "," : "", (int)ids[k]);
}

/* Prints " offline-replicas A,B" when some of r's replicas are not live. */
static void print_offline_replicas(const struct rd_kafka_metadata *md, const struct part_ref *r)
{
    int first = 1;

    for (int k = 0; k < r->p->replica_cnt; k++) {
        if (broker_live(md, r->p->replicas[k]))
            continue;
        printf("%s%d", first ? " offline-replicas " : ",", (int)r->p->replicas[k]);
        first = 0;
    }
}

static void print_part_refs(const struct rd_kafka_metadata *md, const char *label,
                            const struct part_ref *refs, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        printf("%s %s %d leader %d replicas ", label, refs[k].t->topic, (int)refs[k].p->id,
               (int)refs[k].p->leader);
        print_ids(refs[k].p->replicas, refs[k].p->replica_cnt);
        fputs(" isr ", stdout);
        print_ids(refs[k].p->isrs, refs[k].p->isr_cnt);
        print_offline_replicas(md, &refs[k]);
        fputs("\n", stdout);
    }
}

static void print_text(const struct rd_kafka_metadata *md, const struct health *h,
                       const char *cluster_id, int32_t controller, const struct problems *pr)
{
    printf("cluster-id %s\n", cluster_id && *cluster_id ? cluster_id : "-");
    printf("controller %d\n", (int)controller);
    printf("brokers %d\n", md->broker_cnt);
    for (int b = 0; b < md->broker_cnt; b++)
        printf("broker %d %s:%d %s\n", (int)h->brokers[b]->id, h->brokers[b]->host,
               h->brokers[b]->port, h->brokers[b]->id == controller ? "controller" : "broker");
    printf("topics %d\n", h->ntopics);
    printf("partitions %zu\n", h->npartitions);
    printf("offline-partitions %zu\n", h->noffline);
    print_part_refs(md, "offline", h->offline, h->noffline);
    printf("under-replicated-partitions %zu\n", h->nunder);
    print_part_refs(md, "under-replicated", h->under, h->nunder);
    if (pr->n == 0) {
        printf("status healthy\n");
        return;
    }
    printf("status degraded: ");
    for (int k = 0; k < pr->n; k++)
        printf("%s%s", k ? ", " : "", pr->what[k]);
    printf("\n");
}

static void json_ids(struct jbuf *b, const char *key, const int32_t *ids, int n)
{
    json_w_arr_begin(b, key);
    for (int k = 0; k < n; k++)
        json_w_int(b, NULL, ids[k]);
    json_w_arr_end(b);
}

static void json_part_refs(struct jbuf *b, const struct rd_kafka_metadata *md, const char *key,
                           const struct part_ref *refs, size_t n)
{
    json_w_arr_begin(b, key);
    for (size_t k = 0; k < n; k++) {
        const rd_kafka_metadata_partition_t *p = refs[k].p;

        json_w_obj_begin(b, NULL);
        json_w_cstr(b, "topic", refs[k].t->topic);
        json_w_int(b, "partition", p->id);
        json_w_int(b, "leader", p->leader);
        json_ids(b, "replicas", p->replicas, p->replica_cnt);
        json_ids(b, "isr", p->isrs, p->isr_cnt);
        json_w_arr_begin(b, "offline_replicas");
        for (int r = 0; r < p->replica_cnt; r++)
            if (!broker_live(md, p->replicas[r]))
                json_w_int(b, NULL, p->replicas[r]);
        json_w_arr_end(b);
        json_w_obj_end(b);
    }
    json_w_arr_end(b);
}

/* Returns 0, or -1 when out of memory (nothing printed then). */
static int print_json(const struct rd_kafka_metadata *md, const struct health *h,
                      const char *cluster_id, int32_t controller, const struct problems *pr)
{
    struct jbuf b;
    int rc = 0;

    jbuf_init(&b);
    json_w_obj_begin(&b, NULL);
    json_w_cstr(&b, "cluster_id", cluster_id && *cluster_id ? cluster_id : NULL);
    json_w_int(&b, "controller_id", controller);
    json_w_arr_begin(&b, "brokers");
    for (int k = 0; k < md->broker_cnt; k++) {
        json_w_obj_begin(&b, NULL);
        json_w_int(&b, "id", h->brokers[k]->id);
        json_w_cstr(&b, "host", h->brokers[k]->host);
        json_w_int(&b, "port", h->brokers[k]->port);
        json_w_bool(&b, "controller", h->brokers[k]->id == controller);
        json_w_obj_end(&b);
    }
    json_w_arr_end(&b);
    json_w_int(&b, "topics", h->ntopics);
    json_w_int(&b, "partitions", (int64_t)h->npartitions);
    json_part_refs(&b, md, "offline_partitions", h->offline, h->noffline);
    json_part_refs(&b, md, "under_replicated_partitions", h->under, h->nunder);
    json_w_arr_begin(&b, "problems");
    for (int k = 0; k < pr->n; k++)
        json_w_cstr(&b, NULL, pr->what[k]);
    json_w_arr_end(&b);
    json_w_cstr(&b, "status", pr->n ? "degraded" : "healthy");
    json_w_obj_end(&b);
    if (b.oom)
        rc = -1;
    else
        printf("%s\n", b.p);
    jbuf_free(&b);
    return rc;
}

static int cluster_status(struct status_args *a)
{
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    struct health h;
    char *cluster_id = NULL;
    struct problems pr;
    int32_t controller;
    rd_kafka_t *rk;
    int rc = STATUS_ERROR;

    if (!(rk = client_admin_new(&a->co, a->cmd)))
        return STATUS_ERROR;
    if (client_topic_metadata(rk, &a->co, a->cmd, NULL, &md, &mt) < 0)
        goto out;
    /* Both were filled in from the response just received: no wait. */
    cluster_id = rd_kafka_clusterid(rk, 0);
    controller = rd_kafka_controllerid(rk, 0);
    if (health_build(&h, md) < 0) {
        fprintf(stderr, "%s: out of memory.\n", a->cmd);
        goto out;
    }
    health_problems(&h, controller, &pr);
    if (a->json) {
        if (print_json(md, &h, cluster_id, controller, &pr) < 0) {
            fprintf(stderr, "%s: out of memory.\n", a->cmd);
            health_free(&h);
            goto out;
        }
    } else
        print_text(md, &h, cluster_id, controller, &pr);
    rc = pr.n ? STATUS_DEGRADED : STATUS_HEALTHY;
    health_free(&h);
out:
    if (cluster_id)
        rd_kafka_mem_free(rk, cluster_id);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

int cmd_cluster(int argc, char **argv)
{
    static const struct client_subcommand subs[] = {
        {"status", 0},
        {"reassign", 0},
        {"reassignments", 0},
        {"remove-broker", 0},
    };
    struct status_args a;
    size_t s;
    int rc, r;
    int picked = client_pick_subcommand("shopstream cluster", usage_text,
                                        "status, reassign, reassignments or remove-broker", subs,
                                        sizeof subs / sizeof subs[0], argc, argv, &s);

    if (picked >= 0)
        return picked;
    if (s > 0)
        return cluster_admin(argc - 1, argv + 1);
    memset(&a, 0, sizeof a);
    client_opts_init(&a.co);
    a.co.timeout_ms = CLUSTER_STATUS_TIMEOUT_MS;
    a.cmd = "shopstream cluster status";
    r = parse_args(&a, argc - 1, argv + 1);
    if (r != 0)
        rc = r > 0 ? 0 : STATUS_USAGE;
    else
        rc = cluster_status(&a);
    client_opts_free(&a.co);
    return rc;
}
