/* test_dispatch.c -- in-process route calls: routing, scopes, captured replies, the request
 * accessors through a capture, and streams refused cleanly. */
#include <string.h>

#include "check.h"
#include "http/dispatch.h"

static int freed;
static void count_free(void *arg) {
    (void)arg;
    freed++;
}
static void never(http_stream *s, void *arg) {
    (void)s, (void)arg;
}

static const char *err_code(const http_capture *cap) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(cap->json, "error");
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
}

int main(void) {
    http_req caller = {.id = "t",
                       .method = "POST",
                       .path = "/mcp",
                       .owner = "master",
                       .admin = true,
                       .authenticated = true,
                       .token_label = "master"};
    auth_identity master = {.id = "master", .label = "master", .master = true, .scopes = ~0u};
    auth_identity none = {.id = "tok1", .label = "nobody", .master = false, .scopes = 0};

    /* a route that answers with bytes: the OpenAPI document */
    http_capture cap = {0};
    CHECK(http_call(&caller, &master, "GET", "/openapi.json", &cap) == 200);
    CHECK(cap.ctype && !strncmp(cap.ctype, "application/json", 16));
    CHECK(cap.data && cap.len > 100 && strstr(cap.data, "\"/mcp\""));
    http_capture_free(&cap);
    http_capture_free(&cap); /* twice is harmless */

    /* unknown route, wrong method, missing scope: the REST answers, captured */
    http_capture c2 = {0};
    CHECK(http_call(&caller, &master, "GET", "/no/such", &c2) == 404);
    CHECK(err_code(&c2) && !strcmp(err_code(&c2), "not_found"));
    http_capture_free(&c2);
    http_capture c3 = {0};
    CHECK(http_call(&caller, &master, "DELETE", "/health", &c3) == 405);
    http_capture_free(&c3);
    http_capture c4 = {0};
    CHECK(http_call(&caller, &none, "GET", "/metrics", &c4) == 403);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c4.json, "error");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    CHECK(msg && strstr(msg, "'admin' scope"));
    http_capture_free(&c4);

    /* the accessors read the capture; replies land in it */
    const char *q[] = {"tabId", "t1", "format", "png", NULL};
    http_capture c5 = {.query = q};
    http_req r = {.id = "t", .method = "GET", .path = "/x", .capture = &c5};
    CHECK(http_query(&r, "format") && !strcmp(http_query(&r, "format"), "png"));
    CHECK(http_query(&r, "quality") == NULL);
    CHECK(http_header(&r, "Accept") == NULL);
    sbx_err err = {0};
    cJSON *body = http_json_body(&r, &err);
    CHECK(cJSON_IsObject(body) && body->child == NULL);
    http_add_header(&r, "Retry-After", "1"); /* dropped, not a crash */
    http_fail(&r, SBX_ENOTFOUND, "no such thing");
    CHECK(c5.status == 404 && c5.json && !strcmp(err_code(&c5), "not_found"));
    http_reply_status(&r, 204); /* a second answer is dropped */
    CHECK(c5.status == 404);
    http_capture_free(&c5);

    /* a stream or a WebSocket cannot go through a capture: refused, its argument released */
    http_capture c6 = {0};
    r.capture = &c6;
    http_reply_stream(&r, 200, "text/event-stream", never, &freed, count_free);
    CHECK(freed == 1 && c6.status == 500);
    http_capture_free(&c6);
    http_capture c7 = {0};
    r.capture = &c7;
    http_reply_websocket(&r, NULL, &freed, count_free);
    CHECK(freed == 2 && c7.status == 500);
    http_capture_free(&c7);
    return CHECK_DONE();
}
