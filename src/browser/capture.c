/* capture.c -- screenshots (viewport, full page, one element) and PDFs of a page. */
#include <stdlib.h>
#include <string.h>

#include "../common/base64.h"
#include "../common/util.h"
#include "page.h"

static sbx_code take_data(cJSON *res, char **data, size_t *len, sbx_err *e) {
    const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(res, "data"));
    char *bytes = b64 ? sbx_b64_decode(b64, strlen(b64), len) : NULL;
    cJSON_Delete(res);
    if (!bytes)
        return sbx_fail(e, SBX_EINTERNAL, "Chromium sent no decodable image data");
    *data = bytes;
    return SBX_OK;
}

sbx_code br_screenshot(br_page *p, const br_shot_opts *o, int64_t to, char **data, size_t *len,
                       sbx_err *e) {
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "format", o->format);
    if (!strcmp(o->format, "jpeg") && o->quality >= 0)
        cJSON_AddNumberToObject(params, "quality", o->quality);
    cJSON *box = NULL;
    sbx_code rc = SBX_OK;
    if (o->selector) {
        cJSON *s = cJSON_CreateString(o->selector);
        char *q = cJSON_PrintUnformatted(s);
        cJSON_Delete(s);
        sbx_buf js;
        sbx_buf_init(&js, 1 << 16);
        sbx_buf_addf(&js,
                     "(async (sel, ms) => { const end = Date.now() + ms; for (;;) {"
                     " let el; try { el = document.querySelector(sel); }"
                     " catch (e) { return {error: 'invalid CSS selector: ' + e.message}; }"
                     " if (el) { el.scrollIntoView({block: 'center'});"
                     "  const r = el.getBoundingClientRect();"
                     "  if (r.width > 0 && r.height > 0) return {x: r.left + window.scrollX, "
                     "y: r.top + window.scrollY, width: r.width, height: r.height, scale: 1}; }"
                     " if (Date.now() >= end) return {missing: true};"
                     " await new Promise(r => setTimeout(r, 50)); } })(%s, %lld)",
                     q ? q : "''", (long long)to);
        free(q);
        rc = br_page_eval(p, js.data, to + 5000, &box, e);
        sbx_buf_free(&js);
        if (rc == SBX_OK && cJSON_GetObjectItem(box, "error"))
            rc = sbx_fail(e, SBX_EINVAL, "%s",
                          cJSON_GetStringValue(cJSON_GetObjectItem(box, "error")));
        else if (rc == SBX_OK && cJSON_GetObjectItem(box, "missing"))
            rc = sbx_fail(e, SBX_ENOELEMENT, "no visible element matching '%.200s' within %lld ms",
                          o->selector, (long long)to);
        if (rc != SBX_OK) {
            cJSON_Delete(box);
            cJSON_Delete(params);
            return rc;
        }
        cJSON_AddItemToObject(params, "clip", box);
        cJSON_AddBoolToObject(params, "captureBeyondViewport", true);
    } else if (o->full_page) {
        cJSON *m = NULL;
        if ((rc = br_page_call(p, "Page.getLayoutMetrics", NULL, to, &m, e))) {
            cJSON_Delete(params);
            return rc;
        }
        cJSON *size = cJSON_GetObjectItem(m, "cssContentSize");
        if (!size)
            size = cJSON_GetObjectItem(m, "contentSize");
        cJSON *clip = cJSON_AddObjectToObject(params, "clip");
        cJSON_AddNumberToObject(clip, "x", 0);
        cJSON_AddNumberToObject(clip, "y", 0);
        cJSON_AddNumberToObject(clip, "width",
                                cJSON_GetNumberValue(cJSON_GetObjectItem(size, "width")));
        cJSON_AddNumberToObject(clip, "height",
                                cJSON_GetNumberValue(cJSON_GetObjectItem(size, "height")));
        cJSON_AddNumberToObject(clip, "scale", 1);
        cJSON_AddBoolToObject(params, "captureBeyondViewport", true);
        cJSON_Delete(m);
    }
    cJSON *res = NULL;
    if ((rc = br_page_call(p, "Page.captureScreenshot", params, to, &res, e)))
        return rc;
    return take_data(res, data, len, e);
}

sbx_code br_pdf(br_page *p, int64_t to, char **data, size_t *len, sbx_err *e) {
    cJSON *params = cJSON_CreateObject();
    cJSON_AddBoolToObject(params, "printBackground", true);
    cJSON *res = NULL;
    sbx_code rc = br_page_call(p, "Page.printToPDF", params, to, &res, e);
    if (rc)
        return rc;
    return take_data(res, data, len, e);
}
