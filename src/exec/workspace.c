/* workspace.c -- Python sessions (see workspace.h): the registry, the thread that spawns every
 * session's sandbox (a sandbox dies with the thread that spawned it) and expires idle ones,
 * creation, description and deletion. The calls are in workspace_call.c; workspace_int.h is
 * what the two share (and says which lock guards what).
 */
#define _GNU_SOURCE
#include "workspace_int.h"

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

#include "../common/egress_gateway.h"
#include "../common/log.h"
#include "../common/util.h"
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

ws_globals wsi = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- spawning (the manager thread only: a sandbox dies with the thread that spawned it) ---- */

static void close_driver(ws_session *s) {
    if (s->child) {
        sandbox_kill(s->child);
        sandbox_free(s->child);
        s->child = NULL;
    }
    if (s->sock >= 0)
        close(s->sock);
    if (s->errfd >= 0)
        close(s->errfd);
    s->sock = s->errfd = -1;
    s->rlen = 0;
    atomic_store(&s->pid, 0);
}

static sbx_code spawn_driver(ws_session *s, sbx_err *e) {
    close_driver(s);
    int sv[2], ep[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return sbx_fail_errno(e, errno, "cannot create the session's socket");
    /* a pipe, not a file: nothing of DATA_DIR shows in the driver's /proc/PID/fd */
    if (pipe2(ep, O_CLOEXEC) != 0) {
        close(sv[0]);
        close(sv[1]);
        return sbx_fail_errno(e, errno, "cannot create the session's pipe");
    }
    int logfd = ep[1];
    fcntl(ep[0], F_SETFL, O_NONBLOCK);
    const char *argv[] = {wsi.o.python, "-c", k_boot, NULL};
    /* with network: the proxy variables after the session's own environment */
    size_t nenv = 0, nnet = 0;
    while (wsi.envp && wsi.envp[nenv])
        nenv++;
    while (s->net && s->net_env && s->net_env[nnet])
        nnet++;
    const char **envp = calloc(nenv + nnet + 1, sizeof *envp);
    if (!envp) {
        close(sv[0]);
        close(sv[1]);
        close(ep[0]);
        close(ep[1]);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    for (size_t i = 0; i < nenv; i++)
        envp[i] = wsi.envp[i];
    for (size_t i = 0; i < nnet; i++)
        envp[nenv + i] = s->net_env[i];
    sandbox_spec spec = {.argv = argv,
                         .envp = envp,
                         .work_dir = s->work,
                         .tmp_dir = s->tmp,
                         .stdin_fd = sv[1],
                         .stdout_fd = logfd,
                         .stderr_fd = logfd,
                         .memory_mb = wsi.o.memory_mb,
                         .max_procs = wsi.o.max_procs,
                         .file_size_mb = wsi.o.file_size_mb,
                         .open_files = wsi.o.open_files,
                         .disk_mb = wsi.o.disk_mb,
                         .egress_port = s->net ? s->net_port : 0,
                         .owner_dir = s->dir,
                         .code = k_boot,
                         .code_len = sizeof k_boot - 1};
    sbx_code rc = SBX_EUNAVAIL;
    bool via_zygote = false;
    sandbox_zygote door;
    if (wsi.o.zygote && zygote_open(spec.code, &door)) {
        sbx_err ze = {0};
        rc = sandbox_spawn_zygote(&spec, &door, &s->child, &ze);
        via_zygote = rc == SBX_OK;
        if (rc != SBX_OK && rc != SBX_EUNAVAIL && e)
            *e = ze;
    }
    if (rc == SBX_EUNAVAIL)
        rc = sandbox_spawn(&spec, &s->child, e);
    free(envp);
    close(sv[1]);
    close(logfd);
    if (rc != SBX_OK) {
        close(sv[0]);
        close(ep[0]);
        s->child = NULL;
        return rc;
    }
    /* its listener, made in its network namespace, goes to the gateway */
    int lfd = s->child ? sandbox_take_egress_fd(s->child) : -1;
    sbx_err ne = {0};
    if (lfd >= 0 && (!s->net || egress_client_adopt(s->net, lfd, &ne) != SBX_OK))
        LOG_W("python", "session=%s: no network: %s", s->id, s->net ? ne.msg : "no client");
    s->sock = sv[0];
    s->errfd = ep[0];
    s->dead = false;
    atomic_store(&s->pid, (int)sandbox_pid(s->child));
    LOG_I("python", "session=%s: driver started (pid %d, %s)", s->id, (int)sandbox_pid(s->child),
          via_zygote ? "zygote" : "cold");
    return SBX_OK;
}

/* Ask the manager thread to (re)start the session's driver, and wait. The caller is the
 * session's busy caller (or its creator). */
static sbx_code spawn_via_manager(ws_session *s, sbx_err *e) {
    pthread_mutex_lock(&wsi.mu);
    if (wsi.stopping || s->gone) {
        pthread_mutex_unlock(&wsi.mu);
        return sbx_fail(e, SBX_EUNAVAIL, "the session is ending, or the server is shutting down");
    }
    s->spawn_req = true;
    s->spawn_done = false;
    pthread_cond_broadcast(&wsi.cv);
    while (!s->spawn_done && !wsi.stopping)
        pthread_cond_wait(&wsi.cv, &wsi.mu);
    sbx_code rc = s->spawn_done ? s->spawn_rc : SBX_EUNAVAIL;
    if (!s->spawn_done)
        sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    else if (rc != SBX_OK && e)
        *e = s->spawn_e;
    pthread_mutex_unlock(&wsi.mu);
    return rc;
}

/* After a spawn: the driver's source (k_boot reads it), the init frame, then its "ready". */
static sbx_code greet(ws_session *s, sbx_err *e) {
    if (wsi_send_raw_frame(s->sock, sbx_kernel_py, sbx_kernel_py_len) < 0) {
        s->dead = true;
        return sbx_fail(e, SBX_EINTERNAL, "the session's interpreter did not start");
    }
    cJSON *init = cJSON_CreateObject();
    cJSON_AddStringToObject(init, "op", "init");
    cJSON *env = cJSON_Parse(s->env_json ? s->env_json : "{}");
    cJSON_AddItemToObject(init, "env", env ? env : cJSON_CreateObject());
    int rc = wsi_send_frame(s, init);
    cJSON_Delete(init);
    int64_t deadline = sbx_now_ms() + READY_WAIT_MS;
    while (rc == 0) {
        cJSON *f = NULL;
        int r = wsi_read_frame(s, deadline, &f);
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
    char *log = wsi_driver_output(s);
    LOG_W("python", "session=%s: the driver did not start: %s", s->id, *log ? log : "(no output)");
    free(log);
    s->dead = true;
    return sbx_fail(e, SBX_EINTERNAL, "the session's interpreter did not start");
}

char *wsi_driver_output(ws_session *s) {
    char *buf = calloc(1, 2049);
    ssize_t n = buf && s->errfd >= 0 ? read(s->errfd, buf, 2048) : 0;
    if (buf && n > 0)
        buf[n] = 0;
    return buf ? buf : strdup("");
}

sbx_code wsi_respawn(ws_session *s, sbx_err *e) {
    atomic_store(&s->starting, true);
    sbx_code rc = spawn_via_manager(s, e);
    if (rc == SBX_OK)
        rc = greet(s, e);
    atomic_store(&s->starting, false);
    return rc;
}

/* ---- the registry ---- */

/* Drop one reference (wsi.mu held); the last frees the session. Its driver is gone by then
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
    egress_client_free(s->net); /* its processes are gone */
    free(s);
}

/* Take `s` out of the registry (wsi.mu held); false when it was already. The caller then ends
 * it with finish_retired (wsi.mu not held). */
static bool retire_locked(ws_session *s) {
    if (s->gone)
        return false;
    s->gone = true;
    for (int i = 0; i < WS_MAX; i++)
        if (wsi.s[i] == s)
            wsi.s[i] = NULL;
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
    pthread_mutex_lock(&wsi.mu);
    unref_locked(s);
    pthread_mutex_unlock(&wsi.mu);
}

static void *manager(void *arg) {
    (void)arg;
    int64_t next_sweep = sbx_now_ms() + SWEEP_EVERY_MS;
    pthread_mutex_lock(&wsi.mu);
    while (!wsi.stopping) {
        ws_session *todo = NULL;
        for (int i = 0; i < WS_MAX && !todo; i++)
            if (wsi.s[i] && wsi.s[i]->spawn_req)
                todo = wsi.s[i];
        if (todo) {
            todo->spawn_req = false;
            todo->refs++;
            pthread_mutex_unlock(&wsi.mu);
            sbx_err e = {0};
            sbx_code rc = spawn_driver(todo, &e);
            pthread_mutex_lock(&wsi.mu);
            todo->spawn_rc = rc;
            todo->spawn_e = e;
            todo->spawn_done = true;
            pthread_cond_broadcast(&wsi.cv);
            unref_locked(todo);
            continue;
        }
        if (sbx_now_ms() >= next_sweep) {
            next_sweep = sbx_now_ms() + SWEEP_EVERY_MS;
            int64_t now = sbx_wall_ms();
            for (int i = 0; i < WS_MAX; i++) {
                ws_session *s = wsi.s[i];
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
                wsi.expired++;
                pthread_mutex_unlock(&wsi.mu);
                finish_retired(s, idle ? "idle" : "ttl");
                pthread_mutex_lock(&wsi.mu);
            }
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&wsi.cv, &wsi.mu, &ts);
    }
    pthread_mutex_unlock(&wsi.mu);
    return NULL;
}

int ws_init(const ws_opts *o, sbx_err *e) {
    pthread_mutex_lock(&wsi.mu);
    if (wsi.up) {
        pthread_mutex_unlock(&wsi.mu);
        return 0;
    }
    wsi.o = *o;
    wsi.o.data_dir = dup_or_empty(o->data_dir);
    wsi.o.python = o->python ? strdup(o->python) : NULL;
    wsi.o.wheelhouse = dup_or_empty(o->wheelhouse);
    wsi.o.index_url = dup_or_empty(o->index_url);
    wsi.o.envp = NULL;
    if (wsi.o.max_sessions > WS_MAX)
        wsi.o.max_sessions = WS_MAX;
    size_t n = 0;
    while (o->envp && o->envp[n])
        n++;
    wsi.envp = calloc(n + 2, sizeof *wsi.envp);
    for (size_t i = 0; wsi.envp && i < n; i++)
        wsi.envp[i] = strdup(o->envp[i]);
    sbx_cond_init_mono(&wsi.cv);
    wsi.stopping = false;
    int rc = pthread_create(&wsi.thread, NULL, manager, NULL);
    wsi.up = rc == 0;
    pthread_mutex_unlock(&wsi.mu);
    if (rc != 0)
        return sbx_fail(e, SBX_EINTERNAL, "python sessions: cannot start the thread"), -1;
    return 0;
}

void ws_shutdown(void) {
    pthread_mutex_lock(&wsi.mu);
    if (!wsi.up) {
        pthread_mutex_unlock(&wsi.mu);
        return;
    }
    wsi.stopping = true;
    pthread_cond_broadcast(&wsi.cv);
    pthread_mutex_unlock(&wsi.mu);
    pthread_join(wsi.thread, NULL);
    pthread_mutex_lock(&wsi.mu);
    for (int i = 0; i < WS_MAX; i++) {
        ws_session *s = wsi.s[i];
        if (!s)
            continue;
        retire_locked(s);
        pthread_mutex_unlock(&wsi.mu);
        finish_retired(s, "shutdown");
        pthread_mutex_lock(&wsi.mu);
    }
    wsi.up = false;
    pthread_mutex_unlock(&wsi.mu);
}

ws_session *ws_get(const char *id, const char *viewer, sbx_err *e) {
    ws_session *found = NULL;
    pthread_mutex_lock(&wsi.mu);
    for (int i = 0; i < WS_MAX && !found && id; i++) {
        ws_session *s = wsi.s[i];
        if (s && !s->gone && !strcmp(s->id, id) && (!viewer || !strcmp(s->owner, viewer)))
            found = s;
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&wsi.mu);
    if (!found)
        sbx_fail(e, SBX_ENOTFOUND, "no Python session '%s'", id ? id : "");
    return found;
}

void ws_done(ws_session *s) {
    if (!s)
        return;
    pthread_mutex_lock(&wsi.mu);
    s->last_used_wall = sbx_wall_ms();
    unref_locked(s);
    pthread_mutex_unlock(&wsi.mu);
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
    pthread_mutex_lock(&wsi.mu);
    for (int i = 0; i < WS_MAX; i++)
        if (wsi.s[i] && !wsi.s[i]->gone)
            out->live++;
    out->created = wsi.created;
    out->expired = wsi.expired;
    out->restarted = wsi.restarted;
    pthread_mutex_unlock(&wsi.mu);
}

cJSON *ws_health(void) {
    ws_stats st;
    ws_stats_get(&st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "live", (double)st.live);
    cJSON_AddNumberToObject(o, "max", (double)wsi.o.max_sessions);
    return o;
}

/* NAME: "value" pairs: names of letters, digits and '_' (not first a digit), string values
 * without NUL; at most ENV_MAX. */
sbx_code ws_check_env(const cJSON *env, const char *field, sbx_err *e) {
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
    if (!wsi.up || !wsi.o.python)
        return sbx_fail(e, SBX_EUNAVAIL,
                        "no Python interpreter is installed (set PYTHON_PATH or install python3)");
    struct egress_client *net = rq->net; /* ours, even on failure */
    if (sandbox_check(e) != SBX_OK) {
        egress_client_free(net);
        return SBX_EUNAVAIL;
    }
    if (ws_check_env(rq->env, "env", e) != SBX_OK) {
        egress_client_free(net);
        return SBX_EINVAL;
    }
    int64_t ttl = rq->ttl_s > 0 ? rq->ttl_s : wsi.o.ttl_s;
    int64_t idle = rq->idle_timeout_s > 0 ? rq->idle_timeout_s : wsi.o.idle_timeout_s;
    if (ttl > wsi.o.ttl_s) {
        egress_client_free(net);
        return sbx_fail(e, SBX_EINVAL, "field 'ttlS' must be at most %lld (PYTHON_TTL_S)",
                        (long long)wsi.o.ttl_s);
    }
    if (idle > ttl)
        idle = ttl;
    ws_session *s = calloc(1, sizeof *s);
    if (!s) {
        egress_client_free(net);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    if (sbx_session_id(s->id) != 0) { /* carries NODE_ID: the router finds the owner by it */
        egress_client_free(net);
        free(s);
        return sbx_fail(e, SBX_EINTERNAL, "no randomness for a session id");
    }
    s->net = net; /* from here on freed with the session */
    s->net_env = rq->net_env;
    s->net_port = rq->net_port;
    snprintf(s->owner, sizeof s->owner, "%s", owner ? owner : "");
    snprintf(s->dir, sizeof s->dir, "%s/runs/%s", wsi.o.data_dir, s->id);
    snprintf(s->work, sizeof s->work, "%s/work", s->dir);
    snprintf(s->tmp, sizeof s->tmp, "%s/tmp", s->dir);
    s->workfd = s->sock = s->errfd = -1;
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
        egress_client_free(s->net);
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
        egress_client_free(s->net);
        free(s);
        return e ? e->code : SBX_EINTERNAL;
    }
    pthread_mutex_lock(&wsi.mu);
    int live = 0, slot = -1;
    for (int i = 0; i < WS_MAX; i++) {
        if (wsi.s[i])
            live++;
        else if (slot < 0)
            slot = i;
    }
    sbx_code rc = SBX_OK;
    if (wsi.stopping)
        rc = sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    else if (live >= wsi.o.max_sessions || slot < 0) {
        rc =
            sbx_fail(e, SBX_ETOOMANY,
                     "%d Python sessions are live, the most PYTHON_MAX_SESSIONS allows; delete one "
                     "or wait for one to expire",
                     live);
        if (e)
            e->retry_after = 5;
    } else {
        wsi.s[slot] = s;
    }
    pthread_mutex_unlock(&wsi.mu);
    if (rc != SBX_OK) {
        sbx_rmtree(s->dir);
        s->refs = 1;
        pthread_mutex_lock(&wsi.mu);
        s->gone = true;
        unref_locked(s);
        pthread_mutex_unlock(&wsi.mu);
        return rc;
    }
    rc = wsi_respawn(s, e);
    if (rc != SBX_OK) {
        pthread_mutex_lock(&wsi.mu);
        retire_locked(s);
        pthread_mutex_unlock(&wsi.mu);
        pthread_mutex_lock(&s->call_mu);
        s->busy = false;
        pthread_mutex_unlock(&s->call_mu);
        finish_retired(s, "failed to start");
        ws_done(s);
        return rc;
    }
    pthread_mutex_lock(&wsi.mu);
    wsi.created++;
    pthread_mutex_unlock(&wsi.mu);
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
    pthread_mutex_lock(&wsi.mu);
    int64_t created = s->created_wall, used = s->last_used_wall, ttl = s->ttl_s;
    bool gone = s->gone;
    pthread_mutex_unlock(&wsi.mu);
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
    if (s->net) { /* through the egress gateway: what it carried, as a run's result says */
        egress_stats st = {0};
        egress_client_stats(s->net, &st);
        cJSON *n = cJSON_AddObjectToObject(o, "network");
        cJSON_AddNumberToObject(n, "bytesIn", (double)st.bytes_in);
        cJSON_AddNumberToObject(n, "bytesOut", (double)st.bytes_out);
        cJSON_AddNumberToObject(n, "connections", (double)st.connections);
        cJSON_AddNumberToObject(n, "refused", (double)st.refused);
    }
    return o;
}

cJSON *ws_list(const char *viewer) {
    ws_session *mine[WS_MAX];
    int n = 0;
    pthread_mutex_lock(&wsi.mu);
    for (int i = 0; i < WS_MAX; i++) {
        ws_session *s = wsi.s[i];
        if (s && !s->gone && (!viewer || !strcmp(s->owner, viewer))) {
            s->refs++;
            mine[n++] = s;
        }
    }
    pthread_mutex_unlock(&wsi.mu);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = ws_describe(mine[i]);
        if (!viewer)
            cJSON_AddStringToObject(o, "owner", mine[i]->owner);
        cJSON_AddItemToArray(arr, o);
        pthread_mutex_lock(&wsi.mu);
        unref_locked(mine[i]);
        pthread_mutex_unlock(&wsi.mu);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "sessions", arr);
    return r;
}

sbx_code ws_delete(const char *id, const char *viewer, sbx_err *e) {
    ws_session *s = ws_get(id, viewer, e);
    if (!s)
        return SBX_ENOTFOUND;
    pthread_mutex_lock(&wsi.mu);
    bool mine = retire_locked(s);
    pthread_mutex_unlock(&wsi.mu);
    if (mine)
        finish_retired(s, "deleted");
    pthread_mutex_lock(&wsi.mu);
    unref_locked(s);
    pthread_mutex_unlock(&wsi.mu);
    return SBX_OK;
}
