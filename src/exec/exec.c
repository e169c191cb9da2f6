/* exec.c -- placeholder until the exec service lands. */
#include "exec.h"

int exec_init(sbx_err *e) {
    (void)e;
    return 0;
}
void exec_shutdown(void) {}
cJSON *exec_health(void) {
    return cJSON_CreateObject();
}
