/* config.c -- the settings table and the one parser that reads it.
 *
 * To add a setting: add a field to sbx_config (config.h) and one row to `settings` below.
 * Nothing else: --help, validation and the README table all come from the row.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the Chromium profile template is looked for when CHROMIUM_PROFILE_DIR is empty,
 * relative to the directory of the running binary: the installed layout (CMake computes the
 * path from bindir to datadir/sandboxd/chromium-profile), then a build tree (CMake links
 * chromium-profile beside the binary). No path of the build machine is compiled in. */
#ifndef SBX_PROFILE_FROM_BINDIR
#define SBX_PROFILE_FROM_BINDIR "../share/sandboxd/chromium-profile"
#endif
static const char *const profile_near_binary[] = {
    SBX_PROFILE_FROM_BINDIR,
    "chromium-profile",
};

enum setting_type { T_STR, T_INT, T_BOOL };

typedef struct setting {
    const char *name; /* --flag without dashes */
    const char *env;  /* environment variable, NULL = flag only */
    enum setting_type type;
    size_t offset;
    const char *def; /* default as text (NULL = unset) */
    int64_t min, max;
    const char *choices; /* T_STR: "a|b|c" or NULL for free text */
    const char *help;
} setting;

#define OFF(f) offsetof(sbx_config, f)

static const setting settings[] = {
    /* server */
    {"auth-token", "AUTH_TOKEN", T_STR, OFF(auth_token), NULL, 0, 0, NULL,
     "Master bearer token (required). Read from the environment only, then wiped from it."},
    {"dev", "SANDBOXD_DEV", T_BOOL, OFF(dev_mode), "false", 0, 0, NULL,
     "Development mode: without AUTH_TOKEN, mint a random token and print it once."},
    {"host", "HOST", T_STR, OFF(host), "127.0.0.1", 0, 0, NULL,
     "Address to listen on (0.0.0.0 for all interfaces)."},
    {"port", "PORT", T_INT, OFF(port), "8080", 0, 65535, NULL,
     "TCP port to listen on (0 picks a free port, logged at start)."},
    {"data-dir", "DATA_DIR", T_STR, OFF(data_dir), "/var/lib/sandboxd", 0, 0, NULL,
     "Where run and session directories live; swept of a dead server's leftovers at start."},
    {"max-body-bytes", "MAX_BODY_BYTES", T_INT, OFF(max_body_bytes), "16777216", 1024, 1073741824,
     NULL, "Largest request body accepted (413 beyond)."},
    {"log-level", "LOG_LEVEL", T_STR, OFF(log_level), "info", 0, 0, "error|warn|info|debug",
     "Log threshold."},
    {"max-connections", "MAX_CONNECTIONS", T_INT, OFF(max_connections), "1024", 16, 10000, NULL,
     "Requests handled at once (one thread each); more get 429 busy, and connections past twice "
     "this are closed."},
    {"conn-timeout-s", "CONN_TIMEOUT_S", T_INT, OFF(conn_timeout_s), "30", 1, 3600, NULL,
     "Seconds a connection may sit idle (a stalled client) before it is closed."},
    {"shutdown-grace-ms", "SHUTDOWN_GRACE_MS", T_INT, OFF(shutdown_grace_ms), "5000", 0, 120000,
     NULL,
     "On SIGTERM/SIGINT, how long in-flight requests may run before children are killed (with "
     "NODE_ID: also how long open sessions may go on while the replica drains)."},
    {"node-id", "NODE_ID", T_STR, OFF(node_id), "", 0, 0, NULL,
     "This replica's name in a cluster, [a-z0-9-]{1,40} (e.g. the pod name): session ids become "
     "<node>.<random>, another node's ids are 421, SIGTERM drains. Empty: a single server."},
    {"cluster-url", "CLUSTER_URL", T_STR, OFF(cluster_url), "", 0, 0, NULL,
     "With NODE_ID: the router's URL, where an MCP tool call naming another node's session is "
     "forwarded (empty: such a call is answered 421)."},

    /* exec */
    {"python-path", "PYTHON_PATH", T_STR, OFF(python_path), "", 0, 0, NULL,
     "Python interpreter for runs (empty: /usr/bin/python3, else python3 in PATH)."},
    {"exec-timeout-ms", "EXEC_TIMEOUT_MS", T_INT, OFF(exec_timeout_ms), "30000", 1,
     SBX_EXEC_TIMEOUT_MS_MAX, NULL,
     "Default wall-clock limit of a run when the request has no timeoutMs."},
    {"exec-output-bytes", "EXEC_OUTPUT_BYTES", T_INT, OFF(exec_output_bytes), "1048576", 1024,
     67108864, NULL, "Cap on each of stdout and stderr of a run; the rest is dropped and marked."},
    {"exec-max-runs", "EXEC_MAX_RUNS", T_INT, OFF(exec_max_runs), "8", 1, 256, NULL,
     "Runs executing at once; more wait up to EXEC_QUEUE_WAIT_MS, then 429 busy."},
    {"exec-queue-wait-ms", "EXEC_QUEUE_WAIT_MS", T_INT, OFF(exec_queue_wait_ms), "10000", 0, 600000,
     NULL, "How long a run waits for a free slot before 429 busy."},
    {"exec-memory-mb", "EXEC_MEMORY_MB", T_INT, OFF(exec_memory_mb), "512", 32, 65536, NULL,
     "Memory (address space) limit of a run, MiB."},
    {"exec-max-procs", "EXEC_MAX_PROCS", T_INT, OFF(exec_max_procs), "64", 1, 4096, NULL,
     "Processes and threads a run may have at once."},
    {"exec-file-size-mb", "EXEC_FILE_SIZE_MB", T_INT, OFF(exec_file_size_mb), "64", 1, 65536, NULL,
     "Largest file a run may write, MiB."},
    {"exec-open-files", "EXEC_OPEN_FILES", T_INT, OFF(exec_open_files), "256", 16, 65536, NULL,
     "Open file descriptors a run may hold."},
    {"exec-upload-max-mb", "EXEC_UPLOAD_MAX_MB", T_INT, OFF(exec_upload_max_mb), "32", 1, 4096,
     NULL, "Largest file sent to fileUploadUrl; bigger files are reported, not sent."},
    {"exec-upload-timeout-ms", "EXEC_UPLOAD_TIMEOUT_MS", T_INT, OFF(exec_upload_timeout_ms),
     "30000", 100, 600000, NULL, "Time limit of each upload to fileUploadUrl."},
    {"python-file-max-mb", "PYTHON_FILE_MAX_MB", T_INT, OFF(python_file_max_mb), "64", 1, 4096,
     NULL,
     "Largest file the files API of a Python session writes, copies or reads, MiB; a directory "
     "downloaded as a zip is capped at it too (then 413)."},
    {"python-session-quota-mb", "PYTHON_SESSION_QUOTA_MB", T_INT, OFF(python_session_quota_mb),
     "1024", 1, 1048576, NULL,
     "Bytes of files a Python session's work directory may hold when the files API adds some "
     "(uploads, copies), MiB; past it: 507 insufficient_storage."},
    {"exec-allow-network", "EXEC_ALLOW_NETWORK", T_BOOL, OFF(exec_allow_network), "false", 0, 0,
     NULL, "Old name of EXEC_NETWORK=open: true gives runs network through the egress gateway."},
    {"exec-network", "EXEC_NETWORK", T_STR, OFF(exec_network), "none", 0, 0, "none|allowlist|open",
     "What code runs may reach, always through the egress gateway: none (no network), allowlist "
     "(only EGRESS_ALLOWED_DOMAINS) or open (any domain but EGRESS_DENIED_DOMAINS)."},
    {"exec-allow-weak-sandbox", "EXEC_ALLOW_WEAK_SANDBOX", T_BOOL, OFF(exec_allow_weak_sandbox),
     "false", 0, 0, NULL,
     "Run programs even when the kernel refuses a sandbox layer (user namespaces, Landlock, "
     "seccomp); false: such runs are refused with 503 unavailable."},
    {"exec-mode", "EXEC_MODE", T_STR, OFF(exec_mode), "zygote", 0, 0, "zygote|fork",
     "zygote: runs fork from a sandboxed interpreter with modules preloaded; fork: cold start."},
    {"exec-preload", "EXEC_PRELOAD", T_STR, OFF(exec_preload), "auto", 0, 0, NULL,
     "Comma-separated modules the zygote imports (auto: common stdlib, numpy, pandas, "
     "matplotlib when installed, and urllib.request when EXEC_NETWORK is not none; empty: "
     "none)."},

    /* Python sessions (workspaces) */
    {"python-max-sessions", "PYTHON_MAX_SESSIONS", T_INT, OFF(python_max_sessions), "16", 1, 512,
     NULL, "Live Python sessions at most; beyond, 429 too_many_sessions."},
    {"python-idle-timeout-s", "PYTHON_IDLE_TIMEOUT_S", T_INT, OFF(python_idle_timeout_s), "3600", 1,
     2592000, NULL,
     "A Python session with no call for this long is closed (default of idleTimeoutS)."},
    {"python-ttl-s", "PYTHON_TTL_S", T_INT, OFF(python_ttl_s), "86400", 1, 2592000, NULL,
     "A Python session is closed this long after creation (default, and largest ttlS)."},
    {"python-busy-wait-ms", "PYTHON_BUSY_WAIT_MS", T_INT, OFF(python_busy_wait_ms), "2000", 0,
     600000, NULL, "How long a call waits for the session's call before it; then 409 busy."},
    {"python-interrupt-grace-ms", "PYTHON_INTERRUPT_GRACE_MS", T_INT,
     OFF(python_interrupt_grace_ms), "2000", 100, 60000, NULL,
     "After timeoutMs interrupted the code (KeyboardInterrupt), how long it may take to stop "
     "before the interpreter is killed and restarted empty (409 kernel_restarted)."},
    {"python-wheelhouse", "PYTHON_WHEELHOUSE", T_STR, OFF(python_wheelhouse), "", 0, 0, NULL,
     "Directory of wheels POST /python/sessions/{id}/packages installs from (pip --no-index "
     "--find-links; read-only to the session); empty: none."},
    {"python-index-url", "PYTHON_INDEX_URL", T_STR, OFF(python_index_url), "", 0, 0, NULL,
     "Package index for packages when there is no wheelhouse (the session needs network to "
     "reach it); empty: none."},

    /* browser */
    {"chromium-path", "CHROMIUM_PATH", T_STR, OFF(chromium_path), "", 0, 0, NULL,
     "Chromium binary (empty: chromium, chromium-browser or google-chrome from PATH)."},
    {"browser-max-sessions", "BROWSER_MAX_SESSIONS", T_INT, OFF(browser_max_sessions), "16", 1, 512,
     NULL, "Live browser sessions at most; beyond, 429 too_many_sessions."},
    {"browser-idle-timeout-s", "BROWSER_IDLE_TIMEOUT_S", T_INT, OFF(browser_idle_timeout_s), "300",
     1, 604800, NULL, "A session with no call for this long is closed."},
    {"browser-max-lifetime-s", "BROWSER_MAX_LIFETIME_S", T_INT, OFF(browser_max_lifetime_s),
     "86400", 1, 2592000, NULL, "A session is closed this long after creation, busy or not."},
    {"browser-call-timeout-ms", "BROWSER_CALL_TIMEOUT_MS", T_INT, OFF(browser_call_timeout_ms),
     "30000", 100, SBX_BROWSER_CALL_TIMEOUT_MS_MAX, NULL,
     "Default timeoutMs of navigate and actions."},
    {"browser-snapshot-max-chars", "BROWSER_SNAPSHOT_MAX_CHARS", T_INT,
     OFF(browser_snapshot_max_chars), "40000", 1000, 2000000, NULL,
     "Default maxChars of a snapshot or markdown read (a model's context is small)."},
    {"browser-launch-timeout-ms", "BROWSER_LAUNCH_TIMEOUT_MS", T_INT,
     OFF(browser_launch_timeout_ms), "20000", 1000, 120000, NULL,
     "How long a Chromium may take to answer its first CDP call."},
    {"browser-allow-hosts", "BROWSER_ALLOW_HOSTS", T_STR, OFF(browser_allow_hosts), "", 0, 0, NULL,
     "Comma-separated hosts navigation may reach (*.example.com allowed); empty = any."},
    {"browser-deny-hosts", "BROWSER_DENY_HOSTS", T_STR, OFF(browser_deny_hosts), "", 0, 0, NULL,
     "Comma-separated hosts navigation may never reach; checked before the allow list."},
    {"chromium-profile-dir", "CHROMIUM_PROFILE_DIR", T_STR, OFF(browser_profile_dir), "", 0, 0,
     NULL,
     "Profile template copied into every new session's directory (empty: " SBX_PROFILE_FROM_BINDIR
     " from the binary's directory if there, else chromium-profile beside it, as in a build "
     "tree)."},
    {"browser-network", "BROWSER_NETWORK", T_STR, OFF(browser_network), "open", 0, 0,
     "open|allowlist",
     "What browser sessions may reach through the egress gateway: open (any domain but "
     "EGRESS_DENIED_DOMAINS) or allowlist (only EGRESS_ALLOWED_DOMAINS)."},
    {"browser-pool-size", "BROWSER_POOL_SIZE", T_INT, OFF(browser_pool_size), "2", 0, 64, NULL,
     "Chromium instances kept launched and answering, each handed to one new session (0: off)."},
    {"browser-download-max-bytes", "BROWSER_DOWNLOAD_MAX_BYTES", T_INT,
     OFF(browser_download_max_bytes), "104857600", 1024, 68719476736, NULL,
     "A file a page downloads is canceled once it grows past this."},
    {"browser-downloads-max-bytes", "BROWSER_DOWNLOADS_MAX_BYTES", T_INT,
     OFF(browser_downloads_max_bytes), "524288000", 1024, 274877906944, NULL,
     "What one session's downloads may hold in all; a download that would pass it is canceled."},

    /* egress */
    {"egress-allowed-domains", "EGRESS_ALLOWED_DOMAINS", T_STR, OFF(egress_allowed_domains), "", 0,
     0, NULL,
     "Comma-separated domains the allowlist modes let through (*.example.com: it and every name "
     "below it)."},
    {"egress-denied-domains", "EGRESS_DENIED_DOMAINS", T_STR, OFF(egress_denied_domains), "", 0, 0,
     NULL, "Comma-separated domains never reached, in every mode; deny wins over allow."},
    {"egress-private-allowed", "EGRESS_PRIVATE_ALLOWED", T_STR, OFF(egress_private_allowed), "", 0,
     0, NULL,
     "Names, IPs or CIDRs that may be reached at private, loopback or link-local addresses "
     "(refused otherwise; the server's own port always is)."},
    {"egress-hosts", "EGRESS_HOSTS", T_STR, OFF(egress_hosts), "", 0, 0, NULL,
     "name=ip,... pairs the egress gateway consults before DNS (air-gapped installs, tests)."},
    {"egress-upstream-proxy", "EGRESS_UPSTREAM_PROXY", T_STR, OFF(egress_upstream_proxy), "", 0, 0,
     NULL,
     "http://[user:pass@]host:port or socks5://... every outbound connection is chained "
     "through (names are handed to it unresolved)."},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static sbx_config the_config;
const sbx_config *sbx_cfg = &the_config;

static void *field(const setting *s) {
    return (char *)&the_config + s->offset;
}

static int parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off") || !*v) {
        *out = false;
        return 0;
    }
    return -1;
}

static int choice_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n))
            return 1;
        p += len + (bar ? 1 : 0);
    }
    return 0;
}

/* Apply one textual value; `from` says where it came from for the error message. */
static int apply(const setting *s, const char *v, const char *from, FILE *err) {
    switch (s->type) {
    case T_STR: {
        if (s->choices && !choice_ok(s->choices, v)) {
            fprintf(err, "sandboxd: %s (%s) = \"%s\" is not one of %s\n", s->env ? s->env : "",
                    from, v, s->choices);
            return -1;
        }
        char **slot = field(s);
        char *copy = strdup(v);
        if (!copy)
            return -1;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        while (end && isspace((unsigned char)*end))
            end++;
        if (errno || end == v || *end || n < s->min || n > s->max) {
            fprintf(err, "sandboxd: %s (%s) = \"%s\" must be an integer from %lld to %lld\n",
                    s->env ? s->env : s->name, from, v, (long long)s->min, (long long)s->max);
            return -1;
        }
        *(int64_t *)field(s) = n;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(v, field(s)) < 0) {
            fprintf(err, "sandboxd: %s (%s) = \"%s\" must be true or false\n",
                    s->env ? s->env : s->name, from, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

static const setting *find_flag(const char *name, size_t len) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].name) == len && !strncmp(settings[i].name, name, len))
            return &settings[i];
    return NULL;
}

void config_free(void) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].type == T_STR) {
            char **slot = field(&settings[i]);
            free(*slot);
            *slot = NULL;
        }
}

/* The first of profile_near_binary that is a directory, as a real path (a template reached
 * through a link is copied, not linked), into `out`; "" when none is. */
static void find_profile_dir(char *out, size_t n) {
    char exe[PATH_MAX], cand[PATH_MAX + 64], real[PATH_MAX];
    struct stat st;
    out[0] = 0;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = 0;
    for (size_t i = 0; i < sizeof profile_near_binary / sizeof *profile_near_binary; i++) {
        snprintf(cand, sizeof cand, "%s/%s", exe, profile_near_binary[i]);
        if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode) && realpath(cand, real) &&
            strlen(real) < n) {
            memcpy(out, real, strlen(real) + 1);
            return;
        }
    }
}

int config_load(int argc, char **argv, FILE *err) {
    config_free();
    memset(&the_config, 0, sizeof the_config);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def && apply(&settings[i], settings[i].def, "default", err) < 0)
            return -1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = settings[i].env ? getenv(settings[i].env) : NULL;
        if (v && apply(&settings[i], v, "environment", err) < 0)
            return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            config_print_help(stdout, 0);
            return 1;
        }
        if (!strcmp(a, "--help-markdown")) {
            config_print_help(stdout, 1);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "sandboxd: unexpected argument \"%s\" (see --help)\n", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const setting *s = find_flag(name, len);
        if (!s) {
            fprintf(err, "sandboxd: unknown option \"--%.*s\" (see --help)\n", (int)len, name);
            return -1;
        }
        if (!strcmp(s->name, "auth-token")) {
            fprintf(err, "sandboxd: pass the token in AUTH_TOKEN, not on the command line "
                         "(arguments are visible to every user in ps)\n");
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && s->type == T_BOOL)
            v = "true";
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(err, "sandboxd: --%s needs a value (see --help)\n", s->name);
                return -1;
            }
            v = argv[++i];
        }
        if (apply(s, v, "command line", err) < 0)
            return -1;
    }
    if (!the_config.browser_profile_dir || !*the_config.browser_profile_dir) {
        char dir[PATH_MAX];
        find_profile_dir(dir, sizeof dir);
        char *copy = strdup(dir);
        if (!copy)
            return -1;
        free(the_config.browser_profile_dir);
        the_config.browser_profile_dir = copy;
    }
    return 0;
}

static void type_text(const setting *s, char *buf, size_t n) {
    if (s->type == T_INT)
        snprintf(buf, n, "int %lld..%lld", (long long)s->min, (long long)s->max);
    else if (s->type == T_BOOL)
        snprintf(buf, n, "bool");
    else if (s->choices)
        snprintf(buf, n, "%s", s->choices);
    else
        snprintf(buf, n, "string");
}

void config_print_help(FILE *out, int markdown) {
    char type[64];
    if (markdown) {
        fprintf(out, "| flag | env | type | default | meaning |\n|---|---|---|---|---|\n");
        for (size_t i = 0; i < NSETTINGS; i++) {
            const setting *s = &settings[i];
            type_text(s, type, sizeof type);
            for (char *p = type; (p = strchr(p, '|')) != NULL;)
                *p = '/'; /* a bare | would split the Markdown cell */
            const char *def = s->def ? s->def : "(required)";
            fprintf(out, "| `--%s` | `%s` | %s | %s%s%s | %s |\n", s->name, s->env ? s->env : "",
                    type, *def ? "`" : "", *def ? def : "(auto)", *def ? "`" : "", s->help);
        }
        return;
    }
    fprintf(out, "Usage: sandboxd [--flag value | --flag=value]...\n\n"
                 "A bearer-authenticated HTTP server that runs untrusted Python in a sandbox\n"
                 "and drives headless Chromium sessions over CDP.\n\n"
                 "Every setting is a flag or an environment variable (the flag wins):\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        type_text(s, type, sizeof type);
        const char *def = s->def ? s->def : "(required)";
        fprintf(out, "  --%-26s %-26s %s\n  %28s%s [%s; default: %s]\n\n", s->name,
                s->env ? s->env : "", "", "", s->help, type, *def ? def : "(auto)");
    }
    fprintf(out, "  --help                       this text\n"
                 "  --help-markdown              this table as Markdown\n"
                 "  --version                    print the version\n"
                 "  --routes                     print the route table (method path scope)\n");
}
