/* fuzz_mcp.c -- the JSON-RPC message reader of POST /mcp (mcp_msg_parse in src/http/mcp.c)
 * over any body a client can send. Checks what mcp.h promises: every input is classified;
 * a BAD message has a -32700/-32600 code and a NUL-terminated reason, a parse error has no
 * tree; a request has a string method, a string or number id and params NULL or an object; a
 * notification has a method and no id; and a message that is not JSON is never anything but
 * a parse error. */
#include "fuzz.h"
#include "http/mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mcp_msg m;
    mcp_msg_parse((const char *)data, size, &m);
    FUZZ_ASSERT(m.kind == MCP_MSG_BAD || m.kind == MCP_MSG_REQUEST ||
                m.kind == MCP_MSG_NOTIFICATION || m.kind == MCP_MSG_RESPONSE);
    if (m.id)
        FUZZ_ASSERT(cJSON_IsString(m.id) || cJSON_IsNumber(m.id));
    switch (m.kind) {
    case MCP_MSG_BAD:
        FUZZ_ASSERT(m.code == -32700 || m.code == -32600);
        FUZZ_ASSERT(strnlen(m.why, sizeof m.why) < sizeof m.why && m.why[0]);
        FUZZ_ASSERT((m.code == -32700) == (m.root == NULL));
        break;
    case MCP_MSG_REQUEST:
        FUZZ_ASSERT(m.id && m.method && m.root);
        FUZZ_ASSERT(!m.params || cJSON_IsObject(m.params));
        break;
    case MCP_MSG_NOTIFICATION:
        FUZZ_ASSERT(!m.id && m.method && m.root);
        FUZZ_ASSERT(!m.params || cJSON_IsObject(m.params));
        break;
    case MCP_MSG_RESPONSE:
        FUZZ_ASSERT(!m.method && cJSON_IsObject(m.root));
        break;
    }
    mcp_msg_free(&m);
    mcp_msg_free(&m); /* safe twice */
    return 0;
}
