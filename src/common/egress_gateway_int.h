/* egress_gateway_int.h -- what the files of the egress gateway share (egress_gateway.c: the
 * loop and its events; egress_conn.c: a connection's way from request to relay;
 * egress_client.c: clients, their counters and refusals, upstream URLs). Nothing else
 * includes it. Everything here runs on the gateway's thread unless it says otherwise. */
#ifndef SBX_EGRESS_GATEWAY_INT_H
#define SBX_EGRESS_GATEWAY_INT_H

#include "egress_gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "egress_proto.h"
#include "log.h"

#define MAX_ADDRS    8
#define MAX_REFUSALS 32
#define TICK_MS      500

enum ref_kind { R_DOOR, R_TIMER, R_DNS, R_LISTENER, R_CLIENT_SIDE, R_SERVER_SIDE };

typedef struct ep_ref {
    enum ref_kind kind;
    void *obj;
} ep_ref;

enum state { S_HEAD, S_SOCKS_REQ, S_RESOLVE, S_CONNECT, S_UPSTREAM, S_RELAY, S_CLOSING, S_DEAD };
enum proto { P_UNKNOWN, P_HTTP_CONNECT, P_HTTP_PLAIN, P_SOCKS };
enum up_step { U_HTTP, U_SOCKS_GREET, U_SOCKS_AUTH, U_SOCKS_CONN };

typedef struct rbuf {
    char *d;
    size_t off, len; /* data is d[off, off+len) */
} rbuf;

/* The pipe one direction of a relay splices through (splice(2): the bytes never come up into
 * the gateway's memory). r < 0: none, that direction copies through its rbuf instead. */
typedef struct spipe {
    int r, w;
    size_t len; /* bytes in the pipe */
} spipe;

struct egress_client {
    egress_gateway *g;
    atomic_int refs;
    egress_scope *scope;
    bool has_up;
    egress_upstream up;
    atomic_uint_fast64_t bytes_in, bytes_out, conns, refused;
    pthread_mutex_t mu;           /* refusals */
    char *lines[2][MAX_REFUSALS]; /* [0] refusals, [1] failures: "HOST:PORT\tREASON" */
    int nlines[2];
    atomic_uint_fast64_t failed;
    egress_refusal_fn on_refusal; /* mu */
    void *on_refusal_ud;
    void (*on_refusal_release)(void *ud);
    bool closed; /* loop thread only */
    /* scope, has_up and up are guarded by mu (egress_client_set_scope replaces them) */
    struct listener *listeners; /* loop thread only */
};

typedef struct listener {
    ep_ref ref;
    int fd;
    egress_client *cl;
    struct listener *next;
} listener;

typedef struct conn {
    ep_ref cref, sref;
    int cfd, sfd;
    uint32_t cev, sev; /* interest registered */
    enum state st;
    enum proto proto;
    enum up_step up;
    egress_client *cl;
    char head[EGRESS_HEAD_MAX];
    size_t hlen;
    size_t greet_used;
    char host[EGRESS_HOST_MAX]; /* destination asked for */
    uint16_t port;
    char *fwd; /* absolute-URI: the rewritten head (+ body bytes) to send first */
    size_t fwd_len;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t alen[MAX_ADDRS];
    int naddr, ai;
    char refuse_why[200]; /* the last policy refusal among the addresses */
    /* a lookup by the resolver thread: it reads rhost, writes res and gai_rc (under g->rmu) */
    char rhost[EGRESS_HOST_MAX];
    struct addrinfo *res;
    int gai_rc;
    struct conn *rnext;
    bool resolving, zombie;
    rbuf c2s, s2c; /* replies, heads, handshakes; in the relay, what goes before the pipes */
    spipe pc2s, ps2c;
    bool c_eof, s_eof, s_shut, c_shut;
    /* the relay is edge-triggered: what each side may do until it says EAGAIN */
    bool c_rd, c_wr, s_rd, s_wr;
    bool ready; /* on g->ready: its turn ran out with bytes still moving */
    struct conn *ready_next;
    char upbuf[600];
    size_t uplen;
    int conn_err; /* errno of the last failed connect */
    bool has_up;
    egress_upstream upx; /* the client's upstream when the request came (copied) */
    int64_t born, phase_deadline, last;
    struct conn *prev, *next, *free_next;
} conn;

typedef struct cmd {
    enum { C_ADOPT, C_FREE } op;
    egress_client *cl;
    int fd;
    struct cmd *next;
} cmd;

struct egress_gateway {
    const egress_policy *pol;
    int ep, door, timer, dnsp[2];
    ep_ref door_ref, timer_ref, dns_ref;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    cmd *q, *q_tail;
    conn *conns, *dead;
    conn *ready; /* relays to pump again before the next wait */
    int nconns;
    atomic_int resolving;
    atomic_uint_fast64_t bytes_in, bytes_out, nconn_total, refused, failed;
    /* the resolver thread: blocking getaddrinfo off the loop, one name at a time; a finished
     * lookup's conn pointer is written to dnsp[1] */
    pthread_t rth;
    bool rth_running;
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
    conn *rq, *rq_tail;
    bool rstop;
};

/* egress_gateway.c: the resolver thread (pthread start routine). */
void *egw_resolver(void *arg);

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* egress_client.c */
void egw_client_unref(egress_client *c);
void egw_record_line(egress_client *c, int k, const char *host, uint16_t port, const char *why);
/* egress_gateway.c: the relay */
void egw_relay_open(conn *c);
void egw_pipe_close(spipe *p);
/* egress_conn.c */
void egw_rearm(egress_gateway *g, conn *c);
void egw_conn_close(egress_gateway *g, conn *c);
void egw_conn_release(conn *c);
void egw_reap_dead(egress_gateway *g);
void egw_to_client(conn *c, const void *p, size_t n);
void egw_fail_http(conn *c, int status, const char *reason, const char *text);
void egw_answer_fail(egress_gateway *g, conn *c, bool policy, const char *why);
void egw_dns_done(egress_gateway *g, conn *c);
void egw_try_connect(egress_gateway *g, conn *c);
void egw_connected(egress_gateway *g, conn *c);
void egw_start_relay(egress_gateway *g, conn *c);
void egw_upstream_step(egress_gateway *g, conn *c);
void egw_on_head(egress_gateway *g, conn *c);

#endif
