/* tokens.h -- scoped API tokens: minted by an admin, shown once, stored only as SHA-256
 * hashes in DATA_DIR/tokens.json (mode 0600), so they survive a restart.
 *
 * Scopes: "exec" (POST /execute), "browser" (browser sessions), "admin" (tokens, metrics).
 * The master AUTH_TOKEN holds every scope.
 * Thread safety: every function may be called from any thread (one mutex).
 */
#ifndef SBX_TOKENS_H
#define SBX_TOKENS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

enum { TOKEN_SCOPE_EXEC = 1, TOKEN_SCOPE_BROWSER = 2, TOKEN_SCOPE_ADMIN = 4 };

/* Longest token label, in bytes (the store and auth_identity keep it in LABEL_MAX + 1). */
#define TOKENS_LABEL_MAX 63

/* Scope name → bit (0 when unknown). */
unsigned tokens_scope_bit(const char *name);

/* Load <dir>/tokens.json (absent = no tokens), where the store lives from now on (`dir` is
 * DATA_DIR; main thread, before serving). -1 with `e` filled when it is unreadable. */
int tokens_load(const char *dir, sbx_err *e);
void tokens_free(void);

/* Find a live token by its presented secret. On success fills id (TOKENS_ID_LEN bytes), label
 * (size n) and *scopes. */
#define TOKENS_ID_LEN 17
sbx_code tokens_lookup(const char *presented, char id[TOKENS_ID_LEN], char *label, size_t n,
                       unsigned *scopes, sbx_err *e);

/* Mint a token. *out = {id, token, label, scopes, createdAt, expiresAt} (caller frees); the
 * secret appears only in this reply. */
sbx_code tokens_create(const char *label, unsigned scopes, int64_t ttl_s, cJSON **out, sbx_err *e);

/* {"tokens": [{id, label, scopes, createdAt, expiresAt}]} without secrets; caller frees. */
cJSON *tokens_list(void);

/* Revoke by id; SBX_ENOTFOUND when unknown. */
sbx_code tokens_delete(const char *id, sbx_err *e);

#endif
