/* browser.c -- placeholder until the browser service lands. */
#include "browser.h"

int browser_init(sbx_err *e) {
    (void)e;
    return 0;
}
void browser_shutdown(void) {}
cJSON *browser_health(void) {
    return cJSON_CreateObject();
}
