#!/usr/bin/env python3
"""exec_network.py -- POST /execute with network (EXEC_NETWORK=allowlist, through the egress
gateway): runs served by the zygote against runs started cold, as they all were before.

  python3 bench/exec_network.py --bin build-bench/sandboxd [--before OLD_BIN] [--rounds 20]

Three servers side by side, each EXEC_NETWORK=allowlist with one local site (a name mapped
to 127.0.0.1 by EGRESS_HOSTS and allowed as private):
  zygote   EXEC_MODE=zygote: the run comes from the zygote, its init opens the gateway's way in
  cold     the baseline: --before OLD_BIN in EXEC_MODE=zygote (a server whose network runs start
           cold), or without --before the same binary in EXEC_MODE=fork (the same cold path)
  no-net   EXEC_MODE=zygote, EXEC_NETWORK=none: what the gateway adds to a zygote run
Each row is the median (p90) of the client's wall time of one POST /execute, over interleaved
rounds (one run on each server per round, in a rotating order); the ratio is cold / zygote.
Standard library only. Prints a Markdown table.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

TOKEN = "bench-" + os.urandom(8).hex()

PRINT = "print(1)"
FETCH = ("import urllib.request\n"
         "print(urllib.request.urlopen('http://site.test:{port}/', timeout=10).read().decode())")
DATA = ("import numpy as np, pandas as pd, urllib.request\n"
        "body = urllib.request.urlopen('http://site.test:{port}/', timeout=10).read().decode()\n"
        "df = pd.DataFrame(np.arange(12).reshape(4, 3), columns=list('abc'))\n"
        "print(body, int(df.sum().sum()))")
DATA_NONET = ("import numpy as np, pandas as pd\n"
              "df = pd.DataFrame(np.arange(12).reshape(4, 3), columns=list('abc'))\n"
              "print(int(df.sum().sum()))")


class Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *a):
        pass


class Sandboxd:
    def __init__(self, binary, mode, network):
        self.tmp = tempfile.mkdtemp(prefix="sbx-bench-net-")
        env = dict(os.environ, AUTH_TOKEN=TOKEN, HOST="127.0.0.1", PORT="0",
                   DATA_DIR=os.path.join(self.tmp, "data"), BROWSER_POOL_SIZE="0",
                   EXEC_MODE=mode, EXEC_NETWORK=network, LOG_LEVEL="info",
                   EGRESS_ALLOWED_DOMAINS="site.test", EGRESS_PRIVATE_ALLOWED="site.test",
                   EGRESS_HOSTS="site.test=127.0.0.1")
        env.pop("SANDBOXD_DEV", None)
        self.logpath = os.path.join(self.tmp, "log")
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            m = re.search(rb"listening on http://[0-9.]+:(\d+)", open(self.logpath, "rb").read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        else:
            log = open(self.logpath).read()[-2000:]
            self.stop()
            raise SystemExit(f"sandboxd did not start: {log}")
        while mode == "zygote" and not (self.health().get("zygote") or {}).get("ready"):
            if time.time() > deadline + 90:
                self.stop()
                raise SystemExit("the zygote did not get ready")
            time.sleep(0.1)

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + TOKEN,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def health(self):
        return self.call("GET", "/health")[1]["exec"]

    def execute(self, code, expect):
        t0 = time.perf_counter()
        status, res = self.call("POST", "/execute", {"code": code, "timeoutMs": 60000})
        took = time.perf_counter() - t0
        if status != 200 or res.get("stdout") != expect:
            raise SystemExit(f"unexpected answer ({status}): {res}")
        return took

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def med(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build-bench/sandboxd")
    ap.add_argument("--before", help="a sandboxd whose runs with network start cold")
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    port = site.server_address[1]
    servers = {}
    try:
        servers["zygote"] = Sandboxd(a.bin, "zygote", "allowlist")
        servers["cold"] = (Sandboxd(a.before, "zygote", "allowlist") if a.before
                           else Sandboxd(a.bin, "fork", "allowlist"))
        servers["no-net"] = Sandboxd(a.bin, "zygote", "none")
        cases = [("`print(1)`", PRINT, "1\n", PRINT),
                 ("urllib GET of a local site", FETCH.format(port=port), "hi\n", None),
                 ("numpy + pandas + urllib GET", DATA.format(port=port), "hi 66\n", DATA_NONET)]
        rows = []
        for label, code, expect, nonet in cases:
            times = {k: [] for k in servers}
            for srv in servers.values():  # one warm-up each
                if srv is servers["no-net"]:
                    if nonet:
                        srv.execute(nonet, expect.split()[-1] + "\n")
                else:
                    srv.execute(code, expect)
            names = list(servers)
            for r in range(a.rounds):
                for k in names[r % 3:] + names[:r % 3]:
                    if k == "no-net":
                        if nonet:
                            times[k].append(servers[k].execute(nonet, expect.split()[-1] + "\n"))
                    else:
                        times[k].append(servers[k].execute(code, expect))
            z, c = med(times["zygote"]), med(times["cold"])
            n = med(times["no-net"]) if times["no-net"] else None
            rows.append((label, z, c, n, c[0] / z[0]))
        started = {k: (s.health()["startedZygote"], s.health()["startedCold"])
                   for k, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
        site.shutdown()

    def ms(m):
        return f"{m[0] * 1000:.1f} ms ({m[1] * 1000:.1f})" if m else "-"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"{a.rounds} interleaved rounds; median (p90) wall time of POST /execute; "
          f"load average {load}")
    print()
    print("| run (EXEC_NETWORK=allowlist) | zygote | cold (before) | ratio cold/zygote | "
          "zygote, no network |")
    print("|---|---|---|---|---|")
    for label, z, c, n, ratio in rows:
        print(f"| {label} | {ms(z)} | {ms(c)} | {ratio:.1f}x | {ms(n)} |")
    print()
    print("started (zygote, cold): " + ", ".join(f"{k} {v}" for k, v in started.items()))


if __name__ == "__main__":
    main()
