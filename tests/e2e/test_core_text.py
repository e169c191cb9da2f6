"""Text at the HTTP edge: every JSON and SSE answer is well-formed UTF-8 (ill-formed program
output becomes U+FFFD, a character cut between two reads of a stream arrives whole), and a
request body that is not well-formed UTF-8, or holds a lone surrogate escape, is refused with
400 saying where. Starts the real build/sandboxd with real python3."""

import http.client
import json
import unittest

from harness import ServerTestCase

FFFD = "\ufffd"


class TestTextOut(ServerTestCase):
    def run_raw(self, code):
        """POST /execute; the raw body bytes (and the parsed JSON)."""
        r = self.server.post("/execute", body={"code": code})
        self.assertEqual(r.status, 200, r)
        text = r.body.decode("utf-8")  # strict: raises on ill-formed bytes
        return r.body, json.loads(text)

    def events_raw(self, code):
        """POST /execute as SSE; the raw stream and its (event, data) pairs."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            conn.request("POST", "/execute", body=json.dumps({"code": code}), headers={
                "Authorization": "Bearer " + self.server.token,
                "Content-Type": "application/json", "Accept": "text/event-stream"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            raw = r.read()
        finally:
            conn.close()
        events, event = [], None
        for line in raw.decode("utf-8").split("\n"):  # strict
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
        return raw, events

    def test_invalid_stdout_becomes_replacement(self):
        raw, res = self.run_raw("import sys; sys.stdout.buffer.write(b'ok\\xff\\xfe\\n')")
        self.assertNotIn(b"\xff", raw)
        self.assertEqual(res["stdout"], "ok" + FFFD * 2 + "\n")
        self.assertEqual(res["exitCode"], 0)

    def test_invalid_stderr_and_cut_characters(self):
        # a lone continuation byte, an encoded surrogate, a 4-byte form cut by the end
        raw, res = self.run_raw("import sys; sys.stderr.buffer.write(b'a\\x80b\\xed\\xa0\\x80c'); "
                                "sys.stdout.buffer.write('\u20ac'.encode() + b'\\xf0\\x9f\\x98')")
        self.assertEqual(res["stderr"], "a" + FFFD + "b" + FFFD * 3 + "c")
        self.assertEqual(res["stdout"], "\u20ac" + FFFD)

    def test_valid_text_untouched(self):
        s = "caf\u00e9 \u20ac \U0001f600 \u4e2d\u6587"
        _, res = self.run_raw("print(%r)" % s)
        self.assertEqual(res["stdout"], s + "\n")

    def test_stream_is_valid_utf8(self):
        raw, events = self.events_raw(
            "import sys; sys.stdout.buffer.write(b'x\\xff\\n'); sys.stdout.flush()")
        out = "".join(d["data"] for e, d in events if e == "stdout")
        self.assertEqual(out, "x" + FFFD + "\n")
        done = [d for e, d in events if e == "done"][0]
        self.assertEqual(done["stdout"], "x" + FFFD + "\n")

    def test_stream_does_not_cut_a_character(self):
        # the euro sign's three bytes reach the pipe in two writes, 300 ms apart
        code = ("import sys, time\n"
                "sys.stdout.buffer.write(b'a\\xe2\\x82'); sys.stdout.flush(); time.sleep(0.3)\n"
                "sys.stdout.buffer.write(b'\\xac b\\xf0\\x9f'); sys.stdout.flush(); time.sleep(0.3)\n"
                "sys.stdout.buffer.write(b'\\x98\\x80\\n'); sys.stdout.flush()\n")
        raw, events = self.events_raw(code)
        chunks = [d["data"] for e, d in events if e == "stdout"]
        self.assertEqual("".join(chunks), "a\u20ac b\U0001f600\n", chunks)
        self.assertGreaterEqual(len(chunks), 2, chunks)  # it really came in pieces
        for c in chunks:
            self.assertNotIn(FFFD, c)

    def test_stream_flushes_a_character_never_completed(self):
        _, events = self.events_raw(
            "import sys; sys.stdout.buffer.write(b'z\\xe2\\x82'); sys.stdout.flush()")
        out = "".join(d["data"] for e, d in events if e == "stdout")
        self.assertEqual(out, "z" + FFFD)


class TestTextIn(ServerTestCase):
    def post_raw(self, data):
        return self.server.post("/execute", raw=data, headers={"Content-Type": "application/json"})

    def test_invalid_utf8_body_refused(self):
        r = self.post_raw(b'{"code": "\xff\xfe"}')
        err = self.assertError(r, 400, "invalid_request")
        self.assertIn("UTF-8", err["message"])
        self.assertIn("byte 10", err["message"])
        self.assertIn("line 1 column 11", err["message"])

    def test_invalid_utf8_on_a_later_line(self):
        r = self.post_raw(b'{\n  "code":\n   "print(1) # \xc3(" }')
        err = self.assertError(r, 400, "invalid_request")
        self.assertIn("line 3 column 16", err["message"])

    def test_lone_surrogate_escape_refused(self):
        for body, where in ((b'{"code": "print(1)\\ud800"}', "column 19"),
                            (b'{"code": "#\\udc00"}', "column 12"),
                            (b'{"code": "#\\ud800\\u0041"}', "column 12")):
            err = self.assertError(self.post_raw(body), 400, "invalid_request")
            self.assertIn("surrogate", err["message"], body)
            self.assertIn(where, err["message"], body)

    def test_valid_text_and_pairs_accepted(self):
        r = self.post_raw('{"code": "print(\'\u20ac\\u00e9\\ud83d\\ude00\')"}'.encode())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["stdout"], "\u20ac\u00e9\U0001f600\n")


if __name__ == "__main__":
    unittest.main()
