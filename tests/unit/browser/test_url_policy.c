/* test_url_policy.c -- the URL policy of browser sessions: schemes, hosts, the allow and deny
 * lists (src/browser/url_policy.c). */
#include <stdlib.h>
#include <string.h>

#include "browser/url_policy.h"
#include "check.h"

static sbx_code check(const char *url) {
    sbx_err e = {0};
    return br_url_check(url, &e);
}

int main(void) {
    CHECK(br_url_policy_init(NULL, "") == 0);
    CHECK(check("http://example.com/") == SBX_OK);
    CHECK(check("HTTPS://example.com:8443/x?y#z") == SBX_OK);
    CHECK(check("about:blank") == SBX_OK);
    CHECK(check("ABOUT:BLANK") == SBX_OK);
    CHECK(check("http://[::1]:8080/") == SBX_OK);
    CHECK(check("file:///etc/passwd") == SBX_EINVAL);
    CHECK(check("chrome://settings") == SBX_EINVAL);
    CHECK(check("javascript:alert(1)") == SBX_EINVAL);
    CHECK(check("data:text/html,x") == SBX_EINVAL);
    CHECK(check("about:config") == SBX_EINVAL);
    CHECK(check("http://") == SBX_EINVAL);
    CHECK(check("http:///path") == SBX_EINVAL);
    CHECK(check("http://[::1/") == SBX_EINVAL);
    CHECK(check("http://user@:80/") == SBX_EINVAL);
    CHECK(check("ftp://example.com/") == SBX_EINVAL);

    /* The message names the field and the reason. */
    sbx_err e = {0};
    CHECK(br_url_check("file:///x", &e) == SBX_EINVAL);
    CHECK(strncmp(e.msg, "url: ", 5) == 0);

    CHECK(br_url_policy_init("*.example.com,127.0.0.1", "bad.example.com") == 0);
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
    memset(&e, 0, sizeof e);
    CHECK(br_url_check("http://bad.example.com/", &e) == SBX_EINVAL);
    CHECK(strstr(e.msg, "BROWSER_DENY_HOSTS") != NULL);

    /* Space-separated lists, "*", deny before allow. */
    CHECK(br_url_policy_init("*", "a.test b.test") == 0);
    CHECK(check("http://anything.org/") == SBX_OK);
    CHECK(check("http://b.test/") == SBX_EINVAL);
    CHECK(check("http://[::1]/") == SBX_OK);

    br_url_policy_free();
    CHECK(check("http://b.test/") == SBX_OK);
    return CHECK_DONE();
}
