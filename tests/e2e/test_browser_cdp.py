"""CDP passthrough (GET /browser/sessions/{id}/cdp): a WebSocket client drives the session's
real Chromium next to the REST calls; what one side does the other sees. The client here is
a minimal RFC 6455 one, as a CDP library would speak it (masked frames, no extensions)."""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import unittest

from harness import BrowserSiteCase, Server

PAGES = {"/a": (200, "text/html", "<!doctype html><title>Page A</title><p id=p>from the site</p>")}


class WebSocket:
    def __init__(self, port, path, token):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n")[0].decode()
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (ln.decode().partition(":") for ln in head.split(b"\r\n")[1:])}
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.accepted = (self.status_line.startswith("HTTP/1.1 101")
                         and self.headers.get("sec-websocket-accept") == want)
        self.next_id = 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_text(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv_text(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            if b0 & 0x0F == 0x8:
                raise ConnectionError("close frame")
            msg += payload
            if b0 & 0x80:
                return msg.decode()

    def call(self, method, params=None, session=None):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.send_text(json.dumps(m))
        while True:
            r = json.loads(self.recv_text())
            if r.get("id") == self.next_id:
                return r

    def closed_within(self, seconds):
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (socket.timeout, OSError):
            return False

    def close(self):
        self.sock.close()


class TestCdpPassthrough(BrowserSiteCase):
    server_env = {"BROWSER_POOL_SIZE": "1"}
    pages = PAGES

    def session(self, server=None):
        srv = server or self.server
        r = srv.post("/browser/sessions", {})
        self.assertEqual(r.status, 201, r)
        return r.json()["sessionId"], r.json()["tabId"]

    def connect(self, sid, server=None, token=None):
        srv = server or self.server
        ws = WebSocket(srv.port, f"/browser/sessions/{sid}/cdp", token or srv.token)
        self.addCleanup(ws.close)
        return ws

    def test_drives_the_same_browser_as_the_rest_api(self):
        sid, tab = self.session()
        api = f"/browser/sessions/{sid}"
        r = self.server.post(f"{api}/navigate", {"url": self.site.url + "/a"})
        self.assertEqual(r.status, 200, r)
        ws = self.connect(sid)
        self.assertTrue(ws.accepted, ws.status_line)
        self.assertIn("Chrome/", ws.call("Browser.getVersion")["result"]["product"])
        pages = [t for t in ws.call("Target.getTargets")["result"]["targetInfos"]
                 if t["type"] == "page"]
        self.assertEqual([p["url"] for p in pages], [self.site.url + "/a"])
        # Change the page through CDP; the REST content sees it.
        att = ws.call("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True})
        cdp_sid = att["result"]["sessionId"]
        r = ws.call("Runtime.evaluate", {"expression": "document.getElementById('p').textContent"
                                         " = 'set over CDP'", "returnByValue": True}, cdp_sid)
        self.assertEqual(r["result"]["result"]["value"], "set over CDP")
        self.assertIn(b"set over CDP", self.server.get(f"{api}/content").body)
        # A tab opened over CDP joins the session's tab list.
        ws.call("Target.createTarget", {"url": self.site.url + "/a?cdp=1"})
        deadline = time.time() + 10
        urls = []
        while time.time() < deadline and not any("cdp=1" in u for u in urls):
            urls = [t["url"] for t in self.server.get(f"{api}/tabs").json()["tabs"]]
            time.sleep(0.1)
        self.assertTrue(any("cdp=1" in u for u in urls), urls)
        # Deleting the session ends the passthrough.
        self.assertEqual(self.server.delete(api).status, 204)
        self.assertTrue(ws.closed_within(10))

    def test_refusals(self):
        sid, _ = self.session()
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        r = self.server.get(f"/browser/sessions/{sid}/cdp")
        self.assertError(r, 400, "invalid_request")
        self.assertIn("WebSocket", r.json()["error"]["message"])
        ws = WebSocket(self.server.port, f"/browser/sessions/{sid}/cdp", "wrong-token")
        self.assertFalse(ws.accepted)
        self.assertIn(" 401", ws.status_line)
        ws.close()
        ws = WebSocket(self.server.port, "/browser/sessions/0123456789abcdef/cdp",
                       self.server.token)
        self.assertIn(" 404", ws.status_line)
        ws.close()
        # Raw CDP gets past the URL policy, so a token with only the browser scope may not.
        r = self.server.post("/tokens", {"label": "browser-only", "scopes": ["browser"]})
        self.assertEqual(r.status, 201, r)
        ws = WebSocket(self.server.port, f"/browser/sessions/{sid}/cdp", r.json()["token"])
        self.assertIn(" 403", ws.status_line)
        ws.close()
        r = self.server.post("/tokens", {"label": "admin", "scopes": ["browser", "admin"]})
        ws = WebSocket(self.server.port, f"/browser/sessions/{sid}/cdp", r.json()["token"])
        self.assertTrue(ws.accepted, ws.status_line)
        self.assertIn("result", ws.call("Browser.getVersion"))
        ws.close()
        # The session is still usable after all that.
        self.assertEqual(self.server.get(f"/browser/sessions/{sid}/tabs").status, 200)

    def test_traffic_keeps_the_session_and_shutdown_ends_the_link(self):
        with Server(env={"BROWSER_IDLE_TIMEOUT_S": "2", "BROWSER_POOL_SIZE": "0"}) as srv:
            sid, _ = self.session(srv)
            ws = self.connect(sid, srv)
            self.assertTrue(ws.accepted, ws.status_line)
            # Driven over CDP only for longer than the idle timeout: still there.
            for _ in range(14):
                self.assertIn("result", ws.call("Browser.getVersion"))
                time.sleep(0.5)
            listed = [s["sessionId"] for s in srv.get("/browser/sessions").json()["sessions"]]
            self.assertIn(sid, listed)
            started = time.monotonic()
            self.assertEqual(srv.stop(), 0)
            self.assertLess(time.monotonic() - started, 15)
            self.assertTrue(ws.closed_within(5))


if __name__ == "__main__":
    unittest.main()
