/* limits.h -- bounds a request shares with a setting.
 *
 * The settings table (config.c) uses these constants for its rows' upper bounds, and the API
 * edge (src/http/api_*.c) for the same fields of a request, so a request may ask for at most
 * what an operator may configure, and neither copies the number by hand.
 */
#ifndef SBX_LIMITS_H
#define SBX_LIMITS_H

#define SBX_EXEC_TIMEOUT_MS_MAX         120000 /* EXEC_TIMEOUT_MS; a run's timeoutMs */
#define SBX_BROWSER_CALL_TIMEOUT_MS_MAX 600000 /* BROWSER_CALL_TIMEOUT_MS; a call's timeoutMs */

#endif
