/* server.h -- the HTTP server's lifecycle (libmicrohttpd), as seen by main().
 *
 * Threading model: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a handler may
 * block on a child process or a CDP reply without stalling anyone else. Threads are bounded by
 * MAX_CONNECTIONS; stalled clients are cut after CONN_TIMEOUT_S of silence. Streamed bodies
 * are produced on one extra thread each, tracked so shutdown can wait for them.
 *
 * Thread safety: server_start/server_quiesce/server_drain/server_stop from the main thread only.
 */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H

#include <stdint.h>

#include "../common/err.h"
#include "http.h"

/* The server's settings (from the configuration, in main). */
typedef struct server_opts {
    const char *host;       /* numeric IPv4 or IPv6 address to listen on (borrowed) */
    int port;               /* 0: the kernel picks a free one */
    int64_t max_body_bytes; /* MAX_BODY_BYTES: larger bodies get 413 */
    int max_connections;    /* MAX_CONNECTIONS: one thread each */
    int conn_timeout_s;     /* CONN_TIMEOUT_S: a silent connection, or a stream's reader, is cut */
    http_defaults api;      /* what the API modules apply when a request leaves a field out */
} server_opts;

/* Bind o->host:o->port and start serving (`o` is copied; its strings must outlive the
 * server). On success returns SBX_OK and the bound port. */
sbx_code server_start(const server_opts *o, int *bound_port, sbx_err *e);

/* Stop accepting new connections (the listening socket is closed). */
void server_quiesce(void);

/* Wait until no request is in flight or `deadline_ms` (sbx_now_ms clock) passes.
 * Returns the number still in flight. */
int server_drain(int64_t deadline_ms);

/* Close every connection, join every thread (including stream producers), free the daemon. */
void server_stop(void);

#endif
