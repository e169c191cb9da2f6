/* test_node.c -- NODE_ID and session ids (src/common/node.c): what a valid node is, the id
 * shapes with and without a node, and which ids are another replica's. */
#include <string.h>

#include "check.h"
#include "common/node.h"

static int is_hex32(const char *s) {
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int main(void) {
    char id[SBX_SID_LEN], other[SBX_SID_LEN], owner[SBX_NODE_MAX + 1];

    /* without a node: the bare 128-bit id, nothing is foreign */
    CHECK(sbx_node_set(NULL) == 0 && !strcmp(sbx_node(), ""));
    CHECK(sbx_session_id(id) == 0 && is_hex32(id));
    CHECK(!sbx_session_foreign("node-2.0123456789abcdef0123456789abcdef", owner));

    /* what a node may be */
    CHECK(sbx_node_set("") == 0);
    CHECK(sbx_node_set("Node") == -1);
    CHECK(sbx_node_set("a.b") == -1);
    CHECK(sbx_node_set("a_b") == -1);
    CHECK(sbx_node_set("a b") == -1);
    char longest[SBX_NODE_MAX + 2];
    memset(longest, 'x', SBX_NODE_MAX + 1);
    longest[SBX_NODE_MAX + 1] = '\0';
    CHECK(sbx_node_set(longest) == -1); /* 41 characters */
    longest[SBX_NODE_MAX] = '\0';
    CHECK(sbx_node_set(longest) == 0 && strlen(sbx_node()) == SBX_NODE_MAX);
    CHECK(sbx_session_id(id) == 0 && strlen(id) == SBX_SID_LEN - 1);
    CHECK(sbx_node_set("sandboxd-0") == 0 && !strcmp(sbx_node(), "sandboxd-0"));
    CHECK(sbx_node_set("bad!") == -1 && !strcmp(sbx_node(), "sandboxd-0")); /* kept */

    /* with a node: "<node>.<32 hex>", fresh each time */
    CHECK(sbx_session_id(id) == 0 && sbx_session_id(other) == 0);
    CHECK(!strncmp(id, "sandboxd-0.", 11) && is_hex32(id + 11));
    CHECK(strcmp(id, other) != 0);
    CHECK(sbx_session_owner(id, owner) && !strcmp(owner, "sandboxd-0"));
    CHECK(!sbx_session_foreign(id, owner));

    /* another node's id, and ids that name no node */
    strcpy(owner, "unchanged");
    CHECK(sbx_session_foreign("sandboxd-1.0123456789abcdef0123456789abcdef", owner));
    CHECK(!strcmp(owner, "sandboxd-1"));
    strcpy(owner, "unchanged");
    CHECK(!sbx_session_foreign("0123456789abcdef0123456789abcdef", owner));
    CHECK(!sbx_session_foreign("Other.abc", owner));
    CHECK(!sbx_session_foreign("other.", owner));
    CHECK(!sbx_session_foreign(".abc", owner));
    CHECK(!sbx_session_foreign(NULL, owner));
    CHECK(!strcmp(owner, "unchanged"));
    CHECK(sbx_session_owner("x.y", owner) && !strcmp(owner, "x"));
    return CHECK_DONE();
}
