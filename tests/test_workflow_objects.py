"""ds_ls, ds_dim, ds_length, ds_num_na, ds_rm and ds_as_*: dsBaseClient's values (names, types, pooling), through
one local session of two studies for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pydsbase
from pydsbase.errors import RError
from pydsbase.rvalue import RAtomic, RList

pytestmark = pytest.mark.needs_r

CSV = "BMI,trtGrp\n20.5,0\n21,1\nNA,0\n23,1\n24.25,1\n"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from datashield import DSLoginBuilder

    root = tmp_path_factory.mktemp("objects")
    builder = DSLoginBuilder()
    for name, extra in (("a", ""), ("b", "30,0\n")):
        (root / name).mkdir()
        (root / name / "T.csv").write_text(CSV + extra)
        builder.add(name, url=f"local://{root / name}", user="u", password="p", driver="pydsbase.LocalDriver")
    with pydsbase.Session(builder.build()) as opened:
        opened.assign_table("D", table="T")
        yield opened


def _atomic(value: Any) -> RAtomic:
    assert isinstance(value, RAtomic)
    return value


def test_dim_and_length_pool_as_r_does(session: Any) -> None:
    dims = pydsbase.ds_dim(session, "D")
    assert dims.names == ["dimensions of D in a", "dimensions of D in b", "dimensions of D in combined studies"]
    assert _atomic(dims[0]).type == "integer" and _atomic(dims[0]).data == [5, 2]
    assert _atomic(dims[2]).type == "double" and _atomic(dims[2]).data == [11.0, 2.0]  # 0 + integers: a double
    total = pydsbase.ds_length(session, "D$BMI", type="combine")
    assert total.names == ["total length of D$BMI in all studies combined"]
    assert _atomic(total[0]).type == "integer" and _atomic(total[0]).data == [11]
    assert pydsbase.ds_length(session, "D$BMI", type="split").names == ["length of D$BMI in a", "length of D$BMI in b"]
    with pytest.raises(RError, match='"both", "combine" or "split"'):
        pydsbase.ds_length(session, "D$BMI", type="nope")


def test_ls_num_na_conversions_and_rm(session: Any) -> None:
    assert [_atomic(v["objects.found"]).data for v in pydsbase.ds_ls(session)] == [["D"], ["D"]]
    assert [_atomic(v).data for v in pydsbase.ds_num_na(session, "D$BMI")] == [[1], [1]]
    made = pydsbase.ds_as_character(session, "D$trtGrp", newobj="group")
    created = "A data object <group> has been created in all specified data sources"
    assert _atomic(made["is.object.created"]).data == [created]
    assert _atomic(pydsbase.ds_ls(session, "gr*")["a"]["objects.found"]).data == ["group"]
    removed = pydsbase.ds_rm(session, ["group", "nope"])
    assert isinstance(removed, RList) and removed.names == ["a", "b"]
    assert _atomic(removed["a"]["return.message"]).data == ["Object(s) 'group' was deleted. 'nope' which are missing."]
    warning = pydsbase.ds_ls(session, "x_:A:_")
    assert isinstance(warning, RAtomic) and "please respecify" in warning.data[0]


def test_typed_exports_are_in_the_package() -> None:
    for name in ("ds_ls", "ds_dim", "ds_length", "ds_num_na", "ds_rm", "ds_as_character", "ds_as_integer",
                 "ds_as_logical", "ds_as_data_matrix"):
        assert name in pydsbase.__all__ and callable(getattr(pydsbase, name))

