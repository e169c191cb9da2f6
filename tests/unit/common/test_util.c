/* test_util.c -- capped buffers, ids, constant-time compare, rmtree/copytree. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"

int main(void) {
    sbx_buf b;
    sbx_buf_init(&b, 10);
    CHECK(sbx_buf_add(&b, "hello", 5) == 0 && b.len == 5 && !b.truncated);
    CHECK(sbx_buf_add(&b, "world!!", 7) == -1 && b.len == 10 && b.truncated);
    CHECK(!strcmp(b.data, "helloworld"));
    CHECK(sbx_buf_add(&b, "x", 1) == -1 && b.len == 10);
    size_t len;
    char *d = sbx_buf_take(&b, &len);
    CHECK(d && len == 10 && b.data == NULL && b.len == 0 && !b.truncated);
    free(d);
    sbx_buf_init(&b, 1 << 20);
    CHECK(sbx_buf_addf(&b, "%s-%d", "n", 42) == 0 && !strcmp(b.data, "n-42"));
    sbx_buf_free(&b);

    char a[SBX_ID_LEN], c[SBX_ID_LEN];
    CHECK(sbx_random_id(a) == 0 && sbx_random_id(c) == 0);
    CHECK(strlen(a) == 32 && strcmp(a, c) != 0);
    CHECK(strspn(a, "0123456789abcdef") == 32);

    CHECK(sbx_const_eq("secret", "secret"));
    CHECK(!sbx_const_eq("secret", "secreT"));
    CHECK(!sbx_const_eq("secret", "secret2"));
    CHECK(!sbx_const_eq("secret2", "secret"));
    CHECK(!sbx_const_eq("", "x"));
    CHECK(sbx_const_eq("", ""));

    char tmpl[] = "/tmp/sandboxd-unit-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/src/a/b", tmpl);
    CHECK(sbx_mkdir_p(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/src/a/b/file", tmpl);
    FILE *f = fopen(p, "w");
    fputs("data", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/src/link", tmpl);
    CHECK(symlink("/etc/passwd", p) == 0);
    snprintf(p, sizeof p, "%s/src/a", tmpl);
    chmod(p, 0); /* unreadable directories are still removed */
    snprintf(p, sizeof p, "%s/src", tmpl);
    snprintf(q, sizeof q, "%s/dst", tmpl);
    snprintf(p, sizeof p, "%s/src/a", tmpl);
    chmod(p, 0700);
    snprintf(p, sizeof p, "%s/src", tmpl);
    CHECK(sbx_copytree(p, q) == 0);
    snprintf(q, sizeof q, "%s/dst/a/b/file", tmpl);
    char *text = sbx_read_file(q, 100, &len);
    CHECK(text && len == 4 && !strcmp(text, "data"));
    free(text);
    snprintf(p, sizeof p, "%s/src/a", tmpl);
    chmod(p, 0);
    CHECK(sbx_rmtree(tmpl) == 0);
    CHECK(access("/etc/passwd", F_OK) == 0); /* the symlink's target is untouched */
    CHECK(access(tmpl, F_OK) != 0);
    CHECK(sbx_rmtree("/tmp/sandboxd-unit-does-not-exist") == 0);
    return CHECK_DONE();
}
