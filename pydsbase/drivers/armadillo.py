"""The Armadillo backend: every study is a MOLGENIS Armadillo server or a pydsbase study server.

``DSLoginBuilder().add("study1", url="http://127.0.0.1:8701", user="u", password="p",
driver="pydsbase.ArmadilloDriver")`` (or ``token=...``: sent as ``Authorization: Bearer``). The
server speaks Armadillo's DataSHIELD API (no ``/ws`` prefix; see ``r_server/armadillo.py``): the
connection logs in on ``POST /select-profile`` (Basic credentials or the Bearer token, body the
profile) and then sends only the ``JSESSIONID`` cookie it gets (the credentials on every request
when a server sets none), over the same kind of ``httpx.Client`` as the Opal driver
(``HTTPStudyConnection``: keep-alive, the process's verifying TLS context).

Each study session has one R session and one *last command*: assign and aggregate calls are submitted
with ``async=true`` (201), so a session fans a call out to every study at once, and their outcome is
then taken from ``GET /lastresult`` (blocks until the command is done: 200 and R's
``serialize(value, NULL)``, read by the one decoder :func:`pydsbase.rserialize.unserialize`; or 404,
after which ``GET /lastcommand`` says whether it failed and why). A failed command's ``message``
holds a JSON object whose ``message`` is the study's message (R's, for an R error); it becomes a
``StudyCallError`` of the kind the object names, so errors read as over Opal's API.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from datashield.interface import DSDriver, DSLoginInfo

from pydsbase.drivers.base import ReadySession
from pydsbase.drivers.http import (
    _CALL_TIMEOUT,
    _CONNECT_TIMEOUT,
    RDS_MEDIA,
    STALE_LOGIN_MESSAGE,
    HTTPStudyConnection,
    PolledResult,
)
from pydsbase.errors import StudyCallError, study_error
from pydsbase.rserialize import unserialize

__all__ = ["ArmadilloConnection", "ArmadilloDriver", "ArmadilloResult"]

SESSION_COOKIE = "JSESSIONID"
PROFILE = "default"
_VARIABLES_SYMBOL = "pydsbase.variables"  # a scratch symbol for list_table_variables (removed again)
_EMBEDDED = re.compile(r"\{.*\}", re.DOTALL)
# an answer's HTTP status -> the wire kind of its error (Armadillo's error JSON carries no kind)
_KIND_OF_STATUS = {400: "rejected", 401: "auth", 403: "auth", 404: "rejected", 409: "session", 413: "too_large",
                   415: "rejected", 429: "rate_limited", 503: "unavailable"}


def armadillo_base(url: str) -> str:
    """``http(s)://host:port[/prefix]`` -> the base of Armadillo's API (the URL itself)."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"a study URL looks like http://host:port, not {url!r}")
    return url.rstrip("/")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def command_failure(study: str, command: Any) -> StudyCallError:
    """The error of a failed command of ``GET /lastcommand``: its ``message`` embeds a JSON object
    ``{"status": kind, "message": ...}`` (R's try() text, as Armadillo sends it); our servers add
    ``condition``, R's bare message, which is taken when present. Any other text is kept whole."""
    text = str(command.get("message") or "") if isinstance(command, dict) else ""
    found = _EMBEDDED.search(text)
    if found is not None:
        try:
            inner = json.loads(found.group(0))
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            message = inner.get("condition") if isinstance(inner.get("condition"), str) else inner.get("message")
            if isinstance(message, str):
                return study_error(study, message, kind=str(inner.get("status") or "r_error"))
    return study_error(study, text or "the command failed on the study server", kind="r_error")


class ArmadilloConnection(HTTPStudyConnection):
    def __init__(self, info: DSLoginInfo, transport: httpx.BaseTransport | None = None) -> None:
        self.name = info.name
        self.url = info.url
        self._connect_client(armadillo_base(info.url), transport)
        self._session: ReadySession | None = None
        self._logged_in = False
        self._token: str | None = None
        self.profile = info.profile or PROFILE
        try:
            self.user = self._login(info)
        except BaseException:
            self._client.close()
            raise

    def _login(self, info: DSLoginInfo) -> str:
        """``POST /select-profile`` with the credentials; keep the ``JSESSIONID`` cookie the server sets."""
        if info.token is not None and info.user is None:
            credentials = {"Authorization": f"Bearer {info.token}"}
            user = ""
        else:
            pair = f"{info.user or ''}:{info.password or ''}".encode()
            credentials = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
            user = info.user or ""
        response = self.send("POST", "/select-profile", content=self.profile.encode("utf-8"),
                             headers={**credentials, "Content-Type": "text/plain"})
        if response.status_code == 404:
            raise study_error(self.name, f"Profile not found: '{self.profile}'", kind="rejected")
        if response.status_code >= 400:
            raise self.failure(response)
        cookie = response.cookies.get(SESSION_COOKIE)
        self._client.cookies.clear()
        if cookie:
            self._token = cookie
            self._client.headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        else:  # a server that keeps no session: the credentials go with every request
            self._client.headers.update(credentials)
        self._logged_in = True
        return user

    # -- the wire ---------------------------------------------------------------------------------

    def failure(self, response: httpx.Response) -> StudyCallError:
        """The error of a 4xx/5xx answer (Spring's error JSON: its ``message``); a 401 once logged in
        means the server forgot the login."""
        if response.status_code == 401 and self._logged_in:
            return study_error(self.name, STALE_LOGIN_MESSAGE, kind="session")
        body = _json(response)
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        if response.status_code == 500 and message:
            return command_failure(self.name, {"message": message})
        kind = _KIND_OF_STATUS.get(response.status_code, "http")
        return study_error(self.name, message or f"HTTP {response.status_code} from the study server", kind=kind)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            raise self.failure(response)
        return _json(response) if response.content else None

    # -- content ----------------------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Armadillo's table names: ``PROJECT/FOLDER/TABLE`` (on a pydsbase study, top-level tables by name)."""
        return [str(name) for name in self.request("GET", "/tables") or []]

    def has_table(self, name: str) -> bool:
        response = self.send("HEAD", "/tables/" + "/".join(_segment(part) for part in name.split("/")))
        if response.status_code >= 400 and response.status_code != 404:
            raise self.failure(response)
        return response.status_code == 200

    def list_table_variables(self, table: str) -> list[str]:
        """Armadillo's API lists no variables: the table's column names, from a scratch symbol."""
        self.assign_table(_VARIABLES_SYMBOL, table, asynchronous=False).fetch()
        try:
            names = self.aggregate(f'colnamesDS("{_VARIABLES_SYMBOL}")', asynchronous=False).fetch()
        finally:
            self.rm_symbol(_VARIABLES_SYMBOL)
        return [str(n) for n in getattr(names, "data", None) or []]

    # -- session ----------------------------------------------------------------------------------

    def _open_session(self) -> str:
        return self.profile  # the login's R session: opened by /select-profile

    # -- assign / aggregate -----------------------------------------------------------------------

    def _submit(self, path: str, params: dict[str, str], body: str | None, decode: bool,
                asynchronous: bool) -> ArmadilloResult:
        self.start_session()
        headers = {"Accept": RDS_MEDIA}
        if body is not None:
            headers["Content-Type"] = "text/plain"
        timeout = None if asynchronous else httpx.Timeout(None, connect=_CONNECT_TIMEOUT)
        response = self.send("POST", path, params={**params, "async": "true" if asynchronous else "false"},
                             content=(body or "").encode("utf-8"), headers=headers,
                             **({} if timeout is None else {"timeout": timeout}))
        if response.status_code != (201 if asynchronous else 200):  # Armadillo: 201 queued, 200 done
            raise self.failure(response)
        result = ArmadilloResult(self, decode)
        if not asynchronous:
            result.take(response)
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
    ) -> ArmadilloResult:
        params = {"symbol": symbol, "table": table}
        if variables is not None:
            names = [str(v) for v in variables]
            if any("," in n for n in names):
                raise study_error(self.name, "a variable name cannot hold a comma", kind="rejected")
            params["variables"] = ",".join(names)
        return self._submit("/load-table", params, None, decode=False, asynchronous=asynchronous)

    def assign_expr(self, symbol: str, expr: str, asynchronous: bool = True) -> ArmadilloResult:
        return self._submit(f"/symbols/{_segment(symbol)}", {}, expr, decode=False, asynchronous=asynchronous)

    def aggregate(self, expr: str, asynchronous: bool = True) -> ArmadilloResult:
        return self._submit("/execute", {}, expr, decode=True, asynchronous=asynchronous)

    # -- symbols ----------------------------------------------------------------------------------

    def list_symbols(self) -> list[str]:
        return [str(s) for s in self.request("GET", "/symbols") or []]

    def rm_symbol(self, name: str) -> None:
        self.request("DELETE", f"/symbols/{_segment(name)}")

    # -- configuration ----------------------------------------------------------------------------

    def list_profiles(self) -> list[str]:
        return [str(p) for p in (self.request("GET", "/profiles") or {}).get("available", [])]

    def list_methods(self, type: str = "aggregate") -> list[str]:
        return [str(m["name"]) for m in self.request("GET", f"/methods/{_segment(type)}")]

    def list_packages(self) -> list[str]:
        return [str(p["name"]) for p in self.request("GET", "/packages")]

    def keep_alive(self) -> None:
        self.request("GET", "/actuator/info")

    def info(self) -> dict[str, Any]:
        """A pydsbase study's ``info`` (its route under Opal's API, reached with the same login)."""
        headers = {"Cookie": f"opalsid={self._token}"} if self._token else {}
        return dict(self.request("GET", "/ws/pydsbase/info", headers=headers))

    def disconnect(self) -> None:
        """Log out (the server closes the R session) and close the HTTP client; never raises."""
        try:
            self.send("POST", "/logout")
        except Exception:  # disconnecting is best effort: the server expires what it cannot be told
            pass
        finally:
            self._session = None
            self._client.close()


def _segment(text: str) -> str:
    return quote(text, safe="")


class ArmadilloResult(PolledResult):
    """The session's last command. ``is_completed`` never raises; ``fetch`` returns the value or raises."""

    def __init__(self, conn: ArmadilloConnection, decode: bool) -> None:
        self._conn = conn
        self._decode = decode
        self._outcome: tuple[bool, Any] | None = None  # (ok, value) or (False, error)

    def take(self, response: httpx.Response) -> None:
        """Keep the outcome of a synchronous submit's answer (200: the value or nothing)."""
        self._record(lambda: unserialize(response.content) if self._decode else None)

    def _record(self, value: Any) -> None:
        try:
            self._outcome = (True, value())
        except StudyCallError as exc:
            self._outcome = (False, exc)
        except Exception as exc:  # a malformed answer: a failure to report, not to raise
            failure = study_error(self._conn.name, "the study server sent a malformed answer", kind="http")
            failure.__cause__ = exc
            self._outcome = (False, failure)

    def _last_command(self) -> dict[str, Any] | None:
        response = self._conn.send("GET", "/lastcommand")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self._conn.failure(response)
        command = _json(response)
        if not isinstance(command, dict):
            raise study_error(self._conn.name, "the study server sent a malformed answer", kind="http")
        return command

    def _poll(self, wait: float) -> bool:
        """Take the outcome from ``/lastresult`` (blocking up to ``wait`` s); True when there is one."""
        if self._outcome is not None:
            return True
        wait = max(0.001, wait)
        try:
            response = self._conn.send("GET", "/lastresult", headers={"Accept": RDS_MEDIA},
                                       timeout=httpx.Timeout(wait, connect=_CONNECT_TIMEOUT))
        except StudyCallError as exc:
            if exc.kind == "timeout":
                return False
            self._outcome = (False, exc)
            return True
        if response.status_code == 200 and response.content:
            self._record(lambda: unserialize(response.content) if self._decode else None)
        elif response.status_code in (200, 404):  # no value: the command failed, or it has none
            self._record(self._no_value)
        else:
            self._outcome = (False, self._conn.failure(response))
        return True

    def _no_value(self) -> None:
        command = self._last_command()
        if command is not None and command.get("status") == "FAILED":
            raise command_failure(self._conn.name, command)
        if self._decode:
            raise study_error(self._conn.name, "the study server has no result for the call", kind="http")
        return None

    def is_completed(self) -> bool:
        if self._outcome is not None:
            return True
        try:
            command = self._last_command()
        except StudyCallError as exc:
            self._outcome = (False, exc)
            return True
        if command is None or command.get("status") in ("COMPLETED", "FAILED"):
            return self._poll(_CALL_TIMEOUT)
        return False


class ArmadilloDriver(DSDriver):
    """DSI's driver of MOLGENIS Armadillo's DataSHIELD API (``pydsbase.ArmadilloDriver``)."""

    @classmethod
    def new_connection(cls, args: DSLoginInfo, restore: str | None = None) -> ArmadilloConnection:
        if restore:
            raise ValueError("pydsbase studies have no workspaces to restore")
        return ArmadilloConnection(args)
