"""Users, password hashes, tokens, login sessions and the failed-login limit (no server, no R)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fakeclock import FakeClock

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


def _scrypt_costs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Record the (n, r, p) of every scrypt computation from now on (the computation itself still runs)."""
    costs: list[tuple[int, int, int]] = []
    real = hashlib.scrypt

    def spy(password: bytes, *, salt: bytes, n: int, r: int, p: int, maxmem: int = 0, dklen: int = 64) -> bytes:
        costs.append((n, r, p))
        return real(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    return costs


def test_one_verification_is_one_scrypt_at_the_stored_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A login costs what the stored (n, r, p) say, whatever the machine: that cost is checked here.

    How long it takes on a given machine (about 30 ms at the default cost) is a benchmark's claim:
    ``python benchmarks/bench_scrypt.py``. No test decides on a stopwatch (issue 14).
    """
    encoded = hash_password("timing-password")
    costs = _scrypt_costs(monkeypatch)
    assert verify_password("timing-password", encoded) and not verify_password("timing-passwore", encoded)
    assert costs == [(2**14, 8, 1)] * 2  # 128 * n * r bytes = 16 MiB each
    cheap = hash_password("timing-password", n=2**12, r=4, p=2)
    costs.clear()
    assert verify_password("timing-password", cheap)
    assert costs == [(2**12, 4, 2)]  # the stored cost, not the default
    # an unknown user costs one scrypt at the default cost too, so timing does not tell names apart
    auth = Authenticator(parse_users({"users": [{"name": "alice", "password_hash": encoded}]}), clock=FakeClock())
    costs.clear()
    for user in ("alice", "mallory"):
        with pytest.raises(AuthError, match="invalid credentials"):
            auth.login_password(user, "wrong-password", "a")
    assert costs == [(2**14, 8, 1)] * 2


def test_the_accepted_cost_range_bounds_one_verification() -> None:
    """Hashes cheaper than n=2**12 (guessable offline) or dearer than n=2**17, r=16, p=4 are refused."""
    salt, digest = "A" * 22, "B" * 43  # 16 and 32 bytes: only the cost is under test

    def load(n: int, r: int = 8, p: int = 1) -> None:
        parse_users({"users": [{"name": "a", "password_hash": f"scrypt${n}${r}${p}${salt}${digest}"}]})

    for n, r, p in [(2**12, 8, 1), (2**14, 8, 1), (2**17, 8, 1), (2**14, 1, 1), (2**14, 16, 1), (2**14, 8, 4)]:
        load(n, r, p)
    for n, r, p in [(2**11, 8, 1), (2**18, 8, 1), (3 * 2**12, 8, 1), (2**14, 0, 1), (2**14, 17, 1),
                    (2**14, 8, 0), (2**14, 8, 5), (2**17, 16, 1)]:  # the last: over scrypt's 256 MiB
        with pytest.raises(ValueError, match="scrypt cost out of the accepted range"):
            load(n, r, p)


def test_every_accepted_cost_can_be_verified() -> None:
    """The dearest hashes the users file accepts verify (none fails later with scrypt's memory limit)."""
    for n, r, p in [(2**17, 8, 4), (2**16, 16, 4)]:
        encoded = hash_password("a-long-password", n=n, r=r, p=p)
        parse_users({"users": [{"name": "a", "password_hash": encoded}]})
        assert verify_password("a-long-password", encoded) and not verify_password("another-password", encoded)


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
    auth = Authenticator(users, clock=FakeClock())
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
    clock = FakeClock()
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
    clock = FakeClock()
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
