"""tools/record_exchanges.py, the proxy that recorded the real R clients against our servers: bytes pass
through unchanged both ways, every exchange is recorded, secrets are not."""

from __future__ import annotations

import base64
import http.client
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import record_exchanges as recorder  # noqa: E402

SECRET_PASSWORD = "alice:s3cret-password"
SECRET_SID = "SID-0123456789abcdef"
BINARY = bytes(range(256))


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/ws/login"):
            payload, ctype = b'{"principal":"alice"}', "application/json"
            extra = [("Set-Cookie", f"opalsid={SECRET_SID}; Path=/; HttpOnly")]
        elif self.path.startswith("/ws/echo"):
            payload, ctype, extra = body, "application/octet-stream", []
        else:
            payload, ctype, extra = BINARY, "application/octet-stream", []
        self.send_response(201 if self.command == "PUT" else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Seen-Path", self.path)
        for key, value in extra:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    _serve(upstream)
    out = tmp_path / "exchanges.jsonl"
    target = urllib.parse.urlsplit(f"http://127.0.0.1:{upstream.server_address[1]}")
    front = ThreadingHTTPServer(("127.0.0.1", 0), recorder.make_handler(target, str(out), recorder.Redactor()))
    _serve(front)
    yield front.server_address[1], out
    front.shutdown()
    upstream.shutdown()
    front.server_close()
    upstream.server_close()


def _request(port: int, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body or None, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    conn.close()
    return out


def test_bytes_pass_through_and_every_exchange_is_recorded(proxy: tuple[int, Path]) -> None:
    port, out = proxy
    status, headers, data = _request(port, "GET", "/ws/bin?x=1&y=a%28b%29")
    assert (status, data) == (200, BINARY)
    assert headers["x-seen-path"] == "/ws/bin?x=1&y=a%28b%29"
    payload = b"lmerSLMADS2(BMI ~ x, \n    NULL)\x00\xff"
    status, headers, data = _request(port, "PUT", "/ws/echo", payload, {"Content-Type": "application/x-rscript"})
    assert (status, data) == (201, payload)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["seq"] for r in records] == [1, 2]
    first, second = records
    assert (first["method"], first["path"], first["query"]) == ("GET", "/ws/bin", "x=1&y=a%28b%29")
    assert first["status"] == 200
    assert base64.b64decode(first["response_body_b64"]) == BINARY
    assert first["response_body_text"] is None
    assert base64.b64decode(second["request_body_b64"]) == payload
    assert ["Content-Type", "application/x-rscript"] in second["request_headers"]


def test_secrets_never_reach_the_file_and_keep_stable_placeholders(proxy: tuple[int, Path]) -> None:
    port, out = proxy
    auth = "X-Opal-Auth " + base64.b64encode(SECRET_PASSWORD.encode()).decode()
    status, headers, _ = _request(port, "GET", "/ws/login", headers={"Authorization": auth})
    assert status == 200 and SECRET_SID in headers["set-cookie"]  # the client still gets the real cookie
    _request(port, "GET", "/ws/bin", headers={"Cookie": f"opalsid={SECRET_SID}", "X-Opal-Auth": "tok-987654321"})
    _request(port, "DELETE", f"/ws/auth/session/{SECRET_SID}", headers={"Cookie": f"opalsid={SECRET_SID}"})
    text = out.read_text(encoding="utf-8")
    for secret in (SECRET_SID, "tok-987654321", auth.split(" ", 1)[1], SECRET_PASSWORD):
        assert secret not in text
    login, use, logout = [json.loads(line) for line in text.splitlines()]
    assert ["Authorization", "X-Opal-Auth <secret-1>"] in login["request_headers"]
    set_cookie = dict((k.lower(), v) for k, v in login["response_headers"])["set-cookie"]
    assert set_cookie == "opalsid=<secret-2>; Path=/; HttpOnly"
    assert ["Cookie", "opalsid=<secret-2>"] in use["request_headers"]
    assert logout["path"] == "/ws/auth/session/<secret-2>"
