"""Short versions of the load and soak scripts (issue 8, parts 2 and 3) on real study servers.

``benchmarks/reliability_load.py`` and ``benchmarks/reliability_soak.py`` run the long versions
(20 sessions x 50 fits; 1,000 fits; 1,000 login/logout cycles) and print the figures of
docs/RELIABILITY.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reliability_harness as h  # noqa: E402
import reliability_load  # noqa: E402
import reliability_soak  # noqa: E402

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]


@pytest.fixture(scope="module")
def fed() -> Iterator[h.Federation]:
    with h.Federation(3, analysts=5) as federation:
        yield federation


def test_concurrent_sessions_equal_the_sequential_run(fed: h.Federation) -> None:
    report = reliability_load.run_load(fed, sessions=4, fits=5, timeout=300)
    assert report.errors == []
    assert report.completed == 20 and report.mismatches == 0
    assert len(report.sequential_latencies) == len(reliability_load.VARIANTS)
    # not a speed claim (that is reliability_load.py's): 300 s is the fits' own timeout, so this only says
    # every latency was measured and none ran into it (a fit takes about a second)
    assert 0 < h.percentile(report.latencies, 0.5) <= h.percentile(report.latencies, 0.99) < 300
    for counts in report.counts_after:  # the probe's own login only; nothing running or held
        assert (counts["logins"], counts["sessions"], counts["commands"], counts["r_sessions"]) == (1, 0, 0, 0)


def test_variants_differ_so_a_mixup_would_show(fed: h.Federation) -> None:
    from pydsbase.rvalue import to_node

    with h.open_session(fed.logins(5), timeout=300) as session:
        nodes = [to_node(reliability_load.fit_variant(session, v)) for v in range(len(reliability_load.VARIANTS))]
    assert all(nodes[i] != nodes[j] for i in range(len(nodes)) for j in range(i))


def test_sequential_fits_do_not_grow_memory_and_agree(fed: h.Federation) -> None:
    report = reliability_soak.run_fit_soak(fed, fits=60, warmup=20)
    assert report.mismatches == 0
    assert all(growth < reliability_soak.MAX_GROWTH for growth in report.growth), report.lines()


def test_login_logout_cycles_leave_nothing_behind(fed: h.Federation) -> None:
    report = reliability_soak.run_login_soak(fed, cycles=25)
    assert report.leftovers() == []
    for counts in report.after:
        assert (counts["logins"], counts["sessions"], counts["commands"], counts["r_sessions"]) == (1, 0, 0, 0)


def test_the_counts_see_a_session_left_open(fed: h.Federation) -> None:
    """The leak check can fail: an R session that is not closed shows in every count."""
    before = [fed.counts(i) for i in range(3)]
    session = h.open_session(fed.logins(4), timeout=300)
    try:
        during = [fed.counts(i) for i in range(3)]
    finally:
        session.close()
    after = [fed.counts(i) for i in range(3)]
    for b, d, a in zip(before, during, after, strict=True):
        assert (d["logins"], d["sessions"], d["r_sessions"]) == (b["logins"] + 1, b["sessions"] + 1,
                                                                 b["r_sessions"] + 1)
        assert d["r_objects"] > b["r_objects"]
        assert a == b
