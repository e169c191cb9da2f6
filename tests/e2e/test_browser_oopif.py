"""Cross-site iframes that Chromium draws in a renderer process of their own (OOPIFs, site
isolation): a page on 127.0.0.1 embeds a form served as http://localhost:P (another site).
Checked first through the CDP passthrough that Chromium really made the frame a target of its
own; then the snapshot shows the frame's content with refs below its iframe line (nested ones
too), fill, type and click by ref act inside the frame (real mouse events at the translated
point), its markdown and links are in the tab's, the tab list does not grow, a ref of a frame that navigated or was removed is
409 stale_ref, and a frame whose renderer crashed or hangs does not hang the snapshot."""

import re
import time
import unittest

from harness import BrowserSiteCase, LocalSite
from test_browser_cdp import WebSocket

# The framed form tells its parent what happened (the top page keeps it in its title), so the
# frame's state can be read back without the snapshot too.
FORM = """<!doctype html><body style="margin:0"><h3>Framed form</h3>
<input id="q" aria-label="Query" style="margin-left:25px">
<button id="b" style="margin:10px 0 0 40px" onclick="this.textContent = 'hit ' +
  document.getElementById('q').value; parent.postMessage('clicked ' +
  document.getElementById('q').value, '*')">Frame button</button>
<a href="/doc?from=frame">Frame doc</a> %s</body>"""
LEAF = """<!doctype html><body style="margin:0"><button style="margin:20px 0 0 70px"
onclick="this.textContent = 'deep hit'">Deep button</button></body>"""


def top(frame_url, extra=""):
    return ('<!doctype html><body style="margin:0"><h1>Top</h1><script>'
            'addEventListener("message", (e) => { document.title = e.data; });</script>'
            f'<iframe id="fr" title="site" src="{frame_url}" width="520" height="320" '
            'style="margin:37px 0 0 53px; border:6px solid black"></iframe>'
            '<a href="/home">Top home</a>' + extra)


class TestOopif(BrowserSiteCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = LocalSite({"/form": (200, "text/html", FORM % ""),
                               "/plain": (200, "text/html", "<!doctype html><p>plain</p>")})
        cls.frame_base = f"http://localhost:{cls.other.port}"

    @classmethod
    def tearDownClass(cls):
        cls.other.close()
        super().tearDownClass()

    def setUp(self):
        r = self.server.post("/browser/sessions", {})
        self.assertEqual(r.status, 201, r)
        self.sid = r.json()["sessionId"]

    def tearDown(self):
        self.server.delete(f"/browser/sessions/{self.sid}")

    def go(self, path, html):
        self.site.routes[path] = (200, "text/html", html)
        r = self.server.post(f"/browser/sessions/{self.sid}/navigate",
                             {"url": self.site.url + path})
        self.assertEqual(r.status, 200, r)

    def snap(self):
        r = self.server.get(f"/browser/sessions/{self.sid}/snapshot")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def snap_until(self, needle, seconds=10):
        deadline = time.monotonic() + seconds
        while True:
            s = self.snap()
            if needle in s["snapshot"] or time.monotonic() > deadline:
                return s
            time.sleep(0.1)

    def act(self, body, status=200):
        r = self.server.post(f"/browser/sessions/{self.sid}/action", body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def js(self, expr):
        return self.act({"action": "evaluate", "expression": expr})["result"]

    def ref(self, text, role, name):
        m = re.search(rf'- {role} "{re.escape(name)}"[^\n]*\[ref=(f\d+e\d+)\]', text)
        self.assertTrue(m, f"no {role} {name!r} with a frame ref in:\n{text}")
        return m.group(1)

    def targets(self):
        ws = WebSocket(self.server.port, f"/browser/sessions/{self.sid}/cdp", self.server.token)
        self.addCleanup(ws.close)
        self.assertTrue(ws.accepted, ws.status_line)
        return ws, ws.call("Target.getTargets")["result"]["targetInfos"]

    def assert_oopif(self, url):
        """Chromium runs `url` as a target of its own (else this test proves nothing)."""
        _, tis = self.targets()
        frames = [t for t in tis if t["type"] == "iframe" and t["url"] == url]
        self.assertEqual(len(frames), 1, tis)
        return frames[0]

    def test_snapshot_and_actions_inside_an_oopif(self):
        self.go("/top", top(self.frame_base + "/form"))
        self.assert_oopif(self.frame_base + "/form")
        s = self.snap_until("Framed form")
        text = s["snapshot"]
        self.assertFalse(s["truncated"], text)
        self.assertIn('- heading "Top" [level=1]', text)
        below = text.split('- iframe "site"')[1]
        self.assertIn('\n  - heading "Framed form" [level=3]', below)
        q = self.ref(below, "textbox", "Query")
        b = self.ref(below, "button", "Frame button")
        self.assertEqual(s["refs"][q], {"role": "textbox", "name": "Query"})
        self.assertEqual(s["refs"][b], {"role": "button", "name": "Frame button"})
        # fill and type by ref go into the frame; the click is a real mouse click at the
        # button's centre translated into the tab's viewport (iframe margin and border)
        self.act({"action": "fill", "ref": q, "value": "Ada"})
        self.act({"action": "type", "ref": q, "text": "!"})
        self.act({"action": "click", "ref": b})
        after = self.snap()["snapshot"]
        self.assertIn('- textbox "Query" [ref=' + q + ']: "Ada!"', after)
        self.assertRegex(after, r'- button "hit Ada!" (\[focused\] )?\[ref=' + b + r'\]')
        self.assertEqual(self.js("document.title"), "clicked Ada!")  # the frame told its parent
        # refs of the same frame document stay the same over snapshots
        self.assertIn(q, self.snap()["refs"])
        # links: the frame's too, absolute in its own site
        r = self.server.get(f"/browser/sessions/{self.sid}/links")
        self.assertEqual(r.status, 200, r)
        links = r.json()
        self.assertIn({"text": "Top home", "url": self.site.url + "/home"}, links["links"])
        self.assertIn({"text": "Frame doc", "url": self.frame_base + "/doc?from=frame"},
                      links["links"])
        self.assertFalse(links["truncated"])
        # markdown: the frame's where its iframe is, and a cut never shows a frame marker
        r = self.server.get(f"/browser/sessions/{self.sid}/markdown")
        self.assertEqual(r.status, 200, r)
        md = r.body.decode()
        self.assertIn("### Framed form", md)
        self.assertIn(f"[Frame doc]({self.frame_base}/doc?from=frame)", md)
        self.assertLess(md.index("# Top"), md.index("### Framed form"))
        self.assertLess(md.index("### Framed form"), md.index("[Top home]"))
        for cap in range(100, 260, 9):
            md = self.server.get(f"/browser/sessions/{self.sid}/markdown?maxChars={cap}")
            text = md.body.decode()
            self.assertLessEqual(len(text), cap)
            self.assertNotIn("[[", text)
        # the frame's session is not a tab
        r = self.server.get(f"/browser/sessions/{self.sid}/tabs")
        self.assertEqual(len(r.json()["tabs"]), 1, r.json())

    def test_nested_oopifs_and_more_actions(self):
        # 127.0.0.1 > localhost (OOPIF) > 127.0.0.1 again (an OOPIF of the OOPIF)
        self.site.routes["/leaf"] = (200, "text/html", LEAF)
        self.other.routes["/mid"] = (200, "text/html", FORM % (
            f'<iframe title="leaf" src="{self.site.url}/leaf" width="300" height="120" '
            'style="margin:11px 0 0 19px; border:4px solid red"></iframe>'
            '<select id="pick" aria-label="Pick"><option>one</option><option>two</option>'
            '</select><input type="file" aria-label="Attach" onchange="document.getElementById('
            '\'b\').textContent = \'got \' + this.files[0].name">'))
        self.go("/nest", top(self.frame_base + "/mid"))
        self.assert_oopif(self.frame_base + "/mid")
        text = self.snap_until("Deep button")["snapshot"]
        m = re.search(r'^( *)- button "Deep button" \[ref=(f\d+e\d+)\]', text, re.M)
        self.assertTrue(m, text)
        self.assertEqual(len(m.group(1)), 4, text)  # under site > leaf
        self.act({"action": "click", "ref": m.group(2)})
        self.assertIn('- button "deep hit"', self.snap()["snapshot"])
        pick = self.ref(text, "combobox", "Pick")
        self.assertEqual(self.act({"action": "select", "ref": pick, "values": ["two"]})
                         ["selected"], ["two"])
        self.act({"action": "hover", "ref": self.ref(text, "button", "Frame button")})
        self.assertIn('- combobox "Pick" [ref=' + pick + ']: "two"', self.snap()["snapshot"])
        # upload by ref: the file input inside the OOPIF gets the file
        r = self.act({"action": "upload", "ref": self.ref(text, "button", "Attach"),
                      "files": [{"name": "a.txt", "contentBase64": "aGk="}]})
        self.assertEqual(r["files"], [{"name": "a.txt", "size": 2}])
        self.assertIn('- button "got a.txt"', self.snap()["snapshot"])

    def test_stale_after_the_frame_navigates_or_goes(self):
        self.go("/top", top(self.frame_base + "/form"))
        self.assert_oopif(self.frame_base + "/form")
        text = self.snap_until("Framed form")["snapshot"]
        q = self.ref(text, "textbox", "Query")
        # the frame navigates within its site: a new document, the old ref is stale at once
        self.js(f"document.getElementById('fr').src = '{self.frame_base}/plain'")
        self.snap_until('"plain"')
        t0 = time.monotonic()
        err = self.act({"action": "fill", "ref": q, "value": "x"}, 409)["error"]
        self.assertEqual(err["code"], "stale_ref")
        self.assertIn("snapshot", err["message"])
        self.assertLess(time.monotonic() - t0, 5)
        # a fresh form in the frame: new refs work, then the iframe is removed: stale
        self.js(f"document.getElementById('fr').src = '{self.frame_base}/form'")
        text = self.snap_until("Framed form")["snapshot"]
        q2 = self.ref(text, "textbox", "Query")
        self.assertNotEqual(q2, q)
        self.act({"action": "fill", "ref": q2, "value": "y"})
        self.js("document.getElementById('fr').remove()")
        self.assertEqual(self.act({"action": "fill", "ref": q2, "value": "z"}, 409)
                         ["error"]["code"], "stale_ref")
        self.assertNotIn("Framed form", self.snap()["snapshot"])

    def test_oopif_sees_the_sessions_emulation_and_takes_taps(self):
        # what the frame's scripts see is what the tab's see (it waits for its emulation)
        probe = ('<!doctype html><p id="u"></p><script>document.getElementById("u").textContent'
                 ' = [navigator.userAgent, Intl.DateTimeFormat().resolvedOptions().timeZone,'
                 ' navigator.language, navigator.maxTouchPoints].join(" | ")</script>')
        self.other.routes["/probe"] = (200, "text/html", probe + FORM % "")
        for body in ({"userAgent": "Bot/7", "locale": "de-DE", "timezoneId": "Asia/Tokyo"},
                     {"device": "mobile"}):
            r = self.server.post("/browser/sessions", body)
            self.assertEqual(r.status, 201, r)
            sid, self.sid = self.sid, r.json()["sessionId"]
            self.addCleanup(self.server.delete, f"/browser/sessions/{self.sid}")
            self.go("/probe", probe + top(self.frame_base + "/probe"))
            self.assert_oopif(self.frame_base + "/probe")
            text = self.snap_until("Framed form")["snapshot"]
            lines = re.findall(r'- paragraph: "(.*)"', text)
            self.assertEqual(len(lines), 2, text)
            self.assertEqual(lines[0], lines[1], text)  # top, frame
            if "Bot/7" in body.get("userAgent", ""):
                self.assertEqual(lines[0], "Bot/7 | Asia/Tokyo | de-DE | 0", text)
            else:  # a phone: a click inside the frame is a tap at the translated point
                self.assertIn("Mobile", lines[0])
                self.assertTrue(lines[0].endswith("| 5"), text)
                self.act({"action": "fill", "ref": self.ref(text, "textbox", "Query"),
                          "value": "tap"})
                self.act({"action": "click", "ref": self.ref(text, "button", "Frame button")})
                self.assertIn('- button "hit tap"', self.snap()["snapshot"])
            self.sid = sid

    def test_crashed_oopif_does_not_hang_the_snapshot(self):
        self.go("/top", top(self.frame_base + "/form"))
        frame = self.assert_oopif(self.frame_base + "/form")
        q = self.ref(self.snap_until("Framed form")["snapshot"], "textbox", "Query")
        ws, _ = self.targets()
        att = ws.call("Target.attachToTarget", {"targetId": frame["targetId"], "flatten": True})
        ws.send_text('{"id": 999, "method": "Page.crash", "sessionId": "%s"}'
                     % att["result"]["sessionId"])
        time.sleep(0.5)
        t0 = time.monotonic()
        s = self.snap()
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn('- heading "Top" [level=1]', s["snapshot"])
        self.assertNotIn("Framed form", s["snapshot"])
        self.assertEqual(self.act({"action": "fill", "ref": q, "value": "z"}, 409)
                         ["error"]["code"], "stale_ref")


class TestOopifHang(BrowserSiteCase):
    """An OOPIF whose renderer is stuck in a loop: the snapshot still answers, within the call
    timeout, with the rest of the page, and says it is incomplete."""

    server_env = {"BROWSER_CALL_TIMEOUT_MS": "3000"}

    def test_hung_oopif_is_left_out_within_the_timeout(self):
        busy = ('<!doctype html><h3>Busy frame</h3><script>'
                'setTimeout(() => { for (;;) {} }, 300);</script>')
        with LocalSite({"/busy": (200, "text/html", busy)}) as other:
            sid = self.server.post("/browser/sessions", {}).json()["sessionId"]
            self.addCleanup(self.server.delete, f"/browser/sessions/{sid}")
            self.site.routes["/top"] = (200, "text/html",
                                        top(f"http://localhost:{other.port}/busy"))
            r = self.server.post(f"/browser/sessions/{sid}/navigate",
                                 {"url": self.site.url + "/top"})
            self.assertEqual(r.status, 200, r)
            time.sleep(0.8)  # the frame's loop has begun
            t0 = time.monotonic()
            r = self.server.get(f"/browser/sessions/{sid}/snapshot")
            took = time.monotonic() - t0
            self.assertEqual(r.status, 200, r)
            self.assertLess(took, 3.5)
            s = r.json()
            self.assertIn('- heading "Top" [level=1]', s["snapshot"])
            self.assertNotIn("Busy frame", s["snapshot"])
            self.assertTrue(s["truncated"], s)


if __name__ == "__main__":
    unittest.main()
