"""Reliability under load: many concurrent analysts fitting ds_lmer_slma against three HTTP study servers.

Three ``python -m r_server`` processes on loopback (CLUSTER_INT1..3). Each of ``--sessions`` analysts
(its own user, its own ``pydsbase.Session``, its own thread) fits ``--fits`` models, cycling through
five model variants. First every variant is fitted once, sequentially, by a separate analyst: each
concurrent result must equal the sequential result of its variant bit for bit (the JSON nodes of the
whole 8-element list). Reported: errors, mismatches, throughput (fits per second of wall time, a fit
being one ds_lmer_slma call, i.e. one lmer per study plus the pooling), the latency of a fit (p50, p99,
max) and the servers' counts afterwards (no session or command left).

    python benchmarks/reliability_load.py [--sessions 20] [--fits 50]
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import reliability_harness as h

import pydsbase
from pydsbase.rvalue import to_node

# (formula, reml): the variants the analysts cycle through
VARIANTS: list[tuple[str, bool]] = [
    ("BMI ~ trtGrp + Male + (1|idDoctor)", True),
    ("BMI ~ trtGrp + Male + (1|idDoctor)", False),
    ("BMI ~ trtGrp + (1|idDoctor)", True),
    ("BMI ~ Male + incid_rate + (1|idDoctor)", True),
    ("incid_rate ~ trtGrp + Male + (1|idDoctor)", True),
]


def fit_variant(session: Any, variant: int) -> Any:
    formula, reml = VARIANTS[variant % len(VARIANTS)]
    return pydsbase.ds_lmer_slma(session, formula=formula, data_name="D", reml=reml)


@dataclass
class LoadReport:
    sessions: int
    fits: int
    wall: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: int = 0
    sequential_latencies: list[float] = field(default_factory=list)
    counts_after: list[dict[str, int]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def lines(self) -> list[str]:
        lat = self.latencies or [float("nan")]
        seq = self.sequential_latencies or [float("nan")]
        return [
            f"{self.sessions} concurrent sessions x {self.fits} fits = {self.sessions * self.fits} ds_lmer_slma fits"
            f" against {len(self.counts_after)} HTTP study servers",
            f"completed {self.completed}, errors {len(self.errors)}, results differing from the sequential run"
            f" {self.mismatches}",
            f"wall {self.wall:.1f} s, throughput {self.completed / self.wall:.1f} fits/s"
            f" ({3 * self.completed / self.wall:.1f} study fits/s)",
            f"latency per fit: p50 {h.percentile(lat, 0.5) * 1e3:.0f} ms, p99 {h.percentile(lat, 0.99) * 1e3:.0f} ms,"
            f" max {max(lat) * 1e3:.0f} ms (sequential, one analyst: p50 {h.percentile(seq, 0.5) * 1e3:.0f} ms)",
            "server counts afterwards: " + "; ".join(
                f"study{i + 1} " + ", ".join(f"{k}={v}" for k, v in c.items()) for i, c in enumerate(self.counts_after)
            ),
        ]


def run_load(fed: h.Federation, sessions: int, fits: int, timeout: float = 600.0) -> LoadReport:
    """The load run on ``fed`` (which must have ``sessions + 1`` analysts)."""
    # the sequential reference, by the last analyst
    reference = []
    report = LoadReport(sessions, fits, 0.0)
    with h.open_session(fed.logins(sessions + 1), timeout=timeout) as session:
        for variant in range(len(VARIANTS)):
            start = time.perf_counter()
            reference.append(to_node(fit_variant(session, variant)))
            report.sequential_latencies.append(time.perf_counter() - start)
    lock = threading.Lock()
    barrier = threading.Barrier(sessions)

    def analyst(index: int) -> None:
        try:
            with h.open_session(fed.logins(index + 1), timeout=timeout) as session:
                barrier.wait(timeout=300)
                for k in range(fits):
                    variant = (index + k) % len(VARIANTS)
                    start = time.perf_counter()
                    try:
                        node = to_node(fit_variant(session, variant))
                    except Exception as exc:
                        with lock:
                            report.errors.append(f"analyst{index + 1} fit {k}: {type(exc).__name__}: {exc}")
                        continue
                    elapsed = time.perf_counter() - start
                    with lock:
                        report.latencies.append(elapsed)
                        report.mismatches += node != reference[variant]
        except Exception as exc:
            with lock:
                report.errors.append(f"analyst{index + 1}: {type(exc).__name__}: {exc}")
            barrier.abort()

    threads = [threading.Thread(target=analyst, args=(i,), name=f"analyst{i + 1}") for i in range(sessions)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall = time.perf_counter() - start
    report.counts_after = [fed.counts(i) for i in range(len(fed.servers))]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--fits", type=int, default=50)
    opts = parser.parse_args()
    if not 1 <= opts.sessions <= 100 or not 1 <= opts.fits <= 1000:
        parser.error("1..100 sessions and 1..1000 fits")
    print(h.machine())
    with h.Federation(3, analysts=opts.sessions + 1) as fed:
        report = run_load(fed, opts.sessions, opts.fits)
    for line in report.lines():
        print(line)
    for error in report.errors[:10]:
        print("  error:", error)
    raise SystemExit(1 if report.errors or report.mismatches else 0)


if __name__ == "__main__":
    main()
