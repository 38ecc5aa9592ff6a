"""Reliability over time: many sequential fits and many login/logout cycles against three HTTP study servers.

1. ``--fits`` sequential ds_lmer_slma fits by one analyst (one session, CLUSTER_INT1..3 as ``D``): the
   resident memory (VmRSS) of each server process after ``--warmup`` fits and at the end; the growth
   after warm-up must stay under 5%. Every result must equal the first one bit for bit.
2. ``--cycles`` login/logout cycles (a fresh ``pydsbase.Session``: log in to the three studies, assign
   ``D``, ask ``colnamesDS``, close): afterwards each server must hold no R session, no command, no login
   but the probe's own, and no more R objects than before the cycles (``/ws/pydsbase/info`` ``load`` counts).
   The resident memory is also read 10 times during the cycles (is it still growing at the end?).

    python benchmarks/reliability_soak.py [--fits 1000] [--warmup 100] [--cycles 1000]

3. ``--memory``: only login/logout cycles (``--cycles``, on ``--studies`` probed study servers), with the
   memory of each server sampled every ``--every`` cycles: VmRSS and its parts by mapping (``/proc``), R's
   heap (``gc()`` Ncells/Vcells used and trigger, ``memory.profile()`` symbols and CHARSXPs), glibc
   malloc (``mallinfo2``: in use, free inside the arenas, mmapped) and Python (objects, blocks, audit
   records kept). ``--plain``: unprobed servers, read from ``/proc`` only (the probe's ``gc()`` is a full
   collection, which changes when R frees its garbage). ``--env MALLOC_ARENA_MAX=2`` sets a variable for
   the servers; ``--trim`` makes every sample first call ``malloc_trim(0)`` in the server. See
   docs/RELIABILITY.md, section 3.

    python benchmarks/reliability_soak.py --memory --studies 1 --cycles 20000 --every 1000
    python benchmarks/reliability_soak.py --memory --plain --studies 1 --cycles 1500 --every 25
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
    track: list[tuple[int, list[float]]] = field(default_factory=list)  # (cycles done, RSS MiB of each study)

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
        if self.track:
            out.append("  RSS (MiB) of study1..N after so many cycles: "
                       + "; ".join(f"{at}: " + "/".join(f"{v:.1f}" for v in rss) for at, rss in self.track))
            half = min(self.track, key=lambda sample: abs(sample[0] - self.cycles / 2))
            if 0 < half[0] < self.cycles:
                out.append(f"  RSS growth over the cycles {half[0]}..{self.cycles}: " + ", ".join(
                    f"{end - mid:+.1f}" for mid, end in zip(half[1], self.track[-1][1], strict=True)) + " MiB")
        return out


def run_login_soak(fed: h.Federation, cycles: int, samples: int = 10) -> LoginSoak:
    report = LoginSoak(cycles)
    expected = None
    logins = fed.logins(2)

    def cycle() -> object:
        with h.open_session(logins, timeout=600) as session:
            return {k: to_node(v) for k, v in session.aggregate('colnamesDS("D")').items()}

    expected = cycle()  # warm-up: the tables are read and cached by the first cycle
    report.before = [fed.counts(i) for i in range(len(fed.servers))]
    report.rss_before = [s.rss_mib() for s in fed.servers]
    report.track.append((0, list(report.rss_before)))
    every = max(1, cycles // samples)
    start = time.perf_counter()
    for k in range(1, cycles + 1):
        if cycle() != expected:
            raise AssertionError("a cycle's answer differs from the first")
        if k % every == 0 and k < cycles:
            report.track.append((k, [s.rss_mib() for s in fed.servers]))
    report.wall = time.perf_counter() - start
    report.after = [fed.counts(i) for i in range(len(fed.servers))]
    report.rss_after = [s.rss_mib() for s in fed.servers]
    report.track.append((cycles, list(report.rss_after)))
    return report


MEMORY_COLUMNS = [  # (heading, key, divisor to MiB or 1): the sample table of --memory
    ("RSS", "rss", 1024), ("[heap]", "brk_heap", 1024), ("anon", "anon_maps", 1024),
    ("maps", "anon_map_count", 1), ("thr", "threads", 1),
    ("R_N", "r_ncells_used", 1024 * 1024 / 56), ("R_Ntrig", "r_ncells_trigger", 1024 * 1024 / 56),
    ("R_V", "r_vcells_used", 1024 * 1024 / 8), ("R_Vtrig", "r_vcells_trigger", 1024 * 1024 / 8),
    ("R_Vmax", "r_vcells_max", 1024 * 1024 / 8), ("sym", "r_symbols", 1), ("chars", "r_chars", 1),
    ("envs", "r_envs", 1),
    ("m_arena", "malloc_arena", 1024 * 1024), ("m_inuse", "malloc_uordblks", 1024 * 1024),
    ("m_free", "malloc_fordblks", 1024 * 1024), ("m_mmap", "malloc_hblkhd", 1024 * 1024),
    ("m_top", "malloc_keepcost", 1024 * 1024),
    ("py_obj", "py_objects", 1), ("py_blk", "py_blocks", 1), ("audit", "audit_records", 1),
    ("trimmed", "trimmed_kib", 1024),
]


@dataclass
class MemorySoak:
    cycles: int
    every: int
    wall: float = 0.0
    samples: list[list[dict[str, int]]] = field(default_factory=list)  # per study: one dict per sample
    at: list[int] = field(default_factory=list)  # the cycle count of each sample

    def table(self, study: int) -> list[str]:
        """Study ``study``'s (0-based) samples; memory in MiB (R: cells used * cell size), counts as counts."""
        columns = [c for c in MEMORY_COLUMNS if any(c[1] in row for row in self.samples[study])]
        out = ["  " + " ".join(f"{'cycle':>6}" if i < 0 else f"{columns[i][0]:>8}" for i in range(-1, len(columns)))]
        for at, row in zip(self.at, self.samples[study], strict=True):
            cells = [f"{at:>6}"]
            for _, key, div in columns:
                value = row.get(key)
                cells.append(f"{'-':>8}" if value is None else f"{value:>8}" if div == 1 else f"{value / div:>8.1f}")
            out.append("  " + " ".join(cells))
        return out

    def lines(self) -> list[str]:
        out = [f"{self.cycles} login/assign/aggregate/logout cycles in {self.wall:.1f} s"
               f" ({self.cycles / self.wall:.1f} cycles/s), memory sampled every {self.every} cycles"]
        for i in range(len(self.samples)):
            out.append(f"study{i + 1}:")
            out.extend(self.table(i))
        return out


def run_memory_soak(fed: h.Federation, cycles: int, every: int, progress: bool = False) -> MemorySoak:
    """``cycles`` login/logout cycles; every ``every`` cycles each server's ``memory()`` and probed counts."""
    report = MemorySoak(cycles, every, samples=[[] for _ in fed.servers])
    logins = fed.logins(1)

    def cycle() -> object:
        with h.open_session(logins, timeout=600) as session:
            return {k: to_node(v) for k, v in session.aggregate('colnamesDS("D")').items()}

    def sample(at: int) -> None:
        report.at.append(at)
        for i, server in enumerate(fed.servers):
            memory = server.memory()  # before the probe: its gc() and malloc_trim must not flatter the RSS
            report.samples[i].append({**memory, **fed.counts(i)})
        if progress:
            print(f"  [{time.strftime('%H:%M:%S')}] cycle {at}: RSS "
                  + ", ".join(f"{rows[-1]['rss'] / 1024:.1f}" for rows in report.samples) + " MiB", flush=True)

    expected = cycle()
    sample(0)
    start = time.perf_counter()
    for k in range(1, cycles + 1):
        if cycle() != expected:
            raise AssertionError("a cycle's answer differs from the first")
        if k % every == 0 or k == cycles:
            sample(k)
    report.wall = time.perf_counter() - start
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--memory", action="store_true", help="only the memory soak of login/logout cycles")
    parser.add_argument("--studies", type=int, default=3, help="--memory: how many study servers (1 to 3)")
    parser.add_argument("--every", type=int, default=250, help="--memory: cycles between samples")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="--memory: an environment variable for the servers (repeatable)")
    parser.add_argument("--trim", action="store_true", help="--memory: malloc_trim(0) in the server at each sample")
    parser.add_argument("--plain", action="store_true",
                        help="--memory: plain python -m r_server servers, sampled from /proc only (no gc() at samples)")
    opts = parser.parse_args()
    if opts.memory:
        if not 0 < opts.cycles <= 1_000_000 or opts.every <= 0 or not 1 <= opts.studies <= 3:
            parser.error("0 < cycles <= 1000000, every > 0, 1 <= studies <= 3")
        env = dict(item.split("=", 1) for item in opts.env)
        if opts.trim:
            env["PYDSBASE_PROBE_TRIM"] = "1"
        print(h.machine())
        if opts.plain and opts.trim:
            parser.error("--trim needs the probed servers (not --plain)")
        print(f"study servers: {opts.studies}, {'plain' if opts.plain else 'probed'}; environment: "
              + (", ".join(f"{k}={v}" for k, v in env.items()) or "as this process's"))
        with h.Federation(opts.studies, analysts=2, probe=not opts.plain, env=env) as fed:
            report = run_memory_soak(fed, opts.cycles, opts.every, progress=True)
        for line in report.lines():
            print(line)
        print(h.machine())
        raise SystemExit(0)
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
