/* fuzz_url.c -- the navigation URL policy br_url_check (src/browser/url_policy.c) over any URL a
 * client can send, with a deny list and an allow list configured as an operator would. Checks
 * its promises: SBX_OK only for about:blank or an http(s) URL with a host, SBX_EINVAL with a
 * message saying "url" otherwise, never a read or write out of bounds. The input's first byte
 * picks the configuration: even = deny list only, odd = deny and allow lists. */
#include <strings.h>

#include "browser/url_policy.h"
#include "fuzz.h"

static void load(int allow) {
    static int loaded = -1;
    if (loaded == allow)
        return;
    FUZZ_ASSERT(br_url_policy_init(allow ? "example.com,*.allowed.test,127.0.0.1" : NULL,
                                   "denied.test,*.evil.test,10.1.2.3,[::1]") == 0);
    loaded = allow;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    load(data[0] & 1);
    char *url = fuzz_cstr(data + 1, size - 1);
    sbx_err e = {0};
    sbx_code rc = br_url_check(url, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    if (rc == SBX_OK)
        FUZZ_ASSERT(strcasecmp(url, "about:blank") == 0 || strncasecmp(url, "http://", 7) == 0 ||
                    strncasecmp(url, "https://", 8) == 0);
    else
        FUZZ_ASSERT(strnlen(e.msg, sizeof e.msg) < sizeof e.msg && strstr(e.msg, "url"));
    free(url);
    return 0;
}
