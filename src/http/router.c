/* router.c -- segment-wise matching of request paths against the route tables. */
#include "router.h"

#include <stdio.h>
#include <string.h>

static const http_route *const tables[] = {
    api_core_routes,   api_exec_routes,         api_browser_routes, api_browser_ext_routes,
    api_python_routes, api_python_files_routes, api_mcp_routes};

const http_route *router_next(size_t *i) {
    size_t t = *i >> 16, k = *i & 0xffff;
    while (t < sizeof tables / sizeof tables[0]) {
        if (tables[t][k].method) {
            *i = (t << 16) | (k + 1);
            return &tables[t][k];
        }
        t++;
        k = 0;
    }
    *i = t << 16;
    return NULL;
}

int router_match_pattern(const char *pattern, const char *path, char params[][ROUTER_PARAM_LEN],
                         int *nparams) {
    int n = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        size_t slen = se ? (size_t)(se - s) : strlen(s);
        if (plen >= 3 && p[0] == '{' && p[plen - 2] == '+' && p[plen - 1] == '}' && !pe) {
            /* a tail: the rest of the path, every segment non-empty */
            size_t tlen = strlen(s);
            if (tlen == 0 || tlen >= ROUTER_PARAM_LEN || n >= HTTP_MAX_PARAMS ||
                s[tlen - 1] == '/' || strstr(s, "//"))
                return 0;
            if (params)
                memcpy(params[n], s, tlen + 1);
            n++;
            p += plen, s += tlen;
            continue;
        }
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || slen >= 128 || n >= HTTP_MAX_PARAMS)
                return 0;
            if (params) {
                memcpy(params[n], s, slen);
                params[n][slen] = '\0';
            }
            n++;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen, s += slen;
    }
    if (*p || *s)
        return 0;
    if (nparams)
        *nparams = n;
    return 1;
}

int router_find(const char *method, const char *path, router_match *m) {
    memset(m, 0, sizeof *m);
    int path_known = 0;
    size_t it = 0;
    for (const http_route *r; (r = router_next(&it));) {
        if (!router_match_pattern(r->pattern, path, NULL, NULL))
            continue;
        if (strcmp(r->method, method) == 0) {
            router_match_pattern(r->pattern, path, m->params, &m->nparams);
            m->route = r;
            return 0;
        }
        size_t len = strlen(m->allow);
        if (!strstr(m->allow, r->method) && len + strlen(r->method) + 3 < sizeof m->allow)
            snprintf(m->allow + len, sizeof m->allow - len, "%s%s", len ? ", " : "", r->method);
        path_known = 1;
    }
    return path_known ? 405 : 404;
}
