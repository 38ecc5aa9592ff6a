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
    """R signalled an error while running an allowed call; ``message`` is R's bare condition message."""

    kind = "r_error"


class SessionError(StudyError):
    """Unknown, closed or expired session."""

    kind = "session"


class AuthError(StudyError):
    """Authentication failed or the credentials are not allowed here."""

    kind = "auth"

