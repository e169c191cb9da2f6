/* multipart.c -- multipart/form-data split into parts that point into the body (multipart.h):
 * find each boundary line with memmem, read the part's header block (bounded), take the bytes
 * up to the next CRLF + boundary. */
#define _GNU_SOURCE
#include "multipart.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_sp(char c) {
    return c == ' ' || c == '\t';
}

/* Case-insensitive: does [p, end) start with `word`? */
static bool starts_ci(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && strncasecmp(p, word, n) == 0;
}

/* The next "key=" of a header's parameter list [*pp, end): skips separators and spaces, sets
 * *key and *klen (trailing spaces trimmed) and leaves *pp at the value. False for a parameter
 * without '=' (*pp is then at the ';' after it, or at end). */
static bool next_param(const char **pp, const char *end, const char **key, size_t *klen) {
    const char *p = *pp;
    while (p < end && (is_sp(*p) || *p == ';'))
        p++;
    *key = p;
    while (p < end && *p != '=' && *p != ';')
        p++;
    if (p >= end || *p != '=') {
        *pp = p;
        return false;
    }
    size_t n = (size_t)(p - *key);
    while (n && is_sp((*key)[n - 1]))
        n--;
    *klen = n;
    p++;
    while (p < end && is_sp(*p))
        p++;
    *pp = p;
    return true;
}

/* Read a parameter value at *pp (quoted with backslash escapes, or a bare token up to ';') into
 * out (room `cap`); returns its length, or -1 when too long or the quote is not closed. */
static long read_value(const char **pp, const char *end, char *out, size_t cap) {
    const char *p = *pp;
    size_t n = 0;
    if (p < end && *p == '"') {
        p++;
        for (;;) {
            if (p >= end)
                return -1;
            char c = *p++;
            if (c == '"')
                break;
            if (c == '\\' && p < end)
                c = *p++;
            if (n + 1 >= cap)
                return -1;
            out[n++] = c;
        }
    } else {
        while (p < end && *p != ';' && !is_sp(*p)) {
            if (n + 1 >= cap)
                return -1;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return (long)n;
}

sbx_code mp_boundary(const char *content_type, char out[MP_BOUNDARY_MAX + 1], sbx_err *e) {
    const char *p = content_type ? content_type : "";
    const char *end = p + strlen(p);
    while (is_sp(*p))
        p++;
    if (!starts_ci(p, end, "multipart/form-data") || (p[19] && p[19] != ';' && !is_sp(p[19])))
        return sbx_fail(e, SBX_EMEDIATYPE,
                        "Content-Type must be multipart/form-data or application/json (got "
                        "'%.64s')",
                        content_type ? content_type : "");
    p += 19;
    while (p < end) {
        const char *key;
        size_t klen;
        if (!next_param(&p, end, &key, &klen))
            continue;
        char val[MP_BOUNDARY_MAX + 2];
        long n = read_value(&p, end, val, sizeof val);
        if (klen == 8 && strncasecmp(key, "boundary", 8) == 0) {
            if (n <= 0 || n > MP_BOUNDARY_MAX)
                return sbx_fail(e, SBX_EINVAL, "the multipart boundary must be 1 to %d characters",
                                MP_BOUNDARY_MAX);
            memcpy(out, val, (size_t)n + 1);
            return SBX_OK;
        }
        if (n < 0) /* an over-long other parameter: skip it */
            while (p < end && *p != ';')
                p++;
    }
    return sbx_fail(e, SBX_EINVAL,
                    "the multipart/form-data Content-Type has no boundary parameter");
}

/* Parse the Content-Disposition value [p, end) into the part. */
static sbx_code disposition(const char *p, const char *end, mp_part *part, size_t idx, bool *named,
                            sbx_err *e) {
    while (p < end && is_sp(*p))
        p++;
    if (!starts_ci(p, end, "form-data"))
        return sbx_fail(e, SBX_EINVAL, "multipart part %zu: Content-Disposition must be form-data",
                        idx + 1);
    p += 9;
    while (p < end) {
        const char *key;
        size_t klen;
        if (!next_param(&p, end, &key, &klen))
            continue;
        char *dst = NULL;
        size_t *dlen = NULL;
        if (klen == 4 && strncasecmp(key, "name", 4) == 0) {
            dst = part->name, dlen = &part->name_len;
            *named = true;
        } else if (klen == 8 && strncasecmp(key, "filename", 8) == 0) {
            dst = part->filename, dlen = &part->filename_len;
            part->has_filename = 1;
        }
        char skip[MP_NAME_MAX];
        long n = read_value(&p, end, dst ? dst : skip, MP_NAME_MAX);
        if (n < 0)
            return sbx_fail(e, SBX_EINVAL,
                            "multipart part %zu: a Content-Disposition parameter is longer than "
                            "%d bytes or its quote is not closed",
                            idx + 1, MP_NAME_MAX - 1);
        if (dlen)
            *dlen = (size_t)n;
    }
    return SBX_OK;
}

/* Parse the header block [p, end) (lines ending in CRLF, the last one's CRLF excluded). */
static sbx_code headers(const char *p, const char *end, mp_part *part, size_t idx, sbx_err *e) {
    bool named = false, disp = false;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon)
            return sbx_fail(e, SBX_EINVAL, "multipart part %zu: a header line has no ':'", idx + 1);
        const char *v = colon + 1;
        while (v < eol && is_sp(*v))
            v++;
        size_t klen = (size_t)(colon - p);
        if (klen == 19 && strncasecmp(p, "content-disposition", 19) == 0) {
            disp = true;
            if (disposition(v, eol, part, idx, &named, e) != SBX_OK)
                return e->code;
        } else if (klen == 12 && strncasecmp(p, "content-type", 12) == 0) {
            size_t n = (size_t)(eol - v);
            while (n && is_sp(v[n - 1]))
                n--;
            if (n >= sizeof part->content_type)
                n = sizeof part->content_type - 1;
            memcpy(part->content_type, v, n);
            part->content_type[n] = '\0';
        }
        p = eol + 2;
    }
    if (!disp || !named)
        return sbx_fail(e, SBX_EINVAL,
                        "multipart part %zu has no Content-Disposition: form-data; name=...",
                        idx + 1);
    return SBX_OK;
}

sbx_code mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts,
                  size_t max_parts, size_t *nparts, sbx_err *e) {
    char delim[MP_BOUNDARY_MAX + 5]; /* "\r\n--" boundary */
    size_t blen = boundary ? strlen(boundary) : 0;
    if (blen == 0 || blen > MP_BOUNDARY_MAX)
        return sbx_fail(e, SBX_EINVAL, "the multipart boundary must be 1 to %d characters",
                        MP_BOUNDARY_MAX);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;
    const char *end = body + len, *p;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        const char *f = memmem(body, len, delim, dlen);
        if (!f)
            return sbx_fail(e, SBX_EINVAL, "the multipart body has no boundary line '--%.70s'",
                            boundary);
        p = f + dlen;
    }
    size_t n = 0;
    for (;;) { /* p: just past a boundary */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing boundary; what follows is the epilogue */
        while (p < end && is_sp(*p))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return sbx_fail(e, SBX_EINVAL,
                            "multipart part %zu: the boundary line must end with CRLF", n + 1);
        p += 2;
        if (n >= max_parts)
            return sbx_fail(e, SBX_ETOOLARGE, "the multipart body has more than %zu parts",
                            max_parts);
        mp_part *part = &parts[n];
        memset(part, 0, sizeof *part);
        const char *hend, *data;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p, data = p + 2; /* no headers at all */
        } else {
            size_t room = (size_t)(end - p);
            const char *f = memmem(p, room < MP_HEADER_MAX ? room : MP_HEADER_MAX, "\r\n\r\n", 4);
            if (!f)
                return sbx_fail(e, SBX_EINVAL,
                                "multipart part %zu: its headers do not end with an empty line "
                                "within %d bytes",
                                n + 1, MP_HEADER_MAX);
            hend = f, data = f + 4;
        }
        if (headers(p, hend, part, n, e) != SBX_OK)
            return e->code;
        const char *de = memmem(data, (size_t)(end - data), delim, dlen);
        if (!de)
            return sbx_fail(e, SBX_EINVAL,
                            "multipart part %zu is not followed by a boundary line: the body "
                            "ends before its closing '--%.70s--'",
                            n + 1, boundary);
        part->data = data;
        part->len = (size_t)(de - data);
        n++;
        p = de + dlen;
    }
    *nparts = n;
    return SBX_OK;
}
