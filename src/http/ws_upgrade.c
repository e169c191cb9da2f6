/* ws_upgrade.c -- WebSocket upgrade replies: check the handshake, answer 101 with the
 * Sec-WebSocket-Accept, and hand the socket to the route's function on the connection's
 * thread until it returns (see http_reply_websocket in http.h).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "../common/websocket.h"
#include "conn.h"
#include "dispatch.h"
#include "http.h"

/* Owned by its request (freed when the request ends, which for an upgraded connection comes
 * after the upgrade handler closed it). */
struct ws_upgrade {
    http_ws_fn fn;
    void *arg;
    void (*arg_free)(void *);
};

static void ws_release(ws_upgrade *u) {
    if (u && u->arg_free && u->arg)
        u->arg_free(u->arg);
    if (u)
        u->arg = NULL;
}

void ws_upgrade_free(ws_upgrade *u) {
    ws_release(u); /* when the 101 never went out */
    free(u);
}

static void on_upgrade(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)mc, (void)con_cls;
    ws_upgrade *u = cls;
    int fl = fcntl(sock, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
    u->fn(sock, extra, extra_len, u->arg);
    ws_release(u);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* True when the comma-separated header value `v` holds `token` (case-insensitive). */
static bool has_token(const char *v, const char *token) {
    size_t n = strlen(token);
    for (const char *p = v; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t t = len;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(p, token, n) == 0)
            return true;
        p += len;
    }
    return false;
}

void http_reply_websocket(http_req *r, http_ws_fn fn, void *arg, void (*arg_free)(void *)) {
    if (r->capture) {
        http_capture_refuse(r, arg, arg_free);
        return;
    }
    const char *up = http_header(r, "Upgrade"), *conn = http_header(r, "Connection"),
               *ver = http_header(r, "Sec-WebSocket-Version"),
               *key = http_header(r, "Sec-WebSocket-Key");
    char accept[29];
    if (strcmp(r->method, "GET") != 0 || !up || !has_token(up, "websocket") || !conn ||
        !has_token(conn, "upgrade") || !ver || strcmp(ver, "13") != 0 ||
        sbx_ws_accept(key, accept) != 0) {
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINVAL,
                  "this is a WebSocket endpoint: connect with a WebSocket client (GET with "
                  "Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13 and a "
                  "Sec-WebSocket-Key), with the same Authorization header");
        return;
    }
    ws_upgrade *u = calloc(1, sizeof *u);
    struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(on_upgrade, u) : NULL;
    if (!resp) {
        free(u);
        if (arg_free)
            arg_free(arg);
        http_fail(r, SBX_EINTERNAL, "could not start a WebSocket reply");
        return;
    }
    *u = (ws_upgrade){fn, arg, arg_free};
    http_conn_set_upgrade(r->conn, u);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    http_conn_set_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp, NULL);
}
