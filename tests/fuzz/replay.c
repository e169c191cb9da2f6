/* replay.c -- the main() of a fuzz target outside a libFuzzer build: runs
 * LLVMFuzzerTestOneInput once over every file named on the command line, or every file of a
 * directory named there (its corpus), so the seeds and every regression input run as an
 * ordinary test in the plain, ASan and TSan builds. Exits 0 after the last input; a bug the
 * target asserts or a sanitizer reports ends the process first. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_one(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int inputs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_one(argv[i]) != 0)
                return 1;
            inputs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 1;
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));) {
            if (de->d_name[0] == '.')
                continue;
            char **grown = realloc(names, (n + 1) * sizeof *names);
            if (!grown)
                return 1;
            names = grown;
            if (asprintf(&names[n], "%s/%s", argv[i], de->d_name) < 0)
                return 1;
            n++;
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            if (run_one(names[k]) != 0)
                return 1;
            inputs++;
            free(names[k]);
        }
        free(names);
    }
    printf("%d inputs, no failure\n", inputs);
    return inputs > 0 ? 0 : 1;
}
