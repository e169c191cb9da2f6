/* test_utf8.c -- UTF-8 validation, U+FFFD repair by maximal subparts, and the held-back tail
 * of a chunked stream. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* repair(s) == want, with `n` replacements */
static int repaired(const char *s, size_t len, const char *want, size_t n) {
    size_t out_len = 0, replaced = 99;
    char *out = utf8_repair(s, len, &out_len, &replaced);
    int ok = out && out_len == strlen(want) && !memcmp(out, want, out_len) && replaced == n &&
             out[out_len] == '\0';
    if (!ok)
        fprintf(stderr, "repair gave %zu bytes, %zu replaced\n", out_len, replaced);
    free(out);
    return ok;
}

#define S(lit) lit, sizeof lit - 1

int main(void) {
    /* well-formed: ASCII, 2, 3 and 4 byte forms, the edges of the ranges */
    CHECK(utf8_invalid_at(S("")) == 0);
    CHECK(utf8_invalid_at(S("plain ascii\n")) == 12);
    CHECK(utf8_invalid_at(S("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80")) == 14);
    CHECK(utf8_invalid_at(S("\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80")) == 13);
    CHECK(utf8_invalid_at(S("\xF0\x90\x80\x80\xF4\x8F\xBF\xBF")) == 8);
    CHECK(utf8_invalid_at(S("a\0b")) == 3); /* NUL is a character like any other */

    /* ill-formed: where it starts */
    CHECK(utf8_invalid_at(S("ok\xFF\xFE\n")) == 2);
    CHECK(utf8_invalid_at(S("\xC0\xAF")) == 0);         /* overlong '/' */
    CHECK(utf8_invalid_at(S("x\xE0\x80\xAF")) == 1);    /* overlong 3-byte */
    CHECK(utf8_invalid_at(S("xy\xED\xA0\x80")) == 2);   /* encoded surrogate U+D800 */
    CHECK(utf8_invalid_at(S("\xF4\x90\x80\x80")) == 0); /* above U+10FFFF */
    CHECK(utf8_invalid_at(S("\xF5\x80\x80\x80")) == 0);
    CHECK(utf8_invalid_at(S("abc\x80")) == 3);     /* lone continuation byte */
    CHECK(utf8_invalid_at(S("abc\xE2\x82")) == 3); /* cut short by the end */

    /* repair: one U+FFFD per maximal subpart */
    CHECK(repaired(S("ok\xFF\xFE\n"), "ok" FFFD FFFD "\n", 2));
    CHECK(repaired(S("caf\xC3\xA9"), "caf\xC3\xA9", 0));
    CHECK(repaired(S("\xE2\x82z"), FFFD "z", 1));          /* a cut 3-byte form is one */
    CHECK(repaired(S("\xF0\x9F\x98"), FFFD, 1));           /* cut by the end: one */
    CHECK(repaired(S("\xC0\xAF"), FFFD FFFD, 2));          /* C0 never starts; AF alone */
    CHECK(repaired(S("\xED\xA0\x80"), FFFD FFFD FFFD, 3)); /* ED A0: A0 is out of range */
    CHECK(repaired(S("\xF4\x90\x80\x80"), FFFD FFFD FFFD FFFD, 4));
    CHECK(repaired(S("a\x80\x80"
                     "b"),
                   "a" FFFD FFFD "b", 2));
    CHECK(repaired(S(""), "", 0));
    /* the repaired text is always well-formed */
    const char junk[] = "\xFF\xC3\xE2\x82\xF0\x9F\x98\xED\xBF\xBF\xC3\xA9\x80";
    char *fixed = utf8_repair(junk, sizeof junk - 1, NULL, NULL);
    CHECK(fixed && utf8_invalid_at(fixed, strlen(fixed)) == strlen(fixed));
    free(fixed);

    /* the incomplete tail a stream holds back */
    CHECK(utf8_incomplete_tail(S("abc")) == 0);
    CHECK(utf8_incomplete_tail(S("ab\xC3")) == 1);
    CHECK(utf8_incomplete_tail(S("ab\xE2\x82")) == 2);
    CHECK(utf8_incomplete_tail(S("a\xF0\x9F\x98")) == 3);
    CHECK(utf8_incomplete_tail(S("\xF0\x9F\x98\x80")) == 0); /* complete */
    CHECK(utf8_incomplete_tail(S("ab\xC3\xA9")) == 0);
    CHECK(utf8_incomplete_tail(S("ab\xFF")) == 0);     /* never completes: no reason to wait */
    CHECK(utf8_incomplete_tail(S("ab\xE0\x80")) == 0); /* already ill-formed */
    CHECK(utf8_incomplete_tail(S("ab\xED\xA0")) == 0); /* would be a surrogate */
    CHECK(utf8_incomplete_tail(S("\x80\x80")) == 0);
    CHECK(utf8_incomplete_tail("", 0) == 0);
    /* a character split at every point comes out whole once joined */
    const char euro[] = "\xE2\x82\xAC";
    for (size_t cut = 1; cut < 3; cut++)
        CHECK(utf8_incomplete_tail(euro, cut) == cut);

    /* lone surrogate escapes in JSON text become U+FFFD; pairs and escaped backslashes stay */
    {
        char a[] = "{\"r\":\"a\\ud800b\"}";
        CHECK(utf8_json_fix_surrogates(a, strlen(a)) == 1 && !strcmp(a, "{\"r\":\"a\\ufffdb\"}"));
        char b[] = "\"\\uD83D\\uDE00 \\udc00\"";
        CHECK(utf8_json_fix_surrogates(b, strlen(b)) == 1 &&
              !strcmp(b, "\"\\uD83D\\uDE00 \\ufffd\""));
        char c[] = "\"\\\\ud800 \\u0041\"";
        CHECK(utf8_json_fix_surrogates(c, strlen(c)) == 0 && !strcmp(c, "\"\\\\ud800 \\u0041\""));
        char d[] = "\"\\ud800\\u0041\\ud8";
        CHECK(utf8_json_fix_surrogates(d, strlen(d)) == 1 && !strncmp(d, "\"\\ufffd\\u0041", 13));
    }
    return CHECK_DONE();
}
