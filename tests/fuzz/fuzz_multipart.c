/* fuzz_multipart.c -- the upload parser (src/http/multipart.c) over any body. The first line of
 * the input is the Content-Type header (read by mp_boundary), the rest is the body. Checks what
 * multipart.h promises: SBX_OK, SBX_EINVAL, SBX_ETOOLARGE or (for the header) SBX_EMEDIATYPE; a
 * boundary of 1..MP_BOUNDARY_MAX bytes; on SBX_OK at most the parts asked for, each a slice of
 * the body that is followed by CRLF "--" boundary, with a name, lengths within the fields. */
#include "fuzz.h"
#include "http/multipart.h"

#define MAX_PARTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = fuzz_cstr(data, size);
    char *nl = memchr(in, '\n', size);
    const char *ctype = "multipart/form-data; boundary=XyZ", *body = in;
    size_t blen = size;
    if (nl) {
        *nl = '\0';
        ctype = in;
        body = nl + 1;
        blen = size - (size_t)(body - in);
    }
    sbx_err e;
    char b[MP_BOUNDARY_MAX + 1];
    sbx_code rc = mp_boundary(ctype, b, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL || rc == SBX_EMEDIATYPE);
    if (rc != SBX_OK)
        strcpy(b, "XyZ");
    size_t bl = strlen(b);
    FUZZ_ASSERT(bl >= 1 && bl <= MP_BOUNDARY_MAX);
    static mp_part parts[MAX_PARTS];
    size_t n = 12345;
    rc = mp_parse(body, blen, b, parts, MAX_PARTS, &n, &e);
    FUZZ_ASSERT(rc == SBX_OK || rc == SBX_EINVAL || rc == SBX_ETOOLARGE);
    if (rc != SBX_OK) {
        FUZZ_ASSERT(n == 12345 && strnlen(e.msg, sizeof e.msg) < sizeof e.msg);
    } else {
        FUZZ_ASSERT(n <= MAX_PARTS);
        for (size_t i = 0; i < n; i++) {
            const mp_part *p = &parts[i];
            FUZZ_ASSERT(p->data >= body && p->data + p->len <= body + blen);
            FUZZ_ASSERT((size_t)(body + blen - (p->data + p->len)) >= bl + 4);
            FUZZ_ASSERT(!memcmp(p->data + p->len, "\r\n--", 4));
            FUZZ_ASSERT(!memcmp(p->data + p->len + 4, b, bl));
            FUZZ_ASSERT(p->name_len < MP_NAME_MAX && p->name[p->name_len] == '\0');
            FUZZ_ASSERT(p->filename_len < MP_NAME_MAX && p->filename[p->filename_len] == '\0');
            FUZZ_ASSERT(p->has_filename || p->filename_len == 0);
            FUZZ_ASSERT(strnlen(p->content_type, sizeof p->content_type) < sizeof p->content_type);
        }
    }
    free(in);
    return 0;
}
