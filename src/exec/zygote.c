/* zygote.c -- keeping the pre-forked Python alive (see zygote.h). */
#define _GNU_SOURCE
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "sandbox.h"

/* embedded by CMake (cmake/embed_file.cmake) */
extern const unsigned char sbx_zygote_so[];
extern const size_t sbx_zygote_so_len;
extern const unsigned char sbx_zygote_driver[];
extern const size_t sbx_zygote_driver_len;

/* The zygote's -c program: run the driver (zygote_so/driver.py) that arrives on fd 6. */
static const char k_boot[] = "exec(compile(open(6,'rb').read(),'<zygote>','exec'))";

/* What a model's code imports most, then the data stack when it is installed. */
static const char k_auto_preload[] =
    "json,re,math,random,datetime,collections,itertools,functools,statistics,decimal,fractions,"
    "csv,io,string,textwrap,typing,dataclasses,pathlib,base64,hashlib,copy,heapq,bisect,operator,"
    "urllib.parse,numpy,pandas,matplotlib,matplotlib.pyplot";

/* Preloading runs with one BLAS/OpenMP thread: a threaded zygote could not be forked safely. */
static const char *const k_thread_env[] = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
                                           "MKL_NUM_THREADS=1", "NUMEXPR_NUM_THREADS=1"};

#define READY_WAIT_MS 120000
#define BACKOFF_MIN   100
#define BACKOFF_MAX   5000

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    bool thread_up, stopping, ready;
    int wake; /* eventfd: stop now */
    int ctrl; /* server end of the control socket while ready */
    pid_t pid;
    int pidfd;
    int64_t starts, preload_mb;
    cJSON *modules;
    char *python, *preload;
    char **envp;
} Z = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = -1, .ctrl = -1, .pidfd = -1};

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

/* Log the zygote's stderr line by line. */
static void log_lines(int fd, sbx_buf *acc) {
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
}

static bool take_ready(int ctrl, int64_t t0) {
    char msg[16384];
    ssize_t n = recv(ctrl, msg, sizeof msg - 1, MSG_DONTWAIT);
    if (n <= 0 || msg[0] != 'R')
        return false;
    msg[n] = 0;
    cJSON *j = cJSON_Parse(msg + 1);
    cJSON *mods = cJSON_DetachItemFromObject(j, "modules");
    cJSON *kib = cJSON_GetObjectItem(j, "preloadKiB");
    pthread_mutex_lock(&Z.mu);
    cJSON_Delete(Z.modules);
    Z.modules = cJSON_IsArray(mods) ? mods : cJSON_CreateArray();
    if (!cJSON_IsArray(mods))
        cJSON_Delete(mods);
    Z.preload_mb = cJSON_IsNumber(kib) ? (int64_t)kib->valuedouble / 1024 + 1 : 0;
    Z.ctrl = ctrl;
    Z.ready = true;
    Z.starts++;
    int nmods = cJSON_GetArraySize(Z.modules);
    int64_t mb = Z.preload_mb;
    pthread_mutex_unlock(&Z.mu);
    cJSON_Delete(j);
    LOG_I("zygote", "ready in %lld ms (pid %d): %d modules preloaded, %lld MiB",
          (long long)(sbx_now_ms() - t0), (int)Z.pid, nmods, (long long)mb);
    return true;
}

/* One zygote from start to death (or to stop). */
static void run_once(void) {
    char id[SBX_ID_LEN], dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX];
    sbx_random_id(id);
    snprintf(dir, sizeof dir, "%s/zygote/%s", sbx_cfg->data_dir, id);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    int ctrl[2] = {-1, -1}, logp[2] = {-1, -1}, so = -1, driver = -1, devnull = -1;
    sandbox_child *child = NULL;
    sbx_buf acc;
    sbx_buf_init(&acc, 8192);
    int64_t t0 = sbx_now_ms();
    if (sbx_mkdir_p(work, 0700) != 0 || mkdir(tmp, 0700) != 0) {
        LOG_E("zygote", "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctrl) != 0 ||
        pipe2(logp, O_CLOEXEC) != 0 || (so = memfd_create("sandboxd-zygote", MFD_CLOEXEC)) < 0 ||
        write(so, sbx_zygote_so, sbx_zygote_so_len) != (ssize_t)sbx_zygote_so_len ||
        (driver = memfd_create("sandboxd-zygote-driver", MFD_CLOEXEC)) < 0 ||
        write(driver, sbx_zygote_driver, sbx_zygote_driver_len) != (ssize_t)sbx_zygote_driver_len ||
        lseek(driver, 0, SEEK_SET) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        LOG_E("zygote", "cannot prepare: %s", strerror(errno));
        goto out;
    }
    /* The driver comes on fd 6, so the command line (visible to runs, which are clones of the
     * zygote) says only this. */
    const char *argv[] = {Z.python, "-c", k_boot, "zygote", Z.preload, NULL};
    int pass[3] = {ctrl[1], so, driver};
    sandbox_spec spec = {.argv = argv,
                         .envp = (const char *const *)Z.envp,
                         .work_dir = work,
                         .tmp_dir = tmp,
                         .stdin_fd = devnull,
                         .stdout_fd = logp[1],
                         .stderr_fd = logp[1],
                         .file_size_mb = sbx_cfg->exec_file_size_mb,
                         .owner_dir = dir,
                         .zygote_init = true,
                         .pass_fds = pass,
                         .npass = 3};
    /* HOME names this zygote's work dir (it becomes /work inside, as for a run) */
    char home[PATH_MAX + 8];
    snprintf(home, sizeof home, "HOME=%s", work);
    for (char **e = Z.envp; *e; e++)
        if (!strncmp(*e, "HOME=", 5))
            *e = home;
    sbx_err err = {0};
    sbx_code rc = sandbox_spawn(&spec, &child, &err);
    for (char **e = Z.envp; *e; e++)
        if (*e == home)
            *e = "HOME=";
    if (rc != SBX_OK) {
        LOG_E("zygote", "cannot start: %s", err.msg);
        goto out;
    }
    fcntl(logp[0], F_SETFL, O_NONBLOCK);
    close(ctrl[1]), close(so), close(driver), close(logp[1]), close(devnull);
    ctrl[1] = so = driver = logp[1] = devnull = -1;
    pthread_mutex_lock(&Z.mu);
    Z.pid = sandbox_pid(child);
    pthread_mutex_unlock(&Z.mu);
    bool ready = false;
    while (!Z.stopping) {
        struct pollfd p[4] = {{.fd = ready ? -1 : ctrl[0], .events = POLLIN},
                              {.fd = logp[0], .events = POLLIN},
                              {.fd = sandbox_pollfd(child), .events = POLLIN},
                              {.fd = Z.wake, .events = POLLIN}};
        int r = poll(p, 4, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            log_lines(logp[0], &acc);
        if (p[1].revents & POLLHUP && !(p[1].revents & POLLIN)) {
            close(logp[0]);
            logp[0] = -1;
        }
        if (p[2].revents || p[3].revents)
            break;
        if (!ready && p[0].revents) {
            if (!(ready = take_ready(ctrl[0], t0)))
                break; /* it closed the socket or said something else */
        }
        if (!ready && sbx_now_ms() - t0 > READY_WAIT_MS) {
            LOG_E("zygote", "not ready after %d s; restarting it", READY_WAIT_MS / 1000);
            break;
        }
    }

out:
    pthread_mutex_lock(&Z.mu);
    Z.ready = false;
    Z.ctrl = -1; /* submitters hold the lock while they use it: safe to close now */
    Z.pid = 0;
    pthread_mutex_unlock(&Z.mu);
    if (child) {
        sandbox_kill(child);
        int code = 0, sig = 0;
        sandbox_wait(child, sbx_now_ms() + 5000, &code, &sig);
        if (!Z.stopping)
            LOG_W("zygote", "exited (code %d, signal %d) after %lld ms", code, sig,
                  (long long)(sbx_now_ms() - t0));
        sandbox_free(child);
    }
    if (logp[0] >= 0) /* its last words */
        log_lines(logp[0], &acc);
    int fds[] = {ctrl[0], ctrl[1], logp[0], logp[1], so, driver, devnull};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    sbx_buf_free(&acc);
    if (sbx_rmtree(dir) != 0)
        LOG_W("zygote", "could not remove %s", dir);
}

static void *zygote_main(void *arg) {
    (void)arg;
    int backoff = BACKOFF_MIN;
    while (!Z.stopping) {
        int64_t t0 = sbx_now_ms();
        run_once();
        if (Z.stopping)
            break;
        if (sbx_now_ms() - t0 > 30000)
            backoff = BACKOFF_MIN; /* it served a while: a fresh failure, not a crash loop */
        LOG_W("zygote", "restarting in %d ms; runs start cold meanwhile", backoff);
        pause_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    return NULL;
}

int zygote_start(const char *python, const char *const *envp, sbx_err *e) {
    const char *want = sbx_cfg->exec_preload ? sbx_cfg->exec_preload : "auto";
    if (!strcmp(want, "auto"))
        want = k_auto_preload;
    if (!module_list_ok(want)) {
        sbx_fail(e, SBX_EINVAL, "EXEC_PRELOAD: only module names separated by commas");
        return -1;
    }
    size_t n = 0;
    while (envp[n])
        n++;
    size_t nt = sizeof k_thread_env / sizeof *k_thread_env;
    Z.envp = calloc(n + nt + 2, sizeof *Z.envp);
    Z.python = strdup(python);
    Z.preload = strdup(want);
    Z.wake = eventfd(0, EFD_CLOEXEC);
    if (!Z.envp || !Z.python || !Z.preload || Z.wake < 0) {
        sbx_fail(e, SBX_EINTERNAL, "zygote: out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        Z.envp[k++] = (char *)envp[i];
    for (size_t i = 0; i < nt; i++)
        Z.envp[k++] = (char *)k_thread_env[i];
    Z.envp[k++] = "HOME=";
    char zdir[PATH_MAX];
    snprintf(zdir, sizeof zdir, "%s/zygote", sbx_cfg->data_dir);
    if (sbx_mkdir_p(zdir, 0711) != 0) {
        sbx_fail(e, SBX_EINTERNAL, "zygote: cannot create %s: %s", zdir, strerror(errno));
        return -1;
    }
    if (pthread_create(&Z.thread, NULL, zygote_main, NULL) != 0) {
        sbx_fail(e, SBX_EINTERNAL, "zygote: cannot start its thread");
        return -1;
    }
    Z.thread_up = true;
    return 0;
}

void zygote_stop(void) {
    if (Z.thread_up) {
        Z.stopping = true;
        uint64_t one = 1;
        (void)!write(Z.wake, &one, sizeof one);
        pthread_join(Z.thread, NULL);
        Z.thread_up = false;
    }
    if (Z.wake >= 0)
        close(Z.wake);
    Z.wake = -1;
    char zdir[PATH_MAX];
    snprintf(zdir, sizeof zdir, "%s/zygote", sbx_cfg->data_dir);
    (void)rmdir(zdir); /* each zygote removed its own directory in it */
    cJSON_Delete(Z.modules);
    Z.modules = NULL;
    free(Z.envp);
    free(Z.python);
    free(Z.preload);
    Z.envp = NULL;
    Z.python = Z.preload = NULL;
}

bool zygote_ready(void) {
    pthread_mutex_lock(&Z.mu);
    bool r = Z.ready;
    pthread_mutex_unlock(&Z.mu);
    return r;
}

int64_t zygote_preload_mb(void) {
    pthread_mutex_lock(&Z.mu);
    int64_t mb = Z.preload_mb;
    pthread_mutex_unlock(&Z.mu);
    return mb;
}

sbx_code zygote_submit(const zyg_req *rq, const int fds[ZYG_NFDS], sbx_err *e) {
    struct iovec iov = {.iov_base = (void *)rq, .iov_len = sizeof *rq};
    union {
        char buf[CMSG_SPACE(sizeof(int) * ZYG_NFDS)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * ZYG_NFDS);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * ZYG_NFDS);
    pthread_mutex_lock(&Z.mu);
    sbx_code rc = SBX_OK;
    if (!Z.ready) {
        rc = sbx_fail(e, SBX_EUNAVAIL, "the zygote is not ready");
    } else if (sendmsg(Z.ctrl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof *rq) {
        int err = errno;
        rc = sbx_fail(e, SBX_EUNAVAIL, "the zygote did not take the run: %s", strerror(err));
        if (err != EAGAIN && Z.pid > 0) { /* broken: have the thread start a new one */
            Z.ready = false;
            kill(Z.pid, SIGKILL);
        }
    }
    pthread_mutex_unlock(&Z.mu);
    return rc;
}

cJSON *zygote_health(void) {
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&Z.mu);
    cJSON_AddBoolToObject(o, "ready", Z.ready);
    if (Z.ready)
        cJSON_AddNumberToObject(o, "pid", Z.pid);
    else
        cJSON_AddNullToObject(o, "pid");
    cJSON_AddNumberToObject(o, "starts", (double)Z.starts);
    cJSON_AddItemToObject(o, "modules",
                          Z.modules ? cJSON_Duplicate(Z.modules, 1) : cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "preloadMiB", (double)Z.preload_mb);
    pthread_mutex_unlock(&Z.mu);
    return o;
}
