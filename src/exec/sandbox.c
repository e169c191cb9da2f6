/* sandbox.c -- the sandbox's kernel layers (probed once, fail closed when one is missing) and a
 * child's life after its start: wait, kill, reap, free. The rest of sandbox.h lives in
 * spawn.c (starting), mounts.c (the private root), seccomp.c (the filter) and supervise.c (the
 * supervisor and violations); sandbox_int.h is what they share.
 *
 * A sandboxed child gets namespaces, a private root, no_new_privs, Landlock, rlimits, dropped
 * capabilities and seccomp (last), then execve.
 *
 * Process shape: the server clone()s an init (pid 1 of new user, pid, net, mount, ipc and uts
 * namespaces). The server writes its uid/gid maps, then init builds the private root, forks the
 * program's process, reaps everything, and reports the program's wait status over a socket. The
 * program's process applies the per-process layers in one ordered list (lay_enter, layers.c) and
 * execs. Killing init tears the whole pid namespace down, so no daemon outlives a run.
 *
 * Root and unprivileged servers build the same layers: only the id maps differ (root gives each
 * run a host id of its own; an unprivileged server may map only its own ids, after "deny" in
 * setgroups), and an unprivileged zygote sees DATA_DIR/runs to bind its runs' directories from,
 * since only root can make detached mounts of them (zygote_proto.h). A layer the kernel refuses
 * fails every run closed (sandbox_check) unless the operator accepted a weaker sandbox.
 *
 * The child side never mallocs (the server is multithreaded and the child comes from a raw
 * clone), so the seccomp program is compiled in the parent and loaded with the raw syscall. The
 * listener fd (SECCOMP_FILTER_FLAG_NEW_LISTENER) travels to the parent with SCM_RIGHTS; a
 * supervisor thread per child answers each notification with EPERM and records a violation.
 */
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
#include <dirent.h>
#include <termios.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/util.h"
#include "layers.h"
#include "zygote_proto.h"

/* ---- the kernel's layers, probed once ------------------------------------------------------ */

sandbox_probe_state sbxi_probe;
pthread_mutex_t sbxi_probe_mu = PTHREAD_MUTEX_INITIALIZER;
atomic_uint sbxi_next_id;

static int ll_abi(void) {
    long r = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return r < 0 ? 0 : (int)r;
}

/* Report "<step>: <why>" on `fd` and _exit(1): the probe child's only way out on failure. */
static void probe_die(int fd, const char *step) {
    char m[160];
    const char *why = strerrordesc_np(errno);
    int n = snprintf(m, sizeof m, "%s: %s", step, why ? why : "error");
    if (n > 0)
        (void)!write(fd, m, (size_t)(n < (int)sizeof m ? n : (int)sizeof m - 1));
    _exit(1);
}

/* id maps of a child in a fresh user namespace: "<inside> <outside> 1" for uid and gid. A
 * privileged server maps any id; an unprivileged one only its own, after "deny" in setgroups. */
int sbxi_write_id_map(pid_t pid, bool priv, unsigned inside, unsigned outside) {
    char path[64], line[64];
    if (!priv) {
        snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
        if (lay_write_str(path, "deny") != 0)
            return -1;
    }
    snprintf(line, sizeof line, "%u %u 1\n", inside, priv ? outside : (unsigned)geteuid());
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    if (lay_write_str(path, line) != 0)
        return -1;
    snprintf(line, sizeof line, "%u %u 1\n", inside, priv ? outside : (unsigned)getegid());
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return lay_write_str(path, line);
}

/* Whether a run's init could be made: a child in fresh user, pid, net, mount, ipc and uts
 * namespaces that gets its id maps, makes its mounts private, mounts a proc and a tmpfs (what
 * Docker's default profile or AppArmor may refuse) and becomes the inner id. 0, or -1 with
 * the failing step in `why`. Runs before the server's threads exist (or from a test). */
static int probe_ns(bool priv, bool *no_proc, char *why, size_t wn) {
    int go[2], rep[2];
    if (pipe2(go, O_CLOEXEC) != 0)
        return snprintf(why, wn, "pipe: %s", strerror(errno)), -1;
    if (pipe2(rep, O_CLOEXEC) != 0) {
        close(go[0]), close(go[1]);
        return snprintf(why, wn, "pipe: %s", strerror(errno)), -1;
    }
    unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                          CLONE_NEWUTS | SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        char g;
        close(go[1]);
        close(rep[0]);
        if (read(go[0], &g, 1) != 1)
            _exit(1);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            probe_die(rep[1], "make / private");
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
            /* refused where the only procfs has covered parts (Docker's masked paths): runs
             * get an empty /proc instead, which hides even more */
            if ((errno != EPERM && errno != EACCES) ||
                mount("sbxnoproc", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                      "size=4k,mode=0555") != 0)
                probe_die(rep[1], "mount proc");
            if (write(rep[1], "P", 1) != 1)
                _exit(1);
        }
        if (mount("sbxprobe", "/", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k") != 0)
            probe_die(rep[1], "mount tmpfs");
        if ((int)syscall(SYS_setresgid, SBX_INNER_ID, SBX_INNER_ID, SBX_INNER_ID) != 0 ||
            (int)syscall(SYS_setresuid, SBX_INNER_ID, SBX_INNER_ID, SBX_INNER_ID) != 0)
            probe_die(rep[1], "become the inner id");
        _exit(0);
    }
    int err = errno;
    close(go[0]);
    close(rep[1]);
    if (pid < 0) {
        close(go[1]), close(rep[0]);
        snprintf(why, wn, "clone with namespace flags: %s", strerror(err));
        return -1;
    }
    int rc = 0;
    if (sbxi_write_id_map(pid, priv, SBX_INNER_ID, SBX_OUTER_BASE) != 0) {
        snprintf(why, wn, "write id maps: %s", strerror(errno));
        rc = -1;
    } else if (write(go[1], "g", 1) != 1) {
        snprintf(why, wn, "start the probe: %s", strerror(errno));
        rc = -1;
    }
    close(go[1]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char m[160];
    ssize_t n = read(rep[0], m, sizeof m - 1);
    close(rep[0]);
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        m[n > 0 ? n : 0] = 0;
        const char *say = n > 0 && m[0] == 'P' ? m + 1 : m; /* after a "P", the failure */
        snprintf(why, wn, "%s", n > 0 && *say ? say : "the probe failed");
        rc = -1;
    }
    if (rc == 0)
        *no_proc = n > 0 && m[0] == 'P';
    return rc;
}

/* Root of the initial user namespace (whose uid map is the identity over every id). */
static bool initial_root(void) {
    if (geteuid() != 0)
        return false;
    char *m = sbx_read_file("/proc/self/uid_map", 4096, NULL);
    unsigned a = 1, b = 1, c = 0;
    bool init = m && sscanf(m, "%u %u %u", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295u;
    free(m);
    return init;
}

static void probe_locked(void) {
    if (sbxi_probe.probed)
        return;
    sbxi_probe.probed = true;
    char why[160] = "";
    bool root = initial_root();
    bool no_proc = false;
    if (geteuid() == 0 && probe_ns(true, &no_proc, why, sizeof why) == 0) {
        sbxi_probe.userns = sbxi_probe.priv = true;
    } else if (!root && probe_ns(false, &no_proc, why, sizeof why) == 0) {
        /* (never for the initial root: its runs would map to the host's uid 0) */
        sbxi_probe.userns = true;
    } else {
        snprintf(sbxi_probe.userns_why, sizeof sbxi_probe.userns_why, "%s", why);
    }
    if (sbxi_probe.priv) {
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        sbxi_probe.trees = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    sbxi_probe.landlock_abi = ll_abi();
    sbxi_probe.landlock_ok = sbxi_probe.landlock_abi >= 1;
    sbxi_probe.seccomp_ok = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    sbxi_probe.notify_ok = seccomp_api_get() >= 6;
    LOG_I("sandbox", "layers: namespaces=%s ids=%s landlock_abi=%d seccomp=%s notify=%s",
          sbxi_probe.userns ? "user,pid,net,mount,ipc,uts" : "none",
          !sbxi_probe.userns ? (geteuid() == 0 ? "nobody" : "the server's")
          : sbxi_probe.priv  ? "one host id per run"
                             : "the server's (unprivileged user namespaces)",
          sbxi_probe.landlock_abi, sbxi_probe.seccomp_ok ? "yes" : "no",
          sbxi_probe.notify_ok ? "yes" : "no");
    if (!sbxi_probe.userns)
        LOG_W("sandbox", "no user namespaces: %s", sbxi_probe.userns_why);
    sbxi_probe.no_proc = sbxi_probe.userns && no_proc;
    if (sbxi_probe.no_proc)
        LOG_W("sandbox", "no procfs can be mounted in a run's namespaces (this container covers "
                         "parts of its /proc): runs get an empty /proc and start cold, without "
                         "the zygote; docker run --security-opt systempaths=unconfined lifts it");
}

void sandbox_probe(void) {
    pthread_mutex_lock(&sbxi_probe_mu);
    probe_locked();
    pthread_mutex_unlock(&sbxi_probe_mu);
}

void sandbox_init(const char *runs_dir, bool allow_weak) {
    pthread_mutex_lock(&sbxi_probe_mu);
    snprintf(sbxi_probe.runs_dir, sizeof sbxi_probe.runs_dir, "%s", runs_dir ? runs_dir : "");
    sbxi_probe.allow_weak = allow_weak;
    probe_locked();
    pthread_mutex_unlock(&sbxi_probe_mu);
}

/* The layers this kernel cannot give, as "<layer> (<why>)" joined by "; ", into buf. */
static size_t missing_layers(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    if (!sbxi_probe.userns)
        len += (size_t)snprintf(buf + len, n - len, "user namespaces (%s)", sbxi_probe.userns_why);
    if (!sbxi_probe.landlock_ok && len < n)
        len += (size_t)snprintf(buf + len, n - len, "%sLandlock (not in this kernel)",
                                len ? "; " : "");
    if (!sbxi_probe.seccomp_ok && len < n)
        len +=
            (size_t)snprintf(buf + len, n - len, "%sseccomp (not in this kernel)", len ? "; " : "");
    return len;
}

sbx_code sandbox_check(sbx_err *e) {
    sandbox_probe();
    char miss[512];
    if (!missing_layers(miss, sizeof miss) || sbxi_probe.allow_weak)
        return SBX_OK;
    return sbx_fail(e, SBX_EUNAVAIL,
                    "the sandbox is incomplete, so runs are refused: missing %s; set "
                    "EXEC_ALLOW_WEAK_SANDBOX=true to accept a weaker sandbox",
                    miss);
}

bool sandbox_userns(void) {
    sandbox_probe();
    return sbxi_probe.userns;
}

bool sandbox_own_proc(void) {
    sandbox_probe();
    return sbxi_probe.userns && !sbxi_probe.no_proc;
}

bool sandbox_weak(char *why, size_t n) {
    sandbox_probe();
    char miss[512];
    bool weak = missing_layers(miss, sizeof miss) > 0;
    if (why && n)
        snprintf(why, n, "%s", weak ? miss : "");
    return weak;
}

cJSON *sandbox_layers(void) {
    sandbox_probe();
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const char *ns[] = {"userNamespace",  "pidNamespace", "netNamespace",
                        "mountNamespace", "ipcNamespace", "utsNamespace"};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        cJSON_AddBoolToObject(o, ns[i], sbxi_probe.userns);
    cJSON_AddNumberToObject(o, "landlock", sbxi_probe.landlock_abi);
    cJSON_AddBoolToObject(o, "rlimits", true);
    cJSON_AddBoolToObject(o, "noNewPrivs", true);
    cJSON_AddBoolToObject(o, "capabilitiesDropped", true);
    /* a run's /proc: its own pid namespace's ("own"), or empty where none can be mounted */
    cJSON_AddStringToObject(o, "proc",
                            !sbxi_probe.userns   ? "host"
                            : sbxi_probe.no_proc ? "empty"
                                                 : "own");
    cJSON_AddBoolToObject(o, "seccomp", sbxi_probe.seccomp_ok);
    cJSON_AddBoolToObject(o, "seccompNotify", sbxi_probe.seccomp_ok && sbxi_probe.notify_ok);
    /* how the ids are mapped: "perRun" (a fresh host id per run, root only), "server" (every run
     * maps to the server's own uid: an unprivileged server), "nobody" / "server" without a user
     * namespace (weak) */
    cJSON_AddStringToObject(o, "hostIds",
                            sbxi_probe.priv                       ? "perRun"
                            : sbxi_probe.userns || geteuid() != 0 ? "server"
                                                                  : "nobody");
    char miss[512];
    bool weak = missing_layers(miss, sizeof miss) > 0;
    cJSON_AddBoolToObject(o, "complete", !weak);
    if (weak)
        cJSON_AddStringToObject(o, "missing", miss);
    else
        cJSON_AddNullToObject(o, "missing");
    cJSON_AddBoolToObject(o, "weakAccepted", sbxi_probe.allow_weak);
    cJSON_AddBoolToObject(o, "runsRefused", weak && !sbxi_probe.allow_weak);
    return o;
}

int sandbox_take_egress_fd(sandbox_child *c) {
    int fd = c ? c->egressfd : -1;
    if (c)
        c->egressfd = -1;
    return fd;
}

pid_t sandbox_pid(const sandbox_child *c) {
    return c ? c->pid : -1;
}

int sandbox_pollfd(const sandbox_child *c) {
    return c && !c->reaped ? c->pidfd : -1;
}

static void reap(sandbox_child *c, int w) {
    c->reaped = true;
    c->exit_code = -1;
    c->signo = 0;
    if (WIFSIGNALED(w)) {
        c->signo = WTERMSIG(w);
        return;
    }
    /* init exited: the program's status is on the socket (an 'E' means set-up failed) */
    char msg[300];
    int r;
    while ((r = sbxi_recv_msg(c->sock, msg, sizeof msg, NULL, 0)) > 0) {
        if (msg[0] == 'S') {
            int st = atoi(msg + 1);
            if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
                sbxi_add_viol(c, "limit", "CPU time limit reached (SIGXCPU)");
            if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ)
                sbxi_add_viol(c, "limit", "file size limit reached (SIGXFSZ)");
        }
        if (msg[0] == 'S') {
            int st = atoi(msg + 1);
            c->got_status = true;
            if (st == -1) {
                c->exit_code = WEXITSTATUS(w) ? WEXITSTATUS(w) : 127;
            } else if (WIFSIGNALED(st)) {
                c->signo = WTERMSIG(st);
            } else {
                c->exit_code = WEXITSTATUS(st);
            }
            return;
        }
        if (msg[0] == 'E') {
            LOG_W("sandbox", "child set-up failed: %s", msg + 1);
            c->exit_code = 127;
        }
    }
    if (c->exit_code == -1 && !c->signo)
        c->exit_code = WEXITSTATUS(w);
}

/* A zygote run's init is not our child: its end shows on the pidfd and the program's status
 * comes on the socket; no status means init was killed before it could report. */
static void reap_zygote(sandbox_child *c) {
    reap(c, 0);
    if (!c->got_status && c->exit_code != 127) {
        c->exit_code = -1;
        c->signo = SIGKILL;
    }
}

static int wait_zygote(sandbox_child *c, int64_t deadline_ms) {
    for (;;) {
        struct pollfd pf = {.fd = c->pidfd, .events = POLLIN};
        int64_t left = deadline_ms - sbx_now_ms();
        int r = poll(&pf, 1, left <= 0 ? 0 : left > 1000 ? 1000 : (int)left);
        if (r > 0 || (r < 0 && errno != EINTR)) {
            reap_zygote(c);
            return 1;
        }
        if (left <= 0)
            return 0;
    }
}

int sandbox_wait(sandbox_child *c, int64_t deadline_ms, int *exit_code, int *signo) {
    if (!c)
        return 0;
    if (c->zygote && !c->reaped && !wait_zygote(c, deadline_ms))
        return 0;
    while (!c->reaped) {
        int w;
        pid_t p = waitpid(c->pid, &w, WNOHANG);
        if (p == c->pid) {
            reap(c, w);
            break;
        }
        if (p < 0 && errno != EINTR) {
            c->reaped = true;
            c->exit_code = -1;
            c->signo = SIGKILL;
            break;
        }
        int64_t left = deadline_ms - sbx_now_ms();
        if (left <= 0)
            return 0;
        if (c->pidfd >= 0) {
            struct pollfd pf = {.fd = c->pidfd, .events = POLLIN};
            (void)poll(&pf, 1, left > 1000 ? 1000 : (int)left);
        } else {
            usleep(10000);
        }
    }
    if (exit_code)
        *exit_code = c->exit_code;
    if (signo)
        *signo = c->signo;
    return 1;
}

void sandbox_kill(sandbox_child *c) {
    if (!c || c->reaped)
        return;
    atomic_store(&c->killed, true);
    if (c->pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    else
        kill(c->pid, SIGKILL);
    if (!sbxi_probe.userns)
        sbx_kill_group(c->pid);
}

bool sandbox_over_quota(sandbox_child *c) {
    return c && atomic_load(&c->over_quota);
}

int sandbox_donefd(const sandbox_child *c) {
    return c ? c->donefd : -1;
}

int sandbox_take_done(sandbox_child *c, int *exit_code) {
    if (!c || c->donefd < 0)
        return -1;
    char m[16];
    ssize_t n = read(c->donefd, m, sizeof m - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    close(c->donefd);
    c->donefd = -1;
    if (n < 2 || m[0] != 'D')
        return -1;
    m[n] = 0;
    *exit_code = atoi(m + 1) & 0xFF;
    return 1;
}

bool sandbox_lost_with_zygote(sandbox_child *c) {
    /* Killed without a word from its init (which nothing inside the run can do to its pid 1),
     * not by us: then it was the zygote's pid namespace going down, if the zygote is dead. */
    if (!c || !c->zygote || !c->reaped || c->got_status || c->signo != SIGKILL ||
        atomic_load(&c->killed) || c->zpidfd < 0)
        return false;
    struct pollfd pf = {.fd = c->zpidfd, .events = POLLIN};
    int r;
    while ((r = poll(&pf, 1, 1000)) < 0 && errno == EINTR)
        ;
    return r > 0;
}

void sandbox_free(sandbox_child *c) {
    if (!c)
        return;
    if (!c->reaped && c->zygote) {
        sandbox_kill(c);
        wait_zygote(c, sbx_now_ms() + 5000);
        c->reaped = true;
    } else if (!c->reaped) {
        sandbox_kill(c);
        int w;
        while (waitpid(c->pid, &w, 0) < 0 && errno == EINTR)
            ;
        c->reaped = true;
    }
    if (c->sup_running) {
        atomic_store(&c->stop, true);
        uint64_t one = 1;
        if (c->wakefd >= 0)
            (void)!write(c->wakefd, &one, sizeof one);
        pthread_join(c->sup, NULL);
    }
    if (c->wakefd >= 0)
        close(c->wakefd);
    if (c->notifyfd >= 0)
        close(c->notifyfd);
    if (c->zpidfd >= 0)
        close(c->zpidfd);
    if (c->donefd >= 0)
        close(c->donefd);
    if (c->egressfd >= 0)
        close(c->egressfd);
    free(c->dirs[0]);
    free(c->dirs[1]);
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->sock >= 0)
        close(c->sock);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
