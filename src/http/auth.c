/* auth.c -- constant-time bearer-token comparison against the master token. */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/util.h"
#include "tokens.h"

static const char *master_token = ""; /* borrowed from main, which keeps it */

void auth_init(const char *master) {
    master_token = master ? master : "";
}

sbx_code auth_check(const char *authorization, auth_identity *who, sbx_err *e) {
    if (!authorization || !*authorization)
        return sbx_fail(e, SBX_EUNAUTH,
                        "missing Authorization header; send "
                        "'Authorization: Bearer <token>'");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return sbx_fail(e, SBX_EUNAUTH,
                        "the Authorization header must use the Bearer scheme: "
                        "'Authorization: Bearer <token>'");
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    const char *master = master_token;
    if (*master && sbx_const_eq(token, master)) {
        snprintf(who->id, sizeof who->id, "master");
        snprintf(who->label, sizeof who->label, "master");
        who->master = true;
        who->scopes = ~0u;
        return SBX_OK;
    }
    who->master = false;
    char id[TOKENS_ID_LEN];
    sbx_code rc = tokens_lookup(token, id, who->label, sizeof who->label, &who->scopes, e);
    if (rc == SBX_OK)
        snprintf(who->id, sizeof who->id, "%s", id);
    return rc;
}

bool auth_allows(const auth_identity *who, const char *scope) {
    if (who->master || !scope)
        return true;
    return (who->scopes & tokens_scope_bit(scope)) != 0;
}

bool auth_is_admin(const auth_identity *who) {
    return who->master || (who->scopes & tokens_scope_bit("admin")) != 0;
}
