"""A cluster: two replicas (NODE_ID node-1, node-2) behind the HAProxy router, started by
deploy/local/cluster.sh with the routing config of deploy/router/haproxy.cfg.in, real
Chromium and real Python, everything on 127.0.0.1.

Through the router, sessions created on every replica are reachable by id (REST, the CDP
passthrough with Puppeteer from tests/cluster, MCP tool calls naming the session); a replica
answers 421 for another node's session; a killed replica costs only its own sessions, which
answer a JSON error, while the others keep working and new sessions land on the survivor; a
rolling restart (drain, stop, start, one replica at a time) serves every session until it
ends. The tests run in name order and share one cluster. Skipped (and reported as skipped)
without haproxy or Chromium; the Puppeteer test also without node and tests/cluster's
packages."""

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import (BIN, SOURCE_DIR, LocalSite, Response, Server, live_pids_with_marker,
                     wait_until)

CLUSTER = os.path.join(SOURCE_DIR, "deploy", "local", "cluster.sh")
CDP_JS = os.path.join(SOURCE_DIR, "tests", "cluster", "cdp.mjs")
TOKEN = "cluster-token-" + os.urandom(8).hex()
GRACE_MS = 20000

PAGE = """<!doctype html><title>cluster page</title><p id=marker>served by the test</p>"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return True
    return bool(os.environ.get("CHROMIUM_PATH")) and os.path.exists(os.environ["CHROMIUM_PATH"])


def sanitizer_report(path):
    """An ASan/UBSan/TSan report in a replica's log (all its starts), or None. A TSan report
    of another process than a replica (a raw clone() of the sandbox, see harness.Server) is
    not one."""
    try:
        with open(path, "rb") as f:
            log = f.read()
    except OSError:
        return None
    pids = set(re.findall(rb"starting \(pid (\d+),", log))
    for mark in Server.SANITIZER_MARKS:
        at = log.find(mark)
        while at >= 0 and mark.endswith(b"ThreadSanitizer"):
            m = re.match(rb"[^\n]*\(pid=(\d+)\)", log[at:at + 200])
            if not m or m.group(1) in pids:
                break
            at = log.find(mark, at + 1)
        if at >= 0:
            return log[max(0, at - 200):at + 3000].decode(errors="replace")
    return None


class Endpoint:
    """HTTP to one address (the router or a replica) with the cluster's token."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port

    def request(self, method, path, body=None, headers=None, token=TOKEN, timeout=60):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body={} if body is None else body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("haproxy"):
            raise unittest.SkipTest("no haproxy (scripts/packages.txt, group test)")
        if not find_chromium():
            raise unittest.SkipTest("no Chromium installed")
        cls.tmp = tempfile.mkdtemp(prefix="sandboxd-cluster-test-")
        cls.dir = os.path.join(cls.tmp, "cluster")
        cls.env = {k: v for k, v in os.environ.items() if k != "AUTH_TOKEN"}
        cls.env.update({"AUTH_TOKEN": TOKEN, "CLUSTER_DIR": cls.dir, "SANDBOXD_BIN": BIN,
                        "BROWSER_POOL_SIZE": "0", "BROWSER_MAX_SESSIONS": "4",
                        "EXEC_MAX_RUNS": "2", "SHUTDOWN_GRACE_MS": str(GRACE_MS),
                        "LOG_LEVEL": "debug",
                        # the test site is on loopback, which the egress policy refuses
                        # unless named (harness.Server does the same)
                        "EGRESS_PRIVATE_ALLOWED": "127.0.0.1,localhost"})
        cls.site = LocalSite({"/page": (200, "text/html", PAGE)})
        try:
            out = cls.cluster("up", "2", timeout=120)
        except Exception:
            cls.site.close()
            cls.down()
            raise
        lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        cls.router = Endpoint(lines["ROUTER"])
        cls.nodes = {}
        for i in (1, 2):
            name, url = lines[f"NODE_{i}"].split()
            cls.nodes[name] = Endpoint(url)
        cls.sessions = {}  # node -> a session id it owns, made by the first test

    @classmethod
    def tearDownClass(cls):
        cls.site.close()
        cls.down()

    @classmethod
    def cluster(cls, *args, timeout=60):
        r = subprocess.run([CLUSTER, *args], env=cls.env, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"cluster.sh {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout}{r.stderr}\n{cls.logs()}")
        return r.stdout

    @classmethod
    def logs(cls):
        out = []
        for name in ("node-1", "node-2"):
            try:
                with open(os.path.join(cls.dir, name, "sandboxd.log"), errors="replace") as f:
                    out.append(f"--- {name} (last lines)\n" + "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return "\n".join(out)

    @classmethod
    def down(cls):
        saved = os.path.join(cls.tmp, "logs")
        subprocess.run([CLUSTER, "down"], env=dict(cls.env, CLUSTER_SAVE_LOGS=saved),
                       capture_output=True, timeout=120)
        left = live_pids_with_marker(cls.dir)
        gone = not os.path.exists(cls.dir)
        reports = [sanitizer_report(os.path.join(saved, n)) for n in ("node-1.log", "node-2.log")]
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if left or not gone:
            raise AssertionError(f"cluster.sh down left processes {left} or {cls.dir}")
        for r in reports:
            if r:
                raise AssertionError("sanitizer report in a replica's log:\n" + r)

    # ---- helpers ----
    def create_on(self, node, via=None):
        """A new session owned by `node`: created through the router (leastconn picks the
        replica; up to 10 tries, half a second apart after a miss: a replica that just came
        back is in the router's pool after its next check), or on the replica itself when via
        is that replica."""
        ep = via or self.router
        for _ in range(10):
            r = ep.post("/browser/sessions", timeout=60)
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            self.assertEqual(r.header("X-Sandboxd-Node"), sid.split(".")[0])
            if sid.startswith(node + "."):
                return sid
            self.assertEqual(ep.delete(f"/browser/sessions/{sid}").status, 204)
            time.sleep(0.5)
        self.fail(f"the router put no session on {node} in 10 creates")

    def navigate(self, sid, ep=None):
        return (ep or self.router).post(f"/browser/sessions/{sid}/navigate",
                                        body={"url": self.site.url + "/page"}, timeout=60)

    def mcp_call(self, ep, name, args):
        msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": name, "arguments": args}}
        r = ep.post("/mcp", body=msg, headers={"Accept": "application/json, text/event-stream",
                                               "MCP-Protocol-Version": "2025-11-25"})
        self.assertEqual(r.status, 200, r)
        return r.json()["result"]

    def assertJsonError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, r)
        self.assertTrue(err["message"])
        return err

    # ---- tests, in name order on one cluster ----
    def test_1_sessions_of_every_replica_are_reachable_by_id(self):
        for node in ("node-1", "node-2"):
            sid = self.create_on(node)
            self.sessions[node] = sid
            self.assertRegex(sid, r"^node-[12]\.[0-9a-f]{32}$")  # 128 random bits after the dot
            for _ in range(3):  # each call through the router reaches the owner
                r = self.navigate(sid)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["title"], "cluster page")
                self.assertEqual(r.header("X-Sandboxd-Node"), node)
            r = self.router.get(f"/browser/sessions/{sid}/content")
            self.assertEqual(r.status, 200, r)
            self.assertIn(b"served by the test", r.body)
        # lists are per replica: each replica lists its own sessions only
        for node, ep in self.nodes.items():
            listed = [s["sessionId"] for s in ep.get("/browser/sessions").json()["sessions"]]
            self.assertIn(self.sessions[node], listed)
            self.assertTrue(all(s.startswith(node + ".") for s in listed), listed)
        # runs go to any ready replica
        r = self.router.post("/execute", body={"code": "print(6 * 7)", "timeoutMs": 20000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["stdout"], "42\n")
        self.assertIn(r.header("X-Sandboxd-Node"), ("node-1", "node-2"))

    def test_1a_events_and_python_sessions_reach_their_owner(self):
        # the live events stream of each replica's session, through the router: the
        # navigations of test_1 are replayed from the session's ring
        for node in ("node-1", "node-2"):
            sid = self.sessions[node]
            conn = http.client.HTTPConnection(self.router.host, self.router.port, timeout=30)
            try:
                conn.request("GET", f"/browser/sessions/{sid}/events?from=0&types=navigation",
                             headers={"Authorization": "Bearer " + TOKEN})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.getheader("X-Sandboxd-Node"), node)
                frame = None
                for _ in range(200):
                    line = r.fp.readline().decode()
                    if line.startswith("data: ") and '"navigation"' in line:
                        frame = json.loads(line[6:])
                        break
                self.assertIsNotNone(frame, "no navigation frame through the router")
                self.assertEqual(frame["session"], sid)
            finally:
                conn.close()
        # Python sessions carry their replica in the id too, and calls follow it
        seen = {}
        for _ in range(12):
            r = self.router.post("/python/sessions", timeout=60)
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            node = sid.split(".")[0]
            if node in seen:
                self.assertEqual(self.router.delete(f"/python/sessions/{sid}").status, 204)
                time.sleep(0.5)
                continue
            seen[node] = sid
            if len(seen) == 2:
                break
        self.assertEqual(sorted(seen), ["node-1", "node-2"], seen)
        for node, sid in seen.items():
            r = self.router.post(f"/python/sessions/{sid}/execute", body={"code": "x = 6 * 7"})
            self.assertEqual(r.status, 200, r)
            r = self.router.post(f"/python/sessions/{sid}/execute", body={"code": "x"})
            self.assertEqual(r.json()["result"], "42", r)
            self.assertEqual(r.header("X-Sandboxd-Node"), node)
            self.assertEqual(self.router.delete(f"/python/sessions/{sid}").status, 204)

    def test_2_a_replica_answers_421_for_another_nodes_session(self):
        sid = self.sessions["node-2"]
        r = self.nodes["node-1"].get(f"/browser/sessions/{sid}/content")
        err = self.assertJsonError(r, 421, "misdirected_request")
        self.assertIn("node-2", err["message"])
        self.assertEqual(r.header("X-Sandboxd-Owner-Node"), "node-2")
        self.assertEqual(r.header("X-Sandboxd-Node"), "node-1")
        r = self.nodes["node-1"].delete(f"/browser/sessions/{sid}")
        self.assertJsonError(r, 421, "misdirected_request")
        # and it was not touched: the owner still has it
        self.assertEqual(self.router.get(f"/browser/sessions/{sid}/tabs").status, 200)
        # an unknown node's id: the router has no backend for it, a replica says who owns it
        r = self.router.get("/browser/sessions/node-9." + "ab" * 16 + "/tabs")
        self.assertIn("node-9", self.assertJsonError(r, 421, "misdirected_request")["message"])
        # readiness needs no token and says which node answers
        r = self.nodes["node-2"].get("/ready", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ready": True, "node": "node-2", "reasons": []})

    def test_3_cdp_passthrough_with_puppeteer_through_the_router(self):
        node_bin = shutil.which("node")
        if not node_bin or not os.path.isdir(os.path.join(SOURCE_DIR, "tests", "cluster",
                                                          "node_modules", "puppeteer-core")):
            self.skipTest("no node or no tests/cluster/node_modules (scripts/test.sh runs npm ci)")
        base = f"ws://{self.router.host}:{self.router.port}"
        for node, sid in self.sessions.items():
            with self.subTest(node=node):
                r = subprocess.run([node_bin, CDP_JS, f"{base}/browser/sessions/{sid}/cdp", TOKEN,
                                    self.site.url + "/page"], capture_output=True, text=True,
                                   timeout=90)
                self.assertEqual(r.returncode, 0, r.stderr + self.logs())
                got = json.loads(r.stdout.strip().splitlines()[-1])
                self.assertEqual(got["title"], "cluster page")
                self.assertEqual(got["marker"], "served by the test")
                # the session lives on after Puppeteer disconnected, on its own replica
                r = self.router.get(f"/browser/sessions/{sid}/tabs")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("X-Sandboxd-Node"), node)

    def test_4_mcp_tool_calls_naming_a_session_reach_its_owner(self):
        # /mcp lands on any replica; a call naming another node's session is forwarded
        # through the router (CLUSTER_URL), so every call works from every replica
        for ep_name, ep in [("router", self.router)] * 2 + list(self.nodes.items()):
            for node, sid in self.sessions.items():
                with self.subTest(via=ep_name, session=node):
                    res = self.mcp_call(ep, "browser_navigate",
                                        {"sessionId": sid, "url": self.site.url + "/page"})
                    self.assertFalse(res.get("isError"), res)
                    self.assertIn("cluster page", json.dumps(res))
                    res = self.mcp_call(ep, "browser_evaluate", {
                        "sessionId": sid,
                        "expression": "document.getElementById('marker').textContent"})
                    self.assertFalse(res.get("isError"), res)
                    self.assertIn("served by the test", json.dumps(res))
        # an unknown session is the tool's error, not another session
        res = self.mcp_call(self.router, "browser_content", {"sessionId": "node-1." + "cd" * 16})
        self.assertTrue(res.get("isError"), res)

    def test_5_a_killed_replica_costs_only_its_own_sessions(self):
        lost, kept = self.sessions["node-2"], self.sessions["node-1"]
        self.cluster("kill", "2")
        for _ in range(3):  # at once, and after the router marked it down
            r = self.router.get(f"/browser/sessions/{lost}/content", timeout=30)
            err = self.assertJsonError(r, 503, "unavailable")
            self.assertIn("node-2", err["message"])
            time.sleep(1)
        r = self.navigate(kept)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Sandboxd-Node"), "node-1")
        # new sessions and runs land on the survivor
        for _ in range(2):
            r = self.router.post("/browser/sessions", timeout=60)
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            self.assertTrue(sid.startswith("node-1."), sid)
            self.assertEqual(self.router.delete(f"/browser/sessions/{sid}").status, 204)
        r = self.router.post("/execute", body={"code": "print('ok')", "timeoutMs": 20000})
        self.assertEqual((r.status, r.header("X-Sandboxd-Node")), (200, "node-1"), r)
        # node-2 comes back empty (what it had is gone, and says so: 404), and takes sessions
        self.cluster("start", "2", timeout=90)
        # (the router's check finds it up within about a second)
        self.assertTrue(wait_until(
            lambda: self.router.get(f"/browser/sessions/{lost}/tabs").status != 503, 5))
        self.assertJsonError(self.router.get(f"/browser/sessions/{lost}/tabs"), 404, "not_found")
        self.sessions["node-2"] = self.create_on("node-2")

    def test_6_rolling_restart_serves_every_session_until_it_ends(self):
        for i, node in ((1, "node-1"), (2, "node-2")):
            other = "node-2" if node == "node-1" else "node-1"
            sid, steady = self.sessions[node], self.sessions[other]
            stopper = {}
            t0 = time.time()

            def stop():
                stopper["out"] = subprocess.run([CLUSTER, "stop", str(i)], env=self.env,
                                                capture_output=True, text=True, timeout=120)

            th = threading.Thread(target=stop)
            th.start()
            ep = self.nodes[node]
            # draining: not ready at once, creates refused there, its session still served
            self.assertTrue(wait_until(lambda: ep.get("/ready", token=None).status == 503, 5),
                            self.logs())
            body = ep.get("/ready", token=None).json()
            self.assertEqual((body["ready"], body["reasons"]), (False, ["draining"]))
            r = ep.post("/browser/sessions")
            self.assertJsonError(r, 503, "draining")
            self.assertEqual(r.header("Retry-After"), "1")
            time.sleep(2.5)  # the router's check (every second, down after 2) took it out
            for _ in range(2):
                r = self.router.post("/browser/sessions", timeout=60)
                self.assertEqual(r.status, 201, r)
                new = r.json()["sessionId"]
                self.assertTrue(new.startswith(other + "."), new)
                self.assertEqual(self.router.delete(f"/browser/sessions/{new}").status, 204)
            for _ in range(2):
                r = self.navigate(sid)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("X-Sandboxd-Node"), node)
                self.assertEqual(self.navigate(steady).status, 200)
            # the session ends: the replica has nothing left and exits well before the grace
            self.assertEqual(self.router.delete(f"/browser/sessions/{sid}").status, 204)
            th.join(90)
            self.assertFalse(th.is_alive())
            self.assertEqual(stopper["out"].returncode, 0, stopper["out"].stderr)
            with open(os.path.join(self.dir, node, "sandboxd.log"), errors="replace") as f:
                log = f.read()
            mains = "".join(x for x in log.splitlines(True) if " main: " in x or "cdp" in x)
            self.assertLess(time.time() - t0, GRACE_MS / 1000,
                            "the drain waited out the grace:\n" + mains)
            self.assertIn(f"node {node} drained: no session open", log)
            # start it again: it serves and takes new sessions
            self.cluster("start", str(i), timeout=90)
            self.assertTrue(wait_until(lambda: ep.get("/ready", token=None).status == 200, 10))
            time.sleep(1.5)  # the router's check finds it up
            self.sessions[node] = self.create_on(node)
            self.assertEqual(self.navigate(self.sessions[node]).status, 200)
            self.assertEqual(self.navigate(steady).status, 200)


if __name__ == "__main__":
    unittest.main()
