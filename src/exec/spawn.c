/* spawn.c -- how a sandboxed child starts cold: sandbox_spawn clones an init in fresh
 * namespaces that builds its root and starts the program (or the zygote). It chowns the run
 * dirs to the ids the run gets and starts the child's supervisor; the zygote's path
 * (zygote.c's sandbox_spawn_zygote) shares those two steps. See sandbox_int.h. */
#define _GNU_SOURCE
#include "sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <net/if.h>
#include <netinet/in.h>
#include <dirent.h>
#include <termios.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/util.h"
#include "layers.h"
#include "zygote_proto.h"

/* The zygote's own process: stdio, the passed fds at 4.., cwd, no core dumps, a bounding set
 * of CAP_SETUID and CAP_SETGID (enough to map its runs' ids; each run's fresh user namespace
 * gets its own full set; plus CAP_SETFCAP unprivileged), no_new_privs. Its runs apply every other
 * layer themselves. */
static void enter_zygote(int sock, const sandbox_spec *s) {
    int in = fcntl(s->stdin_fd, F_DUPFD_CLOEXEC, 10), o = fcntl(s->stdout_fd, F_DUPFD_CLOEXEC, 10);
    int er = fcntl(s->stderr_fd, F_DUPFD_CLOEXEC, 10), k = fcntl(sock, F_DUPFD_CLOEXEC, 10);
    if (in < 0 || o < 0 || er < 0 || k < 0 || s->npass > 4)
        lay_die(sock, "stdio");
    int pass[4];
    for (int i = 0; i < s->npass; i++)
        if ((pass[i] = fcntl(s->pass_fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
            lay_die(sock, "pass fds");
    if (dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(er, 2) < 0 || dup3(k, 3, O_CLOEXEC) < 0)
        lay_die(sock, "stdio");
    sock = 3;
    for (int i = 0; i < s->npass; i++)
        if (dup2(pass[i], 4 + i) < 0)
            lay_die(sock, "pass fds");
    lay_close_from(4 + s->npass, -1);
    if (chdir(SANDBOX_WORK_PATH) != 0)
        lay_die(sock, "chdir work dir");
    struct rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_CORE, &zero) != 0)
        lay_die(sock, "setrlimit core");
    /* unprivileged, its runs map to its own root (host id of the server), and mapping a
     * namespace onto id 0 of its parent takes CAP_SETFCAP there too */
    for (int cap = 0; cap <= 63; cap++)
        if (cap != CAP_SETUID && cap != CAP_SETGID && (sbxi_probe.priv || cap != CAP_SETFCAP) &&
            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            lay_die(sock, "drop bounding set");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        lay_die(sock, "no_new_privs");
    char n = 'N'; /* no seccomp listener: say so, as a run would send its listener */
    if (send(sock, &n, 1, MSG_NOSIGNAL) != 1)
        lay_die(sock, "report");
}

struct child_args {
    const sandbox_spec *s;
    lay_spec lay;
    int sock, go_fd;
    bool userns;
};

/* pid 1 of the run: build the root, start the program, reap, report its status. */
static void run_init(struct child_args *a) {
    const sandbox_spec *s = a->s;
    int sock = a->sock;
    char go;
    if (read(a->go_fd, &go, 1) != 1) /* the parent wrote our id maps */
        _exit(127);
    close(a->go_fd);
    if (a->userns) {
        (void)sethostname("sandbox", 7);
        sbxi_build_root(sock, s);
        if (s->egress_port)
            lay_open_egress(sock, s->egress_port, 'P');
        /* becoming the sandbox id cleared the parent-death signal: set it again, then make sure
         * the server did not die in between (its end of the status socket would be closed) */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        struct pollfd pf = {.fd = sock, .events = POLLRDHUP};
        if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLRDHUP)))
            _exit(127);
    }
    /* raw clone, not fork(): glibc's fork takes locks a thread of the server may have held */
    pid_t prog = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    if (prog < 0)
        lay_die(sock, "fork");
    if (prog == 0) {
        if (s->zygote_init)
            enter_zygote(sock, s);
        else
            lay_enter(sock, &a->lay);
        execve(s->argv[0], (char *const *)s->argv, (char *const *)s->envp);
        lay_die(3, "execve");
    }
    lay_init_loop(sock, prog, a->userns);
}

/* ---- parent side ---------------------------------------------------------------------------- */

/* The id maps of a run's (or the zygote's) user namespace. Privileged: the run's inner id to
 * its own host id; the zygote root of its namespace plus 1..SPAN for the runs it starts. An
 * unprivileged server can map only its own ids: a run's inner id, or the zygote's root, to them
 * (the zygote's runs then map to its root). */
static int write_maps(pid_t pid, unsigned outer, bool zygote) {
    if (!sbxi_probe.priv)
        return sbxi_write_id_map(pid, false, zygote ? 0 : SBX_INNER_ID, 0);
    if (!zygote)
        return sbxi_write_id_map(pid, true, SBX_INNER_ID, outer);
    char path[64], line[96];
    snprintf(line, sizeof line, "0 %u 1\n1 %u %u\n", SBX_ZYGOTE_OUTER, SBX_OUTER_BASE,
             SBX_OUTER_SPAN);
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    if (lay_write_str(path, line) != 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return lay_write_str(path, line);
}

void sbxi_run_owner(bool zygote, unsigned *uid, unsigned *gid) {
    if (sbxi_probe.priv) {
        *uid = *gid = zygote
                          ? SBX_ZYGOTE_OUTER
                          : SBX_OUTER_BASE + (atomic_fetch_add(&sbxi_next_id, 1) % SBX_OUTER_SPAN);
    } else if (sbxi_probe.userns || geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
    } else {
        *uid = *gid = 65534; /* weak: a root server without user namespaces runs them as nobody */
    }
}

int sbxi_recv_msg_or(int sock, int cancel, char *buf, size_t n, int *fd_out, int timeout_ms) {
    struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = cancel, .events = POLLIN}};
    int r = poll(p, cancel >= 0 ? 2 : 1, timeout_ms);
    if (r <= 0)
        return r == 0 ? -2 : -1;
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return -3;
    struct iovec iov = {.iov_base = buf, .iov_len = n - 1};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    ssize_t got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (got < 0)
        return -1;
    buf[got] = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && fd_out)
            memcpy(fd_out, CMSG_DATA(cm), sizeof(int));
    return (int)got;
}

int sbxi_recv_msg(int sock, char *buf, size_t n, int *fd_out, int timeout_ms) {
    return sbxi_recv_msg_or(sock, -1, buf, n, fd_out, timeout_ms);
}

void sandbox_env_free(char **env) {
    if (!env)
        return;
    for (char **p = env; *p; p++)
        free(*p);
    free(env);
}

char **sandbox_env_rewrite(const char *const *envp, const char *work_dir, const char *tmp_dir) {
    size_t n = 0;
    while (envp[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t wl = strlen(work_dir), tl = strlen(tmp_dir);
    for (size_t i = 0; i < n; i++) {
        const char *kv = envp[i], *eq = strchr(kv, '=');
        const char *v = eq ? eq + 1 : NULL;
        const char *inner = NULL;
        size_t cut = 0;
        if (v && !strncmp(v, work_dir, wl) && (v[wl] == 0 || v[wl] == '/'))
            inner = SANDBOX_WORK_PATH, cut = wl;
        else if (v && !strncmp(v, tmp_dir, tl) && (v[tl] == 0 || v[tl] == '/'))
            inner = "/tmp", cut = tl;
        if (inner) {
            size_t len = (size_t)(v - kv) + strlen(inner) + strlen(v + cut) + 1;
            env[i] = malloc(len);
            if (env[i])
                snprintf(env[i], len, "%.*s%s%s", (int)(v - kv), kv, inner, v + cut);
        } else {
            env[i] = strdup(kv);
        }
        if (!env[i]) {
            sandbox_env_free(env);
            return NULL;
        }
    }
    return env;
}

/* A copy of spec->envp where TMPDIR names the run's own tmp dir (no private /tmp: weak). */
static char **env_tmpdir(const sandbox_spec *s) {
    size_t n = 0;
    while (s->envp[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(s->envp[i], "TMPDIR=", 7)) {
            size_t len = strlen(s->tmp_dir) + 8;
            if ((env[i] = malloc(len)))
                snprintf(env[i], len, "TMPDIR=%s", s->tmp_dir);
        } else {
            env[i] = strdup(s->envp[i]);
        }
        if (!env[i]) {
            sandbox_env_free(env);
            return NULL;
        }
    }
    return env;
}

void sbxi_start_supervising(sandbox_child *c, const sandbox_spec *spec) {
    int64_t fs = spec->file_size_mb > 0 ? spec->file_size_mb : 64;
    c->disk_bytes = (spec->disk_mb > 0 ? spec->disk_mb : 4 * fs) * 1024 * 1024;
    c->dirs[0] = strdup(spec->work_dir);
    c->dirs[1] = strdup(spec->tmp_dir);
    if (pthread_create(&c->sup, NULL, sbxi_supervise, c) == 0)
        c->sup_running = true;
}

/* One message of a child's start: `tag` with a descriptor (into *fd_out; none is needed when
 * `fd_optional`), within 10 s or until `cancel` turns readable. On failure, false with why in
 * `msg`: the child's own set-up error, its silence, or the stop. */
static bool start_step(int sock, int cancel, char tag, bool fd_optional, int *fd_out, char *msg,
                       size_t n) {
    int fd = -1;
    int r = sbxi_recv_msg_or(sock, cancel, msg, n, &fd, 10000);
    if (r > 0 && msg[0] == tag && (fd >= 0 || fd_optional)) {
        *fd_out = fd;
        return true;
    }
    if (fd >= 0)
        close(fd);
    if (r == -3)
        snprintf(msg, n, "the server is stopping");
    else if (r <= 0)
        snprintf(msg, n, "child did not start");
    else if (msg[0] == tag) /* its descriptor was dropped: this process had no room */
        snprintf(msg, n, "receive the run's descriptor: %s", strerror(EMFILE));
    else
        memmove(msg, msg + 1, strlen(msg));
    return false;
}

sbx_code sandbox_spawn(const sandbox_spec *spec, sandbox_child **out, sbx_err *e) {
    if (!spec || !spec->argv || !spec->argv[0] || !spec->envp || !spec->work_dir ||
        !spec->tmp_dir || !out)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: incomplete spec");
    if (sandbox_check(e) != SBX_OK) /* fail closed: a missing layer refuses every run */
        return SBX_EUNAVAIL;
    bool userns = sbxi_probe.userns;
    if (spec->zygote_init && !userns)
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the zygote needs user namespaces");
    if (spec->egress_port && (!userns || spec->allow_network))
        return sbx_fail(e, SBX_EUNAVAIL,
                        "sandbox: network through the egress gateway (EXEC_NETWORK) needs user "
                        "namespaces");
    struct sock_filter *prog = NULL;
    size_t plen = 0;
    if (sbxi_probe.seccomp_ok &&
        sbxi_filter_for(spec->allow_network || spec->egress_port, &prog, &plen) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: cannot build the seccomp filter");
    struct sock_fprog fp = {.len = (unsigned short)plen, .filter = prog};

    unsigned outer, outer_gid;
    sbxi_run_owner(spec->zygote_init, &outer, &outer_gid);
    if (chown(spec->work_dir, outer, outer_gid) != 0 || chown(spec->tmp_dir, outer, outer_gid) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: chown run dirs: %s", strerror(errno));

    /* with its own root, the host paths of its dirs are renamed; without (weak), its TMPDIR is
     * its own tmp dir, not the host's /tmp */
    char **env =
        userns ? sandbox_env_rewrite(spec->envp, spec->work_dir, spec->tmp_dir) : env_tmpdir(spec);
    if (!env)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: out of memory");
    sandbox_spec local = *spec;
    local.envp = (const char *const *)env;
    local.runs_dir = spec->zygote_init && !sbxi_probe.trees && sbxi_probe.runs_dir[0]
                         ? sbxi_probe.runs_dir
                         : NULL;
    spec = &local;

    sandbox_child *c = calloc(1, sizeof *c);
    int sv[2] = {-1, -1}, go[2] = {-1, -1};
    if (!c || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(go, O_CLOEXEC) != 0) {
        free(c);
        sandbox_env_free(env);
        for (int i = 0; i < 2; i++) {
            if (sv[i] >= 0)
                close(sv[i]);
            if (go[i] >= 0)
                close(go[i]);
        }
        return sbx_fail_errno(e, errno, "sandbox: cannot set up the run");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->notifyfd = c->zpidfd = c->donefd = c->egressfd = -1;
    c->pidfd = -1;
    c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct child_args a = {.s = spec, .sock = sv[1], .go_fd = go[0], .userns = userns};
    a.lay = (lay_spec){.stdin_fd = spec->stdin_fd,
                       .stdout_fd = spec->stdout_fd,
                       .stderr_fd = spec->stderr_fd,
                       .work = userns ? SANDBOX_WORK_PATH : spec->work_dir,
                       .tmp = userns ? "/tmp" : spec->tmp_dir,
                       .memory_mb = spec->memory_mb,
                       .max_procs = spec->max_procs,
                       .file_size_mb = spec->file_size_mb,
                       .open_files = spec->open_files,
                       .cpu_seconds = spec->cpu_seconds,
                       .allow_network = spec->allow_network,
                       .userns = userns,
                       .keep_ids = !userns && geteuid() != 0,
                       .setgroups_denied = userns && !sbxi_probe.priv,
                       .landlock_abi = sbxi_probe.landlock_abi,
                       .notify = sbxi_probe.notify_ok,
                       .bpf = prog ? &fp : NULL,
                       .keep_fd = -1,
                       .connect_port = spec->egress_port};
    unsigned long flags = SIGCHLD;
    if (userns)
        flags |= CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
                 (spec->allow_network ? 0 : CLONE_NEWNET);
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        (void)setpgid(0, 0);
        close(sv[0]);
        close(go[1]);
        run_init(&a);
        _exit(127);
    }
    int err = errno;
    close(sv[1]);
    close(go[0]);
    sandbox_env_free(env);
    if (pid < 0) {
        close(sv[0]);
        close(go[1]);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return sbx_fail_errno(e, err, "sandbox: clone");
    }
    (void)setpgid(pid, pid);
    if (spec->owner_dir) /* before it runs anything: a SIGKILLed server's sweep can prove it */
        sbx_owner_record(spec->owner_dir, pid);
    c->pid = pid;
    c->sock = sv[0];
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    char msg[300];
    bool ok = !userns || write_maps(pid, outer, spec->zygote_init) == 0;
    if (!ok)
        snprintf(msg, sizeof msg, "write id maps: %s", strerror(errno));
    if (ok && write(go[1], "g", 1) != 1) {
        ok = false;
        snprintf(msg, sizeof msg, "start child: %s", strerror(errno));
    }
    close(go[1]);
    int cancel = spec->cancel_fd ? *spec->cancel_fd : -1;
    /* With egress_port, the init first sends its listener ('P'), or a set-up error. */
    if (ok && spec->egress_port)
        ok = start_step(c->sock, cancel, 'P', false, &c->egressfd, msg, sizeof msg);
    /* The first message is the notify fd ('N'), a set-up error ('E...'), or an early status. */
    if (ok && prog)
        ok = start_step(c->sock, cancel, 'N', spec->zygote_init, &c->notifyfd, msg, sizeof msg);
    if (!ok) {
        LOG_W("sandbox", "spawn failed: %s", msg);
        sandbox_free(c);
        int err = sbx_errno_in(msg); /* a shortage the child hit is no internal error */
        if (err)
            return sbx_fail_errno(e, err, "sandbox: the run could not start");
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: %s", msg);
    }
    sbxi_start_supervising(c, spec);
    *out = c;
    return SBX_OK;
}
