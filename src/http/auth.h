/* auth.h -- bearer-token checks, run before routing so unauthenticated callers learn nothing
 * about the route table.
 *
 * Thread safety: auth_init from main before serving; the rest from any thread.
 */
#ifndef SBX_AUTH_H
#define SBX_AUTH_H

#include <stdbool.h>

#include "../common/err.h"
#include "tokens.h"

typedef struct auth_identity {
    char id[24];                      /* who owns what this caller creates: "master" or the
                                       * scoped token's id */
    char label[TOKENS_LABEL_MAX + 1]; /* "master" or the scoped token's label */
    bool master;                      /* the master token holds every scope */
    unsigned scopes;                  /* TOKEN_SCOPE_* bits of a scoped token */
} auth_identity;

/* Set the master token (main thread, before serving; the string must outlive the server). */
void auth_init(const char *master);

/* Check an Authorization header value ("Bearer <token>", scheme case-insensitive). On success
 * fills *who and returns SBX_OK; otherwise SBX_EUNAUTH with a message saying what to fix. The
 * comparison takes the same time whatever the presented token shares with the real one. */
sbx_code auth_check(const char *authorization, auth_identity *who, sbx_err *e);

/* True when `who` may use a route needing `scope` ("exec", "browser", "admin"). */
bool auth_allows(const auth_identity *who, const char *scope);

/* True when `who` sees and manages every session (the master token, or the "admin" scope);
 * anyone else sees only the sessions created with its own token. */
bool auth_is_admin(const auth_identity *who);

#endif
