/* mcp_results.c -- how a captured REST answer becomes an MCP tool result's content, for the
 * kinds of tool output that are more than JSON (mcp.h mcp_out): text, a window of a long HTML
 * page, an image, and a snapshot (its text for the model, the whole object as
 * structuredContent). Pure functions of their arguments; any thread. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/base64.h"
#include "mcp.h"

#define CONTENT_DEFAULT 20000 /* browser_content: characters returned by default */

cJSON *mcp_text_result(const char *text, bool is_error) {
    cJSON *res = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(res, "content");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "text");
    cJSON_AddStringToObject(item, "text", text);
    cJSON_AddItemToArray(content, item);
    cJSON_AddBoolToObject(res, "isError", is_error);
    return res;
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

cJSON *mcp_html_result(const char *data, size_t len, const cJSON *args) {
    double maxd = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(args, "maxChars"));
    double offd = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(args, "offset"));
    /* the schema bounds both; NaN (absent) takes the default */
    size_t max = maxd >= 1 && maxd <= 1e6 ? (size_t)maxd : CONTENT_DEFAULT;
    size_t off = offd >= 0 && offd <= 1e9 ? (size_t)offd : 0;
    size_t total = 0;
    const char *s = data ? data : "";
    size_t from = cp_offset(s, len, off, &total);
    size_t to = cp_offset(s, len, off + max, NULL);
    if (off > total)
        from = to = len;
    size_t shown = total > off ? (total - off < max ? total - off : max) : 0;
    char note[256] = "";
    if (off > 0 || off + shown < total)
        snprintf(note, sizeof note, "\n\n[sandboxd: characters %zu to %zu of %zu shown%s]", off,
                 off + shown, total,
                 off + shown < total ? "; call the tool again with offset set to read on" : "");
    size_t n = to - from;
    char *text = malloc(n + sizeof note);
    if (!text)
        return mcp_text_result("out of memory", true);
    memcpy(text, s + from, n);
    snprintf(text + n, sizeof note, "%s", note);
    cJSON *res = mcp_text_result(text, false);
    free(text);
    return res;
}

cJSON *mcp_image_result(const char *data, size_t len, const char *ctype) {
    char *b64 = malloc(SBX_B64_ENCODED_LEN(len) + 1);
    if (!b64)
        return mcp_text_result("out of memory", true);
    sbx_b64_encode(data ? data : "", len, b64);
    cJSON *res = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(res, "content");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "type", "image");
    cJSON_AddStringToObject(item, "data", b64);
    free(b64);
    char mime[64];
    snprintf(mime, sizeof mime, "%s", ctype ? ctype : "image/png");
    mime[strcspn(mime, "; ")] = 0;
    cJSON_AddStringToObject(item, "mimeType", mime);
    cJSON_AddItemToArray(content, item);
    cJSON_AddBoolToObject(res, "isError", false);
    return res;
}

cJSON *mcp_snapshot_result(cJSON *json) {
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "snapshot"));
    bool cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "truncated"));
    char *t = NULL;
    if (asprintf(&t, "%s%s", text ? text : "",
                 cut ? "\n[sandboxd: the snapshot was cut at maxChars; ask for a larger maxChars "
                       "or root it at one element with selector]"
                     : "") < 0)
        return mcp_text_result("out of memory", true);
    cJSON *res = mcp_text_result(t, false);
    free(t);
    if (cJSON_IsObject(json))
        cJSON_AddItemToObject(res, "structuredContent", cJSON_Duplicate(json, 1));
    return res;
}
