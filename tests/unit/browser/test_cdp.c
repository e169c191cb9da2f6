/* test_cdp.c -- CDP message dispatch (src/browser/cdp.c) with recorded Chromium messages and
 * no socket: a reply reaches its own caller only (and leaves the others waiting), an error
 * reply carries Chromium's message as a 500, an event reaches the handler with its session,
 * malformed or unknown messages are dropped, and failing a target session, a deadline and a
 * close each end exactly the calls they should. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "browser/cdp.h"
#include "check.h"
#include "common/util.h"

/* ---- the handler: what events arrived ---- */

static int n_events;
static char ev_method[64], ev_sid[64], ev_param[64];
static bool ev_sid_null;

static void on_event(void *ud, const char *method, const char *sid, const cJSON *params) {
    (void)ud;
    n_events++;
    snprintf(ev_method, sizeof ev_method, "%s", method);
    ev_sid_null = sid == NULL;
    snprintf(ev_sid, sizeof ev_sid, "%s", sid ? sid : "");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
    snprintf(ev_param, sizeof ev_param, "%s", cJSON_IsString(name) ? name->valuestring : "");
}

static int n_closes;
static void on_close(void *ud, const char *why) {
    (void)ud;
    (void)why;
    n_closes++;
}

/* ---- a call on its own thread ---- */

typedef struct call {
    cdp_conn *c;
    const char *sid, *method;
    int64_t timeout_ms;
    pthread_t t;
    volatile bool done;
    sbx_code rc;
    sbx_err e;
    cJSON *result;
} call;

static void *call_main(void *arg) {
    call *k = arg;
    k->rc =
        cdp_call(k->c, k->sid, k->method, cJSON_CreateObject(), k->timeout_ms, &k->result, &k->e);
    __atomic_store_n(&k->done, true, __ATOMIC_SEQ_CST);
    return NULL;
}

static void start(call *k, cdp_conn *c, const char *sid, const char *method, int64_t ms) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->sid = sid;
    k->method = method;
    k->timeout_ms = ms;
    pthread_create(&k->t, NULL, call_main, k);
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static bool is_done(call *k) {
    return __atomic_load_n(&k->done, __ATOMIC_SEQ_CST);
}

/* Wait up to 2 s for the call to end. */
static bool ends(call *k) {
    for (int i = 0; i < 2000 && !is_done(k); i++)
        sleep_ms(1);
    if (!is_done(k))
        return false;
    pthread_join(k->t, NULL);
    return true;
}

/* The next message sent on `c` (waiting up to 2 s); its id, method and sessionId. */
static int64_t sent(cdp_conn *c, char *method, char *sid) {
    char *t = NULL;
    for (int i = 0; i < 2000 && !(t = cdp_test_sent(c)); i++)
        sleep_ms(1);
    if (!t)
        return -1;
    cJSON *m = cJSON_Parse(t);
    free(t);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(m, "method");
    const cJSON *si = cJSON_GetObjectItemCaseSensitive(m, "sessionId");
    snprintf(method, 64, "%s", cJSON_IsString(me) ? me->valuestring : "");
    snprintf(sid, 64, "%s", cJSON_IsString(si) ? si->valuestring : "");
    int64_t r = cJSON_IsNumber(id) ? (int64_t)id->valuedouble : -1;
    cJSON_Delete(m);
    return r;
}

static void receive(cdp_conn *c, const char *fmt, long long id) {
    char buf[512];
    snprintf(buf, sizeof buf, fmt, id);
    cdp_test_receive(c, buf);
}

int main(void) {
    cdp_handlers h = {on_event, on_close, NULL};
    cdp_conn *c = cdp_test_conn(&h);
    CHECK(c != NULL);
    char method[64], sid[64];

    /* Two calls in flight; the reply to the second wakes the second only. */
    call a, b;
    start(&a, c, "S1", "Runtime.evaluate", 5000);
    int64_t ida = sent(c, method, sid);
    CHECK(ida > 0 && strcmp(method, "Runtime.evaluate") == 0 && strcmp(sid, "S1") == 0);
    start(&b, c, NULL, "Target.getTargets", 5000);
    int64_t idb = sent(c, method, sid);
    CHECK(idb > 0 && idb != ida && strcmp(method, "Target.getTargets") == 0 && sid[0] == 0);
    receive(c, "{\"id\":%lld,\"result\":{\"targetInfos\":[1,2]}}", (long long)idb);
    CHECK(ends(&b));
    CHECK(b.rc == SBX_OK);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b.result, "targetInfos")) == 2);
    cJSON_Delete(b.result);
    sleep_ms(20);
    CHECK(!is_done(&a)); /* still waiting for its own reply */

    /* An error reply: Chromium's failure, 500 with its message, never the client's 400. */
    receive(c,
            "{\"id\":%lld,\"error\":{\"code\":-32000,"
            "\"message\":\"Cannot find context with specified id\"}}",
            (long long)ida);
    CHECK(ends(&a));
    CHECK(a.rc == SBX_EINTERNAL && a.e.code == SBX_EINTERNAL);
    CHECK(strstr(a.e.msg, "Chromium refused Runtime.evaluate") != NULL);
    CHECK(strstr(a.e.msg, "Cannot find context with specified id") != NULL);
    CHECK(a.result == NULL);

    /* Events reach the handler, with their target session or none. */
    cdp_test_receive(c, "{\"method\":\"Page.lifecycleEvent\",\"sessionId\":\"S1\","
                        "\"params\":{\"name\":\"load\",\"frameId\":\"F\"}}");
    CHECK(n_events == 1 && strcmp(ev_method, "Page.lifecycleEvent") == 0);
    CHECK(strcmp(ev_sid, "S1") == 0 && strcmp(ev_param, "load") == 0);
    cdp_test_receive(c, "{\"method\":\"Target.targetCreated\",\"params\":{}}");
    CHECK(n_events == 2 && ev_sid_null);

    /* Malformed or unknown messages are dropped: no event, and a waiting call still waits
     * for its own reply. */
    call k;
    start(&k, c, "S2", "DOM.getDocument", 5000);
    int64_t idk = sent(c, method, sid);
    cdp_test_receive(c, "{not json");
    cdp_test_receive(c, "[1,2,3]");
    cdp_test_receive(c, "{\"id\":\"7\",\"result\":{}}");
    cdp_test_receive(c, "{\"id\":987654,\"result\":{}}");
    cdp_test_receive(c, "{\"params\":{}}");
    cdp_test_receive(c, "");
    sleep_ms(20);
    CHECK(n_events == 2);
    CHECK(!is_done(&k));
    receive(c, "{\"id\":%lld,\"result\":{\"root\":{}}}", (long long)idk);
    CHECK(ends(&k) && k.rc == SBX_OK && cJSON_GetObjectItemCaseSensitive(k.result, "root"));
    cJSON_Delete(k.result);
    /* A late duplicate reply is dropped too. */
    receive(c, "{\"id\":%lld,\"result\":{}}", (long long)idk);

    /* A crashed target ends the calls waiting on it, not those on another target. */
    call t1, t2;
    start(&t1, c, "S1", "Page.navigate", 5000);
    sent(c, method, sid);
    start(&t2, c, "S2", "Page.navigate", 5000);
    int64_t id2 = sent(c, method, sid);
    cdp_fail_session(c, "S1", SBX_ETABCRASHED, "the tab's renderer died");
    CHECK(ends(&t1) && t1.rc == SBX_ETABCRASHED && strstr(t1.e.msg, "renderer died"));
    sleep_ms(20);
    CHECK(!is_done(&t2));
    receive(c, "{\"id\":%lld,\"result\":{}}", (long long)id2);
    CHECK(ends(&t2) && t2.rc == SBX_OK);
    cJSON_Delete(t2.result);

    /* No reply: the call ends at its deadline, not later. */
    call slow;
    int64_t t0 = sbx_now_ms();
    start(&slow, c, "S1", "Runtime.evaluate", 60);
    sent(c, method, sid);
    CHECK(ends(&slow) && slow.rc == SBX_ETIMEOUT);
    CHECK(sbx_now_ms() - t0 < 1000);
    CHECK(strstr(slow.e.msg, "Runtime.evaluate did not answer") != NULL);

    /* Closing ends what still waits, with no close callback (the caller closed it). */
    call last;
    start(&last, c, "S1", "Runtime.evaluate", 5000);
    sent(c, method, sid);
    cdp_close(c);
    CHECK(ends(&last) && last.rc == SBX_ECRASHED);
    CHECK(n_closes == 0);
    return CHECK_DONE();
}
