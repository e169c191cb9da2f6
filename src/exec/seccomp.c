/* seccomp.c -- the sandbox's system-call filter: what is refused (every refusal goes to the
 * supervisor by user notification, to be explained), built once per network setting in the
 * server with libseccomp and loaded in the child with the raw system call; and the names of
 * refused calls for the supervisor's violations. See sandbox_int.h. */
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

int sbxi_filter_for(bool allow_network, struct sock_filter **prog, size_t *len) {
    pthread_mutex_lock(&sbxi_probe_mu);
    int i = allow_network ? 1 : 0, rc = 0;
    if (!g_bpf[i])
        rc = seccomp_build(allow_network, sbxi_probe.notify_ok, &g_bpf[i], &g_bpf_len[i]);
    *prog = g_bpf[i];
    *len = g_bpf_len[i];
    pthread_mutex_unlock(&sbxi_probe_mu);
    return rc;
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
void sbxi_describe(const struct seccomp_notif *req, char *kind, size_t kn, char *det, size_t dn) {
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
