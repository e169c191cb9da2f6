/* egress_gateway.c -- the egress gateway's loop: the door, the timer, listeners, reading and
 * writing both sides of every connection, timeouts, start and stop (see egress_gateway.h; a
 * connection's steps from request to relay are in egress_conn.c, clients in egress_client.c).
 *
 * One thread runs one epoll set, level-triggered except for relaying connections (edge-
 * triggered: see the relay below). Every fd it watches carries an ep_ref saying
 * what it is (the door, the timer, the resolver pipe, a listener, either side of a
 * connection). A connection goes HEAD (reading the request) -> RESOLVE (DNS, off the loop via
 * its resolver thread) -> CONNECT (non-blocking) -> [UPSTREAM handshake] -> RELAY, or to CLOSING (a
 * reply is flushed, then it closes). Connections closed while handling a batch of events are
 * freed after the batch; one whose lookup is still running is freed when the lookup ends.
 */
#define _GNU_SOURCE
#include "egress_gateway_int.h"

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
        c->pc2s.r = c->pc2s.w = c->ps2c.r = c->ps2c.w = -1;
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
        egw_rearm(g, c);
    }
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

/* ---- the relay ---------------------------------------------------------------------------
 *
 * Both sides of a relaying connection are registered once, edge-triggered, for input and
 * output; c_rd/c_wr/s_rd/s_wr say what a side may still do, and only EAGAIN clears them. Each
 * direction moves its rbuf's bytes first (the 200 of a CONNECT, a rewritten head, bytes read
 * with the request), then splices: source socket -> pipe -> destination socket, the kernel
 * moving page references rather than copying through the gateway. At most EGRESS_RELAY_PIPE
 * bytes wait in a direction's pipe (its size; fewer splices per MB than 64 KiB pipes), and
 * EGRESS_RELAY_BUF in its rbuf when splicing is not available (no pipe could be made, or a
 * socket that cannot splice): then it copies through the rbuf.
 * A direction moves at most RELAY_TURN bytes per turn; one that had more to move goes on the
 * ready list and gets its next turn after the other connections' events. */

#define RELAY_TURN (4u << 20)

/* Pipes for both directions (each falls back to copying on its own). */
void egw_relay_open(conn *c) {
    spipe *ps[2] = {&c->pc2s, &c->ps2c};
    for (int i = 0; i < 2; i++) {
        int fd[2];
        ps[i]->r = ps[i]->w = -1;
        ps[i]->len = 0;
        if (pipe2(fd, O_NONBLOCK | O_CLOEXEC) != 0)
            continue;
        if (fcntl(fd[1], F_SETPIPE_SZ, EGRESS_RELAY_PIPE) < 0 && errno != EPERM) {
            close(fd[0]);
            close(fd[1]);
            continue;
        }
        ps[i]->r = fd[0];
        ps[i]->w = fd[1];
    }
    c->c_rd = c->c_wr = c->s_rd = c->s_wr = true;
}

void egw_pipe_close(spipe *p) {
    if (p->r >= 0) {
        close(p->r);
        close(p->w);
    }
    p->r = p->w = -1;
}

typedef struct dir {
    int src, dst;
    bool *src_rd, *dst_wr, *eof, *shut; /* shut: dst's writing end was shut */
    rbuf *b;
    spipe *p;
    atomic_uint_fast64_t *cl_count, *g_count; /* bytes_out (to the server), or bytes_in */
    bool count_reads;                         /* bytes_in counts what comes from the server */
} dir;

/* One direction's turn: write out what waits, read what comes, until neither side can go on or
 * the turn is over. Returns the bytes moved out, or -1 when the connection must close. */
static ssize_t pump(dir *d) {
    size_t moved = 0;
    for (;;) {
        bool progress = false;
        if (*d->dst_wr && !*d->shut && (d->b->len || d->p->len)) {
            ssize_t n;
            if (d->b->len) {
                n = send(d->dst, d->b->d + d->b->off, d->b->len, MSG_NOSIGNAL);
                if (n > 0) {
                    d->b->off += (size_t)n;
                    d->b->len -= (size_t)n;
                    if (!d->b->len)
                        d->b->off = 0;
                }
            } else {
                n = splice(d->p->r, NULL, d->dst, NULL, d->p->len,
                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                if (n > 0)
                    d->p->len -= (size_t)n;
            }
            if (n > 0) {
                moved += (size_t)n;
                progress = true;
                if (!d->count_reads) {
                    atomic_fetch_add(d->cl_count, (uint64_t)n);
                    atomic_fetch_add(d->g_count, (uint64_t)n);
                }
            } else if (n < 0 && errno == EAGAIN) {
                *d->dst_wr = false;
            } else if (n < 0 && errno != EINTR) {
                return -1;
            }
        }
        if (*d->src_rd && !*d->eof) {
            ssize_t n = 0;
            bool tried = false;
            if (d->p->r >= 0 && d->p->len < EGRESS_RELAY_PIPE) {
                tried = true;
                n = splice(d->src, NULL, d->p->w, NULL, EGRESS_RELAY_PIPE - d->p->len,
                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                if (n > 0)
                    d->p->len += (size_t)n;
                else if (n < 0 && errno == EINVAL && !d->p->len) {
                    egw_pipe_close(d->p); /* this socket cannot splice: copy */
                    continue;
                }
            } else if (d->p->r < 0) {
                if (!d->b->len)
                    d->b->off = 0;
                if (d->b->off + d->b->len == EGRESS_RELAY_BUF && d->b->off) {
                    memmove(d->b->d, d->b->d + d->b->off, d->b->len);
                    d->b->off = 0;
                }
                size_t room = EGRESS_RELAY_BUF - d->b->off - d->b->len;
                if (room) {
                    tried = true;
                    n = recv(d->src, d->b->d + d->b->off + d->b->len, room, 0);
                    if (n > 0)
                        d->b->len += (size_t)n;
                }
            }
            if (tried) {
                if (n > 0) {
                    progress = true;
                    if (d->count_reads) {
                        atomic_fetch_add(d->cl_count, (uint64_t)n);
                        atomic_fetch_add(d->g_count, (uint64_t)n);
                    }
                } else if (n == 0) {
                    *d->eof = true;
                } else if (errno == EAGAIN) {
                    /* a splice into a pipe that still holds bytes may say EAGAIN for the pipe,
                     * not the socket: the socket is known empty only with the pipe empty */
                    if (d->p->r < 0 || !d->p->len)
                        *d->src_rd = false;
                } else if (errno != EINTR) {
                    return -1;
                }
            }
        }
        if (!progress || moved >= RELAY_TURN)
            return (ssize_t)moved;
    }
}

/* Both directions' turns, then the half-closes; a connection whose turn ran out is queued. */
static void relay(egress_gateway *g, conn *c) {
    dir up = {c->cfd,  c->sfd,   &c->c_rd,          &c->s_wr,      &c->c_eof, &c->s_shut,
              &c->c2s, &c->pc2s, &c->cl->bytes_out, &g->bytes_out, false};
    dir down = {c->sfd,  c->cfd,   &c->s_rd,         &c->c_wr,     &c->s_eof, &c->c_shut,
                &c->s2c, &c->ps2c, &c->cl->bytes_in, &g->bytes_in, true};
    ssize_t a = pump(&up), b = a < 0 ? -1 : pump(&down);
    if (a < 0 || b < 0) {
        egw_conn_close(g, c);
        return;
    }
    if (a || b)
        c->last = now_ms();
    if (((size_t)a >= RELAY_TURN || (size_t)b >= RELAY_TURN) && !c->ready) {
        c->ready = true;
        c->ready_next = g->ready;
        g->ready = c;
    }
}

static void relay_settle(egress_gateway *g, conn *c);

/* The connections whose turn ran out: one more turn each (before any is freed). */
static void relay_ready(egress_gateway *g) {
    conn *c = g->ready;
    g->ready = NULL;
    while (c) {
        conn *next = c->ready_next;
        c->ready = false;
        if (c->st == S_RELAY) {
            relay(g, c);
            relay_settle(g, c);
        }
        c = next;
    }
}

static void on_client(egress_gateway *g, conn *c, uint32_t ev) {
    if (c->st != S_RELAY && c->st != S_CLOSING && (ev & EPOLLOUT) && c->s2c.len) {
        if (drain(c->cfd, &c->s2c) < 0) {
            egw_conn_close(g, c);
            return;
        }
    }
    if ((c->st == S_HEAD || c->st == S_SOCKS_REQ) && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t n = recv(c->cfd, c->head + c->hlen, sizeof c->head - c->hlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            egw_conn_close(g, c);
            return;
        }
        if (n > 0) {
            c->hlen += (size_t)n;
            egw_on_head(g, c);
        }
        return;
    }
    if (c->st == S_CLOSING) {
        /* closing with unread input would reset the connection, and the client might never
         * read the answer: half-close after it, and drop what comes until the client's end */
        if (c->s2c.len && drain(c->cfd, &c->s2c) < 0) {
            egw_conn_close(g, c);
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
                egw_conn_close(g, c);
        }
        return;
    }
    if (c->st != S_RELAY) {
        if (ev & (EPOLLHUP | EPOLLERR))
            egw_conn_close(g, c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->c_rd = true;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->c_wr = true;
    relay(g, c);
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
            egw_try_connect(g, c);
            return;
        }
        egw_connected(g, c);
        return;
    }
    if (c->st == S_UPSTREAM) {
        if (ev & EPOLLOUT) {
            ssize_t n = drain(c->sfd, &c->c2s);
            if (n < 0) {
                egw_answer_fail(g, c, false, "the upstream proxy closed the connection");
                return;
            }
            atomic_fetch_add(&c->cl->bytes_out, (uint64_t)n);
        }
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            ssize_t n = recv(c->sfd, c->upbuf + c->uplen, sizeof c->upbuf - c->uplen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                egw_answer_fail(g, c, false, "the upstream proxy closed the connection");
                return;
            }
            if (n > 0) {
                c->uplen += (size_t)n;
                egw_upstream_step(g, c);
            }
        }
        return;
    }
    if (c->st != S_RELAY)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->s_rd = true;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->s_wr = true;
    relay(g, c);
}

/* After an event in the relay: half-closes, and the end. */
static void relay_settle(egress_gateway *g, conn *c) {
    if (c->st != S_RELAY)
        return;
    if (c->c_eof && !c->c2s.len && !c->pc2s.len && !c->s_shut) {
        shutdown(c->sfd, SHUT_WR);
        c->s_shut = true;
    }
    if (c->s_eof && !c->s2c.len && !c->ps2c.len && !c->c_shut) {
        shutdown(c->cfd, SHUT_WR);
        c->c_shut = true;
    }
    if (c->s_shut && c->c_shut)
        egw_conn_close(g, c);
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
            egw_answer_fail(g, c, false, "net::ERR_CONNECTION_TIMED_OUT (timed out connecting)");
            c->phase_deadline = t;
            egw_rearm(g, c);
        } else if (c->st == S_HEAD || c->st == S_SOCKS_REQ) {
            if (c->proto == P_SOCKS || !c->hlen) {
                egw_conn_close(g, c);
            } else {
                egw_fail_http(c, 408, "Request Timeout",
                              "sandbox: the egress gateway timed out reading the request");
                c->st = S_CLOSING;
                c->phase_deadline = t;
                egw_rearm(g, c);
            }
        } else {
            egw_conn_close(g, c);
        }
    }
}

static void close_client(egress_gateway *g, egress_client *cl) {
    cl->closed = true;
    for (listener *l = cl->listeners, *n; l; l = n) {
        n = l->next;
        epoll_ctl(g->ep, EPOLL_CTL_DEL, l->fd, NULL); /* see egw_conn_close */
        close(l->fd);
        free(l);
    }
    cl->listeners = NULL;
    for (conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        if (c->cl == cl)
            egw_conn_close(g, c);
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
            egw_client_unref(m->cl); /* the command's hold */
        } else {
            close_client(g, m->cl);
            egw_client_unref(m->cl); /* the owner's hold */
        }
        free(m);
        m = next;
    }
}

static void *loop(void *arg) {
    egress_gateway *g = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&g->stop)) {
        int n = epoll_wait(g->ep, evs, 64, g->ready ? 0 : 1000);
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
                    egw_dns_done(g, c);
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
                egw_rearm(g, c);
                break;
            }
            }
        }
        relay_ready(g); /* it skips connections closed meanwhile: reap after it */
        egw_reap_dead(g);
    }
    return NULL;
}

/* Stop the resolver thread and join it within 10 s (a lookup has its own timeouts). False when
 * it did not end in time (it was detached). */
static bool stop_resolver(egress_gateway *g) {
    if (!g->rth_running)
        return true;
    pthread_mutex_lock(&g->rmu);
    g->rstop = true;
    pthread_cond_broadcast(&g->rcv);
    pthread_mutex_unlock(&g->rmu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    g->rth_running = false;
    if (pthread_timedjoin_np(g->rth, NULL, &ts) != 0) {
        pthread_detach(g->rth);
        LOG_W("egress", "the resolver thread is stuck in a lookup; leaving it");
        return false;
    }
    return true;
}

void *egw_resolver(void *arg) {
    egress_gateway *g = arg;
    pthread_mutex_lock(&g->rmu);
    for (;;) {
        while (!g->rq && !g->rstop)
            pthread_cond_wait(&g->rcv, &g->rmu);
        if (g->rstop)
            break;
        conn *c = g->rq;
        g->rq = c->rnext;
        if (!g->rq)
            g->rq_tail = NULL;
        char host[EGRESS_HOST_MAX];
        snprintf(host, sizeof host, "%s", c->rhost);
        pthread_mutex_unlock(&g->rmu);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        pthread_mutex_lock(&g->rmu);
        c->gai_rc = rc;
        c->res = rc == 0 ? res : NULL;
        (void)!write(g->dnsp[1], &c, sizeof c);
    }
    pthread_mutex_unlock(&g->rmu);
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
    pthread_mutex_init(&g->rmu, NULL);
    pthread_cond_init(&g->rcv, NULL);
    g->rth_running = pthread_create(&g->rth, NULL, egw_resolver, g) == 0;
    if (!g->rth_running)
        LOG_W("egress", "no resolver thread: names outside EGRESS_HOSTS will not resolve");
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
        stop_resolver(g);
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
        g->ready = NULL;
        for (conn *c = g->conns, *next; c; c = next) {
            next = c->next;
            egw_conn_close(g, c);
        }
        egw_reap_dead(g);
        if (!stop_resolver(g))
            return; /* stuck in a lookup: leave it the gateway rather than free it under it */
        /* finished lookups wait in the pipe, queued ones were never started: all zombies now */
        conn *c;
        while (read(g->dnsp[0], &c, sizeof c) == sizeof c)
            egw_dns_done(g, c);
        while (g->rq) {
            c = g->rq;
            g->rq = c->rnext;
            egw_dns_done(g, c);
        }
        pthread_mutex_destroy(&g->mu);
        pthread_mutex_destroy(&g->rmu);
        pthread_cond_destroy(&g->rcv);
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
    free(g);
}
