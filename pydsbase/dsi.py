"""DSI's semantics on top of any ``datashield.DSSession``: what dsBaseClient's calls rely on.

- ``datasources``: an ordered subset of the session's connection names (R's ``conns[2:3]``);
  results come back as a list in that order (the stock session returns completion order).
- A call that fails in any study raises :class:`DataSHIELDErrors`, whose message is DSI's
  "There are some DataSHIELD errors, list them with datashield.errors()" and whose
  ``datashield_errors`` is what ``datashield.errors()`` would list: study name -> R's messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datashield.interface import DSError

from pydsbase.errors import RError
from pydsbase.rvalue import RValue

__all__ = ["DSI_ERRORS_MESSAGE", "DataSHIELDErrors", "aggregate", "assign", "datasource_names"]

DSI_ERRORS_MESSAGE = "There are some DataSHIELD errors, list them with datashield.errors()"
_DATASOURCES_MESSAGE = "The 'datasources' were expected to be a list of DSConnection-class objects"


class DataSHIELDErrors(RError):
    """DSI stopped because some studies failed; ``datashield_errors`` maps study -> messages."""

    def __init__(self, datashield_errors: dict[str, list[str]]) -> None:
        super().__init__(DSI_ERRORS_MESSAGE)
        self.datashield_errors = datashield_errors


def datasource_names(session: Any, datasources: Sequence[str] | None) -> list[str]:
    """The connection names a call goes to, in order; all of the session's when None."""
    known = list(session.get_connection_names())
    if datasources is None:
        if not known:
            raise RError(_DATASOURCES_MESSAGE)
        return known
    if isinstance(datasources, str):
        datasources = [datasources]
    names = list(datasources)
    if not names or any(name not in known for name in names):
        raise RError(_DATASOURCES_MESSAGE)
    return names


def _raise_study_errors(session: Any, names: Sequence[str], cause: Exception) -> None:
    errors: dict[str, Exception] = dict(session.get_errors() or {})
    if not errors:
        raise cause
    ordered = [n for n in names if n in errors] + [n for n in errors if n not in names]
    raise DataSHIELDErrors({n: [str(errors[n])] for n in ordered}) from cause


def aggregate(session: Any, expr: str, names: Sequence[str]) -> list[RValue | None]:
    """``DSI::datashield.aggregate(datasources, expr)``: one value per study, in ``names`` order."""
    try:
        result = session.aggregate(expr, conn_names=list(names))
    except DSError as exc:
        _raise_study_errors(session, names, exc)
    if session.get_errors():
        _raise_study_errors(session, names, DSError(DSI_ERRORS_MESSAGE))
    return [result.get(name) for name in names]


def assign(session: Any, symbol: str, expr: str, names: Sequence[str]) -> None:
    """``DSI::datashield.assign(datasources, symbol, expr)`` for an expression."""
    try:
        session.assign_expr(symbol, expr, conn_names=list(names))
    except DSError as exc:
        _raise_study_errors(session, names, exc)
    if session.get_errors():
        _raise_study_errors(session, names, DSError(DSI_ERRORS_MESSAGE))
