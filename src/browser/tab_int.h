/* tab_int.h -- the insides of a br_tabs and its br_page records, shared by tab.c (the tabs)
 * and oopif.c (the tabs' out-of-process iframes). Nothing else includes it.
 *
 * Thread safety: every field below `mu` of a br_tabs, and the mutable fields of its pages, are
 * read and written with the br_tabs' `mu` held. Functions named *_locked expect it held.
 */
#ifndef SBX_BROWSER_TAB_INT_H
#define SBX_BROWSER_TAB_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "../common/limits.h"
#include "../common/node.h"
#include "../common/util.h"
#include "cdp.h"
#include "options.h"
#include "page.h"
#include "tab.h"

#define MAX_TABS 64 /* open tabs per session; closed ones do not count */
/* A closed tab's record is reused only this long after it closed: longer than any call that
 * may still hold it (a call's timeout is at most SBX_BROWSER_CALL_TIMEOUT_MS_MAX). */
#define TAB_REUSE_MS (SBX_BROWSER_CALL_TIMEOUT_MS_MAX + 60000)
#define MAX_KIDS     128 /* OOPIF sessions tracked per browser at once (live ones) */

struct br_events;
struct br_downloads;

/* A tab (a page target), or an out-of-process iframe of one (`owner` set: a "kid", see
 * oopif.c), each a flattened CDP target session. */
struct br_page {
    br_tabs *t;
    char tab_id[SBX_ID_LEN]; /* a kid: its tab's */
    char target_id[64];      /* a kid: its frame's id, which its target id is */
    char cdp_sid[64];        /* fixed for a tab; a kid's record may be reused (read locked) */
    char *url, *title;
    bool closed;
    int64_t closed_ms; /* when it closed (sbx_now_ms), for the reuse of its record */
    char lc_loader[64];
    unsigned lc_mask;
    char doc_req[64];
    int doc_status;
    bool crashed;          /* its renderer died; a navigation loads it again */
    bool setup_pending;    /* its set-up is queued but not yet known to be in force */
    char crash_why[32];    /* Chromium's status: "crashed", "killed", "oom", ... */
    br_page *owner;        /* a kid: the tab it is drawn in; NULL for a tab */
    char parent_frame[64]; /* a kid: the frame whose document holds its <iframe> */
};

struct br_tabs {
    char id[SBX_SID_LEN]; /* the session's */
    cdp_conn *conn;
    bool mobile;
    br_emulation em;                /* the session's options (br_tabs_set_emulation) */
    char default_ua[512];           /* Chromium's own user agent, when a locale needs it sent */
    struct br_events *events;       /* borrowed (br_tabs_set_events); NULL: no events kept */
    char *dir;                      /* the session's directory (br_tabs_set_dir), or NULL */
    struct br_downloads *downloads; /* borrowed (br_tabs_set_downloads), or NULL */
    br_tab_hook hook;               /* br_tabs_set_hook; zero: none */
    pthread_mutex_t mu;             /* everything below */
    pthread_cond_t cv;              /* signalled on every change a wait looks at */
    br_page **pages; /* every record, open and closed (reused TAB_REUSE_MS after it closed) */
    int npages, cap_pages;
    br_page *current;
    bool crashed, closing;
    char crash_why[128];
    br_page **kids; /* OOPIF records (oopif.c), never listed as tabs; reused as tabs' are */
    int nkids, cap_kids;
};

/* The emulation commands of the session's options (options.h) into `c` (room for
 * EMULATION_MAX); returns how many. Params are new objects (the caller sends them). `locale`:
 * with the locale override (see page_setup_sync). `frame`: for an out-of-process iframe's
 * session, which takes its size from its tab (no device metrics). */
#define EMULATION_MAX 5
int br_tabs_emulation_cmds(const br_tabs *t, cdp_cmd *c, bool locale, bool frame);

/* ---- oopif.c (service thread, for tab.c's event handler) ---- */

/* How a tab's (and an OOPIF's) session attaches its OOPIFs: each waits until oopif.c has sent
 * it the session's emulation, then runs. */
#define BR_OOPIF_AUTOATTACH "{\"autoAttach\":true,\"waitForDebuggerOnStart\":true,\"flatten\":true}"

/* Target.attachedToTarget of type "iframe" on session `sid` (a tab's or a kid's): record the
 * kid and queue its set-up (auto-attach of its own OOPIFs). */
void br_oopif_attached(br_tabs *t, const char *sid, const cJSON *params);
/* Locked: the kid with session `sid` (or, with `sid` NULL, target `tid`) is gone: marked
 * closed, and its session id copied into `gone` (room for 64) for the caller to fail its
 * waiting calls once unlocked. False when no kid has it. */
bool br_oopif_gone_locked(br_tabs *t, const char *sid, const char *tid, char *gone);
/* A new zeroed record appended to `*all` (`*n` of room `*cap`, grown as needed), or NULL when
 * out of memory: a tab's (tab.c) or a kid's (oopif.c). Locked. */
br_page *br_record_add(br_page ***all, int *n, int *cap);

/* Locked: tab `p` closed; so did its kids. */
void br_oopif_tab_closed_locked(br_tabs *t, br_page *p);
/* Free every kid record (br_tabs_free). */
void br_oopif_free_all(br_tabs *t);

#endif
