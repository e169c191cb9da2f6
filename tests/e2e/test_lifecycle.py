"""Lifecycle: SIGTERM with runs and browsers in flight leaves nothing behind; a server started
after a SIGKILL sweeps what the dead one left (and only what it can prove was its own)."""

import os
import signal
import subprocess
import threading
import time
import unittest

from harness import Server, descendants, wait_until
from harness import TOKEN  # noqa: F401  (the servers below use it)


def strays(*markers):
    """Live processes whose command line mentions one of markers: this test's runs carry a
    unique marker in their code (passed with -c), this server's Chromiums its DATA_DIR. Other
    tests running in parallel are not counted."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(m.encode() in cmd for m in markers):
            out.append(int(d))
    return out


MARK = "sandboxd-lifecycle-" + os.urandom(6).hex()
# A run that sleeps with MARK in its command line: a run cloned from the zygote carries the
# zygote's command line, so it re-executes itself with the marker first.
SLEEPER = ("import os, sys\n"
           f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)  # {MARK}'])")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def chromium_available(srv):
    return bool(srv.get("/health").json().get("browser", {}).get("chromium"))


class TestShutdown(unittest.TestCase):
    def test_sigterm_with_work_in_flight(self):
        srv = Server(env={"SHUTDOWN_GRACE_MS": "1000"})
        try:
            srv.start()
            sessions = []
            if chromium_available(srv):
                for _ in range(2):
                    r = srv.post("/browser/sessions", body={})
                    self.assertEqual(r.status, 201, r)
                    sessions.append(r.json()["sessionId"])
            replies = []

            def long_run():
                try:
                    replies.append(srv.post("/execute", body={
                        "code": "print('started', flush=True)\n" + SLEEPER, "timeoutMs": 60000},
                        timeout=30))
                except OSError as e:  # the connection may be cut at shutdown
                    replies.append(e)

            t = threading.Thread(target=long_run)
            t.start()
            runs = os.path.join(srv.data_dir, "runs")
            self.assertTrue(wait_until(lambda: os.listdir(runs), 10), "the run never started")
            # the check below can see this run: its marker is on a live process now
            self.assertTrue(wait_until(lambda: strays(MARK), 5), "the run's process is not visible")
            pid = srv.proc.pid
            t0 = time.time()
            self.assertEqual(srv.stop(signal.SIGTERM, timeout=20), 0)
            self.assertLess(time.time() - t0, 15)
            t.join(30)
            self.assertEqual(descendants(pid), [])
            self.assertEqual(srv.data_entries(), [])
            self.assertTrue(wait_until(lambda: not strays(MARK, srv.data_dir), 5),
                            f"processes left behind: {strays(MARK, srv.data_dir)}")
        finally:
            srv.cleanup()


class TestRestartSweep(unittest.TestCase):
    def test_sweep_after_sigkill(self):
        srv = Server()
        bystander = None
        try:
            srv.start()
            has_browser = chromium_available(srv)
            if has_browser:
                self.assertEqual(srv.post("/browser/sessions", body={}).status, 201)
            threading.Thread(target=lambda: self._quiet_post(srv), daemon=True).start()
            runs = os.path.join(srv.data_dir, "runs")
            # the run's owner record (pid + start time) is what lets the sweep prove it is ours
            self.assertTrue(wait_until(lambda: any(
                os.path.exists(os.path.join(runs, d, ".owner")) for d in os.listdir(runs)), 10),
                "the run never started")
            self.assertTrue(wait_until(lambda: strays(MARK), 5), "the run's process is not visible")

            # A directory whose owner record names a live process that is NOT ours (a pid
            # reused by someone else): the sweep must remove the directory but spare the process.
            bystander = subprocess.Popen(["sleep", "60"])
            forged = os.path.join(srv.data_dir, "browser", "forged")
            os.makedirs(forged)
            with open(os.path.join(forged, ".owner"), "w") as f:
                f.write(f"{bystander.pid} 1\n")

            # the server's own Python zygote (its init and interpreter) must die with it too
            zygote = [p for p in descendants(srv.proc.pid, with_zygote=True)
                      if p not in descendants(srv.proc.pid)]
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
            srv.log.close()
            self.assertTrue(wait_until(lambda: not [p for p in zygote if _alive(p)], 10),
                            f"the zygote outlived its server: {zygote}")

            # no warm pool: its fresh Chromiums would carry DATA_DIR in their command lines
            second = Server(reuse=srv, env={"BROWSER_POOL_SIZE": "0"})
            second.start()
            try:
                self.assertTrue(wait_until(lambda: not strays(MARK, srv.data_dir), 10),
                                f"leftovers still running: {strays(MARK, srv.data_dir)}")
                self.assertEqual(second.data_entries(running=True), [])
                self.assertIsNone(bystander.poll(), "the sweep killed a process it did not own")
                self.assertIn(b"swept", second.read_log())
            finally:
                self.assertEqual(second.stop(), 0)
        finally:
            if bystander:
                bystander.kill()
                bystander.wait()
            srv.cleanup()

    @staticmethod
    def _quiet_post(srv):
        try:
            srv.post("/execute", body={"code": SLEEPER, "timeoutMs": 60000}, timeout=90)
        except OSError:
            pass


GRACE_MS = 1000
STOP_BOUND_S = 4  # what shutdown may take beyond SHUTDOWN_GRACE_MS, whatever the threads do


class TestSigtermInAwkwardStates(unittest.TestCase):
    """SIGTERM while some thread is in an awkward state: the server exits 0 within
    SHUTDOWN_GRACE_MS plus a small bound, with nothing left running or in DATA_DIR."""

    def start(self, env=None, user=None):
        srv = Server(env=dict({"SHUTDOWN_GRACE_MS": str(GRACE_MS), "BROWSER_POOL_SIZE": "0"},
                              **(env or {})), user=user)
        self.addCleanup(srv.cleanup)
        return srv.start()

    def stop_within_bound(self, srv):
        pid = srv.proc.pid
        t0 = time.time()
        rc = srv.stop(signal.SIGTERM, timeout=GRACE_MS / 1000 + 30)
        took = time.time() - t0
        self.assertEqual(rc, 0)
        self.assertLess(took, GRACE_MS / 1000 + STOP_BOUND_S, "shutdown took too long")
        self.assertEqual(descendants(pid, with_zygote=True), [])
        self.assertEqual(srv.data_entries(), [])
        self.assertTrue(wait_until(lambda: not strays(MARK, srv.data_dir), 5),
                        f"processes left behind: {strays(MARK, srv.data_dir)}")

    def test_zygote_crash_looping(self):
        # an "interpreter" that exits at once: the zygote dies as it starts, again and again
        srv = self.start({"PYTHON_PATH": "/bin/false", "EXEC_MODE": "zygote"})
        self.assertTrue(wait_until(lambda: srv.read_log().count(b"restarting in") >= 2, 10),
                        "the zygote did not fail")
        self.stop_within_bound(srv)

    def test_zygote_spawn_failing(self):
        # the state of the original report: the zygote's own spawn fails at once, again and
        # again (here: DATA_DIR sits in a 0700 directory of another user, which a root server
        # can create but its sandboxed children, inside their user namespace, cannot reach)
        srv = Server(env={"SHUTDOWN_GRACE_MS": str(GRACE_MS), "BROWSER_POOL_SIZE": "0",
                          "EXEC_MODE": "zygote"})
        self.addCleanup(srv.cleanup)
        os.chown(srv.tmp, 65534, 65534)
        srv.start()
        self.assertTrue(wait_until(lambda: srv.read_log().count(b"cannot start") >= 2, 10),
                        "the zygote's spawn did not fail")
        self.stop_within_bound(srv)

    def test_zygote_stopped(self):
        # a zygote that does nothing at all any more (SIGSTOP) while the server stops
        srv = self.start({"EXEC_MODE": "zygote"})
        self.assertTrue(wait_until(lambda: (srv.get("/health").json()["exec"]["zygote"] or {})
                                   .get("ready"), 60), "the zygote never became ready")
        zygote = [p for p in descendants(srv.proc.pid, with_zygote=True)
                  if p not in descendants(srv.proc.pid)]
        self.assertTrue(zygote)
        for p in zygote:
            os.kill(p, signal.SIGSTOP)
        self.stop_within_bound(srv)

    def test_zygote_failing_unprivileged(self):
        # the state of the original report: an unprivileged server whose zygote fails
        srv = self.start({"PYTHON_PATH": "/bin/false", "EXEC_MODE": "zygote"}, user=65534)
        self.assertTrue(wait_until(lambda: srv.read_log().count(b"restarting in") >= 2, 10),
                        "the zygote did not fail")
        self.stop_within_bound(srv)

    def test_runs_in_flight_in_both_modes(self):
        for mode in ("zygote", "fork"):
            with self.subTest(mode=mode):
                srv = self.start({"EXEC_MODE": mode})
                if mode == "zygote":
                    self.assertTrue(wait_until(lambda: (srv.get("/health").json()["exec"][
                        "zygote"] or {}).get("ready"), 60), "the zygote never became ready")
                done = []
                threads = [threading.Thread(target=lambda: done.append(self._post(srv)))
                           for _ in range(3)]
                for t in threads:
                    t.start()
                self.assertTrue(wait_until(lambda: len(strays(MARK)) >= 3, 15),
                                "the runs never started")
                self.stop_within_bound(srv)
                for t in threads:
                    t.join(30)
                self.assertEqual(len(done), 3)

    def test_browser_launching(self):
        srv = self.start()
        if not chromium_available(srv):
            self.skipTest("no Chromium installed")
        threading.Thread(target=lambda: self._post(srv, "/browser/sessions", {"device": "desktop"}),
                         daemon=True).start()
        self.assertTrue(wait_until(lambda: strays(srv.data_dir), 10), "no Chromium started")
        self.stop_within_bound(srv)

    def test_sse_client_that_does_not_read(self):
        import json
        import socket
        srv = self.start({"EXEC_OUTPUT_BYTES": str(8 * 1024 * 1024)})
        body = json.dumps({"code": "import sys\nwhile True: sys.stdout.write('x' * 65536)\n",
                           "timeoutMs": 60000}).encode()
        s = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  srv.token.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Accept: text/event-stream\r\nContent-Length: " + str(len(body)).encode() +
                  b"\r\n\r\n" + body)
        runs = os.path.join(srv.data_dir, "runs")
        self.assertTrue(wait_until(lambda: os.listdir(runs), 10), "the run never started")
        time.sleep(1)  # its output fills the socket and the stream's ring
        self.stop_within_bound(srv)

    @staticmethod
    def _post(srv, path="/execute", body=None):
        try:
            return srv.post(path, body=body or {"code": "print('started', flush=True)\n" + SLEEPER,
                                                "timeoutMs": 60000}, timeout=60)
        except OSError as e:  # the connection may be cut at shutdown
            return e


if __name__ == "__main__":
    unittest.main()
