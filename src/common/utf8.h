/* utf8.h -- UTF-8 checks and repair for text that crosses the HTTP edge.
 *
 * Well-formed means what Unicode's table 3-7 says: no overlong forms, no encoded surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Repair replaces each maximal ill-formed subpart
 * (Unicode's "substitution of maximal subparts" practice, as browsers and Python do) with
 * U+FFFD, so "ok\xff\xfe" becomes "ok" and two U+FFFD.
 *
 * Thread safety: pure functions, any thread.
 */
#ifndef SBX_UTF8_H
#define SBX_UTF8_H

#include <stddef.h>

/* Offset of the first byte of `s[0..len)` that does not start a well-formed sequence (a
 * sequence cut by the end of the input counts as ill-formed), or `len` when all is well-formed. */
size_t utf8_invalid_at(const char *s, size_t len);

/* A copy of `s[0..len)` with each maximal ill-formed subpart replaced by U+FFFD (EF BF BD),
 * NUL-terminated; its length in *out_len and the number of replacements in *replaced (both may
 * be NULL). The caller frees the copy. Returns NULL when out of memory. */
char *utf8_repair(const char *s, size_t len, size_t *out_len, size_t *replaced);

/* In JSON text `s[0..len)`, rewrite every backslash-u escape of a lone surrogate (a high one
 * not followed by a low one's escape, or a low one alone) as U+FFFD's, in place (same length), so a
 * strict parser (cJSON) takes text that JavaScript produced (a string cut in the middle of a
 * pair). Escaped backslashes are honoured. Returns the number of escapes rewritten. */
size_t utf8_json_fix_surrogates(char *s, size_t len);

/* How many bytes at the end of `s[0..len)` (0 to 3) begin a well-formed sequence that the input
 * cuts short: a stream that delivers text in chunks holds them back for the next chunk. */
size_t utf8_incomplete_tail(const char *s, size_t len);

#endif
