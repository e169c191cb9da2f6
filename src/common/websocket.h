/* websocket.h -- the one piece of RFC 6455 the server computes itself: the handshake's
 * Sec-WebSocket-Accept (base64 of the SHA-1 of the client's key and the protocol's GUID).
 * Frames are never parsed here: the CDP passthrough forwards them as bytes.
 * Thread safety: pure functions.
 */
#ifndef SBX_WEBSOCKET_H
#define SBX_WEBSOCKET_H

#include <stddef.h>

/* SHA-1 (FIPS 180-4) of `len` bytes. */
void sbx_sha1(const void *data, size_t len, unsigned char out[20]);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (28 characters plus NUL). Returns 0,
 * or -1 when the key is not the base64 of 16 bytes. */
int sbx_ws_accept(const char *key, char out[29]);

#endif
