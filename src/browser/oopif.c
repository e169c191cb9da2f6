/* oopif.c -- the out-of-process iframes of a browser's tabs (see page.h, br_page_oopifs).
 *
 * Chromium draws a cross-site iframe in a renderer process of its own (site isolation), and its
 * document is then reachable only through a CDP target of its own, type "iframe", whose id is
 * the frame's id. Each tab's session auto-attaches to them (Target.setAutoAttach, flattened,
 * queued by tab.c when the tab attaches), and each such "kid" auto-attaches to its own, so
 * nested ones come too. A kid is a br_page record with `owner` set, kept apart from the tabs:
 * it is never listed, made current or reported as a tab. Its record lives until br_tabs_free,
 * or until it is reused for a later kid TAB_REUSE_MS after it closed, as a tab's is: a call that
 * borrowed it has ended by then, so a call on a kid that went away fails at once with
 * SBX_ESTALEREF and never reaches another frame.
 *
 * Thread safety: br_oopif_attached runs on the CDP service thread and takes the tabs' lock;
 * the *_locked functions expect it held; br_page_oopifs from any thread.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "tab_int.h"

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Locked: the live kid with session `sid`, or NULL. */
static br_page *kid_by_sid(br_tabs *t, const char *sid) {
    for (int i = 0; sid && i < t->nkids; i++)
        if (!t->kids[i]->closed && strcmp(t->kids[i]->cdp_sid, sid) == 0)
            return t->kids[i];
    return NULL;
}

/* Locked: the tab that session `sid` (a tab's or a kid's) draws into, or NULL. */
static br_page *owner_of(br_tabs *t, const char *sid) {
    for (int i = 0; i < t->npages; i++)
        if (!t->pages[i]->closed && strcmp(t->pages[i]->cdp_sid, sid) == 0)
            return t->pages[i];
    br_page *k = kid_by_sid(t, sid);
    return k ? k->owner : NULL;
}

/* Locked: a zeroed record for a new kid: one closed TAB_REUSE_MS ago, else a new one; NULL
 * when MAX_KIDS are live (or out of memory). */
static br_page *kid_record(br_tabs *t) {
    int64_t now = sbx_now_ms();
    int live = 0;
    br_page *reuse = NULL;
    for (int i = 0; i < t->nkids; i++) {
        br_page *k = t->kids[i];
        live += !k->closed;
        if (!reuse && k->closed && now - k->closed_ms >= TAB_REUSE_MS)
            reuse = k;
    }
    if (live >= MAX_KIDS)
        return NULL;
    if (reuse) {
        memset(reuse, 0, sizeof *reuse);
        return reuse;
    }
    return br_record_add(&t->kids, &t->nkids, &t->cap_kids);
}

void br_oopif_attached(br_tabs *t, const char *sid, const cJSON *params) {
    const char *kid_sid = jstr(params, "sessionId");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
    const char *tid = jstr(ti, "targetId"), *parent = jstr(ti, "parentFrameId");
    if (!kid_sid || !tid)
        return;
    pthread_mutex_lock(&t->mu);
    br_page *owner = owner_of(t, sid);
    bool ours = owner != NULL;
    br_page *k = owner && strlen(kid_sid) < sizeof k->cdp_sid ? kid_record(t) : NULL;
    if (k) {
        k->t = t;
        k->owner = owner;
        k->closed = false;
        memcpy(k->tab_id, owner->tab_id, SBX_ID_LEN);
        snprintf(k->target_id, sizeof k->target_id, "%s", tid);
        snprintf(k->cdp_sid, sizeof k->cdp_sid, "%s", kid_sid);
        snprintf(k->parent_frame, sizeof k->parent_frame, "%s", parent ? parent : "");
    }
    pthread_mutex_unlock(&t->mu);
    if (ours && !k)
        LOG_D("browser", "session=%s an out-of-process iframe left untracked", t->id);
    /* It waits for us: the session's emulation first (user agent, locale, time zone, touch:
     * what its scripts see must be what the tab's see; an untracked one of ours too), and its
     * own cross-site iframes attach the same way; then it runs. Refusals are dropped: a frame
     * Chromium will not emulate still runs. */
    if (ours) {
        cdp_cmd c[EMULATION_MAX];
        int n = br_tabs_emulation_cmds(t, c, true, true);
        for (int i = 0; i < n; i++)
            cdp_send(t->conn, kid_sid, c[i].method, c[i].params);
    }
    if (k)
        cdp_send(t->conn, kid_sid, "Target.setAutoAttach", cJSON_CreateRaw(BR_OOPIF_AUTOATTACH));
    cdp_send(t->conn, kid_sid, "Runtime.runIfWaitingForDebugger", NULL);
}

bool br_oopif_gone_locked(br_tabs *t, const char *sid, const char *tid, char *gone) {
    for (int i = 0; i < t->nkids; i++) {
        br_page *k = t->kids[i];
        if (k->closed || !((sid && strcmp(k->cdp_sid, sid) == 0) ||
                           (!sid && tid && strcmp(k->target_id, tid) == 0)))
            continue;
        k->closed = true;
        k->closed_ms = sbx_now_ms();
        snprintf(gone, 64, "%s", k->cdp_sid);
        return true;
    }
    return false;
}

void br_oopif_tab_closed_locked(br_tabs *t, br_page *p) {
    for (int i = 0; i < t->nkids; i++)
        if (t->kids[i]->owner == p && !t->kids[i]->closed) {
            t->kids[i]->closed = true;
            t->kids[i]->closed_ms = sbx_now_ms();
        }
}

void br_oopif_free_all(br_tabs *t) {
    for (int i = 0; i < t->nkids; i++)
        free(t->kids[i]);
    free(t->kids);
    t->kids = NULL;
    t->nkids = t->cap_kids = 0;
}

int br_page_oopifs(br_page *p, br_oopif *out, int max) {
    br_tabs *t = p->t;
    br_page *tab = p->owner ? p->owner : p;
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->nkids && n < max; i++) {
        br_page *k = t->kids[i];
        if (k->closed || k->owner != tab)
            continue;
        out[n].page = k;
        memcpy(out[n].frame_id, k->target_id, sizeof out[n].frame_id);
        memcpy(out[n].parent_frame, k->parent_frame, sizeof out[n].parent_frame);
        n++;
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}
