/* serve.c -- the zygote's C half: a shared object the pre-loaded interpreter calls once.
 *
 * The zygote is a python3 that imported its modules inside the sandbox's namespaces (sandbox.c
 * started it like a run, minus the per-process layers) and then calls sbx_zygote_serve() with
 * the GIL held. That call never returns in the zygote: it receives run requests and clones, for
 * each, an init in fresh user, pid, mount, net, ipc and uts namespaces (nested in the zygote's).
 * The init mounts the run's work dir and /tmp (detached mounts the server made with open_tree),
 * a /proc of its own and a private /dev/shm, then clones the program's process, which applies
 * the same per-process layers as a cold run (layers.c, seccomp last) and *returns* from
 * sbx_zygote_serve with the program's source: the interpreter then runs it. The init reaps and
 * reports exactly like a cold run's init.
 *
 * Built without sanitizers and without libraries beyond libc (it is loaded into python3).
 * The zygote process is single-threaded; the program's process may malloc because the serve loop
 * never holds a libc lock (see sbx_zygote_serve).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <poll.h>
#include <setjmp.h>
#include <stdbool.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../layers.h"
#include "../zygote_proto.h"

#define EXPORT __attribute__((visibility("default")))

static void send_pidfd(int sock) {
    int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pfd < 0)
        lay_die(sock, "pidfd_open");
    char byte = 'P';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pfd, sizeof pfd);
    if (sendmsg(sock, &mh, MSG_NOSIGNAL) != 1)
        lay_die(sock, "send pidfd");
    close(pfd);
}

/* The whole source from the code memfd, NUL-terminated (malloc'd). */
static char *read_code(int sock, int fd, size_t *len) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        lay_die(sock, "stat program");
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        lay_die(sock, "program memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0)
            lay_die(sock, "read program");
        got += (size_t)n;
    }
    buf[got] = 0;
    *len = got;
    return buf;
}

static void attach(int sock, int tree, const char *where) {
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, where, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        lay_die(sock, where);
}

/* What a run's init needs, copied before it starts: the zygote reuses its own buffers for the
 * next request while the init (which shares its memory) still runs. Lives at the bottom of the
 * init's stack mapping. */
typedef struct run_args {
    zyg_req rq;
    int fds[ZYG_NFDS];
    int go;
} run_args;

/* Where a run's program process goes back into Python (set once, by the zygote's thread). */
static jmp_buf g_entry;
static char *g_code;
static size_t g_code_len;

/* The run's init (pid 1 of its namespaces): a thread-like clone that shares the zygote's memory
 * (so no page tables are copied for it) on a stack of its own; it touches only its run_args and
 * its stack, and never returns. Its child, the program's process, is an ordinary copy and goes
 * back into Python through g_entry. */
static int run_init(void *arg) {
    run_args *a = arg;
    const zyg_req *rq = &a->rq;
    int *fds = a->fds;
    int sock = fds[ZYG_FD_STATUS];
    char g;
    if (read(a->go, &g, 1) != 1) /* the zygote wrote our id maps */
        _exit(127);
    close(a->go);
    close(ZYG_CTRL_FD);
    signal(SIGCHLD, SIG_DFL);
    send_pidfd(sock);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        lay_die(sock, "make / private");
    attach(sock, fds[ZYG_FD_WORK], SANDBOX_WORK_PATH);
    attach(sock, fds[ZYG_FD_TMP], "/tmp");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") != 0)
        lay_die(sock, "mount /proc");
    char opt[64];
    snprintf(opt, sizeof opt, "mode=1777,size=%lldm",
             (long long)(rq->file_size_mb > 0 ? rq->file_size_mb : 64));
    if (mount("sbxshm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opt) != 0)
        lay_die(sock, "mount /dev/shm");
    (void)sethostname("sandbox", 7);
    pid_t prog = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    if (prog < 0)
        lay_die(sock, "fork");
    if (prog == 0) {
        /* a copy of the zygote's memory, on a copy of this stack */
        g_code = read_code(sock, fds[ZYG_FD_CODE], &g_code_len);
        struct sock_fprog fp = {.len = (unsigned short)rq->bpf_len,
                                .filter = (struct sock_filter *)rq->bpf};
        lay_spec s = {.stdin_fd = fds[ZYG_FD_STDIN],
                      .stdout_fd = fds[ZYG_FD_STDOUT],
                      .stderr_fd = fds[ZYG_FD_STDERR],
                      .work = SANDBOX_WORK_PATH,
                      .memory_mb = rq->memory_mb,
                      .max_procs = rq->max_procs,
                      .file_size_mb = rq->file_size_mb,
                      .open_files = rq->open_files,
                      .cpu_seconds = rq->cpu_seconds,
                      .allow_network = false,
                      .userns = true,
                      .landlock_abi = rq->landlock_abi,
                      .notify = rq->notify != 0,
                      .bpf = rq->bpf_len ? &fp : NULL};
        lay_enter(sock, &s);
        close(3); /* the status socket: a cold run's execve closes it */
        longjmp(g_entry, 1);
    }
    lay_init_loop(sock, prog, true);
}

static int recv_req(int ctrl, zyg_req *rq, int fds[ZYG_NFDS]) {
    struct iovec iov = {.iov_base = rq, .iov_len = sizeof *rq};
    union {
        char buf[CMSG_SPACE(sizeof(int) * ZYG_NFDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(ctrl, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return (int)n;
    int got = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            if (got < ZYG_NFDS)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    if (n != (ssize_t)sizeof *rq || rq->magic != ZYG_MAGIC || got != ZYG_NFDS ||
        rq->bpf_len > ZYG_MAX_BPF || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        return -2; /* malformed: skip it */
    }
    return 1;
}

#define INIT_MAP  (256 * 1024) /* guard page, run_args, then the init's stack */
#define MAX_INITS 512
/* Inits alive (or not yet reaped), with their stack mappings to unmap once they are gone. */
static struct {
    pid_t pid;
    void *map;
} g_inits[MAX_INITS];

static void reap_inits(bool block) {
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, block ? 0 : WNOHANG);
        if (p <= 0)
            return;
        block = false;
        for (int i = 0; i < MAX_INITS; i++)
            if (g_inits[i].pid == p) {
                munmap(g_inits[i].map, INIT_MAP);
                g_inits[i].pid = 0;
                break;
            }
    }
}

static void start_run(const zyg_req *rq, const int fds[ZYG_NFDS]) {
    int slot = -1;
    for (int tries = 0; slot < 0 && tries < 2; tries++) {
        for (int i = 0; i < MAX_INITS && slot < 0; i++)
            if (!g_inits[i].pid)
                slot = i;
        if (slot < 0)
            reap_inits(true); /* every slot busy: wait for a run to end */
    }
    int go[2];
    void *map = MAP_FAILED;
    if (slot < 0 || pipe2(go, O_CLOEXEC) != 0) {
        lay_report(fds[ZYG_FD_STATUS], "prepare the run");
        return;
    }
    map = mmap(NULL, INIT_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1,
               0);
    if (map == MAP_FAILED || mprotect(map, 4096, PROT_NONE) != 0) {
        lay_report(fds[ZYG_FD_STATUS], "init stack");
        if (map != MAP_FAILED)
            munmap(map, INIT_MAP);
        close(go[0]);
        close(go[1]);
        return;
    }
    run_args *a = (run_args *)((char *)map + 4096);
    memcpy(&a->rq, rq, sizeof *rq);
    memcpy(a->fds, fds, sizeof a->fds);
    a->go = go[0];
    char *top = (char *)map + INIT_MAP;
    pid_t pid = clone(run_init, top,
                      CLONE_VM | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                          CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
                      a);
    close(go[0]);
    if (pid < 0) {
        lay_report(fds[ZYG_FD_STATUS], "clone");
        munmap(map, INIT_MAP);
    } else {
        g_inits[slot].pid = pid;
        g_inits[slot].map = map;
        char path[64], line[64];
        snprintf(line, sizeof line, "%u %u 1\n", SBX_INNER_ID, rq->run_uid);
        snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
        int ok = lay_write_str(path, line) == 0;
        snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
        ok = ok && lay_write_str(path, line) == 0;
        if (!ok) {
            lay_report(fds[ZYG_FD_STATUS], "write id maps");
            kill(pid, SIGKILL);
        } else if (write(go[1], "g", 1) != 1) {
            kill(pid, SIGKILL);
        }
    }
    close(go[1]);
}

/* Serve run requests on `ctrl` after announcing `ready`. Returns NULL when the server closed
 * the socket (the zygote should exit), or, in a run's program process only, the program's
 * source (*code_len bytes; free with sbx_zygote_free).
 *
 * From the first run on, this loop must take no libc lock (no malloc, no stdio): a program's
 * process is a copy of this memory taken while the loop may be anywhere. */
EXPORT char *sbx_zygote_serve(int ctrl, const char *ready, size_t *code_len) {
    static size_t *volatile out_len;
    out_len = code_len;
    if (setjmp(g_entry)) { /* a run's program process, sandboxed, back from its init's stack */
        *out_len = g_code_len;
        return g_code;
    }
    size_t rl = strlen(ready);
    char *msg = malloc(rl + 2);
    if (!msg)
        return NULL;
    msg[0] = 'R';
    memcpy(msg + 1, ready, rl + 1);
    ssize_t sent = send(ctrl, msg, rl + 1, MSG_NOSIGNAL);
    free(msg);
    if (sent < 0)
        return NULL;
    static zyg_req rq; /* 8 KiB: not on the stack */
    for (;;) {
        reap_inits(false);
        struct pollfd pf = {.fd = ctrl, .events = POLLIN};
        if (poll(&pf, 1, 1000) == 0) /* a quiet second: still reap the inits that ended */
            continue;
        int fds[ZYG_NFDS];
        int r = recv_req(ctrl, &rq, fds);
        if (r == 0)
            return NULL;
        if (r == -1) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (r < 0)
            continue;
        start_run(&rq, fds);
        for (int i = 0; i < ZYG_NFDS; i++)
            close(fds[i]);
    }
}

EXPORT void sbx_zygote_free(char *code) {
    free(code);
}
