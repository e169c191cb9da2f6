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

#include "../common/err.h"
#include "../common/node.h"
#include "dispatch.h"
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
sbx_code cluster_admit(const char *method, const http_route *route, char params[][128],
                       char owner[SBX_NODE_MAX + 1], sbx_err *e);

/* True when a misdirected in-process call can be forwarded (CLUSTER_URL is set). */
bool cluster_can_forward(void);

/* Send `method path` with cap's query and JSON body to CLUSTER_URL, as `caller` (its own
 * Authorization header goes along), and fill cap with the answer as an in-process call would
 * have been (status, Content-Type, JSON or bytes). Blocks up to the longest browser call plus a
 * margin. A router or owner that cannot be reached is a captured 503 naming `owner`. Returns
 * cap->status. */
int cluster_forward(http_req *caller, const char *owner, const char *method, const char *path,
                    http_capture *cap);

#endif
