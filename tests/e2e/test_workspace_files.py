"""The files of a Python session end to end: uploads (multipart with several parts, JSON base64,
text, batches), listing with depth, downloads (raw, base64, text, a directory as a zip that
python's zipfile reads), every operation, and the refusals that keep the server's hands inside
the session's work directory: '..', absolute paths, NUL bytes, and symbolic links planted by the
session's own code (to /etc, to another session's directory) -- refused with 400, nothing
outside read or written. Also the caps (413 per file, 507 quota) and tenancy (another token's
session is 404)."""

import base64
import io
import json
import os
import subprocess
import tempfile
import unittest
import urllib.parse
import uuid
import zipfile

from harness import Server, ServerTestCase


def multipart(files, fields=None):
    """(body, content type) of a multipart/form-data body: files is [(filename, bytes)]."""
    b = "b" + uuid.uuid4().hex
    out = []
    for k, v in (fields or {}).items():
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                   + (v if isinstance(v, bytes) else v.encode()) + b"\r\n")
    for name, data in files:
        fname = name if isinstance(name, bytes) else name.encode()
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
                   + fname + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data
                   + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out), "multipart/form-data; boundary=" + b


class WorkspaceCase(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.post("/python/sessions", {})
        if r.status == 404 and "no route" in r.json()["error"]["message"]:
            super().tearDownClass()
            raise unittest.SkipTest("this server has no Python sessions")
        if r.status != 201:
            super().tearDownClass()
            raise AssertionError(f"cannot create a Python session: {r}")
        cls.server.delete("/python/sessions/" + r.json()["sessionId"])

    def session(self, token="default"):
        r = self.server.post("/python/sessions", {}, token=token)
        self.assertEqual(r.status, 201, r)
        sid = r.json()["sessionId"]
        self.addCleanup(self.server.delete, "/python/sessions/" + sid)
        return sid

    def upload(self, sid, files, fields=None, token="default"):
        body, ctype = multipart(files, fields)
        return self.server.request("POST", f"/python/sessions/{sid}/files", body=body,
                                   headers={"Content-Type": ctype}, token=token)

    def put(self, sid, path, data):
        r = self.server.post(f"/python/sessions/{sid}/files",
                             {"path": path, "contentBase64": base64.b64encode(data).decode()})
        self.assertEqual(r.status, 201, r)
        return r

    def files(self, sid, path=None, depth=None, **kw):
        q = {k: v for k, v in (("path", path), ("depth", depth)) if v is not None}
        url = f"/python/sessions/{sid}/files" + ("?" + urllib.parse.urlencode(q) if q else "")
        return self.server.get(url, **kw)

    def names(self, sid, path=None, depth=5):
        r = self.files(sid, path, depth)
        self.assertEqual(r.status, 200, r)
        return [f["path"] for f in r.json()["files"]]

    def read(self, sid, path, fmt=None, **kw):
        url = f"/python/sessions/{sid}/files/{path}" + (f"?format={fmt}" if fmt else "")
        return self.server.get(url, **kw)

    def op(self, sid, **body):
        return self.server.post(f"/python/sessions/{sid}/files/operation", body)

    def sh(self, sid, command):
        r = self.server.post(f"/python/sessions/{sid}/commands",
                             {"command": command, "timeoutMs": 20000})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def workdir(self, sid):
        return os.path.join(self.server.data_dir, "runs", sid, "work")


class TestUploadListDownload(WorkspaceCase):
    def test_multipart_several_parts_and_the_kernel_sees_them(self):
        sid = self.session()
        r = self.upload(sid, [("a.txt", b"alpha"), ("sub/b.bin", bytes(range(256))),
                              ("c.txt", b"")], {"path": "in/"})
        self.assertEqual(r.status, 201, r)
        got = sorted((f["path"], f["size"]) for f in r.json()["files"])
        self.assertEqual(got, [("in/a.txt", 5), ("in/c.txt", 0), ("in/sub/b.bin", 256)])
        res = self.server.post(f"/python/sessions/{sid}/execute",
                               {"code": "open('in/sub/b.bin','rb').read() == bytes(range(256))"})
        self.assertEqual(res.json()["result"], "True", res)
        # what the server wrote belongs to the session: its code may change and remove it
        r = self.sh(sid, "echo more >> in/a.txt && mkdir in/sub/new && rm in/c.txt && "
                         "cat in/a.txt")
        self.assertEqual((r["exitCode"], r["stdout"]), (0, "alphamore\n"), r)
        # without a path field: at the root under their own names; a single file with a path
        # that is not a directory goes to that path
        self.assertEqual(self.upload(sid, [("top.txt", b"t")]).status, 201)
        r = self.upload(sid, [("ignored-name", b"renamed")], {"path": "named/file.txt"})
        self.assertEqual(r.json()["files"], [{"path": "named/file.txt", "size": 7}])
        self.assertEqual(self.sh(sid, "cat named/file.txt")["stdout"], "renamed")

    def test_json_uploads(self):
        sid = self.session()
        r = self.put(sid, "j/x.bin", b"\x00\xffbin")
        self.assertEqual(r.json(), {"files": [{"path": "j/x.bin", "size": 5}]})
        r = self.server.post(f"/python/sessions/{sid}/files", {"path": "t.txt", "content": "héllo"})
        self.assertEqual(r.json()["files"][0]["size"], len("héllo".encode()))
        r = self.server.post(f"/python/sessions/{sid}/files", {"files": [
            {"path": "m/1.txt", "content": "one"},
            {"path": "m/2.txt", "contentBase64": base64.b64encode(b"two").decode()}]})
        self.assertEqual([f["path"] for f in r.json()["files"]], ["m/1.txt", "m/2.txt"])
        self.assertEqual(self.read(sid, "m/2.txt").body, b"two")
        for bad in ({"path": "x"}, {"path": "x", "content": "a", "contentBase64": "YQ=="},
                    {"path": "x", "contentBase64": "not base64!"}, {"content": "a"},
                    {"path": "x", "content": "a", "extra": 1}, {"files": []}):
            self.assertError(self.server.post(f"/python/sessions/{sid}/files", bad), 400,
                             "invalid_request")
        r = self.server.request("POST", f"/python/sessions/{sid}/files", body=b"x",
                                headers={"Content-Type": "text/plain"})
        self.assertError(r, 415)
        body, ctype = multipart([("x", b"1")])
        r = self.server.request("POST", f"/python/sessions/{sid}/files", body=body[:-5],
                                headers={"Content-Type": ctype})
        self.assertError(r, 400, "invalid_request")

    def test_list_with_depth(self):
        sid = self.session()
        self.put(sid, "d1/d2/d3/deep.txt", b"deep")
        self.put(sid, "d1/top.txt", b"top")
        r = self.files(sid)
        self.assertEqual(r.status, 200)
        entries = {f["path"]: f for f in r.json()["files"]}
        self.assertIn("d1", entries)
        self.assertEqual(entries["d1"]["type"], "dir")
        self.assertNotIn("d1/top.txt", entries)
        self.assertEqual(self.names(sid, "d1", 1), ["d1/d2", "d1/top.txt"])
        self.assertEqual(self.names(sid, "d1", 2), ["d1/d2", "d1/d2/d3", "d1/top.txt"])
        all_ = self.files(sid, depth=10).json()["files"]
        deep = [f for f in all_ if f["path"] == "d1/d2/d3/deep.txt"][0]
        self.assertEqual((deep["type"], deep["size"]), ("file", 4))
        self.assertRegex(deep["mtime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(self.names(sid, "d1/top.txt"), ["d1/top.txt"])
        self.assertError(self.files(sid, depth=0), 400, "invalid_request")
        self.assertError(self.files(sid, depth="x"), 400, "invalid_request")
        self.assertError(self.files(sid, "nope"), 404, "not_found")

    def test_download_raw_base64_text(self):
        sid = self.session()
        data = b"line\n\xff\xfe"
        self.put(sid, "dl/f.dat", data)
        r = self.read(sid, "dl/f.dat")
        self.assertEqual((r.status, r.body), (200, data))
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertIn('filename="f.dat"', r.header("Content-Disposition"))
        j = self.read(sid, "dl/f.dat", "base64").json()
        self.assertEqual(base64.b64decode(j["contentBase64"]), data)
        self.assertEqual((j["path"], j["size"], j["type"]), ("dl/f.dat", len(data), "file"))
        t = self.read(sid, "dl/f.dat", "text")
        self.assertTrue(t.header("Content-Type").startswith("text/plain"))
        self.assertEqual(t.body.decode(), "line\n\ufffd\ufffd")
        self.assertError(self.read(sid, "dl/f.dat", "yaml"), 400, "invalid_request")
        self.assertError(self.read(sid, "dl/none"), 404, "not_found")
        self.assertError(self.read(sid, "dl", "text"), 400, "invalid_request")

    def test_directory_as_zip(self):
        sid = self.session()
        self.sh(sid, "mkdir -p z/sub z/empty && seq 1 2000 > z/numbers.txt && "
                      "printf 'x' > z/sub/x.txt && ln -s /etc/passwd z/sub/pw && mkfifo z/fifo")
        r = self.read(sid, "z")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/zip")
        self.assertIn('filename="z.zip"', r.header("Content-Disposition"))
        zf = zipfile.ZipFile(io.BytesIO(r.body))
        self.assertIsNone(zf.testzip())
        self.assertEqual(sorted(zf.namelist()),
                         ["empty/", "numbers.txt", "sub/", "sub/x.txt"])  # no link, no FIFO
        self.assertEqual(zf.read("numbers.txt"),
                         "".join(f"{i}\n" for i in range(1, 2001)).encode())
        self.assertEqual(zf.getinfo("numbers.txt").compress_type, zipfile.ZIP_DEFLATED)
        with tempfile.NamedTemporaryFile(suffix=".zip") as f:
            f.write(r.body)
            f.flush()
            t = subprocess.run(["python3", "-m", "zipfile", "-t", f.name],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(t.returncode, 0, t.stderr)
        j = self.read(sid, "z", "base64").json()
        self.assertEqual((j["type"], j["contentType"]), ("dir", "application/zip"))
        self.assertEqual(base64.b64decode(j["contentBase64"])[:4], b"PK\x03\x04")
        root = zipfile.ZipFile(io.BytesIO(self.read(sid, ".").body))
        self.assertIn("z/numbers.txt", root.namelist())


class TestOperations(WorkspaceCase):
    def test_each_operation(self):
        sid = self.session()
        self.put(sid, "a/file.txt", b"content")
        ok = {"ok": True}
        self.assertEqual(self.op(sid, operation="mkdir", path="b/c/d").json(), ok)
        self.assertEqual(self.op(sid, operation="mkdir", path="b/c/d").status, 200)
        self.assertEqual(self.op(sid, operation="copy", path="a/file.txt", to="a/copy.txt")
                         .json(), ok)
        self.assertEqual(self.op(sid, operation="copy", path="a", to="b/a2").json(), ok)
        self.assertEqual(self.read(sid, "b/a2/copy.txt").body, b"content")
        self.assertEqual(self.op(sid, operation="rename", path="a/copy.txt",
                                 to="a/renamed.txt").json(), ok)
        self.assertEqual(self.op(sid, operation="move", path="a/renamed.txt", to="b/c").json(),
                         ok)
        self.assertEqual(self.sh(sid, "cat b/c/renamed.txt")["stdout"], "content")
        self.assertEqual(self.op(sid, operation="move", path="b/c/renamed.txt",
                                 to="top.txt").json(), ok)
        self.assertEqual(self.op(sid, operation="remove", path="b").json(), ok)
        self.assertEqual(sorted(self.names(sid, depth=3)), ["a", "a/file.txt", "top.txt"])
        # conflicts and absences
        self.assertError(self.op(sid, operation="rename", path="top.txt", to="a/file.txt"), 409,
                         "conflict")
        self.assertError(self.op(sid, operation="copy", path="a", to="a/inside"), 400)
        self.assertError(self.op(sid, operation="mkdir", path="top.txt/x"), 409, "conflict")
        self.assertError(self.op(sid, operation="remove", path="ghost"), 404, "not_found")
        self.assertError(self.op(sid, operation="rename", path="ghost", to="g2"), 404)
        self.assertError(self.op(sid, operation="rename", path="top.txt"), 400)  # no to
        self.assertError(self.op(sid, operation="remove", path="a", to="b"), 400)
        self.assertError(self.op(sid, operation="chmod", path="a"), 400, "invalid_request")
        self.assertError(self.op(sid, operation="remove", path="."), 400)
        self.assertError(self.op(sid, operation="remove", path=""), 400)
        self.assertEqual(self.read(sid, "a/file.txt").body, b"content")


class TestRefusals(WorkspaceCase):
    def assertRefused(self, r, path_in_message=None):
        err = self.assertError(r, 400, "invalid_request")
        if path_in_message:
            self.assertIn(path_in_message, err["message"])

    def test_dotdot_absolute_nul(self):
        sid = self.session()
        self.put(sid, "ok.txt", b"ok")
        for p in ("../../etc/passwd", "a/../../x", ".."):
            self.assertRefused(self.files(sid, p), "..")
            self.assertRefused(self.op(sid, operation="remove", path=p), "..")
            self.assertRefused(self.server.post(f"/python/sessions/{sid}/files",
                                                {"path": p, "content": "x"}), "..")
        self.assertRefused(self.read(sid, "..%2f..%2fetc%2fpasswd"))
        self.assertRefused(self.read(sid, "x/%2e%2e/%2e%2e/etc/passwd"))
        for p in ("/etc/passwd", "/tmp/sbx-x"):
            self.assertRefused(self.files(sid, p), "absolute")
            self.assertRefused(self.server.post(f"/python/sessions/{sid}/files",
                                                {"path": p, "content": "x"}), "absolute")
            self.assertRefused(self.op(sid, operation="copy", path="ok.txt", to=p), "absolute")
        self.assertFalse(os.path.exists("/tmp/sbx-x"))
        # a NUL byte: in JSON (an \\u0000 escape), in a multipart filename and path field
        r = self.server.request("POST", f"/python/sessions/{sid}/files",
                                body=b'{"path": "ok.txt\\u0000/../../etc", "content": "x"}',
                                headers={"Content-Type": "application/json"})
        self.assertRefused(r, "NUL")
        r = self.server.request("POST", f"/python/sessions/{sid}/files/operation",
                                body=b'{"operation":"remove","path":"ok.txt\\u0000x"}',
                                headers={"Content-Type": "application/json"})
        self.assertRefused(r, "NUL")
        self.assertRefused(self.server.get(f"/python/sessions/{sid}/files?path=ok.txt%00x"),
                           "NUL")
        self.assertRefused(self.upload(sid, [(b"n\x00.txt", b"x")]), "NUL")
        self.assertRefused(self.upload(sid, [("f", b"x")], {"path": b"a\x00b"}), "NUL")
        self.assertEqual(self.read(sid, "ok.txt").body, b"ok")
        self.assertEqual(sorted(os.listdir(self.workdir(sid))), ["ok.txt"])

    def test_symlinks_planted_by_the_session(self):
        mine, other = self.session(), self.session()
        self.put(other, "secret.txt", b"other's secret")
        other_dir = self.workdir(other)
        self.assertTrue(os.path.isdir(other_dir), other_dir)
        # the code plants links: by a command and by the interpreter
        self.sh(mine, f"ln -s /etc etc && ln -s /etc/hostname host && "
                       f"ln -s {other_dir} other && ln -s ../../../.. up && "
                       f"mkdir d && ln -s {other_dir}/secret.txt d/s && ln -s . self")
        r = self.server.post(f"/python/sessions/{mine}/execute",
                             {"code": "import os; os.symlink('/etc/passwd', 'pw')"})
        self.assertEqual(r.status, 200, r)
        for path in ("etc/passwd", "host", "other/secret.txt", "up", "d/s", "pw", "self/pw",
                     "etc", "other"):
            for fmt in (None, "base64", "text"):
                self.assertRefused(self.read(mine, path, fmt), path)
        for path in ("other", "etc", "up", "self"):
            self.assertRefused(self.files(mine, path), path)
        self.assertRefused(self.op(mine, operation="copy", path="d", to="d2"), "d2/s")
        self.assertNotIn("d2", os.listdir(self.workdir(mine)))
        for path in ("other/new.txt", "etc/sbx-planted", "up/sbx-planted", "d/s"):
            r = self.server.post(f"/python/sessions/{mine}/files", {"path": path, "content": "x"})
            if path == "d/s":  # the link's own name: replaced by a file, its target untouched
                self.assertEqual(r.status, 201, r)
                continue
            self.assertRefused(r, path)
        self.assertRefused(self.upload(mine, [("new.txt", b"x")], {"path": "other/"}))
        self.assertRefused(self.op(mine, operation="copy", path="other/secret.txt", to="stolen"))
        self.assertRefused(self.op(mine, operation="rename", path="other/secret.txt",
                                   to="stolen"))
        self.assertRefused(self.op(mine, operation="move", path="d", to="other/d"))
        self.assertRefused(self.op(mine, operation="mkdir", path="other/made"))
        self.assertRefused(self.op(mine, operation="remove", path="other/secret.txt"))
        # nothing outside was read into the session or written anywhere
        self.assertEqual(sorted(os.listdir(other_dir)), ["secret.txt"])
        with open(os.path.join(other_dir, "secret.txt"), "rb") as f:
            self.assertEqual(f.read(), b"other's secret")
        self.assertFalse(os.path.exists("/etc/sbx-planted"))
        self.assertFalse(os.path.exists(os.path.join(self.workdir(mine), "stolen")))
        listed = self.names(mine, depth=3)
        for link in ("etc", "host", "other", "up", "pw", "self"):
            self.assertNotIn(link, listed)
        # removing a link removes the link, never what it points to
        self.assertEqual(self.op(mine, operation="remove", path="other").status, 200)
        self.assertEqual(self.op(mine, operation="remove", path="etc").status, 200)
        self.assertTrue(os.path.exists(os.path.join(other_dir, "secret.txt")))
        self.assertTrue(os.path.exists("/etc/passwd"))
        self.assertEqual(self.read(other, "secret.txt").body, b"other's secret")

    def test_fifo_is_refused_at_once(self):
        sid = self.session()
        self.sh(sid, "mkfifo pipe")
        self.assertRefused(self.read(sid, "pipe", timeout=10), "pipe")
        self.assertRefused(self.op(sid, operation="copy", path="pipe", to="p2"))


class TestTenancy(WorkspaceCase):
    def test_another_tokens_session_is_404(self):
        sid = self.session()
        self.put(sid, "mine.txt", b"mine")
        r = self.server.post("/tokens", {"label": "other-exec", "scopes": ["exec"]})
        self.assertEqual(r.status, 201, r)
        other = r.json()["token"]
        self.addCleanup(self.server.delete, "/tokens/" + r.json()["id"])
        self.assertError(self.files(sid, token=other), 404, "not_found")
        self.assertError(self.read(sid, "mine.txt", token=other), 404, "not_found")
        self.assertError(self.upload(sid, [("x", b"x")], token=other), 404, "not_found")
        r = self.server.request("POST", f"/python/sessions/{sid}/files/operation",
                                body={"operation": "remove", "path": "mine.txt"}, token=other)
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.read(sid, "mine.txt").body, b"mine")
        r = self.server.post("/tokens", {"label": "browser-only", "scopes": ["browser"]})
        b = r.json()
        self.addCleanup(self.server.delete, "/tokens/" + b["id"])
        self.assertError(self.files(sid, token=b["token"]), 403, "forbidden")
        self.assertError(self.files("0" * 32), 404, "not_found")


class TestCaps(WorkspaceCase):
    server_env = {"PYTHON_FILE_MAX_MB": "1", "PYTHON_SESSION_QUOTA_MB": "2"}

    def test_file_cap_413_and_quota_507(self):
        sid = self.session()
        mib = 1 << 20
        r = self.upload(sid, [("small.bin", b"s"), ("big.bin", b"b" * (mib + 1))])
        self.assertError(r, 413, "payload_too_large")
        self.assertEqual(os.listdir(self.workdir(sid)), [])  # nothing of that upload landed
        self.assertEqual(self.upload(sid, [("one.bin", b"1" * (mib - 10))]).status, 201)
        self.assertEqual(self.upload(sid, [("two.bin", b"2" * (mib - 10))]).status, 201)
        r = self.server.post(f"/python/sessions/{sid}/files", {"path": "three.bin",
                                                               "content": "3" * 100})
        self.assertError(r, 507, "insufficient_storage")
        self.assertIn("PYTHON_SESSION_QUOTA_MB", r.json()["error"]["message"])
        self.assertError(self.op(sid, operation="copy", path="one.bin", to="copy.bin"), 507)
        before = sorted(os.listdir(self.workdir(sid)))
        self.assertError(self.upload(sid, [("a.bin", b"a"), ("b.bin", b"b" * 50000)]), 507)
        self.assertEqual(sorted(os.listdir(self.workdir(sid))), before)  # neither landed
        # the code itself may write more; a download over the cap is 413, a zip too
        self.sh(sid, "head -c 1100000 /dev/zero > made.bin")
        self.assertError(self.read(sid, "made.bin"), 413, "payload_too_large")
        self.assertError(self.read(sid, "."), 413, "payload_too_large")
        # replacing a file counts only the difference; removing frees the quota
        self.assertEqual(self.op(sid, operation="remove", path="made.bin").status, 200)
        self.assertEqual(self.op(sid, operation="remove", path="two.bin").status, 200)
        self.assertEqual(self.upload(sid, [("three.bin", b"3" * 100)]).status, 201)


class TestMcpTools(WorkspaceCase):
    def call(self, name, args):
        r = self.server.post("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                      "params": {"name": name, "arguments": args}},
                             headers={"MCP-Protocol-Version": "2025-11-25",
                                      "Accept": "application/json, text/event-stream"})
        self.assertEqual(r.status, 200, r)
        return r.json()["result"]

    def test_write_list_read(self):
        sid = self.session()
        res = self.call("python_session_file_write",
                        {"sessionId": sid, "path": "notes/n.txt", "content": "from a model"})
        self.assertFalse(res["isError"], res)
        self.assertEqual(res["structuredContent"]["files"][0]["path"], "notes/n.txt")
        res = self.call("python_session_files_list", {"sessionId": sid, "depth": 2})
        self.assertIn("notes/n.txt", [f["path"] for f in res["structuredContent"]["files"]])
        res = self.call("python_session_file_read", {"sessionId": sid, "path": "notes/n.txt"})
        self.assertEqual(res["content"][0]["text"], "from a model")
        res = self.call("python_session_file_read",
                        {"sessionId": sid, "path": "notes/n.txt", "maxChars": 4, "offset": 5})
        self.assertTrue(res["content"][0]["text"].startswith("a mo"), res)
        res = self.call("python_session_file_read", {"sessionId": sid, "path": "../x"})
        self.assertTrue(res["isError"])
        self.assertEqual(res["structuredContent"]["status"], 400)
        res = self.call("python_session_file_read", {"sessionId": sid, "path": "a?b"})
        self.assertTrue(res["isError"])


if __name__ == "__main__":
    unittest.main()
