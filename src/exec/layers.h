/* layers.h -- the per-process layers of a sandboxed program, shared by both ways a run starts.
 *
 * A cold run (sandbox.c: a fresh init per run, then execve) and a zygote run (zygote_so/: a
 * fork of a pre-loaded interpreter that returns into Python) apply exactly this code, so the
 * two paths confine a program identically. Everything here runs in a freshly cloned child:
 * no malloc, no locks, no logging; a failure reports "E<what>: <why>" on the status socket and
 * exits 127. The header has no dependency beyond libc so the zygote's shared object can use it.
 */
#ifndef SBX_LAYERS_H
#define SBX_LAYERS_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SBX_INNER_ID      1000u       /* uid/gid the program sees */
#define SBX_OUTER_BASE    1500000000u /* outside ids: one per run, never a real user */
#define SBX_OUTER_SPAN    100000u
#define SANDBOX_WORK_PATH "/work" /* where the work dir appears inside (the program's cwd) */

/* What one program gets, in the child's own terms (fds are the child's). */
typedef struct lay_spec {
    int stdin_fd, stdout_fd, stderr_fd; /* become 0, 1, 2 */
    const char *work; /* cwd: SANDBOX_WORK_PATH, or the host path without userns */
    const char *tmp;  /* the private /tmp: "/tmp", or the host path without userns */
    int64_t memory_mb, max_procs, file_size_mb, open_files, cpu_seconds; /* <= 0: unlimited */
    bool allow_network;
    bool userns; /* inside a user namespace (with a private root): become SBX_INNER_ID */
    /* without userns: true keeps the server's own ids (an unprivileged server cannot change
     * them), false becomes nobody (a root server) */
    bool keep_ids;
    bool setgroups_denied;        /* the user namespace says "deny" in /proc/self/setgroups */
    int landlock_abi;             /* 0: no Landlock */
    bool notify;                  /* seccomp user notification: send the listener fd */
    const struct sock_fprog *bpf; /* NULL: no seccomp */
    int keep_fd;                  /* a descriptor above 3 that stays open (-1: none) */
    uint16_t connect_port; /* without allow_network: the one TCP port Landlock lets it connect
                            * to (the egress gateway's listener in its netns); 0: none */
} lay_spec;

/* The device nodes a sandbox offers (bound read-write into its /dev). */
extern const char *const lay_dev_nodes[5];

/* Report "E<what>: <strerror(errno)>" on `sock`. */
void lay_report(int sock, const char *what);
/* lay_report, then _exit(127). */
void lay_die(int sock, const char *what) __attribute__((noreturn));

/* Send `len` bytes of `msg` with `nfds` (at most LAY_MAX_FDS) descriptors attached
 * (SCM_RIGHTS) in one sendmsg(MSG_NOSIGNAL | flags); returns what sendmsg did. No allocation:
 * safe in a freshly cloned child. */
#define LAY_MAX_FDS 8
ssize_t lay_send_fds(int sock, const void *msg, size_t len, const int *fds, int nfds, int flags);

/* Write all of `s` to `path` (e.g. /proc/PID/uid_map). 0 or -1. */
int lay_write_str(const char *path, const char *s);

/* Close every fd >= lowfd except `keep` (-1: none). */
void lay_close_from(int lowfd, int keep);

/* The per-process layers, in order, for a process already inside its namespaces and root:
 * stdio (and the status socket moved to fd 3, close-on-exec; every other fd closed), cwd,
 * no_new_privs (before Landlock, which a process without CAP_SYS_ADMIN may only enter with it),
 * Landlock, rlimits, bounding set, identity, capabilities, seccomp last (the listener fd is
 * sent on the status socket as an 'N' message). Returns only on success. */
void lay_enter(int sock, const lay_spec *s);

/* The run's init after it started the program `prog`: close everything but `sock`, reap every
 * child until none is left (after `prog` ends, kill the rest when `kill_rest`), then send
 * "S<wait status of prog>" on `sock` and _exit(0). */
void lay_init_loop(int sock, pid_t prog, bool kill_rest) __attribute__((noreturn));

/* In a run's own network namespace (as its init, holding CAP_NET_ADMIN there): bring `lo` up,
 * listen on 127.0.0.1:port and send the listening socket on `sock` as the one-byte message
 * `tag` (the egress gateway accepts on it); lay_die on failure. A cold init and a zygote's run
 * init both use it. */
void lay_open_egress(int sock, uint16_t port, char tag);

#endif
