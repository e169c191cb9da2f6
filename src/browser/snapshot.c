/* snapshot.c -- GET .../snapshot: what a model reads instead of raw HTML, where a ref taken from
 * a snapshot points (see snapshot.h), and the frames and worlds the markdown and links
 * (snapshot_md.c) read through too (snapshot_int.h).
 *
 * A snapshot is one walk of the DOM per frame world in snapshot.js, bounded by maxChars in the
 * page, rather than Accessibility.getFullAXTree: measured on the same Chromium, the full AX
 * tree of a 50,000-node page is a reply of tens of megabytes (all of it crosses the socket
 * before anything can be cut) where the walk returns at most maxChars (README "Agent reads").
 * The frames the top world cannot enter (cross-origin) are listed by Page.getFrameTree, of the
 * tab's session and of each out-of-process iframe's own session (page.h, br_page_oopifs); each
 * is read in its own world, through the session that holds it, and its lines spliced in below
 * its iframe, indented.
 */
#define _GNU_SOURCE
#include "snapshot.h"
#include "snapshot_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define WORLD  "sandboxd"
#define JS_MAX (1u << 20)

extern const unsigned char sbx_snapshot_js[];
extern const size_t sbx_snapshot_js_len;

/* ---- pure pieces ---- */

static bool digits(const char **s) {
    const char *p = *s;
    if (*p < '1' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9' && p - *s < 9)
        p++;
    if (*p >= '0' && *p <= '9')
        return false;
    *s = p;
    return true;
}

bool br_ref_parse(const char *ref, long *frame) {
    if (!ref)
        return false;
    const char *s = ref;
    long k = 0;
    if (*s == 'f') {
        s++;
        const char *d = s;
        if (!digits(&s))
            return false;
        k = strtol(d, NULL, 10);
    }
    if (*s++ != 'e' || !digits(&s) || *s)
        return false;
    *frame = k;
    return true;
}

size_t br_text_cut(const char *text, size_t len, size_t max_chars) {
    size_t chars = 0, last_nl = 0, i = 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) != 0x80) { /* a character starts here */
            if (chars == max_chars)
                break;
            chars++;
        }
        if (c == '\n')
            last_nl = i + 1;
    }
    if (i == len)
        return len;
    return last_nl ? last_nl : i; /* i: the first byte of the first character that did not fit */
}

/* ---- talking to a frame's world ---- */

static const cJSON *item(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

sbx_code br_ref_stale(sbx_err *e, const char *ref) {
    return sbx_fail(e, SBX_ESTALEREF,
                    "ref '%.40s' is stale: its element is gone or the page navigated since the "
                    "snapshot it came from; take a new snapshot (GET .../snapshot) and use the "
                    "refs it gives",
                    ref);
}

static bool context_gone(const sbx_err *e) {
    return strstr(e->msg, "Cannot find context") || strstr(e->msg, "context was destroyed") ||
           strstr(e->msg, "Inspected target navigated");
}

sbx_code br_page_eval_in(br_page *p, int ctx, const char *expression, int64_t timeout_ms,
                         cJSON **value, sbx_err *e) {
    if (!ctx)
        return br_page_eval(p, expression, timeout_ms, value, e);
    *value = NULL;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "expression", expression);
    cJSON_AddNumberToObject(a, "contextId", ctx);
    cJSON_AddBoolToObject(a, "awaitPromise", 1);
    cJSON_AddBoolToObject(a, "returnByValue", 1);
    cJSON_AddBoolToObject(a, "userGesture", 1);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Runtime.evaluate", a, timeout_ms, &res, e);
    if (rc == SBX_EINTERNAL && context_gone(e))
        return sbx_fail(e, SBX_ESTALEREF,
                        "the frame's document was replaced while it was read; take a new "
                        "snapshot");
    if (rc != SBX_OK)
        return rc;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
    if (ex) {
        const cJSON *exc = cJSON_GetObjectItemCaseSensitive(ex, "exception");
        const char *msg =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(exc, "description"));
        if (!msg)
            msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ex, "text"));
        sbx_fail(e, SBX_EINVAL, "JavaScript error: %s", msg ? msg : "exception");
        cJSON_Delete(res);
        return SBX_EINVAL;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "result");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "value");
    *value = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
    cJSON_Delete(res);
    return SBX_OK;
}

/* The execution context of frame `frame_id`'s world (created on first use, then the same one
 * for the life of its document). */
static sbx_code world_of(br_page *p, const char *frame_id, int64_t to, int *ctx, sbx_err *e) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "frameId", frame_id);
    cJSON_AddStringToObject(a, "worldName", WORLD);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Page.createIsolatedWorld", a, to, &res, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "executionContextId");
    rc =
        cJSON_IsNumber(id) ? SBX_OK : sbx_fail(e, SBX_EINTERNAL, "Chromium gave no isolated world");
    if (rc == SBX_OK)
        *ctx = id->valueint;
    cJSON_Delete(res);
    return rc;
}

/* Run snapshot.js operation `op` with `arg` (taken) in context `ctx`, guarded by `token`
 * (NULL: no guard; see snapshot.js); `claim` > 0 claims the world, a new ref table then
 * numbering from `claim`. *r gets the answer. */
static sbx_code run_op_w(br_page *p, int ctx, const char *op, cJSON *arg, const char *token,
                         double claim, int64_t to, cJSON **r, sbx_err *e) {
    char *al = arg ? cJSON_PrintUnformatted(arg) : strdup("null");
    cJSON_Delete(arg);
    sbx_buf b;
    sbx_buf_init(&b, JS_MAX);
    if (token && claim <= 0) /* a world of ours has the script already (or answers wrong) */
        sbx_buf_addf(&b, "(globalThis[Symbol.for(\"sandboxd.reads\")]?.run ?? "
                         "(async () => ({wrong: 1})))");
    else
        sbx_buf_add(&b, sbx_snapshot_js, sbx_snapshot_js_len);
    if (token) /* an id: [0-9A-Za-z_-] only */
        sbx_buf_addf(&b, "(\"%s\", %s, {token: \"%s\", claim: %s, start: %.0f})", op,
                     al ? al : "null", token, claim > 0 ? "true" : "false", claim);
    else
        sbx_buf_addf(&b, "(\"%s\", %s, null)", op, al ? al : "null");
    free(al);
    if (b.truncated || !al) {
        sbx_buf_free(&b);
        return sbx_fail(e, SBX_EINVAL, "selector too long");
    }
    sbx_code rc = br_page_eval_in(p, ctx, b.data, to, r, e);
    sbx_buf_free(&b);
    if (rc == SBX_OK && !cJSON_IsObject(*r)) {
        cJSON_Delete(*r);
        *r = NULL;
        rc = sbx_fail(e, SBX_EINTERNAL, "the page's reads script answered no object");
    }
    return rc;
}

static sbx_code run_op(br_page *p, int ctx, const char *op, cJSON *arg, int64_t to, cJSON **r,
                       sbx_err *e) {
    return run_op_w(p, ctx, op, arg, NULL, 0, to, r, e);
}

/* ---- the top frame's world, remembered between calls ----
 *
 * The context id of each tab's top world, and of each OOPIF's (its own session's top frame), is
 * kept (a small table, page and frame id as the key),
 * so a read takes one round trip instead of two. Kept is not trusted: each use carries the
 * world's token, and a context that is gone or is not that world (after a navigation the id
 * may name another context) makes the call ask Chromium for the world again. The entry also
 * keeps the tab's last ref number, so the next document's refs go on from there: a ref of an
 * earlier document is stale, never the name of an element of a later one. */

#define TOPS 64

static struct top {
    const br_page *p;
    char frame[64];
    int ctx;
    char token[SBX_ID_LEN];
    double n; /* the highest ref number given in this tab */
} tops[TOPS];
static unsigned tops_next;
static pthread_mutex_t tops_mu = PTHREAD_MUTEX_INITIALIZER;

static bool top_cached(const br_page *p, int *ctx, char token[SBX_ID_LEN], double *n) {
    bool hit = false;
    pthread_mutex_lock(&tops_mu);
    for (int i = 0; i < TOPS && !hit; i++) {
        if (tops[i].p == p && strcmp(tops[i].frame, br_page_frame_id(p)) == 0) {
            *ctx = tops[i].ctx;
            memcpy(token, tops[i].token, SBX_ID_LEN);
            *n = tops[i].n;
            hit = true;
        }
    }
    pthread_mutex_unlock(&tops_mu);
    return hit;
}

/* Remember the tab's top world; `answer` (borrowed) may carry the world's ref count "n". */
static void top_store(const br_page *p, int ctx, const char *token, const cJSON *answer) {
    const cJSON *n = item(answer, "n");
    pthread_mutex_lock(&tops_mu);
    struct top *t = NULL;
    for (int i = 0; i < TOPS && !t; i++)
        if (tops[i].p == p && strcmp(tops[i].frame, br_page_frame_id(p)) == 0)
            t = &tops[i];
    if (!t) {
        t = &tops[tops_next++ % TOPS];
        t->n = 0;
    }
    if (cJSON_IsNumber(n) && n->valuedouble > t->n)
        t->n = n->valuedouble;
    t->p = p;
    snprintf(t->frame, sizeof t->frame, "%s", br_page_frame_id(p));
    t->ctx = ctx;
    snprintf(t->token, sizeof t->token, "%s", token);
    pthread_mutex_unlock(&tops_mu);
}

/* Run `op` with `arg` (taken) in the top frame's world; *ctx gets its context. */
sbx_code br_reads_top_run(br_page *p, const char *op, cJSON *arg, int64_t to, int *ctx, cJSON **r,
                          sbx_err *e) {
    char token[SBX_ID_LEN];
    double n = 0;
    *r = NULL;
    if (top_cached(p, ctx, token, &n)) {
        sbx_err fe = {0};
        sbx_code rc = run_op_w(p, *ctx, op, cJSON_Duplicate(arg, 1), token, 0, to, r, &fe);
        if (rc == SBX_OK && !item(*r, "wrong")) {
            cJSON_Delete(arg);
            top_store(p, *ctx, token, *r);
            return SBX_OK;
        }
        cJSON_Delete(*r);
        *r = NULL;
        if (rc == SBX_ETIMEOUT || rc == SBX_ECRASHED || rc == SBX_ETABCRASHED) {
            cJSON_Delete(arg);
            *e = fe;
            return rc;
        }
    } else if (sbx_random_id(token) != 0) {
        cJSON_Delete(arg);
        return sbx_fail(e, SBX_EINTERNAL, "no random bytes for a world token");
    }
    sbx_code rc = world_of(p, br_page_frame_id(p), to, ctx, e);
    if (rc != SBX_OK) {
        cJSON_Delete(arg);
        return rc;
    }
    rc = run_op_w(p, *ctx, op, arg, token, n + 1, to, r, e);
    if (rc == SBX_OK)
        top_store(p, *ctx, token, *r);
    return rc;
}

/* The time the page's walk may take (budgetMs): most of what is left before `deadline`, so
 * its answer still crosses the socket in time. */
double br_reads_budget_ms(int64_t deadline) {
    int64_t left = deadline - sbx_now_ms();
    return left > 250 ? (double)left * 0.8 : 200;
}

/* ---- frames ---- */
void br_reads_frames_free(br_frames *fs) {
    for (int i = 0; i < fs->ntrees; i++)
        cJSON_Delete(fs->tree[i]);
    fs->ntrees = 0;
}

static void collect(br_frames *fs, const cJSON *node, int parent, br_page *pg) {
    if (fs->n == MAX_TREE)
        return;
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(node, "frame");
    int i = fs->n++;
    br_frame *f = &fs->f[i];
    f->pg = pg;
    f->sroot = parent < 0 || fs->f[parent].pg != pg ? i : fs->f[parent].sroot;
    f->id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fr, "id"));
    f->url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fr, "url"));
    f->origin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fr, "securityOrigin"));
    if (!f->id)
        f->id = "";
    if (!f->url)
        f->url = "";
    if (!f->origin)
        f->origin = "";
    f->parent = parent;
    f->world = parent < 0 ? 0 : fs->f[parent].world;
    /* A frame of another origin than its parent's cannot be entered by the parent's world, nor
     * one in another renderer (another session). */
    if (parent >= 0 && (strcmp(f->origin, fs->f[parent].origin) != 0 || f->sroot == i)) {
        if (fs->nroots <= BR_READS_MAX_FRAMES) {
            f->world = fs->nroots;
            fs->roots[fs->nroots++] = i;
        } else {
            f->world = -1; /* beyond the cap: left out */
        }
    }
    if (f->world < 0)
        return;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(node, "childFrames")) {
        collect(fs, c, i, pg);
    }
}

/* The index of the frame `id` read (world >= 0), or -1. */
static int frame_index(const br_frames *fs, const char *id) {
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].world >= 0 && strcmp(fs->f[i].id, id) == 0)
            return i;
    return -1;
}

/* The frames of tab `p` before `deadline`. An OOPIF whose tree cannot be had in time (it went
 * away, or its renderer hangs) is left out with what hangs below it. */
sbx_code br_reads_frames_get(br_page *p, int64_t deadline, br_frames *fs, sbx_err *e) {
    memset(fs, 0, sizeof *fs);
    br_oopif kids[BR_OOPIF_MAX];
    int nk = br_page_oopifs(p, kids, BR_OOPIF_MAX);
    sbx_code rc =
        br_page_call(p, "Page.getFrameTree", NULL, deadline - sbx_now_ms(), &fs->tree[0], e);
    if (rc != SBX_OK)
        return rc;
    fs->ntrees = 1;
    fs->roots[0] = 0;
    fs->nroots = 1;
    collect(fs, cJSON_GetObjectItemCaseSensitive(fs->tree[0], "frameTree"), -1, p);
    if (!fs->n || !fs->f[0].id[0]) {
        br_reads_frames_free(fs);
        return sbx_fail(e, SBX_EINTERNAL, "Chromium gave no frame tree");
    }
    /* Each OOPIF below a frame already placed (its parent may be an OOPIF placed earlier). */
    bool placed[BR_OOPIF_MAX] = {false}, more = true;
    while (more && fs->n < MAX_TREE) {
        more = false;
        for (int k = 0; k < nk; k++) {
            int parent = placed[k] ? -1 : frame_index(fs, kids[k].parent_frame);
            if (parent < 0 || frame_index(fs, kids[k].frame_id) >= 0)
                continue;
            placed[k] = more = true;
            cJSON *tree = NULL;
            sbx_err fe = {0};
            int64_t left = deadline - sbx_now_ms() - 100;
            if (left <= 0 ||
                br_page_call(kids[k].page, "Page.getFrameTree", NULL, left, &tree, &fe) != SBX_OK) {
                fs->late |= left <= 0 || fe.code == SBX_ETIMEOUT;
                continue;
            }
            fs->tree[fs->ntrees++] = tree;
            collect(fs, cJSON_GetObjectItemCaseSensitive(tree, "frameTree"), parent, kids[k].page);
        }
    }
    return SBX_OK;
}

/* Run `op` with `arg` (taken) in the world of frame world `k` of `fs`: an OOPIF's top frame
 * through the kept context of its session (top_run: one round trip once kept), any other frame
 * in the world Chromium gives for it. *ctx gets the context. */
sbx_code br_reads_frame_run(const br_frames *fs, int k, const char *op, cJSON *arg, int64_t to,
                            int *ctx, cJSON **r, sbx_err *e) {
    const br_frame *f = &fs->f[fs->roots[k]];
    *r = NULL;
    *ctx = 0;
    if (k > 0 && f->sroot == fs->roots[k])
        return br_reads_top_run(f->pg, op, arg, to, ctx, r, e);
    sbx_code rc = world_of(f->pg, f->id, to, ctx, e);
    if (rc != SBX_OK) {
        cJSON_Delete(arg);
        return rc;
    }
    return run_op(f->pg, *ctx, op, arg, to, r, e);
}

/* ---- the snapshot ---- */

typedef struct merge {
    sbx_buf out;
    long line; /* lines written */
    cJSON *refs;
    br_world *w;
    const br_frames *fs;
    bool truncated;
} merge;

/* The world that fills hole `h` of world `wi`: the one below it whose URL matches, else the
 * first one below it not used yet. */
static int hole_world(merge *m, int wi, const cJSON *h) {
    const char *src = cJSON_GetStringValue(item(h, "src"));
    int any = -1;
    for (int k = 1; k < m->fs->nroots; k++) {
        if (m->w[k].parent != wi || m->w[k].used || !m->w[k].r)
            continue;
        if (src && strcmp(m->fs->f[m->fs->roots[k]].url, src) == 0)
            return k;
        if (any < 0)
            any = k;
    }
    return any;
}

static void emit(merge *m, int wi, int indent, int depth) {
    const cJSON *r = m->w[wi].r;
    m->w[wi].used = true;
    if (cJSON_IsTrue(item(r, "truncated")))
        m->truncated = true;
    const char *text = cJSON_GetStringValue(item(r, "text"));
    const cJSON *refs = item(r, "refs"), *holes = item(r, "holes");
    const cJSON *ref = refs ? refs->child : NULL, *hole = holes ? holes->child : NULL;
    long li = 0;
    for (const char *s = text ? text : ""; *s || hole; li++) {
        while (hole && cJSON_GetNumberValue(item(hole, "at")) <= (double)li) {
            int k = depth < 8 ? hole_world(m, wi, hole) : -1;
            if (k > 0)
                emit(m, k, indent + (int)cJSON_GetNumberValue(item(hole, "depth")), depth + 1);
            hole = hole->next;
        }
        if (!*s)
            break;
        const char *end = strchr(s, '\n');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        for (; ref && cJSON_GetNumberValue(cJSON_GetArrayItem(ref, 3)) <= (double)li;
             ref = ref->next) {
            if (cJSON_GetNumberValue(cJSON_GetArrayItem(ref, 3)) < (double)li)
                continue;
            const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(ref, 0));
            if (!id || cJSON_GetObjectItemCaseSensitive(m->refs, id))
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "line", (double)m->line);
            cJSON_AddStringToObject(o, "role", cJSON_GetStringValue(cJSON_GetArrayItem(ref, 1)));
            cJSON_AddStringToObject(o, "name", cJSON_GetStringValue(cJSON_GetArrayItem(ref, 2)));
            cJSON_AddItemToObject(m->refs, id, o);
        }
        for (int i = 0; i < indent; i++)
            sbx_buf_add(&m->out, "  ", 2);
        sbx_buf_add(&m->out, s, n);
        sbx_buf_add(&m->out, "\n", 1);
        m->line++;
        s += n + (end ? 1 : 0);
    }
}

/* Reserve `n` more frame prefixes in the top world's counter; the first of them, or -1. */
static double reserve_more(br_page *p, int ctx, int n, int64_t to) {
    cJSON *a = cJSON_CreateObject(), *r = NULL;
    cJSON_AddNumberToObject(a, "n", n);
    sbx_err e = {0};
    double base = -1;
    if (run_op(p, ctx, "reserve", a, to, &r, &e) == SBX_OK)
        base = cJSON_GetNumberValue(item(r, "base"));
    cJSON_Delete(r);
    return base;
}

sbx_code br_snapshot(br_page *p, const char *selector, size_t max_chars, int64_t timeout_ms,
                     cJSON **out, sbx_err *e) {
    int64_t deadline = sbx_now_ms() + timeout_ms;
    br_frames fs = {0};
    br_world w[BR_READS_MAX_FRAMES + 1] = {{0}};
    int ctx = 0;
    /* The top frame first: the frame tree is only asked for when it holds frames it cannot
     * enter (two round trips for most pages). */
    cJSON *arg = cJSON_CreateObject();
    cJSON_AddNumberToObject(arg, "maxChars", (double)max_chars);
    if (selector)
        cJSON_AddStringToObject(arg, "selector", selector);
    cJSON_AddStringToObject(arg, "prefix", "");
    cJSON_AddNumberToObject(arg, "budgetMs", br_reads_budget_ms(deadline));
    sbx_code rc = br_reads_top_run(p, "snapshot", arg, timeout_ms, &ctx, &w[0].r, e);
    if (rc == SBX_OK && cJSON_IsString(item(w[0].r, "bad")))
        rc = sbx_fail(e, SBX_EINVAL, "selector: invalid CSS selector '%.200s': %s", selector,
                      item(w[0].r, "bad")->valuestring);
    else if (rc == SBX_OK && item(w[0].r, "missing"))
        rc = sbx_fail(e, SBX_ENOELEMENT, "no element matches selector '%.200s'", selector);
    if (rc == SBX_OK && cJSON_GetArraySize(item(w[0].r, "holes")) > 0)
        rc = br_reads_frames_get(p, deadline, &fs, e);
    else
        fs.nroots = 1;
    if (rc != SBX_OK) {
        cJSON_Delete(w[0].r);
        br_reads_frames_free(&fs);
        return rc;
    }
    /* The top walk reserved a prefix per hole it saw; frames nested deeper need more. */
    double base = cJSON_GetNumberValue(item(w[0].r, "base"));
    int holes = cJSON_GetArraySize(item(w[0].r, "holes"));
    if (fs.nroots - 1 > holes) {
        base = reserve_more(p, ctx, fs.nroots - 1, deadline - sbx_now_ms());
        if (base < 0)
            fs.nroots = 1; /* the top document went away meanwhile: its own lines only */
    }
    size_t used = strlen(cJSON_GetStringValue(item(w[0].r, "text")) ?: "");
    bool cut_frames = fs.late;
    /* The cross-origin frames, each in its own world (through its own session for an OOPIF),
     * while time and room are left. A frame that does not answer in time is left out, so one
     * that hangs costs the time left, never more. */
    for (int k = 1; k < fs.nroots; k++) {
        w[k].parent = fs.f[fs.f[fs.roots[k]].parent].world;
        if (used >= max_chars || sbx_now_ms() + 200 > deadline) {
            cut_frames = true;
            continue;
        }
        int c = 0;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "f%.0f", base + k - 1);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "maxChars", (double)(max_chars - used));
        cJSON_AddNumberToObject(a, "budgetMs", br_reads_budget_ms(deadline));
        cJSON_AddStringToObject(a, "prefix", prefix);
        sbx_err fe = {0};
        if (br_reads_frame_run(&fs, k, "snapshot", a, deadline - sbx_now_ms() - 100, &c, &w[k].r,
                               &fe) != SBX_OK) {
            cJSON_Delete(w[k].r);
            w[k].r = NULL; /* a frame that went away meanwhile is left out */
            cut_frames |= fe.code == SBX_ETIMEOUT; /* one that hangs too, and says so */
            continue;
        }
        used += strlen(cJSON_GetStringValue(item(w[k].r, "text")) ?: "");
    }
    merge m = {.refs = cJSON_CreateObject(), .w = w, .fs = &fs, .truncated = cut_frames};
    sbx_buf_init(&m.out, (size_t)BR_READS_MAX_CHARS * 4 + (1u << 20));
    emit(&m, 0, 0, 0);
    size_t len = m.out.len;
    size_t cut = br_text_cut(m.out.data ? m.out.data : "", len, max_chars);
    long kept = 0;
    for (size_t i = 0; i < cut; i++)
        kept += m.out.data[i] == '\n';
    if (cut < len) {
        m.truncated = true;
        m.out.data[cut] = '\0';
        if (cut && m.out.data[cut - 1] != '\n')
            kept++; /* a partial first line */
    }
    /* Only the refs of the lines kept; their line numbers are the server's business. */
    cJSON *refs = cJSON_CreateObject();
    for (cJSON *r = m.refs->child; r; r = r->next) {
        if (cJSON_GetNumberValue(item(r, "line")) >= (double)kept)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", cJSON_GetStringValue(item(r, "role")) ?: "");
        cJSON_AddStringToObject(o, "name", cJSON_GetStringValue(item(r, "name")) ?: "");
        cJSON_AddItemToObject(refs, r->string, o);
    }
    cJSON_Delete(m.refs);
    *out = cJSON_CreateObject();
    cJSON_AddStringToObject(*out, "snapshot", m.out.data ? m.out.data : "");
    cJSON_AddItemToObject(*out, "refs", refs);
    cJSON_AddBoolToObject(*out, "truncated", m.truncated);
    sbx_buf_free(&m.out);
    for (int k = 0; k < fs.nroots; k++)
        cJSON_Delete(w[k].r);
    br_reads_frames_free(&fs);
    return SBX_OK;
}

/* ---- refs for the actions ---- */

/* Top-left of frame `i`'s content box in the tab's viewport. DOM.getBoxModel of its owner (the
 * iframe element) in the session of the document holding it answers in the viewport of that
 * session's top frame, whatever the nesting inside one renderer; an OOPIF's viewport sits in
 * turn where its own owner's box is in its parent's session, and so on up to the tab. */
static sbx_code frame_offset(const br_frames *fs, int i, int64_t to, double *dx, double *dy,
                             sbx_err *e) {
    *dx = *dy = 0;
    for (int j = i, hops = 0; fs->f[j].parent >= 0 && hops < MAX_TREE; hops++) {
        br_page *host = fs->f[fs->f[j].parent].pg;
        cJSON *a = cJSON_CreateObject(), *own = NULL, *box = NULL;
        cJSON_AddStringToObject(a, "frameId", fs->f[j].id);
        sbx_code rc = br_page_call(host, "DOM.getFrameOwner", a, to, &own, e);
        if (rc != SBX_OK)
            return rc;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddNumberToObject(b, "backendNodeId",
                                cJSON_GetNumberValue(item(own, "backendNodeId")));
        cJSON_Delete(own);
        rc = br_page_call(host, "DOM.getBoxModel", b, to, &box, e);
        if (rc != SBX_OK)
            return rc;
        const cJSON *q = item(item(box, "model"), "content");
        if (cJSON_GetArraySize(q) >= 2) {
            *dx += cJSON_GetNumberValue(cJSON_GetArrayItem(q, 0));
            *dy += cJSON_GetNumberValue(cJSON_GetArrayItem(q, 1));
        }
        cJSON_Delete(box);
        j = fs->f[fs->f[j].parent].sroot;
    }
    return SBX_OK;
}

sbx_code br_ref_world(br_page *p, const char *ref, int64_t timeout_ms, br_page **fp, int *ctx,
                      double *dx, double *dy, sbx_err *e) {
    long k = 0;
    if (!br_ref_parse(ref, &k))
        return sbx_fail(e, SBX_EINVAL,
                        "ref: '%.40s' is not a ref; use one a snapshot gave, like e12 or f2e7",
                        ref ? ref : "");
    *dx = *dy = 0;
    *fp = p;
    if (k == 0)
        return world_of(p, br_page_frame_id(p), timeout_ms, ctx, e);
    int64_t deadline = sbx_now_ms() + timeout_ms;
    br_frames fs;
    sbx_code rc = br_reads_frames_get(p, deadline, &fs, e);
    if (rc != SBX_OK)
        return rc;
    char want[32];
    snprintf(want, sizeof want, "f%ld", k);
    for (int w = 1; w < fs.nroots; w++) {
        int c = 0;
        cJSON *r = NULL;
        sbx_err fe = {0};
        br_page *wp = fs.f[fs.roots[w]].pg;
        if (br_reads_frame_run(&fs, w, "prefix", NULL, deadline - sbx_now_ms(), &c, &r, &fe) !=
            SBX_OK)
            continue;
        bool hit = strcmp(cJSON_GetStringValue(item(r, "prefix")) ?: "", want) == 0;
        cJSON_Delete(r);
        if (hit) {
            rc = frame_offset(&fs, fs.roots[w], deadline - sbx_now_ms(), dx, dy, e);
            if (rc == SBX_OK) {
                *ctx = c;
                *fp = wp;
            }
            br_reads_frames_free(&fs);
            return rc;
        }
    }
    br_reads_frames_free(&fs);
    return br_ref_stale(e, ref);
}
