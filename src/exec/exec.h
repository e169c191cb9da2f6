/* exec.h -- the Python execution service: lifecycle seen by main() and /health.
 *
 * Thread safety: exec_init/exec_shutdown from the main thread only; exec_health from any.
 */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/egress_gateway.h"
#include "../common/err.h"

/* EXEC_NETWORK: what a run's outbound connections may reach, all through the egress gateway. */
enum { EXEC_NET_NONE, EXEC_NET_ALLOWLIST, EXEC_NET_OPEN };

/* The exec settings (the EXEC_* rows of the settings table), handed in once by main(). */
typedef struct exec_opts {
    const char *data_dir;    /* DATA_DIR: runs/ and zygote/ live in it */
    const char *python_path; /* NULL or "": /usr/bin/python3, else python3 from PATH */
    int64_t max_runs;        /* runs at once */
    int64_t queue_wait_ms;   /* how long a run waits for a slot before 429 busy */
    int64_t output_bytes;    /* cap of each of stdout and stderr */
    int64_t memory_mb, max_procs, file_size_mb, open_files; /* per-run limits */
    int64_t upload_max_mb, upload_timeout_ms;               /* fileUploadUrl */
    bool allow_weak_sandbox;         /* run even when a sandbox layer is missing */
    const char *mode;                /* "zygote" or "fork" */
    const char *preload;             /* EXEC_PRELOAD: "auto", "" or comma-separated modules */
    int network;                     /* EXEC_NETWORK (EXEC_NET_*); not NONE needs the two below */
    const egress_policy *egress;     /* the operator's policy (borrowed for the server's life) */
    egress_gateway *gateway;         /* the gateway runs connect through (borrowed) */
    const egress_upstream *upstream; /* EGRESS_UPSTREAM_PROXY, or NULL (copied) */
    /* Python sessions (workspace.h; the PYTHON_* settings), started by exec_init */
    int64_t py_max_sessions, py_idle_timeout_s, py_ttl_s, py_busy_wait_ms, py_interrupt_grace_ms;
    const char *py_wheelhouse, *py_index_url;
} exec_opts;

/* The network scope of one run or Python session from the request's `network` object (may be
 * NULL: the operator's own scope): {allowedDomains: [...]} narrows the operator's list.
 * SBX_EINVAL naming the field (a domain outside the operator's list; any allowedDomains while
 * EXEC_NETWORK=none); SBX_EINTERNAL when out of memory. On success *out is a new scope (the
 * caller owns it: exec_request.scope, or egress_scope_free), or NULL when runs have no network.
 * Any thread. */
sbx_code exec_network_scope(const cJSON *network, egress_scope **out, sbx_err *e);

/* The upstream proxy runs chain through (EGRESS_UPSTREAM_PROXY), or NULL. Any thread. */
const egress_upstream *exec_upstream(void);

/* For another long-lived sandboxed process with network (a Python session): the way a run gets
 * it, in three steps. 1. exec_egress_client(scope) (takes the scope from exec_network_scope;
 * NULL when it is NULL) makes its gateway client; 2. its sandbox_spec gets egress_port =
 * EXEC_EGRESS_PORT and the environment entries exec_proxy_env() lists (NULL-terminated,
 * static); 3. after sandbox_spawn, exec_egress_attach hands the child's listener to the client.
 * The client's stats and refusals are then the session's (egress_gateway.h); free it with
 * egress_client_free once the process is gone. Any thread. */
#define EXEC_EGRESS_PORT 3128
egress_client *exec_egress_client(egress_scope *scope);
const char *const *exec_proxy_env(void);
struct sandbox_child;
void exec_egress_attach(struct sandbox_child *c, egress_client *cl);

/* Probe the interpreter and the kernel's sandbox layers, log what is active, start the zygote
 * (EXEC_MODE=zygote) and the Python sessions (workspace.h). Copies what it keeps of `opts`. Returns
 * 0; a missing Python is not fatal (runs answer 503), nor is an incomplete sandbox (runs answer 503
 * unless accepted). */
int exec_init(const exec_opts *opts, sbx_err *e);

/* Kill every run's and session's process tree and remove their directories. Idempotent. */
void exec_shutdown(void);

/* {"python": "/usr/bin/python3" or null, "sandbox": {layer: bool, ...}, ...}; caller frees. */
cJSON *exec_health(void);

/* Why sandboxd (or the kernel, at a limit) ended a run before its program did: the label of
 * sandboxd_exec_kills_total{reason}. */
enum {
    EXEC_KILL_TIMEOUT,     /* its timeoutMs passed */
    EXEC_KILL_CLIENT_GONE, /* its streaming client left or stopped reading */
    EXEC_KILL_DISK_QUOTA,  /* work dir + /tmp outgrew the quota */
    EXEC_KILL_FILE_SIZE,   /* SIGXFSZ: EXEC_FILE_SIZE_MB */
    EXEC_KILL_CPU_TIME,    /* SIGXCPU: its CPU time limit */
    EXEC_KILL_SHUTDOWN,    /* the server stopped under it */
    EXEC_KILL_ZYGOTE_LOST, /* the zygote it came from died under it (it was not run again) */
    EXEC_KILL_COUNT
};
extern const char *const exec_kill_reasons[EXEC_KILL_COUNT];

/* The kinds of sandboxd_exec_violations_total{kind} (sandbox.h's violation kinds). */
#define EXEC_VIOL_COUNT 5
extern const char *const exec_violation_kinds[EXEC_VIOL_COUNT];

/* Counters since start, for /metrics. */
typedef struct exec_stats {
    uint64_t started_zygote, started_cold; /* runs started, by path */
    uint64_t kills[EXEC_KILL_COUNT];       /* by exec_kill_reasons */
    uint64_t violations[EXEC_VIOL_COUNT];  /* refusals recorded, by exec_violation_kinds */
    uint64_t output_truncated;             /* runs whose stdout or stderr hit EXEC_OUTPUT_BYTES */
    uint64_t refused_incomplete;           /* runs refused (503): a sandbox layer is missing */
} exec_stats;

/* A consistent-enough snapshot (each counter atomic). Any thread. */
void exec_stats_get(exec_stats *out);

typedef struct exec_request {
    const char *code;
    int64_t timeout_ms;
    const char *upload_url;   /* NULL: no uploads */
    const char *upload_token; /* NULL: no Authorization header */
    bool public_;
    /* the run's network scope (exec_network_scope); exec_run takes ownership, even on failure.
     * NULL: the operator's scope (or no network with EXEC_NETWORK=none) */
    egress_scope *scope;
} exec_request;

/* Output observer for streaming: called on the run's thread with stream 0 (start; data is the
 * run id), 1 (stdout), 2 (stderr) or 3 (a keep-alive with no data, about once a second while
 * the program is silent). Returning -1 (the client left) kills the run. */
typedef int (*exec_output_fn)(void *ctx, int stream, const char *data, size_t len);

/* Run one program in a fresh sandbox and wait for it. Returns the result object
 * {exitCode, stdout, stderr, uploads, durationMs, timedOut, signal, violations, truncated,
 * runId, network: {bytesIn, bytesOut, connections}} (caller frees), or NULL with `e` filled:
 * SBX_EUNAVAIL (no Python), SBX_EBUSY (no free slot within EXEC_QUEUE_WAIT_MS; e->retry_after set),
 * SBX_EINTERNAL. A failed, killed or timed-out program is a result, not an error. Borrows `rq`;
 * `fn` may be NULL. */
cJSON *exec_run(const exec_request *rq, exec_output_fn fn, void *ctx, sbx_err *e);

#endif
