/* test_workspace.c -- the pure checks of Python sessions (exec/workspace.h): the environment a
 * session or command may add, the cwd of a command, and the requirements pip is given. */
#include <string.h>

#include "check.h"
#include "exec/workspace.h"

static sbx_code env_of(const char *json) {
    cJSON *o = cJSON_Parse(json);
    sbx_err e = {0};
    sbx_code rc = ws_check_env(o, "env", &e);
    if (rc != SBX_OK)
        CHECK(strstr(e.msg, "'env'") != NULL); /* the message names the field */
    cJSON_Delete(o);
    return rc;
}

int main(void) {
    /* environment */
    CHECK(ws_check_env(NULL, "env", NULL) == SBX_OK);
    CHECK(env_of("{}") == SBX_OK);
    CHECK(env_of("{\"A\": \"1\", \"_b2\": \"\", \"LONG_NAME_9\": \"x y\"}") == SBX_OK);
    CHECK(env_of("{\"1A\": \"x\"}") == SBX_EINVAL);
    CHECK(env_of("{\"A-B\": \"x\"}") == SBX_EINVAL);
    CHECK(env_of("{\"A=B\": \"x\"}") == SBX_EINVAL);
    CHECK(env_of("{\"\": \"x\"}") == SBX_EINVAL);
    CHECK(env_of("{\"A\": 1}") == SBX_EINVAL);
    CHECK(env_of("{\"A\": null}") == SBX_EINVAL);
    CHECK(env_of("[\"A\"]") == SBX_EINVAL);
    char many[4096] = "{";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"V%d\": \"x\"", i ? ", " : "",
                 i);
    strcat(many, "}");
    CHECK(env_of(many) == SBX_EINVAL); /* at most 64 */

    /* cwd of a command */
    CHECK(ws_rel_path_ok(""));
    CHECK(ws_rel_path_ok("sub"));
    CHECK(ws_rel_path_ok("a/b/c"));
    CHECK(ws_rel_path_ok("a//b/"));
    CHECK(ws_rel_path_ok("..a/b.."));
    CHECK(ws_rel_path_ok("./x"));
    CHECK(!ws_rel_path_ok(NULL));
    CHECK(!ws_rel_path_ok("/etc"));
    CHECK(!ws_rel_path_ok(".."));
    CHECK(!ws_rel_path_ok("../x"));
    CHECK(!ws_rel_path_ok("a/../../x"));
    CHECK(!ws_rel_path_ok("a/.."));
    CHECK(!ws_rel_path_ok("a//../b"));

    /* requirements */
    CHECK(ws_requirement_ok("numpy"));
    CHECK(ws_requirement_ok("sbxtiny==1.0"));
    CHECK(ws_requirement_ok("requests[socks]>=2,<3"));
    CHECK(ws_requirement_ok("zope.interface~=5.0"));
    CHECK(ws_requirement_ok("a_b-c"));
    CHECK(!ws_requirement_ok(NULL));
    CHECK(!ws_requirement_ok(""));
    CHECK(!ws_requirement_ok("-r/etc/passwd"));
    CHECK(!ws_requirement_ok("--index-url=http://x"));
    CHECK(!ws_requirement_ok("pkg @ file:///etc"));
    CHECK(!ws_requirement_ok("../x"));
    CHECK(!ws_requirement_ok("x;os_name=='nt'"));
    CHECK(!ws_requirement_ok("x y"));
    CHECK(!ws_requirement_ok("http://evil/x.whl"));
    return CHECK_DONE();
}
