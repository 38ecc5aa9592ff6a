"""A seeded synthetic study set shaped like CLUSTER_INT: patients of doctors of surgeries.

Each study has ``--rows`` patients (default 100,000) spread over ``--groups`` doctors (default 200,
numbered per study) in surgeries of 5 doctors, and the 14 CLUSTER columns: idPatient, idSurgery,
trtGrp (per surgery), intSurgery, nDoctors, idDoctor, intDoctor, nPatients, Male, age, BMI, diabetes,
incid_rate, private. BMI follows ``BMI ~ trtGrp + Male + age + (1|idSurgery) + (1|idDoctor)`` plus
noise, so ``BMI ~ trtGrp + Male + (1|idDoctor)`` fits as on CLUSTER_INT. Doubles are written with 15
significant digits, as R's ``write.csv`` (and the shared CSVs) do. Same seed, same bytes.

    python benchmarks/synth.py OUT_DIR [--rows 100000] [--studies 3] [--groups 200] [--seed 2024]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["idPatient", "idSurgery", "trtGrp", "intSurgery", "nDoctors", "idDoctor", "intDoctor", "nPatients",
           "Male", "age", "BMI", "diabetes", "incid_rate", "private"]
DOCTORS_PER_SURGERY = 5


def study_frame(rows: int, groups: int, seed: int) -> pd.DataFrame:
    """One study's table (deterministic in its arguments)."""
    rng = np.random.default_rng(seed)
    n_surgeries = max(1, groups // DOCTORS_PER_SURGERY)
    surgery_of_doctor = np.arange(groups) // DOCTORS_PER_SURGERY % n_surgeries
    int_surgery = rng.normal(0.0, 2.0, n_surgeries)
    treated = (np.arange(n_surgeries) % 2).astype(np.int64)
    int_doctor = rng.normal(0.0, 3.0, groups)
    # every doctor has patients; the rest are spread unevenly
    weights = rng.gamma(4.0, 1.0, groups)
    doctor = np.sort(np.concatenate([np.arange(groups), rng.choice(groups, rows - groups, p=weights / weights.sum())]))
    n_patients = np.bincount(doctor, minlength=groups)
    surgery = surgery_of_doctor[doctor]
    male = (rng.random(rows) < 0.48).astype(np.int64)
    age = rng.normal(10.0, 0.6, rows)
    bmi = (24.0 + 1.5 * treated[surgery] + 0.8 * male + 0.3 * (age - 10.0) + int_surgery[surgery]
           + int_doctor[doctor] + rng.normal(0.0, 4.0, rows))
    frame = pd.DataFrame({
        "idPatient": np.arange(1, rows + 1),
        "idSurgery": surgery + 1,
        "trtGrp": treated[surgery],
        "intSurgery": int_surgery[surgery],
        "nDoctors": np.full(rows, DOCTORS_PER_SURGERY),
        "idDoctor": doctor + 1,
        "intDoctor": int_doctor[doctor],
        "nPatients": n_patients[doctor],
        "Male": male,
        "age": age,
        "BMI": bmi,
        "diabetes": (rng.random(rows) < 0.1 + 0.01 * np.clip(bmi - 25.0, 0, None)).astype(np.int64),
        "incid_rate": rng.poisson(15.0, rows),
        "private": (rng.random(rows) < 0.3).astype(np.int64),
    })
    return frame[COLUMNS]


def write_study(path: Path, rows: int, groups: int, seed: int) -> Path:
    study_frame(rows, groups, seed).to_csv(path, index=False, float_format="%.15g")
    return path


def ensure(out_dir: Path, rows: int = 100_000, studies: int = 3, groups: int = 200, seed: int = 2024,
           stem: str = "SYNTH") -> list[Path]:
    """The study CSVs ``OUT_DIR/{stem}{i}_{rows}.csv``, written only when missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, studies + 1):
        path = out_dir / f"{stem}{i}_{rows}.csv"
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            write_study(tmp, rows, groups, seed + i)
            tmp.rename(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2024)
    opts = parser.parse_args()
    for path in ensure(opts.out_dir, opts.rows, opts.studies, opts.groups, opts.seed):
        print(path)


if __name__ == "__main__":
    main()
