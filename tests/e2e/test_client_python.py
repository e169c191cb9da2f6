"""The Python client (clients/python) against the real server: it installs with pip offline into
a fresh virtual environment; one-shot runs, plain and streamed; errors as SandboxdError with the
server's status, code and message; Python workspaces (code, commands, files) when the server has
them; browser sessions against a local site when Chromium is installed."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

from harness import SOURCE_DIR, TOKEN, BrowserSiteCase, ServerTestCase

CLIENT_DIR = os.path.join(SOURCE_DIR, "clients", "python")
sys.path.insert(0, os.path.join(CLIENT_DIR, "src"))

from sandboxd_client import Client, Event, SandboxdError  # noqa: E402


def client_for(server, token=TOKEN, timeout=60.0):
    return Client(f"http://127.0.0.1:{server.port}", token=token, timeout=timeout)


class TestInstall(unittest.TestCase):
    def test_pip_install_offline(self):
        """`pip install --no-build-isolation --no-index` (Debian's setuptools) works offline,
        with py.typed, and the installed package imports without the source tree."""
        tmp = tempfile.mkdtemp(prefix="sbx-client-")
        try:
            src = os.path.join(tmp, "src")
            shutil.copytree(CLIENT_DIR, src, ignore=shutil.ignore_patterns(
                "build", "*.egg-info", "__pycache__"))
            venv = os.path.join(tmp, "venv")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                           check=True, timeout=120)
            py = os.path.join(venv, "bin", "python")
            r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation",
                                "--no-index", src], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run([py, "-c",
                                "import os, sandboxd_client as s; "
                                "d = os.path.dirname(s.__file__); "
                                "print(d); print(os.path.exists(os.path.join(d, 'py.typed'))); "
                                "print(s.SandboxdError(404, 'not_found', 'x').code)"],
                               capture_output=True, text=True, timeout=60, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            where, typed, code = r.stdout.split()
            self.assertTrue(where.startswith(venv), where)
            self.assertEqual((typed, code), ("True", "not_found"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TestTypes(unittest.TestCase):
    def test_mypy_strict(self):
        """The type hints hold (mypy --strict, for the oldest Python the package names)."""
        try:
            import mypy  # noqa: F401
        except ImportError:
            self.skipTest("mypy is not installed (Debian package mypy)")
        with tempfile.TemporaryDirectory(prefix="sbx-mypy-") as cache:
            r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--python-version",
                                "3.8", "--cache-dir", cache,
                                os.path.join(CLIENT_DIR, "src", "sandboxd_client")],
                               capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class TestClient(ServerTestCase):
    def setUp(self):
        self.c = client_for(self.server)

    def test_health(self):
        self.assertEqual(self.c.health()["status"], "ok")

    def test_execute(self):
        r = self.c.execute("print(6 * 7)")
        self.assertEqual((r["exitCode"], r["stdout"]), (0, "42\n"))
        r = self.c.execute("import sys; sys.exit(3)", timeout_ms=10000)
        self.assertEqual(r["exitCode"], 3)

    def test_execute_stream(self):
        events = list(self.c.execute_stream("import sys\nprint('out')\n"
                                            "print('err', file=sys.stderr)"))
        names = [e.event for e in events]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        self.assertIn("stdout", names)
        self.assertIn("stderr", names)
        self.assertTrue(all(isinstance(e, Event) for e in events))
        done = events[-1].data
        self.assertEqual((done["exitCode"], done["stdout"]), (0, "out\n"))
        out = "".join(e.data["data"] for e in events if e.event == "stdout")
        self.assertEqual(out, "out\n")

    def test_errors_carry_status_code_and_message(self):
        with self.assertRaises(SandboxdError) as cm:
            self.c.execute("1", timeout_ms=0)
        e = cm.exception
        self.assertEqual((e.status, e.code), (400, "invalid_request"))
        self.assertIn("timeoutMs", e.message)
        with self.assertRaises(SandboxdError) as cm:
            client_for(self.server, token="wrong").execute("1")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))
        with self.assertRaises(SandboxdError) as cm:
            self.c.request("GET", "/no/such/route")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        with self.assertRaises(SandboxdError) as cm:
            self.c.browser_session("0" * 32).navigate("http://127.0.0.1:1/")
        self.assertEqual(cm.exception.status, 404)

    def test_unreachable_server(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        with self.assertRaises(SandboxdError) as cm:
            Client(f"http://127.0.0.1:{port}", token="x", timeout=5).health()
        self.assertEqual((cm.exception.status, cm.exception.code), (0, "connection_failed"))


class TestWorkspaceClient(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.post("/python/sessions", {})
        if r.status == 404 and r.json()["error"]["message"].startswith("no route"):
            super().tearDownClass()
            raise unittest.SkipTest("this server has no Python sessions (POST /python/sessions)")
        if r.status == 201:
            cls.server.delete(f"/python/sessions/{r.json()['sessionId']}")

    def setUp(self):
        self.c = client_for(self.server)

    def test_session_code_commands_files(self):
        with self.c.create_sandbox() as s:
            self.assertEqual(s.execute_code("x = 41")["error"], None)
            self.assertEqual(s.execute_code("x + 1")["result"], "42")
            r = s.run_command("echo hi > made-by-shell.txt; cat made-by-shell.txt")
            self.assertEqual((r["exitCode"], r["stdout"]), (0, "hi\n"))
            self.assertEqual(s.upload_file("data/in.txt", "hello")["size"], 5)
            got = s.upload_files({"a.bin": b"\x00\x01", "sub/b.txt": "b"}, directory="up")
            self.assertEqual(sorted(f["path"] for f in got), ["up/a.bin", "up/sub/b.txt"])
            self.assertEqual(s.execute_code("open('data/in.txt').read()")["result"], "'hello'")
            names = {f["path"] for f in s.list_files(depth=3)}
            self.assertTrue({"made-by-shell.txt", "data", "data/in.txt", "up/a.bin",
                             "up/sub/b.txt"} <= names, names)
            self.assertEqual(s.download_file("up/a.bin"), b"\x00\x01")
            self.assertEqual(s.read_text("data/in.txt"), "hello")
            self.assertTrue(s.download_file("up").startswith(b"PK\x03\x04"))
            s.copy("data/in.txt", "data/copy.txt")
            s.rename("data/copy.txt", "data/renamed.txt")
            s.mkdir("dest")
            s.move("data/renamed.txt", "dest")
            self.assertEqual(s.read_text("dest/renamed.txt"), "hello")
            s.remove("up")
            self.assertNotIn("up", {f["path"] for f in s.list_files()})
            with self.assertRaises(SandboxdError) as cm:
                s.download_file("../etc/passwd")
            self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_request"))
            events = list(s.execute_code_stream("print('streamed'); x * 2"))
            self.assertEqual(events[0].event, "start")
            self.assertEqual(events[-1].event, "done")
            self.assertEqual(events[-1].data["result"], "82")
            self.assertIn("streamed", "".join(e.data["data"] for e in events
                                              if e.event == "stdout"))
            events = list(s.run_command_stream("echo one; echo two >&2"))
            self.assertEqual([events[0].event, events[-1].event], ["start", "done"])
            self.assertEqual(events[-1].data["exitCode"], 0)
            info = s.info()
            self.assertEqual(info["sessionId"], s.id)
            self.assertIn(s.id, [x["sessionId"] for x in self.c.list_sessions()])
            sid = s.id
        with self.assertRaises(SandboxdError) as cm:  # closed by the with block
            self.c.python_session(sid).list_files()
        self.assertEqual(cm.exception.status, 404)


def tiny_wheel(directory, name, version, source):
    """A pure-Python wheel of one module package, made by hand (a zip with dist-info)."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": source,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: sandboxd-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


class TestPackagesClient(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.wheels = tempfile.mkdtemp(prefix="sbx-client-wheels-")
        tiny_wheel(cls.wheels, "sbxclienttiny", "2.0", "ANSWER = 42\n")
        cls.server_env = {"PYTHON_WHEELHOUSE": cls.wheels}
        super().setUpClass()
        r = cls.server.post("/python/sessions", {})
        if r.status == 404 and "no route" in r.json()["error"]["message"]:
            super().tearDownClass()
            shutil.rmtree(cls.wheels, ignore_errors=True)
            raise unittest.SkipTest("this server has no Python sessions")
        if r.status == 201:
            cls.server.delete(f"/python/sessions/{r.json()['sessionId']}")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.wheels, ignore_errors=True)

    def test_install_package(self):
        c = client_for(self.server, timeout=200)
        with c.create_session() as s:
            try:
                r = s.install_package("sbxclienttiny==2.0")
            except SandboxdError as e:
                if e.status == 503:  # this server cannot install packages (yet): say so
                    self.skipTest(f"packages unavailable: {e.message}")
                raise
            self.assertTrue(any("sbxclienttiny" in x for x in r["installed"]), r)
            self.assertEqual(s.execute_code("import sbxclienttiny; sbxclienttiny.ANSWER")
                             ["result"], "42")
            with self.assertRaises(SandboxdError) as cm:
                s.install_package(["-r/etc/passwd"])
            self.assertEqual((cm.exception.status, cm.exception.code),
                             (400, "invalid_request"))


class TestBrowserClient(BrowserSiteCase):
    pages = {"/index.html": (200, "text/html",
                             "<html><head><title>Client page</title></head><body>"
                             "<h1>Hello</h1><input id=q><a href='/two.html'>two</a>"
                             "</body></html>"),
             "/two.html": (200, "text/html", "<title>Two</title><p>second</p>")}

    def test_browser_session(self):
        c = client_for(self.server, timeout=120)
        with c.create_browser() as b:
            self.assertTrue(b.tab_id)
            nav = b.navigate(self.site.url + "/index.html")
            self.assertEqual((nav["status"], nav["title"]), (200, "Client page"))
            self.assertIn("<h1>Hello</h1>", b.content())
            b.fill("#q", "typed")
            self.assertEqual(b.evaluate("document.querySelector('#q').value"), "typed")
            self.assertEqual(b.evaluate("1 + 2"), 3)
            png = b.screenshot()
            self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
            tab = b.new_tab(self.site.url + "/two.html")
            tabs = b.tabs()
            self.assertEqual(len(tabs), 2)
            self.assertIn(tab, [t["tabId"] for t in tabs])
            b.close_tab(tab)
            self.assertEqual(len(b.tabs()), 1)
            self.assertIn(b.id, [s["sessionId"] for s in c.list_browsers()])
            with self.assertRaises(SandboxdError) as cm:
                b.navigate("file:///etc/passwd")
            self.assertEqual(cm.exception.status, 400)
            sid = b.id
        self.assertNotIn(sid, [s["sessionId"] for s in c.list_browsers()])

    def test_agent_reads(self):
        c = client_for(self.server, timeout=120)
        with c.create_browser() as b:
            b.navigate(self.site.url + "/index.html")
            try:
                snap = b.snapshot()
            except SandboxdError as e:
                if e.status == 404 and "route" in e.message:
                    self.skipTest("this server has no snapshot route yet")
                raise
            self.assertIn("Hello", snap["snapshot"])
            self.assertIn("Hello", b.markdown())


if __name__ == "__main__":
    unittest.main()
