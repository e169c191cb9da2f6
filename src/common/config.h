/* config.h -- every setting of the server, declared once in a table.
 *
 * The table (config.c) gives each setting its name, environment variable, --flag, type,
 * default, bounds and help. It drives parsing (flags win over the environment, which wins
 * over defaults), validation (a bad value stops the start naming the setting and its range),
 * `--help`, and the README's settings table (`sandboxd --help-markdown`).
 *
 * The parsed configuration is the server's only global state: built once in main() before
 * any thread starts, read-only afterwards (so any thread may read it without locking).
 */
#ifndef SBX_CONFIG_H
#define SBX_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "limits.h" /* the bounds a request shares with a setting */

typedef struct sbx_config {
    /* server */
    char *auth_token; /* required unless dev_mode; wiped from the environment after parsing */
    bool dev_mode;    /* --dev: mint a token when AUTH_TOKEN is missing */
    char *host;
    int64_t port;
    char *data_dir;
    int64_t max_body_bytes;
    char *log_level;
    int64_t max_connections;
    int64_t conn_timeout_s;
    int64_t shutdown_grace_ms;
    char *node_id;     /* NODE_ID: this replica's name in a cluster ("" = none) */
    char *cluster_url; /* CLUSTER_URL: where MCP calls for another node's session go */

    /* exec */
    char *python_path;
    int64_t exec_timeout_ms;    /* default timeoutMs of a run */
    int64_t exec_output_bytes;  /* cap per stream (stdout, stderr) */
    int64_t exec_max_runs;      /* runs at once */
    int64_t exec_queue_wait_ms; /* how long a run waits for a slot before 429 busy */
    int64_t exec_memory_mb;     /* address-space / memory limit of a run */
    int64_t exec_max_procs;     /* processes + threads of a run */
    int64_t exec_file_size_mb;  /* largest file a run may write */
    int64_t exec_open_files;    /* RLIMIT_NOFILE */
    int64_t exec_upload_max_mb; /* largest file sent to fileUploadUrl */
    int64_t exec_upload_timeout_ms;
    int64_t python_file_max_mb;      /* files API of Python sessions: per-file cap */
    int64_t python_session_quota_mb; /* ... and what a session's work dir may hold */
    bool exec_allow_network;         /* old name of exec_network = "open" */
    char *exec_network;              /* "none", "allowlist" or "open" (through the gateway) */
    bool exec_allow_weak_sandbox;    /* run even when a sandbox layer is missing (else 503) */
    char *exec_mode;                 /* "zygote" (pre-forked interpreter) or "fork" (cold start) */
    char *exec_preload;          /* comma-separated modules the zygote imports; "auto" = defaults */
    int64_t python_max_sessions; /* live Python sessions at most */
    int64_t python_idle_timeout_s;     /* default idle expiry of a session */
    int64_t python_ttl_s;              /* default (and largest) life of a session */
    int64_t python_busy_wait_ms;       /* a second call's wait before 409 busy */
    int64_t python_interrupt_grace_ms; /* after KeyboardInterrupt, before the kill */
    char *python_wheelhouse;           /* wheels for POST .../packages (--find-links) */
    char *python_index_url;            /* or a package index for them */

    /* browser */
    char *chromium_path;
    int64_t browser_max_sessions;
    int64_t browser_idle_timeout_s;
    int64_t browser_max_lifetime_s;
    int64_t browser_call_timeout_ms;    /* default timeoutMs of navigate/actions */
    int64_t browser_snapshot_max_chars; /* default maxChars of snapshot/markdown */
    int64_t browser_launch_timeout_ms;
    char *browser_allow_hosts; /* comma-separated; empty = any host */
    char *browser_deny_hosts;  /* comma-separated; checked first */
    char *browser_profile_dir; /* template copied into each session; "" when none was found */
    int64_t browser_pool_size; /* warm Chromium instances kept ready; 0 = no pool */
    int64_t browser_download_max_bytes;  /* one downloaded file at most */
    int64_t browser_downloads_max_bytes; /* one session's downloads at most */
    char *browser_network;               /* "open" or "allowlist" */

    /* egress (egress_policy.h) */
    char *egress_allowed_domains;
    char *egress_denied_domains;
    char *egress_private_allowed;
    char *egress_hosts;
    char *egress_upstream_proxy;
} sbx_config;

/* The parsed configuration (valid after config_load succeeded). */
extern const sbx_config *sbx_cfg;

/* Parse argv and the environment into the global configuration.
 * Returns 0 on success; 1 when --help (or similar) was printed and the program should exit 0;
 * -1 after printing an error naming the setting to `err`. */
int config_load(int argc, char **argv, FILE *err);

/* Print the settings table as --help text (`markdown` = 1: as a Markdown table). */
void config_print_help(FILE *out, int markdown);

/* Free the strings owned by the configuration (for a leak-clean exit). */
void config_free(void);

#endif
