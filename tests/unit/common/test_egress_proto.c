/* test_egress_proto.c -- the egress gateway's SOCKS5 request parser (src/common/egress_proto.c)
 * on requests a client may send: a name, an address, an address written as a name (which
 * becomes that address, in canonical form, so what an upstream is asked for parses back the
 * same), and the refusals. */
#include <string.h>

#include "check.h"
#include "common/egress_proto.h"

static int parse(const unsigned char *b, size_t n, egress_socks_req *r) {
    size_t used = 0;
    return egress_socks_request(b, n, r, &used);
}

int main(void) {
    egress_socks_req r;
    const unsigned char name[] = {5,   1,   0,   3,   8,   'S',  'i', 't',
                                  'e', '.', 'T', 'e', 's', 0x1f, 0x90};
    CHECK(parse(name, sizeof name, &r) == 1);
    CHECK(strcmp(r.host, "site.tes") == 0 && !r.is_ip && r.port == 8080);

    const unsigned char v6[] = {5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80};
    CHECK(parse(v6, sizeof v6, &r) == 1);
    CHECK(strcmp(r.host, "::1") == 0 && r.is_ip);

    /* "0:0::1" and "0::" sent as names: the addresses ::1 and ::, as the gateway sees them */
    const unsigned char v6name[] = {5, 1, 0, 3, 6, '0', ':', '0', ':', ':', '1', 0, 80};
    CHECK(parse(v6name, sizeof v6name, &r) == 1);
    CHECK(strcmp(r.host, "::1") == 0 && r.is_ip);
    const unsigned char zero[] = {5, 1, 0, 3, 3, '0', ':', ':', 0x3a, 0x3a};
    CHECK(parse(zero, sizeof zero, &r) == 1);
    CHECK(strcmp(r.host, "::") == 0 && r.is_ip && r.port == 0x3a3a);
    unsigned char out[300];
    size_t n = egress_socks_connect_req(r.host, r.port, out, sizeof out);
    egress_socks_req back;
    CHECK(n > 0 && parse(out, n, &back) == 1);
    CHECK(strcmp(back.host, r.host) == 0 && back.port == r.port);
    const unsigned char v4name[] = {5,   1,   0,   3,   9,   '1', '2', '7',
                                    '.', '0', '.', '0', '.', '1', 0,   80};
    CHECK(parse(v4name, sizeof v4name, &r) == 1);
    CHECK(strcmp(r.host, "127.0.0.1") == 0 && r.is_ip);

    /* refusals: BIND (7), an unknown address type (8), port 0 (8), a NUL in a name (8) */
    const unsigned char bind[] = {5, 2, 0, 1, 1, 2, 3, 4, 0, 80};
    CHECK(parse(bind, sizeof bind, &r) == -1 && r.reply == 7);
    const unsigned char atyp[] = {5, 1, 0, 9, 1, 2, 3, 4, 0, 80};
    CHECK(parse(atyp, sizeof atyp, &r) == -1 && r.reply == 8);
    const unsigned char port0[] = {5, 1, 0, 1, 1, 2, 3, 4, 0, 0};
    CHECK(parse(port0, sizeof port0, &r) == -1 && r.reply == 8);
    const unsigned char nul[] = {5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80};
    CHECK(parse(nul, sizeof nul, &r) == -1 && r.reply == 8);
    /* and a request cut short asks for more */
    CHECK(parse(name, 7, &r) == 0);
    return CHECK_DONE();
}
