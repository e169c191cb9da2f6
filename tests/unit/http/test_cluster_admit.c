/* test_cluster_admit.c -- the cluster's check of each routed call (src/http/cluster.c): which
 * routes name a session, 421 for another node's id (the owner named), nothing without a
 * NODE_ID, and creates refused with 503 draining (and Retry-After) once draining began. */
#include <string.h>

#include "check.h"
#include "http/cluster.h"

static sbx_code admit(const char *method, const char *pattern, const char *id, char *owner,
                      sbx_err *e) {
    http_route r = {.method = method, .pattern = pattern};
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_LEN] = {{0}};
    snprintf(params[0], sizeof params[0], "%s", id ? id : "");
    return cluster_admit(method, &r, params, owner, e);
}

int main(void) {
    char owner[SBX_NODE_MAX + 1] = "";
    sbx_err e = {0};
    const char *other = "node-2.0123456789abcdef0123456789abcdef";
    const char *mine = "node-1.0123456789abcdef0123456789abcdef";

    /* without a node nothing is refused, not even a prefixed id */
    CHECK(sbx_node_set(NULL) == 0);
    CHECK(admit("GET", "/browser/sessions/{id}/content", other, owner, &e) == SBX_OK);
    cluster_drain_begin();
    CHECK(admit("POST", "/browser/sessions", NULL, owner, &e) == SBX_OK);

    CHECK(sbx_node_set("node-1") == 0);
    /* every route under a session, browser and Python alike, by pattern */
    const char *const session_routes[] = {
        "/browser/sessions/{id}",
        "/browser/sessions/{id}/navigate",
        "/browser/sessions/{id}/cdp",
        "/browser/sessions/{id}/tabs/{tabId}",
        "/browser/sessions/{id}/events",
        "/python/sessions/{id}",
        "/python/sessions/{id}/files/{path}",
    };
    for (size_t i = 0; i < sizeof session_routes / sizeof *session_routes; i++) {
        strcpy(owner, "");
        CHECK(admit("GET", session_routes[i], other, owner, &e) == SBX_EWRONGNODE);
        CHECK(!strcmp(owner, "node-2"));
        CHECK(strstr(e.msg, "node 'node-2'") && strstr(e.msg, "node 'node-1'"));
        CHECK(sbx_code_status(e.code) == 421);
        CHECK(admit("GET", session_routes[i], mine, owner, &e) == SBX_OK);
        CHECK(admit("GET", session_routes[i], "0123456789abcdef0123456789abcdef", owner, &e) ==
              SBX_OK); /* no prefix: looked up here (and not found) */
    }
    /* routes that name no session, or another kind of id */
    CHECK(admit("DELETE", "/tokens/{id}", other, owner, &e) == SBX_OK);
    CHECK(admit("GET", "/browser/sessionsX/{id}", other, owner, &e) == SBX_OK);
    CHECK(admit("GET", "/browser/sessions", NULL, owner, &e) == SBX_OK);

    /* draining (begun above): creates are 503 draining with Retry-After, the rest goes on */
    CHECK(cluster_draining());
    e = (sbx_err){0};
    CHECK(admit("POST", "/browser/sessions", NULL, owner, &e) == SBX_EDRAINING);
    CHECK(sbx_code_status(e.code) == 503 && e.retry_after == 1 && strstr(e.msg, "node-1"));
    CHECK(admit("POST", "/python/sessions", NULL, owner, &e) == SBX_EDRAINING);
    CHECK(admit("GET", "/browser/sessions", NULL, owner, &e) == SBX_OK);
    CHECK(admit("POST", "/execute", NULL, owner, &e) == SBX_OK);
    CHECK(admit("POST", "/browser/sessions/{id}/navigate", mine, owner, &e) == SBX_OK);

    /* forwarding needs both a node and CLUSTER_URL */
    cluster_init(NULL);
    CHECK(!cluster_can_forward());
    cluster_init("http://127.0.0.1:1");
    CHECK(cluster_can_forward());
    return CHECK_DONE();
}
