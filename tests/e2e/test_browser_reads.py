"""Agent reads against real Chromium: the snapshot with refs (content, states, iframes of both
kinds, shadow roots, maxChars, selector), actions by ref and stale refs (409 after a navigation
and after the element's removal), markdown and links, and pages of 50,000 nodes and 20 MB of
HTML answered within the caps and the call timeout."""

import re
import time
import unittest

from harness import BrowserSiteCase, LocalSite

FORM = """<!doctype html><html><head><title>Sign up</title><style>.gone{display:none}</style>
</head><body>
<nav><a href="/home">Home</a> <a href="/about">About</a></nav>
<main>
<h1>Create account</h1>
<form id="f" onsubmit="document.getElementById('out').textContent = 'Hello ' +
  document.getElementById('name').value + (document.getElementById('agree').checked ?
  ' (agreed)' : ''); return false;">
  <label for="name">Full name</label> <input id="name" required>
  <label><input type="checkbox" id="agree" checked> I agree</label>
  <select id="plan" aria-label="Plan"><option>Free</option><option selected>Pro</option></select>
  <button id="off" disabled>Later</button>
  <div class="gone"><button>Hidden button</button></div>
  <div><div><span><button type="submit" id="go">Sign up</button></span></div></div>
</form>
<p id="out"></p>
<details><summary>More</summary><p>inside</p></details>
</main></body></html>"""

SHADOW = """<!doctype html><html><body><h2>Host page</h2><x-card></x-card><script>
customElements.define('x-card', class extends HTMLElement { constructor() { super();
  const r = this.attachShadow({mode: 'open'});
  r.innerHTML = '<p>Shadow text</p><button id="sb" onclick="this.textContent = \\'pressed\\'">'
    + 'Shadow button</button>'; } });
</script></body></html>"""

ARTICLE = """<!doctype html><html><head><title>Article</title><script>var secret = 1;</script>
<style>body { color: red }</style></head><body>
<nav>""" + " ".join(f'<a href="/n{i}">Nav {i}</a>' for i in range(40)) + """</nav>
<h1>The title</h1>
<p>First <b>bold</b> paragraph with <a href="/rel/link?x=1">a link</a>.</p>
<h2>List</h2><ul><li>one</li><li>two<ul><li>two.a</li></ul></li></ul>
<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>31</td></tr></table>
<img src="/img/cat.png" alt="A cat">
<p><a href="/rel/link?x=1">same link again</a> <a href="https://example.test/abs">abs</a>
<a href="javascript:void 0">js</a> <a href="data:text/plain,hello">data</a></p>
</body></html>"""


def big_page(n):
    rows = "".join(f"<div><span>item {i}</span> <a href='/i{i}'>open {i}</a></div>"
                   for i in range(n // 3))
    return f"<!doctype html><html><body><h1>Big</h1>{rows}</body></html>"


class TestReads(BrowserSiteCase):
    pages = {
        "/form": (200, "text/html", FORM),
        "/shadow": (200, "text/html", SHADOW),
        "/article": (200, "text/html", ARTICLE),
        "/other": (200, "text/html", "<!doctype html><p>other page</p>"),
        "/longurls": (200, "text/html", "<!doctype html><body>" + "".join(
            f'<a href="/x{i}?q={"y" * 200000}">long {i}</a> <a href="/ok{i}">ok {i}</a>'
            for i in range(100)) + "</body>"),
        "/big": (200, "text/html", big_page(50000)),
        "/huge": (200, "text/html", "<!doctype html><html><body><h1>Huge</h1>" +
                  ("<p>" + "lorem ipsum dolor sit amet " * 40 + "</p>\n") * 19000 +
                  "</body></html>"),
    }

    def setUp(self):
        r = self.server.post("/browser/sessions", {})
        self.assertEqual(r.status, 201, r)
        self.sid = r.json()["sessionId"]

    def tearDown(self):
        self.server.delete(f"/browser/sessions/{self.sid}")

    def go(self, url):
        r = self.server.post(f"/browser/sessions/{self.sid}/navigate", {"url": url})
        self.assertEqual(r.status, 200, r)

    def snap(self, query="", status=200):
        r = self.server.get(f"/browser/sessions/{self.sid}/snapshot{query}")
        self.assertEqual(r.status, status, r)
        return r.json()

    def act(self, body, status=200):
        r = self.server.post(f"/browser/sessions/{self.sid}/action", body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def js(self, expr):
        return self.act({"action": "evaluate", "expression": expr})["result"]

    def ref_of(self, snap, role, name):
        for ref, v in snap["refs"].items():
            if v["role"] == role and v["name"] == name:
                return ref
        self.fail(f"no {role} {name!r} in {snap}")

    def test_form_snapshot_lines_states_and_refs(self):
        self.go(self.site.url + "/form")
        s = self.snap()
        text = s["snapshot"]
        self.assertFalse(s["truncated"])
        self.assertIn('- heading "Create account" [level=1]', text)
        self.assertRegex(text, r'- textbox "Full name" \[required\] \[ref=e\d+\]')
        self.assertRegex(text, r'- checkbox "I agree" \[checked\] \[ref=e\d+\]')
        self.assertRegex(text, r'- combobox "Plan" \[ref=e\d+\]: "Pro"')
        self.assertRegex(text, r'- button "Later" \[disabled\] \[ref=e\d+\]')
        self.assertRegex(text, r'- button "More" \[collapsed\] \[ref=e\d+\]')
        self.assertRegex(text, r'- link "Home" \[ref=e\d+\]')
        self.assertNotIn("Hidden button", text)
        # the three wrappers around the submit button are folded away: it sits under the form
        m = re.search(r'^( *)- button "Sign up"', text, re.M)
        self.assertTrue(m, text)
        self.assertLessEqual(len(m.group(1)), 4, text)
        # every ref in the text is in refs, with role and name, and the other way round
        in_text = set(re.findall(r"\[ref=(e\d+)\]", text))
        self.assertEqual(in_text, set(s["refs"]))
        self.assertEqual(s["refs"][self.ref_of(s, "button", "Sign up")],
                         {"role": "button", "name": "Sign up"})
        # a second snapshot of the same document keeps the refs
        self.assertEqual(self.snap()["refs"], s["refs"])

    def test_fill_and_click_by_ref(self):
        self.go(self.site.url + "/form")
        s = self.snap()
        self.act({"action": "fill", "ref": self.ref_of(s, "textbox", "Full name"), "value": "Ada"})
        self.act({"action": "click", "ref": self.ref_of(s, "checkbox", "I agree")})
        self.act({"action": "click", "ref": self.ref_of(s, "button", "Sign up")})
        self.assertEqual(self.js("document.getElementById('out').textContent"), "Hello Ada")
        after = self.snap()["snapshot"]
        self.assertRegex(after, r'- checkbox "I agree" \[ref=e\d+\]\n')
        self.assertIn('- textbox "Full name" [required] [ref=', after)
        self.assertIn(': "Ada"', after)
        self.assertIn('- paragraph: "Hello Ada"', after)
        # select and type by ref too
        r = self.act({"action": "select", "ref": self.ref_of(s, "combobox", "Plan"),
                      "values": ["Free"]})
        self.assertEqual(r["selected"], ["Free"])
        self.act({"action": "type", "ref": self.ref_of(s, "textbox", "Full name"), "text": "!"})
        self.assertEqual(self.js("document.getElementById('name').value"), "Ada!")

    def test_ref_and_selector_validation(self):
        self.go(self.site.url + "/form")
        s = self.snap()
        ref = self.ref_of(s, "button", "Sign up")
        err = self.act({"action": "click", "ref": ref, "selector": "#go"}, 400)["error"]
        self.assertIn("not both", err["message"])
        err = self.act({"action": "click", "ref": "button-1"}, 400)["error"]
        self.assertIn("ref", err["message"])
        err = self.act({"action": "click"}, 400)["error"]
        self.assertIn("ref", err["message"])

    def test_stale_after_navigation_and_after_removal(self):
        self.go(self.site.url + "/form")
        s = self.snap()
        go = self.ref_of(s, "button", "Sign up")
        name = self.ref_of(s, "textbox", "Full name")
        self.js("document.getElementById('go').remove()")
        err = self.act({"action": "click", "ref": go}, 409)["error"]
        self.assertEqual(err["code"], "stale_ref")
        self.assertIn("snapshot", err["message"])
        self.act({"action": "fill", "ref": name, "value": "x"})  # the others still work
        # the page's own scripts see nothing of the ref table
        self.assertIsNone(self.js("window[Symbol.for('sandboxd.reads')] ?? null"))
        self.go(self.site.url + "/other")
        s2 = self.snap()  # the new document's snapshot: its own content, no old refs
        self.assertEqual(s2["snapshot"], '- paragraph: "other page"\n')
        self.assertEqual(s2["refs"], {})
        t0 = time.monotonic()
        err = self.act({"action": "fill", "ref": name, "value": "y"}, 409)["error"]
        self.assertEqual(err["code"], "stale_ref")
        self.assertLess(time.monotonic() - t0, 5)  # at once, not after the action's timeout
        # back on a new copy of the form: the old ref is still stale (a new document)
        self.go(self.site.url + "/form")
        self.assertEqual(self.act({"action": "fill", "ref": name, "value": "z"}, 409)
                         ["error"]["code"], "stale_ref")
        # and a snapshot of the new copy numbers its refs on: the old names stay stale
        fresh = self.snap()["refs"]
        self.assertNotIn(name, fresh)
        self.assertNotIn(go, fresh)
        self.assertEqual(self.act({"action": "fill", "ref": name, "value": "z"}, 409)
                         ["error"]["code"], "stale_ref")

    def test_shadow_root_content_and_click(self):
        self.go(self.site.url + "/shadow")
        s = self.snap()
        self.assertIn('- paragraph: "Shadow text"', s["snapshot"])
        ref = self.ref_of(s, "button", "Shadow button")
        self.act({"action": "click", "ref": ref})
        self.assertIn('- button "pressed"', self.snap()["snapshot"])

    def test_iframes_same_and_cross_origin(self):
        inner = ('<!doctype html><h3>Framed</h3><input id="q" aria-label="Query">'
                 '<button onclick="this.textContent = \'hit \' + '
                 'document.getElementById(\'q\').value">Frame button</button>')
        with LocalSite({"/inner": (200, "text/html", inner)}) as other:
            self.site.routes["/inner"] = (200, "text/html", inner)
            self.site.routes["/frames"] = (200, "text/html", (
                '<!doctype html><h1>Frames</h1>'
                '<iframe title="same" src="/inner" style="margin-top:40px"></iframe>'
                f'<iframe title="cross" src="{other.url}/inner" style="margin-left:30px">'
                '</iframe>'
                # another site: Chromium runs it in its own process (test_browser_oopif.py)
                f'<iframe title="site" src="http://localhost:{other.port}/inner"></iframe>'))
            self.go(self.site.url + "/frames")
            s = self.snap()
            text = s["snapshot"]
            self.assertIn('- iframe "same":', text)
            self.assertIn('- iframe "cross":', text)
            self.assertIn('- iframe "site"', text)
            # both frames' content, each indented below its iframe line
            same = text.split('- iframe "same":')[1].split('- iframe "cross":')[0]
            cross = text.split('- iframe "cross":')[1].split('- iframe "site"')[0]
            self.assertIn('  - heading "Framed" [level=3]', text.split('- iframe "site"')[1])
            self.assertIn('  - heading "Framed" [level=3]', same)
            self.assertIn('  - heading "Framed" [level=3]', cross)
            same_q = re.search(r'textbox "Query" \[ref=(e\d+)\]', same).group(1)
            cross_q = re.search(r'textbox "Query" \[ref=(f\d+e\d+)\]', cross).group(1)
            cross_b = re.search(r'button "Frame button" \[ref=(f\d+e\d+)\]', cross).group(1)
            same_b = re.search(r'button "Frame button" \[ref=(e\d+)\]', same).group(1)
            self.act({"action": "fill", "ref": same_q, "value": "S"})
            self.act({"action": "click", "ref": same_b})
            self.act({"action": "fill", "ref": cross_q, "value": "C"})
            self.act({"action": "click", "ref": cross_b})  # real mouse events at its centre
            text = self.snap()["snapshot"]
            self.assertIn('button "hit S"', text)
            self.assertIn('button "hit C"', text)
            del self.site.routes["/frames"], self.site.routes["/inner"]

    def test_nested_cross_origin_frames(self):
        # top (site) > cross-origin frame (other) > frame of the first origin again
        leaf = ('<!doctype html><body style="margin:0"><button style="margin:20px" '
                'onclick="this.textContent = \'deep hit\'">Deep button</button>')
        with LocalSite({}) as other:
            self.site.routes["/leaf"] = (200, "text/html", leaf)
            other.routes["/mid"] = (200, "text/html", (
                '<!doctype html><body style="margin:0"><h4>Middle</h4>'
                f'<iframe title="leaf" src="{self.site.url}/leaf" style="margin:15px"></iframe>'))
            self.site.routes["/nest"] = (200, "text/html", (
                '<!doctype html><body style="margin:0"><h1>Top</h1>'
                f'<iframe title="mid" src="{other.url}/mid" width="500" height="300" '
                'style="margin-left:60px; border:5px solid black"></iframe>'))
            self.go(self.site.url + "/nest")
            text = self.snap()["snapshot"]
            self.assertIn('  - heading "Middle" [level=4]', text)
            self.assertIn('- iframe "leaf":', text)
            m = re.search(r'^( *)- button "Deep button" \[ref=(f\d+e\d+)\]', text, re.M)
            self.assertTrue(m, text)
            self.assertEqual(len(m.group(1)), 4, text)  # under mid > leaf
            self.act({"action": "click", "ref": m.group(2)})
            self.assertIn('button "deep hit"', self.snap()["snapshot"])
            # refs stay the same over snapshots of the same documents
            self.assertIn(m.group(2), self.snap()["refs"])
            del self.site.routes["/nest"], self.site.routes["/leaf"]

    def test_max_chars_and_selector(self):
        self.go(self.site.url + "/form")
        full = self.snap()
        s = self.snap("?maxChars=150")
        self.assertTrue(s["truncated"])
        self.assertLessEqual(len(s["snapshot"]), 150)
        self.assertTrue(full["snapshot"].startswith(s["snapshot"]))
        self.assertTrue(s["snapshot"].endswith("\n"))
        in_text = set(re.findall(r"\[ref=(e\d+)\]", s["snapshot"]))
        self.assertEqual(in_text, set(s["refs"]))
        self.assertLess(len(s["refs"]), len(full["refs"]))
        self.assertError(self.server.get(f"/browser/sessions/{self.sid}/snapshot?maxChars=5"),
                         400, "invalid_request")
        form = self.snap("?selector=%23f")["snapshot"]
        self.assertTrue(form.startswith("- form") or form.startswith("- textbox") or
                        "Full name" in form.splitlines()[0], form)
        self.assertNotIn("Create account", form)
        self.assertIn('"Sign up"', form)
        self.assertError(self.server.get(f"/browser/sessions/{self.sid}/snapshot?selector=%23nope"),
                         422, "element_not_found")
        self.assertError(self.server.get(f"/browser/sessions/{self.sid}/snapshot?selector=%5B%5B"),
                         400, "invalid_request")

    def test_markdown_and_links(self):
        self.go(self.site.url + "/article")
        r = self.server.get(f"/browser/sessions/{self.sid}/markdown")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/markdown"))
        md = r.body.decode()
        base = self.site.url
        self.assertIn("# The title", md)
        self.assertIn("## List", md)
        self.assertIn(f"[a link]({base}/rel/link?x=1)", md)
        self.assertIn("**bold**", md)
        self.assertIn("- one\n", md)
        self.assertIn("  - two.a", md)
        self.assertIn("| Name | Age |", md)
        self.assertIn("| Ann | 31 |", md)
        self.assertIn(f"![A cat]({base}/img/cat.png)", md)
        self.assertNotIn("secret", md)
        self.assertNotIn("color: red", md)
        self.assertNotIn("Nav 39", md)  # boilerplate navigation kept short
        self.assertIn("more links", md)
        r = self.server.get(f"/browser/sessions/{self.sid}/markdown?maxChars=100")
        self.assertLessEqual(len(r.body.decode()), 100)
        self.assertEqual(r.header("X-Truncated"), "true")
        links = self.server.get(f"/browser/sessions/{self.sid}/links").json()["links"]
        urls = [l["url"] for l in links]
        self.assertEqual(len(urls), len(set(urls)))
        self.assertIn({"text": "a link", "url": f"{base}/rel/link?x=1"}, links)
        self.assertIn({"text": "abs", "url": "https://example.test/abs"}, links)
        self.assertIn(f"{base}/n39", urls)
        self.assertFalse(any(u.startswith(("javascript:", "data:")) for u in urls))

    def test_huge_pages_within_caps_and_time(self):
        for path in ("/big", "/huge"):
            r = self.server.post(f"/browser/sessions/{self.sid}/navigate",
                                 {"url": self.site.url + path, "timeoutMs": 60000}, timeout=90)
            self.assertEqual(r.status, 200, r)
            if path == "/big":  # 50,000 nodes
                self.assertGreater(self.js("document.getElementsByTagName('*').length") +
                                   self.js("(() => { let n = 0; const w = document.createTreeWalker"
                                           "(document, NodeFilter.SHOW_TEXT); while (w.nextNode())"
                                           " n++; return n; })()"), 50000)
            for q in ("", "?maxChars=2000000"):
                t0 = time.monotonic()
                r = self.server.get(f"/browser/sessions/{self.sid}/snapshot{q}", timeout=60)
                took = time.monotonic() - t0
                # within the call timeout (30 s) even on a busy machine: the walk stops at
                # its time budget and says truncated
                self.assertEqual(r.status, 200, r)
                s = r.json()  # valid JSON, within the cap
                limit = 40000 if not q else 2000000
                self.assertLessEqual(len(s["snapshot"]), limit)
                self.assertLess(took, 32, path)
                if not q:
                    self.assertTrue(s["truncated"])
            r = self.server.get(f"/browser/sessions/{self.sid}/markdown", timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertLessEqual(len(r.body.decode()), 40000)
            r = self.server.get(f"/browser/sessions/{self.sid}/links", timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertLessEqual(len(r.json()["links"]), 5000)
        # 100 links of 200 kB each (20 MB of hrefs): left out, the others listed
        self.go(self.site.url + "/longurls")
        r = self.server.get(f"/browser/sessions/{self.sid}/links", timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertLess(len(r.body), 100000)
        self.assertEqual(len(r.json()["links"]), 100)
        r = self.server.get(f"/browser/sessions/{self.sid}/markdown", timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual(len(r.body.decode()), 40000)
        # the session still answers
        self.assertEqual(self.js("1 + 1"), 2)


if __name__ == "__main__":
    unittest.main()
