/* workspace_call.c -- the calls of Python sessions (see workspace.h): the driver's socket
 * (frames of a 4-byte big-endian length and a JSON object; kernel.py says what they hold),
 * one call at a time per session, execute, commands and packages, and how a call that ended
 * the interpreter (an ignored interrupt, a signal, a lost sandbox) answers. See
 * workspace_int.h.
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

#include "../common/base64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "sandbox.h"

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
int wsi_send_raw_frame(int sock, const void *data, size_t n) {
    unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    int64_t deadline = sbx_now_ms() + 5000;
    if (sock < 0 || send_all(sock, hdr, 4, deadline) < 0)
        return -1;
    return send_all(sock, data, n, deadline);
}

int wsi_send_frame(ws_session *s, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    int rc = text ? wsi_send_raw_frame(s->sock, text, strlen(text)) : -1;
    free(text);
    return rc;
}

/* The next frame within `deadline`: 1 with *out (caller frees), 0 on timeout, -1 when the
 * driver is gone (EOF, an error, or a frame that is too large or not JSON). */
int wsi_read_frame(ws_session *s, int64_t deadline, cJSON **out) {
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

/* ---- calls ---- */

/* Become the session's one caller: wait up to PYTHON_BUSY_WAIT_MS for the one before; start
 * its driver again when it is gone (SBX_ERESTARTED: that call does not run). */
static sbx_code begin_call(ws_session *s, sbx_err *e) {
    int64_t deadline = sbx_now_ms() + wsi.o.busy_wait_ms;
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
        pthread_mutex_lock(&wsi.mu);
        bool gone = s->gone;
        pthread_mutex_unlock(&wsi.mu);
        if (gone)
            return sbx_fail(e, SBX_ENOTFOUND, "no Python session '%s'", s->id);
        sbx_fail(e, SBX_EINUSE,
                 "session %s is running another call (calls to one session run one at a time); "
                 "it stayed busy for %lld ms",
                 s->id, (long long)wsi.o.busy_wait_ms);
        if (e)
            e->retry_after = 1;
        return SBX_EINUSE;
    }
    s->busy = true;
    pthread_mutex_unlock(&s->call_mu);
    pthread_mutex_lock(&wsi.mu);
    s->last_used_wall = sbx_wall_ms();
    pthread_mutex_unlock(&wsi.mu);
    if (s->dead) {
        sbx_err re = {0};
        pthread_mutex_lock(&wsi.mu);
        wsi.restarted++;
        pthread_mutex_unlock(&wsi.mu);
        if (wsi_respawn(s, &re) != SBX_OK) {
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
    pthread_mutex_lock(&wsi.mu);
    s->last_used_wall = sbx_wall_ms();
    pthread_mutex_unlock(&wsi.mu);
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
        char *out = wsi_driver_output(s);
        if (*out)
            LOG_W("python", "session=%s: the driver's last words: %s", s->id, out);
        free(out);
        char *why = sandbox_explain(s->child);
        size_t n = e ? strlen(e->msg) : 0;
        if (e && why && *why && n + 4 < sizeof e->msg)
            snprintf(e->msg + n, sizeof e->msg - n, "\n%s", why);
        free(why);
    }
    pthread_mutex_lock(&wsi.mu);
    wsi.restarted++;
    bool gone = s->gone;
    pthread_mutex_unlock(&wsi.mu);
    s->dead = true;
    if (!gone) {
        sbx_err re = {0};
        if (wsi_respawn(s, &re) != SBX_OK)
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
            int w = wsi_send_frame(s, rq);
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
        int r = wsi_read_frame(s, until, &f);
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
            pthread_mutex_lock(&wsi.mu);
            wsi.restarted++;
            pthread_mutex_unlock(&wsi.mu);
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

/* Send the call's request `rq` (freed here), tell the observer the call started, then converse
 * (above) until it ends. Returns whether the deadline passed; c->how says how it ended. */
static bool start_and_converse(call *c, cJSON *rq, const char *end_ev, int64_t deadline,
                               const char *stop_op, int64_t grace_ms) {
    int w = wsi_send_frame(c->s, rq);
    cJSON_Delete(rq);
    if (c->fn && c->fn(c->ctx, 0, c->s->id, strlen(c->s->id)) < 0)
        c->client_gone = true;
    if (w < 0) {
        c->how = -1;
        return false;
    }
    return converse(c, end_ev, deadline, stop_op, grace_ms);
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
    sbx_buf_init(&c->out, (size_t)wsi.o.output_bytes);
    sbx_buf_init(&c->err, (size_t)wsi.o.output_bytes);
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
                 (long long)timeout_ms, (long long)wsi.o.interrupt_grace_ms);
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
    cJSON_AddNumberToObject(rq, "cap", (double)wsi.o.output_bytes);
    bool timed_out =
        start_and_converse(&c, rq, "done", t0 + timeout_ms, "interrupt", wsi.o.interrupt_grace_ms);
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
            pthread_mutex_lock(&wsi.mu);
            wsi.restarted++;
            pthread_mutex_unlock(&wsi.mu);
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
bool ws_rel_path_ok(const char *p) {
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
            int w = wsi_send_frame(s, f);
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
    cJSON_AddNumberToObject(rq, "cap", (double)wsi.o.output_bytes);
    bool timed_out = start_and_converse(&c, rq, "cmd_done", t0 + timeout_ms, "cmdkill", 0);
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
    if (rq->cwd && !ws_rel_path_ok(rq->cwd)) {
        sbx_fail(e, SBX_EINVAL,
                 "field 'cwd' must be a path relative to the work directory, without '..'");
        return NULL;
    }
    if (ws_check_env(rq->env, "env", e) != SBX_OK)
        return NULL;
    cJSON *argv = cJSON_CreateArray();
    cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/sh"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(rq->command));
    return run_command(s, argv, rq->cwd, rq->env, rq->timeout_ms, fn, ctx, NULL, e);
}

/* A requirement pip reads as one: a name (letters, digits, ".", "_", "-"), optional
 * [extras] and version clauses; never an option ("-..."), a path or a URL. */
bool ws_requirement_ok(const char *r) {
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
        if (!ws_requirement_ok(pkgs[i])) {
            sbx_fail(e, SBX_EINVAL,
                     "field 'packages': '%.100s' is not a requirement (a name, optional [extras] "
                     "and version clauses such as ==1.2 or >=1)",
                     pkgs[i] ? pkgs[i] : "");
            return NULL;
        }
    bool wheelhouse = wsi.o.wheelhouse && *wsi.o.wheelhouse;
    if (!wheelhouse && !(wsi.o.index_url && *wsi.o.index_url)) {
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
                          wsi.o.python};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(head[i]));
    if (wheelhouse) {
        cJSON_AddItemToArray(argv, cJSON_CreateString("--no-index"));
        cJSON_AddItemToArray(argv, cJSON_CreateString("--find-links"));
        cJSON_AddItemToArray(argv, cJSON_CreateString(WS_WHEELS_DIR));
    } else {
        cJSON_AddItemToArray(argv, cJSON_CreateString("--index-url"));
        cJSON_AddItemToArray(argv, cJSON_CreateString(wsi.o.index_url));
    }
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(pkgs[i]));
    cJSON *res = run_command(s, argv, NULL, NULL, timeout_ms, NULL, NULL,
                             wheelhouse ? wsi.o.wheelhouse : NULL, e);
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
