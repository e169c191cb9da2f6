/* test_err.c -- every error code has a wire name and a status, and the OpenAPI document lists
 * every wire name (runs in tests/unit, so the fragment is two levels up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/util.h"

int main(void) {
    char *core = sbx_read_file("../../src/http/openapi/00-core.json", 1 << 20, NULL);
    CHECK(core != NULL);
    CHECK(sbx_code_status(SBX_OK) == 200);
    for (int c = SBX_OK + 1; c < SBX_CODE_COUNT; c++) {
        const char *name = sbx_code_name((sbx_code)c);
        int status = sbx_code_status((sbx_code)c);
        CHECK(name != NULL && *name);
        CHECK(status >= 400 && status <= 599);
        if (!name || !core)
            continue;
        CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz_") == strlen(name));
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", name);
        if (!strstr(core, quoted))
            fprintf(stderr, "error code %s is missing from 00-core.json\n", name);
        CHECK(strstr(core, quoted) != NULL);
    }
    CHECK(strcmp(sbx_code_name(SBX_ETABCRASHED), "tab_crashed") == 0);
    CHECK(sbx_code_status(SBX_ETABCRASHED) == 502);
    CHECK(strcmp(sbx_code_name(SBX_CODE_COUNT), "internal") == 0);
    free(core);
    return CHECK_DONE();
}
