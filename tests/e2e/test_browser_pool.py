"""The warm Chromium pool end to end (BROWSER_POOL_SIZE): pre-launched browsers are handed out
once each, serve desktop and mobile alike, count against BROWSER_MAX_SESSIONS, are replaced when
they die while waiting, are cleaned up on SIGTERM and swept after a SIGKILL, and a broken
Chromium is retried with a backoff. BROWSER_POOL_SIZE=0 works as before.

Which Chromium serves a session is observable from outside: a browser's directory is
DATA_DIR/browser/<id> from its launch on, a pooled browser keeps its id as the session id, and
the directory's .owner names the Chromium's process (group leader)."""

import os
import signal
import threading
import unittest

from harness import BrowserSiteCase, LocalSite, Server
from test_browser import PAGES, probe_of, wait_until


def chromium_available(srv):
    return bool(srv.get("/health").json()["browser"].get("chromium"))


def pool_health(srv):
    return srv.get("/health").json()["browser"]["pool"]


def wait_ready(srv, n, timeout=60):
    """Wait until /health reports n pooled browsers ready; fail otherwise."""
    if not wait_until(lambda: pool_health(srv)["ready"] == n, timeout):
        raise AssertionError(f"the pool never reached {n} ready: {pool_health(srv)}")


def browser_dirs(srv):
    d = os.path.join(srv.data_dir, "browser")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def pooled_ids(srv):
    """Browser directories that belong to no session: the pool's (and a launch in flight)."""
    listed = {s["sessionId"] for s in srv.get("/browser/sessions").json()["sessions"]}
    return browser_dirs(srv) - listed


def owner_pid(srv, bid):
    with open(os.path.join(srv.data_dir, "browser", bid, ".owner")) as f:
        return int(f.read().split()[0])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def alive(pid):
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def chromiums_of(data_dir):
    """Live processes whose command line names a directory under data_dir (its Chromiums)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and data_dir.encode() in cmdline(d) and alive(d):
            out.append(int(d))
    return out


def metric(srv, line_start):
    for line in srv.get("/metrics").body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {line_start}")


class PoolCase(BrowserSiteCase):
    server_env = {"BROWSER_POOL_SIZE": "2", "BROWSER_MAX_SESSIONS": "8"}
    pages = PAGES

    def create(self, **body):
        r = self.server.post("/browser/sessions", body=body)
        self.assertEqual(r.status, 201, r)
        return r.json()["sessionId"]

    def delete(self, sid):
        self.assertEqual(self.server.delete(f"/browser/sessions/{sid}").status, 204)

    def nav(self, sid, path):
        r = self.server.post(f"/browser/sessions/{sid}/navigate",
                             body={"url": self.site.url + path})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def content(self, sid):
        r = self.server.get(f"/browser/sessions/{sid}/content")
        self.assertEqual(r.status, 200, r)
        return r.body.decode()


class TestHandOut(PoolCase):
    def test_each_session_gets_its_own_pooled_chromium(self):
        self.assertEqual(pool_health(self.server)["size"], 2)
        before = metric(self.server, 'sandboxd_browser_sessions_created_total{source="pool"}')
        seen_ids, seen_pids = set(), set()
        for i in range(5):
            wait_ready(self.server, 2)
            pooled = pooled_ids(self.server)
            self.assertEqual(len(pooled), 2, pooled)
            sid = self.create()
            # The session is one of the browsers that were waiting, and a new one each time.
            self.assertIn(sid, pooled)
            self.assertNotIn(sid, seen_ids)
            pid = owner_pid(self.server, sid)
            self.assertNotIn(pid, seen_pids)
            self.assertTrue(alive(pid))
            profile = os.path.join(self.server.data_dir, "browser", sid, "profile")
            self.assertIn(f"--user-data-dir={profile}".encode(), cmdline(pid))
            seen_ids.add(sid)
            seen_pids.add(pid)
            # The page works.
            self.assertEqual(self.nav(sid, f"/index.html?n={i}")["title"], "Home page")
            self.assertIn("written by script", self.content(sid))
            listed = [s for s in self.server.get("/browser/sessions").json()["sessions"]
                      if s["sessionId"] == sid]
            self.assertEqual(listed[0]["device"], "desktop")
            # Used once: deleting the session kills that Chromium and removes its directory;
            # it never comes back to the pool.
            self.delete(sid)
            self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "browser", sid)))
            self.assertTrue(wait_until(lambda: not alive(pid), 10), f"pid {pid} still alive")
            self.assertNotIn(sid, pooled_ids(self.server))
        after = metric(self.server, 'sandboxd_browser_sessions_created_total{source="pool"}')
        self.assertEqual(after - before, 5)
        wait_ready(self.server, 2)
        self.assertEqual(metric(self.server, "sandboxd_browser_pool_size"), 2)
        self.assertEqual(metric(self.server, "sandboxd_browser_pool_ready"), 2)
        self.assertTrue(pooled_ids(self.server).isdisjoint(seen_ids))

    def test_parallel_creates_never_share_a_browser(self):
        wait_ready(self.server, 2)
        results, errors = [], []

        def worker():
            r = self.server.post("/browser/sessions", body={})
            (results if r.status == 201 else errors).append(r)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        sids = [r.json()["sessionId"] for r in results]
        try:
            self.assertEqual(len(set(sids)), 4)
            pids = {owner_pid(self.server, s) for s in sids}
            self.assertEqual(len(pids), 4)
            for sid in sids:
                self.assertEqual(self.nav(sid, "/index.html")["title"], "Home page")
        finally:
            for sid in sids:
                self.delete(sid)


class TestMobileFromPool(PoolCase):
    def test_pooled_browser_becomes_a_phone_or_a_desktop(self):
        wait_ready(self.server, 2)
        pooled = pooled_ids(self.server)
        phone = self.create(device="mobile")
        self.assertIn(phone, pooled)
        self.nav(phone, "/probe.html")
        p = probe_of(self.content(phone))
        self.assertEqual(p["sw"], 390)
        self.assertLess(p["w"], 500)
        self.assertIn("Mobile", p["ua"])
        self.assertTrue(p["touch"])
        self.assertEqual(p["dpr"], 3)
        listed = {s["sessionId"]: s["device"] for s in
                  self.server.get("/browser/sessions").json()["sessions"]}
        self.assertEqual(listed[phone], "mobile")

        desk = self.create(device="desktop")
        self.assertIn(desk, pooled)
        self.nav(desk, "/probe.html")
        p = probe_of(self.content(desk))
        self.assertGreater(p["w"], 800)
        self.assertNotIn("Mobile", p["ua"])
        self.assertFalse(p["touch"])
        self.delete(phone)
        self.delete(desk)


class TestDeadPooledBrowser(PoolCase):
    def test_killed_pooled_chromium_is_not_handed_out(self):
        wait_ready(self.server, 2)
        killed = pooled_ids(self.server)
        self.assertEqual(len(killed), 2)
        for bid in killed:
            os.killpg(owner_pid(self.server, bid), signal.SIGKILL)
        sid = self.create()
        self.assertNotIn(sid, killed)
        self.assertEqual(self.nav(sid, "/index.html")["title"], "Home page")
        self.assertIn("written by script", self.content(sid))
        # The dead ones are discarded (directories gone) and replaced.
        self.assertTrue(wait_until(lambda: not killed & browser_dirs(self.server), 15),
                        killed & browser_dirs(self.server))
        wait_ready(self.server, 2)
        self.assertIn(b"died while waiting", self.server.read_log())
        self.delete(sid)


class TestPoolLimits(unittest.TestCase):
    def test_pool_counts_against_max_sessions(self):
        with Server(env={"BROWSER_POOL_SIZE": "2", "BROWSER_MAX_SESSIONS": "2"}) as srv:
            if not chromium_available(srv):
                self.skipTest("no Chromium installed")
            wait_ready(srv, 2)
            self.assertEqual(len(browser_dirs(srv)), 2)
            # A full pool at the limit does not turn creates away: they take pooled browsers.
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            a = r.json()["sessionId"]
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            b = r.json()["sessionId"]
            # Two sessions: no room for a pooled browser, nor for a third session.
            self.assertEqual(pool_health(srv)["ready"], 0)
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json()["error"]["code"], "too_many_sessions")
            self.assertTrue(r.header("Retry-After"))
            self.assertEqual(browser_dirs(srv), {a, b})
            # Deleting one frees its slot; the pool may take it back, but a create still works.
            self.assertEqual(srv.delete(f"/browser/sessions/{a}").status, 204)
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            c = r.json()["sessionId"]
            self.assertEqual(srv.post(f"/browser/sessions/{c}/navigate",
                                      body={"url": "about:blank"}).status, 200)
            self.assertEqual(srv.post("/browser/sessions", body={}).status, 429)
            # A pool launch that was under way when the create came is discarded, not kept.
            self.assertTrue(wait_until(lambda: browser_dirs(srv) == {b, c}, 30),
                            browser_dirs(srv))
            # Both gone: the pool fills up to the limit again, never beyond.
            for sid in (b, c):
                self.assertEqual(srv.delete(f"/browser/sessions/{sid}").status, 204)
            wait_ready(srv, 2)
            self.assertEqual(len(browser_dirs(srv)), 2)

    def test_pool_of_one_under_a_limit_of_one(self):
        with Server(env={"BROWSER_POOL_SIZE": "3", "BROWSER_MAX_SESSIONS": "1"}) as srv:
            if not chromium_available(srv):
                self.skipTest("no Chromium installed")
            wait_ready(srv, 1)
            self.assertEqual(len(browser_dirs(srv)), 1)
            self.assertEqual(pool_health(srv)["size"], 3)
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(srv.post("/browser/sessions", body={}).status, 429)
            self.assertEqual(srv.delete(f"/browser/sessions/{r.json()['sessionId']}").status,
                             204)
            self.assertEqual(srv.post("/browser/sessions", body={}).status, 201)


class TestPoolCleanup(unittest.TestCase):
    def test_sigterm_with_a_full_pool_leaves_nothing(self):
        srv = Server(env={"BROWSER_POOL_SIZE": "2"})
        try:
            srv.start()
            if not chromium_available(srv):
                self.skipTest("no Chromium installed")
            wait_ready(srv, 2)
            pids = [owner_pid(srv, bid) for bid in pooled_ids(srv)]
            self.assertEqual(len(pids), 2)
            self.assertTrue(chromiums_of(srv.data_dir))
            self.assertEqual(srv.stop(), 0)
            self.assertEqual([p for p in pids if alive(p)], [])
            self.assertEqual(chromiums_of(srv.data_dir), [])
            self.assertEqual(srv.data_entries(), [])
        finally:
            srv.cleanup()

    def test_sweep_after_sigkill_with_a_full_pool(self):
        srv = Server(env={"BROWSER_POOL_SIZE": "2"})
        try:
            srv.start()
            if not chromium_available(srv):
                self.skipTest("no Chromium installed")
            wait_ready(srv, 2)
            pooled = pooled_ids(srv)
            for bid in pooled:
                self.assertTrue(os.path.isfile(os.path.join(srv.data_dir, "browser", bid,
                                                            ".owner")))
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
            srv.log.close()
            second = Server(env={"BROWSER_POOL_SIZE": "0"}, reuse=srv)
            second.start()
            try:
                self.assertTrue(wait_until(lambda: not chromiums_of(srv.data_dir), 10),
                                chromiums_of(srv.data_dir))
                self.assertEqual(browser_dirs(second), set())
                self.assertIn(b"swept", second.read_log())
            finally:
                self.assertEqual(second.stop(), 0)
        finally:
            srv.cleanup()


class TestPoolOffAndBroken(unittest.TestCase):
    def test_pool_size_zero_launches_per_create(self):
        with Server(env={"BROWSER_POOL_SIZE": "0"}) as srv, LocalSite(PAGES) as site:
            if not chromium_available(srv):
                self.skipTest("no Chromium installed")
            self.assertEqual(pool_health(srv), {"size": 0, "ready": 0, "launching": 0})
            self.assertEqual(browser_dirs(srv), set())
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            r = srv.post(f"/browser/sessions/{sid}/navigate",
                         body={"url": site.url + "/index.html"})
            self.assertEqual(r.status, 200, r)
            self.assertIn(b"written by script",
                          srv.get(f"/browser/sessions/{sid}/content").body)
            self.assertEqual(
                metric(srv, 'sandboxd_browser_sessions_created_total{source="cold"}'), 1)
            self.assertEqual(
                metric(srv, 'sandboxd_browser_sessions_created_total{source="pool"}'), 0)
            self.assertEqual(metric(srv, "sandboxd_browser_pool_size"), 0)
            self.assertEqual(srv.delete(f"/browser/sessions/{sid}").status, 204)
            self.assertEqual(browser_dirs(srv), set())
            self.assertEqual(pool_health(srv), {"size": 0, "ready": 0, "launching": 0})

    def test_failing_launches_back_off(self):
        with Server(env={"BROWSER_POOL_SIZE": "1", "CHROMIUM_PATH": "/bin/false"}) as srv:
            # Each failure is logged once, with the wait before the next try doubling.
            self.assertTrue(wait_until(lambda: b"next try in 2000 ms" in srv.read_log(), 30),
                            srv.read_log()[-2000:])
            log = srv.read_log().decode()
            fails = [line for line in log.splitlines() if "pool: launching a browser failed" in line]
            self.assertIn("next try in 1000 ms", fails[0])
            self.assertIn("next try in 2000 ms", fails[1])
            self.assertEqual(pool_health(srv)["ready"], 0)
            self.assertGreaterEqual(metric(srv, "sandboxd_browser_pool_launch_failures_total"), 2)
            # A failed launch leaves no directory (one may be under way at any moment).
            self.assertTrue(wait_until(lambda: not browser_dirs(srv), 10), browser_dirs(srv))


if __name__ == "__main__":
    unittest.main()
