/* api_python_files.c -- the files of a Python session's work directory over HTTP: list, upload
 * (multipart/form-data with several file parts, or JSON), download (raw, base64, text; a
 * directory as a zip) and operations (rename, move, copy, remove, mkdir).
 *
 * Each handler borrows the session with ws_get (another token's session is 404, as if it did
 * not exist), checks every path as text with wsf_path_clean and lets wsfiles.c resolve it
 * beneath the work directory's descriptor: nothing here joins strings into host paths.
 * Caps: PYTHON_FILE_MAX_MB per file (and per zip), PYTHON_SESSION_QUOTA_MB per session.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/base64.h"
#include "../common/jfield.h"
#include "../exec/workspace.h"
#include "../exec/wsfiles.h"
#include "http.h"
#include "multipart.h"

#define MAX_UPLOAD_PARTS 64 /* parts of one multipart upload */

static wsf_limits limits(void) {
    const http_defaults *d = http_defaults_get();
    return (wsf_limits){.file_max = d->python_file_max_bytes, .quota = d->python_quota_bytes};
}

/* The session of the route's {id}, or NULL after answering 404. */
static ws_session *session_of(http_req *r) {
    sbx_err e;
    ws_session *s = ws_get(r->params[0], http_viewer(r), &e);
    if (!s)
        http_reply_error(r, &e);
    return s;
}

/* True when the JSON text holds a \u0000 escape (cJSON would cut the string there, so a path
 * with a NUL byte would quietly name another file, and text content would lose its tail):
 * such a body is refused. */
static bool has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && !strncmp(s + i + 2, "0000", 4))
            return true;
        i++; /* skip the escaped character (an escaped backslash too) */
    }
    return false;
}

/* The JSON body, refusing a NUL escape; NULL after answering. */
static cJSON *json_body(http_req *r) {
    sbx_err e;
    if (!r->capture && has_nul_escape(r->body, r->body_len)) {
        http_fail(r, SBX_EINVAL,
                  "a string in the body contains a NUL byte (\\u0000): a path cannot hold "
                  "one, and file bytes like it go in contentBase64");
        return NULL;
    }
    cJSON *body = http_json_body(r, &e);
    if (!body)
        http_reply_error(r, &e);
    return body;
}

/* A cleaned path from a C string (a query argument, a JSON field, a route tail). */
static sbx_code clean_str(const char *in, bool root_ok, char out[WSF_PATH_MAX + 1], sbx_err *e) {
    return wsf_path_clean(in ? in : "", in ? strlen(in) : 0, root_ok, out, e);
}

/* ---- GET /python/sessions/{id}/files?path=&depth= ---- */

static void h_list(http_req *r) {
    ws_session *s = session_of(r);
    if (!s)
        return;
    sbx_err e;
    char path[WSF_PATH_MAX + 1];
    const char *depth_s = http_query(r, "depth");
    long depth = 1;
    if (depth_s) {
        char *end;
        depth = strtol(depth_s, &end, 10);
        if (!*depth_s || *end || depth < 1 || depth > WSF_MAX_DEPTH) {
            ws_done(s);
            http_fail(r, SBX_EINVAL, "query 'depth' must be an integer from 1 to %d",
                      WSF_MAX_DEPTH);
            return;
        }
    }
    cJSON *files = NULL;
    size_t plen = 0;
    const char *p = http_query_n(r, "path", &plen);
    if (wsf_path_clean(p, plen, true, path, &e) != SBX_OK ||
        wsf_list(ws_workdir_fd(s), path, (int)depth, &files, &e) != SBX_OK) {
        ws_done(s);
        http_reply_error(r, &e);
        return;
    }
    ws_done(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "files", files);
    http_reply_json(r, 200, o);
}

/* ---- POST /python/sessions/{id}/files ---- */

typedef struct upload {
    char path[WSF_PATH_MAX + 1];
    const char *data;
    size_t len;
    char *owned; /* decoded base64, freed after the writes */
} upload;

static void uploads_free(upload *u, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(u[i].owned);
    free(u);
}

/* Join a directory and a name (both cleaned) into `out`. */
static sbx_code join_clean(const char *dir, const char *name, char out[WSF_PATH_MAX + 1],
                           sbx_err *e) {
    char tmp[2 * WSF_PATH_MAX + 2];
    snprintf(tmp, sizeof tmp, "%s%s%s", dir, *dir && *name ? "/" : "", name);
    return wsf_path_clean(tmp, strlen(tmp), false, out, e);
}

/* Multipart: every part named "file" is a file (named by its filename parameter); an optional
 * "path" part is where they go: a directory (it ends in '/', exists as one, or several files
 * came), or with one file, that file's own path. */
static sbx_code parse_multipart(http_req *r, ws_session *s, upload **out, size_t *nout,
                                sbx_err *e) {
    char boundary[MP_BOUNDARY_MAX + 1];
    if (mp_boundary(http_header(r, "Content-Type"), boundary, e) != SBX_OK)
        return e->code;
    mp_part *parts = calloc(MAX_UPLOAD_PARTS, sizeof *parts);
    size_t n = 0;
    if (!parts)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    if (mp_parse(r->body, r->body_len, boundary, parts, MAX_UPLOAD_PARTS, &n, e) != SBX_OK) {
        free(parts);
        return e->code;
    }
    const mp_part *dirp = NULL;
    size_t nfiles = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(parts[i].name, "path"))
            dirp = &parts[i];
        else if (!strcmp(parts[i].name, "file"))
            nfiles++;
    }
    char dir[WSF_PATH_MAX + 1] = "";
    bool as_dir = nfiles != 1;
    if (!nfiles) {
        free(parts);
        return sbx_fail(e, SBX_EINVAL, "the multipart body has no 'file' part");
    }
    if (dirp) {
        if (wsf_path_clean(dirp->data, dirp->len, true, dir, e) != SBX_OK) {
            free(parts);
            return e->code;
        }
        if (!*dir || (dirp->len && dirp->data[dirp->len - 1] == '/'))
            as_dir = true;
        sbx_err ignored;
        int fd = *dir ? wsf_open(ws_workdir_fd(s), dir, O_PATH | O_DIRECTORY, 0, &ignored) : -1;
        if (fd >= 0) {
            as_dir = true;
            close(fd);
        }
    } else {
        as_dir = true;
    }
    upload *u = calloc(nfiles, sizeof *u);
    size_t k = 0;
    sbx_code rc = u ? SBX_OK : sbx_fail(e, SBX_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n && rc == SBX_OK; i++) {
        const mp_part *p = &parts[i];
        if (strcmp(p->name, "file") != 0)
            continue;
        if (as_dir) {
            char name[WSF_PATH_MAX + 1];
            if (!p->has_filename || !p->filename_len)
                rc = sbx_fail(e, SBX_EINVAL,
                              "multipart part %zu ('file') has no filename: give one, or a 'path' "
                              "field for a single file",
                              i + 1);
            else if (wsf_path_clean(p->filename, p->filename_len, false, name, e) == SBX_OK)
                rc = join_clean(dir, name, u[k].path, e);
            else
                rc = e->code;
        } else {
            memcpy(u[k].path, dir, strlen(dir) + 1);
        }
        u[k].data = p->data;
        u[k].len = p->len;
        k++;
    }
    free(parts);
    if (rc != SBX_OK) {
        uploads_free(u, k);
        return rc;
    }
    *out = u;
    *nout = k;
    return SBX_OK;
}

/* One JSON file: {path, contentBase64} or {path, content} (text). */
static sbx_code parse_json_file(const cJSON *o, const char *where, upload *u, sbx_err *e) {
    const char *path = NULL, *b64 = NULL, *text = NULL;
    if (jf_only(o, "path|contentBase64|content", e) || jf_string(o, "path", true, &path, e) ||
        jf_string(o, "contentBase64", false, &b64, e) || jf_string(o, "content", false, &text, e))
        return e->code;
    if (!!b64 == !!text)
        return sbx_fail(e, SBX_EINVAL,
                        "%sgive exactly one of the fields 'contentBase64' and "
                        "'content'",
                        where);
    if (clean_str(path, false, u->path, e) != SBX_OK)
        return e->code;
    if (text) {
        u->data = text;
        u->len = strlen(text);
        return SBX_OK;
    }
    size_t len = 0;
    u->owned = sbx_b64_decode(b64, strlen(b64), &len);
    if (!u->owned)
        return sbx_fail(e, SBX_EINVAL,
                        "%sfield 'contentBase64' is not base64 (RFC 4648, no "
                        "whitespace)",
                        where);
    u->data = u->owned;
    u->len = len;
    return SBX_OK;
}

/* JSON: one file {path, contentBase64|content} or {files: [{...}, ...]}. */
static sbx_code parse_json(const cJSON *body, upload **out, size_t *nout, sbx_err *e) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(body, "files");
    if (!files) {
        upload *u = calloc(1, sizeof *u);
        if (!u)
            return sbx_fail(e, SBX_EINTERNAL, "out of memory");
        if (parse_json_file(body, "", u, e) != SBX_OK) {
            uploads_free(u, 1);
            return e->code;
        }
        *out = u;
        *nout = 1;
        return SBX_OK;
    }
    int n = cJSON_GetArraySize(files);
    if (jf_only(body, "files", e))
        return e->code;
    if (!cJSON_IsArray(files) || n < 1 || n > MAX_UPLOAD_PARTS)
        return sbx_fail(e, SBX_EINVAL, "field 'files' must be an array of 1 to %d objects",
                        MAX_UPLOAD_PARTS);
    upload *u = calloc((size_t)n, sizeof *u);
    if (!u)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    int i = 0;
    for (const cJSON *f = files->child; f; f = f->next, i++) {
        char where[48];
        snprintf(where, sizeof where, "files[%d]: ", i);
        if (!cJSON_IsObject(f)) {
            sbx_fail(e, SBX_EINVAL, "%smust be an object {path, contentBase64}", where);
            uploads_free(u, (size_t)n);
            return SBX_EINVAL;
        }
        if (parse_json_file(f, where, &u[i], e) != SBX_OK) {
            uploads_free(u, (size_t)n);
            return e->code;
        }
    }
    *out = u;
    *nout = (size_t)n;
    return SBX_OK;
}

static void h_upload(http_req *r) {
    sbx_err e;
    const char *ct = http_header(r, "Content-Type");
    bool multipart = ct && !strncasecmp(ct, "multipart/", 10);
    cJSON *body = NULL;
    if (!multipart && !(body = json_body(r)))
        return;
    ws_session *s = session_of(r);
    if (!s)
        return;
    upload *u = NULL;
    size_t n = 0;
    sbx_code rc = multipart ? parse_multipart(r, s, &u, &n, &e) : parse_json(body, &u, &n, &e);
    wsf_limits lim = limits();
    /* every file is checked before any is written: over the cap, nothing lands */
    for (size_t i = 0; rc == SBX_OK && i < n; i++)
        if (lim.file_max > 0 && (int64_t)u[i].len > lim.file_max)
            rc = sbx_fail(&e, SBX_ETOOLARGE,
                          "file '%.200s' is %zu bytes, over the cap of %lld bytes "
                          "(PYTHON_FILE_MAX_MB)",
                          u[i].path, u[i].len, (long long)lim.file_max);
    /* several files: all of them must fit the quota (as new bytes), or none is written */
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (int64_t)u[i].len;
    int64_t used = rc == SBX_OK && n > 1 && lim.quota > 0 ? wsf_usage(ws_workdir_fd(s), &e) : 0;
    if (used < 0)
        rc = e.code;
    else if (rc == SBX_OK && n > 1 && lim.quota > 0 && used + total > lim.quota)
        rc = sbx_fail(&e, SBX_ENOSPACE,
                      "these %zu files (%lld bytes) would take the session's files over its quota "
                      "of %lld bytes (PYTHON_SESSION_QUOTA_MB): remove files first",
                      n, (long long)total, (long long)lim.quota);
    cJSON *files = cJSON_CreateArray();
    for (size_t i = 0; rc == SBX_OK && i < n; i++) {
        rc = wsf_write(ws_workdir_fd(s), u[i].path, u[i].data, u[i].len, &lim, &e);
        if (rc == SBX_OK) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", u[i].path);
            cJSON_AddNumberToObject(f, "size", (double)u[i].len);
            cJSON_AddItemToArray(files, f);
        }
    }
    ws_done(s);
    uploads_free(u, n);
    if (rc != SBX_OK) {
        cJSON_Delete(files);
        http_reply_error(r, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "files", files);
    http_reply_json(r, 201, o);
}

/* ---- GET /python/sessions/{id}/files/{path+}?format=raw|base64|text ---- */

/* The last name of a cleaned path ("" gives "files"), for a download's file name. */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return *path ? (slash ? slash + 1 : path) : "files";
}

static void h_read(http_req *r) {
    const char *format = http_query(r, "format");
    if (!format || !*format)
        format = "raw";
    if (strcmp(format, "raw") && strcmp(format, "base64") && strcmp(format, "text")) {
        http_fail(r, SBX_EINVAL, "query 'format' must be raw, base64 or text (got '%.40s')",
                  format);
        return;
    }
    ws_session *s = session_of(r);
    if (!s)
        return;
    sbx_err e;
    char path[WSF_PATH_MAX + 1];
    char *data = NULL;
    size_t len = 0;
    bool dir = false;
    size_t max = (size_t)http_defaults_get()->python_file_max_bytes;
    sbx_code rc = clean_str(r->params[1], true, path, &e);
    if (rc == SBX_OK)
        rc = wsf_read(ws_workdir_fd(s), path, max, &data, &len, &dir, &e);
    if (rc == SBX_OK && dir) {
        if (!strcmp(format, "text"))
            rc = sbx_fail(&e, SBX_EINVAL,
                          "'%.200s' is a directory: it has no text form (format=raw gives a zip)",
                          *path ? path : ".");
        else
            rc = wsf_zip(ws_workdir_fd(s), path, max, &data, &len, &e);
    }
    ws_done(s);
    if (rc != SBX_OK) {
        http_reply_error(r, &e);
        return;
    }
    if (!strcmp(format, "base64")) {
        char *b64 = malloc(SBX_B64_ENCODED_LEN(len) + 1);
        if (!b64) {
            free(data);
            http_fail(r, SBX_EINTERNAL, "out of memory");
            return;
        }
        sbx_b64_encode(data ? data : "", len, b64);
        free(data);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddStringToObject(o, "type", dir ? "dir" : "file");
        cJSON_AddNumberToObject(o, "size", (double)len);
        if (dir)
            cJSON_AddStringToObject(o, "contentType", "application/zip");
        cJSON_AddStringToObject(o, "contentBase64", b64);
        free(b64);
        http_reply_json(r, 200, o);
        return;
    }
    if (!strcmp(format, "text")) {
        http_reply_bytes(r, 200, "text/plain; charset=utf-8", data, len);
        return;
    }
    /* raw: a download; the name is quoted with its quotes and backslashes dropped */
    char name[300], disp[400];
    size_t k = 0;
    for (const char *p = base_name(path); *p && k + 1 < sizeof name - 4; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            name[k++] = *p;
    name[k] = '\0';
    snprintf(disp, sizeof disp, "attachment; filename=\"%s%s\"", name, dir ? ".zip" : "");
    http_add_header(r, "Content-Disposition", disp);
    http_reply_bytes(r, 200, dir ? "application/zip" : "application/octet-stream", data, len);
}

/* ---- POST /python/sessions/{id}/files/operation ---- */

static void h_operation(http_req *r) {
    cJSON *body = json_body(r);
    if (!body)
        return;
    sbx_err e;
    const char *op = NULL, *path_s = NULL, *to_s = NULL;
    if (jf_only(body, "operation|path|to", &e) ||
        jf_enum(body, "operation", true, "rename|move|copy|remove|mkdir", &op, &e) ||
        jf_string(body, "path", true, &path_s, &e) || jf_string(body, "to", false, &to_s, &e)) {
        http_reply_error(r, &e);
        return;
    }
    bool needs_to = !strcmp(op, "rename") || !strcmp(op, "move") || !strcmp(op, "copy");
    if (needs_to && !to_s) {
        http_fail(r, SBX_EINVAL, "field 'to' is required for operation '%s'", op);
        return;
    }
    if (!needs_to && to_s) {
        http_fail(r, SBX_EINVAL, "field 'to' is not used by operation '%s': leave it out", op);
        return;
    }
    char path[WSF_PATH_MAX + 1], to[WSF_PATH_MAX + 1];
    if (clean_str(path_s, false, path, &e) != SBX_OK ||
        (to_s && clean_str(to_s, false, to, &e) != SBX_OK)) {
        http_reply_error(r, &e);
        return;
    }
    ws_session *s = session_of(r);
    if (!s)
        return;
    int root = ws_workdir_fd(s);
    wsf_limits lim = limits();
    sbx_code rc;
    if (!strcmp(op, "rename"))
        rc = wsf_rename(root, path, to, false, &e);
    else if (!strcmp(op, "move"))
        rc = wsf_rename(root, path, to, true, &e);
    else if (!strcmp(op, "copy"))
        rc = wsf_copy(root, path, to, &lim, &e);
    else if (!strcmp(op, "remove"))
        rc = wsf_remove(root, path, &e);
    else
        rc = wsf_mkdir(root, path, &e);
    ws_done(s);
    if (rc != SBX_OK) {
        http_reply_error(r, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", true);
    http_reply_json(r, 200, o);
}

const http_route api_python_files_routes[] = {
    {"GET", "/python/sessions/{id}/files", h_list, "exec", false},
    {"POST", "/python/sessions/{id}/files", h_upload, "exec", false},
    {"POST", "/python/sessions/{id}/files/operation", h_operation, "exec", false},
    {"GET", "/python/sessions/{id}/files/{path+}", h_read, "exec", false},
    {0},
};
