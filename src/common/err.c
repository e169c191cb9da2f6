/* err.c -- code → HTTP status and wire name; the one place that mapping lives. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *name;
} code_table[SBX_CODE_COUNT] = {
    [SBX_OK] = {200, "ok"},
    [SBX_EINVAL] = {400, "invalid_request"},
    [SBX_EUNAUTH] = {401, "unauthorized"},
    [SBX_EFORBIDDEN] = {403, "forbidden"},
    [SBX_ENOTFOUND] = {404, "not_found"},
    [SBX_EMETHOD] = {405, "method_not_allowed"},
    [SBX_EREQTIMEOUT] = {408, "timeout"},
    [SBX_ECONFLICT] = {409, "conflict"},
    [SBX_ETOOLARGE] = {413, "payload_too_large"},
    [SBX_EMEDIATYPE] = {415, "unsupported_media_type"},
    [SBX_ENOELEMENT] = {422, "element_not_found"},
    [SBX_ETOOMANY] = {429, "too_many_sessions"},
    [SBX_EBUSY] = {429, "busy"},
    [SBX_EINTERNAL] = {500, "internal"},
    [SBX_ECRASHED] = {502, "browser_crashed"},
    [SBX_EUNAVAIL] = {503, "unavailable"},
    [SBX_ETIMEOUT] = {504, "timeout"},
    [SBX_ENETWORK] = {502, "navigation_failed"},
    [SBX_ETABCRASHED] = {502, "tab_crashed"},
    [SBX_ENOSPACE] = {507, "insufficient_storage"},
    [SBX_EINUSE] = {409, "busy"},
    [SBX_ERESTARTED] = {409, "kernel_restarted"},
    [SBX_EWRONGNODE] = {421, "misdirected_request"},
    [SBX_EDRAINING] = {503, "draining"},
};

/* The causes sbx_fail_errno treats apart, with their code and what helps. */
static const struct {
    int err;
    sbx_code code;
    const char *hint;
} shortage[] = {
    {ENOSPC, SBX_ENOSPACE, "DATA_DIR is full: free space there"},
    {EDQUOT, SBX_ENOSPACE, "DATA_DIR is over its quota: free space there"},
    {EMFILE, SBX_EUNAVAIL,
     "the server is out of file descriptors (RLIMIT_NOFILE): retry shortly, or raise its limit"},
    {ENFILE, SBX_EUNAVAIL, "the system is out of file descriptors: retry shortly"},
    {ENOMEM, SBX_EUNAVAIL, "the server is out of memory: retry shortly"},
    {EAGAIN, SBX_EUNAVAIL, "the server is out of processes or threads: retry shortly"},
};

sbx_code sbx_fail(sbx_err *e, sbx_code code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        e->code = code;
        e->retry_after = 0;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

sbx_code sbx_fail_errno(sbx_err *e, int err, const char *fmt, ...) {
    sbx_code code = SBX_EINTERNAL;
    const char *hint = NULL;
    for (size_t i = 0; i < sizeof shortage / sizeof *shortage; i++)
        if (shortage[i].err == err) {
            code = shortage[i].code;
            hint = shortage[i].hint;
        }
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        size_t at = n < 0 ? 0 : (size_t)n < sizeof e->msg ? (size_t)n : sizeof e->msg - 1;
        snprintf(e->msg + at, sizeof e->msg - at, ": %s%s%s", strerror(err), hint ? "; " : "",
                 hint ? hint : "");
        e->code = code;
        e->retry_after = code == SBX_EUNAVAIL ? 1 : 0;
    }
    return code;
}

int sbx_errno_in(const char *msg) {
    for (size_t i = 0; msg && i < sizeof shortage / sizeof *shortage; i++)
        if (strstr(msg, strerror(shortage[i].err)))
            return shortage[i].err;
    return 0;
}

int sbx_code_status(sbx_code code) {
    if ((unsigned)code >= SBX_CODE_COUNT)
        return 500;
    return code_table[code].status;
}

const char *sbx_code_name(sbx_code code) {
    if ((unsigned)code >= SBX_CODE_COUNT)
        return "internal";
    return code_table[code].name;
}
