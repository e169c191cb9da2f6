"""Storage state of browser sessions against real Chromium and local pages: GET .../state in
Playwright's storageState shape, `state` at create restoring cookies and localStorage before the
first page loads (the page's first script sees them), and playwright-core (tests/playwright,
connectOverCDP to the session's /cdp passthrough) reading the same state."""

import json
import os
import shutil
import subprocess
import time
import unittest

from harness import SOURCE_DIR, BrowserSiteCase, LocalSite

HTML = "text/html; charset=utf-8"
# Records what the page saw before anything else ran.
SEEN = ("<!doctype html><title>s</title><script>window.seen = {cookie: document.cookie,"
        " ls: Object.fromEntries(Object.entries(localStorage))};</script>")
# Records the same, then clears localStorage and reloads itself at once, the first time only.
CLEARS = ("<!doctype html><title>c</title><script>window.seen = {ls:"
          " Object.fromEntries(Object.entries(localStorage)),"
          " nav: performance.getEntriesByType('navigation')[0].type,"
          " ours: Object.keys(window).filter((k) => k.startsWith('__sandboxd'))};"
          " if (!sessionStorage.getItem('again')) { sessionStorage.setItem('again', '1');"
          " localStorage.clear(); location.reload(); }</script>")
PAGES = {"/s.html": (200, HTML, SEEN), "/clear.html": (200, HTML, CLEARS)}
PW_DIR = os.path.join(SOURCE_DIR, "tests", "playwright")


class TestState(BrowserSiteCase):
    pages = PAGES

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = LocalSite(PAGES)  # a second origin (another port)

    @classmethod
    def tearDownClass(cls):
        cls.other.close()
        super().tearDownClass()

    def create(self, body, status=201):
        r = self.server.post("/browser/sessions", body=body)
        self.assertEqual(r.status, status, r)
        if status != 201:
            return r
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        return sid

    def nav(self, sid, url, tab=None):
        body = {"url": url}
        if tab:
            body["tabId"] = tab
        r = self.server.post(f"/browser/sessions/{sid}/navigate", body=body)
        self.assertEqual(r.status, 200, r)

    def js(self, sid, expr, tab=None):
        body = {"action": "evaluate", "expression": expr}
        if tab:
            body["tabId"] = tab
        r = self.server.post(f"/browser/sessions/{sid}/action", body=body)
        self.assertEqual(r.status, 200, r)
        return r.json()["result"]

    def state(self, sid):
        r = self.server.get(f"/browser/sessions/{sid}/state")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def stored(self):
        cookies = [{"name": f"c{i}", "value": f"v{i}", "domain": "127.0.0.1", "path": "/",
                    "expires": -1, "httpOnly": False, "secure": False, "sameSite": "Lax"}
                   for i in range(10)]
        origins = [{"origin": self.site.url, "localStorage": [{"name": "token", "value": "abc"},
                                                              {"name": "n", "value": "1"}]},
                   {"origin": self.other.url, "localStorage": [{"name": "other", "value": "x"}]}]
        return {"cookies": cookies, "origins": origins}

    def test_state_restored_before_the_first_page(self):
        def pages():  # a favicon fetch of an earlier test's page may still arrive
            return [q[1] for q in self.site.requests + self.other.requests
                    if q[1] != "/favicon.ico"]
        before = pages()
        sid = self.create({"state": self.stored()})
        # the restore left the tab blank, its history empty, and no request went out
        self.assertEqual(pages(), before)
        tabs = self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]
        self.assertEqual([t["url"] for t in tabs], ["about:blank"])
        r = self.server.post(f"/browser/sessions/{sid}/action", body={"action": "back"})
        self.assertEqual(r.status, 409, r)
        self.nav(sid, self.site.url + "/s.html")
        seen = self.js(sid, "window.seen")
        self.assertEqual(sorted(seen["cookie"].split("; ")),
                         sorted(f"c{i}=v{i}" for i in range(10)))
        self.assertEqual(seen["ls"], {"token": "abc", "n": "1"})
        # the cookies went out with the request too
        _, _, headers, _ = [q for q in self.site.requests if q[1] == "/s.html"][-1]
        self.assertIn("c3=v3", headers.get("Cookie", ""))
        r = self.server.post(f"/browser/sessions/{sid}/tabs", body={"url": self.other.url + "/s.html"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.js(sid, "window.seen.ls", r.json()["tabId"]), {"other": "x"})
        # read back: the same shape, every origin an open tab shows
        st = self.state(sid)
        self.assertEqual(sorted((c["name"], c["value"], c["domain"]) for c in st["cookies"]),
                         sorted((f"c{i}", f"v{i}", "127.0.0.1") for i in range(10)))
        self.assertEqual({c["expires"] for c in st["cookies"]}, {-1})
        by_origin = {o["origin"]: o["localStorage"] for o in st["origins"]}
        self.assertEqual(sorted(by_origin), sorted([self.site.url, self.other.url]))
        self.assertEqual(sorted((i["name"], i["value"]) for i in by_origin[self.site.url]),
                         [("n", "1"), ("token", "abc")])
        # and it carries over into another session
        sid2 = self.create({"state": st})
        self.nav(sid2, self.other.url + "/s.html")
        self.assertEqual(self.js(sid2, "window.seen.ls"), {"other": "x"})
        self.assertIn("c9=v9", self.js(sid2, "window.seen.cookie"))

    def test_a_stored_origin_not_shown_yet_is_read_back_as_it_came(self):
        # an agent keeps the logins of several sites in one state and uses one per session:
        # reading the state back must not drop the others
        sid = self.create({"state": self.stored()})
        self.nav(sid, self.site.url + "/s.html")
        self.js(sid, "localStorage.setItem('n', '2'); true")
        by_origin = {o["origin"]: sorted((i["name"], i["value"]) for i in o["localStorage"])
                     for o in self.state(sid)["origins"]}
        self.assertEqual(by_origin, {self.site.url: [("n", "2"), ("token", "abc")],
                                     self.other.url: [("other", "x")]})
        # once a page of it has run, it is read from the page, as the page left it
        r = self.server.post(f"/browser/sessions/{sid}/tabs",
                             body={"url": self.other.url + "/s.html"})
        self.assertEqual(r.status, 201, r)
        tab = r.json()["tabId"]
        self.assertEqual(self.js(sid, "window.seen.ls", tab), {"other": "x"})
        self.js(sid, "localStorage.clear(); localStorage.setItem('other', 'y'); true", tab)
        by_origin = {o["origin"]: o["localStorage"] for o in self.state(sid)["origins"]}
        self.assertEqual(by_origin[self.other.url], [{"name": "other", "value": "y"}])
        self.assertEqual(len(by_origin), 2)

    def wait_js(self, sid, expr, tab=None, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            body = {"action": "evaluate", "expression": expr}
            if tab:
                body["tabId"] = tab
            r = self.server.post(f"/browser/sessions/{sid}/action", body=body)
            if r.status == 200 and r.json()["result"]:
                return r.json()["result"]
            if time.monotonic() > deadline:
                self.fail(f"{expr} did not become true: {r!r}")
            time.sleep(0.05)

    def test_state_restored_once_the_page_owns_it_after(self):
        sid = self.create({"state": self.stored()})
        # the page clears what it found and reloads at once: the reload finds it cleared
        # (navigate would wait for the load of the first document, which never comes)
        self.js(sid, f"location.href = {json.dumps(self.site.url + '/clear.html')}; true")
        seen = self.wait_js(sid, "window.seen && window.seen.nav === 'reload' &&"
                                 " document.readyState === 'complete' && window.seen")
        self.assertEqual(seen["ls"], {})
        self.assertEqual(seen["ours"], [])  # nothing of the restore is visible to the page
        # so do a reload through the API, another navigation and another tab of that origin
        r = self.server.post(f"/browser/sessions/{sid}/action", body={"action": "reload"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.js(sid, "window.seen.ls"), {})
        self.nav(sid, self.site.url + "/s.html")
        self.assertEqual(self.js(sid, "window.seen.ls"), {})
        r = self.server.post(f"/browser/sessions/{sid}/tabs", body={"url": self.site.url + "/s.html"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.js(sid, "window.seen.ls", r.json()["tabId"]), {})
        # the page's own writes stay too
        self.js(sid, "localStorage.setItem('mine', '2'); true")
        self.nav(sid, self.site.url + "/s.html")
        self.assertEqual(self.js(sid, "window.seen.ls"), {"mine": "2"})
        # the other origin, not shown yet, is still restored when it first is
        self.nav(sid, self.other.url + "/s.html")
        self.assertEqual(self.js(sid, "window.seen.ls"), {"other": "x"})

    def test_a_popup_sees_the_state_before_its_first_script(self):
        sid = self.create({"state": self.stored()})
        self.nav(sid, self.site.url + "/s.html")
        first = self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"][0]["tabId"]
        self.js(sid, f"window.open({json.dumps(self.other.url + '/s.html')}); true", first)

        def popup():
            tabs = self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]
            return [t["tabId"] for t in tabs if t["tabId"] != first]
        deadline = time.monotonic() + 10
        while not popup() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(popup()), 1)
        tab = popup()[0]
        self.assertEqual(self.wait_js(sid, "window.seen && window.seen.ls", tab), {"other": "x"})
        self.assertIn("c0=v0", self.js(sid, "window.seen.cookie", tab))
        # a same-origin popup after the page changed its storage sees the page's, not ours
        self.js(sid, "localStorage.setItem('token', 'changed'); true", first)
        self.js(sid, f"window.open({json.dumps(self.site.url + '/s.html')}); true", first)
        deadline = time.monotonic() + 10
        while len(popup()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        third = [t for t in popup() if t != tab][0]
        self.assertEqual(self.wait_js(sid, "window.seen && window.seen.ls", third),
                         {"token": "changed", "n": "1"})

    def test_state_of_a_session_the_page_changed(self):
        sid = self.create({})
        self.assertEqual(self.state(sid), {"cookies": [], "origins": []})
        self.nav(sid, self.site.url + "/s.html")
        self.js(sid, "document.cookie = 'k=1; max-age=3600; SameSite=Strict';"
                     " localStorage.setItem('a', 'b'); true")
        st = self.state(sid)
        self.assertEqual([(c["name"], c["value"], c["sameSite"]) for c in st["cookies"]],
                         [("k", "1", "Strict")])
        self.assertGreater(st["cookies"][0]["expires"], 0)
        self.assertEqual(st["origins"], [{"origin": self.site.url,
                                          "localStorage": [{"name": "a", "value": "b"}]}])

    def test_bad_state_names_the_field(self):
        good = self.stored()
        for mutate, field in ((lambda s: s["cookies"][0].pop("name"), "state.cookies[0].name"),
                              (lambda s: s["cookies"][1].update(sameSite="Weird"),
                               "state.cookies[1].sameSite"),
                              (lambda s: s["cookies"][2].update(expires="soon"),
                               "state.cookies[2].expires"),
                              (lambda s: s["origins"][0].update(origin="file:///etc"),
                               "state.origins[0].origin"),
                              (lambda s: s["origins"][1].update(origin=self.site.url + "/path"),
                               "state.origins[1].origin"),
                              (lambda s: s["origins"][0].update(localStorage=[{"name": 1}]),
                               "state.origins[0].localStorage[0]"),
                              (lambda s: s.update(extra=1), "state")):
            st = json.loads(json.dumps(good))
            mutate(st)
            err = self.assertError(self.create({"state": st}, 400), 400, "invalid_request")
            self.assertIn(field, err["message"])

    def test_a_cookie_chromium_refuses_is_the_clients_400(self):
        # a control character in a value passes our checks; Chromium's cookie store refuses it
        st = self.stored()
        st["cookies"][3]["value"] = "bad\u0001value"
        before = self.server.get("/browser/sessions").json()["sessions"]
        err = self.assertError(self.create({"state": st}, 400), 400, "invalid_request")
        self.assertIn("Storage.setCookies", err["message"])
        self.assertEqual(self.server.get("/browser/sessions").json()["sessions"], before)
        # and the next create with a good state works
        sid = self.create({"state": self.stored()})
        self.nav(sid, self.site.url + "/s.html")
        self.assertIn("c3=v3", self.js(sid, "document.cookie"))

    def test_playwright_reads_the_same_state(self):
        node = shutil.which("node")
        if not node or not os.path.isdir(os.path.join(PW_DIR, "node_modules", "playwright-core")):
            self.skipTest("playwright-core is not installed (npm ci in tests/playwright)")
        # only the origin the page shows: Playwright, attached afterwards, knows of no other
        stored = self.stored()
        sid = self.create({"state": {"cookies": stored["cookies"], "origins": stored["origins"][:1]}})
        self.nav(sid, self.site.url + "/s.html")
        self.js(sid, "localStorage.setItem('fromPage', 'yes'); true")
        ours = self.state(sid)
        url = f"ws://127.0.0.1:{self.server.port}/browser/sessions/{sid}/cdp"
        p = subprocess.run([node, os.path.join(PW_DIR, "state.mjs"), url, self.server.token],
                           capture_output=True, text=True, timeout=60, cwd=PW_DIR)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        theirs = json.loads(p.stdout)

        def cookies(st):
            return sorted((c["name"], c["value"], c["domain"], c["path"], c["expires"],
                           c["httpOnly"], c["secure"], c["sameSite"]) for c in st["cookies"])

        def origins(st):
            return sorted((o["origin"], sorted((i["name"], i["value"]) for i in o["localStorage"]))
                          for o in st["origins"])

        self.assertEqual(cookies(theirs), cookies(ours))
        self.assertEqual(origins(theirs), origins(ours))
        self.assertIn(("fromPage", "yes"), origins(ours)[0][1])
        # the session is still there after Playwright disconnected
        self.assertEqual(self.js(sid, "1 + 1"), 2)


if __name__ == "__main__":
    unittest.main()
