"""The escape suite: hostile Python programs POSTed to /execute against the real sandboxd and
the real python3. Each must end with a clear result (refused, and explained in stderr where the
sandbox refused a call), the server must stay healthy, and nothing of the run may be left:
no process under the server, no directory under DATA_DIR/runs.
"""

import json
import os
import socket
import threading
import time
import unittest

from harness import LocalSite, ServerTestCase, descendants, wait_zygote

CANARY = "canary-" + os.urandom(6).hex()
DISK_MB = 8  # EXEC_FILE_SIZE_MB; the disk quota is 4 x this

# ctypes preamble for raw system calls (x86_64 numbers)
RAW = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
"""


class EscapeTest(ServerTestCase):
    """Every program against runs cloned from the pre-forked zygote (EXEC_MODE=zygote);
    EscapeTestFork below runs the same programs against cold starts."""

    server_env = {"SBX_CANARY": CANARY, "EXEC_FILE_SIZE_MB": str(DISK_MB),
                  "EXEC_MEMORY_MB": "256", "EXEC_MAX_PROCS": "32",
                  "EXEC_OUTPUT_BYTES": "65536", "BROWSER_POOL_SIZE": "0",
                  "EXEC_MODE": "zygote"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.server_env["EXEC_MODE"] == "zygote":
            wait_zygote(cls.server)

    def started(self):
        ex = self.server.get("/health").json()["exec"]
        return ex["startedZygote"], ex["startedCold"]

    def run_code(self, code, timeout_ms=10000, **extra):
        body = {"code": code, "timeoutMs": timeout_ms}
        body.update(extra)
        r = self.server.post("/execute", body, timeout=timeout_ms / 1000 + 30)
        self.assertEqual(r.status, 200, r)
        res = r.json()
        for k in ("exitCode", "stdout", "stderr", "uploads"):
            self.assertIn(k, res)
        return res

    def tearDown(self):
        # the server is healthy and nothing of the run is left
        self.assertEqual(self.server.get("/health").status, 200)
        runs = os.path.join(self.server.data_dir, "runs")
        deadline = time.time() + 5
        while True:
            left = descendants(self.server.proc.pid)
            dirs = os.listdir(runs) if os.path.isdir(runs) else []
            if (not left and not dirs) or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(left, [], "processes of a run outlived it")
        self.assertEqual(dirs, [], "a run directory was left")
        # every run took the path this class is about
        zygote, cold = self.started()
        if self.server_env["EXEC_MODE"] == "zygote":
            self.assertEqual(cold, 0, "a run started cold instead of from the zygote")
            self.assertTrue(self.server.get("/health").json()["exec"]["zygote"]["ready"],
                            "a program broke the zygote")
        else:
            self.assertEqual(zygote, 0, "a run came from a zygote in fork mode")

    def assertRefused(self, res, kind, text):
        """The sandbox refused something of `kind` and said so in stderr and violations."""
        self.assertIn("sandbox: ", res["stderr"])
        self.assertIn(text, res["stderr"])
        kinds = [v["kind"] for v in res.get("violations", [])]
        self.assertIn(kind, kinds, res)

    # ---- network ----
    def test_inet_connect(self):
        res = self.run_code("import socket\n"
                            "try:\n socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                            " print('CONNECTED')\n"
                            "except OSError as e: print('refused', e.errno)\n")
        self.assertNotIn("CONNECTED", res["stdout"])
        self.assertRefused(res, "network", "network access is disabled; socket(AF_INET)")

    def test_inet6_connect(self):
        res = self.run_code("import socket\n"
                            "s = socket.socket(socket.AF_INET6)\n"
                            "s.connect(('::1', %d))\n" % self.server.port)
        self.assertNotEqual(res["exitCode"], 0)
        self.assertIn("PermissionError", res["stderr"])
        self.assertRefused(res, "network", "socket(AF_INET6)")

    def test_dns(self):
        res = self.run_code("import socket\n"
                            "try: print('RESOLVED', socket.getaddrinfo('example.com', 80))\n"
                            "except OSError as e: print('no dns', type(e).__name__)\n")
        self.assertIn("no dns", res["stdout"])
        self.assertNotIn("RESOLVED", res["stdout"])

    def test_server_port_on_loopback(self):
        res = self.run_code("import http.client\n"
                            "c = http.client.HTTPConnection('127.0.0.1', %d, timeout=2)\n"
                            "try:\n c.request('GET', '/health'); print('REACHED', c.getresponse().status)\n"
                            "except OSError as e: print('refused', e.errno)\n" % self.server.port)
        self.assertIn("refused", res["stdout"])
        self.assertRefused(res, "network", "socket(AF_INET)")

    def test_abstract_unix_socket_of_the_host(self):
        name = "\0sbx-escape-" + os.urandom(4).hex()
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(name)
        srv.listen(1)
        srv.settimeout(0.5)
        try:
            res = self.run_code("import socket\n"
                                "s = socket.socket(socket.AF_UNIX)\n"
                                "try: s.connect(%r); print('CONNECTED')\n"
                                "except OSError as e: print('refused', e.errno)\n" % name)
            self.assertIn("refused", res["stdout"])
            with self.assertRaises(socket.timeout):
                srv.accept()
        finally:
            srv.close()

    def run_pair(self, first, second):
        """Two runs at once (`first` starts, then `second` while it still runs); both results."""
        out = {}
        t = threading.Thread(target=lambda: out.update(first=self.run_code(first)))
        t.start()
        time.sleep(0.3)
        out["second"] = self.run_code(second)
        t.join(30)
        self.assertIn("first", out, "the first run never answered")
        return out["first"], out["second"]

    def test_two_runs_cannot_meet_on_an_abstract_unix_socket(self):
        # one run listens on an abstract name for 3 s; a run beside it looks for that name in
        # /proc/net/unix and tries to connect, again and again, for 2 s
        name = "sbx-meet-" + os.urandom(4).hex()
        listen = ("import socket\ns = socket.socket(socket.AF_UNIX)\ns.bind('\\0%s')\n"
                  "s.listen(1)\ns.settimeout(3)\n"
                  "try: s.accept(); print('MET')\nexcept OSError: print('alone')\n" % name)
        look = ("import socket, time\nseen = tried = 0\nend = time.time() + 2\n"
                "while time.time() < end:\n"
                "    seen += open('/proc/net/unix').read().count('%s')\n"
                "    c = socket.socket(socket.AF_UNIX)\n"
                "    try: c.connect('\\0%s'); print('MET'); break\n"
                "    except OSError as e: tried += 1\n"
                "    finally: c.close()\n"
                "    time.sleep(0.05)\n"
                "print('seen', seen, 'tried', tried)\n" % (name, name))
        a, b = self.run_pair(listen, look)
        self.assertEqual(a["stdout"], "alone\n", a)
        self.assertNotIn("MET", b["stdout"], b)
        self.assertRegex(b["stdout"], r"^seen 0 tried [1-9]", b)

    def test_two_runs_cannot_meet_on_loopback(self):
        # 127.0.0.1 does not exist for a run: neither end gets an AF_INET socket, and both are
        # told why in stderr
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
        listen = ("import socket\ntry:\n s = socket.socket()\n s.bind(('127.0.0.1', %d))\n"
                  " s.listen(1)\n s.settimeout(3)\n s.accept()\n print('MET')\n"
                  "except OSError as e: print('refused', e.errno)\n" % port)
        connect = ("import socket\ntry: socket.create_connection(('127.0.0.1', %d), timeout=2);"
                   " print('MET')\nexcept OSError as e: print('refused', e.errno)\n" % port)
        for res in self.run_pair(listen, connect):
            self.assertTrue(res["stdout"].startswith("refused"), res)
            self.assertRefused(res, "network", "network access is disabled; socket(AF_INET)")

    def test_a_run_cannot_bring_loopback_up(self):
        # SIOCSIFFLAGS works on any socket, AF_UNIX too: the run has no CAP_NET_ADMIN over its
        # network namespace, so lo stays down
        res = self.run_code(
            "import fcntl, socket, struct\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "def flags(): return struct.unpack('16sH', fcntl.ioctl(s, 0x8913,"
            " struct.pack('16sH', b'lo', 0))[:18])[1]\n"
            "try: fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', flags() | 1)); print('SET')\n"
            "except OSError as e: print('refused', e.errno)\n"
            "print('up' if flags() & 1 else 'down')\n")
        self.assertEqual(res["stdout"], "refused 1\ndown\n", res)

    def test_packet_alg_vsock_sockets(self):
        res = self.run_code(
            "import socket\n"
            "for fam, typ in ((17, socket.SOCK_RAW), (38, socket.SOCK_SEQPACKET),"
            " (40, socket.SOCK_STREAM), (16, socket.SOCK_RAW)):\n"
            "    try: socket.socket(fam, typ); print('OPENED', fam)\n"
            "    except OSError as e: print('refused', fam, e.errno)\n")
        self.assertNotIn("OPENED", res["stdout"])
        for fam in ("AF_PACKET", "AF_ALG", "AF_VSOCK", "AF_NETLINK"):
            self.assertIn(fam, res["stderr"])
        self.assertRefused(res, "network", "network access is disabled")

    # ---- secrets ----
    def test_environment_has_nothing_of_the_server(self):
        res = self.run_code("import os\nprint(sorted(os.environ))\nprint(dict(os.environ))\n")
        self.assertEqual(res["exitCode"], 0, res)
        self.assertNotIn(CANARY, res["stdout"])
        self.assertNotIn(self.server.token, res["stdout"])
        self.assertNotIn("DATA_DIR", res["stdout"])
        self.assertNotIn(self.server.data_dir, res["stdout"])

    def test_proc_environ_and_cmdline_of_every_visible_process(self):
        res = self.run_code(
            "import os\n"
            "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
            "print('pids', len(pids))\n"
            "for p in pids:\n"
            "    for f in ('environ', 'cmdline'):\n"
            "        try: print(p, f, open('/proc/%s/%s' % (p, f), 'rb').read())\n"
            "        except OSError as e: print(p, f, 'denied', e.errno)\n")
        self.assertEqual(res["exitCode"], 0, res)
        out = res["stdout"]
        self.assertNotIn(CANARY, out)
        self.assertNotIn(self.server.token, out)
        self.assertNotIn("sandboxd", out)
        # only the run's own processes are visible (init and python)
        self.assertLessEqual(int(out.split()[1]), 3, out)

    def test_server_files(self):
        paths = [os.path.join(self.server.data_dir, "sandboxd.lock"), self.server.data_dir,
                 os.path.join(self.server.data_dir, "runs"), self.server.tmp,
                 self.server.log_path, "/root/.ssh", "/root", "/home", "/run", "/sys/kernel",
                 "/etc/shadow", os.path.abspath(__file__)]
        res = self.run_code("import os\n"
                            "for p in %r:\n"
                            "    try:\n"
                            "        print('LISTED' if os.path.isdir(p) else 'READ', p,"
                            " os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(64))\n"
                            "    except OSError as e: print('absent', p, e.errno)\n" % paths)
        self.assertEqual(res["exitCode"], 0, res)
        self.assertNotIn("LISTED", res["stdout"])
        self.assertNotIn("READ", res["stdout"])
        self.assertEqual(res["stdout"].count("absent"), len(paths))

    # ---- filesystem ----
    def test_writes_outside_the_work_dir(self):
        marker = os.path.join(self.server.tmp, "escaped-" + os.urandom(4).hex())
        targets = ["/etc/passwd", "/usr/lib/evil", "/evil", "/dev/evil", "/proc/sys/kernel/hostname",
                   marker, self.server.data_dir + "/evil"]
        res = self.run_code("import os\n"
                            "for p in %r:\n"
                            "    try: open(p, 'a').write('x'); print('WROTE', p)\n"
                            "    except OSError as e: print('denied', p, e.errno)\n"
                            "open('ok.txt', 'w').write('fine'); open('/tmp/ok', 'w').write('fine')\n"
                            "print('cwd ok')\n" % targets)
        self.assertEqual(res["exitCode"], 0, res)
        self.assertNotIn("WROTE", res["stdout"])
        self.assertIn("cwd ok", res["stdout"])
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.server.data_dir + "/evil"))

    def test_symlinks_planted_for_the_upload_step(self):
        got = []

        def upload(h):
            got.append(h.body)
            body = json.dumps({"url": "http://files.example/x"}).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        lock = os.path.join(self.server.data_dir, "sandboxd.lock")
        with LocalSite({"/up": upload}) as site:
            res = self.run_code(
                "import os\n"
                "os.symlink('/etc/passwd', 'passwd.txt')\n"
                "os.symlink(%r, 'lock.txt')\n"
                "os.symlink('/proc/1/environ', 'environ.txt')\n"
                "os.mkdir('d'); os.symlink('/etc', 'd/etc')\n"
                "open('real.txt', 'w').write('REAL-CONTENT')\n" % lock,
                fileUploadUrl=site.url + "/up", uploadToken="t")
        self.assertEqual(res["exitCode"], 0, res)
        names = sorted(u["filename"] for u in res["uploads"])
        self.assertEqual(names, ["real.txt"], res["uploads"])
        sent = b"".join(got)
        self.assertIn(b"REAL-CONTENT", sent)
        self.assertNotIn(b"root:x:0:0", sent)

    def test_tmp_does_not_persist_between_runs(self):
        tag = os.urandom(4).hex()
        first = self.run_code("open('/tmp/persist-%s', 'w').write('x')\n"
                              "import os; print(os.listdir('/tmp'))\n" % tag)
        self.assertEqual(first["exitCode"], 0, first)
        second = self.run_code("import os; print('left', os.listdir('/tmp'))\n")
        self.assertIn("left []", second["stdout"])

    # ---- processes ----
    def test_kill_the_server(self):
        pid = self.server.proc.pid
        res = self.run_code("import os, signal\n"
                            "for p in (%d, 1, os.getppid()):\n"
                            "    try: os.kill(p, signal.SIGKILL); print('sent', p)\n"
                            "    except OSError as e: print('denied', p, e.errno)\n"
                            "print('alive')\n" % pid)
        self.assertIn("alive", res["stdout"])
        self.assertIsNone(self.server.proc.poll())

    def test_kill_minus_one(self):
        res = self.run_code("import os, signal, time\n"
                            "try: os.kill(-1, signal.SIGKILL)\n"
                            "except OSError as e: print('denied', e.errno)\n"
                            "print('still here')\n")
        self.assertIn("still here", res["stdout"])
        self.assertIsNone(self.server.proc.poll())

    def test_ptrace_the_parent(self):
        res = self.run_code(RAW + "print('ptrace', *sc(101, 16, os.getppid(), 0, 0))\n"
                            "print('vm_readv', *sc(310, os.getppid(), 0, 0, 0, 0, 0))\n")
        self.assertIn("ptrace -1 1", res["stdout"])
        self.assertIn("vm_readv -1 1", res["stdout"])
        self.assertRefused(res, "process", "ptrace()")

    def test_fork_bomb(self):
        t0 = time.time()
        res = self.run_code("import os\n"
                            "n = 0\n"
                            "while True:\n"
                            "    try: os.fork(); n += 1\n"
                            "    except OSError: break\n"
                            "print('stopped at', n)\n", timeout_ms=5000)
        self.assertLess(time.time() - t0, 30)
        self.assertTrue(res.get("timedOut") or "stopped at" in res["stdout"], res)

    def test_thread_bomb(self):
        res = self.run_code("import threading, time\n"
                            "n = 0\n"
                            "try:\n"
                            "    while True:\n"
                            "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); n += 1\n"
                            "except RuntimeError as e: print('stopped at', n, e)\n"
                            "import os; os._exit(0)\n", timeout_ms=10000)
        self.assertIn("stopped at", res["stdout"])
        self.assertLess(int(res["stdout"].split()[2]), 64)

    def test_memory_bomb(self):
        res = self.run_code("chunks = []\n"
                            "try:\n"
                            "    while True: chunks.append(bytearray(16 << 20))\n"
                            "except MemoryError: print('MemoryError after', len(chunks) * 16, 'MiB')\n")
        self.assertIn("MemoryError after", res["stdout"])
        self.assertLess(int(res["stdout"].split()[2]), 300)

    def test_disk_fill(self):
        t0 = time.time()
        res = self.run_code("i = 0\n"
                            "while True:\n"
                            "    with open('fill%d' % i, 'wb') as f: f.write(b'x' * (4 << 20))\n"
                            "    i += 1\n", timeout_ms=20000)
        self.assertLess(time.time() - t0, 20)
        self.assertNotEqual(res["exitCode"], 0)
        self.assertRefused(res, "limit", "disk quota of %d MiB" % (4 * DISK_MB))

    def test_output_flood(self):
        res = self.run_code("import sys\n"
                            "for i in range(200000): sys.stdout.write('x' * 100 + '\\n')\n"
                            "sys.stderr.write('e' * 10000000)\n", timeout_ms=20000)
        self.assertLessEqual(len(res["stdout"]), 65536 + 1024)
        self.assertLessEqual(len(res["stderr"]), 65536 + 1024)
        self.assertTrue(res.get("truncated", True))

    def test_double_fork_daemon(self):
        res = self.run_code("import os, time\n"
                            "if os.fork() == 0:\n"
                            "    os.setsid()\n"
                            "    if os.fork() == 0:\n"
                            "        time.sleep(3600)\n"
                            "    os._exit(0)\n"
                            "time.sleep(0.2)\nprint('parent done')\n")
        self.assertIn("parent done", res["stdout"])
        self.assertEqual(res["exitCode"], 0)
        # tearDown asserts no process is left under the server

    def test_busy_loop_ignoring_sigterm(self):
        t0 = time.time()
        res = self.run_code("import signal\n"
                            "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
                            "    signal.signal(s, signal.SIG_IGN)\n"
                            "while True: pass\n", timeout_ms=1000)
        self.assertLess(time.time() - t0, 10)
        self.assertIsNone(res["exitCode"])
        self.assertTrue(res.get("timedOut"), res)

    # ---- kernel surface ----
    KERNEL_CALLS = [
        ("unshare", "sc(272, 0x10000000)", "unshare()"),
        ("mount", "sc(165, 0, 0, 0, 0, 0)", "mount()"),
        ("bpf", "sc(321, 0, 0, 0)", "bpf()"),
        ("keyctl", "sc(250, 0, 0)", "keyctl()"),
        ("userfaultfd", "sc(323, 0)", "userfaultfd()"),
        ("perf_event_open", "sc(298, 0, 0, -1, -1, 0)", "perf_event_open()"),
        ("io_uring_setup", "sc(425, 1, 0)", "io_uring_setup()"),
        ("init_module", "sc(175, 0, 0, 0)", "init_module()"),
        ("personality", "sc(135, 0x0040000)", "personality(0x40000)"),
    ]

    def test_kernel_surface(self):
        for name, call, detail in self.KERNEL_CALLS:
            with self.subTest(name):
                res = self.run_code(RAW + "print(%r, *%s)\n" % (name, call))
                self.assertIn("%s -1 1" % name, res["stdout"], res)
                self.assertRefused(res, "kernel", detail)
                self.tearDown()

    def test_clone3_is_enosys_and_threads_work(self):
        res = self.run_code(RAW + "print('clone3', *sc(435, 0, 0))\n"
                            "import threading, subprocess\n"
                            "t = threading.Thread(target=print, args=('thread ran',)); t.start(); t.join()\n"
                            "print(subprocess.run(['/bin/sh', '-c', 'echo from sh'],"
                            " capture_output=True, text=True).stdout)\n")
        self.assertIn("clone3 -1 38", res["stdout"])
        self.assertIn("thread ran", res["stdout"])
        self.assertIn("from sh", res["stdout"])

    def test_setuid_root(self):
        res = self.run_code("import os\n"
                            "try: os.setuid(0); print('ROOT')\n"
                            "except OSError as e: print('denied', e.errno)\n"
                            "print(os.getuid(), os.geteuid())\n")
        self.assertRegex(res["stdout"], r"denied (1|22)\n1000 1000\n")  # EPERM or EINVAL
        self.assertNotIn("ROOT", res["stdout"])

    def test_tiocsti(self):
        res = self.run_code("import fcntl, termios, sys\n"
                            "for fd in (0, 1, 2):\n"
                            "    try: fcntl.ioctl(fd, termios.TIOCSTI, b'x'); print('INJECTED')\n"
                            "    except OSError as e: print('denied', e.errno)\n")
        self.assertNotIn("INJECTED", res["stdout"])
        self.assertRefused(res, "kernel", "ioctl(TIOCSTI)")

    def test_status_shows_no_new_privs_and_seccomp(self):
        res = self.run_code("print(open('/proc/self/status').read())\n")
        self.assertIn("NoNewPrivs:\t1", res["stdout"])
        self.assertIn("Seccomp:\t2", res["stdout"])
        self.assertIn("CapEff:\t0000000000000000", res["stdout"])
        self.assertIn("CapBnd:\t0000000000000000", res["stdout"])


class EscapeTestFork(EscapeTest):
    """The same programs against cold starts (EXEC_MODE=fork)."""

    server_env = dict(EscapeTest.server_env, EXEC_MODE="fork")



NOBODY = 65534


class EscapeTestUnprivileged(EscapeTest):
    """The same programs against a server started as an unprivileged user (nobody), so every
    layer is built inside unprivileged user namespaces: runs from the zygote."""

    server_user = NOBODY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        layers = cls.server.get("/health").json()["exec"]["sandbox"]
        if not (layers["complete"] and layers["hostIds"] == "server"):
            super().tearDownClass()
            raise AssertionError(f"unprivileged, the sandbox is not complete: {layers}")

    def test_the_server_runs_unprivileged(self):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(uids, [str(NOBODY)] * 4)
        res = self.run_code("import os; print(os.getuid(), os.getgid(), os.getcwd())")
        self.assertEqual(res["stdout"], "1000 1000 /work\n", res)


class EscapeTestUnprivilegedFork(EscapeTestUnprivileged):
    """Unprivileged, cold starts (EXEC_MODE=fork)."""

    server_env = dict(EscapeTest.server_env, EXEC_MODE="fork")


class EscapeTestNetwork(ServerTestCase):
    """With network (EXEC_NETWORK=allowlist) the run's only way out is the egress gateway in
    its own network namespace: nothing around it, and not the server itself through it (the
    policy's own cases are in test_egress.py)."""

    server_env = {"EXEC_NETWORK": "allowlist", "EGRESS_ALLOWED_DOMAINS": "127.0.0.1",
                  "EGRESS_PRIVATE_ALLOWED": "127.0.0.1", "BROWSER_POOL_SIZE": "0",
                  "EXEC_MODE": "zygote"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.server_env["EXEC_MODE"] == "zygote":
            wait_zygote(cls.server)

    def started(self):
        ex = self.server.get("/health").json()["exec"]
        return ex["startedZygote"], ex["startedCold"]

    def tearDown(self):
        # every run took the path of the class: from the zygote, or cold
        zygote, cold = self.started()
        if self.server_env["EXEC_MODE"] == "zygote":
            self.assertEqual(cold, 0, "a run with network started cold instead of from the zygote")
        else:
            self.assertEqual(zygote, 0)

    def run_code(self, code):
        r = self.server.post("/execute", {"code": code, "timeoutMs": 30000}, timeout=60)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_nothing_around_the_gateway(self):
        with LocalSite({"/": (200, "text/plain", "site")}) as site:
            code = f"""
import socket
out = []
for fam, host, port in [(socket.AF_INET, '127.0.0.1', {site.port}),
                        (socket.AF_INET, '127.0.0.1', {self.server.port}),
                        (socket.AF_INET6, '::1', {site.port})]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        out.append('CONNECTED')
    except OSError as e:
        out.append(type(e).__name__)
for fam in (socket.AF_PACKET, socket.AF_NETLINK):
    try:
        socket.socket(fam, socket.SOCK_RAW, 0)
        out.append('RAW')
    except OSError as e:
        out.append(type(e).__name__)
try:
    socket.create_connection(('127.0.0.1', 3128), timeout=3).close()
    out.append('gateway')
except OSError:
    out.append('NO GATEWAY')
print(' '.join(out))
"""
            res = self.run_code(code)
            words = res["stdout"].split()
            self.assertEqual(len(words), 6, res)
            self.assertNotIn("CONNECTED", words, res)
            self.assertNotIn("RAW", words, res)
            self.assertEqual(words[-1], "gateway", res)
            self.assertEqual([r for r in site.requests], [])

    def test_the_server_through_the_gateway(self):
        code = f"""
import socket
s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
s.sendall(b'CONNECT 127.0.0.1:{self.server.port} HTTP/1.1\\r\\n\\r\\n')
print(s.recv(4096).decode().split('\\r\\n')[0])
"""
        res = self.run_code(code)
        self.assertEqual(res["stdout"], "HTTP/1.1 403 Forbidden\n", res)
        self.assertIn(f"network access to 127.0.0.1:{self.server.port} was refused: the server's "
                      "own address", res["stderr"])
        self.assertEqual(self.server.get("/health").status, 200)


class EscapeTestNetworkFork(EscapeTestNetwork):
    """The same on cold starts (EXEC_MODE=fork)."""

    server_env = dict(EscapeTestNetwork.server_env, EXEC_MODE="fork")


class EscapeTestNetworkUnprivileged(EscapeTestNetwork):
    """The same with an unprivileged server (nobody): the run's init still brings up its own
    loopback and hands the gateway's socket over."""

    server_user = NOBODY


class EscapeTestNetworkUnprivilegedFork(EscapeTestNetworkUnprivileged):
    """Unprivileged, cold starts (EXEC_MODE=fork)."""

    server_env = dict(EscapeTestNetwork.server_env, EXEC_MODE="fork")


if __name__ == "__main__":
    unittest.main()
