"""The issue list's sorting and filtering on the server, as the grid asks for them (AG Grid's
sort model and filter model), so that a page of a large list, the whole list and its export
are the same rows in the same order."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

TEXT_FILTERS = ("contains", "notContains", "equals", "notEqual", "startsWith", "endsWith",
                "blank", "notBlank")
NUMBER_FILTERS = ("equals", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan",
                  "greaterThanOrEqual", "inRange", "blank", "notBlank")


def _text_condition(values: pd.Series, condition: Mapping) -> np.ndarray:
    kind = condition.get("type")
    if kind not in TEXT_FILTERS:
        raise ValueError(f"text filter {kind!r} is not one of {', '.join(TEXT_FILTERS)}")
    blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if kind == "blank":
        return blank
    if kind == "notBlank":
        return ~blank
    text = values.fillna("").astype(str).str.casefold()
    wanted = str(condition.get("filter") or "").casefold()
    match = {
        "contains": lambda: text.str.contains(wanted, regex=False),
        "notContains": lambda: ~text.str.contains(wanted, regex=False),
        "equals": lambda: text == wanted,
        "notEqual": lambda: text != wanted,
        "startsWith": lambda: text.str.startswith(wanted),
        "endsWith": lambda: text.str.endswith(wanted),
    }[kind]()
    return match.to_numpy(dtype=bool)


def _number_condition(values: pd.Series, condition: Mapping) -> np.ndarray:
    kind = condition.get("type")
    if kind not in NUMBER_FILTERS:
        raise ValueError(f"number filter {kind!r} is not one of {', '.join(NUMBER_FILTERS)}")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    blank = np.isnan(numbers)
    if kind == "blank":
        return blank
    if kind == "notBlank":
        return ~blank

    def given(key: str) -> float:
        try:
            return float(condition.get(key))
        except (TypeError, ValueError):
            raise ValueError(f"number filter {kind!r} needs a number in {key!r}, "
                             f"not {condition.get(key)!r}") from None

    low = given("filter")
    with np.errstate(invalid="ignore"):
        match = {
            "equals": lambda: numbers == low,
            "notEqual": lambda: numbers != low,
            "lessThan": lambda: numbers < low,
            "lessThanOrEqual": lambda: numbers <= low,
            "greaterThan": lambda: numbers > low,
            "greaterThanOrEqual": lambda: numbers >= low,
            "inRange": lambda: (numbers >= low) & (numbers <= given("filterTo")),
        }[kind]()
    return match & ~blank if kind != "notEqual" else match | blank


def _column_filter(frame: pd.DataFrame, column: str, model: Mapping) -> np.ndarray:
    if column not in frame:
        raise ValueError(f"the list has no column {column!r} to filter")
    if "conditions" in model:
        parts = [_column_filter(frame, column, {**part, "filterType": model.get("filterType")})
                 for part in model["conditions"]]
        operator = str(model.get("operator", "AND")).upper()
        if operator not in ("AND", "OR"):
            raise ValueError(f"filter operator {operator!r} is not AND or OR")
        return np.logical_and.reduce(parts) if operator == "AND" else np.logical_or.reduce(parts)
    kind = model.get("filterType", "text")
    if kind == "text":
        return _text_condition(frame[column], model)
    if kind == "number":
        return _number_condition(frame[column], model)
    raise ValueError(f"filter type {kind!r} of column {column!r} is not text or number")


def columns_used(sort_model: Sequence[Mapping] | None = None,
                 filter_model: Mapping[str, Mapping] | None = None) -> set[str]:
    """The columns a sort model and a filter model read."""
    return {s.get("colId") for s in _sorts(sort_model)} | set(filter_model or {})


def _sorts(sort_model: Sequence[Mapping] | None) -> list[Mapping]:
    return [s for s in (sort_model or ()) if s.get("sort") in ("asc", "desc")]


def _rank(values: np.ndarray, ascending: bool) -> np.ndarray:
    """A key that orders values as sort_values does: by value in the direction asked, blanks
    after every value whatever the direction."""
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes if ascending else len(uniques) - 1 - codes)


def positions(frame: pd.DataFrame, sort_model: Sequence[Mapping] | None = None,
              filter_model: Mapping[str, Mapping] | None = None) -> np.ndarray:
    """The positions in `frame` of the rows the grid shows, in its order: those that pass
    every column's filter, in the order of the sort model (ties in the frame's own order;
    blanks last whatever the direction)."""
    keep = np.ones(len(frame), dtype=bool)
    for column, model in (filter_model or {}).items():
        keep &= _column_filter(frame, column, model)
    shown = np.flatnonzero(keep)
    sorts = _sorts(sort_model)
    for spec in sorts:
        if spec.get("colId") not in frame:
            raise ValueError(f"the list has no column {spec.get('colId')!r} to sort by")
    if not sorts or not len(shown):
        return shown
    keys = [_rank(frame[s["colId"]].to_numpy()[shown], s["sort"] == "asc") for s in sorts]
    # lexsort is stable and takes its last key first.
    return shown[np.lexsort(keys[::-1])]


def apply(frame: pd.DataFrame, sort_model: Sequence[Mapping] | None = None,
          filter_model: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """The rows the grid shows (positions), as a frame of their own."""
    return frame.take(positions(frame, sort_model, filter_model)).reset_index(drop=True)
