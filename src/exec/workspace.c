/* workspace.c -- Python sessions (see workspace.h): the registry, the thread that spawns every
 * session's sandbox and expires idle ones, and the calls, spoken to the kernel driver
 * (kernel.py) over the session's socket.
 *
 * Locks: W.mu guards the registry and each session's refs, gone, last_used and spawn handoff;
 * a session's call_mu guards its busy flag and its conversation with the driver (one call at a
 * time; a call holds `busy`, not the mutex, while it talks). A call never holds W.mu while it
 * waits for the driver. The sandbox child is replaced (a respawn) only by the manager thread
 * while the session is busy, and freed only once the session is retired and not busy.
 */
#define _GNU_SOURCE
#include "workspace.h"

#include <ctype.h>
#include <dirent.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/base64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "sandbox.h"
#include "zygote.h"

/* embedded by CMake (cmake/embed_file.cmake) */
extern const unsigned char sbx_kernel_py[];
extern const size_t sbx_kernel_py_len;

/* The sandbox's program: read the driver's source, a length-prefixed frame, from the socket on
 * fd 0 and run it (so neither its text nor anything of the server shows in a command line).
 * Its imports pick the zygote's tier that preloaded the data stack (zygote_mentions_heavy). */
static const char k_boot[] = "import os, struct\n"
                             "if 0:\n    import numpy, pandas, matplotlib.pyplot\n"
                             "def _take(n):\n"
                             "    b = b''\n"
                             "    while len(b) < n:\n"
                             "        c = os.read(0, n - len(b))\n"
                             "        if not c:\n            os._exit(0)\n"
                             "        b += c\n"
                             "    return b\n"
                             "_src = _take(struct.unpack('>I', _take(4))[0])\n"
                             "exec(compile(_src, '<kernel>', 'exec'), {'__name__': '__main__'})\n";

#define WS_MAX         512         /* the registry's room; PYTHON_MAX_SESSIONS is at most this */
#define READY_WAIT_MS  30000       /* a fresh driver's "ready" */
#define FRAME_MAX      (96u << 20) /* a driver frame (images travel in "done") */
#define WEDGED_WAIT_MS 5000        /* after a restart or a command kill: the driver's answer */
#define SWEEP_EVERY_MS 1000
#define ENV_MAX        64                      /* variables a session or command may add */
#define WS_SITE_DIR    "/tmp/site-packages"    /* kernel.py's SITE: on sys.path */
#define WS_WHEELS_DIR  "/tmp/.sandboxd-wheels" /* kernel.py's WHEELS: a wheelhouse copy */

struct ws_session {
    char id[SBX_ID_LEN];
    char owner[96];
    char dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX];
    int workfd; /* O_PATH of work */
    /* W.mu */
    int refs;  /* the registry's one, plus one per borrower */
    bool gone; /* deleted or expired (ws_get no longer finds it) */
    int64_t created_wall, last_used_wall, idle_s, ttl_s;
    bool spawn_req, spawn_done; /* the handoff to the manager thread */
    sbx_code spawn_rc;
    sbx_err spawn_e;
    /* call_mu */
    pthread_mutex_t call_mu;
    pthread_cond_t call_cv;
    bool busy;
    /* the busy caller's (or the manager's, spawning for it) */
    sandbox_child *child;
    int sock;
    bool dead; /* the driver is gone: spawn again before the next call */
    char *rbuf;
    size_t rlen, rcap;
    uint64_t seq;
    char *env_json; /* the "env" of the init frame */
    atomic_int pid; /* outer pid of the sandbox's init, for memoryBytes/cpuMs (0: none) */
    atomic_llong exec_count;
    atomic_bool starting;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the manager's wake-up, and spawn_done */
    pthread_t thread;
    bool up, stopping;
    ws_opts o;
    char **envp;
    ws_session *s[WS_MAX];
    uint64_t created, expired, restarted;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

static void iso_time(int64_t wall_ms, char out[64]) {
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

/* ---- the driver's socket: frames of a 4-byte big-endian length and a JSON object ---- */

/* Write all of `p` to the socket by `deadline`; 0 or -1. */
static int send_all(int sock, const void *p, size_t len, int64_t deadline) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(sock, (const char *)p + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR) && sbx_now_ms() < deadline) {
            struct pollfd pf = {.fd = sock, .events = POLLOUT};
            poll(&pf, 1, 100);
        } else {
            return -1;
        }
    }
    return 0;
}

/* One frame: the 4-byte big-endian length of `data`, then `data`. 0 or -1. */
static int send_raw_frame(int sock, const void *data, size_t n) {
    unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    int64_t deadline = sbx_now_ms() + 5000;
    if (sock < 0 || send_all(sock, hdr, 4, deadline) < 0)
        return -1;
    return send_all(sock, data, n, deadline);
}

static int send_frame(ws_session *s, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    int rc = text ? send_raw_frame(s->sock, text, strlen(text)) : -1;
    free(text);
    return rc;
}

/* The next frame within `deadline`: 1 with *out (caller frees), 0 on timeout, -1 when the
 * driver is gone (EOF, an error, or a frame that is too large or not JSON). */
static int read_frame(ws_session *s, int64_t deadline, cJSON **out) {
    for (;;) {
        if (s->rlen >= 4) {
            const unsigned char *b = (const unsigned char *)s->rbuf;
            size_t n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
            if (n > FRAME_MAX)
                return -1;
            if (s->rlen >= 4 + n) {
                *out = cJSON_ParseWithLength(s->rbuf + 4, n);
                memmove(s->rbuf, s->rbuf + 4 + n, s->rlen - 4 - n);
                s->rlen -= 4 + n;
                return *out ? 1 : -1;
            }
            if (s->rcap < 4 + n) {
                char *nb = realloc(s->rbuf, 4 + n);
                if (!nb)
                    return -1;
                s->rbuf = nb;
                s->rcap = 4 + n;
            }
        } else if (s->rcap < 65536) {
            char *nb = realloc(s->rbuf, 65536);
            if (!nb)
                return -1;
            s->rbuf = nb;
            s->rcap = 65536;
        }
        int64_t left = deadline - sbx_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pf = {.fd = s->sock, .events = POLLIN};
        int r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t got = read(s->sock, s->rbuf + s->rlen, s->rcap - s->rlen);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
            return -1;
        if (got > 0)
            s->rlen += (size_t)got;
    }
}

/* ---- spawning (the manager thread only: a sandbox dies with the thread that spawned it) ---- */

static void close_driver(ws_session *s) {
    if (s->child) {
        sandbox_kill(s->child);
        sandbox_free(s->child);
        s->child = NULL;
    }
    if (s->sock >= 0)
        close(s->sock);
    s->sock = -1;
    s->rlen = 0;
    atomic_store(&s->pid, 0);
}

static sbx_code spawn_driver(ws_session *s, sbx_err *e) {
    close_driver(s);
    int sv[2], logfd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return sbx_fail_errno(e, errno, "cannot create the session's socket");
    char logp[PATH_MAX];
    snprintf(logp, sizeof logp, "%s/driver.log", s->dir); /* beside work/ and tmp/: not theirs */
    logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logfd < 0) {
        close(sv[0]);
        close(sv[1]);
        return sbx_fail_errno(e, errno, "cannot create the session's log");
    }
    const char *argv[] = {W.o.python, "-c", k_boot, NULL};
    sandbox_spec spec = {.argv = argv,
                         .envp = (const char *const *)W.envp,
                         .work_dir = s->work,
                         .tmp_dir = s->tmp,
                         .stdin_fd = sv[1],
                         .stdout_fd = logfd,
                         .stderr_fd = logfd,
                         .memory_mb = W.o.memory_mb,
                         .max_procs = W.o.max_procs,
                         .file_size_mb = W.o.file_size_mb,
                         .open_files = W.o.open_files,
                         .disk_mb = W.o.disk_mb,
                         .allow_network = W.o.allow_network,
                         .owner_dir = s->dir,
                         .code = k_boot,
                         .code_len = sizeof k_boot - 1};
    sbx_code rc = SBX_EUNAVAIL;
    bool via_zygote = false;
    sandbox_zygote door;
    if (W.o.zygote && zygote_open(spec.code, &door)) {
        sbx_err ze = {0};
        rc = sandbox_spawn_zygote(&spec, &door, &s->child, &ze);
        via_zygote = rc == SBX_OK;
        if (rc != SBX_OK && rc != SBX_EUNAVAIL && e)
            *e = ze;
    }
    if (rc == SBX_EUNAVAIL)
        rc = sandbox_spawn(&spec, &s->child, e);
    close(sv[1]);
    close(logfd);
    if (rc != SBX_OK) {
        close(sv[0]);
        s->child = NULL;
        return rc;
    }
    s->sock = sv[0];
    s->dead = false;
    atomic_store(&s->pid, (int)sandbox_pid(s->child));
    LOG_I("python", "session=%s: driver started (pid %d, %s)", s->id, (int)sandbox_pid(s->child),
          via_zygote ? "zygote" : "cold");
    return SBX_OK;
}

/* Ask the manager thread to (re)start the session's driver, and wait. The caller is the
 * session's busy caller (or its creator). */
static sbx_code spawn_via_manager(ws_session *s, sbx_err *e) {
    pthread_mutex_lock(&W.mu);
    if (W.stopping || s->gone) {
        pthread_mutex_unlock(&W.mu);
        return sbx_fail(e, SBX_EUNAVAIL, "the session is ending, or the server is shutting down");
    }
    s->spawn_req = true;
    s->spawn_done = false;
    pthread_cond_broadcast(&W.cv);
    while (!s->spawn_done && !W.stopping)
        pthread_cond_wait(&W.cv, &W.mu);
    sbx_code rc = s->spawn_done ? s->spawn_rc : SBX_EUNAVAIL;
    if (!s->spawn_done)
        sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    else if (rc != SBX_OK && e)
        *e = s->spawn_e;
    pthread_mutex_unlock(&W.mu);
    return rc;
}

/* After a spawn: the driver's source (k_boot reads it), the init frame, then its "ready". */
static sbx_code greet(ws_session *s, sbx_err *e) {
    if (send_raw_frame(s->sock, sbx_kernel_py, sbx_kernel_py_len) < 0) {
        s->dead = true;
        return sbx_fail(e, SBX_EINTERNAL, "the session's interpreter did not start");
    }
    cJSON *init = cJSON_CreateObject();
    cJSON_AddStringToObject(init, "op", "init");
    cJSON *env = cJSON_Parse(s->env_json ? s->env_json : "{}");
    cJSON_AddItemToObject(init, "env", env ? env : cJSON_CreateObject());
    int rc = send_frame(s, init);
    cJSON_Delete(init);
    int64_t deadline = sbx_now_ms() + READY_WAIT_MS;
    while (rc == 0) {
        cJSON *f = NULL;
        int r = read_frame(s, deadline, &f);
        if (r <= 0) {
            rc = -1;
            break;
        }
        const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(f, "ev"));
        bool ready = ev && !strcmp(ev, "ready");
        cJSON_Delete(f);
        if (ready)
            return SBX_OK;
    }
    char logp[PATH_MAX];
    snprintf(logp, sizeof logp, "%s/driver.log", s->dir);
    char *log = sbx_read_file(logp, 4096, NULL);
    LOG_W("python", "session=%s: the driver did not start: %s", s->id, log ? log : "(no output)");
    free(log);
    s->dead = true;
    return sbx_fail(e, SBX_EINTERNAL, "the session's interpreter did not start");
}

static sbx_code respawn(ws_session *s, sbx_err *e) {
    atomic_store(&s->starting, true);
    sbx_code rc = spawn_via_manager(s, e);
    if (rc == SBX_OK)
        rc = greet(s, e);
    atomic_store(&s->starting, false);
    return rc;
}

/* ---- the registry ---- */

/* Drop one reference (W.mu held); the last frees the session. Its driver is gone by then
 * (retire). */
static void unref_locked(ws_session *s) {
    if (--s->refs > 0)
        return;
    close_driver(s);
    if (s->workfd >= 0)
        close(s->workfd);
    pthread_mutex_destroy(&s->call_mu);
    pthread_cond_destroy(&s->call_cv);
    free(s->rbuf);
    free(s->env_json);
    free(s);
}

/* Take `s` out of the registry (W.mu held); false when it was already. The caller then ends
 * it with finish_retired (W.mu not held). */
static bool retire_locked(ws_session *s) {
    if (s->gone)
        return false;
    s->gone = true;
    for (int i = 0; i < WS_MAX; i++)
        if (W.s[i] == s)
            W.s[i] = NULL;
    return true;
}

/* Kill the retired session's processes, wait for a call in flight to notice, reap them, remove
 * its directory, drop the registry's reference. */
static void finish_retired(ws_session *s, const char *why) {
    if (s->child)
        sandbox_kill(s->child); /* a call in flight sees its socket end */
    pthread_mutex_lock(&s->call_mu);
    while (s->busy)
        pthread_cond_wait(&s->call_cv, &s->call_mu);
    s->busy = true; /* for good: no call starts on a retired session */
    pthread_mutex_unlock(&s->call_mu);
    close_driver(s); /* reaps the tree: its processes are gone */
    if (sbx_rmtree(s->dir) < 0)
        LOG_W("python", "session=%s: could not remove %s: %s", s->id, s->dir, strerror(errno));
    LOG_I("python", "session=%s ended (%s)", s->id, why);
    pthread_mutex_lock(&W.mu);
    unref_locked(s);
    pthread_mutex_unlock(&W.mu);
}

static void *manager(void *arg) {
    (void)arg;
    int64_t next_sweep = sbx_now_ms() + SWEEP_EVERY_MS;
    pthread_mutex_lock(&W.mu);
    while (!W.stopping) {
        ws_session *todo = NULL;
        for (int i = 0; i < WS_MAX && !todo; i++)
            if (W.s[i] && W.s[i]->spawn_req)
                todo = W.s[i];
        if (todo) {
            todo->spawn_req = false;
            todo->refs++;
            pthread_mutex_unlock(&W.mu);
            sbx_err e = {0};
            sbx_code rc = spawn_driver(todo, &e);
            pthread_mutex_lock(&W.mu);
            todo->spawn_rc = rc;
            todo->spawn_e = e;
            todo->spawn_done = true;
            pthread_cond_broadcast(&W.cv);
            unref_locked(todo);
            continue;
        }
        if (sbx_now_ms() >= next_sweep) {
            next_sweep = sbx_now_ms() + SWEEP_EVERY_MS;
            int64_t now = sbx_wall_ms();
            for (int i = 0; i < WS_MAX; i++) {
                ws_session *s = W.s[i];
                if (!s || s->spawn_req || atomic_load(&s->starting))
                    continue;
                pthread_mutex_lock(&s->call_mu);
                bool busy = s->busy;
                pthread_mutex_unlock(&s->call_mu);
                bool idle = !busy && s->refs == 1 && now - s->last_used_wall >= s->idle_s * 1000;
                bool old = now - s->created_wall >= s->ttl_s * 1000;
                if (!idle && !old)
                    continue;
                retire_locked(s);
                W.expired++;
                pthread_mutex_unlock(&W.mu);
                finish_retired(s, idle ? "idle" : "ttl");
                pthread_mutex_lock(&W.mu);
            }
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&W.cv, &W.mu, &ts);
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

int ws_init(const ws_opts *o, sbx_err *e) {
    pthread_mutex_lock(&W.mu);
    if (W.up) {
        pthread_mutex_unlock(&W.mu);
        return 0;
    }
    W.o = *o;
    W.o.data_dir = dup_or_empty(o->data_dir);
    W.o.python = o->python ? strdup(o->python) : NULL;
    W.o.wheelhouse = dup_or_empty(o->wheelhouse);
    W.o.index_url = dup_or_empty(o->index_url);
    W.o.envp = NULL;
    if (W.o.max_sessions > WS_MAX)
        W.o.max_sessions = WS_MAX;
    size_t n = 0;
    while (o->envp && o->envp[n])
        n++;
    W.envp = calloc(n + 2, sizeof *W.envp);
    for (size_t i = 0; W.envp && i < n; i++)
        W.envp[i] = strdup(o->envp[i]);
    sbx_cond_init_mono(&W.cv);
    W.stopping = false;
    int rc = pthread_create(&W.thread, NULL, manager, NULL);
    W.up = rc == 0;
    pthread_mutex_unlock(&W.mu);
    if (rc != 0)
        return sbx_fail(e, SBX_EINTERNAL, "python sessions: cannot start the thread"), -1;
    return 0;
}

void ws_shutdown(void) {
    pthread_mutex_lock(&W.mu);
    if (!W.up) {
        pthread_mutex_unlock(&W.mu);
        return;
    }
    W.stopping = true;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(W.thread, NULL);
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX; i++) {
        ws_session *s = W.s[i];
        if (!s)
            continue;
        retire_locked(s);
        pthread_mutex_unlock(&W.mu);
        finish_retired(s, "shutdown");
        pthread_mutex_lock(&W.mu);
    }
    W.up = false;
    pthread_mutex_unlock(&W.mu);
}

ws_session *ws_get(const char *id, const char *viewer, sbx_err *e) {
    ws_session *found = NULL;
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX && !found && id; i++) {
        ws_session *s = W.s[i];
        if (s && !s->gone && !strcmp(s->id, id) && (!viewer || !strcmp(s->owner, viewer)))
            found = s;
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&W.mu);
    if (!found)
        sbx_fail(e, SBX_ENOTFOUND, "no Python session '%s'", id ? id : "");
    return found;
}

void ws_done(ws_session *s) {
    if (!s)
        return;
    pthread_mutex_lock(&W.mu);
    s->last_used_wall = sbx_wall_ms();
    unref_locked(s);
    pthread_mutex_unlock(&W.mu);
}

int ws_workdir_fd(const ws_session *s) {
    return s->workfd;
}

const char *ws_workdir(const ws_session *s) {
    return s->work;
}

const char *ws_id(const ws_session *s) {
    return s->id;
}

void ws_stats_get(ws_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX; i++)
        if (W.s[i] && !W.s[i]->gone)
            out->live++;
    out->created = W.created;
    out->expired = W.expired;
    out->restarted = W.restarted;
    pthread_mutex_unlock(&W.mu);
}

cJSON *ws_health(void) {
    ws_stats st;
    ws_stats_get(&st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "live", (double)st.live);
    cJSON_AddNumberToObject(o, "max", (double)W.o.max_sessions);
    return o;
}

/* NAME: "value" pairs: names of letters, digits and '_' (not first a digit), string values
 * without NUL; at most ENV_MAX. */
static sbx_code check_env(const cJSON *env, const char *field, sbx_err *e) {
    if (!env)
        return SBX_OK;
    if (!cJSON_IsObject(env))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be an object of NAME: \"value\"", field);
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, env) {
        const char *k = v->string;
        bool ok = k && *k && !isdigit((unsigned char)*k) && strlen(k) < 128;
        for (const char *p = k; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            return sbx_fail(e, SBX_EINVAL, "field '%s': '%s' is not a variable name", field,
                            k ? k : "");
        if (!cJSON_IsString(v) || strlen(v->valuestring) > 32768)
            return sbx_fail(e, SBX_EINVAL, "field '%s': the value of '%s' must be a string", field,
                            k);
        if (++n > ENV_MAX)
            return sbx_fail(e, SBX_EINVAL, "field '%s': at most %d variables", field, ENV_MAX);
    }
    return SBX_OK;
}

sbx_code ws_create(const ws_create_req *rq, const char *owner, cJSON **out, sbx_err *e) {
    if (!W.up || !W.o.python)
        return sbx_fail(e, SBX_EUNAVAIL,
                        "no Python interpreter is installed (set PYTHON_PATH or install python3)");
    if (sandbox_check(e) != SBX_OK)
        return SBX_EUNAVAIL;
    if (check_env(rq->env, "env", e) != SBX_OK)
        return SBX_EINVAL;
    int64_t ttl = rq->ttl_s > 0 ? rq->ttl_s : W.o.ttl_s;
    int64_t idle = rq->idle_timeout_s > 0 ? rq->idle_timeout_s : W.o.idle_timeout_s;
    if (ttl > W.o.ttl_s)
        return sbx_fail(e, SBX_EINVAL, "field 'ttlS' must be at most %lld (PYTHON_TTL_S)",
                        (long long)W.o.ttl_s);
    if (idle > ttl)
        idle = ttl;
    ws_session *s = calloc(1, sizeof *s);
    if (!s)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    sbx_random_id(s->id);
    snprintf(s->owner, sizeof s->owner, "%s", owner ? owner : "");
    snprintf(s->dir, sizeof s->dir, "%s/runs/%s", W.o.data_dir, s->id);
    snprintf(s->work, sizeof s->work, "%s/work", s->dir);
    snprintf(s->tmp, sizeof s->tmp, "%s/tmp", s->dir);
    s->workfd = s->sock = -1;
    s->refs = 2; /* the registry's and ours */
    s->created_wall = s->last_used_wall = sbx_wall_ms();
    s->idle_s = idle;
    s->ttl_s = ttl;
    pthread_mutex_init(&s->call_mu, NULL);
    sbx_cond_init_mono(&s->call_cv);
    s->busy = true; /* until it answers */
    atomic_store(&s->starting, true);
    char *env_text = rq->env ? cJSON_PrintUnformatted(rq->env) : strdup("{}");
    s->env_json = env_text;
    if (!s->env_json) {
        free(s);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    if (mkdir(s->dir, 0711) < 0 || mkdir(s->work, 0700) < 0 || mkdir(s->tmp, 0700) < 0 ||
        (s->workfd = open(s->work, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        sbx_fail_errno(e, errno, "cannot create the session's directory under DATA_DIR");
        sbx_rmtree(s->dir);
        if (s->workfd >= 0)
            close(s->workfd);
        free(s->env_json);
        free(s);
        return e ? e->code : SBX_EINTERNAL;
    }
    pthread_mutex_lock(&W.mu);
    int live = 0, slot = -1;
    for (int i = 0; i < WS_MAX; i++) {
        if (W.s[i])
            live++;
        else if (slot < 0)
            slot = i;
    }
    sbx_code rc = SBX_OK;
    if (W.stopping)
        rc = sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    else if (live >= W.o.max_sessions || slot < 0) {
        rc =
            sbx_fail(e, SBX_ETOOMANY,
                     "%d Python sessions are live, the most PYTHON_MAX_SESSIONS allows; delete one "
                     "or wait for one to expire",
                     live);
        if (e)
            e->retry_after = 5;
    } else {
        W.s[slot] = s;
    }
    pthread_mutex_unlock(&W.mu);
    if (rc != SBX_OK) {
        sbx_rmtree(s->dir);
        s->refs = 1;
        pthread_mutex_lock(&W.mu);
        s->gone = true;
        unref_locked(s);
        pthread_mutex_unlock(&W.mu);
        return rc;
    }
    rc = respawn(s, e);
    if (rc != SBX_OK) {
        pthread_mutex_lock(&W.mu);
        retire_locked(s);
        pthread_mutex_unlock(&W.mu);
        pthread_mutex_lock(&s->call_mu);
        s->busy = false;
        pthread_mutex_unlock(&s->call_mu);
        finish_retired(s, "failed to start");
        ws_done(s);
        return rc;
    }
    pthread_mutex_lock(&W.mu);
    W.created++;
    pthread_mutex_unlock(&W.mu);
    pthread_mutex_lock(&s->call_mu);
    s->busy = false;
    pthread_cond_broadcast(&s->call_cv);
    pthread_mutex_unlock(&s->call_mu);
    cJSON *o = cJSON_CreateObject();
    char ts[64];
    cJSON_AddStringToObject(o, "sessionId", s->id);
    iso_time(s->created_wall, ts);
    cJSON_AddStringToObject(o, "createdAt", ts);
    iso_time(s->created_wall + s->ttl_s * 1000, ts);
    cJSON_AddStringToObject(o, "expiresAt", ts);
    LOG_I("python", "session=%s created for %s (idle %llds, ttl %llds)", s->id, s->owner,
          (long long)idle, (long long)ttl);
    ws_done(s);
    *out = o;
    return SBX_OK;
}

/* ---- memory and CPU of a session's processes (/proc, outer pids) ---- */

typedef struct proc_sum {
    int64_t uss, pss, cpu_ticks;
    int n;
} proc_sum;

static int64_t field_kb(const char *text, const char *name) {
    const char *p = strstr(text, name);
    return p ? strtoll(p + strlen(name), NULL, 10) : 0;
}

static void add_proc(pid_t pid, proc_sum *sum, int depth) {
    char path[96];
    if (depth > 16 || sum->n > 4096)
        return;
    sum->n++;
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    char *t = sbx_read_file(path, 8192, NULL);
    if (t) {
        sum->uss += (field_kb(t, "\nPrivate_Clean:") + field_kb(t, "\nPrivate_Dirty:")) * 1024;
        sum->pss += field_kb(t, "\nPss:") * 1024;
        free(t);
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((t = sbx_read_file(path, 4096, NULL))) {
        char *p = strrchr(t, ')');
        long long v[4] = {0};
        /* after ')': state(3) ppid ... utime(14) stime(15) cutime(16) cstime(17) */
        for (int field = 3; p && field < 14; field++)
            p = strchr(p + 1, ' ');
        if (p && sscanf(p + 1, "%lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3]) == 4)
            sum->cpu_ticks += v[0] + v[1] + v[2] + v[3];
        free(t);
    }
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char cp[320];
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", (int)pid, de->d_name);
        char *kids = sbx_read_file(cp, 65536, NULL);
        for (char *k = kids, *end; k && *k; k = end) {
            long c = strtol(k, &end, 10);
            if (end == k)
                break;
            if (c > 0)
                add_proc((pid_t)c, sum, depth + 1);
        }
        free(kids);
    }
    closedir(d);
}

cJSON *ws_describe(ws_session *s) {
    cJSON *o = cJSON_CreateObject();
    char ts[64];
    pthread_mutex_lock(&W.mu);
    int64_t created = s->created_wall, used = s->last_used_wall, ttl = s->ttl_s;
    bool gone = s->gone;
    pthread_mutex_unlock(&W.mu);
    pthread_mutex_lock(&s->call_mu);
    bool busy = s->busy, dead = s->dead;
    pthread_mutex_unlock(&s->call_mu);
    cJSON_AddStringToObject(o, "sessionId", s->id);
    iso_time(created, ts);
    cJSON_AddStringToObject(o, "createdAt", ts);
    iso_time(used, ts);
    cJSON_AddStringToObject(o, "lastUsedAt", ts);
    iso_time(created + ttl * 1000, ts);
    cJSON_AddStringToObject(o, "expiresAt", ts);
    cJSON_AddNumberToObject(o, "executionCount", (double)atomic_load(&s->exec_count));
    proc_sum sum = {0};
    int pid = atomic_load(&s->pid);
    if (pid > 0)
        add_proc(pid, &sum, 0);
    cJSON_AddNumberToObject(o, "memoryBytes", (double)sum.uss);
    cJSON_AddNumberToObject(o, "memoryPssBytes", (double)sum.pss);
    long hz = sysconf(_SC_CLK_TCK);
    cJSON_AddNumberToObject(o, "cpuMs", (double)(sum.cpu_ticks * 1000 / (hz > 0 ? hz : 100)));
    cJSON_AddNumberToObject(o, "processes", sum.n);
    const char *state = gone                        ? "dead"
                        : atomic_load(&s->starting) ? "starting"
                        : dead                      ? "dead"
                        : busy                      ? "busy"
                                                    : "idle";
    cJSON_AddStringToObject(o, "state", state);
    return o;
}

cJSON *ws_list(const char *viewer) {
    ws_session *mine[WS_MAX];
    int n = 0;
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX; i++) {
        ws_session *s = W.s[i];
        if (s && !s->gone && (!viewer || !strcmp(s->owner, viewer))) {
            s->refs++;
            mine[n++] = s;
        }
    }
    pthread_mutex_unlock(&W.mu);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = ws_describe(mine[i]);
        if (!viewer)
            cJSON_AddStringToObject(o, "owner", mine[i]->owner);
        cJSON_AddItemToArray(arr, o);
        pthread_mutex_lock(&W.mu);
        unref_locked(mine[i]);
        pthread_mutex_unlock(&W.mu);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "sessions", arr);
    return r;
}

sbx_code ws_delete(const char *id, const char *viewer, sbx_err *e) {
    ws_session *s = ws_get(id, viewer, e);
    if (!s)
        return SBX_ENOTFOUND;
    pthread_mutex_lock(&W.mu);
    bool mine = retire_locked(s);
    pthread_mutex_unlock(&W.mu);
    if (mine)
        finish_retired(s, "deleted");
    pthread_mutex_lock(&W.mu);
    unref_locked(s);
    pthread_mutex_unlock(&W.mu);
    return SBX_OK;
}

/* ---- calls ---- */

/* Become the session's one caller: wait up to PYTHON_BUSY_WAIT_MS for the one before; start
 * its driver again when it is gone (SBX_ERESTARTED: that call does not run). */
static sbx_code begin_call(ws_session *s, sbx_err *e) {
    int64_t deadline = sbx_now_ms() + W.o.busy_wait_ms;
    pthread_mutex_lock(&s->call_mu);
    while (s->busy) {
        struct timespec ts;
        int64_t left = deadline - sbx_now_ms();
        if (left <= 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->call_cv, &s->call_mu, &ts);
    }
    if (s->busy) {
        pthread_mutex_unlock(&s->call_mu);
        pthread_mutex_lock(&W.mu);
        bool gone = s->gone;
        pthread_mutex_unlock(&W.mu);
        if (gone)
            return sbx_fail(e, SBX_ENOTFOUND, "no Python session '%s'", s->id);
        sbx_fail(e, SBX_EINUSE,
                 "session %s is running another call (calls to one session run one at a time); "
                 "it stayed busy for %lld ms",
                 s->id, (long long)W.o.busy_wait_ms);
        if (e)
            e->retry_after = 1;
        return SBX_EINUSE;
    }
    s->busy = true;
    pthread_mutex_unlock(&s->call_mu);
    pthread_mutex_lock(&W.mu);
    s->last_used_wall = sbx_wall_ms();
    pthread_mutex_unlock(&W.mu);
    if (s->dead) {
        sbx_err re = {0};
        pthread_mutex_lock(&W.mu);
        W.restarted++;
        pthread_mutex_unlock(&W.mu);
        if (respawn(s, &re) != SBX_OK) {
            *e = re;
        } else {
            sbx_fail(e, SBX_ERESTARTED,
                     "the session's interpreter had died and was restarted empty: its "
                     "variables, imports and definitions were lost; the call did not run, "
                     "send it again");
        }
        pthread_mutex_lock(&s->call_mu);
        s->busy = false;
        pthread_cond_broadcast(&s->call_cv);
        pthread_mutex_unlock(&s->call_mu);
        return e->code;
    }
    return SBX_OK;
}

static void end_call(ws_session *s) {
    pthread_mutex_lock(&W.mu);
    s->last_used_wall = sbx_wall_ms();
    pthread_mutex_unlock(&W.mu);
    pthread_mutex_lock(&s->call_mu);
    s->busy = false;
    pthread_cond_broadcast(&s->call_cv);
    pthread_mutex_unlock(&s->call_mu);
}

/* The driver is gone (or wedged): kill what is left, and start it again for the next call.
 * The sandbox's own explanation (a disk quota, say) is added to e's message. */
static void driver_lost(ws_session *s, sbx_err *e) {
    if (s->child) {
        int code, sig;
        sandbox_kill(s->child);
        sandbox_wait(s->child, sbx_now_ms() + 2000, &code, &sig);
        char *why = sandbox_explain(s->child);
        size_t n = e ? strlen(e->msg) : 0;
        if (e && why && *why && n + 4 < sizeof e->msg)
            snprintf(e->msg + n, sizeof e->msg - n, "\n%s", why);
        free(why);
    }
    pthread_mutex_lock(&W.mu);
    W.restarted++;
    bool gone = s->gone;
    pthread_mutex_unlock(&W.mu);
    s->dead = true;
    if (!gone) {
        sbx_err re = {0};
        if (respawn(s, &re) != SBX_OK)
            LOG_W("python", "session=%s: restart failed: %s", s->id, re.msg);
    }
}

typedef struct call {
    ws_session *s;
    char id[24];
    sbx_buf out, err;
    ws_output_fn fn;
    void *ctx;
    bool client_gone;
    cJSON *end; /* the frame that ended it */
    int nviol;  /* the sandbox's refusals before the call */
    int how;    /* 1 its own end, 2 restarted/died, -1 the driver was lost */
} call;

static void take_out(call *c, cJSON *f) {
    int which = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(f, "s"));
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(f, "d"));
    if (!d || (which != 1 && which != 2))
        return;
    size_t len = strlen(d);
    sbx_buf *b = which == 1 ? &c->out : &c->err;
    size_t room = b->max - b->len;
    sbx_buf_add(b, d, len);
    if (c->fn && !c->client_gone && room && c->fn(c->ctx, which, d, len < room ? len : room) < 0)
        c->client_gone = true;
}

/* Frames until the call ends: its own `end_ev` (how 1), "died"/"restarted" for it (how 2), the
 * driver lost (how -1). At `deadline` (or when the client leaves) `stop_op` goes to the driver;
 * then, `grace_ms` later, "restart"; then, WEDGED_WAIT_MS later, the driver counts as lost.
 * Returns whether the deadline passed. */
static bool converse(call *c, const char *end_ev, int64_t deadline, const char *stop_op,
                     int64_t grace_ms) {
    ws_session *s = c->s;
    int stage = 0; /* 1 interrupted, 2 restart sent */
    bool timed_out = false;
    int64_t next = deadline, last_sign = sbx_now_ms();
    for (;;) {
        int64_t now = sbx_now_ms();
        if (c->fn && !c->client_gone && now - last_sign >= 1000) {
            last_sign = now;
            if (c->fn(c->ctx, 3, "", 0) < 0)
                c->client_gone = true;
        }
        if (now >= next || (c->client_gone && stage == 0)) {
            if (stage == 2) {
                LOG_W("python", "session=%s: the driver did not answer; killing it", s->id);
                c->how = -1;
                return timed_out;
            }
            bool interrupt = !strcmp(stop_op, "interrupt");
            cJSON *rq = cJSON_CreateObject();
            cJSON_AddStringToObject(rq, "id", c->id);
            if (stage == 0) {
                timed_out = !c->client_gone;
                cJSON_AddStringToObject(rq, "op", stop_op);
            } else {
                cJSON_AddStringToObject(rq, "op", "restart");
            }
            stage = stage == 0 && interrupt ? 1 : 2;
            next = sbx_now_ms() + (stage == 1 ? grace_ms : WEDGED_WAIT_MS);
            int w = send_frame(s, rq);
            cJSON_Delete(rq);
            if (w < 0) {
                c->how = -1;
                return timed_out;
            }
        }
        cJSON *f = NULL;
        int64_t until = next;
        if (c->fn && until > sbx_now_ms() + 1000)
            until = sbx_now_ms() + 1000;
        int r = read_frame(s, until, &f);
        if (r < 0) {
            c->how = -1;
            return timed_out;
        }
        if (r == 0)
            continue;
        const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(f, "ev"));
        const char *fid = cJSON_GetStringValue(cJSON_GetObjectItem(f, "id"));
        bool ours = fid && !strcmp(fid, c->id);
        if (ev && !strcmp(ev, "died") && !ours) { /* between calls: counted, not ours */
            pthread_mutex_lock(&W.mu);
            W.restarted++;
            pthread_mutex_unlock(&W.mu);
        }
        if (!ev || !ours) {
            cJSON_Delete(f);
            continue;
        }
        if (!strcmp(ev, "out")) {
            take_out(c, f);
            cJSON_Delete(f);
            continue;
        }
        if (!strcmp(ev, end_ev) || !strcmp(ev, "died") || !strcmp(ev, "restarted")) {
            c->how = !strcmp(ev, end_ev) ? 1 : 2;
            c->end = f;
            return timed_out;
        }
        cJSON_Delete(f);
    }
}

static void add_capped(cJSON *res, const char *field, sbx_buf *b, bool cut, const char *extra) {
    sbx_buf full;
    sbx_buf_init(&full, b->len + 512);
    sbx_buf_add(&full, b->data ? b->data : "", b->len);
    if (b->truncated || cut)
        sbx_buf_addf(&full, "\n[sandboxd: %s truncated at %zu bytes (EXEC_OUTPUT_BYTES)]\n", field,
                     b->max);
    if (extra)
        sbx_buf_addf(&full, "%s%s", full.len && full.data[full.len - 1] != '\n' ? "\n" : "", extra);
    cJSON_AddStringToObject(res, field, full.data ? full.data : "");
    sbx_buf_free(&full);
}

static bool cut_of(cJSON *end, int i) {
    return cJSON_IsTrue(cJSON_GetArrayItem(cJSON_GetObjectItem(end, "cut"), i));
}

static void call_init(call *c, ws_session *s, ws_output_fn fn, void *ctx) {
    memset(c, 0, sizeof *c);
    c->s = s;
    c->fn = fn;
    c->ctx = ctx;
    snprintf(c->id, sizeof c->id, "c%llu", (unsigned long long)++s->seq);
    sbx_buf_init(&c->out, (size_t)W.o.output_bytes);
    sbx_buf_init(&c->err, (size_t)W.o.output_bytes);
    cJSON *v = s->child ? sandbox_violations(s->child) : NULL;
    c->nviol = cJSON_GetArraySize(v);
    cJSON_Delete(v);
}

/* The refusals the sandbox saw during the call (the supervisor's, as /execute reports them),
 * and when there are any, its "sandbox: ..." lines for stderr (malloc'd, or NULL). */
static cJSON *call_violations(call *c, char **explain) {
    cJSON *all = c->s->child ? sandbox_violations(c->s->child) : cJSON_CreateArray();
    cJSON *mine = cJSON_CreateArray();
    int n = cJSON_GetArraySize(all);
    for (int i = c->nviol; i < n; i++)
        cJSON_AddItemToArray(mine, cJSON_Duplicate(cJSON_GetArrayItem(all, i), 1));
    cJSON_Delete(all);
    *explain = n > c->nviol && c->s->child ? sandbox_explain(c->s->child) : NULL;
    return mine;
}

/* stderr with the call's notes: a timeout's, then the sandbox's refusals. */
static char *notes(const char *timeout_note, const char *explain) {
    sbx_buf b;
    sbx_buf_init(&b, 16384);
    if (timeout_note)
        sbx_buf_addf(&b, "%s", timeout_note);
    if (explain && *explain)
        sbx_buf_addf(&b, "%s%s", explain, explain[strlen(explain) - 1] == '\n' ? "" : "\n");
    char *t = b.len ? sbx_buf_take(&b, NULL) : NULL;
    sbx_buf_free(&b);
    return t;
}

static void call_free(call *c) {
    sbx_buf_free(&c->out);
    sbx_buf_free(&c->err);
    cJSON_Delete(c->end);
}

/* The answer when the call ended by a restart of the interpreter (how 2, or -1). */
static void restarted_error(call *c, bool timed_out, int64_t timeout_ms, sbx_err *e) {
    const char *ev = c->end ? cJSON_GetStringValue(cJSON_GetObjectItem(c->end, "ev")) : NULL;
    char why[160];
    if (ev && !strcmp(ev, "died")) {
        cJSON *sig = cJSON_GetObjectItem(c->end, "signal");
        cJSON *code = cJSON_GetObjectItem(c->end, "exitCode");
        if (cJSON_IsNumber(sig))
            snprintf(why, sizeof why,
                     "the interpreter was killed by signal %d (%s; the memory "
                     "limit, or a signal it got)",
                     sig->valueint,
                     sigabbrev_np(sig->valueint) ? sigabbrev_np(sig->valueint) : "?");
        else
            snprintf(why, sizeof why, "the interpreter exited with code %d",
                     cJSON_IsNumber(code) ? code->valueint : -1);
    } else if (timed_out) {
        snprintf(why, sizeof why,
                 "the code ran past timeoutMs (%lld ms) and ignored the interrupt "
                 "(KeyboardInterrupt) for %lld ms, so the interpreter was killed",
                 (long long)timeout_ms, (long long)W.o.interrupt_grace_ms);
    } else if (c->client_gone) {
        snprintf(why, sizeof why, "the streaming client left and the code ignored the interrupt");
    } else {
        snprintf(why, sizeof why, "the session's sandbox ended under the call");
    }
    sbx_fail(e, SBX_ERESTARTED,
             "%s; the session restarted empty: its variables, imports and definitions were lost "
             "(files in its work directory are kept)",
             why);
}

cJSON *ws_execute(ws_session *s, const char *code, int64_t timeout_ms, ws_output_fn fn, void *ctx,
                  sbx_err *e) {
    if (begin_call(s, e) != SBX_OK)
        return NULL;
    int64_t t0 = sbx_now_ms();
    call c;
    call_init(&c, s, fn, ctx);
    cJSON *rq = cJSON_CreateObject();
    cJSON_AddStringToObject(rq, "op", "exec");
    cJSON_AddStringToObject(rq, "id", c.id);
    cJSON_AddStringToObject(rq, "code", code);
    cJSON_AddNumberToObject(rq, "cap", (double)W.o.output_bytes);
    int w = send_frame(s, rq);
    cJSON_Delete(rq);
    if (fn && fn(ctx, 0, s->id, strlen(s->id)) < 0)
        c.client_gone = true;
    bool timed_out = false;
    if (w < 0)
        c.how = -1;
    else
        timed_out = converse(&c, "done", t0 + timeout_ms, "interrupt", W.o.interrupt_grace_ms);
    cJSON *res = NULL;
    if (c.how == 1) {
        long long n = atomic_fetch_add(&s->exec_count, 1) + 1;
        res = cJSON_CreateObject();
        add_capped(res, "stdout", &c.out, cut_of(c.end, 0), NULL);
        char note[160];
        snprintf(note, sizeof note,
                 "sandbox: the code ran past timeoutMs (%lld ms) and was interrupted "
                 "(KeyboardInterrupt); the session kept its state\n",
                 (long long)timeout_ms);
        char *explain = NULL;
        cJSON *viol = call_violations(&c, &explain);
        char *extra = notes(timed_out ? note : NULL, explain);
        add_capped(res, "stderr", &c.err, cut_of(c.end, 1), extra);
        free(extra);
        free(explain);
        const char *keys[] = {"result", "error", "images", "display"};
        for (int i = 0; i < 4; i++) {
            cJSON *v = cJSON_DetachItemFromObject(c.end, keys[i]);
            cJSON_AddItemToObject(res, keys[i],
                                  v ? v : (i < 2 ? cJSON_CreateNull() : cJSON_CreateArray()));
        }
        cJSON_AddNumberToObject(res, "executionCount", (double)n);
        cJSON_AddNumberToObject(res, "durationMs", (double)(sbx_now_ms() - t0));
        cJSON_AddBoolToObject(res, "timedOut", timed_out);
        cJSON_AddItemToObject(res, "violations", viol);
        cJSON_AddBoolToObject(res, "truncated",
                              c.out.truncated || c.err.truncated || cut_of(c.end, 0) ||
                                  cut_of(c.end, 1));
    } else {
        if (c.how == 2) {
            pthread_mutex_lock(&W.mu);
            W.restarted++;
            pthread_mutex_unlock(&W.mu);
        }
        restarted_error(&c, timed_out, timeout_ms, e);
        if (c.how == -1)
            driver_lost(s, e);
    }
    LOG_I("python", "session=%s execute %s in %lld ms", s->id,
          res ? (timed_out ? "interrupted" : "done") : "restarted", (long long)(sbx_now_ms() - t0));
    call_free(&c);
    end_call(s);
    return res;
}

/* A path relative to the work dir: no "..", not absolute, no NUL (the JSON string has none). */
static bool rel_path_ok(const char *p) {
    if (!p || *p == '/' || strlen(p) > 1024)
        return false;
    for (const char *q = p; *q;) {
        const char *end = strchr(q, '/');
        size_t n = end ? (size_t)(end - q) : strlen(q);
        if (n == 2 && !strncmp(q, "..", 2))
            return false;
        q += n;
        while (*q == '/')
            q++;
    }
    return true;
}

/* Copy the wheels of the host directory `dir` (the operator's PYTHON_WHEELHOUSE) into the
 * session, as files the driver writes in its own WS_WHEELS_DIR: the server never writes where
 * the sandboxed code can plant links. At most WHEELS_MAX bytes in all. 0, or -1 with `e`. */
#define WHEELS_MAX  (512 << 20)
#define WHEEL_CHUNK (1 << 20)
static int send_wheels(ws_session *s, const char *dir, sbx_err *e) {
    DIR *d = opendir(dir);
    if (!d)
        return sbx_fail_errno(e, errno, "cannot read PYTHON_WHEELHOUSE %s", dir), -1;
    size_t total = 0;
    int rc = 0, files = 0;
    char *chunk = malloc(WHEEL_CHUNK), *b64 = malloc(SBX_B64_ENCODED_LEN(WHEEL_CHUNK) + 1);
    struct dirent *de;
    while (rc == 0 && chunk && b64 && (de = readdir(d))) {
        const char *n = de->d_name;
        size_t nl = strlen(n);
        bool wheel = (nl > 4 && !strcmp(n + nl - 4, ".whl")) ||
                     (nl > 7 && !strcmp(n + nl - 7, ".tar.gz")) ||
                     (nl > 4 && !strcmp(n + nl - 4, ".zip"));
        if (n[0] == '.' || !wheel)
            continue;
        int fd = openat(dirfd(d), n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        bool first = true;
        for (;;) {
            ssize_t got = read(fd, chunk, WHEEL_CHUNK);
            if (got < 0 || (total += (size_t)(got > 0 ? got : 0)) > WHEELS_MAX) {
                rc = got < 0 ? sbx_fail_errno(e, errno, "cannot read %s", n)
                             : sbx_fail(e, SBX_ETOOLARGE,
                                        "PYTHON_WHEELHOUSE holds more than %d MiB of packages",
                                        WHEELS_MAX >> 20);
                rc = -1;
                break;
            }
            if (got == 0 && !first)
                break;
            sbx_b64_encode(chunk, (size_t)got, b64);
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "op", "put");
            cJSON_AddStringToObject(f, "name", n);
            cJSON_AddStringToObject(f, "data", b64);
            cJSON_AddBoolToObject(f, "append", !first);
            int w = send_frame(s, f);
            cJSON_Delete(f);
            if (w < 0) {
                rc = sbx_fail(e, SBX_EINTERNAL, "the session's driver did not take the packages");
                rc = -1;
                break;
            }
            first = false;
            if (got == 0)
                break;
        }
        close(fd);
        files++;
    }
    closedir(d);
    free(chunk);
    free(b64);
    if (rc == 0 && files == 0)
        return sbx_fail(e, SBX_EUNAVAIL, "PYTHON_WHEELHOUSE %s holds no packages", dir), -1;
    return rc;
}

/* Run argv in the session (the driver starts it in its own process group); with `wheels`, that
 * directory's packages are copied in first. */
static cJSON *run_command(ws_session *s, cJSON *argv, const char *cwd, const cJSON *env,
                          int64_t timeout_ms, ws_output_fn fn, void *ctx, const char *wheels,
                          sbx_err *e) {
    if (begin_call(s, e) != SBX_OK) {
        cJSON_Delete(argv);
        return NULL;
    }
    if (wheels && send_wheels(s, wheels, e) != 0) {
        cJSON_Delete(argv);
        end_call(s);
        return NULL;
    }
    int64_t t0 = sbx_now_ms();
    call c;
    call_init(&c, s, fn, ctx);
    cJSON *rq = cJSON_CreateObject();
    cJSON_AddStringToObject(rq, "op", "cmd");
    cJSON_AddStringToObject(rq, "id", c.id);
    cJSON_AddItemToObject(rq, "argv", argv);
    if (cwd && *cwd)
        cJSON_AddStringToObject(rq, "cwd", cwd);
    if (env)
        cJSON_AddItemToObject(rq, "env", cJSON_Duplicate(env, 1));
    cJSON_AddNumberToObject(rq, "cap", (double)W.o.output_bytes);
    int w = send_frame(s, rq);
    cJSON_Delete(rq);
    if (fn && fn(ctx, 0, s->id, strlen(s->id)) < 0)
        c.client_gone = true;
    bool timed_out = false;
    if (w < 0)
        c.how = -1;
    else
        timed_out = converse(&c, "cmd_done", t0 + timeout_ms, "cmdkill", 0);
    cJSON *res = NULL;
    if (c.how == 1) {
        res = cJSON_CreateObject();
        cJSON *code = cJSON_GetObjectItem(c.end, "exitCode");
        cJSON *sig = cJSON_GetObjectItem(c.end, "signal");
        if (cJSON_IsNumber(code) && !timed_out)
            cJSON_AddNumberToObject(res, "exitCode", code->valuedouble);
        else
            cJSON_AddNullToObject(res, "exitCode");
        add_capped(res, "stdout", &c.out, cut_of(c.end, 0), NULL);
        char note[128];
        snprintf(note, sizeof note,
                 "sandbox: the command ran past timeoutMs (%lld ms); its processes were killed\n",
                 (long long)timeout_ms);
        char *explain = NULL;
        cJSON *viol = call_violations(&c, &explain);
        char *extra = notes(timed_out ? note : NULL, explain);
        add_capped(res, "stderr", &c.err, cut_of(c.end, 1), extra);
        free(extra);
        free(explain);
        cJSON_AddNumberToObject(res, "durationMs", (double)(sbx_now_ms() - t0));
        cJSON_AddBoolToObject(res, "timedOut", timed_out);
        cJSON_AddItemToObject(res, "violations", viol);
        cJSON_AddBoolToObject(res, "truncated",
                              c.out.truncated || c.err.truncated || cut_of(c.end, 0) ||
                                  cut_of(c.end, 1));
        if (cJSON_IsNumber(sig) && !timed_out)
            cJSON_AddStringToObject(
                res, "signal", sigabbrev_np(sig->valueint) ? sigabbrev_np(sig->valueint) : "?");
        else
            cJSON_AddNullToObject(res, "signal");
    } else {
        sbx_fail(e, SBX_ERESTARTED,
                 "the session's sandbox ended under the command; the session restarted empty: "
                 "its variables, imports and definitions were lost (files in its work directory "
                 "are kept)");
        driver_lost(s, e);
    }
    call_free(&c);
    end_call(s);
    return res;
}

cJSON *ws_command(ws_session *s, const ws_command_req *rq, ws_output_fn fn, void *ctx, sbx_err *e) {
    if (rq->cwd && !rel_path_ok(rq->cwd)) {
        sbx_fail(e, SBX_EINVAL,
                 "field 'cwd' must be a path relative to the work directory, without '..'");
        return NULL;
    }
    if (check_env(rq->env, "env", e) != SBX_OK)
        return NULL;
    cJSON *argv = cJSON_CreateArray();
    cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/sh"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(rq->command));
    return run_command(s, argv, rq->cwd, rq->env, rq->timeout_ms, fn, ctx, NULL, e);
}

/* A requirement pip reads as one: a name (letters, digits, ".", "_", "-"), optional
 * [extras] and version clauses; never an option ("-..."), a path or a URL. */
static bool requirement_ok(const char *r) {
    if (!r || !isalnum((unsigned char)r[0]) || strlen(r) > 200)
        return false;
    for (const char *p = r; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-[],<>=!~*+", *p))
            return false;
    return true;
}

cJSON *ws_packages(ws_session *s, const char *const *pkgs, size_t n, int64_t timeout_ms,
                   sbx_err *e) {
    for (size_t i = 0; i < n; i++)
        if (!requirement_ok(pkgs[i])) {
            sbx_fail(e, SBX_EINVAL,
                     "field 'packages': '%.100s' is not a requirement (a name, optional [extras] "
                     "and version clauses such as ==1.2 or >=1)",
                     pkgs[i] ? pkgs[i] : "");
            return NULL;
        }
    bool wheelhouse = W.o.wheelhouse && *W.o.wheelhouse;
    if (!wheelhouse && !(W.o.index_url && *W.o.index_url)) {
        sbx_fail(e, SBX_EUNAVAIL,
                 "no package source is configured (set PYTHON_WHEELHOUSE or PYTHON_INDEX_URL)");
        return NULL;
    }
    /* pip in the sandbox, into the session's site dir; the copied wheels go once it is done */
    cJSON *argv = cJSON_CreateArray();
    const char *head[] = {"/bin/sh", "-c",
                          "\"$0\" -m pip install --no-cache-dir --disable-pip-version-check "
                          "--no-warn-script-location --target " WS_SITE_DIR " \"$@\"; rc=$?; "
                          "rm -rf " WS_WHEELS_DIR "; exit $rc",
                          W.o.python};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(head[i]));
    if (wheelhouse) {
        cJSON_AddItemToArray(argv, cJSON_CreateString("--no-index"));
        cJSON_AddItemToArray(argv, cJSON_CreateString("--find-links"));
        cJSON_AddItemToArray(argv, cJSON_CreateString(WS_WHEELS_DIR));
    } else {
        cJSON_AddItemToArray(argv, cJSON_CreateString("--index-url"));
        cJSON_AddItemToArray(argv, cJSON_CreateString(W.o.index_url));
    }
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(pkgs[i]));
    cJSON *res = run_command(s, argv, NULL, NULL, timeout_ms, NULL, NULL,
                             wheelhouse ? W.o.wheelhouse : NULL, e);
    if (!res)
        return NULL;
    cJSON *code = cJSON_GetObjectItem(res, "exitCode");
    const char *out = cJSON_GetStringValue(cJSON_GetObjectItem(res, "stdout"));
    const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(res, "stderr"));
    if (!cJSON_IsNumber(code) || code->valueint != 0) {
        size_t el = err ? strlen(err) : 0;
        sbx_fail(e, cJSON_IsTrue(cJSON_GetObjectItem(res, "timedOut")) ? SBX_ETIMEOUT : SBX_EINVAL,
                 "pip could not install the packages: %s",
                 err ? err + (el > 380 ? el - 380 : 0) : "");
        cJSON_Delete(res);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *installed = cJSON_AddArrayToObject(o, "installed");
    const char *line = out ? strstr(out, "Successfully installed ") : NULL;
    if (line) {
        line += strlen("Successfully installed ");
        const char *end = strchr(line, '\n');
        char *names = strndup(line, end ? (size_t)(end - line) : strlen(line));
        for (char *save = NULL, *t = names ? strtok_r(names, " ", &save) : NULL; t;
             t = strtok_r(NULL, " ", &save))
            cJSON_AddItemToArray(installed, cJSON_CreateString(t));
        free(names);
    }
    cJSON_AddStringToObject(o, "output", out ? out : "");
    cJSON_Delete(res);
    return o;
}
