"""POST /execute with real python3: results, exit codes, timeouts, output caps, concurrency
and 429, SSE streaming, uploads to a local endpoint, and 400s that name the field."""

import http.client
import json
import os
import re
import threading
import time
import unittest

from harness import TOKEN, LocalSite, Server, ServerTestCase, wait_until


class TestExecute(ServerTestCase):
    server_env = {"EXEC_OUTPUT_BYTES": "65536"}

    def run_code(self, code, **extra):
        r = self.server.post("/execute", dict({"code": code}, **extra), timeout=60)
        self.assertEqual(r.status, 200, r)
        # a zygote run answers while the kernel still tears its process down; its directory
        # goes right after (and its slot is held until then)
        runs = os.path.join(self.server.data_dir, "runs")
        self.assertTrue(wait_until(lambda: not os.listdir(runs), 5),
                        "the run directory outlived its run")
        return r.json()

    def test_result_and_separate_streams(self):
        res = self.run_code("import sys\nprint(2 + 2)\nprint('oops', file=sys.stderr)")
        self.assertEqual(res["exitCode"], 0)
        self.assertEqual(res["stdout"], "4\n")
        self.assertEqual(res["stderr"], "oops\n")
        self.assertEqual(res["uploads"], [])
        self.assertFalse(res["timedOut"])
        self.assertIsNone(res["signal"])
        self.assertIsInstance(res["durationMs"], int)

    def test_exit_codes_and_tracebacks(self):
        self.assertEqual(self.run_code("import sys; sys.exit(3)")["exitCode"], 3)
        res = self.run_code("raise ValueError('bad input')")
        self.assertEqual(res["exitCode"], 1)
        self.assertIn("ValueError: bad input", res["stderr"])
        self.assertIn("Traceback", res["stderr"])
        res = self.run_code("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
        self.assertIsNone(res["exitCode"])
        self.assertEqual(res["signal"], "SEGV")

    def test_unicode_and_cwd(self):
        res = self.run_code("import os\nprint('héllo ✓ 日本')\nprint(os.getcwd())\n"
                            "open('f.txt','w').write('x'); print(os.listdir('.'))")
        self.assertEqual(res["exitCode"], 0, res)
        lines = res["stdout"].splitlines()
        self.assertEqual(lines[0], "héllo ✓ 日本")
        self.assertEqual(lines[1], "/work")
        self.assertEqual(lines[2], "['f.txt']")

    def test_timeout_kills_quickly(self):
        t0 = time.time()
        res = self.run_code("import time\nprint('before', flush=True)\ntime.sleep(3600)",
                            timeoutMs=1000)
        self.assertLess(time.time() - t0, 5)
        self.assertTrue(res["timedOut"])
        self.assertIsNone(res["exitCode"])
        self.assertEqual(res["stdout"], "before\n")
        self.assertIn("timeoutMs", res["stderr"])

    def rss_kib(self):
        with open("/proc/%d/status" % self.server.proc.pid) as f:
            return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])

    def test_output_cap_is_marked(self):
        res = self.run_code("print('x' * 5_000_000)")
        self.assertTrue(res["truncated"])
        self.assertLess(len(res["stdout"]), 65536 + 200)
        self.assertIn("truncated at 65536 bytes", res["stdout"])
        self.assertEqual(res["exitCode"], 0)
        # a flood far larger than the cap leaves the server's memory where it was
        before = self.rss_kib()
        res = self.run_code("import sys\nfor _ in range(60):\n"
                            "    sys.stdout.write('y' * 1_000_000); sys.stderr.write('z' * 1_000_000)",
                            timeoutMs=30000)
        self.assertTrue(res["truncated"])
        self.assertEqual(res["exitCode"], 0, res["stderr"][-300:])
        self.assertLess(self.rss_kib() - before, 40 * 1024)

    def test_chatty_program_does_not_deadlock(self):
        res = self.run_code("import sys\nfor i in range(20000):\n"
                            "    sys.stdout.write('o' * 50 + '\\n'); sys.stderr.write('e' * 50 + '\\n')\n"
                            "print('END', file=sys.stderr)", timeoutMs=20000)
        self.assertFalse(res["timedOut"], res["stderr"][-300:])
        self.assertEqual(res["exitCode"], 0)

    def test_large_program(self):
        code = "x = 0\n" + "x += 1\n" * 30000 + "print(x)\n"  # > 100 KiB: sent as a file
        res = self.run_code(code)
        self.assertEqual(res["stdout"], "30000\n", res["stderr"][-500:])

    def test_numpy_is_available(self):
        res = self.run_code("import numpy as np\nprint(int(np.arange(10).sum()))")
        self.assertEqual(res["stdout"], "45\n", res["stderr"][-500:])

    def test_bad_requests_name_the_field(self):
        for body, field in (({}, "code"), ({"code": 5}, "code"),
                            ({"code": "1", "timeoutMs": 0}, "timeoutMs"),
                            ({"code": "1", "timeoutMs": 120001}, "timeoutMs"),
                            ({"code": "1", "timeoutMs": "1s"}, "timeoutMs"),
                            ({"code": "1", "fileUploadUrl": "ftp://x/y"}, "fileUploadUrl"),
                            ({"code": "1", "public": "yes"}, "public"),
                            ({"code": "1", "language": "ruby"}, "language")):
            err = self.assertError(self.server.post("/execute", body), 400, "invalid_request")
            self.assertIn(field, err["message"], body)

    def test_uploads(self):
        got = []

        def endpoint(h):
            got.append((h.headers.get("Authorization"), h.headers.get("Content-Type"), h.body))
            reply = json.dumps({"url": "http://files.local/%d" % len(got)}).encode()
            h.send_response(201)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(reply)))
            h.end_headers()
            h.wfile.write(reply)

        with LocalSite({"/up": endpoint}) as site:
            res = self.run_code("import os\nopen('a.txt','w').write('ALPHA')\n"
                                "os.mkdir('sub'); open('sub/b.csv','w').write('1,2')",
                                fileUploadUrl=site.url + "/up", uploadToken="up-secret",
                                public=True)
        ups = sorted(res["uploads"], key=lambda u: u["filename"])
        self.assertEqual([u["filename"] for u in ups], ["a.txt", "sub/b.csv"])
        self.assertEqual({u["status"] for u in ups}, {201})
        self.assertEqual(sorted(u["url"] for u in ups),
                         ["http://files.local/1", "http://files.local/2"])
        for authz, ctype, body in got:
            self.assertEqual(authz, "Bearer up-secret")
            self.assertTrue(ctype.startswith("multipart/form-data"))
            self.assertIn(b'name="file"', body)
            self.assertIn(b'name="public"', body)
            self.assertIn(b"true", body)
        self.assertIn(b"ALPHA", b"".join(g[2] for g in got))

    def test_unreachable_upload_endpoint(self):
        with LocalSite({}) as site:
            dead = site.url + "/up"
        res = self.run_code("open('a.txt','w').write('A')", fileUploadUrl=dead)
        self.assertEqual(res["exitCode"], 0)
        self.assertEqual(len(res["uploads"]), 1)
        self.assertEqual(res["uploads"][0]["status"], 0)
        self.assertTrue(res["uploads"][0]["error"])

    def test_sse_stream(self):
        code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')"
        got = list(self.server.execute_events({"code": code}, timeout=30))
        events = [(e, d) for e, d, _ in got]
        stamps = [t for _, _, t in got]
        names = [e for e, _ in events]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        out = [(d["data"], t) for (e, d), t in zip(events, stamps) if e == "stdout"]
        self.assertEqual("".join(d for d, _ in out), "first\nsecond\n")
        # the first line arrived before the program finished sleeping
        self.assertLess(out[0][1], stamps[-1] - 0.5)
        done = events[-1][1]
        self.assertEqual(done["exitCode"], 0)
        self.assertEqual(done["stdout"], "first\nsecond\n")

    def test_sse_client_leaving_kills_the_run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.request("POST", "/execute", body=json.dumps(
            {"code": "import time\ntime.sleep(3600)", "timeoutMs": 60000}), headers={
            "Authorization": "Bearer " + TOKEN, "Content-Type": "application/json",
            "Accept": "text/event-stream"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.readline().decode().strip(), "event: start")
        runs = os.path.join(self.server.data_dir, "runs")
        self.assertEqual(len(os.listdir(runs)), 1)
        conn.sock.shutdown(2)
        conn.close()
        deadline = time.time() + 15
        while os.listdir(runs) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(os.listdir(runs), [], "the run outlived its client")
        self.assertEqual(self.server.get("/health").json()["exec"]["running"], 0)


class TestExecMetrics(ServerTestCase):
    """/metrics counts what the sandbox ended and refused, by kind, and nothing else."""

    server_env = {"BROWSER_POOL_SIZE": "0", "EXEC_FILE_SIZE_MB": "1"}

    def counters(self):
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200, r)
        out = {}
        for line in r.body.decode().splitlines():
            m = re.match(r"(sandboxd_exec_\w+)(\{[^}]*\})? (\d+)$", line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
        return out

    def test_kills_and_violations_move_their_counters(self):
        before = self.counters()
        self.assertIn('sandboxd_exec_kills_total{reason="timeout"}', before)
        self.assertIn('sandboxd_exec_violations_total{kind="network"}', before)
        post = self.server.post
        res = post("/execute", {"code": "import time; time.sleep(60)", "timeoutMs": 300}).json()
        self.assertTrue(res["timedOut"], res)
        res = post("/execute", {"code": "import socket; socket.socket(socket.AF_INET)"}).json()
        self.assertEqual([v["kind"] for v in res["violations"]], ["network"], res)
        # (Python ignores SIGXFSZ and sees EFBIG; a program that does not is killed)
        res = post("/execute", {"code": "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
                                        "open('big', 'wb').write(b'x' * (2 << 20))"}).json()
        self.assertEqual(res["signal"], "XFSZ", res)
        after = self.counters()
        moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        started = sum(moved.pop(k, 0) for k in ('sandboxd_exec_runs_started_total{start="zygote"}',
                                                'sandboxd_exec_runs_started_total{start="cold"}'))
        self.assertEqual(started, 3)
        self.assertEqual(moved, {'sandboxd_exec_kills_total{reason="timeout"}': 1,
                                 'sandboxd_exec_kills_total{reason="file_size"}': 1,
                                 'sandboxd_exec_violations_total{kind="network"}': 1,
                                 'sandboxd_exec_violations_total{kind="limit"}': 1})


class TestStalledReader(ServerTestCase):
    """A streaming client that stops reading must not hold its run (and the run's slot) past
    the run's own deadline: after CONN_TIMEOUT_S without progress it counts as gone."""

    server_env = {"CONN_TIMEOUT_S": "2", "EXEC_OUTPUT_BYTES": str(32 * 1024 * 1024),
                  "BROWSER_POOL_SIZE": "0"}

    def test_stalled_sse_reader_ends_the_run(self):
        import socket
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.server.port))
        body = json.dumps({"code": "import sys, time\nfor _ in range(64):\n"
                                   "    sys.stdout.write('x' * 262144)\n"
                                   "time.sleep(3600)",
                           "timeoutMs": 3000}).encode()
        sock.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Accept: text/event-stream\r\nContent-Length: " +
                     str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            # never read: the program's 16 MiB fill the socket buffers and the stream's ring
            t0 = time.time()
            runs = os.path.join(self.server.data_dir, "runs")
            # Whichever notices first ends the stream: the stream's own stall check ("read
            # nothing") or libmicrohttpd's connection timeout (termination code 2).
            gone = (b"read nothing", b"connection ended early: 2)")
            while time.time() - t0 < 20:
                if (self.server.get("/health").json()["exec"]["running"] == 0
                        and any(m in self.server.read_log() for m in gone)):
                    break
                time.sleep(0.2)
            self.assertTrue(any(m in self.server.read_log() for m in gone),
                            "neither the stall check nor the connection timeout ended it")
            self.assertEqual(self.server.get("/health").json()["exec"]["running"], 0)
            self.assertEqual(os.listdir(runs), [])
            self.assertLess(time.time() - t0, 15)
        finally:
            sock.close()


class TestDefaultTimeout(ServerTestCase):
    server_env = {"EXEC_TIMEOUT_MS": "1200"}

    def test_a_run_without_timeout_ms_gets_the_configured_one(self):
        t0 = time.time()
        r = self.server.post("/execute", {"code": "import time\ntime.sleep(3600)"}, timeout=30)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["timedOut"], r)
        self.assertLess(time.time() - t0, 6)
        r = self.server.post("/execute", {"code": "print(1)", "timeoutMs": 120001})
        self.assertIn("timeoutMs", self.assertError(r, 400, "invalid_request")["message"])


class TestBusy(ServerTestCase):
    server_env = {"EXEC_MAX_RUNS": "1", "EXEC_QUEUE_WAIT_MS": "200"}

    def test_429_busy_when_slots_are_full(self):
        first = []
        t = threading.Thread(target=lambda: first.append(self.server.post(
            "/execute", {"code": "import time; time.sleep(2)"}, timeout=30)))
        t.start()
        runs = os.path.join(self.server.data_dir, "runs")
        deadline = time.time() + 10
        while not os.listdir(runs) and time.time() < deadline:
            time.sleep(0.02)
        r = self.server.post("/execute", {"code": "print(1)"})
        err = self.assertError(r, 429, "busy")
        self.assertIn("EXEC_MAX_RUNS", err["message"])
        self.assertEqual(r.header("Retry-After"), "1")
        t.join(30)
        self.assertEqual(first[0].status, 200)
        # once the slot is free, runs are accepted again
        self.assertEqual(self.server.post("/execute", {"code": "print(1)"}).json()["stdout"],
                         "1\n")


class TestNoPython(unittest.TestCase):
    def test_503_without_python(self):
        with Server(env={"PYTHON_PATH": "/nonexistent/python3"}) as srv:
            self.assertIsNone(srv.get("/health").json()["exec"]["python"])
            r = srv.post("/execute", {"code": "print(1)"})
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "unavailable")


if __name__ == "__main__":
    unittest.main()
