/* test_websocket.c -- SHA-1 vectors (FIPS 180-4 examples) and the
 * handshake example of RFC 6455. */
#include <string.h>

#include "check.h"
#include "common/websocket.h"

static int sha1_is(const char *msg, size_t len, const char *hex) {
    unsigned char d[20];
    char h[41];
    sbx_sha1(msg, len, d);
    for (int i = 0; i < 20; i++) {
        h[2 * i] = "0123456789abcdef"[d[i] >> 4];
        h[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
    }
    h[40] = '\0';
    return strcmp(h, hex) == 0;
}

int main(void) {
    CHECK(sha1_is("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d"));
    CHECK(sha1_is("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha1_is(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
    char a[1000];
    memset(a, 'a', sizeof a);
    CHECK(sha1_is(a, 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"));
    CHECK(sha1_is(a, 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"));
    CHECK(sha1_is(a, 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"));

    char acc[29];
    CHECK(sbx_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc) == 0);
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK(sbx_ws_accept("short", acc) == -1);
    CHECK(sbx_ws_accept("dGhlIHNhbXBsZSBub25jZQ=x", acc) == -1);
    CHECK(sbx_ws_accept("dGhlIHNhbXBs ZSBub25jZQ==", acc) == -1);
    CHECK(sbx_ws_accept(NULL, acc) == -1);
    return CHECK_DONE();
}
