/* opts.h -- the settings of the browser service, filled in by main() from the settings table
 * and handed to browser_init, which gives each module what it needs at its init. Nothing in
 * src/browser reads the global configuration.
 *
 * Strings are borrowed for the duration of browser_init only (modules copy what they keep).
 */
#ifndef SBX_BROWSER_OPTS_H
#define SBX_BROWSER_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/egress_gateway.h"

typedef struct browser_opts {
    const char *chromium_path;   /* CHROMIUM_PATH; NULL or "": look for chromium in PATH */
    const char *profile_dir;     /* CHROMIUM_PROFILE_DIR: template copied into each session */
    const char *data_dir;        /* DATA_DIR: sessions live in DATA_DIR/browser/<id> */
    const char *allow_hosts;     /* BROWSER_ALLOW_HOSTS (NULL or "": any host) */
    const char *deny_hosts;      /* BROWSER_DENY_HOSTS */
    int64_t max_sessions;        /* BROWSER_MAX_SESSIONS */
    int64_t pool_size;           /* BROWSER_POOL_SIZE (0: no pool) */
    int64_t launch_timeout_ms;   /* BROWSER_LAUNCH_TIMEOUT_MS */
    int64_t call_timeout_ms;     /* BROWSER_CALL_TIMEOUT_MS: calls without their own timeout */
    int64_t idle_timeout_s;      /* BROWSER_IDLE_TIMEOUT_S */
    int64_t max_lifetime_s;      /* BROWSER_MAX_LIFETIME_S */
    int64_t download_max_bytes;  /* BROWSER_DOWNLOAD_MAX_BYTES: one downloaded file */
    int64_t downloads_max_bytes; /* BROWSER_DOWNLOADS_MAX_BYTES: a session's downloads */
    /* the egress gateway every browser's traffic goes through (NULL: Chromium connects
     * directly); policy and gateway are borrowed for the server's life */
    egress_gateway *gateway;
    const egress_policy *egress;
    bool network_allowlist;          /* BROWSER_NETWORK=allowlist */
    const egress_upstream *upstream; /* EGRESS_UPSTREAM_PROXY (copied), or NULL */
} browser_opts;

#endif
