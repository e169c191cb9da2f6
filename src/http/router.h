/* router.h -- method + path-pattern matching over the API modules' route tables.
 *
 * Patterns are literal segments and {name} placeholders ("/browser/sessions/{id}/tabs/{tabId}");
 * a placeholder matches one non-empty segment (under 128 bytes). A last placeholder written
 * {name+} is a tail: it matches the rest of the path, slashes included (one or more non-empty
 * segments, under ROUTER_PARAM_LEN bytes), e.g. "/python/sessions/{id}/files/{path+}".
 * The table is the concatenation of the API modules' tables (router.c), fixed at build time.
 *
 * Thread safety: read-only after start; any thread may call.
 */
#ifndef SBX_ROUTER_H
#define SBX_ROUTER_H

#include <stddef.h>

#include "http.h"

#define ROUTER_PARAM_LEN HTTP_PARAM_LEN

typedef struct router_match {
    const http_route *route;                        /* NULL when nothing matched */
    char params[HTTP_MAX_PARAMS][ROUTER_PARAM_LEN]; /* decoded placeholder values */
    int nparams;
    char allow[64]; /* when the path matched but not the method: "GET, POST" */
} router_match;

/* Match `method` and `path` (no query string). Returns 0 on a match (*m filled), 404 when no
 * pattern matches the path, 405 when one does but not with this method (m->allow filled). */
int router_find(const char *method, const char *path, router_match *m);

/* Iterate over every route: call with *i = 0, returns NULL at the end. */
const http_route *router_next(size_t *i);

/* Match one pattern against a path; on success fills params (if non-NULL) and returns 1. */
int router_match_pattern(const char *pattern, const char *path, char params[][ROUTER_PARAM_LEN],
                         int *nparams);

#endif
