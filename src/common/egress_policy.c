/* egress_policy.c -- the egress policy: domain lists, private-address classes, CIDRs, the
 * EGRESS_HOSTS map and a request's narrowing list (see egress_policy.h). */
#define _GNU_SOURCE
#include "egress_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct str_list {
    char **v;
    size_t n;
} str_list;

typedef struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
} cidr;

typedef struct host_entry {
    char *name;
    struct sockaddr_storage sa;
    socklen_t len;
} host_entry;

typedef struct self_entry {
    bool any; /* every local address (the server listens on 0.0.0.0 or ::) */
    int family;
    unsigned char addr[16];
    uint16_t port;
} self_entry;

struct egress_policy {
    str_list allowed, denied, private_names;
    cidr *cidrs;
    size_t ncidrs;
    host_entry *hosts;
    size_t nhosts;
    self_entry self[4];
    atomic_size_t nself; /* entries [0, nself) are complete (one writer: add_self) */
};

struct egress_scope {
    const egress_policy *pol;
    bool allowlist;
    bool narrowed; /* the request gave a list (possibly empty: nothing passes) */
    str_list request;
};

/* ---- lists ------------------------------------------------------------------------------- */

static void list_free(str_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Lower-case `s` in place and drop one trailing dot. */
static void normalize(char *s) {
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = 0;
}

static int list_add(str_list *l, const char *tok, size_t len) {
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    l->v = nv;
    if (!(l->v[l->n] = strndup(tok, len)))
        return -1;
    normalize(l->v[l->n++]);
    return 0;
}

/* Split a comma/space list into `l`. 0 or -1 (out of memory). */
static int list_parse(str_list *l, const char *text) {
    if (!text)
        return 0;
    const char *p = text;
    while (*p) {
        p += strspn(p, ", \t\n");
        size_t len = strcspn(p, ", \t\n");
        if (len && list_add(l, p, len) != 0)
            return -1;
        p += len;
    }
    return 0;
}

bool egress_name_matches(const char *pattern, const char *host) {
    if (!strcmp(pattern, "*"))
        return true;
    size_t hl = strlen(host);
    if (hl > 1 && host[hl - 1] == '.')
        hl--;
    if (!strncmp(pattern, "*.", 2)) {
        const char *base = pattern + 2;
        size_t bl = strlen(base);
        if (hl == bl && !strncasecmp(host, base, bl))
            return true;
        return hl > bl + 1 && host[hl - bl - 1] == '.' && !strncasecmp(host + hl - bl, base, bl);
    }
    return strlen(pattern) == hl && !strncasecmp(host, pattern, hl);
}

static bool list_match(const str_list *l, const char *host) {
    for (size_t i = 0; i < l->n; i++)
        if (egress_name_matches(l->v[i], host))
            return true;
    return false;
}

/* ---- addresses --------------------------------------------------------------------------- */

/* An IP literal (IPv6 with or without brackets) into family and bytes. */
static bool parse_ip(const char *s, int *family, unsigned char out[16]) {
    char buf[64];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return false;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = 0;
    } else {
        memcpy(buf, s, n + 1);
    }
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static const char *v4_class(const unsigned char a[4]) {
    uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    static const struct {
        uint32_t net, mask;
        const char *cls;
    } k[] = {
        {0x00000000u, 0xff000000u, "unspecified"},       /* 0/8 "this network" */
        {0x7f000000u, 0xff000000u, "loopback"},          /* 127/8 */
        {0x0a000000u, 0xff000000u, "private"},           /* 10/8 */
        {0xac100000u, 0xfff00000u, "private"},           /* 172.16/12 */
        {0xc0a80000u, 0xffff0000u, "private"},           /* 192.168/16 */
        {0x64400000u, 0xffc00000u, "carrier-grade NAT"}, /* 100.64/10 */
        {0xa9fe0000u, 0xffff0000u, "link-local"},        /* 169.254/16 (cloud metadata) */
        {0xc0000000u, 0xffffff00u, "reserved"},          /* 192.0.0/24 */
        {0xc0000200u, 0xffffff00u, "reserved"},          /* 192.0.2/24 */
        {0xc6336400u, 0xffffff00u, "reserved"},          /* 198.51.100/24 */
        {0xcb007100u, 0xffffff00u, "reserved"},          /* 203.0.113/24 */
        {0xc6120000u, 0xfffe0000u, "reserved"},          /* 198.18/15 */
        {0xe0000000u, 0xf0000000u, "multicast"},         /* 224/4 */
        {0xf0000000u, 0xf0000000u, "reserved"},          /* 240/4, broadcast */
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if ((x & k[i].mask) == k[i].net)
            return k[i].cls;
    return NULL;
}

/* The IPv4 address an IPv6 form embeds (mapped, compatible, NAT64, 6to4), or NULL. */
static const unsigned char *v6_embedded_v4(const unsigned char a[16]) {
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12))
        return a + 12;
    if (!memcmp(a, zero, 12) && (a[12] | a[13] | a[14]) != 0) /* ::a.b.c.d, not :: or ::1 */
        return a + 12;
    if (a[0] == 0x20 && a[1] == 0x02) /* 2002:AABB:CCDD::/48 */
        return a + 2;
    return NULL;
}

static const char *v6_class(const unsigned char a[16]) {
    static const unsigned char zero[16] = {0};
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (!memcmp(a, zero, 16))
        return "unspecified";
    if (!memcmp(a, one, 16))
        return "loopback";
    const unsigned char *v4 = v6_embedded_v4(a);
    if (v4)
        return v4_class(v4);
    if (a[0] == 0xff)
        return "multicast";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "private"; /* fec0::/10 site-local */
    if ((a[0] & 0xfe) == 0xfc)
        return "private"; /* fc00::/7 unique local */
    if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
        return "private"; /* 64:ff9b:1::/48 local-use NAT64 */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return "reserved"; /* 2001:db8::/32 documentation */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
        return "reserved"; /* 2001::/32 Teredo: hides an IPv4 peer */
    if ((a[0] & 0xe0) != 0x20)
        return "reserved"; /* outside 2000::/3, global unicast */
    return NULL;
}

const char *egress_addr_class(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return v4_class((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_class(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return "unspecified";
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, int bits) {
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full))
        return false;
    if (!rest)
        return true;
    unsigned char m = (unsigned char)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

static bool cidr_holds(const cidr *c, int family, const unsigned char *addr) {
    return c->family == family && prefix_eq(c->addr, addr, c->prefix);
}

static int parse_cidr(const char *s, cidr *out) {
    char buf[80];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = 0;
    if (!parse_ip(buf, &out->family, out->addr))
        return -1;
    int max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > max)
            return -1;
        out->prefix = (int)v;
    }
    return 0;
}

/* The family and bytes of a sockaddr (port aside); false for other families. */
static bool sa_bytes(const struct sockaddr *sa, int *family, const unsigned char **b,
                     uint16_t *port) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        *family = AF_INET;
        *b = (const unsigned char *)&s4->sin_addr;
        *port = ntohs(s4->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        *family = AF_INET6;
        *b = s6->sin6_addr.s6_addr;
        *port = ntohs(s6->sin6_port);
        return true;
    }
    return false;
}

/* ---- the policy -------------------------------------------------------------------------- */

void egress_policy_free(egress_policy *p) {
    if (!p)
        return;
    list_free(&p->allowed);
    list_free(&p->denied);
    list_free(&p->private_names);
    free(p->cidrs);
    for (size_t i = 0; i < p->nhosts; i++)
        free(p->hosts[i].name);
    free(p->hosts);
    free(p);
}

static int fill_sa(int family, const unsigned char *b, struct sockaddr_storage *ss,
                   socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, b, 4);
        *len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, b, 16);
        *len = sizeof *s6;
    }
    return 0;
}

static sbx_code parse_private(egress_policy *p, const char *text, sbx_err *e) {
    str_list toks = {0};
    if (list_parse(&toks, text) != 0) {
        list_free(&toks);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    sbx_code rc = SBX_OK;
    for (size_t i = 0; i < toks.n && rc == SBX_OK; i++) {
        const char *t = toks.v[i];
        bool ipish = strchr(t, '/') || strchr(t, ':') || strspn(t, "0123456789.") == strlen(t);
        if (!ipish) {
            if (list_add(&p->private_names, t, strlen(t)) != 0)
                rc = sbx_fail(e, SBX_EINTERNAL, "out of memory");
            continue;
        }
        cidr c;
        if (parse_cidr(t, &c) != 0) {
            rc = sbx_fail(e, SBX_EINVAL, "EGRESS_PRIVATE_ALLOWED: \"%.80s\" is not an IP or CIDR",
                          t);
            break;
        }
        cidr *nv = realloc(p->cidrs, (p->ncidrs + 1) * sizeof *nv);
        if (!nv) {
            rc = sbx_fail(e, SBX_EINTERNAL, "out of memory");
            break;
        }
        p->cidrs = nv;
        p->cidrs[p->ncidrs++] = c;
    }
    list_free(&toks);
    return rc;
}

static sbx_code parse_hosts(egress_policy *p, const char *text, sbx_err *e) {
    str_list toks = {0};
    if (list_parse(&toks, text) != 0) {
        list_free(&toks);
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    }
    sbx_code rc = SBX_OK;
    for (size_t i = 0; i < toks.n; i++) {
        char *eq = strchr(toks.v[i], '=');
        int family;
        unsigned char b[16];
        if (!eq || eq == toks.v[i] || !parse_ip(eq + 1, &family, b)) {
            rc = sbx_fail(e, SBX_EINVAL, "EGRESS_HOSTS: \"%.80s\" is not name=ip", toks.v[i]);
            break;
        }
        host_entry *nv = realloc(p->hosts, (p->nhosts + 1) * sizeof *nv);
        if (!nv) {
            rc = sbx_fail(e, SBX_EINTERNAL, "out of memory");
            break;
        }
        p->hosts = nv;
        host_entry *h = &p->hosts[p->nhosts];
        if (!(h->name = strndup(toks.v[i], (size_t)(eq - toks.v[i])))) {
            rc = sbx_fail(e, SBX_EINTERNAL, "out of memory");
            break;
        }
        normalize(h->name);
        fill_sa(family, b, &h->sa, &h->len);
        p->nhosts++;
    }
    list_free(&toks);
    return rc;
}

sbx_code egress_policy_new(const egress_settings *s, egress_policy **out, sbx_err *e) {
    egress_policy *p = calloc(1, sizeof *p);
    if (!p)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    sbx_code rc = SBX_OK;
    if (list_parse(&p->allowed, s->allowed) != 0 || list_parse(&p->denied, s->denied) != 0)
        rc = sbx_fail(e, SBX_EINTERNAL, "out of memory");
    if (rc == SBX_OK)
        rc = parse_private(p, s->private_allowed, e);
    if (rc == SBX_OK)
        rc = parse_hosts(p, s->hosts, e);
    if (rc != SBX_OK) {
        egress_policy_free(p);
        return rc;
    }
    *out = p;
    return SBX_OK;
}

int egress_policy_add_self(egress_policy *p, const char *host, uint16_t port) {
    size_t i = atomic_load(&p->nself);
    if (i >= sizeof p->self / sizeof *p->self)
        return -1;
    self_entry *s = &p->self[i];
    memset(s, 0, sizeof *s);
    s->port = port;
    if (!host || !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
        !strcmp(host, "[::]")) {
        s->any = true;
    } else if (!parse_ip(host, &s->family, s->addr)) {
        return -1;
    }
    atomic_store_explicit(&p->nself, i + 1, memory_order_release);
    return 0;
}

bool egress_hosts_lookup(const egress_policy *p, const char *name, struct sockaddr_storage *out,
                         socklen_t *len) {
    for (size_t i = p->nhosts; i-- > 0;) /* the last entry for a name wins */
        if (egress_name_matches(p->hosts[i].name, name) && !strchr(p->hosts[i].name, '*')) {
            *out = p->hosts[i].sa;
            *len = p->hosts[i].len;
            return true;
        }
    return false;
}

/* Whether sa is the server's own listener. */
static bool is_self(const egress_policy *p, const struct sockaddr *sa) {
    int family;
    const unsigned char *b;
    uint16_t port;
    if (!sa_bytes(sa, &family, &b, &port))
        return false;
    const unsigned char *v4 = family == AF_INET6 ? v6_embedded_v4(b) : NULL;
    size_t ns = atomic_load_explicit(&p->nself, memory_order_acquire);
    for (size_t i = 0; i < ns; i++) {
        const self_entry *s = &p->self[i];
        if (s->port != port)
            continue;
        if (s->any && egress_addr_class(sa))
            return true;
        if (s->family == family && !memcmp(s->addr, b, family == AF_INET ? 4 : 16))
            return true;
        if (v4 && s->family == AF_INET && !memcmp(s->addr, v4, 4))
            return true;
        /* any loopback address reaches a server listening on 127.0.0.1 */
        const char *cls = egress_addr_class(sa);
        if (cls && !strcmp(cls, "loopback") && s->family == AF_INET && s->addr[0] == 127)
            return true;
        if (cls && !strcmp(cls, "loopback") && s->family == AF_INET6)
            return true;
    }
    return false;
}

bool egress_check_addr(const egress_policy *p, const char *host, const struct sockaddr *sa,
                       char *why, size_t n) {
    if (is_self(p, sa)) {
        snprintf(why, n, "the server's own address");
        return false;
    }
    const char *cls = egress_addr_class(sa);
    if (!cls)
        return true;
    if (host && list_match(&p->private_names, host))
        return true;
    int family;
    const unsigned char *b;
    uint16_t port;
    if (sa_bytes(sa, &family, &b, &port)) {
        const unsigned char *v4 = family == AF_INET6 ? v6_embedded_v4(b) : NULL;
        for (size_t i = 0; i < p->ncidrs; i++)
            if (cidr_holds(&p->cidrs[i], family, b) ||
                (v4 && cidr_holds(&p->cidrs[i], AF_INET, v4)))
                return true;
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
    snprintf(why, n, "%s address %s (EGRESS_PRIVATE_ALLOWED does not name it)", cls, ip);
    return false;
}

/* ---- scopes ------------------------------------------------------------------------------ */

/* A request entry is a name, "*" or "*.name": letters, digits, '-', '.', '_' (and ':' for
 * IPv6 literals). */
static bool entry_ok(const char *s) {
    const char *b = !strncmp(s, "*.", 2) ? s + 2 : s;
    if (!strcmp(s, "*"))
        return true;
    if (!*b || strlen(b) > 253)
        return false;
    for (const char *p = b; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._:[]", *p))
            return false;
    return true;
}

/* Whether the operator's allow entry `a` lets through everything request entry `r` names. */
static bool covers(const char *a, const char *r) {
    if (!strcmp(a, "*"))
        return true;
    if (!strcmp(r, "*"))
        return false;
    if (!strncmp(r, "*.", 2))
        return !strncmp(a, "*.", 2) && egress_name_matches(a, r + 2);
    return egress_name_matches(a, r);
}

sbx_code egress_scope_new(const egress_policy *p, bool allowlist, const cJSON *request,
                          const char *field, egress_scope **out, sbx_err *e) {
    if (request && !cJSON_IsArray(request))
        return sbx_fail(e, SBX_EINVAL, "%s: must be an array of domain names", field);
    egress_scope *s = calloc(1, sizeof *s);
    if (!s)
        return sbx_fail(e, SBX_EINTERNAL, "out of memory");
    s->pol = p;
    s->allowlist = allowlist;
    s->narrowed = request != NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, request) {
        if (!cJSON_IsString(it) || !entry_ok(it->valuestring)) {
            egress_scope_free(s);
            return sbx_fail(e, SBX_EINVAL, "%s: each entry must be a domain name or *.domain",
                            field);
        }
        if (list_add(&s->request, it->valuestring, strlen(it->valuestring)) != 0) {
            egress_scope_free(s);
            return sbx_fail(e, SBX_EINTERNAL, "out of memory");
        }
        const char *r = s->request.v[s->request.n - 1];
        bool inside = !allowlist;
        for (size_t i = 0; allowlist && i < p->allowed.n && !inside; i++)
            inside = covers(p->allowed.v[i], r);
        if (!inside) {
            sbx_fail(e, SBX_EINVAL,
                     "%s: \"%.200s\" is outside the operator's allowed domains "
                     "(EGRESS_ALLOWED_DOMAINS); a request may only narrow them",
                     field, r);
            egress_scope_free(s);
            return SBX_EINVAL;
        }
    }
    *out = s;
    return SBX_OK;
}

void egress_scope_free(egress_scope *s) {
    if (!s)
        return;
    list_free(&s->request);
    free(s);
}

const egress_policy *egress_scope_policy(const egress_scope *s) {
    return s->pol;
}

bool egress_check_name(const egress_scope *s, const char *host, char *why, size_t n) {
    if (!host || !*host) {
        snprintf(why, n, "no host name");
        return false;
    }
    if (list_match(&s->pol->denied, host)) {
        snprintf(why, n, "denied by EGRESS_DENIED_DOMAINS");
        return false;
    }
    if (s->allowlist && !list_match(&s->pol->allowed, host)) {
        snprintf(why, n, "not in allowedDomains (EGRESS_ALLOWED_DOMAINS)");
        return false;
    }
    if (s->narrowed && !list_match(&s->request, host)) {
        snprintf(why, n, "not in the request's allowedDomains");
        return false;
    }
    return true;
}
