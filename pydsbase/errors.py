"""The client's exception tree: one root, :class:`PydsbaseError`, under ``datashield.DSError``.

::

    datashield.DSError
    └── PydsbaseError
        ├── RError                    dsBaseClient's stop(...): R's message and condition class
        │   └── DataSHIELDErrors      DSI's "There are some DataSHIELD errors ...": study -> messages
        ├── StudyCallError            one study failed one call (.study, .kind = the wire kind)
        │   ├── StudyTimeoutError       "timeout": no answer in time
        │   ├── StudyUnreachableError   "unavailable": the study server or process cannot be reached
        │   ├── StudyRejectedError      "rejected": grammar, allow-list or name check refused the call
        │   ├── StudyRFailedError       "r_error": R failed running an allowed call (R's bare message)
        │   ├── StudySessionError       "session": the study's session is unknown, closed or expired
        │   └── StudyAuthError          "auth": the study refused the credentials
        ├── SessionCallError          some studies failed a call (.errors: study -> error, .results)
        ├── UnknownStudyError         study names a session does not have (also a ValueError)
        ├── MetaAnalysisError         metafor stopped (R's message)
        ├── StudyLaunchError          a study server could not be started (also a RuntimeError)
        ├── UnserializeError          bytes that are not an accepted R serialization (.offset; a ValueError)
        ├── RockJSONError             a JSON answer that is not the R value its call gives (.path; a ValueError)
        └── DeparseError              a language object pydsbase.deparse does not write (a ValueError)

Beside the tree, one warning: :class:`InexactResultWarning` (a ``UserWarning``), when a result was
built from answers that came as JSON text (a stock ``datashield_opal`` session), whose numbers are rounded.

Errors that come over the wire are made by :func:`study_error` from the study's ``kind`` (the kinds of
``r_server/errors.py`` and the transport's own), at the driver boundary; any other kind (``http``,
``internal``, ``too_large`` ...) is a plain :class:`StudyCallError` carrying that kind.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datashield.interface import DSError

__all__ = [
    "DSError",
    "DataSHIELDErrors",
    "MetaAnalysisError",
    "PydsbaseError",
    "RError",
    "SessionCallError",
    "StudyAuthError",
    "StudyCallError",
    "StudyLaunchError",
    "StudyRFailedError",
    "StudyRejectedError",
    "StudySessionError",
    "StudyTimeoutError",
    "StudyUnreachableError",
    "UnknownStudyError",
    "UnserializeError",
    "DeparseError",
    "study_error",
]

DSI_ERRORS_MESSAGE = "There are some DataSHIELD errors, list them with datashield.errors()"


class PydsbaseError(DSError):
    """The root of every error pydsbase raises on purpose (``except DSError`` catches it too)."""


class RError(PydsbaseError):
    """An error dsBaseClient raises in R (``stop(...)``), with R's exact message and condition class."""

    def __init__(self, message: str, r_class: tuple[str, ...] = ("simpleError", "error", "condition")) -> None:
        super().__init__(message)
        self.message = message
        self.r_class = list(r_class)


class DataSHIELDErrors(RError):
    """DSI stopped because some studies failed; ``datashield_errors`` maps study -> messages."""

    def __init__(self, datashield_errors: dict[str, list[str]]) -> None:
        super().__init__(DSI_ERRORS_MESSAGE)
        self.datashield_errors = datashield_errors


class StudyCallError(PydsbaseError):
    """One study failed one call. ``str()`` is the study's message (R's bare condition message).

    ``kind`` is the failure's wire kind; each subclass has its own (``wire_kind``). Build one from a
    wire kind with :func:`study_error`, which picks the subclass.
    """

    wire_kind: ClassVar[str] = ""

    def __init__(self, study: str, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.study = study
        self.kind = self.wire_kind if kind is None else kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(study={self.study!r}, kind={self.kind!r}, message={self.message!r})"


class StudyTimeoutError(StudyCallError):
    """The study did not answer within the call's time limit."""

    wire_kind = "timeout"


class StudyUnreachableError(StudyCallError):
    """The study's server or process cannot be reached (stopped, refused the connection, gone)."""

    wire_kind = "unavailable"


class StudyRejectedError(StudyCallError):
    """The study refused the call before running anything (grammar, allow-list or name check)."""

    wire_kind = "rejected"


class StudyRFailedError(StudyCallError):
    """R failed while running an allowed call in the study; ``str()`` is R's bare condition message."""

    wire_kind = "r_error"


class StudySessionError(StudyCallError):
    """The study no longer knows the session (unknown, closed, expired, or the server restarted)."""

    wire_kind = "session"


class StudyAuthError(StudyCallError):
    """The study refused the credentials."""

    wire_kind = "auth"


_BY_KIND: dict[str, type[StudyCallError]] = {
    cls.wire_kind: cls
    for cls in (StudyTimeoutError, StudyUnreachableError, StudyRejectedError, StudyRFailedError,
                StudySessionError, StudyAuthError)
}


def study_error(study: str, message: str, kind: str = "") -> StudyCallError:
    """The error of ``study`` for a failure of wire kind ``kind``: the subclass that kind names, or
    :class:`StudyCallError` keeping an unknown kind. The one place a wire kind becomes a class."""
    cls = _BY_KIND.get(kind, StudyCallError)
    return cls(study, message, kind)


class SessionCallError(PydsbaseError):
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


class UnknownStudyError(PydsbaseError, ValueError):
    """Study names that the session does not have (or none at all)."""


class MetaAnalysisError(PydsbaseError):
    """metafor stopped; ``str()`` is R's condition message."""


class StudyLaunchError(PydsbaseError, RuntimeError):
    """A study server could not be started or did not become healthy; the message names the study."""


class UnserializeError(PydsbaseError, ValueError):
    """Bytes that are not (or not an accepted) serialization of an R value (:mod:`pydsbase.rserialize`);
    ``offset``: the byte where the refused item starts, ``message``: the reason without it."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.message = message
        self.offset = offset


class DeparseError(PydsbaseError, ValueError):
    """A language object with a part :mod:`pydsbase.deparse` does not write."""


class RockJSONError(PydsbaseError, ValueError):
    """A JSON answer (Rock's format, :mod:`pydsbase.rjson`) that is not the R value its call gives;
    ``path``: where in the answer (``$name``, ``[[i]]``, ``@attribute``), ``message``: the reason."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{message} (at {path or 'the top'} of the JSON answer)")
        self.message = message
        self.path = path


class InexactResultWarning(UserWarning):
    """A result built from answers that came as JSON text (Rock's format) rather than R's serialization:
    its numbers are rounded (the message names the loss and the studies), so it is not R's value bit for bit."""
