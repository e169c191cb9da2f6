"""What a browser session costs, against real Chromium: GET /browser/sessions/{id} and the list
carry memoryBytes (PSS of the session's Chromium processes, checked against /proc), cpuMs (it
grows while a page computes), tabs and the session's times; /metrics has the totals as gauges
without per-session labels."""

import datetime
import os
import re
import time
import unittest

from harness import BrowserSiteCase, live_pids_with_marker

HTML = "text/html; charset=utf-8"
PAGES = {"/a.html": (200, HTML, "<!doctype html><title>acct</title><p>a")}


def parse(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def pss_of(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_ms_of_group(leader):
    """utime+stime of every process in the group led by `leader` (+ the leader's reaped
    children), in ms."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                f_ = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f_[2]) != leader:
            continue
        total += int(f_[11]) + int(f_[12]) + (int(f_[13]) + int(f_[14]) if int(d) == leader else 0)
    return total * 1000 // tick


class TestAccounting(BrowserSiteCase):
    pages = PAGES
    server_env = {"BROWSER_IDLE_TIMEOUT_S": "600", "BROWSER_MAX_LIFETIME_S": "7200"}

    def leader(self, sid):
        with open(os.path.join(self.server.data_dir, "browser", sid, ".owner")) as f:
            return int(f.read().split()[0])

    def test_session_costs_and_times(self):
        t0 = time.time()
        r = self.server.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        sid, tab = r.json()["sessionId"], r.json()["tabId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        r = self.server.post(f"/browser/sessions/{sid}/navigate",
                             body={"url": self.site.url + "/a.html"})
        self.assertEqual(r.status, 200, r)
        r = self.server.get(f"/browser/sessions/{sid}")
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertEqual(s["sessionId"], sid)
        self.assertEqual([t["tabId"] for t in s["tabs"]], [tab])
        created, used, expires = parse(s["createdAt"]), parse(s["lastUsedAt"]), parse(s["expiresAt"])
        self.assertLessEqual(abs(created - t0), 60)  # a loaded machine makes creates slow
        self.assertLessEqual(created, used + 0.01)
        self.assertAlmostEqual(expires - used, 600, delta=2)  # idleness comes before the lifetime
        # memory: the PSS of the session's processes, as /proc says
        sdir = os.path.join(self.server.data_dir, "browser", sid)
        theirs = pss_of(live_pids_with_marker(sdir))
        self.assertGreater(s["memoryBytes"], 20 << 20)
        self.assertGreater(theirs, 0)
        self.assertLess(abs(s["memoryBytes"] - theirs) / theirs, 0.35, (s["memoryBytes"], theirs))
        # cpu: grows while the page computes
        before = s["cpuMs"]
        r = self.server.post(f"/browser/sessions/{sid}/action", body={
            "action": "evaluate",
            "expression": "(() => { const t = Date.now(); while (Date.now() - t < 700) {} return 1; })()"})
        self.assertEqual(r.status, 200, r)
        after = self.server.get(f"/browser/sessions/{sid}").json()
        mine = cpu_ms_of_group(self.leader(sid))
        # grows (by how much depends on how busy the machine is), and agrees with /proc
        self.assertGreater(after["cpuMs"], before, (before, after["cpuMs"]))
        self.assertLess(abs(after["cpuMs"] - mine), max(300, 0.3 * mine), (after["cpuMs"], mine))
        self.assertGreaterEqual(parse(after["lastUsedAt"]), used)
        # the list carries the same fields
        listed = {x["sessionId"]: x for x in
                  self.server.get("/browser/sessions").json()["sessions"]}[sid]
        for k in ("memoryBytes", "cpuMs", "tabs", "createdAt", "lastUsedAt", "expiresAt"):
            self.assertIn(k, listed)
        self.assertGreater(listed["memoryBytes"], 20 << 20)
        # /metrics: totals, no label per session
        text = self.server.get("/metrics").body.decode()
        m = re.search(r"^sandboxd_browser_sessions_memory_bytes (\d+)$", text, re.M)
        self.assertTrue(m, text[-2000:])
        self.assertGreater(int(m.group(1)), 20 << 20)
        self.assertRegex(text, r"(?m)^sandboxd_browser_sessions 1$")
        self.assertRegex(text, r"(?m)^sandboxd_browser_tabs 1$")
        self.assertRegex(text, r"(?m)^sandboxd_browser_sessions_cpu_seconds [0-9.]+$")
        self.assertNotIn(sid, text)
        self.assertError(self.server.get("/browser/sessions/" + "0" * 32), 404, "not_found")


if __name__ == "__main__":
    unittest.main()
