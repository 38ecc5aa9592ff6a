"""Reliability over time: many sequential fits and many login/logout cycles against three HTTP study servers.

1. ``--fits`` sequential ds_lmer_slma fits by one analyst (one session, CLUSTER_INT1..3 as ``D``): the
   resident memory (VmRSS) of each server process after ``--warmup`` fits and at the end; the growth
   after warm-up must stay under 5%. Every result must equal the first one bit for bit.
2. ``--cycles`` login/logout cycles (a fresh ``pydsbase.Session``: log in to the three studies, assign
   ``D``, ask ``colnamesDS``, close): afterwards each server must hold no R session, no command, no login
   but the probe's own, and no more R objects than before the cycles (``/v1/info`` ``load`` counts).

    python benchmarks/reliability_soak.py [--fits 1000] [--warmup 100] [--cycles 1000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import reliability_harness as h

from pydsbase.rvalue import to_node

MAX_GROWTH = 0.05


@dataclass
class FitSoak:
    fits: int
    warmup: int
    wall: float = 0.0
    mismatches: int = 0
    start_mib: list[float] = field(default_factory=list)  # at the start
    warm_mib: list[float] = field(default_factory=list)  # after warm-up
    end_mib: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)  # the largest sample after warm-up

    @property
    def growth(self) -> list[float]:
        return [end / warm - 1 for warm, end in zip(self.warm_mib, self.end_mib, strict=True)]

    def lines(self) -> list[str]:
        out = [f"{self.fits} sequential ds_lmer_slma fits in {self.wall:.1f} s"
               f" ({self.fits / self.wall:.1f} fits/s); results differing from the first: {self.mismatches}"]
        for i, growth in enumerate(self.growth):
            out.append(f"  study{i + 1} RSS: start {self.start_mib[i]:.1f} MiB, after {self.warmup} warm-up fits"
                       f" {self.warm_mib[i]:.1f} MiB, end {self.end_mib[i]:.1f} MiB (peak after warm-up"
                       f" {self.peak_mib[i]:.1f}): growth after warm-up {growth * 100:+.2f}%")
        return out


def run_fit_soak(fed: h.Federation, fits: int, warmup: int, samples: int = 20) -> FitSoak:
    report = FitSoak(fits, warmup)
    every = max(1, (fits - warmup) // samples)
    with h.open_session(fed.logins(1), timeout=600) as session:
        report.start_mib = [s.rss_mib() for s in fed.servers]
        first = None
        start = time.perf_counter()
        for k in range(fits):
            node = to_node(h.fit(session))
            first = node if first is None else first
            report.mismatches += node != first
            if k + 1 == warmup:
                report.warm_mib = [s.rss_mib() for s in fed.servers]
                report.peak_mib = list(report.warm_mib)
            elif k + 1 > warmup and (k + 1 - warmup) % every == 0:
                report.peak_mib = [max(p, s.rss_mib()) for p, s in zip(report.peak_mib, fed.servers, strict=True)]
        report.wall = time.perf_counter() - start
        report.end_mib = [s.rss_mib() for s in fed.servers]
    return report


@dataclass
class LoginSoak:
    cycles: int
    wall: float = 0.0
    before: list[dict[str, int]] = field(default_factory=list)
    after: list[dict[str, int]] = field(default_factory=list)
    rss_before: list[float] = field(default_factory=list)
    rss_after: list[float] = field(default_factory=list)

    def leftovers(self) -> list[str]:
        """What a server still holds that it did not hold before the cycles."""
        out = []
        for i, (b, a) in enumerate(zip(self.before, self.after, strict=True)):
            for key in ("logins", "sessions", "commands", "running", "r_sessions", "r_objects"):
                if a[key] > b[key]:
                    out.append(f"study{i + 1} {key}: {b[key]} -> {a[key]}")
        return out

    def lines(self) -> list[str]:
        out = [f"{self.cycles} login/assign/aggregate/logout cycles in {self.wall:.1f} s"
               f" ({self.cycles / self.wall:.1f} cycles/s); left behind: {', '.join(self.leftovers()) or 'nothing'}"]
        for i, (b, a) in enumerate(zip(self.before, self.after, strict=True)):
            out.append(f"  study{i + 1} before: " + ", ".join(f"{k}={v}" for k, v in b.items())
                       + "; after: " + ", ".join(f"{k}={v}" for k, v in a.items())
                       + f"; RSS {self.rss_before[i]:.1f} -> {self.rss_after[i]:.1f} MiB")
        return out


def run_login_soak(fed: h.Federation, cycles: int) -> LoginSoak:
    report = LoginSoak(cycles)
    expected = None
    logins = fed.logins(2)

    def cycle() -> object:
        with h.open_session(logins, timeout=600) as session:
            return {k: to_node(v) for k, v in session.aggregate('colnamesDS("D")').items()}

    expected = cycle()  # warm-up: the tables are read and cached by the first cycle
    report.before = [fed.counts(i) for i in range(len(fed.servers))]
    report.rss_before = [s.rss_mib() for s in fed.servers]
    start = time.perf_counter()
    for _ in range(cycles):
        if cycle() != expected:
            raise AssertionError("a cycle's answer differs from the first")
    report.wall = time.perf_counter() - start
    report.after = [fed.counts(i) for i in range(len(fed.servers))]
    report.rss_after = [s.rss_mib() for s in fed.servers]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=1000)
    opts = parser.parse_args()
    if not 0 < opts.warmup < opts.fits <= 100_000 or not 0 < opts.cycles <= 100_000:
        parser.error("0 < warmup < fits <= 100000 and 0 < cycles <= 100000")
    print(h.machine())
    ok = True
    with h.Federation(3, analysts=2) as fed:
        fits = run_fit_soak(fed, opts.fits, opts.warmup)
        for line in fits.lines():
            print(line)
        ok &= fits.mismatches == 0 and all(g < MAX_GROWTH for g in fits.growth)
        logins = run_login_soak(fed, opts.cycles)
        for line in logins.lines():
            print(line)
        ok &= not logins.leftovers()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
