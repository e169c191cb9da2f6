/* jfield.c -- typed JSON field readers (see jfield.h). */
#include "jfield.h"

#include <math.h>
#include <string.h>

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
