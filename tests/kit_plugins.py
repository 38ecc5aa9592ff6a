"""Conformance plug-ins for tests/test_conformance_kit.py: the reference itself and controlled changes of it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pydsbase.conformance.numbers import read_table


def _reference_answer(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The case's reference numbers of this study, as a plug-in answer (the csv is CASE_DIR/data/S.csv)."""
    case_dir = Path(spec["csv"]).parent.parent
    table = read_table((case_dir / "reference.tsv").read_text(encoding="utf-8"))
    answer: dict[str, Any] = {"coefficients": {}, "variance_components": {}}
    for (study, method, term, quantity), value in table.items():
        if study != spec["study"] or method is not None:
            continue
        if quantity in ("estimate", "se"):
            answer["coefficients"].setdefault(term, {})[quantity] = value
        elif quantity == "variance_component":
            answer["variance_components"][term] = value
        else:
            answer[quantity] = value
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
