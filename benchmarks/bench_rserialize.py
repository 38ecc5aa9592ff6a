"""Benchmark: decoding R's serialization of lmerSLMADS2 summaries, pydsbase.rserialize against PyPI rdata.

The summaries are the real answers of golden cases: each case's server call runs in the local study
runtime (as tests/test_runtime_golden.py sends it), and the value the runtime encodes is serialized
by R (``serialize(x, NULL)``, XDR version 3, after the environment scrub of
r_server/R/wire.R). In the same run, interleaved, each summary is decoded

* by :func:`pydsbase.rserialize.unserialize` (bytes -> the R-value model, deparsed calls included),
* by ``rdata.parser.parse_data`` (bytes -> rdata's parse tree only, no conversion), the baseline,
* and, for context, by the study's whole encoding path (``RBridge.encode``: the scrub and
  ``serialize()`` in R, then this decoder), R time included.

Prints the median CPU time per summary (the process's CPU time: the machine is shared) and the
ratios; the claim is the ratio against rdata.

    python benchmarks/bench_rserialize.py [--cases 3] [--reps 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from pydsbase import rvalue  # noqa: E402
from pydsbase.rserialize import unserialize  # noqa: E402


def _summaries(n_cases: int) -> list[tuple[str, bytes, Any, Any]]:
    """(case, bytes, the runtime's node, the R value) of each case's first study answer."""
    from rserialize_r import r_serialize
    from test_runtime_golden import _cases, _load, _run_study

    from r_server.rbridge import RBridge

    out: list[tuple[str, bytes, Any, Any]] = []
    original = RBridge.encode
    seen: list[tuple[Any, Any]] = []

    def encode(self: RBridge, value: Any) -> Any:
        node = original(self, value)
        seen.append((node, value))
        return node

    RBridge.encode = encode  # type: ignore[method-assign]
    try:
        for case_id in _cases():
            case = _load(case_id)
            if case["datashield_errors"] is not None:
                continue
            seen.clear()
            _run_study(case, case["call"]["effective_arguments"]["datasources"]["servers"][0])
            node, value = seen[-1]
            out.append((case_id, r_serialize(value, 3), node, value))
            if len(out) == n_cases:
                break
    finally:
        RBridge.encode = original  # type: ignore[method-assign]
    return out


def _median_us(fn: Any, reps: int) -> float:
    """Median CPU time of one call (this process's CPU time: the machine is shared, wall time is not ours)."""
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    try:
        import rdata
    except ImportError:
        raise SystemExit("the baseline is PyPI rdata (pip install rdata); it is not a pydsbase dependency") from None

    from r_server.rbridge import RObject, default_bridge

    bridge = default_bridge()
    print(f"{'case':36} {'bytes':>7} {'pydsbase us':>12} {'rdata us':>10} {'ratio':>6} {'today us':>9}")
    ratios = []
    for case_id, data, node, value in _summaries(args.cases):
        assert rvalue.to_node(unserialize(data)) == node, case_id  # the same node as the study's encoder

        def ours(data: bytes = data) -> None:
            unserialize(data)

        def theirs(data: bytes = data) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # rdata warns that a bare serialization is an unknown file type
                rdata.parser.parse_data(data)

        def today(value: RObject = value) -> None:
            bridge.encode(value)

        mine: list[float] = []
        base: list[float] = []
        for i in range(10):  # interleaved rounds, alternating which goes first
            pair = [(ours, mine), (theirs, base)]
            for fn, into in pair if i % 2 == 0 else pair[::-1]:
                into.append(_median_us(fn, max(1, args.reps // 10)))
        a, b = statistics.median(mine), statistics.median(base)
        c = _median_us(today, max(10, args.reps // 10))
        ratios.append(b / a)
        print(f"{case_id:36} {len(data):7d} {a:12.0f} {b:10.0f} {b / a:6.2f} {c:9.0f}")
    print(f"rdata / pydsbase (median over cases): {statistics.median(ratios):.2f}x "
          "(pydsbase: bytes -> model with deparsed calls; rdata: bytes -> parse tree only)")


if __name__ == "__main__":
    main()
