/* layers.c -- the per-process layers of a sandboxed program (see layers.h). */
#define _GNU_SOURCE
#include "layers.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Landlock bits newer than Debian 12's headers (uapi values, stable ABI). */
#define LL_FS_TRUNCATE         (1ull << 14)
#define LL_FS_IOCTL_DEV        (1ull << 15)
#define LL_NET_BIND_TCP        (1ull << 0)
#define LL_NET_CONNECT_TCP     (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0)
#define LL_SCOPE_SIGNAL        (1ull << 1)
#define LL_RULE_NET_PORT       2
struct ll_ruleset_attr {
    uint64_t handled_access_fs, handled_access_net, scoped;
};
struct ll_net_port_attr {
    uint64_t allowed_access, port;
} __attribute__((packed));

const char *const lay_dev_nodes[5] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                      "/dev/urandom"};

void lay_report(int sock, const char *what) {
    char m[256];
    const char *why = strerrordesc_np(errno);
    int n = snprintf(m, sizeof m, "E%s: %s", what, why ? why : "error");
    if (n > 0)
        (void)!send(sock, m, (size_t)(n < (int)sizeof m ? n : (int)sizeof m - 1), MSG_NOSIGNAL);
}

void lay_die(int sock, const char *what) {
    lay_report(sock, what);
    _exit(127);
}

int lay_write_str(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

static void close_range_slow(int lo, int hi) {
    for (int fd = lo; fd <= hi; fd++)
        close(fd);
}

void lay_close_from(int lowfd, int keep) {
    int max = (int)sysconf(_SC_OPEN_MAX);
    if (keep < lowfd) {
        if (syscall(SYS_close_range, lowfd, ~0U, 0) != 0)
            close_range_slow(lowfd, max - 1);
        return;
    }
    if (keep > lowfd && syscall(SYS_close_range, lowfd, keep - 1, 0) != 0)
        close_range_slow(lowfd, keep - 1);
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0)
        close_range_slow(keep + 1, max - 1);
}

static void ll_path(int sock, int rfd, const char *path, uint64_t access) {
    struct landlock_path_beneath_attr pb = {.allowed_access = access};
    pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
    if (pb.parent_fd < 0)
        return; /* not in this root: nothing to allow */
    if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
        lay_die(sock, "landlock rule");
    close(pb.parent_fd);
}

static void apply_landlock(int sock, const lay_spec *s, const char *work, int abi) {
    if (abi < 1)
        return;
    uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
    if (abi >= 2)
        all |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        all |= LL_FS_TRUNCATE;
    if (abi >= 5)
        all |= LL_FS_IOCTL_DEV;
    struct ll_ruleset_attr ra = {.handled_access_fs = all};
    size_t rsize = sizeof ra;
    if (abi >= 4 && !s->allow_network)
        ra.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    if (abi >= 6)
        ra.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
    else if (abi >= 4)
        rsize = offsetof(struct ll_ruleset_attr, scoped);
    else
        rsize = offsetof(struct ll_ruleset_attr, handled_access_net);
    int rfd = (int)syscall(SYS_landlock_create_ruleset, &ra, rsize, 0);
    if (rfd < 0)
        lay_die(sock, "landlock ruleset");
    const uint64_t ro =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    const uint64_t file_rw = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                             (abi >= 3 ? LL_FS_TRUNCATE : 0) | (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
    if (abi >= 4 && !s->allow_network && s->connect_port) {
        struct ll_net_port_attr np = {.allowed_access = LL_NET_CONNECT_TCP,
                                      .port = s->connect_port};
        if (syscall(SYS_landlock_add_rule, rfd, LL_RULE_NET_PORT, &np, 0) != 0)
            lay_die(sock, "landlock net rule");
    }
    ll_path(sock, rfd, "/", ro);
    ll_path(sock, rfd, work, all);
    ll_path(sock, rfd, s->tmp ? s->tmp : "/tmp", all);
    if (s->userns) /* its own /dev/shm; without a private root, the host's stays read-only */
        ll_path(sock, rfd, "/dev/shm", all & ~LL_FS_IOCTL_DEV);
    for (size_t i = 0; i < sizeof lay_dev_nodes / sizeof *lay_dev_nodes; i++)
        ll_path(sock, rfd, lay_dev_nodes[i], file_rw);
    if (syscall(SYS_landlock_restrict_self, rfd, 0) != 0)
        lay_die(sock, "landlock restrict");
    close(rfd);
}

/* Set both limits of `res` to v * scale, or to the hard limit the process already has when
 * that is lower (raising it needs a capability the sandbox does not keep, and a lower limit is
 * only stricter: a server started with a small RLIMIT_NOFILE hands that to its runs). */
static void set_limit(int sock, int res, int64_t v, rlim_t scale) {
    if (v <= 0)
        return;
    struct rlimit rl = {.rlim_cur = (rlim_t)v * scale, .rlim_max = (rlim_t)v * scale}, now;
    if (getrlimit(res, &now) == 0 && now.rlim_max != RLIM_INFINITY && now.rlim_max < rl.rlim_max)
        rl.rlim_cur = rl.rlim_max = now.rlim_max;
    if (setrlimit(res, &rl) != 0)
        lay_die(sock, "setrlimit");
}

ssize_t lay_send_fds(int sock, const void *msg, size_t len, const int *fds, int nfds, int flags) {
    if (nfds < 0 || nfds > LAY_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * LAY_MAX_FDS)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = u.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    return sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
}

static void send_fd(int sock, int fd) {
    if (lay_send_fds(sock, "N", 1, &fd, 1, 0) != 1)
        lay_die(sock, "send notify fd");
}

void lay_enter(int sock, const lay_spec *s) {
    /* 1. stdio and nothing else open (the status socket is closed by execve) */
    int in = fcntl(s->stdin_fd, F_DUPFD_CLOEXEC, 10), o = fcntl(s->stdout_fd, F_DUPFD_CLOEXEC, 10);
    int er = fcntl(s->stderr_fd, F_DUPFD_CLOEXEC, 10), k = fcntl(sock, F_DUPFD_CLOEXEC, 10);
    if (in < 0 || o < 0 || er < 0 || k < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 ||
        dup2(er, 2) < 0 || dup3(k, 3, O_CLOEXEC) < 0)
        lay_die(sock, "stdio");
    sock = 3;
    lay_close_from(4, s->keep_fd);
    /* 2. cwd */
    const char *work = s->work;
    if (chdir(work) != 0)
        lay_die(sock, "chdir work dir");
    /* 3. no_new_privs: before Landlock (without CAP_SYS_ADMIN it needs it), and nothing after
     * this may gain privileges through execve */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        lay_die(sock, "no_new_privs");
    /* 4. Landlock (read-only but work dir and /tmp; TCP; scopes) */
    apply_landlock(sock, s, work, s->landlock_abi);
    /* 5. rlimits */
    set_limit(sock, RLIMIT_AS, s->memory_mb, 1024 * 1024);
    set_limit(sock, RLIMIT_NPROC, s->max_procs, 1);
    set_limit(sock, RLIMIT_FSIZE, s->file_size_mb, 1024 * 1024);
    set_limit(sock, RLIMIT_NOFILE, s->open_files, 1);
    set_limit(sock, RLIMIT_CPU, s->cpu_seconds, 1);
    struct rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_CORE, &zero) != 0)
        lay_die(sock, "setrlimit core");
    /* 6. capabilities: the bounding set (needs CAP_SETPCAP, so before the ids change; a process
     * that keeps an unprivileged server's ids has no capability to drop, and no_new_privs keeps
     * it from gaining any) */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL &&
            !(s->keep_ids && errno == EPERM))
            lay_die(sock, "drop bounding set");
    /* 7. identity: the unprivileged inner id. Raw system calls: glibc's set*id() signals every
     * thread it believes exists, and a clone of the multithreaded server inherits that list
     * (it hangs when a thread was being created at the moment of the clone). A user namespace
     * made by an unprivileged server refuses setgroups (its gid map needs "deny"); the process
     * then keeps the server's own (usually empty) supplementary groups. */
    if (s->userns || !s->keep_ids) {
        uid_t id = s->userns ? SBX_INNER_ID : 65534;
        if ((!s->setgroups_denied && (int)syscall(SYS_setgroups, 0, NULL) != 0) ||
            (int)syscall(SYS_setresgid, id, id, id) != 0 ||
            (int)syscall(SYS_setresuid, id, id, id) != 0)
            lay_die(sock, "set ids");
    }
    /* 8. ambient, effective, permitted, inheritable capabilities: none */
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) != 0)
        lay_die(sock, "capset");
    /* 9. seccomp, last */
    if (s->bpf) {
        unsigned flags = s->notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
        long nfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, s->bpf);
        if (nfd < 0)
            lay_die(sock, "seccomp");
        if (flags) {
            send_fd(sock, (int)nfd);
            close((int)nfd);
        }
    }
}

void lay_init_loop(int sock, pid_t prog, bool kill_rest) {
    for (int fd = 0; fd < 3; fd++)
        close(fd);
    lay_close_from(3, sock);
    int pst = -1;
    for (;;) {
        int w;
        pid_t p = waitpid(-1, &w, 0);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p == prog) {
            pst = w;
            if (kill_rest)
                kill(-1, SIGKILL); /* daemons die with the run */
        }
    }
    char m[32];
    int n = snprintf(m, sizeof m, "S%d", pst);
    (void)!send(sock, m, (size_t)n, MSG_NOSIGNAL);
    _exit(0);
}

void lay_open_egress(int sock, uint16_t port, char tag) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        lay_die(sock, "egress: lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        lay_die(sock, "egress: bring lo up");
    close(s);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 128) != 0)
        lay_die(sock, "egress: listen");
    if (lay_send_fds(sock, &tag, 1, &l, 1, 0) != 1)
        lay_die(sock, "egress: send listener");
    close(l);
}
