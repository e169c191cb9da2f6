/* test_oopif.c -- the out-of-process iframes of a browser's tabs (src/browser/oopif.c, fed by
 * tab.c's event handler) with recorded CDP events and no socket: a tab's session auto-attaches
 * its OOPIFs, an OOPIF attached on a tab's (or another OOPIF's) session is listed for that tab
 * and never as a tab, its own OOPIFs attach too, and once it detaches it is no longer listed,
 * calls on it fail at once with stale_ref and a call waiting on it ends, however many OOPIFs
 * come and go after it (its record is not handed to another frame while a call may hold it). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "browser/cdp.h"
#include "browser/page.h"
#include "browser/tab.h"
#include "check.h"
#include "common/util.h"

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* True when a message `method` to session `sid` was sent on `c` (the others are dropped). */
static bool sent_to(cdp_conn *c, const char *method, const char *sid) {
    bool hit = false;
    for (char *t; (t = cdp_test_sent(c));) {
        cJSON *m = cJSON_Parse(t);
        free(t);
        const char *me = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "method"));
        const char *si = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "sessionId"));
        hit |= me && si && strcmp(me, method) == 0 && strcmp(si, sid) == 0;
        cJSON_Delete(m);
    }
    return hit;
}

static int ntabs(br_tabs *t) {
    cJSON *a = br_tabs_json(t, false);
    int n = cJSON_GetArraySize(a);
    cJSON_Delete(a);
    return n;
}

typedef struct call {
    pthread_t th;
    br_page *p;
    sbx_code rc;
    atomic_bool done;
} call;

static void *run_call(void *arg) {
    call *k = arg;
    sbx_err e;
    k->rc = br_page_call(k->p, "Runtime.evaluate", NULL, 5000, NULL, &e);
    atomic_store(&k->done, true);
    return NULL;
}

int main(void) {
    cdp_handlers none = {NULL, NULL, NULL};
    cdp_conn *out = cdp_test_conn(&none); /* what the tabs send goes here */
    br_tabs *t = br_tabs_new("s1", out);
    CHECK(t != NULL);
    br_emulation em = {.timezone = "Europe/Berlin"}; /* what every frame of the session gets */
    br_tabs_set_emulation(t, &em, "Mozilla/5.0 (test)");
    cdp_handlers h = br_tabs_handlers(t);
    cdp_conn *in = cdp_test_conn(&h); /* what Chromium "sends" comes in here */

    /* A tab attaches: its session is told to auto-attach its OOPIFs. */
    cdp_test_receive(in, "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":"
                         "\"P1\",\"targetInfo\":{\"type\":\"page\",\"targetId\":\"T1\","
                         "\"url\":\"http://127.0.0.1/top\"}}}");
    CHECK(sent_to(out, "Target.setAutoAttach", "P1"));
    sbx_err e;
    br_page *tab = br_tabs_page(t, NULL, &e);
    CHECK(tab != NULL);
    br_oopif kids[BR_OOPIF_MAX];
    CHECK(br_page_oopifs(tab, kids, BR_OOPIF_MAX) == 0);

    /* An OOPIF of the tab, then one of the OOPIF: both the tab's, neither a tab. */
    cdp_test_receive(in, "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"P1\","
                         "\"params\":{\"sessionId\":\"K1\",\"targetInfo\":{\"type\":\"iframe\","
                         "\"targetId\":\"F1\",\"parentFrameId\":\"T1\","
                         "\"url\":\"http://localhost/form\"}}}");
    CHECK(sent_to(out, "Target.setAutoAttach", "K1"));
    cdp_test_receive(in, "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"K1\","
                         "\"params\":{\"sessionId\":\"K2\",\"targetInfo\":{\"type\":\"iframe\","
                         "\"targetId\":\"F2\",\"parentFrameId\":\"F1\","
                         "\"url\":\"http://127.0.0.1/leaf\"}}}");
    CHECK(ntabs(t) == 1);
    CHECK(br_tabs_page(t, NULL, &e) == tab);
    int n = br_page_oopifs(tab, kids, BR_OOPIF_MAX);
    CHECK(n == 2);
    br_page *k1 = NULL, *k2 = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(kids[i].frame_id, "F1") == 0 && strcmp(kids[i].parent_frame, "T1") == 0)
            k1 = kids[i].page;
        if (strcmp(kids[i].frame_id, "F2") == 0 && strcmp(kids[i].parent_frame, "F1") == 0)
            k2 = kids[i].page;
    }
    CHECK(k1 && k2 && k1 != tab && k2 != tab && k1 != k2);
    CHECK(k1 && strcmp(br_page_frame_id(k1), "F1") == 0);
    /* asked from an OOPIF's page, the same list (its tab's) */
    CHECK(k2 && br_page_oopifs(k2, kids, BR_OOPIF_MAX) == 2);
    /* an attach announced on no session we know is no OOPIF of ours */
    cdp_test_receive(in, "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"ZZ\","
                         "\"params\":{\"sessionId\":\"K9\",\"targetInfo\":{\"type\":\"iframe\","
                         "\"targetId\":\"F9\",\"parentFrameId\":\"X\",\"url\":\"\"}}}");
    CHECK(br_page_oopifs(tab, kids, BR_OOPIF_MAX) == 2);

    /* A call waiting on an OOPIF that detaches ends then, as stale_ref. */
    call c = {.p = k2};
    pthread_create(&c.th, NULL, run_call, &c);
    for (int i = 0; i < 50; i++)
        sleep_ms(2); /* let the call be sent */
    cdp_test_receive(in, "{\"method\":\"Target.detachedFromTarget\",\"sessionId\":\"K1\","
                         "\"params\":{\"sessionId\":\"K2\"}}");
    for (int i = 0; i < 2000 && !atomic_load(&c.done); i++)
        sleep_ms(1);
    bool done = atomic_load(&c.done);
    CHECK(done);
    if (done)
        pthread_join(c.th, NULL);
    CHECK(c.rc == SBX_ESTALEREF);
    CHECK(br_page_oopifs(tab, kids, BR_OOPIF_MAX) == 1);

    /* The first detaches too: gone from the list, and a call on it fails at once. */
    cdp_test_receive(in, "{\"method\":\"Target.detachedFromTarget\",\"sessionId\":\"P1\","
                         "\"params\":{\"sessionId\":\"K1\"}}");
    CHECK(br_page_oopifs(tab, kids, BR_OOPIF_MAX) == 0);
    for (char *m; (m = cdp_test_sent(out));)
        free(m);
    CHECK(br_page_call(k1, "Runtime.evaluate", NULL, 5000, NULL, &e) == SBX_ESTALEREF);
    CHECK(strstr(e.msg, "snapshot") != NULL);
    CHECK(cdp_test_sent(out) == NULL); /* nothing was sent to it */
    CHECK(ntabs(t) == 1);              /* and the tab lives on */

    /* A page that churns ads: 300 OOPIFs come, all but the last MAX_KIDS (128) go again. The
     * gone ones' records are not another frame's now, so a call on them still fails as
     * stale_ref and sends nothing (a record handed on would carry the call to a live ad). */
    char msg[512];
    for (int i = 0; i < 300; i++) {
        snprintf(msg, sizeof msg,
                 "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"P1\",\"params\":"
                 "{\"sessionId\":\"C%d\",\"targetInfo\":{\"type\":\"iframe\",\"targetId\":"
                 "\"G%d\",\"parentFrameId\":\"T1\",\"url\":\"http://localhost/ad\"}}}",
                 i, i);
        cdp_test_receive(in, msg);
        if (i < 300 - 128) {
            snprintf(msg, sizeof msg,
                     "{\"method\":\"Target.detachedFromTarget\",\"sessionId\":\"P1\","
                     "\"params\":{\"sessionId\":\"C%d\"}}",
                     i);
            cdp_test_receive(in, msg);
        }
    }
    CHECK(br_page_oopifs(tab, kids, BR_OOPIF_MAX) == BR_OOPIF_MAX);
    for (char *m; (m = cdp_test_sent(out));)
        free(m);
    CHECK(br_page_call(k1, "Runtime.evaluate", NULL, 5000, NULL, &e) == SBX_ESTALEREF);
    CHECK(br_page_call(k2, "Runtime.evaluate", NULL, 5000, NULL, &e) == SBX_ESTALEREF);
    CHECK(cdp_test_sent(out) == NULL);
    /* past MAX_KIDS live ones a frame is left untracked, yet it still gets the session's
     * emulation before it runs (its scripts see what the tab's see) */
    cdp_test_receive(in, "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"P1\","
                         "\"params\":{\"sessionId\":\"L1\",\"targetInfo\":{\"type\":"
                         "\"iframe\",\"targetId\":\"H1\",\"parentFrameId\":\"T1\","
                         "\"url\":\"http://localhost/ad\"}}}");
    CHECK(sent_to(out, "Emulation.setTimezoneOverride", "L1"));

    cdp_close(in);
    cdp_close(out);
    br_tabs_free(t);
    return CHECK_DONE();
}
