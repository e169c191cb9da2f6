/* mounts.c -- the private root a run's init builds in its own mount namespace (read-only
 * binds of the system, a small /dev, a fresh /proc, the run's dirs), and the detached mounts of
 * run dirs a privileged server hands to zygote runs. The child side never mallocs. See
 * sandbox_int.h. */
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

/* Make the directories above `in_root` (a path inside the root being staged at `stage`). */
static int mkparent(const char *stage, const char *in_root) {
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", in_root);
    char *sl = strrchr(parent, '/');
    if (!sl || sl == parent)
        return 0;
    *sl = 0;
    return mkdirs(stage, parent, 0755);
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
        if (mkparent(stage, dst_in_root) != 0)
            return -1;
        return symlink(t, dst) != 0 && errno != EEXIST ? -1 : 0;
    }
    if (S_ISDIR(st.st_mode) ? mkdirs(stage, dst_in_root, 0755) != 0
                            : mkparent(stage, dst_in_root) != 0 || touch(dst) != 0)
        return -1;
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
void sbxi_build_root(int sock, const sandbox_spec *s) {
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
    if (mkdirs(stage, "/proc", 0555) != 0)
        lay_die(sock, "mount /proc");
    if (mount("proc", at(pb, stage, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=invisible") != 0 && /* the init (a clone of the server) stays unseen */
        ((errno != EPERM && errno != EACCES) ||
         mount("sbxnoproc", at(pb, stage, "/proc"), "tmpfs",
               MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0555") != 0))
        lay_die(sock, "mount /proc"); /* (the probe saw the same: sandbox_own_proc) */
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

/* A detached copy of `dir` (nosuid, nodev) that the run's init mounts as its own. */
int sbxi_tree_of(const char *dir) {
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
