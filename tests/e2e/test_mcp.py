"""POST /mcp: the Model Context Protocol endpoint over Streamable HTTP.

Raw HTTP against the real server for the protocol rules of each revision (2026-07-28 with its
per-request _meta and headers; the initialize handshake of 2025-11-25 / 2025-06-18), auth,
Origin, scopes and tenancy; then an agent's flow through the official clients from npm
(tests/mcp/flow.mjs: @modelcontextprotocol/sdk 1.x and @modelcontextprotocol/client 2.x),
skipped (and reported as skipped) when node or the packages are missing."""

import base64
import json
import os
import re
import shutil
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import BrowserSiteCase, ServerTestCase, SOURCE_DIR, wait_until

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test_mcp", "version": "1"}}
ACCEPT = "application/json, text/event-stream"

FORM = """<!doctype html><title>MCP form</title>
<input id=name aria-label="Your name"><button id=go onclick="setTimeout(() => {
  const o = document.getElementById('out');
  o.textContent = 'Hello, ' + document.getElementById('name').value; o.className = 'done';
}, 50)">Go</button><p id=out></p>"""


class McpHelpers:
    """JSON-RPC over POST /mcp for both eras."""
    def post(self, msg, headers=None, token="default", raw=None):
        h = {"Accept": ACCEPT, "Content-Type": "application/json"}
        h.update(headers or {})
        if raw is not None:
            return self.server.request("POST", "/mcp", raw=raw, headers=h, token=token)
        return self.server.request("POST", "/mcp", body=msg, headers=h, token=token)

    def legacy(self, method, params=None, id=1, version="2025-11-25", **kw):
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        return self.post(msg, headers={"MCP-Protocol-Version": version}, **kw)

    def modern(self, method, params=None, id=1, headers=None, meta=META, **kw):
        p = dict(params or {})
        if meta is not None:
            p["_meta"] = meta
        h = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if method == "tools/call":
            h["Mcp-Name"] = p.get("name", "")
        h.update(headers or {})
        return self.post({"jsonrpc": "2.0", "id": id, "method": method, "params": p},
                         headers={k: v for k, v in h.items() if v is not None}, **kw)

    def result(self, r, status=200):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["jsonrpc"], "2.0")
        self.assertNotIn("error", body, r)
        return body["result"]

    def rpc_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"]["code"], code, r)
        self.assertTrue(body["error"]["message"])
        return body

    def call(self, name, args, modern=False, token="default"):
        params = {"name": name, "arguments": args}
        r = (self.modern("tools/call", params, token=token) if modern
             else self.legacy("tools/call", params, token=token))
        return self.result(r)

    def mint(self, label, scopes):
        r = self.server.post("/tokens", body={"label": label, "scopes": scopes})
        self.assertEqual(r.status, 201, r)
        return r.json()["token"]



class McpProtocolTest(McpHelpers, ServerTestCase):
    """The protocol, auth and tools that need no browser (these run without Chromium)."""

    # ---- version negotiation and lifecycle ----
    def test_initialize_negotiates_each_legacy_revision(self):
        for asked, got in (("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                           ("2025-03-26", "2025-03-26"), ("2024-01-01", "2025-11-25")):
            res = self.result(self.legacy("initialize", {
                "protocolVersion": asked, "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}))
            self.assertEqual(res["protocolVersion"], got, asked)
            self.assertIn("tools", res["capabilities"])
            self.assertEqual(res["serverInfo"]["name"], "sandboxd")
            self.assertIn("browser_session_create", res["instructions"])
        # no MCP session is issued: state travels as explicit sessionId arguments
        r = self.legacy("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
        self.assertIsNone(r.header("Mcp-Session-Id"))

    def test_notifications_are_accepted_with_202(self):
        for method in ("notifications/initialized", "notifications/cancelled"):
            r = self.post({"jsonrpc": "2.0", "method": method})
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.body, b"")

    def test_modern_discover_and_per_request_metadata(self):
        res = self.result(self.modern("server/discover"))
        self.assertEqual(res["resultType"], "complete")
        self.assertEqual(res["supportedVersions"][0], MODERN)
        self.assertIn("2025-11-25", res["supportedVersions"])
        self.assertIn("tools", res["capabilities"])
        self.assertEqual(res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "sandboxd")
        self.assertGreaterEqual(res["ttlMs"], 0)
        self.assertIn(res["cacheScope"], ("public", "private"))
        # an unsupported version: the modern error, listing what is supported
        body = self.rpc_error(self.modern("tools/list", meta=dict(
            META, **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"}),
            headers={"MCP-Protocol-Version": "2099-01-01"}), 400, -32022)
        self.assertIn(MODERN, body["error"]["data"]["supported"])
        self.assertEqual(body["error"]["data"]["requested"], "2099-01-01")
        # required _meta fields missing: -32602, 400
        self.rpc_error(self.modern("tools/list", meta={
            "io.modelcontextprotocol/protocolVersion": MODERN}), 400, -32602)
        self.rpc_error(self.modern("tools/list", meta=None), 400, -32602)
        # headers that do not match the body: HeaderMismatch
        self.rpc_error(self.modern("tools/list", headers={"Mcp-Method": "tools/call"}), 400,
                       -32020)
        self.rpc_error(self.modern("tools/list", headers={"Mcp-Method": None}), 400, -32020)
        self.rpc_error(self.modern("tools/list", headers={"MCP-Protocol-Version": None}), 400,
                       -32020)
        self.rpc_error(self.modern("tools/call", {"name": "python_run", "arguments": {}},
                                   headers={"Mcp-Name": "browser_navigate"}), 400, -32020)
        # Mcp-Name may come base64-encoded
        enc = "=?base64?" + base64.b64encode(b"python_run").decode() + "?="
        res = self.result(self.modern("tools/call", {"name": "python_run",
                                                     "arguments": {"code": "print(1)"}},
                                      headers={"Mcp-Name": enc}))
        self.assertEqual(res["structuredContent"]["stdout"], "1\n")
        # modern has no ping; an unknown method is 404 + -32601
        self.rpc_error(self.modern("ping"), 404, -32601)
        self.rpc_error(self.modern("no/such"), 404, -32601)

    def test_legacy_errors(self):
        self.rpc_error(self.legacy("no/such"), 200, -32601)
        self.assertEqual(self.result(self.legacy("ping")), {})
        # an unsupported MCP-Protocol-Version header
        self.rpc_error(self.legacy("tools/list", version="1999-01-01"), 400, -32600)
        # a request without the header counts as 2025-03-26
        r = self.post({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        self.assertTrue(self.result(r)["tools"])

    def test_malformed_messages(self):
        self.rpc_error(self.post(None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": '), 400,
                       -32700)
        self.rpc_error(self.post(None, raw=b""), 400, -32700)
        self.rpc_error(self.post(None, raw=b'{"jsonrpc":"2.0","id":1,"method":"ping"'
                                           b',"x":"\xff"}'), 400, -32700)
        body = self.rpc_error(self.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]), 400,
                              -32600)
        self.assertIn("batch", body["error"]["message"])
        self.rpc_error(self.post({"id": 1, "method": "ping"}), 400, -32600)
        self.rpc_error(self.post({"jsonrpc": "2.0", "id": None, "method": "ping"}), 400,
                       -32600)
        self.rpc_error(self.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                  "params": [1]}), 400, -32600)
        # invalid params
        self.rpc_error(self.legacy("tools/call", {"arguments": {}}), 200, -32602)
        self.rpc_error(self.legacy("tools/call", {"name": "python_run", "arguments": [1]}), 200,
                       -32602)
        body = self.rpc_error(self.legacy("tools/call", {"name": "no_such_tool"}), 200, -32602)
        self.assertIn("no_such_tool", body["error"]["message"])
        self.rpc_error(self.legacy("initialize", {}), 200, -32602)
        self.rpc_error(self.modern("tools/call", {"name": "nope", "arguments": {}}), 400, -32602)

    def test_optional_features_not_offered_are_method_not_found(self):
        # what the conformance suite's logging, completion, resources and prompts scenarios
        # ask (tests/e2e/test_mcp_conformance.py): absent, not declared, -32601 naming the method
        caps = self.result(self.legacy("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}))["capabilities"]
        self.assertEqual(set(caps), {"tools"})
        for method, params in (("logging/setLevel", {"level": "info"}),
                               ("completion/complete", {"ref": {"type": "ref/prompt",
                                                                "name": "p"},
                                                        "argument": {"name": "a", "value": ""}}),
                               ("resources/list", {}), ("resources/templates/list", {}),
                               ("resources/read", {"uri": "test://static-text"}),
                               ("resources/subscribe", {"uri": "test://static-text"}),
                               ("prompts/list", {}), ("prompts/get", {"name": "p"})):
            body = self.rpc_error(self.legacy(method, params), 200, -32601)
            self.assertIn(method, body["error"]["message"])

    def test_concurrent_sse_answers_stay_apart(self):
        # the substance of the suite's server-sse-multiple-streams, which stops early here
        # because no Mcp-Session-Id is issued: concurrent POSTs each get their own stream
        def one(i):
            return self.post({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/list"},
                             headers={"Accept": "text/event-stream"})
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(one, range(3)))
        for i, r in enumerate(answers):
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.header("Content-Type").startswith("text/event-stream"))
            data = [line[5:].strip() for line in r.body.decode().splitlines()
                    if line.startswith("data:")]
            msg = json.loads(data[0])
            self.assertEqual(msg["id"], 1000 + i)
            self.assertIn("python_run", [t["name"] for t in msg["result"]["tools"]])

    def test_answers_sse_when_the_client_accepts_only_that(self):
        r = self.post({"jsonrpc": "2.0", "id": 7, "method": "ping"},
                      headers={"Accept": "text/event-stream"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/event-stream"))
        data = [line[5:].strip() for line in r.body.decode().splitlines()
                if line.startswith("data:")]
        self.assertEqual(json.loads(data[0]), {"jsonrpc": "2.0", "id": 7, "result": {}})
        r = self.post({"jsonrpc": "2.0", "id": 7, "method": "ping"},
                      headers={"Accept": "text/html"})
        self.assertEqual(r.status, 406, r)
        r = self.post(None, raw=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
                      headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415, r)

    def test_get_and_delete_are_405(self):
        for method in ("GET", "DELETE"):
            r = self.server.request(method, "/mcp", headers={"Accept": "text/event-stream",
                                                             "Mcp-Session-Id": "whatever"})
            self.assertError(r, 405, "method_not_allowed")
            self.assertEqual(r.header("Allow"), "POST")

    def test_a_session_id_is_ignored(self):
        # the server issues none, so none is required and a stale or made-up one changes nothing
        r = self.post(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "not-issued"})
        self.assertTrue(self.result(r)["tools"])

    # ---- security ----
    def test_origin_is_checked(self):
        for origin in ("http://evil.example", "null", "http://127.0.0.1.evil.example:8080"):
            r = self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                          headers={"Origin": origin})
            self.rpc_error(r, 403, -32600)
        for origin in (f"http://127.0.0.1:{self.server.port}", "http://localhost:3000",
                       "http://[::1]:8080"):
            r = self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                          headers={"Origin": origin})
            self.assertEqual(self.result(r), {}, origin)

    def test_missing_or_wrong_token_is_401(self):
        for token in (None, "wrong"):
            r = self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=token)
            self.assertError(r, 401, "unauthorized")
            self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))

    def test_scopes_limit_the_tools(self):
        exec_only = self.mint("mcp-exec", ["exec"])
        names = [t["name"] for t in self.result(self.legacy("tools/list",
                                                            token=exec_only))["tools"]]
        self.assertIn("python_run", names)  # and the Python session tools: python_* only
        self.assertEqual([n for n in names if not n.startswith("python_")], [])
        res = self.call("browser_session_create", {}, token=exec_only)
        self.assertTrue(res["isError"])
        self.assertIn("'browser' scope", res["content"][0]["text"])
        browser_only = self.mint("mcp-browser", ["browser"])
        names = [t["name"] for t in self.result(self.legacy("tools/list",
                                                            token=browser_only))["tools"]]
        self.assertNotIn("python_run", names)
        self.assertIn("browser_navigate", names)


    def test_tools_list_and_cursor(self):
        for modern in (False, True):
            r = self.modern("tools/list") if modern else self.legacy("tools/list")
            res = self.result(r)
            tools = res["tools"]
            names = [t["name"] for t in tools]
            self.assertEqual(len(names), len(set(names)))
            for want in ("python_run", "browser_session_create", "browser_session_close",
                         "browser_navigate", "browser_content", "browser_click", "browser_type",
                         "browser_fill", "browser_press", "browser_select", "browser_hover",
                         "browser_scroll", "browser_evaluate", "browser_screenshot",
                         "browser_tabs_list", "browser_tab_new", "browser_tab_close",
                         "browser_cookies_get"):
                self.assertIn(want, names)
            for t in tools:
                self.assertEqual(t["inputSchema"]["type"], "object", t["name"])
                self.assertGreater(len(t["description"]), 40, t["name"])
            self.assertNotIn("nextCursor", res)  # one page holds them all
            if modern:
                self.assertEqual(res["resultType"], "complete")
                self.assertEqual(res["cacheScope"], "private")
        # the cursor format is this server's: "tools:N" starts at the N-th tool
        rest = self.result(self.legacy("tools/list", {"cursor": "tools:3"}))["tools"]
        self.assertEqual([t["name"] for t in rest], names[3:])
        self.rpc_error(self.legacy("tools/list", {"cursor": "garbage"}), 200, -32602)
        self.rpc_error(self.modern("tools/list", {"cursor": "tools:9999"}), 400, -32602)

    def test_tool_call_success_and_tool_errors(self):
        res = self.call("python_run", {"code": "print(6 * 7)"}, modern=True)
        self.assertFalse(res["isError"])
        self.assertEqual(res["structuredContent"]["stdout"], "42\n")
        self.assertEqual(json.loads(res["content"][0]["text"])["exitCode"], 0)
        # a REST validation error: isError with REST's message, word for word
        res = self.call("python_run", {"code": "1", "timeoutMs": 0})
        self.assertTrue(res["isError"])
        res = self.call("python_run", {"code": "1", "timeoutMs": 999999})
        self.assertTrue(res["isError"])
        rest = self.server.post("/execute", body={"code": "1", "timeoutMs": 999999})
        self.assertError(rest, 400)
        # the schema check speaks first for what the schema says
        res = self.call("python_run", {})
        self.assertTrue(res["isError"])
        self.assertIn("'code'", res["content"][0]["text"])
        res = self.call("python_run", {"code": 5})
        self.assertIn("must be a string", res["content"][0]["text"])
        res = self.call("python_run", {"code": "1", "bogus": 1})
        self.assertIn("unknown argument 'bogus'", res["content"][0]["text"])
        res = self.call("browser_tabs_list", {"sessionId": "../../tokens"})
        self.assertTrue(res["isError"])
        # an unknown session: REST's 404 message
        res = self.call("browser_navigate", {"sessionId": "0123456789abcdef01234567",
                                             "url": "http://127.0.0.1:9/form"})
        self.assertTrue(res["isError"])
        rest = self.server.post("/browser/sessions/0123456789abcdef01234567/navigate",
                                body={"url": "http://127.0.0.1:9/form"})
        self.assertEqual(res["content"][0]["text"], rest.json()["error"]["message"])


class McpBrowserTest(McpHelpers, BrowserSiteCase):
    """Browser tools, tenancy and the official clients' agent flow (need Chromium)."""

    pages = {"/form": (200, "text/html", FORM),
             "/big": (200, "text/html", "<p>" + "x" * 50000 + "</p>"),
             "/file": (200, "text/html",
                       "<title>file</title><input type=file id=f>"
                       "<script>document.getElementById('f').onchange = async (e) => {"
                       " document.title = 'got ' + await e.target.files[0].text(); };</script>")}

    def test_tenancy_another_token_does_not_find_the_session(self):
        a, b = self.mint("mcp-a", ["browser"]), self.mint("mcp-b", ["browser"])
        sid = self.call("browser_session_create", {}, token=a)["structuredContent"]["sessionId"]
        try:
            res = self.call("browser_tabs_list", {"sessionId": sid}, token=b)
            self.assertTrue(res["isError"])
            rest = self.server.get(f"/browser/sessions/{sid}/tabs", token=b)
            self.assertEqual(res["content"][0]["text"], rest.json()["error"]["message"])
            self.assertEqual(res["structuredContent"]["status"], 404)
            self.assertFalse(self.call("browser_tabs_list", {"sessionId": sid},
                                       token=a)["isError"])
        finally:
            self.assertFalse(self.call("browser_session_close", {"sessionId": sid},
                                       token=a)["isError"])

    def test_history_and_upload_tools(self):
        sid = self.call("browser_session_create", {})["structuredContent"]["sessionId"]
        try:
            for path in ("/form", "/file"):
                self.call("browser_navigate", {"sessionId": sid, "url": self.site.url + path})
            res = self.call("browser_back", {"sessionId": sid})
            self.assertFalse(res["isError"], res)
            self.assertTrue(res["structuredContent"]["url"].endswith("/form"))
            res = self.call("browser_forward", {"sessionId": sid})
            self.assertTrue(res["structuredContent"]["url"].endswith("/file"), res)
            self.assertFalse(self.call("browser_reload", {"sessionId": sid})["isError"])
            ref = re.search(r"\[ref=(e\d+)\]", self.call(
                "browser_snapshot", {"sessionId": sid})["structuredContent"]["snapshot"])
            self.assertIsNotNone(ref)
            res = self.call("browser_upload", {"sessionId": sid, "ref": ref.group(1), "files": [
                {"name": "a.txt", "contentBase64": base64.b64encode(b"hello").decode()}]})
            self.assertFalse(res["isError"], res)
            # The page reads the file in its change handler, asynchronously.
            def title():
                return self.call("browser_evaluate", {"sessionId": sid, "expression":
                                                      "document.title"})["structuredContent"]
            self.assertTrue(wait_until(lambda: title()["result"] == "got hello", 5), title())
            self.assertFalse(self.call("browser_reload", {"sessionId": sid})["isError"])
            res = self.call("browser_upload", {"sessionId": sid, "ref": ref.group(1), "files": [
                {"name": "b.txt", "contentBase64": ""}]})
            self.assertEqual(res["structuredContent"]["error"]["code"], "stale_ref", res)
            res = self.call("browser_forward", {"sessionId": sid})
            self.assertTrue(res["isError"])
            self.assertEqual(res["structuredContent"]["status"], 409)
        finally:
            self.assertFalse(self.call("browser_session_close", {"sessionId": sid})["isError"])

    # ---- tools ----
    def test_browser_tools_end_to_end(self):
        sid = self.call("browser_session_create", {"device": "desktop"},
                        modern=True)["structuredContent"]["sessionId"]
        try:
            nav = self.call("browser_navigate", {"sessionId": sid, "url": self.site.url + "/big"})
            self.assertEqual(nav["structuredContent"]["status"], 200)
            # content is capped, and says how to read on
            res = self.call("browser_content", {"sessionId": sid, "maxChars": 1000})
            text = res["content"][0]["text"]
            self.assertLess(len(text), 1300)
            self.assertIn("offset", text)
            res = self.call("browser_content", {"sessionId": sid})
            self.assertLess(len(res["content"][0]["text"]), 20300)
            res = self.call("browser_content", {"sessionId": sid, "offset": 49000,
                                                "maxChars": 100000})
            self.assertIn("</p>", res["content"][0]["text"])
            # the snapshot is text for the model, the object as structuredContent
            res = self.call("browser_snapshot", {"sessionId": sid, "maxChars": 300})
            self.assertFalse(res["isError"], res)
            self.assertTrue(res["structuredContent"]["truncated"])
            self.assertIn("cut at maxChars", res["content"][0]["text"])
            self.assertTrue(res["content"][0]["text"].startswith(
                res["structuredContent"]["snapshot"]))
            res = self.call("browser_links", {"sessionId": sid})
            self.assertFalse(res["isError"], res)
            self.assertIsInstance(res["structuredContent"]["links"], list)
            res = self.call("browser_click", {"sessionId": sid, "ref": "e999999",
                                              "timeoutMs": 300})
            self.assertEqual(res["structuredContent"]["error"]["code"], "stale_ref")
            # a URL REST refuses is refused alike
            res = self.call("browser_navigate", {"sessionId": sid, "url": "file:///etc/passwd"})
            self.assertTrue(res["isError"])
            tab = self.call("browser_tab_new", {"sessionId": sid,
                                                "url": self.site.url + "/form"})
            tab_id = tab["structuredContent"]["tabId"]
            tabs = self.call("browser_tabs_list", {"sessionId": sid})["structuredContent"]["tabs"]
            self.assertEqual(len(tabs), 2)
            self.call("browser_type", {"sessionId": sid, "selector": "#name", "text": "ab"})
            self.call("browser_press", {"sessionId": sid, "key": "Backspace"})
            val = self.call("browser_evaluate", {"sessionId": sid,
                                                 "expression": "document.querySelector('#name').value"})
            self.assertEqual(val["structuredContent"]["result"], "a")
            self.assertFalse(self.call("browser_hover", {"sessionId": sid,
                                                         "selector": "#go"})["isError"])
            self.assertFalse(self.call("browser_scroll", {"sessionId": sid, "x": 0,
                                                          "y": 0})["isError"])
            shot = self.call("browser_screenshot", {"sessionId": sid, "format": "jpeg",
                                                    "quality": 50})
            self.assertEqual(shot["content"][0]["type"], "image")
            self.assertEqual(shot["content"][0]["mimeType"], "image/jpeg")
            self.assertEqual(base64.b64decode(shot["content"][0]["data"])[:2], b"\xff\xd8")
            cookies = self.call("browser_cookies_get", {"sessionId": sid})
            self.assertEqual(cookies["structuredContent"]["cookies"], [])
            res = self.call("browser_tab_close", {"sessionId": sid, "tabId": tab_id})
            self.assertFalse(res["isError"])
            res = self.call("browser_click", {"sessionId": sid, "selector": "#none",
                                              "timeoutMs": 200})
            self.assertTrue(res["isError"])
            self.assertEqual(res["structuredContent"]["error"]["code"], "element_not_found")
        finally:
            self.assertFalse(self.call("browser_session_close", {"sessionId": sid})["isError"])

    # ---- the official clients ----
    def flow(self, kind):
        node = shutil.which("node")
        mods = os.path.join(SOURCE_DIR, "tests", "mcp", "node_modules", "@modelcontextprotocol")
        pkg = {"sdk": "sdk", "client2": "client"}[kind]
        if not node:
            self.skipTest("node is not installed")
        if not os.path.isdir(os.path.join(mods, pkg)):
            self.skipTest(f"@modelcontextprotocol/{pkg} is not installed (npm ci in tests/mcp)")
        p = subprocess.run(
            [node, os.path.join(SOURCE_DIR, "tests", "mcp", "flow.mjs"), kind,
             f"http://127.0.0.1:{self.server.port}/mcp", self.server.token, self.site.url],
            capture_output=True, text=True, timeout=120, cwd=os.path.join(SOURCE_DIR, "tests", "mcp"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["server"], "sandboxd")
        self.assertIn("python_run", out["tools"])
        self.assertIn("browser_screenshot", out["tools"])
        self.assertEqual(out["stdout"], "45\n")
        self.assertEqual(out["title"], "MCP form")
        self.assertEqual(out["result"], "Hello, MCP agent")
        self.assertTrue(out["contentHasResult"])
        self.assertTrue(out["snapshotHasResult"])
        self.assertTrue(out["markdownHasResult"])
        self.assertEqual(out["staleCode"], "stale_ref")
        for tool in ("browser_snapshot", "browser_markdown", "browser_links"):
            self.assertIn(tool, out["tools"])
        self.assertEqual(out["imageMime"], "image/png")
        self.assertEqual(out["imageMagic"], "89504e470d0a1a0a")
        self.assertIn("#nope", out["errorText"])
        self.assertIn("no browser session", out["afterClose"])
        return out

    def test_flow_with_the_official_sdk(self):
        out = self.flow("sdk")
        self.assertEqual(out["version"], "2025-11-25")

    def test_flow_with_the_2x_client_on_the_stateless_revision(self):
        out = self.flow("client2")
        self.assertEqual(out["version"], MODERN)


if __name__ == "__main__":
    unittest.main()
