/* fuzz_egress_socks.c -- the egress gateway's SOCKS5 parsers (src/common/egress_proto.c): a
 * greeting, then a request, from the bytes a sandboxed client sends. Checks their promises: a
 * complete message uses no more bytes than it was given, a CONNECT has a port and a host
 * without NUL bytes, a refusal carries one of the reply codes 1, 7 or 8; and the messages the
 * gateway builds for an upstream (user/password, CONNECT) parse back to what went in. */
#include "common/egress_proto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t used = 0;
    int g = egress_socks_greeting(data, size, &used);
    FUZZ_ASSERT(g >= -1 && g <= 1);
    if (g != 1)
        return 0;
    FUZZ_ASSERT(used >= 3 && used <= size);
    egress_socks_req r;
    size_t rused = 0;
    int q = egress_socks_request(data + used, size - used, &r, &rused);
    FUZZ_ASSERT(q >= -1 && q <= 1);
    if (q < 0)
        FUZZ_ASSERT(r.reply == 1 || r.reply == 7 || r.reply == 8);
    if (q != 1)
        return 0;
    FUZZ_ASSERT(rused <= size - used && r.port != 0);
    size_t hl = strnlen(r.host, sizeof r.host);
    FUZZ_ASSERT(hl > 0 && hl < sizeof r.host);
    /* what we would send an upstream for it parses back */
    unsigned char out[300];
    size_t n = egress_socks_connect_req(r.host, r.port, out, sizeof out);
    FUZZ_ASSERT(n > 0);
    egress_socks_req back;
    size_t bused = 0;
    FUZZ_ASSERT(egress_socks_request(out, n, &back, &bused) == 1 && bused == n);
    FUZZ_ASSERT(back.port == r.port && !strcmp(back.host, r.host));
    unsigned char up[600];
    FUZZ_ASSERT(egress_socks_userpass(r.host, r.host, up, sizeof up) == 3 + 2 * hl);
    return 0;
}
