"""Tenancy: a browser session belongs to the token that created it. Another non-admin token
gets 404 for it (exactly as for an id that never existed) and does not see it in lists; the
master token and admin tokens see and manage every session, with its owner; a revoked token's
sessions keep running until they expire or an admin ends them."""

import unittest

from harness import BrowserSiteCase


class TestBrowserTenancy(BrowserSiteCase):
    pages = {"/": (200, "text/html", "<title>mine</title><p>hello</p>")}

    def mint(self, label, scopes):
        r = self.server.post("/tokens", body={"label": label, "scopes": scopes})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def create(self, token):
        r = self.server.post("/browser/sessions", body={}, token=token)
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(self.server.delete, "/browser/sessions/" + sid)
        return sid

    def listed(self, token):
        r = self.server.get("/browser/sessions", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()["sessions"]

    def test_another_token_cannot_see_or_touch_a_session(self):
        a = self.mint("tenant-a", ["browser"])
        b = self.mint("tenant-b", ["browser"])
        sid = self.create(a["token"])
        self.assertEqual([s["sessionId"] for s in self.listed(a["token"])], [sid])
        self.assertNotIn("owner", self.listed(a["token"])[0])  # owners are an admin's view
        self.assertEqual(self.listed(b["token"]), [])
        # every per-session call of B is the 404 of a session that does not exist
        never = self.server.get("/browser/sessions/0123456789abcdef01234567/tabs",
                                token=b["token"])
        err_never = self.assertError(never, 404, "not_found")
        for method, path, body in (
                ("GET", "/tabs", None), ("GET", "/content", None),
                ("POST", "/navigate", {"url": self.site.url + "/"}),
                ("POST", "/action", {"action": "evaluate", "expression": "1"}),
                ("GET", "/cookies", None), ("GET", "/screenshot", None),
                ("DELETE", "", None)):
            r = self.server.request(method, f"/browser/sessions/{sid}{path}", body=body,
                                    token=b["token"])
            err = self.assertError(r, 404, "not_found")
            self.assertEqual(err["message"].replace(sid, "ID"),
                             err_never["message"].replace("0123456789abcdef01234567", "ID"))
        # and the session is untouched: A still drives it
        r = self.server.post(f"/browser/sessions/{sid}/navigate",
                             body={"url": self.site.url + "/"}, token=a["token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["title"], "mine")

    def test_admins_see_and_manage_every_session_with_its_owner(self):
        a = self.mint("tenant-a2", ["browser"])
        admin = self.mint("ops", ["admin", "browser"])
        sid = self.create(a["token"])
        mine = self.create("default")  # the master token's own session
        for token in ("default", admin["token"]):
            owners = {s["sessionId"]: s["owner"] for s in self.listed(token)}
            self.assertEqual(owners.get(sid), a["id"])
            self.assertEqual(owners.get(mine), "master")
        self.assertNotIn(mine, [s["sessionId"] for s in self.listed(a["token"])])
        r = self.server.get(f"/browser/sessions/{sid}/tabs", token=admin["token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.server.delete(f"/browser/sessions/{sid}",
                                            token=admin["token"]).status, 204)
        self.assertEqual(self.listed(a["token"]), [])

    def test_a_revoked_tokens_sessions_live_on_until_an_admin_ends_them(self):
        a = self.mint("tenant-a3", ["browser"])
        sid = self.create(a["token"])
        self.assertEqual(self.server.delete("/tokens/" + a["id"]).status, 204)
        self.assertError(self.server.get("/browser/sessions", token=a["token"]), 401)
        owners = {s["sessionId"]: s["owner"] for s in self.listed("default")}
        self.assertEqual(owners.get(sid), a["id"])
        self.assertEqual(self.server.get(f"/browser/sessions/{sid}/tabs").status, 200)
        self.assertEqual(self.server.delete(f"/browser/sessions/{sid}").status, 204)


if __name__ == "__main__":
    unittest.main()
