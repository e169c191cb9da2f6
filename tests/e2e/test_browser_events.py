"""Live events of browser sessions (GET /browser/sessions/{id}/events) against real Chromium
and local pages: console, navigation, network, dialog and tab frames as a page makes them,
the type filter, replay after a disconnect (Last-Event-ID, from) and the gap frame, a slow
reader dropped while the session goes on, several readers, and the end of the stream with the
session (closed, or its Chromium killed)."""

import http.client
import json
import os
import signal
import socket
import threading
import time
import unittest

from harness import BrowserSiteCase, live_pids_with_marker, wait_until

HTML = "text/html; charset=utf-8"
PAGES = {
    "/events.html": (200, HTML, "<!doctype html><title>ev</title><script>"
                     "console.log('hello', 42, true, null);"
                     "console.warn('careful');"
                     "fetch('/data.json', {method: 'POST', body: 'SECRET-BODY'})"
                     ".then(r => r.text()).then(t => console.log('fetched ' + t.length));"
                     "</script>"),
    "/data.json": (200, "application/json", '{"answer": 42, "pad": "' + "p" * 500 + '"}'),
    "/dialog.html": (200, HTML, "<!doctype html><title>d</title><button id=b "
                     "onclick=\"alert('hi there')\">b</button>"),
    "/opener.html": (200, HTML, "<!doctype html><title>o</title><button id=b "
                     "onclick=\"window.open('/data.json')\">b</button>"),
    "/quiet.html": (200, HTML, "<!doctype html><title>q</title>"),
}


class Reader:
    """One SSE client of a session's events on its own thread: .frames collects
    (event, data, id) in arrival order; .ended turns true when the stream ended."""

    def __init__(self, server, sid, query="", headers=None, rcvbuf=None, start=True):
        self.frames, self.ended, self.status = [], False, None
        self.lock = threading.Lock()
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        if rcvbuf:
            self.conn.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.conn.sock.settimeout(60)
            self.conn.sock.connect(("127.0.0.1", server.port))
        h = {"Authorization": "Bearer " + server.token}
        h.update(headers or {})
        self.conn.request("GET", f"/browser/sessions/{sid}/events{query}", headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.thread = None
        if start and self.status == 200:
            self.start()

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        event, fid = None, None
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    fid = int(line[4:])
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    with self.lock:
                        self.frames.append((event, json.loads(line[6:]), fid))
                    event, fid = None, None
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # AttributeError: close() from the test thread while a read was under way
            pass
        self.ended = True

    def of(self, kind):
        with self.lock:
            return [d for e, d, _ in self.frames if e == kind]

    def wait_for(self, pred, timeout=15):
        return wait_until(lambda: pred(self), timeout)

    def close(self):
        try:
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        if self.thread:
            self.thread.join(10)


class EventsCase(BrowserSiteCase):
    pages = PAGES

    def new_session(self):
        r = self.server.post("/browser/sessions", body={})
        self.assertEqual(r.status, 201, r)
        sid, tab = r.json()["sessionId"], r.json()["tabId"]
        self.addCleanup(lambda: self.server.delete(f"/browser/sessions/{sid}"))
        return sid, tab

    def reader(self, sid, query="", **kw):
        rd = Reader(self.server, sid, query, **kw)
        self.addCleanup(rd.close)
        return rd

    def nav(self, sid, path):
        r = self.server.post(f"/browser/sessions/{sid}/navigate",
                             body={"url": self.site.url + path})
        self.assertEqual(r.status, 200, r)

    def act(self, sid, body):
        r = self.server.post(f"/browser/sessions/{sid}/action", body=body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def log_many(self, sid, n, size=10, first=0):
        """Log n messages 'mI <pad>', I from `first` on, in one evaluate."""
        self.act(sid, {"action": "evaluate", "expression":
                       f"(() => {{ const pad = 'x'.repeat({size}); for (let i = {first}; "
                       f"i < {first + n}; i++) console.log('m' + i + ' ' + pad); return true; }})()"})


class TestFrames(EventsCase):
    def test_page_activity_becomes_typed_frames(self):
        sid, tab = self.new_session()
        rd = self.reader(sid)
        self.assertEqual(rd.status, 200)
        self.assertTrue(rd.resp.getheader("Content-Type").startswith("text/event-stream"))
        self.nav(sid, "/events.html")
        self.assertTrue(rd.wait_for(lambda r: any(d["text"].startswith("fetched")
                                                  for d in r.of("console"))), rd.frames)
        texts = [d["text"] for d in rd.of("console")]
        self.assertIn("hello 42 true null", texts)
        self.assertEqual([d["level"] for d in rd.of("console") if d["text"] == "careful"],
                         ["warning"])
        navs = [d["url"] for d in rd.of("navigation")]
        self.assertIn(self.site.url + "/events.html", navs)
        reqs = [d for d in rd.of("request") if d["url"].endswith("/data.json")]
        self.assertEqual(len(reqs), 1, rd.of("request"))
        self.assertEqual(reqs[0]["method"], "POST")
        self.assertTrue(rd.wait_for(lambda r: [d for d in r.of("response")
                                               if d["url"].endswith("/data.json")]))
        resp = [d for d in rd.of("response") if d["url"].endswith("/data.json")][0]
        self.assertEqual((resp["method"], resp["status"], resp["resourceType"]),
                         ("POST", 200, "Fetch"))
        self.assertGreater(resp["size"], 500)  # the body's bytes counted, never sent
        doc = [d for d in rd.of("response") if d["url"].endswith("/events.html")]
        self.assertEqual(doc and doc[0]["status"], 200, rd.of("response"))
        with rd.lock:
            frames = list(rd.frames)
        self.assertFalse(any("SECRET-BODY" in json.dumps(d) for _, d, _ in frames))
        # common fields; seq counts up by one (a live reader without a filter sees every frame)
        seqs = [d["seq"] for _, d, _ in frames]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        for e, d, fid in frames:
            self.assertEqual((d["type"], d["session"], fid), (e, sid, d["seq"]))
            self.assertIsInstance(d["ts"], (int, float))
            self.assertLess(abs(d["ts"] / 1000 - time.time()), 60)
        self.assertTrue(all(d["tabId"] == tab for d in rd.of("console")))

    def test_dialog_and_popup_tab_frames(self):
        sid, tab = self.new_session()
        rd = self.reader(sid, "?types=dialog,tab")
        self.nav(sid, "/dialog.html")
        self.act(sid, {"action": "click", "selector": "#b"})
        self.assertTrue(rd.wait_for(lambda r: r.of("dialog")), rd.frames)
        d = rd.of("dialog")[0]
        self.assertEqual((d["dialogType"], d["message"], d["tabId"]), ("alert", "hi there", tab))
        self.nav(sid, "/opener.html")
        self.act(sid, {"action": "click", "selector": "#b"})
        self.assertTrue(rd.wait_for(lambda r: [t for t in r.of("tab") if t["state"] == "opened"]),
                        rd.frames)
        opened = [t for t in rd.of("tab") if t["state"] == "opened"][0]
        self.assertEqual(opened["openerTabId"], tab)
        popup = opened["tabId"]
        self.assertIn(popup, [t["tabId"] for t in
                              self.server.get(f"/browser/sessions/{sid}/tabs").json()["tabs"]])
        r = self.server.delete(f"/browser/sessions/{sid}/tabs/{popup}")
        self.assertEqual(r.status, 204, r)
        self.assertTrue(rd.wait_for(lambda r: [t for t in r.of("tab")
                                               if t["state"] == "closed"]), rd.frames)
        closed = [t for t in rd.of("tab") if t["state"] == "closed"]
        self.assertEqual([t["tabId"] for t in closed], [popup])
        self.assertEqual({e for e, _, _ in rd.frames}, {"dialog", "tab"})

    def test_type_filter_and_bad_queries(self):
        sid, _ = self.new_session()
        rd = self.reader(sid, "?types=console")
        self.nav(sid, "/events.html")
        self.assertTrue(rd.wait_for(lambda r: len(r.of("console")) >= 3), rd.frames)
        self.assertEqual({e for e, _, _ in rd.frames}, {"console"})
        for q, field in (("?types=console,bogus", "types"), ("?types=console,,tab", "types"),
                         ("?from=-1", "from"), ("?from=abc", "from")):
            err = self.assertError(self.server.get(f"/browser/sessions/{sid}/events{q}"), 400,
                                   "invalid_request")
            self.assertIn(field, err["message"])
        r = self.server.get(f"/browser/sessions/{sid}/events",
                            headers={"Last-Event-ID": "x1"})
        self.assertError(r, 400, "invalid_request")
        self.assertError(self.server.get("/browser/sessions/" + "0" * 32 + "/events"), 404,
                         "not_found")


class TestReplay(EventsCase):
    def test_resume_after_disconnect_with_last_event_id(self):
        sid, _ = self.new_session()
        rd = self.reader(sid, "?types=console")
        self.log_many(sid, 5)
        self.assertTrue(rd.wait_for(lambda r: len(r.of("console")) >= 5))
        last = rd.frames[-1][2]
        rd.close()
        self.log_many(sid, 7)  # while nobody reads
        rd2 = self.reader(sid, "?types=console", headers={"Last-Event-ID": str(last)})
        self.assertTrue(rd2.wait_for(lambda r: len(r.of("console")) >= 7), rd2.frames)
        got = rd2.of("console")
        self.assertEqual([d["text"].split()[0] for d in got], [f"m{i}" for i in range(7)])
        self.assertGreater(got[0]["seq"], last)
        self.assertEqual(rd2.of("gap"), [])
        # from=SEQ replays the same, without the header
        rd3 = self.reader(sid, f"?types=console&from={got[2]['seq']}")
        self.assertTrue(rd3.wait_for(lambda r: len(r.of("console")) >= 5), rd3.frames)
        self.assertEqual([d["seq"] for d in rd3.of("console")], [d["seq"] for d in got[2:]])

    def test_gap_frame_when_the_buffer_no_longer_reaches_back(self):
        sid, _ = self.new_session()
        self.log_many(sid, 1500)
        rd = self.reader(sid, "?from=1")
        self.assertTrue(rd.wait_for(lambda r: len(r.frames) >= 900), len(rd.frames))
        e, gap, fid = rd.frames[0]
        self.assertEqual(e, "gap")
        self.assertIsNone(fid)
        self.assertEqual(gap["from"], 1)
        self.assertGreater(gap["oldest"], 500)
        self.assertEqual(gap["missed"], gap["oldest"] - 1)
        self.assertEqual(rd.frames[1][1]["seq"], gap["oldest"])
        # what the buffer holds is the newest: the last message is there
        self.assertTrue(rd.wait_for(lambda r: any(d["text"].startswith("m1499 ")
                                                  for d in r.of("console"))))


class TestReaders(EventsCase):
    server_env = {"CONN_TIMEOUT_S": "30"}

    def test_slow_reader_is_dropped_and_the_session_goes_on(self):
        sid, _ = self.new_session()
        slow = self.reader(sid, "?types=console", rcvbuf=4096, start=False)
        fast = self.reader(sid, "?types=console")
        # ~4 MB of frames in all, far past the buffer (1000 frames, 1 MiB), in batches of a
        # quarter of it: the stalled reader falls out of the buffer, while a reader that reads
        # (here on a busy machine) is never more than one batch behind
        logging = 0.0
        for k in range(16):
            t0 = time.time()
            self.log_many(sid, 250, size=1000, first=250 * k)
            logging += time.time() - t0
            self.assertTrue(fast.wait_for(lambda r: len(r.of("console")) >= 250 * (k + 1), 30),
                            (k, len(fast.frames), [(e, str(d)[:200]) for e, d, _ in
                                                   fast.frames[-2:]]))
        self.assertLess(logging, 20)  # the page never waited for the stalled reader
        texts = [d["text"].split()[0] for d in fast.of("console")]
        self.assertEqual(texts, [f"m{i}" for i in range(4000)])
        self.assertEqual(fast.of("dropped"), [])
        slow.start()  # read now: what was on its way, then the drop
        self.assertTrue(wait_until(lambda: slow.ended, 30))
        self.assertEqual(slow.frames[-1][0], "dropped", slow.frames[-3:])
        dropped = slow.frames[-1][1]
        self.assertGreater(dropped["missed"], 0)
        self.assertIn("fell behind", dropped["reason"])
        self.assertLess(len(slow.of("console")), 4000)
        # the session is fine, and the fast reader still gets frames
        self.log_many(sid, 1)
        self.assertTrue(fast.wait_for(lambda r: len(r.of("console")) >= 4001))
        self.nav(sid, "/quiet.html")

    def test_several_readers_and_the_end_with_the_session(self):
        sid, _ = self.new_session()
        a, b = self.reader(sid), self.reader(sid, "?types=console")
        self.log_many(sid, 3)
        for rd in (a, b):
            self.assertTrue(rd.wait_for(lambda r: len(r.of("console")) >= 3))
        self.assertEqual([d["seq"] for d in a.of("console")], [d["seq"] for d in b.of("console")])
        r = self.server.delete(f"/browser/sessions/{sid}")
        self.assertEqual(r.status, 204)
        for rd in (a, b):
            self.assertTrue(wait_until(lambda: rd.ended, 10))
            self.assertEqual(rd.frames[-1][0], "end")
            self.assertIn("closed", rd.frames[-1][1]["reason"])

    def test_crash_frame_when_chromium_dies(self):
        sid, _ = self.new_session()
        rd = self.reader(sid, "?types=crash")
        sdir = os.path.join(self.server.data_dir, "browser", sid)
        pids = live_pids_with_marker(sdir)
        self.assertTrue(pids)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.assertTrue(wait_until(lambda: rd.ended, 15), rd.frames)
        self.assertEqual([e for e, _, _ in rd.frames], ["crash", "end"])
        self.assertEqual(rd.frames[0][1]["tabId"], "")
        self.assertIn("died", rd.frames[1][1]["reason"])
        self.assertError(self.server.get(f"/browser/sessions/{sid}/tabs"), 502, "browser_crashed")


if __name__ == "__main__":
    unittest.main()
