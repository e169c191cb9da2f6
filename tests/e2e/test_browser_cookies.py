"""A browser session's cookies (GET/POST/DELETE .../cookies) against real Chromium: cookies a
site set are listed, cookies a client sets reach the site in its requests, deleting removes
them, and one session never sees another's."""

import unittest

from harness import BrowserSiteCase


def login(h):
    body = b"<!doctype html><title>in</title><script>document.cookie = 'js=1; path=/';</script>"
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Set-Cookie", "sid=s3cret; Path=/; HttpOnly")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


PAGES = {
    "/login": login,
    "/page": (200, "text/html", "<!doctype html><title>page</title><p>hello</p>"),
}


class TestCookies(BrowserSiteCase):
    pages = PAGES

    def session(self):
        r = self.server.post("/browser/sessions", {})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        return f"/browser/sessions/{sid}"

    def nav(self, api, path):
        r = self.server.post(f"{api}/navigate", {"url": self.site.url + path})
        self.assertEqual(r.status, 200, r)

    def cookies(self, api, query=""):
        r = self.server.get(f"{api}/cookies{query}")
        self.assertEqual(r.status, 200, r)
        return {c["name"]: c for c in r.json()["cookies"]}

    def sent_cookie_header(self, path):
        return [h.get("Cookie", "") for (_, p, h, _) in self.site.requests if p == path][-1]

    def test_set_by_the_site_listed_and_isolated(self):
        api = self.session()
        self.assertEqual(self.cookies(api), {})
        self.nav(api, "/login")
        jar = self.cookies(api)
        self.assertEqual(set(jar), {"sid", "js"})
        self.assertEqual(jar["sid"]["value"], "s3cret")
        self.assertTrue(jar["sid"]["httpOnly"])
        self.assertEqual(jar["sid"]["domain"], "127.0.0.1")
        self.assertTrue(jar["js"]["session"])
        # Filtered by the URL a request would go to.
        self.assertEqual(set(self.cookies(api, f"?url={self.site.url}/page")), {"sid", "js"})
        self.assertEqual(self.cookies(api, "?url=http://example.com/"), {})
        # Another session has its own, empty jar.
        self.assertEqual(self.cookies(self.session()), {})

    def test_set_by_the_client_reaches_the_site_then_deleted(self):
        api = self.session()
        r = self.server.post(f"{api}/cookies", {"cookies": [
            {"name": "token", "value": "abc", "url": self.site.url + "/"},
            {"name": "pref", "value": "dark", "url": self.site.url + "/", "httpOnly": True,
             "sameSite": "Lax", "expires": 4102444800},
            {"name": "wide", "value": "1", "domain": ".example.com", "secure": True},
        ]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["set"], 3)
        jar = self.cookies(api)
        self.assertEqual(jar["pref"]["sameSite"], "Lax")
        self.assertFalse(jar["pref"]["session"])
        self.assertEqual(jar["wide"]["domain"], ".example.com")
        self.nav(api, "/page")
        sent = sorted(self.sent_cookie_header("/page").split("; "))
        self.assertEqual(sent, ["pref=dark", "token=abc"])

        r = self.server.delete(f"{api}/cookies?name=token")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["deleted"], 1)
        r = self.server.delete(f"{api}/cookies?domain=example.com")
        self.assertEqual(r.json()["deleted"], 1)
        self.assertEqual(set(self.cookies(api)), {"pref"})
        self.nav(api, "/page")
        self.assertEqual(self.sent_cookie_header("/page"), "pref=dark")
        r = self.server.delete(f"{api}/cookies")
        self.assertEqual(r.json()["deleted"], 1)
        self.assertEqual(self.cookies(api), {})
        self.nav(api, "/page")
        self.assertEqual(self.sent_cookie_header("/page"), "")

    def test_bad_cookies_are_400_naming_the_cookie(self):
        api = self.session()
        url = self.site.url + "/"
        for body, words in [
            ({}, ["cookies"]),
            ({"cookies": "sid=1"}, ["cookies", "array"]),
            ({"cookies": [{"name": "a", "value": "1"}]}, ["cookies[0]", "url", "domain"]),
            ({"cookies": [{"name": "a", "value": "1", "url": url},
                          {"name": "b", "value": 2, "url": url}]}, ["cookies[1]", "value"]),
            ({"cookies": [{"name": "a", "value": "1", "url": "file:///etc/passwd"}]},
             ["cookies[0]", "url"]),
            ({"cookies": [{"name": "a", "value": "1", "url": url, "sameSite": "Loose"}]},
             ["sameSite"]),
            ({"cookies": [{"name": "a", "value": "1", "url": url, "colour": "red"}]},
             ["colour"]),
            ({"cookies": [{"name": "a", "value": "1", "url": url},
                          {"name": "b;c", "value": "1", "url": url}]},
             ["cookies[1]", "refused"]),
        ]:
            r = self.server.post(f"{api}/cookies", body)
            self.assertEqual(r.status, 400, (body, r))
            for w in words:
                self.assertIn(w, r.json()["error"]["message"], body)
        # All checked before any is set, except what only Chromium can judge.
        self.assertEqual(set(self.cookies(api)), {"a"})
        r = self.server.get(f"{api}/cookies?url=ftp://x/")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.server.get("/browser/sessions/nope/cookies").status, 404)


if __name__ == "__main__":
    unittest.main()
