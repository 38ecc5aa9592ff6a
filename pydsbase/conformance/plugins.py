"""Implementations under test: a Python object (``--impl MODULE[:OBJECT]``) or a command (``--impl-cmd``).

The contract (docs/CONFORMANCE.md): ``fit_study(data, spec) -> dict`` and, optionally,
``pool(yi, sei, method) -> dict``. ``NotImplementedError`` means "unsupported". A command is run as
``CMD INPUT.json OUTPUT.json``: the input is ``{"task": "fit_study", "spec": ...}`` (the data are at
``spec["csv"]``) or ``{"task": "pool", "yi": [...], "sei": [...], "method": ...}`` (sent only when the
command answered ``{"pool": true}`` to ``{"task": "capabilities"}``); the output is the same answer a
Python plug-in returns, or ``{"unsupported": "why"}``. A non-zero exit status is an error.
"""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

__all__ = ["CommandImplementation", "Implementation", "PythonImplementation", "load_implementation"]


def load_target(target: str) -> Any:
    """``MODULE[:OBJECT]`` (OBJECT may be dotted): the object, or the module itself without OBJECT."""
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else []:
        obj = getattr(obj, part)
    return obj


class Implementation(Protocol):
    name: str

    def fit_study(self, data: pd.DataFrame, spec: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def pool(self, yi: list[float], sei: list[float], method: str) -> Mapping[str, float] | None:
        """The plug-in's pooling, or None when it has none (the kit then pools with metafor's port)."""
        ...


class PythonImplementation:
    """``MODULE[:OBJECT]``: the object (the module itself without OBJECT) with ``fit_study`` [and ``pool``]."""

    def __init__(self, target: str) -> None:
        obj = load_target(target)
        if not callable(getattr(obj, "fit_study", None)):
            raise TypeError(f"{target}: has no fit_study(data, spec)")
        self.name = target
        self._obj = obj
        self.has_pool = callable(getattr(obj, "pool", None))

    def fit_study(self, data: pd.DataFrame, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        answer = self._obj.fit_study(data, dict(spec))
        if not isinstance(answer, Mapping):
            raise TypeError(f"fit_study returned {type(answer).__name__}, not a dict")
        return answer

    def pool(self, yi: list[float], sei: list[float], method: str) -> Mapping[str, float] | None:
        if not self.has_pool:
            return None
        answer = self._obj.pool(list(yi), list(sei), method)
        if not isinstance(answer, Mapping):
            raise TypeError(f"pool returned {type(answer).__name__}, not a dict")
        return answer


class CommandFailed(RuntimeError):
    """The command exited with a non-zero status or wrote no valid JSON."""


class CommandImplementation:
    """``CMD INPUT.json OUTPUT.json`` per study (and per pooling, when the command says it pools)."""

    def __init__(self, command: str, timeout: float = 600.0) -> None:
        self.name = command
        self._argv = shlex.split(command)
        self._timeout = timeout
        try:
            capabilities = self._run({"task": "capabilities"})
        except (CommandFailed, NotImplementedError):
            capabilities = {}
        self.has_pool = bool(capabilities.get("pool"))

    def _run(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        with tempfile.TemporaryDirectory(prefix="pydsbase-impl-") as folder:
            source, target = Path(folder) / "input.json", Path(folder) / "output.json"
            source.write_text(json.dumps(payload, allow_nan=True), encoding="utf-8")
            done = subprocess.run([*self._argv, str(source), str(target)], capture_output=True, text=True,
                                  timeout=self._timeout, check=False)
            if done.returncode != 0:
                raise CommandFailed(f"exit status {done.returncode}: {done.stderr.strip()[-500:]}")
            try:
                answer = json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandFailed(f"no JSON answer in OUTPUT.json: {exc}") from exc
        if not isinstance(answer, dict):
            raise CommandFailed("OUTPUT.json does not hold an object")
        if "unsupported" in answer:
            raise NotImplementedError(str(answer["unsupported"]))
        return answer

    def fit_study(self, data: pd.DataFrame, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._run({"task": "fit_study", "spec": dict(spec)})

    def pool(self, yi: list[float], sei: list[float], method: str) -> Mapping[str, float] | None:
        if not self.has_pool:
            return None
        return self._run({"task": "pool", "yi": list(yi), "sei": list(sei), "method": method})


def load_implementation(impl: str | None = None, impl_cmd: str | None = None) -> PythonImplementation | \
        CommandImplementation:
    if (impl is None) == (impl_cmd is None):
        raise ValueError("give exactly one of --impl MODULE[:OBJECT] and --impl-cmd 'CMD'")
    return PythonImplementation(impl) if impl is not None else CommandImplementation(str(impl_cmd))
