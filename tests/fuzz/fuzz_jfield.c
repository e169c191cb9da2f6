/* fuzz_jfield.c -- a request body as the server reads it: cJSON parses the bytes, then the
 * typed readers of src/common/jfield.c take the fields the API reads (and the first key of the
 * body, whatever it is). Checks jfield.h's promises: SBX_OK or SBX_EINVAL; on SBX_EINVAL a
 * message naming the field; on SBX_OK a value of the right type within the bounds asked for,
 * and an optional field that is absent leaves the default. */
#include <math.h>

#include "common/jfield.h"
#include "fuzz.h"

static const char *const names[] = {"code",   "timeoutMs", "url", "files",
                                    "stream", "mode",      "",    NULL};

static void read_field(const cJSON *o, const char *name) {
    sbx_err e;
    bool req = name[0] && (name[0] & 1);
    const char *s = "default";
    sbx_code rc = jf_string(o, name, req, &s, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    if (rc == SBX_OK)
        FUZZ_ASSERT(s != NULL);
    else
        FUZZ_ASSERT(strnlen(e.msg, sizeof e.msg) < sizeof e.msg && strstr(e.msg, "field"));

    int64_t i = -7;
    rc = jf_int(o, name, req, -5, 120000, &i, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    if (rc == SBX_OK)
        FUZZ_ASSERT(i == -7 || (i >= -5 && i <= 120000));

    /* the widest bounds the API takes */
    rc = jf_int(o, name, req, INT64_MIN, INT64_MAX, &i, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);

    double d = 0.5;
    rc = jf_number(o, name, req, 0.25, 1e6, &d, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    if (rc == SBX_OK)
        FUZZ_ASSERT(!isnan(d) && d >= 0.25 && d <= 1e6);

    bool b = false;
    rc = jf_bool(o, name, req, &b, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);

    s = NULL;
    rc = jf_enum(o, name, req, "desktop|mobile|a", &s, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    if (rc == SBX_OK && s)
        FUZZ_ASSERT(!strcmp(s, "desktop") || !strcmp(s, "mobile") || !strcmp(s, "a"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (!o)
        return 0;
    for (int i = 0; names[i]; i++)
        read_field(o, names[i]);
    if (cJSON_IsObject(o) && o->child && o->child->string)
        read_field(o, o->child->string);
    sbx_err e;
    sbx_code rc = jf_only(o, "code|timeoutMs|url|files", &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL);
    cJSON_Delete(o);
    return 0;
}
