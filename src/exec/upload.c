/* upload.c -- multipart uploads of a finished run's files with libcurl. */
#define _GNU_SOURCE
#include "upload.h"

#include <dirent.h>
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

cJSON *upload_dir(const char *work_dir, const char *url, const char *token, bool public_,
                  int64_t max_mb, int64_t timeout_ms) {
    limits lim = {.max_mb = max_mb, .timeout_ms = timeout_ms};
    cJSON *out = cJSON_CreateArray();
    int fd = open(work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        walk(fd, "", 0, url, token, public_, &lim, out);
    return out;
}
