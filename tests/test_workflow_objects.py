"""ds_ls, ds_dim, ds_length, ds_num_na, ds_rm, ds_as_*, ds_summary, ds_c, ds_list, ds_names, ds_levels:
dsBaseClient's values (names, types, pooling), through one local session of two studies for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pydsbase
from pydsbase.errors import DataSHIELDErrors, RError
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


def test_summary_by_class_as_ds_summary_builds_it(session: Any) -> None:
    frame = pydsbase.ds_summary(session, "D")
    assert frame.names == ["a", "b"]
    b = frame["b"]
    assert isinstance(b, RList) and b.names == ["class", "number of rows", "number of columns", "variables held"]
    assert [_atomic(v).data for v in b] == [["data.frame"], [6], [2], ["BMI", "trtGrp"]]
    assert _atomic(b[1]).type == "integer"
    numeric = pydsbase.ds_summary(session, "D$BMI")["a"]
    assert isinstance(numeric, RList) and numeric.names == ["class", "length", "quantiles & mean"]
    quantiles = _atomic(numeric[2])
    assert quantiles.names == ["5%", "10%", "25%", "50%", "75%", "90%", "95%", "Mean"]
    # R: quantile(c(20.5, 21, 23, 24.25), c(.05, .1, .25, .5, .75, .9, .95)); mean(...)
    assert quantiles.data == pytest.approx([20.575, 20.65, 20.875, 22.0, 23.3125, 23.875, 24.0625, 22.1875], abs=1e-12)
    pydsbase.ds_as_character(session, "D$trtGrp", newobj="ch")
    text = pydsbase.ds_summary(session, "ch")["b"]
    assert isinstance(text, RList) and [_atomic(v).data for v in text] == [["character"], [6]]
    pydsbase.ds_as_logical(session, "D$trtGrp", newobj="lg")
    with pytest.raises(DataSHIELDErrors):  # study a: 2 FALSE under nfilter.tab 3, table1DDS refuses as dsBase does
        pydsbase.ds_summary(session, "lg")
    with pytest.raises(RError, match="The input object must be a factor."):
        pydsbase.ds_levels(session, "ch")
    pydsbase.ds_rm(session, ["ch", "lg"])


def test_list_names_as_list_and_c(session: Any) -> None:
    assert pydsbase.ds_list(session, ["D$BMI", "D$trtGrp"], newobj="ll") is None  # isAssigned's NULL, as in R
    names = pydsbase.ds_names(session, "ll")
    assert names.names == ["a", "b"] and [_atomic(v).data for v in names] == [["BMI", "trtGrp"]] * 2
    held = pydsbase.ds_summary(session, "ll")["a"]
    assert isinstance(held, RList) and held.names == ["class", "length", "elements held in the list"]
    assert [_atomic(v).data for v in held] == [["list"], [2], ["BMI", "trtGrp"]]
    made = pydsbase.ds_as_list(session, "D", newobj="al")["b"]
    assert isinstance(made, RList) and made.names == ["return.message", "class.of.newobj"]
    assert [_atomic(v).data for v in made] == [["New object <al> created"], ["Class of <al> is 'list'"]]
    with pytest.raises(DataSHIELDErrors):  # cDS: dsBase blocks it under the default "banana"
        pydsbase.ds_c(session, ["D$BMI", "D$trtGrp"], newobj="cc")
    blocked = "BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked"
    assert session.errors["a"].message == blocked
    with pytest.raises(RError, match="The input object nope is not defined in a, b!"):
        pydsbase.ds_c(session, ["D$BMI", "nope"])
    pydsbase.ds_rm(session, ["ll", "al"])


def test_typed_exports_are_in_the_package() -> None:
    for name in ("ds_ls", "ds_dim", "ds_length", "ds_num_na", "ds_rm", "ds_as_character", "ds_as_integer",
                 "ds_as_logical", "ds_as_data_matrix", "ds_summary", "ds_c", "ds_list", "ds_names", "ds_levels",
                 "ds_as_list"):
        assert name in pydsbase.__all__ and callable(getattr(pydsbase, name))

