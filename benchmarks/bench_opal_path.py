"""Benchmark: the Opal API + one decoder (this checkout) against the commit before that work, same run.

The baseline commit is checked out in a temporary ``git worktree`` (removed at the end). Each tree
is measured by a probe process that imports that tree's pydsbase, r_server and benchmarks/_common.py
(so each tree stands its studies up, logs in and decodes its own way) on CLUSTER_INT1-3 served by
three ``python -m r_server`` processes (the launcher's process engine), over HTTP:

* decode time per study summary: the client's decoding of the lmerSLMADS2 answer body the driver
  received (this tree: R's serialization -> ``rserialize.unserialize``; baseline: the JSON node ->
  ``json.loads`` + ``rvalue.from_node``), median CPU time per summary;
* the small golden case end to end (int_bmi_ri: ``ds_lmer_slma(BMI ~ trtGrp + Male + (1|idDoctor))``
  on an open session, the pooled matrix checked bit for bit against the golden);
* trivial aggregates per second (``classDS("D")`` to 3 studies, bursts);
* login cycles per second (open a session: login + R session in 3 studies, assign the table, close).

Probes of the two trees alternate over ``--rounds`` rounds (which goes first alternates too), so load
from other users of the machine falls on both alike; the figures are medians over rounds and the
claims are the ratios (this / baseline; target: no regression beyond 10%).

The default baseline is 1dbe24a: main just before the first merge of the Opal/decoder work (i18's
rserialize, then i17's Opal API and i18b's client), i.e. after the i15 orchestration refactor, so the
ratios isolate the Opal and decoder changes. ``--baseline bc7f22a`` measures against the older base.

    python benchmarks/bench_opal_path.py [--baseline 1dbe24a] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PYDSBASE_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden" / "dsbaseclient" / "int_bmi_ri.json"
FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"


# -- the probe: runs inside one tree ---------------------------------------------------------------


def probe(tree: Path, quick: bool) -> dict[str, Any]:
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import _common as c  # the tree's own

    import pydsbase
    from pydsbase.drivers import http

    bodies: list[bytes] = []
    original = http.HTTPResult.record

    def record(self: Any, response: Any) -> None:
        if response.status_code == 200 and getattr(self, "_decode", False):
            bodies.append(bytes(response.content))
        original(self, response)

    http.HTTPResult.record = record  # type: ignore[method-assign]
    if hasattr(http, "unserialize"):  # this tree: R's serialization
        from pydsbase.rserialize import unserialize

        def decode(body: bytes) -> Any:
            return unserialize(body)
    else:  # the baseline: a JSON node in {"value": ...}
        from pydsbase.rvalue import from_node

        def decode(body: bytes) -> Any:
            return from_node(json.loads(body)["value"])

    golden = json.loads(GOLDEN.read_text())["result"]["data"]["SLMA.pooled.ests.matrix"]["data"]
    n_login, n_lmer, n_bursts, burst, n_decode = (5, 3, 5, 20, 50) if quick else (20, 8, 15, 50, 300)
    out: dict[str, Any] = {}
    with c.study_folders([{"CLUSTER_INT": p} for p in c.CLUSTER_INT]) as folders, c.http_logins(folders) as logins:

        def cycle() -> None:
            with c.open_session(logins) as session:
                session.assign_table("D", table="CLUSTER_INT")

        cycle()  # the studies read and cache the table once
        out["login_s"] = c.repeat(cycle, n_login)
        with c.open_session(logins) as session:
            session.assign_table("D", table="CLUSTER_INT")
            session.aggregate('classDS("D")')
            out["aggregate_per_s"] = [burst / s for s in
                                      c.repeat(lambda: [session.aggregate('classDS("D")') for _ in range(burst)],
                                               n_bursts)]
            fit = pydsbase.ds_lmer_slma(session, formula=FORMULA, data_name="D")  # warm
            out["golden_bits"] = fit["SLMA.pooled.ests.matrix"].data == golden
            out["lmer_s"] = c.repeat(lambda: pydsbase.ds_lmer_slma(session, formula=FORMULA, data_name="D"), n_lmer)
            bodies.clear()
            pydsbase.ds_lmer_slma(session, formula=FORMULA, data_name="D")
    summaries = [b for b in bodies if len(b) > 2000]  # the three lmerSLMADS2 answers (the rest are exists())
    out["summary_bytes"] = [len(b) for b in summaries]
    per_summary = []
    for body in summaries:
        times = []
        for _ in range(n_decode):
            t0 = time.process_time()
            decode(body)
            times.append(time.process_time() - t0)
        per_summary.append(statistics.median(times))
    out["decode_s"] = per_summary
    return out


# -- the driver: both trees, same run ------------------------------------------------------------------


def _run_probe(tree: Path, quick: bool) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        env = dict(os.environ, PYTHONPATH=str(tree))
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", str(tree), "--out", result.name]
                       + (["--quick"] if quick else []), cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        answer: dict[str, Any] = json.loads(Path(result.name).read_text())
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="1dbe24a")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.probe is not None:
        opts.out.write_text(json.dumps(probe(opts.probe, opts.quick)))
        return

    sys.path.insert(0, str(REPO / "benchmarks"))
    import _common as c

    print(c.machine())
    base_rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", opts.baseline], check=True,
                              capture_output=True, text=True).stdout.strip()
    this_rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    base_tree = Path(tempfile.mkdtemp(prefix="pydsbase-bench-base-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), base_rev], check=True,
                   capture_output=True)
    trees = {"baseline": base_tree, "this": REPO}
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
    try:
        for i in range(opts.rounds):
            order = ["baseline", "this"] if i % 2 == 0 else ["this", "baseline"]
            for name in order:
                runs[name].append(_run_probe(trees[name], opts.quick))
                print(f"round {i + 1}: {name} done", flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)], check=False)
        base_tree.parent.rmdir()

    def figure(name: str, key: str, scale: float) -> float:
        return statistics.median(v * scale for run in runs[name] for v in run[key])

    rows = [  # (label, key, scale, unit, higher is better)
        ("decode per study summary", "decode_s", 1e3, "ms", False),
        ("int_bmi_ri end to end (open session)", "lmer_s", 1e3, "ms", False),
        ("trivial aggregate, 3 studies", "aggregate_per_s", 1.0, "calls/s", True),
        ("login cycle, 3 studies", "login_s", 1e3, "ms", False),
    ]
    print(f"\nbaseline {base_rev} vs this {this_rev}, {opts.rounds} alternating rounds, medians:")
    print(f"{'':40} {'baseline':>12} {'this':>12}  this/baseline (>1 = this is better)")
    for label, key, scale, unit, higher in rows:
        b, t = figure("baseline", key, scale), figure("this", key, scale)
        gain = t / b if higher else b / t
        verdict = "ok" if gain >= 0.9 else "REGRESSION beyond 10%"
        print(f"{label:40} {b:9.2f} {unit:<3}{t:9.2f} {unit:<7} {gain:5.2f}  {verdict}")
    login_b, login_t = 1e3 / figure("baseline", "login_s", 1e3), 1e3 / figure("this", "login_s", 1e3)
    print(f"{'login cycles per second':40} {login_b:9.2f}     {login_t:9.2f}")
    print(f"decode target <= 1 ms per summary: {'met' if figure('this', 'decode_s', 1e3) <= 1 else 'NOT met'}; "
          f"summary sizes: baseline {runs['baseline'][0]['summary_bytes']} B (JSON node), "
          f"this {runs['this'][0]['summary_bytes']} B (R serialization)")
    print(f"pooled matrix bit-identical to the golden: baseline {all(r['golden_bits'] for r in runs['baseline'])}, "
          f"this {all(r['golden_bits'] for r in runs['this'])}")


if __name__ == "__main__":
    main()
