/* zygote_proto.h -- what the server and the zygote say to each other (both sides include it).
 *
 * One SOCK_SEQPACKET control socket. The zygote speaks first, once: "R" followed by a JSON
 * object {"modules": [...], "preloadKiB": n} when it has imported its modules and waits. Then
 * every message from the server is one zyg_req carrying ZYG_NFDS descriptors (SCM_RIGHTS) in
 * the order of the enum; the zygote answers nothing on the control socket: each run reports on
 * its own status socket exactly as a cold run does ("P" with a pidfd of the run's init first,
 * then, with connect_port, "L" with the egress listener the init made in the run's network
 * namespace, then "N" with the seccomp listener, or "E..." on a set-up error, and "S<status>"
 * at the end).
 * The program itself writes "D<exit code>" to the done pipe (ZYG_FD_DONE) just before it exits,
 * so the server can answer before the kernel has torn down its copy of the zygote's memory.
 * Closing the control socket stops the zygote.
 */
#ifndef SBX_ZYGOTE_PROTO_H
#define SBX_ZYGOTE_PROTO_H

#include <linux/filter.h>
#include <stdint.h>

#define ZYG_MAGIC   0x5a594731u /* "ZYG1" */
#define ZYG_MAX_BPF 1024        /* seccomp instructions */
#define ZYG_MAX_ENV 4096        /* bytes of the run's environment (zyg_req.env) */
#define ZYG_CTRL_FD 4           /* the control socket, in the zygote */
#define ZYG_SO_FD   5           /* the zygote's shared object (the file), until it is loaded */

enum {
    ZYG_FD_STATUS,
    ZYG_FD_STDIN,
    ZYG_FD_STDOUT,
    ZYG_FD_STDERR,
    ZYG_FD_WORK, /* a detached mount of the work dir (open_tree), or with ZYG_F_BY_NAME an
                    O_PATH descriptor of it */
    ZYG_FD_TMP,
    ZYG_FD_CODE,
    ZYG_FD_DONE,
    ZYG_NFDS
};

/* zyg_req.flags */
#define ZYG_F_SETGROUPS_DENIED 1u /* the namespaces were made unprivileged: no setgroups() */
#define ZYG_F_BY_NAME          2u /* work/tmp are bound from ZYG_RUNS_PATH + work/tmp_rel */

/* Where the zygote of an unprivileged server sees DATA_DIR/runs: the server cannot make
 * detached mounts of a run's directories (open_tree needs CAP_SYS_ADMIN over its own mount
 * namespace), so each run's init binds its two directories from here, checks they are the
 * ones whose descriptors came with the request, and covers this path with an empty read-only
 * tmpfs before its program runs. */
#define ZYG_RUNS_PATH "/.sbx-runs"

typedef struct zyg_req {
    uint32_t magic;
    uint32_t run_uid; /* id in the zygote's user namespace that the run's SBX_INNER_ID maps to */
    uint32_t flags;   /* ZYG_F_* */
    char work_rel[128], tmp_rel[128]; /* with ZYG_F_BY_NAME: paths under ZYG_RUNS_PATH */
    int64_t memory_mb, max_procs, file_size_mb, open_files, cpu_seconds;
    int32_t landlock_abi, notify;
    /* > 0: the egress gateway's port. The run's init brings lo up in the run's network
     * namespace and listens on 127.0.0.1:connect_port (sent as "L"); Landlock lets the program
     * connect to that TCP port only; bpf is then the filter that allows inet sockets. */
    uint16_t connect_port;
    /* The program's whole environment: env_len bytes of NUL-terminated "NAME=value" strings
     * (the interpreter replaces the zygote's os.environ with it before the program runs). */
    uint32_t env_len;
    char env[ZYG_MAX_ENV];
    uint32_t bpf_len; /* instructions used in bpf[] */
    struct sock_filter bpf[ZYG_MAX_BPF];
} zyg_req;

#endif
