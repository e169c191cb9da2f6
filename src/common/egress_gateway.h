/* egress_gateway.h -- the egress gateway: one thread that proxies every outbound connection of
 * sandboxed runs and browser sessions, after egress_policy.h has allowed it.
 *
 * One listening socket serves both protocols (the first byte tells): an HTTP proxy (CONNECT
 * host:port tunnels, TLS passes through untouched; absolute-URI requests such as
 * GET http://host/path are sent on in origin form, one request per connection) and SOCKS5
 * (CONNECT, no authentication inbound). The gateway resolves names itself (EGRESS_HOSTS first,
 * then DNS on a resolver thread of its own, so its loop never blocks), checks the name and
 * every address, connects to the checked address, and relays. A refusal is answered at once: 403
 * with a plain-text reason, or SOCKS5 reply 2 ("not allowed by ruleset"), and recorded in the
 * client's refusals.
 *
 * Clients: each run or session is one egress_client, made with its scope (what it may reach).
 * Its listeners are sockets the gateway accepts on: one made inside a run's own network
 * namespace and handed over (egress_client_adopt), or a loopback port opened for a browser
 * (egress_client_listen). Which listener a connection came in on says whose it is.
 *
 * Bounds: EGRESS_RELAY_BUF bytes buffered per direction and connection before the relay (and in
 * it where splicing is not available), EGRESS_RELAY_PIPE bytes in flight per direction in the
 * relay's pipes (page references of the sockets' own buffers, never copied), EGRESS_MAX_CONNS
 * connections at once, a request head within EGRESS_HEAD_TIMEOUT_MS (slowloris), a connect
 * within EGRESS_CONNECT_TIMEOUT_MS, EGRESS_IDLE_TIMEOUT_MS without a byte either way, and
 * EGRESS_TOTAL_TIMEOUT_MS in all.
 *
 * Thread safety: egress_gateway_start/stop from the main thread; every egress_client function
 * from any thread (the loop's own door is a queue and an eventfd). A client's counters are
 * read without locks.
 */
#ifndef SBX_EGRESS_GATEWAY_H
#define SBX_EGRESS_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "egress_policy.h"
#include "err.h"

#define EGRESS_RELAY_BUF          65536
#define EGRESS_RELAY_PIPE         262144 /* what a relay's pipe holds per direction (splice) */
#define EGRESS_MAX_CONNS          4096
#define EGRESS_HEAD_TIMEOUT_MS    10000
#define EGRESS_CONNECT_TIMEOUT_MS 15000
#define EGRESS_IDLE_TIMEOUT_MS    300000
#define EGRESS_TOTAL_TIMEOUT_MS   3600000

typedef struct egress_gateway egress_gateway;
typedef struct egress_client egress_client;

/* An upstream proxy every connection of a client goes through: "http://host:port" or
 * "socks5://host:port" (socks5h is the same), with optional credentials. */
typedef struct egress_upstream {
    char scheme[8]; /* "http" or "socks5" */
    char host[256];
    uint16_t port;
    char user[256], pass[256];
    bool has_auth;
} egress_upstream;

/* Parse "scheme://[user:pass@]host:port" into *u. SBX_EINVAL naming `field` when it does not
 * parse (an unknown scheme, no port). */
sbx_code egress_upstream_parse(const char *url, const char *user, const char *pass,
                               const char *field, egress_upstream *u, sbx_err *e);

/* Start the gateway's thread over `p` (borrowed: it must outlive the gateway). */
sbx_code egress_gateway_start(const egress_policy *p, egress_gateway **out, sbx_err *e);
/* Stop the thread (joined), close every connection and listener, free. NULL is a no-op. Every
 * client must have been freed. */
void egress_gateway_stop(egress_gateway *g);

/* A new client that takes ownership of `scope`; `up` (copied; NULL: none) chains its
 * connections through an upstream proxy. NULL when out of memory (scope then freed). */
egress_client *egress_client_new(egress_gateway *g, egress_scope *scope, const egress_upstream *up);

/* Replace the client's scope (taken) and upstream (copied; NULL: none) for the connections that
 * come from now on (a pooled browser adopted by a session with its own network or proxy). */
void egress_client_set_scope(egress_client *c, egress_scope *scope, const egress_upstream *up);

/* Accept connections on `listen_fd` (a listening TCP socket; ownership passes to the gateway,
 * even on failure) for this client. */
sbx_code egress_client_adopt(egress_client *c, int listen_fd, sbx_err *e);

/* Open a listener on 127.0.0.1 (a free port, written to *port) for this client. */
sbx_code egress_client_listen(egress_client *c, uint16_t *port, sbx_err *e);

typedef struct egress_stats {
    uint64_t bytes_in, bytes_out; /* from destinations / to destinations */
    uint64_t connections;         /* connections made to destinations */
    uint64_t refused;             /* connections refused by the policy */
    uint64_t failed;              /* allowed, but the destination could not be reached */
} egress_stats;
void egress_client_stats(const egress_client *c, egress_stats *out);

/* The distinct refusals so far (at most 32), each "HOST:PORT\tREASON". Returns a new cJSON array
 * of strings, or NULL when out of memory. */
cJSON *egress_client_refusals(egress_client *c);
/* The same for destinations that were allowed but could not be reached; REASON starts with
 * Chromium's name for the error ("net::ERR_CONNECTION_REFUSED (connection refused)"). */
cJSON *egress_client_failures(egress_client *c);

/* Told of each connection of the client that the policy refused (host, port and the reason, as
 * in egress_client_refusals), on the gateway's thread with the client's lock held: it must be
 * quick and take only leaf locks. */
typedef void (*egress_refusal_fn)(void *ud, const char *host, uint16_t port, const char *why);
/* Set the client's refusal callback (fn NULL: none) with its `ud`; `release` (NULL: none) is
 * called with `ud` when the callback is replaced or the client is freed. Any thread. */
void egress_client_on_refusal(egress_client *c, egress_refusal_fn fn, void *ud,
                              void (*release)(void *ud));

/* Close the client's listeners and connections (asynchronously) and drop the caller's hold. */
void egress_client_free(egress_client *c);

/* Totals of the whole gateway since start (for /metrics). */
void egress_gateway_totals(const egress_gateway *g, egress_stats *out);

#endif
