"""Screenshots and PDFs beyond the basics in test_browser_actions.py: a phone's device scale in
the image size, element clips scrolled into view, JPEG quality, bad selectors and PDF bytes."""

import struct
import unittest

from harness import LocalSite, ServerTestCase

PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width"><title>cap</title><style>
body { margin: 0; } #top { height: 2500px; background: #eee; }
#el { width: 50px; height: 30px; background: #f00; }
</style></head><body><div id="top">tall</div><div id="el"></div></body></html>"""


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return struct.unpack(">II", data[16:24])


class TestCapture(ServerTestCase):
    def shoot(self, sid, query="", status=200):
        r = self.server.get(f"/browser/sessions/{sid}/screenshot{query}")
        self.assertEqual(r.status, status, r)
        return r

    def open(self, site, device):
        r = self.server.post("/browser/sessions", {"device": device})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        r = self.server.post(f"/browser/sessions/{sid}/navigate", {"url": site.url + "/p"})
        self.assertEqual(r.status, 200, r)
        return sid

    def test_desktop_and_mobile(self):
        with LocalSite({"/p": (200, "text/html", PAGE)}) as site:
            sid = self.open(site, "desktop")
            w, h = png_size(self.shoot(sid).body)
            fw, fh = png_size(self.shoot(sid, "?fullPage=true").body)
            self.assertEqual(fw, w)
            self.assertEqual(fh, 2530)
            # The element sits below the fold: the clip still has its own size.
            self.assertEqual(png_size(self.shoot(sid, "?selector=%23el").body), (50, 30))
            hi = self.shoot(sid, "?format=jpeg&quality=95").body
            lo = self.shoot(sid, "?format=jpeg&quality=5").body
            self.assertEqual(hi[:3], b"\xff\xd8\xff")
            self.assertEqual(lo[:3], b"\xff\xd8\xff")
            self.assertLess(len(lo), len(hi))
            err = self.shoot(sid, "?selector=a%5B", 400).json()["error"]
            self.assertIn("selector", err["message"])
            pdf = self.server.get(f"/browser/sessions/{sid}/pdf")
            self.assertEqual(pdf.status, 200, pdf)
            self.assertEqual(pdf.header("Content-Type"), "application/pdf")
            self.assertTrue(pdf.body.startswith(b"%PDF-"))
            self.assertIn(b"%%EOF", pdf.body[-64:])

            mid = self.open(site, "mobile")
            mw, mh = png_size(self.shoot(mid).body)
            css_w = self.server.post(f"/browser/sessions/{mid}/action",
                                     {"action": "evaluate", "expression": "innerWidth"})
            self.assertEqual(mw, css_w.json()["result"] * 3)  # device scale 3
            self.assertGreater(mh, mw)
            self.assertEqual(png_size(self.shoot(mid, "?selector=%23el").body), (150, 90))


if __name__ == "__main__":
    unittest.main()
