/* fuzz_websocket.c -- the WebSocket handshakes of the CDP passthrough. Two readers take
 * outside bytes there: sbx_ws_accept (src/common/websocket.c) reads the client's
 * Sec-WebSocket-Key, and br_cdp_open (src/browser/passthrough.c) reads Chromium's answer to
 * its own handshake (the 101 status, the Sec-WebSocket-Accept, and the frames that may follow
 * it in the same read). The passthrough parses no frames after that: it forwards bytes.
 *
 * The input's first byte picks the reader. 'K': the rest is a client's key; sbx_ws_accept
 * must refuse it or write 28 base64 characters. Anything else: the rest is what a fake
 * Chromium on 127.0.0.1 (a thread of this process, on a port the kernel picks) answers
 * br_cdp_open, with every "{accept}" replaced by the right Sec-WebSocket-Accept for the key
 * br_cdp_open sent; br_cdp_open must refuse anything but a complete 101 with that value. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "browser/passthrough.h"
#include "common/websocket.h"
#include "fuzz.h"

static int g_listen = -1, g_port;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char *g_answer; /* the current input's answer, under g_mu */
static size_t g_answer_len;

/* The fake Chromium: one connection per input, answered from g_answer, then closed. */
static void *chromium(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char req[2048];
        size_t got = 0;
        while (got < sizeof req - 1) {
            ssize_t r = recv(c, req + got, sizeof req - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[got] = '\0';
        char accept[29] = "";
        const char *k = strstr(req, "Sec-WebSocket-Key: ");
        if (k) {
            char key[64];
            size_t n = strcspn(k + 19, "\r\n");
            snprintf(key, sizeof key, "%.*s", (int)(n < 63 ? n : 63), k + 19);
            FUZZ_ASSERT(sbx_ws_accept(key, accept) == 0); /* br_cdp_open's own key is valid */
        }
        pthread_mutex_lock(&g_mu);
        size_t cap = g_answer_len * 8 + 1, n = 0;
        char *out = malloc(cap);
        FUZZ_ASSERT(out);
        for (size_t i = 0; i < g_answer_len;) {
            if (g_answer_len - i >= 8 && !memcmp(g_answer + i, "{accept}", 8)) {
                memcpy(out + n, accept, 28);
                n += 28;
                i += 8;
            } else {
                out[n++] = g_answer[i++];
            }
        }
        pthread_mutex_unlock(&g_mu);
        for (size_t off = 0; off < n;) {
            ssize_t w = send(c, out + off, n - off, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        free(out);
        close(c);
    }
    return NULL;
}

static void start_chromium(void) {
    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    FUZZ_ASSERT(g_listen >= 0 && bind(g_listen, (struct sockaddr *)&a, sizeof a) == 0 &&
                listen(g_listen, 8) == 0 &&
                getsockname(g_listen, (struct sockaddr *)&a, &len) == 0);
    g_port = ntohs(a.sin_port);
    pthread_t t;
    FUZZ_ASSERT(pthread_create(&t, NULL, chromium, NULL) == 0);
    pthread_detach(t);
}

static void client_key(const uint8_t *data, size_t size) {
    char *key = fuzz_cstr(data, size);
    char out[29];
    memset(out, 'x', sizeof out);
    if (sbx_ws_accept(key, out) == 0) {
        FUZZ_ASSERT(strlen(out) == 28);
        FUZZ_ASSERT(
            strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == 28);
    }
    free(key);
}

/* Does the answer hold a header line "Sec-WebSocket-Accept: {accept}"? Only that gives the
 * value (the key is random): the value elsewhere, under another name, must not do. */
static bool accept_line(const uint8_t *data, size_t size) {
    static const char name[] = "\r\nsec-websocket-accept:";
    const size_t n = sizeof name - 1;
    for (size_t i = 0; i + n <= size; i++) {
        if (strncasecmp((const char *)data + i, name, n) != 0)
            continue;
        size_t v = i + n;
        while (v < size && (data[v] == ' ' || data[v] == '\t'))
            v++;
        if (size - v >= 8 && !memcmp(data + v, "{accept}", 8))
            return true;
    }
    return false;
}

static void chromium_answer(const uint8_t *data, size_t size) {
    if (g_listen < 0)
        start_chromium();
    if (size > 16384) /* br_cdp_open reads at most 4 KiB of it */
        size = 16384;
    pthread_mutex_lock(&g_mu);
    free(g_answer);
    g_answer = malloc(size + 1);
    FUZZ_ASSERT(g_answer);
    memcpy(g_answer, data, size);
    g_answer_len = size;
    pthread_mutex_unlock(&g_mu);
    sbx_err e = {0};
    br_cdp_link *l = br_cdp_open("fuzz", g_port, "/devtools/browser/fuzz", NULL, &e);
    if (l) {
        FUZZ_ASSERT(size >= 12 && !memcmp(data, "HTTP/1.1 101", 12) && accept_line(data, size));
        br_cdp_close(l);
    } else {
        FUZZ_ASSERT(e.code == SBX_EUNAVAIL && e.msg[0]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    if (data[0] == 'K')
        client_key(data + 1, size - 1);
    else
        chromium_answer(data + 1, size - 1);
    return 0;
}
