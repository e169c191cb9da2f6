/* egress_proto.h -- the two request parsers of the egress gateway, kept pure so they can be
 * fuzzed alone (tests/fuzz/fuzz_egress_http.c, fuzz_egress_socks.c): an HTTP proxy request
 * head (CONNECT host:port, or an absolute-URI request such as GET http://host/path) and its
 * rewriting into the origin-form head sent on; and a SOCKS5 greeting and CONNECT request
 * (RFC 1928, no authentication offered inbound), plus the username/password exchange
 * (RFC 1929) the gateway sends to an upstream SOCKS5 proxy.
 *
 * Nothing here allocates: every function reads the caller's bytes and writes the caller's
 * buffers, bounded by the sizes given. Any thread.
 */
#ifndef SBX_EGRESS_PROTO_H
#define SBX_EGRESS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EGRESS_HEAD_MAX 16384 /* the largest request head the gateway reads (431 beyond) */
#define EGRESS_HOST_MAX 256   /* a host name, NUL included (DNS names are at most 253) */

typedef struct egress_http_req {
    bool connect;               /* CONNECT host:port (a tunnel), else an absolute-URI request */
    char host[EGRESS_HOST_MAX]; /* without brackets, lower-cased */
    uint16_t port;
    size_t head_len; /* bytes of the head, blank line included (a body may follow) */
    int status;      /* on -1: the status to answer (400, 405, 431) */
    const char *why; /* on -1: a short reason (static text) */
} egress_http_req;

/* Parse a proxy request head at the start of buf[0..len). 1: complete (*r filled); 0: more
 * bytes needed (len < EGRESS_HEAD_MAX); -1: refused (r->status and r->why say why: a malformed
 * request or header line, a NUL byte, a scheme other than http in an absolute URI, user info
 * in the URI, a head of EGRESS_HEAD_MAX bytes or more). */
int egress_http_parse(const char *buf, size_t len, egress_http_req *r);

/* The head to send to the origin for a parsed absolute-URI request: the request line in
 * origin form (path only), the headers without any Proxy-* and hop-by-hop Connection/Keep-Alive,
 * then "Connection: close" (one request per connection: a kept-alive proxy connection could
 * otherwise carry a second request to another host). Writes at most `cap` bytes to `out`;
 * returns the length, or -1 when it does not fit or `r` is a CONNECT. */
long egress_http_rewrite(const char *buf, const egress_http_req *r, char *out, size_t cap);

/* SOCKS5 greeting: VER=5, NMETHODS, METHODS. 1: complete and "no authentication" (0x00) is
 * offered (*used = its length); 0: more bytes needed; -1: not SOCKS5 or no acceptable
 * method (answer 05 FF). */
int egress_socks_greeting(const unsigned char *b, size_t n, size_t *used);

typedef struct egress_socks_req {
    char host[EGRESS_HOST_MAX]; /* a name (ATYP 3), or an IP literal in canonical form (ATYP
                                 * 1, 4, or a name that is an address) */
    bool is_ip;
    uint16_t port;
    unsigned char reply; /* on -1: the SOCKS5 reply code to send (7: command, 8: address) */
} egress_socks_req;

/* SOCKS5 request: VER=5 CMD RSV ATYP DST.ADDR DST.PORT. 1: a complete CONNECT (*used = its
 * length); 0: more bytes; -1: refused (r->reply: 7 for BIND/UDP ASSOCIATE, 8 for an unknown
 * address type or an empty or NUL-holding name, 1 for a malformed request). */
int egress_socks_request(const unsigned char *b, size_t n, egress_socks_req *r, size_t *used);

/* A SOCKS5 reply with the given code and a zero IPv4 bound address into out[0..10). */
size_t egress_socks_reply(unsigned char code, unsigned char out[10]);

/* The RFC 1929 sub-negotiation for an upstream: 01 ULEN USER PLEN PASS. Returns its length,
 * or 0 when a part is longer than 255 bytes or `cap` is too small. */
size_t egress_socks_userpass(const char *user, const char *pass, unsigned char *out, size_t cap);

/* A SOCKS5 CONNECT request for host:port (a name, or an IPv4/IPv6 literal) into out. Returns
 * its length, or 0 when the name is longer than 255 bytes or `cap` is too small. */
size_t egress_socks_connect_req(const char *host, uint16_t port, unsigned char *out, size_t cap);

#endif
