"""The client's exception tree."""

from __future__ import annotations

from typing import Any

from datashield.interface import DSError

__all__ = ["DSError", "RError", "SessionCallError", "StudyCallError"]


class RError(Exception):
    """An error dsBaseClient raises in R (``stop(...)``), with R's exact message and condition class."""

    def __init__(self, message: str, r_class: tuple[str, ...] = ("simpleError", "error", "condition")) -> None:
        super().__init__(message)
        self.message = message
        self.r_class = list(r_class)


class StudyCallError(DSError):
    """One study failed one call. ``str()`` is the study's message (R's bare condition message)."""

    def __init__(self, study: str, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.study = study
        self.kind = kind

    def __repr__(self) -> str:
        return f"StudyCallError(study={self.study!r}, kind={self.kind!r}, message={self.message!r})"


class SessionCallError(DSError):
    """Some studies failed a call; ``errors`` maps each failed study to its error. Names the studies.

    ``results`` holds the answers of the studies that did not fail (study -> value), intact.
    """

    def __init__(self, operation: str, errors: dict[str, Exception],
                 results: dict[str, Any] | None = None) -> None:
        detail = "; ".join(f"{name}: {err}" for name, err in errors.items())
        super().__init__(f"{operation} failed in {len(errors)} stud{'y' if len(errors) == 1 else 'ies'}: {detail}")
        self.operation = operation
        self.errors = dict(errors)
        self.results = dict(results or {})
