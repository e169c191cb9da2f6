/* metrics.c -- request counters by route and status, and one latency histogram. */
#include "metrics.h"

#include "../common/egress_gateway.h"
#include "../exec/exec.h"
#include "http.h"
#include "../exec/workspace.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 128

static const double buckets_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
#define NBUCKETS (sizeof buckets_ms / sizeof buckets_ms[0])

typedef struct series {
    char method[8];
    const char *route; /* static route pattern */
    int status;
    uint64_t count;
} series;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static series req[MAX_SERIES];
static size_t nreq;
static uint64_t hist[NBUCKETS + 1];
static double hist_sum_ms;
static uint64_t hist_count;

void metrics_observe_request(const char *method, const char *route, int status, int64_t ms) {
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < nreq; i++)
        if (req[i].status == status && req[i].route == route && !strcmp(req[i].method, method))
            break;
    if (i == nreq && nreq < MAX_SERIES) {
        snprintf(req[i].method, sizeof req[i].method, "%s", method);
        req[i].route = route;
        req[i].status = status;
        nreq++;
    }
    if (i < nreq)
        req[i].count++;
    size_t b = 0;
    while (b < NBUCKETS && (double)ms > buckets_ms[b])
        b++;
    hist[b]++;
    hist_sum_ms += (double)ms;
    hist_count++;
    pthread_mutex_unlock(&mu);
}

/* The exec module's counters (exec.h keeps them; this only renders). */
static void render_exec(sbx_buf *out) {
    exec_stats st;
    exec_stats_get(&st);
    sbx_buf_addf(out,
                 "# HELP sandboxd_exec_runs_started_total Runs started, by how (zygote: cloned "
                 "from the pre-forked interpreter; cold: a fresh one).\n"
                 "# TYPE sandboxd_exec_runs_started_total counter\n"
                 "sandboxd_exec_runs_started_total{start=\"zygote\"} %llu\n"
                 "sandboxd_exec_runs_started_total{start=\"cold\"} %llu\n",
                 (unsigned long long)st.started_zygote, (unsigned long long)st.started_cold);
    sbx_buf_addf(out, "# HELP sandboxd_exec_kills_total Runs ended by the sandbox before their "
                      "program ended, by reason.\n"
                      "# TYPE sandboxd_exec_kills_total counter\n");
    for (int i = 0; i < EXEC_KILL_COUNT; i++)
        sbx_buf_addf(out, "sandboxd_exec_kills_total{reason=\"%s\"} %llu\n", exec_kill_reasons[i],
                     (unsigned long long)st.kills[i]);
    sbx_buf_addf(out, "# HELP sandboxd_exec_violations_total Refusals the sandbox recorded in "
                      "runs (the violations of their results), by kind.\n"
                      "# TYPE sandboxd_exec_violations_total counter\n");
    for (int i = 0; i < EXEC_VIOL_COUNT; i++)
        sbx_buf_addf(out, "sandboxd_exec_violations_total{kind=\"%s\"} %llu\n",
                     exec_violation_kinds[i], (unsigned long long)st.violations[i]);
    sbx_buf_addf(out,
                 "# HELP sandboxd_exec_output_truncated_total Runs whose stdout or stderr was cut "
                 "at EXEC_OUTPUT_BYTES.\n"
                 "# TYPE sandboxd_exec_output_truncated_total counter\n"
                 "sandboxd_exec_output_truncated_total %llu\n"
                 "# HELP sandboxd_exec_refused_incomplete_sandbox_total Runs refused with 503 "
                 "because a sandbox layer is missing.\n"
                 "# TYPE sandboxd_exec_refused_incomplete_sandbox_total counter\n"
                 "sandboxd_exec_refused_incomplete_sandbox_total %llu\n",
                 (unsigned long long)st.output_truncated,
                 (unsigned long long)st.refused_incomplete);
}

/* The Python sessions' counters (workspace.h keeps them). */
static void render_python(sbx_buf *out) {
    ws_stats st;
    ws_stats_get(&st);
    sbx_buf_addf(out,
                 "# HELP sandboxd_python_sessions Python sessions live now.\n"
                 "# TYPE sandboxd_python_sessions gauge\n"
                 "sandboxd_python_sessions %llu\n"
                 "# HELP sandboxd_python_sessions_created_total Python sessions created.\n"
                 "# TYPE sandboxd_python_sessions_created_total counter\n"
                 "sandboxd_python_sessions_created_total %llu\n"
                 "# HELP sandboxd_python_sessions_expired_total Python sessions ended by their "
                 "idle timeout or TTL.\n"
                 "# TYPE sandboxd_python_sessions_expired_total counter\n"
                 "sandboxd_python_sessions_expired_total %llu\n"
                 "# HELP sandboxd_python_sessions_restarted_total Interpreters of Python sessions "
                 "restarted empty (killed after an ignored interrupt, by a signal, or lost).\n"
                 "# TYPE sandboxd_python_sessions_restarted_total counter\n"
                 "sandboxd_python_sessions_restarted_total %llu\n",
                 (unsigned long long)st.live, (unsigned long long)st.created,
                 (unsigned long long)st.expired, (unsigned long long)st.restarted);
}

void metrics_render(sbx_buf *out) {
    pthread_mutex_lock(&mu);
    sbx_buf_addf(out, "# HELP sandboxd_http_requests_total HTTP requests by route and status.\n"
                      "# TYPE sandboxd_http_requests_total counter\n");
    for (size_t i = 0; i < nreq; i++)
        sbx_buf_addf(out,
                     "sandboxd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
                     "%llu\n",
                     req[i].method, req[i].route, req[i].status, (unsigned long long)req[i].count);
    sbx_buf_addf(out, "# HELP sandboxd_http_request_duration_seconds Request latency.\n"
                      "# TYPE sandboxd_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += hist[b];
        sbx_buf_addf(out, "sandboxd_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                     buckets_ms[b] / 1000.0, (unsigned long long)cum);
    }
    sbx_buf_addf(out,
                 "sandboxd_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "sandboxd_http_request_duration_seconds_sum %.3f\n"
                 "sandboxd_http_request_duration_seconds_count %llu\n",
                 (unsigned long long)hist_count, hist_sum_ms / 1000.0,
                 (unsigned long long)hist_count);
    pthread_mutex_unlock(&mu);
    render_exec(out);
    render_python(out);
    const egress_gateway *g = http_defaults_get()->gateway;
    if (!g)
        return;
    egress_stats es;
    egress_gateway_totals(g, &es);
    sbx_buf_addf(out,
                 "# HELP sandboxd_egress_connections_total Connections the egress gateway made "
                 "to destinations.\n"
                 "# TYPE sandboxd_egress_connections_total counter\n"
                 "sandboxd_egress_connections_total %llu\n"
                 "# HELP sandboxd_egress_refused_total Connections the egress policy refused.\n"
                 "# TYPE sandboxd_egress_refused_total counter\n"
                 "sandboxd_egress_refused_total %llu\n"
                 "# HELP sandboxd_egress_failed_total Allowed connections whose destination could "
                 "not be reached.\n"
                 "# TYPE sandboxd_egress_failed_total counter\n"
                 "sandboxd_egress_failed_total %llu\n"
                 "# HELP sandboxd_egress_bytes_total Bytes relayed by the egress gateway.\n"
                 "# TYPE sandboxd_egress_bytes_total counter\n"
                 "sandboxd_egress_bytes_total{direction=\"in\"} %llu\n"
                 "sandboxd_egress_bytes_total{direction=\"out\"} %llu\n",
                 (unsigned long long)es.connections, (unsigned long long)es.refused,
                 (unsigned long long)es.failed, (unsigned long long)es.bytes_in,
                 (unsigned long long)es.bytes_out);
}
