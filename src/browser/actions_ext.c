/* actions_ext.c -- back, forward, reload and upload (see actions_ext.h).
 *
 * History moves are waited for by looking, every POLL_MS, at what the browser shows: the
 * navigation entry Chromium made current and the readiness of the document in the tab. That
 * covers a move to another document, one restored from the back-forward cache (which makes no
 * new loader) and one within the same document (pushState entries) alike. A reload always
 * makes a new document: its new loader is waited for through the tab's lifecycle events.
 */
#define _GNU_SOURCE
#include "actions_ext.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/base64.h"
#include "../common/jfield.h"
#include "../common/util.h"
#include "tab.h"

#define POLL_MS 50

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t left_ms(int64_t deadline, int64_t floor) {
    int64_t l = deadline - sbx_now_ms();
    return l < floor ? floor : l;
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- back, forward, reload ---- */

/* The tab's history: *index the current entry, *entries the array (in *hist; caller frees). */
static sbx_code history(br_page *p, int64_t deadline, cJSON **hist, int *index,
                        const cJSON **entries, sbx_err *e) {
    sbx_code rc =
        br_page_call(p, "Page.getNavigationHistory", NULL, left_ms(deadline, 1000), hist, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(*hist, "currentIndex");
    *index = cJSON_IsNumber(cur) ? cur->valueint : -1;
    *entries = cJSON_GetObjectItemCaseSensitive(*hist, "entries");
    return SBX_OK;
}

/* True when the tab's document is ready enough for `need` (errors while it changes: no). */
static bool doc_ready(br_page *p, bool dcl_only, int64_t deadline) {
    cJSON *v = NULL;
    sbx_err e2;
    if (br_page_eval(p, "document.readyState", left_ms(deadline, 500), &v, &e2) != SBX_OK)
        return false;
    bool ok = cJSON_IsString(v) && (strcmp(v->valuestring, "complete") == 0 ||
                                    (dcl_only && strcmp(v->valuestring, "interactive") == 0));
    cJSON_Delete(v);
    return ok;
}

/* Add the current entry's url and title to `out`. */
static sbx_code add_where(br_page *p, int64_t deadline, cJSON *out, sbx_err *e) {
    cJSON *hist = NULL;
    const cJSON *entries;
    int idx;
    sbx_code rc = history(p, deadline, &hist, &idx, &entries, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *cur = cJSON_GetArrayItem(entries, idx);
    cJSON_AddStringToObject(out, "url", jstr(cur, "url") ? jstr(cur, "url") : "");
    cJSON_AddStringToObject(out, "title", jstr(cur, "title") ? jstr(cur, "title") : "");
    cJSON_Delete(hist);
    return SBX_OK;
}

static sbx_code reload(br_page *p, unsigned need, int64_t deadline, sbx_err *e) {
    char old[64], now[64];
    br_page_loader(p, old);
    sbx_code rc = br_page_call(p, "Page.reload", NULL, left_ms(deadline, 1000), NULL, e);
    if (rc != SBX_OK)
        return rc;
    for (;;) {
        br_page_loader(p, now);
        if (strcmp(now, old) != 0)
            break;
        if (sbx_now_ms() + POLL_MS >= deadline)
            return sbx_fail(e, SBX_ETIMEOUT, "reload: the page did not start loading in time");
        sleep_ms(POLL_MS);
    }
    int status = 0;
    switch (br_page_wait_loaded(p, now, need, deadline, &status)) {
    case SBX_OK:
        return SBX_OK;
    case SBX_ECRASHED:
        return sbx_fail(e, SBX_ECRASHED, "the session's Chromium died");
    case SBX_ETABCRASHED:
        return sbx_fail(e, SBX_ETABCRASHED, "the tab's renderer died while reloading");
    case SBX_ENOTFOUND:
        return sbx_fail(e, SBX_ENOTFOUND, "the tab was closed");
    default:
        return sbx_fail(e, SBX_ETIMEOUT, "reload: the page did not load in time");
    }
}

sbx_code br_act_history(br_page *p, const cJSON *req, int delta, int64_t deadline, cJSON *out,
                        sbx_err *e) {
    const char *wait = "load";
    if (jf_enum(req, "waitUntil", false, "load|domcontentloaded", &wait, e) != SBX_OK)
        return SBX_EINVAL;
    bool dcl = strcmp(wait, "domcontentloaded") == 0;
    sbx_code rc;
    if (delta == 0) {
        rc = reload(p, dcl ? BR_LC_DCL : BR_LC_LOAD, deadline, e);
        return rc == SBX_OK ? add_where(p, deadline, out, e) : rc;
    }
    const char *what = delta < 0 ? "back" : "forward";
    cJSON *hist = NULL;
    const cJSON *entries;
    int idx;
    if ((rc = history(p, deadline, &hist, &idx, &entries, e)) != SBX_OK)
        return rc;
    int target = idx + delta;
    const cJSON *entry = target >= 0 ? cJSON_GetArrayItem(entries, target) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "id");
    if (!cJSON_IsNumber(id)) {
        cJSON_Delete(hist);
        return sbx_fail(e, SBX_ECONFLICT, "%s: the tab has no %s page in its history", what,
                        delta < 0 ? "earlier" : "later");
    }
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "entryId", id->valuedouble);
    cJSON_Delete(hist);
    rc = br_page_call(p, "Page.navigateToHistoryEntry", a, left_ms(deadline, 1000), NULL, e);
    if (rc != SBX_OK)
        return rc;
    for (;;) {
        rc = history(p, deadline, &hist, &idx, &entries, e);
        /* While a move swaps the tab's document into another renderer the target answers
         * "Not attached to an active page" for a moment: look again. */
        if (rc == SBX_EINTERNAL && strstr(e->msg, "Not attached") &&
            sbx_now_ms() + POLL_MS < deadline) {
            sleep_ms(POLL_MS);
            continue;
        }
        if (rc != SBX_OK)
            return rc;
        cJSON_Delete(hist);
        if (idx == target && doc_ready(p, dcl, deadline))
            break;
        if (sbx_now_ms() + POLL_MS >= deadline)
            return sbx_fail(e, SBX_ETIMEOUT, "%s: the page did not reach %s in time", what, wait);
        sleep_ms(POLL_MS);
    }
    return add_where(p, deadline, out, e);
}

/* ---- upload ---- */

/* A file name as the page will see it: one path segment, printable, at most 200 bytes. */
static bool name_ok(const char *n) {
    size_t len = strlen(n);
    if (len == 0 || len > 200 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
        return false;
    for (const unsigned char *c = (const unsigned char *)n; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\')
            return false;
    return true;
}

/* The remote object of the file input `sel`, waited for until `deadline`: its objectId into
 * `oid` (room for 256), whether it takes several files. */
static sbx_code find_input(br_page *p, const char *sel, int64_t deadline, int64_t timeout_ms,
                           char *oid, bool *multiple, sbx_err *e) {
    cJSON *lit = cJSON_CreateString(sel);
    char *sl = lit ? cJSON_PrintUnformatted(lit) : NULL;
    cJSON_Delete(lit);
    if (!sl)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    sbx_buf js;
    sbx_buf_init(&js, 64 * 1024);
    sbx_buf_addf(&js,
                 "(() => { let el; try { el = document.querySelector(%s); } catch (x) {"
                 " return 'bad:' + x.message; } if (!el) return null;"
                 " if (!(el instanceof HTMLInputElement) || el.type !== 'file')"
                 " return 'notfile:' + el.tagName.toLowerCase() + (el.type ? '[type=' + el.type"
                 " + ']' : ''); return el; })()",
                 sl);
    free(sl);
    if (js.truncated) {
        sbx_buf_free(&js);
        return sbx_fail(e, SBX_EINVAL, "selector: too long");
    }
    sbx_code rc;
    for (;;) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "expression", js.data);
        cJSON *res = NULL;
        rc = br_page_call(p, "Runtime.evaluate", a, left_ms(deadline, 500), &res, e);
        if (rc != SBX_OK)
            break;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "result");
        const char *type = jstr(r, "type"), *id = jstr(r, "objectId");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "value");
        if (type && strcmp(type, "object") == 0 && id) {
            snprintf(oid, 256, "%s", id);
            cJSON_Delete(res);
            /* multiple: asked of the element itself */
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "objectId", oid);
            cJSON_AddStringToObject(c, "functionDeclaration",
                                    "function() { return this.multiple; }");
            cJSON_AddBoolToObject(c, "returnByValue", 1);
            cJSON *mr = NULL;
            rc = br_page_call(p, "Runtime.callFunctionOn", c, left_ms(deadline, 500), &mr, e);
            if (rc == SBX_OK)
                *multiple = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(mr, "result"), "value"));
            cJSON_Delete(mr);
            break;
        }
        if (cJSON_IsString(v) && strncmp(v->valuestring, "bad:", 4) == 0) {
            rc = sbx_fail(e, SBX_EINVAL, "selector: invalid CSS selector '%s': %s", sel,
                          v->valuestring + 4);
            cJSON_Delete(res);
            break;
        }
        if (cJSON_IsString(v) && strncmp(v->valuestring, "notfile:", 8) == 0) {
            rc = sbx_fail(e, SBX_EINVAL, "selector: '%s' is a %s, not an <input type=file>", sel,
                          v->valuestring + 8);
            cJSON_Delete(res);
            break;
        }
        cJSON_Delete(res);
        if (sbx_now_ms() + POLL_MS >= deadline) {
            rc = sbx_fail(e, SBX_ENOELEMENT, "element '%s' was not found within %lld ms", sel,
                          (long long)timeout_ms);
            break;
        }
        sleep_ms(POLL_MS);
    }
    sbx_buf_free(&js);
    return rc;
}

/* Write `len` bytes to a new file `path` (never through a link, never over a file). */
static sbx_code write_new(const char *path, const char *data, size_t len, sbx_err *e) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sbx_fail_errno(e, errno, "could not create an upload file");
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            close(fd);
            return sbx_fail_errno(e, err, "could not write an upload file");
        }
        off += (size_t)n;
    }
    if (close(fd) != 0)
        return sbx_fail_errno(e, errno, "could not write an upload file");
    return SBX_OK;
}

sbx_code br_act_upload(br_page *p, const cJSON *req, const char *sel, int64_t deadline,
                       int64_t timeout_ms, cJSON *out, sbx_err *e) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(req, "files");
    int n = cJSON_GetArraySize(files);
    if (!cJSON_IsArray(files) || n < 1 || n > BR_UPLOAD_MAX_FILES)
        return sbx_fail(e, SBX_EINVAL, "files: required, an array of 1 to %d {name, contentBase64}",
                        BR_UPLOAD_MAX_FILES);
    /* Everything is checked before anything is written. */
    for (int i = 0; i < n; i++) {
        const cJSON *f = cJSON_GetArrayItem(files, i);
        const char *name = jstr(f, "name"), *b64 = jstr(f, "contentBase64");
        if (!cJSON_IsObject(f) || jf_only(f, "name|contentBase64", e) != SBX_OK)
            return sbx_fail(e, SBX_EINVAL, "files[%d]: must be {name, contentBase64}", i);
        if (!name || !name_ok(name))
            return sbx_fail(e, SBX_EINVAL,
                            "files[%d].name: required, a plain file name (no '/', '\\', control "
                            "characters, '.' or '..'; at most 200 bytes)",
                            i);
        for (int j = 0; j < i; j++)
            if (strcmp(jstr(cJSON_GetArrayItem(files, j), "name"), name) == 0)
                return sbx_fail(e, SBX_EINVAL, "files[%d].name: '%s' is given twice", i, name);
        if (!b64)
            return sbx_fail(e, SBX_EINVAL, "files[%d].contentBase64: required, a base64 string", i);
    }
    char oid[256];
    bool multiple = false;
    sbx_code rc = find_input(p, sel, deadline, timeout_ms, oid, &multiple, e);
    if (rc != SBX_OK)
        return rc;
    if (n > 1 && !multiple)
        return sbx_fail(e, SBX_EINVAL,
                        "files: '%s' takes one file (it has no multiple attribute); %d were given",
                        sel, n);
    const char *base = br_page_dir(p);
    char id[SBX_ID_LEN], dir[4096];
    if (!base[0] || sbx_random_id(id) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "the session has no directory for uploads");
    snprintf(dir, sizeof dir, "%s/uploads/%s", base, id);
    if (sbx_mkdir_p(dir, 0700) != 0)
        return sbx_fail_errno(e, errno, "could not make the upload directory");
    cJSON *paths = cJSON_CreateArray(), *done = cJSON_CreateArray();
    for (int i = 0; i < n && rc == SBX_OK; i++) {
        const cJSON *f = cJSON_GetArrayItem(files, i);
        const char *name = jstr(f, "name"), *b64 = jstr(f, "contentBase64");
        size_t len = 0;
        char *data = sbx_b64_decode(b64, strlen(b64), &len);
        if (!data) {
            rc = sbx_fail(e, SBX_EINVAL, "files[%d].contentBase64: not base64", i);
            break;
        }
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = write_new(path, data, len, e);
        free(data);
        if (rc != SBX_OK)
            break;
        cJSON_AddItemToArray(paths, cJSON_CreateString(path));
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", name);
        cJSON_AddNumberToObject(d, "size", (double)len);
        cJSON_AddItemToArray(done, d);
    }
    if (rc == SBX_OK) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToObject(a, "files", paths);
        cJSON_AddStringToObject(a, "objectId", oid);
        paths = NULL;
        rc = br_page_call(p, "DOM.setFileInputFiles", a, left_ms(deadline, 1000), NULL, e);
    }
    cJSON *rel = cJSON_CreateObject();
    cJSON_AddStringToObject(rel, "objectId", oid);
    sbx_err ignored;
    br_page_call(p, "Runtime.releaseObject", rel, 2000, NULL, &ignored);
    cJSON_Delete(paths);
    if (rc != SBX_OK) {
        cJSON_Delete(done);
        sbx_rmtree(dir);
        return rc;
    }
    cJSON_AddItemToObject(out, "files", done);
    return SBX_OK;
}
