/* base64.h -- standard base64 (RFC 4648 section 4: A-Z a-z 0-9 + /, '=' padding), both ways.
 *
 * Encoding is used for the WebSocket handshake (websocket.c) and the passthrough's key;
 * decoding for the images and PDFs Chromium sends as base64 (browser/capture.c).
 * Leaf module: libc only. Thread safety: pure functions.
 */
#ifndef SBX_BASE64_H
#define SBX_BASE64_H

#include <stddef.h>

/* Characters sbx_b64_encode writes for `n` bytes (without the NUL). */
#define SBX_B64_ENCODED_LEN(n) (4 * (((n) + 2) / 3))

/* Base64 of `n` bytes into `out` (room for SBX_B64_ENCODED_LEN(n) + 1), padded, NUL
 * terminated. Returns the length written, without the NUL. */
size_t sbx_b64_encode(const void *in, size_t n, char *out);

/* Decode the `n` characters at `in` (padding optional; no whitespace) into a malloc'd buffer
 * the caller frees (NUL-terminated past *len, for convenience). NULL when `in` is not base64
 * (a character outside the alphabet, a stray '=', a length that cannot be) or memory ran out;
 * *len is left untouched then. */
char *sbx_b64_decode(const char *in, size_t n, size_t *len);

#endif
