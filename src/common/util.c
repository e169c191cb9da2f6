/* util.c -- ids, capped buffers, clocks, file and process helpers (see util.h). */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sbx_random_bytes(void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int sbx_random_id(char out[SBX_ID_LEN]) {
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";
    if (sbx_random_bytes(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
    return 0;
}

bool sbx_const_eq(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]) | (unsigned char)(i >= la);
    return diff == 0;
}

void sbx_buf_init(sbx_buf *b, size_t max) {
    memset(b, 0, sizeof *b);
    b->max = max;
}

int sbx_buf_add(sbx_buf *b, const void *p, size_t n) {
    int rc = 0;
    if (n > b->max - b->len) {
        n = b->max - b->len;
        b->truncated = true;
        rc = -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return rc;
}

int sbx_buf_addf(sbx_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return sbx_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sbx_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

char *sbx_buf_take(sbx_buf *b, size_t *len) {
    if (!b->data && sbx_buf_add(b, "", 0) < 0)
        return NULL;
    char *d = b->data;
    if (len)
        *len = b->len;
    size_t max = b->max;
    sbx_buf_init(b, max);
    return d;
}

void sbx_buf_free(sbx_buf *b) {
    if (!b)
        return;
    free(b->data);
    sbx_buf_init(b, b->max);
}

int64_t sbx_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sbx_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sbx_deadline_in(int64_t ms) {
    return sbx_now_ms() + (ms > 0 ? ms : 0);
}

int64_t sbx_left_ms(int64_t deadline) {
    int64_t left = deadline - sbx_now_ms();
    return left > 0 ? left : 0;
}

int sbx_cond_init_mono(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

bool sbx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline) {
    if (sbx_now_ms() >= deadline)
        return false;
    /* The deadline is on CLOCK_MONOTONIC in ms, as is the cv's clock. */
    struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
    pthread_cond_timedwait(cv, mu, &ts);
    return sbx_now_ms() < deadline;
}

int sbx_mkdir_p(const char *path, mode_t mode) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int rm_at(int dirfd, const char *name, dev_t dev) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
    if (st.st_dev != dev) /* a mount point inside: never cross it */
        return -1;
    /* an empty directory goes without a descriptor (a server short of them still cleans up) */
    if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* a sandboxed run may leave directories without write/search permission */
    fchmod(fd, 0700);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0, err = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (rm_at(fd, e->d_name, dev) < 0 && rc == 0)
            rc = -1, err = errno; /* the first failure says why (not the ENOTEMPTY it causes) */
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -1, err = errno;
    errno = err;
    return rc;
}

int sbx_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    return rm_at(AT_FDCWD, path, st.st_dev);
}

static int copy_file(const char *src, const char *dst, mode_t mode) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n, w = 0;
    int rc = 0, err = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < n; off += w) /* a short write: the next one says why */
            if ((w = write(out, buf + off, (size_t)(n - off))) < 0) {
                rc = -1, err = errno;
                break;
            }
    if (rc == 0 && n < 0)
        rc = -1, err = errno;
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = -1, err = errno;
    errno = err;
    return rc;
}

int sbx_copytree(const char *src, const char *dst) {
    struct stat st;
    if (lstat(src, &st) < 0)
        return -1;
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof target - 1);
        if (n < 0)
            return -1;
        target[n] = '\0';
        return symlink(target, dst);
    }
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, st.st_mode);
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (mkdir(dst, st.st_mode & 07777) < 0 && errno != EEXIST)
        return -1;
    DIR *d = opendir(src);
    if (!d)
        return -1;
    int rc = 0, err = 0;
    struct dirent *e;
    char s[PATH_MAX], t[PATH_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(s, sizeof s, "%s/%s", src, e->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", dst, e->d_name) >= (int)sizeof t) {
            rc = -1, err = err ? err : ENAMETOOLONG;
        } else if (sbx_copytree(s, t) < 0) {
            rc = -1, err = err ? err : errno; /* the first failure says why */
        }
    }
    closedir(d);
    errno = err;
    return rc;
}

char *sbx_read_file(const char *path, size_t max, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    sbx_buf b;
    sbx_buf_init(&b, max);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        if (sbx_buf_add(&b, chunk, (size_t)n) < 0)
            break;
    close(fd);
    if (n < 0) {
        sbx_buf_free(&b);
        return NULL;
    }
    return sbx_buf_take(&b, len);
}

char *sbx_which(const char *name) {
    if (!name || !*name)
        return NULL;
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char cand[PATH_MAX];
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len && snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, name) < (int)sizeof cand &&
            access(cand, X_OK) == 0)
            return strdup(cand);
        p += len + (colon ? 1 : 0);
    }
    return NULL;
}

void sbx_kill_group(pid_t pgid) {
    if (pgid <= 1)
        return;
    kill(-pgid, SIGKILL);
    kill(pgid, SIGKILL);
    while (waitpid(pgid, NULL, 0) < 0 && errno == EINTR)
        ;
}

void sbx_close_fds_from(int lowfd, int keep) {
#ifdef SYS_close_range
    if (keep < lowfd) {
        if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0)
            return;
    } else {
        if ((keep == lowfd || syscall(SYS_close_range, lowfd, keep - 1, 0) == 0) &&
            syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
            return;
    }
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = lowfd; fd < max; fd++)
        if (fd != keep)
            close(fd);
}
