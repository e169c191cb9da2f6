/* test_sandbox.c -- layer-level checks of sandbox_spawn with real /bin/sh and python3: the
 * program runs, sees NoNewPrivs 1 and Seccomp 2, cannot write outside its dirs, gets refused
 * and explained network sockets and kernel calls, and leaves nothing behind (needs root); and
 * the environment rewrite of the work and tmp dirs (pure, always). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "exec/sandbox.h"
#include "exec/sandbox_int.h"

static char g_root[] = "/tmp/sbx-unit-XXXXXX";

typedef struct result {
    int rc, code, signo;
    char *out, *err, *explain;
    cJSON *viol;
} result;

static void result_free(result *r) {
    free(r->out);
    free(r->err);
    free(r->explain);
    cJSON_Delete(r->viol);
}

/* Run argv in a fresh sandbox with dirs under g_root; outputs go to files. */
static result run(const char *const *argv, bool net, int64_t timeout_ms) {
    result r = {.rc = -1};
    char work[256], tmp[256], outp[256], errp[256];
    snprintf(work, sizeof work, "%s/work", g_root);
    snprintf(tmp, sizeof tmp, "%s/tmp", g_root);
    snprintf(outp, sizeof outp, "%s/out", g_root);
    snprintf(errp, sizeof errp, "%s/err", g_root);
    sbx_rmtree(work);
    sbx_rmtree(tmp);
    mkdir(work, 0700);
    mkdir(tmp, 0700);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL, NULL};
    char home[300];
    snprintf(home, sizeof home, "HOME=%s", work);
    env[2] = home;
    sandbox_spec s = {.argv = argv,
                      .envp = env,
                      .work_dir = work,
                      .tmp_dir = tmp,
                      .stdin_fd = in,
                      .stdout_fd = o,
                      .stderr_fd = e,
                      .memory_mb = 512,
                      .max_procs = 64,
                      .file_size_mb = 8,
                      .open_files = 256,
                      .cpu_seconds = 30,
                      .allow_network = net};
    sandbox_child *c = NULL;
    sbx_err er = {0};
    if (sandbox_spawn(&s, &c, &er) != SBX_OK) {
        fprintf(stderr, "spawn: %s\n", er.msg);
        close(in), close(o), close(e);
        return r;
    }
    close(in), close(o), close(e);
    r.rc = sandbox_wait(c, sbx_now_ms() + timeout_ms, &r.code, &r.signo);
    if (r.rc == 0) {
        sandbox_kill(c);
        sandbox_wait(c, sbx_now_ms() + 5000, &r.code, &r.signo);
    }
    r.viol = sandbox_violations(c);
    r.explain = sandbox_explain(c);
    sandbox_free(c);
    r.out = sbx_read_file(outp, 1 << 20, NULL);
    r.err = sbx_read_file(errp, 1 << 20, NULL);
    if (!r.out)
        r.out = strdup("");
    if (!r.err)
        r.err = strdup("");
    return r;
}

static result sh(const char *script) {
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    return run(argv, false, 20000);
}

static result py(const char *code) {
    const char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
    return run(argv, false, 30000);
}

static bool has(const char *s, const char *needle) {
    return s && strstr(s, needle);
}

/* sandbox_env_rewrite: pure, runs without root */
static void env_rewrite_checks(void) {
    const char *envp[] = {"HOME=/d/runs/1/work",
                          "PWD=/d/runs/1/work/sub/dir",
                          "TMPDIR=/d/runs/1/tmp",
                          "CACHE=/d/runs/1/tmp/x",
                          "OTHER=/d/runs/1/workshop",
                          "PATH=/usr/bin:/bin",
                          "/d/runs/1/work=name",
                          "EMPTY=",
                          "NOEQUALS",
                          NULL};
    char **env = sandbox_env_rewrite(envp, "/d/runs/1/work", "/d/runs/1/tmp");
    CHECK(env != NULL);
    if (!env)
        return;
    const char *want[] = {"HOME=/work",
                          "PWD=/work/sub/dir",
                          "TMPDIR=/tmp",
                          "CACHE=/tmp/x",
                          "OTHER=/d/runs/1/workshop",
                          "PATH=/usr/bin:/bin",
                          "/d/runs/1/work=name",
                          "EMPTY=",
                          "NOEQUALS"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(env[i] && !strcmp(env[i], want[i]));
    CHECK(env[sizeof want / sizeof *want] == NULL);
    sandbox_env_free(env);
    sandbox_env_free(NULL);
    const char *none[] = {NULL};
    env = sandbox_env_rewrite(none, "/w", "/t");
    CHECK(env && env[0] == NULL);
    sandbox_env_free(env);
}

/* The wait for a child's status message gives up at once when the cancel descriptor (the
 * zygote's stop wake-up) is readable, and takes a message that is there first. Pure. */
static void recv_cancel_checks(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    int cancel = eventfd(0, EFD_CLOEXEC);
    CHECK(cancel >= 0);
    char msg[64];
    int fd = -1;
    CHECK(sbxi_recv_msg_or(sv[0], cancel, msg, sizeof msg, &fd, 50) == -2); /* quiet: timeout */
    uint64_t one = 1;
    CHECK(write(cancel, &one, sizeof one) == sizeof one);
    int64_t t0 = sbx_now_ms();
    CHECK(sbxi_recv_msg_or(sv[0], cancel, msg, sizeof msg, &fd, 10000) == -3);
    CHECK(sbx_now_ms() - t0 < 1000);
    CHECK(send(sv[1], "N", 1, 0) == 1); /* a message already there wins over the cancel */
    CHECK(sbxi_recv_msg_or(sv[0], cancel, msg, sizeof msg, &fd, 10000) == 1 && msg[0] == 'N');
    CHECK(sbxi_recv_msg(sv[0], msg, sizeof msg, &fd, 50) == -2); /* no cancel descriptor */
    close(sv[0]);
    close(sv[1]);
    close(cancel);
}

int main(void) {
    env_rewrite_checks();
    recv_cancel_checks();
    if (geteuid() != 0) {
        return CHECK_SKIP("needs root");
    }
    if (!mkdtemp(g_root))
        return 1;
    sandbox_probe();
    cJSON *layers = sandbox_layers();
    CHECK(layers && cJSON_IsTrue(cJSON_GetObjectItem(layers, "seccomp")));
    cJSON_Delete(layers);

    result r = sh("echo hello; echo oops >&2; exit 3");
    CHECK(r.rc == 1 && r.code == 3 && r.signo == 0);
    CHECK(has(r.out, "hello") && has(r.err, "oops"));
    CHECK(cJSON_GetArraySize(r.viol) == 0 && r.explain && !*r.explain);
    result_free(&r);

    r = sh("grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status; id -u; pwd; "
           "echo $HOME; ls /");
    CHECK(has(r.out, "NoNewPrivs:\t1") && has(r.out, "Seccomp:\t2"));
    CHECK(has(r.out, "CapEff:\t0000000000000000") && has(r.out, "CapBnd:\t0000000000000000"));
    CHECK(has(r.out, "/work\n/work\n"));
    CHECK(!has(r.out, "root") && !has(r.out, "home"));
    result_free(&r);

    /* python with numpy, files in cwd and /tmp, threads, subprocess, multiprocessing */
    r = py(
        "import numpy, threading, subprocess, multiprocessing as mp, os\n"
        "open('a.txt','w').write('x'); open('/tmp/b.txt','w').write('y')\n"
        "t=threading.Thread(target=lambda:None); t.start(); t.join()\n"
        "assert subprocess.run(['/bin/sh','-c','echo sub'],capture_output=True).stdout==b'sub\\n'\n"
        "with mp.Pool(2) as p: assert p.map(abs,[-1,-2])==[1,2]\n"
        "print('ok', numpy.arange(4).sum(), os.listdir('.'))\n");
    CHECK(r.rc == 1 && r.code == 0);
    CHECK(has(r.out, "ok 6 ['a.txt']"));
    if (r.code != 0)
        fprintf(stderr, "python: %s\n", r.err);
    result_free(&r);

    /* writes outside the work dir fail; nothing of the host is visible */
    r = py("import os\n"
           "for p in ['/etc/x','/usr/x','/x','/proc/x','/dev/x']:\n"
           "    try: open(p,'w'); print('WROTE', p)\n"
           "    except OSError as e: print('denied', p, e.errno)\n"
           "print(os.path.exists('/root'), os.path.exists('/home'), os.path.exists('"
           "/run"
           "'))\n");
    CHECK(r.code == 0 && !has(r.out, "WROTE") && has(r.out, "denied /etc/x"));
    CHECK(has(r.out, "False False False"));
    result_free(&r);

    /* network sockets are refused and explained; AF_UNIX works */
    r = py("import socket\n"
           "a,b=socket.socketpair(); a.send(b'x'); assert b.recv(1)==b'x'\n"
           "for f in (socket.AF_INET, socket.AF_INET6, socket.AF_PACKET):\n"
           "    try: socket.socket(f, socket.SOCK_STREAM if f!=socket.AF_PACKET else "
           "socket.SOCK_RAW); print('OPEN', f)\n"
           "    except OSError as e: print('refused', e.errno)\n");
    CHECK(r.code == 0 && !has(r.out, "OPEN") && has(r.out, "refused 1"));
    CHECK(cJSON_GetArraySize(r.viol) == 3);
    CHECK(has(r.explain, "sandbox: network access is disabled; socket(AF_INET)"));
    CHECK(has(r.explain, "socket(AF_INET6)") && has(r.explain, "socket(AF_PACKET)"));
    result_free(&r);

    /* kernel surface: refused with EPERM and explained; clone3 is ENOSYS */
    r = py("import ctypes, os\n"
           "libc=ctypes.CDLL(None, use_errno=True)\n"
           "for name,nr,args in [('unshare',272,(0x10000000,)),('bpf',321,(0,0,0)),"
           "('ptrace',101,(16,1,0,0)),('clone3',435,(0,0)),('keyctl',250,(0,0)),"
           "('userfaultfd',323,(0,)),('io_uring_setup',425,(1,0)),('perf_event_open',298,(0,0,-1,-"
           "1,0))]:\n"
           "    r=libc.syscall(nr,*args); print(name, r, ctypes.get_errno())\n");
    CHECK(r.code == 0);
    CHECK(has(r.out, "unshare -1 1\n") && has(r.out, "bpf -1 1\n") && has(r.out, "ptrace -1 1\n"));
    CHECK(has(r.out, "clone3 -1 38\n") && has(r.out, "io_uring_setup -1 1\n"));
    CHECK(has(r.explain, "sandbox: this kernel interface is not available in the sandbox"));
    CHECK(has(r.explain, "bpf()") && has(r.explain, "sandbox: inspecting or controlling"));
    result_free(&r);

    /* a double-forked daemon dies with the run; a timeout kills the tree */
    int64_t t0 = sbx_now_ms();
    r = sh("(setsid sleep 60 >/dev/null 2>&1 &); echo started");
    CHECK(r.code == 0 && has(r.out, "started") && sbx_now_ms() - t0 < 10000);
    result_free(&r);
    const char *slp[] = {"/bin/sleep", "60", NULL};
    t0 = sbx_now_ms();
    r = run(slp, false, 500);
    CHECK(r.rc == 0 && r.signo == 9 && sbx_now_ms() - t0 < 5000);
    result_free(&r);

    /* limits: a too-big file stops the program; the disk quota (4 x 8 MiB) kills the run */
    r = sh("exec head -c 20000000 /dev/zero > big");
    CHECK(r.rc == 1 && r.signo == SIGXFSZ);
    CHECK(has(r.explain, "sandbox: a resource limit stopped the program; file size limit"));
    result_free(&r);
    t0 = sbx_now_ms();
    r = sh("i=0; while true; do head -c 7000000 /dev/zero > f$i; i=$((i+1)); done");
    CHECK(r.rc == 1 && r.signo == 9 && sbx_now_ms() - t0 < 10000);
    CHECK(has(r.explain, "disk quota of 32 MiB"));
    result_free(&r);

    /* the explanation helper for refused writes */
    const char *ro = "OSError: [Errno 30] Read-only file system: '/x'";
    char *line = sandbox_explain_output(ro, strlen(ro));
    CHECK(has(line, "sandbox: the file system is read-only"));
    free(line);
    CHECK(sandbox_explain_output("all fine", 8) == NULL);

    /* loosened: inet sockets allowed (host network), other families still refused */
    const char *netpy[] = {"/usr/bin/python3", "-c",
                           "import socket\n"
                           "socket.socket(socket.AF_INET); socket.socket(socket.AF_INET6)\n"
                           "try: socket.socket(socket.AF_PACKET, socket.SOCK_RAW); print('OPEN')\n"
                           "except OSError as e: print('refused', e.errno)\n",
                           NULL};
    r = run(netpy, true, 30000);
    CHECK(r.code == 0 && has(r.out, "refused 1") && !has(r.out, "OPEN"));
    if (r.code != 0)
        fprintf(stderr, "net: %s %s\n", r.out, r.err);
    CHECK(cJSON_GetArraySize(r.viol) == 1 && has(r.explain, "socket(AF_PACKET)"));
    result_free(&r);

    /* execve failure is an exit code, not a hang */
    const char *missing[] = {"/nonexistent", NULL};
    r = run(missing, false, 5000);
    CHECK(r.rc == 1 && r.code == 127);
    result_free(&r);

    sandbox_free(NULL);
    sbx_rmtree(g_root);
    return CHECK_DONE();
}
