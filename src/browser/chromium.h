/* chromium.h -- finding and launching one headless Chromium process tree.
 *
 * A launched Chromium runs in its own process group (it is the leader) with a parent-death
 * signal. Forks happen on a long-lived launcher thread of this module, because the
 * parent-death signal fires when the *thread* that forked exits and HTTP handler threads are
 * short-lived.
 *
 * Thread safety: chromium_init/chromium_shutdown from the main thread; the rest from any.
 */
#ifndef SBX_BROWSER_CHROMIUM_H
#define SBX_BROWSER_CHROMIUM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/err.h"

typedef struct chromium_proc {
    pid_t pid;         /* also the process group id */
    int port;          /* DevTools port */
    char ws_path[256]; /* "/devtools/browser/<id>" */
} chromium_proc;

/* Start the launcher thread; `profile_dir` (copied; NULL or "": none, an empty profile) is the
 * template copied into each launch's directory. 0 or -1. */
int chromium_init(const char *profile_dir, sbx_err *e);
void chromium_shutdown(void);

/* The Chromium binary to run: `path` (CHROMIUM_PATH) when given, else chromium,
 * chromium-browser or google-chrome from PATH. Malloc'd, or NULL. */
char *chromium_find(const char *path);

/* Launch `bin` with its profile, HOME, TMPDIR and XDG dirs inside `dir` (created; the profile
 * template is copied) and wait up to `timeout_ms` for DevToolsActivePort. With `proxy_port`,
 * every request goes through the egress gateway's listener at 127.0.0.1:proxy_port, loopback
 * included (Chromium bypasses loopback by default: "<-loopback>" turns that off). Records
 * `dir`/.owner. On failure nothing is left running (the caller removes `dir`). */
sbx_code chromium_launch(const char *bin, const char *dir, int64_t timeout_ms, uint16_t proxy_port,
                         chromium_proc *out, sbx_err *e);

/* TMPDIR of the Chromium working in `dir` (inside it unless that makes Chromium's singleton
 * socket path too long; then a short /tmp/sbxbr-<id>). */
void chromium_tmpdir(const char *dir, char *out, size_t cap);
/* Remove the short TMPDIR of `dir`, if it has one. */
void chromium_remove_tmpdir(const char *dir);
/* Remove short TMPDIRs whose session directory no longer exists (start-up); one without its
 * note is spared for a minute (a launch of another server sharing /tmp may be writing it). */
void chromium_sweep_tmp(void);

/* Kill the whole process group and reap the leader. */
void chromium_kill(pid_t pid);

#endif
