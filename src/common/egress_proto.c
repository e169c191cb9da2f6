/* egress_proto.c -- HTTP proxy heads and SOCKS5 messages for the egress gateway (see
 * egress_proto.h). */
#define _GNU_SOURCE
#include "egress_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int refuse(egress_http_req *r, int status, const char *why) {
    r->status = status;
    r->why = why;
    return -1;
}

/* Copy an authority "host[:port]" or "[v6][:port]" of length n into r; 0 or -1. */
static int parse_authority(const char *a, size_t n, uint16_t def_port, egress_http_req *r) {
    const char *host = a, *port = NULL;
    size_t hl;
    if (n && a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (!end)
            return -1;
        host = a + 1;
        hl = (size_t)(end - host);
        size_t rest = n - (size_t)(end + 1 - a);
        if (rest) {
            if (end[1] != ':')
                return -1;
            port = end + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        hl = colon ? (size_t)(colon - a) : n;
        if (colon)
            port = colon + 1;
    }
    if (hl == 0 || hl >= EGRESS_HOST_MAX)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || (a[0] == '[' && c == ':')))
            return -1;
        r->host[i] = (char)tolower(c);
    }
    r->host[hl] = 0;
    if (!port) {
        if (!def_port)
            return -1;
        r->port = def_port;
        return 0;
    }
    size_t pl = n - (size_t)(port - a);
    if (pl == 0 || pl > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (!isdigit((unsigned char)port[i]))
            return -1;
        v = v * 10 + (unsigned)(port[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    r->port = (uint16_t)v;
    return 0;
}

int egress_http_parse(const char *buf, size_t len, egress_http_req *r) {
    memset(r, 0, sizeof *r);
    size_t scan = len < EGRESS_HEAD_MAX ? len : EGRESS_HEAD_MAX;
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    if (!end)
        return len >= EGRESS_HEAD_MAX ? refuse(r, 431, "request head too large") : 0;
    r->head_len = (size_t)(end - buf) + 4;
    const char *eol = memmem(buf, r->head_len, "\r\n", 2);
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (!sp1 || sp1 == buf || sp1 - buf > 15)
        return refuse(r, 400, "malformed request line");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || sp2 == target || (size_t)(eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) ||
        (sp2[8] != '0' && sp2[8] != '1'))
        return refuse(r, 400, "malformed request line");
    for (const char *p = buf; p < sp1; p++)
        if (!isupper((unsigned char)*p))
            return refuse(r, 400, "malformed request line");
    /* the target: visible characters only (a bare LF in it would start a header at the origin) */
    for (const char *t = target; t < sp2; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t == 0x7f)
            return refuse(r, 400, "malformed request line");
    /* every header line: a token name, a colon, no NUL and no bare CR or LF */
    if (memchr(buf, 0, r->head_len))
        return refuse(r, 400, "NUL in the request head");
    for (const char *line = eol + 2; line < buf + r->head_len - 2;) {
        const char *le = memmem(line, (size_t)(buf + r->head_len - line), "\r\n", 2);
        size_t name = strspn(line, "!#$%&'*+-.^_`|~0123456789"
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if (!le || name == 0 || line + name >= le || line[name] != ':' ||
            memchr(line, '\r', (size_t)(le - line)) || memchr(line, '\n', (size_t)(le - line)))
            return refuse(r, 400, "malformed header line");
        line = le + 2;
    }
    size_t tl = (size_t)(sp2 - target);
    if (sp1 - buf == 7 && !strncmp(buf, "CONNECT", 7)) {
        r->connect = true;
        if (parse_authority(target, tl, 0, r) != 0)
            return refuse(r, 400, "CONNECT needs host:port");
        return 1;
    }
    if (tl < 8 || strncasecmp(target, "http://", 7) != 0)
        return refuse(r, 400, "only http:// absolute URIs and CONNECT are proxied");
    const char *auth = target + 7;
    size_t al = strcspn(auth, "/?# ");
    if (auth + al > sp2)
        al = (size_t)(sp2 - auth);
    if (memchr(auth, '@', al))
        return refuse(r, 400, "user info in the URI");
    if (parse_authority(auth, al, 80, r) != 0)
        return refuse(r, 400, "bad host in the URI");
    return 1;
}

/* Whether header line [l, l+n) is named `name` (case-insensitive, followed by ':'). */
static bool header_is(const char *l, size_t n, const char *name) {
    size_t k = strlen(name);
    return n > k && l[k] == ':' && !strncasecmp(l, name, k);
}

long egress_http_rewrite(const char *buf, const egress_http_req *r, char *out, size_t cap) {
    if (r->connect || r->head_len < 4)
        return -1;
    const char *eol = memmem(buf, r->head_len, "\r\n", 2);
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    const char *auth = target + 7;
    const char *path = auth + strcspn(auth, "/?# ");
    if (path > sp2)
        path = sp2;
    size_t o = 0;
#define PUT(p, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (o + n_ > cap)                                                                          \
            return -1;                                                                             \
        memcpy(out + o, (p), n_);                                                                  \
        o += n_;                                                                                   \
    } while (0)
    PUT(buf, (size_t)(sp1 - buf) + 1);
    if (path == sp2 || *path != '/')
        PUT("/", 1);
    PUT(path, (size_t)(eol - path) + 2); /* path, " HTTP/1.x", CRLF */
    const char *line = eol + 2, *stop = buf + r->head_len - 2;
    while (line < stop) {
        const char *le = memmem(line, (size_t)(stop + 2 - line), "\r\n", 2);
        if (!le)
            break;
        size_t n = (size_t)(le - line);
        if (strncasecmp(line, "proxy-", n < 6 ? n : 6) != 0 && !header_is(line, n, "connection") &&
            !header_is(line, n, "keep-alive"))
            PUT(line, n + 2);
        line = le + 2;
    }
    PUT("Connection: close\r\n\r\n", 21);
#undef PUT
    return (long)o;
}

int egress_socks_greeting(const unsigned char *b, size_t n, size_t *used) {
    if (n < 1)
        return 0;
    if (b[0] != 5)
        return -1;
    if (n < 2)
        return 0;
    size_t need = 2 + (size_t)b[1];
    if (b[1] == 0)
        return -1;
    if (n < need)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (b[i] == 0) {
            *used = need;
            return 1;
        }
    return -1;
}

int egress_socks_request(const unsigned char *b, size_t n, egress_socks_req *r, size_t *used) {
    memset(r, 0, sizeof *r);
    if (n < 4)
        return 0;
    if (b[0] != 5 || b[2] != 0) {
        r->reply = 1;
        return -1;
    }
    size_t alen, off = 4;
    switch (b[3]) {
    case 1:
        alen = 4;
        break;
    case 4:
        alen = 16;
        break;
    case 3:
        if (n < 5)
            return 0;
        alen = b[4];
        off = 5;
        break;
    default:
        r->reply = 8;
        return -1;
    }
    if (n < off + alen + 2)
        return 0;
    if (b[1] != 1) { /* only CONNECT */
        r->reply = 7;
        return -1;
    }
    if (b[3] == 3) {
        if (alen == 0 || memchr(b + off, 0, alen)) {
            r->reply = 8;
            return -1;
        }
        for (size_t i = 0; i < alen; i++)
            r->host[i] = (char)tolower(b[off + i]);
        r->host[alen] = 0;
        /* an address written as a name ("0::", "0:0::1") is that address, in the one form
         * the gateway's checks, logs and an upstream's request all use */
        unsigned char a[16];
        int af = inet_pton(AF_INET, r->host, a) == 1    ? AF_INET
                 : inet_pton(AF_INET6, r->host, a) == 1 ? AF_INET6
                                                        : 0;
        if (af) {
            inet_ntop(af, a, r->host, sizeof r->host);
            r->is_ip = true;
        }
    } else {
        inet_ntop(b[3] == 1 ? AF_INET : AF_INET6, b + off, r->host, sizeof r->host);
        r->is_ip = true;
    }
    r->port = (uint16_t)(b[off + alen] << 8 | b[off + alen + 1]);
    if (r->port == 0) {
        r->reply = 8;
        return -1;
    }
    *used = off + alen + 2;
    return 1;
}

size_t egress_socks_reply(unsigned char code, unsigned char out[10]) {
    const unsigned char rep[10] = {5, code, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(out, rep, 10);
    return 10;
}

size_t egress_socks_userpass(const char *user, const char *pass, unsigned char *out, size_t cap) {
    size_t ul = strlen(user), pl = strlen(pass);
    if (ul > 255 || pl > 255 || cap < 3 + ul + pl)
        return 0;
    out[0] = 1;
    out[1] = (unsigned char)ul;
    memcpy(out + 2, user, ul);
    out[2 + ul] = (unsigned char)pl;
    memcpy(out + 3 + ul, pass, pl);
    return 3 + ul + pl;
}

size_t egress_socks_connect_req(const char *host, uint16_t port, unsigned char *out, size_t cap) {
    unsigned char a[16];
    size_t o = 0, hl = strlen(host);
    if (cap < 4 + 1 + 255 + 2)
        return 0;
    out[o++] = 5;
    out[o++] = 1;
    out[o++] = 0;
    if (inet_pton(AF_INET, host, a) == 1) {
        out[o++] = 1;
        memcpy(out + o, a, 4);
        o += 4;
    } else if (inet_pton(AF_INET6, host, a) == 1) {
        out[o++] = 4;
        memcpy(out + o, a, 16);
        o += 16;
    } else {
        if (hl == 0 || hl > 255)
            return 0;
        out[o++] = 3;
        out[o++] = (unsigned char)hl;
        memcpy(out + o, host, hl);
        o += hl;
    }
    out[o++] = (unsigned char)(port >> 8);
    out[o++] = (unsigned char)(port & 0xff);
    return o;
}
