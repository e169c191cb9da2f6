/* chromium.c -- locate Chromium, launch it headless in its own process group, kill it. */
#define _GNU_SOURCE
#include "chromium.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/util.h"

/* ---- launcher thread: forks on behalf of other threads ---- */

typedef struct spawn_req {
    char **argv, **envp;
    const char *log; /* where its stdout and stderr go (NULL: /dev/null) */
    pid_t pid;
    int err;
    bool taken, done;
    struct spawn_req *next;
} spawn_req;

static pthread_mutex_t lmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lcv = PTHREAD_COND_INITIALIZER;
static spawn_req *lqueue;
static bool lstop, lrunning;
static pthread_t lthread;

static pid_t do_fork(char **argv, char **envp, const char *log, pid_t parent) {
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0)
        dup2(fd, 0);
    int out = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600) : -1;
    if (out < 0)
        out = fd;
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
    }
    sbx_close_fds_from(3, -1);
    execve(argv[0], argv, envp);
    _exit(127);
}

static void *launcher_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lmu);
    for (;;) {
        while (!lqueue && !lstop)
            pthread_cond_wait(&lcv, &lmu);
        if (!lqueue && lstop)
            break;
        spawn_req *r = lqueue;
        lqueue = r->next;
        pthread_mutex_unlock(&lmu);
        pid_t pid = do_fork(r->argv, r->envp, r->log, getpid());
        int err = errno;
        pthread_mutex_lock(&lmu);
        r->pid = pid;
        r->err = err;
        r->done = true;
        pthread_cond_broadcast(&lcv);
    }
    pthread_mutex_unlock(&lmu);
    return NULL;
}

static char *profile_tpl; /* the profile template (CHROMIUM_PROFILE_DIR), or NULL */

int chromium_init(const char *profile_dir, sbx_err *e) {
    if (lrunning)
        return 0;
    free(profile_tpl);
    profile_tpl = profile_dir && *profile_dir ? strdup(profile_dir) : NULL;
    lstop = false;
    if (pthread_create(&lthread, NULL, launcher_main, NULL) != 0) {
        sbx_fail(e, SBX_EINTERNAL, "could not start the Chromium launcher thread");
        return -1;
    }
    lrunning = true;
    return 0;
}

void chromium_shutdown(void) {
    if (!lrunning)
        return;
    pthread_mutex_lock(&lmu);
    lstop = true;
    pthread_cond_broadcast(&lcv);
    pthread_mutex_unlock(&lmu);
    pthread_join(lthread, NULL);
    lrunning = false;
}

static pid_t spawn(char **argv, char **envp, const char *log) {
    spawn_req r = {.argv = argv, .envp = envp, .log = log};
    pthread_mutex_lock(&lmu);
    if (!lrunning || lstop) {
        pthread_mutex_unlock(&lmu);
        return -1;
    }
    r.next = lqueue;
    lqueue = &r;
    pthread_cond_broadcast(&lcv);
    while (!r.done)
        pthread_cond_wait(&lcv, &lmu);
    pthread_mutex_unlock(&lmu);
    errno = r.err;
    return r.pid;
}

/* ---- finding ---- */

char *chromium_find(const char *p) {
    char *found = NULL;
    if (p && *p) {
        found = sbx_which(p);
    } else {
        static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
        for (size_t i = 0; i < 3 && !found; i++)
            found = sbx_which(names[i]);
    }
    if (!found)
        return NULL;
    /* Debian's /usr/bin/chromium is a shell wrapper; run the real binary beside it. */
    if (strcmp(found, "/usr/bin/chromium") == 0 &&
        access("/usr/lib/chromium/chromium", X_OK) == 0) {
        free(found);
        found = strdup("/usr/lib/chromium/chromium");
    }
    return found;
}

/* ---- the temporary directory ---- */

/* Chromium puts its singleton socket in TMPDIR/<random 30 chars>/SingletonSocket, and a Unix
 * socket path has at most 107 bytes. When the session directory is too deep for that, TMPDIR
 * is a short directory under /tmp instead, named after the session and holding a `.session`
 * file that names the session directory (so a later start can remove orphans). */
#define SHORT_TMP_PREFIX "/tmp/sbxbr-"

void chromium_tmpdir(const char *dir, char *out, size_t cap) {
    if (strlen(dir) + sizeof "/tmp/org.chromium.Chromium.XXXXXX/SingletonSocket" <= 100) {
        snprintf(out, cap, "%s/tmp", dir);
        return;
    }
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    snprintf(out, cap, SHORT_TMP_PREFIX "%.32s", base);
}

static int note_tmp(const char *tmp, const char *dir) {
    if (strncmp(tmp, SHORT_TMP_PREFIX, strlen(SHORT_TMP_PREFIX)) != 0)
        return 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/.session", tmp);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(dir, f);
    return fclose(f) == 0 ? 0 : -1;
}

void chromium_remove_tmpdir(const char *dir) {
    char tmp[4200];
    chromium_tmpdir(dir, tmp, sizeof tmp);
    if (strncmp(tmp, SHORT_TMP_PREFIX, strlen(SHORT_TMP_PREFIX)) == 0)
        sbx_rmtree(tmp);
}

void chromium_sweep_tmp(void) {
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "sbxbr-", 6) != 0)
            continue;
        char path[600], note[700];
        snprintf(path, sizeof path, "/tmp/%s", de->d_name);
        snprintf(note, sizeof note, "%s/.session", path);
        char *owner = sbx_read_file(note, 4096, NULL);
        struct stat st;
        bool orphan;
        if (owner)
            orphan = stat(owner, &st) != 0;
        else /* no note yet: another server's launch may be between its mkdir and its note */
            orphan = lstat(path, &st) == 0 && time(NULL) - st.st_mtime > 60;
        if (orphan)
            sbx_rmtree(path);
        free(owner);
    }
    closedir(d);
}

/* ---- launching ---- */

void chromium_kill(pid_t pid) {
    if (pid > 0)
        sbx_kill_group(pid);
}

static int read_port_file(const char *path, chromium_proc *out) {
    char *txt = sbx_read_file(path, 4096, NULL);
    if (!txt)
        return -1;
    int rc = -1;
    char *nl = strchr(txt, '\n');
    if (nl) {
        *nl = 0;
        char *path2 = nl + 1;
        char *nl2 = strchr(path2, '\n');
        if (nl2)
            *nl2 = 0;
        {
            /* the whole first line is the port in decimal ("3r7" is not port 3) */
            char *end = txt;
            long port = txt[0] >= '0' && txt[0] <= '9' ? strtol(txt, &end, 10) : 0;
            if (end == nl && port > 0 && port < 65536 && path2[0] == '/' &&
                strlen(path2) < sizeof out->ws_path) {
                out->port = (int)port;
                snprintf(out->ws_path, sizeof out->ws_path, "%s", path2);
                rc = 0;
            }
        }
    }
    free(txt);
    return rc;
}

/* The last non-empty line of the file at `path` (at most its last 4 KiB), into out. */
static void last_line(const char *path, char *out, size_t n) {
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t got = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (got <= 0)
        return;
    buf[got] = 0;
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
        buf[--got] = 0;
    const char *nl = strrchr(buf, '\n'), *s = nl ? nl + 1 : buf;
    size_t len = strlen(s) < n ? strlen(s) : n - 1;
    memcpy(out, s, len);
    out[len] = 0;
}

sbx_code chromium_launch(const char *bin, const char *dir, int64_t timeout_ms, uint16_t proxy_port,
                         chromium_proc *out, sbx_err *e) {
    memset(out, 0, sizeof *out);
    char profile[4160], home[4160], tmp[4160], cfgd[4160], cache[4160], datad[4160],
        port_file[4200];
    snprintf(profile, sizeof profile, "%s/profile", dir);
    snprintf(home, sizeof home, "%s/home", dir);
    chromium_tmpdir(dir, tmp, sizeof tmp);
    snprintf(cfgd, sizeof cfgd, "%s/home/.config", dir);
    snprintf(cache, sizeof cache, "%s/home/.cache", dir);
    snprintf(datad, sizeof datad, "%s/home/.local/share", dir);
    snprintf(port_file, sizeof port_file, "%s/DevToolsActivePort", profile);
    if (sbx_mkdir_p(dir, 0700) != 0 || sbx_mkdir_p(tmp, 0700) != 0 || note_tmp(tmp, dir) != 0 ||
        sbx_mkdir_p(cfgd, 0700) != 0 || sbx_mkdir_p(cache, 0700) != 0 ||
        sbx_mkdir_p(datad, 0700) != 0)
        return sbx_fail_errno(e, errno, "could not create the session directory under DATA_DIR");
    const char *tpl = profile_tpl;
    struct stat st;
    if (tpl && *tpl && stat(tpl, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (sbx_copytree(tpl, profile) != 0)
            return sbx_fail_errno(e, errno, "could not copy the profile template under DATA_DIR");
    } else if (sbx_mkdir_p(profile, 0700) != 0) {
        return sbx_fail_errno(e, errno, "could not create the profile directory under DATA_DIR");
    }

    char a_udd[4300], e_home[4300], e_tmp[4300], e_cfg[4300], e_cache[4300], e_data[4300],
        e_run[4300], e_path[4300];
    snprintf(a_udd, sizeof a_udd, "--user-data-dir=%s", profile);
    snprintf(e_home, sizeof e_home, "HOME=%s", home);
    snprintf(e_tmp, sizeof e_tmp, "TMPDIR=%s", tmp);
    snprintf(e_cfg, sizeof e_cfg, "XDG_CONFIG_HOME=%s", cfgd);
    snprintf(e_cache, sizeof e_cache, "XDG_CACHE_HOME=%s", cache);
    snprintf(e_data, sizeof e_data, "XDG_DATA_HOME=%s", datad);
    snprintf(e_run, sizeof e_run, "XDG_RUNTIME_DIR=%s", tmp);
    const char *path_env = getenv("PATH");
    snprintf(e_path, sizeof e_path, "PATH=%s", path_env ? path_env : "/usr/bin:/bin");
    const char *argv[48];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--headless";
    argv[n++] = "--remote-debugging-port=0";
    argv[n++] = a_udd;
    argv[n++] = "--no-first-run";
    argv[n++] = "--no-default-browser-check";
    argv[n++] = "--disable-background-networking";
    argv[n++] = "--disable-component-update";
    argv[n++] = "--disable-sync";
    argv[n++] = "--disable-default-apps";
    argv[n++] = "--disable-extensions";
    argv[n++] = "--disable-breakpad";
    argv[n++] = "--disable-crash-reporter";
    argv[n++] = "--disable-gpu";
    argv[n++] = "--mute-audio";
    argv[n++] = "--disable-quic";
    argv[n++] = "--disable-domain-reliability";
    argv[n++] = "--disable-client-side-phishing-detection";
    argv[n++] = "--disable-popup-blocking";
    argv[n++] = "--disable-prompt-on-repost";
    argv[n++] = "--disable-hang-monitor";
    argv[n++] = "--disable-background-timer-throttling";
    argv[n++] = "--disable-renderer-backgrounding";
    argv[n++] = "--disable-backgrounding-occluded-windows";
    /* The last two: the omnibox's WebUI popups, which a headless browser preloads into a
     * renderer of their own (about 55 MiB of PSS a session, for an address bar nobody sees). */
    argv[n++] = "--disable-features=Translate,MediaRouter,OptimizationHints,"
                "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
                "InterestFeedContentSuggestions,DialMediaRouteProvider,WebUIOmniboxPopup,"
                "WebUIOmniboxAimPopup";
    argv[n++] = "--metrics-recording-only";
    argv[n++] = "--no-pings";
    argv[n++] = "--password-store=basic";
    argv[n++] = "--use-mock-keychain";
    argv[n++] = "--noerrdialogs";
    argv[n++] = "--hide-scrollbars";
    argv[n++] = "--window-size=1280,800";
    if (geteuid() == 0)
        argv[n++] = "--no-sandbox";
    char a_proxy[64];
    if (proxy_port) {
        snprintf(a_proxy, sizeof a_proxy, "--proxy-server=http://127.0.0.1:%u", proxy_port);
        argv[n++] = a_proxy;
        argv[n++] = "--proxy-bypass-list=<-loopback>";
    }
    argv[n++] = "about:blank";
    argv[n] = NULL;
    const char *envp[] = {e_path, e_home, e_tmp,          e_cfg, e_cache,
                          e_data, e_run,  "LANG=C.UTF-8", NULL};

    char log[4200];
    snprintf(log, sizeof log, "%s/chromium.log", dir);
    pid_t pid = spawn((char **)argv, (char **)envp, log);
    if (pid < 0)
        return sbx_fail_errno(e, errno, "could not start Chromium");
    out->pid = pid;
    if (sbx_owner_record(dir, pid) != 0)
        LOG_W("browser", "could not write %s/.owner", dir);
    int64_t deadline = sbx_now_ms() + timeout_ms;
    while (sbx_now_ms() < deadline) {
        if (read_port_file(port_file, out) == 0)
            return SBX_OK;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            sbx_kill_group(pid);
            out->pid = 0;
            char last[200];
            last_line(log, last, sizeof last);
            LOG_W("browser", "Chromium exited during start (status %d): %s", status, last);
            return sbx_fail(e, SBX_EUNAVAIL, "Chromium exited during start (%s %d)%s%s",
                            WIFEXITED(status) ? "exit code" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                            *last ? ": " : "", last);
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    chromium_kill(pid);
    out->pid = 0;
    return sbx_fail(e, SBX_ETIMEOUT, "Chromium did not open its DevTools port within %lld ms",
                    (long long)timeout_ms);
}
