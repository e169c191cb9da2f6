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
 * Copying the zygote's memory for the program is the slowest step (3-4 ms with numpy, pandas
 * and matplotlib loaded), so one init is kept ready as a spare: its namespaces exist and its
 * program's process is already forked, both blocked on a socket with nothing of any run yet.
 * A request writes the spare's id maps and hands it the run; the loop then starts the next
 * spare while this run goes on. Without a spare (it died, or could not be started) a request
 * starts a fresh init as before.
 *
 * Built without sanitizers and without libraries beyond libc (it is loaded into python3).
 * The zygote process is single-threaded; the program's process may malloc because the serve loop
 * never holds a libc lock (see sbx_zygote_serve).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../layers.h"
#include "../zygote_proto.h"

#define EXPORT __attribute__((visibility("default")))

/* A spare init and its program's process go by SPARE_NAME (their comm) until a run arrives,
 * then by the interpreter's usual name, as a fresh run's processes do. */
#define SPARE_NAME "sbx-spare"
#define RUN_NAME   "python3"

static void send_pidfd(int sock) {
    int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pfd < 0)
        lay_die(sock, "pidfd_open");
    if (lay_send_fds(sock, "P", 1, &pfd, 1, 0) != 1)
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

/* ZYG_F_BY_NAME: bind ZYG_RUNS_PATH/<rel> at `where` (nosuid, nodev), after checking that it is
 * the directory the server passed as `fd` (O_PATH), so a name can never bind another run's. */
static void attach_named(int sock, int fd, const char *rel, const char *where) {
    char src[sizeof ZYG_RUNS_PATH + 160];
    struct stat want, got;
    if (memchr(rel, 0, 128) == NULL || strstr(rel, "..") ||
        snprintf(src, sizeof src, "%s/%s", ZYG_RUNS_PATH, rel) >= (int)sizeof src)
        lay_die(sock, "run dir name");
    if (fstat(fd, &want) != 0 || lstat(src, &got) != 0 || !S_ISDIR(got.st_mode) ||
        want.st_dev != got.st_dev || want.st_ino != got.st_ino) {
        errno = ESTALE;
        lay_die(sock, where);
    }
    struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (mount(src, where, NULL, MS_BIND, NULL) != 0 ||
        syscall(SYS_mount_setattr, AT_FDCWD, where, 0, &ma, sizeof ma) != 0)
        lay_die(sock, where);
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

/* One request (rq and its ZYG_NFDS descriptors) on a SOCK_SEQPACKET socket, as the server
 * sends it: how the zygote hands a run to a spare init, and the init to its program. */
static int send_req(int sock, const zyg_req *rq, const int fds[ZYG_NFDS]) {
    return lay_send_fds(sock, rq, sizeof *rq, fds, ZYG_NFDS, 0) == (ssize_t)sizeof *rq ? 0 : -1;
}

/* What a run's init needs, copied before it starts: the zygote reuses its own buffers for the
 * next request while the init (which shares its memory) still runs. Lives at the bottom of the
 * init's stack mapping. */
typedef struct run_args {
    zyg_req rq;
    int fds[ZYG_NFDS];
    int go;   /* fresh init: the pipe the zygote writes one byte to once the id maps are in */
    int sock; /* spare init: its end of the socket the run request arrives on */
    int peer; /* spare init: the zygote's end of it (closed in the init) */
    bool spare;
} run_args;

/* Where a run's program process goes back into Python (set once, by the zygote's thread). */
static jmp_buf g_entry;
static char *g_code;
static size_t g_code_len;
static int g_done = -1; /* the program's end of the done pipe, at the top of its fd table */
static pid_t g_prog;    /* the program's process (not a child it forks, which runs on too) */

/* The program's process: sandboxed by the same per-process layers as a cold run (seccomp
 * last), then back into Python through g_entry. Never returns. */
static void run_program(const zyg_req *rq, const int fds[ZYG_NFDS]) {
    int sock = fds[ZYG_FD_STATUS];
    g_code = read_code(sock, fds[ZYG_FD_CODE], &g_code_len);
    /* the done pipe goes to the highest descriptor the program will have, out of its way (its
     * first open() gets 3 as in a cold run): the last below its RLIMIT_NOFILE-to-be, not the
     * zygote's own limit, whose fd table (tens of thousands of slots under a server that raised
     * it) would be allocated, scanned by close_range and freed again in every run */
    struct rlimit nf;
    rlim_t top = getrlimit(RLIMIT_NOFILE, &nf) == 0 ? nf.rlim_cur : 0;
    if (rq->open_files > 0 && (top == RLIM_INFINITY || (rlim_t)rq->open_files < top))
        top = (rlim_t)rq->open_files;
    if (top < 64 || top > INT_MAX ||
        (g_done = fcntl(fds[ZYG_FD_DONE], F_DUPFD_CLOEXEC, (int)top - 1)) < 0)
        g_done = fcntl(fds[ZYG_FD_DONE], F_DUPFD_CLOEXEC, 64);
    if (g_done < 0)
        lay_die(sock, "done pipe");
    g_prog = getpid();
    struct sock_fprog fp = {.len = (unsigned short)rq->bpf_len,
                            .filter = (struct sock_filter *)rq->bpf};
    lay_spec s = {.stdin_fd = fds[ZYG_FD_STDIN],
                  .stdout_fd = fds[ZYG_FD_STDOUT],
                  .stderr_fd = fds[ZYG_FD_STDERR],
                  .work = SANDBOX_WORK_PATH,
                  .tmp = "/tmp",
                  .memory_mb = rq->memory_mb,
                  .max_procs = rq->max_procs,
                  .file_size_mb = rq->file_size_mb,
                  .open_files = rq->open_files,
                  .cpu_seconds = rq->cpu_seconds,
                  .allow_network = false,
                  .userns = true,
                  .setgroups_denied = (rq->flags & ZYG_F_SETGROUPS_DENIED) != 0,
                  .landlock_abi = rq->landlock_abi,
                  .notify = rq->notify != 0,
                  .bpf = rq->bpf_len ? &fp : NULL,
                  .keep_fd = g_done};
    lay_enter(sock, &s);
    close(3); /* the status socket: a cold run's execve closes it */
    longjmp(g_entry, 1);
}

/* The run's init (pid 1 of its namespaces): a thread-like clone that shares the zygote's memory
 * (so no page tables are copied for it) on a stack of its own; it touches only its run_args and
 * its stack, and never returns. Its child, the program's process, is an ordinary copy and goes
 * back into Python through g_entry.
 *
 * A fresh init is started for a request: it waits for its id maps, sets up, then forks the
 * program. A spare init is started before any request, forks the program's process at once
 * (the copy of the zygote's memory, the slowest step of a start) and both wait: the init for
 * the request (its id maps are written just before), the program for the init to pass it on
 * once the mounts are in place. */
static int run_init(void *arg) {
    run_args *a = arg;
    int *fds = a->fds;
    close(ZYG_CTRL_FD);
    signal(SIGCHLD, SIG_DFL);
    pid_t prog = -1;
    int to_prog = -1;
    if (a->spare) {
        close(a->peer);
        int pp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pp) != 0)
            _exit(127);
        prog = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
        if (prog < 0)
            _exit(127);
        if (prog == 0) {
            /* a copy of the zygote's memory, on a copy of this stack: wait for the run */
            static zyg_req rq;
            int pfds[ZYG_NFDS];
            close(pp[0]);
            close(a->sock);
            if (recv_req(pp[1], &rq, pfds) != 1)
                _exit(127); /* the init is gone: nothing to run */
            close(pp[1]);
            (void)prctl(PR_SET_NAME, RUN_NAME);
            run_program(&rq, pfds);
        }
        close(pp[1]);
        to_prog = pp[0];
        if (recv_req(a->sock, &a->rq, fds) != 1)
            _exit(127); /* the zygote stopped, or dropped this spare */
        close(a->sock);
        (void)prctl(PR_SET_NAME, RUN_NAME);
    } else {
        char g;
        if (read(a->go, &g, 1) != 1) /* the zygote wrote our id maps */
            _exit(127);
        close(a->go);
    }
    int sock = fds[ZYG_FD_STATUS];
    send_pidfd(sock);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        lay_die(sock, "make / private");
    if (a->rq.flags & ZYG_F_BY_NAME) {
        attach_named(sock, fds[ZYG_FD_WORK], a->rq.work_rel, SANDBOX_WORK_PATH);
        attach_named(sock, fds[ZYG_FD_TMP], a->rq.tmp_rel, "/tmp");
        /* every other run's directories: out of sight before the program exists */
        if (mount("sbxnone", ZYG_RUNS_PATH, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                  "size=4k,mode=0") != 0)
            lay_die(sock, "cover " ZYG_RUNS_PATH);
    } else {
        attach(sock, fds[ZYG_FD_WORK], SANDBOX_WORK_PATH);
        attach(sock, fds[ZYG_FD_TMP], "/tmp");
    }
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") != 0)
        lay_die(sock, "mount /proc");
    char opt[64];
    snprintf(opt, sizeof opt, "mode=1777,size=%lldm",
             (long long)(a->rq.file_size_mb > 0 ? a->rq.file_size_mb : 64));
    if (mount("sbxshm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opt) != 0)
        lay_die(sock, "mount /dev/shm");
    (void)sethostname("sandbox", 7);
    if (a->spare) {
        if (send_req(to_prog, &a->rq, fds) != 0)
            lay_die(sock, "hand the run to its program");
        close(to_prog);
    } else {
        prog = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
        if (prog < 0)
            lay_die(sock, "fork");
        if (prog == 0)
            run_program(&a->rq, fds); /* a copy of the zygote's memory, on a copy of this stack */
    }
    lay_init_loop(sock, prog, true);
}

#define INIT_MAP  (256 * 1024) /* guard page, run_args, then the init's stack */
#define MAX_INITS 512
/* Inits alive (or not yet reaped), with their stack mappings to unmap once they are gone. */
static struct {
    pid_t pid;
    void *map;
} g_inits[MAX_INITS];

/* The spare init, started ahead of the next request (pid 0: none), and the zygote's end of
 * the socket the request goes to it on. */
static struct {
    pid_t pid;
    int sock;
} g_spare = {0, -1};

static void drop_spare(void) {
    if (g_spare.sock >= 0)
        close(g_spare.sock);
    g_spare.pid = 0;
    g_spare.sock = -1;
}

static void reap_inits(bool block) {
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, block ? 0 : WNOHANG);
        if (p <= 0)
            return;
        block = false;
        if (p == g_spare.pid)
            drop_spare(); /* it died waiting: the next loop starts another */
        for (int i = 0; i < MAX_INITS; i++)
            if (g_inits[i].pid == p) {
                munmap(g_inits[i].map, INIT_MAP);
                g_inits[i].pid = 0;
                break;
            }
    }
}

/* A free slot of g_inits and a fresh init stack with its run_args; NULL when there is none. */
static run_args *new_init_args(int *slot, void **map) {
    *slot = -1;
    for (int tries = 0; *slot < 0 && tries < 2; tries++) {
        for (int i = 0; i < MAX_INITS && *slot < 0; i++)
            if (!g_inits[i].pid)
                *slot = i;
        if (*slot < 0)
            reap_inits(true); /* every slot busy: wait for a run to end */
    }
    if (*slot < 0)
        return NULL;
    *map = mmap(NULL, INIT_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1,
                0);
    if (*map == MAP_FAILED)
        return NULL;
    if (mprotect(*map, 4096, PROT_NONE) != 0) {
        munmap(*map, INIT_MAP);
        return NULL;
    }
    run_args *a = (run_args *)((char *)*map + 4096);
    a->go = a->sock = a->peer = -1;
    return a;
}

static pid_t clone_init(run_args *a, void *map, int slot) {
    pid_t pid = clone(run_init, (char *)map + INIT_MAP,
                      CLONE_VM | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                          CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
                      a);
    if (pid < 0) {
        munmap(map, INIT_MAP);
    } else {
        g_inits[slot].pid = pid;
        g_inits[slot].map = map;
    }
    return pid;
}

/* Map the run's SBX_INNER_ID to its id in the zygote's namespace (uid and gid). */
static int write_id_maps(pid_t pid, uint32_t run_uid) {
    char path[64], line[64];
    snprintf(line, sizeof line, "%u %u 1\n", SBX_INNER_ID, run_uid);
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    if (lay_write_str(path, line) != 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return lay_write_str(path, line);
}

/* Start the spare init (which forks its program's process at once); on any failure there is
 * simply no spare, and the next request starts a fresh init. */
static void make_spare(void) {
    int sv[2], slot;
    void *map;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return;
    run_args *a = new_init_args(&slot, &map);
    if (!a) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    a->spare = true;
    a->sock = sv[1];
    a->peer = sv[0];
    /* Born with the spare's name (a comm is inherited), so that no moment shows an idle spare
     * under a run's name; the zygote takes its own back at once. */
    char name[16] = "";
    (void)prctl(PR_GET_NAME, name);
    (void)prctl(PR_SET_NAME, SPARE_NAME);
    pid_t pid = clone_init(a, map, slot);
    (void)prctl(PR_SET_NAME, name);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return;
    }
    g_spare.pid = pid;
    g_spare.sock = sv[0];
}

/* Hand the request to the spare init; false (and the spare is gone) if it could not take it. */
static bool run_on_spare(const zyg_req *rq, const int fds[ZYG_NFDS]) {
    pid_t pid = g_spare.pid;
    if (!pid)
        return false;
    int sock = g_spare.sock;
    g_spare.pid = 0;
    g_spare.sock = -1;
    bool ok = write_id_maps(pid, rq->run_uid) == 0 && send_req(sock, rq, fds) == 0;
    close(sock);
    if (!ok)
        kill(pid, SIGKILL); /* reaped by the loop; a fresh init takes the run */
    return ok;
}

static void start_run(const zyg_req *rq, const int fds[ZYG_NFDS]) {
    if (run_on_spare(rq, fds))
        return;
    int go[2], slot;
    void *map;
    if (pipe2(go, O_CLOEXEC) != 0) {
        lay_report(fds[ZYG_FD_STATUS], "prepare the run");
        return;
    }
    run_args *a = new_init_args(&slot, &map);
    if (!a) {
        lay_report(fds[ZYG_FD_STATUS], "init stack");
        close(go[0]);
        close(go[1]);
        return;
    }
    memcpy(&a->rq, rq, sizeof *rq);
    memcpy(a->fds, fds, sizeof a->fds);
    a->go = go[0];
    a->spare = false;
    pid_t pid = clone_init(a, map, slot);
    close(go[0]);
    if (pid < 0) {
        lay_report(fds[ZYG_FD_STATUS], "clone");
    } else if (write_id_maps(pid, rq->run_uid) != 0) {
        lay_report(fds[ZYG_FD_STATUS], "write id maps");
        kill(pid, SIGKILL);
    } else if (write(go[1], "g", 1) != 1) {
        kill(pid, SIGKILL);
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
        if (!g_spare.pid)
            make_spare();
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

/* In a run's program process, its last act before _exit(code): tell the server the status.
 * (The program could write here too; it would only end its own run early.) */
EXPORT void sbx_zygote_done(int code) {
    char m[16];
    int n = snprintf(m, sizeof m, "D%d", code & 0xFF);
    if (g_done >= 0 && getpid() == g_prog)
        (void)!write(g_done, m, (size_t)n);
}
