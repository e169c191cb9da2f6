/* egress_conn.c -- one connection of the egress gateway from its request to the relay: the
 * head (HTTP or SOCKS5), the policy's check of the name, resolving (EGRESS_HOSTS, literals,
 * the resolver thread off the loop), the check of each address, a non-blocking connect, an
 * upstream proxy's handshake, the answers (200, 403, 502, SOCKS5 replies). The loop's thread
 * only (see egress_gateway_int.h). */
#define _GNU_SOURCE
#include "egress_gateway_int.h"

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
void egw_rearm(egress_gateway *g, conn *c) {
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
    case S_RELAY: /* registered once, edge-triggered (see the relay in egress_gateway.c) */
        cw = sw = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
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

void egw_conn_close(egress_gateway *g, conn *c) {
    if (c->st == S_DEAD)
        return;
    c->st = S_DEAD;
    /* EPOLL_CTL_DEL before close: a process cloned by the server meanwhile (a run's init, a
     * Chromium) may hold a copy of the descriptor, and then close alone leaves the
     * registration, whose events would name this conn after it is freed */
    if (c->cfd >= 0) {
        if (c->cev != 0xffffffffu)
            epoll_ctl(g->ep, EPOLL_CTL_DEL, c->cfd, NULL);
        close(c->cfd);
    }
    if (c->sfd >= 0) {
        if (c->sev != 0xffffffffu)
            epoll_ctl(g->ep, EPOLL_CTL_DEL, c->sfd, NULL);
        close(c->sfd);
    }
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

void egw_conn_release(conn *c) {
    egw_pipe_close(&c->pc2s);
    egw_pipe_close(&c->ps2c);
    free(c->c2s.d);
    free(c->s2c.d);
    free(c->fwd);
    egw_client_unref(c->cl);
    free(c);
}

void egw_reap_dead(egress_gateway *g) {
    while (g->dead) {
        conn *c = g->dead;
        g->dead = c->free_next;
        egw_conn_release(c);
    }
}

/* Queue bytes for the client (replies): into s2c. */
void egw_to_client(conn *c, const void *p, size_t n) {
    if (!c->s2c.d && !(c->s2c.d = malloc(EGRESS_RELAY_BUF)))
        return;
    if (c->s2c.off + c->s2c.len + n > EGRESS_RELAY_BUF)
        return;
    memcpy(c->s2c.d + c->s2c.off + c->s2c.len, p, n);
    c->s2c.len += n;
}

void egw_fail_http(conn *c, int status, const char *reason, const char *text) {
    char body[600], head[200];
    int bl = snprintf(body, sizeof body, "%s\n", text);
    if (bl < 0 || bl >= (int)sizeof body)
        bl = (int)sizeof body - 1;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n",
                      status, reason, bl);
    egw_to_client(c, head, (size_t)hl);
    egw_to_client(c, body, (size_t)bl);
}

/* Answer the client that its destination failed (refused by the policy, or unreachable), and
 * flush that before closing. */
void egw_answer_fail(egress_gateway *g, conn *c, bool policy, const char *why) {
    egw_record_line(c->cl, policy ? 0 : 1, c->host, c->port, why);
    if (c->proto == P_SOCKS) {
        unsigned char rep[10];
        egress_socks_reply(policy ? 2 : 5, rep);
        egw_to_client(c, rep, sizeof rep);
    } else {
        char text[EGRESS_HOST_MAX + 300];
        bool v6 = strchr(c->host, ':') != NULL;
        snprintf(text, sizeof text, "sandbox: network access to %s%s%s:%u %s: %s", v6 ? "[" : "",
                 c->host, v6 ? "]" : "", (unsigned)c->port, policy ? "was refused" : "failed", why);
        if (policy)
            egw_fail_http(c, 403, "Forbidden", text);
        else
            egw_fail_http(c, 502, "Bad Gateway", text);
    }
    if (c->sfd >= 0) {
        if (c->sev != 0xffffffffu)
            epoll_ctl(g->ep, EPOLL_CTL_DEL, c->sfd, NULL);
        close(c->sfd);
        c->sfd = -1;
    }
    c->st = S_CLOSING;
}

void egw_start_relay(egress_gateway *g, conn *c);
void egw_try_connect(egress_gateway *g, conn *c);

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

/* The name is allowed: find addresses for the TCP target (EGRESS_HOSTS, a literal, or DNS). */
static void resolve(egress_gateway *g, conn *c) {
    const char *h = target_host(c);
    struct sockaddr_storage ss;
    socklen_t len;
    if (egress_hosts_lookup(g->pol, h, &ss, &len)) {
        add_addr(c, (struct sockaddr *)&ss, len);
        egw_try_connect(g, c);
        return;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(h, NULL, &hints, &res) == 0) {
        add_addr(c, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        egw_try_connect(g, c);
        return;
    }
    if (!g->rth_running) {
        egw_answer_fail(g, c, false, "net::ERR_NAME_NOT_RESOLVED (no resolver)");
        return;
    }
    snprintf(c->rhost, sizeof c->rhost, "%s", h);
    c->st = S_RESOLVE;
    c->phase_deadline = now_ms() + EGRESS_CONNECT_TIMEOUT_MS;
    c->resolving = true;
    atomic_fetch_add(&g->resolving, 1);
    pthread_mutex_lock(&g->rmu);
    c->rnext = NULL;
    if (g->rq_tail)
        g->rq_tail->rnext = c;
    else
        g->rq = c;
    g->rq_tail = c;
    pthread_cond_signal(&g->rcv);
    pthread_mutex_unlock(&g->rmu);
}

void egw_dns_done(egress_gateway *g, conn *c) {
    pthread_mutex_lock(&g->rmu); /* what the resolver wrote */
    int rc = c->gai_rc;
    struct addrinfo *res = c->res;
    c->res = NULL;
    pthread_mutex_unlock(&g->rmu);
    c->resolving = false;
    atomic_fetch_sub(&g->resolving, 1);
    if (c->zombie) {
        if (res)
            freeaddrinfo(res);
        egw_conn_release(c);
        return;
    }
    if (c->st != S_RESOLVE) { /* answered meanwhile (timed out) */
        if (res)
            freeaddrinfo(res);
        return;
    }
    if (rc != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        egw_answer_fail(g, c, false, "net::ERR_NAME_NOT_RESOLVED (the name does not resolve)");
        egw_rearm(g, c);
        return;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
            add_addr(c, a->ai_addr, a->ai_addrlen);
    freeaddrinfo(res);
    egw_try_connect(g, c);
    egw_rearm(g, c);
}

/* Connect to the next address the policy allows. */
void egw_try_connect(egress_gateway *g, conn *c) {
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
        egw_answer_fail(g, c, true, c->refuse_why);
    else
        egw_answer_fail(g, c, false,
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
void egw_connected(egress_gateway *g, conn *c) {
    atomic_fetch_add(&c->cl->conns, 1);
    atomic_fetch_add(&g->nconn_total, 1);
    if (!alloc_bufs(c)) {
        egw_conn_close(g, c);
        return;
    }
    if (c->has_up)
        upstream_begin(g, c);
    else
        egw_start_relay(g, c);
}

void egw_start_relay(egress_gateway *g, conn *c) {
    c->st = S_RELAY;
    c->last = now_ms();
    egw_relay_open(c);
    if (c->proto == P_HTTP_CONNECT) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        egw_to_client(c, ok, sizeof ok - 1);
        /* bytes the client sent after the head (a TLS hello sent early) */
        if (c->hlen > c->greet_used)
            to_server(c, c->head + c->greet_used, c->hlen - c->greet_used);
    } else if (c->proto == P_SOCKS) {
        unsigned char rep[10];
        egress_socks_reply(0, rep);
        egw_to_client(c, rep, sizeof rep);
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
void egw_upstream_step(egress_gateway *g, conn *c) {
    const egress_upstream *u = &c->upx;
    unsigned char *b = (unsigned char *)c->upbuf;
    switch (c->up) {
    case U_HTTP: {
        char *end = memmem(c->upbuf, c->uplen, "\r\n\r\n", 4);
        if (!end) {
            if (c->uplen >= sizeof c->upbuf)
                egw_answer_fail(g, c, false, "the upstream proxy's answer is too long");
            return;
        }
        if (c->uplen < 12 || strncmp(c->upbuf, "HTTP/1.", 7) || c->upbuf[9] != '2') {
            char why[80];
            snprintf(why, sizeof why, "the upstream proxy answered %.3s",
                     c->uplen >= 12 ? c->upbuf + 9 : "???");
            egw_answer_fail(g, c, false, why);
            return;
        }
        egw_start_relay(g, c);
        return;
    }
    case U_SOCKS_GREET:
        if (c->uplen < 2)
            return;
        if (b[0] != 5 || (b[1] != 0 && !(b[1] == 2 && u->has_auth))) {
            egw_answer_fail(g, c, false, "the upstream SOCKS5 proxy refused our methods");
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
            egw_answer_fail(g, c, false, "the upstream SOCKS5 proxy refused the credentials");
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
            egw_answer_fail(g, c, false, "the upstream SOCKS5 proxy answered badly");
            return;
        }
        if (c->uplen < need)
            return;
        if (b[1] != 0) {
            char why[80];
            snprintf(why, sizeof why, "the upstream SOCKS5 proxy refused (reply %u)", b[1]);
            egw_answer_fail(g, c, false, why);
            return;
        }
        /* bytes past the reply belong to the destination */
        if (c->uplen > need) {
            egw_to_client(c, c->upbuf + need, c->uplen - need);
            atomic_fetch_add(&c->cl->bytes_in, c->uplen - need);
        }
        egw_start_relay(g, c);
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
        egw_answer_fail(g, c, true, why);
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
            egw_answer_fail(g, c, true, why);
            return;
        }
    }
    resolve(g, c);
}

void egw_on_head(egress_gateway *g, conn *c) {
    if (c->proto == P_UNKNOWN && c->hlen)
        c->proto = (unsigned char)c->head[0] == 5 ? P_SOCKS : P_HTTP_PLAIN;
    if (c->proto == P_SOCKS) {
        if (c->st == S_HEAD) {
            size_t used = 0;
            int r = egress_socks_greeting((unsigned char *)c->head, c->hlen, &used);
            if (r < 0) {
                unsigned char no[2] = {5, 0xff};
                egw_to_client(c, no, 2);
                c->st = S_CLOSING;
                return;
            }
            if (r == 0)
                return;
            unsigned char yes[2] = {5, 0};
            egw_to_client(c, yes, 2);
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
            egw_to_client(c, rep, sizeof rep);
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
        egw_fail_http(c, r.status,
                      r.status == 431 ? "Request Header Fields Too Large" : "Bad Request", text);
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
            egw_fail_http(c, 431, "Request Header Fields Too Large",
                          "sandbox: request head too large");
            c->st = S_CLOSING;
            return;
        }
        memcpy(c->fwd + n, c->head + r.head_len, body);
        c->fwd_len = (size_t)n + body;
    }
    destination(g, c);
}
