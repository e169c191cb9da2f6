/* node.h -- which replica this server is, and the session ids that say so.
 *
 * In a cluster every replica has a NODE_ID (e.g. its StatefulSet pod name) and every session
 * it creates (browser now, Python sessions as well) gets the id "<node>.<random>", 128 random
 * bits in hex after the dot, so a router can send a call to the owner by the id alone, without
 * a lookup table. Without a NODE_ID an id is the bare random part, as before.
 *
 * Leaf module: includes only libc. sbx_node_set is called once by main() before any thread
 * starts; everything else is read-only afterwards and safe from any thread.
 */
#ifndef SBX_NODE_H
#define SBX_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Longest NODE_ID: [a-z0-9-]{1,40}. */
#define SBX_NODE_MAX 40

/* A session id: "<node>." (at most SBX_NODE_MAX + 1) then 32 hex characters, and its NUL. */
#define SBX_SID_LEN (SBX_NODE_MAX + 1 + SBX_ID_LEN)

/* Set this server's node (NULL or "" for none). Returns 0, or -1 when `node` is not 1 to 40
 * of [a-z0-9-] (nothing is set then). Call once, before any thread starts. */
int sbx_node_set(const char *node);

/* This server's node, or "" when none is set. Borrowed, valid for the process's life. */
const char *sbx_node(void);

/* Fill `out` with a new session id: "<node>.<32 hex>" with a node, else "<32 hex>". Returns 0,
 * or -1 when the kernel supplied no randomness (out untouched). */
int sbx_session_id(char out[SBX_SID_LEN]);

/* The node named by the prefix of the session id `id`: copies it into `owner` and returns
 * true when `id` has the form "<node>.<rest>" with a valid node; false otherwise (owner
 * untouched). */
bool sbx_session_owner(const char *id, char owner[SBX_NODE_MAX + 1]);

/* True when this server has a node and `id` names another one (copied into `owner`): the
 * session lives on that replica, never here. False without a node, for an id of this node, or
 * an id without a node prefix (looked up here as usual). */
bool sbx_session_foreign(const char *id, char owner[SBX_NODE_MAX + 1]);

#endif
