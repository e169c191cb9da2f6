# kernel.py -- the driver of a Python session (workspace.c), embedded in the server at build
# time and run as the program of the session's sandbox (from the zygote when it is up, so the
# modules it preloaded are already imported).
#
# The driver forks the interpreter that runs the session's code (the "kernel") and keeps it:
# when the kernel dies or is killed, a fresh one is forked at once (its globals are lost; the
# modules imported before the fork are still there). Shell commands run beside it, started by
# the driver, in the same sandbox and work directory.
#
# Protocol, on fd 0 (a stream socket to the server): frames of a 4-byte big-endian length and
# a JSON object, both ways. Server -> driver, each with an "id" the answers carry:
#   {"op": "init", "env"}                       first: the session's environment
#   {"op": "exec", "id", "code", "cap"}        run code in the kernel
#   {"op": "interrupt", "id"}                   SIGINT to the kernel
#   {"op": "restart", "id"}                     SIGKILL the kernel, fork a fresh one
#   {"op": "cmd", "id", "argv", "cwd", "env", "cap"}   start a command (own process group)
#   {"op": "cmdkill", "id"}                     kill the command's whole tree
#   {"op": "put", "name", "data", "append"}     write (base64) data to WHEELS/name
# Driver -> server:
#   {"ev": "ready"}                                   once, when the first kernel runs
#   {"ev": "out", "id", "s": 1|2, "d": text}          output of the call `id` (capped: "cap")
#   {"ev": "done", "id", "result", "error", "images", "display", "n", "cut"}   exec finished
#   {"ev": "died", "id", "signal", "exitCode"}        the kernel died (id: the call it ran, or
#                                                     null); a fresh one runs already
#   {"ev": "restarted", "id"}                         answer to restart
#   {"ev": "cmd_done", "id", "exitCode", "signal", "cut"}   a command ended
# The kernel speaks the same framing with the driver over a socket pair; its stdout and stderr
# are pipes the driver forwards as "out" frames.
import os
import signal
import struct
import sys

if False:  # pragma: no cover -- tells the zygote to use its tier that preloaded these
    import numpy, pandas, matplotlib.pyplot  # noqa: E401,F401

import json
import selectors

SITE = "/tmp/site-packages"  # pip --target of POST .../packages; on sys.path
WHEELS = "/tmp/.sandboxd-wheels"  # the wheelhouse copy pip installs from


def send(fd, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    buf = struct.pack(">I", len(data)) + data
    while buf:
        n = os.write(fd, buf)
        buf = buf[n:]


class Reader:
    """Frames from a non-blocking descriptor."""

    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def feed(self):
        """Read what is there; returns the frames completed, or None at EOF."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.buf += chunk
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack(">I", self.buf[:4])
            if len(self.buf) < 4 + n:
                break
            out.append(json.loads(self.buf[4:4 + n]))
            self.buf = self.buf[4 + n:]
        return out


def recv_blocking(fd, buf):
    """One frame from a blocking descriptor (the kernel's side); None at EOF."""
    while True:
        if len(buf[0]) >= 4:
            (n,) = struct.unpack(">I", buf[0][:4])
            if len(buf[0]) >= 4 + n:
                obj = json.loads(buf[0][4:4 + n])
                buf[0] = buf[0][4 + n:]
                return obj
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        buf[0] += chunk


# ---- the kernel (a forked child of the driver) ----

def kernel_main(ksock):
    import ast
    import base64
    import builtins
    import importlib
    import io
    import linecache
    import traceback

    signal.signal(signal.SIGINT, signal.default_int_handler)
    for f in (sys.stdout, sys.stderr):
        try:
            f.reconfigure(write_through=True)
        except Exception:
            pass
    ns = {"__name__": "__main__", "__builtins__": builtins}
    shown = []  # rich values of the running cell
    images = []
    count = [0]

    def rich(value):
        d = {"text/plain": repr(value)}
        html = getattr(value, "_repr_html_", None)
        if callable(html):
            try:
                h = html()
                if isinstance(h, str):
                    d["text/html"] = h
            except Exception:
                pass
        return d

    def display(*values):
        for v in values:
            shown.append(rich(v))

    ns["display"] = display

    def take_figures():
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        for num in plt.get_fignums():
            b = io.BytesIO()
            try:
                plt.figure(num).savefig(b, format="png")
                images.append(base64.b64encode(b.getvalue()).decode())
            except Exception:
                pass
        plt.close("all")

    def patch_show():
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None and getattr(plt.show, "__name__", "") != "_sandboxd_show":
            def _sandboxd_show(*a, **k):
                take_figures()
            plt.show = _sandboxd_show

    def error_of(e):
        tb = e.__traceback__
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
            tb = tb.tb_next
        lines = traceback.format_exception(type(e), e, tb)
        return {"name": type(e).__name__, "value": str(e), "traceback": "".join(lines)}

    def run(code):
        count[0] += 1
        name = "<cell-%d>" % count[0]
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        result = error = None
        try:
            importlib.invalidate_caches()  # packages just installed are importable
            patch_show()
            tree = ast.parse(code, name)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, name, "exec"), ns)
            if last is not None:
                value = eval(compile(last, name, "eval"), ns)
                if value is not None:
                    ns["_"] = value
                    d = rich(value)
                    result = d["text/plain"]
                    if "text/html" in d:
                        shown.append(d)
        except SystemExit as e:
            if e.code not in (None, 0):
                error = {"name": "SystemExit", "value": str(e.code),
                         "traceback": "SystemExit: %s\n" % (e.code,)}
        except BaseException as e:  # KeyboardInterrupt too: the session keeps its state
            error = error_of(e)
        try:
            take_figures()
        except BaseException:
            pass
        return result, error

    buf = [b""]
    while True:
        try:
            req = recv_blocking(ksock, buf)
        except KeyboardInterrupt:
            continue  # an interrupt that came between calls
        if req is None:
            os._exit(0)
        shown.clear()
        images.clear()
        while True:
            try:
                result, error = run(req["code"])
                break
            except KeyboardInterrupt:  # between the cell's end and here: the cell is done
                result, error = None, {"name": "KeyboardInterrupt", "value": "",
                                       "traceback": "KeyboardInterrupt\n"}
                break
        done = {"ev": "done", "id": req["id"], "result": result, "error": error,
                "images": list(images), "display": list(shown), "n": count[0]}
        while True:
            try:
                for f in (sys.stdout, sys.stderr):
                    try:
                        f.flush()
                    except Exception:
                        pass
                send(ksock, done)
                break
            except KeyboardInterrupt:
                continue


# ---- the driver ----

class Driver:
    def __init__(self):
        self.srv = os.dup(0)  # non-inheritable: no command or kernel keeps the server's socket
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.set_blocking(self.srv, True)
        self.sel = selectors.DefaultSelector()
        self.rd = Reader(self.srv)
        os.set_blocking(self.srv, False)
        self.sel.register(self.srv, selectors.EVENT_READ, ("srv", None))
        self.kpid = None
        self.call = None  # id of the exec the kernel runs
        self.cut = {}     # id -> bytes forwarded so far per stream, and the cap
        self.cmds = {}    # id -> [pid, pipes open, exited status or None, deadline of EOF]
        if SITE not in sys.path:  # made by the first install (pip --target)
            sys.path.insert(0, SITE)
        self.kpid = None

    def init(self):
        """The first frame is {"op": "init", "env"}: the session's environment."""
        while True:
            frames = self.rd.feed()
            if frames is None:
                os._exit(0)
            if frames:
                break
            self.sel.select(None)
        first, rest = frames[0], frames[1:]
        os.environ["HOME"] = os.getcwd()  # the work dir, as for /execute
        os.environ["MPLCONFIGDIR"] = "/tmp/.matplotlib"
        os.environ.update(first.get("env") or {})
        self.start_kernel()
        self.write({"ev": "ready"})
        for r in rest:
            self.on_request(r)

    def write(self, obj):
        os.set_blocking(self.srv, True)
        try:
            send(self.srv, obj)
        finally:
            os.set_blocking(self.srv, False)

    def start_kernel(self):
        a, b = _socketpair()
        o_r, o_w = os.pipe()
        e_r, e_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(a)
                os.close(o_r)
                os.close(e_r)
                os.dup2(o_w, 1)
                os.dup2(e_w, 2)
                os.close(o_w)
                os.close(e_w)
                os.closerange(3, b)
                os.closerange(b + 1, 1 << 16)
                kernel_main(b)
            finally:
                os._exit(70)
        os.close(b)
        os.close(o_w)
        os.close(e_w)
        self.kpid, self.ksock = pid, a
        self.kreader = Reader(a)
        self.kdec = {}
        for fd, which in ((o_r, 1), (e_r, 2)):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("kout", which))
            self.kdec[fd] = _decoder()
        os.set_blocking(a, False)
        self.sel.register(a, selectors.EVENT_READ, ("ksock", None))

    def stop_kernel(self):
        """SIGKILL and reap the kernel; returns (signal, exit code)."""
        try:
            os.kill(self.kpid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(self.kpid, 0)
        for key in list(self.sel.get_map().values()):
            if key.data[0] in ("kout", "ksock"):
                self.sel.unregister(key.fd)
                os.close(key.fd)
        self.kpid = None
        if os.WIFSIGNALED(status):
            return os.WTERMSIG(status), None
        return None, os.WEXITSTATUS(status)

    def forward(self, cid, which, text):
        c = self.cut.get(cid)
        if c is None or not text:
            return
        room = c["cap"] - c["sent"][which]
        if len(text) > room:
            c["cut"][which] = True
        if room <= 0:
            return
        part = text[:room]
        c["sent"][which] += len(part)
        self.write({"ev": "out", "id": cid, "s": which, "d": part})

    def new_call(self, cid, cap):
        self.cut[cid] = {"cap": int(cap), "sent": [0, 0, 0], "cut": [False, False, False]}

    def cut_of(self, cid):
        c = self.cut.pop(cid, None)
        return c["cut"][1:] if c else [False, False]

    def drain(self, fd, which, cid, dec):
        """Everything readable on a pipe now; False at EOF."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                self.forward(cid, which, dec.decode(b"", final=True))
                return False
            self.forward(cid, which, dec.decode(chunk))

    def kernel_died(self):
        sig, code = self.stop_kernel()
        cid, self.call = self.call, None
        self.cut_of(cid)
        self.write({"ev": "died", "id": cid, "signal": sig, "exitCode": code})
        self.start_kernel()

    def on_kernel_frame(self, f):
        for key in list(self.sel.get_map().values()):
            if key.data[0] == "kout":
                self.drain(key.fd, key.data[1], self.call, self.kdec[key.fd])
        self.call = None
        f["cut"] = self.cut_of(f.get("id"))
        self.write(f)

    def start_cmd(self, req):
        o_r, o_w = os.pipe()
        e_r, e_w = os.pipe()
        env = dict(os.environ)
        env.update(req.get("env") or {})
        env["PYTHONPATH"] = SITE
        env["SANDBOXD_COMMAND"] = req["id"]  # kill_tree finds what left the process tree
        cwd = req.get("cwd") or "."
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                os.dup2(o_w, 1)
                os.dup2(e_w, 2)
                os.closerange(3, 1 << 16)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                os.chdir(cwd)
                os.execve(req["argv"][0], req["argv"], env)
            except BaseException as e:
                try:
                    os.write(2, ("sandboxd: cannot start the command: %s\n" % e).encode())
                finally:
                    os._exit(127)
        os.close(o_w)
        os.close(e_w)
        cid = req["id"]
        self.new_call(cid, req.get("cap", 1 << 20))
        self.cmds[cid] = {"pid": pid, "open": 2, "status": None, "eof_by": None}
        for fd, which in ((o_r, 1), (e_r, 2)):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("cout", (cid, which)))
            self.kdec[fd] = _decoder()

    def kill_tree(self, pid, cid):
        """SIGKILL the command's group, every process below it, and every process that still
        carries its mark in its environment (one that left the tree: setsid and a dead parent)."""
        kids = _descendants(pid) + _marked("SANDBOXD_COMMAND=" + cid)
        for p in [pid] + kids:
            for f in (os.killpg, os.kill):
                try:
                    f(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def reap_cmds(self, now):
        for cid, c in list(self.cmds.items()):
            if c["status"] is None:
                try:
                    pid, status = os.waitpid(c["pid"], os.WNOHANG)
                except ChildProcessError:
                    pid, status = c["pid"], 0
                if pid:
                    c["status"] = status
                    c["eof_by"] = now + 0.5  # a background child may hold the pipes
            if c["status"] is not None and (c["open"] == 0 or now >= c["eof_by"]):
                for key in list(self.sel.get_map().values()):
                    if key.data[0] == "cout" and key.data[1][0] == cid:
                        self.drain(key.fd, key.data[1][1], cid, self.kdec[key.fd])
                        self.sel.unregister(key.fd)
                        os.close(key.fd)
                st = c["status"]
                del self.cmds[cid]
                self.write({"ev": "cmd_done", "id": cid, "cut": self.cut_of(cid),
                            "exitCode": os.WEXITSTATUS(st) if os.WIFEXITED(st) else None,
                            "signal": os.WTERMSIG(st) if os.WIFSIGNALED(st) else None})

    def on_request(self, r):
        op = r.get("op")
        if op == "exec":
            self.call = r["id"]
            self.new_call(r["id"], r.get("cap", 1 << 20))
            os.set_blocking(self.ksock, True)
            send(self.ksock, {"id": r["id"], "code": r["code"]})
            os.set_blocking(self.ksock, False)
        elif op == "interrupt":
            if self.kpid:
                os.kill(self.kpid, signal.SIGINT)
        elif op == "restart":
            self.stop_kernel()
            self.cut_of(self.call)
            self.call = None
            self.start_kernel()
            self.write({"ev": "restarted", "id": r.get("id")})
        elif op == "cmd":
            self.start_cmd(r)
        elif op == "put":
            name = r.get("name") or ""
            if "/" in name or name.startswith("."):
                return
            os.makedirs(WHEELS, exist_ok=True)
            import base64
            with open(os.path.join(WHEELS, name), "ab" if r.get("append") else "wb") as f:
                f.write(base64.b64decode(r.get("data") or ""))
        elif op == "cmdkill":
            c = self.cmds.get(r.get("id"))
            if c:
                self.kill_tree(c["pid"], r["id"])

    def loop(self):
        import time
        self.init()
        while True:
            events = self.sel.select(0.1 if self.cmds else None)
            for key, _ in events:
                kind, extra = key.data
                if key.fd not in self.sel.get_map():
                    continue  # closed by an earlier event of this round
                if kind == "srv":
                    frames = self.rd.feed()
                    if frames is None:
                        os._exit(0)  # the server is gone
                    for r in frames:
                        self.on_request(r)
                elif kind == "kout":
                    if not self.drain(key.fd, extra, self.call, self.kdec[key.fd]):
                        self.sel.unregister(key.fd)
                        os.close(key.fd)
                elif kind == "ksock":
                    frames = self.kreader.feed()
                    if frames is None:
                        self.kernel_died()
                    else:
                        for f in frames:
                            self.on_kernel_frame(f)
                elif kind == "cout":
                    cid, which = extra
                    if not self.drain(key.fd, which, cid, self.kdec[key.fd]):
                        self.sel.unregister(key.fd)
                        os.close(key.fd)
                        if cid in self.cmds:
                            self.cmds[cid]["open"] -= 1
            if self.cmds:
                self.reap_cmds(time.monotonic())


def _socketpair():
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def _decoder():
    import codecs
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


def _descendants(root):
    """Pids below `root`, from /proc (the sandbox's own pid namespace)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _marked(mark):
    """Pids whose environment holds `mark` (a whole NAME=value entry)."""
    want, out = mark.encode(), []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if want in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    Driver().loop()


main()
