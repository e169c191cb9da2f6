#!/usr/bin/env python3
"""workspace.py -- Python sessions (/python/sessions) side by side with a real Jupyter kernel
(ipykernel driven by jupyter_client, the engine behind notebook-style code sandboxes).

  python3 bench/workspace.py --bin build-bench/sandboxd [--quick] [--out bench/results.md]

Rows, each a median (p90) over interleaved rounds (a sandboxd round, then a baseline round):
  create -> first execute answered    vs  ipykernel start -> first execute reply
  `x + 1` execute round trip (HTTP)   vs  the same through jupyter_client to a running kernel
  idle USS with numpy+pandas imported vs  an idle ipykernel that imported the same
  10 sessions created and used at once: errors, wall time, server RSS
The table goes between the workspace markers of --out (the rest of the file is kept).
Standard library plus jupyter_client (Debian python3-jupyter-client, python3-ipykernel).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client

BEGIN, END = "<!-- workspace:begin -->", "<!-- workspace:end -->"
TOKEN = "bench-" + os.urandom(8).hex()
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet ipykernel's debugger


def uss_of_tree(pid):
    """USS (Private_Clean + Private_Dirty) of pid and its descendants, bytes."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                t = f.read()
            total += sum(int(m) for m in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)", t)) * 1024
        except OSError:
            pass
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Sandboxd:
    def __init__(self, binary):
        self.tmp = tempfile.mkdtemp(prefix="sbx-bench-ws-")
        env = dict(os.environ, AUTH_TOKEN=TOKEN, HOST="127.0.0.1", PORT="0",
                   DATA_DIR=os.path.join(self.tmp, "data"), BROWSER_POOL_SIZE="0",
                   PYTHON_MAX_SESSIONS="32", LOG_LEVEL="info")
        self.log = open(os.path.join(self.tmp, "log"), "wb")
        env.pop("SANDBOXD_DEV", None)
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            m = re.search(rb"listening on http://[0-9.]+:(\d+)",
                          open(os.path.join(self.tmp, "log"), "rb").read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        else:
            log = open(os.path.join(self.tmp, "log")).read()[-2000:]
            self.stop()
            raise SystemExit("sandboxd did not start:\n" + log)
        while not (self.call("GET", "/health")[1]["exec"].get("zygote") or {}).get("ready"):
            if time.time() > deadline + 60:
                self.stop()
                raise SystemExit("the zygote did not get ready")
            time.sleep(0.1)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port)

    def call(self, method, path, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + TOKEN,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        return r.status, json.loads(data) if data else None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_ipykernel():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    return km, kc


def ipy_execute(kc, code):
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply
    return reply


def med(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def fmt_ms(v):
    return f"{v * 1000:.3g} ms" if v < 1 else f"{v:.3g} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build-bench/sandboxd")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    a = ap.parse_args()
    rounds = 5 if a.quick else 20
    srv = Sandboxd(a.bin)
    rows = []
    try:
        # 1. create -> first execute answered, vs ipykernel start -> first reply
        sbx, ipy = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            st, res = srv.call("POST", "/python/sessions", {})
            assert st == 201, res
            sid = res["sessionId"]
            st, out = srv.call("POST", f"/python/sessions/{sid}/execute", {"code": "1 + 1"})
            assert st == 200 and out["result"] == "2", out
            sbx.append(time.perf_counter() - t0)
            srv.call("DELETE", f"/python/sessions/{sid}")
            t0 = time.perf_counter()
            km, kc = start_ipykernel()
            ipy_execute(kc, "1 + 1")
            ipy.append(time.perf_counter() - t0)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        rows.append(("session create -> first execute answered", med(sbx),
                     "ipykernel start (jupyter_client) -> first execute reply", med(ipy), 0.05))

        # 2. x + 1 round trip on a live session vs a live kernel
        st, res = srv.call("POST", "/python/sessions", {})
        sid = res["sessionId"]
        srv.call("POST", f"/python/sessions/{sid}/execute", {"code": "x = 1"}, conn=srv.conn)
        km, kc = start_ipykernel()
        ipy_execute(kc, "x = 1")
        sbx, ipy = [], []
        for _ in range(rounds * 10):
            t0 = time.perf_counter()
            st, out = srv.call("POST", f"/python/sessions/{sid}/execute", {"code": "x + 1"},
                               conn=srv.conn)
            sbx.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ipy_execute(kc, "x + 1")
            ipy.append(time.perf_counter() - t0)
        rows.append(("`x + 1` execute round trip (HTTP, keep-alive)", med(sbx),
                     "the same through jupyter_client to a running ipykernel", med(ipy), 0.5))

        # 3. idle USS with numpy and pandas imported
        srv.call("POST", f"/python/sessions/{sid}/execute",
                 {"code": "import numpy, pandas"}, conn=srv.conn)
        ipy_execute(kc, "import numpy, pandas")
        time.sleep(1)
        st, info = srv.call("GET", f"/python/sessions/{sid}")
        s_uss = info["memoryBytes"]
        k_uss = uss_of_tree(km.provisioner.process.pid)
        rows.append(("idle USS of a session, numpy + pandas imported", (s_uss, s_uss),
                     "an idle ipykernel that imported the same", (k_uss, k_uss), 0.3, "MiB"))
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        srv.call("DELETE", f"/python/sessions/{sid}")

        # 4. ten sessions at once
        errors, lock = [], threading.Lock()

        def one():
            try:
                st, res = srv.call("POST", "/python/sessions", {})
                if st != 201:
                    raise RuntimeError(res)
                s = res["sessionId"]
                for i in range(5):
                    st, out = srv.call("POST", f"/python/sessions/{s}/execute",
                                       {"code": f"import numpy as np\nint(np.arange({i}).sum())"})
                    if st != 200 or out["error"]:
                        raise RuntimeError(out)
                srv.call("DELETE", f"/python/sessions/{s}")
            except Exception as e:  # noqa: BLE001 -- counted and shown
                with lock:
                    errors.append(str(e)[:200])
        t0 = time.perf_counter()
        ts = [threading.Thread(target=one) for _ in range(10)]
        for t in ts:
            t.start()
        peak = 0
        while any(t.is_alive() for t in ts):
            peak = max(peak, rss_kib(srv.proc.pid))
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        conc = (len(errors), wall, peak)
    finally:
        srv.stop()

    lines = [BEGIN, "", "### Python workspaces vs ipykernel (`bench/workspace.py`%s)" %
             (", --quick" if a.quick else ""), "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{os.cpu_count()} cores, {rounds} rounds (the round trip: {rounds * 10}), "
             "interleaved.", "",
             "| work | sandboxd, median (p90) | baseline | baseline, median (p90) | ratio | "
             "target | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        name, (m, p), bname, (bm, bp), target = row[:5]
        if len(row) > 5:  # memory
            val = f"{m / 2**20:.3g} MiB"
            bval = f"{bm / 2**20:.3g} MiB"
        else:
            val, bval = f"{fmt_ms(m)} ({fmt_ms(p)})", f"{fmt_ms(bm)} ({fmt_ms(bp)})"
        ratio = m / bm if bm else float("nan")
        lines.append(f"| {name} | {val} | {bname} | {bval} | {ratio:.3g}x | ≤ {target}x | "
                     f"{'yes' if ratio <= target else 'no'} |")
    n_err, wall, peak = conc
    lines.append(f"| 10 sessions created and used at once (5 numpy executes each) | "
                 f"{n_err} errors, {wall:.2f} s, server RSS peak {peak / 1024:.1f} MiB |  |  |  | "
                 f"no error | {'yes' if n_err == 0 else 'no'} |")
    lines += ["", END]
    block = "\n".join(lines) + "\n"
    try:
        text = open(a.out).read()
    except OSError:
        text = ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    open(a.out, "w").write(text)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
