"""Benchmark 2: a trivial aggregate call over 3 studies, in calls per second, local and HTTP.

``session.aggregate('classDS("D")')`` through a ``pydsbase.Session`` on CLUSTER_INT1-3 (one call =
the call in all 3 studies, answers decoded). Each sample is a burst of ``--burst`` calls; the figure is
the median over ``--runs`` bursts. For scale, the same run times one line of R answered by a warm R
process over a pipe (``class(D)``: no parsing checks, no session, one process) in the same way.

    python benchmarks/bench_aggregate.py [--runs 20] [--burst 50] [--no-http]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Callable
from typing import Any

import _common as c

CALL = 'classDS("D")'


def rate(fn: Callable[[], Any], burst: int) -> Callable[[], float]:
    def sample() -> float:
        (seconds,) = c.repeat(lambda: [fn() for _ in range(burst)], 1)
        return burst / seconds

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--no-http", action="store_true")
    opts = parser.parse_args()
    print(c.machine())
    with contextlib.ExitStack() as stack:
        folders = stack.enter_context(c.study_folders([{"CLUSTER_INT": p} for p in c.CLUSTER_INT]))
        samplers: dict[str, Callable[[], float]] = {}
        sessions = {"pydsbase local": stack.enter_context(c.open_session(c.local_logins(folders)))}
        if not opts.no_http:
            logins = stack.enter_context(c.http_logins(folders))
            sessions["pydsbase HTTP"] = stack.enter_context(c.open_session(logins))
        for name, session in sessions.items():
            session.assign_table("D", table="CLUSTER_INT")
            answer = session.aggregate(CALL)
            assert [v.data for v in answer.values()] == [["data.frame"]] * 3, answer
            samplers[name] = rate(functools.partial(session.aggregate, CALL), opts.burst)
        r = stack.enter_context(c.WarmR())
        r.run(f"D <- utils::read.csv({c.r_string(c.CLUSTER_INT[0])})")
        samplers["one R process, one study (pipe)"] = rate(lambda: r.run("class(D)"), opts.burst)
        for sampler in samplers.values():
            sampler()  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in samplers}
        names = list(samplers)
        for i in range(opts.runs):
            for name in names[i % len(names):] + names[:i % len(names)]:
                rates[name].append(samplers[name]())
    print(f"trivial aggregate {CALL} over 3 studies, {opts.runs} bursts of {opts.burst} calls (median, IQR):")
    for name in names:
        values = sorted(rates[name])
        q1, q3 = values[len(values) // 4], values[(3 * len(values)) // 4]
        print(f"{name:34s} {c.median(values):8.0f} calls/s  (IQR {q1:.0f}-{q3:.0f})"
              f"  = {1e3 / c.median(values):.2f} ms per call")
    if "pydsbase HTTP" in rates:
        http = c.median(rates["pydsbase HTTP"])
        print(f"HTTP target >= 200 calls/s: {'met' if http >= 200 else 'NOT met'} ({http:.0f});"
              f" HTTP / local rate: {http / c.median(rates['pydsbase local']):.2f}")


if __name__ == "__main__":
    main()
