/* events.h -- a browser session's live events: typed frames kept in a bounded ring and read by
 * any number of readers (GET /browser/sessions/{id}/events, Server-Sent Events).
 *
 * Frames are made from the CDP events of the session's browser (br_events_cdp), from what
 * the tab table sees happen to tabs (br_events_tab, br_events_crash) and from the egress
 * gateway's refusals of the browser's connections (br_events_blocked). Each frame is kept as
 * ready SSE text ("id: SEQ\nevent: TYPE\ndata: {...}\n\n") whose JSON carries "type",
 * "session", "seq" (1, 2, ... per session), "ts" (milliseconds since the epoch) and "tabId"
 * ("" for the browser itself). The ring holds at most BR_EVENTS_MAX_FRAMES frames and
 * BR_EVENTS_MAX_BYTES bytes: the oldest go first. A producer never waits for a reader; a
 * reader that falls behind finds its next frame gone (br_events_read says how many it
 * missed) and is dropped by its caller.
 *
 * Thread safety: every function may be called from any thread (producers: the CDP service
 * thread, the egress gateway's thread; readers: their own threads). The ring's lock is a leaf:
 * callers may hold their own locks while they emit. Lifetime: br_events_new returns one reference;
 * br_events_ref adds one, br_events_unref drops one and the last frees.
 */
#ifndef SBX_BROWSER_EVENTS_H
#define SBX_BROWSER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/util.h"

#define BR_EVENTS_MAX_FRAMES 1000
#define BR_EVENTS_MAX_BYTES  (1u << 20)
#define BR_EVENTS_TEXT_MAX   2000 /* console text, URLs, dialog messages: longer is cut */

/* The frame types, one bit each (a reader's filter is a mask of them). */
enum {
    BR_EV_NAVIGATION = 1 << 0,
    BR_EV_CONSOLE = 1 << 1,
    BR_EV_REQUEST = 1 << 2,
    BR_EV_RESPONSE = 1 << 3,
    BR_EV_DIALOG = 1 << 4,
    BR_EV_TAB = 1 << 5,
    BR_EV_DOWNLOAD = 1 << 6,
    BR_EV_CRASH = 1 << 7,
    BR_EV_BLOCKED = 1 << 8,
    BR_EV_ALL = (1 << 9) - 1,
};

typedef struct br_events br_events;

/* A ring for session `session_id` (copied). NULL when out of memory. */
br_events *br_events_new(const char *session_id);
br_events *br_events_ref(br_events *ev);
/* Drop one reference. NULL ok. */
void br_events_unref(br_events *ev);

/* The bit of type `name` ("console", ...; `len` bytes), or 0 when there is no such type. */
unsigned br_events_type_bit(const char *name, size_t len);

/* One CDP event of tab `tab_id` ("" or NULL: the browser): the ones that make frames
 * (navigation, console, request, response, dialog, download) are kept, the rest ignored. */
void br_events_cdp(br_events *ev, const char *method, const char *tab_id, const cJSON *params);
/* A tab frame: `state` "opened", "closed" or "crashed"; `url` and `detail` may be NULL
 * (`detail`: the opener's tab id of a tab that opened, Chromium's status of one that crashed).
 * `ev` NULL: nothing. */
void br_events_tab(br_events *ev, const char *tab_id, const char *state, const char *url,
                   const char *detail);
/* The browser died: a crash frame with `why`. `ev` NULL: nothing. */
void br_events_crash(br_events *ev, const char *why);
/* The egress gateway refused a connection of the browser to host:port (`why`): a blocked frame
 * {host, port, reason} of the browser (tabId ""; the gateway cannot tell the tab). `ud` is the
 * ring (NULL: nothing); the shape of an egress_refusal_fn, called on the gateway's thread. */
void br_events_blocked(void *ud, const char *host, uint16_t port, const char *why);
/* br_events_unref with the shape of a release function (egress_client_on_refusal). */
void br_events_release(void *ud);
/* Keep a frame of `type` (a BR_EV_* bit) for `tab_id`; `data` (taken, an object) gets the
 * common fields added. */
void br_events_emit(br_events *ev, unsigned type, const char *tab_id, cJSON *data);

/* The session ended (`why`, e.g. "the session was closed"): readers get what is left, then
 * the end. Later frames are dropped. */
void br_events_end(br_events *ev, const char *why);

/* The seq the next frame will get. */
uint64_t br_events_next_seq(br_events *ev);

/* A reader: append to `out` the SSE text of the frames with seq >= *next whose type is in
 * `mask`, oldest first, while `out` stays within `max_bytes` (at least one frame is taken),
 * waiting up to `wait_ms` when there is none yet; a reader woken by a new frame waits a few
 * milliseconds more before it takes it, so a burst of frames comes in a few reads. *next moves past
 * the last frame looked at. *missed gets how many frames from *next on had already left the ring
 * (*next then starts at the oldest kept). Returns 1 when frames were added, 0 when none came in
 * time, -1 once the events ended and nothing is left for this reader (`why`, room for 128, gets the
 * reason). */
int br_events_read(br_events *ev, uint64_t *next, unsigned mask, sbx_buf *out, size_t max_bytes,
                   int64_t wait_ms, uint64_t *missed, char *why);

/* For tests: frames and bytes the ring holds now. */
void br_events_stats(br_events *ev, size_t *frames, size_t *bytes);

#endif
