/* cluster_admin.c: `shopstream cluster reassign|reassignments|remove-broker`:
 * moving partition replicas between brokers and removing a broker, with
 * Kafka's AlterPartitionReassignments (45), ListPartitionReassignments (46)
 * and UnregisterBroker (64) sent to the active controller.  librdkafka has
 * no API for these, so they go over shopstream's own Kafka connection
 * (client/kconn.h); the controller is found with librdkafka's metadata.
 * They work against any KRaft cluster that serves these APIs. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client_opts.h"
#include "cli/commands.h"
#include "client/kconn.h"
#include "common/arena.h"
#include "protocol/kerr.h"
#include "protocol/kmsg.h"

static const char usage_text[] =
    "usage: shopstream cluster reassign TOPIC PARTITION BROKER[,BROKER...]|cancel [--wait]\n"
    "       shopstream cluster reassignments\n"
    "       shopstream cluster remove-broker BROKER\n"
    "\n"
    "  reassign        moves the replicas of one partition to the brokers listed (the\n"
    "                  first is the preferred leader): the new replicas copy the log,\n"
    "                  and once all of them are in sync the others are dropped;\n"
    "                  \"cancel\" returns to the replicas before the reassignment\n"
    "    --wait        waits until the reassignment is complete\n"
    "  reassignments   lists the reassignments under way\n"
    "  remove-broker   removes a broker that holds no replica from the cluster\n"
    "\n"
    "Common client options:\n"
    "  --bootstrap HOST:PORT[,HOST:PORT]  cluster to talk to (default " CLIENT_DEFAULT_BOOTSTRAP ")\n"
    "  -X key=value       librdkafka setting; repeatable\n"
    "  --timeout-ms T     time limit of each request (and of --wait, 10 x T)\n";

/* Opens a connection to the active controller. */
static int connect_controller(const struct client_opts *co, const char *cmd, struct kconn *c, char *err,
                              size_t errlen)
{
    rd_kafka_t *rk = client_admin_new(co, cmd);
    if (!rk)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    int rc = -1;
    if (client_topic_metadata(rk, co, cmd, NULL, &md, &mt) == 0) {
        int32_t ctl = rd_kafka_controllerid(rk, 0);
        for (int i = 0; i < md->broker_cnt; i++)
            if (md->brokers[i].id == ctl) {
                rc = kconn_open(c, md->brokers[i].host, md->brokers[i].port, co->timeout_ms, "shopstream-cli", 0,
                                err, errlen);
                if (rc < 0)
                    fprintf(stderr, "%s: %s.\n", cmd, err);
            }
        if (rc < 0 && ctl < 0)
            fprintf(stderr, "%s: the cluster has no active controller.\n", cmd);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* One request to the active controller and its answer. */
struct ctl_call {
    struct kconn c;
    char err[512];        /* the connection's error text */
    struct obuf w;        /* the request: encode it after ctl_call_begin */
    struct kconn_frame f;
    struct kread body;    /* the answer, after ctl_call_send */
    struct arena a;       /* for decoding the answer */
};

/* Connects to the controller and begins a request of API key `api`
 * (version 0).  Returns 0, or -1 after printing why (nothing to end). */
static int ctl_call_begin(struct ctl_call *cc, const struct client_opts *co, const char *cmd, int16_t api)
{
    memset(cc, 0, sizeof *cc);
    if (connect_controller(co, cmd, &cc->c, cc->err, sizeof cc->err) < 0)
        return -1;
    obuf_init(&cc->w);
    arena_init(&cc->a);
    kconn_begin(&cc->c, &cc->w, api, 0);
    return 0;
}

/* Sends the request and reads the answer into cc->body.  Returns 0, or -1
 * after printing why. */
static int ctl_call_send(struct ctl_call *cc, const char *cmd)
{
    if (kconn_roundtrip(&cc->c, &cc->w, &cc->f, &cc->body) == 0)
        return 0;
    fprintf(stderr, "%s: %s.\n", cmd, cc->err);
    return -1;
}

static void ctl_call_end(struct ctl_call *cc)
{
    arena_free(&cc->a);
    kconn_frame_free(&cc->f);
    obuf_free(&cc->w);
    kconn_close(&cc->c);
}

static void malformed(const char *cmd)
{
    fprintf(stderr, "%s: the controller sent a malformed answer.\n", cmd);
}

/* Asks the controller for the reassignments under way, of one partition
 * (topic non-NULL) or all.  Returns 0 with *resp decoded in cc->a (the
 * caller ends cc), or -1 after printing why (cc ended). */
static int list_reassignments(struct ctl_call *cc, const struct client_opts *co, const char *cmd,
                              const char *topic, int32_t partition,
                              struct ListPartitionReassignmentsResponse *resp)
{
    if (ctl_call_begin(cc, co, cmd, KAPI_LISTPARTITIONREASSIGNMENTS) < 0)
        return -1;
    struct ListPartitionReassignmentsRequest req;
    ListPartitionReassignmentsRequest_init(&req);
    struct ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics t;
    ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics_init(&t);
    req.TimeoutMs = co->timeout_ms;
    req.Topics.count = -1;
    if (topic) {
        t.Name = kstr_c(topic);
        t.PartitionIndexes.count = 1;
        t.PartitionIndexes.items = &partition;
        req.Topics.count = 1;
        req.Topics.items = &t;
    }
    ListPartitionReassignmentsRequest_encode(&cc->w, 0, &req);
    int rc = -1;
    if (ctl_call_send(cc, cmd) == 0) {
        if (ListPartitionReassignmentsResponse_decode(&cc->body, &cc->a, 0, resp) < 0)
            malformed(cmd);
        else if (resp->ErrorCode)
            fprintf(stderr, "%s: %s.\n", cmd, kerr_name(resp->ErrorCode));
        else
            rc = 0;
    }
    if (rc < 0)
        ctl_call_end(cc);
    return rc;
}

static int parse_common(struct client_opts *co, const char *cmd, int argc, char **argv, const char **pos, int npos,
                        int *wait)
{
    int have = 0;
    for (int i = 0; i < argc;) {
        int used = client_opts_take(co, cmd, argc, argv, &i);
        if (used < 0)
            return 2;
        if (used > 0)
            continue;
        if (wait && !strcmp(argv[i], "--wait")) {
            *wait = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "%s: unknown option '%s' (see --help).\n", cmd, argv[i]);
            return 2;
        } else if (have < npos) {
            pos[have++] = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help).\n", cmd, argv[i]);
            return 2;
        }
        i++;
    }
    if (have < npos) {
        fprintf(stderr, "%s: missing arguments (see --help).\n", cmd);
        return 2;
    }
    return -1;
}

/* Whether the reassignment of TOPIC/PARTITION to ids is complete: the
 * metadata shows exactly those replicas (in order), all in sync, and the
 * controller no longer lists it (it drops the entry one step after the
 * replicas change).  1, 0, or -1 when either cannot be read. */
static int settled(const struct client_opts *co, const char *cmd, const char *topic, int32_t partition,
                   const int32_t *ids, int n)
{
    rd_kafka_t *rk = client_admin_new(co, cmd);
    if (!rk)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    int rc = -1;
    if (client_topic_metadata(rk, co, cmd, topic, &md, &mt) == 0) {
        rc = 0;
        for (int i = 0; i < mt->partition_cnt; i++) {
            const rd_kafka_metadata_partition_t *p = &mt->partitions[i];
            if (p->id != partition || p->replica_cnt != n || p->isr_cnt != n)
                continue;
            rc = 1;
            for (int k = 0; k < n; k++)
                rc = rc && p->replicas[k] == ids[k];
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    if (rc != 1)
        return rc;
    struct ctl_call cc;
    struct ListPartitionReassignmentsResponse resp;
    if (list_reassignments(&cc, co, cmd, topic, partition, &resp) < 0)
        return -1;
    rc = resp.Topics.count == 0;
    ctl_call_end(&cc);
    return rc;
}

static int reassign(struct client_opts *co, int argc, char **argv)
{
    const char *cmd = "shopstream cluster reassign";
    const char *pos[3];
    int wait = 0;
    int r = parse_common(co, cmd, argc, argv, pos, 3, &wait);
    if (r >= 0)
        return r;
    char *end;
    long partition = strtol(pos[1], &end, 10);
    if (*end || partition < 0 || partition > INT32_MAX) {
        fprintf(stderr, "%s: PARTITION must be a partition number, not '%s'.\n", cmd, pos[1]);
        return 2;
    }
    int32_t ids[16];
    int n = 0;
    bool cancel = !strcmp(pos[2], "cancel");
    for (const char *p = pos[2]; !cancel && *p;) {
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id > INT32_MAX || n == 16 || (*end && *end != ',')) {
            fprintf(stderr, "%s: BROKERS must be broker ids like 1,2,3 (at most 16), not '%s'.\n", cmd, pos[2]);
            return 2;
        }
        ids[n++] = (int32_t)id;
        p = *end ? end + 1 : end;
    }
    struct ctl_call cc;
    if (ctl_call_begin(&cc, co, cmd, KAPI_ALTERPARTITIONREASSIGNMENTS) < 0)
        return 1;
    struct AlterPartitionReassignmentsRequest req;
    AlterPartitionReassignmentsRequest_init(&req);
    struct AlterPartitionReassignmentsRequest_ReassignableTopic t;
    AlterPartitionReassignmentsRequest_ReassignableTopic_init(&t);
    struct AlterPartitionReassignmentsRequest_ReassignablePartition p;
    AlterPartitionReassignmentsRequest_ReassignablePartition_init(&p);
    p.PartitionIndex = (int32_t)partition;
    p.Replicas.count = cancel ? -1 : n;
    p.Replicas.items = ids;
    t.Name = kstr_c(pos[0]);
    t.Partitions.count = 1;
    t.Partitions.items = &p;
    req.TimeoutMs = co->timeout_ms;
    req.Topics.count = 1;
    req.Topics.items = &t;
    AlterPartitionReassignmentsRequest_encode(&cc.w, 0, &req);
    int rc = 1;
    if (ctl_call_send(&cc, cmd) == 0) {
        struct AlterPartitionReassignmentsResponse resp;
        if (AlterPartitionReassignmentsResponse_decode(&cc.body, &cc.a, 0, &resp) < 0) {
            malformed(cmd);
        } else {
            int code = resp.ErrorCode;
            kstr msg = resp.ErrorMessage;
            if (!code && resp.Responses.count == 1 && resp.Responses.items[0].Partitions.count == 1) {
                code = resp.Responses.items[0].Partitions.items[0].ErrorCode;
                msg = resp.Responses.items[0].Partitions.items[0].ErrorMessage;
            }
            if (code)
                fprintf(stderr, "%s: %s-%ld: %s%s%.*s.\n", cmd, pos[0], partition, kerr_name(code),
                        msg.len > 0 ? ": " : "", msg.len > 0 ? msg.len : 0, msg.ptr ? msg.ptr : "");
            else
                rc = 0;
        }
    }
    if (rc == 0) {
        printf("%s %s-%ld%s%s\n", cancel ? "cancelled the reassignment of" : "reassigning", pos[0], partition,
               cancel ? "" : " to ", cancel ? "" : pos[2]);
        if (wait && !cancel) {
            struct timespec ts = {0, 200 * 1000000L};
            long long waited = 0, limit = 10LL * co->timeout_ms;
            int done;
            while ((done = settled(co, cmd, pos[0], (int32_t)partition, ids, n)) != 1 && waited < limit) {
                nanosleep(&ts, NULL);
                waited += 200;
            }
            if (done == 1) {
                printf("done\n");
            } else {
                fprintf(stderr, "%s: still under way after %lld ms.\n", cmd, waited);
                rc = 1;
            }
        }
    }
    ctl_call_end(&cc);
    return rc;
}

static void print_ids(const char *label, const int32_t *ids, int32_t n)
{
    printf(" %s ", label);
    for (int32_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
    if (n <= 0)
        printf("-");
}

static int list(struct client_opts *co, int argc, char **argv)
{
    const char *cmd = "shopstream cluster reassignments";
    int r = parse_common(co, cmd, argc, argv, NULL, 0, NULL);
    if (r >= 0)
        return r;
    struct ctl_call cc;
    struct ListPartitionReassignmentsResponse resp;
    if (list_reassignments(&cc, co, cmd, NULL, 0, &resp) < 0)
        return 1;
    for (int32_t t = 0; t < resp.Topics.count; t++)
        for (int32_t p = 0; p < resp.Topics.items[t].Partitions.count; p++) {
            const struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment *op =
                &resp.Topics.items[t].Partitions.items[p];
            printf("%.*s-%d", resp.Topics.items[t].Name.len, resp.Topics.items[t].Name.ptr, op->PartitionIndex);
            print_ids("replicas", op->Replicas.items, op->Replicas.count);
            print_ids("adding", op->AddingReplicas.items, op->AddingReplicas.count);
            print_ids("removing", op->RemovingReplicas.items, op->RemovingReplicas.count);
            printf("\n");
        }
    if (resp.Topics.count == 0)
        printf("no reassignment under way\n");
    ctl_call_end(&cc);
    return 0;
}

static int remove_broker(struct client_opts *co, int argc, char **argv)
{
    const char *cmd = "shopstream cluster remove-broker";
    const char *pos[1];
    int r = parse_common(co, cmd, argc, argv, pos, 1, NULL);
    if (r >= 0)
        return r;
    char *end;
    long id = strtol(pos[0], &end, 10);
    if (*end || end == pos[0] || id < 0 || id > INT32_MAX) {
        fprintf(stderr, "%s: BROKER must be a broker id, not '%s'.\n", cmd, pos[0]);
        return 2;
    }
    struct ctl_call cc;
    if (ctl_call_begin(&cc, co, cmd, KAPI_UNREGISTERBROKER) < 0)
        return 1;
    struct UnregisterBrokerRequest req;
    UnregisterBrokerRequest_init(&req);
    req.BrokerId = (int32_t)id;
    UnregisterBrokerRequest_encode(&cc.w, 0, &req);
    int rc = 1;
    struct UnregisterBrokerResponse resp;
    if (ctl_call_send(&cc, cmd) < 0) {
        /* said */
    } else if (UnregisterBrokerResponse_decode(&cc.body, &cc.a, 0, &resp) < 0) {
        malformed(cmd);
    } else if (resp.ErrorCode) {
        fprintf(stderr, "%s: %s%s%.*s.\n", cmd, kerr_name(resp.ErrorCode), resp.ErrorMessage.len > 0 ? ": " : "",
                resp.ErrorMessage.len > 0 ? resp.ErrorMessage.len : 0,
                resp.ErrorMessage.ptr ? resp.ErrorMessage.ptr : "");
    } else {
        printf("removed broker %ld\n", id);
        rc = 0;
    }
    ctl_call_end(&cc);
    return rc;
}

int cluster_admin(int argc, char **argv)
{
    struct client_opts co;
    client_opts_init(&co);
    int rc;
    if (!strcmp(argv[0], "reassign"))
        rc = reassign(&co, argc - 1, argv + 1);
    else if (!strcmp(argv[0], "reassignments"))
        rc = list(&co, argc - 1, argv + 1);
    else
        rc = remove_broker(&co, argc - 1, argv + 1);
    client_opts_free(&co);
    return rc;
}

const char *cluster_admin_usage(void)
{
    return usage_text;
}
