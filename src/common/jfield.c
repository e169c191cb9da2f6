/* jfield.c -- typed JSON field readers (see jfield.h). */
#include "jfield.h"

#include <math.h>
#include <string.h>

#include "utf8.h"

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    return "an object";
}

static const cJSON *get(const cJSON *obj, const char *name, bool required, sbx_err *e,
                        sbx_code *rc) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    *rc = SBX_OK;
    if ((!v || cJSON_IsNull(v)) && required)
        *rc = sbx_fail(e, SBX_EINVAL, "field '%s' is required", name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

sbx_code jf_string(const cJSON *obj, const char *name, bool required, const char **out,
                   sbx_err *e) {
    sbx_code rc;
    const cJSON *v = get(obj, name, required, e, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsString(v))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be a string, not %s", name, type_name(v));
    *out = v->valuestring;
    return SBX_OK;
}

sbx_code jf_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max,
                int64_t *out, sbx_err *e) {
    sbx_code rc;
    const cJSON *v = get(obj, name, required, e, &rc);
    if (!v)
        return rc;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || d != floor(d))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be an integer from %lld to %lld, not %s",
                        name, (long long)min, (long long)max, type_name(v));
    /* (double)INT64_MAX rounds up to 2^63, which does not fit: beyond +-2^63 is out of range */
    if (d < (double)min || d > (double)max || d >= 0x1p63 || d < -0x1p63)
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be from %lld to %lld (got %.0f)", name,
                        (long long)min, (long long)max, d);
    *out = (int64_t)d;
    return SBX_OK;
}

sbx_code jf_number(const cJSON *obj, const char *name, bool required, double min, double max,
                   double *out, sbx_err *e) {
    sbx_code rc;
    const cJSON *v = get(obj, name, required, e, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsNumber(v))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be a number, not %s", name, type_name(v));
    if (v->valuedouble < min || v->valuedouble > max)
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be from %g to %g (got %g)", name, min, max,
                        v->valuedouble);
    *out = v->valuedouble;
    return SBX_OK;
}

sbx_code jf_bool(const cJSON *obj, const char *name, bool required, bool *out, sbx_err *e) {
    sbx_code rc;
    const cJSON *v = get(obj, name, required, e, &rc);
    if (!v)
        return rc;
    if (!cJSON_IsBool(v))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be true or false, not %s", name,
                        type_name(v));
    *out = cJSON_IsTrue(v);
    return SBX_OK;
}

static bool in_list(const char *list, const char *s) {
    size_t n = strlen(s);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n))
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

sbx_code jf_enum(const cJSON *obj, const char *name, bool required, const char *choices,
                 const char **out, sbx_err *e) {
    const char *s = NULL;
    sbx_code rc = jf_string(obj, name, required, &s, e);
    if (rc || !s)
        return rc;
    if (!in_list(choices, s))
        return sbx_fail(e, SBX_EINVAL, "field '%s' must be one of %s (got \"%.64s\")", name,
                        choices, s);
    *out = s;
    return SBX_OK;
}

sbx_code jf_only(const cJSON *obj, const char *known, sbx_err *e) {
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (c->string && !in_list(known, c->string))
            return sbx_fail(e, SBX_EINVAL, "unknown field '%.64s' (known: %s)", c->string, known);
    return SBX_OK;
}

void jf_where(const char *text, size_t off, int *line, int *col) {
    *line = 1, *col = 1;
    for (size_t i = 0; i < off; i++, (*col)++)
        if (text[i] == '\n')
            (*line)++, *col = 0;
}

/* The value of the \uXXXX escape at s[0..len) (s[0] is the backslash), or -1. */
static long escape_value(const char *s, size_t len) {
    if (len < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

sbx_code jf_check_text(const char *text, size_t len, sbx_err *e) {
    int line, col;
    size_t bad = utf8_invalid_at(text, len);
    if (bad < len) {
        jf_where(text, bad, &line, &col);
        return sbx_fail(e, SBX_EINVAL,
                        "the JSON body is not valid UTF-8 at line %d column %d (byte %zu): "
                        "send text encoded as UTF-8 (binary data as base64)",
                        line, col, bad);
    }
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') {
            in_string = !in_string;
            continue;
        }
        if (!in_string || text[i] != '\\')
            continue;
        long v = escape_value(text + i, len - i);
        if (v < 0xD800 || v > 0xDFFF) {
            i++; /* skip the escaped character (or the u of an ordinary escape) */
            continue;
        }
        long low = v <= 0xDBFF ? escape_value(text + i + 6, len - i - 6) : -1;
        if (low < 0xDC00 || low > 0xDFFF) {
            jf_where(text, i, &line, &col);
            return sbx_fail(e, SBX_EINVAL,
                            "the JSON body has a lone UTF-16 surrogate escape (\\u%04lX) at "
                            "line %d column %d (byte %zu): \\uD800-\\uDBFF must be followed "
                            "by \\uDC00-\\uDFFF, which never stands alone",
                            (unsigned long)v, line, col, i);
        }
        i += 11; /* the pair */
    }
    return SBX_OK;
}
