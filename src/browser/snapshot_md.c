/* snapshot_md.c -- GET .../markdown and .../links (see snapshot.h): the top frame's world
 * reads the page; the frames it cannot enter (cross-origin, out-of-process) are read each in
 * its own world (snapshot_int.h) and their markdown spliced in where their iframe is, their
 * links added once each. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "snapshot.h"
#include "snapshot_int.h"

static const cJSON *item(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static sbx_code top_op(br_page *p, const char *op, cJSON *arg, int64_t to, cJSON **r, sbx_err *e) {
    int ctx = 0;
    return br_reads_top_run(p, op, arg, to, &ctx, r, e);
}

/* The world below world `wi` that fills the frame marker for `src` (see hole_world). */
static int md_world(br_world *w, const br_frames *fs, int wi, const char *src) {
    int any = -1;
    for (int k = 1; k < fs->nroots; k++) {
        if (w[k].parent != wi || w[k].used || !w[k].r)
            continue;
        if (src && strcmp(fs->f[fs->roots[k]].url, src) == 0)
            return k;
        if (any < 0)
            any = k;
    }
    return any;
}

/* World `wi`'s markdown into `out`, each frame marker replaced by that frame's markdown. */
static void md_emit(sbx_buf *out, br_world *w, const br_frames *fs, int wi, const char *mark,
                    int depth) {
    const char *s = cJSON_GetStringValue(item(w[wi].r, "text")) ?: "";
    const cJSON *srcs = item(w[wi].r, "frames");
    w[wi].used = true;
    char pre[64];
    int pl = snprintf(pre, sizeof pre, "[[sbx-frame %s ", mark);
    for (const char *m; (m = strstr(s, pre));) {
        sbx_buf_add(out, s, (size_t)(m - s));
        char *end;
        long n = strtol(m + pl, &end, 10);
        if (strncmp(end, "]]", 2) != 0)
            return; /* a marker cut at maxChars: the end of the text */
        s = end + 2;
        const char *src = cJSON_GetStringValue(cJSON_GetArrayItem(srcs, (int)n));
        int k = depth < 8 ? md_world(w, fs, wi, src) : -1;
        if (k > 0)
            md_emit(out, w, fs, k, mark, depth + 1);
    }
    /* a text cut at maxChars may end inside a marker's start too */
    size_t n = strlen(s);
    const char *t = strrchr(s, '[');
    if (t && t > s && t[-1] == '[' && strncmp(t - 1, pre, n - (size_t)(t - 1 - s)) == 0)
        n = (size_t)(t - 1 - s);
    sbx_buf_add(out, s, n);
}

/* The characters of a world's markdown that its frame markers do not take. */
static size_t md_used(const cJSON *r, const char *mark) {
    size_t n = strlen(cJSON_GetStringValue(item(r, "text")) ?: "");
    size_t markers = (size_t)cJSON_GetArraySize(item(r, "frames")) * (strlen(mark) + 22);
    return n > markers ? n - markers : 0;
}

/* The markdown of the top world `top` (taken) with its cross-origin and out-of-process br_frames
 * spliced in where their iframes are, read while room and time are left (*cut: some left
 * out). Returns the text (malloc'd) or NULL when out of memory. */
static char *md_frames(br_page *p, cJSON *top, const char *mark, size_t max_chars, int64_t deadline,
                       bool *cut) {
    br_frames fs;
    br_world w[BR_READS_MAX_FRAMES + 1] = {{0}};
    sbx_err fe = {0};
    w[0].r = top;
    if (br_reads_frames_get(p, deadline, &fs, &fe) != SBX_OK) {
        *cut |= fe.code == SBX_ETIMEOUT;
        fs.nroots = 1;
        fs.ntrees = 0;
    }
    *cut |= fs.late;
    size_t used = md_used(top, mark);
    for (int k = 1; k < fs.nroots; k++) {
        w[k].parent = fs.f[fs.f[fs.roots[k]].parent].world;
        if (used >= max_chars || sbx_now_ms() + 200 > deadline) {
            *cut = true;
            continue;
        }
        int c = 0;
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "maxChars", (double)(max_chars - used));
        cJSON_AddNumberToObject(a, "budgetMs", br_reads_budget_ms(deadline));
        cJSON_AddStringToObject(a, "mark", mark);
        cJSON_AddBoolToObject(a, "frame", 1);
        if (br_reads_frame_run(&fs, k, "markdown", a, deadline - sbx_now_ms() - 100, &c, &w[k].r,
                               &fe) != SBX_OK) {
            cJSON_Delete(w[k].r);
            w[k].r = NULL;
            *cut |= fe.code == SBX_ETIMEOUT;
            continue;
        }
        *cut |= cJSON_IsTrue(item(w[k].r, "truncated"));
        used += md_used(w[k].r, mark);
    }
    sbx_buf b;
    sbx_buf_init(&b, (size_t)BR_READS_MAX_CHARS * 4 + (1u << 20));
    md_emit(&b, w, &fs, 0, mark, 0);
    for (int k = 0; k < fs.nroots; k++)
        cJSON_Delete(w[k].r);
    br_reads_frames_free(&fs);
    char *text = sbx_buf_take(&b, NULL);
    if (!text)
        return strdup("");
    /* a frame left out leaves its blank lines: at most one empty line in a row */
    size_t o = 0;
    for (size_t i = 0, nl = 0; text[i]; i++) {
        nl = text[i] == '\n' ? nl + 1 : 0;
        if (nl <= 2)
            text[o++] = text[i];
    }
    text[o] = '\0';
    return text;
}

sbx_code br_markdown(br_page *p, size_t max_chars, int64_t timeout_ms, char **md, size_t *len,
                     bool *truncated, sbx_err *e) {
    int64_t deadline = sbx_now_ms() + timeout_ms;
    char mark[SBX_ID_LEN];
    if (sbx_random_id(mark) != 0)
        return sbx_fail(e, SBX_EINTERNAL, "no random bytes for a frame marker");
    cJSON *arg = cJSON_CreateObject(), *r = NULL;
    cJSON_AddNumberToObject(arg, "maxChars", (double)max_chars);
    cJSON_AddNumberToObject(arg, "budgetMs", br_reads_budget_ms(deadline));
    cJSON_AddStringToObject(arg, "mark", mark);
    sbx_code rc = top_op(p, "markdown", arg, timeout_ms, &r, e);
    if (rc != SBX_OK)
        return rc;
    bool cut_frames = cJSON_IsTrue(item(r, "truncated"));
    char *all = NULL;
    if (cJSON_GetArraySize(item(r, "frames")) > 0) {
        all = md_frames(p, r, mark, max_chars, deadline, &cut_frames);
        r = NULL; /* taken */
        if (!all)
            return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    const char *text = all ? all : cJSON_GetStringValue(item(r, "text"));
    size_t n = text ? strlen(text) : 0;
    size_t cut = br_text_cut(text ? text : "", n, max_chars);
    *truncated = cut_frames || cut < n;
    /* the page cut at maxChars UTF-16 units; here at a character boundary, whole lines first */
    if (cut < n && cut > 0 && text[cut - 1] != '\n')
        cut = br_text_cut(text, n, max_chars);
    *md = strndup(text ? text : "", cut);
    *len = cut;
    free(all);
    cJSON_Delete(r);
    return *md ? SBX_OK : sbx_fail(e, SBX_EINTERNAL, "out of memory");
}

/* Append to `links` the links of the cross-origin frames (OOPIFs too), each read in its own
 * world, that no link already has, while room and time are left; true when some were left out.
 */
static bool frame_links(br_page *p, cJSON *links, int64_t deadline) {
    br_frames fs;
    sbx_err fe = {0};
    if (br_reads_frames_get(p, deadline, &fs, &fe) != SBX_OK)
        return fe.code == SBX_ETIMEOUT;
    bool cut = fs.late;
    size_t size = 0;
    for (const cJSON *l = links->child; l; l = l->next)
        size += strlen(cJSON_GetStringValue(item(l, "url")) ?: "") + 16;
    for (int k = 1; k < fs.nroots && !cut; k++) {
        int have = cJSON_GetArraySize(links), c = 0;
        cJSON *a = cJSON_CreateObject(), *r = NULL;
        cJSON_AddNumberToObject(a, "max", BR_LINKS_MAX - have);
        cJSON_AddNumberToObject(a, "budgetMs", br_reads_budget_ms(deadline));
        if (have >= BR_LINKS_MAX || sbx_now_ms() + 200 > deadline) {
            cJSON_Delete(a);
            cut = true;
            break;
        }
        if (br_reads_frame_run(&fs, k, "links", a, deadline - sbx_now_ms() - 100, &c, &r, &fe) !=
            SBX_OK) {
            cut |= fe.code == SBX_ETIMEOUT;
            continue;
        }
        cut |= cJSON_IsTrue(item(r, "truncated"));
        const cJSON *l;
        cJSON_ArrayForEach(l, item(r, "links")) {
            const char *url = cJSON_GetStringValue(item(l, "url"));
            bool dup = !url;
            for (const cJSON *o = links->child; o && !dup; o = o->next)
                dup = strcmp(cJSON_GetStringValue(item(o, "url")) ?: "", url) == 0;
            if (dup)
                continue;
            size += strlen(url) + strlen(cJSON_GetStringValue(item(l, "text")) ?: "") + 16;
            if (cJSON_GetArraySize(links) >= BR_LINKS_MAX || size > (4u << 20)) {
                cut = true;
                break;
            }
            cJSON_AddItemToArray(links, cJSON_Duplicate(l, 1));
        }
        cJSON_Delete(r);
    }
    br_reads_frames_free(&fs);
    return cut;
}

sbx_code br_links(br_page *p, int64_t timeout_ms, cJSON **out, sbx_err *e) {
    int64_t deadline = sbx_now_ms() + timeout_ms;
    cJSON *arg = cJSON_CreateObject(), *r = NULL;
    cJSON_AddNumberToObject(arg, "max", BR_LINKS_MAX);
    cJSON_AddNumberToObject(arg, "budgetMs", br_reads_budget_ms(deadline));
    sbx_code rc = top_op(p, "links", arg, timeout_ms, &r, e);
    if (rc != SBX_OK)
        return rc;
    cJSON *o = cJSON_CreateObject();
    cJSON *links = cJSON_DetachItemFromObjectCaseSensitive(r, "links");
    if (!cJSON_IsArray(links)) {
        cJSON_Delete(links);
        links = cJSON_CreateArray();
    }
    bool truncated = cJSON_IsTrue(item(r, "truncated"));
    if (!truncated && cJSON_GetNumberValue(item(r, "frames")) > 0)
        truncated = frame_links(p, links, deadline);
    cJSON_AddItemToObject(o, "links", links);
    cJSON_AddBoolToObject(o, "truncated", truncated);
    cJSON_Delete(r);
    *out = o;
    return SBX_OK;
}
