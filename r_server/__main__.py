"""``python -m r_server`` (also ``pydsbase-server``): serve one study over HTTP, with Opal's DataSHIELD API.

Usage::

    python -m r_server --name study1 --tables /data/study1 --users users.json [--host 127.0.0.1] [--port 8701]
    python -m r_server hash-password          # reads a password (stdin or prompt), prints its hash
    python -m r_server new-token              # prints a fresh access token and its digest

Every flag has an environment variable, used when the flag is absent:

=====================  ==========================  =====================================================
flag                   environment                 meaning
=====================  ==========================  =====================================================
``--name``             ``PYDSBASE_STUDY``          the study's name (required)
``--tables``           ``PYDSBASE_TABLES``         folder of the study's tables, only read (required): PROJECT/TABLE.csv
                                                   (or TABLE.parquet) is table PROJECT.TABLE; a top-level
                                                   TABLE.csv is in the study's default project
                                                   (``http.default_project``); see ``r_server/tables.py``
``--users``            ``PYDSBASE_USERS``          users file, format below (required)
``--disclosure``       ``PYDSBASE_DISCLOSURE``     disclosure settings file (default: dsBase's defaults)
``--host``             ``PYDSBASE_HOST``           address to listen on (default 127.0.0.1)
``--port``             ``PYDSBASE_PORT``           port (default 8701)
``--audit-log``        ``PYDSBASE_AUDIT_LOG``      audit log file, one JSON line per call (default stderr)
``--idle-timeout``     ``PYDSBASE_IDLE_TIMEOUT``   seconds before an unused login or R session ends (1800)
``--max-request``      ``PYDSBASE_MAX_REQUEST``    largest request body in bytes (1 MiB)
``--max-response``     ``PYDSBASE_MAX_RESPONSE``   largest R answer in bytes (32 MiB)
``--login-failures``   ``PYDSBASE_LOGIN_FAILURES`` failed logins per user per window before 429 (5)
``--login-window``     ``PYDSBASE_LOGIN_WINDOW``   that window in seconds (60); per address: 4x failures
``--log-level``        ``PYDSBASE_LOG_LEVEL``      server log level (warning)
``--tls-cert``         ``PYDSBASE_TLS_CERT``       serve HTTPS with this certificate (PEM) ...
``--tls-key``          ``PYDSBASE_TLS_KEY``        ... and this private key (PEM); else plain HTTP
=====================  ==========================  =====================================================

Plain HTTP is meant for loopback, a private container network or behind a TLS-terminating proxy:
passwords and tokens travel in requests, so anything else should use ``--tls-cert``/``--tls-key``.

Users file (JSON, never plaintext passwords; unknown fields are refused)::

    {"users": [
        {"name": "alice", "password_hash": "scrypt$16384$8$1$<salt>$<hash>"},
        {"name": "ci-bot", "token_sha256": ["sha256:<64 hex digits>"]},
        {"name": "bob", "password_hash": "scrypt$...", "token_sha256": "sha256:<64 hex digits>"}
    ]}

``name`` is 1-64 letters, digits or ``._-@``; ``password_hash`` comes from ``hash-password`` (salted
scrypt, about 30 ms to verify); ``token_sha256`` is one digest or a list of digests of access tokens
(from ``new-token``): a client logs in with either user and password (``Authorization: Basic`` or opalr's
``Authorization: X-Opal-Auth``) or a token (``X-Opal-Auth``), see ``r_server/http.py``. Every user may use
every table of the study; each user's R sessions are visible to that user only.

Disclosure settings file (JSON object; dsBase's option names or ours; missing ones keep dsBase's
defaults), e.g. ``{"nfilter.tab": 5, "nfilter.glm": 0.25, "datashield.privacyControlLevel": "banana"}``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_app", "load_disclosure", "main", "parse_args"]

DEFAULT_PORT = 8701

# dsBase's option names -> DisclosureSettings fields
_DSBASE_NAMES = {
    "nfilter.tab": "nfilter_tab",
    "nfilter.subset": "nfilter_subset",
    "nfilter.glm": "nfilter_glm",
    "nfilter.string": "nfilter_string",
    "nfilter.stringShort": "nfilter_stringShort",
    "nfilter.kNN": "nfilter_kNN",
    "nfilter.levels.density": "nfilter_levels_density",
    "nfilter.levels.max": "nfilter_levels_max",
    "nfilter.noise": "nfilter_noise",
    "nfilter.privacy.old": "privacy_level",
    "datashield.privacyLevel": "privacy_level",
    "datashield.privacyControlLevel": "privacy_control_level",
}


def load_disclosure(path: Path | None) -> Any:
    """The study's ``DisclosureSettings`` from a JSON file (dsBase's defaults when ``path`` is None)."""
    from r_server.settings import DisclosureSettings

    if path is None:
        return DisclosureSettings()
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read disclosure settings {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError("the disclosure settings file is a JSON object")
    fields: dict[str, Any] = {_DSBASE_NAMES.get(str(key), str(key)): value for key, value in document.items()}
    try:
        return DisclosureSettings(**fields)
    except TypeError as exc:
        raise ValueError(f"unknown disclosure setting in {path}: {exc}") from exc


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m r_server", description="Serve one study over HTTP.")
    add = parser.add_argument
    add("--name", default=_env("PYDSBASE_STUDY"), help="the study's name")
    add("--tables", type=Path, default=_env("PYDSBASE_TABLES"), help="folder of the study's tables")
    add("--users", type=Path, default=_env("PYDSBASE_USERS"), help="users file (JSON)")
    add("--disclosure", type=Path, default=_env("PYDSBASE_DISCLOSURE"), help="disclosure settings (JSON)")
    add("--host", default=_env("PYDSBASE_HOST", "127.0.0.1"))
    add("--port", type=int, default=int(_env("PYDSBASE_PORT", DEFAULT_PORT)))
    add("--audit-log", type=Path, default=_env("PYDSBASE_AUDIT_LOG"))
    add("--idle-timeout", type=float, default=float(_env("PYDSBASE_IDLE_TIMEOUT", 1800)))
    add("--max-request", type=int, default=int(_env("PYDSBASE_MAX_REQUEST", 1024 * 1024)))
    add("--max-response", type=int, default=int(_env("PYDSBASE_MAX_RESPONSE", 32 * 1024 * 1024)))
    add("--login-failures", type=int, default=int(_env("PYDSBASE_LOGIN_FAILURES", 5)))
    add("--login-window", type=float, default=float(_env("PYDSBASE_LOGIN_WINDOW", 60)))
    add("--tls-cert", type=Path, default=_env("PYDSBASE_TLS_CERT"))
    add("--tls-key", type=Path, default=_env("PYDSBASE_TLS_KEY"))
    add("--log-level", default=_env("PYDSBASE_LOG_LEVEL", "warning"),
        choices=["critical", "error", "warning", "info", "debug"])
    opts = parser.parse_args(argv)
    for flag, env in (("name", "PYDSBASE_STUDY"), ("tables", "PYDSBASE_TABLES"), ("users", "PYDSBASE_USERS")):
        if getattr(opts, flag) is None:
            parser.error(f"--{flag} (or {env}) is required")
    if not opts.tables.is_dir():
        parser.error(f"tables folder not found: {opts.tables}")
    if not 0 < opts.port < 65536:
        parser.error("--port must be in 1..65535")
    if opts.idle_timeout <= 0 or opts.max_request <= 0 or opts.max_response <= 0:
        parser.error("timeouts and size limits must be positive")
    if (opts.tls_cert is None) != (opts.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if opts.login_failures < 1 or opts.login_window <= 0:
        parser.error("--login-failures must be >= 1 and --login-window > 0")
    return opts


def build_app(opts: argparse.Namespace) -> Any:
    """The ASGI app for parsed options: users and settings are validated before anything listens."""
    from r_server.audit import AuditLog
    from r_server.auth import Authenticator, load_users
    from r_server.http import HTTPSettings, create_app

    users = load_users(opts.users)
    disclosure = load_disclosure(opts.disclosure)
    audit = AuditLog(opts.audit_log) if opts.audit_log is not None else AuditLog(stream=sys.stderr)
    auth = Authenticator(
        users,
        idle_timeout=opts.idle_timeout,
        user_failures=opts.login_failures,
        address_failures=4 * opts.login_failures,
        failure_window=opts.login_window,
    )
    settings = HTTPSettings(
        study=opts.name,
        idle_timeout=opts.idle_timeout,
        max_request_bytes=opts.max_request,
        max_response_bytes=opts.max_response,
        sweep_interval=min(30.0, max(0.5, opts.idle_timeout / 4)),
    )
    name, tables = opts.name, opts.tables

    def runtime() -> Any:
        from r_server.runtime import StudyRuntime

        return StudyRuntime(name, tables, settings=disclosure, audit=audit)

    return create_app(settings, runtime, auth, audit)


def _hash_password(argv: Sequence[str]) -> int:
    from r_server.auth import hash_password

    parser = argparse.ArgumentParser(prog="python -m r_server hash-password",
                                     description="Print the salted scrypt hash of a password for the users file.")
    parser.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _new_token(argv: Sequence[str]) -> int:
    from r_server.auth import new_token, token_digest

    argparse.ArgumentParser(prog="python -m r_server new-token",
                            description="Print a new access token (give it to the user) and its digest "
                                        "(put it in the users file).").parse_args(argv)
    token = new_token()
    print(json.dumps({"token": token, "token_sha256": token_digest(token)}))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "hash-password":
        raise SystemExit(_hash_password(args[1:]))
    if args and args[0] == "new-token":
        raise SystemExit(_new_token(args[1:]))
    opts = parse_args(args)
    logging.basicConfig(level=opts.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        app = build_app(opts)
    except ValueError as exc:
        print(f"r_server: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    import uvicorn

    uvicorn.run(
        app,
        host=opts.host,
        port=opts.port,
        log_level=opts.log_level,
        access_log=False,
        server_header=False,
        limit_concurrency=256,
        timeout_keep_alive=30,
        ssl_certfile=str(opts.tls_cert) if opts.tls_cert is not None else None,
        ssl_keyfile=str(opts.tls_key) if opts.tls_key is not None else None,
    )


if __name__ == "__main__":
    main()
