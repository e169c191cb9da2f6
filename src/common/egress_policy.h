/* egress_policy.h -- what outbound traffic of runs, sessions and the server itself may reach:
 * the operator's domain lists, the private-address rule, the EGRESS_HOSTS map, and a request's
 * narrowing of the domain list. Pure: no sockets, no DNS, no threads (egress_gateway.c and
 * upload.c do the resolving and connecting, and ask this module before every connect).
 *
 * Domain lists are comma- or space-separated names; "*" matches every name, "*.example.com"
 * matches example.com and every name below it; matching ignores case and a trailing dot.
 * Deny wins over allow. A destination is checked twice: its name (egress_check_name: deny
 * list, then the operator's allow list when the scope is an allowlist, then the request's own
 * list) and every address it resolves to (egress_check_addr: private, loopback, link-local,
 * multicast, reserved and unspecified addresses, IPv4 and IPv6, including IPv4-mapped,
 * IPv4-compatible, NAT64 and 6to4 forms, are refused unless EGRESS_PRIVATE_ALLOWED names the
 * host, the address or a CIDR holding it; the server's own listening address is always
 * refused). A connection goes to exactly the address that was checked (no second lookup).
 *
 * Thread safety: an egress_policy and an egress_scope are immutable once made: any thread may
 * check against them at once. Reasons are written to the caller's buffer.
 */
#ifndef SBX_EGRESS_POLICY_H
#define SBX_EGRESS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "err.h"

typedef struct egress_policy egress_policy;

/* The operator's settings, as text (NULL or "" = empty). */
typedef struct egress_settings {
    const char *allowed;         /* EGRESS_ALLOWED_DOMAINS */
    const char *denied;          /* EGRESS_DENIED_DOMAINS */
    const char *private_allowed; /* EGRESS_PRIVATE_ALLOWED: names, IPs, CIDRs */
    const char *hosts;           /* EGRESS_HOSTS: "name=ip,name=ip" */
} egress_settings;

/* Parse the settings into a new policy (the caller owns it; egress_policy_free). SBX_EINVAL
 * naming the setting and the bad entry (a CIDR or an EGRESS_HOSTS entry that does not parse),
 * or SBX_EINTERNAL when out of memory; *out is untouched on failure. */
sbx_code egress_policy_new(const egress_settings *s, egress_policy **out, sbx_err *e);
void egress_policy_free(egress_policy *p); /* NULL is a no-op */

/* Refuse `port` on the address `host` forever (the server's own listener; "0.0.0.0", "::" or
 * "" mean every address: then the port is refused on loopback and every private address).
 * One thread at a time (main, once its listener is up) while others check: the entry is
 * published whole. At most 4. 0, or -1 when `host` is not an IP literal or there is no room. */
int egress_policy_add_self(egress_policy *p, const char *host, uint16_t port);

/* The address EGRESS_HOSTS maps `name` to (port 0), or false. */
bool egress_hosts_lookup(const egress_policy *p, const char *name, struct sockaddr_storage *out,
                         socklen_t *len);

/* What one run or session may reach: the operator's policy, whether its allow list applies
 * (EXEC_NETWORK=allowlist, BROWSER_NETWORK=allowlist), and the request's own narrowing list. */
typedef struct egress_scope egress_scope;

/* A scope over `p` (borrowed: it must outlive the scope). `allowlist`: only names in the
 * operator's EGRESS_ALLOWED_DOMAINS pass. `request` (may be NULL): a cJSON array of strings
 * (the request's network.allowedDomains); each entry must lie inside what the operator allows
 * for this scope, else SBX_EINVAL naming `field` and the entry. SBX_EINTERNAL when out of
 * memory. *out untouched on failure. */
sbx_code egress_scope_new(const egress_policy *p, bool allowlist, const cJSON *request,
                          const char *field, egress_scope **out, sbx_err *e);
void egress_scope_free(egress_scope *s); /* NULL is a no-op */
const egress_policy *egress_scope_policy(const egress_scope *s);

/* The name rules for `host` (a DNS name or an IP literal, without port or brackets): true when
 * it may be reached; else false and the reason ("denied by EGRESS_DENIED_DOMAINS", "not in
 * allowedDomains", ...) in why[0..n). */
bool egress_check_name(const egress_scope *s, const char *host, char *why, size_t n);

/* The address rule for one address `host` resolved to (with its destination port in sa):
 * true when a connection may go there; else false and the reason ("private address 10.0.0.1
 * (EGRESS_PRIVATE_ALLOWED does not name it)", "the server's own address"). */
bool egress_check_addr(const egress_policy *p, const char *host, const struct sockaddr *sa,
                       char *why, size_t n);

/* The class of an address that the private rule refuses ("loopback", "private", "link-local",
 * "multicast", "reserved", "unspecified", "carrier-grade NAT"), or NULL for a public address.
 * IPv6 forms that embed an IPv4 address are judged by it. */
const char *egress_addr_class(const struct sockaddr *sa);

/* Whether `host` matches one entry of a domain list ("*", "*.x", or a name). */
bool egress_name_matches(const char *pattern, const char *host);

#endif
