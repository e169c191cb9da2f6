/* wsfiles_tree.c -- the operations of wsfiles.h that take a whole tree: a directory as a zip
 * archive (a small writer: local headers, the data deflated by zlib or stored when that is
 * smaller, CRC32 from zlib, a central directory and its end record; no zip64, so every archive
 * stays under 4 GiB), and copy of a file or a tree. Both walk with wsfiles.c's walk, which
 * never follows a link. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "../common/util.h"
#include "wsfiles_int.h"

/* ---- zip ---- */

typedef struct zipper {
    sbx_buf out;     /* local headers and data */
    sbx_buf central; /* central directory */
    size_t entries;
    size_t max;
    size_t raw;       /* bytes read from files */
    const char *base; /* the directory zipped (for messages) */
    size_t base_len;  /* strlen(base) + 1 when base is not the root, else 0 */
    sbx_err *e;
} zipper;

static void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v & 0xff), p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void put32(unsigned char *p, uint32_t v) {
    put16(p, v & 0xffff), put16(p + 2, v >> 16);
}

static void dos_time(time_t t, unsigned *dtime, unsigned *ddate) {
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_year < 80) { /* before 1980: the format cannot say */
        *dtime = 0, *ddate = (1 << 5) | 1;
        return;
    }
    *dtime = (unsigned)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    *ddate = (unsigned)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

static int zip_too_large(zipper *z) {
    sbx_fail(z->e, SBX_ETOOLARGE,
             "the zip of '%.200s' would be over %zu bytes: download its parts one by one",
             *z->base ? z->base : ".", z->max);
    return -1;
}

/* Add one entry: `name` (a directory's ends in '/'), its bytes (NULL for a directory). */
static int zip_add(zipper *z, const char *name, const char *data, size_t len,
                   const struct stat *st) {
    unsigned method = 0;
    const char *body = data;
    size_t clen = len;
    char *packed = NULL;
    uint32_t crc = data ? (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data, (uInt)len) : 0;
    if (data && len > 0) {
        z_stream zs = {0};
        if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            return sbx_fail(z->e, SBX_EINTERNAL, "zip: deflateInit2 failed"), -1;
        uLong bound = deflateBound(&zs, (uLong)len);
        packed = malloc(bound);
        if (packed) {
            zs.next_in = (Bytef *)data;
            zs.avail_in = (uInt)len;
            zs.next_out = (Bytef *)packed;
            zs.avail_out = (uInt)bound;
            if (deflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out < len) {
                method = 8;
                body = packed;
                clen = zs.total_out;
            }
        }
        deflateEnd(&zs);
    }
    size_t nlen = strlen(name);
    unsigned dt, dd;
    dos_time(st->st_mtim.tv_sec, &dt, &dd);
    unsigned char lh[30] = {0}, ch[46] = {0};
    put32(lh, 0x04034b50);
    put16(lh + 4, 20);
    put16(lh + 6, 0x0800); /* names are UTF-8 */
    put16(lh + 8, method);
    put16(lh + 10, dt);
    put16(lh + 12, dd);
    put32(lh + 14, crc);
    put32(lh + 18, (uint32_t)clen);
    put32(lh + 22, (uint32_t)len);
    put16(lh + 26, (unsigned)nlen);
    size_t offset = z->out.len;
    put32(ch, 0x02014b50);
    put16(ch + 4, 3 << 8 | 20); /* made by: Unix, 2.0 */
    memcpy(ch + 6, lh + 4, 26);
    put32(ch + 38, (uint32_t)(st->st_mode & 0xffff) << 16 | (data ? 0 : 0x10));
    put32(ch + 42, (uint32_t)offset);
    int bad = sbx_buf_add(&z->out, lh, sizeof lh) || sbx_buf_add(&z->out, name, nlen) ||
              (clen && sbx_buf_add(&z->out, body, clen)) ||
              sbx_buf_add(&z->central, ch, sizeof ch) || sbx_buf_add(&z->central, name, nlen);
    free(packed);
    if (bad || z->out.len + z->central.len + 22 > z->max)
        return zip_too_large(z);
    z->entries++;
    return 0;
}

static int zip_visit(void *arg, int dfd, const char *name, const char *rel, const struct stat *st) {
    zipper *z = arg;
    const char *in = rel + z->base_len; /* the name inside the archive */
    if (S_ISDIR(st->st_mode)) {
        char dname[WSF_PATH_MAX + 2];
        snprintf(dname, sizeof dname, "%s/", in);
        return zip_add(z, dname, NULL, 0, st);
    }
    int fd = wsfi_open_beneath(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* gone meanwhile */
        wsfi_path_fail(z->e, errno, rel);
        return -1;
    }
    struct stat now;
    if (fstat(fd, &now) != 0 || !S_ISREG(now.st_mode)) {
        close(fd);
        return 0;
    }
    if (z->raw + (size_t)now.st_size > z->max) {
        close(fd);
        return zip_too_large(z);
    }
    size_t len = 0;
    char *data = wsfi_slurp(fd, (size_t)now.st_size, z->max - z->raw, &len);
    close(fd);
    if (!data)
        return errno == EFBIG ? zip_too_large(z) : (wsfi_path_fail(z->e, errno, rel), -1);
    z->raw += len;
    int rc = zip_add(z, in, data, len, &now);
    free(data);
    return rc;
}

sbx_code wsf_zip(int root, const char *path, size_t max, char **data, size_t *len, sbx_err *e) {
    int fd = wsf_open(root, path, O_RDONLY | O_DIRECTORY, 0, e);
    if (fd < 0)
        return e->code;
    if (max == 0 || max > UINT32_MAX)
        max = UINT32_MAX; /* no zip64 */
    zipper z = {.max = max, .base = path, .base_len = *path ? strlen(path) + 1 : 0, .e = e};
    sbx_buf_init(&z.out, max);
    sbx_buf_init(&z.central, max);
    wsfi_walk w = {.max = WSF_MAX_ENTRIES, .max_depth = WSF_MAX_DEPTH, .e = e};
    int rc = wsfi_walk_dir(&w, fd, path, WSF_MAX_DEPTH, zip_visit, &z);
    close(fd);
    if (rc == 0) {
        unsigned char end[22] = {0};
        put32(end, 0x06054b50);
        put16(end + 8, (unsigned)z.entries);
        put16(end + 10, (unsigned)z.entries);
        put32(end + 12, (uint32_t)z.central.len);
        put32(end + 16, (uint32_t)z.out.len);
        if ((z.central.len && sbx_buf_add(&z.out, z.central.data, z.central.len)) ||
            sbx_buf_add(&z.out, end, sizeof end))
            rc = zip_too_large(&z);
    }
    sbx_buf_free(&z.central);
    if (rc != 0) {
        sbx_buf_free(&z.out);
        return e->code;
    }
    *data = sbx_buf_take(&z.out, len);
    return SBX_OK;
}

/* ---- copy ---- */

typedef struct copier {
    const wsfi_owner *ow;
    size_t count;
    sbx_err *e;
} copier;

static int copy_file(copier *c, int sfd, int dfd, const char *name, const char *rel) {
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0)
        return wsfi_path_fail(c->e, errno, rel), -1;
    wsfi_own(c->ow, out);
    char buf[65536];
    for (;;) {
        ssize_t r = read(sfd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r > 0 && wsfi_write_all(out, buf, (size_t)r) != 0)) {
            int err = errno;
            close(out);
            return wsfi_path_fail(c->e, err, rel), -1;
        }
        if (r == 0)
            break;
    }
    if (close(out) != 0)
        return wsfi_path_fail(c->e, errno, rel), -1;
    return 0;
}

/* Copy the directory `sdir` (open O_RDONLY) into a new directory `name` in `dfd`. */
static int copy_tree(copier *c, int sdir, int dfd, const char *name, const char *rel, int depth) {
    if (depth <= 0)
        return sbx_fail(c->e, SBX_ETOOLARGE, "'%.200s' is more than %d levels deep", rel,
                        WSF_MAX_DEPTH),
               -1;
    if (mkdirat(dfd, name, 0755) != 0)
        return wsfi_path_fail(c->e, errno, rel), -1;
    int nd = wsfi_open_beneath(dfd, name, O_RDONLY | O_DIRECTORY, 0);
    if (nd < 0)
        return wsfi_path_fail(c->e, errno, rel), -1;
    wsfi_own(c->ow, nd);
    char **names;
    size_t n;
    if (wsfi_read_names(sdir, rel, WSF_MAX_ENTRIES, false, &names, &n, c->e) != 0) {
        close(nd);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char r2[WSF_PATH_MAX + 1];
        struct stat st;
        if (wsfi_join(r2, rel, names[i]) != 0) {
            sbx_fail(c->e, SBX_EINVAL, "a path under '%.200s' is too long", rel);
            rc = -1;
            break;
        }
        if (++c->count > WSF_MAX_ENTRIES) {
            sbx_fail(c->e, SBX_ETOOLARGE, "more than %d entries to copy", WSF_MAX_ENTRIES);
            rc = -1;
            break;
        }
        if (fstatat(sdir, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            int sf = wsfi_open_beneath(sdir, names[i], O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
            if (sf < 0) {
                wsfi_path_fail(c->e, errno, r2);
                rc = -1;
                break;
            }
            rc = copy_file(c, sf, nd, names[i], r2);
            close(sf);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = wsfi_open_beneath(sdir, names[i], O_RDONLY | O_DIRECTORY, 0);
            if (sub < 0) {
                wsfi_path_fail(c->e, errno, r2);
                rc = -1;
                break;
            }
            rc = copy_tree(c, sub, nd, names[i], r2, depth - 1);
            close(sub);
        } else {
            sbx_fail(c->e, SBX_EINVAL,
                     "'%.200s' is a symbolic link or special file: a copy never follows "
                     "links",
                     r2);
            rc = -1;
        }
    }
    wsfi_names_free(names, n);
    close(nd);
    return rc;
}

static int size_visit(void *arg, int dfd, const char *name, const char *rel,
                      const struct stat *st) {
    if (S_ISREG(st->st_mode))
        *(int64_t *)arg += st->st_size;
    return 0;
}

sbx_code wsf_copy(int root, const char *from, const char *to, const wsf_limits *lim, sbx_err *e) {
    if (!*from || !*to)
        return sbx_fail(e, SBX_EINVAL, "both path and to must name an entry, not the root");
    int src = wsf_open(root, from, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, e);
    if (src < 0)
        return e->code;
    struct stat st;
    if (fstat(src, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
        close(src);
        return wsfi_path_fail(e, ENXIO, from);
    }
    if (S_ISDIR(st.st_mode) && wsfi_is_under(to, from)) {
        close(src);
        return sbx_fail(e, SBX_EINVAL, "cannot copy '%.200s' into itself ('%.200s')", from, to);
    }
    int64_t add = 0;
    if (S_ISREG(st.st_mode)) {
        add = st.st_size;
        if (lim && lim->file_max > 0 && add > lim->file_max) {
            close(src);
            return sbx_fail(e, SBX_ETOOLARGE,
                            "file '%.200s' is %lld bytes, over the cap of %lld bytes "
                            "(PYTHON_FILE_MAX_MB)",
                            from, (long long)add, (long long)lim->file_max);
        }
    } else {
        wsfi_walk w = {.max = WSF_MAX_ENTRIES, .max_depth = WSF_MAX_DEPTH, .e = e};
        if (wsfi_walk_dir(&w, src, from, WSF_MAX_DEPTH, size_visit, &add) != 0) {
            close(src);
            return e->code;
        }
    }
    if (wsfi_check_quota(root, lim, add, 0, e) != SBX_OK) {
        close(src);
        return e->code;
    }
    char parent[WSF_PATH_MAX + 1];
    const char *name = wsfi_split(to, parent);
    int dfd = wsfi_open_dir(root, parent, false, NULL, to, e);
    if (dfd < 0) {
        close(src);
        return e->code;
    }
    wsfi_owner ow = wsfi_owner_of(root);
    copier c = {.ow = &ow, .e = e};
    int rc = S_ISREG(st.st_mode) ? copy_file(&c, src, dfd, name, to)
                                 : copy_tree(&c, src, dfd, name, to, WSF_MAX_DEPTH);
    if (rc != 0 && e->code != SBX_ECONFLICT) { /* leave nothing half-copied */
        sbx_err ignored;
        wsfi_rm_at(dfd, name, to, RM_MAX_DEPTH, &ignored);
    }
    close(dfd);
    close(src);
    return rc == 0 ? SBX_OK : e->code;
}
