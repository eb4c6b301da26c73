/* test_meta_image.c: the cluster metadata image (cluster/meta_image.c):
 * every command applied and rejected, broker and partition epochs, snapshot
 * round trips, hostile command and snapshot bytes (every truncation, random
 * flips, huge counts), injected allocation failures, replica placement and
 * leader election. */
#include <stdint.h>
#include <string.h>

#include "cluster/meta_image.h"
#include "common/alloc.h"
#include "common/crc32c.h"
#include "protocol/kerr.h"
#include "test.h"

static char err[256];

static kuuid uid(uint8_t x)
{
    kuuid u = {{0}};
    u.b[0] = x;
    u.b[15] = 0xa5;
    return u;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Applies the command in w at the next offset and empties w. */
static int run(struct meta_image *m, struct obuf *w, int64_t *result)
{
    CHECK(!w->oom);
    int rc = meta_image_apply(m, w->data, w->len, m->offset + 1, result, err, sizeof err);
    obuf_reset(w);
    return rc;
}

/* The image's snapshot with its offset replaced, so that images that differ
 * only in offset encode equal. */
static void snap_at(const struct meta_image *m, int64_t offset, struct obuf *out)
{
    struct meta_image c = *m;
    c.offset = offset;
    obuf_reset(out);
    CHECK_EQ(meta_image_encode(&c, out), 0);
}

/* m is the image that `before` was taken of, apart from its offset. */
static void check_same(const struct meta_image *m, const struct obuf *before, int64_t offset)
{
    struct obuf now;
    obuf_init(&now);
    snap_at(m, offset, &now);
    CHECK_EQ(now.len, before->len);
    CHECK(memcmp(now.data, before->data, now.len) == 0);
    obuf_free(&now);
}

/* Registers brokers 1..n on localhost:9091.. and unfences them. */
static void add_brokers(struct meta_image *m, struct obuf *w, int n)
{
    for (int i = 1; i <= n; i++) {
        char host[32];
        snprintf(host, sizeof host, "broker%d.local", i);
        int64_t epoch;
        mi_enc_register_broker(w, i, host, 9090 + i, uid((uint8_t)(100 + i)));
        CHECK_EQ(run(m, w, &epoch), 0);
        mi_enc_unfence_broker(w, i, epoch);
        CHECK_EQ(run(m, w, NULL), 0);
    }
}

/* Creates a topic whose partitions all have the replicas in reps (rf each). */
static int create(struct meta_image *m, struct obuf *w, const char *name, kuuid id, int32_t np, int32_t rf,
                  const int32_t *reps)
{
    int32_t counts[64];
    for (int i = 0; i < np; i++)
        counts[i] = rf;
    mi_enc_create_topic(w, name, id, np, counts, reps, 0, NULL, NULL);
    return run(m, w, NULL);
}

static const struct mi_partition *part(const struct meta_image *m, const char *topic, int32_t i)
{
    const struct mi_topic *t = meta_image_topic(m, topic, strlen(topic));
    CHECK(t != NULL);
    CHECK(i < t->npartitions);
    return &t->parts[i];
}

TEST(meta_image_register_and_fence)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    int64_t res;
    mi_enc_register_broker(&w, 2, "b2.local", 9092, uid(1));
    CHECK_EQ(run(&m, &w, &res), 0);
    CHECK_EQ(res, 1);
    const struct mi_broker *b = meta_image_broker(&m, 2);
    CHECK(b && b->fenced && b->epoch == 1 && b->port == 9092 && strcmp(b->host, "b2.local") == 0);
    kuuid u1 = uid(1);
    CHECK(memcmp(&b->incarnation, &u1, sizeof u1) == 0);
    mi_enc_register_broker(&w, 1, "b1.local", 9091, uid(2));
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(m.nbrokers, 2);
    CHECK_EQ(m.brokers[0].id, 1);
    CHECK_EQ(m.brokers[1].id, 2);

    /* A wrong epoch is rejected, yet the entry is consumed. */
    mi_enc_unfence_broker(&w, 2, 99);
    CHECK_EQ(run(&m, &w, &res), KERR_STALE_BROKER_EPOCH);
    CHECK_EQ(res, -1);
    CHECK_EQ(m.offset, 3);
    CHECK(meta_image_broker(&m, 2)->fenced);
    mi_enc_unfence_broker(&w, 2, 1);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK(!meta_image_broker(&m, 2)->fenced);
    mi_enc_unfence_broker(&w, 7, 1);
    CHECK_EQ(run(&m, &w, NULL), KERR_BROKER_ID_NOT_REGISTERED);
    mi_enc_fence_broker(&w, 2, 1);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK(meta_image_broker(&m, 2)->fenced);
    mi_enc_unfence_broker(&w, 2, 1);
    CHECK_EQ(run(&m, &w, NULL), 0);

    /* Re-registration: a new epoch, fenced again; the old epoch is stale. */
    mi_enc_register_broker(&w, 2, "b2.new", 9192, uid(3));
    CHECK_EQ(run(&m, &w, &res), 0);
    CHECK_EQ(res, m.offset);
    b = meta_image_broker(&m, 2);
    CHECK(b->fenced && b->epoch == m.offset && strcmp(b->host, "b2.new") == 0 && b->port == 9192);
    CHECK_EQ(m.nbrokers, 2);
    mi_enc_fence_broker(&w, 2, 1);
    CHECK_EQ(run(&m, &w, NULL), KERR_STALE_BROKER_EPOCH);
    mi_enc_unfence_broker(&w, 2, b->epoch);
    CHECK_EQ(run(&m, &w, NULL), 0);

    /* Bad registrations change nothing but the offset. */
    struct obuf before;
    obuf_init(&before);
    snap_at(&m, 0, &before);
    char longhost[300];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[256] = 0;
    mi_enc_register_broker(&w, -1, "x", 1, uid(4));
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REGISTRATION);
    mi_enc_register_broker(&w, 3, "", 1, uid(4));
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REGISTRATION);
    mi_enc_register_broker(&w, 3, longhost, 1, uid(4));
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REGISTRATION);
    mi_enc_register_broker(&w, 3, "x", 0, uid(4));
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REGISTRATION);
    mi_enc_register_broker(&w, 3, "x", 65536, uid(4));
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REGISTRATION);
    check_same(&m, &before, 0);
    longhost[255] = 0;
    mi_enc_register_broker(&w, 3, longhost, 65535, uid(4));
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(strlen(meta_image_broker(&m, 3)->host), 255);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_unregister_broker)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    static const int32_t ids[] = {5, 3, 9, 1, 7};
    for (int i = 0; i < 5; i++) {
        mi_enc_register_broker(&w, ids[i], "h", 1, uid(0));
        CHECK_EQ(run(&m, &w, NULL), 0);
    }
    for (int i = 0; i < 5; i++)
        CHECK_EQ(m.brokers[i].id, 2 * i + 1);
    static const int32_t reps[] = {5, 3};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 2, reps), 0);
    mi_enc_unregister_broker(&w, 5);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(m.nbrokers, 4);
    CHECK(meta_image_broker(&m, 5) == NULL);
    CHECK(meta_image_broker(&m, 3) && meta_image_broker(&m, 7) && meta_image_broker(&m, 9));
    CHECK_EQ(m.brokers[2].id, 7);
    /* Partitions keep naming it; the controller moves leadership away. */
    CHECK_EQ(part(&m, "t", 0)->leader, 5);
    mi_enc_unregister_broker(&w, 5);
    CHECK_EQ(run(&m, &w, NULL), KERR_BROKER_ID_NOT_REGISTERED);
    for (int i = 0; i < 5; i++) {
        mi_enc_unregister_broker(&w, ids[i]);
        CHECK_EQ(run(&m, &w, NULL), ids[i] == 5 ? KERR_BROKER_ID_NOT_REGISTERED : 0);
    }
    CHECK_EQ(m.nbrokers, 0);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_create_topic)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    add_brokers(&m, &w, 3);
    static const int32_t counts[] = {3, 3, 2};
    static const int32_t reps[] = {1, 2, 3, 2, 3, 1, 3, 1};
    static const char *keys[] = {"cleanup.policy", "retention.ms"}, *vals[] = {"compact", "1000"};
    mi_enc_create_topic(&w, "orders", uid(7), 3, counts, reps, 2, keys, vals);
    CHECK_EQ(run(&m, &w, NULL), 0);
    const struct mi_topic *t = meta_image_topic(&m, "orders-x", 6);
    CHECK(t != NULL);
    CHECK(meta_image_topic_by_id(&m, uid(7)) == t);
    CHECK(meta_image_topic(&m, "order", 5) == NULL);
    CHECK(meta_image_topic_by_id(&m, uid(8)) == NULL);
    CHECK(strcmp(t->name, "orders") == 0);
    CHECK_EQ(t->npartitions, 3);
    const struct mi_partition *p = &t->parts[2];
    CHECK_EQ(p->leader, 3);
    CHECK_EQ(p->leader_epoch, 0);
    CHECK_EQ(p->partition_epoch, 0);
    CHECK_EQ(p->nreplicas, 2);
    CHECK_EQ(p->nisr, 2);
    CHECK(p->replicas[0] == 3 && p->replicas[1] == 1 && p->isr[0] == 3 && p->isr[1] == 1);
    CHECK_EQ(t->parts[1].leader, 2);
    CHECK(mi_in_isr(&t->parts[0], 3) && mi_is_replica(&t->parts[0], 3) && !mi_in_isr(&t->parts[2], 2));
    CHECK(strcmp(config_get(&t->configs, "cleanup.policy"), "compact") == 0);
    CHECK(strcmp(config_get(&t->configs, "retention.ms"), "1000") == 0);

    /* Topics stay sorted by name and by id. */
    static const int32_t one[] = {1};
    CHECK_EQ(create(&m, &w, "a", uid(9), 1, 1, one), 0);
    CHECK_EQ(create(&m, &w, "zz", uid(1), 1, 1, one), 0);
    CHECK_EQ(m.ntopics, 3);
    CHECK(strcmp(m.topics[0]->name, "a") == 0 && strcmp(m.topics[2]->name, "zz") == 0);
    CHECK(strcmp(m.topics_by_id[0]->name, "zz") == 0 && strcmp(m.topics_by_id[2]->name, "a") == 0);
    char n249[250];
    memset(n249, 'x', 249);
    n249[249] = 0;
    CHECK_EQ(create(&m, &w, n249, uid(10), 1, 1, one), 0);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_create_topic_rejects)
{
    struct meta_image m;
    struct obuf w, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&before);
    add_brokers(&m, &w, 3);
    static const int32_t r3[] = {1, 2, 3};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 3, r3), 0);
    snap_at(&m, 0, &before);

    CHECK_EQ(create(&m, &w, "t", uid(2), 1, 3, r3), KERR_TOPIC_ALREADY_EXISTS);
    CHECK_EQ(create(&m, &w, "u", uid(1), 1, 3, r3), KERR_TOPIC_ALREADY_EXISTS);
    char n250[251];
    memset(n250, 'x', 250);
    n250[250] = 0;
    const char *bad[] = {"", ".", "..", "a b", "tópico", "a/b", n250};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ(create(&m, &w, bad[i], uid(3), 1, 3, r3), KERR_INVALID_TOPIC_EXCEPTION);
    kuuid zero = {{0}};
    CHECK_EQ(create(&m, &w, "u", zero, 1, 3, r3), KERR_INVALID_REQUEST);
    CHECK_EQ(create(&m, &w, "u", uid(3), 0, 3, r3), KERR_INVALID_PARTITIONS);

    static const int32_t counts[] = {3, 0};
    mi_enc_create_topic(&w, "u", uid(3), 2, counts, r3, 0, NULL, NULL);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REPLICA_ASSIGNMENT);
    static const int32_t dup[] = {1, 2, 1};
    CHECK_EQ(create(&m, &w, "u", uid(3), 1, 3, dup), KERR_INVALID_REPLICA_ASSIGNMENT);
    static const int32_t unknown[] = {1, 7};
    CHECK_EQ(create(&m, &w, "u", uid(3), 1, 2, unknown), KERR_INVALID_REPLICA_ASSIGNMENT);
    int32_t many[MI_MAX_REPLICAS + 1];
    for (int i = 0; i <= MI_MAX_REPLICAS; i++)
        many[i] = i + 1;
    CHECK_EQ(create(&m, &w, "u", uid(3), 1, MI_MAX_REPLICAS + 1, many), KERR_INVALID_REPLICA_ASSIGNMENT);

    static const int32_t c1[] = {3};
    static const char *k2[] = {"a", "a"}, *v2[] = {"1", "2"}, *k1[] = {""}, *v1[] = {"x"};
    mi_enc_create_topic(&w, "u", uid(3), 1, c1, r3, 2, k2, v2);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_CONFIG);
    mi_enc_create_topic(&w, "u", uid(3), 1, c1, r3, 1, k1, v1);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_CONFIG);

    check_same(&m, &before, 0);
    CHECK(m.offset > 10);
    CHECK_EQ(create(&m, &w, "u", uid(3), 1, 3, r3), 0);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_delete_topic)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    add_brokers(&m, &w, 1);
    static const int32_t r[] = {1, 1, 1, 1};
    CHECK_EQ(create(&m, &w, "a", uid(1), 4, 1, r), 0);
    CHECK_EQ(create(&m, &w, "b", uid(2), 2, 1, r), 0);
    CHECK_EQ(create(&m, &w, "c", uid(3), 1, 1, r), 0);
    mi_enc_delete_topic(&w, uid(2));
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(m.ntopics, 2);
    CHECK(meta_image_topic(&m, "b", 1) == NULL && meta_image_topic_by_id(&m, uid(2)) == NULL);
    CHECK(meta_image_topic(&m, "a", 1) == meta_image_topic_by_id(&m, uid(1)));
    CHECK(meta_image_topic(&m, "c", 1) == meta_image_topic_by_id(&m, uid(3)));
    mi_enc_delete_topic(&w, uid(2));
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_ID);
    /* The name is free again, under a new id. */
    CHECK_EQ(create(&m, &w, "b", uid(4), 1, 1, r), 0);
    CHECK(meta_image_topic_by_id(&m, uid(4)) == meta_image_topic(&m, "b", 1));
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_create_partitions)
{
    struct meta_image m;
    struct obuf w, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&before);
    add_brokers(&m, &w, 3);
    static const int32_t r[] = {1, 2, 2, 3};
    CHECK_EQ(create(&m, &w, "t", uid(1), 2, 2, r), 0);
    struct mi_partition_change pc = {uid(1), 0, 0, MI_NO_CHANGE, 1, (const int32_t[]){1}, -1, NULL};
    mi_enc_partition_change(&w, &pc);
    CHECK_EQ(run(&m, &w, NULL), 0);

    static const int32_t counts[] = {3, 1};
    static const int32_t nr[] = {3, 1, 2, 2};
    mi_enc_create_partitions(&w, uid(1), 4, 2, counts, nr);
    CHECK_EQ(run(&m, &w, NULL), 0);
    const struct mi_topic *t = meta_image_topic_by_id(&m, uid(1));
    CHECK_EQ(t->npartitions, 4);
    CHECK(t->parts[0].partition_epoch == 1 && t->parts[0].nisr == 1); /* kept */
    CHECK(t->parts[2].leader == 3 && t->parts[2].nreplicas == 3 && t->parts[2].nisr == 3);
    CHECK(t->parts[3].leader == 2 && t->parts[3].nreplicas == 1 && t->parts[3].isr[0] == 2);

    snap_at(&m, 0, &before);
    mi_enc_create_partitions(&w, uid(1), 4, 0, NULL, NULL);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_PARTITIONS);
    mi_enc_create_partitions(&w, uid(1), 3, 0, NULL, NULL);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_PARTITIONS);
    mi_enc_create_partitions(&w, uid(1), 6, 1, counts + 1, nr);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REPLICA_ASSIGNMENT);
    mi_enc_create_partitions(&w, uid(9), 5, 1, counts + 1, nr);
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_ID);
    static const int32_t bad[] = {4};
    mi_enc_create_partitions(&w, uid(1), 5, 1, counts + 1, bad);
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_REPLICA_ASSIGNMENT);
    check_same(&m, &before, 0);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

/* A PARTITION_CHANGE of partition 0 of topic uid(1). */
static int change(struct meta_image *m, struct obuf *w, int32_t expected, int32_t leader, int32_t nisr,
                  const int32_t *isr, int32_t nrep, const int32_t *rep)
{
    struct mi_partition_change pc = {uid(1), 0, expected, leader, nisr, isr, nrep, rep};
    mi_enc_partition_change(w, &pc);
    return run(m, w, NULL);
}

TEST(meta_image_partition_change_epochs)
{
    struct meta_image m;
    struct obuf w, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&before);
    add_brokers(&m, &w, 4);
    static const int32_t r[] = {1, 2, 3};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 3, r), 0);
    const struct mi_partition *p = part(&m, "t", 0);

    /* An ISR shrink: partition epoch only. */
    CHECK_EQ(change(&m, &w, 0, MI_NO_CHANGE, 2, (const int32_t[]){1, 2}, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->partition_epoch == 1 && p->leader_epoch == 0 && p->leader == 1 && p->nisr == 2);
    /* A stale expected epoch is rejected; -1 accepts any. */
    snap_at(&m, 0, &before);
    CHECK_EQ(change(&m, &w, 0, 2, -1, NULL, -1, NULL), KERR_INVALID_UPDATE_VERSION);
    check_same(&m, &before, 0);
    CHECK_EQ(change(&m, &w, -1, 2, -1, NULL, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->partition_epoch == 2 && p->leader_epoch == 1 && p->leader == 2);
    /* Re-electing the same leader still bumps the leader epoch. */
    CHECK_EQ(change(&m, &w, 2, 2, -1, NULL, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->partition_epoch == 3 && p->leader_epoch == 2 && p->leader == 2);
    /* No leader and an empty ISR, then back. */
    CHECK_EQ(change(&m, &w, 3, -1, 0, NULL, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->leader == -1 && p->nisr == 0 && p->isr == NULL && p->leader_epoch == 3);
    CHECK_EQ(mi_elect_leader(&m, p, -1), -1);
    CHECK_EQ(change(&m, &w, 4, 1, 1, (const int32_t[]){1}, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->leader == 1 && p->leader_epoch == 4 && p->partition_epoch == 5);
    /* A change with no fields is still a change. */
    CHECK_EQ(change(&m, &w, 5, MI_NO_CHANGE, -1, NULL, -1, NULL), 0);
    p = part(&m, "t", 0);
    CHECK(p->partition_epoch == 6 && p->leader_epoch == 4);
    /* Reassignment keeping the leader and its ISR. */
    CHECK_EQ(change(&m, &w, 6, MI_NO_CHANGE, 2, (const int32_t[]){1, 4}, 3, (const int32_t[]){4, 1, 3}), 0);
    p = part(&m, "t", 0);
    CHECK(p->nreplicas == 3 && p->replicas[0] == 4 && p->replicas[2] == 3 && p->leader == 1 && p->nisr == 2);
    CHECK(p->partition_epoch == 7 && p->leader_epoch == 4);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_partition_change_rejects)
{
    struct meta_image m;
    struct obuf w, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&before);
    add_brokers(&m, &w, 4);
    static const int32_t r[] = {1, 2, 3};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 3, r), 0);
    snap_at(&m, 0, &before);
    const int A = KERR_INVALID_REPLICA_ASSIGNMENT;
    CHECK_EQ(change(&m, &w, -1, 4, -1, NULL, -1, NULL), A);                       /* not a replica */
    CHECK_EQ(change(&m, &w, -1, 9, -1, NULL, -1, NULL), A);                       /* not registered */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, 2, (const int32_t[]){1, 4}, -1, NULL), A); /* ISR ⊄ replicas */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, 0, NULL, -1, NULL), A);             /* empty ISR, leader kept */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, 2, (const int32_t[]){2, 3}, -1, NULL), A); /* leader not in ISR */
    CHECK_EQ(change(&m, &w, -1, 2, 1, (const int32_t[]){3}, -1, NULL), A);        /* new leader not in ISR */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, 2, (const int32_t[]){1, 1}, -1, NULL), A); /* duplicate */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, -1, NULL, 2, (const int32_t[]){2, 3}), A); /* drops leader */
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, -1, NULL, 0, NULL), A);
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, -1, NULL, 4, (const int32_t[]){1, 2, 3, 8}), A);
    CHECK_EQ(change(&m, &w, -1, MI_NO_CHANGE, -1, NULL, 4, (const int32_t[]){1, 2, 3, 2}), A);
    CHECK_EQ(change(&m, &w, -1, -3, -1, NULL, -1, NULL), KERR_INVALID_REQUEST);
    struct mi_partition_change pc = {uid(2), 0, -1, 1, -1, NULL, -1, NULL};
    mi_enc_partition_change(&w, &pc);
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_ID);
    pc.topic_id = uid(1);
    pc.partition = 1;
    mi_enc_partition_change(&w, &pc);
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_OR_PARTITION);
    pc.partition = -1;
    mi_enc_partition_change(&w, &pc);
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_OR_PARTITION);
    check_same(&m, &before, 0);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_set_config)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    add_brokers(&m, &w, 1);
    static const int32_t r[] = {1};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 1, r), 0);
    mi_enc_set_config(&w, "", "min.insync.replicas", "2");
    CHECK_EQ(run(&m, &w, NULL), 0);
    mi_enc_set_config(&w, "", "min.insync.replicas", "3");
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(m.cluster_configs.n, 1);
    CHECK(strcmp(config_get(&m.cluster_configs, "min.insync.replicas"), "3") == 0);
    mi_enc_set_config(&w, "t", "retention.ms", "");
    CHECK_EQ(run(&m, &w, NULL), 0);
    const struct mi_topic *t = meta_image_topic(&m, "t", 1);
    CHECK(strcmp(config_get(&t->configs, "retention.ms"), "") == 0);
    mi_enc_set_config(&w, "t", "retention.ms", NULL);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK(!config_has(&t->configs, "retention.ms"));
    mi_enc_set_config(&w, "t", "retention.ms", NULL);
    CHECK_EQ(run(&m, &w, NULL), 0);
    mi_enc_set_config(&w, "", "min.insync.replicas", NULL);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(m.cluster_configs.n, 0);

    mi_enc_set_config(&w, "nope", "a", "b");
    CHECK_EQ(run(&m, &w, NULL), KERR_UNKNOWN_TOPIC_OR_PARTITION);
    mi_enc_set_config(&w, "t", "", "b");
    CHECK_EQ(run(&m, &w, NULL), KERR_INVALID_CONFIG);
    /* A NUL byte cannot be kept in a C string. */
    static const uint8_t nul[] = {MI_SET_CONFIG, 0, 0, 0, 0, 1, 't', 0, 0, 0, 1, 'k', 0, 0, 0, 2, 'a', 0};
    CHECK_EQ(meta_image_apply(&m, nul, sizeof nul, m.offset + 1, NULL, err, sizeof err), KERR_INVALID_CONFIG);
    CHECK_EQ(t->configs.n, 0);
    for (int i = 0; i <= MI_MAX_CONFIGS; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        mi_enc_set_config(&w, "t", k, "v");
        CHECK_EQ(run(&m, &w, NULL), i < MI_MAX_CONFIGS ? 0 : KERR_INVALID_CONFIG);
    }
    mi_enc_set_config(&w, "t", "k0", "changed"); /* replacing is fine at the cap */
    CHECK_EQ(run(&m, &w, NULL), 0);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_alloc_producer_ids)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    int64_t start;
    mi_enc_alloc_producer_ids(&w, 1000);
    CHECK_EQ(run(&m, &w, &start), 0);
    CHECK_EQ(start, 0);
    mi_enc_alloc_producer_ids(&w, 1000);
    CHECK_EQ(run(&m, &w, &start), 0);
    CHECK_EQ(start, 1000);
    CHECK_EQ(m.next_producer_id, 2000);
    mi_enc_alloc_producer_ids(&w, 0);
    CHECK_EQ(run(&m, &w, &start), KERR_INVALID_REQUEST);
    CHECK_EQ(start, -1);
    mi_enc_alloc_producer_ids(&w, -5);
    CHECK_EQ(run(&m, &w, &start), KERR_INVALID_REQUEST);
    CHECK_EQ(m.next_producer_id, 2000);
    m.next_producer_id = INT64_MAX - 10;
    mi_enc_alloc_producer_ids(&w, 11);
    CHECK_EQ(run(&m, &w, &start), KERR_INVALID_REQUEST);
    mi_enc_alloc_producer_ids(&w, 10);
    CHECK_EQ(run(&m, &w, &start), 0);
    CHECK_EQ(start, INT64_MAX - 10);
    CHECK_EQ(m.next_producer_id, INT64_MAX);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_apply_offsets_and_bad_bytes)
{
    struct meta_image m;
    struct obuf w, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&before);
    mi_enc_register_broker(&w, 1, "h", 1, uid(1));
    CHECK_EQ(meta_image_apply(&m, w.data, w.len, 5, NULL, err, sizeof err), 0);
    CHECK_EQ(m.offset, 5);
    CHECK_EQ(meta_image_broker(&m, 1)->epoch, 5);
    snap_at(&m, 5, &before);
    /* Old or repeated entries change nothing at all. */
    CHECK_EQ(meta_image_apply(&m, w.data, w.len, 5, NULL, err, sizeof err), KERR_INVALID_REQUEST);
    CHECK_EQ(meta_image_apply(&m, w.data, w.len, 3, NULL, err, sizeof err), KERR_INVALID_REQUEST);
    CHECK_EQ(m.offset, 5);
    check_same(&m, &before, 5);
    obuf_reset(&w);

    /* Undecodable entries are consumed: the offset moves on. */
    CHECK_EQ(meta_image_apply(&m, "", 0, 7, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(m.offset, 7);
    static const uint8_t unknown[] = {99, 0};
    CHECK_EQ(meta_image_apply(&m, unknown, 2, 8, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
    CHECK(strstr(err, "unknown command type") != NULL);
    static const uint8_t newer[] = {MI_UNREGISTER_BROKER, 1, 0, 0, 0, 1};
    CHECK_EQ(meta_image_apply(&m, newer, sizeof newer, 9, NULL, err, sizeof err), KERR_UNSUPPORTED_VERSION);
    static const uint8_t trailing[] = {MI_UNREGISTER_BROKER, 0, 0, 0, 0, 1, 0};
    CHECK_EQ(meta_image_apply(&m, trailing, sizeof trailing, 10, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
    /* A list count of -2 (only -1, absent, is allowed). */
    obuf_put_u8(&w, MI_PARTITION_CHANGE);
    obuf_put_u8(&w, 0);
    kw_uuid(&w, uid(1));
    kw_int32(&w, 0);
    kw_int32(&w, -1);
    kw_int32(&w, -1);
    kw_int32(&w, -2);
    kw_int32(&w, -1);
    CHECK_EQ(meta_image_apply(&m, w.data, w.len, 11, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
    obuf_reset(&w);
    CHECK_EQ(m.offset, 11);
    check_same(&m, &before, 5);
    CHECK_EQ(meta_image_apply(&m, NULL, 0, 12, NULL, NULL, 0), KERR_CORRUPT_MESSAGE);
    obuf_free(&before);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_cmd_decode_fields)
{
    struct obuf w;
    struct arena a;
    struct mi_cmd c;
    obuf_init(&w);
    arena_init(&a);
    static const int32_t counts[] = {2, 1}, reps[] = {4, 5, 6};
    static const char *keys[] = {"k"}, *vals[] = {"v"};
    mi_enc_create_topic(&w, "t", uid(1), 2, counts, reps, 1, keys, vals);
    CHECK_EQ(mi_cmd_decode(&c, w.data, w.len, &a, err, sizeof err), 0);
    CHECK_EQ(c.type, MI_CREATE_TOPIC);
    CHECK(kstr_eq(c.create_topic.name, "t") && c.create_topic.npartitions == 2);
    CHECK(c.create_topic.nreplicas[0] == 2 && c.create_topic.nreplicas[1] == 1 && c.create_topic.replicas[2] == 6);
    CHECK(c.create_topic.nconfigs == 1 && kstr_eq(c.create_topic.keys[0], "k"));
    CHECK(kstr_eq(c.create_topic.values[0], "v"));
    obuf_reset(&w);
    struct mi_partition_change pc = {uid(3), 7, 12, MI_NO_CHANGE, -1, NULL, 2, (const int32_t[]){9, 8}};
    mi_enc_partition_change(&w, &pc);
    CHECK_EQ(mi_cmd_decode(&c, w.data, w.len, &a, err, sizeof err), 0);
    CHECK_EQ(c.type, MI_PARTITION_CHANGE);
    CHECK(c.partition_change.partition == 7 && c.partition_change.expected_partition_epoch == 12);
    CHECK(c.partition_change.leader == MI_NO_CHANGE && c.partition_change.nisr == -1);
    CHECK(c.partition_change.nreplicas == 2 && c.partition_change.replicas[0] == 9);
    obuf_reset(&w);
    mi_enc_set_config(&w, "", "k", NULL);
    CHECK_EQ(mi_cmd_decode(&c, w.data, w.len, &a, err, sizeof err), 0);
    CHECK(c.set_config.topic.len == 0 && c.set_config.value.len == -1);
    CHECK(strcmp(mi_cmd_name(c.type), "SET_CONFIG") == 0 && strcmp(mi_cmd_name(0), "UNKNOWN") == 0);
    arena_free(&a);
    obuf_free(&w);
}

/* An image with something of everything. */
static void build_rich(struct meta_image *m, struct obuf *w)
{
    add_brokers(m, w, 5);
    mi_enc_fence_broker(w, 3, meta_image_broker(m, 3)->epoch);
    CHECK_EQ(run(m, w, NULL), 0);
    mi_enc_register_broker(w, 42, "late.local", 7000, uid(42));
    CHECK_EQ(run(m, w, NULL), 0);
    int32_t reps[12 * 3];
    CHECK_EQ(mi_assign_replicas(m, 12, 3, 0, 1, reps), 0);
    static const char *keys[] = {"cleanup.policy", "segment.bytes"}, *vals[] = {"compact", "1048576"};
    int32_t counts[12] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    mi_enc_create_topic(w, "orders", uid(1), 12, counts, reps, 2, keys, vals);
    CHECK_EQ(run(m, w, NULL), 0);
    CHECK_EQ(create(m, w, "events", uid(2), 2, 3, reps), 0);
    CHECK_EQ(create(m, w, "__consumer_offsets", uid(3), 3, 3, reps), 0);
    struct mi_partition_change pc = {uid(1), 4, -1, -1, 0, NULL, -1, NULL};
    mi_enc_partition_change(w, &pc);
    CHECK_EQ(run(m, w, NULL), 0);
    mi_enc_set_config(w, "", "default.replication.factor", "3");
    CHECK_EQ(run(m, w, NULL), 0);
    mi_enc_set_config(w, "events", "retention.ms", "60000");
    CHECK_EQ(run(m, w, NULL), 0);
    mi_enc_alloc_producer_ids(w, 1000);
    CHECK_EQ(run(m, w, NULL), 0);
}

TEST(meta_image_snapshot_roundtrip)
{
    size_t live0 = alloc_live_bytes();
    struct meta_image m, d;
    struct obuf w, s1, s2;
    meta_image_init(&m);
    meta_image_init(&d);
    obuf_init(&w);
    obuf_init(&s1);
    obuf_init(&s2);
    build_rich(&m, &w);
    CHECK_EQ(meta_image_encode(&m, &s1), 0);
    /* Decoding over a non-empty image replaces it. */
    add_brokers(&d, &w, 2);
    CHECK_EQ(meta_image_decode(&d, s1.data, s1.len, err, sizeof err), 0);
    CHECK_EQ(meta_image_encode(&d, &s2), 0);
    CHECK_EQ(s1.len, s2.len);
    CHECK(memcmp(s1.data, s2.data, s1.len) == 0);
    CHECK_EQ(d.offset, m.offset);
    CHECK_EQ(d.nbrokers, 6);
    CHECK(meta_image_broker(&d, 3)->fenced && meta_image_broker(&d, 42)->fenced && !meta_image_broker(&d, 1)->fenced);
    CHECK(meta_image_topic_by_id(&d, uid(2)) == meta_image_topic(&d, "events", 6));
    CHECK(strcmp(config_get(&meta_image_topic(&d, "orders", 6)->configs, "segment.bytes"), "1048576") == 0);
    CHECK_EQ(part(&d, "orders", 4)->leader, -1);

    /* The decoded image goes on exactly like the original. */
    static const int32_t r[] = {1, 2};
    CHECK_EQ(create(&m, &w, "more", uid(9), 1, 2, r), 0);
    CHECK_EQ(create(&d, &w, "more", uid(9), 1, 2, r), 0);
    mi_enc_delete_topic(&w, uid(2));
    CHECK_EQ(run(&m, &w, NULL), 0);
    mi_enc_delete_topic(&w, uid(2));
    CHECK_EQ(run(&d, &w, NULL), 0);
    snap_at(&m, 0, &s1);
    snap_at(&d, 0, &s2);
    CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);

    /* An empty image round-trips too. */
    struct meta_image e;
    meta_image_init(&e);
    obuf_reset(&s1);
    CHECK_EQ(meta_image_encode(&e, &s1), 0);
    CHECK_EQ(meta_image_decode(&d, s1.data, s1.len, err, sizeof err), 0);
    CHECK(d.nbrokers == 0 && d.ntopics == 0 && d.offset == 0);
    obuf_free(&s1);
    obuf_free(&s2);
    obuf_free(&w);
    meta_image_free(&m);
    meta_image_free(&d);
    CHECK_EQ(alloc_live_bytes(), live0);
}

TEST(meta_image_cmd_hostile_bytes)
{
    size_t live0 = alloc_live_bytes();
    struct meta_image m;
    struct obuf w, all;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&all);
    build_rich(&m, &w);
    /* One command of every type, kept as (offset, length) in all. */
    size_t at[16], len[16];
    int n = 0;
    static const int32_t counts[] = {2, 1}, reps[] = {1, 2, 4};
    static const char *keys[] = {"a", "bb"}, *vals[] = {"x", "yy"};
    struct mi_partition_change pc = {uid(1), 1, -1, 2, 2, (const int32_t[]){2, 4}, 3, (const int32_t[]){4, 2, 1}};
#define ADD(enc)                                                                                                  \
    do {                                                                                                          \
        at[n] = all.len;                                                                                          \
        enc;                                                                                                      \
        len[n] = all.len - at[n];                                                                                 \
        n++;                                                                                                      \
    } while (0)
    ADD(mi_enc_register_broker(&all, 8, "h8", 8, uid(8)));
    ADD(mi_enc_fence_broker(&all, 1, 2));
    ADD(mi_enc_unfence_broker(&all, 1, 2));
    ADD(mi_enc_unregister_broker(&all, 5));
    ADD(mi_enc_create_topic(&all, "x", uid(20), 2, counts, reps, 2, keys, vals));
    ADD(mi_enc_delete_topic(&all, uid(3)));
    ADD(mi_enc_create_partitions(&all, uid(2), 4, 2, counts, reps));
    ADD(mi_enc_partition_change(&all, &pc));
    ADD(mi_enc_set_config(&all, "orders", "k", "v"));
    ADD(mi_enc_alloc_producer_ids(&all, 5));
#undef ADD
    CHECK(!all.oom);
    uint8_t buf[512];
    for (int c = 0; c < n; c++) {
        CHECK(len[c] <= sizeof buf);
        /* Every strict prefix is corrupt and consumed without change. */
        struct obuf before;
        obuf_init(&before);
        snap_at(&m, 0, &before);
        for (size_t l = 0; l < len[c]; l++) {
            memcpy(buf, all.data + at[c], l);
            CHECK_EQ(meta_image_apply(&m, buf, l, m.offset + 1, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
        }
        check_same(&m, &before, 0);
        obuf_free(&before);
        /* Random flips: any answer, but no crash, leak or broken image. */
        for (int i = 0; i < 3000; i++) {
            memcpy(buf, all.data + at[c], len[c]);
            int flips = 1 + (int)(rnd() % 3);
            for (int f = 0; f < flips; f++) {
                size_t pos = rnd() % len[c];
                buf[pos] = (rnd() & 1) ? (uint8_t)rnd() : (uint8_t)(buf[pos] ^ (1u << (rnd() % 8)));
            }
            if (i % 4 == 0) /* the type byte stays valid, so the fields are what gets mangled */
                buf[0] = all.data[at[c]];
            int rc = meta_image_apply(&m, buf, len[c], m.offset + 1, NULL, err, sizeof err);
            CHECK(rc != KERR_UNKNOWN_SERVER_ERROR);
        }
        /* Whatever was applied, the image still satisfies every invariant
         * the snapshot decoder checks. */
        struct obuf s;
        struct meta_image d;
        obuf_init(&s);
        meta_image_init(&d);
        CHECK_EQ(meta_image_encode(&m, &s), 0);
        CHECK_EQ(meta_image_decode(&d, s.data, s.len, err, sizeof err), 0);
        meta_image_free(&d);
        obuf_free(&s);
    }

    /* Counts far beyond the bytes are refused before anything is allocated. */
    for (int i = 0; i < 5; i++) {
        obuf_reset(&w);
        obuf_put_u8(&w, i == 3 ? MI_SET_CONFIG : i == 4 ? MI_PARTITION_CHANGE : MI_CREATE_TOPIC);
        obuf_put_u8(&w, 0);
        if (i == 3) {
            kw_int32(&w, INT32_MAX); /* a string */
        } else if (i == 4) {
            kw_uuid(&w, uid(1));
            kw_int32(&w, 0);
            kw_int32(&w, -1);
            kw_int32(&w, 1);
            kw_int32(&w, INT32_MAX); /* the ISR */
        } else {
            kw_int32(&w, 1);
            obuf_put_u8(&w, 'h');
            kw_uuid(&w, uid(77));
            kw_int32(&w, i == 0 ? INT32_MAX : 1); /* partitions */
            kw_int32(&w, i == 1 ? INT32_MAX : 1); /* replicas */
            kw_int32(&w, 1);
            kw_int32(&w, i == 2 ? INT32_MAX : 0); /* configs */
        }
        obuf_put(&w, "abcdefgh", 8);
        CHECK_EQ(meta_image_apply(&m, w.data, w.len, m.offset + 1, NULL, err, sizeof err), KERR_CORRUPT_MESSAGE);
    }
    obuf_free(&all);
    obuf_free(&w);
    meta_image_free(&m);
    CHECK_EQ(alloc_live_bytes(), live0);
}

static void fix_crc(uint8_t *p, size_t len)
{
    uint32_t v = crc32c(0, p, len - 4);
    p += len - 4;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

TEST(meta_image_snapshot_hostile_bytes)
{
    size_t live0 = alloc_live_bytes();
    struct meta_image m, d;
    struct obuf w, s, keep, again;
    meta_image_init(&m);
    meta_image_init(&d);
    obuf_init(&w);
    obuf_init(&s);
    obuf_init(&keep);
    obuf_init(&again);
    build_rich(&m, &w);
    CHECK_EQ(meta_image_encode(&m, &s), 0);
    /* d holds another image, which every failed decode must leave alone. */
    add_brokers(&d, &w, 2);
    snap_at(&d, d.offset, &keep);
    uint8_t *buf = xmalloc(s.len);
    for (size_t l = 0; l < s.len; l++) {
        memcpy(buf, s.data, l);
        CHECK(meta_image_decode(&d, buf, l, err, sizeof err) != 0);
        if (l > 9) { /* also with a valid checksum, so that the parser sees it */
            fix_crc(buf, l);
            CHECK(meta_image_decode(&d, buf, l, err, sizeof err) != 0);
        }
    }
    check_same(&d, &keep, d.offset);
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, s.data, s.len);
        size_t pos = rnd() % (s.len - 4);
        buf[pos] ^= (uint8_t)(1 + rnd() % 255);
        CHECK(meta_image_decode(&d, buf, s.len, err, sizeof err) != 0); /* the checksum catches it */
        int flips = (int)(rnd() % 3);
        for (int f = 0; f < flips; f++)
            buf[rnd() % (s.len - 4)] = (uint8_t)rnd();
        fix_crc(buf, s.len);
        int rc = meta_image_decode(&d, buf, s.len, err, sizeof err);
        CHECK(rc == 0 || rc == KERR_CORRUPT_MESSAGE || rc == KERR_UNSUPPORTED_VERSION);
        if (rc == 0) {
            /* Whatever is accepted is canonical: it encodes to the same bytes. */
            accepted++;
            obuf_reset(&again);
            CHECK_EQ(meta_image_encode(&d, &again), 0);
            CHECK(again.len == s.len && memcmp(again.data, buf, s.len) == 0);
            CHECK_EQ(meta_image_decode(&d, keep.data, keep.len, err, sizeof err), 0);
        }
        check_same(&d, &keep, d.offset);
    }
    CHECK(accepted > 0); /* some flips hit values that stay valid */

    /* Huge counts with a valid checksum. */
    for (int i = 0; i < 4; i++) {
        obuf_reset(&again);
        obuf_put(&again, "SSMI", 4);
        obuf_put_u8(&again, 0);
        kw_int64(&again, 9);
        kw_int64(&again, 0);
        for (int j = 0; j < 3; j++) /* configs, brokers, topics */
            kw_int32(&again, j == i ? INT32_MAX : 0);
        kw_uint32(&again, crc32c(0, again.data, again.len));
        CHECK_EQ(meta_image_decode(&d, again.data, again.len, err, sizeof err), i < 3 ? KERR_CORRUPT_MESSAGE : 0);
    }
    CHECK(d.offset == 9 && d.nbrokers == 0 && d.ntopics == 0);
    again.data[4] = 1;
    CHECK_EQ(meta_image_decode(&d, again.data, again.len, err, sizeof err), KERR_UNSUPPORTED_VERSION);
    xfree(buf);
    obuf_free(&again);
    obuf_free(&keep);
    obuf_free(&s);
    obuf_free(&w);
    meta_image_free(&m);
    meta_image_free(&d);
    CHECK_EQ(alloc_live_bytes(), live0);
}

TEST(meta_image_apply_oom)
{
    size_t live0 = alloc_live_bytes();
    struct meta_image m;
    struct obuf w, cmds, before;
    meta_image_init(&m);
    obuf_init(&w);
    obuf_init(&cmds);
    obuf_init(&before);
    build_rich(&m, &w);
    static const int32_t counts[] = {2, 3}, reps[] = {1, 2, 2, 4, 5};
    static const char *keys[] = {"a", "b"}, *vals[] = {"1", "2"};
    struct mi_partition_change pc = {uid(1), 0, -1, 2, 2, (const int32_t[]){2, 4}, 2, (const int32_t[]){4, 2}};
    size_t at[16];
    int n = 0;
    at[n++] = cmds.len;
    mi_enc_register_broker(&cmds, 50, "h", 1, uid(50));
    at[n++] = cmds.len;
    mi_enc_create_topic(&cmds, "new", uid(60), 2, counts, reps, 2, keys, vals);
    at[n++] = cmds.len;
    mi_enc_create_partitions(&cmds, uid(60), 4, 2, counts, reps);
    at[n++] = cmds.len;
    mi_enc_partition_change(&cmds, &pc);
    at[n++] = cmds.len;
    mi_enc_set_config(&cmds, "new", "c", "3");
    at[n++] = cmds.len;
    mi_enc_set_config(&cmds, "", "c", "3");
    at[n++] = cmds.len;
    mi_enc_delete_topic(&cmds, uid(2));
    at[n] = cmds.len;
    for (int c = 0; c < n; c++) {
        int failures = 0;
        for (long k = 0;; k++) {
            snap_at(&m, m.offset, &before);
            int64_t off = m.offset;
            alloc_fail_after(k);
            int rc = meta_image_apply(&m, cmds.data + at[c], at[c + 1] - at[c], off + 1, NULL, err, sizeof err);
            alloc_fail_after(-1);
            if (rc == KERR_UNKNOWN_SERVER_ERROR) {
                CHECK_EQ(m.offset, off);
                check_same(&m, &before, off);
                failures++;
                continue;
            }
            CHECK_EQ(rc, 0);
            break;
        }
        CHECK(failures > 0 || c == n - 1); /* DELETE_TOPIC allocates nothing */
    }
    /* Snapshot decode under failures: untouched until it succeeds. */
    struct obuf s;
    struct meta_image d;
    obuf_init(&s);
    meta_image_init(&d);
    CHECK_EQ(meta_image_encode(&m, &s), 0);
    for (long k = 0;; k++) {
        alloc_fail_after(k);
        int rc = meta_image_decode(&d, s.data, s.len, err, sizeof err);
        alloc_fail_after(-1);
        if (rc == 0)
            break;
        CHECK_EQ(rc, KERR_UNKNOWN_SERVER_ERROR);
        CHECK(d.nbrokers == 0 && d.ntopics == 0 && d.offset == 0);
    }
    CHECK_EQ(d.ntopics, m.ntopics);
    meta_image_free(&d);
    obuf_free(&s);
    obuf_free(&before);
    obuf_free(&cmds);
    obuf_free(&w);
    meta_image_free(&m);
    CHECK_EQ(alloc_live_bytes(), live0);
}

TEST(meta_image_assign_replicas_spread)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    add_brokers(&m, &w, 6);
    mi_enc_fence_broker(&w, 4, meta_image_broker(&m, 4)->epoch);
    CHECK_EQ(run(&m, &w, NULL), 0);
    enum { NP = 50, RF = 3, NB = 5 };
    int32_t out[NP * RF];
    CHECK_EQ(mi_assign_replicas(&m, NP, RF, 0, 7, out), 0);
    int leads[8] = {0}, hosts[8] = {0}, pairs[8][8] = {{0}};
    for (int p = 0; p < NP; p++) {
        const int32_t *r = out + p * RF;
        for (int j = 0; j < RF; j++) {
            CHECK(r[j] >= 1 && r[j] <= 6 && r[j] != 4);
            for (int k = 0; k < j; k++)
                CHECK(r[k] != r[j]);
            hosts[r[j]]++;
        }
        leads[r[0]]++;
        pairs[r[0]][r[1]]++;
    }
    for (int b = 1; b <= 6; b++) {
        if (b == 4) {
            CHECK_EQ(hosts[b], 0);
            continue;
        }
        CHECK_EQ(leads[b], NP / NB);
        CHECK_EQ(hosts[b], NP * RF / NB);
        /* A leader's first followers are spread, not always the same broker. */
        int distinct = 0;
        for (int f = 1; f <= 6; f++)
            distinct += pairs[b][f] > 0;
        CHECK(distinct >= 3);
    }
    /* The start moves the first leader. */
    int32_t o2[RF];
    CHECK_EQ(mi_assign_replicas(&m, 1, RF, 0, 1, o2), 0);
    CHECK_EQ(o2[0], 2);
    /* Partitions added later continue the same pattern. */
    int32_t part1[20 * RF], part2[30 * RF];
    CHECK_EQ(mi_assign_replicas(&m, 20, RF, 0, 7, part1), 0);
    CHECK_EQ(mi_assign_replicas(&m, 30, RF, 20, 7, part2), 0);
    CHECK(memcmp(part1, out, sizeof part1) == 0 && memcmp(part2, out + 20 * RF, sizeof part2) == 0);
    /* The result is a valid CREATE_TOPIC assignment. */
    int32_t counts[NP];
    for (int i = 0; i < NP; i++)
        counts[i] = RF;
    mi_enc_create_topic(&w, "spread", uid(1), NP, counts, out, 0, NULL, NULL);
    CHECK_EQ(run(&m, &w, NULL), 0);

    CHECK_EQ(mi_assign_replicas(&m, 1, NB + 1, 0, 0, out), KERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ(mi_assign_replicas(&m, 1, 0, 0, 0, out), KERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ(mi_assign_replicas(&m, 0, 1, 0, 0, out), KERR_INVALID_PARTITIONS);
    CHECK_EQ(mi_assign_replicas(&m, 1, 1, -1, 0, out), KERR_INVALID_PARTITIONS);
    CHECK_EQ(mi_assign_replicas(&m, 3, NB, 0, UINT32_MAX, out), 0);
    CHECK_EQ(mi_assign_replicas(&m, 2, 1, INT32_MAX - 1, UINT32_MAX, out), 0);
    struct meta_image empty;
    meta_image_init(&empty);
    CHECK_EQ(mi_assign_replicas(&empty, 1, 1, 0, 0, out), KERR_INVALID_REPLICATION_FACTOR);
    obuf_free(&w);
    meta_image_free(&m);
}

TEST(meta_image_elect_leader)
{
    struct meta_image m;
    struct obuf w;
    meta_image_init(&m);
    obuf_init(&w);
    add_brokers(&m, &w, 5);
    mi_enc_fence_broker(&w, 2, meta_image_broker(&m, 2)->epoch);
    CHECK_EQ(run(&m, &w, NULL), 0);
    mi_enc_unregister_broker(&w, 5);
    CHECK_EQ(run(&m, &w, NULL), 0);
    int32_t reps[] = {1, 2, 3, 4, 5}, isr[] = {5, 2, 3, 1};
    struct mi_partition p = {1, 0, 0, 5, reps, 4, isr};
    CHECK_EQ(mi_elect_leader(&m, &p, -1), 1);
    CHECK_EQ(mi_elect_leader(&m, &p, 1), 3);   /* 2 is fenced */
    p.nisr = 3;                                /* ISR {5, 2, 3} */
    CHECK_EQ(mi_elect_leader(&m, &p, 3), -1);  /* 4 is not in the ISR, 5 is unregistered */
    p.nisr = 2;                                /* ISR {5, 2} */
    CHECK_EQ(mi_elect_leader(&m, &p, -1), -1);
    mi_enc_unfence_broker(&w, 2, meta_image_broker(&m, 2)->epoch);
    CHECK_EQ(run(&m, &w, NULL), 0);
    CHECK_EQ(mi_elect_leader(&m, &p, -1), 2);

    /* Through the image: the leader fails, the controller elects and
     * shrinks the ISR in one change. */
    static const int32_t r[] = {1, 3, 4};
    CHECK_EQ(create(&m, &w, "t", uid(1), 1, 3, r), 0);
    const struct mi_partition *tp = part(&m, "t", 0);
    int32_t leader = mi_elect_leader(&m, tp, 1);
    CHECK_EQ(leader, 3);
    CHECK_EQ(change(&m, &w, tp->partition_epoch, leader, 2, (const int32_t[]){3, 4}, -1, NULL), 0);
    tp = part(&m, "t", 0);
    CHECK(tp->leader == 3 && tp->leader_epoch == 1 && !mi_in_isr(tp, 1));
    obuf_free(&w);
    meta_image_free(&m);
}
