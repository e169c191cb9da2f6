"""Streamed answers and slow readers: a Server-Sent Events client that stops reading cannot
hold a run past its deadline (stream writes have the run's deadline), and what it missed is
still there when it reads again. Starts the real build/sandboxd with real python3."""

import http.client
import json
import socket
import time
import unittest

from harness import ServerTestCase


class SmallWindowConnection(http.client.HTTPConnection):
    """A client with a tiny receive buffer, so a server's writes block soon when it stops
    reading."""

    def connect(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))


class TestStalledReader(ServerTestCase):
    server_env = {"EXEC_OUTPUT_BYTES": "67108864", "CONN_TIMEOUT_S": "30"}

    def test_stalled_reader_does_not_hold_the_run(self):
        code = "import sys\nfor i in range(20000):\n    print('x' * 1000, flush=(i % 10 == 0))\n"
        conn = SmallWindowConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            conn.request("POST", "/execute", body=json.dumps({"code": code, "timeoutMs": 1500}),
                         headers={"Authorization": "Bearer " + self.server.token,
                                  "Content-Type": "application/json",
                                  "Accept": "text/event-stream"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            time.sleep(6)  # stop reading, well past the run's 1.5 s deadline
            raw = r.read()
        finally:
            conn.close()
        done = None
        for line in raw.decode().split("\n"):
            if line.startswith("data: ") and '"exitCode"' in line:
                done = json.loads(line[6:])
        self.assertIsNotNone(done, raw[-500:])
        # the run ended at its deadline, not when the reader came back
        self.assertTrue(done["timedOut"], done.get("stderr", "")[-300:])
        self.assertLess(done["durationMs"], 4000)
        self.assertEqual(self.server.get("/health").json()["exec"]["running"], 0)


if __name__ == "__main__":
    unittest.main()
