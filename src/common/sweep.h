/* sweep.h -- proving which leftovers in DATA_DIR are ours, and removing them.
 *
 * Every run or session directory gets an `.owner` file naming the process-group leader that
 * works in it and that process's start time (field 22 of /proc/PID/stat). After a crash, the
 * next server start sweeps: a recorded group whose leader still has the same pid *and* start
 * time is provably the dead server's and is killed; then the directory is removed. A pid that
 * was reused by an unrelated process is left alone.
 *
 * Keep `.owner` outside anything a sandboxed program can write (e.g. beside its work dir).
 * Thread safety: safe from any thread; sweeping is meant for start-up.
 */
#ifndef SBX_SWEEP_H
#define SBX_SWEEP_H

#include <sys/types.h>

/* Write `dir`/.owner for process-group leader `pid`. 0 or -1. */
int sbx_owner_record(const char *dir, pid_t pid);

/* Start time of `pid` in clock ticks since boot, or 0 when it is not running. */
unsigned long long sbx_proc_starttime(pid_t pid);

/* For every subdirectory of `parent`: kill its recorded group if provably ours, remove it.
 * Returns how many directories were removed. */
int sbx_sweep_dir(const char *parent);

#endif
