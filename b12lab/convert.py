"""`b12lab convert`: one value from one unit of an analyte to another.

The value is read by the reading layer exactly as `interpret` reads a flag
(`b12lab.reading.values.measure`): every unit `interpret` takes, `convert`
takes, with the same factor.
"""

from __future__ import annotations

import math

from b12lab.errors import InputError, UnreportedValueError
from b12lab.model import format_number
from b12lab.ranges import Ranges
from b12lab.reading.values import measure, read_result
from b12lab.units import spelling_key

SIGNIFICANT = 3  # a converted value shows at least this many significant digits


def _listing(ranges: Ranges, units: list[str]) -> list[str]:
    """Analytes whose listed spellings include every one of `units`."""
    return [a for a in ranges.analytes if all(ranges.units.lists(a, u) for u in units)]


def _reading(ranges: Ranges, units: list[str]) -> list[str]:
    """Analytes that read every one of `units` (listed, or converted by its dimension)."""
    return [
        a
        for a in ranges.analytes
        if all(ranges.units.factor_or_none(a, u) is not None for u in units)
    ]


def _which_analyte(ranges: Ranges, text: str, unit: str, to: str | None) -> str:
    """The one analyte the units can mean: the only one listing them, else the only one
    reading them, else any of several that give the same figure."""
    units = [unit] + ([to] if to else [])
    candidates = _listing(ranges, units) or _reading(ranges, units)
    if len(candidates) == 1:
        return candidates[0]
    factors = {
        round(
            ranges.units.factor(a, unit)
            / ranges.units.factor(a, to or ranges.analytes[a].canonical_unit),
            12,
        )
        for a in candidates
    }
    if not candidates or len(factors) > 1 or not to:
        names = ", ".join(candidates) if candidates else "none"
        raise InputError(
            f"cannot tell which analyte '{text}' is (analytes accepting it: {names})",
            fix=f"add --analyte, e.g. --analyte {candidates[0] if candidates else 'b12'}",
        )
    return candidates[0]


def _spelled(ranges: Ranges, analyte: str, unit: str) -> str:
    """The analyte's own spelling of a unit typed in another case (pmol/l: pmol/L)."""
    spellings = [ranges.analytes[analyte].canonical_unit, *ranges.units.accepted(analyte)]
    if unit in spellings:
        return unit
    key = spelling_key(unit)
    for spelling in spellings:
        if spelling_key(spelling) == key:
            return spelling
    return unit


def shown_decimals(value: float, at_least: int) -> int:
    """Decimals enough for `SIGNIFICANT` significant digits (0.45, 12.3, 221), never fewer
    than `at_least`."""
    if value == 0 or not math.isfinite(value):
        return at_least
    leading = math.floor(math.log10(abs(value)))
    return max(at_least, SIGNIFICANT - 1 - leading)


def convert_value(
    ranges: Ranges, value: str, unit: str | None, to: str | None, analyte: str | None
) -> dict:
    """`{"value": 221.3, "unit": "pmol/L", "analyte": "b12"}` for 300 pg/mL of B12."""
    text = value if unit is None else f"{value} {unit}"
    if analyte is not None:
        key = ranges.analyte_for(analyte)
        if key is None:
            raise InputError(
                f"unknown analyte '{analyte}'", fix="use one of: " + ", ".join(ranges.analytes)
            )
        analyte = key
    reading = read_result(text, analyte or "value")
    if reading.censored:
        raise InputError(f"'{text}' is a censored result", fix="convert the number alone")
    if reading.unit is None:
        raise InputError(f"'{text}' has no unit", fix="e.g. b12lab convert 300 pg/mL --to pmol/L")
    if analyte is None:
        analyte = _which_analyte(ranges, text, reading.unit, to)
    spec = ranges.analytes[analyte]
    note = None
    try:
        measurement, _ = measure(ranges, analyte, text)  # as interpret reads it
    except UnreportedValueError as unreported:
        # interpret refuses it; a conversion still shows the arithmetic, and says so
        measurement, _ = measure(ranges, analyte, text, reported_only=False)
        note = str(unreported)
    target = _spelled(ranges, analyte, to or spec.canonical_unit)
    target_factor = ranges.units.factor(analyte, target)
    if not math.isfinite(target_factor) or target_factor <= 0:
        raise InputError(
            f"'{target}' is not a unit a value can be converted to",
            fix="use one of: " + ", ".join(ranges.units.accepted(analyte)),
        )
    converted = measurement.value / target_factor
    if not math.isfinite(converted):
        raise InputError(f"'{text}' is too large to convert", fix="check the value")
    # The canonical unit keeps the report's decimals; any unit shows SIGNIFICANT digits.
    decimals = shown_decimals(converted, spec.decimals if target_factor == 1.0 else 0)
    rounded = round(converted, decimals)
    return {
        "value": rounded,
        "unit": target,
        "analyte": analyte,
        "text": f"{format_number(rounded, decimals)} {target}",
        "note": note,
    }
