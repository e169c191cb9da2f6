"""Shared end-to-end harness: start the real build/sandboxd, talk HTTP to it, stop it, and
check that it left nothing behind.

Standard library only. Every server listens on 127.0.0.1 with PORT=0 (the kernel picks a free
port; the server logs it) and gets its own temporary DATA_DIR.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIN = os.environ.get("SANDBOXD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "sandboxd")
SOURCE_DIR = os.environ.get("SANDBOXD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
TOKEN = "test-token-" + os.urandom(8).hex()


ZYGOTE_MARK = b"\x00zygote\x00"  # in the zygote's command line: python3 -c <boot> zygote ...


SPARE_COMM = "sbx-spare"  # the comm of a zygote's spare init and program (serve.c)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def descendants(pid, with_zygote=False):
    """All live descendants of pid (by walking /proc), as a list of pids. The server's Python
    zygote (its init and the interpreter that waits for runs) is part of the server, not of any
    run, so it is left out unless with_zygote; the processes of runs it started are counted
    (they are clones of the zygote, so they carry its command line, under a parent that does
    too). A spare init and its program, which the zygote starts ahead of the next run, are
    the server's too until a run arrives: they go by SPARE_COMM until then."""
    children, parent = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
        parent[int(d)] = ppid
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    if with_zygote:
        return out
    skip = set()
    for p in out:
        if ZYGOTE_MARK in _cmdline(p) and ZYGOTE_MARK not in _cmdline(parent.get(p, 0)):
            skip.update((p, parent.get(p, 0)))  # the zygote and its init
        elif ZYGOTE_MARK in _cmdline(p) and _comm(p) == SPARE_COMM:
            skip.add(p)  # a spare init or its program, started ahead of the next run
    return [p for p in out if p not in skip]


def wait_until(pred, timeout, step=0.05):
    """pred()'s first true value within `timeout` seconds, else its last (false) one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_zygote(server, timeout=60):
    """Wait until the server's zygote answers /health as ready, or fail the test."""
    deadline = time.time() + timeout
    while not (server.get("/health").json()["exec"]["zygote"] or {}).get("ready"):
        if time.time() > deadline:
            raise AssertionError("the zygote never became ready")
        time.sleep(0.1)


def pids_with_env_marker(marker):
    """Pids whose command line mentions marker (used to find a server's strays)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


def live_pids_with_marker(*markers):
    """Live (not zombie) processes other than this one whose command line mentions one of
    markers: a server's Chromiums carry its DATA_DIR, a test's runs a marker in their code."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        cmd = _cmdline(d)
        if any(m.encode() in cmd for m in markers):
            out.append(int(d))
    return out


def open_fds(pid):
    """{fd: what it points at} for a live process (its /proc/PID/fd)."""
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            pass
    return out


def sanitized():
    """True when BIN is an ASan build (its memory use says nothing about the server's own)."""
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def rss_kib(pid):
    """Resident set size of a process in KiB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Server:
    """One running build/sandboxd. Use as a context manager or call start()/stop()."""

    def __init__(self, env=None, args=(), token=TOKEN, dev=False, reuse=None, user=None,
                 preexec=None, nofile=None, binary=None):
        """reuse: another (stopped or killed) Server whose DATA_DIR this one takes over.
        user: a uid to run the server as (unprivileged; its temporary directory is given to
        it). preexec: a function run in the server's process just before it starts (after
        the switch to `user`). nofile: start the server with this RLIMIT_NOFILE (soft and
        hard limit). binary: another sandboxd to run than BIN (e.g. an installed copy)."""
        self.binary = binary or BIN
        self.token = token
        self.user = user
        self.preexec = preexec
        self.nofile = nofile
        self.env_extra = dict(env or {})
        self.args = list(args)
        self.dev = dev
        self.proc = None
        self.port = None
        if reuse is not None:
            self.tmp = reuse.tmp
            self.data_dir = reuse.data_dir
            self.log_path = reuse.log_path + ".next"
        else:
            self.tmp = tempfile.mkdtemp(prefix="sandboxd-test-")
            self.data_dir = os.path.join(self.tmp, "data")
            self.log_path = os.path.join(self.tmp, "server.log")
            if user is not None:
                os.chown(self.tmp, user, user)

    # ---- lifecycle ----
    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN",)}
        # the test sites are on 127.0.0.1: the egress policy (uploads, browsers) refuses
        # loopback unless named; a test that wants the refusal sets EGRESS_PRIVATE_ALLOWED
        env.update({"HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": self.data_dir,
                    "LOG_LEVEL": "debug", "EGRESS_PRIVATE_ALLOWED": "127.0.0.1,localhost"})
        if self.token is not None:
            env["AUTH_TOKEN"] = self.token
        env.update(self.env_extra)
        args = [self.binary] + (["--dev"] if self.dev else []) + self.args
        self.log = open(self.log_path, "ab")
        if self.nofile is not None:  # prlimit execs the server: the pid stays the server's
            args = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--"] + args
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, preexec_fn=self._preexec)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(rb"listening on http://[0-9.]+:(\d+)", self.read_log())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandboxd exited with {self.proc.returncode}:\n"
                                   + self.read_log().decode(errors="replace"))
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("sandboxd did not start:\n" + self.read_log().decode(errors="replace"))

    def _preexec(self):
        if self.user is not None:
            os.setgroups([])
            os.setresgid(self.user, self.user, self.user)
            os.setresuid(self.user, self.user, self.user)
        if self.preexec:
            self.preexec()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the server; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sandboxd did not exit within %ss of signal %s" % (timeout, sig))
        self.log.close()
        self.check_sanitizers()
        return self.proc.returncode

    SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error: ",
                       b"WARNING: AddressSanitizer", b"WARNING: ThreadSanitizer",
                       b"FATAL: ThreadSanitizer")

    def check_sanitizers(self):
        """In an ASan/UBSan or TSan build a report does not always change the exit code (UBSan
        and TSan go on, a report can come from a child, a test may SIGKILL the server): any
        report in the server's log fails the test. From stop(), or from cleanup() when
        stop() never ran it."""
        self.sanitizers_checked = True
        log = self.read_log()
        for mark in self.SANITIZER_MARKS:
            at = log.find(mark)
            while at >= 0 and mark.endswith(b"ThreadSanitizer") and self._from_a_clone(log, at):
                at = log.find(mark, at + 1)
            if at >= 0:
                raise AssertionError("sanitizer report in the server log:\n"
                                     + log[max(0, at - 200):at + 3000].decode(errors="replace"))

    def _from_a_clone(self, log, at):
        """A TSan report made by another process than the server (its "(pid=N)"): one of the
        sandbox's raw clone()s of the server (a run's init, the namespace probe), which run
        the instrumented code single-threaded over the shadow state of the threads they were
        cloned from. A single-threaded process has no data race of its own; the report is
        that inherited state (tests/tsan.supp names the usual ones, but a child without a
        /proc cannot even symbolize its stack)."""
        m = re.match(rb"[^\n]*\(pid=(\d+)\)", log[at:at + 200])
        return bool(m and self.proc and int(m.group(1)) != self.proc.pid)

    def cleanup(self):
        """Kill the server if it still runs, check its log for sanitizer reports (when stop()
        did not: a test that killed it itself), remove its directory."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            if self.proc and not getattr(self, "sanitizers_checked", False):
                self.check_sanitizers()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.cleanup()

    # ---- requests ----
    def request(self, method, path, body=None, headers=None, token="default", timeout=60,
                raw=None):
        """Send one request. body: dict/list (sent as JSON) or bytes/str. token: None for no
        Authorization header, "default" for the server's token, else that string."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if token == "default":
            token = self.token
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        if body is None and kw.get("raw") is None:
            body = {}
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def execute_events(self, body, timeout=60):
        """POST /execute as a Server-Sent Events stream: yields (event, data, arrival time)
        for each event as it arrives."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", "/execute", body=json.dumps(body), headers={
                "Authorization": "Bearer " + self.token, "Content-Type": "application/json",
                "Accept": "text/event-stream"})
            r = conn.getresponse()
            assert r.status == 200, (r.status, r.read())
            assert r.getheader("Content-Type").startswith("text/event-stream")
            event = None
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    yield event, json.loads(line[6:]), time.time()
        finally:
            conn.close()

    # ---- leftovers ----
    def data_entries(self, running=False):
        """What is left in DATA_DIR (ignoring the server's own lock/pid files). running: the
        server is up, so its Python zygote's directory is expected too."""
        out = []
        for root, dirs, files in os.walk(self.data_dir):
            for n in dirs + files:
                p = os.path.relpath(os.path.join(root, n), self.data_dir)
                if running and (p == "zygote" or p.startswith("zygote/")):
                    continue
                if p not in ("runs", "browser", "sandboxd.lock", "sandboxd.pid", "tokens.json"):
                    out.append(p)
        return out


class ServerTestCase(unittest.TestCase):
    """A test case with one server for the whole class (cls.server)."""

    server_env = {}
    server_args = ()
    server_user = None  # a uid: the server runs unprivileged as that user

    @classmethod
    def setUpClass(cls):
        cls.server = Server(env=cls.server_env, args=cls.server_args,
                            user=cls.server_user).start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        pid = srv.proc.pid
        try:
            rc = srv.stop()
            left = descendants(pid)
            if rc != 0 or left or srv.data_entries():
                raise AssertionError(
                    f"unclean stop: exit {rc}, children {left}, leftovers {srv.data_entries()}")
        finally:
            srv.cleanup()

    def assertError(self, resp, status, code=None):
        """resp is an error in the one wire shape with this status (and code)."""
        self.assertEqual(resp.status, status, resp)
        ctype = resp.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("application/json"), ctype)
        err = resp.json()["error"]
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        if code:
            self.assertEqual(err["code"], code, resp)
        return err


class LocalSite:
    """A throwaway HTTP site on 127.0.0.1 for tests. routes: {path: fn(handler) or
    (status, content_type, body_bytes_or_str)}. Records every request in .requests."""

    def __init__(self, routes):
        self.routes = routes
        self.requests = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _serve(self):
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                site.requests.append((self.command, self.path, dict(self.headers), self.body))
                route = site.routes.get(path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if callable(route):
                    return route(self)
                status, ctype, body = route
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BrowserSiteCase(ServerTestCase):
    """A ServerTestCase for browser tests: skipped when the server finds no Chromium, with a
    LocalSite of cls.pages (cls.site) for the whole class."""

    pages = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.server.get("/health").json().get("browser", {}).get("chromium"):
            super().tearDownClass()
            raise unittest.SkipTest("no Chromium installed")
        cls.site = LocalSite(cls.pages)

    @classmethod
    def tearDownClass(cls):
        cls.site.close()
        super().tearDownClass()


# ---- running one file with honest skips (CMakeLists.txt registers every test file with it) ----

SKIP_EXIT = 77  # ctest's SKIP_RETURN_CODE for the e2e tests


def run_file(name):
    """Run the unittest module `name` verbosely and return the process's exit code: 1 when
    anything failed, SKIP_EXIT when nothing ran because everything was skipped (ctest then
    shows the file as skipped, not passed), else 0. A test skipped inside a file that passed
    is printed at the end, and listed in $SANDBOXD_SKIP_DIR/<name>.txt (one line a skipped
    test: "name<TAB>reason"), which scripts/test.sh counts in its closing line. Tests of a
    class or module whose set-up skipped count one each, as if each had been skipped."""
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    total = suite.countTestCases()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    skips = []  # (what, reason)
    for test, reason in result.skipped:
        what = test.id() if isinstance(test, unittest.TestCase) else str(test)
        skips.append((what, reason))
    # tests never started because their class or module set-up raised SkipTest
    not_started = max(0, total - result.testsRun)
    skipped = len([s for s in result.skipped if isinstance(s[0], unittest.TestCase)])
    skipped += not_started
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = max(0, result.testsRun - failed - len(
        [s for s in result.skipped if isinstance(s[0], unittest.TestCase)]))
    print(f"{name}: {total} tests, {passed} passed, {failed} failed, {skipped} skipped")
    for what, reason in skips:
        print(f"  skipped: {what}: {reason}")
    out_dir = os.environ.get("SANDBOXD_SKIP_DIR")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, name + ".txt")
        if skips:
            with open(path, "w") as f:
                f.write(f"{name}\t{skipped} of {total}\n")
                for what, reason in skips:
                    f.write(f"{what}\t{reason}\n")
        elif os.path.exists(path):
            os.remove(path)
    if failed or not result.wasSuccessful():
        return 1
    if skipped and passed == 0:
        return SKIP_EXIT
    return 0
