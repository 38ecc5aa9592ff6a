"""A small recording reverse proxy (standard library only).

    python tools/record_exchanges.py --listen-port 9801 --target http://127.0.0.1:8701 --out exchanges.jsonl

Listens on http://127.0.0.1:LISTEN_PORT, forwards every request unchanged to TARGET (same method, path,
query, headers except hop-by-hop ones, body) and appends one JSON line per exchange to OUT:

    {"seq", "time", "duration_ms", "method", "path", "query", "request_headers", "request_body_b64",
     "request_body_text", "status", "reason", "response_headers", "response_body_b64", "response_body_text"}

Secrets never reach the file: the values of ``Authorization``, ``X-Opal-Auth`` and ``X-XSRF-TOKEN`` request
headers, of the ``Cookie`` request header's cookies and of ``Set-Cookie`` response cookies are replaced by
placeholders (``<secret-N>``); the same secret always gets the same placeholder within one run, so a session cookie set
by one answer can still be matched with the requests that send it back, and a secret seen before is also
replaced where it reappears in a path, a query or another header (opalr's logout
``DELETE /ws/auth/session/{opalsid}``). Bodies are recorded exactly as sent (not redacted).
``*_text`` is the body decoded as UTF-8 when it is valid UTF-8 text (else null), for reading; ``*_b64`` is
always the exact bytes. Request bodies must come with Content-Length (no chunked uploads; httr/curl and
Python's HTTP clients send it); answers are read whole and passed on with Content-Length.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}
SECRET_HEADERS = {"authorization", "x-opal-auth", "x-xsrf-token"}


class Redactor:
    """Maps each distinct secret string to a stable placeholder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}

    def placeholder(self, secret: str) -> str:
        with self._lock:
            if secret not in self._seen:
                self._seen[secret] = f"<secret-{len(self._seen) + 1}>"
            return self._seen[secret]

    def text(self, value: str) -> str:
        """``value`` with every secret seen so far replaced (e.g. the session id in ``/ws/auth/session/{sid}``)."""
        with self._lock:
            known = sorted(self._seen.items(), key=lambda kv: -len(kv[0]))
        for secret, placeholder in known:
            if len(secret) >= 8:
                value = value.replace(secret, placeholder)
        return value

    def header(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in SECRET_HEADERS:
            # keep the scheme word of "Authorization: <scheme> <credentials>" visible
            scheme, _, rest = value.partition(" ")
            if lname == "authorization" and rest:
                return f"{scheme} {self.placeholder(rest)}"
            return self.placeholder(value)
        if lname == "cookie":
            parts = []
            for item in value.split(";"):
                key, eq, val = item.strip().partition("=")
                parts.append(f"{key}={self.placeholder(val)}" if eq else item.strip())
            return "; ".join(parts)
        if lname == "set-cookie":
            first, sep, attrs = value.partition(";")
            key, eq, val = first.strip().partition("=")
            redacted = f"{key}={self.placeholder(val)}" if eq else first
            return redacted + sep + attrs
        return self.text(value)


def _text(body: bytes) -> str | None:
    if not body:
        return ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return None
    return text


def make_handler(target: urllib.parse.SplitResult, out_path: str, redactor: Redactor) -> type:
    write_lock = threading.Lock()
    counter = {"seq": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _forward(self) -> None:
            started = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
            conn = conn_cls(str(target.hostname), target.port, timeout=600)
            try:
                upstream_path = target.path.rstrip("/") + self.path
                conn.putrequest(self.command, upstream_path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", target.netloc)
                for k, v in headers:
                    conn.putheader(k, v)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                rbody = resp.read()
                status, reason = resp.status, resp.reason
                rheaders = [(k, v) for k, v in resp.getheaders()]
            except OSError as exc:
                status, reason = 502, "Bad Gateway"
                rbody = json.dumps({"error": "recorder", "message": str(exc)}).encode()
                rheaders = [("Content-Type", "application/json")]
            finally:
                conn.close()

            split = urllib.parse.urlsplit(self.path)
            with write_lock:
                counter["seq"] += 1
                record = {
                    "seq": counter["seq"],
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started))
                    + f".{int(started * 1000) % 1000:03d}Z",
                    "duration_ms": round((time.time() - started) * 1000, 1),
                    "method": self.command,
                    "path": redactor.text(split.path),
                    "query": redactor.text(split.query),
                    "request_headers": [[k, redactor.header(k, v)] for k, v in self.headers.items()],
                    "request_body_b64": base64.b64encode(body).decode(),
                    "request_body_text": _text(body),
                    "status": status,
                    "reason": reason,
                    "response_headers": [[k, redactor.header(k, v)] for k, v in rheaders],
                    "response_body_b64": base64.b64encode(rbody).decode(),
                    "response_body_text": _text(rbody),
                }
                with open(out_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")

            # the record is on file before the client sees the answer: nothing the client saw is unrecorded
            self.send_response_only(status, reason)
            for k, v in rheaders:
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(rbody)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(rbody)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target", required=True, help="base URL to forward to, e.g. http://127.0.0.1:8701")
    parser.add_argument("--out", required=True, help="JSON-lines file to append exchanges to")
    args = parser.parse_args(argv)
    target = urllib.parse.urlsplit(args.target)
    if target.scheme not in ("http", "https") or not target.hostname:
        parser.error("--target must be an http(s) URL")
    server = ThreadingHTTPServer((args.listen_host, args.listen_port), make_handler(target, args.out, Redactor()))
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
