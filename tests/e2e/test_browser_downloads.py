"""Downloads of browser sessions against real Chromium and local pages: a file a page downloads
is kept in the session, listed, fetched back byte for byte and announced as events; names are
sanitized and unique, traversal is refused, the caps cancel what is too large, and a download
ends neither the session nor the call that caused it."""

import os
import time
import unittest
import urllib.parse

from harness import BrowserSiteCase, wait_until
from test_browser_events import Reader

HTML = "text/html; charset=utf-8"
SMALL = bytes(range(256)) * 40  # 10 KiB, every byte value
BIG = b"B" * 300_000


def attachment(name, body):
    def serve(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Disposition", f'attachment; filename="{name}"')
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return serve


PAGES = {
    "/links.html": (200, HTML, "<!doctype html><title>dl</title>"
                    "<a id=a href='/small.bin' download='report.bin'>a</a>"
                    "<a id=evil href='/evil'>evil</a>"
                    "<a id=big href='/big.bin'>big</a>"
                    "<p id=alive>still here</p>"),
    "/small.bin": (200, "application/octet-stream", SMALL),
    "/evil": attachment("../../.ssh/authorized_keys", b"evil"),
    "/big.bin": attachment("big.bin", BIG),
    "/attach": attachment("direct.txt", b"direct download"),
}


class TestDownloads(BrowserSiteCase):
    pages = PAGES
    server_env = {"BROWSER_DOWNLOAD_MAX_BYTES": "100000", "BROWSER_DOWNLOADS_MAX_BYTES": "25000"}

    def setUp(self):
        r = self.server.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        self.sid = r.json()["sessionId"]
        self.base = f"/browser/sessions/{self.sid}"
        self.addCleanup(lambda: self.server.delete(self.base))
        r = self.server.post(self.base + "/navigate", body={"url": self.site.url + "/links.html"})
        self.assertEqual(r.status, 200, r)

    def click(self, sel):
        r = self.server.post(self.base + "/action", body={"action": "click", "selector": sel})
        self.assertEqual(r.status, 200, r)

    def downloads(self):
        r = self.server.get(self.base + "/downloads")
        self.assertEqual(r.status, 200, r)
        return r.json()["downloads"]

    def settled(self, n):
        return wait_until(lambda: [d for d in self.downloads() if d["state"] != "inProgress"]
                          if len([d for d in self.downloads() if d["state"] != "inProgress"]) >= n
                          else None, 15) or self.downloads()

    def fetch(self, name):
        return self.server.get(self.base + "/downloads/" + urllib.parse.quote(name, safe=""))

    def test_download_is_kept_listed_fetched_and_announced(self):
        rd = Reader(self.server, self.sid, "?types=download")
        self.addCleanup(rd.close)
        self.assertEqual(self.downloads(), [])
        self.click("#a")
        got = self.settled(1)
        self.assertEqual(len(got), 1, got)
        d = got[0]
        self.assertEqual((d["name"], d["size"], d["state"]), ("report.bin", len(SMALL), "completed"))
        self.assertEqual(d["url"], self.site.url + "/small.bin")
        r = self.fetch("report.bin")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, SMALL)
        self.assertIn("report.bin", r.header("Content-Disposition"))
        # kept in the session's own directory
        ddir = os.path.join(self.server.data_dir, "browser", self.sid, "downloads")
        self.assertEqual([os.path.getsize(os.path.join(ddir, f)) for f in os.listdir(ddir)],
                         [len(SMALL)])
        # a second download of the same name gets a name of its own
        self.click("#a")
        got = self.settled(2)
        self.assertEqual([x["name"] for x in got], ["report.bin", "report (2).bin"])
        self.assertEqual(self.fetch("report (2).bin").body, SMALL)
        self.assertTrue(wait_until(lambda: len(rd.of("download")) >= 4, 10), rd.frames)
        states = [(f["name"], f["state"]) for f in rd.of("download")]
        self.assertEqual(states[:2], [("report.bin", "inProgress"), ("report.bin", "completed")])
        # the session goes on
        r = self.server.post(self.base + "/action",
                             body={"action": "evaluate", "expression": "alive.textContent"})
        self.assertEqual(r.json()["result"], "still here")

    def test_names_are_sanitized_and_traversal_refused(self):
        self.click("#evil")
        got = self.settled(1)
        name = got[0]["name"]
        self.assertEqual(got[0]["state"], "completed")
        self.assertNotIn("/", name)
        self.assertFalse(name.startswith("."))
        self.assertEqual(self.fetch(name).body, b"evil")
        for bad in ("../../etc/passwd", "..", "a/b", "..\\x"):
            r = self.fetch(bad)
            self.assertIn(r.status, (400, 404), r)
            if r.status == 400:
                self.assertError(r, 400, "invalid_request")
        self.assertError(self.fetch("nothing.bin"), 404, "not_found")
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, ".ssh")))

    def test_too_large_is_canceled(self):
        self.click("#big")
        got = self.settled(1)
        self.assertEqual(got[0]["state"], "canceled", got)
        self.assertIn("BROWSER_DOWNLOAD_MAX_BYTES", got[0]["reason"])
        self.assertError(self.fetch("big.bin"), 409, "conflict")
        ddir = os.path.join(self.server.data_dir, "browser", self.sid, "downloads")
        self.assertTrue(wait_until(lambda: not any(os.path.getsize(os.path.join(ddir, f)) > 100000
                                                   for f in os.listdir(ddir)), 5))

    def test_session_cap_cancels_what_would_pass_it(self):
        for i in range(3):  # 10 KiB each; the session may keep 25000 bytes
            self.click("#a")
            self.settled(i + 1)
        got = self.downloads()
        self.assertEqual([d["state"] for d in got], ["completed", "completed", "canceled"], got)
        self.assertIn("BROWSER_DOWNLOADS_MAX_BYTES", got[2]["reason"])
        self.assertEqual(self.fetch(got[1]["name"]).body, SMALL)

    def test_navigating_to_a_download_does_not_fail_the_call(self):
        t0 = time.time()
        r = self.server.post(self.base + "/navigate", body={"url": self.site.url + "/attach"})
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json().get("download"), "direct.txt")
        got = self.settled(1)
        self.assertEqual((got[0]["name"], got[0]["state"]), ("direct.txt", "completed"))
        self.assertEqual(self.fetch("direct.txt").body, b"direct download")
        r = self.server.get(self.base + "/tabs")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
