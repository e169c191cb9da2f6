/* test_multipart.c -- multipart/form-data as curl, browsers and urllib send it: several file
 * parts and a path field, quoted and bare parameters, binary data holding CRLF and near-boundary
 * bytes, a preamble and an epilogue; and each malformed body refused with a 400 that says why. */
#include <string.h>

#include "check.h"
#include "http/multipart.h"

static sbx_code parse(const char *body, size_t len, mp_part *parts, size_t max, size_t *n) {
    sbx_err e;
    return mp_parse(body, len, "XyZ", parts, max, n, &e);
}

#define S(lit) lit, sizeof(lit) - 1

int main(void) {
    char b[MP_BOUNDARY_MAX + 1];
    sbx_err e;
    CHECK(mp_boundary("multipart/form-data; boundary=abc123", b, &e) == SBX_OK &&
          !strcmp(b, "abc123"));
    CHECK(mp_boundary("Multipart/Form-Data;charset=utf-8; boundary=\"a b;c\"", b, &e) == SBX_OK &&
          !strcmp(b, "a b;c"));
    CHECK(mp_boundary("application/json", b, &e) == SBX_EMEDIATYPE);
    CHECK(mp_boundary("multipart/form-datax; boundary=a", b, &e) == SBX_EMEDIATYPE);
    CHECK(mp_boundary(NULL, b, &e) == SBX_EMEDIATYPE);
    CHECK(mp_boundary("multipart/form-data", b, &e) == SBX_EINVAL && strstr(e.msg, "boundary"));
    CHECK(mp_boundary("multipart/form-data; boundary=", b, &e) == SBX_EINVAL);
    char longb[200] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'q', 71);
    CHECK(mp_boundary(longb, b, &e) == SBX_EINVAL);

    mp_part parts[4];
    size_t n = 99;
    const char ok[] =
        "preamble\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"path\"\r\n\r\n"
        "sub/dir\r\n"
        "--XyZ  \r\n"
        "content-disposition: form-data; name=\"file\"; filename=\"a \\\"q\\\".txt\"\r\n"
        "Content-Type: text/plain\r\n"
        "X-Other: skipped\r\n\r\n"
        "line1\r\n--XyY\r\n-- not a boundary\r\n\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; filename=bin.dat; name=file\r\n\r\n"
        "\0\1\2\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n"
        "\r\n"
        "--XyZ--\r\nepilogue --XyZ garbage";
    CHECK(parse(S(ok), parts, 4, &n) == SBX_OK && n == 4);
    CHECK(!strcmp(parts[0].name, "path") && !parts[0].has_filename && parts[0].len == 7 &&
          !memcmp(parts[0].data, "sub/dir", 7));
    CHECK(!strcmp(parts[1].name, "file") && parts[1].has_filename &&
          !strcmp(parts[1].filename, "a \"q\".txt") &&
          !strcmp(parts[1].content_type, "text/plain"));
    CHECK(parts[1].len == strlen("line1\r\n--XyY\r\n-- not a boundary\r\n") &&
          !memcmp(parts[1].data, "line1\r\n--XyY", 12));
    CHECK(!strcmp(parts[2].filename, "bin.dat") && !strcmp(parts[2].name, "file") &&
          parts[2].len == 3 && parts[2].data[0] == 0 && parts[2].data[2] == 2);
    CHECK(parts[3].has_filename && parts[3].filename_len == 0 && parts[3].len == 0);

    /* too many parts for the caller */
    n = 99;
    CHECK(parse(S(ok), parts, 3, &n) == SBX_ETOOLARGE && n == 99);
    /* the body starts with the boundary (no preamble), nothing after the closing one */
    const char bare[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--";
    CHECK(parse(S(bare), parts, 4, &n) == SBX_OK && n == 1 && parts[0].len == 1);
    /* a NUL inside a filename is kept, with its length, for the caller to refuse */
    const char nul[] =
        "--XyZ\r\nContent-Disposition: form-data; name=file; filename=\"a\0/etc\"\r\n"
        "\r\nv\r\n--XyZ--";
    CHECK(parse(S(nul), parts, 4, &n) == SBX_OK && parts[0].filename_len == 6);
    /* no parts at all */
    CHECK(parse(S("--XyZ--\r\n"), parts, 4, &n) == SBX_OK && n == 0);

    /* refusals */
    const char *bad[] = {
        "",
        "no boundary here",
        "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nnever closed",
        "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ",
        "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; filename=a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nno colon\r\n\r\nv\r\n--XyZ--",
        "--XyZ junk\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 99;
        e.msg[0] = '\0';
        sbx_code rc = mp_parse(bad[i], strlen(bad[i]), "XyZ", parts, 4, &n, &e);
        CHECK(rc == SBX_EINVAL && n == 99 && e.msg[0]);
        if (rc != SBX_EINVAL)
            fprintf(stderr, "bad[%zu] was accepted\n", i);
    }
    /* a header block past MP_HEADER_MAX */
    static char huge[MP_HEADER_MAX + 200];
    size_t o = (size_t)snprintf(huge, sizeof huge,
                                "--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: ");
    memset(huge + o, 'h', MP_HEADER_MAX);
    o += MP_HEADER_MAX;
    memcpy(huge + o, "\r\n\r\nv\r\n--XyZ--", 14);
    CHECK(parse(huge, o + 14, parts, 4, &n) == SBX_EINVAL);
    /* a name longer than MP_NAME_MAX */
    static char longname[MP_NAME_MAX + 200];
    o = (size_t)snprintf(longname, sizeof longname,
                         "--XyZ\r\nContent-Disposition: form-data; name=\"");
    memset(longname + o, 'n', MP_NAME_MAX);
    o += MP_NAME_MAX;
    memcpy(longname + o, "\"\r\n\r\nv\r\n--XyZ--", 15);
    CHECK(parse(longname, o + 15, parts, 4, &n) == SBX_EINVAL);
    return CHECK_DONE();
}
