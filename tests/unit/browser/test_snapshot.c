/* test_snapshot.c -- the pure pieces of the agent reads (src/browser/snapshot.c): which strings
 * are refs, and where a snapshot or markdown text is cut for maxChars. */
#include <string.h>

#include "browser/snapshot.h"
#include "check.h"

static void test_ref_parse(void) {
    long k = -1;
    CHECK(br_ref_parse("e1", &k) && k == 0);
    CHECK(br_ref_parse("e12345", &k) && k == 0);
    CHECK(br_ref_parse("f2e7", &k) && k == 2);
    CHECK(br_ref_parse("f10e1", &k) && k == 10);
    k = -1;
    const char *bad[] = {"",    "e",  "e0",  "e01", "E1",  "e1 ",    " e1",         "f0e1",
                         "fe1", "f1", "f1e", "x1",  "e1x", "f1f1e1", "e1234567890", "e-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!br_ref_parse(bad[i], &k));
    CHECK(k == -1); /* a failed parse leaves the out-param alone */
    CHECK(!br_ref_parse(NULL, &k));
}

static void test_text_cut(void) {
    const char *t = "- a\n- bb\n- ccc\n";
    size_t n = strlen(t);
    CHECK(br_text_cut(t, n, 100) == n);
    CHECK(br_text_cut(t, n, n) == n);
    CHECK(br_text_cut(t, n, n - 1) == 9); /* whole lines only: "- a\n- bb\n" */
    CHECK(br_text_cut(t, n, 9) == 9);
    CHECK(br_text_cut(t, n, 8) == 4);
    CHECK(br_text_cut(t, n, 2) == 2); /* a first line longer than the cap: cut inside it */
    CHECK(br_text_cut(t, n, 0) == 0);
    /* characters, not bytes: "é" is two bytes, one character */
    const char *u = "\xc3\xa9\xc3\xa9\n\xc3\xa9\n";
    size_t un = strlen(u);
    CHECK(br_text_cut(u, un, 5) == un);
    CHECK(br_text_cut(u, un, 4) == 5);
    CHECK(br_text_cut(u, un, 1) == 2); /* never inside a character */
    CHECK(br_text_cut("abc", 3, 3) == 3);
}

int main(void) {
    test_ref_parse();
    test_text_cut();
    return CHECK_DONE();
}
