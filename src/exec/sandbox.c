/* sandbox.c -- make a sandboxed child: namespaces, a private root, Landlock, rlimits,
 * no_new_privs, dropped capabilities and seccomp (last), then execve.
 *
 * Process shape: the server clone()s an init (pid 1 of new user, pid, net, mount, ipc and uts
 * namespaces). The server writes its uid/gid maps, then init builds the private root, forks the
 * program's process, reaps everything, and reports the program's wait status over a socket. The
 * program's process applies the per-process layers in one ordered list (sbx_enter_layers) and
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
#include "sandbox.h"

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
#include "zygote.h"
#include "zygote_proto.h"

#define SBX_MAX_VIOL 64

/* ---- the kernel's layers, probed once ------------------------------------------------------ */

static struct {
    bool probed, userns, landlock_ok, seccomp_ok, notify_ok;
    bool priv;  /* ids of their own for runs (root of the initial user namespace) */
    bool trees; /* detached mounts (open_tree) of run dirs for zygote runs */
    bool allow_weak;
    int landlock_abi;
    char userns_why[160];
    char runs_dir[PATH_MAX]; /* DATA_DIR/runs, bound into the zygote without `trees` */
} g_probe;
static pthread_mutex_t g_probe_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint g_next_id;

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
static int write_id_map(pid_t pid, bool priv, unsigned inside, unsigned outside) {
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
static int probe_ns(bool priv, char *why, size_t wn) {
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
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            probe_die(rep[1], "mount proc");
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
    if (write_id_map(pid, priv, SBX_INNER_ID, SBX_OUTER_BASE) != 0) {
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
        snprintf(why, wn, "%s", n > 0 ? m : "the probe failed");
        rc = -1;
    }
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
    if (g_probe.probed)
        return;
    g_probe.probed = true;
    char why[160] = "";
    bool root = initial_root();
    if (geteuid() == 0 && probe_ns(true, why, sizeof why) == 0) {
        g_probe.userns = g_probe.priv = true;
    } else if (!root && probe_ns(false, why, sizeof why) == 0) {
        /* (never for the initial root: its runs would map to the host's uid 0) */
        g_probe.userns = true;
    } else {
        snprintf(g_probe.userns_why, sizeof g_probe.userns_why, "%s", why);
    }
    if (g_probe.priv) {
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        g_probe.trees = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    g_probe.landlock_abi = ll_abi();
    g_probe.landlock_ok = g_probe.landlock_abi >= 1;
    g_probe.seccomp_ok = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    g_probe.notify_ok = seccomp_api_get() >= 6;
    LOG_I("sandbox", "layers: namespaces=%s ids=%s landlock_abi=%d seccomp=%s notify=%s",
          g_probe.userns ? "user,pid,net,mount,ipc,uts" : "none",
          !g_probe.userns ? (geteuid() == 0 ? "nobody" : "the server's")
          : g_probe.priv  ? "one host id per run"
                          : "the server's (unprivileged user namespaces)",
          g_probe.landlock_abi, g_probe.seccomp_ok ? "yes" : "no",
          g_probe.notify_ok ? "yes" : "no");
    if (!g_probe.userns)
        LOG_W("sandbox", "no user namespaces: %s", g_probe.userns_why);
}

void sandbox_probe(void) {
    pthread_mutex_lock(&g_probe_mu);
    probe_locked();
    pthread_mutex_unlock(&g_probe_mu);
}

void sandbox_init(const char *runs_dir, bool allow_weak) {
    pthread_mutex_lock(&g_probe_mu);
    snprintf(g_probe.runs_dir, sizeof g_probe.runs_dir, "%s", runs_dir ? runs_dir : "");
    g_probe.allow_weak = allow_weak;
    probe_locked();
    pthread_mutex_unlock(&g_probe_mu);
}

/* The layers this kernel cannot give, as "<layer> (<why>)" joined by "; ", into buf. */
static size_t missing_layers(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    if (!g_probe.userns)
        len += (size_t)snprintf(buf + len, n - len, "user namespaces (%s)", g_probe.userns_why);
    if (!g_probe.landlock_ok && len < n)
        len += (size_t)snprintf(buf + len, n - len, "%sLandlock (not in this kernel)",
                                len ? "; " : "");
    if (!g_probe.seccomp_ok && len < n)
        len +=
            (size_t)snprintf(buf + len, n - len, "%sseccomp (not in this kernel)", len ? "; " : "");
    return len;
}

sbx_code sandbox_check(sbx_err *e) {
    sandbox_probe();
    char miss[512];
    if (!missing_layers(miss, sizeof miss) || g_probe.allow_weak)
        return SBX_OK;
    return sbx_fail(e, SBX_EUNAVAIL,
                    "the sandbox is incomplete, so runs are refused: missing %s; set "
                    "EXEC_ALLOW_WEAK_SANDBOX=true to accept a weaker sandbox",
                    miss);
}

bool sandbox_userns(void) {
    sandbox_probe();
    return g_probe.userns;
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
        cJSON_AddBoolToObject(o, ns[i], g_probe.userns);
    cJSON_AddNumberToObject(o, "landlock", g_probe.landlock_abi);
    cJSON_AddBoolToObject(o, "rlimits", true);
    cJSON_AddBoolToObject(o, "noNewPrivs", true);
    cJSON_AddBoolToObject(o, "capabilitiesDropped", true);
    cJSON_AddBoolToObject(o, "seccomp", g_probe.seccomp_ok);
    cJSON_AddBoolToObject(o, "seccompNotify", g_probe.seccomp_ok && g_probe.notify_ok);
    /* how the ids are mapped: "perRun" (a fresh host id per run, root only), "server" (every run
     * maps to the server's own uid: an unprivileged server), "nobody" / "server" without a user
     * namespace (weak) */
    cJSON_AddStringToObject(o, "hostIds",
                            g_probe.priv                       ? "perRun"
                            : g_probe.userns || geteuid() != 0 ? "server"
                                                               : "nobody");
    char miss[512];
    bool weak = missing_layers(miss, sizeof miss) > 0;
    cJSON_AddBoolToObject(o, "complete", !weak);
    if (weak)
        cJSON_AddStringToObject(o, "missing", miss);
    else
        cJSON_AddNullToObject(o, "missing");
    cJSON_AddBoolToObject(o, "weakAccepted", g_probe.allow_weak);
    cJSON_AddBoolToObject(o, "runsRefused", weak && !g_probe.allow_weak);
    return o;
}

/* ---- the seccomp program (built in the parent) ---------------------------------------------- */

/* The refused calls; every one goes to the supervisor (SCMP_ACT_NOTIFY) to be explained. */
static const char *const k_refused[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "chroot",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "open_by_handle_at",
    "name_to_handle_at",
    "personality",
    "quotactl",
    "lookup_dcookie",
    "fanotify_init",
    "kcmp",
    "pidfd_getfd",
};

static int seccomp_build(bool allow_network, bool notify, struct sock_filter **prog, size_t *len) {
    uint32_t act = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = -1, mfd = -1;
    if (!ctx)
        return -1;
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0)
        goto out;
    for (size_t i = 0; i < sizeof k_refused / sizeof *k_refused; i++) {
        int nr = seccomp_syscall_resolve_name(k_refused[i]);
        if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, act, nr, 0) != 0)
            goto out;
    }
    /* socket(): only AF_UNIX (1), and AF_INET (2) / AF_INET6 (10) when loosened. libseccomp
     * takes one comparison per argument and rule, so refuse the other values range by range. */
    if (seccomp_rule_add(ctx, act, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, 0)) != 0)
        goto out;
    if (!allow_network) {
        if (seccomp_rule_add(ctx, act, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, AF_UNIX + 1)) != 0)
            goto out;
    } else {
        for (int f = AF_INET + 1; f < AF_INET6; f++)
            if (seccomp_rule_add(ctx, act, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, f)) != 0)
                goto out;
        if (seccomp_rule_add(ctx, act, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, AF_INET6 + 1)) !=
            0)
            goto out;
    }
    const uint64_t nsflags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET,
                                CLONE_NEWIPC, CLONE_NEWUTS,  CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof nsflags / sizeof *nsflags; i++)
        if (seccomp_rule_add(ctx, act, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, nsflags[i], nsflags[i])) != 0)
            goto out;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
        goto out;
    const unsigned long ioc[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < 2; i++)
        if (seccomp_rule_add(ctx, act, SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioc[i])) != 0)
            goto out;
    mfd = memfd_create("sbx-bpf", MFD_CLOEXEC);
    if (mfd < 0 || seccomp_export_bpf(ctx, mfd) != 0)
        goto out;
    off_t size = lseek(mfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0)
        goto out;
    *prog = malloc((size_t)size);
    if (!*prog || pread(mfd, *prog, (size_t)size, 0) != size) {
        free(*prog);
        *prog = NULL;
        goto out;
    }
    *len = (size_t)size / sizeof(struct sock_filter);
    rc = 0;
out:
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    return rc;
}

/* The two filters (network refused / loosened), built once and kept for the server's life. */
static struct sock_filter *g_bpf[2];
static size_t g_bpf_len[2];

static int filter_for(bool allow_network, struct sock_filter **prog, size_t *len) {
    pthread_mutex_lock(&g_probe_mu);
    int i = allow_network ? 1 : 0, rc = 0;
    if (!g_bpf[i])
        rc = seccomp_build(allow_network, g_probe.notify_ok, &g_bpf[i], &g_bpf_len[i]);
    *prog = g_bpf[i];
    *len = g_bpf_len[i];
    pthread_mutex_unlock(&g_probe_mu);
    return rc;
}

/* ---- the child object ----------------------------------------------------------------------- */

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
    atomic_bool killed; /* sandboxd sent it SIGKILL (deadline, quota, client gone, shutdown) */
    bool got_status;
    bool reaped;
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

pid_t sandbox_pid(const sandbox_child *c) {
    return c ? c->pid : -1;
}

int sandbox_pollfd(const sandbox_child *c) {
    return c && !c->reaped ? c->pidfd : -1;
}

static void add_viol(sandbox_child *c, const char *kind, const char *detail) {
    pthread_mutex_lock(&c->mu);
    bool dup = false;
    for (int i = 0; i < c->nv; i++)
        if (!strcmp(c->v[i].kind, kind) && !strcmp(c->v[i].detail, detail))
            dup = true;
    if (!dup) {
        if (c->nv < SBX_MAX_VIOL) {
            snprintf(c->v[c->nv].kind, sizeof c->v[c->nv].kind, "%s", kind);
            snprintf(c->v[c->nv].detail, sizeof c->v[c->nv].detail, "%s", detail);
            c->nv++;
        } else {
            c->lost++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static const char *family_name(int f) {
    switch (f) {
    case AF_INET:
        return "AF_INET";
    case AF_INET6:
        return "AF_INET6";
    case AF_PACKET:
        return "AF_PACKET";
    case AF_NETLINK:
        return "AF_NETLINK";
    case AF_ALG:
        return "AF_ALG";
    case AF_VSOCK:
        return "AF_VSOCK";
    case AF_BLUETOOTH:
        return "AF_BLUETOOTH";
    case AF_KEY:
        return "AF_KEY";
    case AF_XDP:
        return "AF_XDP";
    default:
        return NULL;
    }
}

/* Describe one refused call: kind and a short detail such as "socket(AF_INET6)". */
static void describe(const struct seccomp_notif *req, char *kind, size_t kn, char *det, size_t dn) {
    char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
    const char *n = name ? name : "?";
    snprintf(kind, kn, "kernel");
    if (!strcmp(n, "socket")) {
        const char *fam = family_name((int)req->data.args[0]);
        snprintf(kind, kn, "network");
        if (fam)
            snprintf(det, dn, "socket(%s)", fam);
        else
            snprintf(det, dn, "socket(family %d)", (int)req->data.args[0]);
    } else if (!strcmp(n, "ptrace") || !strncmp(n, "process_vm_", 11) || !strcmp(n, "kcmp") ||
               !strcmp(n, "pidfd_getfd")) {
        snprintf(kind, kn, "process");
        snprintf(det, dn, "%s()", n);
    } else if (!strcmp(n, "clone")) {
        snprintf(det, dn, "clone() with namespace flags 0x%llx",
                 (unsigned long long)(req->data.args[0] & 0x7e020000ull));
    } else if (!strcmp(n, "ioctl")) {
        snprintf(det, dn, "ioctl(%s)",
                 (req->data.args[1] & 0xffffffffu) == TIOCSTI ? "TIOCSTI" : "TIOCLINUX");
    } else if (!strcmp(n, "personality")) {
        snprintf(det, dn, "personality(0x%llx)", (unsigned long long)req->data.args[0]);
    } else {
        snprintf(det, dn, "%s()", n);
    }
    free(name);
}

/* Bytes used beneath dirfd (no symlinks followed), adding to *entries; stops early when over
 * `cap` bytes or 100000 entries. Takes ownership of dirfd. */
static int64_t du_at(int dirfd, int depth, int64_t *entries, int64_t cap) {
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) && sum <= cap && *entries < 100000) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        (*entries)++;
        sum += (int64_t)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode) && depth < 64) {
            int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += du_at(fd, depth + 1, entries, cap - sum);
        }
    }
    closedir(d);
    return sum;
}

/* Kill the run when its dirs hold more than the quota (or absurdly many entries). */
static void check_disk(sandbox_child *c) {
    int64_t sum = 0, entries = 0;
    for (int i = 0; i < 2; i++) {
        int fd = c->dirs[i] ? open(c->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (fd >= 0)
            sum += du_at(fd, 0, &entries, c->disk_bytes - sum);
    }
    if (sum > c->disk_bytes || entries >= 100000) {
        char det[160];
        snprintf(det, sizeof det, "disk quota of %lld MiB (work dir + /tmp) exceeded",
                 (long long)(c->disk_bytes >> 20));
        add_viol(c, "limit", det);
        atomic_store(&c->killed, true);
        if (c->pidfd >= 0) /* not sandbox_kill: the owner thread may be reaping right now */
            (void)syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    }
}

/* The supervisor thread of one child: answers seccomp notifications, watches the disk quota. */
static void *supervise(void *arg) {
    sandbox_child *c = arg;
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    if (seccomp_notify_alloc(&req, &resp) != 0)
        return NULL;
    int64_t next_du = sbx_now_ms() + 300;
    bool notify_open = c->notifyfd >= 0;
    while (!atomic_load(&c->stop)) {
        if (sbx_now_ms() >= next_du) {
            check_disk(c);
            next_du = sbx_now_ms() + 100;
        }
        struct pollfd p[2] = {{.fd = notify_open ? c->notifyfd : -1, .events = POLLIN},
                              {.fd = c->wakefd, .events = POLLIN}};
        int r = poll(p, 2, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents)
            break;
        if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            notify_open = false; /* every task of the run is gone */
            continue;
        }
        if (r == 0)
            continue;
        memset(req, 0, sizeof *req);
        if (seccomp_notify_receive(c->notifyfd, req) != 0)
            continue; /* the caller died meanwhile */
        memset(resp, 0, sizeof *resp);
        resp->id = req->id;
        char kind[16], det[160];
        describe(req, kind, sizeof kind, det, sizeof det);
        unsigned long long a0 = req->data.args[0];
        if (req->data.nr == SCMP_SYS(personality) &&
            (a0 == 0xffffffffull || (a0 & 0xffffffffull) == 0)) {
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; /* a query / PER_LINUX is fine */
        } else {
            resp->error = -EPERM;
            add_viol(c, kind, det);
        }
        (void)seccomp_notify_respond(c->notifyfd, resp);
    }
    seccomp_notify_free(req, resp);
    return NULL;
}

cJSON *sandbox_violations(sandbox_child *c) {
    cJSON *a = cJSON_CreateArray();
    if (!a || !c)
        return a;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nv; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "kind", c->v[i].kind);
        cJSON_AddStringToObject(o, "detail", c->v[i].detail);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&c->mu);
    return a;
}

static const char *kind_line(const char *kind) {
    if (!strcmp(kind, "network"))
        return "network access is disabled";
    if (!strcmp(kind, "process"))
        return "inspecting or controlling other processes is not allowed";
    if (!strcmp(kind, "filesystem"))
        return "the file system outside the work directory and /tmp is read-only";
    if (!strcmp(kind, "limit"))
        return "a resource limit stopped the program";
    return "this kernel interface is not available in the sandbox";
}

char *sandbox_explain(sandbox_child *c) {
    sbx_buf b;
    sbx_buf_init(&b, 16384);
    if (c) {
        pthread_mutex_lock(&c->mu);
        static const char *const kinds[] = {"network", "filesystem", "process", "kernel", "limit"};
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            int n = 0;
            for (int i = 0; i < c->nv; i++) {
                if (strcmp(c->v[i].kind, kinds[k]))
                    continue;
                if (n == 0)
                    sbx_buf_addf(&b, "sandbox: %s; %s", kind_line(kinds[k]), c->v[i].detail);
                else if (n < 4)
                    sbx_buf_addf(&b, ", %s", c->v[i].detail);
                n++;
            }
            if (n > 4)
                sbx_buf_addf(&b, " (and %d more)", n - 4);
            if (n && !strcmp(kinds[k], "limit"))
                sbx_buf_addf(&b, "\n");
            else if (n)
                sbx_buf_addf(&b, " %s refused\n", n == 1 ? "was" : "were");
        }
        pthread_mutex_unlock(&c->mu);
    }
    char *s = sbx_buf_take(&b, NULL);
    sbx_buf_free(&b);
    return s ? s : strdup("");
}

char *sandbox_explain_output(const char *err, size_t len) {
    static const char *const marks[] = {"[Errno 30] Read-only file system",
                                        "[Errno 13] Permission denied"};
    if (!err)
        return NULL;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (memmem(err, len, marks[i], strlen(marks[i])))
            return strdup("sandbox: the file system is read-only outside the work directory "
                          "(" SANDBOX_WORK_PATH ") and /tmp; write files there\n");
    return NULL;
}

/* ---- child side: no malloc from here to execve ---------------------------------------------- */

/* mkdir -p for a path inside the new root; `path` is absolute; no malloc. */
static int mkdirs(const char *root, const char *path, mode_t mode) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s%s", root, path) >= (int)sizeof p)
        return -1;
    size_t rl = strlen(root);
    for (char *s = p + rl + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, mode) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    }
    return mkdir(p, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static int touch(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Bind host `src` at the same path under the new root (mounted at `stage`); read-only unless `rw`.
 * Missing sources are skipped (returns 0); symlinks are recreated as symlinks. */
static int bind_in(const char *stage, const char *src, const char *dst_in_root, bool rw,
                   bool must) {
    struct stat st;
    bool via_fd = !strncmp(src, "/proc/self/fd/", 14);
    if ((via_fd ? stat(src, &st) : lstat(src, &st)) != 0)
        return must ? -1 : 0;
    char dst[PATH_MAX];
    if (snprintf(dst, sizeof dst, "%s%s", stage, dst_in_root) >= (int)sizeof dst)
        return -1;
    if (S_ISLNK(st.st_mode)) {
        char t[PATH_MAX];
        ssize_t n = readlink(src, t, sizeof t - 1);
        if (n < 0)
            return -1;
        t[n] = 0;
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dst_in_root);
        char *sl = strrchr(parent, '/');
        if (sl && sl != parent) {
            *sl = 0;
            if (mkdirs(stage, parent, 0755) != 0)
                return -1;
        }
        return symlink(t, dst) != 0 && errno != EEXIST ? -1 : 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdirs(stage, dst_in_root, 0755) != 0)
            return -1;
    } else {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dst_in_root);
        char *sl = strrchr(parent, '/');
        if (sl && sl != parent) {
            *sl = 0;
            if (mkdirs(stage, parent, 0755) != 0)
                return -1;
        }
        if (touch(dst) != 0)
            return -1;
    }
    /* the writable run dirs never recursively: the root is staged on the work dir's path, so a
     * recursive bind of it would copy the stage itself in */
    if (mount(src, dst, NULL, MS_BIND | (rw ? 0 : MS_REC), NULL) != 0)
        return -1;
    struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (!rw)
        ma.attr_set |= MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, dst, rw ? 0 : AT_RECURSIVE, &ma, sizeof ma) != 0)
        return -1;
    return 0;
}

/* `stage` + `p` in `buf` (PATH_MAX bytes); no malloc. */
static const char *at(char *buf, const char *stage, const char *p) {
    if (snprintf(buf, PATH_MAX, "%s%s", stage, p) >= PATH_MAX)
        buf[0] = 0; /* an impossible path: the call using it fails */
    return buf;
}

static const char *const k_sys_binds[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                          "/lib32", "/lib64", "/libx32"};
static const char *const k_etc_binds[] = {
    "/etc/passwd",        "/etc/group",           "/etc/hosts",
    "/etc/nsswitch.conf", "/etc/ld.so.cache",     "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",  "/etc/localtime",       "/etc/alternatives",
    "/etc/ssl",           "/etc/ca-certificates", "/etc/mime.types",
    "/etc/os-release",    "/etc/debian_version",  "/etc/python3",
    "/etc/python3.11",    "/etc/matplotlibrc",    "/etc/fonts",
    "/etc/host.conf",     "/etc/resolv.conf",     "/etc/protocols",
    "/etc/services",      "/etc/timezone",
};
/* Build the private root and pivot into it (in init, with userns caps). It is staged on the
 * work dir's own path (a directory that exists and that this server owns, shadowed only in
 * this private mount namespace; the work dir itself is reached through a descriptor), and
 * built relative to it as the cwd: the parents of DATA_DIR may be closed to the sandbox id. */
static void build_root(int sock, const sandbox_spec *s) {
    const char *stage = ".";
    char pb[PATH_MAX];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        lay_die(sock, "make / private");
    /* Reach the run dirs while still the host's root (their parents may be 0700), then become
     * the mapped id so that files created in our own tmpfs have an owner; caps stay (KEEPCAPS). */
    int wfd = open(s->work_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int tfd = open(s->tmp_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rfd =
        s->zygote_init && s->runs_dir ? open(s->runs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -2;
    if (wfd < 0 || tfd < 0 || rfd == -1)
        lay_die(sock, "open run dirs");
    unsigned id = s->zygote_init ? 0 : SBX_INNER_ID; /* the zygote is root of its namespace */
    char ropt[96];
    snprintf(ropt, sizeof ropt, "mode=0755,size=16m,uid=%u,gid=%u", id, id);
    if (mount("sbxroot", s->work_dir, "tmpfs", MS_NOSUID | MS_NODEV, ropt) != 0 ||
        chdir(s->work_dir) != 0)
        lay_die(sock, "mount root tmpfs");
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct cd[2];
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || syscall(SYS_capget, &hdr, cd) != 0 ||
        (int)syscall(SYS_setresgid, id, id, id) != 0 ||
        (int)syscall(SYS_setresuid, id, id, id) != 0)
        lay_die(sock, "become the sandbox id");
    cd[0].effective = cd[0].permitted;
    cd[1].effective = cd[1].permitted;
    if (syscall(SYS_capset, &hdr, cd) != 0)
        lay_die(sock, "keep capabilities");
    char wpath[32], tpath[32], rpath[32];
    snprintf(wpath, sizeof wpath, "/proc/self/fd/%d", wfd);
    snprintf(tpath, sizeof tpath, "/proc/self/fd/%d", tfd);
    snprintf(rpath, sizeof rpath, "/proc/self/fd/%d", rfd);
    for (size_t i = 0; i < sizeof k_sys_binds / sizeof *k_sys_binds; i++)
        if (bind_in(stage, k_sys_binds[i], k_sys_binds[i], false, false) != 0)
            lay_die(sock, k_sys_binds[i]);
    if (mkdirs(stage, "/etc", 0755) != 0)
        lay_die(sock, "mkdir /etc");
    for (size_t i = 0; i < sizeof k_etc_binds / sizeof *k_etc_binds; i++)
        if (bind_in(stage, k_etc_binds[i], k_etc_binds[i], false, false) != 0)
            lay_die(sock, k_etc_binds[i]);
    /* /dev: a small tmpfs with the harmless nodes and a private /dev/shm */
    if (mkdirs(stage, "/dev", 0755) != 0 || mount("sbxdev", at(pb, stage, "/dev"), "tmpfs",
                                                  MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0)
        lay_die(sock, "mount /dev");
    for (size_t i = 0; i < sizeof lay_dev_nodes / sizeof *lay_dev_nodes; i++) {
        char dst[PATH_MAX];
        snprintf(dst, sizeof dst, "%s%s", stage, lay_dev_nodes[i]);
        if (touch(dst) != 0 || mount(lay_dev_nodes[i], dst, NULL, MS_BIND, NULL) != 0)
            lay_die(sock, lay_dev_nodes[i]);
    }
    if (symlink("/proc/self/fd", at(pb, stage, "/dev/fd")) != 0 ||
        symlink("/proc/self/fd/0", at(pb, stage, "/dev/stdin")) != 0 ||
        symlink("/proc/self/fd/1", at(pb, stage, "/dev/stdout")) != 0 ||
        symlink("/proc/self/fd/2", at(pb, stage, "/dev/stderr")) != 0)
        lay_die(sock, "/dev links");
    char opt[64];
    snprintf(opt, sizeof opt, "mode=1777,size=%lldm",
             (long long)(s->file_size_mb > 0 ? s->file_size_mb : 64));
    if (mkdirs(stage, "/dev/shm", 01777) != 0 || mount("sbxshm", at(pb, stage, "/dev/shm"), "tmpfs",
                                                       MS_NOSUID | MS_NODEV | MS_NOEXEC, opt) != 0)
        lay_die(sock, "mount /dev/shm");
    if (mount(NULL, at(pb, stage, "/dev"), NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              NULL) != 0)
        lay_die(sock, "remount /dev read-only");
    if (mkdirs(stage, "/proc", 0555) != 0 ||
        mount("proc", at(pb, stage, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=invisible") != 0) /* the init (a clone of the server) stays unseen */
        lay_die(sock, "mount /proc");
    if (bind_in(stage, tpath, "/tmp", true, true) != 0)
        lay_die(sock, "bind /tmp");
    if (bind_in(stage, wpath, SANDBOX_WORK_PATH, true, true) != 0)
        lay_die(sock, "bind work dir");
    if (rfd >= 0 && bind_in(stage, rpath, ZYG_RUNS_PATH, true, true) != 0)
        lay_die(sock, "bind the runs dir");
    close(wfd);
    close(tfd);
    if (rfd >= 0)
        close(rfd);
    if (mkdirs(stage, "/.old", 0700) != 0)
        lay_die(sock, "mkdir .old");
    if (syscall(SYS_pivot_root, stage, at(pb, stage, "/.old")) != 0)
        lay_die(sock, "pivot_root");
    if (chdir("/") != 0 || umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
        lay_die(sock, "detach old root");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        lay_die(sock, "remount / read-only");
}

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
        if (cap != CAP_SETUID && cap != CAP_SETGID && (g_probe.priv || cap != CAP_SETFCAP) &&
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
        build_root(sock, s);
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
    if (!g_probe.priv)
        return write_id_map(pid, false, zygote ? 0 : SBX_INNER_ID, 0);
    if (!zygote)
        return write_id_map(pid, true, SBX_INNER_ID, outer);
    char path[64], line[96];
    snprintf(line, sizeof line, "0 %u 1\n1 %u %u\n", SBX_ZYGOTE_OUTER, SBX_OUTER_BASE,
             SBX_OUTER_SPAN);
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    if (lay_write_str(path, line) != 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return lay_write_str(path, line);
}

/* The host ids a run's directories are given: its own (privileged), or the server's. */
static void run_owner(bool zygote, unsigned *uid, unsigned *gid) {
    if (g_probe.priv) {
        *uid = *gid = zygote ? SBX_ZYGOTE_OUTER
                             : SBX_OUTER_BASE + (atomic_fetch_add(&g_next_id, 1) % SBX_OUTER_SPAN);
    } else if (g_probe.userns || geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
    } else {
        *uid = *gid = 65534; /* weak: a root server without user namespaces runs them as nobody */
    }
}

static int recv_msg(int sock, char *buf, size_t n, int *fd_out, int timeout_ms) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0)
        return r == 0 ? -2 : -1;
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

static void env_free(char **env) {
    if (!env)
        return;
    for (char **p = env; *p; p++)
        free(*p);
    free(env);
}

/* A copy of spec->envp where values naming the host work/tmp dirs name the inner paths. */
static char **env_rewrite(const sandbox_spec *s) {
    size_t n = 0;
    while (s->envp[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t wl = strlen(s->work_dir), tl = strlen(s->tmp_dir);
    for (size_t i = 0; i < n; i++) {
        const char *kv = s->envp[i], *eq = strchr(kv, '=');
        const char *v = eq ? eq + 1 : NULL;
        const char *inner = NULL;
        size_t cut = 0;
        if (v && !strncmp(v, s->work_dir, wl) && (v[wl] == 0 || v[wl] == '/'))
            inner = SANDBOX_WORK_PATH, cut = wl;
        else if (v && !strncmp(v, s->tmp_dir, tl) && (v[tl] == 0 || v[tl] == '/'))
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
            env_free(env);
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
            env_free(env);
            return NULL;
        }
    }
    return env;
}

sbx_code sandbox_spawn(const sandbox_spec *spec, sandbox_child **out, sbx_err *e) {
    if (!spec || !spec->argv || !spec->argv[0] || !spec->envp || !spec->work_dir ||
        !spec->tmp_dir || !out)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: incomplete spec");
    if (sandbox_check(e) != SBX_OK) /* fail closed: a missing layer refuses every run */
        return SBX_EUNAVAIL;
    bool userns = g_probe.userns;
    if (spec->zygote_init && !userns)
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the zygote needs user namespaces");
    struct sock_filter *prog = NULL;
    size_t plen = 0;
    if (g_probe.seccomp_ok && filter_for(spec->allow_network, &prog, &plen) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: cannot build the seccomp filter");
    struct sock_fprog fp = {.len = (unsigned short)plen, .filter = prog};

    unsigned outer, outer_gid;
    run_owner(spec->zygote_init, &outer, &outer_gid);
    if (chown(spec->work_dir, outer, outer_gid) != 0 || chown(spec->tmp_dir, outer, outer_gid) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: chown run dirs: %s", strerror(errno));

    /* with its own root, the host paths of its dirs are renamed; without (weak), its TMPDIR is
     * its own tmp dir, not the host's /tmp */
    char **env = userns ? env_rewrite(spec) : env_tmpdir(spec);
    if (!env)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: out of memory");
    sandbox_spec local = *spec;
    local.envp = (const char *const *)env;
    local.runs_dir =
        spec->zygote_init && !g_probe.trees && g_probe.runs_dir[0] ? g_probe.runs_dir : NULL;
    spec = &local;

    sandbox_child *c = calloc(1, sizeof *c);
    int sv[2] = {-1, -1}, go[2] = {-1, -1};
    if (!c || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(go, O_CLOEXEC) != 0) {
        free(c);
        env_free(env);
        for (int i = 0; i < 2; i++) {
            if (sv[i] >= 0)
                close(sv[i]);
            if (go[i] >= 0)
                close(go[i]);
        }
        return sbx_fail_errno(e, errno, "sandbox: cannot set up the run");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->notifyfd = c->zpidfd = c->donefd = -1;
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
                       .setgroups_denied = userns && !g_probe.priv,
                       .landlock_abi = g_probe.landlock_abi,
                       .notify = g_probe.notify_ok,
                       .bpf = prog ? &fp : NULL,
                       .keep_fd = -1};
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
    env_free(env);
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
    /* The first message is the notify fd ('N'), a set-up error ('E...'), or an early status. */
    if (ok && prog) {
        int fd = -1;
        int r = recv_msg(c->sock, msg, sizeof msg, &fd, 10000);
        if (r > 0 && msg[0] == 'N' && (fd >= 0 || spec->zygote_init)) {
            c->notifyfd = fd;
        } else {
            if (fd >= 0)
                close(fd);
            ok = false;
            if (r <= 0)
                snprintf(msg, sizeof msg, "child did not start");
            else if (msg[0] == 'N') /* its descriptor was dropped: this process had no room */
                snprintf(msg, sizeof msg, "receive the run's descriptor: %s", strerror(EMFILE));
            else
                memmove(msg, msg + 1, strlen(msg));
        }
    }
    if (!ok) {
        LOG_W("sandbox", "spawn failed: %s", msg);
        sandbox_free(c);
        int err = sbx_errno_in(msg); /* a shortage the child hit is no internal error */
        if (err)
            return sbx_fail_errno(e, err, "sandbox: the run could not start");
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: %s", msg);
    }
    int64_t fs = spec->file_size_mb > 0 ? spec->file_size_mb : 64;
    c->disk_bytes = (spec->disk_mb > 0 ? spec->disk_mb : 4 * fs) * 1024 * 1024;
    c->dirs[0] = strdup(spec->work_dir);
    c->dirs[1] = strdup(spec->tmp_dir);
    if (pthread_create(&c->sup, NULL, supervise, c) == 0)
        c->sup_running = true;
    *out = c;
    return SBX_OK;
}

/* The host pid behind a pidfd (its "Pid:" line in fdinfo), or -1. */
static pid_t pidfd_pid(int pidfd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    char *info = sbx_read_file(path, 4096, NULL);
    const char *p = info ? strstr(info, "\nPid:") : NULL;
    pid_t pid = p ? (pid_t)atoi(p + 5) : -1;
    free(info);
    return pid;
}

/* A detached copy of `dir` (nosuid, nodev) that the run's init mounts as its own. */
static int tree_of(const char *dir) {
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return -1;
    struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &ma, sizeof ma) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void close_all(int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

sbx_code sandbox_spawn_zygote(const sandbox_spec *spec, sandbox_child **out, sbx_err *e) {
    if (!spec || !spec->code || !spec->work_dir || !spec->tmp_dir || !out)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: incomplete spec");
    if (sandbox_check(e) != SBX_OK)
        return SBX_EINTERNAL; /* not EUNAVAIL: the caller must not fall back to a cold start */
    int tier = g_probe.userns && !spec->allow_network ? zygote_pick(spec->code) : -1;
    if (tier < 0)
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the zygote is not available");
    struct sock_filter *bpf = NULL;
    size_t blen = 0;
    if (g_probe.seccomp_ok && (filter_for(false, &bpf, &blen) != 0 || blen > ZYG_MAX_BPF))
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: no seccomp filter for the zygote");

    unsigned outer, outer_gid;
    run_owner(false, &outer, &outer_gid);
    /* the zygote maps its 1..SPAN to BASE..; unprivileged, only its root to the server's ids */
    unsigned run_uid = g_probe.priv ? outer - SBX_OUTER_BASE + 1 : 0;
    if (chown(spec->work_dir, outer, outer_gid) != 0 || chown(spec->tmp_dir, outer, outer_gid) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: chown run dirs: %s", strerror(errno));
    const char *wrel = NULL, *trel = NULL;
    if (!g_probe.trees) { /* the zygote binds them by name from its view of DATA_DIR/runs */
        size_t rl = strlen(g_probe.runs_dir);
        bool under = rl && !strncmp(spec->work_dir, g_probe.runs_dir, rl) &&
                     spec->work_dir[rl] == '/' && !strncmp(spec->tmp_dir, g_probe.runs_dir, rl) &&
                     spec->tmp_dir[rl] == '/';
        wrel = under ? spec->work_dir + rl + 1 : NULL;
        trel = under ? spec->tmp_dir + rl + 1 : NULL;
        if (!under || strlen(wrel) >= 128 || strlen(trel) >= 128)
            return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the run dirs are not under the runs dir");
    }
    zyg_req *rq = calloc(1, sizeof *rq);
    sandbox_child *c = calloc(1, sizeof *c);
    int fds[ZYG_NFDS], sv[2] = {-1, -1};
    for (int i = 0; i < ZYG_NFDS; i++)
        fds[i] = -1;
    char why[300] = "out of memory";
    sbx_code rc = SBX_EUNAVAIL; /* until the program may have run, a failure is a fallback */
    if (!rq || !c)
        goto fail;
    pthread_mutex_init(&c->mu, NULL);
    c->zygote = true;
    c->notifyfd = c->pidfd = c->sock = c->zpidfd = c->donefd = -1;
    c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, sizeof why, "socketpair: %s", strerror(errno));
        goto fail;
    }
    c->sock = sv[0];
    fds[ZYG_FD_STATUS] = sv[1];
    int dp[2];
    if (pipe2(dp, O_CLOEXEC) != 0) {
        snprintf(why, sizeof why, "pipe: %s", strerror(errno));
        goto fail;
    }
    c->donefd = dp[0];
    fds[ZYG_FD_DONE] = dp[1];
    fcntl(c->donefd, F_SETFL, O_NONBLOCK);
    fds[ZYG_FD_STDIN] = fcntl(spec->stdin_fd, F_DUPFD_CLOEXEC, 3);
    fds[ZYG_FD_STDOUT] = fcntl(spec->stdout_fd, F_DUPFD_CLOEXEC, 3);
    fds[ZYG_FD_STDERR] = fcntl(spec->stderr_fd, F_DUPFD_CLOEXEC, 3);
    if (g_probe.trees) {
        fds[ZYG_FD_WORK] = tree_of(spec->work_dir);
        fds[ZYG_FD_TMP] = tree_of(spec->tmp_dir);
    } else {
        fds[ZYG_FD_WORK] = open(spec->work_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        fds[ZYG_FD_TMP] = open(spec->tmp_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    fds[ZYG_FD_CODE] = memfd_create("sbx-code", MFD_CLOEXEC);
    for (int i = 0; i < ZYG_NFDS; i++)
        if (fds[i] < 0) {
            snprintf(why, sizeof why, "prepare fd %d: %s", i, strerror(errno));
            goto fail;
        }
    for (size_t off = 0; off < spec->code_len;) {
        ssize_t n = write(fds[ZYG_FD_CODE], spec->code + off, spec->code_len - off);
        if (n <= 0) {
            snprintf(why, sizeof why, "store the program: %s", strerror(errno));
            goto fail;
        }
        off += (size_t)n;
    }
    *rq = (zyg_req){
        .magic = ZYG_MAGIC,
        .run_uid = run_uid,
        .flags = (g_probe.priv ? 0 : ZYG_F_SETGROUPS_DENIED) | (g_probe.trees ? 0 : ZYG_F_BY_NAME),
        .memory_mb = spec->memory_mb > 0 ? spec->memory_mb + zygote_preload_mb(tier) : 0,
        .max_procs = spec->max_procs,
        .file_size_mb = spec->file_size_mb,
        .open_files = spec->open_files,
        .cpu_seconds = spec->cpu_seconds,
        .landlock_abi = g_probe.landlock_abi,
        .notify = g_probe.notify_ok,
        .bpf_len = (uint32_t)blen};
    if (blen)
        memcpy(rq->bpf, bpf, blen * sizeof *bpf);
    if (wrel) {
        snprintf(rq->work_rel, sizeof rq->work_rel, "%s", wrel);
        snprintf(rq->tmp_rel, sizeof rq->tmp_rel, "%s", trel);
    }
    if (zygote_submit(tier, rq, fds, &c->zpidfd, e) != SBX_OK)
        goto fail_quiet;
    close_all(fds, ZYG_NFDS);
    /* 'P' with the init's pidfd, then 'N' with the listener (or 'E...' on a set-up error) */
    char msg[300];
    int pfd = -1;
    int r = recv_msg(c->sock, msg, sizeof msg, &pfd, 5000);
    if (r <= 0 || msg[0] != 'P' || pfd < 0) {
        if (pfd >= 0)
            close(pfd);
        snprintf(why, sizeof why, "%s",
                 r == -2                  ? "the zygote did not answer in 5 s"
                 : r > 0 && msg[0] == 'E' ? msg + 1
                                          : "the zygote closed the run");
        goto fail;
    }
    c->pidfd = pfd;
    c->pid = pidfd_pid(pfd);
    if (spec->owner_dir && c->pid > 0)
        sbx_owner_record(spec->owner_dir, c->pid);
    if (bpf) {
        int nfd = -1;
        r = recv_msg(c->sock, msg, sizeof msg, &nfd, 5000);
        if (r > 0 && msg[0] == 'N' && nfd < 0) {
            /* The descriptor was dropped (this process had no room for it), but the program
             * goes on and may already have written to the run's pipes: no cold start after
             * it (the output would come twice), a final answer to retry. */
            sbx_fail(e, SBX_EBUSY,
                     "sandbox: the server is out of file descriptors (RLIMIT_NOFILE): retry "
                     "shortly, or raise its limit");
            if (e)
                e->retry_after = 1;
            rc = SBX_EBUSY;
            goto fail_quiet;
        }
        if (r <= 0 || msg[0] != 'N' || nfd < 0) {
            if (nfd >= 0)
                close(nfd);
            snprintf(why, sizeof why, "%s",
                     r == -2                  ? "the run did not start in 5 s"
                     : r > 0 && msg[0] == 'E' ? msg + 1
                                              : "the run ended before it started");
            goto fail;
        }
        c->notifyfd = nfd;
    }
    free(rq);
    int64_t fs = spec->file_size_mb > 0 ? spec->file_size_mb : 64;
    c->disk_bytes = (spec->disk_mb > 0 ? spec->disk_mb : 4 * fs) * 1024 * 1024;
    c->dirs[0] = strdup(spec->work_dir);
    c->dirs[1] = strdup(spec->tmp_dir);
    if (pthread_create(&c->sup, NULL, supervise, c) == 0)
        c->sup_running = true;
    *out = c;
    return SBX_OK;

fail:
    sbx_fail(e, rc, "sandbox: zygote: %s", why);
fail_quiet:
    LOG_W("sandbox", "zygote run not started: %s", e && e->msg[0] ? e->msg : why);
    close_all(fds, ZYG_NFDS);
    free(rq);
    if (c && c->sock >= 0) {
        if (c->pidfd < 0)
            c->reaped = true; /* no init to kill: without its pidfd it dies on our closed socket */
        sandbox_free(c);
    } else if (c) {
        if (c->wakefd >= 0)
            close(c->wakefd);
        pthread_mutex_destroy(&c->mu);
        free(c);
    }
    return rc;
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
    while ((r = recv_msg(c->sock, msg, sizeof msg, NULL, 0)) > 0) {
        if (msg[0] == 'S') {
            int st = atoi(msg + 1);
            if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
                add_viol(c, "limit", "CPU time limit reached (SIGXCPU)");
            if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ)
                add_viol(c, "limit", "file size limit reached (SIGXFSZ)");
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
    if (!g_probe.userns)
        sbx_kill_group(c->pid);
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
    free(c->dirs[0]);
    free(c->dirs[1]);
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->sock >= 0)
        close(c->sock);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
