/* actions.c -- POST /browser/sessions/{id}/action: what acts on one page (click, type, fill,
 * press, hover, focus, select, scroll, waitForSelector, evaluate; back, forward, reload and
 * upload live in actions_ext.c).
 *
 * Built only on page.h: element lookups, visibility and hit tests are the page operations of
 * actions.js (embedded at build time), run through br_page_eval and polled until the caller's
 * deadline. An element named by "ref" (from a snapshot) instead of "selector" is looked up once
 * in the ref table of its frame's isolated world (snapshot.h): gone, or its document replaced,
 * is 409 stale_ref at once, never a silent action on another element; mouse, touch and keyboard
 * input goes through CDP Input.* via br_page_call so page listeners see real, trusted events (a
 * phone's click is a touch tap).
 *
 * Thread safety: br_action runs on an HTTP handler thread and keeps no state between calls.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/jfield.h"
#include "../common/util.h"
#include "actions_ext.h"
#include "keys.h"
#include "page.h"
#include "snapshot.h"

#define POLL_MS 50
#define JS_MAX  (256 * 1024) /* cap on one generated snippet (selector/text come from outside) */

/* One action's state. The target is `sel` (CSS) or, with `ref`, the element a snapshot named
 * (`sel` is then the ref, for messages), in execution context `ctx` (0: the main world) of page
 * `fp` (the tab `p`, or the session of the out-of-process iframe holding the ref's element),
 * in a frame whose viewport sits at (dx, dy) in the tab's. Input events go to the tab, which
 * Chromium routes to the frame under the point (or to the focused frame, for keys). */
typedef struct act {
    br_page *p, *fp;
    const cJSON *req;
    const char *sel, *ref;
    int ctx;
    double dx, dy;
    int64_t deadline, timeout_ms;
    cJSON *out; /* reply being built */
} act;

static const char KNOWN[] =
    "click, type, fill, press, hover, focus, select, scroll, waitForSelector, evaluate, back, "
    "forward, reload, upload";

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Milliseconds left before `deadline`, at least `floor`. */
static int64_t left_ms(int64_t deadline, int64_t floor) {
    int64_t l = deadline - sbx_now_ms();
    return l < floor ? floor : l;
}

/* JSON text of `v` (a JS literal too); caller frees. */
static char *js_lit(const cJSON *v) {
    return v ? cJSON_PrintUnformatted(v) : strdup("null");
}

static char *js_str(const char *s) {
    cJSON *t = cJSON_CreateString(s ? s : "");
    char *o = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return o;
}

/* True when an evaluation failed because the page navigated away underneath it. */
static bool context_gone(const sbx_err *e) {
    return e && (strstr(e->msg, "context was destroyed") || strstr(e->msg, "Cannot find context") ||
                 strstr(e->msg, "Inspected target navigated"));
}

/* actions.js, embedded at build time (see its head for what it answers). */
extern const unsigned char sbx_actions_js[];
extern const size_t sbx_actions_js_len;

/* The expression that runs page operation `op` (actions.js) on `sel` (or {ref: `ref`}) with
 * `arg`; malloc'd, or NULL when `sel` and `arg` make it longer than JS_MAX. */
static char *page_js(const char *op, const char *sel, const char *ref, const cJSON *arg,
                     bool need_vis) {
    char *ol = js_str(op), *sl = NULL, *al = js_lit(arg);
    if (ref) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ref", ref);
        sl = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    } else {
        sl = js_str(sel);
    }
    sbx_buf b;
    sbx_buf_init(&b, JS_MAX);
    sbx_buf_add(&b, sbx_actions_js, sbx_actions_js_len);
    sbx_buf_addf(&b, "(%s, %s, %s, %s)", ol ? ol : "''", sl ? sl : "''", al ? al : "null",
                 need_vis ? "true" : "false");
    free(ol);
    free(sl);
    free(al);
    if (b.truncated || !ol || !sl || !al) {
        sbx_buf_free(&b);
        return NULL;
    }
    return sbx_buf_take(&b, NULL);
}

/* Poll the element `sel` and run page operation `op` (actions.js) on it once it is there (and
 * visible when `need_vis`). On success *val gets the operation's value (caller frees). A
 * failure {fail:'covered'} is retried until the deadline, then 409 naming the cover;
 * {fail:'input'} is 400 at once. */
static sbx_code with_element(const act *a, bool need_vis, const char *op, const cJSON *arg,
                             cJSON **val, sbx_err *e) {
    br_page *p = a->fp;
    const char *sel = a->sel;
    int64_t deadline = a->deadline, timeout_ms = a->timeout_ms;
    char *js = page_js(op, sel, a->ref, arg, need_vis);
    if (!js)
        return sbx_fail(e, SBX_EINVAL, "selector or argument too long");
    sbx_code rc = SBX_OK;
    char cover[256] = "";
    bool hidden = false;
    for (;;) {
        cJSON *r = NULL;
        rc = br_page_eval_in(p, a->ctx, js, left_ms(deadline, 500), &r, e);
        if (rc == SBX_ESTALEREF && a->ref) {
            rc = br_ref_stale(e, a->ref);
            break;
        }
        if (!a->ref && (rc == SBX_EINTERNAL || rc == SBX_EINVAL) && context_gone(e) &&
            sbx_now_ms() + POLL_MS < deadline) {
            sleep_ms(POLL_MS); /* a navigation replaced the document: look in the new one */
            continue;
        }
        if (rc != SBX_OK)
            break;
        const cJSON *bad = cJSON_GetObjectItemCaseSensitive(r, "bad");
        const cJSON *fk = cJSON_GetObjectItemCaseSensitive(r, "fail");
        const cJSON *fm = cJSON_GetObjectItemCaseSensitive(r, "msg");
        const char *fmsg = cJSON_IsString(fm) ? fm->valuestring : "";
        if (cJSON_GetObjectItemCaseSensitive(r, "stale")) {
            rc = br_ref_stale(e, sel);
            cJSON_Delete(r);
            break;
        }
        if (cJSON_IsString(bad)) {
            rc = sbx_fail(e, SBX_EINVAL, "selector: invalid CSS selector '%s': %s", sel,
                          bad->valuestring);
            cJSON_Delete(r);
            break;
        }
        if (cJSON_IsString(fk) && strcmp(fk->valuestring, "covered") != 0) {
            rc = sbx_fail(e, SBX_EINVAL, "%s", fmsg);
            cJSON_Delete(r);
            break;
        }
        if (cJSON_IsString(fk))
            snprintf(cover, sizeof cover, "%s", fmsg);
        else
            cover[0] = '\0';
        hidden = cJSON_GetObjectItemCaseSensitive(r, "hidden") != NULL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "v");
        if (v) {
            *val = cJSON_Duplicate(v, 1);
            cJSON_Delete(r);
            break;
        }
        cJSON_Delete(r);
        if (sbx_now_ms() + POLL_MS >= deadline) {
            if (cover[0])
                rc = sbx_fail(e, SBX_ECONFLICT, "element '%s' is covered by %s", sel, cover);
            else
                rc = sbx_fail(e, SBX_ENOELEMENT, "element '%s' %s within %lld ms", sel,
                              hidden ? "was not visible" : "was not found", (long long)timeout_ms);
            break;
        }
        sleep_ms(POLL_MS);
    }
    free(js);
    return rc;
}

/* ---- input events ---- */

/* Input events queued to go to the page in one round trip (they still run in order). */
typedef struct batch {
    br_page *p;
    cdp_cmd cmd[CDP_MAX_BATCH];
    int n;
    int64_t deadline;
} batch;

static sbx_code flush(batch *b, sbx_err *e) {
    int n = b->n;
    b->n = 0;
    return n ? br_page_call_all(b->p, b->cmd, n, left_ms(b->deadline, 500), e) : SBX_OK;
}

/* Free what is queued (after an error). */
static void drop(batch *b) {
    for (int i = 0; i < b->n; i++)
        cJSON_Delete(b->cmd[i].params);
    b->n = 0;
}

/* Send what is queued; on an error, drop the rest. */
static sbx_code finish(batch *b, sbx_code rc, sbx_err *e) {
    if (rc == SBX_OK)
        return flush(b, e);
    drop(b);
    return rc;
}

/* Queue one command, sending what is queued first when the batch is full. */
static sbx_code queue(batch *b, const char *method, cJSON *params, sbx_err *e) {
    sbx_code rc = b->n == CDP_MAX_BATCH ? flush(b, e) : SBX_OK;
    if (rc != SBX_OK) {
        cJSON_Delete(params);
        return rc;
    }
    b->cmd[b->n++] = (cdp_cmd){method, params};
    return SBX_OK;
}

static sbx_code mouse(batch *b, const char *type, double x, double y, const char *button,
                      int buttons, int count, sbx_err *e) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "type", type);
    cJSON_AddNumberToObject(a, "x", x);
    cJSON_AddNumberToObject(a, "y", y);
    cJSON_AddStringToObject(a, "button", button);
    cJSON_AddNumberToObject(a, "buttons", buttons);
    cJSON_AddNumberToObject(a, "clickCount", count);
    return queue(b, "Input.dispatchMouseEvent", a, e);
}

/* A finger down at (x, y) and up again: a tap, which Chromium turns into the touch, pointer
 * and mouse-compatibility events (and the click) a phone's page gets. */
static sbx_code tap(batch *b, double x, double y, sbx_err *e) {
    cJSON *down = cJSON_CreateObject();
    cJSON_AddStringToObject(down, "type", "touchStart");
    cJSON *pt = cJSON_CreateObject();
    cJSON_AddNumberToObject(pt, "x", x);
    cJSON_AddNumberToObject(pt, "y", y);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(down, "touchPoints"), pt);
    sbx_code rc = queue(b, "Input.dispatchTouchEvent", down, e);
    if (rc != SBX_OK)
        return rc;
    cJSON *up = cJSON_CreateObject();
    cJSON_AddStringToObject(up, "type", "touchEnd");
    cJSON_AddArrayToObject(up, "touchPoints");
    return queue(b, "Input.dispatchTouchEvent", up, e);
}

/* One key down or up, with the modifiers held. A key that types something sends its text,
 * unless Control, Alt or Meta is held (then it is a shortcut, as on a real keyboard). */
static sbx_code key_half(batch *b, const br_key *k, bool up, int mods, sbx_err *e) {
    bool text = k->text && !(mods & (BR_MOD_CONTROL | BR_MOD_ALT | BR_MOD_META));
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "type", up ? "keyUp" : text ? "keyDown" : "rawKeyDown");
    cJSON_AddStringToObject(a, "key", k->key);
    cJSON_AddStringToObject(a, "code", k->code);
    cJSON_AddNumberToObject(a, "windowsVirtualKeyCode", k->vk);
    cJSON_AddNumberToObject(a, "nativeVirtualKeyCode", k->vk);
    if (mods)
        cJSON_AddNumberToObject(a, "modifiers", mods);
    if (text && !up) {
        cJSON_AddStringToObject(a, "text", k->text);
        cJSON_AddStringToObject(a, "unmodifiedText", k->text);
    }
    return queue(b, "Input.dispatchKeyEvent", a, e);
}

/* keyDown (with text when the key types something) then keyUp. */
static sbx_code key_event(batch *b, const br_key *k, sbx_err *e) {
    sbx_code rc = key_half(b, k, false, 0, e);
    return rc == SBX_OK ? key_half(b, k, true, 0, e) : rc;
}

/* Type `text` one character at a time ("\n" presses Enter), a few characters a round trip. */
static sbx_code type_text(br_page *p, const char *text, int64_t deadline, sbx_err *e) {
    const unsigned char *s = (const unsigned char *)text;
    batch b = {.p = p, .deadline = deadline};
    sbx_code rc = SBX_OK;
    while (*s && rc == SBX_OK) {
        if (sbx_now_ms() >= deadline) {
            rc = sbx_fail(e, SBX_ETIMEOUT, "typing did not finish within the timeout");
            break;
        }
        size_t n = br_utf8_len(s);
        if (*s == '\n') {
            rc = key_event(&b, br_key_named("Enter"), e);
        } else {
            char ch[8], code[16];
            memcpy(ch, s, n);
            ch[n] = '\0';
            br_key k;
            br_key_char(ch, &k, code);
            rc = key_event(&b, &k, e);
        }
        s += n;
    }
    return finish(&b, rc, e);
}

/* ---- actions ---- */

/* The target of an action: "selector" or "ref" (exactly one when `required`, at most one
 * otherwise). A ref is resolved to its frame's world here. */
static sbx_code target(act *a, bool required, sbx_err *e) {
    const char *ref = NULL;
    if (jf_string(a->req, "selector", false, &a->sel, e) ||
        jf_string(a->req, "ref", false, &ref, e))
        return SBX_EINVAL;
    if (a->sel && ref)
        return sbx_fail(e, SBX_EINVAL, "selector: give either a selector or a ref, not both");
    if (!a->sel && !ref)
        return required ? sbx_fail(e, SBX_EINVAL,
                                   "selector: required (a CSS selector), or a ref from a snapshot")
                        : SBX_OK;
    if (a->sel && !a->sel[0])
        return sbx_fail(e, SBX_EINVAL, "selector: must not be empty");
    if (!ref)
        return SBX_OK;
    a->ref = a->sel = ref;
    return br_ref_world(a->p, ref, left_ms(a->deadline, 500), &a->fp, &a->ctx, &a->dx, &a->dy, e);
}

static sbx_code act_pointer(act *a, bool click, sbx_err *e) {
    const char *button = "left";
    int64_t count = 1;
    if (click && (jf_enum(a->req, "button", false, "left|right|middle", &button, e) ||
                  jf_int(a->req, "clickCount", false, 1, 3, &count, e)))
        return SBX_EINVAL;
    cJSON *pt = NULL;
    sbx_code rc = with_element(a, true, "center", NULL, &pt, e);
    if (rc != SBX_OK)
        return rc;
    const cJSON *jx = cJSON_GetObjectItemCaseSensitive(pt, "x");
    const cJSON *jy = cJSON_GetObjectItemCaseSensitive(pt, "y");
    double x = a->dx + (cJSON_IsNumber(jx) ? jx->valuedouble : 0),
           y = a->dy + (cJSON_IsNumber(jy) ? jy->valuedouble : 0);
    cJSON_Delete(pt);
    batch b = {.p = a->p, .deadline = a->deadline};
    if (click && strcmp(button, "left") == 0 && br_page_is_mobile(a->p)) {
        /* A phone has no mouse: a click is a tap (a double click two, in one round trip). */
        for (int i = 1; rc == SBX_OK && i <= count; i++)
            rc = tap(&b, x, y, e);
        return finish(&b, rc, e);
    }
    /* The move and every press and release in one round trip: 1 + 2 * 3 <= CDP_MAX_BATCH. */
    rc = mouse(&b, "mouseMoved", x, y, "none", 0, 0, e);
    int bits = strcmp(button, "left") == 0 ? 1 : strcmp(button, "right") == 0 ? 2 : 4;
    for (int i = 1; click && rc == SBX_OK && i <= count; i++) {
        rc = mouse(&b, "mousePressed", x, y, button, bits, i, e);
        if (rc == SBX_OK)
            rc = mouse(&b, "mouseReleased", x, y, button, 0, i, e);
    }
    return finish(&b, rc, e);
}

static sbx_code act_type(act *a, sbx_err *e) {
    const char *text;
    if (jf_string(a->req, "text", true, &text, e) != SBX_OK)
        return SBX_EINVAL;
    cJSON *v = NULL;
    sbx_code rc = with_element(a, true, "focusEnd", NULL, &v, e);
    cJSON_Delete(v);
    return rc == SBX_OK ? type_text(a->p, text, a->deadline, e) : rc;
}

static sbx_code act_fill(act *a, sbx_err *e) {
    const char *value;
    if (jf_string(a->req, "value", true, &value, e) != SBX_OK)
        return SBX_EINVAL;
    cJSON *arg = cJSON_CreateString(value), *v = NULL;
    sbx_code rc = with_element(a, true, "fill", arg, &v, e);
    cJSON_Delete(arg);
    cJSON_Delete(v);
    return rc;
}

static sbx_code act_press(act *a, sbx_err *e) {
    const char *key;
    if (jf_string(a->req, "key", true, &key, e) != SBX_OK)
        return SBX_EINVAL;
    br_chord c; /* "Control+Shift+ArrowLeft": modifiers, then the key */
    if (br_key_chord(key, &c, e) != SBX_OK)
        return SBX_EINVAL;
    if (target(a, false, e) != SBX_OK)
        return e->code;
    if (a->sel) {
        cJSON *v = NULL;
        sbx_code rc = with_element(a, false, "focus", NULL, &v, e);
        cJSON_Delete(v);
        if (rc != SBX_OK)
            return rc;
    }
    batch b = {.p = a->p, .deadline = a->deadline};
    sbx_code rc = SBX_OK;
    int down = 0;
    for (int i = 0; i < c.nheld && rc == SBX_OK; i++) {
        down |= c.held_bit[i];
        rc = key_half(&b, c.held[i], false, down, e);
    }
    if (rc == SBX_OK)
        rc = key_half(&b, &c.key, false, c.mods, e);
    if (rc == SBX_OK)
        rc = key_half(&b, &c.key, true, c.mods, e);
    for (int i = c.nheld - 1; i >= 0 && rc == SBX_OK; i--) {
        down &= ~c.held_bit[i];
        rc = key_half(&b, c.held[i], true, down, e);
    }
    return finish(&b, rc, e);
}

static sbx_code act_focus(act *a, sbx_err *e) {
    cJSON *v = NULL;
    sbx_code rc = with_element(a, false, "focus", NULL, &v, e);
    cJSON_Delete(v);
    return rc;
}

static sbx_code act_select(act *a, sbx_err *e) {
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(a->req, "values");
    if (!cJSON_IsArray(vals))
        return sbx_fail(e, SBX_EINVAL, "values: required, an array of strings");
    const cJSON *it;
    cJSON_ArrayForEach(it, vals) {
        if (!cJSON_IsString(it))
            return sbx_fail(e, SBX_EINVAL, "values: must be an array of strings");
    }
    cJSON *v = NULL;
    sbx_code rc = with_element(a, false, "select", vals, &v, e);
    if (rc == SBX_OK)
        cJSON_AddItemToObject(a->out, "selected", v);
    return rc;
}

static sbx_code act_scroll(act *a, sbx_err *e) {
    double x = 0, y = 0;
    if (jf_number(a->req, "x", false, -1e9, 1e9, &x, e) ||
        jf_number(a->req, "y", false, -1e9, 1e9, &y, e))
        return SBX_EINVAL;
    if (target(a, false, e) != SBX_OK)
        return e->code;
    bool has_xy = cJSON_GetObjectItemCaseSensitive(a->req, "x") ||
                  cJSON_GetObjectItemCaseSensitive(a->req, "y");
    if (!a->sel && !has_xy)
        return sbx_fail(e, SBX_EINVAL, "selector: scroll needs a selector, a ref or x/y");
    if (a->sel && has_xy)
        return sbx_fail(e, SBX_EINVAL,
                        "selector: give either a selector (or ref) or x/y, not both");
    cJSON *v = NULL;
    sbx_code rc;
    if (a->sel) {
        rc = with_element(a, false, "scrollIntoView", NULL, &v, e);
    } else {
        cJSON *xy = cJSON_CreateArray();
        cJSON_AddItemToArray(xy, cJSON_CreateNumber(x));
        cJSON_AddItemToArray(xy, cJSON_CreateNumber(y));
        char *js = page_js("scrollTo", NULL, NULL, xy, false);
        cJSON_Delete(xy);
        cJSON *r = NULL;
        rc = js ? br_page_eval(a->p, js, left_ms(a->deadline, 500), &r, e)
                : sbx_fail(e, SBX_EINTERNAL, "out of memory");
        free(js);
        v = cJSON_DetachItemFromObjectCaseSensitive(r, "v");
        cJSON_Delete(r);
    }
    if (rc != SBX_OK)
        return rc;
    if (cJSON_GetArraySize(v) == 2) {
        cJSON_AddNumberToObject(a->out, "scrollX", cJSON_GetArrayItem(v, 0)->valuedouble);
        cJSON_AddNumberToObject(a->out, "scrollY", cJSON_GetArrayItem(v, 1)->valuedouble);
    }
    cJSON_Delete(v);
    return SBX_OK;
}

static sbx_code act_wait(act *a, sbx_err *e) {
    const char *state = "visible";
    if (jf_enum(a->req, "state", false, "attached|visible|hidden", &state, e) != SBX_OK)
        return SBX_EINVAL;
    if (strcmp(state, "hidden") != 0) {
        cJSON *v = NULL;
        sbx_code rc = with_element(a, strcmp(state, "visible") == 0, "exists", NULL, &v, e);
        cJSON_Delete(v);
        return rc;
    }
    /* hidden: absent, or present but not visible. */
    char *js = page_js("hidden", a->sel, a->ref, NULL, false);
    if (!js)
        return sbx_fail(e, SBX_EINVAL, "selector: too long");
    sbx_code rc;
    for (;;) {
        cJSON *r = NULL;
        rc = br_page_eval_in(a->fp, a->ctx, js, left_ms(a->deadline, 500), &r, e);
        if (rc == SBX_ESTALEREF) { /* its document went away: so did the element */
            rc = SBX_OK;
            break;
        }
        if (rc != SBX_OK)
            break;
        const cJSON *bad = cJSON_GetObjectItemCaseSensitive(r, "bad");
        bool hidden = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "hidden"));
        if (cJSON_IsString(bad))
            rc = sbx_fail(e, SBX_EINVAL, "selector: invalid CSS selector '%s': %s", a->sel,
                          bad->valuestring);
        cJSON_Delete(r);
        if (rc != SBX_OK || hidden)
            break;
        if (sbx_now_ms() + POLL_MS >= a->deadline) {
            rc = sbx_fail(e, SBX_ETIMEOUT, "element '%s' was still visible after %lld ms", a->sel,
                          (long long)a->timeout_ms);
            break;
        }
        sleep_ms(POLL_MS);
    }
    free(js);
    return rc;
}

static sbx_code act_evaluate(act *a, sbx_err *e) {
    const char *expr;
    if (jf_string(a->req, "expression", true, &expr, e) != SBX_OK)
        return SBX_EINVAL;
    cJSON *v = NULL;
    sbx_code rc = br_page_eval(a->p, expr, left_ms(a->deadline, 500), &v, e);
    if (rc == SBX_ETIMEOUT)
        return sbx_fail(e, SBX_ETIMEOUT, "expression did not finish within %lld ms",
                        (long long)a->timeout_ms);
    if (rc != SBX_OK)
        return rc;
    cJSON_AddItemToObject(a->out, "result", v);
    return SBX_OK;
}

typedef struct action_def {
    const char *name;
    const char *fields; /* allowed besides action|tabId|timeoutMs */
    bool selector;      /* selector (or ref) required */
} action_def;

static const action_def ACTIONS[] = {
    {"click", "selector|ref|button|clickCount", true},
    {"type", "selector|ref|text", true},
    {"fill", "selector|ref|value", true},
    {"press", "selector|ref|key", false},
    {"hover", "selector|ref", true},
    {"focus", "selector|ref", true},
    {"select", "selector|ref|values", true},
    {"scroll", "selector|ref|x|y", false},
    {"waitForSelector", "selector|ref|state", true},
    {"evaluate", "expression", false},
    {"back", "waitUntil", false},
    {"forward", "waitUntil", false},
    {"reload", "waitUntil", false},
    {"upload", "selector|ref|files", true},
};

sbx_code br_action(br_page *p, const cJSON *req, int64_t timeout_ms, cJSON **out, sbx_err *e) {
    *out = NULL;
    const char *name;
    if (!cJSON_IsObject(req))
        return sbx_fail(e, SBX_EINVAL, "body: must be a JSON object");
    if (jf_string(req, "action", true, &name, e) != SBX_OK)
        return sbx_fail(e, SBX_EINVAL, "action: required, one of %s", KNOWN);
    const action_def *d = NULL;
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (strcmp(ACTIONS[i].name, name) == 0)
            d = &ACTIONS[i];
    if (!d)
        return sbx_fail(e, SBX_EINVAL, "action: unknown action '%s'; known actions: %s", name,
                        KNOWN);
    char known[128];
    snprintf(known, sizeof known, "action|tabId|timeoutMs|%s", d->fields);
    if (jf_only(req, known, e) != SBX_OK)
        return SBX_EINVAL;
    act a = {.p = p,
             .fp = p,
             .req = req,
             .sel = NULL,
             .ref = NULL,
             .deadline = sbx_now_ms() + timeout_ms,
             .timeout_ms = timeout_ms,
             .out = cJSON_CreateObject()};
    cJSON_AddBoolToObject(a.out, "ok", 1);
    sbx_code rc = d->selector ? target(&a, true, e) : SBX_OK;
    if (rc == SBX_OK) {
        switch (d - ACTIONS) {
        case 0:
            rc = act_pointer(&a, true, e);
            break;
        case 1:
            rc = act_type(&a, e);
            break;
        case 2:
            rc = act_fill(&a, e);
            break;
        case 3:
            rc = act_press(&a, e);
            break;
        case 4:
            rc = act_pointer(&a, false, e);
            break;
        case 5:
            rc = act_focus(&a, e);
            break;
        case 6:
            rc = act_select(&a, e);
            break;
        case 7:
            rc = act_scroll(&a, e);
            break;
        case 8:
            rc = act_wait(&a, e);
            break;
        case 9:
            rc = act_evaluate(&a, e);
            break;
        case 10:
        case 11:
        case 12:
            rc = br_act_history(p, req,
                                d - ACTIONS == 10   ? -1
                                : d - ACTIONS == 11 ? 1
                                                    : 0,
                                a.deadline, a.out, e);
            break;
        default:
            rc = br_act_upload(a.fp, req, a.sel, a.ref, a.ctx, a.deadline, timeout_ms, a.out, e);
            break;
        }
    }
    if (rc != SBX_OK) {
        cJSON_Delete(a.out);
        return rc;
    }
    *out = a.out;
    return SBX_OK;
}
