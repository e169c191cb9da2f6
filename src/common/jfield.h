/* jfield.h -- typed, range-checked reads of JSON request fields.
 *
 * Each reader returns SBX_OK and stores the value, or returns SBX_EINVAL with a message that
 * names the field and what it must be (the caller replies 400 with it). A missing optional
 * field leaves `*out` as the default the caller put there. Output pointers borrow from `obj`.
 * Thread safety: pure functions.
 */
#ifndef SBX_JFIELD_H
#define SBX_JFIELD_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

sbx_code jf_string(const cJSON *obj, const char *name, bool required, const char **out, sbx_err *e);
sbx_code jf_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max,
                int64_t *out, sbx_err *e);
sbx_code jf_number(const cJSON *obj, const char *name, bool required, double min, double max,
                   double *out, sbx_err *e);
sbx_code jf_bool(const cJSON *obj, const char *name, bool required, bool *out, sbx_err *e);

/* A string field that must be one of `choices` ("a|b|c"). */
sbx_code jf_enum(const cJSON *obj, const char *name, bool required, const char *choices,
                 const char **out, sbx_err *e);

/* Reject fields not in `known` ("a|b|c"), naming the first unknown one. */
sbx_code jf_only(const cJSON *obj, const char *known, sbx_err *e);

/* Where byte `off` of `text` is, as a 1-based line and column (the column counts bytes). */
void jf_where(const char *text, size_t off, int *line, int *col);

/* Check a request body's text before it is parsed: it must be well-formed UTF-8, and every
 * \uD800-\uDBFF escape in a string must be followed by a \uDC00-\uDFFF one (and those
 * never stand alone). Returns SBX_OK, or SBX_EINVAL with a message giving the line, column
 * and byte offset of the first fault. Malformed JSON otherwise is left to the parser. */
sbx_code jf_check_text(const char *text, size_t len, sbx_err *e);

#endif
