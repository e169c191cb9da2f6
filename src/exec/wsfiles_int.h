/* wsfiles_int.h -- what wsfiles.c shares with wsfiles_tree.c (zip and copy): the resolution
 * beneath a descriptor, error filling, ownership of what the server creates, the walk that
 * never follows a link, whole-file reads and writes. Not for other modules: they use wsfiles.h.
 * Thread safety and ownership as in wsfiles.h; every descriptor passed in is borrowed.
 */
#ifndef SBX_WSFILES_INT_H
#define SBX_WSFILES_INT_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "wsfiles.h"

#define TMP_PREFIX   ".sbx-tmp-" /* a write's file before it is renamed into place */
#define RM_MAX_DEPTH 128         /* remove goes deeper than the other walks: code made the tree */

/* Fill `e` for a failed resolution or operation on `path` (errno `err`); returns the code. */
sbx_code wsfi_path_fail(sbx_err *e, int err, const char *path);

/* openat2 of `rel` ("" is ".") beneath `dfd` with the resolve flags of wsfiles.h; -1 with
 * errno set. */
int wsfi_open_beneath(int dfd, const char *rel, int flags, int mode);

/* Split a cleaned, non-empty path into its parent (into `parent`; "" for the root) and its
 * last name (returned, pointing into `path`). */
const char *wsfi_split(const char *path, char parent[WSF_PATH_MAX + 1]);

/* Who owns the work directory, so what the server creates can be given to them. */
typedef struct wsfi_owner {
    uid_t uid;
    gid_t gid;
    bool chown; /* the server may and must give files away */
} wsfi_owner;

wsfi_owner wsfi_owner_of(int root);
void wsfi_own(const wsfi_owner *o, int fd);

/* The directory `dir` (cleaned; "" the root) as an O_PATH descriptor (caller closes); with
 * `create`, missing directories on the way are made. -1 with `e` filled naming `whole`. */
int wsfi_open_dir(int root, const char *dir, bool create, const wsfi_owner *ow, const char *whole,
                  sbx_err *e);

/* The sorted names in the directory `dfd` (opened O_RDONLY) without ".", ".." and temporary
 * files; at most `cap` (more: 413, or with `partial` the first `cap`). 0, or -1 with `e`. */
int wsfi_read_names(int dfd, const char *path, size_t cap, bool partial, char ***out, size_t *nout,
                    sbx_err *e);
void wsfi_names_free(char **v, size_t n);

/* `prefix` + "/" + `name` (or `name` alone) into `out`; -1 when too long. */
int wsfi_join(char out[WSF_PATH_MAX + 1], const char *prefix, const char *name);

typedef struct wsfi_walk {
    size_t count; /* entries visited */
    size_t max;   /* most entries (more: 413) */
    int max_depth;
    sbx_err *e;
} wsfi_walk;

/* Called for each regular file or directory of a walk, before a directory's own entries;
 * `dfd` holds `name`, `rel` is its path from the root. Returns 0 to go on. */
typedef int (*wsfi_visit_fn)(void *arg, int dfd, const char *name, const char *rel,
                             const struct stat *st);

/* Walk the directory `dfd` (O_RDONLY) whose path is `prefix`, `depth` levels down; links and
 * special files are skipped, never followed. 0, or -1 with w->e filled. */
int wsfi_walk_dir(wsfi_walk *w, int dfd, const char *prefix, int depth, wsfi_visit_fn fn,
                  void *arg);

/* SBX_OK when adding `add` bytes (replacing `old`) keeps the root within lim->quota. */
sbx_code wsfi_check_quota(int root, const wsf_limits *lim, int64_t add, int64_t old, sbx_err *e);

/* Write all `n` bytes; 0 or -1 (errno). */
int wsfi_write_all(int fd, const char *p, size_t n);

/* All of the regular file `fd` (about `size` bytes) in a malloc'd, NUL-terminated buffer; at
 * most `max` bytes (0: no cap; past it NULL with errno EFBIG). */
char *wsfi_slurp(int fd, size_t size, size_t max, size_t *len);

/* True when `path` is `dir` or lies under it. */
bool wsfi_is_under(const char *path, const char *dir);

/* Remove `name` in `dfd` and, for a directory, everything under it (links unlinked). 0, or -1
 * with `e` filled. */
int wsfi_rm_at(int dfd, const char *name, const char *rel, int depth, sbx_err *e);

#endif
