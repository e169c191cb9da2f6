/* upload.c -- multipart uploads of a finished run's files with libcurl. */
#define _GNU_SOURCE
#include "upload.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../common/log.h"
#include "../common/util.h"

#define MAX_FILES 1000
#define MAX_DEPTH 16

static atomic_bool g_cancel; /* upload_cancel_all: every transfer ends, no new one starts */

void upload_cancel_all(void) {
    atomic_store(&g_cancel, true);
}

/* libcurl's progress callback: nonzero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    return atomic_load(&g_cancel) ? 1 : 0;
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    sbx_buf_add(arg, p, size * n); /* capped: a huge reply is cut, not fatal */
    return size * n;
}

static cJSON *entry(const char *name, const char *url, long status, const char *error) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "filename", name);
    if (url)
        cJSON_AddStringToObject(o, "url", url);
    else
        cJSON_AddNullToObject(o, "url");
    cJSON_AddNumberToObject(o, "status", (double)status);
    if (error)
        cJSON_AddStringToObject(o, "error", error);
    return o;
}

typedef struct limits {
    int64_t max_mb, timeout_ms;
    struct curl_slist *resolve; /* the checked address, pinned (CURLOPT_RESOLVE) */
    char proxy[600];            /* the upstream proxy's URL, or "" (never the environment's) */
    const char *refused;        /* why the policy refuses the destination, or NULL */
} limits;

static void send_one(int dirfd, const char *name, const char *rel, const char *url,
                     const char *token, bool public_, const limits *lim, cJSON *out) {
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (lim->refused) {
        close(fd);
        char msg[400];
        snprintf(msg, sizeof msg, "refused by the egress policy: %s", lim->refused);
        cJSON_AddItemToArray(out, entry(rel, NULL, 0, msg));
        return;
    }
    int64_t cap = lim->max_mb * 1024 * 1024;
    if (st.st_size > cap) {
        close(fd);
        char msg[128];
        snprintf(msg, sizeof msg, "file is larger than EXEC_UPLOAD_MAX_MB (%lld MiB); not sent",
                 (long long)lim->max_mb);
        cJSON_AddItemToArray(out, entry(rel, NULL, 0, msg));
        return;
    }
    sbx_buf data;
    sbx_buf_init(&data, (size_t)cap);
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        sbx_buf_add(&data, chunk, (size_t)n);
    close(fd);

    CURL *h = curl_easy_init();
    sbx_buf reply;
    sbx_buf_init(&reply, 64 * 1024);
    struct curl_slist *hdrs = NULL;
    char authz[1024];
    if (token && *token) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, authz);
    }
    curl_mime *mime = curl_mime_init(h);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    curl_mime_filename(part, rel);
    curl_mime_type(part, "application/octet-stream");
    curl_mime_data(part, data.data ? data.data : "", data.len);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "public");
    curl_mime_data(part, public_ ? "true" : "false", CURL_ZERO_TERMINATED);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)lim->timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_RESOLVE, lim->resolve);
    curl_easy_setopt(h, CURLOPT_PROXY, lim->proxy); /* "": no proxy from the environment */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = atomic_load(&g_cancel) ? CURLE_ABORTED_BY_CALLBACK : curl_easy_perform(h);
    long status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        cJSON *j = reply.data ? cJSON_Parse(reply.data) : NULL;
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(j, "url"));
        cJSON_AddItemToArray(out, entry(rel, u, status, NULL));
        cJSON_Delete(j);
    } else {
        cJSON_AddItemToArray(out, entry(rel, NULL, 0, curl_easy_strerror(rc)));
    }
    curl_mime_free(mime);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    sbx_buf_free(&reply);
    sbx_buf_free(&data);
}

static void walk(int dirfd, const char *prefix, int depth, const char *url, const char *token,
                 bool public_, const limits *lim, cJSON *out) {
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    char rel[PATH_MAX];
    while ((e = readdir(d)) && cJSON_GetArraySize(out) < MAX_FILES) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "", e->d_name);
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            send_one(dirfd, e->d_name, rel, url, token, public_, lim, out);
        } else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk(sub, rel, depth + 1, url, token, public_, lim, out);
        }
    }
    closedir(d);
}

/* Resolve `host` (EGRESS_HOSTS, then DNS) and pick the first address the policy allows for
 * port; on success write "host:port:address" for CURLOPT_RESOLVE to pin. false with the
 * reason in why[0..n) when none passes (or the name does not resolve: "" then). */
static bool pick_address(const egress_policy *pol, const char *host, unsigned port, char *pin,
                         size_t pn, char *why, size_t n) {
    struct sockaddr_storage ss;
    socklen_t sl;
    struct addrinfo *res = NULL, one = {0};
    if (egress_hosts_lookup(pol, host, &ss, &sl)) {
        one.ai_family = ss.ss_family;
        one.ai_addr = (struct sockaddr *)&ss;
        one.ai_addrlen = sl;
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        if (getaddrinfo(host, NULL, &hints, &res) != 0) {
            why[0] = 0;
            return false;
        }
    }
    why[0] = 0;
    bool ok = false;
    for (struct addrinfo *a = res ? res : &one; a && !ok; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        struct sockaddr_storage s;
        memcpy(&s, a->ai_addr, a->ai_addrlen);
        char ip[INET6_ADDRSTRLEN];
        if (s.ss_family == AF_INET) {
            ((struct sockaddr_in *)&s)->sin_port = htons((uint16_t)port);
            inet_ntop(AF_INET, &((struct sockaddr_in *)&s)->sin_addr, ip, sizeof ip);
        } else {
            ((struct sockaddr_in6 *)&s)->sin6_port = htons((uint16_t)port);
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&s)->sin6_addr, ip, sizeof ip);
        }
        if (!egress_check_addr(pol, host, (struct sockaddr *)&s, why, n))
            continue;
        snprintf(pin, pn, s.ss_family == AF_INET6 ? "%s:%u:[%s]" : "%s:%u:%s", host, port, ip);
        ok = true;
    }
    if (res)
        freeaddrinfo(res);
    return ok;
}

/* Check the destination of `url` (or the upstream) and fill lim->resolve / lim->proxy, or set
 * lim->refused (pointing into why). */
static void check_destination(const char *url, const egress_policy *pol, const egress_upstream *up,
                              limits *lim, char *why, size_t n) {
    char *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(why, n, "fileUploadUrl has no host");
        lim->refused = why;
        goto out;
    }
    char bare[300];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
        snprintf(bare, sizeof bare, "%.*s", (int)(hl - 2), host + 1);
    else
        snprintf(bare, sizeof bare, "%s", host);
    unsigned dport = (unsigned)atoi(port);
    char pin[400];
    if (up) { /* the destination is the upstream's to reach: check what we know of it */
        struct sockaddr_storage ss;
        socklen_t sl;
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res = NULL;
        bool known = egress_hosts_lookup(pol, bare, &ss, &sl);
        if (!known && getaddrinfo(bare, NULL, &hints, &res) == 0) {
            memcpy(&ss, res->ai_addr, res->ai_addrlen);
            freeaddrinfo(res);
            known = true;
        }
        if (known) {
            if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)dport);
            else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)dport);
            if (!egress_check_addr(pol, bare, (struct sockaddr *)&ss, why, n)) {
                lim->refused = why;
                goto out;
            }
        }
        if (!pick_address(pol, up->host, up->port, pin, sizeof pin, why, n)) {
            if (!why[0])
                snprintf(why, n, "the upstream proxy %s does not resolve", up->host);
            lim->refused = why;
            goto out;
        }
        bool v6 = strchr(up->host, ':') != NULL;
        snprintf(lim->proxy, sizeof lim->proxy, "%s://%s%s%s:%u",
                 strcmp(up->scheme, "socks5") ? "http" : "socks5h", v6 ? "[" : "", up->host,
                 v6 ? "]" : "", (unsigned)up->port);
    } else if (!pick_address(pol, bare, dport, pin, sizeof pin, why, n)) {
        if (!why[0])
            snprintf(why, n, "%.200s does not resolve", bare);
        lim->refused = why;
        goto out;
    }
    lim->resolve = curl_slist_append(NULL, pin);
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

cJSON *upload_dir(const char *work_dir, const char *url, const char *token, bool public_,
                  int64_t max_mb, int64_t timeout_ms, const egress_policy *pol,
                  const egress_upstream *up) {
    limits lim = {.max_mb = max_mb, .timeout_ms = timeout_ms};
    char why[300] = "";
    if (pol)
        check_destination(url, pol, up, &lim, why, sizeof why);
    else
        lim.refused = "no egress policy";
    if (lim.refused)
        LOG_W("upload", "fileUploadUrl refused by the egress policy: %s", lim.refused);
    cJSON *out = cJSON_CreateArray();
    int fd = open(work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        walk(fd, "", 0, url, token, public_, &lim, out);
    curl_slist_free_all(lim.resolve);
    return out;
}
