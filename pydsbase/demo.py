"""``python -m pydsbase demo``: three synthetic studies -> ds_complete_cases -> ds_lmer_slma -> pooled table.

The studies are generated here from a fixed seed (a clustered trial: patients within doctors, BMI
depending on treatment and sex, some values missing); no reference data is used.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from pydsbase.rvalue import RAtomic, RList

__all__ = ["demo_studies", "generate_studies", "register", "run_demo"]

FORMULA = "BMI ~ trtGrp + Male + (1|idDoctor)"


def generate_studies(folder: Path, seed: int = 20240611, studies: int = 3) -> list[Path]:
    """Write ``folder/studyN/TRIAL.csv`` for each study; return the study folders."""
    rng = np.random.default_rng(seed)
    folders = []
    for s in range(1, studies + 1):
        doctors = int(rng.integers(25, 40))
        per_doctor = int(rng.integers(15, 30))
        doctor_effect = rng.normal(0.0, 1.5, doctors)
        rows = []
        patient = 0
        for d in range(doctors):
            trt = int(d % 2)  # treatment allocated by doctor (cluster randomised)
            for _ in range(per_doctor):
                patient += 1
                male = int(rng.random() < 0.5)
                bmi = 21.0 + 0.4 * s + 2.5 * trt + 1.2 * male + doctor_effect[d] + rng.normal(0.0, 2.0)
                bmi_text = "NA" if rng.random() < 0.04 else f"{bmi:.6f}"
                male_text = "NA" if rng.random() < 0.02 else str(male)
                rows.append([patient, d + 1, trt, male_text, bmi_text])
        study = folder / f"study{s}"
        study.mkdir(parents=True, exist_ok=True)
        with (study / "TRIAL.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["idPatient", "idDoctor", "trtGrp", "Male", "BMI"])
            writer.writerows(rows)
        folders.append(study)
    return folders


def demo_studies(folder: Path, seed: int = 20240611, studies: int = 3) -> dict[str, Path]:
    """``generate_studies`` by study name (``study1``, ``study2``...), ready for ``pydsbase.studies_up``."""
    return {f"study{i}": path for i, path in enumerate(generate_studies(folder, seed, studies), start=1)}


def run_demo(seed: int = 20240611) -> int:
    from pydsbase.lmer import ds_lmer_slma
    from pydsbase.session import Session
    from pydsbase.studies import studies_up
    from pydsbase.workflow import ds_complete_cases

    with tempfile.TemporaryDirectory(prefix="pydsbase-demo-") as tmp, \
            studies_up(demo_studies(Path(tmp), seed), "local") as federation:
        session = Session(federation.logins)
        session.open()
        try:
            session.assign_table("D", table="TRIAL")
            created = ds_complete_cases(session, "D", "D.comp")
            if isinstance(created, RList):
                print(created.to_pandas().get("validity.check", created).iloc[0])
            fit = ds_lmer_slma(session, formula=FORMULA, data_name="D.comp")
        finally:
            session.close()
    pooled = fit["SLMA.pooled.ests.matrix"]
    valid = fit["num.valid.studies"]
    if not isinstance(pooled, RAtomic) or not isinstance(valid, RAtomic):
        print(f"no pooled estimates: {fit.to_pandas()}")
        return 1
    print(f"\nds_lmer_slma({FORMULA!r}) over 3 synthetic studies")
    print(f"valid studies: {valid.value():g}")
    print("\nStudy-level meta-analysis (SLMA.pooled.ests.matrix):")
    print(pooled.to_pandas().to_string())
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="three synthetic studies through ds_lmer_slma")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.set_defaults(handler=lambda args: run_demo(args.seed))
