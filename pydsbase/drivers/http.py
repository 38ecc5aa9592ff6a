"""The Opal backend: every study is an Opal server or a pydsbase study server (``python -m r_server``).

``DSLoginBuilder().add("study1", url="http://127.0.0.1:8701", user="u", password="p",
driver="pydsbase.OpalDriver")`` (or ``token=...`` for an access token; ``pydsbase.HTTPDriver`` is
the same driver under its former name). The server speaks Opal's
DataSHIELD REST API (``/ws``, see ``r_server/http.py``): each connection logs in once (Basic
credentials or ``X-Opal-Auth`` token on ``/ws/system/subject-profile/_current``), then sends only the
``opalsid`` cookie (and, when the server sets an ``XSRF-TOKEN`` cookie, as production Opal does, echoes
it in ``X-XSRF-TOKEN``), over one ``httpx.Client`` with keep-alive. Assign and aggregate calls are
submitted asynchronously, so a session fans one call out to all studies at once; the results are
then collected by long-polling ``.../command/{id}/result``. Values travel as R's own serialization
(``Accept: application/octet-stream``, ``serialize(value, NULL)`` as Rock sends it), read by the one
decoder, :func:`pydsbase.rserialize.unserialize`. ``is_completed()`` never raises; failures surface in ``fetch()`` as
``StudyCallError`` (a ``datashield.interface.DSError``) whose ``str()`` is the study's message.
"""

from __future__ import annotations

import base64
import functools
import http.client
import http.cookies
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from datashield.interface import DSDriver, DSLoginInfo, DSResult

from pydsbase.drivers.base import ReadySession, StudyConnection
from pydsbase.errors import StudyCallError, study_error
from pydsbase.rserialize import unserialize
from pydsbase.rvalue import RValue

__all__ = ["HTTPConnection", "HTTPDriver", "HTTPResult", "HTTPStudyConnection", "OpalDriver"]

_POLL_SLICE = 30.0  # longest single long-poll; the server caps it too
_CONNECT_TIMEOUT = 10.0
_CALL_TIMEOUT = 120.0  # synchronous calls (login, ls, rm, info, ...)
_SUBMIT_WAIT = 30.0  # a synchronous submit waits this long for its outcome before falling back to polling
_POLL_GRACE = 15.0  # a long-poll may answer this much later than its wait before it counts as unanswered
STALE_LOGIN_MESSAGE = (
    "the study server no longer knows this login (it was restarted, or the login expired): "
    "log in again with a new session"
)


RDS_MEDIA = "application/octet-stream"
SID_COOKIE = "opalsid"
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "X-XSRF-TOKEN"


def api_base(url: str) -> str:
    """``http(s)://host:port[/prefix]`` -> the ``/ws`` base of its API."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"a study URL looks like http://host:port, not {url!r}")
    base = url.rstrip("/")
    return base if base.endswith("/ws") else base + "/ws"


def _error_of(study: str, response: httpx.Response) -> StudyCallError:
    """The error of Opal's error JSON: ``status`` is our error kind, ``message`` the study's message."""
    try:
        error = response.json()
        kind = str(error.get("status", ""))
        message = str(error.get("message") or ", ".join(str(a) for a in error.get("arguments") or []))
    except (ValueError, AttributeError, TypeError):
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

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        """Send and return the answer as an ``httpx.Response``; raises ``OSError``/``HTTPException``."""
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
                    conn.request(method, self._prefix + path, body=body, headers=headers)
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


class HTTPStudyConnection(StudyConnection):
    """What the HTTP drivers (Opal's API, Armadillo's) share: one kept-alive ``httpx.Client`` with the
    process's verifying TLS context, and ``send``, where transport failures become study errors."""

    name: str
    url: str
    _client: httpx.Client

    def _connect_client(self, base_url: str, transport: httpx.BaseTransport | None) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(_CALL_TIMEOUT, connect=_CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=60),
            headers={"User-Agent": "pydsbase-http", "Accept": "application/json"},
            verify=_tls_context(),
            transport=transport,
        )

    def _received(self, response: httpx.Response) -> httpx.Response:
        """A hook on every answer (Opal's driver keeps an ``XSRF-TOKEN`` cookie here)."""
        return response

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures become a ``StudyCallError`` of kind ``unavailable``."""
        try:
            return self._received(self._client.request(method, path, **kwargs))
        except httpx.TimeoutException as exc:
            raise study_error(self.name, f"the study server did not answer in time ({exc})",
                                 kind="timeout") from exc
        except httpx.HTTPError as exc:
            raise study_error(self.name, f"cannot reach the study server at {self.url}: {exc}",
                                 kind="unavailable") from exc


class HTTPConnection(HTTPStudyConnection):
    def __init__(self, info: DSLoginInfo, transport: httpx.BaseTransport | None = None) -> None:
        self.name = info.name
        self.url = info.url
        self._fast = _FastLane(api_base(info.url)) if transport is None else None
        self._connect_client(api_base(info.url), transport)
        self._session: ReadySession | None = None
        self._logged_in = False
        self._sid: str | None = None
        self._xsrf: str | None = None
        try:
            self.user = self._login(info)
        except BaseException:
            self._client.close()
            raise

    def _login(self, info: DSLoginInfo) -> str:
        """Log in with the credentials once; keep only the ``opalsid`` cookie the study sets."""
        if info.token is not None and info.user is None:
            credentials = {"X-Opal-Auth": info.token}
        else:
            pair = f"{info.user or ''}:{info.password or ''}".encode()
            credentials = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        response = self.send("GET", "/system/subject-profile/_current", headers=credentials)
        if response.status_code >= 400:
            raise _error_of(self.name, response)
        sid = response.cookies.get(SID_COOKIE)
        try:
            user = str(response.json()["principal"])
        except (ValueError, KeyError, TypeError) as exc:
            raise study_error(self.name, "the study server sent a malformed answer", kind="http") from exc
        if not sid:
            raise study_error(self.name, "the study server set no login cookie", kind="http")
        self._client.cookies.clear()
        self._sid = sid
        self._client.headers["Cookie"] = self._cookie()
        self._logged_in = True
        return user

    def _cookie(self) -> str:
        cookie = f"{SID_COOKIE}={self._sid}"
        return cookie if self._xsrf is None else f"{cookie}; {XSRF_COOKIE}={self._xsrf}"

    def _received(self, response: httpx.Response) -> httpx.Response:
        return self._keep_xsrf(response)

    def _keep_xsrf(self, response: httpx.Response) -> httpx.Response:
        """Remember an ``XSRF-TOKEN`` cookie the server sets: sent back as cookie and ``X-XSRF-TOKEN``."""
        for header in response.headers.get_list("set-cookie"):
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            try:
                jar.load(header)
            except http.cookies.CookieError:
                continue
            morsel = jar.get(XSRF_COOKIE)
            if morsel is not None and morsel.value and morsel.value != self._xsrf:
                self._xsrf = morsel.value
                self._client.headers[XSRF_HEADER] = morsel.value
                if self._sid is not None:
                    self._client.headers["Cookie"] = self._cookie()
        return response

    # -- the wire ---------------------------------------------------------------------------------

    def _fast_send(self, method: str, path: str, body: bytes, headers: dict[str, str],
                   wait: float) -> httpx.Response:
        assert self._fast is not None
        headers = {"User-Agent": "pydsbase-http", "Cookie": self._client.headers["Cookie"], **headers}
        if self._xsrf is not None:
            headers[XSRF_HEADER] = self._xsrf
        try:
            return self._keep_xsrf(self._fast.send(method, path, body, headers, _CALL_TIMEOUT + wait))
        except TimeoutError as exc:
            raise study_error(self.name, f"the study server did not answer in time ({exc})",
                                 kind="timeout") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise study_error(self.name, f"cannot reach the study server at {self.url}: {exc}",
                                 kind="unavailable") from exc

    def failure(self, response: httpx.Response) -> StudyCallError:
        """The error of a 4xx/5xx answer; a 401 once logged in means the server forgot the login."""
        if response.status_code == 401 and self._logged_in:
            return study_error(self.name, STALE_LOGIN_MESSAGE, kind="session")
        return _error_of(self.name, response)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            raise self.failure(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise study_error(self.name, "the study server sent a malformed answer", kind="http") from exc

    # -- content ----------------------------------------------------------------------------------

    def _datasources(self) -> list[dict[str, Any]]:
        return [dict(ds) for ds in self.request("GET", "/datasources")]

    def list_tables(self) -> list[str]:
        """Opal's table names: ``PROJECT.TABLE`` (a top-level table under the study's own name)."""
        return [f"{ds['name']}.{table}" for ds in self._datasources() for table in ds.get("table", [])]

    def has_table(self, name: str) -> bool:
        if "." not in name:
            return any(name in ds.get("table", []) for ds in self._datasources())
        return name in self.list_tables()

    def list_table_variables(self, table: str) -> list[str]:
        project, sep, name = table.partition(".")
        if not sep:  # a bare name: the project that lists it
            name = table
            owners = [ds["name"] for ds in self._datasources() if table in ds.get("table", [])]
            if not owners:
                raise study_error(self.name, f"table {table!r} does not exist in study", kind="rejected")
            project = owners[0]
        path = f"/datasource/{_segment(project)}/table/{_segment(name)}/variables"
        return [str(v["name"]) for v in self.request("GET", path)]

    # -- session ----------------------------------------------------------------------------------

    def _open_session(self) -> str:
        return str(self.request("POST", "/datashield/sessions")["id"])

    def _path(self) -> str:
        return f"/datashield/session/{_segment(self.start_session().sid)}"

    # -- assign / aggregate -----------------------------------------------------------------------

    def _submit(self, method: str, path: str, body: str | None, decode: bool, asynchronous: bool,
                params: dict[str, str] | None = None) -> HTTPResult:
        """Submit a command asynchronously. Synchronous calls ask (our ``wait`` extension) for the outcome
        in the same request when the study answers within ``_SUBMIT_WAIT`` s; otherwise it is polled."""
        query = {**(params or {}), "async": "true"}
        if not asynchronous:
            query["wait"] = f"{_SUBMIT_WAIT:g}"
        headers = {"Accept": RDS_MEDIA}
        if body is not None:
            headers["Content-Type"] = "application/x-rscript"
        content = body.encode("utf-8") if body is not None else b""
        session_path = self._path()
        full = f"{session_path}{path}"
        if not asynchronous and self._fast is not None:
            response = self._fast_send(method, f"{full}?{urlencode(query)}", content, headers, _SUBMIT_WAIT)
        else:
            response = self.send(method, full, content=content, headers=headers, params=query,
                                 timeout=httpx.Timeout(_CALL_TIMEOUT + _SUBMIT_WAIT, connect=_CONNECT_TIMEOUT))
        content_type = response.headers.get("content-type", "")
        if response.status_code in (200, 202) and content_type.startswith("text/plain"):
            return HTTPResult(self, session_path, response.text.strip(), decode)
        result = HTTPResult(self, session_path, "", decode)
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
        params = {} if variables is None else {"variables": variables_filter(self.name, list(variables))}
        path = f"/symbol/{_segment(symbol)}/table/{_segment(table)}"
        return self._submit("PUT", path, None, decode=False, asynchronous=asynchronous, params=params)

    def assign_expr(self, symbol: str, expr: str, asynchronous: bool = True) -> HTTPResult:
        return self._submit("PUT", f"/symbol/{_segment(symbol)}", expr, decode=False, asynchronous=asynchronous)

    def aggregate(self, expr: str, asynchronous: bool = True) -> HTTPResult:
        return self._submit("POST", "/aggregate", expr, decode=True, asynchronous=asynchronous)

    # -- symbols ----------------------------------------------------------------------------------

    def list_symbols(self) -> list[str]:
        return list(self.request("GET", f"{self._path()}/symbols"))

    def rm_symbol(self, name: str) -> None:
        self.request("DELETE", f"{self._path()}/symbol/{_segment(name)}")

    # -- configuration ----------------------------------------------------------------------------

    def list_methods(self, type: str = "aggregate") -> list[str]:
        return [str(m["name"]) for m in self.request("GET", f"/datashield/env/{_segment(type)}/methods")]

    def keep_alive(self) -> None:
        if self._session is not None:
            self.request("GET", self._path())

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/pydsbase/info"))

    def disconnect(self) -> None:
        """Close the R session, log out and close the HTTP client; never raises."""
        try:
            if self._session is not None:
                self.send("DELETE", self._path())
            self.send("DELETE", "/auth/session/_current")
        except Exception:  # disconnecting is best effort: the server expires what it cannot be told
            pass
        finally:
            self._session = None
            self._client.close()
            if self._fast is not None:
                self._fast.close()


def variables_filter(study: str, variables: list[str]) -> str:
    """Opal's ``variables`` filter selecting these columns: ``name().any('a','b')`` (as DSOpal writes it)."""
    items = []
    for name in variables:
        quote_char = "'" if "'" not in name else '"'
        if quote_char in name or "\\" in name:
            raise study_error(study, f"a variable name cannot hold both quotes or a backslash: {name!r}",
                                 kind="rejected")
        items.append(f"{quote_char}{name}{quote_char}")
    return f"name().any({','.join(items)})"


def _segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return quote(text, safe="")


class PolledResult(DSResult):
    """A command's outcome, asked of the study server until there is one: ``_poll(wait)`` asks once,
    waiting up to ``wait`` s (a long poll), and is True once ``_outcome`` is set. ``wait`` and ``fetch``
    are the same for every HTTP API."""

    _conn: HTTPStudyConnection
    _decode: bool
    _outcome: tuple[bool, Any] | None  # (ok, value) or (False, error)

    def _poll(self, wait: float) -> bool:
        raise NotImplementedError

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
        return value if self._decode else None


class HTTPResult(PolledResult):
    """A submitted command. ``is_completed`` never raises; ``fetch`` returns the value or raises."""

    def __init__(self, conn: HTTPConnection, session_path: str, command: str, decode: bool) -> None:
        self._conn = conn
        self._session_path = session_path
        self.command = command
        self._decode = decode
        self._outcome: tuple[bool, Any] | None = None  # (ok, value) or (False, error)

    def _poll(self, wait: float) -> bool:
        """Ask the server once, waiting up to ``wait`` s; record the outcome when there is one.

        The request itself gives up ``_POLL_GRACE`` s after ``wait``, so a hung server (stopped, or
        its event loop blocked) cannot hold a caller past its deadline by more than that.
        """
        if self._outcome is not None:
            return True
        try:
            response = self._conn.send(
                "GET", f"{self._session_path}/command/{_segment(self.command)}/result",
                params={"wait": f"{wait:.3f}"}, headers={"Accept": RDS_MEDIA},
                timeout=httpx.Timeout(wait + _POLL_GRACE, connect=_CONNECT_TIMEOUT),
            )
            if response.status_code == 204:
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
                if self._decode:
                    if not response.headers.get("content-type", "").startswith(RDS_MEDIA):
                        raise ValueError("not R's serialization")
                    self._outcome = (True, unserialize(response.content))
                else:
                    self._outcome = (True, None)
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


class OpalDriver(DSDriver):
    """DSI's driver of Opal's DataSHIELD REST API (``pydsbase.OpalDriver``)."""

    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> HTTPConnection:
        if restore:
            raise ValueError("pydsbase studies have no workspaces to restore")
        return HTTPConnection(args)


HTTPDriver = OpalDriver  # its former name
