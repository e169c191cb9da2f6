/* mcp.c -- POST /mcp: a Model Context Protocol server over Streamable HTTP (JSON-RPC 2.0).
 *
 * Two eras on one endpoint, told apart per request:
 * - modern (2026-07-28): stateless; every request carries io.modelcontextprotocol/protocolVersion
 *   and clientCapabilities in params._meta, the MCP-Protocol-Version, Mcp-Method and (tools/call)
 *   Mcp-Name headers must match the body, server/discover answers what the server speaks, and
 *   results carry resultType and the serverInfo in _meta;
 * - legacy (2025-11-25, 2025-06-18, 2025-03-26): the initialize handshake, then requests with an
 *   optional MCP-Protocol-Version header.
 * No Mcp-Session-Id is issued in either era (the server keeps no MCP state: browser state
 * travels as sessionId tool arguments), so none is required and one sent is ignored; GET and
 * DELETE /mcp are 405, as the router answers for a route that exists only for POST.
 *
 * A tool call is one REST route run in-process (dispatch.h) as the caller, so validation,
 * scopes, tenancy, error codes and messages are the REST ones; a REST error becomes a result
 * with isError and the REST message. The tool table is in mcp_tools.c.
 *
 * Runs on the connection's thread like any handler; the only shared state is the parsed tool
 * schemas, built once (pthread_once) and read-only afterwards.
 */
#define _GNU_SOURCE
#include "mcp.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/jfield.h"
#include "../common/log.h"
#include "../common/base64.h"
#include "auth.h"
#include "dispatch.h"
#include "http.h"

#define MODERN_VERSION  "2026-07-28"
#define LEGACY_LATEST   "2025-11-25"
#define META_VERSION    "io.modelcontextprotocol/protocolVersion"
#define META_CAPS       "io.modelcontextprotocol/clientCapabilities"
#define META_SERVER     "io.modelcontextprotocol/serverInfo"
#define LIST_PAGE       100   /* tools per tools/list page (all of them fit today) */
#define CONTENT_DEFAULT 20000 /* browser_content: characters returned by default */
#define RPC_PARSE       -32700
#define RPC_INVALID     -32600
#define RPC_NO_METHOD   -32601
#define RPC_BAD_PARAMS  -32602
#define RPC_INTERNAL    -32603
#define RPC_HEADER      -32020 /* HeaderMismatch (2026-07-28) */
#define RPC_UNSUPPORTED -32022 /* UnsupportedProtocolVersion (2026-07-28) */

static const char *const legacy_versions[] = {LEGACY_LATEST, "2025-06-18", "2025-03-26", NULL};

static const char instructions[] =
    "sandboxd runs Python in a sandbox (python_run: one program per call, no state kept) and "
    "drives headless Chromium browsers. For the web: browser_session_create, then pass its "
    "sessionId to browser_navigate, browser_content, browser_click, browser_fill, "
    "browser_screenshot and the rest; close it with browser_session_close when done. Errors "
    "come back as tool results with isError and a message saying what to fix.";

/* ---------------------------------------------------------------- the request */

typedef struct mcp_call {
    http_req *r;
    auth_identity who;
    bool modern;      /* the request is of the 2026-07-28 era */
    bool sse;         /* answer as one SSE event (the client accepts only that) */
    const cJSON *id;  /* the request's id (borrowed from msg), NULL before it is known */
    const char *meth; /* the request's method */
} mcp_call;

/* Answer `msg` (owned): JSON or one SSE "message" event. */
static void send_msg(mcp_call *c, int status, cJSON *msg) {
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (!text) {
        http_fail(c->r, SBX_EINTERNAL, "could not encode the MCP reply");
        return;
    }
    if (!c->sse) {
        http_reply_bytes(c->r, status, "application/json; charset=utf-8", text, strlen(text));
        return;
    }
    size_t n = strlen(text) + 32;
    char *ev = malloc(n);
    if (!ev) {
        free(text);
        http_fail(c->r, SBX_EINTERNAL, "out of memory");
        return;
    }
    int len = snprintf(ev, n, "event: message\ndata: %s\n\n", text);
    free(text);
    http_add_header(c->r, "X-Accel-Buffering", "no");
    http_add_header(c->r, "Cache-Control", "no-cache");
    http_reply_bytes(c->r, status, "text/event-stream; charset=utf-8", ev, (size_t)len);
}

static cJSON *envelope(const cJSON *id) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
    return m;
}

/* A JSON-RPC error. `data` (owned) may be NULL. The HTTP status follows the era's rules:
 * modern requests get 404 for an unknown method and 400 for the others it names; legacy ones
 * get 200 unless the message could not be read at all. */
static void send_error(mcp_call *c, int status, int code, cJSON *data, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void send_error(mcp_call *c, int status, int code, cJSON *data, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *m = envelope(c->id), *err = cJSON_AddObjectToObject(m, "error");
    cJSON_AddNumberToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", msg);
    if (data)
        cJSON_AddItemToObject(err, "data", data);
    send_msg(c, status, m);
}

static int rpc_status(const mcp_call *c, int code) {
    if (!c->modern)
        return 200;
    return code == RPC_NO_METHOD ? 404 : code == RPC_INTERNAL ? 500 : 400;
}

static cJSON *server_info(void) {
    cJSON *i = cJSON_CreateObject();
    cJSON_AddStringToObject(i, "name", "sandboxd");
    cJSON_AddStringToObject(i, "title", "sandboxd: sandboxed Python and headless browsers");
    cJSON_AddStringToObject(i, "version", SANDBOXD_VERSION);
    return i;
}

/* Answer `result` (owned); a modern result gains resultType (unless set) and the serverInfo. */
static void send_result(mcp_call *c, cJSON *result) {
    if (c->modern) {
        if (!cJSON_GetObjectItemCaseSensitive(result, "resultType"))
            cJSON_AddStringToObject(result, "resultType", "complete");
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(result, "_meta");
        if (!meta)
            meta = cJSON_AddObjectToObject(result, "_meta");
        cJSON_AddItemToObject(meta, META_SERVER, server_info());
    }
    cJSON *m = envelope(c->id);
    cJSON_AddItemToObject(m, "result", result);
    send_msg(c, 200, m);
}

/* ---------------------------------------------------------------- schemas */

static cJSON *schemas[64];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static size_t tool_count(void) {
    size_t n = 0;
    while (mcp_tools[n].name)
        n++;
    return n;
}

static void schemas_build(void) {
    for (size_t i = 0; mcp_tools[i].name && i < sizeof schemas / sizeof schemas[0]; i++) {
        char *t = strdup(mcp_tools[i].schema);
        for (char *p = t; p && *p; p++)
            if (*p == '\'')
                *p = '"';
        schemas[i] = t ? cJSON_Parse(t) : NULL;
        if (!schemas[i])
            LOG_E("mcp", "tool %s: its input schema does not parse", mcp_tools[i].name);
        free(t);
    }
}

static const cJSON *schema_of(size_t i) {
    pthread_once(&schemas_once, schemas_build);
    return i < sizeof schemas / sizeof schemas[0] ? schemas[i] : NULL;
}

/* ---------------------------------------------------------------- headers and origin */

static const char *version_list(char *out, size_t n) {
    snprintf(out, n, "%s", MODERN_VERSION);
    for (int i = 0; legacy_versions[i]; i++)
        snprintf(out + strlen(out), n - strlen(out), ", %s", legacy_versions[i]);
    return out;
}

static cJSON *versions_json(void) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(MODERN_VERSION));
    for (int i = 0; legacy_versions[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(legacy_versions[i]));
    return a;
}

static bool is_legacy(const char *v) {
    for (int i = 0; v && legacy_versions[i]; i++)
        if (strcmp(v, legacy_versions[i]) == 0)
            return true;
    return false;
}

/* True when the comma-separated Accept header allows `type` (or a wildcard for it). */
static bool accepts(const char *accept, const char *type) {
    size_t major = strcspn(type, "/");
    for (const char *p = accept; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",;");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if ((len == strlen(type) && !strncasecmp(p, type, len)) ||
            (len == 3 && !strncmp(p, "*/*", 3)) ||
            (len == major + 2 && !strncasecmp(p, type, major) && !strncmp(p + major, "/*", 2)))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

static bool is_loopback_v4(const char *host) {
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* Origin check against DNS rebinding: no Origin (not a browser) is fine; a browser page may
 * call only from a loopback origin or from the address the server is bound to. The Host
 * header proves nothing here (a rebound name sends its own Host). */
static bool origin_ok(const char *origin) {
    if (!origin)
        return true;
    const char *p = strstr(origin, "://");
    if (!p || (strncasecmp(origin, "http://", 7) && strncasecmp(origin, "https://", 8)))
        return false;
    p += 3;
    char host[256];
    size_t n;
    if (*p == '[') {
        n = strcspn(p, "]");
        if (p[n] != ']')
            return false;
        n++;
    } else {
        n = strcspn(p, ":/");
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, p, n);
    host[n] = 0;
    if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]") || is_loopback_v4(host))
        return true;
    const char *bound = http_defaults_get()->host;
    if (!bound || !strcmp(bound, "0.0.0.0") || !strcmp(bound, "::"))
        return false;
    if (host[0] == '[') { /* [v6] against a bare v6 bind address */
        host[n - 1] = 0;
        return !strcasecmp(host + 1, bound);
    }
    return !strcasecmp(host, bound);
}

/* Decode a header value that may use the =?base64?...?= form; returns malloc'd text. */
static char *header_value(const char *v) {
    size_t n = strlen(v);
    if (n < 11 || strncmp(v, "=?base64?", 9) || strcmp(v + n - 2, "?="))
        return strdup(v);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = v + 9; p < v + n - 2; p++) {
        if (*p == '=')
            break;
        const char *k = strchr(tbl, *p);
        if (!k || !*p) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)(k - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    *o = 0;
    return out;
}

/* A standard header must be there and equal `want`; otherwise answer HeaderMismatch. */
static bool header_matches(mcp_call *c, const char *name, const char *want) {
    const char *v = http_header(c->r, name);
    if (!v) {
        send_error(c, 400, RPC_HEADER, NULL,
                   "Header mismatch: the %s header is required (it must be '%.100s')", name, want);
        return false;
    }
    char *dec = header_value(v);
    bool ok = dec && strcmp(dec, want) == 0;
    if (!ok)
        send_error(c, 400, RPC_HEADER, NULL,
                   "Header mismatch: %s header value '%.100s' does not match body value '%.100s'",
                   name, dec ? dec : v, want);
    free(dec);
    return ok;
}

/* ---------------------------------------------------------------- tools */

static bool tool_allowed(const mcp_call *c, const mcp_tool *t) {
    return auth_allows(&c->who, t->scope);
}

static cJSON *tool_json(size_t i) {
    const mcp_tool *t = &mcp_tools[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "title", t->title);
    cJSON_AddStringToObject(o, "description", t->description);
    const cJSON *s = schema_of(i);
    cJSON_AddItemToObject(o, "inputSchema", s ? cJSON_Duplicate(s, 1) : cJSON_CreateObject());
    cJSON *a = cJSON_AddObjectToObject(o, "annotations");
    cJSON_AddStringToObject(a, "title", t->title);
    cJSON_AddBoolToObject(a, "readOnlyHint", t->read_only);
    cJSON_AddBoolToObject(a, "destructiveHint", t->destructive);
    cJSON_AddBoolToObject(a, "openWorldHint", strncmp(t->name, "browser_", 8) == 0);
    return o;
}

static bool in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, "|");
        if (len == n && !strncmp(p, name, n))
            return true;
        p += len + (p[len] == '|');
    }
    return false;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "null";
}

/* Check `args` against the tool's schema (names, required, types, enums, integer bounds).
 * Returns false with a message for the model in `msg`. */
static bool args_ok(const cJSON *schema, const cJSON *args, char *msg, size_t n) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    for (const cJSON *a = args->child; a; a = a->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(props, a->string);
        if (!p) {
            size_t k = (size_t)snprintf(msg, n, "unknown argument '%.64s' (known:", a->string);
            for (const cJSON *q = props ? props->child : NULL; q && k < n; q = q->next)
                k += (size_t)snprintf(msg + k, n - k, " %s", q->string);
            if (k < n)
                snprintf(msg + k, n - k, ")");
            return false;
        }
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "type"));
        const char *got = type_name(a);
        bool fits = !want || !strcmp(want, got) ||
                    (!strcmp(want, "integer") && cJSON_IsNumber(a) &&
                     a->valuedouble == floor(a->valuedouble));
        if (!fits) {
            snprintf(msg, n, "argument '%.64s' must be %s %s (got %s)", a->string,
                     want && strchr("aeiou", want[0]) ? "an" : "a", want, got);
            return false;
        }
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(p, "enum");
        if (en && cJSON_IsString(a)) {
            bool found = false;
            const cJSON *e;
            cJSON_ArrayForEach(e, en) found |=
                cJSON_IsString(e) && !strcmp(e->valuestring, a->valuestring);
            if (!found) {
                size_t k = (size_t)snprintf(msg, n, "argument '%.64s' must be one of:", a->string);
                cJSON_ArrayForEach(e, en) if (k < n) k +=
                    (size_t)snprintf(msg + k, n - k, " %s", e->valuestring);
                return false;
            }
        }
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(p, "minimum"),
                    *mx = cJSON_GetObjectItemCaseSensitive(p, "maximum");
        if (cJSON_IsNumber(a) && ((mn && a->valuedouble < mn->valuedouble) ||
                                  (mx && a->valuedouble > mx->valuedouble))) {
            snprintf(msg, n, "argument '%.64s' must be from %g to %g", a->string,
                     mn ? mn->valuedouble : -1e308, mx ? mx->valuedouble : 1e308);
            return false;
        }
    }
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required"), *q;
    cJSON_ArrayForEach(q, req) {
        if (cJSON_IsString(q) && !cJSON_GetObjectItemCaseSensitive(args, q->valuestring)) {
            snprintf(msg, n, "argument '%s' is required", q->valuestring);
            return false;
        }
    }
    return true;
}

/* An id argument that goes into the path: one segment of safe characters. */
static bool id_ok(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_.") == n &&
           strcmp(s, ".") && strcmp(s, "..");
}

static cJSON *tool_text_result(const char *text, bool is_error) {
    cJSON *res = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(res, "content");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "text");
    cJSON_AddStringToObject(item, "text", text);
    cJSON_AddItemToArray(content, item);
    cJSON_AddBoolToObject(res, "isError", is_error);
    return res;
}

/* Fill "{name}" placeholders of t->path from `args`; the names go into `used` ("a|b"). */
static bool build_path(const mcp_tool *t, const cJSON *args, char *path, size_t n, char *used,
                       size_t un, char *msg, size_t mn) {
    size_t k = 0;
    used[0] = 0;
    for (const char *p = t->path; *p;) {
        if (*p != '{') {
            if (k + 1 >= n)
                return false;
            path[k++] = *p++;
            continue;
        }
        size_t len = strcspn(p + 1, "}");
        /* {name+}: a route's tail, a relative file path (its route checks it) */
        bool tail = len > 1 && p[len] == '+';
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len - tail), p + 1);
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, name));
        if (tail && (!v || !*v || strpbrk(v, "?#"))) {
            snprintf(msg, mn, "argument '%s' must be a relative path without ? or #", name);
            return false;
        }
        if (!tail && (!v || !id_ok(v))) {
            snprintf(msg, mn,
                     "argument '%s' must be an id as returned by an earlier call (letters, digits, "
                     "- and _)",
                     name);
            return false;
        }
        int w = snprintf(path + k, n - k, "%s", v);
        if (w < 0 || (size_t)w >= n - k)
            return false;
        k += (size_t)w;
        snprintf(used + strlen(used), un - strlen(used), "%s%s", used[0] ? "|" : "", name);
        p += len + 2;
    }
    path[k] = 0;
    return true;
}

/* Count code points of UTF-8 text; return the byte offset of code point `cp` (or len). */
static size_t cp_offset(const char *s, size_t len, size_t cp, size_t *total) {
    size_t count = 0, at = len;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) == 0x80)
            continue;
        if (count == cp)
            at = i;
        count++;
    }
    if (count == cp)
        at = len;
    if (total)
        *total = count;
    return at;
}

static cJSON *html_result(const http_capture *cap, const cJSON *args) {
    double maxd = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(args, "maxChars"));
    double offd = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(args, "offset"));
    /* the schema bounds both; NaN (absent) takes the default */
    size_t max = maxd >= 1 && maxd <= 1e6 ? (size_t)maxd : CONTENT_DEFAULT;
    size_t off = offd >= 0 && offd <= 1e9 ? (size_t)offd : 0;
    size_t total = 0;
    const char *s = cap->data ? cap->data : "";
    size_t from = cp_offset(s, cap->len, off, &total);
    size_t to = cp_offset(s, cap->len, off + max, NULL);
    if (off > total)
        from = to = cap->len;
    size_t shown = total > off ? (total - off < max ? total - off : max) : 0;
    char note[256] = "";
    if (off > 0 || off + shown < total)
        snprintf(note, sizeof note, "\n\n[sandboxd: characters %zu to %zu of %zu shown%s]", off,
                 off + shown, total,
                 off + shown < total ? "; call the tool again with offset set to read on" : "");
    size_t n = to - from;
    char *text = malloc(n + sizeof note);
    if (!text)
        return tool_text_result("out of memory", true);
    memcpy(text, s + from, n);
    snprintf(text + n, sizeof note, "%s", note);
    cJSON *res = tool_text_result(text, false);
    free(text);
    return res;
}

static cJSON *image_result(const http_capture *cap) {
    char *b64 = malloc(SBX_B64_ENCODED_LEN(cap->len) + 1);
    if (!b64)
        return tool_text_result("out of memory", true);
    sbx_b64_encode(cap->data ? cap->data : "", cap->len, b64);
    cJSON *res = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(res, "content");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "image");
    cJSON_AddStringToObject(item, "data", b64);
    free(b64);
    char mime[64];
    snprintf(mime, sizeof mime, "%s", cap->ctype ? cap->ctype : "image/png");
    mime[strcspn(mime, "; ")] = 0;
    cJSON_AddStringToObject(item, "mimeType", mime);
    cJSON_AddItemToArray(content, item);
    cJSON_AddBoolToObject(res, "isError", false);
    return res;
}

/* The captured REST answer as a tool result. */
static cJSON *tool_result(const mcp_tool *t, http_capture *cap, const cJSON *args) {
    if (cap->status >= 400) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(cap->json, "error");
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
        cJSON *res = tool_text_result(msg ? msg : "the call failed", true);
        cJSON *sc = cJSON_AddObjectToObject(res, "structuredContent");
        cJSON_AddNumberToObject(sc, "status", cap->status);
        if (err)
            cJSON_AddItemToObject(sc, "error", cJSON_Duplicate(err, 1));
        return res;
    }
    switch (t->out) {
    case MCP_OUT_HTML:
        return html_result(cap, args);
    case MCP_OUT_IMAGE:
        return image_result(cap);
    case MCP_OUT_EMPTY: {
        cJSON *res = tool_text_result(t->done ? t->done : "done", false);
        cJSON_AddItemToObject(cJSON_AddObjectToObject(res, "structuredContent"), "ok",
                              cJSON_CreateTrue());
        return res;
    }
    case MCP_OUT_JSON:
    default: {
        cJSON *json = cap->json;
        cap->json = NULL;
        if (!json)
            json = cJSON_CreateObject();
        char *text = cJSON_PrintUnformatted(json);
        cJSON *res = tool_text_result(text ? text : "{}", false);
        free(text);
        if (cJSON_IsObject(json))
            cJSON_AddItemToObject(res, "structuredContent", json);
        else
            cJSON_Delete(json);
        return res;
    }
    }
}

/* Run tool `t` with `args` (an object) through its REST route. Returns the result (owned). */
static cJSON *tool_run(mcp_call *c, size_t ti, const cJSON *args) {
    const mcp_tool *t = &mcp_tools[ti];
    char msg[1024];
    const cJSON *schema = schema_of(ti);
    if (!schema)
        return tool_text_result("this tool is broken on the server (its schema)", true);
    if (!args_ok(schema, args, msg, sizeof msg))
        return tool_text_result(msg, true);
    char path[512], used[128];
    if (!build_path(t, args, path, sizeof path, used, sizeof used, msg, sizeof msg))
        return tool_text_result(msg, true);
    http_capture cap = {0};
    cJSON *body = NULL;
    const char *query[2 * 16 + 1] = {0};
    char qbuf[16][64];
    if (t->in == MCP_IN_BODY) {
        body = cJSON_CreateObject();
        if (t->action)
            cJSON_AddStringToObject(body, "action", t->action);
        for (const cJSON *a = args->child; a; a = a->next)
            if (!in_list(used, a->string) && !in_list(t->local, a->string))
                cJSON_AddItemToObject(body, a->string, cJSON_Duplicate(a, 1));
        cap.body = body;
    } else {
        size_t k = 0;
        for (const cJSON *a = args->child; a && k < 16; a = a->next) {
            if (in_list(used, a->string) || in_list(t->local, a->string))
                continue;
            query[2 * k] = a->string;
            if (cJSON_IsString(a))
                query[2 * k + 1] = a->valuestring;
            else if (cJSON_IsBool(a))
                query[2 * k + 1] = cJSON_IsTrue(a) ? "true" : "false";
            else {
                snprintf(qbuf[k], sizeof qbuf[k], "%.17g", a->valuedouble);
                query[2 * k + 1] = qbuf[k];
            }
            k++;
        }
        cap.query = query;
    }
    http_call(c->r, &c->who, t->method, path, &cap);
    cJSON *res = tool_result(t, &cap, args);
    LOG_D("mcp", "req=%s tool %s -> %d", c->r->id, t->name, cap.status);
    http_capture_free(&cap);
    cJSON_Delete(body);
    return res;
}

/* ---------------------------------------------------------------- methods */

static cJSON *capabilities(const mcp_call *c) {
    cJSON *caps = cJSON_CreateObject(), *tools = cJSON_AddObjectToObject(caps, "tools");
    if (!c->modern)
        cJSON_AddBoolToObject(tools, "listChanged", false);
    return caps;
}

static void m_initialize(mcp_call *c, const cJSON *params) {
    const char *want =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "protocolVersion"));
    if (!want) {
        send_error(c, rpc_status(c, RPC_BAD_PARAMS), RPC_BAD_PARAMS, NULL,
                   "Invalid params: initialize needs params.protocolVersion (a string)");
        return;
    }
    cJSON *res = cJSON_CreateObject();
    /* the client's version when it is one we speak, else our latest of that era */
    cJSON_AddStringToObject(res, "protocolVersion", is_legacy(want) ? want : LEGACY_LATEST);
    cJSON_AddItemToObject(res, "capabilities", capabilities(c));
    cJSON_AddItemToObject(res, "serverInfo", server_info());
    cJSON_AddStringToObject(res, "instructions", instructions);
    send_result(c, res);
}

static void m_discover(mcp_call *c) {
    cJSON *res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "supportedVersions", versions_json());
    cJSON_AddItemToObject(res, "capabilities", capabilities(c));
    cJSON_AddStringToObject(res, "instructions", instructions);
    cJSON_AddNumberToObject(res, "ttlMs", 300000);
    cJSON_AddStringToObject(res, "cacheScope", "public");
    send_result(c, res);
}

/* Cursors are "tools:<index>" of the next page's first tool, counted in the caller's list. */
static void m_tools_list(mcp_call *c, const cJSON *params) {
    size_t from = 0;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(params, "cursor");
    size_t n = tool_count(), visible = 0;
    for (size_t i = 0; i < n; i++)
        visible += tool_allowed(c, &mcp_tools[i]);
    if (cur && !cJSON_IsNull(cur)) {
        const char *s = cJSON_GetStringValue(cur);
        char *end = NULL;
        unsigned long v = s && !strncmp(s, "tools:", 6) ? strtoul(s + 6, &end, 10) : 0;
        if (!s || strncmp(s, "tools:", 6) || !end || end == s + 6 || *end || v > visible) {
            send_error(c, rpc_status(c, RPC_BAD_PARAMS), RPC_BAD_PARAMS, NULL,
                       "Invalid params: cursor '%.64s' is not one this server gave (use the "
                       "nextCursor of a tools/list result)",
                       s ? s : "(not a string)");
            return;
        }
        from = v;
    }
    cJSON *res = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(res, "tools");
    size_t k = 0, added = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tool_allowed(c, &mcp_tools[i]))
            continue;
        if (k++ < from)
            continue;
        if (added == LIST_PAGE) {
            char next[32];
            snprintf(next, sizeof next, "tools:%zu", from + added);
            cJSON_AddStringToObject(res, "nextCursor", next);
            break;
        }
        cJSON_AddItemToArray(arr, tool_json(i));
        added++;
    }
    if (c->modern) {
        cJSON_AddNumberToObject(res, "ttlMs", 300000);
        cJSON_AddStringToObject(res, "cacheScope", "private"); /* depends on the token's scopes */
    }
    send_result(c, res);
}

static void m_tools_call(mcp_call *c, const cJSON *params) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "name"));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    if (!name) {
        send_error(c, rpc_status(c, RPC_BAD_PARAMS), RPC_BAD_PARAMS, NULL,
                   "Invalid params: tools/call needs params.name (a string)");
        return;
    }
    if (args && !cJSON_IsNull(args) && !cJSON_IsObject(args)) {
        send_error(c, rpc_status(c, RPC_BAD_PARAMS), RPC_BAD_PARAMS, NULL,
                   "Invalid params: params.arguments must be an object");
        return;
    }
    if (c->modern && !header_matches(c, "Mcp-Name", name))
        return;
    size_t i = 0;
    while (mcp_tools[i].name && strcmp(mcp_tools[i].name, name))
        i++;
    if (!mcp_tools[i].name) {
        send_error(c, rpc_status(c, RPC_BAD_PARAMS), RPC_BAD_PARAMS, NULL,
                   "Unknown tool: %.100s (tools/list names the tools)", name);
        return;
    }
    cJSON *empty = NULL;
    if (!cJSON_IsObject(args))
        args = empty = cJSON_CreateObject();
    cJSON *res;
    if (!tool_allowed(c, &mcp_tools[i])) {
        char msg[256];
        snprintf(msg, sizeof msg, "this token lacks the '%s' scope needed for the tool %s",
                 mcp_tools[i].scope, name);
        res = tool_text_result(msg, true);
    } else {
        res = tool_run(c, i, args);
    }
    cJSON_Delete(empty);
    send_result(c, res);
}

/* ---------------------------------------------------------------- the endpoint */

static void h_mcp(http_req *r) {
    mcp_call c = {.r = r};
    const char *origin = http_header(r, "Origin");
    if (!origin_ok(origin)) {
        send_error(&c, 403, RPC_INVALID, NULL,
                   "Forbidden: Origin '%.200s' may not use this MCP endpoint (only loopback "
                   "origins and the server's own address)",
                   origin);
        return;
    }
    sbx_err e = {0};
    if (auth_check(http_header(r, "Authorization"), &c.who, &e) != SBX_OK) {
        http_reply_error(r, &e); /* server.c checked it already; a revoked token in between */
        return;
    }
    const char *accept = http_header(r, "Accept");
    bool json_ok = !accept || accepts(accept, "application/json");
    c.sse = !json_ok && accepts(accept, "text/event-stream");
    if (!json_ok && !c.sse) {
        send_error(&c, 406, RPC_INVALID, NULL,
                   "Not Acceptable: the client must accept application/json or "
                   "text/event-stream");
        return;
    }
    const char *ct = http_header(r, "Content-Type");
    if (ct && strncasecmp(ct + strspn(ct, " "), "application/json", 16) != 0) {
        send_error(&c, 415, RPC_INVALID, NULL,
                   "Unsupported Media Type: the body must be application/json (got '%.64s')", ct);
        return;
    }
    cJSON *msg = NULL;
    if (jf_check_text(r->body, r->body_len, &e) == SBX_OK)
        msg = cJSON_ParseWithLength(r->body, r->body_len);
    if (!msg) {
        send_error(&c, 400, RPC_PARSE, NULL, "Parse error: the body is not JSON%s%s",
                   e.msg[0] ? ": " : "", e.msg);
        return;
    }
    if (cJSON_IsArray(msg)) {
        send_error(&c, 400, RPC_INVALID, NULL,
                   "Invalid Request: JSON-RPC batches are not part of this transport (since "
                   "2025-06-18); send one message per POST");
        cJSON_Delete(msg);
        return;
    }
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (id && (cJSON_IsString(id) || cJSON_IsNumber(id)))
        c.id = id;
    if (!cJSON_IsObject(msg) || !cJSON_IsString(jv) || strcmp(jv->valuestring, "2.0") != 0) {
        send_error(&c, 400, RPC_INVALID, NULL,
                   "Invalid Request: a JSON-RPC 2.0 message is an object with \"jsonrpc\": "
                   "\"2.0\"");
        goto done;
    }
    if (!method) { /* a response to a request of ours: we send none, so nothing to match */
        if (cJSON_GetObjectItemCaseSensitive(msg, "result") ||
            cJSON_GetObjectItemCaseSensitive(msg, "error")) {
            http_reply_status(r, 202);
            goto done;
        }
        send_error(&c, 400, RPC_INVALID, NULL, "Invalid Request: the message has no method");
        goto done;
    }
    if (!cJSON_IsString(method) || (params && !cJSON_IsObject(params)) || (id && !c.id)) {
        send_error(&c, 400, RPC_INVALID, NULL,
                   "Invalid Request: method must be a string, params an object and id a string "
                   "or a number");
        goto done;
    }
    c.meth = method->valuestring;
    if (!id) { /* a notification (notifications/initialized, .../cancelled, ...): accepted */
        http_reply_status(r, 202);
        goto done;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(meta, META_VERSION);
    const char *hv = http_header(r, "MCP-Protocol-Version");
    char versions[128];
    if (strcmp(c.meth, "initialize") != 0 && (pv || (hv && !strcmp(hv, MODERN_VERSION)))) {
        /* ---- modern era: everything is in this request */
        c.modern = true;
        if (!cJSON_IsString(pv) ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(meta, META_CAPS))) {
            send_error(&c, 400, RPC_BAD_PARAMS, NULL,
                       "Invalid params: a %s request needs params._meta with \"%s\" (a string) "
                       "and \"%s\" (an object)",
                       MODERN_VERSION, META_VERSION, META_CAPS);
            goto done;
        }
        if (strcmp(pv->valuestring, MODERN_VERSION) != 0) {
            cJSON *data = cJSON_CreateObject();
            cJSON_AddItemToObject(data, "supported", versions_json());
            cJSON_AddStringToObject(data, "requested", pv->valuestring);
            send_error(&c, 400, RPC_UNSUPPORTED, data,
                       "Unsupported protocol version '%.40s' (supported: %s)", pv->valuestring,
                       version_list(versions, sizeof versions));
            goto done;
        }
        if (!header_matches(&c, "MCP-Protocol-Version", pv->valuestring) ||
            !header_matches(&c, "Mcp-Method", c.meth))
            goto done;
        if (!strcmp(c.meth, "server/discover"))
            m_discover(&c);
        else if (!strcmp(c.meth, "tools/list"))
            m_tools_list(&c, params);
        else if (!strcmp(c.meth, "tools/call"))
            m_tools_call(&c, params);
        else
            send_error(&c, 404, RPC_NO_METHOD, NULL,
                       "Method not found: %.100s (this server offers server/discover, tools/list "
                       "and tools/call)",
                       c.meth);
        goto done;
    }
    /* ---- legacy era: initialize, then plain requests */
    if (hv && !is_legacy(hv) && strcmp(c.meth, "initialize") != 0) {
        send_error(&c, 400, RPC_INVALID, NULL,
                   "Bad Request: unsupported MCP-Protocol-Version '%.40s' (supported: %s)", hv,
                   version_list(versions, sizeof versions));
        goto done;
    }
    if (!strcmp(c.meth, "initialize"))
        m_initialize(&c, params);
    else if (!strcmp(c.meth, "ping"))
        send_result(&c, cJSON_CreateObject());
    else if (!strcmp(c.meth, "tools/list"))
        m_tools_list(&c, params);
    else if (!strcmp(c.meth, "tools/call"))
        m_tools_call(&c, params);
    else
        send_error(&c, 200, RPC_NO_METHOD, NULL,
                   "Method not found: %.100s (this server offers initialize, ping, tools/list and "
                   "tools/call)",
                   c.meth);
done:
    cJSON_Delete(msg);
}

/* Any valid token may speak MCP; each tool needs its route's scope (checked per call). */
const http_route api_mcp_routes[] = {
    {"POST", "/mcp", h_mcp, NULL, false},
    {0},
};
