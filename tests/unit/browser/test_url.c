/* test_url.c -- navigation URL policy (schemes, host allow/deny lists) and the short TMPDIR
 * rule for deep session directories. */
#include <stdlib.h>
#include <string.h>

#include "browser/chromium.h"
#include "browser/session.h"
#include "check.h"
#include "common/config.h"

static int load(char **argv, int argc) {
    char errbuf[1024];
    FILE *err = fmemopen(errbuf, sizeof errbuf, "w");
    int rc = config_load(argc, argv, err);
    fclose(err);
    return rc;
}

static sbx_code check(const char *url) {
    sbx_err e = {0};
    return br_url_check(url, &e);
}

int main(void) {
    unsetenv("BROWSER_ALLOW_HOSTS");
    unsetenv("BROWSER_DENY_HOSTS");
    char *a0[] = {"sandboxd", "--dev", NULL};
    CHECK(load(a0, 2) == 0);
    CHECK(check("http://example.com/") == SBX_OK);
    CHECK(check("HTTPS://example.com:8443/x?y#z") == SBX_OK);
    CHECK(check("about:blank") == SBX_OK);
    CHECK(check("http://[::1]:8080/") == SBX_OK);
    CHECK(check("file:///etc/passwd") == SBX_EINVAL);
    CHECK(check("chrome://settings") == SBX_EINVAL);
    CHECK(check("javascript:alert(1)") == SBX_EINVAL);
    CHECK(check("data:text/html,x") == SBX_EINVAL);
    CHECK(check("about:config") == SBX_EINVAL);
    CHECK(check("http://") == SBX_EINVAL);
    CHECK(check("http:///path") == SBX_EINVAL);
    CHECK(check("ftp://example.com/") == SBX_EINVAL);

    char *a1[] = {"sandboxd", "--dev", "--browser-allow-hosts=*.example.com,127.0.0.1",
                  "--browser-deny-hosts=bad.example.com", NULL};
    CHECK(load(a1, 4) == 0);
    CHECK(check("http://www.example.com/") == SBX_OK);
    CHECK(check("http://example.com/") == SBX_OK);
    CHECK(check("http://127.0.0.1:9/") == SBX_OK);
    CHECK(check("http://user@127.0.0.1/") == SBX_OK);
    CHECK(check("http://bad.example.com/") == SBX_EINVAL);
    CHECK(check("http://BAD.example.com/") == SBX_EINVAL);
    CHECK(check("http://example.org/") == SBX_EINVAL);
    CHECK(check("http://notexample.com/") == SBX_EINVAL);
    CHECK(check("http://127.0.0.1@evil.org/") == SBX_EINVAL);
    CHECK(check("about:blank") == SBX_OK);

    char out[4200];
    chromium_tmpdir("/d/browser/abc", out, sizeof out);
    CHECK(strcmp(out, "/d/browser/abc/tmp") == 0);
    chromium_tmpdir("/tmp/sandboxd-test-abcdefgh/data/browser/0123456789abcdef0123456789abcdef",
                    out, sizeof out);
    CHECK(strcmp(out, "/tmp/sbxbr-0123456789abcdef0123456789abcdef") == 0);
    config_free();
    return CHECK_DONE();
}
