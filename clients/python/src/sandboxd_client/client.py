"""The sandboxd client: one Client per server, PythonSession and BrowserSession objects for the
sessions it opens, one exception type (SandboxdError) for every failure.

Standard library only (urllib.request). Every call is one HTTP request with the client's bearer
token and a timeout; a reply of 400 or more raises SandboxdError with the server's error code
and message (API.md "Errors"); a server that cannot be reached raises it with status 0 and code
"connection_failed". Objects are not shared between threads by the client itself; a Client may
be used from several threads (each call opens its own connection).
"""

from __future__ import annotations

import json
import mimetypes
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union, cast)

JSON = Dict[str, Any]
FileData = Union[bytes, str]


class SandboxdError(Exception):
    """A failed call: the HTTP status (0 when the server could not be reached), the server's
    snake_case error code (e.g. "not_found", "invalid_request", "busy") and its message."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after: Optional[int] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass
class Event:
    """One Server-Sent Event of a streamed call: its name ("start", "stdout", "stderr",
    "done", "error", ...) and its data, decoded from JSON when it is JSON."""

    event: str
    data: Any


@dataclass
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


def _error_from(status: int, body: bytes, headers: Any) -> SandboxdError:
    code, message = "http_error", body.decode("utf-8", "replace")[:500] or f"HTTP {status}"
    try:
        err = json.loads(body.decode("utf-8"))["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        pass
    retry = headers.get("Retry-After")
    return SandboxdError(status, code, message,
                         int(retry) if retry and retry.isdigit() else None)


def _drop_none(d: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


class Client:
    """A connection to one sandboxd.

    base_url defaults to $SANDBOXD_URL or http://127.0.0.1:8080; token to $SANDBOXD_TOKEN
    (then $AUTH_TOKEN). timeout is the socket timeout of each call, in seconds; calls that
    wait on the server (execute, commands, navigate) get their own timeoutMs plus this."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = 60.0) -> None:
        self.base_url = (base_url or os.environ.get("SANDBOXD_URL")
                         or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else (
            os.environ.get("SANDBOXD_TOKEN") or os.environ.get("AUTH_TOKEN"))
        self.timeout = timeout

    # ---- transport ----
    def _open(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
              body: Optional[bytes] = None, content_type: Optional[str] = None,
              accept: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        url = self.base_url + urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
        q = _drop_none(query or {})
        if q:
            url += "?" + urllib.parse.urlencode(
                {k: ("true" if v is True else "false" if v is False else v)
                 for k, v in q.items()})
        req = urllib.request.Request(url, data=body, method=method)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        if content_type:
            req.add_header("Content-Type", content_type)
        if accept:
            req.add_header("Accept", accept)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            data = e.read()
            raise _error_from(e.code, data, e.headers) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise SandboxdError(0, "connection_failed",
                                f"cannot reach {self.base_url}: {reason}") from None

    def request(self, method: str, path: str, json_body: Optional[Any] = None,
                query: Optional[Mapping[str, Any]] = None, body: Optional[bytes] = None,
                content_type: Optional[str] = None, timeout: Optional[float] = None) -> _Reply:
        """One call; raises SandboxdError for a status of 400 or more. The lower layer of every
        method, for routes this client has no method for."""
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        with self._open(method, path, query, body, content_type, timeout=timeout) as resp:
            return _Reply(resp.status, resp.headers, resp.read())

    def _json(self, method: str, path: str, json_body: Optional[Any] = None,
              query: Optional[Mapping[str, Any]] = None,
              timeout: Optional[float] = None) -> JSON:
        return cast(JSON, self.request(method, path, json_body, query, timeout=timeout).json())

    def stream(self, method: str, path: str, json_body: Any,
               timeout: Optional[float] = None) -> Iterator[Event]:
        """A call answered with Server-Sent Events, as an iterator of Event (keep-alive comments
        are skipped). The iterator ends after the last event; closing it early closes the
        connection (the server then stops the work)."""
        body = json.dumps(json_body).encode("utf-8")
        resp = self._open(method, path, None, body, "application/json",
                          accept="text/event-stream", timeout=timeout)
        return _sse_events(resp)

    def _wait(self, timeout_ms: Optional[int]) -> float:
        return self.timeout + (timeout_ms or 120000) / 1000.0

    # ---- server ----
    def health(self) -> JSON:
        """GET /health: {"status", "version", ...} (more with a valid token)."""
        return self._json("GET", "/health")

    # ---- one-shot Python ----
    def execute(self, code: str, timeout_ms: Optional[int] = None, **fields: Any) -> JSON:
        """POST /execute: run `code` in a fresh sandbox; {"exitCode", "stdout", "stderr",
        "uploads", ...}. Extra fields (fileUploadUrl, uploadToken, public, network) are passed
        on as given."""
        return self._json("POST", "/execute",
                          _drop_none({"code": code, "timeoutMs": timeout_ms, **fields}),
                          timeout=self._wait(timeout_ms))

    def execute_stream(self, code: str, timeout_ms: Optional[int] = None,
                       **fields: Any) -> Iterator[Event]:
        """POST /execute as Server-Sent Events: start, stdout, stderr, then done (the result)
        or error."""
        return self.stream("POST", "/execute",
                           _drop_none({"code": code, "timeoutMs": timeout_ms, **fields}),
                           timeout=self._wait(timeout_ms))

    # ---- Python sessions (workspaces) ----
    def create_session(self, idle_timeout_s: Optional[int] = None, ttl_s: Optional[int] = None,
                       env: Optional[Mapping[str, str]] = None,
                       **fields: Any) -> "PythonSession":
        """POST /python/sessions: a new workspace (a persistent interpreter, a shell and a work
        directory, all sandboxed)."""
        info = self._json("POST", "/python/sessions", _drop_none(
            {"idleTimeoutS": idle_timeout_s, "ttlS": ttl_s,
             "env": dict(env) if env is not None else None, **fields}))
        return PythonSession(self, info["sessionId"], info)

    create_sandbox = create_session  # the name the code-sandbox seed's client uses

    def python_session(self, session_id: str) -> "PythonSession":
        """A handle on an existing session (no call is made)."""
        return PythonSession(self, session_id, {"sessionId": session_id})

    def list_sessions(self) -> List[JSON]:
        """GET /python/sessions: the sessions this token may see."""
        return cast(List[JSON], self._json("GET", "/python/sessions")["sessions"])

    # ---- browser sessions ----
    def create_browser(self, device: Optional[str] = None, **options: Any) -> "BrowserSession":
        """POST /browser/sessions: a headless Chromium with one tab. options: viewport,
        userAgent, locale, timezoneId, proxy, state, network (as API.md)."""
        info = self._json("POST", "/browser/sessions",
                          _drop_none({"device": device, **options}))
        return BrowserSession(self, info["sessionId"], info.get("tabId"))

    def browser_session(self, session_id: str) -> "BrowserSession":
        """A handle on an existing browser session (no call is made)."""
        return BrowserSession(self, session_id, None)

    def list_browsers(self) -> List[JSON]:
        """GET /browser/sessions."""
        return cast(List[JSON], self._json("GET", "/browser/sessions")["sessions"])


def _sse_events(resp: Any) -> Iterator[Event]:
    try:
        event, data = "message", []  # type: Tuple[str, List[str]]
        for raw in resp:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if data:
                    text = "\n".join(data)
                    try:
                        value: Any = json.loads(text)
                    except ValueError:
                        value = text
                    yield Event(event, value)
                event, data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value_s = line.partition(":")
            if value_s.startswith(" "):
                value_s = value_s[1:]
            if name == "event":
                event = value_s
            elif name == "data":
                data.append(value_s)
    finally:
        resp.close()


def _multipart(files: Iterable[Tuple[str, bytes]],
               fields: Mapping[str, str]) -> Tuple[bytes, str]:
    boundary = "sbx" + uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   .encode() + value.encode("utf-8") + b"\r\n")
    for filename, data in files:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                   f'filename="{quoted}"\r\nContent-Type: {ctype}\r\n\r\n'.encode("utf-8")
                   + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _as_bytes(data: FileData) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class PythonSession:
    """A Python workspace: a persistent interpreter, its shell and its work directory. Use it
    as a context manager to close it at the end."""

    def __init__(self, client: Client, session_id: str, info: JSON) -> None:
        self.client = client
        self.id = session_id
        self.created = info

    def __enter__(self) -> "PythonSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _path(self, tail: str = "") -> str:
        return f"/python/sessions/{self.id}{tail}"

    def info(self) -> JSON:
        """GET /python/sessions/{id}: state, executionCount, memoryBytes, cpuMs, timestamps."""
        return self.client._json("GET", self._path())

    def execute_code(self, code: str, timeout_ms: Optional[int] = None) -> JSON:
        """Run code in the session (globals persist): {"stdout", "stderr", "result", "error",
        "images", "display", "executionCount", "durationMs"}."""
        return self.client._json("POST", self._path("/execute"),
                                 _drop_none({"code": code, "timeoutMs": timeout_ms}),
                                 timeout=self.client._wait(timeout_ms))

    def execute_code_stream(self, code: str,
                            timeout_ms: Optional[int] = None) -> Iterator[Event]:
        """execute_code as Server-Sent Events."""
        return self.client.stream("POST", self._path("/execute"),
                                  _drop_none({"code": code, "timeoutMs": timeout_ms}),
                                  timeout=self.client._wait(timeout_ms))

    def run_command(self, command: str, cwd: Optional[str] = None,
                    timeout_ms: Optional[int] = None,
                    env: Optional[Mapping[str, str]] = None) -> JSON:
        """Run /bin/sh -c command in the session's sandbox and work directory: {"exitCode",
        "stdout", "stderr", "durationMs", "timedOut"}."""
        return self.client._json("POST", self._path("/commands"), _drop_none(
            {"command": command, "cwd": cwd, "timeoutMs": timeout_ms,
             "env": dict(env) if env is not None else None}),
            timeout=self.client._wait(timeout_ms))

    def run_command_stream(self, command: str, cwd: Optional[str] = None,
                           timeout_ms: Optional[int] = None) -> Iterator[Event]:
        """run_command as Server-Sent Events (start, stdout, stderr, done)."""
        return self.client.stream("POST", self._path("/commands"), _drop_none(
            {"command": command, "cwd": cwd, "timeoutMs": timeout_ms}),
            timeout=self.client._wait(timeout_ms))

    def install_package(self, *packages: Union[str, Sequence[str]]) -> JSON:
        """pip install into the session (from the operator's wheelhouse or allowed index):
        {"installed", "output"}. Takes names or lists of names."""
        names: List[str] = []
        for p in packages:
            names.extend([p] if isinstance(p, str) else list(p))
        return self.client._json("POST", self._path("/packages"), {"packages": names},
                                 timeout=self.client._wait(None))

    # ---- files ----
    def list_files(self, path: str = "", depth: int = 1) -> List[JSON]:
        """The files under path (relative to the work directory): [{"path", "size", "type",
        "mtime"}]."""
        return cast(List[JSON], self.client._json(
            "GET", self._path("/files"), query={"path": path or None, "depth": depth})["files"])

    def upload_file(self, path: str, data: Union[FileData, "os.PathLike[str]"]) -> JSON:
        """Write one file at path: data is bytes, text, or a local file's path (os.PathLike).
        Returns {"path", "size"}."""
        if isinstance(data, os.PathLike):
            with open(data, "rb") as f:
                data = f.read()
        body, ctype = _multipart([(os.path.basename(path) or "file", _as_bytes(data))],
                                 {"path": path})
        return cast(JSON, self.client.request("POST", self._path("/files"), body=body,
                                              content_type=ctype).json()["files"][0])

    def upload_files(self, files: Mapping[str, FileData], directory: str = "") -> List[JSON]:
        """Write several files in one multipart request: {name: data}, names relative to
        directory (they may hold subdirectories). Returns [{"path", "size"}]."""
        parts = [(name, _as_bytes(data)) for name, data in files.items()]
        body, ctype = _multipart(parts, {"path": (directory.rstrip("/") + "/")
                                         if directory else "./"})
        return cast(List[JSON], self.client.request("POST", self._path("/files"), body=body,
                                                    content_type=ctype).json()["files"])

    def download_file(self, path: str) -> bytes:
        """The bytes of a file; a directory comes as a zip archive."""
        return self.client.request("GET", self._path("/files/" + path.lstrip("/"))).body

    def read_text(self, path: str) -> str:
        """A file as text (bytes that are not UTF-8 become U+FFFD)."""
        return self.client.request("GET", self._path("/files/" + path.lstrip("/")),
                                   query={"format": "text"}).body.decode("utf-8")

    def file_operation(self, operation: str, path: str, to: Optional[str] = None) -> None:
        """rename, move, copy, remove or mkdir (see the named helpers)."""
        self.client._json("POST", self._path("/files/operation"),
                          _drop_none({"operation": operation, "path": path, "to": to}))

    def rename(self, path: str, to: str) -> None:
        self.file_operation("rename", path, to)

    def move(self, path: str, to: str) -> None:
        """Move path to `to`, or into `to` when that is an existing directory."""
        self.file_operation("move", path, to)

    def copy(self, path: str, to: str) -> None:
        self.file_operation("copy", path, to)

    def remove(self, path: str) -> None:
        """Remove a file or a directory with everything under it."""
        self.file_operation("remove", path)

    def mkdir(self, path: str) -> None:
        self.file_operation("mkdir", path)

    def close(self) -> None:
        """DELETE the session (its processes and files are gone). Closing twice is fine."""
        try:
            self.client.request("DELETE", self._path())
        except SandboxdError as e:
            if e.status != 404:
                raise

    close_sandbox = close  # the seed's name


class BrowserSession:
    """A headless Chromium session. Calls act on tab_id when given, else on the current tab.
    Use it as a context manager to close it at the end."""

    def __init__(self, client: Client, session_id: str, tab_id: Optional[str]) -> None:
        self.client = client
        self.id = session_id
        self.tab_id = tab_id

    def __enter__(self) -> "BrowserSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _path(self, tail: str = "") -> str:
        return f"/browser/sessions/{self.id}{tail}"

    def navigate(self, url: str, wait_until: Optional[str] = None,
                 timeout_ms: Optional[int] = None, tab_id: Optional[str] = None) -> JSON:
        """Load url: {"url", "status", "title"}."""
        return self.client._json("POST", self._path("/navigate"), _drop_none(
            {"url": url, "waitUntil": wait_until, "timeoutMs": timeout_ms, "tabId": tab_id}),
            timeout=self.client._wait(timeout_ms))

    def content(self, tab_id: Optional[str] = None) -> str:
        """The page's HTML as it is now."""
        return self.client.request("GET", self._path("/content"),
                                   query={"tabId": tab_id}).body.decode("utf-8")

    def snapshot(self, tab_id: Optional[str] = None, max_chars: Optional[int] = None,
                 selector: Optional[str] = None) -> JSON:
        """The accessibility snapshot with refs: {"snapshot", "refs", "truncated"}."""
        return self.client._json("GET", self._path("/snapshot"), query={
            "tabId": tab_id, "maxChars": max_chars, "selector": selector})

    def markdown(self, tab_id: Optional[str] = None, max_chars: Optional[int] = None) -> str:
        """The page's readable content as Markdown."""
        return self.client.request("GET", self._path("/markdown"), query={
            "tabId": tab_id, "maxChars": max_chars}).body.decode("utf-8")

    def action(self, action: str, **fields: Any) -> JSON:
        """POST .../action: {"action": action, **fields} (selector or ref, text, value, key,
        values, x, y, expression, tabId, timeoutMs, ...). Returns {"ok": true, ...}."""
        timeout_ms = fields.get("timeoutMs")
        return self.client._json("POST", self._path("/action"),
                                 _drop_none({"action": action, **fields}),
                                 timeout=self.client._wait(timeout_ms))

    def click(self, selector: str, **fields: Any) -> JSON:
        return self.action("click", selector=selector, **fields)

    def fill(self, selector: str, value: str, **fields: Any) -> JSON:
        return self.action("fill", selector=selector, value=value, **fields)

    def type(self, selector: str, text: str, **fields: Any) -> JSON:
        return self.action("type", selector=selector, text=text, **fields)

    def press(self, key: str, **fields: Any) -> JSON:
        return self.action("press", key=key, **fields)

    def evaluate(self, expression: str, **fields: Any) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        return self.action("evaluate", expression=expression, **fields).get("result")

    def screenshot(self, format: str = "png", full_page: bool = False,
                   selector: Optional[str] = None, quality: Optional[int] = None,
                   tab_id: Optional[str] = None) -> bytes:
        """The image bytes (PNG by default)."""
        return self.client.request("GET", self._path("/screenshot"), query={
            "format": format, "fullPage": full_page or None, "selector": selector,
            "quality": quality, "tabId": tab_id}).body

    def tabs(self) -> List[JSON]:
        """[{"tabId", "url", "title", "active"}]."""
        return cast(List[JSON], self.client._json("GET", self._path("/tabs"))["tabs"])

    def new_tab(self, url: Optional[str] = None) -> str:
        """Open a tab (it becomes current); its tabId."""
        tab = self.client._json("POST", self._path("/tabs"), _drop_none({"url": url}))["tabId"]
        return str(tab)

    def close_tab(self, tab_id: str) -> None:
        self.client.request("DELETE", self._path(f"/tabs/{tab_id}"))

    def close(self) -> None:
        """DELETE the session (Chromium and its profile are gone). Closing twice is fine."""
        try:
            self.client.request("DELETE", self._path())
        except SandboxdError as e:
            if e.status != 404:
                raise
