"""Users, password hashes, tokens, login sessions and the failed-login limit (no server, no R)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from r_server.auth import (
    Authenticator,
    RateLimited,
    hash_password,
    load_users,
    new_token,
    parse_users,
    token_digest,
    verify_password,
)
from r_server.errors import AuthError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second  # salted
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) >= 20 and len(digest) >= 40
    assert verify_password("same password", first) and verify_password("same password", second)
    assert not verify_password("same passwore", first)
    with pytest.raises(ValueError):
        hash_password("short")


def test_verification_takes_at_most_about_50_ms() -> None:
    encoded = hash_password("timing-password")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        assert verify_password("timing-password", encoded)
        times.append(time.perf_counter() - start)
    # median, so that one scheduling hiccup on a shared machine does not decide
    assert statistics.median(times) < 0.06, times


def test_users_file_refuses_weak_or_malformed_entries(tmp_path: Path) -> None:
    good = hash_password("alice-password")
    digest = token_digest(new_token())
    users = parse_users({"users": [{"name": "alice", "password_hash": good},
                                   {"name": "ci.bot", "token_sha256": [digest]}]})
    assert set(users) == {"alice", "ci.bot"} and users["ci.bot"].token_digests == {digest}
    cheap = hash_password("alice-password", n=2**10)
    for document, fragment in [
        ({"users": [{"name": "a", "password": "plaintext"}]}, "plaintext passwords are refused"),
        ({"users": [{"name": "a", "password_hash": cheap}]}, "cost out of the accepted range"),
        ({"users": [{"name": "a", "password_hash": "md5$abc"}]}, "scrypt$n$r$p$salt$hash"),
        ({"users": [{"name": "a", "token_sha256": "sha256:xyz"}]}, "64 lowercase hex"),
        ({"users": [{"name": "a"}]}, "neither a password hash nor a token"),
        ({"users": [{"name": "a b", "password_hash": good}]}, "bad user name"),
        ({"users": [{"name": "a", "password_hash": good}, {"name": "a", "password_hash": good}]}, "duplicate"),
        ({"users": [{"name": "a", "token_sha256": digest}, {"name": "b", "token_sha256": digest}]}, "shared"),
        ({"users": []}, "no users"),
        ([], '{"users": [...]}'),
    ]:
        with pytest.raises(ValueError) as caught:
            parse_users(document)
        assert fragment in str(caught.value), (document, str(caught.value))
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": [{"name": "alice", "password_hash": good}]}))
    assert list(load_users(path)) == ["alice"]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read users file"):
        load_users(path)


def test_password_and_token_logins_give_session_tokens() -> None:
    token = new_token()
    users = parse_users({"users": [{"name": "alice", "password_hash": hash_password("alice-password", n=2**12),
                                    "token_sha256": token_digest(token)}]})
    auth = Authenticator(users, clock=Clock())
    session_token = auth.login_password("alice", "alice-password", "127.0.0.1")
    assert session_token != token and len(session_token) >= 40
    assert auth.resolve(session_token).user == "alice"
    user, other = auth.login_token(token, "127.0.0.1")
    assert user == "alice" and auth.resolve(other).user == "alice" and other != session_token
    for bad in ("", token, "x" * 43):
        with pytest.raises(AuthError):
            auth.resolve(bad)  # an access token is not a session token
    with pytest.raises(AuthError, match="invalid credentials"):
        auth.login_token(new_token(), "127.0.0.1")
    auth.logout(token_digest(session_token))
    with pytest.raises(AuthError):
        auth.resolve(session_token)


def test_logins_expire_when_idle_or_too_old() -> None:
    clock = Clock()
    users = parse_users({"users": [{"name": "alice", "password_hash": hash_password("alice-password", n=2**12)}]})
    auth = Authenticator(users, idle_timeout=10, max_lifetime=25, clock=clock)
    token = auth.login_password("alice", "alice-password", "a")
    for _ in range(2):
        clock.now += 9
        auth.resolve(token)  # used in time: kept
    assert auth.expire() == []
    clock.now += 8  # 26 s old: past its lifetime although just used
    assert [s.user for s in auth.expire()] == ["alice"]
    with pytest.raises(AuthError):
        auth.resolve(token)
    idle = auth.login_password("alice", "alice-password", "a")
    clock.now += 10.5
    with pytest.raises(AuthError):
        auth.resolve(idle)


def test_failed_logins_are_limited_per_user_and_per_address() -> None:
    clock = Clock()
    users = parse_users({"users": [
        {"name": "alice", "password_hash": hash_password("alice-password", n=2**12)},
        {"name": "bob", "password_hash": hash_password("bob-password", n=2**12)},
    ]})
    auth = Authenticator(users, user_failures=3, address_failures=5, failure_window=60, clock=clock)
    for _ in range(3):
        with pytest.raises(AuthError, match="invalid credentials"):
            auth.login_password("alice", "wrong-password", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        auth.login_password("alice", "alice-password", "10.0.0.2")  # right password, other address
    assert 59 <= limited.value.retry_after <= 60
    assert auth.resolve(auth.login_password("bob", "bob-password", "10.0.0.1")).user == "bob"
    for name in ("carol", "dave"):  # unknown users count against the address
        with pytest.raises(AuthError):
            auth.login_password(name, "whatever-pass", "10.0.0.1")
    with pytest.raises(RateLimited):
        auth.login_password("bob", "bob-password", "10.0.0.1")  # the address is now limited
    assert auth.login_password("bob", "bob-password", "10.0.0.3")
    clock.now += 61
    assert auth.login_password("alice", "alice-password", "10.0.0.1")
