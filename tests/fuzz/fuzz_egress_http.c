/* fuzz_egress_http.c -- the egress gateway's HTTP proxy head parser and rewriter
 * (src/common/egress_proto.c) over any bytes a sandboxed client can send. Checks its promises:
 * 0 only below EGRESS_HEAD_MAX, 1 with a non-empty lower-case host, a port and a head length
 * within the input, -1 with a status among 400/431 and a reason; a rewritten head fits its
 * buffer, starts with the method and "/", ends with the blank line after "Connection: close",
 * and carries no Proxy-* header. The input's first byte picks how much of it is handed over
 * at once (a head split across reads). */
#include <ctype.h>
#include <strings.h>

#include "common/egress_proto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    size_t cut = data[0] ? (size - 1) * data[0] / 255 : size - 1;
    char *buf = fuzz_cstr(data + 1, size - 1);
    for (int pass = 0; pass < 2; pass++) {
        size_t len = pass == 0 ? cut : size - 1;
        egress_http_req r;
        int rc = egress_http_parse(buf, len, &r);
        FUZZ_ASSERT(rc >= -1 && rc <= 1);
        if (rc == 0)
            FUZZ_ASSERT(len < EGRESS_HEAD_MAX);
        if (rc < 0)
            FUZZ_ASSERT((r.status == 400 || r.status == 431) && r.why && *r.why);
        if (rc != 1)
            continue;
        FUZZ_ASSERT(r.head_len >= 4 && r.head_len <= len && r.port != 0);
        size_t hl = strnlen(r.host, sizeof r.host);
        FUZZ_ASSERT(hl > 0 && hl < sizeof r.host);
        for (size_t i = 0; i < hl; i++)
            FUZZ_ASSERT(!isupper((unsigned char)r.host[i]));
        char out[EGRESS_HEAD_MAX + 64];
        long n = egress_http_rewrite(buf, &r, out, sizeof out);
        if (r.connect) {
            FUZZ_ASSERT(n == -1);
            continue;
        }
        FUZZ_ASSERT(n > 0 && (size_t)n <= sizeof out);
        char *sp = memchr(out, ' ', (size_t)n);
        FUZZ_ASSERT(sp && sp[1] == '/');
        FUZZ_ASSERT(n >= 21 && !memcmp(out + n - 21, "Connection: close\r\n\r\n", 21));
        for (long i = 0; i + 8 < n; i++)
            if (out[i] == '\n')
                FUZZ_ASSERT(strncasecmp(out + i + 1, "proxy-", 6) != 0);
    }
    free(buf);
    return 0;
}
