"""Session options at create against real Chromium (pooled browsers, the default): viewport,
userAgent, locale and timezoneId are what the page itself sees, in the first tab, in a new tab
and in a popup; bad values are 400 naming the field."""

import unittest

from harness import BrowserSiteCase

HTML = "text/html; charset=utf-8"
PAGES = {
    "/p.html": (200, HTML, "<!doctype html><title>p</title>"
                "<meta name=viewport content='width=device-width'>"
                "<button id=b onclick=\"window.open('/p.html?popup')\">b</button>"),
}
PROBE = ("({w: innerWidth, h: innerHeight, ua: navigator.userAgent, lang: navigator.language,"
         " tz: Intl.DateTimeFormat().resolvedOptions().timeZone,"
         " num: (1234.5).toLocaleString(), off: new Date(2026, 0, 15).getTimezoneOffset()})")
OPTS = {"viewport": {"width": 801, "height": 603}, "userAgent": "SandboxTest/1.0 (probe)",
        "locale": "de-DE", "timezoneId": "Asia/Tokyo"}


class TestOptions(BrowserSiteCase):
    pages = PAGES

    def create(self, body, status=201):
        r = self.server.post("/browser/sessions", body=body)
        self.assertEqual(r.status, status, r)
        if status == 201:
            sid = r.json()["sessionId"]
            self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
            return sid, r.json()["tabId"]
        return r

    def probe(self, sid, tab=None):
        body = {"action": "evaluate", "expression": PROBE}
        if tab:
            body["tabId"] = tab
        r = self.server.post(f"/browser/sessions/{sid}/action", body=body)
        self.assertEqual(r.status, 200, r)
        return r.json()["result"]

    def nav(self, sid, path, tab=None):
        body = {"url": self.site.url + path}
        if tab:
            body["tabId"] = tab
        r = self.server.post(f"/browser/sessions/{sid}/navigate", body=body)
        self.assertEqual(r.status, 200, r)

    def check(self, got):
        self.assertEqual((got["w"], got["h"]), (801, 603), got)
        self.assertEqual(got["ua"], "SandboxTest/1.0 (probe)")
        self.assertEqual(got["lang"], "de-DE")
        self.assertEqual(got["tz"], "Asia/Tokyo")
        self.assertEqual(got["off"], -540)
        self.assertEqual(got["num"], "1.234,5")

    def test_every_tab_sees_the_options(self):
        sid, tab = self.create(OPTS)
        self.nav(sid, "/p.html")
        self.check(self.probe(sid))
        # a new tab
        r = self.server.post(f"/browser/sessions/{sid}/tabs", body={"url": self.site.url + "/p.html"})
        self.assertEqual(r.status, 201, r)
        self.check(self.probe(sid, r.json()["tabId"]))
        # a popup the page opens
        r = self.server.post(f"/browser/sessions/{sid}/action",
                             body={"action": "click", "selector": "#b", "tabId": tab})
        self.assertEqual(r.status, 200, r)
        tabs = None
        for _ in range(100):
            tabs = self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]
            pop = [t for t in tabs if t["url"].endswith("?popup")]
            if pop:
                break
            self.server.post(f"/browser/sessions/{sid}/action", body={
                "action": "evaluate", "expression": "new Promise(r => setTimeout(r, 50))",
                "tabId": tab})
        self.assertTrue(pop, tabs)
        self.check(self.probe(sid, pop[0]["tabId"]))
        # the request itself carries the user agent and the language
        _, _, headers, _ = [q for q in self.site.requests if q[1] == "/p.html?popup"][-1]
        self.assertEqual(headers.get("User-Agent"), "SandboxTest/1.0 (probe)")
        self.assertTrue(headers.get("Accept-Language", "").startswith("de-DE"), headers)

    def test_locale_alone_keeps_chromiums_user_agent(self):
        sid, _ = self.create({"locale": "fr-FR"})
        plain, _ = self.create({})
        self.nav(sid, "/p.html")
        self.nav(plain, "/p.html")
        got, ref = self.probe(sid), self.probe(plain)
        self.assertEqual(got["lang"], "fr-FR")
        self.assertEqual(got["ua"], ref["ua"])
        self.assertEqual((got["w"], got["tz"]), (ref["w"], ref["tz"]))

    def test_mobile_with_a_viewport(self):
        sid, _ = self.create({"device": "mobile", "viewport": {"width": 360, "height": 700}})
        self.nav(sid, "/p.html")
        got = self.probe(sid)
        self.assertEqual((got["w"], got["h"]), (360, 700))
        self.assertIn("Android", got["ua"])

    def test_bad_values_name_the_field(self):
        for body, field in (({"viewport": {"width": 10, "height": 600}}, "viewport.width"),
                            ({"viewport": {"width": 800}}, "viewport.height"),
                            ({"viewport": [800, 600]}, "viewport"),
                            ({"viewport": {"width": 800, "height": 600, "x": 1}}, "viewport"),
                            ({"userAgent": ""}, "userAgent"),
                            ({"userAgent": "a\nb"}, "userAgent"),
                            ({"userAgent": 5}, "userAgent"),
                            ({"locale": "not a locale"}, "locale"),
                            ({"locale": "x"}, "locale"),
                            ({"timezoneId": "Mars/Olympus"}, "timezoneId"),
                            ({"timezoneId": "../../etc/passwd"}, "timezoneId"),
                            ({"state": "x"}, "state"),
                            ({"device": "tablet"}, "device"),
                            ({"bogus": 1}, "bogus")):
            err = self.assertError(self.create(body, 400), 400, "invalid_request")
            self.assertIn(field, err["message"], body)
        self.assertEqual(self.server.get("/browser/sessions").json()["sessions"], [])


if __name__ == "__main__":
    unittest.main()
