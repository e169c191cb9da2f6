/* mcp.h -- the MCP endpoint's tool table, shared by mcp.c (the protocol) and mcp_tools.c (the
 * tools: each one REST route, called in-process through dispatch.h).
 *
 * The table is static data, read-only after start; any thread may read it. mcp_results.c
 * shapes the results of the tools whose output is not plain JSON.
 */
#ifndef SBX_HTTP_MCP_H
#define SBX_HTTP_MCP_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef enum {
    MCP_IN_BODY,  /* the arguments (less path and local ones) are the JSON body */
    MCP_IN_QUERY, /* ... are query-string arguments */
} mcp_in;

typedef enum {
    MCP_OUT_JSON,     /* text: the JSON; structuredContent: the same object */
    MCP_OUT_HTML,     /* text, cut to the maxChars/offset window */
    MCP_OUT_IMAGE,    /* an image content item (base64) */
    MCP_OUT_EMPTY,    /* a 204: the tool's done text */
    MCP_OUT_TEXT,     /* text: the bytes as they are (markdown) */
    MCP_OUT_SNAPSHOT, /* text: the "snapshot" field; structuredContent: the object */
} mcp_out;

typedef struct mcp_tool {
    const char *name;        /* NULL ends the table */
    const char *title;       /* for people */
    const char *scope;       /* token scope the route needs: the tool is listed only with it */
    const char *method;      /* REST method */
    const char *path;        /* REST path; {arg} is filled from that (id) argument */
    mcp_in in;               /* where the other arguments go */
    const char *action;      /* POST .../action: the action name added to the body */
    const char *local;       /* "a|b": arguments the tool itself reads (not sent), or NULL */
    mcp_out out;             /* how the reply becomes the result */
    const char *done;        /* MCP_OUT_EMPTY: the text of the result */
    bool read_only;          /* annotations.readOnlyHint */
    bool destructive;        /* annotations.destructiveHint */
    const char *description; /* for the model: what, when, what comes back */
    const char *schema;      /* the inputSchema as JSON with ' for " (no ' in the text) */
} mcp_tool;

extern const mcp_tool mcp_tools[];

/* ---- one JSON-RPC message of a POST /mcp body (mcp.c; tests/fuzz/fuzz_mcp.c) ---- */

typedef enum {
    MCP_MSG_BAD,          /* not one well-formed JSON-RPC 2.0 message: answer 400 with code */
    MCP_MSG_REQUEST,      /* method, id and params (NULL or an object) */
    MCP_MSG_NOTIFICATION, /* method without id: accepted with 202 */
    MCP_MSG_RESPONSE,     /* result or error without method: accepted with 202 */
} mcp_msg_kind;

typedef struct mcp_msg {
    cJSON *root; /* the parsed body (owned; NULL when it is not JSON) */
    mcp_msg_kind kind;
    const cJSON *id;     /* a string or number id (borrowed from root), else NULL */
    const char *method;  /* REQUEST, NOTIFICATION: borrowed from root */
    const cJSON *params; /* REQUEST, NOTIFICATION: an object or NULL */
    int code;            /* BAD: the JSON-RPC error code (-32700 parse, -32600 invalid) */
    char why[256];       /* BAD: the error message */
} mcp_msg;

/* Parse and classify `len` bytes of body (need not be NUL-terminated). Always fills *m;
 * release it with mcp_msg_free. Any thread. */
void mcp_msg_parse(const char *body, size_t len, mcp_msg *m);
void mcp_msg_free(mcp_msg *m);

/* ---- results (mcp_results.c): each returns a new result object, the caller owns it ---- */

/* {content: [{type: text, text}], isError}. */
cJSON *mcp_text_result(const char *text, bool is_error);
/* The maxChars/offset window (args) of `data`, with a last line saying where the rest is. */
cJSON *mcp_html_result(const char *data, size_t len, const cJSON *args);
/* An image content item of `data` (base64), typed by `ctype`. */
cJSON *mcp_image_result(const char *data, size_t len, const char *ctype);
/* A snapshot reply {snapshot, refs, truncated} (borrowed): its text, and the object. */
cJSON *mcp_snapshot_result(cJSON *json);

#endif
