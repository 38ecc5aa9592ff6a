"""Disclosure campaign: randomized calls of every server function against a table with a canary row.

The table (``security.canary``) has one row whose BMI is ``CANARY_VALUE`` and whose label is
``CANARY_LEVEL``. The campaign sends ``n`` seeded random calls, including the moves a curious
analyst would try (subsets that isolate the row, indicators that single it out, models with the
row's level as a factor, near-complete subsets for differencing), and collects every answer and
every error message. Figures: answers, refusals, and how many carried the canary (must be 0).

    python security/campaign.py --n 400 --seed 3
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server.errors import StudyError
from r_server.runtime import StudyRuntime
from r_server.settings import DisclosureSettings
from security.canary import Canary

__all__ = ["CampaignReport", "run_campaign"]

COLUMNS = ("id", "grp", "trt", "male", "age", "BMI", "label")
LMER = 'lmerSLMADS2({f}, {o}, {w}, "{d}", {reml}, NULL, NULL, NULL)'


@dataclass
class CampaignReport:
    n: int
    seed: int
    outcomes: Counter[str] = field(default_factory=Counter)
    functions: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "outcomes": dict(self.outcomes),
            "functions": dict(sorted(self.functions.items())),
            "responses_with_canary": len(self.leaks),
            "leak_examples": self.leaks[:5],
            "seconds": round(self.seconds, 2),
        }


class _Moves:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def col(self) -> str:
        return self.rng.choice(COLUMNS)

    def threshold(self) -> str:
        # 91 and 90 single out the canary row (every other BMI is below 45); the canary's exact value is
        # never sent, so any occurrence of it in an answer came from the data
        return self.rng.choice(("91", "90", "45", "30", "25", "0", "17", "1", "3", "119"))

    def formula(self) -> str:
        y = self.rng.choice(("BMI", "age", "BMI", "sub_ind", "trt"))
        terms = self.rng.sample(
            (
                "age",
                "trt",
                "male",
                "factoryyylabelzzz",
                "logyyyBMIzzz",
                "factoryyyidzzz",
                "BMI",
                "sub_ind",
                "Iyyyageppp10zzz",
            ),
            self.rng.randint(1, 3),
        )
        ranef = self.rng.choice(("yyy1xxxgrpzzz", "yyy1xxxidzzz", "yyy1xxxlabelzzz", "yyy1+agexxxgrpzzz"))
        return f"{y}~{'+'.join(t for t in terms if t != y)}+{ranef}".replace("~+", "~")

    def aggregate(self) -> str:
        d = self.rng.choice(("D", "D", "S", "CC"))
        choices = [
            lambda: LMER.format(
                f=self.formula(),
                o=self.rng.choice(("NULL", '"ones"')),
                w="NULL",
                d=d,
                reml=self.rng.choice(("TRUE", "FALSE")),
            ),
            lambda: f'colnamesDS("{d}")',
            lambda: f'classDS("{d}${self.col()}")',
            lambda: f"isNaDS({d}${self.col()})",
            lambda: f"checkNegValueDS({d}${self.col()})",
            lambda: f'testObjExistsDS("{self.rng.choice(("D", "S", "ind", "nothere"))}")',
            lambda: f'messageDS("{self.rng.choice(("D", "S", "ind"))}")',
            lambda: f'exists("{self.rng.choice(("D", "S", "BMI"))}")',
            lambda: "listDisclosureSettingsDS()",
            lambda: (
                f'dataFrameSubsetDS1("D", "D${self.col()}", "{self.threshold()}", {self.rng.randint(1, 6)}, '
                f"NULL, NULL, {self.rng.choice(('TRUE', 'FALSE'))})"
            ),
        ]
        return self.rng.choice(choices)()

    def assign(self) -> tuple[str, str]:
        choices = [
            lambda: (
                "S",
                f'dataFrameSubsetDS2("D", "D${self.col()}", "{self.threshold()}", '
                f"{self.rng.randint(1, 6)}, NULL, NULL, FALSE)",
            ),
            lambda: ("ind", f'BooleDS("D${self.col()}", "{self.threshold()}", {self.rng.randint(1, 6)}, "0", TRUE)'),
            lambda: ("CC", f'completeCasesDS("{self.rng.choice(("D", "S"))}")'),
            lambda: (
                "S",
                f'dataFrameDS("D$BMI,D$age,ind", NULL, FALSE, TRUE, "BMI,age,sub_ind", TRUE, '
                f"{self.rng.choice(('TRUE', 'FALSE'))})",
            ),
            lambda: ("ones", "D$age/D$age"),
        ]
        return self.rng.choice(choices)()


def run_campaign(n: int, seed: int, settings: DisclosureSettings | None = None) -> CampaignReport:
    report = CampaignReport(n=n, seed=seed)
    moves = _Moves(random.Random(seed))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        canary = Canary(Path(work))
        runtime = StudyRuntime("campaign", canary.write_table(), settings=settings)
        sid = runtime.open_session("curious")
        runtime.assign_table(sid, "D", "T")
        runtime.assign_expr(sid, "ind", 'BooleDS("D$BMI", "50", 5, "0", TRUE)')
        for _ in range(n):
            answer: Any = None
            message: str | None = None
            if moves.rng.random() < 0.6:
                text = moves.aggregate()
                func = text.split("(", 1)[0]
                try:
                    answer = runtime.aggregate(sid, text)
                    report.outcomes["answered"] += 1
                except StudyError as exc:
                    message = exc.message
            else:
                symbol, text = moves.assign()
                func = text.split("(", 1)[0] if "(" in text else "<arithmetic>"
                try:
                    runtime.assign_expr(sid, symbol, text)
                    report.outcomes["assigned"] += 1
                except StudyError as exc:
                    message = exc.message
            if message is not None:
                report.outcomes["refused"] += 1
            report.functions[func] += 1
            if (message is not None and Canary.row_value_in(message)) or Canary.row_value_in(answer):
                report.leaks.append(f"{text} -> {json.dumps(answer)[:200] if message is None else message[:200]}")
        for record in runtime.audit.records:  # the study's own log may name what was asked, never values
            if record.get("message") and Canary.row_value_in(record["message"]):
                report.leaks.append(f"audit: {record['message'][:200]}")
        canary.close()
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    report = run_campaign(args.n, args.seed)
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.leaks else 0


if __name__ == "__main__":
    raise SystemExit(main())
