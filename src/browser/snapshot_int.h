/* snapshot_int.h -- what snapshot.c (the snapshot, refs) and snapshot_md.c (markdown and
 * links) share: a tab's frames across its sessions and the worlds that read them.
 * Nothing else includes it.
 *
 * Thread safety: HTTP handler threads; a br_frames is the caller's own (on its stack).
 */
#ifndef SBX_BROWSER_SNAPSHOT_INT_H
#define SBX_BROWSER_SNAPSHOT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "page.h"
#include "snapshot.h"

#define MAX_TREE 64 /* frames looked at in one tab */

typedef struct br_frame {
    const char *id, *url, *origin;
    br_page *pg; /* the session its document is read through: the tab's, or its OOPIF's */
    int parent;  /* index in the list, -1 for the top frame */
    int world;   /* index of the world that reads it */
    int sroot;   /* index of the top frame of its session (0: the tab's) */
} br_frame;

/* The frames of a tab: the tab's own frame tree, and each out-of-process iframe's (its own
 * session's Page.getFrameTree) hung below the frame that holds its <iframe>. */
typedef struct br_frames {
    cJSON *tree[BR_OOPIF_MAX + 1]; /* the sessions' Page.getFrameTree answers: the strings
                                    * above borrow from them */
    int ntrees;
    br_frame f[MAX_TREE];
    int n;
    int roots[BR_READS_MAX_FRAMES + 1]; /* frame index of each world; roots[0] = 0 (top) */
    int nroots;
    bool late; /* an OOPIF did not answer in time: left out */
} br_frames;

typedef struct br_world {
    cJSON *r; /* its snapshot answer, NULL when not read */
    int parent;
    bool used;
} br_world;

/* The frames of tab `p` before `deadline` into `fs` (free with br_reads_frames_free, also
 * after an error). An OOPIF whose tree cannot be had in time is left out (fs->late). */
sbx_code br_reads_frames_get(br_page *p, int64_t deadline, br_frames *fs, sbx_err *e);
void br_reads_frames_free(br_frames *fs);
/* Run snapshot.js operation `op` with `arg` (taken) in the world of frame world `k` of `fs`;
 * *ctx gets its context, *r the answer (caller frees). */
sbx_code br_reads_frame_run(const br_frames *fs, int k, const char *op, cJSON *arg, int64_t to,
                            int *ctx, cJSON **r, sbx_err *e);
/* The same in the top frame's world of page `p` (kept between calls). */
sbx_code br_reads_top_run(br_page *p, const char *op, cJSON *arg, int64_t to, int *ctx, cJSON **r,
                          sbx_err *e);
/* The time a page's walk may take (budgetMs) when the call ends at `deadline`. */
double br_reads_budget_ms(int64_t deadline);

#endif
