/* test_err.c -- every error code has a wire name and a status, and the OpenAPI document lists
 * every wire name (runs in tests/unit, so the fragment is two levels up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf && fread(buf, 1, (1 << 16) - 1, f) == 0) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int main(void) {
    char *core = slurp("../../src/http/openapi/00-core.json");
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
