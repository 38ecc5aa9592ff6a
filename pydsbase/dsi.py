"""DSI's semantics on top of any ``datashield.DSSession``: what dsBaseClient's calls rely on.

- ``datasources``: an ordered subset of the session's connection names (R's ``conns[2:3]``);
  results come back as a list in that order (the stock session returns completion order).
- ``aggregate_by_study``: the one fan-out of an aggregate call; every study's answer or error,
  keyed by server name, never raising for a failed study. Answers are R values (:mod:`pydsbase.rvalue`):
  a session of pydsbase's drivers gives them decoded from R's serialization; a stock session of
  ``datashield_opal`` gives parsed JSON, which becomes the model here (:func:`pydsbase.rjson.restore`,
  typed by the call's result shape) and is named in ``StudyAnswers.inexact`` (its numbers are rounded).
- A call that fails in any study raises :class:`DataSHIELDErrors`, whose message is DSI's
  "There are some DataSHIELD errors, list them with datashield.errors()" and whose
  ``datashield_errors`` is what ``datashield.errors()`` would list: study name -> R's messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datashield.interface import DSError

from pydsbase import rjson
from pydsbase.errors import DSI_ERRORS_MESSAGE, DataSHIELDErrors, RError, RockJSONError, UnknownStudyError
from pydsbase.rvalue import RAtomic, RLanguage, RList, RValue
from pydsbase.session import selected_names

__all__ = [
    "DSI_ERRORS_MESSAGE",
    "DataSHIELDErrors",
    "StudyAnswers",
    "aggregate",
    "aggregate_answers",
    "aggregate_by_study",
    "assign",
    "datasource_names",
]

_DATASOURCES_MESSAGE = "The 'datasources' were expected to be a list of DSConnection-class objects"


def datasource_names(session: Any, datasources: Sequence[str] | str | None) -> list[str]:
    """The connection names a call goes to, in order; all of the session's when None (R's error otherwise)."""
    try:
        names = selected_names(list(session.get_connection_names()), datasources)
    except UnknownStudyError:
        raise RError(_DATASOURCES_MESSAGE) from None
    if not names:
        raise RError(_DATASOURCES_MESSAGE)
    return names


class StudyAnswers(dict[str, RValue | None]):
    """The answers of one call, by server name; ``inexact``: the studies whose answer came as JSON
    text (a stock ``datashield_opal`` session), whose numbers are rounded (:data:`pydsbase.rjson.JSON_LOSS`)."""

    inexact: tuple[str, ...] = ()


def aggregate_by_study(
    session: Any, expr: str, names: Sequence[str], timeout: float | None = None
) -> tuple[StudyAnswers, dict[str, Exception]]:
    """One aggregate call to the studies ``names``: ``(answers, errors)``, each keyed by server name.

    ``answers`` holds every answer the session gave (in ``names`` order), ``errors`` every failed
    study (in ``names`` order, then any error the session names otherwise). Never raises for a
    failed study. A study that neither answered nor failed (a session that drops the answers of a
    call that failed elsewhere) is in neither. ``timeout``: the call's limit (a ``pydsbase.Session``).
    An answer that came as JSON is restored into the model (its study in ``answers.inexact``).
    """
    extra = {} if timeout is None else {"timeout": timeout}
    try:
        result = session.aggregate(expr, conn_names=list(names), **extra)
    except DSError as exc:
        if not session.get_errors():
            raise
        result = getattr(exc, "results", None) or {}
    found: dict[str, Exception] = dict(session.get_errors() or {})
    errors = {n: found[n] for n in names if n in found} | found
    answers = StudyAnswers()
    inexact = []
    for name in names:
        if name in errors or name not in result:
            continue
        answer = result[name]
        if answer is not None and not isinstance(answer, RAtomic | RList | RLanguage):
            try:
                answer = rjson.restore(answer, expr)
            except RockJSONError as exc:  # the study's answer is unusable: that study failed the call
                errors[name] = exc
                continue
            inexact.append(name)
        answers[name] = answer
    answers.inexact = tuple(inexact)
    return answers, errors


def aggregate_answers(session: Any, expr: str, names: Sequence[str]) -> StudyAnswers:
    """One aggregate call whose every study must answer (DSI's :class:`DataSHIELDErrors` otherwise)."""
    answers, errors = aggregate_by_study(session, expr, names)
    if errors:
        _raise_study_errors(errors)
    return answers


def _raise_study_errors(errors: dict[str, Exception], cause: Exception | None = None) -> None:
    raise DataSHIELDErrors({n: [str(err)] for n, err in errors.items()}) from cause


def aggregate(session: Any, expr: str, names: Sequence[str]) -> list[RValue | None]:
    """``DSI::datashield.aggregate(datasources, expr)``: one value per study, in ``names`` order."""
    answers = aggregate_answers(session, expr, names)
    return [answers.get(name) for name in names]


def assign(session: Any, symbol: str, expr: str, names: Sequence[str]) -> None:
    """``DSI::datashield.assign(datasources, symbol, expr)`` for an expression."""
    try:
        session.assign_expr(symbol, expr, conn_names=list(names))
    except DSError as exc:
        errors = dict(session.get_errors() or {})
        if not errors:
            raise
        _raise_study_errors({n: errors[n] for n in names if n in errors} | errors, exc)
    if session.get_errors():
        _raise_study_errors(dict(session.get_errors()))
