"""The HTTP backend: every study is a pydsbase study server (``python -m r_server``) reached over HTTP.

``DSLoginBuilder().add("study1", url="http://127.0.0.1:8701", user="u", password="p",
driver="pydsbase.HTTPDriver")`` (or ``token=...`` for an access token). Each connection logs in
once and keeps one ``httpx.Client`` with keep-alive. Assign and aggregate calls are submitted
without waiting, so a session fans one call out to all studies at once; the results are then
collected by long-polling. ``is_completed()`` never raises; failures surface in ``fetch()`` as
``StudyCallError`` (a ``datashield.interface.DSError``) whose ``str()`` is the study's message.
"""

from __future__ import annotations

import functools
import http.client
import json
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from datashield.interface import DSDriver, DSLoginInfo, DSResult

from pydsbase.drivers.base import ReadySession, StudyConnection
from pydsbase.errors import StudyCallError, study_error
from pydsbase.rvalue import RValue, from_node

__all__ = ["HTTPConnection", "HTTPDriver", "HTTPResult"]

_POLL_SLICE = 30.0  # longest single long-poll; the server caps it too
_CONNECT_TIMEOUT = 10.0
_CALL_TIMEOUT = 120.0  # synchronous calls (login, ls, rm, info, ...)
_SUBMIT_WAIT = 30.0  # a synchronous submit waits this long for its outcome before falling back to polling
_POLL_GRACE = 15.0  # a long-poll may answer this much later than its wait before it counts as unanswered
STALE_LOGIN_MESSAGE = (
    "the study server no longer knows this login (it was restarted, or the login expired): "
    "log in again with a new session"
)


def api_base(url: str) -> str:
    """``http(s)://host:port[/prefix]`` -> the ``/v1`` base of its API."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"a study URL looks like http://host:port, not {url!r}")
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def _error_of(study: str, response: httpx.Response) -> StudyCallError:
    try:
        error = response.json().get("error") or {}
        kind, message = str(error.get("kind", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        kind, message = "", ""
    if not message:
        kind, message = kind or "http", f"HTTP {response.status_code} from the study server"
    return study_error(study, message, kind=kind)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one costs ~30 ms, and every study needs one."""
    return ssl.create_default_context()


class _FastLane:
    """The hot path (a synchronous submit) over one kept-alive ``http.client`` connection.

    httpx costs ~0.8 ms of client CPU per request; the standard library's client about a quarter of
    that. Used only for plain requests to a real server (not when a test injects an httpx transport).
    """

    def __init__(self, base: str) -> None:
        parsed = urlsplit(base)
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or ""
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        """POST and return the answer as an ``httpx.Response``; raises ``OSError``/``HTTPException``."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._conn
                if conn is None:
                    if self._https:
                        conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                                           context=_tls_context())
                    else:
                        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
                    self._conn = conn
                fresh = conn.sock is None
                try:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    conn.request("POST", self._prefix + path, body=body, headers=headers)
                    answer = conn.getresponse()
                    content = answer.read()
                    return httpx.Response(answer.status, content=content,
                                          headers={"content-type": answer.getheader("content-type", "")})
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self.close_locked()
                    if fresh or attempt == 2:  # a kept-alive socket the server closed: retry once
                        raise
                except BaseException:
                    self.close_locked()
                    raise
        raise AssertionError("unreachable")

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


class HTTPConnection(StudyConnection):
    def __init__(self, info: DSLoginInfo, transport: httpx.BaseTransport | None = None) -> None:
        self.name = info.name
        self.url = info.url
        self._fast = _FastLane(api_base(info.url)) if transport is None else None
        self._client = httpx.Client(
            base_url=api_base(info.url),
            timeout=httpx.Timeout(_CALL_TIMEOUT, connect=_CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=60),
            headers={"User-Agent": "pydsbase-http"},
            verify=_tls_context(),
            transport=transport,
        )
        self._session: ReadySession | None = None
        try:
            if info.token is not None and info.user is None:
                body: dict[str, str] = {"token": info.token}
            else:
                body = {"user": info.user or "", "password": info.password or ""}
            answer = self.request("POST", "/login", json=body)
        except BaseException:
            self._client.close()
            raise
        self.user = str(answer["user"])
        self._client.headers["Authorization"] = f"Bearer {answer['token']}"

    # -- the wire ---------------------------------------------------------------------------------

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures become a ``StudyCallError`` of kind ``unavailable``."""
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise study_error(self.name, f"the study server did not answer in time ({exc})",
                                 kind="timeout") from exc
        except httpx.HTTPError as exc:
            raise study_error(self.name, f"cannot reach the study server at {self.url}: {exc}",
                                 kind="unavailable") from exc

    def _fast_submit(self, path: str, body: dict[str, Any], wait: float) -> httpx.Response:
        assert self._fast is not None
        headers = {"Content-Type": "application/json", "User-Agent": "pydsbase-http",
                   "Authorization": self._client.headers["Authorization"]}
        try:
            return self._fast.post(path, json.dumps(body).encode("utf-8"), headers, _CALL_TIMEOUT + wait)
        except TimeoutError as exc:
            raise study_error(self.name, f"the study server did not answer in time ({exc})",
                                 kind="timeout") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise study_error(self.name, f"cannot reach the study server at {self.url}: {exc}",
                                 kind="unavailable") from exc

    def failure(self, response: httpx.Response) -> StudyCallError:
        """The error of a 4xx/5xx answer; a 401 once logged in means the server forgot the login."""
        if response.status_code == 401 and "Authorization" in self._client.headers:
            return study_error(self.name, STALE_LOGIN_MESSAGE, kind="session")
        return _error_of(self.name, response)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            raise self.failure(response)
        try:
            return response.json()
        except ValueError as exc:
            raise study_error(self.name, "the study server sent a malformed answer", kind="http") from exc

    # -- content ----------------------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        return list(self.request("GET", "/tables"))

    def list_table_variables(self, table: str) -> list[str]:
        return list(self.request("GET", f"/tables/{_segment(table)}/variables"))

    # -- session ----------------------------------------------------------------------------------

    def _open_session(self) -> str:
        return str(self.request("POST", "/sessions")["session"])

    def _sid(self) -> str:
        return _segment(self.start_session().sid)

    # -- assign / aggregate -----------------------------------------------------------------------

    def _submit(self, path: str, body: dict[str, Any], decode: bool, asynchronous: bool) -> HTTPResult:
        """Submit a command. Synchronous calls wait for the outcome in the same request (one round trip)
        when the study answers within ``_SUBMIT_WAIT`` s; otherwise the result is polled as usual."""
        wait = 0.0 if asynchronous else _SUBMIT_WAIT
        if wait and self._fast is not None:
            response = self._fast_submit(f"/sessions/{self._sid()}/{path}?wait={wait:g}", body, wait)
        else:
            response = self.send("POST", f"/sessions/{self._sid()}/{path}", json=body,
                                 params={"wait": f"{wait:g}"} if wait else None,
                                 timeout=httpx.Timeout(_CALL_TIMEOUT + wait, connect=_CONNECT_TIMEOUT))
        if response.status_code == 202:
            try:
                return HTTPResult(self, str(response.json()["command"]), decode)
            except (ValueError, KeyError, TypeError) as exc:
                raise study_error(self.name, "the study server sent a malformed answer", kind="http") from exc
        result = HTTPResult(self, "", decode)
        result.record(response)
        return result

    def assign_table(
        self,
        symbol: str,
        table: str,
        variables: list[str] | None = None,
        missings: bool = False,
        identifiers: str | None = None,
        id_name: str | None = None,
        asynchronous: bool = True,
    ) -> HTTPResult:
        body = {"symbol": symbol, "table": table, "variables": list(variables) if variables is not None else None}
        return self._submit("assign-table", body, decode=False, asynchronous=asynchronous)

    def assign_expr(self, symbol: str, expr: str, asynchronous: bool = True) -> HTTPResult:
        return self._submit("assign", {"symbol": symbol, "expr": expr}, decode=False, asynchronous=asynchronous)

    def aggregate(self, expr: str, asynchronous: bool = True) -> HTTPResult:
        return self._submit("aggregate", {"expr": expr}, decode=True, asynchronous=asynchronous)

    # -- symbols ----------------------------------------------------------------------------------

    def list_symbols(self) -> list[str]:
        return list(self.request("GET", f"/sessions/{self._sid()}/symbols"))

    def rm_symbol(self, name: str) -> None:
        self.request("DELETE", f"/sessions/{self._sid()}/symbols/{_segment(name)}")

    # -- configuration ----------------------------------------------------------------------------

    def list_methods(self, type: str = "aggregate") -> list[str]:
        return list(self.request("GET", "/methods", params={"kind": type}))

    def keep_alive(self) -> None:
        if self._session is not None:
            self.request("GET", f"/sessions/{self._sid()}")

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/info"))

    def disconnect(self) -> None:
        """Close the R session, log out and close the HTTP client; never raises."""
        try:
            if self._session is not None:
                self.send("DELETE", f"/sessions/{self._sid()}")
            self.send("POST", "/logout")
        except Exception:  # disconnecting is best effort: the server expires what it cannot be told
            pass
        finally:
            self._session = None
            self._client.close()
            if self._fast is not None:
                self._fast.close()


def _segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return quote(text, safe="")


class HTTPResult(DSResult):
    """A submitted command. ``is_completed`` never raises; ``fetch`` returns the value or raises."""

    def __init__(self, conn: HTTPConnection, command: str, decode: bool) -> None:
        self._conn = conn
        self.command = command
        self._decode = decode
        self._outcome: tuple[bool, Any] | None = None  # (ok, node) or (False, error)

    def _poll(self, wait: float) -> bool:
        """Ask the server once, waiting up to ``wait`` s; record the outcome when there is one.

        The request itself gives up ``_POLL_GRACE`` s after ``wait``, so a hung server (stopped, or
        its event loop blocked) cannot hold a caller past its deadline by more than that.
        """
        if self._outcome is not None:
            return True
        try:
            response = self._conn.send(
                "GET", f"/commands/{_segment(self.command)}", params={"wait": f"{wait:.3f}"},
                timeout=httpx.Timeout(wait + _POLL_GRACE, connect=_CONNECT_TIMEOUT),
            )
            if response.status_code == 202:
                return False
            self.record(response)
        except StudyCallError as exc:
            self._outcome = (False, exc)
        except Exception as exc:  # anything unexpected: a failure to report, not to raise
            self._malformed(exc)
        return True

    def record(self, response: httpx.Response) -> None:
        """Keep the outcome a finished command's response carries (its value, or its error)."""
        try:
            if response.status_code == 200:
                self._outcome = (True, response.json()["value"])
            else:
                self._outcome = (False, self._conn.failure(response))
        except Exception as exc:  # a malformed answer: a failure to report, not to raise
            self._malformed(exc)

    def _malformed(self, cause: Exception) -> None:
        failure = study_error(self._conn.name, "the study server sent a malformed answer", kind="http")
        failure.__cause__ = cause
        self._outcome = (False, failure)

    def is_completed(self) -> bool:
        return self._poll(0.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: without limit) for the outcome; True when there is one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _POLL_SLICE if deadline is None else min(_POLL_SLICE, deadline - time.monotonic())
            if self._poll(max(0.0, remaining)):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def fetch(self, timeout: float | None = None) -> RValue | None:
        if not self.wait(timeout):
            raise study_error(self._conn.name, f"no answer within {timeout:g} s", kind="timeout")
        assert self._outcome is not None
        ok, value = self._outcome
        if not ok:
            raise value
        return from_node(value) if self._decode else None


class HTTPDriver(DSDriver):
    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> HTTPConnection:
        if restore:
            raise ValueError("pydsbase studies have no workspaces to restore")
        return HTTPConnection(args)
