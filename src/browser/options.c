/* options.c -- checking the options of a new browser session (see options.h). */
#define _GNU_SOURCE
#include "options.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/jfield.h"

/* BCP 47 as Chromium takes it: 2-3 letters, then subtags of 1-8 letters or digits. */
static bool locale_ok(const char *s) {
    size_t len = strlen(s), i = 0;
    if (len < 2 || len > 35)
        return false;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    if (i < 2 || i > 3)
        return false;
    while (i < len) {
        if (s[i] != '-' && s[i] != '_')
            return false;
        size_t start = ++i;
        while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                           (s[i] >= '0' && s[i] <= '9')))
            i++;
        if (i - start < 1 || i - start > 8)
            return false;
    }
    return true;
}

/* An IANA zone name that the system's zone database has ("UTC", "Europe/Berlin"). */
static bool timezone_ok(const char *s) {
    size_t len = strlen(s);
    if (len == 0 || len > 60 || s[0] == '/' || strstr(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("/_+-", *p)))
            return false;
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", s);
    if (stat("/usr/share/zoneinfo", &st) != 0)
        return true; /* no database to check against: Chromium's own ICU decides */
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool printable(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

sbx_code br_session_opts_parse(const cJSON *body, br_session_opts *o, sbx_err *e) {
    memset(o, 0, sizeof *o);
    const char *device = "desktop", *ua = NULL, *locale = NULL, *tz = NULL;
    if (jf_enum(body, "device", false, "desktop|mobile", &device, e) ||
        jf_string(body, "userAgent", false, &ua, e) ||
        jf_string(body, "locale", false, &locale, e) ||
        jf_string(body, "timezoneId", false, &tz, e))
        return SBX_EINVAL;
    o->em.mobile = strcmp(device, "mobile") == 0;
    const cJSON *vp = cJSON_GetObjectItemCaseSensitive(body, "viewport");
    if (vp && !cJSON_IsNull(vp)) {
        int64_t w = 0, h = 0;
        if (!cJSON_IsObject(vp))
            return sbx_fail(e, SBX_EINVAL, "viewport: must be an object {width, height}");
        if (jf_only(vp, "width|height", e) != SBX_OK)
            return sbx_fail(e, SBX_EINVAL, "viewport: only width and height may be given");
        if (jf_int(vp, "width", true, 100, 8192, &w, e) != SBX_OK)
            return sbx_fail(e, SBX_EINVAL, "viewport.width: required, an integer 100..8192");
        if (jf_int(vp, "height", true, 100, 8192, &h, e) != SBX_OK)
            return sbx_fail(e, SBX_EINVAL, "viewport.height: required, an integer 100..8192");
        o->em.width = (int)w;
        o->em.height = (int)h;
    }
    if (ua) {
        if (!*ua || strlen(ua) >= sizeof o->em.user_agent || !printable(ua))
            return sbx_fail(e, SBX_EINVAL, "userAgent: must be 1 to %zu printable characters",
                            sizeof o->em.user_agent - 1);
        snprintf(o->em.user_agent, sizeof o->em.user_agent, "%s", ua);
    }
    if (locale) {
        if (!locale_ok(locale))
            return sbx_fail(e, SBX_EINVAL,
                            "locale: must be a BCP 47 language tag such as en-US or de-DE");
        snprintf(o->em.locale, sizeof o->em.locale, "%s", locale);
    }
    if (tz) {
        if (!timezone_ok(tz))
            return sbx_fail(e, SBX_EINVAL,
                            "timezoneId: unknown time zone '%.64s' (IANA names such as "
                            "Europe/Berlin or UTC)",
                            tz);
        snprintf(o->em.timezone, sizeof o->em.timezone, "%s", tz);
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "state");
    if (st && !cJSON_IsNull(st)) {
        if (!cJSON_IsObject(st))
            return sbx_fail(e, SBX_EINVAL, "state: must be an object {cookies, origins}");
        o->state = st; /* its contents: br_state_check (state.h) */
    }
    return SBX_OK;
}
