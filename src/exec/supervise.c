/* supervise.c -- a child's supervisor thread: answers each seccomp notification with EPERM
 * (or lets a harmless query through) and records a violation, and watches the disk quota of
 * the run's dirs; plus the violations and their explanations. See sandbox_int.h. */
#define _GNU_SOURCE
#include "sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <dirent.h>
#include <termios.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sweep.h"
#include "../common/util.h"
#include "layers.h"
#include "zygote_proto.h"

void sbxi_add_viol(sandbox_child *c, const char *kind, const char *detail) {
    pthread_mutex_lock(&c->mu);
    bool dup = false;
    for (int i = 0; i < c->nv; i++)
        if (!strcmp(c->v[i].kind, kind) && !strcmp(c->v[i].detail, detail))
            dup = true;
    if (!dup) {
        if (c->nv < SBX_MAX_VIOL) {
            snprintf(c->v[c->nv].kind, sizeof c->v[c->nv].kind, "%s", kind);
            snprintf(c->v[c->nv].detail, sizeof c->v[c->nv].detail, "%s", detail);
            c->nv++;
        } else {
            c->lost++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Bytes used beneath dirfd (no symlinks followed), adding to *entries; stops early when over
 * `cap` bytes or 100000 entries. Takes ownership of dirfd. */
static int64_t du_at(int dirfd, int depth, int64_t *entries, int64_t cap) {
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) && sum <= cap && *entries < 100000) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        (*entries)++;
        sum += (int64_t)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode) && depth < 64) {
            int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += du_at(fd, depth + 1, entries, cap - sum);
        }
    }
    closedir(d);
    return sum;
}

/* Kill the run when its dirs hold more than the quota (or absurdly many entries). */
static void check_disk(sandbox_child *c) {
    int64_t sum = 0, entries = 0;
    for (int i = 0; i < 2; i++) {
        int fd = c->dirs[i] ? open(c->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (fd >= 0)
            sum += du_at(fd, 0, &entries, c->disk_bytes - sum);
    }
    if (sum > c->disk_bytes || entries >= 100000) {
        char det[160];
        snprintf(det, sizeof det, "disk quota of %lld MiB (work dir + /tmp) exceeded",
                 (long long)(c->disk_bytes >> 20));
        sbxi_add_viol(c, "limit", det);
        atomic_store(&c->over_quota, true);
        atomic_store(&c->killed, true);
        if (c->pidfd >= 0) /* not sandbox_kill: the owner thread may be reaping right now */
            (void)syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    }
}

/* The supervisor thread of one child: answers seccomp notifications, watches the disk quota. */
void *sbxi_supervise(void *arg) {
    sandbox_child *c = arg;
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    if (seccomp_notify_alloc(&req, &resp) != 0)
        return NULL;
    int64_t next_du = sbx_now_ms() + 300;
    bool notify_open = c->notifyfd >= 0;
    while (!atomic_load(&c->stop)) {
        if (sbx_now_ms() >= next_du) {
            check_disk(c);
            next_du = sbx_now_ms() + 100;
        }
        struct pollfd p[2] = {{.fd = notify_open ? c->notifyfd : -1, .events = POLLIN},
                              {.fd = c->wakefd, .events = POLLIN}};
        int r = poll(p, 2, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents)
            break;
        if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            notify_open = false; /* every task of the run is gone */
            continue;
        }
        if (r == 0)
            continue;
        memset(req, 0, sizeof *req);
        if (seccomp_notify_receive(c->notifyfd, req) != 0)
            continue; /* the caller died meanwhile */
        memset(resp, 0, sizeof *resp);
        resp->id = req->id;
        char kind[16], det[160];
        sbxi_describe(req, kind, sizeof kind, det, sizeof det);
        unsigned long long a0 = req->data.args[0];
        if (req->data.nr == SCMP_SYS(personality) &&
            (a0 == 0xffffffffull || (a0 & 0xffffffffull) == 0)) {
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; /* a query / PER_LINUX is fine */
        } else {
            resp->error = -EPERM;
            sbxi_add_viol(c, kind, det);
        }
        (void)seccomp_notify_respond(c->notifyfd, resp);
    }
    seccomp_notify_free(req, resp);
    return NULL;
}

cJSON *sandbox_violations(sandbox_child *c) {
    cJSON *a = cJSON_CreateArray();
    if (!a || !c)
        return a;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nv; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "kind", c->v[i].kind);
        cJSON_AddStringToObject(o, "detail", c->v[i].detail);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&c->mu);
    return a;
}

static const char *kind_line(const char *kind) {
    if (!strcmp(kind, "network"))
        return "network access is disabled";
    if (!strcmp(kind, "process"))
        return "inspecting or controlling other processes is not allowed";
    if (!strcmp(kind, "filesystem"))
        return "the file system outside the work directory and /tmp is read-only";
    if (!strcmp(kind, "limit"))
        return "a resource limit stopped the program";
    return "this kernel interface is not available in the sandbox";
}

char *sandbox_explain(sandbox_child *c) {
    sbx_buf b;
    sbx_buf_init(&b, 16384);
    if (c) {
        pthread_mutex_lock(&c->mu);
        static const char *const kinds[] = {"network", "filesystem", "process", "kernel", "limit"};
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            int n = 0;
            for (int i = 0; i < c->nv; i++) {
                if (strcmp(c->v[i].kind, kinds[k]))
                    continue;
                if (n == 0)
                    sbx_buf_addf(&b, "sandbox: %s; %s", kind_line(kinds[k]), c->v[i].detail);
                else if (n < 4)
                    sbx_buf_addf(&b, ", %s", c->v[i].detail);
                n++;
            }
            if (n > 4)
                sbx_buf_addf(&b, " (and %d more)", n - 4);
            if (n && !strcmp(kinds[k], "limit"))
                sbx_buf_addf(&b, "\n");
            else if (n)
                sbx_buf_addf(&b, " %s refused\n", n == 1 ? "was" : "were");
        }
        pthread_mutex_unlock(&c->mu);
    }
    char *s = sbx_buf_take(&b, NULL);
    sbx_buf_free(&b);
    return s ? s : strdup("");
}

char *sandbox_explain_output(const char *err, size_t len) {
    static const char *const marks[] = {"[Errno 30] Read-only file system",
                                        "[Errno 13] Permission denied"};
    if (!err)
        return NULL;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (memmem(err, len, marks[i], strlen(marks[i])))
            return strdup("sandbox: the file system is read-only outside the work directory "
                          "(" SANDBOX_WORK_PATH ") and /tmp; write files there\n");
    return NULL;
}
