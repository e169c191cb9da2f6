"""Actions back, forward, reload and upload against real Chromium and local pages: history moves
land on the right document (also within one document), reload loads again, and an uploaded file
reaches the page's file input (its change event fires, FileReader reads the bytes)."""

import base64
import os
import unittest

from harness import BrowserSiteCase

HTML = "text/html; charset=utf-8"
UPLOAD = """<!doctype html><title>up</title>
<input type=file id=one><input type=file id=many multiple><input id=text>
<script>
window.got = [];
for (const id of ['one', 'many'])
  document.getElementById(id).addEventListener('change', e => {
    for (const f of e.target.files) {
      const r = new FileReader();
      r.onload = () => window.got.push({input: id, name: f.name, size: f.size, text: r.result});
      r.readAsText(f);
    }
  });
</script>"""

PAGES = {
    "/h1.html": (200, HTML, "<!doctype html><title>one</title><p>1"),
    "/h2.html": (200, HTML, "<!doctype html><title>two</title><p>2"),
    "/upload.html": (200, HTML, UPLOAD),
}


class Case(BrowserSiteCase):
    pages = PAGES

    def setUp(self):
        r = self.server.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        self.sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{self.sid}"))

    def nav(self, path):
        r = self.server.post(f"/browser/sessions/{self.sid}/navigate",
                             body={"url": self.site.url + path})
        self.assertEqual(r.status, 200, r)

    def act(self, body, status=200):
        r = self.server.post(f"/browser/sessions/{self.sid}/action", body=body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def js(self, expr):
        return self.act({"action": "evaluate", "expression": expr})["result"]


class TestHistory(Case):
    def test_back_forward_reload(self):
        self.nav("/h1.html")
        self.nav("/h2.html")
        r = self.act({"action": "back"})
        self.assertEqual((r["url"], r["title"]), (self.site.url + "/h1.html", "one"))
        self.assertEqual(self.js("location.pathname + ' ' + document.readyState"),
                         "/h1.html complete")
        r = self.act({"action": "forward", "waitUntil": "domcontentloaded"})
        self.assertEqual(r["url"], self.site.url + "/h2.html")
        self.assertEqual(self.js("document.title"), "two")
        # reload loads the document again: a new request and a fresh window
        self.js("window.mark = 1")
        before = sum(1 for _, p, _, _ in self.site.requests if p == "/h2.html")
        r = self.act({"action": "reload"})
        self.assertEqual(r["url"], self.site.url + "/h2.html")
        self.assertIsNone(self.js("window.mark ?? null"))
        self.assertEqual(sum(1 for _, p, _, _ in self.site.requests if p == "/h2.html"),
                         before + 1)
        self.assertEqual(self.js("document.readyState"), "complete")

    def test_same_document_entries_and_the_ends(self):
        self.nav("/h1.html")
        self.js("history.pushState({}, '', '/h1.html#b'), true")
        r = self.act({"action": "back"})
        self.assertEqual(r["url"], self.site.url + "/h1.html")
        self.assertEqual(self.js("location.hash"), "")
        r = self.act({"action": "forward"})
        self.assertEqual(r["url"], self.site.url + "/h1.html#b")
        err = self.act({"action": "forward"}, 409)["error"]
        self.assertIn("no later page", err["message"])
        self.act({"action": "back"})
        self.act({"action": "back"})  # the session's first page, about:blank
        err = self.act({"action": "back"}, 409)["error"]
        self.assertIn("no earlier page", err["message"])
        err = self.act({"action": "reload", "waitUntil": "networkidle0"}, 400)["error"]
        self.assertIn("waitUntil", err["message"])


def b64(data):
    return base64.b64encode(data).decode()


class TestUpload(Case):
    def got(self, n):
        for _ in range(100):
            g = self.js("window.got")
            if len(g) >= n:
                return g
            self.js("new Promise(r => setTimeout(r, 50))")
        return self.js("window.got")

    def test_file_reaches_the_input_and_the_page_reads_it(self):
        self.nav("/upload.html")
        r = self.act({"action": "upload", "selector": "#one",
                      "files": [{"name": "notes.txt", "contentBase64": b64("héllo\nfile".encode())}]})
        self.assertEqual(r["files"], [{"name": "notes.txt", "size": 11}])
        got = self.got(1)
        self.assertEqual(got, [{"input": "one", "name": "notes.txt", "size": 11,
                                "text": "héllo\nfile"}])
        # the file lives in the session's own directory
        udir = os.path.join(self.server.data_dir, "browser", self.sid, "uploads")
        found = [os.path.join(d, f) for d, _, fs in os.walk(udir) for f in fs]
        self.assertEqual([os.path.basename(f) for f in found], ["notes.txt"])
        # several files need a multiple input
        two = [{"name": "a.txt", "contentBase64": b64(b"A")},
               {"name": "b.txt", "contentBase64": b64(b"BB")}]
        err = self.act({"action": "upload", "selector": "#one", "files": two}, 400)["error"]
        self.assertIn("multiple", err["message"])
        self.act({"action": "upload", "selector": "#many", "files": two})
        got = self.got(3)
        self.assertEqual(sorted((g["input"], g["name"], g["text"]) for g in got[1:]),
                         [("many", "a.txt", "A"), ("many", "b.txt", "BB")])

    def test_bad_uploads(self):
        self.nav("/upload.html")
        ok = [{"name": "x.txt", "contentBase64": b64(b"x")}]
        for files, field in (([{"name": "../evil", "contentBase64": "eA=="}], "files[0].name"),
                             ([{"name": "a/b", "contentBase64": "eA=="}], "files[0].name"),
                             ([{"name": "..", "contentBase64": "eA=="}], "files[0].name"),
                             ([{"name": "x", "contentBase64": "%%%"}], "files[0].contentBase64"),
                             ([{"name": "x"}], "files[0].contentBase64"),
                             (ok + ok, "files[1].name"), ([], "files"), ("x", "files")):
            err = self.act({"action": "upload", "selector": "#one", "files": files}, 400)["error"]
            self.assertIn(field, err["message"])
        err = self.act({"action": "upload", "selector": "#text", "files": ok}, 400)["error"]
        self.assertIn("not an <input type=file>", err["message"])
        err = self.act({"action": "upload", "selector": "#nope", "files": ok,
                        "timeoutMs": 300}, 422)["error"]
        self.assertEqual(err["code"], "element_not_found")
        self.act({"action": "upload", "selector": "[[", "files": ok}, 400)
        self.act({"action": "upload", "files": ok}, 400)
        self.assertEqual(self.js("window.got"), [])
        # nothing escaped the session directory
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "browser", "evil")))


if __name__ == "__main__":
    unittest.main()
