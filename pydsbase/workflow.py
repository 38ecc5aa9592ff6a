"""The DataSHIELD workflow calls around ds.lmerSLMA, as dsBaseClient 6.3.0 makes them.

``ds_complete_cases``, ``ds_make``, ``ds_data_frame``, ``ds_boole`` and ``ds_data_frame_subset``
send dsBaseClient's server calls and return what it returns: the ``is.object.created`` /
``validity.check`` (/ ``studyside.messages``) list built from ``testObjExistsDS`` and ``messageDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydsbase import console, dsi, rops
from pydsbase.errors import RError
from pydsbase.lmer import _check_class, _extract, is_defined
from pydsbase.rtext import as_character_double, cat_text, deparse_call, deparse_value, unlist
from pydsbase.rvalue import NA, RAtomic, RList, RValue, r_character

__all__ = [
    "ds_as_character",
    "ds_as_list",
    "ds_as_data_matrix",
    "ds_as_integer",
    "ds_as_logical",
    "ds_boole",
    "ds_c",
    "ds_complete_cases",
    "ds_data_frame",
    "ds_data_frame_subset",
    "ds_dim",
    "ds_length",
    "ds_levels",
    "ds_list",
    "ds_ls",
    "ds_make",
    "ds_names",
    "ds_num_na",
    "ds_rm",
    "ds_summary",
]

_ALL_OK = "ALL OK: there are no studysideMessage(s) on this datasource"
_OPERATORS = {"==": 1, "!=": 2, "<": 3, "<=": 4, ">": 5, ">=": 6}


def _object_report(session: Any, names: Sequence[str], newobj: str) -> RList:
    """The closing block every dsBaseClient assign function shares."""
    info = dsi.aggregate(session, deparse_call("testObjExistsDS", newobj), names)
    exists_everywhere = True
    non_null_everywhere = True
    for item in info:
        if not rops.condition(rops.dollar(item, "test.obj.exists")):
            exists_everywhere = False
        obj_class = unlist(rops.dollar(item, "test.obj.class"))
        if obj_class is None or "ABSENT" in obj_class.data:
            non_null_everywhere = False
    created: RValue
    if exists_everywhere and non_null_everywhere:
        created = r_character([f"A data object <{newobj}> has been created in all specified data sources"])
    else:
        created = RList(
            [
                r_character([f"Error: A valid data object <{newobj}> does NOT exist in ALL specified data sources"]),
                r_character(["It is either ABSENT and/or has no valid content/class,see return.info above"]),
                r_character(["Please use ds.ls() to identify where missing"]),
            ]
        )
    messages = dsi.aggregate(session, deparse_call("messageDS", newobj), names)
    no_errors = True
    for message in messages:
        if rops.condition(_not_equal(message, _ALL_OK)):
            no_errors = False
    if no_errors:
        check = r_character([f"<{newobj}> appears valid in all sources"])
        return RList([created, check], names=["is.object.created", "validity.check"])
    check = r_character([f"<{newobj}> invalid in at least one source. See studyside.messages:"])
    studyside = RList(list(messages), names=list(names))
    return RList([created, check, studyside], names=["is.object.created", "validity.check", "studyside.messages"])


def _not_equal(value: RValue | None, text: str) -> RAtomic:
    equal = rops.equals_scalar(value, text)
    assert equal is not None
    return RAtomic("logical", [v if v is NA else not v for v in equal.data])


def ds_complete_cases(
    session: Any, x1: str | None = None, newobj: str | None = None, datasources: Sequence[str] | None = None
) -> RValue:
    """``ds.completeCases``: ``newobj <- completeCasesDS(x1)`` in every study."""
    names = dsi.datasource_names(session, datasources)
    if x1 is None:
        return r_character(["Error: x1 must be a character string naming a serverside data.frame, matrix or vector"])
    is_defined(session, names, x1)
    newobj = f"{x1}_complete.cases" if newobj is None else newobj
    dsi.assign(session, newobj, deparse_call("completeCasesDS", x1), names)
    return _object_report(session, names, newobj)


def ds_make(
    session: Any, to_assign: str | None = None, newobj: str | None = None, datasources: Sequence[str] | None = None
) -> RList:
    """``ds.make``: assign the bare arithmetic expression ``to_assign`` (e.g. ``D$BMI/D$BMI``)."""
    names = dsi.datasource_names(session, datasources)
    if to_assign is None:
        raise RError("Please give the name of object to assign or an expression to evaluate and assign.!\n")
    newobj = "make.newobj" if newobj is None else newobj
    dsi.assign(session, newobj, to_assign, names)  # as.symbol(toAssign) deparses to the text itself
    return _object_report(session, names, newobj)


def ds_data_frame(
    session: Any,
    x: Sequence[str] | str | None = None,
    row_names: Sequence[str] | str | None = None,
    check_rows: bool = False,
    check_names: bool = True,
    strings_as_factors: bool = True,
    complete_cases: bool = False,
    datashield_checks: bool = False,
    newobj: str | None = None,
    datasources: Sequence[str] | None = None,
    notify_of_progress: bool = False,
) -> RList:
    """``ds.dataFrame``: per study, ``newobj <- dataFrameDS("a,b", NULL, ..., "<column names>", ...)``."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of the list that holds the input vectors!")
    if datashield_checks:
        raise NotImplementedError("ds_data_frame(datashield_checks=True) is not supported")
    parts = [x] if isinstance(x, str) else list(x)
    newobj = "dataframe.newobj" if newobj is None else newobj
    colname_list: list[list[str]] = []
    for std, name in enumerate(names, start=1):
        classes: list[Any] = []
        for j, part in enumerate(parts, start=1):
            flat = unlist(dsi.aggregate(session, deparse_call("classDS", part), [name])[0])
            classes.extend(flat.data if flat is not None else [])
            if notify_of_progress:
                console.cat(_step_text(j, len(parts), 1, std))
        columns: list[str] = []
        for j, part in enumerate(parts, start=1):
            part_class = classes[j - 1] if j <= len(classes) else NA
            if part_class is NA:
                raise RError("missing value where TRUE/FALSE needed")
            if part_class not in ("data.frame", "matrix"):
                columns.append(part)
            else:
                flat = unlist(dsi.aggregate(session, deparse_call("colnamesDS", part), [name])[0])
                columns.extend(str(v) for v in (flat.data if flat is not None else []))
            if notify_of_progress:
                console.cat(_step_text(j, len(parts), 2, std))
        colname_list.append(columns)
    if notify_of_progress:
        console.cat("\nBoth steps in all studies completed\n")
    x_transmit = ",".join(parts)
    rows_transmit = None if row_names is None else ",".join([row_names] if isinstance(row_names, str) else row_names)
    for name, columns in zip(names, colname_list, strict=True):
        call = deparse_call(
            "dataFrameDS", x_transmit, rows_transmit, check_rows, check_names, ",".join(columns), strings_as_factors,
            complete_cases,
        )
        dsi.assign(session, newobj, call, [name])
    return _object_report(session, names, newobj)


def ds_boole(
    session: Any,
    v1: str | None = None,
    v2: str | float | None = None,
    boolean_operator: str | None = None,
    numeric_output: bool = True,
    na_assign: str = "NA",
    newobj: str | None = None,
    datasources: Sequence[str] | None = None,
) -> RList:
    """``ds.Boole``: ``newobj <- BooleDS(V1, V2, <operator 1..6>, na.assign, numeric.output)``."""
    names = dsi.datasource_names(session, datasources)
    if v1 is None:
        raise RError("Please provide the name of the column or scalar that holds V1!")
    if v2 is None:
        raise RError(
            "Please provide the name of a column or scalar holding V2 or declare a scalar in character format: eg '3'"
        )
    if boolean_operator is None:
        raise RError("Please provide a Boolean operator in character format: eg '==' or '>=' or '<' or '!='")
    if na_assign not in ("NA", "0", "1"):
        raise RError(
            "Error: na.assign must be a character string taking value 'NA', '0' or '1'- "
            "if <na.action> not specified default is 'NA'"
        )
    newobj = "boole.newobj" if newobj is None else newobj
    code = _OPERATORS.get(boolean_operator, 0)
    if code == 0:
        raise RError(f"An unrecognized Boolean operator, {boolean_operator}, has provide")
    dsi.assign(session, newobj, deparse_call("BooleDS", v1, v2, float(code), na_assign, numeric_output), names)
    return _object_report(session, names, newobj)


def ds_data_frame_subset(
    session: Any,
    df_name: str | None = None,
    v1_name: str | None = None,
    v2_name: str | None = None,
    boolean_operator: str | None = None,
    keep_cols: Sequence[Any] | None = None,
    rm_cols: Sequence[Any] | None = None,
    keep_nas: bool | None = None,
    newobj: str | None = None,
    datasources: Sequence[str] | None = None,
    notify_of_progress: bool = False,
) -> RList:
    """``ds.dataFrameSubset``: aggregate ``dataFrameSubsetDS1``, then assign ``dataFrameSubsetDS2``."""
    names = dsi.datasource_names(session, datasources)
    if df_name is None:
        raise RError("Please provide the name of the data.frame to be subsetted as a character string: eg 'xxx'")
    cols_given = keep_cols is not None or rm_cols is not None
    if not cols_given and v1_name is None:
        raise RError(
            "Please provide the name of the column or scalar that holds V1 as a character string: eg 'xxx' or '3'"
        )
    if cols_given and v1_name is None:
        v1_name = "ONES"
    if not cols_given and v2_name is None:
        raise RError(
            "Please provide the name of the column or scalar that holds V2 as a character string: eg 'xxx' or '3'"
        )
    if cols_given and v2_name is None:
        v2_name = "ONES"
    if not cols_given and boolean_operator is None:
        raise RError(
            "Unless you are only subsetting columns, please provide a "
            "Boolean operator in character format: eg '==' or '>=' or '<' or '!='. "
            "However, if either keep.cols or rm.cols is non-null because you want "
            "to subset columns and you specify both V1.name and V2.name as NULL (or 'ONES') "
            "and Boolean.operator as NULL,ds.dataFrameSubset will subset out "
            "the specified columns but will keep all rows."
        )
    if cols_given and boolean_operator is None:
        boolean_operator = "=="
    keep_nas = False if keep_nas is None else keep_nas
    code = float(_OPERATORS.get(boolean_operator or "", 0))
    newobj = "dataframesubset.newobj" if newobj is None else newobj
    keep = None if keep_cols is None else ",".join(_as_text(c) for c in keep_cols)
    remove = None if rm_cols is None else ",".join(_as_text(c) for c in rm_cols)
    args = (df_name, v1_name, v2_name, code, keep, remove, keep_nas)
    warnings = dsi.aggregate(session, deparse_call("dataFrameSubsetDS1", *args), names)
    dsi.assign(session, newobj, deparse_call("dataFrameSubsetDS2", *args), names)
    if notify_of_progress:
        for s, value in enumerate(warnings, start=1):
            items = _items(value)
            if len(items) == 1:
                console.cat(cat_text("\nSource", float(s), "\n", items[0], "\n"))
            else:
                console.cat(cat_text("\nSource", float(s), "\n"))
                for item in items:
                    console.cat(cat_text(item, "\n"))
    return _object_report(session, names, newobj)


def _step_text(j: int, total: int, step: int, std: int) -> str:
    what = f" elements to combine in step {step} of 2 in study "
    return cat_text("\n", f"{j}", " of ", f"{total}", what, f"{std}", "\n")


def _items(value: RValue | None) -> list[RValue | None]:
    if isinstance(value, RList):
        return list(value.data)
    if isinstance(value, RAtomic):
        return [RAtomic(value.type, [v]) for v in value.data]
    return []


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return as_character_double(float(value))


# -- objects: ds.ls, ds.dim, ds.length, ds.numNA, ds.rm, ds.as* --------------------------------------------------


def _by_study(names: Sequence[str], values: Sequence[RValue | None]) -> RList:
    return RList(list(values), names=list(names))


def ds_ls(
    session: Any, search_filter: str | None = None, datasources: Sequence[str] | None = None
) -> RList | RAtomic:
    """``ds.ls``: every study's ``lsDS(search.filter = ..., 1L)`` (its objects), by study name."""
    names = dsi.datasource_names(session, datasources)
    transmit = None
    if search_filter is not None:
        if "_:A:_" in search_filter:
            return r_character([
                "Warning: Code replacing wildcard (i.e. '*') is '_:A:_' but this appears in your original "
                "search filter string - please respecify"])
        transmit = search_filter.replace("*", "_:A:_")
    text = "lsDS(search.filter = " + deparse_value(transmit) + ", 1L)"
    return _by_study(names, dsi.aggregate(session, text, names))


def _type(kind: str) -> str:
    if kind in ("combine", "combined", "combines", "c"):
        return "combine"
    if kind in ("split", "splits", "s"):
        return "split"
    if kind in ("both", "b"):
        return "both"
    raise RError('Function argument "type" has to be either "both", "combine" or "split"')


def _split_combine(
    kind: str, per_study: list[RValue | None], names: list[str], pooled: RValue, pooled_name: str
) -> RList:
    if kind == "combine":
        return RList([pooled], names=[pooled_name])
    if kind == "split":
        return RList(per_study, names=names)
    return RList([*per_study, pooled], names=[*names, pooled_name])


def ds_dim(session: Any, x: str | None = None, type: str = "both", datasources: Sequence[str] | None = None) -> RList:
    """``ds.dim``: each study's ``dimDS(x)`` and the rows summed over studies (columns: the first study's)."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of a data.frame or matrix!")
    kind = _type(type)
    dims = dsi.aggregate(session, deparse_call("dimDS", x), names)
    rows = 0.0
    for dim in dims:
        rows += float(dim.data[0]) if isinstance(dim, RAtomic) and dim.data else 0.0
    first = dims[0]
    cols = float(first.data[1]) if isinstance(first, RAtomic) and len(first.data) > 1 else NA
    return _split_combine(kind, list(dims), [f"dimensions of {x} in {n}" for n in names],
                          RAtomic("double", [rows, cols]), f"dimensions of {x} in combined studies")


def ds_length(
    session: Any, x: str | None = None, type: str = "both", datasources: Sequence[str] | None = None
) -> RList:
    """``ds.length``: each study's ``lengthDS(x)`` and their sum."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of the input object!")
    kind = _type(type)
    lengths = dsi.aggregate(session, deparse_call("lengthDS", x), names)
    total = sum(int(v.data[0]) for v in lengths if isinstance(v, RAtomic) and v.data)
    return _split_combine(kind, list(lengths), [f"length of {x} in {n}" for n in names],
                          RAtomic("integer", [total]), f"total length of {x} in all studies combined")


def ds_num_na(session: Any, x: str | None = None, datasources: Sequence[str] | None = None) -> RList:
    """``ds.numNA``: the number of missing values of ``x`` in each study (``numNaDS(x)``)."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of a vector!")
    is_defined(session, names, x)
    _check_class(session, names, x)
    return _by_study(names, dsi.aggregate(session, f"numNaDS({x})", names))


def ds_rm(session: Any, x_names: Sequence[str] | str | None = None, datasources: Sequence[str] | None = None) -> RList:
    """``ds.rm``: ``rmDS("a,b")`` in every study; each study's report of what it deleted."""
    names = dsi.datasource_names(session, datasources)
    if x_names is None:
        raise RError("Please provide the names of the objects to be deleted (eg 'object.name') as the x.names argument")
    transmit = ",".join([x_names] if isinstance(x_names, str) else x_names)
    return _by_study(names, dsi.aggregate(session, deparse_call("rmDS", transmit), names))


def _convert(session: Any, server_function: str, x_name: str | None, newobj: str,
             datasources: Sequence[str] | None) -> RList:
    """The ds.as* functions: ``newobj <- server_function(x.name)`` in every study, then the object report."""
    names = dsi.datasource_names(session, datasources)
    if x_name is None:
        raise RError("Please provide the name of the input vector!")
    is_defined(session, names, x_name)
    dsi.assign(session, newobj, deparse_call(server_function, x_name), names)
    return _object_report(session, names, newobj)


def ds_as_character(session: Any, x_name: str | None = None, newobj: str | None = None,
                    datasources: Sequence[str] | None = None) -> RList:
    """``ds.asCharacter``: ``newobj <- asCharacterDS(x.name)``."""
    return _convert(session, "asCharacterDS", x_name, newobj or "ascharacter.newobj", datasources)


def ds_as_integer(session: Any, x_name: str | None = None, newobj: str | None = None,
                  datasources: Sequence[str] | None = None) -> RList:
    """``ds.asInteger``: ``newobj <- asIntegerDS(x.name)``."""
    return _convert(session, "asIntegerDS", x_name, newobj or "asinteger.newobj", datasources)


def ds_as_logical(session: Any, x_name: str | None = None, newobj: str | None = None,
                  datasources: Sequence[str] | None = None) -> RList:
    """``ds.asLogical``: ``newobj <- asLogicalDS(x.name)``."""
    return _convert(session, "asLogicalDS", x_name, newobj or "aslogical.newobj", datasources)


def ds_as_data_matrix(session: Any, x_name: str | None = None, newobj: str | None = None,
                      datasources: Sequence[str] | None = None) -> RList:
    """``ds.asDataMatrix``: ``newobj <- asDataMatrixDS(x.name)``."""
    return _convert(session, "asDataMatrixDS", x_name, newobj or "asdatamatrix.newobj", datasources)


# -- ds.c, ds.list, ds.names, ds.levels, ds.asList, ds.summary ---------------------------------------------------


def _object_names(x: Sequence[str] | str) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def _is_assigned(session: Any, names: Sequence[str], newobj: str) -> None:
    """dsBaseClient's ``isAssigned``: ``exists(newobj)`` everywhere, else stop; its value is NULL."""
    found = dsi.aggregate(session, deparse_call("exists", newobj), names)
    where = [name for name, value in zip(names, found, strict=True)
             if isinstance(value, RAtomic) and value.data and value.data[0] is True]
    if 0 < len(where) < len(names):
        # R pastes names(datasources)[indx] into stop(), which concatenates the vector without separators
        raise RError(f"The output object, '{newobj}', was generated only for {''.join(where)}!")
    if not where:
        raise RError("The output object has not been generated for any of the studies!")


def ds_c(session: Any, x: Sequence[str] | str | None = None, newobj: str | None = None,
         datasources: Sequence[str] | None = None) -> None:
    """``ds.c``: ``newobj <- cDS(list(x1,x2,...))``; like R's, its value is NULL (``isAssigned``'s)."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("x=NULL. Please provide the names of the objects to concatenate!")
    newobj = newobj or "c.newobj"
    objects = _object_names(x)
    for obj in objects:
        is_defined(session, names, obj)
    for obj in objects:
        _check_class(session, names, obj)
    dsi.assign(session, newobj, "cDS(list(" + ",".join(objects) + "))", names)
    _is_assigned(session, names, newobj)


def ds_list(session: Any, x: Sequence[str] | str | None = None, newobj: str | None = None,
            datasources: Sequence[str] | None = None) -> None:
    """``ds.list``: ``newobj <- listDS(list(x1,...), list('e1',...))``, elements named after the columns; NULL."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("x=NULL. Please provide the names of the objects to coerce into a list!")
    objects = _object_names(x)
    is_defined(session, names, objects[0])  # dsBaseClient's isDefined returns after the first object
    for obj in objects:
        _check_class(session, names, obj)
    newobj = newobj or "list.newobj"
    elements = [_extract(obj)[1] for obj in objects]
    text = "listDS(list(" + ",".join(objects) + "), list('" + "','".join(elements) + "'))"
    dsi.assign(session, newobj, text, names)
    _is_assigned(session, names, newobj)


def ds_names(session: Any, xname: str | None = None, datasources: Sequence[str] | None = None) -> RList:
    """``ds.names``: each study's ``namesDS(xname)``."""
    names = dsi.datasource_names(session, datasources)
    if xname is None:
        raise RError("Please provide the name of the input list!")
    is_defined(session, names, xname)
    return _by_study(names, dsi.aggregate(session, deparse_call("namesDS", xname), names))


def ds_levels(session: Any, x: str | None = None, datasources: Sequence[str] | None = None) -> RList:
    """``ds.levels``: each study's ``levelsDS(x)`` (its ``Levels`` and ``ValidityMessage``); x a factor."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of the input vector!")
    is_defined(session, names, x)
    if "factor" not in _check_class(session, names, x):
        raise RError("The input object must be a factor.")
    return _by_study(names, dsi.aggregate(session, f"levelsDS({x})", names))


def ds_as_list(session: Any, x_name: str | None = None, newobj: str | None = None,
               datasources: Sequence[str] | None = None) -> RList:
    """``ds.asList``: each study's ``asListDS(x.name, newobj)`` (which also creates ``newobj``); R returns it
    invisibly."""
    names = dsi.datasource_names(session, datasources)
    if x_name is None:
        raise RError("Please provide the name of the input vector!")
    is_defined(session, names, x_name)
    newobj = newobj or "aslist.newobj"
    return _by_study(names, dsi.aggregate(session, deparse_call("asListDS", x_name, newobj), names))


_SUMMARY_CLASSES = ("data.frame", "character", "factor", "integer", "list", "logical", "matrix", "numeric")


def _one(session: Any, name: str, text: str) -> RValue | None:
    return dsi.aggregate(session, text, [name])[0]


def _cell(table: RValue | None, j: int) -> RValue | None:
    """``freq[[1]][1, j]`` of table1DDS's answer: row 1, column j of its data frame ``table``."""
    frame = rops.dollar(table, "table") if isinstance(table, RList) else None
    column = frame[j] if isinstance(frame, RList) and j < len(frame.data) else None
    if isinstance(column, RAtomic) and column.data:
        return RAtomic(column.type, [column.data[0]])
    raise RError("subscript out of bounds")


def ds_summary(session: Any, x: str | None = None, datasources: Sequence[str] | None = None) -> RList:
    """``ds.summary``: by study, the class and, for a valid object, what dsBase discloses of it: dimensions and
    columns of a data frame or matrix, the length (and quantiles and mean, or level counts) of a vector, the
    element names of a list; ``'INVALID object!'`` where ``isValidDS`` says no."""
    names = dsi.datasource_names(session, datasources)
    if x is None:
        raise RError("Please provide the name of the input vector!")
    is_defined(session, names, x)
    typ = _check_class(session, names, x)
    if not any(kind in typ for kind in _SUMMARY_CLASSES):
        raise RError("The input object must be a 'data.frame', 'character', factor', 'integer', 'list', 'logical', "
                     "'matrix' or 'numeric'.")
    klass = r_character(typ)
    invalid = r_character(["INVALID object!"])
    output: list[RValue | None] = [None] * len(names)

    def valid(name: str) -> bool:
        return rops.condition(_one(session, name, f"isValidDS({x})"))

    def each_valid(summary: Callable[[str], RValue]) -> None:
        """Study by study (dsBaseClient's order): ``summary(study)`` where the object is valid, else INVALID."""
        for i, name in enumerate(names):
            output[i] = summary(name) if valid(name) else invalid

    def frame(name: str) -> RValue:
        dims = _one(session, name, deparse_call("dimDS", x))
        assert isinstance(dims, RAtomic)
        cols = _one(session, name, deparse_call("colnamesDS", x))
        return RList([klass, RAtomic(dims.type, dims.data[:1]), RAtomic(dims.type, dims.data[1:2]), cols],
                     names=["class", "number of rows", "number of columns", "variables held"])

    def character(name: str) -> RValue:
        return RList([klass, _one(session, name, deparse_call("lengthDS", x))], names=["class", "length"])

    def factor(name: str) -> RValue:
        length = _one(session, name, deparse_call("lengthDS", x))
        categories = rops.dollar(_one(session, name, f"levelsDS({x})"), "Levels")
        freq = _one(session, name, f"table1DDS({x})")
        levels = list(categories.data) if isinstance(categories, RAtomic) else []
        counts = [_cell(freq, j) for j in range(len(levels))]
        return RList([klass, length, categories, *counts],
                     names=["class", "length", "categories", *[f"count of '{c}'" for c in levels]])

    def numeric(name: str) -> RValue:
        length = _one(session, name, deparse_call("lengthDS", x))
        quantiles = _one(session, name, f"quantileMeanDS({x})")
        return RList([klass, length, quantiles], names=["class", "length", "quantiles & mean"])

    if "data.frame" in typ or "matrix" in typ:
        each_valid(frame)
    if "character" in typ:
        each_valid(character)
    if "factor" in typ:
        each_valid(factor)
    if "integer" in typ or "numeric" in typ:
        each_valid(numeric)
    if "list" in typ:
        for i, name in enumerate(names):
            length = _one(session, name, deparse_call("lengthDS", x))
            elements = _one(session, name, deparse_call("namesDS", x))
            if elements is None:
                output[i] = RList([klass, length], names=["class", "length"])
            else:
                output[i] = RList([klass, length, elements], names=["class", "length", "elements held in the list"])
    if "logical" in typ:

        def logical(name: str) -> RValue:
            _one(session, name, deparse_call("lengthDS", x))
            _cell(_one(session, name, f"table1DDS({x})"), 0)
            # dsBaseClient loops over 1:length(2), one count, then names four elements of a list of three
            raise RError("'names' attribute [4] must be the same length as the vector [3]")

        each_valid(logical)
    return RList(output, names=list(names))
