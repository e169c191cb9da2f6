"""Foundation: auth, errors, routing, body cap, /health, /openapi.json, --help, start-up
refusals, concurrency and stalled clients. Starts the real build/sandboxd."""

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest

from harness import BIN, TOKEN, Server, ServerTestCase


def run_bin(args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items() if k != "AUTH_TOKEN"}
    e.update(env or {})
    return subprocess.run([BIN] + args, env=e, capture_output=True, text=True, timeout=timeout)


def routes():
    out = run_bin(["--routes"]).stdout.strip().splitlines()
    return [tuple(line.split()) for line in out]


class TestAuth(ServerTestCase):
    def test_health_is_open(self):
        # a stranger learns only that the server is up, and its version
        for token in (None, "wrong-token"):
            r = self.server.get("/health", token=token)
            self.assertEqual(r.status, 200)
            self.assertEqual(set(r.json()), {"status", "version"}, r)
            self.assertEqual(r.json()["status"], "ok")
            self.assertNotIn(b"python", r.body)
            self.assertNotIn(b"chromium", r.body)

    def test_health_details_need_a_token(self):
        body = self.server.get("/health").json()
        self.assertEqual(body["status"], "ok")
        self.assertIn("version", body)
        self.assertIn("exec", body)
        self.assertIn("browser", body)
        self.assertIn("uptimeMs", body)
        # any valid token will do, whatever its scopes
        tok = self.server.post("/tokens", body={"label": "health", "scopes": ["exec"]}).json()
        try:
            body = self.server.get("/health", token=tok["token"]).json()
            self.assertIn("exec", body)
            self.assertIn("browser", body)
        finally:
            self.server.delete("/tokens/" + tok["id"])

    def test_missing_token(self):
        r = self.server.get("/openapi.json", token=None)
        self.assertError(r, 401, "unauthorized")
        self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))

    def test_wrong_token(self):
        for bad in ("nope", TOKEN + "x", TOKEN[:-1], ""):
            r = self.server.get("/openapi.json", token=bad)
            self.assertError(r, 401, "unauthorized")
            self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))

    def test_wrong_scheme(self):
        r = self.server.get("/openapi.json", token=None,
                            headers={"Authorization": "Basic " + TOKEN})
        self.assertError(r, 401, "unauthorized")

    def test_right_token(self):
        self.assertEqual(self.server.get("/openapi.json").status, 200)
        r = self.server.get("/openapi.json", token=None,
                            headers={"Authorization": "bearer " + TOKEN})
        self.assertEqual(r.status, 200)

    def test_routes_hidden_without_token(self):
        # Without a valid token every path answers 401, so the route table is not revealed.
        for method, path in (("GET", "/no/such/path"), ("DELETE", "/health"),
                             ("POST", "/execute"), ("GET", "/browser/sessions")):
            r = self.server.request(method, path, token=None)
            self.assertError(r, 401, "unauthorized")

    def test_token_never_logged(self):
        self.server.get("/openapi.json")
        self.server.get("/openapi.json", token="wrong-" + TOKEN)
        self.assertNotIn(TOKEN.encode(), self.server.read_log())

    def test_token_not_in_environ(self):
        with open(f"/proc/{self.server.proc.pid}/environ", "rb") as f:
            self.assertNotIn(TOKEN.encode(), f.read())


class TestErrors(ServerTestCase):
    server_env = {"MAX_BODY_BYTES": "4096"}

    def test_unknown_route(self):
        err = self.assertError(self.server.get("/no/such/path"), 404, "not_found")
        self.assertIn("/no/such/path", err["message"])

    def test_wrong_method(self):
        r = self.server.request("DELETE", "/health")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.header("Allow"), "GET")

    def test_body_cap_content_length(self):
        r = self.server.post("/tokens", raw=b"x" * 5000,
                             headers={"Content-Type": "application/json"})
        err = self.assertError(r, 413, "payload_too_large")
        self.assertIn("4096", err["message"])

    def test_body_cap_chunked(self):
        # A chunked body without Content-Length is cut off at the cap too.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(b"POST /tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 1024
        for _ in range(8):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 200:
            more = s.recv(4096)
            if not more:
                break
            data += more
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])
        self.assertIn(b"payload_too_large", data)

    BIG = 64 * 1024 * 1024  # far past the cap and past what the server drains to be polite

    def test_body_cap_chunked_big_curl(self):
        # curl streams a 64 MiB chunked body; it must see the 413, not "Send failure: Broken pipe"
        big = b"a" * self.BIG
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}",
             "-H", "Authorization: Bearer " + TOKEN, "-H", "Content-Type: application/json",
             "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
             "http://127.0.0.1:%d/execute" % self.server.port],
            input=big, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        body, _, status = p.stdout.rpartition(b"\n")
        self.assertEqual(status, b"413", p.stderr)
        self.assertEqual(json.loads(body)["error"]["code"], "payload_too_large")

    def test_body_cap_content_length_big_curl(self):
        big = b"a" * self.BIG
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}",
             "-H", "Authorization: Bearer " + TOKEN, "-H", "Content-Type: application/json",
             "--data-binary", "@-", "http://127.0.0.1:%d/execute" % self.server.port],
            input=big, capture_output=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, b"413"), p.stderr)

    def http_client_post(self, body, chunked):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        h = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
        try:
            if chunked:
                pieces = (body[i:i + 65536] for i in range(0, len(body), 65536))
                c.request("POST", "/execute", body=pieces, headers=h, encode_chunked=True)
            else:
                c.request("POST", "/execute", body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_body_cap_big_python_http_client(self):
        # http.client sends the whole body before it reads: the server must still be reading
        big = b"a" * self.BIG
        for chunked in (False, True):
            status, data = self.http_client_post(big, chunked)
            self.assertEqual(status, 413, (chunked, data))
            self.assertEqual(json.loads(data)["error"]["code"], "payload_too_large")
        self.assertEqual(self.server.get("/health").status, 200)

    def test_early_errors_with_a_big_body_arrive(self):
        # answers known from the headers alone (401, 404, 405) reach a client still sending
        big = b"a" * self.BIG
        for method, path, token, status in (("POST", "/execute", "wrong", 401),
                                            ("POST", "/no/such/path", TOKEN, 404),
                                            ("PUT", "/health", TOKEN, 405)):
            c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            try:
                c.request(method, path, body=big, headers={"Authorization": "Bearer " + token,
                                                           "Content-Type": "application/json"})
                r = c.getresponse()
                body = json.loads(r.read())
            finally:
                c.close()
            self.assertEqual(r.status, status, (method, path, body))
            self.assertIn("error", body)
            if status == 401:
                self.assertTrue(r.getheader("WWW-Authenticate").startswith("Bearer"))
            if status == 405:
                self.assertEqual(r.getheader("Allow"), "GET")

    def test_body_cap_slow_content_length(self):
        # a declared body that arrives slower than the answer: the 413 is there to read
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % self.BIG)
        for _ in range(20):
            s.sendall(b"a" * 65536)
            time.sleep(0.02)
        data = b""
        while True:
            more = s.recv(65536)
            if not more:
                break
            data += more
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])
        self.assertIn(b"Connection: close", data)
        self.assertIn(b"payload_too_large", data)

    def test_wrong_content_type(self):
        r = self.server.post("/tokens", raw=b"label=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 415, "unsupported_media_type")

    def test_malformed_json(self):
        r = self.server.post("/tokens", raw=b'{"label": "x",\n  "scopes": }',
                             headers={"Content-Type": "application/json"})
        err = self.assertError(r, 400, "invalid_request")
        self.assertIn("line 2", err["message"])

    def test_json_not_object(self):
        err = self.assertError(self.server.post("/tokens", body=[1, 2]), 400, "invalid_request")
        self.assertIn("object", err["message"])

    def test_field_type_named(self):
        err = self.assertError(self.server.post("/tokens", body={"label": 5, "scopes": ["exec"]}),
                               400, "invalid_request")
        self.assertIn("label", err["message"])

    def test_request_log_line(self):
        self.server.get("/no/such/path")
        # the line is written when the request completes, just after the reply was sent
        pattern = re.compile(rb"req=[0-9a-f]+ GET /no/such/path 404 \d+ms")
        deadline = time.time() + 5
        while not pattern.search(self.server.read_log()) and time.time() < deadline:
            time.sleep(0.02)
        self.assertRegex(self.server.read_log().decode(), pattern.pattern.decode())


class TestOpenAPI(ServerTestCase):
    def test_document_matches_router(self):
        doc = self.server.get("/openapi.json").json()
        self.assertTrue(doc["openapi"].startswith("3.1"))
        paths = doc["paths"]
        table = routes()
        self.assertGreaterEqual(len(table), 3)
        for method, pattern, _scope in table:
            self.assertIn(pattern, paths, f"route {method} {pattern} is not documented")
            self.assertIn(method.lower(), paths[pattern],
                          f"method {method} of {pattern} is not documented")
        documented = {(m.upper(), p) for p, ops in paths.items() for m in ops
                      if m in ("get", "post", "put", "delete", "patch")}
        self.assertEqual(documented, {(m, p) for m, p, _ in table},
                         "the document names routes the server does not have")

    def test_error_schema(self):
        doc = self.server.get("/openapi.json").json()
        self.assertIn("Error", doc["components"]["schemas"])


class TestCommandLine(unittest.TestCase):
    def test_help_lists_settings(self):
        r = run_bin(["--help"])
        self.assertEqual(r.returncode, 0)
        for name in ("AUTH_TOKEN", "HOST", "PORT", "DATA_DIR", "CHROMIUM_PATH", "PYTHON_PATH",
                     "MAX_BODY_BYTES", "LOG_LEVEL", "--dev"):
            self.assertIn(name, r.stdout)

    def test_help_markdown(self):
        r = run_bin(["--help-markdown"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("| flag | env |"))

    def test_version(self):
        r = run_bin(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sandboxd \d+\.\d+\.\d+")

    def test_refuses_without_token(self):
        r = run_bin([], env={"PORT": "0", "DATA_DIR": "/tmp/sandboxd-test-notoken"})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("AUTH_TOKEN", r.stderr)
        self.assertIn("--dev", r.stderr)

    def test_bad_values_name_the_setting(self):
        for env, words in (({"PORT": "99999"}, ("PORT", "65535")),
                           ({"MAX_BODY_BYTES": "-1"}, ("MAX_BODY_BYTES", "1024")),
                           ({"LOG_LEVEL": "chatty"}, ("LOG_LEVEL", "debug")),
                           ({"EXEC_TIMEOUT_MS": "abc"}, ("EXEC_TIMEOUT_MS", "120000"))):
            r = run_bin([], env=dict(env, AUTH_TOKEN=TOKEN))
            self.assertEqual(r.returncode, 2, env)
            for w in words:
                self.assertIn(w, r.stderr, env)

    def test_unknown_flag(self):
        r = run_bin(["--frobnicate"], env={"AUTH_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 2)
        self.assertIn("--frobnicate", r.stderr)

    def test_dev_mode_mints_token(self):
        srv = Server(token=None, dev=True)
        try:
            srv.start()
            log = srv.read_log().decode()
            self.assertIn("DEVELOPMENT MODE", log)
            m = re.search(r"Authorization: Bearer ([0-9a-f]{32})", log)
            self.assertTrue(m, log)
            self.assertEqual(srv.get("/openapi.json", token=m.group(1)).status, 200)
            self.assertEqual(srv.get("/openapi.json", token="guess").status, 401)
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()

    def test_one_server_per_data_dir(self):
        with Server() as first:
            second = Server(reuse=first)
            with self.assertRaises(RuntimeError) as ctx:
                second.start(timeout=10)
            self.assertIn("another sandboxd", str(ctx.exception))


class TestConcurrency(ServerTestCase):
    server_env = {"CONN_TIMEOUT_S": "2"}

    def test_200_concurrent_connections(self):
        n = 200
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
            socks.append(s)
        # every connection is open at once before any request is answered
        results = [None] * n

        def one(i):
            s = socks[i]
            path = b"/health" if i % 2 else b"/openapi.json"
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
            data = b""
            while True:
                more = s.recv(65536)
                if not more:
                    break
                data += more
            s.close()
            results[i] = data[:12]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual([r for r in results if r != b"HTTP/1.1 200"], [])

    def test_stalled_client_does_not_block_others(self):
        stalled = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        stalled.sendall(b"POST /tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
        t0 = time.time()
        self.assertEqual(self.server.get("/health").status, 200)
        self.assertLess(time.time() - t0, 2)
        # and the stalled connection is closed by the server after CONN_TIMEOUT_S
        stalled.settimeout(10)
        t0 = time.time()
        try:
            data = stalled.recv(100)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.time() - t0, 8)
        stalled.close()


if __name__ == "__main__":
    unittest.main()
