/* usage.h -- what a Chromium costs: the proportional set size and CPU time of its processes.
 *
 * A session's Chromium leads its own process group (chromium.h), and its helpers (zygote,
 * renderers, GPU and utility processes) stay in it: br_usage_of_groups walks /proc once and
 * adds up, per group, Pss from /proc/PID/smaps_rollup (shared pages split between the
 * processes that map them, so sessions add up without counting shared libraries many times)
 * and utime+stime from /proc/PID/stat, plus what the leader reaped of children that ended.
 *
 * Thread safety: pure functions over /proc; any thread. Leaf module: libc only.
 */
#ifndef SBX_BROWSER_USAGE_H
#define SBX_BROWSER_USAGE_H

#include <stdint.h>
#include <sys/types.h>

typedef struct br_usage {
    int64_t pss_bytes;
    int64_t cpu_ms;
    int procs;
} br_usage;

/* For each of the `n` process groups `pgids` (a group's leader pid; 0: none), fill `out[i]`
 * (zeroed first). Returns 0, or -1 when /proc cannot be read (out all zero). */
int br_usage_of_groups(const pid_t *pgids, br_usage *out, int n);

#endif
