"""Conformance plug-ins for tests/test_conformance_kit.py: the reference itself and controlled changes of it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pydsbase.conformance.numbers import read_table, table_answer


def _reference_answer(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The case's reference numbers of this study, as a plug-in answer (the csv is CASE_DIR/data/S.csv),
    with lme4's convergence as the reference recorded it."""
    case_dir = Path(spec["csv"]).parent.parent
    table = read_table((case_dir / "reference.tsv").read_text(encoding="utf-8"))
    answer = table_answer(table, spec["study"])
    study = json.loads((case_dir / "structure.json").read_text(encoding="utf-8"))["studies"][spec["study"]]
    answer["converged"] = study["converged"]
    answer["messages"] = list(study["convergence"])
    return answer


class Copy:
    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        return _reference_answer(spec)


class OneUlp:
    """Every estimate moved one ULP up."""

    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        answer = _reference_answer(spec)
        for pair in answer["coefficients"].values():
            pair["estimate"] = math.nextafter(pair["estimate"], math.inf)
        return answer


class DropLastTerm:
    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        answer = _reference_answer(spec)
        answer["coefficients"].pop(list(answer["coefficients"])[-1])
        return answer


class Raises:
    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        if spec["study"] == "study1":
            raise RuntimeError("this plug-in breaks on study1")
        if spec["study"] == "study2":
            raise NotImplementedError("no study2")
        return _reference_answer(spec)

    @staticmethod
    def pool(yi: list[float], sei: list[float], method: str) -> dict[str, float]:
        raise ZeroDivisionError("pooling broke")


class ClaimsConvergence:
    """The reference's numbers, but every fit said to have converged without a message (a lie where lme4 warned)."""

    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        answer = _reference_answer(spec)
        answer["converged"] = True
        answer["messages"] = []
        return answer


class Silent:
    """The reference's numbers without lme4's convergence: ``converged`` and ``messages`` not reported."""

    @staticmethod
    def fit_study(data: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
        answer = _reference_answer(spec)
        del answer["converged"], answer["messages"]
        return answer
