/* passthrough.c -- the CDP passthrough's second leg and its byte pump (see passthrough.h). */
#define _GNU_SOURCE
#include "passthrough.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/base64.h"
#include "../common/log.h"
#include "../common/websocket.h"
#include "session.h"

#define IO_TIMEOUT_S   10 /* a side that takes no bytes for this long ends the link */
#define TOUCH_EVERY_MS 1000
#define BUF_BYTES      (64 * 1024)

struct br_cdp_link {
    char sid[SBX_SID_LEN];
    int fd;                 /* Chromium's side */
    bool (*stopping)(void); /* the server is shutting down */
    char early[4096];       /* what Chromium sent right behind its 101 */
    size_t early_len;
};

/* Blocking I/O bounded by IO_TIMEOUT_S, and no Nagle delay on small CDP frames. */
static void tune_socket(int fd) {
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Does the answer's head [head, end) say 101 with Sec-WebSocket-Accept `want`? The status is
 * exactly 101, and the value is that of the header line, not bytes anywhere in the answer. */
static bool switching(const char *head, const char *end, const char *want) {
    if (strncmp(head, "HTTP/1.1 101", 12) != 0 || (head[12] != ' ' && head[12] != '\r'))
        return false;
    static const char name[] = "Sec-WebSocket-Accept:";
    const size_t nlen = sizeof name - 1, wlen = strlen(want);
    for (const char *line = strstr(head, "\r\n"); line && line < end; line = strstr(line, "\r\n")) {
        line += 2;
        if ((size_t)(end - line) < nlen || strncasecmp(line, name, nlen) != 0)
            continue;
        const char *v = line + nlen;
        while (*v == ' ' || *v == '\t')
            v++;
        const char *e = v + strcspn(v, "\r");
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        return (size_t)(e - v) == wlen && !memcmp(v, want, wlen);
    }
    return false;
}

br_cdp_link *br_cdp_open(const char *session_id, int port, const char *path, bool (*stopping)(void),
                         sbx_err *e) {
    br_cdp_link *l = calloc(1, sizeof *l);
    if (!l) {
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    snprintf(l->sid, sizeof l->sid, "%s", session_id);
    l->stopping = stopping;
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l->fd >= 0)
        tune_socket(l->fd);
    if (l->fd < 0 || connect(l->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        sbx_fail(e, SBX_EUNAVAIL,
                 "the session's Chromium did not accept a DevTools connection (%s); retry, or "
                 "create a new session",
                 strerror(errno));
        br_cdp_close(l);
        return NULL;
    }
    unsigned char raw[16];
    char key[25], req[512];
    sbx_random_bytes(raw, sizeof raw);
    sbx_b64_encode(raw, sizeof raw, key);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port, key);
    char resp[4096];
    size_t got = 0;
    char *end = NULL;
    if (n > 0 && (size_t)n < sizeof req && write_all(l->fd, req, (size_t)n) == 0) {
        while (!end && got < sizeof resp - 1) {
            ssize_t r = recv(l->fd, resp + got, sizeof resp - 1 - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
            resp[got] = '\0';
            end = strstr(resp, "\r\n\r\n");
        }
    }
    char want[29];
    sbx_ws_accept(key, want);
    if (!end || !switching(resp, end, want)) {
        sbx_fail(e, SBX_EUNAVAIL,
                 "the session's Chromium refused a DevTools connection; retry, or create a new "
                 "session");
        br_cdp_close(l);
        return NULL;
    }
    end += 4;
    l->early_len = got - (size_t)(end - resp);
    memcpy(l->early, end, l->early_len);
    return l;
}

void br_cdp_close(void *link) {
    br_cdp_link *l = link;
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l);
}

void br_cdp_pump(int client, const char *extra, size_t extra_len, void *link) {
    br_cdp_link *l = link;
    tune_socket(client);
    if ((l->early_len && write_all(client, l->early, l->early_len) != 0) ||
        (extra_len && write_all(l->fd, extra, extra_len) != 0))
        return;
    char *buf = malloc(BUF_BYTES);
    if (!buf)
        return;
    uint64_t up = 0, down = 0;
    int64_t touched = sbx_now_ms();
    bool used = false;
    const char *why = "the client closed";
    for (;;) {
        if (l->stopping && l->stopping()) {
            why = "the server is stopping";
            break;
        }
        int64_t now = sbx_now_ms();
        if (used && now - touched >= TOUCH_EVERY_MS) {
            touched = now;
            used = false;
            if (!br_session_touch(l->sid)) {
                why = "the session is gone";
                break;
            }
        }
        struct pollfd p[2] = {{.fd = client, .events = POLLIN}, {.fd = l->fd, .events = POLLIN}};
        int r = poll(p, 2, 250);
        if (r < 0 && errno != EINTR) {
            why = "poll failed";
            break;
        }
        if (r <= 0)
            continue;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(p[i].fd, buf, BUF_BYTES, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || write_all(p[1 - i].fd, buf, (size_t)n) != 0) {
                why = i == 0 ? (n <= 0 ? "the client closed" : "Chromium stopped reading")
                             : (n <= 0 ? "Chromium closed" : "the client stopped reading");
                done = true;
                break;
            }
            *(i == 0 ? &up : &down) += (uint64_t)n;
            used = true;
        }
        if (done)
            break;
    }
    free(buf);
    shutdown(client, SHUT_RDWR);
    LOG_I("browser", "session=%s cdp passthrough ended (%s; %llu bytes up, %llu down)", l->sid, why,
          (unsigned long long)up, (unsigned long long)down);
}
