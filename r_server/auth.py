"""Who may call a study: users, salted password hashes, access tokens, login sessions, rate limiting.

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in unpadded urlsafe
base64). The default cost (n=2**14, r=8, p=1: 16 MiB, about 30 ms here) keeps one verification
under ~50 ms while making offline guessing expensive. Access tokens are stored only as
``sha256:<hex>`` digests; so are the opaque session tokens handed out at login.

Failed logins are counted per user name and per client address in a sliding window; once either
count reaches its limit the next attempts are refused (HTTP 429) without even checking the password,
until the window has moved on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r_server.errors import AuthError

__all__ = [
    "Authenticator",
    "LoginSession",
    "RateLimited",
    "User",
    "hash_password",
    "load_users",
    "new_token",
    "token_digest",
    "verify_password",
]

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_MIN_N = 2**12  # below this a hash is too cheap to guess offline: refused when loading users
_MAX_N = 2**17  # above this one verification takes far longer than ~50 ms: refused too
_MAXMEM = 256 * 1024 * 1024
_SALT_BYTES = 16
_MIN_PASSWORD_CHARS = 8
_MIN_TOKEN_CHARS = 24
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class RateLimited(AuthError):
    """Too many failed logins for this user or from this address; ``retry_after`` in seconds."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt_memory(n: int, r: int, p: int) -> int:
    """The bytes OpenSSL's scrypt asks for (its V and B arrays), which ``maxmem`` bounds."""
    return 128 * r * (n + 2) + 128 * r * p


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=dklen)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of ``password`` in the users-file format."""
    if len(password) < _MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {_MIN_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p, 32))}"


@dataclass(frozen=True)
class _ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> _ScryptHash:
        parts = encoded.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("a password hash looks like scrypt$n$r$p$salt$hash (see hash-password)")
        try:
            n, r, p = (int(x) for x in parts[1:4])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
        except ValueError as exc:
            raise ValueError("malformed scrypt password hash") from exc
        if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 4):
            raise ValueError(f"scrypt cost out of the accepted range (n a power of 2 in [{_MIN_N}, {_MAX_N}])")
        if _scrypt_memory(n, r, p) > _MAXMEM:
            # OpenSSL would refuse every verification of this hash ("memory limit exceeded"): refuse it now
            raise ValueError(f"scrypt cost out of the accepted range (needs more than {_MAXMEM >> 20} MiB)")
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("scrypt salt or hash too short")
        return cls(n, r, p, salt, digest)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest)),
                                   self.digest)


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the users-file hash ``encoded`` (constant-time comparison)."""
    return _ScryptHash.parse(encoded).matches(password)


def new_token() -> str:
    """A fresh random access or session token (256 bits, urlsafe text)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """How a token is stored: ``sha256:<hex>`` of its UTF-8 text."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    password: _ScryptHash | None = None
    token_digests: frozenset[str] = frozenset()


def _parse_user(entry: Any) -> User:
    if not isinstance(entry, dict):
        raise ValueError("each user is an object with 'name' and 'password_hash' and/or 'token_sha256'")
    unknown = set(entry) - {"name", "password_hash", "token_sha256"}
    if unknown:
        raise ValueError(f"unknown user fields: {', '.join(sorted(unknown))} (plaintext passwords are refused)")
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise ValueError(f"bad user name {name!r}: 1-64 characters of letters, digits and ._-@")
    password = entry.get("password_hash")
    if password is not None and not isinstance(password, str):
        raise ValueError(f"user {name}: password_hash must be a string")
    try:
        parsed = _ScryptHash.parse(password) if password is not None else None
    except ValueError as exc:
        raise ValueError(f"user {name}: {exc}") from None
    tokens = entry.get("token_sha256", [])
    if isinstance(tokens, str):
        tokens = [tokens]
    if not isinstance(tokens, list):
        raise ValueError(f"user {name}: token_sha256 is a digest or a list of digests")
    digests = set()
    for digest in tokens:
        hexpart = digest[7:] if isinstance(digest, str) and digest.startswith("sha256:") else ""
        if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise ValueError(f"user {name}: a token digest looks like sha256:<64 lowercase hex digits>")
        digests.add(digest)
    if parsed is None and not digests:
        raise ValueError(f"user {name} has neither a password hash nor a token digest")
    return User(name, parsed, frozenset(digests))


def parse_users(document: Any) -> dict[str, User]:
    """Validate a users document (see ``r_server.__main__``) into users by name."""
    if not isinstance(document, dict) or not isinstance(document.get("users"), list):
        raise ValueError('the users file is a JSON object {"users": [...]}')
    users: dict[str, User] = {}
    digests: set[str] = set()
    for entry in document["users"]:
        user = _parse_user(entry)
        if user.name in users:
            raise ValueError(f"duplicate user {user.name}")
        if digests & user.token_digests:
            raise ValueError(f"user {user.name}: a token digest is shared with another user")
        digests |= user.token_digests
        users[user.name] = user
    if not users:
        raise ValueError("the users file lists no users: nobody could log in")
    return users


def load_users(path: Path) -> dict[str, User]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read users file {path}: {exc}") from exc
    return parse_users(document)


class _FailureWindow:
    """Failure times per key within a sliding window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._times.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._times[key]
        return times

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window - now)

    def fail(self, key: str, now: float) -> None:
        times = self._times.setdefault(key, deque())
        times.append(now)
        while len(times) > self.limit:
            times.popleft()

    def clear(self, key: str) -> None:
        self._times.pop(key, None)


@dataclass
class LoginSession:
    """What a session token stands for. Only the token's digest is kept."""

    user: str
    digest: str
    created: float
    last_used: float
    data: dict[str, Any] = field(default_factory=dict)


# Verified against when the user is unknown, so that timing does not reveal which names exist.
_DUMMY = _ScryptHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, b"pydsbase-dummy-salt", b"\0" * 32)


class Authenticator:
    """Checks credentials, hands out session tokens and resolves them. Thread-safe."""

    def __init__(
        self,
        users: dict[str, User],
        *,
        idle_timeout: float = 1800.0,
        max_lifetime: float = 12 * 3600.0,
        user_failures: int = 5,
        address_failures: int = 20,
        failure_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = dict(users)
        self._by_token = {d: u.name for u in users.values() for d in u.token_digests}
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._user_failures = _FailureWindow(user_failures, failure_window)
        self._address_failures = _FailureWindow(address_failures, failure_window)
        self._sessions: dict[str, LoginSession] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def _check_not_limited(self, user: str | None, address: str, now: float) -> None:
        wait = self._address_failures.retry_after(address, now)
        if user is not None:
            wait = max(wait, self._user_failures.retry_after(user, now))
        if wait > 0:
            raise RateLimited(f"too many failed logins: retry in {wait:.0f} s", retry_after=wait)

    def _fail(self, user: str | None, address: str) -> AuthError:
        now = self._clock()
        with self._lock:
            self._address_failures.fail(address, now)
            if user is not None:
                self._user_failures.fail(user, now)
        return AuthError("invalid credentials")

    def _open(self, user: str) -> str:
        token = new_token()
        now = self._clock()
        digest = token_digest(token)
        with self._lock:
            self._sessions[digest] = LoginSession(user, digest, now, now)
        return token

    def login_password(self, user: str, password: str, address: str) -> str:
        """A new session token for ``user``, or AuthError / RateLimited."""
        with self._lock:
            self._check_not_limited(user, address, self._clock())
        record = self._users.get(user)
        stored = record.password if record is not None else None
        ok = (stored or _DUMMY).matches(password)
        if not ok or stored is None:
            raise self._fail(user, address)
        with self._lock:
            self._user_failures.clear(user)
        return self._open(user)

    def login_token(self, token: str, address: str) -> tuple[str, str]:
        """(user, new session token) for a users-file access token, or AuthError / RateLimited."""
        with self._lock:
            self._check_not_limited(None, address, self._clock())
        user = self._by_token.get(token_digest(token))
        if user is None:
            raise self._fail(None, address)
        return user, self._open(user)

    def resolve(self, token: str) -> LoginSession:
        """The live login session a session token stands for (touching it), or AuthError."""
        return self.resolve_digest(token_digest(token))

    def resolve_digest(self, digest: str) -> LoginSession:
        """``resolve`` for a login known by its digest (the HTTP layer's credential cache)."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(digest)
            if session is None or self._expired(session, now):
                raise AuthError("not logged in, or the login has expired")
            session.last_used = now
            return session

    def _expired(self, session: LoginSession, now: float) -> bool:
        return now - session.last_used > self.idle_timeout or now - session.created > self.max_lifetime

    def login_count(self) -> int:
        """How many logins are live (expired ones included until the next ``expire``)."""
        with self._lock:
            return len(self._sessions)

    def logout(self, digest: str) -> LoginSession | None:
        with self._lock:
            return self._sessions.pop(digest, None)

    def expire(self) -> list[LoginSession]:
        """Forget every idle or too old login; return them (their R sessions must be closed)."""
        now = self._clock()
        with self._lock:
            gone = [s for s in self._sessions.values() if self._expired(s, now)]
            for session in gone:
                del self._sessions[session.digest]
        return gone

    def users(self) -> Iterable[str]:
        return list(self._users)
