/* util.h -- small shared pieces: random ids, capped buffers, clocks, files, process groups.
 *
 * Leaf module: includes only libc. Thread safety: every function is safe from any thread;
 * a sbx_buf belongs to one thread at a time.
 */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- ids ---- */

/* Length of an id string (128 random bits, hex) plus its NUL. */
#define SBX_ID_LEN 33

/* Fill `out` with 32 hex characters from getrandom(2). Returns 0, or -1 if the kernel
 * could not supply randomness (out is then untouched). */
int sbx_random_id(char out[SBX_ID_LEN]);

/* Fill `buf` with `n` random bytes. Returns 0 or -1. */
int sbx_random_bytes(void *buf, size_t n);

/* Constant-time equality of two NUL-terminated strings (time depends on `b`'s length only). */
bool sbx_const_eq(const char *a, const char *b);

/* ---- capped growable buffer (curl's dynbuf idea) ---- */

typedef struct sbx_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;     /* allocated */
    size_t max;     /* hard limit on len */
    bool truncated; /* a write was cut at `max` */
} sbx_buf;

/* Start an empty buffer that will never hold more than `max` bytes. */
void sbx_buf_init(sbx_buf *b, size_t max);

/* Append `n` bytes. Returns 0 when everything fit; -1 when the cap cut the data (the part that
 * fits is kept and `truncated` is set) or memory ran out. */
int sbx_buf_add(sbx_buf *b, const void *p, size_t n);
int sbx_buf_addf(sbx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hand the data to the caller (who frees it) and reset the buffer. Never NULL on success. */
char *sbx_buf_take(sbx_buf *b, size_t *len);

void sbx_buf_free(sbx_buf *b);

/* ---- time ---- */

/* Monotonic milliseconds. */
int64_t sbx_now_ms(void);

/* Wall-clock milliseconds since the epoch. */
int64_t sbx_wall_ms(void);

/* The deadline `ms` milliseconds from now (sbx_now_ms's clock); a negative `ms` is now. */
int64_t sbx_deadline_in(int64_t ms);

/* Milliseconds left before `deadline` (0 when it passed). */
int64_t sbx_left_ms(int64_t deadline);

/* ---- condition variables ---- */

/* Initialize `cv` to time its waits against CLOCK_MONOTONIC (the clock of sbx_now_ms), so a
 * wall-clock step never stretches or cuts a wait. 0 or an errno value. */
int sbx_cond_init_mono(pthread_cond_t *cv);

/* Wait on `cv` (with `mu` held, as pthread_cond_timedwait) until it is signalled or the
 * monotonic `deadline` (sbx_now_ms) passes. Returns false when the deadline has passed (the
 * caller re-checks its condition either way: wake-ups may be spurious). `cv` must come from
 * sbx_cond_init_mono. */
bool sbx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline);

/* ---- files ---- */

/* mkdir -p with `mode`; 0 or -1 (errno set). */
int sbx_mkdir_p(const char *path, mode_t mode);

/* rm -rf without following symlinks and without leaving the starting file system.
 * Returns 0 when `path` is gone (or never existed), -1 otherwise. */
int sbx_rmtree(const char *path);

/* cp -a of a directory tree (regular files, dirs, symlinks). 0 or -1. */
int sbx_copytree(const char *src, const char *dst);

/* Read a whole small file (at most `max` bytes) into a NUL-terminated malloc'd string.
 * Returns NULL on error. */
char *sbx_read_file(const char *path, size_t max, size_t *len);

/* Find an executable: `name` containing '/' is checked as is; otherwise each PATH entry.
 * Returns a malloc'd absolute path or NULL. */
char *sbx_which(const char *name);

/* ---- processes ---- */

/* SIGKILL the process group `pgid` (and `pgid` itself), then reap `pgid` if it is our child.
 * Safe on an already-dead group. */
void sbx_kill_group(pid_t pgid);

/* Close every fd >= `lowfd` except `keep` (-1 for none). For use after fork. */
void sbx_close_fds_from(int lowfd, int keep);

#endif
