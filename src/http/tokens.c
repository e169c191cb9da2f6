/* tokens.c -- the token store: an array in memory, persisted atomically on every change. */
#define _GNU_SOURCE
#include "tokens.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sha256.h"
#include "../common/util.h"

#define MAX_TOKENS 1024

typedef struct token {
    char id[TOKENS_ID_LEN];
    char label[TOKENS_LABEL_MAX + 1];
    char hash[65];
    unsigned scopes;
    int64_t created_ms, expires_ms; /* expires_ms 0 = never */
} token;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static token *tokens;
static size_t ntokens;

static const char *const scope_names[] = {"exec", "browser", "admin"};

unsigned tokens_scope_bit(const char *name) {
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(name, scope_names[i]))
            return 1u << i;
    return 0;
}

static cJSON *scopes_json(unsigned scopes) {
    cJSON *a = cJSON_CreateArray();
    for (unsigned i = 0; i < 3; i++)
        if (scopes & (1u << i))
            cJSON_AddItemToArray(a, cJSON_CreateString(scope_names[i]));
    return a;
}

static cJSON *token_json(const token *t, bool with_hash) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "label", t->label);
    cJSON_AddItemToObject(o, "scopes", scopes_json(t->scopes));
    cJSON_AddNumberToObject(o, "createdAt", (double)t->created_ms);
    if (t->expires_ms)
        cJSON_AddNumberToObject(o, "expiresAt", (double)t->expires_ms);
    else
        cJSON_AddNullToObject(o, "expiresAt");
    if (with_hash)
        cJSON_AddStringToObject(o, "sha256", t->hash);
    return o;
}

static char data_dir[PATH_MAX - 16]; /* from tokens_load */

static void store_path(char *p, size_t n) {
    snprintf(p, n, "%s/tokens.json", data_dir);
}

/* Write the store atomically (temp file + rename). Called with `mu` held. */
static int save(void) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "tokens");
    for (size_t i = 0; i < ntokens; i++)
        cJSON_AddItemToArray(arr, token_json(&tokens[i], true));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    store_path(path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    int rc = -1;
    if (f) {
        fchmod(fileno(f), 0600);
        rc = fputs(text, f) < 0 ? -1 : 0;
        if (fclose(f) != 0 || rc < 0 || rename(tmp, path) < 0)
            rc = -1;
    }
    free(text);
    if (rc < 0)
        LOG_E("tokens", "could not write %s: %s", path, strerror(errno));
    return rc;
}

int tokens_load(const char *dir, sbx_err *e) {
    snprintf(data_dir, sizeof data_dir, "%s", dir);
    char path[PATH_MAX];
    store_path(path, sizeof path);
    size_t len;
    char *text = sbx_read_file(path, 4 * 1024 * 1024, &len);
    if (!text)
        return errno == ENOENT ? 0 : (sbx_fail(e, SBX_EINTERNAL, "cannot read %s", path), -1);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *arr = cJSON_GetObjectItem(root, "tokens");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(root);
        sbx_fail(e, SBX_EINTERNAL, "%s is damaged; move it away to start without tokens", path);
        return -1;
    }
    pthread_mutex_lock(&mu);
    tokens = calloc(MAX_TOKENS, sizeof *tokens);
    ntokens = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!tokens || ntokens >= MAX_TOKENS)
            break;
        token *t = &tokens[ntokens];
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
        const char *label = cJSON_GetStringValue(cJSON_GetObjectItem(it, "label"));
        const char *hash = cJSON_GetStringValue(cJSON_GetObjectItem(it, "sha256"));
        if (!id || !label || !hash || strlen(hash) != 64)
            continue;
        snprintf(t->id, sizeof t->id, "%s", id);
        snprintf(t->label, sizeof t->label, "%s", label);
        memcpy(t->hash, hash, 65);
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(it, "scopes")) {
            if (cJSON_IsString(s))
                t->scopes |= tokens_scope_bit(s->valuestring);
        }
        t->created_ms = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "createdAt"));
        const cJSON *exp = cJSON_GetObjectItem(it, "expiresAt");
        t->expires_ms = cJSON_IsNumber(exp) ? (int64_t)exp->valuedouble : 0;
        ntokens++;
    }
    pthread_mutex_unlock(&mu);
    cJSON_Delete(root);
    LOG_I("tokens", "%zu scoped token(s) loaded", ntokens);
    return 0;
}

void tokens_free(void) {
    pthread_mutex_lock(&mu);
    free(tokens);
    tokens = NULL;
    ntokens = 0;
    pthread_mutex_unlock(&mu);
}

sbx_code tokens_lookup(const char *presented, char id[TOKENS_ID_LEN], char *label, size_t n,
                       unsigned *scopes, sbx_err *e) {
    char hash[65];
    sha256_hex(presented, strlen(presented), hash);
    int64_t now = sbx_wall_ms();
    sbx_code rc = sbx_fail(e, SBX_EUNAUTH, "invalid bearer token");
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ntokens; i++) {
        if (!sbx_const_eq(hash, tokens[i].hash))
            continue;
        if (tokens[i].expires_ms && tokens[i].expires_ms <= now) {
            rc = sbx_fail(e, SBX_EUNAUTH, "this token expired; ask an admin for a new one");
            break;
        }
        snprintf(id, TOKENS_ID_LEN, "%s", tokens[i].id);
        snprintf(label, n, "%s", tokens[i].label);
        *scopes = tokens[i].scopes;
        rc = SBX_OK;
        break;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

sbx_code tokens_create(const char *label, unsigned scopes, int64_t ttl_s, cJSON **out, sbx_err *e) {
    char secret[SBX_ID_LEN + 8], rnd[SBX_ID_LEN], idbuf[SBX_ID_LEN];
    if (sbx_random_id(rnd) < 0 || sbx_random_id(idbuf) < 0)
        return sbx_fail(e, SBX_EINTERNAL, "no randomness available");
    snprintf(secret, sizeof secret, "sbx_%s", rnd);
    token t = {0};
    memcpy(t.id, idbuf, 16);
    snprintf(t.label, sizeof t.label, "%s", label);
    sha256_hex(secret, strlen(secret), t.hash);
    t.scopes = scopes;
    t.created_ms = sbx_wall_ms();
    t.expires_ms = ttl_s > 0 ? t.created_ms + ttl_s * 1000 : 0;
    pthread_mutex_lock(&mu);
    if (!tokens)
        tokens = calloc(MAX_TOKENS, sizeof *tokens);
    if (!tokens || ntokens >= MAX_TOKENS) {
        pthread_mutex_unlock(&mu);
        return sbx_fail(e, SBX_ECONFLICT, "the token store is full (%d); delete unused tokens",
                        MAX_TOKENS);
    }
    tokens[ntokens++] = t;
    if (save() < 0) {
        ntokens--;
        pthread_mutex_unlock(&mu);
        return sbx_fail(e, SBX_EINTERNAL, "could not store the token in DATA_DIR");
    }
    pthread_mutex_unlock(&mu);
    cJSON *o = token_json(&t, false);
    cJSON_AddStringToObject(o, "token", secret);
    *out = o;
    LOG_I("tokens", "token %s (%s) created", t.id, t.label);
    return SBX_OK;
}

cJSON *tokens_list(void) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "tokens");
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ntokens; i++)
        cJSON_AddItemToArray(arr, token_json(&tokens[i], false));
    pthread_mutex_unlock(&mu);
    return root;
}

sbx_code tokens_delete(const char *id, sbx_err *e) {
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ntokens; i++) {
        if (strcmp(tokens[i].id, id) != 0)
            continue;
        token removed = tokens[i];
        tokens[i] = tokens[--ntokens];
        if (save() < 0) {
            tokens[ntokens++] = removed;
            pthread_mutex_unlock(&mu);
            return sbx_fail(e, SBX_EINTERNAL, "could not update the token store in DATA_DIR");
        }
        pthread_mutex_unlock(&mu);
        LOG_I("tokens", "token %s revoked", id);
        return SBX_OK;
    }
    pthread_mutex_unlock(&mu);
    return sbx_fail(e, SBX_ENOTFOUND, "no token with id '%.40s'", id);
}
