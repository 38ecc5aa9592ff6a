"""R at hand for the tests of pydsbase/rserialize.py and pydsbase/deparse.py (through the bridge's R).

Values are built by evaluating R code in the embedded R (test code only), described the bridge's way
(``RBridge.encode``: ``.ds_describe`` + ``_model``, the oracle) and serialized by R itself after the
environment scrub of ``tests/r/serialize_support.R``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r_server.rbridge import RBridge, RObject, default_bridge

SUPPORT = Path(__file__).resolve().parent / "r" / "serialize_support.R"
_ENV: dict[int, Any] = {}


def _support(bridge: RBridge) -> Any:
    key = id(bridge)
    if key not in _ENV:
        with bridge._r() as ri:
            env = ri.baseenv["new.env"](parent=ri.globalenv)
            ri.baseenv["sys.source"](ri.StrSexpVector([str(SUPPORT)]), envir=env)
            _ENV[key] = env
    return _ENV[key]


def r_eval(code: str, bridge: RBridge | None = None) -> RObject:
    bridge = bridge or default_bridge()
    with bridge._r() as ri:
        return RObject(ri.baseenv["eval"](ri.parse(code), ri.globalenv))


def r_serialize(value: RObject, version: int = 3, bridge: RBridge | None = None, xdr: bool = True) -> bytes:
    """``serialize(scrubbed value, NULL, xdr = xdr, version = version)``, as R writes it (XDR by default)."""
    bridge = bridge or default_bridge()
    env = _support(bridge)
    with bridge._r() as ri:
        box = ri.ListSexpVector([value.sexp])
        raw = env[".ds_serialize_box"](box, ri.IntSexpVector([version]), ri.BoolSexpVector([xdr]))
        return bytes(raw)


def oracle_node(value: RObject, bridge: RBridge | None = None) -> Any:
    """Today's node of the value: the bridge's ``.ds_describe`` pipeline."""
    return (bridge or default_bridge()).encode(value)


def deparse_batch(texts: list[str], bridge: RBridge | None = None) -> list[tuple[bytes, list[str]] | None]:
    """For each text (R code giving a language object): R's serialization and deparse, or None."""
    bridge = bridge or default_bridge()
    env = _support(bridge)
    with bridge._r() as ri:
        out = env[".ds_deparse_batch"](ri.StrSexpVector(texts))
        return [None if item is ri.NULL else (bytes(item[0]), list(item[1])) for item in out]
