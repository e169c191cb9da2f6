"""A server started as an unprivileged user: /execute works with every layer (the escape suite's
EscapeTestUnprivileged* classes check the layers themselves), and where the kernel refuses a
layer the runs fail closed: 503 naming it, unless EXEC_ALLOW_WEAK_SANDBOX accepts the weaker
sandbox, which the log and /health then say loudly.

The missing layer is simulated honestly: the server is started inside a user namespace of its
own whose user.max_user_namespaces is 0 (the per-namespace limit the kernel checks when a
process creates a user namespace), so every clone with CLONE_NEWUSER fails with ENOSPC there,
exactly as on a host where unprivileged user namespaces are switched off.
"""

import ctypes
import os
import unittest

from harness import Server, descendants

NOBODY = 65534
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4


def forbid_user_namespaces():
    """In the server's process before exec: a user namespace of its own (the same ids mapped)
    whose limit of user namespaces is 0."""
    uid, gid = os.geteuid(), os.getegid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 1)  # after the switch from root: else /proc/self is root's
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")


class TestUnprivileged(unittest.TestCase):
    def stop_clean(self, srv):
        pid = srv.proc.pid
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(descendants(pid), [])
        self.assertEqual(srv.data_entries(), [])

    def test_runs_with_every_layer_in_both_modes(self):
        for mode in ("zygote", "fork"):
            with self.subTest(mode=mode):
                srv = Server(env={"BROWSER_POOL_SIZE": "0", "EXEC_MODE": mode}, user=NOBODY)
                try:
                    srv.start()
                    layers = srv.get("/health").json()["exec"]["sandbox"]
                    self.assertTrue(layers["complete"], layers)
                    self.assertEqual(layers["hostIds"], "server")
                    self.assertTrue(layers["userNamespace"] and layers["netNamespace"])
                    self.assertGreaterEqual(layers["landlock"], 1)
                    r = srv.post("/execute", {"code": "import os; print(2 + 2, os.getuid())"})
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["stdout"], "4 1000\n")
                    self.stop_clean(srv)
                finally:
                    srv.cleanup()


class TestMissingLayer(unittest.TestCase):
    def start(self, **env):
        srv = Server(env=dict({"BROWSER_POOL_SIZE": "0"}, **env), user=NOBODY,
                     preexec=forbid_user_namespaces)
        self.addCleanup(srv.cleanup)
        return srv.start()

    def stop_clean(self, srv):
        pid = srv.proc.pid
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(descendants(pid), [])
        self.assertEqual(srv.data_entries(), [])

    def test_runs_are_refused_naming_the_missing_layer(self):
        srv = self.start()
        r = srv.post("/execute", {"code": "print(1)"})
        self.assertEqual(r.status, 503, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], "unavailable")
        self.assertIn("user namespaces", err["message"])
        self.assertIn("EXEC_ALLOW_WEAK_SANDBOX", err["message"])
        self.assertEqual(os.listdir(os.path.join(srv.data_dir, "runs")), [],
                         "a refused run made a directory")
        ex = srv.get("/health").json()["exec"]
        layers = ex["sandbox"]
        self.assertFalse(layers["userNamespace"])
        self.assertFalse(layers["complete"])
        self.assertTrue(layers["runsRefused"])
        self.assertFalse(layers["weakAccepted"])
        self.assertIn("user namespaces", layers["missing"])
        self.assertIsNone(ex["zygote"], "a zygote without namespaces")
        self.assertIn(b"the sandbox is incomplete", srv.read_log())
        self.stop_clean(srv)

    def test_a_weaker_sandbox_only_when_accepted_and_said_loudly(self):
        srv = self.start(EXEC_ALLOW_WEAK_SANDBOX="true")
        self.assertIn(b"WEAK SANDBOX: runs go without user namespaces", srv.read_log())
        layers = srv.get("/health").json()["exec"]["sandbox"]
        self.assertFalse(layers["complete"])
        self.assertTrue(layers["weakAccepted"])
        self.assertFalse(layers["runsRefused"])
        r = srv.post("/execute", {"code": "print(2 + 2)"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["stdout"], "4\n")
        # weaker, not open: Landlock still keeps writes in the run's dirs, seccomp still
        # refuses network sockets
        pidfile = os.path.join(srv.data_dir, "sandboxd.pid")
        res = srv.post("/execute", {"code": (
            "import os, socket, tempfile\n"
            "try: open(%r, 'a'); print('WROTE')\n"
            "except OSError as e: print('refused', e.errno)\n"
            "try: socket.socket(socket.AF_INET); print('SOCKET')\n"
            "except OSError as e: print('refused', e.errno)\n"
            "print(tempfile.gettempdir() != '/tmp')\n" % pidfile)}).json()
        self.assertEqual(res["stdout"], "refused 13\nrefused 1\nTrue\n", res)
        self.stop_clean(srv)


CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


def cover_proc(become=None):
    """A preexec: the server's own mount namespace with a part of /proc covered, as Docker's
    masked paths cover /proc/kcore, /proc/keys, /proc/timer_list...; the kernel then refuses a
    fresh procfs in every user namespace below (it would show what the cover hides). Then,
    when `become` is set, the switch to that uid."""
    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0 or \
                libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0 or \
                libc.mount(b"/dev/null", b"/proc/timer_list", None, MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), "cover /proc/timer_list")
        if become is not None:
            os.setgroups([])
            os.setresgid(become, become, become)
            os.setresuid(become, become, become)
    return run


class TestCoveredProc(unittest.TestCase):
    """Where no procfs can be mounted (a container that covers parts of its /proc, like
    Docker without systempaths=unconfined), runs still get every layer: an empty read-only
    /proc, cold starts (the zygote needs a /proc of its own), and /health says so."""

    def check(self, srv, host_ids):
        health = srv.get("/health").json()["exec"]
        self.assertEqual(health["sandbox"]["proc"], "empty", health)
        self.assertTrue(health["sandbox"]["complete"], health)
        self.assertEqual(health["sandbox"]["hostIds"], host_ids)
        self.assertIn(b"no procfs can be mounted", srv.read_log())
        code = ("import os, socket, numpy\n"
                "print(os.listdir('/proc'), os.getpid(), int(numpy.arange(4).sum()))\n"
                "try:\n    open('/proc/x', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
                "socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n")
        r = srv.post("/execute", {"code": code, "timeoutMs": 20000})
        self.assertEqual(r.status, 200, r)
        res = r.json()
        self.assertEqual(res["stdout"].splitlines()[:2], ["[] 2 6", "30"], res)
        self.assertNotEqual(res["exitCode"], 0)  # the socket was refused
        self.assertIn("sandbox:", res["stderr"])

    def test_root_server(self):
        with Server(preexec=cover_proc()) as srv:
            self.check(srv, "perRun")

    def test_unprivileged_server(self):
        srv = Server(preexec=cover_proc(become=NOBODY))
        os.chown(srv.tmp, NOBODY, NOBODY)
        with srv:
            self.check(srv, "server")


if __name__ == "__main__":
    unittest.main()
