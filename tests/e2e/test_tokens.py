"""Scoped tokens: minted by the master token, shown once, scoped (403 outside their scope),
expiring, revocable, stored hashed, and still valid after a restart."""

import json
import os
import time
import unittest

from harness import Server, ServerTestCase


class TestTokens(ServerTestCase):
    def mint(self, scopes, **extra):
        r = self.server.post("/tokens", body=dict({"label": "t-" + "-".join(scopes),
                                                   "scopes": scopes}, **extra))
        self.assertEqual(r.status, 201, r)
        return r.json()

    def test_scopes_are_enforced(self):
        t = self.mint(["exec"])
        self.assertTrue(t["token"].startswith("sbx_"))
        self.assertEqual(t["scopes"], ["exec"])
        # a valid token may read the docs but not mint tokens or read metrics
        self.assertEqual(self.server.get("/openapi.json", token=t["token"]).status, 200)
        err = self.assertError(self.server.get("/metrics", token=t["token"]), 403, "forbidden")
        self.assertIn("admin", err["message"])
        self.assertError(self.server.get("/browser/sessions", token=t["token"]), 403, "forbidden")
        self.assertError(self.server.post("/tokens", body={"label": "x", "scopes": ["exec"]},
                                          token=t["token"]), 403, "forbidden")
        admin = self.mint(["admin"])
        self.assertEqual(self.server.get("/metrics", token=admin["token"]).status, 200)

    def test_list_hides_secrets_and_delete_revokes(self):
        t = self.mint(["browser"])
        listed = self.server.get("/tokens").json()["tokens"]
        mine = [x for x in listed if x["id"] == t["id"]]
        self.assertEqual(len(mine), 1)
        self.assertNotIn("token", mine[0])
        self.assertNotIn(t["token"], json.dumps(listed))
        self.assertEqual(self.server.delete("/tokens/" + t["id"]).status, 204)
        self.assertError(self.server.get("/openapi.json", token=t["token"]), 401, "unauthorized")
        self.assertError(self.server.delete("/tokens/" + t["id"]), 404, "not_found")

    def test_expiry(self):
        t = self.mint(["exec"], ttlSeconds=1)
        self.assertEqual(self.server.get("/openapi.json", token=t["token"]).status, 200)
        time.sleep(1.2)
        err = self.assertError(self.server.get("/openapi.json", token=t["token"]), 401)
        self.assertIn("expired", err["message"])

    def test_bad_requests_name_the_field(self):
        for body, field in (({"scopes": ["exec"]}, "label"),
                            ({"label": "x", "scopes": []}, "scopes"),
                            ({"label": "x", "scopes": ["root"]}, "scopes"),
                            ({"label": "x", "scopes": ["exec"], "ttlSeconds": 0}, "ttlSeconds"),
                            ({"label": "x", "scopes": ["exec"], "owner": "me"}, "owner")):
            err = self.assertError(self.server.post("/tokens", body=body), 400, "invalid_request")
            self.assertIn(field, err["message"])

    def test_label_length_bound(self):
        # the longest label a token keeps whole is accepted, one more byte is refused
        t = self.server.post("/tokens", body={"label": "L" * 63, "scopes": ["exec"]})
        self.assertEqual(t.status, 201, t)
        listed = [x["label"] for x in self.server.get("/tokens").json()["tokens"]]
        self.assertIn("L" * 63, listed)
        err = self.assertError(self.server.post("/tokens", body={"label": "L" * 64,
                                                                 "scopes": ["exec"]}),
                               400, "invalid_request")
        self.assertIn("1 to 63", err["message"])
        self.server.delete("/tokens/" + t.json()["id"])

    def test_stored_hashed(self):
        t = self.mint(["exec"])
        with open(os.path.join(self.server.data_dir, "tokens.json")) as f:
            stored = f.read()
        self.assertNotIn(t["token"], stored)
        self.assertIn(t["id"], stored)
        self.assertEqual(os.stat(os.path.join(self.server.data_dir, "tokens.json")).st_mode & 0o777,
                         0o600)


class TestTokensSurviveRestart(unittest.TestCase):
    def test_restart(self):
        first = Server()
        try:
            first.start()
            r = first.post("/tokens", body={"label": "keep", "scopes": ["exec"]})
            secret = r.json()["token"]
            self.assertEqual(first.stop(), 0)
            second = Server(reuse=first)
            second.start()
            try:
                self.assertEqual(second.get("/openapi.json", token=secret).status, 200)
            finally:
                self.assertEqual(second.stop(), 0)
        finally:
            first.cleanup()


if __name__ == "__main__":
    unittest.main()
