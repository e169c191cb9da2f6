/* main.c -- sandboxd's entry point: configuration, start-up checks, the DATA_DIR lock and
 * sweep, the services, and an orderly shutdown on SIGTERM/SIGINT.
 *
 * Shutdown order: stop accepting; let in-flight requests finish until SHUTDOWN_GRACE_MS; kill
 * every run and every browser (their handlers then return); close the remaining connections
 * and join every thread; remove the pid file; exit 0. With a NODE_ID (a cluster replica) a
 * drain comes first: /ready turns 503 and creates 503 draining at once, while open sessions
 * keep being served until they end, SHUTDOWN_GRACE_MS passes or a second signal comes; the
 * steps above then get what is left of the grace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "browser/browser.h"
#include "common/config.h"
#include "common/egress_gateway.h"
#include "common/log.h"
#include "common/node.h"
#include "common/sweep.h"
#include "common/util.h"
#include "exec/exec.h"
#include "http/auth.h"
#include "http/cluster.h"
#include "http/openapi.h"
#include "http/router.h"
#include "http/server.h"
#include "http/tokens.h"

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    unsigned char s = (unsigned char)sig;
    ssize_t w = write(signal_pipe[1], &s, 1);
    (void)w;
    errno = saved;
}

static int install_signals(void) {
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Take the token out of the process's own environment block, so nothing that reads
 * /proc/<pid>/environ (a child, a debugger, another user's ps) can see it. */
static void wipe_token_from_environment(void) {
    char *v = getenv("AUTH_TOKEN");
    if (v)
        memset(v, 0, strlen(v));
    unsetenv("AUTH_TOKEN");
}

static int print_routes(void) {
    size_t it = 0;
    for (const http_route *r; (r = router_next(&it));)
        printf("%s %s %s\n", r->method, r->pattern, r->open ? "open" : r->scope ? r->scope : "any");
    return 0;
}

/* DATA_DIR: create it, lock it (one server per directory), sweep a dead server's leftovers. */
static int prepare_data_dir(int *lock_fd) {
    const char *dir = sbx_cfg->data_dir;
    char path[PATH_MAX];
    if (!*dir || sbx_mkdir_p(dir, 0711) < 0) {
        fprintf(stderr, "sandboxd: DATA_DIR '%s' cannot be created: %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/sandboxd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "sandboxd: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr,
                "sandboxd: another sandboxd is using DATA_DIR '%s'; stop it or set "
                "another DATA_DIR\n",
                dir);
        close(fd);
        return -1;
    }
    *lock_fd = fd;
    snprintf(path, sizeof path, "%s/sandboxd.pid", dir);
    FILE *f = fopen(path, "we");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    static const char *const subdirs[] = {"runs", "browser", "zygote"}; /* zygote: on demand */
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        int n = sbx_sweep_dir(path);
        if (n > 0)
            LOG_W("main", "swept %d leftover %s director%s of an earlier run", n, subdirs[i],
                  n == 1 ? "y" : "ies");
        if (i == 2)
            (void)rmdir(path);
        else if (sbx_mkdir_p(path, 0711) < 0) {
            fprintf(stderr, "sandboxd: cannot create %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Sessions this replica still serves: browser and Python sessions. */
static int open_sessions(void) {
    cJSON *b = browser_health(), *x = exec_health();
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(b, "sessions");
    const cJSON *py = cJSON_GetObjectItemCaseSensitive(x, "pythonSessions");
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(py, "live");
    int open = (cJSON_IsNumber(n) ? (int)n->valuedouble : 0) +
               (cJSON_IsNumber(live) ? (int)live->valuedouble : 0);
    cJSON_Delete(b);
    cJSON_Delete(x);
    return open;
}

/* A cluster replica's drain: new sessions are refused and readiness is false from now on;
 * wait until no session is open and no request in flight, `deadline` passes, or another
 * signal comes. */
static void drain_sessions(int64_t deadline) {
    cluster_drain_begin();
    LOG_I("main", "node %s draining: %d session(s) open", sbx_node(), open_sessions());
    struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
    for (;;) {
        int open = open_sessions();
        if (open == 0 && http_inflight() == 0) {
            LOG_I("main", "node %s drained: no session open", sbx_node());
            return;
        }
        int64_t left = sbx_left_ms(deadline);
        if (left <= 0) {
            LOG_W("main", "node %s: %d session(s) still open after SHUTDOWN_GRACE_MS; ending them",
                  sbx_node(), open);
            return;
        }
        if (poll(&p, 1, left < 200 ? (int)left : 200) > 0) {
            unsigned char s;
            if (read(signal_pipe[0], &s, 1) == 1) {
                LOG_W("main", "%s received again: ending the drain (%d session(s) open)",
                      strsignal(s), open);
                return;
            }
        }
    }
}

static int wait_for_signal(void) {
    struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
    for (;;) {
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return SIGTERM;
        unsigned char s;
        if (read(signal_pipe[0], &s, 1) == 1)
            return s;
    }
}

/* The egress policy and gateway (EGRESS_*), one for the server's life. */
static egress_policy *egress_pol;
static egress_gateway *egress_gw;
static egress_upstream egress_up;
static bool egress_has_up;

static int egress_start(sbx_err *e) {
    const egress_settings es = {.allowed = sbx_cfg->egress_allowed_domains,
                                .denied = sbx_cfg->egress_denied_domains,
                                .private_allowed = sbx_cfg->egress_private_allowed,
                                .hosts = sbx_cfg->egress_hosts};
    if (egress_policy_new(&es, &egress_pol, e) != SBX_OK)
        return -1;
    if (*sbx_cfg->egress_upstream_proxy) {
        if (egress_upstream_parse(sbx_cfg->egress_upstream_proxy, NULL, NULL,
                                  "EGRESS_UPSTREAM_PROXY", &egress_up, e) != SBX_OK)
            return -1;
        egress_has_up = true;
    }
    return egress_gateway_start(egress_pol, &egress_gw, e) == SBX_OK ? 0 : -1;
}

/* The browser service's settings, from the settings table. */
static browser_opts browser_settings(void) {
    return (browser_opts){
        .chromium_path = sbx_cfg->chromium_path,
        .profile_dir = sbx_cfg->browser_profile_dir,
        .data_dir = sbx_cfg->data_dir,
        .allow_hosts = sbx_cfg->browser_allow_hosts,
        .deny_hosts = sbx_cfg->browser_deny_hosts,
        .max_sessions = sbx_cfg->browser_max_sessions,
        .pool_size = sbx_cfg->browser_pool_size,
        .launch_timeout_ms = sbx_cfg->browser_launch_timeout_ms,
        .call_timeout_ms = sbx_cfg->browser_call_timeout_ms,
        .idle_timeout_s = sbx_cfg->browser_idle_timeout_s,
        .max_lifetime_s = sbx_cfg->browser_max_lifetime_s,
        .gateway = egress_gw,
        .egress = egress_pol,
        .network_allowlist = !strcmp(sbx_cfg->browser_network, "allowlist"),
        .upstream = egress_has_up ? &egress_up : NULL,
        .download_max_bytes = sbx_cfg->browser_download_max_bytes,
        .downloads_max_bytes = sbx_cfg->browser_downloads_max_bytes,
    };
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("sandboxd %s\n", SANDBOXD_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--routes"))
            return print_routes();
    }
    int rc = config_load(argc, argv, stderr);
    if (rc != 0) {
        config_free();
        return rc > 0 ? 0 : 2;
    }
    wipe_token_from_environment();
    log_init((enum log_level)log_level_parse(sbx_cfg->log_level));

    const char *master = sbx_cfg->auth_token; /* or the development token minted below */
    if (!master || !*master) {
        if (!sbx_cfg->dev_mode) {
            fprintf(stderr, "sandboxd: AUTH_TOKEN is required: set it to a long random secret "
                            "(e.g. AUTH_TOKEN=$(head -c 24 /dev/urandom | base64)), or pass "
                            "--dev to have a throwaway token minted for development\n");
            config_free();
            return 2;
        }
        static char token[SBX_ID_LEN];
        if (sbx_random_id(token) < 0) {
            fprintf(stderr, "sandboxd: no randomness for a development token\n");
            config_free();
            return 2;
        }
        master = token;
        fprintf(stderr,
                "\n"
                "  ************************************************************\n"
                "  *  DEVELOPMENT MODE: no AUTH_TOKEN was set, so one was    *\n"
                "  *  minted for this run only. Do not expose this server.   *\n"
                "  *                                                          *\n"
                "  *  Authorization: Bearer %s  *\n"
                "  ************************************************************\n\n",
                token);
    } else if (strlen(master) < 16) {
        LOG_W("main", "AUTH_TOKEN is shorter than 16 characters; use a long random secret");
    }

    if (sbx_node_set(sbx_cfg->node_id) < 0) {
        fprintf(stderr,
                "sandboxd: NODE_ID '%.64s' must be 1 to %d of a-z, 0-9 and '-' (e.g. the "
                "pod name sandboxd-0)\n",
                sbx_cfg->node_id, SBX_NODE_MAX);
        config_free();
        return 2;
    }
    cluster_init(sbx_cfg->cluster_url);

    int lock_fd = -1;
    sbx_err e = {0};
    if (install_signals() < 0 || prepare_data_dir(&lock_fd) < 0) {
        config_free();
        return 2;
    }
    auth_init(master);
    if (tokens_load(sbx_cfg->data_dir, &e) < 0) {
        fprintf(stderr, "sandboxd: %s\n", e.msg);
        config_free();
        return 2;
    }
    LOG_I("main", "sandboxd %s starting (pid %d, DATA_DIR %s)", SANDBOXD_VERSION, (int)getpid(),
          sbx_cfg->data_dir);
    if (*sbx_cfg->browser_profile_dir)
        LOG_I("main", "chromium profile template: %s", sbx_cfg->browser_profile_dir);
    else
        LOG_W("main", "no chromium profile template found (set CHROMIUM_PROFILE_DIR); sessions "
                      "start from an empty profile");

    if (egress_start(&e) != 0) {
        fprintf(stderr, "sandboxd: %s\n", e.msg);
        egress_policy_free(egress_pol);
        config_free();
        return 2;
    }
    const char *xnet = sbx_cfg->exec_network;
    const exec_opts xo = {.data_dir = sbx_cfg->data_dir,
                          .python_path = sbx_cfg->python_path,
                          .max_runs = sbx_cfg->exec_max_runs,
                          .queue_wait_ms = sbx_cfg->exec_queue_wait_ms,
                          .output_bytes = sbx_cfg->exec_output_bytes,
                          .memory_mb = sbx_cfg->exec_memory_mb,
                          .max_procs = sbx_cfg->exec_max_procs,
                          .file_size_mb = sbx_cfg->exec_file_size_mb,
                          .open_files = sbx_cfg->exec_open_files,
                          .upload_max_mb = sbx_cfg->exec_upload_max_mb,
                          .upload_timeout_ms = sbx_cfg->exec_upload_timeout_ms,
                          .allow_weak_sandbox = sbx_cfg->exec_allow_weak_sandbox,
                          .mode = sbx_cfg->exec_mode,
                          .preload = sbx_cfg->exec_preload,
                          .network = !strcmp(xnet, "allowlist") ? EXEC_NET_ALLOWLIST
                                     : !strcmp(xnet, "open") || sbx_cfg->exec_allow_network
                                         ? EXEC_NET_OPEN
                                         : EXEC_NET_NONE,
                          .egress = egress_pol,
                          .gateway = egress_gw,
                          .upstream = egress_has_up ? &egress_up : NULL,
                          .py_max_sessions = sbx_cfg->python_max_sessions,
                          .py_idle_timeout_s = sbx_cfg->python_idle_timeout_s,
                          .py_ttl_s = sbx_cfg->python_ttl_s,
                          .py_busy_wait_ms = sbx_cfg->python_busy_wait_ms,
                          .py_interrupt_grace_ms = sbx_cfg->python_interrupt_grace_ms,
                          .py_wheelhouse = sbx_cfg->python_wheelhouse,
                          .py_index_url = sbx_cfg->python_index_url};
    browser_opts bopts = browser_settings();
    if (exec_init(&xo, &e) != 0 || browser_init(&bopts, &e) != 0) {
        fprintf(stderr, "sandboxd: %s\n", e.msg);
        exec_shutdown();
        browser_shutdown();
        config_free();
        return 2;
    }
    api_core_mark_start();
    int port = 0;
    server_opts so = {.host = sbx_cfg->host,
                      .port = (int)sbx_cfg->port,
                      .max_body_bytes = sbx_cfg->max_body_bytes,
                      .max_connections = (int)sbx_cfg->max_connections,
                      .conn_timeout_s = (int)sbx_cfg->conn_timeout_s,
                      .api = {.exec_timeout_ms = sbx_cfg->exec_timeout_ms,
                              .browser_call_timeout_ms = sbx_cfg->browser_call_timeout_ms,
                              .browser_snapshot_max_chars = sbx_cfg->browser_snapshot_max_chars,
                              .host = sbx_cfg->host,
                              .gateway = egress_gw,
                              .python_file_max_bytes = sbx_cfg->python_file_max_mb << 20,
                              .python_quota_bytes = sbx_cfg->python_session_quota_mb << 20}};
    if (server_start(&so, &port, &e) != SBX_OK) {
        fprintf(stderr, "sandboxd: %s\n", e.msg);
        exec_shutdown();
        browser_shutdown();
        config_free();
        return 2;
    }
    if (*sbx_node())
        LOG_I("main", "listening on http://%s:%d as node %s", sbx_cfg->host, port, sbx_node());
    else
        LOG_I("main", "listening on http://%s:%d", sbx_cfg->host, port);
    if (egress_policy_add_self(egress_pol, sbx_cfg->host, (uint16_t)port) != 0)
        egress_policy_add_self(egress_pol, "", (uint16_t)port); /* a name: refuse it everywhere */

    int sig = wait_for_signal();
    LOG_I("main", "%s received: shutting down (grace %lld ms)", strsignal(sig),
          (long long)sbx_cfg->shutdown_grace_ms);
    int64_t grace_end = sbx_now_ms() + sbx_cfg->shutdown_grace_ms;
    if (*sbx_node())
        drain_sessions(grace_end);
    server_quiesce();
    int left = server_drain(grace_end);
    if (left > 0)
        LOG_W("main", "%d request(s) still running after the grace period; ending them", left);
    exec_shutdown();
    browser_shutdown();
    server_stop();
    egress_gateway_stop(egress_gw);
    egress_policy_free(egress_pol);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sandboxd.pid", sbx_cfg->data_dir);
    unlink(path);
    close(lock_fd);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    LOG_I("main", "stopped");
    tokens_free();
    config_free();
    return 0;
}
