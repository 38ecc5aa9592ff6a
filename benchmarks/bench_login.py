"""Benchmark 3: login + assign + logout of 3 studies, per second, over HTTP (and local for scale).

One cycle = ``pydsbase.Session(logins).open()`` (token login and an R session in each study),
``assign_table("D", table="CLUSTER_INT")`` (the table is cached by the study after its first read)
and ``close()`` (R session closed, logout). HTTP studies are ``python -m r_server`` processes on
127.0.0.1 that stay up; local cycles start and stop the study processes themselves (a local login
*is* a process start), so they are shown for scale only. Median over ``--runs`` cycles.

``--what-if-shared-ssl``: also time cycles with the HTTP driver's ``httpx.Client`` given one shared
SSL context (a proposed driver change: today each connection builds its own, loading the CA bundle,
about 30 ms per study, even for http:// URLs). Clearly a what-if, printed as such.

    python benchmarks/bench_login.py [--runs 20] [--local-runs 5] [--what-if-shared-ssl]
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import _common as c


def cycle(logins: list[object]) -> None:
    with c.open_session(logins) as session:
        session.assign_table("D", table="CLUSTER_INT")


@contextlib.contextmanager
def shared_ssl_context() -> Iterator[None]:
    """What-if: every ``httpx.Client`` the HTTP driver makes reuses one SSL context."""
    from pydsbase.drivers import http

    context = ssl.create_default_context()
    original = http.httpx.Client

    def client(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", context)
        return original(*args, **kwargs)

    http.httpx.Client = client
    try:
        yield
    finally:
        http.httpx.Client = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--local-runs", type=int, default=5)
    parser.add_argument("--what-if-shared-ssl", action="store_true")
    opts = parser.parse_args()
    what_if: list[float] = []
    print(c.machine())
    with contextlib.ExitStack() as stack:
        folders = stack.enter_context(c.study_folders([{"CLUSTER_INT": p} for p in c.CLUSTER_INT]))
        logins = stack.enter_context(c.http_logins(folders))
        cycle(logins)  # the studies read and cache the table once
        http = c.repeat(lambda: cycle(logins), opts.runs)
        if opts.what_if_shared_ssl:
            with shared_ssl_context():
                what_if = c.repeat(lambda: cycle(logins), opts.runs)
        local = c.repeat(lambda: cycle(c.local_logins(folders)), opts.local_runs) if opts.local_runs else []
    rate = 1 / c.median(http)
    print(f"login + assign_table + logout of 3 studies over HTTP: {c.spread(http)}"
          f" = {rate:.1f} cycles/s (target >= 10/s: {'met' if rate >= 10 else 'NOT met'})")
    if what_if:
        print(f"WHAT-IF, driver with one shared SSL context (not the shipped driver): {c.spread(what_if)}"
              f" = {1 / c.median(what_if):.1f} cycles/s")
    if local:
        print(f"same with local studies (includes starting 3 study processes with R): {c.spread(local)}"
              f" = {1 / c.median(local):.2f} cycles/s")


if __name__ == "__main__":
    main()
