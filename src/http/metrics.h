/* metrics.h -- Prometheus counters for GET /metrics.
 *
 * Thread safety: every function may be called from any thread (atomics and one mutex).
 */
#ifndef SBX_METRICS_H
#define SBX_METRICS_H

#include <stdint.h>

#include "../common/util.h"

/* Count one finished request: by route pattern ("-" when unmatched) and status, and its
 * duration in the latency histogram. */
void metrics_observe_request(const char *method, const char *route, int status, int64_t ms);

/* Append the Prometheus text exposition to `out`. */
void metrics_render(sbx_buf *out);

#endif
