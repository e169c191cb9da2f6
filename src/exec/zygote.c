/* zygote.c -- keeping the pre-forked Python alive, and starting a run through it
 * (sandbox_spawn_zygote: the client half of the exchange zygote_so/serve.c serves). See zygote.h.
 */
#define _GNU_SOURCE
#include "zygote.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/util.h"
#include "layers.h"
#include "sandbox_int.h"

/* embedded by CMake (cmake/embed_file.cmake) */
extern const unsigned char sbx_zygote_driver[];
extern const size_t sbx_zygote_driver_len;

/* The zygote's -c program: run the driver (zygote_so/driver.py) that arrives on fd 6. */
static const char k_boot[] = "exec(compile(open(6,'rb').read(),'<zygote>','exec'))";

/* What a model's code imports most, then the data stack when it is installed. */
static const char k_auto_preload[] =
    "json,re,math,random,datetime,collections,itertools,functools,statistics,decimal,fractions,"
    "csv,io,string,textwrap,typing,dataclasses,pathlib,base64,hashlib,copy,heapq,bisect,operator,"
    "urllib.parse,numpy,pandas,matplotlib,matplotlib.pyplot";
/* ... and, when runs have network, the HTTP client most programs fetch with (it brings
 * http.client, ssl and email along: about 45 ms of a run's import time otherwise) */
static const char k_auto_network[] = ",urllib.request";

/* Preloading runs with one BLAS/OpenMP thread: a threaded zygote could not be forked safely. */
static const char *const k_thread_env[] = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
                                           "MKL_NUM_THREADS=1", "NUMEXPR_NUM_THREADS=1"};

#define READY_WAIT_MS 120000
#define BACKOFF_MIN   100
#define BACKOFF_MAX   5000
#define STOP_WAIT_MS  12000 /* past the longest bounded wait of a zygote thread: a spawn's 10 s */

/* One zygote: a tier of the preload list, kept alive by its own thread. */
typedef struct zyg {
    const char *name; /* "light" (the standard-library part) or "full" (everything) */
    pthread_mutex_t mu;
    pthread_t thread;
    bool thread_up, ready;
    int ctrl;  /* server end of the control socket while ready */
    int pidfd; /* of the zygote's init while it runs (sandbox.c's; dup it to keep it) */
    pid_t pid;
    int64_t starts, runs, preload_mb;
    cJSON *modules;
} zyg;

static struct {
    atomic_bool stopping; /* written by zygote_stop, read by the tier threads */
    int wake;             /* eventfd: stop now */
    char *python, *preload, *data_dir;
    int64_t file_size_mb;
    char **envp;
    zyg tier[2];
} Z = {.wake = -1,
       .tier = {{.name = "light", .mu = PTHREAD_MUTEX_INITIALIZER, .ctrl = -1, .pidfd = -1},
                {.name = "full", .mu = PTHREAD_MUTEX_INITIALIZER, .ctrl = -1, .pidfd = -1}}};

static bool module_list_ok(const char *csv) {
    for (const char *p = csv; *p; p++)
        if (!(*p == ',' || *p == '.' || *p == '_' || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* Sleep up to `ms`, or less when woken to stop. */
static void pause_ms(int ms) {
    struct pollfd p = {.fd = Z.wake, .events = POLLIN};
    (void)poll(&p, 1, ms);
}

/* Log the zygote's stderr line by line: one read (the fd is nonblocking); what read returned. */
static ssize_t log_once(int fd, sbx_buf *acc) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
        sbx_buf_add(acc, buf, (size_t)n);
    char *start = acc->data;
    for (char *nl; start && (nl = memchr(start, '\n', acc->len - (size_t)(start - acc->data)));
         start = nl + 1) {
        *nl = 0;
        if (*start)
            LOG_W("zygote", "%s", start);
    }
    if (start && start != acc->data) {
        size_t rest = acc->len - (size_t)(start - acc->data);
        memmove(acc->data, start, rest);
        acc->len = rest;
    }
    if (acc->len > 2048 || (n == 0 && acc->len)) { /* an endless line, or the last one */
        sbx_buf_add(acc, "", 1);
        LOG_W("zygote", "%s", acc->data);
        acc->len = 0;
    }
    return n;
}

static bool take_ready(zyg *z, int ctrl, int64_t t0) {
    char msg[16384];
    ssize_t n = recv(ctrl, msg, sizeof msg - 1, MSG_DONTWAIT);
    if (n <= 0 || msg[0] != 'R')
        return false;
    msg[n] = 0;
    cJSON *j = cJSON_Parse(msg + 1);
    cJSON *mods = cJSON_DetachItemFromObject(j, "modules");
    cJSON *kib = cJSON_GetObjectItem(j, "preloadKiB");
    pthread_mutex_lock(&z->mu);
    cJSON_Delete(z->modules);
    z->modules = cJSON_IsArray(mods) ? mods : cJSON_CreateArray();
    if (!cJSON_IsArray(mods))
        cJSON_Delete(mods);
    z->preload_mb = cJSON_IsNumber(kib) && kib->valuedouble >= 0 && kib->valuedouble < 0x1p53
                        ? (int64_t)kib->valuedouble / 1024 + 1
                        : 0; /* a size, in KiB; anything else (or absurd) is unknown */
    z->ctrl = ctrl;
    z->ready = true;
    z->starts++;
    int nmods = cJSON_GetArraySize(z->modules);
    int64_t mb = z->preload_mb;
    pthread_mutex_unlock(&z->mu);
    cJSON_Delete(j);
    LOG_I("zygote", "%s: ready in %lld ms (pid %d): %d modules preloaded, %lld MiB", z->name,
          (long long)(sbx_now_ms() - t0), (int)z->pid, nmods, (long long)mb);
    return true;
}

/* The zygote's shared object, a real file found relative to the running binary: next to it
 * (the build tree), else where `make install` put it (LIBDIR/sandboxd). The zygote gets the
 * open descriptor (it cannot see either path in its own root); debuggers and packagers see the
 * file. A descriptor, or -1 with `e` (may be NULL) saying where it was looked for. */
static int open_so(sbx_err *e) {
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        sbx_fail_errno(e, errno, "zygote: cannot find this binary (/proc/self/exe)");
        return -1;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        slash[1] = 0;
    const char *const rel[] = {SBX_ZYGOTE_SO_NAME, SBX_ZYGOTE_SO_FROM_BIN};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s%s", exe, rel[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
    }
    sbx_fail(e, SBX_EUNAVAIL, "%s not found next to %s nor at %s%s", SBX_ZYGOTE_SO_NAME, exe, exe,
             SBX_ZYGOTE_SO_FROM_BIN);
    return -1;
}

/* One zygote from start to death (or to stop). */
static void run_once(zyg *z) {
    char id[SBX_ID_LEN], dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX];
    sbx_random_id(id);
    snprintf(dir, sizeof dir, "%s/zygote/%s", Z.data_dir, id);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    sbx_err se = {0};
    int ctrl[2] = {-1, -1}, logp[2] = {-1, -1}, so = open_so(&se), driver = -1, devnull = -1;
    sandbox_child *child = NULL;
    sbx_buf acc;
    sbx_buf_init(&acc, 8192);
    int64_t t0 = sbx_now_ms();
    if (sbx_mkdir_p(work, 0700) != 0 || mkdir(tmp, 0700) != 0) {
        LOG_E("zygote", "%s: cannot create %s: %s", z->name, dir, strerror(errno));
        goto out;
    }
    if (so < 0) { /* it was there at start: it went away since */
        LOG_E("zygote", "%s: %s", z->name, se.msg);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctrl) != 0 ||
        pipe2(logp, O_CLOEXEC) != 0 ||
        (driver = memfd_create("sandboxd-zygote-driver", MFD_CLOEXEC)) < 0 ||
        write(driver, sbx_zygote_driver, sbx_zygote_driver_len) != (ssize_t)sbx_zygote_driver_len ||
        lseek(driver, 0, SEEK_SET) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        LOG_E("zygote", "%s: cannot prepare: %s", z->name, strerror(errno));
        goto out;
    }
    /* The driver comes on fd 6, so the command line (visible to runs, which are clones of the
     * zygote) says only this. */
    const char *argv[] = {Z.python, "-c", k_boot, "zygote", Z.preload, z->name, NULL};
    int pass[3] = {ctrl[1], so, driver};
    /* the environment of a run, plus HOME naming this zygote's work dir (/work inside, as for
     * a run); a copy per zygote: the tiers start at the same time */
    char home[PATH_MAX + 8];
    snprintf(home, sizeof home, "HOME=%s", work);
    const char *envp[64];
    size_t ne = 0;
    for (char **e = Z.envp; *e && ne < 62; e++)
        envp[ne++] = *e;
    envp[ne++] = home;
    envp[ne] = NULL;
    sandbox_spec spec = {.argv = argv,
                         .envp = envp,
                         .work_dir = work,
                         .tmp_dir = tmp,
                         .stdin_fd = devnull,
                         .stdout_fd = logp[1],
                         .stderr_fd = logp[1],
                         .file_size_mb = Z.file_size_mb,
                         .owner_dir = dir,
                         .zygote_init = true,
                         .pass_fds = pass,
                         .npass = 3,
                         .cancel_fd = &Z.wake};
    sbx_err err = {0};
    sbx_code rc = sandbox_spawn(&spec, &child, &err);
    if (rc != SBX_OK) {
        if (atomic_load(&Z.stopping))
            LOG_I("zygote", "%s: not started: %s", z->name, err.msg);
        else
            LOG_E("zygote", "%s: cannot start: %s", z->name, err.msg);
        goto out;
    }
    fcntl(logp[0], F_SETFL, O_NONBLOCK);
    close(ctrl[1]), close(so), close(driver), close(logp[1]), close(devnull);
    ctrl[1] = so = driver = logp[1] = devnull = -1;
    pthread_mutex_lock(&z->mu);
    z->pid = sandbox_pid(child);
    z->pidfd = sandbox_pollfd(child);
    pthread_mutex_unlock(&z->mu);
    bool ready = false;
    while (!atomic_load(&Z.stopping)) {
        struct pollfd p[4] = {{.fd = ready ? -1 : ctrl[0], .events = POLLIN},
                              {.fd = logp[0], .events = POLLIN},
                              {.fd = sandbox_pollfd(child), .events = POLLIN},
                              {.fd = Z.wake, .events = POLLIN}};
        int r = poll(p, 4, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            (void)log_once(logp[0], &acc);
        if (p[1].revents & POLLHUP && !(p[1].revents & POLLIN)) {
            close(logp[0]);
            logp[0] = -1;
        }
        if (p[2].revents || p[3].revents)
            break;
        if (!ready && p[0].revents) {
            if (!(ready = take_ready(z, ctrl[0], t0)))
                break; /* it closed the socket or said something else */
        }
        if (!ready && sbx_now_ms() - t0 > READY_WAIT_MS) {
            LOG_E("zygote", "%s: not ready after %d s; restarting it", z->name,
                  READY_WAIT_MS / 1000);
            break;
        }
    }

out:
    pthread_mutex_lock(&z->mu);
    z->ready = false;
    z->ctrl = -1; /* submitters hold the lock while they use it: safe to close now */
    z->pid = 0;
    z->pidfd = -1; /* sandbox_free closes it */
    pthread_mutex_unlock(&z->mu);
    if (child) {
        sandbox_kill(child);
        int code = 0, sig = 0;
        sandbox_wait(child, sbx_now_ms() + 5000, &code, &sig);
        if (!atomic_load(&Z.stopping))
            LOG_W("zygote", "%s: exited (code %d, signal %d) after %lld ms", z->name, code, sig,
                  (long long)(sbx_now_ms() - t0));
        sandbox_free(child);
    }
    /* its last words: what is in the pipe now, never waiting for more (when the spawn failed,
     * our own write end is still open and a blocking read would never return) */
    if (logp[1] >= 0)
        close(logp[1]);
    logp[1] = -1;
    if (logp[0] >= 0 && fcntl(logp[0], F_SETFL, O_NONBLOCK) == 0)
        for (int i = 0; i < 64 && log_once(logp[0], &acc) > 0; i++)
            ;
    int fds[] = {ctrl[0], ctrl[1], logp[0], logp[1], so, driver, devnull};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    sbx_buf_free(&acc);
    if (sbx_rmtree(dir) != 0)
        LOG_W("zygote", "%s: could not remove %s", z->name, dir);
}

static void *zygote_main(void *arg) {
    zyg *z = arg;
    int backoff = BACKOFF_MIN;
    while (!atomic_load(&Z.stopping)) {
        int64_t t0 = sbx_now_ms();
        run_once(z);
        if (atomic_load(&Z.stopping))
            break;
        if (sbx_now_ms() - t0 > 30000)
            backoff = BACKOFF_MIN; /* it served a while: a fresh failure, not a crash loop */
        LOG_W("zygote", "%s: restarting in %d ms; its runs start elsewhere meanwhile", z->name,
              backoff);
        pause_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    return NULL;
}

int zygote_start(const zygote_opts *o, sbx_err *e) {
    const char *python = o->python;
    const char *const *envp = o->envp;
    const char *want = o->preload ? o->preload : "auto";
    char auto_list[sizeof k_auto_preload + sizeof k_auto_network];
    if (!strcmp(want, "auto")) {
        snprintf(auto_list, sizeof auto_list, "%s%s", k_auto_preload,
                 o->network ? k_auto_network : "");
        want = auto_list;
    }
    if (!module_list_ok(want)) {
        sbx_fail(e, SBX_EINVAL, "EXEC_PRELOAD: only module names separated by commas");
        return -1;
    }
    int so = open_so(e); /* a package without it gets no zygote, not a retry every 5 s */
    if (so < 0)
        return -1;
    close(so);
    size_t n = 0;
    while (envp[n])
        n++;
    size_t nt = sizeof k_thread_env / sizeof *k_thread_env;
    Z.envp = calloc(n + nt + 1, sizeof *Z.envp);
    Z.python = strdup(python);
    Z.preload = strdup(want);
    Z.data_dir = strdup(o->data_dir ? o->data_dir : "");
    Z.file_size_mb = o->file_size_mb;
    Z.wake = eventfd(0, EFD_CLOEXEC);
    if (!Z.envp || !Z.python || !Z.preload || !Z.data_dir || Z.wake < 0) {
        sbx_fail(e, SBX_EINTERNAL, "zygote: out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        Z.envp[k++] = (char *)envp[i];
    for (size_t i = 0; i < nt; i++)
        Z.envp[k++] = (char *)k_thread_env[i];
    char zdir[PATH_MAX];
    snprintf(zdir, sizeof zdir, "%s/zygote", Z.data_dir);
    if (sbx_mkdir_p(zdir, 0711) != 0) {
        sbx_fail(e, SBX_EINTERNAL, "zygote: cannot create %s: %s", zdir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&Z.tier[i].thread, NULL, zygote_main, &Z.tier[i]) != 0) {
            sbx_fail(e, SBX_EINTERNAL, "zygote: cannot start its thread");
            return -1;
        }
        Z.tier[i].thread_up = true;
    }
    return 0;
}

void zygote_stop(void) {
    atomic_store(&Z.stopping, true);
    uint64_t one = 1;
    if (Z.wake >= 0)
        (void)!write(Z.wake, &one, sizeof one);
    /* Each thread ends within its bounded waits (a spawn's 10 s at worst, a dying zygote's
     * 5 s), so STOP_WAIT_MS is longer than either: a thread caught in a slow spawn at stop
     * (seen under TSan) is joined and removes its directory. Past it the process exits with
     * the thread still there: its memory and its directory stay. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_MS / 1000;
    bool all = true;
    for (int i = 0; i < 2; i++) {
        zyg *z = &Z.tier[i];
        if (z->thread_up && pthread_timedjoin_np(z->thread, NULL, &until) != 0) {
            LOG_E("zygote", "%s: its thread did not stop within %d ms; leaving it", z->name,
                  STOP_WAIT_MS);
            all = false;
            continue;
        }
        z->thread_up = false;
        cJSON_Delete(z->modules);
        z->modules = NULL;
    }
    if (!all)
        return;
    if (Z.wake >= 0)
        close(Z.wake);
    Z.wake = -1;
    char zdir[PATH_MAX];
    snprintf(zdir, sizeof zdir, "%s/zygote", Z.data_dir ? Z.data_dir : "");
    if (Z.data_dir)
        (void)rmdir(zdir); /* each zygote removed its own directory in it */
    free(Z.envp);
    free(Z.python);
    free(Z.preload);
    free(Z.data_dir);
    Z.data_dir = NULL;
    Z.envp = NULL;
    Z.python = Z.preload = NULL;
}

/* Whether a line of `code` that says "import" names (as a whole word) the top-level package of
 * a module only the full tier preloaded (numpy of numpy.linalg, say). */
bool zygote_mentions_heavy(const char *code, const cJSON *full, const cJSON *light) {
    bool hit = false;
    cJSON *m;
    cJSON_ArrayForEach(m, full) {
        const char *name = cJSON_GetStringValue(m);
        if (!name || hit)
            continue;
        size_t len = strcspn(name, ".");
        bool in_light = false;
        cJSON *l;
        cJSON_ArrayForEach(l, light) {
            const char *ln = cJSON_GetStringValue(l);
            if (ln && strlen(ln) >= len && !strncmp(ln, name, len) && (!ln[len] || ln[len] == '.'))
                in_light = true;
        }
        if (in_light)
            continue;
        for (const char *p = code; !hit && (p = strstr(p, "import")); p += 6) {
            /* "import numpy" / "from numpy import" / "import x, numpy as np": find the name
             * as a whole word anywhere on the statement's line */
            const char *ls = p, *le = strchr(p, '\n');
            while (ls > code && ls[-1] != '\n')
                ls--;
            if (!le)
                le = p + strlen(p);
            for (const char *q = ls; q + len <= le; q++) {
                bool left = q == ls || !(isalnum((unsigned char)q[-1]) || q[-1] == '_');
                bool right = q + len == le || !(isalnum((unsigned char)q[len]) || q[len] == '_');
                if (left && right && !strncmp(q, name, len)) {
                    hit = true;
                    break;
                }
            }
        }
    }
    return hit;
}

static bool mentions_heavy(const char *code) {
    zyg *full = &Z.tier[1], *light = &Z.tier[0];
    pthread_mutex_lock(&full->mu);
    pthread_mutex_lock(&light->mu);
    bool hit = zygote_mentions_heavy(code, full->modules, light->modules);
    pthread_mutex_unlock(&light->mu);
    pthread_mutex_unlock(&full->mu);
    return hit;
}

static bool tier_ready(zyg *z) {
    pthread_mutex_lock(&z->mu);
    bool r = z->ready;
    pthread_mutex_unlock(&z->mu);
    return r;
}

static sbx_code submit(void *ctx, const zyg_req *rq, const int fds[ZYG_NFDS], int *zpidfd,
                       sbx_err *e) {
    zyg *z = ctx;
    *zpidfd = -1;
    pthread_mutex_lock(&z->mu);
    sbx_code rc = SBX_OK;
    if (!z->ready) {
        rc = sbx_fail(e, SBX_EUNAVAIL, "the %s zygote is not ready", z->name);
    } else if (lay_send_fds(z->ctrl, rq, sizeof *rq, fds, ZYG_NFDS, MSG_DONTWAIT) !=
               (ssize_t)sizeof *rq) {
        int err = errno;
        rc = sbx_fail(e, SBX_EUNAVAIL, "the %s zygote did not take the run: %s", z->name,
                      strerror(err));
        if (err != EAGAIN && z->pid > 0) { /* broken: have its thread start a new one */
            z->ready = false;
            kill(z->pid, SIGKILL);
        }
    } else {
        z->runs++;
        if (z->pidfd >= 0)
            *zpidfd = fcntl(z->pidfd, F_DUPFD_CLOEXEC, 3);
    }
    pthread_mutex_unlock(&z->mu);
    return rc;
}

bool zygote_open(const char *code, sandbox_zygote *door) {
    int want = mentions_heavy(code) ? 1 : 0;
    int tier = tier_ready(&Z.tier[want]) ? want : tier_ready(&Z.tier[1 - want]) ? 1 - want : -1;
    if (tier < 0)
        return false;
    zyg *z = &Z.tier[tier];
    pthread_mutex_lock(&z->mu);
    *door = (sandbox_zygote){.preload_mb = z->preload_mb, .submit = submit, .ctx = z};
    pthread_mutex_unlock(&z->mu);
    return true;
}

cJSON *zygote_health(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ready", tier_ready(&Z.tier[0]) && tier_ready(&Z.tier[1]));
    cJSON *tiers = cJSON_AddArrayToObject(o, "tiers");
    for (int i = 0; i < 2; i++) {
        zyg *z = &Z.tier[i];
        cJSON *t = cJSON_CreateObject();
        pthread_mutex_lock(&z->mu);
        cJSON_AddStringToObject(t, "name", z->name);
        cJSON_AddBoolToObject(t, "ready", z->ready);
        if (z->ready)
            cJSON_AddNumberToObject(t, "pid", z->pid);
        else
            cJSON_AddNullToObject(t, "pid");
        cJSON_AddNumberToObject(t, "starts", (double)z->starts);
        cJSON_AddNumberToObject(t, "runs", (double)z->runs);
        cJSON_AddItemToObject(t, "modules",
                              z->modules ? cJSON_Duplicate(z->modules, 1) : cJSON_CreateArray());
        cJSON_AddNumberToObject(t, "preloadMiB", (double)z->preload_mb);
        pthread_mutex_unlock(&z->mu);
        cJSON_AddItemToArray(tiers, t);
    }
    return o;
}

/* ---- a run through the zygote (sandbox_spawn_zygote) ---- */

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

/* One step of a zygote run's start: the message `tag` with a descriptor, within 5 s. Returns
 * the descriptor, or -1 with why it failed in `why` ("E..." from the zygote, or what the
 * silence means: `late` after 5 s, `closed` when the socket ended), or -2 when the message
 * came but its descriptor was dropped (this process had no room for it: EMFILE). */
static int recv_step(int sock, char tag, char *why, size_t wn, const char *late,
                     const char *closed) {
    char msg[300];
    int fd = -1;
    int r = sbxi_recv_msg(sock, msg, sizeof msg, &fd, 5000);
    if (r > 0 && msg[0] == tag && fd >= 0)
        return fd;
    if (r > 0 && msg[0] == tag) {
        snprintf(why, wn, "its descriptor was dropped: %s", strerror(EMFILE));
        return -2;
    }
    if (fd >= 0)
        close(fd);
    snprintf(why, wn, "%s", r == -2 ? late : r > 0 && msg[0] == 'E' ? msg + 1 : closed);
    return -1;
}

static void close_all(int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* The run's environment into rq->env, its host paths renamed as a cold run's are (none: the
 * zygote's own stays). 0, or -1 when it does not fit (or out of memory). */
static int pack_env(zyg_req *rq, const sandbox_spec *spec) {
    rq->env_len = 0;
    if (!spec->envp)
        return 0;
    char **env = sandbox_env_rewrite(spec->envp, spec->work_dir, spec->tmp_dir);
    if (!env)
        return -1;
    int rc = 0;
    for (char **p = env; *p && rc == 0; p++) {
        size_t n = strlen(*p) + 1;
        if (n > sizeof rq->env - rq->env_len)
            rc = -1;
        else
            memcpy(rq->env + rq->env_len, *p, n), rq->env_len += (uint32_t)n;
    }
    sandbox_env_free(env);
    return rc;
}

sbx_code sandbox_spawn_zygote(const sandbox_spec *spec, const sandbox_zygote *z,
                              sandbox_child **out, sbx_err *e) {
    if (!spec || !z || !z->submit || !spec->code || !spec->work_dir || !spec->tmp_dir || !out)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: incomplete spec");
    if (sandbox_check(e) != SBX_OK)
        return SBX_EINTERNAL; /* not EUNAVAIL: the caller must not fall back to a cold start */
    /* a run sharing the host network is not the zygote's: such runs start cold */
    if (!sbxi_probe.userns || spec->allow_network)
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the zygote is not available");
    /* with the gateway, the filter that allows inet sockets, as a cold run gets */
    struct sock_filter *bpf = NULL;
    size_t blen = 0;
    if (sbxi_probe.seccomp_ok &&
        (sbxi_filter_for(spec->egress_port != 0, &bpf, &blen) != 0 || blen > ZYG_MAX_BPF))
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: no seccomp filter for the zygote");

    unsigned outer, outer_gid;
    sbxi_run_owner(false, &outer, &outer_gid);
    /* the zygote maps its 1..SPAN to BASE..; unprivileged, only its root to the server's ids */
    unsigned run_uid = sbxi_probe.priv ? outer - SBX_OUTER_BASE + 1 : 0;
    if (chown(spec->work_dir, outer, outer_gid) != 0 || chown(spec->tmp_dir, outer, outer_gid) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "sandbox: chown run dirs: %s", strerror(errno));
    const char *wrel = NULL, *trel = NULL;
    if (!sbxi_probe.trees) { /* the zygote binds them by name from its view of DATA_DIR/runs */
        size_t rl = strlen(sbxi_probe.runs_dir);
        bool under = rl && !strncmp(spec->work_dir, sbxi_probe.runs_dir, rl) &&
                     spec->work_dir[rl] == '/' &&
                     !strncmp(spec->tmp_dir, sbxi_probe.runs_dir, rl) && spec->tmp_dir[rl] == '/';
        wrel = under ? spec->work_dir + rl + 1 : NULL;
        trel = under ? spec->tmp_dir + rl + 1 : NULL;
        if (!under || strlen(wrel) >= 128 || strlen(trel) >= 128)
            return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the run dirs are not under the runs dir");
    }
    zyg_req *rq = calloc(1, sizeof *rq);
    if (rq && pack_env(rq, spec) != 0) {
        free(rq);
        return sbx_fail(e, SBX_EUNAVAIL, "sandbox: the run's environment does not fit the zygote");
    }
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
    c->notifyfd = c->pidfd = c->sock = c->zpidfd = c->donefd = c->egressfd = -1;
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
    if (sbxi_probe.trees) {
        fds[ZYG_FD_WORK] = sbxi_tree_of(spec->work_dir);
        fds[ZYG_FD_TMP] = sbxi_tree_of(spec->tmp_dir);
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
    rq->magic = ZYG_MAGIC;
    rq->run_uid = run_uid;
    rq->flags =
        (sbxi_probe.priv ? 0 : ZYG_F_SETGROUPS_DENIED) | (sbxi_probe.trees ? 0 : ZYG_F_BY_NAME);
    rq->memory_mb = spec->memory_mb > 0 ? spec->memory_mb + z->preload_mb : 0;
    rq->max_procs = spec->max_procs;
    rq->file_size_mb = spec->file_size_mb;
    rq->open_files = spec->open_files;
    rq->cpu_seconds = spec->cpu_seconds;
    rq->landlock_abi = sbxi_probe.landlock_abi;
    rq->notify = sbxi_probe.notify_ok;
    rq->connect_port = spec->egress_port;
    rq->bpf_len = (uint32_t)blen;
    if (blen)
        memcpy(rq->bpf, bpf, blen * sizeof *bpf);
    if (wrel) {
        snprintf(rq->work_rel, sizeof rq->work_rel, "%s", wrel);
        snprintf(rq->tmp_rel, sizeof rq->tmp_rel, "%s", trel);
    }
    if (z->submit(z->ctx, rq, fds, &c->zpidfd, e) != SBX_OK)
        goto fail_quiet;
    close_all(fds, ZYG_NFDS);
    /* 'P' with the init's pidfd, then 'N' with the listener (or 'E...' on a set-up error) */
    int pfd = recv_step(c->sock, 'P', why, sizeof why, "the zygote did not answer in 5 s",
                        "the zygote closed the run");
    if (pfd < 0)
        goto fail;
    c->pidfd = pfd;
    c->pid = pidfd_pid(pfd);
    if (spec->owner_dir && c->pid > 0)
        sbx_owner_record(spec->owner_dir, c->pid);
    if (spec->egress_port) {
        int lfd = recv_step(c->sock, 'L', why, sizeof why, "the run's network did not start in 5 s",
                            "the run ended before its network started");
        if (lfd == -2)
            snprintf(why, sizeof why, "receive the run's listener: %s", strerror(EMFILE));
        if (lfd < 0)
            goto fail;
        c->egressfd = lfd;
    }
    if (bpf) {
        int nfd = recv_step(c->sock, 'N', why, sizeof why, "the run did not start in 5 s",
                            "the run ended before it started");
        if (nfd == -2) {
            /* The program goes on and may already have written to the run's pipes: no cold
             * start after it (the output would come twice), a final answer to retry. */
            sbx_fail(e, SBX_EBUSY,
                     "sandbox: the server is out of file descriptors (RLIMIT_NOFILE): retry "
                     "shortly, or raise its limit");
            if (e)
                e->retry_after = 1;
            rc = SBX_EBUSY;
            goto fail_quiet;
        }
        if (nfd < 0)
            goto fail;
        c->notifyfd = nfd;
    }
    free(rq);
    sbxi_start_supervising(c, spec);
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
