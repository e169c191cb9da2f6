/* test_err.c -- every error code has a wire name and a status, and the OpenAPI document lists
 * every wire name (runs in tests/unit, so the fragment is two levels up). */
#include <errno.h>
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

    /* a failed system call: the code follows the cause, the message says it and what helps */
    sbx_err e;
    CHECK(sbx_fail_errno(&e, ENOSPC, "cannot store %s", "x") == SBX_ENOSPACE);
    CHECK(sbx_code_status(e.code) == 507 && e.retry_after == 0);
    CHECK(strncmp(e.msg, "cannot store x: ", 16) == 0);
    CHECK(strstr(e.msg, strerror(ENOSPC)) && strstr(e.msg, "DATA_DIR"));
    CHECK(sbx_fail_errno(&e, EMFILE, "pipes") == SBX_EUNAVAIL);
    CHECK(e.retry_after == 1 && strstr(e.msg, "RLIMIT_NOFILE"));
    CHECK(sbx_fail_errno(&e, EIO, "read") == SBX_EINTERNAL && e.retry_after == 0);
    char want[128];
    snprintf(want, sizeof want, "read: %s", strerror(EIO));
    CHECK(strcmp(e.msg, want) == 0); /* no hint for an error it does not know */
    CHECK(sbx_fail_errno(NULL, EAGAIN, "clone") == SBX_EUNAVAIL);
    /* a message longer than the record is cut, not overrun */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sbx_fail_errno(&e, ENOSPC, "%s", big);
    CHECK(strlen(e.msg) == sizeof e.msg - 1);
    /* a child's failure reported as text */
    char text[128];
    snprintf(text, sizeof text, "stdio: %s", strerror(EMFILE));
    CHECK(sbx_errno_in(text) == EMFILE);
    CHECK(sbx_errno_in("chdir work dir: Permission denied") == 0);
    CHECK(sbx_errno_in(NULL) == 0);
    free(core);
    return CHECK_DONE();
}
