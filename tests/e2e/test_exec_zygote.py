"""The pre-forked Python (EXEC_MODE=zygote) against the real sandboxd and python3: a program
cloned from a zygote behaves as the same program started cold, numpy programs go to the tier
that preloaded numpy, every run gets fresh random state, and a zygote that dies or hangs is
replaced without any run waiting for it. (The escape suite runs against both paths too.)"""

import glob
import os
import signal
import threading
import time
import unittest

from harness import Server, descendants, wait_until

NO_POOL = {"BROWSER_POOL_SIZE": "0"}

# Programs whose whole result must not depend on how the interpreter was started.
PARITY = {
    "exception": "x = 1\nprint('before')\nundefined_name + x\n",
    "syntax error": "print('unbalanced'\n",
    "exit code": "import sys\nprint('out')\nsys.exit(3)\n",
    "exit message": "import sys\nsys.exit('bye now')\n",
    "stderr": "import sys\nprint('to err', file=sys.stderr)\n",
    "argv and main": "import sys\nprint(sys.argv, __name__, __package__, __spec__)\n",
    "cwd, ids and env": ("import os\nprint(os.getcwd(), os.getuid(), os.getgid(), os.getpid())\n"
                         "print(sorted(os.environ.items()))\n"),
    "file left open": ("f = open('kept.txt', 'w')\nf.write('buffered' * 100)\n"
                       "print(open('kept.txt').read()[:8] or 'empty')\n"),
    "atexit": "import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main')\n",
    "thread joined at exit": ("import threading, time\n"
                              "def late():\n    time.sleep(0.2)\n    print('thread done')\n"
                              "threading.Thread(target=late).start()\nprint('main done')\n"),
    "keyboard interrupt": "raise KeyboardInterrupt\n",
    # a forked child runs to the end of the program too: the run still ends with the parent
    "fork": ("import os, time\npid = os.fork()\nif pid == 0:\n    print('child', flush=True)\n"
             "else:\n    os.waitpid(pid, 0)\n    time.sleep(0.3)\n    print('parent')\n"),
    "del at exit": ("class D:\n    def __del__(self):\n        print('finalized')\n"
                    "d = D()\nprint('made')\n"),
    # (a zygote run's table also lists, beneath its own /work, /tmp, /proc and /dev/shm, the
    # zygote's, which it cannot reach: compare the set of mount points)
    "hostname and mounts": ("import socket\nprint(socket.gethostname())\n"
                            "print(sorted({l.split()[1] for l in open('/proc/self/mounts')}))\n"),
    # The import system must see this run's directories, not what the zygote cached of its own.
    "import from the work dir": ("open('helper_mod.py', 'w').write('VALUE = 41 + 1')\n"
                                 "import helper_mod\nprint(helper_mod.VALUE)\n"),
    "import from /tmp": ("import sys\nopen('/tmp/tmp_mod.py', 'w').write('X = \"from tmp\"')\n"
                         "sys.path.insert(0, '/tmp')\nimport tmp_mod\nprint(tmp_mod.X)\n"),
    "limits": ("import resource\nprint([resource.getrlimit(getattr(resource, n)) for n in "
               "('RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE', 'RLIMIT_CORE')])\n"),
}


def health(srv):
    return srv.get("/health").json()["exec"]


def wait_ready(srv, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        z = health(srv)["zygote"]
        if z and z["ready"]:
            return z
        time.sleep(0.1)
    raise AssertionError("the zygote never became ready: %r" % health(srv))


def run(srv, code, **kw):
    r = srv.post("/execute", body=dict(code=code, **kw), timeout=60)
    assert r.status == 200, r
    return r.json()


class TestZygote(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.zyg = Server(env=dict(NO_POOL, EXEC_MODE="zygote")).start()
        cls.cold = Server(env=dict(NO_POOL, EXEC_MODE="fork")).start()
        wait_ready(cls.zyg)

    @classmethod
    def tearDownClass(cls):
        for srv in (cls.zyg, cls.cold):
            try:
                srv.stop()
            finally:
                srv.cleanup()

    def test_health_shows_both_tiers(self):
        z = health(self.zyg)["zygote"]
        names = [t["name"] for t in z["tiers"]]
        self.assertEqual(names, ["light", "full"])
        light, full = z["tiers"]
        self.assertIn("json", light["modules"])
        self.assertNotIn("numpy", light["modules"])  # the light tier is standard library only
        self.assertIn("numpy", full["modules"])
        self.assertIn("pandas", full["modules"])
        self.assertIsNone(health(self.cold)["zygote"])
        self.assertEqual(health(self.cold)["mode"], "fork")

    def test_same_result_as_a_cold_start(self):
        for name, code in PARITY.items():
            with self.subTest(name):
                a, b = run(self.zyg, code), run(self.cold, code)
                for k in ("exitCode", "stdout", "stderr", "signal", "timedOut", "violations"):
                    self.assertEqual(a[k], b[k], f"{name}: {k} differs (zygote vs cold)")

    def test_a_run_imports_modules_it_wrote(self):
        for name, want in (("import from the work dir", "42\n"), ("import from /tmp", "from tmp\n")):
            r = run(self.zyg, PARITY[name])
            self.assertEqual((r["exitCode"], r["stdout"]), (0, want), r)

    def test_numpy_goes_to_the_full_tier_and_the_rest_to_the_light_one(self):
        def runs():
            return [t["runs"] for t in health(self.zyg)["zygote"]["tiers"]]
        before = runs()
        res = run(self.zyg, "import numpy as np\nprint(int(np.arange(10).sum()))")
        self.assertEqual(res["stdout"], "45\n", res)
        mid = runs()
        self.assertEqual(mid, [before[0], before[1] + 1])
        res = run(self.zyg, "print(sum(range(10)))")
        self.assertEqual(res["stdout"], "45\n", res)
        self.assertEqual(runs(), [mid[0] + 1, mid[1]])
        # a module that is only imported indirectly still works in the light tier (cold import)
        res = run(self.zyg, "m = __import__('num' + 'py')\nprint(m.__name__)")
        self.assertEqual(res["stdout"], "numpy\n", res)

    def test_every_run_gets_fresh_random_state(self):
        code = ("import random, os\nimport numpy as np\n"
                "print(random.random(), np.random.rand(), os.urandom(4).hex())")
        outs = {run(self.zyg, code)["stdout"] for _ in range(3)}
        self.assertEqual(len(outs), 3, outs)
        code = "import random\nprint(random.getrandbits(64))"
        outs = {run(self.zyg, code)["stdout"] for _ in range(3)}
        self.assertEqual(len(outs), 3, outs)

    def test_the_answer_does_not_wait_for_the_teardown_but_the_slot_does(self):
        # A zygote program says its exit code just before it exits, so the answer need not wait
        # for the kernel to tear its copy of the zygote down. Its subprocess still dies with it
        # (as in a cold run), and nothing of the run is left shortly after the answer.
        code = ("import subprocess, sys\n"
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                "print('parent done')\nsys.exit(5)\n")
        for srv in (self.zyg, self.cold):
            res = run(srv, code)
            self.assertEqual((res["exitCode"], res["stdout"]), (5, "parent done\n"), res)
            self.assertTrue(wait_until(lambda: not descendants(srv.proc.pid)
                                       and not srv.data_entries(running=True)
                                       and health(srv)["running"] == 0, 5),
                            (descendants(srv.proc.pid), srv.data_entries(running=True)))

    def test_a_program_that_says_it_is_done_early_only_ends_itself(self):
        # The pipe it says so on is the program's own (its highest descriptor): writing a word
        # there early answers its run at once, with its output so far, and then ends it.
        code = ("import os, time\n"
                "fd = max(int(f) for f in os.listdir('/proc/self/fd'))\n"
                "print('before', flush=True)\nos.write(fd, b'D7')\n"
                "time.sleep(30)\nprint('after')\n")
        t0 = time.time()
        res = run(self.zyg, code)
        self.assertLess(time.time() - t0, 10)
        self.assertEqual((res["exitCode"], res["stdout"]), (7, "before\n"), res)
        self.assertTrue(wait_until(lambda: not descendants(self.zyg.proc.pid)
                                   and health(self.zyg)["running"] == 0, 10),
                        descendants(self.zyg.proc.pid))
        self.assertIn(b"still running 2 s after its program said it exited",
                      self.zyg.read_log())

    def test_every_descriptor_of_a_run_is_below_its_limit(self):
        # as in a cold run, a program that closes or walks its descriptors up to its
        # RLIMIT_NOFILE (EXEC_OPEN_FILES, 256) meets all it has, the done pipe too (nothing
        # sits at the server's own limit, which is higher)
        code = ("import os, resource\nlim = resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
                "print(lim, max(int(f) for f in os.listdir('/proc/self/fd')) < lim)\n")
        for srv in (self.zyg, self.cold):
            res = run(srv, code)
            self.assertEqual(res["stdout"], "256 True\n", res)

    def test_preloaded_memory_does_not_eat_the_run_limit(self):
        # 200 MiB in a run of the full tier, whose interpreter maps ~180 MiB of modules already:
        # the limit (EXEC_MEMORY_MB, 512) applies to what the run adds, as for a cold run.
        code = ("import numpy as np\nb = bytearray(200 * 1024 * 1024)\n"
                "print(len(b) // 2**20, np.__name__)")
        a, b = run(self.zyg, code), run(self.cold, code)
        self.assertEqual(a["stdout"], "200 numpy\n", a)
        self.assertEqual(b["stdout"], a["stdout"])
        code = "b = bytearray(700 * 1024 * 1024)\nprint('no')"
        for res in (run(self.zyg, code), run(self.cold, code)):
            self.assertNotEqual(res["exitCode"], 0, res)
            self.assertIn("MemoryError", res["stderr"])


class TestZygoteReplacement(unittest.TestCase):
    def setUp(self):
        self.srv = Server(env=dict(NO_POOL, EXEC_MODE="zygote")).start()
        wait_ready(self.srv)

    def tearDown(self):
        try:
            self.assertEqual(self.srv.stop(), 0)
            self.assertEqual(self.srv.data_entries(), [])
        finally:
            self.srv.cleanup()

    def tier(self, name):
        return next(t for t in health(self.srv)["zygote"]["tiers"] if t["name"] == name)

    def test_a_killed_zygote_is_replaced(self):
        old = self.tier("light")
        os.kill(old["pid"], signal.SIGKILL)
        # runs meanwhile still answer (from the other tier or cold)
        for _ in range(3):
            self.assertEqual(run(self.srv, "print('still here')")["stdout"], "still here\n")
        deadline = time.time() + 30
        while time.time() < deadline:
            new = self.tier("light")
            if new["ready"] and new["pid"] != old["pid"]:
                break
            time.sleep(0.1)
        self.assertTrue(new["ready"] and new["pid"] != old["pid"], new)
        self.assertEqual(new["starts"], old["starts"] + 1)
        before = new["runs"]
        self.assertEqual(run(self.srv, "print(6 * 7)")["stdout"], "42\n")
        self.assertEqual(self.tier("light")["runs"], before + 1)
        self.assertIn(b"light: exited", self.srv.read_log())

    # A run that is killed with its zygote after it has begun: it starts by checking that its
    # work dir is empty, leaves a mark there, then sleeps.
    MARKED = ("import os, time\nprint('empty' if not os.listdir('.') else os.listdir('.'))\n"
              "open('mark', 'w').close()\ntime.sleep(1.5)\nprint('done')\n")

    def kill_light_under_run(self):
        """SIGKILL the light zygote once a run from it has left its mark; returns its pid."""
        pid = self.tier("light")["pid"]
        deadline = time.time() + 20
        pattern = os.path.join(self.srv.data_dir, "runs", "*", "work", "mark")
        while not glob.glob(pattern) and time.time() < deadline:
            time.sleep(0.02)
        self.assertTrue(glob.glob(pattern), "the run never began")
        os.kill(pid, signal.SIGKILL)
        return pid

    def test_a_run_killed_with_its_zygote_runs_again_cold(self):
        cold = health(self.srv)["startedCold"]
        result = {}
        t = threading.Thread(target=lambda: result.update(run(self.srv, self.MARKED)))
        t.start()
        self.kill_light_under_run()
        t.join(60)
        # the whole program ran again, from an empty work dir, and the caller saw one clean run
        self.assertEqual((result["exitCode"], result["stdout"], result["signal"]),
                         (0, "empty\ndone\n", None), result)
        self.assertEqual(result["stderr"], "")
        self.assertEqual(health(self.srv)["startedCold"], cold + 1)
        self.assertIn(b"running it again cold", self.srv.read_log())

    def test_a_streamed_run_killed_with_its_zygote_says_so(self):
        # its first line already reached the client: it cannot be taken back, so no second run
        killer = threading.Thread(target=self.kill_light_under_run)
        killer.start()
        events = [(e, d) for e, d, _ in self.srv.execute_events({"code": self.MARKED})]
        killer.join(30)
        self.assertEqual(events[-1][0], "done", events)
        done = events[-1][1]
        self.assertEqual((done["exitCode"], done["stdout"], done["signal"]),
                         (None, "empty\n", "KILL"), done)
        self.assertIn("the run was lost", done["stderr"])
        self.assertIn("run it again", done["stderr"])

    def test_a_hung_zygote_does_not_hold_a_run(self):
        pids = [t["pid"] for t in health(self.srv)["zygote"]["tiers"]]
        # stop the interpreters themselves (the children of the zygotes' inits)
        kids = []
        for p in pids:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids += [int(c) for c in f.read().split()]
        self.assertEqual(len(kids), 2, kids)
        for k in kids:
            os.kill(k, signal.SIGSTOP)
        try:
            t0 = time.time()
            res = run(self.srv, "print('cold instead')")
            self.assertEqual(res["stdout"], "cold instead\n", res)
            self.assertLess(time.time() - t0, 20)
            self.assertGreaterEqual(health(self.srv)["startedCold"], 1)
        finally:
            for k in kids:
                os.kill(k, signal.SIGCONT)


if __name__ == "__main__":
    unittest.main()
