/* test_router.c -- pattern matching, 404 vs 405 and the Allow list. */
#include <string.h>

#include "check.h"
#include "http/router.h"

int main(void) {
    char p[HTTP_MAX_PARAMS][128];
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
