/* sandbox.h -- make a sandboxed child: the one entry point every Python run goes through.
 *
 * sandbox_spawn() starts a process tree confined by every layer the kernel offers, applied in
 * a fixed order (namespaces, mounts, no_new_privs, Landlock, rlimits, dropped capabilities,
 * seccomp last, then execve); when the kernel refuses a layer, every spawn fails closed
 * (sandbox_check) unless a weaker sandbox was accepted (sandbox_init). The caller owns the returned
 * child: wait for it, kill it, read the violations the supervisor saw, free it. Killing the child
 * kills its whole tree.
 *
 * Thread safety: sandbox_probe() once at start-up; a sandbox_child belongs to one thread at a
 * time; different children may be used from different threads at once.
 * The child's init gets SIGKILL when the *thread* that called sandbox_spawn exits
 * (PR_SET_PDEATHSIG), so a crashed server leaves no run behind: spawn from the thread that
 * keeps the run (waits for it), not from a short-lived helper thread.
 */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "layers.h"
#include "zygote_proto.h"

typedef struct sandbox_spec {
    const char *const *argv;            /* argv[0]: absolute path of the program; NULL-terminated */
    const char *const *envp;            /* the child's whole environment; NULL-terminated */
    const char *work_dir;               /* host path: the child's cwd, writable */
    const char *tmp_dir;                /* host path: the child's private /tmp, writable */
    int stdin_fd, stdout_fd, stderr_fd; /* become the child's 0, 1, 2 */
    int64_t memory_mb;
    int64_t max_procs;
    int64_t file_size_mb;
    int64_t open_files;
    int64_t cpu_seconds;
    int64_t disk_mb;    /* bytes the run may keep in its work dir + /tmp; 0: 4 x file_size_mb */
    bool allow_network; /* loosened: keep the host network, allow inet sockets */
    /* > 0: the egress gateway's way in (egress_gateway.h). The run keeps its own network
     * namespace, whose init brings `lo` up and listens on 127.0.0.1:egress_port there, handing
     * the listening socket to the server (sandbox_take_egress_fd); inet sockets are allowed and
     * Landlock lets TCP connect to that port only. Needs user namespaces; a zygote run's init
     * (sandbox_spawn_zygote) does the same in its own network namespace. */
    uint16_t egress_port;
    const char *owner_dir; /* if set: write its .owner (sweep.h) as soon as the child exists */
    /* the zygote itself (zygote.c): stays root of its user namespace (ids 1..SBX_OUTER_SPAN
     * mapped for its runs), keeps CAP_SETUID/CAP_SETGID only, gets no Landlock, rlimits or
     * seccomp (its children apply them); pass_fds become fds 4, 5, ... */
    bool zygote_init;
    const int *pass_fds;
    int npass;
    /* if set: a descriptor that turns readable when the server stops (the zygote's wake-up);
     * sandbox_spawn then stops waiting for the child to start, and fails */
    const int *cancel_fd;
    const char *runs_dir; /* set by sandbox_spawn for the zygote (bound at ZYG_RUNS_PATH) */
    /* the program's source, for sandbox_spawn_zygote (zygote.h; a cold run takes it from argv) */
    const char *code;
    size_t code_len;
} sandbox_spec;

/* The work dir appears inside the sandbox at SANDBOX_WORK_PATH (layers.h; the child's cwd).
 * sandbox_spawn rewrites environment values that start with the host work_dir / tmp_dir to
 * that path / "/tmp": sandbox_env_rewrite returns that copy of `envp` (a value equal to a dir,
 * or starting with it and "/", is renamed; "HOME=/x/workshop" is not; names are never
 * touched), NULL-terminated, NULL when out of memory; free it with sandbox_env_free (NULL is
 * a no-op). Any thread. */
char **sandbox_env_rewrite(const char *const *envp, const char *work_dir, const char *tmp_dir);
void sandbox_env_free(char **env);

typedef struct sandbox_child sandbox_child;

/* Which layers this kernel supports, probed once; logs a line per layer. The namespace probe
 * starts a child in fresh namespaces (call it before the server's threads exist). */
void sandbox_probe(void);

/* Probe (once) and set what the sandbox needs from the server: `runs_dir` (DATA_DIR/runs, where
 * every run's directories are made; an unprivileged server's zygote sees it) and whether a
 * sandbox missing a layer may still run programs (EXEC_ALLOW_WEAK_SANDBOX). Main thread, at
 * start-up. Without it (unit tests): no runs dir, weak sandboxes refused. */
void sandbox_init(const char *runs_dir, bool allow_weak);

/* SBX_OK when runs may start: every layer is there, or a weaker sandbox was accepted; else
 * SBX_EUNAVAIL naming the missing layers (fail closed). Any thread. */
sbx_code sandbox_check(sbx_err *e);

/* Whether runs get their own namespaces (the zygote needs them). Any thread. */
bool sandbox_userns(void);

/* Whether runs get a procfs of their own pid namespace (else an empty read-only /proc: a
 * container that covers parts of its /proc refuses new procfs mounts). The zygote needs one.
 * Any thread. */
bool sandbox_own_proc(void);

/* Whether a layer is missing (`why`: which, and why; may be NULL). Any thread. */
bool sandbox_weak(char *why, size_t n);

/* {"userNamespace": true, "pidNamespace": true, ..., "landlock": 7, "seccomp": true,
 * "hostIds": "perRun"|"server"|"nobody", "complete", "missing", "weakAccepted", "runsRefused"}:
 * the layers every run gets. Caller frees. */
cJSON *sandbox_layers(void);

/* Start a child as `spec` says. On success returns SBX_OK and *out owns the child; on failure
 * nothing is left running and *out is untouched. Borrows `spec` for the call only. */
sbx_code sandbox_spawn(const sandbox_spec *spec, sandbox_child **out, sbx_err *e);

/* The uid map of the zygote's user namespace (root of it, plus the range its runs use). */
#define SBX_ZYGOTE_OUTER (SBX_OUTER_BASE + SBX_OUTER_SPAN)

/* The listening socket a run started with egress_port made inside its network namespace (the
 * caller owns it from now on), or -1 (none, or taken already). */
int sandbox_take_egress_fd(sandbox_child *c);

/* Outer pid of the child's process-group leader (for .owner records and logs). */
pid_t sandbox_pid(const sandbox_child *c);

/* A descriptor that polls readable (POLLIN) once the child has exited, or -1. */
int sandbox_pollfd(const sandbox_child *c);

/* A zygote run's program writes its exit code to a pipe just before it exits: the status is
 * known before the kernel has torn the process down (a few ms with numpy loaded). The word is
 * the program's own (it could write early: that only ends its own run). sandbox_donefd: the
 * pipe's read end, or -1 (cold runs, or once it closed). sandbox_take_done: 1 and *exit_code when
 * the word came, 0 when not yet, -1 when it never will. */
int sandbox_donefd(const sandbox_child *c);
int sandbox_take_done(sandbox_child *c, int *exit_code);

/* Wait until the child exits or `deadline_ms` (sbx_now_ms clock) passes.
 * Returns 1 when it exited (*exit_code = code, or -1 when killed by *signo), 0 on timeout. */
int sandbox_wait(sandbox_child *c, int64_t deadline_ms, int *exit_code, int *signo);

/* SIGKILL the whole tree; idempotent; does not reap (sandbox_wait or sandbox_free do). */
void sandbox_kill(sandbox_child *c);

/* After sandbox_wait said it ended: whether a zygote run was killed, not by sandboxd, because
 * the zygote it was started from died (its runs live in the zygote's pid namespace and die with
 * it). Such a run's program is not at fault; it may be run again. Waits up to 1 s for the
 * zygote's end to show when the run's init was killed from outside. */
bool sandbox_lost_with_zygote(sandbox_child *c);

/* Whether the supervisor killed the child for outgrowing its disk quota. Any thread. */
bool sandbox_over_quota(sandbox_child *c);

/* The refusals the supervisor saw so far, as an array of {"kind", "detail"} (kinds: "network",
 * "filesystem", "process", "kernel", "limit"). Caller frees. Never NULL on success. */
cJSON *sandbox_violations(sandbox_child *c);

/* One human line per kind of refusal, each starting "sandbox: ", for appending to stderr.
 * Returns a malloc'd string (possibly empty). */
char *sandbox_explain(sandbox_child *c);

/* A helper for the runner: when the program's captured stderr shows a write refused by the
 * read-only mounts or Landlock (EROFS / EACCES on a path, which seccomp cannot see), one
 * "sandbox: ..." line explaining it (malloc'd, caller frees); otherwise NULL. Any thread. */
char *sandbox_explain_output(const char *err, size_t len);

/* Kill (if still running), reap, close every fd, free. sandbox_free(NULL) is a no-op. */
void sandbox_free(sandbox_child *c);

#endif
