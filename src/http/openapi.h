/* openapi.h -- the OpenAPI 3.1 document served at GET /openapi.json.
 *
 * Each API module documents its routes in a JSON fragment under src/http/openapi/ (embedded at
 * build time); this module merges their "paths" and "components" under one header. A test
 * compares the result with the router's table so the two cannot drift apart.
 * Thread safety: any thread (the merged text is built once).
 */
#ifndef SBX_OPENAPI_H
#define SBX_OPENAPI_H

#include "../common/err.h"

/* The merged document as JSON text (malloc'd; caller frees), or NULL with `e` filled when a
 * fragment does not parse (a build defect, reported as 500). */
char *openapi_document(sbx_err *e);

/* Called by main() at start; sets the uptime origin for /health. */
void api_core_mark_start(void);

#endif
