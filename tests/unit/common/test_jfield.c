/* test_jfield.c -- typed field readers: values, defaults, and messages naming the field. */
#include <string.h>

#include "check.h"
#include "common/jfield.h"

int main(void) {
    cJSON *o = cJSON_Parse("{\"code\":\"print(1)\",\"timeoutMs\":500,\"frac\":1.5,\"big\":1e9,"
                           "\"flag\":true,\"mode\":\"mobile\",\"n\":null,\"s\":5}");
    sbx_err e;
    const char *s = NULL;
    int64_t i = 42;
    bool b = false;
    CHECK(jf_string(o, "code", true, &s, &e) == SBX_OK && !strcmp(s, "print(1)"));
    CHECK(jf_string(o, "s", true, &s, &e) == SBX_EINVAL && strstr(e.msg, "'s'") &&
          strstr(e.msg, "a number"));
    CHECK(jf_string(o, "missing", true, &s, &e) == SBX_EINVAL && strstr(e.msg, "'missing'"));
    s = "keep";
    CHECK(jf_string(o, "missing", false, &s, &e) == SBX_OK && !strcmp(s, "keep"));
    CHECK(jf_string(o, "n", false, &s, &e) == SBX_OK && !strcmp(s, "keep"));
    CHECK(jf_int(o, "timeoutMs", false, 1, 120000, &i, &e) == SBX_OK && i == 500);
    CHECK(jf_int(o, "frac", false, 1, 120000, &i, &e) == SBX_EINVAL && strstr(e.msg, "'frac'"));
    CHECK(jf_int(o, "big", false, 1, 120000, &i, &e) == SBX_EINVAL && strstr(e.msg, "120000"));
    i = 7;
    CHECK(jf_int(o, "absent", false, 1, 10, &i, &e) == SBX_OK && i == 7);
    CHECK(jf_bool(o, "flag", false, &b, &e) == SBX_OK && b);
    CHECK(jf_bool(o, "code", false, &b, &e) == SBX_EINVAL);
    CHECK(jf_enum(o, "mode", false, "desktop|mobile", &s, &e) == SBX_OK && !strcmp(s, "mobile"));
    CHECK(jf_enum(o, "code", false, "desktop|mobile", &s, &e) == SBX_EINVAL &&
          strstr(e.msg, "desktop|mobile"));
    CHECK(jf_only(o, "code|timeoutMs", &e) == SBX_EINVAL && strstr(e.msg, "frac"));
    CHECK(jf_only(o, "code|timeoutMs|frac|big|flag|mode|n|s", &e) == SBX_OK);
    cJSON_Delete(o);

    /* the text of a body, before parsing: UTF-8 and surrogate escapes, with where */
    int line, col;
    jf_where("ab\ncd\nef", 7, &line, &col);
    CHECK(line == 3 && col == 2);
    jf_where("ab", 0, &line, &col);
    CHECK(line == 1 && col == 1);
#define TXT(lit) lit, sizeof lit - 1
    CHECK(jf_check_text(TXT("{\"code\": \"caf\xC3\xA9 \\u00e9 \\ud83d\\ude00\"}"), &e) == SBX_OK);
    CHECK(jf_check_text(TXT("{\"a\": \"\\\\ud800\"}"), &e) == SBX_OK); /* an escaped backslash */
    CHECK(jf_check_text(TXT("{\"code\": \"\xFF\xFE\"}"), &e) == SBX_EINVAL &&
          strstr(e.msg, "UTF-8") && strstr(e.msg, "line 1 column 11 (byte 10)"));
    CHECK(jf_check_text(TXT("{\n\"c\": \"\xED\xA0\x80\"}"), &e) == SBX_EINVAL &&
          strstr(e.msg, "line 2 column 7 (byte 8)"));
    CHECK(jf_check_text(TXT("{\"c\": \"x\\ud800\"}"), &e) == SBX_EINVAL &&
          strstr(e.msg, "surrogate") && strstr(e.msg, "\\uD800") && strstr(e.msg, "byte 8"));
    CHECK(jf_check_text(TXT("{\"c\": \"\\uDC00x\"}"), &e) == SBX_EINVAL &&
          strstr(e.msg, "\\uDC00") && strstr(e.msg, "column 8"));
    CHECK(jf_check_text(TXT("{\"c\": \"\\ud800\\u0041\"}"), &e) == SBX_EINVAL);
    CHECK(jf_check_text(TXT("{\"c\": \"\\ud800"), &e) == SBX_EINVAL); /* cut short */
    CHECK(jf_check_text(TXT("{\"c\": \"\\ud8"), &e) == SBX_OK);       /* malformed: the parser's */
    CHECK(jf_check_text(TXT("{\"\\ud800\": 1}"), &e) == SBX_EINVAL);  /* in a key too */
    /* 2^63 passes "d > (double)INT64_MAX" (which is 2^63 too) but does not fit an int64_t:
     * refused, not cast (found by tests/fuzz/fuzz_jfield) */
    o = cJSON_Parse("{\"n\":9223372036854775807,\"m\":-9223372036854775808}");
    i = 7;
    CHECK(jf_int(o, "n", true, INT64_MIN, INT64_MAX, &i, &e) == SBX_EINVAL && i == 7);
    CHECK(jf_int(o, "m", true, INT64_MIN, INT64_MAX, &i, &e) == SBX_OK && i == INT64_MIN);
    cJSON_Delete(o);
    return CHECK_DONE();
}
