/* test_base64.c -- base64 both ways (src/common/base64.c): the RFC 4648 vectors, round trips
 * of every length up to 64 with every byte value, and refused input. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/base64.h"

static int decodes_to(const char *b64, const char *want) {
    size_t len = 12345;
    char *d = sbx_b64_decode(b64, strlen(b64), &len);
    int ok = d && len == strlen(want) && memcmp(d, want, len) == 0 && d[len] == '\0';
    free(d);
    return ok;
}

static int refused(const char *b64) {
    size_t len = 12345;
    char *d = sbx_b64_decode(b64, strlen(b64), &len);
    free(d);
    return !d && len == 12345;
}

int main(void) {
    const struct {
        const char *in, *b64;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    char out[128];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].in);
        CHECK(sbx_b64_encode(v[i].in, n, out) == strlen(v[i].b64));
        CHECK(SBX_B64_ENCODED_LEN(n) == strlen(v[i].b64));
        CHECK(strcmp(out, v[i].b64) == 0);
        CHECK(decodes_to(v[i].b64, v[i].in));
    }
    /* Padding may be left out. */
    CHECK(decodes_to("Zg", "f"));
    CHECK(decodes_to("Zm8", "fo"));
    CHECK(decodes_to("Zm9vYmE", "fooba"));

    /* Every byte value, every length, both ways. */
    unsigned char raw[64];
    for (int i = 0; i < 64; i++)
        raw[i] = (unsigned char)(i * 67 + 255);
    int round_trips = 1;
    for (size_t n = 0; n <= sizeof raw; n++) {
        size_t m = sbx_b64_encode(raw, n, out), len = 0;
        char *d = sbx_b64_decode(out, m, &len);
        round_trips = round_trips && d && len == n && memcmp(d, raw, n) == 0;
        free(d);
    }
    CHECK(round_trips);
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char big[SBX_B64_ENCODED_LEN(256) + 1];
    size_t len = 0;
    char *d = sbx_b64_decode(big, sbx_b64_encode(all, 256, big), &len);
    CHECK(d && len == 256 && memcmp(d, all, 256) == 0);
    free(d);

    CHECK(refused("Zm9v!"));    /* outside the alphabet */
    CHECK(refused("Zm 9v"));    /* whitespace */
    CHECK(refused("Z"));        /* one character cannot be */
    CHECK(refused("Zm9vY"));    /* nor 4k + 1 */
    CHECK(refused("Zg=a"));     /* '=' inside */
    CHECK(refused("Z==="));     /* three '=' */
    CHECK(refused("=Zg="));     /* '=' first */
    CHECK(refused("Zm8=Zm8=")); /* padding in the middle */
    CHECK(refused("Zm9v-_"));   /* the URL alphabet is not this one */
    return CHECK_DONE();
}
