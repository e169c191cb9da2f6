/* test_egress_policy.c -- the egress policy: wildcards, deny wins, allow lists and a request's
 * narrowing, every private address class (IPv4, IPv6, IPv4 inside IPv6), EGRESS_PRIVATE_ALLOWED
 * by name, IP and CIDR, EGRESS_HOSTS, the server's own address, and bad settings. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/egress_policy.h"

static struct sockaddr_storage ss;

/* A sockaddr for an IP literal and port (static storage: one at a time). */
static const struct sockaddr *sa(const char *ip, int port) {
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
    }
    return (const struct sockaddr *)&ss;
}

static const char *cls(const char *ip) {
    return egress_addr_class(sa(ip, 80));
}

static bool is(const char *got, const char *want) {
    return got && want ? !strcmp(got, want) : got == want;
}

static egress_policy *policy(const char *allowed, const char *denied, const char *priv,
                             const char *hosts) {
    egress_settings s = {allowed, denied, priv, hosts};
    egress_policy *p = NULL;
    sbx_err e = {0};
    if (egress_policy_new(&s, &p, &e) != SBX_OK)
        fprintf(stderr, "policy: %s\n", e.msg);
    return p;
}

static void test_wildcards(void) {
    CHECK(egress_name_matches("*", "anything.example"));
    CHECK(egress_name_matches("*.example.com", "example.com"));
    CHECK(egress_name_matches("*.example.com", "a.b.EXAMPLE.com"));
    CHECK(egress_name_matches("*.example.com", "api.example.com."));
    CHECK(!egress_name_matches("*.example.com", "badexample.com"));
    CHECK(!egress_name_matches("*.example.com", "example.com.evil.org"));
    CHECK(egress_name_matches("pypi.org", "PyPI.org"));
    CHECK(!egress_name_matches("pypi.org", "files.pypi.org"));
    CHECK(!egress_name_matches("pypi.org", "pypi.org2"));
}

static void test_names(void) {
    egress_policy *p = policy("*.github.com, pypi.org", "evil.github.com,*.bad.test", NULL, NULL);
    CHECK(p != NULL);
    egress_scope *allow = NULL, *open = NULL;
    sbx_err e = {0};
    CHECK(egress_scope_new(p, true, NULL, "network", &allow, &e) == SBX_OK);
    CHECK(egress_scope_new(p, false, NULL, "network", &open, &e) == SBX_OK);
    char why[200];
    CHECK(egress_check_name(allow, "api.github.com", why, sizeof why));
    CHECK(egress_check_name(allow, "github.com", why, sizeof why));
    CHECK(egress_check_name(allow, "pypi.org", why, sizeof why));
    CHECK(!egress_check_name(allow, "example.org", why, sizeof why) &&
          strstr(why, "not in allowedDomains"));
    /* deny wins over allow, in both modes */
    CHECK(!egress_check_name(allow, "evil.github.com", why, sizeof why) &&
          strstr(why, "EGRESS_DENIED_DOMAINS"));
    CHECK(!egress_check_name(open, "EVIL.github.com", why, sizeof why));
    CHECK(!egress_check_name(open, "x.bad.test", why, sizeof why));
    CHECK(egress_check_name(open, "example.org", why, sizeof why));
    CHECK(!egress_check_name(open, "", why, sizeof why));
    egress_scope_free(allow);
    egress_scope_free(open);
    egress_policy_free(p);
}

static void test_narrowing(void) {
    egress_policy *p = policy("*.github.com,pypi.org", "", NULL, NULL);
    sbx_err e = {0};
    char why[200];
    egress_scope *s = NULL;
    cJSON *rq = cJSON_Parse("[\"api.github.com\", \"*.raw.github.com\"]");
    CHECK(egress_scope_new(p, true, rq, "network.allowedDomains", &s, &e) == SBX_OK);
    CHECK(s && egress_check_name(s, "api.github.com", why, sizeof why));
    CHECK(s && egress_check_name(s, "x.raw.github.com", why, sizeof why));
    CHECK(s && !egress_check_name(s, "gist.github.com", why, sizeof why) && strstr(why, "request"));
    CHECK(s && !egress_check_name(s, "pypi.org", why, sizeof why));
    egress_scope_free(s);
    cJSON_Delete(rq);
    /* widening is refused, naming the entry */
    const char *wide[] = {"[\"example.org\"]", "[\"*.com\"]", "[\"*\"]", "[\"*.pypi.org\"]"};
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++) {
        s = (egress_scope *)0x1;
        rq = cJSON_Parse(wide[i]);
        memset(&e, 0, sizeof e);
        CHECK(egress_scope_new(p, true, rq, "network.allowedDomains", &s, &e) == SBX_EINVAL);
        CHECK(s == (egress_scope *)0x1 && strstr(e.msg, "network.allowedDomains") &&
              strstr(e.msg, "outside"));
        cJSON_Delete(rq);
    }
    rq = cJSON_Parse("[\"example.org\"]");
    CHECK(egress_scope_new(p, true, rq, "f", &s, &e) == SBX_EINVAL && strstr(e.msg, "example.org"));
    cJSON_Delete(rq);
    /* open mode: any list narrows; an empty list lets nothing through */
    rq = cJSON_Parse("[\"example.org\"]");
    CHECK(egress_scope_new(p, false, rq, "f", &s, &e) == SBX_OK);
    CHECK(egress_check_name(s, "example.org", why, sizeof why));
    CHECK(!egress_check_name(s, "api.github.com", why, sizeof why));
    egress_scope_free(s);
    cJSON_Delete(rq);
    rq = cJSON_Parse("[]");
    CHECK(egress_scope_new(p, false, rq, "f", &s, &e) == SBX_OK);
    CHECK(!egress_check_name(s, "example.org", why, sizeof why));
    egress_scope_free(s);
    cJSON_Delete(rq);
    /* bad shapes */
    const char *bad[] = {"[1]", "[\"a b\"]", "[\"\"]", "[\"x/y\"]", "{}", "[\"*.\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rq = cJSON_Parse(bad[i]);
        CHECK(egress_scope_new(p, false, rq, "f", &s, &e) == SBX_EINVAL);
        cJSON_Delete(rq);
    }
    egress_policy_free(p);
}

static void test_classes(void) {
    CHECK(is(cls("127.0.0.1"), "loopback"));
    CHECK(is(cls("127.255.1.2"), "loopback"));
    CHECK(is(cls("10.1.2.3"), "private"));
    CHECK(is(cls("172.16.0.1"), "private"));
    CHECK(is(cls("172.31.255.255"), "private"));
    CHECK(is(cls("172.32.0.1"), NULL));
    CHECK(is(cls("192.168.1.1"), "private"));
    CHECK(is(cls("169.254.169.254"), "link-local"));
    CHECK(is(cls("100.64.0.1"), "carrier-grade NAT"));
    CHECK(is(cls("0.0.0.0"), "unspecified"));
    CHECK(is(cls("224.0.0.1"), "multicast"));
    CHECK(is(cls("255.255.255.255"), "reserved"));
    CHECK(is(cls("8.8.8.8"), NULL));
    CHECK(is(cls("93.184.216.34"), NULL));
    CHECK(is(cls("::1"), "loopback"));
    CHECK(is(cls("::"), "unspecified"));
    CHECK(is(cls("fe80::1"), "link-local"));
    CHECK(is(cls("fd00::1"), "private"));
    CHECK(is(cls("fc12:3456::1"), "private"));
    CHECK(is(cls("ff02::1"), "multicast"));
    CHECK(is(cls("::ffff:127.0.0.1"), "loopback"));
    CHECK(is(cls("::ffff:169.254.169.254"), "link-local"));
    CHECK(is(cls("::ffff:10.0.0.1"), "private"));
    CHECK(is(cls("::ffff:8.8.8.8"), NULL));
    CHECK(is(cls("::127.0.0.1"), "loopback"));
    CHECK(is(cls("64:ff9b::a9fe:a9fe"), "link-local"));
    CHECK(is(cls("2002:7f00:1::"), "loopback"));
    CHECK(is(cls("2001:db8::1"), "reserved"));
    CHECK(is(cls("2606:4700::1111"), NULL));
}

static void test_private_allowed(void) {
    egress_policy *p = policy("", "", "pypi.test, *.local.test, 10.9.0.0/16, 192.168.1.5, fd00::/8",
                              "pypi.test=127.0.0.1, other.test=::1");
    CHECK(p != NULL);
    char why[200];
    CHECK(egress_check_addr(p, "pypi.test", sa("127.0.0.1", 8000), why, sizeof why));
    CHECK(egress_check_addr(p, "a.local.test", sa("127.0.0.1", 8000), why, sizeof why));
    CHECK(!egress_check_addr(p, "other.test", sa("127.0.0.1", 8000), why, sizeof why) &&
          strstr(why, "loopback address 127.0.0.1") && strstr(why, "EGRESS_PRIVATE_ALLOWED"));
    CHECK(!egress_check_addr(p, "x", sa("169.254.169.254", 80), why, sizeof why) &&
          strstr(why, "link-local"));
    CHECK(egress_check_addr(p, "x", sa("10.9.3.4", 80), why, sizeof why));
    CHECK(egress_check_addr(p, "x", sa("::ffff:10.9.3.4", 80), why, sizeof why));
    CHECK(!egress_check_addr(p, "x", sa("10.10.3.4", 80), why, sizeof why));
    CHECK(egress_check_addr(p, "x", sa("192.168.1.5", 80), why, sizeof why));
    CHECK(!egress_check_addr(p, "x", sa("192.168.1.6", 80), why, sizeof why));
    CHECK(egress_check_addr(p, "x", sa("fd12::1", 80), why, sizeof why));
    CHECK(!egress_check_addr(p, "x", sa("fe80::1", 80), why, sizeof why));
    CHECK(egress_check_addr(p, "x", sa("8.8.8.8", 443), why, sizeof why));
    /* EGRESS_HOSTS */
    struct sockaddr_storage out;
    socklen_t len = 0;
    CHECK(egress_hosts_lookup(p, "PYPI.test", &out, &len) && out.ss_family == AF_INET &&
          len == sizeof(struct sockaddr_in));
    CHECK(egress_hosts_lookup(p, "other.test", &out, &len) && out.ss_family == AF_INET6);
    CHECK(!egress_hosts_lookup(p, "nope.test", &out, &len));
    /* the server's own address: refused even though 127.0.0.1 is allowed */
    egress_policy *q = policy("", "", "127.0.0.1,localhost", NULL);
    CHECK(egress_policy_add_self(q, "127.0.0.1", 8080) == 0);
    CHECK(egress_check_addr(q, "localhost", sa("127.0.0.1", 8081), why, sizeof why));
    CHECK(!egress_check_addr(q, "localhost", sa("127.0.0.1", 8080), why, sizeof why) &&
          strstr(why, "own address"));
    CHECK(!egress_check_addr(q, "x", sa("::ffff:127.0.0.1", 8080), why, sizeof why));
    CHECK(!egress_check_addr(q, "x", sa("127.0.0.2", 8080), why, sizeof why));
    CHECK(egress_policy_add_self(q, "not-an-ip", 1) == -1);
    egress_policy *r = policy("", "", "10.0.0.0/8", NULL);
    CHECK(egress_policy_add_self(r, "0.0.0.0", 9000) == 0);
    CHECK(!egress_check_addr(r, "x", sa("10.1.1.1", 9000), why, sizeof why));
    CHECK(egress_check_addr(r, "x", sa("10.1.1.1", 9001), why, sizeof why));
    egress_policy_free(p);
    egress_policy_free(q);
    egress_policy_free(r);
}

static void test_bad_settings(void) {
    const egress_settings bad[] = {
        {NULL, NULL, "10.0.0.0/33", NULL}, {NULL, NULL, "1.2.3", NULL},
        {NULL, NULL, "10.0.0.0/", NULL},   {NULL, NULL, NULL, "name"},
        {NULL, NULL, NULL, "name=notip"},  {NULL, NULL, NULL, "=1.2.3.4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        egress_policy *p = (egress_policy *)0x1;
        sbx_err e = {0};
        CHECK(egress_policy_new(&bad[i], &p, &e) == SBX_EINVAL);
        CHECK(p == (egress_policy *)0x1 && strstr(e.msg, "EGRESS_"));
    }
    egress_policy_free(NULL);
    egress_scope_free(NULL);
}

int main(void) {
    test_wildcards();
    test_names();
    test_narrowing();
    test_classes();
    test_private_allowed();
    test_bad_settings();
    return CHECK_DONE();
}
