/* proc.c -- one launched Chromium answering CDP, before and after a session owns it (see
 * proc.h). */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/node.h"
#include "chromium.h"

struct br_proc {
    char id[SBX_SID_LEN];
    char dir[4096];
    chromium_proc chr;
    cdp_conn *conn;
    pthread_mutex_t mu; /* h, bound, closed */
    cdp_handlers h;
    bool bound, closed;
    egress_client *net; /* its proxy listener on the egress gateway, or NULL */
};

static egress_gateway *egress_gw;
static const egress_policy *egress_pol;
static bool egress_allowlist;
static egress_upstream egress_up;
static bool egress_has_up;

void br_proc_egress_init(egress_gateway *gw, const egress_policy *pol, bool allowlist,
                         const egress_upstream *up) {
    egress_gw = gw;
    egress_pol = pol;
    egress_allowlist = allowlist;
    egress_has_up = up != NULL;
    if (up)
        egress_up = *up;
}

egress_client *br_proc_net(br_proc *p) {
    return p ? p->net : NULL;
}

sbx_code br_proc_session_egress(const cJSON *network, const cJSON *proxy, egress_scope **scope,
                                egress_upstream *up, bool *has_up, sbx_err *e) {
    *scope = NULL;
    *has_up = false;
    if (!egress_gw) {
        if ((network && !cJSON_IsNull(network)) || (proxy && !cJSON_IsNull(proxy)))
            return sbx_fail(e, SBX_EINVAL, "network, proxy: this server has no egress gateway");
        return SBX_OK;
    }
    if (network && !cJSON_IsNull(network) && !cJSON_IsObject(network))
        return sbx_fail(e, SBX_EINVAL, "network: must be an object");
    if (proxy && !cJSON_IsNull(proxy) && !cJSON_IsObject(proxy))
        return sbx_fail(e, SBX_EINVAL, "proxy: must be an object");
    const cJSON *allowed = cJSON_GetObjectItem(network, "allowedDomains");
    if (cJSON_IsNull(allowed))
        allowed = NULL;
    if (proxy && cJSON_IsObject(proxy)) {
        const char *server = cJSON_GetStringValue(cJSON_GetObjectItem(proxy, "server"));
        const cJSON *user = cJSON_GetObjectItem(proxy, "username");
        const cJSON *pass = cJSON_GetObjectItem(proxy, "password");
        if (!server)
            return sbx_fail(e, SBX_EINVAL, "proxy.server: required, a string");
        if ((user && !cJSON_IsString(user)) || (pass && !cJSON_IsString(pass)))
            return sbx_fail(e, SBX_EINVAL, "proxy.username, proxy.password: must be strings");
        if (egress_upstream_parse(server, cJSON_GetStringValue(user), cJSON_GetStringValue(pass),
                                  "proxy.server", up, e) != SBX_OK)
            return SBX_EINVAL;
        *has_up = true;
    } else if (egress_has_up) {
        *up = egress_up;
        *has_up = true;
    }
    return egress_scope_new(egress_pol, egress_allowlist, allowed, "network.allowedDomains", scope,
                            e);
}

static char *chromium_bin;
static char *data_dir;

void br_proc_init(const char *bin, const char *dir) {
    free(chromium_bin);
    free(data_dir);
    chromium_bin = bin ? strdup(bin) : NULL;
    data_dir = strdup(dir ? dir : ".");
}

void br_proc_shutdown(void) {
    free(chromium_bin);
    free(data_dir);
    chromium_bin = data_dir = NULL;
}

const char *br_proc_chromium(void) {
    return chromium_bin;
}

/* ---- the connection's callbacks (service thread): forward to the bound handlers ---- */

static void on_event(void *ud, const char *method, const char *sid, const cJSON *params) {
    br_proc *p = ud;
    pthread_mutex_lock(&p->mu);
    cdp_handlers h = p->h;
    bool bound = p->bound;
    pthread_mutex_unlock(&p->mu);
    if (bound && h.on_event)
        h.on_event(h.ud, method, sid, params);
}

static void on_close(void *ud, const char *why) {
    br_proc *p = ud;
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    cdp_handlers h = p->h;
    bool bound = p->bound;
    pthread_mutex_unlock(&p->mu);
    if (bound && h.on_close)
        h.on_close(h.ud, why);
}

bool br_proc_bind(br_proc *p, const cdp_handlers *h) {
    pthread_mutex_lock(&p->mu);
    p->h = *h;
    p->bound = true;
    bool up = !p->closed;
    pthread_mutex_unlock(&p->mu);
    return up;
}

/* ---- lifecycle ---- */

void br_proc_kill(br_proc *p) {
    pid_t pid = __atomic_exchange_n(&p->chr.pid, 0, __ATOMIC_SEQ_CST);
    if (pid > 0)
        chromium_kill(pid);
}

static void *remove_dir_later(void *arg) {
    char *dir = arg;
    int i = 0;
    while (sbx_rmtree(dir) < 0 && (errno == EMFILE || errno == ENFILE) && ++i < 300)
        usleep(100 * 1000);
    if (i == 300)
        LOG_W("browser", "could not remove %s: %s", dir, strerror(errno));
    free(dir);
    return NULL;
}

/* Remove a session's directory (and its short TMPDIR). A server out of descriptors (EMFILE)
 * cannot walk the tree now: a thread of its own tries again for up to 30 s. */
static void remove_dir(const char *dir) {
    chromium_remove_tmpdir(dir);
    if (sbx_rmtree(dir) == 0)
        return;
    if (errno == EMFILE || errno == ENFILE) {
        char *copy = strdup(dir);
        pthread_attr_t at;
        pthread_t t;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = copy ? pthread_create(&t, &at, remove_dir_later, copy) : -1;
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        free(copy);
    }
    LOG_W("browser", "could not remove %s: %s", dir, strerror(errno));
}

void br_proc_reap(br_proc *p) {
    br_proc_kill(p);
    if (p->dir[0])
        remove_dir(p->dir);
}

void br_proc_discard(br_proc *p) {
    if (!p)
        return;
    br_proc_kill(p);
    cdp_close(p->conn);
    p->conn = NULL;
    br_proc_reap(p);
    egress_client_free(p->net); /* after the kill: its listener closes with it */
    pthread_mutex_destroy(&p->mu);
    free(p);
}

bool br_proc_usable(br_proc *p) {
    pthread_mutex_lock(&p->mu);
    bool ok = !p->closed && p->conn && !cdp_dead(p->conn);
    pthread_mutex_unlock(&p->mu);
    pid_t pid = __atomic_load_n(&p->chr.pid, __ATOMIC_SEQ_CST);
    if (ok && pid > 0) {
        /* Has the leader exited? WNOWAIT leaves it to be reaped by br_proc_kill. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0)
            ok = false;
    }
    return ok && pid > 0;
}

br_proc *br_proc_launch(int64_t timeout_ms, sbx_err *e) {
    if (!chromium_bin) {
        sbx_fail(e, SBX_EUNAVAIL, "no Chromium found: install chromium or set CHROMIUM_PATH");
        return NULL;
    }
    br_proc *p = calloc(1, sizeof *p);
    if (!p) {
        sbx_fail(e, SBX_EINTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    if (sbx_session_id(p->id) != 0) {
        br_proc_discard(p);
        sbx_fail(e, SBX_EINTERNAL, "no randomness for a session id");
        return NULL;
    }
    snprintf(p->dir, sizeof p->dir, "%s/browser/%s", data_dir, p->id);
    int64_t t0 = sbx_now_ms(), deadline = t0 + timeout_ms;
    uint16_t proxy_port = 0;
    if (egress_gw) { /* its own listener: which browser a connection is from, and its scope */
        egress_scope *scope = NULL;
        if (egress_scope_new(egress_pol, egress_allowlist, NULL, "network", &scope, e) != SBX_OK ||
            !(p->net = egress_client_new(egress_gw, scope, egress_has_up ? &egress_up : NULL)) ||
            egress_client_listen(p->net, &proxy_port, e) != SBX_OK) {
            if (!p->net && e->code == SBX_OK)
                sbx_fail(e, SBX_EINTERNAL, "out of memory");
            br_proc_discard(p);
            return NULL;
        }
    }
    if (chromium_launch(chromium_bin, p->dir, timeout_ms, proxy_port, &p->chr, e) != SBX_OK) {
        br_proc_discard(p);
        return NULL;
    }
    cdp_handlers h = {on_event, on_close, p};
    /* DevToolsActivePort appears shortly before Chromium answers: retry the connect. */
    int tries = 0;
    for (;;) {
        sbx_err ce;
        tries++;
        p->conn = cdp_connect(p->chr.port, p->chr.ws_path, &h, sbx_left_ms(deadline), &ce);
        if (p->conn) {
            if (cdp_call(p->conn, NULL, "Browser.getVersion", NULL, sbx_left_ms(deadline), NULL,
                         &ce) == SBX_OK)
                break;
            cdp_close(p->conn);
            p->conn = NULL;
            pthread_mutex_lock(&p->mu);
            p->closed = false; /* that connection is gone; the next one counts */
            pthread_mutex_unlock(&p->mu);
        }
        if (sbx_now_ms() + 5 >= deadline) {
            *e = ce;
            e->code = SBX_EUNAVAIL;
            br_proc_discard(p);
            return NULL;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    LOG_I("browser", "session=%s chromium pid=%d answering after %lldms (%d connects)", p->id,
          (int)p->chr.pid, (long long)(sbx_now_ms() - t0), tries);
    return p;
}

pid_t br_proc_pid(br_proc *p) {
    return __atomic_load_n(&p->chr.pid, __ATOMIC_SEQ_CST);
}

const char *br_proc_dir(const br_proc *p) {
    return p->dir;
}

const char *br_proc_id(const br_proc *p) {
    return p->id;
}

cdp_conn *br_proc_conn(br_proc *p) {
    return p->conn;
}

void br_proc_devtools(const br_proc *p, int *port, char *path) {
    *port = p->chr.port;
    snprintf(path, 256, "%s", p->chr.ws_path);
}
