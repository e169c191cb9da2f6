/* fuzz_router.c -- the HTTP router (src/http/router.c) over every method and path a client can
 * send: the input is "METHOD PATH" (split at the first space; without one, all of it is the
 * path of a GET). Checks what router.h promises: 0 with a route of that method and at most
 * HTTP_MAX_PARAMS non-empty placeholder values without '/' (a tail's may hold inner ones), 405 with
 * an Allow list, else 404. */
#include "fuzz.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = fuzz_cstr(data, size);
    const char *method = "GET", *path = in;
    char *sp = strchr(in, ' ');
    if (sp) {
        *sp = '\0';
        method = in;
        path = sp + 1;
    }
    router_match m;
    int rc = router_find(method, path, &m);
    FUZZ_ASSERT(rc == 0 || rc == 404 || rc == 405);
    if (rc == 0) {
        FUZZ_ASSERT(m.route && strcmp(m.route->method, method) == 0);
        FUZZ_ASSERT(m.nparams >= 0 && m.nparams <= HTTP_MAX_PARAMS);
        for (int i = 0; i < m.nparams; i++) {
            size_t n = strnlen(m.params[i], sizeof m.params[i]);
            FUZZ_ASSERT(n > 0 && n < sizeof m.params[i]);
            /* only a tail placeholder ({name+}, last in its pattern) holds slashes */
            size_t pl = strlen(m.route->pattern);
            bool tail = i == m.nparams - 1 && pl > 2 && !strcmp(m.route->pattern + pl - 2, "+}");
            FUZZ_ASSERT(tail || !strchr(m.params[i], '/'));
            FUZZ_ASSERT(!tail || (m.params[i][n - 1] != '/' && !strstr(m.params[i], "//")));
        }
        FUZZ_ASSERT(router_match_pattern(m.route->pattern, path, NULL, NULL) == 1);
    } else {
        FUZZ_ASSERT(!m.route);
        FUZZ_ASSERT(strnlen(m.allow, sizeof m.allow) < sizeof m.allow);
        FUZZ_ASSERT((rc == 405) == (m.allow[0] != '\0'));
    }
    free(in);
    return 0;
}
