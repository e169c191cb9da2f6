/* test_wsfiles.c -- the work directory's file operations against a real directory holding what
 * sandboxed code could plant: symbolic links to /etc, to a sibling directory, to itself, a FIFO,
 * a deep tree; every path form that must be refused (.., absolute, NUL); the caps (per-file and
 * quota); every operation; and a zip of a tree that python3's zipfile tests and unpacks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "exec/wsfiles.h"

static char g_base[] = "/tmp/sbx-wsf-XXXXXX";
static char g_work[300], g_out[300];

static void put(const char *rel_to_base, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", g_base, rel_to_base);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *slurp_at(const char *rel_to_base) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", g_base, rel_to_base);
    size_t n;
    return sbx_read_file(p, 1 << 20, &n);
}

static bool exists(const char *rel_to_base) {
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", g_base, rel_to_base);
    return lstat(p, &st) == 0;
}

static void plant(const char *target, const char *link_rel) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", g_base, link_rel);
    if (symlink(target, p) != 0)
        perror("symlink");
}

static sbx_code clean(const char *path, size_t len, bool root_ok, char out[]) {
    sbx_err e;
    return wsf_path_clean(path, len, root_ok, out, &e);
}

static void test_clean(void) {
    char out[WSF_PATH_MAX + 1];
    CHECK(clean("a/b.txt", 7, false, out) == SBX_OK && !strcmp(out, "a/b.txt"));
    CHECK(clean("./a//b/./c/", 11, false, out) == SBX_OK && !strcmp(out, "a/b/c"));
    CHECK(clean("", 0, true, out) == SBX_OK && !strcmp(out, ""));
    CHECK(clean(".", 1, true, out) == SBX_OK && !strcmp(out, ""));
    CHECK(clean("", 0, false, out) == SBX_EINVAL);
    CHECK(clean("./", 2, false, out) == SBX_EINVAL);
    CHECK(clean("..", 2, true, out) == SBX_EINVAL);
    CHECK(clean("a/../../etc/passwd", 18, false, out) == SBX_EINVAL);
    CHECK(clean("a/..", 4, false, out) == SBX_EINVAL);
    CHECK(clean("/etc/passwd", 11, false, out) == SBX_EINVAL);
    CHECK(clean("a\0/etc", 6, false, out) == SBX_EINVAL);
    CHECK(clean("..a/b..", 7, false, out) == SBX_OK && !strcmp(out, "..a/b.."));
    char longname[300];
    memset(longname, 'x', 299);
    longname[299] = '\0';
    CHECK(clean(longname, 299, false, out) == SBX_EINVAL);
    char huge[WSF_PATH_MAX + 10];
    memset(huge, 'a', sizeof huge);
    for (size_t i = 10; i < sizeof huge; i += 10)
        huge[i] = '/';
    CHECK(clean(huge, sizeof huge, false, out) == SBX_EINVAL);
    sbx_err e;
    CHECK(wsf_path_clean("x/../y", 6, false, out, &e) == SBX_EINVAL && strstr(e.msg, "x/../y"));
}

/* The links code could plant, and every operation through them refused. */
static void test_links(int root) {
    sbx_err e;
    plant("/etc", "work/etc");
    plant("/etc/hostname", "work/host");
    plant("../outside", "work/out");
    plant(g_out, "work/outabs");
    plant(".", "work/self");
    plant("inside.txt", "work/tolocal");
    put("work/inside.txt", "in");
    char *data = NULL;
    size_t len = 0;
    bool dir = false;
    const char *reads[] = {"etc/hostname",    "host",    "out/secret", "outabs/secret",
                           "self/inside.txt", "tolocal", "etc",        "out"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        e.msg[0] = '\0';
        CHECK(wsf_read(root, reads[i], 0, &data, &len, &dir, &e) == SBX_EINVAL);
        CHECK(strstr(e.msg, reads[i]) && strstr(e.msg, "symbolic link"));
    }
    CHECK(data == NULL);
    /* writes through a link reach nothing outside */
    CHECK(wsf_write(root, "out/new.txt", "x", 1, NULL, &e) == SBX_EINVAL);
    CHECK(wsf_write(root, "outabs/secret", "x", 1, NULL, &e) == SBX_EINVAL);
    CHECK(wsf_write(root, "etc/sbx-test", "x", 1, NULL, &e) == SBX_EINVAL);
    CHECK(!exists("outside/new.txt"));
    char *s = slurp_at("outside/secret");
    CHECK(s && !strcmp(s, "secret"));
    free(s);
    /* writing at the link's own name replaces the link, never its target */
    CHECK(wsf_write(root, "host", "h", 1, NULL, &e) == SBX_OK);
    struct stat st;
    char p[600];
    snprintf(p, sizeof p, "%s/work/host", g_base);
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(wsf_mkdir(root, "out/sub", &e) == SBX_EINVAL);
    CHECK(!exists("outside/sub"));
    cJSON *l = NULL;
    CHECK(wsf_list(root, "out", 1, &l, &e) == SBX_EINVAL);
    CHECK(wsf_list(root, "self", 1, &l, &e) == SBX_EINVAL);
    CHECK(l == NULL);
    char *z = NULL;
    CHECK(wsf_zip(root, "outabs", 0, &z, &len, &e) == SBX_EINVAL);
    CHECK(wsf_rename(root, "out/secret", "stolen", false, &e) == SBX_EINVAL);
    CHECK(wsf_rename(root, "inside.txt", "out/inside.txt", false, &e) == SBX_EINVAL);
    CHECK(wsf_rename(root, "inside.txt", "out", true, &e) == SBX_ECONFLICT); /* the link's name */
    CHECK(exists("work/inside.txt") && !exists("outside/inside.txt"));
    CHECK(wsf_copy(root, "out/secret", "stolen", NULL, &e) == SBX_EINVAL);
    CHECK(wsf_copy(root, "outabs", "stolen", NULL, &e) == SBX_EINVAL);
    CHECK(wsf_copy(root, "inside.txt", "out/copy", NULL, &e) == SBX_EINVAL);
    CHECK(!exists("work/stolen") && !exists("outside/copy"));
    CHECK(wsf_remove(root, "out/secret", &e) == SBX_EINVAL);
    CHECK(exists("outside/secret"));
    /* listing leaves links out; removing a link removes the link only */
    CHECK(wsf_list(root, "", 1, &l, &e) == SBX_OK);
    char *txt = cJSON_PrintUnformatted(l);
    CHECK(txt && strstr(txt, "\"inside.txt\"") && !strstr(txt, "\"etc\"") &&
          !strstr(txt, "\"out\"") && !strstr(txt, "\"self\""));
    free(txt);
    cJSON_Delete(l);
    CHECK(wsf_remove(root, "out", &e) == SBX_OK && !exists("work/out"));
    CHECK(exists("outside/secret"));
    /* a tree holding a link to outside: removed whole, outside intact */
    CHECK(wsf_mkdir(root, "t/u", &e) == SBX_OK);
    plant(g_out, "work/t/u/away");
    CHECK(wsf_copy(root, "t", "t2", NULL, &e) == SBX_EINVAL && strstr(e.msg, "t2/u/away"));
    CHECK(!exists("work/t2"));
    CHECK(wsf_remove(root, "t", &e) == SBX_OK && !exists("work/t"));
    s = slurp_at("outside/secret");
    CHECK(s && !strcmp(s, "secret"));
    free(s);
    const char *links[] = {"etc", "outabs", "self", "tolocal", "inside.txt", "host"};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        CHECK(wsf_remove(root, links[i], &e) == SBX_OK);
}

static void test_write_read_list(int root) {
    sbx_err e;
    CHECK(wsf_write(root, "a/b/c.txt", "hello", 5, NULL, &e) == SBX_OK);
    char *s = slurp_at("work/a/b/c.txt");
    CHECK(s && !strcmp(s, "hello"));
    free(s);
    CHECK(wsf_write(root, "a/b/c.txt", "bye", 3, NULL, &e) == SBX_OK); /* replaces */
    char *data = NULL;
    size_t len = 0;
    bool dir = true;
    CHECK(wsf_read(root, "a/b/c.txt", 0, &data, &len, &dir, &e) == SBX_OK && !dir && len == 3 &&
          !memcmp(data, "bye", 3));
    free(data);
    data = NULL;
    CHECK(wsf_read(root, "a/b/c.txt", 2, &data, &len, &dir, &e) == SBX_ETOOLARGE);
    CHECK(wsf_read(root, "a", 0, &data, &len, &dir, &e) == SBX_OK && dir && !data);
    CHECK(wsf_read(root, "nope", 0, &data, &len, &dir, &e) == SBX_ENOTFOUND);
    CHECK(wsf_write(root, "a/b", "x", 1, NULL, &e) == SBX_ECONFLICT); /* a directory */
    CHECK(wsf_write(root, "a/b/c.txt/d", "x", 1, NULL, &e) ==
          SBX_ECONFLICT); /* a file on the way */
    CHECK(wsf_write(root, "empty", "", 0, NULL, &e) == SBX_OK);
    /* a FIFO is refused at once, never waited on */
    char p[600];
    snprintf(p, sizeof p, "%s/work/fifo", g_base);
    CHECK(mkfifo(p, 0644) == 0);
    CHECK(wsf_read(root, "fifo", 0, &data, &len, &dir, &e) == SBX_EINVAL);
    CHECK(wsf_copy(root, "fifo", "fifo2", NULL, &e) == SBX_EINVAL);

    cJSON *l = NULL;
    CHECK(wsf_list(root, "", 1, &l, &e) == SBX_OK);
    CHECK(cJSON_GetArraySize(l) == 2); /* a (dir), empty; not the fifo */
    cJSON *first = cJSON_GetArrayItem(l, 0);
    CHECK(!strcmp(cJSON_GetObjectItem(first, "path")->valuestring, "a"));
    CHECK(!strcmp(cJSON_GetObjectItem(first, "type")->valuestring, "dir"));
    const char *mt = cJSON_GetObjectItem(first, "mtime")->valuestring;
    CHECK(strlen(mt) == 24 && mt[10] == 'T' && mt[23] == 'Z');
    cJSON_Delete(l);
    CHECK(wsf_list(root, "", 3, &l, &e) == SBX_OK);
    CHECK(cJSON_GetArraySize(l) == 4);
    cJSON *c = cJSON_GetArrayItem(l, 2);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "path")->valuestring, "a/b/c.txt"));
    CHECK(cJSON_GetObjectItem(c, "size")->valueint == 3);
    CHECK(!strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "file"));
    cJSON_Delete(l);
    CHECK(wsf_list(root, "a", 1, &l, &e) == SBX_OK && cJSON_GetArraySize(l) == 1 &&
          !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "path")->valuestring, "a/b"));
    cJSON_Delete(l);
    CHECK(wsf_list(root, "a/b/c.txt", 1, &l, &e) == SBX_OK && cJSON_GetArraySize(l) == 1);
    cJSON_Delete(l);
    CHECK(wsf_list(root, "", 0, &l, &e) == SBX_EINVAL);
    CHECK(wsf_list(root, "", WSF_MAX_DEPTH + 1, &l, &e) == SBX_EINVAL);
    CHECK(wsf_list(root, "zz", 1, &l, &e) == SBX_ENOTFOUND);
    CHECK(wsf_remove(root, "fifo", &e) == SBX_OK);
}

static void test_limits(int root) {
    sbx_err e;
    wsf_limits lim = {.file_max = 100, .quota = 0};
    char big[300];
    memset(big, 'q', sizeof big);
    CHECK(wsf_write(root, "big", big, 101, &lim, &e) == SBX_ETOOLARGE &&
          strstr(e.msg, "PYTHON_FILE_MAX_MB"));
    CHECK(!exists("work/big"));
    CHECK(wsf_write(root, "big", big, 100, &lim, &e) == SBX_OK);
    int64_t used = wsf_usage(root, &e);
    CHECK(used >= 100);
    lim = (wsf_limits){.file_max = 0, .quota = used + 50};
    CHECK(wsf_write(root, "more", big, 51, &lim, &e) == SBX_ENOSPACE &&
          strstr(e.msg, "PYTHON_SESSION_QUOTA_MB"));
    CHECK(!exists("work/more"));
    CHECK(wsf_write(root, "more", big, 50, &lim, &e) == SBX_OK);
    CHECK(wsf_write(root, "big", big, 90, &lim, &e) == SBX_OK); /* replacing counts the old */
    CHECK(wsf_copy(root, "big", "big2", &lim, &e) == SBX_ENOSPACE && !exists("work/big2"));
    CHECK(wsf_remove(root, "big", &e) == SBX_OK && wsf_remove(root, "more", &e) == SBX_OK);
    CHECK(wsf_usage(root, &e) == used - 100);
}

static void test_ops(int root) {
    sbx_err e;
    CHECK(wsf_mkdir(root, "m/n/o", &e) == SBX_OK && exists("work/m/n/o"));
    CHECK(wsf_mkdir(root, "m/n/o", &e) == SBX_OK); /* already there: fine */
    CHECK(wsf_mkdir(root, "a/b/c.txt/x", &e) == SBX_ECONFLICT);
    CHECK(wsf_rename(root, "a/b/c.txt", "m/c2.txt", false, &e) == SBX_OK);
    CHECK(!exists("work/a/b/c.txt") && exists("work/m/c2.txt"));
    CHECK(wsf_rename(root, "m/c2.txt", "m/n", true, &e) == SBX_OK && exists("work/m/n/c2.txt"));
    CHECK(wsf_rename(root, "m/n/c2.txt", "empty", false, &e) == SBX_ECONFLICT);
    CHECK(wsf_rename(root, "nope", "x", false, &e) == SBX_ENOTFOUND);
    CHECK(wsf_rename(root, "empty", "no/such/dir", false, &e) == SBX_ENOTFOUND);
    CHECK(wsf_rename(root, "m", "m/n/o/m", false, &e) == SBX_EINVAL);
    CHECK(wsf_copy(root, "m", "m2", NULL, &e) == SBX_OK && exists("work/m2/n/c2.txt") &&
          exists("work/m/n/c2.txt"));
    char *s = slurp_at("work/m2/n/c2.txt");
    CHECK(s && !strcmp(s, "bye"));
    free(s);
    CHECK(wsf_copy(root, "m/n/c2.txt", "m2/n/c3.txt", NULL, &e) == SBX_OK);
    CHECK(wsf_copy(root, "m", "m2", NULL, &e) == SBX_ECONFLICT && exists("work/m2/n/c3.txt"));
    CHECK(wsf_copy(root, "m", "m/inner", NULL, &e) == SBX_EINVAL);
    CHECK(wsf_remove(root, "m2", &e) == SBX_OK && !exists("work/m2"));
    CHECK(wsf_remove(root, "m2", &e) == SBX_ENOTFOUND);
    CHECK(wsf_remove(root, "", &e) == SBX_EINVAL);
    CHECK(wsf_remove(root, "m", &e) == SBX_OK && wsf_remove(root, "a", &e) == SBX_OK);
    CHECK(wsf_remove(root, "empty", &e) == SBX_OK);
}

static void test_deep(int root) {
    sbx_err e;
    char path[WSF_PATH_MAX + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(path, i ? "/d" : "d");
    CHECK(wsf_write(root, path, "deep", 4, NULL, &e) == SBX_OK);
    cJSON *l = NULL;
    CHECK(wsf_list(root, "", WSF_MAX_DEPTH, &l, &e) == SBX_OK);
    CHECK(cJSON_GetArraySize(l) == WSF_MAX_DEPTH);
    cJSON_Delete(l);
    CHECK(wsf_remove(root, "d", &e) == SBX_OK && !exists("work/d"));
}

static void test_zip(int root) {
    sbx_err e;
    char text[5000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "abcdefgh\n"[i % 9];
    CHECK(wsf_write(root, "z/readme.txt", text, sizeof text, NULL, &e) == SBX_OK);
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)i;
    CHECK(wsf_write(root, "z/sub/bin.dat", bin, sizeof bin, NULL, &e) == SBX_OK);
    CHECK(wsf_write(root, "z/sub/ünïcode.txt", "u", 1, NULL, &e) == SBX_OK);
    CHECK(wsf_mkdir(root, "z/emptydir", &e) == SBX_OK);
    plant("/etc/passwd", "work/z/sub/passwd");
    char *zip = NULL;
    size_t len = 0;
    CHECK(wsf_zip(root, "z", 0, &zip, &len, &e) == SBX_OK && zip && len > 22);
    CHECK(len < sizeof text); /* deflated */
    char zp[400];
    snprintf(zp, sizeof zp, "%s/z.zip", g_base);
    FILE *f = fopen(zp, "wb");
    CHECK(f && fwrite(zip, 1, len, f) == len);
    if (f)
        fclose(f);
    free(zip);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 -m zipfile -t %s >/dev/null", zp);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
             "n = sorted(z.namelist()); "
             "assert n == [\"emptydir/\", \"readme.txt\", \"sub/\", \"sub/bin.dat\", "
             "\"sub/\\u00fcn\\u00efcode.txt\"], n; "
             "assert z.read(\"sub/bin.dat\") == bytes(range(256)); "
             "assert z.read(\"readme.txt\") == (b\"abcdefgh\\n\" * 556)[:5000]; "
             "assert z.getinfo(\"readme.txt\").compress_type == zipfile.ZIP_DEFLATED' %s",
             zp);
    CHECK(system(cmd) == 0);
    /* the root zipped, and the caps */
    CHECK(wsf_zip(root, "", 0, &zip, &len, &e) == SBX_OK);
    free(zip);
    zip = NULL;
    CHECK(wsf_zip(root, "z", 1000, &zip, &len, &e) == SBX_ETOOLARGE && !zip);
    CHECK(wsf_zip(root, "z/readme.txt", 0, &zip, &len, &e) == SBX_ECONFLICT);
    CHECK(wsf_remove(root, "z", &e) == SBX_OK);
    unlink(zp);
}

int main(void) {
    test_clean();
    if (!mkdtemp(g_base))
        return CHECK_SKIP("no temporary directory");
    snprintf(g_work, sizeof g_work, "%s/work", g_base);
    snprintf(g_out, sizeof g_out, "%s/outside", g_base);
    mkdir(g_work, 0755);
    mkdir(g_out, 0755);
    put("outside/secret", "secret");
    int root = open(g_work, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(root >= 0);
    sbx_err e;
    int probe = wsf_open(root, "", O_PATH | O_DIRECTORY, 0, &e);
    if (probe < 0 && e.code == SBX_EUNAVAIL) {
        sbx_rmtree(g_base);
        return CHECK_SKIP("no openat2 on this kernel");
    }
    close(probe);
    test_links(root);
    test_write_read_list(root);
    test_limits(root);
    test_ops(root);
    test_deep(root);
    test_zip(root);
    close(root);
    sbx_rmtree(g_base);
    return CHECK_DONE();
}
