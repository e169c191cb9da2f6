/* err.c -- code → HTTP status and wire name; the one place that mapping lives. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

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
