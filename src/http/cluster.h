/* cluster.h -- what one replica of a cluster checks on every call: whose session a path
 * names, whether it still takes new sessions (draining), and the one way a call for another
 * replica's session goes on (an MCP tool call forwarded through the router).
 *
 * Session ids carry their owner ("<node>.<random>", common/node.h). A call whose path names a
 * session of another node is never looked up here: REST answers 421 misdirected_request naming
 * the owner (the router sent it to the wrong replica); an in-process call (dispatch.c, for
 * MCP) is forwarded to CLUSTER_URL when that is set, else answered the same 421. Without a
 * NODE_ID nothing here changes a call.
 *
 * Thread safety: cluster_init from main() before the server starts; everything else from
 * any thread.
 */
#ifndef SBX_HTTP_CLUSTER_H
#define SBX_HTTP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "../common/node.h"
#include "http.h"

/* Remember CLUSTER_URL (borrowed: it must outlive the server; NULL or "" for none). */
void cluster_init(const char *forward_url);

/* Start draining (SIGTERM with a NODE_ID): /ready answers 503 and creates 503 draining from
 * now on. Async-signal-safe (one atomic store). */
void cluster_drain_begin(void);
bool cluster_draining(void);

/* The cluster's check of a routed call `method` on `route` with its placeholder values:
 * SBX_OK; SBX_EWRONGNODE when the route's {id} is a session of another node (its name in
 * `owner`, and `e` says which); SBX_EDRAINING for a session create while draining (e has
 * retry_after). */
sbx_code cluster_admit(const char *method, const http_route *route, char params[][HTTP_PARAM_LEN],
                       char owner[SBX_NODE_MAX + 1], sbx_err *e);

/* True when a misdirected in-process call can be forwarded (CLUSTER_URL is set). */
bool cluster_can_forward(void);

/* The answer to a forwarded call, shaped like an in-process call's capture (dispatch.h):
 * everything in it is owned by the caller, who moves it into its capture. */
typedef struct cluster_reply {
    int status;
    char *ctype; /* the answer's Content-Type, or NULL */
    cJSON *json; /* a JSON answer, or NULL */
    char *data;  /* any other answer's bytes, or NULL */
    size_t len;
} cluster_reply;

/* Send `method path` with the query pairs (NULL-terminated name, value, ...; may be NULL) and
 * the JSON `body` (borrowed; NULL for none) to CLUSTER_URL, with the caller's `authorization`
 * header value (borrowed; NULL for none) and request id, and fill `out` with the answer. Blocks
 * up to the longest browser call plus a margin. A router or owner that cannot be reached is a
 * 503 unavailable naming `owner` in `out->json`. Returns out->status. */
int cluster_forward(const char *authorization, const char *req_id, const char *owner,
                    const char *method, const char *path, const char *const *query,
                    const cJSON *body, cluster_reply *out);

#endif
