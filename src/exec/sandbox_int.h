/* sandbox_int.h -- what the files of the sandbox share (sandbox.c, seccomp.c, supervise.c,
 * mounts.c, spawn.c); nothing outside src/exec/sandbox*.c, those files and zygote.c (whose
 * sandbox_spawn_zygote starts a run through a zygote) includes it. The sandbox never includes
 * zygote.h: the dependency points one way.
 *
 * sandbox.c: the kernel's layers (probed once), fail-closed checks, a child's life after its
 * start (wait, kill, reap, free). seccomp.c: the filter and the names of refused calls.
 * supervise.c: a child's supervisor thread (seccomp notifications, the disk quota) and its
 * violations. mounts.c: the private root a run's init builds. spawn.c: the two ways a child
 * starts (a cold init, or a run handed to a zygote).
 */
#ifndef SBX_SANDBOX_INT_H
#define SBX_SANDBOX_INT_H

#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sandbox.h"

#define SBX_MAX_VIOL 64

/* What sandbox_probe found; written once under sbxi_probe_mu, read-only afterwards. */
typedef struct sandbox_probe_state {
    bool probed, userns, landlock_ok, seccomp_ok, notify_ok;
    bool priv;  /* ids of their own for runs (root of the initial user namespace) */
    bool trees; /* detached mounts (open_tree) of run dirs for zygote runs */
    bool allow_weak;
    bool no_proc; /* a fresh procfs cannot be mounted (a container that covers parts of its
                   * /proc): runs get an empty read-only /proc, and there is no zygote */
    int landlock_abi;
    char userns_why[160];
    char runs_dir[PATH_MAX]; /* DATA_DIR/runs, bound into the zygote without `trees` */
} sandbox_probe_state;
extern sandbox_probe_state sbxi_probe;
extern pthread_mutex_t sbxi_probe_mu;
extern atomic_uint sbxi_next_id; /* the next run's host id, modulo SBX_OUTER_SPAN */

typedef struct viol {
    char kind[16];
    char detail[160];
} viol;

struct sandbox_child {
    pid_t pid; /* outer pid of init (also the process group) */
    int pidfd; /* of init */
    int sock;  /* parent end of the status socket */
    int notifyfd;
    int wakefd;         /* eventfd: tells the supervisor to stop now */
    bool zygote;        /* started by the zygote: init is not our child (pidfd and socket only) */
    int zpidfd;         /* zygote runs: a pidfd of the zygote that started it */
    int donefd;         /* zygote runs: the done pipe's read end (nonblocking) */
    int egressfd;       /* spec.egress_port: the listener made in the run's netns, or -1 */
    atomic_bool killed; /* sandboxd sent it SIGKILL (deadline, quota, client gone, shutdown) */
    atomic_bool over_quota; /* ... because its dirs outgrew the disk quota (the supervisor) */
    bool got_status;
    atomic_bool reaped; /* read by sandbox_kill from exec_shutdown's thread too */
    int exit_code, signo;
    pthread_t sup;
    bool sup_running;
    atomic_bool stop;
    pthread_mutex_t mu;
    char *dirs[2]; /* host work dir and tmp dir, watched for the disk quota */
    int64_t disk_bytes;
    viol v[SBX_MAX_VIOL];
    int nv;
    int lost;
};

/* sandbox.c: id maps of a child in a fresh user namespace ("<inside> <outside> 1"; unprivileged:
 * the server's own ids, after "deny" in setgroups). 0 or -1. */
int sbxi_write_id_map(pid_t pid, bool priv, unsigned inside, unsigned outside);

/* seccomp.c: the filter (network refused, or loosened), built once. 0 or -1. */
int sbxi_filter_for(bool allow_network, struct sock_filter **prog, size_t *len);
/* seccomp.c: the kind and a short detail ("socket(AF_INET6)") of one refused call. */
void sbxi_describe(const struct seccomp_notif *req, char *kind, size_t kn, char *det, size_t dn);

/* supervise.c: record a refusal (deduplicated, capped). */
void sbxi_add_viol(sandbox_child *c, const char *kind, const char *detail);
/* supervise.c: the supervisor thread of one child (pthread start routine). */
void *sbxi_supervise(void *arg);

/* mounts.c: in a run's init (no malloc): build the private root and pivot into it. */
void sbxi_build_root(int sock, const sandbox_spec *s);
/* mounts.c: a detached copy of `dir` (nosuid, nodev) for a zygote run's init, or -1. */
int sbxi_tree_of(const char *dir);

/* spawn.c: the host ids a run's directories are given: its own (privileged), or the server's;
 * `zygote`: those of the zygote itself. */
void sbxi_run_owner(bool zygote, unsigned *uid, unsigned *gid);
/* spawn.c: a started child's disk quota and directories, and its supervisor thread. */
void sbxi_start_supervising(sandbox_child *c, const sandbox_spec *spec);

/* spawn.c: one message (and a descriptor) from a status socket within timeout_ms: its length,
 * -2 on timeout, -1 on error; -3 when `cancel` (>= 0) turned readable first. */
int sbxi_recv_msg_or(int sock, int cancel, char *buf, size_t n, int *fd_out, int timeout_ms);
/* The same without a cancel descriptor. */
int sbxi_recv_msg(int sock, char *buf, size_t n, int *fd_out, int timeout_ms);

#endif
