/* err.h -- the project's one error enum and the error record every layer fills.
 *
 * Each code maps to exactly one HTTP status and one snake_case wire name (see
 * API.md "Errors"), so a module deep in exec/ or browser/ says *what* went wrong
 * and the HTTP layer alone decides how it looks on the wire.
 *
 * Thread safety: all functions are pure or write only to the caller's record.
 */
#ifndef SBX_ERR_H
#define SBX_ERR_H

#include <stddef.h>

typedef enum sbx_code {
    SBX_OK = 0,
    SBX_EINVAL,      /* 400 invalid_request: the message names the field */
    SBX_EUNAUTH,     /* 401 unauthorized */
    SBX_EFORBIDDEN,  /* 403 forbidden */
    SBX_ENOTFOUND,   /* 404 not_found */
    SBX_EMETHOD,     /* 405 method_not_allowed */
    SBX_EREQTIMEOUT, /* 408 timeout (the client was too slow) */
    SBX_ECONFLICT,   /* 409 conflict */
    SBX_ETOOLARGE,   /* 413 payload_too_large */
    SBX_EMEDIATYPE,  /* 415 unsupported_media_type */
    SBX_ENOELEMENT,  /* 422 element_not_found */
    SBX_ETOOMANY,    /* 429 too_many_sessions */
    SBX_EBUSY,       /* 429 busy */
    SBX_EINTERNAL,   /* 500 internal */
    SBX_ECRASHED,    /* 502 browser_crashed */
    SBX_EUNAVAIL,    /* 503 unavailable */
    SBX_ETIMEOUT,    /* 504 timeout (we were too slow: navigation, CDP call) */
    SBX_ENETWORK,    /* 502 navigation_failed (DNS, refused, ... from Chromium) */
    SBX_ETABCRASHED, /* 502 tab_crashed (a tab's renderer died; the session lives on) */
    SBX_ENOSPACE,    /* 507 insufficient_storage (DATA_DIR is full) */
    SBX_EINUSE,      /* 409 busy (a Python session is running another call) */
    SBX_ERESTARTED,  /* 409 kernel_restarted (a Python session's interpreter was restarted) */
    SBX_EWRONGNODE,  /* 421 misdirected_request (a session of another replica: NODE_ID) */
    SBX_EDRAINING,   /* 503 draining (this replica is shutting down: no new sessions) */
    SBX_CODE_COUNT
} sbx_code;

/* An error record. `retry_after` (seconds, 0 = none) becomes a Retry-After header. */
typedef struct sbx_err {
    sbx_code code;
    int retry_after;
    char msg[512];
} sbx_err;

/* Fill `e` (may be NULL) with `code` and a printf-style message; returns `code`,
 * so callers can write `return sbx_fail(e, SBX_EINVAL, "...")`. */
sbx_code sbx_fail(sbx_err *e, sbx_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill `e` for a failed system call: the message is the printf-style text, then ": " and
 * strerror(err), then what helps. The code follows the cause: ENOSPC/EDQUOT are
 * SBX_ENOSPACE (free space under DATA_DIR); EMFILE/ENFILE (out of file descriptors) and
 * ENOMEM/EAGAIN (out of memory or processes) are SBX_EUNAVAIL with retry_after 1, a shortage
 * that passes; anything else is SBX_EINTERNAL. Returns the code. */
sbx_code sbx_fail_errno(sbx_err *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The errno whose strerror() text `msg` contains among those sbx_fail_errno treats apart
 * (for a failure a child reported as text), or 0. */
int sbx_errno_in(const char *msg);

/* HTTP status for a code (200 for SBX_OK). */
int sbx_code_status(sbx_code code);

/* Wire name for a code, e.g. "invalid_request". */
const char *sbx_code_name(sbx_code code);

#endif
