/* test_config.c -- defaults, environment, flags, and refusals that name the setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/config.h"

static int load(char **argv, int argc, char *errbuf, size_t n) {
    FILE *err = fmemopen(errbuf, n, "w");
    int rc = config_load(argc, argv, err);
    fclose(err);
    return rc;
}

int main(void) {
    char errbuf[1024];
    unsetenv("PORT");
    unsetenv("HOST");
    char *a0[] = {"sandboxd", NULL};
    CHECK(load(a0, 1, errbuf, sizeof errbuf) == 0);
    CHECK(sbx_cfg->port == 8080);
    CHECK(!strcmp(sbx_cfg->host, "127.0.0.1"));
    CHECK(sbx_cfg->max_body_bytes == 16 * 1024 * 1024);
    CHECK(!sbx_cfg->dev_mode);

    setenv("PORT", "9091", 1);
    CHECK(load(a0, 1, errbuf, sizeof errbuf) == 0 && sbx_cfg->port == 9091);
    char *a1[] = {"sandboxd", "--port", "7000", "--dev", NULL};
    CHECK(load(a1, 4, errbuf, sizeof errbuf) == 0 && sbx_cfg->port == 7000 && sbx_cfg->dev_mode);
    char *a2[] = {"sandboxd", "--port=7001", NULL};
    CHECK(load(a2, 2, errbuf, sizeof errbuf) == 0 && sbx_cfg->port == 7001);

    /* the bounds requests share with settings are the table's own */
    char v[32], *aflag[] = {"sandboxd", "--exec-timeout-ms", v, NULL};
    snprintf(v, sizeof v, "%d", SBX_EXEC_TIMEOUT_MS_MAX);
    CHECK(load(aflag, 3, errbuf, sizeof errbuf) == 0 &&
          sbx_cfg->exec_timeout_ms == SBX_EXEC_TIMEOUT_MS_MAX);
    snprintf(v, sizeof v, "%d", SBX_EXEC_TIMEOUT_MS_MAX + 1);
    CHECK(load(aflag, 3, errbuf, sizeof errbuf) < 0);
    aflag[1] = "--browser-call-timeout-ms";
    snprintf(v, sizeof v, "%d", SBX_BROWSER_CALL_TIMEOUT_MS_MAX);
    CHECK(load(aflag, 3, errbuf, sizeof errbuf) == 0 &&
          sbx_cfg->browser_call_timeout_ms == SBX_BROWSER_CALL_TIMEOUT_MS_MAX);
    snprintf(v, sizeof v, "%d", SBX_BROWSER_CALL_TIMEOUT_MS_MAX + 1);
    CHECK(load(aflag, 3, errbuf, sizeof errbuf) < 0);

    setenv("PORT", "70000", 1);
    memset(errbuf, 0, sizeof errbuf);
    CHECK(load(a0, 1, errbuf, sizeof errbuf) < 0);
    CHECK(strstr(errbuf, "PORT") && strstr(errbuf, "0 to 65535"));
    setenv("PORT", "12abc", 1);
    CHECK(load(a0, 1, errbuf, sizeof errbuf) < 0);
    unsetenv("PORT");

    setenv("LOG_LEVEL", "loud", 1);
    memset(errbuf, 0, sizeof errbuf);
    CHECK(load(a0, 1, errbuf, sizeof errbuf) < 0 && strstr(errbuf, "LOG_LEVEL") &&
          strstr(errbuf, "debug"));
    unsetenv("LOG_LEVEL");

    char *a3[] = {"sandboxd", "--no-such-flag", NULL};
    memset(errbuf, 0, sizeof errbuf);
    CHECK(load(a3, 2, errbuf, sizeof errbuf) < 0 && strstr(errbuf, "--no-such-flag"));
    char *a4[] = {"sandboxd", "--auth-token", "x", NULL};
    memset(errbuf, 0, sizeof errbuf);
    CHECK(load(a4, 3, errbuf, sizeof errbuf) < 0 && strstr(errbuf, "AUTH_TOKEN"));
    char *a5[] = {"sandboxd", "--port", NULL};
    CHECK(load(a5, 2, errbuf, sizeof errbuf) < 0);
    config_free();
    return CHECK_DONE();
}
