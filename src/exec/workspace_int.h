/* workspace_int.h -- what the two files of Python sessions share: workspace.c (the registry,
 * spawning, expiry, describe) and workspace_call.c (the driver's socket and the calls). Nothing
 * else includes it.
 *
 * Locks: wsi.mu guards the registry and each session's refs, gone, last_used and spawn
 * handoff; a session's call_mu guards its busy flag. The busy caller alone talks to the
 * driver (sock, rbuf, seq, dead); the sandbox child is replaced (a respawn) only by the manager
 * thread while the session is busy, and freed only once the session is retired and not busy.
 */
#ifndef SBX_WORKSPACE_INT_H
#define SBX_WORKSPACE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../common/node.h"
#include "../common/util.h"
#include "sandbox.h"
#include "workspace.h"

#define WS_MAX         512         /* the registry's room; PYTHON_MAX_SESSIONS is at most this */
#define READY_WAIT_MS  30000       /* a fresh driver's "ready" */
#define FRAME_MAX      (96u << 20) /* a driver frame (images travel in "done") */
#define WEDGED_WAIT_MS 5000        /* after a restart or a command kill: the driver's answer */
#define SWEEP_EVERY_MS 1000
#define ENV_MAX        64                      /* variables a session or command may add */
#define WS_SITE_DIR    "/tmp/site-packages"    /* kernel.py's SITE: on sys.path */
#define WS_WHEELS_DIR  "/tmp/.sandboxd-wheels" /* kernel.py's WHEELS: a wheelhouse copy */

struct ws_session {
    char id[SBX_SID_LEN]; /* "<node>.<hex>" in a cluster (node.h) */
    char owner[96];
    char dir[PATH_MAX - 64], work[PATH_MAX], tmp[PATH_MAX];
    int workfd;                 /* O_PATH of work */
    struct egress_client *net;  /* NULL: no network; else its gateway client (owned) */
    const char *const *net_env; /* the proxy variables, with net */
    uint16_t net_port;
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
    int errfd; /* read end of the driver's stdout and stderr (its tracebacks), nonblocking */
    bool dead; /* the driver is gone: spawn again before the next call */
    char *rbuf;
    size_t rlen, rcap;
    uint64_t seq;
    char *env_json; /* the "env" of the init frame */
    atomic_int pid; /* outer pid of the sandbox's init, for memoryBytes/cpuMs (0: none) */
    atomic_llong exec_count;
    atomic_bool starting;
};

typedef struct ws_globals {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the manager's wake-up, and spawn_done */
    pthread_t thread;
    bool up, stopping;
    ws_opts o;
    char **envp;
    ws_session *s[WS_MAX];
    uint64_t created, expired, restarted;
} ws_globals;
extern ws_globals wsi; /* the module's state (workspace.c) */

/* workspace_call.c: one frame (a 4-byte big-endian length, then `data`) to the driver within
 * 5 s; 0 or -1. */
int wsi_send_raw_frame(int sock, const void *data, size_t n);
/* workspace_call.c: a JSON frame; 0 or -1. */
int wsi_send_frame(ws_session *s, cJSON *o);
/* workspace_call.c: the next frame by `deadline`: 1 with *out (caller frees), 0 on timeout,
 * -1 when the driver is gone. */
int wsi_read_frame(ws_session *s, int64_t deadline, cJSON **out);

/* workspace.c: what the driver wrote to its stderr so far (up to 2 KiB, for a log line),
 * malloc'd; never NULL. */
char *wsi_driver_output(ws_session *s);

/* workspace.c: start the session's driver again (on the manager thread) and greet it; the
 * caller is the session's busy caller. */
sbx_code wsi_respawn(ws_session *s, sbx_err *e);

#endif
