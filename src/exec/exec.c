/* exec.c -- the Python execution service: run slots, the registry of live runs, and one run
 * from directory creation to cleanup (spawn in the sandbox, drain output, deadline, uploads).
 *
 * A run lives on the thread that called exec_run (the sandbox kills a run whose spawning
 * thread exits, so the caller must wait). Shutdown kills every registered run; their threads
 * then finish the cleanup and exec_shutdown waits for them, bounded.
 */
#define _GNU_SOURCE
#include "exec.h"

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
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "sandbox.h"
#include "upload.h"
#include "workspace.h"
#include "zygote.h"

#define MAX_RUNS_TRACKED 256
#define STOP_WAIT_MS     2000         /* exec_shutdown's wait for killed runs to finish */
#define CODE_ARG_MAX     (100 * 1024) /* larger programs go through a file in the run's /tmp */

static exec_opts O; /* the settings, copied at exec_init (strings owned: data_dir, mode) */
static egress_upstream upstream; /* O.upstream points here when one is set */
static char *python; /* set once by exec_init; kept for the process's life (read by any thread) */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv;
static int running;
static bool stopping;
static bool curl_ready;
static atomic_bool zygote_on; /* EXEC_MODE=zygote and the zygote thread runs */
static sandbox_child *live[MAX_RUNS_TRACKED];
static uint64_t started_zygote, started_cold; /* under mu */

const char *const exec_kill_reasons[EXEC_KILL_COUNT] = {
    "timeout", "client_gone", "disk_quota", "file_size", "cpu_time", "shutdown", "zygote_lost"};
const char *const exec_violation_kinds[EXEC_VIOL_COUNT] = {"network", "filesystem", "process",
                                                           "kernel", "limit"};
static atomic_ullong n_kills[EXEC_KILL_COUNT], n_viol[EXEC_VIOL_COUNT], n_truncated,
    n_refused_incomplete;

void exec_stats_get(exec_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&mu);
    out->started_zygote = started_zygote;
    out->started_cold = started_cold;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < EXEC_KILL_COUNT; i++)
        out->kills[i] = atomic_load(&n_kills[i]);
    for (int i = 0; i < EXEC_VIOL_COUNT; i++)
        out->violations[i] = atomic_load(&n_viol[i]);
    out->output_truncated = atomic_load(&n_truncated);
    out->refused_incomplete = atomic_load(&n_refused_incomplete);
}

/* The port of the egress gateway's listener inside a run's own network namespace. */
#define EGRESS_INNER_PORT EXEC_EGRESS_PORT
#define EGRESS_INNER_HTTP "http://127.0.0.1:3128"
/* What tools read to find a proxy (both cases: curl reads lower-case http_proxy only). */
static const char *const k_proxy_env[] = {
    "HTTP_PROXY=" EGRESS_INNER_HTTP,      "HTTPS_PROXY=" EGRESS_INNER_HTTP,
    "ALL_PROXY=socks5h://127.0.0.1:3128", "NO_PROXY=localhost,127.0.0.1,::1",
    "http_proxy=" EGRESS_INNER_HTTP,      "https_proxy=" EGRESS_INNER_HTTP,
    "all_proxy=socks5h://127.0.0.1:3128", "no_proxy=localhost,127.0.0.1,::1",
    "PIP_PROXY=" EGRESS_INNER_HTTP,       NULL};

sbx_code exec_network_scope(const cJSON *network, egress_scope **out, sbx_err *e) {
    if (network && !cJSON_IsObject(network))
        return sbx_fail(e, SBX_EINVAL, "network: must be an object");
    const cJSON *allowed = cJSON_GetObjectItem(network, "allowedDomains");
    if (allowed && cJSON_IsNull(allowed))
        allowed = NULL;
    if (O.network == EXEC_NET_NONE) {
        if (allowed)
            return sbx_fail(e, SBX_EINVAL,
                            "network.allowedDomains: code runs without network on this server "
                            "(EXEC_NETWORK=none)");
        *out = NULL;
        return SBX_OK;
    }
    return egress_scope_new(O.egress, O.network == EXEC_NET_ALLOWLIST, allowed,
                            "network.allowedDomains", out, e);
}

const egress_upstream *exec_upstream(void) {
    return O.upstream;
}

const char *const *exec_proxy_env(void) {
    return k_proxy_env;
}

egress_client *exec_egress_client(egress_scope *scope) {
    return scope ? egress_client_new(O.gateway, scope, O.upstream) : NULL;
}

/* The run's listener (made in its network namespace) goes to the gateway. */
static void egress_attach(sandbox_child *c, egress_client *cl, const char *id) {
    int fd = sandbox_take_egress_fd(c);
    sbx_err e = {0};
    if (cl && fd >= 0 && egress_client_adopt(cl, fd, &e) != SBX_OK)
        LOG_W("exec", "run=%s: the egress gateway cannot take its listener: %s", id, e.msg);
    else if (fd >= 0 && !cl)
        close(fd);
}

void exec_egress_attach(struct sandbox_child *c, egress_client *cl) {
    egress_attach(c, cl, "session");
}

/* Every run's environment (HOME is added per run: its work dir, /work inside). */
static const char *const k_run_env[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",   "TMPDIR=/tmp", "PYTHONUNBUFFERED=1",
    "PYTHONDONTWRITEBYTECODE=1",         "MPLBACKEND=Agg", NULL};

int exec_init(const exec_opts *opts, sbx_err *e) {
    O = *opts;
    O.data_dir = strdup(opts->data_dir ? opts->data_dir : "");
    O.mode = strdup(opts->mode ? opts->mode : "fork");
    O.python_path = O.preload = NULL; /* read here only */
    if (opts->upstream) {
        upstream = *opts->upstream;
        O.upstream = &upstream;
    }
    if (O.network != EXEC_NET_NONE && (!O.egress || !O.gateway))
        return sbx_fail(e, SBX_EINTERNAL, "exec: EXEC_NETWORK without an egress gateway"), -1;
    if (O.network != EXEC_NET_NONE)
        LOG_I("exec", "network: %s, through the egress gateway",
              O.network == EXEC_NET_OPEN ? "open" : "allowlist");
    if (!O.data_dir || !O.mode)
        return sbx_fail(e, SBX_EINTERNAL, "exec: out of memory"), -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&slot_cv, &ca);
    pthread_condattr_destroy(&ca);
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    const char *want = opts->python_path;
    if (want && *want)
        python = sbx_which(want);
    else if (!(python = sbx_which("/usr/bin/python3")))
        python = sbx_which("python3");
    if (python)
        LOG_I("exec", "python: %s; up to %lld runs at once", python, (long long)O.max_runs);
    else
        LOG_W("exec", "no python3 found (set PYTHON_PATH); POST /execute will answer 503");
    char runs[PATH_MAX];
    snprintf(runs, sizeof runs, "%s/runs", O.data_dir);
    sandbox_init(runs, O.allow_weak_sandbox);
    char why[512];
    if (sandbox_weak(why, sizeof why) && O.allow_weak_sandbox) {
        LOG_E("exec", "************************************************************");
        LOG_E("exec", "WEAK SANDBOX: runs go without %s", why);
        LOG_E("exec", "EXEC_ALLOW_WEAK_SANDBOX=true accepts this; /health shows it");
        LOG_E("exec", "************************************************************");
    } else if (sandbox_weak(why, sizeof why)) {
        LOG_E("exec",
              "the sandbox is incomplete (missing %s): POST /execute answers 503 "
              "until the kernel allows it, or EXEC_ALLOW_WEAK_SANDBOX=true accepts it",
              why);
    }
    sbx_err ce = {0};
    bool can_zygote = sandbox_check(&ce) == SBX_OK && sandbox_userns();
    if (python && !strcmp(O.mode, "zygote")) {
        sbx_err ze = {0};
        if (!can_zygote)
            LOG_W("exec", "EXEC_MODE=zygote: no zygote without user namespaces");
        else if (!sandbox_own_proc())
            LOG_W("exec", "EXEC_MODE=zygote: no zygote without a procfs of its own (it maps "
                          "its runs' ids through /proc): every run starts cold");
        else if (zygote_start(&(zygote_opts){.python = python,
                                             .envp = k_run_env,
                                             .data_dir = O.data_dir,
                                             .preload = opts->preload,
                                             .file_size_mb = O.file_size_mb,
                                             .network = O.network != EXEC_NET_NONE},
                              &ze) != 0)
            LOG_W("exec", "zygote not started (%s); runs start cold", ze.msg);
        else
            zygote_on = true;
    }
    ws_opts wo = {.data_dir = O.data_dir,
                  .python = python,
                  .envp = k_run_env,
                  .zygote = zygote_on,
                  .max_sessions = opts->py_max_sessions,
                  .idle_timeout_s = opts->py_idle_timeout_s,
                  .ttl_s = opts->py_ttl_s,
                  .busy_wait_ms = opts->py_busy_wait_ms,
                  .interrupt_grace_ms = opts->py_interrupt_grace_ms,
                  .output_bytes = O.output_bytes,
                  .memory_mb = O.memory_mb,
                  .max_procs = O.max_procs,
                  .file_size_mb = O.file_size_mb,
                  .open_files = O.open_files,
                  .wheelhouse = opts->py_wheelhouse,
                  .index_url = opts->py_index_url};
    if (ws_init(&wo, e) != 0)
        LOG_W("exec", "python sessions not started: %s", e->msg);
    return 0;
}

void exec_shutdown(void) {
    ws_shutdown(); /* before the zygote: its sessions die with it anyway */
    pthread_mutex_lock(&mu);
    stopping = true;
    for (int i = 0; i < MAX_RUNS_TRACKED; i++)
        if (live[i])
            sandbox_kill(live[i]);
    pthread_cond_broadcast(&slot_cv);
    pthread_mutex_unlock(&mu);
    upload_cancel_all();
    /* Killed runs end at once; a run whose thread is blocked handing output to a streaming
     * client that does not read ends when the server closes that connection, after this. */
    int64_t deadline = sbx_now_ms() + STOP_WAIT_MS;
    pthread_mutex_lock(&mu);
    while (running > 0 && sbx_now_ms() < deadline) {
        pthread_mutex_unlock(&mu);
        usleep(10000);
        pthread_mutex_lock(&mu);
    }
    int left = running;
    pthread_mutex_unlock(&mu);
    zygote_stop();
    zygote_on = false;
    if (left > 0) { /* they still use curl and the interpreter's path: keep both */
        LOG_W("exec",
              "%d run(s) still finishing after %d ms (a client not reading their "
              "stream); they end when the server closes the connections",
              left, STOP_WAIT_MS);
        return;
    }
    if (curl_ready) {
        curl_global_cleanup();
        curl_ready = false;
    }
}

cJSON *exec_health(void) {
    cJSON *o = cJSON_CreateObject();
    if (python)
        cJSON_AddStringToObject(o, "python", python);
    else
        cJSON_AddNullToObject(o, "python");
    pthread_mutex_lock(&mu);
    cJSON_AddNumberToObject(o, "running", running);
    cJSON_AddNumberToObject(o, "startedZygote", (double)started_zygote);
    cJSON_AddNumberToObject(o, "startedCold", (double)started_cold);
    pthread_mutex_unlock(&mu);
    cJSON_AddStringToObject(o, "mode", O.mode ? O.mode : "fork");
    if (zygote_on)
        cJSON_AddItemToObject(o, "zygote", zygote_health());
    else
        cJSON_AddNullToObject(o, "zygote");
    cJSON_AddNumberToObject(o, "maxRuns", (double)O.max_runs);
    cJSON_AddItemToObject(o, "pythonSessions", ws_health());
    cJSON_AddItemToObject(o, "sandbox", sandbox_layers());
    return o;
}

/* ---- slots ---- */

static sbx_code take_slot(sbx_err *e) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t wait = O.queue_wait_ms;
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&mu);
    while (!stopping && running >= O.max_runs)
        if (pthread_cond_timedwait(&slot_cv, &mu, &ts) == ETIMEDOUT)
            break;
    sbx_code rc = SBX_OK;
    if (stopping)
        rc = sbx_fail(e, SBX_EUNAVAIL, "the server is shutting down");
    else if (running >= O.max_runs) {
        rc = sbx_fail(e, SBX_EBUSY,
                      "all %lld run slots stayed busy for %lld ms; retry later or raise "
                      "EXEC_MAX_RUNS",
                      (long long)O.max_runs, (long long)wait);
        e->retry_after = 1;
    } else
        running++;
    pthread_mutex_unlock(&mu);
    return rc;
}

static void give_slot(void) {
    pthread_mutex_lock(&mu);
    running--;
    pthread_cond_signal(&slot_cv);
    pthread_mutex_unlock(&mu);
}

static int track(sandbox_child *c) {
    pthread_mutex_lock(&mu);
    int slot = -1;
    for (int i = 0; i < MAX_RUNS_TRACKED && slot < 0; i++)
        if (!live[i])
            live[slot = i] = c;
    if (stopping)
        sandbox_kill(c);
    pthread_mutex_unlock(&mu);
    return slot;
}

static void untrack(int slot) {
    if (slot < 0)
        return;
    pthread_mutex_lock(&mu);
    live[slot] = NULL;
    pthread_mutex_unlock(&mu);
}

/* ---- one run ---- */

typedef struct stream {
    int fd;
    sbx_buf buf;
    char tail[3]; /* a UTF-8 character's start, for the observer with the next read */
    size_t ntail;
} stream;

/* A character the program never finished goes to the observer as it is (the HTTP side marks
 * it as U+FFFD). */
static void flush_tail(stream *s, int which, exec_output_fn fn, void *ctx, bool *client_gone) {
    if (fn && s->ntail && !*client_gone && fn(ctx, which, s->tail, s->ntail) < 0)
        *client_gone = true;
    s->ntail = 0;
}

/* Read what is there; returns 0 at EOF, 1 after reading some, -1 when there was nothing.
 * The observer gets whole UTF-8 characters: a character cut by the pipe waits for its end. */
static int drain(stream *s, int which, exec_output_fn fn, void *ctx, bool *client_gone) {
    char chunk[3 + 65536];
    memcpy(chunk, s->tail, s->ntail);
    ssize_t n = read(s->fd, chunk + s->ntail, sizeof chunk - 3);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        flush_tail(s, which, fn, ctx, client_gone);
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    if (n < 0)
        return -1;
    size_t room = s->buf.max - s->buf.len;
    sbx_buf_add(&s->buf, chunk + s->ntail, (size_t)n);
    if (fn && room) {
        size_t give = s->ntail + ((size_t)n < room ? (size_t)n : room);
        size_t keep = (size_t)n < room ? utf8_incomplete_tail(chunk, give) : 0;
        if (give > keep && fn(ctx, which, chunk, give - keep) < 0)
            *client_gone = true;
        memmove(s->tail, chunk + give - keep, keep);
        s->ntail = keep;
    }
    return 1;
}

static void mark_cut(sbx_buf *b, cJSON *res, const char *field) {
    const char *text = b->data ? b->data : "";
    if (b->truncated) {
        sbx_buf out;
        sbx_buf_init(&out, b->len + 128);
        sbx_buf_add(&out, text, b->len);
        sbx_buf_addf(&out, "\n[sandboxd: %s truncated at %zu bytes (EXEC_OUTPUT_BYTES)]\n", field,
                     b->max);
        cJSON_AddStringToObject(res, field, out.data);
        sbx_buf_free(&out);
    } else {
        cJSON_AddStringToObject(res, field, text);
    }
}

static int write_file(const char *path, const char *data, size_t len, uid_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    ssize_t n = 0;
    for (size_t off = 0; off < len && n >= 0; off += (size_t)n)
        n = write(fd, data + off, len - off); /* a short write: the next one says why */
    int err = errno;
    close(fd);
    errno = err;
    return n < 0 ? -1 : 0;
}

/* A run's work dir and /tmp, empty (and the program's file when it is too long for argv). */
static int make_run_dirs(const char *work, const char *tmp, const char *codefile,
                         const exec_request *rq, size_t code_len, sbx_err *e) {
    if (mkdir(work, 0700) < 0 || mkdir(tmp, 0700) < 0)
        return sbx_fail_errno(e, errno, "cannot create the run directory under DATA_DIR");
    if (code_len > CODE_ARG_MAX && write_file(codefile, rq->code, code_len, 0644) < 0)
        return sbx_fail_errno(e, errno, "cannot store the program under DATA_DIR");
    return SBX_OK;
}

/* One start of the program, and its output until it ends, the deadline passes or the streaming
 * client leaves. */
typedef struct attempt {
    sandbox_child *child;
    stream out, err;
    bool via_zygote, timed_out, client_gone, exited;
    bool said_done; /* a zygote program said it is exiting: answer, tear down later */
    int code, sig;
} attempt;

/* Spawn from the zygote when `zygote` says so and it is available, else cold. The child's
 * stdout and stderr are pipes into a->out and a->err. */
static sbx_code start(attempt *a, sandbox_spec *spec, bool zygote, sbx_err *e) {
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, devnull = -1;
    sbx_code rc = SBX_OK;
    a->via_zygote = false;
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = sbx_fail_errno(e, errno, "cannot create the run's pipes");
        goto out;
    }
    spec->stdin_fd = devnull;
    spec->stdout_fd = outp[1];
    spec->stderr_fd = errp[1];
    sandbox_zygote door;
    if (zygote && zygote_open(spec->code, &door)) {
        sbx_err ze = {0};
        a->via_zygote = sandbox_spawn_zygote(spec, &door, &a->child, &ze) == SBX_OK;
        if (!a->via_zygote && ze.code != SBX_EUNAVAIL) {
            *e = ze;
            rc = ze.code;
            goto out;
        }
    }
    if (!a->via_zygote && (rc = sandbox_spawn(spec, &a->child, e)) != SBX_OK)
        goto out;
    pthread_mutex_lock(&mu);
    if (a->via_zygote)
        started_zygote++;
    else
        started_cold++;
    pthread_mutex_unlock(&mu);
    a->out.fd = outp[0], a->err.fd = errp[0];
    outp[0] = errp[0] = -1;
    fcntl(a->out.fd, F_SETFL, O_NONBLOCK);
    fcntl(a->err.fd, F_SETFL, O_NONBLOCK);
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (devnull >= 0)
        close(devnull);
    return rc;
}

/* Until the program ends (or, with `early`, says it is exiting), the deadline passes or the
 * streaming client leaves. */
static void pump(attempt *a, int64_t deadline, bool early, exec_output_fn fn, void *ctx) {
    int64_t last_sign = sbx_now_ms();
    a->code = -1, a->sig = 0;
    a->exited = a->timed_out = a->said_done = false;
    while (a->out.fd >= 0 || a->err.fd >= 0 || !a->exited) {
        /* a silent program still shows whether the streaming client is there */
        if (fn && !a->client_gone && sbx_now_ms() - last_sign >= 1000) {
            last_sign = sbx_now_ms();
            if (fn(ctx, 3, "", 0) < 0)
                a->client_gone = true;
        }
        if (!a->exited && sandbox_wait(a->child, sbx_now_ms(), &a->code, &a->sig) == 1) {
            a->exited = true;
            if (a->out.fd < 0 && a->err.fd < 0)
                break;
            deadline = sbx_now_ms() + 200; /* drain what is still in the pipes */
        }
        int64_t now = sbx_now_ms();
        if (now >= deadline || a->client_gone) {
            if (!a->exited) {
                a->timed_out = now >= deadline; /* a stream's write may give up at it too */
                sandbox_kill(a->child);
                sandbox_wait(a->child, sbx_now_ms() + 5000, &a->code, &a->sig);
                a->exited = true;
            }
            break;
        }
        struct pollfd p[4] = {
            {.fd = a->out.fd, .events = POLLIN},
            {.fd = a->err.fd, .events = POLLIN},
            {.fd = a->exited ? -1 : sandbox_pollfd(a->child), .events = POLLIN},
            {.fd = early && !a->exited ? sandbox_donefd(a->child) : -1, .events = POLLIN}};
        int wait = (int)(deadline - now < 250 ? deadline - now : 250);
        if (poll(p, 4, wait) > 0) {
            if (a->out.fd >= 0 && p[0].revents)
                drain(&a->out, 1, fn, ctx, &a->client_gone);
            if (a->err.fd >= 0 && p[1].revents)
                drain(&a->err, 2, fn, ctx, &a->client_gone);
            if (p[3].revents && sandbox_take_done(a->child, &a->code) == 1) {
                /* everything it wrote before is in the pipes: take it, and answer */
                while (a->out.fd >= 0 && drain(&a->out, 1, fn, ctx, &a->client_gone) > 0)
                    ;
                while (a->err.fd >= 0 && drain(&a->err, 2, fn, ctx, &a->client_gone) > 0)
                    ;
                a->said_done = true;
                break;
            }
        }
    }
    flush_tail(&a->out, 1, fn, ctx, &a->client_gone);
    flush_tail(&a->err, 2, fn, ctx, &a->client_gone);
}

/* Remove a run's directory. A server short of descriptors (EMFILE) cannot walk the tree now:
 * try again every 50 ms, up to `wait_ms`, for other requests to close some. */
static void remove_run_dir(const char *id, const char *dir, int wait_ms) {
    for (int i = 0; sbx_rmtree(dir) < 0; i++) {
        if (i >= wait_ms / 50 || (errno != EMFILE && errno != ENFILE)) {
            LOG_W("exec", "run=%s: could not remove %s: %s", id, dir, strerror(errno));
            return;
        }
        usleep(50 * 1000);
    }
}

/* The rest of a run that answered from its program's word: the tree's end (the kernel's
 * teardown of the program, its init killing what is left), then its directory and its slot. */
typedef struct finisher {
    sandbox_child *child;
    int slot;
    char id[SBX_ID_LEN], dir[PATH_MAX];
} finisher;

static void finish(finisher *f) {
    int code, sig;
    if (!sandbox_wait(f->child, sbx_now_ms() + 2000, &code, &sig))
        LOG_W("exec", "run=%s: still running 2 s after its program said it exited; killed", f->id);
    untrack(f->slot); /* first: exec_shutdown may be about to kill what it finds tracked */
    sandbox_free(f->child);
    remove_run_dir(f->id, f->dir, 10000); /* its own thread: the answer is out already */
    give_slot();
}

static void *finish_thread(void *arg) {
    finish(arg);
    free(arg);
    return NULL;
}

/* Finish on a thread of its own (or here, when none can be started). */
static void finish_later(sandbox_child *child, int slot, const char *id, const char *dir) {
    finisher here = {.child = child, .slot = slot};
    snprintf(here.id, sizeof here.id, "%s", id);
    snprintf(here.dir, sizeof here.dir, "%s", dir);
    finisher *f = malloc(sizeof *f);
    if (f) {
        *f = here;
        pthread_attr_t at;
        pthread_t t;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &at, finish_thread, f);
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        free(f);
    }
    finish(&here);
}

/* The counters of one ended run: why it was killed (if it was), what was refused. */
static void count_run(attempt *a, bool lost, cJSON *viol) {
    pthread_mutex_lock(&mu);
    bool stop = stopping;
    pthread_mutex_unlock(&mu);
    int why = a->timed_out                                   ? EXEC_KILL_TIMEOUT
              : a->client_gone                               ? EXEC_KILL_CLIENT_GONE
              : lost                                         ? EXEC_KILL_ZYGOTE_LOST
              : sandbox_over_quota(a->child)                 ? EXEC_KILL_DISK_QUOTA
              : a->sig == SIGXFSZ                            ? EXEC_KILL_FILE_SIZE
              : a->sig == SIGXCPU                            ? EXEC_KILL_CPU_TIME
              : stop && (a->sig == SIGKILL || a->code == -1) ? EXEC_KILL_SHUTDOWN
                                                             : -1;
    if (why >= 0)
        atomic_fetch_add(&n_kills[why], 1);
    if (a->out.buf.truncated || a->err.buf.truncated)
        atomic_fetch_add(&n_truncated, 1);
    cJSON *v;
    cJSON_ArrayForEach(v, viol) {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(v, "kind"));
        for (int i = 0; kind && i < EXEC_VIOL_COUNT; i++)
            if (!strcmp(kind, exec_violation_kinds[i]))
                atomic_fetch_add(&n_viol[i], 1);
    }
}

static void close_stream(stream *s) {
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static cJSON *run_sandboxed(const exec_request *rq, egress_scope *scope, exec_output_fn fn,
                            void *ctx, sbx_err *e);
static cJSON *run_with(const exec_request *rq, egress_client *net, exec_output_fn fn, void *ctx,
                       sbx_err *e);

cJSON *exec_run(const exec_request *rq, exec_output_fn fn, void *ctx, sbx_err *e) {
    egress_scope *scope = rq->scope;
    if (!scope && O.network != EXEC_NET_NONE &&
        egress_scope_new(O.egress, O.network == EXEC_NET_ALLOWLIST, NULL, "network", &scope, e) !=
            SBX_OK)
        return NULL;
    return run_sandboxed(rq, scope, fn, ctx, e);
}

/* exec_run with the run's scope (taken: freed here, or by the gateway's client). */
static cJSON *run_sandboxed(const exec_request *rq, egress_scope *scope, exec_output_fn fn,
                            void *ctx, sbx_err *e) {
    egress_client *net = NULL;
    if (scope && !(net = egress_client_new(O.gateway, scope, O.upstream))) {
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    cJSON *res = run_with(rq, net, fn, ctx, e);
    egress_client_free(net);
    return res;
}

/* A stderr line and a violation per refused destination; network: {bytesIn, ...}. */
static void egress_report(egress_client *net, cJSON *res, sbx_buf *err, cJSON *viol) {
    egress_stats st = {0};
    if (net)
        egress_client_stats(net, &st);
    cJSON *n = cJSON_AddObjectToObject(res, "network");
    cJSON_AddNumberToObject(n, "bytesIn", (double)st.bytes_in);
    cJSON_AddNumberToObject(n, "bytesOut", (double)st.bytes_out);
    cJSON_AddNumberToObject(n, "connections", (double)st.connections);
    if (!net)
        return;
    /* a connect around the gateway (to an address of its own loopback, say) is refused by
     * Landlock with EACCES, which reads like a file error: say what it was */
    static const char eacces[] = "[Errno 13] Permission denied";
    if (err->data && memmem(err->data, err->len, eacces, sizeof eacces - 1) &&
        (memmem(err->data, err->len, "connect", 7) || memmem(err->data, err->len, "urlopen", 7)))
        sbx_buf_addf(err,
                     "%ssandbox: direct connections are refused; network access goes through "
                     "the egress gateway (HTTP_PROXY=" EGRESS_INNER_HTTP ", which NO_PROXY "
                     "bypasses for localhost)\n",
                     err->len && err->data[err->len - 1] != '\n' ? "\n" : "");
    cJSON *refused = egress_client_refusals(net), *it;
    cJSON_ArrayForEach(it, refused) {
        const char *line = it->valuestring, *tab = strchr(line, '\t');
        if (!tab)
            continue;
        sbx_buf_addf(err, "%ssandbox: network access to %.*s was refused: %s\n",
                     err->len && err->data[err->len - 1] != '\n' ? "\n" : "", (int)(tab - line),
                     line, tab + 1);
        if (viol && cJSON_GetArraySize(viol) < 64) {
            cJSON *v = cJSON_CreateObject();
            cJSON_AddStringToObject(v, "kind", "network");
            char det[400];
            snprintf(det, sizeof det, "%.*s: %s", (int)(tab - line), line, tab + 1);
            cJSON_AddStringToObject(v, "detail", det);
            cJSON_AddItemToArray(viol, v);
        }
    }
    cJSON_Delete(refused);
}

static cJSON *run_with(const exec_request *rq, egress_client *net, exec_output_fn fn, void *ctx,
                       sbx_err *e) {
    if (!python) {
        sbx_fail(e, SBX_EUNAVAIL,
                 "no Python interpreter is installed (set PYTHON_PATH or "
                 "install python3)");
        return NULL;
    }
    if (sandbox_check(e) != SBX_OK) {
        atomic_fetch_add(&n_refused_incomplete, 1);
        return NULL;
    }
    if (take_slot(e) != SBX_OK)
        return NULL;
    int64_t t0 = sbx_now_ms();
    char id[SBX_ID_LEN], dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX - 32], codefile[PATH_MAX];
    cJSON *res = NULL;
    attempt a = {.out.fd = -1, .err.fd = -1};
    int slot = -1;
    bool lost = false;     /* the zygote died under a run that cannot be started again */
    bool deferred = false; /* finish_later owns the tree, the directory and the slot */
    sbx_buf_init(&a.out.buf, (size_t)O.output_bytes);
    sbx_buf_init(&a.err.buf, (size_t)O.output_bytes);

    sbx_random_id(id);
    snprintf(dir, sizeof dir, "%s/runs/%s", O.data_dir, id);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    snprintf(codefile, sizeof codefile, "%s/.sandboxd-main.py", tmp);
    size_t code_len = strlen(rq->code);
    if (mkdir(dir, 0711) < 0) {
        sbx_fail_errno(e, errno, "cannot create the run directory under DATA_DIR");
        goto done;
    }
    if (make_run_dirs(work, tmp, codefile, rq, code_len, e) != SBX_OK)
        goto done;
    const char *argv[5] = {python, "-c", rq->code, NULL, NULL};
    if (code_len > CODE_ARG_MAX)
        argv[2] = "import sys\nsrc = open('/tmp/.sandboxd-main.py').read()\n"
                  "exec(compile(src, '<string>', 'exec'), {'__name__': '__main__'})";
    char home[PATH_MAX + 8];
    snprintf(home, sizeof home, "HOME=%s", work);
    const char
        *envp[sizeof k_run_env / sizeof *k_run_env + sizeof k_proxy_env / sizeof *k_proxy_env + 1];
    size_t ne = 0;
    for (; k_run_env[ne]; ne++)
        envp[ne] = k_run_env[ne];
    for (size_t i = 0; net && k_proxy_env[i]; i++)
        envp[ne++] = k_proxy_env[i];
    envp[ne++] = home;
    envp[ne] = NULL;
    sandbox_spec spec = {
        .argv = argv,
        .envp = envp,
        .work_dir = work,
        .tmp_dir = tmp,
        .memory_mb = O.memory_mb,
        .max_procs = O.max_procs,
        .file_size_mb = O.file_size_mb,
        .open_files = O.open_files,
        .cpu_seconds = rq->timeout_ms / 1000 + 2,
        .egress_port = net ? EGRESS_INNER_PORT : 0,
        .owner_dir = dir,
        .code = rq->code,
        .code_len = code_len,
    };
    if (start(&a, &spec, zygote_on, e) != SBX_OK)
        goto done;
    egress_attach(a.child, net, id);
    slot = track(a.child);
    LOG_I("exec", "run=%s started (pid %d, %s, timeout %lld ms)", id, (int)sandbox_pid(a.child),
          a.via_zygote ? "zygote" : "cold", (long long)rq->timeout_ms);
    if (fn && fn(ctx, 0, id, strlen(id)) < 0)
        a.client_gone = true;
    bool early = !rq->upload_url; /* uploads read the work dir once the tree is gone */
    pump(&a, t0 + rq->timeout_ms, early, fn, ctx);

    /* The zygote died under the run (killed, or out of memory): the program is not at fault.
     * Without network nothing it did can outlive it (only its own dirs), so unless its output
     * already went to a streaming client, it runs again, cold, from empty dirs. With network it
     * may have reached a server already: it is not repeated behind the caller's back. */
    if (a.via_zygote && !a.said_done && !a.timed_out && !a.client_gone &&
        sandbox_lost_with_zygote(a.child)) {
        pthread_mutex_lock(&mu);
        bool stop = stopping;
        pthread_mutex_unlock(&mu);
        if (stop || net || (fn && (a.out.buf.len || a.err.buf.len))) {
            lost = true;
        } else {
            LOG_W("exec", "run=%s: its zygote died under it after %lld ms; running it again cold",
                  id, (long long)(sbx_now_ms() - t0));
            untrack(slot);
            slot = -1;
            sandbox_free(a.child);
            a.child = NULL;
            close_stream(&a.out);
            close_stream(&a.err);
            a.out.buf.len = a.err.buf.len = 0;
            a.out.buf.truncated = a.err.buf.truncated = false;
            if (sbx_rmtree(work) < 0 || sbx_rmtree(tmp) < 0) {
                sbx_fail_errno(e, errno, "cannot empty the run directory");
                goto done;
            }
            if (make_run_dirs(work, tmp, codefile, rq, code_len, e) != SBX_OK ||
                start(&a, &spec, false, e) != SBX_OK)
                goto done;
            egress_attach(a.child, net, id);
            slot = track(a.child);
            pump(&a, sbx_now_ms() + rq->timeout_ms, early, fn, ctx);
        }
    }
    res = cJSON_CreateObject();
    if (!a.timed_out && a.sig == 0 && a.code >= 0)
        cJSON_AddNumberToObject(res, "exitCode", a.code);
    else
        cJSON_AddNullToObject(res, "exitCode");
    mark_cut(&a.out.buf, res, "stdout");
    /* stderr gains one "sandbox: ..." line per kind of refusal */
    char *why = sandbox_explain(a.child);
    char *why_out = sandbox_explain_output(a.err.buf.data ? a.err.buf.data : "", a.err.buf.len);
    sbx_buf full;
    sbx_buf_init(&full, a.err.buf.len + 8192);
    sbx_buf_add(&full, a.err.buf.data ? a.err.buf.data : "", a.err.buf.len);
    if (a.err.buf.truncated)
        sbx_buf_addf(&full, "\n[sandboxd: stderr truncated at %zu bytes (EXEC_OUTPUT_BYTES)]\n",
                     a.err.buf.max);
    const char *nl = full.len && full.data[full.len - 1] != '\n' ? "\n" : "";
    if (a.timed_out)
        sbx_buf_addf(&full,
                     "%ssandbox: the program ran out of time; it was stopped after "
                     "%lld ms (timeoutMs)\n",
                     nl, (long long)rq->timeout_ms);
    if (lost)
        sbx_buf_addf(&full,
                     "%ssandbox: the run was lost: the pre-started interpreter it came from "
                     "(EXEC_MODE=zygote) died under it; the program is not at fault, run it "
                     "again\n",
                     nl);
    for (const char *w = why; w; w = w == why ? why_out : NULL)
        if (w && *w)
            sbx_buf_addf(&full, "%s%s%s", full.len && full.data[full.len - 1] != '\n' ? "\n" : "",
                         w, w[strlen(w) - 1] == '\n' ? "" : "\n");
    cJSON *viol = sandbox_violations(a.child);
    egress_report(net, res, &full, viol);
    cJSON_AddStringToObject(res, "stderr", full.data ? full.data : "");
    sbx_buf_free(&full);
    free(why);
    free(why_out);
    cJSON_AddNumberToObject(res, "durationMs", (double)(sbx_now_ms() - t0));
    cJSON_AddBoolToObject(res, "timedOut", a.timed_out);
    if (a.sig > 0 && !a.timed_out)
        cJSON_AddStringToObject(res, "signal", sigabbrev_np(a.sig) ? sigabbrev_np(a.sig) : "?");
    else
        cJSON_AddNullToObject(res, "signal");
    count_run(&a, lost, viol);
    cJSON_AddItemToObject(res, "violations", viol);
    cJSON_AddBoolToObject(res, "truncated", a.out.buf.truncated || a.err.buf.truncated);
    cJSON_AddStringToObject(res, "runId", id);
    LOG_I("exec", "run=%s ended: exit %d signal %d%s in %lld ms", id, a.code, a.sig,
          a.timed_out ? " (timed out)" : "", (long long)(sbx_now_ms() - t0));
    if (a.said_done) { /* the answer need not wait for the teardown (no uploads: see early) */
        cJSON_AddItemToObject(res, "uploads", cJSON_CreateArray());
        finish_later(a.child, slot, id, dir);
        a.child = NULL;
        slot = -1;
        deferred = true;
        goto done;
    }
    untrack(slot); /* before the free: exec_shutdown kills what it finds tracked */
    slot = -1;
    sandbox_free(a.child); /* the tree is gone before anything reads the work dir */
    a.child = NULL;
    cJSON_AddItemToObject(res, "uploads",
                          rq->upload_url ? upload_dir(work, rq->upload_url, rq->upload_token,
                                                      rq->public_, O.upload_max_mb,
                                                      O.upload_timeout_ms, O.egress, O.upstream)
                                         : cJSON_CreateArray());

done:
    untrack(slot);
    sandbox_free(a.child);
    close_stream(&a.out);
    close_stream(&a.err);
    sbx_buf_free(&a.out.buf);
    sbx_buf_free(&a.err.buf);
    if (!deferred) {
        /* Short of descriptors (EMFILE), a run that never started still goes: its empty
         * directories need none. Else the removal waits a little for others to close some. */
        sbx_rmtree(work);
        sbx_rmtree(tmp);
        remove_run_dir(id, dir, 1000); /* the answer waits for it */
        give_slot();
    }
    return res;
}
