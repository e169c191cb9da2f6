"""Browser actions, screenshots and PDFs against real Chromium: each action is checked by
reading the page's own state back, not just by the ok flag."""

import struct
import time
import unittest

from harness import BrowserSiteCase, LocalSite, ServerTestCase

FORM = """<!doctype html><html><head><title>form</title><style>
#hov:hover { color: rgb(255, 0, 0); } #tall { height: 3000px; }
#cover { position: fixed; left: 0; top: 0; width: 100%; height: 100%; display: none; }
#box { width: 120px; height: 80px; background: #08f; }
</style></head><body>
<form id="f" onsubmit="window.submitted = (window.submitted || 0) + 1; return false;">
  <input id="name" value="ab">
  <input id="other">
  <textarea id="bio"></textarea>
  <select id="color"><option value="r">Red</option><option value="g">Green</option></select>
  <button type="submit" id="save">save</button>
</form>
<button id="btn" onclick="window.clicks = (window.clicks || 0) + 1">go</button>
<span id="hov">hover me</span>
<div id="box"></div>
<div id="cover" class="overlay big"></div>
<div id="tall"></div>
<script>
window.events = [];
const name = document.getElementById('name');
window.mods = [];
name.addEventListener('keydown', e => { events.push('keydown:' + e.key);
  mods.push((e.ctrlKey ? 'C' : '') + (e.shiftKey ? 'S' : '') + (e.altKey ? 'A' : '') +
            (e.metaKey ? 'M' : '')); });
document.getElementById('bio').addEventListener('input', () => events.push('input'));
document.getElementById('bio').addEventListener('change', () => events.push('change'));
document.getElementById('color').addEventListener('change', () => events.push('select-change'));
document.getElementById('hov').addEventListener('mouseover', () => window.hovered = true);
setTimeout(() => { const d = document.createElement('p'); d.id = 'late'; d.textContent = 'late';
  document.body.appendChild(d); }, 300);
</script></body></html>"""


class TestActions(BrowserSiteCase):
    pages = {"/form": (200, "text/html", FORM)}

    def setUp(self):
        r = self.server.post("/browser/sessions", {})
        self.assertEqual(r.status, 201, r)
        self.sid = r.json()["sessionId"]
        r = self.server.post(f"/browser/sessions/{self.sid}/navigate",
                             {"url": self.site.url + "/form"})
        self.assertEqual(r.status, 200, r)

    def tearDown(self):
        self.server.delete(f"/browser/sessions/{self.sid}")

    def act(self, body, status=200):
        r = self.server.post(f"/browser/sessions/{self.sid}/action", body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def js(self, expr):
        return self.act({"action": "evaluate", "expression": expr})["result"]

    def test_click_uses_real_mouse_events(self):
        self.act({"action": "click", "selector": "#btn"})
        self.act({"action": "click", "selector": "#btn"})
        self.assertEqual(self.js("window.clicks"), 2)
        self.assertTrue(self.js("(() => { let t = false; document.getElementById('btn')"
                                ".addEventListener('click', e => window.trusted = e.isTrusted);"
                                " return true; })()"))
        self.act({"action": "click", "selector": "#btn"})
        self.assertTrue(self.js("window.trusted"))

    def test_click_on_covered_element_names_the_cover(self):
        self.js("document.getElementById('cover').style.display = 'block'")
        err = self.act({"action": "click", "selector": "#btn"}, 409)["error"]
        self.assertIn("div#cover.overlay.big", err["message"])
        self.assertIsNone(self.js("window.clicks ?? null"))

    def test_type_appends_with_key_events(self):
        self.act({"action": "type", "selector": "#name", "text": "cd"})
        self.assertEqual(self.js("document.getElementById('name').value"), "abcd")
        self.assertIn("keydown:c", self.js("events"))

    def test_fill_replaces_and_fires_events(self):
        self.act({"action": "fill", "selector": "#bio", "value": "new text"})
        self.assertEqual(self.js("document.getElementById('bio').value"), "new text")
        self.assertEqual(self.js("events"), ["input", "change"])

    def test_press_enter_submits_and_tab_moves_focus(self):
        self.act({"action": "press", "selector": "#name", "key": "Enter"})
        self.assertEqual(self.js("window.submitted"), 1)
        self.act({"action": "press", "selector": "#name", "key": "Tab"})
        self.assertEqual(self.js("document.activeElement.id"), "other")

    def test_press_chords(self):
        # Control+a selects what the field holds, so Backspace clears it; the page sees the
        # modifier on the key and the modifier's own key events, as from a keyboard.
        self.act({"action": "press", "selector": "#name", "key": "Control+a"})
        self.assertEqual(self.js("[name.selectionStart, name.selectionEnd]"), [0, 2])
        self.act({"action": "press", "key": "Backspace"})
        self.assertEqual(self.js("name.value"), "")
        self.act({"action": "press", "key": "Shift+q"})
        self.act({"action": "press", "key": "Ctrl+Shift+ArrowLeft"})
        self.assertEqual(self.js("name.value"), "Q")
        self.assertEqual(self.js("[name.selectionStart, name.selectionEnd]"), [0, 1])
        self.act({"action": "press", "key": "Control++"})
        self.assertEqual(self.js("name.value"), "Q")
        self.assertEqual(self.js("events"), [
            "keydown:Control", "keydown:a", "keydown:Backspace", "keydown:Shift", "keydown:Q",
            "keydown:Control", "keydown:Shift", "keydown:ArrowLeft", "keydown:Control",
            "keydown:+"])
        self.assertEqual(self.js("mods"), ["C", "C", "", "S", "S", "C", "CS", "CS", "C", "C"])
        self.act({"action": "press", "selector": "#other", "key": "Shift+Tab"})
        self.assertEqual(self.js("document.activeElement.id"), "name")
        for key in ("Hyper+a", "Control+", "a+b"):
            err = self.act({"action": "press", "key": key}, 400)["error"]
            self.assertIn("key", err["message"], key)

    def test_hover_and_focus(self):
        self.act({"action": "hover", "selector": "#hov"})
        self.assertTrue(self.js("window.hovered"))
        self.assertEqual(self.js("getComputedStyle(document.getElementById('hov')).color"),
                         "rgb(255, 0, 0)")
        self.act({"action": "focus", "selector": "#bio"})
        self.assertEqual(self.js("document.activeElement.id"), "bio")

    def test_select(self):
        res = self.act({"action": "select", "selector": "#color", "values": ["g"]})
        self.assertEqual(res["selected"], ["g"])
        self.assertEqual(self.js("document.getElementById('color').value"), "g")
        self.assertIn("select-change", self.js("events"))
        err = self.act({"action": "select", "selector": "#name", "values": ["x"]}, 400)["error"]
        self.assertIn("select", err["message"])

    def test_scroll(self):
        self.act({"action": "scroll", "x": 0, "y": 700})
        self.assertEqual(self.js("window.scrollY"), 700)
        self.act({"action": "scroll", "selector": "#btn"})
        self.assertLess(self.js("window.scrollY"), 700)

    def test_wait_for_selector_states(self):
        self.act({"action": "waitForSelector", "selector": "#late", "timeoutMs": 5000})
        self.assertEqual(self.js("document.getElementById('late').textContent"), "late")
        self.act({"action": "waitForSelector", "selector": "#cover", "state": "hidden"})
        self.act({"action": "waitForSelector", "selector": "#cover", "state": "attached"})
        err = self.act({"action": "waitForSelector", "selector": "#cover", "timeoutMs": 200},
                       422)["error"]
        self.assertEqual(err["code"], "element_not_found")

    def test_missing_element_is_422_quickly(self):
        err = self.act({"action": "click", "selector": "#nope", "timeoutMs": 300}, 422)["error"]
        self.assertEqual(err["code"], "element_not_found")
        self.assertIn("#nope", err["message"])

    def test_evaluate_and_errors(self):
        self.assertEqual(self.js("({a: [1, 2], b: 'x'})"), {"a": [1, 2], "b": "x"})
        self.assertEqual(self.js("Promise.resolve(41 + 1)"), 42)
        # a JavaScript string holding a lone surrogate (cut inside a pair) answers at once, its
        # broken half as U+FFFD; a whole pair is kept
        t0 = time.time()
        self.assertEqual(self.js("'a' + String.fromCharCode(0xd800) + 'b' + '\\u{1F600}'"),
                         "a\ufffdb\U0001F600")
        self.assertLess(time.time() - t0, 5)
        err = self.act({"action": "evaluate", "expression": "throw new Error('boom')"},
                       400)["error"]
        self.assertIn("boom", err["message"])
        err = self.act({"action": "dance", "selector": "#btn"}, 400)["error"]
        self.assertIn("waitForSelector", err["message"])
        err = self.act({"action": "click"}, 400)["error"]
        self.assertIn("selector", err["message"])
        err = self.act({"action": "click", "selector": "##bad"}, 400)["error"]
        self.assertIn("selector", err["message"])


MORE = """<!doctype html><html><head><title>more</title></head><body>
<div id="ed" contenteditable="true">old</div>
<textarea id="ta">x</textarea>
<input id="one">
<a id="go" href="/next">next</a>
<button id="b" style="margin-top: 1500px">b</button>
<script>
window.log = [];
const b = document.getElementById('b');
b.addEventListener('click', () => log.push('click'));
b.addEventListener('dblclick', () => log.push('dblclick'));
b.addEventListener('contextmenu', e => { log.push('contextmenu'); e.preventDefault(); });
document.getElementById('ed').addEventListener('input', () => log.push('ed-input'));
document.getElementById('ta').addEventListener('input', () => log.push('ta-input'));
</script></body></html>"""


class TestActionDetails(ServerTestCase):
    """Less common fields and failures, one session per device to stay fast."""

    def session(self, site, device):
        r = self.server.post("/browser/sessions", {"device": device})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        r = self.server.post(f"/browser/sessions/{sid}/navigate", {"url": site.url + "/more"})
        self.assertEqual(r.status, 200, r)
        return sid

    def act(self, sid, body, status=200):
        r = self.server.post(f"/browser/sessions/{sid}/action", body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def js(self, sid, expr):
        return self.act(sid, {"action": "evaluate", "expression": expr})["result"]

    def test_fields_and_failures(self):
        with LocalSite({"/more": (200, "text/html", MORE)}) as site:
            sid = self.session(site, "desktop")
            self.act(sid, {"action": "fill", "selector": "#ed", "value": "new"})
            self.assertEqual(self.js(sid, "document.getElementById('ed').textContent"), "new")
            self.act(sid, {"action": "type", "selector": "#ta", "text": "y\u00e9z"})
            self.assertEqual(self.js(sid, "document.getElementById('ta').value"), "xy\u00e9z")
            self.assertEqual(self.js(sid, "log.filter(x => x == 'ta-input').length"), 3)
            self.act(sid, {"action": "focus", "selector": "#one"})
            self.act(sid, {"action": "press", "key": "q"})
            self.assertEqual(self.js(sid, "document.getElementById('one').value"), "q")
            self.act(sid, {"action": "click", "selector": "#b", "clickCount": 2})
            self.act(sid, {"action": "click", "selector": "#b", "button": "right"})
            self.assertIn("dblclick", self.js(sid, "log"))
            self.assertIn("contextmenu", self.js(sid, "log"))
            self.assertGreater(self.js(sid, "scrollY"), 0)  # scrolled into view to click
            self.assertIsNone(self.js(sid, "undefined"))
            r = self.act(sid, {"action": "waitForSelector", "selector": "#b", "state": "hidden",
                               "timeoutMs": 200}, 504)
            self.assertIn("#b", r["error"]["message"])
            for body, word in [
                ({"action": "click", "selector": "#b", "bogus": 1}, "bogus"),
                ({"action": "waitForSelector", "selector": "a[", "timeoutMs": 200}, "selector"),
                ({"action": "select", "selector": "#one", "values": "x"}, "values"),
                ({"action": "scroll"}, "selector"),
                ({"action": "press", "key": "Hyper"}, "key"),
                ({"action": "type", "selector": "#ta"}, "text"),
                ({"action": "click", "selector": "#b", "button": "side"}, "button"),
                ({"action": "fill", "selector": "#b", "value": "v"}, "#b"),
            ]:
                err = self.act(sid, body, 400)["error"]
                self.assertIn(word, err["message"], body)

    def test_mobile_click(self):
        with LocalSite({"/more": (200, "text/html", MORE)}) as site:
            sid = self.session(site, "mobile")
            # A phone's click is a touch tap: touch listeners see it, pointers say "touch".
            self.js(sid, "(() => { for (const t of ['touchstart', 'touchend', 'pointerdown'])"
                         " b.addEventListener(t, e => log.push(t + (e.pointerType ?"
                         " ':' + e.pointerType : ''))); return true; })()")
            self.act(sid, {"action": "click", "selector": "#b"})
            log = self.js(sid, "log")
            self.assertIn("touchstart", log)
            self.assertIn("touchend", log)
            self.assertIn("pointerdown:touch", log)
            self.assertNotIn("pointerdown:mouse", log)
            self.assertIn("click", log)
            self.assertLess(log.index("touchstart"), log.index("click"))
            self.act(sid, {"action": "click", "selector": "#b", "clickCount": 2})
            self.assertEqual(self.js(sid, "log.filter(x => x == 'touchstart').length"), 3)
            self.act(sid, {"action": "type", "selector": "#one", "text": "ok"})
            self.assertEqual(self.js(sid, "document.getElementById('one').value"), "ok")

    def test_wait_across_a_navigation(self):
        slow = ("<!doctype html><p id='first'>1</p><script>setTimeout(() => {"
                " const p = document.createElement('p'); p.id = 'second';"
                " document.body.appendChild(p); p.textContent = '2'; }, 300)</script>")
        with LocalSite({"/more": (200, "text/html", MORE),
                        "/next": (200, "text/html", slow)}) as site:
            sid = self.session(site, "desktop")
            self.act(sid, {"action": "click", "selector": "#go"})
            self.act(sid, {"action": "waitForSelector", "selector": "#second", "timeoutMs": 5000})
            self.assertTrue(self.js(sid, "location.href").endswith("/next"))


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


class TestCapture(ServerTestCase):
    def test_screenshots_and_pdf(self):
        with LocalSite({"/form": (200, "text/html", FORM)}) as site:
            sid = self.server.post("/browser/sessions", {}).json()["sessionId"]
            try:
                base = f"/browser/sessions/{sid}"
                self.assertEqual(self.server.post(base + "/navigate",
                                                  {"url": site.url + "/form"}).status, 200)
                r = self.server.get(base + "/screenshot")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("Content-Type"), "image/png")
                w, h = png_size(r.body)
                full = png_size(self.server.get(base + "/screenshot?fullPage=true").body)
                self.assertEqual(full[0], w)
                self.assertGreater(full[1], 3000)
                self.assertLess(h, 3000)
                box = png_size(self.server.get(base + "/screenshot?selector=%23box").body)
                self.assertEqual(box, (120, 80))
                j = self.server.get(base + "/screenshot?format=jpeg&quality=50")
                self.assertEqual(j.status, 200)
                self.assertEqual(j.body[:3], b"\xff\xd8\xff")
                miss = self.server.get(base + "/screenshot?selector=%23nope")
                self.assertEqual(miss.status, 422, miss)
                pdf = self.server.get(base + "/pdf")
                self.assertEqual(pdf.status, 200)
                self.assertTrue(pdf.body.startswith(b"%PDF-"))
            finally:
                self.server.delete(f"/browser/sessions/{sid}")


if __name__ == "__main__":
    unittest.main()
