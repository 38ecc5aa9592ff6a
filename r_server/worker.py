"""A study process answering JSON-line requests on a private pipe (the local backend's server side).

``python -m r_server.worker --name NAME --tables DIR`` serves one study. The protocol channel is the
process's original stdout; the process then points fd 1 at stderr, so nothing R or a library prints
can corrupt the channel. One request per line, answered in order::

    -> {"id": 7, "op": "aggregate", "args": {"sid": "...", "expr_text": "colnamesDS(\\"D\\")"}}
    <- {"id": 7, "ok": true, "value": [...]}
    -> {"id": 8, "op": "aggregate", "args": {"sid": "...", "expr_text": "...", "encoding": "rds"}}
    <- {"id": 8, "ok": true, "rds": "WAoAAAAD..."}   (R's serialize() of the value, base64)
    <- {"id": 7, "ok": false, "error": {"kind": "r_error", "message": "object 'x' not found"}}

Operations are the public methods of ``StudyRuntime`` listed in ``OPERATIONS``; anything else is refused.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from r_server.errors import StudyError

OPERATIONS = frozenset(
    {
        "list_tables",
        "table_variables",
        "open_session",
        "close_session",
        "assign_table",
        "assign_expr",
        "aggregate",
        "list_symbols",
        "rm_symbol",
        "list_methods",
        "info",
        "ping",
    }
)
MAX_REQUEST_BYTES = 4 * 1024 * 1024


def _answer(request_id: Any, call: Callable[[], Any]) -> dict[str, Any]:
    try:
        value = call()
        if isinstance(value, bytes):  # R's serialization (encoding="rds"), read by the client's decoder
            return {"id": request_id, "ok": True, "rds": base64.b64encode(value).decode("ascii")}
        return {"id": request_id, "ok": True, "value": value}
    except StudyError as exc:
        return {"id": request_id, "ok": False, "error": {"kind": exc.kind, "message": exc.message}}
    except Exception:  # an internal fault: log it here, never send a stack trace to the client
        traceback.print_exc(file=sys.stderr)
        return {"id": request_id, "ok": False, "error": {"kind": "internal", "message": "internal error"}}


def _dispatch(runtime: Any, op: Any, args: Any) -> Callable[[], Any]:
    if op not in OPERATIONS or not isinstance(args, dict):
        raise StudyError(f"unknown operation: {str(op)[:40]}")
    if op == "ping":
        return lambda: {"pid": os.getpid()}
    method = getattr(runtime, op)
    return lambda: method(**args)


def serve(runtime: Any, inp: IO[str], out: IO[str]) -> None:
    for line in inp:
        if len(line) > MAX_REQUEST_BYTES:
            reply: dict[str, Any] = {
                "id": None,
                "ok": False,
                "error": {"kind": "rejected", "message": "request too large"},
            }
        else:
            try:
                request = json.loads(line)
                request_id = request.get("id")
                reply = _answer(request_id, _dispatch(runtime, request.get("op"), request.get("args", {})))
            except StudyError as exc:
                reply = {"id": None, "ok": False, "error": {"kind": exc.kind, "message": exc.message}}
            except (ValueError, AttributeError):
                reply = {"id": None, "ok": False, "error": {"kind": "rejected", "message": "malformed request"}}
        out.write(json.dumps(reply, allow_nan=False) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m r_server.worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--tables", required=True, type=Path)
    parser.add_argument("--audit-log", type=Path)
    opts = parser.parse_args(argv)

    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from r_server.audit import AuditLog
    from r_server.runtime import StudyRuntime

    audit = AuditLog(opts.audit_log) if opts.audit_log else None
    runtime = StudyRuntime(opts.name, opts.tables, audit=audit)
    serve(runtime, sys.stdin, channel)


if __name__ == "__main__":
    main()
