"""The study's error tree. Every failure a client can see is one of these, with a clear message."""

from __future__ import annotations


class StudyError(Exception):
    """Base of every error a study returns to a client. ``kind`` travels on the wire."""

    kind = "study_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CallRejected(StudyError):
    """The call text failed the grammar, the allow-list, or a name/size check. Nothing was run."""

    kind = "rejected"


class RCallError(StudyError):
    """R signalled an error while running an allowed call; ``message`` is R's bare condition message,
    ``call`` R's deparsed text of the call that raised it (None: raised with ``call. = FALSE``)."""

    kind = "r_error"

    def __init__(self, message: str, call: str | None = None) -> None:
        super().__init__(message)
        self.call = call

    @property
    def r_text(self) -> str:
        """The error as R's ``try()`` prints it, and Opal reports a failed command: ``Error in <call> : <message>``
        (the message on a new line, indented, when call and first line are too long for one), or
        ``Error : <message>`` without a call."""
        return try_text(self.message, self.call)


_TRY_WIDTH = 75  # R's try(): a prefix and the message's first line wider than this break after " : "


def try_text(message: str, call: str | None) -> str:
    """R's ``try()`` text of an error condition (without its final newline)."""
    if call is None:
        return f"Error : {message}"
    prefix = f"Error in {call} : "
    first = message.split("\n", 1)[0]
    if 14 + len(call) + len(first) > _TRY_WIDTH:
        prefix += "\n  "
    return prefix + message


class SessionError(StudyError):
    """Unknown, closed or expired session."""

    kind = "session"


class AuthError(StudyError):
    """Authentication failed or the credentials are not allowed here."""

    kind = "auth"

