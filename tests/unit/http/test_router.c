/* test_router.c -- pattern matching, 404 vs 405 and the Allow list. */
#include <string.h>

#include "check.h"
#include "http/router.h"

int main(void) {
    char p[HTTP_MAX_PARAMS][ROUTER_PARAM_LEN];
    int n = 0;
    CHECK(router_match_pattern("/browser/sessions/{id}/tabs/{tabId}",
                               "/browser/sessions/abc/tabs/t1", p, &n));
    CHECK(n == 2 && !strcmp(p[0], "abc") && !strcmp(p[1], "t1"));
    CHECK(!router_match_pattern("/browser/sessions/{id}", "/browser/sessions/", p, &n));
    CHECK(!router_match_pattern("/browser/sessions/{id}", "/browser/sessions/a/b", p, &n));
    CHECK(!router_match_pattern("/health", "/healthz", p, &n));
    CHECK(!router_match_pattern("/health", "/health/", p, &n));
    CHECK(router_match_pattern("/health", "/health", p, &n) && n == 0);
    /* an over-long segment never overflows the parameter slot */
    char longpath[400] = "/browser/sessions/";
    memset(longpath + strlen(longpath), 'x', 300);
    CHECK(!router_match_pattern("/browser/sessions/{id}", longpath, p, &n));

    /* a tail placeholder takes the rest of the path, slashes and all */
    CHECK(router_match_pattern("/s/{id}/files/{path+}", "/s/x/files/a/b/c.txt", p, &n));
    CHECK(n == 2 && !strcmp(p[0], "x") && !strcmp(p[1], "a/b/c.txt"));
    CHECK(router_match_pattern("/s/{id}/files/{path+}", "/s/x/files/one", p, &n) && n == 2 &&
          !strcmp(p[1], "one"));
    CHECK(!router_match_pattern("/s/{id}/files/{path+}", "/s/x/files/", p, &n));
    CHECK(!router_match_pattern("/s/{id}/files/{path+}", "/s/x/files", p, &n));
    CHECK(!router_match_pattern("/s/{id}/files/{path+}", "/s/x/files/a//b", p, &n));
    CHECK(!router_match_pattern("/s/{id}/files/{path+}", "/s/x/files/a/", p, &n));
    char longtail[1200] = "/s/x/files/";
    memset(longtail + strlen(longtail), 'y', 1150);
    CHECK(!router_match_pattern("/s/{id}/files/{path+}", longtail, p, &n));
    /* a tail is a tail only at the end; elsewhere {x+} is an ordinary placeholder */
    CHECK(!router_match_pattern("/s/{a+}/z", "/s/b/c/z", p, &n));
    CHECK(router_match_pattern("/s/{a+}/z", "/s/b/z", p, &n) && n == 1 && !strcmp(p[0], "b"));

    router_match m;
    CHECK(router_find("GET", "/health", &m) == 0 && m.route &&
          !strcmp(m.route->pattern, "/health"));
    CHECK(m.route->open);
    CHECK(router_find("GET", "/no/such/path", &m) == 404 && !m.route);
    CHECK(router_find("DELETE", "/health", &m) == 405 && !strcmp(m.allow, "GET"));

    /* every route in the tables is well formed */
    size_t it = 0;
    int count = 0;
    for (const http_route *r; (r = router_next(&it)); count++) {
        CHECK(r->pattern[0] == '/');
        CHECK(r->fn != NULL);
        /* open only where the server opens it (GET /health, GET /ready), and then with no
         * scope */
        CHECK(!r->open || (!strcmp(r->method, "GET") &&
                           (!strcmp(r->pattern, "/health") || !strcmp(r->pattern, "/ready"))));
        CHECK(!(r->open && r->scope));
        /* a scope the token store knows (NULL: any valid token) */
        CHECK(!r->scope || !strcmp(r->scope, "exec") || !strcmp(r->scope, "browser") ||
              !strcmp(r->scope, "admin"));
    }
    CHECK(count >= 3);
    return CHECK_DONE();
}
