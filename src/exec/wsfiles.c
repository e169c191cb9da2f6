/* wsfiles.c -- the work directory's file operations, every path resolved by the kernel beneath
 * the directory's descriptor (openat2) and every walk done with *at() calls on single names
 * that never follow a link (see wsfiles.h for the rules and codes): paths, the shared walk,
 * list, usage, write, read, rename, remove, mkdir. Zip and copy are in wsfiles_tree.c. */
#define _GNU_SOURCE
#include "wsfiles_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

#define RESOLVE_FLAGS                                                                              \
    (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* ---- paths ---- */

sbx_code wsf_path_clean(const char *path, size_t len, bool root_ok, char *out, sbx_err *e) {
    if (!path)
        path = "", len = 0;
    if (memchr(path, '\0', len))
        return sbx_fail(e, SBX_EINVAL, "path '%.200s' contains a NUL byte", path);
    if (len > WSF_PATH_MAX)
        return sbx_fail(e, SBX_EINVAL, "path '%.64s...' is longer than %d bytes", path,
                        WSF_PATH_MAX);
    if (len && path[0] == '/')
        return sbx_fail(e, SBX_EINVAL,
                        "path '%.200s' is absolute: give it relative to the session's work "
                        "directory",
                        path);
    char tmp[WSF_PATH_MAX + 1];
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 2 && path[i] == '.' && path[i + 1] == '.')
            return sbx_fail(e, SBX_EINVAL,
                            "path '%.200s' contains '..': paths stay inside the work directory",
                            path);
        if (n > 255)
            return sbx_fail(e, SBX_EINVAL, "path '%.200s' has a name longer than 255 bytes", path);
        if (n && !(n == 1 && path[i] == '.')) {
            if (o)
                tmp[o++] = '/';
            memcpy(tmp + o, path + i, n);
            o += n;
        }
        i = j + 1;
    }
    tmp[o] = '\0';
    if (!o && !root_ok)
        return sbx_fail(e, SBX_EINVAL,
                        "path '%.200s' names the work directory itself; name a file or "
                        "directory in it",
                        path);
    memcpy(out, tmp, o + 1);
    return SBX_OK;
}

/* Fill `e` for a failed resolution or operation on `path`. */
sbx_code wsfi_path_fail(sbx_err *e, int err, const char *path) {
    const char *p = *path ? path : ".";
    switch (err) {
    case ELOOP:
    case EXDEV:
        return sbx_fail(e, SBX_EINVAL,
                        "path '%.200s' goes through a symbolic link or out of the work "
                        "directory: links are never followed",
                        p);
    case ENOENT:
        return sbx_fail(e, SBX_ENOTFOUND, "no file or directory '%.200s' in the work directory", p);
    case ENOTDIR:
        return sbx_fail(e, SBX_ECONFLICT, "a part of path '%.200s' is a file, not a directory", p);
    case EISDIR:
        return sbx_fail(e, SBX_ECONFLICT, "'%.200s' is a directory", p);
    case EEXIST:
    case ENOTEMPTY:
        return sbx_fail(e, SBX_ECONFLICT, "'%.200s' already exists", p);
    case ENAMETOOLONG:
        return sbx_fail(e, SBX_EINVAL, "path '%.200s' is too long", p);
    case ENXIO:
    case EOPNOTSUPP:
        return sbx_fail(e, SBX_EINVAL, "'%.200s' is not a regular file or directory", p);
    case ENOSYS:
        return sbx_fail(e, SBX_EUNAVAIL,
                        "this kernel has no openat2(2) (Linux 5.6 or later is needed for "
                        "session files)");
    default:
        return sbx_fail_errno(e, err, "'%.200s'", p);
    }
}

/* openat2 beneath `dfd`; -1 with errno set. */
int wsfi_open_beneath(int dfd, const char *rel, int flags, int mode) {
    struct open_how how = {.flags = (unsigned)(flags | O_CLOEXEC), .resolve = RESOLVE_FLAGS};
    if (flags & (O_CREAT | O_TMPFILE))
        how.mode = (unsigned)mode;
    long fd = syscall(SYS_openat2, dfd, *rel ? rel : ".", &how, sizeof how);
    return (int)fd;
}

int wsf_open(int root, const char *path, int flags, int mode, sbx_err *e) {
    int fd = wsfi_open_beneath(root, path, flags, mode);
    if (fd < 0)
        wsfi_path_fail(e, errno, path);
    return fd;
}

/* Split a cleaned, non-empty path into its parent ("" for the root) and last name. */
const char *wsfi_split(const char *path, char parent[WSF_PATH_MAX + 1]) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        parent[0] = '\0';
        return path;
    }
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    return slash + 1;
}

/* ---- ownership: what the server creates belongs to whoever owns the work directory ---- */

wsfi_owner wsfi_owner_of(int root) {
    wsfi_owner o = {0};
    struct stat st;
    if (fstat(root, &st) == 0 && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0)) {
        o.uid = st.st_uid, o.gid = st.st_gid;
        o.chown = true;
    }
    return o;
}

void wsfi_own(const wsfi_owner *o, int fd) {
    if (o->chown && fchown(fd, o->uid, o->gid) != 0) {
        /* nothing to do: the file stays the server's, readable by the code */
    }
}

/* The directory `dir` (cleaned; "" the root) as an O_PATH descriptor; with `create`, missing
 * directories on the way are made. -1 with `e` filled, naming `whole` (the path the caller
 * gave, of which `dir` is the parent). */
int wsfi_open_dir(int root, const char *dir, bool create, const wsfi_owner *ow, const char *whole,
                  sbx_err *e) {
    if (!create || !*dir) {
        int fd = wsfi_open_beneath(root, dir, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
            wsfi_path_fail(e, errno, whole);
        return fd;
    }
    int cur = wsfi_open_beneath(root, "", O_PATH | O_DIRECTORY, 0);
    if (cur < 0)
        wsfi_path_fail(e, errno, whole);
    char name[256];
    for (const char *p = dir; cur >= 0 && *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        memcpy(name, p, n);
        name[n] = '\0';
        int fd = wsfi_open_beneath(cur, name, O_PATH | O_DIRECTORY, 0);
        if (fd < 0 && errno == ENOENT) {
            if (mkdirat(cur, name, 0755) == 0 || errno == EEXIST) {
                int d = wsfi_open_beneath(cur, name, O_RDONLY | O_DIRECTORY, 0);
                if (d >= 0) {
                    wsfi_own(ow, d);
                    close(d);
                }
            }
            fd = wsfi_open_beneath(cur, name, O_PATH | O_DIRECTORY, 0);
        }
        if (fd < 0)
            wsfi_path_fail(e, errno, whole);
        close(cur);
        cur = fd;
        p += n;
        if (*p == '/')
            p++;
    }
    return cur;
}

/* ---- walking ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void wsfi_names_free(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The sorted names in the directory `dfd` (opened O_RDONLY), without ".", ".." and a write's
 * temporary files. At most `cap` names: more is 413, or with `partial` the first `cap` read.
 * Returns 0 (*out to names_free) or -1 with `e` filled. */
int wsfi_read_names(int dfd, const char *path, size_t cap, bool partial, char ***out, size_t *nout,
                    sbx_err *e) {
    int d2 = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
    if (!d) {
        if (d2 >= 0)
            close(d2);
        wsfi_path_fail(e, errno, path);
        return -1;
    }
    rewinddir(d);
    char **v = NULL;
    size_t n = 0, room = 0;
    for (struct dirent *de; (de = readdir(d));) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strncmp(nm, TMP_PREFIX, strlen(TMP_PREFIX)))
            continue;
        if (n >= cap && partial)
            break;
        if (n >= cap) {
            wsfi_names_free(v, n);
            closedir(d);
            sbx_fail(e, SBX_ETOOLARGE, "'%.200s' holds more than %d entries", *path ? path : ".",
                     WSF_MAX_ENTRIES);
            return -1;
        }
        if (n == room) {
            room = room ? room * 2 : 16;
            char **nv = realloc(v, room * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (!(v[n] = strdup(nm)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    *nout = n;
    return 0;
}

/* `prefix` + "/" + `name` (or `name` alone) into `out`; -1 when too long. */
int wsfi_join(char out[WSF_PATH_MAX + 1], const char *prefix, const char *name) {
    int n = snprintf(out, WSF_PATH_MAX + 1, "%s%s%s", prefix, *prefix ? "/" : "", name);
    return n < 0 || n > WSF_PATH_MAX ? -1 : 0;
}

int wsfi_walk_dir(wsfi_walk *w, int dfd, const char *prefix, int depth, wsfi_visit_fn fn,
                  void *arg) {
    char **names;
    size_t n;
    if (wsfi_read_names(dfd, prefix, w->max, false, &names, &n, w->e) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char rel[WSF_PATH_MAX + 1];
        struct stat st;
        if (wsfi_join(rel, prefix, names[i]) != 0) {
            rc = -1;
            sbx_fail(w->e, SBX_ETOOLARGE, "a path under '%.200s' is longer than %d bytes", prefix,
                     WSF_PATH_MAX);
            break;
        }
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile */
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            continue; /* links, FIFOs, sockets: never followed, never listed */
        if (++w->count > w->max) {
            rc = -1;
            sbx_fail(w->e, SBX_ETOOLARGE, "more than %zu files and directories under '%.200s'",
                     w->max, *prefix ? prefix : ".");
            break;
        }
        if ((rc = fn(arg, dfd, names[i], rel, &st)) != 0)
            break;
        if (S_ISDIR(st.st_mode) && depth > 1) {
            int sub = wsfi_open_beneath(dfd, names[i], O_RDONLY | O_DIRECTORY, 0);
            if (sub < 0) {
                if (errno == ENOENT)
                    continue;
                rc = -1;
                wsfi_path_fail(w->e, errno, rel);
                break;
            }
            rc = wsfi_walk_dir(w, sub, rel, depth - 1, fn, arg);
            close(sub);
        }
    }
    wsfi_names_free(names, n);
    return rc;
}

/* ---- list ---- */

static void iso_time(char out[40], const struct timespec *ts) {
    struct tm tm;
    time_t t = ts->tv_sec;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%03dZ", (int)(ts->tv_nsec / 1000000) % 1000);
}

static cJSON *entry_json(const char *rel, const struct stat *st) {
    cJSON *o = cJSON_CreateObject();
    char when[40];
    iso_time(when, &st->st_mtim);
    cJSON_AddStringToObject(o, "path", rel);
    cJSON_AddNumberToObject(o, "size", S_ISDIR(st->st_mode) ? 0 : (double)st->st_size);
    cJSON_AddStringToObject(o, "type", S_ISDIR(st->st_mode) ? "dir" : "file");
    cJSON_AddStringToObject(o, "mtime", when);
    return o;
}

static int list_visit(void *arg, int dfd, const char *name, const char *rel,
                      const struct stat *st) {
    cJSON_AddItemToArray((cJSON *)arg, entry_json(rel, st));
    return 0;
}

sbx_code wsf_list(int root, const char *path, int depth, cJSON **out, sbx_err *e) {
    if (depth < 1 || depth > WSF_MAX_DEPTH)
        return sbx_fail(e, SBX_EINVAL, "depth must be between 1 and %d", WSF_MAX_DEPTH);
    int fd = wsfi_open_beneath(root, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0 && errno == ENOTDIR) { /* a file: list that one */
        struct stat st;
        int f = wsf_open(root, path, O_PATH, 0, e);
        if (f < 0)
            return e->code;
        int rc = fstat(f, &st);
        close(f);
        if (rc != 0 || !S_ISREG(st.st_mode))
            return wsfi_path_fail(e, rc != 0 ? errno : ENXIO, path);
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, entry_json(path, &st));
        *out = arr;
        return SBX_OK;
    }
    if (fd < 0)
        return wsfi_path_fail(e, errno, path);
    cJSON *arr = cJSON_CreateArray();
    wsfi_walk w = {.max = WSF_MAX_ENTRIES, .max_depth = depth, .e = e};
    int rc = wsfi_walk_dir(&w, fd, path, depth, list_visit, arr);
    close(fd);
    if (rc != 0) {
        cJSON_Delete(arr);
        return e->code;
    }
    *out = arr;
    return SBX_OK;
}

/* ---- usage ---- */

static int usage_visit(void *arg, int dfd, const char *name, const char *rel,
                       const struct stat *st) {
    if (S_ISREG(st->st_mode))
        *(int64_t *)arg += st->st_size;
    return 0;
}

int64_t wsf_usage(int root, sbx_err *e) {
    int fd = wsf_open(root, "", O_RDONLY | O_DIRECTORY, 0, e);
    if (fd < 0)
        return -1;
    int64_t total = 0;
    wsfi_walk w = {.max = WSF_MAX_ENTRIES * 5, .max_depth = WSF_MAX_DEPTH, .e = e};
    int rc = wsfi_walk_dir(&w, fd, "", WSF_MAX_DEPTH, usage_visit, &total);
    close(fd);
    if (rc != 0) {
        sbx_fail(e, SBX_ENOSPACE,
                 "the work directory holds too many files or too deep a tree to measure its "
                 "quota: remove some");
        return -1;
    }
    return total;
}

/* Check that adding `add` bytes (replacing `old`) keeps the root within `lim`. */
sbx_code wsfi_check_quota(int root, const wsf_limits *lim, int64_t add, int64_t old, sbx_err *e) {
    if (!lim || lim->quota <= 0)
        return SBX_OK;
    int64_t used = wsf_usage(root, e);
    if (used < 0)
        return e->code;
    if (used - old + add > lim->quota)
        return sbx_fail(e, SBX_ENOSPACE,
                        "the session's files would take %lld bytes, over its quota of %lld bytes "
                        "(PYTHON_SESSION_QUOTA_MB): remove files first",
                        (long long)(used - old + add), (long long)lim->quota);
    return SBX_OK;
}

/* ---- write ---- */

int wsfi_write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* A fresh temporary name in `dfd`, created O_EXCL: its descriptor (and name in `tmp`). */
static int make_tmp(int dfd, char tmp[64]) {
    for (int tries = 0; tries < 8; tries++) {
        char id[SBX_ID_LEN];
        if (sbx_random_id(id) != 0)
            return -1;
        snprintf(tmp, 64, TMP_PREFIX "%.16s", id);
        int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

sbx_code wsf_write(int root, const char *path, const void *data, size_t len, const wsf_limits *lim,
                   sbx_err *e) {
    if (!*path)
        return sbx_fail(e, SBX_EINVAL, "a file path is needed");
    if (lim && lim->file_max > 0 && (int64_t)len > lim->file_max)
        return sbx_fail(e, SBX_ETOOLARGE,
                        "file '%.200s' is %zu bytes, over the cap of %lld bytes "
                        "(PYTHON_FILE_MAX_MB)",
                        path, len, (long long)lim->file_max);
    wsfi_owner ow = wsfi_owner_of(root);
    char parent[WSF_PATH_MAX + 1];
    const char *name = wsfi_split(path, parent);
    int dfd = wsfi_open_dir(root, parent, true, &ow, path, e);
    if (dfd < 0)
        return e->code;
    struct stat st;
    int64_t old = 0;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            close(dfd);
            return wsfi_path_fail(e, EISDIR, path);
        }
        if (S_ISREG(st.st_mode))
            old = st.st_size;
    }
    if (wsfi_check_quota(root, lim, (int64_t)len, old, e) != SBX_OK) {
        close(dfd);
        return e->code;
    }
    char tmp[64];
    int fd = make_tmp(dfd, tmp);
    if (fd < 0) {
        sbx_code c = wsfi_path_fail(e, errno, path);
        close(dfd);
        return c;
    }
    wsfi_own(&ow, fd);
    int err = wsfi_write_all(fd, data, len) != 0 ? (errno ? errno : EIO) : 0;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && renameat(dfd, tmp, dfd, name) != 0)
        err = errno;
    if (err)
        unlinkat(dfd, tmp, 0);
    close(dfd);
    return err ? wsfi_path_fail(e, err, path) : SBX_OK;
}

/* ---- read ---- */

/* Read all of the regular file `fd` (whose size is `size`) into a malloc'd buffer, at most
 * `max` bytes (0: no cap; a file that grew past it fails with errno EFBIG). */
char *wsfi_slurp(int fd, size_t size, size_t max, size_t *len) {
    size_t room = size + 1, n = 0;
    char *buf = malloc(room + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == room) {
            if (max && n > max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, room * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb, room *= 2;
        }
        ssize_t r = read(fd, buf + n, room - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (max && n > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

sbx_code wsf_read(int root, const char *path, size_t max, char **data, size_t *len, bool *is_dir,
                  sbx_err *e) {
    int fd = wsf_open(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, e);
    if (fd < 0)
        return e->code;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return wsfi_path_fail(e, err, path);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        *is_dir = true;
        *data = NULL;
        *len = 0;
        return SBX_OK;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return wsfi_path_fail(e, ENXIO, path);
    }
    if (max && (size_t)st.st_size > max) {
        close(fd);
        return sbx_fail(e, SBX_ETOOLARGE, "file '%.200s' is %lld bytes, over the cap of %zu bytes",
                        path, (long long)st.st_size, max);
    }
    size_t n = 0;
    char *buf = wsfi_slurp(fd, (size_t)st.st_size, max, &n);
    int err = errno;
    close(fd);
    if (!buf)
        return err == EFBIG ? sbx_fail(e, SBX_ETOOLARGE,
                                       "file '%.200s' grew over the cap of %zu bytes", path, max)
                            : wsfi_path_fail(e, err, path);
    *is_dir = false;
    *data = buf;
    *len = n;
    return SBX_OK;
}

/* ---- rename, remove, mkdir ---- */

/* True when `path` is `dir` or lies under it. */
bool wsfi_is_under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

sbx_code wsf_rename(int root, const char *from, const char *to, bool into_dir, sbx_err *e) {
    if (!*from || !*to)
        return sbx_fail(e, SBX_EINVAL, "both path and to must name an entry, not the root");
    char fparent[WSF_PATH_MAX + 1], tparent[WSF_PATH_MAX + 1], moved[WSF_PATH_MAX + 1];
    const char *fname = wsfi_split(from, fparent);
    int fd = wsfi_open_dir(root, fparent, false, NULL, from, e);
    if (fd < 0)
        return e->code;
    struct stat st;
    if (fstatat(fd, fname, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        close(fd);
        return wsfi_path_fail(e, err, from);
    }
    int td = -1;
    const char *tname = NULL;
    const char *target = to;
    if (into_dir && (td = wsfi_open_beneath(root, to, O_PATH | O_DIRECTORY, 0)) >= 0) {
        tname = fname;
        if (wsfi_join(moved, to, fname) != 0) {
            close(fd), close(td);
            return sbx_fail(e, SBX_EINVAL, "path '%.200s/%.200s' is too long", to, fname);
        }
        target = moved;
    } else {
        tname = wsfi_split(to, tparent);
        td = wsfi_open_dir(root, tparent, false, NULL, to, e);
        if (td < 0) {
            close(fd);
            return e->code;
        }
    }
    if (S_ISDIR(st.st_mode) && wsfi_is_under(target, from)) {
        close(fd), close(td);
        return sbx_fail(e, SBX_EINVAL, "cannot move '%.200s' into itself ('%.200s')", from, target);
    }
    int rc = renameat2(fd, fname, td, tname, RENAME_NOREPLACE);
    int err = errno;
    close(fd), close(td);
    if (rc != 0)
        return wsfi_path_fail(e, err, err == EEXIST || err == ENOTEMPTY ? target : from);
    return SBX_OK;
}

/* Remove `name` in `dfd` and, for a directory, everything under it. */
int wsfi_rm_at(int dfd, const char *name, const char *rel, int depth, sbx_err *e) {
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : (wsfi_path_fail(e, errno, rel), -1);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
            return wsfi_path_fail(e, errno, rel), -1;
        return 0;
    }
    if (depth <= 0)
        return sbx_fail(e, SBX_ETOOLARGE, "'%.200s' is more than %d levels deep", rel,
                        RM_MAX_DEPTH),
               -1;
    int sub = wsfi_open_beneath(dfd, name, O_RDONLY | O_DIRECTORY, 0);
    if (sub < 0)
        return wsfi_path_fail(e, errno, rel), -1;
    int rc = 0;
    for (;;) { /* in rounds of at most WSF_MAX_ENTRIES names, until the directory is empty */
        char **names;
        size_t n;
        if (wsfi_read_names(sub, rel, WSF_MAX_ENTRIES, true, &names, &n, e) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            char r2[WSF_PATH_MAX + 1];
            if (wsfi_join(r2, rel, names[i]) != 0)
                snprintf(r2, sizeof r2, "%s", rel);
            rc = wsfi_rm_at(sub, names[i], r2, depth - 1, e);
        }
        wsfi_names_free(names, n);
        if (rc != 0 || n < WSF_MAX_ENTRIES)
            break;
    }
    close(sub);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return wsfi_path_fail(e, errno, rel), -1;
    return rc;
}

sbx_code wsf_remove(int root, const char *path, sbx_err *e) {
    if (!*path)
        return sbx_fail(e, SBX_EINVAL, "the work directory itself cannot be removed");
    char parent[WSF_PATH_MAX + 1];
    const char *name = wsfi_split(path, parent);
    int fd = wsfi_open_dir(root, parent, false, NULL, path, e);
    if (fd < 0)
        return e->code;
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        close(fd);
        return wsfi_path_fail(e, err, path);
    }
    int rc = wsfi_rm_at(fd, name, path, RM_MAX_DEPTH, e);
    close(fd);
    return rc == 0 ? SBX_OK : e->code;
}

sbx_code wsf_mkdir(int root, const char *path, sbx_err *e) {
    if (!*path)
        return SBX_OK;
    wsfi_owner ow = wsfi_owner_of(root);
    int fd = wsfi_open_dir(root, path, true, &ow, path, e);
    if (fd < 0)
        return e->code;
    close(fd);
    return SBX_OK;
}
