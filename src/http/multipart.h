/* multipart.h -- a bounded multipart/form-data parser (RFC 7578) for uploads.
 *
 * The whole body is already in memory (server.c caps it at MAX_BODY_BYTES), so the parser does
 * not copy data: each part points into the body. It reads what browsers, curl and Python's
 * urllib send: a preamble, parts separated by "--boundary" lines (CRLF line ends; transport
 * padding after a boundary is allowed), each with header lines (Content-Disposition with name
 * and filename parameters, quoted or not, Content-Type; other headers are skipped), and the
 * closing "--boundary--". Anything else is a 400 that says what was wrong where: no closing
 * boundary, a part without Content-Disposition or name, a header block over MP_HEADER_MAX
 * bytes, more than the caller's number of parts. Names and filenames may hold any byte but
 * NUL and CR/LF (name_len/filename_len say how long they are, a NUL inside is kept, so the
 * caller can refuse it).
 *
 * Leaf module: libc and err.h. Thread safety: pure functions.
 */
#ifndef SBX_MULTIPART_H
#define SBX_MULTIPART_H

#include <stddef.h>

#include "../common/err.h"

#define MP_BOUNDARY_MAX 70   /* RFC 2046 */
#define MP_HEADER_MAX   8192 /* bytes of one part's header block */
#define MP_NAME_MAX     1100 /* room for a name or filename (and its NUL) */

typedef struct mp_part {
    char name[MP_NAME_MAX]; /* the form field's name, e.g. "file" or "path" */
    size_t name_len;
    char filename[MP_NAME_MAX]; /* "" when the part has no filename parameter */
    size_t filename_len;
    int has_filename;
    char content_type[128]; /* "" when none was given */
    const char *data;       /* the part's bytes, borrowed from the body */
    size_t len;
} mp_part;

/* The boundary parameter of a Content-Type header value ("multipart/form-data; boundary=x",
 * quoted or not) into `out`. SBX_EMEDIATYPE when the type is not multipart/form-data,
 * SBX_EINVAL when the boundary is missing, empty or over MP_BOUNDARY_MAX. */
sbx_code mp_boundary(const char *content_type, char out[MP_BOUNDARY_MAX + 1], sbx_err *e);

/* Parse `len` bytes of `body` into at most `max_parts` parts (more: SBX_ETOOLARGE), filling
 * parts[0..*nparts). On failure (SBX_EINVAL, SBX_ETOOLARGE) *nparts is left untouched and the
 * content of `parts` is unspecified. */
sbx_code mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts,
                  size_t max_parts, size_t *nparts, sbx_err *e);

#endif
