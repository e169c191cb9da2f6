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

/* Upload every regular file under `work_dir` (files over `max_mb` MiB are reported, not sent;
 * each transfer ends after `timeout_ms`); returns the array of {filename, url, status[, error]}
 * (caller frees; never NULL). */
cJSON *upload_dir(const char *work_dir, const char *url, const char *token, bool public_,
                  int64_t max_mb, int64_t timeout_ms);

/* Shutdown: abort every transfer in flight within about a second (libcurl's progress callback)
 * and start no more; their entries say "Callback aborted". Any thread; not undone. */
void upload_cancel_all(void);

#endif
