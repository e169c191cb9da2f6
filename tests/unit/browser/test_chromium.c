/* test_chromium.c -- the short TMPDIR rule for deep session directories
 * (src/browser/chromium.c: Chromium's singleton socket path must stay short). */
#include <string.h>

#include "browser/chromium.h"
#include "check.h"

int main(void) {
    char out[4200];
    chromium_tmpdir("/d/browser/abc", out, sizeof out);
    CHECK(strcmp(out, "/d/browser/abc/tmp") == 0);
    chromium_tmpdir("/tmp/sandboxd-test-abcdefgh/data/browser/0123456789abcdef0123456789abcdef",
                    out, sizeof out);
    CHECK(strcmp(out, "/tmp/sbxbr-0123456789abcdef0123456789abcdef") == 0);
    return CHECK_DONE();
}
