/* check.h -- the unit tests' only framework: CHECK records a failure and goes on;
 * CHECK_DONE prints the plain "N passed, M failed" line and gives main()'s exit code;
 * CHECK_SKIP(why) ends a test that cannot run here with CHECK_SKIP_CODE, which CMake
 * registers as the tests' SKIP_RETURN_CODE: ctest shows it as skipped, never as passed. */
#ifndef SBX_CHECK_H
#define SBX_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_SKIP_CODE 77 /* the automake convention; see SKIP_RETURN_CODE in CMakeLists.txt */

/* Return from main(): nothing was checked, and ctest says so ("skipped: why" on stdout). */
#define CHECK_SKIP(why) (printf("skipped: %s\n", (why)), CHECK_SKIP_CODE)

#define CHECK_DONE()                                                                               \
    (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed ? 1 : 0)

#endif
