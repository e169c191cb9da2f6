/* test_egress_gateway.c -- the egress gateway over loopback sockets: CONNECT tunnels and
 * absolute-URI requests (rewritten to origin form), SOCKS5, refusals with their reasons (not in
 * the allow list, denied, loopback and link-local addresses, the server's own port), a huge
 * head, accounting, and upstream proxies (HTTP and SOCKS5) that record the credentials they
 * get. Every server here is a thread of this test on 127.0.0.1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "common/egress_gateway.h"

/* ---- a tiny origin (and fake upstream proxies) ------------------------------------------ */

enum mode { ORIGIN, UP_HTTP, UP_SOCKS, ECHO };
typedef struct server {
    int fd;
    uint16_t port;
    enum mode mode;
    char seen[4096]; /* the last request head (origin) or credentials (upstreams) */
    pthread_t th;
} server;

static size_t read_head(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[n] = 0;
    return n;
}

static bool read_n(int fd, unsigned char *b, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void serve_origin(server *s, int fd, const char *tag) {
    char head[4096];
    read_head(fd, head, sizeof head);
    snprintf(s->seen + strlen(s->seen), sizeof s->seen - strlen(s->seen), "%s", head);
    char body[200];
    int n = snprintf(body, sizeof body, "HTTP/1.0 200 OK\r\n\r\nhello from %s", tag);
    send(fd, body, (size_t)n, MSG_NOSIGNAL);
}

static void *server_main(void *arg) {
    server *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (s->mode == ORIGIN) {
            s->seen[0] = 0;
            serve_origin(s, fd, "origin");
        } else if (s->mode == ECHO) { /* everything back, until the client's end */
            static char b[65536];
            ssize_t r;
            while ((r = recv(fd, b, sizeof b, 0)) > 0)
                if (send(fd, b, (size_t)r, MSG_NOSIGNAL) != r)
                    break;
        } else if (s->mode == UP_HTTP) {
            char head[4096];
            read_head(fd, head, sizeof head);
            snprintf(s->seen, sizeof s->seen, "%s", head);
            send(fd, "HTTP/1.1 200 OK\r\n\r\n", 19, MSG_NOSIGNAL);
            s->seen[strlen(s->seen)] = 0;
            char inner[4096];
            read_head(fd, inner, sizeof inner);
            send(fd, "HTTP/1.0 200 OK\r\n\r\nhello from upstream", 38, MSG_NOSIGNAL);
        } else {
            unsigned char b[600];
            s->seen[0] = 0;
            if (read_n(fd, b, 2) && read_n(fd, b + 2, b[1])) {
                unsigned char pick[2] = {5, memchr(b + 2, 2, b[1]) ? 2 : 0xff};
                send(fd, pick, 2, MSG_NOSIGNAL);
                if (pick[1] == 2 && read_n(fd, b, 2) && read_n(fd, b + 2, b[1] + 1u)) {
                    size_t ul = b[1];
                    unsigned char pl = b[2 + ul];
                    char user[256], pass[256];
                    memcpy(user, b + 2, ul);
                    user[ul] = 0;
                    if (read_n(fd, (unsigned char *)pass, pl)) {
                        pass[pl] = 0;
                        snprintf(s->seen, sizeof s->seen, "user=%s pass=%s", user, pass);
                        send(fd, "\x01\x00", 2, MSG_NOSIGNAL);
                        /* CONNECT: 5 1 0 3 len name port */
                        if (read_n(fd, b, 5) && read_n(fd, b + 5, b[4] + 2u)) {
                            size_t l = strlen(s->seen);
                            snprintf(s->seen + l, sizeof s->seen - l, " dest=%.*s", b[4],
                                     (char *)b + 5);
                            send(fd, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10, MSG_NOSIGNAL);
                            char inner[4096];
                            read_head(fd, inner, sizeof inner);
                            send(fd, "HTTP/1.0 200 OK\r\n\r\nhello from socks upstream", 44,
                                 MSG_NOSIGNAL);
                        }
                    }
                }
            }
        }
        close(fd);
    }
}

static void server_start(server *s, enum mode m) {
    memset(s, 0, sizeof *s);
    s->mode = m;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(s->fd, (struct sockaddr *)&a, sizeof a);
    listen(s->fd, 16);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, server_main, s);
}

static void server_stop(server *s) {
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->th, NULL);
}

/* ---- a client of the gateway ------------------------------------------------------------ */

/* Connect to the gateway at `port`, send `req` (n bytes), read until EOF (or 5 s) into out. */
static size_t exchange(uint16_t port, const void *req, size_t n, char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        send(fd, req, n, MSG_NOSIGNAL);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (got + 1 < cap && poll(&p, 1, 5000) > 0) {
            ssize_t r = recv(fd, out + got, cap - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    out[got] = 0;
    close(fd);
    return got;
}

/* A big relay both ways: BIG patterned bytes sent through a CONNECT tunnel to the echo server
 * (by a thread of their own, then a half-close), all read back in order, then the end. */
#define BIG (12u << 20)
static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 7 + (i >> 12));
}
typedef struct sender {
    int fd;
    size_t sent;
} sender;
static void *send_big(void *arg) {
    sender *s = arg;
    static unsigned char b[100000];
    while (s->sent < BIG) {
        size_t n = BIG - s->sent < sizeof b ? BIG - s->sent : sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = pattern(s->sent + i);
        ssize_t w = send(s->fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        s->sent += (size_t)w;
    }
    shutdown(s->fd, SHUT_WR);
    return NULL;
}
static bool echo_big(uint16_t port, uint16_t echo_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return false;
    }
    char rq[200];
    int n = snprintf(rq, sizeof rq, "CONNECT ok.test:%u HTTP/1.1\r\n\r\n", echo_port);
    send(fd, rq, (size_t)n, MSG_NOSIGNAL);
    char head[200];
    size_t hl = read_head(fd, head, sizeof head);
    bool ok = hl && strstr(head, " 200 ") && strstr(head, "\r\n\r\n") + 4 == head + hl;
    sender s = {fd, 0};
    pthread_t th;
    pthread_create(&th, NULL, send_big, &s);
    static unsigned char b[65536];
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (ok && poll(&p, 1, 10000) > 0) {
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r <= 0)
            break; /* the end, after the echo server saw ours */
        for (ssize_t i = 0; i < r && ok; i++)
            ok = b[i] == pattern(got + (size_t)i);
        got += (size_t)r;
    }
    pthread_join(th, NULL);
    close(fd);
    if (got != BIG || s.sent != BIG)
        fprintf(stderr, "echo_big: sent %zu, got back %zu\n", s.sent, got);
    return ok && got == BIG && s.sent == BIG;
}

static size_t ask(uint16_t port, const char *req, char *out, size_t cap) {
    return exchange(port, req, strlen(req), out, cap);
}

static egress_client *client(egress_gateway *g, const egress_policy *p, bool allowlist,
                             const egress_upstream *up, uint16_t *port) {
    egress_scope *s = NULL;
    sbx_err e = {0};
    egress_client *c = NULL;
    if (egress_scope_new(p, allowlist, NULL, "network", &s, &e) == SBX_OK &&
        (c = egress_client_new(g, s, up)) && egress_client_listen(c, port, &e) == SBX_OK)
        return c;
    fprintf(stderr, "client: %s\n", e.msg);
    return c;
}

/* A refusal callback's record (written on the gateway's thread, read after a pause). */
typedef struct told {
    char what[300];
    int calls, released;
} told;
static void on_refusal(void *ud, const char *host, uint16_t port, const char *why) {
    told *t = ud;
    snprintf(t->what, sizeof t->what, "%s:%u %s", host, (unsigned)port, why);
    t->calls++;
}
static void on_release(void *ud) {
    ((told *)ud)->released++;
}

int main(void) {
    server origin;
    server_start(&origin, ORIGIN);
    char hosts[200];
    snprintf(hosts, sizeof hosts,
             "ok.test=127.0.0.1,a.allowed.test=127.0.0.1,bad.allowed.test=127.0.0.1,"
             "priv.test=127.0.0.1,meta.test=169.254.169.254,v6.test=::ffff:127.0.0.1");
    egress_settings set = {"ok.test,*.allowed.test,priv.test,meta.test,v6.test", "bad.allowed.test",
                           "ok.test,*.allowed.test", hosts};
    egress_policy *p = NULL;
    sbx_err e = {0};
    CHECK(egress_policy_new(&set, &p, &e) == SBX_OK);
    CHECK(egress_policy_add_self(p, "127.0.0.1", 1) == 0); /* port 1: the "server" */
    egress_gateway *g = NULL;
    CHECK(egress_gateway_start(p, &g, &e) == SBX_OK);
    uint16_t port = 0;
    egress_client *c = client(g, p, true, NULL, &port);
    CHECK(c && port);
    usleep(50000); /* the loop adopts the listener */
    char out[70000], rq[20100];

    /* CONNECT, then a request through the tunnel */
    snprintf(rq, sizeof rq,
             "CONNECT ok.test:%u HTTP/1.1\r\nHost: ok.test\r\n\r\nGET /t HTTP/1.0\r\n\r\n",
             origin.port);
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "HTTP/1.1 200 Connection established") && strstr(out, "hello from origin"));
    CHECK(strstr(origin.seen, "GET /t HTTP/1.0"));

    /* many MB both ways at once through the relay (spliced), in order, half-closes passed on */
    server echo;
    server_start(&echo, ECHO);
    egress_stats st0, st1;
    egress_client_stats(c, &st0);
    CHECK(echo_big(port, echo.port));
    CHECK(echo_big(port, echo.port)); /* again: nothing of the first is left over */
    egress_client_stats(c, &st1);
    CHECK(st1.bytes_out - st0.bytes_out == 2 * BIG && st1.bytes_in - st0.bytes_in == 2 * BIG);
    CHECK(st1.connections - st0.connections == 2);
    server_stop(&echo);

    /* an absolute URI, rewritten */
    snprintf(rq, sizeof rq,
             "GET http://a.allowed.test:%u/path?q=1 HTTP/1.1\r\nHost: a.allowed.test\r\n"
             "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nX-Keep: 1\r\n\r\n",
             origin.port);
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "hello from origin"));
    CHECK(!strncmp(origin.seen, "GET /path?q=1 HTTP/1.1\r\n", 24));
    CHECK(strstr(origin.seen, "Connection: close\r\n") && strstr(origin.seen, "X-Keep: 1"));
    CHECK(!strstr(origin.seen, "Proxy-"));

    /* refusals, each with its reason */
    ask(port, "CONNECT example.org:443 HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "HTTP/1.1 403") &&
          strstr(out, "network access to example.org:443 was refused: not in allowedDomains"));
    snprintf(rq, sizeof rq, "CONNECT bad.allowed.test:%u HTTP/1.1\r\n\r\n", origin.port);
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "EGRESS_DENIED_DOMAINS"));
    snprintf(rq, sizeof rq, "CONNECT priv.test:%u HTTP/1.1\r\n\r\n", origin.port);
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "loopback address 127.0.0.1"));
    ask(port, "GET http://meta.test/latest/meta-data HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "link-local address 169.254.169.254"));
    snprintf(rq, sizeof rq, "CONNECT v6.test:%u HTTP/1.1\r\n\r\n", origin.port);
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "loopback address ::ffff:127.0.0.1"));
    ask(port, "CONNECT ok.test:1 HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "own address"));
    ask(port, "GET https://ok.test/ HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "400"));
    /* a head that never ends */
    memset(rq, 'a', sizeof rq - 1);
    memcpy(rq, "CONNECT ok.test:80 HTTP/1.1\r\nX: ", 32);
    rq[sizeof rq - 1] = 0;
    ask(port, rq, out, sizeof out);
    CHECK(strstr(out, "HTTP/1.1 431"));

    /* SOCKS5: allowed and refused */
    unsigned char s5[64] = {5, 1, 0, 5, 1, 0, 3, 7, 'o', 'k', '.', 't', 'e', 's', 't'};
    s5[15] = (unsigned char)(origin.port >> 8);
    s5[16] = (unsigned char)(origin.port & 0xff);
    memcpy(s5 + 17, "GET /s HTTP/1.0\r\n\r\n", 19);
    size_t n = exchange(port, s5, 36, out, sizeof out);
    CHECK(n > 12 && out[0] == 5 && out[1] == 0 && out[2] == 5 && out[3] == 0 &&
          strstr(out + 12, "hello from origin"));
    unsigned char s5bad[] = {5,   1,   0,   5,   1,   0,   3,   11,  'e', 'x', 'a',
                             'm', 'p', 'l', 'e', '.', 'o', 'r', 'g', 1,   187};
    n = exchange(port, s5bad, sizeof s5bad, out, sizeof out);
    CHECK(n >= 4 && out[2] == 5 && out[3] == 2);
    unsigned char s5bind[] = {5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80};
    n = exchange(port, s5bind, sizeof s5bind, out, sizeof out);
    CHECK(n >= 4 && out[3] == 7);

    /* a name only DNS (here /etc/hosts, through the resolver thread) knows: its loopback
     * answer is refused like a literal would be */
    uint16_t p4 = 0;
    egress_client *c4 = client(g, p, false, NULL, &p4);
    told t4 = {0}, t4old = {0};
    egress_client_on_refusal(c4, on_refusal, &t4old, on_release);
    egress_client_on_refusal(c4, on_refusal, &t4, on_release); /* the old one is released */
    CHECK(t4old.released == 1 && t4.released == 0);
    usleep(50000);
    snprintf(rq, sizeof rq, "CONNECT localhost:%u HTTP/1.1\r\n\r\n", origin.port);
    ask(p4, rq, out, sizeof out);
    CHECK(strstr(out, "HTTP/1.1 403") && strstr(out, "loopback address"));
    /* the callback was told before the answer went out */
    CHECK(t4.calls == 1 && strstr(t4.what, "localhost:") && strstr(t4.what, "loopback address"));
    snprintf(rq, sizeof rq, "CONNECT ok.test:%u HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n",
             origin.port);
    ask(p4, rq, out, sizeof out); /* allowed (open mode, private by name): not told */
    CHECK(strstr(out, "hello from origin") && t4.calls == 1 && t4old.calls == 0);
    egress_client_free(c4);

    /* accounting and refusals */
    egress_stats st;
    egress_client_stats(c, &st);
    CHECK(st.connections == 5 && st.bytes_in > 50 && st.bytes_out > 30);
    CHECK(st.refused == 7);
    cJSON *r = egress_client_refusals(c);
    CHECK(r && cJSON_GetArraySize(r) == 6); /* SOCKS refused example.org:443 again */
    CHECK(r && strstr(cJSON_GetArrayItem(r, 0)->valuestring, "example.org:443\t"));
    cJSON_Delete(r);

    /* upstream proxies: names go unresolved, credentials are sent */
    server uph, ups;
    server_start(&uph, UP_HTTP);
    server_start(&ups, UP_SOCKS);
    egress_upstream up;
    char url[100];
    snprintf(url, sizeof url, "http://alice:s3cret@ok.test:%u", uph.port);
    CHECK(egress_upstream_parse(url, NULL, NULL, "proxy.server", &up, &e) == SBX_OK);
    uint16_t p2 = 0;
    egress_client *c2 = client(g, p, false, &up, &p2);
    usleep(50000);
    ask(p2, "CONNECT unresolvable.example:443 HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n", out,
        sizeof out);
    CHECK(strstr(out, "200 Connection established") && strstr(out, "hello from upstream"));
    CHECK(strstr(uph.seen, "CONNECT unresolvable.example:443 HTTP/1.1") &&
          strstr(uph.seen, "Proxy-Authorization: Basic YWxpY2U6czNjcmV0"));
    ask(p2, "CONNECT meta.test:80 HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "link-local")); /* EGRESS_HOSTS says where it is */
    snprintf(url, sizeof url, "socks5://ok.test:%u", ups.port);
    CHECK(egress_upstream_parse(url, "bob", "pw", "proxy.server", &up, &e) == SBX_OK);
    uint16_t p3 = 0;
    egress_client *c3 = client(g, p, false, &up, &p3);
    usleep(50000);
    ask(p3, "CONNECT far.example:8443 HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "hello from socks upstream"));
    CHECK(strstr(ups.seen, "user=bob pass=pw dest=far.example"));
    ask(p3, "CONNECT 10.0.0.1:80 HTTP/1.1\r\n\r\n", out, sizeof out);
    CHECK(strstr(out, "403") && strstr(out, "private address 10.0.0.1"));
    CHECK(egress_upstream_parse("ftp://x:1", NULL, NULL, "proxy.server", &up, &e) == SBX_EINVAL);
    CHECK(egress_upstream_parse("http://x", NULL, NULL, "proxy.server", &up, &e) == SBX_EINVAL);

    egress_client_free(c);
    egress_client_free(c2);
    egress_client_free(c3);
    usleep(50000);
    /* a freed client's listener is closed */
    CHECK(ask(port, "CONNECT ok.test:80 HTTP/1.1\r\n\r\n", out, sizeof out) == 0);
    CHECK(t4.released == 1); /* with the client */
    egress_stats tot;
    egress_gateway_totals(g, &tot);
    CHECK(tot.connections >= 5 && tot.refused >= 9);
    egress_gateway_stop(g);
    egress_policy_free(p);
    server_stop(&origin);
    server_stop(&uph);
    server_stop(&ups);
    return CHECK_DONE();
}
