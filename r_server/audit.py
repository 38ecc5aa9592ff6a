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
    ``message``. The newest records (at most ``keep``) are also kept in memory (``records``) for
    tests and inspection; the file has them all. The file stays open, and every line is flushed
    when it is written, so a crash loses no record that was written.
    """

    def __init__(self, path: str | Path | None = None, stream: IO[str] | None = None, keep: int = 10_000) -> None:
        self._path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        self._stream = stream
        self._lock = threading.Lock()
        self._keep = keep
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
            if len(self.records) > 2 * self._keep:
                del self.records[: -self._keep]
            if self._path is not None:
                if self._file is None or self._file.closed:
                    self._file = self._path.open("a", encoding="utf-8")
                self._file.write(line + "\n")
                self._file.flush()
            if self._stream is not None:
                self._stream.write(line + "\n")
                self._stream.flush()
        return entry

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
