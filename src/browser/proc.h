/* proc.h -- one launched Chromium: its directory, its process group and its CDP connection.
 *
 * br_proc_launch starts a Chromium in a fresh directory DATA_DIR/browser/<id> (chromium.h) and
 * waits until it answers CDP. Until br_proc_bind, its CDP events are dropped and a closed
 * connection only marks it unusable: that is how the pool (pool.h) holds browsers nobody uses
 * yet. A session (session.h) binds its handlers (tab.h) when it takes one.
 *
 * Thread safety: every function may be called from any thread. A br_proc belongs to one owner
 * (the pool, then one session); br_proc_discard is called once, by that owner.
 */
#ifndef SBX_BROWSER_PROC_H
#define SBX_BROWSER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "../common/egress_gateway.h"
#include "../common/err.h"
#include "../common/util.h"
#include "cdp.h"

typedef struct br_proc br_proc;

/* Browsers' egress (opts.h): every launch gets a client of `gw` (NULL: none) with a loopback
 * listener Chromium uses as its proxy, scoped by `pol` and BROWSER_NETWORK. Before any launch;
 * `up` copied. */
void br_proc_egress_init(egress_gateway *gw, const egress_policy *pol, bool allowlist,
                         const egress_upstream *up);
/* The egress client of a browser (its accounting, refusals, scope), or NULL without egress;
 * borrowed, valid while `p` is. */
egress_client *br_proc_net(br_proc *p);

/* What one session may reach: the request's `network` {allowedDomains} (may be NULL) narrowing
 * BROWSER_NETWORK's scope, and its `proxy` {server, username?, password?} (may be NULL: the
 * EGRESS_UPSTREAM_PROXY, if any). SBX_EINVAL naming the field. *scope is new (caller owns),
 * *up filled and *has_up set. Without egress: SBX_OK with *scope NULL. */
sbx_code br_proc_session_egress(const cJSON *network, const cJSON *proxy, egress_scope **scope,
                                egress_upstream *up, bool *has_up, sbx_err *e);

/* The Chromium binary and where directories go (both copied; bin NULL: launches answer 503). */
void br_proc_init(const char *bin, const char *data_dir);
void br_proc_shutdown(void);
/* The Chromium binary, or NULL when none was found. Borrowed until br_proc_shutdown. */
const char *br_proc_chromium(void);

/* Launch a Chromium in a fresh directory and wait up to `timeout_ms` for its first CDP reply.
 * NULL with `e` filled (SBX_EUNAVAIL, SBX_EINTERNAL); nothing is left running then. */
br_proc *br_proc_launch(int64_t timeout_ms, sbx_err *e);

/* Send the CDP events and the close of the connection to `h` from now on (h->ud must outlive
 * the proc). Returns false when the connection already closed (h->on_close is not called). */
bool br_proc_bind(br_proc *p, const cdp_handlers *h);

/* True while the Chromium leader has not exited and its CDP connection is up. Reaps nothing. */
bool br_proc_usable(br_proc *p);

/* Kill the process group once (a later call, or the discard, never hits a recycled pid), and
 * remove the directory. The connection and the record stay until br_proc_discard. */
void br_proc_reap(br_proc *p);

/* Kill the process group (once). */
void br_proc_kill(br_proc *p);

/* Kill, close the connection (no callback runs after it returns), remove the directory, free.
 * NULL ok. */
void br_proc_discard(br_proc *p);

/* The id (also the directory's name); borrowed, valid while `p` is. */
const char *br_proc_id(const br_proc *p);
/* The Chromium leader's pid (also its process group), 0 once it was killed. */
pid_t br_proc_pid(br_proc *p);
/* Its directory DATA_DIR/browser/<id>; borrowed, valid while `p` is. */
const char *br_proc_dir(const br_proc *p);
/* The CDP connection; borrowed, valid while `p` is. */
cdp_conn *br_proc_conn(br_proc *p);
/* Chromium's browser-wide DevTools endpoint: ws://127.0.0.1:port/path (`path` has room for
 * 256). */
void br_proc_devtools(const br_proc *p, int *port, char *path);

#endif
