"""The study's audit log: one JSON line per runtime operation, rejected calls included."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any


class AuditLog:
    """Appends one JSON object per line to a file (or an open text stream).

    Each record has ``time`` (UTC, ISO 8601), ``user``, ``session``, ``operation``, ``function``,
    ``symbol``, ``outcome`` (``ok`` or the error kind), ``duration_ms`` and, for failures,
    ``message``. Records are also kept in memory (``records``) for tests and inspection.
    """

    def __init__(self, path: str | Path | None = None, stream: IO[str] | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._stream = stream
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []

    def record(
        self,
        *,
        user: str | None,
        session: str | None,
        operation: str,
        function: str | None = None,
        symbol: str | None = None,
        outcome: str = "ok",
        duration_ms: float = 0.0,
        message: str | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "user": user,
            "session": session,
            "operation": operation,
            "function": function,
            "symbol": symbol,
            "outcome": outcome,
            "duration_ms": round(duration_ms, 3),
        }
        if message is not None:
            entry["message"] = message[:500]
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            self.records.append(entry)
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            if self._stream is not None:
                self._stream.write(line + "\n")
                self._stream.flush()
        return entry
