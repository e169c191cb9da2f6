"""Egress gateway end to end: code runs reach local sites only through the gateway, under the
operator's policy and the request's narrowing of it.

Every site is a LocalSite on 127.0.0.1; names are mapped to it with EGRESS_HOSTS and allowed
as private by name (EGRESS_PRIVATE_ALLOWED), as an air-gapped install would. Inside a run,
the gateway is 127.0.0.1:3128 of the run's own network namespace (HTTP_PROXY and friends).
"""

import base64
import hashlib
import http.client
import io
import json
import select
import socket
import socketserver
import threading
import time
import unittest
import zipfile

import harness

SITE = harness.LocalSite({"/hello": (200, "text/plain", "hi from site"),
                          "/big": (200, "application/octet-stream", b"x" * 200000)})
PYPI = harness.LocalSite({})
UPLOADS = harness.LocalSite({"/up": (200, "application/json", '{"url": "http://files/a.txt"}')})
NAMES = ["site.test", "a.wild.test", "wild.test", "bad.wild.test", "priv.test", "meta.test",
         "own.test", "pypi.test"]


def hosts():
    return ",".join(f"{n}=169.254.169.254" if n == "meta.test" else f"{n}=127.0.0.1"
                    for n in NAMES)


def tiny_wheel():
    """A wheel of one module, tinypkg (VALUE = 42), as bytes; and its file name."""
    name = "tinypkg-1.0-py3-none-any.whl"
    files = {"tinypkg/__init__.py": b"VALUE = 42\n",
             "tinypkg-1.0.dist-info/METADATA":
                 b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
             "tinypkg-1.0.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += "tinypkg-1.0.dist-info/RECORD,,\n"
    files["tinypkg-1.0.dist-info/RECORD"] = record.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return name, buf.getvalue()


WHEEL_NAME, WHEEL = tiny_wheel()
PYPI.routes["/files/" + WHEEL_NAME] = (200, "application/octet-stream", WHEEL)
PYPI.routes["/simple/tinypkg/"] = (
    200, "text/html",
    f'<html><body><a href="/files/{WHEEL_NAME}#sha256={hashlib.sha256(WHEEL).hexdigest()}">'
    f"{WHEEL_NAME}</a></body></html>")

# Python run inside the sandbox: a raw proxy exchange with the gateway; prints what came back.
RAW = """
import socket, sys
def raw(data, limit=4096):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=20)
    s.sendall(data)
    out = b''
    try:
        while len(out) < limit:
            b = s.recv(limit)
            if not b:
                break
            out += b
            s.settimeout(1)  # a tunnel stays open: what came in a second is the answer
    except socket.timeout:
        pass
    s.close()
    return out.decode(errors='replace')
"""


def exec_health(server):
    return server.get("/health").json()["exec"]


class AllowlistTest(harness.ServerTestCase):
    """Runs cloned from the pre-forked zygote (EXEC_MODE=zygote, the default); every one of them
    must have been (AllowlistForkTest below: the same cases on cold starts)."""

    server_env = {"EXEC_NETWORK": "allowlist",
                  "EGRESS_ALLOWED_DOMAINS": "site.test,*.wild.test,priv.test,meta.test,own.test,"
                                            "pypi.test",
                  "EGRESS_DENIED_DOMAINS": "bad.wild.test",
                  "EGRESS_PRIVATE_ALLOWED": "site.test,*.wild.test,own.test,pypi.test",
                  "EGRESS_HOSTS": hosts(), "EXEC_MODE": "zygote"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.server_env["EXEC_MODE"] == "zygote":
            harness.wait_zygote(cls.server)

    def tearDown(self):
        ex = exec_health(self.server)
        if self.server_env["EXEC_MODE"] == "zygote":
            self.assertEqual(ex["startedCold"], 0, "a run with network started cold")
        else:
            self.assertEqual(ex["startedZygote"], 0, ex)

    def run_code(self, code, **kw):
        r = self.server.post("/execute", {"code": code, "timeoutMs": 60000, **kw}, timeout=90)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def fetch(self, url, **kw):
        code = f"""
import urllib.request
try:
    print(urllib.request.urlopen({url!r}, timeout=10).read().decode())
except Exception as e:
    print('ERR', e)
"""
        return self.run_code(code, **kw)

    def test_allowed_name_through_urllib(self):
        res = self.fetch(f"http://site.test:{SITE.port}/hello")
        self.assertEqual(res["stdout"], "hi from site\n", res)
        self.assertEqual(res["violations"], [])
        net = res["network"]
        self.assertEqual(net["connections"], 1, res)
        self.assertGreater(net["bytesIn"], len("hi from site"))
        self.assertGreater(net["bytesOut"], 20)

    def test_a_run_with_network_comes_from_the_zygote(self):
        # In one run: the zygote's preloaded modules are there before the program imports
        # anything (a cold python3 -c has not imported fractions; with network the zygote has
        # imported urllib.request too, ~45 ms of a run otherwise), the proxy variables are in
        # os.environ and in the environment a child process gets, an allowed name is reached
        # through the gateway and a denied one refused.
        before = exec_health(self.server)
        code = f"""
import sys
print('warm' if 'fractions' in sys.modules else 'cold', 'urllib.request' in sys.modules)
import os, subprocess, urllib.request
print(os.environ.get('HTTP_PROXY'), subprocess.run(['sh', '-c', 'echo $ALL_PROXY'],
      capture_output=True, text=True).stdout.strip())
for name in ('site.test', 'bad.wild.test'):
    try:
        print(urllib.request.urlopen(f'http://{{name}}:{SITE.port}/hello', timeout=10).read().decode())
    except Exception as e:
        print('ERR', e)
"""
        res = self.run_code(code)
        after = exec_health(self.server)
        lines = res["stdout"].splitlines()
        zygote = self.server_env["EXEC_MODE"] == "zygote"
        self.assertEqual(lines[0], "warm True" if zygote else "cold False", res)
        self.assertEqual(after["startedZygote"] - before["startedZygote"], int(zygote), after)
        self.assertEqual(after["startedCold"] - before["startedCold"], int(not zygote), after)
        self.assertEqual(lines[1], "http://127.0.0.1:3128 socks5h://127.0.0.1:3128", res)
        self.assertEqual(lines[2], "hi from site", res)
        self.assertTrue(lines[3].startswith("ERR HTTP Error 403"), res)
        self.assertIn(f"sandbox: network access to bad.wild.test:{SITE.port} was refused: "
                      "denied by EGRESS_DENIED_DOMAINS", res["stderr"])
        self.assertEqual(res["violations"],
                         [{"kind": "network",
                           "detail": f"bad.wild.test:{SITE.port}: denied by EGRESS_DENIED_DOMAINS"}])
        self.assertEqual(res["network"]["connections"], 1, res)
        self.assertGreater(res["network"]["bytesIn"], len("hi from site"), res)

    def test_runs_keep_their_own_network(self):
        # two runs at once: each has its own listener (a run's connections are counted to it)
        import concurrent.futures
        code = f"""
import urllib.request
for _ in range({{n}}):
    urllib.request.urlopen('http://site.test:{SITE.port}/hello', timeout=10).read()
print('ok')
"""
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda n: self.run_code(code.format(n=n)), (1, 3)))
        self.assertEqual([r["stdout"] for r in runs], ["ok\n", "ok\n"], runs)
        self.assertEqual([r["network"]["connections"] for r in runs], [1, 3], runs)

    def test_wildcard_matches_the_name_and_below(self):
        for name in ("a.wild.test", "wild.test"):
            res = self.fetch(f"http://{name}:{SITE.port}/hello")
            self.assertEqual(res["stdout"], "hi from site\n", (name, res))

    def test_denied_wins_and_is_explained(self):
        res = self.fetch(f"http://bad.wild.test:{SITE.port}/hello")
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn(f"sandbox: network access to bad.wild.test:{SITE.port} was refused: "
                      "denied by EGRESS_DENIED_DOMAINS", res["stderr"])
        self.assertIn({"kind": "network",
                       "detail": f"bad.wild.test:{SITE.port}: denied by EGRESS_DENIED_DOMAINS"},
                      res["violations"])

    def test_outside_the_list_is_refused(self):
        res = self.fetch("http://example.org/")
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn("sandbox: network access to example.org:80 was refused: not in "
                      "allowedDomains", res["stderr"])
        self.assertEqual(res["network"]["connections"], 0)

    def test_private_address_needs_its_name_allowed(self):
        res = self.fetch(f"http://priv.test:{SITE.port}/hello")
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn("loopback address 127.0.0.1", res["stderr"])
        res = self.fetch("http://meta.test/latest/meta-data/")
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn("link-local address 169.254.169.254", res["stderr"])

    def test_servers_own_port_is_refused(self):
        res = self.fetch(f"http://own.test:{self.server.port}/health")
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn("the server's own address", res["stderr"])

    def test_narrowed_by_the_request(self):
        net = {"allowedDomains": ["site.test"]}
        res = self.fetch(f"http://site.test:{SITE.port}/hello", network=net)
        self.assertEqual(res["stdout"], "hi from site\n", res)
        res = self.fetch(f"http://a.wild.test:{SITE.port}/hello", network=net)
        self.assertIn("ERR HTTP Error 403", res["stdout"])
        self.assertIn("not in the request's allowedDomains", res["stderr"])
        res = self.fetch(f"http://a.wild.test:{SITE.port}/hello",
                         network={"allowedDomains": ["*.wild.test"]})
        self.assertEqual(res["stdout"], "hi from site\n", res)

    def test_python_sessions_go_through_the_gateway(self):
        fetch = ("import urllib.request\n"
                 "def get(u):\n"
                 "    try:\n"
                 "        return urllib.request.urlopen(u, timeout=10).read().decode()\n"
                 "    except Exception as e:\n"
                 "        return 'ERR %s' % e\n")
        r = self.server.post("/python/sessions",
                             {"network": {"allowedDomains": ["site.test"]}})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        # a session with network starts from the zygote like one without (cold in fork mode)
        with open(self.server.log_path, "rb") as f:
            started = [ln for ln in f.read().decode(errors="replace").splitlines()
                       if f"session={sid}: driver started" in ln]
        self.assertEqual(len(started), 1, started)
        want = "zygote)" if self.server_env["EXEC_MODE"] == "zygote" else "cold)"
        self.assertIn(want, started[0])
        try:
            def execute(code):
                res = self.server.post(f"/python/sessions/{sid}/execute",
                                       {"code": code, "timeoutMs": 30000}, timeout=60)
                self.assertEqual(res.status, 200, res)
                return res.json()
            execute(fetch)
            self.assertEqual(execute(f"get('http://site.test:{SITE.port}/hello')")["result"],
                             "'hi from site'")
            # narrowed at create: another name of the operator's list is refused
            res = execute(f"get('http://a.wild.test:{SITE.port}/hello')")
            self.assertIn("403", res["result"], res)
            # commands share the session's network: curl through the same gateway
            cmd = self.server.post(f"/python/sessions/{sid}/commands", {
                "command": f"curl -s http://site.test:{SITE.port}/hello"}, timeout=60).json()
            self.assertEqual(cmd["stdout"], "hi from site", cmd)
            net = self.server.get(f"/python/sessions/{sid}").json()["network"]
            self.assertEqual(net["connections"], 2, net)
            self.assertGreaterEqual(net["refused"], 1, net)
        finally:
            self.assertEqual(self.server.delete(f"/python/sessions/{sid}").status, 204)
        # widening is refused at create, naming the domain
        r = self.server.post("/python/sessions", {"network": {"allowedDomains": ["evil.test"]}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("evil.test", r.json()["error"]["message"])

    def test_widened_is_400_naming_the_domain(self):
        for extra in ("example.org", "*.test", "*"):
            r = self.server.post("/execute", {"code": "print(1)",
                                              "network": {"allowedDomains": ["site.test", extra]}})
            err = self.assertError(r, 400, "invalid_request")
            self.assertIn(f'"{extra}"', err["message"])
            self.assertIn("network.allowedDomains", err["message"])
        r = self.server.post("/execute", {"code": "print(1)", "network": {"allowed": []}})
        self.assertError(r, 400, "invalid_request")
        r = self.server.post("/execute", {"code": "print(1)", "network": {"allowedDomains": "x"}})
        self.assertError(r, 400, "invalid_request")

    def test_metrics_count_the_gateway(self):
        self.fetch(f"http://site.test:{SITE.port}/hello")
        self.fetch("http://example.org/")
        text = self.server.get("/metrics").body.decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("sandboxd_egress_"):
                name, _, value = line.rpartition(" ")
                values[name] = int(value)
        self.assertGreaterEqual(values["sandboxd_egress_connections_total"], 1, text)
        self.assertGreaterEqual(values["sandboxd_egress_refused_total"], 1, text)
        self.assertGreater(values['sandboxd_egress_bytes_total{direction="in"}'], 10, text)
        self.assertGreater(values['sandboxd_egress_bytes_total{direction="out"}'], 10, text)
        self.assertIn("sandboxd_egress_failed_total", values)

    def test_curl_through_http_and_socks(self):
        code = f"""
import subprocess
for extra in ([], ['--proxy', 'socks5h://127.0.0.1:3128']):
    p = subprocess.run(['curl', '-sS', '--max-time', '10', *extra,
                        'http://site.test:{SITE.port}/hello'], capture_output=True, text=True)
    print(p.returncode, p.stdout)
p = subprocess.run(['curl', '-sS', '--max-time', '10', 'http://example.org/'],
                   capture_output=True, text=True)
print(p.stdout)
"""
        res = self.run_code(code)
        self.assertEqual(res["stdout"].splitlines()[:2], ["0 hi from site", "0 hi from site"], res)
        self.assertIn("was refused: not in allowedDomains", res["stdout"])
        self.assertEqual(res["network"]["connections"], 2)

    def test_pip_installs_from_a_local_index(self):
        code = f"""
import subprocess, sys
p = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-cache-dir',
                    '--disable-pip-version-check', '--no-input', '--target', '/tmp/t',
                    '--index-url', 'http://pypi.test:{PYPI.port}/simple/',
                    '--trusted-host', 'pypi.test', 'tinypkg'], capture_output=True, text=True)
print(p.returncode)
print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
sys.path.insert(0, '/tmp/t')
import tinypkg
print(tinypkg.VALUE)
"""
        res = self.run_code(code)
        self.assertEqual(res["stdout"], "0\n42\n", res)
        paths = [p for _, p, _, _ in PYPI.requests]
        self.assertIn("/simple/tinypkg/", paths)
        self.assertIn("/files/" + WHEEL_NAME, paths)

    def test_direct_connections_around_the_gateway_fail(self):
        code = f"""
import socket
for host, port in [('127.0.0.1', {SITE.port}), ('127.0.0.1', {self.server.port}),
                   ('::1', {SITE.port})]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print('CONNECTED', host, port)
    except OSError as e:
        print('refused', host, port, type(e).__name__)
try:
    socket.getaddrinfo('example.org', 80)
    print('RESOLVED')
except OSError as e:
    print('no dns')
"""
        res = self.run_code(code)
        self.assertNotIn("CONNECTED", res["stdout"], res)
        self.assertNotIn("RESOLVED", res["stdout"], res)
        self.assertEqual(res["stdout"].count("refused"), 3, res)

    def test_a_direct_connection_is_explained(self):
        # localhost is in NO_PROXY: urllib connects directly, and Landlock refuses it
        res = self.run_code(f"import urllib.request\nurllib.request.urlopen('http://localhost:{SITE.port}/')")
        self.assertNotEqual(res["exitCode"], 0, res)
        self.assertIn("sandbox: direct connections are refused; network access goes through the "
                      "egress gateway", res["stderr"])

    def test_huge_connect_head_and_bad_requests(self):
        code = RAW + """
print(raw(b'CONNECT site.test:80 HTTP/1.1\\r\\nX: ' + b'a' * 40000 + b'\\r\\n\\r\\n').split('\\r\\n')[0])
print(raw(b'GET https://site.test/ HTTP/1.1\\r\\n\\r\\n').split('\\r\\n')[0])
print(raw(b'\\x05\\x01\\x00\\x05\\x02\\x00\\x01\\x7f\\x00\\x00\\x01\\x00\\x50').encode().hex())
"""
        res = self.run_code(code)
        lines = res["stdout"].splitlines()
        self.assertEqual(lines[0], "HTTP/1.1 431 Request Header Fields Too Large", res)
        self.assertTrue(lines[1].startswith("HTTP/1.1 400"), res)
        self.assertEqual(lines[2][:4], "0500", res)  # no-auth accepted
        self.assertEqual(lines[2][6:8], "07", res)  # BIND: command not supported

    def test_slowloris_is_cut_off(self):
        # one byte every half second, never finishing the head: the gateway answers 408 (or
        # closes) once EGRESS_HEAD_TIMEOUT_MS (10 s) has passed since the connection came
        code = """
import select, socket, time
s = socket.create_connection(('127.0.0.1', 3128), timeout=30)
t0 = time.time()
out = b''
try:
    for ch in b'CONNECT site.test:80 HTTP/1.1\\r\\nX-Slow: ' + b'a' * 60:
        if select.select([s], [], [], 0)[0]:
            out = s.recv(100)
            break
        s.sendall(bytes([ch]))
        time.sleep(0.5)
    else:
        print('not cut')
except OSError:
    pass
print(round(time.time() - t0), out.split(b'\\r\\n')[0].decode())
"""
        res = self.run_code(code)
        took, _, status = res["stdout"].strip().partition(" ")
        self.assertNotIn("not cut", res["stdout"], res)
        self.assertGreaterEqual(int(took), 9, res)
        self.assertLessEqual(int(took), 12, res)
        self.assertIn(status, ("HTTP/1.1 408 Request Timeout", ""), res)


class AllowlistForkTest(AllowlistTest):
    """The same cases on cold starts (EXEC_MODE=fork)."""

    server_env = dict(AllowlistTest.server_env, EXEC_MODE="fork")


class OpenModeEscapeTest(harness.ServerTestCase):
    """EXEC_NETWORK=open: any name, but never a private address it was not allowed, however it
    is spelled or resolved."""

    server_env = {"EXEC_NETWORK": "open", "EGRESS_PRIVATE_ALLOWED": "site.test",
                  "EGRESS_HOSTS": "site.test=127.0.0.1"}

    def connect_line(self, target):
        code = RAW + f"print(raw(b'CONNECT {target} HTTP/1.1\\r\\n\\r\\n'))"
        r = self.server.post("/execute", {"code": code, "timeoutMs": 30000}, timeout=60)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_open_mode_reaches_allowed_private_name(self):
        res = self.connect_line(f"site.test:{SITE.port}")
        self.assertIn("200 Connection established", res["stdout"], res)

    def test_ip_literals_and_mapped_forms_are_refused(self):
        for target, cls in ((f"127.0.0.1:{SITE.port}", "loopback"),
                            (f"[::1]:{SITE.port}", "loopback"),
                            (f"[::ffff:127.0.0.1]:{SITE.port}", "loopback"),
                            ("[::ffff:169.254.169.254]:80", "link-local"),
                            ("169.254.169.254:80", "link-local"),
                            ("[fe80::1]:80", "link-local"),
                            ("10.0.0.1:80", "private")):
            res = self.connect_line(target)
            self.assertIn("HTTP/1.1 403", res["stdout"], (target, res))
            self.assertIn(f"{cls} address", res["stdout"], (target, res))
            self.assertIn("was refused", res["stderr"], (target, res))

    def test_dns_answer_pointing_at_loopback_is_refused(self):
        # "localhost" is not in EGRESS_HOSTS: the gateway resolves it (through the system's
        # resolver, /etc/hosts) and refuses the loopback answer it gets
        res = self.connect_line(f"localhost:{SITE.port}")
        self.assertIn("HTTP/1.1 403", res["stdout"], res)
        self.assertIn("loopback address", res["stdout"], res)

    def test_connect_to_the_servers_own_port(self):
        res = self.connect_line(f"site.test:{self.server.port}")
        self.assertIn("HTTP/1.1 403", res["stdout"], res)
        self.assertIn("the server's own address", res["stdout"], res)


class UploadPolicyTest(harness.ServerTestCase):
    """fileUploadUrl: the server's own outbound call obeys the private-address rule, resolves
    through EGRESS_HOSTS first and is pinned to the address it checked."""

    server_env = {"EGRESS_PRIVATE_ALLOWED": "up.test",
                  "EGRESS_HOSTS": "up.test=127.0.0.1,meta.test=169.254.169.254,self.test=127.0.0.1"}

    def upload(self, url):
        r = self.server.post("/execute", {"code": "open('a.txt', 'w').write('A')",
                                          "fileUploadUrl": url})
        self.assertEqual(r.status, 200, r)
        return r.json()["uploads"]

    def test_allowed_name_is_pinned_to_its_mapped_address(self):
        before = len(UPLOADS.requests)
        ups = self.upload(f"http://up.test:{UPLOADS.port}/up")  # up.test is in no DNS
        self.assertEqual(ups, [{"filename": "a.txt", "url": "http://files/a.txt", "status": 200}])
        self.assertEqual(len(UPLOADS.requests), before + 1)
        self.assertEqual(UPLOADS.requests[-1][2].get("Host"), f"up.test:{UPLOADS.port}")

    def test_private_destinations_are_refused(self):
        before = len(UPLOADS.requests)
        for url, why in ((f"http://127.0.0.1:{UPLOADS.port}/up", "loopback address 127.0.0.1"),
                         (f"http://localhost:{UPLOADS.port}/up", "loopback address"),
                         ("http://meta.test/latest", "link-local address 169.254.169.254"),
                         (f"http://[::1]:{UPLOADS.port}/up", "loopback address ::1")):
            ups = self.upload(url)
            self.assertEqual(len(ups), 1, ups)
            self.assertEqual(ups[0]["status"], 0, (url, ups))
            self.assertIn("refused by the egress policy", ups[0]["error"], (url, ups))
            self.assertIn(why, ups[0]["error"], (url, ups))
        self.assertEqual(len(UPLOADS.requests), before)


class UploadToTheServerTest(harness.ServerTestCase):
    server_env = {"EGRESS_PRIVATE_ALLOWED": "127.0.0.1"}

    def test_the_servers_own_port_is_refused(self):
        r = self.server.post("/execute", {"code": "open('a.txt', 'w').write('A')",
                                          "fileUploadUrl": f"http://127.0.0.1:{self.server.port}/tokens"})
        ups = r.json()["uploads"]
        self.assertEqual(ups[0]["status"], 0, ups)
        self.assertIn("the server's own address", ups[0]["error"])


class BrowserEgressTest(harness.BrowserSiteCase):
    """Chromium's every request goes through the gateway (loopback too), under BROWSER_NETWORK
    and the session's own narrowing; a refused navigation is navigation_failed naming it."""

    server_env = {"BROWSER_NETWORK": "allowlist", "BROWSER_POOL_SIZE": "1",
                  "EGRESS_ALLOWED_DOMAINS": "site.test,*.wild.test,meta.test,127.0.0.1",
                  "EGRESS_PRIVATE_ALLOWED": "site.test,*.wild.test,127.0.0.1",
                  "EGRESS_HOSTS": hosts()}
    pages = {"/": (200, "text/html", "<title>egress</title><p>through the gateway</p>"),
             "/leaky.html": (200, "text/html",
                             "<title>leaky</title><img src='http://example.org/pixel.png'>"
                             "<script>fetch('http://meta.test/latest/meta-data/')"
                             ".catch(() => {});</script>")}

    def session(self, **body):
        r = self.server.post("/browser/sessions", body)
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(self.server.delete, f"/browser/sessions/{sid}")
        return sid

    def navigate(self, sid, url):
        return self.server.post(f"/browser/sessions/{sid}/navigate",
                                {"url": url, "timeoutMs": 15000}, timeout=30)

    def test_names_only_the_gateway_knows_are_reached(self):
        sid = self.session()
        r = self.navigate(sid, f"http://site.test:{self.site.port}/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["title"], "egress")
        entry = [x for x in self.server.get("/browser/sessions").json()["sessions"]
                 if x["sessionId"] == sid][0]
        self.assertGreaterEqual(entry["network"]["connections"], 1, entry)
        self.assertGreater(entry["network"]["bytesIn"], 50, entry)

    def test_refused_navigations_name_the_policy(self):
        sid = self.session()
        for url, why in (("http://example.org/", "not in allowedDomains"),
                         ("https://example.org/", "not in allowedDomains"),
                         ("http://meta.test/latest/meta-data/", "link-local address 169.254.169.254"),
                         (f"http://127.0.0.1:{self.server.port}/health", "the server's own address")):
            r = self.navigate(sid, url)
            err = self.assertError(r, 502, "navigation_failed")
            self.assertIn("refused by the egress policy", err["message"], (url, err))
            self.assertIn(why, err["message"], (url, err))
        self.assertEqual(self.navigate(sid, self.site.url + "/").status, 200)

    def blocked_frames(self, sid, want, timeout=15):
        """The session's blocked frames (?types=blocked, replayed from seq 1), read until
        every host in `want` has one or `timeout` passes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        self.addCleanup(conn.close)
        conn.request("GET", f"/browser/sessions/{sid}/events?from=1&types=blocked",
                     headers={"Authorization": "Bearer " + self.server.token})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        frames, kinds, deadline = [], [], time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not want <= {f["host"] for f in frames}:
                line = resp.readline().decode()
                if line.startswith("event: "):
                    kinds.append(line[7:].strip())
                elif line.startswith("data: "):
                    frames.append(json.loads(line[6:]))
        except socket.timeout:
            pass
        self.assertEqual(set(kinds), {"blocked"} if kinds else set(), kinds)
        return frames

    def test_refused_requests_of_a_page_are_blocked_events(self):
        sid = self.session()
        r = self.navigate(sid, self.site.url + "/leaky.html")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["title"], "leaky")
        r = self.navigate(sid, "http://example.net/")
        err = self.assertError(r, 502, "navigation_failed")
        self.assertIn("example.net:80 was refused by the egress policy: not in allowedDomains",
                      err["message"])
        frames = self.blocked_frames(sid, {"example.org", "meta.test", "example.net"})
        by_host = {f["host"]: f for f in frames}
        self.assertIn("example.org", by_host, frames)
        self.assertEqual(by_host["example.org"]["port"], 80)
        self.assertIn("not in allowedDomains", by_host["example.org"]["reason"])
        self.assertIn("meta.test", by_host, frames)
        self.assertIn("link-local address 169.254.169.254", by_host["meta.test"]["reason"])
        self.assertIn("example.net", by_host, frames)
        for f in frames:
            self.assertEqual((f["type"], f["session"], f["tabId"]), ("blocked", sid, ""), f)
            self.assertGreaterEqual(f["seq"], 1)
        self.assertNotIn("127.0.0.1", by_host)  # the allowed page itself is not blocked
        entry = self.server.get(f"/browser/sessions/{sid}").json()
        self.assertGreaterEqual(entry["network"]["refused"], 3, entry)

    def test_session_narrows_never_widens(self):
        sid = self.session(network={"allowedDomains": ["site.test"]})
        self.assertEqual(self.navigate(sid, f"http://site.test:{self.site.port}/").status, 200)
        r = self.navigate(sid, f"http://a.wild.test:{self.site.port}/")
        err = self.assertError(r, 502, "navigation_failed")
        self.assertIn("not in the request's allowedDomains", err["message"])
        r = self.server.post("/browser/sessions", {"network": {"allowedDomains": ["example.org"]}})
        err = self.assertError(r, 400, "invalid_request")
        self.assertIn('"example.org"', err["message"])
        r = self.server.post("/browser/sessions", {"network": {"allowedDomains": ["x"], "y": 1}})
        self.assertError(r, 400, "invalid_request")


class RecordingProxy:
    """A test upstream proxy on 127.0.0.1 (HTTP CONNECT, or SOCKS5 with username/password)
    that records what it was asked and relays to 127.0.0.1 targets only."""

    def __init__(self, socks=False):
        self.seen = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                c = self.request
                c.settimeout(10)
                try:
                    port = proxy.socks_handshake(c) if socks else proxy.http_handshake(c)
                    if port:
                        proxy.relay(c, socket.create_connection(("127.0.0.1", port), timeout=10))
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def http_handshake(self, c):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            b = c.recv(4096)
            if not b:
                return None
            head += b
        lines = head.decode(errors="replace").split("\r\n")
        auth = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("proxy-authorization:")]
        self.seen.append((lines[0], auth[0] if auth else None))
        host, _, port = lines[0].split(" ")[1].rpartition(":")
        if host != "127.0.0.1":
            c.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return None
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return int(port)

    def socks_handshake(self, c):
        def exact(n):
            out = b""
            while len(out) < n:
                b = c.recv(n - len(out))
                if not b:
                    raise OSError("closed")
                out += b
            return out
        ver, n = exact(2)
        methods = exact(n)
        if 2 not in methods:
            c.sendall(b"\x05\xff")
            return None
        c.sendall(b"\x05\x02")
        _, ul = exact(2)
        user = exact(ul).decode()
        pl = exact(1)[0]
        pw = exact(pl).decode()
        c.sendall(b"\x01\x00")
        _, cmd, _, atyp = exact(4)
        if atyp == 1:
            host = socket.inet_ntoa(exact(4))
        else:
            host = exact(exact(1)[0]).decode()
        port = int.from_bytes(exact(2), "big")
        self.seen.append((f"{host}:{port}", f"{user}:{pw}"))
        if host != "127.0.0.1" or cmd != 1:
            c.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
            return None
        c.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        return port

    @staticmethod
    def relay(a, b):
        a.settimeout(None)
        b.settimeout(None)
        try:
            while True:
                r, _, _ = select.select([a, b], [], [], 15)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        finally:
            b.close()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class UpstreamProxyTest(harness.BrowserSiteCase):
    """A session's own upstream proxy, with credentials Chromium could not send to a SOCKS5
    proxy itself: the gateway does."""

    server_env = {"BROWSER_POOL_SIZE": "1"}
    pages = {"/": (200, "text/html", "<title>via upstream</title>")}

    def run_session(self, proxy):
        r = self.server.post("/browser/sessions", {"proxy": proxy})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(self.server.delete, f"/browser/sessions/{sid}")
        return self.server.post(f"/browser/sessions/{sid}/navigate",
                                {"url": self.site.url + "/", "timeoutMs": 15000}, timeout=30)

    def test_http_upstream_gets_the_credentials(self):
        up = RecordingProxy()
        self.addCleanup(up.close)
        r = self.run_session({"server": f"http://127.0.0.1:{up.port}", "username": "alice",
                              "password": "s3cret"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["title"], "via upstream")
        want = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        self.assertIn((f"CONNECT 127.0.0.1:{self.site.port} HTTP/1.1", want), up.seen)

    def test_socks5_upstream_gets_the_credentials(self):
        up = RecordingProxy(socks=True)
        self.addCleanup(up.close)
        r = self.run_session({"server": f"socks5://127.0.0.1:{up.port}", "username": "bob",
                              "password": "pw"})
        self.assertEqual(r.status, 200, r)
        self.assertIn((f"127.0.0.1:{self.site.port}", "bob:pw"), up.seen)

    def test_bad_proxy_is_400(self):
        for proxy in ({"server": "ftp://127.0.0.1:1"}, {"server": "http://127.0.0.1"},
                      {"username": "x"}, "http://x:1", {"server": "http://h:1", "extra": 1}):
            r = self.server.post("/browser/sessions", {"proxy": proxy})
            self.assertError(r, 400, "invalid_request")


class NoNetworkTest(harness.ServerTestCase):
    """EXEC_NETWORK=none (the default): no proxy, no sockets out, allowedDomains refused."""

    def test_no_network_and_no_narrowing(self):
        r = self.server.post("/execute", {"code": "import os; print(os.environ.get('HTTP_PROXY'))"})
        res = r.json()
        self.assertEqual(res["stdout"], "None\n", res)
        self.assertEqual(res["network"], {"bytesIn": 0, "bytesOut": 0, "connections": 0})
        r = self.server.post("/execute", {"code": "print(1)",
                                          "network": {"allowedDomains": ["site.test"]}})
        err = self.assertError(r, 400, "invalid_request")
        self.assertIn("EXEC_NETWORK=none", err["message"])

    def test_the_zygote_preloads_no_http_client_without_network(self):
        # urllib.request (with http.client, ssl, email) is preloaded only for runs that can use it
        harness.wait_zygote(self.server)
        tiers = exec_health(self.server)["zygote"]["tiers"]
        self.assertTrue(all("fractions" in t["modules"] for t in tiers), tiers)
        self.assertFalse(any("urllib.request" in t["modules"] for t in tiers), tiers)
        res = self.server.post("/execute", {"code": "import sys\n"
                                            "print('urllib.request' in sys.modules)"}).json()
        self.assertEqual(res["stdout"], "False\n", res)


def tearDownModule():
    SITE.close()
    PYPI.close()
    UPLOADS.close()


if __name__ == "__main__":
    unittest.main()
