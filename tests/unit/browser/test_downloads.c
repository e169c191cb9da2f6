/* test_downloads.c -- download names: one printable path segment that never starts with a
 * dot, whatever Chromium suggests (traversal, control characters, quotes, long UTF-8). */
#include <string.h>

#include "browser/downloads.h"
#include "check.h"

static int is(const char *in, const char *want) {
    char out[200];
    br_downloads_sanitize(in, out, sizeof out);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "sanitize(%s) = %s, want %s\n", in ? in : "(null)", out, want);
        return 0;
    }
    return 1;
}

int main(void) {
    CHECK(is("report.pdf", "report.pdf"));
    CHECK(is("../../.ssh/authorized_keys", "authorized_keys"));
    CHECK(is("..\\..\\win.ini", "win.ini"));
    CHECK(is("..", "download"));
    CHECK(is("", "download"));
    CHECK(is(NULL, "download"));
    CHECK(is(".bashrc", "_bashrc"));
    CHECK(is("a\nb\tc\"d*e:f<g>h?i|j", "a_b_c_d_e_f_g_h_i_j"));
    CHECK(is("trailing. . ", "trailing"));
    CHECK(is("dir/", "download"));
    CHECK(is("h\xc3\xa9llo.txt", "h\xc3\xa9llo.txt"));
    /* long names are cut at 120 bytes, never inside a character */
    char longname[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(longname, "\xc3\xa9"); /* 200 bytes of é */
    char out[200];
    br_downloads_sanitize(longname, out, sizeof out);
    CHECK(strlen(out) == 120 && (unsigned char)out[118] == 0xc3);
    br_downloads_sanitize("abcdefghijklmnopqrstuvwxyz", out, 16);
    CHECK(strcmp(out, "abcdefghijklmno") == 0);
    return CHECK_DONE();
}
