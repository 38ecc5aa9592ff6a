"""R at hand for the tests of pydsbase/rserialize.py and pydsbase/deparse.py (through the bridge's R).

Values are built by evaluating R code in the embedded R (test code only), serialized by R itself after
the bridge's environment scrub (``.ds_scrub`` of ``r_server/R/wire.R``), and described by R itself
(``.ds_facts`` of ``tests/r/serialize_support.R``: typeof, class, attributes, data, deparse) for the
tests to compare with what the decoder read (:func:`model_facts`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydsbase import rvalue
from r_server.rbridge import RBridge, RObject, default_bridge

SUPPORT = Path(__file__).resolve().parent / "r" / "serialize_support.R"
_ENV: dict[int, Any] = {}


def _support(bridge: RBridge) -> Any:
    key = id(bridge)
    if key not in _ENV:
        with bridge._r() as ri:
            env = ri.baseenv["new.env"](parent=ri.globalenv)
            ri.baseenv["sys.source"](ri.StrSexpVector([str(SUPPORT)]), envir=env)
            env[".ds_scrub"] = bridge._env[".ds_scrub"]  # the one scrub: r_server/R/wire.R
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


def r_facts(value: RObject, bridge: RBridge | None = None) -> list[str]:
    """R's own account of the value (``.ds_facts``), one line per fact."""
    bridge = bridge or default_bridge()
    env = _support(bridge)
    with bridge._r() as ri:
        return [str(line) for line in env[".ds_facts_box"](ri.ListSexpVector([value.sexp]))]


def _text(values: list[Any] | None, rtype: str = "character") -> str:
    if values is None:
        return "NULL"
    out = []
    for v in values:
        if v is rvalue.NA:
            out.append("NA" if rtype == "double" else "<NA>")
        elif v is None:
            out.append("<NA>")
        elif rtype == "double":
            special = {math.inf: "Inf", -math.inf: "-Inf"}
            out.append("NaN" if math.isnan(v) else special.get(v, f"{v:.17g}"))
        elif rtype == "logical":
            out.append("TRUE" if v else "FALSE")
        else:
            out.append(str(v))
    return "|".join(out)


def model_facts(value: rvalue.RValue | None, path: str = "") -> list[str]:
    """The facts ``.ds_facts`` reports, as read from a decoded value (the same lines when they agree)."""
    if value is None:
        return [path + "NULL"]
    out: list[str] = []
    if isinstance(value, rvalue.RLanguage):
        out += [f"{path}type={value.type}", f"{path}class={_text(value.r_class)}"]
        out.append(f"{path}deparse=" + "\n".join(value.deparsed))
    elif isinstance(value, rvalue.RList):
        out += [f"{path}type=list", f"{path}class={_text(value.r_class)}", f"{path}names={_text(value.names)}"]
        for i, item in enumerate(value.data, 1):
            out += model_facts(item, f"{path}[[{i}]]")
    else:
        if value.s4 is not None:
            out += [f"{path}s4class={value.s4['s4_class']}"]
        r_class = value.r_class if value.r_class is not None else rvalue._implicit_class(value.type, value.dim)
        out += [
            f"{path}type={value.type}",
            f"{path}class={_text(r_class)}",
            f"{path}data={_text(value.data, value.type)}",
            f"{path}names={_text(value.names)}",
            f"{path}dim={_text(value.dim, 'integer')}",
        ]
        if value.dimnames is None:
            out.append(f"{path}dimnames=NULL")
        else:
            out += [f"{path}dimnames={_text(d)}" for d in value.dimnames]
        out.append(f"{path}dimnames_names={_text(value.dimnames_names)}")
    for name, attr in value.attributes.items():
        out += model_facts(attr, f"{path}@{name}:")
    return out


def deparse_batch(texts: list[str], bridge: RBridge | None = None) -> list[tuple[bytes, list[str]] | None]:
    """For each text (R code giving a language object): R's serialization and deparse, or None."""
    bridge = bridge or default_bridge()
    env = _support(bridge)
    with bridge._r() as ri:
        out = env[".ds_deparse_batch"](ri.StrSexpVector(texts))
        return [None if item is ri.NULL else (bytes(item[0]), list(item[1])) for item in out]
