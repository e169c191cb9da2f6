/* egress_client.c -- the egress gateway's clients (one per run or browser): their listeners
 * handed to the loop, scope, counters and refusals; upstream proxy URLs (see
 * egress_gateway.h). Any thread, except where a function says the loop's. */
#define _GNU_SOURCE
#include "egress_gateway_int.h"

/* ---- clients ----------------------------------------------------------------------------- */

void egw_client_unref(egress_client *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    egress_scope_free(c->scope);
    if (c->on_refusal_release)
        c->on_refusal_release(c->on_refusal_ud);
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

void egress_client_on_refusal(egress_client *c, egress_refusal_fn fn, void *ud,
                              void (*release)(void *ud)) {
    pthread_mutex_lock(&c->mu);
    void (*old_release)(void *) = c->on_refusal_release;
    void *old_ud = c->on_refusal_ud;
    c->on_refusal = fn;
    c->on_refusal_ud = ud;
    c->on_refusal_release = release;
    pthread_mutex_unlock(&c->mu);
    if (old_release)
        old_release(old_ud);
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
void egw_record_line(egress_client *c, int k, const char *host, uint16_t port, const char *why) {
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
    if (k == 0 && c->on_refusal) /* under mu: a replaced callback's ud is released after it */
        c->on_refusal(c->on_refusal_ud, host, port, why);
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
