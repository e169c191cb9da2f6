/* options.h -- what a browser session is asked to be at create: device, viewport, user agent,
 * locale, time zone, stored state (POST /browser/sessions; API.md "Browser extensions").
 *
 * br_session_opts_parse checks a create body and fills a br_session_opts; a bad value is
 * SBX_EINVAL naming the field (the contents of `state` are br_state_check's, state.h). Every tab of
 * the session, popups included, gets the same emulation (tab.c applies it as each tab attaches,
 * before the tab runs anything), so a page sees it in innerWidth, navigator.userAgent,
 * navigator.language and Intl's time zone. None of it is a launch flag: pooled Chromiums serve any
 * options.
 *
 * Thread safety: pure functions. The struct borrows `state` from the parsed body.
 */
#ifndef SBX_BROWSER_OPTIONS_H
#define SBX_BROWSER_OPTIONS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

typedef struct br_emulation {
    bool mobile;          /* a phone: 390x844 at DPR 3, touch, Android user agent */
    int width, height;    /* CSS pixels of the viewport; 0: the device's */
    char user_agent[512]; /* "": the device's */
    char locale[36];      /* BCP 47, e.g. "de-DE"; "": Chromium's */
    char timezone[64];    /* IANA, e.g. "Europe/Berlin"; "": the server's */
} br_emulation;

typedef struct br_session_opts {
    br_emulation em;
    const cJSON *state; /* {cookies, origins} to restore (borrowed), or NULL */
} br_session_opts;

/* The create fields this module reads (for jf_only): */
#define BR_SESSION_OPTS_FIELDS "device|viewport|userAgent|locale|timezoneId|state"

/* Fill `o` from a create body (absent fields: defaults). SBX_EINVAL naming the field. */
sbx_code br_session_opts_parse(const cJSON *body, br_session_opts *o, sbx_err *e);

#endif
