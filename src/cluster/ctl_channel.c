/* ctl_channel.c: this broker's requests to the active controller
 * (BrokerRegistration, BrokerHeartbeat, AlterPartition, CreateTopics for
 * auto-creation), sent one at a time on a thread of its own over a blocking
 * connection, so that a slow or unreachable controller never stalls the
 * loop thread.  Answers go back to the loop thread as EV_CHANNEL events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kconn.h"
#include "cluster/cluster_int.h"
#include "common/alloc.h"
#include "common/log.h"

#define CHANNEL_TIMEOUT_MS 3000

struct chan_item {
    struct chan_item *next;
    char host[256];
    int port;
    int16_t key, version;
    uint8_t *body;
    size_t len;
    void *cookie;
};

struct ctl_channel {
    struct cluster *c;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct chan_item *head, *tail;
    bool stop;
    char client_id[64];
};

static void answer(struct ctl_channel *ch, struct chan_item *it, int status, const uint8_t *body, size_t len)
{
    struct cl_event *ev = xcalloc(1, sizeof *ev);
    if (!ev)
        abort(); /* the loop thread would wait for this answer forever */
    ev->type = EV_CHANNEL;
    ev->status = status;
    ev->cookie = it->cookie;
    if (status == 0 && len > 0) {
        ev->buf = xmalloc(len);
        if (!ev->buf)
            abort();
        memcpy(ev->buf, body, len);
        ev->len = len;
    }
    cluster_push(ch->c, ev);
}

static void *channel_main(void *arg)
{
    struct ctl_channel *ch = arg;
    struct kconn conn;
    memset(&conn, 0, sizeof conn);
    conn.fd = -1;
    char err[256];
    struct obuf w;
    obuf_init(&w);
    struct kconn_frame frame = {0};
    for (;;) {
        pthread_mutex_lock(&ch->mu);
        while (!ch->head && !ch->stop)
            pthread_cond_wait(&ch->cv, &ch->mu);
        struct chan_item *it = ch->head;
        if (it) {
            ch->head = it->next;
            if (!ch->head)
                ch->tail = NULL;
        }
        bool stop = ch->stop;
        pthread_mutex_unlock(&ch->mu);
        if (!it)
            break;
        if (stop) {
            answer(ch, it, -1, NULL, 0);
        } else {
            if (conn.fd >= 0 && (strcmp(conn.host, it->host) || conn.port != it->port))
                kconn_close(&conn);
            int rc = 0;
            if (conn.fd < 0)
                rc = kconn_open(&conn, it->host, it->port, CHANNEL_TIMEOUT_MS, ch->client_id, 0, err, sizeof err);
            struct kread body;
            if (rc == 0) {
                kconn_begin(&conn, &w, it->key, it->version);
                obuf_put(&w, it->body, it->len);
                rc = kconn_roundtrip(&conn, &w, &frame, &body);
            }
            if (rc == 0) {
                answer(ch, it, 0, body.p, kr_left(&body));
            } else {
                log_debug("controller channel to %s:%d: %s", it->host, it->port, err);
                kconn_close(&conn);
                answer(ch, it, -1, NULL, 0);
            }
        }
        xfree(it->body);
        xfree(it);
    }
    kconn_close(&conn);
    kconn_frame_free(&frame);
    obuf_free(&w);
    return NULL;
}

struct ctl_channel *ctl_channel_new(struct cluster *c)
{
    struct ctl_channel *ch = xcalloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->c = c;
    snprintf(ch->client_id, sizeof ch->client_id, "shopstream-broker-%d", c->node_id);
    pthread_mutex_init(&ch->mu, NULL);
    pthread_cond_init(&ch->cv, NULL);
    if (pthread_create(&ch->thread, NULL, channel_main, ch) != 0) {
        pthread_mutex_destroy(&ch->mu);
        pthread_cond_destroy(&ch->cv);
        xfree(ch);
        return NULL;
    }
    return ch;
}

void ctl_channel_free(struct ctl_channel *ch)
{
    pthread_mutex_lock(&ch->mu);
    ch->stop = true;
    pthread_cond_signal(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    pthread_join(ch->thread, NULL);
    pthread_mutex_destroy(&ch->mu);
    pthread_cond_destroy(&ch->cv);
    xfree(ch);
}

int ctl_channel_send(struct ctl_channel *ch, const char *host, int port, int16_t key, int16_t version,
                     const struct obuf *body, void *cookie)
{
    if (body->oom)
        return -1;
    struct chan_item *it = xcalloc(1, sizeof *it);
    if (!it)
        return -1;
    snprintf(it->host, sizeof it->host, "%s", host);
    it->port = port;
    it->key = key;
    it->version = version;
    it->cookie = cookie;
    it->len = body->len;
    it->body = xmalloc(body->len ? body->len : 1);
    if (!it->body) {
        xfree(it);
        return -1;
    }
    memcpy(it->body, body->data, body->len);
    pthread_mutex_lock(&ch->mu);
    if (ch->stop) {
        pthread_mutex_unlock(&ch->mu);
        xfree(it->body);
        xfree(it);
        return -1;
    }
    if (ch->tail)
        ch->tail->next = it;
    else
        ch->head = it;
    ch->tail = it;
    pthread_cond_signal(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    return 0;
}
