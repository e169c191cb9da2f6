"""Python sessions (workspaces, /python/sessions) against the real sandboxd and python3: globals
persist, results, errors and tracebacks, images and rich display, interrupts and restarts,
commands in the same sandbox, limits and expiry, isolation between sessions, the escape suite
of /execute run inside a session, and a restart after SIGKILL that sweeps what sessions left.
"""

import base64
import io
import json
import os
import signal
import threading
import time
import unittest
import zipfile

import test_exec_escape
from harness import Server, ServerTestCase, descendants, wait_until, wait_zygote

CANARY = "canary-" + os.urandom(6).hex()
PNG = b"\x89PNG\r\n\x1a\n"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class SessionMixin:
    def new_session(self, body=None, server=None):
        r = (server or self.server).post("/python/sessions", body or {})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: (server or self.server).delete("/python/sessions/" + sid))
        return sid

    def execute(self, sid, code, timeout_ms=10000, status=200, server=None):
        r = (server or self.server).post(f"/python/sessions/{sid}/execute",
                                         {"code": code, "timeoutMs": timeout_ms},
                                         timeout=timeout_ms / 1000 + 30)
        self.assertEqual(r.status, status, r)
        return r.json()

    def command(self, sid, command, status=200, **extra):
        body = {"command": command}
        body.update(extra)
        r = self.server.post(f"/python/sessions/{sid}/commands", body,
                             timeout=body.get("timeoutMs", 30000) / 1000 + 30)
        self.assertEqual(r.status, status, r)
        return r.json()

    def events(self, path, body, timeout=60):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        out = []
        try:
            conn.request("POST", path, body=json.dumps(body), headers={
                "Authorization": "Bearer " + self.server.token,
                "Content-Type": "application/json", "Accept": "text/event-stream"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            event = None
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.append((event, json.loads(line[6:])))
        finally:
            conn.close()
        return out


class WorkspaceTest(SessionMixin, ServerTestCase):
    server_env = {"SBX_CANARY": CANARY, "BROWSER_POOL_SIZE": "0", "EXEC_MODE": "zygote",
                  "EXEC_MEMORY_MB": "512", "EXEC_OUTPUT_BYTES": "65536",
                  "PYTHON_MAX_SESSIONS": "4", "PYTHON_INTERRUPT_GRACE_MS": "1000",
                  "PYTHON_BUSY_WAIT_MS": "300"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        wait_zygote(cls.server)

    def tearDown(self):
        self.doCleanups()
        # every session of the test is gone: no process under the server, no directory
        runs = os.path.join(self.server.data_dir, "runs")
        ok = wait_until(lambda: not descendants(self.server.proc.pid)
                        and not (os.listdir(runs) if os.path.isdir(runs) else []), 5)
        self.assertTrue(ok, (descendants(self.server.proc.pid), os.listdir(runs)))

    # ---- sessions ----
    def test_create_get_list_delete(self):
        t0 = time.time()
        sid = self.new_session()
        res = self.execute(sid, "1 + 1")
        first = time.time() - t0
        self.assertEqual(res["result"], "2")
        self.assertLess(first, 5)
        info = self.server.get("/python/sessions/" + sid).json()
        for k in ("sessionId", "createdAt", "lastUsedAt", "expiresAt", "executionCount",
                  "memoryBytes", "cpuMs", "state"):
            self.assertIn(k, info)
        self.assertEqual(info["state"], "idle")
        self.assertEqual(info["executionCount"], 1)
        self.assertGreater(info["memoryBytes"], 0)
        self.assertGreaterEqual(info["cpuMs"], 0)
        listed = self.server.get("/python/sessions").json()["sessions"]
        self.assertIn(sid, [s["sessionId"] for s in listed])
        dir_ = os.path.join(self.server.data_dir, "runs", sid)
        self.assertTrue(os.path.isdir(dir_))
        self.assertTrue(descendants(self.server.proc.pid))
        self.assertEqual(self.server.delete("/python/sessions/" + sid).status, 204)
        self.assertFalse(os.path.exists(dir_))
        self.assertError(self.server.get("/python/sessions/" + sid), 404, "not_found")
        self.assertError(self.server.post(f"/python/sessions/{sid}/execute", {"code": "1"}),
                         404, "not_found")

    def test_bad_requests(self):
        self.assertError(self.server.post("/python/sessions", {"bogus": 1}), 400)
        self.assertError(self.server.post("/python/sessions", {"env": {"1X": "v"}}), 400)
        self.assertError(self.server.post("/python/sessions", {"env": {"X": 1}}), 400)
        sid = self.new_session()
        self.assertError(self.server.post(f"/python/sessions/{sid}/execute", {}), 400)
        self.assertError(self.server.post(f"/python/sessions/{sid}/commands",
                                          {"command": "ls", "cwd": "../x"}), 400)
        self.assertError(self.server.post(f"/python/sessions/{sid}/commands",
                                          {"command": "ls", "cwd": "/etc"}), 400)

    # ---- execute ----
    def test_globals_persist_and_results(self):
        sid = self.new_session()
        res = self.execute(sid, "x = 41\nprint('hello')\nx + 1")
        self.assertEqual((res["stdout"], res["result"], res["error"]), ("hello\n", "42", None))
        self.assertEqual(res["executionCount"], 1)
        res = self.execute(sid, "def f(v):\n    return v * 2\nx = f(x)")
        self.assertIsNone(res["result"])
        res = self.execute(sid, "import sys\nprint('err', file=sys.stderr)\nx, 'text'")
        self.assertEqual(res["result"], "(82, 'text')")
        self.assertEqual(res["stderr"], "err\n")
        self.assertEqual(res["executionCount"], 3)

    def test_error_and_traceback(self):
        sid = self.new_session()
        res = self.execute(sid, "def inner():\n    raise ValueError('bad value')\ninner()\n")
        err = res["error"]
        self.assertEqual((err["name"], err["value"]), ("ValueError", "bad value"))
        tb = err["traceback"]
        self.assertIn("inner()", tb)
        self.assertIn("raise ValueError('bad value')", tb)
        self.assertTrue(tb.startswith("Traceback (most recent call last):\n  File \"<cell-"), tb)
        self.assertNotIn("kernel", tb)  # no frame of sandboxd's driver
        self.assertNotIn("<string>", tb)
        res = self.execute(sid, "print(('unbalanced'\n")
        self.assertEqual(res["error"]["name"], "SyntaxError")
        res = self.execute(sid, "1")  # the session works on
        self.assertEqual(res["result"], "1")

    def test_images_and_display(self):
        sid = self.new_session()
        res = self.execute(sid, "import matplotlib.pyplot as plt\n"
                                "plt.plot([1, 2, 3])\nplt.show()\n"
                                "plt.figure()\nplt.bar([1], [2])\n")  # one shown, one left open
        self.assertIsNone(res["error"], res)
        self.assertEqual(len(res["images"]), 2, res["stderr"])
        for img in res["images"]:
            self.assertTrue(base64.b64decode(img).startswith(PNG))
        res = self.execute(sid, "plt.get_fignums()")
        self.assertEqual(res["result"], "[]")  # closed after capture
        self.assertEqual(res["images"], [])
        res = self.execute(sid, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
        self.assertIn("a  b", res["result"])
        self.assertEqual(len(res["display"]), 1)
        d = res["display"][0]
        self.assertIn("<table", d["text/html"])
        self.assertEqual(d["text/plain"], res["result"])
        res = self.execute(sid, "class H:\n    def _repr_html_(self):\n        return '<b>h</b>'\n"
                                "display(H(), 5)\n")
        self.assertEqual(res["display"][0]["text/html"], "<b>h</b>")
        self.assertEqual(res["display"][1], {"text/plain": "5"})

    def test_timeout_interrupts_and_keeps_state(self):
        sid = self.new_session()
        self.execute(sid, "kept = 'yes'")
        t0 = time.time()
        res = self.execute(sid, "import time\nwhile True:\n    time.sleep(0.01)\n",
                           timeout_ms=500)
        self.assertLess(time.time() - t0, 5)
        self.assertTrue(res["timedOut"])
        self.assertEqual(res["error"]["name"], "KeyboardInterrupt")
        self.assertIn("interrupted", res["stderr"])
        self.assertEqual(self.execute(sid, "kept")["result"], "'yes'")

    def test_ignored_interrupt_restarts_empty(self):
        sid = self.new_session()
        self.execute(sid, "lost = 1")
        t0 = time.time()
        r = self.server.post(f"/python/sessions/{sid}/execute", {
            "code": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "while True:\n    time.sleep(0.01)\n", "timeoutMs": 500})
        self.assertError(r, 409, "kernel_restarted")
        self.assertIn("lost", r.json()["error"]["message"])
        self.assertLess(time.time() - t0, 10)
        res = self.execute(sid, "'lost' in globals()")
        self.assertEqual(res["result"], "False")
        self.assertEqual(self.execute(sid, "import numpy; numpy.int64(3) * 2")["result"], "6")

    def test_killed_by_signal_and_memory(self):
        sid = self.new_session()
        self.execute(sid, "a = 1")
        r = self.server.post(f"/python/sessions/{sid}/execute",
                             {"code": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"})
        self.assertError(r, 409, "kernel_restarted")
        self.assertIn("signal 9", r.json()["error"]["message"])
        self.assertEqual(self.execute(sid, "2 + 2")["result"], "4")
        # past the memory limit (RLIMIT_AS): a MemoryError the session survives
        self.execute(sid, "b = 'kept'")
        res = self.execute(sid, "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))\n")
        self.assertEqual(res["error"]["name"], "MemoryError")
        self.assertEqual(self.execute(sid, "del chunks\nb")["result"], "'kept'")
        stats = self.server.get("/metrics").body.decode()
        self.assertRegex(stats, r"sandboxd_python_sessions_restarted_total [1-9]")

    def test_sys_exit_ends_the_call_only(self):
        sid = self.new_session()
        self.execute(sid, "v = 7")
        res = self.execute(sid, "import sys\nprint('before')\nsys.exit(3)\nprint('after')")
        self.assertEqual(res["stdout"], "before\n")
        self.assertEqual((res["error"]["name"], res["error"]["value"]), ("SystemExit", "3"))
        self.assertIsNone(self.execute(sid, "import sys; sys.exit(0)")["error"])
        self.assertEqual(self.execute(sid, "v")["result"], "7")

    def test_busy_409(self):
        sid = self.new_session()
        out = {}

        def slow():
            out["r"] = self.execute(sid, "import time; time.sleep(2); 'slow'")
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        self.assertEqual(self.server.get("/python/sessions/" + sid).json()["state"], "busy")
        r = self.server.post(f"/python/sessions/{sid}/execute", {"code": "1"})
        self.assertError(r, 409, "busy")
        t.join()
        self.assertEqual(out["r"]["result"], "'slow'")

    def test_sse_execute(self):
        sid = self.new_session()
        ev = self.events(f"/python/sessions/{sid}/execute",
                         {"code": "import time\nprint('one', flush=True)\ntime.sleep(0.3)\n"
                                  "print('two')\n40 + 2"})
        names = [e for e, _ in ev]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        self.assertEqual("".join(d["data"] for e, d in ev if e == "stdout"), "one\ntwo\n")
        self.assertEqual(ev[-1][1]["result"], "42")

    def test_output_capped(self):
        sid = self.new_session()
        res = self.execute(sid, "print('x' * 200000)")
        self.assertLessEqual(len(res["stdout"]), 65536 + 200)
        self.assertIn("truncated", res["stdout"])

    # ---- commands ----
    def test_commands_see_kernel_files(self):
        sid = self.new_session({"env": {"SESSION_VAR": "from-create"}})
        self.execute(sid, "open('made-by-kernel.txt', 'w').write('k')\nimport os\nos.mkdir('sub')")
        res = self.command(sid, "cat made-by-kernel.txt; echo; pwd; echo $SESSION_VAR $EXTRA;"
                                " echo made > by-shell.txt; echo oops >&2; exit 3",
                           env={"EXTRA": "x"})
        self.assertEqual(res["exitCode"], 3)
        self.assertEqual(res["stdout"], "k\n/work\nfrom-create x\n")
        self.assertEqual(res["stderr"], "oops\n")
        self.assertFalse(res["timedOut"])
        self.assertEqual(self.execute(sid, "open('by-shell.txt').read()")["result"], "'made\\n'")
        self.assertEqual(self.command(sid, "pwd", cwd="sub")["stdout"], "/work/sub\n")
        self.assertEqual(self.execute(sid, "import os; os.environ['SESSION_VAR']")["result"],
                         "'from-create'")

    def test_command_timeout_kills_tree(self):
        sid = self.new_session()
        t0 = time.time()
        res = self.command(sid, "sleep 300 & (setsid sleep 301 &) ; sleep 302", timeoutMs=700)
        self.assertLess(time.time() - t0, 10)
        self.assertTrue(res["timedOut"])
        self.assertIsNone(res["exitCode"])
        ps = self.command(sid, "for p in /proc/[0-9]*; do cat $p/cmdline | tr '\\0' ' ';"
                               " echo; done")
        self.assertNotIn("sleep 30", ps["stdout"])
        self.assertEqual(self.execute(sid, "1")["result"], "1")

    def test_sse_command(self):
        sid = self.new_session()
        ev = self.events(f"/python/sessions/{sid}/commands",
                         {"command": "echo out; echo err >&2; exit 2"})
        names = [e for e, _ in ev]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        self.assertIn("stdout", names)
        self.assertIn("stderr", names)
        self.assertEqual(ev[-1][1]["exitCode"], 2)

    # ---- limits and isolation ----
    def test_limit_429(self):
        ids = [self.new_session() for _ in range(4)]
        r = self.server.post("/python/sessions", {})
        self.assertError(r, 429, "too_many_sessions")
        self.assertTrue(r.header("Retry-After"))
        self.server.delete("/python/sessions/" + ids[0])
        self.new_session()

    def test_two_sessions_share_nothing(self):
        a, b = self.new_session(), self.new_session()
        self.execute(a, "secret = 'a-only'\nopen('a.txt', 'w').write('a')\n"
                        "open('/tmp/a-tmp', 'w').write('a')")
        self.assertEqual(self.execute(b, "'secret' in globals()")["result"], "False")
        res = self.execute(b, "import os\n(os.listdir('.'), os.listdir('/tmp'), "
                              "sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
        self.assertNotIn("a.txt", res["result"])
        self.assertNotIn("a-tmp", res["result"])
        pids = eval(res["result"])[2]
        self.assertLessEqual(len(pids), 4, res)  # its own init, driver, kernel (+ a command)
        res = self.command(b, "ls -a /work /tmp; ls ../ 2>&1; ls /proc | grep -c '^[0-9]'")
        self.assertNotIn("a.txt", res["stdout"])
        # nothing of the server: not its environment, not its data dir
        res = self.execute(b, "import os\ndict(os.environ)")
        for s in (CANARY, self.server.token, self.server.data_dir):
            self.assertNotIn(s, res["result"])
        res = self.execute(b, "import os\nos.path.exists(%r)" % self.server.data_dir)
        self.assertEqual(res["result"], "False")
        # no descriptor of the session's processes names a host path of the server's
        res = self.command(b, "ls -l /proc/[0-9]*/fd/ /proc/[0-9]*/cwd 2>/dev/null; "
                              "cat /proc/[0-9]*/maps 2>/dev/null | grep -v ' /usr/' | cut -c74-")
        self.assertNotIn(self.server.data_dir, res["stdout"])
        self.assertNotIn(self.server.tmp, res["stdout"])

    def test_kernel_has_no_network_and_cannot_kill_the_server(self):
        sid = self.new_session()
        res = self.execute(sid, "import socket\ns = socket.socket()\n"
                                "s.connect(('127.0.0.1', %d))" % self.server.port)
        self.assertIsNotNone(res["error"])
        self.assertIn("network", [v["kind"] for v in res["violations"]])
        # the kernel may kill its own driver (the same sandbox): that is a restart, never more
        r = self.server.post(f"/python/sessions/{sid}/execute", {
            "code": "import os, signal\nout = []\n"
                    "for p in (%d, 1, os.getppid()):\n"
                    "    try: os.kill(p, signal.SIGKILL); out.append(('sent', p))\n"
                    "    except OSError as e: out.append(('denied', p))\nout"
                    % self.server.proc.pid})
        self.assertIn(r.status, (200, 409), r)
        self.assertIsNone(self.server.proc.poll())
        self.assertEqual(self.server.get("/health").status, 200)
        self.assertEqual(self.execute(sid, "'still'")["result"], "'still'")

    def test_owner_isolation(self):
        r = self.server.post("/tokens", {"label": "other", "scopes": ["exec"]})
        if r.status != 201:
            self.skipTest(f"no scoped tokens here: {r}")
        other = r.json()["token"]
        sid = self.new_session()
        self.assertError(self.server.get("/python/sessions/" + sid, token=other), 404)
        self.assertError(self.server.post(f"/python/sessions/{sid}/execute", {"code": "1"},
                                          token=other), 404)
        listed = self.server.get("/python/sessions", token=other).json()["sessions"]
        self.assertEqual(listed, [])

    def test_mcp_tools(self):
        def call(name, args):
            r = self.server.request("POST", "/mcp", body={
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": name, "arguments": args}}, headers={
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25"})
            self.assertEqual(r.status, 200, r)
            res = r.json()["result"]
            self.assertFalse(res["isError"], res)
            return res.get("structuredContent")
        sid = call("python_session_create", {})["sessionId"]
        self.assertEqual(call("python_session_execute", {"sessionId": sid, "code": "y = 6"})
                         ["error"], None)
        out = call("python_session_execute", {"sessionId": sid, "code": "y * 7"})
        self.assertEqual(out["result"], "42")
        out = call("python_session_command", {"sessionId": sid, "command": "echo hi"})
        self.assertEqual(out["stdout"], "hi\n")
        call("python_session_close", {"sessionId": sid})
        self.assertEqual(self.server.get("/python/sessions/" + sid).status, 404)

    def test_packages_need_a_source(self):
        sid = self.new_session()
        r = self.server.post(f"/python/sessions/{sid}/packages", {"packages": ["x"]})
        self.assertError(r, 503, "unavailable")
        self.assertError(self.server.post(f"/python/sessions/{sid}/packages", {"packages": []}),
                         400)

    def test_metrics_and_openapi(self):
        sid = self.new_session()
        text = self.server.get("/metrics").body.decode()
        self.assertRegex(text, r"\nsandboxd_python_sessions [1-9]")
        self.assertRegex(text, r"\nsandboxd_python_sessions_created_total [1-9]")
        self.assertIn("sandboxd_python_sessions_expired_total", text)
        paths = self.server.get("/openapi.json").json()["paths"]
        self.assertIn("/python/sessions/{id}/execute", paths)
        health = self.server.get("/health").json()["exec"]["pythonSessions"]
        self.assertGreaterEqual(health["live"], 1)
        self.assertEqual(health["max"], 4)
        self.server.delete("/python/sessions/" + sid)


class WorkspaceColdTest(SessionMixin, ServerTestCase):
    """Without the zygote (EXEC_MODE=fork) sessions start cold and behave the same."""

    server_env = {"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "fork"}

    def test_cold_session(self):
        sid = self.new_session()
        res = self.execute(sid, "x = 2\nx * 21")
        self.assertEqual(res["result"], "42")
        res = self.execute(sid, "import numpy as np\nint(np.arange(4).sum()) + x")
        self.assertEqual(res["result"], "8")
        self.assertEqual(self.command(sid, "echo $HOME")["stdout"], "/work\n")
        fds = self.command(sid, "ls -l /proc/[0-9]*/fd/ 2>/dev/null")["stdout"]
        self.assertIn("socket:", fds)  # the driver's descriptors are listed ...
        self.assertNotIn(self.server.data_dir, fds)  # ... and none names DATA_DIR


class WorkspaceNodeTest(SessionMixin, ServerTestCase):
    """With NODE_ID a Python session's id names its replica, like a browser session's, and a
    call for another replica's session is a 421 naming the owner (never a lookup here)."""

    server_env = {"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "fork", "NODE_ID": "replica-a"}

    def test_ids_carry_the_node(self):
        sid = self.new_session()
        node, _, rest = sid.partition(".")
        self.assertEqual(node, "replica-a")
        self.assertRegex(rest, r"^[0-9a-f]{32}$")
        self.assertEqual(self.execute(sid, "6 * 7")["result"], "42")
        self.assertTrue(os.path.isdir(os.path.join(self.server.data_dir, "runs", sid)))
        r = self.server.post(f"/python/sessions/replica-b.{rest}/execute", {"code": "1"})
        self.assertEqual(r.status, 421, r)
        self.assertEqual(r.json()["error"]["code"], "misdirected_request")
        self.assertIn("replica-b", r.json()["error"]["message"])


class WorkspaceExpiryTest(SessionMixin, ServerTestCase):
    server_env = {"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "fork", "PYTHON_IDLE_TIMEOUT_S": "1",
                  "PYTHON_TTL_S": "3"}

    def test_idle_and_ttl_expiry(self):
        sid = self.new_session()
        self.assertEqual(self.execute(sid, "1")["result"], "1")
        gone = wait_until(lambda: self.server.get("/python/sessions/" + sid).status == 404, 6)
        self.assertTrue(gone, "the idle session did not expire")
        self.assertTrue(wait_until(lambda: not os.path.exists(
            os.path.join(self.server.data_dir, "runs", sid)), 5))
        # kept busy, a session still ends at its TTL
        sid = self.new_session({"idleTimeoutS": 3})
        t0 = time.time()
        while time.time() - t0 < 8 and self.server.get("/python/sessions/" + sid).status == 200:
            self.server.post(f"/python/sessions/{sid}/execute", {"code": "1"})
            time.sleep(0.3)
        self.assertEqual(self.server.get("/python/sessions/" + sid).status, 404)
        self.assertLess(time.time() - t0, 7)
        text = self.server.get("/metrics").body.decode()
        self.assertRegex(text, r"sandboxd_python_sessions_expired_total [2-9]")
        self.assertEqual(wait_until(lambda: descendants(self.server.proc.pid) == [], 5), True)


class WorkspaceRestartTest(SessionMixin, unittest.TestCase):
    def test_sigkill_then_restart_sweeps(self):
        first = Server(env={"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "fork"}).start()
        try:
            self.server = first
            r = first.post("/python/sessions", {})
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            self.assertEqual(self.execute(sid, "open('f', 'w').write('x')")["error"], None)
            pids = descendants(first.proc.pid)
            self.assertTrue(pids)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            second = Server(env={"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "fork"},
                            reuse=first).start()
            try:
                gone = wait_until(lambda: not any(alive(p) for p in pids), 10)
                self.assertTrue(gone, "a session's process outlived the server's restart")
                self.assertFalse(os.path.exists(os.path.join(first.data_dir, "runs", sid)))
                self.assertEqual(second.get("/python/sessions").json()["sessions"], [])
            finally:
                second.stop()
                second.cleanup()
        finally:
            for p in descendants(first.proc.pid) if first.proc.poll() is None else []:
                os.kill(p, signal.SIGKILL)
            first.cleanup()


def build_wheel(dirname, name, version, source):
    """A minimal pure-Python wheel written by hand (no PyPI, no build tools)."""
    import hashlib
    import zipfile
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": source.encode(),
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 .encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test_workspace\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    path = os.path.join(dirname, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


class WorkspacePackagesTest(SessionMixin, ServerTestCase):
    """POST .../packages from a wheelhouse the test builds itself (EXEC_MODE=zygote)."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.wheels = tempfile.mkdtemp(prefix="sbx-wheelhouse-")
        build_wheel(cls.wheels, "sbxtiny", "1.0", "VALUE = 'tiny ' + __name__\n")
        cls.server_env = {"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "zygote",
                          "PYTHON_WHEELHOUSE": cls.wheels}
        super().setUpClass()
        wait_zygote(cls.server)

    @classmethod
    def tearDownClass(cls):
        import shutil
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.wheels, ignore_errors=True)

    def test_install_from_wheelhouse_and_import_at_once(self):
        sid = self.new_session()
        res = self.execute(sid, "import sbxtiny")
        self.assertEqual(res["error"]["name"], "ModuleNotFoundError")
        r = self.server.post(f"/python/sessions/{sid}/packages", {"packages": ["sbxtiny==1.0"]},
                             timeout=200)
        self.assertEqual(r.status, 200, r)
        self.assertIn("sbxtiny-1.0", r.json()["installed"])
        res = self.execute(sid, "import sbxtiny\nsbxtiny.VALUE, sbxtiny.__file__")
        self.assertEqual(res["result"],
                         "('tiny sbxtiny', '/tmp/site-packages/sbxtiny/__init__.py')", res)
        res = self.command(sid, "python3 -c 'import sbxtiny; print(sbxtiny.VALUE)'; ls -a /tmp")
        self.assertEqual(res["stdout"].splitlines()[0], "tiny sbxtiny")
        self.assertNotIn(".sandboxd-wheels", res["stdout"])  # the copy is gone
        # pip ran inside the sandbox, as the session: nothing of it reached the server's view
        self.assertFalse(os.path.exists(os.path.join(self.wheels, "sbxtiny")))
        # another session does not have it
        other = self.new_session()
        self.assertEqual(self.execute(other, "import sbxtiny")["error"]["name"],
                         "ModuleNotFoundError")

    def test_bad_requirements(self):
        sid = self.new_session()
        for bad in ("-r/etc/passwd", "--index-url=http://x", "pkg @ file:///etc", "../x", ""):
            r = self.server.post(f"/python/sessions/{sid}/packages", {"packages": [bad]})
            self.assertError(r, 400, "invalid_request")
        r = self.server.post(f"/python/sessions/{sid}/packages", {"packages": ["not-there"]},
                             timeout=200)
        self.assertError(r, 400, "invalid_request")
        self.assertIn("pip", r.json()["error"]["message"])


class WorkspaceShutdownTest(SessionMixin, unittest.TestCase):
    def test_sigterm_ends_every_session(self):
        srv = Server(env={"BROWSER_POOL_SIZE": "0", "EXEC_MODE": "zygote"}).start()
        try:
            self.server = srv
            wait_zygote(srv)
            ids = []
            for _ in range(2):
                r = srv.post("/python/sessions", {})
                self.assertEqual(r.status, 201, r)
                ids.append(r.json()["sessionId"])
            busy = threading.Thread(target=lambda: srv.post(
                f"/python/sessions/{ids[0]}/execute", {"code": "import time; time.sleep(60)"},
                timeout=90))
            busy.start()
            time.sleep(0.5)
            pid = srv.proc.pid
            t0 = time.time()
            self.assertEqual(srv.stop(), 0)
            self.assertLess(time.time() - t0, 15)
            busy.join(30)
            self.assertEqual(descendants(pid), [])
            self.assertEqual(srv.data_entries(), [])
        finally:
            srv.cleanup()


class SessionEscapeTest(test_exec_escape.EscapeTest):
    """The escape suite of /execute, each program run by python3 as a command of a fresh
    session (so inside the session's sandbox, beside its kernel), zygote-started sessions."""

    def run_code(self, code, timeout_ms=10000, **extra):
        r = self.server.post("/python/sessions", {})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        try:
            r = self.server.post(f"/python/sessions/{sid}/commands", {
                "command": 'exec python3 -c "$SBX_PROGRAM"', "env": {"SBX_PROGRAM": code},
                "timeoutMs": timeout_ms}, timeout=timeout_ms / 1000 + 30)
            if r.status == 409:  # the sandbox itself was killed (a quota): say so as /execute
                msg = r.json()["error"]["message"]
                return {"exitCode": None, "stdout": "", "stderr": msg, "uploads": [],
                        "timedOut": False, "violations": [{"kind": "limit", "detail": msg}]
                        if "quota" in msg else [], "truncated": False}
            self.assertEqual(r.status, 200, r)
            res = r.json()
            res["uploads"] = []
            return res
        finally:
            self.server.delete("/python/sessions/" + sid)

    def test_symlinks_planted_for_the_upload_step(self):
        # A session has no upload step: what takes its files out is the files API. Links the
        # program planted to the server's files are refused there, a real file is served.
        r = self.server.post("/python/sessions", {})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        try:
            lock = os.path.join(self.server.data_dir, "sandboxd.lock")
            r = self.server.post(f"/python/sessions/{sid}/execute", {"code": (
                "import os\n"
                "os.symlink('/etc/passwd', 'passwd.txt')\n"
                "os.symlink(%r, 'lock.txt')\n"
                "os.symlink('/proc/1/environ', 'environ.txt')\n"
                "os.mkdir('d'); os.symlink('/etc', 'd/etc')\n"
                "open('real.txt', 'w').write('REAL-CONTENT')\n" % lock)})
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.json()["error"], r)
            for name in ("passwd.txt", "lock.txt", "environ.txt", "d/etc/passwd", "d/etc"):
                r = self.server.get(f"/python/sessions/{sid}/files/{name}")
                self.assertEqual(r.status, 400, (name, r))
                self.assertNotIn(b"root:", r.body)
            r = self.server.get(f"/python/sessions/{sid}/files/real.txt")
            self.assertEqual((r.status, r.body), (200, b"REAL-CONTENT"))
            # a directory holding a planted link zips without following it
            r = self.server.get(f"/python/sessions/{sid}/files/d")
            self.assertEqual(r.status, 200, r)
            with zipfile.ZipFile(io.BytesIO(r.body)) as z:
                for info in z.infolist():
                    self.assertNotIn(b"root:", z.read(info), info.filename)
                    self.assertFalse(info.filename.startswith("etc/"), info.filename)
        finally:
            self.server.delete("/python/sessions/" + sid)

    # A session's processes share one sandbox and one id: a program may kill the session's own
    # driver (never anything outside). Then the call answers 409 kernel_restarted and the
    # session works on; /execute's versions expect the program to outlive its own kill(-1).
    def check_own_kill(self, code):
        r = self.server.post("/python/sessions", {})
        sid = r.json()["sessionId"]
        try:
            r = self.server.post(f"/python/sessions/{sid}/commands", {
                "command": 'exec python3 -c "$SBX_PROGRAM"', "env": {"SBX_PROGRAM": code}})
            self.assertIn(r.status, (200, 409), r)
            if r.status == 409:
                self.assertEqual(r.json()["error"]["code"], "kernel_restarted")
            self.assertIsNone(self.server.proc.poll())
            r = self.server.post(f"/python/sessions/{sid}/execute", {"code": "'works'"})
            self.assertEqual(r.json()["result"], "'works'")
        finally:
            self.server.delete("/python/sessions/" + sid)

    def test_kill_the_server(self):
        self.check_own_kill("import os, signal\n"
                            "for p in (%d, 1, os.getppid()):\n"
                            "    try: os.kill(p, signal.SIGKILL)\n"
                            "    except OSError: pass\n" % self.server.proc.pid)

    def test_kill_minus_one(self):
        self.check_own_kill("import os, signal\ntry: os.kill(-1, signal.SIGKILL)\n"
                            "except OSError: pass\n")

    def test_memory_bomb(self):
        # a command's python3 gets the session's limit, which (from the zygote) includes the
        # preloaded modules' share: EXEC_MEMORY_MB + preloadMiB
        tiers = (self.server.get("/health").json()["exec"]["zygote"] or {}).get("tiers", [])
        extra = max([t.get("preloadMiB", 0) for t in tiers] or [0])
        res = self.run_code("chunks = []\n"
                            "try:\n"
                            "    while True: chunks.append(bytearray(16 << 20))\n"
                            "except MemoryError: print('MemoryError after', len(chunks) * 16)\n")
        self.assertIn("MemoryError after", res["stdout"])
        self.assertLess(int(res["stdout"].split()[2]), 300 + extra)


class SessionEscapeTestFork(SessionEscapeTest):
    server_env = dict(test_exec_escape.EscapeTest.server_env, EXEC_MODE="fork")


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for cls in (WorkspaceTest, WorkspaceColdTest, WorkspaceExpiryTest, WorkspaceRestartTest,
                WorkspacePackagesTest, WorkspaceShutdownTest, SessionEscapeTest,
                SessionEscapeTestFork):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    unittest.main()
