/* cdp.h -- Chrome DevTools Protocol client over libwebsockets, one service thread for all.
 *
 * One lws client context, owned by the service thread started by cdp_start(), carries every
 * browser's WebSocket. Other threads never touch lws: they queue work on a cdp_conn and wake
 * the service thread with lws_cancel_service(), the one door into it. Each call waits for its
 * reply on a condition variable of its own, with a deadline: a reply (or a failure) wakes that
 * caller only, never the callers waiting on other commands or other browsers. Incoming
 * fragments are reassembled (a message is capped at CDP_MAX_MESSAGE; beyond, the connection is
 * closed as broken).
 *
 * Callbacks (on_event, on_close) run on the service thread: they must be quick and must not
 * call cdp_call (they may call cdp_send, which does not wait).
 *
 * Thread safety: cdp_start/cdp_stop from the main thread; everything else from any thread.
 * Ownership: cdp_connect returns a conn the caller frees with cdp_close.
 */
#ifndef SBX_BROWSER_CDP_H
#define SBX_BROWSER_CDP_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

#define CDP_MAX_MESSAGE (64u << 20)

typedef struct cdp_conn cdp_conn;

typedef struct cdp_handlers {
    /* An event (a message without "id"); `sid` is the flattened target session or NULL. */
    void (*on_event)(void *ud, const char *method, const char *sid, const cJSON *params);
    /* The socket closed or broke (called once, not after cdp_close began). */
    void (*on_close)(void *ud, const char *why);
    void *ud;
} cdp_handlers;

int cdp_start(sbx_err *e);
void cdp_stop(void);

/* Connect to ws://127.0.0.1:port/path and wait for the handshake up to `timeout_ms`. */
cdp_conn *cdp_connect(int port, const char *path, const cdp_handlers *h, int64_t timeout_ms,
                      sbx_err *e);

/* Close the socket, fail pending calls, and free the conn once no callback runs. NULL ok. */
void cdp_close(cdp_conn *c);

/* Send `method` (params taken, may be NULL) to session `sid` (NULL: the browser) and wait for
 * the reply. *result (if non-NULL) receives "result" (caller frees). Errors: SBX_EINTERNAL
 * when Chromium answers with an error ("Chromium refused <method>: <its message>": a failure
 * of Chromium or of the server, not of the client), SBX_ECRASHED when the connection is gone
 * or breaks, SBX_ETIMEOUT when no reply came within `timeout_ms`. */
sbx_code cdp_call(cdp_conn *c, const char *sid, const char *method, cJSON *params,
                  int64_t timeout_ms, cJSON **result, sbx_err *e);

/* A command of a batch: params taken. */
typedef struct cdp_cmd {
    const char *method;
    cJSON *params;
} cdp_cmd;
#define CDP_MAX_BATCH 8
/* Send 1..CDP_MAX_BATCH commands to session `sid` back to back, without waiting between them
 * (Chromium runs one session's commands in the order they arrive), then wait for all replies:
 * one round trip instead of n. The first command that failed, or did not answer within
 * `timeout_ms`, is the error. */
sbx_code cdp_call_all(cdp_conn *c, const char *sid, const cdp_cmd *cmds, int n, int64_t timeout_ms,
                      sbx_err *e);
/* Send without waiting (the reply is dropped). Params taken. */
void cdp_send(cdp_conn *c, const char *sid, const char *method, cJSON *params);

/* End every call waiting on target session `sid` now with `code` and `why` (a target that
 * crashed answers nothing until it is loaded again). Any thread, callbacks included. */
void cdp_fail_session(cdp_conn *c, const char *sid, sbx_code code, const char *why);

/* True once the socket closed or broke. */
bool cdp_dead(cdp_conn *c);

/* ---- for unit tests (tests/unit/browser/test_cdp.c): CDP traffic without a socket ---- */

/* An open connection with no socket behind it (cdp_start is not needed): what is sent on it
 * waits for cdp_test_sent; cdp_test_receive hands it a message as if Chromium had sent it.
 * Freed by cdp_close. NULL when out of memory. */
cdp_conn *cdp_test_conn(const cdp_handlers *h);
/* The oldest message sent on `c` and not taken yet (malloc'd, caller frees), or NULL. */
char *cdp_test_sent(cdp_conn *c);
/* Dispatch `text` on `c` as the service thread does with a message from Chromium (replies go
 * to their callers, events to on_event, on the calling thread). */
void cdp_test_receive(cdp_conn *c, const char *text);

#endif
