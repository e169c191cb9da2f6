/* sweep.c -- owner records and the start-up sweep (see sweep.h). */
#define _GNU_SOURCE
#include "sweep.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

unsigned long long sbx_proc_starttime(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *s = sbx_read_file(path, 4096, NULL);
    if (!s)
        return 0;
    /* comm may contain spaces and parentheses: fields resume after the last ')' */
    char *p = strrchr(s, ')');
    unsigned long long start = 0;
    if (p) {
        p++;
        for (int field = 3; field < 22 && p; field++)
            p = strchr(p + 1, ' ');
        if (p)
            start = strtoull(p + 1, NULL, 10);
    }
    free(s);
    return start;
}

int sbx_owner_record(const char *dir, pid_t pid) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.owner", dir) >= (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    fprintf(f, "%d %llu\n", (int)pid, sbx_proc_starttime(pid));
    return fclose(f) == 0 ? 0 : -1;
}

int sbx_sweep_dir(const char *parent) {
    DIR *d = opendir(parent);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s/.owner", parent, e->d_name) >= (int)sizeof path)
            continue;
        char *owner = sbx_read_file(path, 128, NULL);
        int pid = 0;
        unsigned long long start = 0;
        if (owner && sscanf(owner, "%d %llu", &pid, &start) == 2 && pid > 1 && start &&
            sbx_proc_starttime(pid) == start) {
            LOG_I("sweep", "killing leftover process group %d of %s", pid, e->d_name);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        free(owner);
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        if (sbx_rmtree(path) == 0)
            removed++;
        else
            LOG_W("sweep", "could not remove leftover %s", path);
    }
    closedir(d);
    return removed;
}
