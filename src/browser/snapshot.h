/* snapshot.h -- page reads made for models: the snapshot with refs, markdown and links of a
 * tab, and the resolution of a ref back to its element for the actions.
 *
 * Built on page.h only. The page half is snapshot.js, run in each frame's isolated world
 * "sandboxd" (Page.createIsolatedWorld: one world per frame document, kept while the document
 * lives, unseen by the page's scripts). That world holds the document's ref table, so a ref is
 * valid exactly as long as the document it was taken from: a navigation (a new document, a new
 * world) or the element's removal makes it stale (SBX_ESTALEREF, 409 stale_ref). Refs of the
 * top frame read "e12"; refs inside a cross-origin frame carry that frame document's prefix
 * ("f2e7"). Same-origin frames and open shadow roots are read in place; cross-origin frames of
 * the same renderer through their own world, and cross-site frames Chromium draws in a renderer
 * of their own (OOPIFs, page.h br_page_oopifs) through a world in their own target session,
 * each spliced in below its iframe line.
 *
 * Every answer is bounded before it crosses the DevTools socket (maxChars and a cap on links),
 * so a huge page can neither exceed CDP_MAX_MESSAGE nor produce an oversized reply, and in
 * time: each walk stops at most of the call's timeout and says "truncated".
 *
 * Thread safety: HTTP handler threads. Between calls the server keeps only, per tab and per
 * out-of-process iframe, the context id of its top world (checked by a token on each use) and
 * its last ref number, in a small mutex-guarded table (snapshot.c); everything else lives in
 * the page.
 */
#ifndef SBX_BROWSER_SNAPSHOT_H
#define SBX_BROWSER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../common/err.h"
#include "page.h"

#define BR_READS_MAX_CHARS  2000000 /* the largest maxChars a caller may ask for */
#define BR_LINKS_MAX        5000    /* links answered at most (then "truncated": true) */
#define BR_READS_MAX_FRAMES 32      /* cross-origin frames read in one snapshot at most */

/* The snapshot of the tab, or of the element `selector` (CSS, NULL = the whole page), cut to
 * `max_chars` characters at a line boundary. On success *out = {"snapshot", "refs": {ref:
 * {"role", "name"}}, "truncated"} (caller frees); refs lists the refs of the lines kept.
 * Errors: SBX_EINVAL (invalid selector), SBX_ENOELEMENT (selector matched nothing), and those of
 * br_page_call. */
sbx_code br_snapshot(br_page *p, const char *selector, size_t max_chars, int64_t timeout_ms,
                     cJSON **out, sbx_err *e);

/* Markdown of the page, its cross-origin and out-of-process frames' spliced in where their
 * iframes are, cut to `max_chars` characters. *md (malloc'd, caller frees), *len its bytes,
 * *truncated whether it was cut (or a frame did not answer in time). */
sbx_code br_markdown(br_page *p, size_t max_chars, int64_t timeout_ms, char **md, size_t *len,
                     bool *truncated, sbx_err *e);

/* The page's links, its frames' included: *out = {"links": [{"text", "url"}], "truncated"}
 * (caller frees), absolute URLs, each once. */
sbx_code br_links(br_page *p, int64_t timeout_ms, cJSON **out, sbx_err *e);

/* Where a ref's element lives, for actions.c: *fp the page its frame is read through (`p`, or
 * the session of the out-of-process iframe holding it; borrowed like `p`: evaluate there, but
 * send input events to `p`), the execution context of its frame's world in *fp and the offset
 * of that frame's viewport in the tab's (cross-origin frames; 0 for the top frame). Errors:
 * SBX_EINVAL (not a ref), SBX_ESTALEREF (no live document holds it). */
sbx_code br_ref_world(br_page *p, const char *ref, int64_t timeout_ms, br_page **fp, int *ctx,
                      double *dx, double *dy, sbx_err *e);

/* br_page_eval in execution context `ctx` (0: the page's main world). A context that no longer
 * exists (its document was replaced) is SBX_ESTALEREF. */
sbx_code br_page_eval_in(br_page *p, int ctx, const char *expression, int64_t timeout_ms,
                         cJSON **value, sbx_err *e);

/* The message of a stale ref, naming `ref`, into `e`; returns SBX_ESTALEREF. */
sbx_code br_ref_stale(sbx_err *e, const char *ref);

/* ---- pure pieces (tests/unit/browser/test_snapshot.c) ---- */

/* True when `ref` reads e<N> or f<K>e<N> (N, K >= 1, no leading zeros); *frame = K (0 for the
 * top frame). */
bool br_ref_parse(const char *ref, long *frame);

/* The length in bytes of the longest prefix of `text` (`len` bytes, UTF-8) that holds at most
 * `max_chars` characters and ends at a line end (after a '\n'); the whole text when it fits.
 * A first line longer than `max_chars` is cut at a character boundary instead. */
size_t br_text_cut(const char *text, size_t len, size_t max_chars);

#endif
