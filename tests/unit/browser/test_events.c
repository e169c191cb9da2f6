/* test_events.c -- a session's event ring: consecutive seqs, the bounds (frames and bytes),
 * replay from a seq and what a reader missed, the type filter, a reader woken by a frame from
 * another thread and by the end, and frames made from CDP events (console text, a response
 * with its request's method and its size). No browser: events are fed directly. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "browser/events.h"
#include "check.h"

static void console(br_events *ev, const char *text) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"type\":\"log\",\"args\":[{\"type\":\"string\",\"value\":\"%s\"}]}", text);
    cJSON *p = cJSON_Parse(json);
    br_events_cdp(ev, "Runtime.consoleAPICalled", "tab1", p);
    cJSON_Delete(p);
}

static void cdp(br_events *ev, const char *method, const char *json) {
    cJSON *p = cJSON_Parse(json);
    br_events_cdp(ev, method, "tab1", p);
    cJSON_Delete(p);
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void *late_frame(void *arg) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    console(arg, "late");
    return NULL;
}

static void *late_end(void *arg) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    br_events_end(arg, "the session was closed");
    return NULL;
}

int main(void) {
    br_events *ev = br_events_new("s1");
    CHECK(ev != NULL);
    CHECK(br_events_next_seq(ev) == 1);
    console(ev, "one");
    cdp(ev, "Page.frameNavigated", "{\"frame\":{\"id\":\"f\",\"url\":\"http://x/a\"}}");
    cdp(ev, "Page.frameNavigated",
        "{\"frame\":{\"id\":\"g\",\"parentId\":\"f\",\"url\":\"http://x/sub\"}}"); /* ignored */
    cdp(ev, "Network.dataReceived", "{\"requestId\":\"r1\"}");                     /* ignored */
    CHECK(br_events_next_seq(ev) == 3);

    /* everything from the start, with the common fields */
    sbx_buf b;
    sbx_buf_init(&b, 1 << 20);
    uint64_t next = 0, missed = 99;
    char why[128] = "";
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 1 << 20, 0, &missed, why) == 1);
    CHECK(missed == 0 && next == 3);
    CHECK(b.data && strncmp(b.data, "id: 1\nevent: console\ndata: {", 28) == 0);
    CHECK(strstr(b.data, "\"text\":\"one\"") && strstr(b.data, "\"session\":\"s1\"") &&
          strstr(b.data, "\"seq\":1") && strstr(b.data, "\"tabId\":\"tab1\"") &&
          strstr(b.data, "\"ts\":"));
    CHECK(strstr(b.data, "id: 2\nevent: navigation\n") && strstr(b.data, "http://x/a") &&
          !strstr(b.data, "http://x/sub"));
    sbx_buf_free(&b);

    /* nothing new: a read waits, then says so */
    sbx_buf_init(&b, 1 << 20);
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 1 << 20, 50, &missed, why) == 0);
    /* a frame from another thread wakes a waiting reader */
    pthread_t t;
    pthread_create(&t, NULL, late_frame, ev);
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 1 << 20, 5000, &missed, why) == 1);
    CHECK(b.data && strstr(b.data, "\"text\":\"late\""));
    pthread_join(t, NULL);
    sbx_buf_free(&b);

    /* the type filter: only navigation from seq 1 on */
    sbx_buf_init(&b, 1 << 20);
    next = 1;
    CHECK(br_events_read(ev, &next, BR_EV_NAVIGATION, &b, 1 << 20, 0, &missed, why) == 1);
    CHECK(count(b.data, "event: ") == 1 && strstr(b.data, "event: navigation"));
    CHECK(next == 4);
    sbx_buf_free(&b);
    CHECK(br_events_type_bit("console", 7) == BR_EV_CONSOLE);
    CHECK(br_events_type_bit("consol", 6) == 0);
    CHECK(br_events_type_bit("blocked", 7) == BR_EV_BLOCKED);

    /* an egress refusal: a blocked frame of the browser with the destination and the reason */
    br_events_blocked(ev, "example.org", 443, "not in allowedDomains");
    br_events_blocked(NULL, "x", 1, "y"); /* no ring: nothing */
    sbx_buf_init(&b, 1 << 20);
    CHECK(br_events_read(ev, &next, BR_EV_BLOCKED, &b, 1 << 20, 0, &missed, why) == 1);
    CHECK(count(b.data, "event: blocked\n") == 1);
    CHECK(strstr(b.data, "\"host\":\"example.org\",\"port\":443,\"reason\":\"not in "
                         "allowedDomains\",\"type\":\"blocked\"") &&
          strstr(b.data, "\"tabId\":\"\""));
    sbx_buf_free(&b);

    /* a response frame: method from the request, status and type from the response, size at
     * the end; no body anywhere */
    cdp(ev, "Network.requestWillBeSent",
        "{\"requestId\":\"r1\",\"type\":\"Fetch\",\"request\":{\"url\":\"http://x/api\","
        "\"method\":\"POST\",\"postData\":\"SECRET\"}}");
    cdp(ev, "Network.responseReceived",
        "{\"requestId\":\"r1\",\"type\":\"Fetch\",\"response\":{\"url\":\"http://x/api\","
        "\"status\":201,\"mimeType\":\"application/json\"}}");
    cdp(ev, "Network.loadingFinished", "{\"requestId\":\"r1\",\"encodedDataLength\":1234}");
    cdp(ev, "Network.loadingFinished", "{\"requestId\":\"r1\",\"encodedDataLength\":1}");
    sbx_buf_init(&b, 1 << 20);
    CHECK(br_events_read(ev, &next, BR_EV_REQUEST | BR_EV_RESPONSE, &b, 1 << 20, 0, &missed, why) ==
          1);
    CHECK(count(b.data, "event: request\n") == 1 && count(b.data, "event: response\n") == 1);
    CHECK(strstr(b.data, "\"method\":\"POST\",\"status\":201") && strstr(b.data, "\"size\":1234") &&
          !strstr(b.data, "SECRET"));
    sbx_buf_free(&b);

    /* the bounds: frames and bytes; a reader from seq 1 learns how many it missed */
    for (int i = 0; i < 3 * BR_EVENTS_MAX_FRAMES; i++)
        console(ev, "filler");
    size_t frames, bytes;
    br_events_stats(ev, &frames, &bytes);
    CHECK(frames == BR_EVENTS_MAX_FRAMES && bytes <= BR_EVENTS_MAX_BYTES);
    uint64_t newest = br_events_next_seq(ev) - 1;
    sbx_buf_init(&b, 64 * 1024);
    next = 1;
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 64 * 1024, 0, &missed, why) == 1);
    CHECK(missed == newest - BR_EVENTS_MAX_FRAMES);
    CHECK(b.len <= 64 * 1024 && next < newest); /* a read takes at most max_bytes */
    sbx_buf_free(&b);
    char big[BR_EVENTS_TEXT_MAX + 500];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 1000; i++)
        console(ev, big);
    br_events_stats(ev, &frames, &bytes);
    CHECK(bytes <= BR_EVENTS_MAX_BYTES && frames < BR_EVENTS_MAX_FRAMES);

    /* the end: a waiting reader drains what is left, then gets -1 and the reason */
    next = br_events_next_seq(ev) - 1;
    pthread_create(&t, NULL, late_end, ev);
    sbx_buf_init(&b, 1 << 20);
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 1 << 20, 5000, &missed, why) == 1);
    CHECK(br_events_read(ev, &next, BR_EV_ALL, &b, 1 << 20, 5000, &missed, why) == -1);
    CHECK(strcmp(why, "the session was closed") == 0);
    pthread_join(t, NULL);
    size_t before = br_events_next_seq(ev);
    console(ev, "after the end");
    CHECK(br_events_next_seq(ev) == before);
    sbx_buf_free(&b);

    br_events *r = br_events_ref(ev);
    br_events_unref(ev);
    br_events_unref(r);
    br_events_unref(NULL);
    return CHECK_DONE();
}
