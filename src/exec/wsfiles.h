/* wsfiles.h -- file operations on a Python session's work directory, done by the server.
 *
 * The work directory is written by sandboxed code, so nothing in it is trusted: it may hold
 * symbolic links to /etc or to another session's directory, FIFOs, deep trees, odd names.
 * Every path a caller gives is first checked as text (wsf_path_clean: relative, no `..`, no
 * NUL, no empty or over-long component) and then resolved by the kernel beneath the work
 * directory's descriptor with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): a symbolic link anywhere on the way is refused
 * (400 naming the path), never followed, whatever it points to and however it is raced.
 * Walks (list, zip, copy, remove, usage) never follow a link either: they see links as
 * entries of their own, which list and zip leave out, copy refuses and remove unlinks.
 * The final step of each operation is an *at() call on a single name in a directory opened
 * that way, so no string is resolved by the kernel twice.
 *
 * Codes: SBX_EINVAL (400: bad path, a symlink on the way, a special file, a dir where a file
 * is wanted), SBX_ENOTFOUND (404), SBX_ECONFLICT (409: the target exists), SBX_ETOOLARGE
 * (413: over the per-file cap, too many entries), SBX_ENOSPACE (507: the session's quota is
 * full, or the disk), SBX_EUNAVAIL (503: a kernel without openat2), SBX_EINTERNAL.
 *
 * Thread safety: every function works only on its arguments; calls on one directory from
 * several threads are safe for the kernel but may race each other like any two writers.
 * Ownership: `root` is always borrowed (an O_PATH|O_DIRECTORY descriptor or a plain one).
 */
#ifndef SBX_WSFILES_H
#define SBX_WSFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"

#define WSF_PATH_MAX    1024  /* longest path a caller may give, in bytes */
#define WSF_MAX_DEPTH   32    /* deepest tree a walk descends into */
#define WSF_MAX_ENTRIES 20000 /* most entries a list, zip, copy or usage walk visits */

/* Caps a write (and a copy) checks. 0 means no cap. */
typedef struct wsf_limits {
    int64_t file_max; /* largest file, bytes: over it is 413 */
    int64_t quota;    /* all regular files under the root together, bytes: over it is 507 */
} wsf_limits;

/* Check and normalise a caller's path of `len` bytes (it may hold NUL bytes, which are refused)
 * into `out` (WSF_PATH_MAX + 1 bytes): "./" parts, repeated and trailing slashes dropped; ""
 * means the root itself, allowed only when `root_ok`. Returns SBX_OK or SBX_EINVAL (the message
 * names the path and says why). */
sbx_code wsf_path_clean(const char *path, size_t len, bool root_ok, char *out, sbx_err *e);

/* Open `path` (cleaned) beneath `root` with openat2 and the resolve flags above; `flags` as for
 * open(2) (O_CLOEXEC and O_NOFOLLOW are added). Returns the descriptor (caller closes) or -1
 * with `e` filled. */
int wsf_open(int root, const char *path, int flags, int mode, sbx_err *e);

/* List `path` (a directory; "" is the root) down to `depth` levels (1: its entries only):
 * *out gets a new array of {path, size, type: "file"|"dir", mtime} (mtime: ISO 8601 UTC),
 * paths relative to the root, sorted. Links and special files are left out. More than
 * WSF_MAX_ENTRIES entries is 413. A file `path` lists that one file. */
sbx_code wsf_list(int root, const char *path, int depth, cJSON **out, sbx_err *e);

/* Write `len` bytes to the file `path`, creating missing parent directories (0755) and the
 * file (0644), replacing an existing file atomically (a temporary file renamed over it, so a
 * hard link the code planted is never written through). A directory at `path` is 409. Checks
 * `lim` first. */
sbx_code wsf_write(int root, const char *path, const void *data, size_t len, const wsf_limits *lim,
                   sbx_err *e);

/* Read the regular file `path` whole into a malloc'd buffer (caller frees; NUL-terminated past
 * *len). A file over `max` bytes (0: no cap) is 413; a directory sets *is_dir and returns
 * SBX_OK with *data NULL (the caller may then ask wsf_zip). */
sbx_code wsf_read(int root, const char *path, size_t max, char **data, size_t *len, bool *is_dir,
                  sbx_err *e);

/* A zip archive (deflate, or stored when that is smaller; CRC32 from zlib; UTF-8 names) of the
 * directory `path` ("" is the root) with every regular file and directory under it, names
 * relative to `path`. Links and special files are left out. An archive past `max` bytes, or
 * files past `max` bytes before compression, is 413. *data is malloc'd (caller frees). */
sbx_code wsf_zip(int root, const char *path, size_t max, char **data, size_t *len, sbx_err *e);

/* Rename `from` to `to` (both cleaned paths; not the root). The target must not exist (409);
 * its parent directory must (404). With `into_dir` and an existing directory `to`, the entry
 * moves into it under its own name instead (the "move" operation). */
sbx_code wsf_rename(int root, const char *from, const char *to, bool into_dir, sbx_err *e);

/* Copy the file or directory tree `from` to `to` (must not exist: 409), checking `lim` for the
 * bytes it adds. A link or special file inside a tree is 400 (nothing is copied then: the
 * partial copy is removed). */
sbx_code wsf_copy(int root, const char *from, const char *to, const wsf_limits *lim, sbx_err *e);

/* Remove `path` (not the root), a directory with everything under it; links are unlinked,
 * never followed. */
sbx_code wsf_remove(int root, const char *path, sbx_err *e);

/* Create the directory `path` and missing parents. An existing directory is fine; an existing
 * file on the way is 409. */
sbx_code wsf_mkdir(int root, const char *path, sbx_err *e);

/* Bytes of all regular files under `root` (links not followed), or -1 with `e` filled. */
int64_t wsf_usage(int root, sbx_err *e);

#endif
