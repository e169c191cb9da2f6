/* workspace.h -- Python sessions (workspaces): long-lived sandboxed interpreters whose globals
 * persist across calls, each with its own work directory, a shell and a package directory.
 *
 * A session is one sandboxed child (sandbox_spawn, or sandbox_spawn_zygote from the preloaded
 * zygote when it is up: every layer of /execute) running the kernel driver (kernel.py, embedded
 * at build time). The driver forks the interpreter that runs the calls, restarts it empty when it
 * dies, and runs shell commands beside it in the same sandbox; the server talks to it over one
 * socket (framed JSON, kernel.py says how). Its directories live in DATA_DIR/runs/<id> (work/,
 * tmp/, .owner beside them), so a server killed with SIGKILL leaves nothing the next start does
 * not sweep. One thread of this module spawns every session's sandbox (a sandbox dies with the
 * thread that spawned it) and expires idle ones.
 *
 * Thread safety: ws_init/ws_shutdown from the main thread; everything else from any thread.
 * Calls into one session (execute, commands, packages) run one at a time: a second one waits up
 * to busy_wait_ms, then fails with SBX_EINUSE (409 busy).
 */
#ifndef SBX_WORKSPACE_H
#define SBX_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

typedef struct ws_session ws_session;

/* The PYTHON_* settings and the per-run limits of /execute, handed in by exec_init. */
typedef struct ws_opts {
    const char *data_dir;       /* DATA_DIR: sessions live in DATA_DIR/runs/<id> */
    const char *python;         /* the interpreter (NULL: sessions answer 503) */
    const char *const *envp;    /* the environment of every session (NULL-terminated) */
    bool zygote;                /* EXEC_MODE=zygote and the zygote runs: fork sessions from it */
    int64_t max_sessions;       /* PYTHON_MAX_SESSIONS: live at once, then 429 too_many_sessions */
    int64_t idle_timeout_s;     /* PYTHON_IDLE_TIMEOUT_S: default idle expiry of a session */
    int64_t ttl_s;              /* PYTHON_TTL_S: default bound on a session's life */
    int64_t busy_wait_ms;       /* PYTHON_BUSY_WAIT_MS: a second call's wait before 409 busy */
    int64_t interrupt_grace_ms; /* PYTHON_INTERRUPT_GRACE_MS: after the interrupt, the kill */
    int64_t output_bytes;       /* cap of each of stdout and stderr of a call */
    int64_t memory_mb, max_procs, file_size_mb, open_files, disk_mb; /* per-session limits */
    const char *wheelhouse; /* PYTHON_WHEELHOUSE: a directory of wheels for packages, or "" */
    const char *index_url;  /* PYTHON_INDEX_URL: a package index for packages, or "" */
} ws_opts;

/* Copy `o`, start the module's thread. 0, or -1 with `e` filled. Main thread. */
int ws_init(const ws_opts *o, sbx_err *e);
/* Kill every session, remove their directories, stop the thread. Idempotent. Main thread. */
void ws_shutdown(void);

/* ---- the registry (what the files API needs) ---- */

/* Borrow the live session `id` that `viewer` may see (NULL: an admin, who sees every session;
 * else only the sessions it owns). NULL with `e` filled: SBX_ENOTFOUND (no such session, or
 * another owner's). Release it with ws_done. */
ws_session *ws_get(const char *id, const char *viewer, sbx_err *e);
/* Release what ws_get borrowed (NULL: no-op); the session counts as used now (lastUsedAt). */
void ws_done(ws_session *s);
/* An O_PATH|O_DIRECTORY descriptor of the session's work dir, owned by the session (valid while
 * it is borrowed; do not close it). */
int ws_workdir_fd(const ws_session *s);
/* The host path of the session's work dir (borrowed like the descriptor). */
const char *ws_workdir(const ws_session *s);
/* The session's id (borrowed like the descriptor). */
const char *ws_id(const ws_session *s);

/* ---- sessions ---- */

typedef struct ws_create_req {
    int64_t idle_timeout_s; /* 0: PYTHON_IDLE_TIMEOUT_S */
    int64_t ttl_s;          /* 0: PYTHON_TTL_S */
    const cJSON *env;       /* NULL or an object of NAME: "value" for the session's processes */
    /* Network through the egress gateway (exec.h's three steps, done here): NULL, none; else
     * the session's gateway client (ws_create takes it, even on failure), the proxy variables
     * its processes get (static, NULL-terminated) and the port of the gateway's listener in
     * the session's own network namespace. A session with network starts cold. */
    struct egress_client *net;
    const char *const *net_env;
    uint16_t net_port;
} ws_create_req;

/* Start a session owned by `owner` (the caller's token id). On success *out is
 * {"sessionId", "createdAt", "expiresAt"} (caller frees). Errors: SBX_EINVAL (env),
 * SBX_ETOOMANY (PYTHON_MAX_SESSIONS live; retry_after set), SBX_EUNAVAIL (no Python, sandbox
 * incomplete, shutting down), SBX_EINTERNAL. Borrows `rq`. */
sbx_code ws_create(const ws_create_req *rq, const char *owner, cJSON **out, sbx_err *e);

/* {"sessions": [one ws_describe object per session viewer may see]}; caller frees. */
cJSON *ws_list(const char *viewer);

/* {"sessionId", "createdAt", "lastUsedAt", "expiresAt", "executionCount", "memoryBytes",
 * "cpuMs", "state": "idle"|"busy"|"starting"|"dead"}; caller frees. memoryBytes: USS of the
 * session's processes (their private pages; pages shared with the zygote are not counted). */
cJSON *ws_describe(ws_session *s);

/* Kill the session's processes and remove its directory; 404 like ws_get. */
sbx_code ws_delete(const char *id, const char *viewer, sbx_err *e);

/* ---- calls (one at a time per session) ---- */

/* Output observer, as exec_output_fn: stream 0 (start; data: the session id), 1 stdout,
 * 2 stderr, 3 a keep-alive (no data) about once a second of silence. Called on the caller's
 * thread. Returning -1 (the client left) interrupts the call like a timeout. */
typedef int (*ws_output_fn)(void *ctx, int stream, const char *data, size_t len);

/* Run `code` in the session's interpreter. Returns {"stdout", "stderr", "result", "error",
 * "images", "display", "executionCount", "durationMs", "timedOut"} (caller frees), or NULL with
 * `e`: SBX_EINUSE (another call runs), SBX_ERESTARTED (the interpreter was killed -- it ignored
 * the interrupt, ran out of memory, got a signal -- and restarted empty; the message says its
 * state was lost), SBX_EUNAVAIL, SBX_EINTERNAL. Past `timeout_ms` the code gets
 * KeyboardInterrupt and the session keeps its state. Borrows `code`. */
cJSON *ws_execute(ws_session *s, const char *code, int64_t timeout_ms, ws_output_fn fn, void *ctx,
                  sbx_err *e);

typedef struct ws_command_req {
    const char *command; /* run by /bin/sh -c */
    const char *cwd;     /* NULL, or relative to the work dir (no "..", not absolute) */
    int64_t timeout_ms;  /* then its whole process tree is killed */
    const cJSON *env;    /* NULL or NAME: "value" added to the session's environment */
} ws_command_req;

/* Run a shell command in the session's sandbox and work dir. Returns {"exitCode", "stdout",
 * "stderr", "durationMs", "timedOut"} (caller frees), or NULL with `e` as ws_execute (and
 * SBX_EINVAL for cwd or env). Borrows `rq`. */
cJSON *ws_command(ws_session *s, const ws_command_req *rq, ws_output_fn fn, void *ctx, sbx_err *e);

/* pip install `pkgs` (n requirement strings) into the session's own site directory, inside its
 * sandbox, from PYTHON_WHEELHOUSE (--no-index --find-links) or PYTHON_INDEX_URL; importable in
 * the session at once. Returns {"installed": [...], "output"} (caller frees), or NULL with `e`:
 * SBX_EINVAL (a requirement that is not a plain name, or pip failed: the message holds its
 * last lines), SBX_EUNAVAIL (no package source configured), as ws_execute otherwise. */
cJSON *ws_packages(ws_session *s, const char *const *pkgs, size_t n, int64_t timeout_ms,
                   sbx_err *e);

/* ---- pure checks (any thread; unit-tested) ---- */

/* An object of NAME: "value" (names of letters, digits and '_', not first a digit; string
 * values), at most 64; NULL passes. SBX_OK, or SBX_EINVAL naming `field`. */
sbx_code ws_check_env(const cJSON *env, const char *field, sbx_err *e);
/* A path relative to the work dir: not absolute, no ".." segment, at most 1024 bytes. */
bool ws_rel_path_ok(const char *p);
/* A requirement pip reads as one package: a name, optional [extras] and version clauses;
 * never an option ("-..."), a path, a URL or whitespace. */
bool ws_requirement_ok(const char *r);

/* Counters for /metrics. Any thread. */
typedef struct ws_stats {
    uint64_t live, created, expired, restarted;
} ws_stats;
void ws_stats_get(ws_stats *out);

/* {"live", "max"} for /health; caller frees. */
cJSON *ws_health(void);

#endif
