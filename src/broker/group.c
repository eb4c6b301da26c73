/* group.c: see group.h.  The rebalance follows Kafka's classic protocol:
 * a JoinGroup from a new member, a changed subscription, a leaving or
 * expired member, or the leader rejoining moves the group to
 * PREPARING_REBALANCE; the round completes when every known member has
 * rejoined or the rebalance timeout passes (members that did not rejoin are
 * removed); then each member gets the generation, the leader also the
 * members' subscriptions, and SyncGroup hands out the leader's assignment. */
#include "broker/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/api.h"
#include "broker/group_store.h"
#include "broker/handler.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

static void complete_join(struct broker *b, struct group *g);

const char *group_state_name(enum group_state s)
{
    switch (s) {
    case GROUP_EMPTY:
        return "Empty";
    case GROUP_PREPARING_REBALANCE:
        return "PreparingRebalance";
    case GROUP_COMPLETING_REBALANCE:
        return "CompletingRebalance";
    case GROUP_STABLE:
        return "Stable";
    case GROUP_DEAD:
        return "Dead";
    }
    return "Unknown";
}

int32_t group_partition_for(const char *id, size_t len, int32_t n)
{
    /* Java's String.hashCode over UTF-16 units; group ids are mostly ASCII,
     * and for other bytes this still gives a stable spread. */
    int32_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = (int32_t)(31u * (uint32_t)h + (unsigned char)id[i]);
    /* Kafka's Utils.abs: Integer.MIN_VALUE maps to 0 */
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return n > 0 ? a % n : 0;
}

static char *kdup(kstr s)
{
    return s.len < 0 ? NULL : xstrndup(s.ptr ? s.ptr : "", (size_t)s.len);
}

static bool keq(kstr a, const char *b)
{
    if (!b)
        return a.len < 0;
    return kstr_eq(a, b);
}

struct group *coord_find(struct broker *b, kstr id)
{
    struct coordinator *c = b->coord;
    for (int i = 0; i < c->ngroups; i++)
        if (keq(id, c->groups[i]->id))
            return c->groups[i];
    return NULL;
}

static struct group *group_new(struct broker *b, kstr id)
{
    struct coordinator *c = b->coord;
    if (c->ngroups == c->capgroups) {
        int cap = c->capgroups ? c->capgroups * 2 : 16;
        struct group **n = xrealloc(c->groups, (size_t)cap * sizeof *n);
        if (!n)
            return NULL;
        c->groups = n;
        c->capgroups = cap;
    }
    struct group *g = xcalloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->id = kdup(id);
    if (!g->id) {
        xfree(g);
        return NULL;
    }
    g->state = GROUP_EMPTY;
    c->groups[c->ngroups++] = g;
    return g;
}

static void member_free(struct group_member *m)
{
    if (!m)
        return;
    xfree(m->id);
    xfree(m->instance_id);
    xfree(m->client_id);
    xfree(m->client_host);
    for (int i = 0; i < m->nprotocols; i++) {
        xfree(m->protocols[i].name);
        xfree(m->protocols[i].metadata);
    }
    xfree(m->protocols);
    xfree(m->assignment);
    xfree(m);
}

static void group_free(struct group *g)
{
    for (int i = 0; i < g->nmembers; i++)
        member_free(g->members[i]);
    xfree(g->members);
    for (int i = 0; i < g->noffsets; i++) {
        xfree(g->offsets[i].topic);
        xfree(g->offsets[i].metadata);
    }
    xfree(g->offsets);
    for (int i = 0; i < g->npending; i++)
        xfree(g->pending[i].id);
    xfree(g->pending);
    xfree(g->id);
    xfree(g->protocol_type);
    xfree(g->protocol);
    xfree(g->leader);
    xfree(g);
}

static struct group_member *find_member(struct group *g, kstr id)
{
    for (int i = 0; i < g->nmembers; i++)
        if (keq(id, g->members[i]->id))
            return g->members[i];
    return NULL;
}

static struct group_member *find_static(struct group *g, kstr instance)
{
    if (instance.len < 0)
        return NULL;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->instance_id && keq(instance, g->members[i]->instance_id))
            return g->members[i];
    return NULL;
}

/* The member a request names: with a group instance id, the static member
 * of that id, which must carry this member id (else FENCED_INSTANCE_ID);
 * without one, the member of that id (else UNKNOWN_MEMBER_ID). */
static struct group_member *member_for(struct group *g, kstr member_id, kstr instance_id, int *err)
{
    struct group_member *m;
    *err = 0;
    if (g && instance_id.len >= 0) {
        m = find_static(g, instance_id);
        if (m && !keq(member_id, m->id)) {
            *err = KERR_FENCED_INSTANCE_ID;
            return NULL;
        }
    } else {
        m = g ? find_member(g, member_id) : NULL;
    }
    if (!m)
        *err = KERR_UNKNOWN_MEMBER_ID;
    return m;
}

static void set_str(char **dst, const char *src)
{
    xfree(*dst);
    *dst = src ? xstrdup(src) : NULL;
}

/* ---- responses to parked requests ------------------------------------ */

static void answer_join(struct group *g, struct group_member *m, int16_t err)
{
    struct request *r = m->join_req;
    m->join_req = NULL;
    if (!r)
        return;
    if (r->conn) {
        struct JoinGroupResponse resp;
        JoinGroupResponse_init(&resp);
        resp.ErrorCode = err;
        resp.GenerationId = err ? -1 : g->generation;
        resp.ProtocolType = kstr_c(g->protocol_type);
        resp.ProtocolName = err ? (kstr){NULL, -1} : kstr_c(g->protocol);
        resp.Leader = kstr_c(err ? "" : g->leader);
        resp.MemberId = kstr_c(m->id);
        if (r->api_version < 7)
            resp.ProtocolName = kstr_c(err ? "" : g->protocol);
        bool leader = !err && g->leader && strcmp(g->leader, m->id) == 0;
        if (leader && HANDLER_ITEMS(r, resp.Members, g->nmembers, JoinGroupResponse_JoinGroupResponseMember_init) == 0) {
            for (int i = 0; i < g->nmembers; i++) {
                struct group_member *o = g->members[i];
                struct JoinGroupResponse_JoinGroupResponseMember *rm = &resp.Members.items[i];
                rm->MemberId = kstr_c(o->id);
                rm->GroupInstanceId = kstr_c(o->instance_id);
                rm->Metadata = (kbytes){NULL, 0};
                for (int p = 0; p < o->nprotocols; p++)
                    if (strcmp(o->protocols[p].name, g->protocol) == 0)
                        rm->Metadata = (kbytes){o->protocols[p].metadata, o->protocols[p].len};
            }
        }
        JoinGroupResponse_encode(&r->out, r->api_version, &resp);
    }
    request_done(r);
}

/* Answers a SyncGroup: m's assignment (none with an error, or when m or
 * g is NULL). */
static void sync_respond(struct request *r, const struct group *g, const struct group_member *m, int16_t err)
{
    if (r->conn) {
        struct SyncGroupResponse resp;
        SyncGroupResponse_init(&resp);
        resp.ErrorCode = err;
        resp.ProtocolType = kstr_c(g ? g->protocol_type : NULL);
        resp.ProtocolName = kstr_c(g ? g->protocol : NULL);
        resp.Assignment = err || !m ? (kbytes){NULL, 0}
                                    : (kbytes){m->assignment, m->assignment ? m->assignment_len : 0};
        SyncGroupResponse_encode(&r->out, r->api_version, &resp);
    }
    request_done(r);
}

static void answer_sync(struct group *g, struct group_member *m, int16_t err)
{
    struct request *r = m->sync_req;
    m->sync_req = NULL;
    if (r)
        sync_respond(r, g, m, err);
}

/* The broker, for timer callbacks (one broker per process). */
static struct broker *coord_broker;

/* Answers the members' parked requests with err and stops the group's
 * timer: the group leaves memory, or is replaced by a replayed state. */
static void group_release(struct group *g, int16_t err)
{
    for (int i = 0; i < g->nmembers; i++) {
        answer_join(g, g->members[i], err);
        answer_sync(g, g->members[i], err);
    }
    if (g->rebalance_timer) {
        loop_cancel(coord_broker->loop, g->rebalance_timer);
        g->rebalance_timer = 0;
    }
    g->pending_write = 0; /* a leader waiting for its write learns it from the token */
}

/* ---- membership -------------------------------------------------------- */

static void remove_member_at(struct group *g, int i)
{
    struct group_member *m = g->members[i];
    answer_join(g, m, KERR_UNKNOWN_MEMBER_ID);
    answer_sync(g, m, KERR_UNKNOWN_MEMBER_ID);
    g->members[i] = g->members[--g->nmembers];
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        xfree(g->leader);
        g->leader = NULL;
    }
    member_free(m);
}

static void rebalance_timeout(struct loop *l, void *arg);

static int32_t max_rebalance_timeout(const struct group *g)
{
    int32_t t = 0;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->rebalance_timeout_ms > t)
            t = g->members[i]->rebalance_timeout_ms;
    return t > 0 ? t : 1000;
}

static void arm_rebalance_timer(struct broker *b, struct group *g, int64_t ms)
{
    if (g->rebalance_timer)
        loop_cancel(b->loop, g->rebalance_timer);
    g->rebalance_deadline_ms = clock_mono_ms() + ms;
    g->rebalance_timer = loop_timer(b->loop, ms, rebalance_timeout, g);
}

/* Starts a rebalance: every member must rejoin. */
static void prepare_rebalance(struct broker *b, struct group *g, const char *why)
{
    if (g->state == GROUP_PREPARING_REBALANCE)
        return;
    /* members waiting in SyncGroup learn that a new round began (a leader
     * waiting for its metadata write, through the token) */
    for (int i = 0; i < g->nmembers; i++)
        answer_sync(g, g->members[i], KERR_REBALANCE_IN_PROGRESS);
    g->pending_write = 0;
    g->initial_join = g->state == GROUP_EMPTY && b->coord->initial_delay_ms > 0;
    g->state = GROUP_PREPARING_REBALANCE;
    log_debug("group %s: preparing rebalance (%s)", g->id, why);
    int64_t full = max_rebalance_timeout(g);
    arm_rebalance_timer(b, g, full);
    if (g->initial_join && b->coord->initial_delay_ms < full) {
        /* Kafka's initial delayed join: wait a little for more members */
        loop_cancel(b->loop, g->rebalance_timer);
        g->rebalance_timer = loop_timer(b->loop, b->coord->initial_delay_ms, rebalance_timeout, g);
    }
}

static bool all_joined(const struct group *g)
{
    for (int i = 0; i < g->nmembers; i++)
        if (!g->members[i]->join_req)
            return false;
    return true;
}

static void maybe_complete_join(struct broker *b, struct group *g)
{
    if (g->state == GROUP_PREPARING_REBALANCE && !g->initial_join && all_joined(g))
        complete_join(b, g);
}

static void rebalance_timeout(struct loop *l, void *arg)
{
    (void)l;
    struct group *g = arg;
    struct broker *b = coord_broker;
    g->rebalance_timer = 0;
    if (g->state != GROUP_PREPARING_REBALANCE)
        return;
    if (g->initial_join) {
        /* the initial delay is over; known members that have not joined
         * yet still get the rest of the rebalance timeout */
        g->initial_join = false;
        int64_t left = g->rebalance_deadline_ms - clock_mono_ms();
        if (!all_joined(g) && left > 0) {
            g->rebalance_timer = loop_timer(b->loop, left, rebalance_timeout, g);
            return;
        }
    }
    /* members that did not rejoin in time are removed */
    for (int i = g->nmembers - 1; i >= 0; i--)
        if (!g->members[i]->join_req) {
            log_info("group %s: member %s did not rejoin in time; removing it", g->id, g->members[i]->id);
            remove_member_at(g, i);
        }
    complete_join(b, g);
}

static const char *choose_protocol(const struct group *g)
{
    /* candidates: protocols every member supports; each member votes for its
     * most preferred candidate; the most votes win (ties: first seen) */
    const struct group_member *first = g->members[0];
    const char *best = NULL;
    int best_votes = -1;
    for (int p = 0; p < first->nprotocols; p++) {
        const char *name = first->protocols[p].name;
        bool everyone = true;
        for (int i = 1; i < g->nmembers && everyone; i++) {
            bool has = false;
            for (int q = 0; q < g->members[i]->nprotocols; q++)
                has |= strcmp(g->members[i]->protocols[q].name, name) == 0;
            everyone = has;
        }
        if (!everyone)
            continue;
        int votes = 0;
        for (int i = 0; i < g->nmembers; i++) {
            /* member i's most preferred candidate */
            for (int q = 0; q < g->members[i]->nprotocols; q++) {
                const char *cand = g->members[i]->protocols[q].name;
                bool all = true;
                for (int j = 0; j < g->nmembers && all; j++) {
                    bool has = false;
                    for (int k = 0; k < g->members[j]->nprotocols; k++)
                        has |= strcmp(g->members[j]->protocols[k].name, cand) == 0;
                    all = has;
                }
                if (all) {
                    votes += strcmp(cand, name) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = name;
            best_votes = votes;
        }
    }
    return best;
}

static void complete_join(struct broker *b, struct group *g)
{
    if (g->rebalance_timer) {
        loop_cancel(b->loop, g->rebalance_timer);
        g->rebalance_timer = 0;
    }
    g->initial_join = false;
    g->pending_write = 0;
    g->generation++;
    for (int i = 0; i < g->nmembers; i++) {
        xfree(g->members[i]->assignment);
        g->members[i]->assignment = NULL;
        g->members[i]->assignment_len = 0;
    }
    if (g->nmembers == 0) {
        g->state = GROUP_EMPTY;
        xfree(g->protocol);
        g->protocol = NULL;
        xfree(g->leader);
        g->leader = NULL;
        gstore_write_group(b, g, NULL);
        log_info("group %s: generation %d is empty", g->id, g->generation);
        return;
    }
    const char *proto = choose_protocol(g);
    set_str(&g->protocol, proto ? proto : "");
    if (!g->leader || !find_member(g, kstr_c(g->leader)))
        set_str(&g->leader, g->members[0]->id);
    g->state = GROUP_COMPLETING_REBALANCE;
    log_info("group %s: generation %d with %d members, protocol %s, leader %s", g->id, g->generation,
             g->nmembers, g->protocol, g->leader);
    for (int i = 0; i < g->nmembers; i++)
        answer_join(g, g->members[i], 0);
}

static int set_protocols(struct group_member *m, const struct JoinGroupRequest *req)
{
    for (int i = 0; i < m->nprotocols; i++) {
        xfree(m->protocols[i].name);
        xfree(m->protocols[i].metadata);
    }
    xfree(m->protocols);
    m->nprotocols = 0;
    m->protocols = xcalloc((size_t)(req->Protocols.count ? req->Protocols.count : 1), sizeof *m->protocols);
    if (!m->protocols)
        return -1;
    for (int32_t i = 0; i < req->Protocols.count; i++) {
        const struct JoinGroupRequest_JoinGroupRequestProtocol *p = &req->Protocols.items[i];
        struct group_protocol *gp = &m->protocols[m->nprotocols++];
        gp->name = kdup(p->Name.len >= 0 ? p->Name : kstr_c(""));
        gp->len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        gp->metadata = xmalloc((size_t)gp->len + 1);
        if (!gp->name || !gp->metadata)
            return -1;
        if (gp->len)
            memcpy(gp->metadata, p->Metadata.ptr, (size_t)gp->len);
    }
    return 0;
}

static bool same_protocols(const struct group_member *m, const struct JoinGroupRequest *req)
{
    if (m->nprotocols != req->Protocols.count)
        return false;
    for (int i = 0; i < m->nprotocols; i++) {
        const struct JoinGroupRequest_JoinGroupRequestProtocol *p = &req->Protocols.items[i];
        int32_t len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        if (!keq(p->Name, m->protocols[i].name) || len != m->protocols[i].len ||
            (len && memcmp(p->Metadata.ptr, m->protocols[i].metadata, (size_t)len) != 0))
            return false;
    }
    return true;
}

static bool supports_group_protocols(const struct group *g, const struct JoinGroupRequest *req)
{
    if (g->nmembers == 0)
        return true;
    /* at least one protocol in common with every current member */
    for (int32_t i = 0; i < req->Protocols.count; i++) {
        bool all = true;
        for (int k = 0; k < g->nmembers && all; k++) {
            bool has = false;
            for (int q = 0; q < g->members[k]->nprotocols; q++)
                has |= keq(req->Protocols.items[i].Name, g->members[k]->protocols[q].name);
            all = has;
        }
        if (all)
            return true;
    }
    return false;
}

static int join_error(struct request *r, int16_t err, kstr member_id)
{
    struct JoinGroupResponse resp;
    JoinGroupResponse_init(&resp);
    resp.ErrorCode = err;
    resp.GenerationId = -1;
    resp.ProtocolName = r->api_version >= 7 ? (kstr){NULL, -1} : kstr_c("");
    resp.Leader = kstr_c("");
    resp.MemberId = member_id.len >= 0 ? member_id : kstr_c("");
    JoinGroupResponse_encode(&r->out, r->api_version, &resp);
    return API_DONE;
}

static char *new_member_id(kstr client_id)
{
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)rand();
    char buf[400];
    int n = snprintf(buf, sizeof buf, "%.*s-", client_id.len > 0 && client_id.len < 200 ? client_id.len : 0,
                     client_id.ptr ? client_id.ptr : "");
    for (int i = 0; i < 16; i++) {
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%02x", rnd[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            buf[n++] = '-';
    }
    buf[n] = 0;
    return xstrdup(buf);
}

static bool take_pending(struct group *g, kstr id)
{
    for (int i = 0; i < g->npending; i++)
        if (keq(id, g->pending[i].id)) {
            xfree(g->pending[i].id);
            g->pending[i] = g->pending[--g->npending];
            return true;
        }
    return false;
}

int group_join(struct broker *b, struct request *r, const struct JoinGroupRequest *req)
{
    struct coordinator *c = b->coord;
    int16_t v = r->api_version;
    if (req->GroupId.len <= 0)
        return join_error(r, KERR_INVALID_GROUP_ID, req->MemberId);
    int cerr = gstore_check_coordinator(b, req->GroupId);
    if (cerr)
        return join_error(r, (int16_t)cerr, req->MemberId);
    if (req->SessionTimeoutMs < c->min_session_ms || req->SessionTimeoutMs > c->max_session_ms)
        return join_error(r, KERR_INVALID_SESSION_TIMEOUT, req->MemberId);
    if (req->ProtocolType.len <= 0 || req->Protocols.count <= 0)
        return join_error(r, KERR_INCONSISTENT_GROUP_PROTOCOL, req->MemberId);
    struct group *g = coord_find(b, req->GroupId);
    bool created = false;
    if (!g) {
        if (req->MemberId.len > 0 && req->GroupInstanceId.len < 0)
            return join_error(r, KERR_UNKNOWN_MEMBER_ID, req->MemberId);
        g = group_new(b, req->GroupId);
        if (!g)
            return API_CLOSE;
        created = true;
    }
    (void)created;
    if ((g->nmembers > 0 || g->state != GROUP_EMPTY) && g->protocol_type && !keq(req->ProtocolType, g->protocol_type) &&
        g->nmembers > 0)
        return join_error(r, KERR_INCONSISTENT_GROUP_PROTOCOL, req->MemberId);
    if (!supports_group_protocols(g, req))
        return join_error(r, KERR_INCONSISTENT_GROUP_PROTOCOL, req->MemberId);

    struct group_member *m = NULL;
    bool is_static = req->GroupInstanceId.len >= 0;
    if (is_static) {
        m = find_static(g, req->GroupInstanceId);
        if (m && req->MemberId.len > 0 && !keq(req->MemberId, m->id))
            return join_error(r, KERR_FENCED_INSTANCE_ID, req->MemberId);
        if (m && req->MemberId.len == 0) {
            /* a static member restarted: it takes over its old identity
             * under a new member id, without a rebalance when unchanged */
            char *nid = new_member_id(r->client_id);
            if (!nid)
                return API_CLOSE;
            if (g->leader && strcmp(g->leader, m->id) == 0)
                set_str(&g->leader, nid);
            answer_join(g, m, KERR_FENCED_INSTANCE_ID);
            answer_sync(g, m, KERR_FENCED_INSTANCE_ID);
            xfree(m->id);
            m->id = nid;
        }
    } else if (req->MemberId.len > 0) {
        m = find_member(g, req->MemberId);
        if (!m) {
            if (!take_pending(g, req->MemberId))
                return join_error(r, KERR_UNKNOWN_MEMBER_ID, req->MemberId);
        }
    } else if (v >= 4) {
        /* KIP-394: hand out an id, and expect the member to join with it */
        char *nid = new_member_id(r->client_id);
        struct group_pending *np = nid ? xrealloc(g->pending, (size_t)(g->npending + 1) * sizeof *np) : NULL;
        if (!np) {
            xfree(nid);
            return API_CLOSE;
        }
        g->pending = np;
        g->pending[g->npending++] = (struct group_pending){nid, clock_mono_ms() + req->SessionTimeoutMs};
        return join_error(r, KERR_MEMBER_ID_REQUIRED, kstr_c(nid));
    }

    if (m && m->join_req) {
        /* a retried JoinGroup replaces the parked one */
        answer_join(g, m, KERR_REBALANCE_IN_PROGRESS);
    }
    bool new_member = m == NULL;
    if (new_member) {
        if (g->nmembers == g->capmembers) {
            int cap = g->capmembers ? g->capmembers * 2 : 8;
            struct group_member **nm = xrealloc(g->members, (size_t)cap * sizeof *nm);
            if (!nm)
                return API_CLOSE;
            g->members = nm;
            g->capmembers = cap;
        }
        m = xcalloc(1, sizeof *m);
        if (!m)
            return API_CLOSE;
        m->id = req->MemberId.len > 0 ? kdup(req->MemberId) : new_member_id(r->client_id);
        m->instance_id = kdup(req->GroupInstanceId);
        if (!m->id) {
            member_free(m);
            return API_CLOSE;
        }
        g->members[g->nmembers++] = m;
    }
    bool changed = new_member || !same_protocols(m, req);
    if (changed && set_protocols(m, req) < 0)
        return API_CLOSE;
    set_str(&m->client_id, handler_cstr(r, r->client_id));
    /* Kafka shows the client's address as "/IP", without the port */
    char host[80] = "";
    if (r->conn) {
        snprintf(host, sizeof host, "/%s", r->conn->peer);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = 0;
    }
    set_str(&m->client_host, host);
    m->session_timeout_ms = req->SessionTimeoutMs;
    m->rebalance_timeout_ms = v >= 1 ? req->RebalanceTimeoutMs : req->SessionTimeoutMs;
    m->last_seen_ms = clock_mono_ms();
    if (!g->protocol_type || g->nmembers == 1)
        set_str(&g->protocol_type, handler_cstr(r, req->ProtocolType));

    bool is_leader = g->leader && strcmp(g->leader, m->id) == 0;
    if (!changed && !is_leader && (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE)) {
        /* nothing changed: the member just learns the current generation */
        m->join_req = r;
        answer_join(g, m, 0);
        return API_PARKED; /* answered already: request_done ran */
    }
    m->join_req = r;
    if (g->state != GROUP_PREPARING_REBALANCE)
        prepare_rebalance(b, g, new_member ? "a member joined" : "a member rejoined");
    else if (g->initial_join && new_member) {
        /* more members are arriving: give them another delay, within the
         * rebalance timeout (Kafka's initial delayed join) */
        int64_t left = g->rebalance_deadline_ms - clock_mono_ms();
        int64_t d = c->initial_delay_ms < left ? c->initial_delay_ms : left;
        loop_cancel(b->loop, g->rebalance_timer);
        g->rebalance_timer = loop_timer(b->loop, d > 0 ? d : 0, rebalance_timeout, g);
    }
    maybe_complete_join(b, g);
    return API_PARKED;
}

/* The leader's SyncGroup while the group's metadata write replicates
 * (r->state, in r's arena).  The request is not the member's sync_req
 * meanwhile: the wait owns it, and the token tells whether the round it
 * belongs to is still the group's. */
struct sync_wait {
    struct broker *b;
    struct repl_wait w;
    int16_t err;       /* the wait's outcome */
    uint64_t token;    /* group->pending_write when it was written */
    char *group_id;    /* in r's arena */
    char *member_id;   /* in r's arena */
};

/* Kafka's SyncGroup error for a failed metadata write (GroupMetadataManager
 * storeGroup). */
static int16_t store_error(int err)
{
    switch (err) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR:
        return KERR_NOT_COORDINATOR;
    case KERR_REQUEST_TIMED_OUT:
        return KERR_REBALANCE_IN_PROGRESS;
    default:
        return (int16_t)err;
    }
}

/* The assignment could not be stored: every member waiting in SyncGroup
 * gets the error, and the group rebalances (Kafka's
 * resetAndPropagateAssignmentError, then maybePrepareRebalance). */
static void sync_failed(struct broker *b, struct group *g, int16_t err)
{
    log_info("group %s: generation %d's assignment could not be stored: %s", g->id, g->generation, kerr_name(err));
    for (int i = 0; i < g->nmembers; i++) {
        struct group_member *m = g->members[i];
        xfree(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        answer_sync(g, m, err);
    }
    g->pending_write = 0;
    prepare_rebalance(b, g, "its assignment could not be stored");
}

/* The leader's metadata write is replicated, or failed: done callback of
 * gstore_wait (also called at once when nothing needed waiting). */
static void sync_replicated(struct request *r)
{
    struct sync_wait *sw = r->state;
    struct group *g = coord_find(sw->b, kstr_c(sw->group_id));
    if (!g) {
        sync_respond(r, NULL, NULL, KERR_NOT_COORDINATOR); /* unloaded meanwhile */
        return;
    }
    if (g->pending_write != sw->token) {
        /* a new round began (its members were told so) */
        sync_respond(r, g, NULL, sw->err ? store_error(sw->err) : KERR_REBALANCE_IN_PROGRESS);
        return;
    }
    g->pending_write = 0;
    if (sw->err) {
        int16_t err = store_error(sw->err);
        sync_failed(sw->b, g, err);
        sync_respond(r, g, NULL, err);
        return;
    }
    g->state = GROUP_STABLE;
    for (int i = 0; i < g->nmembers; i++)
        answer_sync(g, g->members[i], 0);
    struct group_member *m = find_member(g, kstr_c(sw->member_id));
    sync_respond(r, g, m, m ? 0 : KERR_UNKNOWN_MEMBER_ID);
}

/* The leader sent the assignment: store it, and hand it out once stored
 * (in a cluster: replicated). */
static void sync_store(struct broker *b, struct request *r, struct group *g, struct group_member *leader)
{
    struct gstore_pos pos = {0};
    int werr = gstore_write_group(b, g, &pos);
    if (!b->cluster) {
        /* alone: the write is as durable as it gets (a failure is logged) */
        g->state = GROUP_STABLE;
        for (int i = 0; i < g->nmembers; i++)
            answer_sync(g, g->members[i], 0);
        return;
    }
    if (werr) {
        sync_failed(b, g, store_error(werr)); /* answers the leader too */
        return;
    }
    struct sync_wait *sw = arena_alloc(&r->arena, sizeof *sw);
    char *gid = handler_cstr(r, kstr_c(g->id)), *mid = handler_cstr(r, kstr_c(leader->id));
    if (!sw || !gid || !mid) {
        sync_failed(b, g, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    *sw = (struct sync_wait){.b = b, .group_id = gid, .member_id = mid};
    leader->sync_req = NULL; /* the wait owns r now */
    r->state = sw;
    sw->token = g->pending_write = ++b->coord->next_write;
    int rc = gstore_wait(b, r, &pos, &sw->w, &sw->err, sync_replicated);
    if (rc < 0)
        sw->err = KERR_UNKNOWN_SERVER_ERROR;
    if (rc != 0)
        sync_replicated(r);
}

int group_sync(struct broker *b, struct request *r, const struct SyncGroupRequest *req)
{
    struct SyncGroupResponse resp;
    SyncGroupResponse_init(&resp);
    int cerr = req->GroupId.len > 0 ? gstore_check_coordinator(b, req->GroupId) : 0;
    struct group *g = cerr ? NULL : coord_find(b, req->GroupId);
    int merr;
    struct group_member *m = member_for(g, req->MemberId, req->GroupInstanceId, &merr);
    int16_t err = 0;
    if (req->GroupId.len <= 0)
        err = KERR_INVALID_GROUP_ID;
    else if (cerr)
        err = (int16_t)cerr;
    else if (!m)
        err = (int16_t)merr;
    else if (req->GenerationId != g->generation)
        err = KERR_ILLEGAL_GENERATION;
    else if ((req->ProtocolType.len >= 0 && !keq(req->ProtocolType, g->protocol_type)) ||
             (req->ProtocolName.len >= 0 && !keq(req->ProtocolName, g->protocol)))
        err = KERR_INCONSISTENT_GROUP_PROTOCOL;
    else if (g->state == GROUP_PREPARING_REBALANCE)
        err = KERR_REBALANCE_IN_PROGRESS;
    if (err) {
        resp.ErrorCode = err;
        SyncGroupResponse_encode(&r->out, r->api_version, &resp);
        return API_DONE;
    }
    m->last_seen_ms = clock_mono_ms();
    if (g->state == GROUP_STABLE) {
        resp.Assignment = (kbytes){m->assignment, m->assignment ? m->assignment_len : 0};
        resp.ProtocolType = kstr_c(g->protocol_type);
        resp.ProtocolName = kstr_c(g->protocol);
        SyncGroupResponse_encode(&r->out, r->api_version, &resp);
        return API_DONE;
    }
    /* COMPLETING_REBALANCE: wait for the leader's assignment (or for its
     * write to be stored: a leader retrying meanwhile waits like the rest) */
    if (m->sync_req)
        answer_sync(g, m, KERR_REBALANCE_IN_PROGRESS);
    m->sync_req = r;
    if (g->leader && strcmp(g->leader, m->id) == 0 && !g->pending_write) {
        for (int i = 0; i < g->nmembers; i++) {
            struct group_member *o = g->members[i];
            xfree(o->assignment);
            o->assignment = NULL;
            o->assignment_len = 0;
            for (int32_t k = 0; k < req->Assignments.count; k++) {
                const struct SyncGroupRequest_SyncGroupRequestAssignment *a = &req->Assignments.items[k];
                if (!keq(a->MemberId, o->id))
                    continue;
                int32_t len = a->Assignment.len > 0 ? a->Assignment.len : 0;
                o->assignment = xmalloc((size_t)len + 1);
                if (!o->assignment) {
                    m->sync_req = NULL;
                    return API_CLOSE;
                }
                if (len)
                    memcpy(o->assignment, a->Assignment.ptr, (size_t)len);
                o->assignment_len = len;
            }
        }
        sync_store(b, r, g, m);
    }
    return API_PARKED;
}

int group_heartbeat(struct broker *b, const struct HeartbeatRequest *req)
{
    if (req->GroupId.len <= 0)
        return KERR_INVALID_GROUP_ID;
    int cerr = gstore_check_coordinator(b, req->GroupId);
    if (cerr)
        return cerr;
    struct group *g = coord_find(b, req->GroupId);
    int merr;
    struct group_member *m = member_for(g, req->MemberId, req->GroupInstanceId, &merr);
    if (!m)
        return merr;
    m->last_seen_ms = clock_mono_ms();
    if (req->GenerationId != g->generation)
        return KERR_ILLEGAL_GENERATION;
    if (g->state == GROUP_PREPARING_REBALANCE)
        return KERR_REBALANCE_IN_PROGRESS;
    return 0;
}

int group_leave_member(struct broker *b, struct group *g, kstr member_id, kstr instance_id)
{
    struct group_member *m = NULL;
    if (instance_id.len >= 0) {
        m = find_static(g, instance_id);
        if (m && member_id.len > 0 && !keq(member_id, m->id))
            return KERR_FENCED_INSTANCE_ID;
    } else {
        m = find_member(g, member_id);
    }
    if (!m)
        return KERR_UNKNOWN_MEMBER_ID;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i] == m) {
            log_info("group %s: member %s left", g->id, m->id);
            remove_member_at(g, i);
            break;
        }
    if (g->state == GROUP_PREPARING_REBALANCE)
        maybe_complete_join(b, g);
    else
        prepare_rebalance(b, g, "a member left");
    if (g->state == GROUP_PREPARING_REBALANCE && g->nmembers == 0)
        complete_join(b, g);
    return 0;
}

int group_delete(struct broker *b, kstr id)
{
    struct coordinator *c = b->coord;
    for (int i = 0; i < c->ngroups; i++) {
        struct group *g = c->groups[i];
        if (!keq(id, g->id))
            continue;
        if (g->nmembers > 0 || g->state != GROUP_EMPTY)
            return KERR_NON_EMPTY_GROUP;
        if (gstore_delete_group(b, g) < 0)
            return KERR_KAFKA_STORAGE_ERROR;
        group_release(g, KERR_COORDINATOR_NOT_AVAILABLE);
        c->groups[i] = c->groups[--c->ngroups];
        group_free(g);
        return 0;
    }
    return KERR_GROUP_ID_NOT_FOUND;
}

void group_restore(struct group *g, int32_t generation, kstr protocol_type, kstr protocol, kstr leader,
                   const struct group_restored_member *members, int n)
{
    /* replayed over a live group: its parked requests belong to a state
     * that is gone */
    group_release(g, KERR_NOT_COORDINATOR);
    for (int i = 0; i < g->nmembers; i++)
        member_free(g->members[i]);
    g->nmembers = 0;
    g->generation = generation;
    xfree(g->protocol_type);
    g->protocol_type = protocol_type.len > 0 ? kdup(protocol_type) : NULL;
    xfree(g->protocol);
    g->protocol = protocol.len >= 0 ? kdup(protocol) : NULL;
    xfree(g->leader);
    g->leader = leader.len >= 0 ? kdup(leader) : NULL;
    g->state = GROUP_EMPTY;
    bool stable = n > 0 && g->protocol && g->leader;
    for (int i = 0; i < n && stable; i++)
        stable = members[i].assignment.len > 0;
    if (!stable)
        return;
    g->members = xrealloc(g->members, (size_t)n * sizeof *g->members);
    if (!g->members) {
        g->capmembers = 0;
        return;
    }
    g->capmembers = n;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < n; i++) {
        const struct group_restored_member *r = &members[i];
        struct group_member *m = xcalloc(1, sizeof *m);
        if (!m)
            break;
        m->id = kdup(r->id);
        m->instance_id = kdup(r->instance_id);
        m->client_id = kdup(r->client_id);
        m->client_host = kdup(r->client_host);
        m->rebalance_timeout_ms = r->rebalance_timeout_ms;
        m->session_timeout_ms = r->session_timeout_ms;
        m->protocols = xcalloc(1, sizeof *m->protocols);
        m->assignment = xmalloc((size_t)r->assignment.len + 1);
        if (!m->id || !m->protocols || !m->assignment) {
            member_free(m);
            break;
        }
        m->nprotocols = 1;
        m->protocols[0].name = xstrdup(g->protocol);
        m->protocols[0].len = r->subscription.len > 0 ? r->subscription.len : 0;
        m->protocols[0].metadata = xmalloc((size_t)m->protocols[0].len + 1);
        if (!m->protocols[0].name || !m->protocols[0].metadata) {
            member_free(m);
            break;
        }
        if (m->protocols[0].len)
            memcpy(m->protocols[0].metadata, r->subscription.ptr, (size_t)m->protocols[0].len);
        memcpy(m->assignment, r->assignment.ptr, (size_t)r->assignment.len);
        m->assignment_len = r->assignment.len;
        m->last_seen_ms = now;
        g->members[g->nmembers++] = m;
    }
    g->state = g->nmembers == n ? GROUP_STABLE : GROUP_EMPTY;
    if (g->state == GROUP_EMPTY) {
        for (int i = 0; i < g->nmembers; i++)
            member_free(g->members[i]);
        g->nmembers = 0;
    }
}

void group_forget(struct broker *b, kstr id)
{
    struct coordinator *c = b->coord;
    for (int i = 0; i < c->ngroups; i++)
        if (keq(id, c->groups[i]->id) && c->groups[i]->nmembers == 0) {
            group_release(c->groups[i], KERR_NOT_COORDINATOR);
            group_free(c->groups[i]);
            c->groups[i] = c->groups[--c->ngroups];
            return;
        }
}

int coord_unload(struct broker *b, int32_t partition, int32_t npartitions)
{
    struct coordinator *c = b->coord;
    int n = 0;
    for (int i = c->ngroups - 1; i >= 0; i--) {
        struct group *g = c->groups[i];
        if (partition >= 0 && group_partition_for(g->id, strlen(g->id), npartitions) != partition)
            continue;
        group_release(g, KERR_NOT_COORDINATOR);
        c->groups[i] = c->groups[--c->ngroups];
        group_free(g);
        n++;
    }
    return n;
}

int group_check_commit(struct broker *b, kstr id, int32_t generation, kstr member_id, kstr instance_id,
                       struct group **out)
{
    if (id.len <= 0)
        return KERR_INVALID_GROUP_ID;
    struct group *g = coord_find(b, id);
    if (generation < 0 && member_id.len <= 0) {
        /* a commit from outside the group protocol (assign() consumers) */
        if (g && g->nmembers > 0)
            return KERR_UNKNOWN_MEMBER_ID;
        if (!g)
            g = group_new(b, id);
        if (!g)
            return KERR_UNKNOWN_SERVER_ERROR;
        *out = g;
        return 0;
    }
    int merr;
    struct group_member *m = member_for(g, member_id, instance_id, &merr);
    if (!m)
        return merr;
    if (generation != g->generation)
        return KERR_ILLEGAL_GENERATION;
    /* members of the current generation may commit while a rebalance is
     * being prepared (to save their progress before giving partitions up);
     * only between JoinGroup and the leader's SyncGroup is it refused */
    if (g->state == GROUP_COMPLETING_REBALANCE)
        return KERR_REBALANCE_IN_PROGRESS;
    m->last_seen_ms = clock_mono_ms();
    *out = g;
    return 0;
}

struct group_offset *group_get_offset(struct group *g, const char *topic, size_t topic_len, int32_t partition)
{
    for (int i = 0; i < g->noffsets; i++) {
        struct group_offset *o = &g->offsets[i];
        if (o->partition == partition && strlen(o->topic) == topic_len && memcmp(o->topic, topic, topic_len) == 0)
            return o;
    }
    return NULL;
}

int group_set_offset(struct group *g, const char *topic, int32_t partition, int64_t offset, int32_t epoch,
                     const char *metadata, int64_t commit_ms, int64_t log_end)
{
    struct group_offset *o = group_get_offset(g, topic, strlen(topic), partition);
    if (o && log_end > 0 && o->log_end > log_end)
        return 0; /* a later write already set it */
    if (!o) {
        if (g->noffsets == g->capoffsets) {
            int cap = g->capoffsets ? g->capoffsets * 2 : 16;
            struct group_offset *n = xrealloc(g->offsets, (size_t)cap * sizeof *n);
            if (!n)
                return -1;
            g->offsets = n;
            g->capoffsets = cap;
        }
        o = &g->offsets[g->noffsets];
        memset(o, 0, sizeof *o);
        o->topic = xstrdup(topic);
        if (!o->topic)
            return -1;
        o->partition = partition;
        g->noffsets++;
    }
    o->offset = offset;
    o->leader_epoch = epoch;
    set_str(&o->metadata, metadata ? metadata : "");
    o->commit_ms = commit_ms;
    if (log_end > 0)
        o->log_end = log_end;
    return 0;
}

bool group_remove_offset(struct group *g, const char *topic, int32_t partition)
{
    struct group_offset *o = group_get_offset(g, topic, strlen(topic), partition);
    if (!o)
        return false;
    xfree(o->topic);
    xfree(o->metadata);
    *o = g->offsets[--g->noffsets];
    return true;
}

/* Reads a ConsumerProtocolSubscription (v0+: int16 version, [string] topics,
 * ...) and says whether topic is among its topics. */
static bool subscription_has(const uint8_t *p, int32_t len, const char *topic)
{
    struct kread r;
    kread_init(&r, p, (size_t)len);
    kr_int16(&r);
    int32_t n = kr_array_len(&r, false, false, 2);
    for (int32_t i = 0; i < n && !r.err; i++) {
        kstr t = kr_str(&r, false, false);
        if (!r.err && kstr_eq(t, topic))
            return true;
    }
    return false;
}

bool group_subscribed(const struct group *g, const char *topic)
{
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0 || !g->protocol)
        return false;
    for (int i = 0; i < g->nmembers; i++) {
        const struct group_member *m = g->members[i];
        for (int p = 0; p < m->nprotocols; p++)
            if (strcmp(m->protocols[p].name, g->protocol) == 0 &&
                subscription_has(m->protocols[p].metadata, m->protocols[p].len, topic))
                return true;
    }
    return false;
}

void coord_tick(struct broker *b)
{
    struct coordinator *c = b->coord;
    gstore_tick(b);
    int64_t now = clock_mono_ms();
    for (int gi = 0; gi < c->ngroups; gi++) {
        struct group *g = c->groups[gi];
        bool removed = false;
        for (int i = g->npending - 1; i >= 0; i--)
            if (now > g->pending[i].expires_ms) {
                xfree(g->pending[i].id);
                g->pending[i] = g->pending[--g->npending];
            }
        for (int i = g->nmembers - 1; i >= 0; i--) {
            struct group_member *m = g->members[i];
            /* a member waiting in JoinGroup is bounded by the rebalance timeout instead */
            if (m->join_req)
                continue;
            if (now - m->last_seen_ms > m->session_timeout_ms) {
                log_info("group %s: member %s session timed out after %d ms", g->id, m->id, m->session_timeout_ms);
                remove_member_at(g, i);
                removed = true;
            }
        }
        if (!removed)
            continue;
        if (g->state == GROUP_PREPARING_REBALANCE)
            maybe_complete_join(b, g);
        else
            prepare_rebalance(b, g, "a member's session expired");
        if (g->state == GROUP_PREPARING_REBALANCE && g->nmembers == 0)
            complete_join(b, g);
    }
}

int coord_init(struct broker *b, char *err, size_t errlen)
{
    struct coordinator *c = xcalloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->coord = c;
    coord_broker = b;
    int64_t v;
    const struct config *cfg = b->cfg;
    c->initial_delay_ms = config_parse_i64(config_get(cfg, "group.initial.rebalance.delay.ms"), &v) == 0 ? v : 3000;
    c->min_session_ms = config_parse_i64(config_get(cfg, "group.min.session.timeout.ms"), &v) == 0 ? (int32_t)v : 6000;
    c->max_session_ms =
        config_parse_i64(config_get(cfg, "group.max.session.timeout.ms"), &v) == 0 ? (int32_t)v : 1800000;
    c->max_metadata_bytes =
        config_parse_i64(config_get(cfg, "offset.metadata.max.bytes"), &v) == 0 ? (int32_t)v : 4096;
    c->commit_timeout_ms =
        config_parse_i64(config_get(cfg, "offsets.commit.timeout.ms"), &v) == 0 && v > 0 ? v : 5000;
    return gstore_open(b, err, errlen);
}

void coord_free(struct broker *b)
{
    struct coordinator *c = b->coord;
    if (!c)
        return;
    for (int i = 0; i < c->ngroups; i++) {
        struct group *g = c->groups[i];
        /* parked requests belong to connections that are already closed */
        for (int k = 0; k < g->nmembers; k++) {
            if (g->members[k]->join_req)
                request_free(g->members[k]->join_req);
            if (g->members[k]->sync_req)
                request_free(g->members[k]->sync_req);
            g->members[k]->join_req = g->members[k]->sync_req = NULL;
        }
        group_free(g);
    }
    xfree(c->groups);
    xfree(c->loads);
    xfree(c);
    b->coord = NULL;
}
