/* egress_gateway.c -- the egress gateway's loop: listeners, connections, resolving, upstream
 * handshakes and the relay (see egress_gateway.h).
 *
 * One thread runs one level-triggered epoll set. Every fd it watches carries an ep_ref saying
 * what it is (the door, the timer, the resolver pipe, a listener, either side of a
 * connection). A connection goes HEAD (reading the request) -> RESOLVE (DNS, off the loop via
 * getaddrinfo_a) -> CONNECT (non-blocking) -> [UPSTREAM handshake] -> RELAY, or to CLOSING (a
 * reply is flushed, then it closes). Connections closed while handling a batch of events are
 * freed after the batch; one whose lookup is still running is freed when the lookup ends.
 */
#define _GNU_SOURCE
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
    struct gaicb gcb;
    struct addrinfo hints;
    bool resolving, zombie;
    rbuf c2s, s2c;
    bool c_eof, s_eof, s_shut, c_shut;
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
    int nconns;
    atomic_int resolving;
    atomic_uint_fast64_t bytes_in, bytes_out, nconn_total, refused, failed;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- clients ----------------------------------------------------------------------------- */

static void client_unref(egress_client *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    egress_scope_free(c->scope);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < c->nlines[k]; i++)
            free(c->lines[k][i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

egress_client *egress_client_new(egress_gateway *g, egress_scope *scope,
                                 const egress_upstream *up) {
    egress_client *c = calloc(1, sizeof *c);
    if (!c) {
        egress_scope_free(scope);
        return NULL;
    }
    c->g = g;
    atomic_init(&c->refs, 1);
    c->scope = scope;
    if (up) {
        c->has_up = true;
        c->up = *up;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void post(egress_gateway *g, cmd *m) {
    pthread_mutex_lock(&g->mu);
    if (g->q_tail)
        g->q_tail->next = m;
    else
        g->q = m;
    g->q_tail = m;
    pthread_mutex_unlock(&g->mu);
    uint64_t one = 1;
    (void)!write(g->door, &one, sizeof one);
}

sbx_code egress_client_adopt(egress_client *c, int listen_fd, sbx_err *e) {
    cmd *m = calloc(1, sizeof *m);
    if (!m) {
        close(listen_fd);
        return sbx_fail(e, SBX_EINTERNAL, "egress: out of memory");
    }
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = errno;
        close(listen_fd);
        free(m);
        return sbx_fail_errno(e, err, "egress: listener");
    }
    m->op = C_ADOPT;
    m->cl = c;
    m->fd = listen_fd;
    atomic_fetch_add(&c->refs, 1); /* held by the command until the loop takes it */
    post(c->g, m);
    return SBX_OK;
}

sbx_code egress_client_listen(egress_client *c, uint16_t *port, sbx_err *e) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return sbx_fail_errno(e, errno, "egress: socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 256) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        int err = errno;
        close(fd);
        return sbx_fail_errno(e, err, "egress: listen on 127.0.0.1");
    }
    sbx_code rc = egress_client_adopt(c, fd, e);
    if (rc == SBX_OK)
        *port = ntohs(a.sin_port);
    return rc;
}

void egress_client_set_scope(egress_client *c, egress_scope *scope, const egress_upstream *up) {
    pthread_mutex_lock(&c->mu);
    egress_scope *old = c->scope;
    c->scope = scope;
    c->has_up = up != NULL;
    if (up)
        c->up = *up;
    pthread_mutex_unlock(&c->mu);
    egress_scope_free(old);
}

void egress_client_stats(const egress_client *c, egress_stats *out) {
    out->bytes_in = atomic_load(&c->bytes_in);
    out->bytes_out = atomic_load(&c->bytes_out);
    out->connections = atomic_load(&c->conns);
    out->refused = atomic_load(&c->refused);
    out->failed = atomic_load(&c->failed);
}

static cJSON *lines_of(egress_client *c, int k) {
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nlines[k]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(c->lines[k][i]));
    pthread_mutex_unlock(&c->mu);
    return a;
}

cJSON *egress_client_refusals(egress_client *c) {
    return lines_of(c, 0);
}

cJSON *egress_client_failures(egress_client *c) {
    return lines_of(c, 1);
}

void egress_client_free(egress_client *c) {
    if (!c)
        return;
    cmd *m = calloc(1, sizeof *m);
    if (!m) { /* cannot reach the loop: leave the client open rather than free it under it */
        LOG_E("egress", "out of memory closing a client");
        return;
    }
    m->op = C_FREE;
    m->cl = c;
    m->fd = -1;
    post(c->g, m);
}

void egress_gateway_totals(const egress_gateway *g, egress_stats *out) {
    out->bytes_in = atomic_load(&g->bytes_in);
    out->bytes_out = atomic_load(&g->bytes_out);
    out->connections = atomic_load(&g->nconn_total);
    out->refused = atomic_load(&g->refused);
    out->failed = atomic_load(&g->failed);
}

/* Note a refusal (k 0) or a failure (k 1) of host:port, deduplicated, capped. */
static void record_line(egress_client *c, int k, const char *host, uint16_t port, const char *why) {
    char line[EGRESS_HOST_MAX + 260];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(line, sizeof line, "%s%s%s:%u\t%s", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port,
             why);
    if (k == 0) {
        atomic_fetch_add(&c->refused, 1);
        atomic_fetch_add(&c->g->refused, 1);
    } else {
        atomic_fetch_add(&c->failed, 1);
        atomic_fetch_add(&c->g->failed, 1);
    }
    pthread_mutex_lock(&c->mu);
    bool seen = false;
    for (int i = 0; i < c->nlines[k] && !seen; i++)
        seen = !strcmp(c->lines[k][i], line);
    if (!seen && c->nlines[k] < MAX_REFUSALS)
        if ((c->lines[k][c->nlines[k]] = strdup(line)))
            c->nlines[k]++;
    pthread_mutex_unlock(&c->mu);
}

/* ---- upstream URLs ----------------------------------------------------------------------- */

sbx_code egress_upstream_parse(const char *url, const char *user, const char *pass,
                               const char *field, egress_upstream *u, sbx_err *e) {
    egress_upstream v = {0};
    const char *p = strstr(url, "://");
    size_t sl = p ? (size_t)(p - url) : 0;
    if (!p || !sl || sl >= sizeof v.scheme)
        return sbx_fail(e, SBX_EINVAL, "%s: must be http://host:port or socks5://host:port", field);
    memcpy(v.scheme, url, sl);
    for (char *s = v.scheme; *s; s++)
        *s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    if (!strcmp(v.scheme, "socks5h"))
        strcpy(v.scheme, "socks5");
    if (strcmp(v.scheme, "http") && strcmp(v.scheme, "socks5"))
        return sbx_fail(e, SBX_EINVAL, "%s: scheme %s is not http or socks5", field, v.scheme);
    p += 3;
    const char *at = strrchr(p, '@');
    if (at) { /* user:pass@ in the URL */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ul = colon ? (size_t)(colon - p) : (size_t)(at - p);
        size_t pl = colon ? (size_t)(at - colon - 1) : 0;
        if (ul >= sizeof v.user || pl >= sizeof v.pass)
            return sbx_fail(e, SBX_EINVAL, "%s: credentials too long", field);
        memcpy(v.user, p, ul);
        if (colon)
            memcpy(v.pass, colon + 1, pl);
        v.has_auth = true;
        p = at + 1;
    }
    size_t hl = strcspn(p, "/");
    char auth[300];
    if (hl == 0 || hl >= sizeof auth)
        return sbx_fail(e, SBX_EINVAL, "%s: no host", field);
    memcpy(auth, p, hl);
    auth[hl] = 0;
    /* reuse the HTTP authority parser through a synthetic CONNECT line */
    char line[400];
    snprintf(line, sizeof line, "CONNECT %s HTTP/1.1\r\n\r\n", auth);
    egress_http_req r;
    if (egress_http_parse(line, strlen(line), &r) != 1)
        return sbx_fail(e, SBX_EINVAL, "%s: needs host:port", field);
    snprintf(v.host, sizeof v.host, "%s", r.host);
    v.port = r.port;
    if (user && *user) {
        if (strlen(user) >= sizeof v.user || (pass && strlen(pass) >= sizeof v.pass))
            return sbx_fail(e, SBX_EINVAL, "%s: credentials too long", field);
        snprintf(v.user, sizeof v.user, "%s", user);
        snprintf(v.pass, sizeof v.pass, "%s", pass ? pass : "");
        v.has_auth = true;
    }
    *u = v;
    return SBX_OK;
}

/* ---- connections ------------------------------------------------------------------------- */

static void watch(egress_gateway *g, int fd, uint32_t *have, uint32_t want, ep_ref *ref) {
    if (fd < 0 || *have == want)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = ref};
    if (*have == 0xffffffffu)
        epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev);
    else
        epoll_ctl(g->ep, EPOLL_CTL_MOD, fd, &ev);
    *have = want;
}

/* Recompute what each side waits for. */
static void rearm(egress_gateway *g, conn *c) {
    if (c->st == S_DEAD)
        return;
    uint32_t cw = 0, sw = 0;
    switch (c->st) {
    case S_HEAD:
    case S_SOCKS_REQ:
        cw = EPOLLIN | (c->s2c.len ? EPOLLOUT : 0); /* a SOCKS5 method reply */
        break;
    case S_RESOLVE:
        cw = c->s2c.len ? EPOLLOUT : 0;
        break;
    case S_CONNECT:
        cw = c->s2c.len ? EPOLLOUT : 0;
        sw = EPOLLOUT;
        break;
    case S_UPSTREAM:
        cw = c->s2c.len ? EPOLLOUT : 0;
        sw = EPOLLIN | (c->c2s.len ? EPOLLOUT : 0);
        break;
    case S_RELAY:
        if (!c->c_eof && c->c2s.off + c->c2s.len < EGRESS_RELAY_BUF)
            cw |= EPOLLIN;
        if (c->s2c.len)
            cw |= EPOLLOUT;
        if (!c->s_eof && c->s2c.off + c->s2c.len < EGRESS_RELAY_BUF)
            sw |= EPOLLIN;
        if (c->c2s.len)
            sw |= EPOLLOUT;
        break;
    case S_CLOSING: /* flush the answer, then read (and drop) until the client closes */
        cw = c->s2c.len || !c->c_shut ? EPOLLOUT : EPOLLIN;
        break;
    default:
        break;
    }
    watch(g, c->cfd, &c->cev, cw, &c->cref);
    watch(g, c->sfd, &c->sev, sw, &c->sref);
}

static void conn_close(egress_gateway *g, conn *c) {
    if (c->st == S_DEAD)
        return;
    c->st = S_DEAD;
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->sfd >= 0)
        close(c->sfd);
    c->cfd = c->sfd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->nconns--;
    if (c->resolving) {
        c->zombie = true; /* freed when its lookup ends */
        return;
    }
    c->free_next = g->dead;
    g->dead = c;
}

static void conn_release(conn *c) {
    free(c->c2s.d);
    free(c->s2c.d);
    free(c->fwd);
    client_unref(c->cl);
    free(c);
}

static void reap_dead(egress_gateway *g) {
    while (g->dead) {
        conn *c = g->dead;
        g->dead = c->free_next;
        conn_release(c);
    }
}

/* Queue bytes for the client (replies): into s2c. */
static void to_client(conn *c, const void *p, size_t n) {
    if (!c->s2c.d && !(c->s2c.d = malloc(EGRESS_RELAY_BUF)))
        return;
    if (c->s2c.off + c->s2c.len + n > EGRESS_RELAY_BUF)
        return;
    memcpy(c->s2c.d + c->s2c.off + c->s2c.len, p, n);
    c->s2c.len += n;
}

static void fail_http(conn *c, int status, const char *reason, const char *text) {
    char body[600], head[200];
    int bl = snprintf(body, sizeof body, "%s\n", text);
    if (bl < 0 || bl >= (int)sizeof body)
        bl = (int)sizeof body - 1;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n",
                      status, reason, bl);
    to_client(c, head, (size_t)hl);
    to_client(c, body, (size_t)bl);
}

/* Answer the client that its destination failed (refused by the policy, or unreachable), and
 * flush that before closing. */
static void answer_fail(egress_gateway *g, conn *c, bool policy, const char *why) {
    record_line(c->cl, policy ? 0 : 1, c->host, c->port, why);
    if (c->proto == P_SOCKS) {
        unsigned char rep[10];
        egress_socks_reply(policy ? 2 : 5, rep);
        to_client(c, rep, sizeof rep);
    } else {
        char text[EGRESS_HOST_MAX + 300];
        bool v6 = strchr(c->host, ':') != NULL;
        snprintf(text, sizeof text, "sandbox: network access to %s%s%s:%u %s: %s", v6 ? "[" : "",
                 c->host, v6 ? "]" : "", (unsigned)c->port, policy ? "was refused" : "failed", why);
        if (policy)
            fail_http(c, 403, "Forbidden", text);
        else
            fail_http(c, 502, "Bad Gateway", text);
    }
    if (c->sfd >= 0) {
        if (c->sev != 0xffffffffu)
            epoll_ctl(g->ep, EPOLL_CTL_DEL, c->sfd, NULL);
        close(c->sfd);
        c->sfd = -1;
    }
    c->st = S_CLOSING;
}

static void start_relay(egress_gateway *g, conn *c);
static void try_connect(egress_gateway *g, conn *c);

/* Where the TCP connection goes: the destination, or the upstream proxy. */
static const char *target_host(const conn *c) {
    return c->has_up ? c->upx.host : c->host;
}
static uint16_t target_port(const conn *c) {
    return c->has_up ? c->upx.port : c->port;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void add_addr(conn *c, const struct sockaddr *sa, socklen_t len) {
    if (c->naddr >= MAX_ADDRS || len > sizeof c->addrs[0])
        return;
    memcpy(&c->addrs[c->naddr], sa, len);
    set_port(&c->addrs[c->naddr], target_port(c));
    c->alen[c->naddr++] = len;
}

static void dns_notify(union sigval v) {
    conn *c = v.sival_ptr;
    egress_gateway *g = c->cl->g;
    (void)!write(g->dnsp[1], &c, sizeof c);
}

/* The name is allowed: find addresses for the TCP target (EGRESS_HOSTS, a literal, or DNS). */
static void resolve(egress_gateway *g, conn *c) {
    const char *h = target_host(c);
    struct sockaddr_storage ss;
    socklen_t len;
    if (egress_hosts_lookup(g->pol, h, &ss, &len)) {
        add_addr(c, (struct sockaddr *)&ss, len);
        try_connect(g, c);
        return;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(h, NULL, &hints, &res) == 0) {
        add_addr(c, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        try_connect(g, c);
        return;
    }
    c->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    c->gcb = (struct gaicb){.ar_name = target_host(c), .ar_request = &c->hints};
    struct gaicb *list[1] = {&c->gcb};
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD,
                           .sigev_notify_function = dns_notify,
                           .sigev_value.sival_ptr = c};
    c->st = S_RESOLVE;
    c->phase_deadline = now_ms() + EGRESS_CONNECT_TIMEOUT_MS;
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, &sev) != 0) {
        answer_fail(g, c, false, "net::ERR_NAME_NOT_RESOLVED (cannot resolve the name)");
        return;
    }
    c->resolving = true;
    atomic_fetch_add(&g->resolving, 1);
}

static void dns_done(egress_gateway *g, conn *c) {
    c->resolving = false;
    atomic_fetch_sub(&g->resolving, 1);
    int rc = gai_error(&c->gcb);
    struct addrinfo *res = c->gcb.ar_result;
    if (c->zombie) {
        if (res)
            freeaddrinfo(res);
        conn_release(c);
        return;
    }
    if (c->st != S_RESOLVE) { /* answered meanwhile (timed out) */
        if (res)
            freeaddrinfo(res);
        c->gcb.ar_result = NULL;
        return;
    }
    if (rc != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        answer_fail(g, c, false, "net::ERR_NAME_NOT_RESOLVED (the name does not resolve)");
        rearm(g, c);
        return;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
            add_addr(c, a->ai_addr, a->ai_addrlen);
    freeaddrinfo(res);
    c->gcb.ar_result = NULL;
    try_connect(g, c);
    rearm(g, c);
}

/* Connect to the next address the policy allows. */
static void try_connect(egress_gateway *g, conn *c) {
    const egress_policy *p = g->pol;
    while (c->ai < c->naddr) {
        struct sockaddr *sa = (struct sockaddr *)&c->addrs[c->ai];
        socklen_t len = c->alen[c->ai++];
        if (!egress_check_addr(p, target_host(c), sa, c->refuse_why, sizeof c->refuse_why))
            continue;
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
            c->conn_err = errno;
            close(fd);
            continue;
        }
        c->sfd = fd;
        c->sev = 0xffffffffu;
        c->st = S_CONNECT;
        c->phase_deadline = now_ms() + EGRESS_CONNECT_TIMEOUT_MS;
        return;
    }
    if (c->refuse_why[0])
        answer_fail(g, c, true, c->refuse_why);
    else
        answer_fail(g, c, false,
                    !c->naddr ? "net::ERR_NAME_NOT_RESOLVED (no address)"
                    : c->conn_err == ECONNREFUSED
                        ? "net::ERR_CONNECTION_REFUSED (connection refused)"
                    : c->conn_err == ETIMEDOUT ? "net::ERR_CONNECTION_TIMED_OUT (timed out)"
                    : c->conn_err == ENETUNREACH || c->conn_err == EHOSTUNREACH
                        ? "net::ERR_ADDRESS_UNREACHABLE (unreachable)"
                        : "net::ERR_CONNECTION_FAILED (the connection failed)");
}

/* Bytes to the server (upstream handshakes and the rewritten head): into c2s. */
static void to_server(conn *c, const void *p, size_t n) {
    if (c->c2s.off + c->c2s.len + n > EGRESS_RELAY_BUF)
        return;
    memcpy(c->c2s.d + c->c2s.off + c->c2s.len, p, n);
    c->c2s.len += n;
}

static bool alloc_bufs(conn *c) {
    if (!c->c2s.d)
        c->c2s.d = malloc(EGRESS_RELAY_BUF);
    if (!c->s2c.d)
        c->s2c.d = malloc(EGRESS_RELAY_BUF);
    return c->c2s.d && c->s2c.d;
}

static void upstream_begin(egress_gateway *g, conn *c) {
    const egress_upstream *u = &c->upx;
    c->st = S_UPSTREAM;
    c->uplen = 0;
    if (!strcmp(u->scheme, "http")) {
        char req[EGRESS_HOST_MAX + 800];
        bool v6 = strchr(c->host, ':') != NULL;
        int n = snprintf(req, sizeof req, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n",
                         v6 ? "[" : "", c->host, v6 ? "]" : "", (unsigned)c->port, v6 ? "[" : "",
                         c->host, v6 ? "]" : "", (unsigned)c->port);
        if (u->has_auth) {
            char cred[520], b64[720];
            int cl = snprintf(cred, sizeof cred, "%s:%s", u->user, u->pass);
            static const char tb[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            size_t o = 0;
            for (int i = 0; i < cl; i += 3) {
                uint32_t v = (uint32_t)(unsigned char)cred[i] << 16;
                if (i + 1 < cl)
                    v |= (uint32_t)(unsigned char)cred[i + 1] << 8;
                if (i + 2 < cl)
                    v |= (unsigned char)cred[i + 2];
                b64[o++] = tb[v >> 18 & 63];
                b64[o++] = tb[v >> 12 & 63];
                b64[o++] = i + 1 < cl ? tb[v >> 6 & 63] : '=';
                b64[o++] = i + 2 < cl ? tb[v & 63] : '=';
            }
            b64[o] = 0;
            n +=
                snprintf(req + n, sizeof req - (size_t)n, "Proxy-Authorization: Basic %s\r\n", b64);
        }
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
        c->up = U_HTTP;
        to_server(c, req, (size_t)n);
    } else {
        unsigned char greet[4] = {5, u->has_auth ? 2 : 1, u->has_auth ? 2 : 0, 0};
        c->up = U_SOCKS_GREET;
        to_server(c, greet, u->has_auth ? 4 : 3);
    }
    (void)g;
}

/* The TCP connection is up: start the upstream handshake, or the relay. */
static void connected(egress_gateway *g, conn *c) {
    atomic_fetch_add(&c->cl->conns, 1);
    atomic_fetch_add(&g->nconn_total, 1);
    if (!alloc_bufs(c)) {
        conn_close(g, c);
        return;
    }
    if (c->has_up)
        upstream_begin(g, c);
    else
        start_relay(g, c);
}

static void start_relay(egress_gateway *g, conn *c) {
    c->st = S_RELAY;
    c->last = now_ms();
    if (c->proto == P_HTTP_CONNECT) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        to_client(c, ok, sizeof ok - 1);
        /* bytes the client sent after the head (a TLS hello sent early) */
        if (c->hlen > c->greet_used)
            to_server(c, c->head + c->greet_used, c->hlen - c->greet_used);
    } else if (c->proto == P_SOCKS) {
        unsigned char rep[10];
        egress_socks_reply(0, rep);
        to_client(c, rep, sizeof rep);
        if (c->hlen > c->greet_used)
            to_server(c, c->head + c->greet_used, c->hlen - c->greet_used);
    } else if (c->fwd) {
        to_server(c, c->fwd, c->fwd_len);
        free(c->fwd);
        c->fwd = NULL;
    }
    (void)g;
}

/* A reply from the upstream proxy in c->upbuf: advance the handshake. */
static void upstream_step(egress_gateway *g, conn *c) {
    const egress_upstream *u = &c->upx;
    unsigned char *b = (unsigned char *)c->upbuf;
    switch (c->up) {
    case U_HTTP: {
        char *end = memmem(c->upbuf, c->uplen, "\r\n\r\n", 4);
        if (!end) {
            if (c->uplen >= sizeof c->upbuf)
                answer_fail(g, c, false, "the upstream proxy's answer is too long");
            return;
        }
        if (c->uplen < 12 || strncmp(c->upbuf, "HTTP/1.", 7) || c->upbuf[9] != '2') {
            char why[80];
            snprintf(why, sizeof why, "the upstream proxy answered %.3s",
                     c->uplen >= 12 ? c->upbuf + 9 : "???");
            answer_fail(g, c, false, why);
            return;
        }
        start_relay(g, c);
        return;
    }
    case U_SOCKS_GREET:
        if (c->uplen < 2)
            return;
        if (b[0] != 5 || (b[1] != 0 && !(b[1] == 2 && u->has_auth))) {
            answer_fail(g, c, false, "the upstream SOCKS5 proxy refused our methods");
            return;
        }
        if (b[1] == 2) {
            unsigned char up[600];
            size_t n = egress_socks_userpass(u->user, u->pass, up, sizeof up);
            c->up = U_SOCKS_AUTH;
            c->uplen = 0;
            to_server(c, up, n);
            return;
        }
        /* fall through: no authentication */
        c->uplen = 0;
        goto send_connect;
    case U_SOCKS_AUTH:
        if (c->uplen < 2)
            return;
        if (b[1] != 0) {
            answer_fail(g, c, false, "the upstream SOCKS5 proxy refused the credentials");
            return;
        }
        c->uplen = 0;
    send_connect : {
        unsigned char rq[300];
        size_t n = egress_socks_connect_req(c->host, c->port, rq, sizeof rq);
        c->up = U_SOCKS_CONN;
        to_server(c, rq, n);
        return;
    }
    case U_SOCKS_CONN: {
        if (c->uplen < 5)
            return;
        size_t need = b[3] == 1 ? 10 : b[3] == 4 ? 22 : b[3] == 3 ? 7u + b[4] : 0;
        if (!need || b[0] != 5) {
            answer_fail(g, c, false, "the upstream SOCKS5 proxy answered badly");
            return;
        }
        if (c->uplen < need)
            return;
        if (b[1] != 0) {
            char why[80];
            snprintf(why, sizeof why, "the upstream SOCKS5 proxy refused (reply %u)", b[1]);
            answer_fail(g, c, false, why);
            return;
        }
        /* bytes past the reply belong to the destination */
        if (c->uplen > need) {
            to_client(c, c->upbuf + need, c->uplen - need);
            atomic_fetch_add(&c->cl->bytes_in, c->uplen - need);
        }
        start_relay(g, c);
        return;
    }
    }
}

/* The request is known (c->host, c->port, c->proto): check the name, then resolve. */
static void destination(egress_gateway *g, conn *c) {
    char why[200];
    pthread_mutex_lock(&c->cl->mu); /* scope and upstream may be replaced (set_scope) */
    bool ok = egress_check_name(c->cl->scope, c->host, why, sizeof why);
    c->has_up = c->cl->has_up;
    if (c->has_up)
        c->upx = c->cl->up;
    pthread_mutex_unlock(&c->cl->mu);
    if (!ok) {
        answer_fail(g, c, true, why);
        return;
    }
    /* an IP literal is checked as an address too (through an upstream, it is never resolved
     * here, and the upstream must not reach a private address on the run's behalf) */
    /* so is a name EGRESS_HOSTS maps, at the address it maps it to */
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
    struct sockaddr_storage ss;
    socklen_t sl;
    bool known = egress_hosts_lookup(g->pol, c->host, &ss, &sl);
    if (!known && getaddrinfo(c->host, NULL, &hints, &res) == 0) {
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        known = true;
    }
    if (known) {
        set_port(&ss, c->port);
        if (!egress_check_addr(g->pol, c->host, (struct sockaddr *)&ss, why, sizeof why)) {
            answer_fail(g, c, true, why);
            return;
        }
    }
    resolve(g, c);
}

static void on_head(egress_gateway *g, conn *c) {
    if (c->proto == P_UNKNOWN && c->hlen)
        c->proto = (unsigned char)c->head[0] == 5 ? P_SOCKS : P_HTTP_PLAIN;
    if (c->proto == P_SOCKS) {
        if (c->st == S_HEAD) {
            size_t used = 0;
            int r = egress_socks_greeting((unsigned char *)c->head, c->hlen, &used);
            if (r < 0) {
                unsigned char no[2] = {5, 0xff};
                to_client(c, no, 2);
                c->st = S_CLOSING;
                return;
            }
            if (r == 0)
                return;
            unsigned char yes[2] = {5, 0};
            to_client(c, yes, 2);
            memmove(c->head, c->head + used, c->hlen - used);
            c->hlen -= used;
            c->st = S_SOCKS_REQ;
        }
        egress_socks_req rq;
        size_t used = 0;
        int r = egress_socks_request((unsigned char *)c->head, c->hlen, &rq, &used);
        if (r == 0)
            return;
        if (r < 0) {
            unsigned char rep[10];
            egress_socks_reply(rq.reply, rep);
            to_client(c, rep, sizeof rep);
            c->st = S_CLOSING;
            return;
        }
        snprintf(c->host, sizeof c->host, "%s", rq.host);
        c->port = rq.port;
        c->greet_used = used;
        destination(g, c);
        return;
    }
    egress_http_req r;
    int rc = egress_http_parse(c->head, c->hlen, &r);
    if (rc == 0)
        return;
    if (rc < 0) {
        char text[200];
        snprintf(text, sizeof text, "sandbox: the egress gateway refused the request: %s", r.why);
        fail_http(c, r.status, r.status == 431 ? "Request Header Fields Too Large" : "Bad Request",
                  text);
        c->st = S_CLOSING;
        return;
    }
    snprintf(c->host, sizeof c->host, "%s", r.host);
    c->port = r.port;
    c->greet_used = r.head_len;
    if (r.connect) {
        c->proto = P_HTTP_CONNECT;
    } else {
        c->proto = P_HTTP_PLAIN;
        size_t body = c->hlen - r.head_len;
        c->fwd = malloc(EGRESS_HEAD_MAX + 64 + body);
        long n = c->fwd ? egress_http_rewrite(c->head, &r, c->fwd, EGRESS_HEAD_MAX + 64) : -1;
        if (n < 0) {
            fail_http(c, 431, "Request Header Fields Too Large", "sandbox: request head too large");
            c->st = S_CLOSING;
            return;
        }
        memcpy(c->fwd + n, c->head + r.head_len, body);
        c->fwd_len = (size_t)n + body;
    }
    destination(g, c);
}

/* ---- events ------------------------------------------------------------------------------ */

static void accept_all(egress_gateway *g, listener *l) {
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (g->nconns >= EGRESS_MAX_CONNS || l->cl->closed) {
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->cref = (ep_ref){R_CLIENT_SIDE, c};
        c->sref = (ep_ref){R_SERVER_SIDE, c};
        c->cfd = fd;
        c->sfd = -1;
        c->cev = c->sev = 0xffffffffu;
        c->cl = l->cl;
        atomic_fetch_add(&c->cl->refs, 1);
        c->born = c->last = now_ms();
        c->phase_deadline = c->born + EGRESS_HEAD_TIMEOUT_MS;
        c->next = g->conns;
        if (g->conns)
            g->conns->prev = c;
        g->conns = c;
        g->nconns++;
        rearm(g, c);
    }
}

/* Move bytes from fd into b; returns 1 read something, 0 EOF, -1 error, 2 would block. */
static int fill(int fd, rbuf *b) {
    if (b->len == 0)
        b->off = 0;
    if (b->off + b->len == EGRESS_RELAY_BUF && b->off) {
        memmove(b->d, b->d + b->off, b->len);
        b->off = 0;
    }
    size_t room = EGRESS_RELAY_BUF - b->off - b->len;
    if (!room)
        return 2;
    ssize_t n = recv(fd, b->d + b->off + b->len, room, 0);
    if (n > 0) {
        b->len += (size_t)n;
        return 1;
    }
    if (n == 0)
        return 0;
    return errno == EAGAIN || errno == EINTR ? 2 : -1;
}

/* Write out what b holds; returns bytes written, or -1 on error. */
static ssize_t drain(int fd, rbuf *b) {
    if (!b->len)
        return 0;
    ssize_t n = send(fd, b->d + b->off, b->len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    b->off += (size_t)n;
    b->len -= (size_t)n;
    if (!b->len)
        b->off = 0;
    return n;
}

static void on_client(egress_gateway *g, conn *c, uint32_t ev) {
    if (c->st != S_RELAY && c->st != S_CLOSING && (ev & EPOLLOUT) && c->s2c.len) {
        if (drain(c->cfd, &c->s2c) < 0) {
            conn_close(g, c);
            return;
        }
    }
    if ((c->st == S_HEAD || c->st == S_SOCKS_REQ) && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t n = recv(c->cfd, c->head + c->hlen, sizeof c->head - c->hlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(g, c);
            return;
        }
        if (n > 0) {
            c->hlen += (size_t)n;
            on_head(g, c);
        }
        return;
    }
    if (c->st == S_CLOSING) {
        /* closing with unread input would reset the connection, and the client might never
         * read the answer: half-close after it, and drop what comes until the client's end */
        if (c->s2c.len && drain(c->cfd, &c->s2c) < 0) {
            conn_close(g, c);
            return;
        }
        if (!c->s2c.len && !c->c_shut) {
            shutdown(c->cfd, SHUT_WR);
            c->c_shut = true;
        }
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            char sink[4096];
            ssize_t n = recv(c->cfd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                conn_close(g, c);
        }
        return;
    }
    if (c->st != S_RELAY) {
        if (ev & (EPOLLHUP | EPOLLERR))
            conn_close(g, c);
        return;
    }
    if (ev & EPOLLOUT) {
        if (drain(c->cfd, &c->s2c) < 0) {
            conn_close(g, c);
            return;
        }
        c->last = now_ms();
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        int r = fill(c->cfd, &c->c2s);
        if (r < 0) {
            conn_close(g, c);
            return;
        }
        if (r == 0)
            c->c_eof = true;
        c->last = now_ms();
    }
}

static void on_server(egress_gateway *g, conn *c, uint32_t ev) {
    if (c->st == S_CONNECT) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            c->conn_err = err;
            epoll_ctl(g->ep, EPOLL_CTL_DEL, c->sfd, NULL);
            close(c->sfd);
            c->sfd = -1;
            try_connect(g, c);
            return;
        }
        connected(g, c);
        return;
    }
    if (c->st == S_UPSTREAM) {
        if (ev & EPOLLOUT) {
            ssize_t n = drain(c->sfd, &c->c2s);
            if (n < 0) {
                answer_fail(g, c, false, "the upstream proxy closed the connection");
                return;
            }
            atomic_fetch_add(&c->cl->bytes_out, (uint64_t)n);
        }
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            ssize_t n = recv(c->sfd, c->upbuf + c->uplen, sizeof c->upbuf - c->uplen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                answer_fail(g, c, false, "the upstream proxy closed the connection");
                return;
            }
            if (n > 0) {
                c->uplen += (size_t)n;
                upstream_step(g, c);
            }
        }
        return;
    }
    if (c->st != S_RELAY)
        return;
    if (ev & EPOLLOUT) {
        ssize_t n = drain(c->sfd, &c->c2s);
        if (n < 0) {
            conn_close(g, c);
            return;
        }
        atomic_fetch_add(&c->cl->bytes_out, (uint64_t)n);
        atomic_fetch_add(&g->bytes_out, (uint64_t)n);
        c->last = now_ms();
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        size_t before = c->s2c.len;
        int r = fill(c->sfd, &c->s2c);
        if (r < 0) {
            conn_close(g, c);
            return;
        }
        if (r == 0)
            c->s_eof = true;
        atomic_fetch_add(&c->cl->bytes_in, c->s2c.len - before);
        atomic_fetch_add(&g->bytes_in, c->s2c.len - before);
        c->last = now_ms();
    }
}

/* After an event in the relay: half-closes, and the end. */
static void relay_settle(egress_gateway *g, conn *c) {
    if (c->st != S_RELAY)
        return;
    if (c->c_eof && !c->c2s.len && !c->s_shut) {
        shutdown(c->sfd, SHUT_WR);
        c->s_shut = true;
    }
    if (c->s_eof && !c->s2c.len && !c->c_shut) {
        shutdown(c->cfd, SHUT_WR);
        c->c_shut = true;
    }
    if (c->s_shut && c->c_shut)
        conn_close(g, c);
}

static void tick(egress_gateway *g) {
    uint64_t n;
    (void)!read(g->timer, &n, sizeof n);
    int64_t t = now_ms();
    for (conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        bool late = false;
        if (c->st == S_RELAY)
            late = t - c->last > EGRESS_IDLE_TIMEOUT_MS || t - c->born > EGRESS_TOTAL_TIMEOUT_MS;
        else if (c->st == S_CLOSING)
            late = t - c->phase_deadline > 5000 || t - c->born > EGRESS_TOTAL_TIMEOUT_MS;
        else
            late = t > c->phase_deadline;
        if (!late)
            continue;
        if (c->st == S_CONNECT || c->st == S_RESOLVE || c->st == S_UPSTREAM) {
            answer_fail(g, c, false, "net::ERR_CONNECTION_TIMED_OUT (timed out connecting)");
            c->phase_deadline = t;
            rearm(g, c);
        } else if (c->st == S_HEAD || c->st == S_SOCKS_REQ) {
            if (c->proto == P_SOCKS || !c->hlen) {
                conn_close(g, c);
            } else {
                fail_http(c, 408, "Request Timeout",
                          "sandbox: the egress gateway timed out reading the request");
                c->st = S_CLOSING;
                c->phase_deadline = t;
                rearm(g, c);
            }
        } else {
            conn_close(g, c);
        }
    }
}

static void close_client(egress_gateway *g, egress_client *cl) {
    cl->closed = true;
    for (listener *l = cl->listeners, *n; l; l = n) {
        n = l->next;
        close(l->fd);
        free(l);
    }
    cl->listeners = NULL;
    for (conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        if (c->cl == cl)
            conn_close(g, c);
    }
}

static void run_commands(egress_gateway *g) {
    uint64_t n;
    (void)!read(g->door, &n, sizeof n);
    pthread_mutex_lock(&g->mu);
    cmd *m = g->q;
    g->q = g->q_tail = NULL;
    pthread_mutex_unlock(&g->mu);
    while (m) {
        cmd *next = m->next;
        if (m->op == C_ADOPT) {
            listener *l = m->cl->closed ? NULL : calloc(1, sizeof *l);
            if (!l) {
                close(m->fd);
            } else {
                l->ref = (ep_ref){R_LISTENER, l};
                l->fd = m->fd;
                l->cl = m->cl;
                l->next = m->cl->listeners;
                m->cl->listeners = l;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->ref};
                epoll_ctl(g->ep, EPOLL_CTL_ADD, l->fd, &ev);
            }
            client_unref(m->cl); /* the command's hold */
        } else {
            close_client(g, m->cl);
            client_unref(m->cl); /* the owner's hold */
        }
        free(m);
        m = next;
    }
}

static void *loop(void *arg) {
    egress_gateway *g = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&g->stop)) {
        int n = epoll_wait(g->ep, evs, 64, 1000);
        for (int i = 0; i < n; i++) {
            ep_ref *r = evs[i].data.ptr;
            uint32_t ev = evs[i].events;
            switch (r->kind) {
            case R_DOOR:
                run_commands(g);
                break;
            case R_TIMER:
                tick(g);
                break;
            case R_DNS: {
                conn *c;
                while (read(g->dnsp[0], &c, sizeof c) == sizeof c)
                    dns_done(g, c);
                break;
            }
            case R_LISTENER:
                accept_all(g, r->obj);
                break;
            case R_CLIENT_SIDE:
            case R_SERVER_SIDE: {
                conn *c = r->obj;
                if (c->st == S_DEAD)
                    break;
                if (r->kind == R_CLIENT_SIDE)
                    on_client(g, c, ev);
                else
                    on_server(g, c, ev);
                relay_settle(g, c);
                rearm(g, c);
                break;
            }
            }
        }
        reap_dead(g);
    }
    return NULL;
}

sbx_code egress_gateway_start(const egress_policy *p, egress_gateway **out, sbx_err *e) {
    egress_gateway *g = calloc(1, sizeof *g);
    if (!g)
        return sbx_fail(e, SBX_EINTERNAL, "egress: out of memory");
    g->pol = p;
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->door = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    g->dnsp[0] = g->dnsp[1] = -1;
    int perr = pipe2(g->dnsp, O_CLOEXEC | O_NONBLOCK);
    if (g->ep < 0 || g->door < 0 || g->timer < 0 || perr != 0) {
        int err = errno;
        egress_gateway_stop(g);
        return sbx_fail_errno(e, err, "egress: cannot set up the gateway");
    }
    pthread_mutex_init(&g->mu, NULL);
    g->door_ref = (ep_ref){R_DOOR, g};
    g->timer_ref = (ep_ref){R_TIMER, g};
    g->dns_ref = (ep_ref){R_DNS, g};
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.ptr = &g->door_ref;
    epoll_ctl(g->ep, EPOLL_CTL_ADD, g->door, &ev);
    ev.data.ptr = &g->timer_ref;
    epoll_ctl(g->ep, EPOLL_CTL_ADD, g->timer, &ev);
    ev.data.ptr = &g->dns_ref;
    epoll_ctl(g->ep, EPOLL_CTL_ADD, g->dnsp[0], &ev);
    struct itimerspec its = {.it_interval = {0, TICK_MS * 1000000L},
                             .it_value = {0, TICK_MS * 1000000L}};
    timerfd_settime(g->timer, 0, &its, NULL);
    if (pthread_create(&g->th, NULL, loop, g) != 0) {
        close(g->ep);
        close(g->door);
        close(g->timer);
        close(g->dnsp[0]);
        close(g->dnsp[1]);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return sbx_fail(e, SBX_EINTERNAL, "egress: cannot start the gateway thread");
    }
    *out = g;
    return SBX_OK;
}

void egress_gateway_stop(egress_gateway *g) {
    if (!g)
        return;
    if (g->th) {
        atomic_store(&g->stop, true);
        uint64_t one = 1;
        (void)!write(g->door, &one, sizeof one);
        pthread_join(g->th, NULL);
        run_commands(g); /* frees of clients that came late */
        for (conn *c = g->conns, *next; c; c = next) {
            next = c->next;
            conn_close(g, c);
        }
        reap_dead(g);
        /* lookups still running write to the pipe when they end: wait for them (bounded) */
        for (int i = 0; i < 100 && atomic_load(&g->resolving) > 0; i++) {
            conn *c;
            while (read(g->dnsp[0], &c, sizeof c) == sizeof c)
                dns_done(g, c);
            usleep(50000);
        }
        pthread_mutex_destroy(&g->mu);
    }
    if (g->ep >= 0)
        close(g->ep);
    if (g->door >= 0)
        close(g->door);
    if (g->timer >= 0)
        close(g->timer);
    if (g->dnsp[0] >= 0)
        close(g->dnsp[0]);
    if (g->dnsp[1] >= 0)
        close(g->dnsp[1]);
    if (atomic_load(&g->resolving) > 0)
        return; /* a lookup outlived the wait: leave the gateway allocated rather than free it */
    free(g);
}
