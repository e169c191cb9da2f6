/* node.c -- this replica's NODE_ID and the session ids that carry it (see node.h). */
#include "node.h"

#include <stdio.h>
#include <string.h>

static char node_id[SBX_NODE_MAX + 1];

/* The length of the node name at the start of `s` when it is 1..SBX_NODE_MAX of [a-z0-9-]
 * followed by `end`; else 0. */
static size_t node_len(const char *s, char end) {
    size_t n = 0;
    while (n <= SBX_NODE_MAX &&
           ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
        n++;
    return n >= 1 && n <= SBX_NODE_MAX && s[n] == end ? n : 0;
}

int sbx_node_set(const char *node) {
    if (!node || !*node) {
        node_id[0] = '\0';
        return 0;
    }
    size_t n = node_len(node, '\0');
    if (!n)
        return -1;
    memcpy(node_id, node, n + 1);
    return 0;
}

const char *sbx_node(void) {
    return node_id;
}

int sbx_session_id(char out[SBX_SID_LEN]) {
    char rnd[SBX_ID_LEN];
    if (sbx_random_id(rnd) < 0)
        return -1;
    if (node_id[0])
        snprintf(out, SBX_SID_LEN, "%s.%s", node_id, rnd);
    else
        memcpy(out, rnd, SBX_ID_LEN);
    return 0;
}

bool sbx_session_owner(const char *id, char owner[SBX_NODE_MAX + 1]) {
    size_t n = id ? node_len(id, '.') : 0;
    if (!n || !id[n + 1])
        return false;
    memcpy(owner, id, n);
    owner[n] = '\0';
    return true;
}

bool sbx_session_foreign(const char *id, char owner[SBX_NODE_MAX + 1]) {
    char o[SBX_NODE_MAX + 1];
    if (!node_id[0] || !sbx_session_owner(id, o) || !strcmp(o, node_id))
        return false;
    memcpy(owner, o, strlen(o) + 1);
    return true;
}
