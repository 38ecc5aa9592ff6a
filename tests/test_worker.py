"""The study worker's pipe protocol, with a stand-in runtime (no R needed)."""

from __future__ import annotations

import base64
import io
import json

from rstream import xdr_of_node

from pydsbase.rserialize import unserialize
from pydsbase.rvalue import to_node
from r_server.errors import RCallError
from r_server.worker import serve


class FakeRuntime:
    def aggregate(self, sid: str, expr: str, encoding: str = "node") -> dict | bytes:
        if encoding == "rds":
            return xdr_of_node({"type": "double", "data": [0.1]})
        if expr == "boom":
            raise RCallError("object 'boom' not found")
        if expr == "bug":
            raise KeyError("internal detail")
        return {"type": "double", "class": ["numeric"], "length": 1, "data": [0.1]}


def _run(*requests: object) -> list[dict]:
    inp = io.StringIO("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests))
    out = io.StringIO()
    serve(FakeRuntime(), inp, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_answers_in_order_with_values_and_typed_errors() -> None:
    replies = _run(
        {"id": 1, "op": "aggregate", "args": {"sid": "s", "expr": "ok"}},
        {"id": 2, "op": "aggregate", "args": {"sid": "s", "expr": "boom"}},
        {"id": 3, "op": "aggregate", "args": {"sid": "s", "expr": "bug"}},
    )
    assert replies[0] == {"id": 1, "ok": True, "value": {"type": "double", "class": ["numeric"],
                                                         "length": 1, "data": [0.1]}}
    assert replies[1]["error"] == {"kind": "r_error", "message": "object 'boom' not found"}
    assert replies[2]["error"] == {"kind": "internal", "message": "internal error"}


def test_r_serialization_travels_as_base64_for_the_client_decoder() -> None:
    (reply,) = _run({"id": 4, "op": "aggregate", "args": {"sid": "s", "expr": "ok", "encoding": "rds"}})
    assert set(reply) == {"id", "ok", "rds"} and reply["ok"] is True
    assert to_node(unserialize(base64.b64decode(reply["rds"]))) == {"type": "double", "class": ["numeric"],
                                                                    "length": 1, "data": [0.1]}


def test_refuses_unknown_operations_and_garbage() -> None:
    replies = _run({"id": 1, "op": "__init__", "args": {}}, "not json", {"id": 2, "op": "aggregate", "args": 3})
    assert [r["ok"] for r in replies] == [False, False, False]
    assert replies[0]["error"]["message"] == "unknown operation: __init__"
    assert replies[1]["error"] == {"kind": "rejected", "message": "malformed request"}


def test_audit_log_keeps_every_line_on_disk_and_a_bounded_tail_in_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from r_server.audit import AuditLog

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, keep=5)
    for i in range(23):
        log.record(user="u", session="s", operation="aggregate", function=f"f{i}")
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # flushed as written
    assert [entry["function"] for entry in lines] == [f"f{i}" for i in range(23)]
    assert 5 <= len(log.records) <= 10 and log.records[-1]["function"] == "f22"
    log.close()
