"""Browser sessions end to end: a real Chromium per session, driven over CDP, against pages
served by a local test site. Sessions, navigation (each waitUntil, redirects, statuses,
errors), content, tabs and popups, mobile emulation, URL refusal, crashes, idle expiry, the
session limit, parallel sessions and a clean shutdown."""

import json
import os
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import BrowserSiteCase, Server, _cmdline, descendants, wait_until


def slow_data(h):
    time.sleep(0.4)
    body = b'{"answer": 42}'
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def redirect(h):
    h.send_response(302)
    h.send_header("Location", "/index.html")
    h.send_header("Content-Length", "0")
    h.end_headers()


def very_slow(h):
    time.sleep(4)
    h.send_response(200)
    h.send_header("Content-Length", "2")
    h.end_headers()
    try:
        h.wfile.write(b"ok")
    except OSError:
        pass


HTML = "text/html; charset=utf-8"
PAGES = {
    "/index.html": (200, HTML, "<!doctype html><html><head><title>Home page</title></head>"
                    "<body><p id=p>static</p><script>document.getElementById('p')"
                    ".textContent = 'written by script';</script></body></html>"),
    # Fetches its data well after load: only networkidle0/2 wait for it.
    "/fetch.html": (200, HTML, "<!doctype html><title>Fetcher</title><div id=out>waiting</div>"
                    "<script>addEventListener('load', () => setTimeout(() =>"
                    " fetch('/data.json').then(r => r.json()).then(d =>"
                    " { document.getElementById('out').textContent = 'answer=' + d.answer; }),"
                    " 150));</script>"),
    "/data.json": slow_data,
    # A dedicated worker and a nested one answer: the server's auto-attach (which makes new
    # targets wait for their set-up) must let workers run.
    "/worker.html": (200, HTML, "<!doctype html><title>worker page</title><script>"
                     "const w = new Worker('/worker.js'); w.onmessage = e =>"
                     " { document.title = 'worker said ' + e.data; };</script>"),
    "/worker.js": (200, "text/javascript", "const n = new Worker('/nested.js');"
                   " n.onmessage = e => postMessage('hi, ' + e.data);"),
    "/nested.js": (200, "text/javascript", "postMessage('nested too');"),
    "/redirect": redirect,
    "/missing.html": (404, HTML, "<!doctype html><title>Not here</title><h1>404</h1>"),
    "/opener.html": (200, HTML, "<!doctype html><title>Opener</title>"
                     "<script>window.open('/index.html?popup=1');</script>"),
    "/probe.html": (200, HTML, "<!doctype html><title>probe</title>"
                    "<meta name=viewport content='width=device-width'><pre id=r></pre><script>"
                    "document.getElementById('r').textContent = JSON.stringify({w: innerWidth,"
                    " sw: screen.width,"
                    " ua: navigator.userAgent, touch: 'ontouchstart' in window,"
                    " points: navigator.maxTouchPoints, dpr: devicePixelRatio});</script>"),
    "/slow.html": very_slow,
    # Its load handler renames it and moves it with pushState: navigate reports what it became.
    "/renamed.html": (200, HTML, "<!doctype html><title>before load</title><script>"
                      "addEventListener('load', () => { document.title = 'after load';"
                      " history.pushState({}, '', '/moved.html'); });</script>"),
    "/untitled.html": (200, HTML, "<!doctype html><p>no title here</p>"),
    # About 6 MB of DOM built by script: its content crosses the WebSocket in many fragments.
    "/big.html": (200, HTML, "<!doctype html><title>big</title><div id=b></div><script>"
                  "document.getElementById('b').textContent = 'x'.repeat(6 * 1024 * 1024)"
                  " + 'END';</script>"),
}


def probe_of(html):
    start = html.index("<pre id=\"r\">") + len("<pre id=\"r\">")
    return json.loads(html[start:html.index("</pre>", start)].replace("&quot;", '"')
                      .replace("&amp;", "&"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class BrowserCase(BrowserSiteCase):
    server_env = {"BROWSER_MAX_SESSIONS": "12"}
    pages = PAGES

    def new_session(self, **body):
        r = self.server.post("/browser/sessions", body=body)
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        return sid, r.json()["tabId"]

    def nav(self, sid, path, **kw):
        body = {"url": self.site.url + path if path.startswith("/") else path}
        body.update(kw)
        return self.server.post(f"/browser/sessions/{sid}/navigate", body=body)

    def content(self, sid, tab=None):
        q = f"?tabId={tab}" if tab else ""
        r = self.server.get(f"/browser/sessions/{sid}/content{q}")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        return r.body.decode()


class TestSessions(BrowserCase):
    def test_create_list_delete(self):
        r = self.server.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        sid, tab = r.json()["sessionId"], r.json()["tabId"]
        self.assertGreaterEqual(len(sid), 24)
        sdir = os.path.join(self.server.data_dir, "browser", sid)
        self.assertTrue(os.path.isfile(os.path.join(sdir, ".owner")))
        listed = {s["sessionId"]: s for s in
                  self.server.get("/browser/sessions").json()["sessions"]}
        self.assertIn(sid, listed)
        self.assertEqual(listed[sid]["device"], "desktop")
        self.assertIn("createdAt", listed[sid])
        self.assertEqual([t["tabId"] for t in listed[sid]["tabs"]], [tab])
        self.assertEqual(self.server.get("/health").json()["browser"]["sessions"], 1)
        r = self.server.delete(f"/browser/sessions/{sid}")
        self.assertEqual(r.status, 204, r)
        self.assertNotIn(sid, [s["sessionId"] for s in
                               self.server.get("/browser/sessions").json()["sessions"]])
        self.assertFalse(os.path.exists(sdir))
        self.assertError(self.server.delete(f"/browser/sessions/{sid}"), 404, "not_found")

    def test_bad_create_body(self):
        self.assertError(self.server.post("/browser/sessions", body={"device": "tablet"}), 400,
                         "invalid_request")
        self.assertError(self.server.post("/browser/sessions", body={"bogus": 1}), 400)

    def test_unknown_session_and_tab(self):
        base = "/browser/sessions/" + "0" * 32
        self.assertError(self.server.post(base + "/navigate", body={"url": "about:blank"}), 404,
                         "not_found")
        self.assertError(self.server.get(base + "/content"), 404, "not_found")
        self.assertError(self.server.get(base + "/tabs"), 404, "not_found")
        self.assertError(self.server.delete(base), 404, "not_found")
        sid, _ = self.new_session()
        self.assertError(self.server.get(f"/browser/sessions/{sid}/content?tabId=nope"), 404,
                         "not_found")
        self.assertError(self.nav(sid, "/index.html", tabId="nope"), 404, "not_found")
        self.assertError(self.server.delete(f"/browser/sessions/{sid}/tabs/nope"), 404)


class TestNavigate(BrowserCase):
    def test_each_wait_until(self):
        sid, _ = self.new_session()
        for wait in ("load", "domcontentloaded", "networkidle0", "networkidle2"):
            r = self.nav(sid, "/fetch.html", waitUntil=wait)
            self.assertEqual(r.status, 200, (wait, r))
            self.assertEqual(r.json()["status"], 200)
            self.assertEqual(r.json()["title"], "Fetcher")
            self.assertEqual(r.json()["url"], self.site.url + "/fetch.html")
            if wait == "networkidle0":
                # Nothing was in flight for 500 ms: the fetched data is in the DOM.
                self.assertIn("answer=42", self.content(sid))

    def test_default_is_load_and_content_after_scripts(self):
        sid, _ = self.new_session()
        r = self.nav(sid, "/index.html")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"url": self.site.url + "/index.html", "status": 200,
                                    "title": "Home page"})
        html = self.content(sid)
        self.assertIn("written by script", html)
        self.assertNotIn(">static<", html)
        self.assertTrue(html.lower().startswith("<!doctype html>"))

    def test_title_and_url_are_what_the_page_made_them_by_load(self):
        sid, _ = self.new_session()
        r = self.nav(sid, "/renamed.html")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"url": self.site.url + "/moved.html", "status": 200,
                                    "title": "after load"})
        r = self.nav(sid, "/untitled.html")
        self.assertEqual(r.json()["title"], "", r)  # document.title, not the URL shown instead

    def test_multi_megabyte_content(self):
        sid, _ = self.new_session()
        self.assertEqual(self.nav(sid, "/big.html").status, 200)
        html = self.content(sid)
        self.assertGreater(len(html), 6 * 1024 * 1024)
        self.assertIn("xxxEND</div>", html)

    def test_redirect_and_status(self):
        sid, _ = self.new_session()
        r = self.nav(sid, "/redirect")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["url"], self.site.url + "/index.html")
        self.assertEqual(r.json()["status"], 200)
        r = self.nav(sid, "/missing.html")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], 404)
        self.assertEqual(r.json()["title"], "Not here")
        r = self.nav(sid, "about:blank")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["url"], "about:blank")

    def test_network_error_and_timeout(self):
        sid, _ = self.new_session()
        r = self.nav(sid, f"http://127.0.0.1:{free_port()}/")
        err = self.assertError(r, 502, "navigation_failed")
        self.assertIn("net::ERR_CONNECTION_REFUSED", err["message"])
        r = self.nav(sid, "/slow.html", timeoutMs=500)
        self.assertError(r, 504, "timeout")
        # The session still works afterwards.
        self.assertEqual(self.nav(sid, "/index.html").status, 200)

    def test_refused_urls(self):
        sid, _ = self.new_session()
        for url in ("file:///etc/passwd", "chrome://version", "javascript:alert(1)",
                    "data:text/html,hi", "ftp://127.0.0.1/", "about:config", "http://"):
            err = self.assertError(self.nav(sid, url), 400, "invalid_request")
            self.assertIn("url", err["message"])
        self.assertError(self.server.post(f"/browser/sessions/{sid}/navigate", body={}), 400)
        self.assertError(self.nav(sid, "/index.html", waitUntil="never"), 400)
        self.assertError(self.nav(sid, "/index.html", timeoutMs="soon"), 400)
        self.assertError(self.server.post(f"/browser/sessions/{sid}/tabs",
                                          body={"url": "file:///etc/passwd"}), 400)
        # A URL the policy lets through but Chromium cannot parse is the client's mistake too,
        # with Chromium's verdict, not a server error; the session goes on.
        err = self.assertError(self.nav(sid, "http://127.0.0.1:99999/"), 400, "invalid_request")
        self.assertIn("url", err["message"])
        self.assertIn("not a valid URL", err["message"])
        self.assertEqual(self.nav(sid, "/index.html").status, 200)


class TestTabs(BrowserCase):
    def test_tabs_create_close_and_popups(self):
        sid, first = self.new_session()
        self.assertEqual(self.nav(sid, "/index.html").status, 200)
        r = self.server.post(f"/browser/sessions/{sid}/tabs",
                             body={"url": self.site.url + "/fetch.html"})
        self.assertEqual(r.status, 201, r)
        second = r.json()["tabId"]
        tabs = self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]
        self.assertEqual({t["tabId"] for t in tabs}, {first, second})
        self.assertEqual([t["tabId"] for t in tabs if t["active"]], [second])
        titles = {t["tabId"]: t["title"] for t in tabs}
        self.assertEqual(titles, {first: "Home page", second: "Fetcher"})
        # The new tab is current: content without tabId reads it; tabId selects the other.
        self.assertIn("Fetcher", self.content(sid))
        self.assertIn("Home page", self.content(sid, first))

        # A popup opened by the page appears in the list.
        self.assertEqual(self.nav(sid, "/opener.html", tabId=first).status, 200)
        tabs = wait_until(lambda: [t for t in self.server.get(
            f"/browser/sessions/{sid}/tabs").json()["tabs"] if "popup=1" in t["url"]], 10)
        self.assertEqual(len(tabs), 1, tabs)
        popup = tabs[0]["tabId"]
        self.assertTrue(wait_until(lambda: "written by script" in self.content(sid, popup), 10))
        r = self.nav(sid, "/fetch.html", tabId=popup, waitUntil="networkidle0")
        self.assertEqual(r.status, 200, r)
        self.assertIn("answer=42", self.content(sid, popup))

        self.assertEqual(self.server.delete(f"/browser/sessions/{sid}/tabs/{second}").status,
                         204)
        ids = {t["tabId"] for t in self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]}
        self.assertEqual(ids, {first, popup})
        self.assertError(self.server.get(f"/browser/sessions/{sid}/content?tabId={second}"),
                         404, "not_found")
        r = self.server.post(f"/browser/sessions/{sid}/tabs", body={})
        self.assertEqual(r.status, 201, r)

    def test_a_long_session_opens_and_closes_more_tabs_than_it_keeps(self):
        # An agent opening and closing tabs for hours: closed tabs do not count against the
        # limit of open ones (64), so the 70th new tab works like the first, and reads go to it.
        sid, first = self.new_session()
        tabs = f"/browser/sessions/{sid}/tabs"
        for i in range(70):
            r = self.server.post(tabs, body={})
            self.assertEqual(r.status, 201, f"tab {i}: {r}")
            t = r.json()["tabId"]
            self.assertEqual(self.server.delete(f"{tabs}/{t}").status, 204, f"tab {i}")
        r = self.server.post(tabs, body={"url": self.site.url + "/fetch.html"})
        self.assertEqual(r.status, 201, r)
        last = r.json()["tabId"]
        ids = {x["tabId"] for x in self.server.get(tabs).json()["tabs"]}
        self.assertEqual(ids, {first, last})
        self.assertIn("Fetcher", self.content(sid, last))
        # A popup is still tracked as a tab.
        self.assertEqual(self.nav(sid, "/opener.html", tabId=first).status, 200)
        self.assertTrue(wait_until(lambda: [t for t in self.server.get(tabs).json()["tabs"]
                                            if "popup=1" in t["url"]], 10))

    def test_workers_of_a_page_run(self):
        sid, tab = self.new_session()
        self.assertEqual(self.nav(sid, "/worker.html").status, 200)
        def title():
            r = self.server.get(f"/browser/sessions/{sid}/tabs")
            return [t["title"] for t in r.json()["tabs"]]
        self.assertTrue(wait_until(lambda: title() == ["worker said hi, nested too"], 10),
                        title())

    def test_new_tab_answers_its_first_call_at_once(self):
        # A new tab is handed out before its renderer has answered its set-up; whatever a
        # client does with it straight away must still see that set-up in force.
        sid, _ = self.new_session()
        tabs = f"/browser/sessions/{sid}/tabs"
        for i in range(4):
            t = self.server.post(tabs, body={}).json()["tabId"]
            wait = ("load", "networkidle0", "domcontentloaded", "networkidle2")[i]
            r = self.nav(sid, f"/fetch.html?i={i}", tabId=t, waitUntil=wait)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["title"], "Fetcher")
            self.assertEqual(r.json()["status"], 200)
            if wait == "networkidle0":
                self.assertIn("answer=42", self.content(sid, t))

            t = self.server.post(tabs, body={}).json()["tabId"]
            self.assertIn("<body></body>", self.content(sid, t))

            t = self.server.post(tabs, body={}).json()["tabId"]
            self.assertEqual(self.server.delete(f"{tabs}/{t}").status, 204)
            listed = {x["tabId"] for x in self.server.get(tabs).json()["tabs"]}
            self.assertNotIn(t, listed)


class TestMobile(BrowserCase):
    def test_mobile_is_visible_to_the_page(self):
        sid, _ = self.new_session(device="mobile")
        self.assertEqual(self.nav(sid, "/probe.html").status, 200)
        p = probe_of(self.content(sid))
        self.assertLess(p["w"], 500)
        self.assertEqual(p["sw"], 390)
        self.assertIn("Mobile", p["ua"])
        self.assertTrue(p["touch"])
        self.assertGreater(p["points"], 0)
        self.assertEqual(p["dpr"], 3)
        listed = [s for s in self.server.get("/browser/sessions").json()["sessions"]
                  if s["sessionId"] == sid]
        self.assertEqual(listed[0]["device"], "mobile")
        # A tab opened later is a phone too.
        r = self.server.post(f"/browser/sessions/{sid}/tabs",
                             body={"url": self.site.url + "/probe.html"})
        self.assertEqual(r.status, 201, r)
        p = probe_of(self.content(sid))
        self.assertTrue(p["touch"], p)

        desk, _ = self.new_session(device="desktop")
        self.assertEqual(self.nav(desk, "/probe.html").status, 200)
        p = probe_of(self.content(desk))
        self.assertGreater(p["w"], 800)
        self.assertNotIn("Mobile", p["ua"])
        self.assertFalse(p["touch"])


class TestCrashAndParallel(BrowserCase):
    def test_killed_chromium_is_502_then_gone(self):
        sid, _ = self.new_session()
        other, _ = self.new_session()
        sdir = os.path.join(self.server.data_dir, "browser", sid)
        with open(os.path.join(sdir, ".owner")) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        self.assertError(self.nav(sid, "/index.html"), 502, "browser_crashed")
        # Reported once: the session is gone now.
        self.assertError(self.server.get(f"/browser/sessions/{sid}/content"), 404, "not_found")
        self.assertNotIn(sid, [s["sessionId"] for s in
                               self.server.get("/browser/sessions").json()["sessions"]])
        self.assertTrue(wait_until(lambda: not os.path.exists(sdir), 10))
        self.assertError(self.nav(sid, "/index.html"), 404, "not_found")
        self.assertTrue(wait_until(lambda: not _group_members(pid), 5), _group_members(pid))
        # The other session is untouched.
        self.assertEqual(self.nav(other, "/index.html").status, 200)

    def test_crashed_tab_is_502_and_the_session_lives_on(self):
        sid, first = self.new_session()
        other, _ = self.new_session()
        api = f"/browser/sessions/{sid}"
        self.assertEqual(self.nav(sid, "/index.html").status, 200)
        # A second tab on another site (so in a renderer of its own), made easy to tell apart
        # from the first tab's renderer by the memory it holds.
        r = self.server.post(f"{api}/tabs", body={
            "url": self.site.url.replace("127.0.0.1", "localhost") + "/fetch.html"})
        self.assertEqual(r.status, 201, r)
        doomed = r.json()["tabId"]
        r = self.server.post(f"{api}/action", body={
            "action": "evaluate", "tabId": doomed,
            "expression": "window.big = new Uint8Array(300 << 20).fill(7); big.length"})
        self.assertEqual(r.status, 200, r)

        # A call that waits on the tab when its renderer dies is answered at once.
        waiting = {}

        def wait_forever():
            waiting["r"] = self.server.post(f"{api}/action", body={
                "action": "evaluate", "tabId": doomed, "expression": "new Promise(() => {})",
                "timeoutMs": 60000})
            waiting["t"] = time.monotonic()

        th = threading.Thread(target=wait_forever)
        th.start()
        time.sleep(0.5)
        with open(os.path.join(self.server.data_dir, "browser", sid, ".owner")) as f:
            chromium = int(f.read().split()[0])
        renderers = [p for p in descendants(chromium) if b"--type=renderer" in _cmdline(p)]
        biggest = max(renderers, key=_rss_kib)
        self.assertGreater(_rss_kib(biggest), 250 << 10)
        killed_at = time.monotonic()
        os.kill(biggest, signal.SIGKILL)
        th.join(30)
        self.assertIn("r", waiting, "the waiting call was not answered within 30 s of the crash")
        self.assertError(waiting["r"], 502, "tab_crashed")
        self.assertLess(waiting["t"] - killed_at, 10)

        err = self.assertError(self.server.get(f"{api}/content?tabId={doomed}"), 502,
                               "tab_crashed")
        self.assertIn("navigate", err["message"])
        self.assertError(self.server.get(f"{api}/screenshot?tabId={doomed}"), 502, "tab_crashed")
        tabs = {t["tabId"]: t for t in self.server.get(f"{api}/tabs").json()["tabs"]}
        self.assertTrue(tabs[doomed]["crashed"])
        self.assertFalse(tabs[first]["crashed"])
        # The session, its other tab and the other session are untouched.
        self.assertIn(sid, [s["sessionId"] for s in
                            self.server.get("/browser/sessions").json()["sessions"]])
        self.assertIn("Home page", self.content(sid, first))
        self.assertEqual(self.nav(other, "/index.html").status, 200)

        # Navigating the crashed tab loads it again.
        r = self.nav(sid, "/fetch.html", tabId=doomed, waitUntil="networkidle0")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["title"], "Fetcher")
        self.assertIn("answer=42", self.content(sid, doomed))
        tabs = {t["tabId"]: t for t in self.server.get(f"{api}/tabs").json()["tabs"]}
        self.assertFalse(tabs[doomed]["crashed"])
        self.assertEqual(self.server.post(f"{api}/tabs", body={}).status, 201)

    def test_eight_sessions_in_parallel(self):
        errors, done = [], []

        def worker(i):
            try:
                r = self.server.post("/browser/sessions", body={})
                if r.status != 201:
                    errors.append(("create", r))
                    return
                sid = r.json()["sessionId"]
                try:
                    r = self.nav(sid, f"/index.html?n={i}")
                    if r.status != 200 or r.json()["url"] != self.site.url + f"/index.html?n={i}":
                        errors.append(("navigate", r))
                    r = self.server.get(f"/browser/sessions/{sid}/content")
                    if r.status != 200 or b"written by script" not in r.body:
                        errors.append(("content", r))
                finally:
                    r = self.server.delete(f"/browser/sessions/{sid}")
                    if r.status != 204:
                        errors.append(("delete", r))
                done.append(i)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(("exception", e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(done), list(range(8)))
        self.assertEqual(self.server.get("/health").json()["browser"]["sessions"], 0)


def _group_members(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getpgid(int(d)) == pgid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class TestLimits(unittest.TestCase):
    def test_idle_expiry_and_max_sessions(self):
        # no warm pool: it would refill the freed slot with a Chromium of its own
        with Server(env={"BROWSER_IDLE_TIMEOUT_S": "2", "BROWSER_MAX_SESSIONS": "1",
                         "BROWSER_POOL_SIZE": "0"}) as srv:
            if not srv.get("/health").json()["browser"].get("chromium"):
                self.skipTest("no Chromium installed")
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 201, r)
            sid = r.json()["sessionId"]
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json()["error"]["code"], "too_many_sessions")
            self.assertTrue(r.header("Retry-After"))
            sdir = os.path.join(srv.data_dir, "browser", sid)
            gone = wait_until(lambda: not srv.get("/browser/sessions").json()["sessions"], 10)
            self.assertTrue(gone)
            self.assertTrue(wait_until(lambda: not os.path.exists(sdir), 5))
            # (15 s: a TSan build takes several to reap a Chromium's tree; one left still fails)
            self.assertTrue(wait_until(lambda: not descendants(srv.proc.pid), 15),
                            descendants(srv.proc.pid))
            self.assertEqual(srv.get(f"/browser/sessions/{sid}/tabs").status, 404)
            # The slot is free again.
            self.assertEqual(srv.post("/browser/sessions", body={}).status, 201)

    def test_sigterm_leaves_no_chromium_and_no_directory(self):
        srv = Server()
        try:
            srv.start()
            if not srv.get("/health").json()["browser"].get("chromium"):
                self.skipTest("no Chromium installed")
            for _ in range(2):
                self.assertEqual(srv.post("/browser/sessions", body={}).status, 201)
            self.assertTrue(descendants(srv.proc.pid))
            pid = srv.proc.pid
            kids = descendants(pid)
            self.assertEqual(srv.stop(), 0)
            self.assertEqual([p for p in kids if _alive(p) and _is_chromium(p)], [])
            self.assertEqual(srv.data_entries(), [])
        finally:
            srv.cleanup()

    def test_no_chromium_is_503(self):
        with Server(env={"CHROMIUM_PATH": "/nonexistent/chromium"}) as srv:
            self.assertIsNone(srv.get("/health").json()["browser"]["chromium"])
            r = srv.post("/browser/sessions", body={})
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "unavailable")


class TestBrokenChromium(unittest.TestCase):
    def test_a_chromium_that_fails_at_start_says_why(self):
        """A browser binary that dies at start (here a stand-in that prints and exits, like a
        Chromium refusing its profile) is a 503 quoting its exit code and last stderr line."""
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "chromium")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'starting' >&2\n"
                        "echo 'ERROR: Failed to create a ProcessSingleton for your profile' >&2\n"
                        "exit 21\n")
            os.chmod(fake, 0o755)
            with Server(env={"CHROMIUM_PATH": fake, "BROWSER_POOL_SIZE": "0"}) as srv:
                r = srv.post("/browser/sessions", body={})
                self.assertEqual(r.status, 503, r)
                msg = r.json()["error"]["message"]
                self.assertIn("exit code 21", msg)
                self.assertIn("Failed to create a ProcessSingleton", msg)
                self.assertNotIn("starting", msg)
                self.assertTrue(wait_until(lambda: not os.listdir(
                    os.path.join(srv.data_dir, "browser")), 10))


class TestHungTab(BrowserCase):
    server_env = {"BROWSER_CALL_TIMEOUT_MS": "2000", "BROWSER_POOL_SIZE": "0"}

    def test_hung_tab_times_out_with_a_way_out(self):
        sid, hung = self.new_session()
        api = f"/browser/sessions/{sid}"
        self.assertEqual(self.nav(sid, "/index.html").status, 200)
        r = self.server.post(f"{api}/action", body={
            "action": "evaluate", "expression": "setTimeout(() => { for (;;) {} }, 50); 1"})
        self.assertEqual(r.status, 200, r)
        with open(os.path.join(self.server.data_dir, "browser", sid, ".owner")) as f:
            chromium = int(f.read().split()[0])

        def spinning():  # the renderers that used most of a CPU over half a second
            return [p for p in descendants(chromium)
                    if b"--type=renderer" in _cmdline(p) and _cpu_ticks(p, 0.5) > 10]
        # On a loaded machine (a parallel suite) the loop may take a moment to get a CPU.
        found = []

        def one_spins():
            found[:] = spinning()
            return len(found) == 1
        self.assertTrue(wait_until(one_spins, 10), found)
        hot = found[0]

        err = self.assertError(self.server.get(f"{api}/content"), 504, "timeout")
        self.assertIn("close the tab", err["message"])
        # Another tab works meanwhile, and closing the hung one ends its renderer.
        other = self.server.post(f"{api}/tabs", body={"url": self.site.url + "/index.html"})
        self.assertEqual(other.status, 201, other)
        self.assertIn("Home page", self.content(sid, other.json()["tabId"]))
        self.assertEqual(self.server.delete(f"{api}/tabs/{hung}").status, 204)
        self.assertTrue(wait_until(lambda: not _alive(hot), 10))
        self.assertIn("Home page", self.content(sid))


def _cpu_ticks(pid, seconds):
    """Clock ticks of CPU time pid used over the next `seconds`."""
    def ticks():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except OSError:
            return 0
    before = ticks()
    time.sleep(seconds)
    return ticks() - before


def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _is_chromium(pid):
    return b"chrom" in _cmdline(pid)


if __name__ == "__main__":
    unittest.main()
