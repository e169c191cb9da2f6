/* conn.h -- what server.c lends the modules that build special replies of a request
 * (sse.c: streamed bodies; ws_upgrade.c: WebSocket upgrades). Private to src/http.
 *
 * Threading: each call on the request's connection thread, like the handler that answers.
 */
#ifndef SBX_HTTP_CONN_H
#define SBX_HTTP_CONN_H

#include <stdbool.h>

struct http_conn;
struct MHD_Response;

/* Make `resp` the request's reply with `status` (takes it; adds Content-Type when `ctype`,
 * X-Request-Id and the headers set with http_add_header). A second reply is dropped and
 * logged; a NULL `resp` (out of memory) is logged and becomes a 500. */
void http_conn_set_response(struct http_conn *c, int status, struct MHD_Response *resp,
                            const char *ctype);

/* True for a Content-Type whose body the client decodes as text: application/json,
 * application/<x>+json, text/<x>. Those replies leave as well-formed UTF-8. */
bool http_is_text_type(const char *ctype);

/* A WebSocket upgrade's work (ws_upgrade.c), owned by its request once attached. */
typedef struct ws_upgrade ws_upgrade;

/* Attach `u` to the request: ws_upgrade_free(u) runs when the request ends. */
void http_conn_set_upgrade(struct http_conn *c, ws_upgrade *u);

/* Release `u` and its argument if the upgrade handler never ran. NULL is a no-op. */
void ws_upgrade_free(ws_upgrade *u);

#endif
