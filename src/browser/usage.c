/* usage.c -- PSS and CPU time of process groups from /proc (see usage.h). */
#define _GNU_SOURCE
#include "usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a small /proc file into `buf` (NUL-terminated); bytes read or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == cap - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* From /proc/PID/stat: the process group, utime+stime and cutime+cstime (ticks). */
static int read_stat(pid_t pid, pid_t *pgrp, long long *self, long long *children) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (slurp(path, buf, sizeof buf) <= 0)
        return -1;
    const char *p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
    if (!p)
        return -1;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime cutime cstime */
    char state;
    int ppid, pg;
    long long f[12];
    if (sscanf(p + 2, "%c %d %d %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
               &state, &ppid, &pg, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8],
               &f[9], &f[10], &f[11]) != 15)
        return -1;
    *pgrp = pg;
    *self = f[8] + f[9];
    *children = f[10] + f[11];
    return 0;
}

static int64_t read_pss(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    if (slurp(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, "\nPss:");
    long long kb = 0;
    if (p && sscanf(p + 5, "%lld", &kb) == 1)
        return (int64_t)kb * 1024;
    return 0;
}

int br_usage_of_groups(const pid_t *pgids, br_usage *out, int n) {
    memset(out, 0, sizeof *out * (size_t)n);
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    long tick = sysconf(_SC_CLK_TCK);
    if (tick <= 0)
        tick = 100;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        pid_t pg;
        long long self, children;
        if (read_stat((pid_t)pid, &pg, &self, &children) != 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (pgids[i] <= 0 || pgids[i] != pg)
                continue;
            out[i].procs++;
            out[i].pss_bytes += read_pss((pid_t)pid);
            long long ticks = self + (pid == pgids[i] ? children : 0);
            out[i].cpu_ms += ticks * 1000 / tick;
            break;
        }
    }
    closedir(d);
    return 0;
}
