"""What every pydsbase connection shares: the parts of the DSConnection API our studies do not serve.

pydsbase studies hold tables only (no resources, taxonomies or workspaces) and open their R
session synchronously. Subclasses implement the study operations and ``_open_session``.
"""

from __future__ import annotations

from typing import Any

from datashield.interface import DSConnection, DSResult, RSession

from pydsbase.errors import StudyCallError, study_error

__all__ = ["ReadySession", "StudyConnection"]


class ReadySession(RSession):
    """A study's R session: ready as soon as it exists (our servers open sessions synchronously)."""

    def __init__(self, sid: str) -> None:
        self.sid = sid

    def is_started(self) -> bool:
        return True

    def is_ready(self) -> bool:
        return True

    def is_pending(self) -> bool:
        return False

    def is_failed(self) -> bool:
        return False

    def is_terminated(self) -> bool:
        return False

    def get_last_message(self) -> str:
        return "ready"


class StudyConnection(DSConnection):
    name: str
    _session: ReadySession | None

    def _open_session(self) -> str:
        """Open the R session on the study; return its id."""
        raise NotImplementedError

    def _unsupported(self, what: str) -> StudyCallError:
        return study_error(self.name, f"{what} are not supported by pydsbase studies", kind="rejected")

    def get_name(self) -> str:
        return self.name

    # -- session ----------------------------------------------------------------------------------

    def has_session(self) -> bool:
        return self._session is not None

    def start_session(self, asynchronous: bool = True) -> ReadySession:
        if self._session is None:
            self._session = ReadySession(self._open_session())
        return self._session

    def is_session_started(self) -> bool:
        return self._session is not None

    def get_session(self) -> RSession:
        if self._session is None:
            raise study_error(self.name, "no session: call start_session() first", kind="session")
        return self._session

    # -- what pydsbase studies do not have --------------------------------------------------------

    def has_table(self, name: str) -> bool:
        return name in self.list_tables()

    def list_taxonomies(self) -> list[Any]:
        return []

    def search_variables(self, query: str) -> dict[str, Any]:
        return {}

    def list_resources(self) -> list[str]:
        return []

    def has_resource(self, name: str) -> bool:
        return False

    def assign_resource(self, symbol: str, resource: str, asynchronous: bool = True) -> DSResult:
        raise self._unsupported("resources")

    def list_profiles(self) -> list[str]:
        return ["default"]

    def list_packages(self) -> list[str]:
        return ["pydsbase"]

    def list_workspaces(self) -> list[str]:
        return []

    def save_workspace(self, name: str) -> list[str]:
        raise self._unsupported("workspaces")

    def restore_workspace(self, name: str) -> list[str]:
        raise self._unsupported("workspaces")

    def rm_workspace(self, name: str) -> list[str]:
        return []

    def is_async(self) -> dict[str, bool]:
        return {"aggregate": True, "assign_table": True, "assign_resource": False, "assign_expr": True,
                "session": False}
