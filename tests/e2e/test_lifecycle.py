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


if __name__ == "__main__":
    unittest.main()
