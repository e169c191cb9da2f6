/* sse.h -- streamed reply bodies (Server-Sent Events and other long bodies): the bounded ring
 * between a producer thread and the connection's thread that sends what it holds.
 *
 * Private to src/http: route handlers see http_stream through http.h only. The ring is split
 * from its libmicrohttpd glue (http_reply_stream, in sse.c too) so that it can be tested
 * without a server (tests/unit/http/test_sse.c).
 *
 * Threading: one producer thread writes (http_stream_write, http_stream_sse,
 * http_stream_alive); the connection's thread reads (sse_stream_read) and says when the client
 * left (sse_stream_client_gone). Each side drops its reference when done; the last frees.
 */
#ifndef SBX_HTTP_SSE_H
#define SBX_HTTP_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http.h"

/* Bytes the ring holds: a producer blocks while it is full. */
#define SSE_RING_BYTES (64 * 1024)

/* An SSE stream whose producer is silent this long sends a comment line (SSE_KEEPALIVE), so
 * proxies keep it open and a client that left is noticed. */
#define SSE_KEEPALIVE_MS 1000
#define SSE_KEEPALIVE    ": keep-alive\n\n"

/* How long a producer may wait for a reader that takes nothing before the client counts as
 * gone (CONN_TIMEOUT_S; set once at start, before any stream). */
void sse_set_stall_ms(int64_t ms);

/* A new stream with two references (the reader's and the producer's). `content_type` decides
 * whether it is SSE (keep-alives) and text (writes repaired to well-formed UTF-8). NULL when
 * out of memory. */
http_stream *sse_stream_new(const char *content_type);

/* Drop one reference; the last one frees the stream. */
void sse_stream_unref(http_stream *s);

/* The reader: copy up to `max` buffered bytes into `out`, waiting up to `wait_ms` for some.
 * Returns the count; 0 when nothing came in time (an SSE stream then gives SSE_KEEPALIVE
 * instead, when it fits); -1 once the producer ended and all was read. */
ssize_t sse_stream_read(http_stream *s, char *out, size_t max, int64_t wait_ms);

/* The producer returned: the reader ends the body once the ring is empty. */
void sse_stream_end(http_stream *s);

/* The client left: the producer's next write returns -1. */
void sse_stream_client_gone(http_stream *s);

/* Wait until every producer thread started by http_reply_stream has returned, or
 * `deadline_ms` (sbx_now_ms clock) passed; returns how many still run. */
int sse_wait_producers(int64_t deadline_ms);

#endif
