/* upload.h -- send the files a run left in its work directory to fileUploadUrl.
 *
 * Each regular file (symlinks and special files are skipped, never followed) is POSTed as
 * multipart/form-data with fields `file` and `public`, and `Authorization: Bearer <token>`
 * when a token is given. A failed upload is reported in its entry, never as an error.
 * Thread safety: any thread (libcurl is initialised once by exec_init).
 */
#ifndef SBX_UPLOAD_H
#define SBX_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/egress_gateway.h"

/* Upload every regular file under `work_dir` (files over `max_mb` MiB are reported, not sent;
 * each transfer ends after `timeout_ms`); returns the array of {filename, url, status[, error]}
 * (caller frees; never NULL).
 *
 * The destination obeys the egress policy `pol` (borrowed) like a run's connections: its host
 * is resolved once (EGRESS_HOSTS, then DNS), every address is checked (private, loopback and
 * link-local addresses are refused unless EGRESS_PRIVATE_ALLOWED names them; the server's own
 * port always is), and libcurl is pinned to the address that passed (CURLOPT_RESOLVE), so a
 * second lookup cannot lead it elsewhere. With `up` (may be NULL) the transfer goes through
 * that upstream proxy instead (the upstream's address is checked and pinned; the destination
 * name is handed to it, checked only when EGRESS_HOSTS maps it or it is an IP literal). A
 * refused destination gives every file status 0 and an error naming the policy. */
cJSON *upload_dir(const char *work_dir, const char *url, const char *token, bool public_,
                  int64_t max_mb, int64_t timeout_ms, const egress_policy *pol,
                  const egress_upstream *up);

/* Shutdown: abort every transfer in flight within about a second (libcurl's progress callback)
 * and start no more; their entries say "Callback aborted". Any thread; not undone. */
void upload_cancel_all(void);

#endif
