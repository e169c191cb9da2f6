"""Faults: what the real sandboxd does when a part of it fails under a request, and that it
is whole again afterwards. A Chromium SIGKILLed during a navigation, the zygotes SIGKILLed
under runs in flight, DATA_DIR full (a small tmpfs), the server out of file descriptors (a
low RLIMIT_NOFILE), clients that hang up in the middle of a streamed run or a browser call.

After each fault the server must answer /health, and nothing may be left: no process of a
run or a session (found by the markers in their command lines), no run or session directory,
no descriptor or thread of the server beyond what it had before (/proc/PID/fd and /task).
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (LocalSite, Server, live_pids_with_marker, open_fds, wait_until)

MARK = "sandboxd-faults-" + os.urandom(6).hex()
NO_POOL = {"BROWSER_POOL_SIZE": "0"}


def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def chromium_available(srv):
    return bool(srv.get("/health").json().get("browser", {}).get("chromium"))


class FaultCase(unittest.TestCase):
    """One fresh server per test (a fault may leave a server in any state); tearDown stops it
    and checks it exited cleanly and left nothing behind."""

    server_env = {}
    nofile = None

    def setUp(self):
        self.srv = Server(env=dict(NO_POOL, **self.server_env), nofile=self.nofile)
        self.addCleanup(self.srv.cleanup)  # last: the cleanups prepare adds run before it
        self.prepare(self.srv)
        self.srv.start()

    def prepare(self, srv):
        """Before the start (e.g. mount something at DATA_DIR, with a cleanup to undo it)."""

    def tearDown(self):
        srv = self.srv
        if srv.proc and srv.proc.poll() is None:
            self.assertEqual(srv.stop(), 0, srv.read_log()[-3000:])
        self.assertEqual(live_pids_with_marker(MARK, srv.data_dir), [])
        self.assertEqual(srv.data_entries(), [])

    # ---- the state a fault must leave untouched ----
    def baseline(self):
        """What the idle server holds: its descriptors and threads (after a warm-up run)."""
        pid = self.srv.proc.pid
        wait_until(lambda: self.srv.get("/health").json()["exec"]["zygote"] is None
                   or self.srv.get("/health").json()["exec"]["zygote"]["ready"], 30)
        self.assertEqual(self.run_ok("print('warm')"), "warm\n")
        time.sleep(0.3)
        return {"fds": open_fds(pid), "threads": threads(pid)}

    def assertWhole(self, base, timeout=15):
        """The server answers /health, has no run or session left, and no more descriptors or
        threads than in `base` (given `timeout` seconds to finish what it was tearing down)."""
        srv, pid = self.srv, self.srv.proc.pid
        r = srv.get("/health")
        self.assertEqual((r.status, r.json()["status"]), (200, "ok"), r)
        self.assertTrue(wait_until(lambda: not srv.data_entries(running=True), timeout),
                        srv.data_entries(running=True))
        self.assertTrue(wait_until(lambda: not live_pids_with_marker(MARK, srv.data_dir + "/"),
                                   timeout), live_pids_with_marker(MARK, srv.data_dir + "/"))
        ok = wait_until(lambda: len(open_fds(pid)) <= len(base["fds"]), timeout)
        now = open_fds(pid)
        extra = sorted(set(now.values()) - set(base["fds"].values()))
        self.assertTrue(ok, f"{len(now)} descriptors, {len(base['fds'])} before; new: {extra}")
        self.assertTrue(wait_until(lambda: threads(pid) <= base["threads"], timeout),
                        f"{threads(pid)} threads, {base['threads']} before")

    def run_ok(self, code, **kw):
        r = self.srv.post("/execute", body=dict(code=code, **kw), timeout=60)
        self.assertEqual(r.status, 200, r)
        res = r.json()
        self.assertEqual(res["exitCode"], 0, res)
        return res["stdout"]

    def assertJsonError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, r)
        self.assertTrue(err["message"])
        return err


# ---------------------------------------------------------------------------- Chromium


SLOW_SECONDS = 3


def slow_page(h):
    """A page that answers after SLOW_SECONDS (a navigation stays in flight that long)."""
    time.sleep(SLOW_SECONDS)
    body = b"<title>slow</title><p>finally</p>"
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        h.wfile.write(body)
    except OSError:
        pass


PAGES = {"/slow": slow_page,
         "/ok.html": (200, "text/html", "<title>fine</title><p id=x>all fine</p>")}


class TestChromiumFaults(FaultCase):
    def setUp(self):
        super().setUp()
        if not chromium_available(self.srv):
            raise unittest.SkipTest("no Chromium installed")
        self.site = LocalSite(PAGES)
        self.addCleanup(self.site.close)

    def session(self):
        r = self.srv.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        with open(os.path.join(self.srv.data_dir, "browser", sid, ".owner")) as f:
            return sid, int(f.read().split()[0])

    def nav(self, sid, path, timeout=60):
        return self.srv.post(f"/browser/sessions/{sid}/navigate",
                             body={"url": self.site.url + path}, timeout=timeout)

    def assertSessionWorks(self, sid):
        self.assertEqual(self.nav(sid, "/ok.html").json()["title"], "fine")
        r = self.srv.get(f"/browser/sessions/{sid}/content")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"all fine", r.body)

    def test_chromium_killed_mid_navigate(self):
        base = self.baseline()
        sid, pid = self.session()
        answer = {}
        t = threading.Thread(target=lambda: answer.update(r=self.nav(sid, "/slow")))
        t.start()
        self.assertTrue(wait_until(lambda: any(q[1] == "/slow" for q in self.site.requests), 20),
                        "the navigation never reached the page")
        os.killpg(pid, signal.SIGKILL)
        t.join(30)
        self.assertIn("r", answer, "the navigation was not answered within 30 s of the kill")
        self.assertJsonError(answer["r"], 502, "browser_crashed")
        # the session is gone, and says so
        self.assertJsonError(self.srv.get(f"/browser/sessions/{sid}/content"), 404, "not_found")
        self.assertNotIn(sid, [s["sessionId"] for s in
                               self.srv.get("/browser/sessions").json()["sessions"]])
        # the next session works
        other, _ = self.session()
        self.assertSessionWorks(other)
        self.assertEqual(self.srv.delete(f"/browser/sessions/{other}").status, 204)
        self.assertWhole(base)

    def test_client_gone_mid_browser_call(self):
        base = self.baseline()
        sid, _ = self.session()
        # the client sends a navigation to the slow page and hangs up before the answer
        raw = json.dumps({"url": self.site.url + "/slow"}).encode()
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) as s:
            s.sendall((f"POST /browser/sessions/{sid}/navigate HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {self.srv.token}\r\n"
                       "Content-Type: application/json\r\n"
                       f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw)
            self.assertTrue(wait_until(
                lambda: any(q[1] == "/slow" for q in self.site.requests), 20))
        # the session stays usable (its next call waits for the abandoned one at most)
        t0 = time.time()
        self.assertSessionWorks(sid)
        self.assertLess(time.time() - t0, SLOW_SECONDS + 20)
        self.assertEqual(self.srv.delete(f"/browser/sessions/{sid}").status, 204)
        self.assertWhole(base)


# ---------------------------------------------------------------------------- runs

def marked_sleep(seconds, tail=""):
    """A run that proves it began (a file in its work dir and a line of output), sleeps, then
    prints 'done' and `tail`. It re-executes itself with MARK in its command line (a run cloned
    from the zygote carries the zygote's), so its process can be found by name."""
    prog = (f"# {MARK}\nimport time\nopen('began', 'w').close()\nprint('began', flush=True)\n"
            f"time.sleep({seconds})\nprint('done')\nprint({tail!r}, end='')\n")
    return f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {prog!r}])\n"


class TestRunFaults(FaultCase):
    server_env = {"EXEC_MODE": "zygote"}

    def tiers(self):
        return {t["name"]: t for t in self.srv.get("/health").json()["exec"]["zygote"]["tiers"]}

    def test_zygotes_killed_under_runs_in_flight(self):
        base = self.baseline()
        old = {n: t["pid"] for n, t in self.tiers().items()}
        results = []
        lock = threading.Lock()

        def one(i, numpy):
            code = ("import numpy\n" if numpy else "") + marked_sleep(1.5, f"{i}\n")
            r = self.srv.post("/execute", body={"code": code}, timeout=90)
            with lock:
                results.append((i, r))

        ts = [threading.Thread(target=one, args=(i, i % 2 == 0)) for i in range(4)]
        for t in ts:
            t.start()
        runs = os.path.join(self.srv.data_dir, "runs")
        self.assertTrue(wait_until(lambda: len([d for d in os.listdir(runs) if os.path.exists(
            os.path.join(runs, d, "work", "began"))]) >= 4, 30), "the runs never began")
        for pid in old.values():
            os.kill(pid, signal.SIGKILL)
        for t in ts:
            t.join(90)
        self.assertEqual(len(results), 4)
        for i, r in results:
            self.assertEqual(r.status, 200, r)
            res = r.json()
            # each run was started again cold and ran whole
            self.assertEqual((res["exitCode"], res["stdout"]), (0, f"began\ndone\n{i}\n"), res)
        # the zygotes came back, and runs use them again
        self.assertTrue(wait_until(lambda: all(
            t["ready"] and t["pid"] != old[n] for n, t in self.tiers().items()), 60), self.tiers())
        self.assertEqual(self.run_ok("print(6 * 7)"), "42\n")
        self.assertWhole(base)

    def test_client_gone_mid_stream(self):
        base = self.baseline()
        raw = json.dumps({"code": marked_sleep(30), "timeoutMs": 60000}).encode()
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=20) as s:
            s.sendall(("POST /execute HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {self.srv.token}\r\n"
                       "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                       f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw)
            got = b""
            while b"began" not in got:
                chunk = s.recv(4096)
                self.assertTrue(chunk, got)
                got += chunk
            self.assertTrue(live_pids_with_marker(MARK), "the run's process is not visible")
        # the run is killed within a few seconds of the hang-up, not after its 30 s
        t0 = time.time()
        self.assertTrue(wait_until(lambda: not live_pids_with_marker(MARK), 10),
                        live_pids_with_marker(MARK))
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(self.run_ok("print('next')"), "next\n")
        self.assertWhole(base)
        self.assertIn(b"run=", self.srv.read_log())


# ---------------------------------------------------------------------------- full disk


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class TestFullDisk(FaultCase):
    """DATA_DIR is an 8 MiB tmpfs that the test fills up, then frees again."""

    def prepare(self, srv):
        os.makedirs(srv.data_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "sandboxd-test-full",
                        srv.data_dir], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", srv.data_dir])

    def fill(self):
        path = os.path.join(self.srv.data_dir, "filler")
        with open(path, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        return path

    def test_full_data_dir(self):
        browser = chromium_available(self.srv)
        base = self.baseline()
        filler = self.fill()
        big = "print('big')\n" + "#" * 200000 + "\n"  # stored in the run's /tmp, not in argv
        t0 = time.time()
        err = self.assertJsonError(self.srv.post("/execute", body={"code": big}), 507,
                                   "insufficient_storage")
        self.assertIn("DATA_DIR", err["message"])
        self.assertLess(time.time() - t0, 10)
        # a run that writes is told by its own OSError (a result, not a server error)
        r = self.srv.post("/execute", body={"code": "open('f', 'wb').write(b'x' * 100000)"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("No space left on device", r.json()["stderr"])
        if browser:
            err = self.assertJsonError(self.srv.post("/browser/sessions", body={}), 507,
                                       "insufficient_storage")
            self.assertIn("DATA_DIR", err["message"])
        # space is back: everything works again
        os.unlink(filler)
        self.assertEqual(self.run_ok(big), "big\n")
        if browser:
            r = self.srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(self.srv.delete(f"/browser/sessions/{r.json()['sessionId']}").status,
                             204)
        self.assertWhole(base)


# ---------------------------------------------------------------------------- descriptors


class TestOutOfDescriptors(FaultCase):
    """A server started with RLIMIT_NOFILE 64 (it needs about 20 at rest)."""

    nofile = 64

    def hold(self, n):
        """n idle connections to the server (each holds one of its descriptors)."""
        socks = []
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", self.srv.port), timeout=10))
        for s in socks:
            self.addCleanup(s.close)
        return socks

    def test_the_limit_is_passed_on_to_runs(self):
        # EXEC_OPEN_FILES (256) is above the server's own hard limit: a run gets that instead
        code = "import resource\nprint(resource.getrlimit(resource.RLIMIT_NOFILE))"
        self.assertEqual(self.run_ok(code), "(64, 64)\n")
        self.assertEqual(self.run_ok("import numpy\n" + code), "(64, 64)\n")

    def test_last_descriptors(self):
        base = self.baseline()
        pid = self.srv.proc.pid
        # leave the server two descriptors: enough to take a request, not to start a run
        held = self.hold(self.nofile - 2 - len(open_fds(pid)))
        self.assertTrue(wait_until(lambda: len(open_fds(pid)) >= self.nofile - 2, 10),
                        len(open_fds(pid)))
        err = self.assertJsonError(self.srv.post("/execute", body={"code": "print(1)"}), 503,
                                   "unavailable")
        self.assertIn("descriptors", err["message"])
        if chromium_available(self.srv):
            self.assertJsonError(self.srv.post("/browser/sessions", body={}), 503, "unavailable")
        for s in held:
            s.close()
        # (the server closes its ends as it notices; until then a run would be 503 again)
        self.assertTrue(wait_until(lambda: len(open_fds(pid)) <= len(base["fds"]), 15))
        self.assertEqual(self.run_ok("print('again')"), "again\n")
        self.assertWhole(base)

    def test_storm(self):
        base = self.baseline()
        answers = []
        lock = threading.Lock()

        def one(i):
            try:
                r = self.srv.post("/execute", body={"code": f"import time\ntime.sleep(0.3)\n"
                                                            f"print({i})"}, timeout=60)
            except OSError as e:
                r = e
            with lock:
                answers.append((i, r))

        ts = [threading.Thread(target=one, args=(i,)) for i in range(80)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        self.assertEqual(len(answers), 80)
        kinds = {}
        for i, r in answers:
            self.assertNotIsInstance(r, OSError, f"request {i}: {r!r}")
            if r.status == 200:
                self.assertEqual(r.json()["stdout"], f"{i}\n", r)
            else:
                err = self.assertJsonError(r, r.status, "unavailable" if r.status == 503
                                           else "busy")
                self.assertIn(r.status, (429, 503), r)
                self.assertTrue(r.header("Retry-After"), r)
                self.assertTrue(err["message"])
            kinds[r.status] = kinds.get(r.status, 0) + 1
        self.assertIn(200, kinds, kinds)
        self.assertWhole(base)



class TestNoDescriptorLeft(FaultCase):
    """RLIMIT_NOFILE 64 and idle connections that take every descriptor: nothing can even be
    accepted. A new connection waits in the kernel's backlog (the server stops accepting, it
    does not spin), and is answered once idle ones are cut after CONN_TIMEOUT_S."""

    nofile = 64
    server_env = {"CONN_TIMEOUT_S": "3"}

    def test_a_connection_waits_for_a_free_descriptor(self):
        base = self.baseline()
        pid = self.srv.proc.pid
        socks = [socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
                 for _ in range(self.nofile - len(open_fds(pid)) + 2)]
        for s in socks:
            self.addCleanup(s.close)
        self.assertTrue(wait_until(lambda: len(open_fds(pid)) == self.nofile, 10))
        t0 = time.time()
        r = self.srv.get("/health", timeout=30)
        self.assertEqual((r.status, r.json()["status"]), (200, "ok"), r)
        self.assertGreater(time.time() - t0, 1)  # it did wait for a descriptor
        for s in socks:
            s.close()
        self.assertTrue(wait_until(lambda: len(open_fds(pid)) <= len(base["fds"]), 15))
        self.assertEqual(self.run_ok("print('again')"), "again\n")
        self.assertWhole(base)


if __name__ == "__main__":
    unittest.main()
