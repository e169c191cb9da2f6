/* workspace.c -- Python sessions (see workspace.h): the registry, the thread that spawns every
 * session's sandbox and expires idle ones, and the calls, spoken to the kernel driver
 * (kernel.py) over the session's socket.
 *
 * Locks: W.mu guards the registry and each session's refs, gone, last_used; a session's call_mu
 * guards its busy flag and its conversation with the driver (one call at a time). A call never
 * holds W.mu while it waits for the driver.
 */
#define _GNU_SOURCE
#include "workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"

#define WS_MAX 512 /* the registry's room; PYTHON_MAX_SESSIONS is at most this */

struct ws_session {
    char id[SBX_ID_LEN];
    char owner[96];
    char dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX];
    int workfd; /* O_PATH of work */
    int refs;   /* W.mu: the registry's one, plus one per borrower */
    bool gone;  /* W.mu: deleted or expired (ws_get no longer finds it) */
    int64_t created_wall, last_used_wall, idle_s, ttl_s; /* W.mu (last_used) */
};

static struct {
    pthread_mutex_t mu;
    bool up;
    ws_opts o;
    ws_session *s[WS_MAX];
    uint64_t created, expired, restarted;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

int ws_init(const ws_opts *o, sbx_err *e) {
    pthread_mutex_lock(&W.mu);
    W.o = *o;
    W.o.data_dir = dup_or_empty(o->data_dir);
    W.o.python = o->python ? strdup(o->python) : NULL;
    W.o.wheelhouse = dup_or_empty(o->wheelhouse);
    W.o.index_url = dup_or_empty(o->index_url);
    if (W.o.max_sessions > WS_MAX)
        W.o.max_sessions = WS_MAX;
    W.up = true;
    pthread_mutex_unlock(&W.mu);
    (void)e;
    return 0;
}

/* Drop one reference (W.mu held); the last frees the session. */
static void unref_locked(ws_session *s) {
    if (--s->refs > 0)
        return;
    if (s->workfd >= 0)
        close(s->workfd);
    free(s);
}

void ws_shutdown(void) {
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX; i++)
        if (W.s[i]) {
            W.s[i]->gone = true;
            sbx_rmtree(W.s[i]->dir);
            unref_locked(W.s[i]);
            W.s[i] = NULL;
        }
    W.up = false;
    pthread_mutex_unlock(&W.mu);
}

ws_session *ws_get(const char *id, const char *viewer, sbx_err *e) {
    ws_session *found = NULL;
    pthread_mutex_lock(&W.mu);
    for (int i = 0; i < WS_MAX && !found; i++) {
        ws_session *s = W.s[i];
        if (s && !s->gone && !strcmp(s->id, id) && (!viewer || !strcmp(s->owner, viewer)))
            found = s;
    }
    if (found)
        found->refs++;
    pthread_mutex_unlock(&W.mu);
    if (!found)
        sbx_fail(e, SBX_ENOTFOUND, "no Python session '%s'", id);
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
